"""Results stating OBX-19 (analysis time) or OBX-21 (instance id) are built from compiled plans again
(forty-second round, plan42; issue 15), byte for byte as the general path builds them.

fam42 mapped OBX-19 to the IG's observation-analysis-date-time extension and counted OBX-21, and sent
every result stating OBX-19, OBX-21 or OBX-25 down the general path (planned, each analysis time had
compiled a plan for one result). Public ELR feeds send OBX-19 on every result, so such a feed lost its
plans: ~2-3x the convert CPU of the same panel without OBX-19. Now OBX-19 is a hole of the plan
(``plans.ANALYSIS``: the extension the table's rule makes, its time filled per result) and OBX-21 is
keyed by whether it is valued (the only thing of it the output depends on: the fidelity count), OBX-25
by its text (the director's PractitionerRole made for each result, at the result's performer).

The corpus: each field absent, valued (times to the day, minute, second, fraction, with offsets),
repeated, with components, escaped, ``""``, blank, not a time; with OBX-23 (another performer) and
with corrections (OBX-11 C); OBX-25's director (by its text, its PractitionerRole made per result), alone,
with OBX-19, OBX-23, ``""``, naming nobody, beside an OBX-16 observer (the general path: two performers). Each message is converted on
a fresh site (nothing learnt: the general path) and on a site that met the panel's shapes twice with
other times and ids (every plannable result from a plan); the outputs are compared resource by
resource, then warnings and unmapped, as bytes. The validator's fast check of a planned result
(``valid_planned``) checks the new hole as the schema does: never "valid" where the whole says not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from adapters.convert import Conversion, convert, plans
from adapters.hl7v2.parser import parse
from conformance.validate import Validator
from engine.engine import Engine
from engine.settings import Settings
from mappings.site import Site
from tests import test_convert_golden as golden

ANALYSIS_URL = "http://hl7.org/fhir/StructureDefinition/observation-analysis-date-time"

# (code, name, type, value, unit, range, flag): numbers, a comparator, trailing zeros, a text, a coded answer
TESTS = [
    ("WBC", "白细胞计数", "NM", "6.20", "10\\S\\9/L", "3.5-9.5", "N"),
    ("RBC", "红细胞计数", "NM", "4.8", "10\\S\\12/L", "4.3-5.8", "N"),
    ("HGB", "血红蛋白", "NM", "<5", "g/L", "130-175", "L"),
    ("HCT", "红细胞压积", "NM", "0.430", "L/L", "0.40-0.50", "N"),
    ("PLT", "血小板计数", "NM", "210", "10\\S\\9/L", "125-350", "N"),
    ("ABO", "血型", "CWE", "A^A型^99ABO", "", "", ""),
    ("MORPH", "红细胞形态", "ST", "大小不等\\T\\淡染", "", "", ""),
]


def _analysed(n: int, i: int) -> str:
    """A result's own analysis time: its message's minute, its own second (as an analyser stamps them)."""
    return f"202611010{n % 10}{n % 60:02d}{i:02d}"


# a case: field -> (n, i) -> text, and whether every result of it is planned on a learnt site
Case = tuple[dict[int, Any], bool]
CORPUS: dict[str, Case] = {
    "none": ({}, True),
    "obx19-seconds": ({19: _analysed}, True),
    "obx19-minutes": ({19: lambda n, i: f"2026110109{(n + i) % 60:02d}"}, True),
    "obx19-day": ({19: lambda n, i: f"202611{n % 28 + 1:02d}"}, True),
    "obx19-fraction-offset": ({19: lambda n, i: _analysed(n, i) + ".1234+0800"}, True),
    "obx19-west-offset": ({19: lambda n, i: _analysed(n, i) + "-0500"}, True),
    "obx19-padded": ({19: lambda n, i: f" {_analysed(n, i)} "}, True),
    "obx19-same-time": ({19: lambda n, i: "20261101090000"}, True),
    "obx19-repeated": ({19: lambda n, i: f"{_analysed(n, i)}~20261101120000"}, False),
    "obx19-components": ({19: lambda n, i: f"{_analysed(n, i)}^S"}, False),
    "obx19-escaped": ({19: lambda n, i: f"2026\\T\\{n}"}, False),
    "obx19-null": ({19: lambda n, i: '""'}, True),
    "obx19-blank": ({19: lambda n, i: "   "}, True),
    "obx19-not-a-time": ({19: lambda n, i: f"soon{n}"}, False),
    "obx19-bad-month": ({19: lambda n, i: f"2026130{n % 10}0900"}, False),
    "obx19-mixed": ({19: lambda n, i: _analysed(n, i) if i % 2 else ""}, True),
    "obx21": ({21: lambda n, i: f"INST-{n}-{i}"}, True),
    "obx21-repeated-escaped": ({21: lambda n, i: f"A\\F\\{n}~B{i}"}, True),
    "obx21-null": ({21: lambda n, i: '""'}, True),
    "obx19-obx21": ({19: _analysed, 21: lambda n, i: f"INST-{n}-{i}"}, True),
    "obx19-obx23": ({19: _analysed, 23: lambda n, i: "金域医学检验所^^^^^^^^^JY001"}, True),
    "obx19-obx23-mixed": ({19: _analysed, 23: lambda n, i: "迪安诊断" if i % 3 else ""}, True),
    "obx19-corrected": ({19: _analysed, 11: lambda n, i: "C"}, True),
    "obx19-obx18": ({18: lambda n, i: "XN-1000^^SYSMEX", 19: _analysed}, True),
    "obx19-obx25": ({19: _analysed, 25: lambda n, i: "D900^王^主任"}, True),
    "obx25-alone": ({25: lambda n, i: "D900^王^主任"}, True),
    "obx25-null": ({25: lambda n, i: "\"\""}, True),
    "obx25-names-nobody": ({25: lambda n, i: "^^^^^^^^"}, True),
    "obx25-obx23": ({25: lambda n, i: "D900^王^主任", 23: lambda n, i: "金域医学检验所^^^^^^^^^JY001"}, True),
    "obx25-mixed": ({19: _analysed, 25: lambda n, i: "D900^王^主任" if i % 2 else ""}, True),
    "obx25-obx16": ({16: lambda n, i: "T01^赵^技师", 25: lambda n, i: "D900^王^主任"}, False),
    "obx19-obx25-escaped": ({19: _analysed, 25: lambda n, i: "D9\\T\\1^王~D902^李"}, True),
}


def message(n: int, case: str) -> str:
    """A panel of ``TESTS`` from FNXRMYY, message ``n`` (its own ids and times), its OBX fields as ``case`` says."""
    fields, _ = CORPUS[case]
    lines = []
    for i, (code, name, vt, value, unit, rng, flag) in enumerate(TESTS, 1):
        obx = ["OBX", str(i), vt, f"{code}^{name}^L", "", value, unit, rng, flag, "", "", "F", "", "",
               f"2026110109{n % 60:02d}00"]
        for f, make in fields.items():
            obx += [""] * (f + 1 - len(obx))
            obx[f] = make(n, i)
        lines.append("|".join(obx))
    return (
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORU^R01^ORU_R01|P42-{n:06d}|P|2.5.1\r"
        f"PID|1||320923198001010011^^^^NNCHN~MRN{n:06d}^^^FNXRMYY^MR||张^三||19800101|M\r"
        f"PV1|1|O|内科门诊^^^FNXRMYY||||D001^李^医生\r"
        f"ORC|RE|ORD{n:06d}|LAB{n:06d}\r"
        f"OBR|1|ORD{n:06d}|LAB{n:06d}|XCG^血常规^L|||20261101083000|||||||||D001^李^医生||||||"
        f"20261101091000|||F\r" + "\r".join(lines) + "\r")


def _site(tmp: Path) -> Site:
    return Site.load(Settings(data_dir=tmp))


def _learnt(tmp: Path, case: str) -> Site:
    """A site that met the case's panel twice, with other times and ids (a coded answer is planned the second time)."""
    site = _site(tmp)
    for n in (1, 2):
        convert(parse(message(n, case)), site)
    return site


def _planned_observations(conv: Conversion) -> list[str]:
    return sorted(r for r in conv.planned if r.startswith("Observation/"))


def _same(general: bytes, compiled: bytes, case: str) -> None:
    """The two outcomes, resource by resource (a clear message naming the first that differs), then whole."""
    a, b = json.loads(general), json.loads(compiled)
    assert "refused" not in a, a
    entries_a, entries_b = a["bundle"]["entry"], b["bundle"]["entry"]
    assert [e["resource"]["resourceType"] for e in entries_a] == [e["resource"]["resourceType"] for e in entries_b]
    for ea, eb in zip(entries_a, entries_b, strict=True):
        assert ea == eb, (case, ea["resource"]["resourceType"], ea, eb)
    assert a["warnings"] == b["warnings"], case
    assert a["unmapped"] == b["unmapped"], case
    assert compiled == general, case


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_a_result_stating_obx19_obx21_or_obx25_is_built_from_its_plan_as_the_general_path_builds_it(
        tmp_path: Path, case: str) -> None:
    text = message(7, case)
    general = golden._outcome(text, _site(tmp_path / "fresh"))
    assert general.count(b'"resourceType":"Observation"') == len(TESTS)
    assert not _planned_observations(convert(parse(message(8, case)), _site(tmp_path / "other")))
    learnt = _learnt(tmp_path / "learnt", case)
    _same(general, golden._outcome(text, learnt), case)
    conv = convert(parse(message(9, case)), learnt)
    observations = [r for r in conv.by_reference if r.startswith("Observation/")]
    assert len(observations) == len(TESTS)
    planned = _planned_observations(conv)
    if CORPUS[case][1]:
        assert planned == sorted(observations), (case, len(planned))  # every result from its plan
    else:
        assert len(planned) < len(TESTS), case  # (the results this case makes unplannable took the general path)


def test_each_result_keeps_its_own_analysis_time(tmp_path: Path) -> None:
    """Planned, each result states the analysis time its OBX-19 sent (not the plan's first one), as the IG's
    extension, beside OBX-14's effective time."""
    learnt = _learnt(tmp_path, "obx19-fraction-offset")
    conv = convert(parse(message(31, "obx19-fraction-offset")), learnt)
    report = next(r for r in conv.resources if r["resourceType"] == "DiagnosticReport")
    assert len(_planned_observations(conv)) == len(TESTS)
    for i, ref in enumerate(report["result"], 1):
        obs = conv.by_reference[ref["reference"]]
        sent = _analysed(31, i)
        when = f"{sent[:4]}-{sent[4:6]}-{sent[6:8]}T{sent[8:10]}:{sent[10:12]}:{sent[12:14]}.1234+08:00"
        assert obs["extension"] == [{"url": ANALYSIS_URL, "valueDateTime": when}], obs
        assert obs["effectiveDateTime"] == "2026-11-01T09:31:00+08:00"


def test_a_panel_of_new_analysis_times_compiles_no_plan_and_no_shortcut(tmp_path: Path) -> None:
    """The regression itself: 30 panels, every result its own analysis time and instance id, compile the
    panel's plans once (7 descriptions) and remember its shapes once -- not a plan per result."""
    site = _site(tmp_path)
    case = "obx19-obx21"
    for n in range(1, 31):
        convert(parse(message(n, case)), site)
    entry = plans._SITES[id(site)]
    assert len([p for p in entry.plans.values() if p is not None]) == len(TESTS)
    assert len(entry.shortcuts) == len(TESTS)


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def _planned_results(conv: Conversion) -> list[tuple[dict[str, Any], Any]]:
    return [(r, conv.planned[f"Observation/{r['id']}"]) for r in conv.resources
            if r["resourceType"] == "Observation" and f"Observation/{r['id']}" in conv.planned]


@pytest.mark.parametrize("time", [
    "20261101090512", "202611010905", "2026110109", "20261101", "202611", "2026", "20261101090512.1+0800",
    "20261101090512+1400", "20261101090512-1300", "20261101090512+1459", "20261101090512-1430",
    "00010101000000", "99991231235959.9999+0000",
])
def test_checking_the_analysis_hole_agrees_with_validating_the_whole(tmp_path: Path, validator: Validator,
                                                                     time: str) -> None:
    """The first result of each plan is validated whole and proves the plan; a later one is checked in its
    holes, the analysis-time extension among them (``_TREE_HOLE``): an offset FHIR's dateTime does not allow
    (+14:59, -13:00; HL7 allows them) is refused there as the whole validation refuses it, and a result
    whose other holes are untouched is accepted by its holes alone."""
    site = _learnt(tmp_path, "obx19-seconds")
    for resource, planned in _planned_results(convert(parse(message(3, "obx19-seconds")), site)):
        assert validator.valid_planned(resource, planned)  # the first of its plan: validated whole
        assert validator._proofs.get(planned.plan) not in (None, False)  # provable: later ones by their holes
    text = message(4, "obx19-seconds").replace(f"|{_analysed(4, 2)}", f"|{time}")
    conv = convert(parse(text), site)
    results = _planned_results(conv)
    assert len(results) == len(TESTS)
    for resource, planned in results:
        whole = validator.is_valid(resource)
        assert validator.valid_planned(resource, planned) == whole, (time, resource)
    assert validator.is_valid(results[1][0]) == (not time.endswith(("+1459", "-1430")))


def test_an_extension_changed_after_it_was_built_is_not_accepted_by_its_hole(tmp_path: Path,
                                                                           validator: Validator) -> None:
    """A planned result whose extension was replaced since it was built is checked as it is now."""
    site = _learnt(tmp_path, "obx19-seconds")
    for resource, planned in _planned_results(convert(parse(message(3, "obx19-seconds")), site)):
        validator.valid_planned(resource, planned)
    results = _planned_results(convert(parse(message(5, "obx19-seconds")), site))
    (first, p1), (second, p2), (third, p3) = results[:3]
    first["extension"] = [{"url": ANALYSIS_URL, "valueDateTime": "yesterday"}]
    second["extension"] = [{"url": ANALYSIS_URL, "valueString": "x", "valueDateTime": "2026-11-01"}]
    third["extension"] = {"url": ANALYSIS_URL}
    for resource, planned in ((first, p1), (second, p2), (third, p3)):
        assert not validator.valid_planned(resource, planned), resource
        assert not validator.is_valid(resource), resource


def test_a_site_mapping_obx19_otherwise_keeps_such_results_off_the_plans(tmp_path: Path) -> None:
    """A site whose table maps OBX-19 otherwise (here to ``issued``, an instant) describes it by its text:
    a result stating it takes the general path (no plan per analysis time), the same bytes either way."""
    site_dir = tmp_path / "site"
    (site_dir / "hl7v2").mkdir(parents=True)
    shipped = (Path(__file__).resolve().parents[1] / "mappings" / "hl7v2" / "obx_observation.yaml").read_text("utf-8")
    rule = ('  - {field: 19, type: DTM, target: "extension[]", into: valueDateTime,\n'
            '     wrap: {url: "http://hl7.org/fhir/StructureDefinition/observation-analysis-date-time"}}\n')
    assert rule in shipped
    (site_dir / "hl7v2" / "obx_observation.yaml").write_text(
        shipped.replace(rule, "  - {field: 19, type: DTM, target: issued}\n"), "utf-8")

    def other(tmp: Path) -> Site:
        return Site.load(Settings(data_dir=tmp, site=site_dir))

    text = message(7, "obx19-seconds")
    general = golden._outcome(text, other(tmp_path / "fresh"))
    assert b'"issued"' in general
    learnt = other(tmp_path / "learnt")
    for n in (1, 2):
        convert(parse(message(n, "obx19-seconds")), learnt)
    _same(general, golden._outcome(text, learnt), "issued")
    assert not _planned_observations(convert(parse(message(9, "obx19-seconds")), learnt))
    assert not [p for p in plans._SITES[id(learnt)].plans.values() if p is not None]


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)) as eng:
        yield eng


def test_planned_results_with_analysis_times_are_stored_as_sent(engine: Engine) -> None:
    """Through the ingest pipeline into the store: a feed whose results each state OBX-19; from the third
    message on the results are built from plans and validated by their holes; each stored result reads
    back with its own analysis time, and a correction (OBX-11 C, another analysis time) replaces it."""
    batch = [(message(n, "obx19-seconds").encode(), "test", "127.0.0.1:1") for n in range(11, 15)]
    built = [0]
    quick = plans.GroupPlans.quick

    def counting(self: plans.GroupPlans, obx: Any) -> Any:
        made = quick(self, obx)
        built[0] += made is not None and made[1].get("extension") is not None
        return made

    with mock.patch.object(plans.GroupPlans, "quick", counting):
        outcomes = engine.ingestor.process(batch)
    assert built[0] >= 2 * 5  # the numeric results of the last two messages, from their plans
    assert all(b"MSA|AA|" in o.ack for o in outcomes), [o.ack for o in outcomes]
    for n in range(11, 15):
        [report] = engine.repository.search("DiagnosticReport", [("identifier", f"LAB{n:06d}")]).resources
        for i, ref in enumerate(report["result"], 1):
            obs = engine.repository.read(*ref["reference"].split("/"))
            assert [e["url"] for e in obs["extension"]] == [ANALYSIS_URL]
            assert obs["extension"][0]["valueDateTime"].replace("-", "").replace("T", "").replace(":", "")[:14] \
                == _analysed(n, i), obs
    corrected = message(14, "obx19-corrected").replace(_analysed(14, 1), "20261102101010").replace(
        "|P42-000014|", "|P42-C00014|")  # (a message of its own: its control id)
    [outcome] = engine.ingestor.process([(corrected.encode(), "test", "127.0.0.1:1")])
    assert b"MSA|AA|" in outcome.ack, outcome.ack
    [report] = engine.repository.search("DiagnosticReport", [("identifier", "LAB000014")]).resources
    wbc = engine.repository.read(*report["result"][0]["reference"].split("/"))
    assert wbc["status"] == "corrected"
    assert ANALYSIS_URL in json.dumps(wbc) and "2026-11-02T10:10:10" in json.dumps(wbc), wbc
