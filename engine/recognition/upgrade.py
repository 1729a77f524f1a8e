"""What an index entry written by an earlier release lacks, filled in once when a store is opened.

``final_at`` (twelfth round): when huren has held a result *final*, written on an entry whose
result became final after it was first stored (first sent preliminary, or withdrawn and sent
again). R98 ("outside record not accessible") is contradicted only by a prior huren held final
before the order was placed, and the rate's re-checks ask the same. An entry stored before that
release has only ``held``, when it was first stored: a prior held as a preliminary when an order
was placed, and final only after, then contradicted a true R98 claim on an upgraded store -- for
every order placed before the upgrade whose result, or any later correction, is decided after it.

The instant is read from the resource's own history: the oldest version of its latest run of
final versions (its ``meta.lastUpdated``, written in the same transaction as the hook that would
have written ``final_at``). A run reaching the first version leaves the entry as it is. The pass
runs once per store (a marker in ``recognition_layout``); run again it finds nothing to write
(an entry with ``final_at`` is skipped, and one is written only when later than ``held``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from engine.recognition.decision import FINAL_STATUSES
from engine.recognition.index import RESULTS
from engine.repository.port import Collection, StoredResource

LAYOUT = "recognition_layout"
FINAL_AT = "final-at-backfilled"
_PAGE = 2000


class _Versions(Protocol):
    """What the pass reads of the FHIR backend (``engine.repository.port.FhirBackend``)."""

    def current_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredResource]: ...

    def history(self, rtype: str, rid: str) -> list[StoredResource]: ...


class _Store(Protocol):
    fhir: Any

    def collection(self, name: str) -> Collection: ...

    def transaction(self) -> Any: ...


def backfill_final_at(store: _Store) -> int | None:
    """Give ``final_at`` to the final entries an earlier release stored without it; once per store.
    Returns how many were written, None when the store had been through it."""
    marks = store.collection(LAYOUT)
    if marks.get(FINAL_AT) is not None:
        return None
    entries = store.collection(RESULTS)
    backend: _Versions = store.fhir
    written, last = 0, ""
    while True:  # by _id, a page at a time: a province's index does not fit in memory
        page = entries.find({"_id": {"$gt": last}}, sort=[("_id", 1)], limit=_PAGE)
        if not page:
            break
        last = page[-1]["_id"]
        todo = [d for d in page if d.get("status") in FINAL_STATUSES and not d.get("final_at")]
        keys = {d["_id"]: _key(d["_id"]) for d in todo}
        current = backend.current_many([k for k in keys.values() if k is not None])
        found: list[tuple[str, str]] = []
        for d in todo:
            key = keys[d["_id"]]
            rec = current.get(key) if key is not None else None
            if rec is None or rec.deleted or rec.version <= 1:
                continue  # one version: final since it was first stored
            since = final_since(backend.history(*key))
            if since is not None and _later(since, d.get("held")):
                found.append((d["_id"], since))
        if found:  # a commit only for a page with something to write
            with store.transaction():
                for ref, since in found:
                    entries.update(ref, {"final_at": since})
            written += len(found)
    with store.transaction():
        marks.replace({"_id": FINAL_AT, "at": _micro(datetime.now(UTC).isoformat()), "written": written})
    return written


def final_since(history: Sequence[StoredResource]) -> str | None:
    """The instant (``held``'s form) the latest run of final versions began, from the versions
    newest first; None when the newest is not final or every version is."""
    since: StoredResource | None = None
    for rec in history:
        status = orjson.loads(rec.body).get("status") if rec.body is not None and not rec.deleted else None
        if status not in FINAL_STATUSES:
            return _micro(since.updated) if since is not None else None
        since = rec
    return None


def _later(since: str, held: Any) -> bool:
    """Is ``since`` after ``held``, compared as instants (releases before R98 wrote ``held`` to
    the second, which as text sorts after every microsecond of that second)? An entry without a
    readable ``held`` takes ``since``."""
    try:
        return since > _micro(str(held))
    except ValueError:
        return True


def _key(ref: str) -> tuple[str, str] | None:
    rtype, _, rid = ref.partition("/")
    return (rtype, rid) if rid else None


def _micro(instant: str) -> str:
    """An instant as ``held`` writes it (UTC, microseconds, ``Z``), so the two compare as text."""
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(UTC) \
        .isoformat(timespec="microseconds").replace("+00:00", "Z")
