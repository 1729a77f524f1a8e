"""A later MDM about a labelled document never writes its text unlabelled, nor lowers the label
(twentieth round, mdm20).

A V discharge summary (TXA-18 V) and then an edit (MDM^T08, HL7 v2.5 ch. 9: "the original document
is edited", the same TXA-12) stating no TXA-18: the merge kept the document V, but the edit's text
was a new Observation, unlabelled, that the resident and a clinician read (200) -- one more copy of
the text with every message. An edit stating U (-> N) or R took the document itself down. Now the
text is keyed by the document (the edit replaces it), it names the document (``derivedFrom``) and
carries its label as stored after the merge, and a feed never lowers that label (ACK W); a FHIR
client's PUT of the whole document lowers it, explicitly. Real HL7 over MLLP, real HTTP, tokens of
a resident and of a clinician (kind ``user``: neither R nor V), the real SQLite store.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import PID
from tests.test_ingest_durability import err_fields

__all__ = ["fhir"]

_V3 = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def mdm(control: str, event: str, confidentiality: str, text: str, number: str = "DOC-M20",
        parent: str = "") -> bytes:
    """An MDM with content (T02 original, T04 status change, T06 addendum, T08 edit: MDM_T02)."""
    return (f"MSH|^~\\&|EMR|FNXRMYY|HUREN|FNYGT|20261201091500||MDM^{event}^MDM_T02|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\r" + PID
            + f"TXA|1|DS^出院小结^HL70270|TX|20261201080000|||||D001^李^明|||{number}|{parent}|||m20.rtf|AU"
              f"|{confidentiality}\r"
            + f"OBX|1|TX|18842-5^出院小结^LN||{text}||||||F\r").encode()


def _bearer(engine: Engine, kind: str, scopes: list[str], **kw: Any) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=f"{kind}-m20", kind=kind, client_id=f"{kind}-m20", scopes=scopes, **kw)
    return {"Authorization": f"Bearer {token}"}


def _readers(engine: Engine, patient: str) -> dict[str, dict[str, str]]:
    return {"resident": _bearer(engine, "patient", ["patient/*.rs"], patient=patient),
            "clinician": _bearer(engine, "user", ["user/Patient.rs", "user/Observation.rs",
                                                  "user/DocumentReference.rs", "user/DiagnosticReport.rs"])}


def _label(resource: dict[str, Any]) -> set[str]:
    codes = {c.get("code") for c in (resource.get("meta") or {}).get("security") or () if c.get("system") == _V3}
    for label in resource.get("securityLabel") or ():
        codes |= {c.get("code") for c in label.get("coding") or () if c.get("system") == _V3}
    return codes


def _texts(fhir: TestClient, patient: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The document-text Observations of ``patient`` a caller finds by searching."""
    answer = fhir.get("/fhir/Observation", params={"patient": patient, "code": "18842-5"}, headers=headers or {})
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry") or ()]


def test_an_edit_stating_no_label_keeps_the_text_of_a_v_document_withheld(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, mdm("M1", "T02", "V", "第一段"), mdm("M2", "T08", "", "第二段（修改）"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    (doc,) = written(engine, fhir, "M2", "DocumentReference")
    assert _label(doc) == {"V"}
    (text,) = written(engine, fhir, "M2", "Observation")
    assert text["valueString"] == "第二段（修改）"
    assert _label(text) == {"V"}, text.get("meta")
    patient = doc["subject"]["reference"].split("/", 1)[1]
    # the edit replaced the text: one Observation of the document, not a copy per message
    assert [t["id"] for t in _texts(fhir, patient)] == [text["id"]]
    assert written(engine, fhir, "M1", "Observation")[0]["id"] == text["id"]
    for who, headers in _readers(engine, patient).items():
        assert fhir.get(f"/fhir/Observation/{text['id']}", headers=headers).status_code == 404, who
        assert fhir.get(f"/fhir/DocumentReference/{doc['id']}", headers=headers).status_code == 404, who
        if who == "resident":
            assert _texts(fhir, patient, headers) == [], who


def test_a_later_message_never_lowers_the_label(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, mdm("N1", "T02", "V", "第一段"), mdm("N2", "T08", "U", "第二段"),
                mdm("N3", "T04", "R", "第三段"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"]
    for ack in acks[1:]:  # not silently: the ACK says the label was not stored, and which stands
        warned = [e for e in err_fields(ack) if "DocumentReference.securityLabel" in e[-1]]
        assert warned and warned[0][4] == "W" and "stands" in warned[0][-1], ack
    (doc,) = written(engine, fhir, "N3", "DocumentReference")
    (text,) = written(engine, fhir, "N3", "Observation")
    assert _label(doc) == {"V"} and _label(text) == {"V"}
    patient = doc["subject"]["reference"].split("/", 1)[1]
    for who, headers in _readers(engine, patient).items():
        assert fhir.get(f"/fhir/Observation/{text['id']}", headers=headers).status_code == 404, who
        assert fhir.get(f"/fhir/DocumentReference/{doc['id']}", headers=headers).status_code == 404, who


def test_a_higher_label_later_withholds_the_text_too(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, mdm("H1", "T02", "R", "第一段"), mdm("H2", "T08", "V", "第二段"), mdm("H3", "T08", "", "第三段"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"]
    assert not [e for a in acks for e in err_fields(a) if "securityLabel" in e[-1]]
    (doc,) = written(engine, fhir, "H3", "DocumentReference")
    (text,) = written(engine, fhir, "H3", "Observation")
    assert _label(doc) == {"V"} and _label(text) == {"V"}
    resident = _readers(engine, doc["subject"]["reference"].split("/", 1)[1])["resident"]
    assert fhir.get(f"/fhir/Observation/{text['id']}", headers=resident).status_code == 404


def test_lowering_is_a_fhir_clients_explicit_put_of_each_record(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The records office corrects a wrongly restricted document by PUT of the whole resource (a
    system client: ``replace``); its text stays withheld through a later message until the text
    itself is lowered the same way -- nothing lowers a record but a statement about that record."""
    assert [ack_code_of(a) for a in send(engine, mdm("E1", "T02", "V", "第一段"))] == ["AA"]
    (doc,) = written(engine, fhir, "E1", "DocumentReference")
    patient = doc["subject"]["reference"].split("/", 1)[1]
    resident = _readers(engine, patient)["resident"]
    (text,) = written(engine, fhir, "E1", "Observation")
    assert fhir.get(f"/fhir/Observation/{text['id']}", headers=resident).status_code == 404
    lowered = {k: v for k, v in doc.items() if k not in ("meta", "securityLabel")}
    office = {"Authorization": "Bearer " + engine.auth.issue_system_token("records", "system/DocumentReference.u")}
    put = fhir.put(f"/fhir/DocumentReference/{doc['id']}", json=lowered, headers=office)
    assert put.status_code == 200, put.text
    assert not _label(put.json())
    assert fhir.get(f"/fhir/DocumentReference/{doc['id']}", headers=resident).status_code == 200
    assert [ack_code_of(a) for a in send(engine, mdm("E2", "T08", "", "第二段"))] == ["AA"]
    (again,) = written(engine, fhir, "E2", "Observation")
    assert again["id"] == text["id"] and _label(again) == {"V"}
    assert fhir.get(f"/fhir/Observation/{text['id']}", headers=resident).status_code == 404
    office["Authorization"] = "Bearer " + engine.auth.issue_system_token("records", "system/Observation.u")
    put = fhir.put(f"/fhir/Observation/{text['id']}", json={k: v for k, v in again.items() if k != "meta"},
                   headers=office)
    assert put.status_code == 200, put.text
    assert fhir.get(f"/fhir/Observation/{text['id']}", headers=resident).status_code == 200
    assert [ack_code_of(a) for a in send(engine, mdm("E3", "T08", "", "第三段"))] == ["AA"]
    (third,) = written(engine, fhir, "E3", "Observation")
    assert third["valueString"] == "第三段" and not _label(third)


def test_an_unlabelled_document_stays_readable_and_an_addendum_adds_its_own_text(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, mdm("U1", "T02", "", "第一段", number="DOC-U1"), mdm("U2", "T08", "", "第二段", number="DOC-U1"),
                mdm("U3", "T06", "", "附录", number="DOC-U2", parent="DOC-U1"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"]
    (doc,) = written(engine, fhir, "U1", "DocumentReference")
    patient = doc["subject"]["reference"].split("/", 1)[1]
    texts = _texts(fhir, patient)
    assert sorted(t["valueString"] for t in texts) == ["第二段", "附录"]  # the edit replaced, the addendum added
    resident = _readers(engine, patient)["resident"]
    assert sorted(t["valueString"] for t in _texts(fhir, patient, resident)) == ["第二段", "附录"]


def _imaging(control: str, confidentiality: str, text: str) -> bytes:
    """An MDM^T02 with its order (ORC/OBR before TXA): a report and its results, no DocumentReference."""
    return (f"MSH|^~\\&|RIS|FNXRMYY|HUREN|FNYGT|20261201091500||MDM^T02^MDM_T02|{control}|P|2.5.1\r"
            "EVN|T02|20261201091500\r" + PID
            + "ORC|RE|ORD-M20|FIL-M20\r"
            + "OBR|1|ORD-M20|FIL-M20|71020^胸部CT^C4|||20261201083000||||||||||||||||CT|F\r"
            + f"TXA|1|DI^影像报告^HL70270|TX|20261201080000|||||D001^李^明|||DOC-I20||||i20.rtf|AU|{confidentiality}\r"
            + f"OBX|1|TX|18782-3^影像所见^LN||{text}||||||F\r").encode()


def test_a_reports_label_is_not_lowered_by_a_later_message(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """With its order an MDM writes a report and its results, labelled from TXA-18 (meta.security):
    an R after V relabelled both R -- the resident reads R -- and said nothing."""
    acks = send(engine, _imaging("R1", "V", "第一段"), _imaging("R2", "R", "第二段"), _imaging("R3", "", "第三段"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"]
    warned = [e for e in err_fields(acks[1]) if ".meta" in e[-1]]
    assert warned and all(e[4] == "W" and "stands" in e[-1] for e in warned), acks[1]
    content = [*written(engine, fhir, "R3", "Observation"), *written(engine, fhir, "R3", "DiagnosticReport")]
    assert len(content) == 2
    patient = content[0]["subject"]["reference"].split("/", 1)[1]
    for resource in content:
        assert _label(resource) == {"V"}, resource.get("meta")
        for who, headers in _readers(engine, patient).items():
            answer = fhir.get(f"/fhir/{resource['resourceType']}/{resource['id']}", headers=headers)
            assert answer.status_code == 404, (who, resource["resourceType"], answer.status_code)


def test_an_addendum_of_a_v_document_is_withheld_like_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """An addendum (T06) is a document of its own (its own TXA-12, TXA-13 naming the parent): one
    stating no TXA-18 was a new, unlabelled document, its text read by the resident."""
    acks = send(engine, mdm("D1", "T02", "V", "第一段", number="DOC-D1"),
                mdm("D2", "T06", "", "附录", number="DOC-D2", parent="DOC-D1"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    (parent,) = written(engine, fhir, "D1", "DocumentReference")
    (addendum,) = written(engine, fhir, "D2", "DocumentReference")
    assert addendum["id"] != parent["id"]
    assert addendum["relatesTo"] == [{"code": "appends", "target": {"reference": f"DocumentReference/{parent['id']}"}}]
    (text,) = written(engine, fhir, "D2", "Observation")
    assert text["valueString"] == "附录"
    assert _label(addendum) == {"V"} and _label(text) == {"V"}
    patient = parent["subject"]["reference"].split("/", 1)[1]
    for who, headers in _readers(engine, patient).items():
        for resource in (addendum, text):
            answer = fhir.get(f"/fhir/{resource['resourceType']}/{resource['id']}", headers=headers)
            assert answer.status_code == 404, (who, resource["resourceType"])
    assert len(_texts(fhir, patient)) == 2  # the parent's text and the addendum's, each once
