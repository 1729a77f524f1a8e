"""A report whose every result the lab withdrew (OBX-11 W) is no prior, whatever OBR-25 says.

The withdrawal of rec14's mixed batch (OBR-25 "W", not in table 0123; OBX-11 W) was ACKed AA and
changed nothing: with OBR-25 stating no status the report's status came from its results, every
one withdrawn gave ``unknown``, which never replaces a stated status -- the report stayed final
and HOSPB's repeat stayed "not payable" against results the lab had withdrawn. OBR-25 left empty,
the ordinary way, did the same. Not the time of day: the same on any calendar day. Real MLLP,
SQLite and mongomock.
"""

from __future__ import annotations

import pytest

from tests.test_hooks11_policy_edges import flag_of, flags, result, row_of
from tests.test_rec14_late_prior import hl7  # noqa: F401  (the fixture: both backends)
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts


def _withdrawn(when: str, obr25: str) -> str:
    return (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, f"HOSPA-ORU-A1-W{obr25}") + pid("HOSPA")
            + "ORC|RE|A1^HIS|FA1^LIS||CM\n"
            + f"OBR|1|A1^HIS|FA1^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||{obr25}\n"
            + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||W|||{when}\n")


@pytest.mark.parametrize("obr25", ["", "W"], ids=["obr25-empty", "obr25-unmapped"])
def test_a_prior_whose_results_are_all_withdrawn_flags_nothing(hl7, obr25: str) -> None:  # noqa: ANN001, F811
    engine, sender = hl7
    sender.send(order("HOSPA", "A1", CBC, ts(5)))
    sender.send(result("HOSPA", "A1", CBC, ts(5, 10)))
    sender.send(order("HOSPB", "B1", CBC, ts(2)))
    sender.send(result("HOSPB", "B1", CBC, ts(2, 10)))
    assert flag_of(engine) == "flagged", flags(engine)
    prior = row_of(engine, "HOSPB")["prior"]
    sender.send(_withdrawn(ts(5, 10), obr25))
    assert flag_of(engine) == "void", flags(engine)
    assert engine.repository.read(*prior.split("/"))["status"] == "entered-in-error"
