"""sched23: last round's SIU leftovers. An A naming a doctor already booked under another set id
(2b), a message mixing coded and uncoded resource segments (2c), an S13 moving the start alone
(2a). Real HL7 bytes over MLLP (``send``), the real store, read back through /fhir; each
Appointment checked by the project's validator."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.shared_worlds44d import reader_engine as engine  # noqa: F401 -- fixtures: the module's engine and reader
from tests.shared_worlds44d import reader_fhir as fhir  # noqa: F401
from tests.test_conv20_fidelity import appointment
from tests.test_convert11_thinner import send
from tests.test_convmend20_probes import PID, siu, valid
from tests.test_ingest_durability import err_fields
from tests.test_sched21_status_times import sch
from tests.test_sched22_changes import AN, AT, D01, D03, SET_ID
from tests.test_sched22_rv2_probes import T, _status
from tests.test_sched22_rv_probes import D05, _actors, _roles, _run, _show, _text

ROOM1 = "US^201^1^FNXRMYY"
ROOM2 = "US^202^1^FNXRMYY"


def _set_ids(p: dict[str, Any]) -> list[str]:
    return [e["valueIdentifier"]["value"] for e in p.get("extension", []) if e["url"] == SET_ID]


def _doctors(appt: dict[str, Any]) -> list[tuple[str, tuple[str, ...], str, tuple[str, ...]]]:
    return sorted((p["actor"]["display"], tuple(_roles(p)), p["status"], tuple(_set_ids(p)))
                  for p in _actors(appt, "Practitioner"))


def _rooms(appt: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((p["actor"].get("display") or p["actor"]["reference"], p["status"]) for p in _actors(appt, "Location"))


# --- 2b: an A naming a doctor already booked under another set id ---------------------------------

def test_a_of_a_booked_doctor_under_a_new_set_id_keeps_his_set_id_and_says_so(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """D01 booked under set id 1; ``AIP|3|A|D01|AT``: a second booking of him in the same role, or
    the sender renumbering -- not said. It moved his set id to 3 (a later ``AIP|1|U`` then found
    nothing); now he is listed once and keeps set id 1, and the ACK says so at the A's AIP-1 (AA)."""
    appt, (_, ack) = _run(engine, fhir, "VA", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}"],
                          [f"AIP|3|A|{D01}|{AT}||{T}"])
    assert _doctors(appt) == [("孙力", ("AN",), "accepted", ("2",)), ("王明", ("AT",), "accepted", ("1",))], (
        _show(appt["participant"]), _text(ack))
    assert [e for e in err_fields(ack) if e[2] == "AIP^1^1" and "set id 1" in e[8] and "keeps it" in e[8]], _text(ack)


def test_after_such_an_a_the_old_set_id_still_finds_him(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The sender's next ``AIP|1|U|D03|AT`` (set id 1 is D01 to it) replaces D01 with D03."""
    appt, acks = _run(engine, fhir, "VB", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|3|A|{D01}|{AT}||{T}"],
                      [f"AIP|1|U|{D03}|{AT}||{T}"])
    assert [d[0] for d in _doctors(appt)] == ["刘芳"], (_show(appt["participant"]), [_text(a) for a in acks])


def test_u_of_a_booked_doctor_under_another_set_id_keeps_his_set_id(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|2|U|D01|AT||<t>||||||Pending`` (set id 2 not stored, D01 stored under set id 1): the
    update of him is taken (tentative), his set id stays 1 (it moved to 2), said."""
    appt, (_, ack) = _run(engine, fhir, "VC", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|2|U|{D01}|{AT}||{T}||||||Pending"])
    assert _doctors(appt) == [("王明", ("AT",), "tentative", ("1",))], (_show(appt["participant"]), _text(ack))
    assert [e for e in err_fields(ack) if e[2] == "AIP^1^1" and "keeps it" in e[8]], _text(ack)


def test_a_of_a_declined_doctor_under_a_new_set_id_re_books_him(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: D01 declined (``AIP|1|D``), then ``AIP|3|A|D01|AT``: he is booked again (set id 3)."""
    appt, acks = _run(engine, fhir, "VD", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}"],
                      [f"AIP|1|D|{D01}|{AT}||{T}"], [f"AIP|3|A|{D01}|{AT}||{T}"])
    assert _status(appt, "王明") == ["accepted"] and _status(appt, "孙力") == ["accepted"], (
        _show(appt["participant"]), [_text(a) for a in acks])
    assert ("王明", ("AT",), "accepted", ("3",)) in _doctors(appt), (_show(appt["participant"]), [_text(a) for a in acks])


def test_a_of_a_doctor_stored_without_set_id_gives_him_the_set_id(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: set id 1 given twice in the S12 (stored without it); ``AIP|1|A|D01|AT`` finds D01 by
    who and he takes set id 1 (no other set id of his to keep)."""
    appt, acks = _run(engine, fhir, "VE", [f"AIP|1||{D01}|{AT}||{T}||||||Pending", f"AIP|1||{D05}|{AN}||{T}"],
                      [f"AIP|1|A|{D01}|{AT}||{T}"])
    assert ("王明", ("AT",), "tentative", ("1",)) in _doctors(appt), (_show(appt["participant"]), [_text(a) for a in acks])


# --- 2c: coded and uncoded segments in one message -------------------------------------------------

def test_an_uncoded_ail_beside_a_coded_aip_keeps_the_doctors_it_does_not_name(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S14 ``AIP|1|D|D01`` beside an uncoded ``AIL|1||<room 202>``: the AIL states the rooms whole
    (202 for 201), the AIP its change (D01 declined) -- D05 (set id 2), named by neither, stays.
    The message was read as the whole list: D05 was dropped."""
    appt, (_, ack) = _run(engine, fhir, "VM", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}", f"AIL|1||{ROOM1}|||{T}"],
                          [f"AIP|1|D|{D01}|{AT}||{T}", f"AIL|1||{ROOM2}|||{T}"])
    assert (_status(appt, "王明"), _status(appt, "孙力")) == (["declined"], ["accepted"]), (
        _show(appt["participant"]), _text(ack))
    assert [s for _, s in _rooms(appt)] == ["accepted"] and "202" in str(_actors(appt, "Location")), _show(appt["participant"])


def test_an_uncoded_aip_beside_a_coded_ail_keeps_the_rooms_it_does_not_name(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S14 ``AIL|2|A|<room 202>`` beside an uncoded ``AIP|1||D03|AT``: D03 replaces the doctors
    (AIP stated whole), room 202 is added beside 201."""
    appt, (_, ack) = _run(engine, fhir, "VN", [f"AIP|1||{D01}|{AT}||{T}", f"AIL|1||{ROOM1}|||{T}"],
                          [f"AIL|2|A|{ROOM2}|||{T}", f"AIP|1||{D03}|{AT}||{T}"])
    assert [d[0] for d in _doctors(appt)] == ["刘芳"], (_show(appt["participant"]), _text(ack))
    assert len(_rooms(appt)) == 2, _show(appt["participant"])


def test_an_uncoded_aig_beside_a_coded_aip_keeps_the_doctors_and_rooms(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """An uncoded AIG (equipment) beside ``AIP|1|U|D03``: the equipment stated whole, D03 for D01,
    the room kept."""
    appt, (_, ack) = _run(engine, fhir, "VG", [f"AIP|1||{D01}|{AT}||{T}", f"AIL|1||{ROOM1}|||{T}", f"AIG|1||EQ1^B超机^L|||||{T}"],
                          [f"AIP|1|U|{D03}|{AT}||{T}", f"AIG|1||EQ2^CT机^L|||||{T}"])
    assert [d[0] for d in _doctors(appt)] == ["刘芳"], (_show(appt["participant"]), _text(ack))
    assert len(_rooms(appt)) == 1, _show(appt["participant"])
    kit = [p["actor"]["display"] for p in appt["participant"] if "actor" in p and "reference" not in p["actor"]]
    assert kit == ["CT机"], _show(appt["participant"])


def test_a_refused_change_beside_an_uncoded_kind_keeps_the_whole_stored_list(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|A|D03`` (set id 1 holds D01: refused) beside an uncoded AIL: none of the
    message's participant changes is taken (the room 201 stays), said at AIP-1."""
    appt, (_, ack) = _run(engine, fhir, "VR", [f"AIP|1||{D01}|{AT}||{T}", f"AIL|1||{ROOM1}|||{T}"],
                          [f"AIP|1|A|{D03}|{AT}||{T}", f"AIL|1||{ROOM2}|||{T}"])
    assert [d[0] for d in _doctors(appt)] == ["王明"] and "201" in str(_actors(appt, "Location")), (
        _show(appt["participant"]), _text(ack))
    assert "AIP^1^1" in _text(ack), _text(ack)


# --- 2a: an S13 moving the start alone -------------------------------------------------------------

def test_a_rescheduled_start_alone_moves_the_end_by_the_stored_length(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 08:30 for 30 min; S13 ``SCH-11 ^^^20261206100000`` with SCH-9/10 and the end empty (v2:
    an empty field does not overwrite the stored value -- the length stands): 10:00-10:30 the next
    day. The old times were kept."""
    aip = f"AIP|1||{D01}|{AT}||{T}"
    a = siu("VS1", "S12", sch("VS"), PID, "RGS|1|A", aip)
    b = siu("VS2", "S13", sch("VS", duration="|", timing="^^^20261206100000"), PID, "RGS|1|A", aip)
    acks = send(engine, a, b)
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], [_text(x) for x in acks]
    appt = valid(appointment(engine, fhir, "VS2"))
    assert (appt["start"], appt["end"]) == ("2026-12-06T10:00:00+08:00", "2026-12-06T10:30:00+08:00"), (appt, _text(acks[1]))
    assert appt.get("minutesDuration") == 30, appt
    assert [e for e in err_fields(acks[1]) if e[2] == "SCH^1^11" and "stored length (30 min)" in e[8]], _text(acks[1])


def test_a_rescheduled_start_alone_keeps_a_length_stated_by_start_and_end(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 ``^^^<08:30>^<09:15>`` (no SCH-9); S13 with the start alone at 14:00: 14:00-14:45."""
    a = siu("VT1", "S12", sch("VT", duration="|", timing="^^^20261205083000^20261205091500"), PID)
    b = siu("VT2", "S13", sch("VT", duration="|", timing="^^^20261205140000"), PID)
    acks = send(engine, a, b)
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], [_text(x) for x in acks]
    appt = valid(appointment(engine, fhir, "VT2"))
    assert (appt["start"], appt["end"]) == ("2026-12-05T14:00:00+08:00", "2026-12-05T14:45:00+08:00"), (appt, _text(acks[1]))


def test_a_rescheduled_start_alone_of_nothing_stored_is_said(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: an S13 of an appointment never stored, start alone: no length to keep -- said at
    SCH-11, no times stored (as before)."""
    (ack,) = send(engine, siu("VW1", "S13", sch("VW", duration="|", timing="^^^20261205140000"), PID))
    assert ack_code_of(ack) == "AA", _text(ack)
    assert [e for e in err_fields(ack) if e[2] == "SCH^1^11" and "20261205140000" in e[8]], _text(ack)
    appt = valid(appointment(engine, fhir, "VW1"))
    assert "start" not in appt and "end" not in appt, appt


def test_a_modification_s14_moving_the_start_alone_keeps_the_times(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: an S14 (modified, not rescheduled) with a start alone: the stored times stand, said."""
    a = siu("VX1", "S12", sch("VX"), PID)
    b = siu("VX2", "S14", sch("VX", duration="|", timing="^^^20261206100000"), PID)
    acks = send(engine, a, b)
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], [_text(x) for x in acks]
    assert [e for e in err_fields(acks[1]) if e[2] == "SCH^1^11"], _text(acks[1])
    appt = valid(appointment(engine, fhir, "VX2"))
    assert (appt["start"], appt["end"]) == ("2026-12-05T08:30:00+08:00", "2026-12-05T09:00:00+08:00"), appt
