"""ident38: a site merge.yaml copied before the ``problem`` group keeps the visit guard.

The shipped ``Encounter.subject`` row (``another_person``: one visit number, two patients -- refused) now
names ``problem`` (PPR). A site file that defines no such group had the whole row left out of the overlay
(``mappings.site.laid_over``: a shipped rule naming a group the site does not define) -- every message of
patient 2 under patient 1's visit number, an A01 too, would be filed as patient 1's visit. Laid now with
what the site knows (``_guard_laid``). Real HL7 over MLLP into a real store on both backends, read back over
``/fhir``; the site folder is the engine's own."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from mappings.site import DEFAULTS_DIR, load_merge_file
from tests.test_placer19_two_patients import pid
from tests.test_recognition_policy_e2e import INSTITUTIONS, msh, ts
from tests.test_visit20_reused_numbers import (  # noqa: F401 -- fixtures
    ONE,
    TWO,
    accepted,
    adt,
    fhir,
    one_visit_numbered,
    pv1,
    read,
    send,
)


def _site_file(groups: dict[str, list[str]]) -> str:
    """A site merge.yaml as a site copied it: its own sources, the shipped defaults, no rules of its own."""
    shipped = load_merge_file(DEFAULTS_DIR / "merge.yaml")
    return yaml.safe_dump({"sources": groups, "defaults": shipped["defaults"], "resources": {}}, allow_unicode=True)


# the shipped groups before ``problem`` (a copy from the nineteenth round), and a site naming its feeds ``hl7``
_NO_PROBLEM = {"registration": ["ADT"], "order": ["ORM", "OML", "OMG"], "result": ["ORU", "OUL"],
               "document": ["MDM"], "referral": ["REF", "RRI"],
               "feed": ["registration", "order", "result", "document", "referral"], "api": ["api"], "index": ["index"]}
_HL7 = {"hl7": ["ADT", "ORM", "OML", "OMG", "ORU", "OUL", "MDM", "PPR", "REF", "RRI"], "feed": ["hl7"],
        "api": ["api"], "index": ["index"]}


@pytest.fixture(params=[("sqlite", {}, _NO_PROBLEM), ("mongomock", {"mongodb_uri": "mongomock://"}, _NO_PROBLEM),
                        ("hl7-group", {}, _HL7)], ids=lambda p: p[0])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    _, backend, groups = request.param
    site = tmp_path / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    (site / "merge.yaml").write_text(_site_file(groups), "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site, **backend)) as eng:
        yield eng


def test_the_visit_guard_holds_in_a_site_without_the_problem_group(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    """Patient 2's A01 and his problem list (PPR) under patient 1's visit number: refused at PV1-19, patient
    1's visit keeps its patient; patient 1's own problem list under it is filed."""
    assert engine.site.merge["resources"]["Encounter"]["subject"]["another_person"]
    accepted(mllp, adt("A01", "G-1", ONE, "V100", ts(3)))
    visit = one_visit_numbered(fhir, "V100")
    code, errs = send(mllp, adt("A01", "G-2", TWO, "V100", ts(2)))
    assert code == "AE" and any(e[2] == "PV1^1^19" for e in errs), (code, errs)

    def ppr(control: str, who: tuple[str, int | None, str]) -> str:
        return (msh("HOSPA", "EMR", "PPR^PC1^PPR_PC1", ts(2), control) + pid(*who) + pv1("V100", ts(2))
                + f"PRB|AD|{ts(2)}|I10^高血压^ICD10|P-{control}||2||{ts(2)}\n")

    code, errs = send(mllp, ppr("G-3", TWO))
    assert code == "AE" and any(e[2] == "PV1^1^19" for e in errs), (code, errs)
    assert one_visit_numbered(fhir, "V100")["subject"] == visit["subject"]
    assert read(fhir, "Condition") == []
    accepted(mllp, ppr("G-4", ONE))
    (problem,) = read(fhir, "Condition")
    assert problem["subject"]["reference"] == visit["subject"]["reference"]
