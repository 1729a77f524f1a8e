"""sched21: an Appointment's status from SCH-25 and the event, and its times and duration (SCH-9/10,
SCH-11) -- what a later message leaves, what a sender's bad value becomes. Real HL7 bytes over MLLP,
the real SQLite store, read back through /fhir; each Appointment checked by the project's validator.

(The SCH of ``tests.test_conv20_fidelity.booking`` and of the lead's review writes its ``Booked`` in
SCH-26, not SCH-25: the SCH here counts its fields.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from tests.module_store import module_sqlite_eng  # noqa: F401 -- a fixture (engine's)
from tests.test_conv20_fidelity import appointment
from tests.test_convert11_thinner import send
from tests.test_convmend20_probes import PID, siu, valid
from tests.test_ingest_durability import err_fields


@pytest.fixture(scope="module")
def engine(module_sqlite_eng: Engine) -> Engine:  # noqa: F811
    """The ``engine`` fixture's engine once a module: each test below sends under control IDs, an appointment
    and a patient record number of its own (``pid``) and reads only what it wrote, so they share it (each had
    opened an engine; suite44d)."""
    return module_sqlite_eng


@pytest.fixture(scope="module")
def fhir(engine: Engine) -> Iterator[TestClient]:
    """``test_convert11_thinner.fhir`` (a reader's token, ``system/*.rs``) over the module's engine."""
    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")
        yield client


def pid(c: str) -> str:
    """``PID`` under a record number of the test's own (``ZY20S-<c>``)."""
    return PID.replace("|ZY20S^", f"|ZY20S-{c}^", 1)


AIP = "AIP|1||D01^王^明^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000"


def sch(c: str, status: str = "Booked", duration: str = "30|min", timing: str = "^^^20261205083000") -> str:
    fields = ["SCH", f"AP-{c}", f"BK-{c}", "", "", "", "", "", "NORMAL", *duration.split("|", 1), timing]
    fields += [""] * (25 - len(fields)) + [status]
    assert fields[25] == status and fields[11] == timing
    return "|".join(fields)


def _show(x: Any) -> str:
    return json.dumps(x, ensure_ascii=False)


def _warned(ack: bytes, where: str) -> list[str]:
    """The ERR-8 texts of the ACK's errors located at ``where`` (``SCH^1^25``)."""
    return [e[8] for e in err_fields(ack) if e[2] == where]


# --- status ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("event,filler,status", [
    ("S12", "Complete", "fulfilled"), ("S12", "Started", "arrived"), ("S12", "Pending", "pending"),
    ("S14", "Waitlist", "waitlist"), ("S13", "Cancelled", "cancelled"), ("S12", "", "booked"),
    ("S15", "Booked", "cancelled"), ("S16", "", "cancelled"), ("S17", "", "entered-in-error"), ("S26", "", "noshow"),
    ("S14", "Canceled", "cancelled"), ("S14", "CANCELED", "cancelled"),
])
def test_status_by_sch25_and_event(engine: Engine, fhir: TestClient, event: str, filler: str, status: str) -> None:
    """Table 0278 through ``appointment_status``, the event's own status winning (S15-S17, S26).
    ``Canceled`` (the US spelling many schedulers send) was read as no status: ``booked``."""
    c = f"ST{event}{filler[:4]}{filler[-1:]}"
    (ack,) = send(engine, siu(c, event, sch(c, filler), pid(c), "RGS|1|A", AIP))
    assert ack_code_of(ack) == "AA", ack
    assert valid(appointment(engine, fhir, c))["status"] == status


def test_an_unknown_filler_status_is_said_at_sch25(engine: Engine, fhir: TestClient) -> None:
    """SCH-25 ``XYZ`` was stored ``booked`` without a word to the sender."""
    (ack,) = send(engine, siu("SU1", "S12", sch("SU1", "XYZ"), pid("SU1"), "RGS|1|A", AIP))
    assert ack_code_of(ack) == "AA", ack
    assert [t for t in _warned(ack, "SCH^1^25") if "XYZ" in t], err_fields(ack)


@pytest.mark.parametrize("first", ["S15", "S26"])
def test_a_modification_stating_no_status_does_not_take_back_a_cancel_or_no_show(
        engine: Engine, fhir: TestClient, first: str) -> None:
    """S12, then S15 (or S26), then an S14 with SCH-25 empty (a note, a room changed): the stored
    ``cancelled``/``noshow`` became ``booked`` -- the converter's default, not the sender's word."""
    c = f"SM{first}"
    a = siu(c + "1", "S12", sch(c), pid(c), "RGS|1|A", AIP)
    b = siu(c + "2", first, sch(c, ""), pid(c))
    d = siu(c + "3", "S14", sch(c, ""), pid(c), "RGS|1|A", AIP)
    assert [ack_code_of(x) for x in send(engine, a, b, d)] == ["AA", "AA", "AA"]
    want = {"S15": "cancelled", "S26": "noshow"}[first]
    assert valid(appointment(engine, fhir, c + "3"))["status"] == want


@pytest.mark.parametrize("later,filler,status", [("S14", "XYZ", "cancelled"), ("S14", "Booked", "booked"),
                                                 ("S13", "", "booked"), ("S12", "", "booked")])
def test_what_a_later_message_states_of_a_cancelled_appointment(
        engine: Engine, fhir: TestClient, later: str, filler: str, status: str) -> None:
    """A status the sender states (SCH-25 Booked) or an event that books (S12 new, S13 rescheduled)
    is taken; an S14's unknown code is not a status."""
    c = f"SL{later}{filler}"
    a = siu(c + "1", "S15", sch(c, ""), pid(c), "RGS|1|A", AIP)
    b = siu(c + "2", later, sch(c, filler), pid(c), "RGS|1|A", AIP)
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    assert valid(appointment(engine, fhir, c + "2"))["status"] == status


# --- durations -------------------------------------------------------------------------------------

@pytest.mark.parametrize("duration", ["NaN|min", "inf|min", "-30|min", "30,5|min", "1e999|min", "99999999|wk"])
def test_a_duration_that_is_no_length_of_time_is_said_at_sch9(engine: Engine, fhir: TestClient, duration: str) -> None:
    """NaN/inf failed the conversion (AE 207, "cannot convert float NaN to integer"); ``-30`` ended
    the appointment half an hour before it began; ``30,5`` was left out without a word. Each is
    said at SCH-9 and no end is taken from it."""
    c = "SD" + str(sorted(["NaN|min", "inf|min", "-30|min", "30,5|min", "1e999|min", "99999999|wk"]).index(duration))
    (ack,) = send(engine, siu(c, "S12", sch(c, duration=duration), pid(c)))
    assert ack_code_of(ack) == "AA", err_fields(ack)
    assert _warned(ack, "SCH^1^9"), err_fields(ack)
    appt = valid(appointment(engine, fhir, c))
    assert "minutesDuration" not in appt, appt
    assert appt.get("end") is None or appt["end"] >= appt["start"], appt


@pytest.mark.parametrize("duration,minutes,end", [
    ("1.1|h", 66, "2026-12-05T09:36:00+08:00"), ("2.2|h", 132, "2026-12-05T10:42:00+08:00"),
    ("20|s", None, "2026-12-05T08:30:20+08:00"), ("90|s", None, "2026-12-05T08:31:30+08:00"),
    ("0.05|d", 72, "2026-12-05T09:42:00+08:00"), ("+30.0|MIN", 30, "2026-12-05T09:00:00+08:00"),
])
def test_a_decimal_duration_is_exact(engine: Engine, fhir: TestClient, duration: str, minutes: int | None, end: str) -> None:
    """``1.1|h`` is 66 minutes: as a float it was 66.00000000000001 and ``minutesDuration`` was left out."""
    c = "SX" + str(abs(hash(duration)) % 10**8)
    (ack,) = send(engine, siu(c, "S12", sch(c, duration=duration), pid(c)))
    assert ack_code_of(ack) == "AA", ack
    appt = valid(appointment(engine, fhir, c))
    assert (appt.get("minutesDuration"), appt["end"]) == (minutes, end), appt


# --- times -----------------------------------------------------------------------------------------

def test_an_end_before_the_start_is_said_and_not_stored(engine: Engine, fhir: TestClient) -> None:
    """SCH-11 ``^^^20261205083000^20261205080000``: stored ending 30 minutes before it began. The
    end is said at SCH-11 and not taken; the duration (SCH-9/10) gives it."""
    (ack,) = send(engine, siu("SE1", "S12", sch("SE1", timing="^^^20261205083000^20261205080000"), pid("SE1")))
    assert ack_code_of(ack) == "AA", ack
    assert _warned(ack, "SCH^1^11"), err_fields(ack)
    appt = valid(appointment(engine, fhir, "SE1"))
    assert (appt["start"], appt["end"]) == ("2026-12-05T08:30:00+08:00", "2026-12-05T09:00:00+08:00"), appt


@pytest.mark.parametrize("timing,start,end", [
    ("^^^20261205083000-0500", "2026-12-05T08:30:00-05:00", "2026-12-05T09:00:00-05:00"),
    ("^^^20261205083000+0000", "2026-12-05T08:30:00+00:00", "2026-12-05T09:00:00+00:00"),
    ("^^^202612050830", "2026-12-05T08:30:00+08:00", "2026-12-05T09:00:00+08:00"),
    ("^^^20261205083000+0800^20261205100000-0500", "2026-12-05T08:30:00+08:00", "2026-12-05T10:00:00-05:00"),
    ("^^^20261205083000.25", "2026-12-05T08:30:00.250000+08:00", "2026-12-05T09:00:00.250000+08:00"),
])
def test_times_with_and_without_zones(engine: Engine, fhir: TestClient, timing: str, start: str, end: str) -> None:
    """Guards: a zone sent is kept; none is the institution's (+08:00); an end in another zone is
    the instant the sender named."""
    c = "SZ" + str(abs(hash(timing)) % 10**8)
    (ack,) = send(engine, siu(c, "S12", sch(c, timing=timing), pid(c)))
    assert ack_code_of(ack) == "AA", ack
    appt = valid(appointment(engine, fhir, c))
    assert (appt["start"], appt["end"]) == (start, end), appt


def test_a_rescheduled_start_with_nothing_to_end_it_is_said_at_sch11(engine: Engine, fhir: TestClient) -> None:
    """S13 moves the appointment to 10:00 with no SCH-9/10 and no end: R4 stores start and end
    together, so the new start cannot be stored -- the ACK said only "SCH: no value for
    Appointment.start" (no field, and a start was sent). It now names SCH-11 and the start; the
    stored times stood (left: the converter does not see the stored duration). sched23: the stored
    length stands (v2: an empty SCH-9 does not overwrite it) and the end moves with the start."""
    a = siu("SR1", "S12", sch("SR"), pid("SR"), "RGS|1|A", AIP)
    b = siu("SR2", "S13", sch("SR", duration="|", timing="^^^20261205100000"), pid("SR"), "RGS|1|A", AIP)
    acks = send(engine, a, b)
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], acks
    assert [t for t in _warned(acks[1], "SCH^1^11") if "20261205100000" in t], err_fields(acks[1])
    appt = valid(appointment(engine, fhir, "SR2"))
    assert (appt["start"], appt["end"]) == ("2026-12-05T10:00:00+08:00", "2026-12-05T10:30:00+08:00"), appt


@pytest.mark.parametrize("segment,where", [
    ("AIP|1||D01^王^明^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000||||||XYZ", "AIP^1^12"),
    ("AIL|1||US^201^1^FNXRMYY|||20261205083000||||||XYZ", "AIL^1^12"),
    ("AIG|1||EQ1^B超机^L|||||20261205083000||||||XYZ", "AIG^1^14"),
])
def test_an_unknown_resource_status_is_said_at_its_field(engine: Engine, fhir: TestClient, segment: str, where: str) -> None:
    """AIP-12/AIL-12/AIG-14 ``XYZ`` left the participant ``accepted`` without a word to the sender."""
    c = "SP" + where[:3]
    (ack,) = send(engine, siu(c, "S12", sch(c), pid(c), "RGS|1|A", segment))
    assert ack_code_of(ack) == "AA", ack
    assert [t for t in _warned(ack, where) if "XYZ" in t], err_fields(ack)
    valid(appointment(engine, fhir, c))
