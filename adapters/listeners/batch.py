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
from adapters.hl7v2.charsets import canonical
from adapters.listeners.files import split_messages

__all__ = ["batch_ack", "batch_messages", "ingest_batch", "one_set"]

_BOM = b"\xef\xbb\xbf"
_HEADS = (b"FHS", b"BHS")


def batch_messages(raw: bytes) -> list[bytes] | None:
    """The messages of ``raw`` when it is a batch (its first segment is ``FHS`` or ``BHS``), else None."""
    body = raw.removeprefix(_BOM).lstrip(b"\r\n\t \x00")
    if body[:3] not in _HEADS or len(body) < 4 or body[3:4].isalnum() or body[3:4].isspace():
        return None
    return [m for _, messages in _batches(raw) for m in messages]


def _envelope(line: bytes, name: bytes) -> bool:
    return line[:3] == name and (len(line) == 3 or not line[3:4].isalnum())


def _batches(raw: bytes) -> list[tuple[bytes | None, list[bytes]]]:
    """``raw`` cut at its ``BHS`` segments: ``(the BHS line, its messages)`` in the order sent, with
    ``None`` for messages outside any ``BHS`` (an ``FHS`` file of bare messages, or text between a
    ``BTS`` and the next ``BHS``). A file of two batches was answered as one (one ``BHS``, a ``BTS``
    counting every ACK, ``FTS-1`` saying two; twenty-first round, hl7mend21)."""
    groups: list[tuple[bytes | None, list[bytes]]] = []
    lines: list[bytes] = []
    head: bytes | None = None

    def close() -> None:
        if head is not None or any(x.strip(b"\r\n\t \x00") for x in lines):
            groups.append((head, split_messages(b"\r".join(lines) + b"\r")))

    for line in raw.removeprefix(_BOM).replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r"):
        seg = line.lstrip(b"\x00\t ")
        if _envelope(seg, b"BHS"):
            close()
            head, lines = seg, []
        elif _envelope(seg, b"BTS"):
            close()
            head, lines = None, []
        elif not (_envelope(seg, b"FHS") or _envelope(seg, b"FTS")):
            lines.append(line)
    close()
    return groups


def batch_ack(raw: bytes, acks: list[bytes]) -> bytes:
    """The batch of ``acks`` (each an ACK message, segments ended by CR, one per message of
    ``batch_messages(raw)``) answering batch ``raw``: ``FHS`` when it has one, then batch by batch
    its ``BHS``, that batch's ACKs and a ``BTS`` counting them; ``FTS-1`` the number of batches."""
    lines = raw.removeprefix(_BOM).replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    fhs = next((x.lstrip(b"\x00\t ") for x in lines if _envelope(x.lstrip(b"\x00\t "), b"FHS")), None)
    out = [_answer_header(fhs)] if fhs is not None else []
    bare = [a[:-1] if a.endswith(b"\r") else a for a in acks]
    batches = 0
    for bhs, messages in _batches(raw):
        mine, bare = bare[: len(messages)], bare[len(messages) :]
        if bhs is None:
            out += mine
            continue
        batches += 1
        out += [_answer_header(bhs), *mine, b"BTS" + bhs[3:4] + str(len(mine)).encode()]
    out += bare  # none, when acks answer batch_messages(raw)
    if fhs is not None:
        out.append(b"FTS" + fhs[3:4] + str(batches).encode())
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
    return batch_ack(raw, one_set(outcomes)[0]), outcomes


UTF8_MSH18 = "UNICODE UTF-8"


def one_set(outcomes: list[Any]) -> tuple[list[bytes], str]:
    """The ACKs of ``outcomes`` in one character set, and that set (a Python codec).

    Each ACK is in its own message's set (``Outcome.codec``); a batch is one byte stream -- one HTTP
    body with one ``charset``, one MLLP frame -- so when the ACKs that are not plain ASCII are in
    different sets, the body held GB 18030 and UTF-8 side by side under ``charset=UTF-8`` and
    decoded as neither (twenty-first round, hl7mend21). HL7 has no batch-level character set
    (``FHS``/``BHS`` carry none): each message's MSH-18 says its own. So such a batch is answered
    in UTF-8, which holds every set's text: each ACK not already UTF-8 (or ASCII) is re-encoded and
    its MSH-18 set to ``UNICODE UTF-8`` (table 0211), so every ACK still says what its bytes are."""
    sets = {canonical(o.codec) for o in outcomes if not o.ack.isascii()}
    if len(sets) <= 1:
        codecs_ = {canonical(o.codec) for o in outcomes}
        return [o.ack for o in outcomes], (sets.pop() if sets else codecs_.pop() if len(codecs_) == 1 else "utf-8")
    acks = []
    for o in outcomes:
        if o.ack.isascii() or canonical(o.codec) == "utf-8":
            acks.append(o.ack)
            continue
        text = o.ack.decode(canonical(o.codec), errors="replace")
        head, sep, rest = text.partition("\r")
        fs = head[3:4] or "|"
        fields = head.split(fs)
        fields += [""] * (18 - len(fields))
        fields[17] = UTF8_MSH18
        acks.append((fs.join(fields) + sep + rest).encode("utf-8"))
    return acks, "utf-8"
