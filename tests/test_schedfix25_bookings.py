"""schedfix25: the review of sched25 mended -- one filler's SCH-2 sent with or without a namespace naming it is one
booking (a namespace that may be its id sent another way is refused, not a second booking); a booking stored before
under the old key is taken only when it is this filler's; after a chain of merges a late message files the booking
under the record the patient index keeps now. Real HL7 over MLLP (``send``), the real store and patient index, read
back through /fhir."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convmend20_probes import PID, siu
from tests.test_sched21_status_times import sch
from tests.test_sched22_rv_probes import _text
from tests.test_schedfix24_rv2_probes import _from
from tests.test_schedfix24_rv_probes import OTHER, _all, _booked, _reopened
from tests.test_schedfix25_rv_probes import THIRD, _a40, _patient_id, base_store  # noqa: F401  (the fixture)


def _with(schl: str, c: str, sent: str) -> str:
    return schl.replace(f"|BK-{c}|", f"|{sent}|", 1)


def _ack_err(ack: bytes) -> list[str]:
    return [s for s in ack.decode().split("\r") if s.startswith("ERR|")]


def test_a_cancel_naming_the_sending_application_cancels_the_booking_sent_without_one(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 ``BK-SA`` (no namespace) from application HIS, S15 ``BK-SA^HIS``: EI-2 names MSH-3's HD-1, the same
    filler -- one Appointment, cancelled (base 123949b: a cancelled twin beside the booking left booked)."""
    c = "SA"
    acks = send(engine, siu(f"{c}1", "S12", sch(c), PID), siu(f"{c}2", "S15", _with(sch(c), c, f"BK-{c}^HIS"), PID))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    (appt,) = _all(fhir, f"BK-{c}")
    assert appt["status"] == "cancelled", appt


def test_a_reschedule_without_the_namespace_updates_the_booking_sent_with_the_senders_oid(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """MSH-3 ``HIS^1.2.156.112604.1.2^ISO``: the S12 sends ``BK-SO^^1.2.156.112604.1.2^ISO`` (EI-3 = HD-2), the S13
    ``BK-SO``: one filler, one Appointment, moved to the S13's time."""
    c = "SO"

    def from_oid(msg: bytes) -> bytes:
        return msg.replace(b"MSH|^~\\&|HIS|", b"MSH|^~\\&|HIS^1.2.156.112604.1.2^ISO|", 1)

    acks = send(engine, from_oid(siu(f"{c}1", "S12", _with(sch(c), c, f"BK-{c}^^1.2.156.112604.1.2^ISO"), PID)),
                from_oid(siu(f"{c}2", "S13", sch(c, timing="^^^20261206100000"), PID)))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    (appt,) = _all(fhir, f"BK-{c}")
    assert appt["start"] == "2026-12-06T10:00:00+08:00" and appt["status"] == "booked", appt


def test_a_cancel_in_a_namespace_that_may_be_the_fillers_is_refused_not_a_cancelled_twin(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 ``BK-SU^^1.2.156.112604.1.2^ISO`` from HIS (MSH-3 names no OID), S15 ``BK-SU``: whether the OID is HIS's
    cannot be told -- the cancel is refused (AE, said), not stored as a second, cancelled Appointment while the
    booking stays booked (base: two Appointments, the booking left booked)."""
    c = "SU"
    acks = send(engine, siu(f"{c}1", "S12", _with(sch(c), c, f"BK-{c}^^1.2.156.112604.1.2^ISO"), PID),
                siu(f"{c}2", "S15", sch(c), PID))
    assert ack_code_of(acks[0]) == "AA", _text(acks[0])
    assert ack_code_of(acks[1]) == "AE", _text(acks[1])
    assert any(e.startswith("ERR||SCH^1^2|") and "another namespace" in e for e in _ack_err(acks[1])), _text(acks[1])
    (appt,) = _all(fhir, f"BK-{c}")
    assert appt["status"] == "booked", appt


def test_two_applications_numbering_alike_for_one_patient_are_two_bookings(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: the HIS and the RIS (two applications, both sending SCH-2 without a namespace) each book BK-TW for
    ZY20S: two fillers known apart, two Appointments (the namespace check does not refuse them)."""
    c = "TW"
    acks = send(engine, siu(f"{c}1", "S12", sch(c), PID),
                _from(siu(f"{c}2", "S12", sch(c, timing="^^^20261205140000"), PID), "RIS"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    assert sorted(a["start"] for a in _booked(fhir, f"BK-{c}")) == ["2026-12-05T08:30:00+08:00",
                                                                     "2026-12-05T14:00:00+08:00"]


def test_after_two_merges_a_late_message_files_the_booking_under_the_kept_record(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Booked under ZY24R; A40 ZY24R -> ZY20S; A40 ZY20S -> ZY25T; a late S14 under ZY20S: the booking is updated and
    filed under ZY25T, the record the index keeps now (base 123949b: filed under ZY20S, merged away)."""
    acks = send(engine, siu("KC1", "S12", sch("KC"), OTHER), siu("KC0", "S12", sch("KX"), THIRD),
                _a40("KC40", PID, "ZY24R"), _a40("KC41", THIRD, "ZY20S"),
                siu("KC2", "S14", sch("KC", timing="^^^20261207100000"), PID))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 5, [_text(a) for a in acks]
    (appt,) = _all(fhir, "BK-KC")
    assert appt["participant"][0]["actor"]["reference"] == f"Patient/{_patient_id(fhir, 'ZY25T')}", appt
    assert appt["start"] == "2026-12-07T10:00:00+08:00", appt


def test_after_two_merges_a_late_message_under_the_first_record_does_not_move_it_back(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Booked under ZY24R, A40 into ZY20S, moved there by an S13, A40 ZY20S -> ZY25T, a late S14 under ZY24R: filed
    under ZY25T (base 123949b: moved back onto ZY24R)."""
    acks = send(engine, siu("KB1", "S12", sch("KB"), OTHER), siu("KB0", "S12", sch("KY"), THIRD),
                _a40("KB40", PID, "ZY24R"), siu("KB2", "S13", sch("KB", timing="^^^20261206100000"), PID),
                _a40("KB41", THIRD, "ZY20S"), siu("KB3", "S14", sch("KB", timing="^^^20261207100000"), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 6, [_text(a) for a in acks]
    (appt,) = _all(fhir, "BK-KB")
    assert appt["participant"][0]["actor"]["reference"] == f"Patient/{_patient_id(fhir, 'ZY25T')}", appt


def test_another_fillers_number_beside_a_booking_stored_before_is_its_own_booking(
        base_store: Path) -> None:  # noqa: F811
    """The HIS's BK-OA for ZY24R stored by the code before the twenty-fifth round; the RIS books its own BK-OA for
    ZY24R at 14:00: the stored one is not the RIS's (its FILL system is the HIS's), so it is not taken over --
    two Appointments, the HIS's at 08:30 with its id and system, the RIS's at 14:00 (base: the HIS's rewritten)."""
    eng, client = _reopened(base_store)
    try:
        (old,) = _all(client, "BK-OA")
        (ack,) = send(eng, _from(siu("OA2", "S12", sch("OA", timing="^^^20261205140000"), OTHER), "RIS"))
        assert ack_code_of(ack) == "AA", _text(ack)
        by_start = {a["start"]: a for a in _booked(client, "BK-OA")}
        assert sorted(by_start) == ["2026-12-05T08:30:00+08:00", "2026-12-05T14:00:00+08:00"], by_start
        his = by_start["2026-12-05T08:30:00+08:00"]
        assert his["id"] == old["id"] and his["identifier"] == old["identifier"], (his, old)
    finally:
        eng.close()
