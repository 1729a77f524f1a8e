"""payfix26: what a prior panel report covers is judged per report (its DiagnosticReport and the
Observations it lists), through the real path (HL7 over MLLP, the real store). Guards beside
rvrvpay26's probes (tests/test_rvrvpay26_panels.py), which are the failing tests of the fix."""

from __future__ import annotations

from engine.engine import Engine
from tests.test_paymend26_panels import ALT_AST
from tests.test_probepay26_agree import engine  # noqa: F401  (the fixture)
from tests.test_probepay26_windows import LFT, flags, order, reminded, result
from tests.test_recognition_e2e import Sender

TBIL = "1975-2^TBIL^LN"
TBIL_OBX = "OBX|1|NM|1975-2^TBIL^LN||12|umol/L|||||{s}"
ALT = "OBX|1|NM|1742-6^ALT^LN||31|U/L|||||{s}"


def test_payfix26_two_reports_naming_analytes_cover_only_those(engine: Engine, mllp: int) -> None:  # noqa: F811
    """Guard: two liver panel reports of one day, ALT+AST at 09:00 and ALT at 15:00, each naming
    its analytes: neither is the whole panel, so a TBIL ordered at HOSPB is no repeat."""
    s = Sender(mllp)
    s.send(result("HOSPA", "A1", LFT, "20260310090000+0800", obx=ALT_AST))
    s.send(result("HOSPA", "A2", LFT, "20260310150000+0800", obx=ALT))
    ack = s.send(order("HOSPB", "B1", TBIL, "20260312080000+0800"))
    s.send(result("HOSPB", "B1", TBIL, "20260312100000+0800", obx=TBIL_OBX))
    assert (reminded(ack), flags(engine, "flagged")) == (False, []), (ack, flags(engine))


def test_payfix26_entries_stored_before_reports_listed_results_read_as_before(engine: Engine, mllp: int) -> None:  # noqa: F811
    """Guard: index entries written before a report's results were kept (no ``results`` field)
    read as paymend26 read them: an ALT+AST report is no prior of a TBIL."""
    s = Sender(mllp)
    s.send(result("HOSPA", "A1", LFT, "20260310090000+0800", obx=ALT_AST))
    coll = engine.recognition.index.coll
    listed = [d for d in coll.find({}) if d.get("results")]
    assert listed, list(coll.find({}))  # the report lists its results now
    for doc in listed:
        coll.replace({k: v for k, v in doc.items() if k != "results"})
    ack = s.send(order("HOSPB", "B1", TBIL, "20260312080000+0800"))
    s.send(result("HOSPB", "B1", TBIL, "20260312100000+0800", obx=TBIL_OBX))
    assert (reminded(ack), flags(engine, "flagged")) == (False, []), (ack, flags(engine))
