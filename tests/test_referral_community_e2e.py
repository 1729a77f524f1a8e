"""Two-way referral and remote reading across the community, end to end, on each storage backend.

Over a real MLLP socket the township health centre (FNYLWSY, 一级) sends 王建国's blood count and
urinalysis, his referral up to the county hospital (REF^I12; the referred-to doctor's facility,
PRD-4, is the county) and an order asking the county's reading centre to read his chest CT
(ORM^O01 to MSH-6 FNXRMYY). The county (FNXRMYY, 三级) sees the referral addressed to it at once,
with the deductible the admission pays (800 - 200 = 600.00), accepts it in FHIR and reads the
pre-arrival summary: the township's blood count and urinalysis are recognisable at the county. The
county's radiologist reports the CT remotely (ORU^R01 over MLLP): the report is linked to the
township's order and study, performer the centre, interpreter the radiologist, and recognisable
under the centre's QC. 王建国, with a resident token for his township record, reads his referral
and the CT report. The patient arrives and is treated. A second referral is rejected, and
completing it gets a 409 that names both states. The auditor's figures, and the same figures from
``huren referrals 2026-11``, are exact: referrals sent and received, accepted, rejected,
completed, the deductible due, the ratios, and the CT read's 12-hour turnaround.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from fastapi.testclient import TestClient

from engine import fhirjson
from engine.engine import Engine
from tests.conftest import REPO_ROOT, mllp_send
from tests.test_referral_e2e import (
    COUNTY,
    STATE,
    TOWN,
    WANG,
    bearer,
    created,
    deductible_due,
    engine,
    month_stored,
    move,
    one,
    referral_bundle,
    result,
)
from tests.test_referral_hl7 import referral
from tests.test_remote_reading import centre_ct_report, township_ct_order

__all__ = ["engine"]  # the fixture (both storage backends), shared with the FHIR scenario
REFERRAL = "http://snomed.info/sct|3457005"
DEDUCTIBLE = "urn:huren:fhir:extension:referral-deductible"


def ack_code(ack: str) -> str:
    msa = next(seg for seg in ack.split("\r") if seg.startswith("MSA|"))
    return msa.split("|")[1]


def deductible(resource: dict[str, Any]) -> dict[str, Any]:
    (ext,) = [e for e in resource.get("extension", []) if e["url"] == DEDUCTIBLE]
    return {p["url"]: p.get("valueCode") or p.get("valueMoney") for p in ext["extension"]}


def test_township_refers_and_sends_a_ct_the_county_accepts_reads_and_reports(
        engine: Engine, http: TestClient, mllp: int) -> None:
    county = bearer(engine, "his-county")
    # -- the township, over MLLP ------------------------------------------------------------------
    for message in (result(TOWN, WANG, "YL100", "T-1", "XCG^血常规^L", "WBC^白细胞计数^L", "20261120093000"),
                    result(TOWN, WANG, "YL100", "T-2", "NCG^尿常规^L", "WBC^白细胞计数^L", "20261121093000"),
                    referral("REF", "REF-1", "P", receiver=COUNTY),
                    township_ct_order()):
        ack = mllp_send(mllp, message)
        assert ack_code(ack) == "AA", ack
    wang = one(http, county, f"/fhir/Patient?identifier=urn:huren:mrn:{TOWN}|YL100")["id"]

    # -- the county sees the referral addressed to it, with the deductible, and accepts it ---------
    sr = one(http, county, f"/fhir/ServiceRequest?category={REFERRAL}")
    assert {"identifier": {"system": "urn:huren:institution", "value": COUNTY}, "display": "阜宁县人民医院"} \
        in sr["performer"]
    assert deductible(sr) == {"direction": "upward", "rule": "difference",
                              "sending": {"value": 200.00, "currency": "CNY"},
                              "receiving": {"value": 800.00, "currency": "CNY"},
                              "due": {"value": 600.00, "currency": "CNY"}}
    assert '"value":600.00' in http.get(f"/fhir/ServiceRequest/{sr['id']}", headers=county).text
    task = one(http, county, f"/fhir/Task?focus=ServiceRequest/{sr['id']}")
    assert task["owner"]["identifier"]["value"] == COUNTY and task["status"] == "requested"
    r = http.put(f"/fhir/Task/{task['id']}", json=move(task, "accepted", "accepted"), headers=county)
    assert r.status_code == 200, r.text
    task = r.json()

    # -- the pre-arrival summary: the township's results recognisable at the county ---------------
    def summary() -> tuple[dict[str, Any], set[str], dict[str, dict[str, Any]]]:
        r = http.get(f"/fhir/ServiceRequest/{sr['id']}/$summary", headers=county)
        assert r.status_code == 200, r.text
        doc = r.json()
        results = next(s for s in doc["entry"][0]["resource"]["section"] if s["code"]["coding"][0]["code"] == "30954-2")
        resources = {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"] for e in doc["entry"][1:]}
        return doc, {e["reference"] for e in results["section"][0].get("entry", [])}, resources

    doc, recognisable, resources = summary()
    assert deductible(doc["entry"][0]["resource"])["due"] == {"value": 600.00, "currency": "CNY"}
    local = sorted(c["code"] for ref in recognisable if ref.startswith("DiagnosticReport/")
                   for c in resources[ref]["code"]["coding"] if c.get("system") == f"urn:huren:code:{TOWN}")
    assert local == ["NCG", "XCG"], recognisable

    # -- the county's radiologist reads the CT remotely --------------------------------------------
    ack = mllp_send(mllp, centre_ct_report())
    assert ack_code(ack) == "AA", ack
    reading = one(http, county, "/fhir/Task?code=urn:huren:task-code|remote-read")
    order = reading["focus"]["reference"]
    ct = one(http, county, f"/fhir/DiagnosticReport?based-on={order}")
    assert ct["imagingStudy"] == [reading["input"][0]["valueReference"]]
    centre = http.get(f"/fhir/{ct['performer'][0]['reference']}", headers=county).json()
    assert centre["identifier"][0]["value"] == COUNTY
    radiologist = http.get(f"/fhir/{ct['resultsInterpreter'][0]['reference']}", headers=county).json()
    assert radiologist["name"][0]["text"] == "周放射"
    _, recognisable, _ = summary()
    assert f"DiagnosticReport/{ct['id']}" in recognisable  # the centre passed QC for CT; the township did not

    # -- the resident sees his referral and the CT report -------------------------------------------
    token, _ = engine.auth.issue_token(subject=f"person-{wang}", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=wang)
    resident = {"Authorization": f"Bearer {token}"}
    mine = http.get(f"/fhir/ServiceRequest/{sr['id']}", headers=resident)
    assert mine.status_code == 200, mine.text
    assert deductible(mine.json())["due"] == {"value": 600.00, "currency": "CNY"}
    report = http.get(f"/fhir/DiagnosticReport/{ct['id']}", headers=resident)
    assert report.status_code == 200, report.text
    assert report.json()["conclusion"] == "双肺未见明显异常"
    listed = http.get("/fhir/ServiceRequest", params={"category": REFERRAL}, headers=resident).json()
    assert [e["resource"]["id"] for e in listed.get("entry", [])] == [sr["id"]]

    # -- he arrives and is treated; a second referral is rejected and cannot be completed ----------
    arrived = ""
    for state, status in (("arrived", "in-progress"), ("completed", "completed")):
        r = http.put(f"/fhir/Task/{task['id']}", json=move(task, state, status), headers=county)
        assert r.status_code == 200, (state, r.text)
        task = r.json()
        arrived = arrived or month_stored(task)  # the arrival's month, taken at the move
    town = bearer(engine, "his-town")
    second = created(http.post("/fhir", json=referral_bundle(f"Patient/{wang}", TOWN, COUNTY, "复查", "2026-11-26"),
                               headers=town), "Task")
    rejected = http.get(f"/fhir/Task/{second}", headers=county).json()
    rejected = http.put(f"/fhir/Task/{second}", json=move(rejected, "rejected", "rejected"), headers=county).json()
    r = http.put(f"/fhir/Task/{second}", json=move(rejected, "completed", "completed"), headers=county)
    assert r.status_code == 409, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "conflict" and issue["diagnostics"] == (
        f"Task/{second}: a referral cannot go from rejected to completed; from rejected it may only go to "
        "entered-in-error")
    assert http.get(f"/fhir/Task/{second}", headers=county).json()["businessStatus"]["coding"][0] == \
        {"system": STATE, "code": "rejected"}

    # -- the figures ------------------------------------------------------------------------------
    auditor = bearer(engine, "insurer", "system/DetectedIssue.rs", kind="auditor")
    referrals = http.get("/reports/referrals?from=2026-11&to=2026-11", headers=auditor).json()
    rows = {row["institution"]: row for row in referrals["rows"]}
    assert referrals["referrals"] == 2 and set(rows) == {TOWN, COUNTY}
    assert rows[TOWN]["sent"] == {"upward": 2, "downward": 0, "lateral": 0, "unknown": 0, "total": 2}
    c = rows[COUNTY]
    assert c["received"] == {"upward": 2, "downward": 0, "lateral": 0, "unknown": 0, "total": 2}
    # the admission's deductible in the month the patient arrived (now: moneyfix25)
    assert (c["accepted"], c["rejected"], c["completed"], c["returned"], c["deductible_due"]) == \
        (1, 1, 1, 0, "600.00" if arrived == "2026-11" else "0.00")
    assert deductible_due(http, auditor, COUNTY, arrived) == "600.00"
    assert c["ratios"] == {"downward_to_upward": 0.0, "completion_rate": 1.0, "return_rate": 0.0}
    reads = http.get("/reports/remote-reading?from=2026-11&to=2026-11", headers=auditor).json()
    (row,) = reads["rows"]
    assert (row["centre"], row["requested"], row["reported"], row["pending"], row["overdue"]) == (COUNTY, 1, 1, 0, 0)
    assert row["turnaround_hours"] == {"median": 12.0, "mean": 12.0, "max": 12.0} and reads["overdue"] == []

    # -- the same figures from the command line (the SQLite file can be read beside the server) -----
    if engine.settings.mongodb_uri is None:
        env = {**os.environ, "HUREN_DATA_DIR": str(engine.settings.data_dir)}
        run = subprocess.run([sys.executable, "-m", "engine.cli", "referrals", "2026-11", "--format", "json"],
                             cwd=REPO_ROOT, env=env, capture_output=True, timeout=120, check=True)
        out = fhirjson.loads(run.stdout)
        assert out["referrals"]["rows"] == referrals["rows"]
        assert out["remote_reading"]["rows"] == reads["rows"]
        # through the month of the arrival, whose row carries the admission's deductible (moneyfix25)
        arrival = arrived
        text = subprocess.run([sys.executable, "-m", "engine.cli", "referrals", "2026-11", "--to", arrival],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=True).stdout
        period = "2026-11" if arrival == "2026-11" else f"2026-11 – {arrival}"
        assert f"Two-way referrals {period}: 2" in text and f"{COUNTY:<11}  {arrival}" in text, text
        assert "CNY 600.00" in text, text
        assert "turnaround median 12 h, mean 12 h, max 12 h (CT 1)" in text
        bad = subprocess.run([sys.executable, "-m", "engine.cli", "referrals", "11-2026"], cwd=REPO_ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and "YYYY-MM" in bad.stderr
