"""time43b: a derived time's mark (``urn:huren:StructureDefinition:time-taken-from`` in ``_effectiveDateTime``) is the
converter's alone, and a stated day is stated (review rv43d MED 3 and 4 of time43).

- A FHIR client's write (POST, PUT, a transaction's entry) states its time: the mark it carries (kept from a read, as
  R4 clients keep extensions they do not understand, or forged) is not stored (``merge_rules.clients_times``, asked
  by ``Writes._store`` for the ``api`` writer) -- unless the time is written back exactly as stored with its mark
  (a note edited): then it is still the converter's derivation and follows a later OBR-7.
- OBX-14 stating the result's day alone over a derived instant of that day keeps the instant (``not_thinner``) and
  makes it stated (``_twin_follows``): a later OBR-7 with OBX-14 empty -- another day, or another hour of that day --
  does not move it; a later OBX-14 still does.

Real HL7 v2 through ``POST /hl7v2`` and real FHIR writes over HTTP into the real store, both backends."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import post
from tests.module_store import module_eng, module_eng_http
from tests.test_rv43d_probes import _lab, _marked, _obs

__all__ = ["module_eng", "module_eng_http"]  # (``http``)

TAKEN_FROM = "urn:huren:StructureDefinition:time-taken-from"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
OTHER = {"url": "urn:example:client-note", "valueString": "checked at the bench"}


def _as_read(o: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``o`` as a client writes it back: its read body without ``meta``, ``changes`` applied."""
    return {k: v for k, v in o.items() if k != "meta"} | changes


def test_a_client_writing_the_time_back_as_stored_keeps_the_converters_mark(module_eng: Engine,
                                                                            http: TestClient) -> None:
    """Guard: a client adding a note to a result whose time OBR-7 dated, its time and twin written back as read,
    leaves the derivation the converter's -- the LIS's later report moving OBR-7 (OBX-14 empty) moves the result."""
    assert ack_code_of(post(http, _lab("TB1a", "LTB1", "TB1C", "20261201083000"))) == "AA"
    o = _obs(http, "TB1C")
    assert _marked(o), o
    r = http.put(f"/fhir/Observation/{o['id']}", headers=FHIR_JSON,
                 content=json.dumps(_as_read(o, note=[{"text": "haemolysed, repeated"}])))
    assert r.status_code == 200, r.text
    o = _obs(http, "TB1C")
    assert _marked(o) and o["note"] == [{"text": "haemolysed, repeated"}], o
    assert ack_code_of(post(http, _lab("TB1b", "LTB1", "TB1C", "20261201084000"))) == "AA"
    assert _obs(http, "TB1C")["effectiveDateTime"] == "2026-12-01T08:40:00+08:00"


def test_a_clients_create_and_transaction_state_their_times(module_eng: Engine, http: TestClient) -> None:
    """A client's POST forging the mark on the time it states, and a transaction's PUT correcting a derived time
    with the mark (and an extension of its own) kept in the twin: stored without the mark, the client's other
    extension kept; the LIS's later re-send with OBX-14 empty and another OBR-7 does not move the client's time."""
    assert ack_code_of(post(http, _lab("TB2a", "LTB2", "TB2C", "20261201083000"))) == "AA"
    o = _obs(http, "TB2C")
    twin = {"extension": [OTHER, *o["_effectiveDateTime"]["extension"]]}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _as_read(o, effectiveDateTime="2026-12-01T09:15:00+08:00", _effectiveDateTime=twin),
         "request": {"method": "PUT", "url": f"Observation/{o['id']}"}}]}
    r = http.post("/fhir", headers=FHIR_JSON, content=json.dumps(bundle))
    assert r.status_code == 200, r.text
    o = _obs(http, "TB2C")
    assert o["effectiveDateTime"] == "2026-12-01T09:15:00+08:00" and o["_effectiveDateTime"] == {"extension": [OTHER]}
    assert ack_code_of(post(http, _lab("TB2b", "LTB2", "TB2C", "20261201084000"))) == "AA"
    assert _obs(http, "TB2C")["effectiveDateTime"] == "2026-12-01T09:15:00+08:00"

    made = {k: v for k, v in _as_read(o).items() if k not in ("id", "_effectiveDateTime", "identifier", "note")}
    made |= {"code": {"text": "glucose, bedside"}, "effectiveDateTime": "2026-12-01T07:00:00+08:00",
             "_effectiveDateTime": {"extension": [{"url": TAKEN_FROM, "valueString": "OBR-7"}]}}
    r = http.post("/fhir/Observation", headers=FHIR_JSON, content=json.dumps(made))
    assert r.status_code == 201, r.text
    stored = http.get(f"/fhir/Observation/{r.json()['id']}").json()
    assert stored["effectiveDateTime"] == "2026-12-01T07:00:00+08:00" and "_effectiveDateTime" not in stored, stored


def test_a_stated_day_holds_against_a_derived_time_of_that_day(module_eng: Engine, http: TestClient) -> None:
    """OBX-14 stating 2026-12-01 alone over OBR-7's 08:30 of that day: 08:30 is kept (not thinner) and reads as
    stated (no mark); a later OBR-7 of 10:00 that day with OBX-14 empty leaves it; a later OBX-14 stating 11:00
    replaces it (a statement over a statement, as before)."""
    assert ack_code_of(post(http, _lab("TB3a", "LTB3", "TB3C", "20261201083000"))) == "AA"
    assert ack_code_of(post(http, _lab("TB3b", "LTB3", "TB3C", "20261201083000", obx14="20261201"))) == "AA"
    o = _obs(http, "TB3C")
    assert o["effectiveDateTime"] == "2026-12-01T08:30:00+08:00" and "_effectiveDateTime" not in o, o
    assert ack_code_of(post(http, _lab("TB3c", "LTB3", "TB3C", "20261201100000"))) == "AA"
    assert _obs(http, "TB3C")["effectiveDateTime"] == "2026-12-01T08:30:00+08:00"
    assert ack_code_of(post(http, _lab("TB3d", "LTB3", "TB3C", "20261201100000", obx14="20261201110000"))) == "AA"
    o = _obs(http, "TB3C")
    assert o["effectiveDateTime"] == "2026-12-01T11:00:00+08:00" and "_effectiveDateTime" not in o, o
