"""``Patient/{id}/$everything``: the patient's compartment, page by page, with the resources its
entries reference from outside it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from engine.errors import BadRequest, NotFound
from engine.repository.contracts import Access
from engine.repository.indexing import parse_reference
from engine.repository.reads import Reads
from engine.repository.references import references_in
from engine.repository.searching import Searching, SearchResult

EVERYTHING_COUNT = 1000


class Everything(Reads, Searching):
    """The ``$everything`` operation (see module docstring)."""

    def everything(
        self,
        patient_id: str,
        params: Sequence[tuple[str, str]] = (),
        *,
        compartment: Collection[str] | None = None,
        access: Access | None = None,
    ) -> SearchResult:
        """``Patient/{id}/$everything``: the patient, every resource in its compartment and, as R4
        defines the operation, "any resource referenced by these" (the Medication a prescription
        names, the performing Organization, the Practitioner): each page carries the resources its
        entries reference that are not themselves in the compartment, as ``search.mode`` include
        entries, read like any include (``access`` decides each one)."""
        if access is not None:
            compartment = access.compartment
        if compartment is not None and patient_id not in compartment:
            raise NotFound(f"Patient/{patient_id} is not known")
        self.read_raw("Patient", patient_id)
        allowed = {"_count", "_offset", "_type", "_since", "_elements"}
        for key, _ in params:
            if key not in allowed:
                raise BadRequest(f"$everything does not take '{key}'", expression=[key])
        pairs = [(k, v) for k, v in params if k != "_since"]
        if not any(k == "_count" for k, _ in pairs):
            pairs.append(("_count", str(EVERYTHING_COUNT)))
        for key, value in params:
            if key == "_since":
                pairs.append(("_lastUpdated", "ge" + value))
        parsed = self.parser.parse(None, [p for p in pairs if p[0] != "_lastUpdated"], compartment=frozenset({patient_id}))
        since = [v for k, v in pairs if k == "_lastUpdated"]
        if since:
            parsed.query.clauses.append(self.parser.parse("Patient", [("_lastUpdated", since[0])]).query.clauses[0])
        parsed.query.sort = []
        result = self.run(parsed, access)
        result.included.extend(self._referenced(result.resources, patient_id, access))
        return result

    def _referenced(
        self, page: list[dict[str, Any]], patient_id: str, access: Access | None
    ) -> list[dict[str, Any]]:
        """The resources ``page`` references that are outside ``patient_id``'s compartment (those
        inside it are entries of some page already), each once, at most ``INCLUDE_LIMIT``."""
        seen = {(r["resourceType"], r["id"]) for r in page}
        wanted: list[tuple[str, str]] = []
        for resource in page:
            for ref in references_in(resource, []):
                target = parse_reference(ref, self.base_url)
                if target is not None and target not in seen:
                    seen.add(target)
                    wanted.append(target)
        out = [r for r in self._current(wanted) if not self.in_compartment(r, {patient_id})]  # else its own entry
        if access is not None:
            return [seen_ for r in out if (seen_ := access.admit(r)) is not None]
        return out
