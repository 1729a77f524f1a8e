"""dg25: DG1 diagnoses of a stay -- HL7's explicit null in DG1-15/DG1-6 deletes the stored rank/use of that
diagnosis alone, and a sender's DG1-20 (unique for an encounter, v2.5.1 ch. 6) names a Condition of that
stay: real bytes through POST /hl7v2, read back over /fhir on the real store."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.test_convert_families import PID, message, msh
from tests.test_dg24_encounter_diagnosis import codes, encounter
from tests.test_moneyfix24_planned import county as county  # noqa: F401  (the fixture)
from tests.test_moneyfix24_rv2_split_hl7 import PV1, visit

Z511 = "Z51.1^肿瘤化学治疗疗程^I10"
C341 = "C34.1^肺癌^I10"


def _ack(http: TestClient, raw: bytes) -> str:
    r = http.post("/hl7v2", content=raw, headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200, r.text
    return r.content.decode()


def _a08(http: TestClient, ctl: str, number: str, *dg1: str) -> str:
    return _ack(http, message(msh("ADT^A08^ADT_A01", ctl), "EVN|A08|20260312090000", PID,
                              PV1.format(visit=number, start="20260310080000", end="20260312090000"), *dg1))


def _conditions_of(http: TestClient, enc: dict[str, Any]) -> list[dict[str, Any]]:
    return [http.get(f"/fhir/{d['condition']['reference']}").json() for d in enc.get("diagnosis", ())]


def test_quoted_null_dg1_15_deletes_that_diagnosis_rank_only(county: Any) -> None:
    """DG1-15 "" on C34.1 deletes its rank (no warning); Z51.1, re-sent with DG1-15 empty, keeps its 1."""
    _, http, _ = county
    visit(http, "N1", "V-1", "20260310080000", "20260312090000",
          f"DG1|1||{Z511}|||F|||||||||1|||||D-2", f"DG1|2||{C341}|||F|||||||||2|||||D-3")
    ack = _a08(http, "N2", "V-1", f"DG1|1||{Z511}|||F||||||||||||||D-2", f'DG1|2||{C341}|||F|||||||||""|||||D-3')
    assert "MSA|AA" in ack and "ERR|" not in ack, ack
    assert codes(http, encounter(http, "V-1")) == [("Z51.1", 1, "DD"), ("C34.1", None, "DD")]


def test_quoted_null_dg1_6_deletes_the_use_and_keeps_the_rank(county: Any) -> None:
    _, http, _ = county
    visit(http, "U1", "V-1", "20260310080000", "20260312090000", f"DG1|1||{Z511}|||F|||||||||1|||||D-2")
    ack = _a08(http, "U2", "V-1", f'DG1|1||{Z511}|||""||||||||||||||D-2')
    assert "MSA|AA" in ack and "ERR|" not in ack, ack
    assert codes(http, encounter(http, "V-1")) == [("Z51.1", 1, None)]


def test_quoted_null_then_a_new_rank_stores_the_new_rank(county: Any) -> None:
    """A later message stating DG1-15 again after the explicit null stores it (the delete took only the
    stored one); and an explicit null beside the same DG1 re-stated with a rank in one message keeps it."""
    _, http, _ = county
    visit(http, "W1", "V-1", "20260310080000", "20260312090000", f"DG1|1||{Z511}|||F|||||||||1|||||D-2")
    assert "MSA|AA" in _a08(http, "W2", "V-1", f'DG1|1||{Z511}|||F|||||||||""|||||D-2')
    assert codes(http, encounter(http, "V-1")) == [("Z51.1", None, "DD")]
    assert "MSA|AA" in _a08(http, "W3", "V-1", f"DG1|1||{Z511}|||F|||||||||2|||||D-2")
    assert codes(http, encounter(http, "V-1")) == [("Z51.1", 2, "DD")]


def test_a_dg1_20_reused_for_a_second_stay_is_a_condition_of_each_stay(county: Any) -> None:
    """DG1-20 'uniquely identifies a single diagnosis for an encounter ... unique across all segments
    and messages for an encounter' (v2.5.1 6.5.2.20): the HIS numbering its diagnoses per stay sends
    D-1 for both stays. Each stay keeps its own Condition (its encounter, its code), the first stay's
    rank 1 stays on its own record, and each Condition carries the sender's identifier."""
    _, http, _ = county
    visit(http, "D1", "V-1", "20260301080000", "20260305090000", f"DG1|1||{C341}|||F|||||||||1|||||D-1")
    visit(http, "D2", "V-2", "20260310080000", "20260312090000", f"DG1|1||{Z511}|||F|||||||||2|||||D-1")
    seen = set()
    for number, code, rank in (("V-1", "C34.1", 1), ("V-2", "Z51.1", 2)):
        enc = encounter(http, number)
        assert codes(http, enc) == [(code, rank, "DD")], (number, enc)
        (cond,) = _conditions_of(http, enc)
        assert cond["encounter"]["reference"] == f"Encounter/{enc['id']}", (number, cond)
        assert [i["value"] for i in cond.get("identifier", ())] == ["D-1"], cond
        seen.add(cond["id"])
    assert len(seen) == 2


def test_a_dg1_20_resent_for_its_stay_updates_the_one_condition(county: Any) -> None:
    """The same DG1-20 re-sent for the same stay (an A08 correcting the code) is the same Condition."""
    _, http, _ = county
    visit(http, "E1", "V-1", "20260310080000", "20260312090000", f"DG1|1||{C341}|||F|||||||||1|||||D-1")
    first = _conditions_of(http, encounter(http, "V-1"))
    assert "MSA|AA" in _a08(http, "E2", "V-1", "DG1|1||C34.9^肺癌^I10|||F|||||||||1|||||D-1")
    after = _conditions_of(http, encounter(http, "V-1"))
    assert [c["id"] for c in after] == [first[0]["id"]], (first, after)
    assert after[0]["code"]["coding"][0]["code"] == "C34.9"
    found = http.get("/fhir/Condition", params={"encounter": f"Encounter/{encounter(http, 'V-1')['id']}"}).json()
    assert len(found.get("entry", ())) == 1, found


def test_a_dg1_20_without_a_visit_keys_by_the_id_as_before(county: Any) -> None:
    """No visit (an A08 without PV1-19): DG1-20 alone keys the Condition, as before."""
    _, http, _ = county
    for ctl in ("F1", "F2"):
        ack = _ack(http, message(msh("ADT^A08^ADT_A01", ctl), "EVN|A08|20260312090000", PID,
                                 f"DG1|1||{C341}|||F|||||||||1|||||D-7"))
        assert "MSA|AA" in ack, ack
    found = http.get("/fhir/Condition", params={"identifier": "D-7"}).json()
    assert len(found.get("entry", ())) == 1, found
