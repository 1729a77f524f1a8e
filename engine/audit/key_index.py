"""The search keys of the derived views (``audit_keys``), given to records after they are appended.

A part of ``AuditLog`` (``engine.audit.log``, whose state these methods use). Keys are derived from
the records, not written by the append (``index_keys`` says why); the background thread keys each
second, and every search of the views first. Records an earlier version appended without keys are
given theirs once at start (``_key_earlier_records``).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from typing import TYPE_CHECKING

from engine.audit.derived import DaySpans, day_key_docs, group_key_docs, key_docs, stored_keys
from engine.audit.leaves import seq_key
from engine.audit.record import event_of, recorded_of
from engine.repository.port import DuplicateKey

if TYPE_CHECKING:  # what this part needs from the others (engine.audit.parts); object at run time
    from engine.audit.parts import KeyIndexNeeds as _Needs
else:
    _Needs = object

KEYED = "keys"  # audit_meta: every record has its keys (records of earlier versions were given theirs)
DAY_KEYED = "day-keys"  # audit_meta: records appended before day keys existed were given theirs
KEY_BATCH = 1000  # records per transaction when records are given their keys
KEY_MARK = "keyed-to"  # audit_meta: records 0 .. size-1 have their search keys (index_keys)
KEYS_NOTED = 200_000  # at most this many appended records' keys kept for index_keys


class KeyIndexing(_Needs):
    """``AuditLog``'s search keys."""

    def index_keys(self) -> None:
        """Give the records appended since the last call their search keys (``audit_keys``).

        Keys are not written by the append: they are derived from the records, so writing them in
        each group's commit (four of its ~10 pages: the keys' table and three places in its index)
        made every audited read pay for an index only searches use. A background thread calls this
        every ``KEY_SECONDS``, and every search of the views calls it first, so a view is found
        the moment its record commits. The records keyed so far are ``audit_meta/keyed-to``,
        advanced in the same transaction as the keys (a crash leaves both or neither), and the
        transaction holds the audit file's write lock, so two processes never key the same
        records. ``KEY_BATCH`` records per transaction keep appends waiting ~1-2 ms at most.

        The keys of the compact records this process appended were noted at the append, from the
        facts in hand (``_appended_keys``): only records another process appended (``--workers``)
        or an earlier run left are read back and parsed (reading and parsing every record again
        cost ~11 µs a record, a quarter of an audited read's audit).
        """
        self.drain()
        rows = self._leaf_rows
        while True:
            last = rows.last_seq()
            mark = self.meta.get(KEY_MARK)
            done = int(mark["size"]) if mark is not None else 0
            if last is None or last < done:
                self._forget_keyed(done)
                return
            with self.store.transaction():
                mark = self.meta.get(KEY_MARK)  # another process may have keyed them meanwhile
                done = int(mark["size"]) if mark is not None else 0
                last = rows.last_seq()
                if last is None or last < done:
                    return
                end = min(last + 1, done + KEY_BATCH)
                noted = self._forget_keyed(done)
                known = [noted.get(seq) for seq in range(done, end)]
                read = {} if all(known) else dict(rows.records(done, end - done))
                grouped: dict[str, list[int]] = {}
                dated = DaySpans()
                for seq, keyed in enumerate(known, done):
                    if keyed is not None:
                        keys, recorded = keyed
                    elif seq in read:
                        keys, recorded = stored_keys(read[seq])
                    else:  # a record missing from the log (verification names it): nothing to key
                        continue
                    for key in keys:
                        grouped.setdefault(key, []).append(seq)
                    dated.add(seq, recorded)
                for key_doc in group_key_docs(grouped) + dated.docs():
                    self.key_index.replace(key_doc)  # a rerun after a crash on MongoDB writes the same
                self.meta.replace({"_id": KEY_MARK, "size": end})
            for seq in range(done, end):
                noted.pop(seq, None)
            if end - done < KEY_BATCH:
                return


    def _forget_keyed(self, done: int) -> dict[int, tuple[Sequence[str], str | None]]:
        """Let go of the notes of records keyed already (by another process: ``--workers``)."""
        noted = self._appended_keys  # the event loop's thread adds to it meanwhile:
        if noted and min(noted) < done:  # (min, list: single C calls, no iteration the GIL splits)
            for seq in [s for s in list(noted) if s < done]:
                noted.pop(seq, None)
        return noted


    def _mark_keyed(self) -> None:
        """At start: the records appended so far have their keys (earlier versions wrote them at
        append, and ``_key_earlier_records`` gave the oldest theirs), so ``index_keys`` starts after
        them. Set once, by the first process of this version to start, before it appends."""
        if self.meta.get(KEY_MARK) is not None:
            return
        with self.store.transaction():
            last = self._leaves.find(sort=[("_id", -1)], limit=1)
            with suppress(DuplicateKey):
                self.meta.insert({"_id": KEY_MARK, "size": int(last[0]["seq"]) + 1 if last else 0})


    def _key_earlier_records(self) -> None:
        """Give the records an earlier version appended (without keys) their ``audit_keys``, once:
        the derived views find a patient's records by them. Upserts, so several workers starting
        at once do no harm; the marker says it is done."""
        keyed, day_keyed = self.meta.get(KEYED) is not None, self.meta.get(DAY_KEYED) is not None
        if keyed and day_keyed:
            return
        done = 0
        while True:
            with self.store.transaction():
                docs = self._leaves.find({"_id": {"$gte": seq_key(done)}}, sort=[("_id", 1)], limit=KEY_BATCH)
                for doc in docs:
                    seq, key_of = int(doc["seq"]), doc["_id"]
                    for key in [] if keyed else key_docs(key_of, event_of(doc["data"])):
                        self.key_index.replace(key)
                    # one day key per record; one a running worker wrote for its group is left as it is
                    for key in [] if day_keyed else day_key_docs([(seq, key_of, recorded_of(doc["data"]))]):
                        if self.key_index.get(key["_id"]) is None:
                            self.key_index.replace(key)
                if len(docs) < KEY_BATCH:
                    self.meta.replace({"_id": KEYED, "done": True})
                    self.meta.replace({"_id": DAY_KEYED, "done": True})
                    return
            done = docs[-1]["seq"] + 1
