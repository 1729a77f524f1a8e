"""OAuth2 / SMART endpoints: ``/auth/token``, ``/auth/jwks``, ``/.well-known/smart-configuration``.

The token endpoint speaks OAuth2, not FHIR: form-encoded requests, JSON answers, errors as
``{"error", "error_description"}`` (RFC 6749 §5.2) and ``Cache-Control: no-store`` on everything
that carries a token.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from engine.auth.errors import OAuthError

router = APIRouter(tags=["auth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def oauth_error(exc: OAuthError) -> JSONResponse:
    return oauth_json(exc.body(), exc.status, exc.headers)


async def _form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("application/x-www-form-urlencoded"):
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    form = await request.form()
    out: dict[str, str] = {}
    for key in form:
        values = form.getlist(key)
        if len(values) != 1:
            raise OAuthError("invalid_request", f"parameter {key!r} given more than once")
        if not isinstance(values[0], str):
            raise OAuthError("invalid_request", f"parameter {key!r} must be a plain value")
        out[key] = values[0]
    return out


@router.post("/auth/token")
async def token(request: Request) -> JSONResponse:
    auth = request.app.state.engine.auth
    try:
        form = await _form(request)
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant == "client_credentials":
            client = auth.authenticate_client(form, request.headers.get("authorization"))
            return oauth_json(auth.client_credentials(client, form.get("scope")))
        if grant in ("authorization_code", "refresh_token") and hasattr(auth, "resident"):
            client = auth.authenticate_client(form, request.headers.get("authorization"))
            return oauth_json(auth.resident.token(grant, client, form))
        raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")
    except OAuthError as exc:
        return oauth_error(exc)


@router.get("/auth/jwks")
def jwks(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.engine.auth.jwks(), headers={"Cache-Control": "public, max-age=300"})
