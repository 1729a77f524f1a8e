"""rvregistry34: review probes of registry34's registrations table (who may restate a person).

Real HL7 over ``POST /hl7v2``, the operator's replay, FHIR over ``/fhir`` (single writes and Bundles) into
the real store, SQLite and mongomock (one engine a module and backend). Each probe drives a case the old
walk's tests and reviews pinned (regapp33, regfix33, rvregapp33) and checks two things: the ACK the
restating message gets, and that the registrar's answer from the table (``persons._registered``) is the
answer the walk (``persons._walked``, the code before the table, kept unchanged) gives for the same
record on the same store. A probe showing a defect is a strict xfail naming its severity."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import mongomock
import pymongo.errors
import pytest
from fastapi.testclient import TestClient

import adapters.convert.persons as persons
from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import PROCESSED, MessageStore, error_to_dict, message_id, now_iso
from engine.repository import trail, versioning
from engine.repository.trail import TRAIL_MARKS
from engine.settings import Settings
from tests.hl7_calls import mllp, post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, adt, oru, patients

both = engine_and_client("rv34")


def _pid(http: TestClient, number: str) -> str:
    (p,) = patients(http, f"{MRN}|{number}")
    return f"Patient/{p['id']}"


def _answers(engine: Engine, ref: str, declared: tuple[str, ...] = ()) -> tuple[str | None, str | None]:
    """(the registrar as the code answers now, as the walk -- the code before the table -- answers)."""
    repo, messages = engine.ingestor.repository, engine.ingestor.messages
    return (persons._registered(ref, repo.search, messages, declared),
            persons._walked(ref, repo.search, messages, declared, repo))


def _marked(engine: Engine, ref: str) -> bool:
    return engine.store.collection(TRAIL_MARKS).holds(ref)


def _ops(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}


def _provenance_of(engine: Engine, control: str) -> str:
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    (prov,) = [r for r in doc["resources"] if r.startswith("Provenance/")]
    return prov


# --- FHIR clients changing the trail through a Bundle --------------------------------------------------


def test_a_bundle_deleting_the_registration_provenance_marks_the_record(both: tuple[Engine, TestClient]) -> None:
    """regfix33 pinned: a registration Provenance deleted over FHIR leaves who registered the record "cannot
    be told" -- even the HIS's own restatement is refused. A transaction Bundle's DELETE entry is the same
    deletion as ``DELETE /fhir/Provenance/<id>``: the record is marked in the Bundle's transaction and the
    table's row (the HIS) is not believed alone."""
    engine, http = both
    assert ack_code_of(post(http, adt("RVB1", "RVB^^^FNXRMYY^MR", "卫^一", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, oru("RVB2", "RVB^^^FNXRMYY^MR", "卫^一", "19610101", "M", "RVBGLU"))) == "AA"
    ref = _pid(http, "RVB")
    prov = _provenance_of(engine, "RVB1")
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"request": {"method": "DELETE", "url": prov}}]}
    r = http.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    assert http.get(f"/fhir/{prov}").status_code == 410
    assert _marked(engine, ref)
    assert _answers(engine, ref) == (None, None)
    ack = post(http, adt("RVB3", "RVB^^^FNXRMYY^MR", "韦^二", "19920202", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE" and b"PID^1^3" in ack, ack
    ack = post(http, adt("RVB4", "RVB^^^FNXRMYY^MR", "韦^二", "19920202", "F", event="A08"))
    assert ack_code_of(ack) == "AE", ack


def test_a_provenance_retargeted_over_fhir_marks_its_old_target_too(both: tuple[Engine, TestClient]) -> None:
    """rvregapp33 finding 8 / regfix33: a client PUTs the HIS A04's Provenance of RVX with the LIS-registered
    RVH as its target. RVH (the new target) and RVX (the target the version replaced names) are both marked:
    for each the code answers what the walk answers, and the HIS's A08 restating RVH is refused."""
    engine, http = both
    assert ack_code_of(post(http, adt("RVX1", "RVX^^^FNXRMYY^MR", "韩^一", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, adt("RVH1", "RVH^^^FNXRMYY^MR", "杨^一", "19650505", "F", app="LIS"))) == "AA"
    rvx, rvh = _pid(http, "RVX"), _pid(http, "RVH")
    prov = _provenance_of(engine, "RVX1")
    body = http.get(f"/fhir/{prov}").json()
    body["target"] = [{"reference": rvh}]
    r = http.put(f"/fhir/{prov}", json=body)
    assert r.status_code == 200, r.text
    assert _marked(engine, rvh) and _marked(engine, rvx)
    for ref in (rvx, rvh):
        table, walk = _answers(engine, ref)
        assert table == walk, (ref, table, walk)
    ack = post(http, adt("RVH2", "RVH^^^FNXRMYY^MR", "沈^二", "19920202", "M", event="A08"))
    assert ack_code_of(ack) == "AE", ack


def test_a_batch_bundles_provenance_naming_a_record_marks_it(both: tuple[Engine, TestClient]) -> None:
    """A ``batch`` Bundle (each entry its own write) POSTing a Provenance that names the HIS-registered RVY
    by an absolute, versioned reference marks RVY, as a single POST does: the walk answers it (a
    Provenance of no message: "cannot be told"), so the LIS's A08 restating RVY is refused."""
    engine, http = both
    assert ack_code_of(post(http, adt("RVY1", "RVY^^^FNXRMYY^MR", "贾^一", "19610101", "M"))) == "AA"
    ref = _pid(http, "RVY")
    prov = {"resourceType": "Provenance", "recorded": "2026-12-01T10:00:00+08:00",
            "target": [{"reference": f"https://huren.example/fhir/{ref}/_history/1"}],
            "agent": [{"who": {"display": "ward clerk"}}]}
    bundle = {"resourceType": "Bundle", "type": "batch",
              "entry": [{"resource": prov, "request": {"method": "POST", "url": "Provenance"}}]}
    r = http.post("/fhir", json=bundle)
    assert r.status_code == 200 and r.json()["entry"][0]["response"]["status"].startswith("201"), r.text
    assert _marked(engine, ref)
    table, walk = _answers(engine, ref)
    assert table == walk, (table, walk)
    ack = post(http, adt("RVY2", "RVY^^^FNXRMYY^MR", "夏^二", "19920202", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack


# --- the operator's replays ---------------------------------------------------------------------------


def test_a_filed_registration_corrected_to_another_patient_keeps_the_walks_answer(
        both: tuple[Engine, TestClient]) -> None:
    """The HIS's A04 for RVC is filed; the operator replays it corrected to RVE (the same MSH-3/4/10). The
    Provenance keyed by the message is rewritten to name RVE's resources. For RVC (its A04 no longer
    naming it) and RVE alike the code answers what the walk answers -- RVC marked by the reopen."""
    engine, http = both
    assert ack_code_of(post(http, oru("RVC0", "RVC^^^FNXRMYY^MR", "何^一", "19610101", "M", "RVCGLU"))) == "AA"
    assert ack_code_of(post(http, adt("RVC1", "RVC^^^FNXRMYY^MR", "何^一", "19610101", "M"))) == "AA"
    rvc = _pid(http, "RVC")
    corrected = adt("RVC1", "RVE^^^FNXRMYY^MR", "吕^二", "19720202", "F")
    r = http.post(f"/admin/quarantine/{message_id('FNXRMYY', 'RVC1')}/replay", headers=_ops(engine),
                  content=corrected.encode("utf-8"))
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    rve = _pid(http, "RVE")
    assert _marked(engine, rvc)
    for ref in (rvc, rve):
        table, walk = _answers(engine, ref)
        assert table == walk, (ref, table, walk)


def test_a_replayed_same_sender_conflict_answers_as_the_walk(both: tuple[Engine, TestClient]) -> None:
    """rvregapp33 finding 3 / regfix33: the HIS's counter restarts; its A04 for RVG reuses RVF's MSH-10 and is
    quarantined as a conflict; the operator replays it (keyed apart: its own Provenance). RVF stays the
    HIS's, RVG is the HIS's: table and walk agree, and the LIS's A08 restating either is refused."""
    engine, http = both
    assert ack_code_of(post(http, adt("RVF1", "RVF^^^FNXRMYY^MR", "朱^一", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, oru("RVF2", "RVF^^^FNXRMYY^MR", "朱^一", "19610101", "M", "RVFGLU"))) == "AA"
    ack = post(http, adt("RVF1", "RVG^^^FNXRMYY^MR", "秦^二", "19720202", "F"))
    assert ack_code_of(ack) != "AA", ack
    conflicts = engine.store.collection("hl7_messages").find({"conflict_of": message_id("FNXRMYY", "RVF1")})
    assert len(conflicts) == 1, conflicts
    r = http.post(f"/admin/quarantine/{conflicts[0]['_id']}/replay", headers=_ops(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    rvf, rvg = _pid(http, "RVF"), _pid(http, "RVG")
    assert _answers(engine, rvf) == ("HIS", "HIS")
    assert _answers(engine, rvg) == ("HIS", "HIS")
    for number, control, sex in (("RVF", "RVF3", "F"), ("RVG", "RVG3", "M")):
        ack = post(http, adt(control, f"{number}^^^FNXRMYY^MR", "孔^三", "19930303", sex, event="A08", app="LIS"))
        assert ack_code_of(ack) == "AE", ack


# --- first received across applications, declared later ------------------------------------------------


def test_first_received_and_a_declared_application_answer_as_the_walk(both: tuple[Engine, TestClient]) -> None:
    """The LIS's walk-in A04 registers RVL before the HIS's A04 does; a result names it too. Nothing
    declared: the LIS (first received), as the walk. Declared later (HIS, TJXT): the HIS -- read from the
    same rows as the walk reads the same messages (rvregapp33 finding 5)."""
    engine, http = both
    assert ack_code_of(post(http, adt("RVL1", "RVL^^^FNXRMYY^MR", "曹^一", "19610101", "M", app="LIS"))) == "AA"
    assert ack_code_of(post(http, oru("RVL2", "RVL^^^FNXRMYY^MR", "曹^一", "19610101", "M", "RVLGLU"))) == "AA"
    assert ack_code_of(post(http, adt("RVL3", "RVL^^^FNXRMYY^MR", "曹^一", "19610101", "M"))) == "AA"
    ref = _pid(http, "RVL")
    assert _answers(engine, ref) == ("LIS", "LIS")
    assert _answers(engine, ref, ("HIS", "TJXT")) == ("HIS", "HIS")
    assert _answers(engine, ref, ("TJXT",)) == ("LIS", "LIS")


def test_a_placeholder_and_an_unknown_record_answer_as_the_walk(both: tuple[Engine, TestClient]) -> None:
    """A result's placeholder (no registration) reads "unregistered", a record a FHIR client made and no
    message names reads "no message names it", a record absent reads the same: table and walk alike."""
    engine, http = both
    assert ack_code_of(post(http, oru("RVP1", "RVP^^^FNXRMYY^MR", "严^一", "19610101", "M", "RVPGLU"))) == "AA"
    ref = _pid(http, "RVP")
    assert _answers(engine, ref) == (persons._UNREGISTERED, persons._UNREGISTERED)
    r = http.put("/fhir/Patient/rv34-client", json={"resourceType": "Patient", "id": "rv34-client",
                                                    "name": [{"text": "华二"}], "gender": "female"})
    assert r.status_code in (200, 201), r.text
    assert _answers(engine, "Patient/rv34-client") == (persons._UNSPOKEN, persons._UNSPOKEN)
    assert _answers(engine, "Patient/rv34-absent") == (persons._UNSPOKEN, persons._UNSPOKEN)


# --- a store filed before the table -----------------------------------------------------------------------


class _AheadClock:
    """``engine.repository.versioning``'s ``time`` as a host whose clock ran ``ahead`` seconds fast (a
    county server without NTP, stepped back at the restart that installs the new release)."""

    def __init__(self, ahead: int) -> None:
        self.ahead_ns = ahead * 1_000_000_000

    def time_ns(self) -> int:
        return time.time_ns() + self.ahead_ns

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _before_the_table(engine: Engine) -> None:
    """The store as the code before registry34 left it: no registrations rows, no epoch, no marks."""
    with engine.store.transaction():
        for name in ("hl7_registrations", TRAIL_MARKS):
            rows = engine.store.collection(name)
            for row in rows.find({}):
                rows.delete(row["_id"])
        engine.store.collection("hl7_census").delete("registrations")


def test_a_record_filed_before_the_table_under_a_fast_clock_is_still_answered_by_the_walk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the upgrade the host's clock ran 10 minutes fast: the HIS registered RVK, the LIS's result
    named it (their versions' ``meta.lastUpdated`` 10 minutes ahead). The upgrade's restart steps the clock
    back and the new code opens the store (epoch ``since``: now). RVK was registered by a message the table
    never saw, yet its first version reads younger than the table: the table's empty word ("unregistered")
    answers and the LIS's A08 restating the HIS's patient as another person is accepted. Expected: the
    walk's answer, the HIS, and AE."""
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)
    with monkeypatch.context() as fast:
        fast.setattr(versioning, "time", _AheadClock(600))
        with Engine(settings) as engine, TestClient(create_app(engine)) as http:
            http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv34", "system/*.cruds")
            assert ack_code_of(post(http, adt("RVK1", "RVK^^^FNXRMYY^MR", "冯^一", "19610101", "M"))) == "AA"
            assert ack_code_of(post(http, oru("RVK2", "RVK^^^FNXRMYY^MR", "冯^一", "19610101", "M",
                                              "RVKGLU"))) == "AA"
            _before_the_table(engine)
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv34", "system/*.cruds")
        assert engine.ingestor.messages.registrations_epoch()["predates"] is True
        ref = _pid(http, "RVK")
        assert _answers(engine, ref)[1] == "HIS"  # the walk: the HIS's A04, first received
        ack = post(http, adt("RVK3", "RVK^^^FNXRMYY^MR", "陈^二", "19920202", "F", event="A08", app="LIS"))
        assert ack_code_of(ack) == "AE" and b"PID^1^3" in ack, ack
        assert _answers(engine, ref) == ("HIS", "HIS")


def _old_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the release before registry34 does when it files: no registrations row, no trail mark (it has
    neither), no stamp on the filed document, and no epoch check -- it never looks at ``hl7_census``'
    registrations document."""
    monkeypatch.setattr(MessageStore, "note_registrations", lambda self, doc_id, doc, records: None)
    monkeypatch.setattr(trail, "mark", lambda store, refs, why: None)
    monkeypatch.setattr(MessageStore, "mark_processed", _old_mark_processed)


def _old_mark_processed(self: MessageStore, doc_id: str, *, ack_code: str, warnings: Any, resources: list[str],
                        attempts: int, current: Any = None, unstored: Any = None, **newer: Any) -> None:
    """``MessageStore.mark_processed`` of the release before the table (regfix34: this release stamps each
    filing as seen by the table; that one did not). ``newer``: what later releases' ingest passes besides
    (``held``, ``decided``, ``unchanged``: ord40, ordfix40, stfix40), which that release had no use for."""
    self._set(doc_id, current, {
        "status": PROCESSED, "ack_code": ack_code, "errors": [error_to_dict(e) for e in warnings], "reason": None,
        "processed_at": now_iso(), "resources": resources, "attempts": attempts,
    }, unstored)


def test_a_rollback_and_upgrade_again_keeps_the_old_releases_registrations(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A site installs this release on a new store (epoch: no filing before it), rolls back to the release
    before (a bad day: rollbacks are routine), during which the HIS registers RVR and the LIS's result
    names it, then upgrades again. RVR's registration is in no row; nothing tells the new code the table
    missed a filing, so RVR reads "unregistered" and the LIS's A08 restating the HIS's patient as another
    person is accepted. Expected: the walk's answer (the HIS) and AE -- e.g. each filing marks its
    document as noted, and the start finds the newest filing not noted (one indexed read)."""
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)
    with Engine(settings) as engine:
        assert engine.ingestor.messages.registrations_epoch()["predates"] is False
    with monkeypatch.context() as old:
        _old_release(old)
        with Engine(settings) as engine, TestClient(create_app(engine)) as http:
            http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv34", "system/*.cruds")
            assert ack_code_of(post(http, adt("RVR1", "RVR^^^FNXRMYY^MR", "褚^一", "19610101", "M"))) == "AA"
            assert ack_code_of(post(http, oru("RVR2", "RVR^^^FNXRMYY^MR", "褚^一", "19610101", "M",
                                              "RVRGLU"))) == "AA"
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv34", "system/*.cruds")
        ref = _pid(http, "RVR")
        assert _answers(engine, ref)[1] == "HIS"  # the walk
        ack = post(http, adt("RVR3", "RVR^^^FNXRMYY^MR", "卢^二", "19920202", "F", event="A08", app="LIS"))
        assert ack_code_of(ack) == "AE" and b"PID^1^3" in ack, ack


# --- batches and MLLP ------------------------------------------------------------------------------------


def test_one_mllp_write_files_each_registration_and_answers_as_the_walk(both: tuple[Engine, TestClient]) -> None:
    """Three messages in one MLLP write (one ingest batch: group commit, the Provenances signed together):
    the HIS's A04 of RVM, the LIS's A04 of RVM, the LIS's A08 restating RVM as another person. Each A04
    keeps its own row; the A08 is refused (the HIS registered RVM first, within the batch); afterwards
    the table answers the HIS, as the walk does, and the LIS's A08 sent alone is refused too."""
    engine, http = both
    acks = mllp(engine, adt("RVM1", "RVM^^^FNXRMYY^MR", "萧^一", "19610101", "M").encode(),
                adt("RVM2", "RVM^^^FNXRMYY^MR", "萧^一", "19610101", "M", app="LIS").encode(),
                adt("RVM3", "RVM^^^FNXRMYY^MR", "程^二", "19920202", "F", event="A08", app="LIS").encode())
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AE"], acks
    ref = _pid(http, "RVM")
    rows = {row["application"]: row for row in engine.ingestor.messages.registrations_of(ref)}
    assert set(rows) == {"HIS", "LIS"} and rows["HIS"]["control_id"] == "RVM1", rows
    assert _answers(engine, ref) == ("HIS", "HIS")
    ack = post(http, adt("RVM4", "RVM^^^FNXRMYY^MR", "程^二", "19920202", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack


def test_a_batch_where_the_lis_registers_first_answers_as_the_walk(both: tuple[Engine, TestClient]) -> None:
    """One FHS/BHS batch (an interface engine relaying both systems): the LIS's A04 of RVN, then the HIS's.
    Whatever instant each is received at, the table names the registrar the walk names."""
    engine, http = both
    batch = ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r"
             + adt("RVN1", "RVN^^^FNXRMYY^MR", "邓^一", "19610101", "M", app="LIS")
             + adt("RVN2", "RVN^^^FNXRMYY^MR", "邓^一", "19610101", "M")
             + "BTS|2\rFTS|1\r")
    ack = post(http, batch)
    assert b"MSA|AA|RVN1" in ack and b"MSA|AA|RVN2" in ack, ack
    ref = _pid(http, "RVN")
    table, walk = _answers(engine, ref)
    assert table == walk, (table, walk)
    assert _answers(engine, ref, ("HIS",)) == ("HIS", "HIS")


# --- a failed block whose undo fails (MongoDB standalone / mongomock) ---------------------------------------


def test_a_registration_row_left_by_a_failed_undo_is_not_believed(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """mongomock (a standalone server's undo journal): the HIS's A04 of RVU fails after its row was written
    (the block raises), and the undo's delete of that row fails (the connection lost, a pymongo error
    from the collection itself): the message is kept ``received`` for replay, nothing of it filed, its
    Patient taken back -- but the row stays. The LIS's A04 then registers RVU, the only filed
    registration: the walk says the LIS; the table says the HIS (its stale row is older)."""
    armed = {"on": False}
    cls = mongomock.collection.Collection
    real_delete = cls.delete_one

    def delete_one(self: Any, *args: Any, **kwargs: Any) -> Any:
        if armed["on"] and self.name == "hl7_registrations":
            raise pymongo.errors.AutoReconnect("connection lost during the undo")
        return real_delete(self, *args, **kwargs)

    monkeypatch.setattr(cls, "delete_one", delete_one)
    real_note = MessageStore.note_registrations

    def then_fail(self: MessageStore, doc_id: str, doc: Any, records: Any) -> None:
        real_note(self, doc_id, doc, records)
        if records:
            armed["on"] = True
            raise OSError("the disk went away after the registration was written")

    with Engine(settings.with_(mongodb_uri="mongomock://")) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv34", "system/*.cruds")
        monkeypatch.setattr(MessageStore, "note_registrations", then_fail)
        ack = post(http, adt("RVU1", "RVU^^^FNXRMYY^MR", "钟^一", "19610101", "M"))
        assert ack_code_of(ack) != "AA", ack
        monkeypatch.setattr(MessageStore, "note_registrations", real_note)
        armed["on"] = False
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", "RVU1"))
        assert doc is not None and doc["status"] != "processed"
        assert patients(http, f"{MRN}|RVU") == []
        assert ack_code_of(post(http, adt("RVU2", "RVU^^^FNXRMYY^MR", "钟^一", "19610101", "M", app="LIS"))) == "AA"
        ref = _pid(http, "RVU")
        assert _answers(engine, ref)[1] == "LIS"  # the walk: the only filed registration
        # the HIS, which filed no registration of RVU, restating it as another person: refused
        ack = post(http, adt("RVU3", "RVU^^^FNXRMYY^MR", "樊^二", "19920202", "F", event="A08"))
        assert ack_code_of(ack) == "AE", ack
        assert _answers(engine, ref)[0] == "LIS", engine.ingestor.messages.registrations_of(ref)
