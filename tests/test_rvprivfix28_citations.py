"""rvprivfix28: review of privfix28's result citations -- failing tests (real HTTP, real SQLite store).

1. Nested backbone repeats (Composition.section.section.entry, QuestionnaireResponse.item.item.answer
   .valueReference, RequestGroup.action.action.resource) are not read: a record citing an R result
   there is stored unlabelled (the completeness test stops at the first level by construction).
2. The rise's person scan misses a citing record in another person's compartment: a newborn's order
   citing the mother's result (the mark labels the same order written after the rise).
3. A referral is left out "because the receiving hospital must read it" -- but left unlabelled it is
   shown, with the withheld result's id, to every other institution too.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.citation_world import World, get, labels_of, opened, put, settings_in

_TEXT = {"text": "复核"}


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    with opened(settings_in(tmp_path_factory, "rvprivfix28")) as world:
        yield world


def _third(w: World) -> dict[str, Any]:
    """A system bound to 阜宁县第一人民医院... any institution neither sending nor receiving the referral."""
    token, _ = w.engine.auth.issue_token(subject="his-fnylwsy", kind="system", client_id="his-fnylwsy",
                                         scopes=["system/*.rs"], extra={"institution": "FNYLWSY"})
    return {"headers": w.h(token)}


def _nested(rtype: str, subject: dict[str, Any], ref: str) -> dict[str, Any]:
    cite = {"reference": ref}
    if rtype == "Composition":
        return {"status": "final", "type": _TEXT, "date": "2025-03-11", "title": "出院小结", "subject": subject,
                "author": [{"display": "医生"}],
                "section": [{"title": "检验", "section": [{"title": "血常规", "entry": [cite]}]}]}
    if rtype == "QuestionnaireResponse":
        return {"status": "completed", "subject": subject,
                "item": [{"linkId": "g1", "item": [{"linkId": "q1", "answer": [{"valueReference": cite}]}]}]}
    return {"status": "active", "intent": "plan", "subject": subject,  # RequestGroup
            "action": [{"title": "复查", "action": [{"title": "血常规", "resource": cite}]}]}


@pytest.mark.parametrize("rtype", ["Composition", "QuestionnaireResponse", "RequestGroup"])
def test_a_record_citing_an_r_result_in_a_nested_backbone_element_is_labelled_r(w, rtype):
    """Finding 1: R4 nests sections, items and actions; a discharge summary's sub-section naming an R
    result is as confidential as the one naming it at the top level (which the mark labels)."""
    here = w.report("FNXRMYY-LIS-000201")
    secret = here["result"][3]["reference"]
    w.label(secret, "R")
    body = {"resourceType": rtype, "id": f"rv28-nested-{rtype.lower()}", **_nested(rtype, here["subject"], secret)}
    assert labels_of(put(w, body)) == ["R"], f"{rtype} citing {secret} one level down stays unlabelled"


def test_an_order_of_another_patient_citing_a_result_takes_its_label_when_it_rises(w):
    """Finding 2: a newborn's order citing the mother's result (PMTCT: the mother's HIV or HBsAg test
    is why the infant is tested) is in the newborn's compartment, not the mother's person's, and names a
    patient: the rise never reads it, while the mark (guard) labels the same order written after."""
    here = w.report("FNXRMYY-LIS-000201")
    result = here["result"][6]["reference"]
    put(w, {"resourceType": "Patient", "id": "rv28-newborn", "name": [{"text": "王建国之子"}], "gender": "male",
             "birthDate": "2025-03-10"})
    order = {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "code": _TEXT,
             "subject": {"reference": "Patient/rv28-newborn"}, "supportingInfo": [{"reference": result}]}
    put(w, {**order, "id": "rv28-infant-order"})
    assert labels_of(w.label(result, "R")) == ["R"]
    assert labels_of(put(w, {**order, "id": "rv28-infant-order-after"})) == ["R"]  # guard: the mark
    assert labels_of(get(w, "ServiceRequest/rv28-infant-order")) == ["R"]


SNOMED_REFERRAL = {"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}


def test_a_referral_naming_an_r_result_does_not_show_its_id_to_an_institution_outside_the_referral(w):
    """Finding 3: left_out_when's reason is that the *receiving* hospital must read the referral; left
    unlabelled, it is read by every institution of the community, the withheld result's id with it."""
    here = w.report("FNXRMYY-LIS-000201")
    result = here["result"][8]["reference"]
    assert labels_of(w.label(result, "R")) == ["R"]
    put(w, {"resourceType": "ServiceRequest", "id": "rv28-referral", "status": "active", "intent": "order",
             "code": {"text": "转诊"}, "subject": here["subject"], "category": [{"coding": [SNOMED_REFERRAL]}],
             "reasonReference": [{"reference": result}],
             "requester": {"identifier": {"system": "urn:huren:institution", "value": "FNXRMYY"}},
             "performer": [{"identifier": {"system": "urn:huren:institution", "value": "FNZYY"}}]})
    third = _third(w)
    assert w.http.get(f"/fhir/{result}", **third).status_code == 404  # guard: the result is withheld from it
    r = w.http.get("/fhir/ServiceRequest/rv28-referral", **third)
    assert r.status_code == 404 or result not in r.text, r.text[:400]


def test_a_task_that_is_no_referral_naming_an_r_result_does_not_show_its_id_to_another_institution(w):
    """Finding 4: ``left_out`` leaves every Task out for the referral workflow's reason ("labelling the
    referral R would withdraw it from the hospital receiving it"); a Task that belongs to no referral -- a
    follow-up reminder a hospital's system writes about the result -- is shown unlabelled, the withheld
    result's id with it, to every institution."""
    here = w.report("FNXRMYY-LIS-000201")
    result = here["result"][9]["reference"]
    assert labels_of(w.label(result, "R")) == ["R"]
    put(w, {"resourceType": "Task", "id": "rv28-task", "status": "requested", "intent": "order",
             "code": {"text": "复查提醒"}, "for": here["subject"], "focus": {"reference": result},
             "input": [{"type": _TEXT, "valueReference": {"reference": result}}]})
    third = _third(w)
    assert w.http.get(f"/fhir/{result}", **third).status_code == 404  # guard: the result is withheld from it
    r = w.http.get("/fhir/Task/rv28-task", **third)
    assert r.status_code == 404 or result not in r.text, r.text[:400]
