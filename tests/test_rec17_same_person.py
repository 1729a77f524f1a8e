"""Mutual recognition's "same person" is the patient index's (seventeenth round, rec17).

DOMAIN.md: same person is the ID number, with name, sex and birth date as consistency checks; the
patient index (``engine/identity/mpi.py``) decides it: a record is ``linked`` to its number's
person, or left in ``conflict`` / ``invalid-id`` / ``unlinked``. Recognition keyed a result by the
number alone, so:

* a son registered at HOSPB under his father's number (his own name: the index leaves the record
  in conflict) had his blood count flagged a not-payable repeat of his father's HOSPA result, the
  reminder in *his* compartment cited his father's result, and ``$check-recognition`` for his
  record listed it to HOSPB;
* a record an operator took out of the person (``$unlink``) kept counting as the number's, before
  and after (its flags stood; a record of the number that arrived later was flagged against it).

Everything goes through the real path: ``POST /hl7v2`` and ``/fhir`` over HTTP through FastAPI
into the store, the flags and check rows the auditors' report lists read back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.operator_calls import operate
from tests.test_hooks11_policy_edges import flag_of, result
from tests.test_policy11_decided_facts import a08
from tests.test_recognition_policy_e2e import CBC, WANG, community_engine, order, pid, ts

ER7 = "x-application/hl7-v2+er7"
# the son, seen at HOSPB on his father's ID card: his own name (the number's birth date and sex)
SON = f"PID|1||{WANG}^^^公安部^NNCHN~MRN-HOSPB^^^HOSPB^MR||王^小明||19850412|M\n"
# a number with a wrong check character (the right one is X), carried by two different people
BAD = WANG[:-1] + "5"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Engine, TestClient]]:
    for engine in community_engine(tmp_path):
        with TestClient(create_app(engine)) as http:
            http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")
            yield engine, http


def _send(http: TestClient, text: str, pid_segment: str | None = None) -> str:
    if pid_segment is not None:
        text = text.replace(pid("HOSPA"), pid_segment).replace(pid("HOSPB"), pid_segment)
    r = http.post("/hl7v2", content=text.replace("\n", "\r").encode(), headers={"Content-Type": ER7})
    assert r.status_code == 200 and r.headers["x-hl7-ack-code"] == "AA", r.text
    return r.text


def _test(http: TestClient, inst: str, placer: str, days: int, pid_segment: str | None = None) -> str:
    """An order and its blood count; the result message's ACK."""
    _send(http, order(inst, placer, CBC, ts(days)), pid_segment)
    return _send(http, result(inst, placer, CBC, ts(days, 10)), pid_segment)


def _record(engine: Engine, inst: str) -> str:
    [found] = engine.repository.search("Patient", [("identifier", f"MRN-{inst}")]).resources
    return str(found["id"])


def _checked(http: TestClient, patient: str) -> list[str]:
    """The institutions of what ``$check-recognition`` lists to HOSPB for a blood count ordered
    today for ``patient``."""
    r = http.post("/fhir/ServiceRequest/$check-recognition", json={"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": f"Patient/{patient}"}},
        {"name": "code", "valueCoding": {"system": "http://loinc.org", "code": "58410-2"}},
        {"name": "institution", "valueString": "HOSPB"}]})
    assert r.status_code == 200, r.text
    return [q["valueString"] for p in r.json()["parameter"] if p["name"] == "recognisable"
            for q in p["part"] if q["name"] == "institution"]


def _issues_citing(engine: Engine, patient: str) -> list[dict[str, Any]]:
    """The DetectedIssues in force in the record's compartment (what its resident can read)."""
    found = engine.repository.search("DetectedIssue", [("patient", f"Patient/{patient}"), ("_count", "50")])
    return [i for i in found.resources if i.get("status") != "cancelled"]


def _check_row(engine: Engine, inst: str = "HOSPB") -> dict[str, Any]:
    """The order's check row (the recognition rate's); an order of no one's person has none."""
    rows = [c for c in engine.recognition.checks.find({}) if c["inst"] == inst]
    assert len(rows) <= 1, rows
    return rows[0] if rows else {"recognisable": []}


def test_a_son_filed_under_his_fathers_number_is_not_his_fathers_repeat(world: tuple[Engine, TestClient]) -> None:
    engine, http = world
    _test(http, "HOSPA", "A1", 5)  # the father's blood count
    ack = _test(http, "HOSPB", "B1", 1, SON)
    son = _record(engine, "HOSPB")
    assert engine.identity.record(son)["status"] == "conflict"
    assert flag_of(engine) is None, "a flag costs HOSPB money for another person's result"
    assert "not payable" not in ack and "DetectedIssue" not in ack, ack
    assert _check_row(engine)["recognisable"] == []
    assert _issues_citing(engine, son) == []  # nothing in his compartment names his father's result
    assert _checked(http, son) == []  # HOSPB is told nothing of the father's result
    assert _checked(http, _record(engine, "HOSPA")) == ["HOSPA"]  # the father himself: his own result


def test_the_father_is_not_the_sons_repeat_either(world: tuple[Engine, TestClient]) -> None:
    engine, http = world
    _test(http, "HOSPB", "B1", 5, SON)
    _test(http, "HOSPA", "A1", 1)
    assert (flag_of(engine, "HOSPA"), _check_row(engine, "HOSPA")["recognisable"]) == (None, [])


def test_an_invalid_number_is_refused_and_recognises_nothing(world: tuple[Engine, TestClient]) -> None:
    """Held before too (a probe that found nothing): HL7 ingest refuses a wrong check character
    (AE naming PID-3), and a record stored with one over FHIR is ``invalid-id``, no one's person."""
    engine, http = world
    _test(http, "HOSPA", "A1", 5)
    r = http.post("/hl7v2", content=order("HOSPB", "B1", CBC, ts(1)).replace(WANG, BAD).replace("\n", "\r").encode(),
                  headers={"Content-Type": ER7})
    assert r.headers["x-hl7-ack-code"] == "AE" and "PID-3" in r.text, r.text
    patient = {"resourceType": "Patient", "identifier": [
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]},
         "system": "urn:oid:2.16.156.10011.1.1", "value": BAD}], "name": [{"text": "王小明"}]}
    r = http.post("/fhir/Patient", json=patient)
    if r.status_code == 201:
        pid_ = r.json()["id"]
        assert engine.identity.record(pid_)["status"] == "invalid-id"
        draft = {"resourceType": "ServiceRequest", "status": "draft", "intent": "order", "code": {"coding": [
            {"system": "http://loinc.org", "code": "58410-2"}]}, "subject": {"reference": f"Patient/{pid_}"},
            "requester": {"identifier": {"system": "urn:huren:institution", "value": "HOSPB"}}}
        r = http.post("/fhir/ServiceRequest/$check-recognition", json=draft)
        assert r.status_code in (200, 422), r.text
        assert not [p for p in r.json().get("parameter", []) if p["name"] == "recognisable"]
    else:
        assert r.status_code in (400, 422), r.text
    assert flag_of(engine) is None


def test_an_operators_unlink_withdraws_the_flag_and_the_reminder(world: tuple[Engine, TestClient]) -> None:
    """The index said one person (same number, same data); the operator says not: the flag raised on
    it and the order's reminder are withdrawn (the DetectedIssues cancelled, the rate left)."""
    engine, http = world
    _test(http, "HOSPA", "A1", 5)
    _test(http, "HOSPB", "B1", 1)
    row = _check_row(engine)
    assert (flag_of(engine), len(row["recognisable"])) == ("flagged", 1)
    reminder = row["issue"]
    b = _record(engine, "HOSPB")
    operate(http, "unlink", b)
    assert engine.identity.record(b)["status"] == "unlinked"
    assert (flag_of(engine), _check_row(engine)["recognisable"]) == ("void", [])
    assert engine.repository.read("DetectedIssue", reminder)["status"] == "cancelled"
    assert _issues_citing(engine, b) == []
    assert _checked(http, b) == []


def test_a_record_unlinked_alone_is_not_the_prior_of_a_later_record(world: tuple[Engine, TestClient]) -> None:
    """Unlinked while alone in its person (no version of it written: its links do not change), the
    HOSPA record's blood count stops counting for the number's person: a later HOSPB record of the
    number, linked automatically, is not flagged against it."""
    engine, http = world
    _test(http, "HOSPA", "A1", 5)
    operate(http, "unlink", _record(engine, "HOSPA"))
    _test(http, "HOSPB", "B1", 1)
    assert engine.identity.record(_record(engine, "HOSPB"))["status"] == "linked"
    assert (flag_of(engine), _check_row(engine)["recognisable"]) == (None, [])


def test_a_son_linked_by_hand_to_his_father_counts_from_the_link_on(world: tuple[Engine, TestClient]) -> None:
    """An operator who links the conflicting record to the father's says they are one person: a
    blood count ordered after that is recognised (and flagged) against the father's record."""
    engine, http = world
    _test(http, "HOSPA", "A1", 5)
    _send(http, order("HOSPB", "B0", "24325-3^Hepatic function panel^LN", ts(3)), SON)  # registers him
    operate(http, "link", _record(engine, "HOSPB"), _record(engine, "HOSPA"))
    _test(http, "HOSPB", "B1", 1, SON)
    assert flag_of(engine) == "flagged"


def test_a_record_the_index_later_puts_in_conflict_loses_its_flag(world: tuple[Engine, TestClient]) -> None:
    """HOSPB's record agreed with HOSPA's (one person) and its repeat was flagged; an ADT^A08 then
    gives it another name (the son's): the index puts it in conflict, and the flag is withdrawn."""
    engine, http = world
    _test(http, "HOSPA", "A1", 5)
    _test(http, "HOSPB", "B1", 1)
    assert flag_of(engine) == "flagged"
    _send(http, a08("HOSPB", SON))
    assert engine.identity.record(_record(engine, "HOSPB"))["status"] == "conflict"
    assert (flag_of(engine), _check_row(engine)["recognisable"]) == ("void", [])
    assert _issues_citing(engine, _record(engine, "HOSPB")) == []


def test_a_store_keyed_by_the_number_alone_is_keyed_again_once(tmp_path: Path) -> None:
    """The son's blood count flagged as an earlier release did (the hook without the index's
    answer: keyed by the number alone), the store opened again: the flag is withdrawn, once."""
    from engine.recognition.service import SAME_PERSON
    from engine.recognition.upgrade import LAYOUT
    from engine.settings import Settings

    engine: Engine
    for engine in community_engine(tmp_path):
        with TestClient(create_app(engine)) as http:
            http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")
            engine.recognition.facts._same_person = None  # as the code before this round keyed it
            _test(http, "HOSPA", "A1", 5)
            _test(http, "HOSPB", "B1", 1, SON)
            assert flag_of(engine) == "flagged"
            engine.store.collection(LAYOUT).delete(SAME_PERSON)  # a store of that release: no marker
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=tmp_path / "site")) as engine:
        assert (flag_of(engine), _check_row(engine)["recognisable"]) == ("void", [])
        assert engine.store.collection(LAYOUT).get(SAME_PERSON)["records"] == 1
        assert engine.recognition.rekey_once(engine.identity) == 0  # once


def test_unlinking_the_priors_record_withdraws_the_repeats_flag(world: tuple[Engine, TestClient]) -> None:
    """The operator takes the *prior's* record (HOSPA) out of the person: HOSPB's repeat is no
    longer a repeat of anything of its person's; its flag and reminder are withdrawn."""
    engine, http = world
    _test(http, "HOSPA", "A1", 5)
    _test(http, "HOSPB", "B1", 1)
    reminder = _check_row(engine)["issue"]
    operate(http, "unlink", _record(engine, "HOSPA"))
    assert (flag_of(engine), _check_row(engine)["recognisable"]) == ("void", [])
    assert engine.repository.read("DetectedIssue", reminder)["status"] == "cancelled"
    assert _checked(http, _record(engine, "HOSPB")) == ["HOSPB"]  # its own blood count, not HOSPA's
