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

import base64
import binascii
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from engine.audit.appends import event_id
from engine.audit.events import INSTITUTION, now_instant
from engine.audit.record import Facts, facts
from engine.auth.confidentiality import carried, labels
from engine.merge_rules import API, NOT_THE_FEED, Stored

_DOCUMENT = "DocumentReference/"
_RANK = {"V": 2, "R": 1}
_TEXTS_AT_ONCE = "1000"  # a document's text Observations read in one search (one per OBX of the message)
# the converter's marks on its copies of a numbered document's paragraphs (+ the sender; value TXA-12):
# a paragraph of the document's whole text, and an addendum's -- written by ``adapters.convert.pacs``
# (which takes these names from here), judged here
PARAGRAPH_SYSTEM = "urn:huren:document-paragraph:"
ADDENDUM_SYSTEM = "urn:huren:document-addendum:"
TEXT_KIND_SYSTEM = "urn:huren:document-text"  # the mark's type: which kind of message stated the copy
_EDIT, _ORIGINAL, _ADDENDUM_KIND = "edit", "original", "addendum"
_WITHDRAWN = frozenset({"entered-in-error", "cancelled"})
DOCUMENT_NUMBER_SYSTEM = "urn:huren:document:"  # the document's masterIdentifier system (+ the sender; TXA-12)
_TEXT_PLAIN = "text/plain"


class _Found(Protocol):
    resources: list[dict[str, Any]]
    has_next: bool


class _Statement(Protocol):
    def at(self, element: str, resource: dict[str, Any]) -> str | None: ...


class Statements(Protocol):
    """The merge rules as the judgment reads this message's statement (``MergeRules.saying``): what it
    said of a resource beside its content (``said_of``: the copies its converter marked, each located at
    TXA-12) and which resources its write left as stored, older than the message that stored them
    (``held``: the document's ``masterIdentifier: until_later``)."""

    def said_of(self, ref: str) -> _Statement | None: ...

    def held(self) -> frozenset[str]: ...


class Documents(Stored, Protocol):
    """The repository as the document's write hook uses it: its text found by ``derived-from`` and
    written again with the document's label (a derived write of the document's write group)."""

    @property
    def merge(self) -> Statements: ...

    def search(self, rtype: str | None, params: Sequence[tuple[str, str]]) -> _Found: ...

    def update(self, resource: dict[str, Any], *, source: str = API) -> Any: ...

    def delete(self, rtype: str, rid: str) -> int | None: ...

    def writers(self, rtype: str, ids: Sequence[str]) -> dict[str, str | None]: ...

    def version_writers(self, rtype: str, rid: str) -> list[tuple[str, str | None]]: ...

    def history(self, rtype: str, rid: str) -> list[dict[str, Any]]: ...


class AuditSink(Protocol):
    """The signed audit log as the deletion of a dropped paragraph records it."""

    def record(self, event: Facts) -> Any: ...  # (``Appended``: its ``seq`` names the record)


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

    def __init__(self, repository: Documents, audit: AuditSink | None = None, origin: str = "",
                 store: object | None = None) -> None:
        """``store``: the store the repository writes through (its ``on_rollback`` tells a deletion rolled
        back with its write group, ``_compensated``)."""
        self.repository = repository
        self.audit = audit
        self.origin = origin
        self.store = store

    def written(self, document: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The write hook of a DocumentReference (twentieth round, mdmmend20): the document's write
        owns its stored text (every Observation naming it in ``derivedFrom``), in its write group.

        Raised: a version labelled higher than the one it replaces gives its text that label. The
        mark labels the text only when the text itself is written, so a document raised to V by a
        FHIR client's PUT, or by an edit (T08) that did not resend every paragraph, left the text it
        did not write readable to those a V withholds the document from. Only a rise: a lowered
        document keeps its text's label (the text is lowered by a PUT of the text, explicit).

        Edited (a T08 carrying fewer paragraphs): mdmmend20 deleted the feed's copies of the
        paragraphs the new content no longer held here; its review found the test of "the feed's
        copy" (subject, custodian as performer, one ``derivedFrom``) also deleted a clinician's own
        note, non-text results (ST, not in the text content) and -- the hook runs unscoped -- V text
        a clinician's PUT of the document could not read. Withdrawn (the lead); done since by
        ``settled`` (old37), which tells a copy by the converter's mark and the feed's writer.
        """
        if _rank(document) <= _rank(previous):
            return []
        for text in self._texts(document):
            self._raised(text, document)
        return []

    def settled(self, pairs: Sequence[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[list[dict[str, Any]]]:
        """The batch write hook (thirty-seventh round, old37): a numbered document the feed wrote in
        this write group -- or whose paragraphs it wrote -- keeps as its text only the paragraph
        copies its stored text content holds. An edit (T08, v2.5 ch. 9: "the original document is
        edited") carries the whole edited text: a paragraph it removed was still searched and read
        as the document's text.

        Which records are copies (what the withdrawn rounds could not tell): an Observation the
        converter marked as a paragraph of this document (``adapters.convert.pacs``: identifier
        ``urn:huren:document-paragraph:<sender>|<TXA-12>``, the sender and number of the
        document's ``masterIdentifier``), whose current version the feed stored
        (``StoredResource.writer``: a FHIR client's note or PUT -- even one copying the mark -- is
        the client's record), naming this document alone (``derivedFrom``) and its patient. An ST
        result beside the text is not marked; an addendum's paragraph (T06, even under its parent's
        number) carries the addendum's mark; a copy written before the mark existed carries none:
        all are left.

        Judged after the whole group is stored (a batch hook), by the document as stored: an older
        edit held against a later one (``masterIdentifier: until_later``) leaves the later text, and
        the paragraphs the older one wrote again go. Only text content is judged (a PDF is not),
        and only the feed's writes start it (a records office's or clinician's PUT of the document
        deletes nothing). Deleted, versions kept (410, ``_history``): the paragraph was a copy of a
        part of the document, whose own history keeps it; each deletion is in the audit log."""
        documents: dict[str, set[str]] = {}  # document id -> the kinds of the copies this group wrote of it
        written: list[str] = []  # the numbered documents this group wrote
        wrote: list[tuple[str, str, set[str]]] = []  # (copy, its document, its marks' kinds)
        for stored, _ in pairs:
            # (a lab message's every version: one look-up and a comparison or two)
            if "masterIdentifier" in stored:
                if stored["resourceType"] == "DocumentReference" and _number(stored) is not None:
                    documents.setdefault(stored["id"], set())
                    written.append(stored["id"])
            elif "derivedFrom" in stored and "identifier" in stored and stored["resourceType"] == "Observation":
                kinds = {kind for _, _, kind in _marks(stored)}
                for ref in documents_cited(stored) if kinds else ():
                    documents.setdefault(ref[len(_DOCUMENT):], set())
                    wrote.append((stored["id"], ref[len(_DOCUMENT):], kinds))
        if not documents:
            return [[]] * len(pairs)  # (nothing is added to it: one empty list for every version)
        out: list[list[dict[str, Any]]] = [[] for _ in pairs]
        # only the feed's writes count: the document's, or its copies' (an older edit held against the stored one)
        # (a document only cited by a copy a FHIR client wrote is not started by that write)
        fed = {rid for rid, w in self.repository.writers("DocumentReference", written).items()
               if w not in NOT_THE_FEED} if written else set()
        copies = self.repository.writers("Observation", [oid for oid, _, _ in wrote])
        ours: dict[str, set[str]] = {}  # document id -> the copies of it this group wrote (the feed's)
        for oid, rid, kinds in wrote:
            if oid in copies and copies[oid] not in NOT_THE_FEED:
                fed.add(rid)
                documents[rid] |= kinds
                ours.setdefault(rid, set()).add(oid)
        # an original resent (a T02 maybe thinner) or an addendum drops nothing; an edit does; the
        # document alone (its copies unchanged) as the copies its message stated say (``_drop_stale``).
        # A message whose statement of the document was held (older than the one that stated the stored
        # text: ``until_later``) is judged whatever its kind: its copies are no text of the document
        # unless the stored text holds them (a T02 replayed after the edit brought the edit's dropped
        # paragraph back, review rv37d MED 2)
        held = self.repository.merge.held()
        judged = [(rid, f"{_DOCUMENT}{rid}" in held) for rid, kinds in documents.items()
                  if rid in fed and (f"{_DOCUMENT}{rid}" in held or not kinds - {_EDIT})]
        found = self.repository.read_many([("DocumentReference", rid) for rid, _ in judged]) if judged else {}
        gone: set[str] = set()
        for rid, older in judged:
            document = found.get(("DocumentReference", rid))
            if document is not None:
                gone.update(self._drop_stale(document, ours.get(rid, set()), bool(documents[rid]), older=older))
        # a copy this group wrote and then deleted (an older message held against the stored text): said in
        # the write's issues (the ACK's W), as the held document is
        for (stored, _), issues in zip(pairs, out, strict=True):
            if stored.get("resourceType") == "Observation" and stored.get("id") in gone:
                issues.append({"severity": "warning", "code": "informational", "expression": ["Observation.valueString"],
                               "diagnostics": "Observation.valueString: a paragraph the document's stored text no "
                                              "longer holds is not the document's text: deleted (its versions kept, "
                                              "_history)"})
        return out

    def _drop_stale(self, document: dict[str, Any], ours: set[str], edited: bool, *, older: bool) -> list[str]:
        """Delete the feed's marked copies of ``document``'s paragraphs that are no longer its text; the ids
        deleted. ``ours``: the copies this write group wrote of it; ``edited``: some of them an edit's.

        Which copies are its text is asked of what this message stated (``_stated``: each copy its
        converter marked, unchanged ones too), not of the copies' words: copies are kept at their
        places (OBX-3 and OBX-1 order), so an edit removing a middle paragraph rewrites the next place
        with the next paragraph's words and the last place's copy -- words still in the text -- read
        one paragraph twice, as did a paragraph re-coded with its words kept (review rv37d MED 1).

        - The document stated by this message (not held): an edit's copies are the whole text; every
          other copy goes. A message stating no copy of it, or an original's (T02 resent), drops nothing.
        - Its statement held (``older``): the stored, later text is another message's; of the copies
          this message stated, those the stored text does not hold -- each of its lines claimed once,
          the copies it did not state first -- go: it brings back no paragraph an edit dropped, and
          repeats none.
        - No statement to read (a write outside a message): the stored text judges, line by line, each
          line claimed once, this group's copies first, as an edit's only."""
        number = _number(document)
        lines = _text_lines(document)
        if number is None or lines is None:
            return []
        ref = f"{_DOCUMENT}{document['id']}"
        system = PARAGRAPH_SYSTEM + number[0]
        # (a copy its sender withdrew, OBX-11 W/D: entered-in-error, already says it is no text of the
        # document, and is the record of that withdrawal: left as it is)
        candidates: list[tuple[dict[str, Any], set[str]]] = []
        for text in self._texts(document):
            marks = _marks(text)
            if not any(s == system and v == number[1] for s, v, _ in marks):
                continue
            kinds = {kind for _, _, kind in marks}
            if (_ADDENDUM_KIND not in kinds and documents_cited(text) == [ref]
                    and text.get("subject") == document.get("subject") and text.get("status") not in _WITHDRAWN):
                candidates.append((text, kinds))
        statements = self.repository.merge
        stated = ({t["id"] for t, _ in candidates if t["id"] in ours or _stated(statements, t)}
                  if statements.said_of(ref) is not None else None)
        if older:
            if not stated:
                return []
            texts = [t for t, _ in candidates]
            stale = [t for t in _unheld([t for t in texts if t["id"] not in stated] + [t for t in texts
                                                                                       if t["id"] in stated], lines)
                     if t["id"] in stated]
        elif stated is not None:
            said = [kinds for t, kinds in candidates if t["id"] in stated]
            if not said or any(kinds != {_EDIT} for kinds in said):
                return []
            stale = [t for t, _ in candidates if t["id"] not in stated]
        else:
            if not edited and any(kinds != {_EDIT} for _, kinds in candidates):
                return []
            texts = [t for t, _ in candidates]
            stale = _unheld([t for t in texts if t["id"] in ours] + [t for t in texts if t["id"] not in ours], lines)
        if not stale:
            return []
        writers = self.repository.writers("Observation", [t["id"] for t in stale])
        gone = [t for t in stale if t["id"] in writers and (writers[t["id"]] not in NOT_THE_FEED or (
            writers[t["id"]] == API and self._relabelled(t["id"])))]
        deleted = [t for t in gone if self.repository.delete("Observation", t["id"]) is not None]
        if deleted and self.audit is not None:
            done = self._deletion(document, number, deleted)
            appended = self.audit.record(done)
            self._compensated(done, number, getattr(appended, "seq", None))
        return [t["id"] for t in deleted]

    def _compensated(self, done: Facts, number: tuple[str, str], seq: int | None) -> None:
        """The deletion's record is appended inside the write group (a deletion is never stored unaudited:
        an audit log that cannot append fails the group). On SQLite the log is a file of its own, outside
        the group's transaction: a group failing after the deletion (a later hook, a later message of a
        batch written as one) rolled the deletion back and left its record saying the copies were
        deleted (review rv37d LOW 4). So a rollback of the block the deletion was made in appends a
        compensating record (``_restored``), through the store's ``on_rollback``. Not on MongoDB, where
        the log shares the repository's store and its append is undone with the block (``audit.store`` is
        the store: nothing to compensate). (Thirty-eighth round, codedoc38.) ``seq``: the deletion record's
        number, which the compensation names (``compensates: audit-<seq>``): several tries of one edit (the
        batch's one-commit attempt, then its redo) record the same deletion more than once, and an auditor
        reading the chain offline must tell which of them was undone (review rv38f LOW L1; cdfix38)."""
        audit, store = self.audit, self.store
        on_rollback = getattr(store, "on_rollback", None)
        if audit is None or on_rollback is None or getattr(audit, "store", None) is store:
            return
        restored = self._restored(done, number, seq)
        on_rollback(lambda: audit.record(restored))

    def _restored(self, done: Facts, number: tuple[str, str], seq: int | None) -> Facts:
        """The compensating record of a deletion rolled back with its write group: the same requestor,
        document, copies and patients as the deletion's record (``done``, ``_deletion``'s), outcome 8 (the
        deletion failed: the copies are stored as they were), its reason saying so."""
        return facts(action="delete", recorded=now_instant(), start=None, outcome="8",
                     desc="the deletion of these paragraphs recorded before was rolled back with its write group: "
                          "nothing was deleted",
                     requestor=done.requestor, origin=self.origin, patients=done.patients, resources=done.resources,
                     owners=dict(done.owners) if done.owners else None,
                     detail={"document-number": number[1], "reason": "paragraph-deletion-rolled-back",
                             "compensates": event_id(seq) if seq is not None else None})

    def _relabelled(self, oid: str) -> bool:
        """Whether the copy's current version, a FHIR client's, only relabelled the feed's (every newer
        version than the feed's last changed nothing but ``meta``): a document raised to V -- by the
        records office's PUT, whose hook relabels its text (``_raised``), or an edit -- wrote its copies
        as a FHIR client's, and the feed's next edit dropping a paragraph deleted nothing (review rv37d
        LOW 3). A relabel is not authorship: the words are still the feed's. Asked only of a dropped
        copy a client wrote last (two history reads)."""
        writers = self.repository.version_writers("Observation", oid)
        versions = self.repository.history("Observation", oid)
        if len(writers) != len(versions):
            return False
        for n, (_, writer) in enumerate(writers):
            if writer not in NOT_THE_FEED:
                return n > 0
            if writer != API or n + 1 >= len(versions) or _but_meta(versions[n]) != _but_meta(versions[n + 1]):
                return False
        return False

    def _deletion(self, document: dict[str, Any], number: tuple[str, str], deleted: list[dict[str, Any]]) -> Facts:
        """The audit record of the copies deleted: a delete by the document's sender (the institution its
        number names), naming the document and what went. The patient is named only for a document
        without a label: a V document's deletions stay out of the resident's view of the log (the
        import that wrote them names no more of it than the resident may see)."""
        subject = str((document.get("subject") or {}).get("reference") or "")
        refs = [f"{_DOCUMENT}{document['id']}", *(f"Observation/{t['id']}" for t in deleted)]
        labelled = any(_rank(r) for r in (document, *deleted))
        patients = [subject.split("/", 1)[1]] if subject.startswith("Patient/") and not labelled else []
        return facts(action="delete", recorded=now_instant(), start=None, outcome="0",
                     desc="an edit of the document no longer holds these paragraphs",
                     requestor=(INSTITUTION, number[0], None, None, None, None, None, None), origin=self.origin,
                     patients=patients, resources=refs, owners={ref: patients for ref in refs} if patients else None,
                     detail={"document-number": number[1], "reason": "paragraph-dropped-by-edit"})

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


def _number(document: dict[str, Any]) -> tuple[str, str] | None:
    """(sender, TXA-12) of a numbered document (its ``masterIdentifier``, ``adapters.convert.pacs``)."""
    master = document.get("masterIdentifier")
    if not isinstance(master, dict):
        return None
    system, value = master.get("system"), master.get("value")
    if not isinstance(system, str) or not system.startswith(DOCUMENT_NUMBER_SYSTEM) or not isinstance(value, str) or not value:
        return None
    return system[len(DOCUMENT_NUMBER_SYSTEM):], value


def _marks(resource: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The converter's paragraph marks ``resource`` carries, (system, value, kind); any other identifier,
    or one not shaped as an identifier (a client's ``"identifier": 5``), is not one. The kind is the
    mark's type (``original``, ``edit``); an addendum's mark is ``addendum`` whatever it says, and a
    paragraph mark stating no kind is taken for an original's (one that drops nothing)."""
    listed = resource.get("identifier")
    if not isinstance(listed, list):
        return []
    out: list[tuple[str, str, str]] = []
    for i in listed:
        if not isinstance(i, dict) or not isinstance(i.get("system"), str) or not isinstance(i.get("value"), str):
            continue
        system = i["system"]
        if system.startswith(ADDENDUM_SYSTEM):
            out.append((system, i["value"], _ADDENDUM_KIND))
        elif system.startswith(PARAGRAPH_SYSTEM):
            coding = ((i.get("type") or {}).get("coding") or [None])[0] if isinstance(i.get("type"), dict) else None
            kind = coding.get("code") if isinstance(coding, dict) and coding.get("system") == TEXT_KIND_SYSTEM else None
            out.append((system, i["value"], _EDIT if kind == _EDIT else _ORIGINAL))
    return out


def _flat(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _but_meta(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` without its version's ``meta`` (labels, version id, time): what a relabel leaves."""
    return {k: v for k, v in resource.items() if k != "meta"}


def _stated(statements: Statements, text: dict[str, Any]) -> bool:
    """Whether this message stated ``text`` as a copy of its document's paragraph: its converter marks
    each copy and locates the mark at TXA-12 (``adapters.convert.pacs``), a copy left unchanged too."""
    said = statements.said_of(f"Observation/{text['id']}")
    return said is not None and said.at("identifier", text) is not None


def _text_lines(document: dict[str, Any]) -> Counter[str] | None:
    """The lines of the document's text/plain content (each without its outer blanks), counted; None
    when it has none (an image, a PDF: not judged) or one that cannot be read."""
    lines: Counter[str] = Counter()
    found = False
    for content in document.get("content") or ():
        attachment = content.get("attachment") if isinstance(content, dict) else None
        if not isinstance(attachment, dict) or not str(attachment.get("contentType") or "").startswith(_TEXT_PLAIN):
            continue
        data = attachment.get("data")
        if not isinstance(data, str) or not data:
            return None  # (a text held elsewhere, ``url``: not read here, so not judged)
        try:
            words = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        found = True
        lines.update(_flat(words))
    return lines if found else None


def _unheld(texts: list[dict[str, Any]], lines: Counter[str]) -> list[dict[str, Any]]:
    """The copies in ``texts`` the document's text does not hold, each of its lines held by one copy
    only, claimed in the order given: a paragraph sent once is one copy's (two copies of one paragraph
    read it twice). A copy without words is not a paragraph's copy as the converter writes one: kept."""
    left = Counter(lines)
    out: list[dict[str, Any]] = []
    for text in texts:
        words = text.get("valueString")
        if not isinstance(words, str):
            continue
        need = Counter(_flat(words))
        if all(left[line] >= n for line, n in need.items()):
            left -= need
        else:
            out.append(text)
    return out
