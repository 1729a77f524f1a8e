"""The workers' shares of a fresh clone's bytecode (``tests/bytecode_share.py``, suite32): together
they write every file once, each file as the import that collects it would (pytest's rewritten test
code, a timestamped pyc for any other module), and a file already compiled is left alone."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from _pytest.assertion import rewrite

from tests.bytecode_share import compile_share

FILES = 12


def _clone(root: Path) -> tuple[list[Path], list[Path]]:
    """A fresh clone's shape: test files with asserts, a helper module, and a package module; no bytecode."""
    (root / "tests").mkdir()
    (root / "engine").mkdir()
    tests = []
    for i in range(FILES):
        path = root / "tests" / f"test_shared_{i:02d}.py"
        path.write_text(f"def test_{i}():\n    got = {i} + 1\n    assert got == {i + 1}, 'sum'\n", encoding="utf-8")
        tests.append(path)
    modules = [root / "tests" / "helper.py", root / "engine" / "__init__.py", root / "engine" / "part.py"]
    for i, path in enumerate(modules):
        path.write_text(f"VALUE = {i}\n", encoding="utf-8")
    return tests, modules


def _rewritten_pyc(path: Path) -> Path:
    return path.parent / "__pycache__" / (path.name[:-3] + rewrite.PYC_TAIL)


def test_two_workers_write_every_file_once_as_its_import_would(pytestconfig: pytest.Config, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    tests, modules = _clone(tmp_path)
    monkeypatch.setattr("tests.bytecode_share.PACKAGES", ("engine",))
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    written = []
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        written.append(compile_share(pytestconfig, tmp_path, args=[str(tmp_path / "tests")], fewest=FILES,
                                     stalled=0.1))
    assert written == [8, 7]  # 15 files, every second one from the worker's own index: each written once
    for path in tests:
        code = rewrite._read_pyc(path, _rewritten_pyc(path))
        assert code is not None, path  # pytest's import takes it as the file's current rewritten code
        _, expected = rewrite._rewrite_test(path, pytestconfig)
        assert code == expected  # (marshal's reference flags may differ between two dumps of equal code)
        assert code.co_filename == str(path)
        test = next(c for c in code.co_consts if hasattr(c, "co_varnames"))
        assert any(name.startswith("@py_assert") for name in test.co_varnames)  # the assert was rewritten
    for path in modules:
        pyc = Path(importlib.util.cache_from_source(str(path)))
        data = pyc.read_bytes()
        assert data[:4] == importlib.util.MAGIC_NUMBER and data[4:8] == b"\0\0\0\0"  # timestamped, as an import
        stat = path.stat()
        assert int.from_bytes(data[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
        assert int.from_bytes(data[12:16], "little") == stat.st_size
        spec = importlib.util.spec_from_file_location(f"m{abs(hash(path))}", path)
        assert spec is not None and spec.loader is not None
        assert spec.loader.get_code(spec.name) is not None  # type: ignore[attr-defined]


def test_a_compiled_file_is_left_alone_and_a_single_process_run_compiles_nothing_ahead(
        pytestconfig: pytest.Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tests, _ = _clone(tmp_path)
    monkeypatch.setattr("tests.bytecode_share.PACKAGES", ("engine",))
    args = [str(tmp_path / "tests")]
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert compile_share(pytestconfig, tmp_path, args=args, fewest=FILES) == 0  # no workers: imports compile
    assert not (tmp_path / "tests" / "__pycache__").exists()
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    assert compile_share(pytestconfig, tmp_path, args=args[:0] + [str(tests[0])], fewest=FILES) == 0  # a few files
    assert not (tmp_path / "tests" / "__pycache__").exists()
    first = compile_share(pytestconfig, tmp_path, args=args, fewest=FILES, stalled=0.1)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "tests" / "__pycache__").iterdir()}
    assert first == 8 and len(stamps) == 7  # (the package's pycs are in engine/__pycache__)
    assert compile_share(pytestconfig, tmp_path, args=args, fewest=FILES, stalled=0.1) == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "tests" / "__pycache__").iterdir()} == stamps
    assert not any(name.endswith(f".{os.getpid()}") for name in os.listdir(tmp_path / "tests" / "__pycache__"))
