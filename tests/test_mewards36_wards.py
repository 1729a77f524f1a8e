"""mewards36: ``GET /ui/me/wards`` names a ward only by the whole key the converter made it with, notes
its search in the audit trail as ``/fhir`` does, and walks the search's own pages (rv36e's two MEDs and
its LOW 1).

Real bytes through the real path: HL7 v2 by ``POST /hl7v2``, FHIR writes and reads, the page's JSON and
the who-looked list through FastAPI's TestClient, the module's real store on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import engine.api.ui_me_wards as ui_me_wards
from engine.api.app import create_app
from engine.engine import Engine
from engine.repository.ids import deterministic_id
from tests.module_store import module_eng  # noqa: F401
from tests.test_resident_record_ui import hl7, msh, pid
from tests.test_resident_ui import nid

ER7 = "x-application/hl7-v2+er7"
XU = nid("32092319720202004")
CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
PHYSICAL = "http://terminology.hl7.org/CodeSystem/location-physical-type"


def _visit(patient: str, control: str, number: str, pl: str, inst: str, when: str) -> bytes:
    """An admission (ADT^A01) of visit ``number`` at ``pl`` (PV1-3), sent by ``inst``."""
    pv1 = ["PV1", "1", "I", pl, "R"] + [""] * 14 + [f"{number}^^^{inst}^VN"] + [""] * 24 + [when]
    return hl7(msh("HIS", inst, when, "ADT^A01^ADT_A01", control), f"EVN|A01|{when}", patient, "|".join(pv1))


def _system(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("his-mewards36", "system/*.cruds")}


# her visits: number -> (sender, PV1-3). The county hospital (FNXRMYY) registers two of them at the
# traditional-medicine hospital's (FNZYY) wards, one named by PL-9, one by code alone; FNZYY's own feed
# sends its own ward with PL-4 empty; the county hospital's own NEI (心内科病区 in its table) is sent
# with PL-4 empty too.
VISITS = {
    "MW36-V1": ("FNXRMYY", "NEI^5^1^FNZYY^^^^^中医院脑病科病区"),
    "MW36-V2": ("FNXRMYY", "ZXK^6^2^FNZYY"),
    "MW36-V3": ("FNZYY", "NBK^8^2^^^^^^中医院脑病科病区"),
    "MW36-V4": ("FNXRMYY", "NEI^302^01^^^^^^心内科一病区"),
}


@pytest.fixture(scope="module")
def fed(module_eng: Engine) -> Iterator[tuple[Engine, TestClient]]:  # noqa: F811
    mrn = {"FNXRMYY": "ZY2026M36001", "FNZYY": "ZZ2026M36001"}
    messages = [
        # the county hospital's own ZXK and NEI wards are stored too, named otherwise, so a wrong key
        # would find a name
        _visit(pid(nid("32092319690101005"), "ZY2026M36099", "FNXRMYY", "蒋^平", "19690101", "M"), "MW36-0",
               "MW36-V0", "ZXK^8^3^^^^^^肿瘤科病区", "FNXRMYY", "20261120080000"),
        *(_visit(pid(XU, mrn[inst], inst, "许^芳", "19720202", "F", "13700036M01"), f"MW36-{i}", number, pl, inst,
                 f"202611{21 + i}080000") for i, (number, (inst, pl)) in enumerate(VISITS.items(), 1)),
    ]
    with TestClient(create_app(module_eng)) as http:
        for message in messages:
            r = http.post("/hl7v2", content=message, headers={"Content-Type": ER7, **_system(module_eng)})
            assert r.status_code == 200 and b"MSA|AA" in r.content, r.content
        yield module_eng, http


def _her(engine: Engine, http: TestClient) -> tuple[str, dict[str, str]]:
    """Her county-hospital Patient id and a resident's token for her."""
    [patient] = [e["resource"] for e in http.get("/fhir/Patient", params={"identifier": "ZY2026M36001"},
                                                  headers=_system(engine)).json()["entry"]]
    token, _ = engine.auth.issue_token(subject="person-" + patient["id"], kind="patient", client_id="huren-me",
                                       scopes=["patient/*.rs"], patient=patient["id"])
    return patient["id"], {"Authorization": "Bearer " + token}


def _encounters(http: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    found = http.get("/fhir/Encounter", params={"_count": "200"}, headers=headers).json().get("entry") or []
    return [e["resource"] for e in found]


def _number(enc: dict[str, Any]) -> str:
    return next((i["value"] for i in enc.get("identifier") or () if i.get("value", "").startswith("MW36-")), "")


def test_a_ward_is_named_only_by_the_whole_key_it_was_made_with(fed: tuple[Engine, TestClient]) -> None:
    """A ward at another member's facility (PL-4), sent by PL-9 or by code alone, is never named as the
    sender's ward of that code (心内科病区, 肿瘤科病区): it is the member's ward (wards37; it was left
    out); the member's own feed's ward and the sender's own ward (PL-4 empty) are named by the one
    rule: its current name, the table's name over PL-9."""
    engine, http = fed
    _, her = _her(engine, http)
    places = {_number(e): e["location"][0]["location"] for e in _encounters(http, her) if _number(e)}
    assert set(places) == set(VISITS), places
    r = http.get("/ui/me/wards", headers=her)
    assert r.status_code == 200, r.text
    wards = r.json()["wards"]
    # wards37: the two at the member's facility are named by the member's rule -- (FNZYY, NEI), (FNZYY,
    # ZXK): no table and no ward of FNZYY's own feed name them, so the record's PL-9 name, and the code
    # said to be one -- never the county hospital's own NEI (心内科病区) or ZXK (肿瘤科病区)
    assert wards == {
        places["MW36-V1"]["reference"]: {"name": "中医院脑病科病区", "code": "NEI", "rest": "5房 1床", "at": "阜宁县中医院"},
        places["MW36-V2"]["reference"]: {"name": "", "code": "ZXK", "rest": "6房 2床", "at": "阜宁县中医院"},
        places["MW36-V3"]["reference"]: {"name": "中医院脑病科病区", "code": "NBK", "rest": "8房 2床"},
        places["MW36-V4"]["reference"]: {"name": "心内科病区", "code": "NEI", "rest": "302房 01床"},
    }, wards
    assert places["MW36-V1"]["display"] == "中医院脑病科病区 5房 1床", places
    assert places["MW36-V2"]["display"] == "ZXK 6房 2床", places


def test_a_ward_not_made_by_the_converter_is_not_named_by_a_key_it_claims(fed: tuple[Engine, TestClient]) -> None:
    """A ward Location a FHIR client wrote, claiming the county hospital as its manager and NEI as its
    code, is not the ward the converter keys (FNXRMYY, NEI): its id is not that key's, so it is left
    out rather than named 心内科病区."""
    engine, http = fed
    patient, her = _her(engine, http)
    system = {**_system(engine), "Content-Type": "application/fhir+json"}
    org = deterministic_id("FNXRMYY", "Organization", "FNXRMYY")
    assert http.get(f"/fhir/Organization/{org}", headers=system).status_code == 200
    ward = {"resourceType": "Location", "id": "mw36-client-ward", "status": "active", "name": "客户端病区",
            "alias": ["NEI"], "managingOrganization": {"reference": f"Organization/{org}"},
            "physicalType": {"coding": [{"system": PHYSICAL, "code": "wa"}]}}
    assert http.put("/fhir/Location/mw36-client-ward", json=ward, headers=system).status_code in (200, 201)
    enc = {"resourceType": "Encounter", "status": "finished", "class": {"system":
           "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
           "subject": {"reference": f"Patient/{patient}"},
           "location": [{"location": {"reference": "Location/mw36-client-ward", "display": "客户端病区"}}]}
    made = http.post("/fhir/Encounter", json=enc, headers=system)
    assert made.status_code == 201, made.text
    wards = http.get("/ui/me/wards", headers=her).json()["wards"]
    assert "Location/mw36-client-ward" not in wards, wards
    assert {w["code"] for w in wards.values()} == {"NBK", "NEI", "ZXK"} and len(wards) == 4, wards


# ---- the audit trail ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def son(module_eng: Engine) -> Iterator[tuple[Engine, TestClient, str, dict[str, str], dict[str, str]]]:  # noqa: F811
    """赵桂兰's son acting for her with a desk grant (R and V withheld from him): the engine, a client,
    her Patient id, her own token's headers and his."""
    from tests.test_prb22_own_entries import son_acting_for_zhao
    with TestClient(create_app(module_eng)) as http:
        me, his = son_acting_for_zhao(module_eng, http)
        zhao = me.removeprefix("Patient/")
        token, _ = module_eng.auth.issue_token(subject="person-" + zhao, kind="patient", client_id="huren-me",
                                               scopes=["patient/*.rs"], patient=zhao)
        yield module_eng, http, zhao, {"Authorization": "Bearer " + token}, his


def _query(entity: dict[str, Any]) -> str:
    """An AuditEvent entity's query (base64Binary in R4), as text."""
    import base64
    q = entity.get("query")
    return base64.b64decode(q).decode() if isinstance(q, str) else ""


def _who(http: TestClient, headers: dict[str, str], role: str) -> list[dict[str, Any]]:
    r = http.get("/ui/me/who-looked", headers=headers)
    assert r.status_code == 200, r.text
    return [e for e in r.json()["entries"] if e["role"] == role]


def test_the_wards_read_is_in_her_who_looked_hers_and_her_sons(son: tuple[Any, ...]) -> None:
    """Her son's read of her visits' wards is one family entry in her who-looked list, a search of
    her Encounters, named by the name she gave him; her own read is
    her own entry. Before, neither left anything naming her (rv36e MED 2)."""
    engine, http, zhao, her, his = son
    family, own = _who(http, her, "family"), _who(http, her, "resident")
    assert http.get("/ui/me/wards", headers=his).json()["wards"]
    after = _who(http, her, "family")
    assert len(after) == len(family) + 1, after
    new = after[0]
    assert new["what"] == "search" and new["who_name"] == "孙伟（子女）", new
    assert "Encounter" in new["resource_types"], new
    assert http.get("/ui/me/wards", headers=her).json()["wards"]
    mine = _who(http, her, "resident")
    assert len(mine) >= len(own) + 1 and mine[0]["what"] == "search", mine
    assert "Encounter" in mine[0]["resource_types"], mine
    # the records themselves: each a search with the route's query, naming her as the patient; the
    # son's says he acted for her, hers that she is the patient
    engine.audit.drain()
    ours = [e for e in engine.audit.events()
            if any(_query(x) == "Encounter?_count=100&_offset=0" for x in e.get("entity") or ())]
    assert len(ours) >= 2, ours
    for record, says, who in zip(ours[-2:], ("acting for this patient", "this patient"), (his, her), strict=True):
        assert record["subtype"][0]["code"] == "search", record
        # the patients named: those whose visits were read (her records at each hospital), each so said
        patients = {x["what"]["reference"]: x for x in record["entity"] if x["role"]["code"] == "1"}
        visits = _encounters(http, who)
        assert set(patients) == {e["subject"]["reference"] for e in visits}, (record, visits)
        assert all([d["valueString"] for d in x["detail"] if d["type"] == "requestor"] == [says]
                   for x in patients.values()), record
        read = {x["what"]["reference"].split("/_history/")[0] for x in record["entity"] if "what" in x}
        assert {f"Encounter/{e['id']}" for e in visits} <= read, record


# ---- paging --------------------------------------------------------------------------------------------

def test_the_walk_follows_the_searchs_pages_past_a_page_she_withholds_from_him(
        son: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of one visit each, over visits of hers labelled R (withheld from her son) stored between
    her earlier visits and one her hospital sent after them: every visit he may read is named, the
    same answer as one page gives, and the withheld ones are not.

    rv36e LOW 1 feared a page whose visits are all withheld ending the walk (it stopped at the first
    empty page). The store pages over what the caller is shown (here a total of 4, the 3 R visits not
    counted), so no such page came and the old walk passed this too; the walk now follows the search's
    own paging (``has_next``, ``offset + count``), which stays right should a page ever be thinned
    after the query. This test guards the walk over many pages."""
    from tests.test_resident_record_ui import ZHAO
    engine, http, zhao, her, his = son
    system = {**_system(engine), "Content-Type": "application/fhir+json"}
    ward = next(loc["location"]["reference"] for e in _encounters(http, her) for loc in e.get("location") or ())
    for n in range(3):  # withheld visits of hers, stored after her earlier ones
        enc = {"resourceType": "Encounter", "status": "finished", "meta": {"security": [{"system": CONF, "code": "R"}]},
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "identifier": [{"system": "urn:mewards36", "value": f"R{n}"}],
               "subject": {"reference": f"Patient/{zhao}"}, "location": [{"location": {"reference": ward}}]}
        assert http.post("/fhir/Encounter", json=enc, headers=system).status_code == 201
    # then a visit of hers the county hospital sends, at a ward of its own, stored after them
    later = _visit(pid(ZHAO, "ZY2026000301", "FNXRMYY", "赵^桂兰", "19480305", "F", "13700001234"), "MW36-Z1",
                   "MW36-Z1", "XYK^12^4^^^^^^血液科病区", "FNXRMYY", "20261130080000")
    r = http.post("/hl7v2", content=later, headers={"Content-Type": ER7, **_system(engine)})
    assert b"MSA|AA" in r.content, r.content
    his_visits = _encounters(http, his)
    assert not any(i.get("system") == "urn:mewards36" for e in his_visits for i in e.get("identifier") or ())
    shown = {loc["location"]["reference"] for e in his_visits for loc in e.get("location") or ()}
    [xyk] = [e["location"][0]["location"]["reference"] for e in his_visits if _number(e) == "MW36-Z1"]
    whole = http.get("/ui/me/wards", headers=his).json()["wards"]
    assert whole[xyk] == {"name": "血液科病区", "code": "XYK", "rest": "12房 4床"}, whole
    monkeypatch.setattr(ui_me_wards, "_PAGE", 1)
    paged = http.get("/ui/me/wards", headers=his).json()["wards"]
    assert paged == whole and set(paged) <= shown and len(paged) >= 3, (paged, whole)
