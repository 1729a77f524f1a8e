"""An update that states nothing about the visit does not reopen it (merge12).

The Encounter's status comes from the trigger event unless PV1 says more (PV1-45 discharged). For
an A08 (update patient information) the event's "in-progress" is an assumption, not a statement:
HIS send A08 after discharge to correct a name or a phone, often with PV1-45 left empty. Feeds
combine ``keep-if-absent``, so the assumed status replaced the "finished" the A03 stated: the
discharged patient read back as still in hospital. The converter now names such a status as
assumed (``vocabulary.yaml`` ``encounter_status_assumed``) and it fills only an Encounter that
has none; a status an event states (A03, A13 cancel discharge) is stored as before.

Real bytes over MLLP into the real store, read back through ``/fhir``; it failed before.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_merge11_kinds import stored


def adt(control: str, event: str, discharged: str = "", name: str = "吴^十") -> bytes:
    return (
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20261105120000||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
        f"EVN|{event}|20261105120000\r"
        f"PID|1||ZY12003^^^FNXRMYY^MR||{name}^^^^^L||19850412|M\r"
        f"PV1|1|I|||||||||||||||||V12003|||||||||||||||||||||||||20261101080000|{discharged}\r"
    ).encode()


def test_an_update_after_discharge_leaves_the_visit_finished(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("E1", "A01"), adt("E2", "A08"))
    assert stored(engine, fhir, "E2", "Encounter")["status"] == "in-progress"
    acks += send(engine, adt("E3", "A03", "20261105100000"), adt("E4", "A08", name="吴^拾"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 4
    assert stored(engine, fhir, "E4", "Encounter")["status"] == "finished"
    assert stored(engine, fhir, "E4", "Patient")["name"][0]["text"] == "吴拾"  # the update itself is stored

    # a cancelled discharge states the visit goes on
    (ack,) = send(engine, adt("E5", "A13"))
    assert stored(engine, fhir, "E5", "Encounter")["status"] == "in-progress"
