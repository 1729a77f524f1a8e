"""partyfix29: the party rule lifts a referral's R label only when the referral holds structural elements alone.

The review of party29 (rvparty29) showed that matching a cited result's value against a referral's words is never
complete. The lead's decision: an allow-list, as data (``mappings/access/referral_parties.yaml``: ``structural``,
``shapes``, ``extensions``; ``policy.PartyRules.structural_only``). A referral or its Task labelled R for a result
it cites is read by its parties only when every element it holds, at any depth, is on the list. That covers its
own codes, dates, states and identifiers, its institutions by their codes, bare references, and the server's
deductible extension. Anything else keeps it withheld from them as from everyone (fail closed). The receiving
hospital still works a Task of structural elements (accepts it by PUT).

Real path: the module engine of tests/test_party29_referrals.py (the example feeds over ``POST /hl7v2``), the
sending hospital's unbound system writing by FHIR PUT, systems bound to FNZYY (receiving) and FNFYBJY (neither)
reading over HTTP.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.referral import deductibles
from tests.citation_world import SEC, labels_of
from tests.test_party29_referrals import Parties, _inst, _missing
from tests.test_party29_referrals import w as party_world  # noqa: F401 (the fixture: one engine, module-scoped)


@pytest.fixture(scope="module")
def w(party_world: Parties) -> Parties:  # noqa: F811
    return party_world


# each: an element off the allow-list, which no value-matching rule read as the result's (none states its value)
OFF_THE_LIST: dict[str, dict[str, Any]] = {
    "requester-display": {"requester": {**_inst("FNXRMYY"), "display": "阜宁县人民医院 检验科"}},
    "support-display": {"_support_display": True},
    "contained": {"contained": [{"resourceType": "Basic", "id": "b1", "code": {"text": "附注"}}]},
    "narrative": {"text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">转诊</div>"}},
    "instruction": {"patientInstruction": "空腹前来"},
    "reason-code": {"reasonCode": [{"text": "贫血待查"}]},
    "primitive-extension": {"_status": {"extension": [{"url": "urn:huren:test:x", "valueString": "附注"}]}},
    "label-display": {"meta": {"security": [{"system": SEC, "code": "R", "display": "受限：乙肝表面抗原"}]}},
}


@pytest.mark.parametrize("name", sorted(OFF_THE_LIST))
def test_an_element_off_the_list_withholds_the_referral_from_its_party(w, name):
    extra = dict(OFF_THE_LIST[name])
    rid = f"pf29-{name}"
    if extra.pop("_support_display", False):
        extra["supportingInfo"] = [{"reference": w.secret, "display": "血常规"}]
    got = w.referral(rid, w.here, w.secret, **extra)
    assert labels_of(got) == ["R"], got.get("meta")
    # (on party29's quoting match: 200 -- none of these quotes the result's value)
    _missing(w, w.bound_at("FNZYY"), f"ServiceRequest/{rid}")
    w.referral(rid, w.here, w.secret)  # guard: the same referral without it is read by its party
    assert w.http.get(f"/fhir/ServiceRequest/{rid}", **w.bound_at("FNZYY")).status_code == 200


def test_the_servers_deductible_is_on_the_list_and_a_third_hospital_reads_nothing(w):
    """Every referral carries the deductible the server computes (a writer's copy is replaced): shown to the party."""
    got = w.http.get("/fhir/ServiceRequest/p29-ref", **w.bound_at("FNZYY"))
    assert got.status_code == 200, got.text[:300]
    assert [e["url"] for e in got.json()["extension"]] == [deductibles.URL]
    _missing(w, w.bound_at("FNFYBJY"), "ServiceRequest/p29-ref")


def test_the_receiving_hospital_works_a_structural_task_and_not_one_with_an_output(w):
    """A Task shaped as the HL7 RF1 mapping writes it (identifier, the fixed ``fulfill`` code, businessStatus,
    ``restriction.period``), citing the R result by a bare ``reasonReference``: the owner reads it and accepts it.
    The same Task holding an ``output`` (the writer's words and values) is withheld from it."""
    receiving = w.bound_at("FNZYY")
    task = {"resourceType": "Task", "id": "pf29-task", "status": "requested", "intent": "order",
            "identifier": [{"system": "urn:huren:referral", "value": "ZZ-0001"}],
            "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill",
                                 "display": "Fulfill the focal request"}]},
            "businessStatus": {"coding": [{"system": "urn:huren:referral-state", "code": "requested"}]},
            "focus": {"reference": "ServiceRequest/p29-ref"}, "for": w.here["subject"],
            "authoredOn": "2025-03-11", "restriction": {"period": {"end": "2025-04-11"}},
            "requester": _inst("FNXRMYY"), "owner": _inst("FNZYY"), "reasonReference": {"reference": w.secret}}
    with_output = {**task, "output": [{"type": {"text": "结论"}, "valueString": "已阅"}]}
    assert labels_of(w.put(with_output)) == ["R"]
    _missing(w, receiving, "Task/pf29-task")  # (on party29: 200)
    assert labels_of(w.put(task)) == ["R"]
    got = w.http.get("/fhir/Task/pf29-task", **receiving)
    assert got.status_code == 200, got.text[:300]
    shown = w.http.get("/fhir/Task?focus=ServiceRequest/p29-ref&_summary=count", **receiving).json()["total"]
    assert shown >= 1 and w.http.get("/fhir/Task?focus=ServiceRequest/p29-ref&_summary=count",
                                     **w.bound_at("FNFYBJY")).json()["total"] == 0
    accepted = {k: v for k, v in got.json().items() if k != "meta"}
    accepted.update(status="accepted",
                    businessStatus={"coding": [{"system": "urn:huren:referral-state", "code": "accepted"}]})
    done = w.http.put("/fhir/Task/pf29-task", json=accepted, **receiving)
    assert done.status_code == 200, done.text[:300]
    assert w.engine.referrals.row("ServiceRequest/p29-ref")["state"] == "accepted"
