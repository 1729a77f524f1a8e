"""A pre-admission's bed, through the admission, the discharge and a cancel (review of the eighteenth round).

hl7probe18 stored PV1-3 ``planned`` for PV1-2 P (the IG's PV1 map). Encounter.location is combined
keep-if-absent, so an admission that states no bed (A01 without PV1-3) left the A05's bed ``planned``
through the stay and the discharge: a visit in progress, then finished, whose bed was never taken.
The bed stated stays; its status is now the visit's (``merge.yaml`` ``status_follows``): active once
the visit is under way, planned again after a cancelled admission (A11). An A05 with PV1-2 I (as a
Chinese HIS sends it) stored the bed occupied: pre-admit, pending admit and the cancels of an
admission now state PV1-3 planned whatever PV1-2 says. Over MLLP, read via ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7probe17_visit_parts import adt

VISIT = "VF18^^^FNXRMYY^VN"
BED = "内科^301^2"


def beds(engine: Engine, fhir: TestClient, message: bytes) -> tuple[str, list[str]]:  # noqa: F811
    """The visit's status and its locations' statuses once ``message`` is taken (AA)."""
    (ack,) = send(engine, message)
    assert ack_code_of(ack) == "AA", ack
    control = message.split(b"|")[9].decode()
    (visit,) = written(engine, fhir, control, "Encounter")
    return visit["status"], [loc["status"] for loc in visit.get("location", ())]


def test_an_admission_stating_no_bed_takes_the_planned_one(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    assert beds(engine, fhir, adt("F1", "A05", f2="P", f3=BED, f19=VISIT)) == ("planned", ["planned"])
    # was planned: a visit in progress whose bed was never taken
    assert beds(engine, fhir, adt("F2", "A01", f2="I", f19=VISIT, f44="20261202080000")) == ("in-progress", ["active"])
    assert beds(engine, fhir, adt("F3", "A03", f2="I", f19=VISIT, f45="20261205080000")) == ("finished", ["active"])
    (visit,) = written(engine, fhir, "F3", "Encounter")
    assert "301" in str(visit["location"])  # the bed stated is kept, not erased


def test_an_update_stating_no_bed_leaves_a_planned_visits_bed_planned(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    assert beds(engine, fhir, adt("G1", "A05", f2="P", f3=BED, f19=VISIT)) == ("planned", ["planned"])
    assert beds(engine, fhir, adt("G2", "A08", f2="P", f19=VISIT)) == ("planned", ["planned"])


def test_a_preadmission_sent_as_inpatient_is_not_in_its_bed(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    # was active: the bed occupied before the admission
    assert beds(engine, fhir, adt("H1", "A05", f2="I", f3=BED, f19=VISIT)) == ("planned", ["planned"])
    assert beds(engine, fhir, adt("H2", "A01", f2="I", f3=BED, f19=VISIT, f44="20261202080000")) == (
        "in-progress", ["active"])


def test_a_cancelled_admission_leaves_its_bed_planned(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    assert beds(engine, fhir, adt("K1", "A05", f2="P", f3=BED, f19=VISIT)) == ("planned", ["planned"])
    assert beds(engine, fhir, adt("K2", "A01", f2="I", f19=VISIT, f44="20261202080000")) == ("in-progress", ["active"])
    assert beds(engine, fhir, adt("K3", "A11", f2="I", f19=VISIT)) == ("cancelled", ["planned"])
    other = "VF19^^^FNXRMYY^VN"  # the cancel re-sending the admission's PV1, bed included
    assert beds(engine, fhir, adt("L1", "A01", f2="I", f3=BED, f19=other, f44="20261202080000")) == (
        "in-progress", ["active"])
    # was active: the bed of an admission that did not take place
    assert beds(engine, fhir, adt("L2", "A11", f2="I", f3=BED, f19=other)) == ("cancelled", ["planned"])
