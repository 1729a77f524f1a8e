"""rv43b's probes (forty-third round review): real bytes through the real path, both backends where it matters.

A probe showing a defect is a STRICT xfail naming its severity; one that passes guards a rule worth guarding."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_httpfix41b_reasons import _one_flag
from tests.test_httpfix41b_reasons import store as store  # noqa: F401 -- an engine of its own on each backend

# --- (2) reviews: another writer of the flag row racing a review -------------------------------------------------


def _system(engine: Engine) -> dict[str, str]:
    return {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}


def test_a_review_stored_while_ingest_decides_the_flag_again_is_kept(
        store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A review answered 200 while the hospital's system re-sends the repeat's report (the flag decided again by
    the recognition hook, which read the flag row before the review and replaces it after) must still be on the
    flag and on its DetectedIssue. (rv43b HIGH 2, strict xfail on mongomock until flag44: every flag writer a
    compare-and-set on the ``reviewed`` count, the hook's decision redone from the row as stored when it loses.)"""
    with TestClient(create_app(store)) as http:
        auditor, flag = _one_flag(store, http)
        first = http.post(f"/reports/duplicates/{flag}/review", json={"decision": "upheld", "reason": "属实"},
                          headers=auditor)
        assert first.status_code == 200, first.text
        row = store.recognition.flags.get(flag)
        rtype, rid = row["result"].split("/", 1)
        system = _system(store)
        report = http.get(f"/fhir/{rtype}/{rid}", headers=system).json()
        report = {k: v for k, v in report.items() if k not in ("meta", "text")}
        report["conclusion"] = "复核后无变化"  # a restatement of the repeat: the hook decides its flag again

        flags = store.recognition.flags
        at_write, go = threading.Event(), threading.Event()
        ingest = threading.current_thread().ident

        def held(write: Any) -> Any:
            def call(doc: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
                if threading.get_ident() != ingest and flag in (doc.get("_id"), doc.get("id")) and not at_write.is_set():
                    at_write.set()
                    go.wait(30)
                return write(doc, *args, **kwargs)
            return call

        monkeypatch.setattr(flags.coll, "replace", held(flags.coll.replace))
        # (flag44: a decision that changed nothing writes no row -- the hook is held at its DetectedIssue's write
        # instead, after its read of the flag and before its end-of-group compare-and-set, which then loses)
        monkeypatch.setattr(store.recognition, "_write_issue", held(store.recognition._write_issue))
        answers: list[int] = []

        def resend() -> None:
            with TestClient(create_app(store)) as own:
                answers.append(own.put(f"/fhir/{rtype}/{rid}", json=report, headers=system).status_code)

        t = threading.Thread(target=resend)
        t.start()
        reached = at_write.wait(30)
        reviewed: list[Any] = []

        def review() -> None:  # (on SQLite it waits for the ingest's BEGIN IMMEDIATE: let go after a moment)
            with TestClient(create_app(store)) as own:
                reviewed.append(own.post(f"/reports/duplicates/{flag}/review",
                                         json={"decision": "overturned", "reason": "有临床理由"}, headers=auditor))

        r = threading.Thread(target=review)
        r.start()
        r.join(2)
        go.set()
        r.join(60)
        t.join(60)
        assert reached, "the re-sent report never rewrote the flag row"
        assert [x.status_code for x in reviewed] == [200], [x.text for x in reviewed]
        assert answers == [200], answers
        kept = store.recognition.flags.get(flag)
        issue = http.get(f"/fhir/DetectedIssue/{flag}", headers=auditor).json()
        said = [m["action"]["text"] for m in issue["mitigation"] if "date" in m]
        assert ([r["reason"] for r in kept.get("reviews") or ()], kept["status"], said, issue["status"]) == \
            (["属实", "有临床理由"], "overturned", ["属实", "有临床理由"], "cancelled")



def test_a_review_whose_issue_write_lost_the_race_keeps_the_other_review(
        store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Two auditors: A's flag write is stored, then B's review is stored whole (flag and DetectedIssue, 200), then
    A's DetectedIssue write finds the issue B wrote meanwhile (``WrittenMeanwhile``, which ``Reviews.review``
    catches to read again and retry). Both reviews must be kept: B was answered 200. (rv43b HIGH 3: A's block had
    been undone in place, its flag row of before put back over B's review; the lead's mend writes the issue again
    inside the block.)"""
    if getattr(store.store, "transactions", True) is not False:
        pytest.skip("MongoDB without transactions: a block undone in place (SQLite orders the two reviews)")
    with TestClient(create_app(store)) as http:
        auditor, flag = _one_flag(store, http)
        fhir = store.store.fhir
        original = fhir._replace_current
        held_a, b_done = threading.Event(), threading.Event()
        a_thread: list[int] = []

        def replace_current(key: str, *args: Any, **kwargs: Any) -> Any:
            if flag in key and not held_a.is_set() and (not a_thread or a_thread[0] == threading.get_ident()):
                a_thread.append(threading.get_ident())
                held_a.set()
                b_done.wait(30)  # A read the issue's version; B writes it meanwhile
            return original(key, *args, **kwargs)

        monkeypatch.setattr(fhir, "_replace_current", replace_current)
        answers: dict[str, int] = {}

        def send(who: str, decision: str, reason: str) -> None:
            with TestClient(create_app(store)) as own:
                answers[who] = own.post(f"/reports/duplicates/{flag}/review",
                                        json={"decision": decision, "reason": reason}, headers=auditor).status_code

        a = threading.Thread(target=send, args=("A", "upheld", "属实"))
        a.start()
        assert held_a.wait(30), "A never wrote the DetectedIssue"
        b = threading.Thread(target=send, args=("B", "overturned", "有临床理由"))
        b.start()
        b.join(60)
        b_done.set()
        a.join(60)
        assert answers == {"A": 200, "B": 200}, answers
        kept = store.recognition.flags.get(flag)
        issue = http.get(f"/fhir/DetectedIssue/{flag}", headers=auditor).json()
        said = [m["action"]["text"] for m in issue["mitigation"] if "date" in m]
        assert sorted(r["reason"] for r in kept.get("reviews") or ()) == sorted(["有临床理由", "属实"]), (
            kept.get("reviews"), said)
        assert said == [r["reason"] for r in kept["reviews"]], said


# --- (1) acsn43: a report by the accession alone -------------------------------------------------------------------

from adapters.hl7v2.ack import ack_code_of  # noqa: E402
from tests import test_acsn43_accession as acc  # noqa: E402
from tests.hl7_calls import err_lines, post  # noqa: E402
from tests.module_store import module_eng  # noqa: E402,F401 -- the module's engine, on each backend


@pytest.fixture(scope="module")
def http(module_eng: Engine) -> Any:  # noqa: F811
    with TestClient(create_app(module_eng)) as client:
        client.headers["Authorization"] = "Bearer " + module_eng.auth.issue_system_token("rv43b", "system/*.cruds")
        yield client


def _us_report(control: str, mrn: str, number: str, app: str = "USIS") -> str:
    """Another imaging filler of the same hospital (the ultrasound department's own system, OBR-24 US) reporting
    its exam by its own filler number alone (OBR-3), a date-based counter like the RIS's."""
    return (acc.HDR.format(app=app, stamp="20261201110000", kind="ORU^R01^ORU_R01", control=control)
            + f"PID|1||{mrn}^^^FNXRMYY^MR||孙^丙||19700109|M\r"
            f"OBR|1||{number}^{app}|US001^腹部彩超^L|||20261201100000|||||||||||||||20261201110000||US|F\r"
            "OBX|1|TX|US001^腹部彩超^L||肝胆脾未见异常||||||F|||20261201110000\r")


def _reports_on(http: TestClient, order_id: str) -> list[dict[str, Any]]:
    found = http.get("/fhir/DiagnosticReport", params={"based-on": f"ServiceRequest/{order_id}"}).json()
    return [e["resource"] for e in found.get("entry") or ()]


def test_another_imaging_fillers_number_equal_to_a_ct_accession_is_not_the_ct_order(http: TestClient) -> None:
    mrn, number = "RV43BU", "20261201007"
    assert ack_code_of(post(http, acc._omi("RV43BU1", mrn, "RV43BPU", number, "20261201090000",
                                           "1.2.156.4343.901"))) == "AA"
    ack = post(http, _us_report("RV43BU2", mrn, number))
    assert ack_code_of(ack) == "AA", ack
    ct = acc._order(http, "RV43BPU")
    assert _reports_on(http, ct["id"]) == [], "the ultrasound report was filed on the CT order"
    assert [i["value"] for i in ct["identifier"] if acc._kind(i) == "FILL"] == [], ct


def test_another_patients_order_holding_the_accession_never_takes_her_report(http: TestClient) -> None:
    """Guard: the accession names an order of this patient only -- another patient's CT holding it is left alone."""
    number = "RV43B-ACC-OTHER"
    assert ack_code_of(post(http, acc._omi("RV43BO1", "RV43BOA", "RV43BPO", number, "20261201090000",
                                           "1.2.156.4343.902"))) == "AA"
    ack = post(http, acc._report("RV43BO2", "RV43BOB", number, "20261201093000", "F", "未见异常", "20261201110000"))
    assert ack_code_of(ack) == "AA", ack
    theirs = acc._order(http, "RV43BPO")
    assert _reports_on(http, theirs["id"]) == []
    assert [i["value"] for i in theirs["identifier"] if acc._kind(i) == "FILL"] == [], theirs


def test_a_report_coded_as_another_test_by_a_lis_number_equal_to_the_accession_is_its_own(http: TestClient) -> None:
    """Guard (acsn43's own LIS case, one by one AND in one batch with the OMI): a LIS number equal to the CT's
    accession, coded as another test, never names the CT order."""
    mrn, number = "RV43BL", "RV43B-20261201001"
    omi = acc._omi("RV43BL1", mrn, "RV43BPL", number, "20261201090000", "1.2.156.4343.903")
    lis = (acc.HDR.format(app="LIS", stamp="20261201100000", kind="ORU^R01^ORU_R01", control="RV43BL2")
           + f"PID|1||{mrn}^^^FNXRMYY^MR||孙^丙||19700109|M\r"
           f"OBR|1||{number}|K^钾^L|||20261201083000||||||||BLD|||||||20261201091000|||F\r"
           "OBX|1|NM|K^钾^L||4.1|mmol/L|3.5-5.5|N|||F|||20261201083000\r")
    ack = post(http, "FHS|^~\\&|RIS|FNXRMYY\rBHS|^~\\&|RIS|FNXRMYY\r" + omi + lis + "BTS|2\rFTS|1\r")
    assert ack.count(b"MSA|AA|") == 2 and err_lines(ack) == [], ack
    ct = acc._order(http, "RV43BPL")
    assert _reports_on(http, ct["id"]) == []


# --- (1) acsn43: RGV^O15 gives -------------------------------------------------------------------------------------

from tests import test_acsn43_give as give  # noqa: E402


def _dispenses_of(http: TestClient, mrn: str) -> list[dict[str, Any]]:
    found = http.get("/fhir/Patient", params={"identifier": mrn}).json()
    (patient,) = [e["resource"] for e in found.get("entry") or ()]
    found = http.get("/fhir/MedicationDispense", params={"subject": f"Patient/{patient['id']}", "_count": 50}).json()
    return [e["resource"] for e in found.get("entry") or ()]


def test_three_gives_each_keep_their_own_observation(http: TestClient) -> None:
    """Three gives, the second without an OBX: the first's and third's OBX are part of their own dispense."""
    msg = give._rgv("RV43BG1", "RV43BG", "RV43BRX1").replace(
        "RXG|2|", "RXG|3|").replace(
        "OBX|1|ST|SKIN", "RXG|2||^ONCE^^20261201140000^^R|CN-CEF^头孢呋辛钠注射液^L|1.5||g^克^UCUM\r"
                         "TQ1|1||ONCE||||20261201140000\rRXR|IV^静脉注射^HL70162\rOBX|1|ST|SKIN", 1)
    # (the skin test now follows the second give: move it back after the first)
    msg = msg.replace("RXR|IV^静脉注射^HL70162\rRXG|2||", "RXR|IV^静脉注射^HL70162\rOBX|1|ST|SKIN^皮试^L||阴性||||||F|||"
                      "20261201075000\rRXG|2||", 1).replace(
        "RXR|IV^静脉注射^HL70162\rOBX|1|ST|SKIN^皮试^L||阴性||||||F|||20261201075000\rRXG|3", "RXR|IV^静脉注射^HL70162\rRXG|3")
    ack = post(http, msg)
    assert ack_code_of(ack) == "AA", ack
    by_start = {d["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"][11:16]: d
                for d in _dispenses_of(http, "RV43BG")}
    assert sorted(by_start) == ["08:00", "14:00", "20:00"], sorted(by_start)
    parts: dict[str, list[str]] = {}
    found = http.get("/fhir/Observation", params={"subject": by_start["08:00"]["subject"]["reference"]}).json()
    for o in (e["resource"] for e in found.get("entry") or ()):
        (part,) = o["partOf"]
        parts.setdefault(part["reference"], []).append(o["code"]["coding"][0]["code"])
    assert parts == {f"MedicationDispense/{by_start['08:00']['id']}": ["SKIN"],
                     f"MedicationDispense/{by_start['20:00']['id']}": ["DRIP"]}, parts


def test_two_gives_without_a_sub_id_are_two_dispenses(http: TestClient) -> None:
    msg = give._rgv("RV43BG2", "RV43BG2", "RV43BRX2").replace("RXG|1|", "RXG||").replace("RXG|2|", "RXG||")
    """Guard: RXG-1 (give sub-ID counter) is optional in v2.5.1 -- two gives leaving it empty stay two dispenses."""
    ack = post(http, msg)
    assert ack_code_of(ack) == "AA", ack
    assert len(_dispenses_of(http, "RV43BG2")) == 2, _dispenses_of(http, "RV43BG2")
