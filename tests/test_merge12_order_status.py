"""How far an order got, from its result, and who may still take it back (mfix12).

merge12 made a ``completed`` order stand against an order message arriving after its result. But
every result message with a report completed the order, whatever OBR-25 said: a preliminary result
(P) or one saying the order was cancelled (X, no results) read back ``completed``, and then the
HIS could no longer cancel it (ORC-1 CA/OC) nor say it was placed for the wrong patient (ORC-5 ER).

Now OBR-25 F or C completes the order; P, R, I, A (some results) leave it active; X revokes it;
``entered-in-error`` always gets through. A cancel after a final result is refused as before (a
filler answers "unable to cancel", table 0119 UC), and the warning names the field (ERR-2).

Real bytes over MLLP into the real store, read back through ``/fhir``; it failed on 6b97b61.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_ingest_durability import err_fields
from tests.test_merge11_kinds import stored

PID = "PID|1||M0032^^^FNXRMYY^MR||冯^七||19720202|M\r"


def result(control: str, placer: str, status: str) -> bytes:
    return (
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261102091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r" + PID
        + f"ORC|RE|{placer}|F{placer}\r"
        + "|".join(["OBR", "1", placer, f"F{placer}", "GLU^血糖^L", "", "", "20261102083000", *[""] * 6,
                    "20261102083500", "BLD", *[""] * 6, "20261102091000", "", "", status]) + "\r"  # OBR-22, OBR-25
        + "OBX|1|NM|GLU^葡萄糖^L||5.4|mmol/L|3.9-6.1||||F|||20261102090000\r"
    ).encode()


def order(control: str, placer: str, control_code: str, orc5: str = "") -> bytes:
    return (
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261102080000||ORM^O01^ORM_O01|{control}|P|2.5.1\r" + PID
        + f"ORC|{control_code}|{placer}|||{orc5}\r"
        + f"OBR|1|{placer}||GLU^血糖^L|||20261102083000\r"
    ).encode()


def status(engine: Engine, fhir: TestClient, control: str) -> str:  # noqa: F811
    return stored(engine, fhir, control, "ServiceRequest")["status"]


def warned(ack: bytes) -> list[tuple[str, str]]:
    """(ERR-2, ERR-8) of each warning about the order's status."""
    return [(e[2], e[-1]) for e in err_fields(ack) if "ServiceRequest.status" in e[-1] and e[4] == "W"]


def test_a_preliminary_result_leaves_the_order_open_to_cancel(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, order("P1", "OP-1", "NW"), result("P2", "OP-1", "P"))
    assert status(engine, fhir, "P2") == "active"  # preliminary: final results not yet obtained
    acks += send(engine, order("P3", "OP-1", "CA"))
    assert status(engine, fhir, "P3") == "revoked" and not warned(acks[2])
    # results stored, not verified (R) or only some of them (A): not done either
    acks += send(engine, result("P4", "OP-2", "R"), result("P5", "OP-3", "A"))
    assert status(engine, fhir, "P4") == "active" and status(engine, fhir, "P5") == "active"
    assert [ack_code_of(a) for a in acks] == ["AA"] * 5


def test_a_result_saying_no_results_order_cancelled_revokes_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, order("X1", "OX-1", "NW"), result("X2", "OX-1", "X"))
    assert status(engine, fhir, "X2") == "revoked"
    acks += send(engine, order("X3", "OX-1", "OC"))  # the HIS confirms the cancel
    assert status(engine, fhir, "X3") == "revoked" and not warned(acks[2])
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3


def test_a_final_result_stands_but_not_against_entered_in_error(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, order("F1", "OF-1", "NW"), result("F2", "OF-1", "F"))
    assert status(engine, fhir, "F2") == "completed"
    # a late preliminary result, a re-sent NW and a cancel after the final result do not reopen it
    acks += send(engine, result("F3", "OF-1", "P"), order("F4", "OF-1", "NW"), order("F5", "OF-1", "CA"),
                 order("F6", "OF-1", "SC", "IP"))
    assert status(engine, fhir, "F6") == "completed"
    assert not warned(acks[2])  # the preliminary result states nothing the final one did not
    # each refusal is located at the field that stated it: ORC-1 (ORC-5 empty), else ORC-5
    assert [w[0] for w in warned(acks[3]) + warned(acks[4]) + warned(acks[5])] == ["ORC^1^1", "ORC^1^1", "ORC^1^5"]
    assert '"revoked" was not stored: "completed", stated earlier, stands' in warned(acks[4])[0][1]
    # the order was placed for the wrong patient: that gets through, whatever stood
    acks += send(engine, order("F7", "OF-1", "CA", "ER"))
    assert status(engine, fhir, "F7") == "entered-in-error" and not warned(acks[6])
    assert [ack_code_of(a) for a in acks] == ["AA"] * 7


def test_a_corrected_result_completes_the_order(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, result("C1", "OC-1", "P"), result("C2", "OC-1", "C"))
    assert status(engine, fhir, "C2") == "completed"
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2
