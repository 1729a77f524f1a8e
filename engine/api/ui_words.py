"""The staff pages' words for codes (``mappings/insurance/words.yaml``, replaceable through
``HUREN_SITE/insurance/words.yaml``): settlement steps, insurance types, medical communities, flag
and result statuses, re-test reasons' effects.

One owner for every code name a staff page shows: ``/ui/session`` gives them to the signed-in page
with the site's other names (``ui_signin._names``), and the pages' scripts hold none of their own.
They had been split: institutions, reasons and scopes came from the session while the settlement's
steps, the insurance types and the statuses were written into the scripts, so a site could rename
an institution but not its community or a step. Display words only; the file is read again when it
changes (its modification time), so an edit shows at the next page load."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from mappings.site import DEFAULTS_DIR
from mappings.sitefiles import check, find_file, read_yaml

FILE = "insurance/words.yaml"
_WORDS = {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}}
_PAIRS = {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"},
                                                     "minItems": 2, "maxItems": 2}}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["steps", "spans", "insurance_types", "statuses"],
    "properties": {"communities": _WORDS, "insurance_types": _WORDS, "statuses": _PAIRS, "effects": _WORDS,
                   "result_statuses": _WORDS, "steps": _WORDS,
                   "spans": {**_WORDS, "required": ["between", "above"]}},
}


def page_words(site_dir: Path | str | None) -> dict[str, Any]:
    """The words in force: the site's file if it has one, else the shipped one (a mistake names
    the file, line and field, as every site file's does)."""
    path = find_file(FILE, [DEFAULTS_DIR] + ([Path(site_dir)] if site_dir is not None else []))
    return _read(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _read(path: Path, _mtime: int) -> dict[str, Any]:
    data: dict[str, Any] = check(read_yaml(path), SCHEMA)
    return {key: data.get(key, {}) for key in SCHEMA["properties"]}
