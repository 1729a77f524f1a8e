"""dgmend26: a DG1-21 D inside one batch, and whose entered-in-error a DG1 may undo -- real bytes through
POST /hl7v2 (an FHS/BHS batch) or the ingestor's batch (an MLLP batch), the real store, read back over /fhir."""

from __future__ import annotations

from typing import Any

from tests.test_dg24_encounter_diagnosis import codes, encounter
from tests.test_dgfix25b_rv_probes import C341, STAY, Z511, _a08, _ack, _conditions, _p12
from tests.test_lastfix25_rv_dg1 import _a01, _batch, _status
from tests.test_moneyfix24_planned import county as county  # noqa: F401  (the fixture)
from tests.test_moneyfix24_rv2_split_hl7 import visit

VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def _put_status(http: Any, cid: str, code: str) -> None:
    """A coder's PUT over FHIR: the Condition as read, its verification status her own."""
    z = {k: v for k, v in http.get(f"/fhir/Condition/{cid}").json().items() if k != "meta"}
    if code == "entered-in-error":
        z.pop("clinicalStatus", None)
    z["verificationStatus"] = {"coding": [{"system": VER, "code": code}]}
    put = http.put(f"/fhir/Condition/{cid}", json=z)
    assert put.status_code == 200, put.text


def _z(http: Any) -> dict[str, Any]:
    (z,) = _conditions(http, code="Z51.1")
    return z


def test_mllp_batch_add_then_d_withdraws_it(county: Any) -> None:
    """The same as the FHS/BHS probe, as one MLLP batch (the listener's worker takes queued messages
    together): the A01 lists Z51.1, the P12 after it deletes it by code."""
    engine, http, _ = county
    outcomes = engine.ingestor.process([
        (_a01("M1", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"), "mllp", "p"),
        (_p12("M2", f"DG1|1||{Z511}|||F|||||||||1||||||D"), "mllp", "p")])
    assert [o.code for o in outcomes] == ["AA", "AA"], [o.ack for o in outcomes]
    assert b"DG1^1^21" not in outcomes[1].ack, outcomes[1].ack  # no "names nothing stored" warning
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 2, "DD")]
    assert _status(_z(http)) == "entered-in-error"


def test_batch_add_with_dg1_20_then_d_by_code_withdraws_it(county: Any) -> None:
    """One batch: the A01 lists Z51.1 with DG1-20 D-2; the P12 deletes Z51.1 by its code alone. The D by
    code finds the stay's one Z51.1 the batch itself wrote (the by-code fallback sees the batch's writes)."""
    _, http, _ = county
    ack = _batch(http, _a01("T1", f"DG1|1||{Z511}|||F|||||||||1|||||D-2", f"DG1|2||{C341}|||F|||||||||2|||||D-3"),
                 _p12("T2", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert ack.count("MSA|AA") == 2 and "DG1^1^21" not in ack, ack
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 2, "DD")]
    z = _z(http)
    assert _status(z) == "entered-in-error" and z["identifier"][0]["value"] == "D-2", z


def test_two_batches_add_then_d_withdraws_it(county: Any) -> None:
    """The same two messages as two batches (guard: the store's answer, as before)."""
    _, http, _ = county
    assert "MSA|AA" in _batch(http, _a01("S1", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"))
    assert "MSA|AA" in _batch(http, _p12("S2", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 2, "DD")]
    assert _status(_z(http)) == "entered-in-error"


def test_two_batches_d_then_a_lists_it_live(county: Any) -> None:
    """D then A of Z51.1 as two batches (guard): listed again, no longer entered-in-error."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    assert "MSA|AA" in _batch(http, _p12("R1", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AA" in _batch(http, _p12("R2", f"DG1|1||{Z511}|||F|||||||||1||||||A"))
    assert ("Z51.1", 1, "DD") in codes(http, encounter(http, "V-1"))
    assert _status(_z(http)) != "entered-in-error"


def test_batch_d_then_a_then_d_withdraws_it(county: Any) -> None:
    """Three P12s in one batch, D, A, D of the stored Z51.1: the last stands -- withdrawn, not listed."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    ack = _batch(http, _p12("W1", f"DG1|1||{Z511}|||F|||||||||1||||||D"),
                 _p12("W2", f"DG1|1||{Z511}|||F|||||||||1||||||A"),
                 _p12("W3", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert ack.count("MSA|AA") == 3, ack
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 2, "DD")]
    assert _status(_z(http)) == "entered-in-error"


def test_a_message_of_the_batch_refused_at_write_rolls_back_only_itself(county: Any) -> None:
    """One batch: the A01 adding Z51.1 fails at write (quarantined, AE); the P12 after it deleting Z51.1
    is answered as if alone: nothing stored is Z51.1 -- AA with the warning, no Condition made (its D
    was settled against the A01's writes, which were rolled back: settled again, in message order)."""
    engine, http, _ = county

    def fail_the_a01(resource: dict[str, Any], previous: Any) -> list[dict[str, Any]]:
        if (resource.get("resourceType") == "Condition" and "verificationStatus" not in resource
                and any(c.get("code") == "Z51.1" for c in resource["code"]["coding"])):
            raise RuntimeError("disk trouble for the A01's Condition")
        return []

    engine.repository.add_write_hook(fail_the_a01)
    ack = _batch(http, _a01("Q1", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"),
                 _p12("Q2", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AE|Q1" in ack and "MSA|AA|Q2" in ack and "DG1^1^21" in ack, ack
    assert _conditions(http, code="Z51.1") == []


def test_a_message_of_the_batch_refused_at_conversion_is_not_counted_on(county: Any) -> None:
    """One batch: the A01 is refused (DG1-21 Q is no table 0206 code: AE); the P12 deleting Z51.1 after it
    is answered as if alone (AA with the warning), and no Condition is made."""
    _, http, _ = county
    ack = _batch(http, _a01("P1", f"DG1|1||{Z511}|||F|||||||||1||||||Q", f"DG1|2||{C341}|||F|||||||||2"),
                 _p12("P2", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AE|P1" in ack and "MSA|AA|P2" in ack and "DG1^1^21" in ack, ack
    assert _conditions(http, code="Z51.1") == []


def test_a_feed_withdrawal_a_coder_kept_is_still_the_feeds(county: Any) -> None:
    """The HIS withdraws Z51.1 (P12 D); a coder edits the Condition over FHIR leaving its status as it is (a
    note); the HIS then sends Z51.1 again (P12 A): the withdrawal was the HIS's -- listed and live again."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    assert "MSA|AA" in _ack(http, _p12("N1", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    z = {k: v for k, v in _z(http).items() if k != "meta"}
    z["note"] = [{"text": "withdrawn by the billing office"}]
    assert http.put(f"/fhir/Condition/{z['id']}", json=z).status_code == 200
    assert "MSA|AA" in _ack(http, _p12("N2", f"DG1|1||{Z511}|||F|||||||||1||||||A"))
    assert ("Z51.1", 1, "DD") in codes(http, encounter(http, "V-1"))
    assert _status(_z(http)) != "entered-in-error"


def test_a_coders_own_entered_in_error_after_a_revival_is_kept(county: Any) -> None:
    """Withdrawn by the HIS, stated again by it (revived), then marked entered-in-error by a coder over
    FHIR: her status is hers -- an A08 repeating the DG1 keeps it."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    assert "MSA|AA" in _ack(http, _p12("C1", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AA" in _ack(http, _p12("C2", f"DG1|1||{Z511}|||F|||||||||1||||||A"))
    assert _status(_z(http)) != "entered-in-error"
    _put_status(http, _z(http)["id"], "entered-in-error")
    assert "MSA|AA" in _ack(http, _a08("C3", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"))
    assert _status(_z(http)) == "entered-in-error"


def test_a_coders_entered_in_error_survives_an_a08_in_a_batch(county: Any) -> None:
    """The coder's FHIR entered-in-error, then one batch of two A08s repeating the DG1s: kept."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    _put_status(http, _z(http)["id"], "entered-in-error")
    ack = _batch(http, _a08("E1", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"),
                 _a08("E2", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"))
    assert ack.count("MSA|AA") == 2, ack
    assert _status(_z(http)) == "entered-in-error"


def test_the_feeds_own_d_then_a_revives_a_coders_entered_in_error(county: Any) -> None:
    """A coder's FHIR entered-in-error; the HIS then deletes Z51.1 and adds it again (two P12s): its D
    made the withdrawal its own, its A undoes it -- listed and live (the last statement stands)."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    _put_status(http, _z(http)["id"], "entered-in-error")
    assert "MSA|AA" in _ack(http, _p12("G1", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AA" in _ack(http, _p12("G2", f"DG1|1||{Z511}|||F|||||||||1||||||A"))
    assert ("Z51.1", 1, "DD") in codes(http, encounter(http, "V-1"))
    assert _status(_z(http)) != "entered-in-error"


def test_d_by_code_after_a_readd_by_dg1_20_in_one_batch(county: Any) -> None:
    """The MED probe's three P12s in one batch: the last D by code withdraws the live D-2 Z51.1 the batch
    re-added, not the code-keyed one already withdrawn."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")
    ack = _batch(http, _p12("H1", f"DG1|1||{Z511}|||F|||||||||1||||||D"),
                 _p12("H2", f"DG1|1||{Z511}|||F|||||||||1|||||D-2|A"),
                 _p12("H3", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert ack.count("MSA|AA") == 3, ack
    assert codes(http, encounter(http, "V-1")) == [("C34.1", 2, "DD")]
    assert all(_status(c) == "entered-in-error" for c in _conditions(http, code="Z51.1"))


def test_each_backend_settles_a_batch_in_message_order(backend_settings: Any) -> None:
    """SQLite and MongoDB (mongomock; a real one with HUREN_MONGODB_URI): the batch's D after its A01
    withdraws Z51.1; a batch whose A01 fails at write answers its D as if alone (MongoDB writes such a
    batch message by message, each in a block of its own)."""
    from engine.engine import Engine

    def conditions(engine: Any) -> list[dict[str, Any]]:
        return [r for r in engine.repository.search("Condition", [("code", "Z51.1")]).resources]

    with Engine(backend_settings) as engine:
        outcomes = engine.ingestor.process([
            (_a01("B1", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"), "mllp", "p"),
            (_p12("B2", f"DG1|1||{Z511}|||F|||||||||1||||||D"), "mllp", "p")])
        assert [o.code for o in outcomes] == ["AA", "AA"] and b"DG1^1^21" not in outcomes[1].ack
        assert [_status(c) for c in conditions(engine)] == ["entered-in-error"]

    def fail_the_a01(resource: dict[str, Any], previous: Any) -> list[dict[str, Any]]:
        if (resource.get("resourceType") == "Condition" and "verificationStatus" not in resource
                and any(c.get("code") == "Z51.1" for c in resource["code"]["coding"])):
            raise RuntimeError("disk trouble for the A01's Condition")
        return []

    with Engine(backend_settings.with_(data_dir=backend_settings.data_dir / "second")) as engine:
        engine.repository.add_write_hook(fail_the_a01)
        outcomes = engine.ingestor.process([
            (_a01("B3", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"), "mllp", "p"),
            (_p12("B4", f"DG1|1||{Z511}|||F|||||||||1||||||D"), "mllp", "p")])
        assert [o.code for o in outcomes] == ["AE", "AA"] and b"DG1^1^21" in outcomes[1].ack, outcomes
        assert conditions(engine) == []
