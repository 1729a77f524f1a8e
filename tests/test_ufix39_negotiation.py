"""ufix39: every address that answers two representations weighs ``Accept`` by the one rule (``formats.prefers``
over ``formats.quality``); a range whose weight cannot be read is named, its weight unknown; the conversion
warnings' Chinese says what their English says; the fidelity filter takes a code the report shows.

Real HTTP through FastAPI (TestClient) into the real store: the duplicates report and the signed deduction list
on the county of ``test_reports_duplicates`` (bearer tokens of an auditor and an insurance reader), the metrics as
an operator, ``/fhir`` as a program; real HL7 v2 over ``POST /hl7v2`` and the operator's ``/admin/fidelity``
page for the warnings; the filter walked in headless Chromium on ui38's served site.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.hl7_calls import oru
from tests.test_insurance_deductions import MONTH, upheld
from tests.test_recognition_world import B
from tests.test_reports_duplicates import bearer, county
from tests.test_reports_ui import Browser
from tests.test_resident_record_ui import _http
from tests.test_resident_ui import CHROMIUM
from tests.test_rv38g_probes import BASE, HTML, auditor, fed, http, module_eng, operator
from tests.test_srfix35_order_code import send
from tests.test_ui12_phone import outside
from tests.test_ui38_pages import DESKTOP, ER7, PHONE, Site, _sign_in, site

__all__ = ["auditor", "county", "fed", "http", "module_eng", "operator", "site"]

PROMETHEUS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"  # its scraper's


# ---- the signed deduction list: CSV only when weighed above the Bundle -----------------------------------

@pytest.mark.parametrize(("accept", "csv"), [
    ("text/csv;q=0, application/fhir+json", False),  # CSV refused: the signed Bundle, never the unsigned CSV
    ("application/fhir+json, text/csv;q=0.5", False),
    ("*/*", False), (None, False),
    ("text/csv", True), ("Text/CSV", True),
    ("text/csv, application/fhir+json;q=0.5", True),
    ("text/csv;q=abc, application/xml", True),  # CSV listed (weight unread), the only listed type it has
])
def test_the_deduction_list_is_csv_only_when_weighed_above_the_bundle(engine: Any, county: dict[str, Any],
                                                                      accept: str | None, csv: bool) -> None:
    http_ = county["http"]
    upheld(engine, http_)
    headers = bearer(engine, "system/DetectedIssue.rs") | ({"Accept": accept} if accept else {})
    r = http_.get("/reports/deductions", params={"institution": B, "month": MONTH}, headers=headers)
    assert r.status_code == 200, r.text
    kind = r.headers["content-type"]
    assert kind.startswith("text/csv") if csv else kind.startswith("application/fhir+json"), (accept, kind)
    if not csv:
        assert r.json()["resourceType"] == "Bundle" and r.json().get("signature"), r.text


# ---- the duplicates report ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("accept", "csv"), [
    ("text/csv;q=0, application/json", False), ("application/json, text/csv;q=0.9", False), ("*/*", False),
    ("text/csv", True), ("text/csv;q=0.9, application/json;q=0.5", True), ("text/*, application/json;q=0.5", True),
])
def test_the_duplicates_report_is_csv_only_when_weighed_above_json(auditor: TestClient, accept: str,
                                                                   csv: bool) -> None:
    r = auditor.get("/reports/duplicates", headers={"Accept": accept})
    assert r.status_code == 200, r.text
    kind = r.headers["content-type"]
    assert kind.startswith("text/csv") if csv else kind.startswith("application/json"), (accept, kind)


# ---- the metrics -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("accept", "text"), [
    (PROMETHEUS, True), ("text/plain", True),
    ("text/plain;q=0, application/json", False), ("application/json, text/plain;q=0.5", False), (None, False),
])
def test_the_metrics_are_prometheus_text_only_when_weighed_above_json(operator: TestClient, accept: str | None,
                                                                      text: bool) -> None:
    r = operator.get("/admin/metrics", headers={"Accept": accept} if accept else {})
    assert r.status_code == 200, r.text
    kind = r.headers["content-type"]
    assert kind.startswith("text/plain") if text else kind.startswith("application/json"), (accept, kind)


# ---- a weight that cannot be read: the answer is a type the client listed when it can have one --------------

@pytest.mark.parametrize(("accept", "status", "label"), [
    ("application/json;q=abc", 200, "application/json"),
    ("text/json;q=2", 200, "text/json"),
    ("application/fhir+xml;q=abc, application/json;q=nan", 200, "application/json"),
    ("application/fhir+xml;q=0.9999", 200, "application/fhir+json"),  # nothing listed it has: anything (ui39)
    ("application/fhir+xml, application/fhir+json;q=2", 200, "application/fhir+json"),  # listed; XML it has not
    ("application/fhir+xml", 406, "application/fhir+json"),
])
def test_a_weight_not_read_still_names_its_type_on_fhir(http: TestClient, accept: str, status: int,
                                                        label: str) -> None:
    r = http.get("/fhir/metadata", headers={"Accept": accept})
    assert r.status_code == status, (accept, r.text)
    assert r.headers["content-type"].startswith(label), (accept, r.headers["content-type"])


@pytest.mark.parametrize(("accept", "page"), [("text/*", True), ("text/json", False), ("text/json, text/*", False)])
def test_any_text_is_sent_to_sign_in_and_json_text_is_a_program(fed: Engine, accept: str, page: bool) -> None:
    """Unauthenticated on /admin/fidelity: ``text/*`` takes the page (303 to sign in), ``text/json`` written is a
    program's (401)."""
    with TestClient(create_app(fed), base_url=BASE) as anon:
        r = anon.get("/admin/fidelity", headers={"Accept": accept}, follow_redirects=False)
    assert r.status_code == (303 if page else 401), (accept, r.status_code, r.text)


# ---- the conversion warnings' Chinese says what their English says -----------------------------------------

def _said(page: str, english: str) -> tuple[str, str]:
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        found = re.search(r'<div class="said">(.*?)<small class="en">(.*?)</small>', row, re.S)
        if found and english in html.unescape(found[2]):
            return html.unescape(found[1]).strip(), html.unescape(found[2]).strip()
    raise AssertionError(f"no row says {english!r}: {page}")


def test_a_date_value_kept_as_text_is_not_said_to_miss_numeric_comparison(fed: Engine, http: TestClient,
                                                                          operator: TestClient) -> None:
    ack = send(http, oru("UF39-DT", "20261345", mrn="UF39", kind="DT"))
    assert "MSA|AA" in ack and "OBX-5 is not a valid DT" in ack, ack
    page = operator.get("/admin/fidelity", params={"institution": "FNXRMYY"}, headers={"Accept": HTML}).text
    zh, en = _said(page, "OBX-5 is not a valid DT")
    assert "kept as text" in en and "按原文作为文字保存" in zh and "数值" not in zh and "趋势" not in zh, zh


def test_a_repaired_msh2_is_said_read_as_what_it_was_read_as(fed: Engine, http: TestClient,
                                                             operator: TestClient) -> None:
    message = oru("UF39-ESC", "5.1", mrn="UF39", kind="NM").replace("MSH|^~\\&|", "MSH|^~\\\\&|", 1)
    ack = send(http, message)
    assert "MSA|AA" in ack and "doubles the escape character" in ack, ack
    page = operator.get("/admin/fidelity", params={"institution": "FNXRMYY"}, headers={"Accept": HTML}).text
    zh, en = _said(page, "doubles the escape character")
    read = re.search(r"read as '([^']*)'", en)
    assert read is not None and f"已按“{read[1]}”读取" in zh and "标准" not in zh, (zh, en)


# ---- the fidelity filter takes a code the report shows ---------------------------------------------------

@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")
def test_the_filter_takes_a_code_the_report_shows_that_the_site_does_not_name(site: Site) -> None:  # noqa: F811
    """A code the report draws (an institution the site has since removed is drawn 本站未登记的机构代码) is sent as
    typed: the site's names, as the page has them, are made to lack FNZYY (what the browser holds when the site
    no longer names it), and FNZYY typed is the address's filter, not 没有名为“FNZYY”的机构."""
    site.staff("wu.ufix39", "operator", "吴运维")
    b = Browser(site.shots / "profile-ufix39")
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        _sign_in(b, site, "wu.ufix39", "/admin/fidelity")
        b.wait_for("!!(window.hurenWords.names.places && window.hurenWords.names.places.FNZYY)")
        assert "FNZYY" in b.eval("[...document.querySelectorAll('section.institution')].map(s => s.dataset.code)")
        b.eval("delete window.hurenWords.names.places.FNZYY; true")
        b.eval("document.querySelector('#filters [name=institution]').value = ' FNZYY ';"
               "document.querySelector('#apply').click(); true")
        b.wait_for("new URLSearchParams(location.search).get('institution') === 'FNZYY'"
                   " && document.readyState === 'complete' && !!document.querySelector('section.institution')")
        assert b.eval("document.querySelector('#message').textContent") == ""
        site.shot(b, "ufix39-filter-shown-code-desktop")
        # the appointment warnings said in Chinese as their English says, on a phone too
        sender = site.engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        siu = _siu("UF39-WALK").replace("TQ1|1||||||20261205083000", "TQ1|1|||||30^FORTNIGHTS|20261205083000")
        status, headers, ack = _http("POST", site.base + "/hl7v2", sender, siu.encode("utf-8"), ER7)
        assert status == 200 and headers.get("x-hl7-ack-code") == "AA", ack
        b.send("Page.navigate", url=site.base + "/admin/fidelity?institution=FNXRMYY")
        b.wait_for("document.readyState === 'complete' && !!document.querySelector('section.institution')")
        text = b.eval("document.querySelector('section.institution').innerText")
        assert "未与预约的时长核对" in text and "未据此设置预约状态" in text and "参与者的状态" in text, text
        assert "不是预约的时长，不据此推算结束时间" in text and "TQ1-6 (30 FORTNIGHTS)" in text, text
        site.shot(b, "ufix39-appointment-warnings-desktop")
        b.send("Emulation.setDeviceMetricsOverride", **PHONE)
        b.wait_for("document.readyState === 'complete'")
        assert outside(b, PHONE) == []
        site.shot(b, "ufix39-appointment-warnings-phone")
    finally:
        b.close()


# ---- a filler status the tables do not name is said in Chinese too; the 404 page by the one rule -------------

def _siu(control: str) -> str:
    aip = "|".join(["AIP", "1", "", "D7^王^医生", "", "", "20261205083000", "", "", "", "", "", "ZZ"])
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||SIU^S12^SIU_S12|{control}|P|2.5.1\r"
            f"SCH|AP-{control}|BK-{control}||||||NORMAL|||||||||||||||||Pencilled\r"
            "TQ1|1||||||20261205083000\r"
            f"PID|1||{control}^^^FNXRMYY^MR||李^小明||19800101|M\r"
            f"RGS|1\r{aip}\r")


def test_a_filler_status_not_read_is_said_as_its_english_says(fed: Engine, http: TestClient,
                                                               operator: TestClient) -> None:
    ack = send(http, _siu("UF39-SCH"))
    assert "MSA|AA" in ack and "SCH-25: filler status 'Pencilled'" in ack and "AIP-12: filler status 'ZZ'" in ack, ack
    page = operator.get("/admin/fidelity", params={"institution": "FNXRMYY"}, headers={"Accept": HTML}).text
    zh, en = _said(page, "SCH-25: filler status 'Pencilled'")
    assert "the status is not taken from it" in en and "“Pencilled”" in zh and "未据此设置预约状态" in zh, zh
    zh, en = _said(page, "AIP-12: filler status 'ZZ'")
    assert "participant's status is not taken" in en and "AIP-12" in zh and "参与者的状态" in zh, zh
    zh, en = _said(page, "TQ1-7: the start '20261205083000' comes with no end and no duration to end it")
    assert "neither is taken" in en and "开始和结束时间均未采用" in zh and "20261205083000" in zh, zh


@pytest.mark.parametrize(("accept", "page"), [
    (HTML, True), ("text/html", True), ("text/html;q=0, application/json", False), ("*/*", False),
    ("application/json, text/html;q=0.5", False)])
def test_the_not_found_page_under_ui_is_chosen_by_weight(fed: Engine, accept: str, page: bool) -> None:
    with TestClient(create_app(fed), base_url=BASE) as anon:
        r = anon.get("/ui/no-such-page-ufix39", headers={"Accept": accept})
    assert r.status_code == 404, r.text
    kind = r.headers["content-type"]
    assert kind.startswith("text/html") if page else not kind.startswith("text/html"), (accept, kind)
