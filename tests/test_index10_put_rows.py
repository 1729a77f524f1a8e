"""What the SQLite put stores for each resource is exactly what its stored body's index rows say.

``SqliteFhirBackend.put_many`` writes a first version's rows with its own loop (the ingest path:
some seventeen resources a message), apart from the replacing path and the rebuild, which go
through ``_collect`` and ``_pack``. Both paths of data in, HL7 v2 over a real MLLP socket and
FHIR resources through the real ``/fhir`` API, index with the one extraction the repository
owns (``Indexer.rows``); this test reads every current row back from the store and holds it,
byte for byte, to what the layout's plain reading makes of that resource's stored body: its
``ix_hash`` rows and ``hkeys`` (the distinct ``(h, q)`` of its tokens, references, URIs and
systems in order of first appearance, a narrowed parameter's references left out), its range
rows and ``ranges`` JSON, its sort keys, its ``idh``; and that no table holds a row no resource
accounts for.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Collection
from pathlib import Path
from typing import Any

import orjson
import yaml
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.header import extract_header
from adapters.listeners.files import split_messages
from bench.ingest import oru_lab
from engine import fhirjson
from engine.api.app import create_app
from engine.engine import Engine
from engine.repository import sqlite_rows
from engine.settings import Settings
from tests.conftest import REPO_ROOT, SAMPLES, declare_training_senders
from tests.test_ingest_durability import exchange, listening
from tests.test_mllp import asynctest

FEEDS = REPO_ROOT / "examples" / "feeds"
R4 = REPO_ROOT / "tests" / "fixtures" / "r4"
FHIR = {"Content-Type": "application/fhir+json"}
RANGE_TABLES = {"ix_date": "dates", "ix_string": "strings", "ix_quantity": "quantities"}


def _expected_keys(rtype: str, rows: Any, narrowed: dict[str, tuple[str, str]],
                   stored: dict[tuple[str, str], int]) -> list[tuple[int, int]]:
    """The layout's reading, written out here from the hash functions alone: a by-target
    parameter's reference (layout 6: a Provenance's ``target``) to a stored resource, of a type no
    narrowed parameter reads, is keyed by that resource's rid (``stored``: (type, id) -> rid)."""
    keys: dict[tuple[int, int], None] = {}
    for p, system, code in rows.tokens:
        keys[(sqlite_rows.token_hash(rtype, p, code), sqlite_rows.qualifier_hash(system))] = None
    for p, target_type, target in rows.refs:
        if p in narrowed and narrowed[p][1] == target_type:
            continue
        if (p in sqlite_rows.BY_TARGET.get(rtype, ()) and (target_type, target) in stored
                and (p, target_type) not in set(narrowed.values())):
            base, mark = sqlite_rows.target_key(rtype, p)
            keys[(base + stored[(target_type, target)], mark)] = None
            continue
        keys[(sqlite_rows.ref_hash(rtype, p, target), sqlite_rows.qualifier_hash(target_type))] = None
    for p, uri in rows.uris:
        keys[(sqlite_rows.uri_hash(rtype, p, uri), sqlite_rows.NO_QUALIFIER)] = None
    for p, system in rows.systems:
        keys[(sqlite_rows.system_hash(rtype, p, system), sqlite_rows.NO_QUALIFIER)] = None
    return list(keys)


def _assert_stored_as_their_bodies_say(engine: Engine, stored_after: Collection[tuple[str, str]] = ()) -> int:
    """Every current resource's stored rows against its body's; returns how many were checked.
    ``stored_after``: resources stored after the Provenances naming them (their rows hashed)."""
    repo = engine.repository
    conn = engine.store.conn
    tables = {t: set(conn.execute(f"SELECT * FROM {t}")) for t in ("ix_hash", *RANGE_TABLES)}  # noqa: S608
    accounted: dict[str, set[tuple[Any, ...]]] = {t: set() for t in tables}
    checked = 0
    rids = {(rtype, id_): rid for rid, rtype, id_ in conn.execute("SELECT rid, type, id FROM fhir_resource")
            if (rtype, id_) not in stored_after}
    for rid, rtype, id_, deleted, body, sortkeys, hkeys, ranges, idh in conn.execute(
            "SELECT rid, type, id, deleted, body, sortkeys, hkeys, ranges, idh FROM fhir_resource"):
        assert idh == sqlite_rows.id_hash(rtype, id_)
        if deleted:
            continue
        rows = repo.indexer.rows(fhirjson.loads(body))
        keys = _expected_keys(rtype, rows, dict(repo.params.narrowed(rtype)), rids)
        assert hkeys == struct.pack(f"<{2 * len(keys)}q", *(v for k in keys for v in k)) + b"\x01", (rtype, id_)
        assert sortkeys == fhirjson.dumps(rows.sort).decode(), (rtype, id_)
        has_ranges = rows.dates or rows.strings or rows.quantities
        assert ranges == (orjson.dumps((rows.dates, rows.strings, rows.quantities)).decode()
                          if has_ranges else None), (rtype, id_)
        mine = {(h, rid, q) for h, q in keys}
        assert mine <= tables["ix_hash"], (rtype, id_)
        accounted["ix_hash"] |= mine
        for table, kind in RANGE_TABLES.items():
            stored = {(sqlite_rows.param_hash(rtype, p), *values, rid) for p, *values in getattr(rows, kind)}
            assert stored <= tables[table], (table, rtype, id_)
            accounted[table] |= stored
        checked += 1
    for table, rows_found in tables.items():
        assert rows_found == accounted[table], f"{table}: rows no current resource accounts for"
    return checked


def _sample_site(tmp_path: Path, messages: list[bytes]) -> Path:
    """A site whose institutions are the samples' sending facilities (so that they convert)."""
    site = tmp_path / "site"
    site.mkdir()
    codes = sorted({extract_header(m)[0].facility_code for m in messages} - {""})
    institutions = [{"code": c, "name": c, "community": "samples", "timezone": "UTC",
                     "qc": {"passed": "all", "until": "2027-12-31"}} for c in codes]
    (site / "institutions.yaml").write_text(yaml.safe_dump(institutions, allow_unicode=True))
    declare_training_senders(site, messages)  # their T is production here (hl7mode29)
    return site


@asynctest
async def test_every_sample_message_is_stored_with_its_bodys_rows(settings: Settings, tmp_path: Path) -> None:
    files = sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".hl7", ".txt") and p.is_file())
    messages = [m for p in files for m in split_messages(p.read_bytes())]
    with Engine(settings.with_(site=_sample_site(tmp_path, messages))) as engine:
        async with listening(engine) as server:
            acks = await exchange(server.port, *messages)
        assert sum(ack_code_of(a) == "AA" for a in acks) >= 20
        assert _assert_stored_as_their_bodies_say(engine) >= 200


@asynctest
async def test_feeds_lab_messages_and_fhir_posts_are_stored_with_their_bodys_rows(settings: Settings) -> None:
    """The example feeds and the benchmark's 12-result message over MLLP (first versions, then a
    feed's later messages replacing them), then FHIR resources through ``/fhir``, one store."""
    feeds = [m for p in sorted(FEEDS.glob("*.hl7")) for m in split_messages(p.read_bytes())]
    lab = [oru_lab(70_000_000 + i) for i in range(30)]
    with Engine(settings) as engine:
        async with listening(engine) as server:
            acks = await exchange(server.port, *feeds, *lab)
        assert all(ack_code_of(a) == "AA" for a in acks[len(feeds):])
        token = engine.auth.issue_system_token("index10-test", "system/*.cruds")
        with TestClient(create_app(engine)) as http:
            http.headers["Authorization"] = "Bearer " + token
            posted = []
            for path in sorted(R4.glob("*.json")):
                resource = json.loads(path.read_text(encoding="utf-8"))
                if resource["resourceType"] != "Bundle":  # (the example Bundle holds preconditions)
                    r = http.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR)
                    assert r.status_code in (200, 201), (path.name, r.text[:300])
                    posted.append(resource)
            # the same resources again in one transaction, as new ones (a write group), and a
            # new version of each of the first ones (the replacing path)
            bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": {k: v for k, v in r.items() if k != "id"}, "request": {"method": "POST",
                                                                                  "url": r["resourceType"]}}
                for r in posted]}
            r = http.post("/fhir", json=bundle, headers=FHIR)
            assert r.status_code == 200, r.text[:300]
            for resource in posted:
                changed = {**resource, "language": "zh-CN"}
                r = http.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=changed, headers=FHIR)
                assert r.status_code == 200, r.text[:300]
            assert len(posted) >= 10
        assert _assert_stored_as_their_bodies_say(engine) >= 30 * 17
