"""A Provenance withheld for what it cites (``confidentiality.DERIVED``) is withheld everywhere: not
written over or deleted by a caller who reads it 404, not named or confirmed by an AuditEvent
(the review of probe20; the lead's mend). Written by probe20's reviewer.

Real HL7 over MLLP, real HTTP through FastAPI's TestClient, real tokens, the real store (SQLite,
and mongomock for the contract). The two DEFECT tests fail on 71a9ede; the HELD ones guard what
the review found holding.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document

__all__ = ["fhir"]
CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def _token(engine: Engine, kind: str, scopes: list[str], **kw: Any) -> dict[str, str]:
    """A bearer header for a ``kind`` (user, patient, system) token of ``scopes``: the round-20 label and
    provenance tests' (seven files import it and ``_written``)."""
    token, _ = engine.auth.issue_token(subject=f"{kind}-x", kind=kind, client_id=f"{kind}-app", scopes=scopes, **kw)
    return {"Authorization": f"Bearer {token}"}


def _written(engine: Engine, control: str) -> dict[str, str]:
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    return {ref.split("/", 1)[0]: ref for ref in doc["resources"]}


def _callers(engine: Engine) -> list[tuple[str, dict[str, str]]]:
    return [("clinician", _token(engine, "user", ["user/*.rs"])),
            ("township", _token(engine, "system", ["system/*.cruds"], extra={"institution": "FNYLWSY"}))]


def _total(fhir: TestClient, query: str, headers: dict[str, str]) -> int:
    r = fhir.get(f"/fhir/{query}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["total"]


# -- DEFECT: the AuditEvent screen decides an entity by its own label, not as DERIVED -----------------
def test_an_audit_event_does_not_name_or_confirm_a_withheld_provenance(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """probe20 withholds the V document's Provenance (DERIVED), but ``_find_unseen`` and
    ``_without_unseen_entities`` decide an AuditEvent entity by ``_stored_labelled`` only: the
    Provenance carries no label of its own, so the hospital's read of it is listed to a clinician
    and the bound township HIS naming its id, and ``AuditEvent?entity=Provenance/<id>`` answers
    more than for a made-up id -- it confirms a record they read 404."""
    acks = send(engine, document("RP1", "DOC-RP1", "rp1.rtf", "V"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    prov = _written(engine, "RP1")["Provenance"]
    hospital = {"Authorization": f"Bearer {engine.auth.issue_system_token('his')}"}
    assert fhir.get(f"/fhir/{prov}", headers=hospital).status_code == 200  # an audited access
    prov_id = prov.split("/", 1)[1]
    for who, headers in _callers(engine):
        assert fhir.get(f"/fhir/{prov}", headers=headers).status_code == 404, who
        made_up = _total(fhir, "AuditEvent?entity=Provenance/no-such-provenance", headers)
        assert _total(fhir, f"AuditEvent?entity={prov}", headers) == made_up, who
        listed = fhir.get("/fhir/AuditEvent?agent:identifier=his&_count=200", headers=headers)
        assert listed.status_code == 200
        assert prov_id not in listed.text, (who, "the hospital's read names the withheld Provenance")


# -- DEFECT: a withheld Provenance can be written over and deleted by the caller who reads it 404 -----
def test_a_withheld_provenance_is_not_written_over_nor_deleted(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``check_write`` refuses a record labelled beyond the caller (a V document: DELETE 404), but
    decides by the record's own label only: the V document's Provenance (DERIVED, read 404 by the
    township HIS) is overwritten by its PUT (200, version 2, where a fresh id answers 201) and
    deleted by its DELETE (the sending hospital then reads it 410) -- the message's signed
    provenance lost by a caller that may not know it exists."""
    acks = send(engine, document("RW1", "DOC-RW1", "rw1.rtf", "V"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    w = _written(engine, "RW1")
    prov = w["Provenance"]
    original = fhir.get(f"/fhir/{prov}").json()
    township = dict(_callers(engine))["township"]
    assert fhir.get(f"/fhir/{prov}", headers=township).status_code == 404
    assert fhir.delete(f"/fhir/{w['DocumentReference']}", headers=township).status_code == 404  # the document: refused
    body = {"resourceType": "Provenance", "id": prov.split("/", 1)[1], "recorded": "2026-12-01T00:00:00Z",
            "target": [{"reference": w["Organization"]}], "agent": [{"who": {"reference": w["Organization"]}}]}
    put = fhir.put(f"/fhir/{prov}", json=body, headers=township)
    assert put.status_code == 404, (put.status_code, "written over a Provenance the caller reads 404")
    assert fhir.delete(f"/fhir/{prov}", headers=township).status_code == 404
    assert fhir.get(f"/fhir/{prov}").json() == original  # the hospital's Provenance, as stored


# -- HELD: a label added LATER by a new version withholds Provenance and import at once ---------------
def test_a_document_labelled_later_withholds_its_provenance_and_import(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RL1", "DOC-RL1", "rl1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    w = _written(engine, "RL1")
    pid, prov = w["Patient"].split("/", 1)[1], w["Provenance"]
    callers = _callers(engine)
    before = {who: (_total(fhir, f"Provenance?patient={pid}", h), _total(fhir, f"AuditEvent?patient={pid}", h))
              for who, h in callers}
    assert all(b[0] == 1 for b in before.values()), before
    system = _token(engine, "system", ["system/*.cruds"])
    doc = fhir.get(f"/fhir/{w['DocumentReference']}", headers=system).json()
    doc["securityLabel"] = [{"coding": [{"system": CONF, "code": "V"}]}]
    assert fhir.put(f"/fhir/{w['DocumentReference']}", json=doc, headers=system).status_code == 200
    doc_id = w["DocumentReference"].split("/", 1)[1]
    for who, h in callers:
        assert fhir.get(f"/fhir/{prov}", headers=h).status_code == 404, who
        assert fhir.get(f"/fhir/{prov}/_history/1", headers=h).status_code == 404, who
        assert fhir.get(f"/fhir/{prov}/_history", headers=h).status_code == 404, who
        assert _total(fhir, f"Provenance?patient={pid}", h) == 0, who
        assert _total(fhir, f"Provenance?patient={pid}&_summary=count", h) == 0, who
        page = fhir.get(f"/fhir/AuditEvent?patient={pid}&_count=200", headers=h)
        assert doc_id not in page.text, who
        assert page.json()["total"] == _total(fhir, f"AuditEvent?patient={pid}&_summary=count", h), who
        batch = {"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": f"{prov}/_history/1"}},
            {"request": {"method": "GET", "url": f"AuditEvent?patient={pid}&_count=200"}},
            {"request": {"method": "GET", "url": f"Provenance?patient={pid}&_elements=id"}}]}
        out = fhir.post("/fhir", json=batch, headers=h)
        assert out.status_code == 200, out.text
        entries = out.json()["entry"]
        assert entries[0]["response"]["status"].startswith("404"), who
        assert doc_id not in json.dumps(entries[1]) and entries[2]["resource"]["total"] == 0, who


# -- HELD: the other backend (mongomock) ---------------------------------------------------------------
@pytest.fixture
def mongo_engine(settings: Settings) -> Iterator[Engine]:
    eng = Engine(settings.with_(mongodb_uri="mongomock://"))
    yield eng
    eng.close()


def test_mongomock_withholds_the_provenance_and_the_import(mongo_engine: Engine) -> None:
    from engine.api.app import create_app

    engine = mongo_engine
    acks = send(engine, document("RM1", "DOC-RM1", "rm1.rtf", "V"), document("RM2", "DOC-RM2", "rm2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    very, plain = _written(engine, "RM1"), _written(engine, "RM2")
    pid = very["Patient"].split("/", 1)[1]
    with TestClient(create_app(engine)) as client:
        hospital = {"Authorization": f"Bearer {engine.auth.issue_system_token('his')}"}
        assert _total(client, f"Provenance?patient={pid}", hospital) == 2
        for who, h in _callers(engine):
            found = client.get(f"/fhir/Provenance?patient={pid}", headers=h).json()
            assert [e["resource"]["id"] for e in found.get("entry") or ()] == [plain["Provenance"].split("/")[1]], who
            assert _total(client, f"Provenance?patient={pid}&_summary=count", h) == 1, who
            assert _total(client, f"Provenance?target={very['DocumentReference']}", h) == 0, who
            assert client.get(f"/fhir/{very['Provenance']}", headers=h).status_code == 404, who
            events = client.get(f"/fhir/AuditEvent?patient={pid}&_count=200", headers=h)
            assert very["DocumentReference"].split("/")[1] not in events.text, who
            assert events.json()["total"] == _total(client, f"AuditEvent?patient={pid}&_summary=count", h), who


# -- HELD: paging through a clinician's audit and Provenance lists, totals on every page -----------------
def test_paging_the_lists_keeps_totals_and_names_no_withheld_record(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RG1", "DOC-RG1", "rg1.rtf"), document("RG2", "DOC-RG2", "rg2.rtf", "V"),
                document("RG3", "DOC-RG3", "rg3.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    written = [_written(engine, c) for c in ("RG1", "RG2", "RG3")]
    pid = written[0]["Patient"].split("/", 1)[1]
    very = written[1]["DocumentReference"].split("/", 1)[1]
    hospital = {"Authorization": f"Bearer {engine.auth.issue_system_token('his')}"}
    for w in written:
        assert fhir.get(f"/fhir/{w['DocumentReference']}", headers=hospital).status_code == 200
    for who, h in _callers(engine):
        for rtype, sort in (("AuditEvent", "-date"), ("Provenance", "recorded")):
            whole = fhir.get(f"/fhir/{rtype}?patient={pid}&_sort={sort}&_count=200", headers=h).json()
            ids = [e["resource"]["id"] for e in whole.get("entry") or ()]
            assert whole["total"] == len(ids), (who, rtype)
            seen: list[str] = []
            url: str | None = f"/fhir/{rtype}?patient={pid}&_sort={sort}&_count=1"
            while url:
                page = fhir.get(url, headers=h)
                assert page.status_code == 200, page.text
                body = page.json()
                assert body["total"] == len(ids) and very not in page.text, (who, rtype)
                seen += [e["resource"]["id"] for e in body.get("entry") or ()]
                nxt = [ln["url"] for ln in body.get("link") or () if ln["relation"] == "next"]
                url = nxt[0].split("127.0.0.1:0", 1)[-1] if nxt else None
            assert seen == ids, (who, rtype)
        assert _total(fhir, f"Provenance?patient={pid}", h) == 2, who
