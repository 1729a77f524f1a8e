"""rvs22c: third review of sched22 (its latest mend: a re-sent A's stated status, a status-only U,
declined kept, separators-only fields, unknown status codes). Real HL7 bytes over MLLP (``send``),
the real store, read back through /fhir."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.shared_worlds44d import reader_engine as engine  # noqa: F401 -- fixtures: the module's engine and reader
from tests.shared_worlds44d import reader_fhir as fhir  # noqa: F401
from tests.test_sched22_rv2_probes import T, _status
from tests.test_sched22_rv_probes import AN, AT, D01, D05, _actors, _roles, _run, _show, _text

T2 = "20261205090000"


# --- an A found by who (no entry under its set id) -------------------------------------------------

def test_rvrvs22c_a_under_new_set_id_without_role_keeps_the_stored_role(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 ``AIP|1||D01|AT``; S14 ``AIP|2|A|D01|||<t>`` (AIP-4 empty: no change). No entry is
    stored under set id 2, D01 is found by who and *replaced* by the thinner entry: his attending
    role must not be erased (or the A refused and said)."""
    appt, (_, ack) = _run(engine, fhir, "UA", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|2|A|{D01}|||{T}"])
    docs = _actors(appt, "Practitioner")
    assert any(_roles(p) == ["AT"] for p in docs) or "AIP^1" in _text(ack), (_show(appt["participant"]), _text(ack))


def test_rvrvs22c_a_under_new_set_id_without_status_keeps_the_stored_status(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 ``AIP|1||D01|AT||<t>||||||Pending`` (tentative); S14 ``AIP|2|A|D01|AT||<t>`` (AIP-12
    empty). The mend says "an A that leaves the status empty changes nothing" -- found by who
    under a new set id, the A's default ``accepted`` replaces his tentative."""
    appt, (_, ack) = _run(engine, fhir, "UB", [f"AIP|1||{D01}|{AT}||{T}||||||Pending"], [f"AIP|2|A|{D01}|{AT}||{T}"])
    assert _status(appt, "王明") == ["tentative"], (_show(appt["participant"]), _text(ack))


def test_rvrvs22c_a_after_duplicated_set_ids_keeps_status(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Set id 1 given twice in the S12 (stored without set ids, ``_set_ids_once``); an S14 re-sending
    ``AIP|1|A|D01|AT`` with AIP-12 empty resets D01's tentative to accepted."""
    appt, (_, ack) = _run(engine, fhir, "UC", [f"AIP|1||{D01}|{AT}||{T}||||||Pending", f"AIP|1||{D05}|{AN}||{T}"],
                          [f"AIP|1|A|{D01}|{AT}||{T}"])
    assert _status(appt, "王明") == ["tentative"] or "AIP^1" in _text(ack), (_show(appt["participant"]), _text(ack))


# --- status codes ----------------------------------------------------------------------------------

def test_rvrvs22c_named_u_with_lowercase_status_takes_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|U|D01|||<t>||||||pending``: the builder reads ``pending`` (capitalized) as tentative
    for Change.status; the entry's own status must agree (not the default accepted)."""
    appt, (_, ack) = _run(engine, fhir, "UD", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|1|U|{D01}|||{T2}||||||pending"])
    assert _status(appt, "王明") == ["tentative"], (_show(appt["participant"]), _text(ack))


def test_rvrvs22c_status_only_u_with_lowercase_status_takes_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "UE", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|1|U||||{T2}||||||pending"])
    assert _status(appt, "王明") == ["tentative"], (_show(appt["participant"]), _text(ack))


def test_rvrvs22c_status_only_u_with_unknown_code_keeps_and_says(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: ``AIP|1|U||||<t>||||||Zzz``: nothing changes, the doctor keeps role and tentative."""
    appt, (_, ack) = _run(engine, fhir, "UF", [f"AIP|1||{D01}|{AT}||{T}||||||Pending"], [f"AIP|1|U||||{T2}||||||Zzz"])
    (doc,) = _actors(appt, "Practitioner")
    assert (doc["status"], _roles(doc)) == ("tentative", ["AT"]), (_show(appt["participant"]), _text(ack))


def test_rvrvs22c_named_u_with_unknown_code_keeps_status(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: ``AIP|1|U|D01|||<t>||||||Zzz`` keeps his tentative."""
    appt, (_, ack) = _run(engine, fhir, "UG", [f"AIP|1||{D01}|{AT}||{T}||||||Pending"], [f"AIP|1|U|{D01}|||{T2}||||||Zzz"])
    assert _status(appt, "王明") == ["tentative"], (_show(appt["participant"]), _text(ack))


def test_rvrvs22c_status_only_u_of_two_people_gives_both(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: ``AIP|1||D01~D05|AT``; ``AIP|1|U||||<t>||||||Pending``: both tentative, both attending."""
    appt, (_, ack) = _run(engine, fhir, "UH", [f"AIP|1||{D01}~{D05}|{AT}||{T}"], [f"AIP|1|U||||{T2}||||||Pending"])
    assert sorted((p["actor"]["display"], tuple(_roles(p)), p["status"]) for p in _actors(appt, "Practitioner")) == [
        ("孙力", ("AT",), "tentative"), ("王明", ("AT",), "tentative")], (_show(appt["participant"]), _text(ack))


def test_rvrvs22c_status_only_u_of_a_declined_doctor_re_books_him(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: D01 declined by ``AIP|1|D|D01``; ``AIP|1|U||||<t>||||||Booked`` states him back."""
    appt, acks = _run(engine, fhir, "UI", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}"],
                      [f"AIP|1|D|{D01}"], [f"AIP|1|U||||{T2}||||||Booked"])
    assert _status(appt, "王明") == ["accepted"], (_show(appt["participant"]), [_text(a) for a in acks])


def test_rvrvs22c_status_only_ail_u_is_taken(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: ``AIL|1|U||||<t>||||||Pending`` (AIL-12 only): the room stays, tentative."""
    appt, (_, ack) = _run(engine, fhir, "UJ", [f"AIP|1||{D01}|{AT}||{T}", f"AIL|1||US^201^1^FNXRMYY|||{T}"],
                          [f"AIL|1|U||||{T2}||||||Pending"])
    locs = _actors(appt, "Location")
    assert [p["status"] for p in locs] == ["tentative"], (_show(appt["participant"]), _text(ack))


def test_rvrvs22c_a_resent_with_status_of_one_of_two_people_is_not_taken_for_both(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1||D01~D05|AT``; ``AIP|1|A|D01|AT||<t>||||||Pending`` names D01 alone: D05 must not
    become tentative (and the A names fewer people than set id 1 holds: kept or said)."""
    appt, (_, ack) = _run(engine, fhir, "UK", [f"AIP|1||{D01}~{D05}|{AT}||{T}"], [f"AIP|1|A|{D01}|{AT}||{T}||||||Pending"])
    assert _status(appt, "孙力") == ["accepted"], (_show(appt["participant"]), _text(ack))


def test_rvrvs22c_tilde_only_aip3_u_keeps_the_doctor(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: ``AIP|1|U|~|AN`` -- AIP-3 repetition separator only (no change): D01 stays, re-roled or refused."""
    appt, (_, ack) = _run(engine, fhir, "UL", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|1|U|~|{AN}||{T2}"])
    assert [p["actor"]["display"] for p in _actors(appt, "Practitioner")] == ["王明"], (_show(appt["participant"]), _text(ack))
    assert all("actor" in p for p in appt["participant"]), _show(appt["participant"])


def test_rvrvs22c_status_only_u_canceled_us_spelling_declines(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: ``AIP|1|U||||<t>||||||Canceled`` (the US spelling added to the table): D01 declined, role kept."""
    appt, (_, ack) = _run(engine, fhir, "UM", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|1|U||||{T2}||||||Canceled"])
    (doc,) = _actors(appt, "Practitioner")
    assert (doc["status"], _roles(doc)) == ("declined", ["AT"]), (_show(appt["participant"]), _text(ack))


def test_rvrvs22c_a_under_new_set_id_in_another_role_adds_him_twice(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: ``AIP|2|A|D01|AN`` after ``AIP|1||D01|AT``: D01 in both roles (sched21's lost role)."""
    appt, (_, ack) = _run(engine, fhir, "UN", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|2|A|{D01}|{AN}||{T}"])
    assert sorted(tuple(_roles(p)) for p in _actors(appt, "Practitioner")) == [("AN",), ("AT",)], (
        _show(appt["participant"]), _text(ack))


def test_rvrvs22c_u_of_separators_only_with_a_status_takes_the_status(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: ``AIP|1|U|^^|^^||<t>||||||Pending`` -- who and role only separators (no change), a status stated."""
    appt, (_, ack) = _run(engine, fhir, "UO", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|1|U|^^|^^||{T2}||||||Pending"])
    (doc,) = _actors(appt, "Practitioner")
    assert (doc["actor"]["display"], doc["status"], _roles(doc)) == ("王明", "tentative", ["AT"]), (
        _show(appt["participant"]), _text(ack))


def test_rvrvs22c_a_resent_of_two_people_with_a_status_gives_both(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: ``AIP|1||D01~D05|AT``; ``AIP|1|A|D01~D05|AT||<t>||||||Pending``: both tentative."""
    appt, (_, ack) = _run(engine, fhir, "UP", [f"AIP|1||{D01}~{D05}|{AT}||{T}"],
                          [f"AIP|1|A|{D01}~{D05}|{AT}||{T}||||||Pending"])
    assert (_status(appt, "王明"), _status(appt, "孙力")) == (["tentative"], ["tentative"]), (
        _show(appt["participant"]), _text(ack))


def test_rvrvs22c_thinner_u_under_another_set_id_found_by_who_keeps_role_and_status(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: ``AIP|1||D01|AT||<t>||||||Pending``; ``AIP|2|U|D01|||<t2>`` (set id 2 not stored: D01
    found by who): his role and tentative stay."""
    appt, (_, ack) = _run(engine, fhir, "UQ", [f"AIP|1||{D01}|{AT}||{T}||||||Pending"], [f"AIP|2|U|{D01}|||{T2}"])
    (doc,) = _actors(appt, "Practitioner")
    assert (doc["status"], _roles(doc)) == ("tentative", ["AT"]), (_show(appt["participant"]), _text(ack))


def test_rvrvs22c_x_with_a_status_changes_nothing(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: ``AIP|1|X|D01|AT||<t>||||||Cancelled`` -- X is "no change": D01 stays accepted."""
    appt, (_, ack) = _run(engine, fhir, "UR", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|1|X|{D01}|{AT}||{T}||||||Cancelled"])
    assert _status(appt, "王明") == ["accepted"], (_show(appt["participant"]), _text(ack))


def test_rvrvs22c_ail_a_under_new_set_id_without_status_keeps_the_rooms_status(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Same as the AIP case for a room: ``AIL|1||R1|||<t>||||||Pending``; ``AIL|2|A|R1|||<t>`` (AIL-12
    empty) -- found by who and replaced: tentative becomes accepted."""
    room = "US^201^1^FNXRMYY"
    appt, (_, ack) = _run(engine, fhir, "US", [f"AIP|1||{D01}|{AT}||{T}", f"AIL|1||{room}|||{T}||||||Pending"],
                          [f"AIL|2|A|{room}|||{T}"])
    assert [p["status"] for p in _actors(appt, "Location")] == ["tentative"], (_show(appt["participant"]), _text(ack))


def test_rvrvs22c_status_only_aig_u_is_taken(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: ``AIG|1|U||||||<t>||||||Pending`` (AIG-14 only): the equipment stays, tentative."""
    appt, (_, ack) = _run(engine, fhir, "UT", [f"AIP|1||{D01}|{AT}||{T}", f"AIG|1||EQ1^B超机^L|||||{T}"],
                          [f"AIG|1|U||||||{T2}||||||Pending"])
    others = [p for p in appt["participant"] if "actor" in p and not p["actor"].get("reference", "").startswith(
        ("Patient/", "Practitioner/"))]
    assert [p["status"] for p in others] == ["tentative"], (_show(appt["participant"]), _text(ack))
