"""labelsmend20: the clients file as the server reads it (review of labels20, findings 5 and 6).

(1) Git's "racy clean" rule: a same-size write within one timestamp tick of the read before it
(ext4 hands a freed inode to the next new file, so the inode may repeat too) is seen. Two
registries on one data directory stand for the running server and ``huren client add``; the tick
is simulated with ``os.utime`` as the reviewer did.
(2) A clients file that does not parse (a hand edit's trailing comma) is no 500: every request
that needs the registry is refused 503 with an OperationOutcome and ``Retry-After`` (fail closed:
the edit may have been meant to remove the client), and answered again once the file is mended.
Real HTTP through the app, the real store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.auth.clients import ClientRegistry

CB = ["https://app.example/cb"]


def test_a_third_same_size_write_in_one_tick_is_seen(tmp_path: Path) -> None:
    server, cli = ClientRegistry(tmp_path), ClientRegistry(tmp_path)
    cli.add("app", scopes=["patient/Encounter.rs"], kind="patient-app", public=True, redirect_uris=CB)
    path = tmp_path / "clients.json"
    first = path.stat()
    assert server.get("app").scopes == ["patient/Encounter.rs"]
    cli.add("app", scopes=["patient/Procedure.rs"], kind="patient-app", public=True, redirect_uris=CB)
    cli.add("app", scopes=["patient/Procedure.rs"], kind="patient-app", public=True, redirect_uris=CB, name="")
    os.utime(path, ns=(first.st_atime_ns, first.st_mtime_ns))  # the same tick as write 1
    assert path.stat().st_size == first.st_size
    assert server.get("app").scopes == ["patient/Procedure.rs"]


def test_an_old_file_is_not_read_again(tmp_path: Path) -> None:
    """The rule costs nothing once the file is older than a tick: the cache holds (an edit that
    keeps inode, size and an old mtime -- not something a write does -- is not seen)."""
    server, cli = ClientRegistry(tmp_path), ClientRegistry(tmp_path)
    cli.add("app", scopes=["patient/Encounter.rs"], kind="patient-app", public=True, redirect_uris=CB)
    path = tmp_path / "clients.json"
    old = path.stat().st_mtime_ns - 10_000_000_000
    os.utime(path, ns=(old, old))
    assert server.get("app").scopes == ["patient/Encounter.rs"]
    path.write_text(path.read_text("utf-8").replace("Encounter", "Procedure"), "utf-8")  # in place: same inode, size
    os.utime(path, ns=(old, old))
    assert server.get("app").scopes == ["patient/Encounter.rs"]


def _broken(path: Path) -> str:
    good = path.read_text("utf-8")
    path.write_text(good.rstrip().rstrip("}") + ",}", "utf-8")  # a trailing comma
    return good


def _refused(r: Any) -> None:
    assert r.status_code == 503, (r.status_code, r.text[:300])
    assert r.json()["resourceType"] == "OperationOutcome", r.text
    assert r.headers.get("retry-after")


def test_a_clients_file_that_does_not_parse_is_503_not_500(engine: Any) -> None:
    secret = engine.auth.registry.add("his-b", scopes=["system/*.rs"], kind="system")
    with TestClient(create_app(engine), raise_server_exceptions=False) as http:
        r = http.post("/auth/token", data={"grant_type": "client_credentials"}, auth=("his-b", secret))
        assert r.status_code == 200, r.text
        held = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert http.get("/fhir/Patient?_count=1", headers=held).status_code == 200
        path = engine.settings.data_dir / "clients.json"
        good = _broken(path)
        _refused(http.get("/fhir/Patient?_count=1", headers=held))
        _refused(http.post("/auth/token", data={"grant_type": "client_credentials"}, auth=("his-b", secret)))
        path.write_text(good, "utf-8")  # mended
        assert http.get("/fhir/Patient?_count=1", headers=held).status_code == 200
        r = http.post("/auth/token", data={"grant_type": "client_credentials"}, auth=("his-b", secret))
        assert r.status_code == 200, r.text
