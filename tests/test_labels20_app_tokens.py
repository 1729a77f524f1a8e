"""Removing a resident app ends the tokens it holds (labels20).

Found wrong: a resident's access token named its app (``client_id``) but nothing held it against
the app's registration, so an app removed with ``huren client remove`` (withdrawn, compromised)
kept opening its residents' records until each token expired. A resident's token now carries the
app's registration fingerprint, like a system client's, and is refused (401) once the app is gone
or registered again. The real SMART standalone launch over HTTP (login pages, OTP, PKCE), the real store.
"""

from __future__ import annotations

from tests.test_resident_launch import APP, app, bearer, http, launch, people  # noqa: F401 - fixtures


def test_a_removed_resident_app_no_longer_opens_the_record(http, engine):  # noqa: F811
    first = launch(http, engine)
    assert http.get("/probe/Observation", headers=bearer(first["access_token"])).status_code == 200
    assert engine.auth.registry.remove(APP)
    r = http.get("/probe/Observation", headers=bearer(first["access_token"]))
    assert r.status_code == 401, r.text
