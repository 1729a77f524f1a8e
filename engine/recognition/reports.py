"""Auditor reports over the duplicate flags and the order-time checks.

Reads recognition's own small collections (the FHIR resources only to screen a reader not shown
every label: each matching flag's DetectedIssue, ``FlagScreen``): totals, charts and
the rate come from the per-day tallies (``engine.recognition.aggregates``), the rows from the flags
with filters the indexes answer: period (on the repeated test's day), institution (the repeating
one), item, category, status. Totals give the count and the money at stake (flags still open or upheld: the
amount a payer would refuse) by institution and by item; the recognition rate per institution is
recognised ÷ recognisable orders: the denominator is every order that had a recognisable prior
result when it was placed; it is recognised when it was cancelled, answered "recognise" in CDS, or
never resulted within the item's window. The rate is also broken down by department, ordering
doctor and month.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from engine.auth import confidentiality
from engine.auth.caller import Caller
from engine.errors import BadRequest
from engine.insurance.tiers import ZERO, fen, stored_fen
from engine.recognition import aggregates
from engine.recognition.facts import department_at, department_key, department_parts, local_today
from engine.recognition.flags import STATUSES
from engine.recognition.index import day_range, window_end
from engine.recognition.pairs import of_flag
from engine.recognition.review_note import review_note
from engine.repository.scoped import ScopedRepository
from engine.wards import department_namer
from mappings.site import DEFAULT_ZONE, DEFAULTS_DIR

# what a list says of a panel flag stored before its analyte pairs were kept (pairs.of_flag)
BEFORE_PAIRS = "记录早于分项配对：复查结果与前次结果未按分析项目核对，请打开证据查看 (recorded before analyte pairs were kept)"

# Flags whose money is at stake: open or upheld. Overturned, justified and void flags are not.
AT_STAKE = frozenset({"flagged", "upheld"})
COLUMNS = ("id", "status", "day", "institution", "item", "item_name", "category", "price", "currency",
           "prior_institution", "prior_day", "window_days", "order", "result", "prior_result", "order_day",
           "reason", "reason_text", "reviewed_by", "review_reason", "analytes", "partial", "contradicted", "basis",
           "price_source")


@dataclass(frozen=True)
class ReportFilter:
    start: date | None = None
    end: date | None = None
    institution: str | None = None
    item: str | None = None
    category: str | None = None
    status: str | None = None
    # the auditor's remit: only these institutions' flags and rates (None: every institution)
    institutions: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}", expression=["status"])
        if self.category is not None and self.category not in ("检验", "检查"):
            raise BadRequest("category must be 检验 or 检查", expression=["category"])
        if self.start and self.end and self.end < self.start:
            raise BadRequest("'to' is before 'from'", expression=["to"])

    def query(self) -> dict[str, Any]:
        q: dict[str, Any] = {}
        days = day_range(self.start, self.end)
        if days:
            q["day"] = days
        q.update(self.inst_query())
        if self.item:
            q["item"] = self.item
        if self.category:
            q["category"] = self.category
        return q

    def inst_query(self) -> dict[str, Any]:
        """The institution condition: the one asked for, within the remit when there is one (a
        remit that excludes it matches nothing)."""
        if self.institutions is None:
            return {"inst": self.institution} if self.institution else {}
        allowed = sorted(self.institutions & {self.institution} if self.institution else self.institutions)
        return {"inst": {"$in": allowed}}


class FlagScreen:
    """Which duplicate flags this reader may not be shown: those whose DetectedIssue the FHIR read
    withholds from them for a label -- its own, or a record it cites (its patient, results, order),
    as that stands now. Decided by the one owner, ``ScopedRepository.label_withholds`` (the rule
    ``admit`` applies), not by a list of the row's fields: labels20's own list missed a flag about
    a Patient labelled R (rv-labels20).

    Such a flag is not listed at all to that reader -- not its row, drill-down, CSV line, deduction
    line or DetectedIssue -- and every list says only how many were left out and the money at stake
    (``totals.restricted``): a masked row kept its id (``dup-`` + sha256 of institution, person,
    item and day: hashing the catalogue's items gave the item back), patient, institution and day
    (one DiagnosticReport search then found the repeat), category and window (labelsmend20).

    Cost: for a reader with a label withheld, every flag the report's filter matches has its
    DetectedIssue read once per request (one batched primary-key read); nothing for a reader shown
    every label."""

    def __init__(self, repository: Any, caller: Caller) -> None:
        self.scoped = ScopedRepository(repository, caller)
        self.active = bool(confidentiality.withheld_codes(caller))

    def restricted(self, flags: Iterable[dict[str, Any]]) -> set[str]:
        """The ids of those of ``flags`` (stored rows; a flag's id is its DetectedIssue's) not shown
        to this reader."""
        if not self.active:
            return set()
        withheld = self.scoped.label_withholds(f"DetectedIssue/{f['_id']}" for f in flags)
        return {ref.split("/", 1)[1] for ref in withheld}

    def hides(self, flag: dict[str, Any]) -> bool:
        """Whether this one flag is not shown: its drill-down and review answer 404, as for no flag."""
        return bool(self.restricted([flag]))

    def withheld_checks(self, checks: Iterable[dict[str, Any]]) -> set[str]:
        """The ids of those of ``checks`` (recognition's order-check rows) whose evidence this reader
        may not be shown: the order itself, a prior result it could have recognised, or its patient,
        withheld for a label (the same owner as for flags). The recognition rates count such an
        order nowhere for this reader: a rate asked for one item, institution and day showed "1
        recognisable, 1 re-tested" where the report had hidden the flag (the review of labelsmend20)."""
        if not self.active:
            return set()
        refs_of = {c["_id"]: [r for r in (c["_id"], c.get("patient"), *(c.get("recognisable") or ()))
                              if isinstance(r, str) and "/" in r and "://" not in r] for c in checks}
        withheld = self.scoped.label_withholds(r for refs in refs_of.values() for r in refs)
        return {cid for cid, refs in refs_of.items() if not withheld.isdisjoint(refs)}


def _row(flag: dict[str, Any], recognition: Any) -> dict[str, Any]:
    last = (flag.get("reviews") or [{}])[-1]
    item = recognition.rules.items.get(flag.get("item") or "")
    # what the evidence compares, analyte by analyte (``pairs.of_flag``, checked like with like as
    # read): a row lists every pair
    paired = of_flag(flag, tuple(item.analytes) if item is not None else (), recognition)
    return {
        "id": flag["_id"], "status": flag["status"], "day": flag["day"], "institution": flag["inst"],
        "item": flag["item"], "item_name": flag.get("item_name"), "category": flag.get("category"),
        "price": stored_fen(flag.get("price")), "currency": flag.get("currency"), "prior_institution": flag.get("prior_inst"),
        "prior_day": flag.get("prior_day"), "window_days": flag.get("window"), "order": flag.get("order"),
        "result": flag.get("result"), "prior_result": flag.get("prior"), "order_day": flag.get("order_day"),
        "reason": flag.get("reason"), "reason_text": flag.get("reason_text"),
        "reviewed_by": last.get("by"), "review_reason": last.get("reason"),
        "reviews": flag.get("reviews") or [], "patient": flag.get("patient"),
        "analytes": " ".join(flag.get("analytes") or ()), "partial": bool(flag.get("partial")),
        "contradicted": flag.get("contradicted"), "basis": flag.get("basis") or "community",
        "price_source": flag.get("price_source") or "catalogue", "effect": flag.get("effect"),
        "hr": flag.get("hr") or [],
        # reasons first sent after the result: not part of the decision, shown for the auditor
        "late_reasons": " ".join(flag.get("late_reasons") or ()), "late_reason_text": flag.get("late_reason_text"),
        # ``result`` above is the billed result (the charge line's); these are the analyte pairs
        "pairs": paired["pairs"], "unpaired": paired["unpaired"], "pairs_source": paired["source"],
    }


def _tally_query(flt: ReportFilter, *, with_item: bool = True) -> dict[str, Any]:
    q: dict[str, Any] = {}
    days = day_range(flt.start, flt.end)
    if days:
        q["day"] = days
    q.update(flt.inst_query())
    if flt.item and with_item:
        q["item"] = flt.item
    if flt.category:
        q["category"] = flt.category
    return q


def duplicates_report(recognition: Any, flt: ReportFilter, *, limit: int | None = 100, offset: int = 0,
                      screen: FlagScreen | None = None) -> dict[str, Any]:
    """Totals, chart series and recognition rate from the per-day tallies; one page of rows
    (newest first; ``limit=None`` for all) from the flags themselves.

    ``screen``: the reader's (``FlagScreen``). A flag they may not be shown is left out of the rows
    and of every total (count, money, by status, institution, item and day); ``totals.restricted``
    says how many were left out and the money at stake in them. A report asked for one item leaves
    such flags out without counting them there (``restricted`` is zero): a count under the item
    asked for would name it."""
    by_status: dict[str, int] = defaultdict(int)
    by_inst: dict[str, dict[str, Any]] = {}
    by_item: dict[str, dict[str, Any]] = {}
    per_day: dict[str, dict[str, Any]] = {}
    # money as Decimal to the fen, read from the tallies' text (an earlier release's floats by their
    # shortest text: ``stored_fen``); written as JSON numbers with their two decimals (0.50, 0.00)
    count, money, self_pay = 0, ZERO, ZERO
    names = {code: item.name for code, item in recognition.rules.items.items()}
    for t in recognition.flag_days.find(_tally_query(flt)):
        status, n = t["status"], int(t["count"])
        by_status[status] += n
        if status == "void" and flt.status != "void":
            continue
        if flt.status and status != flt.status:
            continue
        stake = stored_fen(t["money"]) if status in AT_STAKE else ZERO
        count += n
        money += stake
        if status == "self_pay":
            self_pay += stored_fen(t["money"])
        for table, key, extra in ((by_inst, t["inst"], {}),
                                  (by_item, t["item"], {"name": names.get(t["item"]), "category": t.get("category")})):
            row = table.setdefault(key, {"count": 0, "money": ZERO, "flagged": 0, "upheld": 0, "overturned": 0,
                                         "justified": 0, "self_pay": 0, "reported": 0, **extra})
            row["count"] += n
            row["money"] += stake
            if status in row:
                row[status] += n
        d = per_day.setdefault(t["day"], {"day": t["day"], "count": 0, "money": ZERO})
        d["count"] += n
        d["money"] += stake
    restricted: set[str] = set()
    left_out, left_money = 0, ZERO
    if screen is not None and screen.active:
        every = recognition.flags.find(flt.query())
        restricted = screen.restricted(every)
        for f in every:
            if f["_id"] not in restricted:
                continue
            status, price = f["status"], stored_fen(f.get("price"))
            by_status[status] -= 1
            if (status == "void" and flt.status != "void") or (flt.status and status != flt.status):
                continue
            stake = price if status in AT_STAKE else ZERO
            left_out += 1
            left_money += stake
            count -= 1
            money -= stake
            self_pay -= price if status == "self_pay" else ZERO
            for table, key in ((by_item, f["item"]), (by_inst, f["inst"]), (per_day, f["day"])):
                row = table.get(key)
                if row is None:
                    continue
                row["count"] -= 1
                row["money"] -= stake
                if status in row:
                    row[status] -= 1
                if row["count"] <= 0:
                    del table[key]
        if flt.item:  # not counted under the item asked for: that would name it
            left_out, left_money = 0, ZERO
    for table in (by_inst, by_item, per_day):
        for row in table.values():
            row["money"] = fen(row["money"])
    rates = recognition_rates(recognition, flt, screen=screen)
    query = flt.query()
    query["status"] = flt.status if flt.status else {"$ne": "void"}
    # newest day first, then the flag id: a total order, so pages by skip/limit neither repeat nor
    # skip a flag among the many of one day (neither store promises an order to ties)
    order = [("day", -1), ("_id", 1)]
    if restricted:  # flags not shown to this reader are not listed: paged here
        kept = [f for f in recognition.flags.find(query, sort=order) if f["_id"] not in restricted]
        flags = kept[offset:] if limit is None else kept[offset:offset + limit]
    else:
        flags = recognition.flags.find(query, sort=order, limit=limit, skip=offset)
    return {
        "filter": {"from": flt.start.isoformat() if flt.start else None, "to": flt.end.isoformat() if flt.end else None,
                   "institution": flt.institution, "item": flt.item, "category": flt.category, "status": flt.status},
        "currency": recognition.rules.currency,
        "totals": {
            "count": count,
            "money_at_stake": fen(money),
            "self_pay_money": fen(self_pay),
            "by_status": {s: by_status.get(s, 0) for s in STATUSES},
            "by_institution": dict(sorted(by_inst.items())),
            "by_item": dict(sorted(by_item.items())),
            # flags not listed to this reader (a record they cite, or the flag, is labelled beyond
            # them): how many, and the money at stake in them; in no other total
            # the amount only from ``amount_shown_from`` flags on: one flag's price names its item
            "restricted": {"count": left_out,
                           "amount": None if 0 < left_out < amount_shown_from() else fen(left_money),
                           "amount_shown_from": amount_shown_from()},
        },
        "recognition_rate": rates.pop("inst"),
        "recognition_rate_by": rates,
        "over_time": [per_day[k] for k in sorted(per_day)],
        "rows": [_row(f, recognition) for f in flags],
        "offset": offset,
    }


@functools.cache
def amount_shown_from() -> int:
    """K of ``mappings/insurance/restricted.yaml``: fewer withheld flags than this are counted
    without their amount -- a report narrowed to one day or institution isolated one flag, and its
    price (near-unique per catalogue item) named the item. Single-query only: two reports that
    differ by one flag, both at K or more, can still be subtracted."""
    doc = yaml.safe_load((DEFAULTS_DIR / "insurance" / "restricted.yaml")
                         .read_text(encoding="utf-8")) or {}
    k = doc.get("amount_shown_from", 5)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"mappings/insurance/restricted.yaml: amount_shown_from must be a positive integer, not {k!r}")
    return k


def restricted_words(restricted: Mapping[str, Any], currency: str, word: str | None = None) -> str:
    """What a list says of the flags it leaves out (``totals.restricted``), in Chinese: "" for none.
    An amount of None (fewer than ``amount_shown_from`` flags) is said to be not shown; an amount is
    said as the pages say money (``money_words``: "金额 2,550.25 元", was "金额 ¥2550.25"); ``word``:
    the site's word for the currency (its words file's ``currencies``), else the shipped one."""
    if not restricted or not restricted.get("count"):
        return ""
    amount = restricted.get("amount")
    said = (f"金额不显示（少于 {amount_shown_from()} 条）" if amount is None
            else f"金额 {money_words(amount, currency, word)}")
    return f"另有 {restricted['count']} 条涉及受限记录的疑似重复未显示，{said}，需具备相应权限的审核员处理"


RETESTED = frozenset({"duplicate", "justified", "self_pay", "reported", "retested", "retest"})


def latest_ward_name(check_days: Any) -> Callable[..., str | None]:
    """(institution, point-of-care code) -> the PL-9 name of its latest named check tally (the latest
    day's, then the larger name): the name its ward Location had when that order was checked -- how
    ``engine.wards.ward_name`` names a ward whose Location it does not find (wardfix35; deptfix34 took
    the first name for every ward, frozen). One query per such ward, on the index
    ``aggregates.ensure_indexes`` keeps (inst, dept, day): the named tallies of one code are the range
    of ``dept`` after ``dept|<code>|`` (the code alone) and before ``dept|<code>}``, ``}`` being the
    character after ``|``: a ward at another facility than the sender's (``facts.DEPT_AT``,
    ``dept@<at>|<code>|``, dept37) sorts before it, never in it.

    ``at``: that ward's own range instead, ``dept@<at>|<code>|`` -- asked only for a ward at a facility
    no member's code names, by its Location's id (``engine.wards.OUTSIDE_AT``, wardlink38), whose rows
    are that one ward's. Never for a row stored with an empty facility (``dept@|<code>|``): those rows
    share one key whatever hospital they are, so their latest name could be another hospital's (rv37g
    MED 1, gfix37: such a row is named by its own words)."""
    def latest(inst: str, code: str, at: str | None = None) -> str | None:
        if at == "":
            return None
        key = department_key(code, None, at) or ""
        found = check_days.find({"inst": inst, "dept": {"$gt": key, "$lt": key[:-1] + "}"}},
                                sort=[("day", -1), ("dept", -1)], limit=1)
        return next((name for t in found for _, name in (department_parts(t.get("dept")),) if name), None)
    return latest


def recognition_rate(recognition: Any, flt: ReportFilter, *, by: str = "inst",
                     today: date | None = None) -> dict[str, dict[str, Any]]:
    """Per ordering institution (or ``by`` dept, doctor, month): recognisable orders, recognised ones
    (cancelled, answered "recognise" in CDS, or never resulted within the item's window), re-tested
    ones, still pending, and the rate."""
    return recognition_rates(recognition, flt, (by,), today=today)[by]


def recognition_rates(recognition: Any, flt: ReportFilter, dims: tuple[str, ...] = ("inst", "dept", "doctor", "month"),
                      *, today: date | None = None,
                      screen: FlagScreen | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """``recognition_rate`` broken down several ways in one pass over the per-day tallies.

    ``screen``: the reader's. For a reader some labels are withheld from, the orders whose evidence
    is withheld (``FlagScreen.withheld_checks``) are taken back out of the tallies: the filter's
    checked orders are read and screened once per request (nothing for a reader shown every label).

    Whether an order's window has passed is judged on today at its institution (``today``: the
    same day for all): on the server's clock, a server in UTC kept an order pending for the first
    eight hours of each day in Asia/Shanghai, and one ahead of it counted an order recognised a
    day early."""
    rules = recognition.rules
    windows = {code: item.window_days for code, item in rules.items.items()}
    todays: dict[str, date] = {}

    def today_at(inst: str | None) -> date:
        if today is not None:
            return today
        key = inst or ""
        if key not in todays:
            known = rules.institutions.get(key)
            todays[key] = local_today(known.timezone if known is not None else DEFAULT_ZONE)
        return todays[key]

    out: dict[str, dict[str, dict[str, Any]]] = {dim: {} for dim in dims}

    def tally(t: dict[str, Any], n: int) -> None:
        outcome = t.get("outcome") or "pending"
        if outcome == "recognised":
            column = "recognised"
        elif outcome in RETESTED:
            column = "retested"
        elif date.fromisoformat(window_end(t["day"], windows.get(t.get("item"), 0))) < today_at(t.get("inst")):
            column = "recognised"  # never resulted within the item's window: the prior result served
        else:
            column = "pending"
        for dim in dims:
            if dim == "dept":  # the ward, named (dept33): rows stored as a bed's text count with the ward's
                key = department(t.get("dept"), t.get("inst")) or "(unknown)"
            else:
                key = t["day"][:7] if dim == "month" else (t.get(dim) or "(unknown)")
            row = out[dim].setdefault(key, {"recognisable": 0, "recognised": 0, "retested": 0, "pending": 0})
            row["recognisable"] += n
            row[column] += n
            if row["recognisable"] <= 0:
                del out[dim][key]

    # read from the store once into a list of our own: walked twice (the namer, the tally), which a
    # cursor would answer empty the second time without an error (rvlast34)
    tallies = list(recognition.check_days.find(_tally_query(flt)))
    # the ward's current name (``engine.wards.ward_name``): its Location as stored now, read at once for
    # the distinct (department, institution) pairs, a list of their own (the tallies are walked below)
    wards = list(dict.fromkeys((t.get("dept"), t.get("inst")) for t in tallies)) if "dept" in dims else []
    department = department_namer(getattr(getattr(recognition, "settings", None), "site", None), rules.institutions,
                                  department_parts, getattr(recognition.repository, "read_many", None),
                                  latest_ward_name(recognition.check_days), wards,
                                  department_at)
    for t in tallies:
        tally(t, int(t["count"]))
    if screen is not None and screen.active:
        checks = [c for c in recognition.checks.find(_tally_query(flt)) if aggregates.counted(c)]
        withheld = screen.withheld_checks(checks)
        for c in checks:
            if c["_id"] in withheld:
                tally(c, -1)
    for table in out.values():
        for row in table.values():
            row["rate"] = round(row["recognised"] / row["recognisable"], 4) if row["recognisable"] else None
    return {dim: dict(sorted(table.items())) for dim, table in out.items()}


_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: a text cell starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a CR (or their full-width forms, or any of them after blanks) gets a leading ``'`` (OWASP's advice against CSV injection), unless it is
    a plain number (a negative amount the export itself writes stays a number).

    Why: the cells carry sender free text (ORC-16 reason text, an auditor's review reason, names);
    ``=HYPERLINK(...)`` in one of them ran as a formula when an auditor opened the export in Excel."""
    if isinstance(value, str) and value.lstrip(_BLANKS)[:1] in _FORMULA_START and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


# what a spreadsheet may read as a formula's start: also after leading blanks and line breaks, and
# the full-width forms a Chinese input method types (review: " =HYPERLINK(..)", "\n=1+1", "＝...")
_FORMULA_START = frozenset("=+-@\t\r＝＋－＠")
_BLANKS = " \n\u3000"


def yuan(value: Any) -> str:
    """An amount as the page shows it and a spreadsheet reads it: yuan with two decimals (20.00,
    not 20.0), rounded half up from the decimal the amount was written as (a float through its
    shortest repr, so 2.675 is 2.68, not binary 2.67). "" for no amount."""
    if value is None or value == "" or isinstance(value, bool):
        return ""
    try:
        return str(fen(Decimal(str(value))))  # the one rounding rule (``insurance.tiers.fen``)
    except (InvalidOperation, ValueError):
        return str(value)


@functools.cache
def _currency_words() -> dict[str, str]:
    """The shipped words for currency codes (``mappings/insurance/words.yaml`` ``currencies``: CNY -> 元)."""
    doc = yaml.safe_load((DEFAULTS_DIR / "insurance" / "words.yaml").read_text(encoding="utf-8")) or {}
    return {str(k): str(v) for k, v in (doc.get("currencies") or {}).items() if v}


def money_words(value: Any, currency: str | None, word: str | None = None) -> str:
    """An amount in words as the pages say it (``shared/money.js``, their one owner: ui36), for what the
    exports write as a sentence: the figure to the fen -- rounded half up on the decimal it was written
    as (``yuan``), never through a float -- its thousands grouped, then the currency's word (``word``,
    else the shipped words' ``currencies``: CNY -> 元; a code they do not name follows the figure):
    "2,550.25 元". A column of amounts stays bare digits (``yuan``: what a spreadsheet sums). "" for
    no amount."""
    text = yuan(value)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return text
    figure = f"{abs(amount) if amount == 0 else amount:,.2f}"  # (exact: already to the fen; no "-0.00")
    return f"{figure} {word or _currency_words().get(currency or '') or currency or ''}".strip()


def csv_row(writer: Any, values: Iterable[Any]) -> None:
    """``writer.writerow`` with every cell through ``csv_cell``: the one way both exports (this
    report and ``engine.insurance.deductions``) write a row."""
    writer.writerow([csv_cell(v) for v in values])


class CsvNames:
    """The site's names for a CSV export: its column headers and the names of the codes it shows,
    read from the one owner of code names (``engine.api.ui_words.site_names``: the words file
    ``mappings/insurance/words.yaml`` with the site's overlay, institutions.yaml, the recognition
    rules) -- the pages show the same words. A code or column without a name shows as itself."""

    def __init__(self, names: Mapping[str, Any]) -> None:
        self.names = names

    def header(self, key: str) -> str:
        return str((self.names.get("columns") or {}).get(key) or key)

    def of(self, section: str, code: Any) -> str:
        """The name of ``code`` in ``section`` ("places", "reasons", ...), "" for no code."""
        if code is None or code == "":
            return ""
        found = (self.names.get(section) or {}).get(code)
        if isinstance(found, list):  # statuses: [Chinese, English]
            found = found[0] if found else None
        return str(found or code)

    def note(self, contradicted: Any, institution: Any) -> str:
        """复核提示: a flag's contradiction in the site's words, times in the institution's zone."""
        zone = (self.names.get("zones") or {}).get(institution)
        return review_note(contradicted, self.names, zone) if contradicted else ""

    def analytes(self, codes: Any) -> str:
        """Analytes by code and name (ALT 丙氨酸氨基转移酶、AST 天门冬氨酸氨基转移酶); "" for none."""
        return "、".join(f"{a} {name}" if (name := self.of("analytes", a)) != a else str(a) for a in codes or ())

    def pairs(self, row: Mapping[str, Any]) -> str:
        """A row's analyte pairs as one cell: "ALT 丙氨酸氨基转移酶：复查 Observation/x ↔ 前次 Observation/y；...".
        A whole item's one pair is the row's own result and prior: "" (those columns say it). A flag
        stored before the pairs were kept says so: its result and prior are not known to be one analyte."""
        if row.get("pairs_source") == "before-pairs":
            return BEFORE_PAIRS
        cells = []
        for p in row.get("pairs") or ():
            if not p.get("analyte"):
                continue
            # the analyte's other results no pair shows (a re-run; a measurement one side alone has)
            also = ((f"；另复查 {'、'.join(p['result_also'])}" if p.get("result_also") else "")
                    + (f"；另前次 {'、'.join(p['prior_also'])}" if p.get("prior_also") else ""))
            if p.get("unlike"):  # measured differently on each side: named, not compared (evpage34), yet
                # the same analyte, repeated and priced: "not compared" is not "not deducted" (evpfix34)
                cells.append(f"{self.analytes([p['analyte']])}：两次测量指标不同，未作对照（同一项目，计费不变）：复查 {p['result']}"
                             f"（{p.get('result_measure')}），前次 {p['prior']}（{p.get('prior_measure')}）{also}")
                continue
            cells.append(f"{self.analytes([p['analyte']])}" + (f"（{p['measure']}）" if p.get("measure") else "")
                         + f"：复查 {p['result']}" + ("（整组报告）" if p.get("result_panel") else "")
                         + f" ↔ 前次 {p['prior']}" + ("（整组报告）" if p.get("prior_panel") else "") + also)
        return "；".join(cells)

    def basis(self, code: Any) -> str:
        """A flag's scope of non-payment: community or optional (the words), else an HR scope."""
        if code in (self.names.get("bases") or {}):
            return self.of("bases", code)
        return self.of("scopes", code)


# (name column, the code column it names, how) of the duplicates CSV: each after its code
_NAMED = {"status": ("status_name", lambda n, v, r: n.of("statuses", v)),
          "institution": ("institution_name", lambda n, v, r: n.of("places", v)),
          "prior_institution": ("prior_institution_name", lambda n, v, r: n.of("places", v)),
          "reason": ("reason_name", lambda n, v, r: n.of("reasons", v)),
          "basis": ("basis_name", lambda n, v, r: n.basis(v)),
          "price_source": ("price_source_name", lambda n, v, r: n.of("price_sources", v))}


# columns added after the ones above, each at the end so that the older ones keep their places (a
# reader by position, a bureau's import sheet): the note as the page says the recorded sentence
# (与记录不符) of the same row (复核提示, twenty-sixth round)
_LAST = (("contradicted_note", lambda n, r: n.note(r.get("contradicted"), r.get("institution"))),
         # then the analyte pairs and the analytes no prior covered (thirty-third round, evidence33)
         ("analyte_pairs", lambda n, r: n.pairs(r)), ("unpaired", lambda n, r: n.analytes(r.get("unpaired"))))


_MONEY = frozenset({"price"})  # the duplicates CSV's amount columns (yuan, two decimals)


def to_csv(report: dict[str, Any], names: Mapping[str, Any]) -> str:
    """The rows as CSV, then totals: Chinese headers and the names of the codes (``names``, the
    site's, see ``CsvNames``), each code kept in its own column beside its name (a machine filters
    by the code); UTF-8 with a BOM so that Excel reads the Chinese."""
    n = CsvNames(names)
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf, lineterminator="\r\n")
    columns = [c for key in COLUMNS for c in (key, *((_NAMED[key][0],) if key in _NAMED else ()))]
    columns += [name for name, _ in _LAST]
    csv_row(writer, [n.header(c) for c in columns])
    for r in report["rows"]:
        line: list[Any] = []
        for key in COLUMNS:
            value = r.get(key)
            line.append(yuan(value) if key in _MONEY else "" if value is None else value)
            if key in _NAMED:
                line.append(_NAMED[key][1](n, value, r))
        line.extend(said(n, r) for _, said in _LAST)
        csv_row(writer, line)
    csv_row(writer, [])
    totals = report["totals"]
    csv_row(writer, [n.header("total"), totals["count"], n.header("money_at_stake"), yuan(totals["money_at_stake"]),
                     report["currency"], n.header("self_pay"), yuan(totals["self_pay_money"])])
    for inst, t in totals["by_institution"].items():
        csv_row(writer, [n.header("by_institution"), inst, n.of("places", inst), t["count"], yuan(t["money"])])
    for item, t in totals["by_item"].items():
        csv_row(writer, [n.header("by_item"), item, n.of("items", item), t["count"], yuan(t["money"])])
    if words := restricted_words(totals.get("restricted") or {}, report["currency"],
                                 n.of("currencies", report["currency"])):
        left_amount = totals["restricted"].get("amount")
        csv_row(writer, [words, totals["restricted"]["count"], yuan(left_amount)])
    for inst, t in report["recognition_rate"].items():
        rate = "" if t["rate"] is None else f"{t['rate']:.4f}"
        csv_row(writer, [n.header("recognition_rate"), inst, n.of("places", inst), t["recognised"], t["recognisable"],
                         rate])
    return buf.getvalue()


def to_text(report: dict[str, Any]) -> str:
    """The CLI's plain-text rendering (``huren report duplicates``)."""
    lines = []
    t = report["totals"]
    f = report["filter"]
    lines.append(f"Suspected duplicate tests {f['from'] or '…'} – {f['to'] or '…'}"
                 + "".join(f"  {k}={v}" for k, v in f.items() if v and k not in ("from", "to")))
    lines.append(f"{t['count']} flags, {report['currency']} {t['money_at_stake']:.2f} at stake  "
                 + "  ".join(f"{k}:{v}" for k, v in t["by_status"].items()))
    if words := restricted_words(t.get("restricted") or {}, report["currency"]):
        lines.append(words)
    lines.append("")
    lines.append(f"{'institution':<12} {'flags':>6} {'money':>12}  {'recognised/recognisable':>24}  rate")
    insts = sorted(set(t["by_institution"]) | set(report["recognition_rate"]))
    for inst in insts:
        b = t["by_institution"].get(inst, {"count": 0, "money": 0.0})
        r = report["recognition_rate"].get(inst)
        rate = f"{r['rate']:.1%}" if r and r["rate"] is not None else "-"
        ratio = f"{r['recognised']}/{r['recognisable']}" if r else "-"
        lines.append(f"{inst:<12} {b['count']:>6} {b['money']:>12.2f}  {ratio:>24}  {rate}")
    lines.append("")
    lines.append(f"{'item':<12} {'flags':>6} {'money':>12}")
    for item, b in t["by_item"].items():
        lines.append(f"{item:<12} {b['count']:>6} {b['money']:>12.2f}  {b.get('name') or ''}")
    lines.append("")
    for r in report["rows"]:
        lines.append(f"{r['day']} {r['status']:<10} {r['institution']:<10} {r['item']:<10} {r['price']:>8.2f} "
                     f"prior {r['prior_institution']} {r['prior_day']}  {r['id']}")
    return "\n".join(lines) + "\n"
