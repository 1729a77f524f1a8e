"""rv42a: review probes of xofix41c (``settle_reused_filler``: a report under a reused accession) and of the lead's
mend of ``decision_body`` (322f6cf1: a field named twice, NaN), through the real path -- real HL7 v2 through
``POST /hl7v2`` on each backend (``module_eng``), read back over ``/fhir``; the refused message replayed through
``POST /admin/quarantine/{id}/replay``; decision bodies through real HTTP into the real store on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id, raw_of
from engine.settings import Settings
from tests import test_httpfix41_edges as hf
from tests.module_store import module_eng
from tests.test_code37_ris_change import HEAD
from tests.test_httpfix41b_reasons import _one_flag, _owner, _review, module_backend_eng, one_flag  # noqa: F401 -- fixtures
from tests.test_order35_as_later import _operator
from tests.test_rv40c_probes import _one
from tests.test_rv40d_probes import _stated
from tests.test_rv40f_probes import _held_message
from tests.test_rv41k_probes import HIS, T24, T26, _ct, _old_exam, _reports, _w205
from tests.test_srfix35_order_code import B, http, send
from tests.test_xofix41b_orders import _numbered

__all__ = ["http", "module_eng"]
held = hf.held  # a held owner change on each backend (httpfix41's)

T25 = "20250312100000+0800"  # a second exam under the reused accession, between 2024's and 2026's
LI = "PID|1||320923199001010016^^^公安部^NNCHN~MRN-RV42A-LI^^^FNZYY^MR||李^四||19900101|M"  # another patient


def _by_order(http: TestClient, acc: str, run: str) -> dict[str, str]:
    """The reports under ``acc`` by the placer number of the order each is based on (``<run>1`` 2024, ``<run>2``
    2026, ``<run>3`` 2025), an order of no placer number by its reference: {placer: conclusion}."""
    ids: dict[str, str] = {}
    for n in (1, 2, 3):
        found = http.get("/fhir/ServiceRequest", params={"identifier": f"{HIS}|{run}{n}"}).json()
        ids.update({e["resource"]["id"]: f"{run}{n}" for e in found.get("entry") or ()})
    out: dict[str, str] = {}
    for r in _reports(http, acc):
        for b in r.get("basedOn") or ():
            out[ids.get(b["reference"].split("/", 1)[1], b["reference"])] = str(r.get("conclusion"))
    return out


def _exam_2025(http: TestClient, run: str, acc: str) -> None:
    """2025: the HIS orders head CT ``<run>3``, the RIS numbers it (SC) with the 2024 accession and reports it by
    its placer number: 右侧硬膜下血肿 -- a report of its own (W 205), the 2024 one as it was."""
    for msg in (_stated("HIS", f"{run}3", "NW", HEAD, "", ""), _stated("RIS", f"{run}3", "SC", HEAD, f"{acc}^RIS", "")):
        ack = send(http, msg.replace("20260312080000", "20250312080000"))
        assert "MSA|AA" in ack, ack
    ack = send(http, _ct(f"{run}3", acc, sent=T25, obr7=T25, status="F", text="右侧硬膜下血肿"))
    assert "MSA|AA" in ack and len(_w205(ack)) == 1, ack


# --- HIGH: a correction of the middle exam by the accession alone ---------------------------------------------


@pytest.mark.parametrize("newest", ["not-reported", "reported"])
def test_the_middle_exams_correction_restating_its_exam_time_corrects_that_exams_report(
        http: TestClient, newest: str) -> None:
    run = f"RV42A-MID{newest[0].upper()}"
    acc = _old_exam(http, run)
    _exam_2025(http, run, acc)
    _numbered(http, run, acc)
    if newest == "reported":
        ack = send(http, _ct(f"{run}2", acc, sent=T26, obr7=T26, status="F", text="脑萎缩"))
        assert "MSA|AA" in ack and len(_w205(ack)) == 1, ack
    before = _by_order(http, acc, run)
    ack = send(http, _ct("", acc, sent="20261101090000+0800", obr7=T25, status="C", text="右侧硬膜下血肿，已吸收"))
    assert "MSA|A" in ack, ack
    got = _by_order(http, acc, run)
    # the 2025 report corrected (or, at the least, refused: nothing else touched)
    assert got == {**before, f"{run}3": "右侧硬膜下血肿，已吸收"} or ("MSA|AE" in ack and got == before), (got, ack)


# --- MED: another patient's exam under the reused accession, named by its own placer number -------------------


def test_another_patients_report_under_a_reused_accession_named_by_her_placer_number_is_filed_apart(
        http: TestClient) -> None:
    run = "RV42A-PT"
    acc = _old_exam(http, run)
    order = _stated("HIS", f"{run}2", "NW", HEAD, "", "").split("\n")
    order[1] = LI
    assert "MSA|AA" in (ack := send(http, "\n".join(order))), ack
    report = _ct(f"{run}2", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿").split("\n")
    report[1] = LI
    ack = send(http, "\n".join(report))
    assert "MSA|AA" in ack, ack
    assert sorted(str(r.get("conclusion")) for r in _reports(http, acc)) == ["右侧硬膜下血肿", "未见异常"], ack


# --- guard: the refused not-told final is kept, and its replay files it once the order holds the number ---------


def test_the_refused_final_replayed_after_the_ris_numbers_the_order_files_on_that_order(
        http: TestClient, module_eng: Engine) -> None:
    """The 2026 final by the accession alone before the RIS numbered the 2026 order: refused AE 205 (not told),
    the raw kept; the RIS's SC then numbers the 2026 order with the accession; the operator replays the stored
    bytes: AA, a report of its own on the 2026 order (W 205), the order completed, the 2024 report as it was."""
    run = "RV42A-RP"
    acc = _old_exam(http, run)
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}2", "NW", HEAD, "", ""))
    msg = _ct("", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿")
    ack = send(http, msg)
    assert "MSA|AE" in ack and len(_w205(ack)) == 1, ack
    assert "MSA|AA" in send(http, _stated("RIS", f"{run}2", "SC", HEAD, f"{acc}^RIS", ""))
    mid = message_id(B, msg.split("\n", 1)[0].split("|")[9])
    r = http.post(f"/admin/quarantine/{mid}/replay", headers=_operator(module_eng))
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text[:600]
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常", f"{run}2": "右侧硬膜下血肿"}
    assert _one(http, HIS, f"{run}2")["status"] == "completed"


def test_a_refused_final_in_a_batch_is_kept_and_its_replay_files_it(http: TestClient, module_eng: Engine) -> None:
    """Batch = one by one for the raw kept: the not-told 2026 final refused inside an FHS/BHS batch is stored
    quarantined with its own bytes, and replayed after the RIS's SC it files on the 2026 order."""
    run = "RV42A-BK"
    acc = _old_exam(http, run)
    final = _ct("", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿")
    ack = send(http, "FHS|^~\\&|RIS|FNZYY\nBHS|^~\\&|RIS|FNZYY\n"
               + _stated("HIS", f"{run}2", "NW", HEAD, "", "") + final + "BTS|2\nFTS|1\n")
    assert ack.count("MSA|AA") == 1 and ack.count("MSA|AE") == 1, ack
    mid = message_id(B, final.split("\n", 1)[0].split("|")[9])
    doc = module_eng.ingestor.messages.get(mid)
    assert doc is not None and doc["status"] == "quarantined" and "右侧硬膜下血肿" in raw_of(doc).decode(), doc
    assert "MSA|AA" in send(http, _stated("RIS", f"{run}2", "SC", HEAD, f"{acc}^RIS", ""))
    r = http.post(f"/admin/quarantine/{mid}/replay", headers=_operator(module_eng))
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text[:600]
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常", f"{run}2": "右侧硬膜下血肿"}


# --- MED: a final over a stored PRELIMINARY, by the accession alone, nothing told --------------------------------


def test_a_final_over_a_stored_preliminary_two_years_on_is_not_filed_silently(http: TestClient) -> None:
    run = "RV42A-PRE"
    acc = f"{run}-ACC"
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}1", "NW", HEAD, "", "").replace("20260312080000",
                                                                                        "20240312080000"))
    assert "MSA|AA" in send(http, _ct(f"{run}1", acc, sent=T24, obr7=T24, status="P", text="未见异常"))
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}2", "NW", HEAD, "", ""))
    ack = send(http, _ct("", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿"))
    assert "MSA|AE" in ack or _w205(ack), (ack, _by_order(http, acc, run))


# --- decision bodies through real HTTP (322f6cf1) ----------------------------------------------------------------


@pytest.fixture
def store(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


def test_a_lone_surrogate_field_named_twice_is_a_400_not_a_500(store: Engine) -> None:
    with TestClient(create_app(store), raise_server_exceptions=False) as http:
        auditor, flag = _one_flag(store, http)
        r = _review(http, flag, auditor, b'{"decision": "upheld", "reason": "ok", "\\ud800": 1, "\\ud800": 2}')
        assert r.status_code == 400, (r.status_code, r.text[:300])
        assert not store.recognition.flags.get(flag).get("reviews")


def test_an_owner_body_naming_a_lone_surrogate_twice_is_a_400(held: tuple[Engine, TestClient]) -> None:
    engine, owner_http = held
    msg = _held_message(owner_http, "RV42A-SUR")
    ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
    r = _owner(owner_http, msg, ops, b'{"reason": "\xe5\x8f\xb7\xe4\xb8\xbb", "\\udfff": 1, "\\udfff": 2}')
    assert r.status_code == 400, (r.status_code, r.text[:300])


def test_a_name_repeated_in_a_nested_object_is_not_said_to_be_the_bodys_field(store: Engine) -> None:
    with TestClient(create_app(store), raise_server_exceptions=False) as http:
        auditor, flag = _one_flag(store, http)
        r = _review(http, flag, auditor,
                    b'{"decision": "upheld", "reason": "ok", "x": {"decision": 1, "decision": 2}}')
        assert r.status_code == 400, (r.status_code, r.text[:300])
        assert r.json()["issue"][0].get("expression") != ["decision"], r.text[:300]


@pytest.mark.parametrize("body", [
    b'{"decision": "upheld", "reason": "ok", "x": [{"a": 1, "a": 2}]}',  # named twice inside a list
    b'{"decision": "upheld", "reason": "ok", "x": {"\\u0000": 1, "\\u0000": 2}}',  # NUL named twice
    b'{"decision": "upheld", "reason": "ok", "x": -Infinity}',
    b'{"decision": "upheld", "reason": "ok", "x": 1' + b"0" * 5000 + b"}",  # past Python's 4,300 digits
    b'\xef\xbb\xbf{"decision": "upheld", "reason": "ok", "decision": "upheld"}',  # BOM and a name twice
    b'[{"decision": "upheld", "reason": "ok"}]',
    b"null",
])
def test_odd_bodies_are_a_400_on_every_content_type_and_no_review(one_flag: tuple[Engine, dict[str, str], str],  # noqa: F811 -- the fixture
                                                                  body: bytes) -> None:
    """Guard: each is a 400 OperationOutcome whatever the body is labelled, and the flag stays unreviewed."""
    store, auditor, flag = one_flag
    with TestClient(create_app(store), raise_server_exceptions=False) as http:
        for labelled in ("application/json", "text/plain; charset=utf-8", "multipart/form-data; boundary=x"):
            r = _review(http, flag, auditor, body, labelled)
            assert r.status_code == 400 and r.headers["content-type"].startswith("application/fhir+json"), (
                labelled, r.status_code, r.text[:300])
        assert not store.recognition.flags.get(flag).get("reviews")


# --- OBR-7 at a date alone over a stored exam instant -------------------------------------------------------------


def test_a_resend_stating_the_exam_date_alone_is_a_resend_whatever_the_hour(http: TestClient) -> None:
    run = "RV42A-DAY"
    acc = f"{run}-ACC"
    at10 = "20240312100000+0800"
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}1", "NW", HEAD, "", "").replace("20260312080000", "20240312100000"))
    assert "MSA|AA" in send(http, _ct(f"{run}1", acc, sent=at10, obr7=at10, status="F", text="未见异常"))
    ack = send(http, _ct("", acc, sent="20240313090000+0800", obr7="20240312", status="F", text="未见异常"))
    assert "MSA|AA" in ack and not _w205(ack), ack


def test_a_thinner_resend_keeps_the_stated_exam_time(http: TestClient) -> None:
    run = "RV42A-THIN"
    acc = _old_exam(http, run)
    ack = send(http, _ct("", acc, sent="20240313090000+0800", obr7="20240312", status="F", text="未见异常"))
    assert "MSA|AA" in ack, ack
    [report] = _reports(http, acc)
    assert report.get("effectiveDateTime") == "2024-03-12T08:00:00+08:00", (report.get("effectiveDateTime"), ack)
