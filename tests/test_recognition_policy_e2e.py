"""End to end over MLLP: the doctor's order-time reason stands, and an HL7-only site has a rate.

HOSPA (a 三级 hospital) reports a blood count (LOINC 58410-2) 10 days ago. HOSPB (二级, same medical
community) orders one 6 days ago with no reason and gets its result: one "not payable" flag. Today
HOSPB orders again with ORC-16 ``R01^病情变化^HUREN``; its LIS then sends the result with placer and
filler numbers but no ORC-16. The reason recorded at order time stands: still exactly one flag.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from engine.settings import Settings
from tests.test_recognition_e2e import Sender

WANG = "32092319850412001X"
TZ = ZoneInfo("Asia/Shanghai")
CBC = "58410-2^CBC panel - Blood by Automated count^LN"
ALT = "1742-6^ALT^LN"
LFT = "24325-3^Hepatic function panel^LN"

INSTITUTIONS = """\
- {code: HOSPA, name: 县人民医院, community: c1, grade: 三级, qc: {passed: all, until: 2099-12-31}}
- {code: HOSPB, name: 县中医院, community: c1, grade: 二级, qc: {passed: all, until: 2099-12-31}}
- {code: HOSPC, name: 镇卫生院, community: c1, grade: 一级, qc: {passed: all, until: 2099-12-31}}
"""


# the community with each hospital's HIS declared its registration application (``registration_applications``): a
# hospital's HIS correcting a record onto the number the person's record at another hospital holds is its registrar's
# word, which the index links by -- on a site declaring none it is held for the operator (decl42); and its LIS, whose
# patients come from the HIS's orders, one whose result may make a new record linked by its number (idn43: else held)
DECLARED_INSTITUTIONS = INSTITUTIONS.replace("until: 2099-12-31}}", "until: 2099-12-31}, registration_applications: [HIS], "
                                             "number_linking_applications: [LIS]}")
assert DECLARED_INSTITUTIONS.count("registration_applications") == 3


def community_engine(tmp_path: Path, institutions: str = INSTITUTIONS) -> Iterator[Engine]:
    """The engine of the policy tests' community (``institutions``: ``INSTITUTIONS``, or ``DECLARED_INSTITUTIONS``),
    for this module's ``engine`` fixture and the other policy test modules' (``yield from community_engine(tmp_path)``)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(institutions, "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site)) as eng:
        yield eng


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from community_engine(tmp_path)


def ts(days_ago: int, hour: int = 8) -> str:
    moment = datetime.now(TZ).replace(hour=hour, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)
    return moment.strftime("%Y%m%d%H%M%S")


def msh(inst: str, app: str, kind: str, when: str, control: str) -> str:
    return f"MSH|^~\\&|{app}|{inst}|HUREN|C1|{when}||{kind}|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\n"


def pid(inst: str) -> str:
    return f"PID|1||{WANG}^^^公安部^NNCHN~MRN-{inst}^^^{inst}^MR||王^建国||19850412|M\n"


def order(inst: str, placer: str, item: str, when: str, reason: str = "", control: str = "NW") -> str:
    orc16 = f"||||{reason}" if reason else ""
    return (msh(inst, "HIS", "ORM^O01^ORM_O01", when, f"{inst}-ORM-{placer}-{control}") + pid(inst)
            + f"ORC|{control}|{placer}^HIS|||||||{when}|||D7^张^医生{orc16}\n"
            + f"OBR|1|{placer}^HIS||{item}|||{when}\n")


def result(inst: str, placer: str, item: str, when: str, obx: str = "OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F") -> str:
    return (msh(inst, "LIS", "ORU^R01^ORU_R01", when, f"{inst}-ORU-{placer}") + pid(inst)
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{item}|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + f"{obx}|||{when}\n")


def not_payable(engine: Engine) -> list[dict]:
    return [f for f in engine.recognition.flags.find({}) if f["status"] == "flagged"]


def test_order_time_reason_stands_when_the_lis_result_omits_it(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(10)))
    hl7.send(result("HOSPA", "A1", CBC, ts(10, 10)))
    ack = hl7.send(order("HOSPB", "B1", CBC, ts(6)))
    assert "Recognisable prior result" in ack
    ack = hl7.send(result("HOSPB", "B1", CBC, ts(6, 10)))
    assert ack.count("Suspected duplicate test, not payable") == 1, ack  # once, not once per resource
    assert len(not_payable(engine)) == 1

    ack = hl7.send(order("HOSPB", "B2", CBC, ts(0), reason="R01^病情变化^HUREN"))
    assert "Recognisable prior result" in ack
    ack = hl7.send(result("HOSPB", "B2", CBC, ts(0, 10)))
    assert "not payable" not in ack
    flags = engine.recognition.flags.find({})
    assert len(not_payable(engine)) == 1
    [justified] = [f for f in flags if f["status"] == "justified"]
    assert (justified["reason"], justified["order"].startswith("ServiceRequest/")) == ("R01", True)


def test_hl7_only_site_has_a_rate_after_a_cancelled_reminded_order(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, ts(3)))
    assert "Recognisable prior result" in hl7.send(order("HOSPC", "C1", CBC, ts(1)))
    hl7.send(order("HOSPC", "C1", CBC, ts(1, 9), control="CA"))  # the doctor recognises: cancels
    http = TestClient(create_app(engine))
    token = engine.auth.issue_system_token("auditor", "system/DetectedIssue.rs", kind="auditor")
    rep = http.get("/reports/duplicates", headers={"Authorization": f"Bearer {token}"}).json()
    rate = rep["recognition_rate"]["HOSPC"]
    assert (rate["recognisable"], rate["recognised"]) == (1, 1) and rate["rate"] == 1.0
    assert rep["recognition_rate_by"]["doctor"]["张医生"]["rate"] == 1.0

    # published as FHIR: the Measure is stored, $evaluate-measure gives the MeasureReport
    auditor = {"Authorization": f"Bearer {token}"}
    measure = engine.repository.read("Measure", "huren-recognition-rate")
    assert measure["scoring"]["coding"][0]["code"] == "proportion"
    res = http.get("/fhir/Measure/huren-recognition-rate/$evaluate-measure", headers=auditor,
                   params={"periodStart": (datetime.now(TZ) - timedelta(days=30)).date().isoformat()})
    assert res.status_code == 200, res.text
    mr = res.json()
    from fhir.resources.R4B.measurereport import MeasureReport

    MeasureReport.model_validate(mr)
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in mr["group"][0]["population"]}
    assert counts == {"initial-population": 1, "denominator": 1, "numerator": 1}
    [by_inst] = [s for s in mr["group"][0]["stratifier"] if s["code"][0]["text"] == "institution"]
    assert [(st["value"]["text"], st["measureScore"]["value"]) for st in by_inst["stratum"]] == [("HOSPC", 1.0)]
    patient_token = engine.auth.issue_system_token("ehr", "system/ServiceRequest.rs")
    assert http.get("/fhir/Measure/huren-recognition-rate/$evaluate-measure",
                    headers={"Authorization": f"Bearer {patient_token}"}).status_code == 403


def test_one_alt_after_a_liver_panel_costs_the_alt(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", LFT, ts(2), obx="OBX|1|NM|1742-6^ALT^LN||30|U/L|||||F"))
    hl7.send(order("HOSPB", "B1", ALT, ts(0)))
    ack = hl7.send(result("HOSPB", "B1", ALT, ts(0, 10), obx="OBX|1|NM|1742-6^ALT^LN||31|U/L|||||F"))
    assert "not payable" in ack
    [flag] = not_payable(engine)
    assert flag["analytes"] == ["ALT"] and stored_fen(flag["price"]) == 5.0


def test_recognisable_results_carry_their_hr_scope(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, ts(1)))
    [report] = engine.repository.search("DiagnosticReport", []).resources
    tags = [(t["system"], t["code"]) for t in report["meta"]["tag"]]
    assert ("urn:huren:hr-scope", "community") in tags
