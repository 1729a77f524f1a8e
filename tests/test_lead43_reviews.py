"""Two auditors' reviews of one flag sent at once are both kept, on every backend (the lead, forty-third round).

rv41i's probe sends the two reviews from two threads and is right only when they happen to interleave: MongoDB
without transactions (a standalone server, mongomock) isolates nothing, and once in ci164 both reviews read the flag
with no review and each wrote its own list of one. Here both threads are held at their first write of the flag until
both have read it -- the interleaving that loses a review, made every time -- and both reviews must be kept, in the
order stored, with the DetectedIssue saying the same. On a replica set (``HUREN_MONGODB_URI``) the second write is a
WriteConflict, said as ``WrittenMeanwhile`` and tried again."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_httpfix41b_reasons import _one_flag
from tests.test_httpfix41b_reasons import store as store  # noqa: F401 -- an engine of its own on each backend


def _held_at_first_write(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> threading.Barrier:
    """Each thread's first write of a flag row waits until the other thread reaches its own: both read first."""
    flags = engine.recognition.flags
    met = threading.Barrier(2, timeout=20)
    waited: set[int] = set()

    def held(write: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() not in waited:
                waited.add(threading.get_ident())
                met.wait()
            return write(*args, **kwargs)
        return call

    monkeypatch.setattr(flags, "replace", held(flags.replace))
    monkeypatch.setattr(flags, "update_if", held(flags.update_if))
    return met


def test_two_reviews_that_both_read_the_flag_before_either_writes_are_both_kept(
        store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    if not hasattr(store.store, "after_commit"):  # (a MongoDB store: mongomock here, a replica set with the URI)
        pytest.skip("SQLite's BEGIN IMMEDIATE orders the two reviews (held at the write, they would wait on each "
                    "other): rv41i's probe sends them at once there")
    with TestClient(create_app(store)) as http:
        auditor, flag = _one_flag(store, http)
        _held_at_first_write(store, monkeypatch)
        answers: list[int] = []

        def send(decision: str, reason: str) -> None:
            with TestClient(create_app(store)) as own:
                answers.append(own.post(f"/reports/duplicates/{flag}/review",
                                        json={"decision": decision, "reason": reason}, headers=auditor).status_code)

        threads = [threading.Thread(target=send, args=a) for a in (("upheld", "属实"), ("overturned", "有临床理由"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(answers) == [200, 200], answers
        kept = store.recognition.flags.get(flag)
        assert sorted(r["reason"] for r in kept["reviews"]) == sorted(["属实", "有临床理由"]), kept["reviews"]
        assert kept["status"] == kept["reviews"][-1]["decision"], kept
        issue = http.get(f"/fhir/DetectedIssue/{flag}", headers=auditor).json()
        assert [m["action"]["text"] for m in issue["mitigation"] if "date" in m] == \
            [r["reason"] for r in kept["reviews"]], issue["mitigation"]
        assert issue["status"] == {"upheld": "final", "overturned": "cancelled"}[kept["status"]], issue["status"]
        shown = http.get("/reports/duplicates", headers=auditor).json()["rows"]
        assert [r["status"] for r in shown if r["id"] == flag] == [kept["status"]], shown


def test_a_review_answer_names_no_internal_count(store: Engine) -> None:  # noqa: F811
    """The review's answer is the flag as before: its ``reviewed`` count (the write's condition) stays inside."""
    with TestClient(create_app(store)) as http:
        auditor, flag = _one_flag(store, http)
        for decision in ("upheld", "overturned"):
            r = http.post(f"/reports/duplicates/{flag}/review", json={"decision": decision, "reason": "核实"},
                          headers=auditor)
            assert r.status_code == 200, r.text
            assert "reviewed" not in r.json() and [v["decision"] for v in r.json()["reviews"]][-1] == decision
        assert [v["decision"] for v in store.recognition.flags.get(flag)["reviews"]] == ["upheld", "overturned"]
