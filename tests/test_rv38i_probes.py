"""rv38i: review probes of cdfix38 (savepoint callbacks, the deletion's compensation, HD equality of the filler
number) and wfix38 (outside wards' labels in the rate by department).

Real HL7 v2 through the ingest path (``Ingestor.process``, the MLLP handler's call; ``POST /hl7v2``), read back
over ``/fhir``, the report JSON and ``$evaluate-measure``; the audit log exported and verified offline as
``huren audit verify --export`` does; the real ``SqliteStore``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit.export import verify_export, write_export
from engine.engine import Engine
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings
from tests.module_store import module_eng
from tests.test_cdfix38_fixes import OID, _detail, _sent_by
from tests.test_code37_ris_change import CHEST, HEAD, _changed, _ordered, _ris
from tests.test_codedoc38_order_owner import _codes, _warned_at_obr4
from tests.test_codefix36_order_code import _errs
from tests.test_conv13_orders import written
from tests.test_dept37_departments import _ingest, _measure_departments
from tests.test_deptfix34_departments import _wards
from tests.test_old37_document_paragraphs import _aa, mdm
from tests.test_rv38f_probes import _hl7, _reader
from tests.test_rvlast34_probes import _feed, _rates, _zhao_order
from tests.test_srfix35_order_code import http, oru, send, the_order
from tests.test_wfix38_wards import _ward_id

__all__ = ["http", "module_eng"]

OTHER_OID = "1.2.156.112604.9.9"


# --- the savepoint callback rule, three levels deep ----------------------------------------------------------


def test_three_levels_a_released_callback_survives_sibling_rollbacks_at_every_level(tmp_path: Path) -> None:
    """outer > A > B > C: C's callback, released into B then into A, fires neither on a failing sibling of C
    (inside B), nor of B (inside A), nor of A (inside outer); it fires once when A itself fails, inside the
    still-open outer block; and a C released all the way into a committed outer never fires."""
    store = SqliteStore(tmp_path / "db.sqlite3")
    coll = store.collection("t")
    fired: list[str] = []
    try:
        with store.transaction():
            with pytest.raises(LookupError), store.transaction():  # A
                with store.transaction():  # B
                    with store.transaction():  # C
                        coll.insert({"_id": "c"})
                        store.on_rollback(lambda: fired.append(f"c undone={coll.get('c') is None}"))
                    with pytest.raises(ValueError), store.transaction():  # C's sibling
                        raise ValueError
                    assert fired == []
                with pytest.raises(ValueError), store.transaction():  # B's sibling
                    raise ValueError
                assert fired == [] and coll.get("c") is not None
                raise LookupError("A fails")
            assert fired == ["c undone=True"]
            with pytest.raises(ValueError), store.transaction():  # A's sibling
                raise ValueError
            assert fired == ["c undone=True"]  # (once)
        with store.transaction():
            with store.transaction(), store.transaction(), store.transaction():
                store.on_rollback(lambda: fired.append("committed"))
            with pytest.raises(ValueError), store.transaction():
                raise ValueError
        with pytest.raises(ValueError), store.transaction():  # an unrelated later rollback
            raise ValueError
        assert fired == ["c undone=True"], fired
    finally:
        store.close()


def test_a_flat_transaction_that_fails_fires_every_nested_callback_once(tmp_path: Path) -> None:
    """The group commit's one-commit attempt (``flat_transaction``): a nested block's callback, its block
    joined (no savepoint), fires once when a later nested block fails and the whole attempt is undone; the
    redo's savepointed blocks that stand fire nothing."""
    from engine.repository.sqlite_store import FlatTransactionFailed

    store = SqliteStore(tmp_path / "db.sqlite3")
    coll = store.collection("t")
    fired: list[str] = []
    try:
        with pytest.raises(FlatTransactionFailed), store.flat_transaction():
            with store.transaction(), store.transaction():
                coll.insert({"_id": "m1"})
                store.on_rollback(lambda: fired.append("attempt m1"))
            with pytest.raises(ValueError), store.transaction():
                raise ValueError("m2 refused")
        assert fired == ["attempt m1"] and coll.get("m1") is None
        with store.transaction():  # the redo: one savepoint a message
            with store.transaction():
                coll.insert({"_id": "m1"})
                store.on_rollback(lambda: fired.append("redo m1"))
            with pytest.raises(ValueError), store.transaction():
                raise ValueError("m2 refused")
        assert fired == ["attempt m1"] and coll.get("m1") is not None
    finally:
        store.close()


# --- the compensation record, verified offline ---------------------------------------------------------------


def test_the_compensation_verifies_offline_and_its_compensates_is_under_the_signature(
        settings: Settings, tmp_path: Path) -> None:
    """SQLite. A batch: an edit dropping a paragraph, then the RIS's refused correction. The one-commit attempt's
    deletion is compensated (outcome 8, ``compensates: audit-<seq>`` naming that deletion's record), the redo's
    deletion stands. The whole log exported and verified offline with the public key: it verifies; the export
    with the compensation's ``compensates`` pointed at the stored deletion instead does not."""
    with Engine(settings) as eng, TestClient(create_app(eng)) as fhir:
        _reader(eng, fhir)
        _aa(eng, mdm("RVIA1", "T02", ["第一段", "第二段"], number="DOC-RVIA"))
        copy = {o["valueString"]: o["id"] for o in written(eng, fhir, "RVIA1", "Observation")}["第二段"]
        placer = "RV38I-AUD"
        for message in (_ordered(placer), _ris(oru(placer, item=HEAD))):
            assert [o.code for o in eng.ingestor.process([(_hl7(message), "mllp", "p")])] == ["AA"]
        before = eng.audit.size
        outcomes = eng.ingestor.process([(mdm("RVIA2", "T08", ["第一段"], number="DOC-RVIA"), "mllp", "p"),
                                         (_hl7(_ris(oru(placer, item=CHEST, status="C"))), "mllp", "p")])
        assert [o.code for o in outcomes] == ["AA", "AE"], outcomes
        assert fhir.get(f"/fhir/Observation/{copy}").status_code == 410
        events = [(seq, eng.audit.events(seq, 1)[0]) for seq in range(before, eng.audit.size)]
        deletes = [(seq, e) for seq, e in events if any(c.get("code") == "delete" for c in e.get("subtype") or ())]
        done = [seq for seq, e in deletes if e.get("outcome") == "0"]
        ((compensation, undone),) = [(seq, _detail(e, "compensates")) for seq, e in deletes if e.get("outcome") == "8"]
        assert len(done) == 2 and undone == f"audit-{done[0]}", (done, undone)
        path = tmp_path / "audit.jsonl"
        with path.open("wb") as out:
            write_export(eng.audit, out)
        pems = [k.pem.encode() for k in eng.audit.keys.public.values()]
        report = verify_export(path, pems)
        assert report.ok and report.proven, report.text()
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines(keepends=True)
        (at,) = [i for i, line in enumerate(lines) if "paragraph-deletion-rolled-back" in line]
        assert f"audit-{done[0]}" in lines[at]
        lines[at] = lines[at].replace(f"audit-{done[0]}", f"audit-{done[1]}")  # (the compensation's line only)
        forged = "".join(lines)
        path.write_text(forged, encoding="utf-8")
        forged_report = verify_export(path, pems)  # (the pointer is signed: moving it is found, at that record)
        assert not forged_report.ok and forged_report.first_bad_record == compensation, forged_report.text()


# --- who fills the order: HD equality must not match too much ------------------------------------------------


def _recode_attempt(http: TestClient, placer: str, sender: str, filler_hd: str) -> str:
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    message = _sent_by(sender, _changed(placer, CHEST)).replace(f"F{placer}^RIS|", f"F{placer}^{filler_hd}|")
    return send(http, message)


def _held(http: TestClient, placer: str, ack: str) -> None:
    assert "MSA|AA" in ack, ack
    warned = [e for e in _errs(ack) if e[2] == "OBR^1^4" and e[4] == "W"]
    assert warned and warned[0][3].split("^")[0] == "204", ack
    codes = _codes(the_order(http, placer))
    assert "3002" in codes and "3001" not in codes, codes


def test_another_application_sharing_the_namespace_but_not_the_oid_is_held(http: TestClient) -> None:
    """Filler ``F...^RIS^<OID>^ISO`` (the county RIS), sent by ``RIS^<another OID>^ISO`` (another hospital's RIS,
    its namespace id the same common word): the universal ids differ, so the number is not the sender's --
    held: W at OBR-4, ERR-3 204, the order still head CT."""
    placer = "RV38I-NS"
    ack = _recode_attempt(http, placer, f"RIS^{OTHER_OID}^ISO", f"RIS^{OID}^ISO")
    _held(http, placer, ack)


def test_a_filler_sharing_only_the_facilitys_namespace_is_held(http: TestClient) -> None:
    """MSH-3 ``LIS``, MSH-4 ``FNZYY^<OID>^ISO``; filler ``F...^FNZYY^<another OID>^ISO``: another authority that
    happens to share the facility's namespace id -- held: W at OBR-4, 204, the order still head CT."""
    placer = "RV38I-FAC"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    message = _sent_by("LIS", _changed(placer, CHEST)).replace("|LIS|FNZYY|", f"|LIS|FNZYY^{OID}^ISO|", 1).replace(
        f"F{placer}^RIS|", f"F{placer}^FNZYY^{OTHER_OID}^ISO|")
    assert f"|LIS|FNZYY^{OID}^ISO|" in message
    _held(http, placer, send(http, message))


def test_a_filler_under_another_oid_sent_by_an_application_under_ours_is_held(http: TestClient) -> None:
    """Filler ``F...^^<another OID>^ISO`` (universal id only), sent by ``RIS^<OID>^ISO``: no form shared -- held."""
    placer = "RV38I-UO"
    ack = _recode_attempt(http, placer, f"RIS^{OID}^ISO", f"^{OTHER_OID}^ISO")
    _held(http, placer, ack)


def test_a_filler_namespace_matching_only_in_case_is_the_senders(http: TestClient) -> None:
    """Filler ``F...^ris`` from MSH-3 ``RIS``: case aside, as before -- taken, no W (guard)."""
    placer = "RV38I-CASE"
    ack = _recode_attempt(http, placer, "RIS", "ris")
    assert "MSA|AA" in ack and not _warned_at_obr4(ack), ack
    codes = _codes(the_order(http, placer))
    assert "3001" in codes and "3002" not in codes, codes


# --- outside wards' labels: three namesakes and a renamed one --------------------------------------------------


def test_three_namesakes_and_a_renamed_ward_never_share_a_label(backend_settings: Any) -> None:
    """WAIYUAN, SHIYIYUAN and SANYUAN each send a ward NEI named 外院心内科; SHIYIYUAN's QQW, first 外院肾内科, is
    renamed 外院心内科. Four wards, four rows, in the JSON rate and the MeasureReport alike: the three NEI told
    apart by their Location ids, QQW by its code (its two orders one row, under its name now)."""
    with Engine(backend_settings) as eng:
        _feed(eng)
        _ingest(eng, _zhao_order(1, "NEI^7^1^WAIYUAN^^^^^外院心内科", "20250324"),
                _zhao_order(2, "NEI^8^1^SHIYIYUAN^^^^^外院心内科", "20250324"),
                _zhao_order(3, "NEI^9^1^SANYUAN^^^^^外院心内科", "20250324"),
                _zhao_order(4, "QQW^5^1^SHIYIYUAN^^^^^外院肾内科", "20250324"),
                _zhao_order(5, "QQW^6^1^SHIYIYUAN^^^^^外院心内科", "20250325"))
        ids = {f: _ward_id(f, "NEI")[:8] for f in ("WAIYUAN", "SHIYIYUAN", "SANYUAN")}
        assert len(set(ids.values())) == 3
        want = {**{f"阜宁县人民医院 外院心内科（外部 NEI {rid}）": 1 for rid in ids.values()},
                "阜宁县人民医院 外院心内科（外部 QQW）": 2}
        assert _wards(_rates(eng), "外院") == want
        assert {k: v for k, v in _measure_departments(eng).items() if "外院" in k} == want
