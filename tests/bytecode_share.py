"""Each xdist worker compiles its share of the suite's bytecode before collecting (suite32).

Why: in a fresh clone (what CI runs) nothing is compiled yet, and every worker collects every test
file: each one rewrote the asserts of all ~700 test files and compiled huren's ~230 modules on its
own, at the same moment (~19 s of CPU a worker: three workers, ~57 s, of which ~38 s the same work
done again). Here worker k of n first writes the bytecode of every n-th file (from the k-th) that
has none yet -- a test file as pytest's assertion rewriter writes it, any other module as an import
does (``py_compile``, timestamped) -- so the collection that follows finds the other shares already
written (each file is written atomically, by whichever worker gets there first), and a file still
missing is compiled by the import itself, as before. Nothing is imported here, and nothing changes
when the files are compiled already, when the suite runs in one process, or when the bytecode
may not be written (``sys.dont_write_bytecode``, a read-only folder, another pytest).
"""

from __future__ import annotations

import importlib.util
import os
import py_compile
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

# the packages a collection imports (test files' imports); their other modules are few and cheap
PACKAGES = ("adapters", "conformance", "engine", "mappings")
# fewer test files than this (a run of a few files): each worker compiles what it imports, as before
FEWEST = 40


def _share(files: list[Path]) -> list[Path]:
    """This worker's files: every n-th of ``files`` from the k-th (``PYTEST_XDIST_WORKER`` ``gw<k>``)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    try:
        count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
        index = int(worker.removeprefix("gw"))
    except ValueError:
        return []
    if count < 2 or not 0 <= index < count:
        return []
    return files[index::count]


def _collected(config: pytest.Config, tests: Path, args: Sequence[str] | None) -> list[Path]:
    """The suite's test files that this run collects (its arguments, ``config.args`` unless given: files,
    or folders)."""
    found: set[Path] = set()
    for arg in (config.args if args is None else args) or [str(tests)]:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path.is_dir():
            found.update(p for p in tests.glob("test_*.py") if p.is_relative_to(path))
        elif path.parent == tests and path.name.startswith("test_"):
            found.add(path)
    return sorted(found)


def _modules(root: Path) -> Iterable[Path]:
    for package in PACKAGES:
        yield from (root / package).rglob("*.py")


def compile_share(config: pytest.Config, root: Path, *, args: Sequence[str] | None = None, fewest: int = FEWEST,
                  stalled: float = 3.0) -> int:
    """Write the missing bytecode of this worker's share, then wait for the other workers' shares
    (``_wait_for_others``); the number of files written."""
    if sys.dont_write_bytecode or sys.pycache_prefix or config.getoption("assertmode") != "rewrite":
        return 0
    try:  # pytest's own rewriter and pyc format: a pytest without them only loses the head start
        from _pytest.assertion import rewrite
        state = config.stash[rewrite.assertstate_key]
    except (ImportError, AttributeError, KeyError):
        return 0
    tests = root / "tests"
    test_files = _collected(config, tests, args)
    if len(test_files) < fewest:
        return 0
    helpers = sorted(p for p in tests.glob("*.py") if not p.name.startswith("test_") and p.name != "conftest.py")

    def pyc_of(path: Path) -> Path:
        if path.name.startswith("test_") and path.parent == tests:
            return rewrite.get_cache_dir(path) / (path.name[:-3] + rewrite.PYC_TAIL)
        return Path(importlib.util.cache_from_source(str(path)))

    every = test_files + helpers + sorted(_modules(root))
    mine = _share(every)
    written = 0
    for path in mine:
        pyc = pyc_of(path)
        if pyc.exists():
            continue
        try:
            if pyc.name.endswith(rewrite.PYC_TAIL):
                pyc.parent.mkdir(exist_ok=True)
                source_hash, code = rewrite._rewrite_test(path, config)
                written += rewrite._write_pyc(state, code, source_hash, pyc)
            else:
                py_compile.compile(str(path), cfile=str(pyc), doraise=True,
                                   invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
                written += 1
        except (OSError, SyntaxError, py_compile.PyCompileError):
            continue  # the import compiles it (and reports a syntax error where it belongs)
    if mine:
        _wait_for_others([pyc_of(path) for path in every], stalled=stalled)
    return written


def _wait_for_others(pycs: list[Path], *, stalled: float = 3.0) -> None:
    """Wait until the other workers' shares are written, or none was for ``stalled`` seconds (a worker
    that started late, died or may not write: its files are then compiled by this worker's import).

    Why wait: a worker that collected at once would reach the files another worker is still writing,
    compile them too, and from there on keep pace with it, doing every file twice again."""
    missing = [pyc for pyc in pycs if not pyc.exists()]
    last_progress = time.monotonic()
    while missing and time.monotonic() - last_progress < stalled:
        time.sleep(0.05)
        still = [pyc for pyc in missing if not pyc.exists()]
        if len(still) < len(missing):
            last_progress = time.monotonic()
        missing = still
