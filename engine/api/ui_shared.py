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
out -- and the fidelity page reached into ``ui_quarantine`` for its refusal.

The list of the pages (``PAGES``) is kept here once: the staff header draws the staff pages from it, and the small
pages a person who opened an address leading nowhere is shown -- not found (404), cannot be read (400) -- draw their
way back from it (``lost_page``, ``lost.html``; forty-first round, httpfix41b: each had carried its own copy)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

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


class Page(NamedTuple):
    """One of the pages people open: its address, the staff header's words for it, and the words the way-back list
    of a lost person's page names it by (who it is for said with it)."""

    key: str  # a staff page's ``/ui/session`` ``can`` (who may open it, by the access policy); the resident's: "me"
    href: str
    zh: str  # the staff pages' header
    en: str
    listed_zh: str  # the way back (``lost_page``)
    listed_en: str
    staff: bool  # in the staff pages' header


# The pages, in the way back's order (the staff pages' header keeps it, the resident's left out): the one list of
# them -- the header, the not-found page and the unreadable-address page each had their own copy (rv41i LOW 4).
PAGES: tuple[Page, ...] = (
    Page("duplicates", "/ui/duplicates", "疑似重复", "Duplicates", "疑似重复检查（医保审核）", "Duplicate tests", True),
    Page("insurance", "/ui/insurance", "结算与指标", "Settlement & indicators", "结算与指标", "Settlement and indicators",
         True),
    Page("me", "/ui/me/", "我的健康档案", "My health records", "我的健康档案（居民）", "My health records", False),
    Page("quarantine", "/ui/quarantine", "拒收消息", "Refused messages", "拒收消息（运维）", "Refused messages", True),
    Page("fidelity", "/admin/fidelity", "未映射代码", "Unmapped codes", "未映射代码统计（运维）", "Unmapped codes", True),
)
# The staff pages, in the header's order: (key, address, Chinese, English). A link is shown only when the page's
# ``/ui/session`` ``can`` allows.
STAFF_PAGES: tuple[tuple[str, str, str, str], ...] = tuple((p.key, p.href, p.zh, p.en) for p in PAGES if p.staff)


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


@lru_cache(maxsize=2)
def lost_page(kind: Literal["notfound", "badurl"]) -> str:
    """The small Chinese page a browser opening a ``/ui/`` address that leads to no page is shown, with the way back
    (``PAGES``): ``notfound`` a mistyped address (404), ``badurl`` one that cannot be read (400: escapes that are not
    UTF-8, an escaped ``/`` or ``\\``; ``url_utf8``). Both from ``lost.html`` (``outcomes``, which answers them)."""
    return _TEMPLATES.env.get_template(f"{kind}.html").render(pages=PAGES)


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
