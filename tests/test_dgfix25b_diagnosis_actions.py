"""dgfix25b: DG1-21 (diagnosis action code) read one way in every message type; a D withdraws only a
stored diagnosis it names for sure and never makes a Condition -- real bytes through POST /hl7v2 on the
real store, read back over /fhir."""

from __future__ import annotations

from typing import Any

from tests.test_convert_families import PID, message, msh
from tests.test_dg24_encounter_diagnosis import codes, encounter
from tests.test_dgfix25b_rv_probes import C341, J189, ORDER, PV1_BILL, STAY, Z511, _ack, _conditions, _p12
from tests.test_moneyfix24_planned import county as county  # noqa: F401  (the fixture)
from tests.test_moneyfix24_rv2_split_hl7 import visit


def _status(c: dict[str, Any]) -> str | None:
    return ((c.get("verificationStatus") or {}).get("coding") or [{}])[0].get("code")


def test_d_naming_nothing_stored_is_a_warning_at_dg1_21(county: Any) -> None:
    """A D of a diagnosis the stay never had: AA with a warning ERR at DG1-21, nothing written of it, the
    stay's own diagnosis untouched."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{C341}|||F|||||||||1")
    ack = _ack(http, _p12("W1", f"DG1|1||{J189}|||F|||||||||1||||||D"))
    assert "MSA|AA" in ack and "DG1^1^21" in ack and "|W|" in ack, ack
    assert _conditions(http, code="J18.9") == []
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 1, "DD")]


def test_d_by_dg1_20_not_stored_writes_nothing(county: Any) -> None:
    """A D naming a DG1-20 the stay does not hold: a warning, no Condition of that id appears."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{C341}|||F|||||||||1|||||D-3")
    ack = _ack(http, _p12("W2", f"DG1|1||{Z511}|||F|||||||||1|||||D-9|D"))
    assert "MSA|AA" in ack and "DG1^1^21" in ack, ack
    assert _conditions(http, identifier="D-9") == []
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 1, "DD")]


def test_d_by_code_reaches_the_stays_one_condition_of_that_code(county: Any) -> None:
    """Z51.1 stored with DG1-20 D-2; a D by code (no DG1-20): the stay's one Z51.1 is withdrawn -- its
    entry leaves the visit, it is marked entered-in-error, and no second Z51.1 is made."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1|||||D-2", f"DG1|2||{C341}|||F|||||||||2|||||D-3")
    ack = _ack(http, _p12("W3", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AA" in ack and "MSA|AA" in ack and "ERR" not in ack, ack
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 2, "DD")]
    z = _conditions(http, code="Z51.1")
    assert len(z) == 1 and _status(z[0]) == "entered-in-error", z


def test_d_by_code_with_two_of_that_code_on_the_stay_is_refused(county: Any) -> None:
    """Two Z51.1 on the stay (D-2, D-4): a D by code does not say which -> AE at DG1-21, nothing changed."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1|||||D-2", f"DG1|2||{Z511}|||F|||||||||2|||||D-4")
    ack = _ack(http, _p12("W4", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AE" in ack and "DG1^1^21" in ack, ack
    assert sorted(codes(http, encounter(http, "V-1"))) == [("Z51.1", 1, "DD"), ("Z51.1", 2, "DD")]
    assert all(_status(c) != "entered-in-error" for c in _conditions(http, code="Z51.1"))


def test_a_then_d_of_one_diagnosis_in_one_message_the_d_stands(county: Any) -> None:
    """The last statement wins, entry and Condition alike: A then D of the stored Z51.1 withdraws it."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    ack = _ack(http, _p12("W5", f"DG1|1||{Z511}|||F|||||||||1||||||A", f"DG1|2||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AA" in ack, ack
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 2, "DD")]
    z = _conditions(http, code="Z51.1")
    assert len(z) == 1 and _status(z[0]) == "entered-in-error", z


def test_d_by_code_and_a_by_its_dg1_20_in_one_message_is_refused(county: Any) -> None:
    """A D by code reaching the stored D-2 while the same message states D-2 (A): not the same key, so not
    ordered -- which stands is not said: AE at DG1-21."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1|||||D-2")
    ack = _ack(http, _p12("W6", f"DG1|1||{Z511}|||F|||||||||1||||||D", f"DG1|2||{Z511}|||F|||||||||2|||||D-2|A"))
    assert "MSA|AE" in ack and "DG1^1^21" in ack, ack
    assert codes(http, encounter(http, "V-1")) == [("Z51.1", 1, "DD")]


def test_orm_d_withdraws_the_stored_diagnosis_and_names_no_reason(county: Any) -> None:
    """An order's DG1 with D, read as a BAR's: the visit's stored C34.1 leaves it, the Condition is
    entered-in-error, and the order does not give it as its reason."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{C341}|||F|||||||||1", f"DG1|2||{Z511}|||F|||||||||2")
    orm = message(msh("ORM^O01^ORM_O01", "W7"), PID, PV1_BILL.format(visit="V-1"), *ORDER,
                  f"DG1|1||{C341}|||W|||||||||||||||D")
    ack = _ack(http, orm)
    assert "MSA|AA" in ack, ack
    assert codes(http, encounter(http, "V-1")) == [("Z51.1", 2, "DD")]
    c = _conditions(http, code="C34.1")
    assert len(c) == 1 and _status(c[0]) == "entered-in-error", c
    orders = [e["resource"] for e in http.get("/fhir/ServiceRequest").json().get("entry", ())]
    assert orders and all(not o.get("reasonReference") for o in orders), orders


def test_orm_x_writes_nothing_of_the_diagnosis(county: Any) -> None:
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{C341}|||F|||||||||1")
    orm = message(msh("ORM^O01^ORM_O01", "W8"), PID, PV1_BILL.format(visit="V-1"), *ORDER,
                  f"DG1|1||{J189}|||W|||||||||||||||X")
    ack = _ack(http, orm)
    assert "MSA|AA" in ack, ack
    assert _conditions(http, code="J18.9") == []
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 1, "DD")]


def test_a_diagnosis_withdrawn_earlier_and_sent_again_is_no_longer_entered_in_error(county: Any) -> None:
    """P12 D withdraws Z51.1; a later P12 adds it again (A): listed again, and its Condition not left
    entered-in-error (the merge kept the stored status, which a DG1 does not state)."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    assert "MSA|AA" in _ack(http, _p12("R1", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    ack = _ack(http, _p12("R2", f"DG1|1||{Z511}|||F|||||||||1||||||A"))
    assert "MSA|AA" in ack, ack
    assert ("Z51.1", 1, "DD") in codes(http, encounter(http, "V-1"))
    z = _conditions(http, code="Z51.1")
    assert len(z) == 1 and _status(z[0]) != "entered-in-error", z
