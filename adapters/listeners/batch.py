"""An HL7 v2 batch (``FHS``/``BHS`` ... ``BTS``/``FTS``, v2.5.1 chapter 2.10.3) sent as one MLLP
frame or one ``POST /hl7v2`` body: each message is ingested on its own and the answer is a batch
of their ACKs, in the order sent.

Before (twenty-first round), such a frame was read as one message: with two messages in the batch
the first was quarantined ``AE`` ("segment 5 starts a second message") carrying the others inside
its raw bytes, so the second was never processed nor acknowledged, and a resend of the batch met
the same answer for ever; a batch of one was processed with the envelope stored as part of it.

The answer follows the standard's "batch of acknowledgements": ``FHS`` / ``BHS`` addressed back
(sender and receiver swapped, the sender's delimiters, a fresh control id in ``-11`` and the
incoming control id in ``-12``, the *reference* file / batch control id), one original-mode ACK
per message (MSA-2 names each message's MSH-10), ``BTS-1`` the number of ACKs, ``FTS-1`` the
number of batches. Enhanced-mode senders get the same original-mode answers inside a batch.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from adapters.hl7v2.ack import _new_control_id
from adapters.listeners.files import split_messages

__all__ = ["batch_ack", "batch_messages", "ingest_batch"]

_BOM = b"\xef\xbb\xbf"
_HEADS = (b"FHS", b"BHS")


def batch_messages(raw: bytes) -> list[bytes] | None:
    """The messages of ``raw`` when it is a batch (its first segment is ``FHS`` or ``BHS``), else None."""
    body = raw.removeprefix(_BOM).lstrip(b"\r\n\t \x00")
    if body[:3] not in _HEADS or len(body) < 4 or body[3:4].isalnum() or body[3:4].isspace():
        return None
    return split_messages(raw)


def batch_ack(raw: bytes, acks: list[bytes]) -> bytes:
    """The batch of ``acks`` (each an ACK message, segments ended by CR) answering batch ``raw``."""
    heads: dict[bytes, tuple[bytes, bytes]] = {}  # FHS / BHS -> (its answer, its field separator)
    batches = 0
    for line in raw.removeprefix(_BOM).replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r"):
        line = line.lstrip(b"\x00\t ")
        name = line[:3]
        batches += name == b"BHS"
        if name in _HEADS and len(line) > 3 and name not in heads:
            heads[name] = (_answer_header(line), line[3:4])
    out = [heads[name][0] for name in _HEADS if name in heads]
    out += [a[:-1] if a.endswith(b"\r") else a for a in acks]
    if b"BHS" in heads:
        out.append(b"BTS" + heads[b"BHS"][1] + str(len(acks)).encode())
    if b"FHS" in heads:
        out.append(b"FTS" + heads[b"FHS"][1] + str(batches).encode())
    return b"\r".join(out) + b"\r"


def _answer_header(line: bytes) -> bytes:
    """The ``FHS``/``BHS`` answering ``line`` (fields up to -12)."""
    fs = line[3:4]
    fields = line.split(fs)  # fields[n - 1] is FHS-n / BHS-n, fields[1] the encoding characters

    def get(n: int) -> bytes:
        return fields[n - 1] if len(fields) >= n else b""

    stamp = datetime.now().astimezone().strftime("%Y%m%d%H%M%S%z").encode()
    # -3/-4 <- incoming -5/-6, -5/-6 <- incoming -3/-4, -7 now, -9 name echoed, -11 ours, -12 theirs
    return fs.join([line[:3], get(2), get(5), get(6), get(3), get(4), stamp, b"", get(9), b"",
                    _new_control_id().encode(), get(11)])


async def ingest_batch(ingestor: Any, raw: bytes, parts: list[bytes], *, channel: str, peer: str) -> tuple[bytes, list[Any]]:
    """Submit each message of batch ``raw`` (``parts``, from ``batch_messages``) to ``ingestor`` as
    one message of its own; the batch ACK and the outcomes, in the order sent."""
    futures = [asyncio.wrap_future(ingestor.submit(part, channel=channel, peer=peer)) for part in parts]
    outcomes = list(await asyncio.gather(*futures))
    return batch_ack(raw, [o.ack for o in outcomes]), outcomes
