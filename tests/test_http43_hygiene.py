"""http43: HTTP and FHIR hygiene -- the LOWs http42 and rv42c left.

- a control character (C0 but TAB, LF, CR) in a client's FHIR string is a 400 naming the element, on every writer
  (create, update, transaction), both backends; converted HL7's ``\\X00\\`` / ``\\X1B\\`` stays the escape text
  sent, so the same validator takes it;
- a narrative (``text.div``) that is not R4's -- script, event handler, ``javascript:`` link, form, frame, SVG,
  DOCTYPE, not XHTML -- is a 400 naming ``Patient.text.div``; the R4 examples' narratives are kept as sent;
- a sign-in form (staff ``/ui/signin``, the resident's ``/auth/authorize/login``) whose field is not UTF-8
  (``%FC``) is a 400 page in Chinese saying the form cannot be read -- not a wrong password, not throttled;
- two Host headers are a 400 (real uvicorn, raw socket);
- a CDS hook's draft ServiceRequest whose ``code`` (``requester``, ``coding``) is not of its R4 type is a 400 naming
  it, not ``{"cards": []}``;
- the unreadable-address 400 a program gets outside ``/fhir`` says ``Vary: Accept`` (real uvicorn).

Real bytes through the real path: FastAPI's TestClient into the real store on both backends (``module_eng``), real
HL7 over ``POST /hl7v2``, uvicorn over a socket where headers matter.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.auth.staff_session import ACCOUNT_FREE, SESSION_COOKIE
from engine.engine import Engine
from tests.identity39_calls import engine_and_client, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_http42_edges import _hook
from tests.test_reports_ui import server
from tests.test_rvidentity32_probes import _nid
from tests.test_staff_signin import PASSWORD, add_staff, rfc6238

both = engine_and_client("http43")
__all__ = ["server"]

FORM = "application/x-www-form-urlencoded"
CHROMIUM = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'
R4_EXAMPLES = Path(__file__).parent / "fixtures" / "r4"


def _refused(r: Any, expression: str, words: str) -> None:
    assert r.status_code == 400, (r.status_code, r.text[:400])
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    first = body["issue"][0]
    assert first["expression"] == [expression] and first["code"] == "invalid", first
    assert words in first["diagnostics"], first


# --- (1) a control character in a FHIR string ----------------------------------------------------------------------


@pytest.mark.parametrize(("family", "shown"), [("a\u0000b", "U+0000 (at 2)"), ("\u001b[2J王", "U+001B (at 1)"),
                                               ("王\u0007", "U+0007 (at 2)"), ("王\u000b明", "U+000B (at 2)"),
                                               ("王\u001f", "U+001F (at 2)")],
                         ids=["nul", "esc", "bel", "vt", "us"])
def test_a_control_character_in_a_clients_string_is_refused_naming_it(both: tuple[Engine, TestClient], family: str,
                                                                      shown: str) -> None:
    """R4 datatypes#string: no code point below 32 but TAB, LF, CR -- FHIR's XML form cannot hold one. Had been
    stored 201 (http42 LOW); now create, update and a transaction's entry are each a 400 naming the element."""
    _, http = both
    patient = {"resourceType": "Patient", "name": [{"family": family}]}
    _refused(http.post("/fhir/Patient", json=patient), "Patient.name[0].family", shown)
    _refused(http.put("/fhir/Patient/h43-ctl", json={**patient, "id": "h43-ctl"}), "Patient.name[0].family", shown)
    assert http.get("/fhir/Patient/h43-ctl").status_code == 404
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6f1c1f0e-43a1-4b43-9c43-000000000043", "resource": patient,
         "request": {"method": "POST", "url": "Patient"}}]}
    r = http.post("/fhir", json=bundle)
    assert r.status_code == 400, (r.status_code, r.text[:400])
    assert shown in r.text


@pytest.mark.parametrize(("element", "value"), [("gender", "ma\u0000le"), ("birthDate", "1980\u0000")])
def test_a_control_character_in_a_code_or_date_is_refused(both: tuple[Engine, TestClient], element: str,
                                                          value: str) -> None:
    """Guard: the types whose own rule admits no control character (an enum, a date) were refused before (422) and
    stay so; only the string-valued primitives' rule changed."""
    _, http = both
    r = http.post("/fhir/Patient", json={"resourceType": "Patient", element: value})
    assert r.status_code == 422 and r.json()["issue"][0]["expression"] == [f"Patient.{element}"], r.text[:300]


@pytest.mark.parametrize(("body", "where"), [
    ({"identifier": [{"system": "urn:x\u0000", "value": "1"}]}, "Patient.identifier[0].system"),
    ({"maritalStatus": {"coding": [{"system": "urn:x", "code": "A\u0001"}]}}, "Patient.maritalStatus.coding[0].code"),
    ({"generalPractitioner": [{"reference": "https://other.example/fhir/a\u0000b"}]},
     "Patient.generalPractitioner[0].reference"),
], ids=["uri", "code", "absolute-reference"])
def test_a_control_character_in_a_uri_code_or_reference_is_refused(both: tuple[Engine, TestClient],
                                                                   body: dict[str, Any], where: str) -> None:
    """The other string-valued primitives whose patterns admitted a control character (an absolute reference's URL
    branch among them) -- ``https://other.example/fhir/a<NUL>b`` had been stored as a reference."""
    _, http = both
    _refused(http.post("/fhir/Patient", json={"resourceType": "Patient", **body}), where, "control character")


def test_tab_and_line_breaks_are_kept_as_sent(both: tuple[Engine, TestClient]) -> None:
    """Guard: TAB, LF and CR are a string's own characters -- stored and read back exactly."""
    _, http = both
    text = "王\t小明\r\n住址：\n阜宁县"
    r = http.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"text": text}]})
    assert r.status_code == 201, r.text[:300]
    assert http.get(f"/fhir/Patient/{r.json()['id']}").json()["name"][0]["text"] == text


@pytest.mark.parametrize(("number", "escape", "kept"), [("H43X00", "\\X00\\", "\\X00\\"),
                                                     ("H43X1B", "\\X1B\\", "\\X1B\\"), ("H43X09", "\\X09\\", "\t")],
                         ids=["nul", "esc", "tab"])
def test_hl7s_escaped_control_character_is_kept_as_the_escape_sent(both: tuple[Engine, TestClient], number: str,
                                                                    escape: str, kept: str) -> None:
    """HL7's ``\\Xhh\\`` may spell any byte. The converter (``escapes._hex_text``) keeps a control character's escape
    as the text sent -- the FHIR string rule cannot refuse what a hospital sent, and need not: the stored name holds
    the six characters ``\\X00\\``, read back exactly, the message AA. A TAB is a string's own character: decoded."""
    _, http = both
    patient = registered(http, number, f"h43-{number}", f"王{escape}明^", "19800101", "M")
    assert patient["name"][0]["family"] == f"王{kept}明", patient["name"]


# --- (2) a narrative that is not R4's ------------------------------------------------------------------------------


NOT_NARRATIVES = {
    "script": (f"<div {XHTML}><p>王小明</p><script>fetch('/x?c='+document.cookie)</script></div>", "<script>"),
    "onclick": (f'<div {XHTML}><p onclick="alert(1)">王小明</p></div>', "onclick"),
    "onerror-img": (f'<div {XHTML}><img src="x.png" onerror="alert(1)"/></div>', "onerror"),
    "javascript-href": (f'<div {XHTML}><a href="javascript:alert(1)">看</a></div>', "javascript:"),
    "javascript-escaped": (f'<div {XHTML}><a href=" Java&#x09;Script&#58;alert(1)">看</a></div>', "javascript:"),
    "data-html": (f'<div {XHTML}><a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">看</a></div>',
                  "data:"),
    "iframe": (f'<div {XHTML}><iframe src="https://evil.example/"/></div>', "<iframe>"),
    "form": (f'<div {XHTML}><form action="https://evil.example/"><input name="pw"/></form></div>', "<form>"),
    "style-element": (f"<div {XHTML}><style>body{{display:none}}</style></div>", "<style>"),
    "style-url": (f'<div {XHTML}><p style="background:url(https://evil.example/t.png)">x</p></div>', "url("),
    "svg": (f'<div {XHTML}><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg></div>',
            "<svg>"),
    "xlink": (f'<div {XHTML} xmlns:xl="http://www.w3.org/1999/xlink"><a xl:href="javascript:alert(1)">x</a></div>',
              "href"),
    "no-namespace": ("<div><p>王小明</p></div>", "no namespace"),
    "doctype": (f'<!DOCTYPE div [<!ENTITY a "aaaa">]><div {XHTML}>&a;</div>', "a DOCTYPE is not allowed"),
    "not-xml": (f"<div {XHTML}><p>王小明<br></p></div>", "well-formed"),
    "stylesheet-pi": (f'<?xml-stylesheet href="https://evil.example/s.css"?><div {XHTML}>x</div>',
                      "processing instruction"),
    "two-roots": (f"<div {XHTML}>a</div><div {XHTML}>b</div>", "well-formed"),
}


@pytest.mark.parametrize("case", list(NOT_NARRATIVES))
def test_a_narrative_with_active_content_is_refused_naming_the_div(both: tuple[Engine, TestClient],
                                                                   case: str) -> None:
    """R4 narrative rules (txt-1, narrative.html): basic HTML formatting, no script, form, frame, object or event
    handler, XHTML in its namespace. A stored narrative is served back to every reader that renders it -- had been
    stored 201 (http42 LOW)."""
    _, http = both
    div, words = NOT_NARRATIVES[case]
    _refused(http.post("/fhir/Patient", json={"resourceType": "Patient", "text": {"status": "generated", "div": div}}),
             "Patient.text.div", words)


def test_a_contained_resources_narrative_is_named_where_it_is(both: tuple[Engine, TestClient]) -> None:
    _, http = both
    inner = {"resourceType": "Practitioner", "id": "p1", "text": {
        "status": "generated", "div": f'<div {XHTML}><a href="vbscript:msgbox(1)">x</a></div>'}}
    r = http.post("/fhir/Patient", json={"resourceType": "Patient", "contained": [inner],
                                         "generalPractitioner": [{"reference": "#p1"}]})
    _refused(r, "Patient.contained[0].text.div", "vbscript:")


@pytest.mark.parametrize("example", ["Patient-f001", "Patient-example", "Observation-bmi", "Specimen-101"])
def test_the_r4_examples_narratives_are_kept_as_sent(both: tuple[Engine, TestClient], example: str) -> None:
    """Guard: HL7's own R4 examples (tables, links, ``&#160;``, ``<b>``) are narratives as R4 means them -- stored
    201 and read back exactly."""
    _, http = both
    div = json.loads((R4_EXAMPLES / f"{example}.json").read_text(encoding="utf-8"))["text"]["div"]
    r = http.post("/fhir/Patient", json={"resourceType": "Patient", "text": {"status": "generated", "div": div}})
    assert r.status_code == 201, r.text[:400]
    assert http.get(f"/fhir/Patient/{r.json()['id']}").json()["text"]["div"] == div


@pytest.mark.parametrize("div", [
    f'<div {XHTML}><p>王小明 <a href="https://example.org/a?b=1#c">链接</a> <a href="#f">脚注</a></p></div>',
    f'<div {XHTML} xml:lang="zh-CN" lang="zh-CN"><table border="1"><tbody><tr><td colspan="2">结果</td></tr>'
    "</tbody></table></div>",
    f'<div {XHTML}><img src="data:image/png;base64,iVBORw0KGgo=" alt="图"/><p style="color:red">红</p></div>',
    f'<div {XHTML}><a href="mailto:a@example.org">邮件</a><a href="tel:+86-515-1">电话</a><!-- 注释 --></div>',
], ids=["links", "table-lang", "data-image-style", "mailto-tel-comment"])
def test_plain_narratives_are_kept(both: tuple[Engine, TestClient], div: str) -> None:
    _, http = both
    r = http.post("/fhir/Patient", json={"resourceType": "Patient", "text": {"status": "generated", "div": div}})
    assert r.status_code == 201, r.text[:400]


# --- (3) a sign-in form not in UTF-8 -------------------------------------------------------------------------------


def _staff_form(http: TestClient, password: bytes, code: str) -> Any:
    page = http.get("/ui/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    body = b"name=wang.li&password=" + password + f"&code={code}&csrf={csrf}&next=/ui/duplicates".encode()
    return http.post("/ui/signin", content=body, headers={"Content-Type": FORM}, follow_redirects=False)


def test_a_staff_sign_in_form_not_in_utf8_is_a_page_saying_so_not_a_wrong_password(
        engine: Engine, settings: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``password=%FC`` (Latin-1's ü) had been read as U+FFFD, answered "wrong password" and counted toward the
    account's throttle (http42 LOW): after ACCOUNT_FREE of them the holder's right password was a 429. Now each is a
    400 page in Chinese naming the field; nothing is counted, and the holder signs in."""
    secret = add_staff(monkeypatch, capsys, settings, "wang.li", "auditor")
    with TestClient(create_app(engine), client=("198.51.100.43", 40000)) as http:
        for password in [b"%FC", b"ginkgo%FCriver", b"50%", b"\xfc"] * (ACCOUNT_FREE // 4 + 1):
            r = _staff_form(http, password, rfc6238(secret, engine.staff.clock()))
            assert r.status_code == 400, (r.status_code, r.text[:300])
            assert "登录表单无法读取" in r.text and "“密码”" in r.text and "not in UTF-8" in r.text, r.text[-900:]
            assert r.headers["content-type"].startswith("text/html") and SESSION_COOKIE not in r.headers.get(
                "set-cookie", "")
        done = _staff_form(http, PASSWORD.encode(), rfc6238(secret, engine.staff.clock()))
        assert done.status_code == 303, (done.status_code, done.text[:300])


def test_a_residents_sign_in_form_not_in_utf8_is_a_page_saying_so(engine: Engine) -> None:
    """The resident's ID-number step: ``national_id=%FC`` had been read as U+FFFD and answered "enter a valid ID
    number"; now the page says the form cannot be read, naming the field in Chinese."""
    with TestClient(create_app(engine)) as http:
        page = http.get("/auth/authorize", params={
            "response_type": "code", "client_id": "huren-me", "redirect_uri": engine.settings.public_base_url + "/ui/me/",
            "state": "st", "scope": "launch/patient openid fhirUser patient/*.rs", "aud": engine.settings.fhir_base_url,
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"})
        rid = re.search(r'name="request_id" value="([^"]+)"', page.text)
        assert rid, page.text[:600]
        r = http.post("/auth/authorize/login", content=f"request_id={rid.group(1)}&national_id=3209%FC".encode(),
                      headers={"Content-Type": FORM})
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/html"), r.text[:300]
        assert "登录表单无法读取" in r.text and "“身份证号”" in r.text, r.text[-900:]
        # the request is still pending: the number typed again is read as ever
        again = http.post("/auth/authorize/login", data={"request_id": rid.group(1),
                                                          "national_id": _nid("32092319620303312")})
        assert again.status_code == 200, again.text[:300]


# --- (4) two Host headers, (6) Vary on a program's 400 -- real uvicorn -----------------------------------------------


def _raw(server: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """``request`` written as is to the server's socket; (status, headers lower-cased, body)."""
    parts = urlsplit(server)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = (headers.get(name.strip().lower(), "") + "," + value.strip()).strip(",")
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("path", ["/fhir/metadata", "/ui/signin", "/"])
def test_two_host_headers_or_none_are_refused(server: str, path: str) -> None:
    """RFC 9112 §3.2: more than one Host header field line, or none in HTTP/1.1, is a 400. uvicorn passes them on;
    huren had served them."""
    status, headers, body = _raw(server, (f"GET {path} HTTP/1.1\r\nHost: huren.example\r\nHost: evil.example\r\n"
                                                  "Accept: application/json\r\nConnection: close\r\n\r\n").encode())
    assert status == 400, (status, body[:300])
    issue = json.loads(body)["issue"][0]
    assert issue["expression"] == ["Host"] and "2 Host headers" in issue["diagnostics"], issue
    # HTTP/1.1 with no Host at all: the same rule (uvicorn's httptools reader served it); HTTP/1.0 may have none
    status, headers, body = _raw(server, f"GET {path} HTTP/1.1\r\nAccept: application/json\r\nConnection: close\r\n"
                                         "\r\n".encode())
    assert status == 400 and "no Host header" in json.loads(body)["issue"][0]["diagnostics"], (status, body[:300])
    status, _, body = _raw(server, f"GET {path} HTTP/1.0\r\nAccept: application/json\r\n\r\n".encode())
    assert status != 400, (status, body[:300])
    status, _, body = _raw(server, (f"GET {path} HTTP/1.1\r\nHost: huren.example\r\n"
                                            "Accept: application/json\r\nConnection: close\r\n\r\n").encode())
    assert status in (200, 303, 404) and status != 400, (status, body[:300])  # guard: one Host is served


def test_a_programs_unreadable_address_outside_fhir_says_vary_accept(server: str) -> None:
    """The same address answers a browser the Chinese page and a program the OperationOutcome: both must say
    ``Vary: Accept`` for a cache between (rv42c LOW 4: the program's had none). ``/fhir`` answers JSON whatever is
    asked, so says no Vary (guard)."""
    for path in ("/reports/indicators?month=%FC", "/login?next=%FC", "/ui/duplicates/%FC"):
        for accept in ("application/json", "*/*", CHROMIUM):
            status, headers, body = _raw(server, (f"GET {path} HTTP/1.1\r\nHost: h\r\nAccept: {accept}\r\n"
                                                          "Connection: close\r\n\r\n").encode())
            assert status == 400 and "accept" in headers.get("vary", "").lower(), (path, accept, status, headers)
    status, headers, _ = _raw(server, b"GET /fhir/Patient?family=%FC HTTP/1.1\r\nHost: h\r\n"
                                              b"Accept: application/json\r\nConnection: close\r\n\r\n")
    assert status == 400 and "accept" not in headers.get("vary", "").lower(), headers


# --- (5) a CDS draft order not of its R4 type ----------------------------------------------------------------------


def _draft(**elements: Any) -> dict[str, Any]:
    return {"resource": {"resourceType": "ServiceRequest", "id": "d1", "status": "draft", "intent": "order",
                         **elements}}


@pytest.mark.parametrize(("service", "hook"), [("huren-recognition-select", "order-select"),
                                               ("huren-recognition-sign", "order-sign")])
@pytest.mark.parametrize(("draft", "at"), [
    (_draft(code="CBC"), "code"),
    (_draft(code={"coding": "http://loinc.org|58410-2"}), "code.coding"),
    (_draft(code={"coding": [{"system": "http://loinc.org", "code": "58410-2"}]}, requester="Practitioner/1"),
     "requester"),
    (_draft(code={"coding": [{"system": "http://loinc.org", "code": 58410}]}), "code.coding[0].code"),
    (_draft(code={"text": "血常规"}, authoredOn="yesterday"), "authoredOn"),
], ids=["code-string", "coding-string", "requester-string", "code-number", "authored-junk"])
def test_a_draft_order_not_of_its_r4_type_is_refused_naming_the_element(both: tuple[Engine, TestClient],
                                                                         service: str, hook: str,
                                                                         draft: dict[str, Any], at: str) -> None:
    """rv42c LOW 3: the recognition facts read such a draft as no order and the hook answered ``{"cards": []}`` under
    a 200 -- the EHR's all-clear for an order never checked. CDS Hooks: a malformed request is a 400."""
    _, http = both
    r = http.post(f"/cds-services/{service}", json=_hook(hook, [_draft(code={"text": "x"}), draft]))
    assert r.status_code == 400, (r.status_code, r.text[:300])
    issue = r.json()["issue"][0]
    assert issue["expression"] == [f"context.draftOrders.entry[1].resource.{at}"], issue


def test_a_draft_order_of_an_item_huren_does_not_know_is_still_no_card(both: tuple[Engine, TestClient]) -> None:
    """Guard: a draft of its R4 type naming no item huren recognises is nothing to recognise -- 200, no card."""
    _, http = both
    draft = _draft(code={"coding": [{"system": "http://loinc.org", "code": "0000-0"}], "text": "未知项目"})
    for service, hook in (("huren-recognition-select", "order-select"), ("huren-recognition-sign", "order-sign")):
        r = http.post(f"/cds-services/{service}", json=_hook(hook, [draft]))
        assert r.status_code == 200 and r.json() == {"cards": []}, r.text[:300]
