"""Review of storeleft29's MongoDB conditional-create claims (twenty-ninth round, rvstoreleft29).

Real HTTP through FastAPI's TestClient, a real token, the real Engine on mongomock (and SQLite
where the two backends are compared). A race is forced as storeleft29's own tests force it: the
backend's real search answers, and the first Patient search that finds nothing is held there
(a barrier, not a stand-in) until the racing request has been answered.

Each test FAILS on dc0ebb59:
- a Bundle's ``PUT Patient?identifier=...`` that creates claims nothing (only ``POST`` entries
  and ``PUT`` over HTTP were given a claim), so it still races a conditional create into two
  Patients of one identifier;
- the claim's key (``condition_key``) reads the condition apart from the matcher
  (``Searching._conditional_match``): a leading ``?`` and the answer-shaping parameters
  (``_count``, ``_summary``, ...) change the key but not the match, so two creates of one
  condition spelled so still both create;
- a transaction Bundle with two ``POST`` entries of one ``ifNoneExist`` is refused on MongoDB
  with a 409 "under way; try again" (a retry can never pass) while SQLite stores two Patients.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings

MRN = "urn:oid:2.16.156.10011.1.FNXRMYY.mrn"


def _patient(value: str, family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": value}], "name": [{"family": family}]}


@pytest.fixture
def mongo(settings: Settings) -> Iterator[tuple[Engine, TestClient, dict[str, str]]]:
    eng = Engine(settings.with_(mongodb_uri="mongomock://"))
    with TestClient(create_app(eng)) as client:
        headers = {"Authorization": f"Bearer {eng.auth.issue_system_token('his')}",
                   "Content-Type": "application/fhir+json"}
        yield eng, client, headers
    eng.close()


def _hold_first_empty_patient_search(eng: Engine, monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event,
                                                                                          threading.Event]:
    """The backend's own search; the first Patient search that finds nothing waits, after
    answering, until ``go_on`` is set (``searched`` tells it got there)."""
    backend = eng.store.fhir
    real = backend.search
    searched, go_on = threading.Event(), threading.Event()
    held: list[bool] = []
    lock = threading.Lock()

    def search(query: Any) -> Any:
        found = real(query)
        if query.type == "Patient" and not found:
            with lock:
                first = not held
                held.append(True)
            if first:
                searched.set()
                assert go_on.wait(30)
        return found

    monkeypatch.setattr(backend, "search", search)
    return searched, go_on


def _race(client: TestClient, first: Any, second: Any, searched: threading.Event,
          go_on: threading.Event) -> tuple[Any, Any]:
    """``first()`` in a thread until its empty search is held, then ``second()``; then ``first`` goes on."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["first"] = first()
        except Exception as exc:  # asserted below, in the test's thread
            outcome["first"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert searched.wait(30), "the first request never searched"
        answer = second()
    finally:
        go_on.set()
        thread.join(30)
    return outcome["first"], answer


def _patients(client: TestClient, headers: dict[str, str], value: str) -> list[str]:
    found = client.get(f"/fhir/Patient?identifier={MRN}|{value}", headers=headers)
    assert found.status_code == 200, found.text
    return [e["resource"]["id"] for e in found.json().get("entry") or ()]


# -- MED: a Bundle's conditional update that creates is not claimed -------------------------------------
@pytest.mark.parametrize("kind", ["batch", "transaction"])
def test_a_bundle_conditional_update_racing_a_conditional_create_makes_one_patient(
        mongo: tuple[Engine, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """``PUT Patient?identifier=X`` in a Bundle with no match creates, as over HTTP; over HTTP it
    now claims the condition (``Writes.conditional_update``), in a Bundle it does not
    (``Bundles._plan``, the ``elif query`` branch): held after its empty search while a
    conditional create of X stores its Patient, it then creates a second Patient of X."""
    eng, client, headers = mongo
    searched, go_on = _hold_first_empty_patient_search(eng, monkeypatch)
    value = f"BU-{kind}"
    bundle = {"resourceType": "Bundle", "type": kind, "entry": [
        {"resource": _patient(value, "甲"), "request": {"method": "PUT", "url": f"Patient?identifier={MRN}|{value}"}}]}
    first, second = _race(
        client,
        lambda: client.post("/fhir", json=bundle, headers=headers),
        lambda: client.post("/fhir/Patient", json=_patient(value, "乙"),
                            headers={**headers, "If-None-Exist": f"identifier={MRN}|{value}"}),
        searched, go_on)
    assert second.status_code == 201, second.text
    assert not isinstance(first, Exception) and first.status_code in (200, 409), first
    assert _patients(client, headers, value) == [second.json()["id"]]


# -- LOW: the claim's key is not the matcher's reading of the condition --------------------------------
@pytest.mark.parametrize("spelling", ["?identifier={mrn}|{v}", "identifier={mrn}|{v}&_count=1",
                                      "identifier={mrn}|{v}&_summary=true"])
def test_racing_creates_of_one_condition_spelled_apart_make_one_patient(
        mongo: tuple[Engine, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch, spelling: str) -> None:
    """Both spellings match the same Patients (``_conditional_match`` strips a leading ``?`` and
    leaves out ``_count``, ``_summary``, ``_format`` ...), but ``condition_key`` hashes them as
    they come: two claims, and two Patients of one identifier, as before the claim."""
    eng, client, headers = mongo
    value = f"SP{abs(hash(spelling)) % 10_000}"
    other = spelling.format(mrn=MRN, v=value)
    searched, go_on = _hold_first_empty_patient_search(eng, monkeypatch)
    first, second = _race(
        client,
        lambda: client.post("/fhir/Patient", json=_patient(value, "甲"),
                            headers={**headers, "If-None-Exist": f"identifier={MRN}|{value}"}),
        lambda: client.post("/fhir/Patient", json=_patient(value, "乙"), headers={**headers, "If-None-Exist": other}),
        searched, go_on)
    assert second.status_code == 201, second.text
    assert not isinstance(first, Exception) and first.status_code in (200, 409), first
    assert _patients(client, headers, value) == [second.json()["id"]]
    # and once stored, the other spelling finds it: the two are one condition
    again = client.post("/fhir/Patient", json=_patient(value, "丙"), headers={**headers, "If-None-Exist": other})
    assert (again.status_code, again.json()["id"]) == (200, second.json()["id"])


# -- LOW: one condition twice in a transaction: 409 "try again" on MongoDB, two Patients on SQLite ------
def test_two_entries_of_one_if_none_exist_answer_alike_on_both_backends(settings: Settings) -> None:
    """A transaction Bundle whose two ``POST`` entries carry one ``ifNoneExist``: on MongoDB the
    second entry finds the first entry's claim "under way" and the whole Bundle is a 409 telling
    the client to try again -- which fails the same way every time; on SQLite (no claim) the
    Bundle stores two Patients of one identifier. One answer on both, and never two Patients."""
    answers = {}
    for name, chosen in (("sqlite", settings), ("mongomock", settings.with_(mongodb_uri="mongomock://"))):
        eng = Engine(chosen.with_(data_dir=settings.data_dir / name))
        try:
            with TestClient(create_app(eng)) as client:
                headers = {"Authorization": f"Bearer {eng.auth.issue_system_token('his')}",
                           "Content-Type": "application/fhir+json"}
                condition = f"identifier={MRN}|TWICE"
                bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"resource": _patient("TWICE", family), "request": {"method": "POST", "url": "Patient",
                                                                         "ifNoneExist": condition}}
                    for family in ("甲", "乙")]}
                first = client.post("/fhir", json=bundle, headers=headers)
                retried = client.post("/fhir", json=bundle, headers=headers)
                answers[name] = (first.status_code, retried.status_code, len(_patients(client, headers, "TWICE")))
        finally:
            eng.close()
    assert answers["sqlite"] == answers["mongomock"], answers
    assert all(stored <= 1 for _, _, stored in answers.values()), answers
    assert all(status != 409 or retry != 409 for status, retry, _ in answers.values()), answers
