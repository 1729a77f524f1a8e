"""A document's confidentiality (TXA-18) labels what the message wrote of its content, not only the
DocumentReference (found by audlast19): an MDM^T02 whose document is labelled V stored the OBX text
as an unlabelled Observation, and the resident read it (200) while the DocumentReference answered
404 -- the document's words in another resource. Real HL7 over MLLP, real HTTP, a resident token.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document

__all__ = ["fhir"]


def _resident(engine: Engine, pid: str) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=f"person-{pid}", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=pid)
    return {"Authorization": f"Bearer {token}"}


def test_a_v_labelled_documents_text_is_labelled_too(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    assert [ack_code_of(a) for a in send(engine, document("L1", "DOC-L1", "l1.rtf", "V"))] == ["AA"]
    (doc,) = written(engine, fhir, "L1", "DocumentReference")
    texts = written(engine, fhir, "L1", "Observation")
    assert texts
    for text in texts:
        codes = [c.get("code") for c in (text.get("meta") or {}).get("security") or ()]
        assert "V" in codes, text.get("meta")
    mine = _resident(engine, doc["subject"]["reference"].split("/", 1)[1])
    assert fhir.get(f"/fhir/DocumentReference/{doc['id']}", headers=mine).status_code == 404
    for text in texts:
        assert fhir.get(f"/fhir/Observation/{text['id']}", headers=mine).status_code == 404


def test_an_unlabelled_documents_text_stays_readable(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    assert [ack_code_of(a) for a in send(engine, document("L2", "DOC-L2", "l2.rtf"))] == ["AA"]
    (doc,) = written(engine, fhir, "L2", "DocumentReference")
    mine = _resident(engine, doc["subject"]["reference"].split("/", 1)[1])
    for text in written(engine, fhir, "L2", "Observation"):
        assert not (text.get("meta") or {}).get("security"), text.get("meta")
        assert fhir.get(f"/fhir/Observation/{text['id']}", headers=mine).status_code == 200
