"""A patient arriving moves a planned visit on (mfix12).

merge12 listed A09, A10, A32 and A33 among the events whose Encounter status is only assumed (it
fills only an Encounter stored without one), with A08. But the patient leaving or arriving is a
real change of the visit: after an A05 (pre-admit: planned) the A10 (patient arriving) left the
visit planned. Only events that state nothing about the visit (A08, A28, A31, doctor changes)
assume its status.

Real bytes over MLLP into the real store, read back through ``/fhir``; it failed on 6b97b61.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_merge11_kinds import stored


def adt(control: str, event: str) -> bytes:
    return (
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20261106120000||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
        f"EVN|{event}|20261106120000\r"
        "PID|1||ZY12010^^^FNXRMYY^MR||孙^十三^^^^^L||19900304|M\r"
        "PV1|1|I|||||||||||||||||V12010|||||||||||||||||||||||||20261106080000\r"
    ).encode()


def test_a_patient_arriving_after_a_pre_admit_is_in_progress(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("R1", "A05"))
    assert stored(engine, fhir, "R1", "Encounter")["status"] == "planned"
    acks += send(engine, adt("R2", "A10"))
    assert stored(engine, fhir, "R2", "Encounter")["status"] == "in-progress"  # R4: the visit is under way
    # an update that states nothing about the visit leaves it as the A10 made it
    acks += send(engine, adt("R3", "A08"))
    assert stored(engine, fhir, "R3", "Encounter")["status"] == "in-progress"
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3
