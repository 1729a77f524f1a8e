"""probepay26: QC on the prior's date, HR scopes beyond the community, and the same test by its
second coding or down to the analyte -- HL7 over MLLP, site rules as data.

DOMAIN.md: "R's institution had QC passed for that item on R's date"; "a result from outside it
needs an HR scope covering the receiving institution"; "Scope of non-payment: repeats inside the same
medical community. A repeat of a result recognisable only through a wider HR scope counts for the
rate; it is 'not payable' only when the payer policy extends it"; "Same test: the platform's
recognition item code, mapped from each institution's local item code (OBX-3 / OBR-4), with LOINC
as an optional second coding"; "Items are defined down to the analyte ... a partial overlap is
reported with the overlapping analytes".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from tests.conftest import running_mllp
from tests.test_probepay26_windows import CBC, LFT, flags, make_site, open_engine, order, reminded, result
from tests.test_recognition_e2e import Sender

REPO = Path(__file__).resolve().parent.parent
QC = """\
- {institution: HOSPA, item: CBC, passed: false, from: 2026-03-05, until: 2026-03-10, source: 2026年第一次室间质评}
- {institution: HOSPD, item: all, passed: true, from: 2026-01-01, until: 2026-12-31, hr: [SZ], source: 市临检中心}
"""
SCOPES = """\
- {code: CN, name: 全国HR, all: true}
- {code: SZ, name: 市HR, communities: [c1, c2], institutions: []}
"""


def _policy(scopes: str) -> str:
    text = (REPO / "mappings/recognition/policy.yaml").read_text("utf-8")
    return text.replace("not_payable_scopes: [community]", f"not_payable_scopes: {scopes}")


def _engine(tmp_path: Path, scopes: str = "[community]") -> Iterator[Engine]:
    site = make_site(tmp_path, recognition__qc__yaml=QC, recognition__scopes__yaml=SCOPES,
                     recognition__policy__yaml=_policy(scopes))
    yield from open_engine(tmp_path, site)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from _engine(tmp_path)


@pytest.mark.parametrize(("prior", "counts"), [
    ("20260304235959+0800", True),   # the day before the failed period
    ("20260304160000+0000", False),  # 03-05 00:00 in Shanghai: inside it
    ("20260310235959+0800", False),  # its last day (inclusive)
    ("20260310160000+0000", True),   # 03-11 00:00 in Shanghai: after it
])
def test_probepay26_failed_qc_period_in_local_days(engine: Engine, mllp: int, prior: str, counts: bool) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, prior))
    ack = hl7.send(order("HOSPB", "B1", CBC, "20260311120000+0800"))
    assert reminded(ack) is counts, (prior, ack)
    hl7.send(result("HOSPB", "B1", CBC, "20260311130000+0800"))
    assert len(flags(engine, "flagged")) == int(counts), (prior, flags(engine))


def test_probepay26_hr_scope_outside_the_community_is_reported_not_charged(engine: Engine, mllp: int) -> None:
    """HOSPD (community c2) passed QC with HR scope SZ covering c1: its CBC is recognisable at HOSPB,
    the repeat counts for the rate but is not 'not payable' under the default policy."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPD", "D1", CBC, "20260310090000+0800"))
    assert reminded(hl7.send(order("HOSPB", "B1", CBC, "20260312080000+0800")))
    ack = hl7.send(result("HOSPB", "B1", CBC, "20260312100000+0800"))
    assert "not payable" not in ack, ack
    [f] = flags(engine)
    assert (f["status"], f["basis"]) == ("reported", "SZ"), f


def test_probepay26_payer_extends_non_payment_to_the_hr_scope(tmp_path: Path) -> None:
    for eng in _engine(tmp_path, "[community, SZ]"):
        with running_mllp(eng) as port:
            hl7 = Sender(port)
            hl7.send(result("HOSPD", "D1", CBC, "20260310090000+0800"))
            assert reminded(hl7.send(order("HOSPB", "B1", CBC, "20260312080000+0800")))
            hl7.send(result("HOSPB", "B1", CBC, "20260312100000+0800"))
            [f] = flags(eng)
            assert (f["status"], f["basis"], stored_fen(f["price"])) == ("flagged", "SZ", 20.0), f


def test_probepay26_local_code_with_loinc_as_second_coding(engine: Engine, mllp: int) -> None:
    """OBR-4 a local code HOSPB's tables do not know, LOINC as the CWE's alternate coding: the same test."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, "20260311090000+0800"))  # after HOSPA's failed QC period
    item = "XCG99^血常规^L^58410-2^CBC panel^LN"
    assert reminded(hl7.send(order("HOSPB", "B1", item, "20260312080000+0800")))
    hl7.send(result("HOSPB", "B1", item, "20260312100000+0800"))
    assert len(flags(engine, "flagged")) == 1


def test_probepay26_panel_after_one_analyte_is_a_partial_repeat(engine: Engine, mllp: int) -> None:
    """An ALT alone, then the whole liver panel: only the ALT repeats -- partial, the ALT's price."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", "1742-6^ALT^LN", "20260310090000+0800",
                    obx="OBX|1|NM|1742-6^ALT^LN||30|U/L|||||{s}"))
    assert reminded(hl7.send(order("HOSPB", "B1", LFT, "20260312080000+0800")))
    hl7.send(result("HOSPB", "B1", LFT, "20260312100000+0800",
                    obx="OBX|1|NM|1742-6^ALT^LN||31|U/L|||||{s}|||20260312100000+0800\n"
                        "OBX|2|NM|1920-8^AST^LN||28|U/L|||||{s}"))
    [f] = flags(engine, "flagged")
    assert (f["analytes"], f["partial"], stored_fen(f["price"])) == (["ALT"], True, 5.0), f


def test_probepay26_prior_panel_with_some_analytes_is_a_partial_repeat(engine: Engine, mllp: int) -> None:
    """The prior liver panel report carries only ALT and AST results; the repeat is the whole panel
    (six analytes). Only ALT and AST were repeated: partial, their prices (5.00 + 5.00), not the
    panel's 60.00 (DOMAIN.md: "Items are defined down to the analyte ... a partial overlap is reported
    with the overlapping analytes")."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", LFT, "20260310090000+0800",
                    obx="OBX|1|NM|1742-6^ALT^LN||30|U/L|||||{s}|||20260310090000+0800\n"
                        "OBX|2|NM|1920-8^AST^LN||28|U/L|||||{s}"))
    assert reminded(hl7.send(order("HOSPB", "B1", LFT, "20260312080000+0800")))
    six = "".join(f"OBX|{i}|NM|{code}||1|U/L|||||{{s}}|||20260312100000+0800\n"
                  for i, code in enumerate(("1742-6^ALT^LN", "1920-8^AST^LN", "1975-2^TBIL^LN", "1751-7^ALB^LN",
                                            "6768-6^ALP^LN", "2324-2^GGT^LN"), 1))
    hl7.send(result("HOSPB", "B1", LFT, "20260312100000+0800", obx=six.rstrip("\n").removesuffix("|||20260312100000+0800")))
    [f] = flags(engine, "flagged")
    assert (sorted(f["analytes"]), f["partial"], stored_fen(f["price"])) == (["ALT", "AST"], True, 10.0), f


def test_probepay26_prior_withdrawn_before_the_repeat_result_means_no_flag(engine: Engine, mllp: int) -> None:
    """Reminded at order time; the prior is then withdrawn (entered in error) before the repeat's
    result arrives: nothing recognisable remains, no flag."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, "20260311090000+0800"))
    assert reminded(hl7.send(order("HOSPB", "B1", CBC, "20260312080000+0800")))
    hl7.send(result("HOSPA", "A1", CBC, "20260311090000+0800", status="W"))
    hl7.send(result("HOSPB", "B1", CBC, "20260312100000+0800"))
    assert flags(engine, "flagged") == [], flags(engine)


def test_probepay26_analyte_the_prior_panel_never_reported_is_no_repeat(engine: Engine, mllp: int) -> None:
    """The prior liver panel report carries only ALT and AST; a TBIL ordered alone two days later
    repeats nothing that was done: no reminder, no flag."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", LFT, "20260310090000+0800",
                    obx="OBX|1|NM|1742-6^ALT^LN||30|U/L|||||{s}|||20260310090000+0800\n"
                        "OBX|2|NM|1920-8^AST^LN||28|U/L|||||{s}"))
    ack = hl7.send(order("HOSPB", "B1", "1975-2^TBIL^LN", "20260312080000+0800"))
    hl7.send(result("HOSPB", "B1", "1975-2^TBIL^LN", "20260312100000+0800",
                    obx="OBX|1|NM|1975-2^TBIL^LN||12|umol/L|||||{s}"))
    assert (reminded(ack), flags(engine, "flagged")) == (False, []), (ack, flags(engine))
