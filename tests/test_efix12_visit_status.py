"""An event that says nothing of the visit does not wipe its status to "unknown" (efix12).

The vocabulary gives an Encounter's status by trigger event; an event it does not list (A37
unlink; A28/A31 make no Encounter at all) gets "unknown", which is not marked assumed. When its PV1-19 names a
stored visit, feeds combine ``keep-if-absent`` and the "unknown" replaced the "finished" an A03
stated: a discharged visit read back as of unknown status. merge.yaml's ``Encounter.status``
``placeholders: [unknown]`` now keeps a stored status against it (as OBX-11's "unknown" for
Observation.status); a visit first stored by such an event is still created with "unknown".

Real bytes over MLLP into the real store, read back through ``/fhir``; failed before the rule.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.merge_rules import field_of, located
from engine.messages import message_id
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_merge11_kinds import stored

PV1 = "PV1|1|I|||||||||||||||||{visit}|||||||||||||||||||||||||20261101080000|{discharged}\r"


def adt(control: str, event: str, discharged: str = "", visit: str = "V12903", structure: str = "ADT_A01") -> bytes:
    return (
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20261105120000||ADT^{event}^{structure}|{control}|P|2.5.1\r"
        f"EVN|{event}|20261105120000\r"
        f"PID|1||ZY12903^^^FNXRMYY^MR||吴^十^^^^^L||19850412|M\r"
        + PV1.format(visit=visit, discharged=discharged)
    ).encode()


def unlink(control: str, visit: str) -> bytes:
    """A37 unlink: two PATIENT groups, the first naming the discharged visit."""
    return (
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20261105130000||ADT^A37^ADT_A37|{control}|P|2.5.1\r"
        f"EVN|A37|20261105130000\r"
        f"PID|1||ZY12903^^^FNXRMYY^MR||吴^十^^^^^L||19850412|M\r"
        + PV1.format(visit=visit, discharged="")
        + "PID|2||ZY12904^^^FNXRMYY^MR||吴^拾^^^^^L||19850412|M\r"
    ).encode()


def test_an_unlink_naming_a_discharged_visit_leaves_it_finished(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("S1", "A01"), adt("S2", "A03", "20261105100000", structure="ADT_A03"))
    assert stored(engine, fhir, "S2", "Encounter")["status"] == "finished"
    acks += send(engine, unlink("S3", "V12903"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "S3"))
    assert doc is not None
    refs = [r for r in doc["resources"] if r.startswith("Encounter/")]
    assert refs, "the A37 names the visit"
    for ref in refs:
        assert fhir.get(f"/fhir/{ref}").json()["status"] == "finished"


def test_a_visit_first_stored_by_such_an_event_is_unknown(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, unlink("S4", "V12905"))
    assert [ack_code_of(a) for a in acks] == ["AA"]
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "S4"))
    assert doc is not None
    (ref,) = [r for r in doc["resources"] if r.startswith("Encounter/")]
    assert fhir.get(f"/fhir/{ref}").json()["status"] == "unknown"


def test_the_located_text_reads_back() -> None:
    """The one writer and the one reader of ``ORC[1]-5`` (ERR-2) agree; other text is not a field."""
    text = located("ORC", 1, 5)
    assert text == "ORC[1]-5"
    assert field_of(text) == ("ORC", 1, 5)
    assert field_of("Encounter.status") is None
    assert field_of("") is None
