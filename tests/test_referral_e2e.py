"""Two-way referral end to end, over real HTTP with real tokens and the real store.

The township health centre (益林镇中心卫生院, FNYLWSY, 一级) reports 王建国's blood count and
urinalysis over HL7; the county hospital (阜宁县人民医院, FNXRMYY, 三级) knows him under its own
MRN and has an older liver panel. 李秀英 is a second resident of the township with her own blood
count. The township refers 王建国 up to the county in one FHIR transaction (ServiceRequest + Task);
before he arrives the county reads the summary: his results from both records, the township's
blood count recognisable, nothing of 李秀英. The county accepts, he arrives, is treated and is
referred back down. A second referral is rejected, and completing it is refused with a 409 that
names both states; a Bundle that tries it stores nothing. The auditor's report counts it all, and
the upward admission's deductible is the difference between the two hospitals'.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from mappings.site import DEFAULT_ZONE

WANG = "32092319850412001X"  # 王建国, M, 1985-04-12 (valid check character)
LI = "320923198809030023"  # 李秀英, F, 1988-09-03
TOWN, COUNTY = "FNYLWSY", "FNXRMYY"
HL7 = {"Content-Type": "x-application/hl7-v2+er7"}
SNOMED_REFERRAL = {"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}
STATE = "urn:huren:referral-state"


def msh(inst: str, app: str, kind: str, when: str, control: str) -> str:
    return f"MSH|^~\\&|{app}|{inst}|HUREN|FUNING|{when}||{kind}|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\r"


def pid(inst: str, person: str, mrn: str) -> str:
    name, born, sex = ("王^建国", "19850412", "M") if person == WANG else ("李^秀英", "19880903", "F")
    return f"PID|1||{person}^^^公安部^NNCHN~{mrn}^^^{inst}^MR||{name}||{born}|{sex}\r"


def result(inst: str, person: str, mrn: str, placer: str, item: str, analyte: str, when: str) -> bytes:
    return (msh(inst, "LIS", "ORU^R01^ORU_R01", when, f"{inst}-ORU-{placer}") + pid(inst, person, mrn)
            + f"ORC|RE|{placer}^HIS|F{placer}^LIS||CM\r"
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{item}|||{when}|||||||||D1^医^生||||||{when}|||F\r"
            + f"OBX|1|NM|{analyte}||6.1|10*9/L|3.5-9.5|N|||F|||{when}\r").encode("utf-8")


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    """The shipped demo site, on each storage backend (SQLite, mongomock)."""
    with Engine(backend_settings) as eng:
        yield eng


def bearer(engine: Engine, client: str, scopes: str = "system/*.cruds", kind: str = "system") -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token(client, scopes, kind=kind)}


def feed(http: TestClient, engine: Engine, message: bytes) -> None:
    r = http.post("/hl7v2", content=message, headers=HL7 | bearer(engine, "gateway", "system/MessageHeader.c"))
    assert r.status_code == 200 and r.headers["x-hl7-ack-code"] == "AA", r.text


def one(http: TestClient, headers: dict[str, str], path: str) -> dict[str, Any]:
    bundle = http.get(path, headers=headers).json()
    assert bundle.get("total", len(bundle.get("entry", []))) == 1, (path, bundle)
    return bundle["entry"][0]["resource"]


def org(institution: str) -> dict[str, Any]:
    return {"identifier": {"system": "urn:huren:institution", "value": institution}}


def referral_bundle(patient: str, sending: str, receiving: str, reason: str, day: str) -> dict[str, Any]:
    sr = {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "priority": "urgent",
          "category": [{"coding": [SNOMED_REFERRAL]}],
          "code": {"text": "转诊 referral"},
          "subject": {"reference": patient}, "authoredOn": day,
          "requester": org(sending), "performer": [org(receiving)],
          "reasonCode": [{"text": reason}], "note": [{"text": "患者血常规异常，请上级医院会诊"}]}
    task = {"resourceType": "Task", "status": "requested", "intent": "order",
            "businessStatus": {"coding": [{"system": STATE, "code": "requested"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
            "focus": {"reference": "urn:uuid:referral"}, "for": {"reference": patient},
            "authoredOn": day, "requester": org(sending), "owner": org(receiving)}
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:referral", "resource": sr, "request": {"method": "POST", "url": "ServiceRequest"}},
        {"fullUrl": "urn:uuid:task", "resource": task, "request": {"method": "POST", "url": "Task"}}]}


def created(response: Any, rtype: str) -> str:
    assert response.status_code == 200, response.text
    loc = next(e["response"]["location"] for e in response.json()["entry"]
               if e["response"]["location"].startswith(rtype + "/"))
    return loc.split("/")[1]


def arrival_month() -> str:
    """The month a move made now is recorded in (huren's clock, in the institutions' zone): the month
    the referral report counts an arrival's deductible in (moneyfix25)."""
    return datetime.now(ZoneInfo(DEFAULT_ZONE)).strftime("%Y-%m")


def month_stored(resource: dict[str, Any]) -> str:
    """The month huren stored ``resource`` in (its ``meta.lastUpdated`` in the institutions' zone): for a
    Task moved to arrived, the month the referral report counts the deductible in -- taken at the move,
    not when the test asserts (a test running over a month's end would look in the next month)."""
    return datetime.fromisoformat(resource["meta"]["lastUpdated"]).astimezone(ZoneInfo(DEFAULT_ZONE)).strftime("%Y-%m")


def deductible_due(http: TestClient, headers: dict[str, str], institution: str, month: str) -> str:
    """The referral report's ``deductible_due`` of ``institution`` in ``month`` ("0.00" without a row)."""
    r = http.get(f"/reports/referrals?from={month}&to={month}", headers=headers)
    assert r.status_code == 200, r.text
    rows = {row["institution"]: row for row in r.json()["rows"]}
    return str(rows.get(institution, {}).get("deductible_due", "0.00"))


def move(task: dict[str, Any], state: str, status: str) -> dict[str, Any]:
    out = {k: v for k, v in task.items() if k != "meta"}
    out["status"] = status
    out["businessStatus"] = {"coding": [{"system": STATE, "code": state}]}
    return out


def test_township_refers_up_the_county_reads_the_summary_and_refers_back(engine: Engine, http: TestClient) -> None:
    town, county = bearer(engine, "his-town"), bearer(engine, "his-county")
    # the township's results (blood count 5 days before the referral, within its 7-day window)
    feed(http, engine, result(TOWN, WANG, "YL100", "T-1", "XCG^血常规^L", "WBC^白细胞计数^L", "20261120093000"))
    feed(http, engine, result(TOWN, WANG, "YL100", "T-2", "NCG^尿常规^L", "WBC^白细胞计数^L", "20261121093000"))
    feed(http, engine, result(TOWN, LI, "YL200", "T-3", "XCG^血常规^L", "WBC^白细胞计数^L", "20261122093000"))
    # the county's older record of the same resident (own MRN): a liver panel
    feed(http, engine, result(COUNTY, WANG, "ZY900", "C-1", "GGN^肝功能^L", "ALT^丙氨酸氨基转移酶^L",
                              "20261001093000"))
    wang_town = one(http, town, f"/fhir/Patient?identifier=urn:huren:mrn:{TOWN}|YL100")["id"]
    li_town = one(http, town, f"/fhir/Patient?identifier=urn:huren:mrn:{TOWN}|YL200")["id"]

    # the township refers him up: ServiceRequest + Task in one transaction
    r = http.post("/fhir", json=referral_bundle(f"Patient/{wang_town}", TOWN, COUNTY, "胸痛待查", "2026-11-25"),
                  headers=town)
    sr_id, task_id = created(r, "ServiceRequest"), created(r, "Task")

    # before the patient arrives, the county reads the summary
    r = http.get(f"/fhir/ServiceRequest/{sr_id}/$summary", headers=county)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["type"] == "document" and doc["entry"][0]["resource"]["resourceType"] == "Composition"
    composition = doc["entry"][0]["resource"]
    sections = {s["code"]["coding"][0]["code"]: s for s in composition["section"]}
    assert {"42349-1", "30954-2", "11450-4", "10160-0", "48765-2"} <= set(sections)
    reason = sections["42349-1"]
    assert f"ServiceRequest/{sr_id}" in [e["reference"] for e in reason["entry"]]
    assert "胸痛待查" in reason["text"]["div"]
    recognisable, others = sections["30954-2"]["section"]
    recognisable_refs = {e["reference"] for e in recognisable.get("entry", [])}
    resources = {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"] for e in doc["entry"][1:]}
    # the blood count and the urinalysis (QC passed at the township) are recognisable at the county
    reports = [resources[ref] for ref in recognisable_refs if ref.startswith("DiagnosticReport/")]
    assert sorted(c["code"] for r in reports for c in r["code"]["coding"] if c["code"] in ("XCG", "NCG")) == \
        ["NCG", "XCG"], recognisable_refs
    # the county's own liver panel is in the summary, but too old to be recognised on the referral date
    other_refs = {e["reference"] for e in others.get("entry", [])}
    liver = [ref for ref in other_refs if ref.startswith("DiagnosticReport/") and "GGN" in str(resources[ref])]
    assert liver and "outside-window" in others["text"]["div"]
    # every resource of the document belongs to 王建国's records (both), nothing of 李秀英
    patients = {ref for ref, res in resources.items() if res["resourceType"] == "Patient"}
    assert len(patients) == 2 and f"Patient/{li_town}" not in patients
    assert LI not in r.text and "李" not in r.text and li_town not in r.text
    # the deductible of an upward admission: the county's (800) minus the township's (200)
    deductible = {e["url"]: e for e in composition["extension"][0]["extension"]}
    assert deductible["direction"]["valueCode"] == "upward"
    assert deductible["due"]["valueMoney"] == {"value": 600.00, "currency": "CNY"}
    assert '"value":600.00' in r.text  # exact decimal text, not a float

    # the same summary by the Task
    assert http.get(f"/fhir/Task/{task_id}/$summary", headers=county).json()["entry"][0]["resource"]["section"]

    # the county accepts; accepting again (another doctor) is refused
    task = http.get(f"/fhir/Task/{task_id}", headers=county).json()
    r = http.put(f"/fhir/Task/{task_id}", json=move(task, "accepted", "accepted"), headers=county)
    assert r.status_code == 200, r.text
    again = move(r.json(), "accepted", "accepted") | {"note": [{"text": "我也接收"}]}
    r = http.put(f"/fhir/Task/{task_id}", json=again, headers=county)
    assert r.status_code == 409 and r.json()["resourceType"] == "OperationOutcome"
    assert "already accepted" in r.json()["issue"][0]["diagnostics"]
    # the patient arrives, is treated, and is referred back down
    task = http.get(f"/fhir/Task/{task_id}", headers=county).json()
    arrived = ""
    for state, status in (("arrived", "in-progress"), ("completed", "completed"), ("referred-back", "completed")):
        r = http.put(f"/fhir/Task/{task_id}", json=move(task, state, status), headers=county)
        assert r.status_code == 200, (state, r.text)
        task = r.json()
        arrived = arrived or month_stored(task)  # the arrival's month, taken at the move
    # ... and the county's downward referral back to the township pays no deductible
    wang_county = one(http, county, f"/fhir/Patient?identifier=urn:huren:mrn:{COUNTY}|ZY900")["id"]
    r = http.post("/fhir", json=referral_bundle(f"Patient/{wang_county}", COUNTY, TOWN, "康复期 recovery",
                                                "2026-11-28"), headers=county)
    down_id = created(r, "ServiceRequest")
    down = http.get(f"/fhir/ServiceRequest/{down_id}/$summary", headers=town).json()
    deductible = {e["url"]: e for e in down["entry"][0]["resource"]["extension"][0]["extension"]}
    assert deductible["direction"]["valueCode"] == "downward" and deductible["due"]["valueMoney"]["value"] == 0

    # a second upward referral is rejected; completing it is refused, by PUT and by Bundle
    r = http.post("/fhir", json=referral_bundle(f"Patient/{wang_town}", TOWN, COUNTY, "复查", "2026-11-26"),
                  headers=town)
    rejected_id = created(r, "Task")
    task = http.get(f"/fhir/Task/{rejected_id}", headers=county).json()
    task = http.put(f"/fhir/Task/{rejected_id}", json=move(task, "rejected", "rejected"), headers=county).json()
    r = http.put(f"/fhir/Task/{rejected_id}", json=move(task, "completed", "completed"), headers=county)
    assert r.status_code == 409, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "conflict"
    assert "from rejected to completed" in outcome["issue"][0]["diagnostics"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "id": "sneaked-in", "status": "final",
                      "code": {"text": "x"}, "subject": {"reference": f"Patient/{wang_town}"},
                      "effectiveDateTime": "2026-11-27", "performer": [org(COUNTY)]},
         "request": {"method": "PUT", "url": "Observation/sneaked-in"}},
        {"resource": move(task, "completed", "completed"), "request": {"method": "PUT", "url": f"Task/{rejected_id}"}}]}
    r = http.post("/fhir", json=bundle, headers=county)
    assert r.status_code == 409, r.text
    assert http.get("/fhir/Observation/sneaked-in", headers=county).status_code == 404
    assert http.get(f"/fhir/Task/{rejected_id}", headers=county).json()["status"] == "rejected"
    # a Task cannot be born completed
    born = referral_bundle(f"Patient/{wang_town}", TOWN, COUNTY, "x", "2026-11-27")
    born["entry"][1]["resource"] = move(born["entry"][1]["resource"], "completed", "completed")
    assert http.post("/fhir", json=born, headers=town).status_code == 409

    # the auditor's report for November
    auditor = bearer(engine, "insurer", "system/DetectedIssue.rs", kind="auditor")
    r = http.get("/reports/referrals?from=2026-11&to=2026-11", headers=auditor)
    assert r.status_code == 200, r.text
    rows = {(row["institution"], row["month"]): row for row in r.json()["rows"]}
    t, c = rows[(TOWN, "2026-11")], rows[(COUNTY, "2026-11")]
    assert t["sent"] == {"upward": 2, "downward": 0, "lateral": 0, "unknown": 0, "total": 2}
    assert t["received"]["downward"] == 1 and t["deductible_due"] == "0.00"
    assert c["received"] == {"upward": 2, "downward": 0, "lateral": 0, "unknown": 0, "total": 2}
    assert c["sent"]["downward"] == 1
    assert (c["accepted"], c["rejected"], c["completed"], c["returned"]) == (1, 1, 1, 1)
    # the deductible is the admission's: counted in the month the patient arrived (now), not the month
    # the referral was written (moneyfix25)
    assert c["deductible_due"] == ("600.00" if arrived == "2026-11" else "0.00")
    assert deductible_due(http, auditor, COUNTY, arrived) == "600.00"
    assert c["ratios"] == {"downward_to_upward": 0.5, "completion_rate": 1.0, "return_rate": 1.0}
    assert r.json()["referrals"] == 3
    # the report is for auditors: not for a hospital's system client without report rights, nor a resident
    assert http.get("/reports/referrals", headers=bearer(engine, "his", "system/Task.cruds")).status_code == 403
    assert http.get("/reports/referrals?from=2026-13", headers=auditor).status_code == 400


def test_a_resident_sees_only_their_own_referral_summary(engine: Engine, http: TestClient) -> None:
    town = bearer(engine, "his-town")
    feed(http, engine, result(TOWN, WANG, "YL100", "T-1", "XCG^血常规^L", "WBC^白细胞计数^L", "20261120093000"))
    feed(http, engine, result(TOWN, LI, "YL200", "T-3", "XCG^血常规^L", "WBC^白细胞计数^L", "20261122093000"))
    wang = one(http, town, f"/fhir/Patient?identifier=urn:huren:mrn:{TOWN}|YL100")["id"]
    li = one(http, town, f"/fhir/Patient?identifier=urn:huren:mrn:{TOWN}|YL200")["id"]
    sr_id = created(http.post("/fhir", json=referral_bundle(f"Patient/{wang}", TOWN, COUNTY, "胸痛", "2026-11-25"),
                              headers=town), "ServiceRequest")

    def resident(patient: str) -> dict[str, str]:
        token, _ = engine.auth.issue_token(subject=f"person-{patient}", kind="patient", client_id="phr",
                                           scopes=["patient/*.rs"], patient=patient)
        return {"Authorization": f"Bearer {token}"}

    mine = http.get(f"/fhir/ServiceRequest/{sr_id}/$summary", headers=resident(wang))
    assert mine.status_code == 200 and mine.json()["type"] == "document"
    theirs = http.get(f"/fhir/ServiceRequest/{sr_id}/$summary", headers=resident(li))
    missing = http.get("/fhir/ServiceRequest/no-such-referral/$summary", headers=resident(li))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["issue"][0]["diagnostics"].replace(sr_id, "X") == \
        missing.json()["issue"][0]["diagnostics"].replace("no-such-referral", "X")
    assert "胸痛" not in theirs.text
    # no token, no summary
    assert http.get(f"/fhir/ServiceRequest/{sr_id}/$summary").status_code == 401
