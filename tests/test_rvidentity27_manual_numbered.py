"""Review of identity27: a person's numbers when the desk linked a NUMBERED record into it.

``IdentityService._person_numbers`` (identity27's one rule of "the numbers a person's records stand
for") skips every member that is ``manual`` and carries a number -- meant for a record of another
number the desk linked in before linkmend26. But today's desk makes such a member too: R (A's number)
``$link`` ``seealso`` X, where X is in a person the desk made of two unidentified records, moves R
into X's person, ``manual``, carrying A's number -- and that person's one number is A's. Skipped, the
person stands for no number: X (numberless, the desk said it is A's) is linked to B's chain, merged
into B's record by an A40, its kept record names B's record that the compartment says is not X's.

Real path: registrations, A40s and SIU bookings over ``POST /hl7v2``, the desk's ``$link`` over HTTP, resident
tokens reading ``/fhir/Encounter`` and ``/fhir/Appointment``, the real store (SQLite).
"""

from __future__ import annotations

import pytest

from adapters.hl7v2.ack import ack_code_of
from tests import test_mergemend25_merge as mm
from tests.feed_calls import post_hl7v2
from tests.test_convmend20_probes import siu
from tests.test_linkmend26_link import _call
from tests.test_mergemend25_merge import A_NID, B_NID, _operator, _pid, _resident
from tests.test_sched21_status_times import sch

world = mm.world


def _a_person_with_a_desk_linked_numbered_record(world):
    """X and Q (no numbers) one person by the desk; then R (A's number) linked by the desk to X:
    R joins X's person (manual, carrying A's number). Returns (x, q, r)."""
    http, send, register = world.mm
    x = register("MRN-X", None, "无名^甲", "19900101", "M")
    q = register("MRN-Q", None, "无名^乙", "19900101", "M")
    r = register("MRN-R", A_NID, "赵^一")
    ops = _operator(world)
    assert _call(http, ops, "link", x, q).status_code == 200
    assert _call(http, ops, "link", r, x).status_code == 200
    doc = world.identity.record(r)
    assert doc["manual"] and doc["person"] == world.identity.record(x)["person"]  # the state the tests need
    return x, q, r


def _visits(http, engine, pid: str) -> str:
    return http.get("/fhir/Encounter?_count=100", headers=_resident(engine, pid)).text


def _bookings(http, engine, pid: str) -> str:
    return http.get("/fhir/Appointment?_count=100", headers=_resident(engine, pid)).text


def test_seealso_of_a_record_the_desk_put_with_As_record_to_Bs_chain_is_refused(world):
    """X is in the person holding R (A's number, linked by the desk); T (no number) holds B's record
    merged into it by an A40. ``$link`` X ``seealso`` T says X is B's right after the desk said it is
    A's: refused (422), as it is when R joined by its number (linkmend26's rule). On 7e6d12a6 it was
    422 (the members' own numbers counted); on b2e792c1 ``_joinable`` finds T's chain carries B's
    number, answers None, the refusal counts only ``_person_numbers`` -- R skipped -- and answers 200:
    X leaves R's person for a new one with T, and B's resident reads X's visit."""
    http, send, register = world.mm
    x, q, r = _a_person_with_a_desk_linked_numbered_record(world)
    b = register("MRN-B", B_NID, "钱^秘密")
    t = register("MRN-T", None, "无名^丁", "19921120", "F")
    assert ack_code_of(send("A40", _pid("MRN-T", None, "无名^丁"), "MRG|MRN-B^^^FNXRMYY^MR\r")) == "AA"
    assert "V-MRN-X" not in _visits(http, world, b)
    resp = _call(http, _operator(world), "link", x, t)
    assert resp.status_code == 422, resp.text
    assert "V-MRN-X" not in _visits(http, world, b)
    assert x in world.identity.person_compartment(r)


@pytest.mark.parametrize("direction", ["X into B's record", "B's record into X"])
def test_an_a40_merging_a_record_the_desk_put_with_As_record_with_Bs_is_refused(world, direction):
    """The hospital's A40 merging X (numberless, in the person the desk made with R, A's number) and B's
    record, either way round: X stands for A's number (``_stands_for``), as it does when R joined by its
    number -- AE at MRG-1. b2e792c1 (and before): AA, ``_person_numbers`` skipping R. X into B: X stays
    in R's person, A's resident reads X's visit, which the hospital now says is B's."""
    http, send, register = world.mm
    x, q, r = _a_person_with_a_desk_linked_numbered_record(world)
    register("MRN-B", B_NID, "钱^秘密")
    if direction == "X into B's record":
        ack = send("A40", _pid("MRN-B", B_NID, "钱^秘密"), "MRG|MRN-X^^^FNXRMYY^MR\r")
    else:
        ack = send("A40", _pid("MRN-X", None, "无名^甲", "19900101", "M"), "MRG|MRN-B^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AE", ack
    assert "|MRG^1^1|" in ack, ack  # ERR at MRG-1, as every refused merge


def test_a_late_booking_under_Bs_record_is_not_filed_where_As_resident_reads_it(world):
    """B booked (S12 under B's MRN); the A40 merging B's record into X sent; a late S14 under B's MRN.
    Whatever the A40's answer, B's booking must not land in A's compartment. b2e792c1: the A40 is AA,
    ``kept_record(B)`` is X -- which B's compartment leaves out (``_stands_for(X)`` is empty, R skipped;
    the compartment counts R's A) -- the booking is filed under X and A's resident reads it; the two
    answers identity27's tests pin equal (``_agree``) disagree."""
    http, send, register = world.mm
    x, q, r = _a_person_with_a_desk_linked_numbered_record(world)
    b = register("MRN-B", B_NID, "钱^秘密")
    pid_b = _pid("MRN-B", B_NID, "钱^秘密").rstrip("\r")
    assert ack_code_of(post_hl7v2(world, http, siu("RVB1", "S12", sch("RVB"), pid_b)).text) == "AA"
    assert "BK-RVB" in _bookings(http, world, b) and "BK-RVB" not in _bookings(http, world, r)
    send("A40", _pid("MRN-X", None, "无名^甲", "19900101", "M"), "MRG|MRN-B^^^FNXRMYY^MR\r")
    post_hl7v2(world, http, siu("RVB2", "S14", sch("RVB", timing="^^^20261207100000"), pid_b))
    kept = world.identity.kept_record(b)
    assert kept is None or kept in world.identity.person_compartment(b), (kept == x,)
    assert "BK-RVB" not in _bookings(http, world, r)
