"""privleft26: the desk's merge (``$link`` type ``replaced-by``) of two ID numbers' records -- decided: refused.

Decided by privleft26 (the first test was a strict xfail, README privleft26); done by linkmend26 in the
same round (``IdentityService.link_refusal``; guards in ``tests/test_linkmend26_link.py``).

DOMAIN "Matching": the same person is document type + number (name, sex and birth date are only
consistency checks), and it provides no operator override. A merge says two records are one person,
so a merge of two records carrying two different valid national ID numbers is to be refused whoever
states it -- the HL7 merge since mergemend25 (AE at MRG-1), the desk's ``$link replaced-by`` too (422
OperationOutcome ``business-rule``, the reason in Chinese first): the one rule
(``IdentityService.merge_refusal``). Today the desk's merge of B's record into A's is taken (200):
B's record joins A's person, and A's resident token reads B's record -- name, number, visit -- at every
hospital. The remedy the answer names: the hospital corrects the wrong record's number first
(ADT^A08), then merges. A merge of one number's records, or of a record with no number, is the
desk's as before. Real path: ``POST /hl7v2``, ``POST /fhir/Patient/$link``, resident tokens over HTTP.
"""

from __future__ import annotations

from tests.test_mergemend25_merge import A_NID, B_NID, _operator, _resident, world  # noqa: F401


def _link(http, headers, source: str, target: str):
    return http.post("/fhir/Patient/$link", headers=headers, json={"resourceType": "Parameters", "parameter": [
        {"name": "source", "valueReference": {"reference": f"Patient/{source}"}},
        {"name": "target", "valueReference": {"reference": f"Patient/{target}"}},
        {"name": "type", "valueCode": "replaced-by"},
        {"name": "reason", "valueString": "duplicate registration"}]})


def test_the_desks_merge_of_two_id_numbers_is_refused_naming_why(world):  # noqa: F811
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    r = _link(http, _operator(world), b, a)
    assert r.status_code == 422, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["code"] == "business-rule" and "身份证号不同" in issue["diagnostics"], issue
    assert "correct the wrong record's ID number first" in issue["diagnostics"], issue
    # nothing changed: two persons, each token reads its own record only
    assert world.identity.person_compartment(a) == {a} and world.identity.person_compartment(b) == {b}
    assert world.identity.record(b).get("replaced_by") is None
    ev = http.get(f"/fhir/Patient/{a}/$everything", headers=_resident(world, a))
    assert ev.status_code == 200 and B_NID not in ev.text and "秘密" not in ev.text, ev.text[:400]
    assert http.get(f"/fhir/Patient/{b}", headers=_resident(world, a)).status_code == 404
    assert http.get(f"/fhir/Patient/{a}", headers=_resident(world, b)).status_code == 404


def test_the_desks_merge_of_one_numbers_records_or_a_numberless_one_is_taken(world):  # noqa: F811
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    a2 = register("MRN-A2", A_NID, "赵^一")
    u = register("MRN-U", None, "无名^氏", "19900101", "M")
    ops = _operator(world)
    assert _link(http, ops, a2, a).status_code == 200
    assert _link(http, ops, u, a).status_code == 200
    assert world.identity.person_compartment(a) == {a, a2, u}
    assert world.identity.kept_record(u) == a == world.identity.kept_record(a2)
