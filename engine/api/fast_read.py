"""``GET /fhir/{type}/{id}`` answered without the router: the hottest route, the same decision.

A plain read is most of what a FHIR server serves, and on it the framework cost more than the
read itself: the router tries every route registered before the FHIR ones (operations, metadata,
identity) and solves the route's dependency graph on each request. Measured over HTTP (server
CPU per unaudited read, one worker): ≈ 210-250 µs through the router, ≈ 90-115 µs here. This pure ASGI middleware, innermost of the user middleware (inside
the audit, CORS and request limits, so a fast read is audited, answered to CORS and refused when
too large exactly like any other request), recognises the one shape ``GET /fhir/<Type>/<id>``
without query string and calls what the route calls: ``engine.auth.deps.get_repo`` (the caller,
verified) and ``engine.api.fhir.read_response`` (``ScopedRepository.read_raw``, the one access
decision, then the audit note and the stored bytes). Anything else, including an id that is not
a FHIR id, goes to the router unchanged; a ``FhirError`` becomes the OperationOutcome the app's
handler would send.

Its answers say ``Cache-Control: no-store`` as every other ``/fhir`` answer does
(``engine.api.no_store``: ``NoStore``, just inside this middleware, marks the router's).
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.api.fhir import read_response
from engine.api.formats import accepts_json, require_json_accept
from engine.api.no_store import mark_no_store
from engine.api.outcomes import error_response
from engine.auth.deps import get_repo
from engine.errors import FhirError

# /fhir/<resource type>/<FHIR id>: the type as the router's ``fhirtype`` convertor, the id as R4 says
_READ = re.compile(r"/fhir/([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})")

# Whether an Accept header's bytes admit FHIR JSON (``formats.accepts_json``, the one rule), kept per
# exact header value: a client sends the same Accept on every read, and the parse of its ranges and
# q-weights, Starlette's header and query views around it, cost each read again what the first
# decided (twenty-eighth round, perfread28). Bounded: varied headers past the bound are decided
# afresh each time, never wrongly. A refusal is raised by ``require_json_accept`` itself.
_ACCEPT_ADMITS: dict[bytes, bool] = {}
_ACCEPT_KEPT = 256


class FastRead:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("query_string"):
            match = _READ.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        # as the router's ``fhir_negotiation`` (no query: no _format): the Accept headers joined as
        # Starlette's ``headers.getlist`` and ``require_json_accept`` join them; a request naming
        # ``Accept-Charset`` (rare: browsers no longer send it) is decided by ``require_json_accept`` itself
        accepts: list[bytes] = []
        charsets = False
        for key, value in scope["headers"]:
            if key == b"accept":
                accepts.append(value)
            elif key == b"accept-charset":
                charsets = True
        accept = b",".join(accepts)
        admits = _ACCEPT_ADMITS.get(accept)
        if admits is None:
            admits = accepts_json(accept.decode("latin-1"))
            if len(_ACCEPT_ADMITS) < _ACCEPT_KEPT:
                _ACCEPT_ADMITS[accept] = admits
        try:
            if not admits or charsets:
                require_json_accept(request)  # the 406 and its words, from their one owner
            response = read_response(request, await get_repo(request), match[1], match[2])
        except FhirError as exc:
            response = error_response(exc)
        await mark_no_store(response)(scope, receive, send)
