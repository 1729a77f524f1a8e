"""The HL7 v2 message store and its quarantine, on plain ``Store`` collections.

Every message that arrives is kept here with its raw bytes (base64, exactly as received), in the
same database as the FHIR repository, so "durable before AA" and "processed together with its
resources" are ordinary transactions of that database.

A message document::

    {"_id": "m-<24 hex>", "facility": "FNXRMYY", "application": "LIS", "control_id": "LAB0001",
     "sha256": "...", "raw": "<base64>", "size": 2871, "codec": "utf-8",
     "received_at": "2026-11-23T11:00:00.123456Z", "channel": "mllp", "peer": "10.0.0.5:40112",
     "message_type": "ORU^R01", "version": "2.5.1", "processing_id": "P",
     "status": "received" | "processed" | "quarantined",
     "ack_code": "AA" | "AE" | "AR", "errors": [ERR as dict, ...], "reason": "first error, readable",
     "conflict_of": "<_id of the message with the same control id>" | None,
     "attempts": 1, "processed_at": ..., "resources": ["Patient/..", ...], "replays": [...],
     "held_claims": [{"claim": "FILL|<system>|<value>", "resource": "ServiceRequest/..", "versionId": "3",
                      "element": "code", "at": "OBR[1]-4", "elsewhere": false}, ...]}

(``held_claims``: the order numbers an accepted message's change was held under, W 204 -- listed in ``hl7_held``
for the operator until it is processed again without any: ord40; ``"unchanged": ["Observation/..", ...]``: the
resources its write left as stored -- a resend of the same result -- whose versions its Provenance names but another
message made: stfix40; kept empty too since the forty-first round, so a document without it is one filed before the
list was kept, its resends told by their receipt: st41)

(a replay's entry: ``{"at", "by", "previous_reason", "previous_status"}``, ``"as": "later"`` when the
operator decided the message is later than a stored version it could not be ordered against, ``"as": "owner"``
with the operator's ``reason`` when they took its held change as the number's owner's; ``"deciding"``: that owner's
decision's ``at`` while it is applied -- ``DECIDING``, ``MessageStore.put_back``)

The idempotency key of DESIGN.md §4 is (sending institution, sending application, MSH-10):
HL7 v2 makes MSH-10 unique per sending *system*, MSH-3 + MSH-4, and a hospital's HIS and LIS
(one MSH-4, two MSH-3) both numbering from 1 are two senders (``Header.application_code`` says
how MSH-3 is read). The ``_id`` is a hash of (institution, MSH-10) (``message_id``), as it was
before MSH-3 was part of the key, for the first application to use that pair; a message of
another application with the same pair is kept under a hash of all three (``sender_id``). So
every document stored before keeps its id and is found by a resend, no id changes (audit
records and Provenances name them), and finding a message costs one more lookup only when its
pair is taken by another application. A document's ``application`` says whose it is; one
stored before that field existed is read from its raw MSH (``application_of``).

A second message with the same key but other bytes is kept under a hash of key + content, marked
``conflict_of``, and quarantined for the operator. Messages without a usable MSH get an id from
their content, so the same garbage sent twice is one document.

The quarantine is the set of messages with status ``quarantined``; replaying one sets it back
to ``received`` and runs the pipeline again (``engine.ingest.Ingestor.replay``).

Conversion warnings (unmapped codes, unknown segments...) are counted per institution in a
second collection, ``hl7_fidelity``, for ``GET /admin/fidelity``.

``processing_id`` is MSH-11.1 as sent, upper case ("P", "T", "D"; "" none read), recorded from the
twenty-ninth round on (hl7fix29): before it, ``T`` (training) and ``D`` (debugging) messages were
stored as clinical data like ``P``. Nothing of them is removed or hidden; the first start on a store
without the field reads it from each message's raw MSH once (``census_processing_ids``), counts the
ones stored as clinical data, logs the count at every start and keeps it, so that an operator can
list them (``GET /admin/quarantine?processing_id=T,D``, ``huren quarantine list --processing-id T,D``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.header import Header, extract_header
from adapters.hl7v2.processing import sent_id
from engine.errors import Conflict
from engine.repository import trail
from engine.repository.port import Document, Store, is_new_store
from engine.repository.query import Query

RECEIVED = "received"
PROCESSED = "processed"
QUARANTINED = "quarantined"
STATUSES = (RECEIVED, PROCESSED, QUARANTINED)
NOT_PRODUCTION = ("T", "D")  # HL7 table 0103 ids other than P: stored as clinical data before hl7mode29
_CENSUS = "processing-ids"  # the remembered count's document in ``hl7_census``
_EPOCH = "registrations"  # when the registrations table began, in ``hl7_census`` (``registrations_epoch``)
# the registrations table's rows keyed by their registrar whole (``registrar_of``): the marker of ``registrars_whole``'s
# once-per-store pass, a field of the table's epoch document (``_EPOCH``) -- read with it, written with it on a new
# store, so an open pays no statement of its own for it (forty-fifth round, reg45)
_REGISTRARS = "registrars_whole"
_REGISTRARS_FROM = "registrars_whole_from"  # (how far a pass not yet done came: ``registrars_whole``)
# on a registrations row: keyed by its registrar whole, by this release (``note_registrations``) or its pass
# (``MessageStore._rekey``); a row without it an earlier release keyed by the code alone
_WHOLE = "whole"
# on a filed message document: its ``processed_at`` as this release filed it, with its registrations rows
_NOTED = "registrations_noted"
# on a message an owner's decision reopened: that decision's ``at`` while it is being applied, the token its failure
# path puts the message back by (``MessageStore.put_back``); None once a failure left writes of it stored (dfix40)
DECIDING = "deciding"
_CENSUS_PAGE = 500
# how often ``MessageStore._rekey`` reads a registrations row again that another process wrote meanwhile under the
# key it moves a row to: each try loses only to a write between its read and its conditional write
_REKEY_TRIES = 3

log = logging.getLogger("huren.ingest")


class Superseded(RuntimeError):
    """A conditional reopen (``MessageStore.reopen(expect=)``) found the message changed since the caller read it."""


def _decision_of(doc: Document, used: bool) -> dict[str, Any] | None:
    """The message's ``decision`` after a replay carrying an operator's decision (its last replay entry ``as`` later
    or owner): who, when, whether used, and for an owner's decision ``as`` and the reason; None for another."""
    replays = doc.get("replays") or []
    if not replays or replays[-1].get("as") not in ("later", "owner"):
        return None
    last = replays[-1]
    return {"at": last.get("at"), "by": last.get("by"), "used": used,
            **({"as": last["as"]} if last.get("as") != "later" else {}),  # (order35's shape kept for "later")
            **({"reason": last["reason"]} if last.get("reason") else {})}


def now_iso() -> str:
    """This instant, UTC, to the microsecond (``2026-11-23T11:00:00.123456Z``).

    ``isoformat`` rather than ``strftime``, the same text: ``strftime`` goes through the C
    library's, which consults the time zone on every call (~5-7 us here against ~1.7; two a message)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


# The system of a Provenance's entity naming the message it was made from: ``<this>:<institution>``
# (URN-quoted, ``mappings.site.urn_part``), the value MSH-10 as sent (``adapters.convert.common.provenance``)
HL7V2_MESSAGE_SYSTEM = "urn:huren:hl7v2:message"


def message_institution(system: str) -> str | None:
    """The sending institution a Provenance entity's ``HL7V2_MESSAGE_SYSTEM`` system names, None for
    another system."""
    head = HL7V2_MESSAGE_SYSTEM + ":"
    return unquote(system[len(head):]) if system.startswith(head) and len(system) > len(head) else None


def message_id(facility: str, control_id: str) -> str:
    """Deterministic id of the (sending facility, control id) pair."""
    digest = hashlib.sha256(f"{facility}\x1f{control_id}".encode()).hexdigest()
    return "m-" + digest[:24]


def sender_id(facility: str, application: str, control_id: str) -> str:
    """Id of a message whose (facility, control id) pair's ``message_id`` is another sending
    application's: a hash of all three (JSON, so it can never equal a ``message_id``, whose
    hashed text holds a raw 0x1F that JSON escapes)."""
    digest = hashlib.sha256(json.dumps([facility, application, control_id]).encode()).hexdigest()
    return "m-" + digest[:24]


# ``_Item.sender_key`` / ``Context.application`` of a message with NO application (empty MSH-3)
# stored under another application's pair: not a possible ``Header.application_code`` (a line
# break ends the MSH segment, ``extract_header``), and not blank (ids hash their keys trimmed,
# ``engine.repository.ids``), so that "collided, no application" is never read as "no collision"
# (the empty string), which keyed the message's own resources (its Provenance, a visit-less
# Encounter) by MSH-10 alone: the first application's, written over
NO_APPLICATION = "\n(none)"


def collided(application: str) -> str:
    """The key the converter adds to a message's own ids when its (institution, MSH-10) pair is
    another application's (``sender_id``): its application, or ``NO_APPLICATION`` for none.
    The one place every reader of ``sender_key`` takes it from (ingest, replay, recovery)."""
    return application or NO_APPLICATION


def conflict_key(sender_key: str, doc_id: str) -> str:
    """``_Item.sender_key`` of a conflict (same sender, same MSH-10, other bytes: ``conflict_of``) an
    operator replays: ``sender_key`` with the conflict's own id, so that the ids the converter keys by
    the message (``Context.message_key``: its Provenance, a visit-less Encounter, results with no
    order or date) are its own. Keyed by MSH-10 alone, the replay wrote the first message's Provenance
    again with only its own targets: the first message's record lost its registration and read
    "unregistered" (rvregapp33 finding 3). A line break: never an application (``NO_APPLICATION``)."""
    return f"{sender_key}\n(conflict {doc_id})"


def application_of(doc: Document) -> str:
    """The sending application of a stored message (``Header.application_code``): its
    ``application``, or for a document stored before that field existed, read from its raw MSH."""
    app = doc.get("application")
    if app is None:
        app = extract_header(raw_of(doc))[0].application_code
    return str(app)


def application_hd_of(doc: Document) -> tuple[str, str, str]:
    """The sending application of a stored message as sent (``Header.application_hd``: MSH-3's three
    components), read from its raw MSH: what ``application`` (a code, no HD-3) cannot say -- whether its
    code is a name or a universal id, and of which type, and its universal id beside a name (``registrar_of``, the
    one reader of it: every registrar ``adapters.convert.persons`` and the registrations table read)."""
    return extract_header(raw_of(doc))[0].application_hd


def registrar_of(doc: Document) -> str:
    """The sending application of a stored message as a registrar or a number's owner is kept and compared
    (``adapters.convert.applications.registrar``): its MSH-3 whole, as sent -- ``HIS``, ``HIS^1.2.3^ISO``,
    ``^his2.fnx.example^DNS``. HD-1 is the code as filed (``application_of``: the ingest decoded it in the set the
    site declares for the sender, which a re-read of the raw does not know); HD-2 and HD-3 are read from the raw
    (``application_hd_of``, ~12 us a document). The one reading of it: the registrations table's key and rows
    (``note_registrations``, ``registrars_whole``) and every registrar ``adapters.convert.persons`` reads of a filed
    message. (forty-fifth round, reg45)"""
    # (imported here: adapters.convert imports this module)
    from adapters.convert.applications import filed_registrar
    return filed_registrar(application_of(doc), application_hd_of(doc))


def _row_registrar(row: Document, doc: Document | None) -> str:
    """The registrar a registrations row an earlier release wrote is keyed by (``MessageStore._rekey``,
    ``registrars_whole``): ``registrar_of`` its message ``doc``; a row whose message is no longer kept (None) reads as
    the name it holds (HD-1 ``HIS``)."""
    return registrar_of(doc) if doc is not None else str(row.get("application") or "")


def _first_stands(held: Document | None, received: str, doc_id: str) -> bool:
    """Whether the registrations row ``held`` (of one record and registrar) stands against a registration of
    message ``doc_id`` received at ``received``: the first registration received stands (a replay of it keeps it)."""
    return held is not None and str(held.get("received_at") or "") <= received and held.get("message") != doc_id


def _as_read(row: Document) -> Document:
    """The condition a registrations row still is the one read (its message and instant): what the upgrade's
    conditional writes ask (``MessageStore._rekey``), so that on a MongoDB without transactions a registration
    another process wrote under that key meanwhile is neither deleted (rv45b MED 2) nor written over. Both fields
    always, one the row lacks as absent (None: absent or null to both backends, ``Collection``'s filter) -- left
    out, a row with neither was the empty condition, which matches any row: a plain delete (rv45e LOW;
    forty-sixth round, med46)."""
    return {k: row.get(k) for k in ("message", "received_at")}


def _epoch_as_read(epoch: Document) -> Document:
    """The condition the registrations epoch document is still the one read (``registrations_epoch``): its
    ``since`` and ``unseen``, which a rewrite (an older release's filings seen) always changes. What
    ``registrars_whole``'s writes to it ask, so that the pass's marker never lands on an epoch rewritten meanwhile --
    the rewrite drops it so that the next open keys the rows the older release wrote (rv45e LOW; med46)."""
    return {k: epoch.get(k) for k in ("since", "unseen")}


def conflict_id(key_id: str, sha256: str) -> str:
    return "c-" + hashlib.sha256(f"{key_id}\x1f{sha256}".encode()).hexdigest()[:24]


def anonymous_id(sha256: str) -> str:
    """Id for a message whose MSH cannot be read: its content hash."""
    return "u-" + sha256[:24]


def error_to_dict(e: HL7Error) -> dict[str, Any]:
    return {
        "message": e.message, "segment": e.segment, "sequence": e.sequence, "field": e.field,
        "component": e.component, "code": e.code, "severity": e.severity, "ack_code": e.ack_code,
        "location": e.location(),
    }


def error_from_dict(d: dict[str, Any]) -> HL7Error:
    return HL7Error(
        d.get("message", ""), segment=d.get("segment", ""), sequence=d.get("sequence"),
        field=d.get("field"), component=d.get("component"), code=d.get("code", "207"),
        severity=d.get("severity", "E"), ack_code=d.get("ack_code", "AE"),
    )


def raw_of(doc: Document) -> bytes:
    return base64.b64decode(doc["raw"])


def raw_text(raw: bytes) -> str:
    """``raw`` as a message document keeps it (``raw``: base64 text, which ``raw_of`` reads back).
    The in-flight journal records a batch's messages in the same text (``engine.inflight``), so the
    ingest makes it once a message for both (``new_document(encoded=)``, ``InFlightJournal.begin``):
    ~31 k instructions of a 1.4 KB lab message's under callgrind, each time (fortieth round, perf40)."""
    return base64.b64encode(raw).decode("ascii")


def _registers(message_type: str) -> bool:
    """``adapters.convert.persons.registers`` (imported here: that module reads this one)."""
    from adapters.convert.persons import registers

    return registers(message_type)


def _unseen(store: Store, newest: Document | None) -> str | None:
    """What a release before the registrations table wrote that the table did not see, named for
    ``registrations_epoch`` (which remembers it, so one such write moves the epoch once), or None: the
    newest filed message document (``newest``) not stamped as this release files (``_NOTED``), or else
    the newest Provenance version when a FHIR client or the index wrote it and a Patient it names is not
    marked (``engine.repository.trail.unmarked``). One indexed read each."""
    if newest is not None and newest.get(_NOTED) != newest.get("processed_at"):
        return f"{newest['_id']}@{newest.get('processed_at')}"
    fhir = getattr(store, "fhir", None)
    found = fhir.search(Query("Provenance", sort=[("_lastUpdated", True)], limit=1)) if fhir is not None else []
    if found and trail.unmarked(store, found[0]):
        return f"Provenance/{found[0].id}/_history/{found[0].version}"
    return None


def _store_now(store: Store, newest: Document | None) -> str:
    """The store's present: the latest of this instant, the newest filed message's instants and the
    newest Patient's ``meta.lastUpdated`` (``registrations_epoch``: a record written under a clock
    that ran fast is not younger than the table). One indexed read of the FHIR store."""
    instants = [now_iso()]
    if newest is not None:
        instants += [str(newest.get("received_at") or ""), str(newest.get("processed_at") or "")]
    fhir = getattr(store, "fhir", None)
    if fhir is not None:
        instants += [r.updated for r in fhir.search(Query("Patient", sort=[("_lastUpdated", True)], limit=1))]
    return max(instants, key=stored_instant)


def stored_instant(text: str) -> datetime:
    """A stored instant (``now_iso``, ``meta.lastUpdated``) as a datetime; the earliest when unreadable."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


class MessageStore:
    """Message documents and fidelity counters; every method joins the caller's transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.messages = store.collection("hl7_messages")
        self.fidelity = store.collection("hl7_fidelity")
        self.census = store.collection("hl7_census")
        self.messages.ensure_index(["status", "received_at"])
        self.messages.ensure_index(["facility", "control_id"])
        self.fidelity.ensure_index(["institution", "where"])
        # the messages accepted with a change held (ERR-3 204, ``merge_rules.Owned``): one row each, for the
        # operator's list (``held``) -- written only for them, so an ordinary message pays nothing (ord40)
        self.held_changes = store.collection("hl7_held")
        self.held_changes.ensure_index(["facility", "received_at"])
        self.registrations = store.collection("hl7_registrations")
        self.registrations.ensure_index(["record"])
        self._epoch: Document | None = None
        self.registrations_epoch()  # at open: a store that filed messages before the table is told apart
        self.registrars_whole()  # at open: rows an earlier release keyed by the code alone, keyed whole (once)

    # -- writes -------------------------------------------------------------------------
    def new_document(
        self, doc_id: str, raw: bytes, sha256: str, *, facility: str, control_id: str, channel: str,
        peer: str, message_type: str, version: str, codec: str, status: str = RECEIVED,
        errors: Iterable[HL7Error] = (), ack_code: str | None = None, conflict_of: str | None = None,
        application: str = "", processing_id: str = "", encoded: str | None = None,
    ) -> Document:
        """The document of a message just received. ``encoded``: ``raw_text(raw)``, when the caller
        made it already (the ingest, for its in-flight journal): the same text, not made twice."""
        errs = [error_to_dict(e) for e in errors]
        return {
            "_id": doc_id, "facility": facility, "application": application, "control_id": control_id,
            "sha256": sha256,
            "raw": raw_text(raw) if encoded is None else encoded, "size": len(raw), "codec": codec,
            "received_at": now_iso(), "channel": channel, "peer": peer,
            "message_type": message_type, "version": version, "processing_id": processing_id, "status": status,
            "ack_code": ack_code, "errors": errs, "reason": _reason(errs), "conflict_of": conflict_of,
            "attempts": 0, "processed_at": None, "resources": [], "replays": [],
        }

    def insert_many(self, docs: list[Document]) -> None:
        if docs:
            self.messages.insert_many(docs)

    def get(self, doc_id: str) -> Document | None:
        return self.messages.get(doc_id)

    def get_many(self, doc_ids: Sequence[str]) -> dict[str, Document]:
        """The stored documents of ``doc_ids`` (absent ones left out), in one query.

        Why: the pipeline looks up every message of a batch by its idempotency key before
        deciding its fate; one ``SELECT`` per message was ~8 us each, one for the batch ~1 us a key."""
        wanted = list(dict.fromkeys(doc_ids))
        if not wanted:
            return {}
        if len(wanted) == 1:
            doc = self.messages.get(wanted[0])
            return {wanted[0]: doc} if doc is not None else {}
        return {d["_id"]: d for d in self.messages.find({"_id": {"$in": wanted}})}

    def filed(self, facility: str, control_ids: Collection[str]) -> list[Document]:
        """The processed documents of the (institution, MSH-10) pairs of ``facility`` and each of
        ``control_ids``, of every application: a pair's first holder's, another application's
        (``sender_id``), a conflict an operator replayed. What a resource naming MSH-10 alone (a
        Provenance's entity) may have been written by; its writer is the one listing it among its
        ``resources`` (``adapters.convert.persons``). One query (the ``facility, control_id`` index)."""
        if not control_ids:
            return []
        return self.messages.find({"facility": facility, "control_id": {"$in": sorted(set(control_ids))},
                                   "status": PROCESSED})

    def note_registrations(self, doc_id: str, doc: Document | None, records: Collection[str]) -> None:
        """The filed message ``doc_id`` (``doc``: its document as stored, or None to read it) registers
        ``records`` (``Patient/x``: what its Provenance names, when its event registers a person or merges
        into a survivor: ``adapters.convert.persons.registered_by``): keep, per record and sending
        application, the first registration RECEIVED (``received_at``; a replay keeps it, so a replayed
        registration is still the one it was). Called by the ingest in the transaction that files the
        message (``mark_processed``'s), so the ACK never answers for a registration the table lacks, nor
        the table for a message not filed.

        Why a table: who registered a record was read by walking every Provenance naming it and the
        message document of each -- 28 ms at 450 results, "cannot be told" past 5,000 (member33). Keyed by
        the record (its id is the hash of institution, assigning authority and number,
        ``deterministic_id``) and the application (``registration_applications`` may be declared later:
        the first of a declared application is read from the same rows), one indexed read answers.

        The application is the registrar whole (``registrar_of``: ``record|HIS``, ``record|^HIS^DNS``,
        ``record|HIS^1.2.3^ISO``): keyed by the code alone (HD-1, else HD-2), ``HIS`` and the universal id
        ``^HIS^DNS`` -- two applications -- shared one row and the second's registration was no row (low44c LOW 1;
        forty-fifth round, reg45). Rows an earlier release wrote are keyed so once (``registrars_whole``); one it
        wrote since (a rollback, or a process of it still running beside this one) under this key is keyed here
        before it is compared (``_rekey``: its message read, only for such a row).

        The row is written only over the row read under its key (``replace_if``, as ``_rekey`` writes): on a MongoDB
        without transactions another process's upgrade pass may move an earlier release's first registration to
        this key between the read and the write, which a plain ``replace`` wrote over -- the first registration
        lost (rv46a LOW; forty-sixth round, low46). Written meanwhile, the row is read again and the first
        registration received asked again (``_first_stands``), at most ``_REKEY_TRIES`` times. Lost every time (three
        writes under one record's key in as many instants): ``Conflict``, so the filing is undone -- the ingest writes
        a failed batch again message by message, three more tries -- and, lost again, refused AE 207 ("send the
        message again"), its raw kept for the sender's retry or a replay, which reads the rows the others wrote and
        keeps this registration if it is the first -- as a failure of the filing's block always is
        (SQLite's rollback, the undo journal of a MongoDB without transactions: ``test_registry34_registrations``),
        as ``FLAG_TRIES`` does for a flag. It had warned and returned: the message was ACKed AA while the table kept
        another process's later registration as the registrar's first (rv46c LOW 5; forty-sixth round, low46b).
        Not "try until it holds": each loss is a newer row written over the one read, but a row can come back newer
        (another filing's undo puts back what it wrote over; an earlier release's process writes without a
        condition), so no bound on the tries follows from the writers -- a refused filing is retried, a wrong
        first registration stays."""
        if not records:
            return
        if doc is None:
            doc = self.get(doc_id)
            if doc is None:
                return
        application, received = registrar_of(doc), str(doc.get("received_at") or "")
        keys = {f"{ref}|{application}": ref for ref in records}
        stored = {d["_id"]: d for d in self.registrations.find({"_id": {"$in": sorted(keys)}})}
        for key, ref in keys.items():
            row = {"_id": key, "record": ref, "application": application, "received_at": received, "message": doc_id,
                   "facility": doc.get("facility"), "control_id": doc.get("control_id"),
                   "message_type": doc.get("message_type"), _WHOLE: True}
            held = stored.get(key)
            for _ in range(_REKEY_TRIES):
                if held is not None and not held.get(_WHOLE):  # (an earlier release's: whose is it?)
                    self._rekey(held, self.get(str(held.get("message") or "")))
                    held = self.registrations.get(key)
                    if held is not None and not held.get(_WHOLE):
                        continue  # (its move lost to writes meanwhile: not compared as this registrar's)
                if self._first_kept(row, held):
                    break  # (an earlier registration of this application stands, or this one is written)
                held = self.registrations.get(key)  # (written meanwhile: another process's, read again)
            else:
                raise Conflict(f"registrations table: {key} written by other processes meanwhile {_REKEY_TRIES} "
                               f"times: {doc_id} not filed, send the message again")

    def _first_kept(self, row: Document, held: Document | None) -> bool:
        """One try of the table's one rule, the first registration received stands under its key: ``held`` (the row
        read under ``row``'s key) stands (``_first_stands``), or ``row`` is written over it as read (``replace_if``:
        nothing there, or that row still). False: another process wrote there meanwhile -- read it again and ask
        again (``note_registrations``, ``_rekey``)."""
        return _first_stands(held, str(row.get("received_at") or ""), str(row.get("message") or "")) or \
            self.registrations.replace_if(row, None if held is None else _as_read(held))

    def _rekey(self, row: Document, doc: Document | None) -> bool:
        """Key a registrations row an earlier release wrote (no ``_WHOLE``) by its registrar whole: ``registrar_of``
        its message ``doc``; a row whose message is no longer kept (None) reads as the name it holds (HD-1 ``HIS``).
        Two rows becoming one key keep the first registration received (``_first_stands``), as the table does. Asked
        inside the caller's transaction; the new row is written before the old one is deleted, so a MongoDB without
        transactions that stops between keeps both (the old one keyed again by the next pass), never neither.
        The old one is deleted only as read (``delete_if`` on its message and instant): on a MongoDB without
        transactions another process may have moved it and written its own registration under that key meanwhile,
        which reg45's plain delete took with it (rv45b MED 2; forty-fifth round, reg45b). The new row is written only
        over the row read under its key (``replace_if``, read again when another process wrote there meanwhile, at
        most ``_REKEY_TRIES`` times), so a registration received earlier that another process wrote there meanwhile
        stands, as the table keeps the first (rv45e LOW; forty-sixth round, med46). Whether the row moved to
        another key."""
        app = _row_registrar(row, doc)
        key = f"{row.get('record')}|{app}"
        new = {**row, "_id": key, "application": app, _WHOLE: True}
        if key == row["_id"]:  # (marked only as read: a row written meanwhile under its key is the writer's)
            self.registrations.replace_if(new, _as_read(row))
            return False
        for _ in range(_REKEY_TRIES):
            if self._first_kept(new, self.registrations.get(key)):
                break  # (the new key's row the first registration: as read, or this one written over it)
        else:
            # (written meanwhile each time: both rows kept, never neither. The pass's marker is written all the same --
            # no later pass looks again: the row stays unmarked under its old key, read rightly meanwhile (its
            # registrar read from its message, the first received of the rows first: ``persons._table``), and keyed
            # by the filing that meets it (``note_registrations``))
            return False
        # (only the row as read: one another process wrote under the old key meanwhile stays; rv45b MED 2)
        self.registrations.delete_if(row["_id"], _as_read(row))
        return True

    def registrars_whole(self) -> int | None:
        """Once per store (``_REGISTRARS`` on the epoch document in ``hl7_census``): key each registrations row an
        earlier release wrote by its registrar whole (``registrar_of`` of its message; ``note_registrations``) --
        ``record|HIS`` written
        for ``^HIS^DNS``'s registration is that registrar's row ``record|^HIS^DNS``, and a later registration by
        ``HIS`` itself is a row of its own; ``record|HIS`` for ``HIS^1.2.3^ISO``'s is ``record|HIS^1.2.3^ISO``. A row
        whose message is no longer kept reads as the name it holds (HD-1 ``HIS``: its key unchanged). Two rows
        becoming one key keep the first registration received, as the table does (``_rekey``). A row whose key is
        its registrar already (every HD-1-only sender's: most rows) is not written; ``note_registrations`` keys one
        it meets unmarked. Each page's transaction also keeps how far the pass came (``_REGISTRARS_FROM``: the
        page's last ``_id`` and the count), so a pass stopped half way (a crash, a kill at a slow open) resumes there
        at the next open rather than reading every message again (rv45b LOW 1; forty-fifth round, reg45b) -- not by
        marking each row it leaves: that is a write a row, and doubled the pass (20,000 rows: 0.80 s -> 1.66 s CPU). Page by page by ``_id`` on the ``Collection`` reads both backends answer (SQLite,
        MongoDB), each page's moves in one transaction, every row read again in it (another worker's pass, or its
        ingest, may have written it since): run again, or by two processes at once, it moves nothing twice. A new
        store writes the marker with its epoch (``registrations_epoch``) and scans nothing; an epoch rewritten for
        an older release's filings (``registrations_epoch``) drops it, and the next open looks again. Returns how
        many rows were keyed anew; None once done. (forty-fifth round, reg45)"""
        epoch = self.registrations_epoch()
        if epoch.get(_REGISTRARS) is not None:
            return None
        read = _epoch_as_read(epoch)  # (each write to the epoch: only while it is this one)
        begun = epoch.get(_REGISTRARS_FROM) or {}  # (a pass stopped half way: resumed)
        moved, last = int(begun.get("moved") or 0), str(begun.get("from") or "")
        while page := self.registrations.find({"_id": {"$gt": last}}, sort=[("_id", 1)], limit=_CENSUS_PAGE):
            last = str(page[-1]["_id"])
            old = [row for row in page if not row.get(_WHOLE)]
            filed = self.get_many([str(row.get("message") or "") for row in old])
            with self.store.transaction():
                for row in old:
                    doc = filed.get(str(row.get("message") or ""))
                    if f"{row.get('record')}|{_row_registrar(row, doc)}" == row["_id"] or self.registrations.get(row["_id"]) != row:
                        continue  # keyed whole already, or changed since read (another pass moved it)
                    moved += self._rekey(row, doc)
                # (with the page's; an epoch rewritten meanwhile: the pass stops, its rows keyed whole stay)
                if not self.census.update_if(_EPOCH, read, {_REGISTRARS_FROM: {"from": last, "moved": moved}}):
                    return self._rewritten(moved)
        done = {"at": now_iso(), "moved": moved}
        with self.store.transaction():
            if not self.census.update_if(_EPOCH, read, {_REGISTRARS: done, _REGISTRARS_FROM: None}):
                return self._rewritten(moved)
        self._epoch = {**epoch, _REGISTRARS: done, _REGISTRARS_FROM: None}  # (as stored)
        if moved:
            log.info("registrations table: %d rows keyed by their registrar whole (MSH-3 as sent)", moved)
        return moved

    def _rewritten(self, moved: int) -> int:
        """``registrars_whole`` finding the epoch it read rewritten by another process (an older release's filings
        seen: ``registrations_epoch``): no marker nor cursor of this pass on the new epoch, whose rows the older
        release keyed by the code; the epoch read again at the next ask (this process's next open runs the pass)."""
        self._epoch = None
        log.warning("registrations table: the epoch was rewritten during the pass keying rows by their registrar "
                    "whole (%d keyed); the next open runs it again", moved)
        return moved

    def registrations_of(self, record: str) -> list[Document]:
        """The registrations table's rows of ``record`` (``note_registrations``): one per application,
        its first registration received. One query on the ``record`` index."""
        return self.registrations.find({"record": record})

    def registrations_epoch(self) -> Document:
        """When the registrations table began on this store, and whether messages were filed before it
        (``predates``): then a record older than the table may have a registration the table never saw,
        and is answered by the walk over its Provenances as before (``adapters.convert.persons``). Kept in
        ``hl7_census`` at the first start that looks for it; read once per process (first at open: ``__init__``).

        Checked again at every open (regfix34, rvregistry34 finding 1): a release before the table (a
        rollback, then this release again) files messages without rows. Every filing of this release
        stamps its document (``_NOTED``: its ``processed_at``, which an older release's refiling
        rewrites and the stamp then no longer equals); the newest filed document (one read on the
        ``status, received_at`` index) unstamped means filings the table did not see: ``since`` moves
        to the store's present and ``predates`` is set, so every record older than that walks, as on a
        first upgrade. The same for the newest Provenance version when a FHIR client wrote it and its
        targets are not marked (``engine.repository.trail``: an older release marks nothing).
        ``since`` is the store's present, not the wall clock alone (finding 2): the latest of now, the
        newest filed message's instants and the newest Patient's ``meta.lastUpdated`` -- a host clock
        that ran fast before the restart stepped it back had written records "younger" than the table.
        What it cannot see: an older release's refiling of messages received before its newest filing
        (a replay only) leaves no newer document; see the README's identity section."""
        if self._epoch is None:
            kept = self.census.get(_EPOCH)
            if kept is None and is_new_store(self.store):  # this open made the store: nothing to see
                at = now_iso()
                self._epoch = {"_id": _EPOCH, "since": at, "predates": False, "unseen": None, "began": None,
                               _REGISTRARS: {"at": at, "moved": 0}}  # (no row to key: ``registrars_whole``)
                with self.store.transaction():
                    self.census.replace(self._epoch)
                return self._epoch
            newest = self.messages.find({"status": PROCESSED}, sort=[("received_at", -1)], limit=1)
            unseen = _unseen(self.store, newest[0] if newest else None)
            if kept is None or (unseen is not None and unseen != kept.get("unseen")):
                if kept is not None:
                    log.warning("messages were filed or Provenances written without the registrations table "
                                "(%s: a release before it ran on this store); records older than now are "
                                "answered by walking their Provenances", unseen)
                kept = {"_id": _EPOCH, "since": _store_now(self.store, newest[0] if newest else None),
                        "predates": bool(newest) if kept is None else True, "unseen": unseen,
                        "began": (kept or {}).get("began") or (kept or {}).get("since")}
                with self.store.transaction():
                    self.census.replace(kept)
            self._epoch = kept
        return self._epoch

    def mark_processed(self, doc_id: str, *, ack_code: str, warnings: Iterable[HL7Error],
                       resources: list[str], attempts: int, current: Document | None = None,
                       unstored: list[Document] | None = None, held: list[dict[str, Any]] | None = None,
                       decided: bool | None = None, unchanged: list[str] | None = None) -> None:
        """``current``: the document as stored, when the caller holds it; ``unstored``: see ``_set``.
        Stamped as filed by a release keeping the registrations table (``_NOTED``: the ingest writes the
        message's rows in this transaction; ``registrations_epoch``).

        ``held``: the claims its write held (``engine.ingest._Item.held_claims``: the order number, its order and
        the version the write left), kept as ``held_claims`` and listed in ``hl7_held`` for the operator
        (``held``); a message processed again without any (an operator's decision, a replay after the owner's
        change) leaves the list (ord40).

        ``decided``: the replay carried an operator's decision, and whether it was used (``decision_used``): the
        message's ``decision`` is written in this same write, so no reader (another worker asked the same decision)
        ever sees it holding nothing and decided nothing (rv40f HIGH 1, ordfix40).

        ``unchanged``: the resources (``Type/id``) its write left as stored (no new version: a resend, a held
        statement), kept as ``unchanged`` -- its Provenance names versions another message made, and a version is
        dated and owned by the message that made it (``Stamp.unchanged``; stfix40). Kept empty too (it was left out
        when empty): a document without the field is one filed before the list was kept, whose resends are told by
        their receipt instead (``Stamp.unchanged_kept``; forty-first round, st41). None: nothing said, as stored."""
        errs = [error_to_dict(e) for e in warnings]
        at = now_iso()
        fields: dict[str, Any] = {
            "status": PROCESSED, "ack_code": ack_code, "errors": errs, "reason": None,
            "processed_at": at, _NOTED: at, "resources": resources, "attempts": attempts}
        doc = current if current is not None else (self.get(doc_id) or {})
        if decided is not None and (said := _decision_of(doc, decided)) is not None:
            fields["decision"] = said
        if doc.get(DECIDING):
            fields[DECIDING] = None  # (a decision applied, or one a crash left taken up plainly: none in flight)
        if unchanged is not None:
            fields["unchanged"] = list(unchanged)
        was = doc.get("held_claims")
        if held or was:
            fields["held_claims"] = held or []
        self._set(doc_id, current, fields, unstored)
        if held:
            self.held_changes.replace({
                "_id": doc_id, "facility": doc.get("facility"), "received_at": doc.get("received_at"),
                "message_type": doc.get("message_type"), "control_id": doc.get("control_id"),
                "held_at": at, "claims": held})
        elif was:
            self.held_changes.delete(doc_id)

    def quarantine(self, doc_id: str, *, ack_code: str, errors: Iterable[HL7Error], attempts: int,
                   current: Document | None = None, unstored: list[Document] | None = None,
                   against: Iterable[str] = (), decided: bool = False) -> None:
        """Refuse a message, with why. ``against``: the stored versions (``Type/id/_history/n``) a
        message refused because its order cannot be told (ERR-3 206) was told against -- recorded as
        ``refused_against`` (``{"resource", "versionId"}`` each), which an operator's replay "as later"
        checks: one changed since, the decision would be about a version they were never shown
        (``engine.ingest.Ingestor.replay``; rvorder35 MED 3, thirty-fifth round, ordfix35). Every
        refusal states it afresh (empty for any other refusal). ``decided``: the replay carried an operator's
        decision, refused all the same -- its ``decision`` (not used) is written here, as ``mark_processed``'s."""
        errs = [error_to_dict(e) for e in errors]
        refused = [{"resource": ref, "versionId": vid} for v in against
                   for ref, _, vid in [v.rpartition("/_history/")] if ref and vid]
        fields: dict[str, Any] = {
            "status": QUARANTINED, "ack_code": ack_code, "errors": errs, "reason": _reason(errs),
            "processed_at": now_iso(), "attempts": attempts, "refused_against": refused}
        if decided and (said := _decision_of(current if current is not None else (self.get(doc_id) or {}),
                                             False)) is not None:
            fields["decision"] = said
        # a message held before and refused on its replay: its holds are no longer what it is (it is refused), and
        # the held list is for accepted messages (ord40)
        was = current if current is not None else (self.get(doc_id) or {})
        held = was.get("held_claims")
        if held:
            fields["held_claims"] = []
        if was.get(DECIDING):
            fields[DECIDING] = None  # (refused, a decision with it or not: none in flight)
        self._set(doc_id, current, fields, unstored)
        if held:
            self.held_changes.delete(doc_id)

    def _set(self, doc_id: str, current: Document | None, fields: Document,
             unstored: list[Document] | None = None) -> None:
        """Change fields of a message document. With ``current`` (the document exactly as stored:
        the ingest pipeline inserted or read it under the lock that serialises every change of
        message documents) the new document is written without reading it back first, which
        was half the message store's cost per message. ``current`` itself is left as it was,
        so that a batch rolled back and redone starts from the stored state again.

        ``unstored``: ``current`` is a new document not stored yet (the pipeline stores a batch's
        raw messages in the same transaction as what they became): the finished document is
        appended there, for one ``insert_many`` with its final status, instead of being written
        twice (raw bytes included)."""
        if unstored is not None and current is not None:
            unstored.append({**current, **fields, "_id": doc_id})
        elif current is None:
            self.messages.update(doc_id, fields)
        else:
            self.messages.replace({**current, **fields, "_id": doc_id})

    def reopen(self, doc_id: str, *, actor: str, raw: bytes | None = None,
               decided_at: str | None = None, who: Mapping[str, str] | None = None,
               decided_as: str = "", reason: str = "", expect: Document | None = None) -> Document | None:
        """Put a quarantined message back to ``received`` for a replay, noting who asked. ``raw``: the
        operator's corrected bytes, whose header facts (``header_facts``: MSH-9, MSH-12, MSH-11) the
        document then states -- the replay guard keeps MSH-3/4/10 only, and a document still saying
        the MSH-9 first sent (``ADT^A4`` corrected to ``ADT^A04``) was read as no registration by
        ``adapters.convert.persons`` (rvregapp33 findings 1 and 2); what it said before is kept in
        the replay's entry.

        A filed message that registers (``adapters.convert.persons.registers``: its rows in the
        registrations table) marks the Patients it wrote (``engine.repository.trail``): until it is
        filed again, and after -- marks are never taken off, so those records are answered by the walk
        from then on (its refiling writes its rows again, which the walk reads as the table would). A
        filed result, order or update reopened marks nothing (regfix34, rvregistry34 finding 4): its
        replay cannot change who registered anyone, and a long-stay patient's result replayed after a
        mapping fix had sent the record back to the walk for good ("cannot be told" past 5,000).

        ``decided_at``: the operator replays it as later than the stored versions its order could not
        be told against, decided at that instant (``engine.ingest.Ingestor.replay(decided=)``): the
        replay's entry says so (``"as": "later"``) with who and when -- the stored message records
        the decision (order35).

        ``who``: who replays it beyond ``actor`` (``engine.member_refusals.replayed_by``: a staff member as the
        person, the sending institution they are bound to), kept in the entry: a corrected copy's refusal is
        counted and audited by it (``engine.ingest.Ingestor._member_refused``; rv37b MED 2, LOW 3, fidfix37).

        ``expect``: the fields the message had when the caller decided on it (an operator's decision on a held
        change: ``status`` processed and the ``processed_at`` of the processing that held it). It is reopened only
        while it still has them, in one conditional write (``Collection.update_if``); otherwise ``Superseded`` is
        raised and nothing is written -- another process (a second worker of ``huren serve --workers N``, the
        console) opened or finished a decision on it since (rv40f HIGH 1, ordfix40)."""
        doc = self.get(doc_id)
        if doc is None:
            return None
        replays = list(doc.get("replays") or [])
        entry: dict[str, Any] = {"at": decided_at or now_iso(), "by": actor, "previous_reason": doc.get("reason"),
                                 "previous_status": doc.get("status")}
        if decided_at:  # ("owner": the change taken as the number's owner's, with the operator's reason; ord40)
            entry["as"] = decided_as or "later"
            if reason:
                entry["reason"] = reason
        entry.update((k, v) for k, v in (who or {}).items() if k != "by")
        fields: dict[str, Any] = {"status": RECEIVED}
        if decided_at and decided_as == "owner":
            fields[DECIDING] = decided_at  # (``put_back``'s token: this reopen, not a later one)
        elif DECIDING in doc:
            fields[DECIDING] = None  # (a plain replay's reopen: a failing decision's put-back no longer matches)
        if raw is not None:
            entry["previous_sha256"] = doc["sha256"]
            fields.update(raw=raw_text(raw), size=len(raw),
                          sha256=hashlib.sha256(raw).hexdigest(), **header_facts(raw))
            entry.update({f"previous_{k}": doc.get(k) for k in ("message_type", "version")})
        replays.append(entry)
        fields["replays"] = replays
        if expect is None:
            self.messages.update(doc_id, fields)
        elif any(doc.get(k) != v for k, v in expect.items()) or not self.messages.update_if(doc_id, expect, fields):
            raise Superseded(f"message {doc_id} changed since it was decided on (it is {doc.get('status')} now)")
        if doc.get("status") == PROCESSED and _registers(str(doc.get("message_type") or "")):
            # its rows say what it registered as filed; a replay (corrected bytes) may say otherwise
            trail.mark(self.store, trail.patients(doc.get("resources") or ()), "a filed registration reopened")
        return self.get(doc_id)

    def put_back(self, doc_id: str, decided_at: str, *, written: bool = False) -> bool:
        """Take back the reopen of an owner's decision (``reopen(decided_as="owner")``, its ``at`` ``decided_at``)
        whose processing failed at the store -- SQLite's busy timeout under a second worker's write lock, a MongoDB
        error: the message as it was before it (status and replay entries), decidable again. Why: left ``received``
        with its entry "as owner", every later decision was answered 409 "being taken" by a decision no process was
        applying, until ``recover`` at the next start (rv40i MED 1, dfix40).

        ``written``: writes of the failed processing stayed stored (``engine.ingest._Item.kept``: a block without
        transactions whose undo failed) -- then it is not put back (held again over writes left stored, its next
        processing would find them unchanged and run no hooks: ``engine.ingest.Ingestor._left_stored``): it stays
        ``received`` for a plain replay, its ``deciding`` set to None, which ``Ingestor._owner_decidable`` answers
        so.

        One conditional write (``Collection.update_if``) on ``status`` received and ``deciding`` still this
        decision's ``at``: a plain replay that reopened it meanwhile (it clears ``deciding``) is left alone, and
        while it is ``received`` no other decision can have reopened it (``reopen(expect=)`` wants it processed),
        so no two processes ever apply a decision on it. False when it no longer matched."""
        doc = self.get(doc_id)
        replays = list((doc or {}).get("replays") or [])
        if (doc is None or doc.get("status") != RECEIVED or doc.get(DECIDING) != decided_at or not replays
                or replays[-1].get("as") != "owner" or replays[-1].get("at") != decided_at):
            return False
        fields: dict[str, Any] = {DECIDING: None}
        if not written:
            fields.update(status=replays[-1].get("previous_status") or PROCESSED, replays=replays[:-1])
        return self.messages.update_if(doc_id, {"status": RECEIVED, DECIDING: decided_at}, fields)

    def decision_used(self, doc_id: str, used: bool) -> None:
        """Record on the message (``decision``: the last replay "as later"'s ``at``, ``by`` and ``used``)
        whether the operator's decision was used: it answered a comparison the write could not tell
        (``used: true``), or nothing -- the sender's own MSH-7 showing the message older held it, or it
        was refused again (``used: false``). The replay's entry (``reopen(decided_at=)``) says "as later"
        either way -- the request made -- and the page had read it as taken (rvorder35 LOW 5;
        thirty-fifth round, ordfix35)."""
        doc = self.get(doc_id)
        said = _decision_of(doc or {}, used)
        if said is not None:
            self.messages.update(doc_id, {"decision": said})

    def count_fidelity(self, institution: str, warnings: Iterable[HL7Error],
                       unmapped: Iterable[dict[str, str]], example: str) -> None:
        """Count what a conversion could not map, per institution: unmapped codes and segments
        (``Conversion.unmapped``: kind, code or segment, where) and conversion warnings."""
        self.count_fidelity_many([Fidelity(institution, list(warnings), list(unmapped), example)])

    def count_fidelity_many(self, messages: Sequence[Fidelity]) -> None:
        """``count_fidelity`` for several messages at once, in their order: one write per counter
        they touch, where counting message by message rewrote the same few counters for every
        message of a feed (~65 us of a lab result).

        Each counter is added by the store's atomic ``Collection.increment`` (its count, its
        records as a set, its last-seen and example set), in the caller's transaction (the batch's,
        the message's: each increment its own when there is none): a read of
        the rows then a ``replace`` of each lost counts and records when two processes counted at
        once on a MongoDB without transactions (a standalone server; rv36g, fid37)."""
        seen: dict[str, tuple[dict[str, Any], int, str]] = {}  # key -> (entry, messages, last example)
        for m in messages:
            for key, entry in _fidelity_entries(m).items():
                first, n, _ = seen.get(key, (entry, 0, ""))
                if first is not entry and entry.get("records"):  # the batch's messages' records, all of them
                    first["records"] = _records(first.get("records"), entry["records"])
                # a warning counted for another institution's operator (``Tally.institution``): the sender's
                # message is not that institution's to open, so none is given as the example
                seen[key] = (first, n + 1, m.example if entry["institution"] == m.institution or "count_as" not in entry else "")
        if not seen:
            return
        stamp = now_iso()
        for key, (entry, n, example) in seen.items():
            records = entry.get("records")  # the records each message named, kept: the operator's list to correct
            # a mapping gap's row says what it is on each count: a row an earlier release wrote for it read
            # "unmapped code" (``GAP_ROWS``; codedoc38)
            said = {"message": entry["message"], "gap": entry["gap"]} if entry.get("gap") else {}
            self.fidelity.increment(  # ``count``: the messages in which it occurred
                key, "count", by=n, fields={"last_seen": stamp, "example_message": example, **said},
                on_insert={**entry, "first_seen": stamp}, add={"records": records} if records else None)

    # -- reads --------------------------------------------------------------------------
    def pending(self, limit: int = 1000) -> list[Document]:
        return self.messages.find({"status": RECEIVED}, sort=[("received_at", 1)], limit=limit)

    def quarantined(self, *, facility: str | None = None, limit: int = 50, skip: int = 0,
                    since: str | None = None, before: str | None = None,
                    facilities: Collection[str] | None = None,
                    processing_ids: Collection[str] | None = None) -> list[Document]:
        """Newest first; ``since``/``before``: received at or after / before these instants (``now_iso``'s form);
        ``facilities``: only messages of these sending institutions (None: any; a caller's remit).
        ``processing_ids``: the messages of these MSH-11.1 ids instead, of any status (the ``T``/``D`` ones
        stored as clinical data before hl7mode29 are processed, not quarantined)."""
        flt: dict[str, Any] = {"status": QUARANTINED} if processing_ids is None else {
            "processing_id": {"$in": sorted(processing_ids)}}
        _facility(flt, facility, facilities)
        _received(flt, since, before)
        return self.messages.find(flt, sort=[("received_at", -1)], limit=limit, skip=skip)

    def held(self, *, facility: str | None = None, limit: int = 50, skip: int = 0,
             since: str | None = None, before: str | None = None,
             facilities: Collection[str] | None = None) -> tuple[int, list[Document]]:
        """The messages accepted with a change held (``hl7_held``, ``mark_processed(held=)``), newest first, and
        how many there are: ``facilities``, ``since`` and ``before`` as ``quarantined``'s (a caller's remit, the
        messages' receipt)."""
        flt: dict[str, Any] = {}
        _facility(flt, facility, facilities)
        _received(flt, since, before)
        rows = self.held_changes.find(flt, sort=[("received_at", -1)], limit=limit, skip=skip)
        docs = self.get_many([r["_id"] for r in rows])
        return self.held_changes.count(flt), [docs[r["_id"]] for r in rows if r["_id"] in docs]

    def count(self, status: str | None = None, facility: str | None = None, *,
              since: str | None = None, before: str | None = None,
              facilities: Collection[str] | None = None, processing_ids: Collection[str] | None = None) -> int:
        flt: dict[str, Any] = {}
        if status:
            flt["status"] = status
        if processing_ids is not None:
            flt["processing_id"] = {"$in": sorted(processing_ids)}
        _facility(flt, facility, facilities)
        _received(flt, since, before)
        return self.messages.count(flt)

    def census_processing_ids(self) -> dict[str, int]:
        """At start: how many messages stored before ``processing_id`` was recorded are in the repository as
        clinical data with MSH-11 ``T`` or ``D`` (processed, or with resources written), per id; logged.

        The first start on such a store reads MSH-11 from each raw message without the field once, records
        it on the message (its header fact, as ``version`` is; nothing else changes) and keeps the count in
        ``hl7_census``; every later start reads the count kept (one document) and scans nothing: messages
        stored since carry the field. Why not hide or refuse them: they were accepted under the policy of
        their day, and whether a ``T`` was training or a mislabelled production message is the operator's
        call (``senders.yaml`` ``production_marked_training``)."""
        kept = self.census.get(_CENSUS)
        if kept is None:
            found = dict.fromkeys(NOT_PRODUCTION, 0)
            while page := self.messages.find({"processing_id": None}, limit=_CENSUS_PAGE):
                with self.store.transaction():
                    for doc in page:
                        pid = _processing_id(raw_of(doc))
                        self.messages.update(doc["_id"], {"processing_id": pid})
                        if pid in found and (doc.get("status") == PROCESSED or doc.get("resources")):
                            found[pid] += 1
            kept = {"_id": _CENSUS, "at": now_iso(), **found}
            with self.store.transaction():
                self.census.replace(kept)
        counts = {pid: int(kept.get(pid) or 0) for pid in NOT_PRODUCTION}
        if any(counts.values()):
            log.warning("%d messages stored before with processing ID T/D (%s; counted %s) are in the repository "
                        "as clinical data: list them with GET /admin/quarantine?processing_id=T,D or `huren "
                        "quarantine list --processing-id T,D`", sum(counts.values()),
                        ", ".join(f"{k}: {v}" for k, v in counts.items()), kept.get("at"))
        return counts

    def fidelity_report(self, institution: str | None = None) -> list[Document]:
        """The counters of ``institution`` (None: every one's), each row's records sorted (``increment``
        adds them in the order they came)."""
        flt = {"institution": institution} if institution else None
        rows = self.fidelity.find(flt, sort=[("institution", 1), ("where", 1)])
        for row in rows:
            if row.get("records"):
                row["records"] = _records(row["records"])
        return rows


@dataclass
class Fidelity:
    """What one message's conversion could not map, for ``count_fidelity_many``."""

    institution: str
    warnings: list[HL7Error]
    unmapped: list[dict[str, str]]
    example: str  # the message's document id


# what a mapping gap the merge found (``engine.ingest._gap_entry``'s ``gap``) is, as its fidelity row says it: Chinese
# first, as the page's advice (the operator reads it; engine.api.admin ``_ADVICE``), then English. An order's text
# and a code its map knows with no item had read "unmapped code", which neither is (review rv37c LOW, code37's
# "row wording"; thirty-eighth round, codedoc38)
GAP_ROWS = {
    "order_text": "医嘱文字“{value}”（{where}）未指明任何识别项目：结果的编码无法与该医嘱比对，未加入医嘱。请让 HIS 发送医嘱编码，"
                  "或在 items.yaml 中以此名称登记项目。(Order text {value!r} at {where} names no recognition item: the "
                  "result's codes could not be judged against the order and were not added to it. Have the HIS send "
                  "the order's code, or name an item so in items.yaml.)",
    "no_item": "本地编码“{value}”（{where}）已映射但没有识别项目：无法判断是否与医嘱同一检验，未加入医嘱。请在 "
               "mappings/codes/<机构>.yaml 中为其填写 item。(Local code {value!r} at {where} is mapped with no "
               "recognition item: it could not be judged the ordered test and was not added to the order. Give it "
               "an item in mappings/codes/<INST>.yaml.)",
}


def _fidelity_entries(m: Fidelity) -> dict[str, dict[str, Any]]:
    """The counters one message adds to, each once however often it occurs in the message."""
    entries: dict[str, dict[str, Any]] = {}
    for u in m.unmapped:
        kind = u.get("kind", "code")
        value = u.get("code") or u.get("segment") or ""
        where = u.get("where", "")
        inst = u.get("institution") or m.institution
        gap = u.get("gap") or ""
        row = GAP_ROWS.get(gap)
        entry = {"institution": inst, "kind": kind, "value": value, "where": where, "code": "103",
                 "message": row.format(value=value, where=where or "?") if row is not None
                 else f"unmapped {kind} {value!r}" + (f" at {where}" if where else "")}
        if row is not None:
            entry["gap"] = gap
        entries.setdefault(_fid_key(inst, kind, value, where, ""), entry)
    # a value left out counted once: its unmapped entry, not again as the W 103 the sender was told at the
    # same field (hl7fix28; rvhl7left28 finding 8)
    dropped = {u.get("where") for u in m.unmapped if u.get("where")}
    for w in m.warnings:
        if w.code == "103" and w.location() in dropped:
            continue
        tally = w.tally
        inst = (tally.institution if tally is not None else "") or m.institution
        text = (tally.text if tally is not None else "") or w.message
        entry = {"institution": inst, "kind": "warning", "value": "", "where": w.location(), "code": w.code,
                 "message": text}
        if tally is None:
            entries.setdefault(_fid_key(inst, "warning", "", w.location(), text), entry)
            continue
        # what the fidelity view counts it under, as fields (``Tally``, identity34), and part of the row's
        # key: a text naming no key (``member_contradicted`` names no owner) had put two owners' counts on
        # one row, the last one's key overwriting the first's (rvidentity34 finding 1). A row a release
        # before wrote (keyed by its text) is left as it was, counted from its text (``engine.api.admin``)
        entry |= {"count_as": tally.count, "count_key": tally.key}
        if tally.records:
            entry["records"] = list(tally.records)
        key = _fid_key(inst, "warning", "", w.location(), text, tally.count, tally.key)
        if key not in entries:
            entries[key] = entry
        elif tally.records:  # the same count twice in one message (two PIDs): one message, both's records
            entries[key]["records"] = _records(entries[key].get("records"), tally.records)
    return entries


def _records(*lists: Any) -> list[str]:
    """The union of a row's record lists (``Tally.records``), sorted: each record once however often it
    was counted."""
    return sorted({str(r) for rs in lists for r in rs or ()})


def message_type_of(head: Header) -> str:
    """MSH-9 as a message document records it: MSH-9.1 and MSH-9.2 in the sender's component
    separator ("" when MSH-9 is empty). The one reading, of a new message (``engine.ingest``) and of
    an operator's corrected replay (``MessageStore.reopen``)."""
    comp = head.component_sep
    return comp.join(p for p in (head.message_code, head.trigger_event) if p) if head.message_type else ""


def header_facts(raw: bytes) -> dict[str, str]:
    """What a message document states of its raw header besides its key: ``message_type``,
    ``version`` (MSH-12.1) and ``processing_id`` (MSH-11.1)."""
    head = extract_header(raw)[0]
    return {"message_type": message_type_of(head), "version": head.version, "processing_id": _processing_id_of(head)}


def _processing_id(raw: bytes) -> str:
    """MSH-11.1 of a raw message, as ``processing_id`` records it ("" none read)."""
    return _processing_id_of(extract_header(raw)[0])


def _processing_id_of(head: Header) -> str:
    return sent_id(head.processing_id, head.component_sep) if head.found else ""


def _fid_key(*parts: str) -> str:
    return "f-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def _reason(errs: list[dict[str, Any]]) -> str | None:
    for e in errs:
        if e.get("severity", "E") in ("E", "F"):
            loc = e.get("location")
            return f"{loc}: {e['message']}" if loc else e["message"]
    return None


def _facility(flt: dict[str, Any], facility: str | None, facilities: Collection[str] | None) -> None:
    """``facility`` (one sending institution) within ``facilities`` (None: any): one named outside
    them, or none at all, matches nothing."""
    if facilities is None:
        if facility:
            flt["facility"] = facility
        return
    if facility:
        flt["facility"] = {"$in": [facility] if facility in facilities else []}
    else:
        flt["facility"] = {"$in": sorted(facilities)}


def _received(flt: dict[str, Any], since: str | None, before: str | None) -> None:
    """A range of ``received_at`` (UTC texts of one form, so they compare as text)."""
    span = {op: value for op, value in (("$gte", since), ("$lt", before)) if value}
    if span:
        flt["received_at"] = span


def summary(doc: Document) -> dict[str, Any]:
    """A message document without its raw bytes (for lists)."""
    return {k: v for k, v in doc.items() if k != "raw"} | {"id": doc["_id"]}
