"""rv36g probes (thirty-sixth round review of count36, putback36, perfi36b, mewards36).

Real HL7 through ``POST /hl7v2`` and the operator's ``/admin/quarantine/{id}/replay`` into the real store on each
backend (priv36's ``world``: an engine alerting every 3 refusals), the counts read back through
``/admin/fidelity``."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.listeners.mllp import _peer_name
from engine.engine import Engine
from engine.member_refusals import MemberRefusals, client_of
from engine.messages import message_id
from engine.repository.mongo_store import MongoStore
from tests.hl7_calls import err_lines, module_http, post, written  # noqa: F401  (module_http: the fixture ``http``)
from tests.module_store import module_eng
from tests.test_count36_refusals import _by, _operator, _probe, _registered
from tests.test_perfi36b_panel_dates import _TESTS, _panel, _values
from tests.test_priv36_refusals import _refusal_records, world  # noqa: F401  (the fixture)

engine = module_eng  # control ids and filler numbers of their own (RV36G-...)


def test_sender_resends_around_replays_are_counted_once_and_never_as_the_operator(
        world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """count36 keys "a replay" on the stored message's last ``replays`` entry (``_Item.replay``). A sender's resend
    of the refused bytes -- before a plain replay, after it, and after the operator's corrected copy (whose entry
    carries ``previous_sha256``) -- is answered as recorded: counted nowhere, and never under the operator's
    client ``replay:operator36`` (the sender's probe must not be charged to the operator, nor the operator's
    question to the sender's client). Only the first arrival (the sender's) and the corrected copy (the operator's
    alone: fid37) are counted."""
    engine, http = world
    _registered(http, "GA1")

    def counts() -> tuple[int, int, int, int]:
        return (_by(engine, http, "institution", "FNZYY"), _by(engine, http, "client", "http:priv36"),
                _by(engine, http, "client", "replay:operator36"), len(_refusal_records(engine)))

    inst, client, operator, audited = counts()
    assert ack_code_of(post(http, _probe("GA1"))) == "AE"
    assert counts() == (inst + 1, client + 1, operator, audited + 1)
    assert ack_code_of(post(http, _probe("GA1"))) == "AE"  # the sender's resend: answered as recorded
    assert counts() == (inst + 1, client + 1, operator, audited + 1)
    doc_id = message_id("FNZYY", "GA1B")
    r = http.post(f"/admin/quarantine/{doc_id}/replay", headers=_operator(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text
    assert ack_code_of(post(http, _probe("GA1"))) == "AE"
    assert counts() == (inst + 1, client + 1, operator, audited + 1)
    corrected = _probe("GA1", value="5.7")
    r = http.post(f"/admin/quarantine/{doc_id}/replay", content=corrected.encode(), headers=_operator(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text
    assert counts() == (inst + 1, client + 1, operator + 1, audited + 2)  # the operator's alone (fid37)
    for again in (_probe("GA1"), corrected, _probe("GA1", value="5.9")):  # the sender again, any bytes
        assert ack_code_of(post(http, again)) == "AE"
    assert counts() == (inst + 1, client + 1, operator + 1, audited + 2)


def test_two_processes_on_a_standalone_mongodb_keep_every_refusal_count() -> None:
    """Two engine processes on one standalone MongoDB (two ``MongoStore`` over one client, as two processes over one
    server: mongomock has no multi-document transactions, as a standalone server has none), the race forced
    deterministically: process A reads FNZYY's count on FNXRMYY's numbers, process B counts one refusal while A
    holds what it read, then A writes. Two refusals must be counted, and the threshold 1's multiples 1 and 2
    crossed once each.

    (cn36: A is held at its first touch of the rows, whichever it is: after a ``find`` returns, as the read-then-
    write count did, or before an atomic ``increment`` runs, as the count now does -- so the probe holds A at the
    point where a lost count could arise in either form.)"""
    import mongomock

    client = mongomock.MongoClient()
    a, b = MemberRefusals(MongoStore(client, "huren")), MemberRefusals(MongoStore(client, "huren"))
    read, b_done = threading.Event(), threading.Event()
    found, increment = a.rows.find, a.rows.increment

    def find_then_wait(*args: Any, **kwargs: Any) -> Any:
        out = found(*args, **kwargs)
        read.set()
        b_done.wait(timeout=5)
        return out

    def wait_then_increment(*args: Any, **kwargs: Any) -> Any:
        read.set()
        b_done.wait(timeout=5)
        return increment(*args, **kwargs)

    a.rows.find = find_then_wait  # type: ignore[method-assign]  (process A paused between its read and write)
    a.rows.increment = wait_then_increment  # type: ignore[method-assign]
    crossed: list[int] = []

    def count_a() -> None:
        crossed.extend(c.after for c in a.count("FNXRMYY", {"institution": "FNZYY"}).values() if c.crossed(1))

    worker = threading.Thread(target=count_a)
    worker.start()
    assert read.wait(timeout=5)
    crossed.extend(c.after for c in b.count("FNXRMYY", {"institution": "FNZYY"}).values() if c.crossed(1))
    b_done.set()
    worker.join(timeout=10)
    a.rows.find, a.rows.increment = found, increment  # type: ignore[method-assign]
    (row,) = b.of("FNXRMYY")
    assert row["count"] == 2 and sorted(crossed) == [1, 2], (row, crossed)


class _TlsConnection:
    """What an asyncio TLS connection tells ``mllp._peer_name`` (peername, the client certificate, sockname): the
    transport around the code under test, which is the listener's peer text and ``client_of``'s reading of it."""

    def __init__(self, cn: str, host: str = "10.1.2.3", port: int = 40000) -> None:
        self.info = {"peername": (host, port), "sockname": ("0.0.0.0", 2575),
                     "peercert": {"subject": ((("countryName", "CN"),), (("commonName", cn),))}}

    def get_extra_info(self, name: str) -> Any:
        return self.info.get(name)


def test_two_tls_clients_whose_cn_share_a_first_word_are_two_clients() -> None:
    """Two hospitals' MLLP clients, certificates CN 'Fengning County Hospital' and 'Fengning Zhongyi Hospital',
    through the listener's own peer text (``mllp._peer_name``): ``client_of`` must name two clients."""
    a = client_of(_peer_name(_TlsConnection("Fengning County Hospital")))  # type: ignore[arg-type]
    b = client_of(_peer_name(_TlsConnection("Fengning Zhongyi Hospital", port=40001)))  # type: ignore[arg-type]
    assert a.startswith("tls:") and b.startswith("tls:") and a != b, (a, b)


def test_a_batch_dates_its_own_later_statement_and_the_next_batch_reads_it_stored(
        engine: Engine, http: TestClient) -> None:  # noqa: F811
    """perfi36b empties ``Ingestor._stamped`` at each one-commit batch's start and end. One batch
    (``Ingestor.process``: one ``_run_batch``) of the panel stated at 10:00, restated at 12:00 with other values,
    then restated at 11:00 with a third set: the 12:00 values taken (later than 10:00), the 11:00 held at every
    result (older than the 12:00 of its own batch, whose Provenance is not written yet: ``_Dates.pending``). The next
    batch's restatement at 11:30 is held too, dated against the stored Provenances (nothing of the first batch left
    in ``_stamped`` to answer it), and one at 13:00 taken."""
    order, lis = "RV36GB", ("mllp", "127.0.0.1:1 port=2575")
    first = engine.ingestor.process([
        (_panel("RV36G-B1", "20261203100000", ("5.6", "4.1", "70"), order).encode(), *lis),
        (_panel("RV36G-B2", "20261203120000", ("6.6", "5.1", "80"), order).encode(), *lis),
        (_panel("RV36G-B3", "20261203110000", ("7.6", "6.1", "90"), order).encode(), *lis)])
    assert [o.code for o in first] == ["AA", "AA", "AA"], [o.ack for o in first]
    assert engine.ingestor._stamped == {}
    obs = written(engine, http, "RV36G-B1", "Observation")
    by_code = {o["code"]["coding"][0]["code"]: o["id"] for o in obs}
    ids = [by_code[code] for code, _, _ in _TESTS]
    assert _values(http, ids) == [6.6, 5.1, 80], "the 11:00 restatement is older than the batch's 12:00"
    assert len([e for e in err_lines(first[2].ack) if "OBX" in e]) == 3, first[2].ack
    (late,) = engine.ingestor.process(
        [(_panel("RV36G-B4", "20261203113000", ("8.6", "7.1", "99"), order).encode(), *lis)])
    assert late.code == "AA" and len([e for e in err_lines(late.ack) if "OBX" in e]) == 3, late.ack
    assert _values(http, ids) == [6.6, 5.1, 80]
    (later,) = engine.ingestor.process(
        [(_panel("RV36G-B5", "20261203130000", ("9.6", "8.1", "101"), order).encode(), *lis)])
    assert later.code == "AA", later.ack
    assert _values(http, ids) == [9.6, 8.1, 101]
