"""acsn43: a RIS's report naming its exam by the accession alone (OBR-3) is based on the OMI's order holding that
accession (IPC-1 -> ACSN) -- the accession is the filler's number for the order it was assigned to (IHE RAD
Scheduled Workflow: the RIS, the Department System Scheduler / Order Filler, assigns it) -- and the reuse rules of
the number hold for it as for a FILL (acc42, xofix42: an accession reused across years, a report by the accession
alone refused AE 205 at OBR-3 where which exam is not told).

HL7 v2.5.1 in 阜宁县人民医院's style (RIS, LIS; local codes, UTF-8), real bytes over MLLP and ``POST /hl7v2`` into a
real engine and store on each backend (``module_eng``: SQLite, mongomock), read back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, mllp, post
from tests.module_store import module_eng, module_eng_http  # noqa: F401 -- the module's engine and client, each backend

HDR = "MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|{stamp}+0800||{kind}|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\r"
ORDER = "urn:huren:order:FNXRMYY"


def _omi(control: str, mrn: str, placer: str, accession: str, ordered: str, uid: str) -> str:
    """The RIS's OMI^O23 of one head CT ordered at ``ordered``: placer number, accession (IPC-1) and Study UID."""
    return (HDR.format(app="RIS", stamp=ordered, kind="OMI^O23^OMI_O23", control=control)
            + f"PID|1||{mrn}^^^FNXRMYY^MR||孙^丙||19700109|M\rPV1|1|O\r"
            f"ORC|NW|{placer}|||||||{ordered}|||1001^李^医生\r"
            f"OBR|1|{placer}||CT009^头颅CT平扫^L|||{ordered}\rIPC|{accession}|RP|{uid}|SPS|CT\r")


def _report(control: str, mrn: str, accession: str, observed: str, status: str, text: str, sent: str) -> str:
    """The RIS's report naming its exam by the accession alone, in OBR-3 (OBR-2 empty)."""
    return (HDR.format(app="RIS", stamp=sent, kind="ORU^R01^ORU_R01", control=control)
            + f"PID|1||{mrn}^^^FNXRMYY^MR||孙^丙||19700109|M\r"
            f"OBR|1||{accession}|CT009^头颅CT平扫^L|||{observed}|||||||||||||||{sent}|||{status}\r"
            f"OBX|1|TX|CT009^头颅CT平扫^L||{text}||||||{status}|||{sent}\r")


def _order(http: TestClient, placer: str) -> dict[str, Any]:
    found = http.get("/fhir/ServiceRequest", params={"identifier": f"{ORDER}|{placer}"}).json()
    (sr,) = [e["resource"] for e in found.get("entry") or ()]
    return sr


def _kind(ident: dict[str, Any]) -> str:
    """An identifier's v2 0203 type (PLAC, FILL, ACSN), "" when it states none (a Study UID)."""
    return str(((ident.get("type") or {}).get("coding") or [{}])[0].get("code") or "")


def _orders_of(http: TestClient, subject: str) -> list[dict[str, Any]]:
    found = http.get("/fhir/ServiceRequest", params={"subject": subject, "_count": 50}).json()
    return [e["resource"] for e in found.get("entry") or ()]


def _texts(http: TestClient, subject: str) -> dict[str, str]:
    """Her reports: the placer number of the order each is based on -> its result's text."""
    found = http.get("/fhir/DiagnosticReport", params={"subject": subject, "_count": 50}).json()
    out: dict[str, str] = {}
    for report in (e["resource"] for e in found.get("entry") or ()):
        (based,) = report["basedOn"]
        order = http.get(f"/fhir/{based['reference']}").json()
        (placer,) = [i["value"] for i in order["identifier"] if _kind(i) == "PLAC"]
        (result,) = report["result"]
        out[placer] = http.get(f"/fhir/{result['reference']}").json()["valueString"]
    return out


def test_a_report_by_the_accession_alone_over_mllp_is_the_omis_orders(module_eng: Engine,
                                                                       http: TestClient) -> None:
    """One OMI, its report by the accession alone, over MLLP: AA and no ERR each; the report based on the OMI's
    order, which now holds the number as its filler number too -- one order of hers, not two."""
    omi = _omi("ACSN43M1", "ACSN43M", "ACSN43PM", "ACSN43ACCM", "20261201090000", "1.2.156.4343.1")
    report = _report("ACSN43M2", "ACSN43M", "ACSN43ACCM", "20261201093000", "F", "未见异常", "20261201110000")
    acks = mllp(module_eng, omi.encode(), report.encode())
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"] and not any(map(err_lines, acks)), acks
    order = _order(http, "ACSN43PM")
    subject = order["subject"]["reference"]
    assert [o["id"] for o in _orders_of(http, subject)] == [order["id"]]
    assert _texts(http, subject) == {"ACSN43PM": "未见异常"}
    fills = [i["value"] for i in order["identifier"] if _kind(i) == "FILL"]
    assert fills == ["ACSN43ACCM"], order


def test_an_accession_reused_across_years_keeps_each_exams_report(module_eng: Engine, http: TestClient) -> None:
    """acc42/xofix42's reuse rules through the accession: the RIS's counter restarts, so its 2024 and 2026 head CTs
    of one patient hold one accession (IPC-1). The 2024 report by the accession alone is the 2024 order's; the
    2026 one's is the 2026 order's (filed apart, W 205 at OBR-3 naming the other exam), the 2024 report kept; a
    late correction restating the 2024 exam time corrects the 2024 report; a final observed in 2025 -- before
    the newest order and no stored exam's time -- is refused AE 205 at OBR-3, its bytes kept."""
    mrn, acc = "ACSN43Y", "ACSN43ACCY"
    assert ack_code_of(post(http, _omi("ACSN43Y1", mrn, "ACSN43P24", acc, "20240312080000", "1.2.156.4343.24"))) \
        == "AA"
    ack = post(http, _report("ACSN43Y2", mrn, acc, "20240312083000", "F", "未见异常", "20240312110000"))
    assert ack_code_of(ack) == "AA" and err_lines(ack) == [], ack
    subject = _order(http, "ACSN43P24")["subject"]["reference"]
    assert _texts(http, subject) == {"ACSN43P24": "未见异常"}
    assert ack_code_of(post(http, _omi("ACSN43Y3", mrn, "ACSN43P26", acc, "20260312080000", "1.2.156.4343.26"))) \
        == "AA"
    ack = post(http, _report("ACSN43Y4", mrn, acc, "20260312083000", "F", "右侧硬膜下血肿", "20260312110000"))
    assert ack_code_of(ack) == "AA", ack
    (err,) = err_lines(ack)
    assert err == ("ERR||OBR^1^3|205^Duplicate key identifier^HL70357|W||||OBR-3 (filler order number) 'ACSN43ACCY' "
                   "keys the stored report of another exam (the order of placer number ACSN43P24; this report's is the "
                   "order of placer number ACSN43P26, which does not replace it): this report is filed as that "
                   "order's report, the stored one left as it was"), err
    assert _texts(http, subject) == {"ACSN43P24": "未见异常", "ACSN43P26": "右侧硬膜下血肿"}
    # the 2024 exam corrected late, by the accession alone, restating its exam time
    ack = post(http, _report("ACSN43Y5", mrn, acc, "20240312083000", "C", "未见明显异常", "20261101090000"))
    assert ack_code_of(ack) == "AA", ack
    assert _texts(http, subject) == {"ACSN43P24": "未见明显异常", "ACSN43P26": "右侧硬膜下血肿"}
    # a final observed in 2025: before the newest order, no stored exam's -- which exam is not told
    refused = _report("ACSN43Y6", mrn, acc, "20250312083000", "F", "右侧硬膜下积液", "20250312110000")
    ack = post(http, refused)
    assert ack_code_of(ack) == "AE", ack
    (err,) = err_lines(ack)
    assert err.startswith("ERR||OBR^1^3|205^Duplicate key identifier^HL70357|E||||OBR-3 (filler order number) "
                          "'ACSN43ACCY' with no placer number states the exam time 2025-03-12T08:30:00+08:00, a day "
                          "before the newest order holding the number was placed (the order of placer number "
                          "ACSN43P26, ordered 2026-03-12T08:00:00+08:00)"), err
    assert err.endswith("send it with its placer number (OBR-2)"), err
    doc = module_eng.ingestor.messages.get(message_id("FNXRMYY", "ACSN43Y6"))
    assert doc is not None and doc["status"] == "quarantined", doc
    assert _texts(http, subject) == {"ACSN43P24": "未见明显异常", "ACSN43P26": "右侧硬膜下血肿"}


def test_a_lis_number_of_the_accessions_value_is_not_the_imaging_order(http: TestClient) -> None:
    """Two counters of one hospital, both by date: the LIS's potassium under specimen number 20261201001 (OBR-3
    alone) for a patient whose head CT holds accession 20261201001 -- a lab message coded as another test: its
    own order, the CT order left without a report (the accession names its order in an imaging message, or one
    coded as the order's test)."""
    mrn, number = "ACSN43L", "ACSN43-20261201001"
    assert ack_code_of(post(http, _omi("ACSN43L1", mrn, "ACSN43PL", number, "20261201090000", "1.2.156.4343.3"))) \
        == "AA"
    lis = (HDR.format(app="LIS", stamp="20261201100000", kind="ORU^R01^ORU_R01", control="ACSN43L2")
           + f"PID|1||{mrn}^^^FNXRMYY^MR||孙^丙||19700109|M\r"
           f"OBR|1||{number}|K^钾^L|||20261201083000||||||||BLD|||||||20261201091000|||F\r"
           "OBX|1|NM|K^钾^L||4.1|mmol/L|3.5-5.5|N|||F|||20261201083000\r")
    ack = post(http, lis)
    assert ack_code_of(ack) == "AA" and err_lines(ack) == [], ack
    ct = _order(http, "ACSN43PL")
    found = http.get("/fhir/DiagnosticReport", params={"subject": ct["subject"]["reference"]}).json()
    (report,) = [e["resource"] for e in found.get("entry") or ()]
    assert report["basedOn"] != [{"reference": f"ServiceRequest/{ct['id']}"}], report
    assert [i["value"] for i in ct["identifier"] if _kind(i) == "FILL"] == [], ct



def test_in_one_batch_as_one_by_one(http: TestClient) -> None:
    """The OMI and its report by the accession alone in one FHS/BHS batch: two AA, no ERR, one order of hers with
    the report based on it -- as one by one (the batch's earlier message read as it leaves the order)."""
    omi = _omi("ACSN43B1", "ACSN43B", "ACSN43PB", "ACSN43ACCB", "20261201090000", "1.2.156.4343.6")
    rep = _report("ACSN43B2", "ACSN43B", "ACSN43ACCB", "20261201093000", "F", "未见异常", "20261201110000")
    ack = post(http, "FHS|^~\\&|RIS|FNXRMYY\rBHS|^~\\&|RIS|FNXRMYY\r" + omi + rep + "BTS|2\rFTS|1\r")
    assert ack.count(b"MSA|AA|") == 2 and err_lines(ack) == [], ack
    order = _order(http, "ACSN43PB")
    subject = order["subject"]["reference"]
    assert [o["id"] for o in _orders_of(http, subject)] == [order["id"]]
    assert _texts(http, subject) == {"ACSN43PB": "未见异常"}


def test_an_omi_naming_its_own_filler_number_takes_its_report_by_the_accession(http: TestClient) -> None:
    """The OMI states its filler order number (ORC-3/OBR-3 ``ACSN43FILLF^RIS``) and the accession apart (IPC-1),
    as HL7 keeps them; the RIS's report names the exam by the accession: the OMI's order, which keeps its filler
    number and holds the accession as the number the report named it by -- one order, AA, no ERR."""
    omi = _omi("ACSN43F1", "ACSN43F", "ACSN43PF", "ACSN43ACCF", "20261201090000", "1.2.156.4343.5").replace(
        "|ACSN43PF||", "|ACSN43PF|ACSN43FILLF^RIS|")
    assert ack_code_of(post(http, omi)) == "AA"
    ack = post(http, _report("ACSN43F2", "ACSN43F", "ACSN43ACCF", "20261201093000", "F", "未见异常", "20261201110000"))
    assert ack_code_of(ack) == "AA" and err_lines(ack) == [], ack
    order = _order(http, "ACSN43PF")
    subject = order["subject"]["reference"]
    assert [o["id"] for o in _orders_of(http, subject)] == [order["id"]]
    assert _texts(http, subject) == {"ACSN43PF": "未见异常"}
    assert sorted(i["value"] for i in order["identifier"] if _kind(i) == "FILL") == ["ACSN43ACCF", "ACSN43FILLF"]


def test_a_report_of_two_ipcs_makes_one_imaging_study_per_study_uid(http: TestClient) -> None:
    """The RIS's report of one order booked as two studies (a CT and its MR follow-up: the OMI's two IPCs, which a
    PACS-style RIS repeats after the report's OBR): two ImagingStudy resources, each keyed by its own Study Instance UID with its own
    accession and modality, both based on the order; re-sent, still two (omi42 LOW: one, the first's)."""
    omi = _omi("ACSN43I1", "ACSN43I", "ACSN43PI", "ACSN43ACCI1", "20261201090000", "1.2.156.4343.71").replace(
        "IPC|ACSN43ACCI1|RP|1.2.156.4343.71|SPS|CT\r",
        "IPC|ACSN43ACCI1|RP|1.2.156.4343.71|SPS|CT\rIPC|ACSN43ACCI2|RP2|1.2.156.4343.72|SPS2|MR\r")
    assert ack_code_of(post(http, omi)) == "AA"
    report = (HDR.format(app="RIS", stamp="20261201110000", kind="ORU^R01^ORU_R01", control="ACSN43I2")
              + "PID|1||ACSN43I^^^FNXRMYY^MR||孙^丙||19700109|M\r"
              "OBR|1|ACSN43PI||CT009^头颅CT平扫^L|||20261201093000|||||||||||||||20261201110000|||F\r"
              "IPC|ACSN43ACCI1|RP|1.2.156.4343.71|SPS|CT\rIPC|ACSN43ACCI2|RP2|1.2.156.4343.72|SPS2|MR\r"
              "OBX|1|TX|CT009^头颅CT平扫^L||颅内未见出血||||||F|||20261201110000\r"
              "OBX|2|TX|CT009^头颅CT平扫^L||脑室系统未见扩大||||||F|||20261201110000\r")
    for control in ("ACSN43I2", "ACSN43I3"):
        ack = post(http, report.replace("|ACSN43I2|", f"|{control}|"))
        # (IPC is no segment of ORU_R01: a PACS-style sender's, taken as sent and said -- each once)
        assert ack_code_of(ack) == "AA" and err_lines(ack) == [
            f"ERR||IPC^{n}|100^Segment sequence error^HL70357|W||||IPC is not a segment of message structure "
            "ORU_R01 of HL7 2.5.1: taken as sent, outside the structure" for n in (1, 2)], ack
        order = _order(http, "ACSN43PI")
        found = http.get("/fhir/ImagingStudy", params={"subject": order["subject"]["reference"]}).json()
        studies = {s["identifier"][0]["value"]: s for s in (e["resource"] for e in found.get("entry") or ())}
        assert sorted(studies) == ["urn:oid:1.2.156.4343.71", "urn:oid:1.2.156.4343.72"], studies
        ct, mr = studies["urn:oid:1.2.156.4343.71"], studies["urn:oid:1.2.156.4343.72"]
        assert [m["code"] for m in ct["modality"]] == ["CT"] and [m["code"] for m in mr["modality"]] == ["MR"]
        assert [i["value"] for i in mr["identifier"] if _kind(i) == "ACSN"] == ["ACSN43ACCI2"], mr
        assert ct["basedOn"] == mr["basedOn"] == [{"reference": f"ServiceRequest/{order['id']}"}]
        assert mr["started"] == ct["started"], (ct, mr)
        docs = http.get("/fhir/DocumentReference", params={"subject": order["subject"]["reference"]}).json()
        (doc,) = [e["resource"] for e in docs.get("entry") or ()]
        related = {r["reference"] for r in doc["context"]["related"]}
        assert {f"ImagingStudy/{ct['id']}", f"ImagingStudy/{mr['id']}"} <= related, doc["context"]
