"""The collected suite is out of the collector's walks (``tests/conftest.py``, trim42): what a worker
collected -- the test modules, their functions, pytest's items -- is frozen once collection is over,
and again after a test that unfroze it (the ``settled`` fixture's ``engine.heap.unsettle``), while what
the tests make is still collected."""

from __future__ import annotations

import gc
import sys
import weakref

from engine import heap


def _walked(obj: object) -> bool:
    """Whether a collection walks ``obj`` (frozen objects are in no generation ``gc.get_objects`` lists)."""
    return any(o is obj for o in gc.get_objects())


class _Node:
    other: object = None


def test_the_collected_modules_and_functions_are_frozen() -> None:
    module = sys.modules[__name__]
    assert gc.is_tracked(module.__dict__) and gc.is_tracked(test_the_collected_modules_and_functions_are_frozen)
    assert not _walked(module.__dict__)
    assert not _walked(test_the_collected_modules_and_functions_are_frozen)
    assert gc.get_freeze_count() > 10_000


def test_cycles_made_by_a_test_are_still_collected() -> None:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    assert _walked(a)
    del a, b
    gc.collect()
    assert gone() is None


def test_a_settled_test_unfreezes_everything(settled: None) -> None:
    assert heap._settled


def test_the_next_test_finds_the_collection_frozen_again() -> None:
    assert not heap._settled
    assert not _walked(test_the_collected_modules_and_functions_are_frozen)
    assert not _walked(sys.modules[__name__].__dict__)
