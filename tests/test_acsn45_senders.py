"""A report records the application that numbered its bare filler number (forty-fifth round, acsn45).

One hospital (阜宁县人民医院) runs several fillers, each counting by date: the RIS numbers its CT exams' accessions,
the ultrasound system (USIS) its own exams, and the values meet. A report under a bare OBR-3 now records its sender
as ``DiagnosticReport.identifier.assigner`` (MSH-3; none behind a listed relay), the recorded one kept
(``settle_assigners``: recorded > defaulted > none), and another application's own report under the same value is
filed apart only where the stored report's recorded sender is known and another application
(``adapters.convert._own_space``). Where it is not known -- a report stored before this round, or one a relay
forwarded -- it is judged exactly as before.

HL7 v2.5.1 in the hospital's style, real bytes through ``POST /hl7v2`` and FHIR PUTs into one engine a backend
(acsn43d's site: the shipped one, ``ESB`` a listed relay of FNXRMYY), each test under record, order and accession
numbers and control ids of its own (``module_store.Names`` refuses IPC-1, which it cannot rename), read back over
``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from tests.hl7_calls import err_lines, post
from tests.test_acsn43_accession import _omi, _order, _orders_of, _report
from tests.test_acsn43b_assigner import _based_on, _us
from tests.test_acsn43d_assigner import relayed  # noqa: F401 -- the relay site's engine, each backend
from tests.test_acsn44_numbers import _lis, _reports
from tests.test_rv43e_probes import _as, _assigners

AT_OBR3 = [["OBR^1^3", "205^Duplicate key identifier^HL70357"]]


def _acks(http: TestClient, message: str) -> tuple[str, list[list[str]]]:
    ack = post(http, message)
    return ack_code_of(ack), [e.split("|")[2:4] for e in err_lines(ack)]


def _senders(http: TestClient, order: dict[str, Any]) -> list[str | None]:
    """The recorded senders of the reports based on ``order`` (their identifiers' assigners, as sent)."""
    found = http.get("/fhir/DiagnosticReport", params={"based-on": f"ServiceRequest/{order['id']}"}).json()
    return [((i.get("assigner") or {}).get("identifier") or {}).get("value")
            for e in found.get("entry") or () for i in e["resource"]["identifier"]]


def _stored_before(http: TestClient, order: dict[str, Any]) -> None:
    """``order``'s one report as a release before acsn45 stored it: a FHIR PUT of it with no identifier's assigner
    (no sender recorded), answered 200."""
    found = http.get("/fhir/DiagnosticReport", params={"based-on": f"ServiceRequest/{order['id']}"}).json()
    (report,) = [{k: v for k, v in e["resource"].items() if k not in ("meta", "text")} for e in found["entry"]]
    report["identifier"] = [{k: v for k, v in i.items() if k != "assigner"} for i in report["identifier"]]
    assert http.put(f"/fhir/DiagnosticReport/{report['id']}", json=report).status_code == 200


def _ct_and_report(http: TestClient, tag: str, number: str) -> dict[str, Any]:
    """The RIS's OMI (head CT, accession ``number``; record ``<tag>``, placer ``<tag>P``, controls ``<tag>1``, ``2``)
    and its report by the accession alone: the CT order."""
    omi = _omi(f"{tag}1", tag, f"{tag}P", number, "20261206090000", f"1.2.156.4545.{number[-1]}")
    assert _acks(http, omi) == ("AA", [])
    assert _acks(http, _report(f"{tag}2", tag, number, "20261206093000", "F", "未见异常", "20261206110000")) == ("AA", [])
    return _order(http, f"{tag}P")


def test_a_relays_resend_erases_no_recorded_sender(relayed: TestClient) -> None:
    """The RIS's report records RIS; the relay re-sending it (ESB: no sender of its own) leaves RIS recorded --
    the identifiers union takes the incoming entry, and the thinner one had erased it -- so the ultrasound
    system's own report under its own bare number of the value is still its own (AA, its own order), the CT
    order's one report as the RIS stated it."""
    tag, number = "ACSN45A", "20261206001"
    ct = _ct_and_report(relayed, tag, number)
    assert _senders(relayed, ct) == ["RIS"]
    again = _as("ESB", _report(f"{tag}3", tag, number, "20261206093000", "F", "未见异常", "20261206110000"))
    assert _acks(relayed, again) == ("AA", [])
    assert _senders(relayed, ct) == ["RIS"]
    assert _acks(relayed, _us(f"{tag}4", tag, number)) == ("AA", [])
    assert _based_on(relayed, ct) == ["未见异常"]
    (own,) = [o for o in _orders_of(relayed, ct["subject"]["reference"]) if o["id"] != ct["id"]]
    assert _based_on(relayed, own) == ["肝胆脾未见异常"] and _senders(relayed, own) == ["USIS"]


def test_a_report_stored_before_is_judged_as_before_until_its_sender_restates_it(relayed: TestClient) -> None:
    """A report stored before this round records no sender (here a FHIR PUT stripping it): nothing says whose its
    number is, so the ultrasound's own report under the value is refused AE 205 at OBR-3 as before (raw kept).
    Nothing is migrated: the RIS's next message filed as that report records RIS (defaulted over none), and from
    then the ultrasound's report is its own (AA)."""
    tag, number = "ACSN45B", "20261206002"
    ct = _ct_and_report(relayed, tag, number)
    _stored_before(relayed, ct)
    assert _senders(relayed, ct) == [None]
    assert _acks(relayed, _us(f"{tag}3", tag, number)) == ("AE", AT_OBR3)
    assert _acks(relayed, _report(f"{tag}4", tag, number, "20261206093000", "F", "未见异常",
                                         "20261206110000")) == ("AA", [])
    assert _senders(relayed, ct) == ["RIS"]
    assert _acks(relayed, _us(f"{tag}5", tag, number)) == ("AA", [])
    assert _based_on(relayed, ct) == ["未见异常"]


def test_a_report_the_relay_forwards_is_judged_as_before(relayed: TestClient) -> None:
    """Guard: the ultrasound's report forwarded by the relay (ESB) names no sender, so over the RIS's report it is
    judged as before -- refused AE 205 at OBR-3, the CT report left as it was."""
    tag, number = "ACSN45C", "20261206003"
    ct = _ct_and_report(relayed, tag, number)
    assert _acks(relayed, _us(f"{tag}3", tag, number, app="ESB")) == ("AE", AT_OBR3)
    assert _based_on(relayed, ct) == ["未见异常"]
    assert [o["id"] for o in _orders_of(relayed, ct["subject"]["reference"])] == [ct["id"]]


def test_another_patients_report_of_another_application_is_its_own(relayed: TestClient) -> None:
    """The RIS's report of her head CT under its accession, then the ultrasound system's own report of another
    patient under its own bare number of the same value: another application's number, so no restatement of the
    CT report -- filed as his (AA), where the subject rule had refused it (AE); each patient her own report."""
    tag, number = "ACSN45D", "20261206004"
    ct = _ct_and_report(relayed, tag, number)
    his = _us(f"{tag}3", tag, number).replace(f"{tag}^^^FNXRMYY^MR||孙^丙||19700109|M", f"{tag}N^^^FNXRMYY^MR||赵^丁||19800302|M")
    assert _acks(relayed, his) == ("AA", [])
    assert _based_on(relayed, ct) == ["未见异常"]
    found = relayed.get("/fhir/Patient", params={"identifier": f"{tag}N"}).json()
    (patient,) = [e["resource"] for e in found["entry"]]
    (own,) = _orders_of(relayed, f"Patient/{patient['id']}")
    assert _based_on(relayed, own) == ["肝胆脾未见异常"]


def test_a_forwarded_copy_of_the_stored_reports_test_is_that_report(relayed: TestClient) -> None:
    """The LIS's potassium under its bare specimen number (its order made by the report), then a middleware the site
    has not listed as a relay (MSH-3 LISMW) forwarding the same report: coded as the stored report's test, it is
    that exam's report restated -- one report, no second one of its own (judged as before, AA) -- though its
    recorded sender is another application's."""
    tag, number = "ACSN45E", "20261206005"
    lis = _lis(f"{tag}1", tag, number)
    assert _acks(relayed, lis) == ("AA", [])
    forwarded = lis.replace("MSH|^~\\&|LIS|", "MSH|^~\\&|LISMW|", 1).replace(f"|{tag}1|", f"|{tag}2|")
    assert _acks(relayed, forwarded) == ("AA", [])
    found = relayed.get("/fhir/Patient", params={"identifier": tag}).json()
    (patient,) = [e["resource"] for e in found["entry"]]
    (order,) = _orders_of(relayed, f"Patient/{patient['id']}")
    assert len(_reports(relayed, order)) == 1 and _senders(relayed, order) == ["LIS"]


def test_a_relays_report_stating_the_accession_keeps_the_orders_assigner(relayed: TestClient) -> None:
    """Guard: the relay forwarding the RIS's report with the accession in OBR-18 too (no assigner: a relay numbers
    nothing) names the CT order (coded as its test) and the order keeps RIS as the accession's assigner -- the
    report's order is adopted as the CT order (``adopt_filled``), and what ``settle_assigners`` reads moves with it
    (``_take``)."""
    tag, number = "ACSN45F", "20261206006"
    ct = _ct_and_report(relayed, tag, number)
    assert _assigners(ct) == ["RIS"]
    report = _report(f"{tag}3", tag, number, "20261206093000", "F", "未见异常", "20261206110000")
    segments = report.split("\r")
    obr = segments[2].split("|")
    obr[18] = number  # (OBR-18, the accession as placer field 1)
    forwarded = _as("ESB", "\r".join([*segments[:2], "|".join(obr), *segments[3:]]))
    assert _acks(relayed, forwarded) == ("AA", [])
    ct = _order(relayed, f"{tag}P")
    assert _assigners(ct) == ["RIS"] and _based_on(relayed, ct) == ["未见异常"]
