"""rv36c: review probes of ordfix36 (``not_back``, ``not_from_older``, collected refusals) and mixfix36
(a dated status placeholder; an order's code judged by the maps), merged in the thirty-sixth round.

Real HL7 v2 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read
back over ``/fhir``; the operator's decision through ``POST /admin/quarantine/{id}/replay?as=later``.
A probe that shows a defect is a strict xfail naming its severity; the others guard what was found sound."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_order35_as_later import _operator
from tests.test_ordfix36_final_back import _result
from tests.test_ordfix36_report_times import _panel
from tests.test_rv36a_probes import _potassium
from tests.test_rvfixord35_probes import _message, _order
from tests.test_srfix35_order_code import LOINC, orm, oru, send, the_order

__all__ = ["engine", "module_http"]

engine = module_eng


def _obs(http: TestClient, obs_id: str) -> dict:
    return http.get(f"/fhir/Observation/{obs_id}").json()


def _final(engine: Engine, http: TestClient, tag: str, value: str = "4.1", stamp: str = "20261203100000") -> str:
    """The LIS's final potassium ``value`` (MSH-7 ``stamp``): the Observation's id."""
    assert b"MSA|AA" in post(http, _result(f"RV36C-{tag}A", stamp, f"RV36CM{tag}", f"RV36CP{tag}", value, "F"))
    (obs,) = written(engine, http, f"RV36C-{tag}A", "Observation")
    return obs["id"]


# --- ordfix36 ``not_back``: a result taken back only by C, A/B, W/D ---------------------------------

def test_a_later_preliminary_does_not_take_back_a_correction(engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), C 4.3 (11:00), then the LIS's P 4.3 re-sent at 12:00: merge.yaml says
    ``not_back: {from: [final, corrected, amended], ...}`` -- the corrected result stays corrected."""
    obs_id = _final(engine, http, "1")
    assert b"MSA|AA" in post(http, _result("RV36C-1B", "20261203110000", "RV36CM1", "RV36CP1", "4.3", "C"))
    ack = post(http, _result("RV36C-1C", "20261203120000", "RV36CM1", "RV36CP1", "4.3", "P"))
    assert b"MSA|AA" in ack, ack
    stored = _obs(http, obs_id)
    assert (stored["status"], stored["valueQuantity"]["value"]) == ("corrected", 4.3), stored


def test_a_later_preliminary_value_does_not_overwrite_a_correction(engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), C 4.3 (11:00), then P 5.0 at 12:00: the corrected 4.3 stands (as P 5.0 after an F does)."""
    obs_id = _final(engine, http, "2")
    assert b"MSA|AA" in post(http, _result("RV36C-2B", "20261203110000", "RV36CM2", "RV36CP2", "4.3", "C"))
    ack = post(http, _result("RV36C-2C", "20261203120000", "RV36CM2", "RV36CP2", "5.0", "P"))
    assert b"MSA|AA" in ack, ack
    stored = _obs(http, obs_id)
    assert (stored["status"], stored["valueQuantity"]["value"]) == ("corrected", 4.3), stored


def test_a_clients_put_of_preliminary_over_a_final(engine: Engine, http: TestClient) -> None:
    """merge.yaml: "A FHIR client's PUT states the whole result" -- the client's PUT of the result as
    preliminary 5.0 is either stored as it states it or refused (4xx); never a 2xx that keeps final 4.1."""
    obs_id = _final(engine, http, "3")
    body = _obs(http, obs_id)
    body.pop("meta", None)
    body["status"], body["valueQuantity"] = "preliminary", {**body["valueQuantity"], "value": 5.0}
    put = http.put(f"/fhir/Observation/{obs_id}", json=body)
    stored = _obs(http, obs_id)
    if put.status_code < 300:
        assert (stored["status"], stored["valueQuantity"]["value"]) == ("preliminary", 5.0), (put.text, stored)
    else:
        assert 400 <= put.status_code < 500 and stored["status"] == "final", put.text


# --- mixfix36 ``_dated``: a status placeholder restating the value ----------------------------------

def _potassium_by(app: str, control: str, stamp: str, tag: str, value: str, flag: str, status: str) -> str:
    return _potassium(control, stamp, f"RV36CM{tag}", f"RV36CP{tag}", value, flag, status).replace(
        "MSH|^~\\&|LIS|", f"MSH|^~\\&|{app}|", 1)


def test_a_decided_placeholder_value_is_taken_as_later(engine: Engine, http: TestClient) -> None:
    """The LIS's 4.1 F (10:00) and its 12:00 correction 5.6 (C, H); the POCT's 13:00 4.4 with OBX-11 empty
    is refused (AE, at OBX^1^5); the operator replays it "as later": AA, the decision used, 4.4 stored --
    and the stored status ``corrected`` kept (the placeholder states none)."""
    tag = "4"
    post(http, _potassium_by("LIS", "RV36C-4A", "20261203100000", tag, "4.1", "N", "F"))
    (obs,) = written(engine, http, "RV36C-4A", "Observation")
    assert b"MSA|AA" in post(http, _potassium_by("LIS", "RV36C-4B", "20261203120000", tag, "5.6", "H", "C"))
    ack = post(http, _potassium_by("POCT", "RV36C-4C", "20261203130000", tag, "4.4", "N", ""))
    assert b"MSA|AE" in ack, ack
    r = http.post(f"/admin/quarantine/{message_id('FNXRMYY', 'RV36C-4C')}/replay?as=later",
                  headers=_operator(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    assert r.json()["decided"]["used"] is True, r.json()
    after = _obs(http, obs["id"])
    assert (after["valueQuantity"]["value"], after["status"]) == (4.4, "corrected"), after


def _two(control: str, stamp: str, tag: str, values: tuple[str, str], status: str, app: str = "LIS") -> str:
    """Potassium and sodium under one order, OBX-11 ``status`` (OBR-25 F), from ``app``."""
    body = _message(control, stamp, f"RV36CM{tag}", [_order(f"RV36CP{tag}", [("K", values[0], "N"),
                                                                               ("NA", values[1], "N")])], app)
    return body.replace("|N|||F|||", f"|N|||{status}|||")


def test_two_placeholders_not_told_are_refused_together_and_decided_once(engine: Engine, http: TestClient) -> None:
    """The merge's join of ordfix36's collected refusals and mixfix36's placeholder dating: the LIS's F then
    C of K and NA; the POCT's 13:00 K and NA with OBX-11 empty -- AE with one ERR 206 at each value
    (OBX^1^5, OBX^2^5), both corrected versions recorded; one decision takes both values, ``corrected`` kept."""
    tag = "5"
    post(http, _two("RV36C-5A", "20261203100000", tag, ("4.1", "140"), "F"))
    ids = {o["code"]["coding"][0]["code"]: o["id"] for o in written(engine, http, "RV36C-5A", "Observation")}
    assert b"MSA|AA" in post(http, _two("RV36C-5B", "20261203120000", tag, ("4.3", "141"), "C"))
    ack = post(http, _two("RV36C-5C", "20261203130000", tag, ("4.4", "142"), "", app="POCT"))
    assert b"MSA|AE" in ack, ack
    # (and one at OBR^1^25 since stat39: the report beside corrected results is stored corrected, and the POCT's
    # "final" over it cannot be told later either -- rv39h checked it is the rule, not a regression)
    refused = [e for e in err_lines(ack) if "|206^" in e and "|OBX^" in e]
    assert sorted(e.split("|")[2] for e in refused) == ["OBX^1^5", "OBX^2^5"], ack
    msg = message_id("FNXRMYY", "RV36C-5C")
    doc = engine.ingestor.messages.get(msg)
    assert sorted(e["resource"] for e in doc["refused_against"] if e["resource"].startswith("Observation/")) == sorted(
        f"Observation/{i}" for i in ids.values()), doc["refused_against"]
    r = http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=_operator(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    got = {c: _obs(http, i) for c, i in ids.items()}
    assert {c: (o["valueQuantity"]["value"], o["status"]) for c, o in got.items()} == {
        "K": (4.4, "corrected"), "NA": (142, "corrected")}, got


# --- mixfix36 ``_concept_union``: the order message states its code -------------------------------

@pytest.fixture(scope="module")
def orders(engine: Engine) -> Iterator[TestClient]:
    """A system client of the module's engine (srfix35's order and result messages, FNZYY)."""
    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv36c", "system/*.cruds")
        yield client


def test_an_xo_restating_the_same_test_by_its_text_keeps_the_coding(orders: TestClient) -> None:
    """NW PT by LOINC (5902-2^PT^LN), then an XO of the same order whose OBR-4 carries only the text ``PT``
    -- the very text stored: the same test, said thinner; the LOINC coding is not erased."""
    placer = "RV36C-XOT"
    assert "MSA|AA" in send(orders, orm(placer))
    assert the_order(orders, placer)["code"]["coding"] == [LOINC]
    ack = send(orders, orm(placer).replace("ORC|NW|", "ORC|XO|").replace("|5902-2^PT^LN|", "|^PT|"))
    assert "MSA|AA" in ack, ack
    code = the_order(orders, placer)["code"]
    assert LOINC["code"] in {c.get("code") for c in code.get("coding") or ()}, code


def test_another_local_test_under_the_fillers_number_is_refused(orders: TestClient) -> None:
    """srfix35's original set-up: PT by LOINC, the LIS's PTX result under filler FRV36C-PTY, then its PTY
    (凝血酶时间) under the same filler number: AE at OBR^1^4, nothing of it filed under the PT order."""
    placer = "RV36C-PTY"
    assert "MSA|AA" in send(orders, orm(placer))
    assert "MSA|AA" in send(orders, oru(placer))
    ack = send(orders, oru(placer, item="PTY^凝血酶时间^L"))
    assert "MSA|AE" in ack and "OBR^1^4" in ack, ack


# --- ordfix36 ``not_from_older``: a report's times ------------------------------------------------

def _with_end(message: str, collected: str, end: str) -> str:
    """``message`` with OBR-8 ``end`` (the report's effective a period, OBR-7 to OBR-8)."""
    head, obr, tail = message.partition("\rOBR|")
    return head + obr + tail.replace(f"|{collected}|", f"|{collected}|{end}", 1)


def test_an_older_message_stating_a_collection_instant_leaves_the_stored_period(
        engine: Engine, http: TestClient) -> None:
    """12:00: the panel collected 08:00-08:15 (OBR-7/8: effectivePeriod), issued 12:00; then the LIS's 11:00
    message with OBR-7 alone (effectiveDateTime), issued 11:00, arriving last: the report's times stay the
    12:00 message's -- the choice sibling is not written over the stored period either."""
    first = _with_end(_panel("RV36C-6A", "20261203120000", "RV36CM6", "RV36CP6", collected="20261203080000",
                             issued="20261203120000", results=[("K", "4.1", "N")]), "20261203080000", "20261203081500")
    assert b"MSA|AA" in post(http, first)
    (report,) = written(engine, http, "RV36C-6A", "DiagnosticReport")
    assert "effectivePeriod" in report, report
    ack = post(http, _panel("RV36C-6B", "20261203110000", "RV36CM6", "RV36CP6", collected="20261203080500",
                            issued="20261203110000", results=[("K", "4.1", "N")]))
    assert b"MSA|AA" in ack, ack
    after = http.get(f"/fhir/DiagnosticReport/{report['id']}").json()
    assert (after.get("issued"), after.get("effectivePeriod"), after.get("effectiveDateTime")) == (
        report.get("issued"), report["effectivePeriod"], None), after


def test_the_refusal_of_a_placeholder_value_names_the_value(engine: Engine, http: TestClient) -> None:
    """The LIS's F then C (5.6); the POCT's 13:00 4.4 with OBX-11 empty: the ERR 206 at OBX^1^5 names what
    the operator is asked to decide -- the value 4.4 (valueQuantity) over the stored 5.6."""
    tag = "7"
    post(http, _potassium_by("LIS", "RV36C-7A", "20261203100000", tag, "4.1", "N", "F"))
    assert b"MSA|AA" in post(http, _potassium_by("LIS", "RV36C-7B", "20261203120000", tag, "5.6", "H", "C"))
    ack = post(http, _potassium_by("POCT", "RV36C-7C", "20261203130000", tag, "4.4", "N", ""))
    (refused,) = [e for e in err_lines(ack) if "|206^" in e]
    assert refused.split("|")[2] == "OBX^1^5", refused
    assert "valueQuantity" in refused and "4.4" in refused, refused


def test_a_later_placeholder_value_over_a_withdrawal_is_not_hidden_as_withdrawn(
        engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), the LIS's W (11:00), then its 13:00 4.4 with OBX-11 empty: mixfix36's rule "later -- its
    value taken, the stored status kept" makes the withdrawn record carry 4.4. Either refused (AE: the status
    it restores cannot be told) or not an entered-in-error record quietly carrying a value never withdrawn."""
    tag = "8"
    post(http, _potassium_by("LIS", "RV36C-8A", "20261203100000", tag, "4.1", "N", "F"))
    (obs,) = written(engine, http, "RV36C-8A", "Observation")
    assert b"MSA|AA" in post(http, _potassium_by("LIS", "RV36C-8B", "20261203110000", tag, "4.1", "N", "W"))
    ack = post(http, _potassium_by("LIS", "RV36C-8C", "20261203130000", tag, "4.4", "N", ""))
    after = _obs(http, obs["id"])
    hidden = after["status"] == "entered-in-error" and after["valueQuantity"]["value"] == 4.4
    assert not (b"MSA|AA" in ack and hidden), (ack, after)


def test_an_order_by_text_alone_does_not_take_another_tests_coding(orders: TestClient) -> None:
    """NW by text alone (OBR-4 ^血常规), then the LIS's result under it coded 1020 肝功能八项 (FNZYY's map: LFT):
    nothing shows 1020 is the test ordered, so the order's code does not take it."""
    placer = "RV36C-TXT"
    assert "MSA|AA" in send(orders, orm(placer).replace("|5902-2^PT^LN|", "|^血常规|"))
    send(orders, oru(placer, item="1020^肝功能八项^L"))
    code = the_order(orders, placer)["code"]
    assert "1020" not in {c.get("code") for c in code.get("coding") or ()}, code
