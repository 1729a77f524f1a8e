"""FastAPI dependency: the bearer token of the request, verified, as a ``Caller``.

A named staff member signed in to the pages (``engine.auth.staff_session``) sends no bearer token
but a session cookie; it yields the same ``Caller`` (kind and scopes from their role), so every
route decides access for both in the same place. A cookie-authenticated request that changes state
must echo the session's CSRF token in ``X-CSRF-Token``: the cookie alone proves nothing about intent.

Routers declare ``caller: Caller = Depends(get_caller)``; the caller is also left on
``request.state.caller`` so middleware (audit) can say who acted without re-verifying. Routes that
touch FHIR data declare ``repo: ScopedRepository = Depends(get_repo)`` instead: the repository as
that caller may use it.

Both are kept in the request's state dict itself (``request.scope["state"]``, what ``request.state``
wraps), and the engine is read as ``app.state["engine"]``: Starlette's ``State`` keeps its values in
that dict and answers attribute reads from ``__getattr__``, which Python calls only after the
ordinary lookup has failed -- raising, formatting and dropping an ``AttributeError`` each time (a
second one raised by ``__getattr__`` itself when the name is not set yet). Read by attribute, these
two dependencies cost every read six swallowed ``AttributeError``s (and two ``KeyError``s inside
``__getattr__``). Headers are read through ``header_of`` for the same reason: ``Headers.get`` drops a
``KeyError`` for each absent one (thirty-fifth round, attr35: found with ``bench/attr35_misses.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.requests import HTTPConnection

from engine.auth.caller import Caller
from engine.auth.policy import RemitView
from engine.auth.staff_session import SESSION_COOKIE, csrf_matches
from engine.errors import Forbidden, Unauthorized
from engine.repository.scoped import ScopedRepository

if TYPE_CHECKING:
    from engine.engine import Engine

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def engine_of(request: HTTPConnection) -> Engine:
    """The app's engine (``create_app`` puts it on ``app.state``), read by key: by attribute, Starlette's
    ``State`` answers only after a failed lookup and its swallowed ``AttributeError``."""
    return request.app.state["engine"]


async def get_engine(request: Request) -> Engine:
    """FastAPI dependency: the app's engine (``engine_of``), for every router that declares
    ``engine: Engine = Depends(get_engine)`` -- one definition, where there were four. Async on purpose,
    as ``get_caller``: FastAPI runs a sync dependency in its thread pool, a hop per request for one
    dict read (thirty-fifth round, perf35)."""
    return engine_of(request)


def header_of(request: HTTPConnection, name: str) -> str | None:
    """The first value of header ``name``, None when absent, as ``request.headers.get`` gives it --
    without the KeyError Starlette's ``Headers.get`` (``Mapping.get`` around ``[name]``) drops then."""
    values = request.headers.getlist(name)
    return values[0] if values else None


def header_list(request: HTTPConnection, name: str) -> str | None:
    """A list field's value (RFC 9110 5.3): several fields of ``name`` are one comma-separated list,
    ``If-None-Match: "1"`` and ``If-None-Match: "2"`` as ``"1", "2"``, two ``Prefer`` fields as one (RFC
    7240 2) -- where ``header_of`` would read the first alone (review rvattr35). None when absent."""
    values = request.headers.getlist(name)
    return ", ".join(values) if values else None


def state_of(request: HTTPConnection) -> dict[str, Any]:
    """The request's state dict, made if absent exactly as ``request.state`` makes it: what is kept here
    is what ``request.state.<name>`` reads, without ``State.__getattr__``'s miss for a name not set."""
    return request.scope.setdefault("state", {})


async def get_caller(request: Request) -> Caller:
    """Async on purpose: a sync dependency costs every request a thread-pool hop, while the work here is
    a cached signature check plus one indexed revocation lookup (tens of µs)."""
    state = state_of(request)
    cached = state.get("caller")
    if isinstance(cached, Caller):
        return cached
    fields = request.headers.getlist("authorization")
    if not fields and SESSION_COOKIE in request.cookies:
        caller = staff_caller(request)
    else:
        caller = engine_of(request).auth.authenticate_fields(fields)
    state["caller"] = caller
    return caller


def staff_caller(request: Request) -> Caller:
    session = engine_of(request).staff.session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise Unauthorized("your sign-in has expired or ended: sign in again (登录已过期，请重新登录)")
    if request.method not in SAFE_METHODS and not csrf_matches(session, header_of(request, "x-csrf-token")):
        raise Forbidden("this change was not sent by the signed-in page (missing or wrong X-CSRF-Token)")
    return session.caller


async def get_repo(request: Request) -> ScopedRepository:
    """The FHIR repository scoped to this request's caller: every route reads and writes through it."""
    state = state_of(request)
    cached = state.get("repo")
    if isinstance(cached, ScopedRepository):
        return cached
    engine, caller = engine_of(request), await get_caller(request)
    remit = RemitView(caller, engine.site, engine.settings.site) if caller.remit is not None else None
    repo = ScopedRepository(engine.repository, caller, remit=remit)
    state["repo"] = repo
    return repo
