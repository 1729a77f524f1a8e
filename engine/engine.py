"""``Engine``: the one object that wires huren's parts together from a ``Settings``.

No module-level state anywhere: the FastAPI app, the MLLP listener and the CLI all take an
``Engine``; tests build their own with a temporary data directory. Each part is a plain object
with the collaborators it needs passed in, so the wiring below is the whole dependency graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from typing import Any

from adapters.convert.his import stated_by_client
from adapters.convert.persons import marked_by_client
from adapters.convert.results import stand_in_by_client
from conformance.validate import Validator
from engine import booking_as_sent, carried_numbers, store_template
from engine.audit.derived import AuditViews, WithAuditViews
from engine.audit.keys import AuditKeys, log_origin
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.auth.service import AuthService
from engine.auth.staff_session import StaffAuth
from engine.document_labels import DocumentLabels
from engine.identity.mpi import IdentityService
from engine.identity.mpi import load_or_create_key as load_or_create_identity_key
from engine.ingest import build_ingestor
from engine.measures import load as load_measures
from engine.measures import publish as publish_measures
from engine.merge_rules import MergeRules
from engine.recognition.coding import institution_from_codes, item_for, item_named, resource_codings
from engine.recognition.rules import Rules
from engine.recognition.service import Recognition
from engine.referral.service import Referrals
from engine.referral.workflow import is_referral
from engine.repository.fhir import FhirRepository
from engine.repository.port import Store, is_new_store
from engine.repository.scoped import DeletedLabels, confined_rules
from engine.repository.sqlite_store import SqliteStore
from engine.result_labels import CITATIONS, ResultLabels
from engine.settings import Settings
from mappings.site import Site


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # (a new SQLite store copied from this process's template when an earlier start made one: ``store_template``)
        self.store, template = store_template.open_store(settings)
        with _closed_if_it_fails(self), _starting(self.store):
            # the site data (institutions, code maps, mapping tables), read once and shared by ingest and
            # recognition; ``reload_site`` swaps it for both at once
            self.site = Site.load(settings)
            # R4 structure + huren's rules, run by the repository on every write
            self.validator = Validator.from_settings(settings)
            # ... and the site's merge rules: how each writer's version combines with the stored one
            self.repository = FhirRepository(self.store, validator=self.validator, base_url=settings.fhir_base_url,
                                             merge=MergeRules.from_site(self.site))
            # ... whose searches read a resident ID number under the site's national ID systems as the identity
            # reads it (``SearchParser._as_number``: ``...x`` is ``...X``; nfix40)
            self.repository.parser.number_systems = number_systems(self.site)
            self.auth = AuthService(settings, store=self.store)
            # The MPI links Patients at ingest (a repository write hook) and gives residents their compartment.
            self.identity = IdentityService(self.store, self.repository,
                                            key=load_or_create_identity_key(settings.data_dir))
            self.auth.attach_identity(self.identity)
            # ... and says, for the merge rules, whether two Patient records are one person's (one order
            # number, two patients: merge.yaml ``another_person``)
            self.repository.persons = self.identity
            # named staff (auditors, operators, clinicians) signed in to the pages with password + TOTP
            self.staff = StaffAuth(settings, self.store)
            # audit trail: every HTTP interaction (engine.audit.middleware) and non-HTTP event is appended
            # to the signed log (its own file on SQLite), and shown per patient as FHIR AuditEvents,
            # derived from the log on read, so residents can search who touched their record
            # (engine.audit.view, engine.audit.derived)
            self.audit_store = open_audit_store(settings, self.store)
            # (the audit file's start is NOT one transaction: the log's thread, started just below, reads its
            # tables through its own connection at once -- "no such table: audit_files" until a start-long
            # transaction committed; found by the lead's fresh-clone run, thirty-first round)
            self.audit = AuditLog(self.audit_store, settings, AuditKeys.load(settings), repository=self.repository)
            self.repository.backend = WithAuditViews(self.repository.backend, AuditViews(self.audit, self.repository.indexer))
            self.audit.start()
            # mutual recognition: order-time check and duplicate flags, run as a repository write hook
            self.recognition = Recognition.for_engine(self)
            # a replacement order inherits a re-test reason only for the same test (``inherits``): one
            # recognition item under two codes is that test too (convmend19)
            self.repository.merge.same_test = self._same_item
            # indicators (recognition rate, the insurer's cost and referral figures): Measure definitions
            # are site data, stored as FHIR Measures and evaluated into MeasureReports on request
            self.measures = load_measures(settings.site)
            publish_measures(self.repository, list(self.measures.by_id.values()))
            # two-way referral: the referral Task's workflow (a write hook) and the per-referral rows
            self.referrals = Referrals.for_engine(self)
            # a document's text (an MDM's OBX Observations) and its addenda carry the document's label as stored
            labels = DocumentLabels(self.repository, audit=self.audit, origin=log_origin(settings), store=self.store)
            self.repository.add_mark(labels.mark, types={"Observation", "DocumentReference"})
            # and a document's write owns its text: raised, it raises the text it did not write; edited, the
            # paragraphs its content no longer holds are no longer its text (``DocumentLabels.written``)
            self.repository.add_write_hook(labels.written, types={"DocumentReference"})
            # and an edit's text is the document's text: the feed's marked copies of paragraphs it no longer
            # holds are deleted, audited, once the group is stored (``DocumentLabels.settled``, old37)
            self.repository.add_batch_hook(labels.settled)
            # a record citing a result (a report, a panel, a diagnosis's evidence) carries the result's label:
            # given as it is written, and again when the result's label rises; once for an older store
            # (``left_out_when`` names none since labelfix28: a referral citing an R/V result takes its label;
            # the referral condition is still given for a site's list that names it)
            results = ResultLabels(self.repository, {"referral": lambda r: is_referral(r, self.referrals.rules.workflow)})
            self.repository.add_mark(results.mark, types=set(CITATIONS))
            self.repository.add_batch_hook(results.written)
            results.backfill()
            # a record deleted while labelled stays withheld where a search decides from labelled ids (last20a)
            DeletedLabels(self.repository).attach()
            # SCH-2 as-sent copies an earlier release kept under every hospital's ``urn:huren:id:<HD-1>`` moved, once,
            # under their senders' ``urn:huren:id:<MSH-4>:<HD-1>`` (``engine.booking_as_sent``; ord39)
            booking_as_sent.backfill(self.repository)
            # merges filed before id40's carry (an earlier release's A40) given it, once: the record merged away's ID
            # number on its survivor, marked carried-from it, audited (``engine.carried_numbers``; a40b41)
            carried_numbers.backfill(self.repository, self.audit, log_origin(settings), self.site)
            # a FHIR client's entered-in-error of a Condition is marked hers where the writer is known: a feed's
            # DG1 stating the diagnosis again undoes only the feed's own D (``his.withdrawn_by_sender``, dgfix26)
            self.repository.add_statement(stated_by_client, types={"Condition"})
            # and huren's stand-in mark on a report's code is the converter's: a FHIR client's write does not set
            # it (``results.stand_in_by_client``; codefix37)
            self.repository.add_statement(stand_in_by_client, types={"DiagnosticReport"})
            # ... and so is its filed-as-own mark on a Patient's identifier (``persons.marked_by_client``; idfix39)
            self.repository.add_statement(marked_by_client, types={"Patient"})
            # HL7 v2 ingest: message store + quarantine, the pipeline behind MLLP and POST /hl7v2
            self.ingestor = build_ingestor(self)
            # the tables and indexes the parts asked for, created together (SqliteStore._schema_statement):
            # there before anything else, another process included, looks at the file
            if isinstance(self.store, SqliteStore):
                self.store.flush_schema()
                store_template.settle(self.store, template)  # (the tables asked, as a template's are)
            # MSH-11 T/D messages stored as clinical data before it was judged (hl7mode29): counted once, logged
            self.ingestor.messages.census_processing_ids()
        # the start is over: what the store holds from now on this process wrote, and an upgrade run
        # again (a tool, a test emptying a marker) scans as on any store (``is_new_store``)
        self.store.created = False
        self.audit_store.created = False

    def reload_site(self) -> Site:
        """Re-read the site files and the recognition rules (``POST /admin/reload``, ``SIGHUP``).

        Both are loaded before either is swapped in: a mistake in any file raises its precise
        ``SiteError`` (any site or rules file) and leaves the running site and rules in force.
        """
        fresh = Site.load(self.settings)
        merge = MergeRules.from_site(fresh)
        measures = load_measures(self.settings.site)
        previous, self.site = self.site, fresh
        try:
            self.recognition.reload()
            self.referrals.reload()
        except Exception:
            self.site = previous
            raise
        self.ingestor.reload_site(fresh)
        merge.same_test = self._same_item
        self.repository.merge = merge
        self.repository.parser.number_systems = number_systems(fresh)
        self.measures = measures
        publish_measures(self.repository, list(measures.by_id.values()))
        return fresh

    def _same_item(self, one: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
        """Two orders for one recognition item (``MergeRules.same_test``), by the running rules. An
        order coded by nothing (OBR-4 text alone: ``^血常规``) is for the item its text names (items.yaml
        ``name``), else none: a result's LFT coding is not the test of a CBC order named by text
        (review rv36c MED 5; thirty-sixth round, xotext36)."""
        rules = self.recognition.rules
        mine = _item_of(dict(one), rules)
        # (one concept asked of itself -- is it an item at all, ``MergeRules._another_test``: read once)
        return mine is not None and (other is one or mine == _item_of(dict(other), rules))

    def close(self) -> None:
        """Release the database and any background work."""
        for close in self._closers():
            close()

    def _closers(self) -> list[Callable[[], None]]:
        """What ``close`` releases, in its order: the ingestor, the audit log (its background thread),
        auth, then the stores. A part a start that raised never made is passed over
        (``_closed_if_it_fails``)."""
        parts = [getattr(self, name, None) for name in ("ingestor", "audit", "auth")]
        audit_store = getattr(self, "audit_store", None)
        if audit_store is not self.store:
            parts.append(audit_store)
        return [part.close for part in (*parts, self.store) if part is not None]

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def number_systems(site: Site) -> frozenset[str]:
    """The identifier systems of national resident ID numbers: the site's ``national_id_system``
    (``mappings/hl7v2/identifiers.yaml``, what the converters write) and ``confined.yaml``'s ``number_systems``
    (the national OID a logical reference carries). A search's token value under one of them is a number
    (``SearchParser._as_number``)."""
    national = (site.tables.get("identifiers") or {}).get("national_id_system")
    return confined_rules().number_systems | ({national} if isinstance(national, str) and national else set())


def _item_of(resource: dict[str, Any], rules: Rules) -> str | None:
    """The recognition item of an order's code: by its codings, or -- none stated -- by its text alone
    when the text is an item's own name. Only here (the merge's ``same_test``), not ``item_for``: a
    name is evidence of which test two statements of one order mean, not a code to recognise by."""
    hit = item_for(resource, rules, institution_from_codes(resource, rules))
    if hit is not None or resource_codings(resource):
        return hit
    code = resource.get("code")
    text = str(code.get("text") or "").strip() if isinstance(code, dict) else ""
    return item_named(text, rules) if text else None


@contextmanager
def _closed_if_it_fails(engine: Engine) -> Iterator[None]:
    """A start that raises (a site file that does not parse, a rule the measures refuse) closes what
    it had opened, as ``Engine.close`` would, before the error goes on: the audit log's background
    thread, started midway, ran on with both stores, the segment's descriptor and the writers' lock
    held, in a process that never got the Engine to close (thirty-second round, perf32). The
    original error is the one raised; a part that cannot close then is passed over."""
    try:
        yield
    except BaseException:
        for close in engine._closers():
            with suppress(Exception):
                close()
        with suppress(Exception):  # a store copied from a template: as the start without one leaves it
            store_template.undo(engine.store)
        raise


def _starting(store: Store) -> AbstractContextManager[None]:
    """An Engine's start on a store this very open created: one transaction.

    Why: a new SQLite store's start ran ~22 transactions of its own (each part's tables and
    indexes, each once-per-store upgrade's marker, the Measures): each COMMIT made every connection
    read the grown schema again, and the reads between them opened a reader connection that the
    close then shut again (~9 ms of CPU of a ~40 ms open+close: thirty-first round, engopen31). In
    one transaction the tables are created as asked, reads go through the writer connection, and
    one COMMIT makes the store; a start that raises leaves what the store's open itself made (the
    FHIR layout), as an interrupted start did before. Decided by ``Store.created`` (the file had no
    table when opened, ``is_new_store``), never by a guess: an existing store's start runs as
    before, each upgrade committing its own work (a long scan holds no one start-long transaction).
    MongoDB: no change (its transactions are per write, see ``mongo_store``)."""
    if isinstance(store, SqliteStore) and is_new_store(store):
        return store.transaction()
    return nullcontext()
