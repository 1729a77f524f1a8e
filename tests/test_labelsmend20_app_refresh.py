"""labelsmend20 (review of labels20, finding 4): a patient app registered again with narrower
scopes. Its access token is refused at once (labels20's ``cgen``); its refresh token must not mint
the OLD wider scopes back: a refresh may not widen the grant and the server narrows it to the app's
registration as it stands (SMART App Launch; RFC 6749 §6). Real SMART launch over HTTP, the real
store."""

from __future__ import annotations

from tests.test_resident_launch import APP, REDIRECT, app, bearer, http, launch, people  # noqa: F401 - fixtures


def _register(engine, scopes):  # noqa: ANN001, ANN202
    engine.auth.registry.add(APP, scopes=scopes, kind="patient-app", redirect_uris=[REDIRECT], public=True,
                             name="我的健康")


def _refresh(client, token):  # noqa: ANN001, ANN202
    return client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": token, "client_id": APP})


def test_a_refresh_after_narrowing_the_app_grants_only_its_new_scopes(http, engine):  # noqa: F811
    first = launch(http, engine)
    assert "patient/*.rs" in first["scope"] and first.get("refresh_token")
    assert http.get("/probe/Observation", headers=bearer(first["access_token"])).status_code == 200
    _register(engine, ["launch/patient", "openid", "fhirUser", "offline_access", "patient/Patient.rs"])
    assert http.get("/probe/Observation", headers=bearer(first["access_token"])).status_code == 401
    r = _refresh(http, first["refresh_token"])
    assert r.status_code == 200, r.text
    scope = r.json()["scope"].split()
    assert "patient/*.rs" not in scope and "patient/Patient.rs" in scope, scope
    assert http.get("/probe/Observation", headers=bearer(r.json()["access_token"])).status_code == 403
    # and the refresh token issued beside it carries only the narrowed grant too
    again = _refresh(http, r.json()["refresh_token"])
    assert again.status_code == 200, again.text
    assert "patient/*.rs" not in again.json()["scope"].split()


def test_a_refresh_after_the_app_lost_offline_access_gives_no_new_refresh_token(http, engine):  # noqa: F811
    first = launch(http, engine)
    _register(engine, ["launch/patient", "openid", "fhirUser", "patient/*.rs"])
    r = _refresh(http, first["refresh_token"])
    assert r.status_code == 200, r.text
    assert "offline_access" not in r.json()["scope"].split() and not r.json().get("refresh_token"), r.json()


def test_a_refresh_when_no_resource_scope_is_left_is_refused(http, engine):  # noqa: F811
    first = launch(http, engine)
    _register(engine, ["launch/patient", "openid", "fhirUser", "offline_access", "user/Patient.rs"])
    r = _refresh(http, first["refresh_token"])
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_grant", r.text
