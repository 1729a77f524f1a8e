"""Two conditional creates (``If-None-Exist``) of one identifier racing on the MongoDB backend
(twenty-ninth round, storeleft29).

Each searched, found nothing, and created: the search and the insert are under different ids, so
neither a replica set's transaction snapshot nor a standalone server orders them (txmend25 left
it, probef25's race test skips MongoDB). A create whose search finds nothing now claims the
condition (``MongoFhirBackend.claim_condition``: a document whose ``_id`` is the condition, unique
on every MongoDB). Here on mongomock, the backend and repository real, the interleaving forced: the
first create's search answers "none" and it is held there until the second create has stored its
Patient. What mongomock shows is the rule (a duplicate ``_id`` insert refused), not a real
server's atomicity under concurrent transactions (a write conflict there, mapped to 409 too).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from engine.repository import open_store
from engine.repository.fhir import FhirRepository
from engine.repository.port import Store
from engine.settings import Settings

MRN = "urn:oid:2.16.156.10011.1.FNXRMYY.mrn"
CONDITION = f"identifier={MRN}|race"


def _patient(family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": "race"}], "name": [{"family": family}]}


@pytest.fixture
def mongo(settings: Settings) -> Iterator[Store]:
    store = open_store(settings.with_(mongodb_uri="mongomock://"))
    yield store
    store.close()


def _holding_the_first_empty_search(store: Store, searched: threading.Event, go_on: threading.Event) -> None:
    """The backend's own search, except that the first one of a thread named "first" that finds
    nothing waits, after answering, until ``go_on`` (a barrier, not a stand-in: the answer is the
    backend's)."""
    real = store.fhir.search
    held: list[bool] = []

    def search(query: Any) -> Any:
        found = real(query)
        if threading.current_thread().name == "first" and not found and not held:
            held.append(True)
            searched.set()
            assert go_on.wait(30)
        return found

    store.fhir.search = search  # type: ignore[method-assign]


def test_two_racing_conditional_creates_of_one_identifier_create_one_patient(mongo: Store) -> None:
    repo = FhirRepository(mongo)
    searched, go_on = threading.Event(), threading.Event()
    _holding_the_first_empty_search(mongo, searched, go_on)
    outcome: dict[str, Any] = {}

    def first() -> None:
        try:
            result = repo.create(_patient("甲"), if_none_exist=CONDITION)
            outcome["first"] = (result.created, result.resource["id"])
        except Exception as exc:  # the answer is asserted below, in the test's thread
            outcome["first"] = exc

    thread = threading.Thread(target=first, name="first")
    thread.start()
    try:
        assert searched.wait(30)  # the first create found no match and has not stored yet
        second = repo.create(_patient("乙"), if_none_exist=CONDITION)
        assert second.created
    finally:
        go_on.set()
        thread.join(30)
    assert outcome["first"] == (False, second.resource["id"])  # it found the second one's Patient
    found = repo.search("Patient", [("identifier", f"{MRN}|race")]).resources
    assert [(p["id"], p["name"][0]["family"]) for p in found] == [(second.resource["id"], "乙")]


def test_a_claim_whose_patient_no_longer_matches_is_taken_over(mongo: Store) -> None:
    """A claim stays after its create; the Patient changed or deleted since, the next create of
    the condition creates and claims it for its own Patient, and the one after finds that one."""
    repo = FhirRepository(mongo)
    first = repo.create(_patient("甲"), if_none_exist=CONDITION)
    assert first.created
    changed = {**first.resource, "identifier": [{"system": MRN, "value": "other"}]}
    repo.update(changed)
    second = repo.create(_patient("乙"), if_none_exist=CONDITION)
    assert second.created and second.resource["id"] != first.resource["id"]
    repo.delete("Patient", second.resource["id"])
    third = repo.create(_patient("丙"), if_none_exist=CONDITION)
    assert third.created
    again = repo.create(_patient("丁"), if_none_exist=CONDITION)
    assert (again.created, again.resource["id"]) == (False, third.resource["id"])
    assert mongo.db["fhir_conditions"].count_documents({}) == 1  # type: ignore[attr-defined]


def test_a_create_racing_one_under_way_is_a_409_and_one_patient_is_stored(mongo: Store) -> None:
    """The first create has claimed the condition but not stored its Patient yet (held before the
    backend's put): the second finds no match and a recent claim of a Patient not stored, and is
    refused 409 (its client's retry finds the first one's Patient), never a second Patient."""
    from engine.errors import Conflict

    repo = FhirRepository(mongo)
    claimed, go_on = threading.Event(), threading.Event()
    backend: Any = mongo.fhir
    for name in ("put", "put_many"):
        real = getattr(backend, name)

        def held(*args: Any, _real: Any = real) -> Any:
            if threading.current_thread().name == "first":
                claimed.set()
                assert go_on.wait(30)
            return _real(*args)

        setattr(backend, name, held)
    outcome: dict[str, Any] = {}

    def first() -> None:
        result = repo.create(_patient("甲"), if_none_exist=CONDITION)
        outcome["first"] = (result.created, result.resource["id"])

    thread = threading.Thread(target=first, name="first")
    thread.start()
    try:
        assert claimed.wait(30)
        with pytest.raises(Conflict) as refused:
            repo.create(_patient("乙"), if_none_exist=CONDITION)
        assert refused.value.status == 409 and "under way" in str(refused.value)
    finally:
        go_on.set()
        thread.join(30)
    created, pid = outcome["first"]
    assert created
    retry = repo.create(_patient("乙"), if_none_exist=CONDITION)
    assert (retry.created, retry.resource["id"]) == (False, pid)
    assert [p["id"] for p in repo.search("Patient", [("identifier", f"{MRN}|race")]).resources] == [pid]


def test_two_racing_conditional_updates_that_create_make_one_patient(mongo: Store) -> None:
    """``PUT Patient?identifier=...`` with no match creates; two at once made two Patients as the
    conditional creates did. The first, held after its empty search, now updates the second's."""
    repo = FhirRepository(mongo)
    searched, go_on = threading.Event(), threading.Event()
    _holding_the_first_empty_search(mongo, searched, go_on)
    outcome: dict[str, Any] = {}

    def first() -> None:
        result = repo.conditional_update("Patient", CONDITION, _patient("甲"))
        outcome["first"] = (result.created, result.resource["id"])

    thread = threading.Thread(target=first, name="first")
    thread.start()
    try:
        assert searched.wait(30)
        second = repo.conditional_update("Patient", CONDITION, _patient("乙"))
        assert second.created
    finally:
        go_on.set()
        thread.join(30)
    assert outcome["first"] == (False, second.resource["id"])
    found = repo.search("Patient", [("identifier", f"{MRN}|race")]).resources
    assert [(p["id"], p["name"][0]["family"], p["meta"]["versionId"]) for p in found] == [
        (second.resource["id"], "甲", "2")]
