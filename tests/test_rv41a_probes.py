"""Review probes of the forty-first round (rv41a): pfix40's reads by key (``sqlite_fhir.keyed_rows``), the lead's
identity mends (``persons._placeholder_in_batch`` / ``_batch_registrants``), merge.yaml's
``DiagnosticReport.resultsInterpreter not_from_older``, ``message_time.reason_of``'s refusals and
``results.status_from_report``'s ``progress_warned``.

Every probe goes through the real path: HL7 v2 over ``POST /hl7v2`` or the ingestor's batches into the real store
(SQLite and mongomock), ``/admin`` and ``/fhir`` over FastAPI, the console's ``huren quarantine replay``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.test_code37_ris_change import CHEST, HEAD, _changed, _ordered, _ris
from tests.test_ingest_replay import site_env
from tests.test_ord39_order_history import _from
from tests.test_ord40_owner_decision import _control
from tests.test_ordfix40_decision import _ops, engine, http, site_dir  # noqa: F401 (fixtures)
from tests.test_srfix35_order_code import B, oru
from tests.test_ord40_owner_decision import _owner as _owner_asking
from tests.test_rv40f_probes import _held_message

__all__ = ["engine", "http", "site_dir", "site_env"]


# --- (4) reason_of: every reason is a 4xx OperationOutcome or kept as typed, never a 500 -------------------------


def _owner_raw(http: TestClient, msg: str, headers: dict[str, str], body: bytes) -> object:
    return http.post(f"/admin/quarantine/{msg}/owner", content=body,
                     headers=headers | {"Content-Type": "application/json"})


@pytest.mark.parametrize("reason", ["同一\u200b系统", "\ufeff同一系统", "同一\u2060系统", "同一\u00ad系统"])
def test_an_invisible_format_character_in_the_reason_is_refused_or_kept_as_typed(
        engine: Engine, http: TestClient, reason: str) -> None:  # noqa: F811
    msg = _held_message(http, f"RV41A-CF{ord(reason[2]) if reason[0] != chr(0xfeff) else 0xfeff:X}")
    r = _owner_asking(http, msg, _ops(engine), reason)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert engine.ingestor.messages.get(msg)["decision"]["reason"] == reason
    else:
        assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.xfail(strict=True, reason="rv41a MED: a lone surrogate (JSON \\ud800) in an operator's reason passes "
                   "reason_of (category Cs, not Cc) and the decision's write fails in the store's JSON encoder: 500 "
                   "with the decision half-applied, never the 400 OperationOutcome")
def test_a_lone_surrogate_in_the_reason_is_a_400_never_a_500(engine: Engine, http: TestClient) -> None:  # noqa: F811
    msg = _held_message(http, "RV41A-SURR")
    transport = http._transport  # (the server's exception answered as the 500 a caller gets)
    transport.raise_server_exceptions = False  # type: ignore[attr-defined]
    try:
        r = _owner_raw(http, msg, _ops(engine), b'{"reason": "\\u540c\\u4e00\\ud800\\u7cfb\\u7edf"}')
    finally:
        transport.raise_server_exceptions = True  # type: ignore[attr-defined]
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", r.text
    assert not engine.ingestor.messages.get(msg).get("replays")
    ok = _owner_asking(http, msg, _ops(engine), "同一系统")  # (still decidable with words)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("reason", [" " * 40, "\u3000\u3000", "理" * 10_000])
def test_a_blank_or_overlong_reason_is_a_400(engine: Engine, http: TestClient, reason: str) -> None:  # noqa: F811
    msg = _held_message(http, f"RV41A-BL{len(reason)}")
    r = _owner_asking(http, msg, _ops(engine), reason)
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", r.text
    assert not engine.ingestor.messages.get(msg).get("replays")


@pytest.mark.xfail(strict=True, reason="rv41a MED: the console's --as-owner reason with a lone surrogate (argv bytes "
                   "not UTF-8 -- a GBK terminal -- decode by surrogateescape to U+DCxx) passes reason_of and the "
                   "replay's write raises, where exit 2 naming it was meant")
def test_the_console_refuses_a_reason_its_terminal_did_not_send_as_utf8(
        site_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    from engine.cli import main

    placer = "RV41A-CLI"
    held = _from("EMR", _changed(placer, CHEST))
    for n, message in enumerate((_ordered(placer), _ris(oru(placer, item=HEAD)), held)):
        (tmp_path / f"{n}.hl7").write_bytes(message.replace("\n", "\r").encode("utf-8"))
        assert main(["replay", str(tmp_path / f"{n}.hl7"), "--quiet"]) == 0
    msg = message_id(B, _control(held))
    capsys.readouterr()
    typed = "已核实，同一系统".encode("gbk").decode("utf-8", "surrogateescape")  # (how Python reads a GBK terminal's argv)
    assert any("\udc80" <= c <= "\udcff" for c in typed)
    try:
        code = main(["quarantine", "replay", msg, "--as-owner", typed])
    except Exception as exc:  # (a traceback on the operator's console)
        code = repr(exc)
    assert code == 2, code
    with Engine(site_env) as engine:
        doc = engine.ingestor.messages.get(msg)
        assert not doc.get("replays") and doc["status"] == "processed", doc
