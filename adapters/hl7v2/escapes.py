"""HL7 v2 escape sequences (v2.5.1 chapter 2.7), decoded on access and encoded for output.

Values are stored in their wire form and unescaped only when a converter asks for them, so the
hot path never pays for fields nobody reads. Decoding follows the standard:

* ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` → the field, component, subcomponent, repetition and escape characters
  declared in MSH-1/MSH-2 (not the defaults: a sender may declare others);
* ``\\Xhh..\\`` → the bytes ``hh..`` decoded in the message's character set (MSH-18); bytes that are
  not valid in it are kept as the escape sequence sent (``\\XD5C5\\`` in a UTF-8 message was stored
  as two replacement characters, eighteenth round: garbled, and the sent bytes lost);
* ``\\H\\`` / ``\\N\\`` (highlighting on/off) are dropped: FHIR strings carry no highlighting;
* ``\\.br\\`` and ``\\.sp\\`` (FT formatting) become line breaks, ``\\.sp n\\`` n of them; ``\\.ce\\`` ends the
  line (a centred line is a line of its own) and ``\\.sk n\\`` is n spaces (``Na\\.sk3\\140`` was ``Na140``:
  words run together, twenty-fifth round); the other formatting commands (``.fi .nf .in .ti``) are
  dropped because they only affect layout;
* anything else (``\\Cxxyy\\``, ``\\Mxxyyzz\\``, ``\\Zxx\\``, an unterminated escape) is kept literally,
  as the standard asks receivers to ignore, not reject, sequences they do not understand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as _field

_FORMATTING_BREAKS = {".br", ".sp"}
_MOST_LINES_SKIPPED = 99  # ``\.sp n\`` beyond this is kept as sent (``_skip_lines``)
_FORMATTING_DROPPED = (".fi", ".nf", ".in", ".ti")


@dataclass(frozen=True, slots=True)
class Encoding:
    """The delimiters of one message, from MSH-1 and MSH-2."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""  # v2.7+: fifth MSH-2 character, e.g. '#'
    charset: str = "utf-8"  # Python codec for \X..\ sequences, from MSH-18
    # every delimiter and the charset, for the converters' memo keys: what a raw text means
    # depends on all of them (``\F\`` decodes to the field separator too), so a key that names
    # them one by one can leave one out -- this one owner cannot
    key: tuple[str, ...] = _field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.field, self.component, self.repetition, self.escape,
                                         self.subcomponent, self.truncation, self.charset))

    @property
    def msh2(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation


DEFAULT_ENCODING = Encoding()


def unescape(text: str, enc: Encoding = DEFAULT_ENCODING) -> str:
    """Decode the escape sequences of one component or subcomponent value."""
    esc = enc.escape
    if not esc or esc not in text:
        return text
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        j = text.find(esc, i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        k = text.find(esc, j + 1)
        if k < 0:  # unterminated: keep literally
            out.append(text[j:])
            break
        seq = text[j + 1 : k]
        decoded = _decode_sequence(seq, enc)
        if decoded is None and seq[:1] == "X" and text.startswith(esc + "X", k + 1):
            i = _hex_run(text, j, enc, out)  # a character escaped byte by byte, or hex data kept as sent
            continue
        if decoded is None:  # not understood: keep literally, including both escape characters
            out.append(text[j : k + 1])
        else:
            out.append(decoded)
        i = k + 1
    return "".join(out)


def _hex_run(text: str, start: int, enc: Encoding, out: list[str]) -> int:
    """Adjacent ``\\Xhh\\`` sequences from ``start`` (the first of which alone reads as nothing) read
    as one byte string: its text appended to ``out``, or, when the run does not read as a whole, each
    sequence on its own (``_decode_sequence``: its text, else kept as sent); returns where the run
    ends. Senders that escape byte by byte split a character: ``\\XE5\\\\XBC\\\\XA0\\`` is one UTF-8
    ``张``, each of its three bytes alone none, so the name was stored as the escape text
    (twenty-seventh round, hl7conf27).

    The run is found once and decoded once, then each of its sequences at most once: linear in its
    length. Kept sequence by sequence and tried again as a run from the next one (hl7conf27), a run
    that never reads (binary, or GB 18030 escaped byte by byte in a UTF-8 message) re-read the whole
    rest at every sequence: 8,000 sequences (40 KB) took 109 s on the one ingest thread (review of the
    twenty-seventh round). A run that does not read as a whole is not searched for the parts that
    would: its sequences that read alone are text, the others kept as sent (never a guess)."""
    esc = enc.escape
    sequences: list[str] = []  # each sequence's hex digits
    spans: list[tuple[int, int]] = []  # each sequence's text, escape characters included
    at = start
    while text.startswith(esc + "X", at):
        close = text.find(esc, at + 1)
        if close < 0:
            break
        sequences.append(text[at + 2 : close])
        spans.append((at, close + 1))
        at = close + 1
    if all(s and len(s) % 2 == 0 for s in sequences):
        whole = _hex_text("".join(sequences), enc)
        if whole is not None:
            out.append(whole)
            return at
    for (begin, end), digits in zip(spans, sequences, strict=True):
        one = _decode_sequence("X" + digits, enc)
        out.append(text[begin:end] if one is None else one)
    return at


def _hex_text(hexdigits: str, enc: Encoding) -> str | None:
    """The text of hex data in the message's character set; None (kept as sent) when the bytes are
    not valid in it, or when they hold a control character a FHIR string cannot (R4 string: none
    below U+0020 but TAB, LF, CR) and the parser refuses as raw bytes (``\\X00\\`` in a name was
    stored as a NUL in ``Patient.name``, twenty-seventh round)."""
    try:
        raw = bytes.fromhex(hexdigits)
    except ValueError:
        return None
    try:  # bytes the declared character set cannot read are kept as sent, never as U+FFFD
        decoded = raw.decode(enc.charset)
    except (UnicodeDecodeError, LookupError):
        return None
    if _UNSTORABLE.search(decoded):
        return None
    return decoded


# what a decoded ``\X..\`` may not hold: the C0 controls but TAB, LF, CR, and DEL (``parser._CONTROL``)
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _decode_sequence(seq: str, enc: Encoding) -> str | None:
    if len(seq) == 1:
        c = seq
        if c == "F":
            return enc.field
        if c == "S":
            return enc.component
        if c == "T":
            return enc.subcomponent
        if c == "R":
            return enc.repetition
        if c == "E":
            return enc.escape
        if c == "P":
            return enc.truncation or None
        if c in ("H", "N"):
            return ""
        return None
    if not seq:
        return None
    if seq[0] == "X":
        hexdigits = seq[1:]
        if len(hexdigits) % 2 or not hexdigits:
            return None
        return _hex_text(hexdigits, enc)
    if seq[0] == ".":
        if seq in _FORMATTING_BREAKS:
            return "\n"
        if seq.startswith(".sp"):
            return _skip_lines(seq[3:])
        if seq == ".ce":  # "end current output line and center the next line": the line ends
            return "\n"
        if seq.startswith(".sk"):  # "skip <number> spaces to the right": the spaces, or kept as sent
            count = _count(seq[3:])
            return None if count is None else " " * max(count, 1)
        if seq.startswith(_FORMATTING_DROPPED):
            return ""
    return None


def _skip_lines(argument: str) -> str | None:
    """``\\.sp <number>\\``: "end the current output line and skip <number> vertical spaces" --
    that many line breaks (HAPI's formatted-text reading too; ``0`` only ends the line); the number
    may follow a space or a ``+``. It was one break whatever the number, so a report's blank lines
    between its sections were lost (nineteenth round). A number that is not a small integer
    (``-1``, ``0x3``, ``99999999``: no report skips that far, and a sender's typo must not blow the
    text up) is not understood: kept as sent."""
    count = _count(argument)
    return None if count is None else "\n" * max(count, 1)


def _count(argument: str) -> int | None:
    """The number of a ``\\.sp n\\`` or ``\\.sk n\\`` (absent: 1; after a space or a ``+``), or None
    when it is not a small integer (``-1``, ``0x3``, ``99999999``: kept as sent)."""
    number = argument.strip().removeprefix("+") or "1"
    if not number.isascii() or not number.isdigit() or int(number) > _MOST_LINES_SKIPPED:
        return None
    return int(number)


def escape(text: str, enc: Encoding = DEFAULT_ENCODING) -> str:
    """Encode a value for a component: delimiters become escape sequences, line breaks ``\\.br\\``."""
    esc = enc.escape
    specials = (esc, enc.field, enc.component, enc.subcomponent, enc.repetition, enc.truncation, "\r", "\n")
    if not any(c and c in text for c in specials):
        return text
    out: list[str] = []
    table = {
        esc: f"{esc}E{esc}",
        enc.field: f"{esc}F{esc}",
        enc.component: f"{esc}S{esc}",
        enc.subcomponent: f"{esc}T{esc}",
        enc.repetition: f"{esc}R{esc}",
        "\n": f"{esc}.br{esc}",
    }
    if enc.truncation:
        table[enc.truncation] = f"{esc}P{esc}"
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for ch in text:
        out.append(table.get(ch, ch))
    return "".join(out)
