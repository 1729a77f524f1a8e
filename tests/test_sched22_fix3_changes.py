"""schedfix22c guards: an A found by who it names (no entry under its set id) keeps, as a U does,
what its empty fields do not state -- and takes what they do state. Real HL7 bytes over MLLP, the
real store, read back through /fhir."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_sched22_rv2_probes import T, _status
from tests.test_sched22_rv_probes import AN, AT, D01, D05, _actors, _roles, _run, _show, _text


def test_sched22_fix3_a_under_new_set_id_with_a_status_takes_it_and_keeps_the_role(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1||D01|AT||<t>||||||Pending``; ``AIP|2|A|D01|||<t>||||||Booked`` (AIP-4 empty, AIP-12
    stated): he is accepted, still attending, listed once."""
    appt, (_, ack) = _run(engine, fhir, "XA", [f"AIP|1||{D01}|{AT}||{T}||||||Pending"], [f"AIP|2|A|{D01}|||{T}||||||Booked"])
    (doc,) = _actors(appt, "Practitioner")
    assert (doc["status"], _roles(doc)) == ("accepted", ["AT"]), (_show(appt["participant"]), _text(ack))


def test_sched22_fix3_a_under_new_set_id_of_a_declined_doctor_re_books_him(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """D01 declined (``AIP|1|D|D01``); ``AIP|3|A|D01|||<t>`` (AIP-12 empty) adds him back: accepted,
    his attending role kept (an A's empty status keeps no declined)."""
    appt, acks = _run(engine, fhir, "XB", [f"AIP|1||{D01}|{AT}||{T}", f"AIP|2||{D05}|{AN}||{T}"],
                      [f"AIP|1|D|{D01}"], [f"AIP|3|A|{D01}|||{T}"])
    assert _status(appt, "王明") == ["accepted"], (_show(appt["participant"]), [_text(a) for a in acks])
    assert [_roles(p) for p in _actors(appt, "Practitioner") if p["actor"]["display"] == "王明"] == [["AT"]], (
        _show(appt["participant"]))
