"""Review rv39a (thirty-ninth round): stfix38 (``engine/merge_rules.py`` ``_none_standing``, ``_over_later_p``,
``_as_in_order``) and the lead's store fix f26a6713 (``engine/repository/sqlite_store._Transaction``).

Strict xfails pin defects (a fixer turns them green), each naming its severity; plain tests guard what was
found sound. Real HL7 v2 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``),
read back over ``/fhir``; the store probes drive a real ``SqliteStore`` on a file into real SQLite errors
(``PRAGMA max_page_count``: SQLITE_FULL, "database or disk is full", as a full disk gives it).
"""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.repository.sqlite_store import SqliteStore, TransactionLost
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_notback37_kept_whole import _REDRAWN
from tests.test_notback37_kept_whole import _result as _potassium
from tests.test_rv38a_probes import _interpreted

__all__ = ["engine", "module_http"]

engine = module_eng

_TIMES = ("issued", "effectiveDateTime")


def _read(http: TestClient, ref: str) -> dict:
    return http.get(f"/fhir/{ref}").json()


def _first(engine: Engine, http: TestClient, tag: str, status: str = "F") -> tuple[dict, dict]:
    """The LIS's ``status`` 4.1 of tube A (MSH-7 10:00, drawn 08:00, issued 09:30): result and report as stored."""
    assert b"MSA|AA" in post(http, _potassium(f"RV39A-{tag}A", "20261203100000", f"A{tag}", "4.1", status,
                                              tube=f"RV39AS{tag}A"))
    (obs,) = written(engine, http, f"RV39A-{tag}A", "Observation")
    (report,) = written(engine, http, f"RV39A-{tag}A", "DiagnosticReport")
    return obs, report


# -- stfix38 (1): a report none of whose results stands -----------------------------------------------------

@pytest.mark.parametrize("obr25", ["C", "F"])
def test_a_withdrawal_under_obr25_c_or_f_takes_the_report_with_it(
        engine: Engine, http: TestClient, obr25: str) -> None:
    """F 4.1, then the LIS's W (11:00) under OBR-25 C ("correction to results", table 0123) or F. The result is
    entered-in-error; the report lists no other result, so none of its results stands and it is what they are
    (``all_results``: entered-in-error), as it is under OBR-25 P (stfix38) and with OBR-25 empty (status38).
    What happens: ``_none_standing`` returns None (nothing held, the message's status not before final, so
    stfix38's new branch is not asked) and the report takes the message's "corrected"/"final" unwarned."""
    tag = f"1{obr25}"
    obs, report = _first(engine, http, tag)
    ack = post(http, _potassium(f"RV39A-{tag}B", "20261203110000", f"A{tag}", "4.1", "W", obr25=obr25,
                                tube=f"RV39AS{tag}A"))
    assert b"MSA|AA" in ack, ack
    assert _read(http, f"Observation/{obs['id']}")["status"] == "entered-in-error"
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "entered-in-error", (after["status"], err_lines(ack))


def test_a_withdrawal_under_obr25_p_after_a_preliminary_takes_the_report_with_it(
        engine: Engine, http: TestClient) -> None:
    """P 4.1, then the LIS's W under OBR-25 P: the only result is entered-in-error; the report should be too,
    as after an F (stfix38) and as with OBR-25 empty. What happens: preliminary, no W."""
    obs, report = _first(engine, http, "2", status="P")
    ack = post(http, _potassium("RV39A-2B", "20261203110000", "A2", "4.1", "W", obr25="P", tube="RV39AS2A"))
    assert b"MSA|AA" in ack, ack
    assert _read(http, f"Observation/{obs['id']}")["status"] == "entered-in-error"
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "entered-in-error", (after["status"], err_lines(ack))


def test_a_withdrawal_under_obr25_p_resent_leaves_the_report_withdrawn(engine: Engine, http: TestClient) -> None:
    """F 4.1, the LIS's W under OBR-25 P (the report entered-in-error: stfix38), then the same W again under a
    new MSH-10 (a resend after a lost ACK). Nothing changed: the report must stay entered-in-error. What
    happens: the equal MSH-7 dates the resend as later (arrival), ``stands`` is lifted, the message's
    "preliminary" replaces entered-in-error, and ``_none_standing`` is not asked (stored not final)."""
    obs, report = _first(engine, http, "11")
    withdrawal = _potassium("RV39A-11B", "20261203110000", "A11", "4.1", "W", obr25="P", tube="RV39AS11A")
    assert b"MSA|AA" in post(http, withdrawal)
    assert _read(http, f"DiagnosticReport/{report['id']}")["status"] == "entered-in-error"
    ack = post(http, withdrawal.replace("RV39A-11B", "RV39A-11C"))
    assert b"MSA|AA" in ack, ack
    assert _read(http, f"Observation/{obs['id']}")["status"] == "entered-in-error"
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "entered-in-error", (after["status"], err_lines(ack))


# -- ordinary sequences: guards --------------------------------------------------------------------------------

def test_p_then_f_then_c_moves_the_report_status_times_and_interpreter(engine: Engine, http: TestClient) -> None:
    """P (issued 09:00, 李四), F (10:30, 张三), C 4.3 (11:50, 王五), each of tube A, in MSH-7 order: the report is
    preliminary, final, corrected, issued by each message in turn, interpreted by each signer, tube A alone,
    and none of the three ACKs warns (``_over_later_p`` is asked on the P -> F step and must not fire)."""
    steps = [("3A", "20261203100000", "4.0", "P", "20261203090000", "D002&李&四", "preliminary", "李四"),
             ("3B", "20261203110000", "4.1", "F", "20261203103000", "D001&张&三", "final", "张三"),
             ("3C", "20261203120000", "4.3", "C", "20261203115000", "D003&王&五", "corrected", "王五")]
    report_id = None
    for tag, stamp, value, status, issued, signer, expected, name in steps:
        ack = post(http, _interpreted(_potassium(f"RV39A-{tag}", stamp, "A3", value, status, tube="RV39AS3A",
                                                 issued=issued), signer))
        assert b"MSA|AA" in ack and not err_lines(ack), (tag, err_lines(ack))
        if report_id is None:
            (report,) = written(engine, http, f"RV39A-{tag}", "DiagnosticReport")
            report_id = report["id"]
            (tube,) = written(engine, http, f"RV39A-{tag}", "Specimen")
        after = _read(http, f"DiagnosticReport/{report_id}")
        assert after["status"] == expected, (tag, after)
        assert after["issued"].startswith(f"{issued[:4]}-{issued[4:6]}-{issued[6:8]}T{issued[8:10]}:{issued[10:12]}")
        assert [p.get("display") for p in after["resultsInterpreter"]] == [name], (tag, after)
        assert after["specimen"] == [{"reference": f"Specimen/{tube['id']}"}], (tag, after)


def test_a_later_p_resent_after_its_older_final_leaves_the_report_as_the_final_stated(
        engine: Engine, http: TestClient) -> None:
    """The later P of tube B (12:00), its older F of tube A (11:50) -- the report the F's (stfix38) -- then the P
    re-sent (a new control id, the same content): kept out, the report unchanged but for nothing; the F
    re-sent: no new version."""
    later = _potassium("RV39A-6B", "20261203120000", "A6", "5.0", "P", tube="RV39AS6B", **_REDRAWN)
    older = _potassium("RV39A-6A", "20261203115000", "A6", "4.1", "F", tube="RV39AS6A")
    assert b"MSA|AA" in post(http, later)
    assert b"MSA|AA" in post(http, older)
    (report,) = written(engine, http, "RV39A-6A", "DiagnosticReport")
    (tube,) = written(engine, http, "RV39A-6A", "Specimen")
    before = _read(http, f"DiagnosticReport/{report['id']}")
    assert before["specimen"] == [{"reference": f"Specimen/{tube['id']}"}], before
    assert b"MSA|AA" in post(http, later.replace("RV39A-6B", "RV39A-6C"))
    assert b"MSA|AA" in post(http, older.replace("RV39A-6A", "RV39A-6D"))
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert {n: after.get(n) for n in ("status", "specimen", *_TIMES)} == \
        {n: before.get(n) for n in ("status", "specimen", *_TIMES)}, (before, after)


def _xray(tag: str, control: str, stamp: str, status: str, impression: str, issued: str) -> str:
    """The PACS's chest film report under RV39A-<tag> (OBR-25 ``status``, OBR-22 ``issued``), MSH-7 ``stamp``."""
    return "\r".join([
        f"MSH|^~\\&|PACS|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1",
        f"PID|1||RV39A-{tag}M^^^FNXRMYY^MR||赵^六||19700305|F",
        f"ORC|RE|RV39A-{tag}P^HIS|RV39A-{tag}F^PACS||CM",
        f"OBR|1|RV39A-{tag}P^HIS|RV39A-{tag}F^PACS|DR001^胸部正位片^L|||20261202090000|||||||||D2001^吴^强||"
        f"RV39A-{tag}F||||{issued}||DX|{status}",
        f"OBX|1|TX|FINDINGS^检查所见^L||双肺纹理清晰。||||||{status}|||20261202093000",
        f"OBX|2|TX|IMP^诊断意见^L||{impression}||||||{status}|||20261202093000"]) + "\r"


def test_an_older_final_imaging_report_after_its_later_draft_is_as_in_msh_order(
        engine: Engine, http: TestClient) -> None:
    """The PACS's final film (11:50, 心肺膈未见明显异常。) and its later draft re-read (P, 12:00, 右肺上叶结节。) in
    either arrival order: the same report (final, the F's conclusion, text and issue time) and the same
    document copying its text (current, final, the F's words) -- ``_as_in_order`` takes the F's lines whole."""
    def pair(tag: str, order: tuple[int, int]) -> tuple:
        sent = [_xray(tag, f"RV39A-{tag}X", "20261202115000", "F", "心肺膈未见明显异常。", "20261202114000"),
                _xray(tag, f"RV39A-{tag}Y", "20261202120000", "P", "右肺上叶结节。", "20261202115500")]
        assert all(b"MSA|AA" in post(http, sent[i]) for i in order)
        (report,) = written(engine, http, f"RV39A-{tag}X", "DiagnosticReport")
        got = _read(http, f"DiagnosticReport/{report['id']}")
        bundle = http.get("/fhir/DocumentReference", params={"related": f"DiagnosticReport/{report['id']}"}).json()
        (doc,) = [e["resource"] for e in bundle.get("entry", ())]
        (text,) = [base64.b64decode(c["attachment"]["data"]).decode() for c in doc["content"]
                   if c["attachment"].get("contentType", "").startswith("text/plain")]
        return ({n: got.get(n) for n in ("status", "conclusion", "issued")},
                [base64.b64decode(f["data"]).decode() for f in got.get("presentedForm", ())],
                (doc["status"], doc.get("docStatus"), text))

    in_order, reversed_ = pair("7", (0, 1)), pair("8", (1, 0))
    assert reversed_ == in_order, (reversed_, in_order)
    assert in_order[0]["conclusion"] == "心肺膈未见明显异常。" and in_order[2][:2] == ("current", "final"), in_order


# -- stfix38 (3): the older final over its later P, beyond one OBR group ------------------------------------

def _two_groups(tag: str, control: str, stamp: str, status: str, k: str, na: str, drawn: str, issued: str,
                tube: str) -> str:
    """One ORU, two OBR groups under one filler number RV39A-<tag>F (potassium K1, sodium NA1: one report,
    the panel), each with its OBX (OBX-11 ``status``, OBR-25 ``status``) and its SPM ``tube`` drawn ``drawn``."""
    lines = [f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1",
             f"PID|1||RV39A-{tag}M^^^FNXRMYY^MR||钱^八||19700315|F",
             f"ORC|RE|RV39A-{tag}P^HIS|RV39A-{tag}F^LIS||CM"]
    for i, (code, label, value) in enumerate((("K1", "钾测定", k), ("NA1", "钠测定", na)), start=1):
        obr = ["OBR", str(i), f"RV39A-{tag}P^HIS", f"RV39A-{tag}F^LIS", f"{code}^{label}^L", "", "", drawn]
        obr += [""] * 14 + [issued, "", "CH", status]
        lines.append("|".join(obr))
        lines.append("|".join(["OBX", "1", "NM", f"{code}R^{label}结果^L", "", value, "mmol/L", "", "N", "", "",
                               status, "", "", drawn]))
        lines.append(f"SPM|1|{tube}^LIS||BLD^全血^L|||||||||||||{drawn}")
    return "\r".join(lines) + "\r"


def test_an_older_final_of_two_groups_after_a_later_p_dates_the_report_as_in_msh_order(
        engine: Engine, http: TestClient) -> None:
    """The LIS's panel (K1 and NA1 under one filler number): its later P of a re-drawn tube B (12:00, drawn
    11:00, issued 11:45) and its older F of tube A (11:50, drawn 08:00, issued 09:30), in either arrival order.
    MSH-7 order gives final, 08:00 / 09:30, tube A alone; stfix38 says arrival order gives the same (one
    group: ``test_stfix38_report_follows``). With two groups the reversed order keeps the P's times and tube B."""
    def pair(tag: str, order: tuple[int, int]) -> dict:
        sent = [_two_groups(tag, f"RV39A-{tag}X", "20261203115000", "F", "4.1", "140", "20261203080000",
                            "20261203093000", f"RV39AS{tag}A"),
                _two_groups(tag, f"RV39A-{tag}Y", "20261203120000", "P", "5.0", "150", "20261203110000",
                            "20261203114500", f"RV39AS{tag}B")]
        assert all(b"MSA|AA" in post(http, sent[i]) for i in order)
        (report,) = written(engine, http, f"RV39A-{tag}X", "DiagnosticReport")
        (tube,) = written(engine, http, f"RV39A-{tag}X", "Specimen")
        got = _read(http, f"DiagnosticReport/{report['id']}")
        results = sorted((o["status"], o["valueQuantity"]["value"])
                         for o in written(engine, http, f"RV39A-{tag}X", "Observation"))
        return {"status": got["status"], **{n: got.get(n) for n in _TIMES}, "results": results,
                "tube A alone": got.get("specimen") == [{"reference": f"Specimen/{tube['id']}"}]}

    in_order = pair("9", (0, 1))
    assert in_order["status"] == "final" and in_order["tube A alone"], in_order
    assert pair("10", (1, 0)) == in_order


def test_an_older_final_without_a_tube_does_not_take_the_later_ps_tube(engine: Engine, http: TestClient) -> None:
    """The later P 5.0 of a re-drawn tube B (12:00, SPM drawn 11:00), then its older F 4.1 (11:50) with no SPM
    (many LIS send none). In MSH-7 order (F, then the P kept out) neither result nor report names a specimen.
    Reversed, the final 4.1 -- observed at 08:30 -- is filed as measured on tube B collected at 11:00, and the
    final report lists tube B: "an element only the P stated stays" (stfix38 README) makes the P's re-drawn
    tube the final value's."""
    def pair(tag: str, order: tuple[int, int]) -> tuple:
        sent = [_potassium(f"RV39A-{tag}A", "20261203115000", f"A{tag}", "4.1", "F"),
                _potassium(f"RV39A-{tag}B", "20261203120000", f"A{tag}", "5.0", "P", tube=f"RV39AS{tag}B",
                           **_REDRAWN)]
        assert all(b"MSA|AA" in post(http, sent[i]) for i in order)
        (report,) = written(engine, http, f"RV39A-{tag}A", "DiagnosticReport")
        (obs,) = written(engine, http, f"RV39A-{tag}A", "Observation")
        return ((obs["status"], obs["valueQuantity"]["value"], obs.get("specimen")),
                (report["status"], report.get("specimen")))

    in_order = pair("4", (0, 1))
    assert in_order == (("final", 4.1, None), ("final", None)), in_order
    assert pair("5", (1, 0)) == in_order


# -- f26a6713: a transaction SQLite itself rolled back -------------------------------------------------------

def _full_store(tmp_path: Path) -> tuple[SqliteStore, sqlite3.Connection, int]:
    store = SqliteStore(tmp_path / "db.sqlite3")
    coll = store.collection("t")
    coll.insert({"_id": "seed"})  # (the table made and committed)
    return store, store._conn, store._conn.execute("PRAGMA page_count").fetchone()[0]


def _fill(store: SqliteStore) -> None:
    """Writes until SQLite answers "database or disk is full" (the page cap set by the caller)."""
    coll = store.collection("t")
    for i in range(500):
        coll.insert({"_id": f"big{i}", "x": "y" * 4000})


def test_a_transaction_sqlite_rolled_back_itself_runs_its_callbacks_once(tmp_path: Path) -> None:
    """A write failing with SQLITE_FULL (also IOERR, NOMEM, an interrupt) makes SQLite roll the whole transaction
    back. The block's callbacks must run once, now (a deletion's compensating audit record), and the error
    raised must be SQLite's own. What happens: ``ROLLBACK`` raises "cannot rollback - no transaction is
    active" (the disk-full error only its context), no callback runs, and it fires at the next, unrelated
    rollback -- what f26a6713 fixed for a failing COMMIT, not for this."""
    store, conn, pages = _full_store(tmp_path)
    fired: list[str] = []
    try:
        with pytest.raises(sqlite3.OperationalError) as raised, store.transaction():
            store.collection("t").insert({"_id": "written"})
            store.on_rollback(lambda: fired.append("undone"))
            conn.execute(f"PRAGMA max_page_count={pages + 2}")
            _fill(store)
        conn.execute("PRAGMA max_page_count=1073741823")
        assert "full" in str(raised.value), raised.value
        assert fired == ["undone"], fired
        with pytest.raises(ValueError), store.transaction():
            raise ValueError("a later, unrelated rollback")
        assert fired == ["undone"], fired
    finally:
        store.close()


def test_a_savepoint_after_sqlite_rolled_back_the_transaction_commits_nothing_alone(tmp_path: Path) -> None:
    """The batch's way (``ingest._write_each``): one transaction, a savepoint a message, a failing message's
    exception caught and the next message written. Message 2 fails with SQLITE_FULL, which rolls the whole
    transaction back (message 1 with it). Message 3 must then not be stored on its own (its block is in no
    transaction any more), or if stored, its rollback callback must not run. What happens: message 3's
    SAVEPOINT opens a new transaction and its RELEASE commits it; the outer COMMIT fails ("no transaction is
    active") and f26a6713's path runs every callback -- message 3's too, whose writes stand (a deletion's
    "the deletion failed" record appended for copies that are deleted). Fixed (thirty-ninth round, stfix39) as
    this review's fix proposed: message 3's block is refused at its entry (``TransactionLost``, naming the
    disk-full error) and never runs -- so it registers no callback to fire; a write outside any nested block is
    refused too, and the outermost block, ending without an error, raises rather than end in COMMIT."""
    store, conn, pages = _full_store(tmp_path)
    coll = store.collection("t")
    fired: list[str] = []
    ran: list[str] = []
    try:
        with pytest.raises(TransactionLost, match="full") as outer, store.transaction():
            coll.insert({"_id": "message 1"})
            conn.execute(f"PRAGMA max_page_count={pages + 2}")
            with pytest.raises(sqlite3.OperationalError, match="full"), store.transaction():
                _fill(store)
            conn.execute("PRAGMA max_page_count=1073741823")
            with pytest.raises(TransactionLost, match="full"), store.transaction():
                ran.append("message 3")
                coll.insert({"_id": "message 3"})
                store.on_rollback(lambda: fired.append("message 3 undone"))
            with pytest.raises(TransactionLost, match="full"):
                coll.insert({"_id": "message 4, outside a block of its own"})
        assert "full" in str(outer.value.__cause__), outer.value
        assert not conn.in_transaction
        assert [coll.get(k) for k in ("message 1", "message 3", "message 4, outside a block of its own")] == \
            [None, None, None]
        assert (ran, fired) == ([], []), (ran, fired)
        with store.transaction():  # (the store goes on: the next transaction is an ordinary one)
            coll.insert({"_id": "after"})
        assert coll.get("after") is not None
    finally:
        store.close()
