"""sched25: an SIU booking is the filler's appointment -- keyed by the filler's id (SCH-2 in its namespace), the
patient an attribute it carries. A message under the record the patient index now keeps for the person moves or
updates the one booking; another person's message under a booked filler id stays refused at PID-3; a booking
stored before this round (keyed then by SCH-2's value under its patient) is found and updated where it is.
Real HL7 over MLLP (``send``) or POST /hl7v2, the real store and patient index, read back through /fhir."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convmend20_probes import PID, siu
from tests.test_ingest_durability import err_fields
from tests.test_moneylast19_charges import run_old_code
from tests.test_sched21_status_times import sch
from tests.test_sched22_changes import AT, D01
from tests.test_sched22_rv_probes import _text
from tests.test_schedfix24_rv_probes import OTHER, _all, _booked, _reopened

BASE = "1be59db"  # main before the twenty-fifth round: the Appointment keyed by SCH-2's value under the patient
THIRD = "PID|1||ZY25T^^^FNXRMYY^MR||孙^七||19900303|M"
ER7 = "x-application/hl7-v2+er7"


def _a40(control: str) -> bytes:  # ZY24R (OTHER) merged into ZY20S (PID)
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091600||ADT^A40^ADT_A39|{control}|P|2.5.1\r"
            f"EVN|A40|20261201091600\r{PID}\rMRG|ZY24R^^^FNXRMYY^MR\r").encode()


def _a47(control: str) -> bytes:  # ZY24R's MRN changed to ZY24S
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091600||ADT^A47^ADT_A30|{control}|P|2.5.1\r"
            f"EVN|A47|20261201091600\r{OTHER.replace('ZY24R', 'ZY24S')}\rMRG|ZY24R^^^FNXRMYY^MR\r").encode()


def _patient_id(fhir: TestClient, mrn: str) -> str:  # noqa: F811
    (entry,) = fhir.get("/fhir/Patient", params={"identifier": mrn}).json()["entry"]
    return str(entry["resource"]["id"])


def _patient_of(appt: dict) -> str:
    return str(appt["participant"][0]["actor"]["reference"])


def test_a_late_message_under_the_merged_away_record_does_not_move_the_booking_back(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Booked under ZY24R, A40 merges ZY24R into ZY20S, the S13 under ZY20S moves the booking there; a late S14
    the HIS still sends under ZY24R is the one booking's (taken: its new time), but the booking stays with the
    record the index keeps -- not moved back onto the merged-away (inactive) record."""
    acks = send(engine, siu("LB1", "S12", sch("LB"), OTHER), _a40("LB40"),
                siu("LB2", "S13", sch("LB", timing="^^^20261206100000"), PID),
                siu("LB3", "S14", sch("LB", timing="^^^20261207100000"), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 4, [_text(a) for a in acks]
    (appt,) = _all(fhir, "BK-LB")
    assert appt["start"] == "2026-12-07T10:00:00+08:00", appt
    assert _patient_of(appt) == f"Patient/{_patient_id(fhir, 'ZY20S')}", appt["participant"]


def test_another_person_under_a_moved_booking_is_still_refused(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """After the booking followed its person (A40, S13 under the kept record), a third person's S14 under its
    filler id is refused at PID-3 (205, naming the id) and the booking is left as it was."""
    acks = send(engine, siu("TP1", "S12", sch("TP"), OTHER), _a40("TP40"),
                siu("TP2", "S13", sch("TP", timing="^^^20261206100000"), PID),
                siu("TP3", "S14", sch("TP", timing="^^^20261207100000"), THIRD))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA", "AE"], [_text(a) for a in acks]
    errs = [e for e in err_fields(acks[3]) if e[2] == "PID^1^3"]
    assert errs and "205" in errs[0][3] and "'BK-TP' (FILL)" in errs[0][8], _text(acks[3])
    (appt,) = _all(fhir, "BK-TP")
    assert appt["start"] == "2026-12-06T10:00:00+08:00" and _patient_of(appt) == f"Patient/{_patient_id(fhir, 'ZY20S')}"


def test_an_mrn_change_then_a_thin_modification_keeps_the_booked_doctor(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A47 changes ZY24R to ZY24S; an S14 under ZY24S naming no resource moves the booking to the new record and
    keeps the doctor booked before (a message naming no resources states nothing of them)."""
    acks = send(engine, siu("MC1", "S12", sch("MC"), OTHER, "RGS|1|A", f"AIP|1||{D01}|{AT}||20261205083000|||30|MIN"),
                _a47("MC47"), siu("MC2", "S14", sch("MC", timing="^^^20261206100000"), OTHER.replace("ZY24R", "ZY24S")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"], [_text(a) for a in acks]
    (appt,) = _all(fhir, "BK-MC")
    assert _patient_of(appt) == f"Patient/{_patient_id(fhir, 'ZY24S')}", appt["participant"]
    assert [p["actor"]["reference"].split("/")[0] for p in appt["participant"]] == ["Patient", "Practitioner"], appt
    assert appt["start"] == "2026-12-06T10:00:00+08:00"


def test_a_cancel_under_the_kept_record_over_post_hl7v2(engine: Engine, http: TestClient) -> None:
    """Through POST /hl7v2: booked under ZY24R, A40 merges it into ZY20S, the S15 under ZY20S cancels the one
    booking (before: AE at PID-3, the booking left ``booked`` with no way for the filler to cancel it)."""
    writer = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-gw", "system/*.cruds"),
              "Content-Type": ER7}
    codes = [http.post("/hl7v2", content=m, headers=writer).headers["x-hl7-ack-code"]
             for m in (siu("PC1", "S12", sch("PC"), OTHER), _a40("PC40"), siu("PC2", "S15", sch("PC"), PID))]
    assert codes == ["AA", "AA", "AA"], codes
    reader = {"Authorization": "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")}
    found = [e["resource"] for e in http.get("/fhir/Appointment", params={"identifier": "BK-PC"},
                                             headers=reader).json().get("entry", ())]
    assert [a["status"] for a in found] == ["cancelled"], found


def test_a_rebooking_after_a_deletion_is_the_right_patients_alone(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 books the wrong patient, S17 deletes it, S12 books the right one under the same filler id: one
    booked Appointment, the right patient's; the wrong patient has no booked Appointment."""
    acks = send(engine, siu("RB1", "S12", sch("RB"), OTHER), siu("RB2", "S17", sch("RB"), OTHER),
                siu("RB3", "S12", sch("RB"), PID))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"], [_text(a) for a in acks]
    (appt,) = _booked(fhir, "BK-RB")
    assert _patient_of(appt) == f"Patient/{_patient_id(fhir, 'ZY20S')}"
    wrong = fhir.get("/fhir/Appointment", params={"patient": _patient_id(fhir, "ZY24R"), "status": "booked"}).json()
    assert not wrong.get("entry"), wrong


_BASE_S12 = """
import sys
from pathlib import Path
from engine.settings import Settings
from engine.engine import Engine
from adapters.hl7v2.ack import ack_code_of
from tests.test_convert11_thinner import send
from tests.test_convmend20_probes import siu
from tests.test_sched21_status_times import sch
from tests.test_schedfix24_rv_probes import OTHER
eng = Engine(Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0))
print(*(ack_code_of(a) for a in send(eng, siu("{first}1", "S12", sch("{first}"), OTHER), siu("{second}1", "S12", sch("{second}"), OTHER))))
eng.close()
"""


def old_bookings(tmp_path: Path, first: str, second: str) -> Path:
    """A data directory holding ZY24R's HIS bookings BK-``first`` and BK-``second`` (FNXRMYY), written by the code
    before this round (``BASE``); schedfix25's probes read one too."""
    script = _BASE_S12.format(first=first, second=second)
    out = run_old_code(BASE, script, tmp_path, ["old"])  # once a module; each test its own copy
    assert out.stdout.split() == ["AA", "AA"], out.stderr[-2000:]
    return tmp_path / "old"


@pytest.fixture
def base_store(tmp_path: Path) -> Path:
    """A data directory holding ZY24R's bookings BK-OB and BK-OC written by the code before this round."""
    return old_bookings(tmp_path, "OB", "OC")


def test_a_booking_stored_before_is_rescheduled_where_it_is(base_store: Path) -> None:
    """A booking stored before this round, re-sent S13 and then S14 by its filler: one Appointment, its id kept,
    the new time; the message's Provenance names that id (the write went there, not to the new key's)."""
    eng, client = _reopened(base_store)
    try:
        (old,) = _all(client, "BK-OB")
        acks = send(eng, siu("OB2", "S13", sch("OB", timing="^^^20261206100000"), OTHER),
                    siu("OB3", "S14", sch("OB", timing="^^^20261207100000"), OTHER))
        assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
        (appt,) = _all(client, "BK-OB")
        assert appt["id"] == old["id"] and appt["start"] == "2026-12-07T10:00:00+08:00", appt
        targets = [t["reference"] for e in client.get("/fhir/Provenance", params={"target": f"Appointment/{old['id']}"})
                   .json().get("entry", ()) for t in e["resource"]["target"]]
        assert sum(t.startswith(f"Appointment/{old['id']}/") for t in targets) == 3, targets
    finally:
        eng.close()


def test_another_person_under_a_booking_stored_before_is_refused(base_store: Path) -> None:
    """Under a booking stored before this round, another person's S12 is refused at PID-3, as before."""
    eng, client = _reopened(base_store)
    try:
        (ack,) = send(eng, siu("OC2", "S12", sch("OC", timing="^^^20261206100000"), THIRD))
        assert ack_code_of(ack) == "AE" and [e for e in err_fields(ack) if e[2] == "PID^1^3"], _text(ack)
        assert [a["start"] for a in _booked(client, "BK-OC")] == ["2026-12-05T08:30:00+08:00"]
    finally:
        eng.close()


def test_a_booking_stored_before_under_a_merged_record_is_refused_not_doubled(base_store: Path) -> None:
    """Left: a booking stored before this round under ZY24R, A40 merges ZY24R into ZY20S, the S13 under ZY20S.
    The former key is found only under the message's own patient, so this one is not moved: it is refused at
    PID-3 (the booking stored under another record of this person), and no second booking is made."""
    eng, client = _reopened(base_store)
    try:
        acks = send(eng, _a40("OM40"), siu("OB4", "S13", sch("OB", timing="^^^20261206100000"), PID))
        assert [ack_code_of(a) for a in acks] == ["AA", "AE"], [_text(a) for a in acks]
        assert [a["start"] for a in _all(client, "BK-OB")] == ["2026-12-05T08:30:00+08:00"]
    finally:
        eng.close()
