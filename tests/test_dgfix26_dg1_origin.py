"""dgfix26: whose entered-in-error a Condition's status is -- the writer judged where it is known (a FHIR
client's write is marked hers at the write), and what a DG1-21 D does with a coder's withdrawal. Real bytes
through POST /hl7v2 and real PUTs through /fhir, the real store."""

from __future__ import annotations

from typing import Any

from adapters.convert import his
from tests.test_dg24_encounter_diagnosis import codes, encounter
from tests.test_dgfix25b_rv_probes import C341, STAY, Z511, _ack, _conditions, _p12
from tests.test_lastfix25_rv_dg1 import _status
from tests.test_moneyfix24_planned import county as county  # noqa: F401  (the fixture)
from tests.test_moneyfix24_rv2_split_hl7 import visit

VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def _z(http: Any) -> dict[str, Any]:
    (z,) = _conditions(http, code="Z51.1")
    return z


def _withdrawn(http: Any) -> None:
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    assert "MSA|AA" in _ack(http, _p12("D1", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert his.withdrawn_by_sender(_z(http))


def test_a_client_writing_the_feeds_withdrawal_back_as_read_leaves_it_the_feeds(county: Any) -> None:
    """A client PUTting the Condition back with its status as read (another element edited): still the feed's
    withdrawal, no client mark -- the HIS's re-add lists it live again."""
    _, http, _ = county
    _withdrawn(http)
    z = {k: v for k, v in _z(http).items() if k != "meta"}
    z["note"] = [{"text": "coder looked at it"}]
    assert http.put(f"/fhir/Condition/{z['id']}", json=z).status_code == 200
    stored = _z(http)
    assert his.withdrawn_by_sender(stored) and his.BY_CLIENT not in str(stored["verificationStatus"]), stored
    assert "MSA|AA" in _ack(http, _p12("D2", f"DG1|1||{Z511}|||F|||||||||1||||||A"))
    assert _status(_z(http)) != "entered-in-error"
    assert ("Z51.1", 1, "DD") in codes(http, encounter(http, "V-1"))


def test_a_clients_own_entered_in_error_is_marked_hers_and_a_d_over_it_is_told(county: Any) -> None:
    """A coder's entered-in-error over FHIR is stored with the client mark (the writer known at the write);
    the HIS's D of that diagnosis is AA with a DG1-21 warning that it was withdrawn already."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    z = {k: v for k, v in _z(http).items() if k not in ("meta", "clinicalStatus")}
    z["verificationStatus"] = {"coding": [{"system": VER, "code": "entered-in-error"}]}
    assert http.put(f"/fhir/Condition/{z['id']}", json=z).status_code == 200
    stored = _z(http)
    assert his.BY_CLIENT in str(stored["verificationStatus"]) and not his.withdrawn_by_sender(stored), stored
    ack = _ack(http, _p12("D1", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AA" in ack and "DG1^1^21" in ack and "not by this sender" in ack, ack
    assert _status(_z(http)) == "entered-in-error"
    assert ("Z51.1", 1, "DD") not in codes(http, encounter(http, "V-1"))
