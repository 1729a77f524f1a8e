"""rvdg25 review probes of dg25 (DG1 explicit null, DG1-20 per stay, old keys adopted, billing/order DG1s):
real bytes through POST /hl7v2, read back over /fhir on the real store."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.test_convert_families import PID, message, msh, post
from tests.test_dg24_encounter_diagnosis import codes, encounter
from tests.test_moneyfix24_planned import county as county  # noqa: F401  (the fixture)
from tests.test_moneyfix24_planned import pairs
from tests.test_moneyfix24_rv2_split_hl7 import PV1, visit

Z511 = "Z51.1^肿瘤化学治疗疗程^I10"
C341 = "C34.1^肺癌^I10"
J189 = "J18.9^肺炎^I10"
PV1_BILL = "PV1|1|I|病区^9^9^FNXRMYY||||||||||||||||{visit}"


def _ack(http: TestClient, raw: bytes) -> str:
    r = http.post("/hl7v2", content=raw, headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200, r.text
    return r.content.decode()


def _conditions(http: TestClient, **params: str) -> list[dict[str, Any]]:
    found = http.get("/fhir/Condition", params=params).json()
    return [e["resource"] for e in found.get("entry", ())]


def test_bar_p01_two_visits_each_visits_dg1_goes_to_its_own_visit(county: Any) -> None:
    """BAR^P01 repeats its VISIT group (v2.5.1 6.4.1: PV1 [PV2] ... [{DG1}] per visit). The DG1 after the
    second PV1 is V-2's diagnosis: it must not be listed (rank 1) on V-1, whose principal it is not."""
    _, http, _ = county
    visit(http, "A1", "V-1", "20260301080000", "20260305090000", f"DG1|1||{C341}|||F|||||||||1")
    visit(http, "A2", "V-2", "20260310080000", "20260312090000", f"DG1|1||{C341}|||F|||||||||1")
    bar = message(msh("BAR^P01^BAR_P01", "B1"), "EVN|P01|20260312", PID,
                  PV1_BILL.format(visit="V-1"), f"DG1|1||{C341}|||F|||||||||1",
                  PV1_BILL.format(visit="V-2"), f"DG1|1||{Z511}|||F|||||||||1")
    ack = _ack(http, bar)
    v1 = codes(http, encounter(http, "V-1"))
    v2 = codes(http, encounter(http, "V-2"))
    assert "MSA|AE" in ack and "PV1^2" in ack, ack  # refused whole: send each visit on its own
    assert v1 == v2 == [("C34.1", 1, "DD")], (v1, v2)


def test_dg1_20_first_sent_without_a_visit_then_with_it_is_one_condition(county: Any) -> None:
    """A28 (no visit) names diagnosis D-7; the A08 of the stay then names D-7 again with its visit. Before
    dg25 both keyed pkey|dg1|D-7 (one Condition). Now: the stay keys by visit + D-7 and the old-key
    adoption asks the stored one to be of this stay (it has no encounter) -- two Conditions, one id."""
    _, http, _ = county
    ack = _ack(http, message(msh("ADT^A28^ADT_A05", "F1"), "EVN|A28|20260309090000", PID,
                             f"DG1|1||{C341}|||F|||||||||1|||||D-7"))
    assert "MSA|AA" in ack, ack
    visit(http, "F2", "V-1", "20260310080000", "20260312090000", f"DG1|1||{C341}|||F|||||||||1|||||D-7")
    found = _conditions(http, identifier="D-7")
    assert len(found) == 1, [(c["id"], c.get("encounter")) for c in found]


def test_merged_record_bar_lists_its_diagnosis_on_the_visit(county: Any) -> None:
    """A40 merges M0001 into M0002 (same person, the registrar's duplicate); the billing system then
    files under the surviving record M0002 with the stay's number. The BAR is acked AA: its DG1 rank 1
    must reach the visit (or be refused/warned), not vanish silently."""
    _, http, _ = county
    visit(http, "A1", "V-1", "20260310080000", "20260312090000", f"DG1|1||{C341}|||F|||||||||2")
    survivor = PID.replace("M0001^^^FNXRMYY^MR", "M0002^^^FNXRMYY^MR")
    a40 = message(msh("ADT^A40^ADT_A39", "M1"), "EVN|A40|20260312100000", survivor, "MRG|M0001^^^FNXRMYY^MR")
    assert "MSA|AA" in _ack(http, a40)
    bar = message(msh("BAR^P05^BAR_P05", "B7"), "EVN|P05|20260312", survivor, PV1_BILL.format(visit="V-1"),
                  f"DG1|1||{Z511}|||F|||||||||1")
    ack = _ack(http, bar)
    after = codes(http, encounter(http, "V-1"))
    assert ("Z51.1", 1, "DD") in after or "MSA|AE" in ack or "ERR|" in ack, (ack, after)


def test_quoted_null_dg1_6_leaves_no_empty_category_on_the_condition(county: Any) -> None:
    """DG1-6 "" deletes the entry's use; the Condition's category (DG1-6 too) must not become a code ""."""
    _, http, _ = county
    visit(http, "U1", "V-1", "20260310080000", "20260312090000", f"DG1|1||{Z511}|||F|||||||||1")
    assert post(http, message(msh("ADT^A08^ADT_A01", "U2"), "EVN|A08|20260312090000", PID,
                              PV1.format(visit="V-1", start="20260310080000", end="20260312090000"),
                              f'DG1|1||{Z511}|||""|||||||||1')) == "AA"
    enc = encounter(http, "V-1")
    assert codes(http, enc) == [("Z51.1", 1, None)]
    cond = http.get(f"/fhir/{enc['diagnosis'][0]['condition']['reference']}").json()
    for cat in cond.get("category", ()):
        for coding in cat.get("coding", ()):
            assert coding.get("code"), cond


def test_orm_of_another_patient_under_the_visit_adds_nothing(county: Any) -> None:
    """Patient B's order names patient A's visit number with a DG1: refused at PV1-19, visit unchanged."""
    _, http, _ = county
    visit(http, "A1", "V-1", "20260310080000", "20260312090000", f"DG1|1||{C341}|||F|||||||||2")
    before = encounter(http, "V-1")
    pid_b = "PID|1||M0777^^^FNXRMYY^MR||王^五||19700101|M|||人民路9号^^阜宁^江苏^224400||13900000000"
    orm = message(msh("ORM^O01^ORM_O01", "O9"), pid_b, PV1_BILL.format(visit="V-1"),
                  "ORC|NW|ORD-9^HIS|||||||20260311080000", "OBR|1|ORD-9^HIS||GLU^葡萄糖^L|||20260311080000",
                  f"DG1|1||{Z511}|||F|||||||||1")
    ack = _ack(http, orm)
    assert "MSA|AA" not in ack, ack
    assert encounter(http, "V-1") == before


def test_dft_quoted_null_rank_on_a_diagnosis_of_another_stay_code_deletes_only_that(county: Any) -> None:
    """DFT re-sends C34.1 with DG1-15 "": the stay's C34.1 rank goes; Z51.1 keeps its 1; V-2 (same code,
    its own Condition) keeps its rank."""
    _, http, _ = county
    visit(http, "A1", "V-1", "20260301080000", "20260305090000",
          f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    visit(http, "A2", "V-2", "20260310080000", "20260312090000", f"DG1|1||{C341}|||F|||||||||1")
    dft = message(msh("DFT^P03^DFT_P03", "F1"), "EVN|P03|20260312", PID, PV1_BILL.format(visit="V-1"),
                  "FT1|1|T-1||20260304100000||CG|DRUG-7^头孢曲松^L|||2||80&CNY", f'DG1|1||{C341}|||F|||||||||""')
    assert post(http, dft) == "AA"
    assert codes(http, encounter(http, "V-1")) == [("Z51.1", 1, "DD"), ("C34.1", None, "DD")]
    assert codes(http, encounter(http, "V-2")) == [("C34.1", 1, "DD")]


def test_dg1_20_correction_without_a_visit_reaches_the_stays_condition(county: Any) -> None:
    """The stay's A03 names D-7 (C34.1); an A31 (person update, no visit) then corrects D-7 to C34.9.
    Before dg25 both keyed pkey|dg1|D-7: the stay's Condition took the correction. Now the A31 makes a
    second Condition D-7 (no encounter) and the stay keeps the uncorrected code."""
    _, http, _ = county
    visit(http, "G1", "V-1", "20260310080000", "20260312090000", f"DG1|1||{C341}|||F|||||||||1|||||D-7")
    ack = _ack(http, message(msh("ADT^A31^ADT_A05", "G2"), "EVN|A31|20260313090000", PID,
                             "DG1|1||C34.9^肺癌^I10|||F|||||||||1|||||D-7"))
    assert "MSA|AA" in ack, ack
    found = _conditions(http, identifier="D-7")
    assert len(found) == 1, [(c["id"], c["code"]["coding"][0]["code"], c.get("encounter")) for c in found]


def test_bar_p12_dg1_action_delete_is_not_listed_as_the_visits_principal(county: Any) -> None:
    """BAR^P12 (update diagnosis/procedure) sends diagnoses in update mode: DG1-21 (diagnosis action code,
    table 0206) D deletes the diagnosis. dg25 lists every BAR DG1 on the visit: the deleted Z51.1, ranked
    1 as sent, becomes a principal diagnosis of the stay (Z51.1: a planned cycle, never a split
    admission). Before dg25 the visit was untouched. Deleted, refused or warned -- not listed."""
    _, http, _ = county
    visit(http, "A1", "V-1", "20260310080000", "20260312090000", f"DG1|1||{C341}|||F|||||||||1")
    p12 = message(msh("BAR^P12^BAR_P12", "B12"), "EVN|P12|20260313", PID, PV1_BILL.format(visit="V-1"),
                  f"DG1|1||{Z511}|||F|||||||||1||||||D")
    ack = _ack(http, p12)
    after = codes(http, encounter(http, "V-1"))
    assert ("Z51.1", 1, "DD") not in after or "MSA|AE" in ack or "DG1^1^21" in ack, (ack, after)


def test_bar_p12_deleted_z51_hides_a_split_admission(county: Any) -> None:
    """The money answer of the P12 finding: C34.1 stay 03-01..03-05, readmitted 03-10 for C34.1 (rank 1):
    5 days, suspected. The billing system's P12 then DELETES (DG1-21 D) a Z51.1 ranked 1 on the
    readmission: dg25 lists it as a principal, the stay reads as a planned chemotherapy cycle and the
    pair leaves the insurance bureau's split-admission list."""
    engine, http, _ = county
    visit(http, "S1", "V-1", "20260301080000", "20260305090000", f"DG1|1||{C341}|||F|||||||||1")
    visit(http, "S2", "V-2", "20260310080000", "20260312090000", f"DG1|1||{C341}|||F|||||||||1")
    assert len(pairs(engine, http)) == 1
    p12 = message(msh("BAR^P12^BAR_P12", "S3"), "EVN|P12|20260313", PID, PV1_BILL.format(visit="V-2"),
                  f"DG1|1||{Z511}|||F|||||||||1||||||D")
    ack = _ack(http, p12)
    assert len(pairs(engine, http)) == 1, (ack, codes(http, encounter(http, "V-2")))


def _batch(http: TestClient, *messages: bytes) -> str:
    body = (b"BHS|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||||BATCH7\r" + b"".join(messages)
            + b"BTS|%d\r" % len(messages))
    return _ack(http, body)


def test_batch_adt_then_bar_of_the_same_new_visit_keeps_the_adt_visit_and_both_diagnoses(county: Any) -> None:
    """One batch: the A03 of a new stay, then the billing system's BAR with its thin PV1 and another DG1.
    The BAR may not overwrite the stay (thin PV1 only when absent) and both diagnoses are listed."""
    _, http, _ = county
    a03 = message(msh("ADT^A03^ADT_A03", "Q1"), "EVN|A03|20260312090000", PID,
                  PV1.format(visit="V-1", start="20260310080000", end="20260312090000"),
                  f"DG1|1||{C341}|||F|||||||||2")
    bar = message(msh("BAR^P05^BAR_P05", "Q2"), "EVN|P05|20260312", PID, PV1_BILL.format(visit="V-1"),
                  f"DG1|1||{Z511}|||F|||||||||1")
    ack = _batch(http, a03, bar)
    assert ack.count("MSA|AA") == 2, ack
    enc = encounter(http, "V-1")
    assert codes(http, enc) == [("C34.1", 2, "DD"), ("Z51.1", 1, "DD")], enc
    assert enc["period"]["start"].startswith("2026-03-10") and enc["status"] == "finished", enc
    assert "内科" in str(enc.get("location")), enc


def test_batch_rank_then_explicit_null_deletes_it(county: Any) -> None:
    _, http, _ = county
    a03 = message(msh("ADT^A03^ADT_A03", "R1"), "EVN|A03|20260312090000", PID,
                  PV1.format(visit="V-1", start="20260310080000", end="20260312090000"),
                  f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    a08 = message(msh("ADT^A08^ADT_A01", "R2"), "EVN|A08|20260312100000", PID,
                  PV1.format(visit="V-1", start="20260310080000", end="20260312090000"),
                  f'DG1|1||{Z511}|||F|||||||||""')
    ack = _batch(http, a03, a08)
    assert ack.count("MSA|AA") == 2, ack
    assert codes(http, encounter(http, "V-1")) == [("Z51.1", None, "DD"), ("C34.1", 2, "DD")]


def test_mllp_pipelined_adt_bar_null_in_one_write_group(county: Any) -> None:
    """Pipelined on one MLLP connection (one write group): the stay's A03, the BAR adding J18.9 (rank 3)
    with its thin PV1, an A08 nulling Z51.1's rank. Each said its own: the A03's visit, three entries."""
    import socket

    from adapters.listeners.mllp import frame
    from tests.conftest import running_mllp

    engine, http, _ = county
    a03 = message(msh("ADT^A03^ADT_A03", "P1"), "EVN|A03|20260312090000", PID,
                  PV1.format(visit="V-1", start="20260310080000", end="20260312090000"),
                  f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    bar = message(msh("BAR^P05^BAR_P05", "P2"), "EVN|P05|20260312", PID, PV1_BILL.format(visit="V-1"),
                  f"DG1|1||{J189}|||F|||||||||3")
    a08 = message(msh("ADT^A08^ADT_A01", "P3"), "EVN|A08|20260312100000", PID,
                  PV1.format(visit="V-1", start="20260310080000", end="20260312090000"),
                  f'DG1|1||{Z511}|||F|||||||||""')
    with running_mllp(engine) as port, socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(frame(a03) + frame(bar) + frame(a08))
        data = b""
        while data.count(b"\x1c\r") < 3:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    assert data.count(b"MSA|AA") == 3, data
    enc = encounter(http, "V-1")
    assert codes(http, enc) == [("Z51.1", None, "DD"), ("C34.1", 2, "DD"), ("J18.9", 3, "DD")], enc
    assert enc["status"] == "finished" and "内科" in str(enc.get("location")), enc
