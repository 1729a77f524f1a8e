"""httpfix41b: rv41i's findings on httpfix41, fixed -- through the real path: TestClient into the real store on both
backends, the duplicate flags written by the real recognition hook (labels20's county), the held owner changes sent
as real HL7 (httpfix41's ``held``), the pages answered by the app's own error handlers.

- one reader of a decision's body for both routes (``engine.api.decision_body``): a reason that is not a JSON string
  is refused, never kept as its Python text; every refusal names ``reason``, alike on the review and the owner
  decision; a JSON ``"\\ud800"`` is named by the reason rule on both (rv41i MED 1, LOW 1);
- a zero-width joiner is kept only between two emoji, Unicode's Extended_Pictographic (rv41i LOW 2);
- one list of the pages, drawn by the staff header and both lost-person pages; the unreadable-address page names an
  escaped backslash (rv41i LOW 4).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api import ui_shared
from engine.api.app import create_app
from engine.engine import Engine
from engine.message_time import reason_of
from engine.settings import Settings
from tests import test_httpfix41_edges as hf
from tests.module_store import module_backend_eng  # noqa: F401 -- a fixture (one_flag's)
from tests.shared_worlds44 import one_county_flag as _one_flag
from tests.shared_worlds44 import own
from tests.test_order35_as_later import _operator
from tests.test_rv40f_probes import _held_message
from tests.test_rvrvops26_quarantine_access import _session

held = hf.held  # a held owner change on each backend (httpfix41's)
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def store(backend_settings: Settings) -> Iterator[Engine]:
    """An engine of its own on each storage backend (SQLite, mongomock; MongoDB with ``HUREN_MONGODB_URI``)."""
    with Engine(backend_settings) as eng:
        yield eng


@pytest.fixture(scope="module")
def one_flag(module_backend_eng: Engine) -> Iterator[tuple[Engine, dict[str, str], str]]:  # noqa: F811
    """``_one_flag`` once a module and backend: the engine (``store``'s settings: ``module_backend_eng``), the
    auditor's headers and the flag's id. For the tests that only send what is refused, or read, and check the flag is
    still unreviewed after: each parameter had opened an engine and written the county again (trim43). A test whose
    review is taken keeps ``store``."""
    with TestClient(create_app(module_backend_eng)) as http:
        yield (module_backend_eng, *_one_flag(module_backend_eng, http))


@pytest.fixture
def unreviewed_flag(one_flag: tuple[Engine, dict[str, str], str]) -> tuple[Engine, dict[str, str], str]:
    """``one_flag``, checked still flagged and unreviewed as the test starts: the module's refusal probes share it, so
    one refusal that gave way (a review taken) made every later one fail on "reviews" as if its own guard had -- twelve
    failures for one defect (review rv44d). The later ones now stop at setup, naming the shared flag."""
    store, _, flag = one_flag
    kept = store.recognition.flags.get(flag) or {}
    assert kept.get("status") == "flagged" and not kept.get("reviews"), (
        "the module's shared flag was already reviewed: an earlier test's refusal failed, not this test's",
        kept.get("status"), kept.get("reviews"))
    return one_flag


def _review(http: TestClient, flag: str, auditor: dict[str, str], body: bytes, labelled: str = "application/json") -> Any:
    return http.post(f"/reports/duplicates/{flag}/review", content=body, headers=auditor | {"Content-Type": labelled})


def _owner(http: TestClient, msg: str, ops: dict[str, str], body: bytes, labelled: str = "application/json") -> Any:
    return http.post(f"/admin/quarantine/{msg}/owner", content=body, headers=ops | {"Content-Type": labelled})


def _refusal(r: Any) -> dict[str, Any]:
    assert r.status_code == 400, (r.status_code, r.text[:400])
    assert r.headers["content-type"].startswith("application/fhir+json"), r.headers
    (issue,) = r.json()["issue"]
    return issue


def _unreviewed(engine: Engine, http: TestClient, flag: str, auditor: dict[str, str], csv: bytes, seen: int) -> None:
    """The flag as it was: no review, the DetectedIssue preliminary, the CSV byte for byte, no review audited."""
    kept = engine.recognition.flags.get(flag)
    assert kept["status"] == "flagged" and not kept.get("reviews"), kept
    assert http.get(f"/fhir/DetectedIssue/{flag}", headers=auditor).json()["status"] == "preliminary"
    assert http.get("/reports/duplicates?_format=csv", headers=auditor).content == csv
    events = [engine.audit.events(seq, 1)[0] for seq in range(seen, engine.audit.size)]
    assert not any(any(c.get("code") == "review" for c in e.get("subtype") or ()) and e.get("outcome") == "0"
                   for e in events), events


# --- (MED 1) the review's reason and decision: JSON strings only ------------------------------------------------------


NOT_TEXT = [["已核实"], {"zh": "已核实"}, True, False, 3, 1.5, [], {}, ["已", "核实"]]


def test_a_review_whose_reason_or_decision_is_not_text_is_refused_naming_it(store: Engine) -> None:
    """Each JSON value that is not a string, as the reason or as the decision: 400 naming the field -- the reason
    saying it must be text, in Chinese too -- and nothing of it kept anywhere (the str() of ``["已核实"]`` had been
    kept as the auditor's words: rv41i MED 1)."""
    with TestClient(create_app(store)) as http:
        auditor, flag = _one_flag(store, http)
        csv, seen = http.get("/reports/duplicates?_format=csv", headers=auditor).content, store.audit.size
        for sent in NOT_TEXT:
            issue = _refusal(_review(http, flag, auditor, json.dumps({"decision": "overturned", "reason": sent},
                                                                     ensure_ascii=False).encode()))
            assert issue["expression"] == ["reason"] and issue["diagnostics"].endswith("(理由必须是文字)"), (sent, issue)
            assert "已核实" not in issue["diagnostics"] and "not a string" not in issue["diagnostics"], issue
        for sent in [["upheld"], {"upheld": True}, True, 1]:
            issue = _refusal(_review(http, flag, auditor, json.dumps({"decision": sent, "reason": "属实"}).encode()))
            assert issue["expression"] == ["decision"], (sent, issue)
        _unreviewed(store, http, flag, auditor, csv, seen)
        # then the same review as text is taken, kept exactly as sent
        r = _review(http, flag, auditor, json.dumps({"decision": "overturned", "reason": "已核实"},
                                                    ensure_ascii=False).encode())
        assert r.status_code == 200 and r.json()["reviews"][-1]["reason"] == "已核实", r.text[:300]


@pytest.mark.parametrize(("body", "said", "names"), [
    (b"", "decision must be", "decision"),  # nothing sent: the decision is missing first
    (b'{"decision": "upheld"}', "a reason is required", "reason"),
    (b'{"decision": "upheld", "reason": null}', "a reason is required", "reason"),
    (b"[1]", "not a list", None), (b'"upheld"', "not a string", None), (b"null", "not null", None),
    (b'{"decision": "upheld", "reason": "\\ud800"}', "U+D800", "reason"),  # had been "Input data was truncated"
    (b'{"decision": "upheld", "reason": "\xd2\xd1\xba\xcb\xca\xb5"}', "not UTF-8", None),  # 已核实 in GBK
    (b'{"decision": "upheld", "reason": "\xe5\xb1\x9e\xe5\xae\x9e"}}', "not JSON", None),
    (b'{"decision": "upheld", "reason": ' + b"7" * 5000 + b"}", "cannot be read", None),
])
def test_an_unreadable_review_body_is_a_400_saying_why(one_flag: tuple[Engine, dict[str, str], str], body: bytes,
                                                      said: str, names: str | None) -> None:
    store, auditor, flag = one_flag
    with TestClient(create_app(store)) as http:
        issue = _refusal(_review(http, flag, auditor, body))
        assert said in issue["diagnostics"] and issue.get("expression") == ([names] if names else None), issue
        kept = store.recognition.flags.get(flag)
        assert kept["status"] == "flagged" and not kept.get("reviews"), kept


# --- (LOW 1) one reader: the owner decision answers every refusal as the review does ---------------------------------


# bodies refused by the reason, each sent to both routes (the review's with its decision)
REFUSED_REASONS: list[Any] = [["已核实"], {"zh": "已核实"}, True, 7, None, "", "  \u3000", "已核\u200b实", "\u202e实核已",
                              "\x1b[2J属实", "\u200e", "属" * 501, "\ud800", "👍\u200d属\ufe0f实"]


def test_the_owner_decision_and_the_review_refuse_a_reason_alike(one_flag: tuple[Engine, dict[str, str], str],
                                                                 held: tuple[Engine, TestClient],
                                                                 request: pytest.FixtureRequest) -> None:
    """One helper reads both bodies: each refused reason is a 400 naming ``reason`` on both routes, with the same
    words but for what the reason is asked for; the change stays held and the flag unreviewed (the module's flag:
    only refusals are sent to it)."""
    engine, owner_http = held
    store, auditor, flag = one_flag
    ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
    msg = _held_message(owner_http, own(request, "HF41B-ALIKE"))
    with TestClient(create_app(store)) as http:
        for sent in REFUSED_REASONS:
            body = {"reason": sent} if sent is not None else {}  # (JSON's \\u escapes: "\\ud800" is no UTF-8)
            owner = _refusal(_owner(owner_http, msg, ops, json.dumps(body).encode()))
            review = _refusal(_review(http, flag, auditor, json.dumps({"decision": "upheld", **body}).encode()))
            assert owner["expression"] == review["expression"] == ["reason"], (sent, owner, review)
            assert (owner["diagnostics"].replace("why this change is the owner's", "WHY")
                    == review["diagnostics"].replace("why the flag is upheld or overturned", "WHY")), (owner, review)
            assert re.search(r"\([^()]*[\u4e00-\u9fff][^()]*\)$", owner["diagnostics"]), owner  # the pages' Chinese
        assert not engine.ingestor.messages.get(msg).get("decision")
        kept = store.recognition.flags.get(flag)
        assert kept["status"] == "flagged" and not kept.get("reviews"), kept


@pytest.mark.parametrize("labelled", ["text/plain", "application/octet-stream"])
def test_a_decision_body_nested_past_the_parser_is_a_400(one_flag: tuple[Engine, dict[str, str], str],
                                                         held: tuple[Engine, TestClient], labelled: str,
                                                         request: pytest.FixtureRequest) -> None:
    """``[[[[...`` labelled as no JSON passes the request limits' depth check (it looks at JSON bodies) and reached
    the route's parser: Python's raised RecursionError -- a 500 on the owner route. Now 400 on both routes."""
    engine, owner_http = held
    store, auditor, flag = one_flag
    ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
    msg = _held_message(owner_http, own(request, "HF41B-DEEP"))
    with TestClient(create_app(store)) as http:
        for r in (_owner(owner_http, msg, ops, b"[" * 5000, labelled),
                  _review(http, flag, auditor, b"[" * 5000, labelled)):
            assert "nested too deeply" in _refusal(r)["diagnostics"], r.text[:300]
    assert not engine.ingestor.messages.get(msg).get("decision")
    kept = store.recognition.flags.get(flag)
    assert kept["status"] == "flagged" and not kept.get("reviews"), kept


def test_an_owner_decision_with_a_joined_emoji_is_taken_as_typed(held: tuple[Engine, TestClient]) -> None:
    """Guard: the one reader takes a good reason -- a family emoji joined three times, a doctor with a skin tone --
    exactly as typed."""
    engine, http = held
    ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
    msg = _held_message(http, "HF41B-TAKEN")
    typed = "检验科已改用新系统 👨\u200d👩\u200d👧\u200d👦 👩🏽\u200d⚕\ufe0f"
    r = _owner(http, msg, ops, json.dumps({"reason": typed}, ensure_ascii=False).encode())
    assert r.status_code == 200, r.text[:300]
    assert engine.ingestor.messages.get(msg)["decision"]["reason"] == typed


# --- (LOW 2) a zero-width joiner between two emoji only ----------------------------------------------------------


@pytest.mark.parametrize("typed", [
    "👍\u200d属\ufe0f实",  # a Han character VS16 follows is no emoji (rv41i)
    "©\u200d属\ufe0f",  # an emoji on the left only
    "属\u200d👍",  # an emoji on the right only
    "1\ufe0f\u200d😀",  # a keycap's digit with VS16 is no pictograph
    "🇨🇳\u200d😀",  # a flag's regional indicators are no pictographs
    "\u2605\u200d😀",  # ★: a symbol, no emoji since Unicode 17.0 (Extended_Pictographic taken from it)
    "\u3012\u200d😀",  # 〒: a symbol (So) that is no emoji
    "😀\u200d\u200d😀",  # two joiners: the second joins a joiner
    "😀\u200d",  # a joiner at the end joins nothing
])
def test_a_joiner_that_joins_no_two_emoji_is_refused(typed: str) -> None:
    with pytest.raises(ValueError, match="U\\+200D"):
        reason_of(typed)


@pytest.mark.parametrize("typed", [
    "👩\u200d⚕\ufe0f", "👩🏽\u200d⚕\ufe0f", "👨\u200d👩\u200d👧\u200d👦", "🏳\ufe0f\u200d🌈", "❤\ufe0f\u200d🔥",
    "🧑\u200d🦰", "🐦\u200d⬛", "👁\ufe0f\u200d🗨\ufe0f", "🧔\u200d♂\ufe0f", "🙂\u200d↔\ufe0f", "🙂\u200d↔",
    # Emoji 15.1: 🍋‍🟩 lime, ⛓️‍💥 broken chain -- and an emoji newer than this Python's Unicode 14 (U+1FAE8 🫨, Cn to it)
    "🍋\u200d🟩", "⛓\ufe0f\u200d💥", "\U0001fae8", "已核实\U0001fae8\u200d🔥",
])
def test_a_joiner_between_two_emoji_is_kept_as_typed(typed: str) -> None:
    assert reason_of(typed) == typed


def test_the_pictograph_data_is_ordered_ranges_of_emoji() -> None:
    """``engine/extended_pictographic.txt`` is read as sorted, disjoint ranges (the lookup bisects them), and it holds
    the emoji a joiner joins and none of the characters of a reason's words."""
    from engine import message_time

    firsts, lasts = message_time._PICTOGRAPHIC
    assert len(firsts) == len(lasts) > 100
    assert all(f <= last for f, last in zip(firsts, lasts, strict=True))
    assert all(lasts[i] + 1 < firsts[i + 1] for i in range(len(firsts) - 1)), "ranges must be sorted and apart"
    assert all(message_time._pictographic(c) for c in "©®‼↔⚕♂❤⬛👍🦰🟩🫨\U0001fffd")
    assert not any(message_time._pictographic(c) for c in "属A1#*\u2605\u3012\U0001f1e8\U0001f3fb\ufe0f\u200d")


# --- (LOW 4) one list of the pages ------------------------------------------------------------------------------------


def _links(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<li><a href="([^"]+)">([^<]+)</a>', html)


@pytest.mark.parametrize(("path", "status"), [("/ui/no-such-page", 404), ("/ui/me/%5Cx", 400), ("/ui/me/%2Fx", 400),
                                              ("/ui/duplicates?institution=%E9%98", 400)])
def test_both_lost_person_pages_draw_the_way_back_from_the_one_list(one_flag: tuple[Engine, dict[str, str], str],
                                                                   path: str, status: int,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The not-found and unreadable-address pages list ``ui_shared.PAGES``, in order, each named with who it is for;
    a page added to the list shows on both -- and in the staff pages' header -- with no page's HTML changed."""
    store = one_flag[0]  # (pages that read nothing of the store: the module's engine)
    with TestClient(create_app(store)) as http:
        r = http.get(path, headers=BROWSER)
        assert r.status_code == status and r.headers["content-type"].startswith("text/html"), (r.status_code, r.headers)
        assert _links(r.text) == [(p.href, p.listed_zh) for p in ui_shared.PAGES], r.text
        added = ui_shared.Page("referrals", "/ui/referrals", "转诊", "Referrals", "转诊单（医生）", "Referrals", True)
        monkeypatch.setattr(ui_shared, "PAGES", (*ui_shared.PAGES, added))
        ui_shared.lost_page.cache_clear()
        try:
            assert _links(http.get(path, headers=BROWSER).text)[-1] == ("/ui/referrals", "转诊单（医生）")
        finally:
            ui_shared.lost_page.cache_clear()


def test_the_staff_header_lists_the_staff_pages_of_the_one_list(one_flag: tuple[Engine, dict[str, str], str]) -> None:
    """The header's links (the duplicate-test page's, as the page is served) are ``PAGES``' staff pages in order,
    the resident's page not among them (the module's engine: the page lists its one flag)."""
    store = one_flag[0]
    cookies, _ = _session(store, "auditor")
    with TestClient(create_app(store)) as http:
        page = http.get("/ui/duplicates", headers=BROWSER, cookies=cookies)
        assert page.status_code == 200, page.text[:300]
        nav = re.search(r'<nav aria-label="工作页面 Staff pages">(.*?)</nav>', page.text, re.S)
        assert nav is not None, page.text[:2000]
        hrefs = re.findall(r'href="([^"]+)"', nav.group(1))
        assert hrefs == [p.href for p in ui_shared.PAGES if p.staff] and "/ui/me/" not in hrefs, hrefs


def test_the_unreadable_address_page_names_an_escaped_backslash(one_flag: tuple[Engine, dict[str, str], str]) -> None:
    store = one_flag[0]  # (a page that reads nothing of the store: the module's engine)
    with TestClient(create_app(store)) as http:
        r = http.get("/ui/me/%5Cx", headers=BROWSER)
        assert r.status_code == 400 and "被转义的“/”或“\\”" in r.text and "backslash" in r.text, r.text
        # a program asking the same address still gets the OperationOutcome naming the escape
        r = http.get("/ui/me/%5Cx", headers={"Accept": "application/json"})
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", r.text[:300]
