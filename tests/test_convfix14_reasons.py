"""ORC-16 of every OBR group of one order (convfix14). An order slip with two groups of one order
(one placer number, one test), each with its ORC: the order kept only the first group's reason
(``Context.put`` adds only what the first group's ServiceRequest did not hold), so a re-test reason
(R01) stated in the second group was lost and the re-test flagged as a suspected duplicate. Every
group's reasons are kept in ``ServiceRequest.reasonCode``, each once, and recognition reads the
order's reasons as recorded at order time. MLLP in, CDS/recognition as the ACK says, /fhir read back."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_recognition_e2e import CBC, WANG, A, B, Sender, bearer, engine, msh, pid, result, site  # noqa: F401

R01 = "R01^病情变化^urn:huren:recognition-reason"
ASKED = "Z1^患者要求^L"  # a reason the recognition rules do not know


def two_group_order(placer: str, when: str, first: str, second: str) -> str:
    def group(n: int, reason: str) -> str:
        return (f"ORC|NW|{placer}^HIS|||||||{when}|||D1^医^生||||{reason}\n"
                f"OBR|{n}|{placer}^HIS||{CBC[B]}|||{when}\n")
    return (msh(B, "HIS", "ORM^O01^ORM_O01", when, f"{B}-ORM-{placer}") + pid(B, WANG, "MZ9")
            + group(1, first) + group(2, second))


def test_every_groups_order_reason_is_kept_and_decides(engine: Engine, mllp: int) -> None:  # noqa: F811
    hl7 = Sender(mllp)
    hl7.send(result(A, WANG, "ZY1", "A-1", CBC[A], "20260310093000"))
    # B repeats the blood count inside the window; the second group states the re-test reason
    hl7.send(two_group_order("B-1", "20260313080000", ASKED, R01))
    ack = hl7.send(result(B, WANG, "MZ9", "B-1", CBC[B], "20260313093000"))
    assert "Suspected duplicate test" not in ack and "DetectedIssue/dup-" not in ack
    http = TestClient(create_app(engine))
    found = http.get("/fhir/ServiceRequest?identifier=B-1", headers=bearer(engine, "system/*.rs")).json()
    orders = [e["resource"] for e in found.get("entry") or ()]
    assert len(orders) == 1
    codes = [c["code"] for r in orders[0]["reasonCode"] for c in r.get("coding") or ()]
    assert sorted(codes) == ["R01", "Z1"]  # each once (the result message's ORC states none)
    # the order re-sent, and a group repeating the other's reason: no reason twice. (Twentieth round:
    # money20 read Z1 in both groups as R01 withdrawn; moneymend20: ORC-16 is HL7's order control
    # code reason, and a local code is no withdrawal -- only ``""`` withdraws, so R01 stands.)
    hl7.send(two_group_order("B-1", "20260313080000", ASKED, ASKED).replace(f"{B}-ORM-B-1", f"{B}-ORM-B-1b"))
    found = http.get("/fhir/ServiceRequest?identifier=B-1", headers=bearer(engine, "system/*.rs")).json()
    (order,) = [e["resource"] for e in found["entry"]]
    assert sorted(c["code"] for r in order["reasonCode"] for c in r.get("coding") or ()) == ["R01", "Z1"]
