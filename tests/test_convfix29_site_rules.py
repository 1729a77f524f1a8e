"""convfix29: the A12 bed rule (``history_taken_back_by``) as a site's merge.yaml states it.

The lead's decisions on the review of convperf29: a site's element rule that leaves the key out
takes the shipped key (``mappings.site.CARRIED_KEYS``; the reviewer's tests hold the old copies); a
site that wants no take-back writes the key empty; a rule with the key and no ``history`` list still
takes the cancelled transfer's bed back; the key is refused at load, naming file and key, on an
element that never reads it or naming an event HL7's table 0003 does not list. Every other key of an
element rule stays the site's, whole.

Real HL7 over MLLP into the real store (SQLite) for what is stored; ``Site.load`` of real files for
what is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.hl7v2.tables import trigger_events
from engine.engine import Engine
from engine.settings import Settings
from mappings.site import TAKEN_BACK_ON, Site, SiteError, load_merge_file
from tests.test_rvconvperf29_a12_site import SHIPPED_RULE, a12_beds
from tests.test_rvconvperf29_a12_site import _site_with_merge as _site

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = (ROOT / "mappings" / "merge.yaml").read_text("utf-8")
RULES = {
    # the site wants PV1-6 of an A12 kept as the bed left (its HIS writes the bed given up there)
    "none": "history: [completed], history_unless: [cancelled, entered-in-error], history_taken_back_by: []}",
    # the key written, no ``history``: the shipped one is carried (CARRIED_KEYS); the message's own PV1-6 is still taken back
    "no-history": "history_taken_back_by: [A12]}",
}


@pytest.fixture(scope="module", params=sorted(RULES))
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    assert SHIPPED.count(SHIPPED_RULE) == 1
    root = tmp_path_factory.mktemp(request.param)
    site = _site(root, SHIPPED.replace(SHIPPED_RULE, RULES[request.param]))
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=site)) as eng:
        yield request.param, eng


def test_the_site_rule_decides_the_take_back(engine: tuple[str, Engine]) -> None:
    """A01 to 101, A02 to 102, A12 back to 101 (PV1-6 102). ``[]``: no take-back, 102 stored as a
    bed left (the site's word); the key without ``history``: 102 taken back, 101 alone."""
    name, eng = engine
    beds = a12_beds(eng, "S", "VS1")
    expected = {"none": [("W01 101房 1床", "active"), ("W01 102房 1床", "completed")],
                "no-history": [("W01 101房 1床", "active")]}[name]
    assert beds == expected, beds


def test_the_history_keys_are_carried_into_an_old_copy(tmp_path: Path) -> None:
    """A copy of ``Encounter.location`` made before the twenty-eighth round (``status_follows``
    alone) takes the shipped ``history``, ``history_unless`` and ``history_taken_back_by`` (the lead,
    twenty-ninth round: a thinner A08 must not erase the beds the patient left because the site's copy
    predates the keys); ``status_follows`` stays the site's."""
    site = _site(tmp_path, SHIPPED.replace(SHIPPED_RULE, "}"))
    rule = Site.load(Settings(data_dir=tmp_path / "var", site=site)).merge["resources"]["Encounter"]["location"]
    assert rule["history_taken_back_by"] == ["A12"]
    assert rule["history"] == ["completed"] and rule["history_unless"] == ["cancelled", "entered-in-error"]
    assert set(rule["status_follows"]) == {"active", "planned"}


def test_a_site_writing_no_history_keeps_none(tmp_path: Path) -> None:
    """The way out of a carried key is to write it empty: ``history: []`` is the site's, not the shipped."""
    site = _site(tmp_path, SHIPPED.replace(SHIPPED_RULE, "history: [], history_unless: []}"))
    rule = Site.load(Settings(data_dir=tmp_path / "var", site=site)).merge["resources"]["Encounter"]["location"]
    assert rule["history"] == [] and rule["history_unless"] == []


@pytest.mark.parametrize(("old", "new", "says"), [
    ("history_taken_back_by: [A12]", "history_taken_back_by: [A99]", "'A99' is not a trigger event"),
    ("history_taken_back_by: [A12]", "history_taken_back_by: [A12, Z01]", "'Z01' is not a trigger event"),
    # the key on an element no converter reads it from
    ("participant: {feed: by-key,", "participant: {feed: by-key, history_taken_back_by: [A12],",
     "read only on Encounter.location"),
])
def test_a_rule_that_could_never_apply_is_refused_at_load(tmp_path: Path, old: str, new: str, says: str) -> None:
    """Well formed, yet never a rule: an event no HL7 version lists (the site means A12, or a local
    Z event the converter never meets) or the key on another element. Refused, naming the file, its
    line and the key."""
    assert SHIPPED.count(old) == 1
    site = _site(tmp_path, SHIPPED.replace(old, new))
    with pytest.raises(SiteError, match="history_taken_back_by") as caught:
        Site.load(Settings(data_dir=tmp_path / "var", site=site))
    assert says in str(caught.value) and "merge.yaml:" in str(caught.value), str(caught.value)


def test_the_shipped_events_are_hl7_trigger_events() -> None:
    """The shipped file's events are not checked against table 0003 at load (hl7apy's table modules
    cost ~0.7 s a process; ``load_merge_file``), nor a site copy's same events: checked here."""
    rtype, element = TAKEN_BACK_ON
    events = load_merge_file(ROOT / "mappings" / "merge.yaml")["resources"][rtype][element]["history_taken_back_by"]
    assert events and set(events) <= trigger_events(), events
    assert "A12" in trigger_events() and "A99" not in trigger_events() and "a12" not in trigger_events()
