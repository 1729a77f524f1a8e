"""The "send OBX-4" warning, only where OBX-4 is missing, once per result (convfix15).

conv15 named in the ACK (ERR W) a result new to a report of the test and time of one the report
lists: an OGTT time point re-sent alone without OBX-4 lands beside the one it re-states. It also
warned for a result its OBX-4 tells apart (a new GLU, OBX-4 3, beside the stored 1 and 2 at one
time: a genuinely new result), once per stored result of that test and time. Now: only a new result
without OBX-4, and one line per new result. Real bytes over MLLP, read back via ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import PID
from tests.test_conv14_groups import MSH, OBR
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convfix14 import points

WARNED = b"told from the test's only result by OBX-4"


def glu(control: str, *subs: str, order: str) -> bytes:
    obx = "".join(f"OBX|{n}|NM|GLU^葡萄糖^L|{sub}|5.{n}|mmol/L|3.9-6.1||||F|||20261201080000\r"
                  for n, sub in enumerate(subs, 1))
    return (MSH.format(c=control) + PID + f"ORC|RE|ORD-{order}|LAB-{order}\r"
            + OBR.format(n=1, o=order, test="GLU^葡萄糖^L", status="F") + obx).encode()


def test_a_result_its_obx4_tells_apart_is_not_warned(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, glu("G1", "1", "2", order="GA"), glu("G2", "3", order="GA"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    assert WARNED not in acks[1]
    assert len(points(engine, fhir, "G2")) == 3


def test_a_result_without_obx4_is_warned_once(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, glu("H1", "1", "2", order="GB"), glu("H2", "", order="GB"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    assert acks[1].count(WARNED) == 1
