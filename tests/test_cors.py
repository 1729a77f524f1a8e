"""A SMART app served from another origin can run in a browser: CORS on discovery, token and FHIR.

Mirrors the CORS checks of Inferno's SMART App Launch test kit (well-known, metadata, token
exchange, fhirUser read) and a browser's preflight, over real HTTP.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests import test_resident_launch as launch_flow
from tests.test_resident_launch import bearer, launch

# the resident sign-in fixtures (two residents, a registered public app on https://phr.example)
people, app, http = launch_flow.people, launch_flow.app, launch_flow.http

APP_ORIGIN = "https://phr.example"  # the origin of the registered redirect URI
STRANGER = "https://evil.example"


def test_discovery_is_readable_from_any_origin(http):
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration", "/fhir/metadata"):
        r = http.get(path, headers={"Origin": STRANGER})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] in ("*", STRANGER), path
        assert "access-control-allow-credentials" not in r.headers


def test_preflight_for_the_registered_apps_origin(http):
    for path, method in (("/fhir/Patient", "GET"), ("/auth/token", "POST"), ("/fhir/Observation", "POST")):
        r = http.options(path, headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": method,
                                        "Access-Control-Request-Headers": "authorization, content-type"})
        assert r.status_code == 204, (path, r.status_code, r.text)
        assert r.headers["access-control-allow-origin"] == APP_ORIGIN
        assert method in r.headers["access-control-allow-methods"]
        assert "Authorization" in r.headers["access-control-allow-headers"]
        assert "Origin" in r.headers["vary"]
        assert "access-control-allow-credentials" not in r.headers


def test_preflight_from_an_unknown_origin_is_refused(http):
    r = http.options("/fhir/Patient", headers={"Origin": STRANGER, "Access-Control-Request-Method": "GET"})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers


def test_token_exchange_and_fhir_user_read_carry_the_apps_origin(http, engine):
    http.headers["Origin"] = APP_ORIGIN
    tokens = launch(http, engine)  # the token exchange is made with the Origin header
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == APP_ORIGIN
    r = http.get(f"/fhir/Patient/{tokens['patient']}", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "ETag" in r.headers["access-control-expose-headers"]
    r = http.get("/auth/userinfo", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == APP_ORIGIN
    assert r.json()["fhirUser"].endswith(f"/fhir/Patient/{tokens['patient']}")
    # the same call from a stranger's page gets no CORS header: the browser withholds the answer
    r = http.get(f"/fhir/Patient/{tokens['patient']}", headers={**bearer(tokens["access_token"]), "Origin": STRANGER})
    assert "access-control-allow-origin" not in r.headers


def test_a_newly_registered_app_and_configured_origins_are_allowed(settings):
    s = settings.with_(cors_origins="https://portal.example, https://Kiosk.example:8443")
    with Engine(s) as engine, TestClient(create_app(engine)) as client:
        def preflight(origin: str) -> int:
            return client.options("/fhir/Patient", headers={"Origin": origin,
                                                             "Access-Control-Request-Method": "GET"}).status_code

        assert preflight("https://portal.example") == 204
        assert preflight("https://kiosk.example:8443") == 204
        assert preflight("https://late.example") == 403
        engine.auth.registry.add("late-app", scopes=["patient/*.rs"], kind="patient-app",
                                 redirect_uris=["https://late.example/app/cb"], public=True)
        assert preflight("https://late.example") == 204
