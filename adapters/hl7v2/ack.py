"""HL7 v2 acknowledgements (original mode), exactly as the standard lays them out per version.

* MSH: the sender's delimiters; MSH-3/4 and MSH-5/6 swapped from the incoming message; MSH-7 now;
  MSH-9 ``ACK^<event>^ACK`` (``ACK^<event>`` for v2.3, which has no message-structure component);
  a fresh MSH-10; MSH-11 and MSH-12 echoed (same version as the message acknowledged).
* MSA: MSA-1 AA / AE / AR, MSA-2 = the incoming MSH-10.
* ERR, one per problem:
  - v2.5 and later: ERR-2 error location (ERL: segment ^ sequence ^ field ^ repetition ^
    component), ERR-3 HL7 table 0357 code (CWE ``code^text^HL70357``), ERR-4 severity (table 0516
    E/W/I), ERR-8 user message.
  - v2.3 / v2.3.1 / v2.4: one ERR whose repeating ERR-1 (ELD) carries
    ``segment^sequence^field^code&text&HL70357`` per problem; the first message also goes into
    MSA-3 (text message) and its code into MSA-6 (error condition), which those versions define.

Building with hl7apy was measured (bench/ingest.py) at well over 100x the cost of this string
assembly, for the same bytes, so the ACK is assembled here and hl7apy is used in the tests to
check that the result is valid against each version's structure definitions.
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from collections.abc import Sequence
from datetime import datetime

from adapters.hl7v2.errors import MESSAGE_ACCEPTED, HL7Error
from adapters.hl7v2.header import DEFAULT_ENCODING_CHARS, DEFAULT_FIELD_SEP, Header

# HL7 table 0357 display texts (v2.5.1).
TABLE_0357 = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "104": "Value too long",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}

DEFAULT_VERSION = "2.5.1"
MAX_TEXT = 1000  # ERR-8 / MSA-3 are TX/ST; keep ACKs small even for long diagnostics

_counter = itertools.count(1)
_PREFIX = f"{os.getpid() % 10000:04d}"


def _new_control_id() -> str:
    """Unique per process and time, at most 20 characters (MSH-10 is ST(20) up to v2.4)."""
    return f"A{int(time.time() * 1000) % 10**13:013d}{_PREFIX[-2:]}{next(_counter) % 10000:04d}"


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("."):
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or (2, 5, 1)


def uses_err1_layout(version: str) -> bool:
    """v2.3 / 2.3.1 / 2.4 locate errors in ERR-1 (ELD); v2.5 introduced ERR-2..ERR-8."""
    return version_tuple(version) < (2, 5)


def escape(text: str, field_sep: str = DEFAULT_FIELD_SEP, encoding_chars: str = DEFAULT_ENCODING_CHARS) -> str:
    """HL7 escape of free text (``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``, and ``\\P\\`` for the truncation
    character when MSH-2 declares a fifth one, v2.7); line breaks become ``\\.br\\``.

    Other control characters are dropped: they would break the segment.
    """
    comp, rep, esc, sub = (encoding_chars + DEFAULT_ENCODING_CHARS[len(encoding_chars):])[:4]
    trunc = encoding_chars[4:5]
    table = _escape_table(field_sep, comp, rep, esc, sub, trunc)
    return text.translate(table)


@functools.lru_cache(maxsize=16)
def _escape_table(fs: str, comp: str, rep: str, esc: str, sub: str, trunc: str = "") -> dict[int, str | None]:
    table: dict[int, str | None] = {c: None for c in range(32)}
    table.update({0x7F: None, ord("\r"): f"{esc}.br{esc}", ord("\n"): f"{esc}.br{esc}"})
    # the escape character first in meaning: each delimiter maps independently, so order is irrelevant
    table.update({ord(esc): f"{esc}E{esc}", ord(fs): f"{esc}F{esc}", ord(comp): f"{esc}S{esc}",
                  ord(sub): f"{esc}T{esc}", ord(rep): f"{esc}R{esc}"})
    if trunc:  # a '#' left bare in a v2.7 ERR-8 reads as "the value was truncated here"
        table[ord(trunc)] = f"{esc}P{esc}"
    return table


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def build_ack(
    header: Header,
    code: str,
    errors: Sequence[HL7Error] = (),
    *,
    now: datetime | None = None,
    control_id: str | None = None,
    sending_application: str = "HUREN",
    ack_types: tuple[str, str] | None = None,
) -> str:
    """The ACK for ``header`` as text, segments ended by CR (no MLLP framing).

    ``code`` is AA, AE or AR (original mode and enhanced mode's application ACK) or CA, CE, CR
    (enhanced mode's accept ACK). ``errors`` may include warnings (severity W) on an AA.
    ``sending_application`` is used for MSH-3 only when the incoming MSH-5 is empty.
    ``ack_types`` fills MSH-15/MSH-16 of this ACK (what it asks of its receiver in turn).
    """
    if code not in ("AA", "AE", "AR", "CA", "CE", "CR"):
        raise ValueError(f"invalid acknowledgment code {code!r}")
    fs = header.field_sep or DEFAULT_FIELD_SEP
    enc = header.encoding_chars or DEFAULT_ENCODING_CHARS
    comp, rep, _esc, sub = (enc + DEFAULT_ENCODING_CHARS[len(enc):])[:4]
    before_stamp, before_control, after_control, legacy = _msh_template(
        fs, enc, header.receiving_application or sending_application, header.receiving_facility,
        header.sending_application, header.sending_facility, header.trigger_event, header.processing_id,
        header.version, header.charset, ack_types)
    stamp = now.strftime("%Y%m%d%H%M%S%z") if now is not None else _stamp_now()
    msh = f"{before_stamp}{stamp}{before_control}{control_id or _new_control_id()}{after_control}"
    # MSA-2 echoes MSH-10 as sent (its wire form, even empty): it is matched by the sender against
    # the MSH-10 it sent; escaped again, ``A\\E\\1`` came back ``A\\E\\E\\E\\1`` and ``A^1`` as
    # ``A\\S\\1``, an answer to no message (twenty-first round). It holds no field separator nor
    # segment end (it was split on them); ``_safe`` drops them all the same.
    control = _safe(header.sent_control_id, fs, enc)
    segments = [msh]
    problems = [e for e in errors if e.code != MESSAGE_ACCEPTED or e.severity != "I"]
    if legacy and problems and code != "AA":
        first = problems[0]
        condition = f"{first.code}{comp}{escape(TABLE_0357.get(first.code, ''), fs, enc)}{comp}HL70357"
        segments.append(fs.join(["MSA", code, control, escape(_clip(first.message), fs, enc), "", "", condition]))
    else:
        segments.append(fs.join(["MSA", code, control]))
    if problems:
        if legacy:
            elds = [_eld(e, fs, enc, comp, sub) for e in problems]
            segments.append(fs.join(["ERR", rep.join(elds)]))
        else:
            segments.extend(_err(e, fs, enc, comp) for e in problems)
    return "\r".join(segments) + "\r"


@functools.lru_cache(maxsize=1024)
def _msh_template(fs: str, enc: str, application: str, facility: str, to_application: str, to_facility: str,
                  trigger_event: str, processing_id: str, incoming_version: str, charset: str,
                  ack_types: tuple[str, str] | None) -> tuple[str, str, str, bool]:
    """The ACK's MSH around its two varying fields (MSH-7 time, MSH-10 control id), and whether
    the version locates errors in ERR-1: the same for every message of a sender's feed, so it is
    assembled once per distinct header (measured ~10 us a message when assembled every time)."""
    version = incoming_version if incoming_version and version_tuple(incoming_version) >= (2,) else DEFAULT_VERSION
    version = _safe(version, fs, enc) or DEFAULT_VERSION
    comp = (enc + DEFAULT_ENCODING_CHARS[len(enc):])[0]
    event = _safe(trigger_event, fs, enc)
    msg_type = f"ACK{comp}{event}" if version_tuple(version) < (2, 3, 1) else f"ACK{comp}{event}{comp}ACK"
    # MSH-3/4 <- incoming MSH-5/6, MSH-5/6 <- incoming MSH-3/4, MSH-7 now, MSH-8 security empty
    before_stamp = fs.join(["MSH", enc, application, facility, to_application, to_facility, ""])
    tail = [processing_id or "P", version]  # MSH-11, MSH-12
    if ack_types or charset:
        tail += ["", "", *(ack_types or ("", ""))]  # MSH-13, 14 empty; MSH-15, 16
    if charset:
        tail += ["", charset]  # MSH-17 empty, MSH-18 echoed
    return before_stamp, fs + fs + msg_type + fs, fs + fs.join(tail), uses_err1_layout(version)


_stamp_cache: tuple[int, str] = (-1, "")


def _stamp_now() -> str:
    """MSH-7 for now, local time with offset, at second precision: formatted once per second."""
    global _stamp_cache
    second = int(time.time())
    cached = _stamp_cache
    if cached[0] != second:
        cached = (second, datetime.fromtimestamp(second).astimezone().strftime("%Y%m%d%H%M%S%z"))
        _stamp_cache = cached
    return cached[1]


def _safe(value: str, fs: str, enc: str) -> str:
    """A header value echoed into a field: keeps components but drops CR/LF and the field separator.
    A value holding none of them (every ACK's MSA-2 in practice) is returned as it is, without the
    character-by-character pass (``tests/test_perfgrow26_same.py`` holds the two equal)."""
    if fs and fs not in value and "\r" not in value and "\n" not in value:
        return value
    return "".join(c for c in value if c not in "\r\n" and c != fs)


def _num(value: int | None) -> str:
    return "" if value is None else str(value)


def _eld(e: HL7Error, fs: str, enc: str, comp: str, sub: str) -> str:
    text = escape(TABLE_0357.get(e.code, ""), fs, enc)
    code = f"{e.code}{sub}{text}{sub}HL70357"
    seq = _num(e.sequence if e.sequence is not None else (1 if e.segment else None))
    parts = [e.segment, seq, _num(e.field), code]
    return comp.join(parts)


def _err(e: HL7Error, fs: str, enc: str, comp: str) -> str:
    seq = _num(e.sequence if e.sequence is not None else (1 if e.segment else None))
    location = ""
    if e.segment:
        # ERL: segment ^ sequence ^ field position ^ field repetition ^ component ^ sub-component
        erl = [e.segment, seq, _num(e.field), _num(e.repetition), _num(e.component)]
        location = comp.join(erl).rstrip(comp)
    code = comp.join([e.code, escape(TABLE_0357.get(e.code, ""), fs, enc), "HL70357"])
    severity = e.severity if e.severity in ("E", "W", "I", "F") else "E"
    # ERR-1 (deprecated) empty, ERR-2 location, ERR-3 code, ERR-4 severity, ERR-5..7 empty, ERR-8 user message
    return fs.join(["ERR", "", location, code, severity, "", "", "", escape(_clip(e.message), fs, enc)])


def ack_code_of(ack: str | bytes) -> str:
    """MSA-1 of an ACK (for logs, tests and the replay summary); '' when absent."""
    text = ack.decode("utf-8", "replace") if isinstance(ack, bytes) else ack
    for segment in text.replace("\n", "\r").split("\r"):
        if segment.startswith("MSA") and len(segment) > 4:
            return segment.split(segment[3])[1] if len(segment.split(segment[3])) > 1 else ""
    return ""
