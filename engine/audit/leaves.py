"""Where the audit log's records (its Merkle leaves) are kept: on SQLite a table of their own, keyed
by the sequence number; elsewhere (MongoDB) the log's document collection.

Every audited read appends a record, so the append's share of the commit is paid on every read.
Through the generic document store a record was a JSON document (its bytes escaped inside another
JSON text, its hashes in hex) under a zero-padded text ``_id``: a table B-tree by rowid plus the
``_id`` index B-tree, two right edges dirtied per commit. Here a row is ``(seq INTEGER PRIMARY KEY,
hash BLOB, data, nodes BLOB)``: one B-tree (the key is the rowid), the record's bytes as they were
hashed, the leaf hash and the tree nodes the leaf completed (``engine.audit.log.stored_nodes``) as
raw 32-byte hashes, written by one ``executemany`` of tuples (``Leaf``) the log builds directly.
Measured on a group of 8 reads' records: ~6.7-7.8 µs per record of CPU through the document table
against ~4.2-6.0 µs here, before the Python the documents cost.

Readers (verification, exports, proofs, the derived views, the tests that tamper with the log)
keep seeing documents ``{_id, seq, hash, data, nodes}`` exactly as before: ``LeafTable`` answers the
part of the ``Collection`` port they use, converting at the edge. Its key *is* the sequence number,
so a record cannot sit under another number than the one it states (two tamperings the document
layout allowed, a changed ``seq`` field and a second record under a foreign ``_id``, cannot be
written here at all).

A log kept in the document table by an earlier version is moved into this table once, at the first
start (one transaction; several workers starting at once move it once). A document table that
cannot be moved as it is (a record under an ``_id`` other than its number, a malformed hash) is
left where it is and used as before, so ``huren audit verify`` still names the damage.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.repository.port import Collection, Document, DuplicateKey, Store
from engine.repository.sqlite_store import SqliteStore

if TYPE_CHECKING:
    from engine.audit.record_files import FileEntry, RecordFiles

log = logging.getLogger(__name__)

LEAVES = "audit_log"  # the log's collection name (and, on SQLite, that of the table it moved from)
TABLE = "audit_leaves"
HASH_SIZE = 32
# one record as the append writes it: seq, leaf hash, the record's bytes, the hashes (levels 1, 2,
# ... concatenated) of the tree nodes this leaf completed, or None
Leaf = tuple[int, bytes, bytes, bytes | None]
_KEY = re.compile(r"\d{12}")
_INSERT = f"INSERT INTO {TABLE} (seq, hash, data, nodes) VALUES (?, ?, ?, ?)"


class LeavesDamaged(Exception):
    """The document table holds something the leaf table cannot state (see the module docstring)."""


def seq_key(seq: int) -> str:
    return f"{seq:012d}"


def leaf_document(seq: int, leaf: bytes | str, data: bytes | str, nodes: bytes | str | None) -> Document:
    """A leaf as the ``Collection`` port shows it: ``data`` as text, hashes in hex."""
    doc: Document = {"_id": seq_key(seq), "seq": seq, "hash": leaf.hex() if isinstance(leaf, bytes) else leaf,
                     "data": data.decode() if isinstance(data, bytes) else data}
    if isinstance(nodes, bytes):
        doc["nodes"] = [nodes[i:i + HASH_SIZE].hex() for i in range(0, len(nodes), HASH_SIZE)]
    elif nodes is not None:
        doc["nodes"] = nodes
    return doc


class DocumentLeaves:
    """The leaves as documents of the log's collection (MongoDB, or a SQLite log left in place)."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def append(self, rows: Sequence[Leaf]) -> None:
        self.collection.insert_many([leaf_document(*row) for row in rows])

    def last_seq(self) -> int | None:
        last = self.collection.find(sort=[("_id", -1)], limit=1)
        return int(last[0]["seq"]) if last else None

    def records(self, since: int, limit: int) -> list[tuple[int, str | bytes]]:
        docs = self.collection.find({"_id": {"$gte": seq_key(since)}}, sort=[("_id", 1)], limit=limit)
        return [(int(d["seq"]), d["data"]) for d in docs]


class LeafTable:
    """The leaves in ``audit_leaves`` (SQLite): ``append`` for the log, the ``Collection`` port for
    readers (filters and sorts on ``_id`` or ``seq``, as the log's readers use them)."""

    name = LEAVES

    def __init__(self, store: SqliteStore, files: RecordFiles | None = None) -> None:
        self.store = store
        # storage layout 3: records drained from the segment go to record files
        # (``engine.audit.record_files``); rows an earlier layout put in the table stay there
        self.files = files
        store.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (seq INTEGER PRIMARY KEY, hash BLOB NOT NULL, "
                      "data NOT NULL, nodes BLOB)")

    # -- the log's append
    def append(self, rows: Sequence[Leaf], source: tuple[int, int, int] | None = None) -> None:
        """Insert the rows (``source``: where their frames are, ``(fd, offset, length)``, when the
        caller has them in a file: ``RecordFiles.append``): in the
        caller's transaction when it holds one (the log's append, whose transaction is all or
        nothing), else in one of their own."""
        if not self.store.in_transaction:
            with self.store.transaction():
                self.append(rows, source)
            return
        if self.files is not None:
            table_last = self._table_last()
            if table_last is not None and rows and rows[0][0] <= table_last:
                raise DuplicateKey(f"{TABLE}: a sequence number is taken")
            self.files.append(rows, source)
            return
        try:
            self.store.conn.executemany(_INSERT, rows)
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(f"{TABLE}: a sequence number is taken") from exc

    def _table_last(self) -> int | None:
        row = self.store.query(f"SELECT max(seq) FROM {TABLE}")
        return row[0][0] if row else None

    def last_seq(self) -> int | None:
        """The highest sequence number stored (one step down the table's B-tree; the record files'
        index)."""
        last = self._table_last()
        held = self.files.last_seq() if self.files is not None else None
        return last if held is None else held if last is None else max(last, held)

    def records(self, since: int, limit: int) -> list[tuple[int, str | bytes]]:
        """``(seq, record bytes)`` from ``since`` on, in order: what the key indexer reads."""
        rows = self.store.query(f"SELECT seq, data FROM {TABLE} WHERE seq >= ? ORDER BY seq LIMIT ?", (since, limit))
        if self.files is None:
            return rows
        held = [(seq, data) for seq, _leaf, data, _nodes in self.files.rows(since, _MAX_SEQ, limit=limit)]
        return sorted(rows + held)[:limit] if rows else held

    # -- the Collection port, for readers and tools
    def ensure_index(self, fields: Sequence[str], *, unique: bool = False) -> None:
        """Nothing to do: the only key is the sequence number, the table's own."""

    @staticmethod
    def _row(doc: Document) -> tuple[int, bytes | str, str, bytes | str | None]:
        key, seq = doc.get("_id"), doc.get("seq")
        if not isinstance(key, str) or not _KEY.fullmatch(key) or seq != int(key):
            raise ValueError(f"{TABLE}: a leaf's _id is its zero-padded seq (got {key!r}, seq {seq!r})")
        leaf, nodes = doc.get("hash"), doc.get("nodes")
        try:
            leaf = bytes.fromhex(leaf) if isinstance(leaf, str) else leaf
            nodes = bytes.fromhex("".join(nodes)) if isinstance(nodes, list) else nodes
        except ValueError:
            pass  # stored as given: verification names what it cannot read
        return seq, leaf, doc["data"], nodes

    @staticmethod
    def _doc(row: tuple[Any, ...]) -> Document:
        return leaf_document(*row)

    def insert(self, doc: Document) -> None:
        self.insert_many([doc])

    def insert_many(self, docs: Sequence[Document]) -> None:
        rows = [self._row(d) for d in docs]
        if self.files is None or not rows:
            self.append(rows)  # type: ignore[arg-type]
            return
        with self.store.transaction():
            last = self.last_seq()
            seqs = [row[0] for row in rows]
            if (last is None or seqs[0] > last) and seqs == sorted(set(seqs)) and self._in_files(seqs[0]) is not None \
                    and all(isinstance(row[1], bytes) for row in rows):
                self.append([(s, h, d.encode() if isinstance(d, str) else d, n)  # type: ignore[misc]
                             for s, h, d, n in rows])
                return
            for row in rows:  # one at a time: into the middle of what is held (a test's tampering)
                entries = self._in_files(row[0])
                if entries is None:
                    try:
                        self.store.conn.execute(_INSERT, row)
                    except sqlite3.IntegrityError as exc:
                        raise DuplicateKey(f"{TABLE}: record {row[0]} exists") from exc
                else:
                    self._change_file(entries, row, row[0], "insert")  # type: ignore[arg-type]

    def get(self, doc_id: str) -> Document | None:
        if not isinstance(doc_id, str) or not _KEY.fullmatch(doc_id):
            return None
        seq = int(doc_id)
        if self.files is not None:
            entry = self.files.covering(seq)
            held = self.files.rows(seq, seq, entries=[entry]) if entry is not None else []
            if held:
                return self._doc(held[0])
        rows = self.store.query(f"SELECT seq, hash, data, nodes FROM {TABLE} WHERE seq = ?", (seq,))
        return self._doc(rows[0]) if rows else None

    # -- changes through the port (tools, tests): records in a record file are changed in it
    def _in_files(self, seq: int) -> list[FileEntry] | None:
        """The record files' entries when record ``seq`` belongs in them (in a file's range, or
        after every record the table holds), else ``None`` (a row of the table)."""
        if self.files is None:
            return None
        entries = self.files.entries()
        if entries:
            return entries if seq >= entries[0].first else None
        last = self._table_last()
        return entries if last is None or seq > last else None

    def _change_file(self, entries: list[FileEntry], row: Leaf | None, seq: int, mode: str) -> bool:
        """Insert (``mode`` "insert"), replace ("replace", "update") or delete (``row`` None) record
        ``seq`` in the record files. In a transaction."""
        files = self.files
        assert files is not None
        if row is not None and not (isinstance(row[1], bytes) and len(row[1]) == HASH_SIZE
                                    and (row[3] is None or isinstance(row[3], bytes))):
            raise ValueError(f"{TABLE}: a record file holds 32-byte hashes, not {row[1]!r}")
        if row is not None and isinstance(row[2], str):
            row = (row[0], row[1], row[2].encode(), row[3])
        entry = files.covering(seq, entries)
        if entry is None:
            if row is None or mode == "update":
                return False
            files.append([row])  # after every record held
            return True
        by_seq = {r[0]: r for r in files.file_rows(entry)}
        if mode == "insert" and seq in by_seq:
            raise DuplicateKey(f"{TABLE}: record {seq} exists")
        if seq not in by_seq and (row is None or mode == "update"):
            return False
        if row is None:
            del by_seq[seq]
        else:
            by_seq[seq] = row
        files.rewrite(entry, [by_seq[k] for k in sorted(by_seq)])
        return True

    def replace(self, doc: Document, *, upsert: bool = True) -> None:
        seq, leaf, data, nodes = self._row(doc)
        entries = self._in_files(seq)
        if entries is not None:
            with self.store.transaction():
                self._change_file(entries, (seq, leaf, data, nodes), seq,  # type: ignore[arg-type]
                                  "replace" if upsert else "update")
            return
        if upsert:
            self.store.execute(f"INSERT OR REPLACE INTO {TABLE} (seq, hash, data, nodes) VALUES (?, ?, ?, ?)",
                               (seq, leaf, data, nodes))
        else:
            self.store.execute(f"UPDATE {TABLE} SET hash = ?, data = ?, nodes = ? WHERE seq = ?",
                               (leaf, data, nodes, seq))

    def update(self, doc_id: str, fields: Document) -> bool:
        with self.store.transaction():
            doc = self.get(doc_id)
            if doc is None:
                return False
            doc.update(fields)
            self.replace(doc)
            return True

    def delete(self, doc_id: str) -> bool:
        if not isinstance(doc_id, str) or not _KEY.fullmatch(doc_id):
            return False
        entries = self._in_files(int(doc_id))
        if entries is not None:
            with self.store.transaction():
                return self._change_file(entries, None, int(doc_id), "delete")
        return self.store.execute(f"DELETE FROM {TABLE} WHERE seq = ?", (int(doc_id),)).rowcount > 0

    def find(self, filter: Document | None = None, *, sort: Sequence[tuple[str, int]] = (),
             limit: int | None = None, skip: int = 0) -> list[Document]:
        where, params = self._where(filter)
        sql = f"SELECT seq, hash, data, nodes FROM {TABLE} WHERE {where}"
        descending = False
        if sort:
            fields = {f for f, _ in sort}
            if not fields <= {"_id", "seq"}:
                raise ValueError(f"{TABLE} sorts by its key only, not {sorted(fields)}")
            descending = sort[0][1] < 0
            sql += " ORDER BY seq " + ("DESC" if descending else "ASC")
        held = self._held(filter, None if limit is None else limit + skip, descending)
        if held is None:  # no record files: the table is the log
            if limit is not None or skip:
                sql += " LIMIT ? OFFSET ?"
                params = [*params, -1 if limit is None else limit, skip]
            return [self._doc(row) for row in self.store.query(sql, params)]
        if not sort:
            sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params = [*params, limit + skip]
        rows = self.store.query(sql, params)
        rows = sorted(rows + held, key=lambda row: row[0], reverse=descending) if rows else held
        end = None if limit is None else skip + limit
        return [self._doc(row) for row in rows[skip:end]]

    def count(self, filter: Document | None = None) -> int:
        where, params = self._where(filter)
        held = self._held(filter, None, False)
        return int(self.store.query(f"SELECT count(*) FROM {TABLE} WHERE {where}", params)[0][0]) + len(held or ())

    def _held(self, filter: Document | None, limit: int | None, descending: bool) -> list[Leaf] | None:
        """The records in record files ``filter`` selects, in order (``None``: there are none)."""
        if self.files is None:
            return None
        entries = self.files.entries()
        if not entries:
            return None
        lo, hi, wanted = _bounds(filter)
        if wanted is not None:  # a list of keys (the proofs' nodes): each read where it is
            keys = sorted((k for k in wanted if lo <= k <= hi), reverse=descending)
            out: list[Leaf] = []
            for key in keys:
                entry = self.files.covering(key, entries)
                if entry is not None:
                    out.extend(self.files.rows(key, key, entries=[entry]))
                if limit is not None and len(out) >= limit:
                    break
            return out
        if lo > hi:
            return []
        return self.files.rows(lo, hi, limit=limit, descending=descending, entries=entries)

    @staticmethod
    def _where(filter: Document | None) -> tuple[str, list[Any]]:
        """``_id`` (zero-padded text, compared as text) or ``seq`` conditions as conditions on the key."""
        terms: list[str] = []
        params: list[Any] = []
        ops = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
        for field, cond in (filter or {}).items():
            if field not in ("_id", "seq"):
                raise ValueError(f"{TABLE} filters on its key only, not {field!r}")
            conds = cond if isinstance(cond, dict) else {"$eq": cond}
            for op, value in conds.items():
                if op == "$in":
                    keys = [_key_of(field, v) for v in value]
                    keys = [k for k in keys if k is not None]
                    terms.append(f"seq IN ({','.join('?' * len(keys))})" if keys else "0")
                    params.extend(keys)
                elif op == "$eq":
                    key = _key_of(field, value)
                    terms.append("seq = ?" if key is not None else "0")
                    params.extend([key] if key is not None else [])
                elif op in ops:
                    term = _range_term(field, op, value)
                    if term is not None:
                        terms.append(term[0])
                        params.append(term[1])
                else:
                    raise ValueError(f"unsupported filter operator {op!r}")
        return (" AND ".join(terms) or "1"), params

    # -- moving an earlier version's document table here
    def adopt_documents(self) -> bool:
        """Move the leaves kept in the document table (``doc_audit_log``) into this table, once.
        Returns False (and moves nothing) when they cannot be stated here as they are."""
        conn = self.store.conn
        with self.store.lock:
            present = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                   (f"doc_{LEAVES}",)).fetchone()
            if present is None or conn.execute(f'SELECT 1 FROM "doc_{LEAVES}" LIMIT 1').fetchone() is None:
                return True  # nothing to move (no write transaction: `huren audit verify` only reads)
            with self.store.transaction():  # the write lock: a second worker finds the work done
                if conn.execute(f'SELECT 1 FROM "doc_{LEAVES}" LIMIT 1').fetchone() is None:
                    return True
                if conn.execute(f"SELECT 1 FROM {TABLE} LIMIT 1").fetchone() is not None:
                    # records appended to the old table after the move (an earlier version still
                    # running beside this one): neither table alone is the log; refuse, as a damaged
                    # tree is refused, rather than append to half of it
                    raise RuntimeError(f"audit log split between doc_{LEAVES} and {TABLE}; stop every "
                                       "earlier version's process and move the records by hand")
                from engine import fhirjson

                rows: list[Leaf] = []
                for key, body in conn.execute(f'SELECT id, body FROM "doc_{LEAVES}" ORDER BY id'):
                    doc = fhirjson.loads(body)
                    try:
                        seq, leaf, data, nodes = self._row({"_id": key, **doc})
                    except (ValueError, KeyError, TypeError):
                        log.warning("audit: leaf %r cannot move to %s; the log stays in its document table", key, TABLE)
                        return False
                    if not isinstance(leaf, bytes) or not isinstance(data, str) or not (
                            nodes is None or isinstance(nodes, bytes)):
                        log.warning("audit: leaf %r is malformed; the log stays in its document table", key)
                        return False
                    rows.append((seq, leaf, data.encode(), nodes))
                    if len(rows) >= 5000:
                        conn.executemany(_INSERT, rows)
                        rows = []
                conn.executemany(_INSERT, rows)
                conn.execute(f'DELETE FROM "doc_{LEAVES}"')
            return True


_MAX_SEQ = (1 << 63) - 1


def _bounds(filter: Document | None) -> tuple[int, int, set[int] | None]:
    """``_where``'s conditions as an inclusive range of sequence numbers and, for ``$eq``/``$in``,
    the keys wanted (validated as ``_where`` does)."""
    lo, hi, wanted = 0, _MAX_SEQ, None
    for field, cond in (filter or {}).items():
        conds = cond if isinstance(cond, dict) else {"$eq": cond}
        for op, value in conds.items():
            if op in ("$in", "$eq"):
                keys = {_key_of(field, v) for v in (value if op == "$in" else [value])} - {None}
                wanted = keys if wanted is None else wanted & keys  # type: ignore[operator]
            else:
                term = _range_term(field, op, value)
                if term is None:
                    continue
                bound = term[1]
                if op == "$gt":
                    lo = max(lo, bound + 1)
                elif op == "$gte":
                    lo = max(lo, bound)
                elif op == "$lt":
                    hi = min(hi, bound - 1)
                else:
                    hi = min(hi, bound)
    return lo, hi, wanted  # type: ignore[return-value]


def _key_of(field: str, value: Any) -> int | None:
    if field == "seq":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return int(value) if isinstance(value, str) and _KEY.fullmatch(value) else None


def _range_term(field: str, op: str, value: Any) -> tuple[str, int] | None:
    """A range condition on the key. On ``_id`` a bound is text: any 12-digit key compares as its
    number; the empty string is below every key (the readers' "from the start")."""
    sym = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]
    if field == "seq":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"seq compares with integers, not {value!r}")
        return f"seq {sym} ?", value
    if value == "" and op in ("$gt", "$gte"):
        return None
    if isinstance(value, str) and _KEY.fullmatch(value):
        return f"seq {sym} ?", int(value)
    raise ValueError(f"{TABLE}: an _id bound is a 12-digit key, not {value!r}")


def open_leaves(store: Store) -> LeafTable | Collection:
    """The log's leaves on ``store``: the leaf table on SQLite (moving an earlier document table in),
    the document collection elsewhere or when that table cannot be moved."""
    if not isinstance(store, SqliteStore):
        return store.collection(LEAVES)
    files = None
    if str(store.path) != ":memory:":
        from engine.audit.record_files import RecordFiles, records_directory

        files = RecordFiles(store, records_directory(store.path))
    table = LeafTable(store, files)
    return table if table.adopt_documents() else store.collection(LEAVES)


def appender(leaves: LeafTable | Collection) -> LeafTable | DocumentLeaves:
    """What the log appends its ``Leaf`` rows through."""
    return leaves if isinstance(leaves, LeafTable) else DocumentLeaves(leaves)
