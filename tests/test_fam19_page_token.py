"""The resident page's access token lives 15 minutes, not an hour (nineteenth round, fam19).

Signing out of /ui/me drops the token from the page and revokes it by a request the page does not
wait for (a beacon): one that never arrives (the network gone as the phone is handed on) left the
token live for its whole hour. The built-in page's tokens (client ``huren-me``) now last
``me_token_ttl_seconds`` (900, as the staff pages' idle limit); other SMART apps keep
``token_ttl_seconds`` and their refresh tokens. Real sign-in pages and ``/auth/token``; SQLite and
mongomock.
"""

from __future__ import annotations

import jwt

from tests import test_famfix18_grant_person as famfix18
from tests.test_famfix18_grant_person import PHR, _grant
from tests.test_resident_family import SUN, bearer, proxy_sign_in

world = famfix18.world


def _lifetime(token: dict) -> int:
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == token["expires_in"]
    return token["expires_in"]


def test_the_pages_token_is_short_other_apps_keep_theirs(world):
    engine, http, tools = world
    _grant(http, tools)
    own, _ = proxy_sign_in(http, engine, SUN, None)  # the page, his own record
    acting, _ = proxy_sign_in(http, engine, SUN, "孙小宝")  # the page, acting for his daughter
    assert _lifetime(own) == 900 and _lifetime(acting) == 900
    assert "refresh_token" not in own
    assert http.get("/fhir/Observation", headers=bearer(acting["access_token"])).status_code == 200
    app, _ = proxy_sign_in(http, engine, SUN, "孙小宝", app=PHR)
    assert _lifetime(app) == 3600 and "refresh_token" in app
    refreshed = http.post("/auth/token", data={"grant_type": "refresh_token", "client_id": PHR[0],
                                               "refresh_token": app["refresh_token"]}).json()
    assert _lifetime(refreshed) == 3600
