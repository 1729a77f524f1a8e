"""Turn a resource into search index rows, one kind per search parameter type.

Rows are plain tuples so both backends can store them cheaply: SQLite as rows of ``ix_*``
tables, MongoDB as arrays inside the resource document. Dates become half-open ranges of epoch
seconds ``[lo, hi)`` at the precision written (``2024-03`` is the whole month), which is what the
FHIR date prefixes compare against. Strings are kept raw (for ``:exact``) and normalised
(case- and accent-folded, for the default starts-with match and ``:contains``).
"""

from __future__ import annotations

import calendar
import functools
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from engine.repository.fhirpath import CHOICE_ELEMENTS, choice, first_fields
from engine.repository.index_plan import PlanEntry, RowsFunction, Shape, compile_rows, shape_of  # noqa: F401 -- read from here too
from engine.repository.searchparams import LIST_PARTS, TEXT_PARTS, SearchParams

FAR_PAST = -1e13
FAR_FUTURE = 1e13
_CONTACT_SYSTEMS = {"phone", "fax", "email", "pager", "url", "sms", "other"}
_DATE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_CHOICE_STEM = re.compile(r"^([a-z][A-Za-z]*?)[A-Z]")
SHAPES_PER_TYPE = 64  # plans per shape of a type; beyond, the type's plan for any shape
_REF = re.compile(r"^(?:.*/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
# ``Type/id`` or ``Type/id/_history/v`` with nothing before: there ``_REF``'s only match is the one
# without a prefix (after each of its slashes what is left is an id with no slash, an id and then
# ``/_history/...`` whose ``_`` no id holds, or ``_history/...``, no type), so this gives the same
# groups without ``_REF``'s scan to the end and back; anything else is read by ``_REF``
_REF_PLAIN = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


@dataclass(slots=True)  # slots: the plans set its fields one by one (``index_plan._NEW_ROWS``)
class IndexRows:
    tokens: list[tuple[str, str, str]] = field(default_factory=list)  # (param, system or "", code)
    refs: list[tuple[str, str, str]] = field(default_factory=list)  # (param, type or "", id or url)
    dates: list[tuple[str, float, float]] = field(default_factory=list)  # (param, lo, hi)
    strings: list[tuple[str, str, str]] = field(default_factory=list)  # (param, normalised, raw)
    quantities: list[tuple[str, float, str, str]] = field(default_factory=list)  # (param, value, system, code)
    uris: list[tuple[str, str]] = field(default_factory=list)  # (param, uri)
    systems: list[tuple[str, str]] = field(default_factory=list)  # (param, system) for ``system|`` search
    compartments: set[str] = field(default_factory=set)  # Patient ids whose compartment holds it
    sort: dict[str, Any] = field(default_factory=dict)  # param -> first value, for _sort


@lru_cache(maxsize=65536)
def normalise(text: str) -> str:
    """Case- and accent-insensitive form used by the default string search.

    Cached: ingest indexes the same code displays and names over and over (a CBC's twelve
    ``display``s in every message), and NFKD + per-character filtering is the costly part of
    indexing a resource. ASCII text has no decompositions or combining marks, so it skips both.
    """
    if text.isascii():
        return text.casefold().strip()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


@lru_cache(maxsize=16384)
def date_range(value: str) -> tuple[float, float]:
    """``[lo, hi)`` in epoch seconds for a FHIR date / dateTime / instant at its own precision.

    Values without a zone are read as UTC (the HL7 converter writes explicit offsets).
    Raises ``ValueError`` for anything that is not a FHIR date -- also an offset beyond R4's
    ``-14:00..+14:00`` or with minutes past 59 (the schema's ``dateTime``, which the validator
    applies to what is stored): ``_lastUpdated=gt...+25:00`` was answered as an instant, an empty
    Bundle that reads "nothing changed since" (rv41h LOW).

    Cached: the results of one message share their times (twelve observations, one
    ``effectiveDateTime``), and the regex plus ``datetime`` arithmetic was a tenth of indexing.
    """
    m = _DATE.match(value.strip())
    if not m:
        raise ValueError(f"not a FHIR date: {value!r}")
    year, month, day, hour, minute, second, frac, zone = m.groups()
    y = int(year)
    if month is None:
        lo = datetime(y, 1, 1, tzinfo=UTC).timestamp()
        return lo, lo + (366 if calendar.isleap(y) else 365) * 86400.0  # year 9999 has no y + 1
    mo = int(month)
    if day is None:
        lo = datetime(y, mo, 1, tzinfo=UTC)
        return lo.timestamp(), lo.timestamp() + calendar.monthrange(y, mo)[1] * 86400.0
    d = datetime(y, mo, int(day), tzinfo=UTC)
    if hour is None:
        return d.timestamp(), d.timestamp() + 86400.0
    d = d.replace(hour=int(hour), minute=int(minute), second=int(second or 0))
    if frac:
        d = d.replace(microsecond=int(frac[1:7].ljust(6, "0")))
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if minutes > 59 or hours * 60 + minutes > 14 * 60:
            raise ValueError(f"not a FHIR date (offset beyond 14:00): {value!r}")
        shift = timedelta(hours=hours, minutes=minutes)
        try:
            lo = (d - sign * shift).timestamp()
        except OverflowError:
            # 9999-12-31T20:00:00-05:00 is past datetime's range in UTC, a valid FHIR dateTime all
            # the same: the bound in seconds (it was a 500 on PUT, moneyfix24)
            lo = d.timestamp() - sign * shift.total_seconds()
    else:
        lo = d.timestamp()
    if frac:
        width = 10.0 ** -min(len(frac) - 1, 6)
    elif second is not None:
        width = 1.0
    else:
        width = 60.0
    return lo, lo + width


def read_reference(ref: str, base_url: str = "") -> tuple[str, str] | None:
    """``(type, id)`` of a literal reference (relative, or absolute on this server), else None.

    A relative ``Type/id`` (``/_history/v``) is what a feed's resources hold, ~30 new ones a lab
    message: ``_REF_PLAIN`` is tried first, its groups the answer, before the checks an absolute
    reference needs (~9.1 k instructions a call, ~5.5 k so, perf38a). That changes no answer: a
    string ``_REF_PLAIN`` matches starts with ``[A-Z]`` (not ``#``, not ``urn:``) and has no
    ``://`` (a ``:`` is only in the version, which has no ``/`` after it), so of the checks below
    only the base's could apply, and only to a base that starts with ``[A-Z]`` too (a ``ref``
    starting with ``base_url + "/"`` starts as the base does): for such a base (never a URL, which
    starts with its lowercase scheme), the checks come first as before."""
    m = _REF_PLAIN.match(ref)
    if m is not None and not ("A" <= base_url < "["):  # the base does not start with [A-Z]
        return m.groups()  # its two groups: (type, id)
    if base_url and ref.startswith(base_url + "/"):
        ref = ref[len(base_url) + 1 :]
    elif "://" in ref or ref.startswith(("#", "urn:")):
        return None
    m = _REF_PLAIN.match(ref) or _REF.match(ref)
    return (m.group(1), m.group(2)) if m else None


# Cached: a message's resources point at the same Patient, Encounter and orders many times.
parse_reference = lru_cache(maxsize=65536)(read_reference)


def _bookkeeping_only(meta: Any) -> bool:
    """``meta`` holds only the version bookkeeping every stored resource has."""
    return isinstance(meta, dict) and meta.keys() <= {"versionId", "lastUpdated"}


@lru_cache(maxsize=4096)
def _choice_stem(key: str) -> str | None:
    """``effective`` for ``effectiveDateTime``; None when ``key`` is not a choice element's."""
    stem = _CHOICE_STEM.match(key)
    return stem.group(1) if stem and stem.group(1) in CHOICE_ELEMENTS else None


class Indexer:
    """Computes ``IndexRows`` for resources from the search parameter data."""

    def __init__(self, params: SearchParams, base_url: str = "", *, skip: frozenset[str] = frozenset({"_id"})) -> None:
        """``skip``: parameters the backend answers from its own columns (``_id`` always)."""
        self.params = params
        self.base_url = base_url.rstrip("/")
        self.skip = skip | {"_id"}
        self._plans: dict[str, list[tuple[str, Any, Any, frozenset[str] | None]]] = {}
        self._triggers: dict[str, tuple[list[Any], tuple[int, ...], dict[str, tuple[int, ...]]]] = {}
        self._chosen: dict[tuple[Any, ...], tuple[tuple[str, Any, Any], ...]] = {}
        self._compiled: dict[str, RowsFunction] = {}  # per type, for any shape
        self._shaped: dict[Shape, RowsFunction] = {}  # per shape (``index_plan.shape_of``)
        self._shape_count: dict[str, int] = {}
        self._refs: dict[str, dict[str, tuple[str, str, str]]] = {}  # per reference parameter
        self._namespace = {"IndexRows": IndexRows, "new_": object.__new__, "ref_rows": self._ref_rows, "ref_row": self._ref_row,
                           "date_range": date_range, "choice": choice, "FAR_PAST": FAR_PAST,
                           "FAR_FUTURE": FAR_FUTURE, "CONTACT_SYSTEMS": _CONTACT_SYSTEMS}

    def _plan(self, rtype: str) -> list[tuple[str, Any, Any, frozenset[str] | None]]:
        plan = self._plans.get(rtype)
        if plan is None:
            plan = [(p.code, self._method(rtype, p.code, p.type), p.evaluate, first_fields(p.expression))
                    for p in self.params.indexed(rtype).values() if p.code not in self.skip]
            self._plans[rtype] = plan
        return plan

    def _trigger(self, rtype: str) -> tuple[list[Any], tuple[int, ...], dict[str, tuple[int, ...]]]:
        """The plan, the entries always evaluated, and for each first element the entries it
        triggers: a resource's own keys pick the few parameters worth evaluating (an Observation
        has a dozen keys and some thirty parameters)."""
        trig = self._triggers.get(rtype)
        if trig is None:
            plan = self._plan(rtype)
            always: list[int] = []
            by_key: dict[str, list[int]] = {}
            for i, (_code, _index, _evaluate, roots) in enumerate(plan):
                if roots is None:
                    always.append(i)
                else:
                    for root in roots:
                        by_key.setdefault(root, []).append(i)
            trig = plan, tuple(always), {k: tuple(v) for k, v in by_key.items()}
            self._triggers[rtype] = trig
        return trig

    def _choose(self, rtype: str, resource: dict[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
        """The plan entries a resource's keys trigger, in plan order; cached by the keys (a feed's
        resources of one type share their shape, so this is one dict lookup per resource)."""
        bookkeeping = _bookkeeping_only(resource.get("meta"))
        shape = (rtype, bookkeeping, *resource)
        chosen = self._chosen.get(shape)
        if chosen is not None:
            return chosen
        plan, always, by_key = self._trigger(rtype)
        picked = set(always)
        for key in resource:
            hit = by_key.get(key)
            if hit is not None:
                if key == "meta" and bookkeeping:
                    hit = tuple(i for i in hit if plan[i][0] == "_lastUpdated")  # no tag, profile, ...
                picked.update(hit)
            stem = _choice_stem(key)  # choice elements: effectiveDateTime is there for "effective"
            if stem is not None and (hit := by_key.get(stem)) is not None:
                picked.update(hit)
        # plan order: the rows come out as a full evaluation gives them
        chosen = tuple((plan[i][0], plan[i][1], plan[i][2]) for i in sorted(picked))
        if len(self._chosen) >= 4096:  # shapes are few; an odd feed must not grow this forever
            self._chosen.clear()
        self._chosen[shape] = chosen
        return chosen

    def rows(self, resource: dict[str, Any]) -> IndexRows:
        """The index rows of a resource by the compiled plan of its shape (``index_plan``): the
        same rows as ``interpret`` gives, by code generated once from the parameter data.

        A plan per shape (type, keys, ``meta``'s keys) skips every parameter whose element is
        absent without a lookup; a type that shows more than ``SHAPES_PER_TYPE`` shapes (a client
        writing every resource differently) gets its plan for any shape from then on."""
        meta = resource.get("meta")  # ``shape_of``, written out: a Python call fewer a resource
        shape = (resource["resourceType"], tuple(resource), tuple(meta) if isinstance(meta, dict) else None)
        plan = self._shaped.get(shape)
        if plan is None:
            plan = self._plan_for(shape)
        return plan(resource)

    def _plan_for(self, shape: Shape) -> RowsFunction:
        rtype = shape[0]
        count = self._shape_count.get(rtype, 0)
        if count >= SHAPES_PER_TYPE:
            plan = self._compiled.get(rtype)
            if plan is None:
                plan = self._compiled[rtype] = self._compile(rtype, None)
            return plan
        if len(self._shaped) >= 4096:  # bogus types or shapes must not grow this forever
            self._shaped.clear()
            self._shape_count.clear()
        plan = self._shaped[shape] = self._compile(rtype, shape)
        self._shape_count[rtype] = count + 1
        return plan

    def _compile(self, rtype: str, shape: Shape | None) -> RowsFunction:
        entries = []
        for code, method, _evaluate, _roots in self._plan(rtype):
            p = self.params.indexed(rtype).get(code)
            assert p is not None
            inline = p.type in ("token", "reference", "date", "quantity", "uri") and not (
                p.type == "token" and (self.params.text_enabled(rtype, code) or self.params.system_enabled(rtype, code)))
            entries.append(PlanEntry(code, p.type, p.expression, None if inline else method))
        return compile_rows(rtype, entries, self.params.compartment_params(rtype), self._namespace, shape)

    def _ref_rows(self, code: str) -> dict[str, tuple[str, str, str]]:
        """The rows of reference parameter ``code`` by reference, made by ``_ref_row``."""
        return self._refs.setdefault(code, {})

    def _ref_row(self, cache: dict[str, tuple[str, str, str]], code: str, ref: str) -> tuple[str, str, str]:
        """The row of a reference the plans have not seen (``_reference``'s, for one value),
        remembered: the same tuple each time also makes the backend's lookup by row cheap."""
        parsed = read_reference(ref, self.base_url)
        row = (code, parsed[0], parsed[1]) if parsed else (code, "", ref)
        if len(cache) >= 4096:  # per parameter; a message brings some thirty new ids
            cache.clear()
        cache[ref] = row
        return row

    def interpret(self, resource: dict[str, Any]) -> IndexRows:
        """The index rows of a resource by evaluating each parameter's FHIRPath closure: the
        reference the compiled plans are held to (and the plain reading of what is indexed)."""
        rtype = resource["resourceType"]
        rows = IndexRows()
        for code, index, evaluate in self._choose(rtype, resource):
            values = evaluate(resource)
            if values:
                index(rows, code, values)
        comp_params = self.params.compartment_params(rtype)
        if rtype == "Patient" and resource.get("id"):
            rows.compartments.add(resource["id"])
        if comp_params:
            for param, rt, rid in rows.refs:
                if rt == "Patient" and param in comp_params:
                    rows.compartments.add(rid)
        return rows

    def compartments(self, resource: dict[str, Any]) -> set[str]:
        return self.rows(resource).compartments

    def _method(self, rtype: str, code: str, kind: str) -> Any:
        """The indexing method of one parameter; a token parameter the deployment enables for
        ``:text`` or for ``system|`` searches also writes those rows."""
        method = getattr(self, "_" + kind)
        if kind == "string":
            skip = self.params.fold_keys(rtype, code)
            return functools.partial(method, skip=skip) if skip else method
        if kind != "token":
            return method
        text, systems = self.params.text_enabled(rtype, code), self.params.system_enabled(rtype, code)
        return functools.partial(method, text=text, systems=systems) if text or systems else method

    # -- one method per search parameter type ------------------------------------------------
    def _token(self, rows: IndexRows, code: str, values: list[Any], text: bool = False,
               systems: bool = False) -> None:
        """Called for every coded element of every resource written: the displays are gathered
        only for a ``:text`` parameter, and the sort key is the first row this call appended."""
        out = rows.tokens
        start = len(out)
        texts: list[str] | None = [] if text else None
        for v in values:
            if isinstance(v, str):
                out.append((code, "", v))
            elif isinstance(v, bool):
                out.append((code, "", "true" if v else "false"))
            elif isinstance(v, dict):
                if "coding" in v or "text" in v:
                    for c in v.get("coding") or ():
                        c_code = c.get("code")
                        if c_code is not None:
                            out.append((code, c.get("system") or "", str(c_code)))
                        if texts is not None and c.get("display"):
                            texts.append(c["display"])
                    if texts is not None and v.get("text"):
                        texts.append(v["text"])
                elif "code" in v:
                    out.append((code, v.get("system") or "", str(v["code"])))
                    if texts is not None and v.get("display"):
                        texts.append(v["display"])
                elif "value" in v:
                    system = v.get("system") or ""
                    if system in _CONTACT_SYSTEMS:
                        system = ""
                    out.append((code, system, str(v["value"])))
                    if texts is not None:
                        texts.extend(c["display"] for c in (v.get("type") or {}).get("coding") or ()
                                     if c.get("display"))
        if len(out) > start and code not in rows.sort:
            rows.sort[code] = out[start][2]
        if texts:
            for display in texts:
                rows.strings.append((code + ":text", normalise(display), display))
        if systems:
            rows.systems.extend(sorted({(code, t[1]) for t in out[start:] if t[1]}))

    def _reference(self, rows: IndexRows, code: str, values: list[Any]) -> None:
        refs = rows.refs
        start = len(refs)
        for v in values:
            if isinstance(v, str):  # canonical
                refs.append((code, "", v))
                continue
            if not isinstance(v, dict):
                continue
            ref = v.get("reference")
            if isinstance(ref, str):
                parsed = parse_reference(ref, self.base_url)
                refs.append((code, *parsed) if parsed else (code, "", ref))
            ident = v.get("identifier")
            if isinstance(ident, dict) and ident.get("value") is not None:
                rows.tokens.append((code + ":identifier", ident.get("system") or "", str(ident["value"])))
        if len(refs) > start and code not in rows.sort:
            _p, rt, rid = refs[start]
            rows.sort[code] = f"{rt}/{rid}" if rt else rid

    def _date(self, rows: IndexRows, code: str, values: list[Any]) -> None:
        for v in values:
            try:
                if isinstance(v, str):
                    lo, hi = date_range(v)
                elif isinstance(v, dict) and ("start" in v or "end" in v):
                    lo = date_range(v["start"])[0] if v.get("start") else FAR_PAST
                    hi = date_range(v["end"])[1] if v.get("end") else FAR_FUTURE
                else:
                    continue
            except ValueError:
                continue  # validation reports malformed dates; the index just skips them
            rows.dates.append((code, lo, hi))
            if code not in rows.sort or lo < rows.sort[code]:
                rows.sort[code] = lo

    def _string(self, rows: IndexRows, code: str, values: list[Any], skip: frozenset[str] = frozenset()) -> None:
        """One row per distinct text of the parameter: a name's text and its family + given are
        often the same (``张三``), and each row is an index insert. ``skip``: the elements whose
        text a part parameter's rows hold (``SearchParams.fold_keys``: ``name``'s ``family`` is
        ``family``'s row), written there only; the sort key is still the first text of all."""
        if skip:
            self._string_parts(rows, code, values, skip)
            return
        seen: set[str] = set()
        for v in values:
            parts: list[str] = []
            if isinstance(v, str):
                parts.append(v)
            elif isinstance(v, dict):
                for key in TEXT_PARTS:
                    if isinstance(v.get(key), str):
                        parts.append(v[key])
                for key in LIST_PARTS:
                    parts.extend(x for x in v.get(key) or () if isinstance(x, str))
                if isinstance(v.get("family"), str) and v.get("given"):
                    given = "".join(x for x in v["given"] if isinstance(x, str))
                    parts.append(v["family"] + given)  # 张三: family + given without a space
            for part in parts:
                if part in seen:
                    continue
                seen.add(part)
                rows.strings.append((code, normalise(part), part))
                if code not in rows.sort:
                    rows.sort[code] = normalise(part)

    @staticmethod
    def _string_parts(rows: IndexRows, code: str, values: list[Any], skip: frozenset[str]) -> None:
        """``_string`` of a parameter some of whose elements are its parts' rows: the texts in
        the same order, those of a ``skip`` element taken for the sort key and the dedup only."""
        seen: set[str] = set()
        for v in values:
            parts: list[tuple[str, bool]] = []
            if isinstance(v, str):
                parts.append((v, True))
            elif isinstance(v, dict):
                for key in TEXT_PARTS:
                    if isinstance(v.get(key), str):
                        parts.append((v[key], key not in skip))
                for key in LIST_PARTS:
                    keep = key not in skip
                    parts.extend((x, keep) for x in v.get(key) or () if isinstance(x, str))
                if isinstance(v.get("family"), str) and v.get("given"):
                    given = "".join(x for x in v["given"] if isinstance(x, str))
                    parts.append((v["family"] + given, True))  # 张三: family + given without a space
            for part, keep in parts:
                if part in seen:
                    continue
                seen.add(part)
                if keep:
                    rows.strings.append((code, normalise(part), part))
                if code not in rows.sort:
                    rows.sort[code] = normalise(part)

    def _quantity(self, rows: IndexRows, code: str, values: list[Any]) -> None:
        for v in values:
            if isinstance(v, dict) and isinstance(v.get("value"), (int, float)) and not isinstance(v["value"], bool):
                rows.quantities.append((code, float(v["value"]), v.get("system") or "", v.get("code") or v.get("unit") or ""))
                if code not in rows.sort:
                    rows.sort[code] = float(v["value"])

    def _uri(self, rows: IndexRows, code: str, values: list[Any]) -> None:
        for v in values:
            if isinstance(v, str):
                rows.uris.append((code, v))
                rows.sort.setdefault(code, v)
