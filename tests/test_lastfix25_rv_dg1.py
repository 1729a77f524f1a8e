"""rvlast25a: review probes of dgfix25b (DG1-21 D settled against the store) -- real bytes through POST
/hl7v2 on the real store, read back over /fhir."""

from __future__ import annotations

from typing import Any

from tests.test_dg24_encounter_diagnosis import codes, encounter
from tests.test_dgfix25b_rv_probes import C341, STAY, Z511, _ack, _conditions, _p12
from tests.test_moneyfix24_planned import county as county  # noqa: F401  (the fixture)
from tests.test_moneyfix24_rv2_split_hl7 import visit


def _status(c: dict[str, Any]) -> str | None:
    return ((c.get("verificationStatus") or {}).get("coding") or [{}])[0].get("code")


def test_d_by_code_does_not_withdraw_a_condition_another_source_recorded(county: Any) -> None:
    """The stay holds no HIS Z51.1; a clinician recorded one over FHIR for the stay. The HIS's D by code
    of Z51.1 names nothing the HIS stated: it must not mark the clinician's record entered-in-error."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{C341}|||F|||||||||1")
    enc = encounter(http, "V-1")
    posted = http.post("/fhir/Condition", json={
        "resourceType": "Condition", "subject": enc["subject"], "encounter": {"reference": f"Encounter/{enc['id']}"},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "confirmed"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                  "code": "problem-list-item"}]}],
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "Z51.1"}]},
    })
    assert posted.status_code == 201, posted.text
    cid = posted.json()["id"]
    ack = _ack(http, _p12("K1", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|A" in ack, ack
    mine = http.get(f"/fhir/Condition/{cid}").json()
    assert _status(mine) == "confirmed", (ack, mine)


def test_d_by_code_after_a_readd_by_dg1_20_withdraws_the_live_one(county: Any) -> None:
    """Z51.1 added by code, withdrawn by code, added again with DG1-20 D-2 (listed), then withdrawn by code
    again: the stay must not keep listing Z51.1 (the D landed on the already-withdrawn code-keyed one)."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    assert "MSA|AA" in _ack(http, _p12("B1", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AA" in _ack(http, _p12("B2", f"DG1|1||{Z511}|||F|||||||||1|||||D-2|A"))
    assert ("Z51.1", 1, "DD") in codes(http, encounter(http, "V-1"))
    ack = _ack(http, _p12("B3", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    listed = codes(http, encounter(http, "V-1"))
    live = [c for c in _conditions(http, code="Z51.1") if _status(c) != "entered-in-error"]
    # either refused (AE: which Z51.1 is meant is not said) or the live one withdrawn -- never AA leaving it
    assert "MSA|AE" in ack or (("Z51.1", 1, "DD") not in listed and not live), (ack, listed, live)


def test_guard_d_by_code_keeps_the_stored_dg1_20_identifier(county: Any) -> None:
    """The D by code reaching the stay's D-2 Z51.1 withdraws it without erasing its DG1-20 identifier."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1|||||D-2", f"DG1|2||{C341}|||F|||||||||2|||||D-3")
    assert "MSA|AA" in _ack(http, _p12("H1", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    z = _conditions(http, identifier="D-2")
    assert len(z) == 1 and _status(z[0]) == "entered-in-error", z
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 2, "DD")]


def test_guard_d_of_the_stays_condition_leaves_another_stays_alone(county: Any) -> None:
    """Two stays with Z51.1 each; a D by code under V-2 withdraws V-2's only, V-1's stays listed."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1|||||D-2")
    visit(http, "A2", "V-2", "20260320080000", "20260322090000", f"DG1|1||{Z511}|||F|||||||||1|||||D-2")
    ack = _ack(http, _p12("G1", f"DG1|1||{Z511}|||F|||||||||1||||||D", visit_number="V-2"))
    assert "MSA|AA" in ack, ack
    assert codes(http, encounter(http, "V-1")) == [("Z51.1", 1, "DD")]
    assert codes(http, encounter(http, "V-2")) == []


def test_an_oru_echoing_the_orders_dg1_does_not_revive_a_withdrawn_diagnosis(county: Any) -> None:
    """P12 D withdraws Z51.1 (entry gone, Condition entered-in-error). A later ORU echoing the order's
    DG1 Z51.1 (a result's DG1 adds nothing, dg25) must not make the withdrawn Condition stand again."""
    from tests.test_convert_families import PID, message, msh

    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    assert "MSA|AA" in _ack(http, _p12("O1", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    (z,) = _conditions(http, code="Z51.1")
    assert _status(z) == "entered-in-error", z
    oru = message(msh("ORU^R01^ORU_R01", "O2"), PID, "PV1|1|I|病区^9^9^FNXRMYY||||||||||||||||V-1",
                  "OBR|1|ORD-1^HIS|LAB-1^LIS|GLU^葡萄糖^L|||20260311080000|||||||||||||||20260311091000|||F",
                  "OBX|1|NM|GLU^葡萄糖^L||5.1|mmol/L|||||F", f"DG1|1||{Z511}|||W")
    assert "MSA|AA" in _ack(http, oru)
    (z,) = _conditions(http, code="Z51.1")
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 2, "DD")]
    assert _status(z) == "entered-in-error", z


def test_an_a08_repeating_the_dg1_does_not_undo_a_fhir_entered_in_error(county: Any) -> None:
    """A coder marks the HIS's Z51.1 entered-in-error over FHIR (PUT); the HIS's next A08 repeats the
    same DG1 unchanged (no DG1-21): a repeated snapshot is not a new statement of it -- was the status kept
    before dgfix25b (the merge kept the stored status)."""
    from tests.test_dgfix25b_rv_probes import _a08

    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    (z,) = _conditions(http, code="Z51.1")
    z = {k: v for k, v in z.items() if k != "meta"}
    z.pop("clinicalStatus", None)
    z["verificationStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "entered-in-error"}]}
    put = http.put(f"/fhir/Condition/{z['id']}", json=z)
    assert put.status_code == 200, put.text
    ack = _ack(http, _a08("F1", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"))
    assert "MSA|AA" in ack, ack
    (z,) = _conditions(http, code="Z51.1")
    assert _status(z) == "entered-in-error", z


def _batch(http: Any, *messages: bytes) -> str:
    body = (b"BHS|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||||BATCH9\r" + b"".join(messages)
            + b"BTS|%d\r" % len(messages))
    return _ack(http, body)


def _a01(ctl: str, *dg1s: str) -> bytes:
    from tests.test_convert_families import PID, message, msh
    from tests.test_moneyfix24_rv2_split_hl7 import PV1

    return message(msh("ADT^A01^ADT_A01", ctl), "EVN|A01|20260310080000", PID,
                   PV1.format(visit="V-1", start=STAY[1], end=""), *dg1s)


def test_batch_add_then_d_of_the_same_diagnosis_withdraws_it(county: Any) -> None:
    """One batch: the A01 lists Z51.1 (by code), the P12 after it deletes Z51.1 (by code, the same key).
    The D is settled against the store before the batch writes, so it 'names nothing stored': AA with a
    warning, and the diagnosis the sender deleted stays listed and live."""
    _, http, _ = county
    ack = _batch(http, _a01("T1", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"),
                 _p12("T2", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert ack.count("MSA|A") == 2, ack
    listed = codes(http, encounter(http, "V-1"))
    z = _conditions(http, code="Z51.1")
    assert ("Z51.1", 1, "DD") not in listed and all(_status(c) == "entered-in-error" for c in z), (ack, listed, z)


def test_batch_d_then_a_again_lists_it_live(county: Any) -> None:
    """Stored stay with Z51.1; one batch: P12 D Z51.1, then P12 A Z51.1 (the coder undoes the delete). The
    A's 'no longer entered-in-error' was decided against the store before the D wrote: Z51.1 is listed
    again while its Condition stays entered-in-error (two answers for one diagnosis)."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    ack = _batch(http, _p12("U1", f"DG1|1||{Z511}|||F|||||||||1||||||D"),
                 _p12("U2", f"DG1|1||{Z511}|||F|||||||||1||||||A"))
    assert ack.count("MSA|AA") == 2, ack
    listed = codes(http, encounter(http, "V-1"))
    (z,) = _conditions(http, code="Z51.1")
    assert ("Z51.1", 1, "DD") in listed and _status(z) != "entered-in-error", (listed, z)


def test_d_by_code_is_not_refused_for_a_condition_another_source_recorded(county: Any) -> None:
    """The HIS's Z51.1 (DG1-20 D-2) and a clinician's Z51.1 over FHIR on the same stay: the HIS's D by code
    names its own one; the clinician's record must neither make it ambiguous (AE) nor be withdrawn."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1|||||D-2", f"DG1|2||{C341}|||F|||||||||2|||||D-3")
    enc = encounter(http, "V-1")
    posted = http.post("/fhir/Condition", json={
        "resourceType": "Condition", "subject": enc["subject"], "encounter": {"reference": f"Encounter/{enc['id']}"},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "confirmed"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "Z51.1"}]},
    })
    assert posted.status_code == 201, posted.text
    ack = _ack(http, _p12("K2", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AA" in ack, ack
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 2, "DD")]
    assert _status(http.get(f"/fhir/Condition/{posted.json()['id']}").json()) == "confirmed"
