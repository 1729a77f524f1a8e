"""Every error leaves the API as a FHIR ``OperationOutcome`` with the status its meaning calls for."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, Response

from engine import fhirjson
from engine.api.formats import accept_of, prefers
from engine.api.ui_shared import lost_page
from engine.auth.secret_file import SecretFileUnreadable
from engine.errors import FhirError

# R4 http.html#mime-type: "requests and responses SHALL explicitly set the character encoding to UTF-8 using the
# charset parameter of the MIME-type in the Content-Type header" -- HTTP/1.1 had defaulted a body with none to
# ISO-8859-1, and a generic client (Python requests, for one) guesses the encoding of an application/fhir+json it
# does not know as JSON. Every FHIR answer huren writes is labelled by this (ffix40; rv40e LOW 5): the routed /fhir,
# the fast read, metadata, every OperationOutcome, the operations, the reports' Bundles, the limiter's and CORS's and
# the audit's refusals. ``formats.relabel_plain_json`` keeps the parameter when it names the type application/json.
FHIR_JSON = "application/fhir+json; charset=utf-8"


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(fhirjson.dumps(body), status_code=status, headers=headers, media_type=FHIR_JSON)


def outcome(severity: str, code: str, diagnostics: str, expression: list[str] | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


_HTTP_CODES = {401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported", 406: "not-supported",
               409: "conflict", 410: "deleted", 412: "conflict", 415: "not-supported", 422: "processing"}


def error_response(exc: FhirError) -> Response:
    return fhir_response(exc.outcome(), exc.status, exc.headers)


# the routes a person meets in a browser (a resident's SMART sign-in, the staff sign-in form)
_PAGE_PATHS = ("/auth/authorize", "/ui/signin")
# the pages a signed-in person opens (``/ui/session`` is the pages' JSON, not a page)
_SIGNED_IN_PAGE_PATHS = ("/ui/duplicates", "/ui/insurance", "/ui/me")

_UNREADABLE_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>暂时无法登录</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>暂时无法登录</h1>
<p>服务器的账户配置文件暂时无法读取，登录已暂停，请稍后再试；如持续出现，请联系信息科。</p>
<p lang="en">Sign-in is unavailable: the server's account registry cannot be read. Please try again later.</p>
</main></body></html>
"""

# the same refusal met by a person already signed in, opening a staff or resident page
_UNREADABLE_SIGNED_IN_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>服务暂时不可用</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>服务暂时不可用</h1>
<p>服务器的账户配置文件暂时无法读取，为安全起见暂停所有页面访问，请稍后刷新重试；如持续出现，请联系信息科。</p>
<p lang="en">The service is unavailable: the server's account registry cannot be read. Please try again later.</p>
</main></body></html>
"""


def _page_for(request: Request) -> str | None:
    """The Chinese page a broken account file is shown as at this path, None where a program calls."""
    path = request.url.path
    for paths, page in ((_PAGE_PATHS, _UNREADABLE_PAGE), (_SIGNED_IN_PAGE_PATHS, _UNREADABLE_SIGNED_IN_PAGE)):
        if any(path == p or path.startswith(p + "/") for p in paths):
            return page
    return None


_NOT_FOUND_HEADERS = {
    "Cache-Control": "no-store", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; style-src 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'none'",
}


def unreadable_url_answer(request: Request, refused: FhirError) -> Response:
    """The answer to a request whose address cannot be read (``url_utf8``: escapes that are not UTF-8, an escaped
    ``/``, two Host headers): for a browser the small Chinese 400 page, as a mistyped address gets
    ``notfound.html`` -- a person had been shown an OperationOutcome in English JSON, under ``/ui/`` (rv41c LOW 6)
    and, until http42, at ``/``, ``/login`` or ``/admin``; for a program (``_wants_page``) ``refused``'s
    OperationOutcome. Outside ``/fhir`` both say ``Vary: Accept``: the same address answers either by it, and the
    program's had said nothing of it (rv42c LOW 4; the 404's two answers had it since http42)."""
    if _wants_page(request):
        return HTMLResponse(lost_page("badurl"), status_code=400, headers={**_NOT_FOUND_HEADERS, "Vary": "Accept"})
    response = error_response(refused)
    if not _under_fhir(request):
        response.headers["Vary"] = "Accept"
    return response


def _wants_page(request: Request) -> bool:
    """A browser opening an address outside the FHIR API: ``Accept`` weighs ``text/html`` above JSON
    (``formats.prefers``; it had looked for the substring, ``text/html;q=0`` included: ufix39) -- Chromium's
    ``text/html,…,*/*;q=0.8`` does; a program's ``application/json``, ``*/*`` or no Accept do not, and keeps the
    OperationOutcome. ``/fhir`` answers FHIR's OperationOutcome whatever it is asked with (its clients negotiate
    by ``_format`` and the FHIR types; R4 serves no HTML there). It had been ``/ui/`` only, so a person typing
    ``/``, ``/login`` or ``/admin`` -- a sign-in page guessed, an address with ``%FC`` pasted from a chat -- read
    English JSON (httpfix41 LOW; http42)."""
    return not _under_fhir(request) and prefers(accept_of(request), "text/html", "application/json",
                                                "application/fhir+json")


def _under_fhir(request: Request) -> bool:
    path = request.url.path
    return path == "/fhir" or path.startswith("/fhir/")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FhirError)
    async def _fhir_error(request: Request, exc: FhirError) -> Response:
        page = _page_for(request) if isinstance(exc, SecretFileUnreadable) else None
        if page is not None:
            # a person at a sign-in page or a signed-in page reads Chinese, not an OperationOutcome
            # in English (the reviews of labelsmend20 and labelslast20); the file's name and cause
            # stay in the server's log
            return HTMLResponse(page, status_code=exc.status, headers={"Retry-After": "60"})
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and _wants_page(request):
            # a mistyped page address (``/ui/...``, ``/login``, ``/``), opened in a browser: a small Chinese page
            # with the way back, not an OperationOutcome in JSON (a program asking -- no text/html -- still gets that)
            return HTMLResponse(lost_page("notfound"), status_code=404, headers={**_NOT_FOUND_HEADERS, "Vary": "Accept"})
        code = _HTTP_CODES.get(exc.status_code, "exception" if exc.status_code >= 500 else "invalid")
        response = fhir_response(outcome("error", code, str(exc.detail)), exc.status_code, getattr(exc, "headers", None))
        if exc.status_code == 404 and not _under_fhir(request):
            # the same address outside /fhir answers the page or this by Accept: a cache between must know
            response.headers["Vary"] = "Accept"
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
        issues = [
            {"severity": "error", "code": "invalid", "diagnostics": e.get("msg", "invalid"),
             "expression": [".".join(str(p) for p in e.get("loc", ()))]}
            for e in exc.errors()
        ]
        return fhir_response({"resourceType": "OperationOutcome", "issue": issues}, 400)
