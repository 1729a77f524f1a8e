"""What auditors and doctors do with the flags: a review (upheld / overturned), a CDS choice, the
tallies rebuilt, one flag read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from engine.errors import BadRequest, Conflict, NotFound, Unprocessable, WrittenMeanwhile
from engine.insurance.tiers import stored_fen
from engine.message_time import reason_of
from engine.recognition import aggregates
from engine.recognition.decision import Order
from engine.recognition.detected_issues import is_review_mitigation, review_mitigation
from engine.recognition.flags import DuplicateFlag
from engine.recognition.state import FLAG_STATUS, RecognitionState, now

# what an auditor's review reason is asked for (said when it is blank: ``reason_of``'s ``why``; the HTTP route's
# ``decision_body.reason_in`` asks it in the same words)
REVIEW_WHY = "why the flag is upheld or overturned"
# how often a review is tried again when another was stored between its read and its write (``Reviews.review``)
REVIEW_TRIES = 8


class _Needs(Protocol):
    """What reviews and CDS feedback call on the other parts of ``Recognition`` (through ``self``)."""

    def cds_answer_after_order(self, order: Order, placers: Sequence[str]) -> None: ...  # order_time.OrderTime
    def _recorded_orders(self, draft: Order, placers: Sequence[str]) -> list[tuple[str, dict[str, Any]]]: ...  # order_time


if TYPE_CHECKING:
    _Others = _Needs
else:
    _Others = object


class Reviews(RecognitionState, _Others):
    """Reviews and CDS feedback."""

    def flag(self, flag_id: str) -> DuplicateFlag | None:
        doc = self.flags.get(flag_id)
        return DuplicateFlag.from_doc(doc) if doc else None

    def review(self, flag_id: str, decision: str, reason: str, by: str) -> dict[str, Any]:
        """An auditor upholds (→ DetectedIssue final) or overturns (→ cancelled) a flag, with ``reason`` kept by the
        one rule of a decision's reason (``message_time.reason_of``: 400 naming ``reason`` saying why, in English
        and Chinese) -- it is shown on the evidence page, in the CSV and the DetectedIssue, and kept in the audit
        log, so a direction override, a zero-width space or an escape sequence there had made what the auditor's
        colleagues read another thing than was kept; "not blank" had been all it was held to (rv41c MED 3)."""
        if decision not in ("upheld", "overturned"):
            raise BadRequest("decision must be 'upheld' or 'overturned'", expression=["decision"])
        try:
            reason = reason_of(reason, why=REVIEW_WHY)
        except ValueError as exc:
            raise BadRequest(str(exc), expression=["reason"]) from None
        read: dict[str, Any] = {}  # the facts of the flag as this review first read it (``_review_once``)
        for _ in range(REVIEW_TRIES):
            try:
                with self.store.transaction():
                    done = self._review_once(flag_id, decision, reason, by, read)
            except WrittenMeanwhile:  # the DetectedIssue written by another review meanwhile: read both again
                continue
            if done is not None:
                return done
        raise Conflict(f"flag {flag_id} was reviewed by others meanwhile {REVIEW_TRIES} times: send the review again")

    def _review_once(self, flag_id: str, decision: str, reason: str, by: str,
                     read: dict[str, Any]) -> dict[str, Any] | None:
        """One try of ``review`` inside one transaction; None when another writer stored the flag between this one's
        read and its write (nothing written: ``review`` reads again). ``read``: the facts the review decided on at its
        first try (filled then); read again, a flag decided since on other facts -- another prior result, reason or
        finding of a contradiction -- is a ``Conflict`` (409: read it and review it again), not the auditor's
        decision recorded on facts they never saw (flag44b; a flag voided since is 422, nothing to review).

        Why a compare-and-set: on SQLite the transaction's ``BEGIN IMMEDIATE`` already orders two auditors' reviews,
        but MongoDB without transactions (a standalone server; mongomock) isolates nothing -- both read the flag with
        no review, each wrote its own list of one, and one review was lost while both auditors were answered 200
        (rv41i's probe, once in ci164). The flag's ``reviewed`` count is what the write is conditional on (``_cas_flag``,
        which every writer of the row calls: the hook's re-decision lost a review stored meanwhile, rv43b HIGH 2); the
        DetectedIssue is then written from the reviews the flag holds, read again after the write until they are
        the ones written (a review stored in between writes the issue after its own write, so the last writer's
        issue is the last review's)."""
        row = self.flags.get(flag_id)
        if row is None:
            raise NotFound(f"no duplicate flag {flag_id}")
        if row["status"] in ("void", "justified", "reported"):
            raise Unprocessable(f"flag {flag_id} is {row['status']}: there is nothing to review")
        # the facts the auditor decided on: the review stands while they do (``standing_review``)
        facts = {"prior": row.get("prior"), "retest_reason": row.get("reason"), "contradicted": row.get("contradicted")}
        if read.setdefault("facts", facts) != facts:
            raise Conflict(f"flag {flag_id} was decided again while this review was written (its prior result, "
                           "re-test reason or contradiction changed): read it again and send the review again")
        review = {"decision": decision, "reason": reason, "by": by, "at": now(), **facts}
        reviews = [*(row.get("reviews") or []), review]
        changed = {"status": decision, "reviews": reviews, "reviewed": len(reviews)}
        if not self._cas_flag(row, {**row, **changed}, changed):  # (the one compare-and-set of every flag writer)
            return None
        aggregates.move(self.flag_days, aggregates.flag_bucket(row), aggregates.flag_bucket({**row, **changed}))
        written: list[dict[str, Any]] | None = None
        for _ in range(REVIEW_TRIES):
            now_held = self.flags.get(flag_id) or {**row, **changed}
            if now_held.get("reviews") == written:
                break
            written = list(now_held.get("reviews") or ())
            try:
                self._issue_of_reviews(flag_id, str(now_held["status"]), written)
            except WrittenMeanwhile:
                # Another review wrote the issue between this one's read and its write. Without transactions (an
                # undo journal: a standalone MongoDB, mongomock) it is written again from the flag as it is now,
                # inside this block: raised out of it, the block's undo had put the flag's row of before this
                # review back over the other auditor's review, stored and answered 200 meanwhile (rv43b HIGH 3).
                # Elsewhere the transaction itself is lost (a replica set aborts it): ``review`` tries it again.
                if getattr(self.store, "undo", None) is None:
                    raise
                written = None
        else:  # (never the same twice in REVIEW_TRIES reads: not answered as kept -- rv43b LOW 2)
            raise Conflict(f"flag {flag_id}'s DetectedIssue was written by other reviews meanwhile "
                           f"{REVIEW_TRIES} times: send the review again")
        # the price as the amount it is (the row keeps its text): a JSON number with its fen
        return {**{k: v for k, v in row.items() if k != "reviewed"}, "status": decision, "reviews": reviews,
                "price": stored_fen(row.get("price"))}

    def _issue_of_reviews(self, flag_id: str, status: str, reviews: Sequence[dict[str, Any]]) -> None:
        """The flag's DetectedIssue saying ``reviews`` (each a mitigation) with the status the last one gave."""
        issue = self.read("DetectedIssue", flag_id)
        if issue is None:
            raise NotFound(f"DetectedIssue/{flag_id} is missing")
        issue = {k: v for k, v in issue.items() if k not in ("meta", "text")}
        issue["status"] = FLAG_STATUS[status]
        issue["mitigation"] = [m for m in issue.get("mitigation") or () if not is_review_mitigation(m)]
        issue["mitigation"].extend(review_mitigation(r) for r in reviews)
        self._write_issue(issue)  # keeps the label of the results it cites

    def record_choice(self, key: str, *, order: Order, recognisable: Sequence[str], outcome: str,
                      reason: str | None = None, reason_text: str | None = None, doctor: str | None = None,
                      dept: str | None = None, placers: Sequence[str] = ()) -> None:
        """The doctor's choice at the moment of ordering (CDS Hooks feedback): a draft order
        recognised (never placed) counts as recognised, for the doctor and department who chose
        (``doctor``, ``dept``: as an order's check row names them, so the rate by doctor credits
        a recognition made in CDS to the doctor whose re-tests count against them); an override
        is recorded with its reason.

        The doctor's latest re-test reason for a draft (and the override's comment, the text of
        that code alone) is also kept by the draft order (``cds_reasons``): it was given at order
        time, so an order signed from that draft without ``reasonCode`` is decided with it
        (``OrderTime.on_order`` reads it once, when the order is first recorded). A later answer
        for the same draft replaces it -- the doctor's later decision stands: an order-select
        "R01" then an order-sign override "R07" is R07 (the two were merged and the more
        favourable R01 won) -- and a later "recognise" withdraws it. An override whose reason is
        not in huren's system says nothing new and leaves it as it was.

        The draft's placer order numbers (``placers``, its identifiers typed PLAC) are kept with
        the reason: the HIS's HL7 order for that draft has another id (its placer number's), and is
        known to be the same order by that number (``_kept_reason``). An answer given once the
        order is already recorded (the EHR signed it before posting the feedback) is applied to it
        there (``OrderTime.cds_answer_after_order``): as order-time while no result of it was
        decided, else as a late reason for the auditor."""
        if outcome == "recognised" and self._recorded_orders(order, placers):
            # the draft is already placed (signed, or the HIS's order with its placer number): the
            # order's own row counts it; a "recognise" for it would count one order twice
            outcome = "void"
        with self.store.transaction():
            self._put_check(self.checks.get(key), {
                "_id": key, "source": "cds", "person": order.person, "patient": order.patient, "item": order.item,
                "category": self._rules.items[order.item].category if order.item in self._rules.items else None,
                "inst": order.institution, "day": order.day.isoformat(),
                "recognisable": list(recognisable), "reason": reason, "reason_effect": None,
                "doctor": doctor, "dept": dept,
                "outcome": outcome, "issue": None, "checked": now(), "placers": list(placers),
            })
            self._link_placers("choice", key, order.institution, placers)
            if not order.ref:
                return
            if outcome == "retest" and reason:
                self.cds_reasons.replace({"_id": order.ref, "person": order.person, "item": order.item,
                                          "inst": order.institution, "day": order.day.isoformat(),
                                          "reasons": [reason], "text": reason_text, "placers": list(placers)})
                self._link_placers("reason", order.ref, order.institution, placers)
                self.cds_answer_after_order(order, placers)
            elif outcome == "recognised" and self._kept_reason(order) is not None:
                self.cds_reasons.delete(order.ref)

    def _kept_reason(self, order: Order, placers: Sequence[str] = ()) -> dict[str, Any] | None:
        """The CDS reason row kept for the draft ``order``, when it is this draft's: the same draft
        id, person, item, institution and day (a draft id an EHR reuses for another patient, test
        or day is not the same order: a reason given for last week's draft must not justify this
        week's repeat). Else the row of a draft with one of the order's placer numbers
        (``placers``) at the same institution, with the same person, item and day: the HIS's HL7
        order for a draft answered in CDS. Two such drafts answered differently: which one this
        order is cannot be told, and neither answer is taken (no guess by time or code alone: a
        reason carried to another order of the same test would pay a repeat nobody justified)."""
        kept = self.cds_reasons.get(order.ref) if order.ref else None
        if kept and _same_draft(kept, order):
            return dict(kept)
        rows: list[dict[str, Any]] = []
        for draft in self._placer_targets("reason", order.institution, placers):
            row = self.cds_reasons.get(draft)
            # the link outlives a row answered again for a draft that no longer has the number
            if row and _same_draft(row, order) and set(row.get("placers") or ()) & set(placers):
                rows.append(row)
        answers = {(tuple(r.get("reasons") or ()), r.get("text")) for r in rows}
        return dict(rows[0]) if len(answers) == 1 else None

    def cds_reasons_for(self, order: Order, placers: Sequence[str] = ()) -> tuple[str | None, str | None]:
        """The re-test reason the doctor last gave in CDS for the draft ``order`` was signed from,
        and the text given with it (None, None when none: ``_kept_reason``)."""
        code, text, _ = self.cds_answer(order, placers)
        return code, text

    def cds_answer(self, order: Order, placers: Sequence[str] = ()) -> tuple[str | None, str | None, str | None]:
        """``cds_reasons_for``'s reason and text, and the draft they were given for (its id: the
        check row of an order decided with them says ``reason_from: cds:<draft>``). A row written
        before this mend (eighteenth round, first wave) may hold several reasons merged from
        several answers: the last is the latest, and its text is known to be that reason's only
        when it is the only one."""
        kept = self._kept_reason(order, placers)
        reasons = [str(r) for r in (kept or {}).get("reasons") or ()]
        if not reasons:
            return None, None, None
        text = (kept or {}).get("text") if len(reasons) == 1 else None
        return reasons[-1], (text if isinstance(text, str) and text.strip() else None), str((kept or {})["_id"])

    def rebuild_tallies(self) -> None:
        """Recompute the report tallies from every flag and check (after a bulk import or restore)."""
        with self.store.transaction():
            aggregates.rebuild(self.flag_days, self.check_days, self.flags.find({}), self.checks.find({}))


def _same_draft(kept: dict[str, Any], order: Order) -> bool:
    """Is the kept CDS reason row for this order's person, item, institution and day?"""
    return (kept.get("person"), kept.get("item"), kept.get("inst"), kept.get("day")) == \
        (order.person, order.item, order.institution, order.day.isoformat())
