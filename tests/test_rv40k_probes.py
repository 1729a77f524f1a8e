"""rv40k: review probes of st40 (a group none of whose results stands states of its order what its results give;
ORC-5 CM beside it not taken) and ofix40c (whose an RO is; the placer's requests judged by who placed the order).

Money first: HOSPA's blood count five days ago is a recognisable prior for HOSPB's order yesterday; the recognition
row (``engine.recognition`` flags) of HOSPB's repeat is read back after each step. Real HL7 v2 over MLLP into the
real store on each backend. A probe showing a defect is a strict xfail naming
its severity. One community a module and backend (``module_store.module_community``), each test under names of its
own (``module_store.Names``: its resident, record, order and control numbers) reading its own rows (suite44b: each had
opened a community and an MLLP listener of its own)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.engine import Engine
from tests import test_money19_cds_orders
from tests.module_store import Names, names
from tests.module_store import engine_mllp as mllp
from tests.module_store import module_community as engine
from tests.test_money20_reason_change import prior
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts
from tests.test_rv40d_probes import R01, R07

__all__ = ["engine", "mllp", "names"]


def _lis(inst: str, placer: str, when: str, control: str, *, obr25: str, obx11: str, orc5: str = "CM",
         value: str = "6.1") -> str:
    """The LIS's ORU of ``inst``'s blood count under ``placer^HIS`` / ``F<placer>^LIS`` -- ORC-5 ``orc5`` (many
    county LIS send CM on every result message), OBR-25 ``obr25``, WBC at OBX-11 ``obx11``."""
    return (msh(inst, "LIS", "ORU^R01^ORU_R01", when, f"{inst}-ORU-{placer}-{control}") + pid(inst)
            + f"ORC|RE|{placer}^HIS|F{placer}^LIS||{orc5}\n"
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||{obr25}\n"
            + f"OBX|1|NM|WBC^白细胞^L||{value}|10*9/L|||||{obx11}|||{when}\n")


def _hospb(engine: Engine, names: Names | None = None) -> list[tuple[str, Any]]:
    """HOSPB's rows (not void): (status, reason) -- of ``names``' records when given (a test on a shared store)."""
    rows = test_money19_cds_orders.flags(engine)
    return [(f["status"], f.get("reason")) for f in (names.rows(engine, rows) if names else rows) if f["inst"] == "HOSPB"]


def _order(engine: Engine, placer: str) -> dict:
    """The one order holding the number ``placer`` (of any system)."""
    (sr,) = [r for r in engine.repository.search("ServiceRequest", [("identifier", placer)]).resources
             if any(i.get("value") == placer for i in r.get("identifier") or ())]
    return sr


# --- money: the lab's X on the repeat itself, then its re-measured final --------------------------------------


def test_the_labs_x_on_the_repeat_then_its_remeasured_final_is_still_not_payable(
        engine: Engine, mllp: int, names: Names) -> None:
    """HOSPB's repeat B1 (no reason) is reminded of HOSPA's prior. HOSPB's LIS posts the WBC "results cannot be
    obtained" (OBX-11 X, OBR-25 F, ORC-5 CM: a haemolysed tube) -- st40 now revokes the order for it. The lab draws
    again and posts the final under the same order: the repeat was performed, with no reason -- not payable."""
    hl7 = names.sender(mllp)
    prior(hl7)
    assert "MSA|AA" in hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    ack = hl7.send(_lis("HOSPB", "B1", ts(1, 10), "x", obr25="F", obx11="X", value=""))
    assert "MSA|AA" in ack, ack
    assert _order(engine, names.number("B1"))["status"] == "revoked"
    ack = hl7.send(_lis("HOSPB", "B1", ts(1, 14), "f", obr25="F", obx11="F"))
    assert "MSA|AA" in ack, ack
    assert _order(engine, names.number("B1"))["status"] == "completed"
    assert [s for s, _ in _hospb(engine, names)] == ["flagged"], (_hospb(engine, names), ack)


def test_the_labs_w_first_then_p_and_f_with_orc5_cm_complete_the_order_and_flag_the_repeat(
        engine: Engine, mllp: int, names: Names) -> None:
    """A real county LIS flow on the repeat: the first message huren meets is the W (OBR-25 F, ORC-5 CM: the final
    quarantined), then the re-measured P (ORC-5 IP) and F (ORC-5 CM). The W leaves the order active (st40), the F
    completes it; the repeat, performed without reason, is not payable."""
    hl7 = names.sender(mllp)
    prior(hl7)
    assert "MSA|AA" in hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    ack = hl7.send(_lis("HOSPB", "B1", ts(1, 10), "w", obr25="F", obx11="W"))
    assert "MSA|AA" in ack and "ORC^1^5" in ack, ack
    assert _order(engine, names.number("B1"))["status"] == "active"
    assert not [s for s, _ in _hospb(engine, names) if s == "flagged"], _hospb(engine, names)
    hl7.send(_lis("HOSPB", "B1", ts(1, 12), "p", obr25="P", obx11="P", orc5="IP"))
    ack = hl7.send(_lis("HOSPB", "B1", ts(1, 14), "f", obr25="F", obx11="F"))
    assert "MSA|AA" in ack, ack
    assert _order(engine, names.number("B1"))["status"] == "completed"
    assert [s for s, _ in _hospb(engine, names)] == ["flagged"], (_hospb(engine, names), ack)


def test_the_priors_x_after_its_final_makes_the_repeat_payable(engine: Engine, names: Names,
                                                                                  mllp: int) -> None:
    """HOSPA's final WBC, then HOSPA's LIS's X of it (OBR-25 X): its result is no prior any more -- HOSPB's
    repeat is not flagged (payable)."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(_lis("HOSPA", "A1", ts(5, 10), "f", obr25="F", obx11="F"))
    ack = hl7.send(_lis("HOSPA", "A1", ts(5, 12), "x", obr25="X", obx11="X", value=""))
    assert "MSA|AA" in ack, ack
    assert _order(engine, names.number("A1"))["status"] in ("completed", "revoked")
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(_lis("HOSPB", "B1", ts(1, 10), "f", obr25="F", obx11="F"))
    assert not [s for s, _ in _hospb(engine, names) if s == "flagged"], _hospb(engine, names)


def test_the_priors_remeasured_final_after_its_x_is_a_prior_again(
        engine: Engine, mllp: int, names: Names) -> None:
    """HOSPA's final, its X (OBR-25 X: the order revoked, the report cancelled), then the lab's re-measured final
    of the same order: the report is final again and the order completed (revoked does not stand against a
    final) -- HOSPB's repeat after it, with no reason, is not payable."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(_lis("HOSPA", "A1", ts(5, 10), "f", obr25="F", obx11="F"))
    hl7.send(_lis("HOSPA", "A1", ts(5, 12), "x", obr25="X", obx11="X", value=""))
    ack = hl7.send(_lis("HOSPA", "A1", ts(5, 14), "f2", obr25="F", obx11="F", value="6.2"))
    assert "MSA|AA" in ack, ack
    assert _order(engine, names.number("A1"))["status"] == "completed", ack
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(_lis("HOSPB", "B1", ts(1, 10), "f", obr25="F", obx11="F"))
    assert [s for s, _ in _hospb(engine, names)] == ["flagged"], _hospb(engine, names)


def _checks(engine: Engine, inst: str = "HOSPB", names: Names | None = None) -> list[str]:
    """The order-time check outcomes of ``inst``'s orders (the recognition rate's rows) -- of ``names``' records when
    given (a test on a shared store)."""
    rows = list(engine.recognition.checks.find({}))
    return [c.get("outcome") for c in (names.rows(engine, rows) if names else rows) if c.get("inst") == inst]


def test_the_labs_x_on_a_reminded_repeat_is_not_counted_recognised(
        engine: Engine, mllp: int, names: Names) -> None:
    """HOSPB's repeat B1 is reminded of HOSPA's prior (check pending); HOSPB's LIS posts WBC X (haemolysed tube)
    under OBR-25 F: the lab could not measure -- the doctor did not give the test up for the prior."""
    hl7 = names.sender(mllp)
    prior(hl7)
    assert "MSA|AA" in hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    assert _checks(engine, names=names) == ["pending"]
    assert "MSA|AA" in hl7.send(_lis("HOSPB", "B1", ts(1, 10), "x", obr25="F", obx11="X", value=""))
    assert _checks(engine, names=names) != ["recognised"], _checks(engine, names=names)


def _request(app: str, control: str, n: int) -> str:
    """``app``'s ORC-1 ``control`` (a placer's request: CA, DC, HD, RL) of HOSPB's order B1^HIS / FB1^LIS."""
    when = ts(1, 9)
    return (msh("HOSPB", app, "ORM^O01^ORM_O01", when, f"HOSPB-{app}{control}{n}-B1") + pid("HOSPB")
            + f"ORC|{control}|B1^HIS|FB1^LIS||||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n")


@pytest.mark.parametrize("again", ["RL", "NW"])
def test_the_his_release_or_reorder_after_its_cancel_does_not_revive_the_order(engine: Engine, mllp: int, names: Names,
                                                                              again: str) -> None:
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    assert "MSA|AA" in hl7.send(_request("HIS", "CA", 0))
    assert _order(engine, names.number("B1"))["status"] == "revoked"
    ack = hl7.send(_request("HIS", "RL", 1) if again == "RL"
                   else order("HOSPB", "B1", CBC, ts(1)).replace("HOSPB-ORM-B1-NW", "HOSPB-ORM-B1-NW2"))
    assert "MSA|A" in ack, ack
    assert _order(engine, names.number("B1"))["status"] == "revoked", ack


@pytest.mark.parametrize("seq", [
    (("HIS", "HD", "on-hold"), ("EMR", "RL", "on-hold"), ("HIS", "RL", "active")),
    (("HIS", "HD", "on-hold"), ("LIS", "RL", "on-hold")),
    (("LIS", "DC", "active"), ("HIS", "DC", "revoked")),
], ids=["his-hold-emr-release", "his-hold-lis-release", "lis-dc-his-dc"])
def test_placers_requests_are_judged_by_who_placed_the_order(
        engine: Engine, mllp: int, names: Names, seq: tuple) -> None:
    """Guard (ofix40c MED 6, on RL and DC, which its tests left): the HIS's own HD/RL/DC change B1's status; the
    EMR's or LIS's RL/DC is held (W 204 at ORC^1^1) and the status stands."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    for n, (app, control, status) in enumerate(seq):
        ack = hl7.send(_request(app, control, n))
        assert "MSA|AA" in ack, ack
        assert ("ERR||ORC^1^1|204" in ack) == (app != "HIS"), ack
        assert _order(engine, names.number("B1"))["status"] == status, (app, control, ack)


def test_the_lis_lone_ro_naming_the_placer_number_keeps_the_doctors_reason(
        engine: Engine, mllp: int, names: Names) -> None:
    """Guard: county LIS echo ORC-2 on every message; its lone RO under B1^HIS with a new accession FB1R and
    ORC-16 R07 is judged the placer's (``_whose``: placed) and held as not the placer's -- the doctor's R01 stands
    and the repeat resulted under the order is justified."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    when = ts(1, 9)
    ack = hl7.send(msh("HOSPB", "LIS", "ORM^O01^ORM_O01", when, "HOSPB-RO-B1") + pid("HOSPB")
                   + f"ORC|RO|B1^HIS|FB1R^LIS||IP||||{when}|||D7^张^医生||||{R07}\n"
                   + f"OBR|1|B1^HIS|FB1R^LIS|{CBC}|||{when}\n")
    assert "MSA|AA" in ack and "ERR||OBR^1^4|204" in ack, ack
    hl7.send(_lis("HOSPB", "B1", ts(1, 14), "f", obr25="F", obx11="F"))
    assert _hospb(engine, names) == [("justified", "R01")], ack


def _split(orc5: str, first: str, second: str) -> str:
    """HOSPB's LIS's one ORU of order B1 with its blood count split over two groups naming the same order (same
    placer and filler number, same OBR-4): WBC at OBX-11 ``first``, then HGB at ``second``, OBR-25 F, ORC-5
    ``orc5`` on both ORCs."""
    when = ts(1, 10)
    group = (f"ORC|RE|B1^HIS|FB1^LIS||{orc5}\n"
             f"OBR|{{n}}|B1^HIS|FB1^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
             f"OBX|1|NM|{{code}}||{{value}}|{{unit}}|||||{{status}}|||{when}\n")
    return (msh("HOSPB", "LIS", "ORU^R01^ORU_R01", when, f"HOSPB-ORU-B1-split{orc5}") + pid("HOSPB")
            + group.format(n=1, code="WBC^白细胞^L", value="6.1", unit="10*9/L", status=first)
            + group.format(n=2, code="HGB^血红蛋白^L", value="135", unit="g/L", status=second))


@pytest.mark.parametrize("orc5", ["", "CM"], ids=["orc5-empty", "orc5-CM"])
def test_a_withdrawn_group_beside_a_final_group_of_the_same_order_leaves_it_completed(
        engine: Engine, mllp: int, names: Names, orc5: str) -> None:
    """One ORU, two groups of order B1 (results split over OBRs): WBC F, then HGB W, OBR-25 F. WBC stands, so the
    order is completed -- with ORC-5 empty (``order_progress``: the earlier group's final stands) and with ORC-5
    CM on both, the first county LIS habit."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    ack = hl7.send(_split(orc5, "F", "W"))
    assert "MSA|AA" in ack and "ORC^2^5" not in ack, ack  # (the CM stands: no W saying it was not stored)
    assert _order(engine, names.number("B1"))["status"] == "completed", ack
    assert [s for s, _ in _hospb(engine, names)] == ["flagged"], (_hospb(engine, names), ack)  # WBC final: a repeat
