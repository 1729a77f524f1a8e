"""rvdg25b: probes of dgfix25 (DG1-21 action codes, DG1-20 visit-less lookup) -- real bytes through POST
/hl7v2 on the real store, read back over /fhir."""

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
ORDER = ("ORC|NW|ORD-1^HIS|||||||20260311080000", "OBR|1|ORD-1^HIS||GLU^葡萄糖^L|||20260311080000")


def _ack(http: TestClient, raw: bytes) -> str:
    r = http.post("/hl7v2", content=raw, headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200, r.text
    return r.content.decode()


def _conditions(http: TestClient, **params: str) -> list[dict[str, Any]]:
    found = http.get("/fhir/Condition", params=params).json()
    return [e["resource"] for e in found.get("entry", ())]


def _p12(ctl: str, *dg1s: str, visit_number: str = "V-1") -> bytes:
    return message(msh("BAR^P12^BAR_P12", ctl), "EVN|P12|20260313", PID, PV1_BILL.format(visit=visit_number), *dg1s)


def _a08(ctl: str, *dg1s: str, end: str = STAY[2]) -> bytes:
    return message(msh("ADT^A08^ADT_A01", ctl), "EVN|A08|20260312100000", PID,
                   PV1.format(visit="V-1", start=STAY[1], end=end), *dg1s)


def test_x_on_an_a08_keeps_the_stays_diagnosis(county: Any) -> None:
    """DG1-21 X = no change: an A08 restating C34.1 with X (and adding J18.9) must not take C34.1 off the stay."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{C341}|||F|||||||||1")
    ack = _ack(http, _a08("X8", f"DG1|1||{C341}|||F|||||||||1||||||X", f"DG1|2||{J189}|||F|||||||||2"))
    assert "MSA|AA" in ack, ack
    assert ("C34.1", 1, "DD") in codes(http, encounter(http, "V-1"))


def test_d_of_a_diagnosis_never_stored_creates_no_condition(county: Any) -> None:
    """A D for a diagnosis the stay never had: nothing to delete; no new Condition should appear."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{C341}|||F|||||||||1")
    ack = _ack(http, _p12("D9", f"DG1|1||{J189}|||F|||||||||1||||||D"))
    assert "MSA|A" in ack, ack
    assert _conditions(http, code="J18.9") == []


def test_d_by_code_of_a_diagnosis_stored_with_a_dg1_20_is_not_silently_accepted(county: Any) -> None:
    """Z51.1 stored as principal with DG1-20 D-2; the P12 deletes Z51.1 by code (DG1-20 empty). Either the
    stay's Z51.1 leaves the visit, or the message is refused -- never AA with Z51.1 still principal."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1|||||D-2", f"DG1|2||{C341}|||F|||||||||2|||||D-3")
    ack = _ack(http, _p12("D2", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    got = codes(http, encounter(http, "V-1"))
    assert "MSA|AE" in ack or "MSA|AR" in ack or all(c != "Z51.1" for c, _, _ in got), (ack, got)


def test_orm_dg1_delete_does_not_add_the_diagnosis(county: Any) -> None:
    """DG1-21 read 'in every message type': an order's DG1 with D must not list the diagnosis on the visit."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{C341}|||F|||||||||1")
    orm = message(msh("ORM^O01^ORM_O01", "O9"), PID, PV1_BILL.format(visit="V-1"), *ORDER,
                  f"DG1|1||{Z511}|||W|||||||||||||||D")
    ack = _ack(http, orm)
    got = codes(http, encounter(http, "V-1"))
    assert all(c != "Z51.1" for c, _, _ in got), (ack, got)


def test_orm_dg1_unknown_action_is_refused(county: Any) -> None:
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{C341}|||F|||||||||1")
    orm = message(msh("ORM^O01^ORM_O01", "O8"), PID, PV1_BILL.format(visit="V-1"), *ORDER,
                  f"DG1|1||{Z511}|||W|||||||||||||||Q")
    ack = _ack(http, orm)
    assert "MSA|AE" in ack and "DG1^1^21" in ack, ack


def test_visit_less_a31_does_not_strip_the_stays_condition_of_its_encounter(county: Any) -> None:
    """V-1 states D-7 (C34.1); a later A31 (no visit) restates D-7: the one Condition is reached, and must
    stay the stay's (its encounter kept) -- a thinner message must not erase what the stay stated."""
    _, http, _ = county
    visit(http, "F1", *STAY, f"DG1|1||{C341}|||F|||||||||1|||||D-7")
    v1 = encounter(http, "V-1")
    ack = _ack(http, message(msh("ADT^A31^ADT_A05", "F2"), "EVN|A31|20260323090000", PID,
                             f"DG1|1||{C341}|||F|||||||||1|||||D-7"))
    assert "MSA|AA" in ack, ack
    found = _conditions(http, identifier="D-7")
    assert len(found) == 1, found
    assert (found[0].get("encounter") or {}).get("reference") == f"Encounter/{v1['id']}", found[0]
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 1, "DD")]


def test_d_then_a_of_the_same_code_in_one_p12_lists_it(county: Any) -> None:
    """A re-rank sent as D (old rank) then A (new rank) of the same diagnosis: it stays listed at the new rank
    and its Condition is not entered-in-error."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    ack = _ack(http, _p12("DA", f"DG1|1||{Z511}|||F|||||||||1||||||D", f"DG1|2||{Z511}|||F|||||||||2||||||A",
                          f"DG1|3||{C341}|||F|||||||||1||||||U"))
    assert "MSA|AA" in ack, ack
    got = codes(http, encounter(http, "V-1"))
    z = _conditions(http, code="Z51.1")
    status = [(c.get("verificationStatus") or {}).get("coding", [{}])[0].get("code") for c in z]
    assert ("Z51.1", 2, "DD") in got and "entered-in-error" not in status, (got, status)


def test_a08_with_d_still_updates_the_visit(county: Any) -> None:
    """An A08 carrying a D must still update the visit's own fields (discharge time)."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    ack = _ack(http, _a08("A9", f"DG1|1||{Z511}|||F|||||||||1||||||D", end="20260314090000"))
    assert "MSA|AA" in ack, ack
    enc = encounter(http, "V-1")
    assert enc["period"]["end"].startswith("2026-03-14"), enc["period"]
    assert codes(http, enc) == [("C34.1", 2, "DD")]


def test_d_by_code_leaves_no_second_condition_of_that_code(county: Any) -> None:
    """Same case as above, read on the Conditions: the D by code made a second Z51.1 Condition (entered in
    error) beside the stay's still-listed one -- two records of one diagnosis, disagreeing."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1|||||D-2")
    _ack(http, _p12("D3", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert len(_conditions(http, code="Z51.1")) == 1


def test_guard_d_naming_the_dg1_20_deletes_it(county: Any) -> None:
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1|||||D-2", f"DG1|2||{C341}|||F|||||||||2|||||D-3")
    ack = _ack(http, _p12("D4", f"DG1|1||{Z511}|||F|||||||||1|||||D-2|D"))
    assert "MSA|AA" in ack, ack
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 2, "DD")]
    z = _conditions(http, identifier="D-2")
    assert len(z) == 1 and z[0]["verificationStatus"]["coding"][0]["code"] == "entered-in-error", z


def test_guard_dft_d_deletes_too(county: Any) -> None:
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    dft = message(msh("DFT^P03^DFT_P03", "T1"), "EVN|P03|20260313", PID, PV1_BILL.format(visit="V-1"),
                  "FT1|1|||20260311||CG|C001^化疗^LOCAL|||1", f"DG1|1||{Z511}|||F|||||||||1||||||D")
    ack = _ack(http, dft)
    assert "MSA|AA" in ack, ack
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 2, "DD")]
