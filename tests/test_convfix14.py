"""What review found in conv14, fixed (convfix14). Real bytes over MLLP, read back through /fhir.

- A stored result of the same test as a carried one was taken for that result said again under a
  new id without anything else checked: an OGTT's two GLU results (OBX-4 1 and 2) and the final
  0 h result alone made the report final while the 2 h result was preliminary.
- A result's id depended on its group's place among the message's groups: a message re-sending
  some of an OGTT's time points put one time point's value on another's result (the 0 h 5.1 lost).
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import PID, written
from tests.test_conv14_groups import MSH, OBR
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)


def group(n: int, status: str, value: str, when: str, result_status: str, sub: str = "") -> str:
    return ("ORC|RE|ORD-OG|LAB-OG\r" + OBR.format(n=n, o="OG", test="OGTT^糖耐量^L", status=status)
            + f"OBX|1|NM|GLU^葡萄糖^L|{sub}|{value}|mmol/L|3.9-7.8||||{result_status}|||20261201{when}00\r")


def message(control: str, *groups: str) -> bytes:
    return (MSH.format(c=control) + PID + "".join(groups)).encode()


def points(engine: Engine, fhir: TestClient, control: str) -> list[tuple[float, str, str]]:  # noqa: F811
    (done,) = written(engine, fhir, control, "DiagnosticReport")
    found = [fhir.get(f"/fhir/{r['reference']}").json() for r in done["result"]]
    return sorted((o["valueQuantity"]["value"], o["effectiveDateTime"][11:16], o["status"]) for o in found)


def report_status(engine: Engine, fhir: TestClient, control: str) -> str:  # noqa: F811
    (done,) = written(engine, fhir, control, "DiagnosticReport")
    return done["status"]


def test_a_report_is_not_final_while_a_result_it_lists_is_not(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    first = (MSH.format(c="P1") + PID + "ORC|RE|ORD-OS|LAB-OS\r"
             + OBR.format(n=1, o="OS", test="OGTT^糖耐量^L", status="P")
             + "OBX|1|NM|GLU^葡萄糖^L|1|5.1|mmol/L|3.9-6.1||||F|||20261201080000\r"
             + "OBX|2|NM|GLU^葡萄糖^L|2|9.8|mmol/L|3.9-7.8||||P|||20261201100000\r").encode()
    second = (MSH.format(c="P2") + PID + "ORC|RE|ORD-OS|LAB-OS\r"
              + OBR.format(n=1, o="OS", test="OGTT^糖耐量^L", status="F")
              + "OBX|1|NM|GLU^葡萄糖^L|1|5.1|mmol/L|3.9-6.1||||F|||20261201080000\r").encode()
    acks = send(engine, first, second)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    assert points(engine, fhir, "P2") == [(5.1, "08:00", "final"), (9.8, "10:00", "preliminary")]
    assert report_status(engine, fhir, "P2") == "preliminary"


def test_a_time_point_keeps_its_result_when_fewer_groups_are_sent(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, message("T1", group(1, "P", "5.1", "0800", "F"), group(2, "P", "7.5", "0900", "F"),
                                group(3, "P", "9.8", "1000", "P")),
                message("T2", group(1, "F", "5.1", "0800", "F"), group(2, "F", "9.9", "1000", "F")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    # groups 1 and 3 re-sent (now the message's first and second): each updates its own result
    ids = {r["id"] for r in written(engine, fhir, "T1", "Observation")}
    assert len(ids) == 3 and {r["id"] for r in written(engine, fhir, "T2", "Observation")} < ids
    assert points(engine, fhir, "T2") == [(5.1, "08:00", "final"), (7.5, "09:00", "final"), (9.9, "10:00", "final")]
    assert report_status(engine, fhir, "T2") == "final"


def test_a_time_point_sent_alone_does_not_take_another_points_result(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, message("A1", group(1, "P", "5.1", "0800", "F").replace("-OG", "-OA"),
                                group(2, "P", "9.8", "1000", "P").replace("-OG", "-OA")),
                message("A2", group(1, "F", "9.9", "1000", "F").replace("-OG", "-OA")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    found = points(engine, fhir, "A2")
    assert (5.1, "08:00", "final") in found  # the 0 h result is not overwritten
    assert (9.9, "10:00", "final") in found
    assert report_status(engine, fhir, "A2") != "final" or all(s == "final" for *_, s in found)


def test_a_message_without_results_does_not_take_a_final_report_back(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Final CREA, then OBR-25 P, I, R or S and no OBX: the report went back to preliminary,
    registered or partial. R4's report status only moves forward: the final report stays final,
    and the ACK warns that the message's status was not stored (located at OBR-25)."""
    from tests.test_conv14_groups import result
    from tests.test_ingest_durability import err_fields

    for n, status in enumerate("PIRS"):
        order = f"-B{status}"
        acks = send(engine, result(f"B{n}1", "F").replace(b"-ST", order.encode()),
                    result(f"B{n}2", status, value="").replace(b"-ST", order.encode()))
        assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
        assert report_status(engine, fhir, f"B{n}2") == "final", status
        (err,) = [e for e in err_fields(acks[1]) if "DiagnosticReport.status" in e[-1]]
        assert err[2] == "OBR^1^25" and err[4] == "W" and '"final", stated earlier, stands' in err[-1]
    # a cancel (OBR-25 X, no results) after preliminary results still cancels (conv14)
    send(engine, result("BX1", "P").replace(b"-ST", b"-BX"), result("BX2", "X", value="").replace(b"-ST", b"-BX"))
    assert report_status(engine, fhir, "BX2") == "cancelled"
