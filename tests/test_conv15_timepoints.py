"""An OGTT time point re-sent alone (conv15): what lands where, and what the ACK says.

An OGTT's GLU results in two groups of one report take their own time in the id (``lis._repeated``,
convfix14) when OBX-4 does not tell them apart. A time point re-sent alone in a message of one group
is, in that message, the test's only result: it takes the test's plain key -- with or without OBX-14
-- and is stored beside the time point it re-states (the id must be a function of the message:
replay and recovery convert again; keying every result by its time would change every stored id).
Before, nothing said so; now the ACK warns (ERR W) naming both results. With OBX-4 telling the time
points apart, the re-sent one lands on its own result. Real bytes over MLLP, read back via ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convfix14 import group, message, points, report_status


def test_a_time_point_sent_alone_is_named_in_the_ack(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, message("W1", group(1, "P", "5.1", "0800", "F").replace("-OG", "-OW"),
                                group(2, "P", "9.8", "1000", "P").replace("-OG", "-OW")),
                message("W2", group(1, "F", "9.9", "1000", "F").replace("-OG", "-OW")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    assert b"OBX-4" not in acks[0]
    err = [s for s in acks[1].split(b"\r") if s.startswith(b"ERR") and b"told from the test's only result by OBX-4" in s]
    assert len(err) == 1 and b"|W|" in err[0] and "葡萄糖 at 2026-12-01T10:00".encode() in err[0]
    assert points(engine, fhir, "W2") == [(5.1, "08:00", "final"), (9.8, "10:00", "preliminary"),
                                          (9.9, "10:00", "final")]


def test_a_time_point_with_its_obx4_lands_on_its_result(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, message("S1", group(1, "P", "5.1", "0800", "F", "1").replace("-OG", "-OV"),
                                group(2, "P", "9.8", "1000", "P", "2").replace("-OG", "-OV")),
                message("S2", group(1, "F", "9.9", "1000", "F", "2").replace("-OG", "-OV")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    assert b"OBX-4" not in acks[1]
    assert points(engine, fhir, "S2") == [(5.1, "08:00", "final"), (9.9, "10:00", "final")]
    assert report_status(engine, fhir, "S2") == "final"
