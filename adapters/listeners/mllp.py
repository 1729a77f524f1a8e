"""MLLP (Minimal Lower Layer Protocol) listener: ``0x0B message 0x1C 0x0D`` over TCP, optionally TLS.

What a hospital interface engine expects from the receiving end, and what this does:

* frames are found across arbitrary TCP reads (a frame split over many packets, many frames in
  one packet); bytes outside a frame (keep-alive newlines, noise) are skipped and counted;
* many messages per connection, answered **in order**, one ACK per message (or, for a handler
  answering in enhanced mode, a ``Replies``: the accept ACK, then the application ACK). A sender may
  pipeline (send the next message before the previous ACK arrives): every frame is handed to
  the handler at once, so a pipelining sender gets its messages group-committed together;
* many connections at once (one asyncio task each);
* a maximum message size: an oversized frame is not buffered; its first bytes are kept so the
  sender still gets an ``AR`` addressed from its own MSH (ERR: ``207``, the size limit);
* an idle timeout closes connections that send nothing while no ACK is pending;
* a frame cut off by a new start block or by the connection closing was never complete, so it
  is not acknowledged (the sender resends it); it is counted and logged;
* optional TLS, with client certificates required when a client CA is configured.

The listener never raises on bad input: whatever the handler or the bytes do, the connection
gets an ACK or is closed, and the server keeps accepting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.hl7v2.ack import build_ack
from adapters.hl7v2.errors import APPLICATION_INTERNAL_ERROR, HL7Error
from adapters.hl7v2.header import extract_header

log = logging.getLogger("huren.mllp")

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\x0d"
HEAD_KEEP = 64 * 1024  # bytes kept from an oversized frame, enough for any MSH



@dataclass
class Replies:
    """More than one answer to one message, written in this order before the next message's:
    ``first`` now, then what ``later`` resolves to. None means nothing to send."""

    first: bytes | None
    later: Awaitable[bytes | None] | None = None


Handler = Callable[[bytes, str], Awaitable["bytes | Replies"]]
# A handler may also have ``dispatch(payload, peer) -> asyncio.Future`` (of the running loop),
# which the server calls instead: the answer without a task and a coroutine per message.


def frame(payload: bytes) -> bytes:
    """Wrap one message (or ACK) in the MLLP block characters."""
    return START_BLOCK + payload + END_BLOCK + CARRIAGE_RETURN


@dataclass
class Frame:
    """One complete block. ``oversized`` frames carry only their first ``HEAD_KEEP`` bytes."""

    payload: bytes
    size: int
    oversized: bool = False


@dataclass
class FramerStats:
    frames: int = 0
    oversized: int = 0
    truncated: int = 0
    skipped_bytes: int = 0


class MLLPFramer:
    """Incremental MLLP decoder: ``feed`` bytes as they arrive, get complete frames back.

    Tolerant where senders are known to differ: bytes between frames are skipped, and an end
    block not followed by CR still ends the frame (the CR, when it comes, is consumed).
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.stats = FramerStats()
        self._in_frame = False
        self._parts: list[bytes] = []
        self._size = 0
        self._oversized = False
        self._skip_cr = False

    @property
    def pending(self) -> bool:
        """True while part of a frame has been received but not its end."""
        return self._in_frame

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        pos, n = 0, len(data)
        if self._skip_cr and n:
            self._skip_cr = False
            if data[0:1] == CARRIAGE_RETURN:
                pos = 1
        while pos < n:
            if not self._in_frame:
                start = data.find(START_BLOCK, pos)
                if start < 0:
                    self.stats.skipped_bytes += n - pos
                    break
                self.stats.skipped_bytes += start - pos
                self._begin()
                pos = start + 1
                continue
            end = data.find(END_BLOCK, pos)
            restart = data.find(START_BLOCK, pos, end if end >= 0 else n)
            if restart >= 0:
                # a new frame starts before this one ended: the partial frame is abandoned
                self._truncate()
                pos = restart
                continue
            if end < 0:
                self._append(data[pos:])
                break
            self._append(data[pos:end])
            frames.append(self._finish())
            pos = end + 1
            if pos < n:
                if data[pos : pos + 1] == CARRIAGE_RETURN:
                    pos += 1
            else:
                self._skip_cr = True
        return frames

    def close(self) -> None:
        """The connection ended: a partial frame is dropped (never acknowledged, so it is resent)."""
        if self._in_frame:
            self._truncate()

    def _begin(self) -> None:
        self._in_frame = True
        self._parts = []
        self._size = 0
        self._oversized = False

    def _append(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._size += len(chunk)
        if self._oversized:
            return
        if self._size > self.max_size:
            self._oversized = True
            kept = sum(len(p) for p in self._parts)
            if kept < HEAD_KEEP:
                self._parts.append(chunk[: HEAD_KEEP - kept])
            return
        self._parts.append(chunk)

    def _finish(self) -> Frame:
        payload = b"".join(self._parts)
        result = Frame(payload, self._size, self._oversized)
        self.stats.frames += 1
        if self._oversized:
            self.stats.oversized += 1
        self._in_frame = False
        self._parts = []
        return result

    def _truncate(self) -> None:
        self.stats.truncated += 1
        log.warning("MLLP frame of %d bytes abandoned before its end block; not acknowledged", self._size)
        self._in_frame = False
        self._parts = []


@dataclass
class ListenerStats:
    connections_total: int = 0
    connections_open: int = 0
    messages: int = 0
    oversized: int = 0
    truncated: int = 0
    skipped_bytes: int = 0
    handler_errors: int = 0
    idle_closed: int = 0
    tls_failures: int = 0
    ack_codes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def build_ssl_context(cert: Path | None, key: Path | None, client_ca: Path | None) -> ssl.SSLContext | None:
    """Server TLS context from the ``HUREN_MLLP_TLS_*`` settings; None when no certificate is set.

    With a client CA, clients must present a certificate it signed (mutual TLS).
    """
    if cert is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key) if key else None)
    if client_ca is not None:
        ctx.load_verify_locations(cafile=str(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def oversize_ack(head: bytes, size: int, limit: int) -> bytes:
    """AR for a frame larger than the limit, addressed from whatever MSH its first bytes hold."""
    header, _ = extract_header(head)
    err = HL7Error(f"message of {size} bytes exceeds the maximum of {limit} bytes; not stored",
                   code=APPLICATION_INTERNAL_ERROR, ack_code="AR")
    return build_ack(header, "AR", [err]).encode(ack_codec(header.codec))


def internal_error_ack(payload: bytes, exc: BaseException) -> bytes:
    """Last-resort ACK when the handler itself failed: AE, so the sender retries later."""
    header, _ = extract_header(payload)
    err = HL7Error(f"internal error while processing the message ({type(exc).__name__}); resend later",
                   code=APPLICATION_INTERNAL_ERROR, ack_code="AE")
    return build_ack(header, "AE", [err]).encode(ack_codec(header.codec))


def ack_codec(codec: str) -> str:
    return "utf-8" if codec.endswith("?") else codec


class MLLPServer:
    """Asyncio MLLP server; ``handler(payload, peer) -> ack bytes`` does the real work."""

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 2575,
        max_message_bytes: int = 4 * 1024 * 1024,
        idle_timeout: float = 300.0,
        ssl_context: ssl.SSLContext | None = None,
        read_size: int = 64 * 1024,
        max_in_flight: int = 1000,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.max_message_bytes = max_message_bytes
        self.idle_timeout = idle_timeout
        self.ssl_context = ssl_context
        self.read_size = read_size
        self.max_in_flight = max_in_flight  # unanswered messages per connection before reading pauses
        self.stats = ListenerStats()
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve_connection, self.host, self.port, ssl=self.ssl_context,
            limit=self.read_size, ssl_handshake_timeout=30 if self.ssl_context else None,
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        log.info("MLLP listening on %s:%d%s", self.host, self.port, " (TLS)" if self.ssl_context else "")

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        peer = _peer_name(writer)
        self.stats.connections_total += 1
        self.stats.connections_open += 1
        framer = MLLPFramer(self.max_message_bytes)
        acks: asyncio.Queue[asyncio.Future[bytes | Replies] | None] = asyncio.Queue()
        outstanding = [0]  # messages received on this connection and not yet answered
        sender = asyncio.create_task(self._send_acks(acks, writer, outstanding))
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        data = await reader.read(self.read_size)
                except TimeoutError:
                    if outstanding[0] > 0:
                        continue  # we owe ACKs: the silence is ours
                    self.stats.idle_closed += 1
                    log.info("MLLP %s idle for %.0fs: closing", peer, self.idle_timeout)
                    break
                if not data:
                    break
                for fr in framer.feed(data):
                    outstanding[0] += 1
                    acks.put_nowait(self._dispatch(fr, peer))
                while outstanding[0] > self.max_in_flight:  # a sender far ahead of its ACKs: stop reading
                    await asyncio.sleep(0.005)
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            log.info("MLLP %s connection error: %s", peer, exc)
            if isinstance(exc, ssl.SSLError):
                self.stats.tls_failures += 1
        except asyncio.CancelledError:
            pass
        finally:
            framer.close()
            self.stats.truncated += framer.stats.truncated
            self.stats.skipped_bytes += framer.stats.skipped_bytes
            self.stats.oversized += framer.stats.oversized
            acks.put_nowait(None)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await sender
            with contextlib.suppress(Exception):
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 5)
            self.stats.connections_open -= 1
            if task is not None:
                self._connections.discard(task)

    def _dispatch(self, fr: Frame, peer: str) -> asyncio.Future[bytes | Replies]:
        self.stats.messages += 1
        if fr.oversized:
            fut: asyncio.Future[bytes | Replies] = asyncio.get_running_loop().create_future()
            fut.set_result(oversize_ack(fr.payload, fr.size, self.max_message_bytes))
            return fut
        dispatch = getattr(self.handler, "dispatch", None)
        if dispatch is not None:  # a handler that settles a future itself: no task per message
            try:
                return dispatch(fr.payload, peer)  # type: ignore[no-any-return]
            except Exception as exc:
                fut = asyncio.get_running_loop().create_future()
                fut.set_result(self._failed(fr.payload, peer, exc))
                return fut
        return asyncio.ensure_future(self._handle(fr.payload, peer))

    def _failed(self, payload: bytes, peer: str, exc: Exception) -> bytes:
        self.stats.handler_errors += 1
        log.error("MLLP handler failed for a message from %s", peer, exc_info=exc)
        return internal_error_ack(payload, exc)

    async def _handle(self, payload: bytes, peer: str) -> bytes | Replies:
        try:
            return await self.handler(payload, peer)
        except Exception as exc:  # the listener must survive anything the pipeline does
            return self._failed(payload, peer, exc)

    async def _send_acks(self, acks: asyncio.Queue[asyncio.Future[bytes | Replies] | None],
                         writer: asyncio.StreamWriter, outstanding: list[int]) -> None:
        """Write ACKs strictly in the order the messages arrived.

        The answers of a group commit become ready together: those already answered when one is
        written go out with it in one socket write (one system call and one wake-up of the sender
        instead of one per message: ~0.1 ms of server CPU per ACK measured on loopback)."""
        broken = False
        carry: Any = _NOTHING  # taken from the queue, not yet ready: the next one to wait for
        while True:
            fut = await acks.get() if carry is _NOTHING else carry
            carry = _NOTHING
            if fut is None:
                return
            answer = await fut
            if isinstance(answer, Replies):
                if answer.first is not None:
                    broken = await self._write_acks(writer, [answer.first], broken, True)
                if answer.later is None:
                    outstanding[0] -= 1
                    continue
                try:
                    ack = await answer.later
                except Exception:  # the pipeline answered the accept ACK; the rest is logged
                    self.stats.handler_errors += 1
                    log.exception("application acknowledgement failed")
                    ack = None
                outstanding[0] -= 1
                if ack is not None:
                    broken = await self._write_acks(writer, [ack], broken, acks.empty())
                continue
            outstanding[0] -= 1
            ready = [answer]
            while not acks.empty():
                nxt = acks.get_nowait()
                if nxt is None or not nxt.done() or nxt.cancelled() or nxt.exception() is not None \
                        or isinstance(nxt.result(), Replies):
                    carry = nxt  # awaited (or handled) in turn by the loop above
                    break
                outstanding[0] -= 1
                ready.append(nxt.result())  # type: ignore[arg-type]
            broken = await self._write_acks(writer, ready, broken, carry is _NOTHING and acks.empty())

    async def _write_acks(self, writer: asyncio.StreamWriter, answers: list[bytes], broken: bool,
                          drain: bool) -> bool:
        """Count and write ACKs (one write for all); True once the connection is broken (then
        only counted, so every message is still processed)."""
        for ack in answers:
            code = _msa1(ack)
            self.stats.ack_codes[code] = self.stats.ack_codes.get(code, 0) + 1
        if broken:
            return True
        try:
            writer.write(b"".join(START_BLOCK + ack + END_BLOCK + CARRIAGE_RETURN for ack in answers))
            if drain:
                await writer.drain()
        except (ConnectionError, OSError):
            return True
        return False


_NOTHING = object()


def _msa1(ack: bytes) -> str:
    pos = ack.find(b"\rMSA")
    if pos < 0:
        return "?"
    return ack[pos + 5 : pos + 7].decode("ascii", "replace")


def _peer_name(writer: asyncio.StreamWriter) -> str:
    """``host:port [CN=<client certificate CN>] port=<listening port>``: stored with each message,
    so the site's sender table can bind a listener or a certificate to an institution."""
    addr = writer.get_extra_info("peername")
    name = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) and len(addr) >= 2 else str(addr)
    cert = writer.get_extra_info("peercert")
    if cert:
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    name = f"{name} CN={value}"
                    break
    local = writer.get_extra_info("sockname")
    if isinstance(local, tuple) and len(local) >= 2:
        name = f"{name} port={local[1]}"
    return name
