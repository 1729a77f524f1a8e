"""Result time: a result's index entry, and the flag of the test it belongs to decided (again):
what its repeat means for payment, the money at stake, the order's outcome."""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from engine.insurance.charges import latest_lines, line_key, money
from engine.insurance.reading import search_pages
from engine.insurance.tiers import fen, fen_text, stored_fen
from engine.recognition.decision import JUSTIFIED as JUSTIFIED_STATUS
from engine.recognition.decision import (
    REPORTED,
    Order,
    PaymentDecision,
    PriorResult,
    Recognisable,
    Sources,
    decide,
    decisive,
    entry_rank,
    find_recognisable,
)
from engine.recognition.detected_issues import CODE_SYSTEM, flag_code, flag_issue, issue_id, repriced_issue
from engine.recognition.facts import ORDER_TYPE, VOID_STATUSES, own_text, ref_of
from engine.recognition.flags import DuplicateFlag
from engine.recognition.index import from_doc, group_key, listing_reports, result_key, window_start
from engine.recognition.pairs import pair_up
from engine.recognition.prior_changes import enters
from engine.recognition.repricing import repriced_from
from engine.recognition.state import (
    FLAG_STATUS,
    RESULTED,
    RecognitionState,
    checked_order,
    instant,
    is_resulted,
    now,
    outcome_of,
    version_of,
)

_ORDER_PREFIX = f"{ORDER_TYPE}/"  # a ServiceRequest reference
_OBSERVATION_PREFIX = "Observation/"  # what a report's ``result`` lists
_REPORT_PREFIX = "DiagnosticReport/"


class _Needs(Protocol):
    """What a test's flag decision calls on the other parts of ``Recognition`` (through ``self``)."""

    def _order_facts(self, sr: dict[str, Any]) -> Order | None: ...  # batch_scope.BatchScope
    def _recheck_dependents(self, before: dict[str, Any], doc: dict[str, Any] | None) -> None: ...  # prior_changes
    def _recheck_later(self, entered: Mapping[str, dict[str, Any]]) -> None: ...  # prior_changes.PriorChanges
    def _remembered(self, order: Order, sr: dict[str, Any], check: dict[str, Any], recorded: bool) -> Order: ...  # order_time


if TYPE_CHECKING:
    _Others = _Needs
else:
    _Others = object


class Repeats(RecognitionState, _Others):
    """The flag of a performed test (``Recognition.on_result``, ``_evaluate_flag``)."""

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
        listing: tuple[str, ...] | None = None
        if facts is not None and facts.ref.startswith(_OBSERVATION_PREFIX):
            facts, listing = self._linked(facts, before, first=version_of(resource) == 1)
        if facts is None:
            if before is not None:
                self.index.delete(ref)
                self._recheck_dependents(before, None)
                return self._evaluate_flag(before), None
            return [], None
        doc = self.index.put(facts, instant(), before=before, read=True, reports=listing)
        if before is None and listing is not None:
            self.index.drop_ahead(ref)  # its entry keeps the reports now
        if before is not None and before.get("order") and before["order"] != doc["order"]:
            # its link moved (``_linked``): the order it left goes back to what it is without it
            # (its outcome depends on the index entries alone, the one just written among them)
            self._unresulted(before["order"])
        entered = getattr(self._local, "entered", None)
        if entered is not None and enters(before, doc):
            entered.setdefault(group_key(doc), doc)
        if before is not None:
            self._recheck_dependents(before, doc)
            if group_key(before) != group_key(doc):
                return [*self._evaluate_flag(doc), *self._evaluate_flag(before)], None
        return [], doc

    def _linked(self, facts: PriorResult, before: dict[str, Any] | None, *, first: bool
                ) -> tuple[PriorResult, tuple[str, ...]]:
        """An Observation's facts as the reports that list it say now (``_reports_of``): the
        order its report's order numbers name, for a result that names none of its own, and the day
        of its test, when a report that is itself a recognition result of its item lists it.

        The order (evid35): the converter keys a message's ServiceRequest by its order numbers
        (ORC-2/OBR-2 placer, OBR-3 filler) and bases the report on it whatever OBR-4 says. A report
        under a local panel code no map knows (GAN^肝功能^L) is no recognition item and has no entry:
        its results, the Observations of ALT and AST, were nobody's, so the flag had no order and the
        order's check row never saw its result. Linked now to the order a listing report is based
        on -- only to an order whose order-time check recorded this person and item: an ALT in a
        blood count's report is not the count's order, and numbers that name no checked order link
        nothing. Never a guess from a code; two such orders for one result link none.

        Only a report that stands and speaks of this result's subject says anything (relink36,
        rv36b): a report entered in error or cancelled is no statement that its results are its
        order's, and a report of another patient says nothing of whose order these results are (its
        patient compared first, then its person by the identity rules, ``FactReader.person``). The
        link is what the stored reports say now, not what was said before: a report voided, deleted
        or corrected to list other results takes the link back; a later version of the result sent
        without its report keeps it only because its report still lists it.

        The test (relink36): a report that is itself a recognition result of the item is the test's
        own entry and carries the order (linking its Observations too made a second test of the same
        order, 8f7d9347). Its results are of its test, whatever day each was analysed on: a panel
        drawn at 20:00 whose ALT was analysed after midnight (OBX-14 the next day) stood as two tests
        (``index.group_key``: one test is one day), flagged twice, the money counted twice. The
        Observation's entry takes its report's day (its own time of day is kept).

        Also handed back: the references of every report that lists the result now, whatever it
        says (link37), kept on its entry (``index.listing_reports``) so that its next version reads
        those reports by id instead of searching the store (``_reports_of``)."""
        ref = facts.ref
        orders: set[str] = set()
        days: set[date] = set()
        listing: list[str] = []
        plain = {"reference": ref}  # how the converter lists a result: found by one C-level ``in``
        for report in self._reports_of(ref, before, first=first):
            listed = report.get("result") or ()
            if plain not in listed and not any(isinstance(r, dict) and r.get("reference") == ref for r in listed):
                continue
            listing.append(ref_of(report))
            # what it could say first (its item: a remembered reading; its orders: their check rows,
            # remembered), its status and subject only then
            own = self._report_facts(report)
            mine = own is not None and own.item == facts.item  # the test's own entry: it carries the order
            fits = () if mine or facts.order is not None else [
                o for o in _based_on(report) if o not in orders and _checked_for(self.checks.get(o), facts)]
            if not (mine or fits) or report.get("status") in VOID_STATUSES or not self._of_subject(report, facts):
                continue
            if own is not None and mine:
                days.add(own.day)
            else:
                orders.update(fits)
        if len(days) == 1:
            day = days.pop()
            if day != facts.day:
                facts = replace(facts, day=day)
        return (replace(facts, order=orders.pop()) if len(orders) == 1 else facts), tuple(listing)

    def _reports_of(self, ref: str, before: dict[str, Any] | None, *, first: bool) -> Iterator[dict[str, Any]]:
        """The reports ``_linked`` reads for ``ref``, in their current versions: those at hand (the
        write group's, and the stored one ``relink_listed`` puts the results of again,
        ``_local.listing``), then the stored ones that list it and are not at hand.

        Why the store (rv36b): reading only the reports at hand let the last written decide -- a
        second report naming another order took the link from the stored one that still said
        otherwise, and a report voided, deleted or no longer listing the result left its link
        behind.

        Which stored ones (link37), cheapest first:
        - an entry that kept the reports listing it when it was last put (``index.listing_reports``):
          those, each read by id -- a report written since that lists it, or stopped listing it, or
          was deleted, put it again (``relink_listed``, ``relink_deleted``), so the list is
          the store's; for a lab's correction (its report at hand) nothing is read at all (the
          search cost the hook +24 % on such a message, bench/relink36_corrections.py);
        - a first version written together with a report (a message's report and its results, the
          everyday case): nothing stored lists a result before it exists but a report stored ahead
          of it, written apart, which ``_relink`` noted (``index.listed_ahead``: one query for a
          whole ingest batch's new results, ``_preview``);
        - otherwise (no report at hand, an entry an earlier release wrote, a later version with no
          entry): one indexed search, ``DiagnosticReport?result=``."""
        group = getattr(self._local, "group", None) or ()
        listing = getattr(self._local, "listing", None)
        seen: set[str] = set()
        # a plain loop: this runs for each recognition Observation of a message
        for resource, _ in (*group, (listing, None)) if listing is not None else group:
            if resource.get("resourceType") == "DiagnosticReport":
                at = ref_of(resource)
                if at not in seen:  # the report ``relink_listed`` puts again is its group's too
                    seen.add(at)
                    yield resource
        known = listing_reports(before)
        if known is None and first:
            ahead = self.index.listed_ahead(ref)  # read alone too: the note goes once its entry is put
            if seen:
                known = ahead
        if known is None:
            for report in search_pages(self.repository, "DiagnosticReport", [("result", ref)]):
                if ref_of(report) not in seen:
                    yield report
            return
        for kept in known:
            if kept not in seen and kept.startswith(_REPORT_PREFIX):
                report = self.read("DiagnosticReport", kept[len(_REPORT_PREFIX):])
                if report is not None:
                    yield report

    def _report_facts(self, report: dict[str, Any]) -> PriorResult | None:
        """A report's own facts: those the group's plan read for it (``_local.facts``), else read."""
        kept = (getattr(self._local, "facts", None) or {}).get(ref_of(report))
        return kept[1] if kept is not None and kept[0] is report else self.facts.result(report)

    def _of_subject(self, report: dict[str, Any], facts: PriorResult) -> bool:
        """Is ``report`` about the subject of ``facts``: its Patient, or a record of the same person
        (the identity rules' decision, ``FactReader.person``)?"""
        patient = self.facts.patient_ref(report)
        if patient is None:
            return False
        return patient == facts.patient or (facts.person is not None and self.facts.person(patient) == facts.person)

    def relink_listed(self, report: dict[str, Any], skip: Container[str] = (), *,
                      dropped: Sequence[str] = ()) -> list[dict[str, Any]]:
        """A report written (any path: a message, a FHIR PUT or POST), or the order it is based on
        checked after it (``OrderTime.on_order``): the results it lists that were stored in another
        write group (``skip``: the group's own, which ``_linked`` links as they are put), and those
        its previous version listed and it no longer does (``dropped``), put again, so the one link
        rule (``_linked``) decides their order by what the reports say now; the test of each result
        whose link moved is decided again, and an order left with no result goes back to what it is
        without them (``_put_result``: ``_unresulted``).

        Why (rvevid35): the link was made only when the result was put. A report corrected to
        another order (its ``basedOn`` changed by a PUT), a report stored after its results, or
        a result that arrived before its order was checked left the flag, its money and the
        order-time check on the old order or on none, while the report itself said otherwise.
        A result naming an order of its own is put again unchanged (its facts keep that order).
        The results a report stopped listing (rv36b) are no longer its to link."""
        listed = [listed.get("reference") if isinstance(listed, dict) else None for listed in report.get("result") or ()]
        local = self._local
        outer, local.listing = getattr(local, "listing", None), report
        try:
            return self._relink([*listed, *dropped], skip, report, unlisting=ref_of(report) if dropped else None)
        finally:
            local.listing = outer

    def relink_deleted(self, report: dict[str, Any]) -> list[dict[str, Any]]:
        """A report deleted (``report``: its last version): the results it listed put again, linked
        by what the reports still stored say (rv36b: the link outlived a deleted report); those with
        no entry taken out of the notes of reports stored ahead (``index.unnote_ahead``)."""
        return self._relink([r.get("reference") if isinstance(r, dict) else None for r in report.get("result") or ()],
                            unlisting=ref_of(report))

    def _relink(self, refs: Sequence[Any], skip: Container[str] = (),
                report: dict[str, Any] | None = None, *, unlisting: str | None = None) -> list[dict[str, Any]]:
        """The indexed results of ``refs`` (those not in ``skip``) put again; the test of each whose
        link moved decided again (``relink_listed``). ``report``, the report written: a result it
        lists of another subject is named in a note (it links nothing for it, ``_linked``).
        ``unlisting``: the report that no longer lists those of ``refs`` it does not list now
        (deleted, or written without them): a result of them with no entry leaves its note
        (``index.unnote_ahead``; rv37f: the notes outlived their reports)."""
        entries = []
        issues: list[dict[str, Any]] = []
        listed = {r.get("reference") for r in (report or {}).get("result") or () if isinstance(r, dict)}
        unindexed: list[str] = []  # listed Observations with no entry: stored, or listed ahead of it
        for ref in dict.fromkeys(refs):
            if not isinstance(ref, str) or ref in skip or ref.count("/") != 1:
                continue
            before = self.index.get(ref)
            if before is None:  # no recognition result (never indexed: nothing to link)
                if report is not None and ref in listed and ref.startswith(_OBSERVATION_PREFIX):
                    unindexed.append(ref)
                elif unlisting is not None and ref not in listed and ref.startswith(_OBSERVATION_PREFIX):
                    self.index.unnote_ahead(ref, unlisting)
                continue
            entries.append((ref, before))
            if report is not None and ref in listed and report.get("status") not in VOID_STATUSES \
                    and ref.startswith(_OBSERVATION_PREFIX) and not self._of_subject(report, from_doc(before)):
                issues.append(_other_subject(report, ref))
        if report is not None and unindexed:
            self._note_unindexed(unindexed, ref_of(report))
        tests: dict[str, dict[str, Any]] = {}
        for ref, before in entries:
            resource = self.read(*ref.split("/", 1))
            if resource is None:
                continue
            found, doc = self._put_result(resource)
            issues.extend(found)
            if doc is not None and doc.get("order") != before.get("order"):
                tests.setdefault(group_key(doc), doc)
        for doc in tests.values():
            issues.extend(self._evaluate_flag(doc))
        return issues

    def _note_unindexed(self, refs: Sequence[str], report: str) -> None:
        """The Observations ``report`` lists that have no index entry: one not stored is listed ahead
        of it (a FHIR client's report written first) and noted, so that its first version reads this
        report whatever is written with it (link37); the note of one stored in an earlier write group
        is dropped (``index.drop_stored``): its first version was put then, and a note is read only
        for a first version (``_reports_of``) -- a result stored but no recognition item, whose first
        version ``_plan`` passed over, kept it for as long as a report listed it (rv37f, linkfix37).

        Which are stored is one read for all of them (``_stored``): a report listing 19 locally coded
        results paid 19 reads a PUT (~3.5 % of it, linkfix37's measure; wardlink38)."""
        stored = self._stored(refs)
        group = {ref_of(r) for r, _ in getattr(self._local, "group", None) or ()}
        for ref in refs:
            if ref not in stored:
                self.index.note_ahead(ref, report)
        # (a result of this very group is not past its first version's put yet: its note stays)
        self.index.drop_stored([ref for ref in refs if ref in stored and ref not in group])

    def _stored(self, refs: Sequence[str]) -> set[str]:
        """Those of ``refs`` (``Observation/<id>``) that are stored and not deleted, as ``read`` finds
        them -- the write group's versions at hand, the rest in one read of the repository
        (``writers``: the current versions by id, the group's staged ones included, none parsed)."""
        current = getattr(self._local, "current", None) or {}
        found = {ref for ref in refs if current.get(ref) is not None}
        rest = [ref for ref in refs if ref not in found]
        if rest:
            stored = self.repository.writers("Observation", [ref[len(_OBSERVATION_PREFIX):] for ref in rest])
            found.update(ref for ref in rest if ref[len(_OBSERVATION_PREFIX):] in stored)
        return found

    def _price(self, item: Any, match: Recognisable, group: Sequence[dict[str, Any]], institution: str,
               order_ref: str | None, ordered: tuple[str, ...] = ()) -> tuple[Decimal, str]:
        """The money at stake: the billed charge line of the repeated test where one exists and the
        whole of what was ordered (``ordered``: the order's analytes, () the whole panel) was
        repeated, else the catalogue price of what was repeated. An ALT ordered alone after a
        liver panel is repeated whole: its line is what was billed for the repeat (the catalogue's
        ALT price was taken whatever the line said); a panel of which only the ALT repeats bills
        more than was repeated, so the catalogue prices the ALT.

        Only the flagged order's own results are asked (``order_ref``; all of the test when it has
        one order or none): a test two orders fulfil on one day carried whichever charge line was
        found first, the other, justified order's among them. A member naming no order is not
        known to be the flagged order's, so its line is not taken (the catalogue price stands)."""
        if match.analytes >= item.analyte_set(ordered) or not item.analytes:
            line = self._line_amount(group, order_ref)
            if line is not None:
                return line, "charge"
        return self._rules.repeat_price(item, match.analytes, institution), "catalogue"

    def _line_amount(self, group: Sequence[dict[str, Any]], order_ref: str | None) -> Decimal | None:
        """What was billed for the test: the counted charge lines naming the test's entries
        (``group``) that are the flagged order's (all of them when the test has one order or
        none), each line once, summed -- a credit (a line with a negative amount, as the settlement
        counts it) takes back what it credits. None when no line bills it (no row, or only credits:
        the charge they credit is not known to be this test's; the catalogue then prices it); a
        test billed ¥0 (a waived test, its line of 0.0) cost ¥0.
        Also ``billed_lines.reprice``'s, when a row is dropped.

        Why (nineteenth round): the first row found was taken. A charge and its credit (a
        refund) made the money at stake whichever the store returned first, -¥30 or ¥30 for a test
        the fund paid nothing for; a test billed in two lines (the panel and an add-on) was priced
        at one of them. One line is counted once: a line naming the report and its observations is
        one row, and the versions of one line (``engine.insurance.charges.line_key``: its number
        and sign) count as the latest stored (``latest_lines``), as the settlement counts them. A
        ¥0 line was priced at the catalogue (some line had to be above zero, moneymend19)."""
        orders = {d.get("order") for d in group}
        if len(orders - {None}) > 1:
            group = [d for d in group if d.get("order") == order_ref]
        services = {d["_id"] for d in group}
        rows: dict[str, dict[str, Any]] = {}
        for d in group:
            for charge in self.charges.find({"service": d["_id"]}):
                rows[charge["_id"]] = charge
        # every stored version of the lines found, whichever result it names: a line corrected
        # to name another result is that result's now (moneylast19: charge-x ¥30 for the repeat,
        # then charge-y ¥25 under the same number for the prior kept ¥30 at stake while the
        # settlement counted ¥25 and marked charge-x superseded)
        for ident in {row.get("ident") for row in rows.values()} - {None}:
            for charge in self.charges.find({"ident": ident}):
                rows[charge["_id"]] = charge
        kept = latest_lines(
            (line_key(row["_id"], row.get("ident"), _amount(row)), str(row.get("at") or ""), row)
            for row in sorted(rows.values(), key=lambda r: r["_id"]))
        amounts = [_amount(row) for row in kept if row.get("service") in services]
        if all(amount < 0 for amount in amounts):  # no line, or only credits
            return None
        # summed as the decimals the lines were sent as and rounded to the fen by the one rule
        # (``insurance.tiers.fen``, half up), as the settlement rounds: summed as floats and rounded
        # by ``round``, a line of 1.005 was 1.00 at stake and 2.675 was 2.67 (probepay26)
        return max(fen(sum(amounts, Decimal(0))), Decimal("0.00"))

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
            self._void(existing, "the repeated result was cancelled or is no longer a recognition item", member)
            if not group:
                self._unresulted(member.get("order"))
            return []
        group.sort(key=lambda d: entry_rank(d["_id"]))
        # The orders the test fulfils: one as a rule (the report may name it while its observations
        # do not); two orders for the item at one institution on one day are one test.
        orders = list(dict.fromkeys(d["order"] for d in group if d.get("order"))) or [None]
        if len(orders) > 1:
            self.checks.prefetch(orders)  # their check rows in one query, not one each
        if all(self._alone_in_window(member, ref, item.window_days) for ref in orders):
            self._void(existing, "no recognisable prior result", member)
            for ref in orders:
                self._set_outcome(ref, "retested")
            return []
        reviews = (existing or {}).get("reviews") or []
        decided = [self._decide_repeat(ref, group if len(orders) == 1 else
                                       [d for d in group if d.get("order") in (ref, None)], key, item,
                                       existing, reviews)
                   for ref in orders]
        found = sorted(((d, (repeat, order, m)) for repeat, order, (d, m), _ in
                        (x for x in decided if x[2] is not None)),
                       key=lambda x: (x[1][1].day, x[1][1].placed or "", x[1][1].ref or ""))
        if not found:
            self._void(existing, "no recognisable prior result", member)
            for repeat, _, _, _ in decided:
                self._set_outcome(repeat.order, "retested")
            return []
        # Several orders (one test): the least favourable decision stands, the earliest order's on
        # a tie (``decisive``); each order's check row takes its own outcome.
        decision, (repeat, order, match) = decisive(found)
        for other, (o_repeat, _, _) in found:
            if o_repeat is not repeat:
                self._set_outcome(o_repeat.order, outcome_of(other.status))
        for o_repeat, _, none, _ in decided:
            if none is None:
                self._set_outcome(o_repeat.order, "retested")
        # the evidence: each repeated analyte beside the prior of the same analyte, from the entries
        # the decision read for the order that stands (``pairs``); the billed ``result`` is apart
        performed, did, sources = next(x for r, _, _, x in decided if r is repeat)
        pairs, unpaired = pair_up(repeat.ref, performed, did, match, tuple(item.analytes), sources,
                                  rules, lambda ref: self.read(*ref.split("/", 1)))
        check_ref = repeat.order
        prior = match.result
        status = standing_review(existing, reviews, prior.ref, decision) or decision.status
        price, price_source = self._price(item, match, group, order.institution, repeat.order, order.analytes)
        identified = (existing or {}).get("identified") or now()
        reason_text = order.reason_text if decision.reason else None
        check = self.checks.get(check_ref) if check_ref else None
        late = tuple((check or {}).get("late_reasons") or ())
        late_text = (check or {}).get("late_reason_text") if late else None
        hr = list(rules.hr_scopes(prior.institution, item.code, prior.day))
        issue = flag_issue(flag_id=flag_id, status=FLAG_STATUS[status], item=item, rules=rules, order=order,
                           repeat=repeat, match=match, decision=decision, price=price, identified=identified,
                           reason_text=reason_text, reviews=reviews, late_reasons=late, late_reason_text=late_text,
                           repriced_from=repriced_from(existing, price, price_source), pairs=pairs, unpaired=unpaired)
        row = DuplicateFlag(
            id=flag_id, status=status, key=key, order=order.ref, result=repeat.ref, prior=prior.ref,
            person=repeat.person, patient=repeat.patient, item=item.code, item_name=item.name, category=item.category,
            institution=order.institution, prior_institution=prior.institution, day=repeat.day, order_day=order.day,
            prior_day=prior.day, window_days=item.window_days, price=price, currency=rules.currency,
            reason=decision.reason, reason_text=reason_text, reviews=tuple(reviews), identified=identified,
            analytes=tuple(sorted(match.analytes)), partial=match.partial, effect=decision.effect,
            contradicted=decision.contradicted, basis=decision.basis, price_source=price_source, hr=tuple(hr),
            late_reasons=late, late_reason_text=late_text, pairs=tuple(pairs), unpaired=tuple(unpaired),
        ).as_doc()
        if existing is not None and existing.get("repriced"):
            row["repriced"] = existing["repriced"]  # the prices a rule changed (``repricing``): history, as reviews
        changed = existing is None or any(existing.get(k) != row[k] for k in (
            "status", "prior", "reason", "contradicted", "analytes", "basis")) \
            or stored_fen(existing.get("price")) != price \
            or (existing.get("late_reasons") or []) != row["late_reasons"]
        self._put_flag(existing, row, partial(self._evaluate_flag, member))  # (decided again if it lost: ``_put_flag``)
        self._write_issue(issue)
        self._set_outcome(check_ref, outcome_of(status))
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

    def _reprice_flag(self, member: dict[str, Any]) -> None:
        """Price again, and only price, the flag of the test ``member`` belongs to when its money came
        from a charge row (``billed_lines``: the rows an earlier release kept for planned lines, dropped
        once). Why not ``_evaluate_flag``: deciding the whole flag again on opening a store changed
        decisions nothing new had asked for (a past month's R06 re-test justified by the earlier rules
        became flagged because it had a planned line); a flag's decision stands until something decides
        it again, as the README says. The line's test still holds (the facts are unchanged): the first
        remaining row of the test, else the catalogue price of what was repeated, as ``_price`` reads."""
        item = self._rules.items.get(member.get("item") or "")
        flag_id = issue_id("dup", group_key(member))
        existing = self.flags.get(flag_id)
        if item is None or existing is None or existing.get("price_source") != "charge":
            return
        group = sorted((d for d in self.index.group(member, item.window_days) if d.get("status") not in VOID_STATUSES),
                       key=lambda d: entry_rank(d["_id"]))
        line = self._line_amount(group, existing.get("order"))
        price = line if line is not None else self._rules.repeat_price(
            item, frozenset(existing.get("analytes") or ()), existing.get("inst"))
        row = {**existing, "price": fen_text(price), "price_source": "charge" if line is not None else "catalogue"}
        if same_money(row, existing):
            return
        self._put_flag(existing, row, partial(self._reprice_flag, member))
        issue = self.read("DetectedIssue", flag_id)
        if issue is not None:
            self._write_issue(repriced_issue(issue, str(existing.get("currency") or ""),
                                             stored_fen(existing.get("price")), price))

    def _decide_repeat(self, order_ref: str | None, members: Sequence[dict[str, Any]], key: str, item: Any,
                       existing: dict[str, Any] | None = None, reviews: Sequence[dict[str, Any]] = ()
                       ) -> tuple[PriorResult, Order, tuple[PaymentDecision, Recognisable] | None,
                                  tuple[list[dict[str, Any]], tuple[str, ...], Sources]]:
        """The repeated result (the first of ``members``, the entries of one test that fulfil
        ``order_ref`` or name no order), its order as recorded when it was placed, the
        decision that stands for it (None when nothing recognisable was repeated), and what the
        test did: its entries and analytes as read here, and the prior tests' entries
        (``decision.Sources``): the evidence pairs them (``pairs.pair_up``).

        An auditor's review stands while the prior it reviewed is still recognisable for the
        order and decided on the same facts (``standing_review``): that prior's decision is the
        one that stands, not the newest or least favourable prior's. Why: a prior of another
        institution that arrived late (or became final) made itself the flag's prior, the review
        no longer matched, and a flag the auditor had overturned went back to "not payable"
        though the prior the auditor judged still stood. The review is re-opened only when its
        prior stops counting (withdrawn, corrected away, moved) or the facts it judged change."""
        rules = self._rules
        repeat, order, done, entries, performed, candidates = self.repeat_reading(order_ref, members, key, item)
        sources: Sources = {}
        matches = find_recognisable(done, candidates, rules, sources)
        did = (entries, performed, sources)
        if not matches:
            return repeat, order, None, did
        decisions = [(decide(done, m, rules), m) for m in matches]
        for d, m in decisions:
            if reviews and standing_review(existing, reviews, m.result.ref, d) is not None:
                return repeat, order, (d, m), did  # the reviewed prior still counts: the review stands
        return repeat, order, decisive(decisions), did

    def repeat_reading(self, order_ref: str | None, members: Sequence[dict[str, Any]], key: str, item: Any
                       ) -> tuple[PriorResult, Order, Order, list[dict[str, Any]], tuple[str, ...], list[PriorResult]]:
        """What a test's decision reads of it, before it matches anything: the repeated result (the
        first of ``members``), its order as placed (``order``: what a billed line prices) and as
        matched (``done``: what was done, bounded by the result's own time), the test's entries,
        the analytes it resulted, and its candidates (the window's results of other tests, each
        bounded by its own order's time, ``_bounded``).

        One reading for the decision (``_decide_repeat``) and for the evidence of a flag stored before
        its pairs were kept (``pairs.derive``): a derived pairing that read the order without its
        time offered a prior taken after the order was placed, which the decision had never read."""
        repeat = from_doc(members[0])
        if repeat.order is None:
            repeat = replace(repeat, order=order_ref)
        order = self._order_for(repeat)
        # a report's results stored under another day or test (an OBX-14 of another day) are still
        # what this test did: read from the index, the few the members do not hold
        have = {d["_id"] for d in members}
        listed = sorted({ref for d in members for ref in d.get("results") or ()} - have)
        extra = [e for e in self.index.get_many(listed) if e.get("status") not in VOID_STATUSES]
        # placed before its own result was taken (``taken_before``): a day alone is bounded by it, and
        # so is an order sent as placed later than its own result (an ORC-9 entered late)
        order = replace(order, by=min((d["at"] for d in members if d.get("at")), default=None))
        # what was actually done is what can repeat a prior; the order handed back names what was
        # ordered and what was done together, which a billed line prices (``_price``: a line of the
        # whole panel is no price of the ALT alone that was resulted, nor a line of the ALT ordered
        # alone of the ALT and AST the lab did)
        performed = done_analytes([*members, *extra])
        done = replace(order, analytes=performed) if performed else order
        # What was done but names no analyte (a report coded as the panel, its results coded
        # locally) is matched at the order's level (``done`` is the order then), so the order stays
        # as placed: made the whole panel while the match was its ALT, a billed ALT line was never
        # taken (rvmoneyleft27: the catalogue's 1.69 stood where the line said 5.00)
        if order.analytes and performed:
            order = replace(order, analytes=tuple(sorted(set(order.analytes) | set(performed))))
        candidates = [self._bounded(c, order.day) for c in
                      self.index.candidates(order.person or "", item.code, order.day, item.window_days)
                      if result_key(c) != key]
        return repeat, order, done, [*members, *extra], performed, candidates

    def _bounded(self, candidate: PriorResult, day: date) -> PriorResult:
        """``candidate`` with the earliest it can have been taken (``since``: its order's time) when
        it is of the order's ``day`` and its own time is a day alone; one check row read, for such
        a candidate only (a same-day result of another test, without a time: rare)."""
        if candidate.at or candidate.day != day or not candidate.order:
            return candidate
        check = self.checks.get(candidate.order)
        at = check.get("at") if check is not None and check.get("day") == day.isoformat() else None
        return replace(candidate, since=at) if at else candidate

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
                kept = checked_order(check, person=repeat.person, item=repeat.item, ref=repeat.order,
                                     patient=repeat.patient)
                # its text read as ``_remembered`` reads it (a row stored before the eighteenth
                # round may hold a reason's own name as its text)
                return replace(kept, reason_text=own_text(kept.reason_text, kept.reasons, self._rules))
        # placed: when huren has held the result final (``final_at``, else when first stored: index.from_doc;
        # a moved prior counts only if theirs by then)
        return Order(person=repeat.person, item=repeat.item, institution=repeat.institution, day=repeat.day,
                     ref=repeat.order, patient=repeat.patient, placed=repeat.held, at=repeat.at)

    def _void(self, existing: dict[str, Any] | None, why: str, member: dict[str, Any]) -> None:
        """Void the flag ``existing`` (if any) of the test ``member`` belongs to and cancel its DetectedIssue (decided
        again from ``member`` if another writer stored the flag first: ``_put_flag``). The redo is made here, past
        the return for no flag -- most tests have none, and ``_evaluate_flag`` runs for every one."""
        if not existing or existing.get("status") == "void":
            return
        self._put_flag(existing, {**existing, "status": "void", "void_reason": why}, partial(self._evaluate_flag, member))
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
        if check is None or check.get("source") != "order" or check.get("outcome") not in RESULTED:
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
        resulted = is_resulted(check) or outcome in RESULTED
        if check.get("outcome") != outcome or bool(check.get("resulted")) != resulted:
            self._put_check(check, {**check, "outcome": outcome, "resulted": resulted})


def standing_review(existing: dict[str, Any] | None, reviews: Sequence[dict[str, Any]], prior: str,
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
    stored before it recorded its facts is judged against the facts of the flag it was made on.
    The contradiction is compared as a finding (contradicted or not), not as its words."""
    if not reviews or decision.status in (JUSTIFIED_STATUS, REPORTED):
        return None
    last = reviews[-1]
    if last.get("decision") not in ("upheld", "overturned"):
        return None
    if "prior" in last:
        facts = (last.get("prior"), last.get("retest_reason"), bool(last.get("contradicted")))
    elif existing is not None:
        facts = (existing.get("prior"), existing.get("reason"), bool(existing.get("contradicted")))
    else:
        return None
    # the finding (the reason contradicted by records or not), not its wording: the note names
    # instants ("huren held ... since ...") that an upgrade reads anew (``final_at`` back-filled,
    # nineteenth round), and an upheld R98 flag went back to open on the next message about it
    return last["decision"] if facts == (prior, decision.reason, bool(decision.contradicted)) else None


def done_analytes(members: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The analytes a performed panel test resulted, () when it is the whole panel: read as
    ``decision.find_recognisable`` reads a prior test, so both sides of a repeat are one rule.
    When any entry names analytes (its Observations of ALT, AST...), the test did those; an entry
    naming none (the report, coded as the panel) adds nothing when its report names some, and is the
    whole panel when it is a report none of whose results names one (results coded locally).

    Why (moneyleft27): the repeat was read as what it did only when every entry named analytes, and
    its report never does; a whole-panel order of which the lab resulted the ALT alone was priced as
    the whole panel (10.11) where the ALT (1.69) was repeated."""
    report_of = {ref: d["_id"] for d in members for ref in d.get("results") or ()}

    def report(d: dict[str, Any]) -> str | None:
        return d["_id"] if d.get("results") else report_of.get(d["_id"])

    named = {report(d) for d in members if d.get("analytes")}
    if not named or any(not d.get("analytes") and report(d) not in named for d in members):
        return ()
    return tuple(sorted({a for d in members for a in d.get("analytes") or ()}))


def _other_subject(report: dict[str, Any], ref: str) -> dict[str, Any]:
    """The note on a report that lists a result of another subject: it links no order for it."""
    return {"severity": "warning", "code": "business-rule",
            "diagnostics": f"DiagnosticReport/{report.get('id')} lists {ref}, a result of another patient: "
                           "a report speaks only for its own subject's results, so it links no order to it "
                           "(the result keeps what its own reports say)",
            "expression": ["DiagnosticReport.result"]}


def _based_on(report: dict[str, Any]) -> Iterator[str]:
    """The ServiceRequests ``report`` is based on (its ``basedOn`` references to orders)."""
    for based in report.get("basedOn") or ():
        ref = based.get("reference") if isinstance(based, dict) else None
        if isinstance(ref, str) and ref.startswith(_ORDER_PREFIX):
            yield ref


def _checked_for(check: dict[str, Any] | None, facts: PriorResult) -> bool:
    """Is ``check`` the order-time check of an order of ``facts``' person and item?"""
    return check is not None and check.get("source") == "order" and check.get("item") == facts.item \
        and check.get("person") == facts.person


def same_money(row: dict[str, Any], existing: dict[str, Any]) -> bool:
    """Is ``row`` ``existing`` with the same money? Its price compared as an amount: a row an earlier
    release stored holds a float (10.0), the same money as the text now written ("10.00")."""
    return {**row, "price": None} == {**existing, "price": None} \
        and stored_fen(row.get("price")) == stored_fen(existing.get("price"))


def _amount(row: dict[str, Any]) -> Decimal:
    """A charge row's amount as the decimal it was sent as: kept as its text (``Recognition._on_charge``);
    a row an earlier release kept as a float is read by its shortest text, its decimal as sent."""
    return money(row.get("amount")) or Decimal(0)
