"""The append's trims of the thirty-sixth round (perfr36), pinned on the real SQLite log and its segment
file: ``Frontier.push`` returning the first merged node without a list, ``encode`` framing one row without
one, ``_append`` skipping the sync call while the segment's lock was held since the last sync, and the
checkpoint's due rule read without two calls. Each must leave the log exactly as before: the same tree
(every node the table holds checked by ``verify_online``, the root recomputed from the leaves here), the
same frames, another process's records still taken in, the same clock rule."""

from __future__ import annotations

import time

from engine.audit import merkle
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.segment import decode, encode
from engine.audit.signing import APPEND_BACKSTOP_PERIODS
from engine.audit.store import open_audit_store
from engine.audit.verify import verify_online
from engine.settings import Settings
from tests.test_audit35_append_guarantees import _sealed
from tests.test_audit_log import quiet


def _open(settings: Settings) -> AuditLog:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings, create=True))


def _root(leaves: list[bytes]) -> bytes:
    """RFC 6962's root of ``leaves``, by its recursive definition (no ``Frontier``)."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(_root(leaves[:k]), _root(leaves[k:]))


def test_push_reports_the_nodes_append_completes_at_every_size() -> None:
    pushed, appended = merkle.Frontier(), merkle.Frontier()
    for i in range(300):  # up to eight merges on one leaf (size 256)
        leaf = merkle.leaf_hash(b"record %d" % i)
        nodes = pushed.push(leaf)
        expected = b"".join(h for _level, _index, h in appended.append(leaf))
        assert (nodes or b"") == expected, i
        assert (nodes is None) == (not expected)
        assert pushed.size == appended.size == i + 1
        assert pushed.root() == appended.root()


def test_lone_appends_build_the_tree_the_leaves_define(settings: Settings) -> None:
    log = _open(quiet(settings))
    try:
        leaves = []
        for i in range(70):  # one record a call, as lone mode appends: every merge depth up to 64
            (appended,) = log.try_record_many([_sealed(f"p{i}")], keep=True)
            assert appended.seq == i and appended.leaf_hash == merkle.leaf_hash(appended.data)
            leaves.append(merkle.leaf_hash(appended.data))
        assert log.root() == _root(leaves)
        log.let_go_segment(blocking=True)
        log.drain()  # the segment's frames (leaf, nodes, bytes) into the table, every node checked
        report = verify_online(log)
        assert report.ok and report.records == 70, report.text()
        assert log.root() == _root(leaves)
    finally:
        log.close()


def test_one_row_is_framed_as_in_a_group() -> None:
    rows = []
    frontier = merkle.Frontier()
    for i in range(5):
        data = b'{"f":2,"id":"audit-%d"}' % i
        leaf = merkle.leaf_hash(data)
        rows.append((i, leaf, data, frontier.push(leaf)))
    assert any(r[3] for r in rows) and any(r[3] is None for r in rows)  # with and without nodes
    assert b"".join(encode([r]) for r in rows) == encode(rows)
    decoded, used = decode(encode(rows))
    assert used == len(encode(rows))
    assert [(s, leaf, bytes(d), n or None) for s, leaf, d, n in decoded] == rows


def test_another_writers_records_are_still_taken_in(settings: Settings) -> None:
    s = quiet(settings)
    first, second = _open(s), _open(s)  # two workers' handles on one log
    try:
        seqs = []
        for i in range(6):
            writer = first if i % 2 == 0 else second
            (appended,) = writer.record_many([_sealed(f"p{i}")])  # the lock released after each
            seqs.append(appended.seq)
        assert seqs == list(range(6))
        # the first kept its lock over two appends in a row, then the second appends after it
        first.try_record_many([_sealed("p6")], keep=True)
        first.try_record_many([_sealed("p7")], keep=True)
        first.let_go_segment(blocking=True)
        (appended,) = second.record_many([_sealed("p8")])
        assert appended.seq == 8
        first.drain()
        report = verify_online(first)
        assert report.ok and report.records == 9, report.text()
    finally:
        first.close()
        second.close()


def test_the_clock_backstop_is_the_smaller_period_times_ten(settings: Settings) -> None:
    log = _open(quiet(settings))
    try:
        log._timer = object()  # as while the background thread signs (only whether it is there is read)
        for checkpoint, seal, period in [(60.0, 1.0, 1.0), (60.0, 0.0, 60.0), (60.0, -1.0, 60.0),
                                         (5.0, 30.0, 5.0), (5.0, 5.0, 5.0)]:
            log.settings = log.settings.with_(audit_checkpoint_seconds=checkpoint, audit_seal_seconds=seal)
            backstop = APPEND_BACKSTOP_PERIODS * period
            log._last_cp_time = time.monotonic() - backstop + 5
            assert not log._checkpoint_due(0, 1), (checkpoint, seal)
            log._last_cp_time = time.monotonic() - backstop - 1
            assert log._checkpoint_due(0, 1), (checkpoint, seal)
        log._timer = None  # no thread: the checkpoint period itself
        log.settings = log.settings.with_(audit_checkpoint_seconds=60.0, audit_seal_seconds=1.0)
        log._last_cp_time = time.monotonic() - 30
        assert not log._checkpoint_due(0, 1)
        log._last_cp_time = time.monotonic() - 61
        assert log._checkpoint_due(0, 1)
        log.settings = log.settings.with_(audit_checkpoint_every=10)  # by count: passing a multiple of it
        log._last_cp_time = time.monotonic()
        assert log._checkpoint_due(9, 10) and not log._checkpoint_due(10, 19)
    finally:
        log._timer = None
        log.close()
