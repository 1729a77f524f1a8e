"""Shared fixtures: each test gets its own data directory and Settings; no shared state."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# --- bytecode (suite helper) -------------------------------------------------------------------
# The suite writes and reads compiled bytecode whatever PYTHONDONTWRITEBYTECODE says (this machine's
# sessions set it). With it set, nothing was ever kept: each xdist worker rewrote and compiled the
# ~460 test files at collection (~20 s of CPU a worker, every run), and every `huren` process a test
# starts (the CLI, `huren serve`, the kill -9 servers) compiled huren's modules from source again
# (~0.25 s of its ~0.75 s). Set here, at the suite's first import: the workers and the processes the
# tests start inherit the environment. Only __pycache__ folders (git-ignored) are written.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

import pytest  # noqa: E402

from engine.repository.port import Store  # noqa: E402
from engine.settings import Settings  # noqa: E402
from tests import scrypt_memo  # noqa: E402

# --- scrypt (suite helper, forty-sixth round, suite46e) -----------------------------------------
# Each exact scrypt input is computed once a process (the same secret checked against the same stored
# hash at every token request and sign-in cost ~40 ms each time); the engine's hashing, its cost and its
# checks are unchanged. Why, what is kept and what is exempt: tests/scrypt_memo.py; a test that measures
# scrypt's real cost or sign-in timing asks for ``real_scrypt``.
scrypt_memo.install()


@pytest.fixture
def real_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ``hashlib.scrypt`` for this test (one that times sign-in or measures the KDF's work)."""
    import hashlib

    monkeypatch.setattr(hashlib, "scrypt", scrypt_memo.REAL_SCRYPT)


REPO_ROOT = Path(__file__).resolve().parent.parent
# public sample messages kept with the project (tests/data/hl7v2/README.md names sources and licences)
SAMPLES = REPO_ROOT / "tests" / "data" / "hl7v2"
# the resident the feed-shaped test messages are about: valid check character, born 1980-01-01, male
NATIONAL_ID = "110101198001010010"


def mllp_send(port: int, message: bytes) -> str:
    """One message over a fresh MLLP connection to a real listener; the ACK text."""
    from adapters.listeners.mllp import frame

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(frame(message))
        data = b""
        while not data.endswith(b"\x1c\r"):
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the ACK"
            data += chunk
    return data[1:-2].decode("utf-8")


def sample_files() -> list[Path]:
    """The public sample messages (``*.hl7`` and ``*.txt`` one folder below ``SAMPLES``)."""
    return sorted(SAMPLES.glob("*/*.hl7")) + sorted(SAMPLES.glob("*/*.txt"))


def sample_site(folder: Path):  # -> mappings.site.Site (imported late: conftest stays light)
    """A site with every sample's sending facility registered (US time zone, as their timestamps
    suggest), through a HUREN_SITE folder written in ``folder`` (the real overlay path)."""
    import yaml

    from adapters.hl7v2.errors import HL7Error
    from adapters.hl7v2.parser import parse
    from mappings.site import Site

    facilities = set()
    for path in sample_files():
        try:
            facilities.add(parse(path.read_text(encoding="utf-8")).msh.sending_facility)
        except HL7Error:
            continue
    entries = [
        {"code": f, "name": f"{f} (sample)", "community": "samples", "timezone": "America/New_York"}
        for f in sorted(facilities)
        if f
    ]
    (folder / "institutions.yaml").write_text(yaml.safe_dump(entries, allow_unicode=True), encoding="utf-8")
    return Site.load(Settings(site=folder))


def declare_training_senders(site: Path, messages: list[bytes]) -> None:
    """Write the site's ``hl7v2/senders.yaml`` declaring, as a site does for a HIS that marks its production
    traffic T (``production_marked_training``), every sender of ``messages`` whose MSH-11.1 is ``T``: the
    public sources mark their example messages so, and a node accepts P only (``HUREN_PROCESSING_IDS``)."""
    import yaml

    from adapters.hl7v2.header import extract_header

    heads = [extract_header(m)[0] for m in messages]
    codes = sorted({h.facility_code for h in heads if h.facility_code
                    and h.processing_id.split(h.component_sep)[0].strip().upper() == "T"})
    (site / "hl7v2").mkdir(parents=True, exist_ok=True)
    (site / "hl7v2" / "senders.yaml").write_text(
        yaml.safe_dump({"production_marked_training": {code: "*" for code in codes}}, allow_unicode=True),
        encoding="utf-8")


# --- what each test costs (suite helper) -----------------------------------------------------
# Wall time says little on a shared 2-core machine; CPU does: each test phase's CPU (this process's
# threads, and the child processes it waited for: CLI runs, servers, Chromium) travels with its
# report (user_properties, so it crosses from xdist workers), and `--cpu-durations=N` prints the N
# costliest tests and files at the end. `make test` passes it, so every CI log shows where time goes.
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cpu-durations", type=int, default=None, metavar="N",
                     help="show the N tests and N files that took the most CPU (with child processes)")
    parser.addoption("--record-file-costs", action="store_true",
                     help=f"write each file's seconds (wall, all phases) in this run to {FILE_COSTS.name}")


def _cpu() -> tuple[float, float]:
    import resource
    import time

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time(), children.ru_utime + children.ru_stime


def _measured(phase: str):
    @pytest.hookimpl(wrapper=True)
    def hook(item: pytest.Item) -> Iterator[None]:
        own, children = _cpu()
        try:
            return (yield)
        finally:
            own_after, children_after = _cpu()
            item.user_properties.append((f"cpu_{phase}", round(own_after - own + children_after - children, 4)))
    return hook


# --- which file first (suite helper) ----------------------------------------------------------
# With `--dist loadfile` each worker takes whole files from one queue, two at a time; xdist's own
# order (most tests first) put files of many quick tests first and the few long ones (servers,
# CLI runs, browsers) last, so one worker ran a long file alone at the end. The queue is ordered by
# each file's measured seconds instead, longest first (longest-processing-time scheduling), so the
# end of a run is many short files that fill both workers. FILE_COSTS holds those seconds; refresh
# it with `--record-file-costs` on a full run. A file not in it counts as UNKNOWN_COST seconds.
FILE_COSTS = REPO_ROOT / "tests" / "file_costs.json"
UNKNOWN_COST = 2.0


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "loadscopereorder", None) is not None:
        config.option.loadscopereorder = False  # keep the collection order made below


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """A worker's share of a fresh clone's bytecode first, so that no file is compiled by every worker
    (``tests/bytecode_share.py``, suite32)."""
    from tests.bytecode_share import compile_share

    compile_share(session.config, REPO_ROOT)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import json

    costs = json.loads(FILE_COSTS.read_text(encoding="utf-8")) if FILE_COSTS.exists() else {}
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        first.setdefault(item.nodeid.split("::")[0], i)

    def key(item: pytest.Item) -> tuple[float, int]:
        file = item.nodeid.split("::")[0]
        return -float(costs.get(file, UNKNOWN_COST)), first[file]

    items.sort(key=key)  # stable: a file's tests keep their order


_WALL_BY_FILE: dict[str, float] = {}


pytest_runtest_setup = _measured("setup")
pytest_runtest_call = _measured("call")
pytest_runtest_teardown = _measured("teardown")
_CPU_BY_TEST: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    cpu = sum(v for k, v in report.user_properties if k == f"cpu_{report.when}" and isinstance(v, float | int))
    _CPU_BY_TEST[report.nodeid] = _CPU_BY_TEST.get(report.nodeid, 0.0) + cpu
    file = report.nodeid.split("::")[0]
    _WALL_BY_FILE[file] = _WALL_BY_FILE.get(file, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    old_code = sys.modules.get("tests.test_moneylast19_charges")
    if old_code is not None:  # the trees and stores of earlier commits this process kept (run_old_code)
        old_code.forget_old_code()
    if session.config.getoption("record_file_costs") and _WALL_BY_FILE and not os.environ.get("PYTEST_XDIST_WORKER"):
        import json

        costs = {f: round(s, 1) for f, s in sorted(_WALL_BY_FILE.items(), key=lambda kv: (-kv[1], kv[0]))}
        FILE_COSTS.write_text(json.dumps(costs, indent=0) + "\n", encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    count = config.getoption("cpu_durations")
    if not count or not _CPU_BY_TEST:
        return
    by_file: dict[str, float] = {}
    for nodeid, cpu in _CPU_BY_TEST.items():
        by_file[nodeid.split("::")[0]] = by_file.get(nodeid.split("::")[0], 0.0) + cpu
    write = terminalreporter.write_line
    terminalreporter.section(f"CPU: {sum(by_file.values()):.0f} s in {len(_CPU_BY_TEST)} tests "
                             "(own threads + child processes)")
    for title, table in (("tests", _CPU_BY_TEST), ("files", by_file)):
        write(f"the {count} costliest {title}:")
        for name, cpu in sorted(table.items(), key=lambda kv: -kv[1])[:count]:
            write(f"{cpu:8.2f} s  {name}")


@pytest.fixture
def shots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The folder a page test saves its screenshots in, its own: ``$HUREN_SCREENSHOTS/<test file>`` when that is set
    (a round's report folder, chosen by whoever runs the test), else ``shots`` under the test's ``tmp_path`` (pytest
    keeps the last three runs' folders). Page tests had written to fixed folders (``/dev/shm/ord40.shots``, ...), so
    two runs at once -- two helpers, or xdist workers -- wrote over each other's pictures (http41). The folder is
    printed: ``-s`` shows it, and a failing test's captured output names it."""
    root = os.environ.get("HUREN_SCREENSHOTS")
    folder = Path(root) / request.path.stem if root else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {folder}")
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)


# --- storage backends (repo helper) ---------------------------------------------------------
# Contract tests run on SQLite always, on mongomock always, and on a real MongoDB whenever
# HUREN_MONGODB_URI is set (each test gets its own database, dropped afterwards).
_BACKENDS = ["sqlite", "mongomock"] + (["mongodb"] if os.environ.get("HUREN_MONGODB_URI") else [])


def _mongomock_finds_by_id() -> None:
    """mongomock answers every ``find`` by testing the filter on each document of the collection in
    turn; a real MongoDB finds ``{"_id": "x", ...}`` through the ``_id`` index. The Mongo store's
    reads and writes are mostly such look-ups (the current version, the put-create guard, the
    identity links), so a mongomock test building a county of ~250 records tested the filter on
    ~1.6 million documents (ufix12_flag_paging[mongomock]: 28 % of its CPU in
    ``mongomock/filtering.py``). Here a filter whose ``_id`` is a plain string looks at the one
    document stored under that key (mongomock keys its documents by ``_id``) and still tests the
    whole filter on it: the same documents match as by the scan, since only a document whose
    ``_id`` is that string can (an ``_id`` is never an array); ``{"_id": {"$in": [strings]}}`` tests
    a set look-up first on each document. Every other filter scans as before.
    (twenty-ninth round, suitecut29: a speed-up of the stand-in only; the store's queries are
    unchanged.)"""
    try:
        from mongomock.collection import Collection, filter_applies
    except ImportError:  # no mongomock: the Mongo contract cases do not run
        return
    if getattr(Collection._iter_documents, "finds_by_id", False):
        return
    scan = Collection._iter_documents

    def _iter_documents(self: Any, filter: Any) -> Any:
        key = filter.get("_id") if type(filter) is dict else None
        wanted = key.get("$in") if type(key) is dict and len(key) == 1 else None
        if type(wanted) is list and all(type(k) is str for k in wanted):
            wanted = set(wanted)  # a look-up per document instead of the filter, in the store's order
            return (d for d in list(self._store.documents)
                    if type(d.get("_id")) is str and d["_id"] in wanted and filter_applies(filter, d))
        if type(key) is not str:
            first = _first_equality(filter)
            if first is None:
                return scan(self, filter)
            if self._store.is_empty:
                filter_applies(filter, {})  # (as the scan validates a filter no document meets)
            name, value = first  # a document failing it is one the filter's first test refuses: not tested whole
            return (d for d in list(self._store.documents)
                    if name in d and ((v := d[name]) == value or type(v) in (list, tuple) and value in v)
                    and filter_applies(filter, d))
        try:
            found = self._store[key]  # (honours TTL indexes and the store's lock)
        except KeyError:
            filter_applies(filter, {})  # a bad operator is refused as the scan refuses it
            return iter(())
        return iter((found,) if filter_applies(filter, found) else ())

    _iter_documents.finds_by_id = True  # type: ignore[attr-defined]
    _iter_documents.scan = scan  # type: ignore[attr-defined]  # (tests/test_suitecut29_mongomock_ids.py)
    Collection._iter_documents = _iter_documents


def _first_equality(filter: Any) -> tuple[str, str | bool] | None:
    """The test mongomock's matcher (``filtering._Filterer.apply``) runs first on each document of a scan, when it is
    a field's equality to a string or a boolean -- ``{"type": "Patient", ...}``, ``{"$and": [{"deleted": False},
    ...]}`` (the first clause's first field): (field, value). ``apply`` tests a filter's fields in their order and
    answers no at the first that fails, so a document whose field is neither the value nor an array holding it (the
    test ``apply`` makes for a plain value) is one the filter refuses before testing anything else -- no later
    operator met, none refused. None for any other first test (an operator, a dotted path, ``_id``, another type):
    such filters scan as before. (forty-fifth round, suite45a: the store's look-ups by a non-``_id`` field --
    ``fhir_current`` by type and deletion, ``mpi_links`` by person, the recognition rows by patient -- tested every
    document of the collection through the whole matcher: ~466,000 documents in a 40-file sample.)"""
    node = filter
    while type(node) is dict and node:
        name, value = next(iter(node.items()))
        if name == "$and" and type(value) is list and value and type(value[0]) is dict:
            node = value[0]
            continue
        if type(name) is str and not name.startswith("$") and "." not in name and name and name != "_id" \
                and type(value) in (str, bool):
            return name, value
        return None
    return None



def _mongomock_find_and_modify_atomic() -> None:
    """mongomock's ``find_one_and_replace``/``_update``/``_delete`` (``Collection._find_and_modify``) is a find and then
    a write with no lock spanning both, so two threads could both match a compare-and-set's filter and both write: a
    review answered 200 lost (ci188, lead43_reviews' two reviews at once). A MongoDB server's findAndModify is one
    atomic step; the stand-in is made one here (one lock for every collection: the test double's fidelity, never the
    store's code)."""
    import threading

    from mongomock.collection import Collection

    lock = threading.RLock()
    find_and_modify = Collection._find_and_modify

    def atomic(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return find_and_modify(self, *args, **kwargs)

    Collection._find_and_modify = atomic


def _mongomock_copies_plain_values_as_they_are() -> None:
    """mongomock rebuilds every document it is given (``helpers.patch_datetime_awareness_in_document``: each
    insert, replace and filter, to make datetimes naive to the millisecond as MongoDB stores them) and copies
    every document it answers (``collection._copy_field``, ``copy.copy`` of each leaf), asking ``isinstance``
    of each dict, list and leaf four or five times over. A store's documents are FHIR JSON: dicts, lists,
    strings, numbers, booleans, nulls -- ~440,000 values rebuilt and ~230,000 copied in a 60-file sample
    (suite46c: ~3.5 % of its CPU in the two). Here a plain ``dict`` and ``list`` are rebuilt and a ``str``,
    ``int``, ``float``, ``bool``, ``None`` or ``bytes`` (by exact type) is kept as it is -- what both functions
    give for them (they return such a value itself: ``copy.copy`` of an immutable is the value); anything else
    (a datetime, an ``OrderedDict``, a tuple, a ``Timestamp``, any subclass) is handed to mongomock's own code.
    The same documents, the same types, new containers as before. (forty-sixth round, suite46c: a speed-up of
    the stand-in only; ``tests/test_suite46c_mongomock_copies.py`` compares the two on varied documents.)"""
    try:
        from mongomock import collection, helpers
    except ImportError:  # no mongomock: the Mongo contract cases do not run
        return
    if getattr(helpers.patch_datetime_awareness_in_document, "plain_kept", False):
        return
    plain = frozenset({str, int, float, bool, type(None), bytes})
    patch_datetimes = helpers.patch_datetime_awareness_in_document
    copy_field = collection._copy_field

    def patched(value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            return {k: patched(v) for k, v in value.items()}
        if kind in plain:
            return value
        if kind is list:
            return [patched(item) for item in value]
        return patch_datetimes(value)  # (its own recursion calls back here: helpers' global is this one)

    def copied(obj: Any, container: Any) -> Any:
        kind = type(obj)
        if kind in plain:
            return obj
        if kind is list:
            return [copied(item, container) for item in obj]
        if kind is dict:
            new = container()
            for key, value in obj.items():
                new[key] = copied(value, container)
            return new
        return copy_field(obj, container)

    for new, old in ((patched, patch_datetimes), (copied, copy_field)):
        new.plain_kept = True  # type: ignore[attr-defined]
        new.original = old  # type: ignore[attr-defined]  # (tests/test_suite46c_mongomock_copies.py)
    helpers.patch_datetime_awareness_in_document = patched
    collection._copy_field = copied


_mongomock_finds_by_id()
_mongomock_find_and_modify_atomic()
_mongomock_copies_plain_values_as_they_are()


@contextlib.contextmanager
def settings_for_backend(name: str, settings: Settings) -> Iterator[Settings]:
    """``settings`` on the storage backend ``name`` (one of ``_BACKENDS``): SQLite as given, a mongomock
    client, or a MongoDB database of its own (``HUREN_MONGODB_URI``) dropped when the block ends. The
    one place the choice is made, for ``backend_settings`` (a test) and ``module_eng`` (a module)."""
    if name == "sqlite":
        yield settings
    elif name == "mongomock":
        yield settings.with_(mongodb_uri="mongomock://")
    else:
        db = f"huren_test_{uuid.uuid4().hex[:12]}"
        try:
            yield settings.with_(mongodb_uri=os.environ["HUREN_MONGODB_URI"], mongodb_db=db)
        finally:
            import pymongo

            pymongo.MongoClient(os.environ["HUREN_MONGODB_URI"]).drop_database(db)


@pytest.fixture(params=_BACKENDS)
def backend_settings(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    """``Settings`` selecting each storage backend in turn."""
    with settings_for_backend(request.param, settings) as chosen:
        yield chosen


# --- the collected suite out of the collector's walks (suite helper, trim42) ----------------------
# A worker collects every test file (``--dist loadfile``: the workers must agree), so before its first
# test it holds ~440,000 tracked objects it keeps to the end: the ~1,040 modules, their functions and
# parameters, pytest's items. Each automatic full collection walked all of them again, and the tests'
# churn (an Engine per test, alive long enough to reach the oldest generation) ran one every ~2 files
# (a 41-file sample: 21 automatic full collections, ~225 ms each, ~9 % of its CPU). They are frozen
# once collection is over (``gc.freeze``: out of every generation the collector walks, still freed by
# reference counting), as ``engine.heap.settle`` does for a server's start-up heap; what the tests make
# is collected as before. ``engine.heap.unsettle`` (the ``settled`` fixture) unfreezes everything, so
# the next test freezes the collection again. (forty-second round, trim42)
_collection_frozen = False


def _freeze_collection() -> None:
    global _collection_frozen
    import gc

    from engine import heap

    if _collection_frozen or heap._settled or not gc.isenabled():
        return
    gc.collect()
    gc.freeze()
    _collection_frozen = True


def pytest_collection_finish(session: pytest.Session) -> None:
    _freeze_collection()


def _unsettled() -> None:
    """``engine.heap.unsettle`` for the suite: it unfreezes everything, the collection included."""
    global _collection_frozen
    from engine import heap

    heap.unsettle()
    _collection_frozen = False


@pytest.fixture(autouse=True)
def _heap_left_unsettled(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that settles the process's heap (``engine.heap.settle``: what ``huren serve`` and the
    benches do) must undo it -- through the ``settled`` fixture. One that did not (a bench helper
    called in a test) left the worker settled for every later file: each ingest batch froze its
    survivors, cycles waited for a full collection, and the worker grew to ~1.8 GB and slowed to a
    crawl in its late files (twenty-sixth round). Undone here, and the test fails to say so."""
    if not _collection_frozen:  # unfrozen by an earlier test's unsettle: frozen again (trim42, above)
        _freeze_collection()
    yield
    from engine import heap

    if heap._settled and "settled" not in request.fixturenames:
        import gc

        _unsettled()
        gc.set_threshold(700, 10, 10)
        pytest.fail("the test left the heap settled (engine.heap.settle): use the `settled` fixture")


@pytest.fixture(autouse=True)
def _index_plans_match_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every resource any test indexes (written, migrated, an audit view derived) is indexed by
    its compiled plan and by the interpreter, and the two must give the same rows: the plans
    are code generated from the search parameter data, the interpreter its plain reading.

    Kept on every resource: measured (forty-fourth round, suite44a) on a fixed sample of 30 files (277
    tests, -n 0), the interpreter's half cost ~0.15 s of ~17-20 s of CPU for 5,112 resources (~30 us
    each, under 1 %), so a sample of resources would buy almost nothing for a weaker guard."""
    from engine.repository.indexing import Indexer

    compiled = Indexer.rows

    def rows(self: Indexer, resource: dict[str, Any]) -> Any:
        got = compiled(self, resource)
        expected = self.interpret(resource)
        assert got == expected and list(got.sort) == list(expected.sort), (resource.get("resourceType"),
                                                                           resource.get("id"))
        return got

    monkeypatch.setattr(Indexer, "rows", rows)


@pytest.fixture
def store(backend_settings: Settings) -> Iterator[Store]:
    from engine.repository import open_store

    opened = open_store(backend_settings)
    yield opened
    opened.close()


@pytest.fixture
def engine(settings: Settings):
    from engine.engine import Engine

    eng = Engine(settings)
    yield eng
    eng.close()


@pytest.fixture
def http(engine):
    """The real app over ``engine`` through FastAPI's TestClient, no credentials: tests add their own."""
    from fastapi.testclient import TestClient

    from engine.api.app import create_app

    with TestClient(create_app(engine)) as client:
        yield client


@pytest.fixture
def client_token():
    """``client_token(engine, scopes="system/*.cruds") -> str``: a signed access token for a system client."""

    def make(engine, scopes: str = "system/*.cruds", client_id: str = "test-system") -> str:
        return engine.auth.issue_system_token(client_id, scopes)

    return make


@contextlib.contextmanager
def running_mllp(engine) -> Iterator[int]:
    """A real MLLP listener on a free port, feeding ``engine``'s ingestor, on a loop of its own
    thread; yields the port (the ``mllp`` fixture, and tests that start one inside a test)."""
    import asyncio
    import threading

    from adapters.listeners.ingest_handler import IngestHandler
    from adapters.listeners.mllp import MLLPServer

    loop = asyncio.new_event_loop()
    server = MLLPServer(IngestHandler(engine.ingestor), host="127.0.0.1", port=0)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield server.port
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.fixture
def mllp(engine) -> Iterator[int]:
    """A real MLLP listener on a free port, feeding the test's ``engine``; yields the port."""
    with running_mllp(engine) as port:
        yield port


@pytest.fixture
def settled() -> Iterator[None]:
    """The ingest heap settings (``engine.heap.settle``) for the test, the collector's thresholds
    restored after it."""
    import gc

    from engine import heap

    thresholds = gc.get_threshold()
    heap.settle()
    try:
        yield
    finally:
        _unsettled()
        gc.set_threshold(*thresholds)


# --- kill -9 mid-stream (repo helper) --------------------------------------------------------
def _send_all(port: int, messages: list[bytes], acked: dict[bytes, str], deadline: float) -> None:
    """Pipeline every message on one connection; record each ACK (MSH-10 -> its code) as it
    arrives, until the socket dies."""
    import time

    from adapters.hl7v2.ack import ack_code_of
    from adapters.listeners.mllp import frame

    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"".join(frame(m) for m in messages))
        data = b""
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            data += chunk
            while b"\x1c\r" in data:
                ack, data = data.split(b"\x1c\r", 1)
                ack = ack.lstrip(b"\x0b")
                control = ack.split(b"\rMSA|", 1)[1].split(b"|")[1].split(b"\r")[0]
                acked[control] = ack_code_of(ack)


def kill_mid_stream(argv: list[str], settings: Settings, messages: list[bytes], *, after: int,
                    at_kill: Any = None) -> dict[bytes, str]:
    """Start a server (``argv``, run from the repository with ``settings``' data directory and
    free ports), pipeline ``messages`` to it over MLLP, and kill -9 it once ``after`` of them are
    ACKed; ``at_kill()`` is called just before the kill. Returns the ACKs received (MSH-10 ->
    code), checked to have stopped mid-stream and to be all AA."""
    import signal
    import subprocess
    import threading
    import time

    from tests.test_ingest_serve import free_port, stop, wait_for_port

    mllp_port = free_port()
    env = os.environ | {"HUREN_DATA_DIR": str(settings.data_dir), "HUREN_HTTP_PORT": str(free_port()),
                        "HUREN_MLLP_PORT": str(mllp_port)}
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    acked: dict[bytes, str] = {}
    try:
        wait_for_port(mllp_port, proc)
        sender = threading.Thread(target=_send_all, args=(mllp_port, messages, acked, time.monotonic() + 120))
        sender.start()
        while len(acked) < after and sender.is_alive():
            time.sleep(0.01)
        if at_kill is not None:
            at_kill()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        sender.join(timeout=30)
    finally:
        if proc.poll() is None:
            stop(proc)
    assert after <= len(acked) < len(messages), "the kill must land mid-stream"
    assert set(acked.values()) == {"AA"}
    return acked


def assert_acked_kept(engine: Any, messages: list[bytes], acked: dict[bytes, str]) -> list[Any]:
    """After ``kill_mid_stream``: recovery, then every ACKed 12-OBX lab message stored and processed
    with all its results; the sender's resend of every message is answered AA, the ACKed ones as
    resends, and no result is stored twice. Returns the resend's outcomes."""
    from engine.messages import PROCESSED, message_id

    engine.ingestor.recover()
    for control in acked:
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", control.decode()))
        assert doc is not None and doc["status"] == PROCESSED, control
        assert len([r for r in doc["resources"] if r.startswith("Observation/")]) == 12
    outcomes = engine.ingestor.process([(m, "mllp", "p") for m in messages])
    assert all(o.code == "AA" for o in outcomes)
    assert all(o.duplicate for o, m in zip(outcomes, messages, strict=True) if m.split(b"|")[9] in acked)
    assert engine.repository.search("Observation", [("_summary", "count")]).total == 12 * len(messages)
    return outcomes


def wait_until_worker_waits_for_lock(ingestor, timeout: float = 30) -> None:
    """Return once the ingest worker stands at ``with self._lock:`` in ``Ingestor._work`` (the
    batch lock a test holds), so messages sent now queue up instead of joining the batch it took.
    A fixed sleep assumed the worker is scheduled within it; on a loaded machine (CI on two cores,
    tests in parallel) it was not, and the next messages joined the held batch."""
    import linecache
    import sys
    import time

    deadline = time.monotonic() + timeout
    while True:
        frame = sys._current_frames().get(ingestor._worker.ident)
        while frame is not None and frame.f_code.co_name != "_work":
            frame = frame.f_back
        if frame is not None and "self._lock" in linecache.getline(frame.f_code.co_filename, frame.f_lineno):
            return
        assert time.monotonic() < deadline, "the ingest worker never reached the batch lock"
        time.sleep(0.002)
