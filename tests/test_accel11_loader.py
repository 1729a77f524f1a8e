"""The compiled hot path's import guard (engine/accel.py), through real imports in fresh interpreters.

Each test runs Python in a subprocess (a module, once imported, stays imported): on this checkout's
own build, or on a copy of the packages in a temporary folder where a source is then edited, so
that the compiled file there no longer matches it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import accel

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "adapters", "conformance", "mappings")

# prints, per listed module imported, the loader's kind and __file__ (and the log lines on stderr)
PROBE = """
import importlib, json, logging, sys
logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
out = {}
for name in sys.argv[1:]:
    mod = importlib.import_module(name)
    out[name] = [type(mod.__spec__.loader).__name__, mod.__file__]
print(json.dumps(out))
"""


def built() -> bool:
    """Whether this checkout has any compiled module (``make build`` / the editable install)."""
    return any(accel._built_files(m) for m in accel.listed_modules())


def need_build() -> None:
    """Skip where nothing was built (a bare checkout); in CI the build is part of the install."""
    if not built():
        if os.environ.get("CI"):
            pytest.fail("CI installs the compiled hot path (pip install -e '.[test]'): nothing was built")
        pytest.skip("the compiled hot path is not built here (make build)")


def probe(cwd: Path, modules: list[str], **env: str) -> tuple[dict[str, list[str]], str]:
    environ = {k: v for k, v in os.environ.items() if k != accel.PURE_ENV}
    environ.update(env, PYTHONPATH=str(cwd))
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *modules],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout), run.stderr


def copy_tree(dest: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_every_listed_module_is_the_compiled_one_when_built() -> None:
    need_build()
    modules = accel.listed_modules()
    loaded, _ = probe(REPO, modules)
    for name in modules:
        kind, file = loaded[name]
        source = REPO.joinpath(*name.split(".")).with_suffix(".py")
        expect = accel.compiled_name(source.stem, accel.source_hash(source.read_bytes()))
        assert kind == "ExtensionFileLoader", (name, kind, file)
        assert Path(file) == source.with_name(expect)


def test_a_source_edited_after_the_build_is_imported_from_its_py(tmp_path: Path) -> None:
    need_build()
    tree = copy_tree(tmp_path)
    edited = tree / "engine" / "merge_rules.py"
    edited.write_text(edited.read_text(encoding="utf-8") + "\nSTALE_PROBE = 'edited'\n", encoding="utf-8")
    # a hand-built, unhashed extension beside it (the kind Python's own finder prefers to a .py)
    old = next((tree / "engine").glob("merge_rules.*" + accel.EXT_SUFFIX))
    shutil.copy2(old, tree / "engine" / ("merge_rules" + accel.EXT_SUFFIX))
    loaded, log = probe(tree, ["engine.merge_rules", "engine.ingest"])
    assert loaded["engine.merge_rules"] == ["SourceFileLoader", str(edited)]
    assert loaded["engine.ingest"][0] == "ExtensionFileLoader"  # an unchanged one stays compiled
    assert "engine.merge_rules changed since it was built" in log
    # and it is the edited text that runs
    run = subprocess.run(
        [sys.executable, "-c", "import engine.merge_rules as m; print(m.STALE_PROBE)"],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, timeout=60,
    )
    assert run.stdout.strip() == "edited", run.stderr


def test_data_paths_beside_a_compiled_module_still_resolve() -> None:
    need_build()
    code = (
        "import engine.audit.events as e, engine.recognition.rules as r, engine.accel as a;"
        "print(e.__file__); print(r.SHIPPED); print(len(e.actions()));"
        "print(a.status()['engine.audit.events'])"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    file, shipped, actions, state = run.stdout.split("\n")[:4]
    assert Path(file).parent == REPO / "engine" / "audit" and file.endswith(accel.EXT_SUFFIX)
    assert Path(shipped) == REPO / "mappings" / "recognition"
    assert int(actions) > 0  # actions.yaml, read through Path(__file__).with_name
    assert state == "compiled"


def test_pure_python_switch_imports_every_listed_module_from_source() -> None:
    modules = accel.listed_modules()
    loaded, log = probe(REPO, modules, **{accel.PURE_ENV: "1"})
    assert {kind for kind, _ in loaded.values()} == {"SourceFileLoader"}
    assert all(file.endswith(".py") for _, file in loaded.values())
    assert f"compiled hot path: off ({accel.PURE_ENV} set); pure Python" in log


def test_an_unbuilt_tree_runs_pure_python_and_says_so_once(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    for so in tree.rglob("*" + accel.EXT_SUFFIX):
        so.unlink()
    loaded, log = probe(tree, ["engine.ingest", "adapters.convert", "conformance.validate"])
    assert {kind for kind, _ in loaded.values()} == {"SourceFileLoader"}
    assert log.count("compiled hot path: not built") == 1
    assert "changed since it was built" not in log


def test_pure_python_ingest_through_mllp(tmp_path: Path) -> None:
    """The real path in pure-Python mode: this suite's MLLP ingest tests run with the switch set."""
    env = {**os.environ, accel.PURE_ENV: "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-p", "no:warnings", "-p", "no:cacheprovider",
         "tests/test_community_e2e.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert "1 passed" in run.stdout
