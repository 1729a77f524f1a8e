"""Every app ``create_app`` makes lists the same inclusion of each module router (made once per
process), so FastAPI builds those routes once, not again for each app (thirty-first round,
suitecost31). What must hold: each app still answers from its own engine, its routes and OpenAPI
document are those of an app that includes the routers itself, and a router whose start-up or
shutdown handlers an inclusion would have to carry is refused rather than silently dropped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from engine.api import app as app_module
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings


@pytest.fixture
def two_engines(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    first = Engine(Settings(data_dir=tmp_path / "a", http_port=0, mllp_port=0))
    second = Engine(Settings(data_dir=tmp_path / "b", http_port=0, mllp_port=0))
    yield first, second
    first.close()
    second.close()


def _patient(family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", "name": [{"family": family}]}


def test_two_apps_share_the_inclusions_and_each_answers_from_its_own_engine(
        two_engines: tuple[Engine, Engine], client_token: Any) -> None:
    first, second = two_engines
    app_a, app_b = create_app(first), create_app(second)
    shared = [r for r in app_a.router.routes if hasattr(r, "original_router")]
    assert len(shared) >= 18
    assert all(any(r is s for r in app_b.router.routes) for s in shared)
    with TestClient(app_a) as a, TestClient(app_b) as b:
        a.headers["Authorization"] = "Bearer " + client_token(first)
        b.headers["Authorization"] = "Bearer " + client_token(second)
        assert a.put("/fhir/Patient/p1", json=_patient("王")).status_code == 201
        assert b.put("/fhir/Patient/p1", json=_patient("李")).status_code == 201
        assert a.get("/fhir/Patient/p1").json()["name"] == [{"family": "王"}]
        assert b.get("/fhir/Patient/p1").json()["name"] == [{"family": "李"}]
        assert a.delete("/fhir/Patient/p1").status_code in (200, 204)
        assert a.get("/fhir/Patient/p1").status_code == 410
        assert b.get("/fhir/Patient/p1").json()["name"] == [{"family": "李"}]
        # a token of the other engine's keys is refused on each (each app's own auth, same routes)
        assert a.get("/fhir/Patient/p1", headers={"Authorization": b.headers["Authorization"]}).status_code == 401


def test_the_routes_and_openapi_are_those_of_the_apps_own_inclusions(
        two_engines: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = two_engines
    shared = create_app(first)
    monkeypatch.setattr(app_module, "_include", lambda app, router: app.include_router(router))
    own = create_app(second)
    assert not any(r is s for r in own.router.routes for s in shared.router.routes
                   if hasattr(s, "original_router"))

    def listed(app: Any) -> list[tuple[str, str, tuple[str, ...]]]:
        return [(type(r).__name__, getattr(r, "path", ""), tuple(sorted(getattr(r, "methods", None) or ())))
                for r in app.routes]

    assert listed(shared) == listed(own)
    assert shared.openapi() == own.openapi()


def test_a_router_with_start_up_handlers_is_refused() -> None:
    router = APIRouter()
    router.add_event_handler("startup", lambda: None)
    app = FastAPI()
    with pytest.raises(ValueError, match="start-up or shutdown"):
        app_module._include(app, router)
