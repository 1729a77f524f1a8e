"""A document's text carries the document's confidentiality label, as the document is stored.

An MDM's OBX text is stored twice: in the DocumentReference (its attachment) and as Observations
(``Observation.derivedFrom`` names the document, ``adapters.convert.pacs``). TXA-18 labels the
document; the converter labelled the text from the message alone, so a later message about a V
document that stated no TXA-18 (an edit T08, a resend) wrote its text unlabelled while the merge
kept the document V: a resident, or a clinician, read the words of a V document (nineteenth
round's left item, twentieth round, mdm20). The document's label is decided in one place -- the
merge of ``DocumentReference.securityLabel`` (``mappings/merge.yaml``: kept when a message states
none, never lowered by a feed) -- and the text takes it from there: the message writes the
document first (``pacs._documents_first``), and this mark reads the version just combined (this
write group's pending one) or the stored one. An addendum or a replacement (TXA-13 ->
``relatesTo``) is labelled as the most confidential of itself and its parent the same way.

A mark rather than a statement: marks already run on every Observation's first version (the
recognition mark), so an Observation naming no document costs one ``dict.get``; a statement would
send every laboratory result's first version through the merge path.
"""

from __future__ import annotations

from typing import Any

from engine.auth.confidentiality import carried
from engine.merge_rules import Stored

_DOCUMENT = "DocumentReference/"


class DocumentLabels:
    """The mark (``FhirRepository.add_mark``) giving an Observation derived from a document the
    most confidential of its documents' labels and its own (``confidentiality.carried``, the
    high-water mark). From a feed that is the document's as merged: the message's own label never
    exceeds it (a feed raises or keeps the document's). Its own is kept too, so nothing a writer
    states lowers it: a FHIR client's Observation labelled V beside an unlabelled document stays
    V, and lowering the text is a PUT of the text itself, as lowering the document is of the
    document (explicit, each record)."""

    def __init__(self, repository: Stored) -> None:
        self.repository = repository

    def mark(self, resource: dict[str, Any]) -> dict[str, Any]:
        if resource.get("resourceType") == "DocumentReference":
            return self._related(resource)
        named = resource.get("derivedFrom")
        if not named:
            return resource
        refs = [str(r.get("reference")) for r in named
                if isinstance(r, dict) and str(r.get("reference") or "").startswith(_DOCUMENT)]
        if not refs:
            return resource
        documents = self._documents(refs)
        if not documents:
            return resource
        return carried(resource, [resource, *documents])

    def _related(self, document: dict[str, Any]) -> dict[str, Any]:
        """An addendum or a replacement (``relatesTo``, TXA-13) is labelled as the most confidential
        of itself and the documents it appends to or replaces: an addendum of a V discharge summary
        stating no TXA-18 was a new, unlabelled document beside it (its own TXA-12)."""
        refs = [str((r.get("target") or {}).get("reference")) for r in document.get("relatesTo") or ()
                if isinstance(r, dict) and isinstance(r.get("target"), dict)]
        refs = [r for r in refs if r.startswith(_DOCUMENT) and r != f"{_DOCUMENT}{document.get('id')}"]
        if not refs:
            return document
        parents = self._documents(refs)
        return carried(document, [document, *parents]) if parents else document

    def _documents(self, refs: list[str]) -> list[dict[str, Any]]:
        """The documents named, as this write group holds them (combined, not yet put) or stored."""
        found: dict[str, dict[str, Any]] = {}
        wanted = set(refs)
        for version, _ in reversed(self.repository.pending()):
            ref = f"{version.get('resourceType')}/{version.get('id')}"
            if ref in wanted and ref not in found:
                found[ref] = version
        keys = [("DocumentReference", ref[len(_DOCUMENT):]) for ref in dict.fromkeys(refs) if ref not in found]
        if keys:
            found.update({f"DocumentReference/{rid}": version
                          for (_, rid), version in self.repository.read_many(keys).items()})
        return list(found.values())
