"""The staff pages' words for codes (``mappings/insurance/words.yaml``), loaded with the other site
files (``mappings.site.Site``): checked at start-up, so a mistake stops it with file, line and field.

A deployment's ``HUREN_SITE/insurance/words.yaml`` names only what it changes (e.g. only
``communities:``): each of its sections merges over the shipped one word by word. The file is read
again when it changes (its modification time) so an edit shows at the next page load; a file
broken at run time (a half-saved edit) is logged and the last good words stay in force, so the
pages keep working -- the display words never take the sign-in down."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from mappings.sitefiles import SiteError, check, read_yaml

log = logging.getLogger("huren.site")

FILE = "insurance/words.yaml"
SHIPPED = Path(__file__).resolve().parent / FILE
_WORDS = {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}}
_PAIRS = {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"},
                                                     "minItems": 2, "maxItems": 2}}
_PROPERTIES: dict[str, Any] = {"communities": _WORDS, "insurance_types": _WORDS, "statuses": _PAIRS, "effects": _WORDS,
                               "result_statuses": _WORDS, "steps": _WORDS, "spans": _WORDS, "places": _WORDS,
                               "price_sources": _WORDS, "bases": _WORDS, "columns": _WORDS,
                               "signin_errors": _PAIRS, "review_notes": _WORDS, "currencies": _WORDS,
                               "funds": _WORDS}
# the site's file: any sections, any words (merged over the shipped ones)
SITE_SCHEMA: dict[str, Any] = {"type": ["object", "null"], "additionalProperties": False, "properties": _PROPERTIES}
# the shipped file: complete
SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": False,
                          "properties": {**_PROPERTIES, "spans": {**_WORDS, "required": ["between", "above"]}},
                          "required": ["steps", "spans", "insurance_types", "statuses"]}


def _stamp(path: Path | None) -> int | None:
    try:
        return path.stat().st_mtime_ns if path is not None else None
    except OSError:
        return None


class PageWords:
    """The words in force: the shipped file with the site's sections merged over it."""

    def __init__(self, site_dir: Path | None) -> None:
        self.site_file = site_dir / FILE if site_dir is not None else None
        self._lock = threading.Lock()
        self._stamp = _stamp(self.site_file)
        self._words = self._read()  # at start-up (and reload) a mistake raises its SiteError

    def _read(self) -> dict[str, Any]:
        shipped: dict[str, Any] = check(read_yaml(SHIPPED), SCHEMA)
        words = {key: dict(shipped.get(key) or {}) for key in _PROPERTIES}
        if self.site_file is not None and self.site_file.is_file():
            site = check(read_yaml(self.site_file), SITE_SCHEMA) or {}
            for key, section in site.items():
                words[key].update(section or {})
        return words

    def current(self) -> dict[str, Any]:
        """The words, re-read when the site's file changed; when it no longer reads, the last good
        words stay (the reason is logged once per change). A site file removed while running leaves
        the shipped words in force, and says so in the log."""
        stamp = _stamp(self.site_file)
        with self._lock:
            if stamp != self._stamp:
                if stamp is None:  # said, not silent: an operator may not have meant it
                    log.warning("page words: %s is gone; the shipped words are in force", self.site_file)
                self._stamp = stamp
                try:
                    self._words = self._read()
                except SiteError as exc:
                    log.warning("page words not changed, the last good ones stay in force: %s", exc)
            return self._words
