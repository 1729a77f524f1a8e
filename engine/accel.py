"""The compiled hot path: import a Cython-built module only when it was built from the .py as it is now.

setup.py compiles the modules named in ``engine/accel_modules.txt`` unchanged with Cython and
writes each one beside its source as ``<name>.<sha>.<EXT_SUFFIX>`` (e.g.
``ingest.3f9c…a1.cpython-311-x86_64-linux-gnu.so``), where ``<sha>`` is the start of the SHA-256 of
the .py the extension was compiled from. The dot in that name keeps Python's own import system
from ever loading the file; only this module's finder (first on ``sys.meta_path``, installed by
the ``engine`` package's ``__init__``, which ``adapters`` and ``conformance`` import from theirs) does, and only when the hash of the .py on disk today equals the one in the file name.
So a .py edited after the build — by a developer, a merge, a checkout — always wins over the old
compiled file: the finder then returns the .py's own spec, which also keeps any other stray
extension (a ``<name>.<EXT_SUFFIX>`` left by a hand build) from shadowing the source.

``HUREN_PURE_PYTHON=1`` (any value but "" or "0") forces pure Python for the whole process. A build
without a compiler or Cython leaves no compiled files: everything runs as pure Python, said once in
the log (``huren.accel``). The compiled module keeps ``__file__`` in the package folder (the .so sits
beside the .py), so ``Path(__file__).with_name(...)``/``parents[2]`` data paths are unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

__all__ = [
    "HASH_CHARS",
    "PURE_ENV",
    "CompiledFinder",
    "compiled_name",
    "install",
    "listed_modules",
    "source_hash",
    "status",
]

log = logging.getLogger("huren.accel")

PURE_ENV = "HUREN_PURE_PYTHON"
# 24 hex characters (96 bits) of the source's SHA-256 in the compiled file's name: an accidental
# match of an edited source is out of reach, and the names stay short.
HASH_CHARS = 24
EXT_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
MODULES_FILE = Path(__file__).with_name("accel_modules.txt")


def listed_modules(path: Path = MODULES_FILE) -> list[str]:
    """The dotted names in the module list (comments and blank lines skipped)."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


def source_hash(data: bytes) -> str:
    """The part of a source's SHA-256 that names its compiled file."""
    return hashlib.sha256(data).hexdigest()[:HASH_CHARS]


def compiled_name(stem: str, digest: str) -> str:
    """The compiled file's name for module ``stem`` built from a source hashing to ``digest``."""
    return f"{stem}.{digest}{EXT_SUFFIX}"


def pure_forced(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return env.get(PURE_ENV, "") not in ("", "0")


class CompiledFinder:
    """A meta path finder for the listed modules: the compiled file when current, else the .py."""

    def __init__(self, modules: Sequence[str], pure: bool) -> None:
        self.modules = frozenset(modules)
        self.pure = pure
        self.loaded: dict[str, str] = {}  # module -> compiled file imported
        self.refused: dict[str, str] = {}  # module -> why the .py was imported instead

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.modules or not path:
            return None
        stem = fullname.rpartition(".")[2]
        for entry in path:
            source = os.path.join(entry, stem + ".py")
            try:
                with open(source, "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            if self.pure:
                return importlib.util.spec_from_file_location(fullname, source)
            compiled = os.path.join(entry, compiled_name(stem, source_hash(data)))
            if os.path.isfile(compiled):
                loader = importlib.machinery.ExtensionFileLoader(fullname, compiled)
                self.loaded[fullname] = compiled
                return importlib.util.spec_from_file_location(fullname, compiled, loader=loader)
            self._refuse(fullname, entry, stem)
            return importlib.util.spec_from_file_location(fullname, source)
        return None

    def _refuse(self, fullname: str, entry: str, stem: str) -> None:
        """Note (and log, when an older build is there) that ``fullname`` runs as pure Python."""
        try:
            stale = [n for n in os.listdir(entry) if n.startswith(stem + ".") and n.endswith(EXT_SUFFIX)]
        except OSError:
            stale = []
        if stale:
            self.refused[fullname] = "source changed since the build"
            log.warning(
                "compiled hot path: %s changed since it was built; importing the .py (run `make build`)",
                fullname,
            )
        else:
            self.refused[fullname] = "not built"

    def invalidate_caches(self) -> None:
        """Nothing cached: every import reads and hashes the source afresh."""


def _finder() -> CompiledFinder | None:
    for f in sys.meta_path:
        if isinstance(f, CompiledFinder):
            return f
    return None


def install() -> CompiledFinder:
    """Put the finder first on ``sys.meta_path`` (once per process) and log the mode once."""
    finder = _finder()
    if finder is not None:
        return finder
    modules = listed_modules()
    pure = pure_forced()
    finder = CompiledFinder(modules, pure)
    sys.meta_path.insert(0, finder)
    if pure:
        log.info("compiled hot path: off (%s set); pure Python", PURE_ENV)
    elif not any(_built_files(m) for m in modules):
        log.warning(
            "compiled hot path: not built (no C compiler or Cython at install); running pure Python"
        )
    return finder


def _built_files(module: str) -> list[str]:
    """Compiled files present for ``module`` in the source tree this package was imported from."""
    parts = module.split(".")
    folder = Path(__file__).resolve().parents[1].joinpath(*parts[:-1])
    try:
        return [n for n in os.listdir(folder) if n.startswith(parts[-1] + ".") and n.endswith(EXT_SUFFIX)]
    except OSError:
        return []


def status() -> dict[str, str]:
    """Each listed module that is imported: "compiled" or "python (<why>)"."""
    finder = _finder()
    out: dict[str, str] = {}
    for name in sorted(finder.modules if finder else listed_modules()):
        mod = sys.modules.get(name)
        if mod is None:
            continue
        spec = getattr(mod, "__spec__", None)
        if isinstance(getattr(spec, "loader", None), importlib.machinery.ExtensionFileLoader):
            out[name] = "compiled"
        else:
            out[name] = "python (" + (finder.refused.get(name, "forced") if finder else "no finder") + ")"
    return out

