"""Flags an earlier release priced by rules this one no longer keeps, priced again once when a store
is opened (twenty-seventh round, moneyfix27).

Two of the twenty-seventh round's money rules change what stored rows mean:

- **Rounding.** Until moneyleft27 ``Rules.repeat_price`` summed an unpriced analyte's share of its
  panel as a float and rounded it by ``round``: ALT alone of a 10.11 liver panel of six was stored
  at 1.68, where this release (Decimal, half up at the fen by ``insurance.tiers.fen``) prices the
  same repeat 1.69. The flag row, its tally (the duplicates report's ``money_at_stake``), the
  DetectedIssue and the deduction list kept 1.68 for ever, a fresh store saying 1.69.
- **Currency.** A charge line whose currency is not the catalogue's (``charges.in_currency``) is no
  money at stake; an earlier release kept a row for it, and the flag took its amount (a USD 25.00
  line was "CNY 25.00") until the line was sent again.

Why a pass once per store and not re-pricing on read: the price is read in many places (the flag
row, the tallies summed by the reports, the DetectedIssue a payer reads over FHIR, the signed
deduction list): priced on read, each would need the catalogue and the rule, and the tallies
(sums kept per day) could not be priced on read at all. Priced once, every reader reads one stored
figure, as after any decision. Why only those rows whose stored price is what the earlier rule
made of today's catalogue (``_earlier_price``): a price stored under a catalogue since changed is
the catalogue of its day, which a flag keeps until it is decided again; the pass changes what the
rounding changed and nothing else. A flag priced again says so: its row keeps each change in
``repriced`` (from, to, when, why), and its DetectedIssue gets a ``repricedFrom`` evidence (the
amount it said before) beside the new price and its ``detail`` -- a hospital is never charged
other than it was shown without the flag saying why, in either direction (a float sum may also
have rounded up where the exact share rounds down).

The decisions (status, reason, reviews) stand: only the money moves, as ``billed_lines`` does.
Once per store (a marker in ``recognition_layout``); run again it finds nothing. Each row is read
again inside its write transaction and written only if unchanged, so a flag decided meanwhile by
another ``--workers`` process is left as that process wrote it.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from engine.insurance.charges import in_currency, read_line
from engine.insurance.tiers import fen, fen_text, stored_fen
from engine.recognition.detected_issues import repriced_issue
from engine.recognition.ports import Index, Store, each_by_id
from engine.recognition.state import now
from engine.recognition.upgrade import LAYOUT
from engine.repository.port import Collection, is_new_store

MONEY_RULES = "money-rules-of-round-27"  # the marker in ``recognition_layout``
ROUNDING = "half-up-at-the-fen"  # why a flag was priced again (its row's ``repriced[].why``)
_T = TypeVar("_T")


class _Rules(Protocol):
    currency: str
    items: Any
    prices: Any
    institution_prices: Any

    def repeat_price(self, item: Any, repeated: frozenset[str], institution: str | None) -> Decimal: ...

    def price(self, item: str, institution: str | None) -> Decimal: ...


class _Recognition(Protocol):
    """What the pass asks of ``engine.recognition.service.Recognition``."""

    @property
    def store(self) -> Store: ...

    @property
    def charges(self) -> Collection: ...

    @property
    def flags(self) -> Collection: ...

    @property
    def rules(self) -> _Rules: ...

    @property
    def index(self) -> Index: ...

    def read(self, rtype: str, rid: str) -> dict[str, Any] | None: ...

    def _reprice_flag(self, member: dict[str, Any]) -> None: ...

    def _put_flag(self, old: dict[str, Any] | None, new: dict[str, Any],
                  redo: Callable[[], object] | None = None) -> None: ...

    def _write_issue(self, issue: dict[str, Any]) -> None: ...

    def _in_group(self, decide: Callable[[], _T]) -> _T: ...


def money_rules_once(rec: _Recognition) -> tuple[int, int] | None:
    """Drop the charge rows of lines in another currency (their flags priced again, ``_reprice_flag``),
    then price again the catalogue-priced flags whose stored price is the earlier rounding's; once per
    store. Returns (rows dropped, flags priced again), None when the store had been through it."""
    marks = rec.store.collection(LAYOUT)
    if marks.get(MONEY_RULES) is not None:
        return None
    dropped = repriced = 0
    currency = rec.rules.currency
    new = is_new_store(rec.store)  # nothing an earlier release priced: the marker alone
    for row in () if new else each_by_id(rec.charges):
        if _foreign(rec, row["_id"], currency):
            with rec.store.transaction():
                current = rec.charges.get(row["_id"])  # read again under the write lock
                if current is not None and _foreign(rec, row["_id"], currency):
                    rec._in_group(lambda r=current: _drop(rec, r))
                    dropped += 1
    for flag in () if new else each_by_id(rec.flags):
        if _new_price(rec.rules, flag) is None:
            continue
        with rec.store.transaction():
            current = rec.flags.get(flag["_id"])  # read again under the write lock
            price = _new_price(rec.rules, current) if current is not None else None
            if current is not None and price is not None:
                rec._in_group(lambda f=current, p=price: _reprice(rec, f, p, now()))
                repriced += 1
    with rec.store.transaction():
        marks.replace({"_id": MONEY_RULES, "dropped": dropped, "repriced": repriced})
    return dropped, repriced


def _foreign(rec: _Recognition, ref: str, currency: str) -> bool:
    """Is the ChargeItem ``ref`` stored and in another currency than ``currency`` (as the settlement
    reads it: ``read_line``, ``in_currency``)? A deleted one is left as a fresh store leaves it."""
    rtype, _, rid = str(ref).partition("/")
    charge = rec.read(rtype, rid) if rtype == "ChargeItem" and rid else None
    return charge is not None and not in_currency(read_line(charge, lambda _ref: None), currency)


def _drop(rec: _Recognition, row: dict[str, Any]) -> None:
    """Drop ``row`` and price again the flags of the results it named, as ``billed_lines`` drops one."""
    rec.charges.delete(row["_id"])
    named = [*(row.get("services") or ()), *([row["service"]] if row.get("service") else [])]
    for service in dict.fromkeys(named):
        member = rec.index.get(str(service))
        if member is not None:
            rec._reprice_flag(member)


def _new_price(rules: _Rules, flag: dict[str, Any]) -> Decimal | None:
    """The price this release gives a catalogue-priced ``flag`` when it differs from the stored one
    and the stored one is the earlier rounding of today's catalogue; None otherwise (priced by a
    line, void, its item gone, already right, or priced under another catalogue)."""
    if (flag.get("price_source") or "catalogue") != "catalogue" or flag.get("status") == "void":
        return None
    item = rules.items.get(flag.get("item") or "")
    if item is None:
        return None
    repeated, inst = frozenset(flag.get("analytes") or ()), flag.get("inst")
    stored, price = stored_fen(flag.get("price")), rules.repeat_price(item, repeated, inst)
    if price == stored or _earlier_price(rules, item, repeated, inst) != stored:
        return None
    return price


def _earlier_price(rules: _Rules, item: Any, repeated: frozenset[str], institution: str | None) -> Decimal:
    """What the release before moneyleft27 (7e6d12a6) stored for this repeat under today's
    catalogue, read as a store reads it (``stored_fen``): the whole panel's price as written; an
    analyte's own price, else its share of the panel's, summed as floats in the analytes' order
    and rounded by ``round``. Only to tell a price the rounding made from one a catalogue made."""
    whole = float(rules.price(item.code, institution))
    if not item.analytes or repeated >= frozenset(item.analytes):
        return stored_fen(whole)
    own = rules.institution_prices.get(institution or "", {})
    share, total = whole / len(item.analytes), 0.0
    for a in sorted(repeated):
        total += float(rules.price(a, institution)) if a in rules.prices or a in own else share
    return stored_fen(round(total, 2))


def _reprice(rec: _Recognition, flag: dict[str, Any], price: Decimal, at: str) -> None:
    """Store ``flag`` at ``price`` (its tally moved, ``_put_flag``), the change kept on the row and on
    its DetectedIssue (``repriced_issue``: the price, the detail, a ``repricedFrom`` evidence)."""
    old = stored_fen(flag.get("price"))
    change = {"from": fen_text(old), "to": fen_text(price), "at": at, "why": ROUNDING}
    rec._put_flag(flag, {**flag, "price": fen_text(price), "repriced": [*(flag.get("repriced") or ()), change]},
                  lambda: _reprice_again(rec, str(flag["_id"]), at))
    issue = rec.read("DetectedIssue", flag["_id"])
    if issue is not None:
        rec._write_issue(repriced_issue(issue, str(flag.get("currency") or ""), fen(old), price, noted=True))


def _reprice_again(rec: _Recognition, flag_id: str, at: str) -> None:
    """``_reprice`` decided again from the flag as stored now (another writer stored it first: ``_put_flag``):
    priced again only while it still has the earlier rounding's price (``_new_price``)."""
    current = rec.flags.get(flag_id)
    price = _new_price(rec.rules, current) if current is not None else None
    if current is not None and price is not None:
        _reprice(rec, current, price, at)


def repriced_from(row: dict[str, Any] | None, price: Decimal, price_source: str) -> Decimal | None:
    """What a flag said before this pass priced it again, for its DetectedIssue's ``repricedFrom``
    when the flag is decided again (``Repeats._evaluate_flag``): the last change's ``from``, only while
    the flag still carries that change's price from the catalogue (``row``: its price is the change's
    ``to`` and its source the catalogue) and this decision prices it the same from the catalogue again.
    Why only then: the evidence says "this price came from that one by a rule"; a decision pricing the
    flag otherwise (a billed line, even at the same figure; a catalogue since changed, other analytes)
    supersedes that price, and once superseded the old change no longer explains the price even if a
    later decision comes back to the same figure (rvperfrecog28: a withdrawn line, a catalogue changed
    and changed back, had brought the evidence back). The row keeps every change in ``repriced`` for the
    auditor either way."""
    changes = (row or {}).get("repriced") or ()
    if row is None or not changes or not isinstance(changes[-1], dict) or price_source != "catalogue":
        return None
    last = changes[-1]
    if last.get("from") is None or last.get("to") is None or stored_fen(last["to"]) != price:
        return None
    if (row.get("price_source") or "catalogue") != "catalogue" or row.get("price") is None \
            or stored_fen(row["price"]) != price:
        return None
    return stored_fen(last["from"])
