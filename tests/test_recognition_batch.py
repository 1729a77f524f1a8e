"""The write hooks keep what they read and write for a whole ingest batch (``Recognition.batch``,
``IdentityService.batch``): ~50 messages written in one transaction ask the recognition store a
few times per batch, not per message. The decisions must be exactly those of the same messages
sent one at a time: the shipped demo month (merges, cancellations, corrections, R98, self-pay, a
repeat and a second record of one resident within the same batch) is replayed both ways, on
SQLite and on the MongoDB backend (mongomock), and every flag, check row, tally, index entry,
DetectedIssue, patient index record, Patient link and ACK warning compared.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.ingest import oru_lab
from engine.engine import Engine
from engine.identity.mpi import KEY_FILE
from engine.settings import Settings

REPO = Path(__file__).resolve().parent.parent
FEEDS = sorted((REPO / "examples" / "feeds").glob("*.hl7"))
# instants the hook or the repository stamps when it writes (now): they differ between two runs
_NOW = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
_VOLATILE = ("checked", "placed", "held", "identified")


def _settings(tmp_path: Path, backend: str, name: str) -> Settings:
    settings = Settings(data_dir=tmp_path / name, http_port=0, mllp_port=0)
    return settings.with_(mongodb_uri="mongomock://") if backend == "mongomock" else settings


def _plain(value: Any) -> Any:
    return json.loads(_NOW.sub("<now>", json.dumps(value, sort_keys=True, ensure_ascii=False)))


def _state(engine: Engine) -> dict[str, Any]:
    """What recognition decided and stored, without the instants it was stamped with."""
    rec = engine.recognition

    def rows(coll: Any) -> list[dict[str, Any]]:
        return sorted(({k: v for k, v in d.items() if k not in _VOLATILE} for d in coll.find({})),
                      key=lambda d: d["_id"])

    def current(rtype: str) -> dict[str, Any]:
        return {r["id"]: {k: v for k, v in r.items() if k != "meta"}
                for r in engine.repository.search(rtype, [("_count", "500")]).resources}

    return _plain({"checks": rows(rec.checks), "flags": rows(rec.flags), "flag_days": rows(rec.flag_days),
                   "check_days": rows(rec.check_days), "index": rows(rec.index.coll),
                   "issues": current("DetectedIssue"), "mpi": rows(engine.identity.links.coll),
                   "patients": current("Patient")})


def _warnings(ack: bytes) -> list[str]:
    """The ACK's MSA code and ERR segments (the MSH carries the time of the answer)."""
    return [_NOW.sub("<now>", seg) for seg in ack.decode("utf-8").split("\r") if seg.startswith(("MSA|", "ERR|"))]



def _in_one_batch(tmp_path: Path, backend: str, keys_of: str, name: str,
                  raws: list[tuple[bytes, str, str]]) -> tuple[list[list[str]], dict]:
    """``raws`` processed as one batch into a fresh store ``name``, with the ID-number key of the
    store ``keys_of`` (the same key: the same persons): every ACK's warnings and the state after."""
    keys = tmp_path / name / "keys"
    keys.mkdir(parents=True)
    shutil.copy(tmp_path / keys_of / "keys" / KEY_FILE, keys / KEY_FILE)
    with Engine(_settings(tmp_path, backend, name)) as engine:
        outcomes = engine.ingestor.process(raws)
        assert engine.ingestor.stats.redone_batches == 0
        return [_warnings(o.ack) for o in outcomes], _state(engine)

@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_a_batch_decides_as_the_same_messages_one_by_one(tmp_path: Path, backend: str) -> None:
    raws = [(path.read_bytes(), "file", f"file:{path.name}") for path in FEEDS]
    # and the bench's lab results, one resident twice in the batch (ids repeat every 499)
    raws += [(oru_lab(n), "file", "file:bench") for n in (3, 4, 3 + 499)]
    with Engine(_settings(tmp_path, backend, "one")) as engine:
        one_by_one = [_warnings(engine.ingestor.process([raw])[0].ack) for raw in raws]
        expected = _state(engine)
    warnings, state = _in_one_batch(tmp_path, backend, "one", "batch", raws)
    assert warnings == one_by_one
    assert state == expected
    assert any("DetectedIssue/dup-" in seg for segs in one_by_one for seg in segs)  # the month has repeats
    assert expected["flags"] and expected["check_days"] and expected["flag_days"]
    assert any(p.get("link") for p in expected["patients"].values())  # records of one person linked


def _count_calls(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> Counter[str]:
    calls: Counter[str] = Counter()
    rec = engine.recognition
    for name, coll in (("results", rec.index.coll), ("checks", rec.checks.coll), ("flags", rec.flags.coll),
                       ("flag_days", rec.flag_days), ("check_days", rec.check_days),
                       ("mpi", engine.identity.links.coll)):
        for op in ("get", "find", "replace", "update", "delete", "insert", "insert_many"):
            real = getattr(coll, op)

            def spy(*args: Any, _real: Callable[..., Any] = real, _key: str = f"{name}.{op}", **kwargs: Any) -> Any:
                calls[_key] += 1
                return _real(*args, **kwargs)

            monkeypatch.setattr(coll, op, spy)
    return calls


def test_a_batch_of_lab_reports_asks_the_recognition_store_once_per_batch(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """50 12-OBX reports in one batch: the orders' check rows, the tests' flags, the index windows
    and the new Patients' entries are read in one query each, the new check rows written in one
    call, and the index entries (two a message: the report's and ALT's) written in one call when
    the batch ends. The patient index reads its records and their persons in one query each, and
    writes its new records in one call when the batch ends."""
    calls = _count_calls(monkeypatch, engine)
    outcomes = engine.ingestor.process([(oru_lab(n), "bench", "127.0.0.1:1") for n in range(1, 51)])
    assert all(b"MSA|AA|" in o.ack for o in outcomes)
    assert calls["results.insert_many"] == 1 and calls["results.replace"] == 0, calls
    # checks: the orders' rows by id, and the rows of the orders each result may be the prior of
    # (person, item, from its day to its window's end: a prior that arrives late flags its repeat)
    assert calls["results.find"] <= 2 and calls["checks.find"] <= 2 and calls["flags.find"] <= 1, calls
    assert calls["checks.get"] == calls["flags.get"] == calls["results.get"] == 0, calls
    assert calls["checks.insert_many"] == 1 and calls["checks.replace"] == 0, calls
    assert sum(v for k, v in calls.items() if not k.startswith("mpi.")) <= 7, calls
    assert calls["mpi.get"] == 0 and calls["mpi.find"] == 2 and calls["mpi.insert_many"] == 1, calls
    assert calls["mpi.replace"] == 0, calls
