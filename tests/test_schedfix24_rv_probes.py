"""rvsched24: review probes of sched24 (c419d77) -- SIU times, TQ1 lengths, another patient under a booked
SCH-1/SCH-2. Real HL7 over MLLP (``send``), the real store and patient index, read back through /fhir.
Some of these FAIL on c419d77 on purpose (findings of the review, not xfailed); the report names them."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.module_store import Names, names  # noqa: F401  (the fixture)
from tests.shared_worlds44d import reader_engine as engine  # noqa: F401  (the fixture: once a module)
from tests.shared_worlds44d import reader_fhir as fhir  # noqa: F401  (the fixture: once a module)
from tests.shared_worlds45d import send_as
from tests.test_convert11_thinner import send
from tests.test_convmend20_probes import PID, siu
from tests.test_ingest_durability import err_fields
from tests.test_moneylast19_charges import run_old_code
from tests.test_sched21_status_times import sch
from tests.test_sched22_changes import AT, D01
from tests.test_sched22_rv_probes import _text

OTHER = "PID|1||ZY24R^^^FNXRMYY^MR||赵^六||19850202|F"
BEFORE = "9faaaf4"  # main before the twenty-fourth round: Appointment identifiers without a system

# the tests on ``engine`` share the module's (shared_worlds44d.reader_engine) and send under names of their own
# (tests.module_store.Names through shared_worlds45d.send_as: control IDs, record numbers ZY20S/ZY24R, MRG-1 and the
# appointment's SCH-1/SCH-2), reading back their own appointments: each had opened an engine. The two on a store the
# base code wrote keep it (old_store).


def _all(fhir: TestClient, value: str) -> list[dict]:  # noqa: F811
    bundle = fhir.get("/fhir/Appointment", params={"identifier": value}).json()
    return [e["resource"] for e in bundle.get("entry", ())]


def _booked(fhir: TestClient, value: str) -> list[dict]:  # noqa: F811
    return [a for a in _all(fhir, value) if a.get("status") == "booked"]


def _sch(placer: str, filler: str, timing: str = "^^^20261205083000") -> str:
    return f"SCH|{placer}|{filler}||||||NORMAL|30|min|{timing}" + "|" * 14 + "Booked"


# --- another patient under a booked number: refusals where the ids are another appointment's ------


def test_the_same_placer_id_with_another_filler_id_is_its_own_booking(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """FINDING. Two filler appointments (SCH-2 BK-Q1, BK-Q2) that share a placer id (SCH-1 AP-Q -- two
    placer applications numbering alike, neither sending a namespace) for two patients: the key
    (SCH-2 first) makes them two appointments, as base did (AA, AA); c419d77 refuses the second at PID-3
    because the *placer's* id matches ("a filler's appointment id is the filler's", it says)."""
    acks = send_as(engine, names, siu("Q1", "S12", _sch("AP-Q", "BK-Q1"), PID),
                siu("Q2", "S12", _sch("AP-Q", "BK-Q2", "^^^20261205093000"), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    assert len(_booked(fhir, names.number("BK-Q1"))) == 1 and len(_booked(fhir, names.number("BK-Q2"))) == 1


def test_another_filler_application_of_the_same_institution_is_its_own_booking(
        engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """FINDING. v2.5.1 ch. 10: SCH-2 is "the filler *application's* permanent identifier". RIS at FNXRMYY
    numbering like HIS at FNXRMYY (no namespace) is another filler: its booking for another patient is
    its own. c419d77 names the system by institution (urn:huren:appointment:FNXRMYY) and refuses it."""
    other = siu("W2", "S12", sch("W"), OTHER).replace(b"|HIS|FNXRMYY|", b"|RIS|FNXRMYY|")
    acks = send_as(engine, names, siu("W1", "S12", sch("W"), PID), other)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]


def test_a_deleted_bookings_number_rebooked_for_the_right_patient_is_taken(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """FINDING. S12 books the wrong patient, S17 deletes it (entered-in-error), S12 books the right patient
    under the same numbers -- the correction ch. 10 offers (an S14 cannot change the patient). c419d77
    refuses the rebooking: the entered-in-error Appointment still "holds" the number (base: AA)."""
    acks = send_as(engine, names, siu("T1", "S12", sch("T"), OTHER), siu("T2", "S17", sch("T"), OTHER),
                siu("T3", "S12", sch("T"), PID))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"], [_text(a) for a in acks]
    assert len(_booked(fhir, names.number("BK-T"))) == 1


def test_a_merged_patients_reschedule_moves_the_one_booking(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """FINDING (left by sched24, also on base). Booked under ZY24R, ADT^A40 merges ZY24R into ZY20S, the
    S13 under ZY20S moves the booking: one booked Appointment at the new time. c419d77: AA and a second
    booked Appointment, the old one still booked at 08:30 -- two bookings for one slot."""
    a40 = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091600||ADT^A40^ADT_A39|G40|P|2.5.1\r"
           "EVN|A40|20261201091600\r" + PID + "\rMRG|ZY24R^^^FNXRMYY^MR\r").encode()
    acks = send_as(engine, names, siu("G1", "S12", sch("G"), OTHER), a40,
                siu("G2", "S13", sch("G", timing="^^^20261206100000"), PID))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"], [_text(a) for a in acks]
    booked = _booked(fhir, names.number("BK-G"))
    assert [a.get("start") for a in booked] == ["2026-12-06T10:00:00+08:00"], booked


def test_a_changed_mrn_then_reschedule_moves_the_one_booking(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """FINDING (left, also on base). ADT^A47 changes ZY24R to ZY24S; the S13 under ZY24S makes a second
    booked Appointment, the old one still booked."""
    a47 = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091600||ADT^A47^ADT_A30|V47|P|2.5.1\r"
           "EVN|A47|20261201091600\r" + OTHER.replace("ZY24R", "ZY24S") + "\rMRG|ZY24R^^^FNXRMYY^MR\r").encode()
    acks = send_as(engine, names, siu("V1", "S12", sch("V"), OTHER), a47,
                siu("V2", "S13", sch("V", timing="^^^20261206100000"), OTHER.replace("ZY24R", "ZY24S")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"], [_text(a) for a in acks]
    booked = _booked(fhir, names.number("BK-V"))
    assert [a.get("start") for a in booked] == ["2026-12-06T10:00:00+08:00"], booked


def test_a_refused_message_resent_stays_refused_and_a_resend_is_idempotent(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """Guard: A's S12 sent twice is one booking; B's S14 under it refused, and refused again when resent."""
    acks = send_as(engine, names, siu("J1", "S12", sch("J"), PID), siu("J1", "S12", sch("J"), PID),
                siu("J2", "S14", sch("J"), OTHER), siu("J2", "S14", sch("J"), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AE", "AE"], [_text(a) for a in acks]
    (appt,) = _all(fhir, names.number("BK-J"))
    assert appt["start"] == "2026-12-05T08:30:00+08:00"


def test_a_thinner_s14_keeps_the_placer_id(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """FINDING (pre-existing, also on base). An S14 sending SCH-2 alone (SCH-1 empty: v2, not a deletion)
    updates the booking but drops its stored placer id AP-K."""
    acks = send_as(engine, names, siu("K1", "S12", sch("K"), PID), siu("K2", "S14", _sch("", "BK-K"), PID))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    (appt,) = _all(fhir, names.number("BK-K"))
    assert sorted(i["value"] for i in appt["identifier"]) == [names.number("AP-K"), names.number("BK-K")], appt["identifier"]


_BASE_S12 = """
import sys
from pathlib import Path
from engine.settings import Settings
from engine.engine import Engine
from adapters.hl7v2.ack import ack_code_of
from tests.test_convert11_thinner import send
from tests.test_convmend20_probes import PID, siu
from tests.test_sched21_status_times import sch
eng = Engine(Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0))
(a,) = send(eng, siu("OLD1", "S12", sch("OLD"), PID))
print(ack_code_of(a))
eng.close()
"""


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    """A data directory holding A's booking BK-OLD written by the base code (before sched24: no system)."""
    # this checkout's own history (a shallow clone skips); once a module, each test its own copy
    out = run_old_code(BEFORE, _BASE_S12, tmp_path, ["old"])
    assert out.stdout.strip() == "AA", out.stderr[-2000:]
    return tmp_path / "old"


def _reopened(data: Path) -> tuple[Engine, TestClient]:
    from engine.api.app import create_app

    eng = Engine(Settings(data_dir=data, http_port=0, mllp_port=0))
    client = TestClient(create_app(eng))
    client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("reader", "system/*.rs")
    return eng, client


def test_a_booking_stored_before_is_updated_in_place(old_store: Path) -> None:
    """Guard: a booking stored by the base (identifiers without system) and moved by an S14 now: one
    Appointment, the new time, each identifier once (the system added, nothing duplicated)."""
    eng, client = _reopened(old_store)
    try:
        (ack,) = send(eng, siu("OLD2", "S14", sch("OLD", timing="^^^20261206100000"), PID))
        assert ack_code_of(ack) == "AA", _text(ack)
        (appt,) = _all(client, "BK-OLD")
        assert appt["start"] == "2026-12-06T10:00:00+08:00"
        assert sorted(i["value"] for i in appt["identifier"]) == ["AP-OLD", "BK-OLD"], appt["identifier"]
    finally:
        eng.close()


def test_another_patient_under_a_booking_stored_before_is_refused(old_store: Path) -> None:
    """FINDING (said as left by sched24). Under a booking stored before this round (no system), another
    patient's S12 is taken: a second booking for the one slot, the case this round refuses."""
    eng, client = _reopened(old_store)
    try:
        (ack,) = send(eng, siu("OLD3", "S12", sch("OLD", timing="^^^20261206100000"), OTHER))
        assert ack_code_of(ack) == "AE" and len(_booked(client, "BK-OLD")) == 1, _text(ack)
    finally:
        eng.close()


# --- times --------------------------------------------------------------------------------------


def test_sch_9_beside_several_resources_ends_the_appointment(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """FINDING. No SCH-11, SCH-9/10 30 min (the appointment's duration), AIS 08:30 for 15 min and AIP 08:30
    for 60 min: the appointment is 08:30-09:00 (base). c419d77 ends it at 09:30 from the resources while
    storing minutesDuration 30 -- the stated appointment duration overridden by a resource's own
    (v2.5.1 ch. 10 AIS-7: the resource's "if different from the overall duration")."""
    (ack,) = send_as(engine, names, siu("R1", "S12", sch("R", timing=""), PID, "RGS|1|A",
                              "AIS|1||US1^腹部B超^L|20261205083000|||15|MIN", f"AIP|1||{D01}|{AT}||20261205083000|||60|MIN"))
    assert ack_code_of(ack) == "AA", _text(ack)
    (appt,) = _all(fhir, names.number("BK-R"))
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == (
        "2026-12-05T08:30:00+08:00", "2026-12-05T09:00:00+08:00", 30), (appt, _text(ack))


def test_a_tq1_13_in_metres_is_not_read_as_minutes(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """FINDING (LOW). TQ1-13 ``30^m`` -- UCUM ``m`` is the metre, not a length of time -- beside SCH-9 30 min:
    the unit table upper-cases it to ``M`` (minute) and finds no disagreement; nothing is said at TQ1-13
    or SCH-9. ``30^min`` is the minute."""
    (ack,) = send_as(engine, names, siu("U1", "S12", sch("U"), "TQ1|1" + "|" * 12 + "30^m", PID))
    assert ack_code_of(ack) == "AA", _text(ack)
    assert [e for e in err_fields(ack) if e[2] in ("TQ1^1^13", "SCH^1^9")], _text(ack)
