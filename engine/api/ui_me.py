"""``/ui/me``: the resident's own page — a small SMART app served by huren itself.

Static HTML + JavaScript, no build step. The page runs the same standalone launch as any phone app
(PKCE S256 against ``/auth/authorize``, built-in public client ``huren-me``), keeps the access token
in ``sessionStorage`` only, and reads everything through ``/fhir`` with that token, so the
compartment rules that protect the API protect the page too. This module only serves the files
and tells the script where the FHIR base and the auth endpoints are.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from engine.auth.caller import Caller
from engine.auth.deps import get_caller
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
        "names": s.public_base_url + "/ui/me/names",
    }, headers=HEADERS)


@router.get("/ui/me/names", include_in_schema=False)
def names(request: Request, client: list[str] = Query(default=[]),
          institution: list[str] = Query(default=[]),
          caller: Caller = Depends(get_caller)) -> JSONResponse:
    """What the "who looked at my record" view needs to word an AuditEvent's requestor: a
    registered client's name and kind, a member institution's name. The AuditEvents carry codes
    only (a client id, an institution code); a resident's token cannot read the client registry or
    Organizations outside its compartment, so the page asks here, for the ids it holds, and gets
    nothing else: no secrets, scopes or redirect URIs, and unknown ids are simply left out."""
    engine = request.app.state.engine
    clients = {}
    for cid in dict.fromkeys(client[:64]):
        c = engine.auth.registry.get(cid)
        if c is not None:
            clients[cid] = {"name": c.name or "", "kind": c.kind}
    institutions = {}
    for code in dict.fromkeys(institution[:64]):
        inst = engine.site.institutions.get(code)
        if inst is not None:
            institutions[code] = inst.name
    return JSONResponse({"clients": clients, "institutions": institutions}, headers={"Cache-Control": "no-store"})


def mount_static(app) -> None:  # noqa: ANN001
    """Scripts and styles of the page (called from ``create_app``)."""
    app.mount("/ui/me/static", StaticFiles(directory=str(STATIC)), name="ui-me-static")
