"""``/ui/me``: the resident's own page — a small SMART app served by huren itself.

Static HTML + JavaScript, no build step. The page runs the same standalone launch as any phone app
(PKCE S256 against ``/auth/authorize``, built-in public client ``huren-me``), keeps the access token
in ``sessionStorage`` only, and reads everything through ``/fhir`` with that token, so the
compartment rules that protect the API protect the page too. This module only serves the files
and tells the script where the FHIR base and the auth endpoints are.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from engine.auth.service import ME_CLIENT_ID

STATIC = Path(__file__).resolve().parent / "static" / "me"
router = APIRouter(tags=["ui"])
templates = Jinja2Templates(directory=str(STATIC))

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the callback URL carries the authorization code
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}


@router.get("/ui/me", include_in_schema=False)
def me_redirect() -> Response:
    return RedirectResponse("/ui/me/", status_code=308)


@router.get("/ui/me/", response_class=HTMLResponse, include_in_schema=False)
def me(request: Request) -> HTMLResponse:
    s = request.app.state.engine.settings
    return templates.TemplateResponse(request, "index.html", {
        "fhir_base": s.fhir_base_url, "client_id": ME_CLIENT_ID, "redirect_uri": s.public_base_url + "/ui/me/",
        "authorize": s.public_base_url + "/auth/authorize", "token": s.public_base_url + "/auth/token",
    }, headers=HEADERS)


def mount_static(app) -> None:  # noqa: ANN001
    """Scripts and styles of the page (called from ``create_app``)."""
    app.mount("/ui/me/static", StaticFiles(directory=str(STATIC)), name="ui-me-static")
