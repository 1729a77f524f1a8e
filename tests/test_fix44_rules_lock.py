"""fix44: the process's shared recognition rules (``rules._BUILT``, suite44a) insert and evict under one lock
(rv44c LOW 5). Two Engines starting in two threads, each with rules of inputs not yet built, while the cache is full:
both had picked the same oldest key, and the second ``del`` raised KeyError -- that Engine's start failed.

The real ``load_rules`` on the shipped rules files; the interleaving is made certain, not hoped for: the first
thread is held inside its eviction (after it picked the oldest key) until the second has finished or 2 s passed.
Under the lock the second waits for the first (the 2 s pass); without it the second evicts that very key and the
first's ``del`` fails (checked: fails with the lock removed)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from engine.recognition import rules

FOLDERS = [Path(__file__).resolve().parent.parent / "mappings" / "recognition"]


class _HeldEviction(dict):
    """The cache, its first eviction by the thread named ``first`` held until ``done`` is set (2 s at most)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.inside, self.done, self.held = threading.Event(), threading.Event(), False

    def __delitem__(self, key: Any) -> None:
        if threading.current_thread().name == "first" and not self.held:
            self.held = True
            self.inside.set()
            self.done.wait(2)
        super().__delitem__(key)


def test_two_starts_evicting_at_once_both_get_their_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    full = _HeldEviction({("old", i): None for i in range(rules._BUILT_MAX)})
    monkeypatch.setattr(rules, "_BUILT", full)
    got: dict[str, Any] = {}

    def start(name: str) -> None:
        try:
            got[name] = rules.load_rules(FOLDERS, site_local={"FIX44": {f"{name}-code": "NO-SUCH-ITEM"}}, shared=True)
        except Exception as exc:  # (what the Engine's start would have raised)
            got[name] = exc

    first = threading.Thread(target=start, args=("first",), name="first")
    first.start()
    assert full.inside.wait(30)  # the first is inside its eviction, the oldest key picked
    second = threading.Thread(target=start, args=("second",), name="second")
    second.start()
    second.join(10)  # (under the lock it waits for the first: not done yet)
    full.done.set()
    first.join(30)
    second.join(30)
    assert all(isinstance(got.get(n), rules.Rules) for n in ("first", "second")), got
    assert len(full) == rules._BUILT_MAX and not any(k == ("old", 0) for k in full)
