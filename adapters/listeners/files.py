"""Reading HL7 v2 messages from files: one or many per file, any line ending, with or without a BOM.

Files exported by interface engines come in every shape: CR (the standard), LF or CRLF segment
ends, several messages back to back, a UTF-8 byte-order mark, MLLP-framed captures, batch
envelopes (FHS/BHS ... BTS/FTS). ``split_messages`` returns each message as bytes with CR
segment terminators, the standard form, ready for the pipeline. Bytes are never decoded here,
so a GB 18030 file stays GB 18030 and MSH-18 still decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

_LINE_END = re.compile(rb"\r\n|\r|\n")
_ENVELOPE = (b"FHS", b"BHS", b"BTS", b"FTS")
_SUFFIXES = {".hl7", ".txt", ".er7", ".msg", ".dat", ""}


def split_messages(data: bytes) -> list[bytes]:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x0b" in data and b"\x1c" in data:  # an MLLP capture: the frames are the messages
        chunks = [c.split(b"\x1c", 1)[0] for c in data.split(b"\x0b")[1:]]
        return [m for c in chunks for m in split_messages(c)]
    messages: list[list[bytes]] = []
    for line in _LINE_END.split(data):
        seg = line.lstrip(b"\x00\t ").rstrip(b"\x00")
        if not seg.strip():
            continue
        if seg[:3] in _ENVELOPE and (len(seg) == 3 or not seg[3:4].isalnum()):
            continue
        if seg.startswith(b"MSH") and len(seg) > 3 and not seg[3:4].isalnum():
            messages.append([seg])
        elif messages:
            messages[-1].append(seg)
        else:  # text before the first MSH: keep it, the pipeline will refuse it with a reason
            messages.append([seg])
    return [b"\r".join(segs) + b"\r" for segs in messages]


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files named, and the message files inside folders named (recursively, sorted)."""
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in _SUFFIXES and not f.name.startswith("."):
                    yield f
        elif p.is_file():
            yield p
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")


def read_messages(paths: Iterable[str | Path]) -> Iterator[tuple[Path, int, bytes]]:
    """``(file, index within the file, message bytes)`` for every message in ``paths``."""
    for f in iter_files(paths):
        for i, msg in enumerate(split_messages(f.read_bytes()), 1):
            yield f, i, msg
