"""codefix35: a result's coding joins the order's code only for the same test (review rvfixmix35).

srfix35 made a result message's coding of an order ADDED beside the order's (``union`` of one
CodeableConcept). The lead's rule: codings are one concept only when they name the same test -- a
coding in common, else one recognition item by the recognition rules' own code maps. A result coded as
another test (PT ordered, the LIS's ``1020`` 肝功能八项 = item LFT) adds nothing: the order's code and
item stay the ones ordered, its own report keeps its code, and the ACK warns at OBR-4. An order
message (``states``) for the same test keeps the stored codings and leads with its own, whichever
arrived first; for another test it states the code whole (a change of test).

Real HL7 v2 over ``POST /hl7v2`` into the real store on every backend (``tests.module_store``), read
back over ``/fhir``. Each test uses order numbers of its own.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.recognition.coding import item_for
from tests.module_store import module_eng
from tests.test_srfix35_order_code import LOINC, history, http, orm, oru, send, the_order

__all__ = ["http", "module_eng"]

APTT = {"system": "http://loinc.org", "code": "3173-2", "display": "APTT"}


def _errs(ack: str) -> list[list[str]]:
    return [s.split("|") for s in ack.replace("\n", "\r").split("\r") if s.startswith("ERR|")]


def test_a_result_coded_as_another_test_adds_nothing_and_warns(module_eng: Engine, http: TestClient) -> None:
    """PT ordered, the result coded 1020 (LFT): accepted, a W at OBR^1^4 naming the coding; the order's
    code stays [5902-2] 'PT' in every version, its item COAG; the report keeps its own code 1020."""
    placer = "CF-OTHER"
    send(http, orm(placer))
    ack = send(http, oru(placer, item="1020^肝功能八项^L"))
    assert "MSA|AA" in ack, ack
    warned = [e for e in _errs(ack) if e[2] == "OBR^1^4" and e[4] == "W"]
    assert warned and "another test" in warned[0][8] and "1020" in warned[0][8], ack
    order = the_order(http, placer)
    assert order["code"] == {"coding": [LOINC], "text": "PT"}
    assert {tuple(c["code"] for c in v["code"]["coding"]) for v in history(http, order)} == {("5902-2",)}
    assert item_for(order, module_eng.recognition.rules) == "COAG"
    found = http.get("/fhir/DiagnosticReport", params={"based-on": f"ServiceRequest/{order['id']}"}).json()
    (report,) = [e["resource"] for e in found.get("entry") or ()]
    assert {"1020", "LFT"} <= {c["code"] for c in report["code"]["coding"]}  # (the converter adds its LOINC, item)


def test_a_result_coded_in_the_orders_system_as_another_code_adds_nothing(http: TestClient) -> None:
    """One system codes one test once: the order's LOINC 5902-2 and a first result's LOINC 1742-6
    (before the filler numbered the order, so gfix13 does not refuse it): not one concept, warned."""
    placer = "CF-SYSTEM"
    send(http, orm(placer))
    ack = send(http, oru(placer, item="1742-6^ALT^LN"))
    assert "MSA|AA" in ack and any(e[2] == "OBR^1^4" and e[4] == "W" for e in _errs(ack)), ack
    assert the_order(http, placer)["code"] == {"coding": [LOINC], "text": "PT"}


def test_the_same_test_comes_out_the_same_in_either_arrival_order(http: TestClient) -> None:
    """ORM then ORU, and ORU then ORM: both store [5902-2, PTX] with the order's text; no warning."""
    send(http, orm("CF-FIRST"))
    assert "another test" not in send(http, oru("CF-FIRST"))
    send(http, oru("CF-LATE"))
    ack = send(http, orm("CF-LATE"))
    assert "another test" not in ack, ack
    first, late = the_order(http, "CF-FIRST")["code"], the_order(http, "CF-LATE")["code"]
    assert first == late == {"coding": [LOINC], "text": "PT"}, (first, late)  # (PTX in no map: mixfix36)


def test_an_order_change_to_another_test_after_a_result_states_it_whole(module_eng: Engine, http: TestClient) -> None:
    """ORM PT, ORU adds PTX, then an XO changing the test to APTT: the order is APTT alone (the LIS's PT
    coding is not kept beside another test); the same XO re-sent changes nothing."""
    placer = "CF-CHANGE"
    send(http, orm(placer))
    send(http, oru(placer))
    xo = orm(placer).replace("ORC|NW|", "ORC|XO|").replace("|5902-2^PT^LN|", "|3173-2^APTT^LN|")
    assert "MSA|AA" in send(http, xo)
    assert the_order(http, placer)["code"]["coding"] == [APTT]
    send(http, xo)
    order = the_order(http, placer)
    assert order["code"]["coding"] == [APTT]
    assert [v["code"]["coding"] for v in history(http, order)][-1] == [APTT]


def test_an_order_restated_after_a_result_keeps_the_lis_coding_through_more_results(http: TestClient) -> None:
    """ORM, ORU, XO (same test), ORU: [5902-2, PTX] in every version after the first -- no flip-flop."""
    placer = "CF-STEADY"
    send(http, orm(placer))
    send(http, oru(placer))
    send(http, orm(placer).replace("ORC|NW|", "ORC|XO|"))
    send(http, oru(placer))
    versions = [v["code"]["coding"] for v in history(http, the_order(http, placer))]
    assert all(c == [LOINC] for c in versions), versions  # (PTX in no map, not added: mixfix36)
