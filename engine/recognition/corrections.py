"""ID-number corrections (ADT^A08 on a Patient): the index entries, the orders' check rows and
the flags follow the record to its right person."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from engine.recognition.decision import Order, Recognisable
from engine.recognition.detected_issues import recognisable_issue
from engine.recognition.facts import ORDER_TYPE, merged_away, national_id, ref_of
from engine.recognition.index import group_key, window_end
from engine.recognition.state import RecognitionState, checked_order, instant, now


class _Needs(Protocol):
    """What an ID-number correction calls on the other parts of ``Recognition`` (through ``self``)."""

    def _evaluate_flag(self, member: dict[str, Any]) -> list[dict[str, Any]]: ...  # repeats.Repeats
    def _recheck_dependents(self, before: dict[str, Any], doc: dict[str, Any] | None) -> None: ...  # prior_changes
    def check(self, order: Order) -> list[Recognisable]: ...  # order_time.OrderTime
    def _in_group(self, decide: Callable[[], None]) -> None: ...  # batch_scope.BatchScope


if TYPE_CHECKING:
    _Others = _Needs
else:
    _Others = object


class IdCorrections(RecognitionState, _Others):
    """A Patient stored or corrected after its results (``Recognition._on_patient``)."""

    def on_patient_indexed(self, patient: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        """A write hook on Patient run after the patient index's own (registered after it): a record
        merged away with no ID number of its own is keyed by the person the index has just put it
        in (``FactReader.merged_person``).

        Why a hook of its own: the batch hook (``on_write_many``) runs before the index's hook, so
        for the very version that merges a record (ADT^A40, an operator's merge written as a new
        version) the index did not hold the merge yet and its results stayed keyed by nobody. And
        a survivor whose ID number is corrected: the records merged into it follow its person as
        the index now has it."""
        links = patient.get("link")
        if previous is not None and merged_away(previous) and not merged_away(patient) \
                and national_id(patient) is None:
            # a merge undone (the hospital's ADT^A37, or any version that drops the replaced-by
            # link): the record's results are keyed again as the index now has it, and the flags
            # and reminders decided on them decided again, as an operator's ``$unlink`` does
            # (rvrvpay26: this returned early for a record left with no links)
            self._in_group(lambda: self._on_patient(patient, previous, decided=True))
            return []
        if not links:  # most records: merged with nothing (no number read)
            return []
        if merged_away(patient) and national_id(patient) is None:
            self._in_group(lambda: self._on_patient(patient, previous, decided=True))
        elif previous is not None and any(isinstance(link, dict) and link.get("type") == "replaces" for link in links) \
                and national_id(previous) != national_id(patient):
            # a survivor whose ID number changed: the records merged into it follow its person
            self._in_group(lambda: self._on_merged_into(patient))
        return []

    def _on_merged_into(self, patient: dict[str, Any]) -> None:
        """The records the patient index holds as merged into ``patient``'s person (``FactReader.merged_records``)
        keyed again by it (``merged_person``), as the index now decides."""
        for pid in self.facts.merged_records(patient):
            merged = self.read("Patient", pid)
            if merged is not None:
                self._on_patient(merged, merged, decided=True, merges=False)

    def _on_patient(self, patient: dict[str, Any], previous: dict[str, Any] | None, *, decided: bool = False,
                    merges: bool = True) -> None:
        """A Patient stored or corrected after its results: keep the index's person in step.

        The person is the patient index's (``FactReader.person_of``): a record it leaves out of
        its number's person (a conflict, an operator's ``$unlink``) gives its results to nobody,
        and the flags and reminders decided on them are decided again (voided).
        A version with the national ID of the one before, linked to its person, changes no entry:
        every version passed through here, so the entries already carry that person (and no query
        is made) -- unless the index ``decided`` again on the record itself (an operator's act)."""
        person = self.facts.person_of(patient)
        if previous is not None and not decided and national_id(previous) == person == national_id(patient):
            return
        if merges and decided:
            # the records merged into this one are keyed by its person (``FactReader.merged_person``):
            # an operator's decision on it is theirs too (an ID number corrected here: ``on_patient_indexed``)
            self._on_merged_into(patient)
        docs = self.index.by_patient(ref_of(patient))
        moved = [(d, {**d, "person": person}) for d in docs if d.get("person") != person]
        if docs:
            # a correction: for the person it gives them to, the results count as held from now
            self.index.set_person(docs, person, instant() if previous is not None else None)
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
            order = checked_order(check, person=person, item=item.code, ref=check_id, patient=check.get("patient"))
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
            self._write_issue(recognisable_issue(order, matches, rules, check.get("checked") or now()))
        self._put_check(check, {**check, "person": person, "recognisable": recognisable,
                                "doctor": doctor, "dept": dept})
        return recognisable != list(check.get("recognisable") or ())
