"""``Recognition`` (``Engine.recognition``): the rules applied to what the repository stores.

It registers one repository write hook and one mark (the HR mark on recognisable results). For an order (ServiceRequest) it runs the order-time check, keeps what the order said
when it was placed (reasons, date, what was recognisable) and records a DetectedIssue
"recognisable prior result", returned to the caller as a warning. For a result (DiagnosticReport,
Observation, ImagingStudy) it keeps the compact result index and decides what the repeat of the
test the result belongs to means for payment (``decision.decide``, under the payer's policy): a
DetectedIssue "suspected duplicate test, not payable" with the evidence (possibly "reason
contradicted by records"), a self-pay or a justified re-test, a repeat only reported, or nothing.
Everything runs inside the write's transaction, so a stored result and its flag are committed
together. Three document collections hold the working state:

- ``recognition_results``: the index (see ``engine.recognition.index``);
- ``recognition_checks``: one row per checked order (recognisable results, what became of it) —
  the recognition rate is computed from it;
- ``recognition_flags``: one row per flag (the report rows), with the review history.

This module wires it (the rules, the collections, the write hook's pass over a write group); the
work is in its parts, one module each: ``hr_mark`` (the HR mark), ``batch_scope`` (what a write
group or an ingest batch keeps at hand and reads at once), ``order_time`` (an order's check),
``repeats`` (a test's flag), ``prior_changes`` (repeats decided again when their prior changes),
``corrections`` (ID-number corrections), ``reviews`` (auditors' reviews, CDS choices), over the
shared ``state``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any, Protocol

from engine.insurance.charges import COUNTED_STATUSES, in_currency, line_identity, read_line, stored_at
from engine.recognition import aggregates
from engine.recognition.batch_scope import BatchScope
from engine.recognition.billed_lines import drop_unbilled_once, number_lines_once
from engine.recognition.corrections import IdCorrections
from engine.recognition.facts import (
    ORDER_TYPE,
    RESULT_TYPES,
    FactReader,
    Merges,
    Planned,
    national_id,
    ref_of,
)
from engine.recognition.hr_mark import HRMark
from engine.recognition.index import LISTED_AHEAD, RESULTS, ResultIndex, group_key, window_end, window_start
from engine.recognition.memo import GroupMemo
from engine.recognition.order_time import OrderTime
from engine.recognition.prior_changes import PriorChanges
from engine.recognition.repeats import Repeats
from engine.recognition.reviews import Reviews
from engine.recognition.rules import Institution, Rules, institution_from_site, load_rules, rule_folders
from engine.recognition.state import CARDS, CDS_PLACERS, CDS_REASONS, CHARGES, CHECKS, FLAGS, version_of
from engine.recognition.upgrade import LAYOUT, backfill_final_at, report_days_once
from engine.repository.port import is_new_store

# the types the hook reads back (``read``): the versions of a write group it holds at hand
_READ_BACK = frozenset({"Patient", "Organization", "Encounter", "ServiceRequest", "DetectedIssue"})


SAME_PERSON = "same-person-of-the-index"  # ``rekey_once``'s marker in ``recognition_layout`` (rec17)


class _Entries(Protocol):
    def find(self, filter: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


class PatientIndex(Protocol):
    """What recognition asks of the patient index (``engine.identity.mpi.IdentityService``), the
    one owner of "same person"."""

    links: _Entries
    operator_listeners: list[Callable[[frozenset[str]], None]]

    def same_person_number(self, patient: dict[str, Any], number: str | None = None) -> str | None: ...

    def record(self, patient_id: str) -> dict[str, Any] | None: ...

    def person_compartment(self, patient_id: str) -> frozenset[str]: ...


class Recognition(HRMark, BatchScope, OrderTime, Repeats, PriorChanges, IdCorrections, Reviews):
    """Mutual recognition over one repository. Build with ``Recognition.for_engine(engine)``."""

    def __init__(
        self,
        *,
        store: Any,
        repository: Any,
        settings: Any,
        institutions: Callable[[], dict[str, Institution]] | None = None,
        local_items: Callable[[], dict[str, dict[str, str]]] | None = None,
        local_loinc: Callable[[], dict[str, dict[str, str]]] | None = None,
        rules: Rules | None = None,
        same_person: Callable[[dict[str, Any], str], str | None] | None = None,
        merges: Merges | None = None,
    ) -> None:
        self.store = store
        self.repository = repository
        self.settings = settings
        self._institutions = institutions or (lambda: {})
        self._local_items = local_items or (lambda: {})
        self._local_loinc = local_loinc or (lambda: {})
        self._lock = threading.Lock()
        self._rules = rules or self._load(shared=True)  # (an earlier Engine's of the same files: ``load_rules``)
        self.index = ResultIndex(store.collection(RESULTS), store.collection(LISTED_AHEAD))
        if getattr(store, "fhir", None) is not None:
            backfill_final_at(store)  # entries an earlier release stored without ``final_at``: once
        # the check and flag rows, by key: remembered for one write group (engine.recognition.memo)
        self.checks = GroupMemo(store.collection(CHECKS), ranged=("person", "item", "day"))
        self.flags = GroupMemo(store.collection(FLAGS))
        self._local = threading.local()  # per thread: what one write group's hook call has at hand
        for fields in (["inst", "day"], ["day"], ["item", "day"], ["status", "day"], ["person", "item", "prior_day"]):
            self.flags.ensure_index(fields)
        self.checks.ensure_index(["inst", "day"])
        # an ID-number correction re-checks the orders of a person for an item within a window
        self.checks.ensure_index(["person", "item", "day"])
        self.checks.drop_index(["day"])  # made before; nothing asks the day alone (write cost only)
        self.checks.ensure_index(["patient"])  # an ID-number correction re-checks its orders
        self.charges = store.collection(CHARGES)
        self.charges.ensure_index(["service"])
        self.charges.ensure_index(["ident"])  # the versions of one charge line (``Repeats._line_amount``)
        self.cds_reasons = store.collection(CDS_REASONS)
        self.cards = store.collection(CARDS)
        self.cards.ensure_index(["draft"])  # a draft "recognised" in CDS and placed all the same
        self.cds_placers = store.collection(CDS_PLACERS)
        self.cds_placers.ensure_index(["key"])  # the HIS's HL7 order for a draft, by any placer number
        self.flag_days = store.collection(aggregates.FLAG_DAYS)
        self.check_days = store.collection(aggregates.CHECK_DAYS)
        aggregates.ensure_indexes(self.flag_days, self.check_days)
        self.facts = FactReader(self.read, lambda: self._rules, same_person, merges)
        # (rules, {(institution, item, day): HR marks}) (``_hr_marks``)
        self._marks_kept: tuple[Rules | None, dict[tuple[str, str, date], tuple[tuple[str, str], ...]]] = (None, {})
        if repository is not None:
            repository.add_batch_hook(self.on_write_many)
            add_delete_hook = getattr(repository, "add_delete_hook", None)
            if add_delete_hook is not None:
                add_delete_hook(self.on_delete, types=RESULT_TYPES)
            repository.add_mark(self.mark_hr, types={"Organization", *RESULT_TYPES})  # what mark_hr looks at

    @classmethod
    def for_engine(cls, engine: Any) -> Recognition:
        """Wire to the engine's store and repository; institutions (community, QC) and the local
        code → item entries of each institution's code map come from the site data."""

        def site() -> Any:
            return engine.site  # read once by the Engine; Engine.reload_site swaps it

        def institutions() -> dict[str, Institution]:
            return {code: institution_from_site(inst) for code, inst in site().institutions.items()}

        def local_items() -> dict[str, dict[str, str]]:
            return {code: {local: entry.item for local, entry in cmap.codes.items() if getattr(entry, "item", "")}
                    for code, cmap in site().code_maps.items()}

        def local_loinc() -> dict[str, dict[str, str]]:
            return {code: {local: entry.loinc for local, entry in cmap.codes.items() if getattr(entry, "loinc", "")}
                    for code, cmap in site().code_maps.items()}

        identity: PatientIndex | None = getattr(engine, "identity", None)
        rec = cls(store=engine.store, repository=engine.repository, settings=engine.settings,
                  institutions=institutions, local_items=local_items, local_loinc=local_loinc,
                  same_person=identity.same_person_number if identity is not None else None, merges=identity)
        if identity is not None:
            identity.operator_listeners.append(rec.on_identity_decided)
            # after the index's own write hook (registered when the engine made it): a merge it holds now
            engine.repository.add_write_hook(rec.on_patient_indexed, types={"Patient"})
            rec.rekey_once(identity)
        drop_unbilled_once(rec)  # charge rows an earlier release kept for planned lines: once
        number_lines_once(rec)  # charge rows an earlier release kept without their line number: once
        report_days_once(rec)  # Observations an earlier release dated apart from their report's test: once
        return rec

    def rekey_once(self, identity: PatientIndex) -> int:
        """Once per store (a marker in ``recognition_layout``): the records an earlier release keyed
        by their number although the patient index leaves them out of its person (in conflict,
        unlinked, linked by hand) are keyed again (``on_identity_decided``), their flags and
        reminders decided again. Few records; the index is read by status (a scan, once)."""
        marks = self.store.collection(LAYOUT)
        if marks.get(SAME_PERSON) is not None:
            return 0
        ids = [] if is_new_store(self.store) else sorted(  # a new store: nothing keyed by an earlier release
            {d["_id"] for status in ("conflict", "unlinked", "invalid-id") for d in identity.links.find({"status": status})}
            | {d["_id"] for d in identity.links.find({"manual": True})})
        with self.store.transaction():
            self.on_identity_decided(frozenset(ids))
            marks.replace({"_id": SAME_PERSON, "records": len(ids)})
        return len(ids)

    def on_identity_decided(self, patient_ids: frozenset[str]) -> None:
        """An operator's ``$link``/``$unlink`` changed the patient index: each record concerned is
        keyed again by the index's decision (``IdCorrections._on_patient``), as a new version of
        it would be. Why here: a record alone in its person gets no new version when unlinked
        (its links do not change), yet its results must stop counting for the number's person."""
        for pid in sorted(patient_ids):
            patient = self.read("Patient", pid)
            if patient is not None:
                self._in_group(lambda p=patient: self._on_patient(p, p, decided=True))

    @property
    def rules(self) -> Rules:
        return self._rules

    def _load(self, *, shared: bool = False) -> Rules:
        return load_rules(rule_folders(getattr(self.settings, "site", None)), self._institutions(),
                          site_local=self._local_items(), site_loinc=self._local_loinc(), shared=shared)

    def reload(self) -> Rules:
        """Re-read the rules (SIGHUP, ``POST /admin/reload``). On a mistake the running rules stay
        in force and the ``RulesError`` naming file, line and field propagates to the caller."""
        with self._lock:
            fresh = self._load()
            self._rules = fresh
            return fresh

    # -- the ingest batch's scope (here, the entry ingest wires: ``Ingestor.batch_scopes``) --
    @contextmanager
    def batch(self, resources: Sequence[dict[str, Any]], planned: Mapping[str, Planned] | None = None
              ) -> Iterator[None]:
        """The writes of one ingest batch (~50 messages in one transaction): what the hook
        remembers and defers lasts for all of them, and what they will ask is read first, one
        query per collection (``_preview``).

        Why: the hook runs once per message (its write group), and each message asked the store
        for its order's check row, its tests' flags, its person's index windows and its new
        Patient's entries, then wrote its check row and moved a tally: some ten round trips a
        message. Each message is still decided on its own, in order, against the same rows:
        every write goes to what is remembered, and reads by key are answered from it; the rows
        changed are written when the batch ends (before its commit), each once, the new ones in
        one call, the tallies netted per bucket. A batch that fails writes nothing of them.

        ``resources``: the converted resources the batch is about to write, as the senders
        stated them. They are a hint: where a stored version turns out otherwise (its Patient
        merged with an earlier record, say), the hook asks the store as it would have.
        ``planned``: "Type/id" -> how the converter built a resource from a compiled plan: its
        results are classified by plan (``FactReader.classify_planned``)."""
        if getattr(self._local, "current", None) is not None or getattr(self._local, "previewed", False):
            yield  # inside a hook call or a batch already
            return
        with self._memo_scope():
            self._local.not_items = self._preview(resources, planned or {})
            self._local.previewed = True
            try:
                yield
            finally:
                self._local.previewed = False
                self._local.not_items = None
                self.facts.forget_results()

    def on_write_many(
        self, writes: Sequence[tuple[dict[str, Any], dict[str, Any] | None]]
    ) -> list[list[dict[str, Any]]]:
        """The write hook, once for all the versions one write group stored (a message, a Bundle),
        in write order: the issues of each.

        Why per group: a 12-OBX report is 13 results, and the hook asked the store for each
        result's index entry on its own, and for the order's check row each time a result was
        decided. Here the entries of all the results are fetched in one query and every row read
        or written by key is remembered until the call ends; each resource is still decided on
        its own, in the same order, with the same outcome.

        A group of Patient versions that each keep the national ID of the version before (the
        patient index's own versions, which change only ``Patient.link``: a third of the bench's
        lab messages, a returning resident's earlier record given a link to the new one; an A08
        that corrects no ID number) has nothing to decide: ``_on_patient`` returns at once for
        such a version, and a Patient has no facts, window or test of its own. It is passed over
        without the group's scope, plan and prefetches (~50 us a group); nested in another
        group's call, it is still noted for ``read``, as the full pass notes it.
        """
        if _same_persons(writes, self.facts):
            if getattr(self._local, "current", None) is not None:
                for resource, _ in writes:
                    self._hold(resource)
            return [[] for _ in writes]
        return self._in_group(lambda: self._decide_group(writes))

    def _decide_group(self, writes: Sequence[tuple[dict[str, Any], dict[str, Any] | None]]
                      ) -> list[list[dict[str, Any]]]:
        """``on_write_many`` inside the group's scope (``_in_group``)."""
        local = self._local
        outer, local.group = getattr(local, "group", None), writes  # a write the hook makes nests
        outer_entered, local.entered = getattr(local, "entered", None), {}
        try:
            out = self._decide_writes(writes)
            self._recheck_later(local.entered)
            return out
        finally:
            local.group, local.entered = outer, outer_entered

    def _decide_writes(self, writes: Sequence[tuple[dict[str, Any], dict[str, Any] | None]]
                       ) -> list[list[dict[str, Any]]]:
        """``_decide_group`` with the group at hand (``_with_its_result``)."""
        for resource, _ in writes:
            if resource.get("resourceType") in _READ_BACK:
                self._hold(resource)
        todo, asks = self._plan(writes)
        self.index.prefetch_windows(asks)
        out: list[list[dict[str, Any]]] = [[] for _ in writes]
        # the test whose members are being put, decided once its last one is: (where its
        # warnings go, a member's entry)
        test: tuple[int, dict[str, Any]] | None = None
        for n in todo:
            resource = writes[n][0]
            if resource.get("resourceType") in RESULT_TYPES:
                issues, member = self._put_result(resource)
                if test is not None and (member is None or group_key(member) != group_key(test[1])):
                    out[test[0]].extend(self._evaluate_flag(test[1]))
                    test = None
                out[n] = issues
                if member is not None and test is None:
                    test = (n, member)
                continue
            if test is not None:
                out[test[0]].extend(self._evaluate_flag(test[1]))
                test = None
            out[n] = self.on_write(*writes[n])
        if test is not None:
            out[test[0]].extend(self._evaluate_flag(test[1]))
        self._relink_reports(writes, out)
        return out

    def _relink_reports(self, writes: Sequence[tuple[dict[str, Any], dict[str, Any] | None]],
                        out: list[list[dict[str, Any]]]) -> None:
        """The group's reports whose results were stored in another write (``relink_listed``): a
        message's report lists its own results, linked as they were put, and asks nothing more."""
        refs: set[str] | None = None  # the group's own, built once (set comprehensions and a C subset test)
        for n, (resource, previous) in enumerate(writes):
            if resource.get("resourceType") != "DiagnosticReport":
                continue
            listed = resource.get("result")
            # what its previous version listed and it no longer does (rv36b: their link outlived it)
            dropped = _dropped(previous, listed) if previous is not None and previous.get("result") else ()
            if not listed and not dropped:
                continue
            if refs is None:
                refs = {f"{r['resourceType']}/{r['id']}" for r, _ in writes}  # ``ref_of``, inline
            try:
                wanted = {r["reference"] for r in listed or ()}
            except (KeyError, TypeError):  # a listed entry with no plain reference: look at each
                wanted = None
            if dropped or wanted is None or not wanted <= refs:
                out[n].extend(self.relink_listed(resource, refs, dropped=dropped))

    def _plan(self, writes: Sequence[tuple[dict[str, Any], dict[str, Any] | None]]
              ) -> tuple[list[int], list[tuple[str, str, str, str]]]:
        """One pass over a write group: which of its versions the hook has anything to do for, and
        the index windows ``(person, item, lo, hi)`` their orders and results will ask (see
        ``ResultIndex._window``: an order's candidates, a result's test read along with its window).

        Why: most of a lab message's results are not recognition items (11 of the 13 of a blood
        count with an ALT), and a first version of one has no index entry and no test to decide:
        its facts (one classification, by the very objects the HR mark classified) say so, and
        nothing more is done for it. The facts of the others are kept for their own call
        (``on_result``), which would read them again. Later versions' entries are read in one query;
        a first version has none (nothing was ever stored under its reference)."""
        rules = self._rules
        items = rules.items
        facts_of = self._local.facts
        previewed = getattr(self._local, "previewed", False)
        # the preview's pass-overs (``_not_item``), asked once for the group, not once per result
        skip = getattr(self._local, "not_items", None) if previewed else None
        passed = skip if skip is not None and skip.rules is rules else None
        todo: list[int] = []
        asks: list[tuple[str, str, str, str]] = []
        first: list[str] = []
        later: list[str] = []
        ahead: list[tuple[str, str, str, str]] = []  # the results' windows on (``_recheck_later``)
        for n, (resource, _) in enumerate(writes):
            rtype = resource.get("resourceType")
            if rtype in RESULT_TYPES:
                first_version = version_of(resource) == 1
                if passed is not None and passed.passes(resource):
                    if first_version:
                        continue  # no recognition item, never indexed: nothing to do (``_not_item``)
                    # no recognition item (``facts.result`` would answer None): an entry it had goes
                    facts = None
                else:
                    facts = self.facts.result(resource, batch=previewed)
                ref = ref_of(resource)
                if first_version:
                    if facts is None:
                        continue  # not a recognition result, and never indexed: nothing to do
                    first.append(ref)
                else:
                    later.append(ref)
                facts_of[ref] = (resource, facts)
                person, item, day = (facts.person, facts.item, facts.day) if facts else (None, None, None)
            elif rtype == ORDER_TYPE:
                if resource.get("status") in ("revoked", "entered-in-error"):
                    person = item = day = None
                else:
                    order = self._order_facts(resource)
                    person, item, day = (order.person, order.item, order.day) if order else (None, None, None)
            elif rtype in ("Patient", "ChargeItem"):
                person = None
            else:
                continue  # on_write does nothing for it
            todo.append(n)
            found = items.get(item or "") if person else None
            if found is not None and day is not None:
                hi = day.isoformat()
                if rtype in RESULT_TYPES:
                    end = window_end(hi, found.window_days)
                    ahead.append((person, found.code, hi, end))
                    asks.append((person, found.code, window_start(hi, found.window_days), end))
                else:
                    asks.append((person, found.code, window_start(hi, found.window_days), hi))
        self.index.known_absent(first)
        if first and not previewed:  # (an ingest batch's were read with its preview, ``_preview``)
            # a report stored ahead of a new Observation (``Repeats._reports_of``)
            self.index.prefetch_ahead([ref for ref in first if ref.startswith("Observation/")])
        self.index.docs.prefetch(later)
        self.checks.prefetch_ranges(ahead)
        return todo, asks

    def on_delete(self, rtype: str, rid: str) -> None:
        """A result deleted (the repository's delete hook, inside the delete's transaction): it
        stands no more -- its entry goes, its test is decided again without it, an order left with
        no result goes back to pending, as for a result that stopped being a recognition item
        (``_put_result``) -- and a report's results are linked again by what the reports still
        stored say (``relink_deleted``: its last version's list).

        Why (rv36b): nothing ran on a DELETE; a deleted report's link to its order, the flag's money
        and the order's ``duplicate`` outlived it, and so did a deleted result as a prior and a repeat."""
        ref = f"{rtype}/{rid}"

        def decide() -> None:
            before = self.index.get(ref)
            if before is not None:
                self.index.delete(ref)
                self._recheck_dependents(before, None)
                self._evaluate_flag(before)
                self._unresulted(before.get("order"))
            if rtype == "DiagnosticReport":
                last = next(iter(self.repository.history(rtype, rid)), None)  # newest first, the deletion left out
                if last is not None:
                    self.relink_deleted(last)

        self._in_group(decide)

    def on_write(self, resource: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The write hook for one stored version (``on_write_many`` calls it for each)."""
        rtype = resource.get("resourceType")
        if rtype == ORDER_TYPE:
            return self.on_order(resource, previous)
        if rtype in RESULT_TYPES:
            return self.on_result(resource)
        if rtype == "Patient":
            self._on_patient(resource, previous)
        elif rtype == "ChargeItem":
            return self._on_charge(resource)
        return []

    def _on_charge(self, charge: dict[str, Any]) -> list[dict[str, Any]]:
        """A billed charge line (ChargeItem.service → the result) is the money at stake when it exists.

        The line is read by ``engine.insurance.charges.read_line``, as the settlement reads it: its
        amount, and its currency (the priceOverride's, else its fund share's; ``in_currency``)."""
        ref = ref_of(charge)
        line = read_line(charge, _no_organization)
        price = line.amount  # the whole line, not multiplied by quantity
        services = [str(r["reference"]) for r in charge.get("service") or () if isinstance(r, dict) and r.get("reference")]
        before = self.charges.get(ref)
        # only a line the settlement counts (billable, billed) is billed: a planned or unknown one is not yet;
        # nor one in another currency than the catalogue's, which the settlement leaves out too (a USD
        # 25.00 line was the flag's "CNY 25.00" at stake, moneyleft27; so was one whose fund share
        # alone said USD, rvmoneyleft27)
        if price is None or not services or line.status not in COUNTED_STATUSES \
                or not in_currency(line, self._rules.currency):
            if before is None:
                return []
            self.charges.delete(ref)
        else:
            # kept under the first service that is a result of the index (the report, not its
            # observation, which is no entry of its own): a line naming [observation, report] was
            # kept under the observation, and no test ever found it
            entries = {s: doc for s in services if (doc := self.index.get(s)) is not None}
            # A line naming the results of several tests (one ¥50 line for a blood count and an ALT)
            # is no one test's price: kept under the first it named, it was the count's money at stake
            # whole (¥50 where the catalogue says ¥20) or nothing of it, by the order of its
            # ``service`` list (twentieth round). Its row is kept under no service -- the tests are
            # priced as if unbilled -- and, a version of its line, still replaces an earlier one
            # naming a single test (``latest_lines``).
            # Every test the line names counts, however it names it (review of money20): a test named
            # by its Observation (``service`` allows it) or one outside the catalogue (no entry) is
            # another test -- unless the observation is a result of a report the line names (a line
            # naming [observation, report] of one test is that test's line).
            several = len({group_key(doc) for doc in entries.values()}) > 1 or bool(entries) and any(
                s not in entries and not self._result_of_named(s, entries) for s in services)
            indexed = None if several else next(iter(entries), services[0])
            # the line's number and when this version was stored: which line it is a version
            # of, and which version stands (``engine.insurance.charges.latest_lines``); the amount
            # as the decimal text it was sent as, never a float (``repeats._amount``)
            self.charges.replace({"_id": ref, "service": indexed, "services": services,
                                  "amount": str(price), "ident": line_identity(charge), "at": stored_at(charge)})
        services = list(dict.fromkeys([*services, *((before or {}).get("services") or ())]))
        # and the results the line's other versions name: a version stored now, or one gone,
        # changes which version stands there too (a line corrected to name another result)
        for ident in {line_identity(charge), (before or {}).get("ident")} - {None}:
            for row in self.charges.find({"ident": ident}):
                services.extend(s for s in row.get("services") or () if s not in services)
        issues: list[dict[str, Any]] = []
        for service in services:
            doc = self.index.get(service)
            if doc is not None:
                issues.extend(self._evaluate_flag(doc))
        return issues


    def _result_of_named(self, service: str, entries: dict[str, Any]) -> bool:
        """Is ``service`` (a charge line's reference with no index entry) an observation listed in
        ``DiagnosticReport.result`` of a report the line names (``entries``: its indexed services)?"""
        if not service.startswith("Observation/"):
            return False
        for ref in entries:
            rtype, _, rid = ref.partition("/")
            if rtype != "DiagnosticReport":
                continue
            report = self.read(rtype, rid) or {}
            if any(isinstance(r, dict) and r.get("reference") == service for r in report.get("result") or ()):
                return True
        return False


def _same_persons(writes: Sequence[tuple[dict[str, Any], dict[str, Any] | None]], facts: FactReader) -> bool:
    """Is every version of the group a Patient with a version before it and that version's
    national ID, and keyed by it (the patient index has it linked to the number's person, or it
    has no valid number)? ``IdCorrections._on_patient`` then has nothing to do for any of them.
    The same identifiers tell the first without reading the number (a check-digit computation)
    twice. A record the index took out of its person (a conflict, an operator's ``$unlink``) is
    decided (rec17)."""
    for resource, previous in writes:
        if previous is None or resource.get("resourceType") != "Patient":
            return False
        if resource.get("identifier") != previous.get("identifier") \
                and national_id(resource) != national_id(previous):
            return False
        if facts.person_of(resource) != facts.number(resource):  # the number person_of just read
            return False
    return bool(writes)


def _dropped(previous: dict[str, Any], listed: Any) -> tuple[str, ...]:
    """The results ``previous`` (a report's version before) listed that ``listed`` (its result
    list now) no longer does."""
    now = {r.get("reference") for r in listed or () if isinstance(r, dict)}
    return tuple(ref for r in previous.get("result") or ()
                 if isinstance(r, dict) and isinstance(ref := r.get("reference"), str) and ref not in now)


def _no_organization(ref: str) -> str | None:
    """``read_line``'s resolver of a performing Organization: recognition reads a line's amount and
    currency, not its institution, so no Organization is read."""
    return None
