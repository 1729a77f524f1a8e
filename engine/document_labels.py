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

And an edit owns the text (twenty-second round, docs22): the converter marks each paragraph it makes
of a document (``PARAGRAPH_SYSTEM``, which the FHIR API refuses from clients: ``refuse_feed_marks``),
and the feed's edit of the document (T08, a T10 under its number) deletes the marked paragraphs it no
longer carries (``DocumentLabels.written``), audited.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from adapters.hl7v2.errors import DUPLICATE_KEY_IDENTIFIER, HL7Error
from engine.auth.confidentiality import carried, labels
from engine.errors import Unprocessable
from engine.merge_rules import API, Stored

_DOCUMENT = "DocumentReference/"
_RANK = {"V": 2, "R": 1}
_TEXTS_AT_ONCE = "1000"  # a document's text Observations read in one search (one per OBX of the message)
# the converter's own mark of the MDM event that wrote a document's version (``adapters.convert.pacs``)
DOCUMENT_EVENT = "urn:huren:StructureDefinition:document-event"
# the converter's mark of a paragraph it made of a document (an MDM's OBX, ``adapters.convert.pacs``):
# ``Observation.identifier`` under ``urn:huren:document-paragraph:<sender>``, valued
# ``<TXA-12>|<place>`` (the OBX's place in the document: its code, sub-id and, repeated, its set id).
# Only the HL7 feed writes it: the FHIR API refuses it from any client (``refuse_feed_marks``), so a
# stored Observation carrying it is the converter's paragraph, whoever may create Observations
PARAGRAPH_SYSTEM = "urn:huren:document-paragraph:"
# the paragraphs (Observations) a feed message about a document carried, handed from the converter to
# the document's statement on the document's version and taken off it there: never stored
DOCUMENT_TEXT = "urn:huren:StructureDefinition:document-text"
_DOCUMENT_SYSTEM = "urn:huren:document:"  # ``DocumentReference.masterIdentifier``: TXA-12 at its sender
# HL7 v2.5 ch. 9: T02 makes a document (its original); T04 (status change with content) and T08 (edit)
# change one already made. T06/T10 are the originals of their own documents (their own TXA-12), so one
# under a number already stored -- a sender reusing the parent's -- is a later message about it too
_ORIGINALS = frozenset({"T02"})
_LATER = frozenset({"T04", "T06", "T08", "T10"})
# the events whose content IS the document as it now stands, under its own number: T08 "the original
# document is edited" and T10 a replacement (the revised document, whole) sent under the number stored.
# Not T02 resent (a thinner resend states nothing about what it left out), not T04 (a status change;
# the content "is also transmitted", v2.5 9.4.4), never T06 (an addendum: "the parent document remains
# in place and its content is unaltered")
_REPLACING = frozenset({"T08", "T10"})
_FEED = "MDM"  # the writer (MSH-9.1) whose documents carry ``DOCUMENT_EVENT``
_EDITS_KEPT = 4096  # edits noted on one thread whose document version is not stored (a refused write's)


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


def feed_marks(resource: dict[str, Any]) -> list[str]:
    """Where ``resource`` carries a mark only the HL7 feed writes: a paragraph identifier
    (``PARAGRAPH_SYSTEM``) or the converter's hand-over of a document's paragraphs
    (``DOCUMENT_TEXT``) -- the FHIRPath of each, for the FHIR API's refusal."""
    rtype = str(resource.get("resourceType") or "Resource")
    found = [f"{rtype}.identifier[{n}].system" for n, ident in enumerate(resource.get("identifier") or ())
             if isinstance(ident, dict) and str(ident.get("system") or "").startswith(PARAGRAPH_SYSTEM)]
    found += [f"{rtype}.extension[{n}].url" for n, ext in enumerate(resource.get("extension") or ())
              if isinstance(ext, dict) and ext.get("url") == DOCUMENT_TEXT]
    return found


def refuse_feed_marks(resource: dict[str, Any]) -> None:
    """The FHIR API's refusal (422) of a resource carrying a mark only the HL7 feed writes, from any
    client, on create, update, conditional update and every entry of a transaction or batch Bundle
    (``ScopedRepository.check_write``, the one place each of them passes with the body). Why: an edit
    (T08) removes the paragraphs of its document it no longer carries, and it knows them by this
    identifier alone (twenty-second round, docs22); a client able to write it -- a clinician allowed to
    create Observations -- could have its own note taken for a paragraph and deleted by the next edit,
    or mark a clinician's note for deletion (the review of docs21 found the same through a Provenance
    a client wrote). A paragraph a client rewrites is the client's record: it leaves the identifier out,
    and an edit then leaves it alone."""
    where = feed_marks(resource)
    if where:
        raise Unprocessable(
            f"{where[0]}: {PARAGRAPH_SYSTEM}<sender> identifiers (and the {DOCUMENT_TEXT} extension) are the "
            "HL7 feed's own marks of the paragraphs it converted from a document, which an edit of the "
            "document replaces; a FHIR client may not write them -- leave them out (a paragraph written "
            "without one is the client's own record, which no edit removes)", expression=where)


def paragraph_of(text: dict[str, Any], document: dict[str, Any]) -> str:
    """The place of ``text`` among the converter's paragraphs of ``document`` (its
    ``PARAGRAPH_SYSTEM`` identifier, naming the document's sender and number), or ""."""
    master = document.get("masterIdentifier") or {}
    system, number = str(master.get("system") or ""), str(master.get("value") or "")
    if not system.startswith(_DOCUMENT_SYSTEM) or not number:
        return ""
    mine, prefix = f"{PARAGRAPH_SYSTEM}{system[len(_DOCUMENT_SYSTEM):]}", f"{number}|"
    for ident in text.get("identifier") or ():
        if isinstance(ident, dict) and ident.get("system") == mine:
            value = str(ident.get("value") or "")
            if value.startswith(prefix) and len(value) > len(prefix):
                return value[len(prefix):]
    return ""


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

    def __init__(self, repository: Documents, audit: Any = None) -> None:
        self.repository = repository
        self.audit = audit  # the signed audit log (``AuditLog.record``): an edit's deletions are recorded
        # the edits this thread's feed writes stated, by document id: (its number, the paragraphs it
        # carried); set by the document's statement (which alone knows the writer) for the write hook
        # of the version it stated, and cleared by any other writer's statement of that document
        self._local = threading.local()

    def _edits(self) -> dict[str, tuple[str, frozenset[str]]]:
        edits: dict[str, tuple[str, frozenset[str]]] | None = getattr(self._local, "edits", None)
        if edits is None or len(edits) >= _EDITS_KEPT:
            edits = self._local.edits = {}
        return edits

    def written(self, document: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The write hook of a DocumentReference: the document's write owns its stored text (every
        Observation naming it in ``derivedFrom``), in its write group.

        Edited (twenty-second round, docs22): when the version is the HL7 feed's edit of the document
        under its stored number (T08, or a T10 under that number: ``_REPLACING``, noted by
        ``replayed`` for this very document), the converter's paragraphs of that document the edit did
        not carry are deleted, their versions kept (410; ``_history`` for those who may read them).
        "The converter's paragraph of that document" is read from one mark alone, the
        ``PARAGRAPH_SYSTEM`` identifier naming the document's sender and number (``paragraph_of``),
        which no FHIR client can write (``refuse_feed_marks``): a clinician's note, a lab result
        naming the document, a paragraph a client rewrote (without the mark) are never candidates,
        whatever their subject, performer, content or ``derivedFrom``; nor is anything when the edit
        carried no paragraph (a PDF alone: its content is not paragraphs to compare). Each deletion is
        recorded in the audit log (action delete, the sending institution as requestor).

        Raised: a version labelled higher than the one it replaces gives its remaining text that
        label (mdmmend20): the mark labels the text only when the text itself is written. Only a
        rise: a lowered document keeps its text's label (the text is lowered by a PUT of the text)."""
        edit = (self._edits().pop(document["id"], None)
                if document_event(document) in _REPLACING and previous is not None else None)
        gone: set[str] = set()
        if edit is not None and edit[0] == str((document.get("masterIdentifier") or {}).get("value") or ""):
            gone = self._prune(document, edit[1])
        if _rank(document) <= _rank(previous):
            return []
        for text in self._texts(document):
            if f"Observation/{text['id']}" not in gone:
                self._raised(text, document)
        return []

    def replayed(self, document: dict[str, Any], previous: dict[str, Any] | None, writer: str) -> dict[str, Any]:
        """The statement of every DocumentReference write (it alone is told the writer).

        The converter's hand-over (``DOCUMENT_TEXT`` extensions: the paragraphs the message carried)
        is taken off the version here, whoever writes: it is never stored. For the MDM feed's edit of a
        stored document (``_REPLACING``) it is noted for the write hook (``written``) of this version;
        any other write of the document clears what was noted for it (a refused feed write's note
        cannot be used by a client's PUT).

        And an original (T02) arriving after a later message about the same document (T04, T06, T08,
        T10: ``_LATER``) is refused, AE at MSH-9.2 (twenty-first round, docs21): an original is older
        than any change of it (HL7 v2.5 ch. 9), so a replayed T02 -- a sender's queue resent after an
        outage -- took the document and its text back to before the edit, last writer winning. Refused
        rather than answered AA and dropped: nothing of the message can be stored without taking
        something back, an AA would tell the sender it was, and the raw message is kept
        (``/admin/messages``) with the reason. Only the MDM feed's writes are judged: a FHIR client
        states the whole document (lowering, correcting), the patient index relinks its subject."""
        carried = frozenset(str((e.get("valueReference") or {}).get("reference") or "")
                            for e in document.get("extension") or ()
                            if isinstance(e, dict) and e.get("url") == DOCUMENT_TEXT)
        if carried:
            kept = [e for e in document["extension"] if not (isinstance(e, dict) and e.get("url") == DOCUMENT_TEXT)]
            document = {k: v for k, v in document.items() if k != "extension"}
            if kept:
                document["extension"] = kept
        edits = self._edits()
        edits.pop(str(document.get("id")), None)
        if writer != _FEED:  # a FHIR client states the whole document; the patient index relinks it
            return document
        now, before = document_event(document), document_event(previous)
        number = str((document.get("masterIdentifier") or {}).get("value") or "")
        if previous is not None and now in _ORIGINALS and before in _LATER:
            raise HL7Error(
                f"MDM^{now} is the original of document {number or document.get('id')!r}, which a later "
                f"MDM^{before} already changed: an original is older than any change of it and would take "
                f"the document back; not applied (the stored document stays as MDM^{before} left it)",
                segment="MSH", sequence=1, field=9, component=2, code=DUPLICATE_KEY_IDENTIFIER)
        if previous is not None and now in _REPLACING and number and carried - {""}:
            edits[str(document["id"])] = (number, carried - {""})
        return document

    def _prune(self, document: dict[str, Any], carried: frozenset[str]) -> set[str]:
        """Delete the converter's paragraphs of ``document`` that its edit did not carry; the
        references deleted."""
        gone: list[tuple[str, dict[str, Any]]] = []
        for text in self._texts(document):
            ref = f"Observation/{text['id']}"
            if ref in carried or not paragraph_of(text, document):
                continue
            self.repository.delete("Observation", text["id"])
            gone.append((ref, text))
        # a labelled (R, V) paragraph's deletion names no patient, as a DELETE over the API names none: the
        # resident's audit view would otherwise show a deletion on a record they were never shown
        for part in ([g for g in gone if not _rank(g[1])], [g for g in gone if _rank(g[1])]):
            if part:
                self._audited(document, part, named=not _rank(part[0][1]))
        return {ref for ref, _ in gone}

    def _audited(self, document: dict[str, Any], gone: list[tuple[str, dict[str, Any]]], *, named: bool) -> None:
        """The edit's deletions in the signed audit log, as a DELETE over the API is (action delete):
        the sending institution as requestor (a message's import names it so), the patient, each
        paragraph's deleted version, and the document version whose edit left it out."""
        if self.audit is None:
            return
        from engine.audit.events import INSTITUTION, now_instant, patients_of
        from engine.audit.record import facts

        master = str((document.get("masterIdentifier") or {}).get("system") or "")
        sender = master[len(_DOCUMENT_SYSTEM):] if master.startswith(_DOCUMENT_SYSTEM) else "?"
        version = str((document.get("meta") or {}).get("versionId") or "")
        patients = list(dict.fromkeys(p for _, text in gone for p in patients_of(text))) if named else []
        self.audit.record(facts(
            action="delete", recorded=now_instant(), start=None, outcome="0",
            desc=f"MDM^{document_event(document)} edit of document {(document.get('masterIdentifier') or {}).get('value')!r} "
                 "no longer carries these paragraphs",
            requestor=(INSTITUTION, sender or "?", None, None, None, None, None, None), origin=self.audit.origin,
            patients=patients, resources=[ref for ref, _ in gone],
            detail={"document": f"{_DOCUMENT}{document['id']}" + (f"/_history/{version}" if version else ""),
                    "reason": "paragraph-left-out-by-edit"}))

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
