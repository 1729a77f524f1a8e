"""An MDM edit's text and a replayed original (twenty-first round, docs21).

Real MDM over MLLP (or one ingest batch: one write group), read back through ``/fhir`` with the
records office's, a clinician's and a reader's tokens, on the real SQLite store (and mongomock where
named). What failed on the base (53a004f): a T02 replayed after its T08 was answered AA and took the
document and its text back to before the edit; a paragraph a T08 removed was still read as the
document's text. The others pass there and guard what the mend must not delete or refuse."""

from __future__ import annotations

import base64
from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_ingest_durability import err_fields
from tests.test_mdm20_document_label import _label, _texts
from tests.test_mdmmend20_probe import mdm_many, mongo_engine  # noqa: F401  (the mongomock engine)

__all__ = ["fhir", "mongo_engine"]


def _patient(engine: Engine, fhir: TestClient, control: str) -> str:  # noqa: F811
    (doc,) = written(engine, fhir, control, "DocumentReference")
    return str(doc["subject"]["reference"].split("/", 1)[1])


def _lines(document: dict[str, Any]) -> list[str]:
    return [line for c in document["content"] if c["attachment"].get("contentType", "").startswith("text/plain")
            for line in base64.b64decode(c["attachment"]["data"]).decode().splitlines()]


def _office(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("records", "system/*.cruds")}


def test_a_t02_replayed_after_its_t08_is_refused_and_the_edit_stays(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, mdm_many("P1", "T02", "", ["甲段", "乙段"], number="DOC-P"),
                mdm_many("P2", "T08", "", ["甲段", "乙段（改）"], number="DOC-P"),
                mdm_many("P3", "T02", "", ["甲段", "乙段"], number="DOC-P"))  # the original, replayed
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AE"], acks
    (err,) = err_fields(acks[2])
    assert err[2] == "MSH^1^9^^2" and err[3].startswith("205") and "T08" in "|".join(err) \
        and "DOC-P" in "|".join(err), err
    (doc,) = written(engine, fhir, "P2", "DocumentReference")
    assert _lines(doc) == ["甲段", "乙段（改）"], doc["content"]
    assert doc["meta"]["versionId"] == "2"
    assert sorted(t["valueString"] for t in _texts(fhir, _patient(engine, fhir, "P2"))) == ["乙段（改）", "甲段"]
    kept = engine.ingestor.messages.get(message_id("FNXRMYY", "P3"))
    assert kept is not None and kept.get("raw"), "the refused original is kept"


def test_a_resent_original_before_any_edit_still_raises_the_label(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, mdm_many("Q1", "T02", "", ["甲段"], number="DOC-Q"),
                mdm_many("Q2", "T02", "V", ["甲段"], number="DOC-Q"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    (doc,) = written(engine, fhir, "Q2", "DocumentReference")
    assert _label(doc) == {"V"}


def test_an_edit_deletes_the_dropped_paragraph_and_keeps_notes_and_rewritten_text(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T02 (A, B, C); a clinician's note naming the document; the records office rewrites C (PUT of the
    text); T08 (A'): B -- the converter's copy, as filed -- is deleted (410, history kept); C (its
    current version is the office's) and the note stay."""
    assert [ack_code_of(a) for a in send(engine, mdm_many("R1", "T02", "", ["甲", "乙", "丙"], number="DOC-R"))] == ["AA"]
    (doc,) = written(engine, fhir, "R1", "DocumentReference")
    a, b, c = written(engine, fhir, "R1", "Observation")
    token, _ = engine.auth.issue_token(subject="dr", kind="user", client_id="dr",
                                       scopes=["user/Observation.crus", "user/DocumentReference.rs", "user/Patient.rs"])
    note = {"resourceType": "Observation", "status": "final", "subject": doc["subject"], "code": a["code"],
            "valueString": "医生备注", "derivedFrom": [{"reference": f"DocumentReference/{doc['id']}"}],
            "effectiveDateTime": "2026-12-01T08:00:00+08:00", "performer": a["performer"]}
    made = fhir.post("/fhir/Observation", json=note, headers={"Authorization": f"Bearer {token}"})
    assert made.status_code == 201, made.text
    fixed = {**{k: v for k, v in c.items() if k != "meta"}, "valueString": "丙（病案室更正）"}
    # the paragraph identifier is the feed's (docs22): a PUT carrying it is refused, one leaving it out
    # is the office's own record, which no edit removes
    kept = fhir.put(f"/fhir/Observation/{c['id']}", json=fixed, headers=_office(engine))
    assert kept.status_code == 422 and kept.json()["resourceType"] == "OperationOutcome", kept.text
    fixed.pop("identifier")
    assert fhir.put(f"/fhir/Observation/{c['id']}", json=fixed, headers=_office(engine)).status_code == 200
    assert [ack_code_of(x) for x in send(engine, mdm_many("R2", "T08", "", ["甲（改）"], number="DOC-R"))] == ["AA"]
    assert fhir.get(f"/fhir/Observation/{a['id']}").json()["valueString"] == "甲（改）"
    assert fhir.get(f"/fhir/Observation/{b['id']}").status_code == 410
    history = fhir.get(f"/fhir/Observation/{b['id']}/_history").json()
    assert any((e.get("resource") or {}).get("valueString") == "乙" for e in history.get("entry") or ())
    assert fhir.get(f"/fhir/Observation/{c['id']}").json()["valueString"] == "丙（病案室更正）"
    assert fhir.get(f"/fhir/Observation/{made.json()['id']}").status_code == 200


def test_a_later_edit_in_the_same_batch_that_restores_a_paragraph_keeps_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """One write group: T02 (A, B), T08 (A), T08 (A, B again). (docs22: the hooks run after all three are
    stored, the edit noted last is what they judge.) Originally: the filed Provenances are hooked after
    all three are stored; B, pinned by the last edit, is not taken for the first edit's dropped one."""
    outcomes = engine.ingestor.process([
        (mdm_many("B1", "T02", "", ["甲", "乙"], number="DOC-B"), "mllp", "test"),
        (mdm_many("B2", "T08", "", ["甲"], number="DOC-B"), "mllp", "test"),
        (mdm_many("B3", "T08", "", ["甲", "乙（恢复）"], number="DOC-B"), "mllp", "test")])
    assert len(outcomes) == 3
    assert sorted(t["valueString"] for t in _texts(fhir, _patient(engine, fhir, "B3"))) == ["乙（恢复）", "甲"]


def test_a_v_paragraph_an_edit_dropped_stays_withheld(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The dropped paragraph of a V document is deleted; its history is not shown to a clinician."""
    assert [ack_code_of(a) for a in send(engine, mdm_many("V1", "T02", "V", ["甲", "乙（HIV）"], number="DOC-V"),
                                         mdm_many("V2", "T08", "", ["甲"], number="DOC-V"))] == ["AA", "AA"]
    _, dropped = written(engine, fhir, "V1", "Observation")
    assert dropped.get("resourceType") == "OperationOutcome", dropped
    ids = [r.split("/")[1] for r in engine.ingestor.messages.get(message_id("FNXRMYY", "V1"))["resources"]
           if r.startswith("Observation/")]
    token, _ = engine.auth.issue_token(subject="dv", kind="user", client_id="dv",
                                       scopes=["user/Observation.rs", "user/Patient.rs"])
    history = fhir.get(f"/fhir/Observation/{ids[1]}/_history", headers={"Authorization": f"Bearer {token}"})
    assert history.status_code in (403, 404, 410) or not (history.json().get("entry") or []), history.text


def test_a_records_office_put_of_the_document_deletes_nothing_and_is_not_refused(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A FHIR PUT is not an MDM: nothing is pruned, and its event extension (T02 kept from a GET of an
    older version) is not judged as a replayed original."""
    acks = send(engine, mdm_many("S1", "T02", "", ["甲", "乙"], number="DOC-S"),
                mdm_many("S2", "T08", "", ["甲", "乙（改）"], number="DOC-S"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    (doc,) = written(engine, fhir, "S2", "DocumentReference")
    first = fhir.get(f"/fhir/DocumentReference/{doc['id']}/_history/1").json()
    body = {k: v for k, v in first.items() if k != "meta"}
    assert fhir.put(f"/fhir/DocumentReference/{doc['id']}", json=body, headers=_office(engine)).status_code == 200
    assert sorted(t["valueString"] for t in _texts(fhir, _patient(engine, fhir, "S2"))) == ["乙（改）", "甲"]


def test_an_edit_dropping_a_paragraph_on_mongomock(mongo_engine: Engine) -> None:  # noqa: F811
    from engine.api.app import create_app

    with TestClient(create_app(mongo_engine)) as http:
        http.headers["Authorization"] = "Bearer " + mongo_engine.auth.issue_system_token("reader", "system/*.rs")
        acks = send(mongo_engine, mdm_many("M1", "T02", "", ["甲", "乙"], number="DOC-M"),
                    mdm_many("M2", "T08", "", ["甲（改）"], number="DOC-M"),
                    mdm_many("M3", "T02", "", ["甲", "乙"], number="DOC-M"))
        assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AE"], acks
        (doc,) = written(mongo_engine, http, "M2", "DocumentReference")
        patient = doc["subject"]["reference"].split("/", 1)[1]
        assert [t["valueString"] for t in _texts(http, patient)] == ["甲（改）"]


def test_a_provenance_a_client_writes_in_an_mdms_shape_deletes_nothing(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A clinician may write Provenances: one copying the feed's, its activity MDM^T08, pinning the
    document at a later version (after the records office's PUT) and one paragraph, must not delete the
    other paragraph -- only a document a feed wrote is pruned when its message is filed."""
    assert [ack_code_of(a) for a in send(engine, mdm_many("K1", "T02", "", ["甲", "乙"], number="DOC-K"))] == ["AA"]
    (doc,) = written(engine, fhir, "K1", "DocumentReference")
    a, b = written(engine, fhir, "K1", "Observation")
    (prov,) = written(engine, fhir, "K1", "Provenance")
    put = fhir.put(f"/fhir/DocumentReference/{doc['id']}", json={k: v for k, v in doc.items() if k != "meta"}
                   | {"description": "病案室整理"}, headers=_office(engine))
    assert put.status_code == 200 and put.json()["meta"]["versionId"] == "2", put.text
    forged = {k: v for k, v in prov.items() if k not in ("id", "meta", "signature")}
    forged["target"] = [{"reference": f"DocumentReference/{doc['id']}/_history/2"},
                        {"reference": f"Observation/{a['id']}/_history/1"}]
    forged["activity"] = {**forged["activity"], "text": "MDM^T08"}
    token, _ = engine.auth.issue_token(subject="dp", kind="user", client_id="dp",
                                       scopes=["user/Provenance.crus", "user/DocumentReference.rs", "user/Patient.rs",
                                               "user/Observation.rs"])
    made = fhir.post("/fhir/Provenance", json=forged, headers={"Authorization": f"Bearer {token}"})
    assert made.status_code == 201, made.text
    assert fhir.get(f"/fhir/Observation/{b['id']}").status_code == 200
