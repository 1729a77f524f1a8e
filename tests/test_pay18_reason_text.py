"""R06 "other necessary re-test" needs the doctor's free text (DOMAIN.md), over a real MLLP socket
(eighteenth round, pay18).

ORC-16 is a CWE: component 2 is the text *of the code* (its name), component 9 the original text
the doctor typed. A HIS that sends R06 with its own name in ORC-16.2 -- as a CWE is normally
filled -- has given no free text, and the repeat is not payable; free text in ORC-16.2 or in
ORC-16.9 (beside the code's name) is. The same holds for a FHIR ``reasonCode`` whose ``text``
repeats the coding's display.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from tests.test_hooks11_policy_edges import flag_of, repeat
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import community_engine

SYSTEM = "urn:huren:recognition-reason"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from community_engine(tmp_path)


@pytest.mark.parametrize(("reason", "expected"), [
    (f"R06^其他必要复查^{SYSTEM}", "flagged"),  # the code's own name: no free text
    (f"R06^其他必要复查 other necessary re-test^{SYSTEM}", "flagged"),
    (f"R06^Other necessary re-test^{SYSTEM}", "flagged"),
    (f"R06^其他必要复查^{SYSTEM}^^^^^^术后出血需复查", "justified"),  # free text in ORC-16.9
    (f"R06^术后出血需复查^{SYSTEM}", "justified"),  # free text in ORC-16.2
    (f"R01^病情变化^{SYSTEM}", "justified"),  # a reason that needs no text is unchanged
])
def test_r06_with_only_its_own_name_is_not_free_text(engine: Engine, mllp: int, reason: str, expected: str) -> None:
    repeat(Sender(mllp), prior_days=5, repeat_days=1, reason=reason)
    assert flag_of(engine) == expected
