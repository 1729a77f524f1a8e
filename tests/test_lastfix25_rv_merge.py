"""rvlast25b review of mergefix25: a numberless record the desk linked into a person (``seealso``) stands for
that person's number in a merge -- also once it has itself been merged into another numberless record.
Real path: POST /hl7v2, resident tokens over real HTTP, the real store (mergemend25's fixture)."""

from __future__ import annotations

from adapters.hl7v2.ack import ack_code_of
from tests import test_mergemend25_merge as mm
from tests.test_mergemend25_merge import A_NID, B_NID, _pid, _resident

world = mm.world


def _encounters(http, engine, pid):
    return http.get("/fhir/Encounter?_count=100", headers=_resident(engine, pid)).text


def _desk_links(http, engine, source, target):
    r = http.post("/fhir/Patient/$link", headers=mm._operator(engine), json={
        "resourceType": "Parameters", "parameter": [
            {"name": "source", "valueReference": {"reference": f"Patient/{source}"}},
            {"name": "target", "valueReference": {"reference": f"Patient/{target}"}},
            {"name": "reason", "valueString": "the emergency patient is B"}]})
    assert r.status_code == 200, r.text


def test_a_desk_linked_record_merged_into_a_numberless_one_still_counts_as_its_persons(world):
    """The desk links U (no number) to B's record (U is B's). U is then merged into V (no number: AA or AE), and
    V into A's record. A's token must never read U's visit (the desk said it is B's): the last merge joins B's
    person to A's through V and U -- AE, or the chain kept apart."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏")
    register("MRN-V", None, "无名^乙")
    _desk_links(http, world, u, b)
    assert u in world.identity.person_compartment(b)
    first = send("A40", _pid("MRN-V", None, "无名^乙"), "MRG|MRN-U^^^FNXRMYY^MR\r")
    second = send("A40", _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-V^^^FNXRMYY^MR\r")
    seen = _encounters(http, world, a)
    assert "V-MRN-U" not in seen and "V-MRN-B" not in seen, (ack_code_of(first), ack_code_of(second), seen[:400])
    assert u not in world.identity.person_compartment(a), (ack_code_of(first), ack_code_of(second))
    assert a not in world.identity.person_compartment(b)


def test_a_desk_linked_record_merged_straight_into_another_number_is_refused(world):
    """Guard: U linked by the desk to B's record; an A40 merging U into A's record: AE, A reads nothing of U."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏")
    _desk_links(http, world, u, b)
    ack = send("A40", _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-U^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AE", ack
    assert "V-MRN-U" not in _encounters(http, world, a)


def test_after_an_undone_merge_the_numberless_record_merges_into_another_number(world):
    """B merged into U (no number), undone by an A37; U is then merged into A's record. The undone merge joins
    no one any more: AA (a refusal here would be the chain read from a merge the hospital withdrew), and A's
    token reads U's visit, never B's."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏")
    assert ack_code_of(send("A40", _pid("MRN-U", None, "无名^氏"), "MRG|MRN-B^^^FNXRMYY^MR\r")) == "AA"
    ack = send("A37", _pid("MRN-U", None, "无名^氏"), _pid("MRN-B", None, "钱^秘密").replace("PID|1|", "PID|2|"))
    assert ack_code_of(ack) == "AA", ack
    assert b not in world.identity.person_compartment(u)
    ack = send("A40", _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-U^^^FNXRMYY^MR\r")
    seen = _encounters(http, world, a)
    assert "V-MRN-B" not in seen, seen[:400]
    assert ack_code_of(ack) == "AA", ack
    assert "V-MRN-U" in seen, seen[:400]
