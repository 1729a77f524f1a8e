"""What a new version is: ``meta.versionId`` / ``meta.lastUpdated`` set on the resource, an instant
that orders every write, an ``If-Match`` ETag read, and the "unchanged?" test that spares a
re-sent resource a new version."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from typing import Any

from engine import fhirjson
from engine.bounds import parse_int
from engine.errors import BadRequest
from engine.repository.contracts import WriteResult
from engine.repository.port import StoredResource

_ETAG = re.compile(r'^(?:W/)?"?(\d+)"?$')


def parse_etag(value: str) -> int:
    m = _ETAG.match(value.strip())
    if not m:
        raise BadRequest(f"If-Match must be an ETag like W/\"3\", got '{value}'", expression=["If-Match"])
    return parse_int(m.group(1), "If-Match")


def content_of(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without server-managed meta, for 'did anything change' comparisons."""
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return resource
    out = dict(resource)
    rest = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
    if rest:
        out["meta"] = rest
    else:
        out.pop("meta")
    return out


def versioned(resource: dict[str, Any], version: str, updated: str) -> dict[str, Any]:
    """The version to store: ``resource`` with ``meta.versionId`` / ``meta.lastUpdated`` set, its
    type, id and meta first (a shallow copy: the values are the resource's own).

    A resource without ``meta`` (what the converter makes: ~20 versions a lab message) gets the
    two-key ``meta`` made at once, and keeps it in the copy; one with ``meta`` gets a copy of its
    own with the two set, which replaces the one the copy took from it (same keys, same order)."""
    given = resource.get("meta")
    if not given:
        meta = {"versionId": version, "lastUpdated": updated}
        stored = {"resourceType": resource["resourceType"], "id": resource["id"], "meta": meta, **resource}
        if "meta" in resource:  # (an empty or null ``meta``, which the copy took)
            stored["meta"] = meta
        return stored
    meta = dict(given)
    meta["versionId"] = version
    meta["lastUpdated"] = updated
    stored = {"resourceType": resource["resourceType"], "id": resource["id"], "meta": meta, **resource}
    stored["meta"] = meta
    return stored


def as_stored(existing: StoredResource, resource: dict[str, Any]) -> dict[str, Any] | None:
    """``resource`` under ``existing``'s own version and instant when that is byte for byte its
    body (a sender repeating itself: the same converter gives the same key order), else None.

    What it returns is the stored version (the same bytes are the same document, every decimal's
    text included), so the caller need not parse the stored body to answer with it."""
    if existing.body is None:
        return None
    stored = versioned(resource, str(existing.version), existing.updated)
    return stored if fhirjson.dumps(stored) == existing.body else None


class FoundStored(WriteResult):
    """What a write answers for a version it found stored and left alone (a create-only resource
    already there: a returning resident's thin Patient in a lab message): the stored resource is
    parsed from the stored bytes only when ``resource`` is read, and ``version`` is told from the
    stored row without parsing.

    Why: ingest reads only the version and the bytes of such a result (its Provenance names the
    version and signs the bytes), and parsing a whole stored Patient for them was the only work
    the write did for it."""

    __slots__ = ("_rec", "_parsed")

    def __init__(self, rec: StoredResource) -> None:  # (not the dataclass's: ``resource`` is lazy)
        self._rec = rec
        self._parsed: dict[str, Any] | None = None
        self.created = False
        self.issues = []
        self.changed = False
        self.body = rec.body

    @property  # type: ignore[override]
    def resource(self) -> dict[str, Any]:
        parsed = self._parsed
        if parsed is None:
            parsed = self._parsed = fhirjson.loads(self._rec.body)  # type: ignore[arg-type]
        return parsed  # type: ignore[return-value]

    @resource.setter
    def resource(self, value: dict[str, Any]) -> None:
        self._parsed = value

    @property
    def version(self) -> str:
        """``meta.versionId`` of the stored body, which is the row's version (``versioned``)."""
        return str(self._rec.version)


def unchanged(existing: StoredResource, previous: dict[str, Any], resource: dict[str, Any]) -> bool:
    """Whether ``resource`` states nothing the stored version ``existing`` (parsed: ``previous``)
    does not, server-managed meta aside.

    First on bytes: the resource serialised as it would be stored under the stored version's
    own ``versionId`` / ``lastUpdated`` is byte for byte the stored body when a sender repeats
    itself (the same converter gives the same key order), which one serialisation tells without
    a deep comparison. Bytes that differ may still be the same document in another key order:
    then the deep comparison decides (``fhirjson.same``, which tells ``1.5`` from ``1.50``).
    """
    meta = previous.get("meta") or {}
    version, updated = meta.get("versionId"), meta.get("lastUpdated")
    if (isinstance(version, str) and isinstance(updated, str) and existing.body is not None
            and fhirjson.dumps(versioned(resource, version, updated)) == existing.body):
        return True
    return fhirjson.same(content_of(previous), content_of(resource))


def body_of(rec: StoredResource | None) -> dict[str, Any] | None:
    """The stored resource as JSON, or None when absent or deleted."""
    if rec is None or rec.deleted:
        return None
    return fhirjson.loads(rec.body)  # type: ignore[arg-type]


class VersionClock:
    """Hands out ``meta.lastUpdated`` instants, strictly increasing across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0  # the last instant handed out, in epoch milliseconds
        self._prefix_sec, self._prefix = -1, ""

    def now(self) -> str:
        """A strictly increasing instant (ms precision), so ``_lastUpdated`` orders writes (the
        versions a write group puts together share one).

        Integer milliseconds and a per-second cached prefix: this runs once per stored version,
        and building it through ``datetime`` cost ~15 us of each ingest write.
        """
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms = self._last_ms + 1
            self._last_ms = ms
            sec, milli = divmod(ms, 1000)
            if sec != self._prefix_sec:
                self._prefix_sec = sec
                self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec))
            return f"{self._prefix}{milli:03d}Z"


def left_versions(refs: Iterable[str]) -> dict[str, int | None]:
    """``Type/id`` -> the version a failed block left stored, from references ``Type/id/_history/n``
    (the highest one when a resource is named more than once); a bare ``Type/id`` (no version
    known) maps to None. For a rewrite (``write_many(rewrite=...)``) and the ingest's note of what
    a failed undo left (``Ingestor._left_stored``).

    Why the version: what was left may have been written over since (a later message, another
    feed, a replay of another message sharing it); only while it is still the current version is
    it the one whose hooks never ran."""
    out: dict[str, int | None] = {}
    for ref in refs:
        head, sep, tail = ref.partition("/_history/")
        version = int(tail) if sep and tail.isdigit() else None
        if not sep or version is not None:
            had = out.get(head)
            out[head] = version if had is None or (version is not None and version > had) else had
    return out
