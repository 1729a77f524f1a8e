"""rv36f: probes of round 36's merged status36 (``_backward``, ``_by_results``, ``withdrawn``), codefix36 and
xotext36 changes. Real HL7 v2 through ``POST /hl7v2`` into the real store on each backend
(``tests.module_store``), read back over ``/fhir``. Each test uses identifiers of its own (RV36F...).
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_ordfix36_final_back import _result
from tests.test_rv36a_probes import _potassium
from tests.test_rvfixord35_probes import _message, _order
from tests.test_srfix35_order_code import orm, oru, send, the_order

__all__ = ["engine", "module_http"]

engine = module_eng


def _obs(http: TestClient, obs_id: str) -> dict:
    return http.get(f"/fhir/Observation/{obs_id}").json()


def _withdrawn(engine: Engine, http: TestClient, tag: str) -> str:
    """The LIS's F 4.1 (10:00), then its W (11:00): the Observation's id."""
    assert b"MSA|AA" in post(http, _potassium(f"RV36F-{tag}A", "20261203100000", f"RV36FM{tag}",
                                              f"RV36FP{tag}", "4.1", "N", "F"))
    (obs,) = written(engine, http, f"RV36F-{tag}A", "Observation")
    assert b"MSA|AA" in post(http, _potassium(f"RV36F-{tag}B", "20261203110000", f"RV36FM{tag}",
                                              f"RV36FP{tag}", "4.1", "N", "W"))
    assert _obs(http, obs["id"])["status"] == "entered-in-error"
    return obs["id"]


def test_a_placeholder_over_a_withdrawal_stores_not_its_note(engine: Engine, http: TestClient) -> None:
    """F 4.1, W, then the LIS's 13:00 4.4 with OBX-11 empty and a note (NTE) on the result: 'nothing of the
    Observation is written' -- the note of a value not stored is not filed on the withdrawn result."""
    obs_id = _withdrawn(engine, http, "2")
    msg = _potassium("RV36F-2C", "20261203130000", "RV36FM2", "RV36FP2", "4.4", "N", "").rstrip("\r")
    ack = post(http, msg + "\rNTE|1||复查溶血\r")
    assert b"MSA|AA" in ack, ack
    after = _obs(http, obs_id)
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), after
    assert "复查溶血" not in str(after.get("note")), after


def test_a_later_preliminary_does_not_revive_a_withdrawal(engine: Engine, http: TestClient) -> None:
    """F 4.1, W (11:00: posted as wrong, e.g. the wrong patient), then the LIS's P 5.0 at 12:00 (a re-sent
    preliminary): the withdrawn version stays (entered-in-error 4.1), the ACK warns at OBX^1^11 -- as a
    placeholder over a withdrawal is kept out (status36) and a P over F/C/A is (``not_back``). Now: AA, no
    ERR, the result is 'preliminary' 5.0, shown to clinicians again."""
    obs_id = _withdrawn(engine, http, "3")
    ack = post(http, _potassium("RV36F-3C", "20261203120000", "RV36FM3", "RV36FP3", "5.0", "N", "P"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, obs_id)
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), after
    assert [e for e in err_lines(ack) if "|OBX^1^11|" in e and "|W|" in e], ack


def test_a_later_cancel_does_not_revive_a_withdrawal_with_a_value(engine: Engine, http: TestClient) -> None:
    """F 4.1, W (11:00), then the LIS's X 5.0 at 12:00: X says no result was obtained; the withdrawn version
    stays (entered-in-error 4.1) -- not 'cancelled' with 5.0, a value the X itself says does not exist."""
    obs_id = _withdrawn(engine, http, "5")
    ack = post(http, _potassium("RV36F-5C", "20261203120000", "RV36FM5", "RV36FP5", "5.0", "N", "X"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, obs_id)
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), after


def test_a_placeholder_over_a_withdrawal_holds_not_its_new_neighbour(engine: Engine, http: TestClient) -> None:
    """F K 4.1, W, then the LIS's 13:00 message restating K 4.4 with OBX-11 empty beside a new NA 140 (F):
    K stays withdrawn (W at OBX^1^5), the new NA is stored -- 'nothing of the Observation' is that one
    result, not the message."""
    obs_id = _withdrawn(engine, http, "4")
    group = _order("RV36FP4", [("K", "4.4", "N"), ("NA", "140", "N")])
    group[2] = group[2].replace("|N|||F|||", "|N|||||", 1)
    ack = post(http, _message("RV36F-4C", "20261203130000", "RV36FM4", [group]))
    assert b"MSA|AA" in ack, ack
    assert [e.split("|")[2] for e in err_lines(ack) if "withdrawn" in e and "|W|" in e] == ["OBX^1^5"], ack
    after = _obs(http, obs_id)
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), after
    by_code = {o["code"]["coding"][0]["code"]: o for o in written(engine, http, "RV36F-4C", "Observation")}
    assert by_code["NA"]["valueQuantity"]["value"] == 140 and by_code["NA"]["status"] == "final", by_code


def _reports(http: TestClient, order: dict) -> list[dict]:
    found = http.get("/fhir/DiagnosticReport", params={"based-on": f"ServiceRequest/{order['id']}"}).json()
    return [e["resource"] for e in found.get("entry") or ()]


def test_a_clients_put_recoding_a_filed_report_is_taken(engine: Engine, http: TestClient) -> None:
    """codefix36 put ``another: {result: reject}`` on DiagnosticReport.code (read through ``basedOn`` to the
    FILL order): a rule of the LIS's result messages, not of a FHIR client, who states the whole resource.
    PT ordered, the LIS's RV36FA filed, then a client PUTs the report recoded RV36FB (same system): 200,
    stored as stated -- not a 422 nor a 500."""
    placer = "RV36F-PUT"
    send(http, orm(placer))
    assert "MSA|AA" in send(http, oru(placer, item="RV36FA^凝血^L"))
    (report,) = _reports(http, the_order(http, placer))
    body = {**report, "code": {**report["code"], "coding": [
        {**c, "code": "RV36FB", "display": "凝血酶时间"} if c.get("code") == "RV36FA" else c
        for c in report["code"]["coding"]]}}
    r = http.put(f"/fhir/DiagnosticReport/{report['id']}", json=body)
    assert r.status_code == 200, r.text
    (after,) = _reports(http, the_order(http, placer))
    assert [c["code"] for c in after["code"]["coding"]] == ["RV36FB"], after["code"]


def test_a_kept_out_preliminary_does_not_redate_the_corrected_value(engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), C 4.3 (11:00), both observed at 08:30 (OBX-14); then the LIS's 12:00 P 5.0 of a
    specimen observed at 11:30. status36 keeps corrected 4.3 (W at OBX^1^11) but merges 'what else it
    states', effectiveDateTime among it: the record then says 4.3 was observed at 11:30 -- a value paired
    with another observation's time. The value's time goes with the value (as ``until_later`` dates it)."""
    assert b"MSA|AA" in post(http, _result("RV36F-6A", "20261203100000", "RV36FM6", "RV36FP6", "4.1", "F"))
    (obs,) = written(engine, http, "RV36F-6A", "Observation")
    assert b"MSA|AA" in post(http, _result("RV36F-6B", "20261203110000", "RV36FM6", "RV36FP6", "4.3", "C"))
    before = _obs(http, obs["id"])
    ack = post(http, _result("RV36F-6C", "20261203120000", "RV36FM6", "RV36FP6", "5.0", "P").replace(
        "|20261203083000", "|20261203113000"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, obs["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("corrected", 4.3), after
    assert after["effectiveDateTime"] == before["effectiveDateTime"], (before["effectiveDateTime"], after)


def test_an_xo_by_the_lis_display_of_an_order_by_text_keeps_the_added_coding(engine: Engine, http: TestClient) -> None:
    """xotext36 across both of its rules: ``^血常规`` ordered, the LIS's 1001 (血常规五分类, CBC by FNZYY's
    map) added to it; then the HIS's XO ``^血常规五分类`` (the display of the stored 1001): the same test
    said thinner (``_named_again``) -- the codings stay, the XO's text leads."""
    placer = "RV36F-XODISP"
    order_by_text = orm(placer).replace("|5902-2^PT^LN|", "|^血常规|")
    assert "MSA|AA" in send(http, order_by_text)
    assert "MSA|AA" in send(http, oru(placer, item="1001^血常规五分类^L"))
    codes = {c["code"] for c in the_order(http, placer)["code"]["coding"]}
    assert "1001" in codes, codes
    xo = orm(placer).replace("ORC|NW|", "ORC|XO|").replace("|5902-2^PT^LN|", "|^血常规五分类|")
    assert "MSA|AA" in send(http, xo)
    after = the_order(http, placer)["code"]
    assert {c["code"] for c in after["coding"]} == codes and after["text"] == "血常规五分类", after
