"""low44: the shared compiled merge rules are keyed by the rules' canonical form, and kept under a lock.

trim43 shared one compiled set of merge rules a process (``engine.merge_rules._COMPILED``), keyed by ``repr`` of the
rules as read: a site whose ``merge.yaml`` says the same rules in another key order compiled them again (a miss, never
a wrong hit), and the bound's eviction (``pop(next(iter()))``) ran unlocked beside another thread's insert (trim43's
left MED). Real HL7 v2 over ``POST /hl7v2`` into two real engines on two site folders; the lock by Engines' rules
built on many threads at once.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine import merge_rules
from engine.engine import Engine
from engine.merge_rules import MergeRules, shipped
from engine.settings import Settings
from tests.module_store import undeclared_site
from tests.test_hl7fix18_site_merge import HL7_GROUP
from tests.test_trim43_shared_merge_rules import _acks


def _reversed(value: Any) -> Any:
    """``value`` with every mapping's keys in the reverse order: equal, another ``repr``."""
    if isinstance(value, dict):
        return {k: _reversed(value[k]) for k in reversed(list(value))}
    return [_reversed(v) for v in value] if isinstance(value, list) else value


def test_the_same_rules_in_another_key_order_compile_once_and_merge_alike(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two sites (other institutions), one ``merge.yaml`` the other's rules written in the reverse key order: the
    second engine compiles nothing again, shares the first's plans, and answers the same (the site's ``conflict:
    {hl7: reject}``: a final taken back to preliminary is AE)."""
    one, other = tmp_path / "one", undeclared_site(tmp_path / "other")
    one.mkdir()
    (one / "merge.yaml").write_text(HL7_GROUP, "utf-8")
    (other / "merge.yaml").write_text(
        yaml.safe_dump(_reversed(yaml.safe_load(HL7_GROUP)), sort_keys=False, allow_unicode=True), "utf-8")
    compiled: list[str] = []
    element = MergeRules._element
    monkeypatch.setattr(MergeRules, "_element", lambda self, rule, *a: compiled.append("x") or element(self, rule, *a))
    with Engine(settings.with_(data_dir=tmp_path / "a", site=one)) as a:
        assert _acks(a)[0] == ["AA", "AE"]
        compiled.clear()
        with Engine(settings.with_(data_dir=tmp_path / "b", site=other)) as b:
            assert b.site.merge == a.site.merge and repr(b.site.merge) != repr(a.site.merge)  # (equal, reordered)
            codes, (obs,) = _acks(b)
            assert codes == ["AA", "AE"] and obs["status"] == "final", (codes, obs)
            assert compiled == [], "equal rules in another key order: nothing compiled again"
            assert b.repository.merge._plans is a.repository.merge._plans
            assert b.repository.merge is not a.repository.merge and b.repository.merge.data is b.site.merge


def test_other_rules_are_never_one_key() -> None:
    """Guard: rules differing only in a scalar's type (``1`` / ``True`` / ``'1'``) or a list's order are other keys."""
    keys = {merge_rules._canonical(v) for v in ({"a": 1}, {"a": True}, {"a": "1"}, {"a": [1, 2]}, {"a": [2, 1]},
                                                {"a": (1, 2)}, {"b": 1}, {"a": {"b": 1}}, {"a": "{'b':1}"})}
    assert len(keys) == 9
    assert merge_rules._canonical({"a": 1, "b": [{"c": 2, "d": 3}]}) == \
        merge_rules._canonical({"b": [{"d": 3, "c": 2}], "a": 1})


def test_guard_rules_built_on_many_threads_at_once_keep_the_bound_and_their_own_rules() -> None:
    """Forty sets of rules (the shipped ones, each with a ServiceRequest element rule of its own) built on eight threads
    at once, the interpreter switching threads as often as it can: none raises, each reads its own rule, and both
    tables stay within their bound. A guard: the unlocked eviction's race (an insert between another thread's
    ``iter`` and ``next``, or two inserts past one bound check) did not show here against the old code in five runs
    -- its window is a few bytecodes; the lock closes it by construction."""
    data = shipped().data
    sets = [{**data, "resources": {**data["resources"], "ServiceRequest": {
        **data["resources"]["ServiceRequest"], f"low44x{n}": {"ORU": "replace"}}}}
        for n in range(40)]
    failures: list[BaseException] = []
    wrong: list[int] = []
    start = threading.Barrier(8)

    def build(part: int) -> None:
        start.wait()
        for round_ in range(3):
            for n in range(part, len(sets), 8):
                try:
                    rules = MergeRules(sets[n], f"site {n}")
                    if (rules._resources["ServiceRequest"].get(f"low44x{n}") or {}).get("ORU") != "replace":
                        wrong.append(n)
                except BaseException as exc:  # (any: the test reports it)
                    failures.append(exc)
            del round_

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=build, args=(p,)) for p in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == [] and wrong == [], (failures[:3], wrong[:5])
    assert len(merge_rules._COMPILED) <= merge_rules._KEPT_SETS
    assert len(merge_rules._READ_AS) <= merge_rules._KEPT_SETS
