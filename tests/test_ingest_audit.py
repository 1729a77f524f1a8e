"""An imported HL7 v2 message's audit record: its facts, signed; the AuditEvent derived on read.

Hospital A's lab sends a 12-result message over MLLP. The signed log keeps the import's facts
(the compact record of ``engine.audit.record``), a fraction of the complete AuditEvent, and the
AuditEvent read back from them is exactly the complete one the pipeline used to sign: the sending
institution as requestor with its address, every patient, every resource and whose it is, the
message's details. The search keys a resident's and an auditor's searches find it by are the
same too, on both backends.
"""

from __future__ import annotations

import asyncio

import orjson

from bench.ingest import oru_lab
from engine.audit.canonical import canonical
from engine.audit.derived import record_keys, stored_keys
from engine.audit.events import build_event
from engine.audit.log import event_id
from engine.audit.record import event_of
from engine.audit.view import views_of
from engine.engine import Engine
from engine.settings import Settings
from tests.test_ingest_durability import exchange, listening


def _complete_event(record: dict, origin: str) -> dict:
    """The complete AuditEvent of an import, built the way the pipeline built it before it signed facts."""
    by = record["by"]
    agent = {"type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110153",
                                  "display": "Source Role ID"}]},
             "who": {"identifier": {"system": "urn:huren:institution", "value": by[1]}}, "requestor": True}
    if by[2]:
        agent["network"] = {"address": by[2], "type": "2"}
    return build_event(action="hl7v2-receive", origin=origin, agents=[agent], outcome=record["out"],
                       patient_ids=record.get("pat", ()), resources=record.get("res", ()),
                       owners=dict(record.get("own") or ()), detail=dict(record["x"]), recorded=record["at"])


def test_an_import_is_signed_as_facts_and_read_back_as_its_complete_audit_event(backend_settings: Settings) -> None:
    with Engine(backend_settings) as engine:
        before = engine.audit.size

        async def send() -> list[bytes]:
            async with listening(engine) as server:
                return await exchange(server.port, oru_lab(7))

        (ack,) = asyncio.run(send())
        assert b"MSA|AA|" in ack
        assert engine.audit.size == before + 1
        leaf = engine.audit.get(before)
        assert leaf is not None
        record = orjson.loads(leaf["data"])
        assert record["f"] == 2 and record["act"] == "hl7v2-receive" and record["by"][:3] == [
            "institution", "FNXRMYY", "127.0.0.1"]
        event = event_of(leaf["data"])
        complete = {**_complete_event(record, engine.audit.origin), "resourceType": "AuditEvent",
                    "id": event_id(before)}
        assert event == complete
        # what it names: the patient, the 12 results among the resources, each said to be the patient's
        patient = record["pat"][0]
        observations = [r for r in record["res"] if r.startswith("Observation/")]
        assert len(observations) >= 12
        assert all(dict(record["own"])[r] == [patient] for r in observations)
        details = {d["type"]: d["valueString"] for e in event["entity"] for d in e.get("detail", [])
                   if d["type"] in ("control-id", "message-type", "channel")}
        assert details == {"control-id": "LAB000000007", "message-type": "ORU^R01", "channel": "mllp"}
        # found by the same keys, shown to the resident the same way, at a fraction of the bytes
        assert stored_keys(leaf["data"]) == (record_keys(complete), complete["recorded"])
        assert views_of(event) == views_of(complete)
        assert len(leaf["data"]) < len(canonical(complete)) / 2


def test_the_provenances_of_a_batch_verify_against_the_stored_versions(backend_settings: Settings) -> None:
    """Three lab messages in one batch: each message's Provenance, signed with the batch's one
    signature, verifies alone against the versions read back from the store; and a returning patient's record (a second message of the
    same person in the batch, whose index links change) does not break the first one's."""
    from engine.audit.provenance import verify_provenance

    with Engine(backend_settings) as engine:
        outcomes = engine.ingestor.process([(oru_lab(n), "mllp", "10.0.0.5:4000") for n in (21, 22, 21 + 499)])  # 21 and 520: one person
        assert [o.code for o in outcomes] == ["AA", "AA", "AA"]
        for outcome in outcomes:
            ref = next(r for r in outcome.resources if r.startswith("Provenance/"))
            provenance = engine.repository.read(*ref.split("/"))
            assert provenance["signature"][-1]["sigFormat"] == "application/jose+json"  # the batch's tree layout
            targets = [engine.repository.vread(*t["reference"].replace("/_history/", "/").split("/"))
                       for t in provenance["target"]]
            assert verify_provenance(provenance, targets, engine.audit.keys)
            tampered = [*targets[:-1], {**targets[-1], "status": "amended"}]
            assert not verify_provenance(provenance, tampered, engine.audit.keys)
            # the signature covers the bytes each backend keeps for those versions, byte for byte
            raw = [engine.repository.backend.version(rtype, rid, int(vid)).body
                   for rtype, rid, _, vid in (t["reference"].split("/") for t in provenance["target"])]
            assert verify_provenance(provenance, raw, engine.audit.keys)
            assert not verify_provenance(provenance, [*raw[:-1], raw[-1].replace(b'"final"', b'"amended"')],
                                         engine.audit.keys)
            assert not verify_provenance(provenance, raw[::-1], engine.audit.keys)
