"""rvsch: review probes of sched21 (SIU action codes A/U/D as entry-by-entry changes, thin SIU,
SCH-25 status). Real HL7 bytes over MLLP, the real store, read back through /fhir."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.shared_worlds44d import reader_engine as engine  # noqa: F401 -- fixtures: the module's engine and reader
from tests.shared_worlds44d import reader_fhir as fhir  # noqa: F401
from tests.test_conv20_fidelity import appointment
from tests.test_convert11_thinner import send
from tests.test_convmend20_probes import PID, siu, valid

SCH = "SCH|AP-{c}|BK-{c}||||||NORMAL|30|min|^^^20261205083000||||||||||||||{status}"
AT = "AT^主治医师^HL70443"
AN = "AN^麻醉医师^HL70443"


def _show(x: Any) -> str:
    return json.dumps(x, ensure_ascii=False)


def _actors(appt: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [p for p in appt["participant"] if p.get("actor", {}).get("reference", "").startswith(rtype + "/")]


def _roles(p: dict[str, Any]) -> list[str]:
    return [c["code"] for t in p.get("type", []) for c in t.get("coding", [])]


def _two(stem: str, first: list[str], later: list[str], event: str = "S14", status: str = "Booked") -> dict[str, Any]:
    a = siu(f"{stem}1", "S12", SCH.format(c=stem, status="Booked"), PID, "RGS|1|A", *first)
    b = siu(f"{stem}2", event, SCH.format(c=stem, status=status), PID, *(["RGS|1|A", *later] if later else []))
    assert [ack_code_of(x) for x in send(engine_of[0], a, b)] == ["AA", "AA"]
    return valid(appointment(engine_of[0], fhir_of[0], f"{stem}2"))


engine_of: list[Engine] = []
fhir_of: list[TestClient] = []


def _use(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    engine_of[:] = [engine]
    fhir_of[:] = [fhir]


# --- same doctor in two roles ------------------------------------------------------------------

def test_deleting_one_role_of_a_doctor_booked_in_two_keeps_the_other(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 books D01 as attending (AIP 1) and as anaesthetist (AIP 2); an S14 of ``AIP|1|D|D01|AT``
    alone takes his attending part off. His anaesthetist part is not named by the message and
    should stay accepted."""
    _use(engine, fhir)
    appt = _two("R2", [f"AIP|1||D01^王^明^^^^^^FNXRMYY|{AT}||20261205083000",
                       f"AIP|2||D01^王^明^^^^^^FNXRMYY|{AN}||20261205083000"],
                [f"AIP|1|D|D01^王^明^^^^^^FNXRMYY|{AT}||20261205083000"])
    parts = {(tuple(_roles(p)), p["status"]) for p in _actors(appt, "Practitioner")}
    assert (("AN",), "accepted") in parts, _show(appt["participant"])


def test_updating_one_role_of_a_doctor_booked_in_two_keeps_the_other(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    _use(engine, fhir)
    appt = _two("R3", [f"AIP|1||D01^王^明^^^^^^FNXRMYY|{AT}||20261205083000",
                       f"AIP|2||D01^王^明^^^^^^FNXRMYY|{AN}||20261205083000"],
                [f"AIP|2|U|D01^王^明^^^^^^FNXRMYY|{AN}||20261205083000||||||Pending"])
    roles = sorted(r for p in _actors(appt, "Practitioner") for r in _roles(p))
    assert roles == ["AN", "AT"], _show(appt["participant"])


# --- two doctors of the same name -------------------------------------------------------------

def test_deleting_one_of_two_same_named_doctors_keeps_the_other(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    _use(engine, fhir)
    appt = _two("SN", [f"AIP|1||D01^王^明^^^^^^FNXRMYY|{AT}||20261205083000",
                       f"AIP|2||D09^王^明^^^^^^FNXRMYY|{AN}||20261205083000"],
                [f"AIP|1|D|D01^王^明^^^^^^FNXRMYY|{AT}||20261205083000"])
    st = sorted(p["status"] for p in _actors(appt, "Practitioner"))
    assert st == ["accepted", "declined"], _show(appt["participant"])


# --- an A of someone already listed -------------------------------------------------------------

def test_adding_a_doctor_already_booked_lists_him_once(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    _use(engine, fhir)
    appt = _two("AA", [f"AIP|1||D01^王^明^^^^^^FNXRMYY|{AT}||20261205083000"],
                [f"AIP|2|A|D01^王^明^^^^^^FNXRMYY|{AT}||20261205083000"])
    assert len(_actors(appt, "Practitioner")) == 1, _show(appt["participant"])


# --- swap by U of the same set id ---------------------------------------------------------------

def test_u_of_set_id_1_naming_another_doctor_does_not_leave_two_attendings(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """AIP-1 is the segment's set id; ``AIP|1|U|D03`` updates resource 1 to D03. Both D01 and D03
    accepted as the one attending is two doctors where the sender meant one."""
    _use(engine, fhir)
    appt = _two("SW", [f"AIP|1||D01^王^明^^^^^^FNXRMYY|{AT}||20261205083000"],
                [f"AIP|1|U|D03^刘^芳^^^^^^FNXRMYY|{AT}||20261205083000"])
    accepted = [p for p in _actors(appt, "Practitioner") if p["status"] == "accepted"]
    assert len(accepted) == 1, _show(appt["participant"])


def test_u_of_set_id_1_naming_another_room_does_not_leave_two_rooms(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    _use(engine, fhir)
    appt = _two("SR", ["AIL|1||US^201^1^FNXRMYY|||20261205083000"],
                ["AIL|1|U|US^202^1^FNXRMYY|||20261205083000"])
    accepted = [p for p in _actors(appt, "Location") if p["status"] == "accepted"]
    assert len(accepted) == 1, _show(appt["participant"])


# --- unnamed roles -------------------------------------------------------------------------------

def test_naming_one_of_two_unnamed_anaesthetists_keeps_the_other_slot(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Two anaesthetists needed (two role-only AIPs); an S14 names one by ``AIP|2|U|D02|AN``: the
    second slot is still needed."""
    _use(engine, fhir)
    appt = _two("UR", [f"AIP|2|||{AN}||20261205083000", f"AIP|3|||{AN}||20261205083000"],
                [f"AIP|2|U|D02^赵^敏^^^^^^FNXRMYY|{AN}||20261205083000"])
    unnamed = [p for p in appt["participant"] if "actor" not in p]
    assert len(unnamed) == 1 and len(_actors(appt, "Practitioner")) == 1, _show(appt["participant"])


def test_declining_a_doctor_never_booked_does_not_fill_the_needed_role(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """An unnamed anaesthetist role is booked; an S14 ``AIP|1|D|D05|AN`` (a doctor not on the
    booking) must not consume the still-needed role slot."""
    _use(engine, fhir)
    appt = _two("DR", [f"AIP|2|||{AN}||20261205083000"],
                [f"AIP|1|D|D05^孙^力^^^^^^FNXRMYY|{AN}||20261205083000"])
    unnamed = [p for p in appt["participant"] if "actor" not in p]
    assert len(unnamed) == 1, _show(appt["participant"])


# --- thin cancel -------------------------------------------------------------------------------

def test_thin_s15_cancels_and_keeps_who_was_booked(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A thin S15 with SCH-25 empty: cancelled by the event, doctor and room kept."""
    _use(engine, fhir)
    appt = _two("TC", [f"AIP|1||D01^王^明^^^^^^FNXRMYY|{AT}||20261205083000",
                       "AIL|1||US^201^1^FNXRMYY|||20261205083000"], [], event="S15", status="")
    assert appt["status"] == "cancelled", appt
    assert len(_actors(appt, "Practitioner")) == 1 and len(_actors(appt, "Location")) == 1, _show(appt)
    assert len(_actors(appt, "Patient")) == 1, _show(appt)


def test_s14_empty_sch25_keeps_a_stored_cancel(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    _use(engine, fhir)
    a = siu("CK1", "S12", SCH.format(c="CK", status="Booked"), PID)
    b = siu("CK2", "S15", SCH.format(c="CK", status="Canceled"), PID)
    c = siu("CK3", "S14", SCH.format(c="CK", status=""), PID)
    assert [ack_code_of(x) for x in send(engine, a, b, c)] == ["AA", "AA", "AA"]
    assert valid(appointment(engine, fhir, "CK3"))["status"] == "cancelled"


# --- order: the patient first -----------------------------------------------------------------

def test_the_patient_stays_first_after_an_update(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    _use(engine, fhir)
    appt = _two("PO", [f"AIP|1||D01^王^明^^^^^^FNXRMYY|{AT}||20261205083000"],
                [f"AIP|1||D03^刘^芳^^^^^^FNXRMYY|{AT}||20261205083000"])
    assert appt["participant"][0]["actor"]["reference"].startswith("Patient/"), _show(appt["participant"])


def test_the_patient_stays_first_after_a_change_message(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    _use(engine, fhir)
    appt = _two("PC", [f"AIP|1||D01^王^明^^^^^^FNXRMYY|{AT}||20261205083000"],
                [f"AIP|2|A|D03^刘^芳^^^^^^FNXRMYY|{AT}||20261205083000"])
    assert appt["participant"][0]["actor"]["reference"].startswith("Patient/"), _show(appt["participant"])


# --- guards: the first message itself lists what the probes above start from -------------------

def test_guard_a_doctor_in_two_roles_is_booked_twice(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    a = siu("G21", "S12", SCH.format(c="G2", status="Booked"), PID, "RGS|1|A",
            f"AIP|1||D01^王^明^^^^^^FNXRMYY|{AT}||20261205083000", f"AIP|2||D01^王^明^^^^^^FNXRMYY|{AN}||20261205083000")
    assert [ack_code_of(x) for x in send(engine, a)] == ["AA"]
    appt = valid(appointment(engine, fhir, "G21"))
    assert sorted(r for p in _actors(appt, "Practitioner") for r in _roles(p)) == ["AN", "AT"], _show(appt)


def test_guard_two_unnamed_anaesthetists_are_two_slots(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    a = siu("GU1", "S12", SCH.format(c="GU", status="Booked"), PID, "RGS|1|A",
            f"AIP|2|||{AN}||20261205083000", f"AIP|3|||{AN}||20261205083000")
    assert [ack_code_of(x) for x in send(engine, a)] == ["AA"]
    appt = valid(appointment(engine, fhir, "GU1"))
    assert len([p for p in appt["participant"] if "actor" not in p]) == 2, _show(appt)
