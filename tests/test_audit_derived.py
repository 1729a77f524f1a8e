"""The AuditEvent views derived on read answer exactly as the same views stored would, on both backends.

A hospital, a resident and an auditor leave records in the signed log (reads, a search over two
patients, a sign-in without a patient). The same views are also stored, as earlier versions
stored them, in a second engine's FHIR repository through the backend's own SQL (or MongoDB
query); every search an auditor or resident makes — by patient, entity, agent, date, id, last
update, sorted, paged, counted, in a compartment — must find the same AuditEvents in the same
order both ways. Then what only the derived side does: a view is there as soon as its record
commits, it cannot be written, and an AuditEvent a client stored under an id of its own is found
beside the views.
"""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit.events import build_event, requestor_agent
from engine.audit.keys import AuditKeys
from engine.audit.log import Appended, AuditLog
from engine.audit.record import facts
from engine.audit.store import open_audit_store
from engine.audit.view import view_id, views_of
from engine.engine import Engine
from engine.errors import MethodNotAllowed
from engine.settings import Settings

HIS = requestor_agent(kind="system", subject="his-a", address="10.0.0.9")
LAB = requestor_agent(kind="system", subject="lis-b", address="10.0.0.10")
ZHANG = requestor_agent(kind="patient", subject="person-zhang", address="10.0.0.11", client_id="phr")


def _records(engine: Engine) -> None:
    """One record alone, the rest as one appended group (one key document per key and group, the
    group's other records under it): complete AuditEvents and an HTTP interaction's compact record."""
    audit = engine.audit
    audit.record(build_event(action="read", origin="o", agents=HIS, patient_ids=["pa"],
                             resources=["Observation/1/_history/1"], owners={"Observation/1/_history/1": ["pa"]},
                             start="2026-11-01T08:00:00.000Z", recorded="2026-11-01T08:00:00.100Z"))
    group = audit.record_many([
        build_event(action="search", origin="o", agents=LAB, patient_ids=["pa", "pb"],
                    resources=["Observation/1", "Observation/2"], query="Observation?code=718-7",
                    owners={"Observation/1": ["pa"], "Observation/2": ["pb"]}, recorded="2026-11-03T09:30:00.000Z"),
        build_event(action="read", origin="o", agents=ZHANG, patient_ids=["pa"], outcome="4",
                    resources=["Observation/2"], owners={"Observation/2": ["pb"]},
                    requestor_patients=["pa"], recorded="2026-11-02T10:00:00.000Z"),
        build_event(action="token-issue", origin="o", agents=LAB, recorded="2026-11-04T00:00:00.000Z"),
        build_event(action="read", origin="o", agents=HIS, patient_ids=["pb"],
                    resources=["Observation/2/_history/1"], owners={"Observation/2/_history/1": ["pb"]},
                    recorded="2026-11-05T12:00:00.000Z"),
        facts(action="read", recorded="2026-10-31T12:00:01.000Z", start="2026-10-31T12:00:00.900Z", outcome="0",
              desc="HTTP 200", requestor=("system", "his-a", "10.0.0.9", None, None, None, None, None), origin="o",
              patients=["pa"], resources=["Observation/1/_history/1"], owners={"Observation/1/_history/1": ["pa"]}),
    ])
    assert all(isinstance(r, Appended) for r in group)


QUERIES: list[tuple[list[tuple[str, str]], frozenset[str] | None]] = [
    ([], None),
    ([("patient", "pa")], None),
    ([("patient", "Patient/pb")], None),
    ([("patient", "pa,pb"), ("_sort", "-date")], None),
    ([("entity", "Observation/2")], None),
    ([("entity", "pa")], None),
    ([("agent:identifier", "urn:huren:client|his-a")], None),
    ([("agent:identifier", "his-a")], None),
    ([("date:missing", "false"), ("entity:missing", "false")], None),
    ([("date", "ge2026-11-02"), ("date", "lt2026-11-05")], None),
    ([("date", "2026-11-03")], None),
    ([("date", "eb2026-11-03"), ("_sort", "date")], None),
    ([("date", "le2026-11-01")], None),
    ([("date", "gt2026-11-04T23:59:59Z")], None),
    ([("date", "2026-11-02T18:00:00+08:00")], None),
    ([("date", "sa2030-01-01")], None),
    ([("_sort", "-date"), ("_count", "2")], None),
    ([("_sort", "-date"), ("_count", "2"), ("_offset", "2")], None),
    ([("_sort", "_id")], None),
    ([("_id", view_id("audit-3", None) + "," + view_id("audit-1", "pb"))], None),
    ([("patient:missing", "true")], None),
    ([("_summary", "count"), ("patient", "pa")], None),
    ([], frozenset({"pa"})),
    ([("patient", "pb")], frozenset({"pa"})),
    ([("_sort", "-date")], frozenset({"pb"})),
]


def _ids(engine: Engine, params: list[tuple[str, str]], compartment: frozenset[str] | None) -> tuple:
    """The AuditEvents found (as a set: the views of one record tie in any order the backend
    keeps), the order of their records, and the total."""
    found = engine.repository.search("AuditEvent", params, compartment=compartment)
    ids = [r["id"] for r in found.resources]
    records = list(dict.fromkeys("-".join(i.split("-")[:2]) for i in ids))
    return sorted(ids), records, found.total


@pytest.fixture
def pair(backend_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    """``derived``: the records in its log; ``stored``: their views stored as resources, no log."""
    with Engine(backend_settings) as derived:
        _records(derived)
        other = backend_settings.with_(data_dir=tmp_path_factory.mktemp("stored"))
        if backend_settings.mongodb_uri:  # a database of its own
            other = other.with_(mongodb_db=f"{backend_settings.mongodb_db}_stored")
        with Engine(other) as stored:
            repo = stored.repository
            main = repo.backend.main
            views = [v for seq in range(derived.audit.size) for v in views_of(derived.audit.events(seq, 1)[0])]
            routed, repo.backend = repo.backend, main
            with stored.store.transaction():
                repo.insert_derived(views)
            repo.backend = routed
            yield derived, stored, main


def test_derived_views_answer_every_search_as_stored_views_do(pair) -> None:
    derived, stored, main = pair
    # the stored side answers from its backend alone (its own log is empty)
    assert stored.audit.size == 0 and main.count(stored.repository.parser.parse("AuditEvent", []).query) == 7
    for params, compartment in QUERIES:
        assert _ids(derived, params, compartment) == _ids(stored, params, compartment), (params, compartment)


def test_a_search_by_date_reads_the_days_it_covers_not_the_whole_log(pair, monkeypatch: pytest.MonkeyPatch) -> None:
    derived, _stored, _main = pair
    views = derived.repository.backend.views

    def whole_log():
        raise AssertionError("a date search walked the whole log")

    monkeypatch.setattr(views, "_all_records", whole_log)
    read: list[int] = []
    records = views._records
    monkeypatch.setattr(views, "_records", lambda seqs: (read.extend(seqs), records(seqs))[1])
    found = derived.repository.search("AuditEvent", [("date", "2026-11-03")])
    assert {r["id"].split("-")[1] for r in found.resources} == {"1"}
    assert set(read) <= {0, 1, 2, 3}  # the records of 2-4 November (a minute's margin each way), not 5 November's
    # a view's lastUpdated is its record's `recorded`, found through the same day keys
    found = derived.repository.search("AuditEvent", [("_lastUpdated", "ge2026-11-04")])
    assert {r["id"].split("-")[1] for r in found.resources} == {"3", "4"}


def test_views_exist_at_once_and_cannot_be_written(pair) -> None:
    derived, _, _ = pair
    repo = derived.repository
    view = repo.read("AuditEvent", view_id("audit-0", "pa"))
    assert view["meta"] == {"versionId": "1", "lastUpdated": "2026-11-01T08:00:00.100Z"}
    assert repo.vread("AuditEvent", view["id"], "1")["id"] == view["id"]
    assert [v["meta"]["versionId"] for v in repo.history("AuditEvent", view["id"])] == ["1"]
    with pytest.raises(MethodNotAllowed):
        repo.update({**view, "outcome": "8"})
    with pytest.raises(MethodNotAllowed):
        repo.delete("AuditEvent", view["id"])
    with pytest.raises(MethodNotAllowed):  # nor may a client take the id a later record's view will have
        repo.update({**view, "id": "audit-99"})
    assert repo.read("AuditEvent", view["id"]) == view


def test_a_clients_own_audit_event_is_found_beside_the_views(pair) -> None:
    derived, _, _ = pair
    repo = derived.repository
    own = {"resourceType": "AuditEvent", "id": "lis-export-7", "recorded": "2026-11-02T00:00:00Z",
           "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110106"}, "action": "R",
           "agent": [{"who": {"identifier": {"system": "urn:huren:client", "value": "lis-b"}}, "requestor": True}],
           "source": {"observer": {"display": "lis"}},
           "entity": [{"what": {"reference": "Patient/pa"}}]}
    repo.update(own)
    ids = [r["id"] for r in repo.search("AuditEvent", [("patient", "pa"), ("_sort", "date")]).resources]
    assert ids == [view_id("audit-5", "pa"), view_id("audit-0", "pa"), "lis-export-7", view_id("audit-2", "pa"),
                   view_id("audit-1", "pa")]
    assert repo.search("AuditEvent", [("_summary", "count")]).total == 8


def test_residents_and_auditors_over_http(pair) -> None:
    derived, _, _ = pair
    for pid in ("pa", "pb"):  # the records the log names exist (a view naming a missing one is withheld)
        derived.repository.update({"resourceType": "Patient", "id": pid})
    for oid, pid in (("1", "pa"), ("2", "pb")):
        derived.repository.update({"resourceType": "Observation", "id": oid, "status": "final",
                                   "code": {"text": "Hb"}, "effectiveDateTime": "2026-10-30", "performer": [{"display": "lab"}],
                                   "subject": {"reference": f"Patient/{pid}"}})
    http = TestClient(create_app(derived))
    token, _ = derived.auth.issue_token(subject="person-zhang", kind="patient", client_id="phr",
                                        scopes=["patient/*.rs"], patient="pa")
    mine = http.get("/fhir/AuditEvent?_sort=-date", headers={"Authorization": f"Bearer {token}"})
    assert mine.status_code == 200
    ids = [e["resource"]["id"] for e in mine.json()["entry"]]
    # every record naming pa, newest first (the search itself is recorded after its response)
    assert ids == [view_id("audit-1", "pa"), view_id("audit-2", "pa"), view_id("audit-0", "pa"),
                   view_id("audit-5", "pa")]
    assert all("Patient/pb" not in orjson.dumps(e["resource"]).decode() for e in mine.json()["entry"])
    auditor = derived.auth.issue_system_token("auditor", "system/*.rs")
    r = http.get("/fhir/AuditEvent?agent:identifier=urn:huren:client|his-a&_sort=-date",
                 headers={"Authorization": f"Bearer {auditor}"})
    assert r.status_code == 200
    assert [e["resource"]["id"] for e in r.json()["entry"]] == [view_id("audit-4", "pb"), view_id("audit-0", "pa"),
                                                                view_id("audit-5", "pa")]
    r = http.get(f"/fhir/AuditEvent/{view_id('audit-4', 'pb')}", headers={"Authorization": f"Bearer {auditor}"})
    assert r.status_code == 200 and r.headers["etag"] == 'W/"1"'
    r = http.delete(f"/fhir/AuditEvent/{view_id('audit-4', 'pb')}",
                    headers={"Authorization": f"Bearer {derived.auth.issue_system_token('his-a', 'system/*.cruds')}"})
    assert r.status_code == 405 and r.json()["resourceType"] == "OperationOutcome"


def test_records_an_earlier_version_appended_get_their_keys_at_the_next_start(settings: Settings) -> None:
    with Engine(settings) as engine:
        _records(engine)
        engine.audit.index_keys()
        for doc in engine.audit.key_index.find():  # as an earlier version left them: no keys
            engine.audit.key_index.delete(doc["_id"])
        assert engine.repository.search("AuditEvent", [("patient", "pb")]).total == 0  # keyed as far as known
        assert engine.repository.search("AuditEvent", [("date", "2026-11-05")]).total == 0
        for marker in ("keys", "day-keys", "keyed-to"):  # ... and no marker of this version
            engine.audit.meta.delete(marker)
    with Engine(settings) as engine:
        assert engine.repository.search("AuditEvent", [("patient", "pb")]).total == 2
        assert engine.repository.search("AuditEvent", [("date", "2026-11-05")]).total == 1
        assert engine.audit.meta.get("keys") is not None and engine.audit.meta.get("day-keys") is not None


def test_the_append_writes_no_key_and_the_first_search_finds_the_record(settings: Settings) -> None:
    """Search keys are derived from the records after the append (``AuditLog.index_keys``): an
    audited read's commit holds only its record, and a search brings the keys up to date first."""
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))  # no background indexer
    log.record_many([build_event(action="read", origin="o", agents=HIS, patient_ids=[f"p{i}"]) for i in range(3)])
    assert log.key_index.count() == 0 and log.size == 3
    log.index_keys()
    assert log.meta.get("keyed-to") == {"_id": "keyed-to", "size": 3}
    assert {d["_id"].split("\t")[0] for d in log.key_index.find()} >= {"p:p0", "p:p1", "p:p2", "a:urn:huren:client|his-a"}
    log.store.close()
    with Engine(settings) as engine:
        engine.audit.record(build_event(action="read", origin="o", agents=LAB, patient_ids=["p9"]))
        found = engine.repository.search("AuditEvent", [("patient", "p9")])  # at once, not at the next round
        assert [r["id"] for r in found.resources] == [view_id("audit-3", "p9")]
        assert engine.audit.meta.get("keyed-to")["size"] == 4
        assert engine.repository.search("AuditEvent", [("agent:identifier", "urn:huren:client|his-a")]).total == 3
