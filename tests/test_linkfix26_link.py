"""linkfix26: the review of linkmend26's ``$link`` rule, mended -- the ``seealso`` count follows where the
link leaves the source (a target in no person joins the source's person, which then counts), the two
types agree on a hand-linked numberless record moved to another number, and the refusal's audit keeps
its whole text. Real path: ``POST /hl7v2`` registrations, ``POST /fhir/Patient/$link``/``$unlink``,
resident tokens' ``$everything``, the audit as stored."""

from __future__ import annotations

from tests.test_linkmend26_link import _call
from tests.test_mergemend25_merge import A_NID, B_NID, _operator, _resident, world  # noqa: F401


def test_the_refusal_is_audited_with_its_whole_text(world):  # noqa: F811
    """The audit's ``refused`` detail is the 422's diagnostics whole: both Patient ids and the remedy
    (cut at 300 characters it ended before or inside the second id, without the remedy)."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    r = _call(http, _operator(world), "link", b, a)
    assert r.status_code == 422, r.text
    said = r.json()["issue"][0]["diagnostics"]
    refused = [e for e in world.audit.events() if any(c.get("code") == "identity-link" for c in e.get("subtype", ()))]
    assert len(refused) == 1, refused
    details = {d.get("type"): d.get("valueString") for ent in refused[0].get("entity", ())
               for d in ent.get("detail", ())}
    assert details.get("refused") == said, (details, said)
    assert f"Patient/{b} -> Patient/{a}" in said and "$unlink" in said and B_NID not in said


def test_seealso_and_replaced_by_agree_on_a_hand_linked_record_moved_to_another_number(world):  # noqa: F811
    """U (no number) linked by the desk into A's person stands for A's number: U -> B's record is
    refused as ``seealso`` as it is as ``replaced-by`` (linkmend26 took the ``seealso``); undone
    first (``$unlink``), U joins B's person and A's token no longer reads it."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏", "19900101", "M")
    ops = _operator(world)
    assert _call(http, ops, "link", u, a).status_code == 200
    for type_ in ("seealso", "replaced-by"):
        r = _call(http, ops, "link", u, b, type_)
        assert r.status_code == 422 and "$unlink" in r.text, (type_, r.text)
    assert world.identity.person_compartment(a) == {a, u} and world.identity.person_compartment(b) == {b}
    assert _call(http, ops, "unlink", u, a).status_code == 200
    assert _call(http, ops, "link", u, b).status_code == 200
    assert world.identity.person_compartment(b) == {b, u} and world.identity.person_compartment(a) == {a}


def test_a_numberless_target_joins_the_sources_person_when_it_brings_no_other_number(world):  # noqa: F811
    """Guards of the count: U in A's person ``seealso`` T (no number, in no person) that holds a merged
    record of A's own number joins A's person (200); a numberless S in no person ``seealso`` T2 that
    holds B's merged record makes a person of the two (200: only B's number); the same T2 into A's
    person from A's record's side is refused."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    a2 = register("MRN-A2", A_NID, "赵^一")
    x = register("MRN-X", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏", "19900101", "M")
    t = register("MRN-T", None, "无名^乙", "19921120", "F")
    s = register("MRN-S", None, "无名^丙", "19930101", "M")
    t2 = register("MRN-T2", None, "无名^丁", "19940101", "F")
    ops = _operator(world)
    assert _call(http, ops, "link", u, a).status_code == 200
    assert _call(http, ops, "link", a2, t, "replaced-by").status_code == 200
    assert _call(http, ops, "link", x, t2, "replaced-by").status_code == 200
    assert _call(http, ops, "link", u, t).status_code == 200
    assert {a, u, t} <= world.identity.person_compartment(a)
    assert _call(http, ops, "link", a, t2).status_code == 422
    assert t2 not in world.identity.person_compartment(a)
    assert _call(http, ops, "link", s, t2).status_code == 200
    assert a not in world.identity.person_compartment(s)
