"""rv44f: probes of the forty-fourth round's flag44 (every flag writer a compare-and-set on ``reviewed``), aud44 (the
audited read's record) and ing44 (write-path cuts), each through the real path: the lab's HL7 v2 over ``POST /hl7v2``,
an auditor's reviews over HTTP through FastAPI, the real store read back.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit import record
from engine.engine import Engine
from tests.test_flag44_cas import _consistent_tallies, _flagged, _repeat, _review, _said, _send, store

__all__ = ["store"]  # the fixture, used by name


def test_a_review_read_before_the_flag_was_voided_never_upholds_the_void_flag(
        store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first auditor upholds the flag. A second auditor's review (upheld again) reads the flag row -- upheld,
    reviewed 1 -- and is held just before its compare-and-set; meanwhile the LIS cancels the repeat (OBX-11/OBR-25 X
    over ``POST /hl7v2``): the hook voids the flag (``_void``: ``{**existing, status: void}``, ``reviewed`` 1 kept)
    and cancels its DetectedIssue. The review then goes on. It must not make the void flag upheld: its
    compare-and-set must lose to the void (then, read again, a void flag has nothing to review: 422), or the flag
    must end void all the same -- never a cancelled result's repeat charged back to the hospital as a duplicate."""
    if getattr(store.store, "transactions", True) is not False:
        pytest.skip("only without transactions does a review's read and its write let another writer in between")
    with TestClient(create_app(store)) as http:
        lis, auditor, flag = _flagged(store, http)
        assert _review(http, flag, auditor, "upheld", "属实") == 200
        coll = store.recognition.flags.coll
        update_if = coll.update_if
        read_done, go = threading.Event(), threading.Event()

        def held(doc_id: str, where: dict[str, Any], fields: dict[str, Any]) -> bool:
            mine = (fields.get("reviews") or [{}])[-1].get("reason") == "再次属实"  # (the route runs in a worker thread)
            if doc_id == flag and mine and not go.is_set():
                read_done.set()  # the review has read the row and decided: held before its write
                assert go.wait(30)
            return update_if(doc_id, where, fields)

        monkeypatch.setattr(coll, "update_if", held)
        answers: list[int] = []

        def second_review() -> None:
            with TestClient(create_app(store)) as own:
                answers.append(_review(own, flag, auditor, "upheld", "再次属实"))

        reviewer = threading.Thread(target=second_review)
        reviewer.start()
        assert read_done.wait(30)
        ack = _send(http, lis, _repeat("6.1", "X"))  # the LIS cancels the repeat result
        assert "MSA|AA" in ack, ack
        assert store.recognition.flags.get(flag)["status"] == "void"  # the hook voided it (the review still held)
        go.set()
        reviewer.join(30)
        row = store.recognition.flags.get(flag)
        # (a void flag is off the auditor's report, so its DetectedIssue is read over FHIR: ``_said`` reads the report)
        issue = http.get(f"/fhir/DetectedIssue/{flag}", headers=auditor).json()
        assert (row["status"], issue["status"]) == ("void", "cancelled"), (answers, row["status"])
        assert answers == [422]  # read again, the flag is void: nothing to review (flag44b)
        _consistent_tallies(store)


def test_salts_are_32_hex_digits_and_never_repeat_across_blocks() -> None:
    """aud44 cut the salts from one ``os.urandom`` block with ``bytes.hex(sep, SALT_BYTES)`` then ``split``. Each salt
    must still be SALT_BYTES of the CSPRNG as 2*SALT_BYTES lowercase hex digits, and none may repeat -- across three
    blocks here (a separator counted from the wrong end, or a block length not a multiple of SALT_BYTES, would make
    one short or long salt per block)."""
    record._salts.clear()
    drawn = [record.new_salt() for _ in range(3 * record._SALTS_AT_ONCE + 5)]
    assert all(len(s) == 2 * record.SALT_BYTES and set(s) <= set("0123456789abcdef") for s in drawn)
    assert len(set(drawn)) == len(drawn)


def test_a_message_refused_ae_207_after_every_flag_try_is_kept_byte_exact_and_replays(
        store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """flag44's refusal: a review stored before each of the hook's writes makes every compare-and-set lose, the batch
    and then the message alone are refused (AE 207 naming the 409). The message must be kept as it arrived -- the
    quarantine holding its bytes exactly as sent -- and an operator's replay (``POST /admin/quarantine/{id}/replay``,
    no review meanwhile) must file it, the flag keeping every review answered 200 and its tallies a rebuild's."""
    if getattr(store.store, "transactions", True) is not False:
        pytest.skip("only without transactions can a review be stored between the hook's read and its write")
    import base64

    from tests.test_flag44_cas import _Hold, _reviewer

    with TestClient(create_app(store)) as http:
        lis, auditor, flag = _flagged(store, http)
        assert _review(http, flag, auditor, "upheld", "属实") == 200
        reviewed: list[int] = []
        hold = _Hold(store, flag, monkeypatch, _reviewer(store, flag, auditor, reviewed), rounds=100)
        sent = _repeat("6.3", "C").replace("\n", "\r").encode()
        ack = _send(http, lis, sent.decode())
        hold.join()
        assert "MSA|AE" in ack and "207^" in ack and "(409)" in ack, ack
        (doc,) = [d for d in store.ingestor.messages.quarantined() if base64.b64decode(d["raw"]) == sent]
        assert (doc["status"], doc["ack_code"]) == ("quarantined", "AE")
        hold.rounds = 0
        operator = {"Authorization": "Bearer " + store.auth.issue_system_token("operator", "system/*.cruds")}
        r = http.post(f"/admin/quarantine/{doc['_id']}/replay", headers=operator)
        assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
        every = ["属实", *(f"理由{n}" for n in range(1, len(hold.others) + 1))]
        assert reviewed == [200] * len(hold.others)
        assert _said(http, flag, auditor) == ("overturned", every, "cancelled")
        _consistent_tallies(store)
