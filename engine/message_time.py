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

Not told, after its review (rvmsgfix34; thirty-fourth round, tfix34): an MSH-7 sent coarser than a
second names a span (``2026120211``: any time of that hour), ordered against another time only when
the two spans do not overlap (the very same span is broken by arrival, as the same second is); an
unusable MSH-7 over a final its own sender stated, and a message over a version no message stated
(a FHIR client's PUT), cannot be ordered either -- the caller refuses (AE).

The operator's decision (thirty-fifth round, order35): a message refused because its order cannot be
told (ERR-3 206) stays refused on a plain replay -- nothing new says which is later. An operator who
knows (the PACS's withdrawal was a mistake the RIS's correction repairs; the client's PUT was a
clerk's slip) replays it "as later" (``Decision``): for that one message's write, every comparison
``settle`` cannot tell is answered "later", and what it writes names the operator as the one who
decided (its Provenance's agent, a note among the replay's answers, the audit record, the stored
message's replay entry). The decision answers only what cannot be told: a message the same sender's own MSH-7 shows
older is still held, and a message whose own MSH-7 is unusable (ERR-3 102) is not decided at all --
its time is what is wrong, and a corrected copy (its MSH-7 fixed) is the replay that settles it.
"""

from __future__ import annotations

import bisect
import calendar
import datetime as _dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from adapters.hl7v2.timestamps import TimestampError, to_datetime
from engine.ucd import category

# how far ahead of its receipt a sender's MSH-7 may be and still be its time (clocks drift by
# seconds; a minute covers a slow NTP sync, not a wrong clock)
AHEAD = _dt.timedelta(minutes=1)

Order = Literal["later", "older", "unknown"]

_TICK = _dt.timedelta(microseconds=1)  # (a point's span, against a coarser one: ``order``)


@dataclass(frozen=True, slots=True)
class Stamp:
    """One message's time as its sender stated it, and whose clock it is.

    - ``sender``: MSH-3.1 and the institution (MSH-4, as the message store keys it): one clock;
    - ``text``: MSH-7 as sent ("" none);
    - ``sent``: MSH-7 read (institution's zone when it states no offset), None when not usable;
    - ``unusable``: why not ("" usable): missing, unreadable, ahead of the receipt;
    - ``received``: the message's receipt (the message store's ``received_at``): arrival order;
    - ``label``: the message named in a reason ("ORU^R01 MT33-0001");
    - ``application``: MSH-3 whole as an HD (namespace id, universal id, its type), which ``sender``'s
      MSH-3.1 alone cannot tell apart from another hospital's application of the same common name
      (``RIS^<OID>^ISO``): who stored an order's number is that application (``MergeRules._numbered``,
      compared by ``datatypes.same_hd``; thirty-ninth round, ord39);
    - ``message``: MSH-9.1, the message's code (ORM, ORU): which writer of the merge rules it was;
    - ``placed``: the placer numbers (EI-1) the message states as the placer's (an order message's ORC-1 NW, XO,
      RO, RP ...: ``adapters.convert.results.placed_numbers``), asked when wanted and read once: who placed an
      order is the first such message to write a version holding its number (``MergeRules._numbered``; review
      rv39g MED 3, ofix39). Reading an order message's ORCs costs ~0.1 ms, and every result dated against its
      order's version reads that ORM's Stamp: only the placer's judgement pays it;
    - ``claims``: the order numbers (``KIND|system|value``) whose owner's change the message stated and was held
      from (ERR-3 204: ``merge_rules.Owned``), as its message document keeps them (``held_claims``): a held claim
      makes its sender no storer of the number, though its write created the order holding it (a filler number
      alone finds nothing else) -- ``MergeRules._numbered`` skips it (fortieth round, ord40);
    - ``unchanged``: the resources (``Type/id``) the message's write left as they were stored (no new version:
      a resend of the same P, a held statement), as its message document keeps them (``unchanged``): its
      Provenance names the version it found, which another message made -- a version is dated and owned only by
      the message that made it (``MergeRules._made_by``; review rv40b HIGH 1, fortieth round, stfix40);
    - ``unchanged_kept``: whether ``unchanged`` is known -- its document was filed by a release that keeps the list
      (the field present, empty or not); False: filed before (no such field), when a version written before the
      message was received (``received``) is still known to be none of its making (``MergeRules._made_by``;
      review rv40m MED 3, forty-first round, st41)."""

    sender: str
    text: str
    sent: _dt.datetime | None
    unusable: str
    received: _dt.datetime | None
    label: str = ""
    # the end of the span MSH-7 names when sent coarser than a second ("2026120211": any time of that
    # hour; exclusive); None: a point in time (to the second or finer) -- ``order``
    until: _dt.datetime | None = None
    application: tuple[str, str, str] = ("", "", "")
    message: str = ""
    placed: Callable[[], frozenset[str]] = field(default=lambda: frozenset(), compare=False, repr=False)
    claims: Callable[[], frozenset[str]] = field(default=lambda: frozenset(), compare=False, repr=False)
    unchanged: Callable[[], frozenset[str]] = field(default=lambda: frozenset(), compare=False, repr=False)
    unchanged_kept: bool = True


def stamp(*, application: str, institution: str, msh7: str, received_at: str | None, tz: str,
          label: str = "", hd: tuple[str, str, str] = ("", "", ""), message: str = "",
          placed: Callable[[], frozenset[str]] | None = None,
          claims: Callable[[], frozenset[str]] | None = None,
          unchanged: Callable[[], frozenset[str]] | None = None, unchanged_kept: bool = True) -> Stamp:
    """The ``Stamp`` of a message from its MSH fields and its receipt time (``hd``: MSH-3 whole,
    ``message``: MSH-9.1, ``placed``: the placer numbers it states as the placer's, ``claims``: the numbers
    its claim to was held, ``unchanged``: the resources its write left as stored, ``unchanged_kept``: whether
    that is known)."""
    received = aware_instant(received_at)
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
    return Stamp(f"{application}^{institution}", msh7, sent, why, received, label,
                 _span_end(msh7.strip(), sent) if sent is not None else None, hd, message,
                 placed or (lambda: frozenset()), claims or (lambda: frozenset()),
                 unchanged or (lambda: frozenset()), unchanged_kept)


def header_hd(value: str, separator: str) -> tuple[str, str, str]:
    """An HD field as sent (MSH-3 in the sender's delimiters) as (namespace id, universal id, its type)."""
    parts = [p.strip() for p in value.split(separator or "^")[:3]] + ["", ""]
    return parts[0], parts[1], parts[2]


_DIGITS = re.compile(r"\d*")


def _span_end(text: str, start: _dt.datetime) -> _dt.datetime | None:
    """The exclusive end of the span an MSH-7 sent coarser than a second names (YYYY, YYYYMM,
    YYYYMMDD, YYYYMMDDHH, YYYYMMDDHHMM); None for a point (seconds or finer)."""
    digits = len(_DIGITS.match(text).group())  # type: ignore[union-attr]
    if digits >= 14:
        return None
    if digits >= 12:
        return start + _dt.timedelta(minutes=1)
    if digits >= 10:
        return start + _dt.timedelta(hours=1)
    if digits >= 8:
        return start + _dt.timedelta(days=1)
    if digits >= 6:
        return start + _dt.timedelta(days=calendar.monthrange(start.year, start.month)[1])
    return start.replace(year=start.year + 1)


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
    if (now.until is not None or then.until is not None) and (now.sent, now.until) != (then.sent, then.until):
        # a span (MSH-7 coarser than a second) against a time inside it or another span overlapping it:
        # not ordered (rvmsgfix34 LOW 11); the very same span, as the same second, by arrival (below)
        now_end = now.until or now.sent + _TICK
        then_end = then.until or then.sent + _TICK
        if now.sent >= then_end:
            return "later", ""
        if now_end <= then.sent:
            return "older", ""
        return "unknown", (f"MSH-7 {now.text} and MSH-7 {then.text} (message {then.label}) are times of "
                           "different precision whose spans overlap: which is later cannot be told")
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
      stored withdrawal or correction (msgfix33's report, option (a)). Not told (thirty-fourth
      round, tfix34): ``now``'s MSH-7 unusable while a message of the same sender stated it (an
      unreadable time is not ordered even within one sender: the lead's decision), a time of the
      same sender whose span overlaps ``now``'s (an hour-precision MSH-7), and a version no message
      stated (a FHIR client's restoring PUT: no MSH-7 to compare). Any one of the sender's
      messages showing ``now`` older decides "older", whichever came first (thirty-sixth round,
      ordfix36)."""
    if not then:
        return (*order(now, None), None)
    if not stands:
        # "older" from any of the sender's statements wins over "unknown" from another (rvfixord35
        # MED 3: an hour-precision MSH-7 that stated the version first overlaps ``now``; the same
        # sender's precise 12:00 resend of it still shows ``now`` older)
        unknown: tuple[Order, str, Stamp | None] | None = None
        for t in then:
            if t.sender != now.sender:
                continue
            verdict, why = order(now, t)
            if verdict == "older":
                return verdict, why, t
            if unknown is None and verdict == "unknown" and (now.unusable or not t.unusable):
                unknown = (verdict, why, t)
        return unknown or ("later", "", None)
    verdicts = [(order(now, t), t) for t in then]
    for wanted in ("older", "unknown"):
        for (verdict, why), t in verdicts:
            if verdict == wanted:
                return verdict, why, t
    return "later", "", None


def aware_instant(text: str | None) -> _dt.datetime | None:
    """An ISO instant (a message's ``received_at`` or ``processed_at``, a version's ``lastUpdated``), one
    without an offset taken as UTC; None when empty or unreadable."""
    try:
        value = _dt.datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return value


def written_before_receipt(received: _dt.datetime | None, written: _dt.datetime | None) -> bool:
    """Whether a version stored at ``written`` (its ``meta.lastUpdated``) was stored before a message was
    ``received`` (its document's ``received_at``, ``Stamp.received``): then that message's write did not make it -- a message is
    written after it is received, so a version older than its receipt is one its write found stored (a resend of
    the same P, naming it in its Provenance, as its document keeps in ``unchanged`` since the fortieth round).
    Both instants are the receiving process's clock: ``received_at`` to the microsecond, ``lastUpdated`` to the
    millisecond and never earlier than the write (``VersionClock`` counts on past the clock when it must), so the
    receipt is cut to its millisecond and only a version strictly before that millisecond is told; one written in
    the millisecond of the receipt, or a time missing, is not told (False). Asked only of a message whose document
    did not keep the list (``Stamp.unchanged_kept``: filed before stfix40 -- ``merge_rules._made_by``, and its
    replay's ``engine.ingest._unchanged``; review rv40m MED 3, forty-first round, st41)."""
    if written is None or received is None:
        return False
    return written < received.replace(microsecond=received.microsecond // 1000 * 1000)


def _span(delta: _dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 1440} days" if minutes >= 2880 else f"{minutes // 60} h {minutes % 60} min"


@dataclass(frozen=True, slots=True)
class Decision:
    """An operator's decision about one message: who (``by``: the operator's sign-in or client id, ``agent``:
    them as a ``Provenance.agent``), when (``at``, an instant), what (``kind``) and why (``reason``).

    - ``later`` (order35): a refused message is later than the stored versions its order could not be told
      against (``POST /admin/quarantine/{id}/replay?as=later``, ``huren quarantine replay --as-later``);
    - ``owner`` (fortieth round, ord40): a message held because its sending application is not the one the
      order's history names for the number its change came under (AA, W 204: ``merge_rules.Owned``) -- or, a
      registration from another application than the one that registered the record's resident ID number (AA, W 205:
      ``adapters.convert.persons._may_renumber``; forty-first round, reg41) -- states the number's owner's change -- the interface analyst knows the LIS moved to another MSH-3, or a relay was
      added (``POST /admin/quarantine/{id}/owner``, a reason required: an integration engine's error queue
      decision, Rhapsody's or Mirth's, is kept with its words)."""

    by: str
    at: str
    agent: dict[str, Any]
    kind: str = "later"
    reason: str = ""


# the operator's part in what a decided message wrote (``Provenance.agent``): R4's participant type
# "verifier" (who checked what the message states and vouched for it -- here, its order against the
# stored version, or its sender as the number's owner), the decision itself said in ``role``'s text
_DECIDER = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                        "code": "verifier", "display": "Verifier"}]}
_DECIDED = {"later": "decided this message is later than the stored version its order could not be told "
                     "against (the operator's replay as later)",
            "owner": "decided this message's change is the number's owner's -- the order number's, or the resident "
                     "ID number's (the application that registered it) -- though the record's history names another "
                     "application (the operator's decision on a held change; the reason is kept with the message's "
                     "decision and in the audit log)"}


# a decision's reason: the operator's words, bounded as a note is (the API's 400, the console's exit 2: ``reason_of``)
REASON_MAX = 500
_KEPT_CONTROLS = frozenset("\t\n\r")  # (a line break typed in a text box or a console, a tab: part of the words)


# Unicode's embeddings, overrides and isolates (UAX #9): inside a reason they make the page and the audit log show its
# words in another order than the operator typed them (U+202E turns "已核实" around) -- the trojan-source trick; the
# marks LRM/RLM (U+200E/F) only hint a direction and stay (lastread1 LOW, fortieth round).
_BIDI_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# The format characters (Unicode category Cf) a reason keeps: the implicit direction marks of UAX #9 2.6 -- LRM, RLM
# and the Arabic letter mark ALM (U+061C, the same kind of mark for Arabic script, which Uyghur is written in) --
# which settle where a neutral character (a bracket, a full stop) sits and hide no word. Every other Cf is refused
# (http41, the lead's question from lastread1): it shows nothing, so the reason an auditor reads is not the one
# kept -- a zero-width space (U+200B) or joiner splits a word so a search for it misses, the tags U+E0020-E007F spell
# whole ASCII sentences no page shows (the "ASCII smuggling" of text to a program reading the audit log), a soft
# hyphen or U+FEFF hides between two characters. ZERO WIDTH JOINER stays inside an emoji sequence only, between two
# emoji (``_in_emoji``: 👩‍⚕️, ❤️‍🔥), where it joins two pictures into one, as a phone's keyboard types it; the MONGOLIAN
# VOWEL SEPARATOR between two Mongolian letters only (``_in_mongolian``).
_KEPT_FORMAT = frozenset("\u200e\u200f\u061c")
_ZWJ = "\u200d"
# what may stand between an emoji and the joiner after it: VARIATION SELECTOR-16 (emoji presentation) and the five
# skin-tone modifiers (U+1F3FB-1F3FF) -- the Extend characters of UAX #29 GB11 an emoji keyboard types there
_EMOJI_TRAILERS = frozenset("\ufe0f\U0001f3fb\U0001f3fc\U0001f3fd\U0001f3fe\U0001f3ff")
# U+180E: a letter joiner of traditional Mongolian script (Inner Mongolia's county communities) -- the IME types it
# before a final -a/-e that takes its separate form (ᠬᠠᠮᠲᠤ᠎ᠠ), so it is part of the word as typed (rv41c LOW 8)
_MVS = "\u180e"
# the Mongolian free variation selectors (FVS1-4: a letter's other form) that may stand between a letter and the MVS
_MONGOLIAN_FVS = frozenset("\u180b\u180c\u180d\u180f")
# Letters (category Lo) that show nothing: the Hangul fillers and the braille blank (So) -- no visible word
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _ranges(path: Path) -> tuple[list[int], list[int]]:
    """The first and last code points of the ranges a UCD property file lists (``<first>[..<last>] ; <property>``,
    ``#`` comments), in order: ``_pictographic`` looks a character up in them by bisection. A line that is no range,
    or ranges out of order or overlapping (which bisection would silently misread: an emoji refused as invisible),
    stop the start with ``ValueError`` naming the file and the line (review rv41p LOW 4)."""
    firsts: list[int] = []
    lasts: list[int] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        points = line.split("#", 1)[0].split(";", 1)[0].strip()
        if not points:
            continue
        first, _, last = points.partition("..")
        try:
            low, high = int(first, 16), int(last or first, 16)
        except ValueError:
            raise ValueError(f"{path}:{number}: {points!r} is not a code point range (<first>[..<last>])") from None
        if high < low or (lasts and low <= lasts[-1]):
            raise ValueError(f"{path}:{number}: {points} is out of order or overlaps the range before it")
        firsts.append(low)
        lasts.append(high)
    return firsts, lasts


# Unicode's Extended_Pictographic, as data (``engine/extended_pictographic.txt``: the UCD 17.0 emoji-data.txt's ranges)
_PICTOGRAPHIC = _ranges(Path(__file__).with_name("extended_pictographic.txt"))


def _pictographic(c: str) -> bool:
    """Whether ``c`` is Extended_Pictographic: an emoji, or a code point reserved for one (an emoji newer than this
    Python's Unicode is one already)."""
    firsts, lasts = _PICTOGRAPHIC
    at = bisect.bisect_right(firsts, ord(c)) - 1
    return at >= 0 and ord(c) <= lasts[at]


def _in_emoji(text: str, at: int) -> bool:
    """Whether the joiner at ``text[at]`` joins two emoji, as Unicode's rule for an emoji ZWJ sequence has it (UAX
    #29 GB11: Extended_Pictographic, its VS16 or skin tone, the joiner, Extended_Pictographic; every RGI sequence of
    emoji-zwj-sequences.txt is so): 👩‍⚕️, ❤️‍🔥, 🧑🏽‍🦰, and 🙂‍↔️ "head shaking", whose right side is U+2194 LEFT RIGHT
    ARROW (a math symbol, Sm, and an emoji: Emoji 15.1; rv41c LOW 7). A joiner before anything else -- a letter,
    a digit, a Han character -- joins no emoji: it hides inside the words (``👍<ZWJ>属<VS16>实``: httpfix41 had kept
    any character a VS16 followed; rv41i LOW 2), and ``_hidden`` refuses it."""
    before = at - 1
    while before >= 0 and text[before] in _EMOJI_TRAILERS:
        before -= 1
    return before >= 0 and at + 1 < len(text) and _pictographic(text[before]) and _pictographic(text[at + 1])


def _mongolian_letter(c: str) -> bool:
    """A letter of the Mongolian block (U+1820-18AA: Mongolian, Todo, Sibe, Manchu, Ali Gali)."""
    return "\u1820" <= c <= "\u18aa" and category(c) == "Lo"


def _in_mongolian(text: str, at: int) -> bool:
    """Whether the vowel separator at ``text[at]`` stands between two Mongolian letters (past a free variation
    selector before it), where it belongs; anywhere else it only hides, as any Cf."""
    before = at - 1
    while before >= 0 and text[before] in _MONGOLIAN_FVS:
        before -= 1
    return before >= 0 and at + 1 < len(text) and _mongolian_letter(text[before]) and _mongolian_letter(text[at + 1])


def _hidden(reason: str) -> int | None:
    """The index of the first character of ``reason`` that is no visible word: a format character (Cf) other than
    the kept marks, an emoji's joiner and a Mongolian vowel separator, or a lone surrogate (Cs: JSON's ``\\ud800``
    decodes to one; no UTF-8 can store it); None when there is none."""
    for at, c in enumerate(reason):
        kind = category(c)
        if kind == "Cs" or (kind == "Cf" and c not in _KEPT_FORMAT and not (c == _ZWJ and _in_emoji(reason, at))
                            and not (c == _MVS and _in_mongolian(reason, at))):
            return at
    return None


def _visible(c: str) -> bool:
    """A character that shows: a letter, digit, punctuation mark or symbol (emoji are symbols), but the blank
    letters (``_BLANK_LETTERS``), each read in today's Unicode (``engine.ucd``: a CJK Extension H/I name character,
    unassigned to Python 3.11's Unicode 14, is a letter: http42); and a code point Extended_Pictographic reserves for
    an emoji not yet assigned (``_pictographic``): a phone newer than these tables shows it."""
    return (category(c)[0] in "LNPS" and c not in _BLANK_LETTERS) or _pictographic(c)


# what the operator's reason for an owner decision is asked for (said when it is blank: ``reason_of``'s ``why``)
OWNER_WHY = "why this change is the owner's"


def reason_of(text: str, *, why: str = OWNER_WHY) -> str:
    """The reason of a person's decision as it is kept: exactly as typed but for white space at its two ends --
    line breaks, tabs, ideographic spaces (U+3000) and every other character inside stay (an operator's numbered
    list is not run together: rv40f LOW 5). The one rule for every reason huren keeps with a decision, so what an
    auditor reads on a page, in the CSV or the audit log is what was kept: the operator's on a held change (the API's
    400, the console's exit 2: rv40f LOW 7, ordfix40) and the auditor's on a duplicate-test flag (``recognition.
    reviews``: rv41c MED 3). ``why``: what the reason is asked for, said when there is none.

    A character's category is read in today's Unicode (``engine.ucd``, not Python 3.11's 14.0), so a reason in a
    name's CJK Extension H or I characters is words, and a format character assigned since is refused (http42).

    Raises ``ValueError`` saying why, in English with the Chinese after it, the position counted from 1, for:

    - none: blank, or only white space -- "a reason is required: <why> (请填写理由)";
    - more than ``REASON_MAX`` characters (理由最多 500 字);
    - a control character (Cc) other than a tab or a line break: NUL, ESC, BEL -- no words, and an escape sequence
      would act in a terminal that shows the audit log (理由中含有控制字符);
    - a direction override, embedding or isolate (U+202A-202E, U+2066-2069): the words would show in another order
      than typed, the trojan-source trick (理由中含有改变文字方向的控制字符);
    - bytes that were not UTF-8: U+DC80-DCFF, the lone surrogates Python reads a console's non-UTF-8 bytes as (a
      terminal set to GBK, ``surrogateescape``), named as the byte it was (理由不是 UTF-8 编码的文字; rv41c LOW 9);
    - any other lone surrogate (JSON's ``"\\ud800"``): half of a UTF-16 pair, no character, which no store can keep
      (理由中含有无效字符; it had been a 500: http41);
    - any other invisible format character (Cf, ``_hidden``): a zero-width space or joiner, a soft hyphen, U+FEFF,
      the tags -- what is read would not be what is kept (理由中含有不可见的格式字符; http41). Kept: LRM, RLM, ALM;
      a zero-width joiner inside an emoji (``_in_emoji``); the Mongolian vowel separator between two Mongolian
      letters (``_in_mongolian``);
    - no visible character (``_visible``): only direction marks, white space, Hangul fillers or braille blanks --
      a reason that shows nothing, as a blank one (理由中没有可见的文字; rv41c MED 2)."""
    reason = text.strip()
    if not reason:
        raise ValueError(f"a reason is required: {why} (请填写理由)")
    if len(reason) > REASON_MAX:
        raise ValueError(f"the reason is {len(reason)} characters; at most {REASON_MAX} (理由最多 {REASON_MAX} 字)")
    bad = next((c for c in reason if category(c) == "Cc" and c not in _KEPT_CONTROLS), None)
    if bad is not None:
        raise ValueError(f"the reason holds the control character U+{ord(bad):04X} (at {reason.index(bad) + 1}): "
                         "words, line breaks and tabs only (理由中含有控制字符)")
    turned = next((c for c in reason if c in _BIDI_OVERRIDES), None)
    if turned is not None:
        raise ValueError(f"the reason holds the direction control U+{ord(turned):04X} (at "
                         f"{reason.index(turned) + 1}): it would show the words in another order than typed "
                         "(理由中含有改变文字方向的控制字符)")
    hidden = _hidden(reason)
    if hidden is not None and "\udc80" <= reason[hidden] <= "\udcff":
        raise ValueError(f"the reason holds the byte 0x{ord(reason[hidden]) - 0xDC00:02X} (at {hidden + 1}), which is "
                         "not UTF-8: a console set to GBK or another code page sends its words so; set it to UTF-8 "
                         "and type the reason again (理由不是 UTF-8 编码的文字，请将终端设为 UTF-8 后重新输入)")
    if hidden is not None and category(reason[hidden]) == "Cs":
        raise ValueError(f"the reason holds U+{ord(reason[hidden]):04X} (at {hidden + 1}), half of a UTF-16 pair and "
                         "no character: it cannot be kept as text (理由中含有无效字符)")
    if hidden is not None:
        raise ValueError(f"the reason holds the invisible character U+{ord(reason[hidden]):04X} (at {hidden + 1}): "
                         "it shows nothing, so the words read would not be the words kept; type the reason "
                         "again without it (理由中含有不可见的格式字符)")
    if not any(_visible(c) for c in reason):
        held = " ".join(dict.fromkeys(f"U+{ord(c):04X}" for c in reason if not c.isspace())) or "white space"
        raise ValueError(f"the reason shows no visible character ({held} only): say {why} in words "
                         "(理由中没有可见的文字)")
    return reason


def decision(*, by: str, system: str, at: str, display: str = "", kind: str = "later", reason: str = "") -> Decision:
    """The ``Decision`` of the operator ``by`` (an identifier in ``system``: a staff sign-in, a
    system client, the server's own account for the CLI), named ``display``, at the instant ``at``;
    ``kind`` one of ``_DECIDED``'s, ``reason`` the operator's words (``reason_of``: ValueError when they are not).

    The Provenance's agent says the decision in fixed words (``_DECIDED``) and not the reason: a Provenance is
    read by the patient it is about (their own token, the compartment), and an operator's words on a held
    message are the site's internal note (a vendor's ticket, a colleague's name: rv40f LOW 6). The reason is kept
    where staff read it -- the message's ``decision`` and replay entry, and the signed audit log -- which the
    role's words point to (ordfix40)."""
    reason = reason_of(reason) if reason or kind == "owner" else ""
    who: dict[str, Any] = {"identifier": {"system": system, "value": by}}
    if display and display != by:
        who["display"] = display
    role = _DECIDED[kind]
    return Decision(by, at, {"type": {"coding": [dict(c) for c in _DECIDER["coding"]]}, "role": [{"text": role}],
                             "who": who}, kind, reason)


class Dates(Protocol):
    """The message times a write compares (``engine.merge_rules`` ``until_later``), given by ingest
    for one message's write: its own (``now``), the message that wrote a stored version named by
    Provenances (``of``), and the earlier messages of the same batch that stated a version, their
    Provenances not written yet (``pending``: every one, in the batch's order).
    ``of`` gives a ``Stamp`` whose ``unusable`` says why for a message a Provenance names that the
    message store no longer keeps (never silently none). ``decide``: the operator's decision that
    this message is later, when its replay carries one (``Decision``), noting that it answered
    ``why`` (a comparison not told); None: no decision -- the message is refused. ``owns``: the
    operator's decision that this message's change under the order number ``claim``
    (``KIND|system|value``) of the order ``ref`` is the owner's (``Decision.kind`` owner), noting that it
    answered; ``hold``: a claim the merge held (``merge_rules.Owned``), kept with the message (ord40).
    Both optional for a caller with no messages, so not members here (``MergeRules`` asks them by
    ``getattr``)."""

    now: Stamp

    def decide(self, why: str, version: str = "") -> Decision | None: ...

    def of(self, provenances: list[dict[str, Any]]) -> list[Stamp]: ...

    def pending(self, ref: str) -> list[Stamp]: ...
