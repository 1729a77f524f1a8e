"""Reviewer's probes of visitlast20 (rv-visitlast20): the reading centre's report on a township's
order (``Said.referred``, ``IdentityService.known_apart``). Real HL7 over POST /hl7v2, both
backends (the referral tests' ``engine``), FHIR reads over HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_referral_e2e import COUNTY, HL7, LI, WANG, bearer, engine

__all__ = ["engine"]


def _centre_report_as(pid_line: str) -> bytes:
    from tests.test_remote_reading import centre_ct_report

    lines = centre_ct_report().decode("utf-8").split("\r")
    return "\r".join(pid_line if ln.startswith("PID|") else ln for ln in lines).encode("utf-8")


def _run(engine: Engine, http: TestClient, pid_line: str) -> tuple[str, list[dict], dict, dict]:
    from tests.test_remote_reading import township_ct_order

    post = HL7 | bearer(engine, "gateway", "system/MessageHeader.c")
    assert http.post("/hl7v2", content=township_ct_order(), headers=post).headers["x-hl7-ack-code"] == "AA"
    got = http.post("/hl7v2", content=_centre_report_as(pid_line), headers=post)
    assert got.status_code < 500, got.text
    reader = bearer(engine, "reader", "system/*.read")
    reports = [e["resource"] for e in http.get("/fhir/DiagnosticReport", headers=reader).json().get("entry") or ()]
    (sr,) = [e["resource"] for e in http.get("/fhir/ServiceRequest", headers=reader).json()["entry"]]
    (task,) = [e["resource"] for e in http.get("/fhir/Task", headers=reader).json()["entry"]]
    return got.headers["x-hl7-ack-code"], reports, sr, task


def _linked(reports: list[dict], sr: dict) -> list[dict]:
    return [r for r in reports if {"reference": f"ServiceRequest/{sr['id']}"} in (r.get("basedOn") or ())
            and r["subject"] != sr["subject"]]


def test_centre_record_of_another_name_sex_and_birth_without_id_is_not_linked(
        engine: Engine, http: TestClient) -> None:
    """The centre's report under the township's order RR-1 (王建国, M, 1985-04-12, ID number) names
    李秀英, F, 1988-09-03, by the centre's MRN alone. Name, sex AND birth date all disagree (the
    index holds both records' demographics: ``demographics.conflicts_between``): a woman's CT report
    must not be linked to his order nor close his reading Task."""
    code, reports, sr, task = _run(engine, http, f"PID|1||XR55^^^{COUNTY}^MR||李^秀英||19880903|F")
    assert code == "AE" or not _linked(reports, sr), (code, _linked(reports, sr))
    assert task["status"] == "requested" or any(r["subject"] == task["for"] for r in reports), (task, reports)


def test_centre_record_with_townships_id_number_but_another_sex_and_birth_is_not_linked(
        engine: Engine, http: TestClient) -> None:
    """The centre's record carries 王建国's ID number but 李秀英/F/1988 -- the index puts it in
    ``conflict`` (never linked: the ID number encodes M, 1985-04-12). ``known_apart`` compares only
    the nid_keys (equal) and linked persons (the conflict has none): let through."""
    code, reports, sr, task = _run(engine, http, f"PID|1||{WANG}^^^公安部^NNCHN||李^秀英||19880903|F")
    assert code == "AE" or not _linked(reports, sr), (code, _linked(reports, sr))


def test_centre_record_without_id_same_demographics_still_links(engine: Engine, http: TestClient) -> None:
    """Guard: the centre's MRN-only record of 王建国 (same name, sex, birth date) is the referral's
    patient: accepted and linked to the township's order."""
    code, reports, sr, task = _run(engine, http, f"PID|1||XR55^^^{COUNTY}^MR||王^建国||19850412|M")
    assert code in ("AA", "AE")
    assert code == "AA", reports
    assert any({"reference": f"ServiceRequest/{sr['id']}"} in (r.get("basedOn") or ()) for r in reports)


def test_centre_report_with_an_invalid_id_number_of_another_person(engine: Engine, http: TestClient) -> None:
    """LI's ID number mistyped (invalid check digit) and her demographics: PID-3 error as anywhere."""
    bad = LI[:-1] + ("0" if LI[-1] != "0" else "1")
    code, reports, sr, task = _run(engine, http, f"PID|1||{bad}^^^公安部^NNCHN||李^秀英||19880903|F")
    assert code == "AE" or not _linked(reports, sr), (code, _linked(reports, sr))



def test_the_township_patient_is_not_shown_another_womans_report(engine: Engine, http: TestClient) -> None:
    """Privacy through the resident's view: after the centre's report of 李秀英 (MRN-only, F, 1988)
    is linked under 王建国's order, 王建国 reading his own records ($everything, his Task, the
    referral's reports) must not be given her findings."""
    from tests.test_remote_reading import township_ct_order

    post = HL7 | bearer(engine, "gateway", "system/MessageHeader.c")
    assert http.post("/hl7v2", content=township_ct_order(), headers=post).headers["x-hl7-ack-code"] == "AA"
    msg = _centre_report_as(f"PID|1||XR55^^^{COUNTY}^MR||李^秀英||19880903|F").replace(
        "双肺未见明显异常".encode(), "宫内早孕-李秀英所见".encode())
    got = http.post("/hl7v2", content=msg, headers=post)
    assert got.status_code < 500, got.text
    reader = bearer(engine, "reader", "system/*.read")
    (sr,) = [e["resource"] for e in http.get("/fhir/ServiceRequest", headers=reader).json()["entry"]]
    wang = sr["subject"]["reference"].removeprefix("Patient/")
    token, _ = engine.auth.issue_token(subject=f"person-{wang}", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=wang)
    me = {"Authorization": f"Bearer {token}"}
    seen = []
    for path in ("/fhir/DiagnosticReport", "/fhir/Observation", "/fhir/Task", f"/fhir/Patient/{wang}/$everything",
                 f"/fhir/ServiceRequest/{sr['id']}/$summary"):
        r = http.get(path, headers=me)
        assert r.status_code < 500, (path, r.text)
        if "宫内早孕" in r.text or "李秀英" in r.text or "秀英" in r.text:
            seen.append(path)
    assert not seen, (got.headers["x-hl7-ack-code"], seen)


def test_township_patient_without_id_and_centre_record_of_a_known_other_person(
        engine: Engine, http: TestClient) -> None:
    """The township sends its order with its MRN alone (王建国, M, 1985); the centre's report names
    李秀英 by her valid ID number (F, 1988: a linked person of the index). ``known_apart`` needs BOTH
    records to carry a number or a person: the township's has neither, so a known other person's
    report is linked to his order and closes his Task."""
    from tests.test_remote_reading import township_ct_order

    post = HL7 | bearer(engine, "gateway", "system/MessageHeader.c")
    order = township_ct_order().replace(f"{WANG}^^^公安部^NNCHN~".encode(), b"")
    assert http.post("/hl7v2", content=order, headers=post).headers["x-hl7-ack-code"] == "AA"
    got = http.post("/hl7v2", content=_centre_report_as(f"PID|1||{LI}^^^公安部^NNCHN||李^秀英||19880903|F"),
                    headers=post)
    assert got.status_code < 500, got.text
    reader = bearer(engine, "reader", "system/*.read")
    reports = [e["resource"] for e in http.get("/fhir/DiagnosticReport", headers=reader).json().get("entry") or ()]
    (sr,) = [e["resource"] for e in http.get("/fhir/ServiceRequest", headers=reader).json()["entry"]]
    (task,) = [e["resource"] for e in http.get("/fhir/Task", headers=reader).json()["entry"]]
    assert got.headers["x-hl7-ack-code"] == "AE" or not _linked(reports, sr), (task["status"], _linked(reports, sr))


def test_centre_record_an_operator_took_out_of_the_person_is_not_linked(engine: Engine, http: TestClient) -> None:
    """The centre's record XR55 carries 王建国's ID number; an operator took it out of his person
    (``identity unlink``, "not the same person": someone else was seen on his card). The centre's
    report under his order for XR55 is not his: ``known_apart`` reads only ``apart`` (set by an
    unmerge), equal nid_keys and linked persons -- an unlinked record passes."""
    from tests.test_remote_reading import township_ct_order

    post = HL7 | bearer(engine, "gateway", "system/MessageHeader.c")
    assert http.post("/hl7v2", content=township_ct_order(), headers=post).headers["x-hl7-ack-code"] == "AA"
    pid_line = f"PID|1||{WANG}^^^公安部^NNCHN~XR55^^^{COUNTY}^MR||王^建国||19850412|M"
    adt = ("\r".join([f"MSH|^~\\&|HIS|{COUNTY}|HUREN|C1|20261119080000||ADT^A04^ADT_A01|XR-A04|P|2.5.1|||AL|NE|CHN"
                      "|UNICODE UTF-8", "EVN|A04|20261119080000", pid_line, "PV1|1|O|||||||||||||||||XV1"]) + "\r")
    made = http.post("/hl7v2", content=adt.encode("utf-8"), headers=post)
    assert made.headers["x-hl7-ack-code"] == "AA", made.text
    reader = bearer(engine, "reader", "system/*.read")
    centre = [e["resource"]["id"] for e in http.get("/fhir/Patient", headers=reader).json()["entry"]
              if any(i.get("value") == "XR55" for i in e["resource"].get("identifier", ()))]
    (xr55,) = centre
    engine.identity.unlink(xr55, actor="op", reason="not the same person")
    got = http.post("/hl7v2", content=_centre_report_as(pid_line), headers=post)
    assert got.status_code < 500, got.text
    reports = [e["resource"] for e in http.get("/fhir/DiagnosticReport", headers=reader).json().get("entry") or ()]
    (sr,) = [e["resource"] for e in http.get("/fhir/ServiceRequest", headers=reader).json()["entry"]]
    entry = engine.identity.links.get(xr55) or {}
    assert entry.get("status") == "unlinked" and not engine.identity.same_person(xr55, sr["subject"]["reference"][8:])
    assert got.headers["x-hl7-ack-code"] == "AE" or not _linked(reports, sr), _linked(reports, sr)
