"""Search parameter definitions as data: ``conformance/searchparams/searchparams.json``.

That file is extracted from the official R4 SearchParameter resources by
``conformance/searchparams/extract.py``; here it is loaded once per process (immutable) and each
parameter's FHIRPath expression is compiled into a function the indexer calls on every write.
``conformance/searchparams/enabled.yaml`` says which of them the deployment indexes and answers
(and which token parameters get ``:text`` rows, and which answer ``system|``, any code of a
system): an index no query uses is never written.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

import yaml

from engine.repository.fhirpath import Evaluator, UnsupportedExpression, compile_expression, split_union

DATA = "searchparams.json"
ENABLED = "enabled.yaml"
_RESOLVE_IS = re.compile(r"^(.+)\.where\(resolve\(\) is ([A-Za-z]+)\)$")
# The parts of a HumanName or Address a string parameter's row is made of (``Indexer._string``):
# single-valued, then lists. A parameter ``X.address.city`` states one of ``X.address``'s rows.
TEXT_PARTS = ("text", "family", "city", "district", "state", "postalCode", "country")
LIST_PARTS = ("given", "prefix", "suffix", "line")


@dataclass(frozen=True)
class SearchParam:
    code: str
    type: str  # token | reference | date | string | quantity | uri
    expression: str
    url: str
    documentation: str = ""
    target: tuple[str, ...] = ()
    evaluate: Evaluator = field(repr=False, compare=False, default=lambda r: [])

    def definition(self) -> dict[str, Any]:
        """The CapabilityStatement ``rest.resource.searchParam`` shape (plus expression/target)."""
        out: dict[str, Any] = {"name": self.code, "definition": self.url, "type": self.type}
        if self.documentation:
            out["documentation"] = self.documentation
        out["expression"] = self.expression
        if self.target:
            out["target"] = list(self.target)
        return out


class SearchParams:
    """Every supported parameter per resource type, and the Patient compartment definition."""

    def __init__(self, data: dict[str, Any], enabled: dict[str, Any] | None = None) -> None:
        """``enabled``: the deployment's choice (the shape of ``enabled.yaml``); None enables
        every parameter, without ``:text`` or ``system|`` rows."""
        enabled = enabled or {}
        _check_deployment(data, enabled)
        choose = enabled.get("enabled") or {"*": "*"}
        disabled = {t: set(codes or ()) for t, codes in (enabled.get("disabled") or {}).items()}

        def keep(rtype: str, code: str) -> bool:
            wanted = choose.get(rtype, choose.get("*", "*"))
            if code in ("_id", "_lastUpdated"):  # answered from the resource row: always there
                return True
            return (wanted == "*" or code in wanted) and code not in disabled.get(rtype, ())

        common = {code: self._param(code, d, "Resource") for code, d in data["common"].items()}
        self._all: dict[str, dict[str, SearchParam]] = {}  # enabled or not: what _include evaluates
        self._by_type: dict[str, dict[str, SearchParam]] = {}
        for rtype, params in data["types"].items():
            merged = dict(common)
            merged.update({code: self._param(code, d, rtype) for code, d in params.items()})
            self._all[rtype] = merged
            self._by_type[rtype] = {code: p for code, p in merged.items() if keep(rtype, code)}
        self._common = {code: p for code, p in common.items() if keep("*", code)}
        self.text: frozenset[tuple[str, str]] = frozenset(
            (rtype, code) for rtype, codes in (enabled.get("text") or {}).items() for code in codes or ())
        self.system: frozenset[tuple[str, str]] = frozenset(
            (rtype, code) for rtype, codes in (enabled.get("system") or {}).items() for code in codes or ())
        self.resource_types: frozenset[str] = frozenset(data.get("resource_types") or self._by_type)
        self._twins = {rtype: self._twins_of(rtype, params) for rtype, params in self._by_type.items()}
        self.compartment: dict[str, tuple[str, ...]] = {
            t: tuple(dict.fromkeys(self.stored_as(t, p) for p in ps)) for t, ps in data["compartment"]["Patient"].items()
        }
        self._narrowed = {rtype: _narrowed({c: p for c, p in params.items() if c not in self._twins[rtype]})
                          for rtype, params in self._by_type.items()}
        self._indexed = {rtype: self._index_list(rtype) for rtype in self._by_type}
        parts = {rtype: f for rtype, params in self._indexed.items() if (f := _folded(params))}
        self._folded = {rtype: {code: tuple(p) for code, p in f.items()} for rtype, f in parts.items()}
        self._folds = {rtype: _invert(folded) for rtype, folded in self._folded.items()}
        self._fold_keys = {(rtype, code): frozenset(p.values()) for rtype, f in parts.items() for code, p in f.items()}

    def _twins_of(self, rtype: str, params: dict[str, SearchParam]) -> dict[str, str]:
        """Enabled parameters that index exactly what an earlier one does (the same kind and
        expression, the same ``:text`` and ``system|`` rows: R4's ``phonetic`` is ``Patient.name``
        like ``name``), each to that one: their rows are written once, under its code."""
        first: dict[tuple[Any, ...], str] = {}
        twins: dict[str, str] = {}
        for code, p in params.items():
            if code in ("_id", "_lastUpdated"):
                continue
            key = (p.type, p.expression, (rtype, code) in self.text, (rtype, code) in self.system)
            twins.update({code: first[key]} if key in first else {})
            first.setdefault(key, code)
        return twins

    def _index_list(self, rtype: str) -> dict[str, SearchParam]:
        """The enabled parameters, and each compartment parameter left out of them restricted to
        its ``Patient`` references (``X.performer.where(resolve() is Patient)``): the Patient
        compartment is R4's definition, not the deployment's choice, and it is read from those
        rows; the rest of such a parameter's values (the performing laboratory of every result)
        would be rows no query reads."""
        twins = self._twins[rtype]
        out = {code: p for code, p in self._by_type[rtype].items() if code not in twins}
        for code in self.compartment.get(rtype, ()):
            p = self._all[rtype].get(code)
            if code in out or code in twins or p is None or p.type != "reference":
                continue
            expression = " | ".join(f"{part}.where(resolve() is Patient)" for part in split_union(p.expression))
            try:
                out[code] = replace(p, expression=expression, evaluate=compile_expression(expression, rtype))
            except UnsupportedExpression:
                out[code] = p
        return out

    @staticmethod
    def _param(code: str, d: dict[str, Any], rtype: str) -> SearchParam:
        return SearchParam(
            code=code, type=d["type"], expression=d["expression"], url=d["url"],
            documentation=d.get("documentation", ""), target=tuple(d.get("target", ())),
            evaluate=compile_expression(d["expression"], None if rtype == "Resource" else rtype),
        )

    @property
    def types(self) -> list[str]:
        return sorted(self._by_type)

    def for_type(self, resource_type: str) -> dict[str, SearchParam]:
        """The parameters of a type; unknown types get the common (``Resource``) ones only."""
        return self._by_type.get(resource_type, self._common)

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self.for_type(resource_type).get(code)

    def definition(self, resource_type: str, code: str) -> SearchParam | None:
        """Any R4 parameter of the type that huren can evaluate, enabled or not: ``_include``
        reads the references from the matched resources themselves, so it needs no index rows."""
        return self._all.get(resource_type, self._common).get(code) or self.get(resource_type, code)

    def definitions(self, resource_type: str) -> dict[str, SearchParam]:
        """Every parameter of the type ``definition`` knows, enabled or not."""
        return self._all.get(resource_type, self._common)

    def indexed(self, resource_type: str) -> dict[str, SearchParam]:
        """What the indexer writes rows for: the enabled parameters, and the compartment
        parameters among the others for their ``Patient`` references alone (``_index_list``)."""
        return self._indexed.get(resource_type) or self.for_type(resource_type)

    def stored_as(self, resource_type: str, code: str) -> str:
        """The parameter whose rows answer ``code``: itself, or the earlier twin it repeats."""
        return self._twins.get(resource_type, _NO_TWINS).get(code, code)

    def compartment_params(self, resource_type: str) -> tuple[str, ...]:
        """R4's Patient compartment parameters of the type, as stored (``stored_as``)."""
        return self.compartment.get(resource_type, ())

    def narrowed(self, resource_type: str) -> dict[str, tuple[str, str]]:
        """Reference parameters whose values are another enabled parameter's of one target type:
        ``patient`` is ``subject.where(resolve() is Patient)``, so its ``Patient/…`` values are
        exactly ``subject``'s. code -> (that parameter, the type). A backend keeps such values
        once, under the wider parameter, and answers the narrow one from them."""
        return self._narrowed.get(resource_type, {})

    def folded(self, resource_type: str) -> dict[str, tuple[str, ...]]:
        """String parameters whose rows the indexed parts of them also hold: ``family`` is
        ``Patient.name.family``, one part of each ``name`` row. code -> those part parameters.
        A resource's row of ``name`` that its ``family`` or ``given`` row states too is written
        once, under the part; ``name=`` reads its own rows and its parts' (``query.widen``)."""
        return self._folded.get(resource_type, _NO_FOLDS)

    def folds(self, resource_type: str) -> dict[str, tuple[str, ...]]:
        """``folded`` the other way: part parameter -> the parameters it is a part of."""
        return self._folds.get(resource_type, _NO_FOLDS)

    def fold_keys(self, resource_type: str, code: str) -> frozenset[str]:
        """The elements of a name or address (``family``, ``given``) whose text ``code``'s rows
        leave to its parts (``folded``): the indexer writes no row of ``code`` for them."""
        return self._fold_keys.get((resource_type, code), frozenset())

    @functools.cached_property
    def signature(self) -> str:
        """A digest of everything that decides which index rows a resource gets: per type, each
        indexed parameter's code, kind and expression, its ``:text`` and ``system|`` rows, and the
        narrowed references and string parts kept once. A backend records it with its index, and rebuilds the
        index from the stored resources when it opens a store recorded under another list (a
        parameter enabled later must find the resources stored before, too)."""
        shape = {rtype: [[p.code, p.type, p.expression, self.text_enabled(rtype, p.code),
                          self.system_enabled(rtype, p.code)] for p in self.indexed(rtype).values()]
                 + [sorted(self.narrowed(rtype).items()), sorted(self.folded(rtype).items())]
                 for rtype in sorted(self._by_type)}
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:32]

    def text_enabled(self, resource_type: str, code: str) -> bool:
        """Are the displays and text of this token parameter indexed for ``:text``?"""
        return (resource_type, code) in self.text

    def system_enabled(self, resource_type: str, code: str) -> bool:
        """Does this token parameter answer ``system|`` (any code of a system)? Each coded value
        then costs one more index row, so only parameters a deployment searches that way."""
        return (resource_type, code) in self.system


_NO_TWINS: dict[str, str] = {}
_NO_FOLDS: dict[str, tuple[str, ...]] = {}


def _folded(params: dict[str, SearchParam]) -> dict[str, dict[str, str]]:
    """Per string parameter, the others whose expression is its own and one part of a name or an
    address (``Patient.address`` and ``Patient.address.city``), each with that part's element
    (``city``): each of their values is one of its values, as ``Indexer._string`` writes them."""
    strings = {code: p.expression for code, p in params.items() if p.type == "string"}
    out: dict[str, dict[str, str]] = {}
    for code, expression in strings.items():
        parts = {part: e[len(expression) + 1:] for part, e in strings.items()
                 if e.startswith(expression + ".") and e[len(expression) + 1:] in TEXT_PARTS + LIST_PARTS}
        if parts:
            out[code] = parts
    return out


def _invert(folded: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for wide, parts in folded.items():
        for part in parts:
            out.setdefault(part, []).append(wide)
    return {part: tuple(wides) for part, wides in out.items()}


def _narrowed(params: dict[str, SearchParam]) -> dict[str, tuple[str, str]]:
    by_expression = {p.expression: code for code, p in params.items() if p.type == "reference"}
    out = {}
    for code, p in params.items():
        m = _RESOLVE_IS.match(p.expression) if p.type == "reference" else None
        if m and (base := by_expression.get(m.group(1))) is not None:
            out[code] = (base, m.group(2))
    return out


def _check_deployment(data: dict[str, Any], enabled: dict[str, Any]) -> None:
    """A type or parameter the list names must exist (a typo would silently index nothing),
    and ``text`` and ``system`` name token parameters only."""
    for section in ("enabled", "disabled", "text", "system"):
        for rtype, codes in (enabled.get(section) or {}).items():
            if rtype == "*" and section == "enabled":
                continue
            if rtype not in data["types"]:
                raise ValueError(f"search parameter list, {section}: {rtype!r} is not a supported resource type")
            if codes == "*" and section == "enabled":
                continue
            defs = {**data["common"], **data["types"][rtype]}
            for code in codes or ():
                if code not in defs:
                    raise ValueError(f"search parameter list, {section}: {rtype} has no parameter {code!r}")
                if section in ("text", "system") and defs[code]["type"] != "token":
                    raise ValueError(f"search parameter list, {section}: {rtype}.{code} is not a token parameter")


def definitions() -> dict[str, Any]:
    text = resources.files("conformance.searchparams").joinpath(DATA).read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def deployment() -> dict[str, Any]:
    text = resources.files("conformance.searchparams").joinpath(ENABLED).read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


@functools.cache
def load() -> SearchParams:
    """The R4 parameters as this deployment enables them (``enabled.yaml``)."""
    return SearchParams(definitions(), deployment())


def includable() -> dict[str, list[str]]:
    """Per resource type, the ``Type:parameter`` an ``_include`` accepts: every reference
    parameter huren evaluates, enabled for search or not (an include reads the matches)."""
    params = load()
    return {t: sorted(f"{t}:{code}" for code, p in params.definitions(t).items() if p.type == "reference")
            for t in params.types}


def supported() -> dict[str, list[dict[str, Any]]]:
    """Per resource type, the search parameter definitions huren supports (for the CapabilityStatement)."""
    params = load()
    return {t: [p.definition() for _, p in sorted(params.for_type(t).items())] for t in params.types}
