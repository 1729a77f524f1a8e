"""Per-day tallies of flags and checked orders, kept in step with every write.

Auditor reports must answer in well under two seconds for a county's month (≈2M results, tens of
thousands of flags) and stay that fast as years accumulate, so totals are not recomputed from the
flags: each flag or checked order counts in one bucket (day, institution, item, status/outcome),
and a change moves it from its old bucket to its new one in the same transaction. A report reads
at most days × institutions × items × statuses small documents. ``rebuild`` recomputes them all
from the flags and checks (after a bulk import or a restore).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from engine.insurance.tiers import ZERO, fen_text, stored_fen
from engine.repository.port import Collection, Document

FLAG_DAYS = "recognition_flag_days"
CHECK_DAYS = "recognition_check_days"

# (key, dimensions, money): the money a Decimal to the fen; a tally stores it as its text
# (``fen_text``) and reads an earlier release's float by its shortest text (``stored_fen``), so sums
# going up and down come back to exactly 0.00 (moneyleft27: they were floats, rounded at each step)
Bucket = tuple[str, dict[str, Any], Decimal]


def flag_bucket(row: Document | None) -> Bucket | None:
    if not row:
        return None
    dims = {"day": row["day"], "inst": row["inst"], "item": row["item"], "category": row.get("category"),
            "status": row["status"]}
    return "|".join(str(dims[k]) for k in ("day", "inst", "item", "status")), dims, stored_fen(row.get("price"))


def counted(check: Document | None) -> bool:
    """Does this checked order count in the recognition rate (recognised ÷ recognisable)?

    Every order that had a recognisable prior result when it was placed, whatever its reason;
    not a voided one (entered in error); a CDS card counts only when the draft was recognised (an
    overridden card is followed by a real order, which counts itself)."""
    if not check or not check.get("recognisable"):
        return False
    if check.get("outcome") == "void":
        return False
    return check.get("source") != "cds" or check.get("outcome") == "recognised"


def check_bucket(check: Document | None) -> Bucket | None:
    if not counted(check):
        return None
    assert check is not None
    dims = {"day": check["day"], "inst": check["inst"], "item": check.get("item"), "category": check.get("category"),
            "outcome": check.get("outcome") or "pending", "dept": check.get("dept"), "doctor": check.get("doctor")}
    return "|".join(str(dims[k]) for k in ("day", "inst", "item", "outcome", "dept", "doctor")), dims, ZERO


def _bump(coll: Collection, bucket: Bucket, sign: int) -> None:
    key, dims, money = bucket
    doc = coll.get(key) or {"_id": key, **dims, "count": 0, "money": fen_text(ZERO)}
    doc["count"] += sign
    doc["money"] = fen_text(stored_fen(doc["money"]) + sign * money)
    if doc["count"] <= 0:
        coll.delete(key)
    else:
        coll.replace(doc)


def move(coll: Collection, old: Bucket | None, new: Bucket | None) -> None:
    """Count a document in ``new`` instead of ``old`` (either may be None)."""
    if old == new:
        return
    if old is not None:
        _bump(coll, old, -1)
    if new is not None:
        _bump(coll, new, +1)


def move_many(coll: Collection, moves: Iterable[tuple[Bucket | None, Bucket | None]]) -> None:
    """``move`` for several documents at once, netted per bucket: each bucket touched is read
    (all in one query) and written once.

    Why: the rows an ingest batch changes (~50 messages' orders, their flags) mostly count in
    the same few buckets (one day, one institution, a few items); moved one by one each was a
    read and a write of the same tally."""
    net: dict[str, list[Any]] = {}  # key -> [dims, count, money]
    for old, new in moves:
        if old == new:
            continue
        for bucket, sign in ((old, -1), (new, 1)):
            if bucket is None:
                continue
            key, dims, money = bucket
            entry = net.setdefault(key, [dims, 0, ZERO])
            if sign > 0:
                entry[0] = dims
            entry[1] += sign
            entry[2] += sign * money
    changed = {key: entry for key, entry in net.items() if entry[1] or entry[2]}
    if not changed:
        return
    if len(changed) == 1:
        key = next(iter(changed))
        found = {key: doc} if (doc := coll.get(key)) is not None else {}
    else:
        found = {d["_id"]: d for d in coll.find({"_id": {"$in": sorted(changed)}})}
    for key, (dims, count, money) in changed.items():
        doc = found.get(key) or {"_id": key, **dims, "count": 0, "money": fen_text(ZERO)}
        doc = {**doc, "count": doc["count"] + count, "money": fen_text(stored_fen(doc["money"]) + money)}
        if doc["count"] <= 0:
            if key in found:
                coll.delete(key)
        else:
            coll.replace(doc)


def ensure_indexes(flag_days: Collection, check_days: Collection) -> None:
    for coll in (flag_days, check_days):
        coll.ensure_index(["day"])
        coll.ensure_index(["inst", "day"])
    # a ward's latest PL-9 name where its Location is not found (``reports.latest_ward_name``; deptfix34, wardfix35)
    check_days.ensure_index(["inst", "dept", "day"])


def rebuild(flag_days: Collection, check_days: Collection, flags: Iterable[Document], checks: Iterable[Document]) -> None:
    """Recompute every tally from the flags and checks themselves."""
    for coll, docs, bucket in ((flag_days, flags, flag_bucket), (check_days, checks, check_bucket)):
        for old in coll.find({}):
            coll.delete(old["_id"])
        tallies: dict[str, Document] = {}
        for d in docs:
            b = bucket(d)
            if b is None:
                continue
            key, dims, money = b
            t = tallies.setdefault(key, {"_id": key, **dims, "count": 0, "money": fen_text(ZERO)})
            t["count"] += 1
            t["money"] = fen_text(stored_fen(t["money"]) + money)
        if tallies:
            coll.insert_many(list(tallies.values()))
