"""ACKs exactly per standard, and MSH read robustly enough to address them even for broken messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from adapters.hl7v2.ack import ack_code_of, build_ack, escape, uses_err1_layout
from adapters.hl7v2.control_id import content_control_id
from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.header import decode, extract_header
from tests.conftest import SAMPLES

ORU = (
    "MSH|^~\\&|LIS^2.16.840.1.1^ISO|FNXRMYY|HUREN|PLATFORM|20261101083000||ORU^R01^ORU_R01|LAB0001|P|{v}\r"
    "PID|1||110101199003074578^^^^NNCHN||张^三||19900307|M\r"
)


def msg(version: str = "2.5.1") -> bytes:
    return ORU.format(v=version).encode()


def segments(ack: str) -> list[list[str]]:
    return [s.split("|") for s in ack.split("\r") if s]


def test_header_of_a_good_message() -> None:
    h, text = extract_header(msg())
    assert h.found and h.addressable and not h.problems
    assert h.facility_code == "FNXRMYY"
    assert h.sending_application == "LIS^2.16.840.1.1^ISO"
    assert (h.message_code, h.trigger_event, h.message_structure) == ("ORU", "R01", "ORU_R01")
    assert h.control_id == "LAB0001" and h.version == "2.5.1" and h.processing_id == "P"
    assert "张^三" in text


def test_ack_swaps_sender_and_receiver_and_echoes_control_id() -> None:
    h, _ = extract_header(msg())
    ack = build_ack(h, "AA", now=datetime(2026, 11, 1, 8, 30, tzinfo=UTC), control_id="ACK1")
    (msh, msa) = segments(ack)
    assert msh[:12] == ["MSH", "^~\\&", "HUREN", "PLATFORM", "LIS^2.16.840.1.1^ISO", "FNXRMYY",
                        "20261101083000+0000", "", "ACK^R01^ACK", "ACK1", "P", "2.5.1"]
    assert msa == ["MSA", "AA", "LAB0001"]
    assert ack.endswith("\r") and "\n" not in ack


@pytest.mark.parametrize("version", ["2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8"])
def test_error_ack_is_valid_for_its_version(version: str) -> None:
    """hl7apy's structure definitions of each version accept the ACK, ERR included."""
    h, _ = extract_header(msg(version))
    errors = [
        HL7Error("national ID check digit is wrong", segment="PID", sequence=1, field=3, component=1, code="102"),
        HL7Error("local code GLU2 is not mapped", segment="OBX", sequence=2, field=3, code="103", severity="W"),
    ]
    ack = build_ack(h, "AE", errors)
    m = parse_message(ack, validation_level=VALIDATION_LEVEL.STRICT)
    m.validate()
    assert m.msh.msh_12.value == version
    assert m.msa.msa_1.value == "AE" and m.msa.msa_2.value == "LAB0001"


def test_err_layout_from_v2_5() -> None:
    h, _ = extract_header(msg("2.5.1"))
    ack = build_ack(h, "AE", [HL7Error("bad | value", segment="PID", sequence=1, field=3, component=1, code="102")])
    err = segments(ack)[2]
    assert err[0] == "ERR" and err[1] == ""  # ERR-1 not used from v2.5
    assert err[2] == "PID^1^3^^1"  # ERL: segment ^ sequence ^ field ^ repetition ^ component
    assert err[3] == "102^Data type error^HL70357"  # table 0357
    assert err[4] == "E"  # table 0516 severity
    assert err[8] == "bad \\F\\ value"  # user message, escaped


def test_err_layout_before_v2_5_uses_err1_and_msa() -> None:
    assert uses_err1_layout("2.3") and uses_err1_layout("2.4") and not uses_err1_layout("2.5")
    h, _ = extract_header(msg("2.4"))
    ack = build_ack(h, "AE", [HL7Error("missing", segment="PID", sequence=1, field=3, code="101"),
                              HL7Error("unmapped", segment="OBX", sequence=4, field=3, code="103")])
    msh, msa, err = segments(ack)
    assert msa[:4] == ["MSA", "AE", "LAB0001", "missing"] and msa[6] == "101^Required field missing^HL70357"
    assert err == ["ERR", "PID^1^3^101&Required field missing&HL70357~OBX^4^3^103&Table value not found&HL70357"]


def test_v2_3_has_no_message_structure_component() -> None:
    h, _ = extract_header(msg("2.3"))
    assert segments(build_ack(h, "AA"))[0][8] == "ACK^R01"


def test_warnings_ride_on_an_aa() -> None:
    h, _ = extract_header(msg())
    ack = build_ack(h, "AA", [HL7Error("unit mg/dl mapped to mg/dL", segment="OBX", sequence=1, field=6,
                                       code="0", severity="W")])
    assert ack_code_of(ack) == "AA"
    assert segments(ack)[2][4] == "W"


def test_sender_delimiters_are_kept() -> None:
    raw = b"MSH#$%\\*#LIS#FNXRMYY#HUREN#PLAT#20260101##ORU$R01#X9#P#2.5.1\rPID#1\r"
    h, _ = extract_header(raw)
    assert h.field_sep == "#" and h.encoding_chars == "$%\\*" and h.trigger_event == "R01"
    ack = build_ack(h, "AE", [HL7Error("a # b $ c", segment="PID", sequence=1, field=3)])
    assert ack.startswith("MSH#$%\\*#HUREN#PLAT#LIS#FNXRMYY#")
    assert "ACK$R01$ACK" in ack and "a \\F\\ b \\S\\ c" in ack


def test_bom_leading_noise_and_lf_separators() -> None:
    raw = b"\xef\xbb\xbf\n\nMSH|^~\\&|A|FNXRMYY|B|C|20260101||ADT^A01|C1|P|2.4\nEVN|A01\n"
    h, text = extract_header(raw)
    assert h.addressable and h.control_id == "C1" and h.version == "2.4"
    assert text.startswith("MSH|")


@pytest.mark.parametrize(
    ("raw", "field", "code"),
    [
        (b"\x00\x01binary garbage \xff\xfe", None, "101"),  # no MSH at all
        (b"MSH", 1, "101"),  # truncated right after the segment name
        (b"MSHA^~\\&|X", 1, "102"),  # alphanumeric field separator
        (b"MSH|^~|A|FNXRMYY|||2026||ADT^A01|C2|P|2.5", 2, "102"),  # too few encoding characters
        (b"MSH|^^\\&|A|FNXRMYY|||2026||ADT^A01|C2|P|2.5", 2, "102"),  # repeated encoding character
    ],
)
def test_broken_headers_are_reported_not_raised(raw: bytes, field: int | None, code: str) -> None:
    h, _ = extract_header(raw)
    assert not h.addressable
    problem = next(p for p in h.problems if p.ack_code == "AR")
    assert problem.segment == "MSH" and problem.field == field and problem.code == code
    ack = build_ack(h, "AR", h.problems)
    assert ack_code_of(ack) == "AR"
    assert segments(ack)[0][1] == "^~\\&"  # falls back to the standard delimiters


def test_broken_header_still_echoes_what_it_could_read() -> None:
    h, _ = extract_header(b"MSH|^~|LIS|FNXRMYY|HUREN|PLAT|2026||ORU^R01|C9|P|2.6\r")
    ack = build_ack(h, "AR", h.problems)
    msh, msa, err = segments(ack)
    assert msh[4:6] == ["LIS", "FNXRMYY"] and msh[11] == "2.6"
    assert msa == ["MSA", "AR", "C9"]
    assert err[2] == "MSH^1^2" and err[3].startswith("102^")


def test_empty_control_id_is_known_by_content_and_echoed_empty() -> None:
    """No MSH-10: the message is addressable by a digest of its text (the same bytes give the same
    id, other bytes another), and MSA-2 echoes MSH-10 as sent: empty."""
    raw = b"MSH|^~\\&|LIS|FNXRMYY|HUREN|PLAT|2026||ORU^R01||P|2.6\rPID|1||M1\r"
    h, text = extract_header(raw)
    assert h.addressable and not h.problems and h.sent_control_id == ""
    assert h.control_id == content_control_id(text) and h.control_id.startswith("sha256-")
    assert extract_header(raw)[0].control_id == h.control_id
    assert extract_header(raw.replace(b"M1", b"M2"))[0].control_id != h.control_id
    msh, msa = segments(build_ack(h, "AA"))
    assert msa == ["MSA", "AA", ""]


def test_character_sets() -> None:
    gb = "MSH|^~\\&|HIS|FNXRMYY|||2026||ADT^A01|G1|P|2.4||||||GB 18030-2000\rPID|1||||王^五\r".encode("gb18030")
    h, text = extract_header(gb)
    assert h.codec == "gb18030" and "王^五" in text and not h.problems
    # undeclared GBK is recognised because it is not valid UTF-8
    text2, codec = decode("PID|1||||李^四".encode("gbk"))
    assert codec == "gb18030" and "李^四" in text2
    h3, _ = extract_header(b"MSH|^~\\&|HIS|FNXRMYY|||2026||ADT^A01|G2|P|2.4||||||KLINGON\r")
    assert [p.field for p in h3.problems] == [18] and h3.problems[0].ack_code == "AE"


def test_escape_covers_every_delimiter() -> None:
    assert escape("a|b^c~d\\e&f\r\ng") == "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f\\.br\\\\.br\\g"


def test_every_sample_header_is_addressable() -> None:
    files = sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".hl7", ".txt") and p.is_file())
    assert files, "sample messages not found"
    for path in files:
        raw = path.read_bytes()
        if b"MSH" not in raw:
            continue
        h, _ = extract_header(raw)
        ack = build_ack(h, "AA")
        assert ack_code_of(ack) == "AA", path
        assert h.found, path
