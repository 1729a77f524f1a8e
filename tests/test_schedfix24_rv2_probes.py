"""rvsched24b: second review of the SIU work of the twenty-fourth round (sched24 + schedfix24, 01b0c95).
Real HL7 over MLLP (``send``), the real store and patient index, read back through /fhir. Tests marked
FINDING fail at 01b0c95 on purpose (not xfailed); the others are guards that pass."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convmend20_probes import PID, siu
from tests.test_ingest_durability import err_fields
from tests.test_sched21_status_times import sch
from tests.test_sched22_rv_probes import _text
from tests.test_schedfix24_rv_probes import OTHER, _all, _booked, _sch


def _from(msg: bytes, app: str = "HIS", facility: str = "FNXRMYY") -> bytes:
    return msg.replace(b"|HIS|FNXRMYY|", f"|{app}|{facility}|".encode(), 1)


def test_two_applications_numbering_alike_for_one_patient_are_two_bookings(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """FINDING. schedfix24 says a HIS and a RIS of one institution numbering alike are two fillers (two
    systems). For two patients they are two bookings; for ONE patient the RIS's S12 BK-2A lands on the
    HIS's Appointment (the key is SCH-2's value under the patient): the HIS booking at 08:30 is moved to
    the RIS's 14:00 and its FILL identifier re-systemed to the RIS's -- one visit erased by another's."""
    acks = send(engine, siu("H1", "S12", sch("2A"), PID),
                _from(siu("H2", "S12", sch("2A", timing="^^^20261205140000"), PID), "RIS"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    starts = sorted(a.get("start") for a in _booked(fhir, "BK-2A"))
    assert starts == ["2026-12-05T08:30:00+08:00", "2026-12-05T14:00:00+08:00"], _all(fhir, "BK-2A")


def test_two_facilities_numbering_alike_for_one_patient_are_two_bookings(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard. Unlike the above, across two facilities (MSH-4 FNXRMYY, FNZYY), the patient's MRN from
    the same assigning authority: two bookings (AA, AA)."""
    acks = send(engine, siu("F1", "S12", sch("2F"), PID),
                _from(siu("F2", "S12", sch("2F", timing="^^^20261205140000"), PID), "HIS", "FNZYY"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    assert len(_booked(fhir, "BK-2F")) == 2, _all(fhir, "BK-2F")


def test_a_cancel_after_an_mrn_change_is_not_lost(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """FINDING (left; schedfix24 refuses rather than doubles). ADT^A47 changes ZY24R to ZY24S; the filler
    then cancels the booking (S15) under the NEW MRN, as it must. 01b0c95: AE at PID-3, and the booking
    stays ``booked`` with no way for the sender to cancel it (every later SIU is under the new MRN)."""
    a47 = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091600||ADT^A47^ADT_A30|X47|P|2.5.1\r"
           "EVN|A47|20261201091600\r" + OTHER.replace("ZY24R", "ZY24S") + "\rMRG|ZY24R^^^FNXRMYY^MR\r").encode()
    acks = send(engine, siu("X1", "S12", sch("XC"), OTHER), a47,
                siu("X2", "S15", sch("XC"), OTHER.replace("ZY24R", "ZY24S")))
    assert ack_code_of(acks[1]) == "AA", _text(acks[1])
    assert _booked(fhir, "BK-XC") == [], ([_text(a) for a in acks], _all(fhir, "BK-XC"))


def test_the_refusal_err_names_pid_3_and_code_205(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: another patient's S12 under a booked SCH-2: AE, ERR at PID^1^3 with 205 (duplicate key),
    the text naming the filler id, and no second Appointment."""
    acks = send(engine, siu("E1", "S12", sch("ER"), PID), siu("E2", "S12", sch("ER"), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA", "AE"], [_text(a) for a in acks]
    errs = [e for e in err_fields(acks[1]) if e[2] == "PID^1^3"]
    assert errs and "205" in errs[0][3] and "'BK-ER' (FILL)" in errs[0][8], _text(acks[1])
    assert len(_all(fhir, "BK-ER")) == 1


def test_placer_only_messages_for_two_patients_are_two_bookings(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: SCH-1 alone (no filler id yet) is not checked: two patients under one placer number: AA, AA."""
    acks = send(engine, siu("L1", "S12", _sch("AP-PO", ""), PID),
                siu("L2", "S12", _sch("AP-PO", "", "^^^20261205093000"), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    assert len(_booked(fhir, "AP-PO")) == 2


def test_a_resent_s12_after_a_network_failure_is_one_booking(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: the S12 re-sent under a new control id (the sender never got the ACK): AA twice, one booking."""
    acks = send(engine, siu("RS1", "S12", sch("RS"), PID), siu("RS2", "S12", sch("RS"), PID))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    (appt,) = _all(fhir, "BK-RS")
    assert sorted(i["value"] for i in appt["identifier"]) == ["AP-RS", "BK-RS"]


def test_a_namespace_sent_is_kept_and_another_namespace_is_another_booking(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: SCH-2 ``BK-NS^RIS`` (EI-2 namespace) keeps it; another patient's ``BK-NS^PACS`` is AA."""
    acks = send(engine, siu("NS1", "S12", _sch("AP-NS", "BK-NS^RIS"), PID),
                siu("NS2", "S12", _sch("AP-NS2", "BK-NS^PACS", "^^^20261205093000"), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    # (the FILL identifiers, the bookings' keys: SCH-2 as sent is kept beside each, untyped -- old37)
    fill = sorted(i.get("system", "") for a in _all(fhir, "BK-NS") for i in a["identifier"]
                  if i["value"] == "BK-NS" and "coding" in (i.get("type") or {}))
    assert len(fill) == 2 and "urn:huren:appointment:FNXRMYY:HIS" not in fill, fill


def test_odd_characters_in_the_filler_id_are_no_500(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: SCH-2 holding a comma, a dollar and an escaped bar/backslash (searched as a token): the
    booking is taken (AA), another patient's different number beside it is not refused."""
    acks = send(engine, siu("OC1", "S12", _sch("AP-OC", "OC,1$\\F\\2\\E\\3"), PID),
                siu("OC2", "S12", _sch("AP-OC2", "OC", "^^^20261205093000"), OTHER),
                siu("OC3", "S12", _sch("AP-OC3", "1$", "^^^20261205093000"), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"], [_text(a) for a in acks]


def test_a_refused_booking_writes_nothing_of_the_other_patient(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: another (new) patient's S12 refused under a booked SCH-2 leaves no Patient record of them
    and no Appointment: the AE is the whole answer."""
    acks = send(engine, siu("PW1", "S12", sch("PW"), PID),
                siu("PW2", "S12", sch("PW"), OTHER.replace("ZY24R", "ZY24W")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AE"], [_text(a) for a in acks]
    patients = fhir.get("/fhir/Patient", params={"identifier": "ZY24W"}).json().get("entry", ())
    assert list(patients) == [] and len(_all(fhir, "BK-PW")) == 1


def test_a_sending_application_with_spaces_and_han_is_a_valid_system(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: MSH-3 ``影像 系统`` gives an URN without a space (percent-encoded), no 500."""
    (ack,) = send(engine, _from(siu("SP1", "S12", sch("SP"), PID), "影像 系统"))
    assert ack_code_of(ack) == "AA", _text(ack)
    (appt,) = _all(fhir, "BK-SP")
    systems = {i["system"] for i in appt["identifier"]}
    assert len(systems) == 1 and " " not in next(iter(systems)), systems


def test_an_siu_without_pid_is_refused_at_pid(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: an SIU with no PID is refused (AE, ERR at PID) and stores no Appointment (no system-less ids)."""
    (ack,) = send(engine, siu("NP1", "S12", sch("NPD"), "RGS|1|A", "AIL|1||US^201^1^FNXRMYY|||20261205083000|0|S|30|MIN"))
    assert ack_code_of(ack) == "AE" and [e for e in err_fields(ack) if e[2].startswith("PID")], _text(ack)
    assert _all(fhir, "BK-NPD") == []


def test_a_tq1_length_beside_resources_is_not_said_against_an_empty_sch_9(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """FINDING (LOW) if it fails. No SCH-9/10/11, no TQ1-7, TQ1-6 ``5^d`` (a course), AIS 08:30 15 min and AIP 08:30
    60 min: the end comes from the resources (09:30); nothing may say it was "taken from the appointment
    duration SCH-9/10" -- SCH-9 is empty."""
    (ack,) = send(engine, siu("TQ1", "S12", sch("TQR", duration="|", timing=""), "TQ1|1|||||5^d", PID, "RGS|1|A",
                              "AIS|1||US1^腹部B超^L|20261205083000|||15|MIN",
                              "AIP|1||D01^王^明^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000|||60|MIN"))
    assert ack_code_of(ack) in ("AA", "AE"), _text(ack)
    (appt,) = _all(fhir, "BK-TQR")
    assert appt.get("end") == "2026-12-05T09:30:00+08:00", appt
    assert not [e for e in err_fields(ack) if e[2] == "SCH^1^9"], _text(ack)


@pytest.mark.parametrize("filler", ["CM,1", "CM\\E\\2", "CM\\F\\3", "CM$4"])
def test_another_patient_under_a_filler_id_with_a_comma_is_refused(engine: Engine, fhir: TestClient, filler: str) -> None:  # noqa: F811
    """Filler ids with a comma, a backslash (``\\E\\``), a bar (``\\F\\``) or a dollar are searched exactly (FHIR token
    escaping): another patient's S12 under A's booked number is refused like any other, not a second booking
    for the one slot. FINDING (HIGH) for the comma: ``_claimed`` passes ``system|CM,1`` to the search, which
    reads the comma as OR (``system|CM`` or ``1``), finds nothing, and B's S12 is a second booking (AA)."""
    acks = send(engine, siu("CA", "S12", _sch("AP-CA", filler), PID), siu("CB", "S12", _sch("AP-CB", filler), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA", "AE"], (filler, [_text(a) for a in acks])
    assert len([a for a in fhir.get("/fhir/Appointment").json().get("entry", ())
                if a["resource"].get("status") == "booked"]) == 1


def test_a_first_booking_whose_filler_id_holds_a_bar_is_taken(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """FINDING (MED, new at 01b0c95; base: AA). SCH-2 ``CM\\F\\3`` (an escaped ``|``, value ``CM|3``): ``_claimed``
    searches ``system|CM|3``, the search refuses it as no token (400), and the patient's own first booking is
    AE 207 "Application internal error" with no ERR location -- a legitimate S12 refused."""
    (ack,) = send(engine, siu("BAR1", "S12", _sch("AP-BAR", "CM\\F\\3"), PID))
    assert ack_code_of(ack) == "AA", _text(ack)
    assert [a for a in fhir.get("/fhir/Appointment").json().get("entry", ()) if a["resource"].get("status") == "booked"]
