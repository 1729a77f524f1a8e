"""docfix37: an MDM edit's text is the paragraph copies its message states (each copy's mark located at
TXA-12), not the copies whose words the text still holds; a message held as older than the stored text
(``until_later``) brings back no paragraph (review rv37d MED 1, MED 2; thirty-seventh round).

Real HL7 over MLLP (``send``), the real app over TestClient, the real store on SQLite and mongomock
(rv37d's ``both`` fixture).
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_convert11_thinner import send
from tests.test_old37_document_paragraphs import _aa, _ids, mdm
from tests.test_rv37d_probes import _doc, _lines, _texts, both  # noqa: F401

_SUMMARY = "18842-5^出院小结^LN"
_COURSE = "11506-3^病程记录^LN"


def _obx(n: int, code: str, text: str, kind: str = "TX") -> str:
    return f"OBX|{n}|{kind}|{code}||{text}||||||F\r"


def test_an_edit_recoding_a_paragraph_keeps_its_words_once(both: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """A paragraph the edit sends under another code (OBX-3), its words kept: the copy at the old code's
    place is no copy the edit states, though its words are still in the text."""
    eng, http = both
    _aa(eng, mdm("RC1", "T02", [], number="DOC-RC", obx=_obx(1, _SUMMARY, "甲段") + _obx(2, _SUMMARY, "乙段")))
    doc = _doc(eng, http, "RC1")
    _aa(eng, mdm("RC2", "T08", [], number="DOC-RC", obx=_obx(1, _COURSE, "甲段") + _obx(2, _SUMMARY, "乙段")))
    assert _lines(http, doc) == ["乙段", "甲段"]
    assert _texts(http, doc) == ["乙段", "甲段"]
    first = _ids(eng, "RC1")
    assert [http.get(f"/fhir/Observation/{o}").status_code for o in first] == [200, 410]


def test_a_second_edit_dropping_a_repeated_paragraph_leaves_it_as_often_as_sent(
        both: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """A short paragraph sent twice ("无"), the second edit dropping the middle one: the last place's
    copy, unchanged and not written again, is no longer stated -- the text reads "无" twice, not three
    times. The copies the second edit left unchanged (no new version) stay."""
    eng, http = both
    _aa(eng, mdm("RP1", "T02", ["无", "甲段", "无"], number="DOC-RP"),
        mdm("RP2", "T08", ["无", "甲段", "无"], number="DOC-RP"))
    doc = _doc(eng, http, "RP1")
    versions = {o: http.get(f"/fhir/Observation/{o}").json()["meta"]["versionId"] for o in _ids(eng, "RP1")}
    _aa(eng, mdm("RP3", "T08", ["无", "无"], number="DOC-RP"))
    assert _lines(http, doc) == _texts(http, doc) == ["无", "无"]
    first, kept = _ids(eng, "RP1"), _ids(eng, "RP3")
    assert [http.get(f"/fhir/Observation/{o}").status_code for o in first] == [200, 200, 410]
    assert http.get(f"/fhir/Observation/{first[0]}").json()["meta"]["versionId"] == versions[first[0]]
    assert kept == first[:2]


def test_an_older_original_replayed_repeats_no_paragraph(both: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """T02 at 09:00 [甲, 乙, 丙], T08 at 11:00 [甲, 丙], the T02 replayed: the place the edit moved 丙 to
    holds it, and the replay writes 丙 again at the place the edit dropped -- words the stored text holds,
    but once only: the replay's copy goes, the edit's stays. The ACK says what went (W)."""
    eng, http = both
    _aa(eng, mdm("OR1", "T02", ["甲段", "乙段", "丙段"], number="DOC-OR", at="20261201090000"),
        mdm("OR2", "T08", ["甲段", "丙段"], number="DOC-OR", at="20261201110000"))
    doc = _doc(eng, http, "OR1")
    first = _ids(eng, "OR1")
    assert _texts(http, doc) == _lines(http, doc) == ["丙段", "甲段"]
    (ack,) = send(eng, mdm("OR3", "T02", ["甲段", "乙段", "丙段"], number="DOC-OR", at="20261201090000"))
    assert b"MSA|AA|OR3" in ack, ack
    assert _lines(http, doc) == ["丙段", "甲段"]
    assert _texts(http, doc) == ["丙段", "甲段"]
    assert [http.get(f"/fhir/Observation/{o}").status_code for o in first] == [200, 200, 410]
    assert "no longer holds is not the document's text" in ack.decode(), ack


def test_an_edit_stating_no_paragraph_deletes_none(both: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """Guard: an edit carrying no text paragraph (a coded value only, ST: not the document's text, the
    stored content kept) states no copy of the text -- nothing of it is deleted, though the edit judges
    the document."""
    eng, http = both
    _aa(eng, mdm("NP1", "T02", ["甲段", "乙段"], number="DOC-NP"))
    doc = _doc(eng, http, "NP1")
    _aa(eng, mdm("NP2", "T08", [], number="DOC-NP", obx=_obx(1, "8302-2^身高^LN", "170", "ST")))
    assert _lines(http, doc) == ["乙段", "甲段"]
    assert [http.get(f"/fhir/Observation/{o}").status_code for o in _ids(eng, "NP1")] == [200, 200]
    assert {"乙段", "甲段"} <= set(_texts(http, doc))


def test_an_edit_resent_unchanged_deletes_none_and_writes_no_version(both: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """Guard: an edit sent again unchanged (a new control id): every copy is stated, none written again,
    none deleted."""
    eng, http = both
    _aa(eng, mdm("UN1", "T02", ["甲段", "乙段", "丙段"], number="DOC-UN"),
        mdm("UN2", "T08", ["甲段", "乙段"], number="DOC-UN"))
    doc = _doc(eng, http, "UN1")
    kept = _ids(eng, "UN2")
    versions = [http.get(f"/fhir/Observation/{o}").json()["meta"]["versionId"] for o in kept]
    _aa(eng, mdm("UN3", "T08", ["甲段", "乙段"], number="DOC-UN"))
    assert _texts(http, doc) == _lines(http, doc) == ["乙段", "甲段"]
    assert [http.get(f"/fhir/Observation/{o}").json()["meta"]["versionId"] for o in kept] == versions


_V3 = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def test_a_copy_the_office_corrected_after_the_rise_to_v_stays(both: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """Guard (rv37d LOW 3's fix): the records office raises the document to V (its copies relabelled, a
    client's write that changed only ``meta``), then corrects one copy's words by PUT: that copy is the
    office's record, not the feed's -- the feed's edit dropping its paragraph leaves it; the one only
    relabelled goes."""
    from tests.test_old37_document_paragraphs import _system

    eng, http = both
    _aa(eng, mdm("OC1", "T02", ["一段", "二段（误）", "三段（误）"], number="DOC-OC"))
    doc = _doc(eng, http, "OC1")
    body = {k: v for k, v in doc.items() if k != "meta"}
    body["meta"] = {"security": [{"system": _V3, "code": "V"}]}
    assert http.put(f"/fhir/DocumentReference/{doc['id']}", json=body, headers=_system(eng)).status_code == 200
    first = _ids(eng, "OC1")
    copy = http.get(f"/fhir/Observation/{first[1]}", headers=_system(eng)).json()
    assert [c["code"] for c in copy["meta"].get("security") or ()] == ["V"]
    corrected = {**{k: v for k, v in copy.items() if k != "meta"}, "meta": {"security": copy["meta"]["security"]},
                 "valueString": "二段（科室更正）"}
    put = http.put(f"/fhir/Observation/{first[1]}", json=corrected, headers=_system(eng))
    assert put.status_code == 200, put.text
    _aa(eng, mdm("OC2", "T08", ["一段"], number="DOC-OC"))
    assert [http.get(f"/fhir/Observation/{o}", headers=_system(eng)).status_code for o in first] == [200, 200, 410]
