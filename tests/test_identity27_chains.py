"""identity27: one walk of "the record kept now" and of the numbers a chain of merges carries.

The patient index answers "which record is kept now" (``IdentityService.merge_chain``/``kept_record``,
asked by the booking rule and family access) and "which records are this person's"
(``person_compartment``, every resident token); a merge or link is judged by the ID numbers of the
records it joins (``_merge_keys``; DOMAIN "Matching": one person, one number). The tests build each
state through the real path -- ADT A04/A08/A37/A40 over ``POST /hl7v2``, the desk's ``$link``/``$unlink``
over HTTP -- and check that the answers agree: the kept record, when the index tells one, is in the
record's compartment, and so is every record of its chain. Real store (SQLite), real HTTP.
"""

from __future__ import annotations

import pytest

from adapters.hl7v2.ack import ack_code_of
from engine.identity.nationalid import check_character
from tests import test_mergemend25_merge as mm
from tests.operator_calls import before_linkmend26
from tests.test_linkmend26_link import _call
from tests.test_mergemend25_merge import A_NID, B_NID, _operator, _pid, _resident

world = mm.world  # mergemend25's fixture: the engine, POST /hl7v2, registration by A04

C_NID = "32092319850315002" + check_character("32092319850315002")  # female, 1985-03-15


def _agree(engine, *pids: str) -> None:
    """The index's two answers agree for each record: its merge chain (when the index tells one) lies
    in its compartment, and the record kept now is one of the person's records."""
    for pid in pids:
        chain = engine.identity.merge_chain(pid)
        compartment = engine.identity.person_compartment(pid)
        if chain is not None:
            assert set(chain) <= compartment, (pid, chain, sorted(compartment))
            assert engine.identity.kept_record(pid) == chain[-1]


def _merge(send, survivor: tuple[str, str | None, str], merged_mrn: str) -> str:
    mrn, nid, name = survivor
    return ack_code_of(send("A40", _pid(mrn, nid, name), f"MRG|{merged_mrn}^^^FNXRMYY^MR\r"))


def _visits(http, engine, pid: str) -> str:
    return http.get("/fhir/Encounter?_count=100", headers=_resident(engine, pid)).text


def test_a_chain_of_three_records_of_one_number(world):
    """R1 -> R2 -> R3 (two A40s, one number): the kept record is R3 from each, every record of the chain
    in each one's compartment; the chain's survivor merged into another number's record is refused (AE)."""
    http, send, register = world.mm
    r1, r2, r3 = (register(f"MRN-R{i}", A_NID, "赵^一") for i in (1, 2, 3))
    b = register("MRN-B", B_NID, "钱^秘密")
    assert _merge(send, ("MRN-R2", A_NID, "赵^一"), "MRN-R1") == "AA"
    assert _merge(send, ("MRN-R3", A_NID, "赵^一"), "MRN-R2") == "AA"
    assert world.identity.merge_chain(r1) == [r1, r2, r3]
    assert world.identity.kept_record(r2) == r3 == world.identity.kept_record(r3)
    _agree(world, r1, r2, r3, b)
    assert _merge(send, ("MRN-B", B_NID, "钱^秘密"), "MRN-R3") == "AE"
    assert b not in world.identity.person_compartment(r1) and world.identity.kept_record(r1) == r3


def test_a_numberless_chain_then_an_a37_undoes_one_step(world):
    """U (no number) -> V (no number) -> A (A's number), then an A37 undoing U -> V: U keeps itself, V and
    A still one chain; the answers agree before and after; U given B's number by an A08 after the undo is
    B's alone."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    u = register("MRN-U", None, "无名^甲", "19900101", "M")
    v = register("MRN-V", None, "无名^乙", "19900101", "M")
    assert _merge(send, ("MRN-V", None, "无名^乙"), "MRN-U") == "AA"
    assert _merge(send, ("MRN-A", A_NID, "赵^一"), "MRN-V") == "AA"
    assert world.identity.kept_record(u) == a
    _agree(world, u, v, a)
    ack = send("A37", _pid("MRN-V", None, "无名^乙"), _pid("MRN-U", None, "无名^甲").replace("PID|1|", "PID|2|"))
    assert ack_code_of(ack) == "AA", ack
    assert world.identity.kept_record(u) == u and world.identity.kept_record(v) == a
    _agree(world, u, v, a)
    ack = send("A08", _pid("MRN-U", B_NID, "钱^秘密"))
    assert ack_code_of(ack) == "AA", ack
    assert u not in world.identity.person_compartment(a) and world.identity.kept_record(u) == u
    _agree(world, u, v, a)


def test_a_merge_back_into_the_record_merged_away_makes_no_cycle(world):
    """R1 -> R2 (A40), then an A40 stating R2 -> R1: the index never holds a loop -- each record's chain
    ends at one kept record, the same from both."""
    http, send, register = world.mm
    r1 = register("MRN-R1", A_NID, "赵^一")
    r2 = register("MRN-R2", A_NID, "赵^一")
    assert _merge(send, ("MRN-R2", A_NID, "赵^一"), "MRN-R1") == "AA"
    send("A40", _pid("MRN-R1", A_NID, "赵^一"), "MRG|MRN-R2^^^FNXRMYY^MR\r")
    one, two = world.identity.kept_record(r1), world.identity.kept_record(r2)
    assert one is not None and one == two, (one, two)
    _agree(world, r1, r2)


def test_a_record_merged_away_then_given_its_own_number_by_an_a08(world):
    """U (no number) merged into A's record, then an A08 for U with A's own number (the hospital found her
    ID card): taken, U kept A; another resident's number for U is refused (AE at PID-3)."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    u = register("MRN-U", None, "无名^甲", "19900101", "M")
    assert _merge(send, ("MRN-A", A_NID, "赵^一"), "MRN-U") == "AA"
    assert ack_code_of(send("A08", _pid("MRN-U", A_NID, "赵^一"))) == "AA"
    assert world.identity.kept_record(u) == a
    _agree(world, u, a)
    assert ack_code_of(send("A08", _pid("MRN-U", B_NID, "钱^秘密"))) == "AE"
    assert world.identity.kept_record(u) == a
    _agree(world, u, a)


def test_an_old_desk_merge_of_a_hand_linked_record_into_another_numbers_record_keeps_none(world):
    """A desk merge stored before linkmend26: V (no number), linked by the desk into A's person, merged
    into W -- a record of C's number the index holds in conflict (no person). V stands for A's number
    (the rule ``_merge_keys`` applies: the merge would be refused today), so the chain V -> W crosses
    two numbers: the index cannot tell a kept record (None), as the compartment, which leaves W out,
    says. Before: ``kept_record(V)`` was W -- a late booking under V went to another resident's record."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    register("MRN-C", C_NID, "孙^丙")
    w = register("MRN-W", C_NID, "李^冒名")  # C's number, another name: in conflict
    v = register("MRN-V", None, "无名^甲", "19900101", "M")
    assert world.identity.record(w)["status"] == "conflict"
    ops = _operator(world)
    assert _call(http, ops, "link", v, a).status_code == 200
    assert _call(http, ops, "link", v, w, "replaced-by").status_code == 422  # today: refused
    with before_linkmend26(world):
        assert _call(http, ops, "link", v, w, "replaced-by").status_code == 200
    assert w not in world.identity.person_compartment(v)
    assert world.identity.kept_record(v) is None
    _agree(world, v, w, a)


def test_a_person_whose_members_chains_carry_a_number_is_counted_by_seealso(world):
    """X and Z (no numbers) made one person by the desk; Y (A's number) merged into Z by an A40; S (no
    number) holds B's record merged into it by an A40. The desk's ``seealso`` of S to X would put S --
    which the hospital said is B's -- in the person holding A's merged record: refused (422), every
    number of the person's members' chains counted, not only the numbers they carry. Before: 200, and
    Y's resident read S's visit."""
    http, send, register = world.mm
    x = register("MRN-X", None, "无名^甲", "19900101", "M")
    z = register("MRN-Z", None, "无名^乙", "19900101", "M")
    y = register("MRN-Y", A_NID, "赵^一")
    register("MRN-B", B_NID, "钱^秘密")
    s = register("MRN-S", None, "无名^丙", "19921120", "F")
    ops = _operator(world)
    assert _call(http, ops, "link", x, z).status_code == 200
    assert _merge(send, ("MRN-Z", None, "无名^乙"), "MRN-Y") == "AA"
    assert _merge(send, ("MRN-S", None, "无名^丙"), "MRN-B") == "AA"
    assert "V-MRN-S" not in _visits(http, world, y)
    r = _call(http, ops, "link", s, x)
    assert r.status_code == 422, r.text
    assert "V-MRN-S" not in _visits(http, world, y)
    assert s not in world.identity.person_compartment(y)
    _agree(world, x, z, y, s)


def test_a_target_in_no_person_whose_chain_carries_another_number_does_not_join(world):
    """X and Z (no numbers) one person by the desk, Y (A's number) merged into Z; T (no number, in no
    person) holds B's record merged into it. ``$link`` X ``seealso`` T: T may not join X's person (its
    chain carries B's number, the person's chains A's). Before, T's own number alone was looked at,
    and T joined: Y's resident read T's visit. The link is refused (422): X, a numberless record the
    desk put in that person, stands for the numbers of the person's chains (linkfix26's rule, now
    through chains); nothing moves -- X stays in its person, T in none (identfix27: asserted through
    the desk's call and the index's answers, no longer on the private ``_joinable``)."""
    http, send, register = world.mm
    x = register("MRN-X", None, "无名^甲", "19900101", "M")
    z = register("MRN-Z", None, "无名^乙", "19900101", "M")
    y = register("MRN-Y", A_NID, "赵^一")
    register("MRN-B", B_NID, "钱^秘密")
    t = register("MRN-T", None, "无名^丁", "19921120", "F")
    ops = _operator(world)
    assert _call(http, ops, "link", x, z).status_code == 200
    assert _merge(send, ("MRN-Z", None, "无名^乙"), "MRN-Y") == "AA"
    assert _merge(send, ("MRN-T", None, "无名^丁"), "MRN-B") == "AA"
    assert _call(http, ops, "link", x, t).status_code == 422  # X, put in the person by the desk, stands for A's
    assert "V-MRN-T" not in _visits(http, world, y)
    assert t not in world.identity.person_compartment(y)
    assert world.identity.record(x)["person"] == world.identity.record(z)["person"]  # X stays where it was
    assert world.identity.record(t)["status"] != "linked" and "V-MRN-X" in _visits(http, world, y)
    _agree(world, x, z, y, t)


@pytest.mark.parametrize("type_", ["seealso", "replaced-by"])
def test_guard_one_numbers_chains_still_link(world, type_):
    """Guard: X and Z one person by the desk, Y (A's number) merged into Z; T (no number) holds A2 (A's
    number again) merged into it. ``$link`` X to T is taken (one number): T joins, A's resident reads
    T's visit."""
    http, send, register = world.mm
    x = register("MRN-X", None, "无名^甲", "19900101", "M")
    z = register("MRN-Z", None, "无名^乙", "19900101", "M")
    y = register("MRN-Y", A_NID, "赵^一")
    register("MRN-A2", A_NID, "赵^一")
    t = register("MRN-T", None, "无名^丁", "19900101", "M")
    ops = _operator(world)
    assert _call(http, ops, "link", x, z).status_code == 200
    assert _merge(send, ("MRN-Z", None, "无名^乙"), "MRN-Y") == "AA"
    assert _merge(send, ("MRN-T", None, "无名^丁"), "MRN-A2") == "AA"
    assert _call(http, ops, "link", x, t, type_).status_code == 200
    assert t in world.identity.person_compartment(y)
    assert "V-MRN-T" in _visits(http, world, y)
    _agree(world, x, z, y, t)
