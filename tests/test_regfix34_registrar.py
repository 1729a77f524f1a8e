"""regfix34: rvregistry34's findings of the registrations table fixed, beyond its three probes (which
``tests/test_rvregistry34_probes.py`` keeps, green now).

Real HL7 through ``POST /hl7v2``, the operator's replay, FHIR over ``/fhir`` into the real store, SQLite and
mongomock (one engine a module and backend); the stores a release before the table wrote are reopened from
their folder (SQLite). Each test checks the ACK of the restating message and that the registrar's answer
from the table (``persons._registered``) is the walk's (``persons._walked``) for the same record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import MessageStore, message_id
from engine.repository import trail
from engine.repository.mongo_fhir import MongoFhirBackend
from engine.repository.trail import TRAIL_MARKS
from engine.settings import Settings
from tests.hl7_calls import post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, adt, oru, patients
from tests.test_rvregistry34_probes import _answers, _old_release, _ops, _pid

both = engine_and_client("rf34")


def _marked(engine: Engine, ref: str) -> bool:
    """Is ``ref``'s mark written in the store (not only held by this process)?"""
    return engine.store.collection(TRAIL_MARKS).holds(ref)


def _client(engine: Engine) -> TestClient:
    http = TestClient(create_app(engine))
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rf34", "system/*.cruds")
    return http


# --- finding 4: only a registration's reopen marks ----------------------------------------------------------


def test_a_filed_result_replayed_leaves_its_patient_on_the_table(both: tuple[Engine, TestClient]) -> None:
    """The HIS registers RFO, the LIS's result names it; the operator replays the filed result (after a
    mapping fix, say). Its replay cannot change who registered RFO: the record is not marked, the table
    answers the HIS as the walk does, and the LIS's A08 restating RFO as another person is refused."""
    engine, http = both
    assert ack_code_of(post(http, adt("RFO1", "RFO^^^FNXRMYY^MR", "葛^一", "19610101", "M"))) == "AA"
    result = oru("RFO2", "RFO^^^FNXRMYY^MR", "葛^一", "19610101", "M", "RFOGLU", app="LIS")
    assert ack_code_of(post(http, result)) == "AA"
    ref = _pid(http, "RFO")
    r = http.post(f"/admin/quarantine/{message_id('FNXRMYY', 'RFO2')}/replay", headers=_ops(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    assert not engine.store.collection(TRAIL_MARKS).holds(ref)
    assert _answers(engine, ref) == ("HIS", "HIS")
    ack = post(http, adt("RFO3", "RFO^^^FNXRMYY^MR", "葛^二", "19920202", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE" and b"PID^1^3" in ack, ack


def test_a_filed_registration_replayed_stays_marked_after_its_refiling(both: tuple[Engine, TestClient]) -> None:
    """The HIS's filed A04 of RFR replayed as it was: the reopen marks RFR (its rows say what it
    registered as filed, a replay with corrected bytes may say otherwise), and the refiling keeps the
    mark -- RFR is answered by the walk from then on, the same answer (the HIS) -- so the LIS's A08
    restating RFR is refused."""
    engine, http = both
    assert ack_code_of(post(http, adt("RFR1", "RFR^^^FNXRMYY^MR", "尹^一", "19610101", "M"))) == "AA"
    ref = _pid(http, "RFR")
    assert not _marked(engine, ref)
    r = http.post(f"/admin/quarantine/{message_id('FNXRMYY', 'RFR1')}/replay", headers=_ops(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    assert _marked(engine, ref)
    assert _answers(engine, ref) == ("HIS", "HIS")
    ack = post(http, adt("RFR2", "RFR^^^FNXRMYY^MR", "尹^二", "19920202", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack


# --- finding 6: marks for Patients only -----------------------------------------------------------------------


def test_a_client_provenance_marks_only_the_patients_it_names(both: tuple[Engine, TestClient]) -> None:
    """A FHIR client's Provenance naming the LIS's Observation of RFP and RFP: RFP is marked (the walk
    answers it: a Provenance of no message, "cannot be told"); the Observation is not (nothing asks)."""
    engine, http = both
    assert ack_code_of(post(http, adt("RFP1", "RFP^^^FNXRMYY^MR", "于^一", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, oru("RFP2", "RFP^^^FNXRMYY^MR", "于^一", "19610101", "M", "RFPGLU"))) == "AA"
    ref = _pid(http, "RFP")
    found = http.get("/fhir/Observation", params={"subject": ref}).json()
    (obs,) = [f"Observation/{e['resource']['id']}" for e in found.get("entry", [])]
    prov = {"resourceType": "Provenance", "recorded": "2026-12-01T10:00:00+08:00",
            "target": [{"reference": obs}, {"reference": ref}], "agent": [{"who": {"display": "ward clerk"}}]}
    r = http.post("/fhir/Provenance", json=prov)
    assert r.status_code == 201, r.text
    assert _marked(engine, ref) and not engine.store.collection(TRAIL_MARKS).holds(obs)
    assert _answers(engine, ref) == (None, None)
    ack = post(http, adt("RFP3", "RFP^^^FNXRMYY^MR", "于^二", "19920202", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack


# --- finding 1: what a release before the table wrote, seen at the next open -----------------------------------


def _open(settings: Settings) -> tuple[Engine, TestClient]:
    engine = Engine(settings)
    return engine, _client(engine)


def test_a_client_provenance_written_during_a_rollback_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This release files the HIS's A04 of RFC (row: the HIS). The site rolls back; the release before
    the table marks nothing, and a FHIR client deletes the A04's Provenance and writes its own naming RFC
    (the trail no longer the feed's). Upgraded again, the newest Provenance (the client's, its record
    unmarked) tells the start the table missed writes: RFC walks -- "cannot be told", as regfix33
    pinned for a deleted registration Provenance -- and the LIS's A08 restating it is refused. The epoch
    moves once: the next open, with nothing new, keeps it."""
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)
    engine, http = _open(settings)
    with engine, http:
        assert ack_code_of(post(http, adt("RFC1", "RFC^^^FNXRMYY^MR", "柏^一", "19610101", "M"))) == "AA"
        ref = _pid(http, "RFC")
        began = engine.ingestor.messages.registrations_epoch()
        assert began["predates"] is False
    with monkeypatch.context() as old:
        _old_release(old)
        engine, http = _open(settings)
        with engine, http:
            (prov,) = [r for r in engine.ingestor.messages.get(message_id("FNXRMYY", "RFC1"))["resources"]
                       if r.startswith("Provenance/")]
            assert http.delete(f"/fhir/{prov}").status_code in (200, 204)
            r = http.post("/fhir/Provenance", json={"resourceType": "Provenance", "recorded": "2026-12-01T10:00:00Z",
                                                    "target": [{"reference": ref}],
                                                    "agent": [{"who": {"display": "ward clerk"}}]})
            assert r.status_code == 201, r.text
            assert not _marked(engine, ref)
    engine, http = _open(settings)
    with engine, http:
        epoch = engine.ingestor.messages.registrations_epoch()
        assert epoch["predates"] is True and epoch["since"] > began["since"] and epoch["began"] == began["since"]
        assert _answers(engine, ref) == (None, None)
        ack = post(http, adt("RFC2", "RFC^^^FNXRMYY^MR", "柏^二", "19920202", "F", event="A08", app="LIS"))
        assert ack_code_of(ack) == "AE", ack
    engine, http = _open(settings)
    with engine, http:
        assert engine.ingestor.messages.registrations_epoch() == epoch


def test_a_store_this_release_filed_alone_keeps_its_epoch(tmp_path: Path) -> None:
    """No release before the table ever ran: every filing is stamped, the newest Provenance is the
    feed's, and each reopen keeps the epoch (no walk for records the table holds): the table answers
    the HIS for RFN, as the walk does."""
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)
    engine, http = _open(settings)
    with engine, http:
        assert ack_code_of(post(http, adt("RFN1", "RFN^^^FNXRMYY^MR", "岑^一", "19610101", "M"))) == "AA"
        assert ack_code_of(post(http, oru("RFN2", "RFN^^^FNXRMYY^MR", "岑^一", "19610101", "M", "RFNGLU"))) == "AA"
        epoch = engine.ingestor.messages.registrations_epoch()
    for _ in range(2):
        engine, http = _open(settings)
        with engine, http:
            assert engine.ingestor.messages.registrations_epoch() == epoch
            ref = _pid(http, "RFN")
            assert engine.ingestor.messages.registrations_of(ref)
            assert _answers(engine, ref) == ("HIS", "HIS")


# --- finding 7: the mark of what a failed undo left fails closed ------------------------------------------------


def test_a_mark_that_cannot_be_written_is_held_and_the_registrar_fails_closed(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """mongomock (a standalone server's undo journal): the HIS's A04 of RFK fails after its writes, the
    undo of its FHIR versions fails (RFK's Patient and the A04's Provenance stay stored), and so does the
    note of what stayed (the store failing). The walk reads the Provenance of a registration not filed:
    "cannot be told"; the table (no row) would read "unregistered" and accept the LIS's A08 with a
    warning. The mark is held in the process: RFK walks at once, the A08 is refused, and the next mark
    written once the store takes writes again (a client's Provenance of another record) writes it."""
    armed = {"on": False}
    real_put_back, real_mark, real_note = MongoFhirBackend._put_back, trail.mark, MessageStore.note_registrations

    def put_back(self: MongoFhirBackend, *args: Any, **kwargs: Any) -> Any:
        if armed["on"]:
            raise OSError("the connection was lost during the undo")
        return real_put_back(self, *args, **kwargs)

    def mark(store: Any, refs: Any, why: str) -> None:
        if armed["on"] and refs:
            raise OSError("the store is failing")
        real_mark(store, refs, why)

    def then_fail(self: MessageStore, doc_id: str, doc: Any, records: Any) -> None:
        real_note(self, doc_id, doc, records)
        if records:
            armed["on"] = True
            raise OSError("the disk went away after the registration was written")

    monkeypatch.setattr(MongoFhirBackend, "_put_back", put_back)
    monkeypatch.setattr(trail, "mark", mark)
    with Engine(settings.with_(mongodb_uri="mongomock://")) as engine, _client(engine) as http:
        monkeypatch.setattr(MessageStore, "note_registrations", then_fail)
        ack = post(http, adt("RFK1", "RFK^^^FNXRMYY^MR", "路^一", "19610101", "M"))
        assert ack_code_of(ack) != "AA", ack
        armed["on"] = False
        monkeypatch.setattr(MessageStore, "note_registrations", real_note)
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", "RFK1"))
        assert doc is not None and doc["status"] == "received" and not engine.ingestor.messages.registrations_of(
            ref := _pid(http, "RFK"))
        assert not _marked(engine, ref) and trail.marked(engine.store, ref)  # held, not written
        assert _answers(engine, ref) == (None, None)
        ack = post(http, adt("RFK2", "RFK^^^FNXRMYY^MR", "路^二", "19920202", "F", event="A08", app="LIS"))
        assert ack_code_of(ack) == "AE", ack
        assert ack_code_of(post(http, adt("RFJ1", "RFJ^^^FNXRMYY^MR", "路^三", "19630303", "M"))) == "AA"
        other = _pid(http, "RFJ")
        r = http.post("/fhir/Provenance", json={"resourceType": "Provenance", "recorded": "2026-12-01T10:00:00Z",
                                                "target": [{"reference": other}],
                                                "agent": [{"who": {"display": "ward clerk"}}]})
        assert r.status_code == 201, r.text
        assert _marked(engine, ref) and _marked(engine, other)
        assert patients(http, f"{MRN}|RFK")
