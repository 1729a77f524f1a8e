"""schedfix22b: guards of the second review's mend (SIU changes). Real HL7 bytes over MLLP
(``send``), the real store, read back through /fhir."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_convert11_thinner import fhir  # noqa: F401  (the reader fixture)
from tests.test_sched22_rv_probes import AT, D01, D05, _actors, _run, _show, _text

T = "20261205083000"
R1, R2 = "US^201^1^FNXRMYY", "US^202^1^FNXRMYY"


def _status(appt: dict, display: str) -> list[str]:
    return [p["status"] for p in _actors(appt, "Practitioner") if p["actor"]["display"] == display]


def test_sched22_fix2_thinner_ail_u_of_two_rooms_keeps_both_statuses(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """AIL-3 repeats (two rooms, Pending); ``AIL|1|U|R2~R1|||<t2>`` (AIL-12 empty): both stay tentative."""
    appt, (_, ack) = _run(engine, fhir, "WA", [f"AIP|1||{D01}|{AT}||{T}", f"AIL|1||{R1}~{R2}|||{T}||||||Pending"],
                          [f"AIL|1|U|{R2}~{R1}|||20261205090000"])
    rooms = _actors(appt, "Location")
    assert len(rooms) == 2 and {p["status"] for p in rooms} == {"tentative"}, (_show(appt["participant"]), _text(ack))


def test_sched22_fix2_u_naming_one_person_twice_keeps_the_list_and_says_so(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|U|D01~D01|||<t2>`` over D01~D05: the pairing is not one to one -- kept, said at AIP-1."""
    appt, (_, ack) = _run(engine, fhir, "WB", [f"AIP|1||{D01}~{D05}|{AT}||{T}||||||Pending"],
                          [f"AIP|1|U|{D01}~{D01}|||20261205090000"])
    assert (_status(appt, "王明"), _status(appt, "孙力")) == (["tentative"], ["tentative"]), _show(appt["participant"])
    assert "AIP^1^1" in _text(ack), _text(ack)


def test_sched22_fix2_status_only_u_re_books_a_declined_doctor(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """D01 declined (``AIP|1|D``); ``AIP|1|U||||<t>||||||Booked``: a stated status changes it."""
    appt, acks = _run(engine, fhir, "WC", [f"AIP|1||{D01}|{AT}||{T}"], [f"AIP|1|D|{D01}"],
                      [f"AIP|1|U||||{T}||||||Booked"])
    assert _status(appt, "王明") == ["accepted"], (_show(appt["participant"]), [_text(a) for a in acks])


def test_sched22_fix2_a_re_sent_with_no_status_keeps_the_stored_one(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """D01 tentative; ``AIP|1|A|D01|AT||<t>`` (AIP-12 empty: no change) leaves him tentative, unsaid."""
    appt, (_, ack) = _run(engine, fhir, "WD", [f"AIP|1||{D01}|{AT}||{T}||||||Pending"], [f"AIP|1|A|{D01}|{AT}||{T}"])
    assert _status(appt, "王明") == ["tentative"], (_show(appt["participant"]), _text(ack))
    assert "AIP^1" not in _text(ack), _text(ack)


def test_sched22_fix2_unknown_status_code_in_a_thinner_u_changes_no_status(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """D01 tentative; ``AIP|1|U|D01|||<t2>||||||Foo`` (a code table 0278 does not name: said, not
    taken): he stays tentative -- the unknown code is no status, not ``accepted``."""
    appt, (_, ack) = _run(engine, fhir, "WE", [f"AIP|1||{D01}|{AT}||{T}||||||Pending"],
                          [f"AIP|1|U|{D01}|||20261205090000||||||Foo"])
    assert _status(appt, "王明") == ["tentative"], (_show(appt["participant"]), _text(ack))
    assert "AIP^1^12" in _text(ack), _text(ack)
