"""codedoc38: the audit log records only the paragraph deletions that were stored.

An edit's dropped paragraph is deleted by ``DocumentLabels.settled`` inside the message's write group, and its
``delete`` record appended there (old37). On SQLite the audit log is a file of its own, outside the group's
transaction: a group failing after the deletion rolled the deletion back and left a record saying the copy was
deleted (review rv37d LOW 4). Now the rollback appends a compensating record (outcome 8, reason
``paragraph-deletion-rolled-back``); on MongoDB the append is undone with the group, so nothing is left to
compensate.

The group is made to fail after the deletion by a write hook registered after the document's hooks that refuses
this one edit (the fault injected; the ingest path, the deletion, the store and the audit log are the real
ones). Real HL7 over MLLP, read back over ``/fhir`` (TestClient), on SQLite and mongomock.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import send
from tests.test_old37_document_paragraphs import _aa, mdm


def _deletions(fhir: TestClient, patient: str) -> list[str]:
    """The outcomes of the patient's ``delete`` AuditEvents (``0`` done, ``8`` the compensation of one rolled
    back), oldest first (the patient's view shows no reason detail: ``engine.audit.view.VIEW_DETAILS``)."""
    found = fhir.get("/fhir/AuditEvent", params={"patient": patient, "_count": "200", "_sort": "date"})
    assert found.status_code == 200, found.text
    return [e["resource"].get("outcome") for e in found.json().get("entry") or ()
            if any(c.get("code") == "delete" for c in e["resource"].get("subtype") or ())]


def test_a_deletion_rolled_back_with_its_group_is_compensated(backend_settings: Settings) -> None:
    refuse: list[bool] = [True]

    def fail_the_edit(document: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        if refuse[0] and (document.get("masterIdentifier") or {}).get("value") == "DOC-F38" and previous is not None:
            raise RuntimeError("injected: the write group fails after the deletion")
        return []

    with Engine(backend_settings) as eng, TestClient(create_app(eng)) as fhir:
        fhir.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("reader", "system/*.rs")
        _aa(eng, mdm("F1", "T02", ["第一段", "第二段"], number="DOC-F38"))
        (doc,) = written(eng, fhir, "F1", "DocumentReference")
        copies = {o["valueString"]: o["id"] for o in written(eng, fhir, "F1", "Observation")}
        patient = doc["subject"]["reference"].split("/", 1)[1]
        eng.repository.add_write_hook(fail_the_edit, types={"DocumentReference"})

        (ack,) = send(eng, mdm("F2", "T08", ["第一段"], number="DOC-F38"))
        assert ack_code_of(ack) != "AA", ack
        assert fhir.get(f"/fhir/Observation/{copies['第二段']}").status_code == 200  # (the deletion rolled back)
        recorded = _deletions(fhir, patient)
        # every deletion recorded has its compensation: none stands for a deletion not stored (the message is
        # tried in its batch, then alone: two deletions rolled back on SQLite)
        assert set(recorded) <= {"0", "8"} and recorded.count("0") == recorded.count("8"), recorded
        if backend_settings.mongodb_uri:
            assert recorded == [], recorded  # (the append undone with the group)
        else:
            assert recorded and recorded[0] == "0", recorded  # (the log's own file: the record stayed, compensated)

        refuse[0] = False  # the edit sent again, stored: deleted and recorded once, uncompensated
        _aa(eng, mdm("F3", "T08", ["第一段"], number="DOC-F38"))
        assert fhir.get(f"/fhir/Observation/{copies['第二段']}").status_code == 410
        after = _deletions(fhir, patient)
        assert after[len(recorded):] == ["0"], after
