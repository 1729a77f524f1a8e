"""link37: the reports listing a result, read without a search where the store already says which.

Two leftovers of relink36's link rule (``Repeats._linked``, which reads every report that lists a
result): a FHIR client's report stored *before* the Observation it lists, then that Observation's
first version written together with another report, was never read (a first version written with a
report asked the store nothing), so the link was not what the stored reports say; and a lab's
correction of a recognition result searched the store (``DiagnosticReport?result=``) for its reports
each time, +24 % of the hook on such a message. Now a report stored ahead of its result is noted
(``ResultIndex.note_ahead``), and each Observation's entry keeps the reports that list it
(``reports``), which every report write and delete keeps in step; an entry without it (an earlier
release's) is searched as before.

Real HL7 v2 over ``POST /hl7v2`` and FHIR over TestClient into the real store, SQLite and mongomock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import engine.recognition.repeats as repeats
from engine.engine import Engine
from engine.recognition.index import LISTED_AHEAD
from engine.settings import Settings
from tests.test_evid35_linking import order_ref, prior, rate
from tests.test_evidence33_pairs import ALT, AST, LFT, LOCAL_LFT, B, http, obx, send  # noqa: F401 (``http``: the fixture)
from tests.test_linkfix35_relink import FHIR, ORDER_AT, REPEAT_AT, live
from tests.test_probepay26_windows import order, result
from tests.test_relink36_link import linked_b1, outcome, read, report_of


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


@pytest.fixture
def searches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ``DiagnosticReport?result=`` searches the link rule makes (each still made: counted only)."""
    made: list[str] = []
    real = repeats.search_pages

    def counted(repository: Any, rtype: str, params: Any, *args: Any, **kw: Any) -> Any:
        made.append(str(dict(params).get("result")))
        return real(repository, rtype, params, *args, **kw)

    monkeypatch.setattr(repeats, "search_pages", counted)
    return made


def entry(engine: Engine, ref: str) -> dict[str, Any]:
    got = engine.recognition.index.coll.get(ref)
    assert got is not None, ref
    return got


def copied_alt(engine: Engine, http: TestClient) -> tuple[str, dict[str, Any], dict[str, Any]]:  # noqa: F811
    """The prior; order B1; a repeat's ALT as a FHIR client would send it: copied from a message under
    numbers no order placed (C9), whose resources are deleted again, so that only the copy will count.
    Returns B1, the ALT's body (no id) and the deleted report's subject and time."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT))
    b1 = order_ref(http, "B1")
    send(http, result(B, "C9", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    fc9 = report_of(http, "FC9")
    alt = {k: v for k, v in read(http, fc9["result"][0]["reference"]).items() if k != "id"}
    for ref in [*(r["reference"] for r in fc9["result"]), f"DiagnosticReport/{fc9['id']}"]:
        assert http.delete(f"/fhir/{ref}").status_code in (200, 204)
    assert live(engine, http) == []
    return b1, alt, {"subject": fc9["subject"], "effectiveDateTime": fc9.get("effectiveDateTime")}


def report(rid: str, text: str, about: dict[str, Any], based_on: str | None = None) -> dict[str, Any]:
    body = {"resourceType": "DiagnosticReport", "id": rid, "status": "final", "code": {"text": text}, **about,
            "result": [{"reference": "Observation/l37-alt"}]}
    return {**body, "basedOn": [{"reference": based_on}]} if based_on else body


def together(http: TestClient, alt: dict[str, Any], other: dict[str, Any]) -> None:  # noqa: F811
    """The ALT's first version and another report listing it, in one transaction (one write group)."""
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {**alt, "id": "l37-alt"}, "request": {"method": "PUT", "url": "Observation/l37-alt"}},
        {"resource": other, "request": {"method": "PUT", "url": f"DiagnosticReport/{other['id']}"}}]}
    res = http.post("/fhir", json=bundle, headers=FHIR)
    assert res.status_code == 200, res.text


def test_a_report_stored_ahead_counts_when_its_result_comes_with_another(
        engine: Engine, http: TestClient, searches: list[str]) -> None:  # noqa: F811
    """A FHIR client stores report R2 (based on B1) listing an ALT not stored yet, then one transaction
    writes the ALT's first version with a summary report R3 that names no order: R2 still says the ALT
    is B1's -- linked, B1 repeated, 0/1 (before: R3 alone was read, the ALT named no order, B1 pending).
    No search is made: R2 was noted when it was stored, and the note is the entry's once it is put."""
    b1, alt, about = copied_alt(engine, http)
    assert http.put("/fhir/DiagnosticReport/l37-r2", json=report("l37-r2", "肝功能", about, b1),
                    headers=FHIR).status_code == 201
    assert engine.store.collection(LISTED_AHEAD).get("Observation/l37-alt") == {
        "_id": "Observation/l37-alt", "reports": ["DiagnosticReport/l37-r2"]}
    searches.clear()
    together(http, alt, report("l37-r3", "肝功能汇总", about))
    assert entry(engine, "Observation/l37-alt")["order"] == b1
    assert entry(engine, "Observation/l37-alt")["reports"] == ["DiagnosticReport/l37-r2", "DiagnosticReport/l37-r3"]
    assert engine.store.collection(LISTED_AHEAD).get("Observation/l37-alt") is None
    assert searches == []
    assert {r["order"] for r in live(engine, http)} == {b1}, live(engine, http)
    assert outcome(engine, b1) == "duplicate"
    assert rate(engine, http) == (0, 1)


def test_a_report_stored_ahead_and_another_order_link_none(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """As above, but R3 is based on another checked order of the same test (B2): two orders for one
    result link none, whichever report came first (before: B2's, the report written last)."""
    b1, alt, about = copied_alt(engine, http)
    send(http, order(B, "B2", LFT, ORDER_AT))
    b2 = order_ref(http, "B2")
    assert http.put("/fhir/DiagnosticReport/l37-r2", json=report("l37-r2", "肝功能", about, b1),
                    headers=FHIR).status_code == 201
    together(http, alt, report("l37-r3", "肝功能", about, b2))
    assert entry(engine, "Observation/l37-alt")["order"] is None
    assert outcome(engine, b1) == outcome(engine, b2) == "pending"


def test_a_report_deleted_before_its_result_comes_says_nothing(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """R2 stored ahead, then deleted; the ALT comes with R3 (no order): the note names a report that is
    gone, which is read and says nothing -- no link, B1 pending."""
    b1, alt, about = copied_alt(engine, http)
    assert http.put("/fhir/DiagnosticReport/l37-r2", json=report("l37-r2", "肝功能", about, b1),
                    headers=FHIR).status_code == 201
    assert http.delete("/fhir/DiagnosticReport/l37-r2").status_code in (200, 204)
    together(http, alt, report("l37-r3", "肝功能汇总", about))
    assert entry(engine, "Observation/l37-alt")["order"] is None
    assert entry(engine, "Observation/l37-alt")["reports"] == ["DiagnosticReport/l37-r3"]
    assert outcome(engine, b1) == "pending"


def corrected(value: str) -> str:
    """The LIS's repeat under B1 sent again, its ALT corrected (the same numbers: later versions)."""
    return result(B, "B1", LOCAL_LFT, REPEAT_AT, status="C", obx=obx((ALT, value), (AST, "35")))


def test_a_correction_reads_the_kept_reports_and_searches_nothing(
        engine: Engine, http: TestClient, searches: list[str]) -> None:  # noqa: F811
    """Linked B1 by its message's report; a FHIR client's summary R4 lists the same results (kept on
    each entry). R4 corrected to another checked order (B2): two orders, none linked. The LIS then
    corrects the ALT twice: no search, and the answer is the one the search gave -- none linked while
    R4 names B2, B1 again once R4 is deleted."""
    b1, fb1 = linked_b1(engine, http)
    mine = f"DiagnosticReport/{fb1['id']}"
    alt, ast = (r["reference"] for r in fb1["result"])
    assert entry(engine, alt)["reports"] == [mine]
    summary = {"resourceType": "DiagnosticReport", "id": "l37-r4", "status": "final", "code": {"text": "肝功能汇总"},
               "subject": fb1["subject"], "basedOn": [{"reference": b1}], "result": fb1["result"]}
    assert http.put("/fhir/DiagnosticReport/l37-r4", json=summary, headers=FHIR).status_code == 201
    assert entry(engine, alt)["reports"] == sorted([mine, "DiagnosticReport/l37-r4"])
    send(http, order(B, "B2", LFT, ORDER_AT))
    b2 = order_ref(http, "B2")
    summary["basedOn"] = [{"reference": b2}]
    assert http.put("/fhir/DiagnosticReport/l37-r4", json=summary, headers=FHIR).status_code == 200
    assert (entry(engine, alt)["order"], entry(engine, ast)["order"]) == (None, None)
    searches.clear()
    send(http, corrected("90"))
    assert read(http, alt)["valueQuantity"]["value"] == 90
    assert (entry(engine, alt)["order"], entry(engine, ast)["order"]) == (None, None)
    assert searches == []
    assert http.delete("/fhir/DiagnosticReport/l37-r4").status_code in (200, 204)
    assert (entry(engine, alt)["order"], entry(engine, ast)["order"]) == (b1, b1)
    send(http, corrected("91"))
    assert (entry(engine, alt)["order"], entry(engine, ast)["order"]) == (b1, b1)
    assert entry(engine, alt)["reports"] == [mine]
    assert searches == []
    assert {r["order"] for r in live(engine, http)} == {b1}, live(engine, http)
    assert outcome(engine, b1) == "duplicate"


def test_an_entry_without_its_reports_is_searched_once(
        engine: Engine, http: TestClient, searches: list[str]) -> None:  # noqa: F811
    """An entry an earlier release wrote (no ``reports``): the correction searches for its reports, as
    before, and keeps them; the next correction searches nothing. The link is B1's throughout."""
    b1, fb1 = linked_b1(engine, http)
    alt = fb1["result"][0]["reference"]
    coll = engine.recognition.index.coll
    older = {k: v for k, v in coll.get(alt).items() if k != "reports"}
    with engine.store.transaction():
        coll.replace(older)
    searches.clear()
    send(http, corrected("90"))
    assert searches == [alt]
    assert entry(engine, alt)["reports"] == [f"DiagnosticReport/{fb1['id']}"]
    send(http, corrected("91"))
    assert searches == [alt]
    assert entry(engine, alt)["order"] == b1
    assert outcome(engine, b1) == "duplicate"


def test_a_report_stored_ahead_then_its_result_alone(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """R2 stored ahead, the ALT then PUT alone (no report at hand: the store is searched, relink36):
    linked to B1; the note is gone once the ALT's entry keeps R2."""
    b1, alt, about = copied_alt(engine, http)
    assert http.put("/fhir/DiagnosticReport/l37-r2", json=report("l37-r2", "肝功能", about, b1),
                    headers=FHIR).status_code == 201
    assert http.put("/fhir/Observation/l37-alt", json={**alt, "id": "l37-alt"}, headers=FHIR).status_code == 201
    assert entry(engine, "Observation/l37-alt")["order"] == b1
    assert entry(engine, "Observation/l37-alt")["reports"] == ["DiagnosticReport/l37-r2"]
    assert engine.store.collection(LISTED_AHEAD).get("Observation/l37-alt") is None
    assert outcome(engine, b1) == "duplicate"
