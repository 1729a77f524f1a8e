"""Search parameter definitions as data: ``conformance/searchparams/searchparams.json``.

That file is extracted from the official R4 SearchParameter resources by
``conformance/searchparams/extract.py``; here it is loaded once per process (immutable) and each
parameter's FHIRPath expression is compiled into a function the indexer calls on every write.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from engine.repository.fhirpath import Evaluator, compile_expression

DATA = "searchparams.json"


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

    def __init__(self, data: dict[str, Any]) -> None:
        common = {code: self._param(code, d, "Resource") for code, d in data["common"].items()}
        self._by_type: dict[str, dict[str, SearchParam]] = {}
        for rtype, params in data["types"].items():
            merged = dict(common)
            merged.update({code: self._param(code, d, rtype) for code, d in params.items()})
            self._by_type[rtype] = merged
        self._common = common
        self.resource_types: frozenset[str] = frozenset(data.get("resource_types") or self._by_type)
        self.compartment: dict[str, tuple[str, ...]] = {
            t: tuple(ps) for t, ps in data["compartment"]["Patient"].items()
        }

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

    def compartment_params(self, resource_type: str) -> tuple[str, ...]:
        return self.compartment.get(resource_type, ())


@functools.cache
def load() -> SearchParams:
    text = resources.files("conformance.searchparams").joinpath(DATA).read_text(encoding="utf-8")
    return SearchParams(json.loads(text))


def supported() -> dict[str, list[dict[str, Any]]]:
    """Per resource type, the search parameter definitions huren supports (for the CapabilityStatement)."""
    params = load()
    return {t: [p.definition() for _, p in sorted(params.for_type(t).items())] for t in params.types}
