"""Which of two messages stated a thing later: the sender's own message time (MSH-7), compared only
between messages of one sending application (MSH-3 + MSH-4), an equal time broken by arrival order.

Why (rvmsgtime33): ordering statements by ``Provenance.recorded`` mixed two clocks (the sender's MSH-7
and huren's receipt time when MSH-7 was unusable), dropped MSH-7's fraction of a second, never used
arrival order, and trusted an MSH-7 a year ahead. A message time here is read from the message as
sent (its raw MSH, kept by the message store), to the precision sent; it is *usable* only when MSH-7
is present, readable, and not ahead of the message's receipt by more than ``AHEAD``. Two messages
are ordered only when both times are usable and both came from one sender: two senders' clocks, a
FHIR client's write (no MSH-7), or an unusable MSH-7 cannot say which came later -- the caller
refuses rather than guesses (``engine.merge_rules`` ``until_later``).

What needs a time depends on what is stored (``settle``, thirty-fourth round, msgfix34): a message
over a stored value that stands until a later one (a withdrawal, a correction, an amendment) must
be shown later; over a plain stored value (a final result) it is later unless the same sender's
MSH-7 shows it strictly older -- a reading centre's PACS withdrawing the result its RIS reported is
taken, as a withdrawal always was before msgtime33, while the RIS's own withdrawal replayed after its
later report still is not.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from adapters.hl7v2.timestamps import TimestampError, to_datetime

# how far ahead of its receipt a sender's MSH-7 may be and still be its time (clocks drift by
# seconds; a minute covers a slow NTP sync, not a wrong clock)
AHEAD = _dt.timedelta(minutes=1)

Order = Literal["later", "older", "unknown"]


@dataclass(frozen=True, slots=True)
class Stamp:
    """One message's time as its sender stated it, and whose clock it is.

    - ``sender``: MSH-3.1 and the institution (MSH-4, as the message store keys it): one clock;
    - ``text``: MSH-7 as sent ("" none);
    - ``sent``: MSH-7 read (institution's zone when it states no offset), None when not usable;
    - ``unusable``: why not ("" usable): missing, unreadable, ahead of the receipt;
    - ``received``: the message's receipt (the message store's ``received_at``): arrival order;
    - ``label``: the message named in a reason ("ORU^R01 MT33-0001")."""

    sender: str
    text: str
    sent: _dt.datetime | None
    unusable: str
    received: _dt.datetime | None
    label: str = ""


def stamp(*, application: str, institution: str, msh7: str, received_at: str | None, tz: str,
          label: str = "") -> Stamp:
    """The ``Stamp`` of a message from its MSH fields and its receipt time."""
    received = _received(received_at)
    sent: _dt.datetime | None = None
    why = ""
    if not msh7.strip():
        why = "MSH-7 (the message's time) is empty"
    else:
        try:
            sent = to_datetime(msh7.strip(), tz)
        except (TimestampError, ValueError, TypeError):
            why = f"MSH-7 {msh7!r} is not a readable time"
        else:
            if received is not None and sent - received > AHEAD:
                why = (f"MSH-7 {msh7!r} is {_span(sent - received)} ahead of its receipt "
                       f"({received.isoformat(timespec='seconds')}): the sender's clock is not to be trusted")
                sent = None
    return Stamp(f"{application}^{institution}", msh7, sent, why, received, label)


def order(now: Stamp, then: Stamp | None) -> tuple[Order, str]:
    """One comparison (``settle`` asks it of each message that stated a version): whether ``now``
    (the message being written) is later or older than ``then`` (a message that stated the stored
    version; None: no message did -- a FHIR client's write), with the reason, naming MSH-7, when it
    cannot be told. An equal MSH-7 is broken by arrival order (the later received is later)."""
    if now.unusable:
        return "unknown", now.unusable
    if then is None:
        return "unknown", ("the stored version was written by a FHIR client, not by a message: "
                           "no MSH-7 to compare with this message's")
    if then.unusable or then.sent is None:
        of = f" of {then.sender.replace('^', ' of ')}" if then.sender.strip("^") else ""
        return "unknown", f"the message {then.label or 'that stated it'}{of} has no usable time ({then.unusable})"
    if now.sender != then.sender:
        return "unknown", (f"it was stated by another sending application ({then.sender.replace('^', ' of ')}, "
                           f"message {then.label}, MSH-7 {then.text}): its clock and this sender's "
                           f"(MSH-7 {now.text}) do not say which message is later")
    assert now.sent is not None
    if now.sent != then.sent:
        return ("later" if now.sent > then.sent else "older"), ""
    if now.received is not None and then.received is not None and now.received < then.received:
        return "older", ""  # (the same MSH-7, received before the stored one: a replay of the earlier)
    return "later", ""


def settle(now: Stamp, then: Sequence[Stamp], *, stands: bool) -> tuple[Order, str, Stamp | None]:
    """Whether ``now`` (the message being written) is later or older than the stored version, stated
    by the messages ``then`` (each message whose Provenance names the version: the one that wrote
    it, and any resend that stated it again unchanged; empty: no message did -- a FHIR client's
    write), with the reason when it cannot be told and the message of ``then`` that decided.

    - ``stands`` (the stored value stands until a later message: entered-in-error, corrected,
      amended): ``now`` must be later than every message that stated it; older than any one: older;
      else, any one not ordered (another sender, an unusable MSH-7 on either side, a client's
      version): unknown -- so an unusable MSH-7 is never later (the lead, thirty-third round).
    - otherwise (a plain stored value, a final result, meeting a withdrawal or a correction):
      later unless a message of the same sender that stated it has a usable MSH-7 strictly after
      ``now``'s usable one (``order``: older) -- dating across senders is needed only against a
      stored withdrawal or correction (msgfix33's report, option (a))."""
    if not stands:
        newer = next((t for t in then if t.sender == now.sender and order(now, t)[0] == "older"), None)
        return ("older", "", newer) if newer is not None else ("later", "", None)
    if not then:
        return (*order(now, None), None)
    verdicts = [(order(now, t), t) for t in then]
    for wanted in ("older", "unknown"):
        for (verdict, why), t in verdicts:
            if verdict == wanted:
                return verdict, why, t
    return "later", "", None


def _received(text: str | None) -> _dt.datetime | None:
    try:
        value = _dt.datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return value


def _span(delta: _dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 1440} days" if minutes >= 2880 else f"{minutes // 60} h {minutes % 60} min"


class Dates(Protocol):
    """The message times a write compares (``engine.merge_rules`` ``until_later``), given by ingest
    for one message's write: its own (``now``), the message that wrote a stored version named by
    Provenances (``of``), and an earlier message of the same batch that wrote a pending one (``pending``).
    ``of`` gives a ``Stamp`` whose ``unusable`` says why for a message a Provenance names that the
    message store no longer keeps (never silently none)."""

    now: Stamp

    def of(self, provenances: list[dict[str, Any]]) -> list[Stamp]: ...

    def pending(self, ref: str) -> Stamp | None: ...
