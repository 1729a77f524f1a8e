"""suite44b: ``tests.module_store.Names`` -- a test's own names on a module's shared engine. The probes that share one
community a module rely on it: two tests sending the same scenario must be two residents, two orders, two messages,
and each must read its own rows back; a name it does not rename (a null, an empty field, every other byte) is sent as
the scenario wrote it."""

from __future__ import annotations

from engine.engine import Engine
from engine.identity.nationalid import check_character
from engine.messages import message_id
from tests.module_store import Names
from tests.module_store import module_community as engine  # noqa: F401 -- a fixture
from tests.test_money19_cds_orders import flags
from tests.test_recognition_policy_e2e import CBC, WANG, order, pid, result, ts


def test_a_resident_id_number_is_renamed_to_a_valid_one_of_the_same_birth_and_sex() -> None:
    seen = set()
    for n in (1, 2, 74, 149):
        names = Names(n)
        new = names.nid(WANG)
        assert new[:14] == WANG[:14] and int(new[16]) % 2 == int(WANG[16]) % 2, new
        assert new[17] == check_character(new[:17]) and new != WANG, new
        assert names.nid(WANG) == new  # the same number each time within a test
        seen.add(new)
    assert len(seen) == 4
    other = "32092319850412002" + check_character("32092319850412002")  # same birth, a woman's sequence
    one = Names(7)
    assert one.nid(other) != one.nid(WANG) and int(one.nid(other)[16]) % 2 == 0


def test_the_message_is_the_scenarios_but_for_its_names() -> None:
    names = Names(3)
    sent = order("HOSPB", "B1", CBC, ts(1)) + 'ORC|XO|""||\nOBR|2|||' + CBC + "\n"
    renamed = names.hl7(sent).split("\n")
    original = sent.split("\n")
    assert renamed[0].split("|")[9] == "T003HOSPB-ORM-B1-NW"
    assert renamed[0].split("|")[:9] == original[0].split("|")[:9]
    assert f"{names.nid(WANG)}^^^公安部^NNCHN~T003MRN-HOSPB^^^HOSPB^MR" in renamed[1], renamed[1]
    assert renamed[2].startswith("ORC|NW|T003B1^HIS|||||||") and renamed[3].startswith("OBR|1|T003B1^HIS||" + CBC)
    assert renamed[4] == 'ORC|XO|""||' and renamed[5] == original[5]  # the null and empty fields as they were
    batch = names.hl7("BHS|^~\\&|LIS|HOSPA|HUREN|C1|20260101||||B1\nBTS|0\n")
    assert batch.split("\n")[0].endswith("||||T003B1"), batch


def test_two_tests_sending_one_scenario_are_two_residents_and_read_their_own_rows(engine: Engine) -> None:  # noqa: F811
    """HOSPA's blood count then HOSPB's repeat, sent under two tests' names into one store (the real ingest path, one
    batch each): two messages of each control ID, two flagged rows -- each test reads one, its own."""
    scenario = [order("HOSPA", "A1", CBC, ts(5)), result("HOSPA", "A1", CBC, ts(5, 10)),
                order("HOSPB", "B1", CBC, ts(1)), result("HOSPB", "B1", CBC, ts(1, 10))]
    first, second = Names(101), Names(102)
    for names in (first, second):
        outcomes = engine.ingestor.process([(names.hl7(t).replace("\n", "\r").encode(), "mllp", "t") for t in scenario])
        assert all(b"MSA|AA" in o.ack for o in outcomes), [o.ack for o in outcomes]
    for names in (first, second):
        assert engine.ingestor.messages.get(message_id("HOSPB", names.control("HOSPB-ORU-B1"))) is not None
        (mine,) = [f for f in names.rows(engine, flags(engine)) if f["inst"] == "HOSPB"]
        assert mine["status"] == "flagged" and mine["person"] == names.nid(WANG), mine
    assert first.patients(engine).isdisjoint(second.patients(engine)) and len(first.patients(engine)) == 2
    assert pid("HOSPB") not in repr([first.hl7(t) for t in scenario])  # nothing sent under the scenario's own names
