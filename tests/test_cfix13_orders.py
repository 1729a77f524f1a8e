"""Two tests under one order number, and an order's intent corrected (cfix13, review of conv13).

- Two OBR groups of one ORU sharing placer and filler numbers but naming two tests (CREA, UREA) make
  two ServiceRequests and one DiagnosticReport. Each order's status came from the combined report
  "as it stands so far": groups sent P then F left UREA's order active although its own OBR-25 and
  OBX-11 were final. Each order's status is now its own group's; the least advanced group decides
  the combined report, and an order only when several groups name that same order. The combined
  report kept the first group's code (CREA) while listing urea's result too: it is now the panel,
  said in ``code.text`` (R4: the codings of one CodeableConcept are one concept).
- OBR-11 R (revised order, a plain order stated) after OBR-11 G (reflex-order) left the order
  reflex-order: ``order`` was a placeholder in the merge rules whatever OBR-11 said. Only an empty
  OBR-11 is now an assumed ``order``.

Real bytes over MLLP into the real store, read back through ``/fhir``; each test failed on d185f4d.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import PID, written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)


def two_tests(control: str, first: str, second: str, *, filler2: str = "") -> bytes:
    """One ORU: CREA's group then UREA's, one placer and filler number (or ``filler2`` for the second)."""
    obr = ("OBR|{n}|ORD-{c}|{f}|{test}|||20261201083000|||||||20261201083500|BLD"
           "|||||||20261201091000|||{status}\r")
    filler = f"LAB-{control}"
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r" + PID
            + f"ORC|RE|ORD-{control}|{filler}\r"
            + obr.format(n=1, c=control, f=filler, test="CREA^肌酐^L", status=first)
            + f"OBX|1|NM|CREA^肌酐^L||78|umol/L|57-111||||{first}|||20261201090000\r"
            + f"ORC|RE|ORD-{control}|{filler2 or filler}\r"
            + obr.format(n=2, c=control, f=filler2 or filler, test="UREA^尿素^L", status=second)
            + f"OBX|1|NM|UREA^尿素^L||5|mmol/L|2-8||||{second}|||20261201090000\r").encode()


def orders_by_test(engine: Engine, fhir: TestClient, control: str) -> dict[str, dict[str, Any]]:  # noqa: F811
    out = {}
    for request in written(engine, fhir, control, "ServiceRequest"):
        codes = {c["code"] for c in request["code"]["coding"]}
        (test,) = codes & {"CREA", "UREA", "SGN"}
        out[test] = request
    return out


def test_each_test_of_one_order_number_takes_its_own_groups_status(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, two_tests("T1", "P", "F"), two_tests("T2", "F", "P"), two_tests("T3", "P", "C"),
                two_tests("T4", "F", "F"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 4
    for control, crea, urea, combined in (("T1", "active", "completed", "preliminary"),
                                          ("T2", "completed", "active", "preliminary"),
                                          ("T3", "active", "completed", "preliminary"),
                                          ("T4", "completed", "completed", "final")):
        orders = orders_by_test(engine, fhir, control)
        assert set(orders) == {"CREA", "UREA"}, control
        assert orders["CREA"]["status"] == crea, control
        assert orders["UREA"]["status"] == urea, control
        (report,) = written(engine, fhir, control, "DiagnosticReport")
        assert report["status"] == combined, control
        assert {b["reference"] for b in report["basedOn"]} == {f"ServiceRequest/{o['id']}" for o in orders.values()}
        # the report is the panel of both tests, neither test's code alone
        assert "coding" not in report["code"], control
        assert "肌酐" in report["code"]["text"] and "尿素" in report["code"]["text"], control
        observations = {o["code"]["coding"][0]["code"] for o in written(engine, fhir, control, "Observation")}
        assert observations == {"CREA", "UREA"}


def test_two_groups_of_one_order_and_two_reports_leave_it_as_far_as_the_less_advanced(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The same test in both groups (one ServiceRequest) with two filler numbers (two reports): the
    order is done only when both are; its reports each keep their own status and code."""
    same = two_tests("S1", "P", "F", filler2="LAB-S1B").replace("UREA^尿素".encode(), "CREA^肌酐".encode())
    (ack,) = send(engine, same)
    assert ack_code_of(ack) == "AA"
    (request,) = written(engine, fhir, "S1", "ServiceRequest")
    assert request["status"] == "active"
    reports = written(engine, fhir, "S1", "DiagnosticReport")
    assert sorted(r["status"] for r in reports) == ["final", "preliminary"]
    assert all(r["code"]["coding"][0]["code"] == "CREA" for r in reports)


def reflex(control: str, obr11: str, status: str = "F") -> bytes:
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r" + PID
            + f"OBR|1|ORD-IX|LAB-IX|TSH^促甲状腺激素^L|||20261201083000||||{obr11}|||20261201083500|BLD"
              f"||||||||20261201091000|||{status}\r"
            + f"OBX|1|NM|TSH^促甲状腺激素^L||2.1|mIU/L|0.27-4.2||||{status}|||20261201090000\r").encode()


def test_a_stated_plain_order_corrects_a_reflex_order_an_empty_obr11_does_not(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, reflex("I1", "G"), reflex("I2", "", "C"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    (request,) = written(engine, fhir, "I2", "ServiceRequest")
    assert request["intent"] == "reflex-order"  # OBR-11 empty says nothing of the intent
    acks = send(engine, reflex("I3", "R", "C"))
    assert [ack_code_of(a) for a in acks] == ["AA"]
    (request,) = written(engine, fhir, "I3", "ServiceRequest")
    assert request["intent"] == "order"  # R: a revised order, a plain order stated
    acks = send(engine, reflex("I4", "G", "C"), reflex("I5", "", "C"))
    (request,) = written(engine, fhir, "I5", "ServiceRequest")
    assert request["intent"] == "reflex-order"


def test_a_later_group_of_the_same_order_states_the_intent_the_first_left_out(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The first group of an order says nothing of its intent (OBR-11 empty), the second says G: the
    order is a reflex order (the first group's assumed ``order`` stood, as ``Context.put`` keeps what
    an earlier group made)."""
    message = two_tests("J1", "F", "F").replace("UREA^尿素".encode(), "CREA^肌酐".encode())
    first, second = message.split(b"\rOBR|2|")
    fields = second.split(b"|")  # after "OBR|2|": OBR-2 first, so OBR-11 is the tenth
    second = b"|".join([*fields[:9], b"G", *fields[10:]])
    (ack,) = send(engine, first + b"\rOBR|2|" + second)
    assert ack_code_of(ack) == "AA"
    (request,) = written(engine, fhir, "J1", "ServiceRequest")
    assert request["intent"] == "reflex-order"
