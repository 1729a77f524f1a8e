"""``RepositoryCore``: what every part of the FHIR repository stands on.

The store and its FHIR backend, the validator, the search parameters with the indexer and the
search parser built from them, the merge rules, the hooks registered on writes, the version
clock and the per-thread state of a write group; and the checks every entry point makes of a
type, an id and a body. The parts (``group_commit``, ``reads``, ``searching``, ``writes``,
``everything``, ``bundles``) each add their methods over it; ``engine.repository.fhir`` puts
them together as ``FhirRepository``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

from engine.errors import BadRequest, NotFound
from engine.merge_rules import MergeRules, Persons
from engine.merge_rules import shipped as shipped_merge_rules
from engine.repository import trail
from engine.repository.contracts import (
    BatchHook,
    Mark,
    Statement,
    TypeHooks,
    Validator,
    WriteGuard,
    WriteHook,
)
from engine.repository.indexing import Indexer
from engine.repository.port import Store, StoredResource
from engine.repository.search import SearchParser
from engine.repository.searchparams import SearchParams, load
from engine.repository.versioning import VersionClock

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# the ids of a whole write group, joined by "/" (no id holds one): one match instead of one per id
_IDS = re.compile(r"[A-Za-z0-9\-.]{1,64}(?:/[A-Za-z0-9\-.]{1,64})*")


def valid_ids(ids: list[str]) -> bool:
    """Whether every one of ``ids`` is a valid resource id (``_check``'s rule), in one match."""
    joined = "/".join(ids)
    return _IDS.fullmatch(joined) is not None and joined.count("/") == len(ids) - 1


class WriteState(threading.local):
    """A thread's write state: the group waiting for a put, its instant, the hook phase's stage and
    what it staged, the versions a block knows, the reads cache. The class attributes are the
    unset state: a thread that never wrote finds ``None`` here rather than a missing attribute,
    which ``getattr(local, name, None)`` paid for as a formatted ``AttributeError`` raised and
    caught, several times on every read (twenty-second round)."""

    pending: Any = None
    instant: Any = None
    stage: Any = None
    staged: Any = None
    known: Any = None
    reads: Any = None

class RepositoryCore:
    """The state and checks the repository's parts share (see module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        validator: Validator | None = None,
        base_url: str = "",
        params: SearchParams | None = None,
        merge: MergeRules | None = None,
    ) -> None:
        self.store = store
        # per writer and resource type: the marks of a first version that may skip the merge rules
        # (``Writes._first_versions``), decided from the merge rules and the registrations below
        self._first_decided: dict[str, dict[str, tuple[int, ...] | None]] = {}
        # how an incoming version combines with the stored one, per writer (mappings/merge.yaml)
        self.merge = merge or shipped_merge_rules()
        # who says "same person" when a merge rule asks (``another_person``): the patient index, set
        # by the engine that holds both (None: the rule asks no one and refuses nothing)
        self.persons: Persons | None = None
        self.backend = store.fhir
        self.validator = validator
        self.base_url = base_url.rstrip("/")
        self.params = params or load()
        # a backend may answer some parameters from its own columns (SQLite: _lastUpdated)
        self.indexer = Indexer(self.params, self.base_url,
                               skip=getattr(self.backend, "unindexed", frozenset({"_id"})))
        bind = getattr(self.backend, "bind", None)
        if bind is not None:  # reference targets for the backend; migration of an older layout
            bind(self.params, self.indexer)
        self.parser = SearchParser(self.params, self.base_url)
        # what runs on writes, in registration order (``group_commit``), and the resource types each
        # entry concerns (None: every type), position for position
        self._hooks: list[WriteHook] = []
        self._batch_hooks: list[BatchHook] = []
        self._delete_hooks: list[tuple[Callable[[str, str], None], frozenset[str]]] = []  # (the index)
        self._guards: list[WriteGuard] = []
        self._marks: list[Mark] = []
        self._statements: list[Statement] = []
        self._scopes: dict[str, list[frozenset[str] | None]] = {kind: [] for kind in TypeHooks.KINDS}
        self._type_hooks: dict[str, TypeHooks] = {}  # per resource type, picked from the above
        self._local = WriteState()  # per thread: versions waiting for a group put
        self._clock = VersionClock()  # meta.lastUpdated: strictly increasing per write (group)

    @property
    def merge(self) -> MergeRules:
        """The merge rules; other rules set here are asked afresh about what a first version meets."""
        return self._merge

    @merge.setter
    def merge(self, rules: MergeRules) -> None:
        self._merge = rules
        self._first_decided = {}

    def _hooks_of(self, rtype: str) -> TypeHooks:
        """The marks, statements, guards and write hooks that concern ``rtype``, picked once."""
        found = self._type_hooks.get(rtype)
        if found is None:
            found = self._type_hooks[rtype] = TypeHooks(*(
                tuple(n for n, types in enumerate(self._scopes[kind]) if types is None or rtype in types)
                for kind in TypeHooks.KINDS))
        return found

    def _note_trail(self, puts: Sequence[tuple[StoredResource, Any, StoredResource | None]]) -> None:
        """Mark (``engine.repository.trail``) the records a Provenance these puts write other than as the
        feed writes it names: asked at each backend put of a FHIR version, inside its transaction."""
        touched = trail.touched_by(puts)
        if touched:
            trail.mark(self.store, touched, "a Provenance written or deleted other than by a filed message")

    def trail_touched(self, ref: str) -> bool:
        """Is ``ref``'s Provenance trail marked (``engine.repository.trail``): not the feed's alone?"""
        return trail.marked(self.store, ref)

    def _now(self) -> str:
        """The next ``meta.lastUpdated`` instant (see ``VersionClock.now``)."""
        return self._clock.now()

    def _check_type(self, rtype: str) -> None:
        if rtype not in self.params.resource_types:
            raise NotFound(f"'{rtype}' is not a FHIR R4 resource type")

    def _check(self, rtype: str, rid: str) -> None:
        self._check_type(rtype)
        if not isinstance(rid, str) or not _ID.fullmatch(rid):  # a body's id may be any JSON value
            raise BadRequest(f"'{rid}' is not a valid resource id (1-64 of A-Z a-z 0-9 - .)")

    def _prepare(self, resource: Any) -> dict[str, Any]:
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise BadRequest("the body must be a FHIR resource (a JSON object with resourceType)")
        if resource["resourceType"] not in self.params.resource_types:
            raise BadRequest(f"'{resource['resourceType']}' is not a FHIR R4 resource type", expression=["resourceType"])
        return resource
