"""low44: a CDS hook's draft order without ``status`` or ``intent`` is no R4 ServiceRequest -- a 400 naming it.

R4 ServiceRequest.status and .intent are 1..1, and the order hooks' ``draftOrders`` hold orders "with draft status"
(CDS Hooks order-select / order-sign); a service may answer a request it cannot take 4xx (CDS Hooks "HTTP Status
Codes"). Such a draft had been read and carded (http43's left LOW). A status other than ``draft`` is taken -- an
order re-signed after revision is not a draft (CDS Hooks Library, order-sign). Real HTTP through FastAPI into the real
store with the recognition world's prior result (``tests.test_cds_hooks.ward``).
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.recognition.state import CARDS
from tests.test_cds_hooks import bearer, draft, hook_request, ward
from tests.test_recognition_world import B, cbc

__all__ = ["ward"]
SIGN = "/cds-services/huren-recognition-sign"
SELECT = "/cds-services/huren-recognition-select"


@pytest.mark.parametrize(("hook", "url"), [("order-sign", SIGN), ("order-select", SELECT)])
@pytest.mark.parametrize("missing", ["status", "intent"])
def test_a_draft_without_a_required_element_is_refused_naming_it(engine: Any, ward: dict[str, Any], hook: str,
                                                                url: str, missing: str) -> None:
    """The recognisable blood count drafted without ``status`` (or ``intent``): 400, an OperationOutcome naming
    ``context.draftOrders.entry[0].resource.<missing>`` as required -- no card, no card row kept."""
    p = ward["alice_b"]
    order = draft("d1", cbc(B), p)
    del order[missing]
    before = len(engine.recognition.store.collection(CARDS).find({}))
    r = ward["http"].post(url, json=hook_request(hook, p, [order], selections=["ServiceRequest/d1"]),
                          headers=bearer(engine))
    assert r.status_code == 400, (r.status_code, r.text[:400])
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    (issue,) = body["issue"]
    assert issue["code"] == "required" and issue["expression"] == [f"context.draftOrders.entry[0].resource.{missing}"]
    assert "required" in issue["diagnostics"] and "missing" in issue["diagnostics"], issue
    assert len(engine.recognition.store.collection(CARDS).find({})) == before


def test_a_draft_without_both_names_each_and_a_later_entry(engine: Any, ward: dict[str, Any]) -> None:
    """The second draft of two without either: the 400 names its status first and its intent beside it."""
    p = ward["alice_b"]
    second = {k: v for k, v in draft("d2", cbc(B), p).items() if k not in ("status", "intent")}
    r = ward["http"].post(SIGN, json=hook_request("order-sign", p, [draft("d1", cbc(B), p), second]),
                          headers=bearer(engine))
    assert r.status_code == 400, r.text[:400]
    assert [i["expression"] for i in r.json()["issue"]] == [["context.draftOrders.entry[1].resource.status"],
                                                           ["context.draftOrders.entry[1].resource.intent"]]


def test_a_status_not_a_code_is_refused(engine: Any, ward: dict[str, Any]) -> None:
    """``status`` present but no R4 code (a number): 400 naming it."""
    p = ward["alice_b"]
    r = ward["http"].post(SIGN, json=hook_request("order-sign", p, [{**draft("d1", cbc(B), p), "status": 5}]),
                          headers=bearer(engine))
    assert r.status_code == 400, r.text[:400]
    assert r.json()["issue"][0]["expression"] == ["context.draftOrders.entry[0].resource.status"]


@pytest.mark.parametrize("status", ["draft", "active"])
def test_guard_a_draft_with_its_status_gets_its_card(engine: Any, ward: dict[str, Any], status: str) -> None:
    """Guard: the draft with its status and intent -- ``draft``, or ``active`` (re-signed after revision) -- gets its
    card linking the prior result."""
    p = ward["alice_b"]
    r = ward["http"].post(SIGN, json=hook_request("order-sign", p, [{**draft("d1", cbc(B), p), "status": status}]),
                          headers=bearer(engine))
    assert r.status_code == 200, r.text[:400]
    [card] = r.json()["cards"]
    assert card["links"][0]["url"].endswith(ward["prior"])
