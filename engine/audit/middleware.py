"""The audit middleware: one AuditEvent per HTTP request, written before the response leaves.

A pure ASGI middleware (not ``BaseHTTPMiddleware``) so it can hold back ``http.response.start``:
when the handler starts its response, the middleware folds the request's notes
(``engine.audit.note``) — or, when a route noted nothing, what the method and path say — into one
AuditEvent with the final status as outcome, and appends it to ``Engine.audit``. Only then does the
response go out. If the record cannot be written (a full disk, a damaged log, a key that cannot
sign a due checkpoint), the client gets a 503 OperationOutcome instead of the response: writing the
audit record is part of the request, and the server cannot serve it now; the request may be retried.
Refused (401/403) and failed requests are recorded like any other, with outcome 4/8; a handler
that crashes is recorded with outcome 12 before the error propagates.

The caller is read from ``request.state.caller`` (set by ``engine.auth.deps.get_caller``): any
object with ``subject``, ``kind`` and optionally ``client_id``.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any
from urllib.parse import unquote

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.audit.events import OUTCOMES, now_instant, outcome_for_status, worst
from engine.audit.group_commit import GroupCommitter
from engine.audit.log import AuditLog
from engine.audit.note import AuditNote
from engine.audit.record import Facts, Requestor, expand, facts

log = logging.getLogger(__name__)

# Paths that never touch health data: API docs, capability and discovery documents, health probes.
UNAUDITED_PREFIXES = ("/docs", "/redoc", "/openapi.json", "/favicon.ico", "/.well-known/", "/fhir/metadata",
                      "/admin/health", "/static/")

FAILURE_BODY = orjson.dumps({"resourceType": "OperationOutcome", "issue": [
    {"severity": "fatal", "code": "exception",
     "diagnostics": "the audit record for this request could not be written; the request is refused"}]})


def classify(method: str, path: str) -> tuple[str, list[str]]:
    """Audit action and resource references a bare request implies (when the route noted nothing)."""
    parts = [unquote(p) for p in path.split("/") if p]
    if not parts or parts[0] != "fhir":
        return ("read" if method in ("GET", "HEAD") else "operation"), []
    p = parts[1:]
    if any(s.startswith("$") for s in p):
        return "operation", ["/".join(p[:2])] if len(p) >= 3 else []
    if not p:
        return ("transaction" if method == "POST" else "history"), []
    if len(p) == 1:
        if p[0] == "_history":
            return "history", []
        return {"POST": "create"}.get(method, "search"), []
    if p[1] == "_search":
        return "search", []
    if p[1] == "_history":
        return "history", []
    ref = f"{p[0]}/{p[1]}"
    if len(p) == 2:
        return {"GET": "read", "HEAD": "read", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
            method, "operation"), [ref]
    if p[2] == "_history":
        return ("vread", [f"{ref}/_history/{p[3]}"]) if len(p) > 3 else ("history", [ref])
    return "search", [ref]  # compartment search: Patient/x/Observation


def facts_for_request(scope: Scope, notes: list[AuditNote], status: int | None, start: str,
                      origin: str, error: str | None = None) -> Facts:
    """The audit record of one request: what its notes (or, when a route noted nothing, its method
    and path) say it touched, who asked, and how it ended."""
    state = scope.get("state") or {}
    caller = state.get("caller")
    client = scope.get("client")
    kind = getattr(caller, "kind", None)
    requestor = (kind, getattr(caller, "subject", None), client[0] if client else None,
                 getattr(caller, "client_id", None), getattr(caller, "role", None),
                 getattr(caller, "display", None), getattr(caller, "acting", None), getattr(caller, "consent", None))
    if len(notes) == 1 and kind != "patient" and error is None and status is not None:
        n = notes[0]
        if n.query is None and not n.detail and len(n.references) <= 1 and all(n.patient_ids):
            return _one_resource(n, requestor, status, start, origin)
    return _facts(scope, notes, status, start, origin, error, caller, kind, requestor)


def _one_resource(n: AuditNote, requestor: Requestor, status: int, start: str, origin: str) -> Facts:
    """``_facts`` for what nearly every request is: one note naming at most one resource, no query
    or details, not a resident's (their own patients would be marked). ``note`` already made the
    patients distinct, so only what ``record.facts`` would still change is done here: the resource
    is not listed when it is one of the patients, and its owners only when it is listed (the test
    suite compares this with the general path)."""
    patients, refs, owners = list(dict.fromkeys(n.patient_ids)), n.references, n.owners
    outcome = "0" if status < 400 else ("4" if status < 500 else "8")
    if n.outcome != "0":
        outcome = worst(outcome, n.outcome)
        if outcome not in OUTCOMES:
            outcome = "8"
    if refs and patients and refs[0].split("/_history/")[0] in {f"Patient/{p}" for p in patients}:
        refs = []
    whose = [(refs[0], list(owners[refs[0]]))] if refs and owners.get(refs[0]) else []
    recorded = now_instant()
    return Facts(n.action, recorded, start or recorded, outcome, f"HTTP {status}", requestor, origin,
                 patients, list(refs), whose, None, [], [], [])


def _facts(scope: Scope, notes: list[AuditNote], status: int | None, start: str, origin: str, error: str | None,
           caller: object, kind: str | None, requestor: Requestor) -> Facts:
    method, path = scope["method"], scope["path"]
    acting = requestor[6]
    outcome = outcome_for_status(status)
    if notes:
        action = notes[0].action
        if len(notes) == 1:  # nearly every request: no folding
            n = notes[0]
            patients, refs, owners, query, detail = n.patient_ids, n.references, n.owners, n.query, n.detail
            if n.outcome != "0":
                outcome = worst(outcome, n.outcome)
        else:
            patients = [p for n in notes for p in n.patient_ids]
            refs = [r for n in notes for r in n.references]
            owners = {ref: pids for n in notes for ref, pids in n.owners.items()}
            query = next((n.query for n in notes if n.query is not None), None)
            detail = {}
            for n in notes:
                detail.update(n.detail or {})
            outcome = worst(outcome, *(n.outcome for n in notes))
        if query is not None and "?" not in query and path.startswith("/fhir/"):
            query = path.removeprefix("/fhir/") + "?" + query  # the route noted its parameters only
    else:
        action, refs = classify(method, path)
        patients = [r.split("/")[1] for r in refs if r.startswith("Patient/")]
        owners = {}
        query = None
        detail = {}
        if action == "search" and path.startswith("/fhir"):
            query_string = scope.get("query_string", b"").decode("latin-1")
            query = path.removeprefix("/fhir/") + ("?" + query_string if query_string else "")
        elif not path.startswith("/fhir"):
            detail["request"] = f"{method} {path}"
    # a resident's own patients among those touched: only in those patients' views does the
    # resident appear by name (engine.audit.view)
    # (a family member acting for a resident is not that resident: those patients are "acted for")
    own: list[str] = []
    acting_for: list[str] = []
    if kind == "patient" and patients:
        compartment = getattr(caller, "patient_ids", None)
        own = [p for p in patients if p in compartment] if compartment else []
        if acting:
            own, acting_for = [], own
    desc = f"HTTP {status}" if status is not None else "request failed without a response"
    if error:
        desc += f": {error}"
    return facts(action=action, recorded=now_instant(), start=start, outcome=outcome, desc=desc,
                 requestor=requestor, origin=origin, patients=patients, resources=refs, owners=owners,
                 query=query, detail=detail, own=own, acting_for=acting_for)


def event_for_request(scope: Scope, notes: list[AuditNote], status: int | None, start: str,
                      origin: str, error: str | None = None) -> dict[str, Any]:
    """The AuditEvent the request's record states (what the log derives when it is read)."""
    return expand(orjson.loads(facts_for_request(scope, notes, status, start, origin, error).data(0)))


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # one committer per event loop (its futures belong to that loop) and audit log
        self._committers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommitter] = (
            weakref.WeakKeyDictionary())
        self._last: tuple[object, Any, GroupCommitter | None] = (None, None, None)  # app, engine, committer

    def _committer(self, log: AuditLog) -> GroupCommitter:
        loop = asyncio.get_running_loop()
        committer = self._committers.get(loop)
        if committer is None or committer.log is not log:
            committer = self._committers[loop] = GroupCommitter(log)
        return committer

    def _engine_and_committer(self, scope: Scope) -> tuple[Any, GroupCommitter]:
        """The app's engine and this loop's committer for its log, looked up once per app and loop
        (a server has one of each; the lookups cost ~1 µs a request)."""
        app, engine, committer = self._last
        if app is not scope["app"] or committer is None or committer.log is not engine.audit \
                or committer.loop is not asyncio.get_running_loop():
            app, engine = scope["app"], scope["app"].state.engine
            committer = self._committer(engine.audit)
            self._last = (app, engine, committer)
        return engine, committer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNAUDITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        engine, committer = self._engine_and_committer(scope)
        notes: list[AuditNote] = []
        scope.setdefault("state", {})["audit_notes"] = notes
        start = now_instant()
        started = False
        refused = False

        async def write(status: int | None, error: str | None = None) -> None:
            event = facts_for_request(scope, notes, status, start, engine.audit.origin, error)
            # group commit: the requests finishing in this loop turn share one transaction
            # (engine.audit.group_commit); returns once this record is committed, raises if not
            await (committer if committer.log is engine.audit else self._committer(engine.audit)).record(event)

        async def audited_send(message: Message) -> None:
            nonlocal started, refused
            if message["type"] == "http.response.start":
                started = True
                try:
                    await write(message["status"])
                except Exception:
                    log.exception("audit: record failed; refusing %s %s", scope["method"], scope["path"])
                    refused = True
                    await send({"type": "http.response.start", "status": 503, "headers": [
                        (b"content-type", b"application/fhir+json"),
                        (b"content-length", str(len(FAILURE_BODY)).encode())]})
                    await send({"type": "http.response.body", "body": FAILURE_BODY})
                    return
            elif refused:
                return  # swallow the body of the response that was replaced
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception as exc:
            if not started:
                try:
                    await write(None, type(exc).__name__)
                except Exception:
                    log.exception("audit: record of a failed request could not be written")
            raise


def install_audit(app: FastAPI) -> None:
    """Add the audit middleware (call after the app's other middleware so it wraps them all)."""
    app.add_middleware(AuditMiddleware)
