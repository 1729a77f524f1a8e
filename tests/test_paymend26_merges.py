"""paymend26: a record merged into the resident's identified record counts for the resident, and an
undone merge stops it counting -- real HL7 over MLLP, the operator's ``$link``/``$unlink`` over HTTP,
the real store.

DOMAIN.md "Matching": same person is the document number, decided by the patient index. A blood
count filed at HOSPA under a record with only an MRN, which HOSPA's desk then merges (ADT^A40) into
the resident's record carrying the national ID, is the resident's result (probepay26's finding:
it never counted). The recognition hook asks the patient index whose the merged record is
(``IdentityService.person_compartment``), never the links itself; when an operator undoes the
merge, or merges by hand, the results follow the index's decision.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_probepay26_agree import _a40, _prior_unidentified, engine  # noqa: F401  (the fixture)
from tests.test_probepay26_windows import CBC, flags, msh, order, pid, reminded, result
from tests.test_recognition_e2e import Sender

RIGHT = "320923198504120036"  # the survivor's number, corrected (born 1985-04-12, male)


def _record(engine: Engine, mrn: str) -> str:  # noqa: F811
    [found] = engine.repository.search("Patient", [("identifier", mrn)]).resources
    return str(found["id"])


def _operator(http: TestClient, engine: Engine, op: str, **values: Any) -> None:  # noqa: F811
    kinds = {"source": "valueReference", "target": "valueReference", "reason": "valueString", "type": "valueCode"}
    body = {"resourceType": "Parameters", "parameter": [
        {"name": k, kinds[k]: ({"reference": f"Patient/{v}"} if kinds[k] == "valueReference" else v)}
        for k, v in values.items()]}
    token = engine.auth.issue_system_token("mpi", "system/Patient.rus")
    r = http.post(f"/fhir/Patient/${op}", json=body, headers={"Authorization": "Bearer " + token})
    assert r.status_code == 200, r.text


def _merged_by_a40(s: Sender) -> None:
    s.send(_prior_unidentified("HOSPA", "TMP-9", "20260310090000+0800"))
    s.send(order("HOSPA", "A0", "1742-6^ALT^LN", "20260301080000+0800", mrn="MRN-A"))  # the identified record
    assert "MSA|AA|" in s.send(_a40("HOSPA", "MRN-A", "TMP-9", "20260311080000+0800"))


def test_paymend26_a40_merged_result_counts_then_unmerge_stops_it(engine: Engine, mllp: int) -> None:  # noqa: F811
    """After the A40 the merged record's blood count is the resident's prior (reminded, then the
    repeat flagged); the operator undoes the merge (``$unlink`` of the two): the flag is lifted
    and a later order is reminded of HOSPB's count only, not of it."""
    s = Sender(mllp)
    _merged_by_a40(s)
    assert reminded(s.send(order("HOSPB", "B1", CBC, "20260312080000+0800")))
    s.send(result("HOSPB", "B1", CBC, "20260312100000+0800"))
    [f] = flags(engine, "flagged")
    assert (f["prior_inst"], f["inst"]) == ("HOSPA", "HOSPB"), f
    http = TestClient(create_app(engine))
    _operator(http, engine, "unlink", source=_record(engine, "TMP-9"), target=_record(engine, "MRN-A"),
              reason="不是同一人")
    assert flags(engine, "flagged") == [], flags(engine)
    ack = s.send(order("HOSPC", "C1", CBC, "20260313080000+0800"))
    assert "of HOSPB on 2026-03-12" in ack and "of HOSPA" not in ack, ack  # HOSPB's own count only


def test_paymend26_operator_merge_counts_and_its_undoing_stops_it(engine: Engine, mllp: int) -> None:  # noqa: F811
    """The same merge made by an operator (``$link`` type replaced-by) instead of an A40: the
    merged record's result counts for orders placed after it; ``$unlink`` of the merged record
    alone takes it out again (a later order is reminded of HOSPB's count only)."""
    s = Sender(mllp)
    s.send(_prior_unidentified("HOSPA", "TMP-9", "20260310090000+0800"))
    s.send(order("HOSPA", "A0", "1742-6^ALT^LN", "20260301080000+0800", mrn="MRN-A"))
    assert not reminded(s.send(order("HOSPB", "B1", CBC, "20260311080000+0800")))  # before the merge
    http = TestClient(create_app(engine))
    merged, kept = _record(engine, "TMP-9"), _record(engine, "MRN-A")
    _operator(http, engine, "link", source=merged, target=kept, type="replaced-by", reason="同一人，临时档案")
    assert reminded(s.send(order("HOSPB", "B2", CBC, "20260312080000+0800")))
    s.send(result("HOSPB", "B2", CBC, "20260312100000+0800"))
    assert [f["prior_inst"] for f in flags(engine, "flagged")] == ["HOSPA"], flags(engine)
    _operator(http, engine, "unlink", source=merged, reason="不是同一人")
    assert flags(engine, "flagged") == [], flags(engine)
    ack = s.send(order("HOSPC", "C1", CBC, "20260313080000+0800"))
    assert "of HOSPB on 2026-03-12" in ack and "of HOSPA" not in ack, ack  # HOSPB's own count only


def test_paymend26_merged_record_follows_the_survivor_out_of_its_person(engine: Engine, mllp: int) -> None:  # noqa: F811
    """The operator takes the survivor itself out of the resident's person (``$unlink`` with no
    target undoes its merges too): neither record's results count for the resident any more."""
    s = Sender(mllp)
    _merged_by_a40(s)
    s.send(order("HOSPB", "B0", "1742-6^ALT^LN", "20260301080000+0800"))  # the resident's record at HOSPB
    http = TestClient(create_app(engine))
    _operator(http, engine, "unlink", source=_record(engine, "MRN-A"), reason="档案有误")
    assert not reminded(s.send(order("HOSPB", "B1", CBC, "20260312080000+0800")))
    s.send(result("HOSPB", "B1", CBC, "20260312100000+0800"))
    assert flags(engine, "flagged") == [], flags(engine)


def test_paymend26_merged_record_follows_the_survivor_s_corrected_number(engine: Engine, mllp: int) -> None:  # noqa: F811
    """HOSPA corrects the survivor's ID number (ADT^A08: the number was mistyped): the merged
    record's blood count goes with it to the corrected number's person, and is no longer the first
    number's prior."""
    s = Sender(mllp)
    _merged_by_a40(s)
    a08 = (msh("HOSPA", "HIS", "ADT^A08^ADT_A01", "20260311090000+0800") + "EVN|A08|20260311090000+0800\n"
           + pid("HOSPA", person=RIGHT, mrn="MRN-A") + "PV1|1|O\n")
    assert "MSA|AA|" in s.send(a08)
    assert "of HOSPA" not in s.send(order("HOSPB", "B1", CBC, "20260312080000+0800"))  # WANG's: nothing of HOSPA's
    assert "of HOSPA" in s.send(order("HOSPC", "C1", CBC, "20260312080000+0800", person=RIGHT))
