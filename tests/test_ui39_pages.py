"""ui39: the operators' fidelity page, the staff sign-in and the resident's download, walked in headless
Chromium at 1366x768 and 390x844 against ui38's engine and site (``tests/test_ui38_pages.py``: the demo
month of ``examples/feeds`` over ``POST /hl7v2``, a locally coded zinc result, two refused messages),
fed here besides a result whose OBX-11 status and OBX-5 value the engine warns of (W, accepted AA).

What a person met, each pinned here:
- ``/admin/fidelity`` had no bar of who is signed in and no 退出登录, and no links to the other staff
  pages but the refused messages: it has the staff pages' header now -- the one header, drawn by
  ``ui_shared``'s ``staff_header.html`` and filled by the same script (``hurenStaff.whoami``);
- its conversion-warning rows showed the engine's English ERR text alone: Chinese first, from the words
  of the ERR texts (``mappings/quarantine/words.yaml``), the English and its ERR-3 code after, smaller;
- ``formats.quality`` weighed a malformed q (``q=abc``, ``q=2``, ``q=-1``) as a number (abc as 1, 2 as
  2): a range whose weight is no RFC 9110 12.4.2 qvalue is left out, as if not sent;
- the staff sign-in button's focus was Chromium's thin default ring: 3 px, as the other controls;
- the resident's download button said "(FHIR)": it says what the file is, in her words.
Screenshots: ``HUREN_UI38_SHOTS`` / ``HUREN_SCREENSHOTS`` (else the tests' temporary folders).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from engine.api.formats import LISTED, UNLISTED, accepts_json, quality
from tests.test_reports_ui import Browser
from tests.test_resident_record_ui import _http, hl7, msh
from tests.test_resident_ui import CHROMIUM, Phone
from tests.test_ui12_phone import outside
from tests.test_ui38_pages import (  # noqa: F401 - ui38's engine and site, and her phone, reused by import
    DESKTOP,
    ER7,
    OUTLINE,
    PHONE,
    Site,
    _crosses,
    _key,
    _sign_in,
    _tab_to,
    phone,
    site,
)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")


def _warned() -> bytes:
    """李秀英's hemoglobin from 阜宁县中医院's LIS with a result status no table has (OBX-11 'Q') and a
    numeric value that is not a number (OBX-5 '阴性'): accepted, each warned of (W)."""
    return hl7(msh("LIS", "FNZYY", "20250326100000", "ORU^R01^ORU_R01", "UI39-W-1"),
               "PID|1||320923198809030023^^^^NNCHN~MZ0088123^^^FNZYY^PI||李秀英||19880903|F",
               "ORC|RE|UI39-W-O^HIS|UI39-W-F^LIS||CM",
               "OBR|1|UI39-W-O^HIS|UI39-W-F^LIS|XCG^血常规^L|||20250326080000||||||||BLD&血液|Z2001^周^红||||||"
               "20250326093000|||F",
               "OBX|1|NM|HGB^血红蛋白^L||阴性|g/L|115-150|N|||Q|||20250326090000")


@pytest.fixture(scope="module")
def fed(site: Site) -> Site:  # noqa: F811 - ui38's fixture, imported above
    sender = site.engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
    status, headers, ack = _http("POST", site.base + "/hl7v2", sender, _warned(), ER7)
    assert status == 200 and headers.get("x-hl7-ack-code") == "AA", ack
    assert b"OBX-11" in (ack if isinstance(ack, bytes) else ack.encode()), ack  # warned of, in the ACK's ERR
    site.staff("wu.ui39", "operator", "吴运维")
    site.staff("he.ui39", "operator", "何运维")
    site.staff("zheng.ui39", "auditor", "郑审核")
    site.staff("feng.ui39", "auditor", "冯审核")
    site.staff("chen.ui39", "operator", "陈运维")
    return site


@pytest.fixture()
def browser(fed: Site) -> Iterator[Browser]:
    b = Browser(fed.shots / "profile-ui39")
    try:
        yield b
    finally:
        b.close()


# what a person waits for before reading the header: the page's own call to /ui/session has filled it
HEADER_FILLED = ("!document.querySelector('#who').hidden && document.querySelector('#who-role').innerText.length > 0"
                 " && document.querySelector('#signout [name=csrf]').value.length > 0")
SHOWN_LINKS = "[...document.querySelectorAll('header nav a')].filter(a => !a.hidden).map(a => a.getAttribute('href'))"


def test_the_fidelity_page_has_the_staff_pages_header(fed: Site, browser: Browser) -> None:
    """Who is signed in, their role and 退出登录, and the links to the staff pages this person may open --
    the same as on the refused-messages page, from the one header; signing out from it ends the session."""
    b = browser
    b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    _sign_in(b, fed, "wu.ui39", "/admin/fidelity")
    b.wait_for(HEADER_FILLED)
    who = b.eval("document.querySelector('#who').innerText")
    assert "吴运维" in who and "运维" in who and "退出登录" in who, who
    links = b.eval(SHOWN_LINKS)
    assert "/ui/quarantine" in links and "/admin/fidelity" in links, links
    assert b.eval("document.querySelector('header nav a[aria-current=page]').getAttribute('href')") == "/admin/fidelity"
    fed.shot(b, "ui39-fidelity-header-desktop")
    # the filter takes the institution by its name, as the other staff pages' filters do
    b.eval("document.querySelector('#filters [name=institution]').value = '阜宁县中医院';"
           "document.querySelector('#apply').click(); true")
    b.wait_for("new URLSearchParams(location.search).get('institution') === 'FNZYY' && document.readyState === 'complete'"
               " && document.querySelectorAll('section.institution').length === 1")
    assert b.eval("document.querySelector('section.institution').dataset.code") == "FNZYY"
    # the refused-messages page draws the same header for the same person
    b.send("Page.navigate", url=fed.base + "/ui/quarantine")
    b.wait_for("location.pathname === '/ui/quarantine' && " + HEADER_FILLED)
    assert b.eval(SHOWN_LINKS) == links
    assert b.eval("document.querySelector('#who').innerText") == who
    # back to the report on a phone: the header inside the screen
    b.send("Emulation.setDeviceMetricsOverride", **PHONE)
    b.eval("document.querySelector('#nav-fidelity').click(); true")
    b.wait_for("location.pathname === '/admin/fidelity' && " + HEADER_FILLED)
    assert outside(b, PHONE) == []
    fed.shot(b, "ui39-fidelity-header-phone")
    # 退出登录 from the report: signed out, and the report asks to sign in again
    b.eval("document.querySelector('#signout-button').click(); true")
    b.wait_for("location.pathname === '/ui/signin' && new URLSearchParams(location.search).get('out') === '1'")
    b.send("Page.navigate", url=fed.base + "/admin/fidelity")
    b.wait_for("location.pathname === '/ui/signin' && new URLSearchParams(location.search).get('next') === '/admin/fidelity'")


@pytest.mark.parametrize(("name", "pages"), [
    ("chen.ui39", ["/ui/quarantine", "/admin/fidelity", "/ui/duplicates"]),
    ("feng.ui39", ["/ui/duplicates", "/ui/insurance"]),
])
def test_every_staff_page_draws_the_one_header(fed: Site, browser: Browser, name: str, pages: list[str]) -> None:
    """An operator and an auditor walk their pages at both sizes: each shows the same links (what the person
    may open) and the same bar, its own link marked current, nothing outside a phone's screen."""
    b = browser
    _sign_in(b, fed, name, pages[0])
    seen = []
    for device, size in ((DESKTOP, "desktop"), (PHONE, "phone")):
        b.send("Emulation.setDeviceMetricsOverride", **device)
        for page in pages:
            b.send("Page.navigate", url=fed.base + page)
            b.wait_for(f"location.pathname === {json.dumps(page)} && " + HEADER_FILLED)
            current = b.eval("document.querySelector('header nav a[aria-current=page]').getAttribute('href')")
            assert current == page, (page, current)
            seen.append((tuple(b.eval(SHOWN_LINKS)), b.eval("document.querySelector('#who').innerText")))
            if size == "phone":
                assert outside(b, PHONE) == [], page
            fed.shot(b, f"ui39-header-{name.split('.')[0]}{page.replace('/', '-')}-{size}")
    assert len(set(seen)) == 1, seen


def test_a_warning_row_says_chinese_first_and_its_english_after_smaller(fed: Site, browser: Browser) -> None:
    b = browser
    b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    _sign_in(b, fed, "he.ui39", "/admin/fidelity?institution=FNZYY")
    b.wait_for("document.querySelectorAll('table.items tbody tr').length > 0")
    rows = b.eval("""[...document.querySelectorAll('table.items tbody tr')]
      .filter(r => r.cells[0].innerText.includes('转换警告'))
      .map(r => { const d = r.querySelector('td[data-label^="说明"] .said'), en = d.querySelector('small.en');
        return {zh: d.firstChild.textContent.trim(), en: en ? en.innerText : '',
                big: parseFloat(getComputedStyle(d).fontSize), small: en ? parseFloat(getComputedStyle(en).fontSize) : 0}; })""")
    status = [r for r in rows if "OBX-11" in r["en"]]
    value = [r for r in rows if "OBX-5" in r["en"]]
    assert status and value, rows
    for row in status + value:
        assert re.match(r"[\u4e00-\u9fff（]", row["zh"]), row  # Chinese first
        assert "ERR-3 102" in row["en"] and row["small"] < row["big"], row  # the code and the English after, smaller
    assert status[0]["zh"].startswith("结果状态（OBX-11）“Q”为空或无法识别"), status
    assert "OBX-11 result status 'Q'" in status[0]["en"], status
    assert value[0]["zh"].startswith("结果值（OBX-5）不是有效的 NM 类型的值"), value
    assert not any(r["zh"].startswith(("OBX", "unmapped")) for r in rows), rows
    fed.shot(b, "ui39-fidelity-warnings-desktop")
    b.send("Emulation.setDeviceMetricsOverride", **PHONE)
    b.send("Page.reload")
    b.wait_for("document.readyState === 'complete' && document.querySelectorAll('table.items tbody tr').length > 0"
               " && " + HEADER_FILLED)
    assert outside(b, PHONE) == []
    fed.shot(b, "ui39-fidelity-warnings-phone")


# ---- a malformed q --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("accept", "media", "q"), [
    # named, its weight not read (ufix39): below every written weight, so the rest decides
    ("text/html;q=abc, application/json;q=0.5", "text/html", LISTED),
    ("text/html;q=2, application/json;q=0.5", "text/html", LISTED),
    ("text/html;q=2, application/json;q=0.5", "application/json", 0.5),
    ("text/html;q=-1, */*;q=0.3", "text/html", 0.3),  # left out: the wildcard speaks for it
    # four digits: not read; nothing written ranks: anything goes, what it named first (ufix39)
    ("text/html;q=0.5000", "text/html", LISTED),
    ("text/html;q=nan", "text/html", LISTED),
    ("text/html;q=nan", "application/json", UNLISTED),
    ("text/html;q=1.", "text/html", 1.0),  # the grammar's own forms
    ("text/html;q=0.125", "text/html", 0.125),
    ("text/html;Q=0", "text/html", 0.0),  # (a parameter's name in any case)
])
def test_a_weight_that_is_no_qvalue_is_not_read(accept: str, media: str, q: float) -> None:
    assert quality(accept, media) == q


def _status(url: str, accept: str) -> int:
    req = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - the test's own server
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_malformed_q_over_http(fed: Site, browser: Browser) -> None:
    """Through the real server: a FHIR client asking JSON alone with a malformed weight gets it (``q=-1``
    had refused it 406), and one weighing JSON ``q=2`` beside XML gets JSON as a type it listed (ufix39: 406 before);
    a person's page is chosen by well-formed weights only (``text/html;q=2`` had outranked the JSON)."""
    metadata = fed.base + "/fhir/metadata"
    assert _status(metadata, "application/fhir+json;q=-1") == 200
    assert _status(metadata, "application/fhir+json;q=abc") == 200
    # JSON named beside XML with a weight not read: not above XML, but listed, and XML huren has not (ufix39)
    assert _status(metadata, "application/fhir+xml, application/fhir+json;q=2") == 200
    assert accepts_json("application/fhir+json;q=-1")  # (the rule the server applied)
    b = browser
    b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    _sign_in(b, fed, "zheng.ui39", "/ui/duplicates")  # an auditor: /admin/fidelity's refusal is negotiated too
    asked = b.eval("""(async () => { const out = {};
      for (const accept of ['text/html;q=2, application/json', 'text/html, application/json;q=abc',
                            'text/html;q=0.9, application/json;q=0.95', 'text/html, application/json;q=0.5']) {
        const r = await fetch('/admin/fidelity', {headers: {Accept: accept}, redirect: 'manual'});
        out[accept] = r.headers.get('content-type') || ''; }
      return out; })()""")
    assert asked["text/html;q=2, application/json"].startswith("application/fhir+json") or \
        asked["text/html;q=2, application/json"].startswith("application/json"), asked
    assert asked["text/html, application/json;q=abc"].startswith("text/html"), asked
    assert not asked["text/html;q=0.9, application/json;q=0.95"].startswith("text/html"), asked
    assert asked["text/html, application/json;q=0.5"].startswith("text/html"), asked


# ---- the staff sign-in's focus ---------------------------------------------------------------------------

def test_the_sign_in_button_shows_a_clear_focus_ring(fed: Site, browser: Browser) -> None:
    b = browser
    for device, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        b.send("Emulation.setDeviceMetricsOverride", **device)
        b.send("Page.enable")
        b.send("Page.navigate", url=fed.base + "/ui/signin")
        b.wait_for("location.pathname === '/ui/signin' && document.readyState === 'complete'"
                   " && document.activeElement.id === 'name'")  # the cursor in the first box, as a person sees it
        _tab_to(b, "e.id === 'signin-button'", most=6)
        ring = b.eval(OUTLINE)
        assert ring["style"] == "solid" and ring["width"] >= 2, ring
        assert not _crosses(ring, b, "#code"), (ring, "the ring runs into the code box")
        assert not _crosses(ring, b, "#signin ~ p"), (ring, "the ring runs into the text under the button")
        fed.shot(b, f"ui39-signin-button-focus-{name}")


# ---- the resident's download -----------------------------------------------------------------------------

def test_her_download_says_what_it_is_in_her_words(phone: Phone) -> None:  # noqa: F811 - ui38's fixture
    cdp = phone.cdp
    cdp.wait("!document.getElementById('tools').hidden")
    button = cdp.eval("document.getElementById('export').innerText")
    assert button == "下载我的健康档案（FHIR 格式）", button
    hint = cdp.eval("document.getElementById('export-hint').innerText")
    assert "数据文件" in hint and "其他医院" in hint, hint
    assert cdp.eval("document.getElementById('export').getAttribute('aria-describedby')") == "export-hint"
    assert outside(cdp, {"width": 390}) == []
    phone.shot("ui39-resident-download-phone", full=False)
    # the file she finds in her downloads is named in her words too
    cdp.eval("window.__names = []; const click = HTMLAnchorElement.prototype.click;"
             "HTMLAnchorElement.prototype.click = function () { if (this.download) window.__names.push(this.download);"
             " return click.call(this); }; true")
    phone.click("#export")
    name = cdp.wait("window.__names.length === 1 && window.__names[0]")
    assert re.fullmatch(r"我的健康档案-\d{4}-\d{2}-\d{2}\.json", name), name
    phone.click("#lang")
    try:
        cdp.wait("document.documentElement.lang === 'en'")
        assert cdp.eval("document.getElementById('export').innerText") == "Download my health records (FHIR format)"
    finally:
        phone.click("#lang")
        cdp.wait("document.documentElement.lang === 'zh-CN'")


def test_her_tabs_show_no_english_only_words(phone: Phone) -> None:  # noqa: F811 - ui38's fixture
    """Every tab of her page in Chinese: no run of English words she would read (a unit or a code as sent
    -- g/L, 10^9/L, HGB -- is allowed; a sentence or a label in English is not)."""
    cdp = phone.cdp
    tabs = cdp.eval("[...document.querySelectorAll('#tabs button')].map(b => b.dataset.tab)")
    found: dict[str, list[str]] = {}
    for tab in tabs:
        cdp.eval(f"document.querySelector('[data-tab={tab}]').click(); true")
        cdp.wait(f"!document.getElementById({json.dumps(tab)}).hidden"
                 f" && document.getElementById({json.dumps(tab)}).innerText.length > 0")
        text = cdp.eval("document.querySelector('header').innerText + '\\n' + document.getElementById('tools').innerText"
                        f" + '\\n' + document.getElementById({json.dumps(tab)}).innerText")
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z ]{2,}[A-Za-z]", text) if len(w.split()) >= 2]
        if words:
            found[tab] = words
    assert found == {}, found


def test_her_sign_in_names_the_page_in_her_words(fed: Site, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The sign-in page she is sent to names what asks for her records: the resident page had been registered
    as "huren 我的健康档案" -- a Latin word she does not read -- there and in 谁看过我的档案."""
    p = Phone(tmp_path_factory.mktemp("ui39-her-signin"))
    try:
        for (width, height, mobile), size in (((390, 844, True), "phone"), ((1366, 768, False), "desktop")):
            p.size(width, height, mobile=mobile)
            p.cdp.call("Page.navigate", url=fed.base + "/ui/me/")
            p.cdp.wait("location.pathname === '/ui/me/' && document.getElementById('signin')?.hidden === false")
            p.cdp.eval("document.getElementById('login').click()")
            p.cdp.wait("location.pathname === '/auth/authorize' && !!document.getElementById('national_id')")
            text = p.cdp.eval("document.body.innerText")
            assert "互认·我的健康档案 请求读取" in text and "huren" not in text.lower(), text
            assert "huren" not in p.cdp.eval("document.title"), p.cdp.eval("document.title")
            assert outside(p.cdp, {"width": width}) == []
            p.shot(f"ui39-resident-signin-{size}")
    finally:
        p.close()
