"""The FastAPI application: one router per concern, all sharing one ``Engine``.

Routers: ``fhir`` (FHIR R4 REST), ``auth`` (OAuth2 / SMART), ``ingest`` (POST /hl7v2), ``reports``,
``audit``, ``admin``, ``cds`` (CDS Hooks), ``ui`` (auditor and resident pages). The engine is put on
``app.state.engine``; routes reach it through the ``get_engine`` dependency.
"""

from __future__ import annotations

from fastapi import FastAPI, Request

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
from engine.audit.middleware import install_audit
from engine.engine import Engine


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


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
    app.include_router(metadata_api.router)  # GET /fhir/metadata, public
    app.include_router(recognition_api.router)  # ServiceRequest/$check-recognition, /admin/reload
    app.include_router(measures_api.router)  # Measure/{id}/$evaluate-measure
    app.include_router(identity_api.router)  # Patient/$match, $ihe-pix, $link, $unlink
    app.include_router(family_api.router)  # Patient/$family-grant, $family-withdraw
    app.include_router(referral_api.router)  # ServiceRequest|Task/{id}/$summary, /reports/referrals
    app.include_router(fhir_api.router)
    app.include_router(auth_api.router)
    app.include_router(hl7v2_api.router)
    app.include_router(admin_api.router)
    app.include_router(reports_api.router)
    app.include_router(insurance_api.router)
    app.include_router(cds_api.router)
    app.include_router(audit_api.router)
    app.include_router(ui_me.router)
    ui_me.mount_static(app)
    app.include_router(ui_signin.router)  # staff sign-in for the pages
    app.include_router(ui_duplicates.router)
    ui_duplicates.mount_static(app)
    app.include_router(ui_quarantine.router)  # the operator's refused messages
    ui_quarantine.mount_static(app)
    ui_shared.mount_static(app)
    app.router.on_startup.append(recognition_api.sighup_reloader(engine))
    app.add_middleware(NoStore)  # innermost: Cache-Control: no-store on /fhir answers (FastRead marks its own)
    app.add_middleware(FastRead)  # GET /fhir/{type}/{id} without the router, same decision
    app.add_middleware(RequestLimits, max_bytes=int(engine.settings.max_request_bytes),
                       max_depth=int(engine.settings.max_json_depth))
    install_audit(app)  # last: wraps every route, writes one AuditEvent per request
    # a client asking for application/json gets its answers named so -- the limits' 413 and the audit's
    # refusals included (outside them)
    app.add_middleware(JsonLabel)
    # outermost: a CORS preflight is answered before routing and audit
    app.add_middleware(Cors, origins=AllowedOrigins(engine.auth.registry, engine.settings.cors_origins))
    return app
