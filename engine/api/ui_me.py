"""``/ui/me``: the resident's own page — a small SMART app served by huren itself.

Static HTML + JavaScript, no build step. The page runs the same standalone launch as any phone app
(PKCE S256 against ``/auth/authorize``, built-in public client ``huren-me``), keeps the access token
in ``sessionStorage`` only, and reads everything through ``/fhir`` with that token, so the
compartment rules that protect the API protect the page too. This module serves the files, tells
the script where the FHIR base and the auth endpoints are, and answers "who looked at my record"
for the signed-in resident (``/ui/me/who-looked``, the audit trail's own rule, worded for people).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from engine.api.ui_me_wards import visit_wards
from engine.api.ui_shared import STAFF_PAGE_HEADERS, PageFiles
from engine.audit.note import note
from engine.audit.who_looked import who_looked
from engine.auth.caller import Caller
from engine.auth.deps import engine_of, get_caller, get_repo
from engine.auth.service import ME_CLIENT_ID
from engine.auth.staff import STAFF_CLIENT_ID
from engine.errors import Forbidden, Gone, NotFound
from engine.repository.scoped import ScopedRepository

STATIC = Path(__file__).resolve().parent / "static" / "me"
router = APIRouter(tags=["ui"])
templates = Jinja2Templates(directory=str(STATIC))

HEADERS = STAFF_PAGE_HEADERS  # one policy for every page's document (ui_shared)


@router.get("/ui/me", include_in_schema=False)
def me_redirect() -> Response:
    return RedirectResponse("/ui/me/", status_code=308)


@router.get("/ui/me/", response_class=HTMLResponse, include_in_schema=False)
def me(request: Request) -> HTMLResponse:
    engine = engine_of(request)
    s = engine.settings
    return templates.TemplateResponse(request, "index.html", {
        "fhir_base": s.fhir_base_url, "client_id": ME_CLIENT_ID, "redirect_uri": s.public_base_url + "/ui/me/",
        "authorize": s.public_base_url + "/auth/authorize", "token": s.public_base_url + "/auth/token",
        "who": s.public_base_url + "/ui/me/who-looked", "userinfo": s.public_base_url + "/auth/userinfo",
        "revoke": s.public_base_url + "/auth/revoke",
        # the names of the wards of the resident's visits, as the engine names them (ui_me_wards)
        "wards": s.public_base_url + "/ui/me/wards",
    }, headers=HEADERS)


class _CallersSearch:
    """``who_looked`` searches with an explicit compartment; here the search goes through the
    caller's scoped repository, which applies the caller's compartment and what a confined caller
    may be shown (access is decided there, not here)."""

    def __init__(self, repo: ScopedRepository) -> None:
        self.repo = repo

    def search(self, rtype: str, params: Any, *, compartment: Any = None) -> Any:  # noqa: ARG002
        return self.repo.search(rtype, params)


@router.get("/ui/me/who-looked", include_in_schema=False)
async def who_looked_me(request: Request, caller: Caller = Depends(get_caller),
                        repo: ScopedRepository = Depends(get_repo)) -> JSONResponse:
    """谁看过我的档案: the accesses to the signed-in resident's records, worded for the page.

    The rule of what a resident may see is ``engine.audit.who_looked`` (per-patient views searched
    within the caller's compartment); this route only runs it for the caller, first bringing the
    views up to date so the reads of a moment ago are there, and adds what the page cannot look up
    itself with a resident's token: a client's registered name and kind (hospital system, health
    worker, auditor, app), a member institution's name, and whether a resident requestor is the
    caller (only the caller's own accesses carry their id; anyone else's show as another resident),
    and for a family member who looked on the resident's behalf, the name the resident gave them.
    A family member acting for the resident sees the resident's list (it is the record they opened).
    """
    if caller.kind != "patient" or not caller.patient_ids:
        raise Forbidden("who looked at a record is answered for a signed-in resident, about their own records")
    engine = engine_of(request)
    registry = engine.auth.registry

    def name(client_id: str) -> str:
        client = registry.get(client_id)
        return client.name if client is not None else ""

    # the resident whose record this is: the caller, or whom a family member acts for
    me = engine.auth.resident.person_of(caller.patient) if caller.acting and caller.patient else caller.subject

    def family_name(ref: str) -> str:
        """A family member acting for the resident, as the resident named them: 王芳（女儿）."""
        try:
            rp = repo.read("RelatedPerson", ref.removeprefix("RelatedPerson/"))
        except (NotFound, Gone, Forbidden):
            return ""
        name = next((n.get("text") or "".join([n.get("family", ""), *n.get("given", [])]) for n in rp.get("name") or ()), "")
        relation = next((r.get("text") for r in rp.get("relationship") or () if r.get("text")), "")
        return f"{name}（{relation}）" if name and relation else name

    def run() -> list[dict[str, Any]]:
        accesses = who_looked(_CallersSearch(repo), caller.patient_ids, names=name, staff_roles=engine.staff.roles)
        out = []
        names: dict[str, str] = {}
        for a in accesses:
            role, who_name = a.role, a.who_name
            if role == "family" and a.who:
                if a.who not in names:
                    names[a.who] = family_name(a.who)
                who_name = names[a.who]
            if role == "resident":
                role = "resident" if a.who and a.who == me else "other-resident"
            elif role == "system":
                client = registry.get(a.who)
                role = client.kind if client is not None else "system"
            elif role == "sending-institution":
                inst = engine.site.institutions.get(a.who)
                who_name = inst.name if inst is not None else ""
            app = registry.get(a.via_app) if a.via_app else None
            out.append({"when": a.when, "who": a.who if role not in ("resident", "other-resident") else "",
                        "who_name": who_name, "role": role, "what": a.what, "resource_types": list(a.resource_types),
                        "outcome": a.outcome, "via_app": a.via_app, "via_app_name": app.name if app else "",
                        # the staff pages' own client: a read on the pages, not through another app
                        "via_staff_pages": a.via_app == STAFF_CLIENT_ID, "record": a.record})
        return out

    entries = await run_in_threadpool(run)
    return JSONResponse({"entries": entries}, headers={"Cache-Control": "no-store"})


@router.get("/ui/me/wards", include_in_schema=False)
async def wards_of_my_visits(request: Request, caller: Caller = Depends(get_caller),
                             repo: ScopedRepository = Depends(get_repo)) -> JSONResponse:
    """科室/病区: the name of each ward the signed-in resident's visits were at, as the engine names a
    ward now (``engine.wards.ward_name``, the one owner: the site's table, else the ward's current
    name as stored, ...), so the page shows what the reports say and holds no rule of its own
    (``engine.api.ui_me_wards``). Only the caller's own visits (or, for a family member acting, the
    resident's), through the same scoped search as ``/fhir``.

    The search is noted in the audit trail as ``/fhir`` notes one (``engine.audit.note``: each page's
    query and the Encounters it found, whose patients the record names; then the Locations read above
    them). A family member's look at where the resident was admitted, ward, room and bed, is
    then in her who-looked list, and so are her own reads (rv36e MED 2)."""
    if caller.kind != "patient" or not caller.patient_ids:
        raise Forbidden("the wards of a resident's visits are answered for a signed-in resident, about their own visits")
    engine = engine_of(request)
    seen = await run_in_threadpool(visit_wards, engine, repo)
    for query, encounters in seen.searches:  # (one record: the middleware folds the notes, the first query kept)
        note(request, action="search", resources=encounters, query=query)
    if seen.locations:
        note(request, action="read", resources=seen.locations)
    return JSONResponse({"wards": seen.wards}, headers={"Cache-Control": "no-store"})


def mount_static(app) -> None:  # noqa: ANN001
    """Scripts and styles of the page (called from ``create_app``)."""
    app.mount("/ui/me/static", PageFiles(directory=str(STATIC)), name="ui-me-static")
