"""rv40i: review probes of ordfix40 (the operator's decision on a held change applied once across processes; who
decides) and idfix40b (``demographics.own_id_numbers``; an A37 across a merge chain refused).

Real bytes through the real path: HL7 v2 over ``POST /hl7v2`` into the real store (both backends where a store is
shared in-process), ``/admin`` and ``/fhir`` over FastAPI; the crash probe kills a real process (SIGKILL) between the
decision's conditional reopen and its processing, and a fresh process over the same SQLite data directory recovers
as ``huren serve`` does at start.
"""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.conftest import _BACKENDS, settings_for_backend
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client, read_patient, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_codedoc38_order_owner import _codes
from tests.test_rv40f_probes import _held_message, _owner, _senders
from tests.test_rv40g_probes import unlink
from tests.test_rvidentity32_probes import _nid, adt, merge
from tests.test_srfix35_order_code import B, the_order

ROOT = Path(__file__).resolve().parent.parent
MOVED = "1.2.156.112604.1.2.43"


def _site(folder: Path) -> Path:
    (folder / "hl7v2").mkdir(parents=True, exist_ok=True)
    (folder / "hl7v2" / "senders.yaml").write_text(_senders({B: [["RIS", f"^{MOVED}^ISO"]]}), encoding="utf-8")
    return folder


@pytest.fixture(scope="module", params=_BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    root = tmp_path_factory.mktemp("rv40i")
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0, base_url="https://huren.example",
                        site=_site(root / "site"))
    with settings_for_backend(request.param, settings) as chosen, Engine(chosen) as eng:
        yield eng


@pytest.fixture(scope="module")
def http(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv40i", "system/*.cruds")
        yield client


def _bound_ops(engine: Engine, institution: str, client: str) -> dict[str, str]:
    """An operations client with ``MessageHeader`` read and create, bound to ``institution`` (``huren client add
    --institution``: the token carries it, ``Caller.institution``)."""
    token, _ = engine.auth.issue_token(subject=client, kind="system", client_id=client,
                                       scopes=["system/MessageHeader.r", "system/MessageHeader.c"],
                                       extra={"institution": institution})
    return {"Authorization": "Bearer " + token}


# --- ordfix40: who decides ------------------------------------------------------------------------------------------


def test_an_ops_client_of_another_institution_cannot_decide_a_held_change(engine: Engine, http: TestClient) -> None:
    """GUARD (remit). A system client with read AND create on MessageHeader (passes ``require_owner_decider``'s
    scopes, not the sender) but bound to another institution: the held message is 404 as unknown to it, nothing
    replayed, the order unchanged; the same client bound to the message's institution decides it."""
    placer = "RV40I-REMIT"
    msg = _held_message(http, placer)
    other = "FNZYY" if B != "FNZYY" else "FNXRMYY"
    r = _owner(http, msg, _bound_ops(engine, other, "ops-elsewhere"), reason="别院运维认定")
    assert r.status_code == 404, r.text
    assert not engine.ingestor.messages.get(msg).get("replays")
    assert "3002" in _codes(the_order(http, placer))
    r = _owner(http, msg, _bound_ops(engine, B, "ops-here"), reason="本院运维核实")
    assert r.status_code == 200 and r.json()["decided"]["used"] is True, r.text
    assert "3001" in _codes(the_order(http, placer))


# --- ordfix40: a process killed mid-decision ------------------------------------------------------------------------

_DIES_MID_DECISION = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path
    from fastapi.testclient import TestClient
    from engine.api.app import create_app
    from engine.engine import Engine
    from engine.ingest import Ingestor
    from engine.settings import Settings
    from tests.test_rv40f_probes import _held_message, _owner
    root = Path(sys.argv[1])
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0, base_url="https://huren.example",
                        site=root / "site")
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv40i", "system/*.cruds")
        msg = _held_message(http, "RV40I-KILL")
        history = http.get("/fhir/ServiceRequest", params={"identifier": "RV40I-KILL"}).json()
        (root / "held.json").write_text(json.dumps({"msg": msg, "before": engine.ingestor.messages.get(msg)}))
        phase2 = Ingestor._phase2

        def dies(self, items):
            if any(i.decided is not None for i in items):
                os.kill(os.getpid(), signal.SIGKILL)  # kill -9: after the conditional reopen, before the replay
            return phase2(self, items)

        Ingestor._phase2 = dies
        ops = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops-desk", "system/MessageHeader.cr")}
        _owner(http, msg, ops, reason="运维甲：接口迁移")
        (root / "survived").write_text("the process was not killed")
""")


def test_a_process_killed_mid_decision_leaves_the_message_recoverable_and_decidable(tmp_path: Path) -> None:
    """GUARD (crash). SQLite, real processes: a process takes an owner's decision and is killed -9 right after the
    conditional reopen (the message ``received``, its replay entry ``as: owner``). Before any restart the message
    answers 409 "being taken" (no second decision starts on it). The next start's recovery (``Ingestor.recover``, as
    ``huren serve`` runs it) processes it plainly: held again, the order's code untouched, nothing written twice
    (one held claim, the message's resources as before); an operator then decides it, applied once."""
    root = tmp_path
    _site(root / "site")
    done = subprocess.run([sys.executable, "-c", _DIES_MID_DECISION, str(root)], cwd=ROOT, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300, check=False)
    assert done.returncode == -9, done.stderr.decode()[-3000:]
    assert not (root / "survived").exists()
    held = json.loads((root / "held.json").read_text())
    msg, before = held["msg"], held["before"]
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0, base_url="https://huren.example",
                        site=root / "site")
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv40i", "system/*.cruds")
        ops = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops-desk", "system/MessageHeader.cr")}
        left = engine.ingestor.messages.get(msg)
        assert left["status"] == "received" and left["replays"][-1]["as"] == "owner", left
        r = _owner(http, msg, ops, reason="运维乙")
        assert r.status_code == 409 and "being taken" in r.text, r.text
        assert "3002" in _codes(the_order(http, "RV40I-KILL"))
        engine.ingestor.recover()
        now = engine.ingestor.messages.get(msg)
        assert now["status"] == "processed" and len(now["held_claims"]) == len(before["held_claims"]) == 1, now
        assert sorted(now["resources"]) == sorted(before["resources"]), (now["resources"], before["resources"])
        assert "3002" in _codes(the_order(http, "RV40I-KILL"))
        r = _owner(http, msg, ops, reason="运维乙：核实")
        assert r.status_code == 200 and r.json()["decided"]["used"] is True, r.text
        assert "3001" in _codes(the_order(http, "RV40I-KILL"))
        again = _owner(http, msg, ops, reason="运维乙：核实")
        assert again.status_code == 200 and again.json().get("already") is True, again.text


# --- idfix40b: whose number ------------------------------------------------------------------------------------------

both = engine_and_client("rv40i")


def test_a_man_registered_with_his_number_and_no_birth_date_is_not_two_people(both: tuple[Engine, TestClient]) -> None:
    engine, http = both
    nid = _nid("11010119750512031")
    rec = registered(http, "I40IA", "IIA", "王^强", "", "M", f"~{nid}^^^^NNCHN")
    body = {k: v for k, v in read_patient(http, rec["id"]).items() if k not in ("meta", "text")}
    assert http.put(f"/fhir/Patient/{rec['id']}", json={**body, "gender": "female"}).status_code == 200
    ack = post(http, adt("IIB", f"I40IA^^^FNXRMYY^MR~{nid}^^^^NNCHN", "王^强强", "", "M", event="A01"))
    assert ack_code_of(ack) == "AA", ack


def test_an_a37_across_a_chain_after_an_a47_names_the_middle_record_by_its_number_now(
        both: tuple[Engine, TestClient]) -> None:
    """R1 (ID number) merged into R2; R2 renumbered by an A47 (F40J2 -> F40J2N); R2 merged into R3; the A37 of R3 and
    R1 is refused AE 204 (no merge joined them directly) -- and the record between is named by the number the HIS
    uses now ('F40J2N'), not the one it retired (an A37 naming the old number would name no record in use)."""
    engine, http = both
    nid = _nid("32092319620303512")
    person = ("岳^丑", "19620303", "F")
    registered(http, "F40J1", "FJA", *person, f"~{nid}^^^^NNCHN")
    registered(http, "F40J2", "FJB", *person)
    registered(http, "F40J3", "FJC", *person)
    assert ack_code_of(post(http, merge("FJD", "F40J2^^^FNXRMYY^MR", *person, "F40J1^^^FNXRMYY^MR"))) == "AA"
    a47 = merge("FJE", "F40J2N^^^FNXRMYY^MR", *person, "F40J2^^^FNXRMYY^MR").replace(
        "ADT^A40^ADT_A39", "ADT^A47^ADT_A30").replace("EVN|A40", "EVN|A47")
    assert ack_code_of(post(http, a47)) == "AA"
    assert ack_code_of(post(http, merge("FJF", "F40J3^^^FNXRMYY^MR", *person, "F40J2N^^^FNXRMYY^MR"))) == "AA"
    ack = post(http, unlink("FJG", ("F40J3", *person), ("F40J1", *person)))
    (line,) = err_lines(ack)
    assert ack_code_of(ack) == "AE" and "no merge joined directly" in line, line
    assert "'F40J2N'" in line and "'F40J2'" not in line, line


def test_a_decision_whose_commit_failed_once_can_be_asked_again(engine: Engine, http: TestClient) -> None:
    """The store refuses the decision's write once (injected at the ingest's batch write, as SQLite's busy
    timeout would); the failure clears; the operator asks again: the decision is taken (or at least not answered
    'being taken' by a decision no process is applying)."""
    import sqlite3

    placer = "RV40I-BUSY"
    msg = _held_message(http, placer)
    ingestor = engine.ingestor
    failures = {"left": 1}
    write_batch = ingestor._write_batch

    def busy_once(items: list) -> bool:
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database is locked")
        return write_batch(items)

    ingestor._write_batch = busy_once  # type: ignore[method-assign]
    try:
        first = _owner(http, msg, _bound_ops(engine, B, "ops-busy"), reason="第一次")
    finally:
        del ingestor._write_batch
    assert first.status_code != 500, first.text
    assert "3002" in _codes(the_order(http, placer))
    again = _owner(http, msg, _bound_ops(engine, B, "ops-busy"), reason="第二次")
    assert again.status_code == 200, (first.status_code, first.text, again.status_code, again.text)
    assert "3001" in _codes(the_order(http, placer))
