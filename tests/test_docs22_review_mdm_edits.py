"""Reviewer rvdocs's probes of docs21 (an MDM edit's dropped paragraphs deleted by the feed's Provenance,
a T02 replayed after its edit refused). Real MDM over MLLP, read back through ``/fhir`` on the real
SQLite store; each test states what must not be deleted, refused or taken back."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import PID
from tests.test_mdm20_document_label import _readers, _texts
from tests.test_mdmmend20_probe import mdm_many, mongo_engine  # noqa: F401

__all__ = ["fhir", "mongo_engine"]


def _mdm(control: str, event: str, number: str, obx: list[str], *, parent: str = "", facility: str = "FNXRMYY",
         pid: str = PID) -> bytes:
    """An MDM whose OBX segments are given whole (after ``OBX|<n>|``)."""
    return (f"MSH|^~\\&|EMR|{facility}|HUREN|FNYGT|20261201091500||MDM^{event}^MDM_T02|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\r" + pid
            + f"TXA|1|DS^出院小结^HL70270|TX|20261201080000|||||D001^李^明|||{number}|{parent}|||m20.rtf|AU|\r"
            + "".join(f"OBX|{n}|{o}\r" for n, o in enumerate(obx, 1))).encode()


def _tx(text: str) -> str:
    return f"TX|18842-5^出院小结^LN||{text}||||||F"


def _ids(engine: Engine, control: str, rtype: str = "Observation", facility: str = "FNXRMYY") -> list[str]:
    doc = engine.ingestor.messages.get(message_id(facility, control))
    assert doc is not None, control
    return [r.split("/", 1)[1] for r in doc["resources"] if r.startswith(rtype + "/")]


def _alive(fhir: TestClient, ids: list[str]) -> dict[str, int]:  # noqa: F811
    return {i: fhir.get(f"/fhir/Observation/{i}").status_code for i in ids}


def _acks(engine: Engine, *messages: bytes) -> list[str]:
    return [ack_code_of(a) for a in send(engine, *messages)]


def test_an_edit_of_another_document_of_the_same_patient_deletes_none_of_this_ones_text(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    assert _acks(engine, mdm_many("X1", "T02", "", ["甲", "乙"], number="DOC-X"),
                 mdm_many("Y1", "T02", "", ["丙", "丁"], number="DOC-Y"),
                 mdm_many("Y2", "T08", "", ["丙（改）"], number="DOC-Y")) == ["AA", "AA", "AA"]
    xs = _ids(engine, "X1")
    assert len(xs) == 2 and set(_alive(fhir, xs).values()) == {200}
    assert sorted(fhir.get(f"/fhir/Observation/{i}").json()["valueString"] for i in xs) == ["乙", "甲"]
    ys = _ids(engine, "Y1")
    assert _alive(fhir, ys) == {ys[0]: 200, ys[1]: 410}


def test_a_t08_naming_another_number_deletes_nothing_of_the_first_document(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    assert _acks(engine, mdm_many("N1", "T02", "", ["甲", "乙"], number="DOC-N1"),
                 mdm_many("N2", "T08", "", ["甲（改）"], number="DOC-N2")) == ["AA", "AA"]
    assert set(_alive(fhir, _ids(engine, "N1")).values()) == {200}


def test_the_same_number_from_another_facility_is_another_document(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """TXA-12 is unique at its sender: FNZYY's DOC-F edit leaves FNXRMYY's DOC-F text, and FNZYY's original
    after FNXRMYY's edit is not a replay."""
    assert _acks(engine, _mdm("F1", "T02", "DOC-F", [_tx("甲"), _tx("乙")]),
                 _mdm("F2", "T08", "DOC-F", [_tx("甲（改）")]),
                 _mdm("G1", "T02", "DOC-F", [_tx("丙"), _tx("丁")], facility="FNZYY"),
                 _mdm("G2", "T08", "DOC-F", [_tx("丙（改）")], facility="FNZYY")) == ["AA", "AA", "AA", "AA"]
    a, b = _ids(engine, "F1")
    assert _alive(fhir, [a, b]) == {a: 200, b: 410}
    assert fhir.get(f"/fhir/Observation/{a}").json()["valueString"] == "甲（改）"
    (doc,) = written(engine, fhir, "F2", "DocumentReference")
    assert fhir.get(f"/fhir/DocumentReference/{doc['id']}").json()["meta"]["versionId"] == "2"


def test_an_addendum_under_its_own_number_deletes_none_of_its_parents_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    assert _acks(engine, mdm_many("A1", "T02", "", ["甲", "乙"], number="DOC-A"),
                 mdm_many("A2", "T06", "", ["补充"], number="DOC-A-ADD", parent="DOC-A")) == ["AA", "AA"]
    assert set(_alive(fhir, _ids(engine, "A1")).values()) == {200}


def test_a_replacement_under_a_new_number_deletes_none_of_the_old_documents_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    assert _acks(engine, mdm_many("R1", "T02", "", ["甲", "乙"], number="DOC-O"),
                 mdm_many("R2", "T10", "", ["新"], number="DOC-NEW", parent="DOC-O")) == ["AA", "AA"]
    assert set(_alive(fhir, _ids(engine, "R1")).values()) == {200}


def test_an_addendum_reusing_its_parents_number_does_not_delete_the_parents_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A T06 carries the addendum only (v2.5 ch. 9: "addendum notification and content"), never the whole
    parent: a sender reusing the parent's TXA-12 (the code names this case) must not erase what the
    original stated."""
    assert _acks(engine, mdm_many("D1", "T02", "", ["甲", "乙"], number="DOC-D"),
                 mdm_many("D2", "T06", "", ["补充"], number="DOC-D", parent="DOC-D")) == ["AA", "AA"]
    assert set(_alive(fhir, _ids(engine, "D1")).values()) == {200}


def test_a_pdf_only_edit_deletes_nothing(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    pdf = "ED|PDF^报告^L||^application^pdf^Base64^JVBERi0xLjQK||||||F"
    assert _acks(engine, mdm_many("P1", "T02", "", ["甲", "乙"], number="DOC-PDF"),
                 _mdm("P2", "T08", "DOC-PDF", [pdf])) == ["AA", "AA"]
    assert set(_alive(fhir, _ids(engine, "P1")).values()) == {200}


def test_a_t08_resent_as_is_and_with_a_new_control_id_deletes_nothing_more(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    first = mdm_many("E2", "T08", "", ["甲（改）"], number="DOC-E")
    assert _acks(engine, mdm_many("E1", "T02", "", ["甲", "乙", "丙"], number="DOC-E"), first, first,
                 mdm_many("E3", "T08", "", ["甲（改）"], number="DOC-E")) == ["AA", "AA", "AA", "AA"]
    a, b, c = _ids(engine, "E1")
    assert _alive(fhir, [a, b, c]) == {a: 200, b: 410, c: 410}
    (doc,) = written(engine, fhir, "E3", "DocumentReference")
    assert doc["meta"]["versionId"] == "2", "the resend changed nothing"
    history = fhir.get(f"/fhir/Observation/{b}/_history").json()
    assert [e["request"]["method"] if "request" in e else "" for e in history.get("entry") or ()].count("DELETE") <= 1


def test_a_corrected_t02_resent_with_a_new_control_id_after_a_t04_is_refused(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, mdm_many("S1", "T02", "", ["甲", "乙"], number="DOC-S4"),
                mdm_many("S2", "T04", "", ["甲", "乙"], number="DOC-S4"),
                mdm_many("S1B", "T02", "", ["甲", "乙（旧）"], number="DOC-S4"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AE"], acks
    assert sorted(fhir.get(f"/fhir/Observation/{i}").json()["valueString"] for i in _ids(engine, "S1")) == ["乙", "甲"]


def test_an_unlabelled_clinicians_note_cannot_be_deleted_by_a_provenance_a_client_writes(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Any client with Provenance create writes one shaped as the feed's T02 (its message entity copied),
    pinning the document's first version and a clinician's note: the next T08 then deletes the note as a
    "paragraph an earlier MDM filed". The earlier Provenances read by ``_prune`` are not checked to be
    the feed's (signature, author): the client deletes an Observation it has no right to delete."""
    assert _acks(engine, mdm_many("C1", "T02", "", ["甲", "乙"], number="DOC-C")) == ["AA"]
    (doc,) = written(engine, fhir, "C1", "DocumentReference")
    a, _ = written(engine, fhir, "C1", "Observation")
    (prov,) = written(engine, fhir, "C1", "Provenance")
    dr, _ = engine.auth.issue_token(subject="dr", kind="user", client_id="dr",
                                    scopes=["user/Observation.crus", "user/DocumentReference.rs", "user/Patient.rs"])
    note = {"resourceType": "Observation", "status": "final", "subject": doc["subject"], "code": a["code"],
            "valueString": "医生备注", "derivedFrom": [{"reference": f"DocumentReference/{doc['id']}"}],
            "effectiveDateTime": "2026-12-01T08:00:00+08:00", "performer": a["performer"]}
    made = fhir.post("/fhir/Observation", json=note, headers={"Authorization": f"Bearer {dr}"})
    assert made.status_code == 201, made.text
    nid = made.json()["id"]
    other, _ = engine.auth.issue_token(subject="dp", kind="user", client_id="dp",
                                       scopes=["user/Provenance.crus", "user/DocumentReference.rs", "user/Patient.rs",
                                               "user/Observation.rs"])
    forged = {k: v for k, v in prov.items() if k not in ("id", "meta", "signature")}
    forged["target"] = [{"reference": f"DocumentReference/{doc['id']}/_history/1"},
                        {"reference": f"Observation/{nid}/_history/1"}]
    posted = fhir.post("/fhir/Provenance", json=forged, headers={"Authorization": f"Bearer {other}"})
    assert posted.status_code in (201, 400, 403, 422), posted.text  # refused is a mend too
    assert _acks(engine, mdm_many("C2", "T08", "", ["甲（改）", "乙"], number="DOC-C")) == ["AA"]
    assert fhir.get(f"/fhir/Observation/{nid}").status_code == 200, "the clinician's note was deleted"


def test_a_lab_result_naming_the_document_survives_an_edit(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """An ORU result whose derivedFrom names the document (a FHIR client's) is not the converter's paragraph."""
    assert _acks(engine, mdm_many("L1", "T02", "", ["甲", "乙"], number="DOC-L")) == ["AA"]
    (doc,) = written(engine, fhir, "L1", "DocumentReference")
    a, _ = written(engine, fhir, "L1", "Observation")
    office = {"Authorization": "Bearer " + engine.auth.issue_system_token("records", "system/*.cruds")}
    result = {"resourceType": "Observation", "status": "final", "subject": doc["subject"],
              "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
              "valueQuantity": {"value": 5.1, "unit": "mmol/L"},
              "derivedFrom": [{"reference": f"DocumentReference/{doc['id']}"}],
              "effectiveDateTime": "2026-12-01T08:00:00+08:00", "performer": a["performer"]}
    made = fhir.post("/fhir/Observation", json=result, headers=office)
    assert made.status_code == 201, made.text
    assert _acks(engine, mdm_many("L2", "T08", "", ["甲（改）"], number="DOC-L")) == ["AA"]
    assert fhir.get(f"/fhir/Observation/{made.json()['id']}").status_code == 200


def _office(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("records", "system/*.cruds")}


def test_an_edit_raising_to_v_deletes_the_paragraph_it_dropped(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T02 (U: A, B), T08 (V: A'): B is a paragraph the edit removed, as in the unlabelled case -- the
    document's write hook raises B to V first (a version the MDM's Provenance does not pin as the earlier
    message's), and B must still go, not stay the V document's text for whoever may read V."""
    assert _acks(engine, mdm_many("H1", "T02", "", ["甲", "乙"], number="DOC-H"),
                 mdm_many("H2", "T08", "V", ["甲（改）"], number="DOC-H")) == ["AA", "AA"]
    a, b = _ids(engine, "H1")
    office = _office(engine)
    assert fhir.get(f"/fhir/Observation/{a}", headers=office).status_code == 200
    assert fhir.get(f"/fhir/Observation/{b}", headers=office).status_code == 410, \
        fhir.get(f"/fhir/Observation/{b}", headers=office).json().get("valueString")


def test_a_v_paragraph_an_edit_dropped_has_no_history_for_the_resident_or_a_clinician(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    assert _acks(engine, mdm_many("W1", "T02", "V", ["甲", "乙（HIV）"], number="DOC-W"),
                 mdm_many("W2", "T08", "", ["甲"], number="DOC-W")) == ["AA", "AA"]
    _, b = _ids(engine, "W1")
    assert fhir.get(f"/fhir/Observation/{b}", headers=_office(engine)).status_code == 410
    (doc,) = written(engine, fhir, "W2", "DocumentReference")
    patient = doc["subject"]["reference"].split("/", 1)[1] if "subject" in doc else ""
    if not patient:  # the reader cannot read the V document: ask the office
        patient = fhir.get(f"/fhir/DocumentReference/{_ids(engine, 'W2', 'DocumentReference')[0]}",
                           headers=_office(engine)).json()["subject"]["reference"].split("/", 1)[1]
    for who, headers in _readers(engine, patient).items():
        for path in (f"/fhir/Observation/{b}/_history", f"/fhir/Observation/{b}/_history/1"):
            got = fhir.get(path, headers=headers)
            shown = got.json().get("entry") if got.status_code == 200 else None
            assert got.status_code in (403, 404, 410) or not shown and got.json().get("resourceType") != "Observation", \
                (who, path, got.status_code, got.text[:300])


def test_a_replayed_original_in_the_same_batch_after_its_edit_is_refused(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    outcomes = engine.ingestor.process([
        (mdm_many("J1", "T02", "", ["甲", "乙"], number="DOC-J"), "mllp", "test"),
        (mdm_many("J2", "T08", "", ["甲（改）"], number="DOC-J"), "mllp", "test"),
        (mdm_many("J3", "T02", "", ["甲", "乙"], number="DOC-J"), "mllp", "test")])
    assert len(outcomes) == 3
    patient = written(engine, fhir, "J2", "DocumentReference")[0]["subject"]["reference"].split("/", 1)[1]
    assert sorted(t["valueString"] for t in _texts(fhir, patient)) == ["甲（改）"]


def test_mongomock_another_document_and_a_resent_edit(mongo_engine: Engine) -> None:  # noqa: F811
    from engine.api.app import create_app

    with TestClient(create_app(mongo_engine)) as http:
        http.headers["Authorization"] = "Bearer " + mongo_engine.auth.issue_system_token("reader", "system/*.rs")
        edit = mdm_many("MY2", "T08", "", ["丙（改）"], number="DOC-MY")
        assert _acks(mongo_engine, mdm_many("MX1", "T02", "", ["甲", "乙"], number="DOC-MX"),
                     mdm_many("MY1", "T02", "", ["丙", "丁"], number="DOC-MY"), edit, edit,
                     mdm_many("MY3", "T08", "", ["丙（改）"], number="DOC-MY")) == ["AA"] * 5
        assert set(_alive(http, _ids(mongo_engine, "MX1")).values()) == {200}
        c, d = _ids(mongo_engine, "MY1")
        assert _alive(http, [c, d]) == {c: 200, d: 410}


def test_an_original_replayed_after_its_edit_and_a_status_change_is_refused(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T02, T08 (the edit), T03 (status change: no content), then the T02 replayed: the original is still
    older than the edit; the status change between them must not let it take the text back."""
    from tests.test_mdmmend20_probe import mdm_bare

    acks = [ack_code_of(a) for a in send(engine, mdm_many("T1", "T02", "", ["甲", "乙"], number="DOC-T"),
                                         mdm_many("T2", "T08", "", ["甲", "乙（改）"], number="DOC-T"),
                                         mdm_bare("T3", "T03", "", number="DOC-T"),
                                         mdm_many("T4", "T02", "", ["甲", "乙"], number="DOC-T"))]
    patient = written(engine, fhir, "T2", "DocumentReference")[0]["subject"]["reference"].split("/", 1)[1]
    assert sorted(t["valueString"] for t in _texts(fhir, patient)) == ["乙（改）", "甲"], acks


def test_an_exact_duplicate_of_the_original_after_its_edit_takes_nothing_back(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    original = mdm_many("U1", "T02", "", ["甲", "乙"], number="DOC-U")
    acks = [ack_code_of(a) for a in send(engine, original, mdm_many("U2", "T08", "", ["甲", "乙（改）"], number="DOC-U"),
                                         original)]
    assert acks[:2] == ["AA", "AA"] and acks[2] in ("AA", "AE"), acks
    patient = written(engine, fhir, "U2", "DocumentReference")[0]["subject"]["reference"].split("/", 1)[1]
    assert sorted(t["valueString"] for t in _texts(fhir, patient)) == ["乙（改）", "甲"]


def test_an_r_paragraph_an_edit_dropped_has_no_history_for_a_clinician(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    assert _acks(engine, mdm_many("RR1", "T02", "R", ["甲", "乙（精神科）"], number="DOC-RR"),
                 mdm_many("RR2", "T08", "", ["甲"], number="DOC-RR")) == ["AA", "AA"]
    _, b = _ids(engine, "RR1")
    office = _office(engine)
    assert fhir.get(f"/fhir/Observation/{b}", headers=office).status_code == 410
    (did,) = _ids(engine, "RR2", "DocumentReference")
    patient = fhir.get(f"/fhir/DocumentReference/{did}", headers=office).json()["subject"]["reference"].split("/", 1)[1]
    clinician = _readers(engine, patient)["clinician"]  # withheld from R while it lived (the resident is not)
    for path in (f"/fhir/Observation/{b}/_history", f"/fhir/Observation/{b}/_history/1"):
        got = fhir.get(path, headers=clinician)
        assert "精神科" not in got.text, (path, got.status_code, got.text[:300])


def test_an_original_notification_replayed_after_the_edit_does_not_open_the_door_to_the_original(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T02, T08, then the sender's queue resent: T01 (the original's notification, no content) and T02.
    T01 is an original too (v2.5 ch. 9): the T02 behind it must still not take the edit back."""
    from tests.test_mdmmend20_probe import mdm_bare

    acks = [ack_code_of(a) for a in send(engine, mdm_many("O1", "T02", "", ["甲", "乙"], number="DOC-OO"),
                                         mdm_many("O2", "T08", "", ["甲", "乙（改）"], number="DOC-OO"),
                                         mdm_bare("O3", "T01", "", number="DOC-OO"),
                                         mdm_many("O4", "T02", "", ["甲", "乙"], number="DOC-OO"))]
    patient = written(engine, fhir, "O2", "DocumentReference")[0]["subject"]["reference"].split("/", 1)[1]
    assert sorted(t["valueString"] for t in _texts(fhir, patient)) == ["乙（改）", "甲"], acks


def test_an_edit_naming_another_patient_under_the_number_deletes_nothing(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    other = "PID|1||ZY99X^^^FNXRMYY^MR||赵^六||19700101|F\r"
    acks = _acks(engine, mdm_many("Z1", "T02", "", ["甲", "乙"], number="DOC-Z"),
                 _mdm("Z2", "T08", "DOC-Z", [_tx("甲（改）")], pid=other))
    assert acks[0] == "AA" and acks[1] in ("AE", "AR"), acks
    assert set(_alive(fhir, _ids(engine, "Z1")).values()) == {200}



def test_an_original_resent_thinner_before_any_edit_erases_nothing(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T02 (A, B, C) then the same T02 resent with a new MSH-10 and C missing (a sender's truncated resend).
    A resent original is not an edit (T08 "the original document is edited"): before docs21 the merge
    kept what it left out; now C is deleted by a message stating nothing about it."""
    assert _acks(engine, mdm_many("TH1", "T02", "", ["甲", "乙", "丙"], number="DOC-TH"),
                 mdm_many("TH2", "T02", "", ["甲", "乙"], number="DOC-TH")) == ["AA", "AA"]
    a, b, c = _ids(engine, "TH1")
    assert _alive(fhir, [a, b, c]) == {a: 200, b: 200, c: 200}


def test_an_edit_continued_in_a_second_message_keeps_its_second_paragraph(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A T08 too long for one message, continued (HL7 v2.5 2.10.2: DSC-1 in the first, MSH-14 in the next):
    the first part is not the whole edit. Either refused or assembled -- not the second paragraph deleted by
    the first part and the first paragraph overwritten by the second."""
    first = (mdm_many("CO2", "T08", "", ["甲（改）"], number="DOC-CO").decode() + "DSC|CO2-MORE|F\r").encode()
    second = mdm_many("CO3", "T08", "", ["乙（改）"], number="DOC-CO").decode().replace(
        "|P|2.5.1\r", "|P|2.5.1|||CO2-MORE\r", 1).replace("OBX|1|", "OBX|2|").encode()
    acks = _acks(engine, mdm_many("CO1", "T02", "", ["甲", "乙"], number="DOC-CO"), first, second)
    patient = written(engine, fhir, "CO1", "DocumentReference")[0]["subject"]["reference"].split("/", 1)[1]
    texts = sorted(t["valueString"] for t in _texts(fhir, patient))
    assert texts in (["乙（改）", "甲（改）"], ["乙", "甲"]), (acks, texts)
