"""A resident reads the names of their medicines, the state of their referrals and their doctors' names.

A prescription (RDE) names its medicine by a reference to a shared ``Medication``, which is in no
Patient compartment; a referral's progress is a ``Task``, which R4 leaves out of the compartment
(its ``for`` names the patient); the doctors a referral names are shared ``Practitioner``s. All arrive as HL7 v2 over POST /hl7v2; 赵桂兰 reads them with her
own token, 钱多多 (another resident) gets nothing of them, and a Medication no record of hers names
stays unknown to her.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_resident_record_ui import QIAN, ZHAO, feeds
from tests.test_resident_who_looked import sign_in


def test_medicine_names_and_referral_progress_are_the_residents_own(engine):
    with TestClient(create_app(engine)) as http:
        sender = {"Authorization": "Bearer " + engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c"),
                  "Content-Type": "x-application/hl7-v2+er7"}
        for message in feeds():
            assert http.post("/hl7v2", content=message, headers=sender).headers["x-hl7-ack-code"] == "AA"
        system = {"Authorization": "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")}
        # a medicine in the catalogue that no prescription of hers names
        assert http.put("/fhir/Medication/cat-aspirin", headers=system, json={
            "resourceType": "Medication", "id": "cat-aspirin", "code": {"text": "阿司匹林肠溶片"}}).status_code in (200, 201)
        zhao = {"Authorization": "Bearer " + sign_in(http, engine, ZHAO)["access_token"]}
        qian = {"Authorization": "Bearer " + sign_in(http, engine, QIAN)["access_token"]}

        # the prescription and, included with it, the medicine's name
        b = http.get("/fhir/MedicationRequest?_include=MedicationRequest:medication", headers=zhao).json()
        requests = [e["resource"] for e in b["entry"] if e["search"]["mode"] == "match"]
        meds = [e["resource"] for e in b["entry"] if e["search"]["mode"] == "include"]
        assert len(requests) == 1 and [m["code"]["text"] for m in meds] == ["硝苯地平缓释片"]
        med_id = meds[0]["id"]
        assert requests[0]["medicationReference"]["reference"] == f"Medication/{med_id}"
        assert http.get(f"/fhir/Medication/{med_id}", headers=zhao).json()["code"]["text"] == "硝苯地平缓释片"
        # ... which is not another resident's to read, and the catalogue's other medicines are not hers
        missing = http.get("/fhir/Medication/no-such-id", headers=qian)
        for who, mid in ((qian, med_id), (zhao, "cat-aspirin")):
            r = http.get(f"/fhir/Medication/{mid}", headers=who)
            assert r.status_code == 404 and r.text.replace(mid, "X") == missing.text.replace("no-such-id", "X")
        b = http.get("/fhir/MedicationRequest?_include=MedicationRequest:medication", headers=qian).json()
        assert not b.get("entry")
        # a search finds what a read shows: her medicine, by id or by any parameter, and nothing else
        for query, expected in ((f"_id={med_id}", [med_id]), ("", [med_id]), ("_id=cat-aspirin", []),
                                (f"_id=cat-aspirin,{med_id}", [med_id])):
            found = [e["resource"]["id"] for e in http.get(f"/fhir/Medication?{query}", headers=zhao).json().get("entry", [])]
            assert found == expected, query
        assert not http.get("/fhir/Medication", headers=qian).json().get("entry")
        assert http.get("/fhir/Medication?no-such-param=1", headers=qian).status_code == 400

        # her referral's Task (up to the county hospital), with the referral it carries out
        b = http.get("/fhir/Task?_include=Task:focus", headers=zhao).json()
        tasks = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Task"]
        focus = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
        assert len(tasks) == 1 and tasks[0]["status"] == "accepted"
        assert focus and focus[0]["code"]["text"] == "上转：心内科进一步诊治"
        task_id = tasks[0]["id"]
        assert http.get(f"/fhir/Task/{task_id}", headers=zhao).status_code == 200
        assert http.get("/fhir/Task?status=accepted", headers=zhao).json()["entry"][0]["resource"]["id"] == task_id
        # 钱 sees no referral of hers, by search, read, id or patient
        assert not http.get("/fhir/Task", headers=qian).json().get("entry")
        assert not http.get(f"/fhir/Task?_id={task_id}", headers=qian).json().get("entry")
        assert not http.get(f"/fhir/Task?patient={tasks[0]['for']['reference']}", headers=qian).json().get("entry")
        r = http.get(f"/fhir/Task/{task_id}", headers=qian)
        assert r.status_code == 404 and task_id not in r.text
        # the doctors the referral names (sending and receiving), by name: read and included
        b = http.get("/fhir/ServiceRequest?_include=ServiceRequest:performer&_include=ServiceRequest:requester",
                     headers=zhao).json()
        doctors = {e["resource"]["id"]: e["resource"] for e in b["entry"] if e["search"]["mode"] == "include"}
        names = sorted("".join([n.get("family", ""), *n.get("given", [])]) for d in doctors.values() for n in d["name"])
        assert {"陈明", "孙丽"} <= set(names), names
        receiving = focus[0]["performer"][0]["reference"].removeprefix("Practitioner/")
        assert http.get(f"/fhir/Practitioner/{receiving}", headers=zhao).status_code == 200
        assert http.get(f"/fhir/Practitioner/{receiving}", headers=qian).status_code == 404  # not named by his records
        assert http.put("/fhir/Practitioner/nobody-s", headers=system, json={
            "resourceType": "Practitioner", "id": "nobody-s", "name": [{"text": "王五"}]}).status_code in (200, 201)
        assert http.get("/fhir/Practitioner/nobody-s", headers=zhao).status_code == 404
        named = {e["resource"]["id"] for e in http.get("/fhir/Practitioner", headers=zhao).json()["entry"]}
        assert receiving in named and "nobody-s" not in named and named <= set(doctors)
        theirs = {e["resource"]["id"] for e in http.get("/fhir/Practitioner", headers=qian).json().get("entry", [])}
        assert receiving not in theirs and "nobody-s" not in theirs  # his own orders' doctors only
        assert all(http.get(f"/fhir/Practitioner/{d}", headers=qian).status_code == 200 for d in theirs)
        # a resident still only reads: a Task is not theirs to change
        assert http.put(f"/fhir/Task/{task_id}", headers=zhao, json=tasks[0]).status_code == 403

        # her whole-record export carries the medicine her prescription names (R4 $everything:
        # "any resource referenced by these"), and still nothing of 钱's nor the catalogue's
        patient = requests[0]["subject"]["reference"].removeprefix("Patient/")
        b = http.get(f"/fhir/Patient/{patient}/$everything", headers=zhao).json()
        included = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in b["entry"] if e["search"]["mode"] == "include"}
        assert ("Medication", med_id) in included and ("Medication", "cat-aspirin") not in included
        assert "阿司匹林" not in str(b) and "钱" not in str(b)
        r = http.get(f"/fhir/Patient/{patient}/$everything", headers=qian)
        assert r.status_code == 404 and "硝苯地平" not in r.text
