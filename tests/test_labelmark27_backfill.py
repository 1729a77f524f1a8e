"""labelmark27: a store written before the write-time label is labelled once, at the first start.

The code before this round (commit ``BEFORE``) writes the store: 王建国's blood count in by real HL7
(``POST /hl7v2``), then his hospital's system labels one result R by a FHIR PUT and writes a panel
citing it -- the report and the panel stay unlabelled there, and the report was not indexed by its
results. The new engine opens it (the index rebuilt for ``DiagnosticReport.result``, then
``ResultLabels.backfill``): both now carry R, read as missing by a bound hospital system over real
HTTP, and the marker keeps a second start from searching again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.result_labels import ResultLabels
from engine.settings import Settings
from tests.test_moneylast19_charges import code_at

BEFORE = "9a0f4c75"  # main at the start of the twenty-seventh round's labelmark27: no result labels

OLD_STORE = r"""
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings

SEC = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
with Engine(Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0)) as engine:
    with TestClient(create_app(engine)) as http:
        feed = {"Authorization": "Bearer " + engine.auth.issue_system_token("lis", "system/MessageHeader.c"),
                "Content-Type": "x-application/hl7-v2+er7"}
        raw = Path("examples/feeds/02_FNXRMYY_ORU_R01_blood_count.hl7").read_bytes()
        assert http.post("/hl7v2", content=raw, headers=feed).headers["x-hl7-ack-code"] == "AA"
        his = {"Authorization": "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")}
        (entry,) = http.get("/fhir/DiagnosticReport", headers=his).json()["entry"]
        report = entry["resource"]
        result = report["result"][7]["reference"]
        obs = http.get(f"/fhir/{result}", headers=his).json()
        obs["meta"] = {"security": [{"system": SEC, "code": "R"}]}
        assert http.put(f"/fhir/{result}", json=obs, headers=his).status_code == 200
        panel = {"resourceType": "Observation", "id": "old-panel", "status": "final", "code": {"text": "复核"},
                 **{k: obs[k] for k in ("subject", "effectiveDateTime", "performer")},
                 "hasMember": [{"reference": result}]}
        assert http.put("/fhir/Observation/old-panel", json=panel, headers=his).status_code == 201
        stored = http.get(f"/fhir/DiagnosticReport/{report['id']}", headers=his).json()
        print(json.dumps({"report": report["id"], "result": result, "report_meta": stored["meta"],
                          "panel_meta": http.get("/fhir/Observation/old-panel", headers=his).json()["meta"]}))
"""


@pytest.fixture(scope="module")
def old_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("labelmark27-old")
    base = code_at(BEFORE, tmp)
    data = tmp / "var"
    done = subprocess.run([sys.executable, "-c", OLD_STORE, str(data)], cwd=base, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(base)}, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    old = json.loads(done.stdout.strip().splitlines()[-1])
    # what the old code left: the report and the panel citing the R result, unlabelled
    assert "security" not in old["report_meta"] and "security" not in old["panel_meta"], old
    return data, old


def test_an_old_stores_records_citing_an_r_result_are_labelled_once_at_the_first_start(old_store):
    data, old = old_store
    with Engine(Settings(data_dir=data, http_port=0, mllp_port=0)) as engine:
        with TestClient(create_app(engine)) as http:
            his = {"Authorization": "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")}
            token, _ = engine.auth.issue_token(subject="his-fnzyy", kind="system", client_id="his-fnzyy",
                                               scopes=["system/*.rs"], extra={"institution": "FNZYY"})
            bound = {"Authorization": f"Bearer {token}"}
            for ref in (f"DiagnosticReport/{old['report']}", "Observation/old-panel"):
                stored = http.get(f"/fhir/{ref}", headers=his).json()
                assert [c["code"] for c in stored["meta"].get("security", [])] == ["R"], (ref, stored["meta"])
                r = http.get(f"/fhir/{ref}", headers=bound)
                assert r.status_code == 404 and old["result"].split("/")[1] not in r.text, (ref, r.status_code)
            count = http.get(f"/fhir/DiagnosticReport?result={old['result']}&_summary=count", headers=his).json()
            assert count["total"] == 1  # the old report indexed by its results on the upgrade
        marker = engine.store.collection("result_labels").get("-backfilled")
        assert marker is not None and marker["written"] == 2, marker
        assert ResultLabels(engine.repository).backfill() == 0  # once
