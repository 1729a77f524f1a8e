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
from typing import Any

from engine.repository.port import Collection, Document, DuplicateKey, Store
from engine.repository.sqlite_store import SqliteStore

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

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        store.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (seq INTEGER PRIMARY KEY, hash BLOB NOT NULL, "
                      "data NOT NULL, nodes BLOB)")

    # -- the log's append
    def append(self, rows: Sequence[Leaf]) -> None:
        """Insert the rows: in the caller's transaction when it holds one (the log's append, whose
        transaction is all or nothing), else in one of their own."""
        if not self.store.in_transaction:
            with self.store.transaction():
                self.append(rows)
            return
        try:
            self.store.conn.executemany(_INSERT, rows)
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(f"{TABLE}: a sequence number is taken") from exc

    def last_seq(self) -> int | None:
        """The highest sequence number stored (one step down the table's B-tree)."""
        row = self.store.query(f"SELECT max(seq) FROM {TABLE}")
        return row[0][0] if row else None

    def records(self, since: int, limit: int) -> list[tuple[int, str | bytes]]:
        """``(seq, record bytes)`` from ``since`` on, in order: what the key indexer reads."""
        return self.store.query(f"SELECT seq, data FROM {TABLE} WHERE seq >= ? ORDER BY seq LIMIT ?", (since, limit))

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
        self.append([self._row(d) for d in docs])  # type: ignore[misc]

    def get(self, doc_id: str) -> Document | None:
        if not isinstance(doc_id, str) or not _KEY.fullmatch(doc_id):
            return None
        rows = self.store.query(f"SELECT seq, hash, data, nodes FROM {TABLE} WHERE seq = ?", (int(doc_id),))
        return self._doc(rows[0]) if rows else None

    def replace(self, doc: Document, *, upsert: bool = True) -> None:
        seq, leaf, data, nodes = self._row(doc)
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
        return self.store.execute(f"DELETE FROM {TABLE} WHERE seq = ?", (int(doc_id),)).rowcount > 0

    def find(self, filter: Document | None = None, *, sort: Sequence[tuple[str, int]] = (),
             limit: int | None = None, skip: int = 0) -> list[Document]:
        where, params = self._where(filter)
        sql = f"SELECT seq, hash, data, nodes FROM {TABLE} WHERE {where}"
        if sort:
            fields = {f for f, _ in sort}
            if not fields <= {"_id", "seq"}:
                raise ValueError(f"{TABLE} sorts by its key only, not {sorted(fields)}")
            sql += " ORDER BY seq " + ("DESC" if sort[0][1] < 0 else "ASC")
        if limit is not None or skip:
            sql += " LIMIT ? OFFSET ?"
            params = [*params, -1 if limit is None else limit, skip]
        return [self._doc(row) for row in self.store.query(sql, params)]

    def count(self, filter: Document | None = None) -> int:
        where, params = self._where(filter)
        return int(self.store.query(f"SELECT count(*) FROM {TABLE} WHERE {where}", params)[0][0])

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
    table = LeafTable(store)
    return table if table.adopt_documents() else store.collection(LEAVES)


def appender(leaves: LeafTable | Collection) -> LeafTable | DocumentLeaves:
    """What the log appends its ``Leaf`` rows through."""
    return leaves if isinstance(leaves, LeafTable) else DocumentLeaves(leaves)
