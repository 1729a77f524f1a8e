"""What the tenth round remembers between messages answers as the work it replaces would.

- ``parser._encoding_from`` keeps the Encoding read from a sender's MSH-1, MSH-2 and MSH-18 and
  ``parser._NAMES`` the segment ids found valid: a message with other delimiters or another
  character set is read with its own, and a bad MSH-2 or segment id is refused every time, however
  many good ones came before.
- ``actors.practitioner`` makes an XCN's Practitioner from a compiled copy from its second time:
  every copy is a new tree (changing one changes neither the next nor the first), and another
  institution or other delimiters make their own.
"""

from __future__ import annotations

import json

import pytest

from adapters.convert import convert
from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.parser import parse
from bench.ingest import adt_a01, oru_lab
from engine.settings import Settings
from mappings.site import Site


@pytest.fixture(scope="module")
def site() -> Site:
    return Site.load(Settings())


def test_each_message_is_read_with_its_own_delimiters_and_character_set() -> None:
    plain = "MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORU^R01|C1|P|2.5.1\rPID|1||A^B\\T\\C\r"
    for _ in range(3):
        msg = parse(plain)
        assert msg.encoding.component == "^" and msg.encoding.escape == "\\"
        assert msg.get("PID").value(3, comp=2) == "B&C"
    other = "MSH#*~$@#LIS#FNXRMYY#HUREN#FNYGT#20261101091500##ORU*R01#C2#P#2.5.1\rPID#1##A*B$F$C\r"
    msg = parse(other)
    assert (msg.encoding.field, msg.encoding.component, msg.encoding.escape) == ("#", "*", "$")
    assert msg.get("PID").value(3, comp=2) == "B#C"
    latin = plain.replace("2.5.1\r", "2.5.1||||||8859/1\r", 1)
    gb = plain.replace("2.5.1\r", "2.5.1||||||GB 18030-2000\r", 1)
    assert parse(latin).encoding.charset != parse(gb).encoding.charset
    assert "utf-8" not in (parse(latin).encoding.charset, parse(gb).encoding.charset)
    assert parse(plain).encoding.charset == "utf-8"


def test_a_bad_msh2_or_segment_id_is_refused_every_time() -> None:
    good = "MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORU^R01|C1|P|2.5.1\rPID|1||A\r"
    parse(good)
    for _ in range(2):
        with pytest.raises(HL7Error) as bad_msh2:
            parse(good.replace("^~\\&", "^^", 1))
        assert bad_msh2.value.field == 2 and bad_msh2.value.ack_code == "AR"
        with pytest.raises(HL7Error) as bad_name:
            parse(good + "pid|2\r")
        assert "invalid segment id" in bad_name.value.message
    # the doubled escape is read as the standard set, and still reported by the converter
    doubled = parse(good.replace("^~\\&", "^~\\\\&", 1))
    assert doubled.encoding.msh2 == "^~\\&" and doubled.msh.fields[2] == "^~\\\\&"


def _practitioners(conv: object) -> list[dict]:
    return [r for r in conv.resources if r["resourceType"] == "Practitioner"]  # type: ignore[attr-defined]


def test_a_practitioner_copy_is_a_new_tree_each_time(site: Site) -> None:
    first = convert(parse(adt_a01(7_000_001).decode()), site)
    expected = json.dumps(_practitioners(first), ensure_ascii=False)
    second = convert(parse(adt_a01(7_000_002).decode()), site)  # the compiled copy is made here
    third = convert(parse(adt_a01(7_000_003).decode()), site)  # and used here
    assert json.dumps(_practitioners(second), ensure_ascii=False) == expected
    assert json.dumps(_practitioners(third), ensure_ascii=False) == expected
    for conv in (second, third):
        (doctor,) = _practitioners(conv)
        doctor["name"][0]["given"].append("changed")
        doctor["identifier"][0]["value"] = "changed"
    fourth = convert(parse(adt_a01(7_000_004).decode()), site)
    assert json.dumps(_practitioners(fourth), ensure_ascii=False) == expected
    assert json.dumps(_practitioners(first), ensure_ascii=False) == expected


def test_the_same_xcn_at_another_institution_or_with_other_delimiters(site: Site) -> None:
    text = oru_lab(7_100_000).decode()
    for n in range(3):
        convert(parse(oru_lab(7_100_000 + n).decode()), site)
    (ours,) = _practitioners(convert(parse(text), site))
    other = [code for code in ("FNYGT", "FNZYY", "FNGXZYY") if site.institution(code) is not None]
    assert other, "the shipped site registers more than one institution"
    (theirs,) = _practitioners(convert(parse(text), site, institution=other[0]))
    assert theirs["id"] != ours["id"]
    assert theirs["identifier"][0]["system"] != ours["identifier"][0]["system"]
    star = text.replace("^", "*").replace("MSH|*~\\&|", "MSH|*~\\&|", 1)
    (starred,) = _practitioners(convert(parse(star), site))
    assert starred == ours  # other delimiters, the same person: read with its own, the same resource


def test_a_planned_result_is_checked_by_the_values_it_holds_now(site: Site) -> None:
    """``Validator.valid_planned`` reads a proven plan's holes from the resource (not from what the
    converter noted it put there): a value replaced since is checked as what it is now, and a
    replacement of another shape sends the result to the whole validation."""
    from conformance.validate import Validator

    validator = Validator.from_settings(Settings())
    for n in range(3):  # the plans learnt, then proven by a whole validation
        conv = convert(parse(oru_lab(7_200_000 + n).decode()), site)
        for resource in conv.resources:
            mark = conv.planned.get(f"{resource['resourceType']}/{resource['id']}")
            if mark is not None:
                assert validator.valid_planned(resource, mark)
    conv = convert(parse(oru_lab(7_200_010).decode()), site)
    results = [(r, conv.planned[f"Observation/{r['id']}"]) for r in conv.resources
               if r["resourceType"] == "Observation"]
    assert len(results) == 12 and all(validator.valid_planned(r, p) for r, p in results)
    replacements = [
        ("valueQuantity", lambda r: r["valueQuantity"].update(value="6.2"), False),
        ("valueQuantity", lambda r: r["valueQuantity"].update(value=True), False),
        ("valueQuantity", lambda r: r["valueQuantity"].update(value=float("nan")), False),
        ("valueQuantity", lambda r: r["valueQuantity"].update(value=7.25), True),
        ("effectiveDateTime", lambda r: r.update(effectiveDateTime=20261101), False),
        ("effectiveDateTime", lambda r: r.update(effectiveDateTime="2026-13-01"), False),
        ("effectiveDateTime", lambda r: r.update(effectiveDateTime="2026-11-02T10:00:00+08:00"), True),
        ("subject", lambda r: r.update(subject={"reference": "Encounter/x"}), False),
        ("subject", lambda r: r.update(subject={**r["subject"], "display": "x"}), False),
        ("subject", lambda r: r.update(subject="Patient/x"), False),
        ("specimen", lambda r: r.update(specimen={"reference": "Patient/x"}), False),
    ]
    for (resource, mark), (_name, change, accepted) in zip(results, replacements, strict=False):
        change(resource)
        fast = validator.valid_planned(resource, mark)
        assert fast == accepted, (resource, fast)
        assert fast <= validator.is_valid(resource)


def _locations(conv: object) -> list[dict]:
    return [r for r in conv.resources if r["resourceType"] == "Location"]  # type: ignore[attr-defined]


def test_a_location_copy_is_a_new_tree_each_time(site: Site) -> None:
    first = convert(parse(adt_a01(7_300_001).decode()), site)
    expected = json.dumps(_locations(first), ensure_ascii=False)
    order = [r["resourceType"] for r in first.resources]
    assert "managingOrganization" in _locations(first)[0]
    from conformance.validate import Validator

    validator = Validator.from_settings(Settings())
    later = [convert(parse(adt_a01(7_300_000 + n).decode()), site) for n in (2, 3)]
    for conv in later:
        assert json.dumps(_locations(conv), ensure_ascii=False) == expected
        assert [r["resourceType"] for r in conv.resources] == order  # the sender still put first
        *above, ward = _locations(conv)  # the bed, its room and ward above it (pages33: partOf)
        assert [a["physicalType"]["coding"][0]["code"] for a in above] == ["wa", "ro"], above
        for loc in (*above, ward):
            mark = conv.planned.get(f"Location/{loc['id']}")  # made from the same texts: kept
            assert mark is not None and validator.valid_planned(loc, mark)
        mark = conv.planned[f"Location/{ward['id']}"]
        ward["physicalType"]["coding"][0]["code"] = "changed"
        ward["managingOrganization"]["display"] = "changed"
        assert not validator.valid_planned(ward, mark)  # changed since: validated whole
    again = convert(parse(adt_a01(7_300_004).decode()), site)
    assert json.dumps(_locations(again), ensure_ascii=False) == expected
    assert json.dumps(_locations(first), ensure_ascii=False) == expected
    # the same ward of another facility: not managed by the sender, keyed apart
    text = adt_a01(7_300_005).decode().replace("内科^301^2^FNXRMYY", "内科^301^2^OTHER")
    for _ in range(3):
        *_, elsewhere = _locations(convert(parse(text), site))
        assert "managingOrganization" not in elsewhere and elsewhere["id"] != _locations(first)[0]["id"]


def test_the_field_separator_is_part_of_what_a_remembered_text_means(site: Site) -> None:
    """``\\F\\`` decodes to the message's own field separator: the same XCN and PL text from the
    same institution under another MSH-1 names another person and place (reviewer's finding: the
    memo keys named every delimiter but the field separator; now ``Encoding.key`` names them all)."""
    def named(text: str) -> tuple[list[object], list[object]]:
        out = convert(parse(text), site).resources
        return ([r["name"] for r in out if r["resourceType"] == "Practitioner"],
                [r["name"] for r in out if r["resourceType"] == "Location"])

    pipe = adt_a01(1).decode().replace("D002^赵^医生", "D009^A\\F\\B^医生").replace("内科^301", "内\\F\\科^301")
    assert "A\\F\\B" in pipe and "内\\F\\科" in pipe
    hashed = pipe.replace("|", "#")
    for _ in range(3):  # remembered, then copied
        doctors, places = named(pipe)
        assert any(n[0].get("family") == "A|B" for n in doctors) and any("内|科" in p for p in places)
    doctors, places = named(hashed)
    assert any(n[0].get("family") == "A#B" for n in doctors), doctors
    assert any("内#科" in p for p in places) and not any("内|科" in p for p in places), places
