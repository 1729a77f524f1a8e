"""Work the converter skips gives the same answers as the work it replaces.

- A conversion lists its resources without building its transaction Bundle; the Bundle, built when
  first asked for, holds exactly those resources in that order (``Conversion.bundle``).
- Whether a message may carry imaging content is asked of each OBX's (OBX-2, OBX-3) text once per
  process (``pacs._may_name_a_study``); the answer is the one the whole message's texts give.
- A lab result built from a plan whose time a FHIR server must refuse (HL7 allows an offset of
  +14:59, FHIR only up to +14:00) is refused over MLLP with the same ACK -- AE, the same ERR --
  as the same message converted the ordinary way, and a good one is accepted.

Messages: the public samples and the ingest benchmark's 12-result blood count."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest

from adapters.convert import Conversion, convert, pacs, plans
from adapters.convert.actors import practitioner
from adapters.convert.context import Context
from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.parser import parse
from bench.ingest import oru_lab
from conformance.validate import Validator
from engine.settings import Settings
from mappings.site import Site
from tests.conftest import mllp_send, sample_files, sample_site


def test_a_conversion_lists_the_resources_its_bundle_holds(tmp_path: Path) -> None:
    samples = sample_site(tmp_path)
    checked = 0
    for path in sample_files():
        try:
            conversion = convert(parse(path.read_text(encoding="utf-8")), samples)
        except HL7Error:  # refused: no Bundle to compare
            continue
        listed = conversion.resources  # before the Bundle exists
        bundle = conversion.bundle
        assert [e["resource"] for e in bundle["entry"]] == listed
        assert all(e["resource"] is r for e, r in zip(bundle["entry"], listed, strict=True))
        assert conversion.bundle is bundle  # built once
        assert conversion.resources == listed
        checked += 1
    assert checked >= 40


def test_a_change_to_the_built_bundle_is_what_the_resources_list() -> None:
    conversion: Conversion = convert(parse(oru_lab(7).decode()), Site.load(Settings()))
    dropped = conversion.bundle["entry"].pop()
    assert dropped["resource"] not in conversion.resources
    assert len(conversion.resources) == len(conversion.bundle["entry"])


def _joined_may_name_a_study(results: list) -> bool:
    """The question as it was asked before the memo: of the message's texts joined."""
    if not results:
        return False
    enc = results[0].enc
    esc = enc.escape
    if not esc or any(obx.enc is not enc for obx in results):
        return True
    items = [obx.fields[3] if len(obx.fields) > 3 else "" for obx in results]
    kinds = "\r".join(obx.fields[2] if len(obx.fields) > 2 else "" for obx in results)
    text = "\r".join(items)
    if not all(items) or esc in text or esc in kinds or "RP" in kinds.upper():
        return True
    text = text.upper()
    return any(code in text for code in pacs._STUDY_UID_CODES)


_OBX_SETS = [
    ["NM|WBC^白细胞计数^L", "NM|RBC^红细胞计数^L"],
    ["NM|WBC^白细胞计数^L", "RP|CT001^胸部CT^L"],
    ["NM|WBC^白细胞计数^L", "rp|CT001^胸部CT^L"],
    ["ST|113014^Study Instance UID^DCM"],
    ["ST|x^studyuid^L"],
    ["ST|x^Study Instance UID^L", "NM|WBC^x^L"],
    ["NM|WBC\\T\\1^x^L"],
    ["NM\\E\\|WBC^x^L"],
    ["NM|", "NM|WBC^x^L"],
    ["NM", "NM|WBC^x^L"],
    ["TX|IMP^印象^L", "TX|诊断^结论^L"],
    ["ST|110180^Study^DCM"],
    ["ST|1101^80^L"],
]


@pytest.mark.parametrize("obx", _OBX_SETS)
def test_the_imaging_question_per_obx_agrees_with_the_joined_one(obx: list[str]) -> None:
    body = "".join(f"OBX|{i}|{o}\r" for i, o in enumerate(obx, 1))
    message = parse("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORU^R01|M1|P|2.5.1\r"
                    "PID|1||MRN1^^^FNXRMYY^MR\r" + body)
    results = message.all("OBX")
    expected = _joined_may_name_a_study(results)
    for _ in range(2):  # asked, then answered from the memo
        assert pacs._may_name_a_study(results) is expected


@contextmanager
def _plans_off() -> Iterator[None]:
    with (mock.patch.object(plans, "describe", return_value=None),
          mock.patch.object(plans, "shortcut", return_value=(None, None)),
          mock.patch.object(plans.GroupPlans, "quick", return_value=None)):
        yield


def _with_time(message: bytes, result: int, stamp: str, control: str) -> bytes:
    """The message with OBX ``result``'s OBX-14 set to ``stamp`` and MSH-10 to ``control``."""
    lines = message.decode().split("\r")
    for i, line in enumerate(lines):
        parts = line.split("|")
        if parts[0] == "MSH":
            parts[9] = control
        if parts[0] == "OBX" and parts[1] == str(result):
            parts[14] = stamp
        lines[i] = "|".join(parts)
    return "\r".join(lines).encode()


def _segments(ack: str, name: str) -> list[str]:
    return [s for s in ack.split("\r") if s.startswith(name + "|")]


def test_a_refused_time_in_a_planned_result_is_refused_as_the_ordinary_path_refuses_it(engine, mllp) -> None:
    for n in (1, 2):  # the plans learnt, then proven by the whole validation
        assert _segments(mllp_send(mllp, oru_lab(n)), "MSA")[0].startswith("MSA|AA|")
    good = mllp_send(mllp, _with_time(oru_lab(3), 4, "20261101090000+1400", "PLANNED-OK"))
    assert _segments(good, "MSA")[0].startswith("MSA|AA|")
    filled = [0]
    fill = plans.fill

    def counted(*args: object, **kwargs: object) -> object:
        built = fill(*args, **kwargs)
        filled[0] += built is not None
        return built

    quick = plans.GroupPlans.quick

    def counted_quick(self: plans.GroupPlans, obx: object) -> object:
        built = quick(self, obx)
        filled[0] += built is not None
        return built

    with mock.patch.object(plans, "fill", counted), mock.patch.object(plans.GroupPlans, "quick", counted_quick):
        planned = mllp_send(mllp, _with_time(oru_lab(4), 4, "20261101090000+1459", "PLANNED-BAD"))
    assert filled[0] == 12  # every result, the bad one too, built from its plan
    with _plans_off():
        ordinary = mllp_send(mllp, _with_time(oru_lab(4), 4, "20261101090000+1459", "ORDINARY-BAD"))
    assert _segments(planned, "MSA")[0].startswith("MSA|AE|PLANNED-BAD")
    assert _segments(ordinary, "MSA")[0].startswith("MSA|AE|ORDINARY-BAD")
    errors = _segments(planned, "ERR")
    assert errors and errors == _segments(ordinary, "ERR")
    assert "+14:59" in errors[0] and "effectiveDateTime" in errors[0]


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def _marked(conversion: Conversion, rtype: str) -> list[tuple[dict, object]]:
    return [(r, conversion.planned[f"{rtype}/{r['id']}"]) for r in conversion.resources
            if r["resourceType"] == rtype and f"{rtype}/{r['id']}" in conversion.planned]


def test_the_sender_the_doctor_and_a_returning_patient_are_validated_by_their_text(validator: Validator) -> None:
    """The sender and the ordering doctor of every message, and a patient whose PID comes a third
    time, are made from the same texts as before: validated whole once, then by their JSON text."""
    site = Site.load(Settings())
    same_patient = [oru_lab(1).decode().replace("LAB000000001", f"LAB00000000{n}") for n in (1, 2, 3)]
    conversions = [convert(parse(text), site) for text in same_patient]
    for conversion in conversions:
        for rtype in ("Organization", "Practitioner"):
            ((resource, mark),) = _marked(conversion, rtype)
            assert validator.valid_planned(resource, mark)
    assert not _marked(conversions[0], "Patient") and not _marked(conversions[1], "Patient")
    ((patient, mark),) = _marked(conversions[2], "Patient")  # the third arrival is a copy
    assert validator.valid_planned(patient, mark)


@pytest.mark.parametrize(("rtype", "change"), [
    ("Organization", lambda r: r.update(name="")),  # a string FHIR refuses
    ("Organization", lambda r: r.update(active=1)),  # a number where a boolean goes
    ("Practitioner", lambda r: r["name"][0].update(given=[""])),
    ("Practitioner", lambda r: r["identifier"][0].update(system="not a uri")),
])
def test_a_kept_resource_changed_after_it_was_made_is_validated_whole(validator: Validator, rtype: str,
                                                                      change: object) -> None:
    site = Site.load(Settings())
    for n in (1, 2):
        for resource, mark in _marked(convert(parse(oru_lab(n).decode()), site), rtype):
            assert validator.valid_planned(resource, mark)
    ((resource, mark),) = _marked(convert(parse(oru_lab(3).decode()), site), rtype)
    change(resource)  # type: ignore[operator]
    assert not validator.valid_planned(resource, mark)
    assert not validator.is_valid(resource)


def test_a_merge_that_adds_an_element_drops_the_mark() -> None:
    """A doctor named by id alone, then again by id alone (nothing added: still the planned
    resource), then by id and name (a name added: no longer what its plan made)."""
    site = Site.load(Settings())
    ctx = Context(message=parse(oru_lab(5).decode()), site=site, institution=site.institution("FNXRMYY"))
    xcn = parse("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORU^R01|M1|P|2.5.1\r"
                "OBR|1|||||||||||||||D009~D009~D009^王^医生\r").get("OBR")
    reps = xcn.reps(16)
    ref = practitioner(reps[0], ctx)["reference"]
    assert ref in ctx.planned
    practitioner(reps[1], ctx)
    assert ref in ctx.planned
    practitioner(reps[2], ctx)
    assert ref not in ctx.planned and ctx.resources[ref]["name"][0]["family"] == "王"
