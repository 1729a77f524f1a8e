"""rvpartyfix29: review of partyfix29 (the party rule's allow-list and the party's write).

Findings as plain failing tests on f07b2bb0 (the lead hands them to a fixer).

1. The allow-list (``mappings/access/referral_parties.yaml``) admits elements by *name*, and several admitted
   elements are free strings a writer fills as it likes: ``code.text``, ``category.text``, a Coding's ``display``,
   ``identifier.value``, ``requisition.value``, ``meta.source``, a tag's ``code``, a security label's ``version``,
   ``priority`` (stored as sent, though its value set is required), a Task's ``businessStatus.text``. A
   referral citing an R result that writes the result's value there is read, value and all, by the receiving
   hospital's bound system -- rvparty29's finding 1 again, on the elements the list lets through. (HL7 too: RF1-3,
   a CWE, maps to ``code``: its text and original text are the sender's words.)
2. A party keeps the citations of the version it reads (``_party_kept``) whatever else it changes: the receiving
   hospital re-routes the R referral to a third hospital (``performer``), which then reads it (and it keeps the
   citation of the result the sending hospital labelled R). The sending hospital named who may read it; the
   receiving one widens that. Likewise the subject can be changed while the citation is kept: another patient's
   referral cites this patient's restricted result.

Real path: the module engine of tests/test_party29_referrals.py (the example feeds over ``POST /hl7v2``), the
sending hospital's unbound system writing by FHIR PUT, systems bound to FNZYY (receiving) and FNFYBJY (neither)
over HTTP.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.citation_world import SEC, labels_of
from tests.test_party29_referrals import Parties, _inst
from tests.test_party29_referrals import w as party_world  # noqa: F401 (the fixture: one engine, module-scoped)


@pytest.fixture(scope="module")
def w(party_world: Parties) -> Parties:  # noqa: F811
    return party_world


def _value(w: Parties) -> str:
    return str(w.http.get(f"/fhir/{w.secret}", headers=w.his).json()["valueQuantity"]["value"])


def _free_text(v: str) -> dict[str, dict[str, Any]]:
    return {
        "code-text": {"code": {"text": f"转诊 血红蛋白 {v} g/L"}},
        "category-text": {"category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}],
                                        "text": f"转诊（血红蛋白 {v}）"}]},
        "coding-display": {"code": {"coding": [{"system": "urn:huren:test:referral-type", "code": "hb",
                                                "display": f"血红蛋白 {v} g/L"}]}},
        "identifier-value": {"identifier": [{"system": "urn:huren:test:referral", "value": f"HB-{v}"}]},
        "meta-source": {"meta": {"source": f"urn:huren:test:hb-{v}"}},
        "label-version": {"meta": {"security": [{"system": SEC, "code": "R", "version": f"血红蛋白{v}"}]}},
        "meta-tag": {"meta": {"tag": [{"system": "urn:huren:test:tag", "code": f"HB{v}"}]}},
        "priority": {"priority": f"HB{v}"},  # a code of a required value set, not checked on write: stored as sent
        "requisition": {"requisition": {"system": "urn:huren:test:req", "value": f"HB-{v}"}},
    }


@pytest.mark.parametrize("where", sorted(_free_text("0")))
def test_a_free_string_on_the_allow_list_stating_the_results_value_is_not_shown_to_the_party(w, where):
    """HIGH: each element is on the allow-list; each here states the withheld R result's value."""
    v = _value(w)
    rid = f"rvpf29-{where}"
    assert labels_of(w.referral(rid, w.here, w.secret, **_free_text(v)[where])) == ["R"]
    got = w.http.get(f"/fhir/ServiceRequest/{rid}", **w.bound_at("FNZYY"))
    # on f07b2bb0: 200 with the value in the body (e.g. code.text "转诊 血红蛋白 41.2 g/L")
    assert got.status_code == 404 or v not in got.text, (got.status_code, got.text[:400])


def test_a_tasks_business_status_text_stating_the_results_value_is_not_shown_to_its_owner(w):
    """HIGH (the Task neighbour): ``businessStatus`` is a concept, its text free."""
    v = _value(w)
    task = {"resourceType": "Task", "id": "rvpf29-task-text", "status": "requested", "intent": "order",
            "businessStatus": {"coding": [{"system": "urn:huren:referral-state", "code": "requested"}],
                               "text": f"待接收：血红蛋白 {v} g/L"},
            "focus": {"reference": "ServiceRequest/p29-ref"}, "for": w.here["subject"], "authoredOn": "2025-03-11",
            "requester": _inst("FNXRMYY"), "owner": _inst("FNZYY"), "reasonReference": {"reference": w.secret}}
    assert labels_of(w.put(task)) == ["R"]
    got = w.http.get("/fhir/Task/rvpf29-task-text", **w.bound_at("FNZYY"))
    assert got.status_code == 404 or v not in got.text, (got.status_code, got.text[:400])


def _as_party(w: Parties, rid: str) -> dict[str, Any]:
    w.referral(rid, w.here, w.secret)
    # the body the party read under partyfix29's rule; read as the sending system since the rule is out (partyoff29)
    body = w.http.get(f"/fhir/ServiceRequest/{rid}", headers=w.his).json()
    body.pop("meta")
    return body


def test_the_receiving_party_does_not_reroute_the_r_referral_to_a_third_hospital(w):
    """MED: the receiving hospital writes over the referral it reads, keeping the citation of the R result and
    naming a third hospital as performer: accepted (200), and the third hospital then reads the R referral. The
    sending hospital chose who reads it; either the write (keeping the citation) or the third's read must fail."""
    body = _as_party(w, "rvpf29-reroute")
    body["performer"] = [_inst("FNFYBJY")]
    put = w.http.put("/fhir/ServiceRequest/rvpf29-reroute", json=body, **w.bound_at("FNZYY"))
    third = w.http.get("/fhir/ServiceRequest/rvpf29-reroute", **w.bound_at("FNFYBJY"))
    assert put.status_code == 422 or third.status_code == 404, (put.status_code, third.status_code, third.text[:300])


def test_the_party_keeps_the_citation_only_for_the_same_subject(w):
    """LOW: the kept citation survives a change of the subject: another patient's referral now cites this
    patient's restricted result (accepted, 200). Keeping the citations is for working the same referral."""
    body = _as_party(w, "rvpf29-subject")
    body["subject"] = {"reference": "Patient/rvpf29-someone-else"}
    put = w.http.put("/fhir/ServiceRequest/rvpf29-subject", json=body, **w.bound_at("FNZYY"))
    assert put.status_code == 422, (put.status_code, put.text[:300])
