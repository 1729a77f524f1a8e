"""A bare ORC group's ids, as they always were (convfix15, a reviewer's finding in conv15's merge).

conv15 read a bare ``OBR`` (no fields: a Segment of length 0 is falsy) with ``is not None`` so it no
longer failed an assertion (AE 207); the same reading also sent a bare ``ORC`` group (no OBR), which
never failed, into the report's key: its Observation and DiagnosticReport took other ids than
before, so a re-send of such a stored message stored duplicates, and the ACK warned twice of the
missing ORC-2/ORC-3. The ids below are the ones the code before conv15's merge gave this message;
the sample corpus keeps its ids too (checked by converting it with both codes). Real bytes over
MLLP, the stored message's resources read back via ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)

BARE_ORC = ("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|B1|P|2.5.1\r"
            "PID|1||ZY15S^^^FNXRMYY^MR||王^建国||19850412|M\r"
            "ORC\r"
            "OBX|1|ST|X1^外观^L||淡黄||||||F|||20261201090000\r").encode()


def test_a_bare_orc_group_keeps_its_ids(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, BARE_ORC)
    assert ack_code_of(ack) == "AA", ack
    assert ack.count(b"no placer or filler order number") == 1  # warned once, at ORC-2
    (result,) = written(engine, fhir, "B1", "Observation")
    (report,) = written(engine, fhir, "B1", "DiagnosticReport")
    assert result["id"] == "7072010d-fab1-544d-b8a7-997060576dbd"
    assert report["id"] == "06a3e9ab-dcb7-58f7-b2f0-f199d230ddc4"
    assert result["valueString"] == "淡黄"
