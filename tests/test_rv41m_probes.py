"""Review probes of perfa41 (forty-first round, rv41m): one append path for the signed audit log
(``Appends._record_many`` for a lone record and a group), the cheaper ``ScopedRepository`` and the hot
read's ``Response`` built from raw headers.

Real paths only: the release before perfa41 (main's parent of the merge, extracted with ``git archive``)
appends to the same log in a process of its own, before and after this tree does; a group appender is
killed with SIGKILL mid-stream; ``huren audit verify`` and ``huren audit export`` / ``verify --export``
as an auditor runs them; reads over HTTP through the real app, several callers on one worker.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.engine import Engine
from engine.settings import Settings
from tests.conftest import REPO_ROOT
from tests.test_audit24_guarantees import _huren

BEFORE = "037eb5dc^1"  # main just before perfa41 was merged: perf40r's ``_append_sealed`` for a lone record

# appends ``count`` records to the log at argv[1]: lone (``try_record_many`` of one, the lock kept now and
# then, as lone mode's committer) and groups of four (``record_many``), alternating; a checkpoint every 7
# records, so one falls due at lone records and inside groups; prints "<k> <seq> <leaf hex>" per record
_APPENDER = r"""
import os, sys, time
sys.path.insert(0, sys.argv[2])
import engine
assert engine.__file__.startswith(sys.argv[2]), engine.__file__
from pathlib import Path
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.record import seal
from engine.audit.store import open_audit_store
from engine.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0).with_(
    audit_checkpoint_every=7, audit_checkpoint_seconds=3600, audit_seal_seconds=3600)
who, count, mode = sys.argv[3], int(sys.argv[4]), sys.argv[5]
log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))


def sealed(i):
    doc = {"f": 2, "act": "read", "at": "2026-01-01T00:00:00.000Z", "by": ["system", who, None, who, None, None,
           None, None], "node": "test", "out": "0", "pat": [f"{who}{i}"], "res": [f"Observation/{who}{i}"],
           "salt": os.urandom(16).hex()}
    return seal(doc, (f"p:{who}{i}",), "2026-01-01T00:00:00.000Z")


print("ready", flush=True)
while len(sys.argv) > 6 and not (settings.data_dir / "go").exists():  # started together: append together
    time.sleep(0.001)
i = 0
while i < count:
    if mode == "group" or (mode == "mixed" and (i // 5) % 2):
        got = log.record_many([sealed(i + j) for j in range(4)])
        done = list(zip(range(i, i + 4), got))
        i += 4
    else:
        got = log.try_record_many([sealed(i)], keep=i % 3 == 0)
        if got is None:
            got = log.record_many([sealed(i)])
        log.let_go_segment(blocking=True)
        done = [(i, got[0])]
        i += 1
    for k, appended in done:
        print(k, appended.seq, appended.leaf_hash.hex(), flush=True)
    if len(sys.argv) > 6:  # (together: off the core a moment between appends, so that on a loaded machine the other
        time.sleep(0.0005)  # worker is scheduled meanwhile -- ci187 saw one run nearly alone: 2 switches, not 3)
log.close()
print("done", flush=True)
"""


@pytest.fixture(scope="module")
def old_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    old = tmp_path_factory.mktemp("before")
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", BEFORE, "engine", "mappings", "adapters",
                              "conformance"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    return old


def _append(data_dir: Path, tree: Path, who: str, count: int, mode: str) -> dict[int, tuple[int, str]]:
    done = subprocess.run([sys.executable, "-c", _APPENDER, str(data_dir), str(tree), who, str(count), mode],
                          cwd=str(tree), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    lines = [ln.split() for ln in done.stdout.decode().splitlines() if ln not in ("ready", "done")]
    return {int(k): (int(seq), leaf) for k, seq, leaf in lines}


def _rows(settings: Settings) -> dict[int, tuple[str, dict[str, Any]]]:
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    try:
        log.drain()
        return {d["seq"]: (d["hash"].hex() if isinstance(d["hash"], bytes) else str(d["hash"]),
                           orjson.loads(d["data"])) for d in log.leaves.find(sort=[("seq", 1)])}
    finally:
        log.close()


def _verified_offline(data_dir: Path, export: Path) -> dict[str, Any]:
    checked = _huren(data_dir, "audit", "verify", "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert _huren(data_dir, "audit", "export", "-o", str(export)).returncode == 0
    keys = [a for pem in sorted((data_dir / "keys").glob("*.pub.pem")) for a in ("--public-key", str(pem))]
    offline = _huren(data_dir, "audit", "verify", "--export", str(export), "--json", *keys)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    return orjson.loads(offline.stdout)


def test_a_log_written_by_the_release_before_then_this_one_then_the_one_before_again_verifies_offline(
        settings: Settings, old_release: Path, tmp_path: Path) -> None:
    """Upgrade and downgrade over one segment file and one table: the release before perfa41 (its lone
    ``_append_sealed``) appends lone records and groups, a checkpoint every 7; this tree appends more the
    same way (its one path); the release before appends again after it (so it reads this tree's frames).
    Every answered record is in the log under its number with its leaf, the numbering has no gap, and the
    log verifies online and offline with every record counted."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings, create=True)).close()
    answered: dict[str, dict[int, tuple[int, str]]] = {}
    answered["old"] = _append(settings.data_dir, old_release, "old", 40, "mixed")
    answered["new"] = _append(settings.data_dir, REPO_ROOT, "new", 40, "mixed")
    answered["back"] = _append(settings.data_dir, old_release, "back", 40, "mixed")
    rows = _rows(settings)
    assert sorted(rows) == list(range(len(rows))) and len(rows) == sum(len(a) for a in answered.values())
    for who, got in answered.items():
        for k, (seq, leaf) in got.items():
            assert rows[seq][0] == leaf and rows[seq][1]["pat"] == [f"{who}{k}"], (who, k, seq)
    assert _verified_offline(settings.data_dir, tmp_path / "export.jsonl")["records"] == len(rows)


def test_a_group_appender_killed_mid_stream_beside_a_lone_one_loses_no_answered_record(
        settings: Settings, tmp_path: Path) -> None:
    """SIGKILL to a process appending groups of four (rv40j killed the lone one only) while another appends
    lone records to the same segment; then a restart appends again. Every record either was answered for is
    kept under its number and leaf, none twice, no gap, and the log verifies online and offline."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings, create=True)).close()
    args = [sys.executable, "-c", _APPENDER, str(settings.data_dir), str(REPO_ROOT)]
    group = subprocess.Popen([*args, "grp", "100000", "group"], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    lone = subprocess.Popen([*args, "lone", "300", "lone"], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    got: list[bytes] = []
    try:
        assert group.stdout is not None
        deadline = time.monotonic() + 120
        while len(got) < 400 and time.monotonic() < deadline:
            if line := group.stdout.readline():
                got.append(line)
        group.send_signal(signal.SIGKILL)
        got += group.stdout.read().splitlines(keepends=True)
        group.wait(30)
        lone_out, lone_err = lone.communicate(timeout=300)
    finally:
        for p in (group, lone):
            if p.poll() is None:
                p.kill()
                p.wait(30)
    assert lone.returncode == 0, lone_err.decode()[-2000:]
    grouped = {int(k): (int(s), leaf) for k, s, leaf in (ln.split() for ln in
               (x.decode().strip() for x in got) if ln and ln not in ("ready", "done") and len(ln.split()) == 3)}
    assert len(grouped) >= 300
    after = _append(settings.data_dir, REPO_ROOT, "after", 12, "mixed")  # the restart appends on
    rows = _rows(settings)
    assert sorted(rows) == list(range(len(rows)))
    lone_answered = {int(k): (int(s), leaf) for k, s, leaf in (ln.split() for ln in lone_out.decode().splitlines()
                                                               if ln not in ("ready", "done"))}
    for who, answered in (("grp", grouped), ("lone", lone_answered), ("after", after)):
        for k, (seq, leaf) in answered.items():
            assert rows[seq][0] == leaf and rows[seq][1]["pat"] == [f"{who}{k}"], (who, k, seq)
    pats = [r["pat"][0] for _h, r in rows.values()]
    assert len(pats) == len(set(pats))
    assert _verified_offline(settings.data_dir, tmp_path / "export.jsonl")["records"] == len(rows)


# --- the read's headers against the release before, and callers in turn on one worker ---------------------

_READER = r"""
import sys, json
sys.path.insert(0, sys.argv[2])
import engine
assert engine.__file__.startswith(sys.argv[2]), engine.__file__
from pathlib import Path
from fastapi.testclient import TestClient
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings

asks = json.loads(sys.argv[3])
out = []
with Engine(Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0)) as e:
    with TestClient(create_app(e)) as http:
        for method, path, headers in asks:
            r = http.request(method, path, headers=headers)
            out.append([r.status_code, [[k.decode("latin-1").lower(), v.decode("latin-1")] for k, v in r.headers.raw],
                        r.content.decode("utf-8", "replace")])
print(json.dumps(out))
"""

_VARIES = {"x-request-id", "date"}


def _obs(oid: str, value: str, code: str | None = None) -> dict[str, Any]:
    obs: dict[str, Any] = {"resourceType": "Observation", "id": oid, "status": "final",
                           "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "血红蛋白"}]},
                           "subject": {"reference": "Patient/zhang"}, "effectiveDateTime": "2026-12-05",
                           "performer": [{"reference": "Organization/org1"}], "valueString": value}
    if code:
        obs["meta"] = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                     "code": code}]}
    return obs


def test_the_reads_headers_and_bytes_are_the_release_befores_on_200_304_410_head_and_every_accept(
        settings: Settings, old_release: Path) -> None:
    """The same store read by the release before perfa41 and by this tree, over the real app: a plain GET
    (the fast read), with ``_format`` and ``_elements`` (the router), under every kind of Accept, HEAD,
    a conditional GET answered 304 and one answered 200, a deleted record (410), an unknown one (404): status,
    every header in order and the body are the same (but for per-request ids)."""
    with Engine(settings) as engine:
        token = engine.auth.issue_system_token("his", "system/*.cruds")
        engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "阜宁县人民医院"})
        engine.repository.update({"resourceType": "Patient", "id": "zhang", "name": [{"text": "张三"}]})
        engine.repository.update(_obs("h1", "一"))
        engine.repository.update(_obs("h1", "二"))
        engine.repository.update(_obs("gone", "三"))
        engine.repository.delete("Observation", "gone")
    auth = {"Authorization": f"Bearer {token}"}
    asks: list[list[Any]] = []
    for accept in (None, "application/fhir+json", "application/json", "*/*", "application/*",
                   "application/fhir+json; charset=utf-8", "text/html, application/fhir+json;q=0.5",
                   "application/xml", "application/fhir+xml"):
        headers = {**auth, **({"Accept": accept} if accept else {})}
        asks += [["GET", "/fhir/Observation/h1", headers], ["GET", "/fhir/Observation/h1?_format=json", headers],
                 ["GET", "/fhir/Observation/h1?_elements=status", headers], ["HEAD", "/fhir/Observation/h1", headers],
                 ["GET", "/fhir/Observation/gone", headers], ["GET", "/fhir/Observation/none", headers]]
    asks += [["GET", "/fhir/Observation/h1", {**auth, "If-None-Match": 'W/"2"'}],
             ["GET", "/fhir/Observation/h1", {**auth, "If-None-Match": 'W/"1"'}],
             ["GET", "/fhir/Observation/h1", {**auth, "If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}],
             ["GET", "/fhir/Observation/h1", {**auth, "Accept-Charset": "utf-8"}],
             ["GET", "/fhir/Observation/h1", {**auth, "Origin": "https://example.org"}],
             ["GET", "/fhir/Observation/h1", {}]]
    answers = {}
    for tree in (old_release, REPO_ROOT):
        done = subprocess.run([sys.executable, "-c", _READER, str(settings.data_dir), str(tree), orjson.dumps(asks)],
                              cwd=str(tree), capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        answers[tree] = [(s, [(k, v) for k, v in h if k not in _VARIES], b) for s, h, b in orjson.loads(done.stdout)]
    for ask, before, now in zip(asks, answers[old_release], answers[REPO_ROOT], strict=True):
        assert now == before, (ask[:2], ask[2].get("Accept"), before, now)
    statuses = {s for s, _h, _b in answers[REPO_ROOT]}
    assert {200, 304, 406, 410, 404, 401} <= statuses, statuses


def test_callers_in_turn_on_one_worker_never_see_what_the_one_before_was_shown(settings: Settings) -> None:
    """One app, one worker: the unbound hospital system (withholds nothing: the shared ``_NONE``), resident
    Zhang (withholds V), resident Li, Zhang's family member (withholds R and V), Zhang again, in turn and
    interleaved, each on the fast read and on the router's read. No caller's scope leaks into the next:
    each sees exactly what it alone would."""
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        for body in ({"resourceType": "Organization", "id": "org1", "name": "阜宁县人民医院"},
                     {"resourceType": "Patient", "id": "zhang", "name": [{"text": "张三"}]},
                     {"resourceType": "Patient", "id": "li", "name": [{"text": "李四"}]},
                     _obs("z-open", "1"), _obs("z-r", "2", "R"), _obs("z-v", "3", "V"),
                     {**_obs("l-open", "4"), "subject": {"reference": "Patient/li"}},
                     {"resourceType": "RelatedPerson", "id": "sun", "patient": {"reference": "Patient/zhang"},
                      "identifier": [{"system": "urn:huren:family", "value": "person-sun"}], "active": True},
                     {"resourceType": "Consent", "id": "grant", "status": "active",
                      "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                            "code": "patient-privacy"}]},
                      "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                      "patient": {"reference": "Patient/zhang"},
                      "provision": {"type": "permit", "actor": [{"role": {"text": "proxy"},
                                                                 "reference": {"reference": "RelatedPerson/sun"}}]}}):
            r = http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=system)
            assert r.status_code in (200, 201), r.text

        def bearer(**kw: Any) -> dict[str, str]:
            token, _ = engine.auth.issue_token(subject=f"patient-{kw.get('patient')}", kind="patient",
                                               client_id="patient-app", scopes=["patient/*.rs"], **kw)
            return {"Authorization": f"Bearer {token}"}

        zhang, li = bearer(patient="zhang"), bearer(patient="li")
        son = bearer(patient="zhang", person="person-sun", extra={"acting": "sun", "consent": "grant"})
        sees = {"system": (system, {"z-open", "z-r", "z-v", "l-open"}), "zhang": (zhang, {"z-open", "z-r"}),
                "li": (li, {"l-open"}), "son": (son, {"z-open"})}
        for who in ("system", "zhang", "li", "system", "son", "zhang", "li", "son", "system", "zhang"):
            headers, expected = sees[who]
            for suffix in ("", "?_format=json"):
                shown = {oid for oid in ("z-open", "z-r", "z-v", "l-open")
                         if http.get(f"/fhir/Observation/{oid}{suffix}", headers=headers).status_code == 200}
                assert shown == expected, (who, suffix, shown)


def test_lone_records_groups_and_a_bad_record_on_both_backends_are_numbered_hooked_and_verify(
        backend_settings: Settings) -> None:
    """perfa41's own probes of the one path ran on SQLite only. On each backend (MongoDB: every append goes
    through the database): lone records at once and waiting, groups with a record that cannot be written
    (a set is not JSON) in their middle, a checkpoint every 5 so one falls due at lone records and inside
    groups. Each written record is numbered without a gap, given once to the after-append hook, the bad one
    alone refused; a reopened log continues the numbering and verifies."""
    from engine.audit.record import seal
    from engine.audit.verify import verify_online

    s = backend_settings.with_(audit_checkpoint_every=5, audit_checkpoint_seconds=3600, audit_seal_seconds=3600)
    s.data_dir.mkdir(parents=True, exist_ok=True)

    def sealed(i: int) -> Any:
        doc = {"f": 2, "act": "read", "at": "2026-01-01T00:00:00.000Z", "by": ["system", "c", None, "c", None,
               None, None, None], "node": "test", "out": "0", "pat": [f"c{i}"], "res": [f"Observation/c{i}"],
               "salt": f"{i:032x}"}
        return seal(doc, (f"p:c{i}",), "2026-01-01T00:00:00.000Z")

    full = {"type": {"code": "rest"}, "recorded": "2026-01-01T00:00:00Z", "agent": [], "source": {}}
    store = open_audit_store(s)  # (one store for both opens: a mongomock:// client is a database of its own)
    first = log = AuditLog(store, s, AuditKeys.load(s, create=True))
    hooked: list[int] = []
    log.after_append.append(lambda appended: hooked.append(appended.seq))
    written: list[int] = []
    refused = 0
    try:
        for i in range(24):
            if i % 3 == 0:
                got = log.try_record_many([sealed(i)], keep=i % 2 == 0) or log.record_many([sealed(i)])
                log.let_go_segment(blocking=True)
            elif i % 3 == 1:
                got = log.record_many([sealed(i)])
            else:
                got = log.record_many([sealed(i), {**full, "bad": {1, 2}}, dict(full), sealed(100 + i)])
            for appended in got:
                if isinstance(appended, Exception):
                    refused += 1
                else:
                    written.append(appended.seq)
        assert refused == 8 and written == list(range(len(written))) and hooked == written
        log.let_go_segment(blocking=True)
    except BaseException:
        log.close()
        raise
    log = AuditLog(store, s, AuditKeys.load(s))  # another opening of the same log, as a restart's
    try:
        (again,) = log.record_many([sealed(999)])
        assert again.seq == len(written)  # type: ignore[union-attr]
        report = verify_online(log)
        assert report.ok and report.records == len(written) + 1, report.text()
    finally:
        log.close()
        first.close()


def test_the_release_before_and_this_one_appending_to_one_segment_at_once_lose_nothing(
        settings: Settings, old_release: Path, tmp_path: Path) -> None:
    """A rolling upgrade: a worker of the release before and one of this tree append to the same segment file
    at the same time (each lone records and groups, a checkpoint every 7). Every answered record is kept
    under its number and leaf, no number twice, and the log verifies online and offline."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings, create=True)).close()
    procs = {who: subprocess.Popen([sys.executable, "-c", _APPENDER, str(settings.data_dir), str(tree), who, "300",
                                    "mixed", "together"], cwd=str(tree), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for who, tree in (("old", old_release), ("new", REPO_ROOT))}
    outs = {}
    try:
        for p in procs.values():
            assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        (settings.data_dir / "go").touch()
        for who, p in procs.items():
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err.decode()[-2000:]
            outs[who] = {int(k): (int(s), leaf) for k, s, leaf in (ln.split() for ln in out.decode().splitlines()
                                                                   if ln not in ("ready", "done"))}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(30)
    rows = _rows(settings)
    assert sorted(rows) == list(range(len(rows))) and len(rows) == sum(len(o) for o in outs.values())
    for who, answered in outs.items():
        for k, (seq, leaf) in answered.items():
            assert rows[seq][0] == leaf and rows[seq][1]["pat"] == [f"{who}{k}"], (who, k, seq)
    writers = [r["pat"][0].startswith("old") for _h, r in rows.values()]
    assert sum(a != b for a, b in zip(writers[:-1], writers[1:], strict=True)) >= 3  # they did interleave
    assert _verified_offline(settings.data_dir, tmp_path / "export.jsonl")["records"] == len(rows)
