"""Copied from rvrvsched25b (git show rvrvsched25b:tests/test_rvrvsched25b_probes.py) by schedfix25b.

rvrvsched25b: review of schedfix25 (451bbe0..01c51f0): an SCH-2 namespace naming its sender keyed as the sender's,
the refusal of a same number in a namespace of another kind, the old-key check (``Holds``), the merge chain. Real HL7
over MLLP (``send``), the real store and patient index, read back through /fhir. Tests marked FINDING fail at 01c51f0
on purpose (not xfailed); the others are guards that pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convmend20_probes import PID, siu
from tests.test_moneylast19_charges import run_old_code
from tests.test_sched21_status_times import sch
from tests.test_sched22_rv_probes import _text
from tests.test_sched25_bookings import BASE
from tests.test_schedfix24_rv2_probes import _from
from tests.test_schedfix24_rv_probes import OTHER, _all, _booked, _reopened
from tests.test_schedfix25_rv_probes import THIRD, WANG_X, WANG_Z, _a40, _patient_id

OID = "1.2.156.112604.1.2"


def _with(schl: str, c: str, sent: str) -> str:
    return schl.replace(f"|BK-{c}|", f"|{sent}|", 1)


def _app(msg: bytes, msh3: str) -> bytes:
    return msg.replace(b"MSH|^~\\&|HIS|", f"MSH|^~\\&|{msh3}|".encode(), 1)


def _errs(ack: bytes) -> list[str]:
    return [s for s in ack.decode().split("\r") if s.startswith("ERR|")]


# --- bookings the code before this round stored with SCH-2 naming its sender ----------------------------------

_BASE_S12 = f"""
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
ns = siu("ON1", "S12", sch("ON").replace("|BK-ON|", "|BK-ON^HIS|", 1), OTHER)
oid = siu("OO1", "S12", sch("OO").replace("|BK-OO|", "|BK-OO^^{OID}^ISO|", 1), OTHER).replace(
    b"MSH|^~\\\\&|HIS|", b"MSH|^~\\\\&|HIS^{OID}^ISO|", 1)
print(*(ack_code_of(a) for a in send(eng, ns, oid)))
eng.close()
"""


@pytest.fixture
def named_store(tmp_path: Path) -> Path:
    """A data directory the code before this round (1be59db) wrote: ZY24R's HIS bookings BK-ON (SCH-2 ``BK-ON^HIS``,
    EI-2 naming MSH-3) and BK-OO (SCH-2 ``BK-OO^^<OID>^ISO`` from MSH-3 ``HIS^<OID>^ISO``)."""
    out = run_old_code(BASE, _BASE_S12, tmp_path, ["old"])  # once a module; each test its own copy
    assert out.stdout.split() == ["AA", "AA"], out.stderr[-2000:]
    return tmp_path / "old"


def test_a_cancel_of_a_booking_stored_before_with_the_senders_namespace_is_applied(named_store: Path) -> None:
    """FINDING (MED-HIGH, introduced by schedfix25; sched25 took it). The HIS booked BK-ON for ZY24R before this
    round, SCH-2 ``BK-ON^HIS`` (stored system ``urn:huren:id:HIS``). It cancels it now, sent exactly as before. The
    new key is re-systemed to the application's (``_names_of_sender``), the old-key check (``_this_fillers``) sees
    ``urn:huren:id:HIS`` != the application's system and refuses the adoption, and ``_claimed`` then refuses the
    cancel (AE 205 at SCH-2, "send SCH-2 as the booking was sent" -- it was). The slot stays booked."""
    eng, client = _reopened(named_store)
    try:
        (old,) = _all(client, "BK-ON")
        (ack,) = send(eng, siu("ON2", "S15", _with(sch("ON"), "ON", "BK-ON^HIS"), OTHER))
        found = _all(client, "BK-ON")
        assert ack_code_of(ack) == "AA", (_text(ack), found)
        (appt,) = found
        assert appt["id"] == old["id"] and appt["status"] == "cancelled", appt
    finally:
        eng.close()


def test_a_reschedule_of_a_booking_stored_before_with_the_senders_oid_is_applied(named_store: Path) -> None:
    """FINDING (MED-HIGH, introduced). As above with the sender's OID: MSH-3 ``HIS^<OID>^ISO``, SCH-2
    ``BK-OO^^<OID>^ISO`` both times; the S13 is refused, the visit keeps its old time."""
    eng, client = _reopened(named_store)
    try:
        (old,) = _all(client, "BK-OO")
        msg = siu("OO2", "S13", _with(sch("OO", timing="^^^20261206100000"), "OO", f"BK-OO^^{OID}^ISO"), OTHER)
        (ack,) = send(eng, _app(msg, f"HIS^{OID}^ISO"))
        found = _all(client, "BK-OO")
        assert ack_code_of(ack) == "AA", (_text(ack), found)
        (appt,) = found
        assert appt["id"] == old["id"] and appt["start"] == "2026-12-06T10:00:00+08:00", appt
    finally:
        eng.close()


# --- the same number of one person in a namespace of another kind: refused, even at another institution --------


def test_another_institutions_booking_does_not_refuse_this_ones_nor_name_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """FINDING (HIGH: wrong refusal + the ERR-8 names another institution's booking). 王建国 has records at FNZYY and
    FNXRMYY (one person by ID number). FNZYY's HIS books BK-XI (SCH-2 without a namespace: system
    ``urn:huren:appointment:FNZYY:HIS``). FNXRMYY's HIS books its own BK-XI with SCH-2 ``BK-XI^RIS``. Ids are made
    per institution (``Context.id_for``), so the two can never be one booking, yet ``_claimed``'s new value-only
    search finds FNZYY's (kind application vs namespace, same person) and refuses FNXRMYY's booking; its ERR-8 tells
    FNXRMYY's staff this person holds a booking at FNZYY (the system names FNZYY)."""
    acks = send(engine, _from(siu("XI1", "S12", sch("XI"), WANG_Z), "HIS", "FNZYY"),
                siu("XI2", "S12", _with(sch("XI", timing="^^^20261205140000"), "XI", "BK-XI^RIS"), WANG_X))
    assert ack_code_of(acks[0]) == "AA", _text(acks[0])
    assert not any("FNZYY" in e for e in _errs(acks[1])), _errs(acks[1])
    assert ack_code_of(acks[1]) == "AA", (_text(acks[1]), _all(fhir, "BK-XI"))


def test_one_institutions_booking_kept_when_another_refused(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: in the above, FNZYY's booking is never altered (08:30, WANG at FNZYY)."""
    send(engine, _from(siu("XJ1", "S12", sch("XJ"), WANG_Z), "HIS", "FNZYY"),
         siu("XJ2", "S12", _with(sch("XJ", timing="^^^20261205140000"), "XJ", "BK-XJ^RIS"), WANG_X))
    assert any(a.get("start") == "2026-12-05T08:30:00+08:00" for a in _booked(fhir, "BK-XJ")), _all(fhir, "BK-XJ")


def test_another_application_relaying_the_his_id_with_its_namespace_is_the_same_booking(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """FINDING (MED, introduced; sched25 accepted it as one booking). The HIS books BK-RL sending ``BK-RL^HIS``;
    the institution's interface engine (MSH-3 ``ESB``) relays the HIS's cancel with the same SCH-2 ``BK-RL^HIS``
    (EI-2: HIS assigned it). One assigning authority, one id: before schedfix25 both were ``urn:huren:id:HIS``, one
    Appointment, cancelled. Now the HIS's is re-systemed to the application's and the relay's is not: refused (AE)
    and the slot stays booked, the ERR telling the sender to send SCH-2 as it was sent (it was)."""
    acks = send(engine, siu("RL1", "S12", _with(sch("RL"), "RL", "BK-RL^HIS"), PID),
                _app(siu("RL2", "S15", _with(sch("RL"), "RL", "BK-RL^HIS"), PID), "ESB"))
    assert ack_code_of(acks[0]) == "AA", _text(acks[0])
    assert ack_code_of(acks[1]) == "AA", (_text(acks[1]), _all(fhir, "BK-RL"))
    (appt,) = _all(fhir, "BK-RL")
    assert appt["status"] == "cancelled", appt


def test_a_pipelined_cancel_in_a_namespace_that_may_be_the_fillers_is_not_a_cancelled_twin(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard (the schedfix25 case pipelined: both in one ingest batch, the S12 not yet stored when the S15 is asked).
    S12 ``BK-PQ^^<OID>^ISO`` (MSH-3 names no OID), S15 ``BK-PQ``: a refusal or one cancelled Appointment, never an
    AA leaving the booking booked beside a cancelled twin."""
    acks = send(engine, siu("PQ1", "S12", _with(sch("PQ"), "PQ", f"BK-PQ^^{OID}^ISO"), PID), siu("PQ2", "S15", sch("PQ"), PID))
    assert ack_code_of(acks[0]) == "AA", _text(acks[0])
    found = _all(fhir, "BK-PQ")
    assert not (ack_code_of(acks[1]) == "AA" and [a for a in found if a.get("status") == "booked"]), \
        ([_text(a) for a in acks], found)


def test_two_fillers_in_namespaces_of_one_kind_are_two_bookings(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: SCH-2 ``BK-NN^LIS`` and ``BK-NN^RIS`` for one patient from one HIS: two namespaces of one kind, two
    fillers -- two Appointments, neither refused, neither rewritten."""
    acks = send(engine, siu("NN1", "S12", _with(sch("NN"), "NN", "BK-NN^LIS"), PID),
                siu("NN2", "S12", _with(sch("NN", timing="^^^20261205140000"), "NN", "BK-NN^RIS"), PID))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    assert sorted(a["start"] for a in _booked(fhir, "BK-NN")) == ["2026-12-05T08:30:00+08:00",
                                                                  "2026-12-05T14:00:00+08:00"]


def test_the_senders_namespace_keeps_the_booking_searchable_as_sent(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """FINDING (LOW, introduced). SCH-2 ``BK-SS^HIS`` from HIS is stored with system
    ``urn:huren:appointment:FNXRMYY:HIS``; a FHIR client searching the identifier the message stated
    (``urn:huren:id:HIS|BK-SS``, as every other EI-2 is made) finds nothing."""
    (ack,) = send(engine, siu("SS1", "S12", _with(sch("SS"), "SS", "BK-SS^HIS"), PID))
    assert ack_code_of(ack) == "AA", _text(ack)
    # (the EI-2 under the sending institution since codedoc38: ``urn:huren:id:HIS`` is every hospital's HIS)
    bundle = fhir.get("/fhir/Appointment", params={"identifier": "urn:huren:id:FNXRMYY:HIS|BK-SS"}).json()
    assert bundle.get("entry"), bundle


# --- merge chains -----------------------------------------------------------------------------------------------


def test_a_late_message_under_the_merged_away_record_it_was_booked_under_files_it_under_the_kept_one(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """FINDING (MED, left -- not in schedfix25's list: it names only bookings "no later message mentions"). Booked
    under ZY24R; A40 ZY24R -> ZY20S; a late S14 under ZY24R, which the booking is stored under: ``_rebooked`` returns
    at once (same record) and the booking stays filed under a record merged away, though a message named it."""
    acks = send(engine, siu("LM1", "S12", sch("LM"), OTHER), _a40("LM40", PID, "ZY24R"),
                siu("LM2", "S14", sch("LM", timing="^^^20261207100000"), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, [_text(a) for a in acks]
    (appt,) = _all(fhir, "BK-LM")
    assert appt["participant"][0]["actor"]["reference"] == f"Patient/{_patient_id(fhir, 'ZY20S')}", appt


def test_after_two_merges_a_message_under_the_kept_record_moves_the_booking_there(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: booked under ZY24R, A40 ZY24R -> ZY20S, A40 ZY20S -> ZY25T, an S14 under ZY25T: updated, filed under
    ZY25T, one Appointment."""
    acks = send(engine, siu("KK1", "S12", sch("KK"), OTHER), siu("KK0", "S12", sch("KZ"), THIRD),
                _a40("KK40", PID, "ZY24R"), _a40("KK41", THIRD, "ZY20S"),
                siu("KK2", "S14", sch("KK", timing="^^^20261207100000"), THIRD))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 5, [_text(a) for a in acks]
    (appt,) = _all(fhir, "BK-KK")
    assert appt["participant"][0]["actor"]["reference"] == f"Patient/{_patient_id(fhir, 'ZY25T')}", appt
    assert appt["start"] == "2026-12-07T10:00:00+08:00", appt


# --- the value-only search reads one page (schedfix25's "left") -------------------------------------------------


@pytest.mark.parametrize("where", ["first", "last"])
def test_a_cancel_is_not_lost_when_many_fillers_share_the_number(engine: Engine, fhir: TestClient, where: str) -> None:  # noqa: F811
    """FINDING if it fails (HIGH, left by schedfix25 as "reads one page"). The HIS books BK-PG for ZY20S with its OID
    (MSH-3 names none); 55 other applications of the institution each book their own BK-PG for ZY24R (a short
    sequential number many fillers share). The HIS's cancel ``BK-PG`` (no namespace): one cancelled booking or a
    refusal -- never an AA leaving ZY20S's booking booked beside a cancelled twin."""
    mine = siu("PG0", "S12", _with(sch("PG"), "PG", f"BK-PG^^{OID}^ISO"), PID)
    others = [_app(siu(f"PG{i}", "S12", sch("PG", timing="^^^20261205140000"), OTHER), f"APP{i}") for i in range(1, 56)]
    first = [mine, *others] if where == "first" else [*others, mine]
    acks = send(engine, *first)
    assert all(ack_code_of(a) == "AA" for a in acks), [_text(a) for a in acks if ack_code_of(a) != "AA"][:2]
    (ack,) = send(engine, siu("PGX", "S15", sch("PG"), PID))
    zy20s = f"Patient/{_patient_id(fhir, 'ZY20S')}"
    bundle = fhir.get("/fhir/Appointment", params={"identifier": "BK-PG", "_count": "200"}).json()
    every = [e["resource"] for e in bundle.get("entry", ())]
    assert len(every) >= 56, len(every)  # every booking read back, so the assertion below can fail
    found = [a for a in every if a["participant"][0]["actor"]["reference"] == zy20s]
    assert found, every
    assert not (ack_code_of(ack) == "AA" and [a for a in found if a.get("status") == "booked"]), (_text(ack), found)
