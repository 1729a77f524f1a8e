"""FastAPI dependency: the bearer token of the request, verified, as a ``Caller``.

Routers declare ``caller: Caller = Depends(get_caller)``; the caller is also left on
``request.state.caller`` so middleware (audit) can say who acted without re-verifying. Routes that
touch FHIR data declare ``repo: ScopedRepository = Depends(get_repo)`` instead: the repository as
that caller may use it.
"""

from __future__ import annotations

from fastapi import Request

from engine.auth.caller import Caller
from engine.repository.scoped import ScopedRepository


async def get_caller(request: Request) -> Caller:
    """Async on purpose: a sync dependency costs every request a thread-pool hop, while the work here is
    a cached signature check plus one indexed revocation lookup (tens of µs)."""
    cached = getattr(request.state, "caller", None)
    if isinstance(cached, Caller):
        return cached
    caller = request.app.state.engine.auth.authenticate(request.headers.get("authorization"))
    request.state.caller = caller
    return caller


async def get_repo(request: Request) -> ScopedRepository:
    """The FHIR repository scoped to this request's caller: every route reads and writes through it."""
    cached = getattr(request.state, "repo", None)
    if isinstance(cached, ScopedRepository):
        return cached
    repo = ScopedRepository(request.app.state.engine.repository, await get_caller(request))
    request.state.repo = repo
    return repo
