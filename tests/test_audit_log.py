"""The audit log on both backends: appends, checkpoints, proofs, and verification that names
every kind of tampering done directly in the database."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest
import rfc8785

from engine.audit import merkle
from engine.audit.checkpoint import parse_checkpoint, verify_checkpoint
from engine.audit.events import build_event, requestor_agent
from engine.audit.export import verify_export, write_export
from engine.audit.keys import AuditKeys, rotate_keys
from engine.audit.leaves import LeafTable
from engine.audit.log import AuditLog, node_owner, seq_key
from engine.audit.store import open_audit_store
from engine.audit.verify import verify_online
from engine.repository.port import DuplicateKey, Store
from engine.settings import Settings

N = 40


def event(i: int) -> dict:
    return build_event(action="read", origin="test/audit", outcome="0",
                       agents=requestor_agent(kind="system", subject=f"his-{i % 3}", address="10.0.0.7"),
                       patient_ids=[f"p{i % 5}"], resources=[f"Observation/o{i}"])


def quiet(settings: Settings) -> Settings:
    """A log that signs only when the test asks: no checkpoint by count or by clock, no seal."""
    return settings.with_(audit_checkpoint_every=10**9, audit_checkpoint_seconds=3600, audit_seal_seconds=3600)


def quiet_log(settings: Settings) -> tuple[Settings, AuditLog]:
    """``quiet`` settings with their data directory and keys, and a log open on the real store."""
    s = quiet(settings)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    return s, AuditLog(open_audit_store(s), s, AuditKeys.load(s, create=True))


@pytest.fixture
def log(store: Store, backend_settings: Settings) -> AuditLog:
    s = backend_settings.with_(audit_checkpoint_every=8, audit_checkpoint_seconds=3600)
    audit = AuditLog(store, s, AuditKeys.load(s))
    for i in range(N):
        audit.record(event(i))
    return audit


def rehash(log: AuditLog, seq: int, mutate) -> None:
    """Rewrite record ``seq`` as an attacker who also fixes its leaf hash would."""
    doc = log.leaves.get(seq_key(seq))
    ev = orjson.loads(doc["data"])
    mutate(ev)
    data = rfc8785.dumps(ev)
    log.leaves.replace({**doc, "data": data.decode(), "hash": merkle.leaf_hash(data).hex()})


def test_a_clean_log_verifies_and_checkpoints_are_signed(log: AuditLog) -> None:
    report = verify_online(log)
    assert report.ok, report.text()
    assert report.records == N and report.checkpoints == N // 8 and report.signed_size == N
    assert report.root == log.root().hex()
    cp = log.latest_checkpoint()
    assert cp is not None and cp.size == N and cp.root == log.root()
    assert verify_checkpoint(cp, log.keys)
    assert cp.text.splitlines()[0] == log.origin and cp.text.splitlines()[1] == str(N)


def test_altered_record_is_named_exactly(log: AuditLog) -> None:
    doc = log.leaves.get(seq_key(13))
    log.leaves.replace({**doc, "data": doc["data"].replace('"outcome":"0"', '"outcome":"4"')})
    report = verify_online(log)
    assert not report.ok and report.first_bad_record == 13
    assert report.problems[0].kind == "altered" and "record 13" in report.problems[0].message


def test_altered_and_rehashed_record_is_located_by_the_stored_tree(log: AuditLog) -> None:
    rehash(log, 13, lambda ev: ev.update(outcome="4"))
    report = verify_online(log)
    assert not report.ok and report.first_bad_record == 12
    assert report.problems[0].kind == "node" and "records 12..13" in report.problems[0].message


def test_rewritten_records_and_tree_still_fail_against_the_signed_checkpoint(log: AuditLog) -> None:
    rehash(log, 13, lambda ev: ev.update(outcome="4"))
    frontier = merkle.Frontier()
    for seq in range(N):  # the attacker rebuilds every stored node too (kept with the leaf completing it)
        doc = log.leaves.get(seq_key(seq))
        made = frontier.append(bytes.fromhex(doc["hash"]))
        if made:
            log.leaves.replace({**doc, "nodes": [h.hex() for _lvl, _idx, h in made]})
    report = verify_online(log)
    assert not report.ok and report.first_bad_record == 8
    assert report.problems[0].kind == "root"
    assert "records 8..15 do not match signed checkpoint 1" in report.problems[0].message


def test_deleted_record_is_named(log: AuditLog) -> None:
    log.leaves.delete(seq_key(20))
    report = verify_online(log)
    assert report.first_bad_record == 20 and report.problems[0].kind == "deleted"
    assert "20..20 missing" in report.problems[0].message


def test_reordered_records_are_named(log: AuditLog) -> None:
    a, b = log.leaves.get(seq_key(5)), log.leaves.get(seq_key(9))
    log.leaves.replace({**a, "data": b["data"], "hash": b["hash"]})
    log.leaves.replace({**b, "data": a["data"], "hash": a["hash"]})
    report = verify_online(log)
    assert report.first_bad_record == 5
    assert report.problems[0].kind == "reordered" and "record 5: holds record 9" in report.problems[0].message


def test_inserted_record_is_named(log: AuditLog) -> None:
    # shift records 17.. up by one and slip a forged, self-consistent record 17 in
    for seq in range(N - 1, 16, -1):
        doc = log.leaves.get(seq_key(seq))
        log.leaves.delete(seq_key(seq))
        log.leaves.insert({**doc, "_id": seq_key(seq + 1), "seq": seq + 1})
    forged = {**event(99), "resourceType": "AuditEvent", "id": "audit-17"}
    data = rfc8785.dumps(forged)
    log.leaves.insert({"_id": seq_key(17), "seq": 17, "hash": merkle.leaf_hash(data).hex(), "data": data.decode()})
    report = verify_online(log)
    kinds = {(p.kind, p.record) for p in report.problems}
    assert ("reordered", 18) in kinds  # the true record 17 now sits at 18
    assert ("node", 16) in kinds  # and the stored tree no longer covers 16..17
    assert report.first_bad_record == 18


def test_record_with_changed_seq_field_is_named(log: AuditLog) -> None:
    # the log pages by _id (no seq index): a seq field edited under the same _id must still show
    doc = log.leaves.get(seq_key(12))
    if isinstance(log.leaves, LeafTable):  # SQLite: the key is the seq, there is no other to edit
        with pytest.raises(ValueError, match="_id is its zero-padded seq"):
            log.leaves.replace({**doc, "seq": 30})
        assert log.leaves.get(seq_key(12)) == doc and verify_online(log).ok
        return
    log.leaves.replace({**doc, "seq": 30})
    report = verify_online(log)
    assert not report.ok and report.first_bad_record is not None and report.first_bad_record <= 13


def test_duplicate_seq_under_another_id_is_named(log: AuditLog) -> None:
    # without a unique seq index a second record claiming seq 7 can be slipped in under a foreign _id
    forged = {**event(98), "resourceType": "AuditEvent", "id": "audit-7"}
    data = rfc8785.dumps(forged)
    doc = {"_id": seq_key(7) + "x", "seq": 7, "hash": merkle.leaf_hash(data).hex(), "data": data.decode()}
    if isinstance(log.leaves, LeafTable):  # SQLite: a record's only key is its seq; 7 is taken
        with pytest.raises(ValueError, match="_id is its zero-padded seq"):
            log.leaves.insert(doc)
        with pytest.raises(DuplicateKey):
            log.leaves.insert({**doc, "_id": seq_key(7)})
        assert verify_online(log).ok
        return
    log.leaves.insert(doc)
    report = verify_online(log)
    assert ("inserted", 7) in {(p.kind, p.record) for p in report.problems}


def test_truncated_log_is_named(log: AuditLog) -> None:
    for seq in range(28, N):
        log.leaves.delete(seq_key(seq))
    report = verify_online(log)
    assert report.first_bad_record == 28 and report.problems[0].kind == "truncated"
    assert "checkpoint 4 signs 40 records, only 28 present" in report.problems[0].message


def test_tampered_checkpoints_are_named(log: AuditLog) -> None:
    cps = log.checkpoints.find(sort=[("seq", 1)])
    forged_note = cps[2]["note"].replace(f"\n{cps[2]['size']}\n", "\n23\n")
    log.checkpoints.replace({**cps[2], "note": forged_note})
    log.checkpoints.delete(cps[3]["_id"])
    log.checkpoints.update(cps[1]["_id"], {"size": 9})
    messages = [p.message for p in verify_online(log).problems]
    assert any("checkpoint 2 (size 23): bad signature" in m for m in messages)
    assert any("checkpoint(s) 2..3 missing" in m for m in messages)
    assert any("checkpoint 1: stored size 9 differs from the signed note" in m for m in messages)


def test_inclusion_and_consistency_proofs_verify_against_signed_checkpoints(log: AuditLog) -> None:
    cps = log.list_checkpoints()
    small, big = cps[1], cps[-1]
    for leaf in (0, 7, 13, 15):
        proof = log.inclusion_proof(leaf, small.size)
        leaf_hash = bytes.fromhex(log.get(leaf)["hash"])
        assert merkle.verify_inclusion(leaf, small.size, leaf_hash, proof, small.root)
        assert len(proof) == (small.size - 1).bit_length()
    proof = log.consistency_proof(small.size, big.size)
    assert merkle.verify_consistency(small.size, big.size, small.root, big.root, proof)
    assert log.root_at(small.size) == small.root
    with pytest.raises(ValueError):
        log.inclusion_proof(3, N + 1)


def test_concurrent_appends_get_gapless_sequence_numbers(log: AuditLog) -> None:
    def work(t: int) -> None:
        for i in range(10):
            log.record(event(1000 + t * 10 + i))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.size == N + 40
    assert [d["seq"] for d in log.leaves.find(sort=[("seq", 1)])] == list(range(N + 40))
    assert verify_online(log).ok


def test_a_second_writer_resumes_and_does_not_fork_the_log(log: AuditLog, store: Store) -> None:
    other = AuditLog(store, log.settings, log.keys)
    assert other.size == N and other.root() == log.root()
    other.record(event(500))
    appended = log.record(event(501))  # stale in-memory state: loses the race, reloads, retries
    assert appended.seq == N + 1
    assert verify_online(log).ok


def test_key_rotation_keeps_old_checkpoints_verifiable(log: AuditLog, backend_settings: Settings) -> None:
    old = log.keys.current_id
    new = rotate_keys(backend_settings)
    assert new.key_id != old
    log.keys = AuditKeys.load(backend_settings)
    for i in range(8):
        log.record(event(200 + i))
    assert log.latest_checkpoint().key_id == new.key_id
    assert verify_online(log).ok
    only_new = AuditKeys.from_public_pems(log.keys.name, [new.pem.encode()])
    report = verify_online(log, only_new)
    assert any(f"unknown key id {old}" in p.message for p in report.problems)
    private = sorted((backend_settings.data_dir / "keys").glob("audit-ed25519-*.pem"))
    assert all(p.stat().st_mode & 0o777 in (0o400, 0o644) for p in private)
    assert [p for p in private if not p.name.endswith(("pub.pem", "retired.pem"))][0].stat().st_mode & 0o777 == 0o400


def test_offline_export_verifies_with_the_public_key_and_names_a_forged_line(log: AuditLog, tmp_path: Path) -> None:
    export = tmp_path / "audit.jsonl"
    with export.open("wb") as out:
        summary = write_export(log, out)
    assert summary["written"] == N
    pem = [pk.pem.encode() for pk in log.keys.public.values()]
    assert verify_export(export, pem).ok
    lines = export.read_bytes().splitlines()
    idx = next(i for i, line in enumerate(lines) if b'"seq":21,' in line and b'"record"' in line)
    rec = orjson.loads(lines[idx])
    rec["data"] = rec["data"].replace("Observation/o21", "Observation/o99")
    lines[idx] = orjson.dumps(rec)
    export.write_bytes(b"\n".join(lines) + b"\n")
    report = verify_export(export, pem)
    assert report.first_bad_record == 21 and "record 21: content altered" in report.problems[0].message


def test_checkpoint_text_round_trips(log: AuditLog) -> None:
    cp = log.latest_checkpoint()
    again = parse_checkpoint(cp.text)
    assert again == cp and verify_checkpoint(again, log.keys)


def test_a_checkpoint_is_signed_every_t_seconds_while_records_arrive(store: Store,
                                                                    backend_settings: Settings) -> None:
    import time

    s = backend_settings.with_(audit_checkpoint_seconds=0.2, audit_checkpoint_every=1000)
    audit = AuditLog(store, s, AuditKeys.load(s))
    audit.start()
    try:
        for i in range(3):
            audit.record(event(i))
        deadline = time.monotonic() + 5
        while ((audit.latest_checkpoint() or None) is None or audit.latest_checkpoint().size < 3) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        cp = audit.latest_checkpoint()
        assert cp is not None and cp.size == 3
        time.sleep(0.5)  # nothing new: no new checkpoint
        assert audit.latest_checkpoint().seq == cp.seq
    finally:
        audit.close()


def test_closing_the_log_signs_the_unsigned_tail(log: AuditLog) -> None:
    for i in range(3):
        log.record(event(300 + i))
    assert log.latest_checkpoint().size == N
    log.close()
    assert log.latest_checkpoint().size == N + 3
    log.close()  # nothing new: no second checkpoint
    assert log.latest_checkpoint().size == N + 3 and len(log.list_checkpoints()) == N // 8 + 1


def test_a_new_base_url_does_not_change_the_log_or_its_key_ids(log: AuditLog, store: Store,
                                                                backend_settings: Settings) -> None:
    moved = backend_settings.with_(base_url="https://huren.funing.example")
    reopened = AuditLog(store, moved, AuditKeys.load(moved))
    assert reopened.origin == log.origin and reopened.keys.current_id == log.keys.current_id
    reopened.record(event(400))
    reopened.checkpoint()
    assert verify_online(reopened).ok


def test_a_log_whose_right_edge_was_deleted_refuses_to_append(log: AuditLog, store: Store) -> None:
    doc = log.leaves.get(seq_key(node_owner(5, 0)))  # the subtree of records 0..31, part of the right edge at size 40
    log.leaves.replace({**doc, "nodes": doc["nodes"][:4]})  # its leaf keeps levels 1-4, not 5
    with pytest.raises(RuntimeError, match="audit log damaged"):
        AuditLog(store, log.settings, log.keys)
    report = verify_online(log)
    assert any("tree node 5:0 (records 0..31) missing" in p.message for p in report.problems)


def test_record_nowait_appends_only_when_nothing_else_holds_the_segment(settings: Settings) -> None:
    """On SQLite a group goes to the segment file: a long transaction holding the database (an
    ingest batch, a drain in another thread) does not hold it up; the segment's lock held by
    another process (its own open file: ``flock`` excludes it as it would another process) does,
    and then the append declines rather than block the event loop."""
    import fcntl
    import os

    from engine.audit.segment import segment_path
    from engine.repository import open_store

    store = open_store(settings)  # SQLite: one connection guarded by a lock
    audit = AuditLog(store, settings, AuditKeys.load(settings))
    assert audit.record_nowait(event(0)).seq == 0
    held, release = threading.Event(), threading.Event()

    def long_batch() -> None:
        with store.transaction():
            held.set()
            release.wait(5)

    worker = threading.Thread(target=long_batch)
    worker.start()
    held.wait(5)
    assert audit.record_nowait(event(1)).seq == 1  # the segment needs no database lock
    release.set()
    worker.join()
    other = os.open(segment_path(store.path), os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        assert audit.record_nowait(event(2)) is None  # would have waited for the other writer: declined
        fcntl.flock(other, fcntl.LOCK_UN)
    finally:
        os.close(other)
    assert audit.record_nowait(event(2)).seq == 2
    assert [d["seq"] for d in audit.leaves.find(sort=[("seq", 1)])] == [0, 1, 2]
    store.close()


def test_a_log_appended_before_nodes_moved_into_their_leaves_keeps_verifying_and_growing(
        store: Store, backend_settings: Settings) -> None:
    """Earlier versions kept each tree node as a document of ``audit_nodes``: such a log still
    serves proofs, verifies, and takes new records (whose nodes go with their leaves)."""
    s = backend_settings.with_(audit_checkpoint_every=8, audit_checkpoint_seconds=3600)
    old = AuditLog(store, s, AuditKeys.load(s))
    frontier = merkle.Frontier()
    for seq in range(21):  # as an earlier version wrote them
        data = rfc8785.dumps({**event(seq), "resourceType": "AuditEvent", "id": f"audit-{seq}"})
        h = merkle.leaf_hash(data)
        old.leaves.insert({"_id": seq_key(seq), "seq": seq, "hash": h.hex(), "data": data.decode()})
        for lvl, idx, nh in frontier.append(h):
            old.nodes.insert({"_id": f"{lvl}:{idx}", "level": lvl, "index": idx, "hash": nh.hex()})
    log = AuditLog(store, s, AuditKeys.load(s))
    assert log.size == 21 and log.root() == frontier.root()
    for _ in range(20):
        log.record(event(50))
    assert log.nodes.count() == 21 - bin(21).count("1") and "nodes" in log.leaves.get(seq_key(23))  # new: with leaves
    reference = merkle.Frontier()
    for seq in range(41):
        reference.append(bytes.fromhex(log.leaves.get(seq_key(seq))["hash"]))
    root = reference.root()
    assert log.root() == root
    for leaf in (0, 7, 20, 21, 40):  # proofs across both layouts
        path = log.inclusion_proof(leaf, 41)
        assert merkle.verify_inclusion(leaf, 41, bytes.fromhex(log.leaves.get(seq_key(leaf))["hash"]), path, root)
    assert verify_online(log).ok
