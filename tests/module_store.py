"""One engine a test module, on each storage backend (suitedup31).

``tests/test_fhir_api.py``'s ``eng`` fixture builds an Engine (and its store) for every test and every
backend; a module whose tests only read what one set-up wrote pays for that set-up again in each test
(~0.1 s of CPU an Engine, the app and its seeding besides). ``module_eng`` is the same engine --
``backend_settings``' backends (``tests.conftest._BACKENDS``: SQLite, mongomock, a real MongoDB when
``HUREN_MONGODB_URI`` is set), ``base_url`` ``https://huren.example`` -- built once per module and
backend. Use it only where no test depends on another's writes (what a test writes, no other test of
the module reads); a module imports it under the name its tests use (``eng = module_eng``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

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
