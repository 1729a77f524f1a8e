"""PID-7 against the resident ID's birth date, compared as text (twenty-eighth round, perfconv28).

``common._check_demographics`` compares PID-7 (whole or cut to a year or a month) with the
number's own characters 7-14 instead of formatting its parsed date again. The verdicts and the
refusal (segment, field, code, AE, message) must be what they were for every length PID-7 comes in.
"""

from __future__ import annotations

import pytest

from adapters.convert import convert
from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.parser import parse
from engine.settings import Settings
from mappings.site import Site

NID = "32092319850412001X"  # born 1985-04-12, male
ADT = (
    "MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20250310091500||ADT^A04^ADT_A01|C1|P|2.5.1\r"
    "EVN|A04|20250310091500\r"
    "PID|1||{nid}^^^^NNCHN~M1^^^FNXRMYY^MR||王建国||{birth}|M\r"
    "PV1|1|O|MZ|||||||||||||||||V1\r"
)


@pytest.fixture(scope="module")
def site() -> Site:
    return Site.load(Settings())


@pytest.mark.parametrize("birth", ["19850412", "1985041208", "198504120830", "198504", "1985"])
def test_a_birth_date_that_agrees_at_any_precision_is_taken(site: Site, birth: str) -> None:
    conv = convert(parse(ADT.format(nid=NID, birth=birth)), site)
    patient = next(r for r in conv.resources if r["resourceType"] == "Patient")
    assert patient["birthDate"] == {8: "1985-04-12", 6: "1985-04", 4: "1985"}[min(len(birth), 8)]
    assert not [w for w in conv.warnings if w.field == 7]


@pytest.mark.parametrize(("birth", "shown"), [
    ("19850413", "19850413"), ("1985041308", "19850413"), ("198505", "198505"), ("1986", "1986"),
    ("19840412", "19840412"),
])
def test_a_birth_date_that_disagrees_is_refused_as_before(site: Site, birth: str, shown: str) -> None:
    with pytest.raises(HL7Error) as info:
        convert(parse(ADT.format(nid=NID, birth=birth)), site)
    err = info.value
    assert (err.segment, err.sequence, err.field, err.component) == ("PID", 1, 7, 1)
    assert (err.code, err.ack_code, err.severity) == ("102", "AE", "E")
    assert err.message == (f"PID-7 birth date {shown} disagrees with the national resident ID "
                           "(born 1985-04-12)")
