"""labelfix28: the narrow record of citations the rise cannot find by a search (real HTTP, real stores).

A record citing a result through a path no search parameter indexes (``ServiceRequest.supportingInfo``,
``CarePlan.supportingInfo``...) or from a contained record is noted, as it is written, in the store's
``result_citers`` collection; the rise reads the citing records of a rising result there (cost: the
citing records, not the store). Checked here on both backends (SQLite, mongomock): a citation dropped by
a later version is no longer followed; the once-per-store backfill fills the record for what was stored
before it existed; and every R4 backbone element that nests in itself (``section.section``,
``item.item``, ``action.action``) is read at any depth on every cited path through one.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.result_labels import CITATIONS, CITERS_COLLECTION, MARKER_COLLECTION, ResultLabels, results_cited
from tests.citation_world import get, labels_of, opened, put
from tests.test_privfix28_citations import DEFS

_TEXT = {"text": "复核"}


@pytest.fixture
def w(backend_settings):
    with opened(backend_settings) as world:
        yield world


def _plan(here: dict[str, Any], pid: str, cites: list[str]) -> dict[str, Any]:
    return {"resourceType": "CarePlan", "id": pid, "status": "active", "intent": "plan", "subject": here["subject"],
            "supportingInfo": [{"reference": r} for r in cites]}


def test_a_dropped_citation_is_not_followed_and_a_kept_one_is(w):
    """A care plan citing two results; its next version cites only the second: the first labelled R
    leaves the plan as it is, the second labelled R labels it (both backends)."""
    here = w.report("FNXRMYY-LIS-000201")
    first, second = here["result"][1]["reference"], here["result"][2]["reference"]
    put(w, _plan(here, "lf28-plan", [first, second]))
    put(w, _plan(here, "lf28-plan", [second]))
    citers = w.engine.repository.store.collection(CITERS_COLLECTION)
    assert [d["result"] for d in citers.find({"citer": "CarePlan/lf28-plan"})] == [second]
    assert labels_of(w.label(first, "R")) == ["R"]
    assert labels_of(get(w, "CarePlan/lf28-plan")) == []  # the dropped citation gives nothing
    assert labels_of(w.label(second, "R")) == ["R"]
    assert labels_of(get(w, "CarePlan/lf28-plan")) == ["R"]


def test_the_backfill_fills_the_narrow_record_for_what_was_stored_before(w):
    """A store whose narrow record is empty (written before this version): the backfill, once, notes
    the plan's citation, and a later rise labels it."""
    here = w.report("FNXRMYY-LIS-000201")
    result = here["result"][5]["reference"]
    put(w, _plan(here, "lf28-old-plan", [result]))
    store = w.engine.repository.store
    citers = store.collection(CITERS_COLLECTION)
    with store.transaction():
        for doc in citers.find({"citer": "CarePlan/lf28-old-plan"}):
            citers.delete(doc["_id"])
        store.collection(MARKER_COLLECTION).delete("-backfilled")
    assert citers.find({"citer": "CarePlan/lf28-old-plan"}) == []
    ResultLabels(w.engine.repository).backfill()
    assert [d["result"] for d in citers.find({"citer": "CarePlan/lf28-old-plan"})] == [result]
    assert labels_of(w.label(result, "R")) == ["R"]
    assert labels_of(get(w, "CarePlan/lf28-old-plan")) == ["R"]


def _recursive(defn: str) -> dict[str, str]:
    """R4's backbone elements of ``defn`` that hold themselves: element name -> its definition."""
    out = {}
    for name, prop in DEFS[defn].get("properties", {}).items():
        ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
        target = ref.rsplit("/", 1)[1] if ref else ""
        if "_" in target and target.split("_")[0] == defn and name in DEFS[target].get("properties", {}):
            out[name] = target
    return out


NESTED = sorted((t, ".".join(c.path)) for t, paths in CITATIONS.items() for c in paths
                if len(c.path) > 1 and c.path[0] in _recursive(t))


def test_every_cited_path_through_a_self_nesting_backbone_is_read_at_depth():
    """Every cited path whose first element R4 nests in itself (Composition.section, QuestionnaireResponse
    .item, RequestGroup.action, ...) is read three levels down, as at the top level."""
    assert {"Composition.section.entry", "QuestionnaireResponse.item.answer.valueReference",
            "RequestGroup.action.resource"} <= {f"{t}.{p}" for t, p in NESTED}  # guard: R4's nesting found
    for rtype, path in NESTED:
        head, *rest = path.split(".")
        leaf: Any = {"reference": "Observation/lf28-x"}
        for step in reversed(rest):
            leaf = {step: [leaf]}
        deep = {head: [{head: [{head: [leaf]}]}]}
        assert results_cited({"resourceType": rtype, "id": "n", **deep}) == [("Observation", "lf28-x")], path
    qr = {"resourceType": "QuestionnaireResponse", "id": "n",  # an answer's own items (item.answer.item)
          "item": [{"linkId": "1", "answer": [{"item": [{"linkId": "2", "answer": [
              {"valueReference": {"reference": "Observation/lf28-y"}}]}]}]}]}
    assert results_cited(qr) == [("Observation", "lf28-y")]
