"""A request's record sealed at the request (``record.Sealed``) is appended as the very bytes
``Sealed.data`` and ``Facts.data`` state, numbered in its group, whatever else the group holds."""

from __future__ import annotations

from pathlib import Path

import orjson

from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.record import Facts, event_of, seal
from engine.audit.store import open_audit_store
from engine.audit.verify import verify_online
from engine.settings import Settings
from tests.test_audit_log import event


def _facts(i: int) -> Facts:
    ref = f"Observation/o{i}/_history/1"
    return Facts("read", "2026-11-30T08:00:00.123Z", "2026-11-30T08:00:00.120Z", "0", "HTTP 200",
                 ("system", "his-a", "10.0.0.9", "his-a", None, "阜宁 \"县\" 医院", None, None), "node",
                 [f"p{i}"], [ref], [(ref, [f"p{i}"])], None, [], [], [])


def _sealed(facts: Facts):  # noqa: ANN202
    doc = orjson.loads(facts.data(0))
    del doc["id"]
    return seal(doc, (f"p:{facts.patients[0]}",), facts.recorded)


def test_sealed_records_are_appended_as_the_bytes_their_facts_state(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    facts = [_facts(i) for i in range(6)]
    group = [_sealed(facts[0]), event(1), facts[2], _sealed(facts[3]), _sealed(facts[4]), facts[5]]
    appended = log.record_many(group)
    seqs = [a.seq for a in appended]
    assert seqs == list(range(6))
    for seq, item in zip(seqs, group, strict=True):
        stored = log.get(seq)["data"]
        stored = stored.encode() if isinstance(stored, str) else stored
        if not isinstance(item, dict):
            assert stored == item.data(seq) == facts[seq].data(seq)
            assert event_of(stored)["id"] == f"audit-{seq}"
    assert verify_online(log).ok
    log.store.close()
