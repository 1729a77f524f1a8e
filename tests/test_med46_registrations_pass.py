"""med46 (forty-sixth round): rv45e's three LOWs of the registrations table's upgrade pass (``engine.messages``):
(1) ``registrars_whole``'s marker and cursor are written only on the epoch it read (``_epoch_as_read``); (2) the
condition a row is as read (``_as_read``) is never empty -- a row with neither message nor instant was a plain
delete; (3) ``_rekey`` writes the row's new key only over what it read there, so a registration received earlier
that another process wrote meanwhile stands.

Real bytes through the real path: HL7 v2 over ``POST /hl7v2`` into the real store (one engine a module and backend,
``undeclared_eng``: SQLite, mongomock), the rows read from the registrations table. "Another process" is the same
store written between two steps of the pass, as rv45b's MED 2 probe does: on SQLite each page of the pass is one
``BEGIN IMMEDIATE`` (no other writer inside it), so (3) runs on mongomock, a MongoDB without transactions."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import _EPOCH, _REGISTRARS, MessageStore, _as_read, now_iso
from tests.hl7_calls import post
from tests.module_store import undeclared_eng, undeclared_eng_http  # noqa: F401
from tests.test_reg45_registrar_hd import _as_the_release_before, _rows
from tests.test_rvidentity32_probes import adt

_FROM = "registrars_whole_from"


def _marker_off(engine: Engine) -> MessageStore:
    """The pass's marker and cursor off the epoch, as a store the release before made; the epoch read again (the
    next open's)."""
    census = engine.store.collection("hl7_census")
    census.replace({k: v for k, v in census.get(_EPOCH).items() if k not in (_REGISTRARS, _FROM)})
    messages: MessageStore = engine.ingestor.messages
    messages._epoch = None
    return messages


def _mongo_only(engine: Engine) -> None:
    if engine.settings.mongodb_uri is None:
        pytest.skip("SQLite runs each page of the pass in one BEGIN IMMEDIATE: no other writer between its steps")


def test_the_pass_marks_no_epoch_rewritten_meanwhile(undeclared_eng: Engine, uhttp: TestClient,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """(1) While the pass reads its first page, another process's open rewrites the epoch -- an older release (a
    rollback) filed a registration keyed by the code meanwhile, which ``registrations_epoch`` sees (``unseen``) and
    drops the marker for -- and stops before its own pass. The pass must write neither its cursor nor its marker on
    that epoch: marked done, the older release's row was never keyed (its registrar's own A08 later refused as
    another's). The next open's pass keys it."""
    _as_the_release_before(undeclared_eng, uhttp, monkeypatch, ("M46P", "^HIS^DNS"))
    messages = _marker_off(undeclared_eng)
    census, get_many, meanwhile = undeclared_eng.store.collection("hl7_census"), messages.get_many, []

    def rewritten(ids: list[str]) -> dict[str, object]:
        if not meanwhile:
            meanwhile.append(True)
            _as_the_release_before(undeclared_eng, uhttp, monkeypatch, ("M46Q", "^HIS^DNS"))  # (the older release)
            epoch = census.get(_EPOCH)
            census.replace({k: v for k, v in epoch.items() if k not in (_REGISTRARS, _FROM)}
                           | {"since": now_iso(), "predates": True, "unseen": f"older release {now_iso()}"})
        return get_many(ids)

    with monkeypatch.context() as during:
        during.setattr(messages, "get_many", rewritten)
        messages.registrars_whole()
    assert meanwhile
    epoch = census.get(_EPOCH)
    assert epoch.get(_REGISTRARS) is None and epoch.get(_FROM) is None, epoch
    assert list(_rows(undeclared_eng, uhttp, "M46P")) == ["^HIS^DNS"]  # (what the pass keyed stays keyed)
    messages._epoch = None  # the next open
    assert messages.registrars_whole() is not None
    assert list(_rows(undeclared_eng, uhttp, "M46Q")) == ["^HIS^DNS"]
    assert census.get(_EPOCH).get(_REGISTRARS) is not None


@pytest.mark.parametrize("row", [{}, {"message": "m-gone"}, {"received_at": "2026-12-01T00:00:00Z"}],
                         ids=["neither", "message-alone", "instant-alone"])
def test_the_condition_as_read_of_a_row_without_message_or_instant_is_no_plain_delete(undeclared_eng: Engine,
                                                                                       row: dict) -> None:
    """(2) ``_as_read`` of an earlier release's row lacking its message, its instant or both (the pass's conditional
    delete and writes ask it): the row as read is deleted by it, a registration written under that key since -- a
    message and an instant of its own -- is not, on both backends. Before, a row with neither gave the empty
    condition, which matches any row: a plain delete. (No writer of this release leaves such a row for another
    process to write over before the pass -- ``note_registrations`` lets it stand as the first registration -- so
    the rule is asked of the store directly.)"""
    table = undeclared_eng.store.collection("hl7_registrations")
    doc_id = f"Patient/m46t-{len(row)}-{sorted(row)}|HIS"
    old = {"_id": doc_id, "record": doc_id.partition("|")[0], "application": "HIS", **row}
    table.replace({**old, "message": "m-written-since", "received_at": "2026-12-02T00:00:00Z", "whole": True})
    assert table.delete_if(doc_id, _as_read(old)) is False and table.get(doc_id) is not None
    table.replace(old)
    assert table.delete_if(doc_id, _as_read(old)) is True and table.get(doc_id) is None


def test_the_new_key_keeps_an_earlier_registration_written_meanwhile(
        undeclared_eng: Engine, uhttp: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """(3) ``^HIS^DNS`` registered the record twice (A04 received first, A08 of a re-registration after); the release
    before kept the later one under ``record|HIS`` (the first's row lost to a rollback). Between the pass's read of
    the new key ``record|^HIS^DNS`` (none) and its write, another process files the first registration again (its
    ``note_registrations``: the row of the first received). The pass writes the new key only over what it read, reads
    again and finds the first registration standing: it stays the row (the table keeps the first received)."""
    _mongo_only(undeclared_eng)
    tag = "M46S"
    _as_the_release_before(undeclared_eng, uhttp, monkeypatch, (tag, "^HIS^DNS"))
    ((_, first),) = _rows(undeclared_eng, uhttp, tag).items()
    messages = undeclared_eng.ingestor.messages
    table = undeclared_eng.store.collection("hl7_registrations")
    later = post(uhttp, adt(f"{tag}b", f"{tag}^^^FNXRMYY^MR", "丁^一", "19801020", "F", app="^HIS^DNS"))
    assert ack_code_of(later) == "AA"
    (doc,) = messages.filed("FNXRMYY", [f"{tag}b"])
    table.delete(f"{first['record']}|^HIS^DNS")  # (no row of the first's: the release before kept the later one)
    table.replace({**{k: v for k, v in first.items() if k != "whole"}, "message": doc["_id"],
                   "received_at": doc["received_at"]})
    messages = _marker_off(undeclared_eng)
    get, meanwhile, pass_thread = messages.registrations.get, [], threading.get_ident()
    new_key = f"{first['record']}|^HIS^DNS"

    def interleaved(doc_id: str) -> object:
        read = get(doc_id)
        if threading.get_ident() == pass_thread and doc_id == new_key and not meanwhile:
            meanwhile.append(True)  # another process files the first registration again
            messages.note_registrations(str(first["message"]), None, [str(first["record"])])
        return read

    with monkeypatch.context() as during:
        during.setattr(messages.registrations, "get", interleaved)
        messages.registrars_whole()
    assert meanwhile
    rows = _rows(undeclared_eng, uhttp, tag)
    assert list(rows) == ["^HIS^DNS"] and rows["^HIS^DNS"]["message"] == first["message"], rows
