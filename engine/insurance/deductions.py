"""The monthly deduction list of one institution (扣款清单): what the fund will not pay, and why.

The rows are the duplicate-test flags an auditor **upheld** for tests the institution repeated in
the month, read through recognition's public report (``duplicates_report``), so the amounts are the
money at stake recognition decided (the billed charge line where one exists, else the catalogue
price). Each row carries its evidence (the prior recognisable result, both institutions and dates,
the window), the policy applied, the auditor's decision, and the charge line when the repository
can find the one billed for the repeated result (``ChargeItem.service``).

Two renderings:

- **CSV** (UTF-8 with BOM, one row per deduction, then the total), for spreadsheets;
- **a FHIR ``Bundle`` of type ``collection``** the bureau can import: first a ``List`` (the deduction
  list: institution, month, total; one entry per ``DetectedIssue`` with its amount, policy and
  charge line in the ``urn:huren:StructureDefinition:deduction`` extension), then each upheld
  ``DetectedIssue`` as stored (its evidence extension and review in ``mitigation``), then the CSV
  as a ``Binary``. DetectedIssue + List was chosen over ``ExplanationOfBenefit``: an EOB needs the
  claim, the coverage and the insurer, none of which a duplicate flag has, while the DetectedIssue
  already is the evidence the hospital disputes.

The Bundle is signed with the audit key in ``Bundle.signature`` (a detached JWS, EdDSA, made by
``engine.audit.provenance`` exactly as a Provenance signature is: RFC 8785 canonical JSON of the
Bundle without ``signature``). The hospital verifies it offline with the public key published
at ``/audit/public-key`` (``verify_bundle``); any changed amount, row or CSV byte breaks it.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engine import fhirjson
from engine.audit.keys import AuditKeys
from engine.audit.provenance import sign_provenance, verify_provenance
from engine.errors import BadRequest, NotFound
from engine.insurance.charges import (
    COUNTED_STATUSES,
    latest_lines,
    line_identity,
    line_key,
    money,
    read_line,
    stored_at,
)
from engine.insurance.tiers import ZERO, fen
from engine.periods import month_range
from engine.recognition.reports import (
    CsvNames,
    FlagScreen,
    ReportFilter,
    csv_row,
    duplicates_report,
    restricted_words,
)
from engine.recognition.rules import SELF_PAY

DEDUCTION_EXT = "urn:huren:StructureDefinition:deduction"
LIST_EXT = "urn:huren:StructureDefinition:deduction-list"
LIST_SYSTEM = "urn:huren:deduction-list"
INSTITUTION_SYSTEM = "urn:huren:institution"
# the CSV's columns (headers: the words' ``columns``), a name beside the institution, price source and
# prior institution codes
COLUMNS = ("list", "institution", "institution_name", "month", "flag", "day", "item", "item_name", "category",
           "amount", "currency", "price_source", "price_source_name", "charge", "prior_institution",
           "prior_institution_name", "prior_day", "window_days", "result", "prior_result", "order", "patient",
           "policy", "reviewed_by", "review_reason",
           # added at the end, so the older columns keep their places (thirty-third round): what was
           # compared, analyte by analyte; ``result`` above stays the billed result the charge is found by
           "analyte_pairs", "unpaired")


@dataclass(frozen=True)
class Deduction:
    flag: str  # the DetectedIssue id
    day: str
    item: str
    item_name: str
    category: str
    amount: Decimal
    currency: str
    price_source: str  # "charge" (the billed line) or "catalogue"
    charge: str | None  # ChargeItem/... billed for the repeated result, when found
    prior_institution: str
    prior_day: str
    window_days: int
    result: str
    prior_result: str
    order: str | None
    patient: str | None
    policy: str
    reviewed_by: str
    review_reason: str
    # the evidence pairs as the report row gives them (``engine.recognition.pairs.of_flag``)
    pairs: tuple[dict[str, Any], ...] = ()
    unpaired: tuple[str, ...] = ()
    pairs_source: str = "recorded"


@dataclass(frozen=True)
class DeductionList:
    id: str
    institution: str
    month: str
    currency: str
    rows: tuple[Deduction, ...]
    # upheld flags the reader may not be shown (``FlagScreen``): not listed; how many, and their
    # amount, are said beside the total (the list's total is of the lines listed)
    restricted_count: int = 0
    restricted_amount: Decimal | None = ZERO  # None: too few to show (``amount_shown_from``)

    @property
    def total(self) -> Decimal:
        return sum((r.amount for r in self.rows), ZERO)


def list_id(institution: str, month: str) -> str:
    """A FHIR-id-safe id, the same for the same institution and month (institution codes may hold
    spaces)."""
    return "ded-" + hashlib.sha256(f"{institution}|{month}".encode()).hexdigest()[:32]


def _policy(row: dict[str, Any]) -> str:
    """The payment policy the deduction applies, in Chinese words (the list goes to the medical
    insurance bureau and the hospital's billing office), from the flag's own decision: the scope it
    was recognisable in, the window, the prior result, the re-test reason not accepted and whether the
    records contradicted it, a partial repeat. Codes stay as stored (the CSV names them beside);
    ``contradicted`` is the decision's own note, quoted as recorded. A self-pay reason (R05, R07 by default)
    is said as such: allowed, not paid by the fund."""
    basis = row.get("basis") or "community"
    scope = "医共体内" if basis == "community" else f"互认范围 {basis} 内"
    what = row.get("item_name") or row["item"]
    if row.get("partial") and row.get("analytes"):
        what += f"（重复项目：{row['analytes']}）"
    text = (f"医保不予支付：{what}于 {row['day']} 重复检查检验，在 {row.get('prior_institution')} "
            f"{row.get('prior_day')} 结果的 {row.get('window_days')} 天互认有效期内，{scope}可互认")
    if row.get("reason") and row.get("effect") == SELF_PAY:
        # R05/R07 by default: the re-test was allowed, the fund does not pay it (the patient does); the
        # reason was accepted for what it claims, so not "不予认可" (money24)
        text += f"；复查理由 {row['reason']} 允许复查，医保基金不予支付（患者自费）"
        if row.get("fund_paid") is not None:
            text += f"，扣回统筹基金支付部分 {row['fund_paid']}"
    elif row.get("reason"):
        text += f"；复查理由 {row['reason']} 不予认可"
    if row.get("contradicted"):
        text += f"（与记录不符：{row['contradicted']}）"
    return text


def _charge_for(repository: Any, result: str | None) -> tuple[str | None, Decimal | None, Decimal | None]:
    """The charge line billed for the repeated result (``ChargeItem.service``), when the
    deployment indexes that search parameter, and what the fund paid of the lines billed for it:
    the sum of their fund shares (``charges.read_line``), one version of each line
    (``latest_lines``, as the settlement counts them); None when no line is found or one of them
    states no fund share (what the fund paid is then not known); and the lines' amount, by which the
    caller sees whether these lines are the ones the flag's money was (recognition sums the lines of
    the report and its observations)."""
    if not result or repository.params.get("ChargeItem", "service") is None:
        return None, None, None
    page = repository.search("ChargeItem", [("service", result), ("_count", "100")])
    versions = []
    for charge in sorted(page.resources, key=lambda c: str(c.get("id"))):
        if charge.get("status") not in COUNTED_STATUSES:
            continue  # a planned line is not billed yet: the flag's money is the catalogue's then
        line = read_line(charge, lambda ref: None)
        versions.append((line_key(line.ref, line_identity(charge), line.amount), stored_at(charge), line))
    lines = latest_lines(versions)
    if not lines:
        return None, None, None
    shares = [line.fund_share for line in lines]
    if any(s is None for s in shares) or page.has_next:
        return lines[0].ref, None, None
    return lines[0].ref, sum((line.amount or ZERO for line in lines), ZERO), max(sum(shares, ZERO), ZERO)


def _deducted(repository: Any, r: dict[str, Any]) -> tuple[dict[str, Any], Decimal, str | None]:
    """What one upheld flag (a report row) deducts: (the row, with ``fund_paid`` when a self-pay
    re-test is deducted at the fund's share; the amount; the charge line found). The one rule of a
    listed line and of the flags a reader is not shown (``restricted_amount``), so the two agree."""
    charge, billed, fund_paid = _charge_for(repository, r.get("result"))
    amount = fen(money(r.get("price")) or ZERO)
    if (r.get("effect") == SELF_PAY and r.get("price_source") == "charge" and fund_paid is not None
            and billed is not None and fen(max(billed, ZERO)) == amount):
        # a self-pay re-test (R05/R07): the fund recovers what it paid, the lines' fund share, not
        # what the patient paid himself (money25; it was the whole line whatever the share billed)
        r = {**r, "fund_paid": fen(fund_paid)}
        amount = min(amount, fen(fund_paid))
    return r, amount, charge


def deduction_list(recognition: Any, repository: Any, institution: str, month: str,
                   screen: FlagScreen | None = None) -> DeductionList:
    """``screen``: the reader's; a flag they may not be shown is not a line: the list says how many
    were left out and their amount (``restricted_count``/``restricted_amount``), nothing else of them.
    That amount is what those flags deduct, by the rule of a listed line (``_deducted``): a self-pay
    flag at the fund's share there too (recognition's total of them is the money at stake, the whole
    billed line: the CSV's summary said 100.00 for five self-pay lines of 20.00 of which the fund paid
    12.00 each, where the same five listed deduct 60.00; review of money25)."""
    if not institution:
        raise BadRequest("institution is required", expression=["institution"])
    start, end = month_range(month)
    flt = ReportFilter(start=start, end=end, institution=institution, status="upheld")
    report = duplicates_report(recognition, flt, limit=None, screen=screen)
    rows = []
    for r in sorted(report["rows"], key=lambda r: (r["day"], r["id"])):
        r, amount, charge = _deducted(repository, r)
        rows.append(Deduction(
            flag=r["id"], day=r["day"], item=r["item"], item_name=r.get("item_name") or "",
            category=r.get("category") or "", amount=amount, currency=r.get("currency") or report["currency"],
            price_source=r.get("price_source") or "catalogue", charge=charge,
            prior_institution=r.get("prior_institution") or "", prior_day=r.get("prior_day") or "",
            window_days=int(r.get("window_days") or 0), result=r.get("result") or "",
            prior_result=r.get("prior_result") or "", order=r.get("order"), patient=r.get("patient"),
            policy=_policy(r), reviewed_by=r.get("reviewed_by") or "", review_reason=r.get("review_reason") or "",
            pairs=tuple(r.get("pairs") or ()), unpaired=tuple(r.get("unpaired") or ()),
            pairs_source=r.get("pairs_source") or "recorded"))
    left = report["totals"]["restricted"]
    left_amount = None if left["amount"] is None else fen(money(left["amount"]) or ZERO)
    if left["count"] and left_amount is not None:
        # the flags not shown: the whole month's upheld flags (no screen) less those listed; only
        # their sum leaves this function, and only when recognition shows the amount at all
        shown = {r["id"] for r in report["rows"]}
        every = duplicates_report(recognition, flt, limit=None)["rows"]
        left_amount = sum((_deducted(repository, r)[1] for r in every if r["id"] not in shown), ZERO)
    return DeductionList(list_id(institution, month), institution, month, report["currency"], tuple(rows),
                         restricted_count=int(left["count"]), restricted_amount=left_amount)


def to_csv(dl: DeductionList, names: Mapping[str, Any]) -> str:
    """The list as CSV for the auditors' spreadsheet: Chinese headers and the names of the
    institutions and price sources (``names``: the site's, ``engine.api.ui_words.site_names``,
    through ``CsvNames``), each code kept in its own column beside its name; UTF-8 with a BOM so
    that Excel reads the Chinese. The same text goes into the signed Bundle (``to_bundle``)."""
    n = CsvNames(names)
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf, lineterminator="\r\n")
    csv_row(writer, [n.header(c) for c in COLUMNS])
    place = n.of("places", dl.institution)
    for r in dl.rows:
        csv_row(writer, [dl.id, dl.institution, place, dl.month, r.flag, r.day, r.item, r.item_name, r.category,
                     f"{r.amount:.2f}", r.currency, r.price_source, n.of("price_sources", r.price_source),
                     r.charge or "", r.prior_institution, n.of("places", r.prior_institution),
                     r.prior_day, r.window_days, r.result, r.prior_result, r.order or "", r.patient or "",
                     r.policy, r.reviewed_by, r.review_reason,
                     n.pairs({"pairs": r.pairs, "pairs_source": r.pairs_source}), n.analytes(r.unpaired)])
    csv_row(writer, [])
    csv_row(writer, [n.header("total"), dl.institution, place, dl.month, len(dl.rows), f"{dl.total:.2f}", dl.currency])
    if words := restricted_words({"count": dl.restricted_count, "amount": dl.restricted_amount}, dl.currency):
        csv_row(writer, [words, dl.institution, place, dl.month, dl.restricted_count,
                         "" if dl.restricted_amount is None else f"{dl.restricted_amount:.2f}",
                         dl.currency])
    return buf.getvalue()


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"value": amount, "currency": currency}


def to_bundle(dl: DeductionList, repository: Any, base_url: str, names: Mapping[str, Any],
              now: datetime | None = None) -> dict[str, Any]:
    """The unsigned import Bundle (see the module docstring for its shape)."""
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")
    start, end = month_range(dl.month)
    issues = []
    for r in dl.rows:
        try:
            issues.append(repository.read("DetectedIssue", r.flag))
        except NotFound:
            continue  # listed with its evidence in the List entry and the CSV all the same
    entries = []
    for r in dl.rows:
        ext: list[dict[str, Any]] = [{"url": "amount", "valueMoney": _money(r.amount, r.currency)},
                                     {"url": "priceSource", "valueCode": r.price_source},
                                     {"url": "policy", "valueString": r.policy}]
        if r.charge:
            ext.append({"url": "charge", "valueReference": {"reference": r.charge}})
        entries.append({"extension": [{"url": DEDUCTION_EXT, "extension": ext}],
                        "item": {"reference": f"DetectedIssue/{r.flag}"}})
    deduction_list = {
        "resourceType": "List",
        "id": dl.id,
        "extension": [{"url": LIST_EXT, "extension": [
            {"url": "institution", "valueIdentifier": {"system": INSTITUTION_SYSTEM, "value": dl.institution}},
            {"url": "period", "valuePeriod": {"start": start.isoformat(), "end": end.isoformat()}},
            {"url": "total", "valueMoney": _money(dl.total, dl.currency)},
            {"url": "count", "valueInteger": len(dl.rows)},
            # upheld flags not listed to this reader (a record they cite is labelled beyond them)
            *([{"url": "restrictedCount", "valueInteger": dl.restricted_count},
               *([{"url": "restrictedAmount", "valueMoney": _money(dl.restricted_amount, dl.currency)}]
                 if dl.restricted_amount is not None else []),
               {"url": "restrictedNote", "valueString": restricted_words(
                   {"count": dl.restricted_count, "amount": dl.restricted_amount}, dl.currency)}]
              if dl.restricted_count else []),
        ]}],
        "identifier": [{"system": LIST_SYSTEM, "value": f"{dl.institution}|{dl.month}"}],
        "status": "current",
        "mode": "snapshot",
        "title": f"扣款清单 {dl.institution} {dl.month}",
        "code": {"text": "deduction list: upheld duplicate tests, not payable"},
        "date": stamp,
    }
    if entries:
        deduction_list["entry"] = entries
    else:
        deduction_list["emptyReason"] = {"text": "no upheld duplicate tests this month"}
    csv_binary = {"resourceType": "Binary", "id": f"{dl.id}-csv", "contentType": "text/csv",
                  "data": base64.b64encode(to_csv(dl, names).encode("utf-8")).decode()}
    base = base_url.rstrip("/")
    return {
        "resourceType": "Bundle",
        "id": dl.id,
        "identifier": {"system": LIST_SYSTEM, "value": f"{dl.institution}|{dl.month}"},
        "type": "collection",
        "timestamp": stamp,
        # the DetectedIssues live on this server; the List and the CSV only in this Bundle
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, LIST_SYSTEM + ':' + dl.id)}",
                   "resource": deduction_list},
                  *({"fullUrl": f"{base}/DetectedIssue/{res['id']}", "resource": res} for res in issues),
                  {"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, LIST_SYSTEM + ':' + dl.id + ':csv')}",
                   "resource": csv_binary}],
    }


def _carrier(bundle: dict[str, Any], signature: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The Provenance shape ``engine.audit.provenance`` signs and verifies, naming the Bundle."""
    out: dict[str, Any] = {"resourceType": "Provenance", "target": [{"reference": f"Bundle/{bundle.get('id')}"}]}
    if signature is not None:
        out["signature"] = signature
    return out


def sign_bundle(bundle: dict[str, Any], keys: AuditKeys) -> bytes:
    """The Bundle as JSON bytes with ``Bundle.signature`` over everything else in it.

    What is signed is what the bytes parse back to, so a verifier that reads the file gets the
    very payload that was signed (amounts are written as exact decimals)."""
    parsed = fhirjson.loads(fhirjson.dumps({k: v for k, v in bundle.items() if k != "signature"}))
    signed = sign_provenance(_carrier(parsed), parsed, keys)
    parsed["signature"] = signed["signature"][-1]
    return fhirjson.dumps(parsed)


def verify_bundle(data: bytes | dict[str, Any], keys: AuditKeys) -> bool:
    """True when the Bundle's signature is a valid JWS by one of ``keys`` over the Bundle as given
    (``keys`` may hold only public keys: ``AuditKeys.from_public_pems``)."""
    bundle = fhirjson.loads(data) if isinstance(data, bytes | bytearray | str) else data
    if not isinstance(bundle, dict) or not isinstance(bundle.get("signature"), dict):
        return False
    body = {k: v for k, v in bundle.items() if k != "signature"}
    return verify_provenance(_carrier(body, [bundle["signature"]]), body, keys)
