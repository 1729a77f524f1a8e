"""rvlink26 probes of linkmend26's ``$link`` rule (real path: POST /hl7v2 registrations, POST
/fhir/Patient/$link, resident tokens' $everything, the real store)."""

from __future__ import annotations

from tests.test_linkmend26_link import _call
from tests.test_mergemend25_merge import A_NID, B_NID, _msg, _operator, _pid, _resident, world  # noqa: F401


def test_seealso_of_a_hand_linked_numberless_record_into_a_numberless_record_holding_b_is_refused(world):  # noqa: F811
    """U (no number) was linked by the desk into A's person; T (no number, in no person) had B's
    record X merged into it by the desk (allowed: T has no number). Now U ``seealso`` T: T joins
    U's person (``_joinable``: U stays), so the link joins A's person to T, which the desk said is
    B's. ``link_refusal`` skips U's person (``leaving=source``) though U does not leave it here:
    expected 422 like the same click as ``replaced-by`` (merge_refusal counts U's person)."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    x = register("MRN-X", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏", "19900101", "M")
    t = register("MRN-T", None, "无名^乙", "19921120", "F")
    ops = _operator(world)
    assert _call(http, ops, "link", u, a).status_code == 200
    assert _call(http, ops, "link", x, t, "replaced-by").status_code == 200
    assert _call(http, ops, "link", u, t, "replaced-by").status_code == 422  # the merge is refused
    r = _call(http, ops, "link", u, t)  # the same join as seealso
    ev = http.get(f"/fhir/Patient/{a}/$everything", headers=_resident(world, a))
    assert ev.status_code == 200
    assert r.status_code == 422 and t not in ev.text, (
        r.status_code, t in world.identity.person_compartment(a), t in ev.text, "乙" in ev.text,
        sorted(world.identity.person_compartment(x)))


def test_seealso_of_a_hand_linked_numberless_record_into_the_b_record_itself(world):  # noqa: F811
    """U linked into A's person, then U ``seealso`` B's record: U moves to B's person (the desk
    corrects itself) -- A's token must no longer read U, and no record of A joins B."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏", "19900101", "M")
    ops = _operator(world)
    assert _call(http, ops, "link", u, a).status_code == 200
    r = _call(http, ops, "link", u, b)
    if r.status_code == 200:
        assert world.identity.person_compartment(b) == {b, u}
        assert world.identity.person_compartment(a) == {a}
    else:
        assert r.status_code == 422, r.text


def test_a_record_whose_number_was_corrected_links_to_its_own_number(world):  # noqa: F811
    """R registered with B's number by mistake, corrected by an A08 to A's: the desk's link (either
    type) to A's record is the desk's -- no stale B counted."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    r_ = register("MRN-R", B_NID, "赵^一")
    send("A08", _pid("MRN-R", A_NID, "赵^一"))
    ops = _operator(world)
    assert world.identity.record(r_).get("nid_key") == world.identity.record(a).get("nid_key")
    r = _call(http, ops, "link", r_, a)
    assert r.status_code == 200, r.text
    r = _call(http, ops, "link", r_, a, "replaced-by")
    assert r.status_code == 200, r.text
    assert world.identity.kept_record(r_) == a


def test_refusal_reaches_no_one_but_an_operator_and_names_no_name(world):  # noqa: F811
    """A resident (or a system token without the operator right) gets 403 before the rule -- no
    422 oracle of whether two records carry two numbers; the operator's 422 names no name."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    r = _call(http, _resident(world, a), "link", b, a)
    assert r.status_code in (401, 403), r.text
    r = _call(http, _operator(world), "link", a, b, "replaced-by")
    assert r.status_code == 422 and "秘密" not in r.text and "赵" not in r.text and A_NID not in r.text, r.text
    assert r.json()["issue"][0]["code"] == "business-rule"


def test_an_unidentified_record_linked_both_ways_to_numbered_persons_is_refused_the_second_time(world):  # noqa: F811
    """T (no number) ``seealso`` into A's person, then B's record ``seealso`` T (target T now in A's
    person): refused; and T -> B (T leaves A's person for B's) is the desk's correction."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    t = register("MRN-T", None, "无名^氏", "19900101", "M")
    ops = _operator(world)
    assert _call(http, ops, "link", t, a).status_code == 200
    assert _call(http, ops, "link", b, t).status_code == 422
    assert _call(http, ops, "link", b, t, "replaced-by").status_code == 422
    assert world.identity.person_compartment(a) == {a, t}
    ev = http.get(f"/fhir/Patient/{b}/$everything", headers=_resident(world, b))
    assert ev.status_code == 200 and "赵" not in ev.text


def test_a_refused_link_shows_a_resident_no_other_record_in_who_looked(world):  # noqa: F811
    """The refusal is audited on both records (detail: the refusal text, naming both Patient ids).
    B's 谁看过我的档案 may say the desk acted on her record, not name A's record or A."""
    import json

    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    assert _call(http, _operator(world), "link", b, a).status_code == 422
    for mine, other, other_name in ((b, a, "赵"), (a, b, "钱")):
        r = http.get("/ui/me/who-looked", headers=_resident(world, mine))
        assert r.status_code == 200, r.text
        text = json.dumps(r.json(), ensure_ascii=False)
        assert other not in text and other_name not in text, text[:1500]


def test_hl7_merge_into_a_numberless_record_then_desk_seealso_of_a_hand_linked_record(world):  # noqa: F811
    """As the first probe, the B merge made by the sender (A40 MRG X into T, AA: T has no number)."""
    from adapters.hl7v2.ack import ack_code_of

    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    register("MRN-X", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏", "19900101", "M")
    t = register("MRN-T", None, "无名^乙", "19921120", "F")
    ops = _operator(world)
    assert _call(http, ops, "link", u, a).status_code == 200
    assert ack_code_of(send("A40", _pid("MRN-T", None, "无名^乙", "19921120", "F"), "MRG|MRN-X^^^FNXRMYY^MR\r")) == "AA"
    r = _call(http, ops, "link", u, t)
    ev = http.get(f"/fhir/Patient/{a}/$everything", headers=_resident(world, a))
    assert r.status_code == 422 and t not in ev.text, (r.status_code, t in ev.text)


def test_other_link_types_are_a_400_never_a_500_and_change_nothing(world):  # noqa: F811
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    for type_ in ("refer", "replaces"):
        r = _call(http, _operator(world), "link", b, a, type_)
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", r.text
    assert world.identity.person_compartment(a) == {a} and world.identity.person_compartment(b) == {b}
