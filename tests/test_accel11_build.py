"""The compiled hot path's build (setup.py), run for real on a copy of the project listing one module.

One small module (adapters.convert.tables) keeps it to seconds: with the C compiler, the built
file carries its source's hash and is the one imported; without a working compiler, or without
Cython, the build still succeeds, leaves no compiled file and says so in one line.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import accel

REPO = Path(__file__).resolve().parent.parent
MODULE = "adapters.convert.tables"
SOURCE = Path("adapters/convert/tables.py")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("Cython") is None or shutil.which(os.environ.get("CC", "gcc")) is None,
    reason="the build test needs Cython and a C compiler (the test extra and CI have both)",
)


def project(dest: Path) -> Path:
    """A copy of the project whose module list names MODULE only (no compiled files copied)."""
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    skip = shutil.ignore_patterns("__pycache__", "*" + accel.EXT_SUFFIX)
    for name in ("engine", "adapters", "conformance", "mappings"):
        shutil.copytree(REPO / name, dest / name, ignore=skip)
    (dest / "engine" / "accel_modules.txt").write_text(f"# one module\n{MODULE}\n", encoding="utf-8")
    return dest


def build(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in (accel.PURE_ENV, "CC")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=root, env=environ, capture_output=True, text=True, timeout=600,
    )


def loader_of(root: Path) -> str:
    code = f"import {MODULE} as m; print(type(m.__spec__.loader).__name__, m.__file__)"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_build_names_the_module_by_its_source_hash_and_it_is_imported(tmp_path: Path) -> None:
    root = project(tmp_path)
    run = build(root)
    assert run.returncode == 0, run.stderr[-3000:]
    source = root / SOURCE
    expect = source.with_name(accel.compiled_name(source.stem, accel.source_hash(source.read_bytes())))
    assert [p.name for p in source.parent.glob("*" + accel.EXT_SUFFIX)] == [expect.name]
    assert loader_of(root) == f"ExtensionFileLoader {expect}"
    # an edit, then `make build` again: the old file is removed, the new one is imported
    source.write_text(source.read_text(encoding="utf-8") + "\nEDITED = True\n", encoding="utf-8")
    assert loader_of(root) == f"SourceFileLoader {source}"
    assert build(root).returncode == 0
    again = source.with_name(accel.compiled_name(source.stem, accel.source_hash(source.read_bytes())))
    assert [p.name for p in source.parent.glob("*" + accel.EXT_SUFFIX)] == [again.name]
    assert loader_of(root) == f"ExtensionFileLoader {again}"


def test_without_a_working_compiler_the_build_succeeds_as_pure_python(tmp_path: Path) -> None:
    root = project(tmp_path)
    run = build(root, CC="false")
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"huren compiled hot path: {MODULE} not compiled" in run.stderr
    assert not list((root / SOURCE).parent.glob("*" + accel.EXT_SUFFIX))
    assert loader_of(root) == f"SourceFileLoader {root / SOURCE}"


def test_without_cython_the_build_succeeds_as_pure_python(tmp_path: Path) -> None:
    root = project(tmp_path)
    # a Cython package that cannot be imported stands first on the path, as if none were installed
    (tmp_path / "nocython" / "Cython").mkdir(parents=True)
    (tmp_path / "nocython" / "Cython" / "__init__.py").write_text("raise ImportError('no Cython')\n")
    run = build(root, PYTHONPATH=str(tmp_path / "nocython"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "huren compiled hot path: not built (Cython is not installed)" in run.stderr
    assert not list((root / SOURCE).parent.glob("*" + accel.EXT_SUFFIX))
