"""rv44e (forty-fourth round): review of suite44c's shared engines (``tests/shared_worlds44.py``) -- whether a test
sent under its own names (``OwnSender``/``renamed``) is still the scenario as written, and whether a test of the shared
community reads only its own person. Real HL7 v2 over real MLLP into the real store (``community_eng``), both
backends."""

from __future__ import annotations

import pytest

from engine.engine import Engine
from tests.shared_worlds44 import OwnSender, community_eng, community_mllp, own, run_names, theirs
from tests.test_money20_reason_change import prior
from tests.test_recognition_e2e import LI, Sender
from tests.test_recognition_policy_e2e import CBC, msh, order, ts
from tests.test_recognition_policy_e2e import result as oru

__all__ = ["community_eng", "community_mllp"]


def _patients(engine: Engine, value: str) -> list[dict]:
    return engine.repository.search("Patient", [("identifier", value)]).resources


def test_two_people_of_one_name_and_birth_date_are_never_each_others_prior(
        community_eng: Engine, community_mllp: int, request: pytest.FixtureRequest) -> None:
    """Guard of the shared community (every ``OwnSender`` run is 王建国, born 1985-04-12, M, under an ID number of its
    own): one run's HOSPA blood count is no prior of another run's HOSPB repeat -- the flag, the order-time check
    and HOSPB's flags ``theirs`` reads are the run's own person's, or every converted "not flagged" assertion would
    read another test's flag (or none) and pass. Run A with a prior is flagged; run B, the same HOSPB order the
    same day but no prior of her own, is not, and ``theirs`` finds her check pending."""
    a, b = own(request, "RV44E-A"), own(request, "RV44E-B")
    first = OwnSender(community_mllp, a)
    prior(first)
    first.send(order("HOSPB", "B1", CBC, ts(1)))
    first.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    second = OwnSender(community_mllp, b)
    placed = second.send(order("HOSPB", "B1", CBC, ts(1)))
    assert "Recognisable prior" not in placed, placed
    second.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    (_, checks_a, flags_a), (order_b, checks_b, flags_b) = theirs(community_eng, a), theirs(community_eng, b)
    assert [s for s, _ in flags_a] == ["flagged"] and checks_a, (flags_a, checks_a)
    assert flags_b == [], (flags_b, checks_b)
    assert order_b["subject"] != theirs(community_eng, a)[0]["subject"]


def test_renamed_sends_a_second_persons_id_number_as_a_valid_one(
        community_eng: Engine, community_mllp: int, request: pytest.FixtureRequest) -> None:
    """李秀英's order at HOSPB under her own ID number (born 1988-09-03, F): sent plainly the ACK says nothing of
    PID-3; sent through ``OwnSender`` it should say the same of a valid number of the run's own."""
    when = ts(1)
    text = (msh("HOSPB", "HIS", "ORM^O01^ORM_O01", when, "RV44E-LI-NW")
            + f"PID|1||{LI}^^^公安部^NNCHN~MRN-LI^^^HOSPB^MR||李^秀英||19880903|F\n"
            + f"ORC|NW|L1^HIS|||||||{when}|||D7^张^医生\nOBR|1|L1^HIS||{CBC}|||{when}\n")
    plain = Sender(community_mllp).send(text.replace("RV44E-LI-NW", own(request, "RV44E-LI-PLAIN")))
    assert "PID^1^3" not in plain, plain
    run = own(request, "RV44E-LI")
    ack = OwnSender(community_mllp, run).send(text)
    assert "PID^1^3" not in ack and ack.count("ERR") == plain.count("ERR"), (plain, ack)


def test_renamed_gives_each_run_a_visit_of_its_own(
        community_eng: Engine, community_mllp: int, request: pytest.FixtureRequest) -> None:
    """Two runs' HOSPB admissions (ADT^A01) under the scenario's one visit number V44E: each run's Encounter carries a
    visit number of its own, as each run's order carries a placer number of its own."""
    when = ts(2)
    text = (msh("HOSPB", "HIS", "ADT^A01^ADT_A01", when, "RV44E-A01") + f"EVN|A01|{when}\n"
            + "PID|1||32092319850412001X^^^公安部^NNCHN~MRN-HOSPB^^^HOSPB^MR||王^建国||19850412|M\n"
            + f"PV1|1|I|W1^1^1||||||||||||||||V44E|||||||||||||||||||||||||{when}\n")
    values = []
    for tag in ("X", "Y"):
        run = own(request, "RV44E-V" + tag)
        ack = OwnSender(community_mllp, run).send(text)
        assert "MSA|AA" in ack, ack
        (patient,) = _patients(community_eng, run_names(run).number("MRN-HOSPB"))
        encounters = community_eng.repository.search("Encounter", [("subject", f"Patient/{patient['id']}")]).resources
        values.append({i.get("value") for e in encounters for i in e.get("identifier") or ()})
    assert values[0] and values[1] and not values[0] & values[1], values
