"""rv38f: review probes of codedoc38 (merge 8b065f44) -- the SQLite ``on_rollback`` hook and the compensating
audit record of a rolled-back paragraph deletion, and the judgement of who may recode an order.

A probe that shows a defect is a strict xfail naming its severity (a fixer turns it green); one that passes
guards what was found sound. Real HL7 v2 through the ingest path (``POST /hl7v2``; a batch through
``Ingestor.process``, the call the MLLP handler makes, so two messages are written as one batch), read back
over ``/fhir`` (TestClient) and from the audit log, on the real stores (SQLite; mongomock where named).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine import booking_as_sent
from engine.api.app import create_app
from engine.engine import Engine
from engine.repository.sqlite_store import FlatTransactionFailed, SqliteStore
from engine.settings import Settings
from tests.conftest import settings_for_backend
from tests.module_store import module_eng
from tests.test_code37_ris_change import CHEST, HEAD, _changed, _ordered, _ris
from tests.test_codedoc38_document_audit import _deletions
from tests.test_codedoc38_order_owner import _codes, _warned_at_obr4
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import send as send_mllp
from tests.test_convmend20_probes import PID, siu
from tests.test_old37_document_paragraphs import _aa, mdm
from tests.test_old37_sch_sent_as import _found, _with
from tests.test_srfix35_order_code import B, http, oru, send, the_order

__all__ = ["http", "module_eng"]


# --- the compensating audit record of a rolled-back paragraph deletion -------------------------------------


def _hl7(message: str) -> bytes:
    return message.replace("\n", "\r").encode()


def _edit_beside_a_refused_report(eng: Engine, fhir: TestClient, tag: str) -> tuple[str, str, list[str]]:
    """A document of two paragraphs stored; then one batch: the document's edit dropping the second paragraph
    (its copy deleted, the deletion audited) and the RIS's corrected report naming another procedure under its
    filler number -- refused in its write group (AE at OBR^1^4, gfix13/code37), a real failure of another
    message. Returns (the patient's id, the dropped copy's id, the batch's ACK codes)."""
    number = f"DOC-{tag}"
    _aa(eng, mdm(f"{tag}1", "T02", ["第一段", "第二段"], number=number))
    (doc,) = written(eng, fhir, f"{tag}1", "DocumentReference")
    copies = {o["valueString"]: o["id"] for o in written(eng, fhir, f"{tag}1", "Observation")}
    placer = f"R38F-{tag}"
    for message in (_ordered(placer), _ris(oru(placer, item=HEAD))):
        assert [o.code for o in eng.ingestor.process([(_hl7(message), "mllp", "p")])] == ["AA"]
    refused = _hl7(_ris(oru(placer, item=CHEST, status="C")))
    outcomes = eng.ingestor.process([(mdm(f"{tag}2", "T08", ["第一段"], number=number), "mllp", "p"),
                                     (refused, "mllp", "p")])
    return doc["subject"]["reference"].split("/", 1)[1], copies["第二段"], [o.code for o in outcomes]


def _reader(eng: Engine, fhir: TestClient) -> None:
    fhir.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("reader", "system/*.rs")


def test_a_stored_deletion_is_not_compensated_when_another_message_of_its_batch_is_refused(
        settings: Settings) -> None:
    """SQLite. The batch's one-commit attempt fails (the refused report) and is rolled back: its deletion record
    is compensated, rightly. Redone one savepoint a message, the edit's savepoint is released (its deletion
    stored: the copy reads 410) and the refused report's savepoint rolls back -- which must not compensate the
    edit's deletion. What the log must say: one more deletion done ("0") than compensated ("8")."""
    with Engine(settings) as eng, TestClient(create_app(eng)) as fhir:
        _reader(eng, fhir)
        patient, dropped, codes = _edit_beside_a_refused_report(eng, fhir, "H1")
        assert codes == ["AA", "AE"], codes
        assert fhir.get(f"/fhir/Observation/{dropped}").status_code == 410  # (the deletion is stored)
        recorded = _deletions(fhir, patient)
        assert recorded.count("0") == recorded.count("8") + 1, recorded  # (today: ['0', '8', '0', '8'])


def test_on_mongodb_the_stored_deletion_of_a_refused_batch_is_recorded_once(settings: Settings) -> None:
    """Guard (mongomock): the log shares the store, so the one-commit attempt's record is undone with it and
    no compensation is registered; the redo's stored deletion is recorded once, uncompensated."""
    with settings_for_backend("mongomock", settings) as mongo, Engine(mongo) as eng, \
            TestClient(create_app(eng)) as fhir:
        _reader(eng, fhir)
        patient, dropped, codes = _edit_beside_a_refused_report(eng, fhir, "M1")
        assert codes == ["AA", "AE"], codes
        assert fhir.get(f"/fhir/Observation/{dropped}").status_code == 410
        assert _deletions(fhir, patient) == ["0"]


def test_the_compensation_names_the_deletion_record_it_undoes(settings: Settings) -> None:
    """SQLite: a single edit whose write group is refused after the deletion (the batch's attempt, then the
    message alone): each compensation should cite the record it compensates."""
    with Engine(settings) as eng, TestClient(create_app(eng)) as fhir:
        _reader(eng, fhir)
        before = eng.audit.size
        _edit_beside_a_refused_report(eng, fhir, "L1")
        events = [(seq, eng.audit.events(seq, 1)[0]) for seq in range(before, eng.audit.size)]
        deletes = [(seq, e) for seq, e in events if any(c.get("code") == "delete" for c in e.get("subtype") or ())]
        done = [seq for seq, e in deletes if e.get("outcome") == "0"]
        undone = [e for _, e in deletes if e.get("outcome") == "8"]
        assert done and undone, deletes
        first = undone[0]
        assert f"audit-{done[0]}" in str(first.get("entity")), first.get("entity")


# --- SqliteStore.on_rollback itself (the real store, no engine) -------------------------------------------


def test_a_released_savepoints_callback_is_not_fired_by_a_siblings_rollback(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite3")
    coll = store.collection("t")
    fired: list[str] = []
    try:
        with store.transaction():
            with store.transaction():  # message 1: stored
                coll.insert({"_id": "kept"})
                store.on_rollback(lambda: fired.append("message 1"))
            with pytest.raises(ValueError), store.transaction():  # message 2: refused
                coll.insert({"_id": "gone"})
                raise ValueError("message 2 refused")
        assert coll.get("kept") is not None and coll.get("gone") is None
        assert fired == []  # message 1's writes were committed: nothing of it was rolled back
    finally:
        store.close()


def test_on_rollback_fires_once_for_its_block_or_an_outer_one_and_never_after_commit(tmp_path: Path) -> None:
    """Guard: a failed savepoint fires its callbacks once (not again when the transaction around it fails too),
    after the savepoint is undone; the outer block's rollback fires those of the blocks inside it; a commit
    drops them (a later transaction's rollback fires none of them); outside a transaction nothing is kept."""
    store = SqliteStore(tmp_path / "db.sqlite3")
    coll = store.collection("t")
    fired: list[str] = []
    try:
        store.on_rollback(lambda: fired.append("outside"))
        with pytest.raises(RuntimeError), store.transaction():
            with pytest.raises(ValueError), store.transaction():
                coll.insert({"_id": "a"})
                store.on_rollback(lambda: fired.append(f"inner saw a={coll.get('a') is not None}"))
                raise ValueError("inner")
            assert fired == ["inner saw a=False"]  # (fired once the savepoint was undone)
            with store.transaction():
                store.on_rollback(lambda: fired.append("released, then the outer failed"))
            store.on_rollback(lambda: fired.append("outer"))
            raise RuntimeError("outer")
        assert fired == ["inner saw a=False", "released, then the outer failed", "outer"], fired
        with store.transaction():
            store.on_rollback(lambda: fired.append("committed"))
        with pytest.raises(ValueError), store.transaction():
            raise ValueError("a later transaction")
        assert "committed" not in fired and "outside" not in fired, fired
    finally:
        store.close()


def test_a_raising_callback_is_logged_and_neither_hides_the_error_nor_stops_the_others(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Guard: the block's own error is what the caller sees; the failing callback is logged; the next one runs;
    the store is usable after (its lock free for another thread)."""
    store = SqliteStore(tmp_path / "db.sqlite3")
    coll = store.collection("t")
    fired: list[str] = []

    def broken() -> None:
        raise OSError("audit log full")

    try:
        with caplog.at_level(logging.ERROR, logger="engine.repository.sqlite_store"), \
                pytest.raises(KeyError, match="the group's error"), store.transaction():
            store.on_rollback(broken)
            store.on_rollback(lambda: fired.append("second"))
            raise KeyError("the group's error")
        assert fired == ["second"]
        assert any("rollback callback failed" in r.getMessage() for r in caplog.records), caplog.records
        other = threading.Thread(target=lambda: coll.insert({"_id": "after"}))
        other.start()
        other.join(10)
        assert coll.get("after") is not None
    finally:
        store.close()


def test_a_failed_block_inside_a_flat_transaction_fires_its_callback_once(tmp_path: Path) -> None:
    """Guard: inside ``flat_transaction`` a nested block joins the transaction (no savepoint); its failure,
    caught by its caller, spoils the whole, and the whole's rollback fires the callback -- once."""
    store = SqliteStore(tmp_path / "db.sqlite3")
    fired: list[str] = []
    try:
        with pytest.raises(FlatTransactionFailed), store.flat_transaction():
            try:
                with store.transaction():
                    store.on_rollback(lambda: fired.append("joined"))
                    raise ValueError("caught by its caller")
            except ValueError:
                pass
            assert fired == []  # (nothing undone yet: the joined block has no savepoint)
        assert fired == ["joined"]
    finally:
        store.close()


# --- who may recode an order (ORC-1 a filler's statement) ------------------------------------------------


def test_the_fillers_own_xx_under_its_namespace_and_an_oid_recodes_the_order(http: TestClient) -> None:
    """Head CT ordered by the HIS and reported by the RIS; the RIS's XX to chest CT under its filler number as
    many senders write it, namespace and universal id (``F...^RIS^1.2.156.112604.1.2.3^ISO``; EI-2 is MSH-3):
    the filler's own change -- no W at OBR-4, the order chest CT."""
    placer = "R38F-OID"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    own = _changed(placer, CHEST).replace(f"F{placer}^RIS|", f"F{placer}^RIS^1.2.156.112604.1.2.3^ISO|")
    ack = send(http, own)
    assert "MSA|AA" in ack and not _warned_at_obr4(ack), ack
    codes = _codes(the_order(http, placer))
    assert "3001" in codes and "3002" not in codes, codes


def test_the_same_application_at_another_facility_does_not_touch_the_order(http: TestClient) -> None:
    """Guard: a RIS of another institution (MSH-3 RIS, MSH-4 FNXRMYY) sending XX under the same numbers names
    another institution's order: FNZYY's order keeps head CT (no new version)."""
    placer = "R38F-FAC"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    stored = [o for o in _orders(http, placer) if "3002" in _codes(o)]
    assert len(stored) == 1, stored
    other = _changed(placer, CHEST).replace("|RIS|FNZYY|", "|RIS|FNXRMYY|").replace("^^^FNZYY^MR", "^^^FNXRMYY^MR")
    assert "MSA|AA" in send(http, other)
    (after,) = [o for o in _orders(http, placer) if o["id"] == stored[0]["id"]]
    assert after["meta"]["versionId"] == stored[0]["meta"]["versionId"] and "3001" not in _codes(after), after


def test_a_third_applications_assumed_test_gives_way_to_the_placers_order(http: TestClient) -> None:
    """Guard: the LIS's XX (not the numbers' owner) arrives first, for an order not stored yet: its chest CT fills
    the order, only assumed; the HIS's own order (NW, head CT) then states the test: head CT."""
    placer = "R38F-FIRST"
    ack = send(http, _changed(placer, CHEST).replace("|RIS|FNZYY|", "|LIS|FNZYY|", 1))
    assert "MSA|AA" in ack and _warned_at_obr4(ack), ack
    assert "3001" in _codes(the_order(http, placer))
    assert "MSA|AA" in send(http, _ordered(placer))
    codes = _codes(the_order(http, placer))
    assert "3002" in codes and "3001" not in codes, codes


def test_the_lab_that_reported_under_its_filler_number_may_change_the_test(http: TestClient) -> None:
    """The HIS orders head CT; the lab (MSH-3 ``Lab1^1234^CLIA``, a CLIA id, no OID) reports it under the filler
    number as the sample numbers it (EI-2 ``Lab``, EI-3 an OID); the same sender's XX to chest CT under the same
    numbers: its own change, taken."""
    placer, app = "R38F-CLIA", "Lab1^1234^CLIA"
    filler = f"F{placer}^Lab^2.16.840.1.113883.19.3.1.6^ISO"
    send(http, _ordered(placer))
    report = oru(placer, item=HEAD).replace("|LIS|FNZYY|", f"|{app}|FNZYY|", 1).replace(f"F{placer}^LIS|", f"{filler}|")
    assert "MSA|AA" in send(http, report)
    change = _changed(placer, CHEST).replace("|RIS|FNZYY|", f"|{app}|FNZYY|", 1).replace(f"F{placer}^RIS|", f"{filler}|")
    ack = send(http, change)
    assert "MSA|AA" in ack and not _warned_at_obr4(ack), ack
    codes = _codes(the_order(http, placer))
    assert "3001" in codes and "3002" not in codes, codes


# --- SCH-2 as sent under the sender: a copy stored before -----------------------------------------------


def test_an_older_booking_is_found_by_the_senders_as_sent_system(engine: Engine) -> None:
    """As codedoc38's own test makes an older copy (the as-sent identifier written back under ``urn:huren:id:HIS``
    by PUT), then searched by the as-sent system the sender's SCH-2 is now kept under (SQLite) -- after the pass an
    older store's start runs (ord39: ``engine.booking_as_sent``, its marker emptied as an older store has none)."""
    with TestClient(create_app(engine)) as fhir:
        _reader(engine, fhir)
        _older_booking_searched(engine, fhir)


def _older_booking_searched(engine: Engine, fhir: TestClient) -> None:
    (ack,) = send_mllp(engine, siu("OS1", "S12", _with("OS", "BK-OS^HIS"), PID))
    assert ack_code_of(ack) == "AA"
    (booking,) = _found(fhir, "urn:huren:id:FNXRMYY:HIS|BK-OS")
    body = {k: v for k, v in booking.items() if k != "meta"}
    body["identifier"] = [{**i, "system": "urn:huren:id:HIS"} if "coding" not in (i.get("type") or {}) else i
                          for i in booking["identifier"]]
    writer = {"Authorization": "Bearer " + engine.auth.issue_system_token("sched", "system/*.cruds")}
    assert fhir.put(f"/fhir/Appointment/{booking['id']}", json=body, headers=writer).status_code == 200
    assert [b["id"] for b in _found(fhir, "urn:huren:id:HIS|BK-OS")] == [booking["id"]]  # (the old copy, as before)
    engine.store.collection(booking_as_sent.MARKER_COLLECTION).delete("-backfilled")
    assert booking_as_sent.backfill(engine.repository) == 1
    assert [b["id"] for b in _found(fhir, "urn:huren:id:FNXRMYY:HIS|BK-OS")] == [booking["id"]]


def _orders(http: TestClient, placer: str) -> list[dict[str, Any]]:
    found = http.get("/fhir/ServiceRequest", params={"identifier": f"urn:huren:id:HIS|{placer}"}).json()
    return [e["resource"] for e in found.get("entry") or ()]


assert B == "FNZYY"  # (the orders' institution the helpers write under)
