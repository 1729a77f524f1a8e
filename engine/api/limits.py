"""Request limits in front of every route: body size and JSON nesting depth.

Without them a 10 MiB string was parsed, stored and served, and a Patient with extensions nested a
few hundred levels deep was stored and then failed in the serialiser on the way out (a 500). Both
are refused here, before any router or parser sees the body, with an ``OperationOutcome``:

- more than ``HUREN_MAX_REQUEST_BYTES`` (``Content-Length`` or the bytes actually received) → 413;
- a JSON body nested deeper than ``HUREN_MAX_JSON_DEPTH`` objects/arrays → 400.

Each refusal says ``Cache-Control: no-store`` as every ``/fhir`` answer does: this middleware sits
outside ``NoStore``, so its answers never passed it (nineteenth round).

The depth check never parses: escape sequences are dropped, everything but quotes and brackets
is deleted with ``bytes.translate``, the strings (now only quotes around any brackets they held)
are cut out, and the innermost pairs are removed level by level; every step is a C-speed pass
over bytes (~30 µs for a 14-resource transaction Bundle on a loaded machine). A body with fewer brackets than the limit cannot be too
deep and skips even that, so a typical resource pays two ``bytes.count`` calls. GET, HEAD and
OPTIONS carry no body and pass untouched. ``bench/request_limits.py`` measures the cost.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.no_store import NO_STORE
from engine.api.outcomes import FHIR_JSON, outcome

# objects and arrays nest alike: "{" reads as "[" and "}" as "]"; all but quotes and brackets go
_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True when ``body`` (JSON text) nests objects/arrays more than ``limit`` levels deep."""
    if body.count(b"{") + body.count(b"[") <= limit:
        return False
    # Escapes first (left to right, as JSON reads them), so that no quote left is an escaped one;
    # then only quotes and brackets are kept, and every string's content (odd pieces between
    # quotes) is dropped. Each pass then removes the innermost "[]" pairs: exactly one level.
    structure = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(_AS_BRACKETS, _NOT_STRUCTURE)
    brackets = b"".join(structure.split(b'"')[::2])
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


class RequestLimits:
    """Pure ASGI middleware (no per-request objects beyond the buffered body)."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _NO_BODY:
            await self.app(scope, receive, send)
            return
        declared = None
        is_json = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"content-type":
                is_json = value.find(b"json") >= 0  # not ``in``: it raises and drops a TypeError first
        if declared is not None and not declared.isdigit():
            await self._refuse(send, 400, "invalid", "Content-Length must be a number of bytes")
            return
        if declared is not None and int(declared) > self.max_bytes:
            await self._refuse(send, 413, "too-long", f"the request body is larger than {self.max_bytes:,} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, 413, "too-long", f"the request body is larger than {self.max_bytes:,} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if is_json and json_depth_exceeds(body, self.max_depth):
            await self._refuse(send, 400, "too-costly",
                               f"the JSON body is nested deeper than {self.max_depth} levels")
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)

    @staticmethod
    async def _refuse(send: Send, status: int, code: str, diagnostics: str) -> None:
        body = orjson.dumps(outcome("error", code, diagnostics))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", FHIR_JSON.encode()), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close"), NO_STORE]})
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out the buffered messages, then defers to the real one."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
