"""Lab results built from compiled plans (``adapters.convert.plans``: numeric, textual and coded)
are the results the ordinary conversion makes, byte for byte, warnings and fidelity report included; and validation
by what varies (``Validator.valid_planned``) accepts a planned result only when validating the
whole result does.

The hospital sends its complete blood count again and again; from the second message on, each
numeric result is built from the plan its first occurrence left. Values, times and identities
that differ from message to message -- including bad ones -- are the plan's holes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from adapters.convert import Conversion, convert, plans
from adapters.hl7v2.header import decode_message
from adapters.hl7v2.parser import parse
from conformance.validate import Validator
from engine.settings import Settings
from mappings.site import Site
from tests import test_convert_golden as golden

FEED = Path(__file__).resolve().parent.parent / "examples" / "feeds" / "02_FNXRMYY_ORU_R01_blood_count.hl7"


@pytest.fixture()
def site(tmp_path: Path) -> Site:
    return Site.load(Settings(data_dir=tmp_path / "var"))


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def _feed() -> str:
    return decode_message(FEED.read_bytes())


def _with_obx(text: str, n: int, field: int, value: str) -> str:
    """The message with OBX ``n``'s field ``field`` replaced."""
    lines = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    for i, line in enumerate(lines):
        parts = line.split("|")
        if parts[0] == "OBX" and parts[1] == str(n):
            parts += [""] * (field + 1 - len(parts))
            parts[field] = value
            lines[i] = "|".join(parts)
    return "\r".join(lines)


@contextmanager
def _plans_off() -> Iterator[None]:
    """Conversion without plans: no description is planned and no OBX shape has a shortcut."""
    with (mock.patch.object(plans, "describe", return_value=None),
          mock.patch.object(plans, "shortcut", return_value=(None, None)),
          mock.patch.object(plans.GroupPlans, "quick", return_value=None)):
        yield


@contextmanager
def _both(first: Any, second: Any) -> Iterator[None]:
    with first, second:
        yield


def _planned_use(step: str = "build") -> tuple[list[int], Any]:
    """A counter of the results built by ``plans.<step>`` (``build``: from a plan; ``fill``: from a
    known shape's shortcut) or by a group's one call for its plain numeric results
    (``plans.GroupPlans.quick``, which stands for both), and the patch that counts them."""
    count = [0]
    original = getattr(plans, step)
    quick = plans.GroupPlans.quick

    def counting(*args: Any, **kwargs: Any) -> Any:
        built = original(*args, **kwargs)
        count[0] += built is not None
        return built

    def counting_quick(self: plans.GroupPlans, obx: Any) -> Any:
        built = quick(self, obx)
        count[0] += built is not None
        return built

    return count, _both(mock.patch.object(plans, step, counting),
                        mock.patch.object(plans.GroupPlans, "quick", counting_quick))


def test_every_message_converts_the_same_from_plans(tmp_path: Path) -> None:
    """Every public sample, example feed and feed variant of the golden file, each converted
    twice in a row (the second conversion of a message meets what the first left in the caches;
    with plans, it is built from the plans the first one left): the second conversions are the
    same bytes with plans and without. (The first ones are the golden file's.)"""
    (tmp_path / "ordinary").mkdir()
    (tmp_path / "planned").mkdir()
    once = golden._outcome

    def second(text: str, site: Site) -> bytes:
        once(text, site)
        return once(text, site)

    with _plans_off(), mock.patch.object(golden, "_outcome", second):
        ordinary = golden.digests(tmp_path / "ordinary")
    count, counting = _planned_use()
    with counting, mock.patch.object(golden, "_outcome", second):
        planned = golden.digests(tmp_path / "planned")
    assert planned == ordinary
    assert count[0] >= 200  # the feeds' numeric results, and the samples'


def test_a_blood_count_is_built_from_plans_from_the_second_message_on(site: Site) -> None:
    first = convert(parse(_feed()), site)
    again = convert(parse(_feed().replace("FNXRMYY-LIS-000201", "FNXRMYY-LIS-000202")), site)
    assert not [ref for ref in first.planned if ref.startswith("Observation/")]  # (the sender is kept: ``kept``)
    numeric = [r for r in again.resources if r["resourceType"] == "Observation" and "valueQuantity" in r]
    assert len(numeric) == 11
    # WBC names its technician (OBX-16): a performer list the plan does not make, so ordinary
    assert ({ref for ref in again.planned if ref.startswith("Observation/")}
            == {f"Observation/{r['id']}" for r in numeric} - {f"Observation/{numeric[0]['id']}"})


@pytest.mark.parametrize(("field", "value", "warning"), [
    (5, "11.6.1", "OBX-5 is not a valid NM"),
    (5, "high", "OBX-5 is not a valid NM"),
    (14, "20250230110000", "OBX-14"),
    (14, "2025031011", None),
    (5, "", "no value"),
])
def test_a_later_value_or_time_unlike_the_plan_takes_the_ordinary_path(site: Site, field: int, value: str,
                                                                       warning: str | None) -> None:
    convert(parse(_feed()), site)
    text = _with_obx(_feed(), 3, field, value)
    with _plans_off():
        ordinary = golden._outcome(text, Site.load(Settings()))
    assert golden._outcome(text, site) == ordinary
    if warning is not None and warning != "no value":
        assert warning in ordinary.decode()


def test_a_plan_reports_its_unmapped_unit_every_time(site: Site) -> None:
    text = _with_obx(_feed(), 3, 6, "mmol/kg")  # a unit the code map and UCUM table do not know
    reports = [convert(parse(text.replace("000201", f"00020{i}")), site).unmapped for i in range(3)]
    assert all({"institution": "FNXRMYY", "kind": "unit", "code": "mmol/kg", "where": "OBX-6"} in r for r in reports)
    assert reports[0] == reports[1] == reports[2]


def _planned_results(conversion: Conversion) -> list[tuple[dict[str, Any], Any]]:
    return [(r, conversion.planned[f"Observation/{r['id']}"]) for r in conversion.resources
            if r["resourceType"] == "Observation" and f"Observation/{r['id']}" in conversion.planned]


# values a sender might put in the holes of a planned result: fine ones and broken ones
_HOLE_MUTATIONS = [
    (5, "0"), (5, "-3.50"), (5, "007.10"), (5, "1" * 30), (5, "1" * 400 + ".5"), (5, ".5"), (5, "+2"),
    (5, "<0.5"), (14, "20250310"), (14, "2025"), (14, "202503101100"), (14, "20250310110000.1234"),
    (14, "20250310110000+1459"), (14, "20250310110000+1400"), (14, "20250310110000-1200"),
    (14, "19991231235959+0800"), (14, "00010101000000"),
]


@pytest.mark.parametrize(("field", "value"), _HOLE_MUTATIONS)
def test_checking_the_holes_agrees_with_validating_the_whole(site: Site, validator: Validator, field: int,
                                                             value: str) -> None:
    convert(parse(_feed()), site)
    proven = convert(parse(_feed().replace("000201", "000202")), site)
    for resource, planned in _planned_results(proven):
        assert validator.valid_planned(resource, planned)  # the first of its plan: validated whole
    text = _with_obx(_feed().replace("000201", "000203"), 4, field, value)
    conversion = convert(parse(text), site)
    checked = 0
    for resource, planned in _planned_results(conversion):
        whole = validator.is_valid(resource)
        fast = validator.valid_planned(resource, planned)
        assert fast <= whole, (field, value, resource)  # never yes where the whole says no
        checked += 1
        if resource["code"]["coding"][0]["code"] != "HCT":
            assert fast, resource  # the untouched results of the panel are accepted by their holes
    assert checked >= 9


def test_a_time_zone_fhir_does_not_allow_is_caught_in_the_hole() -> None:
    """HL7 allows offsets up to +14:59; FHIR's dateTime only up to +14:00: the converter keeps
    the sent offset, the hole check refuses it as the whole validation does."""
    site = Site.load(Settings())
    validator = Validator()
    convert(parse(_feed()), site)
    for resource, planned in _planned_results(convert(parse(_feed().replace("000201", "000202")), site)):
        assert validator.valid_planned(resource, planned)
    text = re.sub(r"\|20250310110000", "|20250310110000+1459", _feed().replace("000201", "000203"))
    bad = _planned_results(convert(parse(text), site))
    assert bad and all(r["effectiveDateTime"].endswith("+14:59") for r, _ in bad)
    assert not any(validator.valid_planned(r, p) for r, p in bad)
    assert not any(validator.is_valid(r) for r, _ in bad)


def test_a_result_changed_after_it_was_built_is_validated_whole(site: Site, validator: Validator) -> None:
    convert(parse(_feed()), site)
    for resource, planned in _planned_results(convert(parse(_feed().replace("000201", "000202")), site)):
        validator.valid_planned(resource, planned)
    results = _planned_results(convert(parse(_feed().replace("000201", "000203")), site))
    (first, p1), (second, p2), (third, p3) = results[:3]
    first["subject"] = {"reference": "Encounter/not-a-patient"}  # a hole replaced
    second["note"] = [{"text": "added"}]  # an element added
    del third["referenceRange"]  # an element removed
    for resource, planned in ((first, p1), (second, p2), (third, p3)):
        assert not validator.valid_planned(resource, planned)
    assert not validator.is_valid(first)


def test_a_site_rule_on_a_hole_is_kept_and_a_condition_on_one_disables_the_shortcut(tmp_path: Path) -> None:
    shipped = (Path(__file__).resolve().parent.parent / "conformance" / "profiles" / "Observation.yaml").read_text()
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "Observation.yaml").write_text(shipped + """  - element: effectiveDateTime
    schema: {type: string, pattern: '^2025'}
    message: this site keeps this year's results only
""")
    condition = tmp_path / "condition"
    condition.mkdir()
    (condition / "Observation.yaml").write_text(shipped.replace(
        "  match:\n    not:\n", "  match:\n    required: [effectiveDateTime]\n    not:\n", 1))
    site = Site.load(Settings())
    convert(parse(_feed()), site)
    proving = _planned_results(convert(parse(_feed().replace("000201", "000202")), site))
    later = _planned_results(convert(parse(re.sub(r"\|20250310110000", "|20240310110000",
                                                  _feed().replace("000201", "000203"))), site))
    strict = Validator(site_profiles_dir=rules)
    for resource, planned in proving:
        assert strict.valid_planned(resource, planned)
    for resource, planned in later:
        assert not strict.valid_planned(resource, planned) and not strict.is_valid(resource)
    conditional = Validator(site_profiles_dir=condition)
    for resource, planned in proving:
        assert conditional.valid_planned(resource, planned)  # validated whole: the plan is not provable
    assert all(conditional._proofs[p.plan] is False for _, p in proving)
    assert not any(conditional.valid_planned(r, p) for r, p in later)  # "look at the whole" every time
    assert all(conditional.is_valid(r) for r, _ in later)


def _urinalysis(n: int, colour: str = "淡黄色", protein: str = "NEG^阴性^L") -> str:
    """A urinalysis: a coded answer (protein), a textual one (colour) and a number (gravity)."""
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORU^R01^ORU_R01|U{n:06d}|P|2.5.1\r"
            f"PID|1||MRN{n:07d}^^^FNXRMYY^MR||张^三||19800101|M\r"
            f"ORC|RE|ORD{n}|LAB{n}\r"
            f"OBR|1|ORD{n}|LAB{n}|NC^尿常规^L|||20261101083000||||||||||||||20261101091000|||F\r"
            f"OBX|1|CWE|PRO^尿蛋白^L||{protein}||||||F|||20261101090000\r"
            f"OBX|2|ST|COL^颜色^L||{colour}||||||F|||20261101090000\r"
            f"OBX|3|NM|SG^比重^L||1.020||1.003-1.030|N|||F|||20261101090000\r")


def test_textual_and_coded_results_are_built_from_plans_too(site: Site) -> None:
    """A textual result's plan has its text as a hole; a coded answer is part of the description
    (a test has a few answers), planned from its second occurrence on. Byte for byte the same."""
    count, counting = _planned_use()
    texts = [_urinalysis(n, colour=f"淡黄色{n}") for n in range(4)]
    texts.append(_urinalysis(9, protein="POS^阳性^L"))  # another answer: the ordinary way, first
    with counting:
        planned = [golden._outcome(t, site) for t in texts]
    with _plans_off():
        ordinary = [golden._outcome(t, Site.load(Settings())) for t in texts]
    assert planned == ordinary
    # message 1: the number and the text; from message 2 on, the coded answer too
    assert count[0] == 2 + 3 + 3 + 2
    again = convert(parse(_urinalysis(10, colour="黄色")), site)
    built = {r["code"]["coding"][0]["code"]: r for r in again.resources if f"Observation/{r.get('id')}" in again.planned}
    assert set(built) == {"PRO", "COL", "SG"}
    assert built["COL"]["valueString"] == "黄色"
    assert again.planned[f"Observation/{built['COL']['id']}"].holes["valueString"] == "黄色"


@pytest.mark.parametrize("colour", ["黄色", " ", "  \t", "a\\.br\\b", "x" * 2000, "\\T\\", "\\F\\~\\S\\",
                                    "浑浊~絮状", "^", "&"])
def test_checking_a_text_hole_agrees_with_validating_the_whole(site: Site, validator: Validator, colour: str) -> None:
    for n in range(3):
        for resource, planned in _planned_results(convert(parse(_urinalysis(n, colour=f"c{n}")), site)):
            assert validator.valid_planned(resource, planned)
    with _plans_off():
        ordinary = golden._outcome(_urinalysis(7, colour=colour), Site.load(Settings()))
    assert golden._outcome(_urinalysis(7, colour=colour), site) == ordinary
    conversion = convert(parse(_urinalysis(8, colour=colour)), site)
    if colour.strip("^&"):  # else OBX-5 holds nothing: a plan without a value (data absent)
        assert any(p.plan.text for _, p in _planned_results(conversion))
    for resource, planned in _planned_results(conversion):
        assert validator.valid_planned(resource, planned) <= validator.is_valid(resource), (colour, resource)


@pytest.mark.parametrize("value", [">5.0", "<= 3", "≥7", "5~6", "~6.2", "5\\T\\", " 6.2 ", "6.20", "-0", '""', "1e3"])
def test_an_obx_shape_met_before_is_built_the_same_whatever_its_value(site: Site, value: str) -> None:
    """The shortcut of an OBX shape (``plans.shortcut``: every field but the set id, value and
    time) reads the value as ``describe`` does: a value of another shape than the plan's (a
    comparator, repetitions, escapes) or that is no number goes the ordinary way; the bytes are
    those of a conversion without plans, and the other results of the message still take the
    shortcut."""
    convert(parse(_feed()), site)
    convert(parse(_feed().replace("000201", "000202")), site)  # every shape has its shortcut now
    text = _with_obx(_feed().replace("000201", "000203"), 3, 5, value)
    with _plans_off():
        ordinary = golden._outcome(text, Site.load(Settings()))
    filled, counting = _planned_use("fill")
    with counting:
        assert golden._outcome(text, site) == ordinary
    assert filled[0] >= 9  # the blood count's other planned results (WBC names its technician)
