"""A routine A08 of a planned visit does not occupy its bed (nineteenth round, conv19).

A pre-admission (A05) stores the visit ``planned`` and PV1-3's bed ``planned``. The HIS then sends
routine A08 updates carrying the visit's whole PV1 -- PV1-2 ``I`` (the class it will be), the bed.
An A08 only assumes its status (the stored ``planned`` stands), but its bed was built ``active``
from PV1-2 and stored so: the bed occupied by a patient not yet admitted, beside a visit that had
not begun. The bed now follows the visit's standing status (``merge.yaml`` ``status_follows``); the
admission (A01) then occupies it. Over MLLP, read via ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_convert11_thinner import fhir  # noqa: F401  (the reader fixture)
from tests.test_hl7fix18_preadmit import BED, beds
from tests.test_hl7probe17_visit_parts import adt

VISIT = "VF19P^^^FNXRMYY^VN"


def test_a_routine_update_of_a_planned_visit_leaves_its_bed_planned(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    assert beds(engine, fhir, adt("P19A", "A05", f2="P", f3=BED, f19=VISIT)) == ("planned", ["planned"])
    # was ("planned", ["active"]): the A08's full PV1 (PV1-2 I) stored the bed occupied
    assert beds(engine, fhir, adt("P19B", "A08", f2="I", f3=BED, f19=VISIT)) == ("planned", ["planned"])
    assert beds(engine, fhir, adt("P19C", "A08", f2="P", f3=BED, f19=VISIT)) == ("planned", ["planned"])
    # the admission takes the bed; a later routine A08 keeps it taken
    assert beds(engine, fhir, adt("P19D", "A01", f2="I", f3=BED, f19=VISIT, f44="20261202080000")) == (
        "in-progress", ["active"])
    assert beds(engine, fhir, adt("P19E", "A08", f2="I", f3=BED, f19=VISIT)) == ("in-progress", ["active"])


def test_an_update_creating_the_visit_states_its_bed_as_sent(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """No visit stored: the A08's status (in-progress) is the visit's, and its bed is occupied."""
    assert beds(engine, fhir, adt("P19F", "A08", f2="I", f3=BED, f19="VF19Q^^^FNXRMYY^VN")) == (
        "in-progress", ["active"])
