"""rvpriv25 review probes: mergemend25's refusal of a merge joining two national ID numbers.
Real path: POST /hl7v2, resident tokens over real HTTP, the real store (mergemend25's fixture)."""

from __future__ import annotations

import pytest

from adapters.hl7v2.ack import ack_code_of
from tests import test_mergemend25_merge as mm
from tests.test_mergemend25_merge import A_NID, B_NID, STRUCTURE, _err, _pid, _resident

world = mm.world  # mergemend25's fixture: the engine, POST /hl7v2 and the resident tokens

STRUCTURE.update({"A18": "ADT_A18", "A30": "ADT_A30"})


def _encounters(http, engine, pid):
    return http.get("/fhir/Encounter?_count=100", headers=_resident(engine, pid)).text


def _everything(http, engine, pid):
    return http.get(f"/fhir/Patient/{pid}/$everything?_count=1000", headers=_resident(engine, pid)).text


@pytest.mark.parametrize("trigger", ["A18", "A39", "A30"])
def test_the_other_merge_events_of_two_numbers_are_refused_too(world, trigger):
    """Guard: A18/A39/A30 (the same merge handler) are refused at MRG-1 like A40/A34/A47."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    ack = send(trigger, _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-B^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AE", ack
    assert _err(ack)[2] == "MRG^1^1", ack
    assert world.identity.person_compartment(a) == {a} and world.identity.person_compartment(b) == {b}


def test_a_message_of_two_merges_one_refused_writes_neither(world):
    """Guard: an A40 with two PID/MRG pairs -- C<-D (one number) and A<-B (two numbers) -- is AE
    and neither merge is stored (the AE message is kept for replay; a half-applied message would
    be replayed over its own first half)."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    c = register("MRN-C", A_NID, "赵^一")
    ack = send("A40", _pid("MRN-A", A_NID, "赵^一"),
               "MRG|MRN-C^^^FNXRMYY^MR\r" + _pid("MRN-A", A_NID, "赵^一").replace("PID|1|", "PID|2|")
               + "MRG|MRN-B^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AE", ack
    assert world.identity.person_compartment(b) == {b}
    stored_c = http.get(f"/fhir/Patient/{c}", headers=_resident(world, c)).text
    assert '"replaced-by"' not in stored_c, stored_c[:400]
    assert b not in world.identity.person_compartment(a)


def test_a_merge_into_another_number_through_a_numberless_record_is_refused(world):
    """FINDING (leak): B's record merged into U, an unidentified emergency record (AA: nothing
    contradicts it -- U is B, as the hospital says). An A40 then merges U into A's record: U carries
    no number and its entry has no ``merged_key`` (it was never merged away before), so
    ``merge_refusal`` (which compares the two records' own numbers only) answers AA. U -- by the
    hospital's first statement B's record, B's emergency visit -- is then in A's compartment: A's
    resident token reads U's visit. The two numbers are joined through U."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏")
    ack = send("A40", _pid("MRN-U", None, "无名^氏"), "MRG|MRN-B^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    assert "V-MRN-U" in _encounters(http, world, b)  # U is B's, as the hospital said (guard)
    ack = send("A40", _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-U^^^FNXRMYY^MR\r")
    seen_by_a = _encounters(http, world, a) + _everything(http, world, a)
    assert "V-MRN-U" not in seen_by_a and "V-MRN-B" not in seen_by_a, (ack, sorted(world.identity.person_compartment(a)))
    assert ack_code_of(ack) == "AE", ack
    assert u not in world.identity.person_compartment(a)


def test_a_merge_into_a_record_already_merged_into_another_number_is_refused(world):
    """FINDING (leak): U (no number) merged into A's record (AA: U is A's emergency visit). An A40
    then merges B's record into U (MRG-1 B, PID U): U has no number and no ``merged_key`` (it carried
    none), so AA -- and B's resident token reads U's visit, which the hospital said is A's."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏")
    ack = send("A40", _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-U^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    assert "V-MRN-U" in _encounters(http, world, a)  # U is A's (guard)
    ack = send("A40", _pid("MRN-U", None, "无名^氏"), "MRG|MRN-B^^^FNXRMYY^MR\r")
    seen_by_b = _encounters(http, world, b) + _everything(http, world, b)
    assert "V-MRN-U" not in seen_by_b and "V-MRN-A" not in seen_by_b, (ack, sorted(world.identity.person_compartment(b)))
    assert u not in world.identity.person_compartment(b)
