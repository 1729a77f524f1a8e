"""The FastAPI application: one router per concern, all sharing one ``Engine``.

Routers: ``fhir`` (FHIR R4 REST), ``auth`` (OAuth2 / SMART), ``ingest`` (POST /hl7v2), ``reports``,
``audit``, ``admin``, ``cds`` (CDS Hooks), ``ui`` (auditor and resident pages). The engine is put on
``app.state.engine``; routes reach it through ``engine.auth.deps`` (``get_engine``, ``engine_of``).
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute

from adapters.listeners import http as hl7v2_api
from engine.api import admin as admin_api
from engine.api import audit as audit_api
from engine.api import auth as auth_api
from engine.api import cds as cds_api
from engine.api import family as family_api
from engine.api import fhir as fhir_api
from engine.api import identity as identity_api
from engine.api import insurance as insurance_api
from engine.api import measures as measures_api
from engine.api import metadata as metadata_api
from engine.api import recognition as recognition_api
from engine.api import referral as referral_api
from engine.api import reports as reports_api
from engine.api import ui_duplicates, ui_me, ui_quarantine, ui_shared, ui_signin
from engine.api.cors import AllowedOrigins, Cors
from engine.api.fast_read import FastRead
from engine.api.formats import JsonLabel
from engine.api.limits import RequestLimits
from engine.api.no_store import NoStore
from engine.api.outcomes import install_error_handlers
from engine.api.url_utf8 import Utf8Url
from engine.audit.middleware import install_audit
from engine.engine import Engine

# --- the routers' inclusions, made once per process -------------------------------------------
# FastAPI (0.165) builds an included router's routes lazily, per inclusion: at the first request that
# reaches an inclusion it inspects every endpoint of that router again (signature, parameters, one
# pydantic TypeAdapter each) -- ~1-5 ms a route, ~40 routes for a request to /fhir. A server makes one
# app, so it paid that once; the suite makes an app per test (~4,000 a run) and paid it for each
# (thirty-first round, suitecost31: ~16 % of a sample's CPU in the tests, profiled across threads).
# The inclusions are the same for every app -- each module's router with no prefix, tags or
# dependencies -- so each is made once here, in a host app of its own, and every app lists that same
# object among its routes, whose routes are then built once per process. The one thing an inclusion
# holds of the app it was made in is the app whose ``dependency_overrides`` it honours: the host's,
# never overridden (huren sets none; an app made here does not honour ``app.dependency_overrides``).
_HOST = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
_INCLUDED: dict[int, BaseRoute] = {}
_INCLUDED_LOCK = threading.Lock()
_PLAIN_LIFESPAN = type(APIRouter().lifespan_context)


def _include(app: FastAPI, router: APIRouter) -> None:
    """``app.include_router(router)``, with this process's one inclusion of ``router`` (made at the
    first call for it: the same checks and the same include context as the app's own would be)."""
    if router.on_startup or router.on_shutdown or type(router.lifespan_context) is not _PLAIN_LIFESPAN:
        raise ValueError("a router with start-up or shutdown handlers is included with app.include_router")
    with _INCLUDED_LOCK:
        included = _INCLUDED.get(id(router))
        if included is None or getattr(included, "original_router", None) is not router:
            _HOST.include_router(router)
            included = _INCLUDED[id(router)] = _HOST.router.routes[-1]
    app.router.routes.append(included)


def create_app(engine: Engine) -> FastAPI:
    # no OpenTelemetry: huren configures none, and FastAPI's native check for global providers
    # ran on every request (~5 µs, a tenth of a plain read)
    app = FastAPI(title="huren", version="0.1.0", description="Mutual-recognition FHIR integration engine",
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.engine = engine
    install_error_handlers(app)
    # /fhir first: the read and search hot paths are matched after the fewest routes. The specific
    # operations come before the generic /fhir/{type}/{id} patterns ($check-recognition, $match
    # and metadata are not resource ids).
    _include(app, metadata_api.router)  # GET /fhir/metadata, public
    _include(app, recognition_api.router)  # ServiceRequest/$check-recognition, /admin/reload
    _include(app, measures_api.router)  # Measure/{id}/$evaluate-measure
    _include(app, identity_api.router)  # Patient/$match, $ihe-pix, $link, $unlink
    _include(app, family_api.router)  # Patient/$family-grant, $family-withdraw
    _include(app, referral_api.router)  # ServiceRequest|Task/{id}/$summary, /reports/referrals
    _include(app, fhir_api.router)
    _include(app, auth_api.router)
    _include(app, hl7v2_api.router)
    _include(app, admin_api.router)
    _include(app, reports_api.router)
    _include(app, insurance_api.router)
    _include(app, cds_api.router)
    _include(app, audit_api.router)
    _include(app, ui_me.router)
    ui_me.mount_static(app)
    _include(app, ui_signin.router)  # staff sign-in for the pages
    _include(app, ui_duplicates.router)
    ui_duplicates.mount_static(app)
    _include(app, ui_quarantine.router)  # the operator's refused messages
    ui_quarantine.mount_static(app)
    ui_shared.mount_static(app)
    app.router.on_startup.append(recognition_api.sighup_reloader(engine))
    app.add_middleware(NoStore)  # innermost: Cache-Control: no-store on /fhir answers (FastRead marks its own)
    app.add_middleware(FastRead)  # GET /fhir/{type}/{id} without the router, same decision
    app.add_middleware(RequestLimits, max_bytes=int(engine.settings.max_request_bytes),
                       max_depth=int(engine.settings.max_json_depth))
    # a URL that cannot be read as the text sent (``?name=%FC``) is a 400 before any route reads it; audited
    app.add_middleware(Utf8Url)
    install_audit(app)  # last: wraps every route, writes one AuditEvent per request
    # a client asking for application/json gets its answers named so -- the limits' 413 and the audit's
    # refusals included (outside them)
    app.add_middleware(JsonLabel)
    # outermost: a CORS preflight is answered before routing and audit
    app.add_middleware(Cors, origins=AllowedOrigins(engine.auth.registry, engine.settings.cors_origins))
    return app
