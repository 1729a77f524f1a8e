"""rvmoney24b: the split-admission report's answers are the same on both backends (SQLite and
mongomock): HL7 stays over POST /hl7v2 (DG1 with ids, PV2-3 admit reason), FHIR stays with ranked
diagnoses and an entered-in-error principal, read by GET /reports/split-admissions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_moneyfix24_planned import CAROL, condition, pairs, put, stay
from tests.test_moneyfix24_rv2_split_hl7 import visit
from tests.test_recognition_world import A, World


@pytest.fixture(params=[{}, {"mongodb_uri": "mongomock://"}], ids=["sqlite", "mongomock"])
def county(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    site = tmp_path / "site"
    site.mkdir()
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site, **request.param)) as eng:
        http = TestClient(create_app(eng))
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("his", "system/*.cruds")
        yield eng, http, World(eng)


def test_same_answers_on_both_backends(county: Any) -> None:
    engine, http, w = county
    # HL7: a surgery stay for C34, a cycle planned by PV2-3, a readmission for C34 3 days after it
    visit(http, "S1", "V-1", "20260301080000", "20260305090000", "DG1|1||C34.1^肺癌^I10|||F||||||||||||||D-1")
    visit(http, "S2", "V-2", "20260308080000", "20260310090000", "PV2|||Z51.1^肿瘤化学治疗疗程^I10",
          "DG1|1||C34.1^肺癌^I10|||F||||||||||||||D-2")
    visit(http, "S3", "V-3", "20260313080000", "20260320090000", "DG1|1||C34.1^肺癌^I10|||F||||||||||||||D-3")
    # FHIR: Carol's readmission whose rank-1 Z51.1 was entered in error
    carol = w.patient(A, CAROL, mrn="A-3")
    first = put(http, stay(w, "c-1", carol, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", "C34.1"))
    chemo = put(http, condition("chemo", carol, "Z51.1", "entered-in-error"))
    cancer = put(http, condition("cancer", carol, "C34.1"))
    again = put(http, stay(w, "c-2", carol, "2026-03-10T08:00:00+08:00", "2026-03-12T09:00:00+08:00",
                           diagnoses=((chemo, 1), (cancer, 2))))
    got = pairs(engine, http)
    fhir = [p for p in got if p[1] == again]
    hl7 = [p for p in got if p[1] != again]
    assert fhir == [(first, again, 5)]
    assert len(hl7) == 1 and hl7[0][2] == 3, got  # the C34 readmission after the planned cycle
    cycle = http.get("/fhir/Encounter", params={"identifier": "V-2"}).json()["entry"][0]["resource"]
    assert hl7[0][0] == f"Encounter/{cycle['id']}"
