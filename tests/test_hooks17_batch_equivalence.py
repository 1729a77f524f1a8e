"""An ingest batch decides exactly as the same messages one at a time, also when one of its
messages fails and is rolled back, and across a restart between two batches.

The recognition hook keeps what it reads and writes for a whole ingest batch (``Recognition.batch``:
a preview read once, check and flag rows written once at its end, results of no recognition item
passed over by the identity of their plan's coding objects). Its answers must not depend on how the
messages were grouped. One varied feed -- the same resident's blood count at two members in one
batch (the second recognised against the first), an order with a re-test reason (ORC-16), a repeat
that arrives before its prior, a prior sent preliminary, made final and then corrected (OBX-11
``C``), a liver panel then a single ALT with the panel withdrawn, and a message that fails while it
is stored -- is ingested three ways: message by message; as one batch, which fails as a whole and
is redone message by message; and without the failing message as two batches, the engine closed and
opened again between them (on mongomock, whose data lives in the process, as one batch). Every ACK's
MSA and ERR segments, flag, check row, tally, index entry, DetectedIssue, patient index row and
Patient, and the HR marks of the stored results, are the same each way; the failing message leaves nothing of itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.engine import Engine
from engine.identity.mpi import KEY_FILE
from engine.recognition.hr_mark import HR_SYSTEM
from tests.test_rec14_mixed_batch import LI, ZHAO, _msh, _order, _pid, _result, _settings
from tests.test_recognition_batch import _state, _warnings
from tests.test_recognition_policy_e2e import ALT, CBC, LFT, WANG, ts

_FAILING = "X9FAIL"  # the placer number of the order whose message fails while it is stored
_REASON = "R01^病情变化^urn:huren:recognition-reason"


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


def _engine(tmp_path: Path, backend: str, name: str) -> Engine:
    keys = tmp_path / name / "keys"
    if not keys.exists() and (tmp_path / "one" / "keys" / KEY_FILE).exists():
        keys.mkdir(parents=True)
        shutil.copy(tmp_path / "one" / "keys" / KEY_FILE, keys / KEY_FILE)  # the same persons
    engine = Engine(_settings(tmp_path, backend, name))
    _fail_one(engine)
    return engine


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_batches_failures_and_restarts_decide_as_one_message_at_a_time(tmp_path: Path, backend: str) -> None:
    texts = _messages()
    raws = [(text.replace("\n", "\r").encode("utf-8"), "mllp", "t") for text in texts]
    failing = [n for n, text in enumerate(texts) if _FAILING in text]
    assert len(failing) == 2
    kept = [raw for n, raw in enumerate(raws) if n not in failing]

    with _engine(tmp_path, backend, "one") as engine:
        one_by_one = [_warnings(engine.ingestor.process([raw])[0].ack) for raw in raws]
        expected, marks = _state(engine), _marks(engine)
    assert [one_by_one[n][0][:6] for n in failing] == ["MSA|AE", "MSA|AE"]  # each failed alone

    with _engine(tmp_path, backend, "batch") as engine:
        batched = [_warnings(o.ack) for o in engine.ingestor.process(raws)]
        assert engine.ingestor.stats.redone_batches == 1  # the batch failed whole, then message by message
        assert (_state(engine), _marks(engine)) == (expected, marks)
    assert batched == one_by_one

    expected_rest = [w for n, w in enumerate(one_by_one) if n not in failing]
    if backend == "mongomock":  # mongomock keeps its data in the process: no store survives a restart
        with _engine(tmp_path, backend, "rest") as engine:
            rest = [_warnings(o.ack) for o in engine.ingestor.process(kept)]
            assert engine.ingestor.stats.redone_batches == 0  # written as one batch: the hook's batch scope
            assert (_state(engine), _marks(engine)) == (expected, marks)  # nothing of the failing one
        assert rest == expected_rest
    else:  # two batches without the failing message, the engine closed and opened again between them
        half = len(kept) // 2
        with _engine(tmp_path, backend, "restart") as engine:
            first = [_warnings(o.ack) for o in engine.ingestor.process(kept[:half])]
            assert engine.ingestor.stats.redone_batches == 0
        with _engine(tmp_path, backend, "restart") as engine:  # the same store, a new process state
            second = [_warnings(o.ack) for o in engine.ingestor.process(kept[half:])]
            assert engine.ingestor.stats.redone_batches == 0
            assert (_state(engine), _marks(engine)) == (expected, marks)  # nothing of the failing one
        assert first + second == expected_rest
    _what_the_feed_is_for(expected, marks)


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
    assert not any(_FAILING in str(row) for row in expected["checks"] + expected["index"])
