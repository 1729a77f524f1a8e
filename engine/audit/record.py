"""The compact signed record of an HTTP interaction: its facts, signed; its AuditEvent derived.

Every audited request appends one record before its response leaves, so whatever the record costs,
every read pays. The complete FHIR AuditEvent of a read (its codings with display texts, the
server's agent and source, one entity per patient and resource) is ~1.7 KB of JSON built from a
handful of facts: which action, when, the outcome, who asked (a cached agent), the patients and
resources touched, whose each resource is, the query, a few details. Building that dict, writing
it and storing ~1.7 KB per read cost an audited read more than the read itself. So the log keeps
the facts (format 2, ~250 bytes for a read) and the AuditEvent is derived from them when someone
reads the log (the FHIR views, an auditor's export, the tests) by the very function that used to
build it at request time (``engine.audit.events.build_event``), so the event read back is the
event that would have been stored.

The record is JSON with fixed ASCII names, strings, ``null`` and one integer; lists of pairs stand
for mappings (details, owners), so no key a request chose is ever sorted. For such JSON, orjson with
sorted keys writes exactly RFC 8785 (``engine.audit.canonical`` explains why; a lone surrogate,
which neither accepts, fails the one record). Keys of the record:

``f`` 2 (the format; a format-1 record is the AuditEvent itself and has no ``f``), ``id``
``audit-<seq>``, ``act`` action (``actions.yaml``), ``at`` recorded, ``from`` the request's start
(absent when equal), ``out`` outcome (0/4/8/12), ``desc`` outcome text, ``by`` the requestor
(kind, subject, address, client id, staff role, display, family RelatedPerson, consent; ``null``
where absent), ``node`` the server (origin), and when not empty ``pat`` patients touched, ``res``
resource references, ``own`` ``[reference, [patients]]`` pairs, ``q`` the query, ``x``
``[name, value]`` details, ``self`` the patients the requestor is, ``for`` those a family member
acts for, ``salt`` 128 random bits (hex; since the nineteenth round).

Why the salt: a resident may have the inclusion proof of a record that names them, and its path's
first node is the neighbouring record's leaf hash. Without a salt that record's bytes are predictable
(its number, the millisecond, who, which patient), so the hash confirms a guess such as "this doctor
read that neighbour's file at 10:02" (and the path's higher nodes, guesses over two records, four...).
With 128 bits no one who has not read the record itself can reproduce its leaf. The salt is in the
record's own bytes, so the leaf is still SHA-256(0x00 || stored bytes): a log holding records with
and without it verifies alike, by this release and earlier ones (they ignore a key they do not know);
records appended before stay as guessable as they were (signed bytes cannot be changed). The
AuditEvent derived from a record (``expand``: the FHIR views, who-looked) never carries it; an
auditor's export does, as the record's bytes must.

Older records (format 1, complete AuditEvents, which earlier releases wrote for imports and
replays; every record is written as facts since the nineteenth round) keep verifying: the
Merkle leaf is the stored bytes either way, and ``event_of`` reads both.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson

from engine.audit.events import MAX_RESOURCE_ENTITIES, OUTCOMES, build_event, requestor_agent

FORMAT = 2
NODE_SYSTEM = "urn:huren:node"

Requestor = tuple[str | None, str | None, str | None, str | None, str | None, str | None, str | None, str | None]

SALT_BYTES = 16
_SALTS_AT_ONCE = 256
_salts: list[str] = []  # salts drawn from os.urandom a block at a time (one system call per 256 records)


def new_salt() -> str:
    """A record's salt: 128 bits from the operating system's CSPRNG, as hex. Drawn in blocks: a
    ``getrandom`` call per record cost ~1.4 µs under load, a block ~0.6-1.1 µs a record (the review's
    measure; at load 14, 1.9-2.6 against 3.5-4.5 µs a call per record: about half). ``pop`` and
    ``extend`` are atomic under the GIL, so threads never share one, and a forked worker drops the
    parent's unused ones (``register_at_fork``) rather than repeat them. An empty list is refilled
    before the ``pop``, not after its ``IndexError``: a raised and dropped exception once every 256
    audited requests (perf35); the ``except`` stays for another thread taking the last salt between."""
    if _salts:
        try:
            return _salts.pop()
        except IndexError:
            pass
    # the block's hex cut into salts in C (``hex``'s separator every SALT_BYTES, then ``split``): the same
    # strings in the same order as slicing it in a comprehension, which cost ~370 k instructions a block,
    # ~1.4 k of every record's (forty-fourth round, aud44)
    _salts.extend(os.urandom(SALT_BYTES * _SALTS_AT_ONCE).hex(" ", SALT_BYTES).split())
    return _salts.pop()


os.register_at_fork(after_in_child=_salts.clear)


@dataclass(slots=True)
class Facts:
    """What an HTTP interaction's audit record states (see the module docstring for the names)."""

    action: str
    recorded: str
    start: str
    outcome: str
    desc: str | None
    requestor: Requestor
    origin: str
    patients: list[str]
    resources: list[str]
    owners: list[tuple[str, list[str]]]
    query: str | None
    detail: list[tuple[str, str]]
    own: list[str]
    acting_for: list[str]
    salt: str = field(default_factory=lambda: new_salt())  # (looked up at each call: tests fix it)

    def data(self, seq: int) -> bytes:
        """The record's signed bytes as record ``seq`` (RFC 8785: see the module docstring)."""
        doc: dict[str, Any] = {"f": FORMAT, "id": f"audit-{seq}", "act": self.action, "at": self.recorded,
                               "out": self.outcome, "by": self.requestor, "node": self.origin, "salt": self.salt}
        if self.start != self.recorded:
            doc["from"] = self.start
        if self.desc is not None:
            doc["desc"] = self.desc
        if self.patients:
            doc["pat"] = self.patients
        if self.resources:
            doc["res"] = self.resources
        if self.owners:
            doc["own"] = self.owners
        if self.query is not None:
            doc["q"] = self.query
        if self.detail:
            doc["x"] = self.detail
        if self.own:
            doc["self"] = self.own
        if self.acting_for:
            doc["for"] = self.acting_for
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


# A sealed record's bytes as record ``seq``: ``SEALED_FORMAT % (head, seq, tail)``. The one place the
# format is written: ``Sealed.data`` and the log's append (``engine.audit.appends._prepare``, every
# append's since the forty-first round) apply it in place -- a call more would cost each audited read
# ~0.1 us, and two copies could drift apart with the log written first and ``huren audit verify``
# finding it only afterwards (rv40j LOW 2, pfix40).
SEALED_FORMAT = b'%s,"id":"audit-%d"%s'


class Sealed(tuple):  # type: ignore[type-arg]
    """A compact record whose bytes were written at the request, all but its sequence number:
    ``(head, tail, keys, recorded)``.

    What nearly every audited request is (one note, one resource: ``engine.audit.middleware``)
    is serialised once, straight from the request's facts: the bytes ``Facts.data`` would write,
    split where ``"id"`` goes (in RFC 8785's key order between ``from`` and ``node``), so the
    append under the log's lock only joins the number in, and the record's search keys come
    along, made once per requestor. Why not a ``Facts``: its fields, then a dict of them at the
    append, made every read build the same record twice (~1-2 µs a read in the server). Why a
    tuple: one is made per audited request, and ``tuple.__new__(Sealed, (...))`` (no Python
    frame: ``engine.audit.middleware``) builds it for about a fifth of a slotted class's ``__init__`` (thirty-third round)."""

    __slots__ = ()

    head: bytes = property(itemgetter(0))  # type: ignore[assignment]
    tail: bytes = property(itemgetter(1))  # type: ignore[assignment]
    keys: Sequence[str] = property(itemgetter(2))  # type: ignore[assignment]
    recorded: str = property(itemgetter(3))  # type: ignore[assignment]

    def __new__(cls, head: bytes, tail: bytes, keys: Sequence[str], recorded: str) -> Sealed:
        return _tuple_new(cls, (head, tail, keys, recorded))

    def __getnewargs__(self) -> tuple[bytes, bytes, Sequence[str], str]:
        """What copy and pickle pass to ``__new__``: the four fields (a tuple subclass is rebuilt as
        ``cls.__new__(cls, *args)``; without this, as ``cls.__new__(cls, tuple(self))``: rvperf33)."""
        return (self[0], self[1], self[2], self[3])

    def data(self, seq: int) -> bytes:
        """The record's signed bytes as record ``seq`` (``Facts.data``'s, byte for byte)."""
        return SEALED_FORMAT % (self[0], seq, self[1])


_tuple_new = tuple.__new__


_NODE = b',"node":'


def seal(doc: dict[str, Any], keys: Sequence[str], recorded: str) -> Sealed:
    """``Sealed`` from the record's document without its ``id`` (``f``, ``act``, ``at``, ``by``,
    ``node``, ...: ``Facts.data``'s names). ``,"node":`` can only be the key: inside a JSON string
    every quote is escaped, and ``node`` is the first key after ``id``. A ``salt`` is added when the
    document has none (the module docstring says why)."""
    if "salt" not in doc:
        doc["salt"] = new_salt()
    raw = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    cut = raw.index(_NODE)
    return Sealed(raw[:cut], raw[cut:], keys, recorded)


def facts(*, action: str, recorded: str, start: str | None, outcome: str, desc: str | None,
          requestor: Requestor, origin: str, patients: Iterable[str] = (), resources: Iterable[str] = (),
          owners: Mapping[str, Sequence[str]] | None = None, query: str | None = None,
          detail: Mapping[str, Any] | None = None, own: Iterable[str] = (),
          acting_for: Iterable[str] = ()) -> Facts:
    """``Facts`` with the normalisations ``build_event`` applies on the way (an unknown outcome is a
    serious failure, details are strings, ``None`` details are left out), so the record states what
    its AuditEvent will say. A search's resources beyond the ones its AuditEvent lists are counted,
    not kept (``resources-not-listed``, as ``build_event`` says it)."""
    distinct = dict.fromkeys(patients)  # (no generator: an import names a dozen patients and more)
    distinct.pop("", None)
    distinct.pop(None, None)  # type: ignore[call-overload]
    patients = list(distinct)
    listed, left_out = _listed(patients, resources)
    details = [(str(k), v if isinstance(v, str) else str(v)) for k, v in (detail or {}).items() if v is not None]
    if left_out:
        details = list({**dict(details), "resources-not-listed": str(left_out)}.items())
    whose: list[tuple[str, list[str]]] = []
    if owners:
        wanted = set(listed)
        whose = [(ref, list(pids)) for ref, pids in owners.items() if pids and ref in wanted]
    return Facts(action, recorded, start or recorded, outcome if outcome in OUTCOMES else "8", desc, requestor,
                 origin, patients, listed, whose, query, details, list(own), list(acting_for))


def _listed(patients: list[str], resources: Iterable[str]) -> tuple[list[str], int]:
    """The references an AuditEvent lists as resource entities (``build_event``: each once, not a
    patient already named, at most ``MAX_RESOURCE_ENTITIES``) and how many more there were."""
    listed = list(dict.fromkeys(resources))
    if patients:  # only a Patient reference can name one of them (split only those)
        patient_refs = {f"Patient/{p}" for p in patients if p}
        listed = [ref for ref in listed
                  if not ref.startswith("Patient/") or ref.split("/_history/")[0] not in patient_refs]
    return listed[:MAX_RESOURCE_ENTITIES], max(0, len(listed) - MAX_RESOURCE_ENTITIES)


def _agents(by: Sequence[str | None]) -> list[dict[str, Any]]:
    kind, subject, address, client_id, role, display, acting, consent = by
    return requestor_agent(kind=kind, subject=subject, address=address, client_id=client_id, role=role,
                           display=display, acting=acting, consent=consent)


@lru_cache(maxsize=4096)
def agent_keys(by: Requestor) -> tuple[str, ...]:
    """``a:<system>|<value>`` for each requesting agent's identifier (the server's own excluded),
    once per distinct requestor."""
    keys = []
    for agent in _agents(by):
        ident = (agent.get("who") or {}).get("identifier") or {}
        if ident.get("value") and ident.get("system") != NODE_SYSTEM:
            keys.append(f"a:{ident.get('system') or ''}|{ident['value']}")
    return tuple(keys)


def expand(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The AuditEvent (with ``resourceType`` and ``id``) a format-2 record states."""
    event = build_event(action=doc["act"], origin=doc["node"], agents=_agents(doc["by"]), outcome=doc["out"],
                        outcome_desc=doc.get("desc"), patient_ids=doc.get("pat", ()),
                        resources=doc.get("res", ()), query=doc.get("q"),
                        detail=dict(doc["x"]) if doc.get("x") else None, start=doc.get("from"),
                        recorded=doc["at"], owners=dict(doc.get("own") or ()),
                        requestor_patients=doc.get("self", ()), acting_for=doc.get("for", ()))
    return {**event, "resourceType": "AuditEvent", "id": doc["id"]}


def event_of(data: str | bytes) -> dict[str, Any]:
    """The AuditEvent a stored record's bytes state, whatever their format."""
    doc = orjson.loads(data)
    return expand(doc) if doc.get("f") == FORMAT and "resourceType" not in doc else doc


def recorded_of(data: str | bytes) -> str | None:
    """When a stored record was recorded, without deriving its AuditEvent."""
    doc = orjson.loads(data)
    value = doc.get("at") if doc.get("f") == FORMAT and "resourceType" not in doc else doc.get("recorded")
    return str(value) if value else None
