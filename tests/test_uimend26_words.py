"""uimend26: what the page probe (tests/test_probeui26_pages.py) found said in English, in a server's
file path or in UTC, said for people -- checked here over HTTP through the real app and on the export
functions themselves, without a browser (the probe drives the pages in Chromium).

- the resident's sign-in refusals: Chinese first, the engine's English beneath (words in
  ``mappings/insurance/words.yaml`` ``signin_errors``; the audit trail keeps the English);
- a mistyped ``/ui/`` address opened in a browser: a small Chinese 404 page; a program (no
  ``text/html``) and ``/fhir`` keep the OperationOutcome;
- 复核提示: the engine's contradiction sentence in the site's words, instants in Beijing time;
- the duplicates CSV: amounts with two decimals, the note beside the recorded sentence.
"""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from engine.recognition.reports import to_csv, yuan
from engine.recognition.review_note import review_note
from mappings.pagewords import PageWords
from tests.test_resident_launch import (  # noqa: F401 - app, people: fixtures
    LI,
    ZHANG,
    app,
    authorize_params,
    outbox,
    people,
    pkce,
    request_id,
    wait_passes,
    wrong_code,
)

CJK = "\u4e00-\u9fff"


@pytest.fixture
def resident(app):  # noqa: ANN001, F811
    """The resident's browser: the real app over https, with the launch tests' app and people."""
    with TestClient(app, base_url="https://huren.test") as c:
        yield c


def _words() -> dict:
    return PageWords(None).current()


def _names() -> dict:
    return {**_words(), "places": {"FNZYY": "阜宁县中医院"}, "items": {"CBC": "血常规"},
            "zones": {"FNZYY": "Asia/Shanghai"}}


# ---- the resident's sign-in -------------------------------------------------------------------------


def test_resident_sign_in_refusals_are_said_in_chinese_with_the_english_beneath(resident, engine) -> None:
    _, challenge = pkce()
    rid = request_id(resident.get("/auth/authorize", params=authorize_params(engine, challenge)).text)
    # a digit short
    r = resident.post("/auth/authorize/login", data={"request_id": rid, "national_id": ZHANG[:-1]})
    assert r.status_code == 400
    assert "请输入正确的 18 位居民身份证号" in r.text and "valid 18-character" in r.text, r.text
    # the number, then a wrong code
    r = resident.post("/auth/authorize/login", data={"request_id": rid, "national_id": LI})
    assert r.status_code == 200
    right = outbox(engine)[-1]["code"]
    r = resident.post("/auth/authorize/verify", data={"request_id": rid, "code": wrong_code(right)})
    assert r.status_code == 400
    assert "验证码不正确" in r.text and "That code is not right" in r.text, r.text
    assert r.text.index("验证码不正确") < r.text.index("That code is not right")  # Chinese first
    wait_passes(engine)
    # a request that is gone: the error page says it in Chinese too
    r = resident.post("/auth/authorize/verify", data={"request_id": "no-such-request", "code": right})
    assert r.status_code == 400 and "本次登录已过期" in r.text and "has expired" in r.text, r.text


def test_every_refusal_the_sign_in_raises_has_its_words() -> None:
    """Each code ``engine/auth/resident.py`` raises is in the shipped words, Chinese and English,
    and fills in what it is given (the wait in seconds)."""
    import re
    from pathlib import Path

    source = (Path(__file__).resolve().parent.parent / "engine" / "auth" / "resident.py").read_text(encoding="utf-8")
    raised = set(re.findall(r'LoginError\((?:f?"[^"]*"\s*)+,\s*"([a-z-]+)"', source))
    assert len(raised) >= 10, raised
    words = _words()["signin_errors"]
    assert raised <= set(words), raised - set(words)
    for code in raised:
        zh, en = words[code]
        assert re.search(f"[{CJK}]", zh) and en, code
        zh.format(seconds=30), en.format(seconds=30)


# ---- a page that is not there -----------------------------------------------------------------------


def test_a_mistyped_page_address_is_a_chinese_page_and_programs_keep_json(http) -> None:
    browser = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    r = http.get("/ui/duplicate", headers=browser)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), r.headers
    assert "找不到这个页面" in r.text and 'href="/ui/duplicates"' in r.text and 'href="/ui/me/"' in r.text
    assert r.headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert http.get("/ui/duplicates/static/nope.js", headers=browser).status_code == 404
    # a program asking the same address, and the FHIR API asked by a browser: OperationOutcome
    for path, headers in (("/ui/duplicate", {"accept": "application/json"}), ("/ui/duplicate", {}),
                          ("/fhir/Observation/no-such-route/x/y", browser)):
        r = http.get(path, headers=headers)
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome", (path, r.text[:200])


# ---- 复核提示 and the CSV ---------------------------------------------------------------------------

HELD = ("reason contradicted by records: huren held DiagnosticReport/p-1 since 2025-03-13T03:00:05.123456Z, "
        "before the order was placed (2025-03-14T02:30:00.000000Z)")


@pytest.mark.parametrize(("text", "said"), [
    (HELD, "理由与记录不符：本平台收到这张医嘱之前已存有前次结果（检验检查报告 p-1），可以调阅（前次结果存入 2025年3月13日 11:00:05，"
           "收到医嘱 2025年3月14日 10:30:00）。"),
    ("reason contradicted by records: the prior result was 2 days old, not older than 3.5 of the item's 7-day window",
     "理由与记录不符：前次结果距本次仅 2 天，未超过 3.5 天（该项目互认时限 7 天）。"),
    ("reason contradicted by records: FNZYY had passed quality control for CBC on 2025-03-10",
     "理由与记录不符：阜宁县中医院（FNZYY）在 2025年3月10日 已通过血常规（CBC）的质控。"),
    # a sentence of a form not known here: still said, its instant in Beijing time
    ("reason contradicted by records: seen at 2025-03-13T16:30:00Z", "理由与记录不符：seen at 2025年3月14日 00:30:00"),
])
def test_review_note_in_the_sites_words_and_beijing_time(text: str, said: str) -> None:
    assert review_note(text, _names(), "Asia/Shanghai") == said
    assert review_note(None, _names()) == "" and review_note("", _names()) == ""


def test_yuan_has_two_decimals_rounded_half_up() -> None:
    assert [yuan(v) for v in (20.0, 220, 5, 2.675, 0.1 + 0.2, "3.5", None, "")] == [
        "20.00", "220.00", "5.00", "2.68", "0.30", "3.50", "", ""]


def test_duplicates_csv_amounts_and_the_note_after_the_recorded_sentence() -> None:
    row = {"id": "dup-1", "status": "flagged", "day": "2025-03-14", "institution": "FNZYY", "item": "CBC",
           "item_name": "血常规", "category": "检验", "price": 20.0, "currency": "CNY", "prior_institution": "FNZYY",
           "prior_day": "2025-03-13", "window_days": 7, "reason": "R98", "contradicted": HELD}
    report = {"rows": [row], "currency": "CNY", "recognition_rate": {},
              "totals": {"count": 1, "money_at_stake": 20.0, "self_pay_money": 0.0,
                         "by_institution": {"FNZYY": {"count": 1, "money": 20.0}},
                         "by_item": {"CBC": {"count": 1, "money": 44.999999999999}}}}
    text = to_csv(report, _names())
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    header, first = rows[0], dict(zip(rows[0], rows[1], strict=True))
    assert first["涉及金额"] == "20.00", first
    assert first["与记录不符"] == HELD  # the engine's sentence, as recorded
    # after the older columns (uifix26): they keep their places; evidence33's two pair columns come after it
    assert header.index("复核提示") == len(header) - 3 and header[-2:] == ["分项对照（复查 ↔ 前次，同一分析项目）", "未与前次结果重复的分析项目"]
    assert first["复核提示"].startswith("理由与记录不符：") and "2025年3月13日 11:00:05" in first["复核提示"]
    totals = [r for r in rows if r and r[0] in ("合计", "按机构", "按项目")]
    assert ["合计", "1", "涉及金额", "20.00", "CNY", "自费金额", "0.00"] in totals, totals
    assert any(r[0] == "按项目" and r[-1] == "45.00" for r in totals), totals
