"""A resident is not shown a past version of their record that carried someone else's ID number.

Review of probe17: registration typed another person's national ID number into 王建国's PID-3
(ADT^A01) and corrected it with an ADT^A08. His own ``_history`` and ``vread`` showed him the first
version with that number -- another person's identity -- because only ``urn:huren:resident``
identifiers counted as naming someone else. A confined caller's past version now must carry no
national ID number (identifier type NNCHN, any system) that none of their records carries now
(``ScopedRepository._names_other_number``). Real messages through the real ingest, a real
resident token, real HTTP through FastAPI.
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


def _msa(ack: bytes) -> str:
    return next(seg for seg in ack.split(b"\r") if seg.startswith(b"MSA|")).split(b"|")[1].decode()


def test_a_residents_history_leaves_out_the_version_with_another_persons_number(engine: Any) -> None:
    adt = (FEEDS / "01_FNXRMYY_ADT_A01_admission.hl7").read_bytes()
    a08 = (adt.replace(b"ADT^A01^ADT_A01", b"ADT^A08^ADT_A01").replace(b"EVN|A01", b"EVN|A08")
           .replace(b"FNXRMYY-ADT-000101", b"FNXRMYY-ADT-000102"))
    assert _msa(engine.ingestor.handle(adt.replace(OWN, TYPO), channel="test", peer="test")) == "AA"
    assert _msa(engine.ingestor.handle(a08, channel="test", peer="test")) == "AA"
    pid = deterministic_id("FNXRMYY", "Patient", "ZY2025000101")
    versions = engine.repository.versions("Patient", pid)
    assert TYPO.decode() in str(versions[-1].resource) and TYPO.decode() not in str(versions[0].resource)
    assert OWN.decode() in str(versions[0].resource)

    token, _ = engine.auth.issue_token(subject="person-wjg", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=pid)
    http, auth = TestClient(create_app(engine)), {"Authorization": f"Bearer {token}"}
    first = versions[-1].version
    r = http.get(f"/fhir/Patient/{pid}/_history", headers=auth)
    assert r.status_code == 200 and TYPO.decode() not in r.text, r.text[:400]
    assert [e["response"]["etag"] for e in r.json()["entry"]] == [f'W/"{v.version}"' for v in versions[:-1]]
    assert http.get(f"/fhir/Patient/{pid}/_history/{first}", headers=auth).status_code == 404
    missing = http.get(f"/fhir/Patient/{pid}/_history/99", headers=auth)
    assert http.get(f"/fhir/Patient/{pid}/_history/{first}", headers=auth).text == missing.text
    batch = {"resourceType": "Bundle", "type": "batch",
             "entry": [{"request": {"method": "GET", "url": f"Patient/{pid}/_history/{first}"}}]}
    r = http.post("/fhir", json=batch, headers=auth)
    assert r.json()["entry"][0]["response"]["status"].startswith("404") and TYPO.decode() not in r.text
    # his own number's version reads as before
    r = http.get(f"/fhir/Patient/{pid}/_history/{versions[0].version}", headers=auth)
    assert r.status_code == 200 and OWN.decode() in r.text
