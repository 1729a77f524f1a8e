"""MongoDB conditional-create claims after the review of storeleft29 (twenty-ninth round, claimfix29).

On a replica set a write error inside a transaction -- a duplicate key included (SERVER-34059) --
aborts the transaction on the server: every later operation of it fails with NoSuchTransaction
(251). storeleft29's claim caught the duplicate key and read on, so the takeover of a stale claim
answered 500 for good there. No replica set runs here, so ``_replica_set_aborts`` gives mongomock
that one documented rule (and only it): after a write of a block raised, every later operation of
that block raises ``OperationFailure`` 251, as the server answers. The store, the repository, the
claim and the HTTP path are the real ones; what is not shown here (a real server's snapshot reads
and write conflicts) runs in ``test_on_a_real_server_...`` when ``HUREN_MONGODB_URI`` is set.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pymongo
import pymongo.errors
import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.repository import mongo_store, open_store
from engine.repository.fhir import FhirRepository
from engine.repository.port import Store
from engine.settings import Settings

MRN = "urn:oid:2.16.156.10011.1.FNXRMYY.mrn"
CONDITION = f"identifier={MRN}|cf29"
_OPS = ("find", "find_one", "insert_one", "insert_many", "replace_one", "update_one", "update_many",
        "delete_one", "delete_many", "count_documents", "find_one_and_update", "find_one_and_replace")


def _patient(family: str, value: str = "cf29") -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": value}], "name": [{"family": family}]}


@pytest.fixture
def aborting(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A mongomock store whose blocks end as a replica set's transactions do after a write error
    (see the module docstring); the undo journal (the standalone stand-in for the abort) still runs."""
    import mongomock.collection

    store = open_store(settings.with_(mongodb_uri="mongomock://"))
    aborted: list[Any] = []  # the undo journals (one per outermost block) of blocks a write error ended

    def poisoned() -> bool:
        undo = store.undo  # type: ignore[attr-defined]
        return undo is not None and any(u is undo for u in aborted)

    for name in _OPS:
        real = getattr(mongomock.collection.Collection, name)

        def op(self: Any, *args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            if poisoned():
                raise pymongo.errors.OperationFailure(
                    "Transaction with { txnNumber: 1 } has been aborted.", code=251)
            try:
                return _real(self, *args, **kwargs)
            except pymongo.errors.PyMongoError:
                if not _name.startswith(("find", "count")) and store.undo is not None:  # type: ignore[attr-defined]
                    aborted.append(store.undo)  # type: ignore[attr-defined]
                raise

        monkeypatch.setattr(mongomock.collection.Collection, name, op)
    real_undo = mongo_store._Undo.undo

    def undo(self: Any, cause: BaseException) -> None:
        aborted[:] = [u for u in aborted if u is not self]  # the abort itself: the block's writes go
        real_undo(self, cause)

    monkeypatch.setattr(mongo_store._Undo, "undo", undo)
    yield store
    store.close()


def test_a_stale_claim_is_taken_over_where_a_write_error_ends_the_transaction(aborting: Store) -> None:
    """The author's takeover, where a write error ends the block (a replica set): the Patient of
    the claim changed, then deleted; each next create takes the claim over. On dc0ebb59 the
    takeover's insert met the duplicate key and read on: NoSuchTransaction (a 500, for good)."""
    repo = FhirRepository(aborting)
    first = repo.create(_patient("甲"), if_none_exist=CONDITION)
    repo.update({**first.resource, "identifier": [{"system": MRN, "value": "other"}]})
    second = repo.create(_patient("乙"), if_none_exist=CONDITION)
    assert second.created and second.resource["id"] != first.resource["id"]
    repo.delete("Patient", second.resource["id"])
    third = repo.create(_patient("丙"), if_none_exist=CONDITION)
    again = repo.create(_patient("丁"), if_none_exist=CONDITION)
    assert third.created and (again.created, again.resource["id"]) == (False, third.resource["id"])
    claims = list(aborting.db["fhir_conditions"].find({}))  # type: ignore[attr-defined]
    assert [c["ref"] for c in claims] == [f"Patient/{third.resource['id']}"]


def test_a_claim_lost_at_its_insert_runs_again_and_answers_the_winners_patient(aborting: Store) -> None:
    """The first create read "no claim" and is held before its insert while the second creates;
    its insert then meets the duplicate key, which ends its block: it runs once more, in a new
    block, and answers the second's Patient (200), one Patient stored. On dc0ebb59 it read on in
    the ended block: NoSuchTransaction."""
    repo = FhirRepository(aborting)
    claims: Any = aborting.fhir.claims_coll  # type: ignore[attr-defined]
    real_find_one = claims.find_one
    read, go_on, held = threading.Event(), threading.Event(), []

    def find_one(*args: Any, **kwargs: Any) -> Any:
        found = real_find_one(*args, **kwargs)
        if threading.current_thread().name == "first" and found is None and not held:
            held.append(True)
            read.set()
            assert go_on.wait(30)
        return found

    claims.find_one = find_one
    outcome: dict[str, Any] = {}

    def first() -> None:
        try:
            result = repo.create(_patient("甲"), if_none_exist=CONDITION)
            outcome["first"] = (result.created, result.resource["id"])
        except Exception as exc:  # asserted in the test's thread
            outcome["first"] = exc

    thread = threading.Thread(target=first, name="first")
    thread.start()
    try:
        assert read.wait(30)
        second = repo.create(_patient("乙"), if_none_exist=CONDITION)
    finally:
        go_on.set()
        thread.join(30)
    assert outcome["first"] == (False, second.resource["id"])
    found = repo.search("Patient", [("identifier", f"{MRN}|cf29")]).resources
    assert [p["id"] for p in found] == [second.resource["id"]]


def test_claims_carry_their_time_and_expire_by_a_ttl_index(settings: Settings) -> None:
    """Claims do not pile up for good: each carries ``made`` (a date) and the collection a TTL
    index on it (an hour: longer than any create); MongoDB's monitor removes them after."""
    store = open_store(settings.with_(mongodb_uri="mongomock://"))
    try:
        FhirRepository(store).create(_patient("甲"), if_none_exist=CONDITION)
        coll = store.db["fhir_conditions"]  # type: ignore[attr-defined]
        ttl = [i for i in coll.index_information().values() if "expireAfterSeconds" in i]
        assert [(i["key"], i["expireAfterSeconds"]) for i in ttl] == [([("made", 1)], 3600)]
        (claim,) = coll.find({})
        assert claim["made"].year >= 2024
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_a_conditional_put_and_a_create_of_one_condition_in_a_transaction_are_400_naming_both(
        settings: Settings, backend: str) -> None:
    """R4 http.html#trules: entries resolving to one resource fail the transaction. A conditional
    ``PUT`` and an ``ifNoneExist`` of one condition (spelled apart: ``_count`` and the order do not
    change it): 400 naming both entries, nothing stored, on both backends (dc0ebb59: SQLite made
    two Patients, MongoDB answered 409)."""
    chosen = settings if backend == "sqlite" else settings.with_(mongodb_uri="mongomock://")
    eng = Engine(chosen)
    try:
        with TestClient(create_app(eng)) as client:
            headers = {"Authorization": f"Bearer {eng.auth.issue_system_token('his')}",
                       "Content-Type": "application/fhir+json"}
            bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": _patient("甲", "TW"), "request": {"method": "PUT", "url": f"Patient?identifier={MRN}|TW"}},
                {"resource": {"resourceType": "Organization", "name": "甲县人民医院"},
                 "request": {"method": "POST", "url": "Organization"}},
                {"resource": _patient("乙", "TW"), "request": {"method": "POST", "url": "Patient",
                                                              "ifNoneExist": f"_count=1&identifier={MRN}|TW"}}]}
            answer = client.post("/fhir", json=bundle, headers=headers)
            assert answer.status_code == 400, answer.text
            issue = answer.json()["issue"][0]
            assert "Bundle.entry[0]" in issue["diagnostics"] and "Bundle.entry[2]" in issue["diagnostics"]
            found = client.get(f"/fhir/Patient?identifier={MRN}|TW", headers=headers).json()
            assert not found.get("entry")
    finally:
        eng.close()


@pytest.mark.skipif(not os.environ.get("HUREN_MONGODB_URI"), reason="needs a MongoDB server (HUREN_MONGODB_URI)")
def test_on_a_real_server_takeover_and_racing_creates_make_one_patient(settings: Settings) -> None:
    """On a real server (a replica set: transactions, snapshot reads, write conflicts): the
    takeover of a stale claim creates (never NoSuchTransaction), and 8 creates of one condition
    at once store one Patient; each answers 201, 200 with it, or 409."""
    uri, db = os.environ["HUREN_MONGODB_URI"], f"huren_test_{uuid.uuid4().hex[:12]}"
    store = open_store(settings.with_(mongodb_uri=uri, mongodb_db=db))
    try:
        repo = FhirRepository(store)
        first = repo.create(_patient("甲"), if_none_exist=CONDITION)
        repo.update({**first.resource, "identifier": [{"system": MRN, "value": "other"}]})
        second = repo.create(_patient("乙"), if_none_exist=CONDITION)
        assert second.created and second.resource["id"] != first.resource["id"]
        condition = f"identifier={MRN}|race8"
        answers: list[Any] = []
        start = threading.Barrier(8)

        def create() -> None:
            start.wait(30)
            try:
                result = repo.create(_patient("丙", "race8"), if_none_exist=condition)
                answers.append((result.created, result.resource["id"]))
            except Exception as exc:
                answers.append(exc)

        threads = [threading.Thread(target=create) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stored = [p["id"] for p in repo.search("Patient", [("identifier", f"{MRN}|race8")]).resources]
        assert len(stored) == 1, answers
        for answer in answers:
            assert (getattr(answer, "status", None) == 409
                    or (isinstance(answer, tuple) and answer[1] == stored[0])), answers
    finally:
        store.close()
        pymongo.MongoClient(uri).drop_database(db)
