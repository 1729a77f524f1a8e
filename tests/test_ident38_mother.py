"""ident38: a newborn's PID-21 naming the mother by her ID number, her visit's record keyed by her MRN.

``_mother_named`` keys the mother as her own PID would (``nid|<number>`` when PID-21 holds only her ID
number): a record that does not exist, so the rooming-in rule (merge.yaml ``another_person``,
``Said.mother``) asked the patient index about a record it does not hold, and the newborn's result under her
visit was refused. The index now resolves it (``IdentityService._keyed_by_its_number``): that key is the
record of the visit's patient when she carries the number and the index has her linked to the number's
person. Never another person's: another woman's number, a number nobody carries, a record in conflict
with its number, or a result keyed by the number naming another person. Real HL7 over MLLP, both backends,
read back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_lead20_visitlast_newborn import MOTHER, _result
from tests.test_placer19_two_patients import nid
from tests.test_recognition_policy_e2e import msh, ts
from tests.test_visit20_reused_numbers import (  # noqa: F401 -- fixtures
    accepted,
    adt,
    engine,
    fhir,
    one_visit_numbered,
    pv1,
    read,
    send,
)


def _refused_at_the_visit(code: str, errs: list[list[str]]) -> bool:
    return code == "AE" and any(e[2] == "PV1^1^19" for e in errs)


def test_the_mother_named_by_her_id_number_files_the_newborns_result_under_her_visit(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    accepted(mllp, adt("A01", "M1", MOTHER, "V100", ts(10)))
    visit = one_visit_numbered(fhir, "V100")
    code, errs = send(mllp, _result("M1N", ts(2)[:8], f"{nid(2)}^^^公安部^NNCHN", ts(1)))
    assert code == "AA", errs
    (report,) = read(fhir, "DiagnosticReport")
    assert report["encounter"]["reference"] == f"Encounter/{visit['id']}"
    assert report["subject"]["reference"] != visit["subject"]["reference"]  # the newborn's own record


def test_another_womans_id_number_is_not_the_visits_patient(engine: Engine, mllp: int, fhir: TestClient) -> None:
    """PID-21 names another woman's ID number (she has her own record), or a number no record carries:
    the visit's patient is not named: refused at PV1-19, nothing filed."""
    accepted(mllp, adt("A01", "M2", MOTHER, "V100", ts(10)))
    accepted(mllp, adt("A04", "M2B", ("MRN-W", 4, "赵^四"), "V200", ts(10)))
    for control, number in (("M2N", 4), ("M2X", 6)):
        code, errs = send(mllp, _result(control, ts(2)[:8], f"{nid(number)}^^^公安部^NNCHN", ts(1)))
        assert _refused_at_the_visit(code, errs), (control, code, errs)
    assert read(fhir, "DiagnosticReport") == []


def test_a_visit_record_in_conflict_with_the_number_is_not_its_person(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    """The visit's record carries the number but another name than the number's person has (the index keeps it
    in conflict, linked to nobody): the number's person is not shown to be hers -- refused."""
    accepted(mllp, adt("A01", "M3A", MOTHER, "V100", ts(10)))
    accepted(mllp, adt("A01", "M3", ("MRN-C", 2, "孙^二"), "V300", ts(10)))
    (record,) = read(fhir, "Patient", identifier="MRN-C")
    assert (engine.identity.record(record["id"]) or {}).get("status") == "conflict"
    fields = [""] * 22
    fields[1], fields[3], fields[5], fields[7], fields[8], fields[21] = (
        "1", "MRN-NB3^^^HOSPA^MR", "王二之子", ts(2)[:8], "M", f"{nid(2)}^^^公安部^NNCHN")
    when = ts(1)
    result = (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, "M3N") + "PID|" + "|".join(fields[1:]) + "\n"
              + pv1("V300", when) + "ORC|RE|BM3N^HIS|FM3N^LIS\n"
              + f"OBR|1|BM3N^HIS|FM3N^LIS|58410-2^CBC^LN|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
              + f"OBX|1|NM|WBC^白细胞^L||16.1|10*9/L|||||F|||{when}\n")
    code, errs = send(mllp, result)
    assert _refused_at_the_visit(code, errs), (code, errs)


def test_a_result_keyed_by_the_number_alone_naming_another_person_is_still_refused(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    """Not a newborn: a result whose PID-3 is the mother's ID number alone but another name and sex, under her
    visit number: its record (keyed by the number, written by the message) is in conflict with the number --
    not her person -- refused at PV1-19 as before; the same name and sex: her person, filed."""
    accepted(mllp, adt("A01", "M4", MOTHER, "V100", ts(10)))
    visit = one_visit_numbered(fhir, "V100")
    when = ts(1)

    def result(control: str, name: str, sex: str) -> str:
        return (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, control)
                + f"PID|1||{nid(2)}^^^公安部^NNCHN||{name}||19700101|{sex}\n" + pv1("V100", when)
                + f"ORC|RE|B{control}^HIS|F{control}^LIS\n"
                + f"OBR|1|B{control}^HIS|F{control}^LIS|58410-2^CBC^LN|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
                + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{when}\n")

    code, errs = send(mllp, result("M4X", "钱^七", "M"))
    assert code == "AE", errs
    code, errs = send(mllp, result("M4S", "王^二", "F"))
    assert code == "AA", errs
    (report,) = read(fhir, "DiagnosticReport")
    assert report["encounter"]["reference"] == f"Encounter/{visit['id']}"
