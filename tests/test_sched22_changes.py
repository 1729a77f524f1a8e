"""sched22: an SIU whose resource segments all carry action codes (table 0206 A/U/D/X) states
changes; each is found among the stored entries by its set id (AIP-1/AIL-1/AIG-1/AIS-1, kept on
the entry as the extension ``urn:huren:StructureDefinition:hl7v2-set-id``), then by who it names,
then by the role -- and a change that cannot be matched without a guess keeps the stored list and
is said in the ACK (ERR at the segment's set id). Real HL7 bytes over MLLP, the real store, read
back through /fhir; each Appointment checked by the project's validator."""

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

SCH = "SCH|AP-{c}|BK-{c}||||||NORMAL|30|min|^^^20261205083000||||||||||||||Booked"
AT = "AT^主治医师^HL70443"
AN = "AN^麻醉医师^HL70443"
D01 = "D01^王^明^^^^^^FNXRMYY"
D03 = "D03^刘^芳^^^^^^FNXRMYY"
SET_ID = "urn:huren:StructureDefinition:hl7v2-set-id"


def _show(x: Any) -> str:
    return json.dumps(x, ensure_ascii=False)


def _text(ack: bytes) -> str:
    return ack.decode("utf-8", "replace")


def _actors(appt: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [p for p in appt["participant"] if p.get("actor", {}).get("reference", "").startswith(rtype + "/")]


def _names(appt: dict[str, Any], status: str = "accepted") -> list[str]:
    return sorted(p["actor"]["display"] for p in _actors(appt, "Practitioner") if p["status"] == status)


def _codes(appt: dict[str, Any]) -> list[str]:
    return [c["code"] for st in appt.get("serviceType", []) for c in st.get("coding", [])]


def _run(engine: Engine, fhir: TestClient, stem: str, first: list[str], *later: list[str]) -> tuple[dict[str, Any], list[bytes]]:  # noqa: F811
    """S12 of ``first``, then an S14 of each of ``later``: the stored Appointment and the ACKs."""
    messages = [siu(f"{stem}1", "S12", SCH.format(c=stem), PID, "RGS|1|A", *first)]
    messages += [siu(f"{stem}{n}", "S14", SCH.format(c=stem), PID, "RGS|1|A", *segs) for n, segs in enumerate(later, 2)]
    acks = send(engine, *messages)
    assert [ack_code_of(a) for a in acks] == ["AA"] * len(messages), [_text(a) for a in acks]
    return valid(appointment(engine, fhir, f"{stem}{len(messages)}")), acks


# --- the set id is kept on each entry -------------------------------------------------------------

def test_each_participant_and_service_carries_its_segments_set_id(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, _ = _run(engine, fhir, "KS", ["AIS|1||US1^腹部B超^L|20261205083000",
                                        f"AIP|4||{D01}~{D03}|{AT}||20261205083000", f"AIP|5|||{AN}||20261205083000",
                                        "AIL|2||US^201^1^FNXRMYY|||20261205083000"])
    ids = sorted((e["valueIdentifier"]["system"], e["valueIdentifier"]["value"])
                 for p in appt["participant"] for e in p.get("extension", []) if e["url"] == SET_ID)
    assert ids == [("urn:huren:hl7v2:AIL-1", "2"), ("urn:huren:hl7v2:AIP-1", "4"), ("urn:huren:hl7v2:AIP-1", "4"),
                   ("urn:huren:hl7v2:AIP-1", "5")], _show(appt["participant"])
    (service,) = appt["serviceType"]
    assert service["extension"] == [{"url": SET_ID, "valueIdentifier": {"system": "urn:huren:hl7v2:AIS-1", "value": "1"}}]
    assert appt["participant"][0]["actor"]["reference"].startswith("Patient/")


# --- found by set id ------------------------------------------------------------------------------

def test_u_of_a_repeating_aip3_replaces_every_person_of_its_set_id(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, _ = _run(engine, fhir, "KR", [f"AIP|1||{D01}~{D03}|{AT}||20261205083000", f"AIP|2||D05^孙^力^^^^^^FNXRMYY|{AN}||20261205083000"],
                   [f"AIP|1|U|D07^周^平^^^^^^FNXRMYY|{AT}||20261205083000"])
    assert _names(appt) == ["周平", "孙力"], _show(appt["participant"])


def test_u_of_a_service_set_id_replaces_that_service(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, _ = _run(engine, fhir, "KV", ["AIS|1||US1^腹部B超^L|20261205083000", "AIS|2||CT1^胸部CT^L|20261205083000"],
                   ["AIS|1|U|MR1^头颅MR^L|20261205083000"])
    assert _codes(appt) == ["MR1", "CT1"], _show(appt["serviceType"])


def test_d_of_set_id_alone_declines_what_it_holds(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIL|1|D`` naming no location: the set id says which."""
    appt, _ = _run(engine, fhir, "KD", [f"AIP|1||{D01}|{AT}||20261205083000", "AIL|1||US^201^1^FNXRMYY|||20261205083000"],
                   ["AIL|1|D"])
    assert [p["status"] for p in _actors(appt, "Location")] == ["declined"], _show(appt["participant"])
    assert _names(appt) == ["王明"]


def test_x_no_change_keeps_what_the_set_id_holds(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, _ = _run(engine, fhir, "KX", [f"AIP|1||{D01}|{AT}||20261205083000", "AIL|1||US^201^1^FNXRMYY|||20261205083000"],
                   [f"AIP|1|X|{D01}|{AT}||20261205083000", "AIL|2|A|US^202^1^FNXRMYY|||20261205083000"])
    assert _names(appt) == ["王明"] and len(_actors(appt, "Location")) == 2, _show(appt["participant"])


# --- not matched without a guess: the stored list stands, the ACK says so ------------------------

def _kept(appt: dict[str, Any], ack: bytes, where: str) -> None:
    assert _names(appt) == ["王明"], _show(appt["participant"])
    assert where in _text(ack) and "kept as it was" in _text(ack), _text(ack)


def test_a_under_a_set_id_holding_another_doctor_keeps_the_list(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "KA", [f"AIP|1||{D01}|{AT}||20261205083000"], [f"AIP|1|A|{D03}|{AT}||20261205083000"])
    _kept(appt, ack, "AIP^1^1")


def test_d_naming_another_doctor_than_its_set_id_holds_keeps_the_list(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "KN", [f"AIP|1||{D01}|{AT}||20261205083000"], [f"AIP|1|D|{D03}|{AT}||20261205083000"])
    _kept(appt, ack, "AIP^1^1")


def test_d_of_a_doctor_booked_in_two_roles_by_another_set_id_keeps_the_list(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """D01 booked as attending (set id 1) and anaesthetist (set id 2); ``AIP|7|D|D01`` with no role:
    which of his two parts is meant is not said."""
    appt, (_, ack) = _run(engine, fhir, "K2", [f"AIP|1||{D01}|{AT}||20261205083000", f"AIP|2||{D01}|{AN}||20261205083000"],
                          [f"AIP|7|D|{D01}|||20261205083000"])
    assert [p["status"] for p in _actors(appt, "Practitioner")] == ["accepted", "accepted"], _show(appt["participant"])
    assert "AIP^1^1" in _text(ack) and "booked 2 times" in _text(ack), _text(ack)


def test_u_of_what_is_not_stored_keeps_the_list(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "KU", [f"AIP|1||{D01}|{AT}||20261205083000"], [f"AIP|3|U|{D03}|{AT}||20261205083000"])
    _kept(appt, ack, "AIP^1^1")


def test_a_coded_segment_without_a_set_id_keeps_the_list(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "KI", [f"AIP|1||{D01}|{AT}||20261205083000"],
                          [f"AIP|2|A|D05^孙^力^^^^^^FNXRMYY|{AN}||20261205083000", f"AIP||U|{D03}|{AT}||20261205083000"])
    _kept(appt, ack, "AIP^2^1")


def test_one_set_id_given_twice_keeps_the_list(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "KT", [f"AIP|1||{D01}|{AT}||20261205083000"],
                          [f"AIP|1|U|{D03}|{AT}||20261205083000", f"AIP|1|D|{D01}|{AT}||20261205083000"])
    _kept(appt, ack, "AIP^2^1")


def test_a_refused_participant_change_leaves_the_services_change_and_the_rest(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "KO", [f"AIP|1||{D01}|{AT}||20261205083000", "AIS|1||US1^腹部B超^L|20261205083000"],
                          ["AIS|2|A|CT1^胸部CT^L|20261205083000", f"AIP|1|A|{D03}|{AT}||20261205083000"])
    _kept(appt, ack, "AIP^1^1")
    assert _codes(appt) == ["US1", "CT1"], _show(appt["serviceType"])


def test_d_of_a_doctor_never_booked_takes_nothing_off_and_says_so(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "KB", [f"AIP|1||{D01}|{AT}||20261205083000", "AIL|1||US^201^1^FNXRMYY|||20261205083000"],
                          [f"AIP|4|D|{D03}|{AT}||20261205083000", "AIL|1|U|US^202^1^FNXRMYY|||20261205083000"])
    assert _names(appt) == ["王明"] and not _names(appt, "declined"), _show(appt["participant"])
    assert [p["status"] for p in _actors(appt, "Location")] == ["accepted"], _show(appt["participant"])
    assert "AIP^1^1" in _text(ack) and "nothing is taken off" in _text(ack), _text(ack)


def test_an_unknown_action_code_is_said_and_the_list_stated_whole(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, (_, ack) = _run(engine, fhir, "KZ", [f"AIP|1||{D01}|{AT}||20261205083000"], [f"AIP|1|Z|{D03}|{AT}||20261205083000"])
    assert _names(appt) == ["刘芳"], _show(appt["participant"])
    assert "AIP^1^2" in _text(ack) and "table 0206" in _text(ack), _text(ack)


# --- a list stored without set ids (a FHIR client's, or stored before this round) ------------------

def test_a_list_stored_without_set_ids_is_changed_by_who_and_never_guessed(engine: Engine, fhir: TestClient, http: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, siu("KL1", "S12", SCH.format(c="KL"), PID, "RGS|1|A", f"AIP|1||{D01}|{AT}||20261205083000",
                              f"AIP|2||{D01}|{AN}||20261205083000", "AIL|1||US^201^1^FNXRMYY|||20261205083000"))
    assert ack_code_of(ack) == "AA"
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("client", "system/*.cruds")
    appt = appointment(engine, fhir, "KL1")
    for p in appt["participant"]:
        p.pop("extension", None)
    appt.pop("meta", None)
    assert http.put(f"/fhir/Appointment/{appt['id']}", json=appt).status_code == 200
    # a D of D01 with no role: he is booked twice (no set id tells which) -- kept, said
    later = [siu("KL2", "S14", SCH.format(c="KL"), PID, "RGS|1|A", f"AIP|1|D|{D01}|||20261205083000"),
             # a U of set id 1 naming D03: nothing is stored under set id 1, D03 is not booked -- kept, said
             siu("KL3", "S14", SCH.format(c="KL"), PID, "RGS|1|A", f"AIP|1|U|{D03}|{AT}||20261205083000"),
             # a D of D01 as anaesthetist: found by who and role
             siu("KL4", "S14", SCH.format(c="KL"), PID, "RGS|1|A", f"AIP|2|D|{D01}|{AN}||20261205083000")]
    acks = send(engine, *later)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"]
    assert "kept as it was" in _text(acks[0]) and "kept as it was" in _text(acks[1]), [_text(a) for a in acks]
    appt = valid(appointment(engine, fhir, "KL4"))
    parts = sorted((p["type"][0]["coding"][0]["code"], p["status"]) for p in _actors(appt, "Practitioner"))
    assert parts == [("AN", "declined"), ("AT", "accepted")], _show(appt["participant"])
    assert len(_actors(appt, "Location")) == 1


# --- a message without action codes still states the list whole -----------------------------------

def test_a_message_without_codes_states_the_list_whole_patient_first(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, _ = _run(engine, fhir, "KW", [f"AIP|1||{D01}|{AT}||20261205083000", "AIL|1||US^201^1^FNXRMYY|||20261205083000"],
                   [f"AIP|1||{D03}|{AT}||20261205083000"])
    assert _names(appt) == ["刘芳"] and not _actors(appt, "Location"), _show(appt["participant"])
    assert appt["participant"][0]["actor"]["reference"].startswith("Patient/")


def test_a_set_id_a_whole_list_gives_twice_is_not_stored_and_no_later_u_replaces_both(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """An S12 numbering two doctors ``AIP|1``: a later ``AIP|1|U|D03`` replaced both."""
    messages = [siu("KK1", "S12", SCH.format(c="KK"), PID, "RGS|1|A", f"AIP|1||{D01}|{AT}||20261205083000",
                    f"AIP|1||D05^孙^力^^^^^^FNXRMYY|{AN}||20261205083000"),
                siu("KK2", "S14", SCH.format(c="KK"), PID, "RGS|1|A", f"AIP|1|U|{D03}|{AT}||20261205083000")]
    first, later = send(engine, *messages)
    assert ack_code_of(first) == "AA" and "AIP^2^1" in _text(first), _text(first)
    assert ack_code_of(later) == "AA" and "kept as it was" in _text(later), _text(later)
    appt = valid(appointment(engine, fhir, "KK2"))
    assert _names(appt) == ["孙力", "王明"], _show(appt["participant"])
    assert not [p for p in appt["participant"] if "extension" in p], _show(appt["participant"])
