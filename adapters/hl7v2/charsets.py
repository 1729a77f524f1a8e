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
import unicodedata

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

# The HTTP/IANA names (and Python's spellings, which a stored ``Header.codec`` carries) huren reads beside
# table 0211's, by the codec they name: any other name ``codecs.lookup`` knows is refused -- it took binary
# transforms (``rot13``, ``base64``: nothing decoded, GB 18030 stored as mojibake with an AA) and
# ``undefined`` (AE 207, the raw message not kept) as character sets (hl7fix28).
_ALIASES = ("us-ascii", "ascii", "utf-8", "utf8", "latin-1", "latin1", "iso-8859-1", "iso-8859-2", "iso-8859-3",
            "iso-8859-4", "iso-8859-5", "iso-8859-6", "iso-8859-7", "iso-8859-8", "iso-8859-9", "iso-8859-15",
            "gb18030", "gbk", "gb2312", "cp936", "big5", "euc-kr", "iso-2022-jp", "iso-2022-jp-2", "iso2022_jp_ext",
            "utf-16", "utf-32", "shift_jis", "euc-jp", "cp949", "tis-620",
            # the Windows code pages a site may name for a sender that declares Latin-1 and sends one
            # (``senders.yaml`` ``charsets``: ’ is 0x92 in Windows-1252, a C1 control in ISO 8859-1)
            *(f"windows-{n}" for n in range(1250, 1259)), *(f"cp{n}" for n in range(1250, 1259)))

_BOMS = (codecs.BOM_UTF8,)

# MSH-18 repetitions that are reached by ISO 2022 escape sequences (code extension), and the
# codecs tried for them in order: iso2022_jp_2 reads JIS X 0208 and 0212 (ISO IR87, IR159),
# iso2022_jp_ext the half-width katakana of JIS X 0201 (ISO IR13).
_ISO2022_SETS = {"ISOIR87", "ISOIR159", "ISOIR13"}
_ISO2022_CODECS = ("iso2022_jp_2", "iso2022_jp_ext")


def _key(charset: str) -> str:
    return charset.replace(" ", "").replace("_", "").upper()


def codec_for(charset: str) -> str | None:
    """Python codec for an MSH-18 value (HL7 table 0211) or a name of a set huren reads (``_ALIASES``:
    IANA's, Python's); None when huren reads no such set. The one owner of which sets huren reads."""
    key = _key(charset)
    if key in _CHARSETS:
        return _CHARSETS[key]
    try:
        name = codecs.lookup(charset.strip()).name
    except LookupError:
        return None
    return name if name in _READ else None


# byte-oriented encodings whose delimiters are the ASCII bytes: what HL7 v2's ER7 over HTTP is read in
_WIDE = frozenset({"utf-16", "utf-32"})


def transport_codec(charset: str) -> tuple[str | None, str]:
    """The set an HTTP ``charset`` parameter names, as kept with the message (its IANA name, which
    ``codec_for`` reads back: ``ISO-IR 100`` was checked as sent and kept as ``ISO-IR100``, which nothing
    read; hl7fix28), and why it is refused when it is (None): a set huren does not read, or UTF-16/32 --
    HL7 v2 ER7 here is read byte by byte with single-byte delimiters (``|``, ``^``, CR) found before any
    decoding (MSH, its encoding characters, MLLP framing, batch splitting), which a two- or four-byte
    encoding does not have."""
    codec = codec_for(charset)
    if codec is None:
        return None, (f"unsupported charset {charset!r} in Content-Type; send one of HL7 table 0211's sets "
                      "(GB18030, UTF-8, ...) or none and declare it in MSH-18")
    if canonical(codec) in _WIDE:
        return None, (f"charset {charset!r}: HL7 v2 is read here as bytes whose delimiters (|, ^, CR) are single "
                      "ASCII bytes, which UTF-16/UTF-32 do not have; send UTF-8 or GB18030")
    return iana_name(codec), ""


# Python codec (canonical name, ``codecs.lookup(...).name``) -> its IANA charset name
_IANA = {"utf-8": "UTF-8", "ascii": "US-ASCII", "gb18030": "GB18030", "big5": "Big5", "euc_kr": "EUC-KR",
         "iso2022_jp": "ISO-2022-JP", "iso2022_jp_2": "ISO-2022-JP-2", "iso2022_jp_ext": "ISO-2022-JP",
         "utf-16": "UTF-16", "utf-32": "UTF-32"}


def iana_name(codec: str) -> str:
    """The IANA name of the set the ACK is encoded in, for ``Content-Type``'s ``charset``: the
    Python codec names went out as they were (``latin-1``, ``iso8859-2``, ``euc_kr``,
    ``iso2022_jp``), which no HTTP client need know (Java and .NET know none of those four
    spellings; twenty-first round). A codec ending in ``?`` (bytes no set read) had its ACK in UTF-8."""
    if codec.endswith("?"):
        return "UTF-8"
    try:
        name = codecs.lookup(codec).name
    except LookupError:
        return "UTF-8"
    if name.startswith("iso8859-"):
        return "ISO-8859-" + name.removeprefix("iso8859-")
    return _IANA.get(name, name.upper().replace("_", "-"))


def declares_ascii(charset: str) -> bool:
    """MSH-18 (its first repetition) declares ASCII: empty (v2.5.1 2.15.9.18: "if the field is not
    valued, the default is ASCII"), ``ASCII`` or its ISO-IR name ``ISO IR6``. The three are one
    declaration; the checks of bytes read beyond it (``undeclared_gb``, ``gb_fallback_doubt``) ran
    only for an empty field, so GB 18030 ``钱伟`` under ``ASCII`` was stored ``Ǯΰ`` (review of the
    twenty-seventh round)."""
    return not charset.strip() or codec_for(charset) == "ascii"


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


_READ = frozenset(map(canonical, (*_CHARSETS.values(), *_ALIASES)))

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
# Latin-1's signs (units, degrees, ordinals, quotes, no-break space) and x, /: beside letters of any script
_SIGNS = frozenset(map(chr, range(0xA0, 0xC0))) | {"\u00d7", "\u00f7"}
_MICRO_APART = re.compile("\u03bc(?![A-Za-z])")  # a Greek mu that is no unit prefix (``μmol/L``'s is)
_IPA = re.compile("[\u0250-\u02af]")  # phonetic letters: no patient's name or result
_LATIN_IN_WORD = re.compile("[A-Za-z][\u00c0-\u024f]|[\u00c0-\u024f][A-Za-z]")
# the scripts a patient's text is written in among those of two UTF-8 bytes (Syriac, Thaana, NKo and
# Coptic are not: GB 18030 read as UTF-8 lands in their blocks too)
_SCRIPTS = frozenset({"LATIN", "GREEK", "CYRILLIC", "ARMENIAN", "HEBREW", "ARABIC"})
_HEBREW_FINAL = frozenset("\u05da\u05dd\u05df\u05e3\u05e5")  # kaf mem nun pe tsadi at a word's end only


def _ASCII_ALNUM(c: str) -> bool:  # noqa: N802 -- a predicate used like a character class
    return c.isascii() and c.isalnum()
_NON_ASCII_ANY = re.compile("[^\x00-\x7f]+")


def _named(c: str) -> str:
    """One character of a UTF-8 reading, named by its bytes and code point (ASCII: the ACK's set may
    not hold it, and a doubted reading is not repeated back as if it were the sender's text)."""
    return f"{c.encode('utf-8').hex(' ').upper()} (U+{ord(c):04X})"


def undeclared_gb(text: str) -> str | None:
    """Why a message that declares no set beyond ASCII (MSH-18 empty, ``ASCII`` or ``ISO IR6``: an empty
    MSH-18 means ASCII, v2.5.1 2.15.9.18), read as UTF-8 because its bytes are valid UTF-8, is not
    plausibly UTF-8 text, else None (twenty-seventh round). Without a declaration the bytes are read
    as UTF-8 first, then GB 18030, and GB 18030 Chinese whose bytes happen to be valid UTF-8 was stored
    as mojibake with an AA (``钱伟`` C7 AE CE B0 reads ``Ǯΰ``; 30 of 1,270 runs measured in
    ``gb_misread``). A GB 18030 character read as UTF-8 is always one code point of U+0080-U+07FF (its
    lead byte C2-DF picks the block: Latin-1, Latin Extended, IPA, spacing modifiers, combining marks,
    Greek, Cyrillic, Armenian, Hebrew, Arabic, Syriac...), so Chinese read so is letters of scattered
    scripts, or no letters at all. Real text without any character of three UTF-8 bytes (a UTF-8
    Chinese text always holds some) is letters of one script, written in words. The reading is doubted
    when its non-ASCII characters are:

    - letters of two scripts or more (the first word of their Unicode names: ``Ǯ`` LATIN, ``ΰ`` GREEK),
      or of a script no patient text here is in (``_SCRIPTS``: Syriac, Thaana, NKo, Coptic are not);
    - anything but letters, Latin-1 signs beside an ASCII letter or digit (``°C``, ``µg``, ``±2``; ``卢``
      alone reads ``¬``) and marks after a letter: symbols, modifier letters, phonetic (IPA) letters, a
      combining mark standing alone, C1 controls;
    - a small letter before a capital in one word (``лС``), a Hebrew final letter inside a word;
    - Latin letters none of which sits in a word beside an ASCII letter (``é`` of ``José`` does), or
      letters of another script none of which stands beside another (``Сабина`` does; ``谢^小`` reads
      ``л^С``).

    What stays: GB 18030 whose every character reads as a letter of one of these scripts, in words of
    two or more with plausible case (of the 930 GB 2312 hanzi valid alone as UTF-8, 32,173 of their
    864,900 two-character runs, mostly Cyrillic and Arabic); and a lone ``à`` as a message's only
    non-ASCII is refused with the GB ones.

    The first version (hl7conf27) looked for a run of two non-ASCII characters that GB 18030 reads as
    Chinese: ``钱^伟`` (a name sent family^given) has none and was stored ``Ǯ^ΰ``, while Portuguese
    ``ção``, Cyrillic ``Сабина`` and Uyghur ``ئاتا`` in UTF-8, read right before, were refused (review of
    the twenty-seventh round). A ``μ`` before an ASCII letter is a unit prefix, no Greek word."""
    if text.isascii() or _BEYOND_TWO_BYTES.search(text) is not None:
        return None
    micro_unit = _MICRO_APART.search(text) is None
    scripts: dict[str, str] = {}  # script -> its first letter (by code point)
    kinds: dict[str, str] = {}  # each non-ASCII character -> "letter", "mark" or "sign"
    for c in sorted(c for c in set(text) if c > "\x7f"):
        category = unicodedata.category(c)
        if c in _SIGNS or (c == "\u03bc" and micro_unit):
            kinds[c] = "sign"
        elif category[0] == "M":
            kinds[c] = "mark"
        elif category[0] != "L" or category == "Lm" or _IPA.match(c):
            return f"the bytes {_named(c)} read in UTF-8 as a {unicodedata.name(c, 'control').lower()}, not text"
        else:
            kinds[c] = "letter"
            scripts.setdefault(unicodedata.name(c, "?").split()[0], c)
    if len(scripts) > 1:
        (one, a), (other, b) = list(scripts.items())[:2]
        return (f"the bytes {_named(a)} and {_named(b)} read in UTF-8 as letters of two scripts "
                f"({one}, {other}), not text of one")
    if scripts and not scripts.keys() <= _SCRIPTS:
        (script, first), = scripts.items()
        return f"the bytes {_named(first)} read in UTF-8 as {script.lower()} letters, a script no patient text here is in"
    paired = False
    for m in _NON_ASCII_ANY.finditer(text):
        run, at0 = m.group(), m.start()
        for at, c in enumerate(run):
            before = run[at - 1] if at else text[at0 - 1 : at0]
            after = run[at + 1] if at + 1 < len(run) else text[m.end() : m.end() + 1]
            kind = kinds[c]
            if kind == "mark" and not (before.isalpha() or kinds.get(before) == "mark"):
                return f"the bytes {_named(c)} read in UTF-8 as a combining mark after no letter, not text"
            if kind == "sign" and not (_ASCII_ALNUM(before) or _ASCII_ALNUM(after)):
                return f"the bytes {_named(c)} read in UTF-8 as a sign beside no ASCII letter or digit, not text"
            if kind == "letter" and kinds.get(before) == "letter":
                paired = True
                if before.islower() and c.isupper():
                    return (f"the bytes {_named(before)} {_named(c)} read in UTF-8 as a small letter before a "
                            "capital in one word, not text")
                if before in _HEBREW_FINAL:
                    return f"the bytes {_named(before)} read in UTF-8 as a Hebrew final letter inside a word, not text"
    if not scripts:
        return None
    (script, first), = scripts.items()
    if script == "LATIN":
        if _LATIN_IN_WORD.search(text) is None:
            return (f"the bytes {_named(first)} read in UTF-8 as Latin letters standing alone, in no word "
                    "of ASCII letters")
        return None
    if not paired:
        return (f"the bytes {_named(first)} read in UTF-8 as {script.lower()} letters one by one, in no word "
                "of two letters")
    return None


# in ISO 8859-1, 0xC0-0xFF but 0xD7 and 0xF7 are letters (``é`` E9, ``ü`` FC, ``ç`` E7 ...)
_L1_LETTER = rb"[\xc0-\xd6\xd8-\xf6\xf8-\xff]"
# an 8-bit letter between an ASCII letter and an ASCII byte GB 18030 takes as its second: after an ASCII
# letter a byte always begins a character (an ASCII byte ends one, a digit only inside four-byte codes).
# Found with ``bytes.translate`` and ``find`` (a regex tried at every byte of a 10 KB report took 0.25 ms):
# each byte becomes its class, ``a`` an ASCII letter, ``t`` another byte GB 18030 takes second, ``L`` a
# Latin-1 letter it takes first
_CLASSES = bytes(
    ord("a") if chr(b).isascii() and chr(b).isalpha()
    else ord("t") if 0x30 <= b <= 0x39 or 0x40 <= b <= 0x7E
    else ord("L") if 0xC0 <= b <= 0xFE and b not in (0xD7, 0xF7)
    else ord(".")
    for b in range(256))


def _letter_in_word(raw: bytes) -> int:
    """Where the first 8-bit letter inside a Latin word (``_CLASSES``) is in ``raw``, else -1."""
    classes = raw.translate(_CLASSES)
    found = [at for at in (classes.find(b"aLa"), classes.find(b"aLt")) if at >= 0]
    return min(found) + 1 if found else -1
_NOT_LATIN1 = re.compile(rb"[\x80-\x9f]|[\x80-\xff]{3}")  # C1 controls; three 8-bit bytes in a row
_HIGH_PAIR = re.compile(rb"(?<![\x80-\xff])[\x80-\xff]{2}(?![\x80-\xff])")
_L1_PAIR = re.compile(_L1_LETTER * 2)


def _latin1_text(raw: bytes) -> bool:
    """The 8-bit bytes of ``raw`` read as ISO 8859-1 text: each a letter or sign alone, or two letters
    side by side (``ção`` E7 E3) beside an ASCII letter; no C1 control, no three in a row. Chinese in
    GB 18030 is runs of two bytes a character, mostly beside delimiters and each other."""
    if _NOT_LATIN1.search(raw) is not None:
        return False
    for m in _HIGH_PAIR.finditer(raw):
        if _L1_PAIR.fullmatch(m.group()) is None:
            return False
        if not (raw[m.start() - 1 : m.start()].isalpha() or raw[m.end() : m.end() + 1].isalpha()):
            return False
    return True


def gb_fallback_doubt(raw: bytes) -> str | None:
    """Why message bytes read in GB 18030 only because they are not valid in the set MSH-18 declares,
    or (MSH-18 empty or ASCII) not valid UTF-8 (``decode``'s fallback), are not Chinese text, else None
    (twenty-seventh round). GB 18030 reads almost any bytes: Latin-1 ``Müller`` under ``UNICODE UTF-8``
    was stored ``M黮ler`` with an AA, ``José|`` swallowed the field separator (E9 7C is one GB
    character). The GB reading is doubted when a Latin-1 reading is plausible:

    - an 8-bit letter between an ASCII letter and an ASCII byte (``M`` FC ``l``), which GB 18030 takes
      as the second byte of a character: inside a Latin word;
    - every 8-bit byte of the message a Latin-1 letter or sign alone, or two letters side by side
      beside an ASCII letter (``Conceição`` E7 E3: two bytes from 0xA1 up, one GB character ``玢``).

    The first version (hl7conf27) doubted any character whose second byte is ASCII, only when MSH-18
    named a set: the same Latin-1 with no MSH-18 was stored misread, ``Conceição`` (no ASCII byte in
    it) too, and GBK given-name characters such as ``玥`` (AB 68) or ``赟`` (DA 53) under a UTF-8 label
    were refused; they are read again when their neighbours are Chinese (review of the twenty-seventh
    round). Bytes-level scans of the whole message: no character is encoded again."""
    at = _letter_in_word(raw)
    if at >= 0:
        return (f"the bytes {raw[at : at + 2].hex(' ').upper()} read as one GB 18030 character whose second "
                f"byte is the ASCII {chr(raw[at + 1])!r}, after the ASCII letter {chr(raw[at - 1])!r}: "
                "an 8-bit letter inside a Latin word")
    if _latin1_text(raw):
        sample = re.search(rb"[\x80-\xff]+", raw)
        assert sample is not None
        return (f"every 8-bit byte reads as Latin-1 text, letters and signs alone or letter pairs inside words "
                f"of ASCII letters ({sample.group().hex(' ').upper()} ...), not as Chinese")
    return None
