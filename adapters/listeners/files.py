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
    if data.lstrip(b"\r\n\t \x00").startswith(b"\x0b"):  # an MLLP capture: the frames are the messages
        # Only data that starts with a VT is a capture (twenty-first round, hl7mend21): a stray VT and
        # FS anywhere (an NTE of one message in a batch) made the whole body one, and every byte
        # outside the "frames" -- the messages before the stray VT -- was dropped silently. Nothing
        # outside a frame is dropped now either: what follows a frame's FS up to the next VT is kept
        # as text of its own (the pipeline refuses what is not a message, with a reason).
        out: list[bytes] = []
        for chunk in data.lstrip(b"\r\n\t \x00")[1:].split(b"\x0b"):
            inside, _, outside = chunk.partition(b"\x1c")
            out += split_messages(inside)
            if outside.strip(b"\r\n\t \x00"):
                out += _split_plain(outside)
        return out
    return _split_plain(data)


def _split_plain(data: bytes) -> list[bytes]:
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
