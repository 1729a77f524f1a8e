"""ufix38: ``/admin/fidelity`` for a person and a program, after rv38g's review of ui38's page.

rv38g's own probes (``tests/test_rv38g_probes.py``, its strict xfails removed) pin the page's read audited with
the operator's name, the gap rows and the empty field said as what they are, a bound operator told another
hospital is outside the remit, Accept's q values, and ``Vary``. Here, beyond them:
- the records a row names (``Tally.records``: the institution's own records an operator opens and corrects)
  are on the page as in the JSON;
- every answer of the address says ``Vary: Accept`` -- the 303 to sign in and the auditor's 403 page too --
  and the JSON is ``no-store`` as the page is;
- a refused person is audited by name (the access check is ``get_caller``'s and ``require_operator``'s);
- the return place after sign-in (``ui_signin._next``, the one check) comes back encoded, so the OIDC sign-in's
  ``Refresh`` header carries no CR/LF and a Chinese filter does not make it a 500; a dot segment is refused.

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``, rv38g's feed); real
HTTP through TestClient, the people signed in with password and TOTP; the OIDC round trip against
``tests/test_staff_oidc.py``'s provider over real HTTP.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.api.ui_signin import _next
from engine.engine import Engine
from tests.hl7_calls import post
from tests.test_rv38g_probes import (
    BASE,
    HTML,
    OTHER,
    _row,
    auditor,
    bound,
    fed,
    http,
    module_eng,
    operator,
)
from tests.test_rvidentity32_probes import adt
from tests.test_staff_oidc import oidc_engine, provider, through_provider

__all__ = ["auditor", "bound", "fed", "http", "module_eng", "oidc_engine", "operator", "provider"]


@pytest.fixture(scope="module")
def contradicted(fed: Engine, http: TestClient) -> list[str]:
    """FNZYY files a person under FNXRMYY's number UF38A; FNXRMYY registers another person under it: FNZYY's
    ``member_contradicted`` row names FNZYY's own record (idfix34). Its records as the JSON gives them."""
    token = fed.auth.issue_system_token("ufix38-sender", "system/*.cruds")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(fed)) as sender:
        sender.headers.update(headers)
        filed = adt("UF38A1", "UF38A^^^FNXRMYY^MR", "王^一", "19900101", "F").replace("|FNXRMYY|HUREN|", "|FNZYY|HUREN|", 1)
        assert ack_code_of(post(sender, filed)) == "AA"
        assert ack_code_of(post(sender, adt("UF38A2", "UF38A^^^FNXRMYY^MR", "郑^一", "19600101", "M"))) == "AA"
        data = sender.get("/admin/fidelity", params={"institution": "FNZYY"}).json()
    rows = [i for i in data["institutions"]["FNZYY"]["items"] if i.get("count_as") == "member_contradicted"]
    records = sorted({r for row in rows for r in row.get("records") or ()})
    assert records and all(r.startswith("Patient/") for r in records), rows
    return records


def test_the_records_a_row_names_are_on_the_page(operator: TestClient, contradicted: list[str]) -> None:
    page = operator.get("/admin/fidelity", params={"institution": "FNZYY"}, headers={"Accept": HTML})
    assert page.status_code == 200, page.text
    rows = [r for r in re.findall(r"<tr>(.*?)</tr>", page.text, re.S) if 'class="records"' in r]
    listed = sorted({html.unescape(c) for r in rows for c in re.findall(r"<code>([^<]*)</code>", r)})
    assert listed == contradicted, (listed, contradicted)
    assert all("需核对更正的本机构记录" in r for r in rows), rows


def test_every_answer_of_the_address_says_it_varies_by_accept(fed: Engine, operator: TestClient,
                                                               auditor: TestClient) -> None:
    data = operator.get("/admin/fidelity", headers={"Accept": "application/json"})
    assert data.headers["content-type"].startswith("application/json")
    assert (data.headers["cache-control"], data.headers["vary"]) == ("no-store", "Accept"), dict(data.headers)
    page = operator.get("/admin/fidelity", headers={"Accept": HTML})
    assert (page.headers["cache-control"], page.headers["vary"]) == ("no-store", "Accept"), dict(page.headers)
    refused = auditor.get("/admin/fidelity", headers={"Accept": HTML})
    assert refused.status_code == 403 and refused.headers["vary"] == "Accept", dict(refused.headers)
    with TestClient(create_app(fed), base_url=BASE) as anon:
        away = anon.get("/admin/fidelity", headers={"Accept": HTML}, follow_redirects=False)
    assert away.status_code == 303 and away.headers["vary"] == "Accept", dict(away.headers)
    assert urlsplit(away.headers["location"]).path == "/ui/signin"


def test_an_auditor_refused_the_page_is_named_in_the_audit(fed: Engine, auditor: TestClient) -> None:
    """The refusal comes from the same check as the JSON's, which names who asked: the 403 is recorded
    against the auditor, not an unauthenticated caller."""
    assert auditor.get("/admin/fidelity", headers={"Accept": HTML}).status_code == 403
    events = [e for e in fed.audit.events() if (e.get("outcome") or "") not in ("", "0")]
    who = [a["who"] for e in events[-1:] for a in e["agent"] if a.get("requestor")]
    assert who and who[0].get("identifier", {}).get("value") == "aud.rv38g", (who, events[-1:])


def test_a_bound_operator_asking_for_another_hospital_is_told_it_is_outside_the_remit(bound: TestClient) -> None:
    page = bound.get("/admin/fidelity", params={"institution": OTHER}, headers={"Accept": HTML}).text
    said = re.search(r'<p id="outside"[^>]*>(.*?)</p>', page, re.S)
    assert said and "不在您的查看范围内" in said.group(1) and "阜宁县中医院（FNZYY）" in said.group(1), page
    assert 'id="empty"' not in page and "RV38GQ" not in page, page


def test_the_sites_operator_reads_each_kind_in_its_own_words(operator: TestClient) -> None:
    page = operator.get("/admin/fidelity", params={"institution": "FNZYY"}, headers={"Accept": HTML}).text
    empty = _row(page, "ServiceRequest.code")
    assert "发送方未填写 Field left empty" in empty and "发送方未填写 OBR-4" in empty, empty
    no_item = _row(page, "100101")
    assert "已映射但无识别项目" in no_item and "Unmapped code" not in no_item, no_item
    assert "<small class=\"en\">(Local code" in no_item, no_item  # the English under the Chinese
    assert "未映射的代码 Unmapped code" in _row(page, "PTX"), page


# ---- the return place after sign-in ------------------------------------------------------------------------

@pytest.mark.parametrize(("place", "expected"), [
    ("/admin/fidelity?x=1\r\nSet-Cookie: a=b", "/admin/fidelity?x=1%0D%0ASet-Cookie:%20a=b"),
    ("/ui/quarantine?institution=阜宁", "/ui/quarantine?institution=%E9%98%9C%E5%AE%81"),
    ("/ui/duplicates?year=2025&month=3", "/ui/duplicates?year=2025&month=3"),
    ("/ui/../fhir/Patient", "/ui/duplicates"), ("/ui/%2e%2e/admin/health", "/ui/duplicates"),
    ("/ui/.%2E/admin/health", "/ui/duplicates"), ("/ui/./quarantine", "/ui/duplicates"),
    ("/ui/\t/evil.example", "/ui/%09/evil.example"), ("\t//evil.example", "/ui/duplicates")])
def test_the_return_place_is_encoded_and_stays_among_the_named_pages(place: str, expected: str) -> None:
    assert _next(place) == expected
    assert _next(expected) == expected  # the form's hidden field and the OIDC start check it again: unchanged


@pytest.mark.parametrize("place", ["/admin/fidelity?x=1\r\nSet-Cookie: a=b", "/ui/quarantine?institution=阜宁"])
def test_the_oidc_sign_ins_refresh_header_carries_the_place_encoded(oidc_engine: Engine, provider, place: str) -> None:
    """The OIDC sign-in answers a page whose ``Refresh`` header names the return place: a CR/LF went into the
    header as sent, and a Chinese filter made the answer a 500 (a header is Latin-1)."""
    provider.user = {"preferred_username": "li.ufix38", "name": "李运维", "groups": ["ybj-it"], "org": "YBJ"}
    with TestClient(create_app(oidc_engine), raise_server_exceptions=False) as browser:
        r = through_provider(browser, place)
        assert r.status_code == 200, r.text
        refresh = r.headers["refresh"]
        assert refresh == "0;url=" + _next(place) and refresh.isascii(), refresh
        assert not re.search(r"[\s\x00-\x1f]", refresh.removeprefix("0;url=")), refresh
        assert "a=b" not in "".join(r.headers.get_list("set-cookie")), r.headers
        assert browser.get("/ui/session").json()["name"] == "li.ufix38"
