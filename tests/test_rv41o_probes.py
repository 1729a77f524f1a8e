"""rv41o: review probes of xofix41b's ``settle_reused_filler`` (a report under a reused filler number split off only
on evidence of another ORDER; by the accession alone the newest order holding it).

Real HL7 v2 through ``POST /hl7v2`` on each backend (``module_eng``), read back over ``/fhir``. The RIS's reports are
imaging reports (OBR-24 CT, OBR-18 the accession: ``adapters.convert.pacs``)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id, raw_of
from tests.module_store import module_eng
from tests.test_probepay26_windows import CBC, engine, flags, msh, order, pid, reminded
from tests.test_recognition_e2e import Sender
from tests.test_rv40c_probes import _one
from tests.test_rv41k_probes import HIS, T26, _cbc, _conclusions, _ct, _old_exam, _reports, _w205
from tests.test_srfix35_order_code import B, http, send
from tests.test_xofix41b_orders import _numbered

__all__ = ["engine", "http", "module_eng"]


def _by_order(http: TestClient, acc: str, run: str) -> dict[str, str]:
    """The reports under ``acc`` by the placer number of the order each is based on: {placer: conclusion}."""
    ids: dict[str, str] = {}
    for n in (1, 2):
        found = http.get("/fhir/ServiceRequest", params={"identifier": f"{HIS}|{run}{n}"}).json()
        ids.update({e["resource"]["id"]: f"{run}{n}" for e in found.get("entry") or ()})
    out: dict[str, str] = {}
    for r in _reports(http, acc):
        for b in r.get("basedOn") or ():
            out[ids.get(b["reference"].split("/", 1)[1], b["reference"])] = str(r.get("conclusion"))
    return out


def test_a_late_2024_correction_by_the_accession_alone_corrects_the_2024_report(http: TestClient) -> None:
    run = "RV41O-LC"
    acc = _old_exam(http, run)
    _numbered(http, run, acc)
    assert "MSA|AA" in send(http, _ct("", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿"))
    ack = send(http, _ct("", acc, sent="20260320090000+0800", obr7="20240312080000+0800", status="C",
                         text="左侧额叶小片状低密度影"))
    assert "MSA|AA" in ack, ack
    got = _by_order(http, acc, run)
    assert got == {f"{run}1": "左侧额叶小片状低密度影", f"{run}2": "右侧硬膜下血肿"}, (got, ack)


def test_after_not_told_the_2024_order_does_not_carry_the_2026_finding(http: TestClient) -> None:
    """rv41o HIGH 4 (fixed by xofix41c): the 2026 final by the accession alone, no order but the 2024 one holding
    it, is refused (AE, ERR 205 at OBR-3: not told, send the placer number) -- not filed over the 2024 report; the
    2026 correction by its placer number is then filed apart, and the 2024 order keeps its own finding."""
    run = "RV41O-NT"
    acc = _old_exam(http, run)
    assert "MSA|AA" in send(http, _stated_his(run))
    ack = send(http, _ct("", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿"))
    assert "MSA|AE" in ack and len(_w205(ack)) == 1, ack
    ack = send(http, _ct(f"{run}2", acc, sent="20260319100000+0800", obr7=T26, status="C",
                         text="右侧硬膜下血肿，较前无变化"))
    assert "MSA|AA" in ack, ack
    got = _by_order(http, acc, run)
    assert got.get(f"{run}1") == "未见异常", (got, ack)


def _stated_his(run: str) -> str:
    from tests.test_code37_ris_change import HEAD
    from tests.test_rv40d_probes import _stated
    return _stated("HIS", f"{run}2", "NW", HEAD, "", "")


def test_the_not_told_final_is_refused_and_kept_for_replay(http: TestClient, module_eng: Engine) -> None:
    """Guard (was: the not-told overwrite kept the 2024 version in history): the 2026 final by the accession alone
    that nothing tells is refused AE -- the 2024 report's history has the one version, and the raw message is kept
    (the message store holds it, refused), to be replayed once the sender names the placer number."""
    run = "RV41O-HI"
    acc = _old_exam(http, run)
    msg = _ct("", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿")
    ack = send(http, msg)
    assert "MSA|AE" in ack and len(_w205(ack)) == 1, ack
    [report] = _reports(http, acc)
    hist = http.get(f"/fhir/DiagnosticReport/{report['id']}/_history").json()
    said = sorted(str(e["resource"].get("conclusion")) for e in hist.get("entry") or () if e.get("resource"))
    assert said == ["未见异常"], hist
    doc = module_eng.ingestor.messages.get(message_id(B, msg.split("\n", 1)[0].split("|")[9]))
    assert doc is not None and doc["status"] == "quarantined", doc
    assert "右侧硬膜下血肿" in raw_of(doc).decode("utf-8"), doc


@pytest.mark.parametrize("named", ["accession-alone", "by-placer"])
def test_the_2026_report_replayed_after_sc_keys_the_same(http: TestClient, named: str) -> None:
    """Guard: after SC, the 2026 report sent twice (same bytes) is one report of its own on the 2026 order; the
    2024 one untouched."""
    run = f"RV41O-RP-{named[:2].upper()}"
    acc = _old_exam(http, run)
    _numbered(http, run, acc)
    msg = _ct(f"{run}2" if named == "by-placer" else "", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿")
    assert "MSA|AA" in send(http, msg)
    first = sorted(r["id"] for r in _reports(http, acc))
    assert "MSA|AA" in send(http, msg)
    assert sorted(r["id"] for r in _reports(http, acc)) == first
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常", f"{run}2": "右侧硬膜下血肿"}
    assert _conclusions(_reports(http, acc)) == [("final", "右侧硬膜下血肿"), ("final", "未见异常")]


# --- money: which result is the prior, after a late correction by the filler number alone --------------------------


def _cbc_alone(filler: str, when: str, obr7: str, status: str, wbc: str) -> str:
    """HOSPA's LIS CBC by the filler number alone (no placer number): MSH-7 ``when``, OBR-7 ``obr7``."""
    return (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when) + pid("HOSPA")
            + f"ORC|RE||{filler}||CM\n"
            + f"OBR|1||{filler}|{CBC}|||{obr7}|||||||||D7^张^医生||||||{when}|||{status}\n"
            + f"OBX|1|NM|WBC^白细胞^L||{wbc}|10*9/L|||||{status}|||{obr7}\n")


def test_a_late_2024_correction_does_not_unmake_the_2026_prior(engine: Engine, mllp: int) -> None:
    _repeat_judged(engine, mllp, corrected=True)


def test_the_2026_result_by_the_number_alone_is_the_prior(engine: Engine, mllp: int) -> None:
    """Guard (money): HOSPA's 2026 CBC, numbered by the LIS's SC with the 2024 number and reported by it alone, is
    its own result: HOSPB's CBC three days later is reminded and its repeat flagged against 2026-03-01."""
    _repeat_judged(engine, mllp, corrected=False)


def _repeat_judged(engine: Engine, mllp: int, *, corrected: bool) -> None:
    hl7 = Sender(mllp)
    t24, t26, fix, b26 = ("20240301080000+0800", "20260301080000+0800", "20260302080000+0800",
                          "20260304080000+0800")
    assert "MSA|AA" in hl7.send(order("HOSPA", "RV41O-A1", CBC, t24))
    assert "MSA|AA" in hl7.send(_cbc("HOSPA", "RV41O-A1", "F-RV41O^LIS", t24))
    assert "MSA|AA" in hl7.send(order("HOSPA", "RV41O-A2", CBC, t26))
    sc = (msh("HOSPA", "LIS", "ORM^O01^ORM_O01", t26) + pid("HOSPA")
          + f"ORC|SC|RV41O-A2^HIS|F-RV41O^LIS||IP||||{t26}\nOBR|1|RV41O-A2^HIS|F-RV41O^LIS|{CBC}|||{t26}\n")
    assert "MSA|AA" in (ack := hl7.send(sc)), ack
    assert "MSA|AA" in (ack := hl7.send(_cbc_alone("F-RV41O^LIS", t26, t26, "F", "7.2"))), ack
    if corrected:
        assert "MSA|AA" in (ack := hl7.send(_cbc_alone("F-RV41O^LIS", fix, t24, "C", "6.3"))), ack
    assert reminded(ack := hl7.send(order("HOSPB", "RV41O-B1", CBC, b26))), ack
    ack = hl7.send(_cbc("HOSPB", "RV41O-B1", "F-RV41O-B^LIS", b26))
    [f] = flags(engine, "flagged")
    assert "not payable" in ack and f["prior_day"] == "2026-03-01", (ack, f)


# --- the imaging study, a DICOM Study Instance UID sent on one exam and not the other --------------------------

_UID24, _UID26 = "1.2.156.112605.24031208", "1.2.156.112605.26031210"


def _with_uid(message: str, uid: str) -> str:
    return message + f"OBX|2|ST|113014^Study Instance UID^DCM||{uid}||||||F\n" if uid else message


@pytest.mark.parametrize(("uid24", "uid26"), [(_UID24, ""), ("", _UID26), (_UID24, _UID26)],
                         ids=["2024-only", "2026-only", "both"])
def test_each_exam_keeps_its_own_study_whichever_sends_a_uid(http: TestClient, uid24: str, uid26: str) -> None:
    """Guard: the 2024 exam reported with or without a Study Instance UID, the 2026 exam (numbered by SC, reported
    by the accession alone) with or without one: two studies under the accession, each based on its own order and
    started on its own exam's day."""
    from tests.test_code37_ris_change import HEAD
    from tests.test_rv40d_probes import _stated
    run = f"RV41O-UID{len(uid24)}{len(uid26)}"
    acc = f"{run}-ACC"
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}1", "NW", HEAD, "", "").replace("20260312080000",
                                                                                          "20240312080000"))
    ack = send(http, _with_uid(_ct(f"{run}1", acc, sent="20240312080000+0800", obr7="20240312080000+0800",
                                   status="F", text="未见异常"), uid24))
    assert "MSA|AA" in ack, ack
    _numbered(http, run, acc)
    ack = send(http, _with_uid(_ct("", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿"), uid26))
    assert "MSA|AA" in ack, ack
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常", f"{run}2": "右侧硬膜下血肿"}
    subject = _reports(http, acc)[0]["subject"]["reference"]
    found = http.get("/fhir/ImagingStudy", params={"subject": subject, "_count": 200}).json()
    studies = [e["resource"] for e in found.get("entry") or ()
               if any(i.get("value") in (acc, f"urn:oid:{uid24}", f"urn:oid:{uid26}")
                      for i in e["resource"].get("identifier") or ())]
    old, new = _one(http, HIS, f"{run}1"), _one(http, HIS, f"{run}2")
    got = sorted((str(s.get("started"))[:4], [b["reference"] for b in s.get("basedOn") or ()]) for s in studies)
    assert got == [("2024", [f"ServiceRequest/{old['id']}"]), ("2026", [f"ServiceRequest/{new['id']}"])], got


# --- batch vs one by one ---------------------------------------------------------------------------------------


def test_the_2026_order_numbered_and_reported_in_one_batch_as_one_by_one(http: TestClient) -> None:
    """Guard: the HIS's 2026 order, the RIS's SC numbering it with the reused accession and the report by the
    accession alone, all in one batch (FHS/BHS): as one by one, a report of its own on the 2026 order, the 2024
    report untouched."""
    from tests.test_code37_ris_change import HEAD
    from tests.test_rv40d_probes import _stated
    run = "RV41O-BT"
    acc = _old_exam(http, run)
    ack = send(http, "FHS|^~\\&|RIS|FNZYY\nBHS|^~\\&|RIS|FNZYY\n"
               + _stated("HIS", f"{run}2", "NW", HEAD, "", "")
               + _stated("RIS", f"{run}2", "SC", HEAD, f"{acc}^RIS", "")
               + _ct("", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿") + "BTS|3\nFTS|1\n")
    assert ack.count("MSA|AA") == 3, ack
    assert len(_w205(ack)) == 1, ack
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常", f"{run}2": "右侧硬膜下血肿"}
    assert _one(http, HIS, f"{run}2")["status"] == "completed"


# --- "not told" beyond F over F -----------------------------------------------------------------------------------


def test_a_2026_preliminary_by_the_accession_alone_does_not_silently_replace_the_2024_final(http: TestClient) -> None:
    """The RIS's 2026 preliminary (OBR-25 P) by the accession alone, no order but the 2024 one holding it, OBR-7 the
    2026 exam's: ``_not_told`` warns only of a final over a final, so a P stating another exam time must either
    leave the 2024 final as it was or say (W 205) that it could not tell -- never replace it unannounced."""
    run = "RV41O-PR"
    acc = _old_exam(http, run)
    ack = send(http, _ct("", acc, sent=T26, obr7=T26, status="P", text="右侧硬膜下血肿"))
    assert "MSA|AA" in ack, ack
    got = _conclusions(_reports(http, acc))
    assert got == [("final", "未见异常")] or len(_w205(ack)) == 1, (got, ack)


def test_a_2026_final_without_obr7_by_the_accession_alone_is_not_filed_unannounced(http: TestClient) -> None:
    """rv41o MED 1 (fixed by xofix41c): the 2026 final by the accession alone with no OBR-7, no order but the 2024
    one holding it, another conclusion -- refused AE (ERR 205 at OBR-3), the 2024 final as it was."""
    run = "RV41O-N7"
    acc = _old_exam(http, run)
    ack = send(http, _ct("", acc, sent=T26, obr7="", status="F", text="右侧硬膜下血肿"))
    assert "MSA|AE" in ack and len(_w205(ack)) == 1, ack
    assert _conclusions(_reports(http, acc)) == [("final", "未见异常")], ack


# --- the resident reading both -------------------------------------------------------------------------------------


def test_the_resident_reads_both_exams_reports_and_studies(http: TestClient, module_eng: Engine) -> None:
    """Guard: after the 2026 report is filed apart (SC, then the accession alone), the resident (a patient token for
    her record) reads both reports -- by search and in ``$everything`` -- and both imaging studies, each with its
    own conclusion."""
    from tests.test_probep25_privacy import resident
    run = "RV41O-RS"
    acc = _old_exam(http, run)
    _numbered(http, run, acc)
    assert "MSA|AA" in send(http, _ct("", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿"))
    reports = _reports(http, acc)
    assert len(reports) == 2
    pid = reports[0]["subject"]["reference"].split("/", 1)[1]
    h = resident(module_eng, pid)
    found = http.get("/fhir/DiagnosticReport", params={"_count": 200}, headers=h)
    assert found.status_code == 200, found.text[:400]
    seen = {e["resource"]["id"]: e["resource"].get("conclusion") for e in found.json().get("entry") or ()}
    assert {r["id"]: r.get("conclusion") for r in reports}.items() <= seen.items(), seen
    every = http.get(f"/fhir/Patient/{pid}/$everything", params={"_count": 1000}, headers=h)
    assert every.status_code == 200, every.text[:400]
    assert all(r["id"] in every.text for r in reports)
    studies = http.get("/fhir/ImagingStudy", params={"_count": 200}, headers=h).json()
    mine = [e["resource"] for e in studies.get("entry") or ()
            if any(i.get("value") == acc for i in e["resource"].get("identifier") or ())]
    assert sorted(str(s.get("started"))[:4] for s in mine) == ["2024", "2026"], mine


# --- replays of the 2024 report after the 2026 order is numbered ---------------------------------------------------


@pytest.mark.parametrize("resent", ["same-bytes", "new-control-id"])
def test_the_2024_report_replayed_after_the_2026_order_is_numbered_stays_the_2024_report(
        http: TestClient, resent: str) -> None:
    """The 2024 exam numbered by the RIS (SC) and reported by the accession alone; in 2026 the RIS numbers the new
    order with the reused accession (SC, not yet reported). The 2024 report is then sent again -- an interface
    replay, byte for byte or from the RIS's queue under a new MSH-10: it is the 2024 report (one report, on the
    2024 order), and the 2026 order is not completed by it."""
    from tests.test_code37_ris_change import HEAD
    from tests.test_rv40d_probes import _stated
    run = f"RV41O-RR-{resent[:2].upper()}"
    acc = f"{run}-ACC"
    old = "20240312080000"
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}1", "NW", HEAD, "", "").replace("20260312080000", old))
    assert "MSA|AA" in send(http, _stated("RIS", f"{run}1", "SC", HEAD, f"{acc}^RIS", "").replace("20260312080000",
                                                                                                  old))
    first = _ct("", acc, sent="20240312080000+0800", obr7="20240312080000+0800", status="F", text="未见异常")
    assert "MSA|AA" in send(http, first)
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常"}
    _numbered(http, run, acc)
    again = first if resent == "same-bytes" else _ct("", acc, sent="20240312080000+0800",
                                                      obr7="20240312080000+0800", status="F", text="未见异常")
    ack = send(http, again)
    assert "MSA|AA" in ack, ack
    got = _by_order(http, acc, run)
    assert got == {f"{run}1": "未见异常"}, (got, ack)
    assert _one(http, HIS, f"{run}2")["status"] != "completed", ack
