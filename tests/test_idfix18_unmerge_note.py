"""Undoing a merge made inside one person after the desk had put the record there by hand
(eighteenth round, review of id18).

张三's record A (his number) is, the desk says, 张小明's (``$link`` A -> X ``seealso``: A joins X's
person by hand), then merged into X (``replaced-by``, inside that one person: nothing moves).
id18 recognised a merge of the code before by its shape -- a record merged by hand, linked in its
survivor's person, not its own number's -- and this one has that shape: ``$unlink`` X, A took A out
of the person the operator had put it in (an operator's decision undone by the machine) where the
code before took X out, as ``$unlink`` of a source does. Every merge this code sees made is now
noted (``merge_noted``), so the guess applies only to merges older code made. Real path:
``POST /hl7v2``, ``$link``/``$unlink`` over HTTP, SQLite and mongomock.
"""

from __future__ import annotations

from tests import test_id17_revisit as revisit
from tests.operator_calls import before_linkmend26, index_state, operate
from tests.test_id17_operator_merge import RELATIVE, _a40, _merge
from tests.test_id17_revisit import ER7

world = revisit.world  # the fixture: the engine, HTTP and an HL7 feed


def _four(send) -> tuple[str, str, str, str]:
    a = send("FNXRMYY", "A04", "张三")
    a2 = send("FNZYY", "A04", "张三")
    x = send("FNFYY", "A04", "张小明", RELATIVE)
    x2 = send("FNZXYY", "A04", "张小明", RELATIVE)
    return a, a2, x, x2


def test_a_merge_inside_the_person_the_desk_put_the_record_in_undone_keeps_it_there(world):
    """Data changed in the twenty-sixth round (linkmend26): the desk's link and merge of A (张三's number)
    into X (张小明's) are refused now; this test builds the state they left before the rule
    (``before_linkmend26``): its undo is what an operator still needs."""
    engine, http, send = world
    a, a2, x, x2 = _four(send)
    with before_linkmend26(engine):
        operate(http, "link", a, x)  # the desk: A is 张小明's
        _merge(http, a, x)  # and a duplicate of X
    send("FNXRMYY", "A08", "张三")  # a later message of A keeps the merge and its note
    assert engine.identity.record(a)["replaced_by"] == x
    operate(http, "unlink", x, a)
    assert index_state(engine, http, a)[:2] == ("linked", {a, x2})
    assert engine.identity.record(x)["status"] == "unlinked"  # the source leaves, as asked
    assert engine.identity.person_compartment(a2) == {a2}


def test_the_same_undone_from_the_merged_records_side_takes_it_out(world):
    """``$unlink`` A, X: the source A leaves (as for any ``$unlink`` of a source), X stays. Data changed
    in the twenty-sixth round (linkmend26): the link and merge are the ones stored before the rule."""
    engine, http, send = world
    a, _, x, x2 = _four(send)
    with before_linkmend26(engine):
        operate(http, "link", a, x)
        _merge(http, a, x)
    operate(http, "unlink", a, x)
    assert engine.identity.record(a)["status"] == "unlinked"
    assert engine.identity.person_compartment(x) == {x, x2}


def test_a_merge_an_hl7_a40_states_is_noted_too(world):
    """The source system's merge (ADT^A40) is one this code saw made: noted, so undoing it never
    takes the guess meant for the older code's merges."""
    engine, http, send = world
    o = send("FNZXYY", "A04", "张三")
    s = send("FNXRMYY", "A04", "张三")
    r = http.post("/hl7v2", content=_a40("ZY0001", "ZY0004"), headers={"Content-Type": ER7})
    assert r.headers["x-hl7-ack-code"] == "AA", r.text
    assert engine.identity.record(o)["replaced_by"] == s
    assert engine.identity.record(o)["merge_noted"] is True


def test_undoing_a_merge_inside_one_person_takes_the_source_out(world):
    """What the README says of a merge that moved nothing (review of id18: it said the source stays
    where it is): inside one person, ``$unlink`` O, S takes O out by hand, as ``$unlink`` of a
    source does (hidden until an operator links it, never left beside records it may not be
    with); into a survivor in no person, O stays ``manual`` in its own person."""
    engine, http, send = world
    s = send("FNXRMYY", "A04", "张三")
    o = send("FNZXYY", "A04", "张三")
    _merge(http, o, s)
    operate(http, "unlink", o, s)
    assert engine.identity.record(o)["status"] == "unlinked" and engine.identity.record(o)["manual"]
    assert engine.identity.person_compartment(s) == {s}
    lone = send("FNZYY", "A04", "张三")
    operate(http, "unlink", lone)
    _merge(http, s, lone)
    operate(http, "unlink", s, lone)
    assert engine.identity.record(s)["status"] == "linked" and engine.identity.record(s)["manual"]
    assert engine.identity.person_compartment(s) == {s}
