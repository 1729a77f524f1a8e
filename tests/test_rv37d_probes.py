"""rv37d: review probes of old37 (an MDM edit deletes the feed's copies of the paragraphs it dropped) and
perfi37 (``FhirBackend.carrying``, the owner's check's narrow read), thirty-seventh round.

Real HL7 over MLLP (``send``), real HTTP through FastAPI's TestClient, the real store on each backend
(SQLite, mongomock). A probe showing a defect is a strict xfail naming its severity.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.module_store import module_backend_eng, module_eng  # noqa: F401 -- fixtures
from tests.test_convert11_thinner import send
from tests.test_old37_document_paragraphs import _aa, _ids, mdm
from tests.test_perfi37_carrying import SYS, _carrying, _patient, _searched

carrying_engine = module_eng


@pytest.fixture
def both(backend_settings: Settings) -> Iterator[tuple[Engine, TestClient]]:
    """An engine on each backend and the real app over it, read with a system token."""
    with Engine(backend_settings) as eng, _reader(eng) as http:
        yield eng, http


@pytest.fixture(scope="module")
def module_both(module_backend_eng: Engine) -> Iterator[tuple[Engine, TestClient]]:  # noqa: F811
    """``both`` once a module and backend (``module_backend_eng``): for a parametrized test whose every parameter
    writes under names of its own (each had opened an engine; trim43)."""
    with _reader(module_backend_eng) as http:
        yield module_backend_eng, http


@contextlib.contextmanager
def _reader(eng: Engine) -> Iterator[TestClient]:
    """The real app over ``eng``, read with a system token."""
    from engine.api.app import create_app

    with TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("reader", "system/*.rs")
        yield http


def _doc(eng: Engine, http: TestClient, control: str) -> dict[str, Any]:
    from engine.messages import message_id

    listed = eng.ingestor.messages.get(message_id("FNXRMYY", control))["resources"]
    (ref,) = [r for r in listed if r.startswith("DocumentReference/")]
    return http.get(f"/fhir/{ref}").json()


def _texts(http: TestClient, doc: dict[str, Any]) -> list[str]:
    found = http.get("/fhir/Observation", params={"derived-from": f"DocumentReference/{doc['id']}", "_count": "100"})
    assert found.status_code == 200, found.text
    return sorted(e["resource"].get("valueString", "") for e in found.json().get("entry") or ())


def _lines(http: TestClient, doc: dict[str, Any]) -> list[str]:
    now = http.get(f"/fhir/DocumentReference/{doc['id']}").json()
    return sorted(line.strip() for c in now["content"]
                  if c["attachment"].get("contentType", "").startswith("text/plain")
                  for line in base64.b64decode(c["attachment"]["data"]).decode().splitlines() if line.strip())


# ---------------------------------------------------------------- old37: what an edit deletes


def test_an_edit_removing_a_middle_paragraph_leaves_each_paragraph_once(both: tuple[Engine, TestClient]) -> None:
    eng, http = both
    _aa(eng, mdm("MID1", "T02", ["第一段", "第二段（误）", "第三段"], number="DOC-MID"))
    doc = _doc(eng, http, "MID1")
    _aa(eng, mdm("MID2", "T08", ["第一段", "第三段"], number="DOC-MID"))
    assert _lines(http, doc) == ["第一段", "第三段"]
    assert _texts(http, doc) == ["第一段", "第三段"]


def test_an_older_original_arriving_late_does_not_bring_back_a_dropped_paragraph(
        both: tuple[Engine, TestClient]) -> None:
    eng, http = both
    _aa(eng, mdm("LO1", "T02", ["一段", "二段", "三段（删）"], number="DOC-LO", at="20261201090000"),
        mdm("LO2", "T08", ["一段", "二段"], number="DOC-LO", at="20261201110000"))
    doc = _doc(eng, http, "LO1")
    assert _texts(http, doc) == _lines(http, doc) == ["一段", "二段"]
    _aa(eng, mdm("LO3", "T02", ["一段", "二段", "三段（删）"], number="DOC-LO", at="20261201090000"))
    assert _lines(http, doc) == ["一段", "二段"]
    assert _texts(http, doc) == ["一段", "二段"]


_FT = "18842-5^出院小结^LN"


def _obx(n: int, kind: str, text: str) -> str:
    return f"OBX|{n}|{kind}|{_FT}||{text}||||||F\r"


@pytest.mark.parametrize("text", [r"第一行\.br\第二行", r"血压 140\F\90", "甲行~乙行", r"\.sp\缩进\.in+4\段", r"\H\重点\N\内容",
                                  r"第一\X0D0A\第二", r"路径 C:\E\data", "  前后空格  ~~  ", r"\.nf\  表格  \.fi\续"],
                         ids=["br", "escape", "repeats", "sp-in", "highlight", "hex", "escape-e", "blanks", "nf-fi"])
def test_an_edit_keeps_an_unchanged_formatted_paragraph(module_both: tuple[Engine, TestClient], text: str) -> None:
    """Guard: a paragraph sent the same in the edit (FT formatting, an escape, TX repetitions) is still the
    document's text: the line-by-line comparison with the stored content must not take it for dropped. (Each
    text its own documents and controls, ``tag``: the parameters share the module's engine.)"""
    eng, http = module_both
    tag = str(sum(map(ord, text)) % 10_000)
    first = mdm("FT1" + tag, "T02", [], number="DOC-FT" + tag, obx=_obx(1, "FT", text) + _obx(2, "TX", "乙"))
    edit = mdm("FT2" + tag, "T08", [], number="DOC-FT" + tag, obx=_obx(1, "FT", text) + _obx(2, "TX", "乙（改）"))
    _aa(eng, first, edit)
    ids = _ids(eng, "FT1" + tag)
    got = [http.get(f"/fhir/Observation/{o}") for o in ids]
    assert [g.status_code for g in got] == [200, 200], text
    # both are the converter's marked copies (so the judgment did weigh the formatted one)
    assert [[i["value"] for i in g.json().get("identifier") or ()] for g in got] == [["DOC-FT" + tag]] * 2
    assert "乙（改）" in _texts(http, _doc(eng, http, "FT1" + tag))


def test_an_edit_leaves_another_senders_document_of_the_same_number(both: tuple[Engine, TestClient]) -> None:
    """Guard: two institutions number their documents alike (TXA-12 ``DOC-SAME`` at each): one's edit
    dropping a paragraph deletes its own copy only, never the other's copy of the same words."""
    eng, http = both
    ours = mdm("SN1", "T02", ["共同段", "本院段"], number="DOC-SAME")
    theirs = mdm("SN1", "T02", ["共同段", "本院段"], number="DOC-SAME").replace(b"|FNXRMYY|", b"|FNZYY|")
    _aa(eng, ours, theirs)
    from engine.messages import message_id

    listed = eng.ingestor.messages.get(message_id("FNZYY", "SN1"))["resources"]
    other = [r for r in listed if r.startswith("Observation/")]
    assert len(other) == 2
    _aa(eng, mdm("SN2", "T08", ["共同段"], number="DOC-SAME"))
    assert [http.get(f"/fhir/Observation/{o}").status_code for o in _ids(eng, "SN1")] == [200, 410]
    assert [http.get(f"/fhir/{r}").status_code for r in other] == [200, 200]


def test_carrying_answers_the_search_for_case_blanks_and_a_number_reused(carrying_engine: Engine) -> None:
    """Guard (perfi37): a token differing only in case or outer blanks, a record deleted and written again
    under the same id, a record that moved its number to another record: ``carrying`` answers exactly
    what the search every page answers, on each backend."""
    repo = carrying_engine.repository
    n = "rv37d-Mrn-1"
    repo.update(_patient("RV37D-lower", (SYS, n.lower())))
    repo.update(_patient("RV37D-upper", (SYS, n.upper())))
    repo.update(_patient("RV37D-exact", (SYS, n)))
    repo.update(_patient("RV37D-blank", (SYS, f" {n} ")))
    repo.update(_patient("RV37D-again", (SYS, n)))
    repo.delete("Patient", "RV37D-again")
    repo.update(_patient("RV37D-again", (SYS, n)))
    repo.update(_patient("RV37D-from", (SYS, n)))
    repo.update(_patient("RV37D-from", (SYS, "rv37d-other")))
    for tokens in ([(SYS, n)], [(SYS, n.lower())], [(SYS, n.upper())], [(SYS, f" {n} ")], [(SYS, n), (SYS, n)],
                   [("", n)], [(SYS, "rv37d-other"), (SYS, n.upper())]):
        assert _carrying(carrying_engine, "Patient", "identifier", tokens) == _searched(
            carrying_engine, "Patient", "identifier", tokens, page=2), tokens
    assert [p["id"] for p in _carrying(carrying_engine, "Patient", "identifier", [(SYS, n)])] == [
        "RV37D-again", "RV37D-exact"]


def test_a_deleted_v_paragraph_reads_to_the_resident_as_a_withheld_one_does(both: tuple[Engine, TestClient]) -> None:
    """A V document's paragraph an edit dropped: to the resident (who may not see V text) its id reads as a
    V paragraph still stored does, and as an id never stored does -- a 410 there would tell him a withheld
    text of his existed and was removed (docs22's review: the log keeps it out of his view for that)."""
    from tests.test_mdm20_document_label import _readers

    eng, http = both
    _aa(eng, mdm("VR1", "T02", ["第一段", "第二段（精神科）", "第三段（HIV阳性）"], number="DOC-VR", conf="V"),
        mdm("VR2", "T08", ["第一段", "第二段（精神科）"], number="DOC-VR"))
    kept, gone = _ids(eng, "VR1")[1], _ids(eng, "VR1")[2]
    assert http.get(f"/fhir/Observation/{gone}").status_code == 410
    patient = _doc(eng, http, "VR1")["subject"]["reference"].split("/", 1)[1]
    resident = _readers(eng, patient)["resident"]
    withheld = http.get(f"/fhir/Observation/{kept}", headers=resident).status_code
    never = http.get("/fhir/Observation/rv37d-never-stored", headers=resident).status_code
    assert withheld in (403, 404) and withheld == never
    assert http.get(f"/fhir/Observation/{gone}", headers=resident).status_code == withheld
    history = http.get(f"/fhir/Observation/{gone}/_history", headers=resident)
    assert "HIV" not in history.text


def test_each_deletion_is_audited_once_on_each_backend(both: tuple[Engine, TestClient]) -> None:
    """Guard: the dropped paragraph's deletion is in the audit log on each backend (old37's own audit test runs
    on SQLite only): one delete naming the document and the copy, by the sending institution; none for a
    resent edit that deletes nothing."""
    eng, http = both
    _aa(eng, mdm("AU1", "T02", ["一段", "二段", "三段"], number="DOC-AU"), mdm("AU2", "T08", ["一段", "二段"], number="DOC-AU"))
    doc = _doc(eng, http, "AU1")
    gone = _ids(eng, "AU1")[2]
    assert http.get(f"/fhir/Observation/{gone}").status_code == 410
    patient = doc["subject"]["reference"].split("/", 1)[1]

    def deletes() -> list[dict[str, Any]]:
        found = http.get("/fhir/AuditEvent", params={"patient": patient, "_count": "200"})
        assert found.status_code == 200, found.text
        return [e["resource"] for e in found.json().get("entry") or ()
                if any(c.get("code") == "delete" for c in e["resource"].get("subtype") or ())]

    (record,) = deletes()
    assert f"Observation/{gone}" in str(record.get("entity")) and f"DocumentReference/{doc['id']}" in str(record["entity"])
    assert "FNXRMYY" in str(record.get("agent"))
    _aa(eng, mdm("AU3", "T08", ["一段", "二段"], number="DOC-AU"))
    assert len(deletes()) == 1


def test_an_edit_filed_under_another_patient_deletes_none_of_the_first_patients_text(
        both: tuple[Engine, TestClient]) -> None:
    """Guard: an edit of a document number stored for one patient sent under another patient's PID (a
    misfiled edit, a reused number): whatever the engine makes of it, no paragraph copy of the first patient
    is deleted by it (the judgment requires the copy's subject to be the document's)."""
    eng, http = both
    _aa(eng, mdm("PX1", "T02", ["甲患者一段", "甲患者二段"], number="DOC-PX"))
    first = _ids(eng, "PX1")
    other = mdm("PX2", "T08", ["乙患者一段"], number="DOC-PX").replace(
        b"PID|1||ZY17F^^^FNXRMYY^MR||\xe7\x8e\x8b^\xe5\xbb\xba\xe5\x9b\xbd||19850412|M",
        "PID|1||ZY37X^^^FNXRMYY^MR||李^秀英||19700101|F".encode())
    assert b"ZY37X" in other
    (ack,) = send(eng, other)
    assert b"MSA|AE|PX2" in ack and b"TXA^1^12" in ack, ack  # refused: the number is another patient's
    got = [http.get(f"/fhir/Observation/{o}") for o in first]
    assert [g.status_code for g in got] == [200, 200]
    assert {g.json()["valueString"] for g in got} == {"甲患者一段", "甲患者二段"}


_V3 = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def test_an_edit_after_the_office_raised_the_document_to_v_still_drops_the_paragraph(
        both: tuple[Engine, TestClient]) -> None:
    from tests.test_old37_document_paragraphs import _system

    eng, http = both
    _aa(eng, mdm("RV1", "T02", ["一段", "二段", "三段（误）"], number="DOC-RV"))
    doc = _doc(eng, http, "RV1")
    body = {k: v for k, v in doc.items() if k != "meta"}
    body["meta"] = {"security": [{"system": _V3, "code": "V"}]}
    put = http.put(f"/fhir/DocumentReference/{doc['id']}", json=body, headers=_system(eng))
    assert put.status_code == 200, put.text
    _aa(eng, mdm("RV2", "T08", ["一段", "二段"], number="DOC-RV"))
    assert _lines(http, doc) == ["一段", "二段"]
    assert http.get(f"/fhir/Observation/{_ids(eng, 'RV1')[2]}").status_code == 410
    assert _texts(http, doc) == ["一段", "二段"]
