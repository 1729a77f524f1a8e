"""wardlink38: the links' leftovers of link37/linkfix37.

- A report's write reads which of its listed results without an index entry are stored in one read for all
  of them (``Repeats._stored``), not one read each: a FHIR client's report listing locally coded results
  paid a read a result a PUT (linkfix37: ~3.5 % of such a PUT).
- The note of a report stored ahead of a result (``recognition_listed_ahead``) that is stored but never a
  recognition item (its first version passed over) goes when a report listing it is written again: a note is
  read only for a first version, and that one is past. A later version of it that is an item reads its reports
  as before (the search), so dropping the note loses nothing.

FHIR over TestClient into the real Engine and store, SQLite and mongomock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.recognition.index import LISTED_AHEAD
from engine.settings import Settings
from tests.test_evidence33_pairs import http  # noqa: F401 (the fixture)
from tests.test_link37_links import copied_alt, entry
from tests.test_linkfix35_relink import FHIR
from tests.test_relink36_link import outcome

LOCAL = {"coding": [{"system": "urn:oid:1.2.156.wl38.local", "code": "WL38", "display": "本院自定项目"}],
         "text": "本院自定项目"}


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


def _notes(engine: Engine) -> dict[str, list[str]]:
    return {n["_id"]: n["reports"] for n in engine.store.collection(LISTED_AHEAD).find({})}


def _report(rid: str, about: dict[str, Any], results: list[str], based_on: str, text: str = "肝功能") -> dict[str, Any]:
    return {"resourceType": "DiagnosticReport", "id": rid, "status": "final", "code": {"text": text}, **about,
            "basedOn": [{"reference": based_on}], "result": [{"reference": r} for r in results]}


def _local(alt: dict[str, Any], rid: str, value: float) -> dict[str, Any]:
    """A result of the ALT's subject and time under a local code no map knows: stored, never an item."""
    return {**alt, "id": rid, "code": LOCAL, "valueQuantity": {"value": value, "unit": "U/L"}}


def _put(http: TestClient, resource: dict[str, Any], status: int) -> None:  # noqa: F811
    res = http.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR)
    assert res.status_code == status, res.text


def test_a_reports_unindexed_results_are_read_once_for_all(engine: Engine, http: TestClient,  # noqa: F811
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A report listing six stored locally coded results and one not stored: the recognition reads the
    Observations' presence in one ``writers`` call and reads none of them one by one; the one not stored is
    noted (its first version must read this report), the stored ones are not -- the same notes as before."""
    b1, alt, about = copied_alt(engine, http)
    stored = [f"Observation/wl38-l{i}" for i in range(6)]
    for i, ref in enumerate(stored):
        _put(http, _local(alt, ref.split("/")[1], 10 + i), 201)
    recognition, repository = engine.recognition, engine.recognition.repository
    reads: list[str] = []
    asked: list[list[str]] = []
    real_read, real_writers = recognition.read, repository.writers

    def read(rtype: str, rid: str) -> Any:
        reads.append(f"{rtype}/{rid}")
        return real_read(rtype, rid)

    def writers(rtype: str, ids: Any) -> Any:
        asked.append([f"{rtype}/{i}" for i in ids])
        return real_writers(rtype, ids)

    monkeypatch.setattr(recognition, "read", read)  # (pass-through: counted only)
    monkeypatch.setattr(repository, "writers", writers)
    ahead = "Observation/wl38-ahead"
    _put(http, _report("wl38-r1", about, [*stored, ahead], b1), 201)
    assert not [r for r in reads if r.startswith("Observation/")], reads
    assert [sorted(a) for a in asked if a and a[0].startswith("Observation/wl38-")] == [sorted([*stored, ahead])]
    assert _notes(engine) == {ahead: ["DiagnosticReport/wl38-r1"]}
    assert outcome(engine, b1) == "pending"


def test_a_stored_results_note_goes_when_a_report_listing_it_is_written_again(
        engine: Engine, http: TestClient) -> None:  # noqa: F811
    """R1 (based on B1) is stored ahead of result X: noted. X's first version comes under a local code (no
    recognition item: passed over, the note stays -- never read again, its first version being past). R1 is
    written again, still listing X: the note goes. X is then corrected to the ALT (a later version, an item):
    it is linked by what the stored reports say (R1: B1's), as before -- the note was not needed."""
    b1, alt, about = copied_alt(engine, http)
    x = "Observation/wl38-x"
    _put(http, _report("wl38-r1", about, [x], b1), 201)
    assert _notes(engine) == {x: ["DiagnosticReport/wl38-r1"]}
    _put(http, _local(alt, "wl38-x", 77), 201)
    assert _notes(engine) == {x: ["DiagnosticReport/wl38-r1"]}  # (a first version passed over reads no note)
    assert engine.recognition.index.coll.get(x) is None
    _put(http, _report("wl38-r1", about, [x], b1, text="肝功能（复核）"), 200)
    assert _notes(engine) == {}
    _put(http, {**alt, "id": "wl38-x"}, 200)
    assert entry(engine, x)["order"] == b1
    assert entry(engine, x)["reports"] == ["DiagnosticReport/wl38-r1"]
    assert outcome(engine, b1) == "duplicate"


def test_a_note_of_a_result_not_stored_stays_when_its_report_is_written_again(
        engine: Engine, http: TestClient) -> None:  # noqa: F811
    """R1 stored ahead of the ALT, written again still listing it: the note stays (the ALT is not stored: its
    first version must still read R1); the ALT then comes alone and is B1's."""
    b1, alt, about = copied_alt(engine, http)
    x = "Observation/wl38-alt"
    _put(http, _report("wl38-r1", about, [x], b1), 201)
    _put(http, _report("wl38-r1", about, [x], b1, text="肝功能（复核）"), 200)
    assert _notes(engine) == {x: ["DiagnosticReport/wl38-r1"]}
    _put(http, {**alt, "id": "wl38-alt"}, 201)
    assert entry(engine, x)["order"] == b1 and _notes(engine) == {}
