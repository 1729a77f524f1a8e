"""``/admin/fidelity`` opened in a browser: the same report as a page an operator reads in Chinese.

The route (``engine.api.admin.fidelity``) stays the one place that builds the report and decides who
may read it; a program (a bearer token, or an ``Accept`` without ``text/html``) still gets JSON. A
person opening the address had been shown the raw JSON -- ``{"institutions":{}}`` when nothing was
unmapped -- and an auditor an OperationOutcome in English (thirty-eighth round, ui38). Here the
report is rendered server-side (no script: the page only shows what the route answered), with the
gate the refused-messages page uses: nobody signed in is sent to sign in and back, a signed-in
person whose role may not read it is told so in Chinese (403), as on ``/ui/quarantine``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from engine.api.ui_quarantine import _caller, _refused
from engine.api.ui_shared import STAFF_PAGE_HEADERS
from engine.api.ui_signin import signin_redirect
from engine.auth.caller import Caller
from engine.auth.deps import engine_of
from engine.auth.policy import allowed, require_operator
from engine.recognition.review_note import local_words
from mappings.site import DEFAULT_ZONE

STATIC = Path(__file__).resolve().parent / "static" / "fidelity"
templates = Jinja2Templates(directory=str(STATIC))

TITLE_ZH, TITLE_EN = "未映射代码统计", "Unmapped codes"
# what a row's ``kind`` is, said in words (a code table's name is kept after them: the analyst's key)
KINDS = {"segment": "未识别的段 Unknown segment", "warning": "转换警告 Conversion warning",
         "code": "未映射的代码 Unmapped code"}


def wants_page(request: Request) -> bool:
    """A browser's own GET of the address (``text/html`` asked, no bearer token): a program keeps JSON."""
    return (request.method == "GET" and "text/html" in request.headers.get("accept", "")
            and not request.headers.getlist("authorization"))


def gate(request: Request) -> Caller | Response:
    """The person who may read the page, else the answer to give them instead (sign in, or not allowed)."""
    caller = _caller(request)
    if caller is None:
        query = request.url.query
        return signin_redirect(request.url.path + (f"?{query}" if query else ""))
    if not allowed(require_operator, caller, "read"):
        return _refused(request, caller, (TITLE_ZH, TITLE_EN))
    return caller


def _kind(kind: str) -> str:
    return KINDS.get(kind, f"未映射的代码 Unmapped code（{kind}）")


def _detail(item: dict[str, Any]) -> str:
    """A row's detail in Chinese: an unmapped code's or segment's stored text is English
    ("unmapped code 'ZN9' at OBX-3") and says nothing the row's columns do not; a conversion
    warning's text is the engine's own (its advice beside it)."""
    kind, value, where = str(item.get("kind") or ""), str(item.get("value") or ""), str(item.get("where") or "")
    if kind == "warning":
        return str(item.get("message") or "")
    if kind == "segment":
        return f"段“{value}”本系统不认识，其内容未转换。"
    return f"{where + ' 的' if where else ''}代码“{value}”不在站点的代码对照表中，请补充对照。"


def render(request: Request, report: dict[str, Any], institution: str | None) -> Response:
    """The report, institution by institution, named as the site names them, times in the site's zone."""
    site = engine_of(request).site
    blocks = []
    for code in sorted(report["institutions"]):
        inst = report["institutions"][code]
        known = site.institution(code)
        zone = known.timezone if known is not None else DEFAULT_ZONE
        rows = [{**item, "kind_words": _kind(str(item.get("kind") or "")), "detail": _detail(item),
                 "last": local_words(str(item.get("last_seen") or ""), zone)} for item in inst["items"]]
        advice = sorted({text for by_key in (inst.get("advice") or {}).values() for text in by_key.values()})
        blocks.append({"code": code, "name": known.name if known is not None else "", "unmapped": inst["unmapped"],
                       "warnings": inst["warnings"], "rows": rows, "advice": advice,
                       "alerts": sorted(inst.get("alerts") or {}), "client_alert": inst.get("client_alert")})
    return templates.TemplateResponse(request, "index.html", {"blocks": blocks, "institution": institution or ""},
                                      headers=STAFF_PAGE_HEADERS)
