"""Robust MSH extraction: enough of the header to address an ACK, even from a broken message.

The full parser (``adapters.hl7v2.parser``) may refuse a message; the sender still deserves an
ACK that names its own application, facility, control id and version. This module reads only
the MSH segment, tolerates leading garbage, a byte-order mark, CR / LF / CRLF segment ends and
a missing trailer, and records what is wrong as ``HL7Error``s located in MSH (so the ACK's ERR
segment says exactly which field is bad) instead of raising.

It reads MSH-18 (its first repetition and the later ones) and hands the bytes to
``adapters.hl7v2.charsets.decode``, which decides how they become text; ``decode`` is re-exported
here for the callers that hold a header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from adapters.hl7v2.charsets import (
    GB,
    canonical,
    codec_for,
    declares_ascii,
    decode,
    gb_fallback_doubt,
    gb_misread,
    misread,
    single_byte,
    strip_bom,
    undeclared_gb,
)
from adapters.hl7v2.control_id import PREFIX, content_control_id, keyed_control_id
from adapters.hl7v2.errors import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    TABLE_VALUE_NOT_FOUND,
    HL7Error,
)
from adapters.hl7v2.parser import encoding_chars
from adapters.hl7v2.senders import sender_charset, sender_institution
from adapters.hl7v2.tables import allowed_structure

DEFAULT_FIELD_SEP = "|"
DEFAULT_ENCODING_CHARS = "^~\\&"

@dataclass
class Header:
    """The MSH fields an ACK needs, raw (still in the sender's delimiters) so they can be echoed."""

    field_sep: str = DEFAULT_FIELD_SEP
    encoding_chars: str = DEFAULT_ENCODING_CHARS
    sending_application: str = ""  # MSH-3
    sending_facility: str = ""  # MSH-4
    receiving_application: str = ""  # MSH-5
    receiving_facility: str = ""  # MSH-6
    timestamp: str = ""  # MSH-7
    message_type: str = ""  # MSH-9 as sent
    control_id: str = ""  # MSH-10, or ``content_control_id`` of the text when MSH-10 is empty
    sent_control_id: str = ""  # MSH-10 as sent, echoed in MSA-2 (empty when the sender left it so)
    processing_id: str = ""  # MSH-11
    version: str = ""  # MSH-12.1
    accept_ack_type: str = ""  # MSH-15
    application_ack_type: str = ""  # MSH-16
    charset: str = ""  # MSH-18 (first repetition)
    extensions: tuple[str, ...] = ()  # MSH-18 later repetitions (sets reached by ISO 2022 escapes)
    codec: str = "utf-8"  # how the message bytes were decoded
    found: bool = False  # an MSH segment was found at all
    problems: list[HL7Error] = field(default_factory=list)
    # what the ACK of a message taken tells beside its conversion's warnings, and the stored record keeps:
    # text before MSH (``_before_msh``), MSH-11 read as P (``processing.judge``, set by ingest)
    notes: list[HL7Error] = field(default_factory=list)
    institution: str = ""  # the sender as resolved by ``senders.sender_institution`` (else MSH-4.1)
    text_fields: bool = False  # MSH had non-ASCII bytes: the fields above are text in ``codec``
    override: str = ""  # the set the site says this sender's bytes are in (``senders.sender_charset``)
    # the set the transport declared (``charset`` of POST /hl7v2's Content-Type, kept in the peer string
    # as ``http-charset=``): read as MSH-18's declaration when MSH-18 is empty (``extract_header``)
    transport: str = ""

    @property
    def component_sep(self) -> str:
        return self.encoding_chars[0] if self.encoding_chars else "^"

    def _component(self, value: str, index: int) -> str:
        parts = value.split(self.component_sep)
        return parts[index] if index < len(parts) else ""

    @property
    def facility_code(self) -> str:
        """The key of the sending institution in ``site.institutions``: MSH-4.1 (namespace id), or
        MSH-4.2 (universal id) when a sender names itself only by that, unless the site's sender
        table resolved it otherwise (``institution``)."""
        return self.institution or (self._component(self.sending_facility, 0).strip()
                                    or self._component(self.sending_facility, 1).strip())

    @property
    def application_code(self) -> str:
        """The sending application, part of the idempotency key (MSH-10 is unique per sending
        system, MSH-3 + MSH-4): MSH-3.1 (namespace id), else MSH-3.2 (universal id), trimmed,
        in the message's character set; MSH-3.3 is not read; empty when MSH-3 is."""
        return self._hd_id(self.sending_application)

    @property
    def application_hd(self) -> tuple[str, str, str]:
        """The sending application (MSH-3) as sent: its three components, each decoded and trimmed as
        ``application_code`` reads them -- what a registrar is kept by with its kind
        (``adapters.convert.applications.registrar``; forty-fourth round, low44c)."""
        parts = [self._decoded(self._component(self.sending_application, i)).strip() for i in range(3)]
        return parts[0], parts[1], parts[2]

    def _hd_id(self, hd: str) -> str:
        """The one rule MSH-3 and MSH-4 are matched by: HD.1 (namespace id), else HD.2 (universal
        id), decoded in the message's character set and then trimmed (trimmed before, a UTF-8
        character ending in byte 0x85 or 0xA0 lost it, and a GB 18030 ideographic space stayed);
        case kept: HL7 ids are case-sensitive, and the site's institutions are matched exactly."""
        return self._decoded(self._component(hd, 0)).strip() or self._decoded(self._component(hd, 1)).strip()

    def resolve_sender(self, peer: str, site: Any) -> None:
        """Set ``institution`` from the site's sender table (MSH-4 aliases, MSH-3, the listener)."""
        if not self.found:
            return
        self.institution = ""
        self.institution = sender_institution(
            self._hd_id(self.sending_facility), self._decoded(self._component(self.sending_application, 0)), peer, site
        )

    def _decoded(self, value: str) -> str:
        """An MSH field in the message's character set (MSH is read as latin-1 to find its delimiters)."""
        if self.text_fields or value.isascii():
            return value
        try:
            return value.encode("latin-1").decode(self.codec.rstrip("?"))
        except (UnicodeError, LookupError):
            return value

    @property
    def read_in(self) -> str:
        """The set the message's text was read in: the one the site names for the sender, else the codec
        ``charsets.decode`` read the bytes with (MSH-18's, or UTF-8 / GB 18030 when it declares none or
        its set cannot read them). Its ``\\X..\\`` hex data is in that set too (``parser.parse``): read
        in MSH-18's set, else UTF-8, the hex bytes of a GB 18030 message with no MSH-18 were kept as the
        escape text (``\\XC0EE\\`` for ``李``, review of the twenty-seventh round)."""
        return self.override or self.codec.rstrip("?")

    @property
    def message_code(self) -> str:
        return self._component(self.message_type, 0)

    @property
    def trigger_event(self) -> str:
        return self._component(self.message_type, 1)

    @property
    def message_structure(self) -> str:
        return self._component(self.message_type, 2)

    @property
    def addressable(self) -> bool:
        """True when the header is good enough to be the idempotency key (facility + control id)."""
        return self.found and not self.fatal and bool(self.control_id)

    def corrects(self, facility: str, control_id: str) -> bool:
        """True when this header may stand for the stored message (``facility``, ``control_id``)
        in a corrected copy: the same sender and MSH-10, or — for a message known by its content
        because MSH-10 was empty — MSH-10 still empty (a correction changes the content)."""
        if self.facility_code != facility:
            return False
        return self.control_id == control_id or (not self.sent_control_id and control_id.startswith(PREFIX))

    @property
    def fatal(self) -> bool:
        return any(p.ack_code == "AR" for p in self.problems)


def _from_v25(version: str) -> bool:
    """Whether MSH-12 names v2.5 or later (where MSH-7 and MSH-9.3 became required)."""
    return [int(p) for p in re.findall(r"\d+", version)[:2]] >= [2, 5]


def empty_timestamp(version: str, timestamp: str) -> HL7Error | None:
    """A warning for an empty MSH-7 (date/time of message) where the message's version requires it:
    R from v2.5 (optional in v2.3 to 2.4). The message is still converted -- nothing in it depends on
    MSH-7 -- and the sender is told (ERR 101, severity W, at MSH^1^7); accepted with no word before
    (hl7conf27; hl7left28). None when MSH-7 is sent or the version does not require it."""
    if timestamp.strip():
        return None
    if not _from_v25(version):
        return None
    return HL7Error(f"MSH-7 (date/time of message) is required in v{version} and empty; accepted, the "
                    "message's time unknown", segment="MSH", sequence=1, field=7, code=REQUIRED_FIELD_MISSING,
                    severity="W", ack_code="AA")


def structure_warning(version: str, message_type: str, event: str, sent: str,
                      event_structures: dict[str, str]) -> HL7Error | None:
    """A warning for MSH-9.3 (message structure): empty where the version requires it (R from v2.5), or
    naming a structure that is not the event's (``tables.allowed_structure``: the one huren reads it with,
    ``event_structures.yaml``, or its own where the version's table 0354 lists it, hl7fix28). The message is read by its event either way (``convert.template_for``), so it is converted;
    the sender is told at MSH^1^9^^3 (both accepted with no word before; hl7left28). None otherwise."""
    expected = event_structures.get(f"{message_type}_{event}") if event else None
    if sent:
        if allowed_structure(version, message_type, event, sent, expected):
            return None
        return HL7Error(f"MSH-9.3 (message structure) {sent!r} is not the structure of {message_type}^{event} "
                        f"(HL7 table 0354: {expected}); read as {expected}", segment="MSH", sequence=1, field=9,
                        component=3, code=TABLE_VALUE_NOT_FOUND, severity="W", ack_code="AA")
    if not _from_v25(version):
        return None
    read = f"; read as {expected}" if expected else ""
    return HL7Error(f"MSH-9.3 (message structure) is required in v{version} and empty{read}", segment="MSH",
                    sequence=1, field=9, component=3, code=REQUIRED_FIELD_MISSING, severity="W", ack_code="AA")


def msh_warnings(msh: Any, event_structures: dict[str, str]) -> list[HL7Error]:
    """What a converted message's MSH is told about, not refused for: MSH-7, MSH-9.3 (``convert.convert``
    warns them; ``msh`` is the parser's ``MSH``). MSH-11 is the envelope's (``processing.judge``, called
    by ingest: refused or read as P before any conversion; hl7mode29). Read from the raw fields (no
    escape belongs in these): through the MSH properties it cost ~4x as much (35 against 9 us on a
    machine loaded ~10x, where a no-op call took 0.39 us; about 1 us a message unloaded)."""
    fields = msh.fields
    count = len(fields)
    comp = msh.enc.component
    msh9 = fields[9].split(comp) if count > 9 else [""]
    version = fields[12].split(comp)[0].strip() if count > 12 else ""
    found = (empty_timestamp(version, fields[7] if count > 7 else ""),
             structure_warning(version, msh9[0].strip(), msh9[1].strip() if len(msh9) > 1 else "",
                               msh9[2].strip() if len(msh9) > 2 else "", event_structures))
    return [w for w in found if w is not None]


# bytes before MSH that carry nothing: blank lines, padding, MLLP block characters left in a body
_NOTHING = b"\r\n\t \x00\x0b\x1c"
_SEGMENT_ID = re.compile(rb"[\x00\t ]*([A-Z][A-Z0-9]{2})(.?)")
_MSH_START = re.compile(rb"MSH[!-/:-@\[-`{-~]")  # MSH then a printable delimiter (MSH-1)
# the segment begins a line (or the body): "MSH-10", "MSH:" in a stray line is text (rvhl7mode29 finding 2)
_MSH_LINE = re.compile(rb"[\r\n][\x00\t \x0b\x1c]*(MSH[!-/:-@\[-`{-~])")
_SHOWN = 40  # characters of the stray text shown back in ERR-8
_CONTROL_NAMES = {"\r": "<CR>", "\n": "<LF>", "\t": "<TAB>"}


def _before_msh(prefix: bytes, head: Header, fs: bytes) -> None:
    """What came before MSH. A message begins with MSH (v2.5.1 2.5.1, 2.6); an MLLP block holds one
    message and nothing else. Blank lines, NUL padding and MLLP block characters carry nothing: skipped
    with no word (a byte-order mark is removed before). A *segment* there (``EVN|...`` before ``MSH|...``)
    is a segment sequence error: data of a message the parser would leave out, so ``AE`` 100 (kept, not
    stored as clinical data). Other text (a banner, a file name, a stray line of a log) is no segment and
    no part of the message, whose segments from MSH on are whole: chapter 2 has a receiver ignore what it
    does not expect, so the message is taken, and the sender is told what was dropped (W 100 at MSH^1,
    the text shown in ERR-8): dropped with an ``AA`` and no word before (hl7fix28's review)."""
    if not prefix.strip(_NOTHING):
        return
    segment = next((m for line in re.split(rb"[\r\n]", prefix) if (m := _SEGMENT_ID.match(line))
                    and m.group(2) == fs), None)
    shown = prefix.strip(_NOTHING).decode("utf-8", "replace")
    shown = "".join(c if c.isprintable() else _CONTROL_NAMES.get(c, f"<0x{ord(c):02X}>") for c in shown[:_SHOWN]) + \
        ("..." if len(shown) > _SHOWN else "")
    if segment is not None:
        head.problems.append(HL7Error(
            f"segment {segment.group(1).decode()!r} comes before MSH: a message begins with MSH, and what "
            f"precedes it would be left out ({len(prefix)} bytes: '{shown}'); not stored", segment="MSH",
            sequence=1, code=SEGMENT_SEQUENCE_ERROR, ack_code="AE"))
        return
    head.notes.append(HL7Error(
        f"{len(prefix)} bytes before MSH are no segment of the message and were not read: '{shown}'",
        segment="MSH", sequence=1, code=SEGMENT_SEQUENCE_ERROR, severity="W", ack_code="AA"))


def _msh_error(text: str, field_no: int, code: str = DATA_TYPE_ERROR, ack: str = "AR") -> HL7Error:
    return HL7Error(text, segment="MSH", sequence=1, field=field_no, code=code, ack_code=ack)


_TRANSPORT = re.compile(r"(?:^|\s)http-charset=(\S+)")


def transport_charset(peer: str) -> str:
    """The ``charset`` the HTTP listener recorded in the peer string (``http-charset=GB18030``), else "".

    The peer string is kept with the raw message (``engine.messages``, the in-flight journal), so a
    replay or a recovery reads the bytes in the set HTTP declared, as the first reading did."""
    found = _TRANSPORT.search(peer) if "http-charset=" in peer else None
    return found.group(1) if found else ""


def with_transport_charset(peer: str, charset: str) -> str:
    """``peer`` with the transport's declared ``charset`` recorded (``transport_charset`` reads it)."""
    charset = "".join(c for c in charset.strip().strip('"') if c.isalnum() or c in "-_.:")
    return f"{peer} http-charset={charset}" if charset else peer


def read_message(raw: bytes, peer: str, site: Any) -> tuple[Header, str]:
    """The header, its sender resolved, and the message text, read in the character set the site
    says the sender's bytes are in (``senders.yaml`` ``charsets``) when it says one, else in the
    one MSH-18 declares, else in the one the transport declared (HTTP's ``charset``, recorded in
    ``peer``). What ingest and the listeners call for each message (a replay too, so a
    message refused for its bytes is read right once the site names its sender's set)."""
    transport = transport_charset(peer)
    head, text = extract_header(raw, transport=transport)
    head.resolve_sender(peer, site)
    if head.found and not (head.sending_facility.isascii() and head.sending_application.isascii()):
        table = (getattr(site, "tables", None) or {}).get("senders") or {}
        entry = (table.get("charsets") or {}).get(head.facility_code)
        if head.facility_code not in (getattr(site, "institutions", None) or {}) or isinstance(entry, dict):
            found = _named_in_own_set(raw, peer, site, table)
            if found is not None:
                return found
    override = sender_charset(head.facility_code, head.application_code, site) if head.found else ""
    if not override:
        return head, text
    head, text = extract_header(raw, override, transport=transport)
    head.resolve_sender(peer, site)
    return head, text


def _named_in_own_set(raw: bytes, peer: str, site: Any, table: Any) -> tuple[Header, str] | None:
    """A sender naming itself in Chinese (MSH-4 ``阜宁县中医院``, an alias the site ships; or an
    MSH-3 its institution's ``charsets`` entry is keyed by) in the set it really sends, under a
    declared Latin-1: read in MSH-18's set the name was mojibake and matched no alias, so the
    sender's ``charsets`` entry was never found and every message was refused AE (review of the
    nineteenth round). The header is read again in each set ``charsets`` names; the reading kept is
    the first that resolves to an institution whose own entry names that set (a name that only
    happens to read as some alias in a set its institution does not send in is not taken). None
    fits: None (MSH-18's reading stands)."""
    named: list[str] = []
    for entry in (table.get("charsets") or {}).values():
        for one in (entry.values() if isinstance(entry, dict) else (entry,)):
            if one and str(one).strip() not in named:
                named.append(str(one).strip())
    for charset in named:
        codec = codec_for(charset)
        if codec is None:
            continue
        again, read = extract_header(raw, charset)
        again.resolve_sender(peer, site)
        own = (table.get("charsets") or {}).get(again.facility_code)
        if isinstance(own, dict):  # the application's own key; ``"*"`` names no application
            own = own.get(again.application_code.strip())
        own = str(own).strip() if own else ""
        if own and canonical(codec_for(own) or own) == canonical(codec):
            if own != charset:  # the entry's own spelling, as a sender found directly would get
                again, read = extract_header(raw, own)
                again.resolve_sender(peer, site)
            return again, read
    return None


def extract_header(raw: bytes, override: str = "", *, transport: str = "") -> tuple[Header, str]:
    """Find and read MSH; returns the header and the decoded message text (from MSH on).

    Fatal problems (no MSH, unusable delimiters) carry ``ack_code='AR'``: such a message cannot
    be read, so it is refused; the ACK still echoes whatever was readable. An empty MSH-10 is not
    one of them: the message is known by its content (``control_id.content_control_id``).
    ``override``: the set the site says the sender's bytes are in (``read_message``), read instead
    of MSH-18's (a UTF-8 byte-order mark still outweighs both). ``transport``: the set the transport
    declared (HTTP ``charset``), taken as the declaration when MSH-18 is empty -- a GB 18030 body
    posted with ``charset=GB18030`` and no MSH-18 was refused (or read as UTF-8) although HTTP said
    its set (hl7conf27; hl7left28). MSH-18, when sent, is the message's own word and stands.
    """
    head = Header(override=override, transport=transport)
    body = strip_bom(raw)
    bom = len(body) < len(raw)  # a UTF-8 byte-order mark outweighs what MSH-18 declares
    start = body.find(b"MSH")
    if start > 0:  # text before MSH may itself hold "MSH" ("see MSH below", "MSH-10 resent"): the segment is
        # MSH and a delimiter at the start of a line; else (no line starts so) MSH and a delimiter anywhere
        line = None if body[:start].strip(_NOTHING) == b"" else _MSH_LINE.search(body)
        found = line if line is not None else _MSH_START.search(body)
        start = found.start(found.lastindex or 0) if found is not None else start
    if start < 0:
        text, head.codec = decode(body)
        head.problems.append(
            HL7Error("no MSH segment found: not an HL7 v2 message", segment="MSH", sequence=1,
                     code=REQUIRED_FIELD_MISSING, ack_code="AR")
        )
        return head, text
    head.found = True
    if start:
        _before_msh(body[:start], head, body[start + 3:start + 4])
    body = body[start:]
    # MSH itself is ASCII in every character set HL7 allows except UTF-16; latin-1 never fails.
    end = len(body)
    for sep in (b"\r", b"\n"):
        pos = body.find(sep)
        if 0 <= pos < end:
            end = pos
    msh = body[:end].decode("latin-1")
    if len(msh) < 4:
        head.problems.append(_msh_error("MSH segment is truncated: no field separator (MSH-1)", 1, REQUIRED_FIELD_MISSING))
        text, head.codec = decode(body)
        return head, text
    fs = msh[3]
    if fs.isalnum() or fs.isspace() or not fs.isprintable():
        head.problems.append(_msh_error(f"field separator {fs!r} is not a printable delimiter", 1))
        text, head.codec = decode(body)
        return head, text
    head.field_sep = fs
    fields = msh.split(fs)
    # fields[0] = "MSH", fields[1] = MSH-2, fields[n] = MSH-(n+1)
    enc = fields[1] if len(fields) > 1 else ""
    usable = encoding_chars(enc, fs)
    if usable is None or len(usable) not in (4, 5):  # the standard's four (five from v2.7)
        head.problems.append(_msh_error(
            f"encoding characters '{enc}' are invalid: expected 4 (or 5) distinct, "
            f"non-alphanumeric delimiters other than {fs!r}, such as ^~\\&", 2))
    else:
        head.encoding_chars = usable
    if not body[:end].isascii():  # split in the message's character set, not byte by byte
        split = _text_fields(body[:end], fs, fields, head.encoding_chars[1:2] or "~", bom, override, transport)
        if split is not None:
            fields, head.text_fields = split, True

    def get(n: int) -> str:
        return fields[n - 1] if len(fields) >= n else ""

    head.sending_application = get(3)
    head.sending_facility = get(4)
    head.receiving_application = get(5)
    head.receiving_facility = get(6)
    head.timestamp = get(7)
    head.message_type = get(9)
    head.control_id = head.sent_control_id = keyed_control_id(get(10))
    head.processing_id = get(11)
    head.version = get(12).split(head.component_sep)[0].strip()
    head.accept_ack_type = get(15)
    head.application_ack_type = get(16)
    charsets = [c.strip() for c in get(18).split(head.encoding_chars[1] if len(head.encoding_chars) > 1 else "~")]
    head.charset, head.extensions = charsets[0], tuple(c for c in charsets[1:] if c)
    if not head.message_type:
        head.problems.append(_msh_error("message type is missing", 9, REQUIRED_FIELD_MISSING, ack="AE"))
    if not head.version:
        head.problems.append(_msh_error("version id is missing", 12, REQUIRED_FIELD_MISSING, ack="AE"))
    # HTTP's charset stands in for an empty MSH-18 (``transport``); the words name who declared
    declared = head.charset or transport
    who = "MSH-18" if head.charset or not transport else "the HTTP Content-Type (charset)"
    text, head.codec = decode(body, "utf-8" if bom else override or declared, head.extensions)
    if not head.control_id:  # a resend is recognised by its content (the converter warns at MSH-10)
        head.control_id = content_control_id(text)
    if override and codec_for(override) is None:
        head.problems.append(_msh_error(f"character set {override!r} the site names for this sender "
                                        f"(senders.yaml charsets) is not supported; decoded as {head.codec}",
                                        18, ack="AE"))
    elif not override and declared and codec_for(declared) is None:
        head.problems.append(_msh_error(f"character set {declared!r} is not supported "
                                        f"(HL7 table 0211); decoded as {head.codec}", 18, ack="AE"))
    elif head.codec.endswith("?"):
        head.problems.append(_msh_error("message bytes are not valid in the declared character set "
                                        "nor in UTF-8 or GB 18030", 18, ack="AE"))
    elif (not bom and not override and head.codec == "gb18030"
          and canonical(codec_for(declared) or "") not in GB):
        # the declared set (or, declaring none, UTF-8) could not read the bytes, GB 18030 did: Chinese
        # text, or a guess
        why = gb_fallback_doubt(body)
        if why is not None:
            failed = (f"not valid in the character set {who} declares ({declared!r})"
                      if not declares_ascii(declared) else f"not valid UTF-8 and {who} declares no set beyond ASCII")
            head.problems.append(_msh_error(
                f"the bytes are {failed}; {why}, not stored as a guess. If this sender's messages are in another "
                "set, name it in senders.yaml (charsets) and replay the message, kept as sent", 18, ack="AE"))
    elif not bom and not override and canonical(codec_for(declared) or "") in GB and not body.isascii():
        # GB 18030 reads almost any bytes: UTF-8 under a GB declaration was stored as mojibake
        why = (f"the bytes are not valid GB 18030 (they read as {head.codec.upper()})"
               if canonical(head.codec) not in GB else gb_misread(body))
        if why is not None:
            head.problems.append(_msh_error(
                f"{why}; the character set {who} declares ({declared!r}) would store the text "
                "misread. If this sender's messages are in another set, name it in senders.yaml "
                "(charsets) and replay the message, kept as sent", 18, ack="AE"))
    elif not bom and not override and declares_ascii(declared) and head.codec == "utf-8" and not body.isascii():
        # no declaration (empty MSH-18 means ASCII): valid UTF-8 is read so, but GB 18030 text can be valid
        # UTF-8 too
        why = undeclared_gb(text)
        if why is not None:
            head.problems.append(_msh_error(
                f"{why}, and {who} declares no set beyond ASCII ({declared!r}): not stored as a guess. Declare the set in MSH-18 (GB 18030-2000 or UNICODE UTF-8), "
                "or name this sender's set in senders.yaml (charsets) and replay the message, kept as sent",
                18, ack="AE"))
    elif not bom and not override and single_byte(head.codec) and not body.isascii():
        # Latin-1 reads any byte: the declaration alone would store GB 18030 names as mojibake
        head.problems.extend(_misread(body, fs, head.codec, declared))
    return head, text


def _misread(body: bytes, fs: str, codec: str, declared: str) -> list[HL7Error]:
    """One AE problem per field whose bytes cannot be text in the single-byte set MSH-18 declares
    (``charsets.misread``), located (segment, its occurrence, field) for the ACK's ERR-2. The set
    is single-byte, so bytes are split where the parser splits the text: segment ends, ``fs``;
    MSH-2's characters are not text and are not read."""
    problems: list[HL7Error] = []
    sep = fs.encode("latin-1")
    seen: dict[str, int] = {}
    for line in re.split(rb"\r\n|\r|\n", body):
        name = line[:3].decode("latin-1")
        seen[name] = seen.get(name, 0) + 1
        if line.isascii():
            continue
        offset = 1 if name == "MSH" else 0  # MSH-1 is the separator itself: fields[1] is MSH-2
        for number, value in enumerate(line.split(sep)[1:], start=1 + offset):
            if value.isascii() or (name == "MSH" and number == 2):
                continue
            why = misread(value, codec)
            if why is not None:
                problems.append(HL7Error(
                    f"{name}-{number}: {why}, which the character set MSH-18 declares ({declared!r}) cannot "
                    "hold; not stored as a misread text. If this sender's messages are in another set, "
                    "name it in senders.yaml (charsets) and replay the message, kept as sent",
                    segment=name, sequence=seen[name], field=number, code=DATA_TYPE_ERROR, ack_code="AE"))
                if len(problems) >= _MOST_MISREAD:
                    return problems
    return problems


_MOST_MISREAD = 5  # fields named in one ACK: the sender's set is wrong, not five hundred fields


def _text_fields(line: bytes, fs: str, fields: list[str], rep: str, bom: bool, override: str = "",
                 transport: str = "") -> list[str] | None:
    """MSH's fields split after decoding the line in the message's character set.

    Split byte by byte (as latin-1), a GBK character whose second byte is ``|`` (0x7C: 億, 區's
    ``^`` 0x5E) in MSH-3..6 shifted every later field: MSH-9 read as missing, MSH-10 and MSH-18
    taken from their neighbours, and the message refused AR naming fields it had right; a Chinese
    MSH-3 was echoed in the ACK's MSH-5 as mojibake (eighteenth round). The character set is the one
    the latin-1 split names, else what ``charsets.decode`` reads the line in; when the decoded line's
    own MSH-18 names another set that reads it so, that one.

    None when no character set reads the line (``charsets.decode``'s ``utf-8?``): the latin-1 split
    stands, each field then read in the codec where it can be, else kept as its latin-1 text
    (``Header._decoded``). Decoded with replacement, ``b"\\xffLIS"`` read ``"\\ufffdLIS"``: MSH-3 is
    part of a message's key (its application), so different bad bytes met in one key, and a message
    stored before (as ``"ÿLIS"``) was not known again when re-sent (review of the eighteenth round)."""

    def charset(split: list[str]) -> str:
        return split[17].split(rep)[0].strip() if len(split) > 17 else ""

    declared = charset(fields)
    text, codec = decode(line, "utf-8" if bom else override or declared or transport)
    if codec.endswith("?"):
        return None
    split = text.split(fs)
    own = charset(split)
    if not bom and not override and own != declared and codec_for(own) not in (None, codec):
        again = decode(line, own)[0].split(fs)
        if charset(again) == own:
            split = again
    return split


def decode_message(raw: bytes) -> str:
    """The text of a whole message as the pipeline reads it (MSH-18 honoured, from MSH on)."""
    return extract_header(raw)[1]


def stored_text(raw: bytes, peer: str, site: Any) -> tuple[str, str]:
    """A stored message's text and the codec it was read in, read as the pipeline reads it
    (``read_message``: the site's set for the sender, MSH-18, the HTTP ``charset`` kept in ``peer``).
    The quarantine view decoded the raw bytes with MSH-18 unread and no peer: GB 18030 ``钱^伟`` posted
    with ``charset=GB18030`` was shown ``Ǯ^ΰ``, another name than the pipeline read (hl7fix28)."""
    head, text = read_message(raw, peer, site)
    if not head.found:
        return decode(raw)
    return text, head.codec
