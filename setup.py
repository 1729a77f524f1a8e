"""Build of the compiled hot path: the modules in engine/accel_modules.txt, compiled unchanged with Cython.

Everything else about the package is in pyproject.toml; this file only adds the C extensions, so
``pip install -e '.[test]'`` (``make``, CI) and ``pip install .`` both build them. Each extension is
written beside its source as ``<name>.<sha>.<EXT_SUFFIX>``, ``<sha>`` naming the .py it was compiled
from (engine/accel.py loads it only while the .py still hashes to that). Without Cython or a
working C compiler the install still succeeds, as pure Python, and says so in one line.

``make build`` rebuilds in place what changed (``python setup.py build_ext --inplace``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def _accel() -> ModuleType:
    """engine/accel.py loaded on its own (not the package): the one definition of names and hashes."""
    spec = importlib.util.spec_from_file_location("_huren_accel_build", ROOT / "engine" / "accel.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


accel = _accel()


def _say(text: str) -> None:
    print(f"huren compiled hot path: {text}", file=sys.stderr, flush=True)


def _source(module: str) -> Path:
    return Path(*module.split(".")).with_suffix(".py")


def _digest(module: str) -> str:
    return accel.source_hash((ROOT / _source(module)).read_bytes())


class AccelBuildExt(build_ext):
    """Cythonize at build time (not at every setup.py call), name outputs by source hash, never fail."""

    def finalize_options(self) -> None:
        # cythonize first: setuptools' own finalize_options prepares the (then C) extensions
        self._failed: list[str] = []
        self.extensions = self._cythonized(self.distribution.ext_modules or [])
        self.distribution.ext_modules = self.extensions
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1
        # the hash of each source as it is when this build starts; checked again after the build
        self._digests = {ext.name: _digest(ext.name) for ext in self.extensions}

    @staticmethod
    def _cythonized(extensions: list[Extension]) -> list[Extension]:
        """The extensions as C sources, or none (pure Python) without Cython or when it fails."""
        if not extensions:
            return []
        if os.environ.get(accel.PURE_ENV, "") not in ("", "0"):
            _say(f"not built ({accel.PURE_ENV} set): pure Python")
            return []
        try:
            from Cython.Build import cythonize
        except ImportError:
            _say("not built (Cython is not installed): huren runs as pure Python")
            return []
        try:
            built = cythonize(
                extensions,
                build_dir=str(Path("build") / "cython"),
                nthreads=os.cpu_count() or 1,
                quiet=True,
                compiler_directives={
                    "language_level": 3,
                    # the sources are plain typed Python: their annotations are not C types
                    # (annotation_typing=True fails at import on a Protocol's `source: str = ...`)
                    "annotation_typing": False,
                },
            )
        except Exception as exc:  # a Cython that cannot compile a module: pure Python, said once
            _say(f"not built (Cython failed: {exc}): huren runs as pure Python")
            return []
        for ext in built:
            ext.optional = True  # one that fails to compile is left out (pure Python), not copied
        return built

    def run(self) -> None:
        super().run()
        if self._failed:
            _say(f"{len(self._failed)} module(s) not compiled, pure Python: {', '.join(self._failed)}")

    def get_ext_filename(self, fullname: str) -> str:
        """``<name>.<sha>.<EXT_SUFFIX>`` for a listed module (setuptools asks with the dotted name)."""
        return self._hashed(fullname, super().get_ext_filename(fullname))

    def get_ext_fullpath(self, ext_name: str) -> str:
        # distutils asks get_ext_filename with the last name part only: hash the full path here
        return self._hashed(self.get_ext_fullname(ext_name), super().get_ext_fullpath(ext_name))

    def _hashed(self, fullname: str, name: str) -> str:
        digest = getattr(self, "_digests", {}).get(fullname)
        tail = f".{digest}{accel.EXT_SUFFIX}"
        if digest is None or name.endswith(tail) or not name.endswith(accel.EXT_SUFFIX):
            return name
        return name[: -len(accel.EXT_SUFFIX)] + tail

    def build_extension(self, ext: Extension) -> None:
        output = Path(self.get_ext_fullpath(ext.name))
        built = ROOT / _source(ext.name).parent / output.name
        if not self.force and built.is_file() and built != output.resolve():
            # already compiled from this very source (its hash is in the name), by an earlier
            # `make build` or editable install: reuse it rather than compile again
            output.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(built, output)
            return
        try:
            super().build_extension(ext)
        except Exception as exc:  # no compiler, a compile error: this module stays pure Python
            self._failed.append(ext.name)
            _say(f"{ext.name} not compiled ({type(exc).__name__}: {exc})")
            return
        if _digest(ext.name) != self._digests[ext.name]:
            # edited while it was being compiled: the file would carry a hash it was not built from
            output.unlink(missing_ok=True)
            self._failed.append(ext.name)
            return
        self._prune(output)

    def copy_extensions_to_source(self) -> None:
        super().copy_extensions_to_source()
        for ext in self.extensions:
            target = ROOT / _source(ext.name).parent / Path(self.get_ext_filename(ext.name)).name
            if target.exists():
                self._prune(target)

    @staticmethod
    def _prune(current: Path) -> None:
        """Remove this module's compiled files from older builds (other hashes) beside ``current``."""
        stem = current.name.split(".", 1)[0]
        for old in current.parent.glob(f"{stem}.*{accel.EXT_SUFFIX}"):
            if old != current and old.name.count(".") == current.name.count("."):
                old.unlink(missing_ok=True)


def _extensions() -> list[Extension]:
    return [
        Extension(
            module,
            [str(_source(module))],
            # -O2 rather than the interpreter's -O3; -g0: no debug info (half the compile time)
            extra_compile_args=["-O2", "-g0"],
        )
        for module in accel.listed_modules(ROOT / "engine" / "accel_modules.txt")
    ]


setup(ext_modules=_extensions(), cmdclass={"build_ext": AccelBuildExt})
