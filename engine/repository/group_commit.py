"""Group commit and write hooks: the versions of one write group stored in one backend put, the
hooks run after it, in write order, inside the same transaction.

Ingest writes a whole batch of messages (some twenty resources each) in one transaction; a put
per resource and a hook call per resource were most of what a write cost. Here the versions a
write group makes wait in a per-thread buffer (``pending``) and go to the backend together at
the end of the group (``_flush``); the batch hooks then see the whole group at once and the
per-resource hooks run after them.

Derived writes: what the hooks themselves write while a group's hooks run (recognition's
DetectedIssue for a repeated test, the patient index's new version of a person's earlier record)
joins the group too (``_Stage``): each is merged, versioned and indexed when the hook writes it
and is readable at once through this repository, then all of them go to the backend in one put
after the group's hooks, and the hooks run once for all of them. Before, each was a write of its
own inside the hook: its own put and its own run of every hook, nested in the hook that made it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.repository.contracts import BatchHook, Mark, Statement, WriteGuard, WriteHook, WriteResult
from engine.repository.known import Key, KnownVersions
from engine.repository.port import StoredResource

if TYPE_CHECKING:
    from engine.repository.indexing import IndexRows

# a version waiting for its put: (record, index rows, version it replaces, stored resource,
# previous resource, what the write returned)
Entry = tuple[StoredResource, "IndexRows | None", "StoredResource | None", dict[str, Any], "dict[str, Any] | None",
              WriteResult]
# one write for the hooks: (stored version, previous version, the issues to extend)
Hooked = tuple[dict[str, Any], "dict[str, Any] | None", list[dict[str, Any]]]

# rounds of derived writes one group may make (hooks on derived versions deriving more): a hook
# that keeps deriving is a bug, stopped here rather than by the interpreter's recursion limit
MAX_DERIVED_ROUNDS = 16


@dataclass(slots=True)
class _Stage:
    """The versions the hooks of one write group write, waiting for one put (see module docstring).

    ``current`` is the repository's view of them until they are put (``_local.staged``: reads,
    ``write_many`` and ``update`` find them); ``hooked`` keeps each with the context of the write
    that made it (its context variables: the patient index counts its own nesting in one), for
    the hooks that run on it once the round's hooks are done."""

    unput: list[Entry] = field(default_factory=list)
    current: dict[Key, StoredResource] = field(default_factory=dict)
    hooked: list[tuple[Entry, contextvars.Context]] = field(default_factory=list)
    instant: str | None = None


class GroupCommit(KnownVersions):
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
        """Inside the caller's transaction, buffer new versions and put them in one backend call,
        all with one ``meta.lastUpdated`` (``_group_instant``).

        The write hooks run at the flush, after the versions are stored.
        """
        opened = self._open_group()
        try:
            yield
            if opened:
                self._flush()
        finally:
            if opened:
                self._close_group()

    def _open_group(self) -> bool:
        """Start buffering this thread's new versions (``_grouped``); False when a group or a
        hook's stage is already open (the writes join it, and whoever opened it flushes).

        Why not only the context manager: ``write_many`` opens a group on every call (ingest: one
        per message) and a generator-based context manager's enter and exit cost more than the
        two attribute writes they wrap; it calls these two directly."""
        local = self._local
        if getattr(local, "pending", None) is not None or getattr(local, "stage", None) is not None:
            return False
        local.pending = []
        local.instant = None
        return True

    def _close_group(self) -> None:
        """End the group ``_open_group`` opened (after its ``_flush``, or on failure: dropped)."""
        self._local.pending = None
        self._local.instant = None

    def _group_instant(self) -> str:
        """The ``meta.lastUpdated`` of the versions the group puts together: one instant for all.

        Why: they are stored in one backend call and one transaction, so they change at one
        moment; and the clock hands out strictly increasing milliseconds, so an instant per
        version ran ahead of the wall clock whenever more than a thousand versions a second were
        written (ingest writes about twenty per message): after an hour at a few hundred messages
        a second, ``_lastUpdated`` stood hours in the future. Versions put by a later flush of the
        same group, and every write outside a group, get later instants."""
        instant = getattr(self._local, "instant", None)
        if instant is None:
            instant = self._local.instant = self._now()
        return instant

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
        self._local.instant = None  # what the group stores after this put is later
        # one pass over the group: what the backend puts, what the hooks are handed, and the versions
        # that are current from now on (a failed put forgets what the block knew, see ``known``)
        puts: list[tuple[StoredResource, IndexRows | None, StoredResource | None]] = []
        writes: list[Hooked] = []
        known = getattr(self._local, "known", None)
        try:
            for rec, rows, existing, stored, previous, result in items:
                puts.append((rec, rows, existing))
                writes.append((stored, previous, result.issues))
                if known is not None:
                    known[(rec.type, rec.id)] = rec
            self.backend.put_many(puts)
            self._note_trail(puts)
            # The hooks of a group read the same few resources again and again (every Observation
            # of a lab report looks up its performing Organization): reads are cached for the
            # hook phase, and any write through this repository empties the cache.
            self._local.reads = {}
            self._hooked(writes)
        except BaseException:
            self._forget_known()
            raise
        finally:
            self._local.pending = pending
            self._local.reads = None

    # -- derived writes ----------------------------------------------------------------------------
    def _hooked(self, writes: Sequence[Hooked]) -> None:
        """Run the write hooks for stored versions with a stage open for what they write, then put
        the staged versions in one backend call and run the hooks once for all of them, round after
        round while hooks on derived versions derive more (see module docstring)."""
        if getattr(self._local, "stage", None) is not None:  # already in a group's hook phase
            self._run_hooks(writes)
            return
        stage = self._local.stage = _Stage()
        self._local.staged = stage.current
        try:
            self._run_hooks(writes)
            rounds = 0
            while stage.hooked:
                rounds += 1
                if rounds > MAX_DERIVED_ROUNDS:
                    raise RuntimeError(f"write hooks derived new versions for {MAX_DERIVED_ROUNDS} rounds: "
                                       "a hook keeps writing what another hook answers")
                self._put_staged()
                round_, stage.hooked = stage.hooked, []
                self._run_hooks([(stored, previous, result.issues) for (_, _, _, stored, previous, result), _ in round_],
                                [ctx for _, ctx in round_])
        finally:
            self._local.stage = None
            self._local.staged = None

    def _stage_instant(self, key: Key) -> str | None:
        """Inside a hook phase, the ``meta.lastUpdated`` of a derived version of ``key`` (one for
        all the versions one put stores); None outside one. A second version of a resource already
        staged puts the staged ones first (one put holds one version of each resource), and what
        is staged after that is later."""
        stage: _Stage | None = getattr(self._local, "stage", None)
        if stage is None:
            return None
        if key in stage.current:
            self._put_staged()
        if stage.instant is None:
            stage.instant = self._now()
        return stage.instant

    def _stage(self, entry: Entry) -> None:
        """Keep a derived version for the stage's put and its hooks (``_stage_instant`` came first)."""
        stage: _Stage = self._local.stage
        stage.unput.append(entry)
        stage.current[(entry[0].type, entry[0].id)] = entry[0]
        stage.hooked.append((entry, contextvars.copy_context()))

    def _put_staged(self) -> None:
        """Put the staged versions now: at the end of a round, before a second version of one of
        them, and before anything reads the backend past this repository's own view (a search,
        a history, a deletion)."""
        stage: _Stage | None = getattr(self._local, "stage", None)
        if stage is None or not stage.unput:
            return
        items, stage.unput = stage.unput, []
        stage.current.clear()
        stage.instant = None  # what is staged after this put is later
        try:
            puts = [(rec, rows, existing) for rec, rows, existing, _, _, _ in items]
            self.backend.put_many(puts)
            self._note_trail(puts)
            self._remember(rec for rec, _, _, _, _, _ in items)
        except BaseException:
            self._forget_known()
            raise

    def _run_hooks(self, writes: Sequence[Hooked], contexts: Sequence[contextvars.Context] | None = None) -> None:
        """The write hooks for stored versions (stored, previous, the issues to extend): each batch
        hook once for all of them, then each resource's own hooks in turn, in write order.

        Batch hooks first: the versions they are handed are then the current ones (a resource's
        own hook may store a newer version of another one of the group, as the patient index
        does with links), so a batch hook may read them back as handed."""
        if self._batch_hooks:
            pairs = [(stored, previous) for stored, previous, _ in writes]
            for batch_hook in self._batch_hooks:
                answers = batch_hook(pairs)
                if len(answers) != len(writes):  # (what ``zip(strict=True)`` said: one answer a version)
                    raise ValueError(f"a batch write hook answered {len(answers)} of {len(writes)} versions")
                # mostly no issue at all (a lab message's 17 versions, four batch hooks): looked at in C
                if any(answers):
                    for (_, _, issues), found in zip(writes, answers):  # noqa: B905 -- lengths checked above
                        if found:
                            issues.extend(found)
        hooks = self._hooks
        if not hooks:
            return
        if contexts is None:
            # each type's hooks picked once per call; a version of a type that no hook concerns
            # (most of a lab message) costs a dict look-up
            picked: dict[str, tuple[int, ...]] = {}
            for stored, previous, issues in writes:
                rtype = stored["resourceType"]
                own = picked.get(rtype)
                if own is None:
                    own = picked[rtype] = self._hooks_of(rtype).hooks
                for n in own:
                    found = hooks[n](stored, previous)
                    if found:
                        issues.extend(found)
            return
        for (stored, previous, issues), ctx in zip(writes, contexts, strict=True):
            for n in self._hooks_of(stored["resourceType"]).hooks:  # as inside the write that made it
                issues.extend(ctx.run(hooks[n], stored, previous) or ())

    # -- hooks -------------------------------------------------------------------------------------
    def _register(self, kind: str, registry: list[Any], entry: Any, types: Collection[str] | None) -> None:
        """Add ``entry`` to ``registry`` for the resource ``types`` it concerns (None: every type)."""
        registry.append(entry)
        self._scopes[kind].append(frozenset(types) if types is not None else None)
        self._type_hooks = {}  # picked again per type at the next write
        self._first_decided = {}  # and what a first version of a type meets

    def add_write_hook(self, hook: WriteHook, *, types: Collection[str] | None = None) -> None:
        """``hook(resource, previous)`` runs inside the write transaction after the resource is stored
        (a resource of one of ``types``, when given: the hook does nothing for the others)."""
        self._register("hooks", self._hooks, hook, types)

    def add_batch_hook(self, hook: BatchHook) -> None:
        """``hook([(resource, previous), ...]) -> [issues, ...]`` runs once for all the versions a
        write group stored (one for a single write), before the per-resource hooks, inside the
        write transaction: for a hook that does for a whole message in one query what it would
        otherwise ask for each resource (recognition's index entries). Until it returns, the
        versions it is handed are the current ones, but for what it writes itself."""
        self._batch_hooks.append(hook)

    def add_write_guard(self, guard: WriteGuard, *, types: Collection[str] | None = None) -> None:
        """``guard(resource, previous)`` runs before a new version is stored and refuses it by raising
        a ``FhirError``. A refusal must come before the write: a MongoDB without a replica set (and
        mongomock) cannot roll back what a write hook refuses after the version is stored.
        ``types``: the resource types it judges (None: every type)."""
        self._register("guards", self._guards, guard, types)

    def pending(self) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """(new version, previous version) of what this thread's write group holds but has not
        stored yet (the earlier entries of a transaction Bundle): a write guard that judges a
        resource by another one of the same Bundle reads it here, before anything is stored."""
        return [(stored, previous) for _, _, _, stored, previous, _ in getattr(self._local, "pending", None) or ()]

    def add_mark(self, mark: Mark, *, types: Collection[str] | None = None) -> None:
        """``mark(resource) -> resource`` adds server-computed labels (recognition's HR mark in
        ``meta.tag``) to every resource about to be written, before the merge rules and the
        "unchanged?" comparison, so a re-sent message with the same labels is not a change; and,
        on an update, once more on the version the merge rules combined (a writer whose rules keep
        what it leaves out kept the stored version's labels, which the combined content may no
        longer earn: ``engine.repository.writes``). So a mark must be a function of the resource
        it is given, and cheap to run twice. ``types``: the resource types it labels (or looks at;
        None: every type)."""
        self._register("marks", self._marks, mark, types)

    def add_statement(self, statement: Statement, *, types: Collection[str] | None = None) -> None:
        """``statement(resource, previous, writer) -> resource`` adds what the server itself states
        about a resource (the patient index's ``Patient.link``) to the version being written, after
        the merge rules and before the "unchanged?" comparison and the write.

        Why: a write hook that states it afterwards has to store a second version of a resource
        just written (and run the hooks, the index rows and the history copy again). The hook still
        runs and corrects what a statement could not foresee; a right statement leaves it nothing
        to write. ``types``: the resource types it states something about (None: every type)."""
        self._register("statements", self._statements, statement, types)
