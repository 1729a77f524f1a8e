"""Guards for the recognition hook's one pass over a write group (twenty-fourth round, hook24).

The hook now walks a group's versions once (``Recognition._sort``: the read-back held, the
preview's pass-overs dropped) and reads the facts of what is left after it, each Patient
reference's person once (``FactReader.persons_once``). What that could get wrong, sent as one
FHIR transaction over real HTTP (FastAPI's app, the real repository and SQLite store):

- an order written *before* its Patient in the same group: its person must still be read from
  the group's new Patient version (held before any fact is read), not from a store that has no
  such record yet;
- two Patient records in one group, an order and a report for each: the person read once per
  reference must stay that reference's (Alice's order reminded and her repeat flagged, Bob's
  neither);
- a later version of a result that is no recognition item, once indexed, loses its entry;
- a person read once per group, not once for good: an operator's ``$unlink`` between two groups
  keys the next group's report to nobody.

These pass on the base too (they guard, they fix nothing); the same feeds' full stored output is
compared with the base's by ``tests/test_perfrecog21_same_bytes.py`` and
``tests/test_perf22_recog_reload.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.recognition.detected_issues import issue_id
from engine.repository.ids import deterministic_id
from engine.settings import Settings
from tests.operator_calls import operate
from tests.test_recognition_world import ALICE, BOB, A, B, cbc

V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"


@pytest.fixture
def eng(settings: Settings) -> Iterator[Engine]:
    engine = Engine(settings)
    yield engine
    engine.close()


@pytest.fixture
def http(eng: Engine, client_token: Any) -> Iterator[TestClient]:
    with TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + client_token(eng)
        yield client


def _org(inst: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": deterministic_id(inst, "Organization", inst), "active": True,
            "name": inst, "identifier": [{"system": "urn:huren:institution", "value": inst}]}


def _org_ref(inst: str) -> dict[str, str]:
    return {"reference": f"Organization/{deterministic_id(inst, 'Organization', inst)}"}


def _patient(inst: str, person: str, mrn: str, family: str, born: str, sex: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": deterministic_id(inst, "Patient", mrn),
            "identifier": [
                {"type": {"coding": [{"system": V2, "code": "MR"}]}, "system": f"urn:huren:mrn:{inst}", "value": mrn},
                {"type": {"coding": [{"system": V2, "code": "NNCHN"}]}, "system": "urn:oid:2.16.156.10011.1.1",
                 "value": person}],
            "name": [{"family": family}], "gender": sex, "birthDate": born,
            "managingOrganization": _org_ref(inst)}


def _order(inst: str, patient: dict[str, Any], placer: str, authored: str) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": deterministic_id(inst, "ServiceRequest", placer),
            "identifier": [{"system": f"urn:huren:placer:{inst}", "value": placer}],
            "status": "active", "intent": "order", "code": cbc(inst),
            "subject": {"reference": f"Patient/{patient['id']}"}, "authoredOn": authored,
            "requester": _org_ref(inst)}


def _report(inst: str, patient: dict[str, Any], key: str, when: str, order: dict[str, Any] | None = None,
            code: dict[str, Any] | None = None, status: str = "final") -> dict[str, Any]:
    dr: dict[str, Any] = {"resourceType": "DiagnosticReport", "id": deterministic_id(inst, "DiagnosticReport", key),
                          "status": status, "code": code or cbc(inst),
                          "subject": {"reference": f"Patient/{patient['id']}"}, "effectiveDateTime": when,
                          "issued": when, "performer": [_org_ref(inst)]}
    if order is not None:
        dr["basedOn"] = [{"reference": f"ServiceRequest/{order['id']}"}]
    return dr


def _transaction(http: TestClient, *resources: dict[str, Any]) -> list[dict[str, Any]]:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}
    response = http.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    return response.json()["entry"]


def _put(http: TestClient, resource: dict[str, Any]) -> None:
    response = http.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text


ALICE_A = _patient(A, ALICE, "A-ALICE", "李", "1985-01-01", "female")
ALICE_B = _patient(B, ALICE, "B-ALICE", "李", "1985-01-01", "female")
BOB_A = _patient(A, BOB, "A-BOB", "王", "1990-12-31", "male")
BOB_B = _patient(B, BOB, "B-BOB", "王", "1990-12-31", "male")


def _priors(http: TestClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """Alice's CBC at A on 10 March (recognisable at B within 7 days); Bob's at A on 1 March
    (outside the window of an order on the 12th)."""
    for r in (_org(A), _org(B), ALICE_A, BOB_A):
        _put(http, r)
    alice_prior = _report(A, ALICE_A, "PRIOR-ALICE", "2026-03-10T09:00:00+08:00")
    bob_prior = _report(A, BOB_A, "PRIOR-BOB", "2026-03-01T09:00:00+08:00")
    _put(http, alice_prior)
    _put(http, bob_prior)
    return alice_prior, bob_prior


def test_orders_before_their_patients_and_two_persons_in_one_group(http: TestClient, eng: Engine) -> None:
    alice_prior, _ = _priors(http)
    alice_order = _order(B, ALICE_B, "ORD-ALICE", "2026-03-12T08:00:00+08:00")
    bob_order = _order(B, BOB_B, "ORD-BOB", "2026-03-12T08:00:00+08:00")
    alice_repeat = _report(B, ALICE_B, "REP-ALICE", "2026-03-12T10:00:00+08:00", alice_order)
    bob_repeat = _report(B, BOB_B, "REP-BOB", "2026-03-12T10:00:00+08:00", bob_order)
    # the orders come before the new Patient records they name, in one write group
    _transaction(http, alice_order, bob_order, ALICE_B, BOB_B, alice_repeat, bob_repeat)

    rec = eng.recognition
    alice_check = rec.checks.get(f"ServiceRequest/{alice_order['id']}")
    bob_check = rec.checks.get(f"ServiceRequest/{bob_order['id']}")
    assert alice_check is not None and bob_check is not None
    assert (alice_check["person"], bob_check["person"]) == (ALICE, BOB)
    assert alice_check["recognisable"] == [f"DiagnosticReport/{alice_prior['id']}"]
    assert bob_check["recognisable"] == []
    assert (alice_check["outcome"], bob_check["outcome"]) == ("duplicate", "retested")
    reminder = eng.repository.read("DetectedIssue", issue_id("rec", f"ServiceRequest/{alice_order['id']}"))
    assert reminder["code"]["coding"][0]["code"] == "recognisable-prior-result"
    [flag] = rec.flags.find({})
    assert (flag["status"], flag["person"], flag["result"], flag["prior"]) == (
        "flagged", ALICE, f"DiagnosticReport/{alice_repeat['id']}", f"DiagnosticReport/{alice_prior['id']}")
    entries = {d["_id"]: d for d in rec.index.coll.find({})}
    assert entries[f"DiagnosticReport/{alice_repeat['id']}"]["person"] == ALICE
    assert entries[f"DiagnosticReport/{bob_repeat['id']}"]["person"] == BOB


def test_a_later_version_of_no_item_is_not_passed_over_as_a_first(settings: Settings) -> None:
    """Over MLLP (an ingest batch: the preview's pass-overs apply): a lab report, then its white
    cell count's Observation rewritten by a FHIR client as an ALT (a liver panel analyte: indexed),
    then the lab's message again. The count's third version is built from the plan of a test of
    no rule, yet its second was indexed: its entry goes. What it guards is the outcome; the pass-
    over's version test itself is not reached here (the third version is merged over the second,
    so it holds other ``code`` objects than the preview classified, and no pass-over matches it:
    dropping the version test still passes) -- that test is argued, as hook23 found, not tested."""
    from bench.ingest import oru_lab
    from tests.conftest import mllp_send, running_mllp

    first = oru_lab(7)
    again = first.replace(b"|LAB000000007|P|", b"|LAB000000107|P|", 1)
    engine = Engine(settings)
    try:
        with running_mllp(engine) as port:
            assert "MSA|AA|" in mllp_send(port, first)
            results = engine.repository.search("Observation", [("_count", "50")]).resources
            wbc = next(o for o in results if o["code"]["coding"][0]["code"] == "WBC")
            alt_code = next(o for o in results if o["code"]["coding"][0]["code"] == "ALT")["code"]
            ref = f"Observation/{wbc['id']}"
            assert engine.recognition.index.coll.get(ref) is None
            alt = {k: v for k, v in wbc.items() if k not in ("meta", "text")}
            alt["code"] = alt_code
            engine.repository.update(alt)
            assert engine.recognition.index.coll.get(ref)["item"] == "LFT"
            assert "MSA|AA|" in mllp_send(port, again)
            stored = engine.repository.read("Observation", wbc["id"])
            assert stored["meta"]["versionId"] == "3" and stored["code"]["coding"][0]["code"] == "WBC"
            assert engine.recognition.index.coll.get(ref) is None
    finally:
        engine.close()


def test_a_person_is_read_again_in_the_next_group(http: TestClient, eng: Engine) -> None:
    """Once per group, not for good: the operator takes B's record out of Alice's person between
    two groups; the report of the second is keyed to nobody (no entry under her number, no flag)."""
    _priors(http)
    _put(http, ALICE_B)
    first = _report(B, ALICE_B, "REP-A", "2026-03-11T10:00:00+08:00")
    _transaction(http, _order(B, ALICE_B, "ORD-A", "2026-03-11T08:00:00+08:00"), first)
    assert eng.recognition.index.coll.get(f"DiagnosticReport/{first['id']}")["person"] == ALICE
    operate(http, "unlink", ALICE_B["id"])
    assert eng.identity.record(ALICE_B["id"])["status"] == "unlinked"
    second = _report(B, ALICE_B, "REP-B", "2026-03-12T10:00:00+08:00")
    _transaction(http, _order(B, ALICE_B, "ORD-B", "2026-03-12T08:00:00+08:00"), second)
    entry = eng.recognition.index.coll.get(f"DiagnosticReport/{second['id']}")
    assert entry is None or entry.get("person") in (None, "")
    assert all(f["result"] != f"DiagnosticReport/{second['id']}" or f["status"] == "void"
               for f in eng.recognition.flags.find({}))
