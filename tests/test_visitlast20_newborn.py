"""The newborn rule's edges (visitlast20): PID-21 lets a message go under the visit of the record it
names as mother only for a newborn -- born (PID-7) at most ``newborn_days`` (identifiers.yaml, 28)
before the message (MSH-7); an invalid ID number in PID-21 warns and names nobody. Real HL7 bytes
over MLLP, the real store (SQLite and mongomock), FHIR reads over HTTP."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
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

MOTHER = ("MRN-M", 2, "王^二")


def _result(control: str, born: str, mother_field: str, when: str) -> str:
    """A newborn's (own MRN, no ID number) lab result under the mother's visit number V100."""
    fields = [""] * 22
    fields[1], fields[3], fields[5], fields[7], fields[8], fields[21] = (
        "1", "MRN-NB^^^HOSPA^MR", "王二之子", born, "M", mother_field)
    return (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, control) + "PID|" + "|".join(fields[1:]) + "\n"
            + pv1("V100", when) + "ORC|RE|B9^HIS|F9^LIS\n"
            + f"OBR|1|B9^HIS|F9^LIS|58410-2^CBC^LN|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + f"OBX|1|NM|WBC^白细胞^L||16.1|10*9/L|||||F|||{when}\n")


def test_within_the_neonatal_period_passes_beyond_it_is_refused(engine: Engine, mllp: int, fhir: TestClient) -> None:
    """Born 28 days before the message: a newborn, filed under the mother's visit. Born 29 days
    before, born after the message, or with PID-7 to the year only: not known for a newborn --
    another patient under the visit number (AE at PV1-19)."""
    accepted(mllp, adt("A01", "A01-M", MOTHER, "V100", ts(40)))
    visit = one_visit_numbered(fhir, "V100")
    when = ts(1)
    for control, born in (("ORU-29", ts(30)[:8]), ("ORU-FUT", ts(0)[:8]), ("ORU-YR", ts(5)[:4])):
        code, errs = send(mllp, _result(control, born, "MRN-M^^^HOSPA^MR", when))
        assert code == "AE" and any(e[2] == "PV1^1^19" for e in errs), (control, errs)
    assert not read(fhir, "DiagnosticReport")
    accepted(mllp, _result("ORU-28", ts(29)[:8], "MRN-M^^^HOSPA^MR", when))
    (report,) = read(fhir, "DiagnosticReport")
    assert report["encounter"]["reference"] == f"Encounter/{visit['id']}"


def test_a_mistyped_id_number_in_pid21_names_nobody(engine: Engine, mllp: int, fhir: TestClient) -> None:
    """A newborn's PID-21 with a mistyped ID number and then the mother's MRN: a warning at PID-21,
    the MRN names her -- filed under her visit. With the mistyped number alone it names nobody: no
    mother, refused at PV1-19 as another patient (not at PID-21)."""
    accepted(mllp, adt("A01", "A01-M", MOTHER, "V100", ts(3)))
    bad = nid(2)[:-1] + ("0" if nid(2)[-1] != "0" else "1")
    when = ts(2)
    code, errs = send(mllp, _result("ORU-B1", when[:8], f"{bad}^^^公安部^NNCHN", when))
    assert code == "AE" and [e[2] for e in errs if e[4] == "E"] == ["PV1^1^19"], errs
    code, errs = send(mllp, _result("ORU-B2", when[:8], f"{bad}^^^公安部^NNCHN~MRN-M^^^HOSPA^MR", when))
    assert code == "AA" and any(e[2].startswith("PID^1^21") and e[4] == "W" for e in errs), errs
