"""The SQLite put's two shortcuts of the thirty-fourth round (ingest34) give what they replaced.

(1) ``fhir_resource.sortkeys`` is written by ``orjson.dumps`` directly (``sqlite_fhir._sort_keys``)
instead of through ``fhirjson.dumps``: the indexer's sort values are plain ``str`` and ``float``,
which both write alike; anything orjson refuses (an exact decimal, should one ever reach a sort
key) still goes through ``fhirjson``. (2) A put whose resources name others by rid (a
Provenance's ``target``, a report's ``result``: ``BY_TARGET``) records each resource's rid for the
transaction's later puts once, in ``_target_rids``, not a second time in ``put_many``'s loop: a
later put of the same transaction still keys its rows by those rids without asking the store.

Real bytes through the real path: lab messages over MLLP into an Engine's SQLite store (every
stored row then held to the layout's reading of its body by ``test_index10_put_rows``' check, the
sort keys by ``fhirjson`` included), and write groups through the real repository on a real
store, with SQLite's own statement trace saying which statements ran.
"""

from __future__ import annotations

import decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from adapters.hl7v2.ack import ack_code_of
from bench.ingest import oru_lab
from engine import fhirjson
from engine.engine import Engine
from engine.repository import sqlite_fhir, sqlite_rows
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings
from tests.test_index10_put_rows import _assert_stored_as_their_bodies_say
from tests.test_ingest_durability import exchange, listening
from tests.test_mllp import asynctest

BASE = "http://huren.test/fhir"


def _obs(oid: str, pid: str = "p1") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": f"Patient/{pid}"}, "valueQuantity": {"value": 13.5, "unit": "g/dL"}}


def _prov(pid: str, *targets: str) -> dict[str, Any]:
    return {"resourceType": "Provenance", "id": pid, "recorded": "2024-01-01T00:00:00Z",
            "agent": [{"who": {"reference": "Organization/lab"}}], "target": [{"reference": t} for t in targets]}


def test_sort_keys_are_what_fhirjson_writes_and_an_exact_decimal_still_is() -> None:
    """orjson and ``fhirjson`` write the indexer's values alike (texts with CJK characters and
    escapes, integral and fractional floats, an epoch second); a value orjson refuses goes
    through ``fhirjson``, which writes an exact decimal's own text."""
    plain = {"code": "718-7", "name": "张三 \"quoted\"\n", "date": 1793494800.0, "value-quantity": 0.43,
             "patient": "Patient/670a20f6-ec42-5fa4-9b9d-824da93fc012", "empty": ""}
    assert sqlite_fhir._sort_keys(plain) == fhirjson.dumps(plain).decode()
    exact = {"value-quantity": fhirjson.FhirDecimal("5.10"), "other": decimal.Decimal("1.50")}
    assert sqlite_fhir._sort_keys(exact) == fhirjson.dumps(exact).decode() == '{"value-quantity":5.10,"other":1.50}'


@asynctest
async def test_lab_messages_over_mllp_store_rows_and_sort_keys_as_their_bodies_say(settings: Settings) -> None:
    """Three 12-OBX results over a real MLLP socket, ACKed AA: every stored row, ``hkeys``,
    ``ranges`` and sort key is what the layout's reading of the stored body makes of it, and the
    report's results and the Provenances' targets are keyed by rid (the put recorded them)."""
    with Engine(settings) as engine:
        async with listening(engine) as server:
            acks = await exchange(server.port, *(oru_lab(7_000 + i) for i in range(3)))
        assert [ack_code_of(a) for a in acks] == ["AA"] * 3
        checked = _assert_stored_as_their_bodies_say(engine)  # type: ignore[arg-type]
        assert checked >= 3 * 15
        _base, prov_mark = sqlite_rows.target_key("Provenance", "target")
        _base, report_mark = sqlite_rows.target_key("DiagnosticReport", "result")
        conn = engine.store.conn
        observations = conn.execute("SELECT count(*) FROM fhir_resource WHERE type = 'Observation'").fetchone()[0]
        assert observations == 36
        # each report names its 12 results by rid; each Provenance at least its message's results
        assert conn.execute("SELECT count(*) FROM ix_hash WHERE q = ?", (report_mark,)).fetchone()[0] == 36
        assert conn.execute("SELECT count(*) FROM ix_hash WHERE q = ?", (prov_mark,)).fetchone()[0] >= 36


def test_a_later_put_of_the_transaction_keys_its_targets_by_the_rids_the_earlier_one_gave(tmp_path: Path) -> None:
    """Two write groups in one transaction: the second's Provenance names the first group's
    resources (and one of its own); its rows are keyed by their rids with no statement asking the
    store for them (the first put recorded them), and every row is as the bodies say."""
    store = SqliteStore(tmp_path / "huren.sqlite3")
    try:
        repo = FhirRepository(store, base_url=BASE)
        statements: list[str] = []
        with store.transaction():
            repo.write_many([_obs("A"), _obs("B"), _prov("first", "Observation/A")])
            store.conn.set_trace_callback(statements.append)
            try:
                repo.write_many([_prov("second", "Observation/A", "Observation/B", "Observation/C"), _obs("C")])
            finally:
                store.conn.set_trace_callback(None)
        asked = [s for s in statements if "r.rid FROM (VALUES" in s]
        assert asked == [], asked
        base, mark = sqlite_rows.target_key("Provenance", "target")
        rids = dict(store.query("SELECT id, rid FROM fhir_resource WHERE type = 'Observation'"))
        second = store.query("SELECT rid FROM fhir_resource WHERE type = 'Provenance' AND id = 'second'")[0][0]
        keyed = {h for h, in store.query("SELECT h FROM ix_hash WHERE q = ? AND rid = ?", (mark, second))}
        assert keyed == {base + rids["A"], base + rids["B"], base + rids["C"]}
        assert {r["id"] for r in repo.search("Provenance", [("target", "Observation/B")]).resources} == {"second"}
        assert {r["id"] for r in repo.search("Provenance", [("target", "A")]).resources} == {"first", "second"}
        _assert_stored_as_their_bodies_say(SimpleNamespace(repository=repo, store=store))  # type: ignore[arg-type]
    finally:
        store.close()
