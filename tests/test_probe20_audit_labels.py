"""An AuditEvent shown to a caller some labels are withheld from names no record so labelled,
whether or not that caller is confined to a compartment (twentieth round, probe20).

The nineteenth round kept a V-labelled document out of its *resident's* AuditEvents (audmend19,
audlast19: the entity dropped, an import of nothing they may see left out) and made
``AuditEvent?entity=<the document>`` answer 0 for *every* caller with labels withheld. But a
township clinic's HIS (a system client bound to its institution: neither R nor V) or a clinician's
app searching ``AuditEvent?patient=`` was shown the hospital's import of that document -- its id
and type and the message type MDM^T02 -- and the hospital system's read of it, naming it: what
the ``entity`` search had stopped confirming was listed. Now ``ScopedRepository.admit`` drops
those entities, and such an import, for them too (counted so). Real HL7 over MLLP, real HTTP
through FastAPI, real tokens, the real store (SQLite).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_lead20_provenance_writes import _token

__all__ = ["fhir"]


def _written(engine: Engine, control: str, rtype: str) -> str:
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    (ref,) = [r for r in doc["resources"] if r.startswith(rtype + "/")]
    return ref


def _events(fhir: TestClient, headers: dict[str, str], query: str) -> list[dict[str, Any]]:
    plain = fhir.get(f"/fhir/AuditEvent?{query}&_count=200", headers=headers)
    count = fhir.get(f"/fhir/AuditEvent?{query}&_summary=count", headers=headers)
    assert plain.status_code == 200 and count.status_code == 200, (plain.text, count.text)
    events = [e["resource"] for e in plain.json().get("entry") or ()]
    assert plain.json()["total"] == len(events) == count.json()["total"], query
    return events


def _imports(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if any(c.get("code") == "hl7v2-receive" for c in e.get("subtype") or ())]


def test_a_withheld_document_is_named_by_no_audit_event_of_a_caller_not_shown_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("AV1", "DOC-AV1", "av1.rtf", "V"), document("AV2", "DOC-AV2", "av2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    very, plain = _written(engine, "AV1", "DocumentReference"), _written(engine, "AV2", "DocumentReference")
    pid = _written(engine, "AV1", "Patient").split("/", 1)[1]
    hospital = {"Authorization": f"Bearer {engine.auth.issue_system_token('his')}"}  # the sending hospital: reads all
    assert fhir.get(f"/fhir/{very}", headers=hospital).status_code == 200  # an access, audited
    every = _events(fhir, hospital, f"patient={pid}")
    assert len(_imports(every)) == 2 and sum(very in str(e) for e in every) == 2  # its import and the read

    township = _token(engine, "system", ["system/*.cruds"], extra={"institution": "FNYLWSY"})
    clinician = _token(engine, "user", ["user/*.rs"])
    for who, headers in (("township", township), ("clinician", clinician)):
        assert fhir.get(f"/fhir/{very}", headers=headers).status_code == 404, who
        very_id = very.split("/", 1)[1]
        for query in (f"patient={pid}", f"patient=Patient/{pid}&date=gt2000-01-01", f"patient={pid}&_sort=-date"):
            events = _events(fhir, headers, query)
            assert not any(very_id in str(e) for e in events), (who, query)
        events = _events(fhir, headers, f"patient={pid}")
        # the document it may read: its import shows, naming it and its message type
        imports = _imports(events)
        assert len(imports) == 1 and plain in str(imports[0]) and "MDM" in str(imports[0]), (who, imports)
        # the hospital's read of the withheld document: the access shows, naming the patient only
        reads = [e for e in events if any(((a.get("who") or {}).get("identifier") or {}).get("value") == "his"
                                          for a in e.get("agent") or ())
                 and any(c.get("code") == "read" for c in e.get("subtype") or ())]
        assert len(reads) == 1 and [x["what"]["reference"] for x in reads[0]["entity"] if "what" in x] == [
            f"Patient/{pid}"], (who, reads)
        # and by the document: as for an id nobody has (audlast19's rule, kept)
        assert _events(fhir, headers, f"entity={very}") == _events(fhir, headers, "entity=DocumentReference/none")

