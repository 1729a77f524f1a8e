"""Shared fixtures: each test gets its own data directory and Settings; no shared state."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT.parent / "shared" / "samples" / "hl7v2"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)


@pytest.fixture
def engine(settings: Settings):
    from engine.engine import Engine

    eng = Engine(settings)
    yield eng
    eng.close()


@pytest.fixture
def client_token():
    """``client_token(engine, scopes="system/*.cruds") -> str``: a signed access token for a system client."""

    def make(engine, scopes: str = "system/*.cruds", client_id: str = "test-system") -> str:
        return engine.auth.issue_system_token(client_id, scopes)

    return make
