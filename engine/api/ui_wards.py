"""The site's names for wards, departments and rooms sent by code only (``mappings/wards.yaml``,
each institution of ``HUREN_SITE/wards.yaml`` replacing its table), for the resident's page.

A PV1-3 point of care sent without its PL-9 name is stored as its codes (Location.name "NEI 301
02", the converter's rule); a person reads a name. The page names the code from this table for the
institution the visit is at, and shows the codes as sent where the table does not list them: a
name is never guessed. The file is read again when it changes (its modification time); a file that
does not read is logged and the last good table stays in force (display words never take a page
down), as for the staff pages' words (``mappings.pagewords``)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from mappings.sitefiles import SiteError, check, read_yaml

log = logging.getLogger("huren.site")

FILE = "wards.yaml"
SHIPPED = Path(__file__).resolve().parents[2] / "mappings" / FILE
_TABLE = {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}}
SCHEMA: dict[str, Any] = {"type": ["object", "null"], "additionalProperties": _TABLE}


class WardNames:
    """The ward tables in force, per institution code."""

    def __init__(self, site_dir: Path | None) -> None:
        self.site_file = site_dir / FILE if site_dir is not None else None
        self._lock = threading.Lock()
        self._stamp: tuple[int | None, int | None] | None = None
        self._tables: dict[str, dict[str, str]] = {}

    def _stamps(self) -> tuple[int | None, int | None]:
        def stamp(path: Path | None) -> int | None:
            try:
                return path.stat().st_mtime_ns if path is not None else None
            except OSError:
                return None
        return stamp(SHIPPED), stamp(self.site_file)

    def _read(self) -> dict[str, dict[str, str]]:
        tables = {code: dict(t) for code, t in (check(read_yaml(SHIPPED), SCHEMA) or {}).items()}
        if self.site_file is not None and self.site_file.is_file():
            tables.update({code: dict(t) for code, t in (check(read_yaml(self.site_file), SCHEMA) or {}).items()})
        return tables

    def current(self) -> dict[str, dict[str, str]]:
        stamps = self._stamps()
        with self._lock:
            if stamps != self._stamp:
                self._stamp = stamps
                try:
                    self._tables = self._read()
                except SiteError as exc:
                    log.warning("ward names not changed, the last good ones stay in force: %s", exc)
            return self._tables


_BY_SITE: dict[Path | None, WardNames] = {}


def ward_names(engine: Any) -> dict[str, dict[str, str]]:
    """The tables for the page, keyed by the institution's name (what the page knows a record's
    institution by): ``{"阜宁县人民医院": {"NEI": "心内科病区"}}``; an institution the site does
    not list has no table."""
    site_dir = engine.settings.site
    names = _BY_SITE.setdefault(site_dir, WardNames(site_dir))
    insts = engine.site.institutions
    return {insts[code].name: table for code, table in names.current().items()
            if code in insts and insts[code].name}
