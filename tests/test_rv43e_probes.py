"""rv43e: review probes of plan43 (a compiled plan says again the deletes its first conversion said) and acsn43b
(an accession's assigner).

Real HL7 v2 bytes through ``POST /hl7v2`` into a real engine and store, read back over ``/fhir``. A probe that shows
a defect is a strict xfail naming its severity; the others guard what the review found sound."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.convert import Conversion
from adapters.hl7v2.ack import ack_code_of
from engine.settings import Settings
from tests.hl7_calls import post
from tests.test_a40b41_carried import opened
from tests.test_plan43_deletes import (
    DIRECTOR,
    OBSERVER,
    PANEL,
    _captured,
    _message,
    _observations_said,
    _stored,
)

BOTH = pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
SQLITE = pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)


def _elsewhere(settings: Settings, name: str) -> Settings:
    """Another store (a fresh site's plans: another Engine, another site object) beside ``settings``'."""
    return settings.with_(data_dir=settings.data_dir.with_name(name),
                          **({"mongodb_db": f"rv43e_{name}"} if settings.mongodb_uri else {}))


def _pair(http: TestClient, made: list[Conversion], mrn: str, n: int, final: dict[int, str],
          correction: dict[int, str]) -> Conversion:
    """``mrn``'s final then its correction (control ids by ``n``), both AA; the correction's conversion."""
    for status, fields, stamp in (("F", final, "091500"), ("C", correction, "101500")):
        ack = post(http, _message(f"RV43E{status}{n}{stamp}", mrn, status, fields))
        assert ack_code_of(ack) == "AA", ack
    return made[-1]


def _planned(conversion: Conversion) -> list[str]:
    return [r for r in conversion.planned if r.startswith("Observation/")]


# --- plan43: plan vs general path over corrections with "" in other fields ---------------------------------------

# final's fields, correction's fields
NULLS: dict[str, tuple[dict[int, str], dict[int, str]]] = {
    "obx6-null": ({}, {6: '""'}),
    "obx16-obx6-null": ({16: OBSERVER}, {6: '""', 16: '""'}),
    "obx16-obx17-null": ({16: OBSERVER, 17: "ISE^离子选择电极^L"}, {16: '""', 17: '""'}),
    "obx25-obx8-null": ({8: "H", 25: DIRECTOR}, {8: '""', 25: '""'}),
    "obx16-null-obx25-named-new": ({16: OBSERVER, 25: DIRECTOR}, {16: '""', 25: "2002^李^主任"}),
    "obx16-null-repeated": ({16: OBSERVER}, {16: '""~""'}),
}


@BOTH
@pytest.mark.parametrize("case", sorted(NULLS))
def test_plan_and_general_path_store_and_say_the_same_with_nulls_in_other_fields(
        backend_settings: Settings, case: str) -> None:
    """As plan43's differential, over ``""`` in fields its corpus did not put beside OBX-16/25: the stored versions
    and ``Conversion.said`` equal whether the correction's shape was met before (two patients) or not."""
    final, correction = NULLS[case]
    with opened(backend_settings) as (engine, http):
        made = _captured(engine)
        ordinary = _pair(http, made, "RV43EX", 9, final, correction)
        assert not _planned(ordinary), case
        general = _stored(http, "RV43EX")
    with opened(_elsewhere(backend_settings, "learnt")) as (engine, http):
        made = _captured(engine)
        for n, mrn in enumerate(("RV43ET1", "RV43ET2")):
            _pair(http, made, mrn, n, final, correction)
        learnt = _pair(http, made, "RV43EX", 9, final, correction)
        compiled = _stored(http, "RV43EX")
    assert len(_planned(learnt)) == (2 if 8 in correction else len(PANEL)), case  # (compared: the plan path)
    assert general == compiled, case
    assert _observations_said(learnt) == _observations_said(ordinary), case


@BOTH
def test_a_plan_learnt_from_a_null_never_deletes_for_a_message_without_it(backend_settings: Settings) -> None:
    """The site learns the shape of a correction sending OBX-16 ``""`` (the observer withdrawn) from two patients;
    then a third patient's correction names no observer (OBX-16 empty: nothing said of it) -- its stored observer
    stays, exactly as on a site that never learnt the ``""`` shape. And the reverse: a plan learnt from corrections
    leaving OBX-16 empty, then one sending ``""``, deletes."""
    observer = {16: OBSERVER}
    with opened(backend_settings) as (engine, http):
        made = _captured(engine)
        for n, mrn in enumerate(("RV43EL1", "RV43EL2")):  # (the "" shape learnt)
            _pair(http, made, mrn, n, observer, {16: '""'})
        first_thin = _pair(http, made, "RV43EL3", 3, observer, {})  # (another key: the ordinary path)
        assert not _planned(first_thin)
        for n, mrn in enumerate(("RV43EM1", "RV43EM2"), 4):  # (the empty shape learnt too)
            _pair(http, made, mrn, n, observer, {})
        thin = _pair(http, made, "RV43EL4", 6, observer, {})
        deleting = _pair(http, made, "RV43EM3", 7, observer, {16: '""'})
        assert _planned(thin) and _planned(deleting)
        stored = _stored(http, "RV43EL3") + _stored(http, "RV43EL4")
        withdrawn = _stored(http, "RV43EM3")
    for versions in stored:
        assert [p["reference"] for p in versions[-1]["performer"] if p["reference"].startswith("Practitioner/")], \
            versions[-1]
    for versions in withdrawn:
        assert not [p for p in versions[-1].get("performer") or () if p["reference"].startswith("Practitioner/")], \
            versions[-1]


def _batch(*messages: str) -> str:
    return ("FHS|^~\\&|LIS|FNXRMYY\rBHS|^~\\&|LIS|FNXRMYY\r" + "".join(messages)
            + f"BTS|{len(messages)}\rFTS|1\r")


@BOTH
def test_a_batch_of_finals_and_corrections_with_nulls_stores_as_one_by_one(backend_settings: Settings) -> None:
    """Three patients' finals and corrections (OBX-16 and OBX-25 ``""``) in one FHS/BHS batch -- the third's planned
    from the shape the first two taught within the batch -- store every version as the same messages sent one by
    one on a site that never met the shape."""
    final, correction = {16: OBSERVER, 25: DIRECTOR}, {16: '""', 25: '""'}
    messages = []
    for n, mrn in enumerate(("RV43EB1", "RV43EB2", "RV43EB3")):
        messages += [_message(f"RV43EBF{n}091500", mrn, "F", final), _message(f"RV43EBC{n}101500", mrn, "C", correction)]
    with opened(backend_settings) as (engine, http):
        for message in messages:
            assert ack_code_of(post(http, message)) == "AA"
        one_by_one = [_stored(http, mrn) for mrn in ("RV43EB1", "RV43EB2", "RV43EB3")]
    with opened(_elsewhere(backend_settings, "batch")) as (engine, http):
        made = _captured(engine)
        ack = post(http, _batch(*messages))
        assert ack.count(b"MSA|AA|") == len(messages), ack
        batched = [_stored(http, mrn) for mrn in ("RV43EB1", "RV43EB2", "RV43EB3")]
    assert any(_planned(c) for c in made), "nothing planned in the batch: the probe compares the ordinary path"
    assert batched == one_by_one
    for versions in batched[2]:
        assert [len(v.get("performer") or ()) for v in versions][-1] <= 1, versions  # (the lab's org at most)


@SQLITE
def test_two_sites_in_one_process_keep_their_own_plans(backend_settings: Settings) -> None:
    """Two engines (two sites) in one process: the first learns the OBX-16 ``""`` shape; the second, which never
    met it, deletes on its own first conversion and stores what the first stores."""
    final, correction = {16: OBSERVER}, {16: '""'}
    with opened(backend_settings) as (one, http_one), opened(_elsewhere(backend_settings, "two")) as (two, http_two):
        made_one, made_two = _captured(one), _captured(two)
        for n, mrn in enumerate(("RV43ES1", "RV43ES2")):
            _pair(http_one, made_one, mrn, n, final, correction)
        planned = _pair(http_one, made_one, "RV43ESX", 9, final, correction)
        fresh = _pair(http_two, made_two, "RV43ESX", 9, final, correction)
        assert _planned(planned) and not _planned(fresh)
        assert _stored(http_one, "RV43ESX") == _stored(http_two, "RV43ESX")
        assert len(PANEL) == len(_stored(http_two, "RV43ESX"))
