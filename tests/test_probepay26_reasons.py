"""probepay26: the payment policy's reasons (DOMAIN.md "Payment policy"), each on its boundary,
through HL7 over MLLP (ORC-16 at order time), and a per-community override as data.

DOMAIN.md: "R01 R02 R03 R04 R06 (text required) R99 | payable; reported as a justified re-test";
"R05 ..., R07 ... | re-test allowed, not payable by the fund (self-pay)"; "R08 ... | payable when the
prior is older than half the window, otherwise flagged for review"; R09/R98 "checked ... the flag
stays, marked reason contradicted by records"; "The reason recorded at order time stands, whatever a
later result message repeats or omits."
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from tests.test_probepay26_windows import CBC, LFT, flags, make_site, open_engine, order, reminded, result
from tests.test_recognition_e2e import Sender

SYS = "urn:huren:recognition-reason"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from open_engine(tmp_path, make_site(tmp_path))


def _one(engine: Engine) -> dict:
    [f] = [f for f in flags(engine) if f["inst"] == "HOSPB"]
    return f


def _repeat(hl7: Sender, reason: str, prior: str = "20260310090000+0800", ordered: str = "20260312080000+0800",
            item: str = CBC) -> None:
    hl7.send(result("HOSPA", "A1", item, prior))
    assert reminded(hl7.send(order("HOSPB", "B1", item, ordered, reason=reason)))
    hl7.send(result("HOSPB", "B1", item, ordered[:8] + "100000+0800"))


@pytest.mark.parametrize(("reason", "status", "effect"), [
    ("R01^病情变化^" + SYS, "justified", "payable"),
    ("R02^指标变化快^" + SYS, "justified", "payable"),
    ("R03^术前^" + SYS, "justified", "payable"),
    ("R04^急诊^" + SYS, "justified", "payable"),
    ("R99^连续监测^" + SYS, "justified", "payable"),
    ("R06^其他必要复查^" + SYS + "^^^^^^患者服药后需复测血象", "justified", "payable"),
    ("R05^伤残鉴定^" + SYS, "self_pay", "self_pay"),
    ("R07^患者要求^" + SYS, "self_pay", "self_pay"),
])
def test_probepay26_each_valid_reason_has_its_effect(engine: Engine, mllp: int, reason: str, status: str,
                                                     effect: str) -> None:
    _repeat(Sender(mllp), reason)
    f = _one(engine)
    assert (f["status"], f["reason"], f["effect"]) == (status, reason[:3], effect), f


@pytest.mark.parametrize("reason", [
    "",  # absent
    "R06^其他必要复查^" + SYS,  # R06 without its text (the code's name is no text)
    "R77^随便^" + SYS,  # not a reason huren knows
])
def test_probepay26_absent_or_invalid_reason_is_not_payable(engine: Engine, mllp: int, reason: str) -> None:
    _repeat(Sender(mllp), reason)
    f = _one(engine)
    assert f["status"] == "flagged" and stored_fen(f["price"]) == 20.0, f


@pytest.mark.parametrize(("prior", "payable"), [
    # LFT, window 14: half is 7 days. 7 days old is not *older* than half; 8 is
    ("20260305090000+0800", False),
    ("20260304090000+0800", True),
    # in local days: 2026-03-04 16:30Z is 03-05 00:30 in Shanghai, 7 local days before 03-12
    ("20260304163000+0000", False),
])
def test_probepay26_r08_against_half_the_window(engine: Engine, mllp: int, prior: str, payable: bool) -> None:
    _repeat(Sender(mllp), "R08^结果过旧^" + SYS, prior=prior, item=LFT)
    f = _one(engine)
    if payable:
        assert (f["status"], f["effect"]) == ("justified", "check_age"), f
    else:
        assert f["status"] == "flagged" and f["contradicted"], f


def test_probepay26_r09_against_passed_qc_is_contradicted(engine: Engine, mllp: int) -> None:
    _repeat(Sender(mllp), "R09^质控不合格^" + SYS)
    f = _one(engine)
    assert f["status"] == "flagged" and f["contradicted"] and f["reason"] == "R09", f


def test_probepay26_r98_against_a_held_prior_is_contradicted(engine: Engine, mllp: int) -> None:
    _repeat(Sender(mllp), "R98^外院记录无法调阅^" + SYS)
    f = _one(engine)
    assert f["status"] == "flagged" and f["contradicted"] and f["reason"] == "R98", f


def test_probepay26_order_time_reason_stands_over_a_later_result_reason(engine: Engine, mllp: int) -> None:
    """Order R07 (self-pay); the result's ORC repeats the order with R01: the order-time R07 stands."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, "20260310090000+0800"))
    assert reminded(hl7.send(order("HOSPB", "B1", CBC, "20260312080000+0800", reason="R07^患者要求^" + SYS)))
    msg = result("HOSPB", "B1", CBC, "20260312100000+0800").replace(
        "ORC|RE|B1^HIS|FB1^LIS||CM\n", "ORC|RE|B1^HIS|FB1^LIS||CM|||||||||||R01^病情变化^" + SYS + "\n")
    hl7.send(msg)
    f = _one(engine)
    assert (f["status"], f["reason"]) == ("self_pay", "R07"), f


def test_probepay26_repeat_result_cancelled_voids_the_flag(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    _repeat(hl7, "")
    assert _one(engine)["status"] == "flagged"
    hl7.send(result("HOSPB", "B1", CBC, "20260312100000+0800", status="X"))
    assert _one(engine)["status"] not in ("flagged", "self_pay"), _one(engine)


def test_probepay26_community_override_makes_r07_payable(tmp_path: Path) -> None:
    """A payer's override is data: community c1 pays R07 re-tests; the default elsewhere."""
    policy = (Path(__file__).resolve().parent.parent / "mappings/recognition/policy.yaml").read_text("utf-8")
    policy = policy.replace("communities: {}", "communities:\n  c1:\n    reasons: {R07: payable}")
    site = make_site(tmp_path, recognition__policy__yaml=policy)
    from tests.conftest import running_mllp

    for eng in open_engine(tmp_path, site):
        with running_mllp(eng) as port:
            hl7 = Sender(port)
            _repeat(hl7, "R07^患者要求^" + SYS)
            f = _one(eng)
            assert (f["status"], f["reason"]) == ("justified", "R07"), f
            # ... and a c2 member repeating its own result keeps the default: self-pay
            hl7.send(result("HOSPD", "D0", CBC, "20260310090000+0800"))
            assert reminded(hl7.send(order("HOSPD", "D1", CBC, "20260312080000+0800", reason="R07^患者要求^" + SYS)))
            hl7.send(result("HOSPD", "D1", CBC, "20260312100000+0800"))
            [d] = [g for g in flags(eng) if g["inst"] == "HOSPD"]
            assert d["status"] == "self_pay", d
