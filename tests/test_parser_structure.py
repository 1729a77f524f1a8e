"""On-demand structure validation against the message's own HL7 version (hl7apy definitions)."""

from __future__ import annotations

from adapters.hl7v2.errors import SEGMENT_SEQUENCE_ERROR, UNSUPPORTED_VERSION_ID
from adapters.hl7v2.parser import parse
from adapters.hl7v2.structure import to_er7, validate_structure

GOOD_ADT = (
    "MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20250301083000||ADT^A01^ADT_A01|MSG0001|P|2.5\r"
    "EVN|A01|20250301083000\r"
    "PID|1||M000123^^^FNXRMYY^MR||张^三||19880315|M\r"
    "PV1|1|I\r"
)


def test_valid_message_passes() -> None:
    report = validate_structure(parse(GOOD_ADT))
    assert report.ok, [str(e) for e in report.errors]
    assert (report.version, report.structure) == ("2.5", "ADT_A01")


def test_missing_required_segment_is_reported() -> None:
    report = validate_structure(parse(GOOD_ADT.replace("PV1|1|I\r", "")))
    assert not report.ok
    assert any("PV1" in e.message and e.code == SEGMENT_SEQUENCE_ERROR for e in report.errors)


def test_missing_required_field_names_the_segment() -> None:
    report = validate_structure(parse(GOOD_ADT.replace("PID|1||M000123^^^FNXRMYY^MR||张^三", "PID|1||||")))
    assert any(e.segment == "PID" and "PID_3" in e.message for e in report.errors)


def test_event_structure_table_used_when_msh93_absent() -> None:
    # ADT^A04 uses the ADT_A01 structure (HL7 table 0354); without the table hl7apy finds no message
    text = GOOD_ADT.replace("ADT^A01^ADT_A01", "ADT^A04").replace("EVN|A01", "EVN|A04")
    assert "ADT^A04^ADT_A01" in to_er7(parse(text))
    assert validate_structure(parse(text)).ok


def test_truncation_character_is_accepted() -> None:
    text = GOOD_ADT.replace("^~\\&", "^~\\&#", 1)
    assert validate_structure(parse(text)).ok


def test_unknown_version() -> None:
    report = validate_structure(parse(GOOD_ADT.replace("|P|2.5\r", "|P|9.9\r", 1)))
    assert not report.ok
    assert report.errors[0].code == UNSUPPORTED_VERSION_ID and report.errors[0].field == 12
