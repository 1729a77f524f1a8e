"""rvs22b: second review of sched22's mend (AIP/AIL U keeping what empty fields do not state, A/X
under stored set ids, X never adding, long durations). Real HL7 bytes over MLLP (``send``), the
real store, read back through /fhir."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.shared_worlds44d import reader_engine as engine  # noqa: F401 -- fixtures: the module's engine and reader
from tests.shared_worlds44d import reader_fhir as fhir  # noqa: F401
from tests.test_conv20_fidelity import appointment
from tests.test_convert11_thinner import send
from tests.test_convmend20_probes import PID, siu, valid
from tests.test_sched22_rv_probes import AN, AT, D01, D03, D05, _actors, _roles, _run, _show, _text

T = "20261205083000"


def _status(appt: dict, display: str) -> list[str]:
    return [p["status"] for p in _actors(appt, "Practitioner") if p["actor"]["display"] == display]


# --- two people in one AIP (AIP-3 repeats) ---------------------------------------------------------

def test_rvrvs22b_thinner_u_of_two_people_keeps_both_statuses(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1||D01~D05|AT||<t>||||||Pending``: both tentative. ``AIP|1|U|D01~D05|||<t2>`` leaves
    AIP-12 empty (no change): both must stay tentative -- ``_updated`` pairs every entry with the
    first stored one, so only D01's status is kept and D05 is reset."""
    appt, (_, ack) = _run(engine, fhir, "RB", [f"AIP|1||{D01}~{D05}|{AT}||{T}||||||Pending"],
                          [f"AIP|1|U|{D01}~{D05}|||20261205090000"])
    assert (_status(appt, "王明"), _status(appt, "孙力")) == (["tentative"], ["tentative"]), (
        _show(appt["participant"]), _text(ack))


def test_rvrvs22b_thinner_u_of_two_people_keeps_both_roles(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Same two people, AIP-4 empty in the U: both keep the attending role (guard)."""
    appt, (_, ack) = _run(engine, fhir, "RC", [f"AIP|1||{D01}~{D05}|{AT}||{T}"],
                          [f"AIP|1|U|{D01}~{D05}|||20261205090000"])
    assert sorted(tuple(_roles(p)) for p in _actors(appt, "Practitioner")) == [("AT",), ("AT",)], (
        _show(appt["participant"]), _text(ack))


# --- declined, then a thinner U ----------------------------------------------------------------------

def test_rvrvs22b_thinner_u_of_a_declined_doctor_does_not_undecline_him(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 books D01; S15-like ``AIP|1|D|D01`` declines him; a later ``AIP|1|U|D01|||<t2>`` (AIP-12
    empty: no change of status) re-accepts him -- the status the D stated is erased by a thinner U."""
    appt, acks = _run(engine, fhir, "RD", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}"],
                      [f"AIP|1|D|{D01}"], [f"AIP|1|U|{D01}|||20261205090000"])
    assert _status(appt, "王明") == ["declined"], (_show(appt["participant"]), [_text(a) for a in acks])


# --- empty components ---------------------------------------------------------------------------------

def test_rvrvs22b_u_whose_aip3_has_only_empty_components_keeps_the_doctor(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|U|^^^^^^^^|AN`` -- AIP-3 present only as separators, nothing stated (not the null
    ``""``): the doctor set id 1 holds must stay (re-roled), not be replaced by a nameless slot."""
    appt, (_, ack) = _run(engine, fhir, "RE", [f"AIP|1||{D01}|{AT}||{T}"],
                          [f"AIP|1|U|^^^^^^^^|{AN}||20261205090000"])
    assert [p["actor"]["display"] for p in _actors(appt, "Practitioner")] == ["王明"], (
        _show(appt["participant"]), _text(ack))
    assert all("actor" in p for p in appt["participant"]), _show(appt["participant"])


def test_rvrvs22b_u_whose_aip4_has_only_empty_components_keeps_the_role(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|U|D01|^^|`` -- AIP-4 only separators (no change): the attending role stays."""
    appt, (_, ack) = _run(engine, fhir, "RF", [f"AIP|1||{D01}|{AT}||{T}"],
                          [f"AIP|1|U|{D01}|^^||20261205090000"])
    (doc,) = _actors(appt, "Practitioner")
    assert _roles(doc) == ["AT"], (_show(appt["participant"]), _text(ack))


# --- guards of the mend ------------------------------------------------------------------------------

def test_rvrvs22b_u_naming_another_doctor_does_not_inherit_the_stored_status(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """D01 tentative; ``AIP|1|U|D03|||<t2>``: D03 replaces him, not with D01's tentative."""
    appt, (_, ack) = _run(engine, fhir, "RG", [f"AIP|1||{D01}|{AT}||{T}||||||Pending"],
                          [f"AIP|1|U|{D03}|||20261205090000"])
    assert [p["actor"]["display"] for p in _actors(appt, "Practitioner")] == ["刘芳"], _show(appt["participant"])
    assert _status(appt, "刘芳") == ["accepted"], (_show(appt["participant"]), _text(ack))


def test_rvrvs22b_x_of_a_never_booked_doctor_adds_nothing_and_says_so(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "RH", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|2|X|{D05}|{AN}||{T}"])
    assert [p["actor"]["display"] for p in _actors(appt, "Practitioner")] == ["王明"], _show(appt["participant"])
    assert "AIP^1^1" in _text(ack) and "set id 2" in _text(ack), _text(ack)  # the only AIP of the S14


def test_rvrvs22b_x_naming_another_role_than_stored_is_refused_and_kept(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "RI", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|1|X|{D01}|{AN}||{T}"])
    (doc,) = _actors(appt, "Practitioner")
    assert _roles(doc) == ["AT"] and "ERR" in _text(ack), (_show(appt["participant"]), _text(ack))


def test_rvrvs22b_a_of_a_second_unnamed_anaesthetist_under_a_new_set_id_adds(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "RJ", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2|||{AN}||{T}"],
                          [f"AIP|3|A||{AN}||{T}"])
    assert sum(1 for p in appt["participant"] if "actor" not in p) == 2, (_show(appt["participant"]), _text(ack))


def test_rvrvs22b_a_resent_unchanged_is_silent_and_keeps_everything(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "RK", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}"],
                          [f"AIP|1|A|{D01}|{AT}||{T}", f"AIP|2|A|{D05}|{AN}||{T}"])
    assert sorted((p["actor"]["display"], tuple(_roles(p))) for p in _actors(appt, "Practitioner")) == [
        ("孙力", ("AN",)), ("王明", ("AT",))], _show(appt["participant"])
    assert "AIP^" not in _text(ack), _text(ack)


def test_rvrvs22b_a_under_stored_set_id_naming_another_doctor_keeps_and_warns(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "RL", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|1|A|{D03}|{AT}||{T}"])
    assert [p["actor"]["display"] for p in _actors(appt, "Practitioner")] == ["王明"], _show(appt["participant"])
    assert "AIP^1" in _text(ack), _text(ack)


def test_rvrvs22b_thinner_ail_u_keeps_the_location(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "RM", [f"AIP|1||{D01}|{AT}||{T}", f"AIL|1||US^201^1^FNXRMYY|||{T}"],
                          ["AIL|1|U||||20261205090000"])
    assert len(_actors(appt, "Location")) == 1, (_show(appt["participant"]), _text(ack))


def test_rvrvs22b_long_duration_in_ais7_is_said_at_ais7(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """No SCH-9/SCH-11: the AIS-7 duration of 6000000 minutes is said at AIS-7; nothing 500s."""
    sch = "SCH|AP-RN|BK-RN||||||NORMAL|||||||||||||||||Booked"
    (ack,) = send(engine, siu("RN1", "S12", sch, PID, "RGS|1|A", f"AIS|1||US1^腹部B超^L|{T}|||6000000|min",
                              f"AIP|1||{D01}|{AT}||{T}"))
    assert ack_code_of(ack) in ("AA", "AE") and "AIS^1^7" in _text(ack), _text(ack)
    valid(appointment(engine, fhir, "RN1"))


def test_rvrvs22b_duration_at_exactly_ten_years_is_taken(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """3660 days in minutes (5270400) is taken; the guard says past ten years only."""
    sch = f"SCH|AP-RO|BK-RO||||||NORMAL|5270400|min|^^^{T}||||||||||||||Booked"
    (ack,) = send(engine, siu("RO1", "S12", sch, PID, "RGS|1|A", f"AIP|1||{D01}|{AT}||{T}"))
    appt = valid(appointment(engine, fhir, "RO1"))
    assert appt.get("minutesDuration") == 5270400 and "SCH^1^9" not in _text(ack), (_show(appt), _text(ack))


# --- second batch -----------------------------------------------------------------------------------

def test_rvrvs22b_a_re_adding_a_declined_doctor_under_his_set_id_re_books_him(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|D|D01`` declines him; a later ``AIP|1|A|D01|AT`` adds him back (the same person, role
    and set id): the A "changes nothing" (same people and roles) and he stays declined, accepted AA."""
    appt, acks = _run(engine, fhir, "SA", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}"],
                      [f"AIP|1|D|{D01}"], [f"AIP|1|A|{D01}|{AT}||{T}"])
    assert _status(appt, "王明") == ["accepted"], (
        _show(appt["participant"]), [_text(a) for a in acks])


def test_rvrvs22b_u_naming_no_one_of_a_declined_doctor_is_no_needs_action_person(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """D01 declined; ``AIP|1|U||AN||<t>`` (AIP-3 empty: keeps him): the entry is a named doctor
    whose status comes from the unnamed-role rule (needs-action) -- neither his declined nor accepted."""
    appt, acks = _run(engine, fhir, "SB", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}"],
                      [f"AIP|1|D|{D01}"], [f"AIP|1|U||{AN}||20261205090000"])
    assert _status(appt, "王明") in (["declined"], ["accepted"]), (_show(appt["participant"]), [_text(a) for a in acks])


def test_rvrvs22b_x_naming_no_one_under_a_stored_set_id_is_not_refused(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|X||AT`` (AIP-3 empty: no change of who): the stored doctor stands, no refusal said."""
    appt, (_, ack) = _run(engine, fhir, "SC", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|1|X||{AT}||{T}"])
    assert [p["actor"]["display"] for p in _actors(appt, "Practitioner")] == ["王明"], _show(appt["participant"])
    assert all("actor" in p for p in appt["participant"]), _show(appt["participant"])
    assert "AIP^1" not in _text(ack), _text(ack)


def test_rvrvs22b_u_naming_no_one_re_roles_both_people_of_one_aip_keeping_status(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "SD", [f"AIP|1||{D01}~{D05}|{AT}||{T}||||||Pending"],
                          [f"AIP|1|U||{AN}||20261205090000"])
    assert sorted((p["actor"]["display"], tuple(_roles(p)), p["status"]) for p in _actors(appt, "Practitioner")) == [
        ("孙力", ("AN",), "tentative"), ("王明", ("AN",), "tentative")], (_show(appt["participant"]), _text(ack))


def test_rvrvs22b_thinner_u_reordering_two_people_keeps_both_statuses(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|U|D05~D01|||<t2>``: the same two, listed the other way round, AIP-12 empty."""
    appt, (_, ack) = _run(engine, fhir, "SE", [f"AIP|1||{D01}~{D05}|{AT}||{T}||||||Pending"],
                          [f"AIP|1|U|{D05}~{D01}|||20261205090000"])
    assert (_status(appt, "王明"), _status(appt, "孙力")) == (["tentative"], ["tentative"]), (
        _show(appt["participant"]), _text(ack))


def test_rvrvs22b_thinner_aig_u_keeps_the_equipment(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "SF", [f"AIP|1||{D01}|{AT}||{T}", f"AIG|1||EQ1^B超机^L|||||{T}||||||Pending"],
                          ["AIG|1|U|EQ1^B超机^L|||||20261205090000"])
    others = [p for p in appt["participant"] if "actor" in p and not p["actor"].get("reference", "").startswith(
        ("Patient/", "Practitioner/"))]
    assert len(others) == 1 and others[0]["status"] == "tentative", (_show(appt["participant"]), _text(ack))


def test_rvrvs22b_u_stating_only_a_new_status_is_taken(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|U||||<t>||||||Pending``: AIP-3 and AIP-4 empty (no change: the doctor and his role),
    only AIP-12 stated -- the doctor is now tentative. It is refused ("states nothing to update")."""
    appt, (_, ack) = _run(engine, fhir, "SG", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|1|U||||{T}||||||Pending"])
    (doc,) = _actors(appt, "Practitioner")
    assert (doc["status"], _roles(doc)) == ("tentative", ["AT"]), (_show(appt["participant"]), _text(ack))


def test_rvrvs22b_u_naming_him_and_only_a_new_status_is_taken(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: ``AIP|1|U|D01|||<t>||||||Pending`` -- role kept, status taken."""
    appt, (_, ack) = _run(engine, fhir, "SH", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|1|U|{D01}|||{T}||||||Pending"])
    (doc,) = _actors(appt, "Practitioner")
    assert (doc["status"], _roles(doc)) == ("tentative", ["AT"]), (_show(appt["participant"]), _text(ack))


# --- the start-without-end warning's location ---------------------------------------------------------

def test_rvrvs22b_start_from_tq1_without_end_is_said_at_tq1_7(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    sch = "SCH|AP-TA|BK-TA||||||NORMAL|||||||||||||||||Booked"
    (ack,) = send(engine, siu("TA1", "S12", sch, f"TQ1|1||||||{T}", PID, "RGS|1|A", f"AIP|1||{D01}|{AT}||{T}"))
    assert ack_code_of(ack) == "AA" and "TQ1^1^7" in _text(ack) and "SCH^1^11" not in _text(ack), _text(ack)


def test_rvrvs22b_start_from_the_earliest_aip_6_is_said_there(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """AIS-4 at 09:00, the second AIP's AIP-6 at 08:00 (the earliest): said at AIP^2^6."""
    sch = "SCH|AP-TB|BK-TB||||||NORMAL|||||||||||||||||Booked"
    (ack,) = send(engine, siu("TB1", "S12", sch, PID, "RGS|1|A", "AIS|1||US1^腹部B超^L|20261205090000",
                              f"AIP|1||{D01}|{AT}||20261205090000", f"AIP|2||{D05}|{AN}||20261205080000"))
    assert ack_code_of(ack) == "AA" and "AIP^2^6" in _text(ack) and "AIS^1^4" not in _text(ack), _text(ack)


def test_rvrvs22b_thinner_u_after_duplicated_set_ids_keeps_the_role(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 gives AIP set id 1 twice (stripped); ``AIP|1|U|D01|||<t2>`` is found by who he is and keeps
    his attending role (AIP-4 empty)."""
    appt, (_, ack) = _run(engine, fhir, "TC", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|1||{D05}|{AN}||{T}"],
                          [f"AIP|1|U|{D01}|||20261205090000"])
    assert sorted((p["actor"]["display"], tuple(_roles(p))) for p in _actors(appt, "Practitioner")) == [
        ("孙力", ("AN",)), ("王明", ("AT",))], (_show(appt["participant"]), _text(ack))


def test_rvrvs22b_a_re_sent_with_a_new_status_is_taken_or_said(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|A|D01|AT||<t>||||||Pending`` under set id 1 that holds D01 attending (accepted): the
    engineer chose "changes nothing" -- then at least the dropped status must be said in the ACK."""
    appt, (_, ack) = _run(engine, fhir, "TD", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|1|A|{D01}|{AT}||{T}||||||Pending"])
    assert _status(appt, "王明") == ["tentative"] or "AIP^1" in _text(ack), (_show(appt["participant"]), _text(ack))
