"""What each part of ``AuditLog`` needs from the others, stated as Protocols a type checker can read.

``AuditLog`` (``engine.audit.log``) is one object assembled from parts, one module each: loading
(``engine.audit.loading``), appends (``engine.audit.appends``), signing (``engine.audit.signing``),
found records (``engine.audit.found``) and search keys (``engine.audit.key_index``). The parts call
each other through ``self``, so read alone none of them says where ``self._reload`` or
``self._sign`` comes from, nor what ``self._frontier`` is. Here ``LogState`` is the state
``AuditLog.__init__`` sets, and each ``...Needs`` Protocol is that state plus the methods that part
calls on the others (its own methods it finds on itself). Each part takes its Protocol as its base
for the type checker only (``if TYPE_CHECKING``; ``object`` at run time, so the classes, their order
of resolution and every call are exactly what they were). ``tests/test_audit15_parts.py`` checks
that a real ``AuditLog`` has every member each Protocol names, so a renamed method cannot leave a
Protocol stating what nothing provides.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.audit import merkle
    from engine.audit.checkpoint import Checkpoint
    from engine.audit.keys import AuditKeys
    from engine.audit.leaves import DocumentLeaves, Leaf, LeafTable
    from engine.audit.record_files import RecordFiles
    from engine.audit.segment import Segment
    from engine.repository.port import Collection, Store
    from engine.settings import Settings


class LogState(Protocol):
    """The state of ``AuditLog`` its parts read and write (set in ``AuditLog.__init__``)."""

    store: Store
    settings: Settings
    keys: AuditKeys
    origin: str
    meta: Collection  # audit_meta: origin, seal, found-from
    checkpoints: Collection  # audit_checkpoints
    key_index: Collection  # audit_keys
    after_append: list[Callable[[Any], None]]  # hooks given each ``Appended`` (engine.audit.appends)
    _lock: threading.RLock  # the log's appends, drains and signatures, within the process
    _segment: Segment | None  # SQLite's segment file (None: MongoDB, memory, a reader of the table)
    _files: RecordFiles | None  # storage layout 3's record files
    _leaves: LeafTable | Collection  # the records, for readers
    _leaf_rows: LeafTable | DocumentLeaves  # the records, for the drain and the appends' transactions
    _frontier: merkle.Frontier  # the tree's right edge as this process knows it
    _unmoved: list[Leaf]  # the segment's records not yet in the table, in order
    _appended_keys: dict[int, tuple[Sequence[str], str | None]]  # search keys noted at the append
    _data_version: int | None  # SQLite's ``PRAGMA data_version`` at the last look (``_catch_up``)
    _unproven: list[tuple[int, int]]  # records this process found, no checkpoint covering them yet
    _last_cp_seq: int
    _last_cp_size: int
    _last_cp_time: float
    _seal_size: int
    _signed_size: int  # what the newest valid signature covered at the last load
    _timer: threading.Thread | None  # the background thread (checkpoints, seal, drain, keys)
    _held: int
    _damage: str | None
    _damage_recheck: float
    _notes_look: float


class AppendsNeeds(LogState, Protocol):
    """What appending (``engine.audit.appends``) calls on loading and signing."""

    def _reload(self) -> None: ...
    def _refuse_if_damaged(self) -> None: ...
    def _sync_segment(self) -> None: ...
    def _rolled_back(self) -> None: ...
    def _checkpoint_due(self, old_size: int, size: int) -> bool: ...
    def _sign(self, frontier: merkle.Frontier, *, seal: bool = False) -> list[Checkpoint]: ...
    def _signed_through(self, cps: Sequence[Checkpoint]) -> None: ...
    def _store_checkpoint(self, cp: Checkpoint) -> Checkpoint: ...


class SigningNeeds(LogState, Protocol):
    """What signing (``engine.audit.signing``) calls on found records, loading and appending."""

    def _found_range(self, size: int) -> list[tuple[int, int]]: ...
    def _noted(self) -> list[tuple[int, int | None]]: ...
    def _keep_noted(self, noted: Sequence[tuple[int, int]]) -> None: ...
    def _reload(self) -> None: ...
    def _refuse_if_damaged(self) -> None: ...
    def _root_of(self, size: int, records: tuple[int, Sequence[bytes]] | None = None) -> bytes: ...
    def _table_transaction(self, limit: int | None = None, *, flat: bool = True) -> AbstractContextManager[None]: ...


class FoundNeeds(LogState, Protocol):
    """What found records (``engine.audit.found``) call on loading and signing."""

    def _root_of(self, size: int, records: tuple[int, Sequence[bytes]] | None = None) -> bytes: ...
    def _tree_mismatch(self, signed: Checkpoint, size: int) -> str | None: ...
    def checkpoint(self, *, force: bool = False) -> Checkpoint | None: ...
    def latest_checkpoint(self) -> Checkpoint | None: ...


class KeyIndexNeeds(LogState, Protocol):
    """What the search keys (``engine.audit.key_index``) call on appending."""

    def drain(self) -> None: ...


class LoadingNeeds(LogState, Protocol):
    """What loading (``engine.audit.loading``) calls on appending, signing and the tree's reads."""

    def drain(self) -> None: ...
    def latest_checkpoint(self) -> Checkpoint | None: ...
    def subtree_hash(self, level: int, index: int) -> bytes: ...


NEEDS: tuple[type, ...] = (AppendsNeeds, SigningNeeds, FoundNeeds, KeyIndexNeeds, LoadingNeeds)


def members(protocol: type) -> set[str]:
    """The names ``protocol`` states (its state and methods, its bases' included)."""
    names: set[str] = set()
    for cls in protocol.__mro__:
        if cls in (object, Protocol) or cls.__name__ == "Generic":
            continue
        names.update(getattr(cls, "__annotations__", {}))
        names.update(name for name, value in vars(cls).items() if callable(value) and not name.startswith("__"))
    return names

