"""What a message says beside a resource's content is typed, and the merge rules' exceptions are data
(conv13).

``Context.deletes`` carried deletes, "assumed" marks and the field that stated an element as
sentinel entries of one list typed ``Any`` that ``merge_rules`` filtered back out; they are now
``engine.merge_rules.Said`` (``Delete`` entries, ``assumed``, ``fields``). The ``entered-in-error``
exception to ``stands`` was code in ``merge_rules``; it is ``yields_to`` in ``merge.yaml``, so a
site's file decides it too. Behaviour unchanged: the MLLP tests of merge11/merge12/efix12 pass as
they did.
"""

from __future__ import annotations

from adapters.convert import convert
from adapters.hl7v2.parser import parse
from engine.engine import Engine
from engine.merge_rules import Delete, MergeRules, Said, shipped
from tests.test_merge12_order_after_result import order, result


def test_a_conversion_names_what_it_said_by_kind(engine: Engine) -> None:
    said = convert(parse(result("T1", "P").decode()), engine.site).said
    (request,) = [s for r, s in said.items() if r.startswith("ServiceRequest/")]
    # (OBR-11 empty: the intent is assumed too, cfix13)
    # (the test, OBR-4, located for the merge rules' ``another``: gfix13; the order number that keys
    # it, OBR-2, for ``another_person``: placer19)
    assert request.assumed == frozenset({"status", "intent"}) and request.deletes == ()
    assert request.fields == (("code", "OBR[1]-4"), ("subject", "OBR[1]-2"))
    said = convert(parse(order("T2", "CA").decode()), engine.site).said
    (request,) = [s for r, s in said.items() if r.startswith("ServiceRequest/")]
    assert dict(request.fields) == {"status": "ORC[1]-1", "code": "OBR[1]-4", "subject": "OBR[1]-2"} and request.assumed == frozenset({"intent"})
    (patient,) = [s for r, s in said.items() if r.startswith("Patient/")]
    assert patient.assumed == frozenset({"active"})  # an order message does not state it


def order_status(rules: MergeRules, incoming: str) -> tuple[str, list[str]]:
    stored = {"resourceType": "ServiceRequest", "id": "o1", "status": "completed"}
    with rules.saying({"ServiceRequest/o1": Said(fields=(("status", "ORC[1]-5"),))}):
        combined = rules.combine(stored, {**stored, "status": incoming}, "ORM")
    return combined.resource["status"], [i.get("location", [""])[0] for i in combined.issues]


def test_what_no_stored_value_stands_against_is_data() -> None:
    assert order_status(shipped(), "entered-in-error") == ("entered-in-error", [])
    assert order_status(shipped(), "revoked") == ("completed", ["ORC[1]-5"])
    data = dict(shipped().data)
    resources = {**data["resources"], "ServiceRequest": {
        **data["resources"]["ServiceRequest"], "status": {"stands": {"order": ["completed"]}}}}
    site = MergeRules({**data, "resources": resources}, "site merge.yaml")  # a site's file without it
    assert order_status(site, "entered-in-error") == ("completed", ["ORC[1]-5"])


def test_a_delete_says_what_took_the_value() -> None:
    stored = {"resourceType": "Patient", "id": "p1", "maritalStatus": {"text": "已婚"}}
    with shipped().saying({"Patient/p1": Said(deletes=(Delete("maritalStatus", why="test's reason"),))}):
        combined = shipped().combine(stored, {"resourceType": "Patient", "id": "p1"}, "ADT")
    assert "maritalStatus" not in combined.resource
    (issue,) = combined.issues
    assert "test's reason" in issue["diagnostics"] and issue["severity"] == "information"
