"""CORS for SMART apps that run in a browser on another origin (SMART App Launch, "CORS support").

Two kinds of endpoint:

- **Discovery** (``/.well-known/*``, ``/fhir/.well-known/*``, ``/fhir/metadata``, ``/auth/jwks``):
  public documents without credentials, readable from any origin (``Access-Control-Allow-Origin: *``).
- **The app's API** (the FHIR base ``/fhir``, the token, revocation and userinfo endpoints): only origins
  huren knows: the origin of every http(s) redirect URI of a registered patient app, plus the
  origins configured in ``HUREN_CORS_ORIGINS`` (comma-separated). The answer names that one origin
  (with ``Vary: Origin``), never ``*``; no ``Access-Control-Allow-Credentials`` is sent because
  apps authenticate with a bearer token in ``Authorization``, not with cookies.

Preflights (``OPTIONS`` with ``Access-Control-Request-Method``) are answered here, before routing
and audit: 204 with the allowed methods and headers for a known origin, 403 otherwise (an
``OperationOutcome`` with ``Cache-Control: no-store``, as every ``/fhir`` error says: this
middleware is outside ``NoStore``). Requests
without an ``Origin`` header (servers, same-origin pages) pass untouched, so the FHIR hot path pays
one scan of the request headers.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.no_store import NO_STORE
from engine.api.outcomes import FHIR_JSON, outcome
from engine.auth.clients import ClientRegistry

PUBLIC_PREFIXES = ("/.well-known/", "/fhir/.well-known/", "/fhir/metadata", "/auth/jwks")
APP_PREFIXES = ("/fhir", "/auth/token", "/auth/revoke", "/auth/userinfo")
ALLOW_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = (b"Authorization, Content-Type, Accept, Accept-Language, If-Match, If-None-Match, "
                 b"If-None-Exist, If-Modified-Since, Prefer, X-Requested-With")
EXPOSE_HEADERS = b"Location, Content-Location, ETag, Last-Modified, WWW-Authenticate"
MAX_AGE = b"600"


def origin_of(uri: str) -> str | None:
    """``https://app.example/cb?x`` -> ``https://app.example``; None for non-web schemes."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class AllowedOrigins:
    """Origins of registered patient apps' redirect URIs plus configured ones, recomputed only
    when the client registry file changes."""

    def __init__(self, registry: ClientRegistry, configured: str | None) -> None:
        self.registry = registry
        self.configured = frozenset(o for o in (origin_of(x.strip()) for x in (configured or "").split(",")) if o)
        self._lock = threading.Lock()
        self._stamp: object = ()  # never a file's mtime: the first lookup reads the registry
        self._origins: frozenset[str] = self.configured

    def __contains__(self, origin: str) -> bool:
        try:  # the registry file changes when an app is registered: re-read the origins only then
            stamp: object = self.registry.path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            with self._lock:
                clients = [c for c in self.registry.all() if c.kind == "patient-app"]
                found = {origin_of(u) for c in clients for u in c.redirect_uris}
                self._origins = self.configured | {o for o in found if o}
                self._stamp = stamp
        return origin.lower() in self._origins


class Cors:
    def __init__(self, app: ASGIApp, origins: AllowedOrigins) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = preflight = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight = value
        if origin is None:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(PUBLIC_PREFIXES):
            allow = b"*"
        elif path.startswith(APP_PREFIXES) and origin.decode("latin-1") in self.origins:
            allow = origin
        else:
            allow = None
        if scope["method"] == "OPTIONS" and preflight is not None:
            await self._preflight(send, allow)
            return
        if allow is None:
            await self.app(scope, receive, send)
            return
        extra = [(b"access-control-allow-origin", allow), (b"access-control-expose-headers", EXPOSE_HEADERS)]
        if allow != b"*":
            extra.append((b"vary", b"Origin"))

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    async def _preflight(send: Send, allow: bytes | None) -> None:
        if allow is None:
            body = orjson.dumps(outcome("error", "forbidden", "this origin is not allowed: register the app's "
                                        "redirect URI on this origin, or add it to HUREN_CORS_ORIGINS"))
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", FHIR_JSON.encode()), (b"content-length", str(len(body)).encode()),
                                    (b"vary", b"Origin"), NO_STORE]})
            await send({"type": "http.response.body", "body": body})
            return
        headers = [(b"access-control-allow-origin", allow), (b"access-control-allow-methods", ALLOW_METHODS),
                   (b"access-control-allow-headers", ALLOW_HEADERS), (b"access-control-max-age", MAX_AGE),
                   (b"content-length", b"0")]
        if allow != b"*":
            headers.append((b"vary", b"Origin"))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
