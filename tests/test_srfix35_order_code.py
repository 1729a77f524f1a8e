"""srfix35: a result message adds to what the order stated, never replaces it (thirty-fifth round).

The HIS orders a PT by LOINC (5902-2); the LIS reports it under its own local code (PTX). The
result message's copy of the ServiceRequest replaced the order's code, so the stored order no longer
said what was ordered (report evid35, "The order's code is overwritten"). ``merge.yaml``
ServiceRequest ``code: {result: union, key: [system, code]}``: the order's codings stand, first; the
result's coding is added beside them, once; the order's text stays. The refusal of another test under
a number the filler already named (gfix13: AE at OBR-4) is unchanged. Of the other fields a result
restates: the ordering doctor sent by id alone keeps the name the order gave (``requester`` keeps its
display); the priority the doctor ordered (stat) is not replaced by the LIS's routine (``priority``
owned by the order); notes and reasons were already kept beside each other (union).

Real HL7 v2 over ``POST /hl7v2`` into the real store, on every backend (``tests.module_store``), each
stored order read back over ``/fhir`` with its history. Each test uses order numbers of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.recognition.coding import item_for
from tests.hl7_calls import ER7
from tests.module_store import module_eng
from tests.test_probepay26_windows import msh, pid

__all__ = ["module_eng"]
B = "FNZYY"  # the demo site's member; no code map knows PTX (凝血): not added to the order (mixfix36)
ORDERED, RESULTED = "20260312080000+0800", "20260312100000+0800"
LOINC = {"system": "http://loinc.org", "code": "5902-2", "display": "PT"}
LOCAL = {"system": f"urn:huren:code:{B}", "code": "PTX", "display": "凝血"}


@pytest.fixture(scope="module")
def http(module_eng: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(module_eng)) as client:
        client.headers["Authorization"] = "Bearer " + module_eng.auth.issue_system_token("srfix35", "system/*.cruds")
        yield client


def send(http: TestClient, message: str) -> str:
    r = http.post("/hl7v2", content=message.replace("\n", "\r").encode(), headers={"Content-Type": ER7})
    assert r.status_code == 200, r.text
    return r.text


def orm(placer: str, kind: str = "ORM^O01^ORM_O01") -> str:
    """The HIS's order: PT by LOINC, stat (ORC-7.6 S), by Dr Zhang (ORC-12 with his name), a note."""
    return (msh(B, "HIS", kind, ORDERED) + pid(B)
            + f"ORC|NW|{placer}^HIS|||||^^^{ORDERED}^^S||{ORDERED}|||D7^张^医生\n"
            + f"OBR|1|{placer}^HIS||5902-2^PT^LN|||{ORDERED}||||||抗凝治疗中|||D7^张^医生\n")


def oml(placer: str) -> str:
    """The same order as an OML^O21 (its ORC/OBR in the order group)."""
    return (msh(B, "HIS", "OML^O21^OML_O21", ORDERED) + pid(B)
            + f"ORC|NW|{placer}^HIS|||||^^^{ORDERED}^^S||{ORDERED}|||D7^张^医生\n"
            + f"OBR|1|{placer}^HIS||5902-2^PT^LN|||{ORDERED}||||||抗凝治疗中|||D7^张^医生\n")


def oru(placer: str, item: str = "PTX^凝血^L", status: str = "F") -> str:
    """The LIS's result: its own code, the doctor by id alone (ORC-12/OBR-16 ``D7``), OBR-27.6 R, a note."""
    return (msh(B, "LIS", "ORU^R01^ORU_R01", RESULTED) + pid(B)
            + f"ORC|RE|{placer}^HIS|F{placer}^LIS||CM|||||||D7\n"
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{item}|||{RESULTED}||||||溶血复查|||D7||||||{RESULTED}|||{status}"
            + "||^^^^^R\n"
            + f"OBX|1|NM|5902-2^PT^LN||12.5|s|||||{status}|||{RESULTED}\n")


def the_order(http: TestClient, placer: str) -> dict[str, Any]:
    found = http.get("/fhir/ServiceRequest", params={"identifier": f"urn:huren:id:HIS|{placer}"}).json()
    orders = [e["resource"] for e in found.get("entry") or ()]
    assert len(orders) == 1, found
    return orders[0]


def history(http: TestClient, order: dict[str, Any]) -> list[dict[str, Any]]:
    """The order's versions, oldest first."""
    r = http.get(f"/fhir/ServiceRequest/{order['id']}/_history")
    assert r.status_code == 200, r.text
    return sorted((e["resource"] for e in r.json()["entry"]), key=lambda v: int(v["meta"]["versionId"]))


@pytest.mark.parametrize("order_message", [orm, oml], ids=["ORM", "OML"])
def test_the_result_keeps_the_orders_code(module_eng: Engine, http: TestClient, order_message: Any) -> None:
    """(mixfix36: PTX is in no code map -- not evidence of the same test, so no longer added beside the
    order's; a mapped LIS code of the same test is: tests/test_mixfix36_order_code.py)"""
    placer = f"SR-{order_message.__name__}"
    assert "MSA|AA" in send(http, order_message(placer))
    assert "MSA|AA" in send(http, oru(placer))
    order = the_order(http, placer)
    # the order's coding and text, not replaced by the result's
    assert order["code"] == {"coding": [LOINC], "text": "PT"}, order["code"]
    versions = history(http, order)
    assert [v["code"]["coding"] for v in versions] == [[LOINC], [LOINC]]
    assert versions[-1]["status"] == "completed" and versions[-1]["identifier"][-1]["value"] == f"F{placer}"
    # the order's recognition item is still read from it (the LIS's code alone named none: None before)
    assert item_for(order, module_eng.recognition.rules) == "COAG"


def test_a_result_said_again_adds_nothing_twice(http: TestClient) -> None:
    """A preliminary then a final result and the final re-sent: one coding per system and code, no new
    version for the same code (the order's first throughout)."""
    placer = "SR-AGAIN"
    send(http, orm(placer))
    send(http, oru(placer, status="P"))
    send(http, oru(placer))
    send(http, oru(placer, item="PTX^^L"))  # the same code, its display left out
    order = the_order(http, placer)
    assert order["code"] == {"coding": [LOINC], "text": "PT"}  # (PTX, in no map, not added: mixfix36)
    assert all(v["code"]["coding"][0] == LOINC for v in history(http, order))


def test_another_test_under_the_fillers_number_is_still_refused(http: TestClient) -> None:
    """gfix13's refusal unchanged: once the filler numbered the order, a result naming another local test
    under that number (a coding system in common with the stored codes, no code) is AE at OBR-4,
    nothing written; the stored order keeps both codings. (mixfix36: the LIS's first code must be one a map
    knows as the ordered test to be stored -- 1020 under an LFT order; PTX, in no map, is not.)"""
    placer = "SR-OTHER"
    send(http, orm(placer).replace("|5902-2^PT^LN|", "|24325-3^肝功能^LN|"))
    send(http, oru(placer, item="1020^肝功能八项^L"))
    before = the_order(http, placer)
    assert {"24325-3", "1020"} <= {c["code"] for c in before["code"]["coding"]}, before["code"]
    ack = send(http, oru(placer, item="PTY^凝血酶时间^L"))
    assert "MSA|AE" in ack and "OBR^1^4" in ack, ack
    after = the_order(http, placer)
    assert after["meta"]["versionId"] == before["meta"]["versionId"]
    assert after["code"]["coding"] == before["code"]["coding"]


def test_the_doctor_and_the_priority_the_order_stated_stay(http: TestClient) -> None:
    """The result names the ordering doctor by id alone and OBR-27.6 R: the order's doctor keeps his
    name, its stat stands (the ACK says the routine was not stored), both notes are kept."""
    placer = "SR-DOCTOR"
    send(http, orm(placer))
    ordered = the_order(http, placer)
    assert ordered["requester"]["display"] == "张医生" and ordered["priority"] == "stat"
    ack = send(http, oru(placer))
    assert "MSA|AA" in ack and "ServiceRequest.priority" in ack, ack
    order = the_order(http, placer)
    assert order["requester"] == ordered["requester"]
    assert order["priority"] == "stat"
    assert order["note"] == [{"text": "抗凝治疗中"}, {"text": "溶血复查"}]


def test_a_result_first_fills_what_no_order_stated(http: TestClient) -> None:
    """No order message before the result: the result's code, doctor and priority are the order's."""
    placer = "SR-FIRST"
    send(http, oru(placer))
    order = the_order(http, placer)
    assert order["code"]["coding"] == [LOCAL]
    assert order["priority"] == "routine"
    assert order["requester"]["reference"].startswith("Practitioner/")


def test_another_doctor_named_by_a_later_order_message_replaces_him(http: TestClient) -> None:
    """``keeps`` holds a name only for the same doctor: an order message naming another doctor states
    that one, his own name and not Dr Zhang's."""
    placer = "SR-XO"
    send(http, orm(placer))
    first = the_order(http, placer)["requester"]
    send(http, orm(placer).replace("ORC|NW|", "ORC|XO|").replace("D7^张^医生", "D8^李^医生"))
    now = the_order(http, placer)["requester"]
    assert now["reference"] != first["reference"] and now.get("display") == "李医生"
