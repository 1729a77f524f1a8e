"""registry34: who registered a record, answered by the registrations table the filing writes.

Real HL7 over ``POST /hl7v2``, the operator's replay, FHIR over ``/fhir``, into real stores (SQLite and
mongomock, one engine a module and backend; a store reopened from its folder on SQLite). The table
(``hl7_registrations``) is written in the transaction that files a registering message
(``MessageStore.note_registrations``); ``adapters.convert.persons._registered`` reads it in one query,
and walks the record's Provenances as before only where the table's word is not the whole truth: a
Provenance a FHIR client wrote or deleted (``engine.repository.trail``), a filed message reopened, or a
record older than the table on a store that filed messages before it. The rules themselves are the
ones regapp33, regfix33, rvregapp33 and member33 pinned (their tests run unchanged)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import adapters.convert.persons as persons
from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import MessageStore, message_id
from engine.repository.trail import TRAIL_MARKS
from engine.settings import Settings
from tests.hl7_calls import post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, adt, merge, oru, patients

both = engine_and_client("r34")


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The records the registrar answered by walking their Provenances (the real walk, counted)."""
    seen: list[str] = []
    walk = persons._walked

    def counted(ref: str, *args: Any) -> str | None:
        seen.append(ref)
        return walk(ref, *args)

    monkeypatch.setattr(persons, "_walked", counted)
    return seen


def _pid(http: TestClient, number: str) -> str:
    (p,) = patients(http, f"{MRN}|{number}")
    return f"Patient/{p['id']}"


def _rows(engine: Engine, ref: str) -> dict[str, dict]:
    return {row["application"]: row for row in engine.ingestor.messages.registrations_of(ref)}


def _marked(engine: Engine, ref: str) -> bool:
    return engine.store.collection(TRAIL_MARKS).holds(ref)


def _restated(ack: bytes) -> bool:
    return ack_code_of(ack) == "AA" and b"restated as another person" in ack


def test_the_filing_keeps_the_first_registration_received_per_application(
        both: tuple[Engine, TestClient], walks: list[str]) -> None:
    """A LIS result makes RGA's placeholder (no row: a result registers no one; the record reads
    "unregistered"); the HIS's A04 registers it (a row naming the A04's document and its received time,
    written before the ACK came back); a later LIS A04 adds the LIS's own row and the HIS's A04 replayed
    by a resend changes nothing. The registrar is the first received: the LIS's A08 restating RGA as
    another person is refused, the HIS's accepted with the W -- answered from the table, no walk."""
    engine, http = both
    assert ack_code_of(post(http, oru("RGA1", "RGA^^^FNXRMYY^MR", "卫^一", "19610101", "M", "RGAGLU"))) == "AA"
    ref = _pid(http, "RGA")
    assert _rows(engine, ref) == {}
    assert persons.unregistered(ref, engine.ingestor.repository.search, engine.ingestor.messages)
    assert ack_code_of(post(http, adt("RGA2", "RGA^^^FNXRMYY^MR", "卫^一", "19610101", "M"))) == "AA"
    his = _rows(engine, ref)["HIS"]
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "RGA2"))
    assert doc is not None and doc["status"] == "processed"
    assert (his["message"], his["received_at"], his["control_id"]) == (doc["_id"], doc["received_at"], "RGA2")
    assert ack_code_of(post(http, adt("RGA3", "RGA^^^FNXRMYY^MR", "卫^一", "19610101", "M", app="LIS"))) == "AA"
    assert ack_code_of(post(http, adt("RGA2", "RGA^^^FNXRMYY^MR", "卫^一", "19610101", "M"))) == "AA"  # resend
    rows = _rows(engine, ref)
    assert set(rows) == {"HIS", "LIS"} and rows["HIS"] == his and rows["LIS"]["received_at"] > his["received_at"]
    ack = post(http, adt("RGA4", "RGA^^^FNXRMYY^MR", "韦^二", "19920202", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE" and b"PID^1^3" in ack, ack
    assert _restated(post(http, adt("RGA5", "RGA^^^FNXRMYY^MR", "韦^二", "19920202", "F", event="A08")))
    assert ref not in walks and not _marked(engine, ref)


def test_a_merge_registers_its_survivor_in_the_table(both: tuple[Engine, TestClient], walks: list[str]) -> None:
    """The HIS registers RGM and merges it (A40) into RGN, a number the merge names first: the merge's
    row makes the HIS RGN's registrar (rvregapp33 finding 6), and the LIS's A08 on RGN is refused."""
    engine, http = both
    assert ack_code_of(post(http, adt("RGM1", "RGM^^^FNXRMYY^MR", "蒋^一", "19610101", "M"))) == "AA"
    ack = post(http, merge("RGM2", "RGN^^^FNXRMYY^MR", "蒋^一", "19610101", "M", "RGM^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    survivor = _pid(http, "RGN")
    assert _rows(engine, survivor)["HIS"]["message_type"].startswith("ADT^A40")
    ack = post(http, adt("RGM3", "RGN^^^FNXRMYY^MR", "沈^二", "19920202", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack
    assert survivor not in walks


def test_a_fhir_clients_provenance_write_marks_the_record_and_the_walk_answers(
        both: tuple[Engine, TestClient], walks: list[str]) -> None:
    """The feed's own writes mark nothing. A FHIR client's POST of a Provenance naming RGC (no message,
    no activity) marks RGC in the transaction of the write; from then on RGC is answered as before the
    table -- "cannot be told" here, so the LIS's A08 is refused though the table holds no registration of
    RGC (alone, the table would have said "unregistered" and accepted it). A DELETE of the HIS A04's
    Provenance of RGD marks RGD (before and after versions are read): even the HIS's restatement is
    refused, as regfix33 pinned."""
    engine, http = both
    assert ack_code_of(post(http, oru("RGC1", "RGC^^^FNXRMYY^MR", "韩^一", "19610101", "M", "RGCGLU"))) == "AA"
    rgc = _pid(http, "RGC")
    assert not _marked(engine, rgc)
    prov = {"resourceType": "Provenance", "target": [{"reference": rgc}], "recorded": "2026-12-01T10:00:00+08:00",
            "agent": [{"who": {"display": "ward clerk"}}]}
    r = http.post("/fhir/Provenance", json=prov)
    assert r.status_code == 201, r.text
    assert _marked(engine, rgc) and _rows(engine, rgc) == {}
    ack = post(http, adt("RGC2", "RGC^^^FNXRMYY^MR", "杨^二", "19920202", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack
    assert rgc in walks

    assert ack_code_of(post(http, adt("RGD1", "RGD^^^FNXRMYY^MR", "朱^一", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, adt("RGD2", "RGD^^^FNXRMYY^MR", "朱^壹", "19610101", "M", event="A08"))) == "AA"
    rgd = _pid(http, "RGD")
    assert not _marked(engine, rgd) and "HIS" in _rows(engine, rgd)
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "RGD1"))
    assert doc is not None
    (a04_prov,) = [r for r in doc["resources"] if r.startswith("Provenance/")]
    r = http.delete(f"/fhir/{a04_prov}")
    assert r.status_code in (200, 204), r.text
    assert _marked(engine, rgd)
    ack = post(http, adt("RGD3", "RGD^^^FNXRMYY^MR", "秦^三", "19930303", "F", event="A08"))
    assert ack_code_of(ack) == "AE" and b"PID^1^3" in ack, ack


def test_a_replayed_filed_registration_is_answered_by_the_walk(both: tuple[Engine, TestClient]) -> None:
    """The operator reopens a filed A04 (any stored message may be replayed): until it is filed again its
    registration is not the table's alone, so its records are marked (the walk, which reads the trail,
    answers them: the registrar keeps its record, regfix33's rule)."""
    engine, http = both
    assert ack_code_of(post(http, adt("RGR1", "RGR^^^FNXRMYY^MR", "何^一", "19610101", "M"))) == "AA"
    ref = _pid(http, "RGR")
    ops = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}
    r = http.post(f"/admin/quarantine/{message_id('FNXRMYY', 'RGR1')}/replay", headers=ops)
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    assert _marked(engine, ref)
    assert ack_code_of(post(http, adt("RGR2", "RGR^^^FNXRMYY^MR", "吕^二", "19920202", "F", event="A08",
                                      app="LIS"))) == "AE"
    assert _restated(post(http, adt("RGR3", "RGR^^^FNXRMYY^MR", "吕^二", "19920202", "F", event="A08")))


def test_no_registration_is_kept_without_its_message_filed(
        both: tuple[Engine, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    """One transaction: the registration row is written inside the block that files the message (and its
    resources), so no crash can leave one without the other. Shown by failing the block right after the
    row is written (the real ``note_registrations`` runs, then the block raises): the message is not
    filed, and neither its row nor its Patient is stored -- on SQLite (a rollback) and on mongomock (the
    undo journal) alike. The same message replayed once the fault is gone is filed with its row."""
    engine, http = both
    real = MessageStore.note_registrations

    def then_fail(self: MessageStore, doc_id: str, doc: Any, records: Any) -> None:
        real(self, doc_id, doc, records)
        if records:
            assert self.registrations_of(sorted(records)[0])  # written, inside the block
            raise OSError("the disk went away after the registration was written")

    monkeypatch.setattr(MessageStore, "note_registrations", then_fail)
    ack = post(http, adt("RGK1", "RGK^^^FNXRMYY^MR", "孙^一", "19610101", "M"))
    assert ack_code_of(ack) != "AA", ack
    assert patients(http, f"{MRN}|RGK") == []
    assert engine.store.collection("hl7_registrations").find({"control_id": "RGK1"}) == []
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "RGK1"))
    assert doc is not None and doc["status"] != "processed"
    monkeypatch.setattr(MessageStore, "note_registrations", real)
    ops = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}
    r = http.post(f"/admin/quarantine/{doc['_id']}/replay", headers=ops)
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    assert _rows(engine, _pid(http, "RGK"))["HIS"]["message"] == doc["_id"]


# --- a store that filed messages before the table -------------------------------------------------------


def _as_before_the_table(engine: Engine) -> None:
    """Leave the store as the code before registry34 left it: no registrations, no epoch."""
    with engine.store.transaction():
        rows = engine.store.collection("hl7_registrations")
        for row in rows.find({}):
            rows.delete(row["_id"])
        engine.store.collection("hl7_census").delete("registrations")


def test_a_store_filed_before_the_table_answers_its_old_records_by_the_walk(tmp_path: Path) -> None:
    """SQLite, reopened from its folder. Before the table: the HIS registers RGO. Reopened by this code
    (the epoch notes that messages were filed before it): the LIS's later A04 of RGO writes the only row
    of RGO -- alone, the table would make the LIS its registrar. RGO is older than the table, so the walk
    answers: the HIS, first received. A record first written since the reopen (RGP) is the table's."""
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("r34", "system/*.cruds")
        assert engine.ingestor.messages.registrations_epoch()["predates"] is False
        assert ack_code_of(post(http, adt("RGO1", "RGO^^^FNXRMYY^MR", "冯^一", "19610101", "M"))) == "AA"
        _as_before_the_table(engine)
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("r34", "system/*.cruds")
        assert engine.ingestor.messages.registrations_epoch()["predates"] is True
        old = _pid(http, "RGO")
        assert ack_code_of(post(http, adt("RGO2", "RGO^^^FNXRMYY^MR", "冯^一", "19610101", "M", app="LIS"))) == "AA"
        assert set(_rows(engine, old)) == {"LIS"}
        search, messages = engine.ingestor.repository.search, engine.ingestor.messages
        assert persons._table(old, engine.ingestor.repository, messages) is None
        assert persons._registered(old, search, messages) == "HIS"
        ack = post(http, adt("RGO3", "RGO^^^FNXRMYY^MR", "陈^二", "19920202", "F", event="A08", app="LIS"))
        assert ack_code_of(ack) == "AE", ack
        assert ack_code_of(post(http, adt("RGP1", "RGP^^^FNXRMYY^MR", "褚^一", "19610101", "M"))) == "AA"
        new = _pid(http, "RGP")
        assert persons._table(new, engine.ingestor.repository, messages) is not None
        assert persons._registered(new, search, messages) == "HIS"
    with Engine(settings) as engine:  # the epoch is kept: a later start does not take the store for a new one
        assert engine.ingestor.messages.registrations_epoch()["predates"] is True
