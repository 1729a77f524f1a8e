"""The site of the OBX-23 performer tests (convleft28, convfix28 and the review rvconvleft28): a
community whose institutions.yaml and senders.yaml ``performers`` each test names, an engine over it
with a hospital system's client, real HL7 over MLLP (a real socket) and the order-time check
``$check-recognition`` over HTTP. One copy of the set-up those files shared by copying (tidy29)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_ingest_durability import exchange, listening

ROOT = Path(__file__).resolve().parents[1]
ID_NUMBER = "32092319850412001X"  # the resident test_recognition_policy_e2e.pid names
# LABX is a member (a county lab) without QC for the blood count; HOSPC has it
INSTITUTIONS = """\
- {code: HOSPA, name: 县人民医院, community: c1, grade: 三级, qc: {passed: all, until: 2099-12-31}}
- {code: HOSPB, name: 县中医院, community: c1, grade: 二级, qc: {passed: all, until: 2099-12-31}}
- {code: HOSPC, name: 镇卫生院, community: c1, grade: 一级, qc: {passed: all, until: 2099-12-31}}
- {code: LABX, name: 县临床检验中心, community: c1, grade: 二级, qc: {passed: [UA], until: 2099-12-31}}
"""


@contextlib.contextmanager
def performer_site(tmp_path: Path, institutions: str | None = INSTITUTIONS,
                   performers: str | None = None) -> Iterator[tuple[Engine, TestClient]]:
    """An engine over a site folder holding ``institutions`` (None: the shipped community) and, given
    ``performers``, the shipped senders.yaml with that ``performers`` map (``{HOSPA: [HOSPC]}``)."""
    site = tmp_path / "site"
    site.mkdir()
    if institutions is not None:
        (site / "institutions.yaml").write_text(institutions, "utf-8")
    if performers is not None:
        shipped = (ROOT / "mappings" / "hl7v2" / "senders.yaml").read_text("utf-8")
        assert "performers: {}" in shipped
        (site / "hl7v2").mkdir()
        (site / "hl7v2" / "senders.yaml").write_text(shipped.replace("performers: {}", f"performers: {performers}"),
                                                     "utf-8")
    with served(tmp_path / "var", site) as world:
        yield world


@contextlib.contextmanager
def served(data: Path, site: Path) -> Iterator[tuple[Engine, TestClient]]:
    """An engine on ``data`` and ``site`` and its HTTP client, a hospital system's token on it."""
    with Engine(Settings(data_dir=data, http_port=0, mllp_port=0, site=site)) as engine, \
            TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")
        yield engine, http


def mllp(engine: Engine, *messages: str) -> None:
    """``messages`` sent over one MLLP connection, each answered AA."""
    async def run() -> list[bytes]:
        async with listening(engine) as server:
            return await exchange(server.port, *(m.replace("\n", "\r").encode() for m in messages))

    acks = asyncio.run(run())
    assert [ack_code_of(a) for a in acks] == ["AA"] * len(messages), acks


def checked(http: TestClient, engine: Engine, institution: str) -> list[str]:
    """The institutions ``$check-recognition`` lists to ``institution`` for a blood count ordered today."""
    [patient] = engine.repository.search("Patient", [("identifier", ID_NUMBER)]).resources
    r = http.post("/fhir/ServiceRequest/$check-recognition", json={"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": f"Patient/{patient['id']}"}},
        {"name": "code", "valueCoding": {"system": "http://loinc.org", "code": "58410-2"}},
        {"name": "institution", "valueString": institution}]})
    assert r.status_code == 200, r.text
    return [q["valueString"] for p in r.json()["parameter"] if p["name"] == "recognisable"
            for q in p["part"] if q["name"] == "institution"]
