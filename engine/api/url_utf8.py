"""A request's URL is read as sent or refused: its path and query are UTF-8, percent-encoded.

Starlette reads a query's percent-escapes as UTF-8 with ``errors="replace"`` and the servers (uvicorn, the test
client) unquote the path the same way, so ``?name=%FC`` -- Latin-1's ü, no character in UTF-8 -- reached every
route as ``name=\ufffd``: a FHIR search for U+FFFD, an empty Bundle under a 200 (ffix40 LOW), where R4's search
must not search for another value than sent; ``/fhir/Patient/%FC`` read a record named U+FFFD. RFC 3986 2.1 and
2.5 (a URI's characters, percent-encoded as UTF-8) and the WHATWG URL Standard (a query's bytes read as UTF-8) say
how a URL carries text; one that does not is a 400 OperationOutcome naming the query parameter or the path, before
any route reads it (forty-first round, http41). Refused alike, since neither can be read as the value sent:

- an escape whose bytes are not UTF-8 (``%FC``, ``%C3`` alone, ``%ED%A0%80``: a surrogate);
- a ``%`` not followed by two hex digits (``%ZZ``, ``50%``): not an escape, and read literally it is a different
  value from the one a client that forgot to write ``%25`` meant;
- a raw byte outside ASCII in the query (a client that did not percent-encode): Starlette reads it as Latin-1, so
  raw UTF-8 ``王`` became three other characters. (A raw byte in the path never gets here: the servers refuse it.)

An escaped ``/`` or ``\\`` in the path (``%2F``, ``%5C``, either case) is refused too, naming it (rv41c MED 1): the
servers unquote the path before routing, so ``GET /fhir/Patient/<id>%2F_history%2F1`` -- one segment as sent, an id
no FHIR server can hold (R4 datatypes#id: ``[A-Za-z0-9.-]{1,64}``) -- had been served as a vread, and a gateway
in front that allows or denies by the path as sent (``/_history``, ``$everything``) saw another interaction than
huren served. No route of huren's has a segment that may hold a ``/`` (its ids are FHIR ids and hashes).

A ``POST _search`` form body is read by the same rule (``form_pairs``, ``unreadable_parameter``: one reader of a
parameter's bytes, the query's and the form's), but that its raw bytes are read as UTF-8, which huren decodes itself:
``family=%ZZ`` in the body had been searched for as the three characters while the query's was refused (http42).

Every route, not only ``/fhir``: the sign-in's and the reports' parameters are read by the same Starlette. The
common URL pays one ``bytes.find`` for ``%`` and an ``isascii`` on each of path and query. A browser opening a
``/ui/`` page is answered with a small Chinese page instead (``outcomes.unreadable_url_answer``; rv41c LOW 6).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.api.no_store import mark_no_store
from engine.api.outcomes import unreadable_url_answer
from engine.errors import BadRequest

# a ``%`` that does not begin an escape (RFC 3986 2.1: ``pct-encoded = "%" HEXDIG HEXDIG``)
_NOT_AN_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# an escaped path separator: ``/`` (``%2F``) or ``\`` (``%5C``), which the servers unquote into the routed path
_ESCAPED_SEPARATOR = re.compile(rb"%(?:2[Ff]|5[Cc])")


def unreadable(part: bytes, *, unencoded_utf8: bool = False) -> str | None:
    """Why ``part`` (a path, or a name or value of a query or form, as sent) cannot be read as text, or None when it
    can. ``unencoded_utf8``: bytes outside ASCII are read as UTF-8 -- a form body huren decodes itself (the WHATWG
    URL Standard's urlencoded parser reads them so); a URL's are not, Starlette reads a query's as Latin-1."""
    if not part.isascii():
        if not unencoded_utf8:
            byte = next(b for b in part if b > 0x7F)
            return f"the byte 0x{byte:02X} is sent unencoded (percent-encode it as UTF-8)"
        try:
            part.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"the byte 0x{exc.object[exc.start]:02X} is not UTF-8"
    if part.find(b"%") < 0:
        return None
    loose = _NOT_AN_ESCAPE.search(part)
    if loose is not None:
        return f"'{part[loose.start():loose.start() + 3].decode('utf-8', 'backslashreplace')}' is not a " \
               "percent-escape (write % as %25)"
    try:
        unquote_to_bytes(part).decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"its escapes hold 0x{exc.object[exc.start]:02X}, which is not UTF-8"
    return None


def unreadable_parameter(pairs: bytes, *, where: str = "query", unencoded_utf8: bool = False) -> BadRequest | None:
    """The 400 naming the first parameter of ``pairs`` (``application/x-www-form-urlencoded``: a URL's query, a
    ``POST _search`` form body) whose name or value cannot be read as the UTF-8 text sent (``unreadable``), None when
    every one can. The one reader of a parameter's bytes for both: a ``%ZZ`` in a form body had been searched for
    as the three characters where the same in the query is refused (httpfix41b LOW; http42). ``where``: what the
    parameters are, said in the diagnostics; ``expression`` is the parameter's name as sent."""
    if unreadable(pairs, unencoded_utf8=unencoded_utf8) is None:
        # the whole at once: ``&`` and ``=`` are ASCII, so no part reads otherwise than within the whole
        return None
    for pair in pairs.split(b"&"):
        name, _, value = pair.partition(b"=")
        for part, what in ((name, "name"), (value, "value")):
            why = unreadable(part, unencoded_utf8=unencoded_utf8)
            if why is not None:
                shown = _shown(name)
                return BadRequest(f"the {where} parameter '{shown}' cannot be read as UTF-8 text ({what}: {why}); "
                                  "huren does not read another value than the one sent", expression=[shown])
    return None  # pragma: no cover -- the whole was unreadable, so one of its parts is


def form_pairs(body: bytes, *, where: str) -> list[tuple[str, str]]:
    """The name/value pairs of a form ``body`` (``application/x-www-form-urlencoded``) as sent, in order, a pair
    without ``=`` a blank value; ``BadRequest`` naming the parameter that cannot be read (``unreadable_parameter``:
    raw bytes and escapes read as UTF-8; a ``%`` that begins no escape). A readable form is parsed straight away --
    parse_qsl's strict decoding is the escapes' check, and the loose ``%`` one scan -- so the rule costs nothing more
    than the parse (an 8 MB form of escaped values: decoding it twice had cost 40 % more); only a form refused is read
    parameter by parameter, to name the one."""
    try:
        if _NOT_AN_ESCAPE.search(body) is None:
            return parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        pass
    refused = unreadable_parameter(body, where=where, unencoded_utf8=True)
    # (always one here: a loose ``%``, raw bytes or escapes not UTF-8 are each some parameter's)
    raise refused or BadRequest(f"the {where} body cannot be read as UTF-8 text", expression=["body"])


async def unreadable_form(request: Request) -> BadRequest | None:
    """The 400 naming the first field of an HTML form posted to a page -- the staff sign-in (``/ui/signin``), the
    resident's sign-in steps (``/auth/authorize/*``) -- that cannot be read as the UTF-8 text sent
    (``unreadable_parameter``, a form's raw bytes read as UTF-8), or None when every field can, or the body is not
    ``application/x-www-form-urlencoded`` (a browser's form is; Starlette's multipart reader decides the rest). Asked
    before ``request.form()``, which reads the body Starlette keeps: its parser decodes escapes with
    ``errors="replace"``, so ``password=%FC`` had been read as U+FFFD and answered as a wrong password, counted
    toward the account's throttle (http42 LOW). The page says so in its own words (the caller's)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    return unreadable_parameter(await request.body(), where="form", unencoded_utf8=True)


def _shown(raw: bytes) -> str:
    """A name or path as sent, for the diagnostics (its escapes left as written; a form's raw UTF-8 as its
    characters, any other byte as ``\\xNN``)."""
    return raw[:80].decode("utf-8", errors="backslashreplace")


def host_refusal(scope: Scope) -> BadRequest | None:
    """The 400 RFC 9112 §3.2 asks of a server for a request with more than one Host header field line, or an
    HTTP/1.1 request with none: the authority of the request's URL (§3.3) is the Host, and two of them are two URLs
    -- uvicorn passes both on (and none: measured over a socket, httptools' reader) and huren had served the request
    (http42 LOW). huren builds its own absolute URLs from its configured base, so no answer was misdirected; but a
    proxy in front that routes or allows by one Host and a server behind that reads the other is how a request gets
    past the proxy's rule. One pass over the header names (the servers give them lower-cased): ~0.6 us a request
    with six headers (timeit, the shared 2-core box), of a read's ~100 us. An HTTP/1.0 request may have none."""
    hosts = len([1 for name, _ in scope.get("headers") or () if name == b"host"])
    if hosts == 1 or (hosts == 0 and scope.get("http_version") != "1.1"):
        return None
    said = "no Host header (HTTP/1.1 requires one)" if hosts == 0 else f"{hosts} Host headers (one is allowed)"
    return BadRequest(f"the request has {said}: RFC 9112 §3.2, and huren does not guess which address was meant",
                      expression=["Host"])


def url_refusal(scope: Scope) -> BadRequest | None:
    """The 400 for a request whose path or query cannot be read as the text sent (module docstring), or whose
    authority is not one (``host_refusal``), else None. The query is named by its parameter (``expression``: its
    name as sent), the path as a whole."""
    refused = host_refusal(scope)
    if refused is not None:
        return refused
    raw_path = scope.get("raw_path")
    if raw_path is not None:
        why = unreadable(raw_path)
        if why is not None:
            return BadRequest(f"the URL path '{_shown(raw_path)}' cannot be read as UTF-8 text: {why}",
                              expression=["path"])
        separator = _ESCAPED_SEPARATOR.search(raw_path) if raw_path.find(b"%") >= 0 else None
        if separator is not None:
            escaped = separator[0].decode("ascii")
            return BadRequest(f"the URL path '{_shown(raw_path)}' holds '{escaped}', an escaped "
                              f"'{unquote_to_bytes(escaped).decode('ascii')}': no path segment may hold one "
                              "(a FHIR id is [A-Za-z0-9-.]{1,64}); huren does not read another path than the one "
                              "sent", expression=["path"])
    return unreadable_parameter(scope.get("query_string") or b"")


class Utf8Url:
    """Pure ASGI middleware: ``url_refusal``'s 400 OperationOutcome (``Cache-Control: no-store``) instead of the
    route, for every HTTP request -- for a browser at a ``/ui/`` page, the Chinese page saying so."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = url_refusal(scope)
            if refused is not None:
                await mark_no_store(unreadable_url_answer(Request(scope), refused))(scope, receive, send)
                return
        await self.app(scope, receive, send)
