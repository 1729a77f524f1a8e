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
from tests.test_hl7fix17_review import PID, document

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


def _imaging_document(control: str, confidentiality: str) -> bytes:
    """An MDM^T02 with its order (ORC/OBR before TXA, as MDM_T02 allows): an imaging report."""
    return (f"MSH|^~\\&|RIS|FNXRMYY|HUREN|FNYGT|20261201091500||MDM^T02^MDM_T02|{control}|P|2.5.1\r"
            "EVN|T02|20261201091500\r" + PID
            + "ORC|RE|ORD-I1|FIL-I1\r"
            + "OBR|1|ORD-I1|FIL-I1|71020^胸部CT^C4|||20261201083000||||||||||||||||CT|F\r"
            + f"TXA|1|DI^影像报告^HL70270|TX|20261201080000|||||D001^李^明|||DOC-I1||||i1.rtf|AU|{confidentiality}\r"
            + "OBX|1|TX|18782-3^影像所见^LN||第一段||||||F\r").encode()


def test_a_v_labelled_imaging_reports_content_is_labelled(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """(a review of the lead's mend) With an order the message writes a DiagnosticReport and its
    Observations and no DocumentReference, so the label was taken from nothing: the resident read
    the report and its text (200). The label is read from TXA-18 itself."""
    assert [ack_code_of(a) for a in send(engine, _imaging_document("I1", "V"))] == ["AA"]
    content = [*written(engine, fhir, "I1", "Observation"), *written(engine, fhir, "I1", "DiagnosticReport")]
    assert content
    mine = _resident(engine, content[0]["subject"]["reference"].split("/", 1)[1])
    for resource in content:
        assert "V" in [c.get("code") for c in (resource.get("meta") or {}).get("security") or ()], resource
        assert fhir.get(f"/fhir/{resource['resourceType']}/{resource['id']}", headers=mine).status_code == 404
