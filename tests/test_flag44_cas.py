"""flag44: every writer of a duplicate flag's row is a compare-and-set on its ``reviewed`` count (``_cas_flag``).

rv43b HIGH 2: on MongoDB without transactions (a standalone server; mongomock here) the recognition hook read a
reviewed flag, an auditor's second review was stored and answered 200 meanwhile, and the hook's row of the first
review replaced it -- the review lost from the flag while its DetectedIssue said it. Now the hook's row is written at
the end of its write group only while the stored row is still the version its decision read; when another writer got
there first, the flag is decided again from the row as stored (its reviews kept, its DetectedIssue written again from
them), a bounded number of times, and the message is refused with 409 rather than a review lost.

Everything through the real path, on both backends: the lab's HL7 v2 over ``POST /hl7v2`` into the real store, the
auditor's reviews over HTTP through FastAPI (``POST /reports/duplicates/{id}/review``), the flag and its DetectedIssue
read back. The race is driven deterministically: the hook is held at its end-of-group write of the flag row (the
collection's ``replace_if``, or ``count`` when its decision changed nothing) until a review sent from another thread
has been answered -- on SQLite the review waits for the ingest's ``BEGIN IMMEDIATE`` instead, and is let go after a
moment, so both orders are the backends' own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.recognition.state import FLAG_TRIES
from engine.settings import Settings
from tests.hl7_calls import ER7
from tests.test_labels20_report_flags import _auditor
from tests.test_probepay26_windows import CBC, order, result

A, B = "FNXRMYY", "FNZYY"  # the demo site's hospitals (both pass QC for every item)
PRIOR_AT, ORDER_AT, REPEAT_AT = "20260301090000+0800", "20260303080000+0800", "20260303090000+0800"


@pytest.fixture
def store(backend_settings: Settings) -> Iterator[Engine]:
    """An engine of its own on each storage backend (SQLite, mongomock; MongoDB with ``HUREN_MONGODB_URI``)."""
    with Engine(backend_settings) as eng:
        yield eng


def _lis(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("lis", "system/*.cruds")}


def _send(http: TestClient, lis: dict[str, str], message: str) -> str:
    r = http.post("/hl7v2", content=message.replace("\n", "\r").encode(), headers=lis | {"Content-Type": ER7})
    assert r.status_code == 200, r.text
    return r.text


def _repeat(value: str = "6.1", status: str = "F") -> str:
    """FNZYY's CBC of 2026-03-03, a repeat of FNXRMYY's of 2026-03-01 (the LIS's ORU, its WBC ``value``)."""
    return result(B, "B1", CBC, REPEAT_AT, status, obx=f"OBX|1|NM|WBC^白细胞^L||{value}|10*9/L|||||{{s}}")


def _flagged(store: Engine, http: TestClient) -> tuple[dict[str, str], dict[str, str], str]:
    """The lab's messages sent: FNXRMYY's CBC, FNZYY's order and its repeat (a flag); the LIS's and an auditor's
    headers and the flag's id."""
    lis = _lis(store)
    for message in (result(A, "A1", CBC, PRIOR_AT), order(B, "B1", CBC, ORDER_AT), _repeat()):
        assert "MSA|AA" in _send(http, lis, message)
    auditor = _auditor(store)
    (row,) = http.get("/reports/duplicates", headers=auditor).json()["rows"]
    return lis, auditor, row["id"]


def _review(http: TestClient, flag: str, auditor: dict[str, str], decision: str, reason: str) -> int:
    return http.post(f"/reports/duplicates/{flag}/review", json={"decision": decision, "reason": reason},
                     headers=auditor).status_code


def _said(http: TestClient, flag: str, auditor: dict[str, str]) -> tuple[str, list[str], str]:
    """The flag's status on the auditor's report, its DetectedIssue's review mitigations and status, over HTTP."""
    (row,) = [r for r in http.get("/reports/duplicates", headers=auditor).json()["rows"] if r["id"] == flag]
    issue = http.get(f"/fhir/DetectedIssue/{flag}", headers=auditor).json()
    return row["status"], [m["action"]["text"] for m in issue.get("mitigation") or () if "date" in m], issue["status"]


class _Hold:
    """Holds the hook at its write of the flag's DetectedIssue -- after its decision read the flag row, before its
    end-of-group compare-and-set of the row -- while ``meanwhile`` (another thread's real HTTP review) runs, at most
    ``rounds`` times. Without transactions the review is answered first; on SQLite it waits for the ingest's write
    lock, and the hook goes on after a moment. ``answers``: each end-of-group write or compare of the flag's row by
    the collection's ``replace_if``/``count`` (``replace``: the hook's write before flag44), in order (False, 0:
    lost); on SQLite a decision that changed nothing is not compared (its ``BEGIN IMMEDIATE`` keeps reviews out)."""

    def __init__(self, store: Engine, flag: str, monkeypatch: pytest.MonkeyPatch,
                 meanwhile: Callable[[], None], rounds: int = 1) -> None:
        self.flag, self.rounds, self.meanwhile = flag, rounds, meanwhile
        self.isolated = getattr(store.store, "transactions", True) is not False
        self.answers: list[tuple[str, Any]] = []
        self.first: list[bool] = []  # per round: was the review answered before the hook's write?
        self.others: list[threading.Thread] = []
        self.reviewing = False  # (a review's own DetectedIssue write passes)
        rec = store.recognition
        monkeypatch.setattr(rec, "_write_issue", self._held(rec._write_issue))
        coll = rec.flags.coll
        for name in ("replace_if", "count", "replace"):
            if hasattr(coll, name):  # (``replace_if`` is flag44's)
                monkeypatch.setattr(coll, name, self._noted(name, getattr(coll, name)))

    def _review(self) -> None:
        self.reviewing = True
        try:
            self.meanwhile()
        finally:
            self.reviewing = False

    def _held(self, write: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        def call(issue: dict[str, Any]) -> None:
            if issue.get("id") == self.flag and not self.reviewing and len(self.others) < self.rounds:
                other = threading.Thread(target=self._review)
                other.start()
                self.others.append(other)
                other.join(0.3 if self.isolated else 30)
                self.first.append(not other.is_alive())
            write(issue)
        return call

    def _noted(self, name: str, write: Callable[..., Any]) -> Callable[..., Any]:
        def call(doc: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            answer = write(doc, *args, **kwargs)
            if doc.get("_id") == self.flag:
                self.answers.append((name, answer))
            return answer
        return call

    def join(self) -> None:
        for other in self.others:
            other.join(30)


def _reviewer(store: Engine, flag: str, auditor: dict[str, str], answers: list[int]) -> Callable[[], None]:
    """Another auditor's overturn over HTTP (its own client: its own thread), reasons 理由1, 理由2, ... in turn."""
    def review() -> None:
        with TestClient(create_app(store)) as own:
            answers.append(_review(own, flag, auditor, "overturned", f"理由{len(answers) + 1}"))
    return review


def _tallies(store: Engine) -> list[dict[str, Any]]:
    return sorted(store.recognition.flag_days.find({}), key=lambda d: str(d["_id"]))


def _consistent_tallies(store: Engine) -> None:
    """The report's per-day tallies moved as the rows were written: what a rebuild from every row makes."""
    moved = _tallies(store)
    store.recognition.rebuild_tallies()
    assert _tallies(store) == moved


def test_a_review_stored_while_a_corrected_result_is_decided_again_is_kept(
        store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The LIS corrects the repeat (OBX-11 C, over ``POST /hl7v2``) while a second auditor overturns the flag: the
    hook decided the flag again from the row with the first review alone, its decision changed nothing, and its
    DetectedIssue said the first review only. Without transactions the review is stored in between and the hook's
    compare loses: the flag is decided again from the row with both reviews -- both kept, on the flag and on the
    DetectedIssue, the flag overturned as the last review says. On SQLite the review waits, and ends the same."""
    with TestClient(create_app(store)) as http:
        lis, auditor, flag = _flagged(store, http)
        assert _review(http, flag, auditor, "upheld", "属实") == 200
        reviewed: list[int] = []
        hold = _Hold(store, flag, monkeypatch, _reviewer(store, flag, auditor, reviewed))
        ack = _send(http, lis, _repeat("6.3", "C"))
        hold.join()
        assert "MSA|AA" in ack, ack
        assert reviewed == [200] and store.ingestor.stats.redone_batches == 0  # (decided again inside the batch)
        row = store.recognition.flags.get(flag)
        assert ([r["reason"] for r in row["reviews"]], row.get("reviewed")) == (["属实", "理由1"], 2)
        assert _said(http, flag, auditor) == ("overturned", ["属实", "理由1"], "cancelled")
        if hold.isolated:
            assert (hold.first, hold.answers) == ([False], [])  # the review waited for the lock; nothing compared
        else:
            assert (hold.first, hold.answers) == ([True], [("count", 0), ("count", 1)])  # lost, decided again
        _consistent_tallies(store)


def test_a_review_stored_while_a_late_reason_is_written_to_the_flag_is_kept(
        store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The HIS re-sends the order with a re-test reason (ORC-16 R07, after the result: a late reason, for the
    auditor) while a second auditor overturns the flag: the hook's decision changes the row (its late reasons), read
    with the first review alone. Without transactions its compare-and-set loses to the review stored in between and
    the flag is decided again from the row as stored: the late reason and both reviews on it, the review standing
    (a late reason is no fact the decision reads), the DetectedIssue saying both reviews."""
    with TestClient(create_app(store)) as http:
        lis, auditor, flag = _flagged(store, http)
        assert _review(http, flag, auditor, "upheld", "属实") == 200
        reviewed: list[int] = []
        hold = _Hold(store, flag, monkeypatch, _reviewer(store, flag, auditor, reviewed))
        ack = _send(http, lis, order(B, "B1", CBC, ORDER_AT, reason="R07"))
        hold.join()
        assert "MSA|AA" in ack and "reason R07 recorded after the result" in ack, ack
        assert reviewed == [200] and store.ingestor.stats.redone_batches == 0
        row = store.recognition.flags.get(flag)
        assert ([r["reason"] for r in row["reviews"]], row.get("reviewed"), row["late_reasons"]) == \
            (["属实", "理由1"], 2, ["R07"])
        assert _said(http, flag, auditor) == ("overturned", ["属实", "理由1"], "cancelled")
        if hold.isolated:
            assert (hold.first, hold.answers) == ([False], [("replace_if", True)])
        else:
            assert (hold.first, hold.answers) == ([True], [("replace_if", False), ("replace_if", True)])
        _consistent_tallies(store)


def test_a_flag_reviewed_again_at_every_try_refuses_the_message_and_keeps_every_review(
        store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another review stored before each of the hook's writes of the DetectedIssue, so that each of its compares
    loses: in the ingest batch ``FLAG_TRIES`` rounds, then ``Conflict``; the ingest writes the message alone, where
    the hook's DetectedIssue waits for the group's put and a review stored over it meanwhile refuses the put
    (``WrittenMeanwhile``). The message is not stored -- AE 207 naming the 409 -- and every review answered 200 is on
    the flag and on its DetectedIssue, the batch's writes undone around them; sent again, it is stored."""
    if getattr(store.store, "transactions", True) is not False:
        pytest.skip("only without transactions can a review be stored between the hook's read and its write")
    with TestClient(create_app(store)) as http:
        lis, auditor, flag = _flagged(store, http)
        assert _review(http, flag, auditor, "upheld", "属实") == 200
        reviewed: list[int] = []
        hold = _Hold(store, flag, monkeypatch, _reviewer(store, flag, auditor, reviewed), rounds=100)
        ack = _send(http, lis, _repeat("6.3", "C"))
        hold.join()
        assert reviewed == [200] * len(hold.others)
        every = ["属实", *(f"理由{n}" for n in range(1, len(hold.others) + 1))]
        row = store.recognition.flags.get(flag)
        assert ([r["reason"] for r in row["reviews"]], row.get("reviewed")) == (every, len(every))
        assert _said(http, flag, auditor) == ("overturned", every, "cancelled")
        assert "MSA|AE" in ack and "207^Application internal error" in ack and "(409)" in ack, ack
        assert store.ingestor.stats.redone_batches == 1  # the batch: FLAG_TRIES rounds lost, Conflict
        assert len(hold.answers) > FLAG_TRIES and set(hold.answers) == {("count", 0)}
        hold.rounds = 0
        assert "MSA|AA" in _send(http, lis, _repeat("6.3", "C")), "sent again, with no review meanwhile"
        assert _said(http, flag, auditor) == ("overturned", every, "cancelled")
        _consistent_tallies(store)


# --- the port's conditional replace, on each backend ----------------------------------------------------------------

def test_replace_if_replaces_the_whole_row_only_while_it_is_the_version_read(store: Engine) -> None:
    """``Collection.replace_if``: ``where`` None inserts only while none is stored; otherwise the whole document is
    replaced (a field the new one lacks is gone, as a decision drops what it no longer says) only while the stored one
    matches ``where`` -- an absent field matching None, as ``update_if``'s."""
    coll = store.store.collection("flag44_rows")
    assert coll.replace_if({"_id": "f", "status": "flagged", "void_reason": "x"}, None) is True
    assert coll.replace_if({"_id": "f", "status": "other"}, None) is False
    assert coll.get("f") == {"_id": "f", "status": "flagged", "void_reason": "x"}
    assert coll.replace_if({"_id": "f", "status": "upheld", "reviewed": 1}, {"reviewed": None}) is True
    assert coll.get("f") == {"_id": "f", "status": "upheld", "reviewed": 1}
    assert coll.replace_if({"_id": "f", "status": "flagged"}, {"reviewed": None}) is False  # reviewed meanwhile
    assert coll.replace_if({"_id": "g", "status": "flagged"}, {"reviewed": None}) is False  # none stored
    assert coll.get("f") == {"_id": "f", "status": "upheld", "reviewed": 1} and coll.get("g") is None


def test_a_failed_block_puts_back_a_conditional_replace_only_while_the_row_is_its_own(store: Engine) -> None:
    """Without transactions a failed block is undone from before-images: ``replace_if``'s is put back only while the
    row is still the one it wrote -- a review stored over it meanwhile by another process (here a write outside the
    block's journal) stays, where ``replace``'s unconditional put-back had removed it (rv43b HIGH 3's mechanism)."""
    if getattr(store.store, "transactions", True) is not False:
        pytest.skip("a transaction's abort undoes it on the server (SQLite, a replica set)")
    coll = store.store.collection("flag44_rows")
    coll.replace({"_id": "f", "status": "flagged"})
    coll.replace({"_id": "h", "status": "flagged"})
    with pytest.raises(RuntimeError), store.store.transaction():
        assert coll.replace_if({"_id": "f", "status": "upheld", "decided": 2}, {"reviewed": None})
        assert coll.replace_if({"_id": "h", "status": "upheld", "decided": 2}, {"reviewed": None})
        coll.raw.update_one({"_id": "f"}, {"$set": {"reviews": ["B"], "reviewed": 1}})  # another process's review
        raise RuntimeError("the block fails after its writes")
    assert coll.get("h") == {"_id": "h", "status": "flagged"}  # its own: put back
    assert coll.get("f") == {"_id": "f", "status": "upheld", "decided": 2, "reviews": ["B"], "reviewed": 1}
