"""rvrvpay26 (review of paymend26): the merge hook through the real path -- HL7 over MLLP, the
reviews over HTTP, the real store. Guards and findings alike; the report names which fail.

DOMAIN.md: what was recognisable for the person at order time is what the ordering doctor could
see; a merge made after the order is not a prior the doctor was shown.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_paymend26_merges import _merged_by_a40
from tests.test_probepay26_agree import _a40, _prior_unidentified, engine  # noqa: F401  (the fixture)
from tests.test_probepay26_windows import CBC, flags, order, reminded, result
from tests.test_recognition_e2e import Sender
from tests.test_reports_duplicates import bearer


def test_rvrvpay26_merge_after_the_repeat_does_not_flag_it(engine: Engine, mllp: int) -> None:  # noqa: F811
    """HOSPB orders and results a blood count on 03-11 (nothing recognisable then: HOSPA's count is
    under an MRN-only record); HOSPA's desk merges that record into the resident's on 03-12. The
    HOSPB test was not a repeat of anything its doctor could see: no flag (else HOSPB is charged
    for a merge made after it)."""
    s = Sender(mllp)
    s.send(_prior_unidentified("HOSPA", "TMP-9", "20260310090000+0800"))
    s.send(order("HOSPA", "A0", "1742-6^ALT^LN", "20260301080000+0800", mrn="MRN-A"))
    assert not reminded(s.send(order("HOSPB", "B1", CBC, "20260311080000+0800")))
    s.send(result("HOSPB", "B1", CBC, "20260311100000+0800"))
    assert flags(engine, "flagged") == []
    assert "MSA|AA|" in s.send(_a40("HOSPA", "MRN-A", "TMP-9", "20260312080000+0800"))
    assert [f for f in flags(engine) if f["status"] not in ("cancelled", "overturned")] == [], flags(engine)


def test_rvrvpay26_later_merge_keeps_an_upheld_flag(engine: Engine, mllp: int) -> None:  # noqa: F811
    """A flag upheld by the fund (HOSPB's count repeating HOSPA's, both under the resident's
    number) stays upheld, at its price, when HOSPA later merges another record (its own earlier
    count, MRN-only) into the resident's: the merge hook must not re-open or re-price money
    already decided."""
    s = Sender(mllp)
    s.send(result("HOSPA", "A1", CBC, "20260310090000+0800", mrn="MRN-A"))
    assert reminded(s.send(order("HOSPB", "B1", CBC, "20260312080000+0800")))
    s.send(result("HOSPB", "B1", CBC, "20260312100000+0800"))
    [f] = flags(engine, "flagged")
    http = TestClient(create_app(engine))
    r = http.post(f"/reports/duplicates/{f['_id']}/review", json={"decision": "upheld", "reason": "属实"},
                  headers=bearer(engine))
    assert r.status_code == 200, r.text
    [before] = flags(engine)
    s.send(_prior_unidentified("HOSPA", "TMP-9", "20260309090000+0800"))
    assert "MSA|AA|" in s.send(_a40("HOSPA", "MRN-A", "TMP-9", "20260313080000+0800"))
    live = [g for g in flags(engine) if g["status"] not in ("cancelled", "overturned")]
    assert [(g["_id"], g["status"], g["price"], g["prior_inst"]) for g in live] == \
        [(before["_id"], before["status"], before["price"], "HOSPA")], (before, flags(engine))


def test_rvrvpay26_merged_results_count_for_a_later_order_at_card_and_check(engine: Engine, mllp: int) -> None:  # noqa: F811
    """Order-time answers agree with the ACK after an A40: the CDS card and $check-recognition for
    the resident's HOSPB record name HOSPA's merged count too."""
    from tests.test_paymend26_panels import _card, _check
    from tests.test_probepay26_agree import _patient
    s = Sender(mllp)
    _merged_by_a40(s)
    s.send(order("HOSPB", "B0", "1742-6^ALT^LN", "20260301080000+0800"))  # registers the resident at HOSPB
    http = TestClient(create_app(engine))
    patient = _patient(http, engine, "MRN-HOSPB")
    cards, checked = _card(http, engine, patient, "58410-2"), _check(http, engine, patient, "58410-2")
    ack = s.send(order("HOSPB", "B1", CBC, "20260312080000+0800"))
    assert (bool(cards), bool(checked), reminded(ack)) == (True, True, True), (cards, checked, ack)


def _a37(inst: str, survivor: str, old: str, when: str) -> str:
    from tests.test_probepay26_windows import WANG, msh
    return (msh(inst, "HIS", "ADT^A37^ADT_A37", when) + f"EVN|A37|{when}\n"
            + f"PID|1||{WANG}^^^公安部^NNCHN~{survivor}^^^{inst}^MR||王^建国||19850412|M\n"
            + f"PID|2||{old}^^^{inst}^MR||王^建国||19850412|M\n")


def test_rvrvpay26_a37_undoing_the_a40_lifts_the_flag(engine: Engine, mllp: int) -> None:  # noqa: F811
    """The desk's own undo of its merge (ADT^A37 naming both records), not an operator's $unlink:
    the MRN-only record's blood count is no longer the resident's, so HOSPB's repeat flagged on it
    is lifted, and a later order is not reminded of it."""
    s = Sender(mllp)
    _merged_by_a40(s)
    assert reminded(s.send(order("HOSPB", "B1", CBC, "20260312080000+0800")))
    s.send(result("HOSPB", "B1", CBC, "20260312100000+0800"))
    assert [f["prior_inst"] for f in flags(engine, "flagged")] == ["HOSPA"]
    ack = s.send(_a37("HOSPA", "MRN-A", "TMP-9", "20260312120000+0800"))
    assert "MSA|AA|" in ack, ack
    assert flags(engine, "flagged") == [], flags(engine)
    ack = s.send(order("HOSPC", "C1", CBC, "20260313080000+0800"))
    assert "of HOSPA" not in ack, ack


def test_rvrvpay26_a37_undoing_the_a40_stops_later_reminders(engine: Engine, mllp: int) -> None:  # noqa: F811
    """After the desk's A37 undoing its A40, a later order for the resident is not reminded of the
    MRN-only record's blood count (HOSPA's)."""
    s = Sender(mllp)
    _merged_by_a40(s)
    assert "MSA|AA|" in s.send(_a37("HOSPA", "MRN-A", "TMP-9", "20260311120000+0800"))
    from tests.test_paymend26_merges import _record
    tmp = _record(engine, "TMP-9")
    stored = engine.repository.read("Patient", tmp)
    # the A37 is stored and the patient index holds it: the merge is undone on both sides
    assert not [k for k in stored.get("link") or () if k.get("type") == "replaced-by"], stored
    assert not (engine.identity.record(tmp) or {}).get("replaced_by"), engine.identity.record(tmp)
    ack = s.send(order("HOSPC", "C1", CBC, "20260312080000+0800"))
    assert "of HOSPA" not in ack, ack
