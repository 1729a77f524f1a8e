"""A lab's re-runs in one ingest batch decide as the full decision (thirty-eighth round, perf38b).

The batch preview's pass-over of a result that is no recognition item (``NotItems.passes``) now
also knows a later version -- which the merge rules make a new dict of over the stored one,
before the HR mark and the hook see it -- by its "Type/id" and its ``code`` and ``performer``
being equal to what the preview classified. Here blood counts are stored, then re-run (every
value another, F again: every result a later version; one panel also re-run as preliminary, its
ALT and report no longer final; one panel sent and re-run in the same batch, whose ids the
preview must not trust), once with every pass-over turned off, each message alone, and once
with them on, the re-runs in one batch. Every flag, check row, tally, index entry, DetectedIssue,
patient index record, Patient, HR mark and ACK warning must be the same, on SQLite and on the
MongoDB backend (mongomock).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bench.ingest import oru_lab
from bench.tfix35_reruns import rerun
from engine.engine import Engine
from engine.identity.mpi import KEY_FILE
from engine.messages import message_id
from engine.recognition.batch_scope import NotItems
from tests.test_recognition_batch import _settings, _state, _warnings
from tests.test_recognition_shortcuts import _at


def _preliminary(raw: bytes) -> bytes:
    """``raw`` with every result and the report preliminary (OBX-11 and OBR-25 P)."""
    text = raw.decode("utf-8").replace("|||F|||", "|||P|||").replace("||||F\r", "||||P\r")
    assert "|||P|||" in text and "|||F|||" not in text
    return text.encode("utf-8")


def _panels() -> list[bytes]:
    return [oru_lab(3), oru_lab(4), oru_lab(3 + 499), oru_lab(5), _at(oru_lab(5 + 499), "FNYLWSY"),
            _at(oru_lab(8), "FNYLWSY"), oru_lab(8 + 499), oru_lab(11)]


def _reruns() -> list[bytes]:
    return [rerun(3), rerun(4), rerun(3 + 499), _preliminary(rerun(5)), _at(rerun(5 + 499), "FNYLWSY"),
            _at(rerun(8), "FNYLWSY"), rerun(8 + 499),
            oru_lab(12), rerun(12),  # sent and re-run in one batch: its results' ids come twice
            rerun(11)]


def _marks(engine: Engine) -> dict[str, Any]:
    """Every stored result's HR marks (``meta.tag``, which ``_state`` leaves out with ``meta``) and version."""
    return {f"{rtype}/{r['id']}": (r["meta"].get("versionId"), r["meta"].get("tag"))
            for rtype in ("Observation", "DiagnosticReport")
            for r in engine.repository.search(rtype, [("_count", "500")]).resources}


def _raw(raws: list[bytes]) -> list[tuple[bytes, str, str]]:
    return [(raw, "file", "file:lab") for raw in raws]


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_reruns_in_one_batch_decide_as_the_full_decision(tmp_path: Path, backend: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as off:
        off.setattr(NotItems, "passes", lambda self, resource: False)
        with Engine(_settings(tmp_path, backend, "full")) as engine:
            for raw in _raw(_panels()):
                engine.ingestor.process([raw])
            full = [_warnings(engine.ingestor.process([raw])[0].ack) for raw in _raw(_reruns())]
            expected, expected_marks = _state(engine), _marks(engine)

    passes = NotItems.passes
    later: list[str] = []

    def counted(self: NotItems, resource: dict[str, Any]) -> bool:
        found = passes(self, resource)
        seen = self.codes.get(id(resource.get("code")))
        if found and (seen is None or seen[0] is not resource.get("code")):  # by value, not by identity
            later.append(f"{resource['resourceType']}/{resource['id']}")
        return found

    monkeypatch.setattr(NotItems, "passes", counted)
    keys = tmp_path / "short" / "keys"
    keys.mkdir(parents=True)
    shutil.copy(tmp_path / "full" / "keys" / KEY_FILE, keys / KEY_FILE)  # the same key: the same persons
    with Engine(_settings(tmp_path, backend, "short")) as engine:
        engine.ingestor.process(_raw(_panels()))
        outcomes = engine.ingestor.process(_raw(_reruns()))
        assert engine.ingestor.stats.redone_batches == 0
        warnings, state, marks = [_warnings(o.ack) for o in outcomes], _state(engine), _marks(engine)
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", "LAB000000012"))
        assert doc is not None
        twice = set(doc["resources"])

    assert warnings == full
    assert state == expected
    assert marks == expected_marks
    # the pass-over was taken by value for the re-runs' later versions (11 results of each of 7 re-runs
    # at least, by the HR mark and by the hook), never for the panel sent and re-run in the same batch
    assert len(later) >= 2 * 11 * 7, len(later)
    assert any(ref.startswith("Observation/") for ref in twice) and not twice & set(later)
    assert any(tag for _, tag in expected_marks.values())  # some results carry HR marks
    assert any(version == "2" for version, _ in expected_marks.values())  # re-runs are later versions
    assert expected["checks"] and expected["index"]  # orders checked, items indexed


def test_passes_by_value_only_for_an_equal_code_and_performer() -> None:
    """The by-value half of ``NotItems.passes``: the same "Type/id", type, code and performer
    (values); not another type, another code, another performer, a resource with no code."""
    code = {"coding": [{"system": "urn:huren:code:FNXRMYY", "code": "WBC"}]}
    performer = [{"reference": "Organization/o1"}]
    skip = NotItems(rules=None, codes={}, refs={"Observation/r1": (code, performer, "Observation")})  # type: ignore[arg-type]

    def result(**changes: Any) -> dict[str, Any]:
        r = {"resourceType": "Observation", "id": "r1", "code": {"coding": [{"system": "urn:huren:code:FNXRMYY",
                                                                             "code": "WBC"}]},
             "performer": [{"reference": "Organization/o1"}]}
        r.update(changes)
        return r

    assert skip.passes(result())
    assert not skip.passes(result(id="r2"))
    assert not skip.passes(result(resourceType="DiagnosticReport"))
    assert not skip.passes(result(code={"coding": [{"system": "urn:huren:code:FNXRMYY", "code": "ALT"}]}))
    assert not skip.passes(result(performer=[{"reference": "Organization/o2"}]))
    assert not skip.passes(result(performer=None))
    assert not skip.passes({k: v for k, v in result().items() if k != "code"})
