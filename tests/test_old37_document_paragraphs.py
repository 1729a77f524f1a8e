"""An MDM edit's dropped paragraph is no longer the document's text, and only the feed's marked copies go
(thirty-seventh round, old37).

T08 is "the original document is edited" (HL7 v2.5 ch. 9) and carries the whole edited text: a paragraph
it removed was still searched and read as the document's text. Three rounds deleted such paragraphs and
were withdrawn (README, mdmmend20, docs21, docs22): they could not tell the feed's paragraph copy from a
clinician's note, a result that is no paragraph, an addendum's paragraph, or text a later edit wrote.
Now the converter marks each copy (``urn:huren:document-paragraph:<sender>|<TXA-12>``) and a batch hook
(``DocumentLabels.settled``) deletes the marked copies whose current version the feed stored, naming
that document alone, that the stored text no longer holds -- versions kept (410, ``_history``), each
deletion in the audit log. Real HL7 over MLLP (``send``), real HTTP through FastAPI's TestClient with
system, clinician and resident tokens, the SQLite store (and mongomock where named).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import PID
from tests.test_mdm20_document_label import _label, _readers

__all__ = ["fhir"]

_TEXT = "18842-5^出院小结^LN"
_NOTE = "11506-3^病程记录^LN"


def mdm(control: str, event: str, texts: list[str], *, number: str = "DOC-37", at: str = "20261201091500",
        conf: str = "", code: str = _TEXT, parent: str = "", obx: str = "") -> bytes:
    """An MDM with content (T02, T04, T06, T08, T10): one OBX TX a paragraph, MSH-7 ``at``."""
    return (f"MSH|^~\\&|EMR|FNXRMYY|HUREN|FNYGT|{at}||MDM^{event}^MDM_T02|{control}|P|2.5.1\r"
            f"EVN|{event}|{at}\r" + PID
            + f"TXA|1|DS^出院小结^HL70270|TX|20261201080000|||||D001^李^明|||{number}|{parent}|||m37.rtf|AU"
              f"|{conf}\r"
            + "".join(f"OBX|{n}|TX|{code}||{t}||||||F\r" for n, t in enumerate(texts, 1)) + obx).encode()


def _ids(engine: Engine, control: str) -> list[str]:
    """The Observations a message wrote (its listing: a deleted one reads 410, not as a resource)."""
    listed = engine.ingestor.messages.get(message_id("FNXRMYY", control))["resources"]
    return [r.split("/")[1] for r in listed if r.startswith("Observation/")]


def _system(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("records", "system/*.cruds")}


def _user(engine: Engine, name: str, scopes: list[str]) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=name, kind="user", client_id=name, scopes=scopes)
    return {"Authorization": f"Bearer {token}"}


def _texts(fhir: TestClient, doc: dict[str, Any]) -> list[str]:  # noqa: F811
    """The words of every Observation naming the document (its text, as a search finds it)."""
    found = fhir.get("/fhir/Observation", params={"derived-from": f"DocumentReference/{doc['id']}", "_count": "100"})
    assert found.status_code == 200, found.text
    return sorted(e["resource"].get("valueString", "") for e in found.json().get("entry") or ())


def _lines(fhir: TestClient, doc: dict[str, Any]) -> list[str]:  # noqa: F811
    now = fhir.get(f"/fhir/DocumentReference/{doc['id']}").json()
    return sorted(line for c in now["content"] if c["attachment"].get("contentType", "").startswith("text/plain")
                  for line in base64.b64decode(c["attachment"]["data"]).decode().splitlines())


def _aa(engine: Engine, *messages: bytes) -> None:
    acks = send(engine, *messages)
    assert [ack_code_of(a) for a in acks] == ["AA"] * len(messages), acks


def _deletes(fhir: TestClient, patient: str) -> list[dict[str, Any]]:  # noqa: F811
    found = fhir.get("/fhir/AuditEvent", params={"patient": patient, "_count": "200"})
    assert found.status_code == 200, found.text
    return [e["resource"] for e in found.json().get("entry") or ()
            if any(c.get("code") == "delete" for c in e["resource"].get("subtype") or ())]


def test_an_edit_deletes_the_dropped_paragraph_keeps_its_history_and_audits_it(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    _aa(engine, mdm("A1", "T02", ["第一段", "第二段（误诊）", "第三段"]))
    first = written(engine, fhir, "A1", "Observation")
    (doc,) = written(engine, fhir, "A1", "DocumentReference")
    marks = [i for o in first for i in o.get("identifier") or ()]
    assert [(m["system"], m["value"], m["type"]["coding"][0]["code"]) for m in marks] == [
        ("urn:huren:document-paragraph:FNXRMYY", "DOC-37", "original")] * 3, marks
    _aa(engine, mdm("A2", "T08", ["第一段", "第二段（改）"]))
    assert _texts(fhir, doc) == _lines(fhir, doc) == ["第一段", "第二段（改）"]
    # each paragraph is kept at its place (OBX-1 for the second of one code): the third place went
    dropped = first[2]
    assert dropped["valueString"] == "第三段" and dropped["id"] not in _ids(engine, "A2")
    assert fhir.get(f"/fhir/Observation/{dropped['id']}").status_code == 410
    history = fhir.get(f"/fhir/Observation/{dropped['id']}/_history").json()
    assert "第三段" in [(e.get("resource") or {}).get("valueString") for e in history.get("entry") or ()]
    patient = doc["subject"]["reference"].split("/", 1)[1]
    (deleted,) = _deletes(fhir, patient)
    named = str(deleted.get("entity"))
    assert f"Observation/{dropped['id']}" in named and f"DocumentReference/{doc['id']}" in named, deleted
    assert "FNXRMYY" in str(deleted.get("agent")), deleted.get("agent")
    assert deleted.get("action") == "D", deleted
    # the resent edit deletes nothing more and records nothing more
    _aa(engine, mdm("A3", "T08", ["第一段", "第二段（改）"]))
    assert len(_deletes(fhir, patient)) == 1


def test_a_note_copying_the_mark_and_a_copy_a_client_corrected_stay(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A clinician's note carrying the paragraph mark itself (subject, performer, derivedFrom as a copy's),
    and a copy the records office corrected by PUT (its mark kept): both the clients' records, not the
    feed's copies -- a T08 leaving their words out deletes neither."""
    _aa(engine, mdm("N1", "T02", ["甲段", "乙段", "丙段"]))
    (doc,) = written(engine, fhir, "N1", "DocumentReference")
    copies = {o["valueString"]: o for o in written(engine, fhir, "N1", "Observation")}
    clinician = _user(engine, "dr-37", ["user/Observation.crus", "user/DocumentReference.rs", "user/Patient.rs"])
    note = {k: v for k, v in copies["甲段"].items() if k not in ("id", "meta")}
    note["valueString"] = "医生备注：患者要求复印"
    made = fhir.post("/fhir/Observation", json=note, headers=clinician)
    assert made.status_code == 201, made.text
    assert made.json()["identifier"] == copies["甲段"]["identifier"]
    corrected = {**{k: v for k, v in copies["乙段"].items() if k != "meta"}, "valueString": "乙段（病案室更正）"}
    put = fhir.put(f"/fhir/Observation/{corrected['id']}", json=corrected, headers=_system(engine))
    assert put.status_code == 200, put.text
    _aa(engine, mdm("N2", "T08", ["甲段（改）"]))
    assert fhir.get(f"/fhir/Observation/{made.json()['id']}").status_code == 200
    assert fhir.get(f"/fhir/Observation/{corrected['id']}").json()["valueString"] == "乙段（病案室更正）"
    assert fhir.get(f"/fhir/Observation/{copies['丙段']['id']}").status_code == 410  # the feed's own copy went
    assert "甲段（改）" in _texts(fhir, doc)


def test_an_addendum_under_its_parents_number_neither_drops_nor_is_dropped(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T06 sent under its parent's TXA-12 (an addendum is an addition, v2.5 ch. 9): its own text does not
    make the parent's paragraphs stale, and the parent's next edit does not drop the addendum's paragraph."""
    _aa(engine, mdm("D1", "T02", ["原文一", "原文二"], number="DOC-AD"))
    (doc,) = written(engine, fhir, "D1", "DocumentReference")
    parent = written(engine, fhir, "D1", "Observation")
    _aa(engine, mdm("D2", "T06", ["补充记录"], number="DOC-AD", code=_NOTE))
    (added,) = written(engine, fhir, "D2", "Observation")
    assert [(m["system"], m["value"]) for m in added["identifier"]] == [("urn:huren:document-addendum:FNXRMYY", "DOC-AD")]
    assert [fhir.get(f"/fhir/Observation/{o['id']}").status_code for o in parent] == [200, 200]
    _aa(engine, mdm("D3", "T08", ["原文一"], number="DOC-AD"))
    assert fhir.get(f"/fhir/Observation/{added['id']}").status_code == 200
    assert [fhir.get(f"/fhir/Observation/{o['id']}").status_code for o in parent] == [200, 410]


def test_an_older_edit_arriving_late_leaves_the_later_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T02 at 09:00, its edit at 11:00, then an edit of 10:00 arriving late (a queue, a replay): the
    document keeps the 11:00 text (``masterIdentifier: until_later``), and its paragraphs agree with it --
    the late edit's paragraph is no text of the document, the 11:00 one stays."""
    _aa(engine, mdm("O1", "T02", ["一段", "二段"], number="DOC-OL", at="20261201090000"),
        mdm("O2", "T08", ["一段", "二段（11点）"], number="DOC-OL", at="20261201110000"))
    (doc,) = written(engine, fhir, "O1", "DocumentReference")
    acks = send(engine, mdm("O3", "T08", ["一段", "二段（10点）", "三段（10点）"], number="DOC-OL",
                            at="20261201100000"))
    assert ack_code_of(acks[0]) == "AA", acks
    assert _lines(fhir, doc) == ["一段", "二段（11点）"]
    assert _texts(fhir, doc) == ["一段", "二段（11点）"]
    # the third paragraph the late edit wrote is no text of the document: deleted, and the ACK says so
    late = _ids(engine, "O3")
    assert [fhir.get(f"/fhir/Observation/{o}").status_code for o in late] == [200, 200, 410]
    assert b"no longer holds is not the document's text" in acks[0], acks[0]


@pytest.mark.parametrize(("first", "edit"), [("V", ""), ("", "V")])
def test_a_v_document_edit_drops_the_paragraph_out_of_the_residents_view(
        engine: Engine, fhir: TestClient, first: str, edit: str) -> None:  # noqa: F811
    """A V document's edit dropping a paragraph (V from the first, or the edit raising it): deleted as any,
    and its deletion record names no patient (the resident's view of the log would tell him a withheld
    text of his existed: docs22's review)."""
    _aa(engine, mdm("V1", "T02", ["第一段", "第二段（HIV阳性）"], number="DOC-V", conf=first),
        mdm("V2", "T08", ["第一段（改）"], number="DOC-V", conf=edit))
    (doc,) = written(engine, fhir, "V1", "DocumentReference")
    first = _ids(engine, "V1")
    assert [fhir.get(f"/fhir/Observation/{o}").status_code for o in first] == [200, 410]
    patient = doc["subject"]["reference"].split("/", 1)[1]
    assert _deletes(fhir, patient) == []
    resident = _readers(engine, patient)["resident"]
    mine = fhir.get("/fhir/AuditEvent", params={"patient": patient, "_count": "200"}, headers=resident)
    assert mine.status_code == 200 and first[1] not in mine.text and "delete" not in mine.text
    assert _label(fhir.get(f"/fhir/Observation/{first[0]}").json()) == {"V"}


def test_an_edit_keeps_an_st_result_and_a_put_deletes_nothing(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """An ST result (no paragraph: not marked) beside the text stays through an edit; the records
    office's PUT of a shorter text deletes none of the feed's copies (only the feed's edit judges)."""
    _aa(engine, mdm("S1", "T02", ["第一段", "第二段"], number="DOC-ST", obx="OBX|3|ST|29548-5^诊断^LN||高血压||||||F\r"))
    (doc,) = written(engine, fhir, "S1", "DocumentReference")
    obs = {o["valueString"]: o for o in written(engine, fhir, "S1", "Observation")}
    assert "identifier" not in obs["高血压"], obs["高血压"]
    body = {k: v for k, v in fhir.get(f"/fhir/DocumentReference/{doc['id']}").json().items() if k != "meta"}
    body["content"] = [{"attachment": {**body["content"][0]["attachment"],
                                       "data": base64.b64encode("第一段".encode()).decode()}}]
    assert fhir.put(f"/fhir/DocumentReference/{doc['id']}", json=body, headers=_system(engine)).status_code == 200
    assert fhir.get(f"/fhir/Observation/{obs['第二段']['id']}").status_code == 200
    _aa(engine, mdm("S2", "T08", ["第一段（改）"], number="DOC-ST"))
    assert fhir.get(f"/fhir/Observation/{obs['高血压']['id']}").status_code == 200
    assert fhir.get(f"/fhir/Observation/{obs['第二段']['id']}").status_code == 410


def test_a_client_identifier_of_the_wrong_shape_is_refused_not_a_500(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    _aa(engine, mdm("B1", "T02", ["甲", "乙"], number="DOC-B37"))
    (text,) = written(engine, fhir, "B1", "Observation")[:1]
    bad = {**{k: v for k, v in text.items() if k != "meta"}, "identifier": 5}
    answer = fhir.put(f"/fhir/Observation/{text['id']}", json=bad, headers=_system(engine))
    assert 400 <= answer.status_code < 500, answer.text
    _aa(engine, mdm("B2", "T08", ["甲"], number="DOC-B37"))


def test_the_edit_on_mongomock(settings: Any) -> None:
    from engine.api.app import create_app

    with Engine(settings.with_(mongodb_uri="mongomock://")) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("reader", "system/*.rs")
        _aa(eng, mdm("M1", "T02", ["第一段", "第二段"], number="DOC-M37"), mdm("M2", "T08", ["第一段"], number="DOC-M37"))
        (doc,) = written(eng, http, "M1", "DocumentReference")
        first = _ids(eng, "M1")
        assert [http.get(f"/fhir/Observation/{o}").status_code for o in first] == [200, 410]
        assert _texts(http, doc) == _lines(http, doc) == ["第一段"]


def test_an_original_resent_thinner_drops_nothing(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T02 resent with one paragraph fewer (a resend may be thinner; docs21's review: not an edit): no
    paragraph of the document is deleted; an edit afterwards judges them all."""
    _aa(engine, mdm("R1", "T02", ["一段", "二段"], number="DOC-RS"), mdm("R2", "T02", ["一段"], number="DOC-RS"))
    (doc,) = written(engine, fhir, "R1", "DocumentReference")
    first = _ids(engine, "R1")
    assert [fhir.get(f"/fhir/Observation/{o}").status_code for o in first] == [200, 200]
    _aa(engine, mdm("R3", "T08", ["一段"], number="DOC-RS"))
    assert [fhir.get(f"/fhir/Observation/{o}").status_code for o in first] == [200, 410]
    assert _texts(fhir, doc) == _lines(fhir, doc) == ["一段"]


def test_a_second_edit_resending_its_paragraphs_unchanged_still_drops_one(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """T08 (A, B), then T08 (A): A is not written again (unchanged, the edit's mark already), the document
    alone is -- its stored copies are all an edit's, so B goes."""
    _aa(engine, mdm("E1", "T02", ["甲", "乙"], number="DOC-EE"), mdm("E2", "T08", ["甲", "乙（改）"], number="DOC-EE"))
    first = _ids(engine, "E2")
    _aa(engine, mdm("E3", "T08", ["甲"], number="DOC-EE"))
    assert _ids(engine, "E3") == first[:1]
    assert [fhir.get(f"/fhir/Observation/{o}").status_code for o in first] == [200, 410]


def test_an_imaging_report_documents_results_are_not_marked(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: an MDM carrying its order (OBR before the OBX): its results are the report's (the report's
    rules say which lines stand, ``lines_of``), so none is a marked copy and an edit deletes none -- a
    deleted one would leave the report citing it."""
    obr = "OBR|1|ORD-37|ACC-37|CT001^胸部CT^L|||20261201080000||||||||||||||||||F\r"
    first = mdm("I1", "T02", [], number="DOC-IM", obx=obr + "OBX|1|TX|FINDINGS^所见^L||双肺纹理增多||||||F\r"
                "OBX|2|TX|IMP^印象^L||右肺小结节||||||F\r")
    edit = mdm("I2", "T08", [], number="DOC-IM", obx=obr + "OBX|1|TX|FINDINGS^所见^L||双肺纹理增多（复核）||||||F\r")
    _aa(engine, first, edit)
    ids = _ids(engine, "I1")
    assert len(ids) == 2 and [fhir.get(f"/fhir/Observation/{o}").status_code for o in ids] == [200, 200]
    assert not [o for o in ids if fhir.get(f"/fhir/Observation/{o}").json().get("identifier")]


def test_a_paragraph_its_sender_withdrew_stays_as_withdrawn(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: an edit withdrawing a paragraph (OBX-11 W, post original as wrong) rather than leaving it out: the
    copy is the record of that withdrawal (entered-in-error), not deleted; the paragraph left out goes."""
    _aa(engine, mdm("W1", "T02", ["一段", "二段", "三段"], number="DOC-WD"),
        mdm("W2", "T08", ["一段（改）"], number="DOC-WD", obx="OBX|2|TX|18842-5^出院小结^LN||二段||||||W\r"))
    ids = _ids(engine, "W1")
    got = [fhir.get(f"/fhir/Observation/{o}") for o in ids]
    assert [g.status_code for g in got] == [200, 200, 410], [g.text for g in got]
    assert got[1].json()["status"] == "entered-in-error", got[1].json()
