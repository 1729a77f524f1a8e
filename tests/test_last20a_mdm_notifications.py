"""An MDM that would store nothing of its TXA is not answered AA (twentieth round, last20a).

HL7 v2.5 ch. 9 sends a document's status change, addendum, edit, replacement or cancel either with
its content (T04, T06, T08, T10: the MDM_T02 structure) or as a notification without it (T01, T03,
T05, T07, T09, T11: MDM_T01). huren stores a document with its text: a notification wrote nothing
of its TXA -- not TXA-17 (completion status), TXA-18 (confidentiality) nor TXA-19 (availability)
-- yet was answered AA, so a hospital raising a discharge summary to V by MDM^T03 was told it was
kept while the resident and a clinician went on reading it. Now such a message is refused (AR,
ERR at MSH-9.2, naming why; its raw bytes kept), and a TXA-19 huren cannot state (CA, OB, UN) is
refused (AE at TXA-19) rather than stored as a document available for patient care; the same
label sent with the content (T04) is stored and reaches the text. Real HL7 over MLLP, real HTTP
through FastAPI, real tokens, the real store (SQLite).
"""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import PID, document
from tests.test_ingest_durability import err_fields
from tests.test_lead20_provenance_writes import _token, _written

__all__ = ["fhir"]


def mdm(control: str, event: str, number: str, *, txa18: str = "", txa19: str = "", text: str = "") -> bytes:
    """An MDM about document ``number`` (TXA-12): with ``text`` one OBX (MDM_T02), else none (MDM_T01)."""
    structure = "MDM_T02" if text else "MDM_T01"
    return (f"MSH|^~\\&|EMR|FNXRMYY|HUREN|FNYGT|20261201101500||MDM^{event}^{structure}|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201101500\r" + PID
            + f"TXA|1|DS^出院小结^HL70270|TX|20261201080000|||||D001^李^明|||{number}||||{number}.rtf|AU"
              f"|{txa18}|{txa19}\r"
            + (f"OBX|1|TX|18842-5^出院小结^LN||{text}||||||F|||20261201100000\r" if text else "")).encode()


@pytest.mark.parametrize("event", ["T01", "T03", "T05", "T07", "T09", "T11"])
def test_a_notification_without_content_is_refused_naming_why(engine: Engine, fhir: TestClient, event: str) -> None:  # noqa: F811
    acks = send(engine, document("N1", "DOC-N1", "n1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    first = _written(engine, "N1")
    pid = first["Patient"].split("/", 1)[1]
    # the hospital raises the summary to very restricted, without its content
    raw = mdm("N2", event, "DOC-N1", txa18="V")
    (ack,) = send(engine, raw)
    assert ack_code_of(ack) == "AR", ack
    (err,) = err_fields(ack)
    assert err[2] == "MSH^1^9^^2" and err[3].startswith("201"), err
    assert f"MDM\\S\\{event}" in err[8] and "content" in err[8], err
    kept = engine.ingestor.messages.get(message_id("FNXRMYY", "N2"))
    assert kept is not None and base64.b64decode(kept["raw"]) == raw and kept["ack_code"] == "AR"
    # nothing was said to be stored that was not: the document stands as the first message left it
    resident = _token(engine, "patient", ["patient/*.rs"], patient=pid)
    doc = fhir.get(f"/fhir/{first['DocumentReference']}", headers=resident)
    assert doc.status_code == 200 and "securityLabel" not in doc.json()


def test_a_raised_label_with_its_content_reaches_the_document_and_its_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("L1", "DOC-L1", "l1.rtf"), mdm("L2", "T04", "DOC-L1", txa18="V", text="第一段（更正）"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    first, change = _written(engine, "L1"), _written(engine, "L2")
    assert first["DocumentReference"] == change["DocumentReference"]
    pid = first["Patient"].split("/", 1)[1]
    resident = _token(engine, "patient", ["patient/*.rs"], patient=pid)  # reads R, not V
    clinician = _token(engine, "user", ["user/*.rs"])
    for who, headers in (("resident", resident), ("clinician", clinician)):
        for ref in (first["DocumentReference"], change["Observation"]):
            assert fhir.get(f"/fhir/{ref}", headers=headers).status_code == 404, (who, ref)
        texts = fhir.get(f"/fhir/Observation?patient={pid}", headers=headers).json()
        assert texts["total"] == 0 and "第一段" not in str(texts), who


@pytest.mark.parametrize("availability", ["OB", "UN", "CA"])
def test_a_document_availability_huren_cannot_state_is_refused(engine: Engine, fhir: TestClient, availability: str) -> None:  # noqa: F811
    acks = send(engine, document("A1", "DOC-A1", "a1.rtf"),
                mdm("A2", "T04", "DOC-A1", txa19=availability, text="第一段（作废）"),
                mdm("A3", "T02", "DOC-A3", txa19=availability, text="另一份"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AE", "AE"], acks
    for ack in acks[1:]:
        (err,) = err_fields(ack)
        assert err[2].startswith("TXA^1^19") and availability in err[8], err
    first = _written(engine, "A1")
    pid = first["Patient"].split("/", 1)[1]
    clinician = _token(engine, "user", ["user/*.rs"])
    docs = fhir.get(f"/fhir/DocumentReference?patient={pid}", headers=clinician).json()
    assert docs["total"] == 1 and docs["entry"][0]["resource"]["status"] == "current"
    texts = fhir.get(f"/fhir/Observation?patient={pid}", headers=clinician).json()
    assert "作废" not in str(texts) and "另一份" not in str(texts)
    # the same document available for patient care is stored
    (ack,) = send(engine, mdm("A4", "T04", "DOC-A1", txa19="AV", text="第一段（修订）"))
    assert ack_code_of(ack) == "AA", ack
    assert "修订" in str(fhir.get(f"/fhir/Observation?patient={pid}", headers=clinician).json())
