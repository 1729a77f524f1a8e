"""The MLLP listener over real sockets: framing across partial reads, ordering, limits, TLS, bad input.

The handler here answers with a real ACK built from the message's own MSH (the pipeline is
tested in test_ingest*.py); these tests are about the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.hl7v2.ack import ack_code_of, build_ack
from adapters.hl7v2.header import extract_header
from adapters.listeners.mllp import MLLPFramer, MLLPServer, build_ssl_context, frame


def message(n: int, size: int = 0) -> bytes:
    obx = "".join(f"OBX|{i}|NM|GLU^葡萄糖^L||5.{i}|mmol/L|3.9-6.1|N|||F\r" for i in range(1, 4))
    text = f"MSH|^~\\&|LIS|FNXRMYY|HUREN|PLAT|20261101083000||ORU^R01^ORU_R01|C{n:05d}|P|2.5.1\r" + obx
    if size:
        text += "NTE|1||" + "x" * size + "\r"
    return text.encode()


async def ack_handler(payload: bytes, peer: str) -> bytes:
    header, _ = extract_header(payload)
    code = "AR" if not header.addressable else "AA"
    await asyncio.sleep(0)
    return build_ack(header, code, header.problems).encode()


def control_ids(acks: list[bytes]) -> list[str]:
    out = []
    for a in acks:
        msa = next(s for s in a.decode().split("\r") if s.startswith("MSA"))
        out.append(msa.split("|")[2])
    return out


async def read_acks(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    acks = []
    for _ in range(count):
        data = await asyncio.wait_for(reader.readuntil(b"\x1c\x0d"), 30)
        assert data[:1] == b"\x0b"
        acks.append(data[1:-2])
    return acks


def asynctest(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop (no pytest plugin needed)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 60))

    return run


@contextlib.asynccontextmanager
async def serving(handler: Any = ack_handler, **options: Any) -> AsyncIterator[MLLPServer]:
    options = {"max_message_bytes": 64 * 1024, "idle_timeout": 5.0} | options
    srv = MLLPServer(handler, host="127.0.0.1", port=0, **options)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


# -- framing --------------------------------------------------------------------------------

def test_framer_across_every_split_point() -> None:
    stream = frame(message(1)) + b"\r\n" + frame(message(2))
    for cut in range(len(stream) + 1):
        f = MLLPFramer(1 << 20)
        frames = f.feed(stream[:cut]) + f.feed(stream[cut:])
        assert [fr.payload for fr in frames] == [message(1), message(2)], cut
    one_byte = MLLPFramer(1 << 20)
    frames = [fr for i in range(len(stream)) for fr in one_byte.feed(stream[i : i + 1])]
    assert [fr.payload for fr in frames] == [message(1), message(2)]
    assert one_byte.stats.skipped_bytes == 2


def test_framer_drops_a_frame_cut_by_a_new_start_block() -> None:
    f = MLLPFramer(1 << 20)
    frames = f.feed(b"\x0bMSH|^~\\&|half a mess" + frame(message(3)))
    assert [fr.payload for fr in frames] == [message(3)]
    assert f.stats.truncated == 1


def test_framer_limits_size_but_keeps_the_head() -> None:
    f = MLLPFramer(1000)
    big = message(4, size=5000)
    frames = f.feed(frame(big)[:2000]) + f.feed(frame(big)[2000:])
    assert len(frames) == 1 and frames[0].oversized and frames[0].size == len(big)
    assert frames[0].payload.startswith(b"MSH|") and len(frames[0].payload) < len(big) + 1


# -- the server -------------------------------------------------------------------------------

@asynctest
async def test_many_messages_one_connection_in_order() -> None:
    async with serving() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        # pipelined, in one write, then one split in awkward places
        writer.write(b"".join(frame(message(i)) for i in range(50)))
        blob = frame(message(50)) + frame(message(51))
        for i in range(0, len(blob), 7):
            writer.write(blob[i : i + 7])
            await writer.drain()
        acks = await read_acks(reader, 52)
        assert control_ids(acks) == [f"C{i:05d}" for i in range(52)]
        assert all(ack_code_of(a) == "AA" for a in acks)
        writer.close()


@asynctest
async def test_answers_ready_out_of_order_are_written_in_message_order() -> None:
    """Answers finishing in any order (some together, as a group commit finishes them; some
    later) go out in the order the messages came, each exactly once."""
    release = asyncio.Event()

    async def uneven(payload: bytes, peer: str) -> bytes:
        header, _ = extract_header(payload)
        n = int(header.control_id[1:])
        if n % 3 == 0:
            await release.wait()  # these finish together, after the others
        else:
            await asyncio.sleep((20 - n) * 0.005)  # later messages first
        return build_ack(header, "AA").encode()

    async with serving(uneven) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"".join(frame(message(i)) for i in range(20)))
        await writer.drain()
        await asyncio.sleep(0.2)
        release.set()
        acks = await read_acks(reader, 20)
        assert control_ids(acks) == [f"C{i:05d}" for i in range(20)]
        writer.close()
    assert server.stats.ack_codes == {"AA": 20}


@asynctest
async def test_many_connections_at_once() -> None:
    async with serving() as server:
        async def sender(k: int) -> list[str]:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            ids = []
            for i in range(10):
                writer.write(frame(message(k * 100 + i)))
                ids += control_ids(await read_acks(reader, 1))
            writer.close()
            return ids

        results = await asyncio.gather(*(sender(k) for k in range(20)))
        for k, ids in enumerate(results):
            assert ids == [f"C{k * 100 + i:05d}" for i in range(10)]
        assert server.stats.connections_total >= 20


@asynctest
async def test_garbage_truncation_and_oversize_never_stop_the_listener() -> None:
    async with serving() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\n\r\n")  # outside any frame: skipped
        writer.write(frame(b"\x00\xff\xfe binary \x01\x02"))  # a frame of garbage: AR
        writer.write(frame(message(7, size=100_000)))  # over the 64 KB limit: AR, addressed
        writer.write(b"\x0bMSH|^~\\&|LIS|FNXRMYY|cut")  # abandoned by the next start block
        writer.write(frame(message(8)))
        acks = await read_acks(reader, 3)
        assert [ack_code_of(a) for a in acks] == ["AR", "AR", "AA"]
        assert control_ids(acks)[1:] == ["C00007", "C00008"]
        assert b"exceeds the maximum of 65536 bytes" in acks[1]
        writer.write(b"\x0bMSH|^~\\&|cut off by close")
        await writer.drain()
        writer.close()
        await asyncio.sleep(0.05)
        assert server.stats.truncated == 2 and server.stats.oversized == 1
        # still serving
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(frame(message(9)))
        assert control_ids(await read_acks(reader, 1)) == ["C00009"]
        writer.close()


@asynctest
async def test_a_failing_handler_gets_an_ae_and_the_server_survives() -> None:
    async def broken(payload: bytes, peer: str) -> bytes:
        if b"C00001" in payload:
            raise RuntimeError("boom")
        return await ack_handler(payload, peer)

    srv = MLLPServer(broken, port=0, idle_timeout=5)
    await srv.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(frame(message(1)) + frame(message(2)))
        acks = await read_acks(reader, 2)
        assert [ack_code_of(a) for a in acks] == ["AE", "AA"]
        assert b"internal error" in acks[0] and b"boom" not in acks[0]
        writer.close()
    finally:
        await srv.stop()


@asynctest
async def test_idle_connections_are_closed() -> None:
    srv = MLLPServer(ack_handler, port=0, idle_timeout=0.2)
    await srv.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        assert await asyncio.wait_for(reader.read(), 3) == b""  # EOF from the server
        assert srv.stats.idle_closed == 1
        writer.close()
        # a sender that stalls in the middle of a frame is closed too; the fragment is not ACKed
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(frame(message(1)) + b"\x0bMSH|^~\\&|LIS|FNXRMYY|stall")
        assert control_ids(await read_acks(reader, 1)) == ["C00001"]
        assert await asyncio.wait_for(reader.read(), 3) == b""
        await asyncio.sleep(0.05)
        assert srv.stats.idle_closed == 2 and srv.stats.truncated == 1
        writer.close()
    finally:
        await srv.stop()


# -- TLS with client certificates -----------------------------------------------------------

def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None = None,
          issuer_key: ec.EllipticCurvePrivateKey | None = None, ca: bool = False) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None) -> None:
    data = cert.public_bytes(serialization.Encoding.PEM)
    path.write_bytes(data)
    if key is not None:
        path.with_suffix(".key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


@asynctest
async def test_tls_with_client_certificates(tmp_path: Path) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("huren test CA", ca_key, ca=True)
    srv_key, cli_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    _write(tmp_path / "ca.pem", ca)
    _write(tmp_path / "server.pem", _cert("localhost", srv_key, ca, ca_key), srv_key)
    _write(tmp_path / "client.pem", _cert("FNXRMYY-LIS", cli_key, ca, ca_key), cli_key)
    ctx = build_ssl_context(tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem")
    srv = MLLPServer(ack_handler, port=0, ssl_context=ctx, idle_timeout=5)
    await srv.start()
    try:
        client = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        client.load_cert_chain(str(tmp_path / "client.pem"), str(tmp_path / "client.key"))
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port, ssl=client,
                                                       server_hostname="localhost")
        writer.write(frame(message(1)))
        assert control_ids(await read_acks(reader, 1)) == ["C00001"]
        writer.close()

        anonymous = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port, ssl=anonymous,
                                                           server_hostname="localhost")
            writer.write(frame(message(2)))
            await read_acks(reader, 1)
        # the listener is still there for well-behaved clients
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port, ssl=client,
                                                       server_hostname="localhost")
        writer.write(frame(message(3)))
        assert control_ids(await read_acks(reader, 1)) == ["C00003"]
        writer.close()
    finally:
        await srv.stop()
