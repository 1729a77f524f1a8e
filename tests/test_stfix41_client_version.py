"""stfix41: a FHIR client's version that a message filed by the release before stfix40 restated unchanged is still
a client's (``merge_rules._made_by``, its writer mark: ``MergeRules._by_client``) -- the receipt rule now only
chooses among the old messages naming a version, and where it tells them all a version is theirs unless its writer
mark says a client stored it. Real HL7 v2 over ``POST /hl7v2`` and real FHIR PUTs, both backends."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import MessageStore, message_id
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_notback37_kept_whole import _REDRAWN
from tests.test_notback37_kept_whole import _result as _potassium
from tests.test_st41_status_merge_tidy import _filed_by_the_old_release

__all__ = ["engine", "module_http"]

engine = module_eng


def _read(http: TestClient, ref: str) -> dict:
    return http.get(f"/fhir/{ref}").json()


def _tube(http: TestClient, resource: dict) -> str | None:
    """The tube (SPM-2, or the office's identifier) ``resource`` names, read through its Specimen."""
    ref = (resource.get("specimen") or {}).get("reference")
    return _read(http, ref)["identifier"][0]["value"] if ref else None


def test_a_clients_version_an_old_resend_restated_is_still_the_clients(
        engine: Engine, http: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """P of tube A at 09:00; an office's PUT over it naming tube C (a client's version); the LIS's re-send of the
    P at 11:55, filed by the release before stfix40 (no ``unchanged``): it changes nothing, and its Provenance names
    the client's version. After the upgrade the later P of tube B at 12:00, then the late F of 11:50: the final
    comes over the client's version -- tube C (``test_st40_status_leftovers``' control without the re-send). Read
    as the re-send's making, the client's version is dated 11:55, later than the final, and the final took the
    09:00 P's tube A: the receipt rule told the re-send, and the client's version is told by its writer mark."""
    assert b"MSA|AA" in post(http, _potassium("SF41-1A", "20261203090000", "S41", "4.0", "P", tube="SF41S1A"))
    (obs,) = written(engine, http, "SF41-1A", "Observation")
    body = _read(http, f"Observation/{obs['id']}")
    tube = {"resourceType": "Specimen", "identifier": [{"system": "urn:stfix41:office", "value": "SF41S1C"}],
            "subject": body["subject"]}
    created = http.post("/fhir/Specimen", json=tube)
    assert created.status_code == 201, created.text
    body["specimen"] = {"reference": f"Specimen/{created.json()['id']}"}
    assert http.put(f"/fhir/Observation/{obs['id']}", json=body).status_code == 200
    clients = _read(http, f"Observation/{obs['id']}")["meta"]["versionId"]
    resend = message_id("FNXRMYY", "SF41-1R")
    monkeypatch.setattr(MessageStore, "mark_processed", _filed_by_the_old_release({resend}))
    ack = post(http, _potassium("SF41-1R", "20261203115500", "S41", "4.0", "P"))
    monkeypatch.undo()
    assert b"MSA|AA" in ack, ack
    doc = engine.ingestor.messages.get(resend)
    assert doc is not None and "unchanged" not in doc, doc
    assert _read(http, f"Observation/{obs['id']}")["meta"]["versionId"] == clients, err_lines(ack)
    later = _potassium("SF41-1B", "20261203120000", "S41", "5.0", "P", tube="SF41S1B", **_REDRAWN)
    assert b"MSA|AA" in post(http, later)
    assert _tube(http, _read(http, f"Observation/{obs['id']}")) == "SF41S1B"
    ack = post(http, _potassium("SF41-1C", "20261203115000", "S41", "4.1", "F"))
    assert b"MSA|AA" in ack, ack
    result = _read(http, f"Observation/{obs['id']}")
    assert (result["status"], _tube(http, result)) == ("final", "SF41S1C"), (result, err_lines(ack))
