"""The ingest pipeline: raw HL7 v2 bytes in, ACK bytes out, FHIR resources stored in between.

Order of work for each message (DESIGN.md §4 Durability):

1. read the MSH (``adapters.hl7v2.header``), robustly, to know whom to answer;
2. check the envelope: a usable MSH, a supported version, a processing id (MSH-11) the node accepts
   (``adapters.hl7v2.processing``), a registered sending facility (MSH-4.1 in ``site.institutions``)
   -- otherwise ``AR``;
3. idempotency on (MSH-4.1, MSH-3.1, MSH-10) (``engine.messages`` on ids): identical bytes already seen -> the recorded answer again,
   nothing changes; same key, other bytes -> kept as a conflict in the quarantine, ``AE``;
4. parse and convert to a transaction Bundle, validate (outside any transaction);
5. in **one commit** for the batch: the raw bytes (inserted once, with the message's final
   status), its resources written through the repository, its Provenance signed with the
   batch's, the conversion warnings counted, the audit records (``_one_commit``);
6. ACK: ``AA`` (with warnings as ERR severity W), ``AE`` with the reason, or ``AR``.

Before a batch is processed, its raw bytes go to this process's in-flight journal
(``engine.inflight``), emptied after the commit: a process that dies mid-batch leaves them for
the next start (``recover``), which also finds a *poison* message (one the process dies on) and
quarantines it instead of dying on it again.

When that commit fails, the batch is done the two-commit way: the raw bytes committed first
(phase 1), then each message in its own savepoint, so that a failing message is quarantined
alone and the others' raw bytes are safe even when the second commit cannot be made (phase 2).

**Group commit.** ``submit`` queues the message for one worker thread, which takes everything
queued so far as one batch: one commit per batch instead of two per message. A lone sender
waiting for each ACK gets batches of one; many connections (or a pipelining sender, or
``huren replay``) get large batches, and after a batch of several the worker lingers a few
milliseconds for the messages on their way (``_linger``). ``handle`` is ``submit`` + wait.

Collaborators are passed in, so ``Engine`` wires real ones and tests build their own:
``store`` (the ``Store`` port), ``site`` (``mappings.site.Site``), ``parse`` (text -> Message),
``convert`` ((Message, Site) -> Conversion), ``repository`` (``write_many``), ``audit``
(``record(event)``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from adapters.convert.applications import canonical
from adapters.convert.persons import MEMBER_REFUSED, RENUMBER_CLAIM, Barred, decision_barred, registered_by
from adapters.convert.results import placed_numbers
from adapters.hl7v2.ack import build_ack, version_tuple
from adapters.hl7v2.errors import (
    APPLICATION_INTERNAL_ERROR,
    APPLICATION_RECORD_LOCKED,
    DATA_TYPE_ERROR,
    DUPLICATE_KEY_IDENTIFIER,
    MESSAGE_ACCEPTED,
    TABLE_VALUE_NOT_FOUND,
    UNSUPPORTED_VERSION_ID,
    HL7Error,
)
from adapters.hl7v2.header import Header, decode, extract_header, read_message
from adapters.hl7v2.processing import judge, kept_accepted, sent_id
from adapters.hl7v2.sequence import OrderReading
from adapters.hl7v2.sequence import judged as judged_sequence
from adapters.hl7v2.structure import unexpected_segment
from engine import fhirjson, heap
from engine.audit.events import INSTITUTION, now_instant, patients_of
from engine.audit.record import Facts, Requestor, facts
from engine.errors import Conflict, FhirError
from engine.inflight import POISON_DEATHS, InFlightJournal
from engine.member_refusals import MemberRefusals, counted_under, replay_requestor
from engine.merge_rules import V2_0357, Untimely, field_of, gap_of, replayed_made
from engine.message_time import Decision, Stamp, aware_instant, header_hd, stamp, written_before_receipt
from engine.messages import (
    DECIDING,
    PROCESSED,
    QUARANTINED,
    RECEIVED,
    Fidelity,
    MessageStore,
    Superseded,
    anonymous_id,
    application_of,
    collided,
    conflict_id,
    conflict_key,
    error_from_dict,
    message_id,
    message_institution,
    message_type_of,
    raw_of,
    raw_text,
    sender_id,
)
from engine.repository import trail
from engine.repository.port import Document, Store, UndoIncomplete
from engine.repository.versioning import left_versions
from mappings.site import DEFAULT_ZONE

log = logging.getLogger("huren.ingest")

SUPPORTED_VERSIONS = ((2, 3), (2, 8, 99))  # v2.3 .. v2.8.x, as issue 3 requires
_VERSION_ID = re.compile(r"\d+(?:\.\d+)*")  # MSH-12.1 as table 0104 spells versions: 2.3.1, 2.5.1, 2.8.2
MAX_ACK_WARNINGS = 50
UNDO_LEFT = "undo_left"  # message document: its resources' versions a failed block left stored (``_left_stored``)
LINGER_GAP = 0.002  # seconds a batch under load waits for one more message (``Ingestor._linger``)


class Repository(Protocol):
    def write_many(self, resources: list[dict[str, Any]], *, create_only: set[str] = ...,
                   source: str = ...) -> list[Any]: ...
    # optional: ``group()`` (a context manager) makes the write_many calls inside it one backend put;
    # ``valid_groups(groups) -> [bool]`` validates a batch type by type, ``write_many(validated=True)``
    # takes them as validated; ``write_many(rewrite={"Type/id/_history/n"})`` writes again what a
    # failed block left stored without its hooks, while still current (``Ingestor._left_stored``)


class AuditSink(Protocol):
    """The signed audit log (``engine.audit.log.AuditLog``): complete AuditEvents or compact ``Facts``."""

    def record(self, event: dict[str, Any] | Facts) -> Any: ...

    def record_many(self, events: Sequence[dict[str, Any] | Facts]) -> Sequence[Any]: ...


@dataclass
class Outcome:
    """What happened to one message; ``ack`` is what the sender gets."""

    ack: bytes
    code: str
    message_id: str | None
    status: str
    errors: list[HL7Error] = field(default_factory=list)
    duplicate: bool = False
    resources: list[str] = field(default_factory=list)  # references written for this message
    codec: str = "utf-8"  # how ``ack`` is encoded (the message's own character set)
    owners: dict[str, list[str]] = field(default_factory=dict)  # reference -> its patients (for the audit)


@dataclass
class _Item:
    raw: bytes
    channel: str
    peer: str
    future: concurrent.futures.Future[Outcome]
    header: Header | None = None
    owners: dict[str, list[str]] = field(default_factory=dict)  # written reference -> its patients
    # ``raw`` as base64 text (``messages.raw_text``), made once for the in-flight journal and the
    # message's document (``_encoded``); ``raw`` is never replaced, so it holds for the item's life
    encoded: str = ""
    text: str = ""
    sha256: str = ""
    doc_id: str | None = None
    doc: Document | None = None
    outcome: Outcome | None = None
    process: bool = False
    same_as: _Item | None = None  # an identical message earlier in the same batch
    conversion: Any = None
    errors: list[HL7Error] = field(default_factory=list)
    validated: bool = False  # its converted resources passed validation with the batch's
    in_batch_new: bool = False  # stored by this batch (not a resend)
    on_stored: Callable[[Header, Outcome | None], None] | None = None  # see ``submit``
    refs: list[str] | None = None  # the references its processing wrote (``_write``)
    converted: bool = False  # ``conversion``/``errors`` hold its conversion (kept when a batch is redone)
    early: Outcome | None = None  # the answer its envelope decided, for ``on_stored``
    tries: int = 0  # how often a process died while processing it (``engine.inflight``)
    poison: bool = False  # it killed the process twice, the last time alone: quarantined, not converted
    resources: list[dict[str, Any]] | None = None  # its conversion's resources, listed once (``_resources``)
    named: list[str | None] | None = None  # their ``Type/id`` references, made once (``_named``)
    kept: bool = False  # kept ``received`` for replay: its block's undo failed (``_left_stored``)
    accepted_before: bool = False  # a stored message the repository holds as clinical data (``_item_for``)
    # MSH-3.1 when another application of its institution used its MSH-10 first (``engine.messages``):
    # the converter keys the message's own ids with it (``convert(application=)``); ``converted_for``:
    # what its conversion was made with (a redo that decides otherwise converts again)
    sender_key: str = ""
    converted_for: str = ""
    # the batch's earlier messages whose conversions its own was settled against, not yet written
    # (``Conversion.settle_against_store``'s ``earlier``: a DG1-21 D in the batch of the A01 adding
    # the diagnosis): one of them not written, it is settled again in message order (``_write_each``)
    leaned_on: list[_Item] = field(default_factory=list)
    # an operator's decision that this message is later than the stored versions its order cannot be
    # told against (``Ingestor.replay(decided=)``, ``engine.message_time.Decision``; order35)
    decided: Decision | None = None
    decision_used: bool = False  # the decision answered a comparison of its write (``_Dates.used``; ordfix35)
    # the stored versions (``Type/id/_history/n``) its refusal was told against: the only ones the
    # decision answers for (``refused_against``; rvorder35 MED 3, ordfix35)
    decided_against: frozenset[str] = frozenset()
    # the order numbers its write held its change under (``merge_rules.Owned``: AA, W 204), each as
    # ``_Dates.hold`` got it -- kept on its message document (``held_claims``; fortieth round, ord40)
    held_claims: list[dict[str, Any]] = field(default_factory=list)
    # the resources (``Type/id``) its write left as stored (no new version): its Provenance names a version
    # another message made (``Stamp.unchanged``, ``_unchanged``) -- kept on its message document (``unchanged``;
    # fortieth round, stfix40)
    unchanged: frozenset[str] = frozenset()
    # the operator's replay this processing is (``_item_for``: the stored message's last ``replays`` entry, who
    # asked and whether with corrected bytes): a plain one is not the sender's message arriving again
    # (``_member_refused``); None: the sender's own arrival (or its recovery)
    replay: dict[str, Any] | None = None


def _encoded(item: _Item) -> str:
    """``item.raw`` as base64 text (``messages.raw_text``), made at the first asking and kept: the
    journal's record of the batch and the message's document hold the same text (perf40)."""
    if not item.encoded:
        item.encoded = raw_text(item.raw)
    return item.encoded


def _fresh(item: _Item) -> None:
    """Forget what a batch attempt decided about ``item`` (envelope, documents, answers), keeping
    its header and its conversion: for the two-commit redo of a batch (``_run_batch_now``)."""
    item.doc_id = item.doc = item.outcome = item.same_as = item.early = item.refs = None
    item.process = item.in_batch_new = False
    item.sender_key = ""
    item.owners = {}


@dataclass
class Stats:
    """Counters and cumulative seconds per stage, for ``GET /admin/metrics`` and the benchmark."""

    received: int = 0
    processed: int = 0
    quarantined: int = 0
    rejected: int = 0
    duplicates: int = 0
    conflicts: int = 0
    batches: int = 0
    largest_batch: int = 0
    redone_batches: int = 0  # written again message by message because one message failed
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("header", "store_raw", "parse", "convert", "repository", "audit", "commit", "ack"), 0.0))

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["seconds"] = {k: round(v, 6) for k, v in self.seconds.items()}
        return d


class Ingestor:
    def __init__(
        self,
        store: Store,
        *,
        site: Any,
        parse: Callable[[str, str], Any] | None,
        convert: Callable[[Any, Any], Any] | None,
        repository: Repository | None,
        orderless: OrderReading | None = None,
        audit: AuditSink | None = None,
        batch_size: int = 200,
        receiver_application: str = "HUREN",
        origin: str = "huren",
        sign: Callable[[dict[str, Any], list[bytes]], dict[str, Any]] | None = None,
        sign_many: Callable[[list[tuple[dict[str, Any], list[bytes]]]], list[dict[str, Any]]] | None = None,
        linger: float = 0.010,
        one_commit: bool = True,
        journal: InFlightJournal | None = None,
        batch_scopes: Sequence[Callable[[list[dict[str, Any]], dict[str, Any]],
                                        contextlib.AbstractContextManager[Any]]] = (),
        processing_ids: frozenset[str] = frozenset({"P"}),
        member_refusal_alert: int = 0,
    ) -> None:
        self.store = store
        self.messages = MessageStore(store)
        self.refusals = MemberRefusals(store)  # a sender's refusals on a member's numbers (``_member_refused``)
        self.site = site
        # "Type/id/_history/n" -> the messages of this batch that stated that version, in order
        # (``_Dates.pending``): their Provenances are written once the batch merged, after a later
        # message of it is compared
        self._stamped: dict[str, list[_Dates]] = {}
        self.parse = parse
        self.convert = convert
        self.orderless = orderless  # the converter's reading of results into orders (``sequence.judged``)
        self.repository = repository
        self.audit = audit
        self.batch_size = batch_size
        self.linger = linger  # seconds a batch under load may wait for more messages (``_linger``)
        self.one_commit = one_commit  # raw messages and what they became in one commit (``_one_commit``)
        self._unstored: list[Document] | None = None  # new message documents the running commit inserts
        self.receiver_application = receiver_application
        self.origin = origin  # the node named in AuditEvent.source
        self.sign = sign  # signs a message's Provenance over its targets' stored bytes (engine.audit.provenance)
        self.sign_many = sign_many  # signs a batch's Provenances with one signature (``_write_provenances``)
        self.journal = journal  # the raw bytes of the batch in flight, for a process that dies (``recover``)
        # entered around a batch's one-transaction write with its converted resources and what the
        # converter built from compiled plans ("Type/id" -> ``plans.Planned``): the write hooks
        # keep what they read and write for the whole batch (``Recognition.batch``)
        self.batch_scopes = tuple(batch_scopes)
        self.processing_ids = processing_ids  # MSH-11.1 values this node accepts (HUREN_PROCESSING_IDS)
        # a sender's refusals for naming another member's record number for another person, per member: each
        # this many, an alert (HUREN_MEMBER_REFUSAL_ALERT; 0: none; ``_member_refused``)
        self.member_refusal_alert = member_refusal_alert
        self.stats = Stats()
        self._write_seconds = {"repository": 0.0, "audit": 0.0}  # within the current batch commit
        self.listeners: list[Any] = []  # MLLP servers feeding this ingestor (for health and metrics)
        self._lock = threading.RLock()  # one batch / replay at a time
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._closed = False

    # -- entry points --------------------------------------------------------------------
    def handle(self, raw: bytes, *, channel: str, peer: str) -> bytes:
        """Process one message and return its ACK (blocking; group-committed with concurrent callers)."""
        return self.submit(raw, channel=channel, peer=peer).result().ack

    def submit(self, raw: bytes, *, channel: str, peer: str,
               on_stored: Callable[[Header, Outcome | None], None] | None = None,
               ) -> concurrent.futures.Future[Outcome]:
        """Queue a message for the worker; the future resolves to its ``Outcome`` after the commit.

        ``on_stored(header, outcome)`` is called from the worker as soon as the raw message is
        committed, before conversion (enhanced-mode accept ACKs are sent then); ``outcome`` is
        already set when the envelope decided the answer (a rejection, a resend). It is not
        called when the raw message could not be stored.
        """
        if self._closed:
            raise RuntimeError("ingestor is closed")
        fut: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        self._ensure_worker()
        self._queue.put(_Item(bytes(raw), channel, peer, fut, on_stored=on_stored))
        return fut

    async def handle_async(self, raw: bytes, peer: str, channel: str = "mllp") -> bytes:
        """The MLLP listener's handler: awaits the worker without blocking the event loop."""
        outcome = await asyncio.wrap_future(self.submit(raw, channel=channel, peer=peer))
        return outcome.ack

    def process(self, raws: list[tuple[bytes, str, str]]) -> list[Outcome]:
        """Process messages as one batch in the calling thread: ``[(raw, channel, peer)]``."""
        items = [_Item(r, c, p, concurrent.futures.Future()) for r, c, p in raws]
        with self._lock:
            self._run_batch(items)
        return [i.future.result() for i in items]

    def recover(self) -> int:
        """At start: process the messages a process that died was processing (its in-flight
        journal, one message at a time; a poison message is quarantined: ``engine.inflight``),
        then those stored but not processed (a crash between phase 1 and 2). Returns their count."""
        done = self._recover_journals()
        while True:
            with self._lock:
                docs = self.messages.pending(limit=self.batch_size)
                if not docs:
                    return done
                items = [self._item_for(doc) for doc in docs]
                with _collector_paused():
                    self._phase2(items)
                    self._finish(items)
                    _release(items)
                done += len(items)
                if any(i.outcome is not None and i.outcome.status == RECEIVED for i in items):
                    return done  # the database keeps failing: do not spin; the next start retries

    def _recover_journals(self) -> int:
        """The messages of dead processes' in-flight journals, each alone in its batch (so that a
        process dying again names the message it died on); a resend of a stored one is answered
        as recorded and not counted."""
        if self.journal is None:
            return 0
        done = 0
        try:
            with self.journal.dead() as pending:
                for p in pending:
                    item = _Item(p.raw, p.channel, p.peer, concurrent.futures.Future(), tries=p.deaths,
                                 poison=p.poison)
                    with self._lock:
                        self._run_batch([item])
                    outcome = item.future.result()
                    if outcome.status == RECEIVED and outcome.code != "AA" and not item.kept:
                        # the database failing: stop (do not spin through the rest against it) and
                        # keep the journals; a message kept for replay is not that (``_left_stored``)
                        raise _NotStored(outcome.errors[0].message if outcome.errors else "")
                    if p.poison and outcome.status == QUARANTINED and not outcome.duplicate:
                        log.warning("message %s killed the process %d times, the last time alone: quarantined "
                                    "unprocessed", outcome.message_id, p.deaths)
                    done += not outcome.duplicate
        except _NotStored as exc:
            log.error("a message of a stopped process's in-flight journal could not be stored or processed (%s); "
                      "recovery stops there and the journal is kept for the next start", exc)
        return done

    def _item_for(self, doc: Document) -> _Item:
        """A work item for a stored message, processed under its own document id."""
        item = _Item(raw_of(doc), doc.get("channel", ""), doc.get("peer", ""), concurrent.futures.Future())
        item.header, item.text = read_message(item.raw, item.peer, self.site)
        item.sha256 = doc["sha256"]
        item.doc_id, item.doc, item.process = doc["_id"], doc, True
        item.sender_key = self._other_sender(doc)
        # processed before (a replay reopens it ``received``; what it wrote stays listed): accepted under the
        # policy of its day, its MSH-11 is not judged again (``processing.kept_accepted``)
        item.accepted_before = bool(doc.get("resources")) or any(
            r.get("previous_status") == PROCESSED for r in doc.get("replays") or ())
        # only a replay reopens a stored message (``MessageStore.reopen``): one recovered after a crash that has
        # replays was being replayed; one never replayed is the sender's arrival (``_member_refused``)
        item.replay = (doc.get("replays") or [None])[-1]
        return item

    def _old_conflict(self, item: _Item, plain: str, app: str, in_batch: dict[str, _Item],
                      stored: dict[str, Document]) -> tuple[_Item | None, Document | None, bool]:
        """(earlier item, document, whether to process it) of these very bytes of application
        ``app`` as the code before MSH-3 was in the key quarantined them: a conflict of the pair
        ``plain`` another application holds. That document is this message: a resend processes
        it where it is (its id is named by the quarantine, audit records), and a replay of it,
        before or after, finds it processed -- never a second document of the one message."""
        old = conflict_id(plain, item.sha256)
        earlier = in_batch.get(old)
        doc = earlier.doc if earlier is not None else (stored[old] if old in stored else self.messages.get(old))
        if doc is None or doc.get("conflict_of") != plain or application_of(doc) != app:
            return None, None, False
        return earlier, doc, doc["status"] == QUARANTINED

    def _other_sender(self, doc: Document) -> str:
        """``_Item.sender_key`` of a stored message: its application when the plain id of its
        (institution, MSH-10) pair holds another application's message (``engine.messages``) --
        also for a conflict the code before MSH-3 was in the key quarantined under that pair; and a
        conflict of the same sender's message (an operator's replay) keyed apart (rvregapp33 finding 3)."""
        if doc["_id"] == (plain := message_id(doc["facility"], doc["control_id"])):
            return ""
        first = self.messages.get(plain)
        app = application_of(doc)
        key = collided(app) if first is not None and application_of(first) != app else ""
        # a conflict of its own sender's message (not one the code before keyed by MSH-10 alone, of
        # another application): its ids apart from the message it conflicts with (``conflict_key``)
        of = doc.get("conflict_of")
        held = None if not of else first if of == plain else self.messages.get(of)
        return conflict_key(key, doc["_id"]) if held is not None and application_of(held) == app else key

    def replay(self, doc_id: str, *, actor: str, raw: bytes | None = None,
               decided: Decision | None = None, who: Mapping[str, str] | None = None) -> Outcome | None:
        """Run a stored message through the pipeline again (after a fix in the site files, say).

        ``raw`` replaces the stored bytes (a corrected message); its MSH-4/MSH-10 must match.
        ``decided``: the operator's decision that the message is later than the stored versions its
        order could not be told against (``engine.message_time.Decision``): only for a message
        refused for that reason (``undecidable`` says why not), of its stored bytes; the replay entry,
        the audit record and -- when the decision answered a comparison -- the Provenance and an
        information note (severity I) name the operator (thirty-fifth round, order35).
        ``who``: the replayer as its entry keeps it (``member_refusals.replayed_by``: a person, the sending
        institution it is bound to), for the refusal's count and the audit records (fidfix37).
        Returns None when there is no such message.
        """
        with self._lock:
            doc = self.messages.get(doc_id)
            if doc is None:
                return None
            if decided is not None and decided.kind == "owner":
                if raw is not None:
                    raise NotDecidable("a corrected copy is not decided: the decision is about the message as it "
                                       "was held")
                against = self._owner_decidable(doc)
                self._renumber_barred(doc, against)
            elif decided is not None:
                why = undecidable(doc) or ("a corrected copy is not replayed as later: the decision is about "
                                           "the message as it was refused" if raw is not None else "")
                if why:
                    raise NotDecidable(why)
                against = _refused_against(doc)
                if not against:
                    raise RecordChanged(
                        "the refusal recorded no stored version it was told against (refused before versions were "
                        "recorded): the record may have changed after the refusal; replay it plainly to refuse it "
                        "again against what is stored now, then decide")
            if raw is not None:
                header, _ = read_message(raw, doc.get("peer", ""), self.site)
                if (not header.corrects(doc["facility"], doc["control_id"])
                        or header.application_code != application_of(doc)):
                    raise ValueError("a corrected message must keep MSH-3.1, MSH-4.1 and MSH-10 of the original "
                                     f"({application_of(doc)!r}, {doc['facility']!r}, {doc['control_id']!r})")
            refused_at = str(doc.get("processed_at") or "")  # (when it was refused: ``_stored_since``)
            # an owner's decision reopens the message only as it was checked (``_owner_decidable``), in one
            # conditional write: ``_lock`` is this process's, and a second worker or the console may have checked
            # it too -- the one whose write finds it changed is answered by what it now is (rv40f HIGH 1)
            expect = ({"status": PROCESSED, "processed_at": doc.get("processed_at")}
                      if decided is not None and decided.kind == "owner" else None)
            try:
                with self.store.transaction():
                    doc = self.messages.reopen(doc_id, actor=actor, raw=raw,
                                               decided_at=decided.at if decided else None, who=who,
                                               decided_as=decided.kind if decided else "",
                                               reason=decided.reason if decided else "", expect=expect)
            except Superseded:
                self._owner_decidable(self.messages.get(doc_id) or {})  # (already / being decided: raised)
                raise RecordChanged("the message was processed again while this decision was asked: nothing of it "
                                    "was written; look at it again and decide on what it is now") from None
            assert doc is not None
            item = self._item_for(doc)
            item.decided = decided
            if decided is not None:
                item.decided_against = against
            self._phase2([item])
            self._finish([item])
            assert item.outcome is not None
            if decided is not None and decided.kind == "owner" and item.outcome.status == RECEIVED:
                self._decision_failed(doc, item, decided, actor)  # (raises: nothing of it applied)
            used = None
            changed: list[str] = []
            if decided is not None:  # (the entry says whether the decision answered anything: rvorder35 LOW 5)
                used = item.decision_used and item.outcome is not None and item.outcome.code == "AA"
                with self.store.transaction():
                    self.messages.decision_used(doc_id, used)
                now = self.messages.get(doc_id) or {}
                changed = (sorted(_refused_against(now) - against)
                           if now.get("status") == QUARANTINED and decided.kind == "later" else [])
            if self.audit is not None and item.outcome is not None:
                self._audit_replay(doc, item.outcome, replay_requestor(item.replay or {"by": actor}), decided, used)
            if changed:
                was = ", ".join(sorted(against))
                since, unnamed = self._stored_since(changed, refused_at)
                if since:
                    also = (f" (and {', '.join(unnamed)}, stored before the refusal, which it did not name)"
                            if unnamed else "")
                    raise RecordChanged(
                        f"the record changed after the refusal: it was refused against {was}, and what is stored now "
                        f"is {', '.join(since)}{also}, whose order against this message cannot be told either -- the "
                        "decision is not taken for a version you were not shown; nothing of the message was written; "
                        "its refusal now names what is stored, decide again on that")
                # (a refusal recorded before every version was: it named the first only -- nothing changed)
                raise RecordChanged(
                    f"the refusal did not name {', '.join(unnamed)}, stored before it (it was refused against {was} "
                    "only: refused before every version it could not be told against was recorded), whose order "
                    "against this message cannot be told either -- the decision is not taken for a version you "
                    "were not shown; nothing of the message was written; its refusal now names every one, decide "
                    "again on that")
            return item.future.result()

    def _decision_failed(self, doc: Document, item: _Item, decided: Decision, actor: str) -> None:
        """An owner's decision whose processing failed at the store (``_phase2``: the batch could not commit -- SQLite
        busy under another worker's write lock, a MongoDB error -- the message left ``received``): the message is
        put back as it was before the decision reopened it (``MessageStore.put_back``), decidable again, the attempt
        audited (ack AE), and ``DecisionNotWritten`` raised for the operator's answer. Why here, in the failure's
        own path: left ``received`` with its entry "as owner", every later decision was answered 409 "being taken"
        by a decision no process was applying, until a restart (rv40i MED 1, dfix40). Not a lease with an expiry:
        a decision slower than it (a long busy wait) would be taken by a second worker as well.

        A failure that left writes of it stored (``_Item.kept``) keeps it ``received`` for a plain replay, as every
        such message is. The put-back failing too (the store still failing) leaves it ``received`` as a crash does:
        the next start's ``recover`` processes it plainly, held again."""
        doc_id = str(doc["_id"])
        put_back: bool | None = None  # (None: the put-back's own write failed)
        try:
            with self.store.transaction():
                put_back = self.messages.put_back(doc_id, decided.at, written=item.kept)
        except Exception:
            log.exception("an owner's decision on message %s failed and the message could not be put back", doc_id)
        if self.audit is not None and item.outcome is not None:
            try:
                self._audit_replay(doc, item.outcome, replay_requestor(item.replay or {"by": actor}), decided, False)
            except Exception:  # (the store failing: nothing of the decision was written to audit either)
                log.exception("the failed owner's decision on message %s could not be audited", doc_id)
        if item.kept:
            raise DecisionNotWritten(
                "the store failed while the decision was written, and writes of the message stayed stored that "
                "could not be taken back: it is kept as received -- replay it plainly to file it as it is (its change "
                "held again), then decide", again=False)
        busy = "the store was busy or unreachable and the decision could not be written: nothing of it was applied"
        if put_back:
            raise DecisionNotWritten(f"{busy}, the message is held as before -- ask again in a moment", again=True)
        if put_back is False:  # (no longer this decision's reopen: a plain replay reopened it meanwhile)
            raise DecisionNotWritten(f"{busy}, and the message was replayed meanwhile -- look at it again and decide "
                                     "on what it is now", again=False)
        raise DecisionNotWritten(
            f"{busy}, but the message could not be put back either -- it stays received until the service's next "
            "start processes it again (held as before), then decide", again=False)

    def _stored_since(self, versions: Sequence[str], refused_at: str) -> tuple[list[str], list[str]]:
        """``versions`` (``Type/id/_history/n``) split into those stored after ``refused_at`` (the
        refusal's time: the record changed since) and those stored before it (the refusal did not name
        them: one recorded before every version was, ordfix36) -- by each version's ``lastUpdated``;
        one whose time cannot be read is counted as changed (the 409 stands either way)."""
        since: list[str] = []
        before: list[str] = []
        when = aware_instant(refused_at)
        for version in versions:
            ref, _, vid = version.rpartition("/_history/")
            rtype, _, rid = ref.partition("/")
            try:
                stored = self.repository.vread(rtype, rid, vid) if self.repository is not None else {}
            except FhirError:
                stored = {}
            at = aware_instant(str((stored.get("meta") or {}).get("lastUpdated") or ""))
            (before if when is not None and at is not None and at <= when else since).append(version)
        return since, before

    def reload_site(self, site: Any) -> None:
        with self._lock:
            self.site = site

    def close(self) -> None:
        self._closed = True
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=30)
            self._worker = None
        # no batch in flight: a clean stop leaves no journal behind (one still running keeps it)
        if self.journal is not None and self._lock.acquire(timeout=5):
            try:
                self.journal.close()
            finally:
                self._lock.release()

    # -- worker -------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            with self._lock:
                if self._worker is None or not self._worker.is_alive():
                    self._worker = threading.Thread(target=self._work, name="huren-ingest", daemon=True)
                    self._worker.start()

    def _work(self) -> None:
        busy = False  # the previous batch had company: messages arrive faster than one by one
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = self._take_queued(batch)
            if busy and not stop and self.linger > 0:
                stop = self._linger(batch)
            busy = len(batch) > 1
            try:
                with self._lock:
                    self._run_batch(batch)
            except Exception as exc:  # never leave a sender waiting
                log.exception("ingest batch failed")
                for item in batch:
                    if not item.future.done():
                        item.future.set_result(self._acked(item, self._internal_error(item, exc)))
            if stop:
                return

    def _take_queued(self, batch: list[_Item]) -> bool:
        """Add what is queued now to ``batch`` (up to ``batch_size``); True when asked to stop."""
        while len(batch) < self.batch_size:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                return False
            if nxt is None:
                return True
            batch.append(nxt)
        return False

    def _linger(self, batch: list[_Item]) -> bool:
        """Under load, let the batch grow while messages keep coming: wait up to ``LINGER_GAP`` for
        each next one, ``linger`` seconds in all. True when asked to stop.

        Why: a commit's cost is mostly the B-tree pages it appends to the WAL, and consecutive
        messages change the same index pages, so the commit per message falls with the batch
        (measured for 12-OBX lab results: ~200 us a message in batches of 25, ~140 in 50, ~90 in
        100). Under load the senders' next messages are on their way while a batch is written;
        taking them a few milliseconds later makes the next batch larger. A lone sender (batches
        of one) never waits: ``_work`` lingers only after a batch of more than one message.
        """
        deadline = time.monotonic() + self.linger
        while len(batch) < self.batch_size:
            wait = min(LINGER_GAP, deadline - time.monotonic())
            if wait <= 0:
                return False
            try:
                nxt = self._queue.get(timeout=wait)
            except queue.Empty:
                return False
            if nxt is None:
                return True
            batch.append(nxt)
            if self._take_queued(batch):
                return True
        return False

    # -- the pipeline -------------------------------------------------------------------
    def _run_batch(self, items: list[_Item]) -> None:
        if self.journal is not None:  # before anything can go wrong: see ``engine.inflight``
            try:
                self.journal.begin([(i.raw, i.channel, i.peer, i.tries) for i in items],
                                   [_encoded(i) for i in items])
            except OSError:  # a safety net for messages not ACKed yet: its failure stops no batch
                log.exception("could not write the in-flight journal; the batch goes on without it")
        with _collector_paused():
            self._run_batch_now(items)
            _release(items)
        if self.journal is not None:
            self.journal.end()

    def _run_batch_now(self, items: list[_Item]) -> None:
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(items))
        self.stats.received += len(items)
        t0 = time.perf_counter()
        for item in items:
            item.header, item.text = read_message(item.raw, item.peer, self.site)
            item.sha256 = hashlib.sha256(item.raw).hexdigest()
        t1 = time.perf_counter()
        self.stats.seconds["header"] += t1 - t0
        redo = False
        left: UndoIncomplete | None = None
        if self.one_commit:
            saved = replace(self.stats, seconds=dict(self.stats.seconds))
            try:
                self._one_commit(items)
            except Exception as exc:
                if isinstance(exc, UndoIncomplete):  # writes of it stayed stored: not redone over them
                    left = exc
                log.info("a batch of %d messages could not be committed at once (%s: %s); storing the raw "
                         "messages first, then writing them message by message", len(items), type(exc).__name__, exc)
                self.stats = saved
                self.stats.redone_batches += 1
                self._write_seconds = {"repository": 0.0, "audit": 0.0}
                for item in items:
                    _fresh(item)
                redo = True
            else:
                self._stored(items)
                self._finish(items)
                return
        try:
            with self.store.transaction():
                self._phase1(items)
        except Exception as exc:
            log.exception("could not store %d incoming messages", len(items))
            for item in items:
                item.outcome = self._internal_error(item, exc)
            self._finish(items)
            return
        self.stats.seconds["store_raw"] += time.perf_counter() - t1
        for item in items:
            item.early = item.outcome
        self._stored(items)
        if left is not None:  # the raw messages are stored ``received``, for replay by an operator
            log.error("a batch of %d messages not processed and kept for replay: %s", len(items), left)
            kept = [item for item in items if item.process]
            for item in kept:
                item.outcome = self._internal_error(item, left, status=RECEIVED)
            self._left_stored(kept, left)
            self._finish(items)
            return
        self._phase2([i for i in items if i.process], flat=not redo)
        self._finish(items)

    def _stored(self, items: list[_Item]) -> None:
        """The raw messages are committed: tell whoever asked (enhanced-mode accept ACKs)."""
        for item in items:
            if item.on_stored is not None and item.header is not None:
                try:
                    item.on_stored(item.header, item.early)
                except Exception:  # a listener's callback must not stop the batch
                    log.exception("on_stored callback failed")

    def _one_commit(self, items: list[_Item]) -> None:
        """The whole batch in one transaction: the new raw messages, inserted once with their
        final status, the resources they became, the fidelity counters and the audit records.
        Raises (nothing written) when anything fails, for ``_run_batch_now`` to redo the batch the
        two-commit way: raw messages first, then each message in its own savepoint.

        Why one commit: the raw messages' commit was a second commit per batch, and each message
        document was written twice (inserted ``received``, replaced ``processed``), its raw bytes
        with it. Durability holds: the ACKs go out after this commit, so an ACKed message is on
        disk with everything it became; a crash before the commit leaves nothing of the batch,
        and none of it was ACKed, so the senders send it again and it is processed once. The
        envelope decisions (idempotency lookups) are made before the transaction, under the lock
        that serialises this ingestor's changes of message documents; another process storing
        the same message meanwhile makes the insert fail, and the redo decides again inside its
        transaction."""
        new_docs: list[Document] = []
        self._decide(items, new_docs)
        for item in items:
            item.early = item.outcome
        todo = [i for i in items if i.process]
        self._prepare(todo)
        events: list[dict[str, Any] | Facts] = []
        if self.audit is not None:  # refused at the envelope: audited first, as the two-commit way does
            events += [_audit_event(i, "4", None, self.origin) for i in items
                       if i.in_batch_new and i.channel != "http" and i.outcome is not None]
        unstored = [d for d in new_docs if d["status"] != RECEIVED]  # the envelope's quarantine
        self._unstored = unstored
        t0 = time.perf_counter()
        # the batch's versions, for its later messages (``_Dates.pending``): this batch's alone, as
        # ``_phase2`` keeps them -- left from batch to batch, every message's ``_Dates`` (its item, raw
        # bytes, conversion and the message documents it read) stayed reachable for the life of the
        # engine, and a later batch's dating was handed them again (thirty-sixth round, perfi36b)
        self._stamped = {}
        try:
            self._write_batch(todo, events=events, then=lambda: self.messages.insert_many(unstored), strict=True)
        finally:
            self._stamped = {}
            self._unstored = None
            self.stats.seconds["commit"] += time.perf_counter() - t0 - sum(self._write_seconds.values())
            self._write_seconds = {"repository": 0.0, "audit": 0.0}

    def _phase1(self, items: list[_Item]) -> None:
        """Decide each message's fate from its envelope and store the new ones (one commit)."""
        new_docs: list[Document] = []
        self._decide(items, new_docs)
        self.messages.insert_many(new_docs)
        if self.audit is not None:  # refused at the envelope: audited here, in the same commit
            for item in items:
                if item.in_batch_new and item.channel != "http" and item.outcome is not None:
                    self.audit.record(_audit_event(item, "4", None, self.origin))

    def _decide(self, items: list[_Item], new_docs: list[Document]) -> None:
        """Each message's fate from its envelope and the message store: a resend, a conflict, a
        refusal, or new; the new documents go to ``new_docs`` (not stored here)."""
        in_batch: dict[str, _Item] = {}
        # every addressable message's key looked up in one query (one SELECT each was ~8 us a message)
        keys: list[str | None] = []
        apps: list[str] = []
        for i in items:
            h = i.header
            addressable = h is not None and h.addressable
            keys.append(message_id(h.facility_code, h.control_id) if h is not None and addressable else None)
            apps.append(h.application_code if h is not None and addressable else "")
        stored = self.messages.get_many([k for k in keys if k is not None])
        owners = {k: application_of(d) for k, d in stored.items()}
        # a pair taken by another application: the message's own id, looked up too (``engine.messages``)
        # and the conflict id the code before (MSH-10 per institution) quarantined the same bytes under
        taken = [t for i, k, app in zip(items, keys, apps, strict=True)
                 if i.header is not None and k in owners and owners[k] != app
                 for t in (sender_id(i.header.facility_code, app, i.header.control_id), conflict_id(k, i.sha256))]
        if taken:
            stored.update(self.messages.get_many(taken))
        for item, key, app in zip(items, keys, apps, strict=True):
            h = item.header
            assert h is not None
            if key is None:
                item.doc_id = anonymous_id(item.sha256)
                fatal = [p for p in h.problems if p.ack_code == "AR"] or h.problems
                self._new_or_existing(item, new_docs, in_batch, status=QUARANTINED, errors=fatal, ack="AR")
                continue
            earlier = in_batch.get(key)
            existing = earlier.doc if earlier is not None else stored.get(key)
            reclaimed = False
            if existing is not None and (owners[key] if earlier is None else application_of(existing)) != app:
                plain, key = key, sender_id(h.facility_code, app, h.control_id)  # another sender's pair
                item.sender_key = collided(app)
                earlier = in_batch.get(key)
                existing = earlier.doc if earlier is not None else (
                    stored[key] if key in stored else self.messages.get(key))
                if existing is None:
                    earlier, existing, reclaimed = self._old_conflict(item, plain, app, in_batch, stored)
                    if existing is not None:
                        key = existing["_id"]
            if existing is not None and existing["sha256"] == item.sha256:
                if earlier is not None:
                    item.same_as = earlier
                    item.doc_id = key
                elif existing["status"] == RECEIVED or reclaimed:  # stored earlier, never finished
                    item.doc_id, item.doc, item.process = key, existing, True
                    in_batch[key] = item
                else:
                    item.doc_id, item.doc = key, existing
                    item.outcome = self._recorded(item, existing)
                continue
            if existing is not None:
                item.doc_id = conflict_id(key, item.sha256)
                err = HL7Error(
                    f"message control id {h.control_id!r} from {h.facility_code!r} was already received "
                    "with different content; this one is kept for the operator and not processed",
                    segment="MSH", sequence=1, field=10, code=DUPLICATE_KEY_IDENTIFIER, ack_code="AE")
                self._new_or_existing(item, new_docs, in_batch, status=QUARANTINED, errors=[err], ack="AE",
                                      conflict_of=key)
                self.stats.conflicts += 1
                continue
            item.doc_id = key
            envelope = self._envelope_errors(h)
            if envelope:
                ack = "AR" if any(e.ack_code == "AR" for e in envelope) else "AE"
                self._new_or_existing(item, new_docs, in_batch, status=QUARANTINED, errors=envelope, ack=ack,
                                      absent=True)
                continue
            self._new_or_existing(item, new_docs, in_batch, status=RECEIVED, errors=[], ack=None, absent=True)
            item.process = True

    def _new_or_existing(self, item: _Item, new_docs: list[Document], in_batch: dict[str, _Item], *,
                         status: str, errors: list[HL7Error], ack: str | None,
                         conflict_of: str | None = None, absent: bool = False) -> None:
        """``absent``: the caller has just looked ``item.doc_id`` up, in the batch and the store."""
        assert item.doc_id is not None and item.header is not None
        earlier = None if absent else in_batch.get(item.doc_id)
        existing = None if absent else earlier.doc if earlier is not None else self.messages.get(item.doc_id)
        if existing is not None:
            if earlier is not None:
                item.same_as = earlier
            else:
                item.doc = existing
                item.outcome = self._recorded(item, existing)
            return
        h = item.header
        doc = self.messages.new_document(
            item.doc_id, item.raw, item.sha256, facility=h.facility_code, application=h.application_code,
            control_id=h.control_id, processing_id=sent_id(h.processing_id, h.component_sep),
            channel=item.channel, peer=item.peer, message_type=message_type_of(h), version=h.version,
            codec=h.codec, status=status, errors=errors, ack_code=ack, conflict_of=conflict_of,
            encoded=_encoded(item))
        new_docs.append(doc)
        item.doc = doc
        item.in_batch_new = True
        in_batch[item.doc_id] = item
        if status == QUARANTINED:
            item.errors = errors
            item.outcome = self._outcome(item, ack or "AE", errors, QUARANTINED)
            if ack == "AR":
                self.stats.rejected += 1
            self.stats.quarantined += 1

    def _envelope_errors(self, h: Header, accepted_before: bool = False) -> list[HL7Error]:
        """What refuses a message at its envelope (``AR``/``AE``); notes for the ACK go on ``h.notes``.
        ``accepted_before``: the repository holds it as clinical data already (a replay, ``_item_for``)."""
        errors = list(h.problems)
        # a version id that is not numbers and dots ("V2", "2.5.1x", "Z9") was read by its digits,
        # none at all read as 2.5.1: accepted as a version it does not name (twenty-first round)
        if h.version and not (_VERSION_ID.fullmatch(h.version)
                              and SUPPORTED_VERSIONS[0] <= version_tuple(h.version) <= SUPPORTED_VERSIONS[1]):
            errors.append(HL7Error(f"HL7 version {h.version!r} is not supported (2.3 to 2.8)", segment="MSH",
                                   sequence=1, field=12, code=UNSUPPORTED_VERSION_ID, ack_code="AR"))
        # MSH-11: a processing id this node does not accept is refused (v2.5.1 2.9.2.1), never stored as
        # clinical data; a declared sender's T read as P, an empty one as P, said in ``h.notes``
        judged = judge(h.processing_id, h.component_sep, h.version, h.facility_code, h.application_code,
                       self.site, self.processing_ids)
        if accepted_before:
            judged = kept_accepted(judged, self.processing_ids)
        errors += judged.refusals
        if judged.notes or h.notes:  # (none for a plain P: ``judge``'s fast path)
            h.notes = [n for n in h.notes if n.field != 11 or n.segment != "MSH"] + list(judged.notes)
        institutions = getattr(self.site, "institutions", None) or {}
        if h.facility_code not in institutions:
            errors.append(HL7Error(
                f"sending facility {h.facility_code!r} is not a registered institution "
                "(institutions.yaml of the site)" if h.facility_code else "sending facility (MSH-4) is empty",
                segment="MSH", sequence=1, field=4, component=1, code=TABLE_VALUE_NOT_FOUND, ack_code="AR"))
        return errors

    def _prepare(self, items: list[_Item]) -> None:
        """Parse, convert and validate outside any transaction (once: a redone batch keeps it).
        When Provenances are signed, a conversion whose Provenance names a target it does not
        write is refused here, before anything of it is written (``_unsigned_target``)."""
        todo = [i for i in items if not i.converted or i.converted_for != i.sender_key]
        # the batch's conversions so far, in message order, with their items: what a later message's
        # settling sees as written before it (a D in the batch of the message adding the diagnosis)
        earlier: list[Any] = []
        owners: list[_Item] = []
        redo = {id(i) for i in todo}
        for item in items:
            if id(item) not in redo:  # converted and settled before (a redone batch): as it was
                if item.conversion is not None:
                    earlier.append(item.conversion)
                    owners.append(item)
                continue
            item.resources = item.named = None
            item.conversion, item.errors = (None, [_poisoned()]) if item.poison else self._convert(item)
            item.converted, item.converted_for = True, item.sender_key
            item.leaned_on = []
            if item.conversion is not None and item.decided is not None and item.decided.kind == "owner":
                # the held renumberings the operator took as the number's owner's (``persons._may_renumber``; reg41)
                item.conversion.decided_renumbers = _decided_renumbers(item.decided_against)
            # what the converter cannot know without the store (a resource stored under an earlier key,
            # a visit-less DG1-20's Condition, a DG1-21 D's stored diagnosis): ``Conversion.settle_against_store``
            settle = getattr(item.conversion, "settle_against_store", None)
            if settle is not None:
                try:
                    leaned = settle(getattr(self.repository, "read_many", None),
                                    getattr(self.repository, "search", None), earlier, messages=self.messages,
                                    merge=getattr(self.repository, "merge", None))
                    item.leaned_on = [owners[i] for i in leaned or ()]
                except HL7Error as exc:
                    item.conversion, item.errors = None, [exc]
                    # refused counting on earlier messages of the batch: settled again if one is not written
                    item.leaned_on = [owners[i] for i in getattr(exc, "leaned_on", None) or ()]
                except Exception:
                    # not settled: a redo of the batch converts and settles it again rather than keeping an
                    # unsettled conversion as "converted and settled before" (it was then written AA with the
                    # person guard never asked: rv46e HIGH 2); the exception fails the batch as any other
                    item.converted = False
                    raise
            if item.conversion is not None and self.sign is not None:
                unsigned = _unsigned_target(_resources(item), _named(item))
                if unsigned is not None:
                    item.conversion, item.resources, item.named, item.errors = None, None, None, [unsigned]
            if item.conversion is not None:
                earlier.append(item.conversion)
                owners.append(item)
        self._validate(todo)

    def _settled_again(self, item: _Item, again: set[int]) -> None:
        """In ``_write_each``, before ``item`` is written: settled against the batch's earlier messages'
        writes it counted on, and one of them is not written (quarantined, or itself settled again) or not
        written whole (``_leans_on_held``) -- converted and settled again, against the store as the messages
        before it left it (message order: a refused message rolls back only itself). ``again``: the ``id`` of
        each item redone so."""
        if not item.leaned_on or not (_leans_on_held(item) or any(
                id(d) in again or d.outcome is None or d.outcome.status != PROCESSED for d in item.leaned_on)):
            return
        item.converted = False
        self._prepare([item])
        again.add(id(item))

    def _phase2(self, items: list[_Item], flat: bool = True) -> None:
        """Convert, then write everything in one commit (``flat``: first without a savepoint per
        message, see ``_write_batch``)."""
        if not items:
            return
        self._stamped = {}
        t0 = time.perf_counter()
        try:
            # (inside: a conversion or its settling that raises answers the batch AE, the raw kept ``received``
            # for the sender's resend, as a failed commit does -- not an exception out of the listener)
            self._prepare(items)
            t0 = time.perf_counter()  # (the commit's seconds: the conversion's are its own)
            if not flat or not self._write_batch(items):
                self._stamped = {}  # (what the flat attempt wrote was rolled back)
                self._write_each(items)
        except Exception as exc:
            # the batch could not commit (database trouble): the raw messages are safe and stay
            # ``received``; the senders get AE and resend, or recovery finishes them on restart
            log.exception("could not commit %d processed messages", len(items))
            for item in items:
                item.outcome = self._internal_error(item, exc, status=RECEIVED)
            if isinstance(exc, UndoIncomplete):  # (a replay's or recovery's batch, ``_write_batch``)
                self._left_stored(items, exc)  # what stayed stored is noted, or no replay rewrites it
        # what the batch transaction cost beyond the repository and audit calls: status updates,
        # fidelity counters, savepoints and the commit itself
        self.stats.seconds["commit"] += (time.perf_counter() - t0 - sum(
            self._write_seconds.values()))
        self._write_seconds = {"repository": 0.0, "audit": 0.0}
        self._stamped = {}  # (needed within the batch only: it holds the batch's messages)

    def _write_each(self, items: list[_Item]) -> None:
        """Write a batch message by message, so that a message that fails is quarantined with
        nothing of it stored and the others are stored: each in a savepoint of one transaction
        where the store has savepoints (SQLite), else (``store.savepoints`` False: MongoDB, whose
        nested blocks join the outer one) each in a top-level block of its own -- on a replica set
        a multi-document transaction that aborts, on a standalone server or mongomock a block
        whose writes are undone (``mongo_store._Undo``) -- and the quarantine of a failing one in
        another block after it.

        Why not one transaction there: a nested block that fails cannot be undone alone, so the
        message's writes made before its failure stayed stored while it was quarantined (AE),
        and a replay found them unchanged: no new versions, so the write hooks that had refused
        it never ran again and it was answered AA. A message commits alone on MongoDB anyway
        (this path is rare: a batch whose one-commit write failed, or a replay)."""
        again: set[int] = set()
        if getattr(self.store, "savepoints", True):
            with self.store.transaction():
                for item in items:
                    self._settled_again(item, again)
                    self._write(item)
            return
        for item in items:
            self._settled_again(item, again)
            attempts = int((item.doc or {}).get("attempts") or 0) + 1
            saved = replace(self.stats, seconds=dict(self.stats.seconds))
            try:
                with self.store.transaction():
                    self._write(item, strict=True)
            except Exception as exc:
                self.stats = saved  # nothing of it was counted as stored
                item.refs, item.owners = None, {}
                if isinstance(exc, UndoIncomplete):
                    # writes of it stayed stored: not quarantined ("nothing kept" would be false), the
                    # raw message stays ``received`` for replay once an operator has seen this
                    log.error("message %s not processed and kept for replay: %s", item.doc_id, exc)
                    item.outcome = self._internal_error(item, exc, status=RECEIVED)
                    self._left_stored([item], exc)
                    continue
                try:
                    with self.store.transaction():
                        self._failed(item, exc, attempts)
                except Exception as trouble:  # database trouble: the raw message stays ``received``
                    log.exception("could not quarantine message %s", item.doc_id)
                    item.outcome = self._internal_error(item, trouble, status=RECEIVED)

    def _left_stored(self, items: list[_Item], exc: UndoIncomplete) -> None:
        """Mark ``items`` kept for replay (``_Item.kept``) and note on each message document which
        of its resources' versions a failed block left stored (``UndoIncomplete.left``:
        ``Type/id/_history/n`` of each FHIR version it could not take back), so that its replay
        writes them again with their hooks while they are still current
        (``write_many(rewrite=...)``).

        Why: such a version is stored exactly as the replay converts it again, so the replay found
        it unchanged, made no new version, and the write hooks that never ran for it (recognition
        flags and index entries, the patient index, referrals) never ran at all; the message was
        answered AA with them missing. Why the version: a resource shared by the messages of a
        batch (the Organization, the ordering Practitioner) is noted on each of them, and a
        thin create-only Patient may be written over by the ADT feed before the replay; written
        again whatever its current version, it got a new version on every replay (hooks handed a
        stale previous) and the lab's thin Patient was put back over the ADT's. Best effort: a
        store that fails here is already failing, and the operator's log names what stayed
        stored -- except the registrar's mark of the records the message registers, which fails
        closed: held in the process when it cannot be written (``trail.hold``, regfix34)."""
        for item in items:
            item.kept = True
        left = left_versions(exc.left)
        marked: list[tuple[_Item, list[str]]] = []
        for item in items:
            if item.doc_id is None or item.conversion is None:
                continue
            own = {ref: left[ref] for r in _resources(item) if type(rid := r.get("id")) is str
                   and (ref := f"{r.get('resourceType')}/{rid}") in left}
            if own:
                noted = left_versions((item.doc or {}).get(UNDO_LEFT) or ())
                noted.update(own)  # this failure's versions are the latest word
                marked.append((item, sorted(ref if n is None else f"{ref}/_history/{n}" for ref, n in noted.items())))
        if not marked:
            return
        # a registration's Provenance left stored without its message filed: the registrar walks (registry34);
        # a result's, order's or update's cannot say who registered anyone (``_registered_of``, regfix34)
        registered = set().union(*(_registered_of(item) for item, _ in marked))
        try:
            with self.store.transaction():
                for item, refs in marked:
                    self.messages.messages.update(item.doc_id, {UNDO_LEFT: refs})  # type: ignore[arg-type]
                trail.mark(self.store, registered, "writes left stored")
        except Exception:
            log.exception("could not note on %d message(s) which of their writes stayed stored", len(marked))
            trail.hold(self.store, registered, "writes left stored")  # fails closed (rvregistry34 finding 7)

    def _convert(self, item: _Item, count: bool = True) -> tuple[Any, list[HL7Error]]:
        """Parse and convert ``item``: the conversion, else the errors that answer it. ``count``: its parse and
        convert seconds go to the ingest figures (``/admin/metrics``); False for a stored message read again to be
        shown (``owner_barred``: opening a held message is no ingest -- rv41j LOW 4, regfix41c)."""
        seconds = self.stats.seconds if count else dict.fromkeys(("parse", "convert"), 0.0)
        h = item.header
        assert h is not None
        if not item.in_batch_new:  # judged at ``_decide`` when stored by this batch, under this lock and site;
            # again for a replay or recovery, which may meet a changed site
            envelope = self._envelope_errors(h, item.accepted_before)
            if envelope:
                return None, envelope
        if self.parse is None or self.convert is None or self.orderless is None:
            return None, [HL7Error("no converter is installed in this engine; message kept for replay",
                                   code=APPLICATION_INTERNAL_ERROR, ack_code="AE")]
        t0 = time.perf_counter()
        text = item.text
        if not text:
            # the set the header was read in, the HTTP charset too when MSH-18 is empty (hl7fix28)
            text, _ = decode(item.raw, h.override or h.charset or h.transport, h.extensions)
        try:
            message = self.parse(text, h.read_in)  # the set the text was read in, for \X..\ escapes too
        except HL7Error as e:
            seconds["parse"] += time.perf_counter() - t0
            return None, [e]
        except Exception as exc:
            seconds["parse"] += time.perf_counter() - t0
            log.exception("parser failed on message %s", item.doc_id)
            return None, [HL7Error(f"message could not be parsed: {type(exc).__name__}: {exc}",
                                   code=APPLICATION_INTERNAL_ERROR)]
        # a line the message's structure does not hold (a raw line break in OBX-5 whose next line reads as
        # a segment): refused, never stored cut (``structure.unexpected_segment``; hl7fix29)
        unexpected = unexpected_segment(message)
        # then each segment's place in its message structure: AE 100 only where it changes what is stored,
        # else ERR W (``sequence.judged``: structure.yaml, the sender's senders.yaml ``message_structure``)
        refused, placed = (None, []) if unexpected is not None else judged_sequence(
            message, self.site, h.facility_code, h.application_code, orderless=self.orderless)
        t1 = time.perf_counter()
        seconds["parse"] += t1 - t0
        if unexpected is not None:
            return None, [unexpected]
        if refused is not None:
            return None, [refused]
        try:
            conversion = (self.convert(message, self.site, institution=h.facility_code, application=item.sender_key)
                          if item.sender_key else self.convert(message, self.site, institution=h.facility_code))
        except HL7Error as e:
            return None, [e]
        except FhirError as e:
            return None, [HL7Error(f"conversion failed: {e.diagnostics}", code=APPLICATION_INTERNAL_ERROR)]
        except Exception as exc:
            log.exception("converter failed on message %s", item.doc_id)
            return None, [HL7Error(f"conversion failed: {type(exc).__name__}: {exc}",
                                   code=APPLICATION_INTERNAL_ERROR)]
        finally:
            seconds["convert"] += time.perf_counter() - t1
        if placed:
            conversion.warnings[:0] = placed  # answered and counted (fidelity) as the converter's own
        return conversion, []

    def _validate(self, items: list[_Item]) -> None:
        """Validate the converted resources of the whole batch type by type, before any is written
        (the repository's ``valid_groups``: a type's validator stays warm in the CPU caches);
        a message found invalid is validated again by its write, which quarantines it as always."""
        valid_groups = getattr(self.repository, "valid_groups", None)
        converted = [item for item in items if item.conversion is not None]
        if valid_groups is None or not converted:
            return
        t0 = time.perf_counter()
        for item, ok in zip(converted, valid_groups([self._to_validate(i) for i in converted]),
                            strict=True):
            item.validated = ok
        self.stats.seconds["repository"] += time.perf_counter() - t0

    def _to_validate(self, item: _Item) -> list[dict[str, Any]]:
        """The converted resources the batch validation must look at: all but those built from a
        compiled plan that the validator finds valid by their holes (``Validator.valid_planned``).
        When Provenances are signed, the message's Provenance is left out too: it is never written
        as converted, but with its targets pinned to the stored versions (and signed) by a write
        of its own that validates it (``_write_signed``); checking it here was the same work twice."""
        resources = _resources(item)
        planned = getattr(item.conversion, "planned", None)
        validator = getattr(self.repository, "validator", None)
        if not planned or validator is None or not hasattr(validator, "valid_planned"):
            if self.sign is not None:
                return [r for r in resources if r.get("resourceType") != "Provenance"]
            return resources
        signed = self.sign is not None
        return [r for r, ref in zip(resources, _named(item), strict=True)
                if not (signed and r.get("resourceType") == "Provenance")
                and ((p := planned.get(ref)) is None or not validator.valid_planned(r, p))]

    def _write_signed(self, resources: list[dict[str, Any]], create_only: set[str], source: str,
                      validated: bool = False,
                      deferred: list[tuple[dict[str, Any], list[bytes], str]] | None = None,
                      named: list[str | None] | None = None, rewrite: Sequence[str] = (),
                      held: Callable[[], frozenset[str]] | None = None,
                      decided: Callable[[], Decision | None] | None = None) -> tuple[list[Any], _Listing]:
        """Store the message's resources, then its Provenance signed over what was stored; returns
        the write results and what the pipeline keeps of the written resources (``_listing``).

        The Provenance is written last so that its targets name the exact versions filed
        (``Type/id/_history/n``) and its signature covers their stored bytes (a manifest of their
        SHA-256, ``engine.audit.provenance.sign_stored``), which anyone with the audit public key
        can check later (``verify_provenance``).
        ``deferred``: the Provenance is not written here but added there, versioned, with its
        targets' stored bytes and its writer, for ``_write_provenances`` to sign with the batch's
        and write. A Provenance naming a target this message did not store raises (``_versioned``).
        ``named``: the resources' references made before (``_named``), for ``_listing``.
        ``rewrite``: resources a failed block left stored without their hooks (``_left_stored``).
        ``held``: the resources the merge left as stored because this message was older than the one
        that stored them (``MergeRules.held``): its Provenance names none of their versions (it stated
        none of them, rvmsgtime33 finding 11) -- unless they are all it names (a target is required).
        ``decided``: the operator's decision the merge used (``_Dates.used``): the Provenance names the
        operator as an agent beside the sender (order35) -- asked once the resources are merged, as
        ``held`` is (without signing, the Provenance is written with them and names nobody more).
        """
        assert self.repository is not None
        others: list[dict[str, Any]] = []
        provenances: list[dict[str, Any]] = []
        for r in resources:
            (provenances if r.get("resourceType") == "Provenance" else others).append(r)
        checked: dict[str, Any] = {"validated": True} if validated else {}
        if rewrite:
            checked["rewrite"] = set(rewrite)
        if self.sign is None or not provenances:
            results = self.repository.write_many(resources, create_only=create_only, source=source, **checked)
            return results, _listing(resources, named=named)
        if deferred is not None and self.sign_many is not None:
            results = self.repository.write_many(others, create_only=create_only, source=source, **checked)
            listing = _listing(resources, results, named)
            provenances = _as_merged(provenances, held, decided)
            deferred.extend((prov, targets, source) for prov, targets in self._versioned(provenances, listing.stored))
            return results, listing
        # one backend put for the resources and their Provenance (the hooks run after both)
        group = getattr(self.repository, "group", None)
        with group() if group is not None else contextlib.nullcontext():
            return self._write_then_sign(resources, others, provenances, create_only, source, checked, named, held,
                                         decided)

    def _write_then_sign(self, resources: list[dict[str, Any]], others: list[dict[str, Any]],
                         provenances: list[dict[str, Any]], create_only: set[str], source: str,
                         checked: dict[str, Any], named: list[str | None] | None = None,
                         held: Callable[[], frozenset[str]] | None = None,
                         decided: Callable[[], Decision | None] | None = None) -> tuple[list[Any], _Listing]:
        assert self.repository is not None and self.sign is not None
        results = self.repository.write_many(others, create_only=create_only, source=source, **checked)
        listing = _listing(resources, results, named)
        provenances = _as_merged(provenances, held, decided)
        signed = [self.sign(prov, targets) for prov, targets in self._versioned(provenances, listing.stored)]
        return results + self.repository.write_many(signed, source=source), listing

    @staticmethod
    def _versioned(provenances: list[dict[str, Any]], stored: dict[str, Any],
                   ) -> list[tuple[dict[str, Any], list[bytes]]]:
        """Each Provenance with its targets naming the versions stored (``Type/id/_history/n``),
        and the stored bytes of those versions, to be signed.

        Every target names a resource this message stored: ``_prepare`` refused the conversion
        otherwise (``_unsigned_target``), before any write. Should one not (a write that returned
        no result for it), an ``HL7Error`` says so and the message is quarantined
        (``_failed``); before, such a Provenance was stored unsigned without a word
        (``sign_stored`` itself refuses an unversioned target with a ValueError, which ingest
        therefore never meets).

        Why the bytes: the write path has just serialised each version (``WriteResult.body``);
        signing a manifest of their SHA-256 replaced a second serialisation of the same ~19 KB
        (the RFC 8785 form of the targets) per 12-OBX message. ``stored``: ``Type/id`` -> the write
        result of the message's resources written before the Provenance (``_listing``)."""
        out: list[tuple[dict[str, Any], list[bytes]]] = []
        for prov in provenances:
            pinned: list[dict[str, Any]] = []
            bodies: list[bytes] = []
            for t in prov.get("target", []):
                ref = t.get("reference") if type(t) is dict else None
                r = stored.get(ref) if type(ref) is str else None
                if r is None:
                    raise _unsignable(t)
                pinned.append({**t, "reference": f"{ref}/_history/{r.version}"})
                bodies.append(r.body if r.body is not None else fhirjson.dumps(r.resource))
            out.append(({**prov, "target": pinned}, bodies))
        return out

    def _write_provenances(self, deferred: list[tuple[dict[str, Any], list[bytes], str]]) -> None:
        """Sign the batch's Provenances with one signature (``sign_many``: each carries its own
        inclusion path, so each verifies alone) and write them, one ``write_many`` per writer.

        Why: signing each message alone cost an Ed25519 signature and a JWS per message. A
        Provenance write that reports issues (no hook does today) fails the batch, which is
        then written message by message, each Provenance signed alone and its issues in its ACK."""
        if not deferred:
            return
        assert self.repository is not None and self.sign_many is not None
        signed = self.sign_many([(prov, targets) for prov, targets, _ in deferred])
        by_source: dict[str, list[dict[str, Any]]] = {}
        for one, (_, _, source) in zip(signed, deferred, strict=True):
            by_source.setdefault(source, []).append(one)
        group = getattr(self.repository, "group", None)
        with group() if group is not None else contextlib.nullcontext():
            results = [r for source, provs in by_source.items()
                       for r in self.repository.write_many(provs, source=source)]
        if any(getattr(r, "issues", None) for r in results):
            raise RuntimeError("a Provenance write reported issues: the batch is written message by message")

    def _write_batch(self, items: list[_Item], *, events: list[dict[str, Any] | Facts] | None = None,
                     then: Callable[[], None] | None = None, strict: bool = False) -> bool:
        """Write the whole batch in one transaction without a savepoint per message; False (and
        nothing written, nothing counted) when any message fails, for the caller to redo the
        batch one savepoint per message so that only the failing message is quarantined.
        ``events``: audit records to record first; ``then``: more writes at the end of the same
        transaction; ``strict``: raise instead of returning False.

        Why: a savepoint copies every page a message touches into the statement journal once
        more, and the index pages of consecutive messages are the same pages (measured ~0.3-0.5 ms
        per 12-OBX message). Messages rarely fail once converted, so the redo is rare. The audit
        events are recorded after every message is written, so a redo never records one twice.
        """
        stats = replace(self.stats, seconds=dict(self.stats.seconds))
        events = list(events or [])
        fidelity: list[Fidelity] = []
        deferred: list[tuple[dict[str, Any], list[bytes], str]] = []
        # SQLite: no savepoints for the nested blocks either (repository, message store, hooks)
        flat = getattr(self.store, "flat_transaction", None) or self.store.transaction
        # the current versions of every resource the batch writes, read in one call (a failure
        # fails the whole flat transaction, so what the repository keeps of them stays true)
        known = getattr(self.repository, "known_current", None)
        resources = [r for item in items if item.conversion is not None for r in _resources(item)]
        keys = [(r["resourceType"], r["id"]) for r in resources if isinstance(r.get("id"), str)]
        try:
            with flat(), known(keys) if known is not None else contextlib.nullcontext(), \
                    contextlib.ExitStack() as scopes:
                planned = {ref: p for item in items if item.conversion is not None
                           for ref, p in item.conversion.planned.items()} if self.batch_scopes else {}
                for scope in self.batch_scopes:
                    scopes.enter_context(scope(resources, planned))
                for item in items:
                    if _leans_on_held(item):  # (settled on what an earlier message did not write: settle again)
                        raise _SettleAgain(f"message {item.doc_id} counted on a claim the merge held")
                    self._write(item, strict=True, audit_events=events, fidelity=fidelity, provenances=deferred)
                t0 = time.perf_counter()
                self._write_provenances(deferred)
                self._account("repository", time.perf_counter() - t0)
                if then is not None:
                    then()
                self.messages.count_fidelity_many(fidelity)
                if self.audit is not None and events:
                    t0 = time.perf_counter()
                    # one audit transaction for the batch's records (a commit each cost ~30 µs/msg)
                    for result in self.audit.record_many(events):
                        if isinstance(result, Exception):
                            raise result
                    self._account("audit", time.perf_counter() - t0)
        except Exception as exc:
            if strict or isinstance(exc, UndoIncomplete):  # (writes left stored: no redo over them)
                raise
            log.info("a batch of %d messages failed as a whole (%s: %s); writing it message by message",
                     len(items), type(exc).__name__, exc)
            stats.redone_batches += 1
            self.stats = stats
            self._write_seconds = {"repository": 0.0, "audit": 0.0}
            for item in items:
                item.outcome = None
            return False
        return True

    def _write(self, item: _Item, *, strict: bool = False, audit_events: list[dict[str, Any] | Facts] | None = None,
               fidelity: list[Fidelity] | None = None,
               provenances: list[tuple[dict[str, Any], list[bytes], str]] | None = None) -> None:
        """Store one message's resources and its new status: inside a savepoint of the batch, or
        (``strict``) straight in the batch transaction, any failure raised to ``_write_batch``.
        ``audit_events``, ``fidelity`` and ``provenances`` collect what the batch records, signs
        and writes once for all its messages."""
        assert item.doc_id is not None and item.header is not None
        attempts = int((item.doc or {}).get("attempts") or 0) + 1
        if item.conversion is None:
            self._quarantine(item, item.errors, attempts, audit_events)
            return
        resources = _resources(item)
        warnings = [*item.header.notes, *(getattr(item.conversion, "warnings", None) or [])]  # MSH-level first
        current = item.doc
        rewrite: list[str] = []
        if current is not None and UNDO_LEFT in current:  # see ``_left_stored``: cleared once processed
            rewrite = current[UNDO_LEFT] or []
            current = {k: v for k, v in current.items() if k != UNDO_LEFT}
        try:
            with contextlib.nullcontext() if strict else self.store.transaction():
                t0 = time.perf_counter()
                create_only = getattr(item.conversion, "create_only", None) or ()
                # the writer, for the merge rules, is the message type (MSH-9.1): ORM, ORU, ADT ...
                # (and what it deleted with HL7's explicit null "": merge11, engine.merge_rules)
                said = getattr(item.conversion, "said", None)  # (and what the rules read: the repository)
                # (this write's: a batch redone message by message holds them again); first the settle steps' holds
                # (``Conversion.held``: a renumbering another application registered the number of; reg41)
                item.held_claims = [dict(c) for c in getattr(item.conversion, "held", None) or ()]
                dates = _Dates(item, self.messages, self.site, self._stamped)
                with (self.repository.merge.saying(said, self.repository, dates)
                      if self.repository is not None else contextlib.nullcontext()):
                    held = self.repository.merge.held if self.repository is not None else None
                    try:
                        results, listing = (self._write_signed(resources, set(create_only), item.header.message_code,
                                                               validated=item.validated, deferred=provenances,
                                                               named=_named(item), rewrite=rewrite, held=held,
                                                               decided=dates.used)
                                            if self.repository is not None else ([], _listing(resources)))
                    except FhirError as exc:  # (a comparison not told came first: the refusal says it -- not a race)
                        if self.repository is not None and not isinstance(exc, Conflict):
                            self.repository.merge.refused()
                        raise
                    if self.repository is not None:  # (every comparison not told, refused together: ordfix36)
                        self.repository.merge.refused()
                    kept = held() if held is not None else frozenset()
                    item.decision_used = item.decided is not None and dates.used() is not None
                item.unchanged = _unchanged(listing.stored, current,
                                            lambda ref, version, written: self._made_again(dates, ref, version, written))
                for ref, written in listing.stored.items():  # (a later message of this batch dates them by it)
                    version = getattr(written, "version", None)
                    if version is not None and ref not in kept:
                        self._stamped.setdefault(f"{ref}/_history/{version}", []).append(dates)
                t1 = time.perf_counter()
                self._account("repository", t1 - t0)
                gaps: list[dict[str, str]] = []  # the maps' gaps the merge found: counted, not answered (code37)
                unmapped_noted = getattr(item.conversion, "unmapped", None) or []
                for result in results:
                    for issue in getattr(result, "issues", None) or []:
                        if (gap := gap_of(issue)) is not None:
                            gaps.append(_gap_entry(gap, issue, result.resource, unmapped_noted))
                        else:
                            warnings.append(_issue_to_warning(issue))
                # the converter's warnings the write takes back (an ORC-5 W of an order the write left completed:
                # ``Conversion.taken_back_by_write``); the conversion keeps them, a batch redone message by message asks again
                taken_back = getattr(item.conversion, "taken_back_by_write", None)
                gone = taken_back(listing.stored) if taken_back is not None else []
                if gone:
                    warnings = [w for w in warnings if all(w is not g for g in gone)]
                refs = listing.refs
                item.owners = listing.owners  # the audit names each patient whose records it wrote
                self.messages.mark_processed(item.doc_id, ack_code="AA", warnings=warnings,
                                             resources=refs, attempts=attempts, current=current,
                                             unstored=self._unstored if item.in_batch_new else None,
                                             held=_held_versions(item.held_claims, listing),
                                             decided=item.decision_used if item.decided is not None else None,
                                             unchanged=sorted(item.unchanged))
                # who registered a record: kept with the filing, in its transaction (registry34)
                self.messages.note_registrations(item.doc_id, current, _registered_of(item, current))
                institution = getattr(item.conversion, "institution", None) or item.header.facility_code
                conv_warnings = [w for w in getattr(item.conversion, "warnings", None) or () if all(w is not g for g in gone)]
                unmapped = [*unmapped_noted, *gaps]
                if conv_warnings or unmapped:
                    counted = Fidelity(institution, list(conv_warnings), list(unmapped), item.doc_id)
                    if fidelity is not None:
                        fidelity.append(counted)
                    else:
                        self.messages.count_fidelity_many([counted])
                item.refs = refs  # not into item.doc: that stays the stored document (see mark_processed)
                if self.audit is not None and item.channel != "http":  # HTTP requests are audited per request
                    t2 = time.perf_counter()
                    event = _audit_event(item, "0", listing, self.origin)
                    if audit_events is not None:
                        audit_events.append(event)
                    else:
                        self.audit.record(event)
                    self._account("audit", time.perf_counter() - t2)
        except Exception as exc:
            if strict:
                raise
            self._failed(item, exc, attempts)
            return
        self.stats.processed += 1
        item.outcome = self._outcome(item, "AA", warnings[:MAX_ACK_WARNINGS], PROCESSED)

    def _failed(self, item: _Item, exc: Exception, attempts: int) -> None:
        """Quarantine a message whose resources could not be stored, with the reason."""
        if isinstance(exc, HL7Error):
            # the converter's warnings that may be why (``HL7Error.with_refusal``: PID-21's mistyped mother's number)
            why = [w for w in getattr(item.conversion, "warnings", None) or () if w.with_refusal and w is not exc]
            self._quarantine(item, [exc, *why[:MAX_ACK_WARNINGS]], attempts)
        elif isinstance(exc, Untimely):  # (located: ERR-2 at the result's OBX-11, or MSH-7)
            at = field_of(exc.location or "")
            # ERR-3 is the sender's, never 207 (huren's fault: retried unchanged): its own MSH-7 not a
            # usable time, 102 data type error; a stored result its message cannot be ordered against,
            # 206 application record locked -- held until an operator decides (tfix34, README)
            code = DATA_TYPE_ERROR if at is not None and at[0] == "MSH" else APPLICATION_RECORD_LOCKED
            # one ERR a version it could not date, each at its own field (``Untimely.more``: every one
            # recorded, so the operator's one decision covers them all -- rvfixord35 LOW 4, ordfix36)
            errors = [HL7Error(f"not written: {one.diagnostics}", code=code,
                               **({"segment": w[0], "sequence": w[1], "field": w[2]} if w else {}))
                      for one in (exc, *exc.more)[:MAX_ACK_WARNINGS] for w in [field_of(one.location or "")]]
            self._quarantine(item, errors, attempts,
                             against=exc.versions if code == APPLICATION_RECORD_LOCKED else ())
        elif isinstance(exc, FhirError):
            where = ", ".join(exc.expression or [])
            text = f"FHIR resource rejected ({exc.status}): {exc.diagnostics}" + (f" at {where}" if where else "")
            self._quarantine(item, [HL7Error(text, code=APPLICATION_INTERNAL_ERROR)], attempts)
        else:
            log.error("storing the resources of message %s failed", item.doc_id, exc_info=exc)
            self._quarantine(item, [HL7Error(f"storing the converted resources failed: {type(exc).__name__}",
                                             code=APPLICATION_INTERNAL_ERROR)], attempts)

    def _made_again(self, dates: _Dates, ref: str, version: Any, written: Any) -> bool:
        """Whether this message -- processed again, its document filed before the list was kept -- made version
        ``version`` of ``ref`` (written at ``written``), by ``_made_by``'s choice among it and the stored messages
        whose Provenances name the version (``merge_rules.replayed_made``; ``_unchanged`` asks it only then).
        Every Provenance naming ``ref`` is read, page after page, and those naming the version kept, as the merge
        reads them (``MergeRules._provenances``); a message no longer kept is a ``Stamp`` without a receipt."""
        assert self.repository is not None
        target, found, offset = f"{ref}/_history/{version}", [], 0
        while True:
            page = self.repository.search("Provenance", [("target", ref), ("_count", "1000"), ("_offset", str(offset))])
            found += [p for p in page.resources if any(isinstance(t, dict) and t.get("reference") == target
                                                       for t in p.get("target") or ())]
            if not page.has_next or not page.resources:
                break
            offset += len(page.resources)
        return replayed_made(dates.now, dates.of(found), ref, version, written, self.repository)

    def _account(self, stage: str, seconds: float) -> None:
        self.stats.seconds[stage] += seconds
        self._write_seconds[stage] += seconds

    def _quarantine(self, item: _Item, errors: list[HL7Error], attempts: int,
                    audit_events: list[dict[str, Any] | Facts] | None = None, against: Sequence[str] = ()) -> None:
        assert item.doc_id is not None
        ack = "AR" if any(e.ack_code == "AR" for e in errors) else "AE"
        self.messages.quarantine(item.doc_id, ack_code=ack, errors=errors, attempts=attempts, current=item.doc,
                                 unstored=self._unstored if item.in_batch_new else None, against=against,
                                 decided=item.decided is not None)
        if self.audit is not None and item.channel != "http":
            if audit_events is not None:
                audit_events.append(_audit_event(item, "4", None, self.origin))
            else:
                with contextlib.suppress(Exception):
                    self.audit.record(_audit_event(item, "4", None, self.origin))
        refused = [e for e in errors if e.tally is not None and e.tally.count == MEMBER_REFUSED]
        if refused:
            self._member_refused(item, refused, audit_events)
        self.stats.quarantined += 1
        item.outcome = self._outcome(item, ack, errors, QUARANTINED)

    def _member_refused(self, item: _Item, refused: list[HL7Error],
                        audit_events: list[dict[str, Any] | Facts] | None) -> None:
        """A message refused for naming another member institution's record number for another person
        (``adapters.convert.persons._refuse_member``), made visible: its AE tells the sender that the member holds
        a record under the number whose person is another than the one it sent (``demographics.contradicts_all``: name
        and sex, name and a day of birth, or name and the valid resident ID numbers differing) -- an answer that must stay
        (README, "(thirty-sixth round, priv36)"), so a sender probing another member's numbers is counted instead:
        for the member's operator (``/admin/fidelity`` ``member_refused``, keyed by the sending institution and
        application; no example message: the sender's is not the member's to open), in an audit record of its own
        (``member-number-refused``, a DICOM Security Alert: the sender, the authenticated client, the member, the
        counts so far; the HTTP request's own record does not say why it was refused), and, each
        ``member_refusal_alert`` refusals on one member's numbers of one sending institution or one authenticated
        client (``engine.member_refusals``: MSH-3 is free text, a prober rotating it split a count keyed by it --
        rv36d MED 2), an alert: the record says so and the log warns. Written with the quarantine, in its
        transaction when a batch has one.

        Only what the sender sent is counted as the sender's: an operator's replay of the stored bytes is not the
        sender asking again (its own audit record, ``replay``, names the operator and the answer; rv36d MED 1); a
        corrected copy is counted by who replayed it (``member_refusals.counted_under``): the site's operator's is
        the operator's own question, counted for the operator alone (``replay:<operator>``) -- not under the
        sending institution, nor on its per-application row, which count what the sender sent (rv36g: each
        corrected copy moved the sender towards an alert calling it a prober; fid37); one replayed by a caller
        bound to the sending institution is the sender asking, counted under it and on its row too (rv37b MED 2).
        Its record's agent is the replayer, a person as a person (``replay_requestor``; rv37b LOW 3)."""
        assert item.header is not None and item.doc_id is not None
        replay = item.replay
        corrected = replay is not None and "previous_sha256" in replay  # (``MessageStore.reopen``)
        if replay is not None and not corrected:
            return
        operator = str(replay.get("by") or "?") if replay is not None else ""
        keys = counted_under(item.header.facility_code, item.peer, replay)
        if keys["institution"]:  # the sender's: as sent, or its own bound replayer's corrected copy
            self.messages.count_fidelity_many([Fidelity(item.header.facility_code, refused, [], item.doc_id)])
        threshold = self.member_refusal_alert
        client = keys["client"]
        channel = "replay" if replay is not None else item.channel
        for member, sender in dict.fromkeys((e.tally.institution, e.tally.key) for e in refused if e.tally):
            counts = self.refusals.count(member, keys)
            crossed = [c for c in counts.values() if c.crossed(threshold)]
            if crossed:
                log.warning("%s (client %s) has been refused for naming %s's record numbers for other persons: %s "
                            "(HUREN_MEMBER_REFUSAL_ALERT=%d): it may be probing them; see /admin/fidelity",
                            (f"{sender}'s corrected copy replayed by its own {operator}" if keys["institution"]
                             else f"the operator {operator}'s corrected copy of {sender}'s message") if operator
                            else sender,
                            client or "unknown", member,
                            ", ".join(f"{c.key} {c.after} times" for c in crossed), threshold)
            if self.audit is None:
                continue
            mine, theirs = counts.get("institution"), counts.get("client")
            event = facts(
                action="member-number-refused", recorded=now_instant(), start=None, outcome="4",
                desc="refused: names another member institution's record number for another person",
                requestor=replay_requestor(replay) if replay is not None else _sender(item),
                origin=self.origin,
                detail={"message": item.doc_id, "control-id": item.header.control_id, "sender": sender,
                        "client": client or None, "member": member,
                        "refusals": str(mine.after) if mine else None,
                        "client-refusals": str(theirs.after) if theirs else None, "alert-threshold": str(threshold),
                        "alert": ("threshold reached: " + ", ".join(c.key for c in crossed)) if crossed else None,
                        "channel": channel})
            if audit_events is not None:
                audit_events.append(event)
            else:
                with contextlib.suppress(Exception):
                    self.audit.record(event)

    def _finish(self, items: list[_Item]) -> None:
        for item in items:
            if item.outcome is None and item.same_as is not None:
                first = item.same_as.outcome
                if first is not None:
                    self.stats.duplicates += 1
                    item.refs = item.same_as.refs  # what the first wrote, as a resend in a later batch is told
                    item.outcome = self._outcome(item, first.code, first.errors, first.status, duplicate=True)
            if item.outcome is None:
                item.outcome = self._internal_error(item, RuntimeError("message was not processed"))
        for item in items:  # the batch's ACKs built together, once its answers are final
            assert item.outcome is not None
            if not item.outcome.ack:
                self._acked(item, item.outcome)
        for item in items:
            if not item.future.done():
                item.future.set_result(item.outcome)

    # -- ACKs ---------------------------------------------------------------------------
    def _outcome(self, item: _Item, code: str, errors: list[HL7Error], status: str,
                 duplicate: bool = False) -> Outcome:
        """The answer for ``item``, its ACK bytes still empty: ``_finish`` builds the batch's ACKs
        together once its answers are final (``_acked``).

        Why: built where each answer was decided, in the middle of a message's writes, an ACK
        found its template, the header and the encoder cold in the CPU caches every time."""
        stored = item.refs if item.refs is not None else (item.doc or {}).get("resources")
        refs = list(stored or []) if status == PROCESSED else []
        return Outcome(b"", code, item.doc_id, status, list(errors), duplicate, refs, "utf-8",
                       item.owners if status == PROCESSED else {})

    def _acked(self, item: _Item, outcome: Outcome) -> Outcome:
        """``outcome`` with its ACK, in the message's own character set when it can carry it."""
        t0 = time.perf_counter()
        assert item.header is not None
        text = build_ack(item.header, outcome.code, outcome.errors, sending_application=self.receiver_application)
        codec = item.header.codec if not item.header.codec.endswith("?") else "utf-8"
        try:
            outcome.ack = text.encode(codec)
        except (UnicodeEncodeError, LookupError):
            codec, outcome.ack = "utf-8", text.encode("utf-8")
        outcome.codec = codec
        self.stats.seconds["ack"] += time.perf_counter() - t0
        return outcome

    def _recorded(self, item: _Item, doc: Document) -> Outcome:
        """The same answer as the first time, for an identical resend."""
        self.stats.duplicates += 1
        errors = [error_from_dict(e) for e in doc.get("errors") or []]
        return self._outcome(item, doc.get("ack_code") or "AA", errors, doc["status"], duplicate=True)

    def _owner_decidable(self, doc: Document) -> frozenset[str]:
        """The holds (``ref|claim``) an operator's decision that ``doc``'s change is the number's owner's answers
        (``_Dates.owns``): the claims its processing held (``held_claims``), but those under another order's
        number (``elsewhere``: a new order carrying it would be a second order with one accession). Raises
        ``AlreadyDecided`` when nothing is held and its last decision was this one (a second request: applied
        once), ``NotDecidable`` when nothing else is, ``RecordChanged`` when an order was written since the
        hold -- the decision would be about a version the operator was not shown (as ordfix35's "as later"):
        a plain replay holds it again against what is stored now (ord40)."""
        claims = [c for c in doc.get("held_claims") or () if isinstance(c, dict) and not c.get("elsewhere")]
        last = (doc.get("replays") or [{}])[-1]
        if doc.get("status") == RECEIVED and last.get("as") == "owner":  # (reopened by a decision, in flight)
            if DECIDING in doc and doc[DECIDING] is None:  # (its failure left writes stored: ``put_back(written=)``)
                raise NotDecidable(f"the decision of {last.get('by')} (asked at {last.get('at')}) failed at the store "
                                   "with writes of the message left stored: replay it plainly to file it as it is "
                                   "(its change held again), then decide")
            raise NotDecidable(f"it is being taken as the owner's by {last.get('by')} (asked at {last.get('at')}): "
                               "ask again in a moment to see that decision (a decision the store failed is put back "
                               "at once; one whose process stopped is taken up again at the service's next start)")
        if not claims:
            prior = doc.get("decision") or {}
            if prior.get("as") == "owner" and prior.get("used"):
                raise AlreadyDecided(prior)
            why = ("it holds only another order's number, which no decision makes this order's"
                   if doc.get("held_claims") else "nothing of it was held as another application's change")
            raise NotDecidable(f"the message is {doc.get('status')} and {why}: there is nothing to decide")
        if doc.get("status") != PROCESSED:
            raise NotDecidable(f"the message is {doc.get('status')}, not accepted with a held change")
        changed = []
        # each claim's record, and those it pins beside it (a held merge's MRG-1 record: ``persons._merges_held``) --
        # the operator was shown both; MRG-1's record merged on since had been re-pointed by the decision (rv43d MED 1)
        for claim in claims:
            for ref, version in ((str(claim.get("resource") or ""), claim.get("versionId")),
                                 *((str(p.get("resource") or ""), p.get("versionId"))
                                   for p in claim.get("pinned") or () if isinstance(p, dict))):
                rtype, _, rid = ref.partition("/")
                try:
                    now = str(((self.repository.read(rtype, rid) if self.repository is not None else {}).get("meta")
                               or {}).get("versionId") or "")
                except FhirError:
                    now = ""
                if now != str(version or ""):  # (no version: the record was filed nowhere when held -- an A47's new
                    # identifier, ``persons.leave_unfiled``; filed since by a later message: rv44a LOW, low44b)
                    held = f"held against version {version}" if version else "filed nowhere when held"
                    changed.append(f"{ref} ({held}, now {f'version {now}' if now else 'not readable'})")
        if changed:
            # (a record's: the plain replay holds it again as the message sent now is held -- a record merged since
            # is judged on its survivor's number, ``persons._renumbered_on``; regfix41b -- never taken by it)
            merged = (" (judged as the message sent now would be: a record merged since is judged on its survivor's "
                      "ID number)" if any(c.get("claim") == RENUMBER_CLAIM for c in claims) else "")
            raise RecordChanged(
                f"the {_held_kind(claims)} changed after the hold: {', '.join(changed)} -- the decision is not taken "
                "for a version "
                "you were not shown; replay the message plainly to hold it again against what is stored now"
                f"{merged}, then decide on that")
        return frozenset(f"{c['resource']}|{c['claim']}" for c in claims)

    def owner_barred(self, doc: Document, refs: Collection[str] | None = None) -> dict[str, Barred]:
        """The records of ``doc``'s held renumberings (``held_claims`` of ``persons.RENUMBER_CLAIM``, or ``refs``) whose
        decision is barred (``persons.decision_barred``: the record merged into another, or the number the message
        states held by another record), read now: the message converted again (its PID's numbers as stated -- the
        hold keeps the record, never the number) and the store searched. For the decision (``_renumber_barred``) and
        the operator's view of the message (``GET /admin/quarantine/{id}``: the page says it before the operator
        confirms). Empty when none is held, or the message does not convert now."""
        if refs is None:
            refs = {str(c.get("resource")) for c in doc.get("held_claims") or ()
                    if isinstance(c, dict) and c.get("claim") == RENUMBER_CLAIM and not c.get("elsewhere")}
        if not refs or self.repository is None:
            return {}
        try:
            conversion, _ = self._convert(self._item_for(doc), count=False)
        except Exception:  # (a message that no longer reads: nothing to say of its numbers; its decision's replay says why)
            log.exception("message %s could not be converted to read its held renumbering", doc.get("_id"))
            return {}
        if conversion is None:
            return {}
        search, read_many = getattr(self.repository, "search", None), getattr(self.repository, "read_many", None)
        out = {}
        for ref in sorted(refs):
            barred = decision_barred(conversion, ref, search, read_many)
            if barred is not None:
                out[ref] = barred
        return out

    def _renumber_barred(self, doc: Document, against: frozenset[str]) -> None:
        """Refuse (``NumberNotGiven``, 409) an operator's decision that would give a record a resident ID number
        another record holds, or renumber a record merged into another (``owner_barred``), before anything of the
        message is reopened: naming the other record by its number at the sending institution (the operator reads
        it; never the other person's name or ID number; another member's record by that member's name), and what
        settles it -- advice that can be followed: a merge only after this record's number is corrected, none across
        two members (forty-first round, regfix41b; regfix41c)."""
        barred = self.owner_barred(doc, _decided_renumbers(against))
        if not barred:
            return
        said = []
        for ref, why in barred.items():
            facility = doc.get("facility")
            other = (f"MRN {why.mrn} at {facility}" if why.mrn else
                     f"a record at {why.member}, another member institution" if why.member else
                     f"{why.other}, of no MRN at {facility}")
            if why.merged:
                said.append(
                    f"{ref} was merged into another record ({other}): its ID number is that record's, and a "
                    "renumbering of the record merged away is held again on every replay -- correct the number on that "
                    "record (its registering application, or the operator)")
            elif why.member:  # (another member's record: no merge joins two members' records; the index links them)
                said.append(
                    f"the resident ID number this message states for {ref} is held by another record ({other}): taken, "
                    "the two records would be one person's to the patient index and each resident would read the "
                    "other's record -- if the patient who came is this record's resident and the number is hers, have "
                    "this hospital's registration (its registering application, A08/A31, one the institution declares "
                    "in registration_applications: from any other the change is held again) correct this record's "
                    "number: the index then links the two as one person's; if she is that member's patient on a record picked "
                    "by mistake here, the visit belongs on her own record at this hospital (move it, A45/A44, or "
                    "correct the registration)")
            else:  # (a merge of two records of different valid numbers is refused AE 205: the number off first --
                # rv41j; a change onto the other record's number is held, persons._links_unheld: decl42)
                said.append(
                    f"the resident ID number this message states for {ref} is held by another record ({other}): taken, "
                    "the two records would be one person's to the patient index and each resident would read the "
                    "other's record -- if the patient who came is that record's, the visit belongs on it (move it, "
                    "A45/A44, or correct the registration); if the two are one person, have this record's wrong number "
                    "taken off by its registering application (\"\"^^^^NNCHN) and merge the two records (A40) after -- "
                    "a change of this record's number onto that record's is held again, as no renumbering joins two "
                    "records; if that record's number is wrong, have it corrected first, then decide")
        raise NumberNotGiven("; ".join(said))

    def _internal_error(self, item: _Item, exc: BaseException, status: str = RECEIVED) -> Outcome:
        if item.header is None:
            item.header, item.text = extract_header(item.raw)
        err = HL7Error(f"internal error ({type(exc).__name__}); the message is not processed, resend later",
                       code=APPLICATION_INTERNAL_ERROR, ack_code="AE")
        return self._outcome(item, "AE", [err], status)

    def _audit_replay(self, doc: Document, outcome: Outcome, requestor: Requestor, decided: Decision | None = None,
                      used: bool | None = None) -> None:
        """The replay's audit record: facts, a compact record as every import's (``_audit_event``),
        so it carries its salt (a resident's inclusion proof beside it confirms no guess about it)
        and its AuditEvent is derived when read, like the rest. The requestor is the operator: a system
        client by its id, a signed-in staff member as the person (``member_refusals.replay_requestor``). A replay "as later" says so (``as``), and who decided (order35), and
        whether the decision was used (``used``: it answered a comparison of the write; the sender's own
        older MSH-7 holding the message, it answered nothing -- rvorder35 LOW 5, ordfix35)."""
        patients = [r.split("/", 1)[1] for r in outcome.resources if r.startswith("Patient/")]
        record = facts(action="replay", recorded=now_instant(), start=None,
                       outcome="0" if outcome.code == "AA" else "4", desc=None,
                       requestor=requestor, origin=self.origin, patients=patients,
                       detail={k: v for k, v in (("message", doc["_id"]), ("control-id", doc.get("control_id")),
                                                 ("ack", outcome.code), ("as", decided.kind if decided else None),
                                                 ("decided-by", decided.by if decided else None),
                                                 ("reason", decided.reason if decided else None),
                                                 ("used", ("true" if used else "false") if decided else None))
                               if v})
        with self.store.transaction():
            self.audit.record(record)  # type: ignore[union-attr]


class _NotStored(Exception):
    """A recovered message could not be stored or processed, the database failing
    (``Ingestor._recover_journals``)."""


def _release(items: list[_Item]) -> None:
    """Let go of what a finished batch built (parse trees, conversions, resources, documents)
    before the collector runs again, so that reference counting frees it at once.

    Why: the items outlive the batch (``process`` returns their outcomes; the worker holds the
    batch until its next one), and the young collection that the paused collector owes ran as
    soon as it was resumed, walking every container the batch still held: measured ~95 us per
    12-OBX message in batches of 50, one collection per batch. Freed first, there is little
    left for it to walk, and the allocation count it is triggered by falls back."""
    for item in items:
        item.conversion = item.doc = item.same_as = item.resources = item.named = None
        item.text = ""
        if item.leaned_on:
            item.leaned_on = []


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is processed; the first one after it runs once
    the batch's objects are gone.

    Why: a batch keeps thousands of container objects alive (parse trees, conversions, resources,
    index rows, results) until its commit. Every young collection during the batch walked them,
    found them alive and promoted them, and the middle generation walked them again; most of
    them are freed by reference counting as soon as the batch ends. Measured on 12-OBX lab
    results in batches of 50: 22 young and 1-2 middle collections per 400 messages, ~100-130 us of
    CPU a message, against 3 collections and ~20 us a message when they run between batches.
    The pause is process-wide (other threads' cycles wait too) and lasts one batch. In a settled
    server, what outlives the batch (what the caches kept of it) is then frozen rather than walked
    by the next young collection (``engine.heap.retire``). Counted process-wide
    (``engine.heap.paused``): batches of two ingestors that overlap keep it paused until both end.
    """
    with heap.paused():
        yield


def _unsigned_target(resources: list[dict[str, Any]], named: list[str | None]) -> HL7Error | None:
    """Why a conversion's Provenance cannot be signed, or None: each of its targets must name
    (``Type/id``) another resource of the same conversion, whose stored version the signature
    will cover (``Ingestor._versioned``). Checked before the message is written, so that it is
    quarantined with nothing of it stored, on every backend (MongoDB has no savepoint that
    would undo a message's writes once made). ``named``: the resources' references (``_named``)."""
    provenances = [r for r in resources if r.get("resourceType") == "Provenance"]
    if not provenances:
        return None
    written = {ref for r, ref in zip(resources, named, strict=True) if r.get("resourceType") != "Provenance"}
    for prov in provenances:
        for t in prov.get("target") or ():
            ref = t.get("reference") if type(t) is dict else None
            if type(ref) is not str or ref not in written:
                return _unsignable(t)
    return None


def _unsignable(target: Any) -> HL7Error:
    """The reason a message whose Provenance names a target it did not store is quarantined."""
    named = target.get("reference") if isinstance(target, dict) else None
    what = f"{named!r}, which is not a resource this message stored" if named else "no resource by its reference"
    return HL7Error(f"the message's Provenance target names {what}: it cannot be signed over the stored bytes "
                    "of the versions it names, so the message is kept in the quarantine (a converter defect; "
                    "replay it once fixed)", code=APPLICATION_INTERNAL_ERROR, ack_code="AE")


def _poisoned() -> HL7Error:
    return HL7Error(f"the engine stopped {POISON_DEATHS} times while processing this message, the last time "
                    "with no other message: it is kept in the quarantine unprocessed (replay it once the cause "
                    "is found)", code=APPLICATION_INTERNAL_ERROR, ack_code="AE")




def _registered_of(item: _Item, doc: Document | None = None) -> set[str]:
    """The records (``Patient/x``) ``item``'s message registers (``adapters.convert.persons.registered_by``:
    its event as its document ``doc`` states it, else its header's): the rows its filing writes, the marks
    of what a failed block of it left stored (``Ingestor._left_stored``)."""
    assert item.header is not None
    doc = doc if doc is not None else item.doc
    return registered_by(str((doc or {}).get("message_type") or message_type_of(item.header)), _resources(item))


def _resources(item: _Item) -> list[dict[str, Any]]:
    """The resources of ``item``'s conversion, listed once for the validation, the batch's read of
    current versions and the write (each listed them again)."""
    if item.resources is None:
        # a conversion lists its resources without building its Bundle (``Conversion.resources``)
        listed = getattr(item.conversion, "resources", None)
        item.resources = listed if isinstance(listed, list) else _bundle_resources(item.conversion.bundle)
    return item.resources


@dataclass(slots=True)
class _Listing:
    """What the pipeline keeps of one message's written resources (``_listing``)."""

    refs: list[str]  # ``Type/id`` of each, in order: its message document, its answer, its audit record
    owners: dict[str, list[str]]  # reference -> the patients it belongs to (the audit record's owners)
    stored: dict[str, Any]  # reference -> its write result, of those written before the Provenance
    patients: list[str]  # the ids of its Patient resources, in order (the audit record's patients) ...
    owned: list[str]  # ... then each resource's patients, once each (the record names each once)
    others: list[str]  # the references of the resources other than Patients (the audit record's resources)


def _listing(resources: list[dict[str, Any]], results: Sequence[Any] | None = None,
             named: list[str | None] | None = None) -> _Listing:
    """One pass over a message's resources once written (ids assigned): their references, their
    owners (``engine.audit.events.patients_of``) and, with ``results`` (the write results of the
    resources other than Provenances, in order), each reference's result, which the Provenance's
    targets are pinned to (``Ingestor._versioned``). ``named``: the references made before the
    write (``_named``); a resource that had no id then is named by the one its write gave it.

    Why one pass: the references, the owners and the write results keyed by reference were three
    walks over the same ~19 resources after the write, each making the same ``Type/id`` strings."""
    refs: list[str] = []
    owners: dict[str, list[str]] = {}
    stored: dict[str, Any] = {}
    patients: list[str] = []
    owned: dict[str, None] = {}
    others: list[str] = []
    written = iter(results) if results is not None else None
    for n, r in enumerate(resources):
        rtype = r.get("resourceType")
        result = next(written, None) if written is not None and rtype != "Provenance" else None
        ref = named[n] if named is not None else None
        if ref is None:
            rid = r.get("id")
            if not rid:
                continue
            ref = f"{rtype}/{rid}"
        refs.append(ref)
        if result is not None:
            stored[ref] = result
        if rtype == "Patient":
            patients.append(ref.split("/", 1)[1])
        else:
            others.append(ref)
        whose = patients_of(r)
        if whose:
            owners[ref] = whose
            for p in whose:
                owned[p] = None
    return _Listing(refs, owners, stored, patients, list(owned), others)


def _named(item: _Item) -> list[str | None]:
    """``Type/id`` of each of ``item``'s converted resources (None: no id yet, one is given as it is
    written), made once, right after its conversion, for the check of its Provenance's targets,
    the batch validation's plan look-ups and the listing of what it wrote (each made them)."""
    if item.named is None:
        item.named = [f"{r.get('resourceType')}/{rid}" if type(rid := r.get("id")) is str and rid else None
                      for r in _resources(item)]
    return item.named


def _bundle_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if isinstance(e, dict) and "resource" in e]


def _as_merged(provenances: list[dict[str, Any]], held: Callable[[], frozenset[str]] | None,
               decided: Callable[[], Decision | None] | None) -> list[dict[str, Any]]:
    """``provenances`` as the merge left the message's write, asked once its resources are written
    (``_write_signed``'s ``held`` and ``decided``): without targets it held (``_unheld``), naming the
    operator whose decision it used (``_decided``)."""
    return _decided(_unheld(provenances, held() if held is not None else frozenset()),
                    decided() if decided is not None else None)


def _unheld(provenances: list[dict[str, Any]], held: frozenset[str]) -> list[dict[str, Any]]:
    """``provenances`` without targets naming ``held`` resources (``_write_signed``)."""
    if not held:
        return provenances
    out = []
    for prov in provenances:
        kept = [t for t in prov.get("target") or () if not (type(t) is dict and t.get("reference") in held)]
        out.append({**prov, "target": kept} if kept else prov)
    return out


def undecidable(doc: Document) -> str:
    """Why the operator may not replay ``doc`` "as later" ("" they may): only a message refused because
    the order of it and a stored version cannot be told (``_failed``: ERR-3 206 application record
    locked, from ``Untimely``). Not one whose own MSH-7 is unusable (102): "later" would rest on no
    time of its own, and a corrected copy (its MSH-7 fixed) settles it; nor one refused for anything
    else, nor one no longer refused (order35)."""
    if doc.get("status") != QUARANTINED:
        return f"the message is {doc.get('status')}, not refused: there is nothing to decide"
    codes = {str(e.get("code")) for e in doc.get("errors") or () if e.get("severity", "E") in ("E", "F")}
    if APPLICATION_RECORD_LOCKED in codes:
        return ""
    if any("cannot be told" in str(e.get("message") or "") for e in doc.get("errors") or ()):
        return ("its own MSH-7 is not a usable time (ERR-3 102): it cannot be taken as later than anything; "
                "replay a corrected copy with its MSH-7 fixed")
    return ("it was not refused because its order against a stored result cannot be told (ERR-3 206): "
            "a replay as later decides only that")


class NotDecidable(ValueError):
    """A replay "as later" of a message that was not refused for an order that cannot be told (``undecidable``)."""


def _refused_against(doc: Document) -> frozenset[str]:
    """The stored versions (``Type/id/_history/n``) a message's refusal (ERR-3 206) was told against
    (``MessageStore.quarantine(against=)``); empty for one refused before they were recorded (ordfix35)."""
    return frozenset(f"{e['resource']}/_history/{e['versionId']}" for e in doc.get("refused_against") or ()
                     if isinstance(e, dict) and e.get("resource") and e.get("versionId"))


class AlreadyDecided(NotDecidable):
    """An operator's decision that a message's change is the number's owner's, asked again after it was applied:
    ``decision`` is the one applied (its ``at``, ``by``, ``reason``) -- the request is answered by it, nothing
    written again (ord40)."""

    def __init__(self, decision: Mapping[str, Any]) -> None:
        super().__init__("the message's change was already taken as the number's owner's")
        self.decision = dict(decision)


class DecisionNotWritten(NotDecidable):
    """An owner's decision whose processing failed at the store (``Ingestor._decision_failed``): nothing of it was
    applied. ``again``: the message was put back as it was and the same decision may be asked again in a moment
    (the API's 503 with Retry-After); else it stays ``received`` and the words say what settles it (409) -- never the
    200 with ack AE it was answered before, whose message then stayed "being taken" (rv40i MED 1, dfix40)."""

    def __init__(self, message: str, *, again: bool) -> None:
        super().__init__(message)
        self.again = again


class NumberNotGiven(NotDecidable):
    """An operator's decision on a held renumbering that would give the record a resident ID number another record
    holds, or renumber a record merged into another (``Ingestor._renumber_barred``; regfix41b): nothing reopened."""


class RecordChanged(NotDecidable):
    """A replay "as later" of a message whose refusal's stored versions have changed since (or were
    never recorded): the decision would answer for a record the operator was not shown (ordfix35)."""


def _decided(provenances: list[dict[str, Any]], decided: Decision | None) -> list[dict[str, Any]]:
    """``provenances`` naming the operator who decided the message is later (``Decision.agent``) beside
    its sender, when the merge used their decision."""
    if decided is None:
        return provenances
    return [{**prov, "agent": [*(prov.get("agent") or ()), decided.agent]} for prov in provenances]


class _Dates:
    """The message times one message's write compares (``engine.message_time.Dates``, for the merge
    rules' ``until_later``): this message's (its MSH-7 and sender as sent, its receipt), read only
    when a comparison asks; a stored version's message, found as ``adapters.convert.persons`` finds a
    Provenance's message (the filed document of its (institution, MSH-10) pair listing it); and the
    versions written by earlier messages of the batch (``Ingestor._stamped``), whose Provenances are
    not written yet (rvmsgtime33 finding 5)."""

    __slots__ = ("_item", "_messages", "_site", "_batch", "_now", "_filed", "_told", "_answered")

    def __init__(self, item: _Item, messages: MessageStore, site: Any, batch: dict[str, list[_Dates]]) -> None:
        self._item, self._messages, self._site, self._batch = item, messages, site, batch
        self._now: Stamp | None = None
        # (institution, MSH-10) -> its filed documents, read once for this message's write: a panel
        # correcting its twelve results dates each against the one message that stated them all
        # (rvmsgfix34 MED 10: twelve message-store look-ups and twelve re-read MSHs before)
        self._filed: dict[tuple[str, str], list[tuple[Document, Stamp]]] = {}
        # ("Provenance/id", its versionId) -> the Stamps of the messages it names, read once for this
        # message's write: a re-run of a 12-result panel asks the one Provenance that named them all
        # twelve times, each call reading its entities and scanning the messages' resources again
        # (thirty-sixth round, perfi36b). A version is immutable and this message's own Provenances
        # are written after its write, so what a Provenance version told is what it tells
        self._told: dict[tuple[str, str], list[Stamp]] = {}
        self._answered = False  # the operator's decision answered a comparison not told (``decide``)

    def decide(self, why: str, version: str = "") -> Decision | None:
        """The operator's decision, for a comparison against ``version`` -- only one of the stored
        versions the message's refusal was told against (``_Item.decided_against``): a version another
        message wrote since is one the operator was never shown (rvorder35 MED 3), and its comparison
        refuses the message as it would without the decision (``Ingestor.replay``: 409). ``why`` (what
        was not told) is said by the merge's information note; here only that one was answered counts."""
        decided = self._item.decided
        if decided is None or decided.kind != "later" or version not in self._item.decided_against:
            return None
        self._answered = True
        return decided

    def used(self) -> Decision | None:
        """The operator's decision when it answered a comparison of this write (its Provenance names them), or a
        renumbering the conversion's settle held for it (``Conversion.decision_answered``; reg41)."""
        answered = self._answered or bool(getattr(self._item.conversion, "decision_answered", False))
        return self._item.decided if answered else None

    def owns(self, claim: str, ref: str) -> Decision | None:
        """The operator's decision that this message's change under ``claim`` (``KIND|system|value``) of ``ref``
        is the number's owner's: only a decision of that kind (``Decision.kind`` owner), and only for a claim
        the message's hold named (``_Item.decided_against``: ``ref|claim``) -- ord40."""
        decided = self._item.decided
        if decided is None or decided.kind != "owner" or f"{ref}|{claim}" not in self._item.decided_against:
            return None
        self._answered = True
        return decided

    def hold(self, claim: dict[str, Any]) -> None:
        """A claim the merge held (``merge_rules.Owned``): kept with the message (``_Item.held_claims``)."""
        self._item.held_claims.append(claim)

    @property
    def now(self) -> Stamp:
        if self._now is None:
            h = self._item.header
            assert h is not None
            doc = self._item.doc or {}
            institution = str(doc.get("facility") or h.facility_code)
            self._now = stamp(application=h.application_code, institution=institution,
                              msh7=h.timestamp.split(h.component_sep or "^", 1)[0],
                              received_at=doc.get("received_at"), tz=_zone_of(self._site, h.facility_code),
                              label=f"{message_type_of(h)} {h.control_id}",
                              # (MSH-3 as the application the site's aliases name it: ``applications.canonical``)
                              hd=canonical(institution, header_hd(h.sending_application, h.component_sep), self._site),
                              message=h.message_code, placed=_placed(h.message_code, self._item.text),
                              claims=self._claims, unchanged=self._unchanged)
        return self._now

    def _unchanged(self) -> frozenset[str]:
        """``Stamp.unchanged`` of this message as a later message of its batch reads it (``pending``)."""
        return self._item.unchanged

    def _claims(self) -> frozenset[str]:
        """``Stamp.claims`` of this message as a later message of its batch reads it (``pending``): its write's holds."""
        return _held_numbers(self._item.held_claims)

    def of(self, provenances: list[dict[str, Any]]) -> list[Stamp]:
        """The ``Stamp`` of each message the ``provenances`` name (their entities' (institution, MSH-10)
        pairs; the message filed under a pair that lists the Provenance), in their order; a Provenance
        whose message is no longer kept is one ``Stamp`` saying so. Each Provenance version is read
        once for the write (``_told``), the messages of all those not read yet in one query an
        institution (``MessageStore.filed``)."""
        keys = [(f"Provenance/{prov.get('id')}", str((prov.get("meta") or {}).get("versionId") or ""))
                for prov in provenances]
        told = self._told
        unread = [(key, prov) for key, prov in zip(keys, provenances, strict=True) if key not in told]
        if unread:
            self._tell(unread)
        return [st for key in keys for st in told[key]]

    def _tell(self, unread: list[tuple[tuple[str, str], dict[str, Any]]]) -> None:
        """``of`` for the Provenance versions not read yet: their messages read (one query an
        institution, for the pairs not read before), each one's Stamps kept in ``_told``."""
        named: list[tuple[tuple[str, str], list[tuple[str, str]]]] = []  # each and the messages it names
        wanted: dict[str, set[str]] = {}
        for key, prov in unread:
            pairs = []
            for entity in prov.get("entity") or ():
                identifier = (entity.get("what") or {}).get("identifier") or {}
                institution = message_institution(str(identifier.get("system") or ""))
                if institution is not None and identifier.get("value"):
                    pairs.append((institution, str(identifier["value"])))
                    wanted.setdefault(institution, set()).add(str(identifier["value"]))
            named.append((key, pairs))
        for institution, controls in wanted.items():
            fresh = sorted(c for c in controls if (institution, c) not in self._filed)
            if fresh:
                for c in fresh:
                    self._filed[(institution, c)] = []
                for doc in self._messages.filed(institution, set(fresh)):
                    key = (institution, str(doc.get("control_id") or ""))
                    self._filed.setdefault(key, []).append((doc, doc_stamp(doc, self._site)))
        for key, pairs in named:
            if not pairs:  # (a Provenance naming no message states nothing a message said)
                self._told[key] = []
                continue
            ref = key[0]
            found = [st for pair in dict.fromkeys(pairs) for doc, st in self._filed.get(pair, ())
                     if ref in (doc.get("resources") or ())]
            if not found:  # (its message is no longer kept: its time is not known -- said, never skipped)
                label = ", ".join(f"{control} of {institution}" for institution, control in pairs)
                found = [Stamp("", "", None, f"the message that stated it ({label}, {ref}) is no longer kept",
                               None, label)]
            self._told[key] = found

    def pending(self, ref: str) -> list[Stamp]:
        return [dates.now for dates in self._batch.get(ref) or ()]


def doc_stamp(doc: Document, site: Any) -> Stamp:
    """The ``Stamp`` of a stored message: its MSH read again from its raw bytes (MSH-7 as sent)."""
    header, text = extract_header(raw_of(doc))
    facility = str(doc.get("facility") or "")
    claims = _held_numbers(doc.get("held_claims") or ())
    unchanged = frozenset(str(r) for r in doc.get("unchanged") or ())
    return stamp(application=application_of(doc), institution=facility,
                 msh7=header.timestamp.split(header.component_sep or "^", 1)[0],
                 received_at=doc.get("received_at"), tz=_zone_of(site, facility),
                 label=f"{doc.get('message_type') or ''} {doc.get('control_id') or ''}".strip(),
                 hd=canonical(facility, header_hd(header.sending_application, header.component_sep), site),
                 message=header.message_code, placed=_placed(header.message_code, text),
                 claims=lambda: claims, unchanged=lambda: unchanged,
                 # (filed before the release keeping the list: what it left unchanged is told by its receipt, st41)
                 unchanged_kept="unchanged" in doc)


def _unchanged(stored: dict[str, Any], doc: Document | None,
               made_again: Callable[[str, Any, Any], bool] | None = None) -> frozenset[str]:
    """The resources (``Type/id``) a message's write left as they were stored (``WriteResult.changed`` False: no
    new version) -- its Provenance names the version it found, which it did not make (``Stamp.unchanged``). A
    message processed again (an operator's replay, a recovery) finds what its first processing made unchanged:
    those stay its own (``doc``: its document as stored, what that processing wrote and did not find unchanged),
    or a version would be left with no maker at all. A document filed before the list was kept (no ``unchanged``)
    does not say what its first processing made: a version found that was written before the message was received
    is none of its making (``message_time.written_before_receipt``) -- its replay had made the old release's
    re-send the maker of the version it names after all (review rv40m MED 3; forty-first round, st41). With a
    store to read (``made_again``: ``Ingestor._made_again``), it keeps exactly what ``_made_by`` reads as its
    making among every message naming the version (``merge_rules.replayed_made``: the receipt rule, the first by
    arrival, never none) -- the unchanged re-send of an old BHS batch, received with the P before either was
    written, listed the P's version as its own and became its second maker (review rv41l MED 2); an old NW
    whose receipt was stamped after its write (the clock stepped back) listed its own version as unchanged and
    the order's number had no storer (stfix41's LOW; forty-second round, prior42)."""
    found = frozenset(ref for ref, written in stored.items() if getattr(written, "changed", True) is False)
    if not found or not doc:
        return found
    made = set(doc.get("resources") or ()) - set(doc.get("unchanged") or ())
    if "unchanged" not in doc:
        received = aware_instant(doc.get("received_at"))

        def at(ref: str) -> Any:
            return aware_instant(((getattr(stored[ref], "resource", None) or {}).get("meta") or {}).get("lastUpdated"))

        for ref in found & made:
            version = getattr(stored[ref], "version", None)
            if (not made_again(ref, version, at(ref)) if made_again is not None and version is not None
                    else written_before_receipt(received, at(ref))):  # (no store, no version: the receipt alone)
                made.discard(ref)
    return found - made


def _held_kind(claims: Iterable[dict[str, Any]]) -> str:
    """What a message's holds are about, in the words of its refusal to decide: "order" (ord40's), "record" (a
    resident ID number's: ``persons.RENUMBER_CLAIM``; reg41), or both."""
    kinds = {"record" if c.get("claim") == RENUMBER_CLAIM else "order" for c in claims}
    return " and ".join(k for k in ("order", "record") if k in kinds) or "order"


def _decided_renumbers(against: Iterable[str]) -> frozenset[str]:
    """The records (``Patient/x``) whose held renumbering an owner's decision answers: the holds (``ref|claim``,
    ``Ingestor._owner_decidable``) of the record's resident ID number (``persons.RENUMBER_CLAIM``)."""
    return frozenset(ref for ref, _, claim in (h.partition("|") for h in against) if claim == RENUMBER_CLAIM)



class _SettleAgain(Exception):
    """A message of a one-commit or flat batch was settled against an earlier message's conversion that the merge
    did not write whole (``_leans_on_held``): the batch is written message by message instead, where it is settled
    again against the store (``_settled_again``)."""


def _leans_on_held(item: _Item) -> bool:
    """Whether ``item`` was settled against an earlier message of its batch (``leaned_on``) whose write held a claim
    (``held_claims``: a third application's CA of the order, a filler number another application stored). A settle
    step reads an earlier message's resources as its conversion states them; a held claim leaves the order as it
    was stored -- the EMR's held CA was read as the order revoked, and the RIS's report by its accession alone
    completed the other order of the accession in a batch where one by one it named two (W 205; review rv41d
    MED 5, forty-first round, xofix41). Settled again on the store the earlier writes left, it decides as one by
    one. Rare: a batch's message that counted on another's and that other's claim held."""
    return any(d.held_claims for d in item.leaned_on)


def _held_numbers(claims: Iterable[Any]) -> frozenset[str]:
    """The order numbers (``KIND|system|value``) a message's change was held under: of its write's holds
    (``_Item.held_claims``) or of a stored message's (its document's ``held_claims``) -- ``Stamp.claims``."""
    return frozenset(str(c.get("claim")) for c in claims if isinstance(c, dict))


def _held_versions(claims: list[dict[str, Any]], listing: _Listing) -> list[dict[str, Any]]:
    """The claims a message's write held, each with the version of its order the write left (``versionId``:
    the one it wrote, else the one stored) -- an operator's decision is about that version, and one written
    since is a record they were not shown (``Ingestor._owner_decidable``; as ordfix35 binds "as later")."""
    out = []
    for claim in claims:
        written = listing.stored.get(str(claim.get("resource")))
        version = getattr(written, "version", None) or claim.get("judged")  # (not written: the one held against)
        out.append({**claim, **({"versionId": str(version)} if version else {})})
    return out


def _placed(message_code: str, text: str) -> Callable[[], frozenset[str]]:
    """``Stamp.placed`` of a message: ``placed_numbers`` read on the first ask, once."""
    read: list[frozenset[str]] = []

    def placed() -> frozenset[str]:
        if not read:
            read.append(placed_numbers(message_code, text))
        return read[0]
    return placed


def _zone_of(site: Any, facility: str) -> str:
    inst = (getattr(site, "institutions", None) or {}).get(facility)
    return str(getattr(inst, "timezone", None) or DEFAULT_ZONE)


def _gap_entry(value: str, issue: dict[str, Any], order: dict[str, Any],
               noted: list[dict[str, str]]) -> dict[str, str]:
    """A ``mapping_gap`` issue as the unmapped-code entry the conversion would have noted (``Context.note_unmapped``:
    kind ``code`` at the field that stated it, ``OBR-4``): one counter for every code the maps do not know.

    What the gap is goes with it (``gap``), so the fidelity row says it (``engine.messages.GAP_ROWS``): the
    order's text naming no item (``order`` -- the ServiceRequest the issue was found on -- coded by nothing,
    its text the value: ``order_text``), or a code its map knows with no item (``no_item``: a code no map
    knows the conversion counted already, under the same key, and keeps its row). Both had read "unmapped
    code" (review rv37c LOW; thirty-eighth round, codedoc38)."""
    at = field_of((issue.get("location") or ("",))[0])
    entry = {"kind": "code", "code": value, **({"where": f"{at[0]}-{at[2]}"} if at is not None else {})}
    code = order.get("code")
    if isinstance(code, dict) and not code.get("coding") and str(code.get("text") or "").strip() == value:
        entry["gap"] = "order_text"
    elif not any(u.get("code") == value and u.get("where", "") == entry.get("where", "") for u in noted):
        entry["gap"] = "no_item"
    return entry


def _issue_to_warning(issue: dict[str, Any]) -> HL7Error:
    text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code", "warning")
    severity = "I" if issue.get("severity") == "information" else "W"
    # the field that stated the value (``ORC[1]-5``, engine.merge_rules.located/field_of): ERR-2 (mfix12)
    at = field_of((issue.get("location") or ("",))[0])
    # ERR-3: the table 0357 code the merge gave (204 for an order's test held from an application that did not
    # store its number: ``merge_rules.Owned``), else 0 -- the message accepted
    code = next((str(c.get("code")) for c in (issue.get("details") or {}).get("coding") or ()
                 if isinstance(c, dict) and c.get("system") == V2_0357 and c.get("code")), MESSAGE_ACCEPTED)
    if at is not None:
        return HL7Error(str(text), segment=at[0], sequence=at[1], field=at[2], code=code,
                        severity=severity, ack_code="AA")
    return HL7Error(str(text), code=code, severity=severity, ack_code="AA")


def _sender(item: _Item) -> Requestor:
    """The sending institution as the requestor of its import (``requestor_agent`` kind
    ``institution``: DICOM 110153 Source Role ID), with the address it sent from."""
    assert item.header is not None
    address = item.peer.split(" ")[0].rsplit(":", 1)[0] if item.peer and not item.peer.startswith("file:") else ""
    return (INSTITUTION, item.header.facility_code or "?", address or None, None, None, None, None, None)


def _audit_event(item: _Item, outcome: str, written: _Listing | None, origin: str) -> Facts:
    """The audit record of one HL7 v2 message imported outside HTTP (MLLP, replay of files,
    recovery): its facts, the compact record an HTTP interaction's is (``engine.audit.record``),
    whose AuditEvent is derived when the log is read, by ``build_event``, exactly as it was built
    here before.

    Why: the complete AuditEvent of a 12-OBX import is ~7 KB of JSON (an entity per resource, each
    with its codings and owner details), built per message (~60 us) and appended (~85 us, most of
    it that JSON, its hash and its insert); its facts are ~2 KB of references and pairs, written by
    orjson in one call. ``written``: what the message wrote (``_listing``), None when nothing:
    its patients (the Patient resources, then each resource's owners) and its other resources
    were sorted out as it was listed."""
    h = item.header
    assert h is not None and item.doc_id is not None
    return facts(
        action="hl7v2-receive", recorded=now_instant(), start=None, outcome=outcome, desc=None,
        requestor=_sender(item), origin=origin,
        patients=[*written.patients, *written.owned] if written is not None else (),
        resources=written.others if written is not None else (), owners=item.owners,
        detail={k: v for k, v in (("message", item.doc_id), ("control-id", h.control_id),
                                  ("message-type", message_type_of(h)), ("channel", item.channel)) if v},
    )


def build_ingestor(engine: Any) -> Ingestor:
    """The ingestor of an ``Engine``: its store, site, the HL7 parser and converters, repository and audit."""
    from adapters.convert import convert
    from adapters.convert.results import orderless
    from adapters.hl7v2.parser import parse
    from engine.audit.keys import log_origin
    from engine.audit.provenance import sign_stored

    return Ingestor(
        engine.store,
        site=engine.site,
        parse=parse,
        convert=convert,
        orderless=orderless,
        repository=engine.repository,
        audit=engine.audit,
        origin=log_origin(engine.settings),
        sign=lambda provenance, bodies: sign_stored([(provenance, bodies)], engine.audit.keys)[0],
        sign_many=lambda pairs: sign_stored(pairs, engine.audit.keys),
        journal=InFlightJournal(engine.settings.data_dir / "inflight"),
        processing_ids=engine.settings.accepted_processing_ids,
        member_refusal_alert=engine.settings.member_refusal_alert,
        # the write hooks' reads and writes kept per batch
        batch_scopes=[engine.identity.batch, engine.recognition.batch, engine.referrals.batch],
    )
