"""FastAPI dependency: the bearer token of the request, verified, as a ``Caller``.

Routers declare ``caller: Caller = Depends(get_caller)``; the caller is also left on
``request.state.caller`` so middleware (audit) can say who acted without re-verifying.
"""

from __future__ import annotations

from fastapi import Request

from engine.auth.caller import Caller


async def get_caller(request: Request) -> Caller:
    """Async on purpose: a sync dependency costs every request a thread-pool hop, while the work here is
    a cached signature check plus one indexed revocation lookup (tens of µs)."""
    cached = getattr(request.state, "caller", None)
    if isinstance(cached, Caller):
        return cached
    caller = request.app.state.engine.auth.authenticate(request.headers.get("authorization"))
    request.state.caller = caller
    return caller
