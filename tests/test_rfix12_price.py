"""The money at stake on a flag is the flagged order's own charge line, end to end: orders and
results over a real MLLP socket, the charge lines PUT through the FHIR API over HTTP, read back
from the stored flag and its DetectedIssue.

HOSPB draws a blood count twice on one day (one test, two orders), repeating HOSPA's of five days
before; one order carries R04 (justified), the other no reason (the flagged one). Each is billed
its own line, 30.00 and 18.50. The flag carried whichever line was found first among the test's
results, so half the time the justified order's 30.00 was the money at stake.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from tests.test_hooks11_policy_edges import engine, result, row_of
from tests.test_recog12_decided_edges import R04
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, order, ts

__all__ = ["engine"]  # the fixture, used by name
_AMOUNTS = {"B1": 30.0, "B2": 18.5}


def _bill(http: TestClient, token: str, engine: Engine, placer_order: dict[str, str], placer: str) -> None:
    [report] = [e["_id"] for e in engine.recognition.index.coll.find({})
                if e.get("order") == placer_order[placer] and e["_id"].startswith("DiagnosticReport/")]
    charge = {"resourceType": "ChargeItem", "id": f"charge-{placer}", "status": "billable",
              "code": {"coding": [{"system": "urn:huren:price-code", "code": "250101001"}]},
              "subject": {"reference": engine.recognition.checks.get(placer_order[placer])["patient"]},
              "quantity": {"value": 1}, "priceOverride": {"value": _AMOUNTS[placer], "currency": "CNY"},
              "service": [{"reference": report}]}
    res = http.put(f"/fhir/ChargeItem/{charge['id']}", json=charge, headers={"Authorization": f"Bearer {token}"})
    assert res.status_code in (200, 201), res.text


@pytest.mark.parametrize("flagged", ["B1", "B2"])
def test_the_flag_carries_the_flagged_orders_own_charge_line(engine: Engine, mllp: int, http: TestClient,
                                                             client_token: Callable[..., str], flagged: str) -> None:
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10)))
    for placer, hour in (("B1", 8), ("B2", 15)):
        hl7.send(order("HOSPB", placer, CBC, ts(1, hour), reason="" if placer == flagged else R04))
        hl7.send(result("HOSPB", placer, CBC, ts(1, hour + 1)))
    checks = [c for c in engine.recognition.checks.find({}) if c["inst"] == "HOSPB"]
    by_reason = {bool(c["reasons"]): c["_id"] for c in checks}
    placer_order = {flagged: by_reason[False], ("B2" if flagged == "B1" else "B1"): by_reason[True]}
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["order"]) == ("flagged", placer_order[flagged]), row
    assert row["price_source"] == "catalogue"
    token = client_token(engine)
    for placer in ("B1", "B2"):
        _bill(http, token, engine, placer_order, placer)
    row = row_of(engine, "HOSPB")
    assert row is not None and (stored_fen(row["price"]), row["price_source"]) == (_AMOUNTS[flagged], "charge"), row
    issue = engine.repository.read("DetectedIssue", row["_id"])
    assert f"CNY {_AMOUNTS[flagged]:.2f} at stake" in issue["detail"], issue["detail"]
