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

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from adapters.hl7v2.errors import DUPLICATE_KEY_IDENTIFIER, HL7Error
from engine.auth.confidentiality import carried, labels
from engine.merge_rules import API, Stored

_DOCUMENT = "DocumentReference/"
_RANK = {"V": 2, "R": 1}
_TEXTS_AT_ONCE = "1000"  # a document's text Observations read in one search (one per OBX of the message)
# the converter's own mark of the MDM event that wrote a document's version (``adapters.convert.pacs``)
DOCUMENT_EVENT = "urn:huren:StructureDefinition:document-event"
# HL7 v2.5 ch. 9: T02 makes a document (its original); T04 (status change with content) and T08 (edit)
# change one already made. T06/T10 are the originals of their own documents (their own TXA-12), so one
# under a number already stored -- a sender reusing the parent's -- is a later message about it too
_ORIGINALS = frozenset({"T02"})
_LATER = frozenset({"T04", "T06", "T08", "T10"})
_CONTENT_EVENTS = _ORIGINALS | _LATER
_MESSAGE_SYSTEM = "urn:huren:hl7v2:message:"  # a feed message's Provenance names it (``common.provenance``)
_FEED = "MDM"  # the writer (MSH-9.1) whose documents carry ``DOCUMENT_EVENT``
_FED_KEPT = 4096  # documents a feed wrote on one thread whose Provenance is not filed yet (a refused message's)


class _Found(Protocol):
    resources: list[dict[str, Any]]
    has_next: bool


class Documents(Stored, Protocol):
    """The repository as the document's write hook uses it: its text found by ``derived-from`` and
    written again with the document's label (a derived write of the document's write group)."""

    def search(self, rtype: str | None, params: Sequence[tuple[str, str]]) -> _Found: ...

    def update(self, resource: dict[str, Any], *, source: str = API) -> Any: ...

    def delete(self, rtype: str, rid: str) -> int | None: ...


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


def document_event(document: dict[str, Any] | None) -> str:
    """The MDM event that wrote a stored document's version (``DOCUMENT_EVENT``), or ""."""
    for ext in (document or {}).get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == DOCUMENT_EVENT:
            return str(ext.get("valueCode") or "")
    return ""


def _pinned(provenance: dict[str, Any]) -> dict[str, int | None]:
    """A Provenance's targets, "Type/id" -> the version it names (None: unversioned)."""
    out: dict[str, int | None] = {}
    for target in provenance.get("target") or ():
        ref = str((target or {}).get("reference") or "") if isinstance(target, dict) else ""
        parts = ref.split("/")
        if len(parts) == 4 and parts[2] == "_history" and parts[3].isdigit():
            out[f"{parts[0]}/{parts[1]}"] = int(parts[3])
        elif len(parts) == 2:
            out.setdefault(ref, None)
    return out


def _a_document_message(provenance: dict[str, Any]) -> bool:
    """Is this the Provenance the HL7 v2 feed wrote for an MDM carrying a document's content?"""
    kind = str((provenance.get("activity") or {}).get("text") or "")
    if not kind.startswith("MDM^") or kind[4:7] not in _CONTENT_EVENTS:
        return False
    return any(str(((e.get("what") or {}).get("identifier") or {}).get("system") or "").startswith(_MESSAGE_SYSTEM)
               for e in provenance.get("entity") or () if isinstance(e, dict))


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
        # the documents this thread's feed writes wrote, waiting for their message's Provenance: only
        # those are pruned (``message_written``) -- a FHIR client may write a Provenance too, and one
        # shaped as an MDM's (pinning a later version of the document) must not delete its text
        self._local = threading.local()

    def _fed(self) -> dict[str, int]:
        """"DocumentReference/<id>" -> how many of this thread's feed writes of it await their
        Provenance (a batch of messages files them after all its writes)."""
        fed: dict[str, int] | None = getattr(self._local, "fed", None)
        if fed is None or len(fed) >= _FED_KEPT:
            fed = self._local.fed = {}
        return fed

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

    def replayed(self, document: dict[str, Any], previous: dict[str, Any] | None, writer: str) -> dict[str, Any]:
        """The statement of a DocumentReference a feed writes: an original (T02) arriving after a
        later message about the same document (T04, T06, T08, T10: ``_LATER``) is refused, AE at MSH-9.2 (twenty-first round, docs21). An original is older than
        any change of it (HL7 v2.5 ch. 9), so a replayed T02 -- a sender's queue resent after an
        outage -- took the document and its text back to before the edit, last writer winning (the
        probes' two messages share MSH-7 and TXA-4: only the event tells them apart). Refused rather
        than answered AA and dropped: nothing of the message can be stored without taking something
        back (its text is keyed by the document, its label would be judged against the edit's), an AA
        would tell the sender it was, and the raw message is kept (``/admin/messages``) with the reason.
        Only the MDM feed's writes are judged: a FHIR client states the whole document (lowering,
        correcting), the patient index relinks its subject."""
        if writer != _FEED:  # a FHIR client states the whole document; the patient index relinks it
            return document
        now, before = document_event(document), document_event(previous)
        if previous is not None and now in _ORIGINALS and before in _LATER:
            number = (document.get("masterIdentifier") or {}).get("value") or document.get("id")
            raise HL7Error(
                f"MDM^{now} is the original of document {number!r}, which a later MDM^{before} already "
                f"changed: an original is older than any change of it and would take the document back; "
                f"not applied (the stored document stays as MDM^{before} left it)",
                segment="MSH", sequence=1, field=9, component=2, code=DUPLICATE_KEY_IDENTIFIER)
        if now in _CONTENT_EVENTS:
            fed = self._fed()
            ref = f"{_DOCUMENT}{document['id']}"
            fed[ref] = fed.get(ref, 0) + 1
        return document

    def message_written(self, provenance: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The write hook of a Provenance: when the feed's MDM carrying a document's content is filed
        (its Provenance names, version by version, what the message stored), the paragraphs the
        converter made from an EARLIER version of that document and that this message did not write
        are deleted, their versions kept (twenty-first round, docs21).

        T08 "the original document is edited" carries the whole edited text (v2.5 ch. 9): a paragraph
        the edit removed was still searched and read as the document's text. Which records are such
        paragraphs is read from the converter's own records, not guessed from content or
        ``derivedFrom`` (mdmmend20's test by subject, performer and content also deleted a clinician's
        note, ST results and text it could not read -- withdrawn): an Observation naming the document
        whose CURRENT version an earlier feed message about the document filed (its signed
        Provenance pins ``Observation/<id>/_history/<n>`` beside ``DocumentReference/<id>/_history/<m>``,
        m lower than this message's). A clinician's note (never in a feed's Provenance), a text a FHIR
        client rewrote since (its current version is the client's), one this message wrote or left
        unchanged (pinned by it), and a paragraph a later message of the same batch wrote again (pinned
        at a later version of the document) are kept. Deleted rather than ``entered-in-error``: the
        paragraph was right for its version of the document, which keeps it (the document's
        ``_history``, and the paragraph's own, 410 on read); entered-in-error says a record should never
        have existed, and R4 gives an Observation no ``superseded``. A labelled one stays withheld
        (the deleted-labels ledger). A message that wrote no paragraph of the document (an edit
        sending a PDF alone) judges nothing: its content is not text to compare (review of mdmmend20). Only MDM content events (T02/T04/T06/T08/T10) from the feed, for a
        document the feed wrote on this thread (``replayed`` notes it): a FHIR PUT of the document
        deletes nothing, nor does a Provenance a FHIR client writes in an MDM's shape."""
        if not _a_document_message(provenance):
            return []
        fed = getattr(self._local, "fed", None)
        if not fed:
            return []  # no feed wrote a document on this thread: a FHIR client's Provenance prunes nothing
        pinned = _pinned(provenance)
        for ref, version in pinned.items():
            if ref.startswith(_DOCUMENT) and version is not None and ref in fed:
                fed[ref] -= 1
                if fed[ref] <= 0:
                    del fed[ref]
                self._prune(ref, version, pinned)
        return []

    def _prune(self, document: str, version: int, pinned: dict[str, int | None]) -> None:
        found = self._texts({"id": document[len(_DOCUMENT):]})
        texts = [t for t in found if f"Observation/{t['id']}" not in pinned]
        if not texts or len(texts) == len(found):
            return  # nothing left out, or a message that wrote no text of it (a PDF alone: not judged)
        filed: dict[tuple[str, int], int] = {}  # (paragraph, its version) -> the latest document version filed with it
        for earlier in self._all("Provenance", [("target", document)]):
            if not _a_document_message(earlier):
                continue
            theirs = _pinned(earlier)
            at = theirs.get(document)
            if at is None:
                continue
            for ref, v in theirs.items():
                if v is not None and ref.startswith("Observation/"):
                    filed[(ref, v)] = max(filed.get((ref, v), 0), at)
        for text in texts:
            current = str((text.get("meta") or {}).get("versionId") or "")
            made = filed.get((f"Observation/{text['id']}", int(current))) if current.isdigit() else None
            if made is not None and made < version:
                self.repository.delete("Observation", text["id"])

    def _raised(self, text: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
        raised = carried(text, [text, document])
        if raised is text:
            return text
        return dict(self.repository.update(raised, source=API).resource)

    def _texts(self, document: dict[str, Any]) -> list[dict[str, Any]]:
        """Every stored Observation naming ``document`` in ``derivedFrom`` (all pages)."""
        return self._all("Observation", [("derived-from", f"{_DOCUMENT}{document['id']}")])

    def _all(self, rtype: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        found_all: list[dict[str, Any]] = []
        while True:
            found = self.repository.search(rtype, [*params, ("_count", _TEXTS_AT_ONCE),
                                                   ("_offset", str(len(found_all)))])
            found_all.extend(found.resources)
            if not found.has_next or not found.resources:
                return found_all

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
