"""rvsched23: probes of sched23's change matcher, per-kind replace and S13 start-alone. Real HL7
bytes over MLLP (``send``), the real store, read back through /fhir."""

from __future__ import annotations

import pytest
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
from tests.test_sched22_changes import AN, AT, D01, D03
from tests.test_sched22_rv2_probes import T, _status
from tests.test_sched22_rv_probes import D05, _actors, _run, _show, _text
from tests.test_sched23_changes import ROOM1, ROOM2, _doctors, _rooms

EQ1 = "EQ1^B超机^L"
EQ2 = "EQ2^CT机^L"


def _kit(appt: dict) -> list[str]:
    return sorted(p["actor"]["display"] for p in appt["participant"] if "actor" in p and "reference" not in p["actor"])


def _times(engine: Engine, fhir: TestClient, first: bytes, second: bytes, control: str) -> tuple[dict, list[bytes]]:  # noqa: F811
    acks = send(engine, first, second)
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], [_text(x) for x in acks]
    return valid(appointment(engine, fhir, control)), acks


# --- S13 start alone beside a duration the message does state -----------------------------------

def test_rvrvsched23_s13_start_alone_with_an_ais_duration_is_not_given_the_stored_length(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 08:30 for 30 min; S13 moves SCH-11 to 10:00 (SCH-9/10 empty) and its AIS states the
    service's own duration, 60 min (AIS-7/8). The message states a length: the stored 30 min must
    not be applied as though none was sent (10:00-10:30 contradicts the AIS)."""
    a = siu("QA1", "S12", sch("QA"), PID, "RGS|1|A", "AIS|1||US1^腹部B超^L|20261205083000|0|MIN|30|MIN")
    b = siu("QA2", "S13", sch("QA", duration="|", timing="^^^20261206100000"), PID, "RGS|1|A",
            "AIS|1||US1^腹部B超^L|20261206100000|0|MIN|60|MIN")
    appt, acks = _times(engine, fhir, a, b, "QA2")
    assert (appt.get("start"), appt.get("end")) != ("2026-12-06T10:00:00+08:00", "2026-12-06T10:30:00+08:00"), (
        appt, _text(acks[1]))


def test_rvrvsched23_s13_start_alone_with_an_aip_duration_is_not_given_the_stored_length(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Likewise the doctor's own duration (AIP-9/10, 45 min) beside a start alone in SCH-11."""
    a = siu("QB1", "S12", sch("QB"), PID, "RGS|1|A", f"AIP|1||{D01}|{AT}||{T}|0|MIN|30|MIN")
    b = siu("QB2", "S13", sch("QB", duration="|", timing="^^^20261206100000"), PID, "RGS|1|A",
            f"AIP|1||{D01}|{AT}||20261206100000|0|MIN|45|MIN")
    appt, acks = _times(engine, fhir, a, b, "QB2")
    assert (appt.get("start"), appt.get("end")) != ("2026-12-06T10:00:00+08:00", "2026-12-06T10:30:00+08:00"), (
        appt, _text(acks[1]))


def test_rvrvsched23_s13_start_alone_in_another_zone_keeps_the_length(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: S13 start alone at 02:00Z (10:00 +08:00): the same instant, 30 min on."""
    a = siu("QC1", "S12", sch("QC"), PID)
    b = siu("QC2", "S13", sch("QC", duration="|", timing="^^^20261206020000+0000"), PID)
    appt, acks = _times(engine, fhir, a, b, "QC2")
    from datetime import datetime
    start, end = datetime.fromisoformat(appt["start"]), datetime.fromisoformat(appt["end"])
    assert start == datetime.fromisoformat("2026-12-06T10:00:00+08:00") and (end - start).total_seconds() == 1800, appt


def test_rvrvsched23_s13_start_alone_by_tq1_keeps_the_length(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: S13 with SCH-11 empty and TQ1-7 10:00 alone: 10:00-10:30."""
    a = siu("QD1", "S12", sch("QD"), PID)
    b = siu("QD2", "S13", sch("QD", duration="|", timing=""), "TQ1|1||||||20261206100000", PID)
    appt, acks = _times(engine, fhir, a, b, "QD2")
    assert (appt.get("start"), appt.get("end")) == ("2026-12-06T10:00:00+08:00", "2026-12-06T10:30:00+08:00"), (
        appt, _text(acks[1]))


def test_rvrvsched23_s13_start_alone_of_a_cancelled_appointment(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: an S13 start alone stating Cancelled (SCH-25): no 500, AA, status cancelled."""
    a = siu("QE1", "S12", sch("QE"), PID)
    b = siu("QE2", "S13", sch("QE", status="Cancelled", duration="|", timing="^^^20261206100000"), PID)
    appt, acks = _times(engine, fhir, a, b, "QE2")
    assert appt["status"] == "cancelled", appt


# --- per-kind replace -----------------------------------------------------------------------------

def test_rvrvsched23_a_d_inside_a_kind_stated_whole_still_declines(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|D|D01`` and ``AIP|2||D05`` (AIP not all coded: stated whole) beside ``AIL|2|A|<202>``:
    the sender said D01 is off the booking; he must not come back booked (accepted)."""
    appt, (_, ack) = _run(engine, fhir, "QF", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}", f"AIL|1||{ROOM1}|||{T}"],
                          [f"AIP|1|D|{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}", f"AIL|2|A|{ROOM2}|||{T}"])
    assert _status(appt, "王明") in ([], ["declined"]), (_show(appt["participant"]), _text(ack))
    assert len(_rooms(appt)) == 2, _show(appt["participant"])


def test_rvrvsched23_two_uncoded_kinds_beside_a_coded_one(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Uncoded AIL (202) and uncoded AIG (EQ2) beside ``AIP|2|D|D05``: rooms 202, kit EQ2, D01
    accepted, D05 declined."""
    appt, (_, ack) = _run(engine, fhir, "QG", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}", f"AIL|1||{ROOM1}|||{T}",
                                               f"AIG|1||{EQ1}|||||{T}"],
                          [f"AIP|2|D|{D05}|{AN}||{T}", f"AIL|1||{ROOM2}|||{T}", f"AIG|1||{EQ2}|||||{T}"])
    assert (_status(appt, "王明"), _status(appt, "孙力")) == (["accepted"], ["declined"]), (_show(appt["participant"]), _text(ack))
    assert "202" in str(_actors(appt, "Location")) and len(_rooms(appt)) == 1, _show(appt["participant"])
    assert _kit(appt) == ["CT机"], _show(appt["participant"])


def test_rvrvsched23_two_uncoded_kinds_without_set_ids(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """As above with AIL-1 and AIG-1 empty (kinds told by what they name)."""
    appt, (_, ack) = _run(engine, fhir, "QH", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}", f"AIL|1||{ROOM1}|||{T}",
                                               f"AIG|1||{EQ1}|||||{T}"],
                          [f"AIP|2|D|{D05}|{AN}||{T}", f"AIL|||{ROOM2}|||{T}", f"AIG|||{EQ2}|||||{T}"])
    assert (_status(appt, "王明"), _status(appt, "孙力")) == (["accepted"], ["declined"]), (_show(appt["participant"]), _text(ack))
    assert len(_rooms(appt)) == 1 and "202" in str(_actors(appt, "Location")), _show(appt["participant"])
    assert _kit(appt) == ["CT机"], _show(appt["participant"])


def test_rvrvsched23_uncoded_aip_twice_one_set_id_beside_coded_ail(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Uncoded ``AIP|1||D03`` and ``AIP|1||D05`` (set id given twice) beside ``AIL|2|A|<202>``:
    the doctors are D03 and D05 (D01 replaced), rooms 201 and 202."""
    appt, (_, ack) = _run(engine, fhir, "QI", [f"AIP|1||{D01}|{AT}||{T}", f"AIL|1||{ROOM1}|||{T}"],
                          [f"AIP|1||{D03}|{AT}||{T}", f"AIP|1||{D05}|{AN}||{T}", f"AIL|2|A|{ROOM2}|||{T}"])
    assert sorted(d[0] for d in _doctors(appt)) == sorted(["刘芳", "孙力"]), (_show(appt["participant"]), _text(ack))
    assert len(_rooms(appt)) == 2, _show(appt["participant"])


def test_rvrvsched23_uncoded_ail_beside_coded_aig(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIG|2|A|EQ2`` beside uncoded AIL 202: kit EQ1+EQ2, room 202 only, D01 kept."""
    appt, (_, ack) = _run(engine, fhir, "QJ", [f"AIP|1||{D01}|{AT}||{T}", f"AIL|1||{ROOM1}|||{T}", f"AIG|1||{EQ1}|||||{T}"],
                          [f"AIG|2|A|{EQ2}|||||{T}", f"AIL|1||{ROOM2}|||{T}"])
    assert [d[0] for d in _doctors(appt)] == ["王明"], (_show(appt["participant"]), _text(ack))
    assert len(_rooms(appt)) == 1 and "202" in str(_actors(appt, "Location")), _show(appt["participant"])
    assert _kit(appt) == ["B超机", "CT机"], _show(appt["participant"])


def test_rvrvsched23_uncoded_kind_stating_nobody_erases_nothing(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Uncoded ``AIL|1|`` naming no room beside ``AIP|1|U|D03``: the stored room stays."""
    appt, (_, ack) = _run(engine, fhir, "QK", [f"AIP|1||{D01}|{AT}||{T}", f"AIL|1||{ROOM1}|||{T}"],
                          [f"AIP|1|U|{D03}|{AT}||{T}", f"AIL|1||||{T}"])
    assert [d[0] for d in _doctors(appt)] == ["刘芳"], (_show(appt["participant"]), _text(ack))
    assert len(_rooms(appt)) == 1, _show(appt["participant"])


# --- the matcher: A under a new set id of a booked doctor -----------------------------------------

def test_rvrvsched23_a_renumbering_in_one_message(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|U|D03`` then ``AIP|3|A|D01`` (the sender moves D01 to set id 3, D03 into 1): D03
    under 1, D01 under 3, each listed once."""
    appt, (_, ack) = _run(engine, fhir, "QL", [f"AIP|1||{D01}|{AT}||{T}"],
                          [f"AIP|1|U|{D03}|{AT}||{T}", f"AIP|3|A|{D01}|{AT}||{T}"])
    assert sorted((d[0], d[3]) for d in _doctors(appt)) == sorted([("刘芳", ("1",)), ("王明", ("3",))]), (
        _show(appt["participant"]), _text(ack))


def test_rvrvsched23_a_of_a_booked_doctor_then_d_under_the_new_set_id(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """D01 under 1, ``AIP|3|A|D01`` (keeps 1), then ``AIP|3|D|D01``: nothing under 3, D01 found by
    who -- declined, not left booked."""
    appt, acks = _run(engine, fhir, "QM", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}"],
                      [f"AIP|3|A|{D01}|{AT}||{T}"], [f"AIP|3|D|{D01}|{AT}||{T}"])
    assert _status(appt, "王明") == ["declined"] and _status(appt, "孙力") == ["accepted"], (
        _show(appt["participant"]), [_text(a) for a in acks])


def test_rvrvsched23_a_of_two_people_one_booked(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """D01 under 1; ``AIP|3|A|D01~D05|AT``: D01 keeps 1 (said), D05 added under 3, no one twice."""
    appt, (_, ack) = _run(engine, fhir, "QN", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|3|A|{D01}~{D05}|{AT}||{T}"])
    assert _doctors(appt) == [("孙力", ("AT",), "accepted", ("3",)), ("王明", ("AT",), "accepted", ("1",))], (
        _show(appt["participant"]), _text(ack))
    assert [e for e in err_fields(ack) if e[2] == "AIP^1^1" and "keeps it" in e[8]], _text(ack)


@pytest.mark.parametrize("stem,tq1", [
    ("QO", "TQ1|1|||||60^min|20261206100000"),  # TQ1-6 service duration
    ("QU", "TQ1|1||||||20261206100000||||||60^min"),  # TQ1-13 occurrence duration
])
def test_rvrvsched23_s13_start_alone_with_a_tq1_duration(engine: Engine, fhir: TestClient, stem: str, tq1: str) -> None:  # noqa: F811
    """S13 with SCH-11 empty, TQ1-7 10:00 and a TQ1 duration of 60 min (TQ1-6 service duration,
    TQ1-13 occurrence duration): the message states a length; the stored 30 min must not be applied
    as though none was sent ("comes with no end and no duration")."""
    a = siu(f"{stem}1", "S12", sch(stem), PID)
    b = siu(f"{stem}2", "S13", sch(stem, duration="|", timing=""), tq1, PID)
    appt, acks = _times(engine, fhir, a, b, f"{stem}2")
    assert (appt.get("start"), appt.get("end")) != ("2026-12-06T10:00:00+08:00", "2026-12-06T10:30:00+08:00"), (
        appt, _text(acks[1]))


# --- a coded segment with a null set id beside an uncoded kind ------------------------------------

def test_rvrvsched23_a_d_with_a_null_set_id_beside_an_uncoded_ail_does_not_book_him_twice(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|""|D|D01`` (set id null) beside an uncoded ``AIL|1||<202>``: the D cannot be matched
    by set id; whatever is done, D01 must not be listed twice nor left booked by a delete."""
    appt, (_, ack) = _run(engine, fhir, "QP", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}", f"AIL|1||{ROOM1}|||{T}"],
                          [f'AIP|""|D|{D01}|{AT}||{T}', f"AIL|1||{ROOM2}|||{T}"])
    assert len(_status(appt, "王明")) == 1 and _status(appt, "孙力") == ["accepted"], (_show(appt["participant"]), _text(ack))
    assert _status(appt, "王明") != ["accepted"] or "AIP^1^1" in _text(ack), (_show(appt["participant"]), _text(ack))


def test_rvrvsched23_an_x_with_a_null_set_id_beside_an_uncoded_ail_adds_no_one(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|""|X|D03`` (never booked; X adds nothing) beside an uncoded ``AIL|1||<202>``: D03
    must not be booked."""
    appt, (_, ack) = _run(engine, fhir, "QQ", [f"AIP|1||{D01}|{AT}||{T}", f"AIL|1||{ROOM1}|||{T}"],
                          [f'AIP|""|X|{D03}|{AT}||{T}', f"AIL|1||{ROOM2}|||{T}"])
    assert [d[0] for d in _doctors(appt)] == ["王明"], (_show(appt["participant"]), _text(ack))


def test_rvrvsched23_an_x_with_a_null_set_id_beside_two_uncoded_kinds_adds_no_one(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """As above beside an uncoded AIL and an uncoded AIG (kinds told by what they name)."""
    appt, (_, ack) = _run(engine, fhir, "QR", [f"AIP|1||{D01}|{AT}||{T}", f"AIL|1||{ROOM1}|||{T}", f"AIG|1||{EQ1}|||||{T}"],
                          [f'AIP|""|X|{D03}|{AT}||{T}', f"AIL|1||{ROOM2}|||{T}", f"AIG|1||{EQ2}|||||{T}"])
    assert [d[0] for d in _doctors(appt)] == ["王明"], (_show(appt["participant"]), _text(ack))


def test_rvrvsched23_x_and_d_of_the_unbooked_beside_an_uncoded_ail_add_no_one(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|7|X|D03`` and ``AIP|8|D|D05`` (neither booked) beside an uncoded AIL 202: D03 and D05
    are not booked (their entries are not taken as the AIL kind's), D01 stays, room 202."""
    appt, (_, ack) = _run(engine, fhir, "QS", [f"AIP|1||{D01}|{AT}||{T}", f"AIL|1||{ROOM1}|||{T}"],
                          [f"AIP|7|X|{D03}|{AT}||{T}", f"AIP|8|D|{D05}|{AN}||{T}", f"AIL|1||{ROOM2}|||{T}"])
    assert [d[0] for d in _doctors(appt)] == ["王明"], (_show(appt["participant"]), _text(ack))
    assert len(_rooms(appt)) == 1 and "202" in str(_actors(appt, "Location")), _show(appt["participant"])


def test_rvrvsched23_a_set_id_twice_in_a_coded_kind_beside_an_uncoded_one_keeps_all(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|U|D03`` and ``AIP|1|U|D05`` (set id 1 twice) beside an uncoded AIL 202: refused --
    the whole stored list is kept (D01, room 201), said at AIP-1."""
    appt, (_, ack) = _run(engine, fhir, "QT", [f"AIP|1||{D01}|{AT}||{T}", f"AIL|1||{ROOM1}|||{T}"],
                          [f"AIP|1|U|{D03}|{AT}||{T}", f"AIP|1|U|{D05}|{AT}||{T}", f"AIL|1||{ROOM2}|||{T}"])
    assert [d[0] for d in _doctors(appt)] == ["王明"] and "201" in str(_actors(appt, "Location")), (
        _show(appt["participant"]), _text(ack))
    assert "AIP^" in _text(ack), _text(ack)
