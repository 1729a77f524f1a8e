"""A PID converted before gives a copy of its Patient (``adapters.convert.common.patient``): the
same bytes as converting it again, its notes and warnings reported every time."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest

from adapters.convert import common, convert
from adapters.hl7v2.parser import parse
from engine.identity.nationalid import check_character
from engine.settings import Settings
from mappings.site import Site
from tests import test_convert_golden as golden


def test_every_golden_message_converted_again_is_the_same_bytes(tmp_path: Path) -> None:
    """Each message converted three times in a row, the third time meeting what the first left (its
    Patient kept, its results' shapes and plans): the third conversion is the golden file's."""
    once = golden._outcome
    hits = [0]
    original = common.json_copy

    def second(text: str, site: Site) -> bytes:  # (a Patient is kept the second time it comes)
        once(text, site)
        once(text, site)
        return once(text, site)

    def counting(value: object) -> object:
        hits[0] += isinstance(value, dict) and value.get("resourceType") == "Patient"
        return original(value)

    with mock.patch.object(golden, "_outcome", second), mock.patch.object(common, "json_copy", counting):
        ours = golden.digests(tmp_path)
    pinned = json.loads(golden.GOLDEN.read_text(encoding="utf-8"))
    assert [name for name in ours if ours[name] != pinned[name]] == []
    assert hits[0] >= 300  # most messages have a Patient kept by their first conversion


@pytest.fixture()
def site() -> Site:
    return Site.load(Settings())


def _adt(n: int, pid: str, pd1: str = "") -> str:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101080000||ADT^A08^ADT_A01|M{n:06d}|P|2.5.1\r"
            "EVN|A08|20261101080000\r"
            f"{pid}\r{pd1}"
            f"PV1|1|O|内科门诊^^^FNXRMYY||||D001^李^医生||||||||||||V{n:06d}\r")


def _fresh(text: str) -> bytes:
    with mock.patch.object(common, "_PATIENTS", {}):
        return golden._outcome(text, Site.load(Settings()))


def test_a_patient_with_a_warning_or_more_than_itself_is_converted_each_time(site: Site) -> None:
    # an area code unknown for the birth year: a warning of the message's own, every time
    body = "99010119800101011"
    warned = f"PID|1||{body}{check_character(body)}^^^^NNCHN~MRN77^^^FNXRMYY^MR||张^三||19800101|M|||^^阜宁^江苏||13800000000"
    # a PD1 naming a clinic and a practitioner: resources the Patient's conversion makes besides it
    pd1 = "PD1|||阜宁县人民医院^^FNXRMYY|D009^周^医生\r"
    plain = "PID|1||MRN88^^^FNXRMYY^MR||王^芳||19750512|F|||江苏省盐城市阜宁县^^阜宁^江苏^224400||13900000000"
    for text in (_adt(1, warned), _adt(2, plain, pd1), _adt(3, plain), _adt(4, plain.replace("王^芳", "王^芳^^^^^L"))):
        first = golden._outcome(text, site)
        assert golden._outcome(text, site) == golden._outcome(text, site) == first == _fresh(text)
        assert golden._outcome(text.replace("M00000", "M10000"), site) == _fresh(text.replace("M00000", "M10000"))
    assert b"area code 990101 is not a known" in golden._outcome(_adt(1, warned), site)
    kept = [(memo[-1] is not None, entry[1]) for memo, entry in common._PATIENTS.items()
            if type(entry) is tuple and entry[0] is site]
    assert kept == [(False, "MRN88")] * 2  # the two plain PIDs; not the one with a PD1, nor the warned


def test_a_kept_patient_is_a_copy(site: Site) -> None:
    text = _adt(5, "PID|1||MRN99^^^FNXRMYY^MR||李^四||19900101|M")
    convert(parse(text), site)
    first = convert(parse(text), site)
    patient = next(r for r in first.resources if r["resourceType"] == "Patient")
    patient["name"][0]["family"] = "changed later by someone"
    patient["gender"] = "other"
    again = convert(parse(text), site)
    kept = next(r for r in again.resources if r["resourceType"] == "Patient")
    assert kept["name"][0]["family"] == "李" and kept["gender"] == "male"


def test_a_patient_naming_a_practitioner_made_earlier_in_its_message_is_not_kept(site: Site) -> None:
    """A PD1 naming a doctor an earlier PID of the same message already named makes nothing new
    (the message's Practitioner is merged), yet its Patient names that Practitioner: a copy of it
    in a later message would name a resource that message's Bundle lacks."""
    p1 = "PID|1||MRN11^^^FNXRMYY^MR||王^芳||19750512|F\rPD1||||D009^周^医生\r"
    p2 = "PID|1||MRN22^^^FNXRMYY^MR||李^四||19800101|M\rPD1||||D009^周^医生\r"

    def merge(n: int) -> str:
        return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101080000||ADT^A40^ADT_A39|M{n:06d}|P|2.5.1\r"
                f"EVN|A40|20261101080000\r{p1}MRG|OLD11^^^FNXRMYY^MR\r{p2}MRG|OLD22^^^FNXRMYY^MR\r")

    later = (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101080000||ADT^A08^ADT_A01|M000003|P|2.5.1\r"
             f"EVN|A08|20261101080000\r{p2}PV1|1|O|内科门诊^^^FNXRMYY||||D001^李^医生||||||||||||V000003\r")
    for n in (1, 2):
        convert(parse(merge(n)), site)
    assert golden._outcome(later, site) == _fresh(later)
    named = set(common._references(
        next(r for r in convert(parse(later), site).resources if r["resourceType"] == "Patient")))
    stored = {f"{r['resourceType']}/{r['id']}" for r in convert(parse(later), site).resources}
    assert named and named <= stored
