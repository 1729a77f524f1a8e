"""What a message states and huren altered or dropped on the way to FHIR (twentieth round, conv20).

Each test sends real HL7 v2 bytes over MLLP and reads what was stored back through ``/fhir``.

Scheduling (SIU^S12). The message shapes follow the HL7 v2.5.1 chapter 10 example of an S12 and
the HL7 v2-to-FHIR IG's own SIU_S12 benchmark message (``tests/data/hl7v2/hl7-v2-to-fhir-ig/
IG-test_conversions_SIU_S12.hl7``, CC0: ``AIP|1||JPULLEN1^Pullen^Jeri...|D^Pullen, Jeri|...``),
with a county hospital's codes in place of theirs.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_ingest_durability import err_fields


def booking(control: str, sch9_10: str = "30|min", *, aip4: str = "AT^主治医师^HL70443", aip12: str = "",
            ail12: str = "") -> bytes:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||SIU^S12^SIU_S12|{control}|P|2.5.1\r"
            f"SCH|AP-{control}|BK-{control}||||||NORMAL|{sch9_10}|^^^20261205083000|||||||||||||||Booked\r"
            "PID|1||ZY20S^^^FNXRMYY^MR||李^小明||19800101|M\r"
            "RGS|1|A\r"
            "AIS|1||US1^腹部B超^L|20261205083000\r"
            f"AIP|1||D01^王^明^^^^^^FNXRMYY|{aip4}||20261205083000||||||{aip12}\r"
            f"AIL|1||US^201^1^FNXRMYY|||20261205083000||||||{ail12}\r").encode()


def appointment(engine: Engine, fhir: TestClient, control: str) -> dict[str, Any]:  # noqa: F811
    (appt,) = written(engine, fhir, control, "Appointment")
    return appt


def by_actor(appt: dict[str, Any], rtype: str) -> dict[str, Any]:
    (entry,) = [p for p in appt["participant"] if p["actor"].get("reference", "").startswith(rtype + "/")]
    return entry


def test_a_booked_persons_role_and_each_resources_own_status_are_kept(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """AIP-4 (the person's role, table 0443) was dropped and every participant was stored
    ``accepted`` whatever its AIP-12/AIL-12 filler status said: a doctor whose part in the
    appointment was cancelled read as taking part (``vocabulary.yaml`` had the table
    ``participation_status`` the IG gives for it, read by nothing)."""
    acks = send(engine, booking("SA1"), booking("SA2", aip12="Cancelled", ail12="Pending"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks

    doctor = by_actor(appointment(engine, fhir, "SA1"), "Practitioner")
    assert doctor["type"] == [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0443",
                                           "code": "AT", "display": "主治医师"}], "text": "主治医师"}]
    assert doctor["status"] == "accepted"  # no AIP-12: booked with the appointment (SCH-25)
    assert by_actor(appointment(engine, fhir, "SA1"), "Location")["status"] == "accepted"

    cancelled = appointment(engine, fhir, "SA2")
    assert by_actor(cancelled, "Practitioner")["status"] == "declined"  # was "accepted"
    assert by_actor(cancelled, "Location")["status"] == "tentative"  # was "accepted"
    assert by_actor(cancelled, "Patient")["status"] == "accepted"


def test_an_appointments_duration_is_read_in_its_own_unit(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """SCH-9/SCH-10 (duration and its unit): a unit the converter did not know was read as
    minutes, so a one-week stay booked ``1|wk`` ended one minute after it began, with AA. Units
    are a table now (``vocabulary.yaml`` ``duration_minutes``: UCUM and the spellings senders
    use); a unit it does not name gives no duration and no end made up from it, said at SCH-10."""
    week, hours, unknown = send(engine, booking("SD1", "1|wk^week^UCUM"), booking("SD2", "2|h"),
                                booking("SD3", "3|mo"))
    assert [ack_code_of(a) for a in (week, hours)] == ["AA", "AA"], (week, hours)

    appt = appointment(engine, fhir, "SD1")
    assert (appt["start"], appt["end"]) == ("2026-12-05T08:30:00+08:00", "2026-12-12T08:30:00+08:00")  # was 08:31
    assert appt["minutesDuration"] == 10080  # was 1
    appt = appointment(engine, fhir, "SD2")
    assert (appt["end"], appt["minutesDuration"]) == ("2026-12-05T10:30:00+08:00", 120)

    # a month has no fixed number of minutes: no end is invented from "3 mo", and the ACK says why
    assert ack_code_of(unknown) == "AA", unknown  # stored; the ERR W segments say what was not taken
    warned = [e for e in err_fields(unknown) if e[2].startswith("SCH^1^10")]
    assert warned and warned[0][4] == "W" and "mo" in warned[0][8], err_fields(unknown)
    appt = appointment(engine, fhir, "SD3")
    assert "minutesDuration" not in appt and "end" not in appt


def test_a_role_booked_with_no_one_named_yet_is_kept(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """An AIP naming a role and no person (AIP-3 empty, AIP-4 the role: Corepoint Health's SIU
    example in ``tests/data/hl7v2/google-hdh/hdh_siu_s12_ex1.hl7`` books ``2.10^Anesthesiologist``
    so) was dropped: the appointment read as needing no anaesthetist. R4 allows a participant that
    is a type alone (app-1); it is kept so, ``needs-action`` unless its AIP-12 says otherwise."""
    message = booking("SR1").replace(b"AIL|", "AIP|2|||AN^麻醉医师^L||20261205083000\rAIL|".encode(), 1)
    (ack,) = send(engine, message)
    assert ack_code_of(ack) == "AA", ack
    appt = appointment(engine, fhir, "SR1")
    roles = [p for p in appt["participant"] if "actor" not in p]
    # (the extension: its segment's set id, AIP-1, by which a later message finds it -- sched22)
    assert roles == [{"type": [{"coding": [{"system": "urn:huren:code:FNXRMYY", "code": "AN", "display": "麻醉医师"}],
                                "text": "麻醉医师"}], "status": "needs-action",
                      "extension": [{"url": "urn:huren:StructureDefinition:hl7v2-set-id",
                                     "valueIdentifier": {"system": "urn:huren:hl7v2:AIP-1", "value": "2"}}]}]  # was []
    assert len(appt["participant"]) == 4  # the patient, the doctor, the role, the room


def vaccination(control: str, completion: str) -> bytes:
    """The CDC immunization IG's example VXU #1 shape (``tests/data/hl7v2/cdc-iz-ig/``, a US-government
    work): ORC, then RXA with RXA-20 the completion status (table 0322) and RXA-21 the action."""
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||VXU^V04^VXU_V04|{control}|P|2.5.1\r"
            "PID|1||ZY20V^^^FNXRMYY^MR||李^小明||20200101|M\r"
            "ORC|RE||IZ-20V^FNXRMYY\r"
            "RXA|0|1|20261201093000||08^Hep B^CVX|0.5|mL^^UCUM||00^New immunization record^NIP001"
            f"|||||||||||{completion}|A\r"
            "RXR|C28161^Intramuscular^NCIT|LD^Left Deltoid^HL70163\r").encode()


def test_a_partially_administered_dose_is_not_read_as_a_full_one(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """RXA-20 PA (partially administered: the child pulled away, half the dose went in) was stored
    ``completed`` and nothing else -- a full, potent dose to any reader or forecaster (R4: "by
    default, a dose should be considered to be potent"). The IG's RXA map gives PA
    ``isSubpotent: true``; a later message completing the record (CP) says ``false`` again."""
    (partial,) = send(engine, vaccination("SV1", "PA"))
    assert ack_code_of(partial) == "AA", partial
    (imm,) = written(engine, fhir, "SV1", "Immunization")
    assert imm["status"] == "completed" and imm["isSubpotent"] is True  # was absent
    assert imm["doseQuantity"]["value"] == 0.5

    (corrected,) = send(engine, vaccination("SV2", "CP"))
    assert ack_code_of(corrected) == "AA", corrected
    (again,) = written(engine, fhir, "SV2", "Immunization")
    assert again["id"] == imm["id"] and again["isSubpotent"] is False


def timed_urine(control: str, spm17: str) -> bytes:
    """A 24-hour urine protein in an ORU^R01 whose SPM-17 (specimen collection date/time, DR) gives
    the collection's start and end, as HL7 v2.5.1 chapter 7's SPM definition and the NIST ELR
    test messages write it (``start^end``)."""
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261202091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            "PID|1||ZY20U^^^FNXRMYY^MR||王^建国||19800101|M\r"
            f"OBR|1|ORD-{control}|LAB-{control}|UPRO24^24小时尿蛋白^L|||20261201080000|||||||||||||||"
            "20261202090000|||F\r"
            "OBX|1|NM|UPRO24^24小时尿蛋白^L||0.15|g/24h|0-0.15||||F|||20261202085000\r"
            f"SPM|1|SP-{control}||UR^尿液^HL70487|||||||||||||{spm17}|20261202083000\r").encode()


def test_a_timed_collection_keeps_its_end(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """SPM-17 is a range (DR): a 24-hour urine collected from 08:00 on the 1st to 08:00 on the
    2nd was stored as collected at 08:00 on the 1st -- the end dropped with AA, and with it what
    makes the result a 24-hour one. It is now ``collection.collectedPeriod`` (IG "SPM to
    Specimen": SPM-17.2 valued → a period); a single time stays ``collectedDateTime``; a range
    that ends before it starts (R4 per-1) is left out with a warning at SPM-17."""
    period, point, reversed_ = send(engine, timed_urine("SU1", "20261201080000^20261202080000"),
                                    timed_urine("SU2", "20261201080000"),
                                    timed_urine("SU3", "20261202080000^20261201080000"))
    assert [ack_code_of(a) for a in (period, point)] == ["AA", "AA"], (period, point)
    (specimen,) = written(engine, fhir, "SU1", "Specimen")
    assert specimen["collection"] == {"collectedPeriod": {"start": "2026-12-01T08:00:00+08:00",
                                                          "end": "2026-12-02T08:00:00+08:00"}}  # end was dropped
    assert specimen["receivedTime"] == "2026-12-02T08:30:00+08:00"
    (specimen,) = written(engine, fhir, "SU2", "Specimen")
    assert specimen["collection"] == {"collectedDateTime": "2026-12-01T08:00:00+08:00"}

    warned = [e for e in err_fields(reversed_) if e[2].startswith("SPM^1^17")]
    assert warned and warned[0][4] == "W" and "before it starts" in warned[0][8], err_fields(reversed_)
    (specimen,) = written(engine, fhir, "SU3", "Specimen")
    assert "collection" not in specimen


def registration(control: str, pid13: str) -> bytes:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A31^ADT_A05|{control}|P|2.5.1\r"
            "EVN|A31|20261201091500\r"
            f"PID|1||ZY20T^^^FNXRMYY^MR||王^建国||19800101|M|||||{pid13}\r"
            "PV1|1|N\r").encode()


def test_a_phone_number_is_not_replaced_by_its_area_code(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """XTN-1 holds the whole number and XTN-5/6 its country and area codes, as v2.3-era senders fill
    them (``(025)88887777^PRN^PH^^^025``): any of XTN-5..7 made the number, so the patient's phone
    was stored as ``025``. Parts without a local number (XTN-7) are no number: XTN-1 (or XTN-12, or
    the e-mail) stands; an XTN of an area code alone (LinuxForHealth's ``res_ORU-multiline-short``
    sends ``^^^^^905`` as a repetition of its own) is left out, said at PID-13, not stored as a
    phone number ``905``."""
    (ack,) = send(engine, registration("ST1", "(025)88887777^PRN^PH^^^025~^PRN^PH^^^905~^PRN^PH^^86^25^88887777"))
    assert ack_code_of(ack) == "AA", ack
    (patient,) = written(engine, fhir, "ST1", "Patient")
    assert [t["value"] for t in patient["telecom"]] == ["(025)88887777", "+86 25 88887777"]  # was "025", "905", ...
    warned = [e for e in err_fields(ack) if e[2].startswith("PID^1^13")]
    assert warned and warned[0][4] == "W" and "905" in warned[0][8], err_fields(ack)
