"""The pre-merge review of idfix18's patient-index mends (eighteenth round, idmend18).

D1: a record the desk linked by hand into a person (``$link`` R1 -> U, or U -> R1: U joins 张三's
person) and that a later message gives another resident's ID number and name leaves the person for
``conflict`` (hidden, in no one's compartment), where it stayed ``manual`` in 张三's person and he
read a record the hospital now says is 张小明's. D2: the same ``$link`` clicked twice leaves the same
state as once. D4: a merge clicked again over one the code before made keeps what undoing it needs.
D5: a record taken out by hand and then deleted is no record the desk must decide. Real path:
``POST /hl7v2``, ``$link``/``$unlink``/``$login-phone`` and the resident's SMART sign-in over HTTP,
FHIR ``DELETE``, SQLite and mongomock.
"""

from __future__ import annotations

from tests import test_id17_revisit as revisit
from tests import test_idfix18_desk_link as desk_link
from tests.operator_calls import before_linkmend26, index_state, operate
from tests.test_id17_operator_merge import RELATIVE, _merge
from tests.test_idfix18_desk_link import ER7, NID, OTHER, _adt, _signs_in, _three
from tests.test_idfix18_no_person_message import _login_phone

desk = desk_link.desk  # the fixture: the engine, HTTP as the desk, and an HL7 feed with phones
world = revisit.world  # the fixture: the engine, HTTP and an HL7 feed of 张三's number or another


def _emergency_record_made_other(engine, http, send, backend_settings, *, from_his_side: bool) -> None:
    r1, _, r3 = _three(send)
    u = send("FNXRMYY", "JZ0009", None, "无名氏")  # brought in unconscious, no ID card
    operate(http, "link", *((r1, u) if from_his_side else (u, r1)))
    assert engine.identity.person_compartment(r1) == {r1, r3, u}
    before = {k: v for k, v in engine.identity.record(r1).items() if k != "demo"}
    x = send("FNZYY", "MZ0007", OTHER, "张小明", "13900000007")
    assert send("FNXRMYY", "JZ0009", OTHER, "张小明") == u  # the hospital: U is 张小明's
    assert engine.identity.record(u)["status"] == "conflict"
    assert engine.identity.person_compartment(r1) == {r1, r3}
    assert index_state(engine, http, r3)[1:] == ({r1, r3}, [r1])  # the seealso to U is gone
    assert {k: v for k, v in engine.identity.record(r1).items() if k != "demo"} == before  # R1 as placed
    assert engine.identity.person_compartment(x) == {x}  # nor in 张小明's: an operator decides
    resident, _ = _signs_in(engine, http, backend_settings)
    mine = {"Authorization": "Bearer " + resident["access_token"]}
    assert http.get(f"/fhir/Patient/{u}", headers=mine).status_code == 404
    assert http.get(f"/fhir/Patient/{r1}", headers=mine).status_code == 200


def test_an_emergency_record_joined_to_his_person_then_given_anothers_number_leaves(desk, backend_settings):
    _emergency_record_made_other(*desk, backend_settings, from_his_side=True)


def test_the_same_linked_from_the_emergency_records_side(desk, backend_settings):
    """``$link`` U -> R1 (U joins R1's person): the same leak since id17, closed the same way."""
    _emergency_record_made_other(*desk, backend_settings, from_his_side=False)


def test_an_emergency_record_given_his_own_number_stays(desk):
    """The neighbour: the number the person holds (张三's) keeps U where the desk put it."""
    engine, http, send = desk
    r1, _, r3 = _three(send)
    u = send("FNXRMYY", "JZ0009", None, "无名氏")
    operate(http, "link", r1, u)
    send("FNXRMYY", "JZ0009", NID, "张三")
    assert index_state(engine, http, u)[:2] == ("linked", {r1, r3, u})


def test_a_record_the_desk_linked_across_numbers_keeps_its_place_while_its_number_stays(desk):
    """A record the desk put with another number's records on purpose (a son seen on his father's
    card) stays while a later message keeps its number, and leaves when it gives a third one.
    Data changed in the twenty-sixth round (linkmend26): that ``$link`` is refused now (DOMAIN: one
    person is one ID number); the link is one stored before the rule (``before_linkmend26``)."""
    engine, http, send = desk
    a = send("FNXRMYY", "ZY0001", NID, "张三")
    x = send("FNZYY", "MZ0002", OTHER, "张小明")
    with before_linkmend26(engine):
        operate(http, "link", a, x)
    send("FNXRMYY", "ZY0001", NID, "张三")
    assert engine.identity.person_compartment(x) == {a, x}
    send("FNXRMYY", "ZY0001", RELATIVE, "张三")
    assert engine.identity.record(a)["status"] == "conflict"
    assert engine.identity.person_compartment(x) == {x}


def test_the_same_link_clicked_twice_leaves_the_state_of_one_click(desk):
    engine, http, send = desk
    r1, r2, r3 = _three(send)
    operate(http, "link", r1, r2)
    once = {pid: engine.identity.record(pid) for pid in (r1, r2, r3)}
    operate(http, "link", r1, r2)
    assert {pid: engine.identity.record(pid) for pid in (r1, r2, r3)} == once
    assert not engine.identity.record(r1)["manual"]
    # R1 is 张小明's, the hospital now says -- by its A08, the registration's restatement (accepted with its W): an
    # A04 naming another name and another resident ID number under R1's MRN is refused since nbfix39 (two people)
    restated = _adt("FNXRMYY", "ZY0001", OTHER, "张小明", "", 90).replace(b"ADT^A04^", b"ADT^A08^").replace(b"EVN|A04", b"EVN|A08")
    assert http.post("/hl7v2", content=restated, headers={"Content-Type": ER7}).headers["x-hl7-ack-code"] == "AA"
    assert r1 not in engine.identity.person_compartment(r3)
    assert r1 not in engine.identity.patients_for_number(NID)


def test_a_merge_of_the_code_before_clicked_again_then_undone_takes_the_merged_record_out(world):
    """M (another resident's number) merged into 张三's S by the code before (no note), clicked
    again, then ``$unlink`` S, M: M leaves, S stays in its own person (as before the second click).
    Data changed in the twenty-sixth round (linkmend26): both clicks are the code's before the rule
    refusing a merge of two ID numbers (``before_linkmend26``)."""
    engine, http, send = world
    s = send("FNXRMYY", "A04", "张三")
    s2 = send("FNZYY", "A04", "张三")
    m = send("FNFYY", "A04", "张小明", RELATIVE)
    with before_linkmend26(engine):
        _merge(http, m, s)
        engine.identity.links.update(m, {"merge_moved": None, "merge_noted": None})  # as that code left it
        _merge(http, m, s)  # the desk clicks the merge again
    operate(http, "unlink", s, m)
    assert engine.identity.record(m)["status"] == "unlinked"
    assert index_state(engine, http, s)[:2] == ("linked", {s, s2})


def test_a_record_taken_out_by_hand_then_deleted_is_no_record_to_decide(desk):
    engine, http, send = desk
    a = send("FNXRMYY", "ZY0001", NID, "张三", "13900000001")
    operate(http, "unlink", a)
    assert http.delete(f"/fhir/Patient/{a}").status_code in (200, 204)
    status, why = _login_phone(http, NID)
    assert status == 404 and why.startswith("医共体中没有带此身份证号的记录"), why
    assert engine.identity.record(a)["status"] == "unlinked"  # the decision is kept for a re-send


def test_a_record_that_left_for_conflict_then_deleted_is_off_the_operators_list(desk):
    """The operator's conflict list (``huren identity conflicts``) names the record that left, and
    no longer once it is deleted (its entry is kept, ``manual``, for a re-send)."""
    engine, http, send = desk
    r1, r2, _ = _three(send)
    u = send("FNXRMYY", "JZ0009", None, "无名氏")
    operate(http, "link", r1, u)
    send("FNXRMYY", "JZ0009", OTHER, "张小明")
    assert [d["_id"] for d in engine.identity.conflicts()] == sorted([r2, u])
    assert http.delete(f"/fhir/Patient/{u}").status_code in (200, 204)
    assert [d["_id"] for d in engine.identity.conflicts()] == [r2]


def test_a_re_send_that_changes_nothing_keeps_a_hand_linked_record_in_place(desk):
    """Review of idmend18 (the lead): U, linked by hand into 张三's person, is given his number (it
    stays: his records hold it); his other records are then deleted; the same U sent again (only a
    phone added) left for ``conflict`` -- the note still held the number U had when linked (none),
    and no other record of the person held K any more -- and 张三's number opened nothing. A number
    accepted once is the one a later version is compared with."""
    engine, http, send = desk
    r1 = send("FNXRMYY", "ZY0001", NID, "张三", "13900000001")
    r3 = send("FNZYY", "MZ0003", NID, "张三")
    u = send("FNXRMYY", "JZ0009", None, "无名氏")
    operate(http, "link", r1, u)
    send("FNXRMYY", "JZ0009", NID, "张三")
    assert engine.identity.record(u)["status"] == "linked"
    for r in (r1, r3):
        assert http.delete(f"/fhir/Patient/{r}").status_code in (200, 204)
    assert engine.identity.record(u)["status"] == "linked"
    send("FNXRMYY", "JZ0009", NID, "张三", "13900000099")
    assert engine.identity.record(u)["status"] == "linked"
    assert engine.identity.patients_for_number(NID) == [u]
