"""rv37b: probes of wards37 (the ward of a place, a member facility's ward on /ui/me/wards) and fid37 (who sees a
refusal count's clients, a corrected replay the operator's, the fidelity counters through the atomic
``Collection.increment`` and its ``add=``). Real bytes through the real path: ``POST /hl7v2``, ``/fhir`` and
``/admin`` over TestClient, the real store on each backend. A probe that shows a defect is a strict xfail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.repository.port import Store
from engine.settings import Settings
from tests.conftest import _BACKENDS, settings_for_backend
from tests.test_count36_refusals import _probe, _registered
from tests.test_priv36_refusals import world  # noqa: F401  (the fixture)
from tests.test_rvprivprobe27_admin import _bound_system


def _post_as(http: TestClient, headers: dict[str, str], message: str) -> bytes:
    r = http.post("/hl7v2", content=message.encode(), headers={**headers, "Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200, r.text
    return r.content


# -- fid37: a bound operator and the clients of another member ------------------------------------------------------

def test_bound_client_reads_no_refusal_clients_on_fhir_auditevent(world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """FNZYY's bound HIS (``his-fnzyy``) is refused for naming FNXRMYY's number. fid37 withholds which client posted
    from FNXRMYY's bound operator on /admin/fidelity (the sending institution's infrastructure). The same client id
    must not reach FNXRMYY's bound system client through the Security Alert AuditEvent on /fhir either."""
    engine, http = world
    _registered(http, "RVA1")
    assert ack_code_of(_post_as(http, _bound_system(engine, "FNZYY"), _probe("RVA1"))) == "AE"
    mine = _bound_system(engine, "FNXRMYY")
    r = http.get("/admin/fidelity", headers=mine)
    assert r.status_code == 200 and "his-fnzyy" not in r.text, r.text[:2000]
    r = http.get("/fhir/AuditEvent", params={"_count": "200"}, headers=mine)
    assert r.status_code in (200, 403), r.text[:500]
    events = [e["resource"] for e in r.json().get("entry") or ()] if r.status_code == 200 else []
    refused = [e for e in events if any(c.get("code") == "member-number-refused" for c in e.get("subtype") or ())]
    assert r.status_code == 403 or refused, "the refusal's own record is listed (it names FNZYY, no client)"
    named = [e for e in events for a in e.get("agent") or ()
             if (a.get("who") or {}).get("identifier", {}).get("value") == "his-fnzyy"]
    assert not named, named


def test_a_staff_operators_corrected_copy_names_the_person_as_agent(world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """fid37 makes a corrected copy's Security Alert record name the operator "in the same form as the replay's own
    record". A staff operator signed in to the quarantine page (a person, a role) replays a corrected copy: the
    refusal's record must name that person, not an application client of the same name."""
    from engine.messages import message_id
    from tests.test_priv36_refusals import _refusal_records
    from tests.test_rvrvops26_quarantine_access import _session

    engine, http = world
    _registered(http, "RVS1")
    assert ack_code_of(_post_as(http, _bound_system(engine, "FNZYY"), _probe("RVS1"))) == "AE"
    before = len(_refusal_records(engine))
    cookies, csrf = _session(engine, "operator", name="it.rv37b")
    doc_id = message_id("FNZYY", "RVS1B")
    r = TestClient(http.app, cookies=cookies).post(
        f"/admin/quarantine/{doc_id}/replay", content=_probe("RVS1", value="5.9").encode(),
        headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text
    (record,) = _refusal_records(engine)[before:]
    assert record["details"]["client"] == "replay:it.rv37b", record
    agent = record["agent"][0]
    codes = {c.get("code") for c in agent["type"]["coding"]}
    assert "110150" not in codes, agent  # not an Application
    assert (agent["who"].get("identifier") or {}).get("system") != "urn:huren:client", agent


# -- fid37: Collection.increment(add=) and its undo, on every backend -----------------------------------------------

def _undone_exactly(store: Store) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    rows = store.collection("rv37b_counts")
    rows.increment("r", "count", on_insert={"kind": "k"})
    kept = rows.get("r")
    with pytest.raises(RuntimeError), store.transaction():
        rows.increment("r", "count", add={"records": ["Patient/a"]})
        raise RuntimeError("boom")
    return kept, rows.get("r")


def test_a_failed_blocks_added_values_are_taken_back(store: Store) -> None:
    """The values a failed block added to a list are gone again, on every backend; the count is back."""
    kept, now = _undone_exactly(store)
    assert kept is not None and now is not None
    assert now["count"] == kept["count"] == 1 and not now.get("records"), now


def test_a_failed_blocks_add_leaves_the_row_exactly_as_it_was(store: Store) -> None:
    """The port's contract: a failed block is undone exactly, the row as it was. SQLite's rollback does so; a
    MongoDB without transactions (mongomock, a standalone server) undid ``add=`` by a ``$pull``, which left the
    list it created empty (``records: []``) on a row that had none (fidfix37: ``$unset`` once empty)."""
    kept, now = _undone_exactly(store)
    assert now == kept, (kept, now)


def test_add_to_a_row_created_in_the_same_failed_block_leaves_nothing(store: Store) -> None:
    """A row created by a failed block, added to twice in it (the second adding one value again and one new): gone."""
    rows = store.collection("rv37b_counts2")
    with pytest.raises(RuntimeError), store.transaction():
        rows.increment("n", "count", on_insert={"kind": "k"}, add={"records": ["x"]})
        _, after = rows.increment("n", "count", add={"records": ["x", "y"]})
        assert after == {"_id": "n", "kind": "k", "count": 2, "records": ["x", "y"]}, after
        raise RuntimeError("boom")
    assert rows.get("n") is None


def test_a_value_held_before_the_failed_block_stays(store: Store) -> None:
    """A value the row held before the block, added again in a failed block, is not pulled out by the undo."""
    rows = store.collection("rv37b_counts3")
    rows.increment("h", "count", add={"records": ["a"]})
    with pytest.raises(RuntimeError), store.transaction():
        rows.increment("h", "count", add={"records": ["a", "b"]})
        raise RuntimeError("boom")
    assert rows.get("h") == {"_id": "h", "count": 1, "records": ["a"]}


@pytest.fixture(params=_BACKENDS)
def alone(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, TestClient]]:
    """priv36's ``world`` (an engine alerting at every ``ALERT`` refusals) of one test's own: counts from 0, whatever
    the module's shared world holds by then (fidfix37: rv37b's caveat, a precondition that held in file order only)."""
    from tests.test_priv36_refusals import ALERT

    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, member_refusal_alert=ALERT)
    with settings_for_backend(request.param, settings) as chosen, Engine(chosen) as engine, \
            TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("priv36", "system/*.cruds")
        yield engine, client


def test_the_operators_corrected_copies_are_not_told_as_a_sending_clients_alert(
        alone: tuple[Engine, TestClient]) -> None:
    """FNZYY's message naming FNXRMYY's number is refused; the site's operator replays corrected copies of it, each
    still refused, to the alert threshold. fid37: those are the operator's questions, not the sender's. FNXRMYY's
    bound operator was then told (``client_alert``) that a sending client, the sending institution's
    infrastructure, is past the threshold -- it is the site's own operator. In a world of its own (``alone``): no
    other test's sending client is past the threshold before it."""
    from engine.messages import message_id
    from tests.test_priv36_refusals import ALERT

    engine, http = alone
    _registered(http, "RVC1")
    feed = {"Authorization": "Bearer " + engine.auth.issue_system_token("rv37b-feed", "system/MessageHeader.c")}
    assert ack_code_of(_post_as(http, feed, _probe("RVC1"))) == "AE"
    mine = _bound_system(engine, "FNXRMYY")
    r = http.get("/admin/fidelity", headers=mine)
    assert r.status_code == 200 and "client_alert" not in r.json()["institutions"].get("FNXRMYY", {}), r.text[:2000]
    operator = {"Authorization": "Bearer " + engine.auth.issue_system_token("opsrv37b", "system/*.cruds")}
    for n in range(ALERT):
        r = http.post(f"/admin/quarantine/{message_id('FNZYY', 'RVC1B')}/replay",
                      content=_probe("RVC1", value=f"6.{n}").encode(), headers=operator)
        assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text
    site = http.get("/admin/fidelity", headers=operator).json()["institutions"]["FNXRMYY"]
    assert site["member_refused_by"]["client"]["replay:opsrv37b"] == ALERT, site
    shown = http.get("/admin/fidelity", headers=mine).json()["institutions"]["FNXRMYY"]
    assert "client_alert" not in shown, shown


def _institution_count(engine: Engine, http: TestClient, key: str) -> int:
    ops = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops-rv37b", "system/MessageHeader.cr")}
    shown = http.get("/admin/fidelity", headers=ops).json()["institutions"].get("FNXRMYY", {})
    return int(shown.get("member_refused_by", {}).get("institution", {}).get(key, 0))


def test_a_senders_own_corrected_copies_count_under_the_sender(world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """fid37 counts a corrected copy "for the operator alone", rightly for the site's operator. But FNZYY's own
    bound client (``his-fnzyy``, FNZYY's infrastructure) replaying corrected bytes -- MSH-3/4/10 kept, PID free,
    here naming two more of FNXRMYY's numbers for 张三 -- is FNZYY asking: FNXRMYY's operator, who sees the counts
    by sending institution only (``refusal_count_shown``), must see FNZYY's count rise."""
    from engine.messages import message_id

    engine, http = world
    for n in ("RVD1", "RVD2", "RVD3"):
        _registered(http, n)
    his = _bound_system(engine, "FNZYY")
    before = _institution_count(engine, http, "FNZYY")
    assert ack_code_of(_post_as(http, his, _probe("RVD1"))) == "AE"
    assert _institution_count(engine, http, "FNZYY") == before + 1
    doc_id = message_id("FNZYY", "RVD1B")
    for n in ("RVD2", "RVD3"):  # the same message (MSH-10 RVD1B), another of FNXRMYY's numbers each time
        probe = _probe(n).replace(f"{n}B|", "RVD1B|", 1)
        assert "|RVD1B|" in probe and f"{n}^^^FNXRMYY" in probe
        r = http.post(f"/admin/quarantine/{doc_id}/replay", content=probe.encode(), headers=his)
        assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text
    assert _institution_count(engine, http, "FNZYY") == before + 3


# -- fid37: the fidelity counters of a batch written twice (a failed whole attempt, then message by message) ---------

def test_a_redone_batch_counts_its_fidelity_once(backend_settings: Any) -> None:
    """Three lab messages, each with an unknown segment, the second failing at write time: the batch is written
    whole, fails, is undone (a transaction, or on mongomock the undo journal with the increments' own undo) and
    redone message by message. Its counters must be what three messages sent one by one, the second failing the
    same way, count: nothing of the undone attempt kept, nothing counted twice."""
    from bench.ingest import oru_lab

    def marked(n: int, segment: str) -> tuple[bytes, str, str]:
        return oru_lab(n) + f"{segment}|1\r".encode(), "mllp", "p"

    with Engine(backend_settings) as engine:
        def fail(resource: dict[str, Any], previous: Any) -> list[dict[str, Any]]:
            if any(i.get("value") in ("MRN0003702", "MRN0003712") for i in resource.get("identifier", [])):
                raise RuntimeError("disk trouble for this one")
            return []

        engine.repository.add_write_hook(fail)
        batch = engine.ingestor.process([marked(n, "ZAA") for n in (3701, 3702, 3703)])
        assert [o.code for o in batch] == ["AA", "AE", "AA"] and engine.ingestor.stats.redone_batches == 1
        alone = [engine.ingestor.process([marked(n, "ZBB")])[0] for n in (3711, 3712, 3713)]
        assert [o.code for o in alone] == ["AA", "AE", "AA"]
        rows = {d.get("segment") or d.get("value"): d for d in engine.ingestor.messages.fidelity_report("FNXRMYY")}
        assert rows["ZAA"]["count"] == rows["ZBB"]["count"] >= 2, (rows.get("ZAA"), rows.get("ZBB"))
