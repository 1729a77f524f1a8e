"""The reason recorded at order time stands, the CDS answer beside the signed order (eighteenth
round, payfix18: review of pay18). Real HTTP through FastAPI: the CDS call and its feedback, the
order signed by ``PUT /fhir/ServiceRequest``, its result, ``/reports/duplicates``.

A reason given in CDS fills in only when the signed order states none; the order's own stated
reason wins; an override's comment is the text of its own code only; the doctor's later answer
for a draft replaces an earlier one.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_pay18_cds_choices import REASONS, card_for, feedback, report, result, sign, ward

__all__ = ["ward"]

S1 = "61111111-1111-4111-8111-111111111111"
S2 = "62222222-2222-4222-8222-222222222222"


def override(code: str, comment: str | None = None) -> dict[str, Any]:
    reason: dict[str, Any] = {"reason": {"system": REASONS, "code": code}}
    if comment:
        reason["userComment"] = comment
    return {"outcome": "overridden", "overrideReason": reason}


def stating(code: str, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": REASONS, "code": code}]}
    if text:
        concept["text"] = text
    return {"reasonCode": [concept]}


def decided(engine: Any, ward: dict[str, Any], answers: list[dict[str, Any]], signed: dict[str, Any]) -> tuple[str, str]:
    """Each answer given on its own card for draft "d9" (one hook call each), then the order signed."""
    http, p = ward["http"], ward["alice_b"]
    for n, answer in enumerate(answers):
        card = card_for(engine, http, p, "d9", (S1, S2)[n])
        if answer.get("outcome") == "accepted":
            chosen = next(s["uuid"] for s in card["suggestions"]
                          if answer["pick"] == "recognise" and "Recognise" in s["label"]
                          or answer["pick"] in s["label"])
            answer = {"outcome": "accepted", "acceptedSuggestions": [{"id": chosen}]}
        feedback(engine, http, {"card": card["uuid"], **answer})
    sign(engine, http, p, "d9", **signed)
    result(engine, http, p, "d9", ward["world"])
    [row] = report(engine, http)["rows"]
    return row["status"], row["reason"]


@pytest.mark.parametrize(("answers", "signed", "expected"), [
    # the order states R06 without text: R07's comment is not R06's text (was justified R06)
    ([override("R07", "家属要求复查")], stating("R06"), ("flagged", None)),
    # the order's own R07 stands against CDS's R01 (was justified R01)
    ([override("R01")], stating("R07"), ("self_pay", "R07")),
    # order-select re-test R01, then order-sign override R07: the later answer stands (was R01)
    ([{"outcome": "accepted", "pick": "R01"}, override("R07")], {}, ("self_pay", "R07")),
    # a re-test answer withdrawn by a later "recognise": the order signed anyway states nothing
    ([override("R04"), {"outcome": "accepted", "pick": "recognise"}], {}, ("flagged", None)),
    # an override's comment that is only its code's name is no text
    ([override("R06", "其他必要复查")], {}, ("flagged", None)),
    # the order states R07 and R06 without text: R07's comment is not R06's (review of payfix18: was
    # justified R06, the order's one text serving both codes)
    ([override("R07", "家属要求复查")], {"reasonCode": [stating("R07")["reasonCode"][0], stating("R06")["reasonCode"][0]]},
     ("self_pay", "R07")),
])
def test_the_order_s_own_reason_and_the_doctor_s_last_answer_stand(
        engine: Any, ward: dict[str, Any], answers: list[dict[str, Any]], signed: dict[str, Any],
        expected: tuple[str, str | None]) -> None:
    assert decided(engine, ward, answers, signed) == expected


@pytest.mark.parametrize(("answers", "signed", "expected"), [
    # the comment was given with R06, the order states R06 without text: it is R06's text
    ([override("R06", "术后出血需复查")], stating("R06"), ("justified", "R06")),
    # an order stating nothing takes the CDS reason, as before
    ([override("R04", "急诊")], {}, ("justified", "R04")),
    # an override without a reason in huren's system leaves the earlier answer
    ([override("R04"), {"outcome": "overridden", "overrideReason": {"reason": {"system": "urn:x", "code": "Z"}}}],
     {}, ("justified", "R04")),
    # the order's own text stands beside its code
    ([override("R07", "家属要求复查")], stating("R06", "术后出血需复查"), ("justified", "R06")),
])
def test_neighbours_that_keep_their_answer(engine: Any, ward: dict[str, Any], answers: list[dict[str, Any]],
                                           signed: dict[str, Any], expected: tuple[str, str | None]) -> None:
    assert decided(engine, ward, answers, signed) == expected
