"""The store's writer mark (``StoredResource.writer``, writer30): who stored each version -- the
ingest for the feed, or a FHIR client -- kept by the store beside the version, set from the write
call and never from what a client sends, read through ``WriterMarks.writers``.

Real bytes through the real path: HL7 v2 through the ingestor, FHIR JSON over HTTP through the
app, the real store on every backend (SQLite, mongomock, MongoDB when set).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.merge_rules import API, INDEX
from engine.settings import Settings


def adt(control: str, name: str = "王^芳") -> bytes:
    return (
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101080000||ADT^A01^ADT_A01|{control}|P|2.5.1\r"
        "EVN|A01|20261101080000\r"
        f"PID|1||110101197505120112^^^^NNCHN~MRN0001^^^FNXRMYY^MR||{name}||19750512|M\r"
        "PV1|1|I|内科^301^2\r"
    ).encode()


def _ids(engine: Engine, rtype: str) -> list[str]:
    return [r["id"] for r in engine.repository.search(rtype, [("_count", "100")]).resources]


def _feed(writer: str | None) -> bool:
    return writer is not None and writer not in (API, INDEX)


def _auth(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("writer30-client", "system/*.cruds")}


def test_the_feed_marks_its_versions_and_a_client_cannot_claim_to_be_it(backend_settings: Settings) -> None:
    """The ADT's Patient and Provenance are the feed's; a client's PUT of that Patient and its own
    Provenance dressed as the engine's (meta.source, the engine's agent) are the client's, and what
    the client reads back is what it sent (the mark is not in the FHIR JSON)."""
    with Engine(backend_settings) as engine, TestClient(create_app(engine)) as http:
        (out,) = engine.ingestor.process([(adt("W1"), "mllp", "peer")])
        assert out.code == "AA"
        [patient] = _ids(engine, "Patient")
        provs = _ids(engine, "Provenance")
        assert provs
        marks = engine.repository.writers("Provenance", provs)
        assert set(marks) == set(provs) and all(_feed(w) for w in marks.values()), marks
        feed = engine.repository.writers("Patient", [patient])[patient]
        assert _feed(feed), feed

        stored = http.get(f"/fhir/Patient/{patient}", headers=_auth(engine)).json()
        stored["meta"] = {"source": f"urn:huren:{feed}", "tag": [{"system": "urn:huren:writer", "code": feed}]}
        stored["gender"] = "female"
        r = http.put(f"/fhir/Patient/{patient}", json=stored, headers=_auth(engine))
        assert r.status_code == 200, r.text
        assert engine.repository.writers("Patient", [patient]) == {patient: API}

        forged = {"resourceType": "Provenance", "target": [{"reference": f"Patient/{patient}"}],
                  "recorded": "2026-11-01T08:00:00+08:00", "meta": {"source": f"urn:huren:{feed}"},
                  "agent": [{"who": {"display": "huren ingest"}}], "writer": feed}
        r = http.post("/fhir/Provenance", json={k: v for k, v in forged.items() if k != "writer"},
                      headers=_auth(engine))
        assert r.status_code == 201, r.text
        made = r.json()
        assert engine.repository.writers("Provenance", [made["id"]]) == {made["id"]: API}
        back = http.get(f"/fhir/Provenance/{made['id']}", headers=_auth(engine)).json()
        assert back["meta"]["source"] == f"urn:huren:{feed}" and "writer" not in back
        assert {k: v for k, v in back.items() if k not in ("id", "meta")} == \
            {k: v for k, v in forged.items() if k not in ("meta", "writer")}
        # a field named like the mark in a client's body is refused as unknown, never taken as the mark
        r = http.post("/fhir/Provenance", json=forged, headers=_auth(engine))
        assert r.status_code in (400, 422), r.text


def test_a_replay_is_the_feed_writing_again(backend_settings: Settings) -> None:
    """An operator's replay runs the stored message through the ingest again: the versions it writes
    are the feed's, over a client's version in between."""
    with Engine(backend_settings) as engine, TestClient(create_app(engine)) as http:
        (out,) = engine.ingestor.process([(adt("W2"), "mllp", "peer")])
        [patient] = _ids(engine, "Patient")
        feed = engine.repository.writers("Patient", [patient])[patient]
        stored = http.get(f"/fhir/Patient/{patient}", headers=_auth(engine)).json()
        # (the client's edit is a telephone: since nbfix39 a name AND a sex differing mean two people, so the
        # replay's corrected name over a client's sex would be refused, not the feed writing again)
        stored["telecom"] = [{"system": "phone", "value": "13800000000"}]
        assert http.put(f"/fhir/Patient/{patient}", json=stored, headers=_auth(engine)).status_code == 200
        assert engine.repository.writers("Patient", [patient]) == {patient: API}
        again = engine.ingestor.replay(out.message_id, actor="operator-w30", raw=adt("W2", name="王^芳芳"))
        assert again is not None and again.code == "AA"
        assert engine.repository.read("Patient", patient)["meta"]["versionId"] == "3"  # the replay's own version
        assert engine.repository.writers("Patient", [patient]) == {patient: feed}
        provs = engine.repository.writers("Provenance", _ids(engine, "Provenance"))
        assert provs and all(_feed(w) for w in provs.values()), provs


def test_a_store_written_before_the_mark_opens_and_reads_not_known(settings: Settings) -> None:
    """A SQLite store of layout 7 without the ``writer`` column (as stored before writer30): it
    opens, its versions read as before with the writer not known (None), history keeps working,
    and the next write is marked."""
    with Engine(settings) as engine:
        (out,) = engine.ingestor.process([(adt("W3"), "mllp", "peer")])
        assert out.code == "AA"
        [patient] = _ids(engine, "Patient")
        path = engine.store.path
        before = engine.repository.read("Patient", patient)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("ALTER TABLE fhir_resource DROP COLUMN writer")
        conn.execute("ALTER TABLE fhir_history DROP COLUMN writer")
        conn.execute("PRAGMA user_version = 7")  # the layout before the mark (writer31: layout 8)
    conn.close()
    with Engine(settings) as engine:
        assert engine.store.query("PRAGMA user_version")[0][0] == 9  # (perf41: layout 9)
        assert engine.repository.read("Patient", patient) == before
        assert engine.repository.writers("Patient", [patient]) == {patient: None}
        (again,) = engine.ingestor.process([(adt("W4", name="王^芳芳"), "mllp", "peer")])
        assert again.code == "AA"
        assert _feed(engine.repository.writers("Patient", [patient])[patient])
        history: Any = engine.repository.backend.history("Patient", patient)
        assert [h.writer is None for h in history] == [False, True]
