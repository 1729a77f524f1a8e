"""rv38g: review probes of ui38 (``/admin/fidelity`` as a Chinese page for a browser, the sign-in's return to it).

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``); the report read
over real HTTP through FastAPI's TestClient, as a program (bearer token, ``Accept: */*`` or none) and as a
person (a staff session signed in with password and TOTP through ``/ui/signin``, ``Accept: text/html``).
The six findings these probed as strict xfails (the page's read audited as nobody, the gap rows, an empty
field, a bound operator's other hospital, Accept's q values, Vary) were fixed by ufix38: plain tests now.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.auth.staff import StaffDirectory
from engine.engine import Engine
from tests.module_store import module_eng
from tests.test_srfix35_order_code import B, http, oru, send
from tests.test_staff_signin import PASSWORD, rfc6238, sign_in
from tests.test_xotext36_order_text import LFT_LOCAL, _by_text

__all__ = ["http", "module_eng"]

BASE = "https://huren.example"  # module_eng's public base: the session cookie is Secure
HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # what Chromium sends for a page
OTHER = "FNXRMYY"  # the county people's hospital: a member of its own
XSS = '"><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def fed(module_eng: Engine, http: TestClient) -> Engine:
    """FNZYY: an order's text naming no item (gap order_text), a mapped code with no item (gap no_item), a code
    whose text is markup, a result whose OBR-4 is empty (absent); FNXRMYY (the county hospital): an unmapped code of its own."""
    assert "MSA|AA" in send(http, _by_text("RV38G-T", "凝血检查十项"))
    assert "MSA|AA" in send(http, oru("RV38G-T", item=LFT_LOCAL))
    assert "MSA|AA" in send(http, _by_text("RV38G-N", "血常规"))
    assert "MSA|AA" in send(http, oru("RV38G-N", item="100101^白细胞^L"))
    assert "MSA|AA" in send(http, oru("RV38G-X").replace("5902-2^PT^LN", f"{XSS}^锌^L"))
    assert "MSA|AA" in send(http, oru("RV38G-A", item=""))  # OBR-4 empty: the order's code counted ``absent``
    other = oru("RV38G-O", item="RV38GQ^某项^L").replace(B, OTHER)
    assert "MSA|AA" in send(http, other)
    return module_eng


def staff_client(engine: Engine, name: str, role: str, remit: str = "") -> Iterator[TestClient]:
    secret = StaffDirectory(engine.settings.data_dir).add(name, role=role, institution="YBJ", password=PASSWORD,
                                                          display=name, roles=engine.staff.roles, remit=remit).secret
    with TestClient(create_app(engine), base_url=BASE) as client:
        r = sign_in(client, name, PASSWORD, rfc6238(secret, time.time()), "/admin/fidelity")
        assert r.status_code == 303 and r.headers["location"] == "/admin/fidelity", (r.status_code, r.headers)
        yield client


@pytest.fixture(scope="module")
def operator(fed: Engine) -> Iterator[TestClient]:
    yield from staff_client(fed, "op.rv38g", "operator")



def _sections(page: str) -> set[str]:
    return set(re.findall(r'<section class="institution" data-code="([^"]*)"', page))


def _row(page: str, value: str) -> str:
    """The page's table row whose value cell is ``value`` (as the page escapes it)."""
    [row] = [r for r in re.findall(r"<tr>(.*?)</tr>", page, re.S) if f'data-label="代码/段 Value">{value}<' in r]
    return row


# ---- content negotiation: programs keep the JSON, a browser gets the page --------------------------------

@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/fhir+json", HTML])
def test_a_program_with_its_token_gets_the_json_whatever_it_accepts(fed: Engine, http: TestClient,
                                                                    accept: str | None) -> None:
    reader = fed.auth.issue_system_token("rv38g-monitor", "system/MessageHeader.r")
    headers = {"Authorization": f"Bearer {reader}"} | ({"Accept": accept} if accept else {})
    r = http.get("/admin/fidelity", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), r.text[:300]
    assert {B, OTHER} <= set(r.json()["institutions"]), r.json()


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_a_program_without_a_token_is_told_401_not_sent_to_a_sign_in_page(fed: Engine, accept: str | None) -> None:
    with TestClient(create_app(fed), base_url=BASE) as anon:
        r = anon.get("/admin/fidelity", headers={"Accept": accept} if accept else {}, follow_redirects=False)
    assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome", (r.status_code, r.text[:300])
    assert "RV38GQ" not in r.text and "100101" not in r.text


def test_a_browser_not_signed_in_is_sent_to_sign_in_and_back_with_its_filter(fed: Engine) -> None:
    with TestClient(create_app(fed), base_url=BASE) as anon:
        r = anon.get("/admin/fidelity", params={"institution": B}, headers={"Accept": HTML}, follow_redirects=False)
        assert r.status_code == 303 and "RV38GQ" not in r.text and "100101" not in r.text, r.text
        form = anon.get(r.headers["location"])
    assert urlsplit(r.headers["location"]).path == "/ui/signin", r.headers
    assert re.search(r'name="next" value="/admin/fidelity\?institution=FNZYY"', form.text), form.text


def test_an_accept_preferring_json_gets_json(operator: TestClient) -> None:
    for accept in ("application/json, text/html;q=0.1", "application/json, text/html;q=0"):
        r = operator.get("/admin/fidelity", headers={"Accept": accept})
        assert r.headers["content-type"].startswith("application/json"), (accept, r.headers["content-type"])


# ---- the return place after sign-in ---------------------------------------------------------------------

@pytest.mark.parametrize("place", ["//evil.example/admin/fidelity", "/\\evil.example", "/admin/fidelity\\..\\x",
                                   "https://evil.example/admin/fidelity", "javascript:alert(1)//admin/fidelity",
                                   "/admin/fidelity.evil.example", "/admin/fidelity@evil.example",
                                   "/admin/fidelity/..//evil.example", "%2F%2Fevil.example", "/%2F/evil.example",
                                   "/admin/fidelity?x=1\r\nLocation: //evil.example", "\t//evil.example",
                                   " //evil.example", "/admin/fidelity?\\\\evil.example", "/ui/..//evil.example",
                                   "/ui/\t/evil.example"])
def test_the_return_place_after_sign_in_is_this_sites_own(operator: TestClient, place: str) -> None:
    """A signed-in person opening the sign-in page with ``next`` is sent on at once (``signin_page``): never to
    another host, whatever the value's form (``ui_signin._next``)."""
    r = operator.get("/ui/signin", params={"next": place}, follow_redirects=False)
    assert r.status_code == 303, r.status_code
    where = r.headers["location"]
    assert where.startswith("/") and not where.startswith("//") and not re.search(r"[\\\s]", where), where
    assert urlsplit(urljoin(BASE + "/ui/signin", where)).netloc == "huren.example", where
    assert where in ("/ui/duplicates", "/admin/fidelity?x=1%0D%0ALocation:%20//evil.example") or where.startswith(
        ("/ui/", "/admin/fidelity?")), where


def test_the_return_place_keeps_the_fidelity_filter_and_nothing_else_outside_ui(operator: TestClient) -> None:
    for place, expected in (("/admin/fidelity?institution=FNZYY", "/admin/fidelity?institution=FNZYY"),
                            ("/admin/fidelity", "/admin/fidelity"), ("/admin/health", "/ui/duplicates"),
                            ("/admin/fidelityx", "/ui/duplicates"), ("/fhir/Patient", "/ui/duplicates")):
        r = operator.get("/ui/signin", params={"next": place}, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, expected), (place, r.headers)


# ---- who sees what --------------------------------------------------------------------------------------

def test_the_sites_operator_sees_on_the_page_the_institutions_the_json_gives(operator: TestClient) -> None:
    page = operator.get("/admin/fidelity", headers={"Accept": HTML})
    data = operator.get("/admin/fidelity", headers={"Accept": "*/*"}).json()
    assert page.headers["content-type"].startswith("text/html") and page.headers["cache-control"] == "no-store"
    assert _sections(page.text) == set(data["institutions"]) >= {B, OTHER}, (_sections(page.text), data)
    assert "阜宁县中医院（FNZYY）" in page.text and "RV38GQ" in page.text


@pytest.fixture(scope="module")
def bound(fed: Engine) -> Iterator[TestClient]:
    yield from staff_client(fed, "op.fnzyy.rv38g", "operator", remit=B)


def test_an_operator_bound_to_a_hospital_sees_its_rows_only_on_the_page(bound: TestClient) -> None:
    data = bound.get("/admin/fidelity", headers={"Accept": "*/*"}).json()
    assert set(data["institutions"]) == {B}, data
    page = bound.get("/admin/fidelity", headers={"Accept": HTML})
    assert page.status_code == 200 and _sections(page.text) == {B}, page.text
    assert "RV38GQ" not in page.text and OTHER not in page.text, page.text
    other = bound.get("/admin/fidelity", params={"institution": OTHER}, headers={"Accept": HTML})
    assert other.status_code == 200 and _sections(other.text) == set() and "RV38GQ" not in other.text, other.text


def test_a_bound_operator_is_not_told_that_another_hospital_has_nothing_unmapped(bound: TestClient) -> None:
    other = bound.get("/admin/fidelity", params={"institution": OTHER}, headers={"Accept": HTML})
    assert "没有未映射的代码或段" not in other.text and "converted in full" not in other.text, other.text


@pytest.fixture(scope="module")
def auditor(fed: Engine) -> Iterator[TestClient]:
    secret = StaffDirectory(fed.settings.data_dir).add("aud.rv38g", role="auditor", institution="YBJ",
                                                       password=PASSWORD, display="审核", roles=fed.staff.roles).secret
    with TestClient(create_app(fed), base_url=BASE) as client:
        r = sign_in(client, "aud.rv38g", PASSWORD, rfc6238(secret, time.time()), "/admin/fidelity")
        assert r.status_code == 303, r.text
        yield client


def test_an_auditor_and_a_resident_see_no_row(fed: Engine, auditor: TestClient, http: TestClient) -> None:
    page = auditor.get("/admin/fidelity", headers={"Accept": HTML})
    assert page.status_code == 403 and "您无权查看未映射代码统计" in page.text, page.text
    data = auditor.get("/admin/fidelity", headers={"Accept": "*/*"})
    assert data.status_code == 403 and data.json()["resourceType"] == "OperationOutcome", data.text
    token, _ = fed.auth.issue_token(subject="Patient/rv38g", kind="patient", client_id="rv38g-phone",
                                    scopes=["patient/*.rs"], patient="rv38g")
    with TestClient(create_app(fed), base_url=BASE) as phone:
        resident = phone.get("/admin/fidelity", headers={"Authorization": f"Bearer {token}", "Accept": HTML})
    assert resident.status_code == 403, resident.text
    for r in (page, data, resident):
        assert not {"RV38GQ", "100101", "PTX", "onerror"} & set(re.findall(r"[\w]+", r.text)), r.text


# ---- escaping of what senders wrote ------------------------------------------------------------------------

def test_a_senders_markup_and_the_filter_are_escaped_on_the_page(operator: TestClient) -> None:
    page = operator.get("/admin/fidelity", headers={"Accept": HTML}).text
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page, page
    r = operator.get("/admin/fidelity", params={"institution": XSS}, headers={"Accept": HTML})
    assert r.status_code == 200 and "<img" not in r.text and 'value="&#34;&gt;&lt;img' in r.text, r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]


# ---- codedoc38's mapping-gap rows -------------------------------------------------------------------------

def test_the_gap_rows_say_on_the_page_what_the_gap_is(operator: TestClient) -> None:
    page = operator.get("/admin/fidelity", params={"institution": B}, headers={"Accept": HTML}).text
    text, no_item = _row(page, "凝血检查十项"), _row(page, "100101")
    assert "不在站点的代码对照表中" not in no_item and "已映射但没有识别项目" in no_item, no_item
    assert "不在站点的代码对照表中" not in text and "未指明任何识别项目" in text, text


def test_an_empty_field_is_said_empty_on_the_page(operator: TestClient) -> None:
    page = operator.get("/admin/fidelity", params={"institution": B}, headers={"Accept": HTML}).text
    row = _row(page, "ServiceRequest.code")
    assert "不在站点的代码对照表中" not in row and "Unmapped code" not in row, row


def test_a_code_no_map_knows_is_said_unmapped_on_the_page(operator: TestClient) -> None:
    page = operator.get("/admin/fidelity", params={"institution": B}, headers={"Accept": HTML}).text
    assert "OBR-4 的代码“PTX”不在站点的代码对照表中" in _row(page, "PTX"), page


# ---- the audit trail -----------------------------------------------------------------------------------------

def _last_fidelity_read(engine: Engine) -> dict:
    reads = [e for e in engine.audit.events() if any(d.get("valueString") == "fidelity" for x in e.get("entity") or ()
                                                      for d in x.get("detail") or ())]
    return reads[-1]


def test_the_json_read_by_a_session_names_the_operator(fed: Engine, operator: TestClient) -> None:
    operator.get("/admin/fidelity", headers={"Accept": "*/*"})
    who = [a["who"] for a in _last_fidelity_read(fed)["agent"] if a.get("requestor")]
    assert who and who[0].get("identifier", {}).get("value") == "op.rv38g", who


def test_the_pages_read_names_the_operator_in_the_audit(fed: Engine, operator: TestClient) -> None:
    r = operator.get("/admin/fidelity", headers={"Accept": HTML})
    assert r.status_code == 200
    who = [a["who"] for a in _last_fidelity_read(fed)["agent"] if a.get("requestor")]
    assert who and who[0].get("identifier", {}).get("value") == "op.rv38g", who


def test_both_forms_of_the_report_say_they_vary_by_accept(operator: TestClient) -> None:
    for accept in (HTML, "*/*"):
        r = operator.get("/admin/fidelity", headers={"Accept": accept})
        assert "accept" in r.headers.get("vary", "").lower(), (accept, dict(r.headers))
