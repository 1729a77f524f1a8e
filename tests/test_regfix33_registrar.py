"""regfix33: who registered a record, after rvregapp33's review -- what the fixes must keep.

Real HL7 over ``POST /hl7v2`` (and a batch), the operator's ``POST /admin/quarantine/{id}/replay``, FHIR over
``/fhir``, into real stores (SQLite; mongomock where marked). The probes the fixes turned green stay in
``tests/test_rvregapp33_probes.py``; these guard the edges of the fixes: the principle is that when who
registered a record cannot be told, no one's restatement as another person is accepted, and nothing the
registering application had accepted is refused."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import conflict_id, message_id
from tests.hl7_calls import module_engine, module_http, post  # noqa: F401 -- the module's engine and client
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_regapp33_registration_apps import declared  # noqa: F401 -- the site declaring [HIS, TJXT]
from tests.test_rvidentity32_probes import MRN, adt, oru, patients


def _ops(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}


def _replay(engine: Engine, http: TestClient, doc_id: str, corrected: str | None = None) -> dict:
    r = http.post(f"/admin/quarantine/{doc_id}/replay", headers=_ops(engine),
                  **({"content": corrected.encode()} if corrected is not None else {}))
    assert r.status_code == 200, r.text
    return r.json()


def _restated(ack: bytes) -> bool:
    return ack_code_of(ack) == "AA" and b"restated as another person" in ack


def _provenance_of(engine: Engine, doc_id: str) -> str:
    doc = engine.ingestor.messages.get(doc_id)
    assert doc is not None
    (prov,) = [r for r in doc["resources"] if r.startswith("Provenance/")]
    return prov


# --- the registering application keeps what it had ---------------------------------------------------


def test_a_processed_registration_replayed_leaves_the_record_the_his_s(engine: Engine, http: TestClient) -> None:
    """The HIS registers QA, corrects one field (A08), and the operator replays the A04 (any stored message
    may be): the A04's Provenance is written again, naming the versions the replay filed. The version the
    A04 first wrote is still the feed's own (named by the Provenance's earlier version): the HIS's A08
    restating QA as another person is accepted with the W, the LIS's refused."""
    assert ack_code_of(post(http, adt("QA1", "QA^^^FNXRMYY^MR", "秦^一", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, adt("QA2", "QA^^^FNXRMYY^MR", "秦^壹", "19610101", "M", event="A08"))) == "AA"
    assert _replay(engine, http, message_id("FNXRMYY", "QA1"))["ack_code"] == "AA"
    assert ack_code_of(post(http, adt("QA3", "QA^^^FNXRMYY^MR", "尤^二", "19920202", "F", event="A08",
                                      app="LIS"))) == "AE"
    assert _restated(post(http, adt("QA4", "QA^^^FNXRMYY^MR", "尤^二", "19920202", "F", event="A08")))


def test_a_fhir_clients_edit_of_the_patient_does_not_lock_the_registrar_out(engine: Engine, http: TestClient) -> None:
    """A FHIR client's PUT of the Patient (a phone number) is a version no message wrote: it needs no
    message's Provenance. The HIS's restatement of its record is accepted as before."""
    assert ack_code_of(post(http, adt("QB1", "QB^^^FNXRMYY^MR", "许^三", "19610101", "M"))) == "AA"
    (p,) = patients(http, f"{MRN}|QB")
    p["telecom"] = [{"system": "phone", "value": "13800000000"}]
    r = http.put(f"/fhir/Patient/{p['id']}", json=p)
    assert r.status_code == 200, r.text
    assert _restated(post(http, adt("QB2", "QB^^^FNXRMYY^MR", "何^四", "19920202", "F", event="A08")))


def test_a_deleted_registration_provenance_refuses_even_the_registrar(engine: Engine, http: TestClient) -> None:
    """Fail closed: the HIS registers QC and corrects a field; a FHIR client deletes the A04's Provenance.
    The version the A04 wrote is no longer named by its feed's Provenance (the A08's names its own
    version): who registered QC cannot be told, so no one's restatement as another person is accepted --
    the HIS's included (the operator puts the trail right); an update of one field still is."""
    assert ack_code_of(post(http, adt("QC1", "QC^^^FNXRMYY^MR", "吕^五", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, adt("QC2", "QC^^^FNXRMYY^MR", "吕^伍", "19610101", "M", event="A08"))) == "AA"
    r = http.delete(f"/fhir/{_provenance_of(engine, message_id('FNXRMYY', 'QC1'))}")
    assert r.status_code in (200, 204), r.text
    ack = post(http, adt("QC3", "QC^^^FNXRMYY^MR", "张^六", "19920202", "F", event="A08"))
    assert ack_code_of(ack) == "AE" and b"PID^1^3" in ack, ack
    assert ack_code_of(post(http, adt("QC4", "QC^^^FNXRMYY^MR", "吕^陆", "19610101", "M", event="A08"))) == "AA"
    assert [p["gender"] for p in patients(http, f"{MRN}|QC")] == ["male"]


def test_a_fhir_clients_own_provenance_naming_no_message_fails_closed(engine: Engine, http: TestClient) -> None:
    """A FHIR client's own Provenance targeting the record (naming no message, no activity) may stand for
    a registration huren cannot read: as before regfix33, "cannot be told" -- the LIS's A08 refused."""
    assert ack_code_of(post(http, oru("QD1", "QD^^^FNXRMYY^MR", "施^七", "19610101", "M", "QDGLU"))) == "AA"
    (p,) = patients(http, f"{MRN}|QD")
    prov = {"resourceType": "Provenance", "target": [{"reference": f"Patient/{p['id']}"}],
            "recorded": "2026-12-01T10:00:00+08:00", "agent": [{"who": {"display": "ward clerk"}}]}
    r = http.post("/fhir/Provenance", json=prov)
    assert r.status_code == 201, r.text
    ack = post(http, adt("QD2", "QD^^^FNXRMYY^MR", "孔^八", "19920202", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack


# --- MSH-10 one reading -------------------------------------------------------------------------------


def test_the_provenance_names_msh10_as_the_message_store_keys_it(engine: Engine, http: TestClient) -> None:
    """MSH-10 ``QE1^X`` (a component): the document's control_id and the Provenance entity's value are one
    text, so the message that wrote the Provenance is found."""
    assert ack_code_of(post(http, adt("QE1^X", "QE^^^FNXRMYY^MR", "曹^九", "19610101", "M"))) == "AA"
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "QE1^X"))
    assert doc is not None and doc["control_id"] == "QE1^X"
    prov = http.get(f"/fhir/{_provenance_of(engine, doc['_id'])}").json()
    assert prov["entity"][0]["what"]["identifier"]["value"] == "QE1^X", prov


# --- a declared site --------------------------------------------------------------------------------


def test_a_declared_site_keeps_an_undeclared_registrars_own_record(declared: TestClient) -> None:  # noqa: F811
    """Nothing accepted today is refused: a record only the LIS registered (its walk-in A04) stays the
    LIS's on a declared site -- its A08 restating it accepted with the W, the HIS's refused."""
    assert ack_code_of(post(declared, adt("QF1", "QF^^^FNXRMYY^MR", "严^一", "19610101", "M", app="LIS"))) == "AA"
    ack = post(declared, adt("QF2", "QF^^^FNXRMYY^MR", "华^二", "19920202", "F", event="A08"))
    assert ack_code_of(ack) == "AE", ack
    assert _restated(post(declared, adt("QF3", "QF^^^FNXRMYY^MR", "华^二", "19920202", "F", event="A08",
                                        app="LIS")))


def test_a_declared_sites_batch_answers_as_its_messages_one_by_one(declared: TestClient) -> None:  # noqa: F811
    """The LIS registered QG; one HIS batch registers QG too and then restates it as another person: as
    sent one by one (the HIS's A04 filed first), the declared HIS's registration decides -- AA, AA with the W."""
    assert ack_code_of(post(declared, adt("QG1", "QG^^^FNXRMYY^MR", "金^三", "19610101", "M", app="LIS"))) == "AA"
    batch = ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r"
             + adt("QG2", "QG^^^FNXRMYY^MR", "金^三", "19610101", "M")
             + adt("QG3", "QG^^^FNXRMYY^MR", "魏^四", "19920202", "F", event="A08")
             + "BTS|2\rFTS|1\r")
    ack = post(declared, batch)
    assert b"MSA|AA|QG2" in ack and b"MSA|AA|QG3" in ack and b"restated as another person" in ack, ack
    assert [p["gender"] for p in patients(declared, f"{MRN}|QG")] == ["female"]


# --- the operator's replays, on both backends ---------------------------------------------------------


both = engine_and_client("rf")


def test_a_corrected_replay_states_its_corrected_header(both: tuple[Engine, TestClient]) -> None:
    """SQLite and mongomock: the document of a message replayed with MSH-9 and MSH-12 corrected says the
    corrected type and version; the replay's entry keeps what it said before."""
    engine, http = both
    sent = adt("QH1", "QH^^^FNXRMYY^MR", "陶^五", "19610101", "M").replace("ADT^A04^ADT_A01", "ADT^A4^ADT_A01")
    assert ack_code_of(post(http, sent)) == "AR"
    fixed = adt("QH1", "QH^^^FNXRMYY^MR", "陶^五", "19610101", "M").replace("|P|2.5.1\r", "|P|2.5\r", 1)
    assert _replay(engine, http, message_id("FNXRMYY", "QH1"), fixed)["ack_code"] == "AA"
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "QH1"))
    assert doc is not None and (doc["message_type"], doc["version"]) == ("ADT^A04", "2.5"), doc
    (entry,) = doc["replays"]
    assert (entry["previous_message_type"], entry["previous_version"]) == ("ADT^A4", "2.5.1"), entry


def test_a_replayed_conflict_has_a_provenance_of_its_own(both: tuple[Engine, TestClient]) -> None:
    """SQLite and mongomock: the HIS's counter restarts and an A04 of another patient reuses MSH-10; the
    operator replays the conflict. Each message keeps its own Provenance naming its own record; both name
    MSH-10 QI1, and each is found as its message's (the first record's registrar is still the HIS)."""
    engine, http = both
    assert ack_code_of(post(http, adt("QI1", "QI^^^FNXRMYY^MR", "戚^六", "19610101", "M"))) == "AA"
    second = adt("QI1", "QJ^^^FNXRMYY^MR", "谢^七", "19920202", "F")
    assert ack_code_of(post(http, second)) == "AE"
    first_id = message_id("FNXRMYY", "QI1")
    conflict = conflict_id(first_id, hashlib.sha256(second.encode()).hexdigest())
    assert _replay(engine, http, conflict)["ack_code"] == "AA"
    (qi,), (qj,) = patients(http, f"{MRN}|QI"), patients(http, f"{MRN}|QJ")
    mine, theirs = _provenance_of(engine, first_id), _provenance_of(engine, conflict)
    assert mine != theirs
    for ref, patient in ((mine, qi), (theirs, qj)):
        prov = http.get(f"/fhir/{ref}").json()
        targets = [t["reference"].split("/_history/")[0] for t in prov["target"]]
        assert f"Patient/{patient['id']}" in targets and prov["entity"][0]["what"]["identifier"]["value"] == "QI1"
    assert _restated(post(http, adt("QI2", "QI^^^FNXRMYY^MR", "邹^八", "19930303", "F", event="A08")))
    assert _restated(post(http, adt("QI3", "QJ^^^FNXRMYY^MR", "喻^九", "19640404", "M", event="A08")))


def test_the_merges_counted_as_registrations_are_the_merge_templates_events() -> None:
    """``persons._MERGING`` (a merge registers its survivor) names exactly the events the message templates
    convert as merges (``handler: merge``): a merge template added later is counted, or this fails."""
    import yaml

    from adapters.convert.persons import _MERGING
    from tests.test_rvregapp33_probes import REPO_ROOT

    events = set()
    for path in (REPO_ROOT / "mappings" / "hl7v2" / "messages").glob("*.yaml"):
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if spec.get("handler") == "merge":
            events.update(("ADT", e) for e in spec.get("events") or ())
    assert events and events == set(_MERGING)
