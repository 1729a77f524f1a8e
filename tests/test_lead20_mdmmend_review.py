"""Reviewer rv-mdmmend20's probes of mdmmend20, kept after the lead withdrew its deletion of "stale" text (it
deleted a clinician's note, non-text results and V text the writer could not read) and let a versioned or deleted
unlabelled document be named: each failed on the merged main before the mend; the older gap (an edit's dropped
paragraph) was a strict xfail until old37 (thirty-seventh round) marked the converter's copies."""

from __future__ import annotations

import base64
from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from mappings.site import Site
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401
from tests.test_hl7fix17_review import PID
from tests.test_mdm20_document_label import _label, mdm
from tests.test_mdmmend20_probe import mdm_many

__all__ = ["fhir"]
_V3 = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def mdm_obx(control: str, event: str, obx: list[str], number: str = "DOC-RV", conf: str = "") -> bytes:
    return (f"MSH|^~\\&|EMR|FNXRMYY|HUREN|FNYGT|20261201091500||MDM^{event}^MDM_T02|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\r" + PID
            + f"TXA|1|DS^出院小结^HL70270|TX|20261201080000|||||D001^李^明|||{number}||||m20.rtf|AU|{conf}\r"
            + "".join(f"OBX|{n}|{o}||||||F\r" for n, o in enumerate(obx, 1))).encode()


def _user(engine: Engine, scopes: list[str], name: str = "rv") -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=name, kind="user", client_id=name, scopes=scopes)
    return {"Authorization": f"Bearer {token}"}


def _system(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("records", "system/*.cruds")}


def test_an_edit_keeps_a_clinicians_note_performed_by_the_hospital(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A clinician's own note naming the document (performer: the hospital, as the project's own
    probe writes it) is not a copy of a paragraph: a T08 edit must not delete it."""
    assert [ack_code_of(a) for a in send(engine, mdm_many("N1", "T02", "", ["第一段"], number="DOC-N"))] == ["AA"]
    (doc,) = written(engine, fhir, "N1", "DocumentReference")
    (text,) = written(engine, fhir, "N1", "Observation")
    clinician = _user(engine, ["user/Observation.crus", "user/DocumentReference.rs", "user/Patient.rs"])
    note = {"resourceType": "Observation", "status": "final", "subject": doc["subject"], "code": {"text": "医生备注"},
            "valueString": "患者要求复印", "derivedFrom": [{"reference": f"DocumentReference/{doc['id']}"}],
            "effectiveDateTime": "2026-12-01T08:00:00+08:00", "performer": text["performer"]}
    made = fhir.post("/fhir/Observation", json=note, headers=clinician)
    assert made.status_code == 201, made.text
    assert [ack_code_of(a) for a in send(engine, mdm_many("N2", "T08", "", ["第一段（修改）"], number="DOC-N"))] == ["AA"]
    assert fhir.get(f"/fhir/Observation/{made.json()['id']}").status_code == 200


def test_an_edit_keeps_a_non_text_obx_resent_and_a_put_keeps_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """An ST OBX (not a TEXT_TYPE: not in the document's text/plain content) beside the TX paragraph:
    a records-office PUT correcting the document's text must not delete the ST result."""
    first = mdm_obx("S1", "T02", ["TX|18842-5^出院小结^LN||第一段\\.br\\第二段", "ST|29548-5^诊断^LN||高血压"],
                    number="DOC-S")
    assert [ack_code_of(a) for a in send(engine, first)] == ["AA"]
    (doc,) = written(engine, fhir, "S1", "DocumentReference")
    obs = written(engine, fhir, "S1", "Observation")
    st = [o for o in obs if o.get("valueString") == "高血压"]
    assert st, obs
    put = {k: v for k, v in doc.items() if k != "meta"}
    content = [dict(c) for c in put["content"]]
    att = dict(content[0]["attachment"])
    att["data"] = base64.b64encode("第一段\n第二段（更正）".encode()).decode()
    content[0] = {**content[0], "attachment": att}
    put["content"] = content
    answer = fhir.put(f"/fhir/DocumentReference/{doc['id']}", json=put, headers=_system(engine))
    assert answer.status_code == 200, answer.text
    assert fhir.get(f"/fhir/Observation/{st[0]['id']}").status_code == 200


def test_a_clinician_put_does_not_delete_text_it_cannot_read(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A V document lowered by the records office keeps its V text; a clinician (V withheld) who edits
    the now-readable document's content must not delete records it cannot see."""
    assert [ack_code_of(a) for a in send(engine, mdm("L1", "T02", "V", "机密段落", number="DOC-L"))] == ["AA"]
    (doc,) = written(engine, fhir, "L1", "DocumentReference")
    (text,) = written(engine, fhir, "L1", "Observation")
    office = _system(engine)
    lowered = {k: v for k, v in doc.items() if k not in ("meta", "securityLabel")}
    assert fhir.put(f"/fhir/DocumentReference/{doc['id']}", json=lowered, headers=office).status_code == 200
    assert "V" in _label(fhir.get(f"/fhir/Observation/{text['id']}").json())
    clinician = _user(engine, ["user/DocumentReference.crus", "user/Observation.rs", "user/Patient.rs"], "rv-l")
    now = fhir.get(f"/fhir/DocumentReference/{doc['id']}", headers=clinician)
    assert now.status_code == 200, now.text
    assert fhir.get(f"/fhir/Observation/{text['id']}", headers=clinician).status_code == 404
    edit = {k: v for k, v in now.json().items() if k != "meta"}
    att = {**edit["content"][0]["attachment"], "data": base64.b64encode("新内容".encode()).decode()}
    edit["content"] = [{**edit["content"][0], "attachment": att}]
    answer = fhir.put(f"/fhir/DocumentReference/{doc['id']}", json=edit, headers=clinician)
    assert answer.status_code in (200, 403, 404, 422), answer.text
    assert fhir.get(f"/fhir/Observation/{text['id']}").status_code == 200, "hidden V text deleted by a clinician"


def test_a_versioned_document_reference_is_not_refused(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """derivedFrom "DocumentReference/<id>/_history/1" of a document the clinician reads: a valid
    reference, not "a DocumentReference that is not known"."""
    assert [ack_code_of(a) for a in send(engine, mdm("R1", "T02", "", "普通", number="DOC-R"))] == ["AA"]
    (doc,) = written(engine, fhir, "R1", "DocumentReference")
    (text,) = written(engine, fhir, "R1", "Observation")
    clinician = _user(engine, ["user/Observation.crus", "user/DocumentReference.rs", "user/Patient.rs"], "rv-r")
    vid = doc["meta"]["versionId"]
    note = {"resourceType": "Observation", "status": "final", "subject": doc["subject"], "code": {"text": "备注"},
            "valueString": "x", "derivedFrom": [{"reference": f"DocumentReference/{doc['id']}/_history/{vid}"}],
            "effectiveDateTime": "2026-12-01T08:00:00+08:00", "performer": text["performer"]}
    answer = fhir.post("/fhir/Observation", json=note, headers=clinician)
    assert answer.status_code == 201, answer.text


def test_a_clinician_updates_a_note_naming_a_deleted_document(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A note written before its document was deleted: correcting the note's status is still allowed
    for a clinician as it is for the records office (no label in play)."""
    assert [ack_code_of(a) for a in send(engine, mdm("D1", "T02", "", "普通", number="DOC-D"))] == ["AA"]
    (doc,) = written(engine, fhir, "D1", "DocumentReference")
    (text,) = written(engine, fhir, "D1", "Observation")
    clinician = _user(engine, ["user/Observation.crus", "user/DocumentReference.rs", "user/Patient.rs"], "rv-d")
    note = {"resourceType": "Observation", "status": "preliminary", "subject": doc["subject"],
            "code": {"text": "备注"}, "valueString": "x",
            "derivedFrom": [{"reference": f"DocumentReference/{doc['id']}"}],
            "effectiveDateTime": "2026-12-01T08:00:00+08:00", "performer": [{"reference": "Practitioner/x"}]}
    made = fhir.post("/fhir/Observation", json=note, headers=clinician)
    assert made.status_code == 201, made.text
    assert fhir.delete(f"/fhir/DocumentReference/{doc['id']}", headers=_system(engine)).status_code in (200, 204)
    fixed = {**{k: v for k, v in made.json().items() if k != "meta"}, "status": "final"}
    system = fhir.put(f"/fhir/Observation/{fixed['id']}", json=fixed, headers=_system(engine))
    assert system.status_code == 200, system.text
    fixed["status"] = "amended"
    answer = fhir.put(f"/fhir/Observation/{fixed['id']}", json=fixed, headers=clinician)
    assert answer.status_code == 200, answer.text


def test_the_same_paragraph_twice_and_whitespace(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Paragraphs with trailing blanks and a repeat; the edit changes only the last one."""
    acks = send(engine, mdm_many("W1", "T02", "", ["第一段  ", "第一段  ", " 缩进段", "尾段"], number="DOC-WS"),
                mdm_many("W2", "T08", "", ["第一段  ", "第一段  ", " 缩进段", "尾段（改）"], number="DOC-WS"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    obs = written(engine, fhir, "W1", "Observation")
    values = sorted(fhir.get(f"/fhir/Observation/{o['id']}").json().get("valueString", "410") for o in obs)
    assert values.count("410") == 0 or len([v for v in values if v != "410"]) == 4, values


def test_an_obx_with_a_repetition_and_escape(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """OBX-5 with repetitions (~) and escapes (\\F\\, \\.br\\): the edit resending it must keep it."""
    body = "甲\\F\\乙~丙\\.br\\丁"
    acks = send(engine, mdm_obx("E1", "T02", [f"TX|18842-5^出院小结^LN||{body}", "TX|18842-5^出院小结^LN|2|其他"],
                                number="DOC-E"),
                mdm_obx("E2", "T08", [f"TX|18842-5^出院小结^LN||{body}", "TX|18842-5^出院小结^LN|2|其他（改）"],
                        number="DOC-E"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    obs = written(engine, fhir, "E1", "Observation")
    codes = [fhir.get(f"/fhir/Observation/{o['id']}").status_code for o in obs]
    assert codes == [200] * len(obs), codes


_SITE_FEED_NARROW = ("sources:\n  feed: [ADT, ORM, ORU]\n  docs: [MDM]\n  api: [api]\n"
                     "defaults:\n  modes: {feed: keep-if-absent, docs: keep-if-absent, api: replace, "
                     "other: keep-if-absent}\n"
                     "  conflict: {feed: warn, docs: warn, api: reject, other: warn}\n"
                     "resources:\n  Observation:\n    status: {placeholders: [unknown]}\n")


def test_a_site_whose_feed_group_leaves_out_mdm_keeps_a_v_document_v(settings: Any, tmp_path: Any) -> None:
    """The privacy rows were kept by group NAME only: a site defining ``feed`` without MDM (MDM in its
    own ``docs`` group) kept the shipped ``securityLabel`` row, which then covered no document message --
    an edit stating U took a V document down to U (1be59db: label U). The row now names the families
    the site's ``feed`` no longer holds, with ``feed``'s treatment (``mappings.site.laid_over``)."""
    from engine.api.app import create_app

    (tmp_path / "merge.yaml").write_text(_SITE_FEED_NARROW, "utf-8")
    with Engine(settings.with_(site=tmp_path)) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("reader", "system/*.rs")
        acks = send(eng, mdm("Q1", "T02", "V", "第一段", number="DOC-Q"), mdm("Q2", "T08", "U", "第二段", number="DOC-Q"))
        assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
        (doc,) = written(eng, http, "Q2", "DocumentReference")
        assert _label(doc) == {"V"}, doc.get("securityLabel")
    merge = Site.load(settings.with_(site=tmp_path)).merge
    # the families the site names elsewhere (MDM in ``docs``); OML, OMG, OUL, REF, RRI are in no group of
    # this site (its ``other``), which no rule may name
    assert merge["resources"]["DocumentReference"]["securityLabel"]["stands"] == {"feed": ["V", "R"], "MDM": ["V", "R"]}


def test_a_site_whose_feed_group_holds_every_shipped_family_keeps_a_v_document_v(settings: Any, tmp_path: Any) -> None:
    """Guard: the same site with ``feed`` holding the families the shipped ``feed`` held (MDM listed in
    both ``feed`` and ``docs``) loads, and an edit stating U leaves the document V."""
    from engine.api.app import create_app

    wide = _SITE_FEED_NARROW.replace("feed: [ADT, ORM, ORU]", "feed: [ADT, ORM, OML, OMG, ORU, OUL, MDM, REF, RRI]")
    (tmp_path / "merge.yaml").write_text(wide, "utf-8")
    with Engine(settings.with_(site=tmp_path)) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("reader", "system/*.rs")
        acks = send(eng, mdm("Q1", "T02", "V", "第一段", number="DOC-Q"), mdm("Q2", "T08", "U", "第二段", number="DOC-Q"))
        assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
        (doc,) = written(eng, http, "Q2", "DocumentReference")
        assert _label(doc) == {"V"}, doc.get("securityLabel")


def test_an_edit_sending_only_an_attachment_keeps_the_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T08 whose content is an ED PDF (no text/plain): nothing is judged, the text stays."""
    pdf = base64.b64encode(b"%PDF-1.4 fake").decode()
    acks = send(engine, mdm_many("X1", "T02", "", ["第一段", "第二段"], number="DOC-X"),
                mdm_obx("X2", "T08", [f"ED|18842-5^出院小结^LN||^application^pdf^Base64^{pdf}"], number="DOC-X"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    obs = [o for o in written(engine, fhir, "X1", "Observation") if o.get("resourceType") == "Observation"]
    assert [fhir.get(f"/fhir/Observation/{o['id']}").status_code for o in obs] == [200, 200]


def test_an_edit_sending_base64_text_plain_keeps_resent_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T08 with an ED text/plain attachment holding the same paragraphs (no TX): they stay."""
    data = base64.b64encode("第一段\n第二段".encode()).decode()
    acks = send(engine, mdm_many("Y1", "T02", "", ["第一段", "第二段"], number="DOC-Y"),
                mdm_obx("Y2", "T08", [f"ED|18842-5^出院小结^LN||^text^plain^Base64^{data}"], number="DOC-Y"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    obs = [o for o in written(engine, fhir, "Y1", "Observation") if o.get("resourceType") == "Observation"]
    assert [fhir.get(f"/fhir/Observation/{o['id']}").status_code for o in obs] == [200, 200]


def test_a_resend_of_the_original_after_the_edit(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T02 (A, B), T08 (A, B'), the T02 resent (new control id): document and its text agree."""
    acks = send(engine, mdm_many("Z1", "T02", "", ["甲段", "乙段"], number="DOC-Z"),
                mdm_many("Z2", "T08", "", ["甲段", "乙段（改）"], number="DOC-Z"),
                mdm_many("Z3", "T02", "", ["甲段", "乙段"], number="DOC-Z"))
    assert [ack_code_of(a) for a in acks][:2] == ["AA", "AA"], acks
    (doc,) = written(engine, fhir, "Z2", "DocumentReference")
    now = fhir.get(f"/fhir/DocumentReference/{doc['id']}").json()
    lines = set()
    for c in now["content"]:
        if c["attachment"].get("contentType", "").startswith("text/plain"):
            lines |= set(base64.b64decode(c["attachment"]["data"]).decode().splitlines())
    patient = doc["subject"]["reference"].split("/", 1)[1]
    texts = fhir.get("/fhir/Observation", params={"patient": patient, "code": "18842-5"}).json()
    values = {e["resource"]["valueString"] for e in texts.get("entry") or ()}
    assert values == lines, (values, lines)


def _edited(doc: dict[str, Any], text: str) -> dict[str, Any]:
    body = {k: v for k, v in doc.items() if k != "meta"}
    att = {**body["content"][0]["attachment"], "data": base64.b64encode(text.encode()).decode()}
    body["content"] = [{**body["content"][0], "attachment": att}, *body["content"][1:]]
    return body


def test_a_bundle_editing_text_then_document_keeps_the_new_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """One transaction: PUT the text Observation with the corrected paragraph, then PUT the document
    with the same corrected content. The text just written agrees with the document: kept."""
    assert [ack_code_of(a) for a in send(engine, mdm("T1", "T02", "", "原段落", number="DOC-T"))] == ["AA"]
    (doc,) = written(engine, fhir, "T1", "DocumentReference")
    (text,) = written(engine, fhir, "T1", "Observation")
    new_text = {**{k: v for k, v in text.items() if k != "meta"}, "valueString": "更正段落"}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": new_text, "request": {"method": "PUT", "url": f"Observation/{text['id']}"}},
        {"resource": _edited(doc, "更正段落"), "request": {"method": "PUT", "url": f"DocumentReference/{doc['id']}"}}]}
    answer = fhir.post("/fhir", json=bundle, headers=_system(engine))
    assert answer.status_code == 200, answer.text
    got = fhir.get(f"/fhir/Observation/{text['id']}")
    assert got.status_code == 200 and got.json()["valueString"] == "更正段落", got.text


def test_a_failed_bundle_deletes_nothing(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A transaction whose later entry is refused stores nothing: the text is not deleted either."""
    assert [ack_code_of(a) for a in send(engine, mdm("U1", "T02", "", "原段落", number="DOC-U"))] == ["AA"]
    (doc,) = written(engine, fhir, "U1", "DocumentReference")
    (text,) = written(engine, fhir, "U1", "Observation")
    bad = {"resourceType": "Observation", "status": "nonsense-status", "code": {"text": "x"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _edited(doc, "新段落"), "request": {"method": "PUT", "url": f"DocumentReference/{doc['id']}"}},
        {"resource": bad, "request": {"method": "POST", "url": "Observation"}}]}
    answer = fhir.post("/fhir", json=bundle, headers=_system(engine))
    assert 400 <= answer.status_code < 500, answer.text
    assert fhir.get(f"/fhir/Observation/{text['id']}").status_code == 200


def test_a_clinician_note_survives_an_edit_on_mongomock(settings: Any) -> None:
    """The same clinician's-note deletion on the other backend (mongomock)."""
    from engine.api.app import create_app

    with Engine(settings.with_(mongodb_uri="mongomock://")) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("reader", "system/*.rs")
        assert [ack_code_of(a) for a in send(eng, mdm_many("M1", "T02", "", ["第一段"], number="DOC-MM"))] == ["AA"]
        (doc,) = written(eng, http, "M1", "DocumentReference")
        (text,) = written(eng, http, "M1", "Observation")
        note = {"resourceType": "Observation", "status": "final", "subject": doc["subject"],
                "code": {"text": "医生备注"}, "valueString": "患者要求复印",
                "derivedFrom": [{"reference": f"DocumentReference/{doc['id']}"}],
                "effectiveDateTime": "2026-12-01T08:00:00+08:00", "performer": text["performer"]}
        made = http.post("/fhir/Observation", json=note, headers=_user(eng, ["user/Observation.crus",
                                                                          "user/DocumentReference.rs"]))
        assert made.status_code == 201, made.text
        assert [ack_code_of(a) for a in send(eng, mdm_many("M2", "T08", "", ["第一段（改）"], number="DOC-MM"))] == ["AA"]
        assert http.get(f"/fhir/Observation/{made.json()['id']}").status_code == 200


def test_an_original_and_its_edit_in_one_batch_leave_the_edited_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T02 and its T08 arriving in one ingest batch (one write group): the text is what the edit left."""
    outcomes = engine.ingestor.process([
        (mdm_many("J1", "T02", "", ["第一段", "第二段（删）"], number="DOC-J"), "mllp", "test"),
        (mdm_many("J2", "T08", "", ["第一段"], number="DOC-J"), "mllp", "test")])
    assert len(outcomes) == 2
    (doc,) = written(engine, fhir, "J2", "DocumentReference")
    patient = doc["subject"]["reference"].split("/", 1)[1]
    texts = fhir.get("/fhir/Observation", params={"patient": patient, "code": "18842-5"}).json()
    assert sorted(e["resource"]["valueString"] for e in texts.get("entry") or ()) == ["第一段"]
