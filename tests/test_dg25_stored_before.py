"""dg25: Conditions a store holds from before the stay keyed a DG1 (patient + code, or DG1-20 alone): a
message of that stay sent again after the upgrade finds the stored Condition instead of adding a second
one of the same code. The store is written by the code of 9faaaf4 (``run_old_code``: this checkout's own
history, run in a subprocess), then the same database file is read and written by this code over POST
/hl7v2 and /fhir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_convert_families import PID, message, msh, post
from tests.test_dg24_encounter_diagnosis import codes, encounter
from tests.test_moneyfix24_rv2_split_hl7 import PV1
from tests.test_moneylast19_charges import run_old_code

BEFORE = "9faaaf4"  # before rvmoney24b keyed an encounter diagnosis by its stay
J189, C341 = "J18.9^肺炎^I10", "C34.1^肺癌^I10"


def a03(ctl: str, number: str, start: str, end: str, *dg1: str) -> bytes:
    return message(msh("ADT^A03^ADT_A03", ctl), f"EVN|A03|{end}", PID, PV1.format(visit=number, start=start, end=end),
                   *dg1)


STAY_1 = ("V-1", "20260301080000", "20260305090000")
STAY_2 = ("V-2", "20260310080000", "20260312090000")

# run by the earlier code (PYTHONPATH=its tree): the stay V-1 with J18.9 (no DG1-20) and V-2 with C34.1 (DG1-20 D-1)
# Run by the earlier code (PYTHONPATH=its tree), once for the module: each store (a data and a site folder, argv in
# pairs) gets its messages (the last argument: one list of messages a store); one line of JSON a store.
OLD_STORE = r"""
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings

folders, jobs = sys.argv[1:-1], json.loads(sys.argv[-1])
for data, site, raws in zip(folders[::2], folders[1::2], jobs):
  with Engine(Settings(data_dir=Path(data), http_port=0, mllp_port=0, site=Path(site))) as engine:
    http = TestClient(create_app(engine))
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")
    acks = [http.post("/hl7v2", content=raw.encode(), headers={"Content-Type": "x-application/hl7-v2+er7"}).text
            for raw in raws]
    ids = {e["resource"]["code"]["coding"][0]["code"]: e["resource"]["id"]
           for e in http.get("/fhir/Condition").json().get("entry", ())}
    print(json.dumps({"acks": acks, "ids": ids}))
"""
# the stores the tests open: V-1 with J18.9 (no DG1-20) and V-2 with C34.1 (DG1-20 D-1); V-1 alone
STORES = ((a03("O1", *STAY_1, f"DG1|1||{J189}|||F"), a03("O2", *STAY_2, f"DG1|1||{C341}|||F||||||||||||||D-1")),
          (a03("O1", *STAY_1, f"DG1|1||{J189}|||F"),))


def _old_store(tmp_path: Path, which: int) -> tuple[Path, Path, dict[str, str]]:
    """A copy of store ``which`` of ``STORES``: the old code writes them all in one process, once a test process
    (``run_old_code``), each test opens its own copy."""
    folders = [f"{kind}-{i}" for i in range(len(STORES)) for kind in ("var", "site")]
    done = run_old_code(BEFORE, OLD_STORE, tmp_path, folders, made=folders[1::2],
                        args=[json.dumps([[r.decode() for r in raws] for raws in STORES])], timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    olds = [json.loads(line) for line in done.stdout.strip().splitlines()[-len(STORES):]]
    assert all("MSA|AA" in ack for old in olds for ack in old["acks"]), olds
    return tmp_path / f"var-{which}", tmp_path / f"site-{which}", olds[which]["ids"]


def _conditions(http: TestClient, enc: dict[str, Any]) -> list[dict[str, Any]]:
    found = http.get("/fhir/Condition", params={"encounter": f"Encounter/{enc['id']}"}).json()
    return [e["resource"] for e in found.get("entry", ())]


def test_a_stay_stored_before_sent_again_finds_its_condition(tmp_path: Path) -> None:
    """V-1 (J18.9, no DG1-20) and V-2 (C34.1, DG1-20 D-1) stored by the old code; each discharge re-sent
    by the HIS after the upgrade (DG1-15 now sent): one Condition a stay, the stored one, ranked."""
    data, site, old_ids = _old_store(tmp_path, 0)
    with Engine(Settings(data_dir=data, http_port=0, mllp_port=0, site=site)) as eng:
        http = TestClient(create_app(eng))
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("his", "system/*.cruds")
        assert post(http, a03("N1", *STAY_1, f"DG1|1||{J189}|||F|||||||||1")) == "AA"
        assert post(http, a03("N2", *STAY_2, f"DG1|1||{C341}|||F|||||||||1|||||D-1")) == "AA"
        for (number, *_), code in ((STAY_1, "J18.9"), (STAY_2, "C34.1")):
            enc = encounter(http, number)
            assert [c["id"] for c in _conditions(http, enc)] == [old_ids[code]], (number, _conditions(http, enc))
            assert codes(http, enc) == [(code, 1, "DD")], enc
            assert enc["diagnosis"][0]["condition"]["reference"] == f"Condition/{old_ids[code]}"
        # an explicit null in DG1-15 then names the entry of the stored Condition it took over
        assert post(http, a03("N3", *STAY_1, f'DG1|1||{J189}|||F|||||||||""')) == "AA"
        assert codes(http, encounter(http, "V-1")) == [("J18.9", None, "DD")]


def test_a_stay_stored_before_keeps_its_condition_when_the_code_comes_for_a_new_stay(tmp_path: Path) -> None:
    """The old J18.9 Condition is V-1's: a readmission (V-3) with J18.9 after the upgrade gets its own, and
    V-1 re-sent still finds the stored one -- the old key's record is taken only for the stay it names."""
    data, site, old_ids = _old_store(tmp_path, 1)
    with Engine(Settings(data_dir=data, http_port=0, mllp_port=0, site=site)) as eng:
        http = TestClient(create_app(eng))
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("his", "system/*.cruds")
        assert post(http, a03("N1", "V-3", "20260308080000", "20260320090000", f"DG1|1||{J189}|||F")) == "AA"
        assert post(http, a03("N2", *STAY_1, f"DG1|1||{J189}|||F|||||||||1")) == "AA"
        first, third = encounter(http, "V-1"), encounter(http, "V-3")
        assert [c["id"] for c in _conditions(http, first)] == [old_ids["J18.9"]]
        [new] = _conditions(http, third)
        assert new["id"] != old_ids["J18.9"]
        assert codes(http, first) == [("J18.9", 1, "DD")] and codes(http, third) == [("J18.9", None, "DD")]
