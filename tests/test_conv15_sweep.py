"""What the mutation sweep of the sample corpus found (conv15), each sent over MLLP, read via ``/fhir``.

- A planned numeric result (a test met before in the process) whose OBX-5 is blank (`` ``) or has an
  empty first component (``""^""``, ``^5``) was built by its plan with ``valueQuantity.value`` null:
  the write refused it and the message was answered AE 207 "internal error" with no field named.
  It now takes the ordinary path, as the first such result does: kept as text with a warning at OBX-5.
- A bare ``OBR`` segment (no fields: a Segment of length 0 is falsy) failed an assertion in the order
  key (AE 207 ``AssertionError``); it is now an order without number or code, warned as such.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)

MSH = "MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{c}|P|2.5.1\r"
PID = "PID|1||ZY15S^^^FNXRMYY^MR||王^建国||19850412|M\r"
OBR = "OBR|1|ORD-S|LAB-S|CREA^肌酐^L|||20261201083000\r"


def obx(n: int, value: str) -> str:
    return f"OBX|{n}|NM|CREA^肌酐^L||{value}|umol/L|57-111||||F|||20261201090000\r"


def test_a_planned_result_with_a_blank_value_is_kept_as_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    first = (MSH.format(c="S1") + PID + OBR + obx(1, "78")).encode()
    blanks = [(MSH.format(c=f"S{n}") + PID + OBR + obx(1, value)).encode()
              for n, value in ((2, " "), (3, '""^""'), (4, "^5"))]
    acks = send(engine, first, first.replace(b"|S1|", b"|S0|"), *blanks)  # the second builds the plan
    assert [ack_code_of(a) for a in acks] == ["AA"] * 5, acks[2]
    for ack in acks[2:]:
        assert b"OBX^1^5" in ack and b"is not a number" in ack
    for control in ("S2", "S3", "S4"):
        (result,) = written(engine, fhir, control, "Observation")
        assert "valueQuantity" not in result


def test_a_bare_obr_segment_is_an_order_without_number(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, (MSH.format(c="B1") + PID + "OBR\r"
                           + "OBX|1|ST|X1^外观^L||淡黄||||||F|||20261201090000\r").encode())
    assert ack_code_of(ack) == "AA", ack
    assert b"OBR^1^2" in ack  # warned: no placer or filler order number
    (result,) = written(engine, fhir, "B1", "Observation")
    assert result["valueString"] == "淡黄"
