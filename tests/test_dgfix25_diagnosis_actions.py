"""dgfix25: DG1-21 (diagnosis action code, table 0206), DG1-20's one key rule (per sender's id and stay, the
visit-less one found), a billing visit under another record -- real bytes through POST /hl7v2, read back
over /fhir on the real store."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.test_convert_families import PID, message, msh
from tests.test_dg24_encounter_diagnosis import codes, encounter
from tests.test_moneyfix24_planned import county as county  # noqa: F401  (the fixture)
from tests.test_moneyfix24_rv2_split_hl7 import PV1, visit

Z511 = "Z51.1^肿瘤化学治疗疗程^I10"
C341 = "C34.1^肺癌^I10"
J189 = "J18.9^肺炎^I10"
PV1_BILL = "PV1|1|I|病区^9^9^FNXRMYY||||||||||||||||{visit}"
STAY = ("V-1", "20260310080000", "20260312090000")


def _ack(http: TestClient, raw: bytes) -> str:
    r = http.post("/hl7v2", content=raw, headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200, r.text
    return r.content.decode()


def _conditions(http: TestClient, **params: str) -> list[dict[str, Any]]:
    found = http.get("/fhir/Condition", params=params).json()
    return [e["resource"] for e in found.get("entry", ())]


def _p12(ctl: str, *dg1s: str, visit_number: str = "V-1", pid: str = PID) -> bytes:
    return message(msh("BAR^P12^BAR_P12", ctl), "EVN|P12|20260313", pid, PV1_BILL.format(visit=visit_number), *dg1s)


def _verification(cond: dict[str, Any]) -> str | None:
    return (cond.get("verificationStatus") or {}).get("coding", [{}])[0].get("code")


def test_p12_delete_removes_the_stored_entry_and_marks_the_condition_entered_in_error(county: Any) -> None:
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    ack = _ack(http, _p12("D1", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AA" in ack, ack
    enc = encounter(http, "V-1")
    assert codes(http, enc) == [("C34.1", 2, "DD")], enc
    z51 = [c for c in _conditions(http, code="Z51.1")]
    assert len(z51) == 1 and _verification(z51[0]) == "entered-in-error", z51
    assert "clinicalStatus" not in z51[0]
    c34 = _conditions(http, code="C34.1")
    assert len(c34) == 1 and _verification(c34[0]) is None, c34


def test_adt_a08_delete_too_and_the_other_dg1s_of_the_message_still_listed(county: Any) -> None:
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1")
    a08 = message(msh("ADT^A08^ADT_A01", "A2"), "EVN|A08|20260312100000", PID,
                  PV1.format(visit="V-1", start=STAY[1], end=STAY[2]),
                  f"DG1|1||{Z511}|||F|||||||||1||||||D", f"DG1|2||{C341}|||F|||||||||1||||||A")
    assert "MSA|AA" in _ack(http, a08)
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 1, "DD")]


def test_no_change_x_writes_nothing_of_that_diagnosis(county: Any) -> None:
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{C341}|||F|||||||||1")
    before = encounter(http, "V-1")
    ack = _ack(http, _p12("X1", f"DG1|1||{J189}|||F|||||||||1||||||X", f"DG1|2||{C341}|||A|||||||||5||||||X"))
    assert "MSA|AA" in ack, ack
    assert encounter(http, "V-1")["meta"]["versionId"] == before["meta"]["versionId"]
    assert _conditions(http, code="J18.9") == []
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 1, "DD")]


def test_an_unknown_action_code_is_refused_at_dg1_21(county: Any) -> None:
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{C341}|||F|||||||||1")
    before = encounter(http, "V-1")
    ack = _ack(http, _p12("Q1", f"DG1|1||{Z511}|||F|||||||||1||||||Q"))
    assert "MSA|AE" in ack and "DG1^1^21" in ack and "0206" in ack, ack
    assert encounter(http, "V-1") == before
    assert _conditions(http, code="Z51.1") == []


def test_dg1_20_the_visit_less_one_is_taken_by_the_first_stay_only(county: Any) -> None:
    """A28 names D-7 with no visit; V-1 names D-7 (takes that Condition); V-2 names D-7 (its own)."""
    _, http, _ = county
    assert "MSA|AA" in _ack(http, message(msh("ADT^A28^ADT_A05", "F1"), "EVN|A28|20260309090000", PID,
                                          f"DG1|1||{C341}|||F|||||||||1|||||D-7"))
    visit(http, "F2", *STAY, f"DG1|1||{C341}|||F|||||||||1|||||D-7")
    visit(http, "F3", "V-2", "20260320080000", "20260322090000", f"DG1|1||{J189}|||F|||||||||1|||||D-7")
    found = _conditions(http, identifier="D-7")
    assert len(found) == 2, found
    v1, v2 = (encounter(http, n)["id"] for n in ("V-1", "V-2"))
    assert sorted((c["code"]["coding"][0]["code"], c["encounter"]["reference"]) for c in found) == [
        ("C34.1", f"Encounter/{v1}"), ("J18.9", f"Encounter/{v2}")]


def test_dg1_20_without_a_visit_naming_two_stays_diagnoses_is_refused(county: Any) -> None:
    _, http, _ = county
    visit(http, "G1", *STAY, f"DG1|1||{C341}|||F|||||||||1|||||D-7")
    visit(http, "G2", "V-2", "20260320080000", "20260322090000", f"DG1|1||{J189}|||F|||||||||1|||||D-7")
    ack = _ack(http, message(msh("ADT^A31^ADT_A05", "G3"), "EVN|A31|20260323090000", PID,
                             "DG1|1||C34.9^肺癌^I10|||F|||||||||1|||||D-7"))
    assert "MSA|AE" in ack and "DG1^1^20" in ack, ack
    found = _conditions(http, identifier="D-7")
    assert sorted(c["code"]["coding"][0]["code"] for c in found) == ["C34.1", "J18.9"], found


def test_billing_visit_under_a_second_record_in_use_is_left_with_a_warning(county: Any) -> None:
    """Same person (one ID number), two records both in use: the visit of M0001 is left as it is -- said in
    the ACK (a warning ERR), not silently."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{C341}|||F|||||||||2")
    before = encounter(http, "V-1")
    other = PID.replace("M0001^^^FNXRMYY^MR", "M0002^^^FNXRMYY^MR")
    ack = _ack(http, _p12("B7", f"DG1|1||{Z511}|||F|||||||||1", pid=other))
    assert "MSA|AA" in ack and "ERR|" in ack and "left as it is" in ack, ack
    assert encounter(http, "V-1") == before
