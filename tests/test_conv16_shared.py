"""A planned Observation shares its plan's fixed trees (sixteenth round, ``plans._generate``): the
reference range, the interpretation and the code's codings are the plan's own objects in every result
it builds, as the lab category (``results.CATEGORY_LAB``) always was (the code's own dict is not
shared: the recognition hook remembers a result's classification by the identity of its code, which
the last check pins). That is
right only while nothing after the converter changes a converted resource's elements in place: a
change would reach every later result of the plan. This sends results through the real path (MLLP,
ingest, merge with stored versions, a correction, the recognition and identity hooks, the store)
and checks that no plan's trees changed, and that what was stored equals the plan's trees."""

from __future__ import annotations

from typing import Any

from adapters.convert import convert, plans
from adapters.hl7v2.parser import parse
from bench.ingest import oru_lab
from engine.fhirjson import dumps
from engine.settings import Settings
from mappings.site import Site
from tests.conftest import mllp_send


def _trees(site: Site) -> dict[int, bytes]:
    """Every plan of ``site`` (the engine's: the plan cache is per process and holds the sites other
    tests in this worker loaded too, with plans of their own for the same codes), its fixed
    elements as bytes, by the plan's identity."""
    entry = plans._SITES[id(site)]
    return {id(plan): dumps([[name, fixed] for name, _kind, fixed in plan.items])
            for plan in entry.plans.values() if plan is not None}


def _changed(message: bytes, control: str, old: str, new: str) -> bytes:
    text = message.decode()
    head, rest = text.split("|ORU^R01^ORU_R01|", 1)
    rest = control + rest[rest.index("|"):]
    return f"{head}|ORU^R01^ORU_R01|{rest}".replace(old, new).encode()


def test_no_plan_tree_is_changed_by_what_ingest_does_with_its_results(engine: Any, mllp: int) -> None:
    for n in (1, 2, 3):  # plans learnt, proven, used
        assert "MSA|AA|" in mllp_send(mllp, oru_lab(n))
    before = _trees(engine.site)
    assert len(before) >= 12  # the blood count's twelve tests
    for message in (
        oru_lab(4),
        _changed(oru_lab(3), "LAB-CHANGED", "|6.2|", "|6.9|"),  # the same results, a value changed: merged
        _changed(oru_lab(3), "LAB-CORRECTED", "|N|||F|", "|H|||C|"),  # corrected: another plan, merged
        _changed(oru_lab(3), "LAB-NULL", "|N|||F|", '|""|||F|'),  # OBX-8 "": the ordinary path deletes
        oru_lab(3),  # re-sent as it was
    ):
        assert "MSA|A" in mllp_send(mllp, message)
    after = _trees(engine.site)
    assert {k: after[k] for k in before} == before
    stored = engine.repository.search("Observation", [("code", "urn:huren:code:FNXRMYY|HGB")]).resources
    assert len(stored) >= 4
    shared = next(plan.items for plan in plans._SITES[id(engine.site)].plans.values()
                  if plan is not None and dumps(plan.items).find(b'"HGB"') >= 0)
    code = next(fixed for name, _kind, fixed in shared if name == "code")
    assert all(r["code"] == code for r in stored)


def test_results_of_one_plan_share_its_range_and_codings_not_its_code(tmp_path: Any) -> None:
    site = Site.load(Settings(data_dir=tmp_path / "var"))
    for n in (1, 2):
        convert(parse(oru_lab(n).decode()), site)
    first, second = ([r for r in convert(parse(oru_lab(n).decode()), site).resources
                      if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "HGB"][0]
                     for n in (3, 4))
    assert first["referenceRange"] is second["referenceRange"]
    assert first["interpretation"] is second["interpretation"]
    assert first["code"] == second["code"] and first["code"] is not second["code"]
    assert first["code"]["coding"] is second["code"]["coding"]
