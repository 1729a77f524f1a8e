"""What the review of mdm20 found (reviewer rv-mdm20's probes, tidied; twentieth round, mdmmend20).

Real MDM/ORU over MLLP, real HTTP through FastAPI's TestClient with resident, clinician and
records-office tokens, the real SQLite store (and mongomock where named). Failing on 5b48fa4:
an edit (T08) raising a document to V with fewer OBX left the paragraphs it did not resend readable
and still the document's text; a FHIR PUT raising a document to V left its text readable; a writer
withheld from V learnt a document's label by naming it in ``derivedFrom`` (201 labelled V against
201 unlabelled for a made-up id); a site grouping its feeds as ``hl7`` lost the privacy rows
without a word. The other probes pass on 5b48fa4 and stay as guards. Left out: the contentless
MDMs (T01/T03/T05/T07/T09/T11, another helper's slice) and an original replayed after its edit
(README, mdmmend20's paragraph).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from mappings.sitefiles import SiteError
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import PID
from tests.test_ingest_durability import err_fields
from tests.test_mdm20_document_label import _label, _readers, _texts, mdm

__all__ = ["fhir"]

_V3 = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def mdm_many(control: str, event: str, confidentiality: str, texts: list[str], number: str = "DOC-RV",
             parent: str = "") -> bytes:
    """An MDM with several OBX lines of text (one per paragraph)."""
    return (f"MSH|^~\\&|EMR|FNXRMYY|HUREN|FNYGT|20261201091500||MDM^{event}^MDM_T02|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\r" + PID
            + f"TXA|1|DS^出院小结^HL70270|TX|20261201080000|||||D001^李^明|||{number}|{parent}|||m20.rtf|AU"
              f"|{confidentiality}\r"
            + "".join(f"OBX|{n}|TX|18842-5^出院小结^LN||{t}||||||F\r" for n, t in enumerate(texts, 1))).encode()


def mdm_bare(control: str, event: str, confidentiality: str, number: str = "DOC-RV", parent: str = "") -> bytes:
    """An MDM without content (T01/T03/T05/T07/T09/T11: MDM_T01, no OBX)."""
    return (f"MSH|^~\\&|EMR|FNXRMYY|HUREN|FNYGT|20261201091500||MDM^{event}^MDM_T01|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\r" + PID
            + f"TXA|1|DS^出院小结^HL70270|TX|20261201080000|||||D001^李^明|||{number}|{parent}|||m20.rtf|AU"
              f"|{confidentiality}\r").encode()


def _patient(engine: Engine, fhir: TestClient, control: str) -> str:  # noqa: F811
    (doc,) = written(engine, fhir, control, "DocumentReference")
    return str(doc["subject"]["reference"].split("/", 1)[1])


# --- 1. raising the document's label leaves text it does not re-send readable ---------------------

def test_an_edit_raising_to_v_with_fewer_obx_leaves_no_readable_text_of_the_v_document(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T02 (no label) with two paragraphs, then T08 stating V with the first one only: the document
    is V, so no paragraph of it may be read by the resident or a clinician."""
    acks = send(engine, mdm_many("A1", "T02", "", ["第一段", "第二段（诊断：HIV阳性）"]),
                mdm_many("A2", "T08", "V", ["第一段（修改）"]))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    (doc,) = written(engine, fhir, "A2", "DocumentReference")
    assert _label(doc) == {"V"}
    patient = _patient(engine, fhir, "A2")
    texts = _texts(fhir, patient)
    unlabelled = [t["valueString"] for t in texts if "V" not in _label(t)]
    for who, headers in _readers(engine, patient).items():
        seen = [t["valueString"] for t in _texts(fhir, patient, headers)]
        assert seen == [], (who, seen, "unlabelled texts of the V document:", unlabelled)


def test_a_fhir_put_raising_the_document_to_v_withholds_its_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The records office raises a document to V (PUT of the whole document, system client): its text
    (each Observation names it in ``derivedFrom``) must not stay readable to the resident."""
    assert [ack_code_of(a) for a in send(engine, mdm("P1", "T02", "", "精神科诊断", number="DOC-P"))] == ["AA"]
    (doc,) = written(engine, fhir, "P1", "DocumentReference")
    (text,) = written(engine, fhir, "P1", "Observation")
    assert text["derivedFrom"] == [{"reference": f"DocumentReference/{doc['id']}"}]
    raised = {k: v for k, v in doc.items() if k != "meta"}
    raised["securityLabel"] = [{"coding": [{"system": _V3, "code": "V"}]}]
    office = {"Authorization": "Bearer " + engine.auth.issue_system_token("records", "system/DocumentReference.u")}
    put = fhir.put(f"/fhir/DocumentReference/{doc['id']}", json=raised, headers=office)
    assert put.status_code == 200, put.text
    resident = _readers(engine, _patient(engine, fhir, "P1"))["resident"]
    assert fhir.get(f"/fhir/DocumentReference/{doc['id']}", headers=resident).status_code == 404
    assert fhir.get(f"/fhir/Observation/{text['id']}", headers=resident).status_code == 404


# --- 2. every MDM kind after a V document --------------------------------------------------------

@pytest.mark.parametrize("event", ["T01", "T03", "T05", "T07", "T09", "T11"])
def test_a_contentless_mdm_stating_u_never_lowers_a_v_document(
        engine: Engine, fhir: TestClient, event: str) -> None:  # noqa: F811
    acks = send(engine, mdm("K1", "T02", "V", "第一段", number="DOC-K"), mdm_bare("K2", event, "U", number="DOC-K"))
    assert ack_code_of(acks[0]) == "AA"
    assert ack_code_of(acks[1]) in ("AA", "AE", "AR"), acks[1]
    (doc,) = written(engine, fhir, "K1", "DocumentReference")
    (text,) = written(engine, fhir, "K1", "Observation")
    now = fhir.get(f"/fhir/DocumentReference/{doc['id']}").json()
    assert _label(now) == {"V"}, (event, now.get("securityLabel"))
    resident = _readers(engine, _patient(engine, fhir, "K1"))["resident"]
    assert fhir.get(f"/fhir/Observation/{text['id']}", headers=resident).status_code == 404, event


@pytest.mark.parametrize("event", ["T02", "T04", "T06", "T08", "T10"])
def test_a_content_mdm_of_each_kind_stating_u_after_v_leaves_nothing_readable(
        engine: Engine, fhir: TestClient, event: str) -> None:  # noqa: F811
    """After a V document, a message of each content kind stating U: T06/T10 as the addendum/replacement
    (their own TXA-12 and TXA-13 naming the V one), the others about the same document."""
    own = event in ("T06", "T10")
    acks = send(engine, mdm("C1", "T02", "V", "第一段", number="DOC-C"),
                mdm("C2", event, "U", "第二段", number="DOC-C2" if own else "DOC-C", parent="DOC-C" if own else ""))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    patient = _patient(engine, fhir, "C1")
    for who, headers in _readers(engine, patient).items():
        assert _texts(fhir, patient, headers) == [], (event, who)
        docs = fhir.get("/fhir/DocumentReference", params={"patient": patient}, headers=headers).json()
        assert not docs.get("entry"), (event, who)


# --- 3. documents without TXA-12 --------------------------------------------------------------

def test_documents_without_a_number_are_each_their_own_and_keep_their_label(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, mdm("N1", "T02", "V", "第一段", number=""), mdm("N2", "T02", "", "另一份", number=""))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    (first,) = written(engine, fhir, "N1", "Observation")
    (other,) = written(engine, fhir, "N2", "Observation")
    assert first["id"] != other["id"]
    assert _label(first) == {"V"} and not _label(other)
    (d1,) = written(engine, fhir, "N1", "DocumentReference")
    assert first["derivedFrom"] == [{"reference": f"DocumentReference/{d1['id']}"}]


# --- 4. $everything (the resident page reads through it) ------------------------------------------

def test_everything_of_the_resident_leaves_out_the_edited_v_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, mdm("E1", "T02", "V", "第一段"), mdm("E2", "T08", "", "第二段（修改）"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    patient = _patient(engine, fhir, "E1")
    for who, headers in _readers(engine, patient).items():
        if who != "resident":
            continue
        answer = fhir.get(f"/fhir/Patient/{patient}/$everything", headers=headers)
        assert answer.status_code == 200, answer.text
        types = [e["resource"]["resourceType"] for e in answer.json().get("entry") or ()]
        assert "DocumentReference" not in types and "Observation" not in types, types


# --- 5. explicit lowering through a transaction Bundle --------------------------------------------

def test_a_transaction_bundle_put_lowers_the_document(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    assert [ack_code_of(a) for a in send(engine, mdm("B1", "T02", "V", "第一段", number="DOC-B"))] == ["AA"]
    (doc,) = written(engine, fhir, "B1", "DocumentReference")
    lowered = {k: v for k, v in doc.items() if k not in ("meta", "securityLabel")}
    office = {"Authorization": "Bearer " + engine.auth.issue_system_token("records", "system/*.cruds")}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": lowered, "request": {"method": "PUT", "url": f"DocumentReference/{doc['id']}"}}]}
    answer = fhir.post("/fhir", json=bundle, headers=office)
    assert answer.status_code == 200, answer.text
    assert not _label(fhir.get(f"/fhir/DocumentReference/{doc['id']}").json())


# --- 6. an ORU (not MDM) lab result: the meta rule ------------------------------------------------

def _lab(control: str, value: str, status: str = "F") -> bytes:
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r" + PID
            + "OBR|1|ORD-L20|LAB-L20|GLU^血糖^L|||20261201083000||||||||BLD||||||||20261201091000|||F\r"
            + f"OBX|1|NM|GLU^血糖^L||{value}|mmol/L|3.9-6.1||||{status}|||20261201090000\r").encode()


def test_a_lab_correction_over_a_labelled_result_stores_its_value_and_keeps_the_label(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, _lab("G1", "5.2"))
    assert [ack_code_of(a) for a in acks] == ["AA"]
    (obs,) = written(engine, fhir, "G1", "Observation")
    labelled = {k: v for k, v in obs.items() if k != "meta"}
    labelled["meta"] = {"security": [{"system": _V3, "code": "R"}]}
    office = {"Authorization": "Bearer " + engine.auth.issue_system_token("records", "system/Observation.u")}
    assert fhir.put(f"/fhir/Observation/{obs['id']}", json=labelled, headers=office).status_code == 200
    acks = send(engine, _lab("G2", "7.9", "C"))
    assert ack_code_of(acks[0]) == "AA", acks
    assert not [e for e in err_fields(acks[0]) if "meta" in e[-1]], acks
    now = fhir.get(f"/fhir/Observation/{obs['id']}").json()
    assert now["valueQuantity"]["value"] == 7.9 and now["status"] == "corrected"
    assert _label(now) == {"R"}


# --- 7. the mongomock backend -------------------------------------------------------------------

@pytest.fixture
def mongo_engine(settings: Any):  # noqa: ANN201
    eng = Engine(settings.with_(mongodb_uri="mongomock://"))
    yield eng
    eng.close()


def test_the_edit_keeps_the_text_withheld_on_mongomock(mongo_engine: Engine) -> None:
    from engine.api.app import create_app

    with TestClient(create_app(mongo_engine)) as http:
        http.headers["Authorization"] = "Bearer " + mongo_engine.auth.issue_system_token("reader", "system/*.rs")
        acks = send(mongo_engine, mdm("O1", "T02", "V", "第一段"), mdm("O2", "T08", "", "第二段（修改）"),
                    mdm("O3", "T08", "U", "第三段"))
        assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"]
        (doc,) = written(mongo_engine, http, "O3", "DocumentReference")
        (text,) = written(mongo_engine, http, "O3", "Observation")
        assert text["valueString"] == "第三段"
        assert _label(doc) == {"V"} and _label(text) == {"V"}
        patient = doc["subject"]["reference"].split("/", 1)[1]
        assert len(_texts(http, patient)) == 1
        for who, headers in _readers(mongo_engine, patient).items():
            assert http.get(f"/fhir/Observation/{text['id']}", headers=headers).status_code == 404, who


# --- 8. a site whose feeds are grouped under another name -----------------------------------------

_SITE_HL7_KEEP = ("sources:\n  hl7: [ADT, ORM, OML, OMG, ORU, OUL, MDM, PPR, REF, RRI, SIU]\n  api: [api]\n"
                  "defaults:\n  modes: {hl7: keep-if-absent, api: replace, other: keep-if-absent}\n"
                  "  conflict: {hl7: warn, api: reject, other: warn}\n"
                  "resources:\n  Observation:\n    status: {placeholders: [unknown]}\n")


def test_a_site_grouping_its_feeds_as_hl7_is_refused_at_load_naming_the_privacy_row(
        settings: Any, tmp_path: Any) -> None:
    """The same HL7 semantics as shipped (keep-if-absent, warn), the group only named ``hl7``: the
    shipped ``securityLabel``/``meta`` rows name ``feed`` and were dropped from the site without a
    word, so an edit stating U took the V document and its text down to the resident. Now the site
    is refused at load, the error naming the element and how to keep it."""
    (tmp_path / "merge.yaml").write_text(_SITE_HL7_KEEP, "utf-8")
    with pytest.raises(SiteError) as refused:
        Engine(settings.with_(site=tmp_path)).close()
    assert "securityLabel" in str(refused.value) or "meta" in str(refused.value), refused.value
    assert "feed" in str(refused.value) and "merge.yaml" in str(refused.value), refused.value


_HL7_ROWS = ("    meta: {hl7: parts, stands: {hl7: [V, R]}, yields_to: [V]}\n"
             "  DiagnosticReport:\n    meta: {hl7: parts, stands: {hl7: [V, R]}, yields_to: [V]}\n"
             "  DocumentReference:\n    securityLabel: {stands: {hl7: [V, R]}, yields_to: [V]}\n")


def test_a_site_naming_the_privacy_rows_for_its_hl7_group_keeps_a_v_document_v(settings: Any, tmp_path: Any) -> None:
    (tmp_path / "merge.yaml").write_text(_SITE_HL7_KEEP + _HL7_ROWS, "utf-8")
    with Engine(settings.with_(site=tmp_path)) as eng:
        from engine.api.app import create_app

        with TestClient(create_app(eng)) as http:
            http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("reader", "system/*.rs")
            acks = send(eng, mdm("S1", "T02", "V", "第一段"), mdm("S2", "T08", "U", "第二段"))
            assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
            (doc,) = written(eng, http, "S2", "DocumentReference")
            (text,) = written(eng, http, "S2", "Observation")
            patient = doc["subject"]["reference"].split("/", 1)[1]
            resident = _readers(eng, patient)["resident"]
            assert http.get(f"/fhir/DocumentReference/{doc['id']}", headers=resident).status_code == 404, _label(doc)
            assert http.get(f"/fhir/Observation/{text['id']}", headers=resident).status_code == 404, _label(text)


# --- 9. another patient's message under a stored document number -----------------------------------

_OTHER_PID = "PID|1||ZY20X^^^FNXRMYY^MR||李^四||19700101|F\r"


def test_another_patients_edit_under_a_v_documents_number_leaves_nothing_readable(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    other = mdm("X2", "T08", "", "别人的文本").replace(PID.encode(), _OTHER_PID.encode())
    acks = send(engine, mdm("X1", "T02", "V", "第一段", number="DOC-M20"), other)
    assert ack_code_of(acks[0]) == "AA"
    assert ack_code_of(acks[1]) in ("AA", "AE", "AR"), acks[1]
    (doc,) = written(engine, fhir, "X1", "DocumentReference")
    now = fhir.get(f"/fhir/DocumentReference/{doc['id']}").json()
    assert now["subject"] == doc["subject"] and _label(now) == {"V"}
    for entry in fhir.get("/fhir/Observation", params={"code": "18842-5"}).json().get("entry") or ():
        text = entry["resource"]
        names = [r.get("reference") for r in text.get("derivedFrom") or ()]
        if f"DocumentReference/{doc['id']}" in names:
            assert _label(text) == {"V"}, text


# --- 10. the mark as an oracle: a writer learns a withheld document's label --------------------------

def test_a_writer_withheld_from_v_cannot_learn_a_v_documents_label_by_naming_it(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A clinician (kind ``user``: neither R nor V) who may create Observations names a document in
    ``derivedFrom``: the answer must not differ between the V document it reads as 404 and an id
    that does not exist (a withheld record reads exactly like a missing one)."""
    assert [ack_code_of(a) for a in send(engine, mdm("W1", "T02", "V", "第一段", number="DOC-W"))] == ["AA"]
    (doc,) = written(engine, fhir, "W1", "DocumentReference")
    patient = doc["subject"]["reference"]
    (text,) = written(engine, fhir, "W1", "Observation")
    token, _ = engine.auth.issue_token(subject="doc-w", kind="user", client_id="doc-w",
                                       scopes=["user/Observation.crus", "user/DocumentReference.rs",
                                               "user/Patient.rs"])
    clinician = {"Authorization": f"Bearer {token}"}
    assert fhir.get(f"/fhir/DocumentReference/{doc['id']}", headers=clinician).status_code == 404

    def probe(target: str) -> tuple[int, Any]:
        body = {"resourceType": "Observation", "status": "final", "subject": {"reference": patient},
                "code": {"text": "备注"}, "valueString": "x", "derivedFrom": [{"reference": target}],
                "effectiveDateTime": "2026-12-01T08:00:00+08:00", "performer": text["performer"]}
        answer = fhir.post("/fhir/Observation", json=body, headers=clinician)
        got = answer.json() if answer.headers.get("content-type", "").startswith("application/") else answer.text
        return answer.status_code, _label(got) if isinstance(got, dict) and got.get("resourceType") == "Observation" \
            else (got.get("issue") if isinstance(got, dict) else got)

    real = probe(f"DocumentReference/{doc['id']}")
    made_up = probe("DocumentReference/00000000-0000-5000-8000-000000000000")
    assert real[0] == made_up[0] and real[1] == made_up[1], (real, made_up)
    assert real[0] == 422, real  # both a reference to a record that is not known; nothing written
    # a document the clinician may read is named as before: 201, no label
    assert [ack_code_of(a) for a in send(engine, mdm("W2", "T02", "", "普通", number="DOC-W2"))] == ["AA"]
    (plain,) = written(engine, fhir, "W2", "DocumentReference")
    assert probe(f"DocumentReference/{plain['id']}") == (201, set())


# --- 11. the text as the edit left it --------------------------------------------------------------

def test_an_edit_dropping_a_paragraph_leaves_no_stale_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T08 is "the original document is edited" (v2.5 ch. 9) and carries the whole edited text: a
    paragraph the edit removed must not still be read as the document's text."""
    acks = send(engine, mdm_many("F1", "T02", "", ["第一段", "第二段（误诊，已删除）"]),
                mdm_many("F2", "T08", "", ["第一段（修改）"]))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    patient = _patient(engine, fhir, "F2")
    assert sorted(t["valueString"] for t in _texts(fhir, patient)) == ["第一段（修改）"]
    # the removed paragraph's copy is deleted with its versions kept (410, its history readable)
    gone = [o for o in written(engine, fhir, "F1", "Observation") if o.get("resourceType") != "Observation"]
    assert len(gone) == 1, gone
    ids = [r.split("/")[1] for r in engine.ingestor.messages.get(message_id("FNXRMYY", "F1"))["resources"]
           if r.startswith("Observation/")]
    assert [fhir.get(f"/fhir/Observation/{i}").status_code for i in ids] == [200, 410]
    history = fhir.get(f"/fhir/Observation/{ids[1]}/_history").json()
    assert any((e.get("resource") or {}).get("valueString") == "第二段（误诊，已删除）" for e in history.get("entry") or ())


def test_an_edit_resending_a_paragraph_unchanged_keeps_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A paragraph the edit sends again as it was is not written again (unchanged): it stays the text."""
    acks = send(engine, mdm_many("H1", "T02", "", ["第一段", "第二段", "第三段"]),
                mdm_many("H2", "T08", "", ["第一段", "第二段（修改）"]))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    patient = _patient(engine, fhir, "H2")
    assert sorted(t["valueString"] for t in _texts(fhir, patient)) == ["第一段", "第二段（修改）"]


def test_a_writer_withheld_from_v_names_a_document_its_own_bundle_writes(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The check reads a transaction Bundle's own earlier entries: a document and its text written
    together by a clinician are not refused as a reference to a record that is not known."""
    assert [ack_code_of(a) for a in send(engine, mdm("B2", "T02", "", "普通", number="DOC-B2"))] == ["AA"]
    (doc,) = written(engine, fhir, "B2", "DocumentReference")
    (text,) = written(engine, fhir, "B2", "Observation")
    token, _ = engine.auth.issue_token(subject="doc-b", kind="user", client_id="doc-b",
                                       scopes=["user/Observation.crus", "user/DocumentReference.crus",
                                               "user/Patient.rs"])
    own = {k: v for k, v in doc.items() if k not in ("id", "meta", "masterIdentifier", "identifier")}
    note = {"resourceType": "Observation", "status": "final", "subject": doc["subject"], "code": {"text": "备注"},
            "valueString": "x", "derivedFrom": [{"reference": "urn:uuid:6f1c2b9e-0d7a-4c1e-9f3b-2a5d8e7c4b10"}],
            "effectiveDateTime": "2026-12-01T08:00:00+08:00", "performer": text["performer"]}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6f1c2b9e-0d7a-4c1e-9f3b-2a5d8e7c4b10", "resource": own,
         "request": {"method": "POST", "url": "DocumentReference"}},
        {"resource": note, "request": {"method": "POST", "url": "Observation"}}]}
    answer = fhir.post("/fhir", json=bundle, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert [e["response"]["status"][:3] for e in answer.json()["entry"]] == ["201", "201"]


def test_an_edit_raising_to_v_with_fewer_obx_on_mongomock(mongo_engine: Engine) -> None:
    """The document's write hook (relabel) on the MongoDB backend."""
    from engine.api.app import create_app

    with TestClient(create_app(mongo_engine)) as http:
        http.headers["Authorization"] = "Bearer " + mongo_engine.auth.issue_system_token("reader", "system/*.rs")
        acks = send(mongo_engine, mdm_many("M1", "T02", "", ["第一段", "第二段（诊断：HIV阳性）"]),
                    mdm_many("M2", "T08", "V", ["第一段（修改）"]))
        assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
        (doc,) = written(mongo_engine, http, "M2", "DocumentReference")
        patient = doc["subject"]["reference"].split("/", 1)[1]
        texts = _texts(http, patient)
        # every paragraph left is V (the one the edit left out is deleted since old37, thirty-seventh round)
        assert "第一段（修改）" in [t["valueString"] for t in texts] and all(_label(t) == {"V"} for t in texts), texts
        for who, headers in _readers(mongo_engine, patient).items():
            assert _texts(http, patient, headers) == [], who
