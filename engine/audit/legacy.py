"""Startup migration: the AuditEvents earlier versions stored in the FHIR repository are expunged.

Earlier versions stored audit records as FHIR resources in the main database: at first each
signed record itself as ``AuditEvent/audit-<seq>`` (a copy naming every patient an interaction
touched: a hospital's search over ten residents names all ten, and carries the query, which may
hold someone's name or ID number), later a per-patient view per record,
``AuditEvent/audit-<seq>-<hash>``. Both are now derived on read from the signed log
(``engine.audit.derived``) under those same ids, so a stored one would be an out-of-date twin, and
an old whole-record copy a leak into every named resident's compartment. A start of this version
*expunges* every stored AuditEvent with such an id — current row, every history version, index
rows — since a FHIR delete would keep it readable through ``_history``/vread; nothing is lost,
since the views are derived from the log, which is not touched.

``audit_view/legacy-purged`` in the main database says it was done (``stored: false``: not even
stored views left), so later starts check nothing, and several workers starting at once do the
work once (the main store's write lock on SQLite; on MongoDB a second expunge finds nothing).
AuditEvents a client created with ids of its own choosing are not the log's and are kept.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from engine.audit.derived import AUDIT_EVENT, VIEW_ID
from engine.repository.port import Store, is_new_store
from engine.repository.query import Query

log = logging.getLogger(__name__)

MARKER = "legacy-purged"
CHUNK = 1000


class _Repository(Protocol):
    store: Store


def purge_legacy_copies(audit: Any, repository: _Repository, progress_collection: str) -> int:
    """Expunge the AuditEvents earlier versions stored (``audit`` is unused: kept for callers);
    returns how many. Idempotent: the marker makes a second run (or a second worker) check nothing."""
    del audit
    main = repository.store
    progress = main.collection(progress_collection)
    backend = main.fhir  # the stored resources themselves, not the derived views beside them
    with main.transaction():
        marker = progress.get(MARKER)
        if marker is not None and marker.get("stored") is False:
            return 0
        purged, offset = 0, 0
        while not is_new_store(main):  # a new store holds no earlier version's copies: the marker alone
            found = backend.search(Query(AUDIT_EVENT, sort=[("_id", False)], offset=offset, limit=CHUNK))
            ours = [rec.id for rec in found if VIEW_ID.fullmatch(rec.id)]
            if ours:
                purged += backend.expunge(AUDIT_EVENT, ours)
            offset += len(found) - len(ours)  # what stays (a client's own AuditEvents) is skipped
            if len(found) < CHUNK:
                break
        progress.replace({"_id": MARKER, "stored": False})
    if purged:
        log.warning("audit: removed %d AuditEvents an earlier version stored; they are derived from the signed "
                    "log now", purged)
    return purged
