"""rv44d (forty-fourth round review): probes of suite44b's ``tests.module_store.Names`` -- ten reviewer probe files
now share one community a module, each test under names of its own. A converted test asserting that NO row stands
("not flagged", "void or none") is only as strong as the isolation of its resident from the module's other tests:
these guard that isolation through the real path (real ORM/ORU over MLLP into the shared store, both backends), and
that ``Names`` refuses a scenario naming a thing it would send unrenamed under every test."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest

from engine.engine import Engine
from tests.module_store import Names
from tests.module_store import engine_mllp as mllp  # noqa: F401 -- a fixture
from tests.module_store import module_community as engine  # noqa: F401 -- a fixture
from tests.test_money20_reason_change import prior
from tests.test_recognition_policy_e2e import CBC, order, ts
from tests.test_recognition_policy_e2e import result as oru


def _rows_at_b(engine: Engine, names: Names) -> list[str]:
    """The status of every recognition row (void too) of ``names``' records at HOSPB."""
    return [f["status"] for f in names.rows(engine, engine.recognition.flags.find({})) if f["inst"] == "HOSPB"]


def test_another_tests_prior_flags_no_repeat_of_this_test(engine: Engine, mllp: int) -> None:
    """One test's prior at HOSPA (its resident: the scenario's 王建国 under a number of its own) and another test's
    repeat at HOSPB (王建国 again, same name, birth date and sex, another number): two residents -- the repeat is not
    flagged against the other test's prior. A third test sending both is flagged (the control: the repeat alone is
    what the rows would miss). Were the index to join the two by name and birth, every converted "no flag" probe on
    the shared community would read a neighbour's prior -- and every "flagged" one could pass on it."""
    first, second, third = Names(1), Names(2), Names(3)
    prior(first.sender(mllp))
    hl7 = second.sender(mllp)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    both = third.sender(mllp)
    prior(both)
    both.send(order("HOSPB", "B1", CBC, ts(1)))
    both.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    assert second.patients(engine) and first.patients(engine).isdisjoint(second.patients(engine))
    assert _rows_at_b(engine, second) == [], _rows_at_b(engine, second)
    assert _rows_at_b(engine, third) == ["flagged"], _rows_at_b(engine, third)
    (flag,) = [f for f in third.rows(engine, engine.recognition.flags.find({})) if f["inst"] == "HOSPB"]
    assert f"Patient/{flag['patient'].split('/')[-1]}" in third.patients(engine), flag


@pytest.mark.parametrize(("segment", "said"), [
    ("IPC|ACC1^RIS|RP1|1.2.156.1.9|SPS1|CT", "IPC-1"), ("ZDS|1.2.156.1.9^RIS^Application^DICOM", "ZDS-1"),
    ("PID|1||MRN-HOSPA^^^HOSPA^MR||王^建国||19850412|M||||||||||ACCT1", "PID-18"),
    ("PV1|1|O" + "|" * 48 + "V1", "PV1-50"), ("MRG|MRN-OLD^^^HOSPA^MR||ACCT-OLD", "MRG-3"),
    ("ORC|NW|A1^HIS||G1^HIS", "ORC-4"), ("SPM|1||P1^LIS", "SPM-3"),
    ("PID|1||32092319850412001X^^^公安部^ID||王^建国||19850412|M", "typed NNCHN only")],
    ids=["IPC-1", "ZDS-1", "PID-18", "PV1-50", "MRG-3", "ORC-4", "SPM-3", "PID-3-number-not-NNCHN"])
def test_names_refuses_a_scenario_naming_what_it_does_not_rename(segment: str, said: str) -> None:
    """An accession, study UID, account, visit, placer group or specimen number ``Names`` does not rename would be
    sent as written under every test of the module -- one thing on the shared store named by two tests, which then
    depend on their order; a resident ID number under another identifier type than NNCHN would be sent as a tag
    before it (no number). ``Names.hl7`` refuses either, naming the field (review rv44d mended ``module_store``)."""
    head = "MSH|^~\\&|HIS|HOSPA|HUREN|C1|20260101080000||ORM^O01^ORM_O01|C1|P|2.5.1\n"
    with pytest.raises(ValueError, match=said):
        Names(1).hl7(head + segment + "\n")
    assert Names(1).hl7(head + 'IPC|""|||\n').endswith('IPC|""|||\n')  # the null and empty fields: nothing named
