"""Quality-control status (质控 / 室间质评): the one place that answers "had this institution passed
QC for this item on that day, and with which HR scopes?".

Two kinds of data feed it: the periods of external quality assessment results (``qc.yaml`` and what
``huren qc import`` wrote into the site's ``qc.yaml``), each with a start and an end, and the
standing status an institution declares in ``institutions.yaml`` (``qc.passed`` up to ``qc.until``).
A failed assessment covering the day wins over everything; a passed one covering it is enough;
otherwise the institution's declared status decides.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

ALL = "all"
T = TypeVar("T")
_KEPT = 50_000  # (institution, item, day) answers remembered; beyond it they start again


@dataclass(frozen=True)
class QcRecord:
    """One assessment result: institution × item (or "all") × period [start, until], passed or not."""

    institution: str
    item: str  # item code or "all"
    passed: bool
    start: date
    until: date
    hr: tuple[str, ...] = ()  # HR scopes (scopes.yaml) the passed item carries beyond the community
    source: str = ""

    def covers(self, item: str, on: date) -> bool:
        return self.item in (ALL, item) and self.start <= on <= self.until

    def as_yaml_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"institution": self.institution, "item": self.item, "passed": self.passed,
                               "from": self.start.isoformat(), "until": self.until.isoformat()}
        if self.hr:
            row["hr"] = list(self.hr)
        if self.source:
            row["source"] = self.source
        return row


@dataclass(frozen=True)
class DeclaredQc:
    """An institution's standing status from institutions.yaml: items passed (or "all"), valid until."""

    passed: frozenset[str]
    until: date | None = None

    def covers(self, item: str, on: date) -> bool:
        return bool(self.passed) and (ALL in self.passed or item in self.passed) and (
            self.until is None or on <= self.until)


class QcStatus:
    """QC questions over the assessment periods and the institutions' declared status."""

    def __init__(self, records: Iterable[QcRecord], declared: Mapping[str, DeclaredQc] | None = None) -> None:
        self.records = tuple(records)
        self.declared = dict(declared or {})
        self._by_inst: dict[str, list[QcRecord]] = {}
        self._passed: dict[tuple[str, str, date], bool] = {}
        self._scopes: dict[tuple[str, str, date], tuple[str, ...]] = {}
        for r in self.records:
            self._by_inst.setdefault(r.institution, []).append(r)

    def passed(self, institution: str, item: str, on: date) -> bool:
        """Remembered per (institution, item, day): every final result of an item asks (the HR
        mark), and the same few answers hold for a day's results (the records never change:
        new QC data is a new ``QcStatus``)."""
        return _remembered(self._passed, (institution, item, on), self._passed_now)

    def _passed_now(self, institution: str, item: str, on: date) -> bool:
        records = [r for r in self._by_inst.get(institution, ()) if r.covers(item, on)]
        if any(not r.passed for r in records):
            return False
        if records:
            return True
        declared = self.declared.get(institution)
        return declared is not None and declared.covers(item, on)

    def hr_scopes(self, institution: str, item: str, on: date) -> tuple[str, ...]:
        return _remembered(self._scopes, (institution, item, on), self._hr_scopes_now)

    def _hr_scopes_now(self, institution: str, item: str, on: date) -> tuple[str, ...]:
        out: list[str] = []
        for r in self._by_inst.get(institution, ()):
            if r.passed and r.covers(item, on):
                out.extend(s for s in r.hr if s not in out)
        return tuple(out)


# -- importing 室间质评 results --------------------------------------------------------------------

class QcImportError(ValueError):
    """A row of an imported QC file that cannot be used: names the row and the field."""


_TRUE = {"true", "yes", "y", "1", "passed", "pass", "合格", "通过", "是"}
_FALSE = {"false", "no", "n", "0", "failed", "fail", "不合格", "未通过", "否"}


def _row_to_record(row: Mapping[str, Any], where: str) -> QcRecord:
    def need(key: str) -> str:
        value = row.get(key)
        if value is None or str(value).strip() == "":
            raise QcImportError(f"{where}: '{key}' is required")
        return str(value).strip()

    passed_text = need("passed").lower() if not isinstance(row.get("passed"), bool) else str(row["passed"]).lower()
    if passed_text not in _TRUE | _FALSE:
        raise QcImportError(f"{where}: 'passed' must be true/false (or 合格/不合格), not {row.get('passed')!r}")
    try:
        start, until = date.fromisoformat(need("from")), date.fromisoformat(need("until"))
    except ValueError as exc:
        raise QcImportError(f"{where}: 'from'/'until' must be dates (YYYY-MM-DD): {exc}") from None
    if until < start:
        raise QcImportError(f"{where}: 'until' {until} is before 'from' {start}")
    hr_raw = row.get("hr") or ()
    hr = tuple(s.strip() for s in (hr_raw.replace(";", " ").split() if isinstance(hr_raw, str) else hr_raw) if s.strip())
    return QcRecord(need("institution"), need("item"), passed_text in _TRUE, start, until, hr,
                    str(row.get("source") or "").strip())


def parse_import(path: Path) -> list[QcRecord]:
    """Read a 室间质评 result file: JSON (a list of objects) or CSV with a header row; both with the
    fields institution, item, passed, from, until and optional hr (space/semicolon separated) and source."""
    text = path.read_text("utf-8-sig")
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise QcImportError(f"{path}: not JSON: {exc}") from None
        rows = data.get("results") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise QcImportError(f"{path}: expected a list of results")
        return [_row_to_record(r if isinstance(r, dict) else {}, f"{path} [{i}]") for i, r in enumerate(rows)]
    reader = csv.DictReader(io.StringIO(text))
    return [_row_to_record({(k or "").strip(): v for k, v in r.items()}, f"{path} line {i + 2}")
            for i, r in enumerate(reader)]


def merge(existing: Iterable[QcRecord], imported: Iterable[QcRecord]) -> list[QcRecord]:
    """Imported results replace earlier ones for the same institution, item and period start."""
    out: dict[tuple[str, str, date], QcRecord] = {(r.institution, r.item, r.start): r for r in existing}
    for r in imported:
        out[(r.institution, r.item, r.start)] = r
    return sorted(out.values(), key=lambda r: (r.institution, r.item, r.start))


def _remembered(cache: dict[tuple[str, str, date], T], key: tuple[str, str, date],
                compute: Callable[[str, str, date], T]) -> T:
    """``cache[key]``, computed by ``compute(*key)`` the first time; at ``_KEPT`` answers the cache
    starts again (the answers never change, so forgetting costs only their recomputation)."""
    found = cache.get(key)
    if found is None:
        if len(cache) >= _KEPT:
            cache.clear()
        found = cache[key] = compute(*key)
    return found
