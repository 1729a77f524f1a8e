"""A replacement order takes the re-test reason of the order it replaces (nineteenth round, conv19).

The doctor states the re-test reason (ORC-16, huren's recognition reasons R01-R99) on the order
(NW). When the order is then replaced (ORC-1 RP naming it, RO the new order), the RO seldom repeats
ORC-16: the replacement -- the order the re-test is performed under -- was stored without a reason,
so mutual recognition flagged it a repeat without reason though the doctor had given one. A
replacement stating no reason of its own now takes the replaced order's (``merge.yaml``
ServiceRequest.reasonCode ``inherits`` through ``replaces``), whether the reason came in the RP/RO
message or in the earlier NW; one of its own is kept alone. Over MLLP, read via ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import PID, written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix18_replace_order import by_number
from tests.test_ingest_durability import err_fields

REASON = "urn:huren:recognition-reason"


def order(control: str, *groups: tuple[str, str, str]) -> bytes:
    body = "".join(f"ORC|{ctl}|{number}" + "|" * 14 + f"{reason}\rOBR|1|{number}||GLU^血糖^L|||20261201083000\r"
                   for ctl, number, reason in groups)
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201080000||ORM^O01^ORM_O01|{control}|P|2.5.1\r"
            + PID + body).encode()


def reasons(request: dict) -> list[str]:
    return [c["code"] for r in request.get("reasonCode", ()) for c in r.get("coding", ()) if c["system"] == REASON]


def test_the_replacement_takes_the_reason_given_on_the_order_it_replaces(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, order("RR0", ("NW", "ORD-RR1", "R01^病情变化")),
                order("RR1", ("RP", "ORD-RR1", ""), ("RO", "ORD-RR2", "")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    orders = by_number(written(engine, fhir, "RR1", "ServiceRequest"))
    assert orders["ORD-RR2"]["replaces"] == [{"reference": f"ServiceRequest/{orders['ORD-RR1']['id']}"}]
    assert reasons(orders["ORD-RR2"]) == ["R01"]  # was []: the re-test flagged a repeat without reason
    assert reasons(orders["ORD-RR1"]) == ["R01"]


def test_the_reason_on_the_replace_request_of_one_message(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, order("RR2", ("RP", "ORD-RR3", "R03^手术或输血前"), ("RO", "ORD-RR4", "")))
    assert ack_code_of(ack) == "AA", ack
    orders = by_number(written(engine, fhir, "RR2", "ServiceRequest"))
    assert reasons(orders["ORD-RR4"]) == ["R03"]


def test_a_replacement_with_its_own_reason_keeps_it_alone(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, order("RR3", ("NW", "ORD-RR5", "R01^病情变化")),
                order("RR4", ("RP", "ORD-RR5", ""), ("RO", "ORD-RR6", "R02^检查检验结果变化快")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    orders = by_number(written(engine, fhir, "RR4", "ServiceRequest"))
    assert reasons(orders["ORD-RR6"]) == ["R02"]


def test_an_order_replacing_nothing_takes_no_reason(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, order("RR5", ("NW", "ORD-RR7", "R01^病情变化")), order("RR6", ("RO", "ORD-RR8", "")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    (only,) = written(engine, fhir, "RR6", "ServiceRequest")
    assert reasons(only) == [] and "replaces" not in only



def test_an_order_the_lab_replaced_is_replaced(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """ORC-1 RU (replaced unsolicited: the filler replaced the order) and RQ (replaced as requested)
    name the order replaced, as RP does; both were unmapped: the replaced order stayed ``active``
    beside its replacement, which replaced nothing."""
    for control, kind in (("RU1", "RU"), ("RQ1", "RQ")):
        (ack,) = send(engine, order(control, (kind, f"ORD-{control}A", ""), ("RO", f"ORD-{control}B", "")))
        assert ack_code_of(ack) == "AA", ack
        orders = by_number(written(engine, fhir, control, "ServiceRequest"))
        old, new = orders[f"ORD-{control}A"], orders[f"ORD-{control}B"]
        assert (old["status"], new["status"]) == ("revoked", "active"), kind
        assert new["replaces"] == [{"reference": f"ServiceRequest/{old['id']}"}], kind


def test_a_replacement_alone_in_its_message_is_stored_unlinked_and_said(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """An RO whose replaced order came in another message: no field names the old order, and a guess
    among the patient's revoked orders could link the wrong one. Stored unlinked; the ACK says so at
    ORC-1 (it said nothing)."""
    acks = send(engine, order("RA0", ("RP", "ORD-RA1", "")), order("RA1", ("RO", "ORD-RA2", "")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    warned = [e for e in err_fields(acks[1]) if e[4] == "W" and e[2].startswith("ORC^1^1")]
    assert warned and "not linked" in warned[0][8], err_fields(acks[1])
    assert not [e for e in err_fields(acks[0]) if e[2].startswith("ORC^1^1")]
