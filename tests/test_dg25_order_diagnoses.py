"""dg25: an order's DG1 (ORM^O01, OML^O21: the order's reason, ServiceRequest.reasonReference) under a visit
(PV1-19) is also a diagnosis of that visit: an entry of its Encounter.diagnosis, merged by Condition,
nothing else of the stored visit changed. A result's DG1 (ORU) adds none. POST /hl7v2, read over /fhir."""

from __future__ import annotations

from typing import Any

from tests.test_convert_families import PID, message, msh, post
from tests.test_dg24_encounter_diagnosis import codes, encounter
from tests.test_moneyfix24_planned import county as county  # noqa: F401  (the fixture)
from tests.test_moneyfix24_rv2_split_hl7 import visit

Z511 = "Z51.1^肿瘤化学治疗疗程^I10"
C341 = "C34.1^肺癌^I10"
PV1_BILL = "PV1|1|I|病区^9^9^FNXRMYY||||||||||||||||{visit}"  # the order's thin PV1: another ward, no times



def _stay(http: Any) -> dict[str, Any]:
    visit(http, "A1", "V-1", "20260310080000", "20260312090000", f"DG1|1||{C341}|||F|||||||||2")
    return encounter(http, "V-1")


def _same_visit(before: dict[str, Any], after: dict[str, Any]) -> None:
    for name in ("status", "class", "period", "location", "subject", "identifier", "hospitalization"):
        assert after.get(name) == before.get(name), (name, before.get(name), after.get(name))


ORDER = ("ORC|NW|ORD-1^HIS|||||||20260311080000", "OBR|1|ORD-1^HIS||GLU^葡萄糖^L|||20260311080000")


def test_orm_dg1_adds_the_visits_diagnosis(county: Any) -> None:
    _, http, _ = county
    before = _stay(http)
    orm = message(msh("ORM^O01^ORM_O01", "O1"), PID, PV1_BILL.format(visit="V-1"), *ORDER,
                  f"DG1|1||{Z511}|||W")
    assert post(http, orm) == "AA"
    after = encounter(http, "V-1")
    assert codes(http, after) == [("C34.1", 2, "DD"), ("Z51.1", None, None)], after
    _same_visit(before, after)
    (order,) = http.get("/fhir/ServiceRequest").json()["entry"]
    assert order["resource"]["reasonReference"] == [after["diagnosis"][1]["condition"]]


def test_orm_dg1_restating_the_stays_diagnosis_keeps_its_rank(county: Any) -> None:
    _, http, _ = county
    before = _stay(http)
    orm = message(msh("ORM^O01^ORM_O01", "O2"), PID, PV1_BILL.format(visit="V-1"), *ORDER, f"DG1|1||{C341}|||W")
    assert post(http, orm) == "AA"
    after = encounter(http, "V-1")
    assert codes(http, after) == [("C34.1", 2, "DD")]
    assert after["meta"]["versionId"] == before["meta"]["versionId"], after  # nothing new: no new version


def test_oru_dg1_adds_no_diagnosis(county: Any) -> None:
    _, http, _ = county
    before = _stay(http)
    oru = message(msh("ORU^R01^ORU_R01", "R1"), PID, PV1_BILL.format(visit="V-1"),
                  "OBR|1|ORD-1^HIS|LAB-1^LIS|GLU^葡萄糖^L|||20260311080000|||||||||||||||20260311091000|||F",
                  "OBX|1|NM|GLU^葡萄糖^L||5.1|mmol/L|||||F", f"DG1|1||{Z511}|||W")
    assert post(http, oru) == "AA"  # pinned (dgfix25): a result's DG1 is no error, it adds nothing
    assert encounter(http, "V-1")["meta"]["versionId"] == before["meta"]["versionId"]
