"""The message templates are data: each must compile (its shared specs, builders, vocabularies and
rule converters exist), and each event it lists must route to it through table 0354."""

from __future__ import annotations

import pytest

from adapters.convert import templates
from adapters.convert.datatypes import CONVERTERS
from adapters.convert.tables import vocabulary
from engine.settings import Settings
from mappings.site import Site

SITE = Site.load(Settings())
NAMES = sorted(k for k in SITE.tables if k.startswith("messages/"))


def test_there_is_a_template_per_converted_structure() -> None:
    assert len(NAMES) >= 40


@pytest.mark.parametrize("name", NAMES)
def test_template_compiles_and_its_events_route_to_it(name: str) -> None:
    spec = SITE.tables[name]
    structure = name.split("/", 1)[1]
    mtype = structure.split("_", 1)[0]
    structures = SITE.tables["event_structures"]
    for event in spec.get("events", ()):
        routed = f"messages/{mtype}_{event}"
        if routed not in SITE.tables:
            routed = f"messages/{structures.get(f'{mtype}_{event}', '')}"
        assert routed == name, f"{mtype}^{event} routes to {routed}, not {name}"
    if "handler" in spec:
        assert spec["handler"] in templates.HANDLERS
        return
    compiled = templates._compile(spec, SITE)
    for res in compiled.specs:
        if res.builder:
            assert res.builder in templates.BUILDERS, res.builder
        for post in res.post:
            assert post in templates.POST, post
        raw_rules = res.raw.get("rules", ())
        if isinstance(raw_rules, str):
            raw_rules = SITE.tables[raw_rules]["rules"]
        for rule in raw_rules:
            assert rule["type"] in CONVERTERS, rule
            if "vocab" in rule:
                vocabulary(SITE, rule["vocab"])  # raises when the vocabulary is missing
        for target in res.refs.values():
            assert target.startswith("$"), target
