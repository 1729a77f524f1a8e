"""The reviewer's probes of visitmend20 (rv-visitmend20), the reading centre's link, kept by
visitlast20: real HL7 over POST /hl7v2, both backends (the referral tests' ``engine``). Both fail on
52f88f2: the centre's report naming another person (another ID number) under the township's order
number was linked to his order and closed his reading Task."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_referral_e2e import engine

__all__ = ["engine"]


def test_centre_report_of_another_person_on_the_township_order_is_refused(engine: Engine, http: TestClient) -> None:
    """The township orders a CT for 王建国 (RR-1); the county reading centre's report comes back
    under RR-1 naming 李秀英 -- another PERSON by ID number. ``link_report`` unsays the moved order's
    subject, so nothing asks whether the report's patient is the order's: her report would be
    linked to his order (basedOn) and his reading Task/order taken as answered."""
    from tests.test_referral_e2e import HL7, LI, bearer
    from tests.test_remote_reading import centre_ct_report, township_ct_order

    post = HL7 | bearer(engine, "gateway", "system/MessageHeader.c")
    order = http.post("/hl7v2", content=township_ct_order(), headers=post)
    assert order.headers["x-hl7-ack-code"] == "AA", order.text
    lines = centre_ct_report().decode("utf-8").split("\r")
    other = "\r".join(f"PID|1||{LI}^^^公安部^NNCHN||李^秀英||19880903|F" if ln.startswith("PID|") else ln
                      for ln in lines).encode("utf-8")
    got = http.post("/hl7v2", content=other, headers=post)
    assert got.status_code < 500, got.text
    reader = bearer(engine, "reader", "system/*.read")
    reports = [e["resource"] for e in http.get("/fhir/DiagnosticReport", headers=reader).json().get("entry") or ()]
    (sr,) = [e["resource"] for e in http.get("/fhir/ServiceRequest", headers=reader).json()["entry"]]
    linked = [r for r in reports if {"reference": f"ServiceRequest/{sr['id']}"} in (r.get("basedOn") or ())
              and r["subject"] != sr["subject"]]
    assert got.headers["x-hl7-ack-code"] == "AE" or not linked, (got.text, linked)


def test_another_persons_report_does_not_close_the_townships_reading_task(engine: Engine, http: TestClient) -> None:
    """The township's remote-read Task for 王建国 stays open while no report of HIS is stored: a
    report naming 李秀英 (another person by ID number) under his order must not complete it."""
    from tests.test_referral_e2e import HL7, LI, bearer
    from tests.test_remote_reading import centre_ct_report, township_ct_order

    post = HL7 | bearer(engine, "gateway", "system/MessageHeader.c")
    assert http.post("/hl7v2", content=township_ct_order(), headers=post).headers["x-hl7-ack-code"] == "AA"
    reader = bearer(engine, "reader", "system/*.read")
    (task,) = [e["resource"] for e in http.get("/fhir/Task", headers=reader).json()["entry"]]
    assert task["status"] == "requested", task
    lines = centre_ct_report().decode("utf-8").split("\r")
    other = "\r".join(f"PID|1||{LI}^^^公安部^NNCHN||李^秀英||19880903|F" if ln.startswith("PID|") else ln
                      for ln in lines).encode("utf-8")
    got = http.post("/hl7v2", content=other, headers=post)
    assert got.status_code < 500, got.text
    (task,) = [e["resource"] for e in http.get("/fhir/Task", headers=reader).json()["entry"]]
    reports = [e["resource"] for e in http.get("/fhir/DiagnosticReport", headers=reader).json().get("entry") or ()]
    assert task["status"] == "requested" or any(r["subject"] == task["for"] for r in reports), (task, reports)
