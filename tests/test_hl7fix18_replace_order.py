"""An order replaced (ORC-1 RP) by a replacement order (ORC-1 RO) (review of the eighteenth round, pay18).

v2 chapter 4 sends a replacement as a pair of order groups in one message: RP (order/service replace
request) naming the order replaced, then RO (replacement order) naming the new one. Both were mapped
``revoked`` and nothing tied them together: the re-test ordered in place of the old order read as
cancelled, and the old one as a cancellation. The RO order is now ``active`` and ``replaces`` the RP
one (R4 ServiceRequest.replaces; the RP order stays ``revoked``: it ends there). Over MLLP, read via
``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import PID, written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)


def order(control: str, *groups: tuple[str, str]) -> bytes:
    body = "".join(f"ORC|{ctl}|{number}\rOBR|1|{number}||GLU^血糖^L|||20261201083000\r" for ctl, number in groups)
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201080000||ORM^O01^ORM_O01|{control}|P|2.5.1\r"
            + PID + body).encode()


def by_number(orders: list[dict]) -> dict[str, dict]:
    return {o["identifier"][0]["value"]: o for o in orders}


def test_a_replacement_order_is_active_and_replaces_the_order_it_replaces(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, order("RP0", ("NW", "ORD-R1")), order("RP1", ("RP", "ORD-R1"), ("RO", "ORD-R2")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    orders = by_number(written(engine, fhir, "RP1", "ServiceRequest"))
    old, new = orders["ORD-R1"], orders["ORD-R2"]
    assert old["status"] == "revoked"
    assert new["status"] == "active"  # was revoked: the replacement read as cancelled
    assert new["replaces"] == [{"reference": f"ServiceRequest/{old['id']}"}]
    assert "replaces" not in old


def test_an_order_without_a_replace_request_replaces_nothing(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, order("RQ1", ("NW", "ORD-Q1"), ("RO", "ORD-Q2")))
    assert ack_code_of(ack) == "AA", ack
    orders = by_number(written(engine, fhir, "RQ1", "ServiceRequest"))
    assert orders["ORD-Q2"]["status"] == "active" and "replaces" not in orders["ORD-Q2"]
    assert "replaces" not in orders["ORD-Q1"]


def test_an_order_replaced_under_its_own_number_does_not_replace_itself(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """RP and RO under one placer number (a changed order re-sent as its own replacement) are one
    ServiceRequest: it must not ``replaces`` itself -- the recognition rate then voided the order's
    own check and counted it nowhere (review of hl7fix18)."""
    acks = send(engine, order("RS0", ("NW", "ORD-S1")), order("RS1", ("RP", "ORD-S1"), ("RO", "ORD-S1")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    (only,) = written(engine, fhir, "RS1", "ServiceRequest")
    assert "replaces" not in only, only
