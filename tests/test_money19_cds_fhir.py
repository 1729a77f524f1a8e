"""A CDS answer posted after the FHIR order signed from its draft is recorded (nineteenth round,
money19): the EHR signs the draft (same id) without the reason and posts the override afterwards.
Before any result of the order, the answer is an order-time reason (the order was read once, when
first recorded, and the override was never applied: the repeat was *not payable*). A draft the
doctor "recognised" that is placed all the same counts once, as the order it became. Real HTTP
through FastAPI, the real store; the HL7 cases are in ``test_money19_cds_orders.py``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_pay18_cds_choices import REASONS, card_for, feedback, report, result, sign
from tests.test_pay18_cds_choices import ward as ward  # noqa: F401  (the pay18 world: HOSPA's CBC, Alice at HOSPB)


def test_a_cds_answer_posted_after_a_fhir_order_is_signed_counts_before_its_result(engine: Any,
                                                                                ward: dict[str, Any]) -> None:
    """The FHIR path: the EHR signs the draft (same id) without the reason, then posts the override."""
    http, p, w = ward["http"], ward["alice_b"], ward["world"]
    card = card_for(engine, http, p, "d9", "99999999-9999-4999-8999-999999999999")
    sign(engine, http, p, "d9")
    feedback(engine, http, {"card": card["uuid"], "outcome": "overridden",
                            "overrideReason": {"reason": {"system": REASONS, "code": "R04"}}})
    result(engine, http, p, "d9", w)
    [row] = report(engine, http)["rows"]
    assert (row["status"], row["reason"]) == ("justified", "R04"), row


@pytest.mark.parametrize("feedback_first", [True, False])
def test_a_draft_recognised_in_cds_and_placed_all_the_same_counts_once(engine: Any, ward: dict[str, Any],
                                                                       feedback_first: bool) -> None:
    """The doctor accepts "互认 recognise" and the EHR signs the draft anyway (or signed it before the
    feedback was posted): one order, re-tested -- 0 of 1 recognised, not 1 of 2."""
    http, p, w = ward["http"], ward["alice_b"], ward["world"]
    card = card_for(engine, http, p, "d8", "88888888-8888-4888-8888-888888888888")
    recognise = {"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}
    if feedback_first:
        feedback(engine, http, recognise)
        sign(engine, http, p, "d8")
    else:
        sign(engine, http, p, "d8")
        feedback(engine, http, recognise)
    result(engine, http, p, "d8", w)
    rates = report(engine, http)["recognition_rate"]
    assert [(r["recognisable"], r["recognised"], r["retested"]) for r in rates.values()] == [(1, 0, 1)], rates
