"""Current versions known for a block of writes: read in one backend call, kept by the writes.

Ingest writes a batch of some fifty messages in one transaction, each message a write group of
some twenty resources and a Provenance: asked per group, the backend was queried twice per
message (the resources, then the Provenance signed over them), once per resource type each time
(~450 queries a batch). ``known_current(keys)`` reads the current versions of every resource the
batch will write in one call; every version this repository stores while the block is open
replaces its entry, so the entries stay the current versions until the block ends, and
``write_many`` and ``read_raw`` take them from here.

Versions a write group's hooks derived and that wait for their put (``group_commit``'s stage,
``_local.staged``) are current too: they are found first.

Sound where a failed write cannot be undone alone, so that a failure fails the whole block: a
SQLite flat transaction (no savepoints) or MongoDB (nested blocks are one transaction). An
exception out of a write drops what is known (the next reads go to the backend again), and the
block's end forgets it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from engine.repository.core import RepositoryCore
from engine.repository.port import StoredResource

Key = tuple[str, str]


class KnownVersions(RepositoryCore):
    """The per-thread map of current versions of a ``known_current`` block (see module docstring)."""

    @contextmanager
    def known_current(self, keys: Iterable[Key]) -> Iterator[None]:
        """Inside the caller's transaction: the current versions of ``keys`` (type, id) read in one
        backend call and kept up to date by this repository's writes until the block ends."""
        if not getattr(self.store, "in_transaction", False):
            raise RuntimeError("known_current() needs the caller's transaction")
        if getattr(self._local, "known", None) is not None:  # nested: the outer block knows
            yield
            return
        wanted = list(dict.fromkeys(keys))
        found = self.backend.current_many(wanted)
        known: dict[Key, StoredResource | None] = dict.fromkeys(wanted)
        known.update(found)
        self._local.known = known
        try:
            yield
        finally:
            self._local.known = None

    def _current_of(self, keys: Sequence[Key]) -> dict[Key, StoredResource]:
        """The current versions of ``keys`` (absent ones left out): what the block knows, the rest
        from the backend in one call."""
        staged: dict[Key, StoredResource] | None = getattr(self._local, "staged", None)
        if staged and any(key in staged for key in keys):  # derived versions waiting for their put
            found = {key: staged[key] for key in keys if key in staged}
            rest = [key for key in keys if key not in staged]
            return {**self._known_of(rest), **found} if rest else found
        return self._known_of(keys)

    def _known_of(self, keys: Sequence[Key]) -> dict[Key, StoredResource]:
        """``_current_of`` for keys that nothing staged holds."""
        known: dict[Key, StoredResource | None] | None = getattr(self._local, "known", None)
        if known is None:
            return self.backend.current_many(keys)
        out: dict[Key, StoredResource] = {}
        missing: list[Key] = []
        for key in keys:
            if key in known:
                rec = known[key]
                if rec is not None:
                    out[key] = rec
            else:
                missing.append(key)
        if missing:
            found = self.backend.current_many(missing)
            for key in missing:
                known[key] = found.get(key)
            out.update(found)
        return out

    def _current_one(self, rtype: str, rid: str) -> StoredResource | None:
        """The current version of one resource (None: absent): a staged derived version, what the
        block knows, else the backend's."""
        staged = getattr(self._local, "staged", None)
        if staged:
            rec = staged.get((rtype, rid))
            if rec is not None:
                return rec
        known = getattr(self._local, "known", None)
        if known is None:
            return self.backend.current(rtype, rid)
        key = (rtype, rid)
        if key not in known:
            known[key] = self.backend.current(rtype, rid)
        return known[key]

    def _remember(self, recs: Iterable[StoredResource]) -> None:
        """Versions just stored: the current ones of their resources from now on."""
        known = getattr(self._local, "known", None)
        if known is not None:
            for rec in recs:
                known[(rec.type, rec.id)] = rec

    def read_again(self, rtype: str, rid: str) -> None:
        """Forget what this block knows of ``rtype/rid``: its next read asks the backend. For a resource another
        process may have written since the block read it -- the DetectedIssue of a duplicate flag the recognition
        hook decides again because an auditor's review was stored meanwhile (``BatchScope._flags_out``): its version
        remembered here was the hook's own, and the write of the decision made again was refused against it
        (``WrittenMeanwhile``: the whole ingest batch undone and written again message by message)."""
        known = getattr(self._local, "known", None)
        if known is not None:
            known.pop((rtype, rid), None)

    def _forget_known(self) -> None:
        """A write failed: what the block knew may no longer be what is stored."""
        known = getattr(self._local, "known", None)
        if known is not None:
            known.clear()
