"""Undoing an operator's merge across persons, and deleting a record an operator linked (eighteenth
round, id18; the two cases the seventeenth round left, and the three ways its unlanded mend failed).

张三 has two records of his own ID number (A at FNXRMYY, A2 at FNZYY, linked automatically); X is
another resident's record (张小明, another number). The desk merges A into X (``$link``
``replaced-by``: A takes X's person), then sees the mistake and undoes it (``$unlink`` of the two).
The operator said "A is not X", not "A is nobody's": A, placed by the machine before the merge,
goes back to the machine -- classified by its own number as a re-send would be -- and the two
records are kept apart. An operator's earlier decision about A stays (the machine never undoes
one), a record given back to the machine is the machine's (a later message moves it), a merge
inside one person is left alone by ``rebuild``. And a record linked by hand, then deleted, leaves
its person. Real path: ``POST /hl7v2``, ``/fhir`` and ``$link``/``$unlink`` over HTTP, SQLite and
mongomock.

Data changed in the twenty-sixth round (linkmend26): the desk's merge of A into X (two ID numbers) is
refused now (``tests/test_privleft26_link.py``); these tests undo such a merge stored before the rule
(``_old_merge``: the same ``$link``, the rule off), the repair an operator still needs.
"""

from __future__ import annotations

from stdnum.cn import ric

from tests import test_id17_revisit as revisit
from tests.operator_calls import index_state, operate
from tests.test_id17_operator_merge import RELATIVE, _merge, _old_merge
from tests.test_id17_revisit import ER7, NID, _message

world = revisit.world  # the fixture: the engine, HTTP and an HL7 feed

THIRD = "32092319900101131"
THIRD += ric.calc_check_digit(THIRD + "0")  # born 1990-01-01, male: a third resident


def _links(http, pid: str) -> list[tuple[str, str]]:
    stored = http.get(f"/fhir/Patient/{pid}").json()
    return sorted((link["type"], link["other"]["reference"].split("/")[1]) for link in stored.get("link", []))


def _three(send) -> tuple[str, str, str]:
    a = send("FNXRMYY", "A04", "张三")
    a2 = send("FNZYY", "A04", "张三")
    x = send("FNFYY", "A04", "张小明", RELATIVE)
    return a, a2, x


def test_undoing_a_merge_into_another_person_gives_the_record_back_to_its_number(world):
    engine, http, send = world
    a, a2, x = _three(send)
    _old_merge(engine, http, a, x)  # refused since linkmend26: an old merge's undo
    assert engine.identity.patients_for_number(NID) == [a2]
    operate(http, "unlink", a, x)
    assert engine.identity.patients_for_number(NID) == sorted([a, a2])
    assert index_state(engine, http, a2) == ("linked", {a, a2}, [a])
    assert index_state(engine, http, x) == ("linked", {x}, [])
    assert _links(http, a) == [("seealso", a2)]
    assert engine.identity.patients_for_number(RELATIVE) == [x]
    send("FNXRMYY", "A08", "张三")  # a re-send of A keeps it where it is
    assert engine.identity.person_compartment(a) == {a, a2}
    assert engine.identity.person_compartment(x) == {x}


def test_undoing_it_from_the_survivors_side_keeps_the_survivor(world):
    engine, http, send = world
    a, a2, x = _three(send)
    x2 = send("FNZXYY", "A04", "张小明", RELATIVE)
    _old_merge(engine, http, a, x)  # refused since linkmend26: an old merge's undo
    operate(http, "unlink", x, a)  # "X does not replace A": X stays 张小明's
    assert index_state(engine, http, x) == ("linked", {x, x2}, [x2])
    assert engine.identity.patients_for_number(RELATIVE) == sorted([x, x2])
    assert index_state(engine, http, a2) == ("linked", {a, a2}, [a])
    # and X stays the machine's: an A08 giving it a third resident's number takes it out of 张小明's
    r = http.post("/hl7v2", content=_message("FNFYY", "A08", "张小明", THIRD), headers={"Content-Type": ER7})
    assert r.headers["x-hl7-ack-code"] == "AA", r.text
    assert index_state(engine, http, x2) == ("linked", {x2}, [])
    assert engine.identity.patients_for_number(THIRD) == [x]


def test_an_operators_earlier_unlink_stays_when_the_merge_is_undone(world):
    """Failure (a) of the unlanded mend: A taken out by hand before the merge is not handed back to
    its number when the merge is undone: the machine never undoes an operator's decision."""
    engine, http, send = world
    a, a2, x = _three(send)
    operate(http, "unlink", a)
    _old_merge(engine, http, a, x)  # refused since linkmend26: an old merge's undo
    operate(http, "unlink", a, x)
    assert engine.identity.record(a)["status"] == "unlinked" and engine.identity.record(a)["manual"]
    assert engine.identity.patients_for_number(NID) == [a2]
    assert index_state(engine, http, a2) == ("linked", {a2}, [])
    assert index_state(engine, http, x) == ("linked", {x}, [])


def test_a_record_given_back_moves_with_a_later_message(world):
    """Failure (b): a record given back to its number is the machine's again, not frozen ``manual``
    there: an A08 giving it a third resident's number takes it out of 张三's person."""
    engine, http, send = world
    a, a2, x = _three(send)
    _old_merge(engine, http, a, x)  # refused since linkmend26: an old merge's undo
    operate(http, "unlink", a, x)
    r = http.post("/hl7v2", content=_message("FNXRMYY", "A08", "张三", THIRD), headers={"Content-Type": ER7})
    assert r.headers["x-hl7-ack-code"] == "AA", r.text
    assert engine.identity.patients_for_number(NID) == [a2]
    assert index_state(engine, http, a2) == ("linked", {a2}, [])
    assert engine.identity.patients_for_number(THIRD) == [a]


def test_no_machine_step_joins_the_two_records_again(world):
    """The operator's "A is not X" holds: an A08 giving A X's number leaves it out of X's person
    (in conflict, for an operator to look at), either way round."""
    engine, http, send = world
    a, a2, x = _three(send)
    _old_merge(engine, http, a, x)  # refused since linkmend26: an old merge's undo
    operate(http, "unlink", a, x)
    r = http.post("/hl7v2", content=_message("FNXRMYY", "A08", "张小明", RELATIVE), headers={"Content-Type": ER7})
    assert r.headers["x-hl7-ack-code"] == "AA", r.text
    assert engine.identity.record(a)["status"] == "conflict"
    assert engine.identity.person_compartment(x) == {x}
    assert engine.identity.patients_for_number(RELATIVE) == [x]
    assert any(f"Patient/{x}" in reason for reason in engine.identity.record(a)["reasons"])
    operate(http, "link", a, x)  # until an operator says they are one
    assert engine.identity.person_compartment(x) == {a, x}


def test_a_conflict_merged_into_its_numbers_person_and_undone_stays_out(world):
    """A record of X's own number in conflict (张山 against 张三), merged into X by hand, then undone:
    a re-send would still not join it; corrected to 张三 later, it stays out (the operator said
    it is not X's), while X and its person are untouched."""
    engine, http, send = world
    x = send("FNXRMYY", "A04", "张三")
    a = send("FNZYY", "A04", "张山")
    _merge(http, a, x)  # one number's records: taken
    operate(http, "unlink", a, x)
    assert index_state(engine, http, x) == ("linked", {x}, [])
    send("FNZYY", "A08", "张三")
    assert engine.identity.record(a)["status"] == "conflict"
    assert engine.identity.patients_for_number(NID) == [x]
    send("FNXRMYY", "A08", "张三")  # and a re-send of X keeps X
    assert index_state(engine, http, x) == ("linked", {x}, [])


def test_rebuild_leaves_a_merge_inside_one_person(world):
    """Failure (c): ``rebuild`` moved a merge made inside one person; nothing of it changes."""
    engine, http, send = world
    a = send("FNXRMYY", "A04", "张三")
    a2 = send("FNZYY", "A04", "张三")
    _merge(http, a2, a)
    before = {pid: (engine.identity.record(pid), _links(http, pid)) for pid in (a, a2)}
    engine.identity.rebuild()
    assert {pid: (engine.identity.record(pid), _links(http, pid)) for pid in (a, a2)} == before
    assert engine.identity.person_compartment(a) == {a, a2}


def test_a_record_linked_by_hand_then_deleted_leaves_its_person(world):
    engine, http, send = world
    a = send("FNXRMYY", "A04", "张三")
    d = send("FNZYY", "A04", "张山")  # in conflict; the desk links it by hand
    operate(http, "link", d, a)
    assert engine.identity.patients_for_number(NID) == sorted([a, d])
    assert http.delete(f"/fhir/Patient/{d}").status_code in (200, 204)
    assert engine.identity.patients_for_number(NID) == [a]
    assert index_state(engine, http, a) == ("linked", {a}, [])
    send("FNZYY", "A04", "张山")  # sent again: the operator's link applies again
    assert index_state(engine, http, a) == ("linked", {a, d}, [d])


def test_a_record_taken_out_by_hand_then_deleted_and_sent_again_stays_out(world):
    """The son seen on his father's ID card, taken out by the desk: deleted and sent again, he is
    not linked to the father by the machine (the unlanded mend forgot the decision: a leak)."""
    engine, http, send = world
    a = send("FNXRMYY", "A04", "张三")
    d = send("FNZYY", "A04", "张三")
    operate(http, "unlink", d)
    assert http.delete(f"/fhir/Patient/{d}").status_code in (200, 204)
    send("FNZYY", "A04", "张三")
    assert engine.identity.record(d)["status"] == "unlinked"
    assert engine.identity.patients_for_number(NID) == [a]
    assert index_state(engine, http, a) == ("linked", {a}, [])


def test_rebuild_takes_a_deleted_record_linked_by_hand_out_of_its_person(world):
    """A store of the code before: the deleted record's entry left linked by hand; ``rebuild`` mends it."""
    engine, http, send = world
    a = send("FNXRMYY", "A04", "张三")
    d = send("FNZYY", "A04", "张山")
    operate(http, "link", d, a)
    entry = engine.identity.record(d)
    assert http.delete(f"/fhir/Patient/{d}").status_code in (200, 204)
    engine.identity.links.replace(entry)  # as the code before left it
    engine.identity.rebuild()
    assert engine.identity.patients_for_number(NID) == [a]
    assert index_state(engine, http, a) == ("linked", {a}, [])


def test_the_survivor_taken_out_of_everything_gives_the_merged_record_back(world):
    """``$unlink`` of X alone (out of its person, its merges undone): A, in X's person by the merge
    alone, goes back to its number; X's other record keeps its person."""
    engine, http, send = world
    a, a2, x = _three(send)
    x2 = send("FNZXYY", "A04", "张小明", RELATIVE)
    _old_merge(engine, http, a, x)  # refused since linkmend26: an old merge's undo
    operate(http, "unlink", x)
    assert engine.identity.record(x)["status"] == "unlinked"
    assert index_state(engine, http, x2) == ("linked", {x2}, [])
    assert index_state(engine, http, a2) == ("linked", {a, a2}, [a])


def test_a_transaction_deleting_a_record_linked_by_hand(world):
    engine, http, send = world
    a = send("FNXRMYY", "A04", "张三")
    d = send("FNZYY", "A04", "张山")
    operate(http, "link", d, a)
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"request": {"method": "DELETE", "url": f"Patient/{d}"}}]}
    r = http.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    assert engine.identity.patients_for_number(NID) == [a]
    assert index_state(engine, http, a) == ("linked", {a}, [])


def test_a_merged_record_deleted_then_unmerged_and_sent_again_is_not_the_survivors(world):
    """A merged into X, deleted, the merge undone from X's side, then A sent again: A does not go
    back to X's person (the place its deletion remembered is the merge's, undone since)."""
    engine, http, send = world
    a, a2, x = _three(send)
    _old_merge(engine, http, a, x)  # refused since linkmend26: an old merge's undo
    assert http.delete(f"/fhir/Patient/{a}").status_code in (200, 204)
    operate(http, "unlink", x, a)
    send("FNXRMYY", "A04", "张三")
    assert engine.identity.person_compartment(x) == {x}
    assert engine.identity.patients_for_number(RELATIVE) == [x]


def test_a_merge_the_code_before_made_undone_from_the_survivors_side(world):
    """A merge of the seventeenth round's code (no ``merge_moved`` note): undone from X's side, A is
    taken out by hand (whose its person was before is not known) and X stays with its other record;
    the code before took X out and left 张三's A in 张小明's person with X2."""
    engine, http, send = world
    a, a2, x = _three(send)
    x2 = send("FNZXYY", "A04", "张小明", RELATIVE)
    _old_merge(engine, http, a, x)  # refused since linkmend26: an old merge's undo
    engine.identity.links.update(a, {"merge_moved": None, "merge_noted": None})  # as that code left it
    operate(http, "unlink", x, a)
    assert index_state(engine, http, x2) == ("linked", {x, x2}, [x])
    assert engine.identity.record(a)["status"] == "unlinked"
    assert index_state(engine, http, a2) == ("linked", {a2}, [])
