"""ordfix40: rv40f's findings on ord40's operator decision (a held change of an order taken as the number's owner's)
and the site's application aliases, fixed.

Real HL7 v2 over ``POST /hl7v2`` into the real store (SQLite and mongomock), ``/admin`` over FastAPI, the console's
``huren quarantine replay --as-owner`` (SQLite: it reopens the store), the site loaded from its files. rv40f's own
probes (tests/test_rv40f_probes.py, marks dropped) stand beside these.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.convert.applications import as_sent, canonical, forms, mistakes, one_application
from engine.engine import Engine
from engine.message_time import REASON_MAX, reason_of
from engine.messages import Superseded, message_id, now_iso
from engine.settings import Settings
from mappings.site import Site, SiteError
from tests.conftest import _BACKENDS
from tests.test_cdfix38_fixes import OID
from tests.test_code37_ris_change import CHEST, HEAD, _changed, _ordered, _ris
from tests.test_codedoc38_order_owner import _codes
from tests.test_ingest_replay import site_env
from tests.test_ord39_order_history import _from
from tests.test_ord40_owner_decision import _aliased, _client, _control, _engine_on
from tests.test_order35_as_later import _operator
from tests.test_rv40f_probes import _held_message, _owner
from tests.test_srfix35_order_code import B, oru, send, the_order

__all__ = ["site_env"]

MOVED = "1.2.156.112604.1.2.43"  # the RIS's interface since it moved (the site's alias)


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _aliased(tmp_path_factory.mktemp("ordfix40site"), {B: [["RIS", f"^{MOVED}^ISO"]]})


@pytest.fixture(scope="module", params=_BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           site_dir: Path) -> Iterator[Engine]:
    with _engine_on(request.param, tmp_path_factory.mktemp("ordfix40"), site_dir) as eng:
        yield eng


@pytest.fixture(scope="module")
def http(engine: Engine) -> Iterator[TestClient]:
    with _client(engine, "ordfix40") as client:
        yield client


OPS = "ops-desk"


def _ops(engine: Engine) -> dict[str, str]:
    return _operator(engine, "system/MessageHeader.cr", OPS)


# --- applied once across processes: the store's conditional write -------------------------------------------------


def test_the_store_writes_only_while_the_document_is_as_read(engine: Engine) -> None:
    """``Collection.update_if``: written while ``where`` holds (True), refused once another write changed it (False,
    nothing written), False for no such document -- SQLite's conditional UPDATE, Mongo's filtered update."""
    coll = engine.store.collection("ordfix40_cas")
    coll.replace({"_id": "m1", "status": "processed", "processed_at": "t1", "n": 1})
    assert coll.update_if("m1", {"status": "processed", "processed_at": "t1"}, {"status": "received", "n": 2})
    assert coll.get("m1") == {"_id": "m1", "status": "received", "processed_at": "t1", "n": 2}
    assert not coll.update_if("m1", {"status": "processed", "processed_at": "t1"}, {"n": 3})
    assert coll.get("m1")["n"] == 2
    assert not coll.update_if("nothing", {"status": "processed"}, {"n": 1})
    assert coll.get("nothing") is None


def test_a_decision_whose_message_changed_since_its_check_is_not_written(engine: Engine, http: TestClient) -> None:
    """Another worker opened a decision on the message between this one's check and its write (done here inside the
    check, as that worker's unconditional reopen): this one's conditional reopen is refused, nothing of it is
    written, and the answer is the 409 naming the decision in flight -- one replay entry, the other's."""
    placer = "OF40-INFLIGHT"
    msg = _held_message(http, placer)
    ingestor = engine.ingestor
    check = ingestor._owner_decidable

    def checked_then_beaten(doc: dict[str, Any]) -> Any:
        answer = check(doc)
        if not ingestor.messages.get(msg).get("replays"):  # (once: the other worker's reopen)
            with engine.store.transaction():
                ingestor.messages.reopen(msg, actor="ops-b", decided_at=now_iso(), decided_as="owner",
                                         reason="运维乙的理由")
        return answer

    ingestor._owner_decidable = checked_then_beaten  # type: ignore[method-assign]
    try:
        r = _owner(http, msg, _ops(engine), reason="运维甲的理由")
    finally:
        del ingestor._owner_decidable
    assert r.status_code == 409 and "being taken as the owner's by ops-b" in r.text, r.text
    doc = ingestor.messages.get(msg)
    assert [(e["by"], e["reason"]) for e in doc["replays"]] == [("ops-b", "运维乙的理由")], doc["replays"]
    assert "3002" in _codes(the_order(http, placer))  # (nothing of ops-a's written)


def test_a_stale_reopen_raises_and_writes_nothing(engine: Engine, http: TestClient) -> None:
    """``MessageStore.reopen(expect=)``: the message's ``processed_at`` is not the one checked -- ``Superseded``,
    the document as it was."""
    msg = _held_message(http, "OF40-STALE")
    before = engine.ingestor.messages.get(msg)
    with pytest.raises(Superseded), engine.store.transaction():
        engine.ingestor.messages.reopen(msg, actor="ops-a", decided_at=now_iso(), decided_as="owner", reason="x",
                                        expect={"status": "processed", "processed_at": "2000-01-01T00:00:00.000000Z"})
    assert engine.ingestor.messages.get(msg) == before


def test_the_decision_is_written_with_the_processing_it_made(engine: Engine, http: TestClient) -> None:
    """No reader (another worker asked the same) sees the message holding nothing and deciding nothing: when the
    ingest records whether the decision was used, the message already says so -- ``mark_processed`` wrote it."""
    msg = _held_message(http, "OF40-ONEWRITE")
    messages = engine.ingestor.messages
    seen: list[dict[str, Any]] = []
    used = messages.decision_used

    def looked(doc_id: str, was_used: bool) -> None:
        seen.append(messages.get(doc_id) or {})
        used(doc_id, was_used)

    messages.decision_used = looked  # type: ignore[method-assign]
    try:
        r = _owner(http, msg, _ops(engine), reason="同一系统")
    finally:
        del messages.decision_used
    assert r.status_code == 200 and r.json()["decided"]["used"] is True, r.text
    (doc,) = seen
    assert doc["held_claims"] == [] and doc["decision"]["used"] is True and doc["decision"]["as"] == "owner", doc


# --- who decides ---------------------------------------------------------------------------------------------------


def test_the_client_that_sent_the_held_message_does_not_decide_it(engine: Engine, http: TestClient) -> None:
    """The client that posted the held message -- here with every scope (``system/*.cruds``) -- gets 403 on its own
    message, nothing replayed; another operator's client decides it. A post-only feed (``.c``): 403 whoever sent."""
    placer = "OF40-SENDER"
    msg = _held_message(http, placer)  # (posted by the client "ordfix40")
    mine = _owner(http, msg, {}, reason="我发的，我认定")
    assert mine.status_code == 403 and "client that sent" in mine.text, mine.text
    feed = _operator(engine, "system/MessageHeader.c", "lis-interface")
    assert _owner(http, msg, feed).status_code == 403
    assert not engine.ingestor.messages.get(msg).get("replays")
    r = _owner(http, msg, _ops(engine))
    assert r.status_code == 200 and r.json()["decided"]["used"] is True, r.text
    assert "3001" in _codes(the_order(http, placer))


# --- the reason ---------------------------------------------------------------------------------------------------


def test_the_reason_rule_keeps_the_words_and_refuses_what_is_not(engine: Engine, http: TestClient) -> None:
    """``message_time.reason_of``: the ends trimmed, the rest as typed (CR LF too); 500 characters at most; control
    characters but tab and line breaks refused. Through the API: a Windows line break kept, a DEL refused 400."""
    assert reason_of("  一\r\n二\t三\u3000四 \n") == "一\r\n二\t三\u3000四"
    assert reason_of("理" * REASON_MAX) == "理" * REASON_MAX
    for bad, said in (("", "required"), (" \n\t", "required"), ("理" * (REASON_MAX + 1), "at most"),
                      ("a\x7fb", "U+007F"), ("a\x85b", "U+0085"), ("同一\u202e统系", "U+202E"),
                      ("a\u2066b\u2069", "U+2066")):
        with pytest.raises(ValueError, match=re.escape(said)):
            reason_of(bad)
    msg = _held_message(http, "OF40-CRLF")
    assert _owner(http, msg, _ops(engine), reason="同一\x7f系统").status_code == 400
    turned = _owner(http, msg, _ops(engine), reason="已核实\u202e统系一同")  # (shows as "已核实同一系统")
    assert turned.status_code == 400 and "U+202E" in turned.text, turned.text
    assert reason_of("接口\u200f更换") == "接口\u200f更换"  # (a mark, not an override: kept)
    typed = "接口更换：\r\n1. 原 RIS\r\n2. 已核实"
    r = _owner(http, msg, _ops(engine), reason=typed + "\n")
    assert r.status_code == 200 and engine.ingestor.messages.get(msg)["decision"]["reason"] == typed, r.text


def test_the_console_refuses_a_control_character_in_the_reason(site_env: Settings, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """SQLite (the CLI reopens the store). ``--as-owner`` with an ESC: exit 2 naming it, nothing replayed; with a
    line break: taken, kept as typed."""
    from engine.cli import main

    placer = "OF40-CLI"
    held = _from("EMR", _changed(placer, CHEST))
    for n, message in enumerate((_ordered(placer), _ris(oru(placer, item=HEAD)), held)):
        (tmp_path / f"{n}.hl7").write_bytes(message.replace("\n", "\r").encode("utf-8"))
        assert main(["replay", str(tmp_path / f"{n}.hl7"), "--quiet"]) == 0
    msg = message_id(B, _control(held))
    capsys.readouterr()
    assert main(["quarantine", "replay", msg, "--as-owner", "同一\x1b[2J系统"]) == 2
    assert "U+001B" in capsys.readouterr().err
    with Engine(site_env) as engine:
        assert not engine.ingestor.messages.get(msg).get("replays")
    assert main(["quarantine", "replay", msg, "--as-owner", "同一系统\n已核实"]) == 0
    with Engine(site_env) as engine:
        assert engine.ingestor.messages.get(msg)["decision"]["reason"] == "同一系统\n已核实"


# --- the aliases ---------------------------------------------------------------------------------------------------


def test_an_alias_form_matches_as_sent_case_aside(site_dir: Path) -> None:
    """A form is the MSH-3 it lists, all three components, case aside -- not what ``same_hd`` would match: the
    hospital's OID under another name, or the listed OID with a name added, is not the form; HL7's rule still
    compares the names ``canonical`` gives (``one_application``)."""
    site = Site.load(Settings(site=site_dir))
    ris, moved = ("RIS", "", ""), ("", MOVED, "ISO")
    assert as_sent(("", MOVED, "iso"), moved) and not as_sent(("EMR", MOVED, "ISO"), moved)
    assert canonical(B, ("", MOVED, "iso"), site) == ris and canonical(B, ("ris", "", ""), site) == ris
    assert canonical(B, ("EMR", MOVED, "ISO"), site) == ("EMR", MOVED, "ISO")
    assert forms(B, ("EMR", MOVED, "ISO"), site) == (("EMR", MOVED, "ISO"),)
    assert forms(B, ("", MOVED, "iso"), site) == (("", MOVED, "iso"), ris)
    assert not one_application(B, ("EMR", MOVED, "ISO"), ris, site)
    assert one_application(B, ("", MOVED, "ISO"), ris, site)


def test_the_aliased_oid_under_another_name_is_held(engine: Engine, http: TestClient) -> None:
    """Through the real path: ``EMR^<MOVED>^ISO`` (the alias's OID under the EMR's name, listed nowhere) changing
    the RIS's order is held (W 204); the listed ``^<MOVED>^ISO`` takes it."""
    placer = "OF40-ALIAS"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    ack = send(http, _from(f"EMR^{MOVED}^ISO", _changed(placer, CHEST)))
    assert "MSA|AA" in ack and "204" in ack, ack
    assert "3002" in _codes(the_order(http, placer))
    assert "MSA|AA" in send(http, _from(f"^{MOVED}^ISO", _changed(placer, CHEST)))
    assert "3001" in _codes(the_order(http, placer))


@pytest.mark.parametrize(("groups", "at", "said"), [
    ([["RIS", f"^{OID}^ISO"], ["ris^1.2.3^ISO", "PACS"]], "[1][0]", "in group 0 as well"),
    ([["RIS", "^1.2.156.x^ISO"]], "[0][1]", "is no OID"),
    ([["RIS", "^urn:x y^URI"]], "[0][1]", "is no URI"),
    ([["RIS", "^^ISO"]], "[0][1]", "names no application"),
], ids=["same-hd-across-groups", "mistyped-oid", "uri-with-a-space", "no-universal-id"])
def test_a_mistaken_alias_is_refused_at_load_by_the_alias_module(tmp_path: Path, groups: list[list[str]], at: str,
                                                                 said: str) -> None:
    assert any(said in why for _, _, why in mistakes(groups)), list(mistakes(groups))
    with pytest.raises(SiteError) as raised:
        Site.load(Settings(site=_aliased(tmp_path, {B: groups})))
    text = str(raised.value)
    assert "senders.yaml" in text and f"application_aliases.{B}{at}" in text and said in text, text
    assert not list(mistakes([["RIS", f"^{OID}^ISO"], ["PACS", "^1.2.3^ISO"]]))
