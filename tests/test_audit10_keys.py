"""The key indexer's day keys made as the records go by (``derived.DaySpans``) are the documents
``day_key_docs`` makes of the same records, and a real log keyed in the background finds a read
by its day, its patient and its requesting system."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit.derived import DaySpans, day_key_docs
from engine.audit.leaves import seq_key
from engine.engine import Engine
from engine.settings import Settings


@pytest.mark.parametrize("records", [
    [],
    [(0, "2026-11-30T23:59:59.999Z"), (1, "2026-12-01T00:00:00.000Z"), (2, "2026-12-01T00:00:00.000Z")],
    [(5, None), (6, "2026-11-30T08:00:00.000+08:00"), (7, "2026-11-30T08:00:00.000Z"), (8, "")],
    [(10, "2026-11-30T10:00:00.000Z"), (11, "2026-11-29T10:00:00.000Z"), (12, "2026-11-30T10:00:00.001Z"),
     (13, "2026-11-29T23:00:00.000-02:00")],
])
def test_day_spans_are_the_day_key_documents(records: list[tuple[int, str | None]]) -> None:
    spans = DaySpans()
    for seq, recorded in records:
        spans.add(seq, recorded)
    assert spans.docs() == day_key_docs([(seq, seq_key(seq), recorded) for seq, recorded in records])


def test_reads_are_found_by_day_patient_and_system_after_the_background_keys(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", http_port=0, mllp_port=0)
    with Engine(settings) as engine:
        engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
        engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "阜宁县人民医院"})
        engine.repository.update({"resourceType": "Observation", "id": "o1", "status": "final",
                                  "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                                  "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-01",
                                  "performer": [{"reference": "Organization/org1"}],
                                  "valueQuantity": {"value": 13.2, "unit": "g/dL"}})
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his-a', 'system/*.rs')}"}
        client = TestClient(create_app(engine))
        for _ in range(3):
            assert client.get("/fhir/Observation/o1", headers=system).status_code == 200
        engine.audit.index_keys()
        keys = {d["_id"].split("\x00")[0] if "\x00" in d["_id"] else d["_id"] for d in engine.audit.key_index.find()}
        assert any(k.startswith("p:p1") for k in keys)
        assert any(k.startswith("a:") and "his-a" in k for k in keys)
        assert any(k.startswith("d:") for k in keys)
        auditor = {"Authorization": f"Bearer {engine.auth.issue_system_token('audit-desk', 'system/AuditEvent.rs')}"}
        found = client.get("/fhir/AuditEvent", params={"patient": "Patient/p1"}, headers=auditor)
        assert found.status_code == 200, found.text
        reads = [e["resource"] for e in found.json().get("entry", [])
                 if e["resource"].get("action") == "R" and e["resource"]["subtype"][0]["code"] == "read"]
        assert len(reads) >= 3
