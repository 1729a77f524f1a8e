"""Scripts shared by the staff pages and the resident's page, under ``/ui/shared/static``.

One file for what both would otherwise write twice (Beijing's calendar and clock, ``beijing.js``).
Served like the pages' own scripts: no session needed to fetch code, none of it holds data."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Scope

STATIC = Path(__file__).parent / "static" / "shared"
# The pages' documents (the staff pages -- duplicates, insurance, quarantine -- and the resident's /ui/me):
# scripts and styles of this origin only, never framed, never cached (they are filled with patient data
# by their scripts), no referrer (the resident's callback URL carries the authorization code).
STAFF_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class PageFiles(StaticFiles):
    """The pages' scripts and styles, and nothing else of their folders.

    The folders also hold the pages' HTML (``me/index.html`` is a template), which their routes serve
    with the Content-Security-Policy, frame refusal and no-store; fetched here they had come without
    any of those (a frameable copy of the auditors' page, the resident's template with its
    ``{{ placeholders }}``), so HTML is not served from here. Every file says ``nosniff``: a script or
    stylesheet is only ever run as what it is labelled."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.lower().endswith((".html", ".htm")):
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount_static(app: FastAPI) -> None:
    """Called from ``create_app`` beside the pages' own mounts."""
    app.mount("/ui/shared/static", PageFiles(directory=str(STATIC)), name="ui-shared-static")
