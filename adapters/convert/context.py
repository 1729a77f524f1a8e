"""Conversion state for one message: the institution, the resources built so far, warnings, gaps.

Every converter writes through a ``Context``: ``ctx.put(resource, key)`` gives the resource its
deterministic id and keeps one copy per id (a practitioner named in three segments is one
resource), ``ctx.warn`` records a located HL7Error of severity W, ``ctx.unmapped`` records a code or
segment that had no mapping, for the fidelity report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.parser import Message, Segment
from mappings.site import Institution, Site

try:  # the repository's helper, once merged; the local stand-in computes the same kind of id
    from engine.repository.ids import deterministic_id  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on merge order
    from adapters.convert.ids import deterministic_id

Resource = dict[str, Any]


@dataclass
class Context:
    message: Message
    site: Site
    institution: Institution
    resources: dict[str, Resource] = field(default_factory=dict)  # "Type/id" → resource, in creation order
    warnings: list[HL7Error] = field(default_factory=list)
    unmapped: list[dict[str, str]] = field(default_factory=list)
    _unmapped_seen: set[tuple[str, str, str]] = field(default_factory=set)

    @property
    def code(self) -> str:
        return self.institution.code

    @property
    def tz(self) -> str:
        return self.institution.timezone

    @property
    def local_system(self) -> str:
        return self.institution.code_system

    def id_for(self, resource_type: str, key: str) -> str:
        return deterministic_id(self.code, resource_type, key)

    def ref(self, resource_type: str, key: str, display: str = "") -> dict[str, str]:
        ref = {"reference": f"{resource_type}/{self.id_for(resource_type, key)}"}
        if display:
            ref["display"] = display
        return ref

    def put(self, resource: Resource, key: str) -> dict[str, str]:
        """Store ``resource`` under its deterministic id (merging into an earlier one) → Reference."""
        rtype = resource["resourceType"]
        rid = self.id_for(rtype, key)
        resource["id"] = rid
        ref = f"{rtype}/{rid}"
        existing = self.resources.get(ref)
        if existing is None:
            self.resources[ref] = resource
        else:
            for k, v in resource.items():
                existing.setdefault(k, v)
        return {"reference": ref}

    def warn(self, err: HL7Error) -> None:
        err.severity = "W"
        self.warnings.append(err)

    def note_unmapped(self, kind: str, value: str, where: str = "") -> None:
        """A code or segment with no mapping: kept in the output where possible, listed here."""
        marker = (kind, value, where)
        if marker in self._unmapped_seen:
            return
        self._unmapped_seen.add(marker)
        entry = {"institution": self.code, "kind": kind}
        if kind == "segment":
            entry["segment"] = value
        else:
            entry["code"] = value
        if where:
            entry["where"] = where
        self.unmapped.append(entry)

    def error(
        self, seg: Segment, message: str, field_no: int | None = None, component: int | None = None, **kw: Any
    ) -> HL7Error:
        return seg.error(message, field_no, component, **kw)
