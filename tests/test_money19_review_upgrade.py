"""An auditor's review on a store decided again by newer code (nineteenth round, money19): HL7 over
a real MLLP socket, the review over real HTTP, the real store.

A review stands while the facts it was made on stand: the prior, the order-time reason and the
finding that the reason is contradicted by records. That finding was compared by its words, and its
words name instants: R98's "huren held <prior> since <instant>, before the order was placed". An
upgraded store reads that instant anew (the thirteenth round's ``final_at`` back-fill: the start of
the prior's final run, not its first storing; kept to the millisecond where it was to the second),
so on the next message that decides an upheld R98 flag again -- its charge line, say -- the review
"no longer matched", and the flag went back to open, not payable but off the deduction list, with
nothing said. The review here is stored as such a release wrote it (the same finding, another
instant in its words); the flag must stay upheld.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, community_engine, order, result, ts

R98 = "R98^外院结果无法调阅^urn:huren:recognition-reason"


def bill(engine: Engine, http: TestClient, flag: dict[str, Any]) -> None:
    token = engine.auth.issue_system_token("his-b", "system/ChargeItem.cruds system/DiagnosticReport.rs")
    charge = {"resourceType": "ChargeItem", "id": "charge-b1", "status": "billable",
              "code": {"coding": [{"system": "urn:huren:price-code", "code": "250101001"}]},
              "subject": {"reference": flag["patient"]}, "quantity": {"value": 1},
              "priceOverride": {"value": 20.0, "currency": "CNY"}, "service": [{"reference": flag["result"]}]}
    res = http.put("/fhir/ChargeItem/charge-b1", json=charge, headers={"Authorization": f"Bearer {token}"})
    assert res.status_code in (200, 201), res.text


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from community_engine(tmp_path)


def test_an_upheld_r98_flag_stays_upheld_when_its_note_is_worded_anew(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, ts(3)))
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R98))
    copy = result("HOSPB", "B1", CBC, ts(1, 10))
    assert "contradicted by records" in hl7.send(copy)
    [flag] = [f for f in engine.recognition.flags.find({}) if f["status"] == "flagged"]
    http = TestClient(create_app(engine))
    token = engine.auth.issue_system_token("auditor", "system/DetectedIssue.rus", kind="auditor")
    res = http.post(f"/reports/duplicates/{flag['_id']}/review", json={"decision": "upheld", "reason": "复核属实"},
                    headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 200, res.text
    row = engine.recognition.flags.get(flag["_id"])
    review = row["reviews"][-1]
    assert review["contradicted"].startswith("reason contradicted by records: huren held"), review
    # as an older release worded it: the same finding, the prior's instant read another way
    older = {**review, "contradicted": review["contradicted"].replace(" since ", " since 1999-01-01T00:00:00Z ~ ", 1)}
    engine.recognition.flags.replace({**row, "reviews": [*row["reviews"][:-1], older]})
    bill(engine, http, flag)  # the next message about the test: its charge line
    row = engine.recognition.flags.get(flag["_id"])
    assert (row["status"], row["reason"], bool(row["contradicted"])) == ("upheld", "R98", True), row
    assert engine.repository.read("DetectedIssue", flag["_id"])["status"] == "final"


def test_a_review_is_reopened_when_the_finding_changes(engine: Engine, mllp: int) -> None:
    """The guard's other side: a review made on another finding (no contradiction) does not stand;
    the flag is decided again (open, not payable) and the review stays in its history."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, ts(3)))
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R98))
    copy = result("HOSPB", "B1", CBC, ts(1, 10))
    hl7.send(copy)
    [flag] = [f for f in engine.recognition.flags.find({}) if f["status"] == "flagged"]
    http = TestClient(create_app(engine))
    token = engine.auth.issue_system_token("auditor", "system/DetectedIssue.rus", kind="auditor")
    http.post(f"/reports/duplicates/{flag['_id']}/review", json={"decision": "upheld", "reason": "复核属实"},
              headers={"Authorization": f"Bearer {token}"})
    row = engine.recognition.flags.get(flag["_id"])
    # a review made when the flag stated no contradiction (another finding): it does not stand
    engine.recognition.flags.replace({**row, "reviews": [{**row["reviews"][-1], "contradicted": None}]})
    bill(engine, http, flag)
    assert engine.recognition.flags.get(flag["_id"])["status"] == "flagged"
