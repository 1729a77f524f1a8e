"""rvmoney24b: the split-admission report over realistic HIS feeds (DG1 repeated with DG1-1 set ids,
PV2-3 empty), through POST /hl7v2 and GET /reports/split-admissions on the real store."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.test_convert_families import PID, message, msh, post
from tests.test_moneyfix24_planned import CAROL, condition, pairs, put, stay
from tests.test_moneyfix24_planned import county as county  # noqa: F401  (the fixture)
from tests.test_recognition_world import A

PV1 = ("PV1|1|I|内科^201^1^FNXRMYY||||D001^李^医生||||||||||||{visit}|||||||||||||||||||||||||"
       "{start}|{end}")


def visit(http: TestClient, ctl: str, number: str, start: str, end: str, *rest: str) -> None:
    assert post(http, message(msh("ADT^A03^ADT_A03", ctl), f"EVN|A03|{end}", PID,
                              PV1.format(visit=number, start=start, end=end), *rest)) == "AA"


def test_hl7_the_classic_split_two_stays_with_the_same_dg1_code_is_listed(county: Any) -> None:
    """The plainest split admission a HIS sends: pneumonia J18.9 discharged 03-05, admitted again on
    03-08 with the same DG1 J18.9 (no PV2-3, no DG1-20). 3 days, same condition: it must be listed.
    The DG1 conversion keys the Condition by patient + code, so the second stay's DG1 moves the one
    Condition to the second encounter and the first stay is left with no diagnosis at all."""
    engine, http, _ = county
    visit(http, "P1", "V-1", "20260301080000", "20260305090000", "DG1|1||J18.9^肺炎^I10|||F")
    visit(http, "P2", "V-2", "20260308080000", "20260320090000", "DG1|1||J18.9^肺炎^I10|||F")
    got = pairs(engine, http)
    assert len(got) == 1 and got[0][2] == 3, got


def test_hl7_the_first_stay_keeps_its_diagnosis_after_a_readmission(county: Any) -> None:
    """What the report reads: after the second stay's message, the first stay's encounter still has
    its DG1 diagnosis (Condition?encounter=first)."""
    engine, http, _ = county
    visit(http, "Q1", "V-1", "20260301080000", "20260305090000", "DG1|1||J18.9^肺炎^I10|||F")
    first = http.get("/fhir/Encounter", params={"identifier": "V-1"}).json()
    assert first.get("entry"), first
    ref = f"Encounter/{first['entry'][0]['resource']['id']}"
    before = http.get("/fhir/Condition", params={"encounter": ref}).json().get("entry", [])
    assert len(before) == 1
    visit(http, "Q2", "V-2", "20260308080000", "20260320090000", "DG1|1||J18.9^肺炎^I10|||F")
    after = http.get("/fhir/Condition", params={"encounter": ref}).json().get("entry", [])
    assert len(after) == 1, "the first stay lost its diagnosis to the readmission"


def test_hl7_chemo_cycle_with_dg1_priority_1_is_planned(county: Any) -> None:
    """A chemotherapy cycle as Chinese HIS send it: PV2-3 empty, DG1|1 Z51.1 with DG1-15 priority 1
    (the principal, HL7 table 0359), DG1|2 C34.1 (priority 2), each DG1 with its own DG1-20 id. Its
    principal diagnosis is Z51.1: planned, never suspected. The conversion reads no DG1-15, so the
    cycle 5 days after the surgery stay for C34 is listed (the mend's 'known consequence')."""
    engine, http, _ = county
    visit(http, "C1", "V-1", "20260301080000", "20260305090000",
          "DG1|1||C34.1^肺癌^I10|||F|||||||||1|||||D-1")
    visit(http, "C2", "V-2", "20260310080000", "20260312090000",
          "DG1|1||Z51.1^肿瘤化学治疗疗程^I10|||F|||||||||1|||||D-2",
          "DG1|2||C34.1^肺癌^I10|||F|||||||||2|||||D-3")
    assert pairs(engine, http) == []


def test_fhir_reason_code_is_the_principal_a_lone_z511_beside_it_is_not(county: Any) -> None:
    """The same readmission two ways: reasonCode J18.9 (the admit reason, principal) plus Conditions.
    With a secondary Z51.1 and J18.9 unranked it is suspected; with Z51.1 alone beside the reasonCode the
    lone Condition is taken as the principal (the "only diagnosis" rule ignores reasonCode) and the
    pneumonia readmission is exempted. One principal, one answer."""
    engine, http, w = county
    carol = w.patient(A, CAROL, mrn="A-3")
    first = put(http, stay(w, "r-1", carol, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", "J18.9"))
    chemo = put(http, condition("chemo", carol, "Z51.1"))
    enc = stay(w, "r-2", carol, "2026-03-08T08:00:00+08:00", "2026-03-12T09:00:00+08:00", "J18.9")
    enc["diagnosis"] = [{"condition": {"reference": chemo}}]
    again = put(http, enc)
    assert pairs(engine, http) == [(first, again, 3)]


def test_guard_hl7_split_with_distinct_dg1_ids_is_listed(county: Any) -> None:
    """Guard: the same split sent with DG1-20 ids (one Condition per stay): listed, 3 days."""
    engine, http, _ = county
    visit(http, "G1", "V-1", "20260301080000", "20260305090000", "DG1|1||J18.9^肺炎^I10|||F||||||||||||||D-1")
    visit(http, "G2", "V-2", "20260308080000", "20260320090000", "DG1|1||J18.9^肺炎^I10|||F||||||||||||||D-2")
    got = pairs(engine, http)
    assert len(got) == 1 and got[0][2] == 3, got


def test_guard_hl7_single_dg1_chemo_cycle_is_planned(county: Any) -> None:
    """Guard: a cycle sent with one DG1 Z51.1 (with its id) after a C34 stay: its only diagnosis, planned."""
    engine, http, _ = county
    visit(http, "H1", "V-1", "20260301080000", "20260305090000", "DG1|1||C34.1^肺癌^I10|||F||||||||||||||D-1")
    visit(http, "H2", "V-2", "20260310080000", "20260312090000",
          "DG1|1||Z51.1^肿瘤化学治疗疗程^I10|||F||||||||||||||D-2")
    assert pairs(engine, http) == []




def test_guard_hl7_a_discharge_without_pv2_keeps_the_admit_reason(county: Any) -> None:
    """A HIS states the admit reason once, on A01 (PV2-3 Z51.1), and discharges with an A03 that carries
    PV1 and the DG1s but no PV2 (thinner). The cycle stays planned: a later, thinner message does not
    erase the admit reason the A01 stated."""
    engine, http, _ = county
    visit(http, "K1", "V-1", "20260301080000", "20260305090000", "DG1|1||C34.1^肺癌^I10|||F||||||||||||||D-1")
    pv1 = PV1.format(visit="V-2", start="20260310080000", end="")
    assert post(http, message(msh("ADT^A01^ADT_A01", "K2"), "EVN|A01|20260310080000", PID, pv1,
                              "PV2|||Z51.1^肿瘤化学治疗疗程^I10", "DG1|1||C34.1^肺癌^I10|||A||||||||||||||D-2")) == "AA"
    visit(http, "K3", "V-2", "20260310080000", "20260312090000", "DG1|1||C34.1^肺癌^I10|||F||||||||||||||D-2")
    enc = http.get("/fhir/Encounter", params={"identifier": "V-2"}).json()["entry"][0]["resource"]
    assert [c["code"] for r in enc.get("reasonCode", ()) for c in r["coding"]] == ["Z51.1"], enc
    assert pairs(engine, http) == []
