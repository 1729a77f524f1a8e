"""cn36: one reading of a TLS client certificate's CN from the peer text the MLLP listener records
(``adapters.hl7v2.senders.peer_cn``), used by the site's sender table and the refusal counts' client.

Real TLS over a real socket: two member hospitals' client certificates whose CNs share their first word
("Fengning County Hospital", "Fengning Zhongyi Hospital"), the peer text the listener hands its handler read back
whole by both readers (rv36g LOW 1: ``CN=(\\S+)`` made them one client and one sender-table key)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from types import SimpleNamespace

from cryptography.hazmat.primitives.asymmetric import ec

from adapters.hl7v2.senders import peer_cn, sender_institution
from adapters.listeners.mllp import MLLPServer, build_ssl_context, frame
from engine.member_refusals import client_of
from tests.test_mllp import _cert, _write, ack_handler, asynctest, control_ids, message, read_acks

_CNS = ("Fengning County Hospital", "Fengning Zhongyi Hospital", "Fengning port=2575 Lab")


async def _peers_over_tls(tmp_path: Path) -> list[str]:
    """The peer text the listener recorded for one message from each of ``_CNS``'s client certificates."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("huren test CA", ca_key, ca=True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    _write(tmp_path / "ca.pem", ca)
    _write(tmp_path / "server.pem", _cert("localhost", srv_key, ca, ca_key), srv_key)
    peers: list[str] = []

    async def recording(payload: bytes, peer: str) -> bytes:
        peers.append(peer)
        return await ack_handler(payload, peer)

    ctx = build_ssl_context(tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem")
    srv = MLLPServer(recording, host="127.0.0.1", port=0, ssl_context=ctx, idle_timeout=5)
    await srv.start()
    try:
        for n, cn in enumerate(_CNS, 1):
            key = ec.generate_private_key(ec.SECP256R1())
            _write(tmp_path / f"client{n}.pem", _cert(cn, key, ca, ca_key), key)
            client = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
            client.load_cert_chain(str(tmp_path / f"client{n}.pem"), str(tmp_path / f"client{n}.key"))
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port, ssl=client,
                                                           server_hostname="localhost")
            writer.write(frame(message(n)))
            assert control_ids(await read_acks(reader, 1)) == [f"C{n:05d}"]
            writer.close()
    finally:
        await srv.stop()
    return peers


@asynctest
async def test_the_whole_cn_is_read_by_the_sender_table_and_the_refusal_counts(tmp_path: Path) -> None:
    peers = await _peers_over_tls(tmp_path)
    assert [peer_cn(p) for p in peers] == list(_CNS), peers
    assert [client_of(p) for p in peers] == [f"tls:{cn}" for cn in _CNS]
    site = SimpleNamespace(institutions={"FNXRMYY": {}, "FNZYY": {}, "FNLAB": {}}, tables={"senders": {
        "listeners": {"tls:Fengning County Hospital": "FNXRMYY", "tls:Fengning Zhongyi Hospital": "FNZYY",
                      "tls:Fengning port=2575 Lab": "FNLAB", "mllp:2575": "WRONG"}}})
    assert [sender_institution("", "LIS", p, site) for p in peers] == ["FNXRMYY", "FNZYY", "FNLAB"]


def test_a_peer_without_a_certificate_names_no_cn() -> None:
    """A plain MLLP connection, an HTTP post and a file import name no CN: the sender table falls to the port,
    the counts to the address or the system client."""
    assert peer_cn("10.1.2.3:40000 port=2575") == ""
    assert peer_cn("10.1.2.3 client=lis-fnxrmyy") == ""
    assert peer_cn("") == ""
    assert client_of("10.1.2.3:40000 port=2575") == "mllp:10.1.2.3"
    site = SimpleNamespace(institutions={}, tables={"senders": {"listeners": {"mllp:2575": "FNXRMYY"}}})
    assert sender_institution("", "LIS", "10.1.2.3:40000 port=2575", site) == "FNXRMYY"
