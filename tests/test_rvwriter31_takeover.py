"""rvwriter31: the ADT's take-over of a visit (merge.yaml ``Encounter.subject.takes_over``, writer31) reaches
visits that are no lab placeholder, and joins two of the HIS's own patient records under one visit number.

writer31 takes the stored version's writer (``StoredResource.writer``) as "the result feed's placeholder" when
it is a result or an order message, on the ground that "result and order messages write a visit only when none
is stored (create_only), so a current version they wrote is a placeholder". Both tests below send real HL7 over
MLLP into the real store (SQLite and mongomock) and read back over FHIR.
"""

# ruff: noqa: F811 -- the fixtures imported from test_visit20_reused_numbers are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_placer19_two_patients import pid
from tests.test_recognition_policy_e2e import msh, ts
from tests.test_visit20_reused_numbers import (  # noqa: F401 -- fixtures
    CBC,
    accepted,
    adt,
    engine,
    fhir,
    one_visit_numbered,
    oru,
    patient_id,
    pv1,
    read,
    send,
)

ONE = ("MRN-V1", None, "李^一")  # the HIS's patient admitted under V100 (no ID number on file)
NAMESAKE = ("MRN-V2", None, "李^一")  # another record of the same HIS: same name, born the same day


def _refused_at_the_visit_number(mllp: int, text: str) -> None:
    code, errs = send(mllp, text)
    assert code == "AE", errs
    (err,) = [e for e in errs if e[4] == "E"]
    assert err[2] == "PV1^1^19" and err[3].startswith("205^"), err


def _order_with_a_diagnosis(control: str, who: tuple[str, int | None, str], visit: str, placer: str,
                            when: str) -> str:
    """The HIS's own order (ORM^O01, NW) under the visit, its DG1 a diagnosis of the visit (dg25)."""
    return (msh("HOSPA", "HIS", "ORM^O01^ORM_O01", when, control) + pid(*who) + pv1(visit, when)
            + f"ORC|NW|{placer}^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|1|{placer}^HIS||{CBC}|||{when}\n"
            + "DG1|1||J18.9^肺炎^ICD10|||A\n")


def test_an_order_diagnosis_turns_an_admitted_visit_into_a_placeholder_another_patient_takes_over(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    """FINDING (HIGH). An order message does not write a visit "only when none is stored": its DG1 is a
    diagnosis of the visit (``lis.py``: ``his.visit_diagnosis`` -> ``ctx.only(encounter, "diagnosis")``
    takes the visit out of ``create_only``), so the HIS's ORM with a DG1 writes a new version of the
    visit the ADT admitted, and the store marks that version ``ORM``. writer31 then reads the visit as
    the result/order feed's placeholder: an A01 for another of the HIS's patients under the same visit
    number (a reused number; a namesake with no ID number, so the index does not know them apart) takes
    the admitted patient's visit over -- the first patient's stay, its diagnoses and every result filed
    under it now under the second patient -- where writer31's own guard test says a visit the ADT
    stated is no placeholder and the second admission is refused at PV1-19 (as it is without the ORM, and
    as it was before writer31 with it). Seen on this branch: the A01 is answered AA with no ERR (the take-over
    is an information issue only), the visit's subject becomes MRN-V2 and its ``diagnosis`` still lists
    MRN-V1's Condition (J18.9, subject MRN-V1) -- one patient's stay carrying another's diagnosis, which the
    insurance's readmission check (``split_admissions``) reads as the stay's -- and MRN-V1's report points
    at MRN-V2's stay."""
    accepted(mllp, adt("A01", "A01-1", ONE, "V100", ts(4)))
    admitted = one_visit_numbered(fhir, "V100")
    one = patient_id(fhir, "MRN-V1")
    assert admitted["subject"]["reference"] == f"Patient/{one}"
    accepted(mllp, _order_with_a_diagnosis("ORM-1", ONE, "V100", "B8", ts(3)))
    accepted(mllp, oru("ORU-1", ONE, "V100", "B8", "F8", ts(3, 5)))
    visit = one_visit_numbered(fhir, "V100")
    assert visit["subject"]["reference"] == f"Patient/{one}" and visit["meta"]["versionId"] == "2"
    # the ADT's visit, its current version the order message's (the DG1's diagnosis): no placeholder
    assert engine.repository.writers("Encounter", [visit["id"]])[visit["id"]] == "ORM"

    _refused_at_the_visit_number(mllp, adt("A01", "A01-2", NAMESAKE, "V100", ts(2)))
    assert one_visit_numbered(fhir, "V100")["subject"]["reference"] == f"Patient/{one}"


def test_a_lab_placeholder_under_the_his_own_number_is_taken_over_by_another_his_patient(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    """FINDING (MED). The take-over is meant for a placeholder "under the LIS's own patient number (PID-3 PI,
    no ID number)" that the HIS then admits (merge.yaml's comment); the rule never asks whose number the
    placeholder's patient carries. Here the lab names the HIS's own record MRN-V1 (the HIS's MRN, issuer
    HOSPA) under visit V100; the HIS then admits its other record MRN-V2 under V100. The HIS itself keeps
    the two as two patients (two MRNs of one issuer), yet the A01 files MRN-V1's visit under MRN-V2 and
    MRN-V1's results now point at MRN-V2's stay: two of the HIS's patients joined under one visit number,
    which before writer31 was refused at PV1-19 (and still is when the A01 comes first)."""
    accepted(mllp, oru("ORU-1", ONE, "V100", "B8", "F8", ts(3)))
    one = patient_id(fhir, "MRN-V1")
    assert one_visit_numbered(fhir, "V100")["subject"]["reference"] == f"Patient/{one}"

    _refused_at_the_visit_number(mllp, adt("A01", "A01-2", NAMESAKE, "V100", ts(2)))
    assert one_visit_numbered(fhir, "V100")["subject"]["reference"] == f"Patient/{one}"
    (report,) = read(fhir, "DiagnosticReport")
    assert report["subject"]["reference"] == f"Patient/{one}"
