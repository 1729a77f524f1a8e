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
import logging
from datetime import datetime
from typing import Any

from adapters.hl7v2.ack import _new_control_id
from adapters.hl7v2.charsets import canonical
from adapters.hl7v2.escapes import Encoding, escape
from adapters.listeners.files import split_messages

__all__ = ["batch_ack", "batch_messages", "ingest_batch", "one_set"]

log = logging.getLogger("huren.ingest")

_BOM = b"\xef\xbb\xbf"
_HEADS = (b"FHS", b"BHS")


def batch_messages(raw: bytes) -> list[bytes] | None:
    """The messages of ``raw`` when it is a batch (its first segment is ``FHS`` or ``BHS``, maybe after lines of
    text: ``_after_text``), else None."""
    body = raw.removeprefix(_BOM).lstrip(b"\r\n\t \x00")
    if not _head(body) and (body[:3] == b"MSH" or b"HS" not in body or not _after_text(body)):  # a message
        return None
    return [m for _, messages, _ in _batches(raw) for m in messages]


def _head(segment: bytes) -> bool:
    return segment[:3] in _HEADS and len(segment) >= 4 and not segment[3:4].isalnum() and not segment[3:4].isspace()


def _after_text(body: bytes) -> bool:
    """Whether the first segment of ``body`` after lines of text is ``FHS``/``BHS``: a batch after a stray line
    (a banner, a file name) was read as one message and refused whole (hl7mode29); read as a batch, the text is
    a part of its own, answered AR (no MSH) in the batch's answer, and every message of the batch is answered."""
    for line in body.replace(b"\n", b"\r").split(b"\r"):
        seg = line.lstrip(b"\x00\t ")
        if _head(seg):
            return True
        if seg[:3] == b"MSH" or (len(seg) > 3 and seg[:3].isalnum() and seg[:3].isupper() and not seg[3:4].isalnum()
                                 and not seg[3:4].isspace()):
            return False  # a message (or a segment) comes first: not a batch
    return False


def _envelope(line: bytes, name: bytes) -> bool:
    return line[:3] == name and (len(line) == 3 or not line[3:4].isalnum())


def _batches(raw: bytes) -> list[tuple[bytes | None, list[bytes], bytes | None]]:
    """``raw`` cut at its ``BHS`` segments: ``(the BHS line, its messages, its BTS line)`` in the order
    sent, with ``None`` for messages outside any ``BHS`` (an ``FHS`` file of bare messages, or text
    between a ``BTS`` and the next ``BHS``) and for a batch that ends with no ``BTS``. A file of two
    batches was answered as one (one ``BHS``, a ``BTS`` counting every ACK, ``FTS-1`` saying two;
    twenty-first round, hl7mend21)."""
    groups: list[tuple[bytes | None, list[bytes], bytes | None]] = []
    lines: list[bytes] = []
    head: bytes | None = None

    def close(trailer: bytes | None = None) -> None:
        if head is not None or any(x.strip(b"\r\n\t \x00") for x in lines):
            groups.append((head, split_messages(b"\r".join(lines) + b"\r"), trailer))

    for line in raw.removeprefix(_BOM).replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r"):
        seg = line.lstrip(b"\x00\t ")
        if _envelope(seg, b"BHS"):
            close()
            head, lines = seg, []
        elif _envelope(seg, b"BTS"):
            close(seg)
            head, lines = None, []
        elif not (_envelope(seg, b"FHS") or _envelope(seg, b"FTS")):
            lines.append(line)
    close()
    return groups


def batch_ack(raw: bytes, acks: list[bytes]) -> bytes:
    """The batch of ``acks`` (each an ACK message, segments ended by CR, one per message of
    ``batch_messages(raw)``) answering batch ``raw``: ``FHS`` when it has one, then batch by batch
    its ``BHS``, that batch's ACKs and a ``BTS`` counting them; ``FTS-1`` the number of batches.

    A count the sender's trailer gives that the batch does not hold (``BTS-1`` batch message count,
    ``FTS-1`` file batch count: messages or batches lost on the way, or miscounted) is reported in the
    answering trailer's comment (``BTS-2`` / ``FTS-2``, v2.5.1 2.15.3 / 2.15.7), the one place HL7's
    batch protocol gives a receiver to speak of a batch as a whole (2.10.3.3: a batch is acknowledged
    message by message; no ACK names a message that never came). Every whole message is processed
    and answered as always: refusing them all would lose none of the missing ones back, and the
    sender resending the batch gets each one's recorded answer (twenty-ninth round, hl7mode29;
    answered ``BTS|2`` to ``BTS|5`` with no word before)."""
    lines = raw.removeprefix(_BOM).replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    fhs = next((x.lstrip(b"\x00\t ") for x in lines if _envelope(x.lstrip(b"\x00\t "), b"FHS")), None)
    fts = next((x.lstrip(b"\x00\t ") for x in lines if _envelope(x.lstrip(b"\x00\t "), b"FTS")), None)
    out = [_answer_header(fhs)] if fhs is not None else []
    bare = [a[:-1] if a.endswith(b"\r") else a for a in acks]
    batches = unheaded = 0
    for bhs, messages, bts in _batches(raw):
        mine, bare = bare[: len(messages)], bare[len(messages) :]
        if bhs is None:
            out += mine
            unheaded += any(m.startswith(b"MSH") for m in messages)
            continue
        batches += 1
        held = sum(1 for m in messages if m.startswith(b"MSH"))
        fs = bhs[3:4]
        trailer = [b"BTS", str(len(mine)).encode()]
        said = _count_said(bts, (held,), "BTS-1 (batch message count)", "message", "batch")
        if said:
            trailer.append(_comment(said, bhs))
        out += [_answer_header(bhs), *mine, fs.join(trailer)]
    out += bare  # none, when acks answer batch_messages(raw)
    if fhs is not None:
        trailer = [b"FTS", str(batches).encode()]
        # messages in no BHS are a batch whose optional BHS and BTS were left out (2.10.3: ``[FHS] { [BHS]
        # { MSH... } [BTS] } [FTS]``): a sender counting them one batch is right, as is one counting BHS
        # segments (rvhl7mode29 finding 3: "FHS, two messages, FTS|1" was told to send the missing ones)
        said = _count_said(fts, (batches, batches + unheaded), "FTS-1 (file batch count)", "batch", "file")
        if said:
            trailer.append(_comment(said, fhs))
        out.append(fhs[3:4].join(trailer))
    return b"\r".join(out) + b"\r"


def _count_said(trailer: bytes | None, counts: tuple[int, ...], what: str, unit: str, where: str) -> str:
    """Why a trailer's count (its field 1) is none of ``counts``, the readings of what ``where`` held (the
    first one said); "" when it is one, or says nothing."""
    if trailer is None or len(trailer) < 5:
        return ""
    fields = trailer.split(trailer[3:4])
    sent = fields[1].strip() if len(fields) > 1 else b""
    if not sent:
        return ""
    held = counts[0]
    plural = ("es" if unit == "batch" else "s") if held != 1 else ""
    if not sent.isdigit():
        text = sent[:20].decode("ascii", "replace")
        return f"{what} '{text}' is not a count; the {where} held {held} {unit}{plural}"
    if int(sent) in counts:
        return ""
    log.warning("%s says %d, the %s held %d %s%s", what, int(sent), where, held, unit, plural)
    return (f"{what} says {int(sent)}, the {where} held {held} {unit}{plural}: each whole message is answered "
            "here; send the missing ones again")


def _comment(text: str, head: bytes) -> bytes:
    """A trailer comment (ST) in the delimiters of the batch's header ``head`` (``FHS``/``BHS``, its field 2
    the encoding characters): each delimiter in it escaped as HL7 escapes text (a sent ``BTS-1`` quoted went
    back with a raw ``^`` and a doubled escape character, rvhl7mode29 finding 4), no segment end."""
    fs = head[3:4].decode("latin-1")
    chars = head[4:].split(head[3:4], 1)[0].decode("latin-1")
    enc = Encoding(field=fs, **{k: c for k, c in zip(("component", "repetition", "escape", "subcomponent"),
                                                     chars, strict=False)})
    return escape(text.replace("\r", " ").replace("\n", " "), enc).encode("ascii", "replace")


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
