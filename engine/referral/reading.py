"""Remote reading (远程影像/心电/病理中心): turnaround and workload per centre and month.

A township's study or tracing with a reading request is a ``ServiceRequest`` plus a ``Task`` whose
code is the remote-reading code of ``remote_reading.yaml``, owner the centre (an Organization),
requester the township, input the ``ImagingStudy``. The centre's report is a ``DiagnosticReport``
basedOn that request (performer the centre, resultsInterpreter the reading doctor); its ``issued``
instant ends the turnaround. A write hook keeps one row per request in ``remote_reads`` (centre,
requester, kind, requested, due, reported, report, reader), so the report below reads rows, not
resources; the first final report also completes the reading Task if it is still open.
"""

from __future__ import annotations

import statistics
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.referral.rules import SHIPPED
from engine.repository.port import Collection, Document, Store
from mappings.sitefiles import load_checked

REMOTE_READS = "remote_reads"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
# Task states in which the read is still to be done
OPEN = frozenset({"requested", "received", "accepted", "ready", "in-progress", "on-hold"})
# report statuses that end a read
REPORTED = frozenset({"final", "amended", "corrected", "appended"})
_FIELD = r"^[A-Z][A-Z0-9]{2}-[1-9][0-9]*(\.[1-9][0-9]*)?$"  # SEG-F or SEG-F.C
_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["task_code", "turnaround"], "additionalProperties": False,
    "properties": {
        "task_code": {"type": "object", "required": ["system", "code"],
                      "properties": {"system": {"type": "string"}, "code": {"type": "string"},
                                     "display": {"type": "string"}}},
        "turnaround": {"type": "object", "required": ["default"],
                       "additionalProperties": {"type": "number", "exclusiveMinimum": 0}},
        "centres": {"type": "object", "additionalProperties": {
            "type": "object", "minProperties": 1, "additionalProperties": {"type": "string", "minLength": 1}}},
        "hl7": {"type": "object", "additionalProperties": False, "properties": {
            "request_applications": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "ordering_facility": {"type": "array", "items": {"type": "string", "pattern": _FIELD}}}},
    },
}


@dataclass(frozen=True)
class ReadingRules:
    task_code: tuple[str, str]
    turnaround: dict[str, float]  # kind → target hours
    centres: dict[str, dict[str, str]] = field(default_factory=dict)  # community → kind → institution
    request_applications: frozenset[str] = frozenset()  # MSH-5 values of a reading request
    ordering_facility: tuple[tuple[str, int, int], ...] = ()  # (segment, field, component), 0 = whole

    def target(self, kind: str) -> float:
        return self.turnaround.get(kind, self.turnaround["default"])

    def centre(self, community: str, kind: str) -> str | None:
        """The institution reading ``kind`` for the members of ``community`` (None: no centre)."""
        table = self.centres.get(community) or {}
        return table.get(kind) or table.get("default")

    def is_centre(self, community: str, code: str) -> bool:
        return code in (self.centres.get(community) or {}).values()


def _field(text: str) -> tuple[str, int, int]:
    seg, _, rest = text.partition("-")
    fno, _, comp = rest.partition(".")
    return seg, int(fno), int(comp or 0)


def reading_rules(data: dict[str, Any]) -> ReadingRules:
    """The rules of a checked ``remote_reading.yaml`` (the HL7 converter reads the same file)."""
    hl7 = data.get("hl7") or {}
    return ReadingRules((data["task_code"]["system"], data["task_code"]["code"]),
                        {str(k): float(v) for k, v in data["turnaround"].items()},
                        {str(c): {str(k): str(v) for k, v in t.items()} for c, t in (data.get("centres") or {}).items()},
                        frozenset(hl7.get("request_applications") or ()),
                        tuple(_field(f) for f in hl7.get("ordering_facility") or ()))


def load_reading(site: Path | None = None) -> ReadingRules:
    path = site / "referral" / "remote_reading.yaml" if site is not None else None
    data, _ = load_checked(path if path is not None and path.is_file() else SHIPPED / "remote_reading.yaml", _SCHEMA)
    return reading_rules(data)


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class RemoteReading:
    """Kept by ``Referrals``' write hook; ``institution(reference)`` resolves Organization codes."""

    def __init__(self, store: Store, read: Callable[[str | None], dict[str, Any] | None],
                 institution: Callable[[Any], str | None], rules: ReadingRules,
                 write: Callable[[dict[str, Any]], object] | None = None) -> None:
        self.rows = store.collection(REMOTE_READS)
        for fields in (["order"], ["centre", "month"], ["month"]):
            self.rows.ensure_index(fields)
        self._read = read
        self._write = write
        self._institution = institution
        self.rules = rules
        self._local = threading.local()  # per thread: order -> its rows, for one ingest batch (``batch``)

    @contextmanager
    def batch(self, orders: Iterable[str]) -> Iterator[None]:
        """The rows of these orders read in one query and kept until the batch ends, rows written
        meanwhile kept in step: every final report of an ingest batch asks for its order's rows
        (a query per lab message, which almost always finds none)."""
        if getattr(self._local, "by_order", None) is not None:
            yield
            return
        wanted = sorted(set(orders))
        by_order: dict[str, list[Document]] = {order: [] for order in wanted}
        if wanted:
            for row in self.rows.find({"order": {"$in": wanted}}):
                by_order[row["order"]].append(row)
        self._local.by_order = by_order
        try:
            yield
        finally:
            self._local.by_order = None

    def _of_order(self, order_ref: str) -> list[Document]:
        by_order: dict[str, list[Document]] | None = getattr(self._local, "by_order", None)
        if by_order is None:
            return self.rows.find({"order": order_ref})
        if order_ref not in by_order:
            by_order[order_ref] = self.rows.find({"order": order_ref})
        return list(by_order[order_ref])

    def _put(self, row: Document) -> None:
        """Store a row, and keep the batch's rows in step (a row keeps its place among its order's)."""
        self.rows.replace(row)
        by_order: dict[str, list[Document]] | None = getattr(self._local, "by_order", None)
        if by_order is None:
            return
        for order, rows in by_order.items():
            kept = [r for r in rows if r["_id"] != row["_id"]]
            if order == row.get("order"):
                at = next((n for n, r in enumerate(rows) if r["_id"] == row["_id"]), len(kept))
                kept.insert(at, row)
            by_order[order] = kept

    def is_request(self, task: dict[str, Any]) -> bool:
        return any((c.get("system"), c.get("code")) == self.rules.task_code
                   for c in (task.get("code") or {}).get("coding") or ())

    def kind(self, task: dict[str, Any], order: dict[str, Any] | None) -> str:
        for item in task.get("input") or ():
            ref = (item.get("valueReference") or {}).get("reference") or ""
            if ref.startswith("ImagingStudy/"):
                study = self._read(ref) or {}
                for modality in study.get("modality") or ():
                    if modality.get("code"):
                        return str(modality["code"])
        for coding in ((order or {}).get("code") or {}).get("coding") or ():
            if coding.get("system") == DCM and coding.get("code"):
                return str(coding["code"])  # an HL7 imaging order's modality
        for concept in (order or {}).get("category") or ():
            for coding in concept.get("coding") or ():
                if coding.get("code"):
                    return str(coding["code"])
        return "default"

    def on_task(self, task: dict[str, Any], order_ref: str | None) -> None:
        requested = _instant(task.get("authoredOn")) or _instant(task["meta"]["lastUpdated"])
        assert requested is not None
        order = self._read(order_ref)
        kind = self.kind(task, order)
        hours = self.rules.target(kind)
        ref = f"Task/{task['id']}"
        existing = self.rows.get(ref) or {}
        row: Document = {
            "_id": ref, "order": order_ref, "centre": self._institution(task.get("owner")),
            "requester": self._institution(task.get("requester")), "patient": (task.get("for") or {}).get("reference"),
            "kind": kind, "target_hours": hours, "requested": _utc(requested),
            "due": _utc(requested + timedelta(hours=hours)), "month": requested.astimezone(UTC).isoformat()[:7],
            "status": task.get("status"),
            "reported": existing.get("reported"), "report": existing.get("report"), "reader": existing.get("reader"),
        }
        if row != existing:
            self._put(row)

    def on_report(self, report: dict[str, Any]) -> None:
        if report.get("status") not in REPORTED:
            return
        issued = _instant(report.get("issued")) or _instant(report["meta"]["lastUpdated"])
        assert issued is not None
        for based in report.get("basedOn") or ():
            ref = (based or {}).get("reference")
            if not isinstance(ref, str) or not ref.startswith("ServiceRequest/"):
                continue
            for row in self._of_order(ref):
                if row.get("reported") and row.get("report") != f"DiagnosticReport/{report['id']}":
                    continue  # the first report ends the turnaround; an addendum does not restart it
                reader = next(((r or {}).get("reference") or (r or {}).get("display")
                               for r in report.get("resultsInterpreter") or ()), None)
                first = row.get("reported") or _utc(issued)
                self._put({**row, "reported": first, "report": f"DiagnosticReport/{report['id']}",
                           "reader": reader})
                self._complete(row["_id"], f"DiagnosticReport/{report['id']}")

    def _complete(self, task_ref: str, report_ref: str) -> None:
        """The centre's report completes the reading Task still open (output: the report), however
        the report came (FHIR or an HL7 ORU), so the centre's worklist shows the read done."""
        task = self._read(task_ref)
        if self._write is None or task is None or task.get("status") not in OPEN:
            return
        outputs = list(task.get("output") or ())
        done = {"type": {"text": "report"}, "valueReference": {"reference": report_ref}}
        if done not in outputs:
            outputs.append(done)
        self._write({**{k: v for k, v in task.items() if k != "meta"}, "status": "completed", "output": outputs})


def _hours(row: Document) -> float | None:
    start, end = _instant(row.get("requested")), _instant(row.get("reported"))
    return None if start is None or end is None else round((end - start).total_seconds() / 3600, 2)


def reading_report(rows: Collection, *, start: str | None = None, end: str | None = None,
                   centre: str | None = None, now: datetime | None = None,
                   within: frozenset[str] | None = None) -> dict[str, Any]:
    """Per centre and month: requested, reported, pending, overdue, turnaround hours (median, mean,
    max); and the overdue reads themselves (not reported by their due time, or reported late).
    ``within``: the institutions the reader may see (an auditor's remit): only reads that one of
    them requested or read count."""
    now = now or datetime.now(UTC)
    month: dict[str, str] = {}
    if start:
        month["$gte"] = start
    if end:
        month["$lte"] = end
    found = [r for r in rows.find({"month": month} if month else None, sort=[("requested", 1)])
             if (centre is None or r.get("centre") == centre)
             and (within is None or r.get("centre") in within or r.get("requester") in within)]
    cells: dict[tuple[str, str], list[Document]] = defaultdict(list)
    overdue = []
    for row in found:
        cells[(row.get("centre") or "?", row["month"])].append(row)
        due = _instant(row["due"])
        reported = _instant(row.get("reported"))
        if due is not None and ((reported is None and now > due) or (reported is not None and reported > due)):
            late = ((reported or now) - due).total_seconds() / 3600
            overdue.append({"task": row["_id"], "order": row.get("order"), "centre": row.get("centre"),
                            "requester": row.get("requester"), "kind": row["kind"], "requested": row["requested"],
                            "due": row["due"], "reported": row.get("reported"), "hours_late": round(late, 2)})
    table = []
    for (ctr, mon), group in sorted(cells.items()):
        hours = [h for h in (_hours(r) for r in group) if h is not None]
        table.append({
            "centre": ctr, "month": mon, "requested": len(group), "reported": len(hours),
            "pending": len(group) - len(hours),
            "overdue": sum(1 for o in overdue if o["centre"] == ctr and o["task"] in {r["_id"] for r in group}),
            "turnaround_hours": {"median": statistics.median(hours) if hours else None,
                                 "mean": round(statistics.fmean(hours), 2) if hours else None,
                                 "max": max(hours) if hours else None},
            "by_kind": {k: sum(1 for r in group if r["kind"] == k) for k in sorted({r["kind"] for r in group})},
        })
    return {"from": start, "to": end, "centre": centre, "at": _utc(now), "rows": table, "overdue": overdue}
