"""priv36: a sender refused for naming another member's record numbers for other persons is counted, audited and
alerted on (rvlast34's ACK oracle).

AE 205 against AA tells FNZYY whether FNXRMYY holds a record under a number and whether its name and sex both differ
from what FNZYY sent. The answer stays -- any answer that is the same whatever FNXRMYY holds either files a message
under another person or refuses FNZYY's referrals of the same person (README, "(thirty-sixth round, priv36)") -- and
scanning is made visible: each such refusal is counted for FNXRMYY's operator on ``/admin/fidelity``
(``member_refused``, keyed ``FNZYY/<MSH-3>``, no example message), written to the audit log as a record of its own
(``member-number-refused``, DICOM 110113 Security Alert, the sender its agent), and each
``HUREN_MEMBER_REFUSAL_ALERT`` refusals of one sender raise an alert (the record says so, the log warns, the view
flags the sender). Nothing of FNXRMYY's person in the ACK; nothing filed; the raw kept for the operator. Real HL7
through ``POST /hl7v2`` and a real MLLP socket into the real store on each backend (SQLite, mongomock)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.listeners.mllp import frame
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.conftest import _BACKENDS, settings_for_backend
from tests.hl7_calls import err_lines, mllp_exchange, post
from tests.test_identity34_members import _fidelity
from tests.test_mfix34_members import _fnzyy
from tests.test_rvidentity32_probes import adt, oru

ALERT = 3  # the engine's HUREN_MEMBER_REFUSAL_ALERT here


@pytest.fixture(scope="module", params=_BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    """An engine alerting at every ``ALERT`` refusals, and a client holding a system token (the feed)."""
    root = tmp_path_factory.mktemp("priv36_refusals")
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0, member_refusal_alert=ALERT)
    with settings_for_backend(request.param, settings) as chosen, Engine(chosen) as engine, \
            TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("priv36", "system/*.cruds")
        yield engine, client


def _refusal_records(engine: Engine) -> list[dict[str, Any]]:
    """The audit log's records of refusals for another member's number, each with its details as a dict."""
    out = []
    for event in engine.audit.events():
        if any(c.get("code") == "member-number-refused" for c in event.get("subtype") or ()):
            details = {d["type"]: d["valueString"] for e in event.get("entity") or () for d in e.get("detail") or ()}
            out.append({**event, "details": details})
    return out


def _lis(message: str) -> str:
    """FNZYY's LIS sending ``message`` (MSH-3 LIS, MSH-4 FNZYY)."""
    return _fnzyy(message)


def test_probing_another_members_numbers_is_counted_audited_and_alerted_on(
        world: tuple[Engine, TestClient], caplog: pytest.LogCaptureFixture) -> None:
    """FNXRMYY registers QA1..QA3 as 陈四 (F, 1992). FNZYY's LIS sends a result under each number alone for 张三 (M):
    AE 205 at PID-3 each, as before -- nothing of 陈四 in the ACK, nothing filed, the raw kept quarantined. FNXRMYY's
    fidelity counts FNZYY/LIS three times under ``member_refused`` (no example message, not a warning), the alert
    flagged at the third; the audit log holds one ``member-number-refused`` record a refusal, FNZYY its agent, the
    third saying the threshold was reached, and the log warns once."""
    engine, http = world
    before = _fidelity(engine, http, "FNXRMYY")
    audited = len(_refusal_records(engine))
    for k in (1, 2, 3):
        assert ack_code_of(post(http, adt(f"QA{k}A", f"QA{k}^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    caplog.set_level(logging.WARNING, logger="huren.ingest")
    for k in (1, 2, 3):
        ack = post(http, _lis(oru(f"QA{k}B", f"QA{k}^^^FNXRMYY^MR", "张^三", "", "M", f"QAGLU{k}")))
        assert ack_code_of(ack) == "AE", ack
        (err,) = err_lines(ack)
        assert err.split("|")[2].startswith("PID^1^3") and err.split("|")[3].startswith("205"), err
        for word in ("陈", "19920303", "female"):
            assert word.encode() not in ack, (word, ack)
        doc = engine.ingestor.messages.get(message_id("FNZYY", f"QA{k}B"))
        assert doc is not None and doc["status"] == "quarantined", doc
    assert not http.get("/fhir/Observation", params={"code": "QAGLU1"}).json().get("entry")
    mine = _fidelity(engine, http, "FNXRMYY")
    assert mine["member_refused"]["FNZYY/LIS"] == 3, mine
    # the alert watches the sending institution and the authenticated client (count36: MSH-3 is free text)
    assert mine["alerts"] == {"FNZYY": 3, "http:priv36": 3}, mine
    assert mine["member_refused_by"] == {"institution": {"FNZYY": 3}, "client": {"http:priv36": 3}}, mine
    assert mine.get("warnings", 0) == before.get("warnings", 0), (before, mine)
    (row,) = [i for i in mine["items"] if i.get("count_as") == "member_refused"]
    assert row["count_key"] == "FNZYY/LIS" and row["alert"] is True and not row.get("example_message"), row
    for word in ("张", "QA1", "陈"):
        assert word not in row["message"], (word, row)
    records = _refusal_records(engine)[audited:]
    assert len(records) == 3, records
    for n, record in enumerate(records, start=1):
        assert record["outcome"] == "4" and record["type"]["code"] == "110113", record
        assert record["details"]["member"] == "FNXRMYY" and record["details"]["sender"] == "FNZYY/LIS", record
        assert record["details"]["refusals"] == str(n), record
        assert record["agent"][0]["who"]["identifier"]["value"] == "FNZYY", record["agent"]
        assert ("alert" in record["details"]) is (n == ALERT), record["details"]
    warned = [r for r in caplog.records if "may be probing" in r.getMessage()]
    assert len(warned) == 1 and "FNZYY/LIS" in warned[0].getMessage(), warned


def test_a_refusal_over_mllp_is_counted_and_audited_too(world: tuple[Engine, TestClient]) -> None:
    """The same refusal over a real MLLP socket (FNZYY's HIS this time): AE 205, counted under FNZYY/HIS, one
    audit record on the ``mllp`` channel -- beside the import's own refused record."""
    engine, http = world
    assert ack_code_of(post(http, adt("QB1A", "QB1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    audited = len(_refusal_records(engine))
    counted = _fidelity(engine, http, "FNXRMYY").get("member_refused", {}).get("FNZYY/HIS", 0)
    (ack,) = mllp_exchange(engine, frame(_fnzyy(adt("QB1B", "QB1^^^FNXRMYY^MR", "张^三", "19700101", "M")).encode()), 1)
    assert ack_code_of(ack) == "AE", ack
    assert _fidelity(engine, http, "FNXRMYY")["member_refused"]["FNZYY/HIS"] == counted + 1
    (record,) = _refusal_records(engine)[audited:]
    assert record["details"]["channel"] == "mllp" and record["details"]["control-id"] == "QB1B", record


def test_the_same_person_and_other_refusals_are_not_counted(world: tuple[Engine, TestClient]) -> None:
    """Not a probe: FNZYY's result under FNXRMYY's QC1 for the same person (a referral, AA), and a result refused for
    naming FNZYY's own record of another person (AE 205, its own rule) -- neither counted, neither audited so."""
    engine, http = world
    assert ack_code_of(post(http, adt("QC1A", "QC1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("QC1B", "ZQC1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    counted = _fidelity(engine, http, "FNXRMYY").get("member_refused", {})
    audited = len(_refusal_records(engine))
    assert ack_code_of(post(http, _lis(oru("QC1C", "QC1^^^FNXRMYY^MR", "陈^四", "", "F", "QCGLU1")))) == "AA"
    ack = post(http, _lis(oru("QC1D", "ZQC1^^^FNZYY^MR", "王^五", "", "F", "QCGLU2")))
    assert ack_code_of(ack) == "AE", ack
    assert _fidelity(engine, http, "FNXRMYY").get("member_refused", {}) == counted
    assert len(_refusal_records(engine)) == audited


def test_the_count_is_the_members_not_the_senders(world: tuple[Engine, TestClient]) -> None:
    """The row is FNXRMYY's (its numbers were named), under FNXRMYY's institution: FNZYY's fidelity holds no
    ``member_refused`` row for it -- the refusal is already on FNZYY's quarantine list."""
    engine, http = world
    assert ack_code_of(post(http, adt("QD1A", "QD1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    assert ack_code_of(post(http, _lis(oru("QD1B", "QD1^^^FNXRMYY^MR", "张^三", "", "M", "QDGLU")))) == "AE"
    assert _fidelity(engine, http, "FNXRMYY")["member_refused"]["FNZYY/LIS"] >= 1
    assert "member_refused" not in str(_fidelity(engine, http, "FNZYY").get("items", []))
