"""cdfix38: the mends of review rv38f's findings on codedoc38.

- A deletion stored by one message of a batch is not "compensated" when a later message of the batch is
  refused (the SQLite ``on_rollback`` callbacks of a released savepoint pass to the block around it), and
  each compensating record names the deletion record it undoes (``compensates: audit-<seq>``).
- Who fills an order: every form of the filler number's HD (EI-2 namespace, EI-3/EI-4 universal id) is
  compared with every form of MSH-3 and MSH-4, as HL7 defines HD equality; another application's XX is
  held with ERR-3 204 (not 206, which sender engines read as "record locked: retry later").

Real HL7 v2 through the ingest path (a batch through ``Ingestor.process``, the call the MLLP handler makes;
single messages over ``POST /hl7v2``), read back over ``/fhir`` and from the audit log, on the real stores.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings
from tests.module_store import module_eng
from tests.test_code37_ris_change import CHEST, HEAD, _changed, _ordered, _ris
from tests.test_codedoc38_order_owner import _codes, _warned_at_obr4
from tests.test_codefix36_order_code import _errs
from tests.test_conv13_orders import written
from tests.test_old37_document_paragraphs import _aa, mdm
from tests.test_rv38f_probes import _hl7, _reader
from tests.test_srfix35_order_code import http, oru, send, the_order

__all__ = ["http", "module_eng"]

OID = "1.2.156.112604.1.2.3"


# --- a stored deletion and the compensation of the one rolled back -------------------------------------------


def _detail(event: dict[str, Any], name: str) -> str | None:
    return next((d.get("valueString") for e in event.get("entity") or () for d in e.get("detail") or ()
                 if d.get("type") == name), None)


def test_each_compensation_names_a_deletion_rolled_back_and_none_names_one_stored(settings: Settings) -> None:
    """SQLite. Two documents of two paragraphs; then one batch: the first document's edit dropping its second
    paragraph, the RIS's corrected report naming another procedure under its filler number (refused in its
    write group: AE at OBR^1^4), the second document's edit dropping its second paragraph. The one-commit
    attempt fails at the report: the deletion it made is compensated, the compensation naming its record.
    Redone one savepoint a message: both deletions stored (410), and neither is compensated -- the refused
    report's savepoint, a sibling of the first edit's, does not fire the first edit's callback."""
    with Engine(settings) as eng, TestClient(create_app(eng)) as fhir:
        _reader(eng, fhir)
        dropped = {}
        for doc in ("A", "B"):
            _aa(eng, mdm(f"CF{doc}1", "T02", ["第一段", f"第二段{doc}"], number=f"DOC-CF{doc}"))
            dropped[doc] = {o["valueString"]: o["id"] for o in written(eng, fhir, f"CF{doc}1", "Observation")}[
                f"第二段{doc}"]
        placer = "CF38-H1"
        for message in (_ordered(placer), _ris(oru(placer, item=HEAD))):
            assert [o.code for o in eng.ingestor.process([(_hl7(message), "mllp", "p")])] == ["AA"]
        before = eng.audit.size
        outcomes = eng.ingestor.process([
            (mdm("CFA2", "T08", ["第一段"], number="DOC-CFA"), "mllp", "p"),
            (_hl7(_ris(oru(placer, item=CHEST, status="C"))), "mllp", "p"),
            (mdm("CFB2", "T08", ["第一段"], number="DOC-CFB"), "mllp", "p")])
        assert [o.code for o in outcomes] == ["AA", "AE", "AA"], outcomes
        for copy in dropped.values():
            assert fhir.get(f"/fhir/Observation/{copy}").status_code == 410
        events = [(seq, eng.audit.events(seq, 1)[0]) for seq in range(before, eng.audit.size)]
        deletes = [(seq, e) for seq, e in events if any(c.get("code") == "delete" for c in e.get("subtype") or ())]
        done = {f"audit-{seq}": e for seq, e in deletes if e.get("outcome") == "0"}
        undone = [_detail(e, "compensates") for _, e in deletes if e.get("outcome") == "8"]
        # (the attempt stops at the refused report: the first edit's deletion, compensated; the redo's two)
        assert len(done) == 3 and len(undone) == 1, deletes
        assert all(u in done for u in undone), (undone, list(done))
        stored = [ref for ref in done if ref not in undone]
        documents = {_detail(done[ref], "document-number") for ref in stored}
        assert documents == {"DOC-CFA", "DOC-CFB"}, documents  # (each edit's stored deletion, uncompensated)
        assert max(int(u.split("-")[1]) for u in undone) < min(int(r.split("-")[1]) for r in stored)


def test_a_released_blocks_callback_fires_when_the_block_around_it_rolls_back(tmp_path: Path) -> None:
    """The real store: a block released inside a block that then fails was undone with it -- its callback
    fires once, after that block is undone; one released into a transaction that commits never fires; one
    released, beside a sibling that fails, fires when the whole transaction rolls back."""
    store = SqliteStore(tmp_path / "db.sqlite3")
    coll = store.collection("t")
    fired: list[str] = []
    try:
        with store.transaction():
            with pytest.raises(ValueError), store.transaction():
                with store.transaction():
                    coll.insert({"_id": "inner"})
                    store.on_rollback(lambda: fired.append(f"inner undone={coll.get('inner') is None}"))
                raise ValueError("the block around it fails")
            assert fired == ["inner undone=True"]
            with store.transaction(), store.transaction():
                store.on_rollback(lambda: fired.append("committed"))
        assert fired == ["inner undone=True"]
        with pytest.raises(RuntimeError), store.transaction():
            with store.transaction():
                store.on_rollback(lambda: fired.append("released beside a failing sibling"))
            with pytest.raises(ValueError), store.transaction():
                raise ValueError("the sibling")
            assert fired == ["inner undone=True"]  # (the sibling's rollback is not its own)
            raise RuntimeError("the whole transaction fails")
        assert fired == ["inner undone=True", "released beside a failing sibling"], fired
    finally:
        store.close()


# --- who fills the order: HD equality, every form --------------------------------------------------------------


def _sent_by(app: str, message: str) -> str:
    return message.replace("|RIS|FNZYY|", f"|{app}|FNZYY|", 1)


def test_the_fillers_xx_under_its_universal_id_alone_recodes_the_order(http: TestClient) -> None:
    """MSH-3 ``RIS^<OID>^ISO``; the RIS's XX under the filler number ``F...^^<OID>^ISO`` (no namespace, its
    universal id): the sender's own number -- AA without a warning at OBR-4, the order chest CT."""
    placer = "CF38-UID"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    own = _sent_by(f"RIS^{OID}^ISO", _changed(placer, CHEST)).replace(f"F{placer}^RIS|", f"F{placer}^^{OID}^ISO|")
    ack = send(http, own)
    assert "MSA|AA" in ack and not _warned_at_obr4(ack), ack
    codes = _codes(the_order(http, placer))
    assert "3001" in codes and "3002" not in codes, codes


def test_another_application_under_the_fillers_namespace_and_its_own_oid_is_held_with_204(http: TestClient) -> None:
    """The filler number ``F...^RIS^<OID>^ISO``, sent by ``LIS^<another OID>^ISO``: no form of one HD is a form of
    the other -- held: AA, a W at OBR-4 with ERR-3 204 (unknown key identifier), the order still head CT."""
    placer = "CF38-204"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    other = _sent_by("LIS^1.2.156.112604.9.9^ISO", _changed(placer, CHEST)).replace(
        f"F{placer}^RIS|", f"F{placer}^RIS^{OID}^ISO|")
    ack = send(http, other)
    assert "MSA|AA" in ack, ack
    (warned,) = [e for e in _errs(ack) if e[2] == "OBR^1^4" and e[4] == "W"]
    assert warned[3].split("^")[0] == "204", warned
    assert "application LIS" in "|".join(warned), warned
    codes = _codes(the_order(http, placer))
    assert "3002" in codes and "3001" not in codes, codes


def test_a_failed_commit_runs_the_blocks_callbacks_and_leaves_none_behind(tmp_path: Path) -> None:
    """A COMMIT that fails stores nothing (here a deferred foreign key, checked only at COMMIT, which SQLite
    refuses and leaves the transaction open): the transaction is rolled back, its callbacks fire once, and
    none stays to fire at a later, unrelated rollback (reviews rv38f L3, rv38i)."""
    store = SqliteStore(tmp_path / "db.sqlite3")
    conn = store._conn
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE parent (id TEXT PRIMARY KEY)")
    conn.execute("CREATE TABLE child (id TEXT PRIMARY KEY, parent TEXT REFERENCES parent(id) "
                 "DEFERRABLE INITIALLY DEFERRED)")
    coll = store.collection("t")
    fired: list[str] = []
    try:
        with pytest.raises(sqlite3.IntegrityError), store.transaction():
            coll.insert({"_id": "written"})
            with store.transaction():
                store.on_rollback(lambda: fired.append(f"undone={coll.get('written') is None}"))
            conn.execute("INSERT INTO child VALUES ('c', 'no such parent')")
        assert fired == ["undone=True"], fired
        assert not conn.in_transaction and coll.get("written") is None
        with pytest.raises(ValueError), store.transaction():
            raise ValueError("a later, unrelated rollback")
        assert fired == ["undone=True"], fired
        with store.transaction():
            coll.insert({"_id": "after"})
        assert coll.get("after") == {"_id": "after"}
    finally:
        store.close()
