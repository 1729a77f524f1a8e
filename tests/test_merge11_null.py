"""HL7's explicit null ``""`` deletes the stored value; an empty field keeps it (merge11).

HL7 v2 chapter 2 ("null values"): a field sent as ``""`` means "delete the value the receiver holds",
an empty field "no change". The parser read both as empty, so a sender could never clear a stale
value: the "H" flag of a result corrected to a normal value, a phone number that is no longer the
patient's. The converter now names what ``""`` deleted (``Conversion.deletes``: OBX-8; PID-11,
15, 16, 29 through ``null_deletes`` in ``pid_patient.yaml``; not PID-13/14 since
uses11) and the merge rules drop it from the stored version (``MergeRules.deleting``), while an empty field still leaves it alone.

Real bytes over MLLP into the real store, read back through ``/fhir``; each failed before.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.convert import convert
from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.parser import parse
from engine.engine import Engine
from engine.merge_rules import Delete
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_merge11_kinds import adt, stored


def result(control: str, value: str, obx8: str, hour: str) -> bytes:
    return (
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101{hour}1500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
        "PID|1||M0012^^^FNXRMYY^MR||李^四||19800101|M\r"
        "OBR|1|ORD-N|LAB-N|GLU^血糖^L|||20261101083000|||||||20261101083500|BLD||||||||20261101091000|||F\r"
        f"OBX|1|NM|GLU^葡萄糖^L||{value}|mmol/L|3.9-6.1|{obx8}|||C|||20261101090000\r"
    ).encode()


HIGH = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                     "code": "H", "display": "High"}]}]


def test_a_null_flag_deletes_the_stored_one_an_empty_flag_keeps_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, result("N1", "7.9", "H", "09"), result("N2", "8.1", "", "10"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    obs = stored(engine, fhir, "N2", "Observation")
    assert obs["valueQuantity"]["value"] == 8.1
    assert [c["code"] for i in obs["interpretation"] for c in i["coding"]] == ["H"]  # empty: no change

    # the corrected result is normal: OBX-8 "" clears the flag (twice: the resend changes nothing)
    acks = send(engine, result("N3", "5.2", '""', "11"), result("N4", "5.2", '""', "12"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    obs = stored(engine, fhir, "N4", "Observation")
    assert obs["valueQuantity"]["value"] == 5.2 and "interpretation" not in obs

    # a later flag is stored again
    (ack,) = send(engine, result("N5", "2.1", "L", "13"))
    assert [c["code"] for i in stored(engine, fhir, "N5", "Observation")["interpretation"]
            for c in i["coding"]] == ["L"]


def test_a_null_phone_field_deletes_its_use_a_null_address_goes(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    home = {"system": "phone", "value": "051288001", "use": "home"}
    work = {"system": "phone", "value": "051288002", "use": "work"}
    first = adt("P1", "A01", "王^建国^^^^^L", "^PRN^PH^^^^051288001", "^WPN^PH^^^^051288002",
                "幸福路18号^^阜宁县^江苏省^224400^CHN^H")
    acks = send(engine, first, adt("P2", "A08", "王^建国^^^^^L", "", ""))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    patient = stored(engine, fhir, "P2", "Patient")
    assert patient["telecom"] == [home, work] and patient["address"]  # empty fields: no change

    # PID-11 "": the address is gone; PID-14 "": the work number goes (conv14: the numbers of the
    # field's use; it had deleted none); sent three times (the converter keeps copies of a Patient
    # from a PID it met before: never of this one)
    acks = send(engine, *(adt(f"P{n}", "A08", "王^建国^^^^^L", "", '""', '""') for n in (3, 4, 5)))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3
    patient = stored(engine, fhir, "P5", "Patient")
    assert patient["telecom"] == [home] and "address" not in patient

    # PID-13 "" with a new work mobile in PID-14: the home number goes, the mobile is added
    (ack,) = send(engine, adt("P6", "A08", "王^建国^^^^^L", '""', "^WPN^CP^^^^13900000000"))
    assert ack_code_of(ack) == "AA"
    assert stored(engine, fhir, "P6", "Patient")["telecom"] == [
        {"system": "phone", "value": "13900000000", "use": "mobile"}]


def test_a_null_names_what_it_deletes_and_converts_as_an_empty_field(engine: Engine) -> None:
    """The Bundle of a message with ``""`` is the Bundle of the same message with the field empty:
    the delete travels beside it, by reference, for the merge rules alone."""
    site = engine.site
    nulled = convert(parse(adt("C1", "A08", "王^建国^^^^^L", "", '""', '""').decode()), site)
    empty = convert(parse(adt("C1", "A08", "王^建国^^^^^L", "", "", "").decode()), site)
    assert nulled.bundle == empty.bundle
    # (what the converter assumes is named too, in both: the A08's Encounter status, merge12; the
    # Patient's active, mfix12)
    ((ref, deletes),) = [(r, s.deletes) for r, s in nulled.said.items() if s.deletes]
    phones = ("system", ("phone", "fax", "pager", "sms"))
    assert ref.startswith("Patient/") and deletes == (Delete("address"), Delete("telecom", (("use", ("work",)), phones)))
    assert [r for r, s in empty.said.items() if s.deletes] == []
