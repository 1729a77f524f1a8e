"""mergefix25: a merge is judged by the PERSONS it joins -- the ID numbers of every record already
merged into or from either side, through chains (twenty-fifth round, review of mergemend25).
Real path: POST /hl7v2, resident tokens over real HTTP, the real store (mergemend25's fixture)."""

from __future__ import annotations

import pytest

from adapters.hl7v2.ack import ack_code_of
from tests import test_mergemend25_merge as mm
from tests.operator_calls import before_linkmend26
from tests.test_mergemend25_merge import A_NID, B_NID, _err, _pid, _resident

world = mm.world  # mergemend25's fixture: the engine, POST /hl7v2 and the resident tokens


def _encounters(http, engine, pid):
    return http.get("/fhir/Encounter?_count=100", headers=_resident(engine, pid)).text


@pytest.mark.parametrize("trigger", ["A34", "A47"])
def test_the_chain_through_a_numberless_record_is_refused_for_every_merge_event(world, trigger):
    """B merged into U (no number), then U into A by an A34/A47: AE at MRG-1, A's token never reads U's visit."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏")
    assert ack_code_of(send("A40", _pid("MRN-U", None, "无名^氏"), "MRG|MRN-B^^^FNXRMYY^MR\r")) == "AA"
    ack = send(trigger, _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-U^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AE", ack
    assert _err(ack)[2] == "MRG^1^1", ack
    seen = _encounters(http, world, a)
    assert "V-MRN-U" not in seen and "V-MRN-B" not in seen, seen[:400]
    assert u not in world.identity.person_compartment(a)


def test_one_numbers_chain_through_a_numberless_record_still_merges(world):
    """Guard: B merged into U (no number), then U into B2 (B's number again): one person, AA; B's
    old token follows the chain to B2's and U's visits."""
    http, send, register = world.mm
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏")
    b2 = register("MRN-B2", B_NID, "钱^秘密")
    assert ack_code_of(send("A40", _pid("MRN-U", None, "无名^氏"), "MRG|MRN-B^^^FNXRMYY^MR\r")) == "AA"
    ack = send("A40", _pid("MRN-B2", B_NID, "钱^秘密"), "MRG|MRN-U^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    assert {b, u, b2} <= world.identity.person_compartment(b)
    seen = _encounters(http, world, b)
    assert "V-MRN-U" in seen and "V-MRN-B2" in seen, seen[:400]


def test_a_number_given_to_a_record_whose_survivor_holds_another_number_is_refused(world):
    """B merged into W and U merged into W (neither W nor U has a number: AA). An A08 then gives U
    A's number: U's own merge partner W carries none, but W holds B's record -- U would join A's
    person to B's. AE at PID-3; A's token reads neither W's nor B's visit."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    register("MRN-B", B_NID, "钱^秘密")
    register("MRN-W", None, "无名^甲")
    u = register("MRN-U", None, "无名^乙")
    assert ack_code_of(send("A40", _pid("MRN-W", None, "无名^甲"), "MRG|MRN-B^^^FNXRMYY^MR\r")) == "AA"
    assert ack_code_of(send("A40", _pid("MRN-W", None, "无名^甲"), "MRG|MRN-U^^^FNXRMYY^MR\r")) == "AA"
    ack = send("A08", _pid("MRN-U", A_NID, "赵^一"))
    seen = _encounters(http, world, a)
    assert "V-MRN-W" not in seen and "V-MRN-B" not in seen, (ack, seen[:400])
    assert ack_code_of(ack) == "AE", ack
    assert _err(ack)[2] == "PID^1^3", ack
    assert u not in world.identity.person_compartment(a)


def test_one_message_chaining_two_numbers_writes_neither(world):
    """An A40 with two pairs -- U<-B, then A<-U -- joins A's and B's numbers through U within one
    message: AE, and neither merge is stored."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏")
    ack = send("A40", _pid("MRN-U", None, "无名^氏"),
               "MRG|MRN-B^^^FNXRMYY^MR\r" + _pid("MRN-A", A_NID, "赵^一").replace("PID|1|", "PID|2|")
               + "MRG|MRN-U^^^FNXRMYY^MR\r")
    seen = _encounters(http, world, a)
    assert "V-MRN-U" not in seen and "V-MRN-B" not in seen, (ack, seen[:400])
    assert ack_code_of(ack) == "AE", ack
    assert world.identity.person_compartment(b) == {b} and world.identity.person_compartment(u) == {u}


def test_after_the_desk_merged_a_chain_into_another_number_no_sender_extends_it(world):
    """B merged into U (AA); the desk then merges U into A ($link replaced-by: its decision, not
    refused). B's token reads neither U's nor A's visit; a sender's later merge of another of A's
    records into U is refused (U's chain holds B's and A's numbers: unsure, so refused).
    Data changed in the twenty-sixth round (linkmend26): the desk's merge of U (holding B's merged
    record) into A is refused itself now (422); the rest is asserted of such a merge stored before
    the rule (``before_linkmend26``)."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏")
    register("MRN-A2", A_NID, "赵^一")
    assert ack_code_of(send("A40", _pid("MRN-U", None, "无名^氏"), "MRG|MRN-B^^^FNXRMYY^MR\r")) == "AA"
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "source", "valueReference": {"reference": f"Patient/{u}"}},
        {"name": "target", "valueReference": {"reference": f"Patient/{a}"}},
        {"name": "type", "valueCode": "replaced-by"},
        {"name": "reason", "valueString": "the emergency patient is A"}]}
    r = http.post("/fhir/Patient/$link", headers=mm._operator(world), json=params)
    assert r.status_code == 422 and "身份证号不同" in r.text and B_NID not in r.text, r.text
    assert world.identity.record(u).get("replaced_by") is None
    with before_linkmend26(world):
        r = http.post("/fhir/Patient/$link", headers=mm._operator(world), json=params)
    assert r.status_code == 200, r.text
    seen = _encounters(http, world, b)
    assert "V-MRN-U" not in seen and "V-MRN-A" not in seen, seen[:400]
    ack = send("A40", _pid("MRN-U", None, "无名^氏"), "MRG|MRN-A2^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AE", ack
    assert "V-MRN-A2" not in _encounters(http, world, b)
