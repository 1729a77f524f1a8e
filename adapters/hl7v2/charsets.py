"""MSH-18 character sets (HL7 table 0211) → Python codecs, and raw message bytes → text.

The one owner of that decision: the pipeline (``adapters.hl7v2.header``), the parser's ``\\X..\\``
escapes, the quarantine views and the tests all call this module.

Chinese HIS/LIS feeds commonly declare ``GB 18030-2000`` (or nothing, and send GBK); the parser
works on ``str``, so bytes are decoded first: the codec MSH-18 names, else UTF-8, else GB 18030
(which decodes any byte string GBK senders produce).

MSH-18 may repeat (HL7 v2.5 2.15.9.18): the first repetition is the default character set (empty:
ASCII), the later ones are sets the text switches to by ISO 2022 escape sequences (MSH-20 names the
scheme, e.g. ``ISO 2022-1994``). Japanese systems send ``~ISO IR87`` this way: ASCII by default,
JIS X 0208 after ``ESC $ B``. Such bytes are 7-bit, so a UTF-8 decode "succeeds" and would leave the
escape sequences in the names; when the bytes carry ESC and a repetition names an ISO 2022 set,
they are decoded with an ISO 2022 codec instead.
"""

from __future__ import annotations

import codecs
import re

# HL7 table 0211 (alternate character sets) -> Python codec; keys compared without spaces/underscores/case.
_CHARSETS = {
    "ASCII": "ascii",
    "UNICODEUTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UNICODE": "utf-8",
    "UNICODEUTF-16": "utf-16",
    "UNICODEUTF-32": "utf-32",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "GB18030": "gb18030",
    "GB18030-2000": "gb18030",
    "GB18030-2005": "gb18030",
    "GB2312": "gb18030",  # GB 18030 is a superset of GB 2312 and GBK
    # ISO-IR registry names (twenty-first round: refused AE as "not supported", every message of a
    # sender that declares them): ISO IR6 is table 0211's own (ASCII); ISO IR58 is GB 2312 (IANA
    # alias iso-ir-58), sent by Chinese systems in its EUC form, read as its superset GB 18030;
    # ISO IR100 is ISO 8859-1 (IANA alias iso-ir-100); ISO IR192 is DICOM's name for UTF-8
    "ISOIR6": "ascii",
    "ISOIR58": "gb18030",
    "ISOIR100": "latin-1",
    "ISOIR192": "utf-8",
    "GBK": "gb18030",
    "ISOIR87": "iso2022_jp",
    "ISOIR159": "iso2022_jp_2",
    "KSX1001": "euc_kr",
    "BIG-5": "big5",
    "BIG5": "big5",
    "CNS11643-1992": "big5",
}

_BOMS = (codecs.BOM_UTF8,)

# MSH-18 repetitions that are reached by ISO 2022 escape sequences (code extension), and the
# codecs tried for them in order: iso2022_jp_2 reads JIS X 0208 and 0212 (ISO IR87, IR159),
# iso2022_jp_ext the half-width katakana of JIS X 0201 (ISO IR13).
_ISO2022_SETS = {"ISOIR87", "ISOIR159", "ISOIR13"}
_ISO2022_CODECS = ("iso2022_jp_2", "iso2022_jp_ext")


def _key(charset: str) -> str:
    return charset.replace(" ", "").replace("_", "").upper()


def codec_for(charset: str) -> str | None:
    """Python codec for an MSH-18 value (HL7 table 0211) or a codec name; None when unknown."""
    key = _key(charset)
    if key in _CHARSETS:
        return _CHARSETS[key]
    try:
        return codecs.lookup(charset.strip()).name
    except LookupError:
        return None


def strip_bom(raw: bytes) -> bytes:
    for bom in _BOMS:
        if raw.startswith(bom):
            return raw[len(bom) :]
    return raw


def decode(raw: bytes, charset: str = "", extensions: tuple[str, ...] = ()) -> tuple[str, str]:
    """Decode message bytes; returns (text, codec). Never raises: undecodable bytes become U+FFFD.

    Order: an ISO 2022 codec when the bytes carry escape sequences and a later MSH-18 repetition
    (``extensions``) names a set reached that way; the codec MSH-18 names (``charset``, its first
    repetition, or a codec name such as a stored ``Header.codec``); then UTF-8, then GB 18030; if
    all fail, UTF-8 with replacement characters (the caller records a problem; the raw bytes stay
    stored as sent).
    """
    raw = strip_bom(raw)
    tried: list[str] = []
    named = codec_for(charset) if charset else None
    extended: tuple[str, ...] = ()
    if b"\x1b" in raw and any(_key(e) in _ISO2022_SETS for e in extensions):
        extended = _ISO2022_CODECS
    for codec in (*extended, named, "utf-8", "gb18030"):
        if codec is None or codec in tried:
            continue
        tried.append(codec)
        try:
            return raw.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode("utf-8", errors="replace"), "utf-8?"


# ISO 8859 parts (single-byte: one byte, one character, the delimiters where ASCII has them). In all
# of them 0x80-0x9F are the C1 control codes, never text; in the Latin parts (1-4, 9, 15) two
# neighbouring bytes from 0xA1 up are two accented letters or signs side by side -- rare in any
# language -- while they are one Chinese character in GB 18030, one after another in every name.
def canonical(codec: str) -> str:
    """A codec's one name (``codecs.lookup(...).name``): ``latin-1``, ``ISO-8859-1``, ``ISO8859-1``,
    ``ISO_8859-1`` and ``latin1`` are all ``iso8859-1``. The single-byte check compared the spelling:
    only MSH-18 ``8859/1`` (the table's, mapped to ``latin-1``) was checked, the same set spelt any
    other way let GB 18030 through as mojibake (review of the nineteenth round)."""
    try:
        return codecs.lookup(codec.rstrip("?")).name
    except LookupError:
        return codec


SINGLE_BYTE = frozenset(map(canonical, ("latin-1", "iso8859-2", "iso8859-3", "iso8859-4", "iso8859-5", "iso8859-6",
                                        "iso8859-7", "iso8859-8", "iso8859-9", "iso8859-15")))
_LATIN = frozenset(map(canonical, ("latin-1", "iso8859-2", "iso8859-3", "iso8859-4", "iso8859-9", "iso8859-15")))


def single_byte(codec: str) -> bool:
    """``codec`` (any spelling) is an ISO 8859 part (``SINGLE_BYTE``)."""
    return canonical(codec) in SINGLE_BYTE

_C1 = re.compile(rb"[\x80-\x9f]")
_PAIR = re.compile(rb"[\xa1-\xfe]{2}")
_IDEOGRAPH = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]")


def misread(value: bytes, codec: str) -> str | None:
    """Why the bytes of one field cannot be what a sender declaring the single-byte set ``codec``
    (``SINGLE_BYTE``) meant, else None. Latin-1 reads any byte, so honouring a wrong ``8859/1``
    silently stored every Chinese name as mojibake (``张三`` as ``ÕÅÈý``, nineteenth round); what
    the declared set cannot hold is refused instead, the raw bytes kept for a replay once the site
    says what the sender really sends (``senders.yaml`` ``charsets``):

    - a C1 control byte (0x80-0x9F): not text in any ISO 8859 part (a UTF-8 continuation byte or a
      GBK trail byte is one);
    - in a Latin part: the field is valid UTF-8 with multi-byte characters (``Ã©`` for ``é``), or it
      reads in GB 18030 with at least two Chinese characters each made of two bytes from 0xA1 up
      (a one-character value, or accents side by side twice in one field such as ``ção`` ...
      ``ção``, are the cases this reading cannot tell: the first passes as declared, the second is
      refused -- a site sure of its sender says ``8859/1`` for it in ``charsets``)."""
    c1 = _C1.search(value)
    if c1 is not None:
        return f"byte 0x{c1.group()[0]:02X} is a C1 control code, not text"
    if canonical(codec) not in _LATIN or _PAIR.search(value) is None:
        return None
    try:
        value.decode("utf-8")
        return "the bytes are UTF-8 text"
    except UnicodeDecodeError:
        pass
    try:
        text = value.decode("gb18030")
    except UnicodeDecodeError:
        return None
    chinese = [c for c in _IDEOGRAPH.findall(text) if min(c.encode("gb18030")) >= 0xA1]
    if len(chinese) >= 2:  # named by its bytes: the ACK goes back in the declared set, which has no 张
        return f"the bytes are Chinese text in GB 18030 ({chinese[0].encode('gb18030').hex(' ').upper()} ...)"
    return None


GB = frozenset(map(canonical, ("gb18030", "gbk", "gb2312")))


def gb_misread(raw: bytes) -> str | None:
    """Why message bytes read in GB 18030 (MSH-18 ``GB 18030-2000``, ``GB2312``, ``ISO IR58``) are
    not what the sender meant, else None (twenty-first round, hl7mend21). GB 18030 reads almost any
    byte string: UTF-8 sent under a GB declaration (a common misconfiguration) was stored as
    mojibake, an odd lead byte swallowing the next delimiter (``张^三丰`` became one family name
    ``寮燸涓変赴``). The bytes are refused when they are valid multi-byte UTF-8 whose UTF-8 reading
    holds a character of three bytes or more (CJK and every script beyond U+0800) or only Latin-1
    accented letters (``é`` read ``莽``). Real GB text is rarely valid UTF-8 as a whole and then reads
    as two-byte Cyrillic, Greek, Hebrew or Latin-extended letters (``钱伟`` -> ``Ǯΰ``, ``女`` ->
    ``Ů``): measured on 1,270 distinct Chinese runs (names, addresses, codes) 30 are valid UTF-8,
    none is refused by this rule; of the 6,763 GB 2312 hanzi one by one 930 are valid UTF-8 and 31
    refused (a message whose only Chinese is one of them alone)."""
    if raw.isascii():
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    other = [c for c in text if not c.isascii()]
    if any(ord(c) >= 0x800 for c in other) or all("\u00c0" <= c <= "\u00ff" for c in other):
        sample = next(c for c in other if ord(c) >= 0x800 or "\u00c0" <= c <= "\u00ff")
        return (f"the bytes are UTF-8 text ({sample.encode('utf-8').hex(' ').upper()} is "
                f"U+{ord(sample):04X} in UTF-8), not GB 18030")
    return None


_BEYOND_TWO_BYTES = re.compile("[\u0800-\U0010ffff]")
_NON_ASCII_RUN = re.compile("[^\x00-\x7f]{2,}")


def undeclared_gb(text: str) -> str | None:
    """Why a message with no MSH-18 (nor a set the site names), read as UTF-8 because its bytes are
    valid UTF-8, is GB 18030 text instead, else None (twenty-seventh round, hl7conf27). Without a
    declaration the bytes are read as UTF-8 first, then GB 18030: Chinese GB text whose bytes happen
    to be valid UTF-8 (``钱伟`` C7 AE CE B0 reads ``Ǯΰ``; 30 of 1,270 runs measured in ``gb_misread``)
    was stored as that mojibake with an AA. The reading is doubted when no character of it needs
    three UTF-8 bytes or more (a UTF-8 Chinese text always holds some) and a run of two or more
    non-ASCII characters read in GB 18030 is Chinese characters only, each of two bytes from 0xA1 up;
    a lone accented letter or unit sign (``é``, ``μmol/L``) is no such run."""
    if text.isascii() or _BEYOND_TWO_BYTES.search(text) is not None:
        return None
    for run in _NON_ASCII_RUN.findall(text):
        raw = run.encode("utf-8")
        try:
            read = raw.decode("gb18030")
        except UnicodeDecodeError:
            continue
        if len(read) >= 2 and all(_IDEOGRAPH.fullmatch(c) and min(c.encode("gb18030")) >= 0xA1 for c in read):
            return (f"the bytes {raw[:4].hex(' ').upper()} read {run!r} in UTF-8 and {read!r} in GB 18030, "
                    "and MSH-18 names no character set")
    return None


def gb_fallback_doubt(text: str) -> str | None:
    """Why text read in GB 18030 only because the bytes are not valid in the set MSH-18 declares
    (``decode``'s fallback) is not Chinese text, else None (twenty-seventh round, hl7conf27). GB 18030
    reads almost any bytes: Latin-1 ``Müller`` under ``UNICODE UTF-8`` was stored ``M黮ler`` with an AA,
    and ``José|`` swallowed the field separator. In the Chinese text such a fallback is for (GBK under
    a UTF-8 label, GB 2312 under ASCII) every character's bytes are from 0x81 up; one whose second
    byte is ASCII (``ü`` 0xFC + ``l`` 0x6C, a 4-byte code's digit) is an 8-bit letter before an ASCII
    one far more often than one of the rare characters GBK puts there (``玥`` AB 68), which a site
    whose sender really sends GBK names in ``senders.yaml`` (``charsets``)."""
    for c in text:
        if c.isascii():
            continue
        raw = c.encode("gb18030")
        if raw[1] < 0x80:
            # named by its bytes only: the ACK goes back in the declared set, which may not hold it
            return (f"the bytes {raw.hex(' ').upper()} read as one GB 18030 character whose second byte is "
                    f"the ASCII {chr(raw[1])!r}")
    return None
