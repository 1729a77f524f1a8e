"""Order time: the check of an order (what was recognisable when it was placed), its check row
and its reminder DetectedIssue; what the order said then stands."""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from engine.insurance.reading import search_pages
from engine.recognition.decision import Order, Recognisable, find_recognisable, order_time_effect
from engine.recognition.detected_issues import (
    CODE_SYSTEM,
    RECOGNISABLE,
    describe_match,
    issue_id,
    recognisable_issue,
)
from engine.recognition.facts import (
    RESULT_TYPES,
    order_reasons,
    order_time,
    own_text,
    placer_numbers,
    reason_withdrawn,
    ref_of,
)
from engine.recognition.index import group_key
from engine.recognition.state import RecognitionState, checked_order, instant, is_resulted, now, version_of


class _Needs(Protocol):
    """What the order-time check calls on the other parts of ``Recognition`` (through ``self``)."""

    def _evaluate_flag(self, member: dict[str, Any]) -> list[dict[str, Any]]: ...  # repeats.Repeats
    def _order_facts(self, sr: dict[str, Any]) -> Order | None: ...  # batch_scope.BatchScope
    def cds_answer(self, order: Order, placers: Sequence[str] = ()) -> tuple[str | None, str | None, str | None]: ...  # reviews
    def relink_listed(self, report: dict[str, Any], skip: Container[str] = ()) -> list[dict[str, Any]]: ...  # repeats


if TYPE_CHECKING:
    _Others = _Needs
else:
    _Others = object


class OrderTime(RecognitionState, _Others):
    """The order-time check (``Recognition.on_order``, ``check``)."""

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

    def on_order(self, sr: dict[str, Any], previous: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The order-time check of a stored version ``sr`` of an order (``previous``: the version
        it replaced, if known -- whose own reason text tells a text the order took back)."""
        ref = ref_of(sr)
        for replaced in sr.get("replaces") or ():  # ORC-1 RP/RO: one order re-issued, not a cancellation
            old = self.checks.get(str(replaced.get("reference") or ""))
            if old and old.get("outcome") != "void":
                self._put_check(old, {**old, "outcome": "void"})
        existing = self.checks.get(ref)
        status = sr.get("status")
        if status in ("revoked", "entered-in-error"):
            if existing:
                # a reminded order cancelled before any result (ORC-1 CA/OC, status revoked) was recognised; one
                # its result's message revoked (the lab's OBX-11 / OBR-25 X: "results cannot be obtained") was
                # not given up for the prior -- its check stays as it is (``_in_group_with_result``)
                outcome = "void" if status == "entered-in-error" else (
                    "recognised" if existing.get("outcome") == "pending" and existing.get("recognisable")
                    and not self._in_group_with_result(ref) else existing["outcome"])
                self._put_check(existing, {**existing, "outcome": outcome})
            return []
        order = self._order_facts(sr)
        if order is None or order.item is None or order.person is None:
            return []
        same = bool(existing) and (existing or {}).get("item") == order.item and (existing or {}).get("person") == order.person
        # An order already recorded, sent again by its result's message: that message is no order
        # time, whatever reason it first states is late (as in a corrected result's message).
        recorded = existing is not None and (is_resulted(existing) or self._with_its_result(ref, order, existing))
        late, late_text = late_reasons_of(order, existing, recorded)
        # the reasons this version states (ORC-16, reasonCode): the order's own, never the CDS's
        own_replaces_cds = bool(existing and existing.get("reason_from") and order.reasons and not recorded)
        # the placer's ORC-16 ``""`` (a delete said by a message this row has not yet taken): no reason
        # stands, not even the CDS answer's the row carries; a thinner version (no mark, or the same
        # message's mark again) withdraws nothing (``facts.reason_withdrawn``, money29)
        withdrawn = reason_withdrawn(sr)
        withdrawn_now = bool(existing and withdrawn and withdrawn != existing.get("withdrawn")
                             and existing.get("reason_from") and not order.reasons and not recorded)
        own_replaces_cds = own_replaces_cds or withdrawn_now
        if existing:
            # an order's own reason replaces one its row carried from a CDS answer (as ``_answered``:
            # the order's own wins); otherwise what the order said when placed stands
            base = {**existing, "reasons": [], "reason_text": None} if own_replaces_cds else existing
            order = self._remembered(order, sr, base, recorded, previous)
        reason_from = (existing or {}).get("reason_from") if same and not own_replaces_cds else None
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
            if matches and existing is None:
                # a reason the doctor gave in the CDS answer for this draft was given at order time
                placers = placer_numbers(sr)
                order, reason_from = self._with_cds_reasons(order, placers)
                self._placed_all_the_same(order, placers)
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
            "outcome": (existing or {}).get("outcome", "pending"), "resulted": is_resulted(existing),
            "issue": issue_id("rec", ref) if recognisable else None,
            "checked": (existing or {}).get("checked") or now(),
            "placed": (existing or {}).get("placed") or instant(),
        }
        if order.at:
            doc["at"] = order.at  # when it was placed, to the time sent (a row without: its day alone)
        if reason_from:
            doc["reason_from"] = reason_from  # its reasons are a CDS answer's (``_with_cds_reasons``)
        if withdrawn or (existing or {}).get("withdrawn"):
            doc["withdrawn"] = withdrawn or (existing or {}).get("withdrawn")  # the delete taken (``withdrawn_now``)
        # the placer numbers the order arrived with, by which a CDS answer was read for it: an
        # answer given again is read with them (``cds_answer_after_order``), not the draft's
        arrived = placer_numbers(sr) if existing is None else (existing or {}).get("placers")
        if arrived:
            doc["placers"] = list(arrived)
        self._put_check(existing, doc)
        issues: list[dict[str, Any]] = []
        if not same:
            issues, searched = self._results_before(ref, version_of(sr) == 1)
            if searched and matches:
                matches, recognisable = self._not_its_own(ref, matches, doc)
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

    def _results_before(self, ref: str, first: bool = False) -> tuple[list[dict[str, Any]], bool]:
        """An order checked (its check row new, or now of another person or item) after results
        were stored: the reports based on it, each of whose results stored in another write group
        is linked by the one rule (``Repeats.relink_listed``). A report of this group, and the
        results this group puts, are linked as they are put (``relink_listed`` skips them). One
        indexed search per new check row; none when the order is a first version (``first``: no
        write stored it before, so no earlier message's report was based on it) and the group
        carries a report based on it -- a result message making its own new order, as every one
        of the bench's blood counts does (the search was a third of the hook's instructions there).

        Why (rvevid35, evid35's gap): a result that arrived before its order (an LIS's ORU under
        numbers its order message placed later, or whose copy of the order named a local code, no
        recognition item, so nothing was checked) stayed unlinked, its flag naming no order and the
        order counted recognised. And (link36, linkfix35's gap) when the order's check row was made
        by a later *result* message's copy of it (a second report under the order's numbers, now
        coded), linkfix35 skipped the search for any group carrying a report based on the order:
        the earlier report's results stayed nobody's until their report or they were written
        again. An order stored before is searched whatever the group carries. Returns the issues and
        whether the search ran (``_not_its_own`` is asked then)."""
        group = getattr(self._local, "group", None) or ()
        if first:
            for resource, _ in group:
                if resource.get("resourceType") == "DiagnosticReport":
                    for based in resource.get("basedOn") or ():
                        if isinstance(based, dict) and based.get("reference") == ref:
                            return [], False
        skip = {ref_of(r) for r, _ in group}
        issues: list[dict[str, Any]] = []
        for report in search_pages(self.repository, "DiagnosticReport", [("based-on", ref)]):
            issues.extend(self.relink_listed(report, skip))
        return issues, True

    def _not_its_own(self, ref: str, matches: list[Recognisable], doc: dict[str, Any]
                     ) -> tuple[list[Recognisable], list[str]]:
        """The recognisable priors of order ``ref`` less its own results: those ``_results_before`` has
        just linked to it (their index entry now names it; ``decision.assess`` says SAME_ORDER of such a
        result, but the check was made before the link, which needs the check row). The row written
        (``doc``, as the re-link left it: its outcome) is put again when one is dropped. Asked only
        when the search ran and something was recognisable: one remembered index read a match.

        Why: an order first checked by a later result message whose copy dates it after its own
        earlier report (the LIS's copy without ORC-9, dated by its specimen's time) listed that
        report's result as a recognisable prior -- a reminder in the ACK, the order counted in the
        rate as recognisable and, the result being its own, re-tested (0 of 1 where nothing was
        recognisable)."""
        kept = [m for m in matches if (self.index.get(m.result.ref) or {}).get("order") != ref]
        recognisable = [m.result.ref for m in kept]
        if len(kept) != len(matches):
            row = self.checks.get(ref) or doc
            self._put_check(row, {**row, "recognisable": recognisable,
                                  "issue": issue_id("rec", ref) if recognisable else None})
        return kept, recognisable

    def _with_cds_reasons(self, order: Order, placers: Sequence[str] = ()) -> tuple[Order, str | None]:
        """``order`` with the re-test reason its doctor gave in CDS (an override, a "re-test"
        suggestion accepted) when the order states none. Why: the EHR applies a suggestion's
        update, or none at all for an override, at its discretion; the order then came without the
        reason the doctor recorded in huren when ordering, and its result was flagged *not payable*.
        The draft is this order by its id, else by its placer number (``placers``: the HIS's HL7
        order for the draft, ``Reviews._kept_reason``). Read once, when an order with a
        recognisable prior is first recorded (one read by id, one by placer number when none).

        Also says where the order's reasons came from: ``cds:<draft>`` when they are the CDS
        answer's (the order stated none), kept on the check row as ``reason_from``. Such a reason
        is no reason of the order's own: a newer answer for the draft replaces it while no result
        is decided (``cds_answer_after_order``); read as the order's own, the doctor's R07
        (self-pay) given after the HIS's order arrived lost to the R01 copied from an earlier
        answer, and the fund paid a self-pay test (moneymend19)."""
        code, text, draft = self.cds_answer(order, placers)
        if code is None:
            return order, None
        answered = self._answered(order, code, text)
        return answered, (f"cds:{draft}" if not order.reasons and answered.reasons else None)

    def _answered(self, order: Order, code: str, text: str | None) -> Order:
        """``order`` as the CDS answer ``code`` (with its comment ``text``) completes it.

        The reason recorded at order time stands: a reason the signed order states is the doctor's
        own and wins (CDS "R01" then an order signed "R07" is R07, self-pay -- merged, the more
        favourable R01 made it payable). An override's comment is the text of its own code only:
        it fills in an order that states that code without text (CDS "R07, 家属要求复查" then an
        order "R06" without text is R06 without text, not payable), and a comment that is only
        the code's name is no text (``own_text``)."""
        text = own_text(text, (code,), self._rules)
        if not order.reasons:
            return replace(order, reasons=(code,), reason_text=text)
        # only for an order stating that code alone: an order's text serves all its codes, so R07's
        # comment on an order stating R07 and R06 would have become R06's (review of payfix18)
        if order.reasons == (code,) and text and not order.reason_text:
            return replace(order, reason_text=text)
        return order

    def cds_answer_after_order(self, order: Order, placers: Sequence[str]) -> None:
        """A CDS answer (``order``: the draft, ``placers``: its placer numbers) given once the order
        signed from the draft is already recorded: the EHR may sign and send the order before it
        posts the feedback, and the HIS's HL7 order may arrive before it too.

        Before, such an answer was kept for the draft and never read again (the order is read
        once, when first recorded): the doctor's R04 for an emergency count left the repeat *not
        payable*. Now it completes the recorded order as ``_answered`` says (the order's own
        reason still wins), as an order-time reason while no result of the order has been
        decided on -- as a reason sent in an order update before the result is (eleventh round)
        -- and, once one has, as a late reason, kept apart and shown on the flag for the auditor
        (DOMAIN.md: the reason recorded at order time stands). The flags of the order's tests are
        decided again. Asked on a "re-test" answer only: one read by id, one search by placer
        number.

        The answer is read as the recorded order would read it on arrival (``cds_answer`` for its
        own id and the draft's numbers): the draft's own row when the order is the draft, else the
        one answer the drafts with its number agree on. A reason the row carries from an earlier
        CDS answer (``reason_from``) is no reason of the order's own: the newer answer replaces it
        while no result is decided, and two drafts with one number answered differently clear it
        (which draft the order is cannot be told); once a result is decided the newer answer is a
        late reason. Only the order's own reasons (ORC-16, reasonCode) win over an answer."""
        rules = self._rules
        for ref, check in self._recorded_orders(order, placers):
            kept = checked_order(check, person=check.get("person"), item=check.get("item"), ref=ref,
                                 patient=check.get("patient"))
            from_cds = str(check.get("reason_from") or "").startswith("cds:")
            if from_cds:  # the order's own reasons: none (``_with_cds_reasons``)
                kept = replace(kept, reasons=(), reason_text=None)
            kept = replace(kept, reason_text=own_text(kept.reason_text, kept.reasons, rules))
            code, text, draft = self.cds_answer(replace(order, ref=ref), self._arrived_with(ref, check))
            answered = kept if code is None else self._answered(kept, code, text)
            reason_from = f"cds:{draft}" if code is not None and not kept.reasons and answered.reasons else None
            recorded_text = own_text(check.get("reason_text"), check.get("reasons") or (), rules)
            if (list(answered.reasons), answered.reason_text, reason_from) == (
                    list(check.get("reasons") or ()), recorded_text, check.get("reason_from")):
                continue
            if is_resulted(check):
                if not answered.reasons:
                    continue  # nothing new to show the auditor; the decision stands
                late, late_text = late_reasons_of(answered, {**check, "reason_text": recorded_text}, True)
                doc = {**check, "late_reasons": late, "late_reason_text": late_text}
            else:
                reason, effect = order_time_effect(answered, rules)
                doc = {**check, "reasons": list(answered.reasons), "reason_text": answered.reason_text,
                       "reason": reason, "reason_effect": effect}
                doc.pop("reason_from", None)
                if reason_from:
                    doc["reason_from"] = reason_from
            if doc == check:
                continue
            self._put_check(check, doc)
            for key_doc in {group_key(d): d for d in self.index.by_order(ref)}.values():
                self._evaluate_flag(key_doc)

    def _placed_all_the_same(self, order: Order, placers: Sequence[str]) -> None:
        """A draft the doctor "recognised" in CDS that is placed all the same (this order, by the
        draft's id or placer number) was not recognised: its card's check row is voided, and the
        order's own row counts (re-tested, or recognised if cancelled). Before, the rate counted
        one order twice, once recognised and once re-tested (1 of 2 where the truth is 0 of 1).
        Asked when an order with a recognisable prior is first recorded: one indexed read, and one
        for each placer number (any of the draft's, ``_link_placers``)."""
        keys = [f"cds:{c['_id']}" for c in self.cards.find({"draft": order.ref})] if order.ref else []
        by_number = self._placer_targets("choice", order.institution, placers)
        for key in dict.fromkeys([*keys, *by_number]):
            row = self.checks.get(key)
            if row is None or (row.get("person"), row.get("item"), row.get("inst"), row.get("day")) != (
                    order.person, order.item, order.institution, order.day.isoformat()):
                continue
            if key not in keys and not set(row.get("placers") or ()) & set(placers):
                continue  # a link of a choice answered again for a draft without that number
            if row.get("outcome") == "recognised":
                self._put_check(row, {**row, "outcome": "void", "placed_as": order.ref})

    def _arrived_with(self, ref: str, check: dict[str, Any]) -> list[str]:
        """The placer numbers of the recorded order ``ref`` (its check row ``check``): the ones it
        arrived with, kept on its row (``on_order``); for a row stored before they were kept, the
        ServiceRequest's own PLAC identifiers.

        Why (moneylast19): an answer given after the order was read with the *draft's* numbers.
        draft-77 (B1, B2) answered R01 and draft-78 (B1) R07; the HIS's order, numbered B2 only,
        took R01 on arrival; the EHR posting draft-77's R01 again found two drafts answering B1
        differently and cleared the order's reason -- its repeat was flagged *not payable*."""
        if "placers" in check:
            return [str(p) for p in check.get("placers") or ()]
        rtype, _, rid = ref.partition("/")
        sr = self.read(rtype, rid) if rtype == "ServiceRequest" and rid else None
        return placer_numbers(sr) if sr else []

    def _recorded_orders(self, draft: Order, placers: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        """The recorded orders (check rows of orders) that are the draft ``draft``: its own id, or a
        ServiceRequest with one of its placer numbers; each of the draft's person, item,
        institution and day."""
        refs = [draft.ref] if draft.ref else []
        for number in placers:
            escaped = "".join("\\" + ch if ch in "\\,|$" else ch for ch in number)
            # every page: placer numbers restart and repeat across hospitals and patients, and the
            # first 20 found missed the draft's own order among 25 others numbered B1
            found = search_pages(self.repository, "ServiceRequest", [("identifier", escaped)])
            refs.extend(f"ServiceRequest/{sr['id']}" for sr in found if number in placer_numbers(sr))
        out = []
        for ref in dict.fromkeys(refs):
            check = self.checks.get(ref)
            if check and check.get("source") == "order" and (
                    check.get("person"), check.get("item"), check.get("inst"), check.get("day")) == (
                    draft.person, draft.item, draft.institution, draft.day.isoformat()):
                out.append((ref, check))
        return out

    def _with_its_result(self, ref: str, order: Order, check: dict[str, Any]) -> bool:
        """Does this version of an order, already recorded (``check``) and stating a reason not
        recorded yet, come in one write group with a result of it (the copy a result message
        rebuilds from its ORC/OBR, or a Bundle with both)?

        Why: an order recorded by its own order message without a reason, then its first result
        message carrying ORC-16, merged that reason as an order-time one (the order is written
        before its result, so no result was decided yet) and made the flagged repeat payable,
        while the same reason in a corrected result was a late one. Asked only when the version
        states something new, or no longer states a reason recorded (a result message's ORC-16
        ``""``: no order update, the recorded reason stands): the group is scanned for a result
        based on the order."""
        reasons, text = new_reasons(order, check)
        taken = set(check.get("reasons") or ()) - set(order.reasons) if not check.get("reason_from") else set()
        if not reasons and text is None and not taken:
            return False
        return self._in_group_with_result(ref)

    def _in_group_with_result(self, ref: str) -> bool:
        """Whether the write group of order ``ref``'s version holds a result based on it (a result message, or
        a Bundle with both): the version is the result's statement of the order, not an order message's.

        Also why a revoked version beside its result (the lab's X: OBX-11 or OBR-25 "results cannot be
        obtained", a haemolysed tube) is no cancellation for the 互认率: DOMAIN.md's numerator is "cancelled
        (ORC-1 CA/OC, ServiceRequest revoked)" -- the placer's cancel, the doctor giving the repeat up for
        the prior -- and the lab that could not measure gave nothing up. Its check stays pending: the lab's
        re-drawn final makes it a repeat, and with none it counts recognised as "never resulted within the
        item's window" once the window has passed (``reports``). It counted recognised at once, and so
        stayed (review rv40k LOW 3; fortieth round, kfix40)."""
        for resource, _ in getattr(self._local, "group", None) or ():
            if resource.get("resourceType") in RESULT_TYPES and any(
                    r.get("reference") == ref for r in resource.get("basedOn") or () if isinstance(r, dict)):
                return True
        return False

    def _remembered(self, order: Order, sr: dict[str, Any], check: dict[str, Any], recorded: bool,
                    previous: dict[str, Any] | None = None) -> Order:
        """What the order said when it was placed stands, whatever a later version repeats or omits.

        A result message rebuilds its order from its own ORC/OBR (same deterministic id): a LIS
        rarely repeats the doctor's ORC-16 re-test reason or the order time. Until a result is
        decided the reasons are the stored version's as the merge rules combined it (an order update
        states them as the order now is, a copy without them keeps them), and the order's date and
        the instant huren first saw it are kept. Once a result of the order has been
        decided on (``is_resulted``), the reasons are those recorded until then: a reason first sent
        after the result (an order update, a corrected result's ORC-16) is a late reason, kept in
        the check row apart (``late_reasons_of``) and never part of the decision -- DOMAIN.md: the
        reason recorded at order time stands. So is one first sent in a result message of an order already recorded
        (``recorded``, see ``_with_its_result``).

        The recorded text is read as ``order_reasons`` reads an order's: a row stored before the
        eighteenth round kept a reason's own name as its text ("其他必要复查", R06's), and carried
        forward it paid an R06 order placed before the upgrade and resulted after it."""
        kept_text = own_text(check.get("reason_text"), check.get("reasons") or (), self._rules)
        kept = tuple(check.get("reasons") or ())
        if recorded or (not order.reasons and check.get("reason_from")):
            # recorded for good; or the reasons its row carries are a CDS answer's and the order
            # states none of its own (``_with_cds_reasons``)
            reasons, text = kept, kept_text
        else:
            # before any result the order's reasons are those of the stored version, which the merge
            # rules made (``merge.yaml`` ServiceRequest.reasonCode: an order update states the reason
            # as the order now is, an empty ORC-16 keeps it, a result message's copy only adds). The
            # row added every reason a version ever stated: R01 changed by an ORC-1 XO to R07 or to
            # ``""`` was still a justified R01 (twentieth round). Another reason does not take the
            # recorded text.
            reasons = order.reasons
            text = order.reason_text
            if not text and reasons == kept and kept_text:
                # the same reasons without a text: the recorded text stays unless it was the order's
                # own, stated by the version this one replaces (R06 "术后出血需复查" updated to R06
                # alone is R06 without its text; a CDS comment completing the order stays)
                said = order_reasons(previous, self._rules)[1] if previous else None
                text = None if said and own_text(said, kept, self._rules) == kept_text else kept_text
        changes: dict[str, Any] = {"reasons": reasons, "reason_text": text, "placed": check.get("placed")}
        if check.get("analytes") and not order.analytes:
            changes["analytes"] = tuple(check["analytes"])
        if check.get("day") and (order_time(sr) is None or check.get("source") == "order"):
            # its day and time as recorded (a row stored before the time was kept has none: the
            # order is then dated by its day alone, as it was decided before)
            changes["day"], changes["at"] = date.fromisoformat(check["day"]), check.get("at")
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


def late_reasons_of(order: Order, check: dict[str, Any] | None, recorded: bool) -> tuple[list[str], str | None]:
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
    reasons, new_text = new_reasons(order, check)
    late = list(dict.fromkeys([*late, *reasons]))
    if new_text is not None and not text:
        text = new_text
    return late, text


def new_reasons(order: Order, check: dict[str, Any]) -> tuple[list[str], str | None]:
    """What this version of an order states that its check row has not recorded: the reason codes
    not among its reasons, and its reason text when it differs from the recorded one (else None).
    One test for both of its askers: is a result message's copy of the order stating something new
    (``Recognition._with_its_result``), and which of it is late (``late_reasons_of``)."""
    recorded = set(check.get("reasons") or ())
    text = order.reason_text if order.reason_text and order.reason_text != check.get("reason_text") else None
    return [r for r in order.reasons if r not in recorded], text
