"""What one write group's hook call, or a whole ingest batch, keeps at hand: the versions the
group stored, each order's facts, and the rows and index windows read once for all of them
(``Recognition.batch``, ``_preview``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

from engine.errors import Conflict
from engine.recognition import aggregates
from engine.recognition.decision import Order
from engine.recognition.detected_issues import issue_id
from engine.recognition.facts import ORDER_TYPE, RESULT_TYPES, Planned, ref_of
from engine.recognition.index import result_key, window_end, window_start
from engine.recognition.rules import Rules
from engine.recognition.state import FLAG_TRIES, RecognitionState, version_of

# what a batch's facts are read from before it is stored (``BatchScope._preview``)
_PREVIEW_READ = frozenset({"Patient", "Organization", "Encounter"})
_T = TypeVar("_T")


class BatchScope(RecognitionState):
    """The hook's scopes: per write group (``_in_group``) and per ingest batch (``batch``)."""

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
        a batch's rows count in a few buckets. A scope that fails writes nothing.

        The flag rows go first, each a compare-and-set (``_flags_out``): one decided again because another writer
        got there first sets its order's outcome again, which the check rows then carry."""
        opened = [memo for memo in (self.index, self.checks, self.flags) if memo.open()]
        if self.flags in opened:
            self._local.flag_redo = {}
        try:
            yield
            flags = self._flags_out() if self.flags in opened else []
            if self.index in opened:
                self.index.flush()
            if self.checks in opened:
                aggregates.move_many(self.check_days, [
                    (aggregates.check_bucket(before), aggregates.check_bucket(after))
                    for before, after in self.checks.take_deferred()])
            aggregates.move_many(self.flag_days, [
                (aggregates.flag_bucket(before), aggregates.flag_bucket(after)) for before, after in flags])
        finally:
            for memo in reversed(opened):
                memo.close()
            if self.flags in opened:
                self._local.flag_redo = None

    def _flags_out(self) -> list[tuple[dict[str, Any] | None, dict[str, Any]]]:
        """Write the flag rows the scope decided, each a compare-and-set on the row its decision read
        (``_cas_flag``); one another writer stored meanwhile (an auditor's review, on MongoDB without
        transactions: rv43b HIGH 2) is decided again by its ``redo`` (``_put_flag``) from the row as stored now
        -- its reviews kept, its status theirs where they still stand, its DetectedIssue written again from them
        -- and written again, at most ``FLAG_TRIES`` rounds. Never settled: ``Conflict`` (409), the scope's writes
        undone, rather than a review lost. (before, after) of each row written, for the tallies."""
        written: list[tuple[dict[str, Any] | None, dict[str, Any]]] = []
        redo: dict[str, Callable[[], object] | None] = self._local.flag_redo
        for _ in range(FLAG_TRIES):
            done, lost = self.flags.take_deferred_if(self._cas_flag)
            written.extend(done)
            if not lost:
                return written
            for flag_id in lost:
                again = redo.get(flag_id)
                if again is None:  # a row put as it is (``_put_flag`` without a decision to make again)
                    raise Conflict(f"recognition flag {flag_id} was written by another meanwhile: try again")
                # its DetectedIssue as stored now too (the review wrote it): not the version this group wrote
                self.repository.read_again("DetectedIssue", flag_id)
                if (current := getattr(self._local, "current", None)) is not None:
                    current.pop(f"DetectedIssue/{flag_id}", None)
                self._in_group(again)
        raise Conflict(f"recognition flag(s) {', '.join(sorted(lost))} written by others meanwhile "
                       f"{FLAG_TRIES} times: send the message again")

    def _preview(self, resources: Sequence[dict[str, Any]], planned: Mapping[str, Planned]
                 ) -> NotItems:
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
        # id(code) -> (code, performer, type) (held: the ids are not reused while they live), and the
        # same by "Type/id" (``NotItems.passes``: a later version the merge rules made a new dict of)
        skip: dict[int, tuple[Any, Any, str]] = {}
        skip_refs: dict[str, tuple[Any, Any, str]] = {}
        answers: dict[Any, tuple[str | None, str | None] | None] = {}  # plan -> its kept answer
        results: list[tuple[dict[str, Any], str, str]] = []  # (result, type, "Type/id")
        new: list[str] = []  # its recognition Observations
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
                    skip[id(code)] = skip_refs[ref] = (code, r.get("performer"), rtype)
                    continue  # not a recognition item (most of a lab report's results)
                else:
                    facts.classify_planned(r, plan)
            result = facts.result(r, batch=True)
            if result is not None and rtype == "Observation":
                new.append(ref)
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
        # the ranges first: they hold the stored check rows of the other orders of each test from
        # the result's day on (where its range starts), which the read by id then leaves out
        # instead of reading and parsing them a second time; the batch's own new orders are not
        # stored yet and are read by id (as absent) either way
        self.checks.prefetch_ranges(later)
        self.checks.prefetch([*orders, *self._orders_of_tests(tests)])
        self.flags.prefetch(flags)
        self.index.prefetch_patients(patients)
        self.index.prefetch_ahead(new)  # reports stored ahead of its results (``Repeats._reports_of``)
        return NotItems(rules, skip, skip_refs)

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
        return skip.passes(resource)

    def _hold(self, resource: dict[str, Any]) -> None:
        """Note a stored version for ``read`` (a newer one already noted stands)."""
        current = self._local.current
        ref = ref_of(resource)
        held = current.get(ref)
        if held is None or version_of(held) < version_of(resource):
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


class NotItems(NamedTuple):
    """The results of an ingest batch built from a plan that is no recognition item, by the
    identity of their ``code`` objects (with their ``performer`` and type), and by their
    "Type/id" (``refs``: each carried by one message of the batch only), under the rules they
    were classified by."""

    rules: Rules
    codes: dict[int, tuple[Any, Any, str]]
    refs: dict[str, tuple[Any, Any, str]]

    def passes(self, resource: dict[str, Any]) -> bool:
        """Is ``resource`` one of these results, holding the very ``code`` and ``performer`` objects
        the preview classified (one look-up), or else -- the same result as another dict: a later
        version, which the merge rules make a new dict of over the stored one, before the HR mark
        and the hook see it -- a ``code`` and ``performer`` equal to them, of the same type?

        Why by value too (thirty-eighth round, perf38b): a lab's re-run (every result a later
        version) passed the identity test only before its merge, so each of its results was
        classified again by its codings after it, by the HR mark and by the hook (a key of its
        codings and performers built and looked up twice a result, ~0.45 M instructions of a 23 M
        re-run), for the answer the preview had. What is kept here is the answer of a plan kept
        by plan (``FactReader.planned_answer``): a function of the type, the codings and the
        performers under the rules alone (an institution read from an Organization not yet
        known is not kept), so equal ones have it too; a version the merge made otherwise (its
        stored codings kept) is not equal and is classified as before."""
        code = resource.get("code")
        seen = self.codes.get(id(code))
        if seen is not None and seen[0] is code and seen[1] is resource.get("performer") \
                and seen[2] == resource.get("resourceType"):
            return True
        if code is None or not self.refs:
            return False
        rtype, rid = resource.get("resourceType"), resource.get("id")
        seen = self.refs.get(f"{rtype}/{rid}") if type(rid) is str and type(rtype) is str else None
        return seen is not None and seen[2] == rtype and seen[0] == code and seen[1] == resource.get("performer")
