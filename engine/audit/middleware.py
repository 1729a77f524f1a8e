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
from collections.abc import Awaitable
from threading import get_ident
from time import time_ns
from typing import Any
from urllib.parse import unquote

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.outcomes import FHIR_JSON
from engine.audit import record as _record
from engine.audit.events import OUTCOMES, instant_of, outcome_for_status, worst
from engine.audit.group_commit import GroupCommitter
from engine.audit.log import Appended, AuditLog, AuditLogDamaged
from engine.audit.note import AuditNote
from engine.audit.record import FORMAT, Facts, Requestor, Sealed, agent_keys, expand, facts
from engine.audit.segment import SegmentDamaged
from engine.auth.caller import Caller

log = logging.getLogger(__name__)
_tuple_new = tuple.__new__

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


def facts_for_request(scope: Scope, notes: list[AuditNote], status: int | None, start: str | int,
                      origin: str, error: str | None = None) -> Facts | Sealed:
    """The audit record of one request: what its notes (or, when a route noted nothing, its method
    and path) say it touched, who asked, and how it ended. ``start`` is the request's start as an
    instant, or as ``time_ns() // 1_000_000`` (formatted only when it is not the record's own
    millisecond)."""
    state = scope.get("state")
    caller = state.get("caller") if state else None
    if len(notes) == 1 and error is None and status is not None:
        n = notes[0]
        if n.query is None and not n.detail and len(n.references) <= 1 and all(n.patient_ids):
            return _one_resource(n, caller, scope.get("client"), status, start, origin)
    now = time_ns() // 1_000_000
    if type(start) is int:
        start = instant_of(start)
    return _facts(scope, notes, status, start, origin, error, caller, getattr(caller, "kind", None),
                  requestor_of(caller, scope.get("client")), instant_of(now))


def requestor_of(caller: object, client: tuple[str, int] | None) -> Requestor:
    """Who asked, as the record states it: kind, subject, address, client id, staff role, display,
    family RelatedPerson, consent. (A ``Caller`` -- every request's but in tests -- has every field:
    read as attributes, not asked with a default: a resident's record makes this each request.)"""
    if type(caller) is Caller:
        return (caller.kind, caller.subject, client[0] if client else None, caller.client_id, caller.role,
                caller.display, caller.acting, caller.consent)
    return (getattr(caller, "kind", None), getattr(caller, "subject", None), client[0] if client else None,
            getattr(caller, "client_id", None), getattr(caller, "role", None), getattr(caller, "display", None),
            getattr(caller, "acting", None), getattr(caller, "consent", None))


# (id(caller), address) -> (caller, its requestor, that requestor's agent keys): a system's or
# staff member's ``Caller`` is made once per token (``engine.auth``) and frozen, so what the record
# says of it is made once per caller and address, not per read. The entry holds the caller itself:
# while it is here its id cannot be another object's.
_REQUESTORS: dict[tuple[int, str | None], tuple[object, Requestor, tuple[str, ...]]] = {}
_REQUESTORS_MAX = 4096


def _requestor_cached(caller: object, client: tuple[str, int] | None) -> tuple[Requestor, tuple[str, ...]]:
    key = (id(caller), client[0] if client else None)
    hit = _REQUESTORS.get(key)
    if hit is not None and hit[0] is caller:
        return hit[1], hit[2]
    requestor = requestor_of(caller, client)
    keys = agent_keys(requestor)
    if len(_REQUESTORS) >= _REQUESTORS_MAX:
        _REQUESTORS.clear()
    _REQUESTORS[key] = (caller, requestor, keys)
    return requestor, keys


# (id(caller), address, action, status, outcome, origin) -> (caller, the record's bytes before its
# instant, from it to ``from``, and ``node`` .. ``out``; the agents' keys): what a record says of
# the same caller, action and status, serialised once (the same bytes as orjson writes them in the
# whole record: each value is written alone as orjson writes it in place, and the keys are in RFC
# 8785's order; tests/test_perfaudit21_template.py compares them over many requests)
_TEMPLATES: dict[tuple[int, str | None, str, int, str, str], tuple[object, bytes, bytes, bytes, tuple[str, ...]]] = {}
_TEMPLATES_MAX = 4096


def _template(caller: object, client: tuple[str, int] | None, action: str, status: int, outcome: str,
              origin: str) -> tuple[object, bytes, bytes, bytes, tuple[str, ...]]:
    requestor, agents = _requestor_cached(caller, client)
    dumps = orjson.dumps
    made = (caller, b'{"act":%s,"at":"' % dumps(action),
            b'","by":%s,"desc":%s,"f":%d' % (dumps(requestor), dumps(f"HTTP {status}"), FORMAT),
            b',"node":%s,"out":%s,' % (dumps(origin), dumps(outcome)), agents)
    if len(_TEMPLATES) >= _TEMPLATES_MAX:
        _TEMPLATES.clear()
    _TEMPLATES[(id(caller), client[0] if client else None, action, status, outcome, origin)] = made
    return made


# (requestor, action, status, outcome, origin) -> the same four parts as ``_TEMPLATES``' entries (the first
# None): a resident's or family member's ``Caller`` is made anew each request (her compartment is looked
# up each time), so a template keyed by the caller object would never serve her twice. This one is keyed
# by the requestor's VALUES -- every field of her token the record states (kind, subject, address,
# client id, role, display, RelatedPerson, consent) -- and by nothing else the prefix holds, so two
# residents on one worker, or she and her son acting for her, can never share a prefix unless every
# byte of it would be the same. Her compartment is not in the prefix: what it decides (``self``/``for``)
# is written per request (``_one_resource``).
_RESIDENT_TEMPLATES: dict[tuple[Requestor, str, int, str, str], tuple[None, bytes, bytes, bytes, tuple[str, ...]]] = {}


def _resident_template(requestor: Requestor, action: str, status: int, outcome: str,
                       origin: str) -> tuple[None, bytes, bytes, bytes, tuple[str, ...]]:
    dumps = orjson.dumps
    made = (None, b'{"act":%s,"at":"' % dumps(action),
            b'","by":%s,"desc":%s,"f":%d' % (dumps(requestor), dumps(f"HTTP {status}"), FORMAT),
            b',"node":%s,"out":%s,' % (dumps(origin), dumps(outcome)), agent_keys(requestor))
    if len(_RESIDENT_TEMPLATES) >= _TEMPLATES_MAX:
        _RESIDENT_TEMPLATES.clear()
    _RESIDENT_TEMPLATES[(requestor, action, status, outcome, origin)] = made
    return made


def _one_resource(n: AuditNote, caller: object, client: tuple[str, int] | None, status: int, start: str | int,
                  origin: str) -> Sealed:
    """``_facts`` for what nearly every request is: one note naming at most one resource, no query
    or details, written straight to the record's bytes (``record.Sealed``) from a prefix of what the
    caller, action and status fix, made once (``_TEMPLATES``, keyed by the caller object: a system's or
    staff member's is made once per token). ``note`` already made the patients distinct, so only what
    ``record.facts`` would still change is done here: the resource is not listed when it is one of the
    patients, and its owners only when it is listed (the test suite compares this with the general
    path, byte for byte).

    A resident or a family member acting for one (``kind == "patient"``; forty-second round, perfa42b)
    is made a ``Caller`` each request, so hers is keyed by her requestor's values (``_RESIDENT_TEMPLATES``),
    and what her compartment decides is written as ``_facts`` writes it: the patients touched that are
    in her compartment, in the note's order and as often as it names them, are ``self``, or ``for``
    when she is a family member acting (``acting``).

    One frame for all of it (forty-fourth round, aud44): the outcome, the prefix and her compartment's
    patients decided here, not in three more calls."""
    action, refs, patients, noted, owners = n.action, n.references, n.patient_ids, n.outcome, n.owners
    outcome = "0" if status < 400 else ("4" if status < 500 else "8")
    if noted != "0":
        outcome = worst(outcome, noted)
        if outcome not in OUTCOMES:
            outcome = "8"
    own: list[str] | None = None
    acting_for: list[str] | None = None
    if getattr(caller, "kind", None) == "patient":
        requestor = requestor_of(caller, client)
        made = _RESIDENT_TEMPLATES.get((requestor, action, status, outcome, origin))
        if made is None:
            made = _resident_template(requestor, action, status, outcome, origin)
        if patients:
            compartment = getattr(caller, "patient_ids", None)
            if compartment:
                if len(patients) == 1:  # (the list itself: a note is never changed)
                    own = patients if patients[0] in compartment else None
                else:
                    own = [p for p in patients if p in compartment] or None
                if own and requestor[6]:  # a family member acting for her: "acted for", not "self"
                    own, acting_for = None, own
    else:
        made = _TEMPLATES.get((id(caller), client[0] if client else None, action, status, outcome, origin))
        if made is None or made[0] is not caller:
            made = _template(caller, client, action, status, outcome, origin)
    if len(patients) > 1:
        patients = list(dict.fromkeys(patients))
    now = time_ns() // 1_000_000
    recorded = instant_of(now)
    head = made[1] + recorded.encode() + made[2]  # (an instant is ASCII with nothing JSON escapes)
    if acting_for:  # ("f" < "for" < "from" in RFC 8785's order)
        head += b',"for":' + orjson.dumps(acting_for)
    if type(start) is int:
        if start != now:
            head += b',"from":"%s"' % instant_of(start).encode()
    elif start and start != recorded:
        head += b',"from":%s' % orjson.dumps(start)
    # the rest in RFC 8785's order (own, pat, res, salt, self), each shape one dict display: ``rest``'s keys
    # are inserted in their sorted order, so orjson writes them as sorted. The salt is ``record.seal``'s,
    # looked up in ``record`` at each call (tests fix it).
    salt = _record.new_salt()
    if refs:
        ref = refs[0]
        if patients and ref[:8] == "Patient/" and ref.split("/_history/")[0][8:] in patients:
            rest: dict[str, Any] = {"pat": patients, "salt": salt}  # the resource is one of the patients
        else:
            whose = owners.get(ref)  # (its owners: only when it is listed)
            if whose:
                rest = ({"own": [(ref, whose)], "pat": patients, "res": refs, "salt": salt} if patients
                        else {"own": [(ref, whose)], "res": refs, "salt": salt})
            else:
                rest = {"pat": patients, "res": refs, "salt": salt} if patients else {"res": refs, "salt": salt}
    else:
        rest = {"pat": patients, "salt": salt} if patients else {"salt": salt}
    if own:  # ("salt" < "self")
        rest["self"] = own
    if patients:
        # a tuple of strings: the collector stops tracking it at its first pass, where a list stayed
        # tracked (walked by every collection) until the key indexer took it, up to a second later
        keys = ("p:" + patients[0],) + made[4] if len(patients) == 1 else (*("p:" + p for p in patients), *made[4])
    else:
        keys = made[4]
    return _tuple_new(Sealed, (head, made[3] + orjson.dumps(rest)[1:], keys, recorded))  # (Sealed's fields)


def _facts(scope: Scope, notes: list[AuditNote], status: int | None, start: str, origin: str, error: str | None,
           caller: object, kind: str | None, requestor: Requestor, recorded: str) -> Facts:
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
    return facts(action=action, recorded=recorded, start=start, outcome=outcome, desc=desc,
                 requestor=requestor, origin=origin, patients=patients, resources=refs, owners=owners,
                 query=query, detail=detail, own=own, acting_for=acting_for)


def event_for_request(scope: Scope, notes: list[AuditNote], status: int | None, start: str | int,
                      origin: str, error: str | None = None) -> dict[str, Any]:
    """The AuditEvent the request's record states (what the log derives when it is read)."""
    return expand(orjson.loads(facts_for_request(scope, notes, status, start, origin, error).data(0)))


DAMAGE_LOG_SECONDS = 60.0  # a damaged log refuses every request: its error is logged this often, not each time
_damage_logged = [0.0]


def _log_refusal(exc: Exception, scope: Scope) -> None:
    """Log why a request was refused. A damaged log refuses every audited request until an
    operator repairs it: its message (what is damaged, the commands that name and repair it) is
    logged once a minute with the count refused, not a traceback per request, so the one line
    that says what to do is not buried."""
    if isinstance(exc, AuditLogDamaged | SegmentDamaged):
        now = time_ns() / 1e9
        _damage_logged.append(1)
        if now - _damage_logged[0] >= DAMAGE_LOG_SECONDS:
            refused = len(_damage_logged) - 1
            del _damage_logged[1:]
            _damage_logged[0] = now
            log.error("audit: the log is damaged, so every audited request is refused with 503 (%d since the last "
                      "such message): %s", refused, exc)
        return
    log.exception("audit: record failed; refusing %s %s", scope["method"], scope["path"])


async def _refuse(send: Send) -> None:
    """Send the 503 that replaces a response whose audit record could not be written (the refusal
    is logged by the caller, in its ``except`` block, where ``log.exception`` has the traceback)."""
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", FHIR_JSON.encode()), (b"content-length", str(len(FAILURE_BODY)).encode())]})
    await send({"type": "http.response.body", "body": FAILURE_BODY})


async def _swallowed() -> None:
    """What the app awaits for a body message of the response the 503 replaced: nothing is sent."""


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # one committer per event loop (its futures belong to that loop) and audit log
        self._committers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommitter] = (
            weakref.WeakKeyDictionary())
        # app, engine, committer, and the thread whose running loop is the committer's
        self._last: tuple[object, Any, GroupCommitter | None, int] = (None, None, None, 0)

    def _committer(self, log: AuditLog) -> GroupCommitter:
        loop = asyncio.get_running_loop()
        committer = self._committers.get(loop)
        if committer is None or committer.log is not log:
            committer = self._committers[loop] = GroupCommitter(log)
        committer.loop = loop
        return committer

    def _engine_and_committer(self, scope: Scope) -> tuple[Any, GroupCommitter]:
        """The app's engine and this loop's committer for its log, looked up and kept (``_last``) when
        what was kept no longer holds (``__call__`` tests it, in place: a server has one app, loop and
        thread, and the lookups cost ~1 µs a request). The loop is known without asking
        ``asyncio.get_running_loop`` (a ``getpid()`` system call on Python 3.11): a thread runs one loop at
        a time, so the committer's loop, running, in the thread that found it running, is the running loop."""
        app = scope["app"]
        engine = app.state["engine"]  # by key, as ``engine.auth.deps.engine_of``: no swallowed AttributeError
        committer = self._committer(engine.audit)
        self._last = (app, engine, committer, get_ident())
        return engine, committer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNAUDITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        app, engine, committer, thread = self._last  # (what ``_engine_and_committer`` kept, if it still holds)
        if app is not scope["app"] or committer is None or committer.log is not engine.audit \
                or thread != get_ident() or not committer.loop.is_running():  # type: ignore[union-attr]
            engine, committer = self._engine_and_committer(scope)
        notes: list[AuditNote] = []
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["audit_notes"] = notes
        start = time_ns() // 1_000_000  # (formatted only if the record's millisecond differs)
        started = False
        refused = False

        def audited_send(message: Message) -> Awaitable[None]:
            # not a coroutine: it hands back the awaitable the app then awaits -- the server's own
            # ``send(message)`` for every message but a held-back start -- so a body message, and a
            # start whose record was appended at once (lone mode), cost no coroutine of their own
            # (two a read before: tests/test_perf33_send_path.py)
            nonlocal started, refused
            if message["type"] != "http.response.start":
                return _swallowed() if refused else send(message)  # (refused: the replaced response's body)
            started = True
            try:
                audit_log = engine.audit  # (not ``log``: the module's logger, which ``_log_refusal`` writes to)
                record = facts_for_request(scope, notes, message["status"], start, audit_log.origin)
                # group commit: the requests finishing in this loop turn share one write
                # (engine.audit.group_commit); a future to await, or the record appended at once.
                # The committer of the request's start, unless the engine's log was replaced
                # meanwhile (a test's): then the loop's committer for the log that now is
                current = committer if committer.log is audit_log else self._committer(audit_log)
                pending = current.submit(record, current.loop)
            except Exception as exc:
                _log_refusal(exc, scope)
                refused = True
                return _refuse(send)
            if type(pending) is Appended:
                return send(message)  # written: the response may start

            async def after_group() -> None:  # (made only when the record waits for its group)
                nonlocal refused
                try:
                    await pending
                except Exception as exc:
                    _log_refusal(exc, scope)
                    refused = True
                    await _refuse(send)
                    return
                await send(message)

            return after_group()

        try:
            await self.app(scope, receive, audited_send)
        except Exception as exc:
            if not started:
                try:
                    record = facts_for_request(scope, notes, None, start, engine.audit.origin, type(exc).__name__)
                    await self._committer(engine.audit).record(record)
                except Exception:
                    log.exception("audit: record of a failed request could not be written")
            raise


def install_audit(app: FastAPI) -> None:
    """Add the audit middleware (call after the app's other middleware so it wraps them all)."""
    app.add_middleware(AuditMiddleware)
