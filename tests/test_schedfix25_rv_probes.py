"""rvsched25: review of sched25 (cd5ff5a): the SIU Appointment keyed by the filler's id (SCH-2 in its namespace),
the booking following its person through A40/A47, bookings stored before under the old key written where they are.
Real HL7 over MLLP (``send``), the real store and patient index, read back through /fhir. Tests marked FINDING
fail at cd5ff5a on purpose (not xfailed); the others are guards that pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.module_store import Names, names  # noqa: F401  (the fixture)
from tests.shared_worlds44d import reader_engine as engine  # noqa: F401  (the fixture: once a module)
from tests.shared_worlds44d import reader_fhir as fhir  # noqa: F401  (the fixture: once a module)
from tests.shared_worlds45d import send_as
from tests.test_convert11_thinner import send
from tests.test_convmend20_probes import PID, siu
from tests.test_sched21_status_times import sch
from tests.test_sched22_rv_probes import _text
from tests.test_sched25_bookings import old_bookings
from tests.test_schedfix24_rv2_probes import _from
from tests.test_schedfix24_rv_probes import OTHER, _all, _booked, _reopened

THIRD = "PID|1||ZY25T^^^FNXRMYY^MR||孙^七||19900303|M"
WANG_ID = "32092319850412001X"  # a valid national resident ID (tests/test_community_e2e.py)
WANG_X = f"PID|1||{WANG_ID}^^^^NNCHN~ZY25W^^^FNXRMYY^MR||王^建国||19850412|M"  # 王建国 at FNXRMYY
WANG_Z = f"PID|1||{WANG_ID}^^^^NNCHN~MZ25W^^^FNZYY^MR||王^建国||19850412|M"   # the same person at FNZYY


# the tests on ``engine`` share the module's (shared_worlds44d.reader_engine) and send under names of their own
# (tests.module_store.Names through shared_worlds45d.send_as: control IDs, record numbers, 王建国's resident ID number,
# MRG-1 and the appointment's SCH-1/SCH-2), reading back their own appointments and records: each had opened an engine
# (two parameters of the namespace test had booked one BK-N14). The three on a store the base code wrote keep it.


def _patient_id(fhir: TestClient, mrn: str) -> str:  # noqa: F811
    (entry,) = fhir.get("/fhir/Patient", params={"identifier": mrn}).json()["entry"]
    return str(entry["resource"]["id"])


def _a40(control: str, kept: str, away: str) -> bytes:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091600||ADT^A40^ADT_A39|{control}|P|2.5.1\r"
            f"EVN|A40|20261201091600\r{kept}\rMRG|{away}^^^FNXRMYY^MR\r").encode()


def _ns(schl: str, code: str) -> str:  # SCH-2 sent with a namespace id (EI-2), as many RIS/HIS send it
    return schl.replace(f"|BK-{code}|", f"|BK-{code}^RIS|", 1)


# --- the new key is global: EI-2 namespace ids are local (user table 0363), not the institution's ------------


def test_two_institutions_sharing_a_namespace_id_do_not_overwrite_one_persons_booking(
        engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """Guard. 王建国 has a record at FNXRMYY and one at FNZYY (his ID number). Each institution's scheduler sends
    SCH-2 with namespace id ``RIS`` (EI-2, a locally defined table-0363 value, ``urn:huren:id:RIS`` for every
    institution) and numbers its booking BK-NS. The new key carries no institution in its text, but ids are
    made per institution (``Context.id_for``: the institution's code), so FNZYY's S12 is a new Appointment and
    ``_claimed`` refuses it (AE at PID-3, as base): FNXRMYY's 08:30 visit is kept, not rewritten."""
    acks = send_as(engine, names, siu("NS1", "S12", _ns(sch("NS"), "NS"), WANG_X),
                _from(siu("NS2", "S12", _ns(sch("NS", timing="^^^20261205140000"), "NS"), WANG_Z), "HIS", "FNZYY"))
    assert ack_code_of(acks[0]) == "AA", _text(acks[0])
    booked = _booked(fhir, names.number("BK-NS"))
    mine = f"Patient/{_patient_id(fhir, names.number('ZY25W'))}"
    assert any(a.get("start") == "2026-12-05T08:30:00+08:00"
               and a["participant"][0]["actor"]["reference"] == mine for a in booked), \
        ([_text(a) for a in acks], _all(fhir, names.number("BK-NS")))


def test_two_institutions_sharing_a_namespace_id_two_people_are_not_refused_as_one_booking(
        engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """Guard: two people, two institutions, SCH-2 ``BK-NQ^RIS`` each: the first booking is kept (the second is
    refused by ``_claimed``, which finds the first by the same global system -- as on base)."""
    acks = send_as(engine, names, siu("NQ1", "S12", _ns(sch("NQ"), "NQ"), PID),
                _from(siu("NQ2", "S12", _ns(sch("NQ", timing="^^^20261205140000"), "NQ"),
                          "PID|1||MZ25Q^^^FNZYY^MR||钱^八||19700101|F"), "HIS", "FNZYY"))
    assert ack_code_of(acks[0]) == "AA", _text(acks[0])
    starts = [a.get("start") for a in _booked(fhir, names.number("BK-NQ"))]
    assert "2026-12-05T08:30:00+08:00" in starts, ([_text(a) for a in acks], _all(fhir, names.number("BK-NQ")))


# --- a chain of merges: the booking must not land on a record merged away ---------------------------------


def test_a_late_message_after_two_merges_does_not_file_the_booking_under_a_merged_away_record(
        engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """FINDING (MED, introduced; base refused it, AE at PID-3). Booked under ZY24R; A40 merges ZY24R into ZY20S;
    A40 merges ZY20S into ZY25T.
    A late S14 the HIS sends under ZY20S: ``_rebooked`` keeps the stored patient only when the stored one is
    *not* merged away -- here both are, so the booking is moved onto ZY20S, a record merged away (inactive),
    not the one the index keeps (ZY25T)."""
    acks = send_as(engine, names, siu("CH1", "S12", sch("CH"), OTHER), siu("CH0", "S12", sch("CX"), THIRD),
                _a40("CH40", PID, "ZY24R"), _a40("CH41", THIRD, "ZY20S"),
                siu("CH2", "S14", sch("CH", timing="^^^20261207100000"), PID))
    assert [ack_code_of(a) for a in acks[:4]] == ["AA"] * 4, [_text(a) for a in acks]
    (appt,) = _all(fhir, names.number("BK-CH"))
    actor = appt["participant"][0]["actor"]["reference"]
    assert actor != f"Patient/{_patient_id(fhir, names.number('ZY20S'))}", (actor, _text(acks[4]))


def test_a_late_message_under_the_first_record_after_two_merges_does_not_move_the_booking_back(
        engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """FINDING (MED, introduced: contradicts sched25's "not moved back"). Booked under ZY24R; A40 merges ZY24R
    into ZY20S; the S13 under ZY20S moves the
    booking there (right); A40 merges ZY20S into ZY25T; a late S14 under ZY24R. Stored (ZY20S) and message's
    (ZY24R) records are both merged away now, so ``_rebooked`` returns the message's participant: the booking is
    moved back onto ZY24R, the very record sched25 says a late message must not move it back to."""
    acks = send_as(engine, names, siu("BB1", "S12", sch("BB"), OTHER), siu("BB0", "S12", sch("BX"), THIRD),
                _a40("BB40", PID, "ZY24R"), siu("BB2", "S13", sch("BB", timing="^^^20261206100000"), PID),
                _a40("BB41", THIRD, "ZY20S"), siu("BB3", "S14", sch("BB", timing="^^^20261207100000"), OTHER))
    assert [ack_code_of(a) for a in acks[:5]] == ["AA"] * 5, [_text(a) for a in acks]
    (appt,) = _all(fhir, names.number("BK-BB"))
    actor = appt["participant"][0]["actor"]["reference"]
    assert actor != f"Patient/{_patient_id(fhir, names.number('ZY24R'))}", (actor, _text(acks[5]))


# --- a thin message with no PID under a booked filler id ------------------------------------------------


def test_a_cancel_without_pid_under_a_booked_filler_id_is_not_a_second_appointment(
        engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """Guard: an S15 of SCH alone (no PID) under a booked filler id. The identifier gets no system without a
    patient (``_appointment_patient``), so ``_filler_key`` would fall back to the old key; the message is refused
    (AE 101 at PID) before that, and no second, patientless Appointment is made."""
    acks = send_as(engine, names, siu("NP1", "S12", sch("NP"), PID), siu("NP2", "S15", sch("NP")))
    assert ack_code_of(acks[0]) == "AA", _text(acks[0])
    found = _all(fhir, names.number("BK-NP"))
    assert len(found) == 1, ([_text(a) for a in acks], found)


# --- bookings stored before this round: the old key is the value under the patient, whoever filled it -----

@pytest.fixture
def base_store(tmp_path: Path) -> Path:
    """A data directory holding ZY24R's HIS bookings BK-OA and BK-OF (FNXRMYY), written by the base code."""
    return old_bookings(tmp_path, "OA", "OF")


def test_another_fillers_same_number_for_one_patient_does_not_land_on_a_booking_stored_before(
        base_store: Path) -> None:
    """FINDING (HIGH, left: also on base; not in sched25's list of what it left -- the fixed xfail holds only for
    bookings made from now on). The HIS's BK-OA for
    ZY24R was stored before this round. The RIS (same institution, another application: another filler) books
    its own BK-OA for ZY24R at 14:00. Its new key is not stored, the old key (BK-OA under ZY24R) is, and
    ``Conversion.resolve`` renames the RIS's booking onto the HIS's without asking whose filler id it holds:
    the HIS visit at 08:30 is rewritten to the RIS's 14:00 (its FILL identifier re-systemed)."""
    eng, client = _reopened(base_store)
    try:
        (ack,) = send(eng, _from(siu("OA2", "S12", sch("OA", timing="^^^20261205140000"), OTHER), "RIS"))
        starts = sorted(a.get("start") for a in _booked(client, "BK-OA"))
        assert "2026-12-05T08:30:00+08:00" in starts, (_text(ack), _all(client, "BK-OA"))
    finally:
        eng.close()


def test_another_facilitys_same_number_does_not_land_on_a_booking_stored_before(base_store: Path) -> None:
    """Guard. As above across facilities: FNZYY's HIS books BK-OF for the patient whose MRN the FNXRMYY authority
    assigned (one Patient record); ids are made per institution (``Context.id_for``), so FNZYY's old key is not
    FNXRMYY's booking and the booking FNXRMYY stored before this round stays."""
    eng, client = _reopened(base_store)
    try:
        (ack,) = send(eng, _from(siu("OF2", "S12", sch("OF", timing="^^^20261205140000"), OTHER), "HIS", "FNZYY"))
        starts = sorted(a.get("start") for a in _booked(client, "BK-OF"))
        assert "2026-12-05T08:30:00+08:00" in starts, (_text(ack), _all(client, "BK-OF"))
    finally:
        eng.close()


def test_the_same_filler_reschedules_a_booking_stored_before_in_place(base_store: Path) -> None:
    """Guard: the HIS that stored BK-OA before this round reschedules it (S13): one Appointment, its id kept."""
    eng, client = _reopened(base_store)
    try:
        (old,) = _all(client, "BK-OA")
        (ack,) = send(eng, siu("OA3", "S13", sch("OA", timing="^^^20261206100000"), OTHER))
        assert ack_code_of(ack) == "AA", _text(ack)
        (appt,) = _all(client, "BK-OA")
        assert appt["id"] == old["id"] and appt["start"] == "2026-12-06T10:00:00+08:00", appt
    finally:
        eng.close()


# --- one Appointment id now holds two people's versions (an S17 then the right patient's S12) ---------------


def _resident(engine: Engine, patient_id: str) -> dict[str, str]:  # noqa: F811
    token, _ = engine.auth.issue_token(subject=f"person-{patient_id}", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=patient_id)
    return {"Authorization": f"Bearer {token}"}


def test_a_rebooked_ids_history_shows_neither_patient_the_others_booking(
        engine: Engine, http: TestClient, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """Guard (new exposure: on base the right patient's S12 after an S17 was another Appointment; now it is the
    same id, so its history holds the wrong patient's versions and the right one's). Each patient's own
    reader (patient/*.rs) sees, in the instance history and by vread, only versions naming that patient."""
    acks = send_as(engine, names, siu("PV1", "S12", sch("PV"), OTHER, "NTE|1||赵六 复诊 乙肝"), siu("PV2", "S17", sch("PV"), OTHER),
                siu("PV3", "S12", sch("PV", timing="^^^20261206100000"), PID))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, [_text(a) for a in acks]
    (appt,) = _all(fhir, names.number("BK-PV"))
    wrong, right = _patient_id(fhir, names.number("ZY24R")), _patient_id(fhir, names.number("ZY20S"))
    for me, other in ((right, wrong), (wrong, right)):
        headers = _resident(engine, me)
        r = http.get(f"/fhir/Appointment/{appt['id']}/_history", headers=headers)
        shown = [e["resource"] for e in r.json().get("entry", ()) if "resource" in e] if r.status_code == 200 else []
        assert (shown or me == wrong) and not any(f"Patient/{other}" in str(v) for v in shown), (me, r.status_code, shown)
        for version in range(1, int(appt["meta"]["versionId"]) + 1):
            v = http.get(f"/fhir/Appointment/{appt['id']}/_history/{version}", headers=headers)
            assert v.status_code != 200 or f"Patient/{other}" not in v.text, (me, version, v.text)


def test_the_right_patients_rebooking_does_not_carry_the_wrong_patients_notes(
        engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """Guard. S12 books ZY24R (赵六) with a note naming her and her complaint, S17 deletes it (entered in
    error: the wrong patient), the filler books the right patient ZY20S under the same filler id with no note.
    Since sched25 that S12 is an update of the deleted Appointment (same key), and a message that leaves an
    element out keeps the stored one -- the right patient's booking must not carry 赵六's note, reason or type
    (on base it was a new Appointment). It does not."""
    first = siu("WN1", "S12", sch("WN").replace("SCH|AP-WN|BK-WN||||||", "SCH|AP-WN|BK-WN||||||HBV^乙肝复诊^L|", 1),
                OTHER, "NTE|1||赵六 乙肝复诊 请带化验单")
    acks = send_as(engine, names, first)
    (stored,) = _all(fhir, names.number("BK-WN"))
    assert "乙肝" in str(stored), stored  # the probe has something to carry
    acks += send_as(engine, names, siu("WN2", "S17", sch("WN"), OTHER), siu("WN3", "S12", sch("WN", timing="^^^20261206100000"), PID))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, [_text(a) for a in acks]
    (appt,) = _all(fhir, names.number("BK-WN"))
    assert appt["participant"][0]["actor"]["reference"] == f"Patient/{_patient_id(fhir, names.number('ZY20S'))}", appt
    assert "赵六" not in str(appt) and "乙肝" not in str(appt), appt


# --- one filler, one booking, its SCH-2 sent once with a namespace and once without --------------------------


@pytest.mark.parametrize("booked,later", [("BK-{c}", "BK-{c}^HIS"), ("BK-{c}^HIS", "BK-{c}"),
                                          ("BK-{c}^^1.2.156.112604.1.2^ISO", "BK-{c}")])
def test_a_cancel_of_the_same_booking_is_not_lost_when_the_namespace_is_sent_or_left_out(
        engine: Engine, fhir: TestClient, names: Names, booked: str, later: str) -> None:  # noqa: F811
    """FINDING (HIGH, introduced; passes on base 1be59db). The HIS books BK-NV for ZY20S and later cancels it (S15), its SCH-2 once
    with an EI namespace and once without (an interface upgrade, a second code path of one HIS). On base the
    key was SCH-2's value under the patient: one Appointment, cancelled. Now the key is system + value, the two
    systems differ (urn:huren:appointment:FNXRMYY:HIS vs urn:huren:id:HIS / urn:oid:...): the S15 is a new
    Appointment unless ``_claimed`` refuses it. A cancel lost -- the slot left ``booked`` beside a cancelled
    twin -- is the wrong answer; one cancelled Appointment or a refusal is right."""
    c = "N" + str(len(booked) + len(later))
    acks = send_as(engine, names, siu(f"{c}1", "S12", sch(c).replace(f"|BK-{c}|", f"|{booked.format(c=c)}|", 1), PID),
                siu(f"{c}2", "S15", sch(c).replace(f"|BK-{c}|", f"|{later.format(c=c)}|", 1), PID))
    assert ack_code_of(acks[0]) == "AA", _text(acks[0])
    found = _all(fhir, names.number(f"BK-{c}"))
    assert not (ack_code_of(acks[1]) == "AA" and [a for a in found if a.get("status") == "booked"]), \
        ([_text(a) for a in acks], found)


def test_two_patients_booked_under_one_new_filler_id_in_one_pipelined_batch(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """Guard: two S12s under one new filler id BK-PB for two people, pipelined on one connection (one ingest
    batch: both converted, and the old key looked for, before either is written). The first is booked; the
    second is refused at PID-3 -- not an update that moves the first patient's booking to the second."""
    acks = send_as(engine, names, siu("PB1", "S12", sch("PB"), PID), siu("PB2", "S12", sch("PB", timing="^^^20261205140000"), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA", "AE"], [_text(a) for a in acks]
    (appt,) = _all(fhir, names.number("BK-PB"))
    assert appt["start"] == "2026-12-05T08:30:00+08:00"
    assert appt["participant"][0]["actor"]["reference"] == f"Patient/{_patient_id(fhir, names.number('ZY20S'))}", appt
