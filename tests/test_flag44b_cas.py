"""flag44b: a flag's compare-and-set compares the row as read, not only its ``reviewed`` count (rv44f HIGH 1).

On MongoDB without transactions (a standalone server; mongomock here) an auditor's review reads the flag row, decides,
and writes its own fields only while the row is still the version read (``RecognitionState._cas_flag``). flag44 keyed
that on the ``reviewed`` count, which no decision of the hook changes: a review read before the LIS's cancellation
voided the flag wrote it back upheld (the probe in tests/test_rv44f_probes.py), and one read before a re-decision --
the prior result withdrawn, another result the prior now -- recorded the auditor's decision on a prior they never
saw. Now the whole row as read is compared (``state.as_read``): the stale review loses, reads again, and is answered
for what it finds -- a void flag 422 (nothing to review), a flag decided again on other facts 409 (read it and review
again: ``Reviews._review_once``).

Everything through the real path: the lab's HL7 v2 over ``POST /hl7v2``, the reviews over HTTP through FastAPI, the
real store read back; the review is held at its compare-and-set (the collection's ``update_if``) while the LIS's
message is filed -- on SQLite the review holds the write lock from its read (``BEGIN IMMEDIATE``), so there the
message waits for the review instead, and the order is the backend's own.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.recognition.flags import ROW_FIELDS
from engine.recognition.state import as_read
from tests.test_flag44_cas import (
    ORDER_AT,
    PRIOR_AT,
    A,
    B,
    _consistent_tallies,
    _lis,
    _repeat,
    _review,
    _send,
    store,
)
from tests.test_labels20_report_flags import _auditor
from tests.test_probepay26_windows import CBC, order, result

__all__ = ["store"]  # the fixture, used by name

NEARER_AT = "20260302090000+0800"  # a second prior of FNXRMYY's, the day before the repeat


def _two_priors(store: Engine, http: TestClient) -> tuple[dict[str, str], dict[str, str], str]:
    """FNXRMYY's CBCs of 2026-03-01 (A1) and 2026-03-02 (A2), FNZYY's order and repeat of 2026-03-03: FNZYY's flag
    (A2 is flagged too, a repeat of A1); the LIS's and an auditor's headers, FNZYY's flag's id."""
    lis = _lis(store)
    for message in (result(A, "A1", CBC, PRIOR_AT), result(A, "A2", CBC, NEARER_AT), order(B, "B1", CBC, ORDER_AT),
                    _repeat()):
        assert "MSA|AA" in _send(http, lis, message)
    auditor = _auditor(store)
    (row,) = [r for r in http.get("/reports/duplicates", headers=auditor).json()["rows"] if r["institution"] == B]
    return lis, auditor, row["id"]


def _held_review(store: Engine, flag: str, auditor: dict[str, str], reason: str, monkeypatch: pytest.MonkeyPatch,
                 meanwhile: str, lis: dict[str, str], http: TestClient) -> tuple[int, dict[str, Any]]:
    """An auditor's overturn (``reason``) sent from another thread and held at its compare-and-set -- after it read the
    row and decided -- while the LIS's ``meanwhile`` is filed over ``POST /hl7v2``; (its HTTP status, its body).
    On SQLite the review is not held (its ``BEGIN IMMEDIATE`` keeps the message out): the message is filed after it."""
    isolated = getattr(store.store, "transactions", True) is not False
    coll = store.recognition.flags.coll
    update_if = coll.update_if
    read_done, go = threading.Event(), threading.Event()

    def held(doc_id: str, where: dict[str, Any], fields: dict[str, Any]) -> bool:
        mine = (fields.get("reviews") or [{}])[-1].get("reason") == reason
        if doc_id == flag and mine and not go.is_set() and not isolated:
            read_done.set()
            assert go.wait(30)
        return update_if(doc_id, where, fields)

    monkeypatch.setattr(coll, "update_if", held)
    answer: list[tuple[int, dict[str, Any]]] = []

    def review() -> None:
        with TestClient(create_app(store)) as own:
            r = own.post(f"/reports/duplicates/{flag}/review", json={"decision": "overturned", "reason": reason},
                         headers=auditor)
            answer.append((r.status_code, r.json()))

    other = threading.Thread(target=review)
    other.start()
    if isolated:
        other.join(30)
    else:
        assert read_done.wait(30)
    assert "MSA|AA" in _send(http, lis, meanwhile)
    go.set()
    other.join(30)
    (got,) = answer
    return got


def test_a_review_read_before_the_flag_was_decided_on_another_prior_is_refused_409(
        store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flag's prior is A2, upheld by the first auditor. A second auditor's overturn reads the row (prior A2) and
    decides; meanwhile the LIS withdraws A2 (OBX-11/OBR-25 X): the hook decides the flag again on A1 -- the first review
    no longer stands (its prior is gone), ``reviewed`` 1 kept. The stale overturn must not land on A1's flag as if the
    auditor had judged it: MongoDB without transactions answers 409 (the flag was decided again since it was read,
    review it again), and the row keeps the hook's decision; SQLite orders the two (the review first, then the
    re-decision on A1, the overturn kept in the history). Either way the row's status is the one its facts give and
    the tallies are a rebuild's."""
    with TestClient(create_app(store)) as http:
        lis, auditor, flag = _two_priors(store, http)
        first = store.recognition.flags.get(flag)
        assert first["prior_day"] == "2026-03-02"  # A2, the nearer
        assert _review(http, flag, auditor, "upheld", "属实") == 200
        withdrawn = result(A, "A2", CBC, NEARER_AT, "X")
        status, body = _held_review(store, flag, auditor, "不属实", monkeypatch, withdrawn, lis, http)
        row = store.recognition.flags.get(flag)
        assert (row["prior_day"], row["prior"] != first["prior"]) == ("2026-03-01", True)  # decided again on A1
        said = [r["reason"] for r in row["reviews"]]
        if getattr(store.store, "transactions", True) is not False:  # SQLite: the review came first, kept
            assert status == 200 and said == ["属实", "不属实"], (status, body)
        else:
            assert status == 409, (status, body)
            assert body["resourceType"] == "OperationOutcome"
            assert "decided again" in body["issue"][0]["diagnostics"], body
            assert said == ["属实"]
        # the last review was made on A2: on A1 it does not stand, the flag is decided on its own facts again
        assert row["status"] not in ("upheld", "overturned"), row["status"]
        _consistent_tallies(store)


def test_a_review_read_before_the_flag_was_voided_is_answered_422_and_the_flag_stays_void(
        store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """rv44f HIGH 1 as an overturn: read before the LIS cancelled the repeat, the review is refused 422 (read again, the
    flag is void: nothing to review) and the flag stays void with its DetectedIssue cancelled -- not overturned in one
    bucket of the report and void in another. SQLite: the review first (200), then the void."""
    from tests.test_flag44_cas import _flagged

    with TestClient(create_app(store)) as http:
        lis, auditor, flag = _flagged(store, http)
        assert _review(http, flag, auditor, "upheld", "属实") == 200
        status, body = _held_review(store, flag, auditor, "不属实", monkeypatch, _repeat("6.1", "X"), lis, http)
        isolated = getattr(store.store, "transactions", True) is not False
        assert status == (200 if isolated else 422), (status, body)
        row = store.recognition.flags.get(flag)
        issue = http.get(f"/fhir/DetectedIssue/{flag}", headers=auditor).json()
        assert (row["status"], issue["status"]) == ("void", "cancelled")
        _consistent_tallies(store)


def test_the_row_as_read_names_every_field_a_flag_row_may_hold(store: Engine) -> None:
    """``as_read`` names each field of ``flags.ROW_FIELDS`` the row lacks as absent: a field missing from the list
    would let a writer that added it (a void's ``void_reason``) be taken for the version read. The flag rows this
    engine stores -- decided, reviewed, voided -- hold no field outside the list."""
    with TestClient(create_app(store)) as http:
        lis, auditor, flag = _flagged_and_voided(store, http)
        rows = store.recognition.flags.find({})
        assert rows and all(set(r) - {"_id"} <= set(ROW_FIELDS) for r in rows), [set(r) - set(ROW_FIELDS) for r in rows]
        (row,) = rows
        where = as_read(row)
        assert set(where) == set(ROW_FIELDS) and where["void_reason"] == row["void_reason"]
        assert store.recognition.flags.count({"_id": flag, **{k: v for k, v in where.items()
                                                               if not isinstance(v, (list, dict))}}) == 1


def _flagged_and_voided(store: Engine, http: TestClient) -> tuple[dict[str, str], dict[str, str], str]:
    from tests.test_flag44_cas import _flagged

    lis, auditor, flag = _flagged(store, http)
    assert _review(http, flag, auditor, "upheld", "属实") == 200
    assert "MSA|AA" in _send(http, lis, _repeat("6.1", "X"))
    return lis, auditor, flag
