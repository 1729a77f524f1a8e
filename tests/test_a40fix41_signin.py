"""a40fix41: the resident whose ID number a merge carried onto its survivor signs in with it (rv41f MED 2 / id40's
carry), over the real path: the HIS's A04s and A40 over ``POST /hl7v2``, then the SMART launch the resident page
runs (``/auth/authorize``, ``/auth/authorize/login``, the code from the sender's outbox, ``/auth/authorize/verify``,
``/auth/token``) and her reads over ``/fhir``. And the words: the code page says the same conditional sentence for
a number no record holds (no code sent) as for hers -- never whether a number is known."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import post
from tests.identity39_calls import NNCHN_SYSTEM, read_patient, unlink
from tests.test_a40b41_carried import BING, opened
from tests.test_rvidentity32_probes import MRN, _nid, merge, patients

NUMBER = _nid("32092319620303302")
STRANGER = _nid("32092319620303312")  # a valid number no record holds
CODE_PAGE_WORDS = "If this ID number is registered, a code was sent to the phone on file."


def _registered(http: TestClient, mrn: str, control: str, ids: str, phone: str) -> str:
    """The HIS's A04 of MRN ``mrn`` with PID-13 ``phone`` (where the sign-in code goes); the record's id."""
    name, birth, sex = BING
    ack = post(http, (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A04^ADT_A01|{control}|P|2.5.1\r"
                      f"EVN|A04|20261201091500\rPID|1||{mrn}^^^FNXRMYY^MR{ids}||{name}||{birth}|{sex}|||||"
                      f"^PRN^CP^^^^{phone}\rPV1|1|O\r"))
    assert ack_code_of(ack) == "AA", ack
    (record,) = patients(http, f"{MRN}|{mrn}")
    return str(record["id"])


def _outbox(engine: Engine) -> list[dict[str, Any]]:
    path = Path(engine.settings.data_dir) / "otp" / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _launch(http: TestClient, engine: Engine, number: str) -> tuple[str, str, str]:
    """The resident page's launch up to the code page: (request id, the code page's text, the PKCE verifier)."""
    redirect = engine.settings.public_base_url + "/ui/me/"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    page = http.get("/auth/authorize", params={
        "response_type": "code", "client_id": "huren-me", "redirect_uri": redirect, "state": "st",
        "scope": "launch/patient openid fhirUser patient/*.rs", "aud": engine.settings.fhir_base_url,
        "code_challenge": challenge, "code_challenge_method": "S256"}, headers={"Authorization": ""})
    rid = re.search(r'name="request_id" value="([^"]+)"', page.text)
    assert rid, page.text[:600]
    said = http.post("/auth/authorize/login", data={"request_id": rid.group(1), "national_id": number},
                     headers={"Authorization": ""})
    assert said.status_code == 200, said.text[:600]
    return rid.group(1), said.text, verifier


def _signed_in(http: TestClient, engine: Engine, number: str) -> dict[str, Any]:
    """Her launch through: the code the outbox got, verified, exchanged for her token."""
    rid, _, verifier = _launch(http, engine, number)
    code = _outbox(engine)[-1]["code"]
    done = http.post("/auth/authorize/verify", data={"request_id": rid, "code": code}, follow_redirects=False,
                     headers={"Authorization": ""})
    assert done.status_code == 303, done.text[:600]
    query = parse_qs(urlsplit(done.headers["location"]).query)
    token = http.post("/auth/token", data={
        "grant_type": "authorization_code", "code": query["code"][0], "client_id": "huren-me",
        "redirect_uri": engine.settings.public_base_url + "/ui/me/", "code_verifier": verifier},
        headers={"Authorization": ""}).json()
    assert "access_token" in token, token
    return dict(token)


def _words(page: str) -> str:
    """The code page without its request id: what the resident reads."""
    return re.sub(r'name="request_id" value="[^"]+"', "", page)


def test_the_number_a_merge_carried_signs_her_in_to_her_records(settings: Settings) -> None:
    """SQLite. R1 (her number, phone A) merged into R2 (no number, phone B) by today's A40: the number is on R2,
    marked carried-from R1, and keys no index entry. Her sign-in by the number sends a code (to R2's phones), opens
    R2, and her token reads R1's record too (the merge joined them). The A37 then splits them: the number goes back
    to R1, and her sign-in opens R1, never R2 -- which the registrar has just said is another person's record."""
    with opened(settings) as (engine, http):
        one = _registered(http, "SGN1", "SGN1A", f"~{NUMBER}^^^^NNCHN", "13700001111")
        two = _registered(http, "SGN2", "SGN2A", "", "13700002222")
        ack = post(http, merge("SGN3", "SGN2^^^FNXRMYY^MR", *BING, "SGN1^^^FNXRMYY^MR"))
        assert ack_code_of(ack) == "AA", ack
        assert [i["value"] for i in read_patient(http, two)["identifier"] if i["system"] == NNCHN_SYSTEM] == [NUMBER]
        assert engine.identity.patients_for_number(NUMBER) == [two]
        sent = len(_outbox(engine))
        token = _signed_in(http, engine, NUMBER)
        assert len(_outbox(engine)) == sent + 1 and "13700002222" in _outbox(engine)[-1]["to"]
        assert token["patient"] == two
        hers = {"Authorization": "Bearer " + token["access_token"]}
        assert http.get(f"/fhir/Patient/{two}", headers=hers).status_code == 200
        assert http.get(f"/fhir/Patient/{one}", headers=hers).status_code == 200
        # the A37: two people -- the number back on R1, and her sign-in opens R1 alone
        ack = post(http, unlink("SGN4", ("SGN2", *BING), ("SGN1", *BING)))
        assert ack_code_of(ack) == "AA", ack
        assert engine.identity.patients_for_number(NUMBER) == [one]
        again = _signed_in(http, engine, NUMBER)
        assert again["patient"] == one
        mine = {"Authorization": "Bearer " + again["access_token"]}
        assert http.get(f"/fhir/Patient/{two}", headers=mine).status_code == 404


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_the_code_page_says_the_same_words_for_a_number_no_record_holds(backend_settings: Settings) -> None:
    """Her number (a merge carried it) and a number no record holds: the code page reads the same, word for word --
    "if this ID number is registered, a code was sent" -- which is true of both (the decision: a page saying "no
    record holds this number" would tell anyone typing numbers who is a patient of the county's hospitals; the
    conditional sentence claims no code for a number that has none). Only hers gets a code."""
    with opened(backend_settings) as (engine, http):
        _registered(http, "SGW1", "SGW1A", f"~{NUMBER}^^^^NNCHN", "13700003333")
        _registered(http, "SGW2", "SGW2A", "", "13700004444")
        ack = post(http, merge("SGW3", "SGW2^^^FNXRMYY^MR", *BING, "SGW1^^^FNXRMYY^MR"))
        assert ack_code_of(ack) == "AA", ack
        sent = len(_outbox(engine))
        _, hers, _ = _launch(http, engine, NUMBER)
        assert len(_outbox(engine)) == sent + 1
        _, strangers, _ = _launch(http, engine, STRANGER)
        assert len(_outbox(engine)) == sent + 1, "a code sent for a number no record holds"
        assert CODE_PAGE_WORDS in hers and _words(hers) == _words(strangers)
