"""pages32: the staff pages' date and month fields and who is signed in, in headless Chromium
through the real app (thirty-second round).

The date fields had been the browser's own pickers, drawn in the browser's language whatever the
page's: on headless Chromium (and any English browser) 03/05/2026 -- the 5th of March or the 3rd of
May -- and "March 2026" on a Chinese page. They are now text fields written as people in China
write a date (2026-03-05): a person types, reads the day in words beside it, and a date in another
form is refused in Chinese before anything is sent. An auditor whose body the site names nowhere
(FNYBJ) had read as the bare code in the header, her remit (an institution) as its code.
"""

from __future__ import annotations

import json
from typing import Any

from tests.test_insurance_ui import sign_in
from tests.test_reports_ui import Browser, browser, pytestmark, server  # noqa: F401 - fixtures


def _type(page: Browser, selector: str, text: str) -> None:
    """Types ``text`` into the field as a keyboard does (focus, clear, insert, input event)."""
    page.eval(f"(() => {{ const i = document.querySelector({json.dumps(selector)}); i.focus(); i.select(); }})()")
    page.send("Input.insertText", text=text)


def _who(page: Browser, word: str) -> str:
    """The header's role line once the page has written it (it is filled after the page's own call
    for who is signed in, which a busy machine answers after the load); the wait fails if it never is."""
    return page.wait_for("(() => { const t = document.querySelector('#who-role').innerText;"
                         f" return t.includes({json.dumps(word)}) ? t : ''; }})()")


def test_a_date_is_typed_year_month_day_and_another_form_is_refused_in_chinese(
        engine: Any, server: str, browser: Browser) -> None:  # noqa: F811
    browser.send("Emulation.setDeviceMetricsOverride", width=1366, height=768, deviceScaleFactor=1, mobile=False)
    sign_in(browser, server, engine, "/ui/duplicates", "li.ping", "auditor")
    assert browser.eval("document.querySelector('#filters [name=from]').type") == "text"
    assert browser.eval("document.querySelector('#filters [name=from]').placeholder") == "年-月-日"
    _type(browser, "#filters [name=from]", "03/05/2026")
    said = browser.eval("document.querySelector('#from-said').innerText")
    assert "请按“年-月-日”填写，如 2026-03-05" in said, said
    asked = browser.eval("performance.getEntriesByType('resource').length")
    browser.eval("document.querySelector('#apply').click(); true")
    assert browser.eval("document.querySelector('#filters').checkValidity()") is False
    assert browser.eval("document.querySelector('#filters [name=from]').validationMessage").startswith("请按“年-月-日”填写")
    assert browser.eval("performance.getEntriesByType('resource').length") == asked  # nothing sent
    _type(browser, "#filters [name=from]", "2026-02-30")  # no such day
    assert "请按" in browser.eval("document.querySelector('#from-said').innerText")
    _type(browser, "#filters [name=from]", "2026-03-05")
    assert browser.eval("document.querySelector('#from-said').innerText") == "2026年3月5日"
    assert browser.eval("document.querySelector('#filters').checkValidity()") is True


def test_the_month_field_says_the_month_in_chinese_and_wants_one(engine: Any, server: str, browser: Browser) -> None:  # noqa: F811
    browser.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=1, mobile=True)
    sign_in(browser, server, engine, "/ui/insurance?month=2026-03", "wang.month", "auditor")
    assert browser.eval("document.querySelector('#month-said').innerText") == "2026年3月"
    _type(browser, "#indicators-form [name=month]", "March 2026")
    assert "请按“年-月”填写，如 2026-03" in browser.eval("document.querySelector('#month-said').innerText")
    _type(browser, "#indicators-form [name=month]", "2026-13")
    assert browser.eval("document.querySelector('#indicators-form').checkValidity()") is False
    _type(browser, "#indicators-form [name=month]", "2026-02")
    browser.eval("document.querySelector('#ind-apply').click(); true")
    browser.wait_for("document.querySelector('#indicators').dataset.month === '2026-02'")


def test_a_remit_is_named(engine: Any, server: str, browser: Browser) -> None:  # noqa: F811
    browser.send("Emulation.setDeviceMetricsOverride", width=1366, height=768, deviceScaleFactor=1, mobile=False)
    sign_in(browser, server, engine, "/ui/insurance", "zhou.remit", "auditor", remit="FNZYY")
    role = _who(browser, "监管范围")
    assert "阜宁县医疗保障局（YBJ）" in role and "监管范围 remit 阜宁县中医院（FNZYY）" in role, role


def test_a_body_the_site_names_nowhere_is_said_to_be_a_code(engine: Any, server: str, browser: Browser) -> None:  # noqa: F811
    browser.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=1, mobile=True)
    sign_in(browser, server, engine, "/ui/duplicates", "qian.fn", "auditor", institution="FNYBJ")
    role = _who(browser, "机构代码")
    assert "机构代码 FNYBJ（本站未登记名称" in role, role
