"""Startup migration: earlier versions' whole-record AuditEvent copies replaced by per-patient views.

Earlier versions stored each signed record itself as ``AuditEvent/audit-<seq>`` in the FHIR
repository. Such a copy names every patient an interaction touched (a hospital's search over ten
residents names all ten, and carries the query, which may hold someone's name or ID number), so
any of those residents searching ``AuditEvent?patient=`` in their compartment could read the
others. The current views (``engine.audit.view``) name one patient each; this module makes sure
no old copy survives a start:

- every ``AuditEvent/audit-<seq>`` below the log's size at the first start of this version is
  looked up (1,000 ids per query); one that is not a view (a view carries the ``audit-record``
  detail) is *expunged* — current row, every history version, index rows — since a FHIR delete
  would keep it readable through ``_history``/vread;
- the per-patient views of those records are then derived from the signed log and stored, so
  "who looked at my record" keeps the accesses from before the upgrade;
- ``audit_view/legacy-purged`` in the main database (same transaction) says how far the check
  went: later records were written by this version, so a start checks nothing twice, and
  several workers starting at once do the work once (the main store's write lock on SQLite;
  on MongoDB a view another process stored first is skipped).

The signed log is not touched: its records stay complete for auditors and verification.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import orjson

from engine.audit.view import RECORD_DETAIL, views_of
from engine.repository.port import DuplicateKey, Store

log = logging.getLogger(__name__)

MARKER = "legacy-purged"
CHUNK = 1000


class _Log(Protocol):
    size: int
    leaves: Any

    def get(self, seq: int) -> dict[str, Any] | None: ...


class _Repository(Protocol):
    store: Store

    def insert_derived(self, resources: list[dict[str, Any]]) -> None: ...


def _is_view(body: bytes | None) -> bool:
    if not body:
        return False
    resource = orjson.loads(body)
    return any(d.get("type") == RECORD_DETAIL for e in resource.get("entity") or () for d in e.get("detail") or ())


def purge_legacy_copies(audit: _Log, repository: _Repository, progress_collection: str) -> int:
    """Expunge old whole-record copies and store their records' views; returns how many copies.
    Idempotent: the marker makes a second run (or a second worker) check nothing."""
    main = repository.store
    progress = main.collection(progress_collection)
    backend = main.fhir
    with main.transaction():
        marker = progress.get(MARKER)
        start = int(marker["upto"]) if marker else 0
        upto = audit.size
        if start >= upto:
            if marker is None:
                progress.replace({"_id": MARKER, "upto": upto})
            return 0
        purged = 0
        for first in range(start, upto, CHUNK):
            seqs = range(first, min(first + CHUNK, upto))
            found = backend.current_many([("AuditEvent", f"audit-{seq}") for seq in seqs])
            old = [rec.id for rec in found.values() if not _is_view(rec.body)]
            if not old:
                continue
            purged += backend.expunge("AuditEvent", old)
            views = []
            for rid in old:
                doc = audit.get(int(rid.removeprefix("audit-")))
                if doc is not None:
                    views += views_of(orjson.loads(doc["data"]))
            # a view the background indexer already stored (a log without the old progress note)
            # stays as it is
            present = backend.current_many([("AuditEvent", v["id"]) for v in views])
            views = [v for v in views if ("AuditEvent", v["id"]) not in present]
            try:
                with main.transaction():
                    repository.insert_derived(views)
            except DuplicateKey:  # MongoDB: another worker stored them first
                pass
        progress.replace({"_id": MARKER, "upto": upto})
    if purged:
        log.warning("audit: removed %d AuditEvent copies of an earlier version that named several patients; "
                    "their per-patient views are stored instead", purged)
    return purged
