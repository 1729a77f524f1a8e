"""A new SQLite store's tables copied from a file made once per process, for a process that starts
Engines on new data directories again and again (the test suite: ~5,000 of them).

Why: an Engine's start on a new store creates ~100 tables and indexes (each part asks for its own,
``SqliteStore._schema_statement``), one 16 KiB page each, then commits them and the close checkpoints
them into the file: ~6.5 of a test's ~19 ms of CPU for an Engine open and close (measured, forty-fourth
round, suite44a), always the same statements. So the first such start in a process is run as always and
the statements it asked for are remembered (``settle``); the next one builds a template once -- the real
``open_store`` on an empty folder (the FHIR layout, as any new store gets it), then those statements in
their order in one transaction, nothing else -- and from then on a new store's file is a copy of it,
opened as the new store it is (``Store.created``: every once-per-store step takes its new-store path).

Exact, or not used: the start's parts still ask for every table (each ask is a no-op on the copy) and
the asks are compared with the template's at the end of the start (``settle``), inside its transaction.
When they match, the file has the tables and indexes, by the same statements in the same order, and the
rows, that the start without the template makes; only its pages may be numbered otherwise (the tables'
pages come before any row's). When they do not, the template's tables this start did not ask for (or asked
for by another statement) are dropped there and made by this start's statement, one it lacks has been made
as always -- the same tables by the same statements, listed in another order -- and the template is not
used again in this process. A process that opens one Engine (``huren serve``, a CLI command)
never builds a template: it pays one list of the statements asked.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

from engine.repository import open_store as _open_store
from engine.repository.port import Store
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Template:
    """The file new stores are copied from, and the statements its tables were made by (beyond the FHIR
    layout, which ``open_store`` makes)."""

    file: Path
    asked: tuple[tuple[str, str], ...]
    opened: Path  # the file as ``open_store`` left it, the FHIR layout alone: what a failed start leaves


_lock = threading.Lock()
_asked: tuple[tuple[str, str], ...] | None = None  # the first new store's start's statements
_template: Template | None = None
_off = False  # a start asked for other tables than the template's: no template in this process
_copied: weakref.WeakKeyDictionary[SqliteStore, Template] = weakref.WeakKeyDictionary()  # stores copied (``undo``)


def open_store(settings: Settings) -> tuple[Store, Template | None]:
    """``engine.repository.open_store``; a new SQLite store's file copied from the process's template
    when there is one (made now if a start before this one told what to put in it), its asks recorded
    for ``settle``. Returns the store and the template it was copied from (None: made as always)."""
    path = settings.sqlite_path
    template = None
    if not settings.mongodb_uri and not path.exists() and not Path(f"{path}-wal").exists():
        template = _made(settings)
        if template is not None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                _copy_new(template.file, path)
            except FileExistsError:  # (made meanwhile by another: opened as it is, nothing of it removed)
                template = None
            except OSError:  # (the template gone: made as always, from now on)
                _stop()
                path.unlink(missing_ok=True)
                template = None
    store = _open_store(settings)
    if isinstance(store, SqliteStore):
        if template is not None:
            store.created = True  # (the copy's tables are this open's: nothing an earlier release stored)
            _copied[store] = template
        if store.created:
            store.asked = []
    return store, template


def settle(store: Store, template: Template | None) -> None:
    """At the end of an Engine's start on a new store, inside its transaction: the first start's asks kept
    for a template; a copied store's asks compared with its template's -- a table or index the template
    made that this start did not ask for is dropped (and the template is not used again, as when this start
    asked for one it lacks)."""
    global _asked, _off
    if not isinstance(store, SqliteStore) or store.asked is None:
        return
    asked, store.asked = _first_asks(store.asked), None
    with _lock:
        if template is None:
            if _asked is None and not _off:
                _asked = asked
            return
        if asked == template.asked:
            return
        _off = True
    # the template's tables and indexes this start did not ask for (or asked for by another statement) dropped,
    # those asked for by another statement made by it (one asked for that the template lacks was made as always);
    # a table dropped drops its indexes with it, so each index of a stale table is stale too, made again by this
    # start's statement when it asked for it (else the store had lost it for good, every later ask a no-op:
    # rv44c LOW 2)
    stale = {name for name, sql in template.asked if (name, sql) not in set(asked)}
    if stale:
        rows = store.conn.execute("SELECT name, type, tbl_name FROM sqlite_master").fetchall()
        kinds = {name: kind for name, kind, _ in rows}
        stale |= {name for name, kind, table in rows if kind == "index" and table in stale
                  and kinds.get(table) == "table" and not name.startswith("sqlite_")}  # (its own: dropped with it)
        for name in sorted(stale, key=lambda n: kinds.get(n) != "index"):  # an index before its table
            if kinds.get(name) in ("index", "table"):
                store.conn.execute(f'DROP {kinds[name].upper()} IF EXISTS "{name}"')
            store._schema.discard(name)
        for name, sql in asked:
            if name in stale:
                store.conn.execute(sql)
                store._unsure.add(name)  # (as ``_schema_statement`` inside a transaction)


FILE_MODE = 0o644  # SQLite's SQLITE_DEFAULT_FILE_PERMISSIONS: what a database it makes is, whatever the umask


def _copy_new(source: Path, path: Path) -> None:
    """``source`` copied to ``path``, a file made now (``O_EXCL``: one that appeared since the start looked is
    no new store's, and is left alone) with the mode SQLite gives a database it makes, ``FILE_MODE`` whatever
    the umask (os_unix.c ``robust_open`` fchmods a new file to it): ``shutil.copyfile``'s ``0666 & ~umask``
    made the copied FHIR database group-writable under umask 002, world-writable under 000 (rv44c LOW 3)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # (the umask applies to open's mode, not to fchmod's)
        out = os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise
    with out, open(source, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)


def _stop() -> None:
    global _off
    with _lock:
        _off = True


def undo(store: Store) -> None:
    """After a start that failed was closed (``engine._closed_if_it_fails``): a copied store's file is made what
    the start without a template leaves -- the FHIR layout its open made, none of the parts' tables (they were
    the start's, which rolled back)."""
    template = _copied.pop(store, None) if isinstance(store, SqliteStore) else None
    if template is not None and store.closed:
        shutil.copyfile(template.opened, store.path)


def _first_asks(asked: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    seen: set[str] = set()
    out = []
    for name, sql in asked:
        if name not in seen:
            seen.add(name)
            out.append((name, sql))
    return tuple(out)


def _made(settings: Settings) -> Template | None:
    """The process's template: made on the first call after a start told its statements; None before
    that, after a start asked for other tables, or when it cannot be made."""
    global _template, _off
    with _lock:
        if _template is not None or _off or _asked is None:
            return _template if not _off else None
        folder = Path(tempfile.mkdtemp(prefix="huren-store-template-"))
        atexit.register(_remove, folder, os.getpid())
        try:
            store = _open_store(settings.with_(data_dir=folder, mongodb_uri=None))
            assert isinstance(store, SqliteStore)
            try:
                store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                shutil.copyfile(store.path, folder / "opened.sqlite3")
                with store.transaction():  # as the start makes them: in one transaction, in their order
                    for name, sql in _asked:
                        store._schema_statement(name, sql)
                store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                _close_unoptimized(store)
        except Exception:  # no template, and the start goes on as always (the error is the template's alone)
            log.warning("no store template in this process", exc_info=True)
            _off = True
            return None
        _template = Template(settings.with_(data_dir=folder).sqlite_path, _asked, folder / "opened.sqlite3")
        return _template


def _remove(folder: Path, pid: int) -> None:
    """The template's folder removed when the process that made it ends (not a forked child that exits)."""
    if os.getpid() == pid:
        shutil.rmtree(folder, ignore_errors=True)


def _close_unoptimized(store: SqliteStore) -> None:
    """Close the template's store without ``SqliteStore.close``'s ``PRAGMA optimize``: its statistics
    (``sqlite_stat1``) are no new store's."""
    with store.lock:
        store.closed = True
        for reader in store._reader_conns:
            reader.close()
        store._conn.close()
