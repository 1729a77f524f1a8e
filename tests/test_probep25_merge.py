"""probep25: what resident tokens see after an A40 merges B's record into A's (twenty-fifth round).

Real HL7 over POST /hl7v2 (a feed's token), real HTTP reads with resident tokens, the real store.
A hospital registers A and B (A04, each with a visit), then says B's record was a duplicate of A's
(A40, PID A, MRG B). The merged record is one person's as far as the hospital knows: A's token may
then see what was B's visit (it is now A's). B's old token, naming a record that is gone, must not
become a key to A's record unless it is really the same person -- the national IDs differ here.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.identity.nationalid import check_character
from tests.feed_calls import post_hl7v2

A_NID = "32092319900101123" + check_character("32092319900101123")
B_NID = "32092319921120004" + check_character("32092319921120004")


def _msg(trigger, control, pid, extra=""):
    return ("MSH|^~\\&|HIS|FNXRMYY|HUREN|COUNTY|20260920080000||ADT^" + trigger + "^ADT_A01|" + control
            + "|P|2.5\rEVN|" + trigger + "|20260920080000\r" + pid + extra).encode()


def _pid(mrn, nid, name):
    born, sex = nid[6:14], "M" if int(nid[16]) % 2 else "F"
    return f"PID|1||{mrn}^^^FNXRMYY^MR~{nid}^^^公安部^NNCHN||{name}||{born}|{sex}\r"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from engine.engine import Engine
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("probep25m") / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(engine)) as client:
        engine.probe_client = client
        for trig, ctl, pid, visit in (("A04", "REG-A", _pid("MRN-A", A_NID, "赵^一"), "VA-1"),
                                      ("A04", "REG-B", _pid("MRN-B", B_NID, "钱^秘密"), "VB-1")):
            r = post_hl7v2(engine, client, _msg(trig, ctl, pid, f"PV1|1|O|内科^^^FNXRMYY||||||||||||||||{visit}\r"))
            assert ack_code_of(r.text) == "AA", r.text
        yield engine
    engine.close()


def _pid_of(engine, mrn):
    token = engine.auth.issue_system_token("his-a", "system/*.rs")
    b = engine.probe_client.get(f"/fhir/Patient?identifier=urn:huren:mrn:FNXRMYY|{mrn}",
                                headers={"Authorization": f"Bearer {token}"}).json()
    got = [e["resource"]["id"] for e in b.get("entry", [])]
    if not got:  # the MRN system may be spelled otherwise: search by value only
        b = engine.probe_client.get(f"/fhir/Patient?identifier={mrn}", headers={"Authorization": f"Bearer {token}"}).json()
        got = [e["resource"]["id"] for e in b.get("entry", [])]
    return got


def _res(engine, pid):
    t, _ = engine.auth.issue_token(subject=f"person-{pid}", kind="patient", client_id="phr",
                                   scopes=["patient/*.rs"], patient=pid)
    return {"Authorization": f"Bearer {t}"}


@pytest.fixture(scope="module")
def merged(world):
    http = world.probe_client
    pa, pb = _pid_of(world, "MRN-A"), _pid_of(world, "MRN-B")
    assert len(pa) == 1 and len(pb) == 1, (pa, pb)
    pa, pb = pa[0], pb[0]
    ha, hb = _res(world, pa), _res(world, pb)  # both tokens issued before the merge
    before_a = http.get(f"/fhir/Patient/{pa}/$everything", headers=ha)
    assert before_a.status_code == 200 and "钱" not in before_a.text and B_NID not in before_a.text
    before_b = http.get(f"/fhir/Patient/{pa}", headers=hb)
    assert before_b.status_code == 404
    r = post_hl7v2(world, http, _msg("A40", "MRG-1", _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-B^^^FNXRMYY^MR\r"))
    return {"ack": r.text, "pa": pa, "pb": pb, "ha": ha, "hb": hb}


def test_b_old_token_after_b_merged_into_a_reads_nothing_of_a(world, merged):
    """FINDING: the hospital merges B's record into A's (A40), although the two carry different
    national IDs, sexes and birth dates (the engine answers AA). B's token, issued before, then
    reads A's Patient -- A's name, national ID, birth date -- because the compartment of B's record
    follows its ``replaced-by`` link to A's. A wrong merge turns B's phone into a key to A's record.
    What should happen: a merge of two records whose national IDs differ is refused (AE at MRG-1) or
    at least the old record's resident tokens stop at the old record; a merged-away record's tokens
    follow the merge only when the person is the same (same national ID)."""
    if ack_code_of(merged["ack"]) != "AA":
        return  # refused: nothing was merged, nothing to follow
    http = world.probe_client
    for path in (f"/fhir/Patient/{merged['pa']}", f"/fhir/Patient/{merged['pa']}/$everything", "/fhir/Encounter",
                 "/fhir/Patient"):
        r = http.get(path, headers=merged["hb"])
        assert A_NID not in r.text and "赵" not in r.text, (path, r.status_code, r.text[:600])


def test_a_token_after_b_merged_into_a_shows_nothing_with_bs_identity(world, merged):
    """A's own token after the merge: the visit that was B's is A's now (the hospital says so); but
    B's national ID and name must not appear (they belong to another person)."""
    http = world.probe_client
    ev = http.get(f"/fhir/Patient/{merged['pa']}/$everything", headers=merged["ha"])
    assert ev.status_code == 200
    assert B_NID not in ev.text and "秘密" not in ev.text, ev.text[:1500]


def _sign_in(http, engine, national_id, scope):
    """The resident page's own launch (client huren-me), as the browser runs it."""
    import base64
    import hashlib
    import json
    import re
    import secrets
    from urllib.parse import parse_qs, urlsplit

    redirect = engine.settings.public_base_url + "/ui/me/"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    page = http.get("/auth/authorize", params={
        "response_type": "code", "client_id": "huren-me", "redirect_uri": redirect, "state": "st", "scope": scope,
        "aud": engine.settings.fhir_base_url, "code_challenge": challenge, "code_challenge_method": "S256"},
        follow_redirects=False)
    if page.status_code in (302, 303, 307) and "offline_access" in scope:  # not offered to this client
        return _sign_in(http, engine, national_id, scope.replace(" offline_access", ""))
    found = re.search(r'name="request_id" value="([^"]+)"', page.text)
    assert found, (page.status_code, page.text[:600])
    rid = found.group(1)
    assert http.post("/auth/authorize/login", data={"request_id": rid, "national_id": national_id}).status_code == 200
    code = json.loads((engine.settings.data_dir / "otp" / "outbox.jsonl").read_text().splitlines()[-1])["code"]
    done = http.post("/auth/authorize/verify", data={"request_id": rid, "code": code}, follow_redirects=False)
    q = parse_qs(urlsplit(done.headers["location"]).query)
    return http.post("/auth/token", data={"grant_type": "authorization_code", "code": q["code"][0],
                                          "redirect_uri": redirect, "client_id": "huren-me",
                                          "code_verifier": verifier}).json()


def test_b_signed_in_before_the_merge_keeps_no_key_to_a(tmp_path):
    """The same merge, with B signed in by the real launch (phone on record, one-time code) before
    it: B's access token and, when offered, a refreshed one must not read A's record."""
    from engine.engine import Engine
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0))
    try:
        with TestClient(create_app(engine)) as http:
            for ctl, pid in (("RA", _pid("MRN-A", A_NID, "赵^一") + "|||||^PRN^CP^^^^13700001111"),
                             ("RB", _pid("MRN-B", B_NID, "钱^秘密") + "|||||^PRN^CP^^^^13700002222")):
                pid = pid.replace("\r|||||", "|||||") + "\r"
                r = post_hl7v2(engine, http, _msg("A04", ctl, pid, "PV1|1|O|内科^^^FNXRMYY\r"))
                assert ack_code_of(r.text) == "AA", r.text
            b = _sign_in(http, engine, B_NID, "launch/patient openid fhirUser patient/*.rs offline_access")
            assert "access_token" in b, b
            hb = {"Authorization": "Bearer " + b["access_token"]}
            pa = engine.identity.patients_for_number(A_NID)[0]
            assert http.get(f"/fhir/Patient/{pa}", headers=hb).status_code == 404
            r = post_hl7v2(engine, http, _msg("A40", "MRG-2", _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-B^^^FNXRMYY^MR\r"))
            if ack_code_of(r.text) != "AA":
                return
            seen = {"access": http.get(f"/fhir/Patient/{pa}", headers=hb)}
            if b.get("refresh_token"):
                fresh = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": b["refresh_token"],
                                                       "client_id": "huren-me"})
                if fresh.status_code == 200:
                    seen["refreshed"] = http.get(f"/fhir/Patient/{pa}",
                                                 headers={"Authorization": "Bearer " + fresh.json()["access_token"]})
            leaked = {k: v.status_code for k, v in seen.items() if A_NID in v.text}
            assert not leaked, (leaked, sorted(seen))
    finally:
        engine.close()
