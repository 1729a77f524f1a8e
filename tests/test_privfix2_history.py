"""A resident's ``_history`` and ``vread`` agree on every version, deleted records included.

Review of privfix17: (1) ``_history`` screened a past version's national ID numbers against the
record's newest version, ``vread`` against the record as it stands -- none once it is deleted --
so a deleted record listed versions bearing someone else's number that ``_history/{n}`` answered
404; (2) the resident's own numbers came only from their Patient records not deleted, so their own
deleted record's versions with their own number were 404 by ``vread`` while ``_history`` listed
them; (3) with the create hidden, the oldest version shown was marked the create (``POST``/201).
A resident's own numbers are now those of each of their Patient records as it stands, a deleted
one as it stood before its deletion; both paths screen the same way. Real messages through the
real ingest, a real resident token, real HTTP through FastAPI.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.identity.nationalid import check_character
from engine.repository.ids import deterministic_id
from tests.conftest import REPO_ROOT

FEEDS = REPO_ROOT / "examples" / "feeds"
OWN = b"32092319850412001X"
TYPO = b"32092319850412003" + check_character("32092319850412003").encode()  # a valid number, not his
KIN = "32092319870301002" + check_character("32092319870301002")  # his wife's number


def _msa(ack: bytes) -> str:
    return next(seg for seg in ack.split(b"\r") if seg.startswith(b"MSA|")).split(b"|")[1].decode()


def _admit(engine: Any, *, first: bytes, address: bytes = b"") -> str:
    """王建国 admitted with ``first`` as his PID-3 number, then an A08 with his own (and ``address``)."""
    adt = (FEEDS / "01_FNXRMYY_ADT_A01_admission.hl7").read_bytes()
    a08 = (adt.replace(b"ADT^A01^ADT_A01", b"ADT^A08^ADT_A01").replace(b"EVN|A01", b"EVN|A08")
           .replace(b"FNXRMYY-ADT-000101", b"FNXRMYY-ADT-000102"))
    if address:
        a08 = a08.replace("幸福路18号".encode(), address)
    assert _msa(engine.ingestor.handle(adt.replace(OWN, first), channel="test", peer="test")) == "AA"
    assert _msa(engine.ingestor.handle(a08, channel="test", peer="test")) == "AA"
    return deterministic_id("FNXRMYY", "Patient", "ZY2025000101")


def _resident(engine: Any, pid: str) -> tuple[TestClient, dict[str, str]]:
    token, _ = engine.auth.issue_token(subject="person-wjg", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=pid)
    return TestClient(create_app(engine)), {"Authorization": f"Bearer {token}"}


def _listed(http: TestClient, auth: dict[str, str], path: str) -> list[dict[str, Any]]:
    r = http.get(f"{path}/_history", headers=auth)
    assert r.status_code == 200, r.text[:300]
    return r.json()["entry"]


def test_a_residents_own_deleted_record_reads_alike_by_history_and_vread(engine: Any) -> None:
    pid = _admit(engine, first=OWN, address="幸福路20号".encode())
    engine.repository.delete("Patient", pid)
    http, auth = _resident(engine, pid)
    entries = _listed(http, auth, f"/fhir/Patient/{pid}")
    assert [e["request"]["method"] for e in entries] == ["DELETE", "PUT", "POST"], entries
    for entry in entries[1:]:
        version = entry["response"]["etag"].split('"')[1]
        r = http.get(f"/fhir/Patient/{pid}/_history/{version}", headers=auth)
        assert r.status_code == 200 and OWN.decode() in r.text, (version, r.status_code, r.text[:300])


def test_a_deleted_records_versions_with_another_persons_number_are_hidden_from_both(engine: Any) -> None:
    pid = _admit(engine, first=OWN)
    kin = {"resourceType": "RelatedPerson", "active": True, "patient": {"reference": f"Patient/{pid}"},
           "name": [{"text": "李秀英"}],
           "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                               "code": "NNCHN"}]},
                           "system": "urn:oid:2.16.156.10011.1.1", "value": KIN}]}
    rid = engine.repository.create(kin).resource["id"]
    engine.repository.update({**kin, "id": rid, "active": False})
    http, auth = _resident(engine, pid)
    assert http.get(f"/fhir/RelatedPerson/{rid}", headers=auth).status_code == 200  # as it stands: theirs
    engine.repository.delete("RelatedPerson", rid)
    entries = _listed(http, auth, f"/fhir/RelatedPerson/{rid}")
    shown = [e["response"]["etag"] for e in entries if "resource" in e]
    for n in ("1", "2"):
        vread = http.get(f"/fhir/RelatedPerson/{rid}/_history/{n}", headers=auth)
        assert vread.status_code == 404 and KIN not in vread.text
        assert f'W/"{n}"' not in shown, entries  # listed only if vread answers it
    assert KIN not in str(entries)


def test_the_oldest_version_shown_is_the_create_only_when_it_is_one(engine: Any) -> None:
    pid = _admit(engine, first=TYPO)  # version 1 bears another's number: hidden from him
    http, auth = _resident(engine, pid)
    entries = _listed(http, auth, f"/fhir/Patient/{pid}")
    assert len(entries) == 1 and TYPO.decode() not in str(entries), entries
    assert entries[0]["request"]["method"] == "PUT" and entries[0]["response"]["status"] == "200", entries
    staff = engine.auth.issue_system_token("viewer", "system/Patient.rs")
    full = http.get(f"/fhir/Patient/{pid}/_history", headers={"Authorization": f"Bearer {staff}"}).json()["entry"]
    assert [e["request"]["method"] for e in full] == ["PUT", "POST"]  # unconfined: the create as before
