"""The MongoDB backend (pymongo): plain collections map one-to-one; FHIR data lives in
``fhir_current`` and ``fhir_history`` (see ``engine.repository.mongo_fhir``).

Transactions: on a replica set (compose runs a one-node set) ``store.transaction()`` opens a
client session with a multi-document transaction; nested blocks join the outer one. The
session is per thread, so FastAPI worker threads do not share it. A standalone server or
mongomock cannot run multi-document transactions: there the outermost block keeps an undo
journal (``_Undo``), the documents each of its writes replaced, and puts them back when the
block raises, so that a block that fails leaves nothing of it stored on every deployment.

What the undo journal does not give (said in the README): it is in memory, so a process killed
between a write and the end of its block leaves that write stored (a replay then finds the
resources unchanged: no new versions, nothing doubled); other writers see a block's writes
before it ends; and a document another writer changed meanwhile is put back as it was before
the block. Production runs a replica set (docker compose runs a one-node set), where none of
this arises. Nested blocks join the outer one on both (no savepoint): ``savepoints`` is False,
so the ingest pipeline writes each message of a redone batch in a top-level block of its own.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pymongo
import pymongo.errors

from engine.errors import WrittenMeanwhile
from engine.repository.port import Document, DuplicateKey, UndoIncomplete

try:  # mongomock keeps its own DuplicateKeyError (a pymongo subclass in recent versions)
    import mongomock

    _DUP: tuple[type[BaseException], ...] = (pymongo.errors.DuplicateKeyError, mongomock.DuplicateKeyError)
    _IN_PROCESS: tuple[type, ...] = (mongomock.MongoClient,)
except ImportError:  # pragma: no cover - mongomock is a test dependency
    _DUP = (pymongo.errors.DuplicateKeyError,)
    _IN_PROCESS = ()

_IN_PROCESS_STEP = threading.Lock()


def _one_step(client: Any) -> contextlib.AbstractContextManager[Any]:
    """What makes a ``find_one_and_update`` one step on ``client``: nothing on a server (it is atomic there);
    on mongomock one lock for every in-process client. mongomock runs it as a ``find_one`` and then an update
    in the calling thread, so two threads could both be handed the same before-image while both ``$inc``s
    land (CI 136: two counters returned 149, none 150, the total right). The port promises each caller its
    own value (``Collection.increment``); the in-process double now keeps that promise too. One lock, not
    one a client: mongomock clients are equal (and hash alike) by address, so a table of locks keyed by
    client handed two threads two locks when an equal client's entry was collected between their look-ups
    (CI 140)."""
    return _IN_PROCESS_STEP if isinstance(client, _IN_PROCESS) else contextlib.nullcontext()


log = logging.getLogger("huren.repository")


class _Undo:
    """What an outermost ``transaction()`` block wrote on a backend without transactions: per
    write, what it wrote and how to put back what was there before, in write order; ``undo``
    puts them back, newest first.

    Why a journal of before-images and not a refusal to write without transactions: the writes
    of a block are known exactly as they are made (a collection's replace, update or delete
    reads the document it changes first, by ``_id``; an insert needs no read; a FHIR version put
    is undone from the version it replaced, ``MongoFhirBackend._put_back``), so they can be
    undone exactly; refusing would leave mongomock (the test backend) and standalone servers
    unable to ingest at all. The cost is paid only there (a replica set's transaction aborts by
    itself). Reading the FHIR puts' images too (``find_one_and_replace`` or ``find_one``) made
    ingest on mongomock twice as slow (48 -> 92 ms a 12-OBX message in batches of 50: mongomock
    scans the collection for any filter); rebuilt on undo, it costs nothing measurable (48.8 ->
    49.6 ms, 2 pairs). The first image of a document is the one that counts: undone newest
    first, the oldest image is written last."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[tuple[str, Callable[[], None]]] = []

    def wrote(self, raw: Any, doc_id: str, before: Document | None) -> None:
        """``raw`` (a pymongo collection) held ``before`` (None: nothing) under ``doc_id``."""
        def put_back() -> None:
            if before is None:
                raw.delete_one({"_id": doc_id})
            else:
                raw.replace_one({"_id": doc_id}, before, upsert=True)

        self.entries.append((f"{raw.name}/{doc_id}", put_back))

    def then(self, what: str, put_back: Callable[[], None]) -> None:
        """An undo action of the caller's own (``mongo_fhir``: a version put, rebuilt from the
        version it replaced, which the repository holds, so no read is needed)."""
        self.entries.append((what, put_back))

    def undo(self, cause: BaseException) -> None:
        """Put back every document the block changed, newest first; every entry is tried even when
        one fails (any exception), and then ``UndoIncomplete`` is raised, naming what stays stored,
        with ``cause`` (the block's own error) as its cause: a caller told only the block's error
        would report "nothing kept" while writes of the block stayed stored."""
        left: list[str] = []
        first: BaseException | None = None
        for what, put_back in reversed(self.entries):
            try:
                put_back()
            except Exception as exc:
                log.exception("MongoDB: could not undo the write of %s of a failed block", what)
                left.append(what)
                first = first or exc
        self.entries.clear()
        if left:
            raise UndoIncomplete(
                f"a failed block ({type(cause).__name__}: {cause}) could not be undone: {len(left)} write(s) "
                f"left stored ({', '.join(left[:10])}{', ...' if len(left) > 10 else ''}); first undo error: "
                f"{type(first).__name__}: {first}", left) from cause


def _supports_transactions(client: Any) -> bool:
    if type(client).__module__.startswith("mongomock"):
        return False
    try:
        hello = client.admin.command("hello")
    except pymongo.errors.PyMongoError:
        return False
    return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"


def _no_collection(db: Any) -> bool:
    """A database with no collection (``Store.created``); a user not allowed to list them (an unusual
    role) gets False: the once-per-store upgrades then run, as on any store."""
    try:
        return not db.list_collection_names()
    except pymongo.errors.OperationFailure:
        return False


class MongoStore:
    """``Store`` on one MongoDB database."""

    # nested ``transaction()`` blocks join the outer one: a failing nested block cannot be undone
    # alone (the ingest pipeline reads this, ``Ingestor._write_each``)
    savepoints = False

    def __init__(self, client: Any, db_name: str = "huren") -> None:
        self.client = client
        self.db = client[db_name]
        self.transactions = _supports_transactions(client)
        self._local = threading.local()
        self._collections: dict[str, MongoCollection] = {}
        self.created = _no_collection(self.db)  # ``Store.created``
        from engine.repository.mongo_fhir import MongoFhirBackend

        self.fhir = MongoFhirBackend(self)

    @property
    def in_transaction(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    @property
    def session(self) -> Any:
        return getattr(self._local, "session", None)

    @property
    def undo(self) -> _Undo | None:
        """The undo journal of this thread's outermost block, on a backend without transactions
        (None elsewhere, and outside a block: a write then stands alone)."""
        return getattr(self._local, "undo", None)

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (once) after this thread's outermost block is rolled back -- its
        transaction aborted or its writes undone -- outside the block; nothing when it ends well or
        outside a block. Why: a participant keeping state in memory about what it wrote (the audit
        log's right edge) must learn that its writes are gone, or it numbers past a hole."""
        if getattr(self._local, "depth", 0) == 0:
            return
        self._once("on_rollback", callback)

    def after_commit(self, callback: Callable[[], None]) -> bool:
        """Inside this thread's outermost MongoDB transaction: run ``callback`` (once) after it commits, outside it,
        and answer True; a rolled-back transaction drops it. False everywhere else (no transaction: a standalone
        server or mongomock, or outside a block): the caller does its write now.

        Why: a document every writer replaces -- the compartments' stamp (``mpi._Links.touched``) -- written inside
        two workers' transactions at once is a WriteConflict (``TransientTransactionError``) for the second on a
        replica set, and nothing retries it: the message failed for a stamp (rv43a MED 4). Written after the commit
        it conflicts with nothing; a reader between the commit and the stamp serves its remembered compartment a
        moment longer, never after the writer answered (the callbacks run before ``transaction()`` returns)."""
        if getattr(self._local, "depth", 0) == 0 or self.session is None:
            return False
        self._once("after_commit", callback)
        return True

    def _once(self, name: str, callback: Callable[[], None]) -> None:
        """``callback`` added once to this thread's list ``name`` (``on_rollback``, ``after_commit``)."""
        callbacks = getattr(self._local, name, None)
        if callbacks is None:
            callbacks = []
            setattr(self._local, name, callbacks)
        if callback not in callbacks:
            callbacks.append(callback)

    def _committed(self) -> None:
        """The callbacks of ``after_commit``, each tried (one failing is logged: the transaction stands)."""
        self._run("after_commit", "an after-commit")

    def _rolled_back(self) -> None:
        """The callbacks of ``on_rollback``, each tried (one failing is logged: the block's error,
        or the undo's, is what the caller must see)."""
        self._run("on_rollback", "a rollback")

    def _run(self, name: str, what: str) -> None:
        """This thread's list ``name`` taken (``_once``) and each of its callbacks tried, one failing logged as
        ``what`` callback."""
        callbacks = getattr(self._local, name, None) or []
        setattr(self._local, name, None)
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("MongoDB: %s callback failed", what)

    def kw(self) -> dict[str, Any]:
        """Keyword arguments binding an operation to the current thread's transaction, if any."""
        session = self.session
        return {"session": session} if session is not None else {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        if depth > 0:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
            return
        if not self.transactions:  # the outermost block on a standalone server or mongomock
            undo = self._local.undo = _Undo()
            self._local.depth = 1
            try:
                yield
            except BaseException as exc:
                try:
                    undo.undo(exc)
                finally:
                    self._local.undo = None
                    self._local.depth = 0
                    self._rolled_back()
                raise
            finally:
                self._local.undo = None
                self._local.depth = 0
                self._local.on_rollback = None
            return
        session = self.client.start_session()
        self._local.session = session
        self._local.depth = 1
        try:
            session.start_transaction()
            try:
                yield
            except BaseException:
                try:
                    session.abort_transaction()
                finally:
                    self._local.session = None
                    self._local.depth = 0
                    self._local.after_commit = None
                    self._rolled_back()
                raise
            session.commit_transaction()
        except BaseException:
            self._local.after_commit = None  # (the commit itself failed: never run after the next one -- rv43b)
            raise
        finally:
            self._local.session = None
            self._local.depth = 0
            self._local.on_rollback = None
            session.end_session()
        self._committed()

    def collection(self, name: str) -> MongoCollection:
        coll = self._collections.get(name)
        if coll is None:
            coll = self._collections[name] = MongoCollection(self, name)
        return coll

    def close(self) -> None:
        self.closed = True  # see SqliteStore.closed
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

    def drop_index(self, fields: Sequence[str]) -> None:
        name = "_".join(f"{f}_1" for f in fields)  # the name create_index gave it
        if name in self.raw.index_information():
            with contextlib.suppress(pymongo.errors.OperationFailure):  # dropped meanwhile elsewhere
                self.raw.drop_index(name)

    def insert(self, doc: Document) -> None:
        if not isinstance(doc.get("_id"), str):
            raise ValueError("documents need a string _id")
        try:
            self.raw.insert_one(dict(doc), **self.store.kw())
        except _DUP as exc:
            raise DuplicateKey(f"{self.name}: {doc['_id']}") from exc
        if (undo := self.store.undo) is not None:
            undo.wrote(self.raw, doc["_id"], None)

    def insert_many(self, docs: Sequence[Document]) -> None:
        if not docs:
            return
        undo = self.store.undo
        try:
            self.raw.insert_many([dict(d) for d in docs], **self.store.kw())
        except (*_DUP, pymongo.errors.BulkWriteError) as exc:
            # ordered: the documents before the refused one were inserted
            inserted = int((getattr(exc, "details", None) or {}).get("nInserted", 0))
            if undo is not None:
                for d in docs[:inserted]:
                    undo.wrote(self.raw, d["_id"], None)
            raise DuplicateKey(f"{self.name}: duplicate key in batch", inserted) from exc
        if undo is not None:
            for d in docs:
                undo.wrote(self.raw, d["_id"], None)

    def get(self, doc_id: str) -> Document | None:
        return self.raw.find_one({"_id": doc_id}, **self.store.kw())

    def holds(self, doc_id: str) -> bool:
        return self.raw.find_one({"_id": doc_id}, {"_id": 1}, **self.store.kw()) is not None

    def replace(self, doc: Document, *, upsert: bool = True) -> None:
        undo = self.store.undo
        before = self.raw.find_one({"_id": doc["_id"]}) if undo is not None else None
        try:
            result = self.raw.replace_one({"_id": doc["_id"]}, dict(doc), upsert=upsert, **self.store.kw())
        except _DUP as exc:
            raise DuplicateKey(f"{self.name}: {doc['_id']}") from exc
        if undo is not None and (result.matched_count or result.upserted_id is not None):
            undo.wrote(self.raw, doc["_id"], before)

    def update(self, doc_id: str, fields: Document) -> bool:
        if "_id" in fields:
            raise ValueError("cannot change _id")
        undo = self.store.undo
        before = self.raw.find_one({"_id": doc_id}) if undo is not None else None
        result = self.raw.update_one({"_id": doc_id}, {"$set": dict(fields)}, **self.store.kw())
        if undo is not None and result.matched_count:
            undo.wrote(self.raw, doc_id, before)
        return result.matched_count > 0

    @contextmanager
    def _race_lost_as_written_meanwhile(self, doc_id: str) -> Iterator[None]:
        """A compare-and-set's write (``update_if``, ``replace_if``, ``delete_if``) refused on a replica set because
        another transaction wrote the document first is a compare-and-set lost, the same as ``where`` no longer
        holding -- said as the repository says a race (``WrittenMeanwhile``, a 409) rather than a 500, and what a
        caller that reads again and retries (``Reviews.review``) catches. Any other failure is raised as it is."""
        try:
            yield
        except pymongo.errors.OperationFailure as exc:
            if exc.code == 112 or exc.has_error_label("TransientTransactionError"):
                raise WrittenMeanwhile(f"{self.name}/{doc_id} was written by another transaction meanwhile") from None
            raise

    def update_if(self, doc_id: str, where: Document, fields: Document) -> bool:
        """``port.Collection.update_if``: one ``find_one_and_update`` whose filter is ``_id`` and ``where``, atomic on
        the server with or without transactions; the document before it is what a failed block puts back."""
        if "_id" in fields or "_id" in where:
            raise ValueError("cannot change _id")
        with self._race_lost_as_written_meanwhile(doc_id):
            before = self.raw.find_one_and_update({**where, "_id": doc_id}, {"$set": dict(fields)}, **self.store.kw())
        if before is None:
            return False
        if (undo := self.store.undo) is not None:
            undo.wrote(self.raw, doc_id, before)
        return True

    def replace_if(self, doc: Document, where: Document | None) -> bool:
        """``port.Collection.replace_if``: one ``find_one_and_replace`` whose filter is ``_id`` and ``where`` (or one
        ``insert_one`` for ``where`` None), atomic on the server with or without transactions.

        Undone on a failed block without transactions only while the document is still the one this call wrote (read
        back equal, and ``where``'s fields still as it wrote them): put back unconditionally, as ``replace``'s
        before-image is, the row of
        before this write went back over a compare-and-set stored since by another process -- an auditor's review
        answered 200 lost again (rv43b HIGH 3's mechanism). This write then stays, the other's on it: the next decision
        of the row redoes it."""
        doc_id = doc.get("_id")
        if not isinstance(doc_id, str):
            raise ValueError("documents need a string _id")
        if where is not None and "_id" in where:
            raise ValueError("cannot condition on _id")
        undo = self.store.undo
        with self._race_lost_as_written_meanwhile(doc_id):
            if where is None:
                try:
                    self.raw.insert_one(dict(doc), **self.store.kw())
                except _DUP:
                    return False
                before = None
            else:
                before = self.raw.find_one_and_replace({**where, "_id": doc_id}, dict(doc), **self.store.kw())
                if before is None:
                    return False
        if undo is not None:
            # (the filter names ``where``'s fields as this write left them, so that a compare-and-set stored since on
            # them -- a review's count -- is never put back over, even between the read and the put-back)
            raw, made = self.raw, {**doc, **{k: doc.get(k) for k in where or ()}}

            def put_back() -> None:
                if raw.find_one({"_id": doc_id}) != doc:
                    return  # another's write is on it: it stays
                if before is None:
                    raw.delete_one(made)
                else:
                    raw.replace_one(made, before)

            undo.then(f"{raw.name}/{doc_id}", put_back)
        return True

    def increment(self, doc_id: str, field: str, *, by: int = 1, fields: Document | None = None,
                  on_insert: Document | None = None, add: Document | None = None) -> tuple[Document | None, Document]:
        """``port.Collection.increment``: one ``find_one_and_update`` with ``$inc`` (upsert), and ``$addToSet`` for
        ``add``, atomic on the server with or without transactions. It returns the document before, from which the
        one after is exact (the update is this one step). Undone on a failed block without transactions by the
        inverse ``$inc`` and a ``$pull`` of the values this call added, ``$unset`` of the fields it set or added that
        the document did not have (a list only once empty again), and removing a document this call created
        once it is back at 0 -- not by the before-image: another process's increments made meanwhile stay counted
        (a value this call added that another process added too meanwhile goes with it: it cannot be told apart).
        Two processes creating the document at once: the loser's upsert fails on the ``_id`` (MongoDB before 4.2,
        and mongomock; later servers retry it themselves) and is sent once more, when it matches (fid37)."""
        set_ = dict(fields or {})
        adds = {k: list(dict.fromkeys(v)) for k, v in (add or {}).items() if v}
        if "_id" in set_ or field == "_id" or "_id" in adds:
            raise ValueError("cannot change _id")
        if adds.keys() & (set_.keys() | {field}):
            raise ValueError("a field is added to and set, or counted, at once")
        insert = {k: v for k, v in (on_insert or {}).items() if k not in set_ and k not in adds and k not in (field, "_id")}
        update: Document = {"$inc": {field: by}}
        if set_:
            update["$set"] = set_
        if insert:
            update["$setOnInsert"] = insert
        if adds:
            update["$addToSet"] = {k: {"$each": v} for k, v in adds.items()}
        with _one_step(self.store.client):
            try:
                before = self.raw.find_one_and_update({"_id": doc_id}, update, upsert=True,
                                                      return_document=pymongo.ReturnDocument.BEFORE, **self.store.kw())
            except _DUP:  # another process created it between this upsert's match and its insert: now an update
                before = self.raw.find_one_and_update({"_id": doc_id}, update, upsert=True,
                                                      return_document=pymongo.ReturnDocument.BEFORE, **self.store.kw())
        base = before if before is not None else {**insert, "_id": doc_id}
        after = {**base, **set_, field: (base.get(field) or 0) + by}
        added = {k: [x for x in v if x not in (base.get(k) or ())] for k, v in adds.items()}
        for k, new in added.items():
            after[k] = [*(base.get(k) or ()), *new]
        if (undo := self.store.undo) is not None:
            raw, previous = self.raw, {k: before[k] for k in set_ if k in before} if before is not None else {}
            pulled = {k: {"$in": v} for k, v in added.items() if v}
            # what the row did not have before this call: taken off again, as a rollback does on SQLite (rv37a
            # LOW 9, rv37b LOW 5: a ``fields`` key stayed set, an ``add=`` list stayed as ``[]``; fidfix37) -- a
            # list only when it is empty after the pull (another process's values added meanwhile stay)
            unset = {k: "" for k in set_ if k not in previous} if before is not None else {}
            emptied = [k for k in added if before is not None and k not in before]
            uncounted = before is not None and field not in before

            def put_back() -> None:
                back: Document = {"$inc": {field: -by}}
                if previous:
                    back["$set"] = previous
                if unset:
                    back["$unset"] = unset
                if pulled:
                    back["$pull"] = pulled
                raw.update_one({"_id": doc_id}, back)
                if before is None:
                    raw.delete_one({"_id": doc_id, field: 0})
                    return
                for k in emptied:
                    raw.update_one({"_id": doc_id, k: {"$size": 0}}, {"$unset": {k: ""}})
                if uncounted:
                    raw.update_one({"_id": doc_id, field: 0}, {"$unset": {field: ""}})

            undo.then(f"{raw.name}/{doc_id}", put_back)
        return before, after

    def delete(self, doc_id: str) -> bool:
        undo = self.store.undo
        before = self.raw.find_one({"_id": doc_id}) if undo is not None else None
        deleted = self.raw.delete_one({"_id": doc_id}, **self.store.kw()).deleted_count > 0
        if undo is not None and deleted:
            undo.wrote(self.raw, doc_id, before)
        return deleted

    def delete_if(self, doc_id: str, where: Document) -> bool:
        """``port.Collection.delete_if``: one ``find_one_and_delete`` whose filter is ``_id`` and ``where``, atomic on
        the server with or without transactions; the document it deleted is what a failed block puts back."""
        if "_id" in where:
            raise ValueError("cannot condition on _id")
        with self._race_lost_as_written_meanwhile(doc_id):
            before = self.raw.find_one_and_delete({**where, "_id": doc_id}, **self.store.kw())
        if before is None:
            return False
        if (undo := self.store.undo) is not None:
            undo.wrote(self.raw, doc_id, before)
        return True

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
