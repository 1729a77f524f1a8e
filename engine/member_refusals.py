"""How often a sender was refused for naming a member institution's record numbers for other persons, per
member, counted by who the sender is in ways it cannot change at will -- the count the probing alert watches.

Why (README, "(thirty-sixth round, count36)"): the AE 205 of ``adapters.convert.persons._refuse_member`` tells the
sender that the member holds a record under the number whose person differs from the one sent (the answer stays:
priv36), so its refusals are counted and, every ``HUREN_MEMBER_REFUSAL_ALERT``, alerted on
(``engine.ingest.Ingestor._member_refused``). Counted only by MSH-4/MSH-3 (priv36), a prober named a new
application in each message (MSH-3 is free text the engine takes unchecked) and never reached the threshold
(rv36d MED 2). The counts an alert watches are therefore kept:

- per sending **institution** (MSH-4 as the site resolves it: an unknown one is refused AR before conversion, so it
  names a declared institution), every application of it together;
- per authenticated **client** (``client_of``: who the transport says posted it -- the system client of
  ``POST /hl7v2``, the TLS certificate or the address of an MLLP connection, the operator of a corrected replay):
  a client naming another institution in MSH-4 is still one client.

The per-application rows (``member_refused`` on ``/admin/fidelity``) stay for the operator to read; they do not
alert by themselves (an application's refusals are its institution's too). An operator bound to the member is shown
the counts by institution only; the counts by client name other institutions' infrastructure and are the site's
operators' (``engine.auth.policy.refusal_count_shown``, fid37). A corrected copy is counted by who replayed it
(``counted_under``): the site's own operator's is the operator's alone, never under the sending institution
(fid37); one replayed by a caller bound to the sending institution (its own system client, its own staff) is that
institution asking, counted under it as what it sends is (rv37b MED 2, fidfix37). The site's operators' corrections
tell the member no sending client is past the threshold (``sending_client``; rv37b LOW 4).

A count is one refused message (one answer the sender read), whatever number of its fields were refused.
An alert is a crossing of a multiple of the threshold by this message's count (``Count.crossed``), the count
added by the store's atomic ``Collection.increment`` (MongoDB's ``$inc``, SQLite's ``BEGIN IMMEDIATE``), which
returns each value to exactly one message -- so each multiple is crossed by exactly one message on every
backend, where reading the total back after the write and alerting on ``total % threshold == 0`` let two workers
counting at once both miss it (rv36d), and a read then a write lost counts on a MongoDB without transactions
(rv36g MED 1)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.hl7v2.senders import peer_cn
from engine.messages import now_iso
from engine.repository.port import Document, Store

COLLECTION = "hl7_member_refusals"
# the identities a count is kept by, each alerting on its own (see the module's docstring)
BY = ("institution", "client")

_CLIENT = re.compile(r"\bclient=(\S+)")  # ``adapters.listeners.http``: ``<host> client=<subject>``


def client_of(peer: str, replayed_by: str = "") -> str:
    """The authenticated client that put the message's bytes in, as the transport recorded it in ``peer``:
    ``http:<subject>`` (the system client of ``POST /hl7v2``), ``tls:<CN>`` (an MLLP connection's client
    certificate), else ``mllp:<host>`` (the connection's address: all a plain MLLP connection says of its
    sender -- so every hospital a relay forwards over one plain connection is one client: README, fid37); ``replay:<operator>`` for an operator's corrected copy (``replayed_by``: its bytes are the
    operator's); "" for a file an operator imported (``file:``: the file names no client)."""
    if replayed_by:
        return f"{REPLAY}{replayed_by}"
    if not peer or peer.startswith("file:"):
        return ""
    if found := _CLIENT.search(peer):
        return f"http:{found.group(1)}"
    if cn := peer_cn(peer):  # the whole CN, as the site's sender table reads it
        return f"tls:{cn}"
    host = peer.split(" ", 1)[0].rsplit(":", 1)[0]
    return f"mllp:{host}" if host else ""


REPLAY = "replay:"  # ``client_of``'s prefix of a corrected copy's operator


def replayed_by(subject: str, *, kind: str, role: str | None = None, display: str | None = None,
                client: str | None = None, bound_to: str | None = None) -> dict[str, str]:
    """Who replays a stored message, as its replay entry keeps it (``MessageStore.reopen(who=)``): ``by`` (the
    sign-in or client id, as before), and for a signed-in staff member (``role``) the person as the HTTP record
    names them (``kind``, ``role``, ``display``, ``client``: ``replay_requestor``); ``bound_to``: the sending
    institution, when the replayer is bound to it (a system client bound to it, a staff member whose remit holds
    it: ``engine.auth.policy.audit_remit``) -- then its corrected copies are the sender's (``counted_under``)."""
    entry = {"by": subject}
    if role:
        entry |= {"kind": kind, "role": role, "display": display or subject, **({"client": client} if client else {})}
    if bound_to:
        entry["bound_to"] = bound_to
    return entry


def replay_requestor(entry: Mapping[str, Any]) -> tuple[str | None, ...]:
    """The requestor of a replay's audit records (``engine.audit.record.Requestor``) from its entry
    (``replayed_by``): a signed-in staff member as a person -- sign-in name, name and role, as every other of their
    actions is recorded (``engine.audit.middleware.requestor_of``) -- not as an application of that name (rv37b
    LOW 3); a system client by its id."""
    by = str(entry.get("by") or "?")
    if entry.get("role"):
        return (str(entry.get("kind") or "user"), by, None, entry.get("client"), str(entry["role"]),
                str(entry.get("display") or by), None, None)
    return ("system", by, None, None, None, None, None, None)


def counted_under(institution: str, peer: str, replay: Mapping[str, Any] | None) -> dict[str, str]:
    """The identities one refused message is counted under (``BY`` -> key; "" not counted): the sending
    institution (MSH-4) and the client (``client_of``) of a message as sent; of a corrected copy (``replay``: its
    entry), the replaying operator (``replay:<by>``), and the sending institution too when the replayer is bound
    to it (``bound_to``). Why: the site's operator's corrections are not the sender asking (rv36g, fid37), but
    the sending hospital's own bound client replaying "corrected" copies -- MSH-3/4/10 kept, PID free, each
    naming another of the member's numbers, each AE telling it whose the number is -- is the sender probing, and
    the member's operator, shown counts by institution only, must see the sender's count rise (rv37b MED 2)."""
    if replay is None:
        return {"institution": institution, "client": client_of(peer)}
    sender = institution if replay.get("bound_to") == institution else ""
    return {"institution": sender, "client": client_of(peer, str(replay.get("by") or "?"))}


def sending_client(row: Mapping[str, Any]) -> bool:
    """Whether a count by client is a sending client's (the sending institution's infrastructure, which the
    member is told of only as ``client_alert``): not a ``replay:`` count, which the site's operators' corrected
    copies make (a sender-bound replayer's count rises under its institution: ``counted_under``) -- those are not
    the sending hospital's, and an alert worded as its would blame it for the site's own questions (rv37b LOW 4)."""
    return row.get("by") == "client" and not str(row.get("key") or "").startswith(REPLAY)


@dataclass(frozen=True)
class Count:
    """One identity's count of refusals on one member's numbers, before and after this message's."""

    by: str  # ``BY``
    key: str  # the institution's code, or ``client_of``
    before: int
    after: int

    def crossed(self, threshold: int) -> bool:
        """Whether this message took the count across a multiple of ``threshold`` (0: never alert)."""
        return threshold > 0 and self.before // threshold < self.after // threshold


class MemberRefusals:
    """The counts, one document per (member, identity): ``{"member", "by", "key", "count", "first_seen",
    "last_seen"}``, read by ``/admin/fidelity`` under the member's institution (``engine.api.admin``)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rows = store.collection(COLLECTION)
        self.rows.ensure_index(["member"])

    def count(self, member: str, keys: dict[str, str]) -> dict[str, Count]:
        """Add one refused message to ``member``'s count of each identity in ``keys`` (``by`` -> key; an empty
        key is not counted), read and written in one transaction (joining the caller's)."""
        ids = {by: _row_id(member, by, key) for by, key in keys.items() if key}
        if not ids:
            return {}
        stamp = now_iso()
        counted: dict[str, Count] = {}
        with self.store.transaction():
            for by, row_id in ids.items():
                _, row = self.rows.increment(row_id, "count", fields={"last_seen": stamp}, on_insert={
                    "member": member, "by": by, "key": keys[by], "first_seen": stamp})
                after = int(row["count"])
                counted[by] = Count(by, keys[by], after - 1, after)
        return counted

    def of(self, member: str | None = None) -> list[Document]:
        """The counts on ``member``'s numbers (None: every member's)."""
        return self.rows.find({"member": member} if member else None, sort=[("member", 1), ("by", 1), ("key", 1)])


def _row_id(member: str, by: str, key: str) -> str:
    return "mr-" + hashlib.sha256("\x1f".join((member, by, key)).encode()).hexdigest()[:24]


def alerting(rows: list[dict[str, Any]], threshold: int) -> dict[str, int]:
    """The identities whose count on a member's numbers has reached ``threshold`` (0: none), key -> count: what
    the operator's view lists under ``alerts``."""
    if threshold <= 0:
        return {}
    return {str(r["key"]): int(r["count"]) for r in rows if r.get("by") in BY and int(r.get("count") or 0) >= threshold}
