"""The converter's paragraphs of a document, marked by an identifier only the HL7 feed writes (twenty-second
round, docs22). Real MDM over MLLP, real HTTP through FastAPI (clinician, records office and full system
tokens), the real SQLite store, the real signed audit log.

An edit (T08) of a document deletes the paragraphs of it the converter made and the edit no longer carries;
which are the converter's is told by ``urn:huren:document-paragraph:<sender>`` (``<TXA-12>|<place>``), which
the FHIR API refuses from every client: on create, update, conditional update, and in transaction and batch
Bundles. Everything here fails on the round's base (dc0f8cc: docs21 withdrawn, no deletion, no mark)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_docs22_review_mdm_edits import _acks, _alive, _ids, _mdm, _tx
from tests.test_mdm20_document_label import _texts
from tests.test_mdmmend20_probe import mdm_many

__all__ = ["fhir"]

_SYSTEM = "urn:huren:document-paragraph:FNXRMYY"
DOCUMENT_TEXT = "urn:huren:StructureDefinition:document-text"  # (engine.document_labels; literal: runs on the base)


def _office(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("records", "system/*.cruds")}


def _clinician(engine: Engine) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject="dr", kind="user", client_id="dr",
                                       scopes=["user/Observation.cruds", "user/DocumentReference.rus", "user/Patient.rs"])
    return {"Authorization": f"Bearer {token}"}


def _refused(answer: Any) -> None:
    assert answer.status_code == 422, (answer.status_code, answer.text[:400])
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome"
    assert "urn:huren:document-paragraph" in answer.text


def _note(doc: dict[str, Any], like: dict[str, Any], text: str, **more: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "subject": doc["subject"], "code": like["code"],
            "valueString": text, "derivedFrom": [{"reference": f"DocumentReference/{doc['id']}"}],
            "effectiveDateTime": "2026-12-01T08:00:00+08:00", "performer": like["performer"], **more}


def test_the_converter_marks_its_paragraphs_and_hands_over_nothing_else(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    assert _acks(engine, mdm_many("K1", "T02", "", ["甲", "乙"], number="DOC-K")) == ["AA"]
    a, b = written(engine, fhir, "K1", "Observation")
    marks = [[i for i in t.get("identifier") or () if i["system"] == _SYSTEM] for t in (a, b)]
    assert [len(m) for m in marks] == [1, 1], marks
    values = [m[0]["value"] for m in marks]
    assert all(v.startswith("DOC-K|") for v in values) and len(set(values)) == 2, values
    (doc,) = written(engine, fhir, "K1", "DocumentReference")
    assert not [e for e in doc.get("extension") or () if e.get("url") == DOCUMENT_TEXT], doc.get("extension")


def test_no_fhir_client_writes_the_paragraph_mark(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A clinician allowed to create Observations, and a system client allowed everything: create, update,
    conditional update, transaction and batch are each refused 422 with an OperationOutcome, and nothing
    is stored (the refused create is not found by the identifier)."""
    assert _acks(engine, mdm_many("F1", "T02", "", ["甲", "乙"], number="DOC-F")) == ["AA"]
    (doc,) = written(engine, fhir, "F1", "DocumentReference")
    a, b = written(engine, fhir, "F1", "Observation")
    forged = _note(doc, a, "医生备注", identifier=[{"system": _SYSTEM, "value": "DOC-F|18842-5||3"}])
    for who in (_clinician(engine), _office(engine)):
        _refused(fhir.post("/fhir/Observation", json=forged, headers=who))
        _refused(fhir.put("/fhir/Observation/forged-1", json={**forged, "id": "forged-1"}, headers=who))
        _refused(fhir.put("/fhir/Observation?identifier=urn:x|1", json=forged, headers=who))
        # a converter paragraph sent back as read (its mark included) is refused too
        _refused(fhir.put(f"/fhir/Observation/{b['id']}", json={k: v for k, v in b.items() if k != "meta"},
                          headers=who))
        for kind in ("transaction", "batch"):
            bundle = {"resourceType": "Bundle", "type": kind, "entry": [
                {"resource": forged, "request": {"method": "POST", "url": "Observation"}}]}
            answer = fhir.post("/fhir", json=bundle, headers=who)
            if kind == "transaction":
                _refused(answer)
            else:  # a batch answers each entry: this one 422
                assert answer.status_code == 200, answer.text
                (entry,) = answer.json()["entry"]
                assert entry["response"]["status"].startswith("422"), entry
        # the document's hand-over extension is the feed's too
        handed = {**{k: v for k, v in doc.items() if k != "meta"},
                  "extension": [{"url": DOCUMENT_TEXT, "valueReference": {"reference": f"Observation/{a['id']}"}}]}
        _refused(fhir.put(f"/fhir/DocumentReference/{doc['id']}", json=handed, headers=who))
    found = fhir.get(f"/fhir/Observation?identifier={_SYSTEM}|DOC-F|18842-5||3").json()
    assert not found.get("entry"), found
    assert fhir.get(f"/fhir/Observation/{b['id']}").json()["valueString"] == "乙"
    patch = fhir.patch(f"/fhir/Observation/{a['id']}", json=[{"op": "add", "path": "/identifier",
                                                              "value": [{"system": _SYSTEM, "value": "x"}]}],
                       headers=_office(engine))
    assert patch.status_code >= 400 and patch.status_code != 500, patch.status_code


def test_an_edit_deletes_only_the_marked_paragraphs_it_left_out_and_audits_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T02 (A, B, C); a clinician's note naming the document (no mark); the office's rewrite of C with the
    mark left out (its own record now); T08 (A'): B alone is deleted (410, its text in its history), and
    the signed audit log has a delete naming B, the sender as requestor and the document."""
    assert _acks(engine, mdm_many("R1", "T02", "", ["甲", "乙", "丙"], number="DOC-R")) == ["AA"]
    (doc,) = written(engine, fhir, "R1", "DocumentReference")
    a, b, c = written(engine, fhir, "R1", "Observation")
    made = fhir.post("/fhir/Observation", json=_note(doc, a, "医生备注"), headers=_clinician(engine))
    assert made.status_code == 201, made.text
    fixed = {k: v for k, v in c.items() if k not in ("meta", "identifier")} | {"valueString": "丙（病案室更正）"}
    assert fhir.put(f"/fhir/Observation/{c['id']}", json=fixed, headers=_office(engine)).status_code == 200
    before = len(engine.audit.events())
    assert _acks(engine, mdm_many("R2", "T08", "", ["甲（改）"], number="DOC-R")) == ["AA"]
    assert fhir.get(f"/fhir/Observation/{a['id']}").json()["valueString"] == "甲（改）"
    assert fhir.get(f"/fhir/Observation/{b['id']}").status_code == 410
    history = fhir.get(f"/fhir/Observation/{b['id']}/_history").json()
    assert any((e.get("resource") or {}).get("valueString") == "乙" for e in history.get("entry") or ())
    assert fhir.get(f"/fhir/Observation/{c['id']}").json()["valueString"] == "丙（病案室更正）"
    assert fhir.get(f"/fhir/Observation/{made.json()['id']}").status_code == 200
    deletes = [e for e in engine.audit.events()[before:]
               if any(s.get("code") == "delete" for s in e.get("subtype") or ())]
    assert len(deletes) == 1, deletes
    (event,) = deletes
    named = [str((x.get("what") or {}).get("reference") or "") for x in event.get("entity") or ()]
    assert any(r.startswith(f"Observation/{b['id']}") for r in named), named
    assert not any(r.startswith((f"Observation/{a['id']}", f"Observation/{c['id']}")) for r in named), named
    assert "FNXRMYY" in str(event.get("agent")), event.get("agent")
    assert f"DocumentReference/{doc['id']}" in str(event), event


def test_a_status_change_with_less_content_deletes_nothing(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T04 (status change, content "also transmitted", v2.5 9.4.4) thinner than the original: not an edit."""
    assert _acks(engine, mdm_many("S1", "T02", "", ["甲", "乙"], number="DOC-S"),
                 mdm_many("S2", "T04", "", ["甲"], number="DOC-S")) == ["AA", "AA"]
    assert set(_alive(fhir, _ids(engine, "S1")).values()) == {200}


def test_a_replacement_sent_under_the_stored_number_replaces_its_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T10 under the number stored (no new TXA-12): the content is the revised document, whole."""
    assert _acks(engine, mdm_many("P1", "T02", "", ["甲", "乙"], number="DOC-P"),
                 mdm_many("P2", "T10", "", ["甲（新）"], number="DOC-P")) == ["AA", "AA"]
    a, b = _ids(engine, "P1")
    assert _alive(fhir, [a, b]) == {a: 200, b: 410}


def test_a_continued_or_partial_mdm_is_refused(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """DSC-1 (more follows), MSH-14 (continues an earlier message), an edit numbered from OBX-1 2: AR,
    ERR at the field; the stored text untouched."""
    first = (mdm_many("C2", "T08", "", ["甲（改）"], number="DOC-C").decode() + "DSC|C2-MORE|F\r").encode()
    later = mdm_many("C3", "T08", "", ["乙（改）"], number="DOC-C").decode().replace(
        "|P|2.5.1\r", "|P|2.5.1||C2-MORE\r", 1).encode()
    part = _mdm("C4", "T08", "DOC-C", [_tx("乙（改）")]).decode().replace("OBX|1|", "OBX|2|").encode()
    acks = send(engine, mdm_many("C1", "T02", "", ["甲", "乙"], number="DOC-C"), first, later, part)
    assert [ack_code_of(x) for x in acks] == ["AA", "AR", "AR", "AR"], acks
    text = [x.decode() for x in acks]
    assert "ERR|DSC^1^1" in text[1] or "DSC^1^1" in text[1], text[1]
    assert "MSH^1^14" in text[2], text[2]
    assert "OBX^1^1" in text[3], text[3]
    patient = written(engine, fhir, "C1", "DocumentReference")[0]["subject"]["reference"].split("/", 1)[1]
    assert sorted(t["valueString"] for t in _texts(fhir, patient)) == ["乙", "甲"]


def test_a_document_of_another_sender_under_the_same_number_keeps_its_paragraphs_apart(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Each sender's paragraphs are marked under its own system: FNZYY's edit deletes none of FNXRMYY's."""
    assert _acks(engine, _mdm("G1", "T02", "DOC-G", [_tx("甲"), _tx("乙")]),
                 _mdm("H1", "T02", "DOC-G", [_tx("丙"), _tx("丁")], facility="FNZYY"),
                 _mdm("H2", "T08", "DOC-G", [_tx("丙（改）")], facility="FNZYY")) == ["AA", "AA", "AA"]
    assert set(_alive(fhir, _ids(engine, "G1")).values()) == {200}
    c, d = _ids(engine, "H1", facility="FNZYY")
    assert _alive(fhir, [c, d]) == {c: 200, d: 410}
    marks = {i["system"] for i in fhir.get(f"/fhir/Observation/{c}").json().get("identifier") or ()}
    assert marks == {"urn:huren:document-paragraph:FNZYY"}, marks


def test_an_edit_posted_over_http_deletes_the_paragraph_it_left_out(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The same through POST /hl7v2 (the interface engine's token): the statement that notes the edit and
    the hook that deletes run for the HTTP channel as for MLLP."""
    sender = {"Authorization": "Bearer " + engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c"),
              "Content-Type": "x-application/hl7-v2+er7"}
    for message in (mdm_many("HT1", "T02", "", ["甲", "乙"], number="DOC-HT"),
                    mdm_many("HT2", "T08", "", ["甲（改）"], number="DOC-HT")):
        answer = fhir.post("/hl7v2", content=message, headers=sender)
        assert answer.headers["x-hl7-ack-code"] == "AA", answer.text
    a, b = _ids(engine, "HT1")
    assert _alive(fhir, [a, b]) == {a: 200, b: 410}


def test_the_deletion_of_a_v_paragraph_is_audited_without_showing_the_resident(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A V document's edit drops a paragraph: the signed log has the delete; the resident's audit view
    (``AuditEvent?patient=``) shows no deletion on a record they were never shown -- an unlabelled
    document's deletion is shown to them."""
    from tests.test_mdm20_document_label import _readers

    def deletes(headers: dict[str, str], patient: str) -> int:
        got = fhir.get(f"/fhir/AuditEvent?patient={patient}&_count=100", headers=headers)
        assert got.status_code == 200, got.text
        return sum(1 for e in got.json().get("entry") or ()
                   if any(s.get("code") == "delete" for s in e["resource"].get("subtype") or ()))

    for number, label in (("DOC-AV", "V"), ("DOC-AU", "")):
        before = len(engine.audit.events())
        assert _acks(engine, mdm_many(f"{number}1", "T02", label, ["甲", "乙（诊断）"], number=number),
                     mdm_many(f"{number}2", "T08", "", ["甲"], number=number)) == ["AA", "AA"]
        _, b = _ids(engine, f"{number}1")
        logged = [e for e in engine.audit.events()[before:]
                  if any(s.get("code") == "delete" for s in e.get("subtype") or ())]
        assert len(logged) == 1 and f"Observation/{b}" in str(logged[0]), logged
        (did,) = _ids(engine, f"{number}2", "DocumentReference")
        patient = fhir.get(f"/fhir/DocumentReference/{did}", headers=_office(engine)).json()["subject"]["reference"]
        resident = _readers(engine, patient.split("/", 1)[1])["resident"]
        assert deletes(resident, patient.split("/", 1)[1]) == (0 if label else 1), label
