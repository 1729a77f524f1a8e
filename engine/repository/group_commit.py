"""Group commit and write hooks: the versions of one write group stored in one backend put, the
hooks run after it, in write order, inside the same transaction.

Ingest writes a whole batch of messages (some twenty resources each) in one transaction; a put
per resource and a hook call per resource were most of what a write cost. Here the versions a
write group makes wait in a per-thread buffer (``pending``) and go to the backend together at
the end of the group (``_flush``); the batch hooks then see the whole group at once and the
per-resource hooks run after them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from engine.repository.contracts import BatchHook, Statement, WriteGuard, WriteHook
from engine.repository.core import RepositoryCore


class GroupCommit(RepositoryCore):
    """Write groups and the hooks registered on writes (see module docstring)."""

    @contextmanager
    def group(self) -> Iterator[None]:
        """One transaction in which every ``write_many`` shares one backend put, the write hooks
        running after it: for a writer that needs the versions of one write to make the next
        (ingest signs a message's Provenance over the versions its resources got) and would
        otherwise pay a second put with its own statements."""
        with self.store.transaction(), self._grouped():
            yield

    @contextmanager
    def _grouped(self) -> Iterator[None]:
        """Inside the caller's transaction, buffer new versions and put them in one backend call.

        The write hooks run at the flush, after the versions are stored.
        """
        outer = getattr(self._local, "pending", None)
        if outer is not None:
            yield
            return
        self._local.pending = []
        try:
            yield
            self._flush()
        finally:
            self._local.pending = None

    def _flush(self) -> None:
        """Put the buffered versions, then run the write hooks for each, in write order.

        A hook thus runs after its resource is stored (and after the rest of the group: a
        Bundle's Patient is there when its Observation's hook looks). Writes a hook makes go
        straight to the backend, inside the same transaction.
        """
        pending = getattr(self._local, "pending", None)
        if not pending:
            return
        items = list(pending)
        pending.clear()
        self._local.pending = None
        try:
            self.backend.put_many([(rec, rows, existing) for rec, rows, existing, _, _, _ in items])
            # The hooks of a group read the same few resources again and again (every Observation
            # of a lab report looks up its performing Organization): reads are cached for the
            # hook phase, and any write through this repository empties the cache.
            self._local.reads = {}
            self._run_hooks([(stored, previous, result.issues) for _, _, _, stored, previous, result in items])
        finally:
            self._local.pending = pending
            self._local.reads = None

    def _run_hooks(self, writes: Sequence[tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]]) -> None:
        """The write hooks for stored versions (stored, previous, the issues to extend): each batch
        hook once for all of them, then each resource's own hooks in turn, in write order.

        Batch hooks first: the versions they are handed are then the current ones (a resource's
        own hook may store a newer version of another one of the group, as the patient index
        does with links), so a batch hook may read them back as handed."""
        if self._batch_hooks:
            pairs = [(stored, previous) for stored, previous, _ in writes]
            for batch_hook in self._batch_hooks:
                for (_, _, issues), found in zip(writes, batch_hook(pairs), strict=True):
                    issues.extend(found or ())
        for stored, previous, issues in writes:
            for hook in self._hooks:
                issues.extend(hook(stored, previous) or ())

    # -- hooks -------------------------------------------------------------------------------------
    def add_write_hook(self, hook: WriteHook) -> None:
        """``hook(resource, previous)`` runs inside the write transaction after the resource is stored."""
        self._hooks.append(hook)

    def add_batch_hook(self, hook: BatchHook) -> None:
        """``hook([(resource, previous), ...]) -> [issues, ...]`` runs once for all the versions a
        write group stored (one for a single write), before the per-resource hooks, inside the
        write transaction: for a hook that does for a whole message in one query what it would
        otherwise ask for each resource (recognition's index entries). Until it returns, the
        versions it is handed are the current ones, but for what it writes itself."""
        self._batch_hooks.append(hook)

    def add_write_guard(self, guard: WriteGuard) -> None:
        """``guard(resource, previous)`` runs before a new version is stored and refuses it by raising
        a ``FhirError``. A refusal must come before the write: a MongoDB without a replica set (and
        mongomock) cannot roll back what a write hook refuses after the version is stored."""
        self._guards.append(guard)

    def pending(self) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """(new version, previous version) of what this thread's write group holds but has not
        stored yet (the earlier entries of a transaction Bundle): a write guard that judges a
        resource by another one of the same Bundle reads it here, before anything is stored."""
        return [(stored, previous) for _, _, _, stored, previous, _ in getattr(self._local, "pending", None) or ()]

    def add_mark(self, mark: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """``mark(resource) -> resource`` adds server-computed labels (recognition's HR mark in
        ``meta.tag``) to every resource about to be written, before the merge rules and the
        "unchanged?" comparison, so a re-sent message with the same labels is not a change."""
        self._marks.append(mark)

    def add_statement(self, statement: Statement) -> None:
        """``statement(resource, previous, writer) -> resource`` adds what the server itself states
        about a resource (the patient index's ``Patient.link``) to the version being written, after
        the merge rules and before the "unchanged?" comparison and the write.

        Why: a write hook that states it afterwards has to store a second version of a resource
        just written (and run the hooks, the index rows and the history copy again). The hook still
        runs and corrects what a statement could not foresee; a right statement leaves it nothing
        to write."""
        self._statements.append(statement)
