"""End to end: a later or thinner writer never erases what an earlier one stated.

Real bytes through the real path: FHIR JSON over HTTP (the FastAPI app), HL7 v2 over ``POST /hl7v2``,
the real SQLite store with the patient index and recognition hooks wired as in production.

1. A client's ``Patient.link`` (``seealso`` to a RelatedPerson) survives the patient index, which
   adds its own ``seealso`` to the same person's other record beside it.
2. An HIS order's re-test reason (ORC-16) and order time (ORC-9) survive the LIS result message
   for the same order (same placer/filler numbers, so the same ServiceRequest id), while the
   result's own facts (status, filler number) are applied.
3. A national ID with a valid check character but a birthplace code unknown for the birth year is
   one person across two institutions, and that resident signs in and sees both records.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.identity import nationalid
from engine.settings import Settings
from tests.test_resident_launch import APP, REDIRECT, SCOPE, launch

NNCHN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}
# 阜宁县 (320923) was created in 1983: the code is "unknown" for someone born in 1980, yet the
# check character is right and such numbers are in use
RETIRED_AREA_ID = "320923198001010011"
A, B = "FNXRMYY", "FNZYY"


def bearer(engine: Engine, scopes: str, client: str = "merge-e2e") -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token(client, scopes)}


def post_hl7(http: TestClient, engine: Engine, text: str) -> str:
    headers = {**bearer(engine, "system/MessageHeader.c", "his-gw"), "Content-Type": "x-application/hl7-v2+er7"}
    r = http.post("/hl7v2", content=text.replace("\n", "\r").encode("utf-8"), headers=headers)
    assert r.status_code == 200, r.text
    ack = r.content.decode("utf-8")
    assert "MSA|AA|" in ack, ack
    return ack


# --- 1. Patient.link survives the patient index ---------------------------------------------------

def test_client_patient_link_survives_the_patient_index(engine: Engine, http: TestClient) -> None:
    number = "32092319900101123" + nationalid.check_character("32092319900101123")
    writer = bearer(engine, "system/Patient.cruds system/RelatedPerson.cruds")
    ident = lambda mrn: [{"system": f"urn:huren:mrn:{mrn}", "value": mrn},  # noqa: E731
                         {"system": "urn:oid:2.16.156.10011.1.3", "value": number, "type": NNCHN}]
    base = {"resourceType": "Patient", "name": [{"text": "张三"}], "gender": "male", "birthDate": "1990-01-01"}
    assert http.put("/fhir/Patient/pa", json={**base, "id": "pa", "identifier": ident("A1")},
                    headers=writer).status_code == 201
    mother = {"resourceType": "RelatedPerson", "id": "rp-1", "patient": {"reference": "Patient/pa"},
              "name": [{"text": "张母"}]}
    assert http.put("/fhir/RelatedPerson/rp-1", json=mother, headers=writer).status_code == 201
    theirs = {"other": {"reference": "RelatedPerson/rp-1"}, "type": "seealso"}
    r = http.put("/fhir/Patient/pb", json={**base, "id": "pb", "identifier": ident("B1"), "link": [theirs]},
                 headers=writer)
    assert r.status_code == 201, r.text

    got = http.get("/fhir/Patient/pb", headers=writer).json()
    assert theirs in got["link"]  # what the client stated is there after the index ran
    assert {"other": {"reference": "Patient/pa"}, "type": "seealso"} in got["link"]  # and the index's own link
    assert http.get("/fhir/Patient/pa", headers=writer).json()["link"] == [
        {"other": {"reference": "Patient/pb"}, "type": "seealso"}]
    for version in engine.repository.history("Patient", "pb"):  # no version ever lacked the client's link
        assert theirs in version["link"]

    # the client re-sends its record without the index's link: the index's link stays, the client's goes
    r = http.put("/fhir/Patient/pb", json={**base, "id": "pb", "identifier": ident("B1")}, headers=writer)
    assert r.status_code == 200, r.text
    assert http.get("/fhir/Patient/pb", headers=writer).json()["link"] == [
        {"other": {"reference": "Patient/pa"}, "type": "seealso"}]

    # a client cannot make two records one person by writing a link: refused (422), not dropped
    stranger = {"other": {"reference": "Patient/pz"}, "type": "seealso"}
    r = http.put("/fhir/Patient/pb", json={**base, "id": "pb", "identifier": ident("B1"), "link": [stranger]},
                 headers=writer)
    assert r.status_code == 422, r.text
    assert "patient index" in r.text and "Patient.link" in r.text


# --- 2. the HIS order's reason and time survive the LIS result ------------------------------------

PID_B = "PID|1||32092319850412001X^^^公安部^NNCHN~MZ9^^^FNZYY^MR||王^建国||19850412|M\n"


def his_order(placer: str, when: str, reason: str) -> str:
    return (f"MSH|^~\\&|HIS|{B}|HUREN|FUNING|{when}||ORM^O01^ORM_O01|{B}-ORM-{placer}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\n"
            + PID_B
            + f"ORC|NW|{placer}^HIS|||||||{when}|||D1^医^生||||{reason}\n"
            + f"OBR|1|{placer}^HIS||1020^肝功能八项^L|||{when}\n")


def lis_result(placer: str, when: str, orc9: str = "") -> str:
    return (f"MSH|^~\\&|LIS|{B}|HUREN|FUNING|{when}||ORU^R01^ORU_R01|{B}-ORU-{placer}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\n"
            + PID_B
            + f"ORC|RE|{placer}^HIS|F{placer}^LIS||CM||||{orc9}\n"
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|1020^肝功能八项^L|||{when}|||||||||D1^医^生||||||{when}|||F\n"
            + f"OBX|1|NM|ALT^丙氨酸氨基转移酶^L||35|U/L|9-50|N|||F|||{when}\n")


def _order_by_placer(http: TestClient, engine: Engine, placer: str) -> dict:
    reader = bearer(engine, "system/ServiceRequest.rs", "reader")
    bundle = http.get(f"/fhir/ServiceRequest?identifier={placer}", headers=reader).json()
    [entry] = bundle["entry"]
    return entry["resource"]


def test_his_order_reason_and_time_survive_the_lis_result(engine: Engine, http: TestClient) -> None:
    post_hl7(http, engine, his_order("B-3", "20260314080000", "R01^病情变化^HUREN"))
    ordered = _order_by_placer(http, engine, "B-3")
    assert ordered["status"] == "active"
    reason = ordered["reasonCode"]
    assert any(c.get("code") == "R01" for rc in reason for c in rc.get("coding", []))
    authored = ordered["authoredOn"]

    post_hl7(http, engine, lis_result("B-3", "20260314093000"))  # same order, no ORC-16, no ORC-9
    resulted = _order_by_placer(http, engine, "B-3")
    assert resulted["id"] == ordered["id"]
    assert resulted["reasonCode"] == reason  # what the doctor recorded at order time
    assert resulted["authoredOn"] == authored
    assert resulted["status"] == "completed"  # the result's new facts are applied
    assert {i["value"] for i in resulted["identifier"]} == {"B-3", "FB-3"}  # the filler number is added


def test_a_later_conflicting_order_time_is_refused_with_a_warning(engine: Engine, http: TestClient) -> None:
    post_hl7(http, engine, his_order("B-5", "20260314080000", "R01^病情变化^HUREN"))
    authored = _order_by_placer(http, engine, "B-5")["authoredOn"]
    ack = post_hl7(http, engine, lis_result("B-5", "20260314093000", orc9="20260314090000"))
    # the LIS's own time is not stored, and the ACK says so (never a silent "stored")
    assert "ERR|" in ack and "authoredOn" in ack and "not stored" in ack, ack
    assert _order_by_placer(http, engine, "B-5")["authoredOn"] == authored


# --- 3. one national-ID rule: an unknown birthplace code still links and signs in ----------------

def lab(inst: str, mrn: str, control: str, when: str) -> str:
    return (f"MSH|^~\\&|LIS|{inst}|HUREN|FUNING|{when}||ORU^R01^ORU_R01|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\n"
            + f"PID|1||{RETIRED_AREA_ID}^^^公安部^NNCHN~{mrn}^^^{inst}^MR||赵^一||19800101|M|||||13800000011\n"
            + f"OBR|1|{control}^HIS|F{control}^LIS|GLU^葡萄糖^L|||{when}|||||||||D1^医^生||||||{when}|||F\n"
            + f"OBX|1|NM|GLU^葡萄糖^L||5.6|mmol/L|3.9-6.1|N|||F|||{when}\n")


def test_retired_area_code_links_across_institutions_and_the_resident_sees_both(engine: Engine,
                                                                                 http: TestClient) -> None:
    assert nationalid.check_character(RETIRED_AREA_ID[:17]) == RETIRED_AREA_ID[17]  # a real check character
    checked = nationalid.parse(RETIRED_AREA_ID)
    assert checked.birth_date.isoformat() == "1980-01-01" and checked.gender == "male"
    assert not checked.region_known  # ... for a birth year before the county existed: a warning at most

    ack_a = post_hl7(http, engine, lab(A, "ZY77", "M-A1", "20260310093000"))
    assert "320923" in ack_a  # the ACK warns about the area code, and the message is accepted
    post_hl7(http, engine, lab(B, "MZ77", "M-B1", "20260311093000"))
    patients = engine.identity.patients_for_number(RETIRED_AREA_ID)
    assert len(patients) == 2  # one person across both institutions

    engine.auth.registry.add(APP, scopes=SCOPE.split(), kind="patient-app", redirect_uris=[REDIRECT], public=True)
    tokens = launch(http, engine, RETIRED_AREA_ID)  # the resident signs in with the number, as in the app
    assert tokens["patient"] in patients
    h = {"Authorization": f"Bearer {tokens['access_token']}"}
    bundle = http.get("/fhir/Observation?_count=50", headers=h).json()
    subjects = {e["resource"]["subject"]["reference"].split("/", 1)[1] for e in bundle.get("entry", [])}
    assert subjects == set(patients)  # results from both institutions


def test_a_site_that_refuses_conflicts_gets_an_ae_and_keeps_the_order(settings: Settings, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    shipped = (Path(__file__).resolve().parent.parent / "mappings" / "merge.yaml").read_text("utf-8")
    (site / "merge.yaml").write_text(shipped.replace("    feed: warn ", "    feed: reject "), "utf-8")
    with Engine(settings.with_(site=site)) as eng, TestClient(create_app(eng)) as client:
        post_hl7(client, eng, his_order("B-6", "20260314080000", "R01^病情变化^HUREN"))
        authored = _order_by_placer(client, eng, "B-6")["authoredOn"]
        headers = {**bearer(eng, "system/MessageHeader.c", "his-gw"), "Content-Type": "x-application/hl7-v2+er7"}
        text = lis_result("B-6", "20260314093000", orc9="20260314090000").replace("\n", "\r")
        ack = client.post("/hl7v2", content=text.encode("utf-8"), headers=headers).content.decode("utf-8")
        assert "MSA|AE|" in ack and "authoredOn" in ack, ack  # refused whole, kept in the quarantine
        resulted = _order_by_placer(client, eng, "B-6")
        assert resulted["authoredOn"] == authored and resulted["status"] == "active"


# --- 4. an ADT merge (A40) keeps the registration system's links through the index -----------------

def test_adt_merge_links_survive_the_patient_index(engine: Engine, http: TestClient) -> None:
    nid = "32092319850412001X"
    post_hl7(http, engine, f"MSH|^~\\&|HIS|{B}|HUREN|FUNING|20260314080000||ADT^A01^ADT_A01|A40-1|P|2.5.1\n"
                           "EVN|A01|20260314080000\n"
                           f"PID|1||{nid}^^^公安部^NNCHN~MZ1^^^{B}^MR||王^建国||19850412|M|||||13800000001\n"
                           f"PV1|1|O|内科门诊^^^{B}\n")
    post_hl7(http, engine, f"MSH|^~\\&|HIS|{B}|HUREN|FUNING|20260315080000||ADT^A40^ADT_A39|A40-2|P|2.5.1\n"
                           "EVN|A40|20260315080000\n"
                           f"PID|1||{nid}^^^公安部^NNCHN~MZ2^^^{B}^MR||王^建国||19850412|M\n"
                           f"MRG|MZ1^^^{B}^MR\n")
    reader = bearer(engine, "system/Patient.rs", "reader")
    old = http.get(f"/fhir/Patient?identifier=urn:huren:mrn:{B}|MZ1", headers=reader).json()["entry"][0]["resource"]
    new = http.get(f"/fhir/Patient?identifier=urn:huren:mrn:{B}|MZ2", headers=reader).json()["entry"][0]["resource"]
    assert old["active"] is False
    assert old["link"] == [{"other": {"reference": f"Patient/{new['id']}"}, "type": "replaced-by"}]
    assert new["link"] == [{"other": {"reference": f"Patient/{old['id']}"}, "type": "replaces"}]
    assert engine.identity.person_compartment(new["id"]) == {new["id"], old["id"]}
