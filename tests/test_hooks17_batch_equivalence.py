"""An ingest batch decides exactly as each message's write group decided alone, also when one of
its messages fails and is rolled back, and across a restart between two batches.

The recognition hook keeps what it reads and writes for a whole ingest batch (``Recognition.batch``:
a preview read once, check and flag rows written once at its end, results of no recognition item
passed over by the identity of their plan's coding objects). Its answers must be those of the hook
run for each write group with only what that group reads itself (the ingestor without the hook's
batch scope). One varied feed -- the same resident's blood count at two members in one batch (the
second recognised against the first), an order with a re-test reason (ORC-16), a repeat that
arrives before its prior, a prior sent preliminary, made final and then corrected (OBX-11 ``C``), a
liver panel then a single ALT with the panel withdrawn, 12-OBX reports built from compiled plans
(one resident twice), and a message that fails while it is stored -- is ingested group by group
without the failing message, then with the batch scope: all of it as one batch (which fails as a
whole and is redone message by message), and without the failing message as two batches with the
engine closed and opened again between them (on mongomock, whose data lives in the process: as one
batch). Every ACK's MSA and ERR segments, flag, check row, tally, index entry, DetectedIssue,
patient index row and Patient, and the HR marks of the stored results, are the same each way: the
failing message leaves nothing of itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bench.ingest import oru_lab
from engine.engine import Engine
from engine.identity.mpi import KEY_FILE
from engine.recognition.hr_mark import HR_SYSTEM
from engine.settings import Settings
from tests.test_rec14_mixed_batch import LI, ZHAO, _msh, _order, _pid, _result
from tests.test_recognition_batch import _state, _warnings
from tests.test_recognition_policy_e2e import ALT, CBC, INSTITUTIONS, LFT, WANG, ts
from tests.test_recognition_shortcuts import _at

_FAILING = "X9FAIL"  # the placer number of the order whose message fails while it is stored
_REASON = "R01^病情变化^urn:huren:recognition-reason"
# the bench's lab senders join the three members: their 12-OBX reports are built from compiled
# plans, whose results of no recognition item the batch passes over by the plan's answer
_LAB_SENDERS = """\
- {code: FNXRMYY, name: 阜宁县人民医院, community: c1, grade: 三级, qc: {passed: all, until: 2099-12-31}}
- {code: FNYLWSY, name: 阜宁县益林镇中心卫生院, community: c1, grade: 一级, qc: {passed: all, until: 2099-12-31}}
"""


def _order_with_reason(inst: str, person: str, placer: str, item: str, days: int) -> str:
    """An order stating its re-test reason (ORC-16) when it is placed."""
    when = ts(days)
    return (_msh(inst, "HIS", "ORM^O01^ORM_O01", when, f"{inst}-ORM-{placer}") + _pid(inst, person)
            + f"ORC|NW|{placer}^HIS|||||||{when}|||D7^张^医生||||{_REASON}\n" + f"OBR|1|{placer}^HIS||{item}|||{when}\n")


def _messages() -> list[str]:
    return [
        # 王建国's blood count at HOSPA, repeated at HOSPB in the same batch: flagged against it
        _order("HOSPA", WANG, "A1", CBC, 9), _result("HOSPA", WANG, "A1", CBC, 9),
        _order("HOSPB", WANG, "B1", CBC, 4), _result("HOSPB", WANG, "B1", CBC, 4),
        # and again at HOSPC with a reason recorded at order time (justified)
        _order_with_reason("HOSPC", WANG, "C1", CBC, 3), _result("HOSPC", WANG, "C1", CBC, 3),
        # 李秀英: her repeat first, its prior afterwards
        _order("HOSPB", LI, "B3", CBC, 2), _result("HOSPB", LI, "B3", CBC, 2),
        # a message that fails while it is stored: 王建国's fourth blood count, a repeat if it stayed
        _order("HOSPB", WANG, _FAILING, CBC, 1), _result("HOSPB", WANG, _FAILING, CBC, 1),
        _order("HOSPA", LI, "A3", CBC, 5), _result("HOSPA", LI, "A3", CBC, 5),
        # 赵军: a prior sent preliminary, a repeat decided while it is, the prior final, then corrected
        _order("HOSPA", ZHAO, "A4", CBC, 6), _result("HOSPA", ZHAO, "A4", CBC, 6, status="P"),
        _order("HOSPB", ZHAO, "B4", CBC, 3), _result("HOSPB", ZHAO, "B4", CBC, 3),
        _result("HOSPA", ZHAO, "A4", CBC, 6, status="F", n=2),
        _result("HOSPA", ZHAO, "A4", CBC, 6, status="C", n=3),
        # 王建国's liver panel, a single ALT at another member, then the panel withdrawn
        _order("HOSPA", WANG, "A2", LFT, 6), _result("HOSPA", WANG, "A2", LFT, 6),
        _order("HOSPC", WANG, "C2", ALT, 2), _result("HOSPC", WANG, "C2", ALT, 2),
        _result("HOSPA", WANG, "A2", LFT, 6, status="W", n=3),
    ]


def _lab() -> list[bytes]:
    """12-OBX reports (a blood count and an ALT): one resident twice at one institution on one
    day, and two residents repeated at another member, each way round (the same instant: no flag)."""
    return [oru_lab(3), oru_lab(3 + 499), oru_lab(5), _at(oru_lab(5 + 499), "FNYLWSY"),
            _at(oru_lab(6), "FNYLWSY"), oru_lab(6 + 499)]


def _fail_one(engine: Engine) -> None:
    """The store fails for the order of one message (as a full disk would, for it alone)."""

    def refuse(resource: dict[str, Any], previous: Any) -> list[dict[str, Any]]:
        if any(isinstance(i, dict) and i.get("value") == _FAILING for i in resource.get("identifier") or ()):
            raise RuntimeError("disk trouble for this message")
        return []

    engine.repository.add_write_hook(refuse, types={"ServiceRequest"})


def _marks(engine: Engine) -> dict[str, list[str]]:
    """The HR marks of every stored result, by reference."""
    out: dict[str, list[str]] = {}
    for rtype in ("DiagnosticReport", "Observation"):
        for r in engine.repository.search(rtype, [("_count", "500")]).resources:
            out[f"{rtype}/{r['id']}"] = sorted(t["code"] for t in (r.get("meta") or {}).get("tag") or ()
                                               if t.get("system") == HR_SYSTEM)
    return out


def _engine(tmp_path: Path, backend: str, name: str, *, per_group: bool = False) -> Engine:
    """An engine on store ``name`` whose store fails for one message (``_fail_one``).
    ``per_group``: without the recognition hook's ingest-batch scope, so that each message's write
    group is decided with only what it reads itself (no preview, no batch memo, no pass-over)."""
    keys = tmp_path / name / "keys"
    if not keys.exists() and (tmp_path / "one" / "keys" / KEY_FILE).exists():
        keys.mkdir(parents=True)
        shutil.copy(tmp_path / "one" / "keys" / KEY_FILE, keys / KEY_FILE)  # the same persons
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "institutions.yaml").write_text(INSTITUTIONS + _LAB_SENDERS, "utf-8")
    settings = Settings(data_dir=tmp_path / name, http_port=0, mllp_port=0, site=site)
    engine = Engine(settings.with_(mongodb_uri="mongomock://") if backend == "mongomock" else settings)
    if per_group:
        engine.ingestor.batch_scopes = tuple(scope for scope in engine.ingestor.batch_scopes
                                             if getattr(scope, "__self__", None) is not engine.recognition)
    _fail_one(engine)
    return engine


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_batches_failures_and_restarts_decide_as_each_write_group_alone(tmp_path: Path, backend: str) -> None:
    texts = _messages()
    raws = [(text.replace("\n", "\r").encode("utf-8"), "mllp", "t") for text in texts]
    raws += [(raw, "mllp", "lab") for raw in _lab()]
    failing = [n for n, (raw, _, _) in enumerate(raws) if _FAILING.encode() in raw]
    assert len(failing) == 2
    kept = [raw for n, raw in enumerate(raws) if n not in failing]

    with _engine(tmp_path, backend, "one", per_group=True) as engine:
        reference = [_warnings(o.ack) for o in engine.ingestor.process(kept)]
        assert engine.ingestor.stats.redone_batches == 0
        expected, marks = _state(engine), _marks(engine)
    _what_the_feed_is_for(expected, marks)

    if backend == "mongomock":  # its data lives in the process: no store survives a restart
        with _engine(tmp_path, backend, "batch") as engine:
            batched = [_warnings(o.ack) for o in engine.ingestor.process(kept)]
            assert engine.ingestor.stats.redone_batches == 0  # one batch: the hook's batch scope
            assert (_state(engine), _marks(engine)) == (expected, marks)
        assert batched == reference
        return

    with _engine(tmp_path, backend, "batch") as engine:
        outcomes = engine.ingestor.process(raws)
        assert engine.ingestor.stats.redone_batches == 1  # failed whole, then redone message by message
        assert (_state(engine), _marks(engine)) == (expected, marks)  # nothing of the failing message
    assert [outcomes[n].code for n in failing] == ["AE", "AE"]
    assert [_warnings(o.ack) for n, o in enumerate(outcomes) if n not in failing] == reference

    half = len(kept) // 2  # two batches, the engine closed and opened again between them
    with _engine(tmp_path, backend, "restart") as engine:
        first = [_warnings(o.ack) for o in engine.ingestor.process(kept[:half])]
        assert engine.ingestor.stats.redone_batches == 0
    with _engine(tmp_path, backend, "restart") as engine:  # the same store, a new process state
        second = [_warnings(o.ack) for o in engine.ingestor.process(kept[half:])]
        assert engine.ingestor.stats.redone_batches == 0
        assert (_state(engine), _marks(engine)) == (expected, marks)
    assert first + second == reference


def _what_the_feed_is_for(expected: dict[str, Any], marks: dict[str, list[str]]) -> None:
    """Each case of the feed decided as it is meant to be (else the comparisons prove little)."""
    flags = {(f["person"], f["inst"], f["item"]): f["status"] for f in expected["flags"]}
    assert flags.get((WANG, "HOSPB", "CBC")) == "flagged", expected["flags"]  # a repeat of the same batch
    assert flags.get((WANG, "HOSPC", "CBC")) == "justified", expected["flags"]  # its ORC-16 reason
    assert flags.get((LI, "HOSPB", "CBC")) == "flagged", expected["flags"]  # its prior came after it
    assert flags.get((ZHAO, "HOSPB", "CBC")) == "flagged", expected["flags"]  # its prior made final
    assert flags.get((WANG, "HOSPC", "LFT")) == "void", expected["flags"]  # the panel withdrawn
    assert any(issue.get("status") == "preliminary" for issue in expected["issues"].values())
    assert any(marks.values())  # final results of items carry their HR marks
    lab = {(e["inst"], e["item"]) for e in expected["index"] if e.get("person", "").startswith("110101")}
    # the reports, and the ALT among twelve observations (an analyte of the liver panel), indexed
    assert {("FNXRMYY", "CBC"), ("FNXRMYY", "LFT"), ("FNYLWSY", "CBC")} <= lab, lab
    assert not any(_FAILING in str(row) for row in expected["checks"] + expected["index"])
