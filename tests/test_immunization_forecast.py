"""An immunization forecast (the CDC IIS pattern: an RXA 998 "no vaccine administered" group with
OBX blocks for each vaccine due) becomes an ImmunizationRecommendation, from a VXU or from a
registry's RSP^K11 Z42 answer. The registry sample is NIST's public test case (tests/data/hl7v2/
nist-iz); the VXU is a county clinic's, written here. Real bytes through POST /hl7v2, read back
through the FHIR API; each conversion is also checked as a valid R4 bundle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from adapters.convert import convert
from adapters.hl7v2.parser import parse
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from mappings.site import DEFAULTS_DIR
from tests.conftest import SAMPLES
from tests.test_convert import assert_valid_bundle
from tests.test_convert_families import NATIONAL_ID, PID, message, msh, post, search

NIST = SAMPLES / "nist-iz"
LOINC = "http://loinc.org"


@pytest.fixture
def engine(settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    """The default site plus NIST's test registry as a member (its samples name it in MSH-4)."""
    site = tmp_path / "site"
    site.mkdir()
    members = yaml.safe_load((DEFAULTS_DIR / "institutions.yaml").read_text(encoding="utf-8"))
    members.append({"code": "NISTIISFAC", "name": "NIST test registry", "community": "samples",
                    "timezone": "America/Denver"})
    (site / "institutions.yaml").write_text(yaml.safe_dump(members, allow_unicode=True), encoding="utf-8")
    with Engine(settings.with_(site=site)) as eng:
        yield eng


@pytest.fixture
def http(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = f"Bearer {engine.auth.issue_system_token('iis', 'system/*.cruds')}"
        yield client


def dates(rec: dict) -> dict[str, str]:
    return {c["code"]["coding"][0]["code"]: c["value"] for c in rec.get("dateCriterion", [])}


def test_nist_z42_forecast_becomes_an_immunization_recommendation(engine: Engine, http: TestClient) -> None:
    raw = (NIST / "NIST-IZ-QR-2.2_Response_K11_Z42.hl7").read_bytes()
    assert_valid_bundle(convert(parse(raw.decode()), engine.site))
    assert post(http, raw) == "AA"
    (patient,) = search(http, "Patient", identifier="648286")
    (forecast,) = search(http, "ImmunizationRecommendation", patient=patient["id"])
    assert forecast["date"].startswith("2015-10-29")  # RXA-3 of the forecast group: when it was made
    by_vaccine = {r["vaccineCode"][0]["coding"][0]["code"]: r for r in forecast["recommendation"]}
    assert set(by_vaccine) == {"152", "88", "03", "85", "45", "108", "21", "115"}  # eight OBX-4 blocks
    flu = by_vaccine["88"]
    assert flu["vaccineCode"][0]["coding"][0]["system"] == "http://hl7.org/fhir/sid/cvx"
    assert dates(flu) == {"30980-7": "2016-09-01", "30981-5": "2016-09-01"}
    assert flu["series"] == "ACIP"
    # no status in series was sent: required in R4, so kept as data-absent rather than invented
    assert flu["forecastStatus"]["extension"][0]["valueCode"] == "unknown"
    # the administered flu dose stays an Immunization; the 998 placeholder is not one
    immunizations = search(http, "Immunization", patient=patient["id"])
    assert [i["vaccineCode"]["coding"][0]["code"] for i in immunizations] == ["140"]
    # the forecast items are not also filed as loose Observations; the history's are kept
    codes = {o["code"]["coding"][0]["code"] for o in search(http, "Observation", patient=patient["id"])}
    assert "30980-7" not in codes and {"30956-7", "59781-5"} <= codes


def test_nist_forecast_groups_without_sub_ids_and_history_groups(engine: Engine) -> None:
    raw = (NIST / "NIST-IZ-QR-1.2_Response_K11_Z42.hl7").read_text()
    conv = convert(parse(raw), engine.site)
    assert_valid_bundle(conv)
    (forecast,) = [r for r in conv.resources if r["resourceType"] == "ImmunizationRecommendation"]
    assert [r["vaccineCode"][0]["coding"][0]["code"] for r in forecast["recommendation"]] == ["03", "10", "107"]
    assert dates(forecast["recommendation"][0]) == {"30980-7": "2015-02-14", "30981-5": "2010-06-14"}
    # evaluated history groups (30956-7 without dates) make no recommendation
    assert len([r for r in conv.resources if r["resourceType"] == "Immunization"]) == 5


VXU_FORECAST = message(
    msh("VXU^V04^VXU_V04", "VXF1"),
    PID,
    "ORC|RE|IM-200^HIS|IM-200^FNXRMYY",
    "RXA|0|1|20261101093000|20261101093000|CN-HEPB^乙肝疫苗^L|10|ug^微克^UCUM||00^新接种^NIP001||||||B2026A||||CP|A",
    "ORC|RE||9999^FNXRMYY",
    "RXA|0|1|20261101093000|20261101093000|998^no vaccine administered^CVX|999||||||||||||||NA",
    "OBX|1|CE|30979-9^Vaccines due next^LN|1|CN-HEPB^乙肝疫苗^L||||||F",
    "OBX|2|NM|30973-2^Dose number in series^LN|1|2||||||F",
    "OBX|3|DT|30980-7^Date vaccine due^LN|1|20261201||||||F",
    "OBX|4|DT|30981-5^Earliest date to give^LN|1|20261129||||||F",
    "OBX|5|DT|59777-3^Latest date to give^LN|1|20270501||||||F",
    "OBX|6|DT|59778-1^Date dose is overdue^LN|1|20270101||||||F",
    "OBX|7|CE|59783-1^Status in immunization series^LN|1|LA13422-3^On schedule^LN||||||F",
    "OBX|8|CE|30979-9^Vaccines due next^LN|2|CN-MMR^麻腮风疫苗^L||||||F",
    "OBX|9|NM|30973-2^Dose number in series^LN|2|0||||||F",
    "OBX|10|DT|30980-7^Date vaccine due^LN|2|20270301||||||F",
    "OBX|11|CE|59783-1^Status in immunization series^LN|2|LA13423-1^Overdue^LN||||||F",
)


def test_vxu_forecast_group_makes_a_recommendation_beside_the_immunization(engine: Engine, http: TestClient) -> None:
    conv = convert(parse(VXU_FORECAST.decode()), engine.site)
    assert_valid_bundle(conv)
    assert post(http, VXU_FORECAST) == "AA"
    (patient,) = search(http, "Patient", identifier=NATIONAL_ID)
    (imm,) = search(http, "Immunization", patient=patient["id"])
    assert imm["vaccineCode"]["coding"][0]["code"] == "CN-HEPB"
    (forecast,) = search(http, "ImmunizationRecommendation", patient=patient["id"])
    hepb, mmr = forecast["recommendation"]
    assert hepb["doseNumberPositiveInt"] == 2 and hepb["forecastStatus"]["coding"][0]["code"] == "LA13422-3"
    assert dates(hepb) == {"30980-7": "2026-12-01", "30981-5": "2026-11-29", "59777-3": "2027-05-01",
                           "59778-1": "2027-01-01"}
    assert mmr["doseNumberString"] == "0" and "doseNumberPositiveInt" not in mmr  # positiveInt is >= 1
    assert mmr["forecastStatus"]["coding"][0]["display"] == "Overdue"
    # a resend converts to the same resource (deterministic id)
    again = convert(parse(VXU_FORECAST.decode()), engine.site)
    assert [r["id"] for r in again.resources] == [r["id"] for r in conv.resources]
