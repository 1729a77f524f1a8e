"""Bounds on integers that arrive from outside (query parameters, path segments, headers).

An unbounded integer reached the store as-is: ``_offset=393604153575934072455168`` overflowed
SQLite's 64-bit integers and answered 500. Every router takes its integer parameters through
``int_query`` (FastAPI) or ``parse_int`` (hand-parsed FHIR parameters), so each has the same
ceiling: R4's ``integer`` range, far above any real offset, count, sequence or version number.
"""

from __future__ import annotations

from typing import Any

from engine.errors import BadRequest

MAX_INT = 2**31 - 1  # R4 integer / unsignedInt maximum


def int_query(default: Any, *, alias: str | None = None, ge: int = 0, le: int = MAX_INT,
              description: str | None = None) -> Any:
    """``Query(...)`` for an integer parameter, bounded to [ge, le] (422 → OperationOutcome 400)."""
    from fastapi import Query  # here, not at the top: the CLI and the ingest path import this module too

    return Query(default, alias=alias, ge=ge, le=min(le, MAX_INT), description=description)


def parse_int(raw: str, name: str, *, low: int = 0, high: int = MAX_INT) -> int:
    """A whole number in [low, high] from a raw parameter value; ``BadRequest`` naming ``name`` otherwise."""
    text = raw.strip()
    if not (text.isascii() and text.lstrip("+-").isdigit()) or len(text) > 12:
        raise BadRequest(f"{name} must be a whole number between {low} and {high}, got '{raw[:40]}'",
                         expression=[name])
    value = int(text)
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}", expression=[name])
    return value
