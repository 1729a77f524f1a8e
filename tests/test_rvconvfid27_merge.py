"""Review of convfid27 (twenty-seventh round, rvconvfid27): neighbours of its merge and mapping mends,
each over MLLP and read back through ``/fhir``. Every test here FAILS on 64ac42f1 (handed to a fixer).

Messages are this review's own (a county hospital, FNXRMYY), shaped after HL7 v2.5.1 chapters 3 and 7.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.merge_rules import API
from engine.messages import message_id
from engine.settings import Settings
from tests.test_ingest_durability import exchange, listening

BIRTH_TIME = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
UCUM = "http://unitsofmeasure.org"


@pytest.fixture(scope="module", params=["sqlite", "mongomock"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    from engine.api.app import create_app

    data = Path(tmp_path_factory.mktemp("rvconvfid27")) / "var"
    settings = Settings(data_dir=data, http_port=0, mllp_port=0)
    if request.param == "mongomock":
        settings = settings.with_(mongodb_uri="mongomock://")
    with Engine(settings) as engine, TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")
        yield engine, client


def send(engine: Engine, *messages: str) -> None:
    async def run() -> list[bytes]:
        async with listening(engine) as server:
            return await exchange(server.port, *(m.encode() for m in messages))

    acks = asyncio.run(run())
    assert [ack_code_of(a) for a in acks] == ["AA"] * len(messages), acks


def stored(served: tuple[Engine, TestClient], control: str, rtype: str) -> list[dict[str, Any]]:
    engine, client = served
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    out = []
    for ref in sorted(r for r in doc["resources"] if r.startswith(rtype + "/")):
        response = client.get(f"/fhir/{ref}")
        assert response.status_code == 200
        out.append(response.json())
    return out


def adt(control: str, event: str, mrn: str, pid7: str, minute: str = "15", tail: str = "") -> str:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|2026110109{minute}00||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
            f"EVN|{event}|2026110109{minute}00\rPID|1||{mrn}^^^FNXRMYY^MR||王^小宝||{pid7}|M\r"
            f"PV1|1|I|W01^101^1^FNXRMYY||||||||||||||||V{mrn}^^^FNXRMYY^VN\r" + tail)


def result(control: str, mrn: str, *obx: str, minute: str = "15") -> str:
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|2026110111{minute}00||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            f"PID|1||{mrn}^^^FNXRMYY^MR||张^三||19800101|M\r"
            f"OBR|1|ORD-{mrn}|LAB-{mrn}|SGN^肾功能^L|||20261101083000|||||||20261101083500|BLD"
            "||||||||20261101091000|||F\r"
            + "".join(line + "\r" for line in obx))


def birth_times(patient: dict[str, Any]) -> list[str]:
    """Every patient-birthTime the Patient carries, wherever it stands (R4's place or the old one)."""
    found = [*(patient.get("extension") or ()), *((patient.get("_birthDate") or {}).get("extension") or ())]
    return [e["valueDateTime"] for e in found if e.get("url") == BIRTH_TIME]


# --- 1. old stored data: the birth time where 7e6d12a6 stored it -----------------------------------


def test_a_null_pid7_deletes_a_birth_time_stored_before_the_move(served: tuple[Engine, TestClient]) -> None:
    """MED. Every Patient stored before convfid27 holds PID-7's time on Patient.extension (7e6d12a6's
    rule; the shape is written back here through the repository as that code stored it). PID-7 ``""``
    now deletes ``_birthDate`` alone: the stored birth time survives a deleted birth date, and a corrected
    date sent alone leaves the old day's time beside it (no migration moves it, no rule deletes it)."""
    engine, _ = served
    send(engine, adt("RB1", "A04", "RB01", "19850412083000"))
    (patient,) = stored(served, "RB1", "Patient")
    old = {k: v for k, v in patient.items() if k not in ("_birthDate", "meta")}
    old["extension"] = [{"url": BIRTH_TIME, "valueDateTime": "1985-04-12T08:30:00+08:00"}]
    engine.repository.update(old, source=API)  # the Patient as 7e6d12a6 stored it

    send(engine, adt("RB2", "A08", "RB01", "19850413", minute="20"))  # the day corrected, no time
    (patient,) = stored(served, "RB2", "Patient")
    assert patient["birthDate"] == "1985-04-13"
    assert birth_times(patient) == [], patient  # 1985-04-12T08:30 stays beside 1985-04-13

    send(engine, adt("RB3", "A08", "RB01", '""', minute="25"))
    (patient,) = stored(served, "RB3", "Patient")
    assert "birthDate" not in patient and birth_times(patient) == [], patient


# --- 2. _elements=birthDate drops the birth time ----------------------------------------------------


def test_elements_birthdate_keeps_the_birth_time(served: tuple[Engine, TestClient]) -> None:
    """LOW. The time now lives in ``_birthDate`` (the birthDate element's own extension, R4 JSON): a read
    or search with ``_elements=birthDate`` keeps only the top-level key ``birthDate`` and drops it."""
    engine, client = served
    send(engine, adt("RE1", "A04", "RE01", "20261028083000"))
    (patient,) = stored(served, "RE1", "Patient")
    read = client.get(f"/fhir/Patient/{patient['id']}", params={"_elements": "birthDate"})
    assert read.status_code == 200
    assert birth_times(read.json()) == ["2026-10-28T08:30:00+08:00"], read.json()
    found = client.get("/fhir/Patient", params={"_id": patient["id"], "_elements": "birthDate"})
    assert found.status_code == 200
    (entry,) = found.json()["entry"]
    assert birth_times(entry["resource"]) == ["2026-10-28T08:30:00+08:00"], entry


# --- 3. Observation.performer: OBX-16 "" -----------------------------------------------------------


def test_a_correction_with_obx16_null_deletes_the_observer(served: tuple[Engine, TestClient]) -> None:
    """MED. Before convfid27 a correction replaced performer whole, so a correction stating OBX-16 ``""``
    (HL7's explicit null: the observer named was wrong) left no observer. Now performer merges by the
    referred type and OBX-16 has no ``null_deletes``: ``""`` keeps the wrong doctor as the observer of a
    corrected result (the PV1 doctor fields got ``null_deletes`` in the same commit; OBX-16 did not)."""
    engine, _ = served
    send(engine, result("RP1", "RP01", "OBX|1|NM|CREA^肌酐^L||150|umol/L|57-111|H|||F|||20261101090000||D01^王^明"))
    send(engine, result("RP2", "RP01", 'OBX|1|NM|CREA^肌酐^L||80|umol/L|57-111|N|||C|||20261101090000||""',
                        minute="20"))
    (obs,) = stored(served, "RP2", "Observation")
    assert obs["status"] == "corrected"
    assert [p for p in obs["performer"] if p["reference"].startswith("Practitioner/")] == [], obs["performer"]


# --- 4. Encounter.participant by the whole `type` --------------------------------------------------


def test_an_a08_naming_a_new_attending_by_rol_replaces_the_old_one(served: tuple[Engine, TestClient]) -> None:
    """MED. Encounter.participant merges by ``type`` -- the whole CodeableConcept, display and system
    included. A ROL attending (ROL-3 AT, table 0443) sent by the A01 with its Chinese text and by the A08
    with another text (or none) are two kinds: the A08's new attending is added and the old one stays,
    two attending doctors. Before convfid27 the A08's list replaced the stored one."""
    engine, _ = served

    def visit(control: str, event: str, rol3: str, doctor: str, minute: str) -> str:
        return adt(control, event, "RR01", "19800101", minute=minute,
                   tail=f"ROL|1|AD|{rol3}|{doctor}\r")

    send(engine, visit("RR1", "A01", "AT^主治医师^HL70443", "D01^王^明", "15"),
         visit("RR2", "A08", "AT^Attending^HL70443", "D02^李^四", "20"))
    (encounter,) = stored(served, "RR2", "Encounter")
    attending = [p["individual"]["display"] for p in encounter["participant"]
                 if any(c.get("code") == "AT" for t in p.get("type", ()) for c in t.get("coding", ()))]
    assert attending == ["李四"], encounter["participant"]


# --- 5. units: the micro sign -------------------------------------------------------------------------


def test_micrograms_per_millilitre_with_the_micro_sign_is_ucum(served: tuple[Engine, TestClient]) -> None:
    """LOW. convfid27 added ``μg/mL`` with the Greek mu (U+03BC) only; LIS feeds and keyboards mostly
    write the micro sign (U+00B5, ``µg/mL``), which units.yaml lists for ``µmol/L`` beside the Greek one.
    ``µg/mL`` is still kept under ``urn:huren:unit:FNXRMYY``."""
    engine, _ = served
    send(engine, result("RU1", "RU01", "OBX|1|NM|FER^铁蛋白^L||0.25|µg/mL|||||F|||20261101090000"))
    (obs,) = stored(served, "RU1", "Observation")
    assert (obs["valueQuantity"]["system"], obs["valueQuantity"]["code"]) == (UCUM, "ug/mL"), obs["valueQuantity"]


# --- 6. `follows: birthDate`: a thinner message of the same day erases the time ---------------------


def test_an_a08_with_the_birth_date_alone_keeps_the_birth_time(served: tuple[Engine, TestClient]) -> None:
    """MED (regression: passes on 7e6d12a6). ``_birthDate: {follows: birthDate}`` removes the time whenever
    a message states a birthDate without one -- the same day too. An A08 from a HIS module that keeps
    dates only (outpatient desk, PID-7 ``20261028`` after the ward's ``20261028083000``) erases a
    newborn's birth time (hours of life read bilirubin ranges). A date of another day is a correction
    (convfid27's own test); the same day, cut to its date, is a thinner message, which never erases
    what an earlier one stated. (An ORU with the date alone keeps it: checked.)"""
    engine, _ = served
    send(engine, adt("RT1", "A01", "RT01", "20261028083000"))
    send(engine, adt("RT2", "A08", "RT01", "20261028", minute="20"))
    (patient,) = stored(served, "RT2", "Patient")
    assert patient["birthDate"] == "2026-10-28"
    assert birth_times(patient) == ["2026-10-28T08:30:00+08:00"], patient


# --- 7. Encounter.participant: an untyped participant is no attending -------------------------------


def test_an_a08_keeps_a_participant_a_fhir_client_added_without_a_type(
        served: tuple[Engine, TestClient]) -> None:
    """LOW. Encounter.participant.type is 0..* in R4: a FHIR client (a nursing app) adds a participant
    without one. By-key's wildcard (a stored entry leaving the key out is replaced by any incoming
    entry stating it -- meant for a name without a use) makes every such participant "of the kind" of
    PV1-7: an A08 that only restates the same attending erases the nurse the client added."""
    engine, client = served
    writer = {"Authorization": "Bearer " + engine.auth.issue_system_token("operator", "system/*.cruds")}

    def visit(control: str, event: str, minute: str) -> str:
        return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|2026110109{minute}00||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
                f"EVN|{event}|2026110109{minute}00\rPID|1||RQ01^^^FNXRMYY^MR||张^三||19800101|M\r"
                "PV1|1|I|W01^101^1^FNXRMYY||||D01^王^明||||||||||||VRQ01^^^FNXRMYY^VN\r")

    send(engine, visit("RQ1", "A01", "15"))
    (encounter,) = stored(served, "RQ1", "Encounter")
    encounter.pop("meta")
    encounter["participant"].append({"individual": {"display": "护士 刘芳"}})
    assert client.put(f"/fhir/Encounter/{encounter['id']}", json=encounter, headers=writer).status_code == 200
    send(engine, visit("RQ2", "A08", "20"))
    first = encounter["id"]
    (encounter,) = stored(served, "RQ2", "Encounter")
    # (convfix27: the visit number stood in PV1-20, so the A08 made another Encounter and the test
    # could not pass; PV1-19 it is, and the A08 must update the visit the client wrote to)
    assert encounter["id"] == first
    assert sorted(p["individual"]["display"] for p in encounter["participant"]) == ["护士 刘芳", "王明"], (
        encounter["participant"])
