"""A pre-admission's bed is planned, not occupied (eighteenth round, hl7probe18); over MLLP, read via ``/fhir``.

An A05 (pre-admit) with PV1-2 ``P`` and PV1-3 (the bed assigned) stored the visit ``planned`` but
its location ``active``: the bed read as occupied by a patient not yet admitted. The IG's PV1 map
gives PV1-3 ``Encounter.location.status`` ``planned`` when PV1-2 is P, ``active`` otherwise; the
admission (A01, PV1-2 I) then states the bed ``active`` in its place.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7probe17_visit_parts import adt

VISIT = "VP18^^^FNXRMYY^VN"


def test_a_preadmitted_patients_bed_is_planned_until_the_admission(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("P1", "A05", f2="P", f3="内科^301^2", f19=VISIT))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    (planned,) = written(engine, fhir, "P1", "Encounter")
    assert planned["status"] == "planned"
    assert [loc["status"] for loc in planned["location"]] == ["planned"]

    (ack,) = send(engine, adt("P2", "A01", f2="I", f3="内科^301^2", f19=VISIT, f44="20261202080000"))
    assert ack_code_of(ack) == "AA", ack
    (admitted,) = written(engine, fhir, "P2", "Encounter")
    assert admitted["status"] == "in-progress"
    assert [loc["status"] for loc in admitted["location"]] == ["active"]
    assert admitted["location"][0]["location"] == planned["location"][0]["location"]
