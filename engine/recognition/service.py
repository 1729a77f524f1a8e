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
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, NamedTuple, TypeVar

from engine.errors import BadRequest, Gone, NotFound, Unprocessable
from engine.insurance.charges import line_price, money
from engine.recognition import aggregates
from engine.recognition.decision import (
    FINAL_STATUSES,
    REPORTED,
    Order,
    PaymentDecision,
    PriorResult,
    Recognisable,
    decide,
    decisive,
    find_recognisable,
    order_time_effect,
)
from engine.recognition.decision import (
    JUSTIFIED as JUSTIFIED_STATUS,
)
from engine.recognition.detected_issues import (
    CODE_SYSTEM,
    RECOGNISABLE,
    describe_match,
    flag_code,
    flag_issue,
    issue_id,
    recognisable_issue,
)
from engine.recognition.facts import (
    ORDER_TYPE,
    RESULT_TYPES,
    VOID_STATUSES,
    FactReader,
    Planned,
    local_day,
    national_id,
    order_time,
    ref_of,
    result_time,
)
from engine.recognition.flags import DuplicateFlag
from engine.recognition.index import (
    RESULTS,
    ResultIndex,
    from_doc,
    group_key,
    result_key,
    window_end,
    window_start,
)
from engine.recognition.memo import GroupMemo
from engine.recognition.rules import Institution, Rules, institution_from_site, load_rules, rule_folders
from engine.recognition.upgrade import backfill_final_at

log = logging.getLogger("huren.recognition")

CHECKS = "recognition_checks"
FLAGS = "recognition_flags"
_PREFERENCE = {"DiagnosticReport": 0, "ImagingStudy": 1, "Observation": 2}

# flag statuses (recognition_flags.status) and the DetectedIssue.status each one shows
FLAG_STATUS = {"flagged": "preliminary", "upheld": "final", "overturned": "cancelled",
               "justified": "final", "self_pay": "final", "reported": "final", "void": "cancelled"}
CHARGES = "recognition_charges"
HR_SYSTEM = "urn:huren:hr-scope"
# the types the hook reads back (``read``): the versions of a write group it holds at hand
_READ_BACK = frozenset({"Patient", "Organization", "Encounter", "ServiceRequest", "DetectedIssue"})
# what a batch's facts are read from before it is stored (``Recognition._preview``)
_PREVIEW_READ = frozenset({"Patient", "Organization", "Encounter"})
_T = TypeVar("_T")
# the outcomes of a checked order that a result set (``_set_outcome`` in ``_evaluate_flag``)
_RESULTED = frozenset({"duplicate", "justified", "self_pay", "reported", "retested"})
_MARKS_KEPT = 4096  # (institution, item, day) whose HR marks are remembered (``_hr_marks``)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _instant() -> str:
    """When huren first held a result or saw an order, to the microsecond: R98 compares the two."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Recognition:
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
    ) -> None:
        self.store = store
        self.repository = repository
        self.settings = settings
        self._institutions = institutions or (lambda: {})
        self._local_items = local_items or (lambda: {})
        self._local_loinc = local_loinc or (lambda: {})
        self._lock = threading.Lock()
        self._rules = rules or self._load()
        self.index = ResultIndex(store.collection(RESULTS))
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
        self.flag_days = store.collection(aggregates.FLAG_DAYS)
        self.check_days = store.collection(aggregates.CHECK_DAYS)
        aggregates.ensure_indexes(self.flag_days, self.check_days)
        self.facts = FactReader(self.read, lambda: self._rules)
        # (rules, {(institution, item, day): HR marks}) (``_hr_marks``)
        self._marks_kept: tuple[Rules | None, dict[tuple[str, str, date], tuple[tuple[str, str], ...]]] = (None, {})
        if repository is not None:
            repository.add_batch_hook(self.on_write_many)
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

        rec = cls(store=engine.store, repository=engine.repository, settings=engine.settings,
                  institutions=institutions, local_items=local_items, local_loinc=local_loinc)
        return rec

    # -- rules ---------------------------------------------------------------------------
    @property
    def rules(self) -> Rules:
        return self._rules

    def _load(self) -> Rules:
        return load_rules(rule_folders(getattr(self.settings, "site", None)), self._institutions(),
                          site_local=self._local_items(), site_loinc=self._local_loinc())

    def reload(self) -> Rules:
        """Re-read the rules (SIGHUP, ``POST /admin/reload``). On a mistake the running rules stay
        in force and the ``RulesError`` naming file, line and field propagates to the caller."""
        with self._lock:
            fresh = self._load()
            self._rules = fresh
            return fresh

    # -- storage helpers -------------------------------------------------------------------
    def read(self, rtype: str, rid: str) -> dict[str, Any] | None:
        """The current resource, or None when absent or deleted.

        Inside a write group's hook call, a version the group stored is taken as handed to the
        hook: a batch hook runs before any other hook of the group could store a newer one, and
        what this hook stores itself comes through it (``_hold``) -- no query, no parse."""
        current = getattr(self._local, "current", None)
        if current is not None:
            found = current.get(f"{rtype}/{rid}")
            if found is not None:
                return found
        try:
            return self.repository.read(rtype, rid)
        except (NotFound, Gone):
            return None

    def _in_group(self, decide: Callable[[], _T]) -> _T:
        """``decide()`` with what one write group's hook call keeps at hand: the stored versions of
        the group and each order's facts, inside the memo scope (``_memo_scope``). The outermost
        call of this thread owns it; a write the hook makes nests in it.

        A plain call, not a generator-based context manager: it runs for every write group (an
        ingest batch's ~1.35 a message), and inside an ingest batch the memo scope is open
        already (``batch``), so only the per-group state is set up."""
        local = self._local
        if getattr(local, "current", None) is not None:
            return decide()
        local.current, local.orders, local.facts = {}, {}, {}
        try:
            if getattr(local, "previewed", False):  # the batch's memo scope is open
                return decide()
            with self._memo_scope():
                return decide()
        finally:
            local.current = local.orders = local.facts = None

    @contextmanager
    def _memo_scope(self) -> Iterator[None]:
        """The index entries and windows and the check and flag rows read or written by key,
        remembered until the outermost scope of this thread ends: one write group's hook call, or
        a whole ingest batch (``batch``).

        The check and flag rows changed inside are written when it ends, each once as it ends,
        their tallies moved once per bucket (``_put_check``, ``_put_flag``): a message's order
        row is changed when the order is stored and again when its result sets the outcome, and
        a batch's rows count in a few buckets. A scope that fails writes nothing."""
        opened = [memo for memo in (self.index, self.checks, self.flags) if memo.open()]
        try:
            yield
            if self.index in opened:
                self.index.flush()
            if self.checks in opened:
                aggregates.move_many(self.check_days, [
                    (aggregates.check_bucket(before), aggregates.check_bucket(after))
                    for before, after in self.checks.take_deferred()])
            if self.flags in opened:
                aggregates.move_many(self.flag_days, [
                    (aggregates.flag_bucket(before), aggregates.flag_bucket(after))
                    for before, after in self.flags.take_deferred()])
        finally:
            for memo in reversed(opened):
                memo.close()

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

    def _preview(self, resources: Sequence[dict[str, Any]], planned: Mapping[str, Planned]
                 ) -> _NotItems:
        """Read at once what a batch's hook calls will ask: the check rows of its orders, the
        flags of its tests, the index windows of its orders and results, the entries of its
        Patient records. The facts are read from the batch itself (its Patients, Organizations
        and Encounters); the results' classification is kept for the HR mark and the hook, which
        are handed the very same coding objects (``FactReader.classify``).

        Returns the results built from a plan that is no recognition item (11 of the 13 of a
        blood count with an ALT), by the identity of their ``code`` objects: each plan is
        classified once per batch (``FactReader.planned_answer``), and the HR mark and the hook
        pass over such a result with one look-up (``_not_item``) instead of classifying it again.

        A result whose id comes more than once in the batch (a lab's corrected message right
        behind the first) is classified from its own codings, not by plan: ``planned`` is merged
        over the batch's messages by "Type/id", so it names the plan of one of them only (the
        last one built from a plan), and the others' results would take that plan's answer -- an
        item passed over as none, or none flagged as an item."""
        by_ref = {f"{r['resourceType']}/{r['id']}": r for r in resources
                  if r.get("resourceType") in _PREVIEW_READ and isinstance(r.get("id"), str)}
        facts = self.facts.reading(lambda rtype, rid: by_ref.get(f"{rtype}/{rid}"))
        # the rules as they are before any plan is classified: a reload during the preview then
        # leaves the pass-overs filed under the older rules, which ``_not_item`` no longer trusts
        rules = self._rules
        items = rules.items
        patients: list[str] = []
        orders: list[str] = []
        flags: list[str] = []
        asks: list[tuple[str, str, str, str]] = []
        tests: list[tuple[str, str, str, str]] = []  # (person, item, institution, day) of its results
        later: list[tuple[str, str, str, str]] = []  # (person, item, day, window's end) of its results
        # id(code) -> (code, performer, type) (held: the ids are not reused while they live)
        skip: dict[int, tuple[Any, Any, str]] = {}
        answers: dict[Any, tuple[str | None, str | None] | None] = {}  # plan -> its kept answer
        results: list[tuple[dict[str, Any], str, str]] = []  # (result, type, "Type/id")
        seen: set[str] = set()
        twice: set[str] = set()  # result ids more than one message of the batch carries
        for r in resources:
            rtype = r.get("resourceType")
            if not isinstance(r.get("id"), str):
                continue
            if rtype in RESULT_TYPES:
                ref = f"{rtype}/{r['id']}"
                if ref in seen:
                    twice.add(ref)
                seen.add(ref)
                results.append((r, rtype, ref))
            elif rtype == "Organization":
                self.facts.remember_organization(r)  # as the HR mark does when it is written
            elif rtype == "Patient":
                patients.append(f"Patient/{r['id']}")
            elif rtype == ORDER_TYPE:
                orders.append(f"{ORDER_TYPE}/{r['id']}")
                order = facts.order(r, batch=True)
                found = items.get(order.item or "") if order is not None and order.person else None
                if found is not None and order is not None and order.person:
                    hi = order.day.isoformat()
                    asks.append((order.person, found.code, window_start(hi, found.window_days), hi))
        for r, rtype, ref in results:
            built = planned.get(ref) if planned and ref not in twice else None
            if built is not None:
                plan = built.plan
                if plan in answers:
                    answer = answers[plan]
                else:
                    answer = answers[plan] = self.facts.planned_answer(r, plan)
                if answer is None:  # not kept by plan (an unknown institution): as before
                    if facts.classify_planned(r, plan)[1] is None:
                        continue
                elif answer[1] is None:
                    code = r.get("code")
                    skip[id(code)] = (code, r.get("performer"), rtype)
                    continue  # not a recognition item (most of a lab report's results)
                else:
                    facts.classify_planned(r, plan)
            result = facts.result(r, batch=True)
            found = items.get(result.item) if result is not None and result.person else None
            if found is not None and result is not None and result.person:
                day = result.day.isoformat()
                # back over its window (its candidates), and on over the window of the repeats
                # it may be the prior of (``_recheck_later``)
                ahead = window_end(day, found.window_days)
                asks.append((result.person, found.code, window_start(day, found.window_days), ahead))
                later.append((result.person, found.code, day, ahead))
                flags.append(issue_id("dup", result_key(result)))
                tests.append((result.person, found.code, result.institution, day))
        self.index.prefetch_windows(asks)
        self.checks.prefetch([*orders, *self._orders_of_tests(tests)])
        self.checks.prefetch_ranges(later)
        self.flags.prefetch(flags)
        self.index.prefetch_patients(patients)
        return _NotItems(rules, skip)

    def _orders_of_tests(self, tests: Sequence[tuple[str, str, str, str]]) -> list[str]:
        """The orders that the entries stored for the batch's tests name (person, item,
        institution, day), as far as the windows read tell: each such test's flag decision asks
        every order's check row (``_evaluate_flag``: two orders of one item at one institution on
        one day are one test), so they are read with the batch's own orders, in one query.

        Why: a returning resident's order of the same test on the same day (the bench message's
        third of residents who come back) was one more query per message, for the earlier
        order's check row."""
        refs: list[str] = []
        for person, item, inst, day in tests:
            for d in self.index.known_window(person, item, day, day) or ():
                if d["day"] == day and d["inst"] == inst and d.get("order"):
                    refs.append(d["order"])
        return refs

    def _not_item(self, resource: dict[str, Any]) -> bool:
        """Inside an ingest batch: is ``resource`` a result the preview found built from a plan
        that is no recognition item, of the same type and holding the very ``code`` and
        ``performer`` objects it was built with (what its classification reads: no one changed
        them since), under the same rules? One look-up."""
        skip = getattr(self._local, "not_items", None)
        if skip is None or skip.rules is not self._rules:
            return False
        code = resource.get("code")
        seen = skip.codes.get(id(code))
        return seen is not None and seen[0] is code and seen[1] is resource.get("performer") \
            and seen[2] == resource.get("resourceType")

    def _hold(self, resource: dict[str, Any]) -> None:
        """Note a stored version for ``read`` (a newer one already noted stands)."""
        current = self._local.current
        ref = ref_of(resource)
        held = current.get(ref)
        if held is None or _version(held) < _version(resource):
            current[ref] = resource
        if resource.get("resourceType") == "Patient":
            self._local.orders.clear()  # an order's person is read from its Patient

    def _order_facts(self, sr: dict[str, Any]) -> Order | None:
        """``facts.order`` of a stored order version, once per write group (the order is read when
        it is written and again for each of its results' flags)."""
        orders = getattr(self._local, "orders", None)
        batch = getattr(self._local, "previewed", False)  # the preview read the converted order
        if orders is None or not (sr.get("meta") or {}).get("versionId"):
            return self.facts.order(sr, batch=batch)
        key = f"{ref_of(sr)}/_history/{sr['meta']['versionId']}"
        if key not in orders:
            orders[key] = self.facts.order(sr, batch=batch)
        return orders[key]

    def _write_issue(self, issue: dict[str, Any]) -> None:
        """Store a DetectedIssue at its deterministic id (the repository skips unchanged content)."""
        self.repository.update(issue)

    # -- the HR mark -----------------------------------------------------------------------
    def mark_hr(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Tag a final result of a recognition item whose issuer had passed QC on its date with the
        scopes it is recognisable in (``meta.tag``, system ``urn:huren:hr-scope``): ``community`` for
        the issuer's medical community, plus each HR scope (盐城市HR, 全国HR...) its QC carries.
        A result that is not (or no longer) recognisable loses the tags."""
        if self._not_item(resource):
            meta = resource.get("meta")
            if not (isinstance(meta, dict) and meta.get("tag")):
                return resource  # a result of no recognition item, with no HR tag to take away
        rtype = resource.get("resourceType")
        if rtype == "Organization":
            self.facts.remember_organization(resource)  # the results of the same message name it
            return resource
        if rtype not in RESULT_TYPES:
            return resource
        meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
        had = meta.get("tag") or ()
        tags = [t for t in had if not (isinstance(t, dict) and t.get("system") == HR_SYSTEM)] if had else []
        rules = self._rules
        marks: list[dict[str, Any]] = []
        # in an ingest batch the preview classified these very codings a moment ago (``batch``)
        inst, item = self.facts.classify(resource, marked=getattr(self._local, "previewed", False)) \
            if resource.get("status") in FINAL_STATUSES else (None, None)
        day = local_day(result_time(resource), rules.institutions[inst].timezone) if item and inst in rules.institutions else None
        if item and inst and day:
            marks = [{"system": HR_SYSTEM, "code": code, "display": display}
                     for code, display in self._hr_marks(rules, inst, item, day)]
        if not marks and len(tags) == len(had):
            return resource
        new_meta = {**meta, "tag": tags + marks}
        if not new_meta["tag"]:
            new_meta.pop("tag")
        out = {**resource, "meta": new_meta}
        if not new_meta:
            out.pop("meta")
        return out

    def _hr_marks(self, rules: Rules, inst: str, item: str, day: date) -> tuple[tuple[str, str], ...]:
        """(code, display) of the HR marks of a final result of ``item`` issued by ``inst`` on
        ``day``: none unless its QC had passed then; ``community`` and each HR scope of its QC.

        Remembered per (institution, item, day) under one rules object (a reload starts again):
        the answer reads nothing else, and each recognition item's result asked the QC periods,
        the HR scopes and their names again (the same few institutions, items and days all day)."""
        kept = self._marks_kept
        if kept[0] is not rules:
            kept = self._marks_kept = (rules, {})
        found = kept[1].get((inst, item, day))
        if found is not None:
            return found
        marks: list[tuple[str, str]] = []
        if rules.qc_passed(inst, item, day):
            marks.append(("community", f"医共体互认 {rules.institutions[inst].community}"))
            for code in rules.hr_scopes(inst, item, day):
                scope = rules.scopes.get(code)
                marks.append((code, scope.name if scope else code))
        if len(kept[1]) >= _MARKS_KEPT:
            kept[1].clear()
        found = kept[1][(inst, item, day)] = tuple(marks)
        return found

    # -- the write hook --------------------------------------------------------------------
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
        """
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
        return out

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
        items = self._rules.items
        facts_of = self._local.facts
        previewed = getattr(self._local, "previewed", False)
        todo: list[int] = []
        asks: list[tuple[str, str, str, str]] = []
        first: list[str] = []
        later: list[str] = []
        ahead: list[tuple[str, str, str, str]] = []  # the results' windows on (``_recheck_later``)
        for n, (resource, _) in enumerate(writes):
            rtype = resource.get("resourceType")
            if rtype in RESULT_TYPES:
                if previewed and self._not_item(resource) and _version(resource) == 1:
                    continue  # no recognition item, never indexed: nothing to do (one look-up)
                facts = self.facts.result(resource, batch=previewed)
                ref = ref_of(resource)
                if _version(resource) == 1:
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
        self.index.docs.prefetch(later)
        self.checks.prefetch_ranges(ahead)
        return todo, asks

    def on_write(self, resource: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The write hook for one stored version (``on_write_many`` calls it for each)."""
        rtype = resource.get("resourceType")
        if rtype == ORDER_TYPE:
            return self.on_order(resource)
        if rtype in RESULT_TYPES:
            return self.on_result(resource)
        if rtype == "Patient":
            self._on_patient(resource, previous)
        elif rtype == "ChargeItem":
            return self._on_charge(resource)
        return []

    def _on_charge(self, charge: dict[str, Any]) -> list[dict[str, Any]]:
        """A billed charge line (ChargeItem.service → the result) is the money at stake when it exists.

        The line's amount is read by ``engine.insurance.charges.line_price``, as the settlement reads it."""
        ref = ref_of(charge)
        price = money(line_price(charge).get("value"))  # the whole line, not multiplied by quantity
        services = [str(r["reference"]) for r in charge.get("service") or () if isinstance(r, dict) and r.get("reference")]
        before = self.charges.get(ref)
        if price is None or not services or charge.get("status") in ("entered-in-error", "not-billable", "aborted"):
            if before is None:
                return []
            self.charges.delete(ref)
        else:
            self.charges.replace({"_id": ref, "service": services[0], "services": services,
                                  "amount": float(price)})
        services = list(dict.fromkeys([*services, *((before or {}).get("services") or ())]))
        issues: list[dict[str, Any]] = []
        for service in services:
            doc = self.index.get(service)
            if doc is not None:
                issues.extend(self._evaluate_flag(doc))
        return issues

    def _on_patient(self, patient: dict[str, Any], previous: dict[str, Any] | None) -> None:
        """A Patient stored or corrected after its results: keep the index's person in step.

        A version with the national ID of the one before changes no entry: every version passed
        through here, so the entries already carry that person (and no query is made)."""
        person = national_id(patient)
        if previous is not None and national_id(previous) == person:
            return
        docs = self.index.by_patient(ref_of(patient))
        moved = [(d, {**d, "person": person}) for d in docs if d.get("person") != person]
        if docs:
            # a correction: for the person it gives them to, the results count as held from now
            self.index.set_person(docs, person, _instant() if previous is not None else None)
        if previous is not None:
            self._recheck_orders(ref_of(patient), person)
            self._recheck_recognisers(moved)
            self._recheck_returned(moved)
        if not docs:
            return
        # A person corrected on a record (a mistyped ID number put right) moves its results to
        # another person: the flags of their tests were decided against the wrong person's prior
        # results (and a flag is keyed by its test, person included), and they may have been the
        # prior of the wrong person's later tests. Each is decided again: the old test (its flag
        # voided, its entries gone), the new one, and the tests that named them as prior.
        for before, after in {group_key(b): (b, a) for b, a in moved}.values():
            self._evaluate_flag(before)
            if after.get("person"):
                self._evaluate_flag(after)
        for before, after in moved:
            self._recheck_dependents(before, after)

    def _recheck_orders(self, patient_ref: str, person: str | None) -> None:
        """The check rows of a Patient record's orders follow a corrected national ID: each is
        checked again for the right person *as of the moment it was placed* -- only results huren
        held before then (``placed``) count.

        Why: the recognition rate's denominator is the orders that had a recognisable prior at
        order time, and "recognisable" means the same person. An order checked under a mistyped
        ID number kept the other person's results as what was recognisable, so it counted against
        its institution's rate (a re-test of a result that was never its patient's), and the right
        person's order with a result the doctor could have recognised was left out. What the
        doctor was shown stays recorded (the reminder DetectedIssue, cancelled when nothing was
        recognisable for the right person). The outcome follows when the order's tests are
        decided again (``_on_patient``)."""
        for check in sorted(self.checks.find_equal({"patient": patient_ref}), key=lambda d: d["_id"]):
            if check.get("source") == "order" and check.get("person") != person:
                self._recheck_order(check, person)

    def _orders_within(self, person: str, item: str, day: str, window_days: int) -> list[dict[str, Any]]:
        """The check rows of ``person``'s orders for ``item`` placed from ``day`` (ISO) to the end
        of its window: the orders a result of that day can be recognisable for (as the store and
        this scope hold them), by id."""
        hi = window_end(day, window_days)
        rows = self.checks.in_range(person, item, day, hi)
        if rows is None:
            rows = self.checks.find_where(
                {"person": person, "item": item, "day": {"$gte": day, "$lte": hi}},
                lambda d: d.get("person") == person and d.get("item") == item and day <= (d.get("day") or "") <= hi)
        return sorted((d for d in rows if d.get("source") == "order"), key=lambda d: d["_id"])

    def _recheck_recognisers(self, moved: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """The check rows of *other* records' orders that listed a result an ID-number correction
        moved to another person: each is checked again for its own person, as of when it was placed.

        Why: a correction on the prior's side (ADT^A08 at the institution that held the result)
        moved the result to the right person, but the later order of the person it was filed under
        kept it as recognisable: that order stayed in its institution's recognition rate (a
        re-test of another person's result) and its reminder DetectedIssue stayed 'final' in that
        person's compartment naming another person's result. ``_recheck_orders`` saw only the
        corrected record's own orders. An order can list a result only on or after the result's
        day and within its item's window."""
        items = self._rules.items
        for before, after in moved:
            item = items.get(before.get("item") or "")
            ref, person, day = before.get("_id"), before.get("person"), before.get("day")
            if item is None or not person or not day or person == after.get("person"):
                continue
            for check in self._orders_within(person, item.code, day, item.window_days):
                if ref in (check.get("recognisable") or ()):
                    self._recheck_order(check, person)

    def _recheck_returned(self, moved: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """A result given back to a person it was filed under before (an ID-number correction
        reversed): that person's orders placed while it was theirs are checked again as of when
        each was placed, and their tests decided again.

        Why: the mistaken correction took the result from those orders (reminder cancelled, out
        of the rate, flag voided), and the result then counted for its person only from the
        reversal on, so they never got it back, though their doctors had been shown it. Asked
        only when the entry's history names the person before (``owners``): a first correction
        reads nothing more."""
        items = self._rules.items
        for before, after in moved:
            person, ref = after.get("person"), before["_id"]
            item = items.get(before.get("item") or "")
            entry = self.index.get(ref)
            if item is None or not person or not before.get("day") or entry is None or not any(
                    who == person for who, _ in (entry.get("owners") or ())[:-1]):
                continue
            for check in self._orders_within(person, item.code, before["day"], item.window_days):
                if ref in (check.get("recognisable") or ()) or not self._recheck_order(check, person):
                    continue
                for key_doc in {group_key(d): d for d in self.index.by_order(check["_id"])}.values():
                    self._evaluate_flag(key_doc)

    def _recheck_order(self, check: dict[str, Any], person: str | None) -> bool:
        """One order's check row checked again for ``person`` as of the moment it was placed (only
        results huren held before ``placed`` count); its reminder cancelled when nothing is left,
        and stored again when an order left with nothing has something recognisable again (its
        doctor was shown it: a correction reversed). True when what is recognisable changed."""
        rules = self._rules
        check_id = check["_id"]
        recognisable: list[str] = []
        matches: list[Recognisable] = []
        item = rules.items.get(check.get("item") or "")
        order = None
        if person and item is not None and check.get("day"):
            placed = check.get("placed")
            order = _checked_order(check, person=person, item=item.code, ref=check_id, patient=check.get("patient"))
            matches = [m for m in self.check(order) if not placed or not m.held or m.held < placed]
            recognisable = [m.result.ref for m in matches]
        doctor, dept = check.get("doctor"), check.get("dept")
        if recognisable and not (doctor or dept):
            sr = self.read(ORDER_TYPE, check_id.split("/", 1)[1])
            if sr is not None:
                doctor, dept = self.facts.orderer(sr)
        if not recognisable and check.get("issue"):
            self._cancel_issue(check["issue"])
        elif recognisable and order is not None and check.get("issue") and not check.get("recognisable"):
            self._write_issue(recognisable_issue(order, matches, rules, check.get("checked") or _now()))
        self._put_check(check, {**check, "person": person, "recognisable": recognisable,
                                "doctor": doctor, "dept": dept})
        return recognisable != list(check.get("recognisable") or ())

    # -- order time ------------------------------------------------------------------------
    def check(self, order: Order) -> list[Recognisable]:
        """``find_recognisable`` for one order: one indexed range query, then the decision."""
        rules = self._rules
        item = rules.items.get(order.item or "")
        if item is None or not order.person:
            return []
        return find_recognisable(order, self.index.candidates(order.person, item.code, order.day, item.window_days), rules)

    def find_recognisable(self, order_resource: dict[str, Any]) -> tuple[Order | None, list[Recognisable]]:
        """The recognisable prior results for a ServiceRequest (stored or not)."""
        order = self.facts.order(order_resource)
        return order, (self.check(order) if order else [])

    def on_order(self, sr: dict[str, Any]) -> list[dict[str, Any]]:
        ref = ref_of(sr)
        existing = self.checks.get(ref)
        status = sr.get("status")
        if status in ("revoked", "entered-in-error"):
            if existing:
                # a reminded order cancelled before any result (ORC-1 CA/OC, status revoked) was recognised
                outcome = "void" if status == "entered-in-error" else (
                    "recognised" if existing.get("outcome") == "pending" and existing.get("recognisable") else existing["outcome"])
                self._put_check(existing, {**existing, "outcome": outcome})
            return []
        order = self._order_facts(sr)
        if order is None or order.item is None or order.person is None:
            return []
        same = bool(existing) and (existing or {}).get("item") == order.item and (existing or {}).get("person") == order.person
        # An order already recorded, sent again by its result's message: that message is no order
        # time, whatever reason it first states is late (as in a corrected result's message).
        recorded = existing is not None and (_resulted(existing) or self._with_its_result(ref, order, existing))
        late, late_text = _late_reasons(order, existing, recorded)
        if existing:
            order = self._remembered(order, sr, existing, recorded)
        rules = self._rules
        if same and existing is not None:
            # What was recognisable when the order was placed stands: a later version of the order
            # (status update, the result message's copy) is not a new order.
            recognisable = list(existing.get("recognisable") or ())
            matches = self.check(order) if recognisable else []
            matches = [m for m in matches if m.result.ref in recognisable]
        else:
            matches = self.check(order)
            recognisable = [m.result.ref for m in matches]
        reason, effect = order_time_effect(order, rules)
        doctor, dept = (existing.get("doctor"), existing.get("dept")) if same and existing else (None, None)
        if recognisable and not (doctor or dept):
            doctor, dept = self.facts.orderer(sr)
        doc = {
            "_id": ref, "source": "order", "person": order.person, "patient": order.patient, "item": order.item,
            "category": rules.items[order.item].category, "inst": order.institution, "day": order.day.isoformat(),
            "recognisable": recognisable, "reason": reason, "reason_effect": effect,
            "reasons": list(order.reasons), "reason_text": order.reason_text, "analytes": list(order.analytes),
            "late_reasons": late, "late_reason_text": late_text,
            "doctor": doctor, "dept": dept,
            "outcome": (existing or {}).get("outcome", "pending"), "resulted": _resulted(existing),
            "issue": issue_id("rec", ref) if recognisable else None,
            "checked": (existing or {}).get("checked") or _now(),
            "placed": (existing or {}).get("placed") or _instant(),
        }
        self._put_check(existing, doc)
        issues: list[dict[str, Any]] = []
        if matches and not same:
            issue = recognisable_issue(order, matches, rules, doc["checked"])
            self._write_issue(issue)
            issues.append(self._order_warning(order, matches, issue["id"]))
        elif not recognisable and existing and existing.get("issue"):
            self._cancel_issue(existing["issue"])
        # A reason added to an order before its result changes the flag's decision; one added
        # after it (a late reason) does not, and is shown on the flag for the auditor.
        if existing and any(existing.get(k) != doc[k] for k in ("reasons", "reason_text", "late_reasons",
                                                                 "late_reason_text")):
            for key_doc in {group_key(d): d for d in self.index.by_order(ref)}.values():
                issues.extend(self._evaluate_flag(key_doc))
        return issues

    def _with_its_result(self, ref: str, order: Order, check: dict[str, Any]) -> bool:
        """Does this version of an order, already recorded (``check``) and stating a reason not
        recorded yet, come in one write group with a result of it (the copy a result message
        rebuilds from its ORC/OBR, or a Bundle with both)?

        Why: an order recorded by its own order message without a reason, then its first result
        message carrying ORC-16, merged that reason as an order-time one (the order is written
        before its result, so no result was decided yet) and made the flagged repeat payable,
        while the same reason in a corrected result was a late one. Asked only when the version
        states something new: the group is scanned for a result based on the order."""
        reasons, text = _new_reasons(order, check)
        if not reasons and text is None:
            return False
        for resource, _ in getattr(self._local, "group", None) or ():
            if resource.get("resourceType") in RESULT_TYPES and any(
                    r.get("reference") == ref for r in resource.get("basedOn") or () if isinstance(r, dict)):
                return True
        return False

    @staticmethod
    def _remembered(order: Order, sr: dict[str, Any], check: dict[str, Any], recorded: bool) -> Order:
        """What the order said when it was placed stands, whatever a later version repeats or omits.

        A result message rebuilds its order from its own ORC/OBR (same deterministic id): a LIS
        rarely repeats the doctor's ORC-16 re-test reason or the order time. The reasons recorded
        when the order was placed are kept (a later version may add one, never remove one), and so
        are its date and the instant huren first saw it. Once a result of the order has been
        decided on (``_resulted``), the reasons are those recorded until then: a reason first sent
        after the result (an order update, a corrected result's ORC-16) is a late reason, kept in
        the check row apart (``_late_reasons``) and never part of the decision -- DOMAIN.md: the
        reason recorded at order time stands. So is one first sent in a result message of an order already recorded
        (``recorded``, see ``_with_its_result``)."""
        if recorded:
            reasons, text = tuple(check.get("reasons") or ()), check.get("reason_text")
        else:
            reasons = tuple(dict.fromkeys([*(check.get("reasons") or ()), *order.reasons]))
            text = check.get("reason_text") or order.reason_text
        changes: dict[str, Any] = {"reasons": reasons, "reason_text": text, "placed": check.get("placed")}
        if check.get("analytes") and not order.analytes:
            changes["analytes"] = tuple(check["analytes"])
        if check.get("day") and (order_time(sr) is None or check.get("source") == "order"):
            changes["day"] = date.fromisoformat(check["day"])
        return replace(order, **changes)

    def _order_warning(self, order: Order, matches: Sequence[Recognisable], issue: str) -> dict[str, Any]:
        item = matches[0].item
        return {
            "severity": "warning",
            "code": "business-rule",
            "details": {"coding": [{"system": CODE_SYSTEM, "code": RECOGNISABLE[0], "display": RECOGNISABLE[1]}]},
            "diagnostics": f"Recognisable prior result for {item.name} ({item.code}): "
                           + "; ".join(describe_match(m) for m in matches) + f". See DetectedIssue/{issue}",
        }

    def _cancel_issue(self, issue_ref: str) -> None:
        current = self.read("DetectedIssue", issue_ref)
        if current is not None and current.get("status") != "cancelled":
            updated = {k: v for k, v in current.items() if k not in ("meta", "text")}
            updated["status"] = "cancelled"
            self.repository.update(updated)

    # -- result time -----------------------------------------------------------------------
    def on_result(self, resource: dict[str, Any]) -> list[dict[str, Any]]:
        local = self._local
        outer, local.entered = getattr(local, "entered", None), {}
        try:
            issues, member = self._put_result(resource)
            out = self._evaluate_flag(member) if member is not None else issues
            self._recheck_later(local.entered)
            return out
        finally:
            local.entered = outer

    def _put_result(self, resource: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """A result's index entry put (or removed), and its test decided where that cannot wait:
        the issues, and the entry whose test is still to decide (None when none is).

        Why the test is handed back: a report and its observations are one test, stored one
        after the other in one write group (a 12-OBX report and its ALT), and each decided it
        again against the same rows. ``on_write_many`` decides it once, when the last of its
        members in a row is put, before anything else of the group is looked at, so every
        decision is still taken against what was stored before it in write order; the warning
        goes with the first member, where a new decision was reported. An entry that moved to
        another test decides both at once, the old one after the new, as before."""
        ref = ref_of(resource)
        before = self.index.get(ref)
        kept = (getattr(self._local, "facts", None) or {}).pop(ref, None)
        facts = kept[1] if kept is not None and kept[0] is resource else self.facts.result(resource)
        if facts is None:
            if before is not None:
                self.index.delete(ref)
                self._recheck_dependents(before, None)
                return self._evaluate_flag(before), None
            return [], None
        doc = self.index.put(facts, _instant(), before=before, read=True)
        entered = getattr(self._local, "entered", None)
        if entered is not None and _enters(before, doc):
            entered.setdefault(group_key(doc), doc)
        if before is not None:
            self._recheck_dependents(before, doc)
            if group_key(before) != group_key(doc):
                return [*self._evaluate_flag(doc), *self._evaluate_flag(before)], None
        return [], doc

    def _recheck_dependents(self, before: dict[str, Any], doc: dict[str, Any] | None) -> None:
        """A result that stops being what a later test's flag rests on -- withdrawn (entered in
        error, cancelled), no longer final, no longer a recognition item, or moved to another
        test (day, item, institution, person, analytes) -- or that becomes a final result again:
        the flags of later tests that named its test as their prior are decided again.

        Why: a flag rests on its prior result being final and what it was. The prior's own
        correction message decided only the prior's test, so a repeat flagged "not payable"
        against a prior the lab later withdrew (OBX-11 W) stayed flagged: money deducted for a
        repeat of nothing. A withdrawal sent in error and taken back (the result sent again
        final after entered-in-error or cancelled) restores the flag its withdrawal voided. Nothing is returned: what another test's
        flag became is the repeating institution's business, not the ACK of the lab that
        corrected the prior.

        Only a later version comes here (a first version has no ``before``), and only a change of
        what the decision reads of a prior asks anything: the ordinary correction costs nothing."""
        was = before.get("status") in FINAL_STATUSES and bool(before.get("person"))
        now = doc is not None and doc.get("status") in FINAL_STATUSES and bool(doc.get("person"))
        same = doc is not None and group_key(doc) == group_key(before) and doc.get("analytes") == before.get("analytes")
        if (was == now and same) or not (was or now):
            return
        if now and not was and same and before.get("status") not in VOID_STATUSES and not before.get("was_final"):
            # preliminary -> final, the everyday flow, asks nothing: only a result final before
            # (withdrawn or sent again preliminary, ``ResultIndex.put`` marks it) sent final again
            # restores what its leaving voided
            return
        for prior in (before if was else None, doc if now and not (was and same) else None):
            if prior is None or prior["item"] not in self._rules.items:
                continue
            # The flags that name its test as their prior, found by what they recorded (not by
            # the later tests' result days: a flag is decided on its order's day, and a result,
            # an imaging exam above all, may come days after it, past the prior's window).
            own = group_key(prior)
            for flag in self.flags.find_equal({"person": prior["person"], "item": prior["item"],
                                               "prior_day": prior["day"], "prior_inst": prior["inst"]}):
                if flag.get("key") == own:
                    continue
                # its test by the repeat it recorded: the flag's own ``inst`` is the ordering
                # institution, and the test is grouped under the one that performed it (a
                # township's order run by the community's central lab found nothing, and the flag
                # stayed "not payable" against a withdrawn prior)
                repeat = self.index.get(flag["result"]) if flag.get("result") else None
                member = next((d for d in self.index.group(repeat if repeat is not None else flag)
                               if d.get("status") not in VOID_STATUSES), None)
                if member is not None:
                    self._evaluate_flag(member)

    def _recheck_later(self, entered: Mapping[str, dict[str, Any]]) -> None:
        """The tests that results which became recognisable in this write group (``_enters``: a
        final result stored, a preliminary made final, a final result moved to another test) may
        be the prior of, decided again: the tests of the person's orders for the item placed from
        the result's day to the end of its window that were already resulted, and the results
        without an order dated in that span.

        Why: DOMAIN.md flags an order *for which a recognisable prior existed* (R98 asks whether
        huren held it when the order was placed), so a prior that reaches huren after its repeat
        was decided -- a lab's feed a day late, a preliminary made final, a date corrected into
        the window -- flags the repeat as it would have had it come first. The repeat's order-time
        check row is left as it was: the rate counts what was recognisable when it was placed.
        An order the result's own test fulfils is not its repeat (a report and its observations,
        two orders of one test). Nothing is returned: what another test's flag became is the
        repeating institution's business, not the ACK of the lab that sent the prior.

        Cost: the check rows and entries asked are read with the batch's (or the group's) windows
        (``_preview``, ``_plan``); a resulted later order's entries are one query each."""
        items = self._rules.items
        for own, prior in entered.items():
            item = items.get(prior["item"])
            if item is None or not prior.get("person"):
                continue
            person, day = prior["person"], prior["day"]
            hi = window_end(day, item.window_days)
            mine = {d.get("order") for d in self.index.group(prior)} | {prior.get("order")}
            tests: dict[str, dict[str, Any]] = {}
            for check in self._orders_within(person, item.code, day, item.window_days):
                if check["_id"] in mine or not _resulted(check):
                    continue  # its own order, or not resulted yet (its result will be decided against it)
                for d in self.index.by_order(check["_id"]):
                    if d.get("person") == person and d["item"] == item.code:
                        tests.setdefault(group_key(d), d)
            for d in self.index.between(person, item.code, day, hi):
                if not d.get("order"):
                    tests.setdefault(group_key(d), d)
            tests.pop(own, None)
            for key in sorted(tests):
                if tests[key].get("status") not in VOID_STATUSES:
                    self._evaluate_flag(tests[key])

    def _price(self, item: Any, match: Recognisable, group: Sequence[dict[str, Any]], institution: str,
               order_ref: str | None) -> tuple[float, str]:
        """The money at stake: the billed charge line of the repeated test where one exists and the
        whole of it was repeated, else the catalogue price of what was repeated.

        Only the flagged order's own results are asked (``order_ref``; all of the test when it has
        one order or none): a test two orders fulfil on one day carried whichever charge line was
        found first, the other, justified order's among them. A member naming no order is not
        known to be the flagged order's, so its line is not taken (the catalogue price stands)."""
        orders = {d.get("order") for d in group}
        if len(orders - {None}) > 1:
            group = [d for d in group if d.get("order") == order_ref]
        if not match.partial:
            for d in group:
                for charge in self.charges.find({"service": d["_id"]}):
                    return float(charge["amount"]), "charge"
        return self._rules.repeat_price(item, match.analytes, institution), "catalogue"

    def _evaluate_flag(self, member: dict[str, Any]) -> list[dict[str, Any]]:
        """Decide (again) the flag of the test ``member`` belongs to, and store the outcome.

        Returns the ACK warning only when the decision is new or changed: the report and each of its
        observations re-evaluate the same test, and the sender needs to hear it once."""
        rules = self._rules
        key = group_key(member)
        flag_id = issue_id("dup", key)
        existing = self.flags.get(flag_id)
        item = rules.items.get(member["item"])
        group = [d for d in self.index.group(member, item.window_days if item else 0)
                 if d.get("status") not in VOID_STATUSES]
        if not group or item is None or not member.get("person"):
            self._void(existing, "the repeated result was cancelled or is no longer a recognition item")
            if not group:
                self._unresulted(member.get("order"))
            return []
        group.sort(key=lambda d: (_PREFERENCE.get(d["_id"].split("/", 1)[0], 9), d["_id"]))
        # The orders the test fulfils: one as a rule (the report may name it while its observations
        # do not); two orders for the item at one institution on one day are one test.
        orders = list(dict.fromkeys(d["order"] for d in group if d.get("order"))) or [None]
        if len(orders) > 1:
            self.checks.prefetch(orders)  # their check rows in one query, not one each
        if all(self._alone_in_window(member, ref, item.window_days) for ref in orders):
            self._void(existing, "no recognisable prior result")
            for ref in orders:
                self._set_outcome(ref, "retested")
            return []
        decided = [self._decide_repeat(ref, group if len(orders) == 1 else
                                       [d for d in group if d.get("order") in (ref, None)], key, item)
                   for ref in orders]
        found = sorted(((d, (repeat, order, m)) for repeat, order, (d, m) in
                        (x for x in decided if x[2] is not None)),
                       key=lambda x: (x[1][1].day, x[1][1].placed or "", x[1][1].ref or ""))
        if not found:
            self._void(existing, "no recognisable prior result")
            for repeat, _, _ in decided:
                self._set_outcome(repeat.order, "retested")
            return []
        # Several orders (one test): the least favourable decision stands, the earliest order's on
        # a tie (``decisive``); each order's check row takes its own outcome.
        decision, (repeat, order, match) = decisive(found)
        for other, (o_repeat, _, _) in found:
            if o_repeat is not repeat:
                self._set_outcome(o_repeat.order, _outcome(other.status))
        for o_repeat, _, none in decided:
            if none is None:
                self._set_outcome(o_repeat.order, "retested")
        check_ref = repeat.order
        prior = match.result
        reviews = (existing or {}).get("reviews") or []
        status = _standing_review(existing, reviews, prior.ref, decision) or decision.status
        price, price_source = self._price(item, match, group, order.institution, repeat.order)
        identified = (existing or {}).get("identified") or _now()
        reason_text = order.reason_text if decision.reason else None
        check = self.checks.get(check_ref) if check_ref else None
        late = tuple((check or {}).get("late_reasons") or ())
        late_text = (check or {}).get("late_reason_text") if late else None
        hr = list(rules.hr_scopes(prior.institution, item.code, prior.day))
        issue = flag_issue(flag_id=flag_id, status=FLAG_STATUS[status], item=item, rules=rules, order=order,
                           repeat=repeat, match=match, decision=decision, price=price, identified=identified,
                           reason_text=reason_text, reviews=reviews, late_reasons=late, late_reason_text=late_text)
        row = DuplicateFlag(
            id=flag_id, status=status, key=key, order=order.ref, result=repeat.ref, prior=prior.ref,
            person=repeat.person, patient=repeat.patient, item=item.code, item_name=item.name, category=item.category,
            institution=order.institution, prior_institution=prior.institution, day=repeat.day, order_day=order.day,
            prior_day=prior.day, window_days=item.window_days, price=price, currency=rules.currency,
            reason=decision.reason, reason_text=reason_text, reviews=tuple(reviews), identified=identified,
            analytes=tuple(sorted(match.analytes)), partial=match.partial, effect=decision.effect,
            contradicted=decision.contradicted, basis=decision.basis, price_source=price_source, hr=tuple(hr),
            late_reasons=late, late_reason_text=late_text,
        ).as_doc()
        changed = existing is None or any(existing.get(k) != row[k] for k in (
            "status", "prior", "price", "reason", "contradicted", "analytes", "basis")) \
            or (existing.get("late_reasons") or []) != row["late_reasons"]
        self._put_flag(existing, row)
        self._write_issue(issue)
        self._set_outcome(check_ref, _outcome(status))
        if not changed:
            return []
        code = flag_code(decision)
        severity = "warning" if decision.at_stake or decision.status != JUSTIFIED_STATUS else "information"
        text = (f"{code[1]}: {item.name} ({item.code}"
                + (f": {', '.join(sorted(match.analytes))}" if match.partial else "") + ") repeated "
                f"{(repeat.day - prior.day).days} days after {prior.ref} of {prior.institution} "
                f"({rules.currency} {price:.2f})" + (f"; reason {decision.reason}" if decision.reason else "")
                + (f"; {decision.contradicted}" if decision.contradicted else "")
                + (f"; reason {', '.join(late)} recorded after the result: not counted, for the auditor"
                   if late else "") + f". See DetectedIssue/{flag_id}")
        return [{"severity": severity, "code": "business-rule" if severity == "warning" else "informational",
                 "details": {"coding": [{"system": CODE_SYSTEM, "code": code[0], "display": code[1]}]},
                 "diagnostics": text}]

    def _decide_repeat(self, order_ref: str | None, members: Sequence[dict[str, Any]], key: str, item: Any
                       ) -> tuple[PriorResult, Order, tuple[PaymentDecision, Recognisable] | None]:
        """The repeated result (the first of ``members``, the entries of one test that fulfil
        ``order_ref`` or name no order), its order as recorded when it was placed, and the
        decision that stands for it (None when nothing recognisable was repeated)."""
        rules = self._rules
        repeat = from_doc(members[0])
        if repeat.order is None:
            repeat = replace(repeat, order=order_ref)
        order = self._order_for(repeat)
        performed = sorted({a for d in members for a in d.get("analytes") or ()})
        if performed and all(d.get("analytes") for d in members):
            order = replace(order, analytes=tuple(performed))  # what was actually done
        candidates = [c for c in self.index.candidates(order.person or "", item.code, order.day, item.window_days)
                      if result_key(c) != key]
        matches = find_recognisable(order, candidates, rules)
        return repeat, order, (decisive([(decide(order, m, rules), m) for m in matches]) if matches else None)

    def _alone_in_window(self, member: dict[str, Any], order_ref: str | None, window_days: int) -> bool:
        """Is the test of ``member`` alone in its order's window -- no entry of the person for
        the item, dated from the order's day minus the window to that day, belongs to another
        test -- as far as the entries at hand tell (a window the batch or the group read)?

        Why: then no prior result can be recognisable and the decision is "retested" (and a
        flag voided), which is what most results come to. It is told from the order's day alone:
        the day its check row recorded (an order's day stands as recorded when it was placed),
        or the result's own when it names no order. The order's facts, the candidates and the
        decision are built only for a test that has something to decide. False when not known
        at hand (the full decision then asks)."""
        if order_ref is not None:
            check = self.checks.get(order_ref)
            if check is None or check.get("source") != "order" or not check.get("day"):
                return False
            hi = check["day"]
        else:
            hi = member["day"]
        try:
            lo = window_start(hi, window_days)
        except (TypeError, ValueError):
            return False
        entries = self.index.known_window(member["person"], member["item"], lo, hi)
        if entries is None:
            return False
        inst, day = member["inst"], member["day"]
        return all(d["inst"] == inst and d["day"] == day for d in entries if lo <= d["day"] <= hi)

    def _order_for(self, repeat: PriorResult) -> Order:
        """The order the repeated result fulfils, as recorded when it was placed; a result without one
        stands for its own order."""
        if repeat.order:
            sr = self.read(ORDER_TYPE, repeat.order.split("/", 1)[1])
            order = self._order_facts(sr) if sr else None
            check = self.checks.get(repeat.order)
            if order is not None and check is not None and sr is not None:
                # the check row holds the reasons on_order recorded (late ones apart)
                order = self._remembered(order, sr, check, True)
            if order is not None:
                return replace(order, person=repeat.person, item=repeat.item, ref=repeat.order,
                               patient=order.patient or repeat.patient)
            if check is not None:  # the order is known only from its order-time record
                return _checked_order(check, person=repeat.person, item=repeat.item, ref=repeat.order,
                                      patient=repeat.patient)
        # placed: when huren has held the result final (``final_at``, else when first stored: index.from_doc;
        # a moved prior counts only if theirs by then)
        return Order(person=repeat.person, item=repeat.item, institution=repeat.institution, day=repeat.day,
                     ref=repeat.order, patient=repeat.patient, placed=repeat.held)

    def _void(self, existing: dict[str, Any] | None, why: str) -> None:
        if not existing or existing.get("status") == "void":
            return
        self._put_flag(existing, {**existing, "status": "void", "void_reason": why})
        self._cancel_issue(existing["_id"])

    def _unresulted(self, order_ref: str | None) -> None:
        """An order whose every result was withdrawn (entered in error, cancelled) or stopped being
        a recognition item has not been re-tested: its outcome goes back to pending, so that the
        recognition rate counts it as DOMAIN.md says -- recognised if it is never resulted within
        the item's window. (It stayed "duplicate": a re-test counted against the institution's
        rate for a result that should never have existed.)"""
        if not order_ref:
            return
        check = self.checks.get(order_ref)
        if check is None or check.get("source") != "order" or check.get("outcome") not in _RESULTED:
            return
        if any(d.get("status") not in VOID_STATUSES for d in self.index.by_order(order_ref)):
            return  # a result of another test of the order stands
        self._put_check(check, {**check, "outcome": "pending"})

    def _set_outcome(self, order_ref: str | None, outcome: str) -> None:
        """A result of the order decided: its outcome, and from now on its reasons are recorded
        (``resulted``: a reason sent later is a late reason, see ``_remembered``)."""
        if not order_ref:
            return
        check = self.checks.get(order_ref)
        if check is None:
            return
        resulted = _resulted(check) or outcome in _RESULTED
        if check.get("outcome") != outcome or bool(check.get("resulted")) != resulted:
            self._put_check(check, {**check, "outcome": outcome, "resulted": resulted})

    # -- the two working collections, with their per-day tallies ----------------------------
    def _put_flag(self, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        """Store a flag row and move its tally; inside a write group, once when the group ends."""
        if old == new or self.flags.defer(new, old):
            return
        self.flags.replace(new)
        aggregates.move(self.flag_days, aggregates.flag_bucket(old), aggregates.flag_bucket(new))

    def _put_check(self, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        """Store a check row and move its tally; inside a write group, once when the group ends."""
        if old == new or self.checks.defer(new, old):
            return
        self.checks.replace(new)
        aggregates.move(self.check_days, aggregates.check_bucket(old), aggregates.check_bucket(new))

    def rebuild_tallies(self) -> None:
        """Recompute the report tallies from every flag and check (after a bulk import or restore)."""
        with self.store.transaction():
            aggregates.rebuild(self.flag_days, self.check_days, self.flags.find({}), self.checks.find({}))

    def flag(self, flag_id: str) -> DuplicateFlag | None:
        doc = self.flags.get(flag_id)
        return DuplicateFlag.from_doc(doc) if doc else None

    # -- reviews ---------------------------------------------------------------------------
    def review(self, flag_id: str, decision: str, reason: str, by: str) -> dict[str, Any]:
        """An auditor upholds (→ DetectedIssue final) or overturns (→ cancelled) a flag."""
        if decision not in ("upheld", "overturned"):
            raise BadRequest("decision must be 'upheld' or 'overturned'", expression=["decision"])
        if not reason or not reason.strip():
            raise BadRequest("a review needs a reason", expression=["reason"])
        with self.store.transaction():
            row = self.flags.get(flag_id)
            if row is None:
                raise NotFound(f"no duplicate flag {flag_id}")
            if row["status"] in ("void", "justified", "reported"):
                raise Unprocessable(f"flag {flag_id} is {row['status']}: there is nothing to review")
            # the facts the auditor decided on: the review stands while they do (``_standing_review``)
            review = {"decision": decision, "reason": reason.strip(), "by": by, "at": _now(),
                      "prior": row.get("prior"), "retest_reason": row.get("reason"),
                      "contradicted": row.get("contradicted")}
            reviews = [*(row.get("reviews") or []), review]
            self._put_flag(row, {**row, "status": decision, "reviews": reviews})
            issue = self.read("DetectedIssue", flag_id)
            if issue is None:
                raise NotFound(f"DetectedIssue/{flag_id} is missing")
            issue = {k: v for k, v in issue.items() if k not in ("meta", "text")}
            issue["status"] = FLAG_STATUS[decision]
            issue["mitigation"] = [m for m in issue.get("mitigation") or ()
                                   if not any(c.get("system") == "urn:huren:recognition-review"
                                              for c in (m.get("action") or {}).get("coding") or ())]
            for r in reviews:
                issue["mitigation"].append({
                    "action": {"coding": [{"system": "urn:huren:recognition-review", "code": r["decision"]}],
                               "text": r["reason"]},
                    "date": r["at"], "author": {"display": r["by"]}})
            self.repository.update(issue)
            return {**row, "status": decision, "reviews": reviews}

    # -- CDS feedback ----------------------------------------------------------------------
    def record_choice(self, key: str, *, order: Order, recognisable: Sequence[str], outcome: str,
                      reason: str | None = None) -> None:
        """The doctor's choice at the moment of ordering (CDS Hooks feedback): a draft order
        recognised (never placed) counts as recognised; an override is recorded with its reason."""
        with self.store.transaction():
            self._put_check(self.checks.get(key), {
                "_id": key, "source": "cds", "person": order.person, "patient": order.patient, "item": order.item,
                "category": self._rules.items[order.item].category if order.item in self._rules.items else None,
                "inst": order.institution, "day": order.day.isoformat(),
                "recognisable": list(recognisable), "reason": reason, "reason_effect": None,
                "doctor": None, "dept": None,
                "outcome": outcome, "issue": None, "checked": _now(),
            })


class _NotItems(NamedTuple):
    """The results of an ingest batch built from a plan that is no recognition item, by the
    identity of their ``code`` objects (with their ``performer`` and type), under the rules they
    were classified by."""

    rules: Rules
    codes: dict[int, tuple[Any, Any, str]]


def _standing_review(existing: dict[str, Any] | None, reviews: Sequence[dict[str, Any]], prior: str,
                     decision: Any) -> str | None:
    """The auditor's last decision ("upheld" / "overturned") when it still stands for ``decision``:
    the flag is one an auditor reviews (not justified, not only reported) and the facts the review
    was made on stand -- the same prior result, the same order-time reason, the same finding of a
    reason contradicted by records. Otherwise None: the flag is decided again, the review stays in
    its history (the flag row's ``reviews``, the DetectedIssue's mitigations).

    Why: an auditor's "overturned" on a self-pay repeat (R05/R07) went back to self-pay whenever
    the flag was decided again (a copy of the result, a prior withdrawn and sent again), since
    only a decision with money at stake kept the review; and an upheld flag stayed upheld when
    its prior was withdrawn and another result became the prior, a decision nobody made. A review
    stored before it recorded its facts is judged against the facts of the flag it was made on."""
    if not reviews or decision.status in (JUSTIFIED_STATUS, REPORTED):
        return None
    last = reviews[-1]
    if last.get("decision") not in ("upheld", "overturned"):
        return None
    if "prior" in last:
        facts = (last.get("prior"), last.get("retest_reason"), last.get("contradicted"))
    elif existing is not None:
        facts = (existing.get("prior"), existing.get("reason"), existing.get("contradicted"))
    else:
        return None
    return last["decision"] if facts == (prior, decision.reason, decision.contradicted) else None


def _enters(before: dict[str, Any] | None, doc: dict[str, Any]) -> bool:
    """Did an index entry just become a result that may be a prior: final, of a person, and
    before not so, or of another test (day, item, institution, person, analytes)?"""
    if doc.get("status") not in FINAL_STATUSES or not doc.get("person"):
        return False
    if before is None or before.get("status") not in FINAL_STATUSES or not before.get("person"):
        return True
    return group_key(before) != group_key(doc) or before.get("analytes") != doc.get("analytes")


def _resulted(check: dict[str, Any] | None) -> bool:
    """Has a result of this checked order been decided on (its reasons recorded for good)?

    Sticky (``resulted``): an order whose results were all withdrawn is pending again, but a
    reason sent after its first result is still not an order-time reason. A row stored before the
    field existed tells by its outcome."""
    return bool(check) and bool(check.get("resulted") or check.get("outcome") in _RESULTED)  # type: ignore[union-attr]


def _late_reasons(order: Order, check: dict[str, Any] | None, recorded: bool) -> tuple[list[str], str | None]:
    """The reasons (and text) this version of an order states that were first recorded after a
    result of it was decided on, added to those already kept late: shown on the flag for the
    auditor, who may uphold or overturn it; never a reason for the decision itself. ``recorded``:
    the order's reasons are recorded for good (a result decided, or this version came with one)."""
    if check is None:
        return [], None
    late = list(check.get("late_reasons") or ())
    text = check.get("late_reason_text")
    if not recorded:
        return late, text
    reasons, new_text = _new_reasons(order, check)
    late = list(dict.fromkeys([*late, *reasons]))
    if new_text is not None and not text:
        text = new_text
    return late, text


def _new_reasons(order: Order, check: dict[str, Any]) -> tuple[list[str], str | None]:
    """What this version of an order states that its check row has not recorded: the reason codes
    not among its reasons, and its reason text when it differs from the recorded one (else None).
    One test for both of its askers: is a result message's copy of the order stating something new
    (``Recognition._with_its_result``), and which of it is late (``_late_reasons``)."""
    recorded = set(check.get("reasons") or ())
    text = order.reason_text if order.reason_text and order.reason_text != check.get("reason_text") else None
    return [r for r in order.reasons if r not in recorded], text


def _outcome(status: str) -> str:
    """A checked order's outcome for the status of its test's flag (an auditor's review included)."""
    return status if status in ("justified", "self_pay", "reported") else "duplicate"


def _checked_order(check: dict[str, Any], *, person: str | None, item: str | None, ref: str | None,
                   patient: str | None) -> Order:
    """The order a check row recorded when it was placed (institution, day, reasons, analytes,
    the instant huren first saw it), for ``person`` and ``item``."""
    return Order(person=person, item=item, institution=check["inst"], day=date.fromisoformat(check["day"]),
                 ref=ref, patient=patient, reasons=tuple(check.get("reasons") or ()),
                 reason_text=check.get("reason_text"), analytes=tuple(check.get("analytes") or ()),
                 placed=check.get("placed"))


def _version(resource: dict[str, Any]) -> int:
    version = (resource.get("meta") or {}).get("versionId")
    return int(version) if isinstance(version, str) and version.isdigit() else 0


def parse_day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise BadRequest(f"{name}: not a date (YYYY-MM-DD): {value!r}", expression=[name]) from exc
