"""ordfix36: an older re-run of a lab panel -- its results held as the same sender's older statement
(``engine.merge_rules`` ``_restated_older``) -- must not write its report's times over the later
message's: the report's ``issued`` (OBR-22) and ``effectiveDateTime`` (OBR-7) stay the 12:00
re-run's when its 11:00 message arrives last.

Real HL7 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``),
resources read back over ``/fhir``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng

__all__ = ["engine", "module_http"]

engine = module_eng


def _panel(control: str, stamp: str, mrn: str, order: str, *, collected: str, issued: str,
           results: list[tuple[str, str, str]], status: str = "F") -> str:
    """One LIS ORU: MSH-7 ``stamp``, OBR-7 ``collected``, OBR-22 ``issued``, OBX-11 ``status``."""
    obr = ["OBR", "1", f"{order}P^HIS", f"{order}^LIS", "CHEM^生化^L", "", "", collected, *[""] * 14, issued,
           "", "CH", status]
    lines = [f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1",
             f"PID|1||{mrn}^^^FNXRMYY^MR||钱^九||19700315|F",
             f"ORC|RE|{order}P^HIS|{order}^LIS||CM", "|".join(obr)]
    for n, (code, value, flag) in enumerate(results, 1):
        lines.append(f"OBX|{n}|NM|{code}^{code}^L||{value}|mmol/L|1-9|{flag}|||{status}|||{collected}")
    return "\r".join(lines) + "\r"


def _report(http: TestClient, report_id: str) -> dict:
    return http.get(f"/fhir/DiagnosticReport/{report_id}").json()


def test_an_older_rerun_held_leaves_the_reports_times_the_later_messages(engine: Engine, http: TestClient) -> None:
    """10:00 the panel (K 4.1, NA 140), issued 10:00; 12:00 its re-run (K 5.6), issued 12:00, a later
    specimen time; the 11:00 message (K 4.4), issued 11:00, arrives last: K is held (W at OBX^1^5),
    and the report keeps the 12:00 message's ``issued`` and ``effectiveDateTime``."""
    post(http, _panel("OF36-1A", "20261203100000", "OF36M1", "OF36P1", collected="20261203080000",
                      issued="20261203100000", results=[("K", "4.1", "N"), ("NA", "140", "N")]))
    (report,) = written(engine, http, "OF36-1A", "DiagnosticReport")
    assert b"MSA|AA" in post(http, _panel("OF36-1C", "20261203120000", "OF36M1", "OF36P1",
                                          collected="20261203083000", issued="20261203120000",
                                          results=[("K", "5.6", "H"), ("NA", "140", "N")]))
    later = _report(http, report["id"])
    assert later["issued"].startswith("2026-12-03T12:00:00"), later
    ack = post(http, _panel("OF36-1B", "20261203110000", "OF36M1", "OF36P1", collected="20261203081500",
                            issued="20261203110000", results=[("K", "4.4", "N"), ("NA", "140", "N")]))
    assert b"MSA|AA" in ack, ack
    held = sorted(e.split("|")[2] for e in err_lines(ack) if "not later" in e)
    assert held == ["OBR^1^22", "OBR^1^7", "OBX^1^5"], (held, ack)
    now = _report(http, report["id"])
    assert now["issued"] == later["issued"], now
    assert now["effectiveDateTime"] == later["effectiveDateTime"], now


def test_an_older_message_whose_every_result_is_the_same_leaves_the_reports_times(
        engine: Engine, http: TestClient) -> None:
    """The 12:00 re-run changes K; the 11:00 message arriving last states the 10:00 values of NA alone
    (nothing of it to hold: NA is unchanged), issued 11:00: the report's times stay the 12:00 message's
    all the same -- an older message is not the report's latest word."""
    post(http, _panel("OF36-2A", "20261203100000", "OF36M2", "OF36P2", collected="20261203080000",
                      issued="20261203100000", results=[("K", "4.1", "N"), ("NA", "140", "N")]))
    (report,) = written(engine, http, "OF36-2A", "DiagnosticReport")
    assert b"MSA|AA" in post(http, _panel("OF36-2C", "20261203120000", "OF36M2", "OF36P2",
                                          collected="20261203083000", issued="20261203120000",
                                          results=[("K", "5.6", "H"), ("NA", "140", "N")]))
    later = _report(http, report["id"])
    ack = post(http, _panel("OF36-2B", "20261203110000", "OF36M2", "OF36P2", collected="20261203081500",
                            issued="20261203110000", results=[("NA", "140", "N")]))
    assert b"MSA|AA" in ack, ack
    now = _report(http, report["id"])
    assert (now["issued"], now["effectiveDateTime"]) == (later["issued"], later["effectiveDateTime"]), now
    warned = [e for e in err_lines(ack) if "not later" in e]
    assert sorted(e.split("|")[2] for e in warned) == ["OBR^1^22", "OBR^1^7"], (warned, ack)
    assert all("|W|" in e and "OF36-2C" in e for e in warned), warned


def test_a_later_rerun_still_writes_the_reports_times(engine: Engine, http: TestClient) -> None:
    """The control: the 12:00 re-run after the 10:00 panel takes the report's ``issued`` and
    ``effectiveDateTime`` (a later message's times are the report's)."""
    post(http, _panel("OF36-3A", "20261203100000", "OF36M3", "OF36P3", collected="20261203080000",
                      issued="20261203100000", results=[("K", "4.1", "N")]))
    (report,) = written(engine, http, "OF36-3A", "DiagnosticReport")
    first = _report(http, report["id"])
    assert b"MSA|AA" in post(http, _panel("OF36-3C", "20261203120000", "OF36M3", "OF36P3",
                                          collected="20261203083000", issued="20261203120000",
                                          results=[("K", "5.6", "H")]))
    now = _report(http, report["id"])
    assert now["issued"].startswith("2026-12-03T12:00:00") and now["issued"] != first["issued"], now
    assert now["effectiveDateTime"].startswith("2026-12-03T08:30:00"), now
