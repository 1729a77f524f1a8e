"""The recognition rate over MLLP after an order is replaced (ORC-1 RP/RO) (review of the eighteenth round).

HOSPA reports a blood count three days ago; HOSPB orders one (the order time reminds the doctor of
the recognisable result), then replaces the order (RP naming it, RO a new order for the same test)
and gets the re-test's result. Nothing was recognised: the truth is 0 of 1. The RP order read as a
cancellation (revoked), so the rate counted it recognised beside the re-test: 1 of 2. The RO order
now ``replaces`` the RP one and the rate counts a replaced order as the one order it is.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, engine, msh, order, pid, result, ts

__all__ = ["engine"]  # the policy tests' community (HOSPA, HOSPB, HOSPC)


def replace(inst: str, old: str, new: str, item: str, when: str) -> str:
    return (msh(inst, "HIS", "ORM^O01^ORM_O01", when, f"{inst}-ORM-{old}-RP") + pid(inst)
            + f"ORC|RP|{old}^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|1|{old}^HIS||{item}|||{when}\n"
            + f"ORC|RO|{new}^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|2|{new}^HIS||{item}|||{when}\n")


def test_a_replaced_then_retested_order_is_not_recognised(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, ts(3)))
    assert "Recognisable prior result" in hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    ack = hl7.send(replace("HOSPB", "B1", "B2", CBC, ts(1, 9)))
    assert "|AA|" in ack or "MSA|AA" in ack, ack
    hl7.send(result("HOSPB", "B2", CBC, ts(1, 10)))
    http = TestClient(create_app(engine))
    token = engine.auth.issue_system_token("auditor", "system/DetectedIssue.rs", kind="auditor")
    rate = http.get("/reports/duplicates", headers={"Authorization": f"Bearer {token}"}).json()["recognition_rate"]
    assert (rate["HOSPB"]["recognisable"], rate["HOSPB"]["recognised"]) == (1, 0), rate
