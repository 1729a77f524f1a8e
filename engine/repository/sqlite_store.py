"""The embedded SQLite backend: one WAL file, one connection guarded by a re-entrant lock.

Why one connection and a lock: SQLite allows one writer at a time anyway, and a single
connection shared by FastAPI's worker threads and the asyncio MLLP server keeps
``store.transaction()`` simple (a thread holds the lock for the whole transaction, nested
blocks become SAVEPOINTs so a failed inner block rolls back alone while the outer one goes on).
Plain reads are a few microseconds, so serialising them costs little on a 2-core machine.

Plain document collections are tables ``doc_<name>(id, body)`` holding the JSON text of the
document; filters and indexes use ``json_extract`` expressions, and ``ensure_index`` creates
expression indexes with exactly the same text so the planner can use them.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import fhirjson
from engine.repository.checkpointer import BACKSTOP, Checkpointer
from engine.repository.port import Document, DuplicateKey

if TYPE_CHECKING:
    from engine.repository.sqlite_fhir import SqliteFhirBackend

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_FIELD = re.compile(r"^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$")
_OPS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
# what a JSON array gives back through ``json_each`` as the value a ``?`` would have bound
_JSON_SCALARS = (str, int, float)
WAL_CHECKPOINT_BYTES = 64 * 1024 * 1024  # the WAL's length between checkpoints
# checkpoints on a thread of their own (``checkpointer``) for stores that do not say: off, since
# measured they moved the checkpoint's CPU off the ingest thread but cost ~1-3 % more CPU a
# message in all and bought no batch latency on a loaded 2-core machine (README, tenth round)
BACKGROUND_CHECKPOINTS = False
# the longest ``$in`` bound one ``?`` a value (as ``sqlite_fhir`` reads keys, 500 at a time); a
# longer one is bound as one JSON array read by ``json_each``: SQLite's bound on one statement's
# variables is 32,766 as compiled by default (999 before 3.32), and a caller's list is not
# bounded by it (linkfix37: a page of 2,000 blood-count reports listed ~38,000 results)
IN_CHUNK = 500


def _pragma_when_free(conn: sqlite3.Connection, pragma: str, *, seconds: float = 10.0) -> None:
    """Run a connection-setup PRAGMA, waiting while another process holds the file.

    Several ``--workers`` processes (or the ingest worker and the audit drain) open the same file
    at once; switching to WAL and the first schema read can answer "database is locked" at once,
    without SQLite's busy handler, while another connection is in its own setup or recovery. A
    process must not die of that at start: wait as the busy timeout would, then give up loudly.
    """
    deadline = time.monotonic() + seconds
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA " + pragma)
            return
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


class FlatTransactionFailed(Exception):
    """A nested block failed inside ``flat_transaction()``; everything in it was rolled back."""


class TransactionLost(sqlite3.OperationalError):
    """This thread's transaction is gone: SQLite rolled it back itself, and the block asking (a nested block
    entered, a statement run, a block ending without an error) is refused rather than run outside it.

    Why: on SQLITE_FULL ("database or disk is full"), IOERR, NOMEM or BUSY SQLite may roll the whole
    transaction back on its own (https://www.sqlite.org/lang_transaction.html, "Response To Errors Within A
    Transaction"). A caller that catches a nested block's error and goes on (``ingest._write_each``: a
    savepoint a message, a failing one quarantined and the next written) then wrote in autocommit: the next
    SAVEPOINT opened a transaction of its own and its RELEASE committed that message alone, while the earlier
    ones were gone and the batch was answered AE (review rv39a MED; thirty-ninth round, stfix39). An
    ``OperationalError``, as the error it follows: its text names that error (``__cause__`` when known)."""


class _Transaction:
    """``SqliteStore.transaction()``: the store's lock held from enter to exit; at depth 0 BEGIN
    IMMEDIATE and COMMIT (ROLLBACK on an exception), deeper a SAVEPOINT released (or rolled back
    to) at exit, and inside ``flat_transaction()`` a plain join that marks the whole transaction
    spoiled when its block raises, even if the caller then catches the exception."""

    __slots__ = ("store", "depth", "joined")

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.depth = 0
        self.joined = False

    def __enter__(self) -> None:
        store = self.store
        store.lock.acquire()
        try:
            depth = self.depth = store._depth
            if depth > 0 and not store._conn.in_transaction:  # (SQLite rolled it back: nothing to nest in)
                raise store._lost_error()
            if depth > 0 and store._flat:  # inside flat_transaction(): join it, no savepoint
                self.joined = True
            elif depth == 0:
                if store._pending:  # the schema asked for so far, in its own transaction first
                    store.flush_schema()
                store._conn.execute("BEGIN IMMEDIATE")
                store.generation += 1
                store._owner = threading.get_ident()
            else:
                store._conn.execute(f"SAVEPOINT sp{depth}")
            store._depth = depth + 1
        except BaseException:
            store.lock.release()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        store = self.store
        depth = self.depth
        undone: Sequence[Callable[[], None]] = ()  # (no list made on the everyday path)
        try:
            store._depth = depth
            if self.joined:
                if exc_type is not None:
                    store._spoiled = True  # even if the caller catches it: the whole block must go
                return
            conn = store._conn
            if not conn.in_transaction:
                # SQLite rolled the whole transaction back itself (SQLITE_FULL, IOERR, NOMEM, BUSY: "Response To
                # Errors Within A Transaction"): no ROLLBACK or savepoint is left to end -- asked, "no transaction
                # is active" hid the block's own error and left its callbacks for a later, unrelated rollback --
                # every block's callbacks run now, once, and a block ending without an error is told its writes
                # are gone (its caller caught the error that lost them); until the outermost block ends, nothing
                # more runs outside the transaction (``__enter__``, ``conn``: review rv39a MED; stfix39)
                store.generation += 1
                if exc is not None and store._lost is None:
                    store._lost = exc
                undone, store._on_rollback = [cb for _, cb in store._on_rollback], []
                lost = store._lost_error() if exc_type is None else None
                if depth == 0:
                    store._lost = None
                if lost is not None:
                    raise lost
                return
            if exc_type is not None:
                store.generation += 1
                if depth == 0:
                    conn.execute("ROLLBACK")
                else:
                    conn.execute(f"ROLLBACK TO sp{depth}")
                    conn.execute(f"RELEASE sp{depth}")
                if store._on_rollback:  # (run once the lock is let go: ``on_rollback``)
                    undone = [cb for at, cb in store._on_rollback if at > depth]
                    store._on_rollback = [(at, cb) for at, cb in store._on_rollback if at <= depth]
                return
            if depth == 0:
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    # a COMMIT that fails (a deferred constraint, disk full, an I/O error) stored nothing: the
                    # transaction is rolled back if SQLite left it open, and the block's callbacks run as for
                    # a failed block -- kept, they would have fired at a later, unrelated rollback (reviews
                    # rv38f L3, rv38i; the lead, thirty-eighth round)
                    store.generation += 1
                    if conn.in_transaction:
                        with suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    undone, store._on_rollback = [cb for _, cb in store._on_rollback], []
                    raise
                if store._on_rollback:  # (committed: nothing of them to undo)
                    store._on_rollback = []
                checkpointer = store.checkpointer
                if checkpointer is not None and not checkpointer.committed():
                    store._autocheckpoint(checkpointer.pages)  # SQLite's own again, as before
                    store.checkpointer = None
            else:
                conn.execute(f"RELEASE sp{depth}")
                if store._on_rollback:  # (released: its writes now stand or fall with the block around it)
                    store._on_rollback = [(min(at, depth), cb) for at, cb in store._on_rollback]
        finally:
            store.lock.release()
            for callback in undone:
                try:
                    callback()
                except Exception:
                    log.exception("SQLite: a rollback callback failed")


class SqliteStore:
    """``Store`` on one SQLite file in WAL mode."""

    def __init__(self, path: Path | str, *, page_size: int | None = None,
                 background_checkpoints: bool | None = None, checkpoint_bytes: int | None = None,
                 fhir_layout: bool = True) -> None:
        """``page_size`` applies to a new database file only (SQLite keeps a file's page size);
        ``fhir_layout=False``: the FHIR tables made (or upgraded) only when ``fhir`` is first used, for
        a file that holds documents only (the audit log's: ``engine.audit.store``);
        ``background_checkpoints``: WAL checkpoints on a thread of their own (``checkpointer``)
        rather than inside the COMMIT that passes the threshold (``BACKGROUND_CHECKPOINTS`` when
        not given); ``checkpoint_bytes``: the WAL's length between checkpoints
        (``WAL_CHECKPOINT_BYTES`` when not given)."""
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        # set by ``close``: a background thread holding the store (the audit log's) stops on it
        # rather than failing on the closed connection
        self.closed = False
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        # schema statements (``collection``, ``ensure_index``) asked for outside a transaction wait
        # here and run together, in one transaction, before the next statement on this store (see
        # ``_schema_statement``); ``_schema`` holds the names the file is known to have
        self._pending: list[str] = []
        self._schema: set[str] = set()
        self._unsure: set[str] = set()  # made inside a transaction (which may have been rolled back)
        # every (name, statement) asked while this is a list, those the file had included: an Engine's start
        # on a new store (``engine.store_template``)
        self.asked: list[tuple[str, str]] | None = None
        if page_size is not None:
            self._conn.execute(f"PRAGMA page_size={int(page_size)}")
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "busy_timeout=10000",
            "cache_size=-131072",
            "temp_store=MEMORY",
            "mmap_size=268435456",
            "journal_size_limit=67108864",  # the WAL file trimmed back to 64 MiB after a checkpoint
        ):
            _pragma_when_free(self._conn, pragma)
        self._memory = str(path) == ":memory:"
        # checkpoint the WAL every 64 MiB instead of SQLite's 4 MiB (at ingest rates the default
        # checkpointed every few Bundles: measured ~35% more writes/s at 64): inside the COMMIT
        # that passes it, or on a thread of its own (``checkpointer``)
        page_bytes = self._conn.execute("PRAGMA page_size").fetchone()[0]
        pages = max(1, (checkpoint_bytes or WAL_CHECKPOINT_BYTES) // page_bytes)
        if background_checkpoints is None:
            background_checkpoints = BACKGROUND_CHECKPOINTS
        self.checkpointer = (Checkpointer(self.path, pages=pages, lock=self.lock)
                             if background_checkpoints and not self._memory else None)
        self._autocheckpoint(pages * (BACKSTOP if self.checkpointer is not None else 1))
        if self.checkpointer is not None:  # the WAL's usual length, kept allocated (see checkpointer)
            self._conn.execute(f"PRAGMA journal_size_limit={2 * pages * page_bytes}")
        if self.checkpointer is not None:  # a store dropped unclosed does not leave its thread behind
            weakref.finalize(self, self.checkpointer.close)
        self._depth = 0
        # changes at every BEGIN and every rollback: what a writer learnt of the store inside one
        # transaction (the rids it gave) holds while this is unchanged (``SqliteFhirBackend``)
        self.generation = 0
        self._flat = self._spoiled = False  # see flat_transaction()
        self._on_rollback: list[tuple[int, Callable[[], None]]] = []  # (the depth it was asked at, callback)
        self._lost: BaseException | None = None  # the error with which SQLite rolled this transaction back itself
        self._owner: int | None = None  # the thread holding the open transaction
        self._readers = threading.local()  # one read-only connection per reading thread
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._collections: dict[str, SqliteCollection] = {}
        # a file with no table yet: this open makes the store (``Store.created``, read before the FHIR layout)
        self.created = self._conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is None
        self._fhir: SqliteFhirBackend | None = None
        if fhir_layout:
            self._fhir = _fhir_layout(self)
        # the names the file has (after the FHIR layout's own first reads of the schema, which wait out
        # another process's setup as before)
        self._schema.update(name for (name,) in self._conn.execute("SELECT name FROM sqlite_master"))

    @property
    def fhir(self) -> SqliteFhirBackend:
        """The FHIR layout on this file (``Store.fhir``); made at open unless ``fhir_layout=False``."""
        backend = self._fhir
        if backend is None:
            with self.lock:
                backend = self._fhir
                if backend is None:
                    backend = self._fhir = _fhir_layout(self)
        return backend

    # -- the writer connection and the schema ------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        """The writer connection, the schema asked for so far created first (``_schema_statement``)."""
        if self._pending:
            self.flush_schema()
        if self._depth and not self._conn.in_transaction:  # (in autocommit it would be stored alone)
            raise self._lost_error()
        return self._conn

    def _lost_error(self) -> TransactionLost:
        """``TransactionLost`` for this thread's transaction, which SQLite rolled back itself (see there)."""
        error = TransactionLost(f"SQLite rolled the transaction back itself ({self._lost or 'an error'}): nothing "
                                "written in it is stored, and nothing more is run until its outermost block ends")
        error.__cause__ = self._lost
        return error

    def _schema_statement(self, name: str, sql: str) -> None:
        """Create table or index ``name`` by ``sql`` (a ``CREATE ... IF NOT EXISTS``) before anything
        else runs on this store.

        Why deferred: an Engine's parts ask for their ~45 tables and ~50 indexes one by one as they
        start, and each statement on its own was a write transaction whose commit changed the schema
        that every connection then read again: ~15 ms of CPU of a ~55 ms Engine open on a new data
        directory (measured: one transaction for them all, ~6 ms). Outside a transaction they wait in
        ``_pending`` and run together, in one transaction, before the next statement through
        ``conn``, ``execute``, ``query`` or ``transaction()``; inside one (this thread's) they run at
        once, as part of it, and are not taken as known (a rollback undoes them). A name read from
        ``sqlite_master`` at open, or created since, is not asked again (a restart's statements
        were all no-ops)."""
        with self.lock:
            if self.asked is not None:
                self.asked.append((name, sql))
            if name in self._schema:
                return
            if self._depth > 0:
                self._conn.execute(sql)
                self._unsure.add(name)
                return
            self._pending.append(sql)
            self._schema.add(name)

    def flush_schema(self) -> None:
        """Create the tables and indexes asked for and still waiting (``_schema_statement``): before
        another connection (another process, a raw ``sqlite3`` reader) is to see them."""
        with self.lock:
            pending, self._pending = self._pending, []
            if not pending:
                return
            if self._depth > 0:  # another thread's transaction: they are part of it, as they were
                for sql in pending:
                    self._conn.execute(sql)
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for sql in pending:
                    self._conn.execute(sql)
                self._conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                self._pending[:0] = pending  # asked again by the next statement, which then raises
                raise

    # -- transactions ---------------------------------------------------------------------
    def transaction(self) -> _Transaction:
        """One transaction, or a block nested in this thread's open one: a SAVEPOINT that a failure
        rolls back alone, or inside ``flat_transaction()`` a join without one (see there).

        A class, not a generator-based context manager: a lab message enters ~2 nested blocks
        (``write_many``'s), and with the generator's frame, its wrapper and the ``yield`` a block
        cost ~9-11 us in the ingest pipeline, ~6-8 without (README "## HL7 v2 ingest",
        seventeenth round)."""
        return _Transaction(self)

    @contextmanager
    def flat_transaction(self) -> Iterator[None]:
        """One transaction whose nested ``transaction()`` blocks open no savepoints.

        A savepoint copies each page first changed under it into the statement journal, and a
        batch of ingest messages changes the same index pages message after message (~0.3 ms of
        a 12-OBX message). Without savepoints a failing nested block cannot be undone alone, so
        if any nested block raises — even when its caller catches the exception and goes on —
        the whole transaction is rolled back and ``FlatTransactionFailed`` raised: the caller
        then redoes the work with ordinary (savepointed) transactions.
        """
        with self.lock:
            if self._depth > 0:
                raise RuntimeError("flat_transaction() must be the outermost transaction")
            self._flat, self._spoiled = True, False
            try:
                with self.transaction():
                    yield
                    if self._spoiled:
                        raise FlatTransactionFailed("a nested block failed inside a flat transaction")
            finally:
                self._flat = self._spoiled = False

    def _autocheckpoint(self, pages: int) -> None:
        """SQLite's own checkpoint, run by the COMMIT that takes the WAL past ``pages`` frames."""
        self._conn.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (once) after the block of this thread's transaction it was asked in is rolled
        back -- the whole transaction, or the savepoint of a nested block that failed (a message's write
        group in a batch written one savepoint a message); nothing when the transaction commits, or outside
        one. A block that is released (its savepoint kept) hands its callbacks to the block around it: its
        writes now stand or fall with that block, so a later sibling's rollback does not fire them (review
        rv38f HIGH H1, cdfix38). When they run: after the block is undone and the lock it took let go --
        outside the store's lock when the outermost transaction rolled back; after a nested block's
        rollback, while the transaction around it is still open in this thread and holds the lock, so a
        callback writing to this same store joins that transaction and is undone if it is (the deletion's
        compensation writes the audit log's own store, not this one). As ``MongoStore.on_rollback``, which
        knows the outermost block only. Why: a participant that recorded something outside the transaction
        about what it wrote (a deletion's audit record, appended to the audit log's own file) must learn
        its writes are gone (thirty-eighth round, codedoc38)."""
        if not self.in_transaction:
            return
        self._on_rollback.append((self._depth, callback))

    @property
    def in_transaction(self) -> bool:
        """True when the calling thread is inside ``transaction()``."""
        return self._depth > 0 and self._owner == threading.get_ident()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self.lock:
            return self.conn.execute(sql, params)

    def variable_limit(self) -> int:
        """SQLite's bound on one statement's variables, on the connection ``query`` reads through
        in this thread (named in the 400 of a search past it: ``SqliteSearch._run``)."""
        if self._depth > 0 and self._owner == threading.get_ident() or self._memory:
            conn = self.conn
        else:
            conn = getattr(self._readers, "conn", None) or self._reader()
        return conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read. Inside this thread's transaction it must see the pending writes, so it goes
        through the writer connection; otherwise through this thread's own read-only connection,
        which WAL lets run alongside the writer (a long transaction does not stall readers)."""
        if self._depth > 0 and self._owner == threading.get_ident() or self._memory:
            with self.lock:
                return self.conn.execute(sql, params).fetchall()
        if self._pending:
            self.flush_schema()
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._reader()
        return conn.execute(sql, params).fetchall()

    def query_first(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """``query``'s first row, or ``None``, through the same connection ``query`` would use
        (the same choice, kept beside it): for a lookup on every request, where ``fetchall``'s list
        and a caller's ``rows[0]`` are part of the cost (``SqliteCollection.holds``)."""
        if self._depth > 0 and self._owner == threading.get_ident() or self._memory:
            with self.lock:
                return self.conn.execute(sql, params).fetchone()  # type: ignore[no-any-return]
        if self._pending:
            self.flush_schema()
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._reader()
        return conn.execute(sql, params).fetchone()  # type: ignore[no-any-return]

    def _reader(self) -> sqlite3.Connection:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA cache_size=-32768")
        conn.execute("PRAGMA mmap_size=268435456")
        self._readers.conn = conn
        with self._reader_lock:  # not self.lock: a writer may hold that for a whole transaction
            self._reader_conns.append(conn)
        return conn

    def collection(self, name: str) -> SqliteCollection:
        coll = self._collections.get(name)
        if coll is None:
            with self.lock:
                coll = self._collections.get(name) or SqliteCollection(self, name)
                self._collections[name] = coll
        return coll

    def close(self) -> None:
        with self.lock:
            self.closed = True
            if self.checkpointer is not None:  # first: the writer's close then checkpoints last
                self.checkpointer.close()
            with suppress(sqlite3.Error):
                self.conn.execute("PRAGMA optimize")  # (and the schema still asked for, created)
            for reader in self._reader_conns:
                with suppress(sqlite3.Error):
                    reader.close()
            self._conn.close()


def _fhir_layout(store: SqliteStore) -> SqliteFhirBackend:
    from engine.repository.sqlite_fhir import SqliteFhirBackend

    return SqliteFhirBackend(store)


def _field_sql(field: str) -> str:
    """The SQL expression for a (dotted) document field; identical text in indexes and queries."""
    if field == "_id":
        return "id"
    if not _FIELD.match(field):
        raise ValueError(f"unsupported field name {field!r}")
    path = "$" + "".join(f'."{part}"' for part in field.split("."))
    return f"json_extract(body, '{path}')"


def _bind(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        raise ValueError("filters compare scalar values only")
    return value


def where_sql(filter: Document | None) -> tuple[str, list[Any]]:
    """Translate the MongoDB-style filter subset of ``Collection`` into a WHERE clause."""
    if not filter:
        return "1", []
    terms: list[str] = []
    params: list[Any] = []
    for field, cond in filter.items():
        expr = _field_sql(field)
        if isinstance(cond, dict) and cond and all(str(k).startswith("$") for k in cond):
            for op, value in cond.items():
                if op in _OPS:
                    terms.append(f"{expr} {_OPS[op]} ?")
                    params.append(_bind(value))
                elif op == "$ne":
                    terms.append(f"{expr} IS NOT ?")
                    params.append(_bind(value))
                elif op == "$in":
                    values = list(value)
                    alts = []
                    non_null = [_bind(v) for v in values if v is not None]
                    if len(non_null) > IN_CHUNK and all(type(v) in _JSON_SCALARS for v in non_null):
                        alts.append(f"{expr} IN (SELECT value FROM json_each(?))")
                        params.append(fhirjson.dumps(non_null).decode())
                    elif non_null:
                        alts.append(f"{expr} IN ({','.join('?' * len(non_null))})")
                        params.extend(non_null)
                    if len(non_null) != len(values):
                        alts.append(f"{expr} IS NULL")
                    terms.append("(" + " OR ".join(alts) + ")" if alts else "0")
                else:
                    raise ValueError(f"unsupported filter operator {op!r}")
        elif cond is None:
            terms.append(f"{expr} IS NULL")
        else:
            terms.append(f"{expr} = ?")
            params.append(_bind(cond))
    return " AND ".join(terms), params


class SqliteCollection:
    """A document collection stored as ``doc_<name>(id TEXT PRIMARY KEY, body TEXT)``."""

    def __init__(self, store: SqliteStore, name: str) -> None:
        if not _NAME.match(name):
            raise ValueError(f"invalid collection name {name!r}")
        self.name = name
        self.store = store
        self.table = f'"doc_{name}"'
        self._holds_sql = f"SELECT 1 FROM {self.table} WHERE id = ?"  # (made once: ``holds`` runs every request)
        store._schema_statement(f"doc_{name}", f"CREATE TABLE IF NOT EXISTS {self.table} "
                                               "(id TEXT PRIMARY KEY, body TEXT NOT NULL)")

    @staticmethod
    def _split(doc: Document) -> tuple[str, str]:
        if "_id" not in doc or not isinstance(doc["_id"], str):
            raise ValueError("documents need a string _id")
        body = {k: v for k, v in doc.items() if k != "_id"}
        return doc["_id"], fhirjson.dumps(body).decode()  # a FhirDecimal from a request body is no error

    @staticmethod
    def _load(doc_id: str, body: str) -> Document:
        doc: Document = {"_id": doc_id}
        doc.update(fhirjson.loads(body))
        return doc

    def ensure_index(self, fields: Sequence[str], *, unique: bool = False) -> None:
        exprs = ", ".join(_field_sql(f) for f in fields)
        bare = f"ix_{self.name}_" + "_".join(re.sub(r"\W", "_", f) for f in fields)
        kind = "UNIQUE INDEX" if unique else "INDEX"
        self.store._schema_statement(bare, f'CREATE {kind} IF NOT EXISTS "{bare}" ON {self.table} ({exprs})')

    def drop_index(self, fields: Sequence[str]) -> None:
        bare = f"ix_{self.name}_" + "_".join(re.sub(r"\W", "_", f) for f in fields)
        store = self.store
        with store.lock:
            if bare not in store._schema and bare not in store._unsure:
                return  # not in the file at open nor made since: nothing to drop (no schema write)
            store.execute(f'DROP INDEX IF EXISTS "{bare}"')
            store._schema.discard(bare)
            store._unsure.discard(bare)

    def insert(self, doc: Document) -> None:
        doc_id, body = self._split(doc)
        try:
            self.store.execute(f"INSERT INTO {self.table} (id, body) VALUES (?, ?)", (doc_id, body))
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(f"{self.name}: {doc_id}") from exc

    def insert_many(self, docs: Sequence[Document]) -> None:
        rows = [self._split(d) for d in docs]
        with self.store.transaction():
            try:
                self.store.conn.executemany(f"INSERT INTO {self.table} (id, body) VALUES (?, ?)", rows)
            except sqlite3.IntegrityError as exc:
                raise DuplicateKey(f"{self.name}: duplicate key in batch") from exc

    def get(self, doc_id: str) -> Document | None:
        rows = self.store.query(f"SELECT id, body FROM {self.table} WHERE id = ?", (doc_id,))
        return self._load(*rows[0]) if rows else None

    def holds(self, doc_id: str) -> bool:
        """Whether a document ``doc_id`` is stored: one primary-key probe, no body read or parsed
        (the revocation check of every authenticated request: ``AuthService.verify``)."""
        return self.store.query_first(self._holds_sql, (doc_id,)) is not None

    def replace(self, doc: Document, *, upsert: bool = True) -> None:
        doc_id, body = self._split(doc)
        try:
            if upsert:
                self.store.execute(
                    f"INSERT INTO {self.table} (id, body) VALUES (?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                    (doc_id, body),
                )
            else:
                self.store.execute(f"UPDATE {self.table} SET body = ? WHERE id = ?", (body, doc_id))
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(f"{self.name}: {doc_id}") from exc

    def update(self, doc_id: str, fields: Document) -> bool:
        if "_id" in fields:
            raise ValueError("cannot change _id")
        with self.store.transaction():
            doc = self.get(doc_id)
            if doc is None:
                return False
            doc.update(fields)
            self.replace(doc)
            return True

    def update_if(self, doc_id: str, where: Document, fields: Document) -> bool:
        """``port.Collection.update_if``: one ``UPDATE ... WHERE id = ? AND <where>`` (``where_sql``, ``find``'s
        translation), the new body made from the document read in the same ``BEGIN IMMEDIATE`` -- the statement's
        own condition decides, so a row another process changed since is left as it is (rowcount 0)."""
        if "_id" in fields:
            raise ValueError("cannot change _id")
        cond, params = where_sql(where)
        with self.store.transaction():
            doc = self.get(doc_id)
            if doc is None:
                return False
            _, body = self._split({**doc, **fields})
            cur = self.store.execute(f"UPDATE {self.table} SET body = ? WHERE id = ? AND {cond}",
                                     (body, doc_id, *params))
            return cur.rowcount > 0

    def replace_if(self, doc: Document, where: Document | None) -> bool:
        """``port.Collection.replace_if``: one statement whose own condition decides -- ``UPDATE ... WHERE id = ? AND
        <where>`` (``where_sql``), or ``INSERT ... ON CONFLICT(id) DO NOTHING`` for ``where`` None. As cheap as
        ``replace``'s one upsert: the condition reads the one row the primary key finds."""
        doc_id, body = self._split(doc)
        if where is None:
            cur = self.store.execute(f"INSERT INTO {self.table} (id, body) VALUES (?, ?) ON CONFLICT(id) DO NOTHING",
                                     (doc_id, body))
        else:
            if "_id" in where:
                raise ValueError("cannot condition on _id")
            cond, params = where_sql(where)
            cur = self.store.execute(f"UPDATE {self.table} SET body = ? WHERE id = ? AND {cond}",
                                     (body, doc_id, *params))
        return cur.rowcount > 0

    def increment(self, doc_id: str, field: str, *, by: int = 1, fields: Document | None = None,
                  on_insert: Document | None = None, add: Document | None = None) -> tuple[Document | None, Document]:
        """``port.Collection.increment``: read and written inside one ``BEGIN IMMEDIATE`` (joining the caller's),
        which holds the file's write lock from the read on, so no other process writes between them. Inside this
        thread's transaction it opens no savepoint of its own: its one write is one statement, and a savepoint per
        counter was ~50k instructions of a message's fidelity counts written alone (fid37)."""
        adds = {k: v for k, v in (add or {}).items() if v}
        if "_id" in (fields or {}) or field == "_id" or "_id" in adds:
            raise ValueError("cannot change _id")
        if adds.keys() & ({*(fields or {})} | {field}):
            raise ValueError("a field is added to and set, or counted, at once")
        with nullcontext() if self.store.in_transaction else self.store.transaction():
            before = self.get(doc_id)
            base = before if before is not None else {
                k: v for k, v in {**(on_insert or {}), "_id": doc_id}.items() if k not in adds}
            after = {**base, **(fields or {}), field: int(base.get(field) or 0) + by}
            for k, values in adds.items():  # (as Mongo's ``$addToSet``: each once, after those held)
                have = list(base.get(k) or ())
                after[k] = have + [x for x in dict.fromkeys(values) if x not in have]
            self.replace(after)
        return before, after

    def delete(self, doc_id: str) -> bool:
        cur = self.store.execute(f"DELETE FROM {self.table} WHERE id = ?", (doc_id,))
        return cur.rowcount > 0

    def delete_if(self, doc_id: str, where: Document) -> bool:
        """``port.Collection.delete_if``: one ``DELETE ... WHERE id = ? AND <where>`` (``where_sql``) -- the statement's
        own condition decides."""
        if "_id" in where:
            raise ValueError("cannot condition on _id")
        cond, params = where_sql(where)
        cur = self.store.execute(f"DELETE FROM {self.table} WHERE id = ? AND {cond}", (doc_id, *params))
        return cur.rowcount > 0

    def find(
        self,
        filter: Document | None = None,
        *,
        sort: Sequence[tuple[str, int]] = (),
        limit: int | None = None,
        skip: int = 0,
    ) -> list[Document]:
        where, params = where_sql(filter)
        sql = f"SELECT id, body FROM {self.table} WHERE {where}"
        if sort:
            sql += " ORDER BY " + ", ".join(f"{_field_sql(f)} {'DESC' if d < 0 else 'ASC'}" for f, d in sort)
        if limit is not None or skip:
            sql += " LIMIT ? OFFSET ?"
            params = [*params, -1 if limit is None else limit, skip]
        return [self._load(i, b) for i, b in self.store.query(sql, params)]

    def count(self, filter: Document | None = None) -> int:
        where, params = where_sql(filter)
        return int(self.store.query(f"SELECT count(*) FROM {self.table} WHERE {where}", params)[0][0])
