"""rvrvpriv26 probe: the first start after the upgrade (``recover_merged_keys``, marker in mpi_meta) on a
store written by the round before (6d989e7: merged_key already stored since mergemend25). A record
whose wrong number an operator removed, then merged numberless into A's record by an A40 (AA, followed
by that code and by today's on a fresh store): the first start must not turn it into a two-number merge.
Real path: the old code writes the store over POST /hl7v2 and a FHIR PUT in a subprocess (``code_at``);
the new engine reads it over real HTTP with A's resident token."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_mergemend25_merge import _resident
from tests.test_moneylast19_charges import code_at

BEFORE = "6d989e7"  # main before privleft26's merge

OLD_STORE = r"""
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from adapters.hl7v2.ack import ack_code_of
from tests.feed_calls import post_hl7v2
from tests.test_mergemend25_merge import A_NID, B_NID, _msg, _pid

with Engine(Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0)) as engine:
    with TestClient(create_app(engine)) as http:
        ops = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-gw", "system/*.cruds")}
        def send(trigger, pid, extra=""):
            return post_hl7v2(engine, http, _msg(trigger, pid, extra)).text
        def register(mrn, nid, name):
            ack = send("A04", _pid(mrn, nid, name), "PV1|1|O|内科^^^FNXRMYY||||||||||||||||V-" + mrn + "\r")
            assert ack_code_of(ack) == "AA", ack
            b = http.get("/fhir/Patient", params={"identifier": f"urn:huren:mrn:FNXRMYY|{mrn}"}, headers=ops).json()
            return b["entry"][0]["resource"]["id"]
        a = register("MRN-A", A_NID, "赵^一")
        w = register("MRN-W", B_NID, "钱^秘密")
        stored = http.get(f"/fhir/Patient/{w}", headers=ops).json()
        stored.pop("meta", None)
        stored["identifier"] = [i for i in stored["identifier"] if B_NID not in str(i.get("value"))]
        stored["name"] = [{"text": "赵一", "family": "赵", "given": ["一"]}]
        stored["gender"], stored["birthDate"] = "male", "1990-01-01"
        assert http.put(f"/fhir/Patient/{w}", json=stored, headers=ops).status_code == 200
        ack = send("A40", _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-W^^^FNXRMYY^MR\r")
        print(json.dumps({"ack": ack_code_of(ack), "a": a, "w": w,
                          "compartment": sorted(engine.identity.person_compartment(a))}))
"""


def test_first_start_keeps_a_numberless_merge_made_after_a_number_was_removed(tmp_path):
    base = code_at(BEFORE, tmp_path)
    data = tmp_path / "var"
    done = subprocess.run([sys.executable, "-c", OLD_STORE, str(data)], cwd=base, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(base)}, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    old = json.loads(done.stdout.strip().splitlines()[-1])
    a, w = old["a"], old["w"]
    assert old["ack"] == "AA" and w in old["compartment"], old  # the old code followed it
    engine = Engine(Settings(data_dir=data, http_port=0, mllp_port=0))
    try:
        with TestClient(create_app(engine)) as http:
            assert engine.identity.meta.get("merged-keys-recovered") is not None
            assert w in engine.identity.person_compartment(a), engine.identity.record(w)
            enc = http.get("/fhir/Encounter", headers=_resident(engine, a))
            assert enc.status_code == 200 and "V-MRN-W" in enc.text, enc.text[:400]
    finally:
        engine.close()
