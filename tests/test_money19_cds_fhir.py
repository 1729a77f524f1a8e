"""A CDS answer posted after the FHIR order signed from its draft is recorded (nineteenth round,
money19): the EHR signs the draft (same id) without the reason and posts the override afterwards.
Before any result of the order, the answer is an order-time reason (the order was read once, when
first recorded, and the override was never applied: the repeat was *not payable*). Real HTTP
through FastAPI, the real store; the HL7 cases are in ``test_money19_cds_orders.py``."""

from __future__ import annotations

from typing import Any

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
