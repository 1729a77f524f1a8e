"""The group-leaf ceiling bench (``bench/group_leaf_ceiling.py``, thirty-fourth round) appends what it
says it measures: on the engine's real audit log, a group of request records becomes one leaf (the
privacy-keeping form: a hash over the records' own leaf digests), one step of the tree and one stored
frame holding the group's bytes, while a lone record and a group holding anything but request
records are appended exactly as the log does without the bench. And the bench runs end to end over
the real app's ASGI reads."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import types
from pathlib import Path

import orjson
import pytest

from bench.group_leaf_ceiling import group_leaf, grouped_prepare
from engine.audit.record import seal

ROOT = Path(__file__).resolve().parent.parent


def _sealed(patient: str) -> object:
    doc = {"f": 2, "act": "read", "at": "2026-01-01T00:00:00.000Z", "by": ["system", "his-a", None, "his-a",
           None, None, None, None], "node": "bench", "out": "0", "pat": [patient], "res": ["Observation/o1"]}
    return seal(doc, (f"p:{patient}",), "2026-01-01T00:00:00.000Z")


def _stored(engine, seq: int) -> list[dict]:
    engine.audit.drain()
    return engine.audit._leaves.find({"seq": {"$gte": seq}}, sort=[("seq", 1)])


def test_a_group_is_one_leaf_one_frame_with_its_records_digests(engine) -> None:
    log = engine.audit
    log._prepare = types.MethodType(grouped_prepare("digests"), log)
    before = log.size
    results = log.record_many([_sealed("p1"), _sealed("p2"), _sealed("p3")])
    assert log.size == before + 1  # one leaf, one step of the right edge
    datas = [r.data for r in results]
    assert [orjson.loads(d)["id"] for d in datas] == [f"audit-{before}.{i}" for i in range(3)]
    assert [orjson.loads(d)["pat"] for d in datas] == [["p1"], ["p2"], ["p3"]]
    digests = b"".join(hashlib.sha256(b"\x00" + d).digest() for d in datas)
    leaf = hashlib.sha256(b"\x02" + digests).digest()
    assert group_leaf(datas, "digests") == leaf
    stored = _stored(engine, before)
    assert [d["seq"] for d in stored] == [before]  # one stored row (one frame) for the group
    assert stored[0]["hash"] == leaf.hex()
    assert orjson.loads(stored[0]["data"]) == [orjson.loads(d) for d in datas]
    assert log.subtree_hash(0, before) == leaf  # the tree's leaf is the group's


def test_a_lone_record_and_a_mixed_group_are_appended_as_without_the_bench(engine) -> None:
    log = engine.audit
    log._prepare = types.MethodType(grouped_prepare("bytes"), log)
    before = log.size
    lone = log.record_many([_sealed("p1")])[0]
    assert orjson.loads(lone.data)["id"] == f"audit-{before}"
    assert lone.leaf_hash == hashlib.sha256(b"\x00" + lone.data).digest()
    mixed = log.record_many([_sealed("p2"), {"type": {"code": "110110"}, "recorded": "2026-01-01T00:00:00Z"}])
    assert log.size == before + 3  # one leaf a record, as the log appends them
    assert [orjson.loads(r.data)["id"] for r in mixed] == [f"audit-{before + 1}", f"audit-{before + 2}"]
    assert [d["seq"] for d in _stored(engine, before)] == [before, before + 1, before + 2]


def test_an_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="no group leaf"):
        group_leaf([b"{}"], "none")


def test_the_bench_runs_over_the_real_app(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "group_leaf_ceiling.py"), "digests", "audited", "64",
                          "8"], capture_output=True, text=True, timeout=300, cwd=tmp_path, check=True).stdout
    assert "audited GET /fhir/Observation/o1 over ASGI in process, 8 callers" in out
    records, groups = (int(w) for w in out.split(";")[1].split()[0:4:3])
    assert records > groups  # groups of more than one record went through the group leaf
