"""rvsch: review probes of sched21 -- SCH-25 status, durations, and the change merge on MongoDB
(mongomock). Real HL7 bytes over MLLP, the real store, read back through /fhir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.shared_worlds44d import reader_engine as engine  # noqa: F401 -- fixtures: the module's engine and reader
from tests.shared_worlds44d import reader_fhir as fhir  # noqa: F401
from tests.test_conv20_fidelity import appointment
from tests.test_convert11_thinner import send
from tests.test_convmend20_probes import PID, siu, valid

SCH = "SCH|AP-{c}|BK-{c}||||||NORMAL|{dur}|^^^20261205083000||||||||||||||{status}"


def _ack_text(ack: bytes) -> str:
    return ack.decode("utf-8", "replace")


def test_s15_whose_sch25_says_booked_is_still_a_cancellation(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    a = siu("EB1", "S12", SCH.format(c="EB", dur="30|min", status="Booked"), PID)
    b = siu("EB2", "S15", SCH.format(c="EB", dur="30|min", status="Booked"), PID)
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    assert valid(appointment(engine, fhir, "EB2"))["status"] == "cancelled"


def test_an_unknown_sch25_on_s14_keeps_the_stored_status_and_is_said(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    a = siu("UK1", "S12", SCH.format(c="UK", dur="30|min", status="Booked"), PID)
    b = siu("UK2", "S15", SCH.format(c="UK", dur="30|min", status="Cancelled"), PID)
    c = siu("UK3", "S14", SCH.format(c="UK", dur="30|min", status="Cancled"), PID)
    acks = send(engine, a, b, c)
    assert [ack_code_of(x) for x in acks][:2] == ["AA", "AA"]
    assert "SCH^1^25" in _ack_text(acks[2]) or "SCH-25" in _ack_text(acks[2]), _ack_text(acks[2])
    assert valid(appointment(engine, fhir, "UK3"))["status"] == "cancelled"


@pytest.mark.parametrize("dur, minutes", [("1.1|h", 66), ("0.5|h", 30), ("90|s", None), ("+45|min", 45)])
def test_durations_are_exact(engine: Engine, fhir: TestClient, dur: str, minutes: int | None) -> None:  # noqa: F811
    c = "DX" + str(abs(hash(dur)) % 1000)
    (ack,) = send(engine, siu(c + "1", "S12", SCH.format(c=c, dur=dur, status="Booked"), PID))
    assert ack_code_of(ack) == "AA", _ack_text(ack)
    appt = valid(appointment(engine, fhir, c + "1"))
    assert appt.get("minutesDuration") == minutes, appt
    assert appt["start"].startswith("2026-12-05T08:30:00"), appt


@pytest.mark.parametrize("dur", ["-30|min", "NaN|min", "Infinity|min", "1e3|min", "99999999999999999999|min"])
def test_a_duration_that_is_no_length_is_said_and_no_500(engine: Engine, fhir: TestClient, dur: str) -> None:  # noqa: F811
    c = "DN" + str(abs(hash(dur)) % 1000)
    (ack,) = send(engine, siu(c + "1", "S12", SCH.format(c=c, dur=dur, status="Booked"), PID))
    assert ack_code_of(ack) in ("AA", "AE"), _ack_text(ack)
    assert "ERR|" in _ack_text(ack), _ack_text(ack)
    appt = valid(appointment(engine, fhir, c + "1"))
    assert "minutesDuration" not in appt and "end" not in appt, appt


def test_a_later_bad_duration_does_not_erase_the_stored_times(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    a = siu("LB1", "S12", SCH.format(c="LB", dur="30|min", status="Booked"), PID)
    b = siu("LB2", "S14", SCH.format(c="LB", dur="-30|min", status="Booked"), PID)
    send(engine, a)
    before = appointment(engine, fhir, "LB1")
    send(engine, b)
    after = valid(appointment(engine, fhir, "LB2"))
    assert (after.get("start"), after.get("end")) == (before["start"], before["end"]), json.dumps(after)


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_an_action_code_delete_keeps_the_room_on_each_backend(tmp_path: Path, backend: str) -> None:
    from fastapi.testclient import TestClient as TC

    from engine.api.app import create_app

    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)
    eng = Engine(settings if backend == "sqlite" else settings.with_(mongodb_uri="mongomock://"))
    try:
        a = siu("MB1", "S12", SCH.format(c="MB", dur="30|min", status="Booked"), PID, "RGS|1|A",
                "AIP|1||D01^王^明^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000",
                "AIL|1||US^201^1^FNXRMYY|||20261205083000")
        b = siu("MB2", "S14", SCH.format(c="MB", dur="30|min", status="Booked"), PID, "RGS|1|A",
                "AIP|1|D|D01^王^明^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000")
        assert [ack_code_of(x) for x in send(eng, a, b)] == ["AA", "AA"]
        with TC(create_app(eng)) as client:
            client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("reader", "system/*.rs")
            appt = valid(appointment(eng, client, "MB2"))
        kinds = sorted((p["actor"]["reference"].split("/")[0], p["status"]) for p in appt["participant"])
        assert kinds == [("Location", "accepted"), ("Patient", "accepted"), ("Practitioner", "declined")], kinds
    finally:
        eng.close()


def test_sched21_siu_tests_write_their_status_into_sch25() -> None:
    """tests/test_sched21_siu.py's SCH template puts ``{status}`` in SCH-26, not SCH-25: its
    ``Cancelled``/``Booked`` are never read (its S15 is cancelled by the event alone, its S14s carry
    an empty SCH-25), so none of its assertions can see a status mapping go wrong."""
    from tests.test_sched21_siu import SCH as SCHED21_SCH

    fields = SCHED21_SCH.format(c="X", status="Cancelled").split("|")
    assert fields[25] == "Cancelled", fields[24:]
