"""``FhirRepository``: FHIR R4 semantics over the storage port.

Versioning (``meta.versionId`` / ``meta.lastUpdated``, every version kept, ``If-Match``),
conditional create and update, delete → 410, validation before every write, write hooks inside
the write transaction, search (parsed in ``engine.repository.search``, executed by the backend),
``_include`` / ``_revinclude``, Patient compartments and ``$everything``, and transaction / batch
Bundles. Everything here is backend-neutral; ``store.fhir`` does the storage.

Acting for a caller, every entry point takes an ``Access`` (``engine.repository.scoped``) and asks
it about each resource reached, directly or not; without one it acts for the system.

The class is put together from parts, each a module named for what it does, one layer on another:

- ``core``: the shared state (store, backend, indexer, parser, merge rules, hooks, clock) and checks;
- ``group_commit``: write groups (one backend put per group) and the hooks run after the put;
- ``reads``: read, vread, history;  ``searching``: search, includes, compartments, conditional matches;
- ``writes``: the write path (merge rules, "unchanged?", versioning) for one resource or a group;
- ``everything``: ``Patient/$everything``;  ``bundles``: transaction and batch Bundles;
- ``versioning``, ``references``, ``contracts``: plain functions and the types they all share.
"""

from __future__ import annotations

from engine.repository.bundles import Bundles
from engine.repository.contracts import (
    Access,
    BatchHook,
    Statement,
    Validator,
    Version,
    WriteGuard,
    WriteHook,
    WriteResult,
)
from engine.repository.everything import EVERYTHING_COUNT, Everything
from engine.repository.references import references_in, rewrite_references
from engine.repository.searching import CONFINED_SCAN_CHUNK, CONFINED_SCAN_LIMIT, INCLUDE_LIMIT, SearchResult
from engine.repository.versioning import parse_etag

__all__ = [
    "CONFINED_SCAN_CHUNK", "CONFINED_SCAN_LIMIT", "EVERYTHING_COUNT", "INCLUDE_LIMIT", "Access", "BatchHook",
    "FhirRepository", "SearchResult", "Statement", "Validator", "Version", "WriteGuard", "WriteHook", "WriteResult",
    "parse_etag", "references_in", "rewrite_references",
]


class FhirRepository(Bundles, Everything):
    """The shared FHIR repository (see module docstring)."""
