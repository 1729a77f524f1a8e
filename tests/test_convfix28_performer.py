"""OBX-23 after the review of convleft28 (twenty-eighth round, convfix28): a member named as the
performer lends a result its QC only when the site declares that the sender sends results that
member performed (senders.yaml ``performers``, the lead's decision); a report several members
performed is recognisable as a whole when every one of them qualifies. Real HL7 over MLLP into the
real store; the order-time check is ``$check-recognition`` over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.recognition.decision import QC_NOT_PASSED, assess
from tests.performer_site import checked, mllp, performer_site
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Engine, TestClient]]:
    """HOSPA/B/C with QC for the blood count; the site declares HOSPA sends results HOSPC performed."""
    with performer_site(tmp_path, performers="{HOSPA: [HOSPC]}") as world:
        yield world


def panel(inst: str, placer: str, when: str, obx23_rbc: str) -> str:
    """``inst``'s blood count: the leukocytes its own lab counted, the erythrocytes whom ``obx23_rbc`` names."""
    return (msh(inst, "LIS", "ORU^R01^ORU_R01", when, f"{inst}-ORU-{placer}") + pid(inst)
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{when}\n"
            + f"OBX|2|NM|RBC^红细胞^L||4.5|10*12/L|||||F|||{when}|||||||||{obx23_rbc}\n")


def test_a_member_not_declared_for_the_sender_is_not_recognisable(world: tuple[Engine, TestClient]) -> None:
    """HOSPC names HOSPA (QC passed) as the performer, but the site declares no such relation: the
    result is not recognisable, and the reason names the undeclared performer of that sender."""
    engine, http = world
    mllp(engine, order("HOSPC", "C1", CBC, ts(5)), panel("HOSPC", "C1", ts(5, 10), "县人民医院^^^^^^XX^^^HOSPA"))
    assert checked(http, engine, "HOSPB") == []
    [report] = engine.repository.search("DiagnosticReport", [("_count", "5")]).resources
    facts = engine.recognition.facts.result(report)
    assert facts is not None and facts.institution == "performer-not-declared-for-sender:HOSPC|HOSPA"
    [rbc] = engine.repository.search("Observation", [("code", "RBC")]).resources
    assert rbc["performer"][0]["display"] == "县人民医院"  # named as sent, at HOSPA's own Organization
    mllp(engine, order("HOSPB", "B1", CBC, ts(0, 7)))
    [b1] = [o for o in engine.repository.search("ServiceRequest", [("_count", "50")]).resources
            if any(i.get("value") == "B1" for i in o.get("identifier", ()))]
    assert assess(engine.recognition.facts.order(b1), facts, engine.recognition.rules) == QC_NOT_PASSED


def test_a_panel_every_performer_of_which_qualifies_is_recognisable(world: tuple[Engine, TestClient]) -> None:
    """HOSPA counted the leukocytes, HOSPC (declared for HOSPA, QC passed) the erythrocytes: the
    panel is recognisable as a whole (the every-performer rule is not "never")."""
    engine, http = world
    mllp(engine, order("HOSPA", "A1", CBC, ts(5)), panel("HOSPA", "A1", ts(5, 10), "镇卫生院^^^^^^XX^^^HOSPC"))
    [report] = engine.repository.search("DiagnosticReport", [("_count", "5")]).resources
    assert [p["identifier"]["value"] for p in report["performer"]] == ["HOSPA", "HOSPC"]
    assert checked(http, engine, "HOSPB") == ["HOSPA"]
