"""dg24: DG1 -> Encounter.diagnosis (IG "Segment DG1 to Encounter"): DG1-15 the rank, DG1-6 the use,
the DG1's Condition the condition -- through POST /hl7v2, read back over /fhir and by the
split-admission report (GET /reports/split-admissions) on the real store."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.test_convert_families import PID, message, msh, post
from tests.test_moneyfix24_planned import county as county  # noqa: F401  (the fixture)
from tests.test_moneyfix24_planned import pairs
from tests.test_moneyfix24_rv2_split_hl7 import PV1, visit

ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"


def encounter(http: TestClient, number: str) -> dict[str, Any]:
    found = http.get("/fhir/Encounter", params={"identifier": number}).json()
    assert len(found.get("entry", ())) == 1, found
    return dict(found["entry"][0]["resource"])


def codes(http: TestClient, enc: dict[str, Any]) -> list[tuple[str, int | None, str | None]]:
    """(Condition code, rank, use) per diagnosis entry, in order."""
    out = []
    for d in enc.get("diagnosis", ()):
        cond = http.get(f"/fhir/{d['condition']['reference']}").json()
        use = d.get("use", {}).get("coding", [{}])[0]
        assert not use or use.get("system") == ROLE, d
        out.append((cond["code"]["coding"][0]["code"], d.get("rank"), use.get("code")))
    return out


def test_dg1_priority_and_type_become_rank_and_use(county: Any) -> None:
    _, http, _ = county
    visit(http, "R1", "V-1", "20260310080000", "20260312090000",
          "DG1|1||Z51.1^肿瘤化学治疗疗程^I10|||F|||||||||1|||||D-2",
          "DG1|2||C34.1^肺癌^I10|||A|||||||||2|||||D-3",
          "DG1|3||I10^高血压^I10|||W")
    assert codes(http, encounter(http, "V-1")) == [("Z51.1", 1, "DD"), ("C34.1", 2, "AD"), ("I10", None, None)]


def test_chemo_cycle_principal_z511_by_dg1_15_is_planned(county: Any) -> None:
    engine, http, _ = county
    visit(http, "C1", "V-1", "20260301080000", "20260305090000", "DG1|1||C34.1^肺癌^I10|||F|||||||||1|||||D-1")
    visit(http, "C2", "V-2", "20260310080000", "20260312090000",
          "DG1|1||C34.1^肺癌^I10|||F|||||||||2|||||D-3",
          "DG1|2||Z51.1^肿瘤化学治疗疗程^I10|||F|||||||||1|||||D-2")
    assert pairs(engine, http) == []


def test_principal_c34_with_z511_second_is_suspected(county: Any) -> None:
    """DG1-15 = 1 on the cancer, Z51.1 ranked 2: the principal is C34, not a planned cycle."""
    engine, http, _ = county
    visit(http, "S1", "V-1", "20260301080000", "20260305090000", "DG1|1||C34.1^肺癌^I10|||F|||||||||1|||||D-1")
    visit(http, "S2", "V-2", "20260310080000", "20260312090000",
          "DG1|1||C34.1^肺癌^I10|||F|||||||||1|||||D-3",
          "DG1|2||Z51.1^肿瘤化学治疗疗程^I10|||F|||||||||2|||||D-2")
    got = pairs(engine, http)
    assert len(got) == 1 and got[0][2] == 5, got


def test_no_dg1_15_two_diagnoses_no_principal_is_suspected_as_before(county: Any) -> None:
    engine, http, _ = county
    visit(http, "N1", "V-1", "20260301080000", "20260305090000", "DG1|1||C34.1^肺癌^I10|||F||||||||||||||D-1")
    visit(http, "N2", "V-2", "20260310080000", "20260312090000",
          "DG1|1||Z51.1^肿瘤化学治疗疗程^I10|||F||||||||||||||D-2",
          "DG1|2||C34.1^肺癌^I10|||F||||||||||||||D-3")
    enc = encounter(http, "V-2")
    assert [r for _, r, _ in codes(http, enc)] == [None, None]
    got = pairs(engine, http)
    assert len(got) == 1 and got[0][2] == 5, got


def test_a_thinner_a08_keeps_the_diagnoses_and_a_resend_is_idempotent(county: Any) -> None:
    engine, http, _ = county
    dg1s = ("DG1|1||Z51.1^肿瘤化学治疗疗程^I10|||A|||||||||1|||||D-2", "DG1|2||C34.1^肺癌^I10|||A|||||||||2|||||D-3")
    pv1 = PV1.format(visit="V-2", start="20260310080000", end="")
    assert post(http, message(msh("ADT^A01^ADT_A01", "T1"), "EVN|A01|20260310080000", PID, pv1, *dg1s)) == "AA"
    stated = [("Z51.1", 1, "AD"), ("C34.1", 2, "AD")]
    assert codes(http, encounter(http, "V-2")) == stated
    assert post(http, message(msh("ADT^A08^ADT_A01", "T2"), "EVN|A08|20260311080000", PID, pv1)) == "AA"
    assert codes(http, encounter(http, "V-2")) == stated
    assert post(http, message(msh("ADT^A01^ADT_A01", "T3"), "EVN|A01|20260310080000", PID, pv1, *dg1s)) == "AA"
    assert codes(http, encounter(http, "V-2")) == stated
    # the discharge without DG1 keeps them; one re-sending Z51.1 as final updates its entry alone
    visit(http, "T4", "V-2", "20260310080000", "20260312090000")
    assert codes(http, encounter(http, "V-2")) == stated
    visit(http, "T5", "V-2", "20260310080000", "20260312090000",
          "DG1|1||Z51.1^肿瘤化学治疗疗程^I10|||F|||||||||1|||||D-2")
    assert codes(http, encounter(http, "V-2")) == [("Z51.1", 1, "DD"), ("C34.1", 2, "AD")]
    assert pairs(engine, http) == []


def test_a_fhir_put_states_the_whole_diagnosis_list(county: Any) -> None:
    _, http, _ = county
    visit(http, "P1", "V-1", "20260310080000", "20260312090000",
          "DG1|1||Z51.1^肿瘤化学治疗疗程^I10|||F|||||||||1|||||D-2",
          "DG1|2||C34.1^肺癌^I10|||F|||||||||2|||||D-3")
    enc = encounter(http, "V-1")
    enc["diagnosis"] = enc["diagnosis"][1:]
    enc.pop("meta", None)
    res = http.put(f"/fhir/Encounter/{enc['id']}", json=enc)
    assert res.status_code in (200, 201), res.text
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 2, "DD")]


def test_a_bad_or_zero_priority_states_no_rank(county: Any) -> None:
    _, http, _ = county
    raw = message(msh("ADT^A03^ADT_A03", "B1"), "EVN|A03|20260312090000", PID,
                  PV1.format(visit="V-1", start="20260310080000", end="20260312090000"),
                  "DG1|1||Z51.1^肿瘤化学治疗疗程^I10|||F|||||||||x|||||D-2",
                  "DG1|2||C34.1^肺癌^I10|||F|||||||||0|||||D-3")
    r = http.post("/hl7v2", content=raw, headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200 and b"MSA|AA" in r.content, r.content
    errs = [s for s in r.content.decode().split("\r") if s.startswith("ERR|")]
    assert len(errs) == 1 and "DG1^1^15" in errs[0] and "'x'" in errs[0], errs  # "0" is silent
    assert codes(http, encounter(http, "V-1")) == [("Z51.1", None, "DD"), ("C34.1", None, "DD")]
