"""What the pipeline keeps of a message's written resources, listed in one pass
(``engine.ingest._listing``): the references in its message document and answer, the audit
record's patients, resources and owners, and the versions its Provenance is pinned to and signed
over -- the same as the separate walks over the resources gave before, for a lab result, a
registration and an imaging report in one batch, on both backends."""

from __future__ import annotations

from typing import Any

import orjson

from bench.ingest import adt_a01, oru_lab, oru_pacs
from engine.audit.events import patients_of
from engine.audit.provenance import verify_provenance
from engine.engine import Engine
from engine.settings import Settings


def _expected_record(resources: list[dict[str, Any]]) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """The audit record's patients, resources and owners as the pipeline worked them out before:
    the references, then the Patient ones' ids and every resource's owners, deduplicated."""
    refs = [f"{r['resourceType']}/{r['id']}" for r in resources if r.get("id")]
    owners = {f"{r['resourceType']}/{r['id']}": patients_of(r) for r in resources if r.get("id") and patients_of(r)}
    patients = [r.split("/", 1)[1] for r in refs if r.startswith("Patient/")]
    patients += [p for whose in owners.values() for p in whose]
    return list(dict.fromkeys(patients)), [r for r in refs if not r.startswith("Patient/")], owners


def test_one_listing_gives_the_documents_audit_records_and_provenances_the_walks_gave(
        backend_settings: Settings) -> None:
    with Engine(backend_settings) as engine:
        converted: dict[str, list[dict[str, Any]]] = {}
        convert = engine.ingestor.convert
        assert convert is not None

        def keep(message: Any, site: Any, **kwargs: Any) -> Any:
            conversion = convert(message, site, **kwargs)
            converted[message.msh.control_id] = [dict(r) for r in conversion.resources]
            return conversion

        engine.ingestor.convert = keep
        before = engine.audit.size
        raws = [oru_lab(41), adt_a01(42), oru_pacs(43), oru_lab(41 + 499)]  # the last: a returning person
        outcomes = engine.ingestor.process([(raw, "mllp", "10.0.0.5:4000") for raw in raws])
        assert [o.code for o in outcomes] == ["AA"] * 4
        records = {}
        for n in range(before, engine.audit.size):
            leaf = engine.audit.get(n)
            assert leaf is not None
            record = orjson.loads(leaf["data"])
            records[dict(record["x"])["message"]] = record
        for outcome in outcomes:
            doc = engine.ingestor.messages.get(outcome.message_id)
            assert doc is not None
            resources = converted[doc["control_id"]]
            refs = [f"{r['resourceType']}/{r['id']}" for r in resources]
            assert outcome.resources == doc["resources"] == refs
            patients, others, owners = _expected_record(resources)
            assert outcome.owners == owners
            record = records[outcome.message_id]
            assert record["pat"] == patients and record["res"] == others[: len(record["res"])]
            assert dict(record.get("own") or ()) == {r: p for r, p in owners.items() if r in record["res"]}
            # the Provenance names every other resource's stored version, and its signature holds
            ref = next(r for r in refs if r.startswith("Provenance/"))
            provenance = engine.repository.read(*ref.split("/"))
            assert [t["reference"].split("/_history/")[0] for t in provenance["target"]] == [
                r for r in refs if not r.startswith("Provenance/")]
            targets = [engine.repository.vread(*t["reference"].replace("/_history/", "/").split("/"))
                       for t in provenance["target"]]
            assert [t["meta"]["versionId"] for t in targets] == [
                t["reference"].rsplit("/", 1)[1] for t in provenance["target"]]
            assert verify_provenance(provenance, targets, engine.audit.keys)
