"""An order's re-test reason changed by an order update before its result (twentieth round, money20):
HL7 v2 over a real MLLP socket, the real store, both stores (FHIR clients: ``test_money20_reason_fhir``).

HL7 v2.5 ch. 4: ORC-1 ``XO`` (change order request) states the order as it now is; ch. 2: a field
left empty is "not sent" (no change), ``""`` deletes the stored value. ``mappings/merge.yaml`` kept
``ServiceRequest.reasonCode`` as a union for every feed, and the recognition's check row added every
reason a version stated to those recorded: an order placed with R01 and changed to R07 (self-pay),
to R06 without its text, or to no reason at all before its result was still a *justified R01*
re-test -- the fund paid a repeat the doctor no longer justified.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.engine import Engine
from tests.shared_worlds44d import Own, own_sender, policy_eng, policy_mllp  # noqa: F401 -- fixtures (own's)
from tests.test_money19_cds_orders import flags
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts
from tests.test_recognition_policy_e2e import result as oru

REASONS = "urn:huren:recognition-reason"
R01 = f"R01^病情变化^{REASONS}"
R04 = f"R04^急诊急救^{REASONS}"
R07 = f"R07^患者或家属要求^{REASONS}"
R06_NAME_ONLY = f"R06^其他必要复查^{REASONS}"  # R06 needs the doctor's text; its name is none


def update(inst: str, placer: str, item: str, when: str, orc16: str, n: int = 1,
           kind: str = "ORM^O01^ORM_O01") -> str:
    """An order update (ORC-1 XO) stating ORC-16 as ``orc16`` ("" left empty, '""' deleted)."""
    if kind.startswith("OML"):
        return (msh(inst, "HIS", kind, when, f"{inst}-XO-{placer}-{n}") + pid(inst)
                + f"ORC|XO|{placer}^HIS|||||||{when}|||D7^张^医生||||{orc16}\n"
                + f"TQ1|1\nOBR|1|{placer}^HIS||{item}|||{when}\n")
    return (msh(inst, "HIS", kind, when, f"{inst}-XO-{placer}-{n}") + pid(inst)
            + f"ORC|XO|{placer}^HIS|||||||{when}|||D7^张^医生||||{orc16}\n"
            + f"OBR|1|{placer}^HIS||{item}|||{when}\n")


def prior(hl7: Sender | Own) -> None:
    """HOSPA's blood count five days ago: recognisable for HOSPB's order yesterday (window 7 days)."""
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(oru("HOSPA", "A1", CBC, ts(5, 10)))


def the_flag(engine: Engine) -> dict[str, Any]:
    [flag] = [f for f in flags(engine) if f["inst"] == "HOSPB"]
    return flag


def stored_reasons(engine: Engine, placer: str = "B1") -> list[str]:
    [sr] = [s for s in engine.repository.search("ServiceRequest", [("identifier", placer)]).resources]
    return [c["code"] for r in sr.get("reasonCode") or () for c in r.get("coding") or () if c.get("system") == REASONS]


@pytest.mark.parametrize(("orc16", "expected"), [
    (R07, ("self_pay", "R07")),           # changed to a self-pay reason
    (R06_NAME_ONLY, ("flagged", None)),   # changed to R06 without the text it needs
    ('""', ("flagged", None)),            # the reason deleted (HL7's explicit null)
], ids=["to-R07", "to-R06-without-text", "deleted"])
def test_a_reason_changed_before_the_result_is_the_reason(own: Own, orc16: str,
                                                          expected: tuple[str, str | None]) -> None:
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), orc16))
    ack = hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == expected, flag
    if expected[0] == "flagged":
        assert "not payable" in ack, ack
    assert "R01" not in stored_reasons(own.engine, own.number("B1")), stored_reasons(own.engine, own.number("B1"))


def test_an_update_without_orc16_keeps_the_reason(own: Own) -> None:
    """ORC-16 not sent: no change -- the order keeps R01 (the guard; it held before too)."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), ""))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), flag
    assert stored_reasons(own.engine, own.number("B1")) == ["R01"]


def test_an_oml_update_changing_the_reason_then_restoring_it(own: Own) -> None:
    """OML^O21 too; two updates: R01 -> R07 -> R04, the last one stated is the order's."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), R07, 1, "OML^O21^OML_O21"))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), R04, 2, "OML^O21^OML_O21"))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("justified", "R04"), flag
    assert stored_reasons(own.engine, own.number("B1")) == ["R04"]


def test_a_result_message_stating_another_reason_changes_nothing(own: Own) -> None:
    """The result's ORC-16 is no order update: the R07 recorded at order time stays self-pay."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R07))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)).replace(
        "OBR|1|B1^HIS", f"ORC|RE|B1^HIS|FB1^LIS||CM|||||||||||{R01}\nOBR|1|B1^HIS", 1))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("self_pay", "R07"), flag


def test_an_update_stating_a_reason_none_of_hurens_keeps_the_reason(own: Own) -> None:
    """ORC-16 changed to a local code the reason table does not know ("Z1^患者要求^L"). money20 read it
    as the re-test reason withdrawn; by HL7 v2.5 ORC-16 is the *order control code reason* -- why the
    order changed -- and only ``""`` deletes (moneymend20): a patient's request is none of the
    national reasons, but it does not withdraw the doctor's R01 either, which decides."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), "Z1^患者要求^L"))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), flag
    assert stored_reasons(own.engine, own.number("B1")) == ["R01"]


@pytest.mark.parametrize("orc16", ['""', "Z1^患者要求^L"], ids=["deleted", "another-code"])
def test_a_result_message_taking_the_reason_away_changes_nothing(own: Own, orc16: str) -> None:
    """A result's ORC (ORC-1 RE) is no order update: the R01 recorded at order time decides and stays
    the stored order's."""
    hl7 = own
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)).replace(
        "OBR|1|B1^HIS", f"ORC|RE|B1^HIS|FB1^LIS||CM|||||||||||{orc16}\nOBR|1|B1^HIS", 1))
    flag = own.the_flag()
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), flag
    assert stored_reasons(own.engine, own.number("B1")) == ["R01"]

