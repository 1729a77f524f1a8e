"""Mending rvhl7mode29 and tidy29's HL7 finding (twenty-ninth round, hl7fix29): real bytes through ``POST /hl7v2``
(FastAPI's TestClient) into real engines on real data dirs, read back through the message store, ``/admin`` and
``/fhir``, the ``huren`` CLI run in-process.

* a message the repository holds as clinical data keeps its acceptance on replay (ERR I: its processing id would
  now be refused) and on an identical resend; one never accepted is judged;
* MSH-11.1 recorded on every stored message; the messages stored before without it counted once at start
  (logged, remembered), listed by ``GET /admin/quarantine?processing_id=`` and ``quarantine list --processing-id``;
* ``judge``: one call per message, none of its work for a plain ``P``;
* ``senders.yaml``'s declaration of an institution not in institutions.yaml stops the site load, naming it;
* a line that is no HL7 segment, or a second ``TXA`` in an ``MDM_T02``, refuses the message (AE 100 naming it),
  kept for replay, nothing stored; a Z-segment is still taken.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import engine.ingest as ingest_module
from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.processing import judge
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, message_id
from engine.settings import Settings
from mappings.site import Site, SiteError
from tests.refused_documents import SECRET, mdm
from tests.test_hl7mode29 import adt, errs, patients, post, write_senders


def client(engine: Engine) -> TestClient:
    c = TestClient(create_app(engine))
    c.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("fix29", "system/*.cruds")
    return c


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    with Engine(Settings(data_dir=tmp_path_factory.mktemp("fix29") / "var", http_port=0, mllp_port=0)) as eng, \
            client(eng) as c:
        yield eng, c


# --- finding 1 and 7: T accepted before, replayed, resent, counted, listed -----------------------------------

def test_t_messages_stored_before_keep_their_acceptance_and_are_counted_and_listed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "var"
    # the code before MSH-11 was judged stood for by a node taking T; its records without ``processing_id``
    with Engine(Settings(data_dir=data, http_port=0, mllp_port=0, processing_ids="P,T")) as old, client(old) as c:
        assert ack_code_of(post(c, adt("OLD2", "T"))) == "AA"
        assert ack_code_of(post(c, adt("OLD3", "D"))) == "AR"  # refused then too: not clinical data
        assert ack_code_of(post(c, adt("OLD4"))) == "AA"
        messages = old.ingestor.messages
        with old.store.transaction():
            for doc in messages.messages.find({}):
                messages.messages.replace({k: v for k, v in doc.items() if k != "processing_id"})
            messages.census.delete("processing-ids")
    caplog.set_level(logging.WARNING, logger="huren.ingest")
    with Engine(Settings(data_dir=data, http_port=0, mllp_port=0)) as eng, client(eng) as c:
        said = [r.getMessage() for r in caplog.records if "processing ID T/D" in r.getMessage()]
        assert len(said) == 1 and said[0].startswith("1 messages stored before with processing ID T/D (T: 1, D: 0")
        doc_id = message_id("FNXRMYY", "OLD2")
        assert eng.ingestor.messages.get(doc_id)["processing_id"] == "T"  # read from its raw MSH once
        assert eng.ingestor.messages.get(message_id("FNXRMYY", "OLD4"))["processing_id"] == "P"
        listed = c.get("/admin/quarantine", params={"processing_id": "T,D"}).json()
        assert {(i["control_id"], i["status"]) for i in listed["items"]} == {
            ("OLD2", PROCESSED), ("OLD3", QUARANTINED)} and listed["total"] == 2, listed
        assert c.get("/admin/quarantine", params={"processing_id": "X"}).status_code == 400
        # replayed: kept as accepted, its answer says the id would now be refused
        r = c.post(f"/admin/quarantine/{doc_id}/replay")
        assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
        notes = [e for e in r.json()["errors"] if e["code"] == "202"]
        assert [(e["severity"], e["location"]) for e in notes] == [("I", "MSH-11")], r.json()
        assert [e[2:5] for e in errs(r.json()["ack"].encode())] == [
            ["MSH^1^11", "202^Unsupported processing id^HL70357", "I"]], r.json()["ack"]
        assert "would now be refused" in notes[0]["message"]
        assert eng.ingestor.messages.get(doc_id)["status"] == PROCESSED and patients(c, "OLD2") == 1
        assert ack_code_of(post(c, adt("OLD2", "T"))) == "AA"  # the identical resend: the recorded answer
        # one never accepted is judged as any new message: refused again
        refused = c.post(f"/admin/quarantine/{message_id('FNXRMYY', 'OLD3')}/replay").json()
        assert refused["ack_code"] == "AR" and patients(c, "OLD3") == 0, refused
        # a new T message now: refused, recorded with its processing id
        assert ack_code_of(post(c, adt("NEW1", "T"))) == "AR"
        assert eng.ingestor.messages.get(message_id("FNXRMYY", "NEW1"))["processing_id"] == "T"
        # a record stored without the field after the count: a later start does not scan again
        stripped = {k: v for k, v in eng.ingestor.messages.get(message_id("FNXRMYY", "OLD4")).items()
                    if k != "processing_id"}
        with eng.store.transaction():
            eng.ingestor.messages.messages.replace(stripped)
    caplog.clear()
    monkeypatch.setenv("HUREN_DATA_DIR", str(data))
    from engine.cli import main

    assert main(["quarantine", "list", "--processing-id", "t,P"]) == 0
    out = capsys.readouterr().out
    # OLD4 (P, its field taken away after the count) is not listed: this start did not scan again
    assert out.startswith("2 with processing id P, T\n") and "NEW1" in out and "OLD2" in out, out
    assert "OLD4" not in out, out
    assert [r.getMessage()[:52] for r in caplog.records if "processing ID T/D" in r.getMessage()] == [
        "1 messages stored before with processing ID T/D (T: "]  # the count remembered


# --- finding 8: judged once per message, a plain P costs no work ------------------------------------------

def test_judge_runs_once_per_message_and_a_plain_p_is_the_shared_answer(
        world: tuple[Engine, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    _, http = world
    calls: list[str] = []

    def counted(processing_id: str, *args: Any) -> Any:
        calls.append(processing_id)
        return judge(processing_id, *args)

    monkeypatch.setattr(ingest_module, "judge", counted)
    assert ack_code_of(post(http, adt("J1"))) == "AA"
    assert ack_code_of(post(http, adt("J2", "P^T"))) == "AA"
    assert calls == ["P", "P^T"]
    site = world[0].site
    plain = judge("P", "^", "2.5.1", "FNXRMYY", "HIS", site, frozenset({"P"}))
    assert plain is judge("P", "^", "2.5.1", "X", "Y", site, frozenset({"P", "T"}))
    assert not plain.refusals and not plain.notes and plain.read_as == "P"
    # not for a node that does not take P
    assert [e.code for e in judge("P", "^", "2.5.1", "FNXRMYY", "HIS", site, frozenset({"T"})).refusals] == ["202"]


# --- finding 9: the declaration names institutions of the site ----------------------------------------------

def test_a_misspelt_institution_in_the_declaration_stops_the_site_load(tmp_path: Path) -> None:
    write_senders(tmp_path, {"FNXRMYY": ["LIS"], "FNXRMY": "*"})
    with pytest.raises(SiteError) as caught:
        Site.load(Settings(data_dir=tmp_path / "var", site=tmp_path))
    assert "'FNXRMY' is not in institutions.yaml" in str(caught.value) and "senders.yaml" in str(caught.value)
    assert "senders.yaml:2:" in str(caught.value), str(caught.value)  # its line (keys sorted)
    write_senders(tmp_path, {"FNXRMYY": ["LIS"]})
    Site.load(Settings(data_dir=tmp_path / "var", site=tmp_path))  # spelt right: loads


# --- tidy29's MED: a line cut from OBX-5 that reads as a segment -------------------------------------------

def documents(http: TestClient, identifier: str) -> list[str]:
    found = http.get("/fhir/DocumentReference", params={"identifier": identifier}).json()
    return [base64.b64decode(c["attachment"]["data"]).decode("utf-8")
            for e in found.get("entry", []) for c in e["resource"]["content"] if "data" in c["attachment"]]


@pytest.mark.parametrize(("control", "cut", "where"), [
    ("FX-HIV", "抗体确证试验阳性\rHIV||||||F", ["HIV^1", "100^Segment sequence error^HL70357", "E"]),
    ("FX-TXA", "抗体确证试验阳性\rTXA||||||F", ["TXA^2", "100^Segment sequence error^HL70357", "E"]),
    # (a second PID: ``convert.common.one_patient``'s, refused there on main already: a guard)
    ("FX-PID", "抗体确证试验阳性\rPID||||||F", ["PID^2", "100^Segment sequence error^HL70357", "E"]),
])
def test_a_document_text_cut_by_a_line_break_is_refused_not_stored_cut(
        world: tuple[Engine, TestClient], control: str, cut: str, where: list[str]) -> None:
    engine, http = world
    body = mdm(control, "U", "FNXRMYY").replace(SECRET.encode(), cut.encode())
    ack = post(http, body)
    assert ack_code_of(ack) == "AE", ack
    assert [e[2:5] for e in errs(ack)] == [where], ack
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc["status"] == QUARANTINED and base64.b64decode(doc["raw"]) == body  # kept for replay, as sent
    assert documents(http, f"PF27-{control}") == []


def test_the_whole_document_and_a_z_segment_are_taken(world: tuple[Engine, TestClient]) -> None:
    _, http = world
    body = mdm("FX-OK", "U", "FNXRMYY").replace(b"PV1|1|O\r", b"PV1|1|O\rZPV|1|\xe5\xa4\x87\xe6\xb3\xa8\r")
    assert ack_code_of(post(http, body)) == "AA"
    assert documents(http, "PF27-FX-OK") == [SECRET]
