"""``/ui/duplicates``: the auditors' page (filters, table with drill-down to the evidence, charts);
``/ui/insurance``: the settlement and the month's indicators with their alerts, charted.

A small static app — one HTML file, one script, one stylesheet, no build step and nothing from
the internet. The page is for named staff signed in at ``/ui/signin`` (password + TOTP): without a
live session it redirects there. It holds no data; its script calls ``/reports/duplicates`` with
the session cookie (and echoes the session's CSRF token on reviews), so the API's authorisation
and audit apply to every figure it shows and every review names the person who made it. The
settlement and indicators page works the same way over ``/reports/settlement`` and
``/reports/indicators``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import Response

from engine.api.ui_shared import PageFiles, staff_page, staff_templates
from engine.api.ui_signin import current_session, signin_redirect

STATIC = Path(__file__).resolve().parent / "static" / "duplicates"
templates = staff_templates(STATIC)  # the pages' header is the shared one (ui_shared)

router = APIRouter()


@router.get("/ui/duplicates", include_in_schema=False)
def page(request: Request) -> Response:
    if current_session(request) is None:
        return signin_redirect("/ui/duplicates")
    return staff_page(request, templates, "index.html", "duplicates")


@router.get("/ui/insurance", include_in_schema=False)
def insurance_page(request: Request) -> Response:
    if current_session(request) is None:  # back to the same month and year after signing in
        query = request.url.query
        return signin_redirect("/ui/insurance" + (f"?{query}" if query else ""))
    return staff_page(request, templates, "insurance.html", "insurance")


def mount_static(app: object) -> None:
    """Serve the page's script and stylesheet under ``/ui/duplicates/static``."""
    app.mount("/ui/duplicates/static", PageFiles(directory=STATIC), name="ui-duplicates-static")  # type: ignore[attr-defined]
