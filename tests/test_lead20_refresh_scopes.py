"""The review of labelsmend20 (its reviewer's probes, kept): a refresh against the registration as it stands -- a
hand-edited clients file naming a malformed scope answers invalid_client, not a 500; a narrower asked scope keeps
offline_access."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.test_resident_launch import APP, app, http, launch, people  # noqa: F401 - fixtures


def _refresh(client, token):  # noqa: ANN001, ANN202
    return client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": token, "client_id": APP})


def test_a_refresh_with_a_hand_edited_scope_in_the_file_is_no_500(app, engine):  # noqa: F811
    with TestClient(app, base_url="https://huren.test", raise_server_exceptions=False) as client:
        first = launch(client, engine)
        path = engine.settings.data_dir / "clients.json"
        doc = json.loads(path.read_text("utf-8"))
        doc["clients"][APP]["scopes"].append("patient/observation.rs")  # an operator's typo (lower case)
        path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
        r = _refresh(client, first["refresh_token"])
        assert r.status_code < 500, (r.status_code, r.text[:300])


def test_a_refresh_asking_a_narrower_scope_keeps_offline_access(http, engine):  # noqa: F811
    first = launch(http, engine)
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                       "client_id": APP, "scope": "patient/Patient.rs"})
    assert r.status_code == 200, r.text
    assert r.json()["scope"].split() == ["patient/Patient.rs", "offline_access"] or "offline_access" in r.json()["scope"]
    assert r.json().get("refresh_token")
    again = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": r.json()["refresh_token"],
                                           "client_id": APP})
    assert again.status_code == 200 and "patient/Observation.rs" not in again.json()["scope"], again.text
