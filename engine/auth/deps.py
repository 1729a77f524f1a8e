"""FastAPI dependency: the bearer token of the request, verified, as a ``Caller``.

A named staff member signed in to the pages (``engine.auth.staff_session``) sends no bearer token
but a session cookie; it yields the same ``Caller`` (kind and scopes from their role), so every
route decides access for both in the same place. A cookie-authenticated request that changes state
must echo the session's CSRF token in ``X-CSRF-Token``: the cookie alone proves nothing about intent.

Routers declare ``caller: Caller = Depends(get_caller)``; the caller is also left on
``request.state.caller`` so middleware (audit) can say who acted without re-verifying. Routes that
touch FHIR data declare ``repo: ScopedRepository = Depends(get_repo)`` instead: the repository as
that caller may use it.
"""

from __future__ import annotations

from fastapi import Request

from engine.auth.caller import Caller
from engine.auth.policy import RemitView
from engine.auth.staff_session import SESSION_COOKIE, csrf_matches
from engine.errors import Forbidden, Unauthorized
from engine.repository.scoped import ScopedRepository

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_caller(request: Request) -> Caller:
    """Async on purpose: a sync dependency costs every request a thread-pool hop, while the work here is
    a cached signature check plus one indexed revocation lookup (tens of µs)."""
    cached = getattr(request.state, "caller", None)
    if isinstance(cached, Caller):
        return cached
    authorization = request.headers.get("authorization")
    if authorization is None and SESSION_COOKIE in request.cookies:
        caller = staff_caller(request)
    else:
        caller = request.app.state.engine.auth.authenticate(authorization)
    request.state.caller = caller
    return caller


def staff_caller(request: Request) -> Caller:
    session = request.app.state.engine.staff.session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise Unauthorized("your sign-in has expired or ended: sign in again (登录已过期，请重新登录)")
    if request.method not in SAFE_METHODS and not csrf_matches(session, request.headers.get("x-csrf-token")):
        raise Forbidden("this change was not sent by the signed-in page (missing or wrong X-CSRF-Token)")
    return session.caller


async def get_repo(request: Request) -> ScopedRepository:
    """The FHIR repository scoped to this request's caller: every route reads and writes through it."""
    cached = getattr(request.state, "repo", None)
    if isinstance(cached, ScopedRepository):
        return cached
    engine, caller = request.app.state.engine, await get_caller(request)
    remit = RemitView(caller, engine.site, engine.settings.site) if caller.remit is not None else None
    repo = ScopedRepository(engine.repository, caller, remit=remit)
    request.state.repo = repo
    return repo
