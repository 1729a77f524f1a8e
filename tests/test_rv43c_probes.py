"""rv43c: probes of http43 (control characters, R4 narrative rules) and trim43 (merge rules shared a process).

Real bytes through the real path: FastAPI's TestClient into the real store on both backends (``module_eng``), real
HL7 v2 over ``POST /hl7v2``. A probe that shows a defect is a strict xfail naming its severity.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import post
from tests.identity39_calls import engine_and_client, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import adt

both = engine_and_client("rv43c")
XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'


@contextlib.contextmanager
def _written_before(engine: Engine) -> Iterator[None]:
    """Writes as they were stored before round 43's rules (no validator: what a store of round 42 may hold)."""
    validator, engine.repository.validator = engine.repository.validator, None
    try:
        yield
    finally:
        engine.repository.validator = validator


# --- false acceptances: a control character the code/base64 patterns still admit -----------------------------------


@pytest.mark.parametrize("control", ["\u000b", "\u000c"], ids=["vt", "ff"])
def test_a_control_character_between_a_codes_words_is_refused(both: tuple[Engine, TestClient], control: str) -> None:
    _, http = both
    ok = {"resourceType": "Patient", "maritalStatus": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M M"}]}}
    assert http.post("/fhir/Patient", json=ok).status_code == 201  # (a space between a code's words: R4's own)
    bad = {"resourceType": "Patient", "maritalStatus": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": f"M{control}M"}]}}
    r = http.post("/fhir/Patient", json=bad)
    assert r.status_code == 400, (r.status_code, r.text[:300])


def test_a_control_character_in_base64_is_refused(both: tuple[Engine, TestClient]) -> None:
    _, http = both
    photo = {"contentType": "image/png", "data": "iVBORw0KGgo="}
    assert http.post("/fhir/Patient", json={"resourceType": "Patient", "photo": [photo]}).status_code == 201
    r = http.post("/fhir/Patient", json={"resourceType": "Patient",
                                         "photo": [{**photo, "data": "iVBO\u000bRw0KGgo="}]})
    assert r.status_code == 400, (r.status_code, r.text[:300])


# --- false refusals -------------------------------------------------------------------------------------------------


def test_a_chinese_font_named_by_css_escape_is_kept(both: tuple[Engine, TestClient]) -> None:
    _, http = both
    div = f'<div {XHTML}><p style="font-family:&quot;\\5B8B\\4F53&quot;;font-size:10.5pt">王小明，男，45岁</p></div>'
    r = http.post("/fhir/Patient", json={"resourceType": "Patient", "text": {"status": "generated", "div": div}})
    assert r.status_code == 201, (r.status_code, r.text[:300])


REAL_NARRATIVES = {
    "cdata-comment-lang": f'<div {XHTML} xml:lang="zh-CN" lang="zh-CN"><!-- 由HIS生成 --><p><![CDATA[血糖 < 7.0]]></p></div>',
    "table": (f'<div {XHTML}><table border="1" cellpadding="2" summary="检验"><caption>血常规</caption><thead><tr>'
              '<th scope="col">项目</th><th>结果</th></tr></thead><tbody><tr><td colspan="1" style="color:#c00;'
              'font-weight:bold">白细胞</td><td align="right">11.2&#160;×10⁹/L</td></tr></tbody></table></div>'),
    "links-images": (f'<div {XHTML}><a href="#obs1" name="top">结果</a> <a href="Observation/1">观察</a> '
                     '<a href="https://example.org/a?b=1&amp;c=2" title="外链">外</a> '
                     '<img src="data:image/png;base64,iVBORw0KGgo=" alt="签名" width="20"/></div>'),
    "entities-tab-crlf": f'<div {XHTML}>&lt;b&gt; &amp; &quot;x&quot; &#x738B;\t小明\r\n<br/>第二行</div>',
    "pre-space": f'<div {XHTML}><pre xml:space="preserve">  缩进\n  表格</pre></div>',
}


@pytest.mark.parametrize("case", list(REAL_NARRATIVES))
def test_real_world_narratives_are_kept_exactly(both: tuple[Engine, TestClient], case: str) -> None:
    """Guard (what http43's rule must not refuse): comments, CDATA, xml:lang, tables with R4's attributes, fragment
    and relative links, a data: image, entities and character references, TAB/CR/LF -- 201 and read back exactly."""
    _, http = both
    div = REAL_NARRATIVES[case]
    r = http.post("/fhir/Patient", json={"resourceType": "Patient", "text": {"status": "generated", "div": div}})
    assert r.status_code == 201, (r.status_code, r.text[:300])
    assert http.get(f"/fhir/Patient/{r.json()['id']}").json()["text"]["div"] == div


def test_one_bad_entry_refuses_the_whole_transaction_naming_the_entry(both: tuple[Engine, TestClient]) -> None:
    """A transaction whose second entry's narrative holds a script is refused whole, the outcome naming that
    entry's div; the first entry is not written."""
    _, http = both
    good = {"resourceType": "Patient", "identifier": [{"system": "urn:rv43c", "value": "tx-good"}]}
    bad = {"resourceType": "Patient", "text": {"status": "generated",
                                               "div": f"<div {XHTML}><script>alert(1)</script></div>"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0e43c000-0000-4000-8000-000000000001", "resource": good,
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:0e43c000-0000-4000-8000-000000000002", "resource": bad,
         "request": {"method": "POST", "url": "Patient"}}]}
    r = http.post("/fhir", json=bundle)
    assert r.status_code == 400, (r.status_code, r.text[:400])
    issue = r.json()["issue"][0]
    assert "entry[1]" in (issue.get("expression") or [""])[0] and "text.div" in issue["expression"][0], issue
    assert http.get("/fhir/Patient?identifier=urn:rv43c|tx-good").json().get("total", 0) == 0


@pytest.mark.parametrize(("number", "escape", "kept"), [("R43CX0D", "\\X0D\\", "\r"), ("R43CBR", "\\.br\\", "\n"),
                                                     ("R43CX0A", "\\X0D0A\\", "\r\n")], ids=["x0d", "br", "crlf"])
def test_hl7_line_escapes_stay_aa_and_stored(both: tuple[Engine, TestClient], number: str, escape: str,
                                            kept: str) -> None:
    """Guard: HL7's CR/line-break escapes decode to characters a FHIR string holds -- still AA, stored as before."""
    _, http = both
    patient = registered(http, number, f"r43c-{number}", f"王{escape}明^", "19800101", "M")
    assert patient["name"][0]["family"] == f"王{kept}明", patient["name"]


# --- data written before round 43 -----------------------------------------------------------------------------------


def test_a_stored_resource_with_a_control_character_is_read_and_mended(both: tuple[Engine, TestClient]) -> None:
    """Guard: a Patient stored before round 43 holding a NUL can still be read, $everything'd, and PUT mended."""
    engine, http = both
    with _written_before(engine):
        r = http.put("/fhir/Patient/r43c-nul", json={"resourceType": "Patient", "id": "r43c-nul",
                                                     "name": [{"family": "王\u0000明"}]})
    assert r.status_code == 201, r.text[:300]
    assert http.get("/fhir/Patient/r43c-nul").json()["name"][0]["family"] == "王\u0000明"
    assert http.get("/fhir/Patient/r43c-nul/$everything").status_code == 200
    r = http.put("/fhir/Patient/r43c-nul", json={"resourceType": "Patient", "id": "r43c-nul",
                                                 "name": [{"family": "王明"}]})
    assert r.status_code == 200, r.text[:300]


def test_an_adt_over_a_patient_with_a_narrative_stored_before_is_taken(both: tuple[Engine, TestClient]) -> None:
    """Guard (http43's MED, measured): a hospital's ADT updating a Patient whose narrative was stored before round 43
    (a <div> without xmlns, accepted then) is still AA, its new name stored, the client's narrative kept as it was --
    the merge does not refuse the later message for what an earlier writer stored."""
    engine, http = both
    patient = registered(http, "R43CNARR", "r43c-n1", "王^小明", "19800101", "M")
    pid = patient["id"]
    with _written_before(engine):
        r = http.put(f"/fhir/Patient/{pid}", json={**patient, "text": {"status": "generated",
                                                                       "div": "<div>王小明，男</div>"}})
    assert r.status_code == 200, r.text[:300]

    ack = post(http, adt("r43c-n2", "R43CNARR^^^FNXRMYY^MR", "王^大明", "19800101", "M"))
    assert ack_code_of(ack) == "AA", ack
    after = http.get(f"/fhir/Patient/{pid}").json()
    assert after["name"][0]["given"] == ["大明"], after["name"]
    assert after["text"]["div"] == "<div>王小明，男</div>", after.get("text")


# --- CDS draft orders: a draft huren only reads ---------------------------------------------------------------------


def _hook(draft: dict[str, Any]) -> dict[str, Any]:
    return {"hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b243", "hook": "order-sign",
            "context": {"userId": "Practitioner/1", "patientId": "p-rv43c",
                        "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                        "entry": [{"resource": {"resourceType": "ServiceRequest", "id": "d1",
                                                                "status": "draft", "intent": "order",
                                                                "code": {"text": "血常规"}, **draft}}]}}}


@pytest.mark.parametrize("draft", [
    {"text": {"status": "generated", "div": "<div>血常规 一次</div>"}},
    {"id": "draft_order_1"},
    {"authoredOn": "2026-12-05T10:00:00"},
], ids=["narrative-without-xmlns", "id-underscore", "authored-no-zone"])
def test_a_draft_order_is_refused_only_for_what_huren_reads(both: tuple[Engine, TestClient],
                                                            draft: dict[str, Any]) -> None:
    _, http = both
    r = http.post("/cds-services/huren-recognition-sign", json=_hook(draft))
    assert r.status_code == 200, (r.status_code, r.text[:300])
