"""The converter's compiled tables and templates are held by identity and bounded (``ByIdentity``).

Before, each site load left its compiled closures in module dicts for the life of the process (a test
worker grew to ~1.8 GB and spent its late files in full collections). These tests hold the two
halves of the change: the bound holds when sites are loaded again and again, and a cache emptied
at any point converts exactly what it converted before (the golden digests of every sample and
feed variant).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from unittest import mock

import pytest

from adapters.convert import builders, engine, templates
from adapters.convert.by_identity import ByIdentity
from mappings import site as site_module
from tests.conftest import sample_files, sample_site
from tests.test_convert_golden import GOLDEN, _outcome, outcomes

CACHES = (engine._COMPILED, templates._COMPILED, builders._FORECAST_STEPS)


def test_an_equal_table_that_is_another_object_is_not_taken_for_it() -> None:
    cache: ByIdentity[dict[str, int], str] = ByIdentity(4)
    table = {"rules": 1}
    cache.put(table, "compiled")
    assert cache.get(table) == "compiled"
    assert cache.get({"rules": 1}) is None  # equal, not the same: a reloaded site's own table


def test_the_cache_is_emptied_when_full_and_fills_again() -> None:
    cache: ByIdentity[object, int] = ByIdentity(3)
    keys = [object() for _ in range(7)]
    for n, key in enumerate(keys):
        cache.put(key, n)
        assert len(cache) <= 3
    assert cache.get(keys[-1]) == 6 and cache.get(keys[0]) is None


def test_sites_loaded_again_and_again_leave_a_bounded_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sites of their own folders (a test's, a site reloaded) whose files are the same bytes compile their tables
    once: every load had left its set (lead26 bounded them; trim42b shares them)."""
    texts = [p.read_text(encoding="utf-8") for p in sample_files() if "ADT_A01" in p.name][:3]

    def load_and_convert(n: int) -> None:
        (tmp_path / str(n)).mkdir()
        site = sample_site(tmp_path / str(n))
        for text in texts:
            _outcome(text, site)

    monkeypatch.setattr(engine._COMPILED, "limit", 10**6)
    # the site readings shared by content (trim42b) emptied for this test: a test before it in the worker had read
    # the sample site, whose tables were then compiled already -- and this test's first load compiled nothing (ci169)
    monkeypatch.setattr(site_module, "_READINGS", {})
    before = len(engine._COMPILED)
    load_and_convert(0)
    first = len(engine._COMPILED) - before
    assert first >= 1  # the first load compiled its rule tables
    for n in range(1, 6):
        load_and_convert(n)
        # trim42b (forty-second round): a site folder of the same bytes shares the tables parsed for the first
        # (``Site.load`` keyed by the files' content), so nothing is compiled again -- the cache no longer grows a
        # set a load; the shared tables themselves are bounded (8 sets a process: tests/test_trim42b_shared_site)
        assert len(engine._COMPILED) - before == first, (n, len(engine._COMPILED) - before, first)


def test_a_cache_emptied_within_every_message_converts_the_same(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """With room for one entry each cache is emptied within nearly every message: the output of
    every sample and the first feed variants is still the golden file's, message for message."""
    for cache in CACHES:
        monkeypatch.setattr(cache, "limit", 1)
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    with mock.patch("adapters.convert.common.received_now", return_value="2026-01-01T00:00:00+00:00"):
        ours = {name: hashlib.sha256(data).hexdigest() for name, data in itertools.islice(outcomes(tmp_path), 160)}
    assert len(ours) == 160 and sum(name.startswith("feeds/") for name in ours) >= 10
    changed = [name for name in ours if ours[name] != golden[name]]
    assert not changed, changed[:5]
