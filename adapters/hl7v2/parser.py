"""A fast HL7 v2 ER7 tokenizer: ``parse(text) -> Message``.

Why not hl7apy on the hot path: it builds a full object tree and validates as it goes (≈40 ms for a
12-OBX ORU on this machine); ingest needs well under a millisecond. This module only splits
segments and fields eagerly; repetitions, components and subcomponents are split, and escape
sequences decoded, when a converter reads them. Structure validation against an HL7 version is
``adapters.hl7v2.structure.validate_structure`` (hl7apy, on demand).

Numbering follows HL7: ``Segment.field(n)`` is sequence n (for MSH, MSH-1 is the field separator
and MSH-2 the encoding characters), components and subcomponents count from 1, repetitions from 0
(``rep=0`` is the first). ``Segment.value`` returns unescaped text; the HL7 null ``""`` reads as
empty. Accepted segment separators: CR, LF, CRLF and any mix; a leading BOM is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from adapters.hl7v2.charsets import codec_for
from adapters.hl7v2.control_id import content_control_id, keyed_control_id
from adapters.hl7v2.errors import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    HL7Error,
)
from adapters.hl7v2.escapes import Encoding, unescape

__all__ = ["Encoding", "Message", "MSH", "Repetition", "Segment", "parse", "iter_messages", "parse_header"]

_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}\Z")
# C0 controls other than TAB, LF, CR: binary garbage or MLLP framing left in the text
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BATCH_SEGMENTS = frozenset({"FHS", "BHS", "BTS", "FTS"})
_NULL = '""'


class Repetition:
    """One repetition of a field: components (1-based) and their subcomponents (1-based)."""

    __slots__ = ("raw", "_enc", "_comps", "_values")

    def __init__(self, raw: str, enc: Encoding) -> None:
        self.raw = raw
        self._enc = enc
        self._comps: list[str] | None = None
        self._values: list[str] | None = None  # unescaped first subcomponents, built on first comp()

    def _components(self) -> list[str]:
        if self._comps is None:
            self._comps = self.raw.split(self._enc.component)
        return self._comps

    def _first_subcomponents(self) -> list[str]:
        """Unescaped first subcomponent of every component, computed once: converters read
        several components of the same repetition (CWE code, text, system, alternates)."""
        enc = self._enc
        sub_sep, esc = enc.subcomponent, enc.escape
        values = []
        for text in self._components():
            if sub_sep in text:
                text = text[: text.index(sub_sep)]
            if text == _NULL:
                text = ""
            elif esc and esc in text:
                text = unescape(text, enc)
            values.append(text)
        self._values = values
        return values

    def comp(self, comp: int = 1, sub: int = 1) -> str:
        """Unescaped value of component ``comp``, subcomponent ``sub`` ('' when absent or null)."""
        if sub == 1:
            values = self._values
            if values is None:
                values = self._first_subcomponents()
            return values[comp - 1] if 0 < comp <= len(values) else ""
        comps = self._components()
        if comp < 1 or comp > len(comps):
            return ""
        text = comps[comp - 1]
        if self._enc.subcomponent in text:
            subs = text.split(self._enc.subcomponent)
            if sub < 1 or sub > len(subs):
                return ""
            text = subs[sub - 1]
        else:
            return ""
        if text == _NULL:
            return ""
        return unescape(text, self._enc)

    def subs(self, comp: int) -> list[str]:
        """All subcomponents of component ``comp``, unescaped."""
        comps = self._components()
        if comp < 1 or comp > len(comps):
            return []
        return [unescape(s, self._enc) for s in comps[comp - 1].split(self._enc.subcomponent)]

    def components(self) -> list[str]:
        """All components, unescaped (first subcomponent of each)."""
        return [self.comp(i) for i in range(1, len(self._components()) + 1)]

    def text(self) -> str:
        """The whole repetition unescaped with delimiters kept (for free text such as TX/FT)."""
        return "" if self.raw == _NULL else unescape(self.raw, self._enc)

    def __len__(self) -> int:
        return len(self._components())

    def __bool__(self) -> bool:
        raw = self.raw
        if not raw or raw == _NULL:
            return False
        enc = self._enc
        return bool(raw.strip(enc.component + enc.subcomponent))

    def __repr__(self) -> str:
        return f"Repetition({self.raw!r})"


class Segment:
    """One segment: ``fields[n]`` is the raw text of sequence n; ``fields[0]`` is the name."""

    __slots__ = ("name", "fields", "enc", "sequence", "position", "_reps")

    def __init__(self, fields: list[str], enc: Encoding, sequence: int = 1, position: int = 0) -> None:
        self.name = fields[0]
        self.fields = fields
        self.enc = enc
        self.sequence = sequence  # 1-based occurrence of this segment name in the message (ERR-2.2)
        self.position = position  # 0-based index among the message's segments
        # converters read the same few fields many times (OBX-3/5 by routing, keys, values):
        # split a field into repetitions once per segment, on first access
        self._reps: dict[int, list[Repetition]] = {}

    def field(self, n: int) -> str:
        """Raw (still escaped) text of field ``n``; '' when absent."""
        fields = self.fields
        return fields[n] if 0 < n < len(fields) else ""

    def __len__(self) -> int:
        """Number of the last field present (HL7 sequence)."""
        return len(self.fields) - 1

    def has(self, n: int) -> bool:
        raw = self.field(n)
        return bool(raw) and raw != _NULL

    def reps(self, n: int) -> list[Repetition]:
        """The repetitions of field ``n`` (empty list when the field is empty or null).

        The list is cached on the segment and shared between callers: treat it as read-only."""
        cached = self._reps.get(n)
        if cached is not None:
            return cached
        fields = self.fields
        raw = fields[n] if 0 < n < len(fields) else ""
        enc = self.enc
        if not raw or raw == _NULL:
            reps: list[Repetition] = []
        elif self.name == "MSH" and n <= 2:
            reps = [Repetition(raw, _LITERAL)]
        elif enc.repetition not in raw:
            reps = [Repetition(raw, enc)]
        else:
            reps = [Repetition(r, enc) for r in raw.split(enc.repetition)]
        self._reps[n] = reps
        return reps

    def rep(self, n: int, rep: int = 0) -> Repetition:
        reps = self._reps.get(n)
        if reps is None:
            reps = self.reps(n)
        return reps[rep] if 0 <= rep < len(reps) else Repetition("", self.enc)

    def value(self, n: int, rep: int = 0, comp: int = 1, sub: int = 1) -> str:
        """Unescaped value at field ``n``, repetition ``rep`` (0-based), component, subcomponent."""
        fields = self.fields
        if n <= 0 or n >= len(fields):
            return ""
        raw = fields[n]
        if not raw:
            return ""
        if self.name == "MSH" and n <= 2:
            return raw if rep == 0 and comp == 1 and sub == 1 else ""
        enc = self.enc
        if enc.repetition in raw:
            parts = raw.split(enc.repetition)
            if rep >= len(parts):
                return ""
            raw = parts[rep]
        elif rep:
            return ""
        if enc.component in raw:
            parts = raw.split(enc.component)
            if comp > len(parts):
                return ""
            raw = parts[comp - 1]
        elif comp != 1:
            return ""
        if enc.subcomponent in raw:
            parts = raw.split(enc.subcomponent)
            if sub > len(parts):
                return ""
            raw = parts[sub - 1]
        elif sub != 1:
            return ""
        if raw == _NULL:
            return ""
        return unescape(raw, enc) if enc.escape and enc.escape in raw else raw

    def error(
        self,
        message: str,
        field: int | None = None,
        component: int | None = None,
        *,
        code: str = DATA_TYPE_ERROR,
        severity: str = "E",
        ack_code: str = "AE",
        repetition: int | None = None,
    ) -> HL7Error:
        """An ``HL7Error`` located at this segment occurrence (for ERR-2; ``repetition``: 1-based, when
        not the first)."""
        return HL7Error(
            message,
            segment=self.name,
            sequence=self.sequence,
            field=field,
            component=component,
            code=code,
            severity=severity,
            ack_code=ack_code,
            repetition=repetition,
        )

    def __repr__(self) -> str:
        return f"Segment({self.enc.field.join(self.fields[:1] + self.fields[2:] if self.name == 'MSH' else self.fields)!r})"


_LITERAL = Encoding(component="\x00c", repetition="\x00r", escape="", subcomponent="\x00s")


class MSH(Segment):
    """The message header, with named accessors for the fields every component needs."""

    __slots__ = ()

    @property
    def message_type(self) -> str:
        return self.value(9, comp=1)

    @property
    def trigger_event(self) -> str:
        return self.value(9, comp=2)

    @property
    def structure(self) -> str:
        """MSH-9.3 when sent, else ``TYPE_EVENT`` (the v2.3 convention)."""
        explicit = self.value(9, comp=3)
        if explicit:
            return explicit
        event = self.trigger_event
        return f"{self.message_type}_{event}" if event else self.message_type

    @property
    def control_id(self) -> str:
        return self.value(10)

    @property
    def processing_id(self) -> str:
        return self.value(11)

    @property
    def version(self) -> str:
        return self.value(12)

    @property
    def sending_application(self) -> str:
        return self.value(3)

    @property
    def application_id(self) -> str:
        """MSH-3.1 (namespace id), else MSH-3.2 (universal id), trimmed: the sending application as
        the message store keys it (``header.Header.application_code``, read there from the raw bytes),
        so a conversion's application and a stored message's compare equal."""
        return (self.value(3) or self.value(3, comp=2)).strip()

    @property
    def sending_facility(self) -> str:
        """MSH-4.1, the namespace id huren matches against ``institutions.yaml`` codes."""
        return self.value(4)

    @property
    def receiving_application(self) -> str:
        return self.value(5)

    @property
    def receiving_facility(self) -> str:
        return self.value(6)

    @property
    def timestamp(self) -> str:
        return self.value(7)

    @property
    def charset(self) -> str:
        return self.value(18)


class Message:
    """A parsed message: its segments in order, with lookup by name."""

    __slots__ = ("segments", "encoding", "_by_name", "derived_control_id")

    def __init__(self, segments: list[Segment], encoding: Encoding, *, derived_control_id: bool = False) -> None:
        self.segments = segments
        self.encoding = encoding
        # MSH-10 was empty: ``msh.control_id`` is ``control_id.content_control_id`` of the text
        self.derived_control_id = derived_control_id
        by_name: dict[str, list[Segment]] = {}
        for seg in segments:
            by_name.setdefault(seg.name, []).append(seg)
        self._by_name = by_name

    @property
    def msh(self) -> MSH:
        return self.segments[0]  # type: ignore[return-value]

    def get(self, name: str) -> Segment | None:
        found = self._by_name.get(name)
        return found[0] if found else None

    def all(self, name: str) -> list[Segment]:
        return list(self._by_name.get(name, ()))

    def names(self) -> list[str]:
        return [s.name for s in self.segments]

    @property
    def by_name(self) -> Mapping[str, list[Segment]]:
        """Each segment id in the order of its first occurrence, with its segments (not a copy: read only)."""
        return self._by_name

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    def __len__(self) -> int:
        return len(self.segments)

    def __repr__(self) -> str:
        return f"Message({self.msh.structure} {self.msh.control_id!r}, {len(self.segments)} segments)"


def _split_lines(text: str) -> list[str]:
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    return [line for line in text.split("\r") if line and not line.isspace()]


# MSH-2 as senders that build messages in Java, JSON or C string literals sometimes emit it: the
# escape character written twice ("^~\\\\&"). Read literally it declares the backslash as both escape
# and subcomponent separator, which no message can mean; collapsed it is the recommended set.
DOUBLED_ESCAPE_MSH2 = "^~\\\\&"
STANDARD_MSH2 = "^~\\&"


def encoding_chars(msh2: str, fsep: str) -> str | None:
    """The encoding characters to read a message with, from MSH-2; None when unusable (an AR).

    MSH-2 must be 2 to 5 distinct non-alphanumeric characters, none of them the field separator.
    The one repair: the doubled-escape artefact ``^~\\\\&`` is read as ``^~\\&`` (the caller reports
    it as a warning: ``encoding_repaired``). Any other invalid MSH-2 stays refused, because guessing
    delimiters could split every field of the message wrongly and silently."""
    if msh2 == DOUBLED_ESCAPE_MSH2 and fsep not in STANDARD_MSH2:
        return STANDARD_MSH2
    chars = fsep + msh2
    if (
        not 2 <= len(msh2) <= 5
        or len(set(chars)) != len(chars)
        or any(c.isalnum() or c.isspace() or not c.isprintable() for c in msh2)
    ):
        return None
    return msh2


def encoding_repaired(msh: MSH) -> bool:
    """True when MSH-2 as sent is not what the message was read with (see ``encoding_chars``)."""
    return len(msh.fields) > 2 and msh.fields[2] != msh.enc.msh2


def _encoding_from(line: str, lineno: int = 1, override: str = "") -> tuple[Encoding, list[str]]:
    """Read MSH-1/MSH-2 from an MSH line and split it into fields (MSH-1 inserted). ``override``:
    the set the site says the sender's bytes are in (``senders.yaml`` ``charsets``), which its
    ``\\X..\\`` escapes are in too -- read in MSH-18's Latin-1 they were mojibake still (review of the
    nineteenth round)."""
    if len(line) < 8 or not line.startswith("MSH"):
        raise HL7Error(
            "message must start with an MSH segment (MSH|^~\\&|...)",
            segment="MSH",
            sequence=1,
            code=SEGMENT_SEQUENCE_ERROR,
            ack_code="AR",
        )
    fsep = line[3]
    if fsep.isalnum() or fsep.isspace():
        raise HL7Error(
            f"MSH-1 field separator {fsep!r} is not a valid delimiter",
            segment="MSH",
            sequence=1,
            field=1,
            code=DATA_TYPE_ERROR,
            ack_code="AR",
        )
    end = line.find(fsep, 4)
    msh2 = line[4:] if end < 0 else line[4:end]
    fields = line.split(fsep)
    fields.insert(1, fsep)
    # a sender's delimiters and MSH-18 are the same in every message it sends: the Encoding read
    # from them (frozen, so one object serves every message) is looked up instead of checked and
    # built again (~1.5 us a message); only usable ones are kept, an unusable MSH-2 is refused
    # below each time
    memo = (fsep, msh2, override or (fields[18] if len(fields) > 18 else ""))
    known = _ENCODINGS.get(memo)
    if known is not None:
        return known, fields
    usable = encoding_chars(msh2, fsep)
    if usable is None:
        raise HL7Error(
            f"MSH-2 encoding characters {msh2!r} are invalid: need 2-5 distinct non-alphanumeric "
            "characters (component, repetition, escape, subcomponent[, truncation])",
            segment="MSH",
            sequence=1,
            field=2,
            code=DATA_TYPE_ERROR,
            ack_code="AR",
        )
    msh2 = usable
    comp = msh2[0]
    repetition = msh2[1] if len(msh2) > 1 else "\x00r"
    esc = msh2[2] if len(msh2) > 2 else ""
    sub = msh2[3] if len(msh2) > 3 else "\x00s"
    trunc = msh2[4] if len(msh2) > 4 else ""
    charset = "utf-8"
    if override:
        charset = codec_for(override) or "utf-8"
    elif len(fields) > 18 and fields[18]:
        charset = codec_for(fields[18].split(repetition)[0]) or "utf-8"
    enc = Encoding(fsep, comp, repetition, esc, sub, trunc, charset)
    if len(_ENCODINGS) >= _ENCODINGS_LIMIT:
        _ENCODINGS.clear()
    _ENCODINGS[memo] = enc
    return enc, fields


# (MSH-1, MSH-2 as sent, MSH-18 as sent) -> the Encoding a message with them is read with
_ENCODINGS: dict[tuple[str, str, str], Encoding] = {}
_ENCODINGS_LIMIT = 1024


def parse_header(text: str) -> MSH | None:
    """Best-effort MSH of a possibly broken message, to address an ACK; None if there is none."""
    try:
        lines = _split_lines(text)
        for line in lines:
            if line.startswith("MSH"):
                enc, fields = _encoding_from(line)
                return MSH(fields, enc)
    except HL7Error:
        return None
    return None


def parse(text: str, charset: str = "") -> Message:
    """Tokenize one ER7 message. Raises ``HL7Error`` (AR for a bad envelope, AE otherwise).
    ``charset``: the set the message's text was read in (``Header.read_in``: the sender's set the site
    names, else the codec the bytes were decoded with), for ``\\X..\\`` escapes instead of MSH-18's."""
    if not text or not text.strip():
        raise HL7Error("empty message", segment="MSH", sequence=1, code=SEGMENT_SEQUENCE_ERROR, ack_code="AR")
    lines = _split_lines(text)
    if lines and lines[0][:3] in _BATCH_SEGMENTS:
        raise HL7Error(
            f"{lines[0][:3]} batch envelope where one message was expected: send the batch whole where batches are "
            "taken (MLLP, POST /hl7v2), or its messages one by one",
            segment=lines[0][:3],
            sequence=1,
            code=SEGMENT_SEQUENCE_ERROR,
            ack_code="AR",
        )
    enc, msh_fields = _encoding_from(lines[0], override=charset)
    bad = _CONTROL.search(text)
    if bad:
        raise HL7Error(
            f"binary data in message (control character 0x{ord(bad.group()):02X} at offset {bad.start()})",
            segment="MSH",
            sequence=1,
            code=DATA_TYPE_ERROR,
            ack_code="AR",
        )
    msh = MSH(msh_fields, enc, 1, 0)
    for n, what in ((9, "message type"), (12, "version id")):
        if not msh.value(n):
            raise HL7Error(
                f"MSH-{n} ({what}) is required",
                segment="MSH",
                sequence=1,
                field=n,
                code=REQUIRED_FIELD_MISSING,
                ack_code="AR",
            )
    derived = not keyed_control_id(msh.field(10))  # as the message store reads it: blank is empty
    if derived:  # known by its content instead (``control_id``); the converter warns at MSH-10
        msh_fields.extend([""] * (11 - len(msh_fields)))
        msh_fields[10] = content_control_id(text)
    segments: list[Segment] = [msh]
    counts: dict[str, int] = {"MSH": 1}
    fsep = enc.field
    names = _NAMES
    for position, line in enumerate(lines[1:], start=1):
        fields = line.split(fsep)
        name = fields[0]
        if name not in names and not _valid_name(name):
            # ERR-2 (ERL) names a segment id and its occurrence: the line is no segment, so the location
            # is the segment it follows (a line break inside one of its fields, most often), never the
            # line's first three characters and its position ("lin^5", hl7conf27; hl7left28)
            shown = name[:20]
            before = segments[-1]
            raise HL7Error(
                f"line {position + 1} (after {before.name} {before.sequence}) has an invalid segment id "
                f"{shown!r} (expected three upper-case letters/digits followed by {fsep!r}); a line break "
                f"inside a field of {before.name}? send it escaped (\\.br\\) or as a repetition",
                segment=before.name,
                sequence=before.sequence,
                code=SEGMENT_SEQUENCE_ERROR,
            )
        if name == "MSH":
            raise HL7Error(
                f"segment {position + 1} starts a second message: send one message at a time, or wrap several in "
                "BHS/BTS (FHS/FTS) as a batch",
                segment="MSH",
                sequence=counts["MSH"] + 1,
                code=SEGMENT_SEQUENCE_ERROR,
            )
        seq = counts.get(name, 0) + 1
        counts[name] = seq
        segments.append(Segment(fields, enc, seq, position))
    return Message(segments, enc, derived_control_id=derived)


# segment ids found valid (``_SEGMENT_NAME``): a set lookup instead of a regular expression per
# segment; bounded by the grammar itself (26 x 36 x 36 ids)
_NAMES: set[str] = set()


def _valid_name(name: str) -> bool:
    if not _SEGMENT_NAME.match(name):
        return False
    _NAMES.add(name)
    return True


def iter_messages(text: str) -> Iterator[str]:
    """Split a file or batch (FHS/BHS/BTS/FTS envelopes, any separators) into message texts.

    Each message is returned with CR separators; batch envelope segments are dropped. No parsing
    happens here, so one broken message does not hide the others.
    """
    current: list[str] = []
    for line in _split_lines(text):
        head = line[:3]
        if head in _BATCH_SEGMENTS:
            if current:
                yield "\r".join(current) + "\r"
                current = []
            continue
        if head == "MSH" and current:
            yield "\r".join(current) + "\r"
            current = []
        current.append(line)
    if current:
        yield "\r".join(current) + "\r"
