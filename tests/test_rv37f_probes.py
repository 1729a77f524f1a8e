"""rv37f: probes of link37 (reports stored ahead of their results, the reports kept on each
Observation's entry, the once-per-store ``report_days_once`` pass).

Real HL7 v2 over ``POST /hl7v2`` and FHIR over TestClient into the real store, SQLite and mongomock.
A probe that shows a defect is a strict xfail naming its severity; the others guard what was found sound.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import engine.recognition.upgrade as upgrade
from adapters.convert import convert
from adapters.hl7v2.parser import parse
from engine.engine import Engine
from engine.recognition.index import LISTED_AHEAD
from engine.recognition.upgrade import LAYOUT, REPORT_DAYS, report_days_once
from engine.settings import Settings
from tests.test_evid35_linking import order_ref, prior
from tests.test_evidence33_pairs import ALT, AST, LFT, LOCAL_LFT, B, http, obx, send  # noqa: F401 (``http``: the fixture)
from tests.test_link37_links import copied_alt, entry, report, together
from tests.test_link37_upgrade import after_midnight_panel, as_an_earlier_release_left_it, flagged
from tests.test_linkfix35_relink import FHIR, ORDER_AT, live
from tests.test_probepay26_windows import order, result
from tests.test_relink36_link import OTHER, linked_b1, outcome, report_of


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


def notes(engine: Engine) -> list[dict[str, Any]]:
    return engine.store.collection(LISTED_AHEAD).find({})


def test_rv37f_the_note_of_a_deleted_report_goes_with_it(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """A FHIR client's report lists an Observation not stored yet: noted. The report is then deleted and
    the Observation never comes: nothing is left to say about it, the note should be gone (it is kept)."""
    b1, _alt, about = copied_alt(engine, http)
    assert http.put("/fhir/DiagnosticReport/rv37f-r2", json=report("rv37f-r2", "肝功能", about, b1),
                    headers=FHIR).status_code == 201
    assert [n["reports"] for n in notes(engine)] == [["DiagnosticReport/rv37f-r2"]]
    assert http.delete("/fhir/DiagnosticReport/rv37f-r2").status_code in (200, 204)
    assert notes(engine) == []


def test_rv37f_reports_kept_exact_when_a_report_drops_a_result_and_re_points(
        engine: Engine, http: TestClient) -> None:  # noqa: F811
    """A summary report R4 lists both results of B1's test; then lists the AST alone: the ALT's entry no
    longer keeps R4, the AST's does. R4 then names another checked order (B2): the AST, listed by two
    reports naming two orders, links none; the ALT (R4 no longer lists it) stays B1's. A correction of
    each (the kept reports read, no search) gives the same answers."""
    b1, fb1 = linked_b1(engine, http)
    mine = f"DiagnosticReport/{fb1['id']}"
    alt, ast = (r["reference"] for r in fb1["result"])
    summary = {"resourceType": "DiagnosticReport", "id": "rv37f-r4", "status": "final", "code": {"text": "肝功能汇总"},
               "subject": fb1["subject"], "basedOn": [{"reference": b1}], "result": fb1["result"]}
    assert http.put("/fhir/DiagnosticReport/rv37f-r4", json=summary, headers=FHIR).status_code == 201
    r4 = "DiagnosticReport/rv37f-r4"
    assert entry(engine, alt)["reports"] == entry(engine, ast)["reports"] == sorted([mine, r4])
    summary["result"] = [{"reference": ast}]
    assert http.put("/fhir/DiagnosticReport/rv37f-r4", json=summary, headers=FHIR).status_code == 200
    assert entry(engine, alt)["reports"] == [mine]
    assert entry(engine, ast)["reports"] == sorted([mine, r4])
    send(http, order(B, "B2", LFT, ORDER_AT))
    b2 = order_ref(http, "B2")
    summary["basedOn"] = [{"reference": b2}]
    assert http.put("/fhir/DiagnosticReport/rv37f-r4", json=summary, headers=FHIR).status_code == 200
    assert (entry(engine, alt)["order"], entry(engine, ast)["order"]) == (b1, None)
    send(http, result(B, "B1", LOCAL_LFT, "20260312100000+0800", status="C", obx=obx((ALT, "90"), (AST, "36"))))
    assert (entry(engine, alt)["order"], entry(engine, ast)["order"]) == (b1, None)
    assert entry(engine, alt)["reports"] == [mine]
    assert entry(engine, ast)["reports"] == sorted([mine, r4])


def test_rv37f_another_patients_report_stored_ahead_links_nothing(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """Another patient's report, based on WANG's order B1, stored ahead listing an ALT that then comes as
    WANG's with a summary naming no order: the note is read, the report is another subject's -- no link,
    B1 pending; the entry keeps both reports (it lists the result, whoever it is about)."""
    b1, alt, about = copied_alt(engine, http)
    send(http, result(B, "X5", LOCAL_LFT, "20260311100000+0800", person=OTHER, mrn="MRN-O-B",
                      obx=obx((ALT, "20"), (AST, "21"), when="20260311100000+0800")))
    other = {**about, "subject": report_of(http, "FX5")["subject"]}
    assert other["subject"] != about["subject"]
    assert http.put("/fhir/DiagnosticReport/rv37f-x", json=report("rv37f-x", "肝功能", other, b1),
                    headers=FHIR).status_code == 201
    together(http, alt, report("rv37f-r3", "肝功能汇总", about))
    assert entry(engine, "Observation/l37-alt")["order"] is None
    assert entry(engine, "Observation/l37-alt")["reports"] == ["DiagnosticReport/rv37f-r3", "DiagnosticReport/rv37f-x"]
    assert outcome(engine, b1) == "pending"
    assert all(r["order"] != b1 for r in live(engine, http))


def test_rv37f_the_upgrade_count_survives_a_run_cut_mid_page(
        engine: Engine, http: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The old form of an after-midnight panel; the pass is cut (a worker killed) after the ALT was
    moved and committed, before the page's marker: opened again, the flags are right (one), and the
    marker should count the one entry whose day moved (it says 0)."""
    b1, alt = after_midnight_panel(engine, http)
    as_an_earlier_release_left_it(engine, alt)
    real = upgrade._dated_apart

    def cut(index: Any, reports: Any) -> Iterator[str]:
        yield from real(index, reports)
        raise RuntimeError("worker killed")

    monkeypatch.setattr(upgrade, "_dated_apart", cut)
    with pytest.raises(RuntimeError):
        report_days_once(engine.recognition)
    monkeypatch.setattr(upgrade, "_dated_apart", real)
    assert engine.recognition.index.get(alt)["day"] == "2026-03-11"
    report_days_once(engine.recognition)
    assert flagged(engine, http) == [(b1, "2026-03-11")]
    assert engine.store.collection(LAYOUT).get(REPORT_DAYS) == {"_id": REPORT_DAYS, "done": True, "written": 1}


def test_rv37f_a_store_through_the_pass_is_not_scanned_again(
        engine: Engine, http: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Engine open after the first: the marker says done, and not one index query is made (an old form
    left behind is then not looked at: the pass is once per store, not once per open)."""
    b1, alt = after_midnight_panel(engine, http)
    assert engine.store.collection(LAYOUT).get(REPORT_DAYS)["done"] is True
    as_an_earlier_release_left_it(engine, alt)
    with engine.store.transaction():
        engine.store.collection(LAYOUT).replace({"_id": REPORT_DAYS, "done": True, "written": 0})
    coll = engine.recognition.index.coll

    class Refusing:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"index.{name} asked by a pass marked done")

    monkeypatch.setattr(engine.recognition.index, "coll", Refusing())
    assert report_days_once(engine.recognition) is None
    monkeypatch.setattr(engine.recognition.index, "coll", coll)
    assert len(flagged(engine, http)) == 2


@pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)
def test_rv37f_the_upgrade_of_a_store_of_blood_counts_opens_under_sqlites_default_limit(engine: Engine) -> None:
    """An earlier release's store: 2,000 blood-count reports, each listing its 17 results (the index keeps
    a report's own results on its entry), no marker. SQLite as compiled by default (3.32+: at most 32,766
    variables a statement; this machine's Debian build allows 250,000): the pass must still run -- it is
    called at every Engine open until its marker says done, so a failure here is a store that never opens."""
    rec = engine.recognition
    reports = [{"_id": f"DiagnosticReport/rv37f-{n:05d}", "item": "CBC", "day": "2026-03-11", "person": "p",
                "status": "final", "results": [f"Observation/rv37f-{n:05d}-{k:02d}" for k in range(17)]}
               for n in range(2000)]
    with engine.store.transaction():
        rec.index.coll.insert_many(reports)
        engine.store.collection(LAYOUT).delete(REPORT_DAYS)
    store = engine.store
    for conn in (store.conn, getattr(store._readers, "conn", None) or store._reader()):
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)
    assert report_days_once(rec) == 0
    assert engine.store.collection(LAYOUT).get(REPORT_DAYS) == {"_id": REPORT_DAYS, "done": True, "written": 0}


def test_rv37f_a_fhir_report_stored_ahead_of_a_lab_message_s_result_counts(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The ingest path (``POST /hl7v2``, the batch preview's note prefetch): a FHIR client (a regional
    platform that knows the ids huren makes) stores report R2, based on B1, listing the ALT the lab's
    message will create; the message then comes under numbers no order placed (C9): its own report links
    nothing, R2 says B1 -- linked, B1 repeated; the note is taken over by the entry."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT))
    b1 = order_ref(http, "B1")
    message = result(B, "C9", LOCAL_LFT, "20260312100000+0800", obx=obx((ALT, "88"), (AST, "35")))
    made = [e["resource"] for e in convert(parse(message), engine.site).bundle["entry"]]
    [lab] = [r for r in made if r["resourceType"] == "DiagnosticReport"]
    alt = lab["result"][0]["reference"]
    assert alt.startswith("Observation/") and http.get(f"/fhir/{alt}").status_code == 404
    r2 = {"resourceType": "DiagnosticReport", "id": "rv37f-r2", "status": "final", "code": {"text": "肝功能"},
          "subject": lab["subject"], "effectiveDateTime": lab.get("effectiveDateTime"),
          "basedOn": [{"reference": b1}], "result": [{"reference": alt}]}
    assert http.put("/fhir/DiagnosticReport/rv37f-r2", json=r2, headers=FHIR).status_code == 201
    assert engine.store.collection(LISTED_AHEAD).get(alt) == {"_id": alt, "reports": ["DiagnosticReport/rv37f-r2"]}
    send(http, message)
    assert entry(engine, alt)["order"] == b1
    assert "DiagnosticReport/rv37f-r2" in entry(engine, alt)["reports"]
    assert engine.store.collection(LISTED_AHEAD).get(alt) is None
    assert outcome(engine, b1) == "duplicate"
