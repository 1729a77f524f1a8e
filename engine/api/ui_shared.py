"""What the staff pages and the resident's page share: scripts under ``/ui/shared/static``, the pages'
headers, and the staff pages' frame.

One file for what both would otherwise write twice (Beijing's calendar and clock, ``beijing.js``).
Served like the pages' own scripts: no session needed to fetch code, none of it holds data.

The staff pages' frame is drawn here once (thirty-ninth round, ui39): the header's links to the other
staff pages and its bar of who is signed in with 退出登录 (``static/shared/staff_header.html``, filled
by ``hurenStaff.whoami`` in ``duplicates/charts.js``: each link shown as ``/ui/session``'s ``can`` allows),
and the page that tells a signed-in person an operator's page is not theirs (``refused``). The
duplicates, settlement, refused-messages and fidelity pages had each carried their own copy of the
header -- the fidelity page none, so an operator there could neither see who was signed in nor sign
out -- and the fidelity page reached into ``ui_quarantine`` for its refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Scope

from engine.auth.caller import Caller
from engine.auth.deps import engine_of

STATIC = Path(__file__).parent / "static" / "shared"
# The pages' documents (the staff pages -- duplicates, insurance, quarantine, fidelity -- and the resident's /ui/me):
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


# The staff pages, in the header's order: (key, address, Chinese, English). The key is the page's
# ``/ui/session`` ``can`` (who may open it, by the access policy); a link is shown only when it allows.
STAFF_PAGES: tuple[tuple[str, str, str, str], ...] = (
    ("duplicates", "/ui/duplicates", "疑似重复", "Duplicates"),
    ("insurance", "/ui/insurance", "结算与指标", "Settlement & indicators"),
    ("quarantine", "/ui/quarantine", "拒收消息", "Refused messages"),
    ("fidelity", "/admin/fidelity", "未映射代码", "Unmapped codes"),
)


def staff_templates(folder: Path) -> Jinja2Templates:
    """A staff page folder's templates, with the shared ones beside them (``staff_header.html``,
    ``refused.html``): a page includes the header rather than carry a copy of it."""
    return Jinja2Templates(directory=[str(folder), str(STATIC)])


_TEMPLATES = staff_templates(STATIC)


def staff_page(request: Request, templates: Jinja2Templates, name: str, current: str,
               context: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Response:
    """A staff page (``current``: its ``STAFF_PAGES`` key) rendered with the shared header."""
    return templates.TemplateResponse(request, name, {"staff_pages": STAFF_PAGES, "current": current, **(context or {})},
                                      headers=headers if headers is not None else STAFF_PAGE_HEADERS)


def refused(request: Request, caller: Caller, page: tuple[str, str] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """The 403 page in Chinese, to a signed-in person (or a resident's token) whose role may not open an
    operator's page: the refused messages by default, ``page`` (zh, en) another (``ui_fidelity``). A staff
    member's has the staff pages' header (who is signed in, 退出登录, the pages they may open; no link marked
    current: the page refused is not theirs); a resident's has none, and is pointed to her own records. A program's
    token (a system client without the operators' scope) gets neither advice: it has no role to ask for and no
    records of its own (review rv40d LOW 4: every caller but staff was told of 我的健康档案)."""
    role = engine_of(request).staff.roles.get(caller.role or "") if caller.role else None
    who = role.label_zh if role is not None else ("居民" if caller.kind == "patient" else "")
    zh, en = page or ("", "")
    return _TEMPLATES.TemplateResponse(request, "refused.html", {"who": who, "staff": caller.role is not None,
                                                                 "resident": caller.kind == "patient",
                                                                 "page_zh": zh, "page_en": en,
                                                                 "staff_pages": STAFF_PAGES, "current": None},
                                       status_code=403, headers=headers if headers is not None else STAFF_PAGE_HEADERS)


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
