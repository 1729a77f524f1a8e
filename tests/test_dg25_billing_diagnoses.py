"""dg25: the DG1s of an account message (BAR^P01/P05/P12) and of a charge message (DFT^P03/P11) name the
visit's diagnoses like an ADT's: each adds an entry to Encounter.diagnosis of the visit PV1-19 names, merged
by its Condition (rank DG1-15, use DG1-6) -- and nothing else of the ADT feed's Encounter changes (the
billing message's thin PV1 is still written only when the visit is not stored). Real bytes through POST
/hl7v2, read back over /fhir."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.test_convert_families import PID, message, msh, post
from tests.test_dg24_encounter_diagnosis import codes, encounter
from tests.test_moneyfix24_planned import county as county  # noqa: F401  (the fixture)
from tests.test_moneyfix24_rv2_split_hl7 import visit

Z511 = "Z51.1^肿瘤化学治疗疗程^I10"
C341 = "C34.1^肺癌^I10"
# the billing system's PV1: another ward text and no admit time -- none of it may reach the stored visit
PV1_BILL = "PV1|1|I|病区^9^9^FNXRMYY||||||||||||||||{visit}"


def _stay(http: TestClient) -> dict[str, Any]:
    visit(http, "A1", "V-1", "20260310080000", "20260312090000", f"DG1|1||{C341}|||F|||||||||2")
    return encounter(http, "V-1")


def _same_visit(before: dict[str, Any], after: dict[str, Any]) -> None:
    for name in ("status", "class", "period", "location", "subject", "identifier", "hospitalization"):
        assert after.get(name) == before.get(name), (name, before.get(name), after.get(name))


def test_bar_p01_dg1_adds_the_visits_diagnosis(county: Any) -> None:
    _, http, _ = county
    before = _stay(http)
    bar = message(msh("BAR^P01^BAR_P01", "B1"), "EVN|P01|20260312", PID, PV1_BILL.format(visit="V-1"),
                  f"DG1|1||{Z511}|||F|||||||||1")
    assert post(http, bar) == "AA"
    after = encounter(http, "V-1")
    assert codes(http, after) == [("C34.1", 2, "DD"), ("Z51.1", 1, "DD")], after
    _same_visit(before, after)


def test_bar_p05_restating_a_diagnosis_merges_by_its_condition(county: Any) -> None:
    """The account update re-ranks C34.1 (the ADT's Condition, the same stay and code): one entry, rank 1."""
    _, http, _ = county
    before = _stay(http)
    bar = message(msh("BAR^P05^BAR_P05", "B2"), "EVN|P05|20260312", PID, PV1_BILL.format(visit="V-1"),
                  f"DG1|1||{C341}|||F|||||||||1")
    assert post(http, bar) == "AA"
    after = encounter(http, "V-1")
    assert codes(http, after) == [("C34.1", 1, "DD")], after
    _same_visit(before, after)


def test_dft_p03_dg1_adds_the_visits_diagnosis(county: Any) -> None:
    _, http, _ = county
    before = _stay(http)
    dft = message(msh("DFT^P03^DFT_P03", "F1"), "EVN|P03|20260312", PID, PV1_BILL.format(visit="V-1"),
                  "FT1|1|T-1||20260311100000||CG|DRUG-7^头孢曲松^L|||2||80&CNY",
                  f"DG1|1||{Z511}|||F|||||||||1")
    assert post(http, dft) == "AA"
    after = encounter(http, "V-1")
    assert codes(http, after) == [("C34.1", 2, "DD"), ("Z51.1", 1, "DD")], after
    _same_visit(before, after)


def test_bar_before_the_adt_creates_the_visit_with_its_diagnosis_and_the_adt_keeps_it(county: Any) -> None:
    _, http, _ = county
    bar = message(msh("BAR^P01^BAR_P01", "B1"), "EVN|P01|20260312", PID, PV1_BILL.format(visit="V-1"),
                  f"DG1|1||{Z511}|||F|||||||||1")
    assert post(http, bar) == "AA"
    assert codes(http, encounter(http, "V-1")) == [("Z51.1", 1, "DD")]
    visit(http, "A1", "V-1", "20260310080000", "20260312090000", f"DG1|1||{C341}|||F|||||||||2")
    assert codes(http, encounter(http, "V-1")) == [("Z51.1", 1, "DD"), ("C34.1", 2, "DD")]


def test_bar_without_dg1_leaves_the_visit_as_stored(county: Any) -> None:
    _, http, _ = county
    before = _stay(http)
    assert post(http, message(msh("BAR^P05^BAR_P05", "B3"), "EVN|P05|20260312", PID,
                              PV1_BILL.format(visit="V-1"))) == "AA"
    after = encounter(http, "V-1")
    assert after["meta"]["versionId"] == before["meta"]["versionId"], after


def test_another_patients_bar_under_the_visit_number_is_refused_and_adds_nothing(county: Any) -> None:
    """Patient B's account message names patient A's visit number: refused at PV1-19 as before (the
    billing visit now combines its diagnosis, so the rule is asked by the merge, not only by ``found``)."""
    _, http, _ = county
    before = _stay(http)
    pid_b = "PID|1||M0777^^^FNXRMYY^MR||王^五||19700101|M|||人民路9号^^阜宁^江苏^224400||13900000000"
    r = http.post("/hl7v2", content=message(msh("BAR^P05^BAR_P05", "B9"), "EVN|P05|20260312", pid_b,
                                            PV1_BILL.format(visit="V-1"), f"DG1|1||{Z511}|||F|||||||||1"),
                  headers={"Content-Type": "x-application/hl7-v2+er7"})
    ack = r.content.decode()
    assert r.status_code == 200 and "MSA|AE" in ack and "PV1^1^19" in ack, ack
    after = encounter(http, "V-1")
    assert after == before, after


def test_the_same_persons_other_record_under_the_visit_adds_no_diagnosis_to_it(county: Any) -> None:
    """The billing system files the person under another record (same ID number, another MRN): the
    message passes as before (one person), and the visit filed under the first record is left as it
    is -- a Condition of the other record is not listed on it."""
    _, http, _ = county
    before = _stay(http)
    other = PID.replace("M0001^^^FNXRMYY^MR", "M0002^^^FNXRMYY^MR")
    assert other != PID
    bar = message(msh("BAR^P05^BAR_P05", "B7"), "EVN|P05|20260312", other, PV1_BILL.format(visit="V-1"),
                  f"DG1|1||{Z511}|||F|||||||||1")
    assert post(http, bar) == "AA"
    after = encounter(http, "V-1")
    assert after == before, after
