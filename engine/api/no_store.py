"""``Cache-Control: no-store`` on the ``/fhir`` answers: they carry people's records.

A browser keeps an answer that says nothing of caching in its HTTP cache (heuristic freshness
from ``Last-Modified``, and the back button), so a resident's results read on a shared phone, or
a clinician's search on a ward PC, stayed on the disk after sign-out for the next user to bring
back. Every ``/fhir`` answer -- read, vread, search, ``$everything``, a Bundle's, ``_history``,
a 304, an error naming a record -- is marked ``no-store`` (RFC 9111 5.2.2.5: not kept anywhere)
unless its route set its own ``Cache-Control``: the CapabilityStatement and the SMART
configuration, public documents, keep their ``public, max-age=300``.

Applied by ``NoStore``, a middleware just inside ``FastRead`` (so every route's answer passes it
and none can forget it), and by ``FastRead`` to the hot read it answers itself (one header
appended to its ``Response``: a wrapped ``send`` on that path measured a median 1.08x a plain
in-process read in 6 paired runs, the append ~0.5-1 us, noise: see the README).
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NO_STORE = (b"cache-control", b"no-store")


def wants_no_store(path: str) -> bool:
    """A path under ``/fhir`` (the FHIR API and its operations)."""
    return path.startswith("/fhir/") or path == "/fhir"


def no_store(send: Send) -> Send:
    """``send`` with ``Cache-Control: no-store`` added to the answer's headers, when it has none."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers") or ())
            if not any(name.lower() == b"cache-control" for name, _ in headers):
                headers.append(NO_STORE)
                message = {**message, "headers": headers}
        await send(message)

    return sending


class NoStore:
    """The ASGI middleware: every ``/fhir`` answer that passes it is marked (see module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and wants_no_store(scope["path"]):
            send = no_store(send)
        await self.app(scope, receive, send)


def mark_no_store(response: Response) -> Response:
    """``response`` with ``Cache-Control: no-store`` among its headers, when it has none (the fast read)."""
    for name, _ in response.raw_headers:  # a loop, not any(): no generator on the hottest route
        if name == b"cache-control":
            return response
    response.raw_headers.append(NO_STORE)
    return response
