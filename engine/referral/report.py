"""Referral counts and ratios per institution and month, read from the ``referrals`` rows.

Each referral counts twice: for the sending institution (``sent``) and the receiving one
(``received``), in the month it was written (the sending institution's calendar). Direction comes
from the two institutions' grades. Per institution and month:

- ``upward`` / ``downward`` / ``lateral``: sent and received, by direction;
- ``completed``: received referrals that reached completed (or went on to be referred back);
- ``returned``: received upward referrals referred back down (下转) after completion;
- ratios: ``downward_to_upward`` (referrals sent down ÷ upward referrals received, the county's
  下转/上转 indicator), ``completion_rate`` (completed ÷ accepted received), ``return_rate``
  (returned ÷ the upward referrals received and completed: 回转率 is of upward referrals; a
  township that completed only downward referrals has none, not 0 %, money24); None when the
  denominator is zero;
- ``deductible_due``: the exact sum (``Decimal`` text) the received admissions pay: referrals whose
  patient arrived (``ADMITTED``), counted in the month the patient arrived (the row's ``admitted``,
  huren's record of the arrival in the receiving institution's zone), not the month the referral was
  written; an accepted referral not yet arrived pays nothing. A referral written in November whose
  patient arrives in December is December's admission: November's figure, once reported, stays
  (moneyfix25; money25 counted it in November, rewriting a month already reported, and never in
  December). A row stored before moneyfix25 with no ``admitted`` is counted in its written month.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from engine.repository.port import Collection, Document

# A referral that never stood: its ServiceRequest entered in error or revoked, or its Task's state
# cancelled or entered in error. It counts nowhere -- not sent, not received, not in the total --
# here and in the insurance indicators that read this tally (``engine.insurance.indicators``), so
# the report and the 下转/上转 indicator give one figure (the report had counted a referral entered
# in error as an upward referral sent and received, which the indicator did not; money24).
VOID_STATUS = frozenset({"entered-in-error", "revoked"})
VOID_STATE = frozenset({"cancelled", "entered-in-error"})
COMPLETED = frozenset({"completed", "referred-back"})
ACCEPTED = frozenset({"accepted", "arrived", "completed", "referred-back"})
# the states in which the referred patient was admitted at the receiving institution: only an admission
# pays a deductible (住院起付线). An accepted referral whose patient has not arrived owes none yet, and
# may never (money25: the report counted it from acceptance)
ADMITTED = frozenset({"arrived", "completed", "referred-back"})


def _blank() -> dict[str, Any]:
    return {"sent": {"upward": 0, "downward": 0, "lateral": 0, "unknown": 0, "total": 0},
            "received": {"upward": 0, "downward": 0, "lateral": 0, "unknown": 0, "total": 0},
            "accepted": 0, "rejected": 0, "completed": 0, "completed_upward": 0, "returned": 0,
            "deductible_due": Decimal("0.00")}


def stands(row: Document) -> bool:
    """Whether a referral's row counts (``VOID_STATUS``, ``VOID_STATE``)."""
    return row.get("status") not in VOID_STATUS and row.get("state") not in VOID_STATE


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def admitted_month(row: Document) -> str | None:
    """The month a referral's patient was admitted (its deductible's month); None when not admitted.
    A row kept before the arrival's month was (moneyfix25), its written month."""
    if row.get("state") not in ADMITTED:
        return None
    return row.get("admitted") or row["month"]


def _within(month: str | None, start: str | None, end: str | None) -> bool:
    return month is not None and (start is None or month >= start) and (end is None or month <= end)


def tally(rows: Iterable[Document], institution: str | None = None, *, start: str | None = None,
          end: str | None = None, deductibles: bool = True) -> list[dict[str, Any]]:
    """Per institution and month. A row counts in the month it was written when that month is in
    ``start``..``end`` (months, inclusive; None: open), and its deductible in the month its patient
    was admitted when that one is (``admitted_month``). ``deductibles=False``: the counts alone (no
    cell is made for an admission's month: the insurance indicators read the counts)."""
    cells: dict[tuple[str, str], dict[str, Any]] = defaultdict(_blank)
    for row in rows:
        way, month, state = row.get("direction") or "unknown", row["month"], row.get("state")
        due = (row.get("deductible") or {}).get("due")
        if deductibles and due is not None and row.get("to") and (institution is None or row["to"] == institution):
            arrived = admitted_month(row)
            if _within(arrived, start, end):
                assert arrived is not None
                cells[(row["to"], arrived)]["deductible_due"] += Decimal(due)
        if not _within(month, start, end):
            continue  # found for its admission's month alone
        if row.get("from") and (institution is None or row["from"] == institution):
            cell = cells[(row["from"], month)]
            cell["sent"][way] += 1
            cell["sent"]["total"] += 1
        if row.get("to") and (institution is None or row["to"] == institution):
            cell = cells[(row["to"], month)]
            cell["received"][way] += 1
            cell["received"]["total"] += 1
            cell["accepted"] += state in ACCEPTED
            cell["rejected"] += state == "rejected"
            cell["completed"] += state in COMPLETED
            cell["completed_upward"] += state in COMPLETED and way == "upward"
            cell["returned"] += state == "referred-back" and way == "upward"
    out = []
    for (inst, month), cell in sorted(cells.items()):
        cell["deductible_due"] = str(cell["deductible_due"])
        cell["ratios"] = {"downward_to_upward": _ratio(cell["sent"]["downward"], cell["received"]["upward"]),
                          "completion_rate": _ratio(cell["completed"], cell["accepted"]),
                          "return_rate": _ratio(cell["returned"], cell["completed_upward"])}
        out.append({"institution": inst, "month": month, **cell})
    return out


def referral_report(rows: Collection, *, start: str | None = None, end: str | None = None,
                    institution: str | None = None, within: frozenset[str] | None = None) -> dict[str, Any]:
    """``start`` / ``end``: months ``YYYY-MM``, inclusive. ``within``: the institutions the reader
    may see (an auditor's remit); only referrals that one of them sent or received count, and only
    their rows are shown."""
    month: dict[str, str] = {}
    if start:
        month["$gte"] = start
    if end:
        month["$lte"] = end
    found = [r for r in rows.find({"month": month} if month else None, sort=[("month", 1)]) if stands(r)]
    # and the referrals written before the range whose patient arrived in it: their deductible is its
    written = {r["_id"] for r in found}
    arrived = [r for r in rows.find({"admitted": month}, sort=[("month", 1)]) if stands(r)
               and r["_id"] not in written] if month else []
    if institution is not None:
        found = [r for r in found if institution in (r.get("from"), r.get("to"))]
        arrived = [r for r in arrived if r.get("to") == institution]
    if within is not None:
        found = [r for r in found if r.get("from") in within or r.get("to") in within]
        arrived = [r for r in arrived if r.get("to") in within]
    table = tally(found + arrived, institution, start=start, end=end)
    if within is not None:
        table = [row for row in table if row["institution"] in within]
    return {"from": start, "to": end, "institution": institution, "referrals": len(found), "rows": table}
