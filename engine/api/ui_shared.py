"""Scripts shared by the staff pages and the resident's page, under ``/ui/shared/static``.

One file for what both would otherwise write twice (Beijing's calendar and clock, ``beijing.js``).
Served like the pages' own scripts: no session needed to fetch code, none of it holds data."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static" / "shared"


def mount_static(app: FastAPI) -> None:
    """Called from ``create_app`` beside the pages' own mounts."""
    app.mount("/ui/shared/static", StaticFiles(directory=str(STATIC)), name="ui-shared-static")
