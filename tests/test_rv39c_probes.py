"""rv39c: review probes of ui39 (the staff pages' one header, the pages drawn as templates, the conversion
warnings said in Chinese from ``mappings/quarantine/words.yaml``, RFC 9110 q values, the resident's app name).

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (rv38g's feed, ``tests.module_store``); the
report and the pages read over real HTTP through FastAPI's TestClient as an operator signed in with password
and TOTP (``Accept`` as Chromium sends it for a page), ``/fhir`` as a program with its bearer token.
"""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient

from engine.auth.staff import StaffDirectory
from engine.engine import Engine
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM
from tests.test_rv38g_probes import HTML, XSS, auditor, fed, http, module_eng, operator, staff_client
from tests.test_srfix35_order_code import send
from tests.test_ui12_phone import outside
from tests.test_ui38_pages import AUDITOR_PASSWORD, DESKTOP, PHONE, Site, _sign_in, site
from tests.test_ui39_pages import HEADER_FILLED, SHOWN_LINKS

__all__ = ["auditor", "fed", "http", "module_eng", "operator", "site", "staff_client"]


def _rows(page: str) -> list[str]:
    return re.findall(r"<tr>(.*?)</tr>", page, re.S)


def _detail(row: str) -> tuple[str, str]:
    """A fidelity row's detail: (its Chinese, its English in small type), unescaped."""
    found = re.search(r'<div class="said">(.*?)<small class="en">(.*?)</small>', row, re.S)
    assert found is not None, row
    return html.unescape(found[1]).strip(), html.unescape(found[2]).strip()


# ---- a conversion warning said in Chinese must say what its English says -------------------------------

SIU = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||SIU^S12^SIU_S12|RV39C-TQ1|P|2.5.1\r"
       "SCH|AP-RV39C|BK-RV39C||||||NORMAL|||||||||||||||||Booked\r"
       "TQ1|1|||||30^FORTNIGHTS|20261205083000\r"
       "PID|1||RV39C1^^^FNXRMYY^MR||李^小明||19800101|M\r")


def test_a_tq1_duration_unit_warning_is_said_as_its_english_says(fed: Engine, http: TestClient,
                                                                  operator: TestClient) -> None:
    ack = send(http, SIU)
    assert "MSA|AA" in ack and "TQ1-6: duration unit 'FORTNIGHTS' is not one huren reads" in ack, ack
    page = operator.get("/admin/fidelity", params={"institution": "FNXRMYY"}, headers={"Accept": HTML})
    assert page.status_code == 200, page.text
    [(zh, en)] = [_detail(r) for r in _rows(page.text) if "duration unit" in r and "FORTNIGHTS" in html.unescape(r)]
    assert "the length is not compared with the appointment's" in en, en
    # the Chinese must not claim what the English does not: the appointment's duration/end were not touched
    assert "结束时间" not in zh and ("比较" in zh or "核对" in zh), zh


# ---- q values: a generic JSON type asked for with a malformed weight -----------------------------------

def test_a_generic_json_asked_with_a_malformed_weight_is_answered_in_it(http: TestClient) -> None:
    r = http.get("/fhir/metadata", headers={"Accept": "application/json;q=abc"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]


def test_a_malformed_weight_is_never_a_500_on_fhir(http: TestClient) -> None:
    """Every malformed or odd weight is answered 200 or 406 with an OperationOutcome, never a 500."""
    for accept in ("application/fhir+json;q=", "application/fhir+json;q", "application/fhir+json;q=1e0",
                   "application/fhir+json;q=\u00bd", "application/fhir+json;q=0x1", "application/fhir+json;;;q=1;",
                   "application/fhir+xml;q=0.9999", ";q=0.5", "*/*;q=nan, application/fhir+json;q=0"):
        r = http.get("/fhir/metadata", headers={"Accept": accept.encode("utf-8")})
        assert r.status_code in (200, 406), (accept, r.status_code, r.text)
        if r.status_code == 406:
            assert r.json()["resourceType"] == "OperationOutcome", r.text


# ---- the pages drawn as templates escape what a sender or a staff member controls -----------------------

def test_markup_in_the_address_and_a_senders_code_stays_text_on_every_staff_page(fed: Engine) -> None:
    """The four pages are Jinja templates now (they were files): markup in a filter of the address and in a
    sender's code (rv38g's feed) reaches none of them as markup, and no template text is left undrawn. (The
    signed-in person's display name is not drawn by the server: ``hurenStaff.whoami`` sets it as text.)"""
    for client in staff_client(fed, "op.rv39c", "operator"):
        for path in ("/ui/duplicates", "/ui/insurance", "/ui/quarantine", "/admin/fidelity"):
            r = client.get(path, params={"institution": XSS, "q": XSS}, headers={"Accept": HTML})
            assert r.status_code in (200, 403), (path, r.status_code)
            assert "<img" not in r.text, (path, r.text)
            assert '<nav aria-label="工作页面 Staff pages">' in r.text or r.status_code == 403, (path, r.text)
            assert "{%" not in r.text and "{{" not in r.text, path  # no template text left undrawn


def test_the_session_says_fidelity_as_the_route_decides(fed: Engine, operator: TestClient,
                                                        auditor: TestClient) -> None:
    """``can.fidelity`` (the header's link) follows the route's own check: an operator opens the page, an
    auditor is refused it (403 page, no report) and is shown no link."""
    assert operator.get("/ui/session").json()["can"]["fidelity"] is True
    assert operator.get("/admin/fidelity", headers={"Accept": HTML}).status_code == 200
    assert auditor.get("/ui/session").json()["can"]["fidelity"] is False
    r = auditor.get("/admin/fidelity", headers={"Accept": HTML})
    assert r.status_code == 403 and 'class="institution"' not in r.text, r.text


# ---- walked in headless Chromium: a bound operator, an auditor, markup in a display name -------------------

chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")


@chromium
def test_a_bound_operator_and_an_auditor_walk_the_staff_pages(site: Site) -> None:  # noqa: F811 - ui38's site
    """A operator bound to 阜宁县中医院 (FNZYY) sees the one header on the fidelity page with the links her role
    opens, only her hospital's rows, the filter taking another hospital's name told it is outside her remit;
    an auditor is shown no fidelity link on her pages and is refused the page itself; a display name written
    as markup is shown as text in the header."""
    site.secrets["lin.rv39c"] = StaffDirectory(site.engine.settings.data_dir).add(
        "lin.rv39c", role="operator", institution="FNZYY", password=AUDITOR_PASSWORD, display="林<b>运维</b><img src=x>",
        roles=site.engine.staff.roles, remit="FNZYY").secret
    site.staff("ma.rv39c", "auditor", "马审核")
    b = Browser(site.shots / "profile-rv39c")
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        _sign_in(b, site, "lin.rv39c", "/admin/fidelity")
        b.wait_for(HEADER_FILLED)
        assert b.eval("document.querySelector('#who-name').innerText").startswith("林<b>运维</b><img src=x>")
        assert b.eval("document.querySelectorAll('#who img, #who-name b').length") == 0
        assert "/ui/quarantine" in b.eval(SHOWN_LINKS) and "/admin/fidelity" in b.eval(SHOWN_LINKS)
        assert b.eval("[...document.querySelectorAll('section.institution')].map(s => s.dataset.code)") in ([], ["FNZYY"])
        site.shot(b, "rv39c-bound-operator-fidelity-desktop")
        b.eval("document.querySelector('#filters [name=institution]').value = '阜宁县人民医院';"
               "document.querySelector('#apply').click(); true")
        b.wait_for("new URLSearchParams(location.search).get('institution') === 'FNXRMYY' && document.readyState === 'complete'"
                   " && !!document.querySelector('#outside')")
        b.send("Emulation.setDeviceMetricsOverride", **PHONE)
        b.wait_for(HEADER_FILLED)
        assert outside(b, PHONE) == []
        site.shot(b, "rv39c-bound-operator-outside-phone")
    finally:
        b.close()
    b = Browser(site.shots / "profile-rv39c-auditor")
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        _sign_in(b, site, "ma.rv39c", "/ui/duplicates")
        b.wait_for(HEADER_FILLED)
        shown = b.eval(SHOWN_LINKS)
        assert "/admin/fidelity" not in shown and "/ui/quarantine" not in shown, shown
        site.shot(b, "rv39c-auditor-duplicates-desktop")
        b.send("Page.navigate", url=site.base + "/admin/fidelity")
        b.wait_for("location.pathname === '/admin/fidelity' && document.readyState === 'complete'")
        text = b.eval("document.body.innerText")
        assert "未映射代码统计" in text and "section" not in text and not b.eval("!!document.querySelector('table.items')"), text
        site.shot(b, "rv39c-auditor-fidelity-refused-desktop")
    finally:
        b.close()


# ---- every route that negotiates weighs Accept by the one rule (formats.quality) ---------------------------

def test_a_refused_csv_is_not_what_the_duplicates_report_answers(auditor: TestClient) -> None:
    r = auditor.get("/reports/duplicates", headers={"Accept": "text/csv;q=0, application/json"})
    assert r.status_code == 200, r.text
    assert not r.headers["content-type"].startswith("text/csv"), r.headers["content-type"]


def test_a_refused_text_plain_is_not_what_metrics_answers(http: TestClient) -> None:
    r = http.get("/admin/metrics", headers={"Accept": "text/plain;q=0, application/json"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]
