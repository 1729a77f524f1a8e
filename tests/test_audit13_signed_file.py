"""A rescanned record file is proven against the signed root from its records' own bytes.

``AuditLog._signed_file`` (the record files' ``prover``) and the load's check of the newest
signature walk the tree through one owner (``AuditLog._root_of``); the file's records must count by
the hash of their bytes, never by the leaf hashes or nodes the file keeps (a forger recomputes those
with the CRCs). The real store and real record files (several, small), the prover called as the
record files call it, with the file's frames as read back from disk.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import engine.audit.record_files as record_files
from engine.audit import merkle
from engine.audit.log import AuditLog
from engine.audit.record_files import HEADER, records_directory
from engine.audit.segment import decode
from engine.audit.store import audit_path
from engine.settings import Settings
from tests.test_audit_log import event, quiet_log


def _rows(path: Path) -> list:
    body = path.read_bytes()
    rows, used = decode(body[HEADER.size:])
    assert used == len(body) - HEADER.size
    return rows


def _altered(log: AuditLog, rows: list, seq: int, *, leaves: bool) -> list:
    """Record ``seq``'s bytes altered (one character of its requestor); ``leaves``: every leaf hash
    and node recomputed to fit, as a forger would; else the stored ones kept."""
    first = rows[0][0]
    out = []
    frontier = merkle.Frontier(first, [log.subtree_hash(lvl, idx) for lvl, idx in merkle.perfect_subtrees(0, first)])
    for number, leaf, data, nodes in rows:
        if number == seq:
            assert b'"his-' in data
            data = data.replace(b'"his-', b'"hiz-', 1)
        if leaves:
            leaf = merkle.leaf_hash(data)
            nodes = frontier.push(leaf)
        out.append((number, leaf, data, nodes))
    return out


def test_a_rescanned_file_counts_by_its_records_bytes_against_the_signed_root(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record_files, "ROLL_BYTES", 12000)  # small record files (~9 records): several
    s, log = quiet_log(settings)
    try:
        for i in range(30):
            log.record(event(i))
            if i % 3 == 2:
                log.drain()
        signed = log.checkpoint()
        assert signed is not None and signed.size == 30
        for i in range(30, 33):  # past the signature, in the newest file
            log.record(event(i))
        log.drain()
        assert log._files is not None and log._files.prover is not None
        prove = log._files.prover
        entries = {e.first: e for e in log._files.entries()}
        paths = {int(p.stem): p for p in records_directory(audit_path(s)).glob("*.records")}
        assert len(entries) >= 3
        middle = sorted(entries)[1]
        newest = max(entries)
        assert entries[newest].first < 30 <= entries[newest].last  # straddles the signature
        rows = _rows(paths[middle])

        assert prove(entries[middle], rows)  # as written: proven
        victim = rows[1][0]
        assert not prove(entries[middle], _altered(log, rows, victim, leaves=True))  # a forger's whole work
        assert not prove(entries[middle], _altered(log, rows, victim, leaves=False))  # the kept leaves prove nothing
        assert log._unproven_from is None  # (nothing taken as found)

        rows = _rows(paths[newest])
        assert not prove(entries[newest], _altered(log, rows, entries[newest].first, leaves=True))  # under the signature
        assert prove(entries[newest], _altered(log, rows, 31, leaves=True))  # past it nothing can tell: taken as found,
        assert log._unproven_from == 30  # so the next checkpoint says so
        cp = log.checkpoint()
        assert cp is not None and (cp.size, cp.recovered) == (33, 30)
    finally:
        log.close()
        log.store.close()
