"""rv37a: probes of round 36's unreviewed merges -- pdate36's ``not_back.with`` (a kept-out P's OBX-14), the
lead's merge.yaml (a withdrawn result is ``not_back``'s), cn36's ``Collection.increment`` and ``peer_cn``.

Real HL7 v2 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back
over ``/fhir``; the storage port's contract on the ``store`` fixture (every backend)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.senders import peer_cn
from engine.engine import Engine
from engine.member_refusals import client_of
from engine.repository.port import Store
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_ordfix36_final_back import _result
from tests.test_rv36a_probes import _potassium

__all__ = ["engine", "module_http"]

engine = module_eng


def _obs(http: TestClient, obs_id: str) -> dict:
    return http.get(f"/fhir/Observation/{obs_id}").json()


def _with_obx(message: str, field: int, text: str) -> str:
    """``message`` with OBX-``field`` of its one OBX set to ``text``."""
    lines = message.split("\r")
    for i, line in enumerate(lines):
        if line.startswith("OBX|"):
            fields = line.split("|")
            fields += [""] * (field + 1 - len(fields))
            fields[field] = text
            lines[i] = "|".join(fields)
    return "\r".join(lines)


def _final_then_later_p(engine: Engine, http: TestClient, tag: str, field: int, first: str, later: str,
                        value: str = "5.0") -> tuple[dict, dict, bytes]:
    """F 4.1 at 10:00 with OBX-``field`` ``first``, then the LIS's later P (12:00) ``value`` with ``later``:
    (the stored result before, after, the P's ACK)."""
    message = _with_obx(_result(f"RV37A-{tag}A", "20261203100000", f"RV37AM{tag}", f"RV37AP{tag}", "4.1", "F"),
                        field, first)
    assert b"MSA|AA" in post(http, message)
    (obs,) = written(engine, http, f"RV37A-{tag}A", "Observation")
    before = _obs(http, obs["id"])
    ack = post(http, _with_obx(_result(f"RV37A-{tag}B", "20261203120000", f"RV37AM{tag}", f"RV37AP{tag}", value,
                                       "P"), field, later))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, obs["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after
    return before, after, ack


def _people(obs: dict) -> list[str]:
    return sorted(str(p.get("display") or p.get("reference")) for p in obs.get("performer") or ()
                  if str(p.get("reference") or "").startswith("Practitioner/"))


def test_a_kept_out_p_does_not_put_its_observer_on_the_final_value(engine: Engine, http: TestClient) -> None:
    """F 4.1 observed by D001 张三, then a later P 5.0 observed by D002 李四: the P's value is kept out, and the
    person who observed it must go with it -- the final 4.1 is still 张三's observation."""
    before, after, ack = _final_then_later_p(engine, http, "1", 16, "D001^张^三", "D002^李^四")
    assert _people(before) == ["张三"], before
    assert _people(after) == _people(before), (after.get("performer"), err_lines(ack))


def test_a_kept_out_p_does_not_put_its_method_on_the_final_value(engine: Engine, http: TestClient) -> None:
    """F 4.1 measured by ISE (OBX-17), then a later P 5.0 by a POCT method: the final 4.1 keeps its method."""
    before, after, _ = _final_then_later_p(engine, http, "2", 17, "ISE^离子选择电极法^L", "POCT^床旁快速检测^L")
    assert before.get("method"), before
    assert after.get("method") == before["method"], (before.get("method"), after.get("method"))


def test_a_kept_out_p_with_a_repeated_value_adds_no_component(engine: Engine, http: TestClient) -> None:
    """A later P restating OBX-5 with a repetition (5.0~5.2: the second a component of the same code) is kept
    out whole: no component of the P's is stored beside the final 4.1."""
    before, after, ack = _final_then_later_p(engine, http, "3", 5, "4.1", "5.0~5.2", value="5.0")
    assert after.get("component") == before.get("component"), (after.get("component"), err_lines(ack))


def test_a_kept_out_p_with_a_later_time_keeps_the_finals_time_and_says_so(engine: Engine, http: TestClient) -> None:
    """pdate36's case with OBX-14 only on the P (the final stated none, OBR-7 gave its time): the P's 11:30 is
    still not stored beside 4.1, and the W names it."""
    before, after, ack = _final_then_later_p(engine, http, "4", 14, "", "20261203113000")
    assert after.get("effectiveDateTime") == before.get("effectiveDateTime"), (before, after)
    (warned,) = [e for e in err_lines(ack) if "taken back only" in e and "|W|" in e]
    assert "Observation.effectiveDateTime" in warned.partition("what else")[0], warned


def _withdrawn(engine: Engine, http: TestClient, tag: str) -> str:
    assert b"MSA|AA" in post(http, _result(f"RV37A-{tag}A", "20261203100000", f"RV37AM{tag}", f"RV37AP{tag}",
                                           "4.1", "F"))
    (obs,) = written(engine, http, f"RV37A-{tag}A", "Observation")
    assert b"MSA|AA" in post(http, _result(f"RV37A-{tag}W", "20261203110000", f"RV37AM{tag}", f"RV37AP{tag}",
                                           "4.1", "W"))
    assert _obs(http, obs["id"])["status"] == "entered-in-error"
    return obs["id"]


def test_a_later_p_over_a_withdrawal_keeps_it_withdrawn_with_its_time(engine: Engine, http: TestClient) -> None:
    """The lead's 677e2e6f: W after F, then the LIS's later P 5.0 observed 11:30 -- still entered-in-error, 4.1,
    its time unchanged (``not_back``'s ``from`` now holds entered-in-error; ``with`` acts there too)."""
    obs_id = _withdrawn(engine, http, "5")
    before = _obs(http, obs_id)
    ack = post(http, _result("RV37A-5B", "20261203120000", "RV37AM5", "RV37AP5", "5.0", "P").replace(
        "|20261203083000", "|20261203113000"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, obs_id)
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), after
    assert after.get("effectiveDateTime") == before.get("effectiveDateTime"), after


def test_the_w_over_a_withdrawn_result_names_how_it_comes_back(engine: Engine, http: TestClient) -> None:
    obs_id = _withdrawn(engine, http, "6")
    ack = post(http, _result("RV37A-6B", "20261203120000", "RV37AM6", "RV37AP6", "5.0", "P"))
    assert b"MSA|AA" in ack and _obs(http, obs_id)["status"] == "entered-in-error", ack
    (warned,) = [e for e in err_lines(ack) if "|W|" in e and "OBX^1^11" in e]
    assert "or a withdrawal" not in warned and "(OBX-11 C" in warned and "F" in warned.split("(OBX-11")[1], warned


def test_a_p_over_a_withdrawn_result_writes_nothing_of_it(engine: Engine, http: TestClient) -> None:
    obs_id = _withdrawn(engine, http, "7")
    before = _obs(http, obs_id)
    ack = post(http, _result("RV37A-7B", "20261203120000", "RV37AM7", "RV37AP7", "5.0", "P", note="溶血"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, obs_id)
    assert after.get("note") == before.get("note"), after.get("note")


def test_the_whole_cn_is_read_to_the_listeners_port_and_no_further() -> None:
    """cn36: the CN is everything between `` CN=`` and the trailing `` port=<n>`` -- a CN holding ``port=`` of
    its own stays whole, and an HTTP client's subject is not read as a certificate."""
    assert peer_cn("10.0.0.5:40001 CN=Fengning County Hospital port=2575") == "Fengning County Hospital"
    assert peer_cn("10.0.0.5:40001 CN=Lab port=1 port=2575") == "Lab port=1"
    assert peer_cn("10.0.0.5:40001 port=2575") == ""
    assert client_of("10.0.0.5:40001 CN=Fengning Zhongyi Hospital port=2575") == "tls:Fengning Zhongyi Hospital"
    assert client_of("10.0.0.5:40001 port=2575") == "mllp:10.0.0.5"


def test_an_undone_increment_puts_back_a_field_it_added(store: Store) -> None:
    """cn36's port contract: an increment in a failed block is not kept -- nor the ``fields`` it set on a
    document that had none of them (on a MongoDB without transactions the undo ``$set`` the old values only)."""
    rows = store.collection("rv37a_counts")
    rows.increment("kept", "count")
    with pytest.raises(RuntimeError), store.transaction():
        rows.increment("kept", "count", fields={"last": "t2"})
        raise RuntimeError("boom")
    assert rows.get("kept") == {"_id": "kept", "count": 1}


def test_a_kept_out_p_does_not_redate_the_final_report(engine: Engine, http: TestClient) -> None:
    """F report of a specimen collected 08:00 (OBR-7), then the LIS's later P of a re-drawn specimen (OBR-7 11:00,
    OBX-14 11:30): its result is kept out, the report stays final -- and is still the 08:00 specimen's."""
    assert b"MSA|AA" in post(http, _result("RV37A-8A", "20261203100000", "RV37AM8", "RV37AP8", "4.1", "F"))
    (report,) = written(engine, http, "RV37A-8A", "DiagnosticReport")
    before = http.get(f"/fhir/DiagnosticReport/{report['id']}").json()
    later = _result("RV37A-8B", "20261203120000", "RV37AM8", "RV37AP8", "5.0", "P").replace(
        "|20261203083000", "|20261203113000").replace("|20261203080000|", "|20261203110000|")
    ack = post(http, later)
    assert b"MSA|AA" in ack, ack
    after = http.get(f"/fhir/DiagnosticReport/{report['id']}").json()
    assert after["status"] == "final", after
    assert after.get("effectiveDateTime") == before.get("effectiveDateTime"), (before.get("effectiveDateTime"),
                                                                               after.get("effectiveDateTime"), ack)


def test_a_report_status_refusal_names_no_empty_obr25(engine: Engine, http: TestClient) -> None:
    """bfe21fb3: the report's status refusal is located at OBR-25 -- where the message stated it. Another
    application's F over the LIS's correction with OBR-25 empty: whatever ERR the report's status gets, its
    ERR-2 does not point the sender at a field it left empty."""
    post(http, _potassium("RV37A-9A", "20261203100000", "RV37AM9", "RV37AP9", "4.1"))
    assert b"MSA|AA" in post(http, _potassium("RV37A-9B", "20261203120000", "RV37AM9", "RV37AP9", "5.6", "H", "C"))
    message = _potassium("RV37A-9C", "20261203130000", "RV37AM9", "RV37AP9", "4.4", "N", "F", report="").replace(
        "MSH|^~\\&|LIS|", "MSH|^~\\&|POCT|", 1)
    assert "||||CH|\r" in message
    ack = post(http, message)
    assert b"MSA|AE" in ack, ack
    assert "OBR^1^25" not in [e.split("|")[2] for e in err_lines(ack)], err_lines(ack)



def _spm(message: str, specimen: str, drawn: str) -> str:
    """``message`` with its order's specimen: SPM-2 ``specimen``, collected ``drawn`` (SPM-17)."""
    return message + f"SPM|1|{specimen}^LIS||BLD^全血^L|||||||||||||{drawn}\r"


def test_a_kept_out_p_of_a_redrawn_specimen_leaves_the_final_values_specimen(engine: Engine, http: TestClient) -> None:
    """The kept-out P of a re-drawn specimen (SPM-2 another, collected 11:00): the final 4.1 is still the first
    specimen's -- the P's specimen goes out with its value."""
    first = _result("RV37A-10A", "20261203100000", "RV37AM10", "RV37AP10", "4.1", "F")
    assert b"MSA|AA" in post(http, _spm(first, "RV37AS10A", "20261203080000"))
    (obs,) = written(engine, http, "RV37A-10A", "Observation")
    before = _obs(http, obs["id"])
    later = _result("RV37A-10B", "20261203120000", "RV37AM10", "RV37AP10", "5.0", "P").replace(
        "|20261203083000", "|20261203113000")
    assert b"MSA|AA" in post(http, _spm(later, "RV37AS10B", "20261203110000"))
    after = _obs(http, obs["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after
    assert before.get("specimen") and after.get("specimen") == before["specimen"], (before.get("specimen"), after)
