"""rvui26: review probes of uimend26 (sign-in words, the /ui 404 page, 复核提示, the duplicates CSV).

Guards (pass) and findings (fail on de1a4ab) side by side; each test says which it is."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient

from engine.recognition.reports import COLUMNS, to_csv
from engine.recognition.review_note import review_note
from mappings.pagewords import PageWords
from tests.test_resident_launch import (  # noqa: F401 - app, people: fixtures
    LI,
    app,
    authorize_params,
    nid,
    outbox,
    people,
    pkce,
    request_id,
)

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
HELD = ("reason contradicted by records: huren held DiagnosticReport/older-prior-7 since "
        "2025-03-13T16:00:00.000000Z, before the order was placed (2025-03-14T15:59:59.000000Z)")


def _names(zone: str = "Asia/Shanghai") -> dict:
    return {**PageWords(None).current(), "places": {"FNZYY": "阜宁县中医院"}, "items": {"CBC": "血常规"},
            "zones": {"FNZYY": zone}}


@pytest.fixture
def resident(app):  # noqa: ANN001, F811
    with TestClient(app, base_url="https://huren.test") as c:
        yield c


# ---- sign-in: account enumeration (guard) -----------------------------------------------------------


def test_rvrvui26_signin_known_and_unknown_number_answer_alike(resident, engine) -> None:
    """GUARD: a valid ID number nobody is registered under and a registered one get the same page
    (status, words) -- the new coded words do not tell them apart."""
    unknown = nid("32092319800101002")
    pages = []
    for number in (LI, unknown):
        _, challenge = pkce()
        rid = request_id(resident.get("/auth/authorize", params=authorize_params(engine, challenge)).text)
        r = resident.post("/auth/authorize/login", data={"request_id": rid, "national_id": number})
        pages.append((r.status_code, r.text.replace(rid, "RID")))
    assert pages[0] == pages[1]
    # and a wrong code for the unknown number says the same as for a known one
    _, challenge = pkce()
    rid = request_id(resident.get("/auth/authorize", params=authorize_params(engine, challenge)).text)
    resident.post("/auth/authorize/login", data={"request_id": rid, "national_id": unknown})
    r = resident.post("/auth/authorize/verify", data={"request_id": rid, "code": "000000"})
    assert r.status_code == 400 and "验证码不正确" in r.text and "That code is not right" in r.text, r.text


# ---- the /ui 404 page -------------------------------------------------------------------------------


def test_rvrvui26_notfound_page_only_for_ui_and_json_endpoints_keep_outcomes(http) -> None:
    """GUARD: /fhir stays OperationOutcome for a browser's Accept; /auth, /reports and a look-alike prefix (/uix)
    give a browser the Chinese not-found page and a program the OperationOutcome (http42's decision, forty-second
    round: every address but /fhir answers a person with the page); a known /ui JSON endpoint asked by a browser
    without a session is not 404 HTML."""
    r = http.get("/fhir/Patient/x/y/z", headers=BROWSER)
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome", r.text[:200]
    for path in ("/reports/nope", "/uix/duplicates", "/auth/nope"):
        r = http.get(path, headers=BROWSER)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), (path, r.text[:200])
        assert "找不到这个页面" in r.text and "accept" in r.headers.get("vary", "").lower(), (path, r.text[:200])
        r = http.get(path, headers={"accept": "application/json"})
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome", (path, r.text[:200])
    r = http.get("/ui/session", headers=BROWSER)
    assert not r.headers["content-type"].startswith("text/html") or "找不到这个页面" not in r.text
    # the 404 page's own stylesheet is served (not itself a 404)
    css = http.get("/ui/shared/static/notfound.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    # the page template itself is not served as a file
    r = http.get("/ui/shared/static/notfound.html", headers={"accept": "application/json"})
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    # a file that exists but is refused (the resident's template) and one that does not exist answer
    # the same page: the 404 page does not tell which addresses are there
    there = http.get("/ui/me/static/index.html", headers=BROWSER)
    nowhere = http.get("/ui/me/static/no-such.html", headers=BROWSER)
    assert (there.status_code, there.text, there.headers["content-type"]) == (
        nowhere.status_code, nowhere.text, nowhere.headers["content-type"])


def test_rvrvui26_notfound_answers_vary_on_accept(http) -> None:
    """FINDING (LOW): the same /ui address now answers HTML or JSON by Accept, but neither says
    ``Vary: Accept`` -- a cache between may hand the OperationOutcome to a browser or the page to a program."""
    for headers in (BROWSER, {"accept": "application/json"}):
        r = http.get("/ui/duplicate", headers=headers)
        assert r.status_code == 404
        assert "accept" in r.headers.get("vary", "").lower(), (headers, dict(r.headers))


# ---- 复核提示 ---------------------------------------------------------------------------------------


def test_rvrvui26_review_note_day_edge_in_the_institutions_zone() -> None:
    """GUARD: the instants cross midnight in Beijing (16:00Z is the next day 00:00) and follow the
    zone given (Urumqi is UTC+6: still the 13th), not a hard-coded +08:00."""
    bj = review_note(HELD, _names())
    assert "2025年3月14日 00:00:00" in bj and "2025年3月14日 23:59:59" in bj, bj
    ur = review_note(HELD, _names("Asia/Urumqi"), "Asia/Urumqi")
    assert "2025年3月13日 22:00:00" in ur and "2025年3月14日 21:59:59" in ur, ur
    # the CSV takes each row's institution's zone from the names
    row = {"id": "d1", "institution": "FNZYY", "contradicted": HELD, "price": 20.0}
    report = {"rows": [row], "currency": "CNY", "recognition_rate": {},
              "totals": {"count": 1, "money_at_stake": 20.0, "self_pay_money": 0.0, "by_institution": {}, "by_item": {}}}
    rows = list(csv.reader(io.StringIO(to_csv(report, _names("Asia/Urumqi")).lstrip("\ufeff"))))
    first = dict(zip(rows[0], rows[1], strict=True))
    assert "2025年3月13日 22:00:00" in first["复核提示"], first


def test_rvrvui26_review_note_names_the_result_that_was_held() -> None:
    """FINDING (MED): the R98 note drops which result huren held (``{ref}`` is parsed, never said).
    The evidence page shows the note INSTEAD of the recorded sentence (app.js
    ``f.contradicted_note || f.contradicted``), and the held result can be an older prior than the
    flag's own (decision.py: R98 is contradicted by any prior held before the order), so the
    auditor no longer reads which record contradicts the reason."""
    note = review_note(HELD, _names())
    assert "older-prior-7" in note, note


# ---- the duplicates CSV -----------------------------------------------------------------------------


def test_rvrvui26_csv_columns_before_this_round_keep_their_places() -> None:
    """FINDING (LOW/MED): 复核提示 is inserted in the middle (after 与记录不符), so 不予支付范围代码 and
    every column after it move one place right; a reader by position (a bureau's import sheet)
    now reads the note as the basis code. The README paragraph does not say the order changed."""
    named = {"status", "institution", "prior_institution", "reason", "basis", "price_source"}
    before = [c for key in COLUMNS for c in (key, *((f"{key}_name",) if key in named else ()))]
    report = {"rows": [], "currency": "CNY", "recognition_rate": {},
              "totals": {"count": 0, "money_at_stake": 0.0, "self_pay_money": 0.0, "by_institution": {}, "by_item": {}}}
    header = next(csv.reader(io.StringIO(to_csv(report, _names()).lstrip("\ufeff"))))
    cols = PageWords(None).current()["columns"]
    assert header[:len(before)] == [cols.get(c, c) for c in before], header


def test_rvrvui26_csv_note_cell_is_formula_safe() -> None:
    """GUARD: the note quotes the recorded sentence's free text (an unknown form): a sentence that
    would start a formula still gets the leading quote in its new cell."""
    evil = "=HYPERLINK(\"http://x\")"
    row = {"id": "d1", "institution": "FNZYY", "contradicted": evil, "price": 20.0}
    report = {"rows": [row], "currency": "CNY", "recognition_rate": {},
              "totals": {"count": 1, "money_at_stake": 20.0, "self_pay_money": 0.0, "by_institution": {}, "by_item": {}}}
    names = _names()
    names["review_notes"] = {**names["review_notes"], "other": "{text}"}  # a site's words with nothing before
    rows = list(csv.reader(io.StringIO(to_csv(report, names).lstrip("\ufeff"))))
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["复核提示"].startswith("'="), first
    assert re.match(r"'=", first["与记录不符"]), first

