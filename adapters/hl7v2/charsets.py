"""MSH-18 character sets (HL7 table 0211) → Python codecs, and decoding raw message bytes.

Chinese HIS/LIS feeds commonly declare ``GB 18030-2000`` (or nothing, and send GBK); the parser
works on ``str``, so bytes are decoded here first. ``decode_message`` reads MSH-18 from the ASCII
header (delimiters and MSH-1..17 are ASCII in every HL7 character set but UTF-16) and falls back
to UTF-8, then GB18030, which decodes any byte string GBK senders produce.
"""

from __future__ import annotations

CHARSETS: dict[str, str] = {
    "ASCII": "ascii",
    "8859/1": "iso8859-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UNICODE UTF-16": "utf-16",
    "UNICODE UTF-32": "utf-32",
    "GB 18030-2000": "gb18030",
    "GB18030": "gb18030",
    "GBK": "gbk",
    "BIG-5": "big5",
    "CNS 11643-1992": "big5",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "KS X 1001": "euc_kr",
}


def codec_for(msh18: str) -> str:
    """Python codec for an MSH-18 value (first repetition); UTF-8 when empty or unknown."""
    return CHARSETS.get(msh18.strip().upper(), "utf-8") if msh18 else "utf-8"


def decode_message(raw: bytes) -> str:
    """Decode raw message bytes honouring a BOM and MSH-18; never raises."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace")
    declared = _sniff_msh18(raw)
    if declared:
        return raw.decode(codec_for(declared), errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace")


def _sniff_msh18(raw: bytes) -> str:
    start = raw.find(b"MSH")
    if start < 0 or len(raw) < start + 8:
        return ""
    end = len(raw)
    for sep in (b"\r", b"\n"):
        pos = raw.find(sep, start)
        if 0 <= pos < end:
            end = pos
    header = raw[start:end]
    fsep = header[3:4]
    parts = header.split(fsep)
    # parts[0]='MSH', parts[1]=MSH-2, parts[n]=MSH-(n+1): MSH-18 is parts[17]
    if len(parts) <= 17:
        return ""
    rep = parts[1][1:2]
    value = parts[17].split(rep)[0] if rep else parts[17]
    try:
        return value.decode("ascii").strip()
    except UnicodeDecodeError:
        return ""
