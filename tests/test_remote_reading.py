"""Remote reading end to end over real HTTP: the township sends studies to the county's reading
centre, the centre reports, the auditor sees turnaround, workload and the overdue reads.

The township (FNYLWSY) requests three reads of 王建国's studies at the county centre (FNXRMYY): a
chest CT on 20 November (target 24 h), an ECG on 21 November (target 2 h) and a head CT on
22 November. The centre's radiologist reports the CT 12 hours later; the ECG is read 3 hours after
the request, one hour late; the head CT is never reported. Per centre and month: three requested,
two reported, median turnaround 7.5 h, two overdue (the late ECG and the unread CT).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from adapters.convert import convert
from adapters.hl7v2.parser import parse
from engine.engine import Engine
from mappings.site import DEFAULTS_DIR, Site
from tests.test_referral_e2e import COUNTY, HL7, TOWN, WANG, bearer, created, engine, feed, one, org, result

__all__ = ["engine"]  # the fixture (both storage backends), shared with the FHIR scenario
REMOTE_READ = {"system": "urn:huren:task-code", "code": "remote-read"}


def reading_request(patient: str, modality: str, code: str, when: str) -> dict[str, Any]:
    study = {"resourceType": "ImagingStudy", "status": "available", "subject": {"reference": patient},
             "started": when, "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                                            "code": modality}]}
    order = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
             "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "363679005",
                                       "display": "Imaging"}]}],
             "code": {"text": code}, "subject": {"reference": patient}, "authoredOn": when,
             "requester": org(TOWN), "performer": [org(COUNTY)]}
    task = {"resourceType": "Task", "status": "requested", "intent": "order", "code": {"coding": [REMOTE_READ]},
            "focus": {"reference": "urn:uuid:order"}, "for": {"reference": patient}, "authoredOn": when,
            "requester": org(TOWN), "owner": org(COUNTY),
            "input": [{"type": {"text": "study to read"}, "valueReference": {"reference": "urn:uuid:study"}}]}
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:study", "resource": study, "request": {"method": "POST", "url": "ImagingStudy"}},
        {"fullUrl": "urn:uuid:order", "resource": order, "request": {"method": "POST", "url": "ServiceRequest"}},
        {"fullUrl": "urn:uuid:task", "resource": task, "request": {"method": "POST", "url": "Task"}}]}


def centre_report(patient: str, order: str, study: str, issued: str) -> dict[str, Any]:
    return {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "影像诊断报告"},
            "subject": {"reference": patient}, "basedOn": [{"reference": f"ServiceRequest/{order}"}],
            "imagingStudy": [{"reference": f"ImagingStudy/{study}"}], "performer": [org(COUNTY)],
            "resultsInterpreter": [{"display": "放射科 周医生"}], "effectiveDateTime": issued, "issued": issued,
            "conclusion": "双肺未见明显异常"}


def test_centre_turnaround_workload_and_overdue_reads(engine: Engine, http: TestClient) -> None:
    town, county = bearer(engine, "pacs-town"), bearer(engine, "ris-county")
    feed(http, engine, result(TOWN, WANG, "YL100", "T-1", "XCG^血常规^L", "WBC^白细胞计数^L", "20261120093000"))
    patient = "Patient/" + one(http, town, f"/fhir/Patient?identifier=urn:huren:mrn:{TOWN}|YL100")["id"]
    sent = []
    for modality, code, when in (("CT", "胸部CT平扫", "2026-11-20T08:00:00+08:00"),
                                 ("ECG", "十二导联心电图", "2026-11-21T09:00:00+08:00"),
                                 ("CT", "头颅CT平扫", "2026-11-22T10:00:00+08:00")):
        r = http.post("/fhir", json=reading_request(patient, modality, code, when), headers=town)
        sent.append((created(r, "ImagingStudy"), created(r, "ServiceRequest")))
    for (study, order), issued in zip(sent[:2], ("2026-11-20T20:00:00+08:00", "2026-11-21T12:00:00+08:00"), strict=True):
        r = http.post("/fhir/DiagnosticReport", json=centre_report(patient, order, study, issued), headers=county)
        assert r.status_code == 201, r.text

    # the two reports completed their reads; the head CT is still to be read
    tasks = [e["resource"] for e in http.get("/fhir/Task", headers=county).json()["entry"]]
    assert sorted(t["status"] for t in tasks) == ["completed", "completed", "requested"]

    auditor = bearer(engine, "insurer", "system/DetectedIssue.rs", kind="auditor")
    r = http.get("/reports/remote-reading?from=2026-11&to=2026-11", headers=auditor)
    assert r.status_code == 200, r.text
    report = r.json()
    (row,) = report["rows"]
    assert (row["centre"], row["month"], row["requested"], row["reported"], row["pending"], row["overdue"]) == \
        (COUNTY, "2026-11", 3, 2, 1, 2)
    assert row["turnaround_hours"] == {"median": 7.5, "mean": 7.5, "max": 12.0}
    assert row["by_kind"] == {"CT": 2, "ECG": 1}
    late = {o["kind"]: o for o in report["overdue"]}
    assert set(late) == {"ECG", "CT"} and late["ECG"]["hours_late"] == 1.0
    assert late["ECG"]["reported"] == "2026-11-21T04:00:00Z" and late["CT"]["reported"] is None
    assert late["CT"]["order"] == f"ServiceRequest/{sent[2][1]}" and late["CT"]["due"] == "2026-11-23T02:00:00Z"
    # another centre has nothing; months are checked; hospitals' clients are not auditors
    assert http.get(f"/reports/remote-reading?centre={TOWN}", headers=auditor).json()["rows"] == []
    assert http.get("/reports/remote-reading?to=11-2026", headers=auditor).status_code == 400
    assert http.get("/reports/remote-reading", headers=town | {"Authorization": bearer(
        engine, "pacs", "system/Task.rs")["Authorization"]}).status_code == 403


STUDY_UID = "1.2.156.112605.14.20261120.80001"


def township_ct_order(control: str = "YL-ORM-1", order_control: str = "NW", placer: str = "RR-1") -> bytes:
    """The township's PACS asks the county's reading centre (MSH-6) to read its chest CT."""
    return ("\r".join([
        f"MSH|^~\\&|PACS|{TOWN}|RIS|{COUNTY}|20261120080500||ORM^O01^ORM_O01|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8",
        f"PID|1||{WANG}^^^公安部^NNCHN~YL100^^^{TOWN}^MR||王^建国||19850412|M",
        f"ORC|{order_control}|{placer}^PACS|||{'CA' if order_control == 'CA' else 'CM'}||||20261120080000",
        f"OBR|1|{placer}^PACS||CT001^胸部CT平扫^L|||20261120075000|||||||||||A-{placer}||||||CT",
        f"ZDS|{STUDY_UID}^PACS^Application^DICOM",
    ]) + "\r").encode("utf-8")


def centre_ct_report(control: str = "XR-ORU-1", status: str = "F") -> bytes:
    """The county centre's radiologist (OBR-32) reports it; ORC-21 names the ordering township."""
    orc = ["ORC", "RE", "RR-1^PACS", "XR-9^RIS", "", "CM"] + [""] * 3 + ["20261120200000"] + [""] * 11 \
        + [f"阜宁县益林镇中心卫生院^^^^^^^^^{TOWN}"]
    obr = ["OBR", "1", "RR-1^PACS", "XR-9^RIS", "CT001^胸部CT平扫^L", "", "", "20261120075000"] + [""] * 10 \
        + ["A-RR-1", "", "", "", "20261120200000", "", "CT", status] + [""] * 6 + ["D77&周&放射"]
    return ("\r".join([
        f"MSH|^~\\&|RIS|{COUNTY}|PACS|{TOWN}|20261120200500||ORU^R01^ORU_R01|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8",
        f"PID|1||{WANG}^^^公安部^NNCHN||王^建国||19850412|M",
        "|".join(orc), "|".join(obr),
        f"ZDS|{STUDY_UID}^RIS^Application^DICOM",
        "OBX|1|TX|IMP^印象^L||双肺未见明显异常||||||F|||20261120200000",
    ]) + "\r").encode("utf-8")


def test_hl7_reading_request_and_the_centres_report_share_one_order_and_study(engine: Engine, http: TestClient) -> None:
    county = bearer(engine, "ris-county")
    feed(http, engine, township_ct_order())
    (order,) = [e["resource"] for e in http.get("/fhir/ServiceRequest", headers=county).json()["entry"]]
    assert org(COUNTY) | {"display": "阜宁县人民医院"} in order["performer"]
    (task,) = [e["resource"] for e in http.get("/fhir/Task", params={"focus": f"ServiceRequest/{order['id']}"},
                                                 headers=county).json()["entry"]]
    assert task["code"]["coding"][0]["code"] == "remote-read" and task["status"] == "requested"
    assert task["owner"]["identifier"] == {"system": "urn:huren:institution", "value": COUNTY}
    assert task["authoredOn"] == "2026-11-20T08:00:00+08:00"
    (study,) = [e["resource"] for e in http.get("/fhir/ImagingStudy", headers=county).json()["entry"]]
    assert task["input"][0]["valueReference"] == {"reference": f"ImagingStudy/{study['id']}"}
    assert {"system": "urn:dicom:uid", "value": f"urn:oid:{STUDY_UID}"} in study["identifier"]
    # a re-sent order does not make a second read
    feed(http, engine, township_ct_order("YL-ORM-1b"))
    assert http.get("/fhir/Task", headers=county).json()["total"] == 1

    feed(http, engine, centre_ct_report())
    (report,) = [e["resource"] for e in http.get("/fhir/DiagnosticReport", headers=county).json()["entry"]]
    assert report["basedOn"] == [{"reference": f"ServiceRequest/{order['id']}"}]
    assert report["imagingStudy"] == [{"reference": f"ImagingStudy/{study['id']}"}]
    performer = http.get(f"/fhir/{report['performer'][0]['reference']}", headers=county).json()
    assert performer["identifier"][0]["value"] == COUNTY
    interpreter = http.get(f"/fhir/{report['resultsInterpreter'][0]['reference']}", headers=county).json()
    assert interpreter["name"][0]["family"] == "周" and report["conclusion"] == "双肺未见明显异常"
    # the township's order and study stay the township's: no copies under the centre's name
    assert [e["resource"]["id"] for e in http.get("/fhir/ServiceRequest", headers=county).json()["entry"]] == \
        [order["id"]]
    assert http.get("/fhir/ImagingStudy", headers=county).json()["total"] == 1
    assert http.get(f"/fhir/ServiceRequest/{order['id']}", headers=county).json()["meta"] == order["meta"]
    # recognisable as the centre's QC allows (the county passed CT; the township only CBC and UA)
    assert any(t["system"] == "urn:huren:hr-scope" for t in report["meta"].get("tag", [])), report["meta"]

    auditor = bearer(engine, "insurer", "system/DetectedIssue.rs", kind="auditor")
    (row,) = http.get("/reports/remote-reading?from=2026-11&to=2026-11", headers=auditor).json()["rows"]
    assert (row["centre"], row["requested"], row["reported"], row["pending"], row["by_kind"]) == \
        (COUNTY, 1, 1, 0, {"CT": 1})
    assert row["turnaround_hours"]["median"] == 12.0

    # the report completed the read
    done = http.get(f"/fhir/Task/{task['id']}", headers=county).json()
    assert done["status"] == "completed"
    assert done["output"] == [{"type": {"text": "report"},
                               "valueReference": {"reference": f"DiagnosticReport/{report['id']}"}}]
    # cancelling the order after the read was reported is refused: AE naming the Task, nothing changed
    r = http.post("/hl7v2", content=township_ct_order("YL-ORM-1c", "CA"),
                  headers=HL7 | bearer(engine, "gateway", "system/MessageHeader.c"))
    assert r.headers["x-hl7-ack-code"] == "AE" and "the remote read is reported" in r.text, r.text
    assert http.get(f"/fhir/Task/{task['id']}", headers=county).json()["status"] == "completed"
    assert http.get(f"/fhir/ServiceRequest/{order['id']}", headers=county).json()["status"] != "revoked"
    # a second order, cancelled before it is read, cancels its read
    feed(http, engine, township_ct_order("YL-ORM-2", placer="RR-2"))
    feed(http, engine, township_ct_order("YL-ORM-3", "CA", placer="RR-2"))
    statuses = sorted(e["resource"]["status"] for e in http.get("/fhir/Task", headers=county).json()["entry"])
    assert statuses == ["cancelled", "completed"]


def test_an_ordinary_imaging_order_is_no_reading_request(engine: Engine, http: TestClient) -> None:
    county = bearer(engine, "ris-county")
    feed(http, engine, township_ct_order().replace(f"|RIS|{COUNTY}|".encode(), b"|RIS|FUNING|"))
    assert http.get("/fhir/Task", headers=county).json()["total"] == 0
    (order,) = [e["resource"] for e in http.get("/fhir/ServiceRequest", headers=county).json()["entry"]]
    assert "performer" not in order


def ecg_order(receiving: str = "REMOTE-READ|FUNING") -> str:
    return "\r".join([
        f"MSH|^~\\&|ECG|{TOWN}|{receiving}|20261121090500||OMG^O19^OMG_O19|YL-OMG-1|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8",
        f"PID|1||{WANG}^^^公安部^NNCHN~YL100^^^{TOWN}^MR||王^建国||19850412|M",
        "ORC|NW|EC-1^ECG|||CM||||20261121090000",
        "OBR|1|EC-1^ECG||ECG01^十二导联心电图^L|||20261121085500",
        "IPC|ACC-EC-1|RP-1|1.2.156.112605.14.20261121.90001|SPS-1|ECG",
    ]) + "\r"


def test_a_site_whose_community_has_no_centre_keeps_the_order_and_says_why(tmp_path: Path) -> None:
    """A site's own remote_reading.yaml (HUREN_SITE/referral/) replaces the shipped one for the
    converter too: with no centre for the community, the reading application's order is stored as an
    ordinary order, with a warning naming MSH-5 and the file."""
    (tmp_path / "referral").mkdir()
    shipped = (DEFAULTS_DIR / "referral" / "remote_reading.yaml").read_text(encoding="utf-8")
    (tmp_path / "referral" / "remote_reading.yaml").write_text(
        shipped.replace("  funing: {default: FNXRMYY}", "  sheyang: {default: SYXRMYY}"), encoding="utf-8")
    site = Site.from_dirs(DEFAULTS_DIR, tmp_path)
    out = convert(parse(ecg_order()), site)
    assert not [r for r in out.resources if r["resourceType"] == "Task"]
    (warning,) = [w for w in out.warnings if "reading" in str(w)]
    assert "MSH-5" in str(warning) and "remote_reading.yaml" in str(warning)
    shipped_out = convert(parse(ecg_order()), Site.from_dirs(DEFAULTS_DIR))
    assert [r["resourceType"] for r in shipped_out.resources].count("Task") == 1


def test_an_omg_to_the_reading_application_goes_to_the_communitys_centre(engine: Engine, http: TestClient) -> None:
    """OMG^O19 addressed to the community (MSH-6 FUNING) and the reading application (MSH-5
    REMOTE-READ): the centre comes from the community's table; the IPC segment gives the accession,
    the Study Instance UID and the modality (an ECG tracing: a 2-hour target)."""
    county = bearer(engine, "ris-county")
    message = ecg_order()
    feed(http, engine, message.encode("utf-8"))
    (task,) = [e["resource"] for e in http.get("/fhir/Task", headers=county).json()["entry"]]
    assert task["owner"]["identifier"]["value"] == COUNTY and task["code"]["coding"][0]["code"] == "remote-read"
    study = http.get(f"/fhir/{task['input'][0]['valueReference']['reference']}", headers=county).json()
    assert study["modality"] == [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "ECG"}]
    assert {"system": "urn:dicom:uid", "value": "urn:oid:1.2.156.112605.14.20261121.90001"} in study["identifier"]
    (row,) = engine.referrals.reading.rows.find(None)
    assert (row["centre"], row["requester"], row["kind"], row["due"]) == (COUNTY, TOWN, "ECG", "2026-11-21T03:00:00Z")


def test_a_reading_request_and_its_report_in_one_ingest_batch(engine: Engine, http: TestClient) -> None:
    """The request and the centre's report arrive in the same batch (one transaction, the
    reading rows kept for the batch): the report ends the read and completes its Task as when
    they come one by one."""
    outcomes = engine.ingestor.process([(township_ct_order(), "file", "file:1"), (centre_ct_report(), "file", "file:2")])
    assert all(b"MSA|AA|" in o.ack for o in outcomes), [o.ack for o in outcomes]
    county = bearer(engine, "ris-county")
    (task,) = [e["resource"] for e in http.get("/fhir/Task", headers=county).json()["entry"]]
    (report,) = [e["resource"] for e in http.get("/fhir/DiagnosticReport", headers=county).json()["entry"]]
    assert task["status"] == "completed"
    assert task["output"] == [{"type": {"text": "report"},
                               "valueReference": {"reference": f"DiagnosticReport/{report['id']}"}}]
    auditor = bearer(engine, "insurer", "system/DetectedIssue.rs", kind="auditor")
    (row,) = http.get("/reports/remote-reading?from=2026-11&to=2026-11", headers=auditor).json()["rows"]
    assert (row["requested"], row["reported"], row["pending"]) == (1, 1, 0)
    assert row["turnaround_hours"]["median"] == 12.0
