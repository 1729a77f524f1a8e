"""rvdg24: review probes for DG1 -> Encounter.diagnosis (dg24), real bytes through POST /hl7v2, read
back over /fhir and GET /reports/split-admissions on the real store."""

from __future__ import annotations

from typing import Any

from tests.test_convert_families import PID, message, msh, post
from tests.test_dg24_encounter_diagnosis import codes, encounter
from tests.test_moneyfix24_planned import county as county  # noqa: F401  (the fixture)
from tests.test_moneyfix24_planned import pairs
from tests.test_moneyfix24_rv2_split_hl7 import PV1, visit

Z511 = "Z51.1^肿瘤化学治疗疗程^I10"
C341 = "C34.1^肺癌^I10"
PID_B = "PID|1||M0777^^^FNXRMYY^MR||王^五||19700101|M|||人民路9号^^阜宁^江苏^224400||13900000000"


def _ack(http: Any, raw: bytes) -> str:
    r = http.post("/hl7v2", content=raw, headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200, r.text
    return r.content.decode()


def test_rvrvdg24_discharge_resending_dg1_without_dg1_15_keeps_the_rank(county: Any) -> None:
    """HL7 v2 ch. 2: an empty field is 'not sent', only "" deletes. The admit states Z51.1 principal
    (DG1-15 1); the discharge re-sends the same DG1s with DG1-15 left empty (as many HIS do). The
    stored rank must stay -- and the chemotherapy cycle stays planned."""
    engine, http, _ = county
    visit(http, "K1", "V-1", "20260301080000", "20260305090000", f"DG1|1||{C341}|||F|||||||||1|||||D-1")
    pv1 = PV1.format(visit="V-2", start="20260310080000", end="")
    assert post(http, message(msh("ADT^A01^ADT_A01", "K2"), "EVN|A01|20260310080000", PID, pv1,
                              f"DG1|1||{Z511}|||A|||||||||1|||||D-2",
                              f"DG1|2||{C341}|||A|||||||||2|||||D-3")) == "AA"
    assert pairs(engine, http) == []
    visit(http, "K3", "V-2", "20260310080000", "20260312090000",
          f"DG1|1||{Z511}|||F||||||||||||||D-2", f"DG1|2||{C341}|||F||||||||||||||D-3")
    assert pairs(engine, http) == [], "the planned chemotherapy cycle became a suspected split admission"
    assert [r for _, r, _ in codes(http, encounter(http, "V-2"))] == [1, 2]


def test_rvrvdg24_quoted_null_dg1_15_deletes_the_rank_without_a_warning(county: Any) -> None:
    """DG1-15 "" is HL7's explicit null: delete the rank, and no 'not a positive integer' warning."""
    _, http, _ = county
    visit(http, "Q1", "V-1", "20260310080000", "20260312090000", f"DG1|1||{Z511}|||F|||||||||1|||||D-2")
    raw = message(msh("ADT^A08^ADT_A01", "Q2"), "EVN|A08|20260312090000", PID,
                  PV1.format(visit="V-1", start="20260310080000", end="20260312090000"),
                  f'DG1|1||{Z511}|||F|||||||||""|||||D-2')
    ack = _ack(http, raw)
    assert "MSA|AA" in ack, ack
    assert not [s for s in ack.split("\r") if s.startswith("ERR|")], ack
    assert codes(http, encounter(http, "V-1")) == [("Z51.1", None, "DD")]


def test_rvrvdg24_another_patients_visit_number_adds_no_diagnosis(county: Any) -> None:
    """Patient B's message names patient A's visit number: A's Encounter must not list B's Condition."""
    _, http, _ = county
    visit(http, "X1", "V-1", "20260310080000", "20260312090000", f"DG1|1||{Z511}|||F|||||||||1|||||D-2")
    before = encounter(http, "V-1")
    raw = message(msh("ADT^A08^ADT_A01", "X2"), "EVN|A08|20260312090000", PID_B,
                  PV1.format(visit="V-1", start="20260310080000", end="20260312090000"),
                  f"DG1|1||{C341}|||F|||||||||1|||||D-9")
    ack = _ack(http, raw)
    after = encounter(http, "V-1")
    assert after["subject"] == before["subject"], (ack, after)
    for d in after.get("diagnosis", ()):
        cond = http.get(f"/fhir/{d['condition']['reference']}").json()
        assert cond["subject"] == before["subject"], (ack, after, cond)
    assert codes(http, after) == [("Z51.1", 1, "DD")], ack


def test_rvrvdg24_a_dg1_20_id_sent_for_two_stays_leaves_each_entry_pointing_at_its_stay(county: Any) -> None:
    """DG1-20 keys the Condition alone (not by stay): the same id sent for a second stay moves the one
    Condition to the second Encounter, and the first stay's diagnosis entry then points at a Condition
    of another stay (its rank 1 now describing the second stay's record)."""
    _, http, _ = county
    visit(http, "D1", "V-1", "20260301080000", "20260305090000", f"DG1|1||{C341}|||F|||||||||1|||||D-1")
    visit(http, "D2", "V-2", "20260310080000", "20260312090000", f"DG1|1||{C341}|||F|||||||||2|||||D-1")
    for number in ("V-1", "V-2"):
        enc = encounter(http, number)
        for d in enc.get("diagnosis", ()):
            cond = http.get(f"/fhir/{d['condition']['reference']}").json()
            assert cond.get("encounter", {}).get("reference") == f"Encounter/{enc['id']}", (number, enc, cond)


def test_rvrvdg24_guard_resent_a01_and_a03_list_each_condition_once(county: Any) -> None:
    engine, http, _ = county
    pv1 = PV1.format(visit="V-2", start="20260310080000", end="")
    dg = (f"DG1|1||{Z511}|||A|||||||||1", f"DG1|2||{C341}|||A|||||||||2")
    for ctl in ("G1", "G2"):
        assert post(http, message(msh("ADT^A01^ADT_A01", ctl), "EVN|A01|20260310080000", PID, pv1, *dg)) == "AA"
    visit(http, "G3", "V-2", "20260310080000", "20260312090000",
          f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2", f"DG1|3||{Z511}|||F|||||||||3")
    got = codes(http, encounter(http, "V-2"))
    assert got == [("Z51.1", 1, "DD"), ("C34.1", 2, "DD")], got


def test_rvrvdg24_a_discharge_naming_a_new_principal_leaves_two_rank_1(county: Any) -> None:
    """The admit said Z51.1 principal; the discharge's DG1 list says C34.1 is the principal (DG1-15 1)
    and no longer lists Z51.1. The stay's principal is C34.1 -- the readmission 5 days after the C34
    stay is suspected, not exempted as a planned chemotherapy cycle."""
    engine, http, _ = county
    visit(http, "R1", "V-1", "20260301080000", "20260305090000", f"DG1|1||{C341}|||F|||||||||1|||||D-1")
    pv1 = PV1.format(visit="V-2", start="20260310080000", end="")
    assert post(http, message(msh("ADT^A01^ADT_A01", "R2"), "EVN|A01|20260310080000", PID, pv1,
                              f"DG1|1||{Z511}|||A|||||||||1")) == "AA"
    visit(http, "R3", "V-2", "20260310080000", "20260312090000", f"DG1|1||{C341}|||F|||||||||1")
    ranked_1 = [c for c, r, _ in codes(http, encounter(http, "V-2")) if r == 1]
    assert "C34.1" in ranked_1, ranked_1
    got = pairs(engine, http)
    assert len(got) == 1 and got[0][2] == 5, (ranked_1, got)


def test_rvrvdg24_a40_merge_keeps_diagnoses_on_the_survivors_conditions(county: Any) -> None:
    _, http, _ = county
    visit(http, "M1", "V-1", "20260310080000", "20260312090000", f"DG1|1||{Z511}|||F|||||||||1")
    raw = message(msh("ADT^A40^ADT_A39", "M2"), "EVN|A40|20260313080000", PID_B, "MRG|M0001^^^FNXRMYY^MR")
    before = encounter(http, "V-1")["subject"]
    ack = _ack(http, raw)
    assert "MSA|AA" in ack, ack
    enc = encounter(http, "V-1")
    # the merge links the records (Patient.link); the visit keeps its subject and its diagnoses
    assert enc["subject"] == before, (ack, enc)
    assert enc.get("diagnosis"), (ack, enc)
    for d in enc["diagnosis"]:
        cond = http.get(f"/fhir/{d['condition']['reference']}").json()
        assert cond.get("subject") == enc["subject"], (ack, enc, cond)
