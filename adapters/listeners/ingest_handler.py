"""The MLLP listener's handler: the ingest pipeline, answered in original or enhanced mode.

Original mode (the default, and every sender not opted in): one ACK, AA / AE / AR, after the
message is stored and processed. Enhanced mode (a sender opted in by the site whose MSH-15/16
ask for it, see ``adapters.hl7v2.enhanced``): the accept ACK as soon as the raw message is
committed, then the application ACK as a new ACK message **on the same connection**, before
the next message's answers. The same connection, as many interface engines do it, because the
sender already holds it open and is listening on it: no return address to configure, no second
connection to fail, and the order of answers stays the order of messages. An ACK arriving from
an enhanced-mode sender (its accept ACK of our application ACK, had it asked for one) gets no
answer, so two engines can never acknowledge each other's acknowledgements back and forth.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

from adapters.hl7v2.ack import build_ack
from adapters.hl7v2.enhanced import APPLICATION_ACK_TYPES, AckRequest, requested, wanted
from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.header import Header, read_message
from adapters.listeners.batch import batch_messages, ingest_batch
from adapters.listeners.mllp import Replies, ack_codec, internal_error_ack
from engine.messages import RECEIVED

log = logging.getLogger("huren.mllp")


class IngestHandler:
    """``handler(payload, peer)`` for ``MLLPServer`` over an ``engine.ingest.Ingestor``; the
    server calls ``dispatch`` instead (no task per message), the coroutine stays for any caller
    that awaits a handler."""

    def __init__(self, ingestor: Any) -> None:
        self.ingestor = ingestor
        self._inboxes: dict[asyncio.AbstractEventLoop, _Inbox] = {}

    async def __call__(self, raw: bytes, peer: str) -> bytes | Replies:
        return await self.dispatch(raw, peer)

    def dispatch(self, raw: bytes, peer: str) -> asyncio.Future[bytes | Replies]:
        """Hand ``raw`` to the ingest worker; the future (of the running loop) resolves to the answer.

        It is resolved once, by whichever comes first through the loop: the raw message committed
        (enhanced mode only: the accept ACK, then the application ACK to come) or the whole outcome
        (the original-mode ACK). Why no coroutine: a task per message, its coroutine, a second
        future and their wake-ups were ~20 us of the event loop's ~50-70 us a message; the worker's
        answer now settles the very future the listener's ACK writer awaits."""
        parts = batch_messages(raw)
        if parts is not None:  # FHS/BHS in one frame: each message on its own, a batch of ACKs back
            return asyncio.ensure_future(self._batch(raw, parts, peer))
        loop = asyncio.get_running_loop()
        inbox = self._inboxes.get(loop)
        if inbox is None:
            inbox = self._inboxes[loop] = _Inbox(loop)
        answer: asyncio.Future[bytes | Replies] = loop.create_future()

        def on_stored(header: Header, early: Any) -> None:  # the ingest worker's thread
            request = requested(header, self.ingestor.site)
            if request is not None:  # original-mode messages cost nothing more here
                inbox.put(answer, self._accepted, (header, request, early, done), raw)

        done = self.ingestor.submit(raw, channel="mllp", peer=peer, on_stored=on_stored)
        done.add_done_callback(lambda _: inbox.put(answer, self._answered, (raw, peer, done), raw))
        return answer

    async def _batch(self, raw: bytes, parts: list[bytes], peer: str) -> bytes:
        """A batch's answer; the listener's ACK writer awaits it, so it never raises: AE, resend later."""
        try:
            ack, _ = await ingest_batch(self.ingestor, raw, parts, channel="mllp", peer=peer)
        except Exception as exc:
            log.exception("answering an MLLP batch failed")
            return internal_error_ack(raw, exc)
        return ack

    def _answered(self, raw: bytes, peer: str, done: Any) -> bytes | Replies:
        """The original-mode answer once the outcome is known (in the loop)."""
        outcome = done.result()
        return self._never_stored(raw, peer, outcome) if outcome.status == RECEIVED and \
            outcome.code != "AA" else outcome.ack

    def _accepted(self, header: Header, request: AckRequest, early: Any, done: Any) -> bytes | Replies:
        """The enhanced-mode answers once the raw message is committed (in the loop)."""
        if header.message_code == "ACK":
            return Replies(None, None)
        if early is not None and early.code == "AR":  # refused at the envelope: commit reject
            accept = self._ack(header, "CR", early.errors)
            return Replies(accept if wanted(request.accept, "CR") else None, None)
        accept_ack = self._ack(header, "CA", []) if wanted(request.accept, "CA") else None
        return Replies(accept_ack, self._application_ack(header, request, asyncio.wrap_future(done)))

    async def _application_ack(self, header: Header, request: AckRequest, done: Any) -> bytes | None:
        outcome = await done
        if not wanted(request.application, outcome.code):
            return None
        return self._ack(header, outcome.code, outcome.errors, APPLICATION_ACK_TYPES)

    def _never_stored(self, raw: bytes, peer: str, outcome: Any) -> bytes | Replies:
        """A message the pipeline could not even store (its answer says resend later): CE
        (commit error) for an enhanced-mode sender, when MSH-15 wants it; the original-mode
        answer for anyone else."""
        header, _ = read_message(raw, peer, self.ingestor.site)
        request = requested(header, self.ingestor.site)
        if request is None:
            return outcome.ack
        return Replies(self._ack(header, "CE", outcome.errors) if wanted(request.accept, "CE") else None, None)

    def _ack(self, header: Header, code: str, errors: list[HL7Error],
             ack_types: tuple[str, str] | None = None) -> bytes:
        text = build_ack(header, code, errors, sending_application=self.ingestor.receiver_application,
                         ack_types=ack_types)
        try:
            return text.encode(ack_codec(header.codec))
        except (UnicodeEncodeError, LookupError):
            return text.encode("utf-8")


class _Inbox:
    """Results handed from the ingest worker's thread to one event loop, which is woken once per
    burst rather than once per message.

    Why: a group commit finishes tens of messages at once, and each ``call_soon_threadsafe``
    writes to the loop's wake-up pipe (a system call in the worker, a wake-up and a read in the
    loop). Here the first result of a burst schedules one drain; the others queue behind it.
    Order is kept: results are settled in the order they were put. Each is computed in the loop
    (``make(*args)``), where ACKs are built and futures wrapped; a future already settled (the
    accept answer came first) is left as it is."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._items: collections.deque[tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...], bytes]] = \
            collections.deque()
        self._lock = threading.Lock()
        self._armed = False

    def put(self, fut: asyncio.Future[Any], make: Callable[..., Any], args: tuple[Any, ...], raw: bytes) -> None:
        with self._lock:
            self._items.append((fut, make, args, raw))
            if self._armed:
                return
            self._armed = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            with self._lock:
                self._armed = False
                self._items.clear()

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, collections.deque()
            self._armed = False
        for fut, make, args, raw in items:
            if fut.done():
                continue
            try:
                value = make(*args)
            except Exception as exc:  # the listener must answer whatever happened: AE, resend later
                log.exception("answering an MLLP message failed")
                value = internal_error_ack(raw, exc)
            fut.set_result(value)
