"""privleft26: a merge stored by code from before ``merged_key`` is judged as one stored since (twenty-sixth round).

mergemend25 made a merged-away record's index entry keep the ID number it carried (``merged_key``),
so the compartment stops at a merge into another number's record. A store written before that
(commit ``BEFORE``: an ADT^A40 merging 赵桂兰's FNXRMYY record into 孙小宝's, two numbers, answered
AA then) kept no ``merged_key``: after the upgrade the index took the merged-away record, now with
its MRN alone, for a record with no number -- 孙小宝's token read 赵桂兰's visit and results, and a
family grant for 孙小宝's record (孙伟's) opened them too. The upgrade now recovers the number the
record carried (its stored history) once, at the first start, so the old merge is judged as a merge
stored today: not followed into another number's records. Real path: the old code writes the store
over ``POST /hl7v2`` in a subprocess (``code_at``); the new engine reads it over real HTTP with a
resident's token and a family member's token from the real sign-in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_famfix18_grant_person import PHR
from tests.test_moneylast19_charges import code_at
from tests.test_resident_family import SUN, XIAO, bearer, params, proxy_sign_in, subjects
from tests.test_resident_record_ui import ZHAO

BEFORE = "52a4d49"  # the twenty-fifth round's probe, before mergemend25: no merged_key, a two-number A40 AA

# Run by the earlier code (PYTHONPATH=BASE): the family feeds, then 赵桂兰's FNXRMYY record merged into
# 孙小宝's (ADT^A40 naming 孙小宝, MRG 赵桂兰's MRN) -- accepted by that code.
OLD_STORE = r"""
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_resident_family import XIAO, family_feeds
from tests.test_resident_record_ui import hl7, msh, pid

with Engine(Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0)) as engine:
    with TestClient(create_app(engine)) as http:
        sender = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-gw", "system/MessageHeader.c"),
                  "Content-Type": "x-application/hl7-v2+er7"}
        for message in family_feeds():
            assert http.post("/hl7v2", content=message, headers=sender).headers["x-hl7-ack-code"] == "AA"
        a40 = hl7(msh("HIS", "FNXRMYY", "20261201090000", "ADT^A40^ADT_A39", "RM-A40-OLD"), "EVN|A40|20261201090000",
                  pid(XIAO, "ZY2026001002", "FNXRMYY", "孙^小宝", "20200606", "F"), "MRG|ZY2026000301^^^FNXRMYY^MR")
        ack = http.post("/hl7v2", content=a40, headers=sender).headers["x-hl7-ack-code"]
        ops = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/Patient.rs")}
        ids = {mrn: http.get("/fhir/Patient", params={"identifier": mrn}, headers=ops).json()["entry"][0]["resource"]["id"]
               for mrn in ("ZY2026001002", "ZY2026000301")}
        entry = engine.identity.record(ids["ZY2026000301"])
        print(json.dumps({"ack": ack, "xiao": ids["ZY2026001002"], "zhao": ids["ZY2026000301"],
                          "merged_key": entry.get("merged_key"), "replaced_by": entry.get("replaced_by"),
                          "compartment": sorted(engine.identity.person_compartment(ids["ZY2026001002"]))}))
"""


@pytest.fixture(scope="module")
def old_store(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("privleft26")
    base = code_at(BEFORE, tmp)
    data = tmp / "var"
    done = subprocess.run([sys.executable, "-c", OLD_STORE, str(data)], cwd=base, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(base)}, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    old = json.loads(done.stdout.strip().splitlines()[-1])
    # what the old code left: the merge accepted, no merged_key, and its compartment joining the two
    assert old["ack"] == "AA" and old["replaced_by"] == old["xiao"] and old["merged_key"] is None, old
    assert old["zhao"] in old["compartment"], old
    return data, old


@pytest.fixture
def upgraded(old_store, tmp_path):
    data, old = old_store
    mine = tmp_path / "var"
    shutil.copytree(data, mine)
    settings = Settings(data_dir=mine, http_port=0, mllp_port=0).with_(
        extra={"resident_auth": {"sends_per_id_source": 20, "sends_per_source": 40}})
    engine = Engine(settings)
    with TestClient(create_app(engine)) as http:
        yield engine, http, old
    engine.close()


def _resident(engine, pid: str) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=f"person-{pid}", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=pid)
    return {"Authorization": f"Bearer {token}"}


def test_an_old_stores_merge_of_two_numbers_is_not_followed_after_the_upgrade(upgraded):
    engine, http, old = upgraded
    xiao, zhao = old["xiao"], old["zhao"]
    assert zhao not in engine.identity.person_compartment(xiao)
    assert xiao not in engine.identity.person_compartment(zhao)
    assert engine.identity.record(zhao).get("merged_key"), engine.identity.record(zhao)
    # 孙小宝's token: her own results, nothing of 赵桂兰's merged-away record
    hx = _resident(engine, xiao)
    r = http.get("/fhir/Observation?_count=100", headers=hx)
    assert r.status_code == 200 and zhao not in subjects(r.json()) and xiao in subjects(r.json()), r.text[:600]
    got = http.get(f"/fhir/Patient/{zhao}", headers=hx)
    assert got.status_code == 404, got.text
    ev = http.get(f"/fhir/Patient/{xiao}/$everything", headers=hx)
    assert ev.status_code == 200 and "赵" not in ev.text and ZHAO not in ev.text, ev.text[:600]
    # 赵桂兰's token bound to the record merged away: not 孙小宝's
    hz = _resident(engine, zhao)
    assert http.get(f"/fhir/Patient/{xiao}", headers=hz).status_code == 404
    r = http.get("/fhir/Observation?_count=100", headers=hz)
    assert xiao not in r.text and XIAO not in r.text, r.text[:600]
    # a merge stated now into that chain is judged by the recovered number too
    assert engine.identity.merge_refusal(zhao, xiao) is not None
    # ``huren identity rebuild`` recovers it as well (an entry that lost it again)
    engine.identity.links.update(zhao, {"merged_key": None})
    assert zhao in engine.identity.person_compartment(xiao)
    engine.identity.rebuild()
    assert engine.identity.record(zhao).get("merged_key") and zhao not in engine.identity.person_compartment(xiao)


def test_an_old_stores_merge_opens_nothing_of_the_other_number_to_a_family_grant(upgraded):
    engine, http, old = upgraded
    xiao, zhao = old["xiao"], old["zhao"]
    engine.auth.registry.add("fnxrmyy-desk", scopes=["system/Consent.cru", "system/RelatedPerson.cru"], kind="system")
    engine.auth.registry.add("phr", scopes=["launch/patient", "openid", "fhirUser", "offline_access", "patient/*.rs"],
                             kind="patient-app", redirect_uris=["https://phr.example/cb"], public=True)
    desk = bearer(engine.auth.issue_system_token("fnxrmyy-desk", "system/Consent.cru system/RelatedPerson.cru"))
    r = http.post("/fhir/Patient/$family-grant", headers=desk, json=params(
        patient={"reference": f"Patient/{xiao}"}, proxyNationalId=SUN, proxyName="孙伟", relationship="PRN",
        idCardChecked=True))
    assert r.status_code == 201, r.text
    token, _ = proxy_sign_in(http, engine, SUN, "孙小宝", app=PHR)
    as_father = bearer(token["access_token"])
    r = http.get("/fhir/Observation?_count=100", headers=as_father)
    assert r.status_code == 200 and subjects(r.json()) == {xiao}, r.text[:600]
    assert http.get(f"/fhir/Patient/{zhao}", headers=as_father).status_code == 404
    enc = http.get("/fhir/Encounter?_count=100", headers=as_father)
    assert "ZY2026000301" not in enc.text, enc.text[:600]
