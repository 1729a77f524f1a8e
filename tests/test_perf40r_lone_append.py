"""One request's record appended alone (``Appends._append_sealed``, fortieth round, perf40r): lone mode's
every append -- one caller, a quiet server -- goes through a path of its own instead of the group's. It must
write exactly what the group's path writes: the same frames (number, leaf, the nodes it completes, bytes),
the same right edge, the same search keys noted, a checkpoint due with the record still written through the
database with it, hooks still given every record; and serial reads through the real app must use it and
leave a log that verifies, each read's record naming its patient."""

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


def test_the_lone_path_writes_what_the_groups_path_writes(tmp_path: Path, settings: Settings,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Two logs, the same 19 records one a call: one through the lone path, the other forced through the
    group's (a hook given each record makes ``try_record_many`` take the general path). A checkpoint every
    4 records: the lone path hands the 4th, 8th, ... record to the general path, which writes it through
    the database with its checkpoint."""
    lone = _open(quiet(settings).with_(data_dir=tmp_path / "lone", audit_checkpoint_every=4))
    group = _open(quiet(settings).with_(data_dir=tmp_path / "group", audit_checkpoint_every=4))
    hooked: list[int] = []
    group.after_append.append(lambda appended: hooked.append(appended.seq))
    general = _counting(monkeypatch, "_record_many")
    one = _counting(monkeypatch, "_append_sealed")
    try:
        for i in range(19):
            (a,) = lone.try_record_many([_sealed(i)], keep=True)
            (b,) = group.try_record_many([_sealed(i)], keep=True)
            assert a == b and a.seq == i and a.leaf_hash == merkle.leaf_hash(a.data)
        # the lone log: 19 tries of the lone path, the general path only where a checkpoint was due
        # (records 3, 7, 11, 15: the size passes a multiple of 4); the hooked log: the general path always
        assert len(one) == 19 and len(general) == 4 + 19
        assert hooked == list(range(19))
        assert lone.size == group.size == 19 and lone.root() == group.root()
        assert lone._appended_keys == group._appended_keys
        assert lone._appended_keys[18] == (("p:p18",), "2026-01-01T00:00:00.000Z")
        assert lone._unmoved == group._unmoved  # the segment's frames: number, leaf, nodes, bytes
        sizes = [sorted(d["size"] for d in log.checkpoints.find()) for log in (lone, group)]
        assert sizes[0] == sizes[1] == [4, 8, 12, 16]  # each written with the record that passed it
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
    one = _counting(monkeypatch, "_append_sealed")
    before = engine.audit.size
    for i in range(40):
        answer = http.get(f"/fhir/Observation/lone{i}", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
    # each read's record is a group of one, at once or through its loop turn: the lone path, unless the
    # background drain held the log at that moment (then a worker thread's ``record_many``: the general path)
    assert len(one) >= 40 - LONE_AFTER
    engine.audit.drain()
    docs = engine.audit.leaves.find({"seq": {"$gte": before}}, sort=[("seq", 1)])
    reads = [orjson.loads(d["data"]) for d in docs]
    reads = [r for r in reads if r.get("act") == "read"]
    assert [r["pat"] for r in reads] == [[f"pl{i}"] for i in range(40)]
    report = verify_online(engine.audit)
    assert report.ok, report.text()
