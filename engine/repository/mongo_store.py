"""The MongoDB backend (pymongo): plain collections map one-to-one; FHIR data lives in
``fhir_current`` and ``fhir_history`` (see ``engine.repository.mongo_fhir``).

Transactions: on a replica set (compose runs a one-node set) ``store.transaction()`` opens a
client session with a multi-document transaction; nested blocks join the outer one. The
session is per thread, so FastAPI worker threads do not share it. A standalone server or
mongomock cannot run multi-document transactions: there the block is a plain grouping and each
write is atomic on its own (said in the README).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pymongo
import pymongo.errors

from engine.repository.port import Document, DuplicateKey

try:  # mongomock keeps its own DuplicateKeyError (a pymongo subclass in recent versions)
    import mongomock

    _DUP: tuple[type[BaseException], ...] = (pymongo.errors.DuplicateKeyError, mongomock.DuplicateKeyError)
except ImportError:  # pragma: no cover - mongomock is a test dependency
    _DUP = (pymongo.errors.DuplicateKeyError,)


def _supports_transactions(client: Any) -> bool:
    if type(client).__module__.startswith("mongomock"):
        return False
    try:
        hello = client.admin.command("hello")
    except pymongo.errors.PyMongoError:
        return False
    return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"


class MongoStore:
    """``Store`` on one MongoDB database."""

    def __init__(self, client: Any, db_name: str = "huren") -> None:
        self.client = client
        self.db = client[db_name]
        self.transactions = _supports_transactions(client)
        self._local = threading.local()
        self._collections: dict[str, MongoCollection] = {}
        from engine.repository.mongo_fhir import MongoFhirBackend

        self.fhir = MongoFhirBackend(self)

    @property
    def in_transaction(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    @property
    def session(self) -> Any:
        return getattr(self._local, "session", None)

    def kw(self) -> dict[str, Any]:
        """Keyword arguments binding an operation to the current thread's transaction, if any."""
        session = self.session
        return {"session": session} if session is not None else {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        if depth > 0 or not self.transactions:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
            return
        session = self.client.start_session()
        self._local.session = session
        self._local.depth = 1
        try:
            session.start_transaction()
            try:
                yield
            except BaseException:
                session.abort_transaction()
                raise
            session.commit_transaction()
        finally:
            self._local.session = None
            self._local.depth = 0
            session.end_session()

    def collection(self, name: str) -> MongoCollection:
        coll = self._collections.get(name)
        if coll is None:
            coll = self._collections[name] = MongoCollection(self, name)
        return coll

    def close(self) -> None:
        self.client.close()


class MongoCollection:
    def __init__(self, store: MongoStore, name: str) -> None:
        self.name = name
        self.store = store
        self.raw = store.db[name]

    def ensure_index(self, fields: Sequence[str], *, unique: bool = False) -> None:
        if list(fields) == ["_id"]:
            return
        self.raw.create_index([(f, pymongo.ASCENDING) for f in fields], unique=unique)

    def insert(self, doc: Document) -> None:
        if not isinstance(doc.get("_id"), str):
            raise ValueError("documents need a string _id")
        try:
            self.raw.insert_one(dict(doc), **self.store.kw())
        except _DUP as exc:
            raise DuplicateKey(f"{self.name}: {doc['_id']}") from exc

    def insert_many(self, docs: Sequence[Document]) -> None:
        if not docs:
            return
        try:
            self.raw.insert_many([dict(d) for d in docs], **self.store.kw())
        except (*_DUP, pymongo.errors.BulkWriteError) as exc:
            raise DuplicateKey(f"{self.name}: duplicate key in batch") from exc

    def get(self, doc_id: str) -> Document | None:
        return self.raw.find_one({"_id": doc_id}, **self.store.kw())

    def replace(self, doc: Document, *, upsert: bool = True) -> None:
        try:
            self.raw.replace_one({"_id": doc["_id"]}, dict(doc), upsert=upsert, **self.store.kw())
        except _DUP as exc:
            raise DuplicateKey(f"{self.name}: {doc['_id']}") from exc

    def update(self, doc_id: str, fields: Document) -> bool:
        if "_id" in fields:
            raise ValueError("cannot change _id")
        result = self.raw.update_one({"_id": doc_id}, {"$set": dict(fields)}, **self.store.kw())
        return result.matched_count > 0

    def delete(self, doc_id: str) -> bool:
        return self.raw.delete_one({"_id": doc_id}, **self.store.kw()).deleted_count > 0

    def find(
        self,
        filter: Document | None = None,
        *,
        sort: Sequence[tuple[str, int]] = (),
        limit: int | None = None,
        skip: int = 0,
    ) -> list[Document]:
        cursor = self.raw.find(filter or {}, **self.store.kw())
        if sort:
            cursor = cursor.sort([(f, pymongo.DESCENDING if d < 0 else pymongo.ASCENDING) for f, d in sort])
        if skip:
            cursor = cursor.skip(skip)
        if limit is not None:
            if limit <= 0:
                return []
            cursor = cursor.limit(limit)
        return list(cursor)

    def count(self, filter: Document | None = None) -> int:
        return int(self.raw.count_documents(filter or {}, **self.store.kw()))
