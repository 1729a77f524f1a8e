"""A confined caller's search of a type reached through its own parameters (``_widened_search``:
Task, searched by ``for``/``owner``) states a ``Bundle.total`` that counts what the caller is shown.

Each match is admitted in full after the search; a Task of the resident's that also names another
patient (``owner``) is dropped -- and the total still counted it: a resident read "total 2" beside
one Task, the resident page (which marks a list partial when it ends below the total) said on every
load that the list was not read in full, and the number told the resident there is a record she may
not see. Real HTTP through FastAPI, a resident token, the real store.
"""

from __future__ import annotations

from typing import Any

from tests.test_fhir_api import eng, http, patient, put, resident  # noqa: F401

__all__ = ["eng", "http"]


def _task(tid: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Task", "id": tid, "status": "requested", "intent": "order",
            "for": {"reference": "Patient/pa"}, **extra}


def _tasks(http: Any, n_own: int) -> None:
    put(http, patient("pa", "MRN-A"))
    put(http, patient("pb", "MRN-B", family="李"))
    for i in range(n_own):
        assert http.put(f"/fhir/Task/t{i}", json=_task(f"t{i}")).status_code in (200, 201)
    other = _task("tx", owner={"reference": "Patient/pb"})  # hers, but it names another patient
    assert http.put("/fhir/Task/tx", json=other).status_code in (200, 201)


def test_the_total_counts_only_what_the_resident_is_shown(eng, http) -> None:  # noqa: F811
    _tasks(http, 1)
    bundle = http.get("/fhir/Task?_count=200", headers=resident(eng, "pa")).json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["t0"]
    assert bundle["total"] == 1


def test_paged_and_count_only_searches_state_the_same_total(eng, http) -> None:  # noqa: F811
    _tasks(http, 5)
    who = resident(eng, "pa")
    seen: list[str] = []
    url = "/fhir/Task?_count=2&_sort=_id"
    while url:
        bundle = http.get(url, headers=who).json()
        assert bundle["total"] == 5, bundle
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        url = next((link["url"].split("/fhir", 1)[1] for link in bundle["link"] if link["relation"] == "next"), "")
        url = f"/fhir{url}" if url else ""
    assert sorted(seen) == [f"t{i}" for i in range(5)]
    assert http.get("/fhir/Task?_summary=count", headers=who).json()["total"] == 5
