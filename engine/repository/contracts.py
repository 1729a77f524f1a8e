"""The types the repository's parts and its callers share: what a write returns, a version in a
history, the hooks a write runs, and the two things the repository asks of others (a validator,
a caller's ``Access``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from engine.repository.port import StoredResource

if TYPE_CHECKING:
    from engine.repository.searching import SearchResult

WriteHook = Callable[[dict[str, Any], dict[str, Any] | None], list[dict[str, Any]]]
# [(stored version, previous version), ...] of one write group, in write order -> the issues of each
BatchHook = Callable[[Sequence[tuple[dict[str, Any], dict[str, Any] | None]]], Sequence[list[dict[str, Any]]]]
WriteGuard = Callable[[dict[str, Any], dict[str, Any] | None], None]
# (resource after the merge rules, previous stored version, writer) -> the version to store
Statement = Callable[[dict[str, Any], dict[str, Any] | None, str], dict[str, Any]]
# resource about to be written -> the resource with the server's labels
Mark = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class TypeHooks:
    """Which of the registered marks, statements, guards and write hooks concern one resource type.

    Picked once per type from what each registration names (``types=``), so that a resource meets
    only its own: of the five that ingest registers, an Observation concerns one. Positions in
    the registries rather than the callables themselves: an entry replaced in place (a profiler
    wraps them) is still the one called.
    """

    KINDS = ("marks", "statements", "guards", "hooks")

    marks: tuple[int, ...]
    statements: tuple[int, ...]
    guards: tuple[int, ...]
    hooks: tuple[int, ...]


class Validator(Protocol):
    def validate(self, resource: dict[str, Any], at: str | None = None) -> None:
        """Raises a ``FhirError`` naming each bad element; ``at``: where the resource stands in the request (a
        transaction's ``Bundle.entry[1].resource``), the elements named under it."""


class Access(Protocol):
    """What one caller may do, asked by every read and write the repository makes on its behalf.

    Given to ``search``, ``everything``, ``transaction`` and ``batch`` (``ScopedRepository`` passes
    itself), so the resources a request reaches indirectly -- chained parameters, ``_include`` and
    ``_revinclude``, Bundle entries, ``If-None-Exist`` matches -- are decided exactly like a direct
    read. Without it the repository acts for the system (ingest, hooks, the audit trail).
    """

    @property
    def compartment(self) -> frozenset[str] | None:
        """The Patient ids the caller is confined to; ``None``: not confined."""
        ...

    @property
    def screened(self) -> bool:
        """Every match of a search must go through ``admit`` (and be counted by what it admits)
        although the query is not narrowed to a compartment: a staff member bound to a remit,
        shown only records that name no patient."""
        ...

    def label_params(self, rtype: str | None) -> list[tuple[str, str]] | None:
        """Search parameters to add to a search of ``rtype`` so it leaves out the records whose
        confidentiality labels the caller is not shown; ``None``: they cannot be left out by the
        query (each match must be admitted)."""
        ...

    def admit(
        self, resource: dict[str, Any], *, inside: bool = False, raw: bytes | None = None
    ) -> dict[str, Any] | None:
        """``resource`` as the caller may read it (possibly with elements left out), or None.
        ``inside``: the query that found it was already narrowed to the caller's compartment;
        ``raw``: its stored JSON bytes, when at hand (lets the check skip a walk)."""
        ...

    def admit_version(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        """A past version (``vread``) as the caller may read it, or None: ``admit`` of the version,
        and for a confined caller also of the record as it stands now (a result moved to another
        patient's record is theirs in every version)."""
        ...

    def require(self, resource_type: str, action: str) -> None:
        """Raise ``Forbidden`` unless the caller may do ``action`` (c r u d s) on the type."""
        ...

    def counts(self, rec: StoredResource) -> bool | None:
        """Whether ``rec``, found by a query narrowed to the caller's compartment, would be admitted,
        when its stored bytes alone tell; None: ``admit`` must decide (lets a search count matches
        outside the page without parsing them)."""
        ...

    def check_write(self, resource_type: str, new: dict[str, Any] | None, current: dict[str, Any] | None) -> None:
        """Raise unless the caller may replace ``current`` (None: absent) with ``new`` (None: delete)."""
        ...

    def check_if_match(self, resource_type: str, new: dict[str, Any], existing: StoredResource | None) -> None:
        """Raise, before an ``ifMatch`` version is compared, what the caller is answered for the
        record the update names when they may not see it (a caller answered 404 for what they
        may not see: missing, deleted and withheld alike)."""
        ...

    def transaction_writes(self, planned: dict[tuple[str, str], dict[str, Any]] | None) -> None:
        """The records a transaction Bundle writes, as planned, before any entry runs (``None``
        once it is over): a citation of one of them is judged by that entry, whatever the order."""
        ...

    def search(self, resource_type: str, params: Sequence[tuple[str, str]]) -> SearchResult:
        """The caller's own search of ``resource_type`` (a Bundle's ``GET Type?query`` entry): every
        decision their search over HTTP makes -- compartment, remit, the confidentiality labels
        left out -- so a Bundle answers exactly what the same search would."""
        ...

    def conditional_matches(self, resource_type: str, params: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """The matches of a conditional interaction's search (``If-None-Exist``, ``PUT Type?search``,
        in a Bundle too) as the caller may see them: found by the caller's own search, so a match
        they may not read is not one (and tells nothing). It needs the caller's search scope of
        ``resource_type`` (Forbidden otherwise), asked here for every conditional interaction."""
        ...


@dataclass(slots=True)
class WriteResult:
    resource: dict[str, Any]
    created: bool
    issues: list[dict[str, Any]] = field(default_factory=list)
    changed: bool = True  # False when an update carried no change (no new version)
    # the exact bytes stored for this version when the write path has them at hand (ingest signs
    # its Provenances over them: ``engine.audit.provenance.sign_stored``); None: not at hand
    body: bytes | None = None

    @property
    def version(self) -> str:
        return self.resource["meta"]["versionId"]

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


@dataclass
class Version:
    version: int
    updated: str
    deleted: bool
    resource: dict[str, Any] | None

