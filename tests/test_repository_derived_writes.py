"""Derived writes: what the write hooks themselves write while a write group's hooks run -- the
recognition hook's DetectedIssue when a result repeats a recognisable one, the patient index's
new version of a person's earlier record when the person returns -- are part of that group:
stored in one backend put after the group's hooks, hooked once, in the group's transaction.

On every backend: the stored versions are exactly those the write path stored before they joined
the group (``data/derived_writes_golden.json``, recorded from it), each is put once, and the hooks
run once for all of them. On SQLite, kill -9 after their put and before the commit leaves neither
them nor the message that made them.
"""

from __future__ import annotations

import contextvars
import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.ingest import oru_lab
from engine.engine import Engine
from engine.messages import message_id
from engine.repository.fhir import FhirRepository
from engine.repository.port import Store
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "data" / "derived_writes_golden.json"
RETURNS = 499_000  # oru_lab(n) and oru_lab(n + RETURNS): the same person, another record, the same test again


def returning(n: int) -> bytes:
    """``oru_lab(n)``, its times ``2 * (n // RETURNS)`` hours after the first round's, the same day: a
    return is a later test. (Each round had been of the same minute; since the fifteenth round a
    result taken at the very minute another order was placed is no prior, so those returns raised
    no issue.)"""
    later = 2 * (n // RETURNS)
    return re.sub(rb"20261101(\d\d)", lambda m: b"20261101%02d" % (int(m.group(1)) + later), oru_lab(n))


def lab(n: int) -> tuple[bytes, str, str]:
    return (returning(n), "mllp", "peer")


def feed(engine: Engine) -> None:
    """Four people's complete blood counts at one hospital, then each person again under a new
    record number (the same test, a day's window apart: a recognisable prior result), then again."""
    for rounds in range(3):
        outcomes = engine.ingestor.process([lab(61_000 + rounds * RETURNS + i) for i in range(4)])
        assert [o.code for o in outcomes] == ["AA"] * 4


def derived_versions(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every stored version of every DetectedIssue and Patient, oldest first, as stored but for
    the instants the clock gives (``meta.lastUpdated``, the issue's ``identifiedDateTime``)."""
    repo = engine.repository
    out: dict[str, list[dict[str, Any]]] = {}
    for rtype in ("DetectedIssue", "Patient"):
        for resource in repo.search(rtype, [("_count", "1000")]).resources:
            out[f"{rtype}/{resource['id']}"] = [
                {**{k: v for k, v in version.resource.items() if k not in ("meta", "identifiedDateTime")},
                 "meta": {k: v for k, v in version.resource["meta"].items() if k != "lastUpdated"}}
                for version in reversed(repo.versions(rtype, resource["id"])) if version.resource is not None]
    return dict(sorted(out.items()))


def test_derived_writes_are_stored_as_before_put_once_with_each_other_and_hooked_once(
        backend_settings: Settings) -> None:
    with Engine(backend_settings) as engine:
        repo = engine.repository
        puts: list[list[str]] = []
        real_put_many = repo.backend.put_many

        def put_many(items: Any) -> None:
            puts.append([f"{rec.type}/{rec.id}/{rec.version}" for rec, _, _ in items])
            real_put_many(items)

        repo.backend.put_many = put_many  # type: ignore[method-assign]
        hooked: list[list[str]] = []
        recognition_hook = next(h for h in repo._batch_hooks if getattr(h, "__self__", None) is engine.recognition)

        def counted(writes: Any) -> Any:
            hooked.append([f"{r['resourceType']}/{r['id']}/{r['meta']['versionId']}" for r, _ in writes])
            return recognition_hook(writes)

        repo._batch_hooks[repo._batch_hooks.index(recognition_hook)] = counted
        feed(engine)

        stored = derived_versions(engine)
        assert stored == json.loads(GOLDEN.read_text(encoding="utf-8"))

        issues = [key for key in stored if key.startswith("DetectedIssue/")]
        earlier = [key for key, versions in stored.items() if key.startswith("Patient/") and len(versions) > 1]
        assert len(issues) == 8 and len(earlier) == 8  # each return: one issue, each earlier record a new version
        derived = [f"{key}/{version['meta']['versionId']}" for key in issues for version in stored[key]]
        derived += [f"{key}/{version['meta']['versionId']}" for key in earlier for version in stored[key][1:]]
        for version in derived:  # each put once, and hooked once
            assert sum(call.count(version) for call in puts) == 1, version
            assert sum(call.count(version) for call in hooked) == 1, version
        # a message's derived versions share one put and one hook call, apart from the message's own;
        # the earlier record's link version is no derived write since the twenty-fourth round (link24:
        # the patient index writes it into the new record's own write group), so it is put and hooked
        # with the message, the new record of its person beside it
        for call in puts + hooked:
            if any(v.startswith("DetectedIssue/") for v in call):
                assert {v.split("/")[0] for v in call} == {"DetectedIssue"}, call
        for key in earlier:
            for version in stored[key][1:]:
                ref = f"{key}/{version['meta']['versionId']}"
                others = {link["other"]["reference"] for link in version.get("link", [])}
                for call in (puts, hooked):
                    with_it = next(c for c in call if ref in c)
                    assert len(with_it) > 2 and any(f"{o}/1" in with_it for o in others), with_it

        # the same messages again: nothing new, nothing doubled
        outcomes = engine.ingestor.process([lab(61_000 + RETURNS + i) for i in range(4)])
        assert all(o.duplicate for o in outcomes)
        assert derived_versions(engine) == stored


_KILL_AFTER_THE_DERIVED_PUT = """
import os, signal, sys
from pathlib import Path
from engine.engine import Engine
from tests.test_repository_derived_writes import returning
from engine.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0)
with Engine(settings) as engine:
    first = engine.ingestor.process([(returning(62_000), "mllp", "p")])
    print(first[0].code, flush=True)  # ACKed: the person's first record
    backend = engine.repository.backend
    real = backend.put_many

    def put_many(items):
        real(items)
        if any(rec.type == "DetectedIssue" for rec, _, _ in items):  # the derived versions are put
            os.kill(os.getpid(), signal.SIGKILL)

    backend.put_many = put_many
    engine.ingestor.process([(returning(62_000 + 499_000), "mllp", "p")])
    print("not killed", flush=True)
"""


def test_kill_9_after_the_derived_put_leaves_neither_them_nor_their_message(settings: Settings) -> None:
    """The derived versions are written in the transaction of the message that made them: killed
    after their put and before the commit, the store holds the ACKed message alone (no issue, the
    earlier record at its first version); the next start processes the killed message from the
    in-flight journal, storing each derived version once, and the sender's resend doubles nothing."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", _KILL_AFTER_THE_DERIVED_PUT, str(settings.data_dir)],
                          cwd=REPO_ROOT, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert proc.stdout.decode().split("\n")[0] == "AA"
    with Engine(settings) as engine:
        ing, repo = engine.ingestor, engine.repository
        assert ing.messages.get(message_id("FNXRMYY", f"LAB{62_000 + RETURNS:09d}")) is None
        assert repo.search("DetectedIssue", [("_summary", "count")]).total == 0
        assert repo.search("Observation", [("_summary", "count")]).total == 12
        [patient] = repo.search("Patient", [("_count", "10")]).resources
        assert patient["meta"]["versionId"] == "1" and "link" not in patient

        assert ing.recover() == 1  # the killed message, from the in-flight journal
        assert ing.recover() == 0
        assert repo.search("DetectedIssue", [("_summary", "count")]).total == 1
        [issue] = repo.search("DetectedIssue", [("_count", "10")]).resources
        assert [v.version for v in repo.versions("DetectedIssue", issue["id"])] == [1]
        assert [v.version for v in repo.versions("Patient", patient["id"])] == [2, 1]
        [outcome] = ing.process([lab(62_000 + RETURNS)])
        assert outcome.code == "AA" and outcome.duplicate
        assert [v.version for v in repo.versions("DetectedIssue", issue["id"])] == [1]
        assert [v.version for v in repo.versions("Patient", patient["id"])] == [2, 1]


# -- the stage itself, on the repository alone -------------------------------------------------------

def observation(oid: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": {"text": "血红蛋白"},
            "subject": {"reference": "Patient/p1"}, "valueQuantity": {"value": 130, "unit": "g/L"}}


def issue(iid: str, detail: str) -> dict[str, Any]:
    return {"resourceType": "DetectedIssue", "id": iid, "status": "preliminary", "detail": detail}


@pytest.fixture
def repo(store: Store) -> FhirRepository:
    return FhirRepository(store, base_url="http://huren.test/fhir")


WRITER: contextvars.ContextVar[str] = contextvars.ContextVar("writer", default="-")


def test_a_hooks_writes_are_read_back_at_once_put_together_and_hooked_in_their_writers_context(
        repo: FhirRepository) -> None:
    puts: list[list[str]] = []
    real_put_many, real_put = repo.backend.put_many, repo.backend.put

    inside: list[bool] = []  # a backend may put many as one put each

    def put_many(items: Any) -> None:
        puts.append([f"{rec.type}/{rec.id}/{rec.version}" for rec, _, _ in items])
        inside.append(True)
        try:
            real_put_many(items)
        finally:
            inside.pop()

    def put(rec: Any, rows: Any, existing: Any) -> None:
        if not inside:
            puts.append([f"{rec.type}/{rec.id}/{rec.version}"])
        real_put(rec, rows, existing)

    repo.backend.put_many, repo.backend.put = put_many, put  # type: ignore[method-assign]
    seen: list[tuple[str, str, str]] = []

    def on_observation(resource: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        token = WRITER.set(resource["id"])
        try:
            repo.update(issue(f"i-{resource['id']}", "first"))
            # read back at once (a hook reads what it wrote), and a second version of it
            assert repo.read("DetectedIssue", f"i-{resource['id']}")["detail"] == "first"
            repo.update(issue(f"i-{resource['id']}", "second"))
        finally:
            WRITER.reset(token)
        return []

    def on_issue(resource: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        seen.append((resource["id"], resource["meta"]["versionId"], WRITER.get()))
        return []

    batches: list[list[str]] = []
    repo.add_write_hook(on_observation, types={"Observation"})
    repo.add_write_hook(on_issue, types={"DetectedIssue"})
    repo.add_batch_hook(lambda writes: batches.append([f"{r['id']}/{r['meta']['versionId']}" for r, _ in writes])
                        or [[] for _ in writes])
    repo.write_many([observation("o1"), observation("o2")])

    # the group's own put, then the derived versions: one put for the first versions, and the
    # second version of each (one put holds one version of a resource) in the next
    assert puts == [["Observation/o1/1", "Observation/o2/1"], ["DetectedIssue/i-o1/1"],
                    ["DetectedIssue/i-o1/2", "DetectedIssue/i-o2/1"], ["DetectedIssue/i-o2/2"]]
    # the batch hook: once for the group, once for all that the group's hooks derived
    assert batches == [["o1/1", "o2/1"], ["i-o1/1", "i-o1/2", "i-o2/1", "i-o2/2"]]
    # each derived version hooked once, in the context of the write that made it
    assert seen == [("i-o1", "1", "o1"), ("i-o1", "2", "o1"), ("i-o2", "1", "o2"), ("i-o2", "2", "o2")]
    assert [v.version for v in repo.versions("DetectedIssue", "i-o2")] == [2, 1]
    assert repo.read("DetectedIssue", "i-o2")["detail"] == "second"


def test_a_search_inside_the_hooks_sees_what_they_derived(repo: FhirRepository) -> None:
    found: list[int] = []

    def on_observation(resource: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        repo.update(issue(f"i-{resource['id']}", "seen"))
        found.append(repo.search("DetectedIssue", [("_summary", "count")]).total)
        return []

    repo.add_write_hook(on_observation, types={"Observation"})
    repo.write_many([observation("o1"), observation("o2")])
    assert found == [1, 2]


def test_hooks_that_keep_deriving_are_stopped_and_their_group_written_by_none(repo: FhirRepository) -> None:
    def again(resource: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        repo.update(issue("loop", str(int(resource["meta"]["versionId"]) if resource["resourceType"] != "Observation"
                                      else 0)))
        return []

    repo.add_write_hook(again, types={"Observation", "DetectedIssue"})
    with pytest.raises(RuntimeError, match="rounds"):
        repo.write_many([observation("o1")])
    if isinstance(repo.store, SqliteStore):  # a transaction that rolls back (mongomock writes each alone)
        assert repo.search("Observation", [("_summary", "count")]).total == 0
        assert repo.search("DetectedIssue", [("_summary", "count")]).total == 0
