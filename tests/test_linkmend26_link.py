"""linkmend26: the desk's ``$link`` across two ID numbers is refused -- both types -- and what stays the desk's.

DOMAIN "Matching": one person is one ID number, no operator override. ``$link`` ``replaced-by`` asks
the HL7 merge's rule (``IdentityService.merge_refusal``); ``seealso`` puts the source in the target's
person, which the compartment (and so every resident token) follows just the same, so it asks the same
rule of what it joins (``link_refusal``). The answer is a 422 OperationOutcome ``business-rule``, Chinese
first, naming the two records and never their numbers, and the refusal is audited (outcome 4, both
records). Guards: a record with no number linked or merged into a numbered one is still taken, and a
link or merge of two numbers stored before the rule is still undone by ``$unlink`` (the repair an
operator needs). Real path: ``POST /hl7v2``, ``POST /fhir/Patient/$link``/``$unlink``, resident tokens.
"""

from __future__ import annotations

from tests.operator_calls import before_linkmend26
from tests.test_mergemend25_merge import A_NID, B_NID, _operator, _resident, world  # noqa: F401


def _call(http, headers, op: str, source: str, target: str, type_: str | None = None):
    ps = [{"name": "source", "valueReference": {"reference": f"Patient/{source}"}},
          {"name": "target", "valueReference": {"reference": f"Patient/{target}"}},
          {"name": "reason", "valueString": "checked at the desk"}]
    if type_:
        ps.append({"name": "type", "valueCode": type_})
    return http.post(f"/fhir/Patient/${op}", headers=headers, json={"resourceType": "Parameters", "parameter": ps})


def test_the_desks_seealso_of_two_id_numbers_is_refused_and_audited(world):  # noqa: F811
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    r = _call(http, _operator(world), "link", b, a)
    assert r.status_code == 422, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "business-rule" and issue["diagnostics"].startswith("关联的两份档案身份证号不同"), issue
    assert f"Patient/{b}" in issue["diagnostics"] and f"Patient/{a}" in issue["diagnostics"], issue
    assert A_NID not in r.text and B_NID not in r.text
    assert world.identity.person_compartment(a) == {a} and world.identity.person_compartment(b) == {b}
    ev = http.get(f"/fhir/Patient/{a}/$everything", headers=_resident(world, a))
    assert ev.status_code == 200 and "秘密" not in ev.text and B_NID not in ev.text
    # audited: one event, refused (4), naming both records
    refused = [e for e in world.audit.events() if any(c.get("code") == "identity-link" for c in e.get("subtype", ()))]
    assert len(refused) == 1 and refused[0]["outcome"] == "4" and refused[0]["outcomeDesc"] == "HTTP 422", refused
    said = str(refused[0])
    assert f"Patient/{a}" in said and f"Patient/{b}" in said and B_NID not in said


def test_seealso_into_a_person_holding_another_number_is_refused_from_either_side(world):  # noqa: F811
    """A record of A's number linked into B's person (target B) and B's into A's: both refused; the
    same number's record linked by hand into its own person is the desk's."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    a2 = register("MRN-A2", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    ops = _operator(world)
    assert _call(http, ops, "link", a2, b).status_code == 422
    assert _call(http, ops, "link", b, a2).status_code == 422
    assert _call(http, ops, "link", a2, a).status_code == 200
    assert world.identity.person_compartment(a) == {a, a2} and world.identity.person_compartment(b) == {b}


def test_a_numberless_record_linked_into_a_numbered_one_still_works(world):  # noqa: F811
    """An unidentified emergency record: ``seealso`` into A's person, then the same record merged
    (``replaced-by``) into A's -- both the desk's, A's token reads it; another numberless record
    linked from its own side (U2 -> A) too."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    u = register("MRN-U", None, "无名^氏", "19900101", "M")
    u2 = register("MRN-U2", None, "无名^氏", "19900101", "M")
    ops = _operator(world)
    assert _call(http, ops, "link", u, a).status_code == 200
    assert _call(http, ops, "link", a, u2).status_code == 200
    assert world.identity.person_compartment(a) >= {a, u, u2}
    assert _call(http, ops, "link", u, a, "replaced-by").status_code == 200
    assert world.identity.kept_record(u) == a
    ev = http.get(f"/fhir/Patient/{a}/$everything", headers=_resident(world, a))
    assert ev.status_code == 200 and u in ev.text and u2 in ev.text


def test_a_numberless_record_the_desk_put_in_as_person_is_not_merged_into_anothers(world):  # noqa: F811
    """U linked by hand into A's person stands for A's number: merged into B's record it would say
    A's record is B's -- refused, naming the undo of the earlier link; undone, it may be merged."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏", "19900101", "M")
    ops = _operator(world)
    assert _call(http, ops, "link", u, a).status_code == 200
    r = _call(http, ops, "link", u, b, "replaced-by")
    assert r.status_code == 422 and "$unlink" in r.text, r.text
    assert _call(http, ops, "unlink", u, a).status_code == 200
    assert _call(http, ops, "link", u, b, "replaced-by").status_code == 200
    assert world.identity.kept_record(u) == b and a not in world.identity.person_compartment(b)


def test_an_old_merge_and_an_old_link_of_two_numbers_are_still_undone(world):  # noqa: F811
    """Stored before the rule (the same ``$link``, the rule off): B merged into A, B2 linked into A's
    person. ``$unlink`` of each answers 200 and each resident's token reads her own records again."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    b2 = register("MRN-B2", B_NID, "钱^秘密")
    b3 = register("MRN-B3", B_NID, "钱^秘密")
    ops = _operator(world)
    with before_linkmend26(world):
        assert _call(http, ops, "link", b, a, "replaced-by").status_code == 200
        assert _call(http, ops, "link", b2, a).status_code == 200
    assert {b, b2} <= world.identity.person_compartment(a)  # the old leak, as stored
    assert _call(http, ops, "link", b3, a).status_code == 422  # no new record joins the old leak today
    assert _call(http, ops, "unlink", b, a).status_code == 200
    assert _call(http, ops, "unlink", b2, a).status_code == 200
    assert world.identity.person_compartment(a) == {a}
    assert world.identity.record(b).get("replaced_by") is None
    ev = http.get(f"/fhir/Patient/{a}/$everything", headers=_resident(world, a))
    assert ev.status_code == 200 and "秘密" not in ev.text and B_NID not in ev.text
    assert http.get(f"/fhir/Patient/{a}", headers=_resident(world, b)).status_code == 404
