"""The per-institution fidelity report lists every unmapped segment and every unmapped code, with
the number of messages each occurred in: what an interface analyst works through with a hospital.

Real HL7 bytes go through POST /hl7v2 (the ingest pipeline, the real store); the report is read
through GET /admin/fidelity as an operator would.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.conftest import NATIONAL_ID
from tests.test_convert_families import post


def lab_result(control: str) -> bytes:
    """A result carrying one of each kind of gap, and two segments huren does not map."""
    return "\r".join((
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORU^R01^ORU_R01|{control}|P|2.5.1",
        f"PID|1||{NATIONAL_ID}^^^^NNCHN~M0001^^^FNXRMYY^MR||张^三||19800101|Q",  # Q: no such sex
        "ZLB|1|lab-private data",  # a site's own segment
        "OBR|1|ORD-1|LAB-1|ZZPANEL^自定义组合^L|||20261101083000||||||||||||||||20261101091000|||F",
        "OBX|1|NM|ZZGLU^葡萄糖^L||5.6|mmol/L|3.9-6.1|QQ|||F|||20261101090000",  # local code, bad flag
        "OBX|2|NM|GLU^葡萄糖^L||5.6|furlong|3.9-6.1|N|||F|||20261101090000",  # not a UCUM unit
        "OBX|3|CWE|RH^Rh血型^L||POS^阳性^RHSYS||||||F|||20261101090000",  # an unknown coding system
        "CTD|1|MGR^联系人^HL70131",  # a standard segment the result template does not consume
    )).encode() + b"\r"


@pytest.fixture
def operator(http: TestClient, engine: Engine) -> TestClient:
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("operator", "system/*.cruds")
    return http


def report(http: TestClient, **params: str) -> dict[str, Any]:
    r = http.get("/admin/fidelity", params=params)
    assert r.status_code == 200, r.text
    return r.json()["institutions"]


def test_every_unmapped_segment_and_code_is_listed_with_counts(operator: TestClient) -> None:
    assert [post(operator, lab_result(c)) for c in ("F1", "F2")] == ["AA", "AA"]
    inst = report(operator, institution="FNXRMYY")["FNXRMYY"]
    counted = {(i["kind"], i["value"]): i["count"] for i in inst["items"] if i["kind"] != "warning"}
    expected = {
        ("segment", "ZLB"): 2,
        ("segment", "CTD"): 2,
        ("code", "ZZPANEL"): 2,  # OBR-4 not in the institution's code map
        ("code", "ZZGLU"): 2,  # OBX-3
        ("administrative_gender", "Q"): 2,  # PID-8 not in the vocabulary table
        ("interpretation", "QQ"): 2,  # OBX-8
        ("unit", "furlong"): 2,  # OBX-6
        ("coding_system", "RHSYS"): 2,  # CWE-3 names a system huren does not know
    }
    assert {k: counted.get(k) for k in expected} == expected
    assert inst["segments"] == {"CTD": 2, "ZLB": 2}
    assert {"ZZGLU": 2, "ZZPANEL": 2}.items() <= inst["codes"]["code"].items()
    assert inst["codes"]["coding_system"] == {"RHSYS": 2}
    assert inst["unmapped"] == sum(counted.values())
    where = {(i["kind"], i["value"]): i["where"] for i in inst["items"]}
    assert where[("code", "ZZGLU")] == "OBX-3" and where[("code", "ZZPANEL")] == "OBR-4"
    assert where[("administrative_gender", "Q")] == "PID-8"  # a vocabulary miss names its field


def test_the_report_is_per_institution(operator: TestClient) -> None:
    assert post(operator, lab_result("F3")) == "AA"
    assert report(operator, institution="FNYGT") == {}
    assert set(report(operator)) == {"FNXRMYY"}
