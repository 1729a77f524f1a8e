"""Every error leaves the API as a FHIR ``OperationOutcome`` with the status its meaning calls for."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from engine import fhirjson
from engine.errors import FhirError

FHIR_JSON = "application/fhir+json"


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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FhirError)
    async def _fhir_error(_: Request, exc: FhirError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "exception" if exc.status_code >= 500 else "invalid")
        return fhir_response(outcome("error", code, str(exc.detail)), exc.status_code, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
        issues = [
            {"severity": "error", "code": "invalid", "diagnostics": e.get("msg", "invalid"),
             "expression": [".".join(str(p) for p in e.get("loc", ()))]}
            for e in exc.errors()
        ]
        return fhir_response({"resourceType": "OperationOutcome", "issue": issues}, 400)
