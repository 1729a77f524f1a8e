"""A prior that changes decides again the repeats that rest on it: one that leaves (withdrawn, no
longer final, moved) and one that becomes recognisable after its repeats were decided."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from engine.recognition.decision import FINAL_STATUSES, taken_before
from engine.recognition.facts import VOID_STATUSES
from engine.recognition.index import group_key, window_end
from engine.recognition.state import RecognitionState, is_resulted


class _Needs(Protocol):
    """What a prior's change calls on the other parts of ``Recognition`` (through ``self``)."""

    def _evaluate_flag(self, member: dict[str, Any]) -> list[dict[str, Any]]: ...  # repeats.Repeats
    def _orders_within(self, person: str, item: str, day: str, window_days: int) -> list[dict[str, Any]]: ...  # corrections


if TYPE_CHECKING:
    _Others = _Needs
else:
    _Others = object


class PriorChanges(RecognitionState, _Others):
    """Repeats decided again when their prior changes."""

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
        same = doc is not None and group_key(doc) == group_key(before) and doc.get("analytes") == before.get("analytes") \
            and doc.get("at") == before.get("at")
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
        """The tests that results which became recognisable in this write group (``enters``: a
        final result stored, a preliminary made final, a final result moved to another test) may
        be the prior of, decided again: the tests of the person's orders for the item placed from
        the result's day to the end of its window that were already resulted, and the results
        dated in that span whose order has no check row there (none, or an order never checked:
        such a result stands for its own order, on its own day).

        Why: DOMAIN.md flags an order *for which a recognisable prior existed* (R98 asks whether
        huren held it when the order was placed), so a prior that reaches huren after its repeat
        was decided -- a lab's feed a day late, a preliminary made final, a date corrected into
        the window -- flags the repeat as it would have had it come first. The repeat's order-time
        check row is left as it was: the rate counts what was recognisable when it was placed.
        An order the result's own test fulfils is not its repeat (a report and its observations,
        two orders of one test), nor is a test of the prior's own day unless both times were sent
        and its order (or, without a checked order, its result) is the later one: of two same-day
        results known by their day alone each is within the other's window, and the morning's
        result had been flagged as the repeat of the afternoon's (every same-day pair flagged
        twice); such a repeat is decided when it arrives, as before this re-decision existed. With
        the times (fifteenth round), the afternoon's test is decided again when the morning's
        result arrives after it, and the morning's never against the afternoon's. Nothing is returned: what another test's flag became is the
        repeating institution's business, not the ACK of the lab that sent the prior.

        Cost: the check rows and entries asked are read with the batch's (or the group's) windows
        (``_preview``, ``_plan``); a resulted later order's entries are one query each."""
        items = self._rules.items
        for own, prior in entered.items():
            item = items.get(prior["item"])
            if item is None or not prior.get("person"):
                continue
            person, day, order, at = prior["person"], prior["day"], prior.get("order"), prior.get("at")
            hi = window_end(day, item.window_days)
            tests: dict[str, dict[str, Any]] = {}  # a member of each, one that stands if any does
            checked: set[str] = set()
            mine: set[str | None] | None = None  # the orders its own test fulfils, when asked
            for check in self._orders_within(person, item.code, day, item.window_days):
                checked.add(check["_id"])
                if check["_id"] == order or not is_resulted(check) or (
                        check.get("day") == day and not taken_before(at, check.get("at"))):
                    continue  # its own order, not resulted yet (its result will be decided against it), or its day
                if mine is None:
                    mine = {d.get("order") for d in self.index.group(prior)}
                if check["_id"] in mine:
                    continue  # another order of its own test (two orders of one test on one day)
                for d in self.index.by_order(check["_id"]):
                    if d.get("person") == person and d["item"] == item.code:
                        _member(tests, d)
            # results dated in the span whose order was not checked (none, or not stored): a
            # result without an order is decided on its own day
            for d in self.index.between(person, item.code, day, hi):
                if d.get("order") not in checked and (d.get("day") != day or taken_before(at, d.get("at"))):
                    _member(tests, d)
            tests.pop(own, None)
            for key in sorted(tests):
                if tests[key].get("status") not in VOID_STATUSES:
                    self._evaluate_flag(tests[key])


def _member(tests: dict[str, dict[str, Any]], entry: dict[str, Any]) -> None:
    """Keep ``entry`` as its test's member unless one that stands (not withdrawn) is kept."""
    key = group_key(entry)
    kept = tests.get(key)
    if kept is None or (kept.get("status") in VOID_STATUSES and entry.get("status") not in VOID_STATUSES):
        tests[key] = entry


def enters(before: dict[str, Any] | None, doc: dict[str, Any]) -> bool:
    """Did an index entry just become a result that may be a prior: final, of a person, and
    before not so, or of another test (day, item, institution, person, analytes)?"""
    if doc.get("status") not in FINAL_STATUSES or not doc.get("person"):
        return False
    if before is None or before.get("status") not in FINAL_STATUSES or not before.get("person"):
        return True
    return group_key(before) != group_key(doc) or before.get("analytes") != doc.get("analytes") \
        or before.get("at") != doc.get("at")
