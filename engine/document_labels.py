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

from collections.abc import Sequence
from typing import Any, Protocol

from engine.auth.confidentiality import carried, labels
from engine.merge_rules import API, Stored

_DOCUMENT = "DocumentReference/"
_RANK = {"V": 2, "R": 1}
_TEXTS_AT_ONCE = "1000"  # a document's text Observations read in one search (one per OBX of the message)


class _Found(Protocol):
    resources: list[dict[str, Any]]
    has_next: bool


class Documents(Stored, Protocol):
    """The repository as the document's write hook uses it: its text found by ``derived-from`` and
    written again with the document's label (a derived write of the document's write group)."""

    def search(self, rtype: str | None, params: Sequence[tuple[str, str]]) -> _Found: ...

    def update(self, resource: dict[str, Any], *, source: str = API) -> Any: ...



def documents_cited(resource: dict[str, Any]) -> list[str]:
    """The documents whose label the mark gives ``resource`` ("DocumentReference/<id>"): an
    Observation's ``derivedFrom``, a DocumentReference's ``relatesTo`` targets (its own id left
    out). The one reading of what a resource takes a document's label from: the mark, and the
    writer's check that a FHIR client names only documents it may read
    (``ScopedRepository.check_write``), read it here."""
    if resource.get("resourceType") == "DocumentReference":
        refs = [str((r.get("target") or {}).get("reference")) for r in resource.get("relatesTo") or ()
                if isinstance(r, dict) and isinstance(r.get("target"), dict)]
        refs = ["/".join(r.split("/")[:2]) for r in refs if r.startswith(_DOCUMENT)]
        return [r for r in refs if r != f"{_DOCUMENT}{resource.get('id')}"]
    named = resource.get("derivedFrom")
    if not named or not isinstance(named, list):
        return []
    # a versioned reference (``DocumentReference/<id>/_history/1``) names the document by its id: the
    # label copier read ``<id>/_history/1`` as the id and left such a text unlabelled (review)
    return ["/".join(str(r.get("reference")).split("/")[:2]) for r in named
            if isinstance(r, dict) and str(r.get("reference") or "").startswith(_DOCUMENT)]


def _rank(resource: dict[str, Any] | None) -> int:
    return max((_RANK.get(c, 0) for c in labels(resource)), default=0) if resource is not None else 0


class DocumentLabels:
    """The mark (``FhirRepository.add_mark``) giving an Observation derived from a document the
    most confidential of its documents' labels and its own (``confidentiality.carried``, the
    high-water mark). From a feed that is the document's as merged: the message's own label never
    exceeds it (a feed raises or keeps the document's). Its own is kept too, so nothing a writer
    states lowers it: a FHIR client's Observation labelled V beside an unlabelled document stays
    V, and lowering the text is a PUT of the text itself, as lowering the document is of the
    document (explicit, each record)."""

    def __init__(self, repository: Documents) -> None:
        self.repository = repository

    def written(self, document: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The write hook of a DocumentReference (twentieth round, mdmmend20): the document's write
        owns its stored text (every Observation naming it in ``derivedFrom``), in its write group.

        Raised: a version labelled higher than the one it replaces gives its text that label. The
        mark labels the text only when the text itself is written, so a document raised to V by a
        FHIR client's PUT, or by an edit (T08) that did not resend every paragraph, left the text it
        did not write readable to those a V withholds the document from. Only a rise: a lowered
        document keeps its text's label (the text is lowered by a PUT of the text, explicit).

        Edited (a T08 carrying fewer paragraphs): mdmmend20 deleted the feed's copies of the
        paragraphs the new content no longer held; its review found the test of "the feed's copy"
        (subject, custodian as performer, one ``derivedFrom``) also deleted a clinician's own note,
        non-text results (ST, not in the text content) and -- the hook runs unscoped -- V text a
        clinician's PUT of the document could not read. Withdrawn: a paragraph an edit removed stays
        (labelled as the document, never lowered), a known limit rather than a deletion that
        cannot tell a copy from a record (the lead).
        """
        if _rank(document) <= _rank(previous):
            return []
        for text in self._texts(document):
            self._raised(text, document)
        return []

    def _raised(self, text: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
        raised = carried(text, [text, document])
        if raised is text:
            return text
        return dict(self.repository.update(raised, source=API).resource)

    def _texts(self, document: dict[str, Any]) -> list[dict[str, Any]]:
        """Every stored Observation naming ``document`` in ``derivedFrom`` (all pages)."""
        texts: list[dict[str, Any]] = []
        while True:
            found = self.repository.search("Observation", [("derived-from", f"{_DOCUMENT}{document['id']}"),
                                                           ("_count", _TEXTS_AT_ONCE), ("_offset", str(len(texts)))])
            texts.extend(found.resources)
            if not found.has_next or not found.resources:
                return texts

    def mark(self, resource: dict[str, Any]) -> dict[str, Any]:
        if resource.get("resourceType") == "DocumentReference":
            return self._related(resource)
        if not resource.get("derivedFrom"):
            return resource
        refs = documents_cited(resource)
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
        refs = documents_cited(document)
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
