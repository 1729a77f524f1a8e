"""wards37: one reader of "the ward of this place" (``engine.wards``: the walk, the code, the key with its
institution read from the managing Organization's ``urn:huren:institution`` identifier), a ward at another
member's facility named by that member's rule, the resident page's open reference range said as its bound,
and the exports' money said as the pages say it.

Real bytes through the real path: HL7 v2 by ``POST /hl7v2``, FHIR writes by ``/fhir``, ``/ui/me/wards``
through FastAPI's TestClient on the module's real store (both backends); the resident's page in headless
Chromium on a served site; the pages' own money formatter in node beside the exports' words."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.convert.actors import ward_key
from engine.api.app import create_app
from engine.engine import Engine
from engine.recognition.reports import money_words
from engine.repository.ids import deterministic_id
from tests.module_store import module_eng  # noqa: F401
from tests.test_mewards36_wards import _visit
from tests.test_pagesfix31_withdrawn_cards import fed_site, signed_in_phone
from tests.test_resident_record_ui import _http, pid
from tests.test_resident_ui import CHROMIUM, Phone, nid
from tests.test_ui12_phone import outside
from tests.test_ui36_pages import HARNESS, SHARED

ER7 = "x-application/hl7-v2+er7"
PHYSICAL = "http://terminology.hl7.org/CodeSystem/location-physical-type"
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

HE = nid("32092319780303008")  # 何静: her visits, all registered by the county hospital
GU = nid("32092319660606001")  # 顾强: the visits that store the member's own wards and the county's own ZXK
LU = nid("32092319850909002")  # 陆敏: the visits a FHIR client writes
HER_MRN = "ZY2026W37001"

# her visits: number -> PV1-3, each sent by the county hospital (FNXRMYY)
HERS = {
    "W37-V1": "NEI^5^1^FNZYY^^^^^中医院脑病科病区",  # at the traditional-medicine hospital's NEI, with PL-9
    "W37-V2": "ZXK^6^2^FNZYY",                       # at its ZXK, by code alone
    "W37-V3": "NEI^302^01",                          # the county hospital's own NEI (PL-4 empty)
    "W37-V4": "NEI^7^1^WAIYUAN^^^^^外院心内科",       # at a facility no member's code names
    "W37-V5": "KFK^3^1^FNYLWSY",                     # a member's ward nobody names
}


def _messages() -> list[bytes]:
    her = pid(HE, HER_MRN, "FNXRMYY", "何^静", "19780303", "F", "13700037001")
    gu_county = pid(GU, "ZY2026W37099", "FNXRMYY", "顾^强", "19660606", "M")
    gu_member = pid(GU, "ZZ2026W37099", "FNZYY", "顾^强", "19660606", "M")
    return [
        # the traditional-medicine hospital's own feed names its NEI 脑病科病区 and its ZXK 针灸科病区; the
        # county hospital's own ZXK is 肿瘤科病区 (so naming a member's ward by the sender's key would show)
        _visit(gu_member, "W37-0a", "W37-G1", "NEI^1^1^^^^^^脑病科病区", "FNZYY", "20261119080000"),
        _visit(gu_member, "W37-0b", "W37-G2", "ZXK^2^2^^^^^^针灸科病区", "FNZYY", "20261119090000"),
        _visit(gu_county, "W37-0c", "W37-G3", "ZXK^8^3^^^^^^肿瘤科病区", "FNXRMYY", "20261119100000"),
        *(_visit(her, f"W37-{i}", number, pl, "FNXRMYY", f"202611{20 + i}080000")
          for i, (number, pl) in enumerate(HERS.items(), 1)),
    ]


def _system(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("his-wards37", "system/*.cruds")}


@pytest.fixture(scope="module")
def fed(module_eng: Engine) -> Iterator[tuple[Engine, TestClient]]:  # noqa: F811
    lu = pid(LU, "ZY2026W37002", "FNXRMYY", "陆^敏", "19850909", "F", "13700037002")
    with TestClient(create_app(module_eng)) as http:
        for message in [*_messages(), _visit(lu, "W37-9", "W37-L1", "NEI^303^02", "FNXRMYY", "20261125080000")]:
            r = http.post("/hl7v2", content=message, headers={"Content-Type": ER7, **_system(module_eng)})
            assert r.status_code == 200 and b"MSA|AA" in r.content, r.content
        yield module_eng, http


def _resident(engine: Engine, http: TestClient, mrn: str) -> tuple[str, dict[str, str]]:
    [patient] = [e["resource"] for e in http.get("/fhir/Patient", params={"identifier": mrn},
                                                  headers=_system(engine)).json()["entry"]]
    token, _ = engine.auth.issue_token(subject="person-" + patient["id"], kind="patient", client_id="huren-me",
                                       scopes=["patient/*.rs"], patient=patient["id"])
    return patient["id"], {"Authorization": "Bearer " + token}


def _places(http: TestClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Her visits' numbers (else ids) -> their place as /fhir gives it to her."""
    found = http.get("/fhir/Encounter", params={"_count": "50"}, headers=headers).json().get("entry") or []
    return {next((i["value"] for i in e["resource"].get("identifier") or ()), e["resource"]["id"]):
            e["resource"]["location"][0]["location"] for e in found}


def test_a_ward_at_a_members_facility_is_named_by_that_members_rule(fed: tuple[Engine, TestClient]) -> None:
    """The county hospital's record of the traditional-medicine hospital's NEI and ZXK is named as that
    hospital names its own NEI and ZXK now (its feed's 脑病科病区 over the county's PL-9 中医院脑病科病区;
    针灸科病区 for a code sent alone), with that hospital's name (``at``: the visit is the county's) -- never as the county's own NEI (心内科病区) or ZXK (肿瘤科病区); a
    member's ward nobody names is its code; a facility no member's code names is left out (the page
    shows the record's words). Before, every ward at another facility was left out."""
    engine, http = fed
    _, her = _resident(engine, http, HER_MRN)
    places = _places(http, her)
    assert set(places) == set(HERS), places
    r = http.get("/ui/me/wards", headers=her)
    assert r.status_code == 200, r.text
    wards = r.json()["wards"]
    assert {number: wards.get(place["reference"]) for number, place in places.items()} == {
        "W37-V1": {"name": "脑病科病区", "code": "NEI", "rest": "5房 1床", "at": "阜宁县中医院"},
        "W37-V2": {"name": "针灸科病区", "code": "ZXK", "rest": "6房 2床", "at": "阜宁县中医院"},
        "W37-V3": {"name": "心内科病区", "code": "NEI", "rest": "302房 01床"},
        "W37-V4": None,
        "W37-V5": {"name": "", "code": "KFK", "rest": "3房 1床", "at": "阜宁县益林镇中心卫生院"},
    }, wards
    assert places["W37-V4"]["display"] == "外院心内科 7房 1床", places


def test_a_wards_institution_is_read_from_its_organizations_identifier(fed: tuple[Engine, TestClient]) -> None:
    """A FHIR client writes two ward Locations, each at the id the converter would key a ward by: one
    managed by an Organization stored at the village clinic's converter id but without the
    ``urn:huren:institution`` identifier -- it names no institution, and the ward is left out (the
    id of an Organization is not what says whose it is: not named is safe); one managed by an
    Organization of another id whose identifier says FNZYY -- read as the project reads an
    Organization's institution everywhere (the settlement's, the recognition's): named (FNZYY, KFK)."""
    engine, http = fed
    patient, hers = _resident(engine, http, "ZY2026W37002")
    system = {**_system(engine), "Content-Type": "application/fhir+json"}
    village = deterministic_id("FNYLWSY", "Organization", "FNYLWSY")
    orgs = {village: {"resourceType": "Organization", "id": village, "name": "客户端写的卫生室"},
            "w37-org": {"resourceType": "Organization", "id": "w37-org", "name": "客户端写的中医院",
                        "identifier": [{"system": "urn:huren:institution", "value": "FNZYY"}]}}
    wards = {deterministic_id("FNYLWSY", "Location", ward_key("FNYLWSY", "KFK")): village,
             deterministic_id("FNZYY", "Location", ward_key("FNZYY", "KFK")): "w37-org"}
    for oid, org in orgs.items():
        assert http.put(f"/fhir/Organization/{oid}", json=org, headers=system).status_code in (200, 201)
    for lid, oid in wards.items():
        ward = {"resourceType": "Location", "id": lid, "status": "active", "name": "康复科病区", "alias": ["KFK"],
                "managingOrganization": {"reference": f"Organization/{oid}"},
                "physicalType": {"coding": [{"system": PHYSICAL, "code": "wa"}]}}
        assert http.put(f"/fhir/Location/{lid}", json=ward, headers=system).status_code in (200, 201)
        enc = {"resourceType": "Encounter", "status": "finished", "class": {"system":
               "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
               "subject": {"reference": f"Patient/{patient}"}, "serviceProvider": {"reference": f"Organization/{oid}"},
               "location": [{"location": {"reference": f"Location/{lid}", "display": "康复科病区"}}]}
        assert http.post("/fhir/Encounter", json=enc, headers=system).status_code == 201
    answer = http.get("/ui/me/wards", headers=hers).json()["wards"]
    village_ward, member_ward = (f"Location/{lid}" for lid in wards)
    assert village_ward not in answer, answer
    assert answer[member_ward] == {"name": "康复科病区", "code": "KFK", "rest": ""}, answer
    # her HL7 visit's ward is named as before
    assert sorted(w["name"] for w in answer.values()) == ["康复科病区", "心内科病区"], answer


def test_the_exports_say_money_as_the_pages_formatter_does() -> None:
    """The restricted note's amount in a CSV export (``money_words``) and the pages' ``hurenMoney.said``
    (shared/money.js, in node) agree on every amount: to the fen half up on the decimal digits (1.005 ->
    1.01, 2550.255 -> 2,550.26), grouped, 元 for CNY, a code the words do not name after the figure."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not installed")
    cases = [(2550.25, "CNY", "元"), ("5100.5", "CNY", "元"), (1.005, "CNY", "元"), ("2550.255", "CNY", "元"),
             ("999.995", "CNY", "元"), ("-490.00", "CNY", "元"), ("-0.004", "CNY", "元"), (0.125, "CNY", "元"),
             ("12345678901234.567", "CNY", "元"), (20, "CNY", "元"), ("20.10", "USD", "")]
    out = subprocess.run([node, "-e", HARNESS, str(SHARED / "money.js"),
                          json.dumps([[v, None, cur, word] for v, cur, word in cases])],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    pages = [said for _, said in json.loads(out)]
    assert [money_words(v, cur, word or None) for v, cur, word in cases] == pages, pages
    assert pages[3] == "2,550.26 元" and pages[-1] == "20.10 USD", pages


# ---- the resident's page -------------------------------------------------------------------------------

def _observation(record: str, name: str, value: str, unit: str, reference: str) -> bytes:
    """A FHIR client's result (no range text: only its bounds), its numbers as JSON digits."""
    head = json.dumps({"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{record}"},
                       "code": {"text": name}, "performer": [{"display": "FNXRMYY"}],
                       "effectiveDateTime": "2026-11-26T08:00:00+08:00"}, ensure_ascii=False)[:-1]
    return (head + f', "valueQuantity": {{"value": {value}, "unit": "{unit}"}}, "referenceRange": [{reference}]}}').encode()


@pytest.fixture(scope="module")
def phone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phone]:
    her = pid(HE, HER_MRN, "FNXRMYY", "何^静", "19780303", "F", "13700037001")
    for site in fed_site(tmp_path_factory.mktemp("wards37"), her, _messages()):
        [record] = site.identity.patients_for_number(HE)
        site.auth.registry.add("wards37-his", scopes=["system/*.cruds"], kind="system", name="HIS")
        his = site.auth.issue_system_token("wards37-his", "system/*.cruds")
        for body in (_observation(record, "C反应蛋白", "3.2", "mg/L", '{"high": {"value": 5.0, "unit": "mg/L"}}'),
                     _observation(record, "高密度脂蛋白", "1.30", "mmol/L", '{"low": {"value": 1.04, "unit": "mmol/L"}}'),
                     _observation(record, "葡萄糖", "5.2", "mmol/L",
                                  '{"low": {"value": 3.9, "unit": "mmol/L"}, "high": {"value": 6.1, "unit": "mmol/L"}}')):
            status, _, made = _http("POST", site.settings.public_base_url + "/fhir/Observation", his, body)
            assert status == 201, made
        yield from signed_in_phone(site, tmp_path_factory.mktemp("wards37-shots"), HE)


def _cards(phone: Phone, tab: str) -> list[str]:
    return phone.cdp.eval(f"(() => {{ document.querySelector('[data-tab={tab}]').click();"
                          f" return [...document.querySelectorAll('#{tab} article.card')].map(a => a.innerText); }})()")


@needs_chromium
def test_her_page_names_a_members_ward_and_says_an_open_range_as_its_bound(phone: Phone) -> None:
    """On her 390-px phone: the traditional-medicine hospital's wards by its own names, after its name
    (the visit is shown as the county hospital's, which registered it), the county hospital's by its table, a member's code nobody names as the hospital's code, the ward at a
    facility no member names as recorded; a FHIR client's range with a high only reads ≤5.0 mg/L
    (was "–5.0", a minus five), one with a low only ≥1.04 mmol/L, a closed one 3.9–6.1 mmol/L."""
    wards = [line for card in _cards(phone, "visits") for line in card.split("\n") if line.startswith("科室/病区")]
    assert sorted(wards) == sorted(["科室/病区：阜宁县中医院 脑病科病区 5房 1床", "科室/病区：阜宁县中医院 针灸科病区 6房 2床",
                                    "科室/病区：心内科病区 302房 01床", "科室/病区：外院心内科 7房 1床",
                                    "科室/病区：阜宁县益林镇中心卫生院 KFK（院内代码） 3房 1床"]), wards
    assert outside(phone.cdp, {"width": 390}) == []
    phone.shot("wards37-resident-wards-phone")
    phone.click("[data-tab=results]")
    results = phone.text("results")
    assert "参考范围 ≤5.0 mg/L" in results and "参考范围 ≥1.04 mmol/L" in results, results
    assert "参考范围 3.9–6.1 mmol/L" in results and "–5.0" not in results, results
    assert outside(phone.cdp, {"width": 390}) == []
    phone.shot("wards37-resident-ranges-phone")
    phone.click("#lang")
    try:
        phone.cdp.wait("document.documentElement.lang === 'en'")
        english = phone.text("results")
        assert "Normal range ≤5.0 mg/L" in english and "Normal range ≥1.04 mmol/L" in english, english
        phone.shot("wards37-resident-ranges-phone-en")
    finally:
        phone.click("#lang")
        phone.cdp.wait("document.documentElement.lang === 'zh-CN'")


# ---- left: the recognition rate by department (a probe) --------------------------------------------------

def test_an_order_on_a_visit_at_a_members_ward_is_not_counted_in_the_senders_ward_of_that_code(engine: Any) -> None:
    """The county hospital orders a blood count for a patient it registered at the traditional-medicine
    hospital's NEI ward (PV1-3 ``NEI^501^01^FNZYY^^^^^中医院脑病科病区``): the auditors' recognition rate by
    department must not count it in "阜宁县人民医院 心内科病区" (the county's own NEI, by its table) -- the
    reports' form of rv36e MED 1, which the resident page no longer makes (wards37). Found by reading
    ``FactReader._visit_ward`` beside ``engine.wards.department_namer``; the demo month's feed 21 with its
    bed moved."""
    from tests.test_dept33_departments import FEEDS, _feed, _feed_more, _rates

    _feed(engine)
    rates = _rates(engine)
    before = rates["阜宁县人民医院 心内科病区"]["recognisable"]
    order = (next(FEEDS.glob("21_*.hl7")).read_bytes().replace(b"SQ20250324011", b"SQW37P1")
             .replace(b"NEI^301^02^FNXRMYY", "NEI^501^01^FNZYY^^^^^中医院脑病科病区".encode())
             .replace(b"ZY2025000324-20250324", b"ZY2025000324-W37P1"))
    _feed_more(engine, order)
    after = _rates(engine)
    # (the order is counted, in some department)
    assert sum(r["recognisable"] for r in after.values()) == sum(r["recognisable"] for r in rates.values()) + 1, after
    assert after["阜宁县人民医院 心内科病区"]["recognisable"] == before, after
