"""What the HL7 v2 converters produce from the shipped example feeds is valid for huren: R4
structure and huren's rules, every resource of every transaction Bundle. A change on either side
(converter or rules) that would send real feeds to the quarantine fails here first."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.convert import convert
from adapters.hl7v2.header import decode_message
from adapters.hl7v2.parser import parse
from conformance.validate import Validator
from engine.settings import Settings
from mappings.site import Site

FEEDS = sorted((Path(__file__).resolve().parent.parent / "examples" / "feeds").glob("*.hl7"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return Site.load(Settings(data_dir=tmp_path_factory.mktemp("var")))


@pytest.mark.parametrize("feed", FEEDS, ids=[f.stem for f in FEEDS])
def test_converted_example_feed_is_valid(feed: Path, site: Site) -> None:
    bundle = convert(parse(decode_message(feed.read_bytes())), site).bundle  # MSH-18 may say GB18030
    assert bundle["entry"], feed.name
    assert list(Validator().problems(bundle)) == []


def test_there_are_feeds_to_check() -> None:
    assert len(FEEDS) >= 5
