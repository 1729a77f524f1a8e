"""ident39: a newborn's PID-21 (the MOTHER's identifier, v2.5.1 3.4.1.21) naming a man is not rooming-in.

The rooming-in rule (``merge.yaml`` ``another_person``, ``Said.mother``) let a newborn's result under the visit
of the patient PID-21 names pass; it now asks whether that record is a man's (``demographics.a_man``: sex male,
or a valid ID number whose 17th digit is odd -- ``nationalid.parse``, the number's one reading). Here his sex is
not stated (PID-8 U): only his ID number says he is a man. Real HL7 over MLLP into the real store, read back
over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_lead20_visitlast_newborn import _result
from tests.test_placer19_two_patients import nid
from tests.test_recognition_policy_e2e import msh, ts
from tests.test_visit20_reused_numbers import accepted, engine, fhir, one_visit_numbered, pv1, read, send  # noqa: F401


def _admitted(control: str, mrn: str, number: int, name: str, visit: str) -> str:
    """An inpatient admission (A01) of a patient whose sex is not stated (PID-8 U), with his or her ID number."""
    when = ts(10)
    return (msh("HOSPA", "HIS", "ADT^A01^ADT_A01", when, control) + "EVN|A01|" + when + "\n"
            + f"PID|1||{nid(number)}^^^公安部^NNCHN~{mrn}^^^HOSPA^MR||{name}||19700101|U\n" + pv1(visit, when))


@pytest.mark.parametrize("mother_field", ["MRN-U^^^HOSPA^MR", f"{nid(5)}^^^公安部^NNCHN"], ids=["mrn", "id-number"])
def test_a_man_known_by_his_id_number_alone_is_not_the_mother(engine: Engine, mllp: int, fhir: TestClient,
                                                              mother_field: str) -> None:
    """钱五, sex not stated, ID number male (17th digit odd), in bed under V100; a newborn's result under V100
    whose PID-21 names him (by MRN, or by his ID number): refused at PV1-19, nothing filed under his visit."""
    accepted(mllp, _admitted("U1", "MRN-U", 5, "钱^五", "V100"))
    code, errs = send(mllp, _result("U1N", ts(2)[:8], mother_field, ts(1)))
    assert code == "AE" and any(e[2] == "PV1^1^19" for e in errs), (code, errs)
    assert read(fhir, "DiagnosticReport") == []


@pytest.mark.parametrize("mother_field", ["MRN-W^^^HOSPA^MR", f"{nid(6)}^^^公安部^NNCHN"], ids=["mrn", "id-number"])
def test_a_woman_known_by_her_id_number_alone_is_still_the_mother(engine: Engine, mllp: int, fhir: TestClient,
                                                                  mother_field: str) -> None:
    """The same with 赵六, sex not stated, ID number female: the newborn's result is filed under her visit, as
    rooming-in, the newborn its own record."""
    accepted(mllp, _admitted("W1", "MRN-W", 6, "赵^六", "V100"))
    visit = one_visit_numbered(fhir, "V100")
    code, errs = send(mllp, _result("W1N", ts(2)[:8], mother_field, ts(1)))
    assert code == "AA", errs
    (report,) = read(fhir, "DiagnosticReport")
    assert report["encounter"]["reference"] == f"Encounter/{visit['id']}"
    assert report["subject"]["reference"] != visit["subject"]["reference"]
