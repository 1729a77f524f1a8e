"""rv41h: review probes of perf41 (storage layout 9: ``fhir_resource.tu``, a type's 19-bit hash code above
``updated`` in milliseconds, indexed in place of layout 8's ``(type, updated)`` text index; the upgrade of a
layout 5-8 store in one transaction at open).

Real path: FHIR writes and searches over HTTP through FastAPI on the real SQLite store; the same store read
through the repository's cross-type path, which still compares the ``updated`` text exactly as layout 8 did
(the oracle a ``_lastUpdated`` answer on ``tu`` must equal), and the bodies' own ``meta.lastUpdated``; a
layout-8 store written by the release before perf41 (``git archive`` of 5a1bcfb7^1, its own process), its
answers recorded there and compared after this tree upgrades it -- also after a kill -9 in the middle of the
upgrade, and with a second process opening the store while the upgrade runs. A probe that shows a defect is a
strict xfail naming its severity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.repository.sqlite_fhir import LAYOUT
from engine.repository.sqlite_rows import TU_SHIFT, updated_key
from engine.repository.sqlite_search import _updated_sql
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "5a1bcfb7^1"  # main just before perf41 was merged: storage layout 8

# bounds asked at every prefix: around the stored instants (filled in per test), in +08:00, at day, month and
# year precision, finer than a millisecond, before 1970, at the 32-bit second rollover (2106) and far after
BOUNDS_FIXED = ["1960", "1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z", "1970-01-01T08:00:00+08:00",
                "2038-01-19T03:14:08Z", "2106-02-07T06:28:16Z", "2200", "2527-06", "2600-01-01", "9999"]
PREFIXES = ("", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")


@pytest.fixture
def eng(settings: Settings) -> Iterator[Engine]:
    engine = Engine(settings)
    yield engine
    engine.close()


@pytest.fixture
def client(eng: Engine, client_token: Any) -> Iterator[TestClient]:
    with TestClient(create_app(eng)) as c:
        c.headers["Authorization"] = "Bearer " + client_token(eng)
        yield c


def _patient(pid: str, family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family}]}


def _org(oid: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": oid, "name": f"卫生院 {oid}"}


def _written(client: TestClient) -> None:
    """Patients and Organizations interleaved, each its own write (a later millisecond), then a
    transaction whose three Patients share one instant (ties), a Patient written again, one deleted."""
    for n in range(8):
        assert client.put(f"/fhir/Patient/p{n}", json=_patient(f"p{n}", "张")).status_code in (200, 201)
        assert client.put(f"/fhir/Organization/g{n}", json=_org(f"g{n}")).status_code in (200, 201)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _patient(f"t{n}", "李"), "request": {"method": "PUT", "url": f"Patient/t{n}"}} for n in range(3)]}
    r = client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    assert client.put("/fhir/Patient/p2", json=_patient("p2", "王")).status_code == 200
    assert client.delete("/fhir/Patient/p5").status_code in (200, 204)


def _http_ids(client: TestClient, url: str) -> list[str]:
    """Every id a search answers over HTTP, page after page by the Bundle's own next links."""
    out: list[str] = []
    while url:
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:400])
        bundle = r.json()
        out += [e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") != "include"]
        url = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), "")
        if url.startswith("http"):
            url = "/fhir/" + url.split("/fhir/", 1)[1]
    return out


def _text_answer(eng: Engine, value: str) -> list[str]:
    """Layout 8's answer to ``Patient?_lastUpdated=value``: the parsed condition as ``_updated_sql`` (the
    comparison of the ``updated`` text, kept as it was for the cross-type path) over the Patient rows."""
    (clause,) = eng.repository.parser.parse("Patient", [("_lastUpdated", value)]).query.clauses
    (cond,) = clause.alternatives
    where, params = _updated_sql(cond, "updated")
    rows = eng.store.query(f"SELECT id FROM fhir_resource WHERE type = 'Patient' AND deleted = 0 AND "
                           f"{'NOT ' if clause.negate else ''}({where})", params)
    return sorted(i for (i,) in rows)


def test_lastupdated_on_tu_equals_layout_8_s_text_compare_at_every_prefix_and_bound(eng: Engine,
                                                                                    client: TestClient) -> None:
    """GUARD (sound). ``/fhir/Patient?_lastUpdated=<prefix><bound>`` (layout 9: a range of ``tu``,
    ``_tu_sql``) answers exactly what layout 8's comparison of the ``updated`` text answers
    (``_updated_sql``, untouched by perf41, still the cross-type path's) over the Patient rows -- for every
    prefix, around each stored instant (the instant itself, 1 ms either side, in +08:00, at second, day,
    month and year precision, finer than a millisecond), before 1970, at 2038/2106 and after the ``tu``
    field's 2^44 ms (2527); and ``gt``/``lt`` also as the bodies' own ``meta.lastUpdated`` says. Fails if
    ``_tu_sql`` shifts a bound by a millisecond, clamps a pre-1970/post-2527 bound into the wrong end of the
    type's span, or lets a bound leave the span (an Organization answered)."""
    _written(client)
    repo = eng.repository
    stamps = sorted({r["meta"]["lastUpdated"] for r in repo.search("Patient", [("_count", "100")]).resources})
    assert len(stamps) >= 8
    bounds = list(BOUNDS_FIXED)
    for s in stamps[1::3] + [stamps[-1]]:
        at = datetime.fromisoformat(s.replace("Z", "+00:00"))
        bounds += [s, s[:19] + "Z", s[:10], s[:7], s[:4],
                   (at - timedelta(milliseconds=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                   (at + timedelta(milliseconds=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                   at.astimezone(timezone(timedelta(hours=8))).isoformat(timespec="milliseconds"),
                   s[:23] + "4567Z", s[:23] + "9999Z"]
    asked = 0
    for bound in bounds:
        for prefix in PREFIXES:
            value = prefix + bound
            url = "/fhir/Patient?_lastUpdated=" + value.replace("+", "%2B") + "&_count=100"
            got = sorted(_http_ids(client, url))
            text = _text_answer(eng, value)
            assert got == text, (value, got, text)
            asked += 1
    # and as the bodies say, for the strict comparisons at each stored instant
    bodies = {r["id"]: r["meta"]["lastUpdated"] for r in repo.search("Patient", [("_count", "100")]).resources}
    for s in stamps:
        assert sorted(_http_ids(client, f"/fhir/Patient?_lastUpdated=gt{s}&_count=100")) == sorted(
            i for i, u in bodies.items() if u > s)
        assert sorted(_http_ids(client, f"/fhir/Patient?_lastUpdated=lt{s}&_count=100")) == sorted(
            i for i, u in bodies.items() if u < s)
    assert asked > 300


def test_sort_by_lastupdated_pages_are_stable_across_ties_and_equal_layout_8_s_order(eng: Engine,
                                                                                   client: TestClient) -> None:
    """GUARD (sound). ``_sort=-_lastUpdated`` and ``_sort=_lastUpdated`` over HTTP, two to a page, followed by
    the Bundles' own next links: every Patient once (the transaction's three share one instant: their tie
    broken by rid, as layout 8's ``updated, rid`` did), in the order layout 8's ``ORDER BY updated, rid`` gives (and the cross-type
    path, ``_type``), and the order the bodies' ``meta.lastUpdated`` says; a ``_lastUpdated`` filter with the sort alike."""
    _written(client)
    repo = eng.repository
    bodies = {r["id"]: r["meta"]["lastUpdated"] for r in repo.search("Patient", [("_count", "100")]).resources}
    assert len(set(bodies.values())) < len(bodies)  # (ties present: the transaction's Patients)
    mid = sorted(bodies.values())[4]
    for sort in ("-_lastUpdated", "_lastUpdated"):
        for extra in ("", f"&_lastUpdated=ge{mid}"):
            paged = _http_ids(client, f"/fhir/Patient?_sort={sort}&_count=2{extra}")
            text = [i for (i,) in eng.store.query(
                "SELECT id FROM fhir_resource WHERE type = 'Patient' AND deleted = 0 AND updated >= ? "
                f"ORDER BY updated {'DESC' if sort.startswith('-') else 'ASC'}, rid", (mid if extra else "",))]
            if not extra:  # (and the repository's cross-type path, ``_type``: ``r.updated``)
                assert text == [r["id"] for r in repo.search(None, [("_type", "Patient"), ("_sort", sort),
                                                                    ("_count", "100")]).resources]
            assert paged == text, (sort, extra, paged, text)
            assert len(paged) == len(set(paged))
            stamps = [bodies[i] for i in paged]
            assert stamps == sorted(stamps, reverse=sort.startswith("-"))
            if not extra:
                assert sorted(paged) == sorted(bodies)


def test_bad_lastupdated_values_are_a_400_not_a_500(client: TestClient) -> None:
    """GUARD. A leap second, an hour of 24, the ``ap`` prefix (not supported), a year of five digits, an empty
    value: a 400 OperationOutcome naming ``_lastUpdated`` (or the prefix), never a 500, on the path that now builds ``tu``
    bounds."""
    assert client.put("/fhir/Patient/x1", json=_patient("x1", "赵")).status_code in (200, 201)
    for value in ("2016-12-31T23:59:60Z", "2026-01-01T24:00:00Z", "ap2026-01-01", "12026-01-01", "gt",
                  "2026-13"):
        r = client.get("/fhir/Patient", params={"_lastUpdated": value})
        assert r.status_code == 400, (value, r.status_code, r.text[:300])
        assert r.json()["resourceType"] == "OperationOutcome", (value, r.text[:300])
        assert "_lastUpdated" in r.text or "prefix" in r.text, (value, r.text[:300])


def test_an_offset_beyond_fourteen_hours_is_a_400(client: TestClient) -> None:
    """FHIR R4 dateTime's offset is ``(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)``: ``+25:00`` is no instant,
    and a client that typed it is told nothing (an empty Bundle reads as "nothing changed since")."""
    assert client.put("/fhir/Patient/x1", json=_patient("x1", "赵")).status_code in (200, 201)
    for value in ("gt2026-01-01T00:00:00+25:00", "2026-01-01T00:00:00-14:01", "ge2026-01-01T00:00:00+08:60"):
        r = client.get("/fhir/Patient", params={"_lastUpdated": value})
        assert r.status_code == 400, (value, r.status_code, r.text[:300])
        assert r.json()["resourceType"] == "OperationOutcome" and "_lastUpdated" in r.text, r.text[:300]
    for value in ("gt2026-01-01T00:00:00+14:00", "lt2026-01-01T00:00:00-14:00", "2026-01-01T00:00:00+05:45"):
        r = client.get("/fhir/Patient", params={"_lastUpdated": value})
        assert r.status_code == 200, (value, r.status_code, r.text[:300])
    # ``+14:00`` at its edge: x1 (written now) is after the bound
    assert [e["resource"]["id"] for e in client.get("/fhir/Patient", params={
        "_lastUpdated": "gt2026-01-01T00:00:00+14:00"}).json().get("entry", [])] == ["x1"]


# --- a layout-8 store written by the release before perf41, upgraded by this tree -------------------------------

# resource rows the old release writes (a third each Patient, Observation, Organization; ROWS % 3 == 2, as the counts
# asserted below say). Was 100,000, then 20,000 (round 41); 3,500 since suite45b: no branch of the upgrade depends on
# the count (one UPDATE of every row in one transaction; even 100,000 rows stay inside the store's 128 MiB page cache,
# so nothing reaches the WAL before the commit at any of these sizes), the old writer still writes in two transactions
# and every page asked (offsets 0, 7, 14 of seven) is full -- and each of the eight ``answers`` runs (the old release's
# and this tree's, ~1.6 s of CPU at 20,000 rows) scans them all
ROWS = 3_500

# run by both releases, each in its own process: what the store answers, as JSON on the last line of stdout
_ANSWERS = """
import hashlib, json
def answers(store, repo):
    def ids(result):
        return [r["resourceType"] + "/" + r["id"] for r in result.resources]
    out = {}
    stamps = sorted(u for (u,) in store.query("SELECT updated FROM fhir_resource WHERE deleted = 0"))
    picks = [stamps[i] for i in (0, 1, len(stamps) // 3, len(stamps) // 2, -2, -1)]
    for t in ("Patient", "Observation", "Organization"):
        out[t + " count"] = repo.search(t, [("_summary", "count")]).total
        out[t + " first"] = ids(repo.search(t, [("_count", "20")]))
        for sort in ("_lastUpdated", "-_lastUpdated"):
            out[t + sort] = ids(repo.search(t, [("_sort", sort), ("_count", "15")]))
            out[t + sort + " pages"] = [ids(repo.search(t, [("_sort", sort), ("_count", "7"), ("_offset", str(o))]))
                                        for o in (0, 7, 14, 20_000)]
        for s in picks:
            for v in [p + s for p in ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")] + [s[:10], "gt" + s[:19] + "Z", "le" + s[:7], "ge" + s[:19] + "+08:00"]:
                out[t + " " + v] = [repo.search(t, [("_lastUpdated", v), ("_summary", "count")]).total,
                                    ids(repo.search(t, [("_lastUpdated", v), ("_sort", "-_lastUpdated"), ("_count", "5")]))]
    out["code"] = [repo.search("Observation", [("code", "718-7"), ("_summary", "count")]).total,
                   ids(repo.search("Observation", [("code", "718-7"), ("_sort", "-_lastUpdated"), ("_count", "10")]))]
    out["code since"] = repo.search("Observation", [("code", "718-7"), ("_lastUpdated", "gt" + picks[3]),
                                                    ("_summary", "count")]).total
    out["everything"] = sorted(ids(repo.everything("p0", [("_since", picks[1]), ("_count", "100")])))
    out["history"] = [(h["meta"]["versionId"], h.get("status")) for h in repo.history("Observation", "o1")]
    out["stored types"] = store.fhir._stored_types()
    digest = hashlib.sha256()
    for row in store.query("SELECT type, id, version, updated, deleted, body FROM fhir_resource ORDER BY type, id"):
        digest.update(repr(row).encode())
    for row in store.query("SELECT type, id, version, updated, deleted, body FROM fhir_history ORDER BY type, id, version"):
        digest.update(repr(row).encode())
    out["rows"] = digest.hexdigest()
    return out
"""

_OLD_WRITER = """
import sys
sys.path.insert(0, {old!r})
import engine
assert engine.__file__.startswith({old!r}), engine.__file__
from pathlib import Path
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_fhir import LAYOUT
from engine.repository.sqlite_store import SqliteStore
assert LAYOUT == 8, LAYOUT
{answers}
store = SqliteStore(Path({db!r}))
repo = FhirRepository(store)
if {write!r}:
    def resource(k):
        if k % 3 == 0:
            return {{"resourceType": "Patient", "id": f"p{{k}}", "name": [{{"family": "张", "given": [str(k)]}}]}}
        if k % 3 == 1:
            return {{"resourceType": "Observation", "id": f"o{{k}}", "status": "final",
                     "code": {{"coding": [{{"system": "http://loinc.org", "code": "718-7" if k % 2 else "2345-7"}}]}},
                     "subject": {{"reference": f"Patient/p{{k - 1}}"}}}}
        return {{"resourceType": "Organization", "id": f"g{{k}}", "name": f"卫生院{{k}}"}}
    for start in range(0, {rows}, 2000):
        with store.transaction():
            repo.insert_derived([resource(k) for k in range(start, min({rows}, start + 2000))])
    repo.update({{"resourceType": "Observation", "id": "o1", "status": "amended",
                 "code": {{"coding": [{{"system": "http://loinc.org", "code": "718-7"}}]}},
                 "subject": {{"reference": "Patient/p0"}}}})
    repo.update({{"resourceType": "Patient", "id": "p0", "name": [{{"family": "王"}}]}})
    repo.delete("Organization", "g2")
print(json.dumps(answers(store, repo), ensure_ascii=False))
store.close()
"""

_NEW_OPENER = """
import os, signal, sys, time
sys.path.insert(0, {root!r})
import engine
assert engine.__file__.startswith({root!r}), engine.__file__
from pathlib import Path
from engine.repository import sqlite_fhir
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_store import SqliteStore
{answers}
real, calls = sqlite_fhir.updated_key, [0]
def key(rtype, updated):
    calls[0] += 1
    if calls[0] == 1 and {flag!r}:
        Path({flag!r}).write_text("upgrading")
    if calls[0] == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of the upgrade's UPDATE
    if {pause} and calls[0] == 1:
        time.sleep({pause})
    if {hold!r} and calls[0] == 1:  # held inside the upgrade until the test says (the file appears)
        deadline = time.monotonic() + 300
        while not Path({hold!r}).exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
    return real(rtype, updated)
sqlite_fhir.updated_key = key
store = SqliteStore(Path({db!r}))
print(json.dumps(answers(store, FhirRepository(store)), ensure_ascii=False))
store.close()
"""


@pytest.fixture(scope="module")
def old_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release just before perf41 (layout 8), extracted with ``git archive``."""
    old = tmp_path_factory.mktemp("before")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE, "engine", "mappings", "adapters", "conformance"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    return old


@pytest.fixture(scope="module")
def layout_8_store(old_release: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """``ROWS`` resource rows (and a later version, a deletion) written by the old release's own repository,
    and its answers; the file closed (copied per test)."""
    db = tmp_path_factory.mktemp("store8") / "huren.db"
    answers = _old(old_release, db, write=True)
    return db, answers


def _run(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script], cwd=str(cwd), capture_output=True, text=True, timeout=900)


def _old(old: Path, db: Path, *, write: bool = False) -> dict[str, Any]:
    done = _run(_OLD_WRITER.format(old=str(old), db=str(db), write=write, rows=ROWS, answers=_ANSWERS), old)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def _new_script(db: Path, *, kill_at: int = -1, pause: float = 0, flag: str = "", hold: str = "") -> str:
    return _NEW_OPENER.format(root=str(ROOT), db=str(db), kill_at=kill_at, pause=pause, flag=flag, hold=hold,
                              answers=_ANSWERS)


def _copy(src: Path, dst_dir: Path) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / "huren.db"
    conn = __import__("sqlite3").connect(src)
    out = __import__("sqlite3").connect(dst)
    conn.backup(out)
    conn.close()
    out.close()
    return dst


def _shape(db: Path) -> tuple[int, bool, list[str], str]:
    import sqlite3
    conn = sqlite3.connect(db)
    try:
        return (conn.execute("PRAGMA user_version").fetchone()[0],
                any(row[1] == "tu" for row in conn.execute("PRAGMA table_info(fhir_resource)")),
                [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND "
                                            "tbl_name = 'fhir_resource' ORDER BY name")],
                conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_the_old_release_s_100k_store_upgrades_and_answers_as_it_did(layout_8_store: tuple[Path, dict[str, Any]],
                                                                     tmp_path: Path) -> None:
    """GUARD (sound). The old release's own answers (type scans, counts, ``_lastUpdated`` at every prefix and
    precision around stored instants, both sorts and their pages, ``code`` + sort, ``$everything _since``,
    history, the stored types) and its rows byte for byte (current and history) equal this tree's after it
    upgrades the store; every row's ``tu`` is ``updated_key(type, updated)``; layout 9's index alone."""
    src, before = layout_8_store
    assert before["Patient count"] == ROWS // 3 + 1 and before["Organization count"] == ROWS // 3 - 1
    assert _shape(src)[:3] == (8, False, ["fhir_resource_key", "fhir_resource_updated"])
    db = _copy(src, tmp_path / "a")
    done = _run(_new_script(db), ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "moved to layout 9" in done.stderr
    after = json.loads(done.stdout.splitlines()[-1])
    assert {k: v for k, v in after.items() if after[k] != before.get(k)} == {}
    assert _shape(db) == (LAYOUT, True, ["fhir_resource_key", "fhir_resource_tu"], "ok")
    store = SqliteStore(db)
    bad = [(t, u, tu) for t, u, tu in store.query("SELECT type, updated, tu FROM fhir_resource")
           if tu != updated_key(t, u) or tu >> TU_SHIFT == 0]
    store.close()
    assert bad == []


def test_a_kill_9_in_the_middle_of_the_upgrade_leaves_layout_8_whole_and_it_runs_again(
        layout_8_store: tuple[Path, dict[str, Any]], old_release: Path, tmp_path: Path) -> None:
    """GUARD (sound). The upgrading process killed with SIGKILL after three fifths of the rows (``ROWS``) had their key:
    the file is layout 8 as the old release left it (no ``tu``, the old index, integrity ok), the old release
    itself still opens it and answers as before, and the next open of this tree upgrades it whole."""
    src, before = layout_8_store
    db = _copy(src, tmp_path / "k")
    killed = _run(_new_script(db, kill_at=ROWS * 3 // 5), ROOT)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    assert _shape(db) == (8, False, ["fhir_resource_key", "fhir_resource_updated"], "ok")
    assert _old(old_release, db) == before
    done = _run(_new_script(db), ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == before
    assert _shape(db)[:3] == (LAYOUT, True, ["fhir_resource_key", "fhir_resource_tu"])


def test_a_second_process_opening_during_the_upgrade_waits_and_answers_the_same(
        layout_8_store: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """GUARD (sound). Process A upgrades (held 3 s inside the upgrade's transaction); process B opens the same
    file meanwhile (a second ``--workers`` process): B waits on the write lock, finds nothing left to do, and
    both answer what the old release did."""
    src, before = layout_8_store
    db = _copy(src, tmp_path / "c")
    flag = tmp_path / "c" / "upgrading"
    a = subprocess.Popen([sys.executable, "-c", _new_script(db, pause=3, flag=str(flag))], cwd=str(ROOT),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert a.poll() is None and time.monotonic() < deadline, a.stderr.read() if a.stderr else ""
            time.sleep(0.02)
        b = _run(_new_script(db), ROOT)
        out_a, err_a = a.communicate(timeout=900)
    finally:
        if a.poll() is None:
            os.kill(a.pid, signal.SIGKILL)
    assert a.returncode == 0, err_a[-3000:]
    assert b.returncode == 0, b.stderr[-3000:]
    assert json.loads(out_a.splitlines()[-1]) == before
    assert json.loads(b.stdout.splitlines()[-1]) == before


_OLD_LINGERING = """
import sys, time
sys.path.insert(0, {old!r})
import engine
assert engine.__file__.startswith({old!r}), engine.__file__
from pathlib import Path
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_store import SqliteStore
store = SqliteStore(Path({db!r}))
repo = FhirRepository(store)
Path({ready!r}).write_text("open")
deadline = time.monotonic() + 120
while not Path({go!r}).exists():
    assert time.monotonic() < deadline
    time.sleep(0.02)
repo.update({{"resourceType": "Patient", "id": "late", "name": [{{"family": "孙"}}]}})
store.close()
"""


def test_a_row_an_old_process_wrote_after_the_upgrade_is_found_by_a_later_start(
        layout_8_store: tuple[Path, dict[str, Any]], old_release: Path, tmp_path: Path) -> None:
    """The old release's process opens the store (layout 8) and stays; this tree opens it (the upgrade); the
    old process then writes Patient/late (its INSERT names no ``tu``). Read by id it is there; this tree,
    started again afterwards, must find it in searches too: a type scan, the count and
    ``_lastUpdated`` (perffix41: ``SqliteFhirBackend._repair_tu`` at every open, one index probe when none)."""
    src, before = layout_8_store
    db = _copy(src, tmp_path / "o")
    ready, go = tmp_path / "o" / "ready", tmp_path / "o" / "go"
    old = subprocess.Popen([sys.executable, "-c", _OLD_LINGERING.format(old=str(old_release), db=str(db),
                                                                        ready=str(ready), go=str(go))],
                           cwd=str(old_release), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert old.poll() is None and time.monotonic() < deadline, old.stderr.read() if old.stderr else ""
            time.sleep(0.02)
        store = SqliteStore(db)  # this tree: the upgrade
        store.close()
        go.write_text("go")
        _, err = old.communicate(timeout=300)
    finally:
        if old.poll() is None:
            os.kill(old.pid, signal.SIGKILL)
    assert old.returncode == 0, err[-3000:]
    store = SqliteStore(db)  # this tree, started again
    from engine.repository.fhir import FhirRepository
    repo = FhirRepository(store)
    try:
        assert repo.read("Patient", "late")["name"][0]["family"] == "孙"
        assert repo.search("Patient", [("_summary", "count")]).total == before["Patient count"] + 1
        # (its instant, not "newest": the old process's clock may stand behind the fixture writer's)
        (stamp, tu), = store.query("SELECT updated, tu FROM fhir_resource WHERE type = 'Patient' AND id = 'late'")
        assert tu == updated_key("Patient", stamp)
        found = repo.search("Patient", [("_lastUpdated", "eq" + stamp), ("_sort", "-_lastUpdated")]).resources
        assert "late" in [r["id"] for r in found]
        newest = repo.search("Patient", [("_sort", "-_lastUpdated"), ("_count", "1")]).resources
        (first,), = store.query("SELECT id FROM fhir_resource WHERE type = 'Patient' AND deleted = 0 "
                                "ORDER BY updated DESC, rid DESC LIMIT 1")
        assert [r["id"] for r in newest] == [first]
    finally:
        store.close()


_WAITED = "another process holds the store's write lock"  # (B's warning once its busy timeout ran out)


def test_a_second_process_opening_during_an_upgrade_longer_than_the_busy_timeout_starts(
        layout_8_store: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """Process A's upgrade holds the write lock longer than the busy timeout (a store of a few million rows: the
    README's ~3 us a row, plus the index build and its I/O); process B (a second worker, the audit drain) opens
    meanwhile. It must wait for the upgrade (as ``sqlite_store._pragma_when_free`` says: "a process must not die of
    that at start") and answer as the old release did. perffix41: ``SqliteFhirBackend._upgrade`` waits out "locked" up
    to ``UPGRADE_WAIT`` (logged), re-reads ``user_version`` inside the transaction and skips what is done.
    A holds the lock until B has said it waited past its busy timeout (or B has ended): it had slept 12 s, 2 s past
    B's 10 s -- under load B's own start took longer than those 2 s, B found the lock free and never waited, and the
    probe failed on a sound tree (suite45b: seen at load 13)."""
    src, before = layout_8_store
    db = _copy(src, tmp_path / "l")
    flag, hold = tmp_path / "l" / "upgrading", tmp_path / "l" / "release"
    a = subprocess.Popen([sys.executable, "-c", _new_script(db, flag=str(flag), hold=str(hold))], cwd=str(ROOT),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    b: subprocess.Popen[str] | None = None
    said = threading.Event()
    out_b: list[str] = []
    err_b: list[str] = []

    def read_err(pipe: Any) -> None:
        for line in pipe:
            err_b.append(line)
            if _WAITED in line:
                said.set()
        said.set()  # (B ended without saying it)

    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert a.poll() is None and time.monotonic() < deadline, a.stderr.read() if a.stderr else ""
            time.sleep(0.02)
        b = subprocess.Popen([sys.executable, "-c", _new_script(db)], cwd=str(ROOT), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        readers = [threading.Thread(target=read_err, args=(b.stderr,), daemon=True),
                   threading.Thread(target=lambda: out_b.append(b.stdout.read() if b and b.stdout else ""),
                                    daemon=True)]
        for reader in readers:
            reader.start()
        said.wait(120)
        hold.write_text("go")
        b.wait(900)
        for reader in readers:
            reader.join(60)
        out_a, err_a = a.communicate(timeout=900)
    finally:
        hold.write_text("go")
        for p in (a, b):
            if p is not None and p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
    stderr_b = "".join(err_b)
    assert a.returncode == 0, err_a[-3000:]
    assert b.returncode == 0, stderr_b[-3000:]
    assert json.loads(out_b[0].splitlines()[-1]) == before
    # B says it waited, and not that it moved the layout (A did: "moved to layout 9" in A's log alone)
    assert _WAITED in stderr_b, stderr_b[-3000:]
    assert "moved to layout 9" not in stderr_b and "giving every resource row" not in stderr_b, stderr_b[-3000:]
    assert "moved to layout 9" in err_a, err_a[-3000:]


def test_everything_since_reads_an_index_not_every_resource_row(client: TestClient, eng: Engine) -> None:
    """``Patient/p0/$everything?_since=`` over HTTP; SQLite's own plan of each statement the search ran must
    not be a full scan of ``fhir_resource`` (a table of bodies). perffix41: the compartment's types each a range
    of ``tu`` (``_tu_sql`` per type, OR'd: ``SqliteSearch._driver``)."""
    for n in range(3):
        assert client.put(f"/fhir/Patient/p{n}", json=_patient(f"p{n}", "张")).status_code in (200, 201)
    store = eng.store
    since = store.query("SELECT max(updated) FROM fhir_resource")[0][0]
    plans: list[str] = []
    real = store.query

    def query(sql: str, params: Any = ()) -> list[Any]:
        if "fhir_resource" in sql and sql.lstrip().upper().startswith(("SELECT", "WITH")):
            plans.append(" | ".join(row[-1] for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql, params)))
        return real(sql, params)

    store.query = query  # type: ignore[method-assign]
    try:
        r = client.get("/fhir/Patient/p0/$everything", params={"_since": since})
    finally:
        store.query = real  # type: ignore[method-assign]
    assert r.status_code == 200, r.text[:300]
    scans = [p for p in plans for step in p.split(" | ")
             if step.startswith("SCAN") and "USING" not in step and step.split()[1] in ("x", "r", "fhir_resource")]
    assert plans and scans == [], plans


def test_a_type_name_s_case_variant_is_no_type_and_no_other_type_s_span(client: TestClient) -> None:
    """GUARD. ``type_code`` hashes the name as given: ``patient`` would be another span. It never reaches the
    store: a 404 OperationOutcome to read, write or search it (``_check_type``), and ``$everything``'s
    ``_type=patient`` is refused or answers no Patient row by a wrong span."""
    assert client.put("/fhir/Patient/c1", json=_patient("c1", "钱")).status_code in (200, 201)
    for r in (client.get("/fhir/patient"), client.get("/fhir/patient/c1"),
              client.put("/fhir/patient/c2", json={**_patient("c2", "钱"), "resourceType": "patient"})):
        assert r.status_code in (400, 404), (r.status_code, r.text[:300])
        assert r.json()["resourceType"] == "OperationOutcome"
    r = client.get("/fhir/Patient/c1/$everything", params={"_type": "patient"})
    assert r.status_code in (200, 400), r.text[:300]
    if r.status_code == 200:
        assert [e["resource"]["resourceType"] for e in r.json().get("entry", [])] in ([], ["Patient"])
