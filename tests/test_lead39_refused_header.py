"""lead39: the 403 page a signed-in staff member meets carries the staff pages' header (ui39 left it bare).

An auditor who follows a link to the operators' refused messages or fidelity report is refused in Chinese
(``ui_shared.refused``) -- and had been left on a page with no 退出登录 and no way back but one link. The
page now draws the one header (``static/shared/staff_header.html``, filled by ``hurenStaff.whoami``): who is
signed in, the pages this person may open (no operator's page among them, none marked current) and
退出登录, which ends the session. A resident's token refused the same page gets no staff header. Headless
Chromium against ui39's engine and site (real HL7 fed over ``POST /hl7v2``), at 1366x768 and 390x844.
"""

from __future__ import annotations

import pytest

from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM
from tests.test_ui12_phone import outside
from tests.test_ui38_pages import DESKTOP, PHONE, Site, _sign_in
from tests.test_ui39_pages import (  # noqa: F401 - ui39's fed site and browser, reused by import
    HEADER_FILLED,
    SHOWN_LINKS,
    browser,
    fed,
    site,
)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")


@pytest.mark.parametrize(("page", "name", "display"), [
    ("/ui/quarantine", "lin.lead39", "林审核"), ("/admin/fidelity", "he.lead39", "贺审核")])  # (a code is taken once an account)
def test_an_auditor_refused_an_operators_page_keeps_the_staff_header(fed: Site, browser: Browser, page: str,  # noqa: F811
                                                                     name: str, display: str) -> None:
    fed.staff(name, "auditor", display)
    b = browser
    b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    _sign_in(b, fed, name, page)
    b.wait_for("document.querySelector('#refused') !== null && " + HEADER_FILLED)
    text = b.eval("document.body.innerText")
    assert "您无权查看" in text and "审核员" in text, text
    who = b.eval("document.querySelector('#who').innerText")
    assert display in who and "退出登录" in who, who
    assert b.eval(SHOWN_LINKS) == ["/ui/duplicates", "/ui/insurance"]  # her own pages, no operator's
    assert b.eval("document.querySelector('header nav a[aria-current=page]')") is None
    # "back to your pages" leads to the first page the header shows her
    b.wait_for("!document.querySelector('#back').hidden")
    assert b.eval("document.querySelector('#back').getAttribute('href')") == "/ui/duplicates"
    fed.shot(b, f"lead39-refused{page.replace('/', '-')}-desktop")
    b.send("Emulation.setDeviceMetricsOverride", **PHONE)
    b.send("Page.reload")
    b.wait_for("document.querySelector('#refused') !== null && " + HEADER_FILLED)
    assert outside(b, PHONE) == []
    fed.shot(b, f"lead39-refused{page.replace('/', '-')}-phone")
    # 退出登录 from the refusal ends the session: the page asks to sign in again
    b.eval("document.querySelector('#signout-button').click(); true")
    b.wait_for("location.pathname === '/ui/signin' && new URLSearchParams(location.search).get('out') === '1'")
    b.send("Page.navigate", url=fed.base + "/ui/duplicates")
    b.wait_for("location.pathname === '/ui/signin'")


def test_a_clinician_refused_is_offered_no_page_that_refuses_him_too(fed: Site, browser: Browser) -> None:  # noqa: F811
    """A clinician opens none of the auditors' or operators' pages: his refusal shows who he is and 退出登录,
    no links, and no "back to your pages" leading to another refusal (rv39h LOW: it led to /ui/duplicates)."""
    fed.staff("xu.lead39", "clinician", "许医生")
    b = browser
    b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    _sign_in(b, fed, "xu.lead39", "/ui/quarantine")
    b.wait_for("document.querySelector('#refused') !== null && " + HEADER_FILLED)
    assert "许医生" in b.eval("document.querySelector('#who').innerText")
    assert b.eval(SHOWN_LINKS) == []
    assert b.eval("document.querySelector('#back').hidden") is True
    fed.shot(b, "lead39-refused-clinician-desktop")
