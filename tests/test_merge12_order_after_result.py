"""A result message's status is not erased by the order message that arrives after it (merge12).

Out-of-order arrival is ordinary between a HIS and a LIS: the LIS result (ORU^R01) for an order
reaches huren before the HIS order (ORM^O01 / OML^O21) for the same placer number, which rebuilds
the same ServiceRequest. Feeds combine ``keep-if-absent``, so the order's ``active`` (ORC-1 NW)
replaced the ``completed`` the result stated: the order read back as still to be done.

Real bytes over MLLP into the real store, read back through ``/fhir``; each failed before.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_ingest_durability import err_fields
from tests.test_merge11_kinds import stored

PID = "PID|1||M0031^^^FNXRMYY^MR||赵^六||19700101|F\r"
OBR = "OBR|1|ORD-S|{filler}|GLU^血糖^L|||20261101083000|||||||20261101083500|BLD|||||||20261101091000|||{status}\r"


def result(control: str, status: str = "F", orc: str = "") -> bytes:
    return (
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
        + PID + orc + OBR.format(filler="LAB-S", status=status)
        + "OBX|1|NM|GLU^葡萄糖^L||5.2|mmol/L|3.9-6.1||||F|||20261101090000\r"
    ).encode()


def order(control: str, control_code: str = "NW", orc5: str = "", structure: str = "ORM^O01^ORM_O01") -> bytes:
    return (
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101080000||{structure}|{control}|P|2.5.1\r"
        + PID + "|".join(["ORC", control_code, "ORD-S", "", "", orc5, *[""] * 10,  # ORC-5, ORC-16
                          "R03^重复检查^urn:huren:recognition-reason"]) + "\r"
        + "OBR|1|ORD-S||GLU^血糖^L|||20261101083000\r"
    ).encode()



def status_warnings(ack: bytes) -> list[str]:
    return [e[-1] for e in err_fields(ack) if "ServiceRequest.status" in e[-1] and e[4] == "W"]


def test_an_order_arriving_after_its_result_leaves_the_result_status(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, result("S1"), order("S2"), order("S3", "CA"),
                order("S4", structure="OML^O21^OML_O21"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 4
    request = stored(engine, fhir, "S4", "ServiceRequest")
    assert request["status"] == "completed"
    # what the order states that the result did not is stored: its re-test reason
    assert any(c["code"] == "R03" for rc in request["reasonCode"] for c in rc["coding"])
    # the status not stored is named in each order's ACK, never dropped silently
    assert all(status_warnings(a) for a in acks[1:]) and not status_warnings(acks[0])
    assert '"revoked" was not stored: "completed", stated earlier, stands' in status_warnings(acks[2])[0]
    # located at the field that stated it (ERR-2: ORC-1, the order control, when ORC-5 is empty)
    assert [e[2] for e in err_fields(acks[2]) if "ServiceRequest.status" in e[-1]] == ["ORC^1^1"]


def test_in_their_own_order_the_order_and_its_result_each_state_the_status(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, order("T1"), order("T2", "HD"))
    assert stored(engine, fhir, "T2", "ServiceRequest")["status"] == "on-hold"  # an order holds its order
    acks += send(engine, order("T3", "RL"), result("T4", "P", orc="ORC|RE|ORD-S|||IP\r"))
    # ORC-5 IP: in process (the preliminary result says no more); then the final result completes it
    assert stored(engine, fhir, "T4", "ServiceRequest")["status"] == "active"
    acks += send(engine, result("T5"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 5 and not any(status_warnings(a) for a in acks)
    assert stored(engine, fhir, "T5", "ServiceRequest")["status"] == "completed"
