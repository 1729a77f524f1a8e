"""A report whose only result the lab withdrew is no recognisable prior, whatever OBR-25 the withdrawal carries
(thirty-ninth round, stfix39; review rv39a HIGH 1-2, MED 3: ``merge_rules._none_standing``).

The LIS's W after a final comes under OBR-25 C ("correction to results", HL7 table 0123: what labs commonly send
for any change after a final), F, or P. stfix38 took the report with its withdrawn results under OBR-25 P over
a final report only: under C or F the report stayed corrected or final -- statuses the recognition engine counts
as a performed test (``recognition.decision.FINAL_STATUSES``) -- beside its only result withdrawn. Over a real
MLLP socket into the policy tests' community (HOSPA, HOSPB, HOSPC; QC passed): HOSPA's blood count flags HOSPB's
repeat, HOSPA withdraws it, and the flag, HOSPB's order-time check and a later order's check must all say there
is nothing to recognise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.messages import message_id
from tests.test_hooks11_policy_edges import flag_of, flags, issue_status, repeat, result
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, community_engine, order, ts


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from community_engine(tmp_path)


def _withdrawal(obr25: str) -> str:
    """HOSPA's W of its blood count (OBX-11 W) under OBR-25 ``obr25``, MSH-7 two hours after the final."""
    when = ts(5, 10)
    sent = result("HOSPA", "A1", CBC, when, status="W")
    assert sent.count("|||X\n") == 1 and sent.count(f"|C1|{when}|") == 1
    return sent.replace("|||X\n", f"|||{obr25}\n").replace(f"|C1|{when}|", f"|C1|{ts(5, 12)}|")


def _report(engine: Engine) -> dict:
    doc = engine.ingestor.messages.get(message_id("HOSPA", "HOSPA-ORU-A1-F"))
    assert doc is not None
    (ref,) = [r for r in doc["resources"] if r.startswith("DiagnosticReport/")]
    return engine.repository.read("DiagnosticReport", ref.split("/")[1])


@pytest.mark.parametrize("obr25", ["C", "F", "P"])
def test_a_withdrawal_under_any_obr25_on_the_path_voids_the_flag_and_the_prior(
        engine: Engine, mllp: int, obr25: str) -> None:
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1)
    assert flag_of(engine) == "flagged", flags(engine)
    [check] = [c for c in engine.recognition.checks.find({}) if c["inst"] == "HOSPB"]
    assert check["outcome"] == "duplicate", check

    ack = hl7.send(_withdrawal(obr25))
    assert "MSA|AA" in ack, ack
    report = _report(engine)
    assert report["status"] == "entered-in-error", (report["status"], ack)
    assert "|OBR^1^25|" in ack and "entered-in-error" in ack, ack  # (the W says why OBR-25 was not stored)
    assert flag_of(engine) == "void", flags(engine)
    assert issue_status(engine) == "cancelled"
    [check] = [c for c in engine.recognition.checks.find({}) if c["inst"] == "HOSPB"]
    assert check["outcome"] != "duplicate", check

    # an order placed after the withdrawal: its order-time check finds HOSPB's result, not HOSPA's withdrawn one
    assert "MSA|AA" in hl7.send(order("HOSPC", "C1", CBC, ts(0)))
    [later] = [c for c in engine.recognition.checks.find({}) if c["inst"] == "HOSPC"]
    assert later.get("recognisable") and f"DiagnosticReport/{report['id']}" not in later["recognisable"], later


def test_a_withdrawal_beside_a_standing_result_keeps_the_report_and_its_flag(engine: Engine, mllp: int) -> None:
    """Control: HOSPA's report of two results, one withdrawn under OBR-25 C: one still stands, so the report is
    corrected (a performed test) and HOSPB's repeat stays flagged."""
    hl7 = Sender(mllp)
    two = "OBX|2|NM|RBC^红细胞^L||4.5|10*12/L|||||F|||{when}\n"
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10)) + two.format(when=ts(5, 10)))
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    assert flag_of(engine) == "flagged", flags(engine)
    ack = hl7.send(_withdrawal("C") + two.format(when=ts(5, 10)))
    assert "MSA|AA" in ack, ack
    assert _report(engine)["status"] == "corrected"
    assert flag_of(engine) == "flagged", flags(engine)
