"""schedfix22: the review's findings on the SIU action codes mended, beyond the review's probes
(tests/test_sched22_rv_probes.py). Real HL7 bytes over MLLP (``send``), the real store, read
back through /fhir."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv20_fidelity import appointment
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convmend20_probes import PID, SCH_NO_DURATION, siu, valid
from tests.test_sched22_rv_probes import AN, AT, D01, SCH, _actors, _roles, _run, _show, _text


def test_schedfix22_a_thinner_u_keeps_the_status_the_s12_stated(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """AIP-12 ``Pending`` (tentative) stated by the S12; ``AIP|1|U|D01|||<time>`` leaves AIP-12 empty
    (no change): the doctor stays tentative and attending, not reset to accepted."""
    appt, (_, ack) = _run(engine, fhir, "FS", [f"AIP|1||{D01}|{AT}||20261205083000||||||Pending"],
                          [f"AIP|1|U|{D01}|||20261205090000"])
    (doc,) = _actors(appt, "Practitioner")
    assert (doc["status"], _roles(doc)) == ("tentative", ["AT"]), (_show(appt["participant"]), _text(ack))


def test_schedfix22_a_u_whose_role_is_the_null_deletes_the_role(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``""`` in AIP-4 of a U deletes the role (v2: only the null deletes); empty keeps it."""
    appt, (_, ack) = _run(engine, fhir, "FD", [f"AIP|1||{D01}|{AT}||20261205083000"],
                          [f'AIP|1|U|{D01}|""||20261205090000'])
    (doc,) = _actors(appt, "Practitioner")
    assert _roles(doc) == [], (_show(appt["participant"]), _text(ack))


def test_schedfix22_a_u_naming_no_one_keeps_the_doctor_and_re_roles_him(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|U||AN``: AIP-3 empty is no change of who set id 1 holds -- it was read as a role with
    no one named in the doctor's place."""
    appt, (_, ack) = _run(engine, fhir, "FR", [f"AIP|1||{D01}|{AT}||20261205083000"],
                          [f"AIP|1|U||{AN}||20261205090000"])
    (doc,) = _actors(appt, "Practitioner")
    assert (doc["actor"]["display"], _roles(doc), doc["status"]) == ("王明", ["AN"], "accepted"), (
        _show(appt["participant"]), _text(ack))
    assert all("actor" in p for p in appt["participant"]), _show(appt["participant"])


def test_schedfix22_two_service_set_ids_each_given_twice_no_later_u_replaces_both(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """AIS set ids 1 and 2 each given twice: none of the four keeps its set id, so ``AIS|1|U|MR1``
    finds nothing to update (said) and the four services stand."""
    first = ["AIS|1||US1^腹部B超^L|20261205083000", "AIS|1||US2^心脏B超^L|20261205083000",
             "AIS|2||CT1^胸部CT^L|20261205083000", "AIS|2||CT2^头部CT^L|20261205083000"]
    messages = [siu("FA1", "S12", SCH.format(c="FA"), PID, "RGS|1|A", *first),
                siu("FA2", "S14", SCH.format(c="FA"), PID, "RGS|1|A", "AIS|1|U|MR1^头部MR^L|20261205083000")]
    acks = send(engine, *messages)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    appt = valid(appointment(engine, fhir, "FA2"))
    codes = [c["code"] for s in appt["serviceType"] for c in s["coding"]]
    assert codes == ["US1", "US2", "CT1", "CT2"], (codes, [_text(a) for a in acks])
    assert "AIS^1^1" in _text(acks[1]), _text(acks[1])


def test_schedfix22_a_start_from_ais_without_an_end_is_said_at_ais_4(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """SCH-11 empty, no duration anywhere: the start is AIS-4's; the warning that it has no end was
    located at SCH-11, a field the sender left empty."""
    (ack,) = send(engine, siu("FT1", "S12", SCH_NO_DURATION, PID, "RGS|1|A", "AIS|1||US1^腹部B超^L|20261205083000"))
    assert ack_code_of(ack) == "AA", _text(ack)
    assert "AIS^1^4" in _text(ack) and "SCH^1^11" not in _text(ack), _text(ack)


def test_schedfix22_a_duration_past_ten_years_is_said_and_the_rest_stored(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """SCH-9 of 6000000 minutes (over eleven years): said at SCH-9, no duration or end taken, the
    booking stored (with the SCH-11 end it states)."""
    sch = "SCH|AP-FL|BK-FL||||||NORMAL|6000000|min|^^^20261205083000^20261205090000||||||||||||||Booked"
    (ack,) = send(engine, siu("FL1", "S12", sch, PID, "RGS|1|A", f"AIP|1||{D01}|{AT}||20261205083000"))
    assert "SCH^1^9" in _text(ack), _text(ack)
    appt = valid(appointment(engine, fhir, "FL1"))
    assert "minutesDuration" not in appt and appt["end"].startswith("2026-12-05T09:00"), _show(appt)


def test_schedfix22_an_x_leaving_the_role_empty_changes_nothing_and_is_not_refused(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|X|D01`` (AIP-4 empty: no change) beside ``AIP|2|A|D05|AN``: the X matches what set id 1
    holds, so the add is taken and nothing is said of the X."""
    appt, (_, ack) = _run(engine, fhir, "FX", [f"AIP|1||{D01}|{AT}||20261205083000"],
                          [f"AIP|1|X|{D01}|||20261205083000", f"AIP|2|A|D05^孙^力^^^^^^FNXRMYY|{AN}||20261205083000"])
    assert sorted(p["actor"]["display"] for p in _actors(appt, "Practitioner")) == ["孙力", "王明"], (
        _show(appt["participant"]), _text(ack))
    assert "AIP^1^1" not in _text(ack), _text(ack)
