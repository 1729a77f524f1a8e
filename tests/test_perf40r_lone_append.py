"""One request's record appended alone: lone mode's every append -- one caller, a quiet server. The fortieth
round (perf40r) gave it a path of its own (``Appends._append_sealed``); the forty-first (perfa41, rv40j LOW 3)
made it the group's path again (``Appends._record_many``, one path of steps for every append), trimmed so the
lone append costs no more. A record a call must write exactly what the same records in groups write: the same
frames (number, leaf, the nodes it completes, bytes), the same right edge, the same search keys noted, a
checkpoint due with a record written through the database with it, hooks given every record; and serial reads
through the real app leave a log that verifies, each read's record naming its patient."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engine.audit import merkle
from engine.audit.appends import Appends
from engine.audit.group_commit import LONE_AFTER
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.record import seal
from engine.audit.store import open_audit_store
from engine.audit.verify import verify_online
from engine.settings import Settings
from tests.test_audit_log import quiet


def _sealed(i: int) -> object:
    """A request's record as the middleware seals it, its salt fixed (so two logs get the same bytes)."""
    doc = {"f": 2, "act": "read", "at": "2026-01-01T00:00:00.000Z", "by": ["system", "his-a", None, "his-a",
           None, None, None, None], "node": "test", "out": "0", "pat": [f"p{i}"], "res": [f"Observation/o{i}"],
           "salt": f"{i:032x}"}
    return seal(doc, (f"p:p{i}",), "2026-01-01T00:00:00.000Z")


def _open(settings: Settings) -> AuditLog:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings, create=True))


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Calls of ``Appends.<name>`` from here on (the real method still runs)."""
    calls: list[int] = []
    real = getattr(Appends, name)

    def counted(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Appends, name, counted)
    return calls


def test_a_record_a_call_writes_what_the_same_records_in_groups_write(tmp_path: Path, settings: Settings,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Two logs, the same 19 records: one a record a call (lone mode), the other in groups of 1, 2, 3, 4, 5
    and 4, with a hook given each record. A checkpoint every 4 records: the lone log writes the 4th, 8th, ...
    record through the database with its checkpoint, the grouped log each group that passes a multiple of 4."""
    lone = _open(quiet(settings).with_(data_dir=tmp_path / "lone", audit_checkpoint_every=4))
    group = _open(quiet(settings).with_(data_dir=tmp_path / "group", audit_checkpoint_every=4))
    hooked: list[int] = []
    group.after_append.append(lambda appended: hooked.append(appended.seq))
    tables = _counting(monkeypatch, "_to_table")
    prepared = _counting(monkeypatch, "_prepare")
    try:
        for i in range(19):
            (a,) = lone.try_record_many([_sealed(i)], keep=True)
            assert a.seq == i and a.leaf_hash == merkle.leaf_hash(a.data)
        # the lone log: every record prepared by the one path, through the database where a checkpoint was due
        # (records 3, 7, 11, 15: the size passes a multiple of 4; each prepared again inside its transaction)
        assert len(tables) == 4 and len(prepared) == 19 + 4
        tables.clear()
        start = 0
        for size in (1, 2, 3, 4, 5, 4):
            got = group.try_record_many([_sealed(i) for i in range(start, start + size)], keep=True)
            assert got is not None and [g.seq for g in got] == list(range(start, start + size))  # type: ignore[union-attr]
            start += size
        # the groups ending at 1, 3, 6, 10, 15, 19: those passing 4, 8, 12, 16 went through the database
        assert len(tables) == 4
        assert hooked == list(range(19))
        assert lone.size == group.size == 19 and lone.root() == group.root()
        assert lone._appended_keys == group._appended_keys
        assert lone._appended_keys[18] == (("p:p18",), "2026-01-01T00:00:00.000Z")
        sizes = [sorted(d["size"] for d in log.checkpoints.find()) for log in (lone, group)]
        assert sizes == [[4, 8, 12, 16], [6, 10, 15, 19]]  # each written with the record (or group) that passed it
        for log in (lone, group):
            log.let_go_segment(blocking=True)
            log.drain()
        rows = [[(d["seq"], d["hash"], d["data"]) for d in log.leaves.find(sort=[("seq", 1)])] for log in (lone, group)]
        assert rows[0] == rows[1] and len(rows[0]) == 19
        for log in (lone, group):
            report = verify_online(log)  # every node the table holds checked, each checkpoint's signature
            assert report.ok and report.records == 19, report.text()
    finally:
        lone.close()
        group.close()


def test_a_record_the_segment_lock_keeps_out_waits_for_its_group(settings: Settings) -> None:
    """Another process holding the segment's lock: the lone path does nothing and says busy (``None``),
    as the group's path does, so the committer hands the record to a worker thread."""
    log = _open(quiet(settings))
    try:
        (first,) = log.try_record_many([_sealed(0)])
        other = open(log._segment.path, "rb")  # noqa: SIM115  (another open file: another flock owner)
        try:
            import fcntl

            fcntl.flock(other.fileno(), fcntl.LOCK_EX)
            assert log.try_record_many([_sealed(1)], keep=True) is None
            assert log.size == 1 and len(log._unmoved) == 1 and 1 not in log._appended_keys
        finally:
            other.close()
        (second,) = log.try_record_many([_sealed(1)], keep=True)
        assert (first.seq, second.seq) == (0, 1)
        log.let_go_segment(blocking=True)
        report = verify_online(log)
        assert report.ok and report.records == 2, report.text()
    finally:
        log.close()


def test_serial_reads_through_the_app_append_alone_and_each_has_its_record(
        engine, http, client_token, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Reads one at a time over the real app (the fast read, the middleware, the group committer in lone
    mode): past ``LONE_AFTER`` reads their records take the lone path; every read has its own record,
    naming its resource's patient, and the log verifies."""
    engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "阜宁县人民医院"})
    for i in range(40):
        engine.repository.update({"resourceType": "Observation", "id": f"lone{i}", "status": "final",
                                  "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                                  "subject": {"reference": f"Patient/pl{i}"}, "effectiveDateTime": "2026-11-01",
                                  "performer": [{"reference": "Organization/org1"}]})
    token = client_token(engine, "system/*.rs")
    from engine.audit.segment import Segment

    written: list[int] = []
    real = Segment.append

    def counted(self, rows, keep=False):  # noqa: ANN001, ANN202
        written.append(len(rows))
        return real(self, rows, keep)

    monkeypatch.setattr(Segment, "append", counted)
    before = engine.audit.size
    for i in range(40):
        answer = http.get(f"/fhir/Observation/lone{i}", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
    # each read's record is a group of one, at once or through its loop turn, written to the segment file by the
    # one path (unless the background drain held the log at that moment: then a worker thread's ``record_many``)
    assert written.count(1) >= 40 - LONE_AFTER
    engine.audit.drain()
    docs = engine.audit.leaves.find({"seq": {"$gte": before}}, sort=[("seq", 1)])
    reads = [orjson.loads(d["data"]) for d in docs]
    reads = [r for r in reads if r.get("act") == "read"]
    assert [r["pat"] for r in reads] == [[f"pl{i}"] for i in range(40)]
    report = verify_online(engine.audit)
    assert report.ok, report.text()
