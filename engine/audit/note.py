"""``note(request, ...)``: how a route tells the audit trail what an HTTP interaction touched.

Routes call it as they go (more than once is fine: a transaction Bundle notes each entry); the
audit middleware (``engine.audit.middleware``) folds a request's notes into ONE AuditEvent after
the handler has run. Notes live on ``request.state.audit_notes``; resources are reduced to their
versioned references at once so a note never keeps a large resource alive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from engine.audit.events import patients_of, reference_of


@dataclass(slots=True)
class AuditNote:
    """What a route noted it did (``owners``: reference -> its patients). Never changed once made.
    Slotted: one is made on every audited request, and no ``__dict__`` is made with it."""

    action: str
    references: list[str] = field(default_factory=list)
    patient_ids: list[str] = field(default_factory=list)
    outcome: str = "0"
    query: str | None = None
    detail: dict[str, Any] | None = None
    owners: dict[str, list[str]] = field(default_factory=dict)  # reference -> its patients


def note(request: HTTPConnection, *, action: str, resources: Sequence[dict[str, Any] | str] = (),
         patient_ids: Iterable[str] = (), outcome: str = "0", query: str | None = None,
         detail: dict[str, Any] | None = None, owners: Mapping[str, Sequence[str]] | None = None) -> None:
    """Record that this request did ``action`` (a key of ``actions.yaml``: read, vread, search,
    create, update, delete, history, operation, transaction, ...) on ``resources`` belonging to
    ``patient_ids`` (patients are also taken from the resources' own subject/patient fields, and
    from ``owners``: reference -> its patients, for resources given as references).

    One resource given as itself and nothing else (every read and vread: nearly every audited
    request) takes a path of its own to the same note: its patients are its own (``patients_of``, already
    distinct), one list serving as the note's patients and as its owners' entry (a note is never
    changed), and the note is added to the list the audit middleware put in the request's state."""
    if len(resources) == 1 and not patient_ids and not owners:
        res = resources[0]
        if type(res) is dict:
            ref = reference_of(res)
            whose = patients_of(res)
            entry = AuditNote(action, [ref], whose, outcome, query, detail, {ref: whose} if whose else {})
            state = request.scope.get("state")
            notes = state.get("audit_notes") if state is not None else None
            if notes is None:
                _noted(request, entry)
            else:
                notes.append(entry)
            return
    pids = list(patient_ids)
    refs: list[str] = []
    by_ref = {ref: list(whose) for ref, whose in owners.items() if whose} if owners else {}
    if by_ref:
        pids.extend(p for whose in by_ref.values() for p in whose)
    for res in resources:
        ref = reference_of(res)
        refs.append(ref)
        if isinstance(res, dict):
            whose = patients_of(res)
            if whose:
                by_ref[ref] = whose
                pids.extend(whose)
        elif ref.startswith("Patient/"):
            by_ref.setdefault(ref, [ref.split("/")[1]])
    _noted(request, AuditNote(action, refs, list(dict.fromkeys(pids)) if len(pids) > 1 else pids, outcome, query,
                              detail, by_ref))


def _noted(request: HTTPConnection, entry: AuditNote) -> None:
    """Add ``entry`` to the request's notes: the request's state dict itself (what ``request.state``
    wraps; the audit middleware puts the list there before the route runs), looked up without making
    an empty dict a request for ``setdefault``'s default."""
    scope = request.scope
    state = scope.get("state")
    if state is None:
        state = scope["state"] = {}
    notes = state.get("audit_notes")
    if notes is None:
        notes = state["audit_notes"] = []
    notes.append(entry)


def notes_of(request: HTTPConnection) -> list[AuditNote]:
    return list(getattr(request.state, "audit_notes", None) or [])
