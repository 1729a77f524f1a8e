"""What an order message may change of an order a result described, and one report from two OBR
groups (conv13).

- A reflex test the lab added (OBR-11 G: ``intent: reflex-order``) became a plain ``order`` when the
  HIS order message for it arrived after the result: the converter writes ``order`` whenever OBR-11
  says nothing more, and feeds combine keep-if-absent. ``order`` is now a placeholder
  (``merge.yaml``): it fills an order stored without an intent and never replaces a specific one.
- Two OBR groups of one message for the same report (one filler number): the report kept the first
  group's status and listed only the first group's results. It now lists every group's results and
  is as far as its least advanced group, and so is its order (completed only when all are final).

Real bytes over MLLP into the real store, read back through ``/fhir``; each failed on 0f3d33c.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_ingest_durability import err_fields

PID = "PID|1||M1301^^^FNXRMYY^MR||周^十三^^^^^L||19700101|F\r"


def written(engine: Engine, fhir: TestClient, control: str, rtype: str) -> list[dict[str, Any]]:  # noqa: F811
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    return [fhir.get(f"/fhir/{r}").json() for r in doc["resources"] if r.startswith(rtype + "/")]


def reflex_result(control: str) -> bytes:
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r" + PID
            + "OBR|1|ORD-RX|LAB-RX|TSH^促甲状腺激素^L|||20261201083000||||G|||20261201083500|BLD"
              "||||||||20261201091000|||F\r"
            + "OBX|1|NM|TSH^促甲状腺激素^L||2.1|mIU/L|0.27-4.2||||F|||20261201090000\r").encode()


def order(control: str) -> bytes:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201080000||ORM^O01^ORM_O01|{control}|P|2.5.1\r" + PID
            + "ORC|NW|ORD-RX\r" + "OBR|1|ORD-RX||TSH^促甲状腺激素^L|||20261201083000\r").encode()


def test_an_order_after_a_reflex_result_leaves_it_a_reflex_order(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, reflex_result("R1"), order("R2"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    (request,) = written(engine, fhir, "R2", "ServiceRequest")
    assert request["intent"] == "reflex-order"
    # the order message stated no intent: nothing refused, nothing to warn of
    assert not [e for a in acks for e in err_fields(a) if "intent" in e[-1]]
    # the other way round the result's reflex-order replaces the order's plain one
    acks = send(engine, order("R3").replace(b"ORD-RX", b"ORD-RY"), reflex_result("R4").replace(b"ORD-RX", b"ORD-RY"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    (request,) = written(engine, fhir, "R4", "ServiceRequest")
    assert request["intent"] == "reflex-order"


def two_groups(control: str, first: str, second: str) -> bytes:
    obr = ("OBR|{n}|ORD-{c}|LAB-{c}|SGN^肾功能^L|||20261201083000|||||||20261201083500|BLD"
           "|||||||20261201091000|||{status}\r")
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r" + PID
            + f"ORC|RE|ORD-{control}|LAB-{control}\r" + obr.format(n=1, c=control, status=first)
            + f"OBX|1|NM|CREA^肌酐^L||78|umol/L|57-111||||{first}|||20261201090000\r"
            + f"ORC|RE|ORD-{control}|LAB-{control}\r" + obr.format(n=2, c=control, status=second)
            + f"OBX|1|NM|UREA^尿素^L||5|mmol/L|2-8||||{second}|||20261201090000\r").encode()


def test_two_groups_for_one_report_list_both_and_are_as_far_as_the_less_advanced(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, two_groups("G1", "F", "P"), two_groups("G2", "P", "F"), two_groups("G3", "F", "C"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3
    for control, report_status, order_status in (("G1", "preliminary", "active"), ("G2", "preliminary", "active"),
                                                 ("G3", "corrected", "completed")):
        (report,) = written(engine, fhir, control, "DiagnosticReport")
        observations = {o["id"] for o in written(engine, fhir, control, "Observation")}
        assert len(observations) == 2
        assert {r["reference"].split("/")[1] for r in report["result"]} == observations
        assert report["status"] == report_status, control
        (request,) = written(engine, fhir, control, "ServiceRequest")
        assert request["status"] == order_status, control
