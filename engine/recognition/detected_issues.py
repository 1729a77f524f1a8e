"""The FHIR DetectedIssue resources recognition writes: the order-time reminder and the duplicate flag.

Ids are deterministic (a hash of what the issue is about) so a re-sent order, a corrected result
or a replayed message updates the same DetectedIssue instead of adding another. The evidence of a
flag (item, window, both institutions, both dates, the price at stake) travels in one complex
extension, so a payer can read it without knowing huren's database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from engine.fhirjson import FhirDecimal
from engine.insurance.tiers import fen, fen_text
from engine.recognition.decision import (
    NOT_PAYABLE,
    SELF_PAY_STATUS,
    Order,
    PaymentDecision,
    PriorResult,
    Recognisable,
)
from engine.recognition.decision import REPORTED as REPORTED_STATUS
from engine.recognition.pairs import cited
from engine.recognition.rules import RecognitionItem, Rules

CODE_SYSTEM = "urn:huren:detected-issue"
EVIDENCE_EXT = "urn:huren:StructureDefinition:recognition-evidence"
ORG_SYSTEM = "urn:huren:institution"
REVIEW_SYSTEM = "urn:huren:recognition-review"

RECOGNISABLE = ("recognisable-prior-result", "Recognisable prior result (可互认的既往结果)")
DUPLICATE = ("duplicate-test", "Suspected duplicate test, not payable (疑似重复检查检验，不予支付)")
JUSTIFIED = ("justified-retest", "Re-test with a recorded reason (有理由的复查)")
SELF_PAY = ("self-pay-retest", "Re-test allowed, not payable by the fund: self-pay (自费复查)")
CONTRADICTED = ("reason-contradicted", "Suspected duplicate test, not payable: reason contradicted by records (理由与记录不符)")
REPORTED = ("recognisable-repeat", "Repeat of a recognisable result, counted for the recognition rate, not refused (范围外重复)")


def review_mitigation(review: Mapping[str, Any]) -> dict[str, Any]:
    """An auditor's review of a flag as its DetectedIssue's mitigation: the decision coded under ``REVIEW_SYSTEM``,
    the reason as its text, when and by whom. One shape for the issue a decision writes (``flag_issue``) and the one
    a review rewrites (``Reviews._issue_of_reviews``)."""
    return {"action": {"coding": [{"system": REVIEW_SYSTEM, "code": review["decision"]}], "text": review["reason"]},
            "date": review["at"], "author": {"display": review["by"]}}


def is_review_mitigation(mitigation: Mapping[str, Any]) -> bool:
    """Whether ``mitigation`` is a review's (``review_mitigation``)."""
    return any(c.get("system") == REVIEW_SYSTEM for c in (mitigation.get("action") or {}).get("coding") or ())


def flag_code(decision: PaymentDecision) -> tuple[str, str]:
    if decision.status == NOT_PAYABLE:
        return CONTRADICTED if decision.contradicted else DUPLICATE
    if decision.status == SELF_PAY_STATUS:
        return SELF_PAY
    if decision.status == REPORTED_STATUS:
        return REPORTED
    return JUSTIFIED


@lru_cache(maxsize=4096)
def issue_id(kind: str, key: str) -> str:
    """``rec-…`` for order-time reminders, ``dup-…`` for duplicate flags: 36 characters, FHIR-id safe.

    Remembered: an ingest batch's preview names each test's flag, and its hook asks again for
    the same test (a SHA-256 each time)."""
    return f"{kind}-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _concept(code: tuple[str, str]) -> dict[str, Any]:
    return {"coding": [{"system": CODE_SYSTEM, "code": code[0], "display": code[1]}], "text": code[1]}


def _item_coding(item: RecognitionItem, rules: Rules) -> dict[str, Any]:
    return {"system": rules.codes.item_system, "code": item.code, "display": item.name}


def describe_match(m: Recognisable) -> str:
    r = m.result
    return f"{r.ref} of {r.institution} on {r.day.isoformat()} ({m.window_left} days left)"


def recognisable_issue(order: Order, matches: Sequence[Recognisable], rules: Rules, identified: str) -> dict[str, Any]:
    """The order-time reminder: the order and every recognisable prior result, newest first."""
    item = matches[0].item
    issue: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": issue_id("rec", order.ref or ""),
        "status": "final",
        "code": _concept(RECOGNISABLE),
        "severity": "low",
        "identifiedDateTime": identified,
        "implicated": [{"reference": order.ref}, *({"reference": m.result.ref} for m in matches)],
        "evidence": [{"detail": [{"reference": m.result.ref}]} for m in matches],
        "detail": f"{item.name} ({item.code}) ordered at {order.institution} on {order.day.isoformat()}: "
                  + "; ".join(describe_match(m) for m in matches),
        "extension": [{"url": EVIDENCE_EXT, "extension": [
            {"url": "item", "valueCoding": _item_coding(item, rules)},
            {"url": "windowDays", "valueInteger": item.window_days},
        ]}],
    }
    if order.patient:
        issue["patient"] = {"reference": order.patient}
    return issue


def flag_issue(
    *,
    flag_id: str,
    status: str,
    item: RecognitionItem,
    rules: Rules,
    order: Order,
    repeat: PriorResult,
    match: Recognisable,
    decision: PaymentDecision,
    price: Decimal,
    identified: str,
    reason_text: str | None,
    reviews: Sequence[dict[str, Any]] = (),
    late_reasons: Sequence[str] = (),
    late_reason_text: str | None = None,
    repriced_from: Decimal | None = None,
    pairs: Sequence[Mapping[str, Any]] = (),
    unpaired: Sequence[str] = (),
) -> dict[str, Any]:
    """The duplicate flag (or the justified, self-pay or only reported re-test) with all its evidence.

    ``pairs`` (a panel's, ``engine.recognition.pairs``): each repeated analyte's result beside the
    prior result of the same analyte, written as an ``analytePair`` evidence (analyte, repeatResult,
    priorResult) and as a DetectedIssue.evidence naming both; ``unpaired``: the analytes the repeat
    did that no prior covered (``unpairedAnalyte``); an analyte both sides measured, but in no
    measurement alike (PT seconds against INR), is an ``unlikeAnalyte``, not a pair (evpage34). ``repeatResult``/``priorResult`` stay the
    flag's billed result and its prior test, as before (a reader of an earlier export reads them so).

    ``repriced_from``: the amount the flag said before a rule priced it again (``repricing``), kept as
    its ``repricedFrom`` evidence after the price when the flag is decided again at that same price
    (``Repeats._evaluate_flag``), as ``repriced_issue`` wrote it."""
    prior, reason = match.result, decision.reason
    code = flag_code(decision)
    evidence: list[dict[str, Any]] = [
        {"url": "item", "valueCoding": _item_coding(item, rules)},
        {"url": "category", "valueString": item.category},
        {"url": "windowDays", "valueInteger": item.window_days},
        {"url": "priorResult", "valueReference": {"reference": prior.ref}},
        {"url": "priorInstitution", "valueIdentifier": {"system": ORG_SYSTEM, "value": prior.institution}},
        {"url": "priorDate", "valueDate": prior.day.isoformat()},
        {"url": "repeatResult", "valueReference": {"reference": repeat.ref}},
        {"url": "repeatInstitution", "valueIdentifier": {"system": ORG_SYSTEM, "value": order.institution}},
        {"url": "repeatDate", "valueDate": repeat.day.isoformat()},
        {"url": "orderDate", "valueDate": order.day.isoformat()},
        {"url": "price", "valueMoney": {"value": money_value(price), "currency": rules.currency}},
        *([{"url": "repricedFrom", "valueMoney": {"value": money_value(repriced_from), "currency": rules.currency}}]
          if repriced_from is not None else []),
        {"url": "scope", "valueCode": decision.basis},
        *({"url": "analyte", "valueCode": a} for a in sorted(match.analytes)),
        *([{"url": "partialOverlap", "valueBoolean": True}] if match.partial else []),
        *([{"url": "contradicted", "valueString": decision.contradicted}] if decision.contradicted else []),
        *([{"url": "reasonEffect", "valueCode": decision.effect}] if decision.effect else []),
        *(_pair_evidence(p) for p in pairs if p.get("analyte")),
        *({"url": "unpairedAnalyte", "valueCode": a} for a in unpaired),
    ]
    mitigation: list[dict[str, Any]] = []
    if reason:
        known = rules.reasons.get(reason)
        action: dict[str, Any] = {"coding": [{"system": rules.reason_system, "code": reason,
                                              **({"display": known.display} if known else {})}]}
        if reason_text:
            action["text"] = reason_text
        evidence.append({"url": "reason", "valueCodeableConcept": action})
        mitigation.append({"action": action, "date": identified})
    for late in late_reasons:  # recorded after the result: evidence for the auditor, not a mitigation
        known = rules.reasons.get(late)
        evidence.append({"url": "lateReason", "valueCodeableConcept": {
            "coding": [{"system": rules.reason_system, "code": late, **({"display": known.display} if known else {})}],
            **({"text": late_reason_text} if late_reason_text else {})}})
    mitigation.extend(review_mitigation(review) for review in reviews)
    implicated = ([{"reference": order.ref}] if order.ref else []) + [{"reference": repeat.ref}, {"reference": prior.ref}]
    # the pairs' results too: the issue is labelled as the most confidential record it cites (``_write_issue``)
    named = {i["reference"] for i in implicated}
    for ref in (r for p in pairs if p.get("analyte") for r in cited(p)):
        if ref not in named:
            named.add(ref)
            implicated.append({"reference": ref})
    gap = (repeat.day - prior.day).days
    issue: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": flag_id,
        "status": status,
        "code": _concept(code),
        "severity": "high" if decision.at_stake else ("moderate" if decision.status == SELF_PAY_STATUS else "low"),
        "identifiedDateTime": identified,
        "implicated": implicated,
        "evidence": [
            {"code": [{"text": "prior recognisable result"}], "detail": [{"reference": prior.ref}]},
            {"code": [{"text": "repeated result"}], "detail": [{"reference": repeat.ref}]},
            *({"code": [{"text": _pair_text(p)}], "detail": [{"reference": r} for r in cited(p)]}
              for p in pairs if p.get("analyte")),
        ],
        "detail": (f"{item.name} ({item.code}) repeated at {order.institution} on {repeat.day.isoformat()}, "
                   f"{gap} days after a recognisable result of {prior.institution} on {prior.day.isoformat()} "
                   f"(window {item.window_days} days); {rules.currency} {fen_text(price)} "
                   + ("at stake" if decision.at_stake else "self-pay" if decision.status == SELF_PAY_STATUS else "not refused")
                   + (f"; analytes repeated: {', '.join(sorted(match.analytes))}" if match.partial else "")
                   + (f"; reason {reason}" + (f": {reason_text}" if reason_text else "") if reason else "")
                   + (f"; {decision.contradicted}" if decision.contradicted else "")
                   + (f"; reason {', '.join(late_reasons)} recorded after the result (not counted)"
                      if late_reasons else "")
                   + (f"; recognisable through {decision.basis}" if decision.status == REPORTED_STATUS else "")),
        "extension": [{"url": EVIDENCE_EXT, "extension": evidence}],
    }
    if mitigation:
        issue["mitigation"] = mitigation
    if order.patient or repeat.patient:
        issue["patient"] = {"reference": repeat.patient or order.patient}
    return issue


def _pair_text(pair: Mapping[str, Any]) -> str:
    """The words of a pair's ``evidence`` entry: what its results are to each other."""
    also = " (and its other results)" if pair.get("result_also") or pair.get("prior_also") else ""
    if pair.get("unlike"):  # measured differently on each side: shown, not compared (evpage34)
        return (f"{pair['analyte']}: the repeat ({pair.get('result_measure')}) and the prior ({pair.get('prior_measure')}) "
                f"share no measurement: not compared{also}")
    return (f"{pair['analyte']}" + (f" ({pair['measure']})" if pair.get("measure") else "")
            + f": repeated result, then the prior result of the same analyte{also}")


def _pair_evidence(pair: Mapping[str, Any]) -> dict[str, Any]:
    """One analyte pair as a complex evidence extension; ``wholePanel`` names a side that is a report
    of the panel as a whole (no entry of its own for the analyte); ``measure`` the LOINC both sides
    report when the analyte has several; ``alsoRepeatResult`` / ``alsoPriorResult`` its other
    entries (evfix33). An ``unlike`` pair is an ``unlikeAnalyte``: both sides measured the analyte, in
    no measurement alike (``repeatMeasure`` / ``priorMeasure``), so nothing is compared (evpage34)."""
    ext: list[dict[str, Any]] = [{"url": "analyte", "valueCode": pair["analyte"]},
                                 {"url": "repeatResult", "valueReference": {"reference": pair["result"]}},
                                 {"url": "priorResult", "valueReference": {"reference": pair["prior"]}}]
    if pair.get("unlike"):
        # each side measured only what the other did not (PT seconds against INR): an ``unlikeAnalyte``,
        # its two results and what each measured, never an ``analytePair`` (evpage34)
        ext += [{"url": url, "valueCoding": {"system": "http://loinc.org", "code": pair[key]}}
                for url, key in (("repeatMeasure", "result_measure"), ("priorMeasure", "prior_measure")) if pair.get(key)]
    ext += [{"url": "wholePanel", "valueCode": side} for side, key in (("repeat", "result_panel"), ("prior", "prior_panel"))
            if pair.get(key)]
    if pair.get("measure"):  # which of the analyte's measurements both sides are (PT: seconds or INR)
        ext.append({"url": "measure", "valueCoding": {"system": "http://loinc.org", "code": pair["measure"]}})
    # the analyte's other entries no pair shows (a re-run, a measurement one side alone reported)
    ext += [{"url": url, "valueReference": {"reference": ref}}
            for url, key in (("alsoRepeatResult", "result_also"), ("alsoPriorResult", "prior_also"))
            for ref in pair.get(key) or ()]
    return {"url": "unlikeAnalyte" if pair.get("unlike") else "analytePair", "extension": ext}


def money_value(amount: Decimal) -> FhirDecimal:
    """A Money ``value`` of a DetectedIssue: the amount to the fen, written with its two decimals
    (10.00, not 10.0: a FHIR decimal keeps its text, ``engine.fhirjson``). A ``FhirDecimal`` (a float
    that remembers its text) so every reader of a stored resource sees the number it always saw."""
    return FhirDecimal(fen_text(amount))


def repriced_issue(issue: dict[str, Any], currency: str, old: Decimal, new: Decimal,
                   noted: bool = False) -> dict[str, Any]:
    """A stored flag's DetectedIssue with only its money changed (``Repeats._reprice_flag``): the
    ``price`` evidence and the amount in ``detail`` (written by ``flag_issue`` as "; <currency> 0.00 ");
    everything the decision wrote stays as it was. ``noted`` (``repricing``: priced again by a rule,
    not by a line): a ``repricedFrom`` evidence after the price says what it was before."""
    def evidence(ext: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for e in ext.get("extension") or ():
            if e.get("url") == "price" and isinstance(e.get("valueMoney"), dict):
                out.append({**e, "valueMoney": {**e["valueMoney"], "value": money_value(new)}})
                if noted:
                    out.append({"url": "repricedFrom", "valueMoney": {"value": money_value(old), "currency": currency}})
            elif not (noted and e.get("url") == "repricedFrom"):  # one: the last change's (the row keeps them all)
                out.append(e)
        return out

    updated = {k: v for k, v in issue.items() if k not in ("meta", "text")}
    updated["extension"] = [{**ext, "extension": evidence(ext)}
                            if isinstance(ext, dict) and ext.get("url") == EVIDENCE_EXT else ext
                            for ext in issue.get("extension") or ()]
    detail = issue.get("detail")
    if isinstance(detail, str):
        updated["detail"] = detail.replace(f"; {currency} {fen(old)} ", f"; {currency} {fen(new)} ", 1)
    return updated


def iso(d: date) -> str:
    return d.isoformat()
