"""End to end: two hospitals send HL7 v2 for the same resident; the resident signs in on a phone app
and reads results from both — and nothing of the other resident in the same feeds.

The example feeds (examples/feeds) go through the real ingestor; the app runs the SMART standalone
launch over HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app

FEEDS = Path(__file__).resolve().parent.parent / "examples" / "feeds"
RESIDENT = "32092319850412001X"  # at 阜宁县人民医院 (FNXRMYY) and 阜宁县中医院 (FNZYY)
APP, REDIRECT = "phr-app", "https://phr.example/cb"


@pytest.fixture
def fed(engine):
    if not hasattr(engine, "ingestor"):
        pytest.skip("needs the ingest pipeline")
    for path in sorted(FEEDS.glob("*.hl7")):
        ack = engine.ingestor.handle(path.read_bytes(), channel="test", peer="127.0.0.1")
        assert b"MSA|AA" in ack or b"MSA|CA" in ack, (path.name, ack)
    engine.auth.registry.add(APP, scopes=["patient/*.rs", "launch/patient"], kind="patient-app",
                             redirect_uris=[REDIRECT], public=True)
    return engine


def test_resident_reads_results_from_both_hospitals(fed):
    engine = fed
    ids = engine.identity.patients_for_number(RESIDENT)
    assert len(ids) >= 2  # one Patient per hospital, linked by the national ID
    with TestClient(create_app(engine)) as http:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        page = http.get("/auth/authorize", params={
            "response_type": "code", "client_id": APP, "redirect_uri": REDIRECT, "scope": "launch/patient patient/*.rs",
            "state": "st", "aud": engine.settings.fhir_base_url, "code_challenge": challenge,
            "code_challenge_method": "S256"})
        rid = re.search(r'name="request_id" value="([^"]+)"', page.text).group(1)
        assert http.post("/auth/authorize/login", data={"request_id": rid, "national_id": RESIDENT.lower()}).status_code == 200
        outbox = engine.settings.data_dir / "otp" / "outbox.jsonl"
        code = json.loads(outbox.read_text().splitlines()[-1])["code"]
        done = http.post("/auth/authorize/verify", data={"request_id": rid, "code": code}, follow_redirects=False)
        q = parse_qs(urlsplit(done.headers["location"]).query)
        tokens = http.post("/auth/token", data={"grant_type": "authorization_code", "code": q["code"][0],
                                                "redirect_uri": REDIRECT, "client_id": APP,
                                                "code_verifier": verifier}).json()
        h = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert tokens["patient"] in ids

        subjects = set()
        url = "/fhir/Observation?_count=50"
        while url:
            bundle = http.get(url, headers=h).json()
            subjects |= {e["resource"]["subject"]["reference"].split("/", 1)[1] for e in bundle.get("entry", [])}
            nxt = [lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"]
            url = urlsplit(nxt[0])._replace(scheme="", netloc="").geturl() if nxt else None
        assert subjects and subjects <= engine.identity.person_compartment(tokens["patient"])

        everyone = engine.repository.search("Patient", [("_count", "100")]).resources
        others = [p["id"] for p in everyone if p["id"] not in engine.identity.person_compartment(tokens["patient"])]
        assert others, "the feeds hold another resident"
        for pid in others:
            assert http.get(f"/fhir/Patient/{pid}", headers=h).status_code == 404
            assert http.get(f"/fhir/Observation?subject=Patient/{pid}", headers=h).json().get("entry", []) == []
