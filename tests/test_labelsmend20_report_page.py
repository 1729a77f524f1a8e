"""labelsmend20: the auditors' page ``/ui/duplicates`` lists no flag citing a record withheld from the
auditor and says, in Chinese, how many were left out and their money. Headless Chromium over real
uvicorn, a staff auditor signed in with password and TOTP; Alice's CBC at A labelled R and repeated
at B, her LFT repeated unlabelled (tests/test_labels20_report_flags.py's world, over real HTTP)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_labels20_report_flags import _county
from tests.test_reports_ui import Browser, browser, pytestmark, server, sign_in_page  # noqa: F401 - fixtures


def test_the_page_leaves_the_restricted_flag_out_and_says_so(engine: Any, server: str, browser: Browser) -> None:  # noqa: F811
    system, _ = _county(engine, TestClient(create_app(engine)))
    sign_in_page(browser, server, engine)
    summary = browser.eval("document.querySelector('#summary').innerText")
    assert "另有 1 条涉及受限记录的疑似重复未显示，金额不显示（少于 5 条），需具备相应权限的审核员处理" in summary, summary
    assert browser.eval("document.querySelector('#summary').dataset.count") == "1"
    assert browser.eval("document.querySelector('#summary').dataset.restricted") == "1"
    rows = browser.eval("[...document.querySelectorAll('#flags tbody tr')].map(r => r.innerText)")
    assert len(rows) == 1 and "LFT" in rows[0] and "受限" not in rows[0], rows
    page = browser.eval("document.body.innerText")
    assert "CBC" not in page and "血常规" not in page and "2026年3月3日" not in page, page
