"""rvdg26: probes of dgmend26 -- the origin tag on a DG1-21 D's entered-in-error, and a D inside one batch.
Real bytes through POST /hl7v2 (single messages, FHS/BHS batches) or the ingestor's batch (as the MLLP
listener's worker hands it), the real store, read back over /fhir."""

from __future__ import annotations

import copy
from typing import Any

from adapters.convert import his
from tests.test_dg24_encounter_diagnosis import codes, encounter
from tests.test_dgfix25b_rv_probes import C341, STAY, Z511, _a08, _ack, _conditions, _p12
from tests.test_lastfix25_rv_dg1 import _a01, _batch, _status
from tests.test_moneyfix24_planned import county as county  # noqa: F401  (the fixture)
from tests.test_moneyfix24_rv2_split_hl7 import visit

VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
TAG = "urn:huren:StructureDefinition:hl7v2-diagnosis-action"


def _z(http: Any) -> dict[str, Any]:
    (z,) = _conditions(http, code="Z51.1")
    return z


def _bare(http: Any) -> dict[str, Any]:
    return {k: v for k, v in _z(http).items() if k != "meta"}


def _stay_with_z(http: Any) -> None:
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2")


def _withdrawn_by_the_his(http: Any, ctl: str = "D1") -> None:
    assert "MSA|AA" in _ack(http, _p12(ctl, f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert _status(_z(http)) == "entered-in-error"
    assert ("Z51.1", 1, "DD") not in codes(http, encounter(http, "V-1"))


# ---------------------------------------------------------------------------------------------- findings


def test_an_untagged_feed_withdrawal_stored_before_this_round_is_revived_by_the_his_re_add(county: Any) -> None:
    """FINDING (regression for stored data). A Condition the HIS withdrew before this round carries no tag
    (its version was written by the BAR feed). The HIS then re-adds Z51.1 (P12 A): on the base the
    Condition stands again; now the visit lists Z51.1 while its Condition stays entered-in-error -- two
    answers, and everything reading verificationStatus (split admissions' VOID) counts the re-added
    diagnosis for nothing."""
    engine, http, _ = county
    _stay_with_z(http)
    _withdrawn_by_the_his(http)
    old = _bare(http)
    old["verificationStatus"] = {"coding": [{"system": VER, "code": "entered-in-error"}]}  # as written before
    engine.repository.update(old, source="BAR")  # the feed's own version, as a store upgraded in place holds it
    assert "MSA|AA" in _ack(http, _p12("D2", f"DG1|1||{Z511}|||F|||||||||1||||||A"))
    listed = ("Z51.1", 1, "DD") in codes(http, encounter(http, "V-1"))
    assert listed and _status(_z(http)) != "entered-in-error", (listed, _z(http))


def test_a_coders_in_place_status_edits_inherit_the_feeds_tag(county: Any) -> None:
    """FINDING. The HIS withdraws Z51.1 (tagged). A coder confirms it over FHIR by changing the status's
    code in place (her client edits ``verificationStatus.coding[0].code``: the extension rides along), and
    later marks it entered-in-error the same way. That entered-in-error is hers -- but it still carries the
    feed's tag, so the HIS's next A08 repeating the DG1 undoes it (the case rvlast25a asked to keep)."""
    _, http, _ = county
    _stay_with_z(http)
    _withdrawn_by_the_his(http)
    for code in ("confirmed", "entered-in-error"):
        z = _bare(http)
        z["verificationStatus"]["coding"][0]["code"] = code
        assert http.put(f"/fhir/Condition/{z['id']}", json=z).status_code == 200
    assert any(e.get("url") == TAG for e in _z(http)["verificationStatus"].get("extension", ()))
    assert "MSA|AA" in _ack(http, _a08("C3", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"))
    assert _status(_z(http)) == "entered-in-error", _z(http)


def test_a_fhir_client_may_not_write_the_feeds_withdrawal_tag(county: Any) -> None:
    """FINDING (LOW). The tag is the engine's word that a feed's D withdrew the diagnosis, yet any FHIR client
    may write it: a coder's entered-in-error PUT with the tag (copied from another Condition, or forged) is
    stored as the feed's and the next A08 repeating the DG1 undoes it. Expected: refused (4xx) or the tag
    not taken from a client."""
    _, http, _ = county
    _stay_with_z(http)
    z = _bare(http)
    z.pop("clinicalStatus", None)
    z["verificationStatus"] = copy.deepcopy(his.ENTERED_IN_ERROR)
    put = http.put(f"/fhir/Condition/{z['id']}", json=z)
    stored = _z(http)
    assert put.status_code >= 400 or not his.withdrawn_by_sender(stored), (put.status_code, stored)


# ---------------------------------------------------------------------------------------------- guards


def test_guard_the_tag_is_on_a_feeds_d_only_and_gone_after_the_revival(county: Any) -> None:
    """The D writes the tag; the HIS's A removes the whole status (no stale tag left on a live Condition)."""
    _, http, _ = county
    _stay_with_z(http)
    _withdrawn_by_the_his(http)
    assert his.withdrawn_by_sender(_z(http))
    assert "MSA|AA" in _ack(http, _p12("D2", f"DG1|1||{Z511}|||F|||||||||1||||||A"))
    z = _z(http)
    assert "verificationStatus" not in z or TAG not in str(z["verificationStatus"]), z
    assert ("Z51.1", 1, "DD") in codes(http, encounter(http, "V-1"))


def test_guard_a_coders_whole_status_put_strips_the_tag_and_survives_a_batch_of_a08s(county: Any) -> None:
    """Feed's D, then the coder's own entered-in-error written as a whole new status: hers -- a batch of two
    A08s repeating the DG1 keeps it (both answered AA)."""
    _, http, _ = county
    _stay_with_z(http)
    _withdrawn_by_the_his(http)
    z = _bare(http)
    z["verificationStatus"] = {"coding": [{"system": VER, "code": "entered-in-error"}]}
    assert http.put(f"/fhir/Condition/{z['id']}", json=z).status_code == 200
    ack = _batch(http, _a08("E1", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"),
                 _a08("E2", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"))
    assert ack.count("MSA|AA") == 2, ack
    assert _status(_z(http)) == "entered-in-error"


def test_guard_the_shared_status_constant_is_not_altered_by_writes(county: Any) -> None:
    """``his.ENTERED_IN_ERROR`` is one dict set on every withdrawn Condition: a write must not change it."""
    before = copy.deepcopy(his.ENTERED_IN_ERROR)
    _, http, _ = county
    _stay_with_z(http)
    _withdrawn_by_the_his(http)
    ack = _batch(http, _a01("G1", f"DG1|1||{C341}|||F|||||||||2"), _p12("G2", f"DG1|2||{C341}|||F|||||||||2||||||D"))
    assert ack.count("MSA|AA") == 2, ack
    assert before == his.ENTERED_IN_ERROR


def test_guard_batch_add_d_add_where_the_add_fails_at_write(county: Any) -> None:
    """One batch: A01 adds Z51.1 (fails at write: AE), P12 D Z51.1 (leaned on it: settled again -> nothing
    stored, AA with the DG1-21 warning), P12 A Z51.1 (leaned on both: settled again -> listed and live)."""
    engine, http, _ = county

    def fail_the_a01(resource: dict[str, Any], previous: Any) -> list[dict[str, Any]]:
        if (resource.get("resourceType") == "Encounter" and previous is None
                and any(d.get("rank") == 2 for d in resource.get("diagnosis") or ())):
            raise RuntimeError("disk trouble for the A01's Encounter")
        return []

    engine.repository.add_write_hook(fail_the_a01)
    ack = _batch(http, _a01("K1", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"),
                 _p12("K2", f"DG1|1||{Z511}|||F|||||||||1||||||D"),
                 _p12("K3", f"DG1|1||{Z511}|||F|||||||||1||||||A"))
    assert "MSA|AE|K1" in ack and "MSA|AA|K2" in ack and "MSA|AA|K3" in ack and "DG1^1^21" in ack, ack
    assert len(_conditions(http, code="Z51.1")) == 1
    assert _status(_z(http)) != "entered-in-error", _z(http)
    assert ("Z51.1", 1, "DD") in codes(http, encounter(http, "V-1"))
    assert not any(c == "C34.1" for c, _, _ in codes(http, encounter(http, "V-1")))


def test_guard_an_unrelated_failure_does_not_resettle_a_d_that_leaned_on_a_written_message(county: Any) -> None:
    """One batch: P12 D Z51.1 of the stored stay, an A08 of another patient that fails at write, P12 A Z51.1.
    The A leaned on the D, which was written: Z51.1 listed and live; the failing message alone is AE."""
    from tests.test_convert_families import message, msh
    from tests.test_moneyfix24_rv2_split_hl7 import PV1

    engine, http, _ = county
    _stay_with_z(http)

    def fail_other(resource: dict[str, Any], previous: Any) -> list[dict[str, Any]]:
        if resource.get("resourceType") == "Patient" and "M0009" in str(resource.get("identifier")):
            raise RuntimeError("disk trouble for the other patient")
        return []

    engine.repository.add_write_hook(fail_other)
    other = message(msh("ADT^A08^ADT_A01", "U2"), "EVN|A08|20260312100000", "PID|1||M0009^^^FNXRMYY^MR||王^五||19800101|M",
                    PV1.format(visit="V-9", start=STAY[1], end=STAY[2]))
    ack = _batch(http, _p12("U1", f"DG1|1||{Z511}|||F|||||||||1||||||D"), other,
                 _p12("U3", f"DG1|1||{Z511}|||F|||||||||1||||||A"))
    assert "MSA|AA|U1" in ack and "MSA|AE|U2" in ack and "MSA|AA|U3" in ack, ack
    assert ("Z51.1", 1, "DD") in codes(http, encounter(http, "V-1"))
    assert _status(_z(http)) != "entered-in-error", _z(http)


def test_guard_each_backend_add_d_add_with_the_add_failing(backend_settings: Any) -> None:
    """SQLite and mongomock: A01 (fails at write), D, A of Z51.1 in one ingestor batch: AE, AA (warning), AA;
    Z51.1 stored once, live."""
    from engine.engine import Engine

    def fail_the_a01(resource: dict[str, Any], previous: Any) -> list[dict[str, Any]]:
        if (resource.get("resourceType") == "Encounter" and previous is None
                and any(d.get("rank") == 2 for d in resource.get("diagnosis") or ())):
            raise RuntimeError("disk trouble for the A01's Encounter")
        return []

    with Engine(backend_settings) as engine:
        engine.repository.add_write_hook(fail_the_a01)
        outcomes = engine.ingestor.process([
            (_a01("B1", f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2"), "mllp", "p"),
            (_p12("B2", f"DG1|1||{Z511}|||F|||||||||1||||||D"), "mllp", "p"),
            (_p12("B3", f"DG1|1||{Z511}|||F|||||||||1||||||A"), "mllp", "p")])
        assert [o.code for o in outcomes] == ["AE", "AA", "AA"], [o.ack for o in outcomes]
        assert b"DG1^1^21" in outcomes[1].ack
        found = engine.repository.search("Condition", [("code", "Z51.1")]).resources
        assert [_status(c) for c in found] == [None], found


def test_a_repeated_d_by_code_of_a_withdrawn_diagnosis_is_not_refused(county: Any) -> None:
    """FINDING (LOW-MED, new refusal). Z51.1 listed by code, withdrawn by the HIS's D by code; two later cycles
    of Z51.1 are listed with their own DG1-20 (D-2, D-3). The HIS then sends the D by code again (its P12
    repeating the line): the code-keyed Condition it names is withdrawn already -- on the base an AA
    changing nothing; now the D goes on to the stay's standing Z51.1s, finds two, and the message is refused
    (AE), holding up the sender's queue for a delete that was already done."""
    _, http, _ = county
    _stay_with_z(http)
    _withdrawn_by_the_his(http)
    assert "MSA|AA" in _ack(http, _p12("D2", f"DG1|1||{Z511}|||F|||||||||1|||||D-2|A",
                                       f"DG1|2||{Z511}|||F|||||||||3|||||D-3|A"))
    ack = _ack(http, _p12("D3", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AA" in ack, ack
    live = [c for c in _conditions(http, code="Z51.1") if _status(c) != "entered-in-error"]
    assert len(live) == 2, live


def test_a_d_by_code_of_a_coder_withdrawn_diagnosis_does_not_reach_the_stays_other_one(county: Any) -> None:
    """FINDING (HIGH). The stay lists Z51.1 twice: by code (no DG1-20) and as D-2. A coder marks the by-code
    Z51.1 entered-in-error over FHIR (her own status, no tag). The HIS then deletes its by-code Z51.1 (P12 D,
    no DG1-20: the same key). On the base the D lands on that Condition; now, because it is entered-in-error,
    the D goes on to the stay's one standing Z51.1 -- D-2, which the HIS never deleted -- withdraws it and
    takes its entry off the visit."""
    _, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{Z511}|||F|||||||||1", f"DG1|2||{C341}|||F|||||||||2",
          f"DG1|3||{Z511}|||F|||||||||3|||||D-2")
    (by_code,) = [c for c in _conditions(http, code="Z51.1") if not c.get("identifier")]
    z = {k: v for k, v in by_code.items() if k not in ("meta", "clinicalStatus")}
    z["verificationStatus"] = {"coding": [{"system": VER, "code": "entered-in-error"}]}
    assert http.put(f"/fhir/Condition/{z['id']}", json=z).status_code == 200
    ack = _ack(http, _p12("H1", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AA" in ack, ack
    (d2,) = [c for c in _conditions(http, code="Z51.1") if c.get("identifier")]
    assert _status(d2) != "entered-in-error", d2
    assert ("Z51.1", 3, "DD") in codes(http, encounter(http, "V-1"))


def test_a_d_refused_for_a_rolled_back_earlier_message_is_settled_again(county: Any) -> None:
    """FINDING (MED). The stay holds Z51.1 as D-3. One batch: an A08 adds Z51.1 as D-2 (it fails at write: AE,
    rolled back), then a P12 deletes Z51.1 by code. Settled against the A08's writes the D saw two Z51.1s and
    was refused (AE) -- but the A08 was not written, and the D's refusal is not settled again (its leaned_on
    is only kept when settling succeeds): answered as if alone it withdraws D-3 (the base's answer)."""
    engine, http, _ = county
    visit(http, "A1", *STAY, f"DG1|1||{C341}|||F|||||||||1", f"DG1|2||{Z511}|||F|||||||||2|||||D-3")

    def fail_d2(resource: dict[str, Any], previous: Any) -> list[dict[str, Any]]:
        if resource.get("resourceType") == "Condition" and previous is None and "D-2" in str(resource.get("identifier")):
            raise RuntimeError("disk trouble for the A08's new Condition")
        return []

    engine.repository.add_write_hook(fail_d2)
    ack = _batch(http, _a08("R1", f"DG1|1||{C341}|||F|||||||||1", f"DG1|2||{Z511}|||F|||||||||2|||||D-3",
                            f"DG1|3||{Z511}|||F|||||||||3|||||D-2"),
                 _p12("R2", f"DG1|1||{Z511}|||F|||||||||1||||||D"))
    assert "MSA|AE|R1" in ack and "MSA|AA|R2" in ack, ack
    (d3,) = _conditions(http, code="Z51.1")
    assert _status(d3) == "entered-in-error", d3
