"""count36: a refusal for naming another member's record numbers is counted as the sender's probe only when the
sender sent it, per sending institution and per authenticated client (not per free-text MSH-3), named with its
client in the Security Alert record, and alerted on at each crossing of the threshold (rv36d's findings on priv36).

Real HL7 through ``POST /hl7v2`` (as two system clients), a real MLLP socket and the operator's
``/admin/quarantine/{id}/replay``, into the real store on each backend; the counts read back through
``/admin/fidelity`` and the audit log. The module ``world`` is priv36's (an engine alerting every 3 refusals),
so counts are read before and compared after. Two workers counting at once: two connections to one SQLite file."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.listeners.mllp import frame
from engine.engine import Engine
from engine.member_refusals import MemberRefusals
from engine.messages import message_id
from engine.repository.sqlite_store import SqliteStore
from tests.hl7_calls import err_lines, mllp_exchange, post
from tests.test_idfix35_merges import _zy
from tests.test_mfix34_members import _fnzyy
from tests.test_priv36_refusals import ALERT, _fidelity, _lis, _refusal_records, world  # noqa: F401  (the fixture)
from tests.test_rvidentity32_probes import adt, oru


def _by(engine: Engine, http: TestClient, by: str, key: str) -> int:
    """FNXRMYY's count of refusals of ``key`` (a sending institution, or a client) on its numbers."""
    return int(_fidelity(engine, http, "FNXRMYY").get("member_refused_by", {}).get(by, {}).get(key, 0))


def _registered(http: TestClient, n: str) -> None:
    """FNXRMYY registers its number ``n`` as 陈四 (F, 1992): the person FNZYY's probes then differ from."""
    assert ack_code_of(post(http, adt(f"{n}A", f"{n}^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"


def _probe(n: str, value: str = "5.6", app: str = "LIS", institution: str = "FNZYY") -> str:
    """A result under FNXRMYY's number ``n`` alone for 张三 (M): another person than FNXRMYY's record."""
    message = oru(f"{n}B", f"{n}^^^FNXRMYY^MR", "张^三", "", "M", f"GLU{n}", app=app).replace("||5.6|", f"||{value}|")
    return message.replace("|FNXRMYY|HUREN|", f"|{institution}|HUREN|", 1)


def _as(engine: Engine, http: TestClient, subject: str, message: str) -> bytes:
    """``POST /hl7v2`` as the system client ``subject``."""
    token = engine.auth.issue_system_token(subject, "system/MessageHeader.c")
    r = http.post("/hl7v2", content=message.encode(), headers={"Content-Type": "x-application/hl7-v2+er7",
                                                               "Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.content


def _operator(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("operator36", "system/*.cruds")}


def test_a_plain_replay_is_not_a_probe_and_a_corrected_copy_is_the_operators(world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """FNZYY's LIS is refused (AE 205) for naming FNXRMYY's CA1 for 张三: counted for FNZYY and for the client that
    posted it (priv36's token). FNZYY's operator replays the stored bytes twice: refused again, neither counted nor
    audited as a refusal (the replay's own record names the operator). The operator then replays a corrected copy
    that still names CA1 for 张三: that is the operator's own question -- counted for the operator alone
    (``replay:operator36``), not for FNZYY (fid37), the record saying so on the ``replay`` channel. A corrected copy
    under FNZYY's own number is filed and counted nowhere."""
    engine, http = world
    _registered(http, "CA1")
    fnzyy, poster = _by(engine, http, "institution", "FNZYY"), _by(engine, http, "client", "http:priv36")
    audited = len(_refusal_records(engine))
    assert ack_code_of(post(http, _probe("CA1"))) == "AE"
    assert _by(engine, http, "institution", "FNZYY") == fnzyy + 1
    assert _by(engine, http, "client", "http:priv36") == poster + 1
    doc_id = message_id("FNZYY", "CA1B")
    for _ in range(2):
        r = http.post(f"/admin/quarantine/{doc_id}/replay", headers=_operator(engine))
        assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text
    assert _by(engine, http, "institution", "FNZYY") == fnzyy + 1
    assert _by(engine, http, "client", "http:priv36") == poster + 1
    assert _by(engine, http, "client", "replay:operator36") == 0
    assert len(_refusal_records(engine)) == audited + 1
    replays = [e for e in engine.audit.events() if any(c.get("code") == "replay" for c in e.get("subtype") or ())]
    assert len(replays) >= 2 and "operator36" in repr(replays[-1]["agent"]), replays[-1]
    corrected = _probe("CA1", value="5.7")
    r = http.post(f"/admin/quarantine/{doc_id}/replay", content=corrected.encode(), headers=_operator(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text
    assert _by(engine, http, "institution", "FNZYY") == fnzyy + 1
    assert _by(engine, http, "client", "replay:operator36") == 1
    assert _by(engine, http, "client", "http:priv36") == poster + 1
    (record,) = _refusal_records(engine)[audited + 1:]
    assert record["details"]["client"] == "replay:operator36" and record["details"]["channel"] == "replay", record
    assert "refusals" not in record["details"] and record["details"]["client-refusals"] == "1", record
    own = corrected.replace("CA1^^^FNXRMYY^MR", "ZCA1^^^FNZYY^MR")
    r = http.post(f"/admin/quarantine/{doc_id}/replay", content=own.encode(), headers=_operator(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    assert _by(engine, http, "institution", "FNZYY") == fnzyy + 1
    assert len(_refusal_records(engine)) == audited + 2


def test_rotating_msh3_and_msh4_is_still_one_client_and_alerts(
        world: tuple[Engine, TestClient], caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    """A system client (``rot36``) posts three probes of FNXRMYY's numbers, each under another MSH-3 and two under
    another institution in MSH-4 (FNZYY, FNYLWSY): three refusals of one client. Its count reaches the threshold
    at the third, whose record says the threshold was reached naming the client, the log warns naming it, and
    the view lists it under ``alerts``; each institution is counted its own share."""
    engine, http = world
    for k in (1, 2, 3):
        _registered(http, f"CB{k}")
    fnzyy, fnylwsy = _by(engine, http, "institution", "FNZYY"), _by(engine, http, "institution", "FNYLWSY")
    audited = len(_refusal_records(engine))
    caplog.set_level(logging.WARNING, logger="huren.ingest")
    for k, institution in ((1, "FNZYY"), (2, "FNYLWSY"), (3, "FNYLWSY")):
        ack = _as(engine, http, "rot36", _probe(f"CB{k}", app=f"ROT{k}", institution=institution))
        assert ack_code_of(ack) == "AE" and err_lines(ack)[0].split("|")[3].startswith("205"), ack
    records = _refusal_records(engine)[audited:]
    assert [r["details"]["client"] for r in records] == ["http:rot36"] * 3, records
    assert [r["details"]["client-refusals"] for r in records] == ["1", "2", "3"], records
    assert [r["agent"][0]["who"]["identifier"]["value"] for r in records] == ["FNZYY", "FNYLWSY", "FNYLWSY"]
    assert "http:rot36" in records[2]["details"].get("alert", ""), records[2]["details"]
    assert "http:rot36" not in records[0]["details"].get("alert", "") + records[1]["details"].get("alert", "")
    assert _by(engine, http, "institution", "FNZYY") == fnzyy + 1
    assert _by(engine, http, "institution", "FNYLWSY") == fnylwsy + 2
    assert _fidelity(engine, http, "FNXRMYY")["alerts"]["http:rot36"] == 3
    warned = [r.getMessage() for r in caplog.records if "may be probing" in r.getMessage()]
    assert any("http:rot36" in w for w in warned), warned


def test_every_row_of_an_alerted_institution_is_flagged(world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """FNZYY's HIS is refused at PID-3 (an A04 keyed by FNXRMYY's CC1 for 冯三) and at MRG-1 (an A40 merging into
    its own 冯三 the record it keeps under FNXRMYY's CC2 of 陈四): two rows of one sender, at two locations.
    Once FNZYY's count has reached the threshold, both rows are flagged -- not only those read after a running
    total crossed it (rv36d LOW 2) -- and FNZYY is listed under ``alerts`` with its count."""
    engine, http = world
    _registered(http, "CC1")
    _registered(http, "CC2")
    assert ack_code_of(post(http, _fnzyy(adt("CC1B", "CC1^^^FNXRMYY^MR", "冯^三", "19610101", "M")))) == "AE"
    assert ack_code_of(post(http, _lis(adt("CC2B", "CC2^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A01")))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("CC2C", "ZCC2^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _zy("CC2D", "A40", "ZCC2^^^FNZYY^MR", "冯^三", "19610101", "M", "CC2^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AE" and err_lines(ack)[0].split("|")[2].startswith("MRG"), ack
    k = 3
    while _by(engine, http, "institution", "FNZYY") < ALERT:  # (the module's earlier tests counted some already)
        _registered(http, f"CC{k}")
        assert ack_code_of(post(http, _probe(f"CC{k}"))) == "AE"
        k += 1
    mine = _fidelity(engine, http, "FNXRMYY")
    assert mine["alerts"]["FNZYY"] == mine["member_refused_by"]["institution"]["FNZYY"] >= ALERT, mine
    rows = [i for i in mine["items"] if i.get("count_as") == "member_refused" and i["count_key"] == "FNZYY/HIS"]
    assert {r["where"].split("[")[0].split(".")[0][:3] for r in rows} >= {"PID", "MRG"}, rows
    assert all(r.get("alert") is True for r in rows), rows
    assert all(i.get("alert") is True for i in mine["items"] if str(i.get("count_key")).startswith("FNZYY/")), mine


def test_the_record_names_the_mllp_connection(world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """Over a plain MLLP socket the ingest knows the connection's address only: the record names it as the client
    (``mllp:127.0.0.1``) beside FNZYY (MSH-4) as the agent, and the client's count is its own."""
    engine, http = world
    _registered(http, "CD1")
    audited = len(_refusal_records(engine))
    (ack,) = mllp_exchange(engine, frame(_fnzyy(adt("CD1B", "CD1^^^FNXRMYY^MR", "张^三", "19700101", "M")).encode()), 1)
    assert ack_code_of(ack) == "AE", ack
    (record,) = _refusal_records(engine)[audited:]
    assert record["details"]["client"] == "mllp:127.0.0.1" and record["details"]["channel"] == "mllp", record
    assert record["agent"][0]["who"]["identifier"]["value"] == "FNZYY", record["agent"]
    assert _by(engine, http, "client", "mllp:127.0.0.1") == int(record["details"]["client-refusals"]) >= 1


def test_two_workers_counting_at_once_cross_each_multiple_once(tmp_path: Path) -> None:
    """Two connections to one SQLite file (two engine processes) count one sender's refusals at once, 300 each, the
    threads switching as often as Python allows: every count is kept (600), and each multiple of the threshold is
    crossed by exactly one count. A count read and written outside one transaction lost about a third of them here
    (and a total read back after the write lets two workers both see or both miss a multiple). SQLite only: its
    ``BEGIN IMMEDIATE`` is what both workers go through (mongomock has no isolation between threads; a replica
    set's transaction aborts the second writer of a document)."""
    path = tmp_path / "counts.db"
    stores = [SqliteStore(path), SqliteStore(path)]
    crossings: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def work(n: int) -> None:
        counts = MemberRefusals(stores[n])
        start.wait()
        for _ in range(300):
            counted = counts.count("FNXRMYY", {"institution": "FNZYY", "client": ""})  # (its own transaction)
            crossings[n] += [c.after for c in counted.values() if c.crossed(ALERT)]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=work, args=(n,)) for n in (0, 1)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(interval)
    rows = MemberRefusals(stores[0]).of("FNXRMYY")
    assert [(r["by"], r["key"], r["count"]) for r in rows] == [("institution", "FNZYY", 600)]
    assert sorted(crossings[0] + crossings[1]) == list(range(ALERT, 601, ALERT)), crossings
    for store in stores:
        store.close()
