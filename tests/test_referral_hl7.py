"""A referral sent over HL7 v2 (REF^I12) and worked in FHIR obeys the same workflow.

The township health centre (FNYLWSY) reports 王建国's blood count and sends his referral as
REF^I12 (RF1-1 P, pending) over POST /hl7v2. The county (FNXRMYY) accepts it in FHIR, naming
itself the Task's owner; the summary then shows the township's blood count as recognisable at the
county. The patient arrives. A late RRI^I12 saying "rejected" (RF1-1 R) cannot undo that: the ACK
is AE with an ERR naming both states, the raw message is kept in the quarantine, and the Task
stays where it was.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_referral_e2e import COUNTY, HL7, TOWN, WANG, bearer, engine, feed, move, org, result

__all__ = ["engine"]  # the fixture (both storage backends), shared with the FHIR scenario


def referral(kind: str, control: str, status: str, receiver: str = "", number: str = "ZZ-2026-11") -> bytes:
    segments = [
        f"MSH|^~\\&|HIS|{TOWN}|HUREN|FUNING|20261125091500||{kind}^I12^{kind}_I12|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8",
        *(["MSA|AA|REF-1"] if kind == "RRI" else []),
        f"RF1|{status}^^HL70283|S^^HL70280|ZZ01^上转会诊^L|||{number}^{TOWN}|20261125|20261225||R07.4^胸痛^I10",
        "PRD|RP^转出医生^HL70286|王^医生|||||T001",
        f"PRD|RT^接收医生^HL70286|周^主任||{'^^^' + receiver if receiver else ''}|||C900",
        f"PID|1||{WANG}^^^公安部^NNCHN~YL100^^^{TOWN}^MR||王^建国||19850412|M",
        "PV1|1|O|全科^^^FNYLWSY",
        "NTE|1||胸痛两天，心电图ST段改变",
    ]
    return ("\r".join(segments) + "\r").encode("utf-8")


def post(http: TestClient, engine: Engine, message: bytes) -> tuple[str, str]:
    r = http.post("/hl7v2", content=message, headers=HL7 | bearer(engine, "gateway", "system/MessageHeader.c"))
    assert r.status_code == 200, r.text
    return r.headers["x-hl7-ack-code"], r.text


def test_hl7_referral_accepted_in_fhir_and_a_late_rejection_refused(engine: Engine, http: TestClient) -> None:
    county = bearer(engine, "his-county")
    feed(http, engine, result(TOWN, WANG, "YL100", "T-1", "XCG^血常规^L", "WBC^白细胞计数^L", "20261120093000"))
    assert post(http, engine, referral("REF", "REF-1", "P"))[0] == "AA"
    sr: dict[str, Any] = http.get("/fhir/ServiceRequest", params={"category": "http://snomed.info/sct|3457005"},
                                  headers=county).json()["entry"][0]["resource"]
    assert sr["priority"] == "stat" and "胸痛" in str(sr["reasonCode"])
    task = http.get("/fhir/Task", params={"focus": f"ServiceRequest/{sr['id']}"}, headers=county).json()
    task = task["entry"][0]["resource"]
    assert task["status"] == "requested"

    # the county accepts in FHIR and names itself the owner
    accepted = move(task, "accepted", "accepted") | {"owner": org(COUNTY)}
    r = http.put(f"/fhir/Task/{task['id']}", json=accepted, headers=county)
    assert r.status_code == 200, r.text
    doc = http.get(f"/fhir/ServiceRequest/{sr['id']}/$summary", headers=county).json()
    results = next(s for s in doc["entry"][0]["resource"]["section"] if s["code"]["coding"][0]["code"] == "30954-2")
    recognisable = [e["reference"] for e in results["section"][0].get("entry", [])]
    assert any(ref.startswith("DiagnosticReport/") for ref in recognisable), results
    assert "胸痛两天" in str(doc)
    r = http.put(f"/fhir/Task/{task['id']}", json=move(r.json(), "arrived", "in-progress"), headers=county)
    assert r.status_code == 200, r.text

    # a late HL7 rejection: AE naming the transition, raw message kept, Task unchanged
    code, ack = post(http, engine, referral("RRI", "RRI-9", "R"))
    assert code == "AE" and "ERR|" in ack and "from arrived to rejected" in ack, ack
    assert http.get(f"/fhir/Task/{task['id']}", headers=county).json()["status"] == "in-progress"
    (held,) = engine.ingestor.messages.quarantined()
    assert held["control_id"] == "RRI-9" and base64.b64decode(held["raw"]) == referral("RRI", "RRI-9", "R")
    assert "from arrived to rejected" in held["reason"]

    # the auditor's counts see the HL7 referral like any other
    rows = http.get("/reports/referrals?from=2026-11&to=2026-11",
                    headers=bearer(engine, "insurer", "system/DetectedIssue.rs", kind="auditor")).json()["rows"]
    town = next(row for row in rows if row["institution"] == TOWN)
    assert town["sent"]["upward"] == 1


def test_the_receiving_institution_is_known_from_the_referral_message(engine: Engine, http: TestClient) -> None:
    """PRD-4.4 (the referred-to provider's facility) names the county: the referral's performer and
    the Task's owner are the county from the first message, and the counts see it as received."""
    county = bearer(engine, "his-county")
    message = referral("REF", "REF-2", "P", receiver=COUNTY)
    assert post(http, engine, message)[0] == "AA"
    (sr,) = [e["resource"] for e in http.get("/fhir/ServiceRequest", headers=county).json()["entry"]]
    assert org(COUNTY) | {"display": "阜宁县人民医院"} in sr["performer"]
    assert any(p.get("reference", "").startswith("Practitioner/") for p in sr["performer"])  # the doctor stays
    (task,) = [e["resource"] for e in http.get("/fhir/Task", headers=county).json()["entry"]]
    assert task["owner"]["identifier"] == {"system": "urn:huren:institution", "value": COUNTY}
    rows = http.get("/reports/referrals?from=2026-11&to=2026-11",
                    headers=bearer(engine, "insurer", "system/DetectedIssue.rs", kind="auditor")).json()["rows"]
    received = next(row for row in rows if row["institution"] == COUNTY)["received"]
    assert received["upward"] == 1
    # the sender naming itself is not a receiver
    own = referral("REF", "REF-3", "P", receiver=TOWN, number="ZZ-2026-12")
    assert post(http, engine, own)[0] == "AA"
    tasks = [e["resource"] for e in http.get("/fhir/Task", headers=county).json()["entry"]]
    assert sorted(str(t.get("owner", {}).get("identifier")) for t in tasks).count("None") == 1


def test_an_answer_from_the_receiving_institution_names_it_the_owner(engine: Engine, http: TestClient) -> None:
    """An RRI is sent by the institution the referral went to: naming its own facility as the
    referred-to provider's, it is the Task's owner."""
    county = bearer(engine, "his-county")
    answer = referral("RRI", "RRI-1", "A", receiver=COUNTY).replace(f"|HIS|{TOWN}|HUREN|".encode(),
                                                                      f"|HIS|{COUNTY}|HUREN|".encode())
    assert post(http, engine, answer)[0] == "AA"
    (task,) = [e["resource"] for e in http.get("/fhir/Task", headers=county).json()["entry"]]
    assert task["status"] == "accepted"
    assert task["owner"]["identifier"] == {"system": "urn:huren:institution", "value": COUNTY}


def test_an_auditor_bound_to_an_institution_sees_only_its_referrals(engine: Engine, http: TestClient) -> None:
    """The referral report applies the auditor's remit like the other reports: a township auditor
    sees the township's referrals and row, never a third institution's, and naming one is a 404."""
    import time

    from engine.auth.staff import StaffDirectory
    from tests.test_reports_ui import AUDITOR_PASSWORD
    from tests.test_staff_signin import rfc6238, sign_in

    other = "FNZYY"  # a third member: its own referral to the county
    assert post(http, engine, referral("REF", "REF-7", "P", receiver=COUNTY))[0] == "AA"
    third = referral("REF", "REF-8", "P", receiver=COUNTY, number="ZY-2026-01").replace(
        f"|{TOWN}|".encode(), f"|{other}|".encode())
    assert post(http, engine, third)[0] == "AA"
    everyone = http.get("/reports/referrals?from=2026-11&to=2026-11",
                        headers=bearer(engine, "insurer", "system/DetectedIssue.rs", kind="auditor")).json()
    assert {row["institution"] for row in everyone["rows"]} == {TOWN, COUNTY, other}

    secret = StaffDirectory(engine.settings.data_dir).add(
        "wu.fang", role="auditor", institution="YBJ", password=AUDITOR_PASSWORD, display="wu",
        roles=engine.staff.roles, remit=TOWN).secret
    r = sign_in(http, "wu.fang", AUDITOR_PASSWORD, rfc6238(secret, time.time()), "/ui/duplicates")
    assert r.status_code == 303, r.text
    mine = http.get("/reports/referrals?from=2026-11&to=2026-11").json()
    assert [row["institution"] for row in mine["rows"]] == [TOWN] and mine["referrals"] == 1
    assert mine["rows"][0]["sent"]["upward"] == 1
    assert http.get(f"/reports/referrals?institution={other}").status_code == 404
    assert http.get(f"/reports/remote-reading?centre={COUNTY}").status_code == 404
    assert http.get("/reports/remote-reading").status_code == 200


def test_a_modification_that_names_no_receiver_keeps_the_one_named_before(engine: Engine, http: TestClient) -> None:
    """REF^I13 (modify) from the same referral without the referred-to facility (PRD-4.4 empty) is a
    thinner message: the institution the referral was sent to stays. One that names another
    facility redirects the referral: the new institution replaces the old, it is not added."""
    county = bearer(engine, "his-county")
    assert post(http, engine, referral("REF", "REF-5", "P", receiver=COUNTY))[0] == "AA"
    modify = referral("REF", "REF-6", "P").replace(b"^I12^REF_I12|", b"^I13^REF_I13|")
    assert post(http, engine, modify)[0] == "AA"
    (sr,) = [e["resource"] for e in http.get("/fhir/ServiceRequest", headers=county).json()["entry"]]
    institutions = [p["identifier"]["value"] for p in sr["performer"] if "identifier" in p]
    assert institutions == [COUNTY], sr["performer"]
    assert any(p.get("reference", "").startswith("Practitioner/") for p in sr["performer"])
    redirect = referral("REF", "REF-7", "P", receiver="FNZYY").replace(b"^I12^REF_I12|", b"^I13^REF_I13|")
    assert post(http, engine, redirect)[0] == "AA"
    (sr,) = [e["resource"] for e in http.get("/fhir/ServiceRequest", headers=county).json()["entry"]]
    assert [p["identifier"]["value"] for p in sr["performer"] if "identifier" in p] == ["FNZYY"], sr["performer"]
