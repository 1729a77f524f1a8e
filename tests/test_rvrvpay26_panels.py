"""rvrvpay26 (review of paymend26): which analytes a prior panel covers, through the real path (HL7
over MLLP, the real store). Guards and findings alike; the report names which fail.

paymend26's rule (``decision.find_recognisable``): a prior test covers the analytes of its
recognisable entries naming analytes; "a test none of whose entries names an analyte (a report
whose results are coded in no analyte's LOINC) still covers the whole panel, as before".
"""

from __future__ import annotations

from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from tests.test_paymend26_panels import ALT_AST
from tests.test_probepay26_agree import engine  # noqa: F401  (the fixture)
from tests.test_probepay26_windows import LFT, flags, order, reminded, result
from tests.test_recognition_e2e import Sender

LOCAL = "OBX|1|NM|GPT^谷丙转氨酶^L||30|U/L|||||{s}"


def test_rvrvpay26_whole_panel_report_counts_beside_a_partial_one_of_the_same_day(engine: Engine, mllp: int) -> None:  # noqa: F811
    """HOSPA reports two liver panels for the resident on 03-10: at 09:00 one carrying ALT and AST
    (LOINC), at 15:00 a second whole panel whose results are coded locally (names no analyte: the
    whole panel, by paymend26's own rule). A TBIL ordered at HOSPB on 03-12 repeats the second:
    reminded and flagged. (Both land on one (institution, item, day) key; the first report's
    analytes made the key "named", and the second report's whole panel then covered nothing.)"""
    s = Sender(mllp)
    s.send(result("HOSPA", "A1", LFT, "20260310090000+0800", obx=ALT_AST))
    s.send(result("HOSPA", "A2", LFT, "20260310150000+0800", obx=LOCAL))
    ack = s.send(order("HOSPB", "B1", "1975-2^TBIL^LN", "20260312080000+0800"))
    s.send(result("HOSPB", "B1", "1975-2^TBIL^LN", "20260312100000+0800",
                  obx="OBX|1|NM|1975-2^TBIL^LN||12|umol/L|||||{s}"))
    got = flags(engine, "flagged")
    assert (reminded(ack), [(f["analytes"], stored_fen(f["price"])) for f in got]) == (True, [(["TBIL"], 5.0)]), (ack, got)


def test_rvrvpay26_cancelled_loinc_result_does_not_void_a_local_whole_panel(engine: Engine, mllp: int) -> None:  # noqa: F811
    """A final liver panel report whose results are coded locally (the whole panel) also carries an
    ALT result in LOINC that the lab cancelled (OBX-11 X). The cancelled ALT is no result; the
    report's local results are still the whole panel: a repeat of the panel at HOSPB is flagged."""
    s = Sender(mllp)
    s.send(result("HOSPA", "A1", LFT, "20260310090000+0800",
                  obx="OBX|1|NM|GPT^谷丙转氨酶^L||30|U/L|||||F|||20260310090000+0800\n"
                      "OBX|2|NM|1742-6^ALT^LN||||||||X"))
    ack = s.send(order("HOSPB", "B1", LFT, "20260312080000+0800"))
    s.send(result("HOSPB", "B1", LFT, "20260312100000+0800", obx=LOCAL))
    got = flags(engine, "flagged")
    assert (reminded(ack), len(got)) == (True, 1), (ack, got)


def test_rvrvpay26_partial_prior_partial_price_and_ack_agree(engine: Engine, mllp: int) -> None:  # noqa: F811
    """Guard: a whole-panel order after an ALT+AST report is reminded at order time and flagged
    partial at ALT+AST's 10.00 (not the panel's 60.00)."""
    s = Sender(mllp)
    s.send(result("HOSPA", "A1", LFT, "20260310090000+0800", obx=ALT_AST))
    assert reminded(s.send(order("HOSPB", "B1", LFT, "20260312080000+0800")))
    s.send(result("HOSPB", "B1", LFT, "20260312100000+0800", obx=LOCAL))
    [f] = flags(engine, "flagged")
    assert (f["analytes"], f["partial"], stored_fen(f["price"])) == (["ALT", "AST"], True, 10.0), f
