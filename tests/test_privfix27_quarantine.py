"""privfix27: a refused message's confidential content on ``/admin/quarantine/{id}`` (the lead's decision).

A V discharge summary (MDM^T02, TXA-18 V) from a hospital the site has not registered yet is refused
(AR) over real HTTP (``POST /hl7v2``); an operator's page session reads it: OBX-5 and the note masked,
every segment, every other field and the ERR kept. The site's own system client reads the whole text.
Once the integrator registers the hospital, the operator's replay (re-reading the site) stores the real
text: the replay runs the stored bytes, never the mask. Made-up people, numbers and text.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.refused_documents import NOTE, PLACEHOLDER, QUOTED, SECRET, refused
from tests.refused_documents import mdm as _mdm
from tests.test_rvrvops26_quarantine_access import _quarantined, _session

REPO = Path(__file__).resolve().parent.parent

@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient, Path]]:
    root = tmp_path_factory.mktemp("privfix27q")
    folder = root / "site"
    folder.mkdir()
    (folder / "institutions.yaml").write_text((REPO / "mappings" / "institutions.yaml").read_text(encoding="utf-8"),
                                              encoding="utf-8")
    bodies = (_mdm(control, label) for control, label in (("PF27-V", "V"), ("PF27-U", "U")))
    with refused(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=folder), bodies, ("AR",)) as (engine, http):
        yield engine, http, folder


def test_an_operator_reads_a_refused_v_document_with_its_content_masked(world: Any) -> None:
    engine, http, _ = world
    cookies, _ = _session(engine, "operator", name="it.pf27")
    mid = _quarantined(engine, "PF27-V")["_id"]
    shown = http.get(f"/admin/quarantine/{mid}", cookies=cookies)
    assert shown.status_code == 200, shown.text[:300]
    body = shown.json()
    text = body["text"]
    assert SECRET not in shown.text and NOTE not in shown.text and "HIV" not in shown.text, text
    lines = text.split("\n")
    assert [line[:3] for line in lines if line] == ["MSH", "EVN", "PID", "PV1", "TXA", "OBX", "OBX", "NTE"], lines
    assert f"OBX|1|TX|18842-5^出院小结^LN||{PLACEHOLDER}||||||F" in lines, lines
    assert f"NTE|1||{PLACEHOLDER}" in lines, lines
    assert any(line.startswith("TXA|1|DS^出院小结^HL70270|") and line.endswith("|AU|V") for line in lines), lines
    assert body["withheld"] == ["OBX-5", "NTE-3"] and body["raw_base64"] is None
    assert body["errors"] and any("FNPF27HOSP" in e["message"] for e in body["errors"]), body["errors"]
    # the site's own system client (every label shown to it) reads the whole text and bytes
    site = {"Authorization": "Bearer " + engine.auth.issue_system_token("site", "system/*.cruds")}
    whole = http.get(f"/admin/quarantine/{mid}", headers=site).json()
    assert SECRET in whole["text"] and NOTE in whole["text"] and whole["withheld"] == []
    assert SECRET in base64.b64decode(whole["raw_base64"]).decode("utf-8")
    # a normal document (TXA-18 U) is shown whole to the operator
    normal = http.get(f"/admin/quarantine/{_quarantined(engine, 'PF27-U')['_id']}", cookies=cookies).json()
    assert SECRET in normal["text"] and normal["withheld"] == [], normal["text"]


def test_the_replay_of_a_masked_message_runs_the_stored_bytes(world: Any) -> None:
    engine, http, folder = world
    cookies, csrf = _session(engine, "operator", name="it.pf27r")
    mid = _quarantined(engine, "PF27-V")["_id"]
    assert SECRET not in http.get(f"/admin/quarantine/{mid}", cookies=cookies).text
    shipped = (folder / "institutions.yaml").read_text(encoding="utf-8")
    (folder / "institutions.yaml").write_text(shipped + "- code: FNPF27HOSP\n  name: 阜宁县保密测试院\n  community: funing\n",
                                              encoding="utf-8")
    r = http.post(f"/admin/quarantine/{mid}/replay", params={"reload_site": "true"}, cookies=cookies,
                  headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text[:500]
    # the answer's warnings say what was wrong with the masked NM result without quoting it
    assert QUOTED not in r.text and SECRET not in r.text, r.text
    assert any("OBX-5 is not a valid NM" in e["message"] and "is not a number" in e["message"]
               for e in r.json()["errors"]), r.json()["errors"]
    # what the replay wrote, read by the site's own system: the document holds the real text
    site = {"Authorization": "Bearer " + engine.auth.issue_system_token("site", "system/*.cruds")}
    written = [http.get(f"/fhir/{ref}", headers=site).json() for ref in r.json()["resources"]]
    documents = [d for d in written if d["resourceType"] == "DocumentReference"]
    assert len(documents) == 1, [d["resourceType"] for d in written]
    texts = [base64.b64decode(c["attachment"]["data"]).decode("utf-8") if "data" in c["attachment"]
             else str(c["attachment"]) for c in documents[0]["content"]]
    assert any(SECRET in t for t in texts) and not any("不予显示" in t for t in texts), texts
    assert {c["code"] for c in documents[0]["securityLabel"][0]["coding"]} == {"V"}
