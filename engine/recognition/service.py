"""``Recognition`` (``Engine.recognition``): the rules applied to what the repository stores.

It registers one repository write hook. For an order (ServiceRequest) it runs the order-time
check and records a DetectedIssue "recognisable prior result", returned to the caller as a
warning. For a result (DiagnosticReport, Observation, ImagingStudy) it keeps the compact result
index and decides the duplicate flag of the test the result belongs to: a DetectedIssue "suspected
duplicate test, not payable" with the evidence, or a "justified re-test" when the order carries a
reason, or nothing. Everything runs inside the write's transaction, so a stored result and its
flag are committed together. Three document collections hold the working state:

- ``recognition_results``: the index (see ``engine.recognition.index``);
- ``recognition_checks``: one row per checked order (recognisable results, what became of it) —
  the recognition rate is computed from it;
- ``recognition_flags``: one row per flag (the report rows), with the review history.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from engine.errors import BadRequest, Gone, NotFound, Unprocessable
from engine.recognition import aggregates
from engine.recognition.decision import (
    Order,
    PriorResult,
    Recognisable,
    find_recognisable,
    reason_effect,
)
from engine.recognition.detected_issues import (
    CODE_SYSTEM,
    DUPLICATE,
    JUSTIFIED,
    RECOGNISABLE,
    describe_match,
    flag_issue,
    issue_id,
    recognisable_issue,
)
from engine.recognition.facts import (
    ORDER_TYPE,
    RESULT_TYPES,
    VOID_STATUSES,
    FactReader,
    national_id,
    order_time,
    ref_of,
)
from engine.recognition.flags import DuplicateFlag
from engine.recognition.index import RESULTS, ResultIndex, from_doc, group_key, to_doc
from engine.recognition.rules import Institution, Rules, institution_from_site, load_rules, rule_folders

log = logging.getLogger("huren.recognition")

CHECKS = "recognition_checks"
FLAGS = "recognition_flags"
_PREFERENCE = {"DiagnosticReport": 0, "ImagingStudy": 1, "Observation": 2}

# flag statuses (recognition_flags.status) and the DetectedIssue.status each one shows
FLAG_STATUS = {"flagged": "preliminary", "upheld": "final", "overturned": "cancelled",
               "justified": "final", "void": "cancelled"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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
        rules: Rules | None = None,
    ) -> None:
        self.store = store
        self.repository = repository
        self.settings = settings
        self._institutions = institutions or (lambda: {})
        self._local_items = local_items or (lambda: {})
        self._lock = threading.Lock()
        self._rules = rules or self._load()
        self.index = ResultIndex(store.collection(RESULTS))
        self.checks = store.collection(CHECKS)
        self.flags = store.collection(FLAGS)
        for fields in (["inst", "day"], ["day"], ["item", "day"], ["status", "day"]):
            self.flags.ensure_index(fields)
        self.checks.ensure_index(["inst", "day"])
        self.checks.ensure_index(["day"])
        self.flag_days = store.collection(aggregates.FLAG_DAYS)
        self.check_days = store.collection(aggregates.CHECK_DAYS)
        aggregates.ensure_indexes(self.flag_days, self.check_days)
        self.facts = FactReader(self.read, lambda: self._rules)
        if repository is not None:
            repository.add_write_hook(self.on_write)

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

        return cls(store=engine.store, repository=engine.repository, settings=engine.settings,
                   institutions=institutions, local_items=local_items)

    # -- rules ---------------------------------------------------------------------------
    @property
    def rules(self) -> Rules:
        return self._rules

    def _load(self) -> Rules:
        return load_rules(rule_folders(getattr(self.settings, "site", None)), self._institutions(),
                          site_local=self._local_items())

    def reload(self) -> Rules:
        """Re-read the rules (SIGHUP, ``POST /admin/reload``). On a mistake the running rules stay
        in force and the ``RulesError`` naming file, line and field propagates to the caller."""
        with self._lock:
            fresh = self._load()
            self._rules = fresh
            return fresh

    # -- storage helpers -------------------------------------------------------------------
    def read(self, rtype: str, rid: str) -> dict[str, Any] | None:
        """The current resource, or None when absent or deleted."""
        try:
            return self.repository.read(rtype, rid)
        except (NotFound, Gone):
            return None

    def _write_issue(self, issue: dict[str, Any]) -> None:
        """Store a DetectedIssue at its deterministic id (the repository skips unchanged content)."""
        self.repository.update(issue)

    # -- the write hook --------------------------------------------------------------------
    def on_write(self, resource: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        rtype = resource.get("resourceType")
        if rtype == ORDER_TYPE:
            return self.on_order(resource)
        if rtype in RESULT_TYPES:
            return self.on_result(resource)
        if rtype == "Patient":
            self._on_patient(resource)
        return []

    def _on_patient(self, patient: dict[str, Any]) -> None:
        """A Patient stored or corrected after its results: keep the index's person in step."""
        docs = self.index.by_patient(ref_of(patient))
        if docs:
            self.index.set_person(docs, national_id(patient))

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
                outcome = "void" if status == "entered-in-error" else (
                    "recognised" if existing.get("outcome") == "pending" and existing.get("recognisable") else existing["outcome"])
                self._put_check(existing, {**existing, "outcome": outcome})
            return []
        order = self.facts.order(sr)
        if order is None or order.item is None or order.person is None:
            return []
        if existing:
            order = self._remembered(order, sr, existing)
        matches = self.check(order)
        reason, effect = reason_effect(order, self._rules)
        doc = {
            "_id": ref, "source": "order", "person": order.person, "patient": order.patient, "item": order.item,
            "category": self._rules.items[order.item].category, "inst": order.institution, "day": order.day.isoformat(),
            "recognisable": [m.result.ref for m in matches], "reason": reason, "reason_effect": effect,
            "reasons": list(order.reasons), "reason_text": order.reason_text,
            "outcome": (existing or {}).get("outcome", "pending"),
            "issue": issue_id("rec", ref) if matches else None,
            "checked": (existing or {}).get("checked") or _now(),
        }
        self._put_check(existing, doc)
        issues: list[dict[str, Any]] = []
        if matches:
            identified = doc["checked"]
            issue = recognisable_issue(order, matches, self._rules, identified)
            self._write_issue(issue)
            # warn when the order is first seen or what is recognisable changed; a later version of the
            # same order (status update, the result message's copy of it) does not repeat the reminder
            if existing is None or existing.get("recognisable") != doc["recognisable"]:
                issues.append(self._order_warning(order, matches, issue["id"]))
        elif existing and existing.get("issue"):
            self._cancel_issue(existing["issue"])
        # A reason added to (or removed from) an order after its result arrived changes the flag.
        if existing and (existing.get("reason") != reason or existing.get("reason_effect") != effect):
            for key_doc in {group_key(d): d for d in self.index.by_order(ref)}.values():
                issues.extend(self._evaluate_flag(key_doc))
        return issues

    @staticmethod
    def _remembered(order: Order, sr: dict[str, Any], check: dict[str, Any]) -> Order:
        """What the order said when it was placed, where a later version of it is silent.

        A result message rebuilds its order from its own ORC/OBR (same deterministic id): a LIS
        rarely repeats the doctor's ORC-16 re-test reason or the order time. The doctor's recorded
        reason and the order's date stand until a new version states them again."""
        if not order.reasons and check.get("reasons"):
            order = replace(order, reasons=tuple(check["reasons"]), reason_text=check.get("reason_text"))
        if order_time(sr) is None and check.get("day"):
            order = replace(order, day=date.fromisoformat(check["day"]))
        return order

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
        ref = ref_of(resource)
        before = self.index.get(ref)
        facts = self.facts.result(resource)
        if facts is None:
            if before is not None:
                self.index.delete(ref)
                return self._evaluate_flag(before)
            return []
        doc = self.index.put(facts)
        issues = self._evaluate_flag(doc)
        if before is not None and group_key(before) != group_key(doc):
            issues.extend(self._evaluate_flag(before))
        return issues

    def _evaluate_flag(self, member: dict[str, Any]) -> list[dict[str, Any]]:
        """Decide (again) the flag of the test ``member`` belongs to, and store the outcome."""
        rules = self._rules
        key = group_key(member)
        flag_id = issue_id("dup", key)
        existing = self.flags.get(flag_id)
        group = [d for d in self.index.group(member) if d.get("status") not in VOID_STATUSES]
        item = rules.items.get(member["item"])
        if not group or item is None or not member.get("person"):
            self._void(existing, "the repeated result was cancelled or is no longer a recognition item")
            return []
        group.sort(key=lambda d: (_PREFERENCE.get(d["_id"].split("/", 1)[0], 9), d["_id"]))
        repeat = from_doc(group[0])
        if repeat.order is None:  # the report may name the order while its observations do not
            repeat = replace(repeat, order=next((d["order"] for d in group if d.get("order")), None))
        order = self._order_for(repeat)
        candidates = [c for c in self.index.candidates(order.person or "", item.code, order.day, item.window_days)
                      if group_key(to_doc(c)) != key]
        matches = find_recognisable(order, candidates, rules)
        check_ref = repeat.order
        if not matches:
            self._void(existing, "no recognisable prior result")
            self._set_outcome(check_ref, "retested")
            return []
        reason, effect = reason_effect(order, rules)
        if effect == "no_flag":
            self._void(existing, f"reason {reason}: not a refusal")
            self._set_outcome(check_ref, "no_flag")
            return []
        prior = matches[0].result
        reviews = (existing or {}).get("reviews") or []
        if existing and existing.get("status") in ("upheld", "overturned") and effect is None:
            status = existing["status"]
        else:
            status = "justified" if effect == "justified" else "flagged"
        price = rules.price(item.code, order.institution)
        identified = (existing or {}).get("identified") or _now()
        issue = flag_issue(flag_id=flag_id, status=FLAG_STATUS[status], item=item, rules=rules, order=order,
                           repeat=repeat, prior=prior, price=price, identified=identified, reason=reason,
                           reason_text=order.reason_text if reason else None, reviews=reviews)
        row = DuplicateFlag(
            id=flag_id, status=status, key=key, order=order.ref, result=repeat.ref, prior=prior.ref,
            person=repeat.person, patient=repeat.patient, item=item.code, item_name=item.name, category=item.category,
            institution=order.institution, prior_institution=prior.institution, day=repeat.day, order_day=order.day,
            prior_day=prior.day, window_days=item.window_days, price=price, currency=rules.currency, reason=reason,
            reason_text=order.reason_text if reason else None, reviews=tuple(reviews), identified=identified,
        ).as_doc()
        self._put_flag(existing, row)
        self._write_issue(issue)
        self._set_outcome(check_ref, "justified" if status == "justified" else "duplicate")
        if status == "justified":
            return [{"severity": "information", "code": "informational",
                     "details": {"coding": [{"system": CODE_SYSTEM, "code": JUSTIFIED[0], "display": JUSTIFIED[1]}]},
                     "diagnostics": f"Re-test of {item.name} ({item.code}) with reason {reason}: reported, not flagged. "
                                    f"See DetectedIssue/{flag_id}"}]
        return [{"severity": "warning", "code": "business-rule",
                 "details": {"coding": [{"system": CODE_SYSTEM, "code": DUPLICATE[0], "display": DUPLICATE[1]}]},
                 "diagnostics": f"Suspected duplicate test, not payable: {item.name} ({item.code}) repeated "
                                f"{(repeat.day - prior.day).days} days after {prior.ref} of {prior.institution} "
                                f"({rules.currency} {price:.2f}). See DetectedIssue/{flag_id}"}]

    def _order_for(self, repeat: PriorResult) -> Order:
        """The order the repeated result fulfils; a result without one stands for its own order."""
        if repeat.order:
            sr = self.read(ORDER_TYPE, repeat.order.split("/", 1)[1])
            order = self.facts.order(sr) if sr else None
            check = self.checks.get(repeat.order) if order is not None else None
            if order is not None and check is not None and sr is not None:
                order = self._remembered(order, sr, check)
            if order is not None:
                return Order(person=repeat.person, item=repeat.item, institution=order.institution, day=order.day,
                             ref=repeat.order, patient=order.patient or repeat.patient, reasons=order.reasons,
                             reason_text=order.reason_text)
        return Order(person=repeat.person, item=repeat.item, institution=repeat.institution, day=repeat.day,
                     ref=repeat.order, patient=repeat.patient)

    def _void(self, existing: dict[str, Any] | None, why: str) -> None:
        if not existing or existing.get("status") == "void":
            return
        self._put_flag(existing, {**existing, "status": "void", "void_reason": why})
        self._cancel_issue(existing["_id"])

    def _set_outcome(self, order_ref: str | None, outcome: str) -> None:
        if not order_ref:
            return
        check = self.checks.get(order_ref)
        if check is not None and check.get("outcome") != outcome:
            self._put_check(check, {**check, "outcome": outcome})

    # -- the two working collections, with their per-day tallies ----------------------------
    def _put_flag(self, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        if old == new:
            return
        self.flags.replace(new)
        aggregates.move(self.flag_days, aggregates.flag_bucket(old), aggregates.flag_bucket(new))

    def _put_check(self, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        if old == new:
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
            if row["status"] in ("void", "justified"):
                raise Unprocessable(f"flag {flag_id} is {row['status']}: there is nothing to review")
            review = {"decision": decision, "reason": reason.strip(), "by": by, "at": _now()}
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
                "outcome": outcome, "issue": None, "checked": _now(),
            })


def parse_day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise BadRequest(f"{name}: not a date (YYYY-MM-DD): {value!r}", expression=[name]) from exc
