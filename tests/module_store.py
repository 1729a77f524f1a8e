"""One engine a test module, on each storage backend (suitedup31).

``tests/test_fhir_api.py``'s ``eng`` fixture builds an Engine (and its store) for every test and every
backend; a module whose tests only read what one set-up wrote pays for that set-up again in each test
(~0.1 s of CPU an Engine, the app and its seeding besides). ``module_eng`` is the same engine --
``backend_settings``' backends (``tests.conftest._BACKENDS``: SQLite, mongomock, a real MongoDB when
``HUREN_MONGODB_URI`` is set), ``base_url`` ``https://huren.example`` -- built once per module and
backend. Use it only where no test depends on another's writes (what a test writes, no other test of
the module reads); a module imports it under the name its tests use (``eng = module_eng``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.conftest import _BACKENDS, settings_for_backend


@pytest.fixture(scope="module", params=_BACKENDS)
def module_eng(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The module's engine on the backend ``request.param``, a store of its own (as ``backend_settings``
    gives a test: a fresh SQLite folder, a mongomock client, a MongoDB database dropped afterwards)."""
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0, base_url="https://huren.example")
    with settings_for_backend(request.param, settings) as chosen, Engine(chosen) as engine:
        yield engine


@pytest.fixture(scope="module", params=_BACKENDS)
def module_backend_eng(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The engine a test opens on ``backend_settings`` (``tests.conftest.settings`` on each backend: no listeners, the
    default base URL) once a module and backend, for a module's parametrized tests that only read, or send what is
    refused, or write each under names of its own: each parameter had opened an engine of its own (trim43). A test
    that reads what another writes, or counts what the store holds, keeps its own."""
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "-backend")
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0)
    with settings_for_backend(request.param, settings) as chosen, Engine(chosen) as engine:
        yield engine


@pytest.fixture(scope="module")
def module_sqlite_eng(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The ``engine`` fixture's engine (``tests.conftest.settings``: SQLite, no listeners, the default base URL)
    once a module, for a module's parametrized tests that only read, or send what is refused: each parameter had
    opened an engine of its own (~25 ms and its close; trim43). A test that writes what another reads keeps
    ``engine``."""
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "-sqlite")
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0)) as engine:
        yield engine


REPO_ROOT = Path(__file__).resolve().parents[1]


def undeclared_site(folder: Path) -> Path:
    """A site folder whose institutions.yaml is the shipped one with every ``registration_applications`` taken out:
    a county whose hospitals cannot say which of their systems registers persons, so nothing in a message tells the
    HIS from a LIS (the rules of reg41..decl42 for such a site). The shipped demo site declares each hospital's HIS
    (forty-second round, decl42); a test of the undeclared rules builds this site, never relies on the default."""
    return site_without(folder, "registration_applications")


def site_without(folder: Path, *keys: str) -> Path:
    """A site folder whose institutions.yaml is the shipped one with ``keys`` taken out of every member."""
    members = yaml.safe_load((REPO_ROOT / "mappings" / "institutions.yaml").read_text(encoding="utf-8"))
    for member in members:
        for key in keys:
            member.pop(key, None)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "institutions.yaml").write_text(yaml.safe_dump(members, allow_unicode=True), encoding="utf-8")
    return folder


@pytest.fixture(scope="module", params=_BACKENDS)
def undeclared_eng(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """``module_eng`` on a site declaring no registration application (``undeclared_site``). A module of the
    undeclared rules binds it under the name its fixtures ask for: ``from tests.module_store import undeclared_eng
    as module_eng``."""
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "-undeclared")
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0, base_url="https://huren.example",
                        site=undeclared_site(root / "site"))
    with settings_for_backend(request.param, settings) as chosen, Engine(chosen) as engine:
        yield engine


def system_client(engine: Engine, client_id: str) -> TestClient:
    """A client of ``engine``'s app holding a hospital system's token (``system/*.cruds``) as ``client_id``; the
    caller enters it (``with system_client(engine, "x") as http``)."""
    client = TestClient(create_app(engine))
    client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token(client_id, "system/*.cruds")
    return client


def _helper(request: pytest.FixtureRequest) -> str:
    """The helper a test module is named after (``tests/test_decl42b_identity.py``: ``decl42b``), its client's id."""
    return request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").split("_")[0]


@pytest.fixture(scope="module", name="http")
def module_eng_http(module_eng: Engine, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """``module_eng``'s client (``system_client``, the module's helper name its client id), for the module. A module
    imports it beside ``module_eng``; its tests ask for ``http``. One copy of what fam42, omi42, rv42d and decl42b
    each wrote (trim43)."""
    with system_client(module_eng, _helper(request)) as client:
        yield client


@pytest.fixture(scope="module")
def module_eng_client(module_eng: Engine, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """``module_eng_http`` under a name of its own, for a module whose other tests keep an ``http`` of their own (a
    fresh store each): its parametrized tests that only read share this one (trim43)."""
    with system_client(module_eng, _helper(request)) as client:
        yield client


@pytest.fixture(scope="module", name="uhttp")
def undeclared_eng_http(undeclared_eng: Engine, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """``undeclared_eng``'s client, as ``module_eng_http``; its tests ask for ``uhttp``."""
    with system_client(undeclared_eng, _helper(request)) as client:
        yield client


def observed(engine: Engine, resident: dict, code: str, *, client_id: str) -> list[str]:
    """The subjects of the results coded ``code`` that ``resident``'s phone (``client_id``) reads."""
    from tests.owner41_calls import resident_reads

    bundle = json.loads(resident_reads(engine, resident, [f"/fhir/Observation?code={code}"], client_id)[0])
    return [e["resource"]["subject"]["reference"] for e in bundle.get("entry", ())]
