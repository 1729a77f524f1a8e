"""What a new version is: ``meta.versionId`` / ``meta.lastUpdated`` set on the resource, an instant
that orders every write, an ``If-Match`` ETag read, and the "unchanged?" test that spares a
re-sent resource a new version."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from engine import fhirjson
from engine.bounds import parse_int
from engine.errors import BadRequest
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
    type, id and meta first (a shallow copy: the values are the resource's own)."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = version
    meta["lastUpdated"] = updated
    stored = {"resourceType": resource["resourceType"], "id": resource["id"], "meta": meta, **resource}
    stored["meta"] = meta
    return stored


# A resource serialised ahead of its write (``serialise``): (the very dict serialised, the bytes
# of its type and id ``{"resourceType":"T","id":"I"``, the bytes of every other member in its
# order ``"status":"final",...``). The dict's identity is how a write finds it again.
Serialised = tuple[dict[str, Any], bytes, bytes]


def serialise(resource: dict[str, Any]) -> Serialised | None:
    """``resource``'s JSON taken apart for ``spliced``: None when its shape does not allow it.

    Why: serialising a resource costs ~1 us while the converter's dicts are still in the CPU
    caches and ~4 us at the write, a batch later, when every object it is made of is fetched from
    memory again. Serialised right after conversion, the write only splices ``meta`` in.

    The shape a converter gives: ``resourceType`` first, ``id`` last (set when the resource is
    filed under its deterministic id), no ``meta`` (the server's). The members between them are
    JSON of their own, whatever their place: orjson writes each member the same wherever it is."""
    if "meta" in resource or len(resource) < 3 or next(reversed(resource)) != "id" \
            or next(iter(resource)) != "resourceType":
        return None
    rtype, rid = resource["resourceType"], resource["id"]
    if type(rtype) is not str or type(rid) is not str:
        return None
    full = fhirjson.dumps(resource)
    head = b'{"resourceType":' + fhirjson.dumps(rtype) + b","
    tail = b',"id":' + fhirjson.dumps(rid) + b"}"
    if not (full.startswith(head) and full.endswith(tail)):
        return None
    return resource, head + tail[1:-1], full[len(head):-len(tail)]


def spliced(ahead: Serialised, resource: dict[str, Any], meta: dict[str, Any]) -> bytes | None:
    """The bytes of ``versioned(resource, ...)`` (whose ``meta`` is ``meta``) from what
    ``serialise`` made of the dict ``resource`` came from, without serialising it again; None when
    ``resource`` is not that dict with at most ``meta`` changed (a mark's or the merge rules' new
    dict holding the very same values but ``meta`` is; anything else is serialised as always).

    ``versioned`` puts type, id and meta first and the other members in their order: the same
    members, in the same order, that ``serialise`` kept."""
    source, head, members = ahead
    if resource is not source:
        if len(resource) - ("meta" in resource) != len(source):
            return None
        get = resource.get
        for k, v in source.items():
            if get(k) is not v:
                return None
    return b"".join((head, b',"meta":', fhirjson.dumps(meta), b",", members, b"}"))


def as_stored(existing: StoredResource, resource: dict[str, Any],
              ahead: Serialised | None = None) -> dict[str, Any] | None:
    """``resource`` under ``existing``'s own version and instant when that is byte for byte its
    body (a sender repeating itself: the same converter gives the same key order), else None.
    ``ahead``: what ``serialise`` made of the dict ``resource`` came from (its bytes then spliced).

    What it returns is the stored version (the same bytes are the same document, every decimal's
    text included), so the caller need not parse the stored body to answer with it."""
    if existing.body is None:
        return None
    if ahead is not None:
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(existing.version)
        meta["lastUpdated"] = existing.updated
        body = spliced(ahead, resource, meta)
        if body is not None:
            return versioned(resource, str(existing.version), existing.updated) if body == existing.body else None
    stored = versioned(resource, str(existing.version), existing.updated)
    return stored if fhirjson.dumps(stored) == existing.body else None


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
