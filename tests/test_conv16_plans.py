"""A group's plain numeric results built by one call (``plans.GroupPlans.quick``, sixteenth round)
are the results ``shortcut`` + ``fill`` build, byte for byte, with the same plan marks and the same
validation verdicts; whatever ``quick`` declines (another shape of value or time, a lower-case
type, a note on the result, OBX-8 ``""``) takes that general path as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from adapters.convert import convert, plans
from adapters.hl7v2.parser import parse
from conformance.validate import Validator
from engine.settings import Settings
from mappings.site import Site
from tests import test_convert_golden as golden
from tests.test_convert_plans import _feed, _with_obx

VALIDATOR = Validator()


def _learnt(tmp_path: Path, name: str) -> Site:
    site = Site.load(Settings(data_dir=tmp_path / name))
    convert(parse(_feed()), site)
    convert(parse(_feed().replace("000201", "000202")), site)  # every shape has its shortcut now
    return site


def _outcome(text: str, site: Site) -> tuple[bytes, list[Any]]:
    conv = convert(parse(text), site)
    marks = [(ref, VALIDATOR.valid_planned(conv.by_reference[ref], p), sorted(p.holes))
             for ref, p in conv.planned.items() if ref.startswith("Observation/")]
    return golden._outcome(text, site), marks


@pytest.mark.parametrize(("field", "value"), [
    (14, "20261101090000+0800"), (14, "20261101090000+1459"), (14, "202611010900"), (14, "2026"),
    (14, "20261301090000"), (14, " 20261101090000 "), (14, "20261101090000~20261101090001"),
    (14, "20261101\\T\\"), (14, '""'), (14, ""), (5, "007.50"), (5, "1e3"), (5, "NaN"), (5, "6.2\\E\\"),
    (2, "nm"), (2, " NM"), (8, '""'), (8, "H"), (11, "C"), (3, "WBC^白细胞计数^L~X^Y^L"),
])
def test_one_call_builds_what_the_general_path_builds(tmp_path: Path, field: int, value: str) -> None:
    text = _with_obx(_feed().replace("000201", "000203"), 3, field, value)
    quick, counted = plans.GroupPlans.quick, [0]

    def counting(self: plans.GroupPlans, obx: Any) -> Any:
        made = quick(self, obx)
        counted[0] += made is not None
        return made

    with mock.patch.object(plans.GroupPlans, "quick", counting):
        one_call = _outcome(text, _learnt(tmp_path, "a"))
    with mock.patch.object(plans.GroupPlans, "quick", return_value=None):
        general = _outcome(text, _learnt(tmp_path, "b"))
    assert one_call == general
    assert counted[0] >= 9  # the blood count's other plain numeric results (WBC names its technician)


def test_a_note_on_a_result_takes_the_general_path(tmp_path: Path) -> None:
    lines = _feed().replace("000201", "000204").replace("\r\n", "\r").replace("\n", "\r").split("\r")
    at = next(i for i, line in enumerate(lines) if line.startswith("OBX|3|"))
    text = "\r".join([*lines[: at + 1], "NTE|1||复查", *lines[at + 1:]])
    with mock.patch.object(plans.GroupPlans, "quick", return_value=None):
        general = _outcome(text, _learnt(tmp_path, "b"))
    one_call = _outcome(text, _learnt(tmp_path, "a"))
    assert one_call == general
    assert b"\\u590d\\u67e5" in one_call[0] or "复查".encode() in one_call[0]
