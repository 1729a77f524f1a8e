"""identfix27: the record the index keeps for a merged-away record is one of that record's person's.

``IdentityService.merge_chain`` (so ``kept_record``: where a late booking under a record merged away is
filed, ``merge_rules``) walked ``replaced_by`` judging numbers alone; ``person_compartment`` (what a
resident reads) also keeps a merge from carrying it into a second person. X (no number) the desk made
one person with Q (no number), then an A40 merging X with W (A's number, linked by it): the A40 is
taken (one number), X stays in the person the desk made (the desk's decision is kept), so X's
compartment does not hold W -- yet the kept record was W, and a late booking under X's MRN was filed
under A's record (which A's resident reads) though X's visit is not A's to read. Now ``merge_chain`` answers None when its
chain leaves the record's compartment (the booking stays where it is filed, as for any chain the index
cannot tell), so the two answers agree by construction (review of identity27, finding 3's root).

Real path: registrations, A40s and SIU bookings over ``POST /hl7v2``, the desk's ``$link`` over HTTP,
resident tokens reading ``/fhir/Encounter`` and ``/fhir/Appointment``, the real store (SQLite).
"""

from __future__ import annotations

import pytest

from adapters.hl7v2.ack import ack_code_of
from tests import test_mergemend25_merge as mm
from tests.feed_calls import post_hl7v2
from tests.operator_calls import before_linkmend26
from tests.test_convmend20_probes import siu
from tests.test_identity27_chains import C_NID
from tests.test_linkmend26_link import _call
from tests.test_mergemend25_merge import A_NID, _operator, _pid, _resident
from tests.test_sched21_status_times import sch

world = mm.world

X = ("MRN-X", None, "无名^甲", "19900101", "M")
W = ("MRN-W", A_NID, "赵^一")


def _read(http, engine, pid: str, rtype: str) -> str:
    return http.get(f"/fhir/{rtype}?_count=100", headers=_resident(engine, pid)).text


@pytest.mark.parametrize("direction", ["X into W", "W into X"])
def test_a_late_booking_follows_a_merge_only_inside_the_persons_compartment(world, direction):
    """The record to be merged booked under its MRN (S12); the A40 merging one into the other (AA: one
    number); a late S14 under the merged-away record's MRN. X into W, before: ``kept_record(X)`` named W,
    outside X's compartment (X stays in the desk's person) -- X's booking was filed under W and read by
    A's resident, who does not read X's visit. Now None: it stays under X. W into X (guard): W, left with
    no number, follows into X's person -- the chain is told and A's booking goes with it."""
    http, send, register = world.mm
    x = register(*X)
    q = register("MRN-Q", None, "无名^乙", "19900101", "M")
    w = register(*W)
    assert _call(http, _operator(world), "link", x, q).status_code == 200
    merged, survivor = (X, W) if direction == "X into W" else (W, X)
    gone = x if merged is X else w
    pid_m = _pid(*merged).rstrip("\r")
    assert ack_code_of(post_hl7v2(world, http, siu("KB1", "S12", sch("KB"), pid_m)).text) == "AA"
    assert ack_code_of(send("A40", _pid(*survivor), f"MRG|{merged[0]}^^^FNXRMYY^MR\r")) == "AA"
    assert world.identity.record(gone)["replaced_by"]  # the merge is stored
    post_hl7v2(world, http, siu("KB2", "S14", sch("KB", timing="^^^20261207100000"), pid_m))
    kept = world.identity.kept_record(gone)
    assert kept is None or kept in world.identity.person_compartment(gone), (kept, direction)
    if direction == "X into W":  # X stays in the desk's person: neither its visit nor its booking is A's
        assert "V-MRN-X" not in _read(http, world, w, "Encounter")
        assert "BK-KB" not in _read(http, world, w, "Appointment")
    else:  # guard: W (A's, numberless once merged) follows into X's person; the chain is told, A reads both
        assert kept == x and "V-MRN-X" in _read(http, world, w, "Encounter")
        assert "BK-KB" in _read(http, world, w, "Appointment")


def test_guard_a_person_holding_a_record_the_desk_linked_in_with_another_number_stands_for_both(world):
    """Why the one answer (``_person_numbers``) keeps no exception for a record of another number the
    desk linked in before linkmend26 (identity27 skipped such records): such a person's compartment
    spans that record, so its number must count or more records are put where its resident reads.
    Built as such a store was: W (C's number) linked by the desk to Y (A's record) with the refusal off
    (``before_linkmend26``). The desk's ``seealso`` of U (no number) to Y is refused (422: the person
    stands for A's and C's numbers -- as ``link_refusal``'s own loop said before; with W skipped by
    the one answer it asks now, 200, and C's resident read U's visit). Once the desk unlinks W, taken
    (200), and C's resident does not read U's visit."""
    http, send, register = world.mm
    y = register("MRN-Y", A_NID, "赵^一")
    w = register("MRN-W", C_NID, "孙^丙")
    u = register("MRN-U", None, "无名^甲", "19900101", "M")
    ops = _operator(world)
    with before_linkmend26(world):
        assert _call(http, ops, "link", w, y).status_code == 200
    assert _call(http, ops, "link", u, y).status_code == 422  # U would stand for A's and C's
    assert _call(http, ops, "unlink", w, y).status_code == 200
    assert _call(http, ops, "link", u, y).status_code == 200
    assert "V-MRN-U" not in _read(http, world, w, "Encounter")
