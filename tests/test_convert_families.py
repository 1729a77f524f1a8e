"""Every message family a member hospital sends goes in as real HL7 bytes (POST /hl7v2) and comes
back as FHIR R4 through the API: immunisation, pharmacy, scheduling, referral, billing, problems,
the further ADT events and lab structures, and results whose order code is missing.

The messages are shaped like the feeds of a county HIS/LIS (national resident ID in PID-3,
Chinese names, local codes); each conversion is also checked as a valid R4 bundle with every
reference inside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.convert import Conversion, convert
from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.parser import parse
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_convert import assert_valid_bundle

NATIONAL_ID = "110101198001010010"  # valid check character, born 1980-01-01, male
PID = f"PID|1||{NATIONAL_ID}^^^^NNCHN~M0001^^^FNXRMYY^MR||张^三||19800101|M|||人民路1号^^阜宁^江苏^224400||13800000000"
PV1 = "PV1|1|O|门诊^101^1^FNXRMYY||||D001^李^医生|||||||||||V0001|||||||||||||||||||||||||20261101080000"


def msh(kind: str, control: str, version: str = "2.5.1") -> str:
    return f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101091500||{kind}|{control}|P|{version}"


def message(*segments: str) -> bytes:
    return ("\r".join(segments) + "\r").encode()


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    with Engine(settings) as eng:
        yield eng


@pytest.fixture
def http(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        token = engine.auth.issue_system_token("his-feed", "system/*.cruds")
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def post(http: TestClient, raw: bytes) -> str:
    r = http.post("/hl7v2", content=raw, headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200, r.text
    return ack_code_of(r.content)


def search(http: TestClient, rtype: str, **params: str) -> list[dict[str, Any]]:
    r = http.get(f"/fhir/{rtype}", params=params)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", []) if e.get("search", {}).get("mode") != "include"]


def converted(engine: Engine, raw: bytes) -> Conversion:
    """The same message through the converter alone: a valid bundle, every reference inside it."""
    conv = convert(parse(raw.decode()), engine.site)
    assert_valid_bundle(conv)
    return conv


def patient_id(http: TestClient) -> str:
    (patient,) = search(http, "Patient", identifier=NATIONAL_ID)
    return f"Patient/{patient['id']}"


# --- immunisation ---------------------------------------------------------------------------------


VXU = message(
    msh("VXU^V04^VXU_V04", "VXU1"),
    PID,
    PV1,
    "ORC|RE|IM-100^HIS|IM-100^FNXRMYY||CM",
    "RXA|0|1|20261101083000||CN-HEPB^乙肝疫苗^L|10|ug^微克^UCUM||00^New Record^NIP001|N001^王^护士|||||B2026A|20271231|"
    "KX^康希诺^MVX|||CP|A",
    "RXR|IM^肌内注射^HL70162|LD^左三角肌^HL70163",
    "OBX|1|CWE|31044-1^Immunization reaction^LN|1|FEV^发热^L||||||F|||20261102",
    "NTE|1||接种后30分钟观察无异常",
    "ORC|RE|IM-101^HIS|IM-101^FNXRMYY||CM",
    "RXA|0|1|20250301||CN-FLU^流感疫苗^L|999|||01^Historical^NIP001||||||||||CP|A",
)


def test_vxu_makes_immunizations_with_reactions(engine: Engine, http: TestClient) -> None:
    conv = converted(engine, VXU)
    assert post(http, VXU) == "AA"
    subject = patient_id(http)
    found = {i["vaccineCode"]["coding"][0]["code"]: i for i in search(http, "Immunization", patient=subject)}
    assert set(found) == {"CN-HEPB", "CN-FLU"}
    hepb = found["CN-HEPB"]
    assert hepb["status"] == "completed" and hepb["primarySource"] is True
    assert hepb["doseQuantity"] == {"value": 10, "unit": "微克", "system": "http://unitsofmeasure.org", "code": "ug"}
    assert hepb["lotNumber"] == "B2026A" and hepb["expirationDate"] == "2027-12-31"
    assert hepb["route"]["coding"][0]["code"] == "IM" and hepb["site"]["coding"][0]["code"] == "LD"
    assert hepb["manufacturer"]["display"] == "康希诺"
    assert {i["value"] for i in hepb["identifier"]} == {"IM-100"}
    reaction = http.get(f"/fhir/{hepb['reaction'][0]['detail']['reference']}").json()
    assert reaction["valueCodeableConcept"]["coding"][0]["code"] == "FEV"
    assert reaction["partOf"] == [{"reference": f"Immunization/{hepb['id']}"}]
    assert reaction["note"] == [{"text": "接种后30分钟观察无异常"}]
    flu = found["CN-FLU"]
    assert flu["primarySource"] is False and "doseQuantity" not in flu  # 999: amount unknown
    # deterministic: the same message converts to the same ids
    again = converted(engine, VXU)
    assert [r["id"] for r in again.resources] == [r["id"] for r in conv.resources]
