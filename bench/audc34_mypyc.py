"""Issue 15's compiled-path experiment (thirty-fourth round, audc34): the audit's hot modules
compiled by mypyc from their own Python source, counted under callgrind against the same tree
interpreted. A measurement only: nothing here changes the project's build.

    MYPYC=/dev/shm/venv/bin/mypyc python bench/audc34_mypyc.py build /dev/shm/x/comp
    python bench/audc34_mypyc.py tree /dev/shm/x/base          # the same commit, interpreted
    # then in each tree (bench/asgi_reads.py's method: the loop thread, 500 reads, 1 caller):
    CALLGRIND=1 KEEP_SECONDS=0.5 valgrind --tool=callgrind --separate-threads=yes --collect-atstart=no \\
        --toggle-collect=sys_call_tracing --callgrind-out-file=/dev/shm/x/comp-aud.out \\
        .venv/bin/python bench/asgi_reads.py audited 500 1
    python bench/audc34_mypyc.py count /dev/shm/x/comp-aud.out-01 500

``tree`` writes ``git archive HEAD`` into the folder and byte-compiles it (this machine sets
``PYTHONDONTWRITEBYTECODE=1``: an uncompiled tree counts its lazy imports' compilation as reads).
``build`` does the same, applies ``bench/audc34_mypyc.patch`` (what mypyc needs of the source, and
nothing the interpreted tree runs differently but one ``isinstance`` for ``type(start) is int``): a
no-op decorator that keeps the log's mixins, ``Segment`` (weakly referenced) and the exception and
tuple subclasses interpreted classes; the mixins' ``TYPE_CHECKING`` bases made an import that
``parts.py`` rebinds to ``object`` at run time (mypyc compiles an ``else`` under ``TYPE_CHECKING`` as
unreachable code); annotations mypy refused, and ``group_commit``'s queue typed ``Any`` rather
than ``dict`` (mypyc checks a declared type at run time: a ``Sealed`` in it raised), then runs mypyc
(``MYPYC``: mypy is not one of the project's dependencies; a throwaway venv's) on ``MODULES``.
``loading.py`` is left out: mypyc 2.4 stops on it with an internal error. ``pyproject.toml`` is set
aside during the build (the throwaway venv's older setuptools refuses its ``license`` string).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATCH = ROOT / "bench" / "audc34_mypyc.patch"
MODULES = ["engine/audit/record.py", "engine/audit/merkle.py", "engine/audit/appends.py",
           "engine/audit/middleware.py", "engine/audit/segment.py", "engine/audit/group_commit.py",
           "engine/audit/events.py", "engine/audit/signing.py"]


def tree(dest: Path) -> None:
    """``git archive HEAD`` into ``dest``, byte-compiled."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "engine", "bench", "adapters", "conformance"],
                   cwd=dest, check=True, stdout=subprocess.DEVNULL)


def build(dest: Path) -> None:
    """``tree``, the patch, then mypyc over ``MODULES`` in place (their ``.so`` beside the sources)."""
    tree(dest)
    subprocess.run(["patch", "-s", "-p1", "-i", str(PATCH)], cwd=dest, check=True)
    mypyc = os.environ["MYPYC"]
    (dest / "pyproject.toml").rename(dest / "pyproject.toml.off")
    try:
        subprocess.run([mypyc, "--python-executable", sys.executable, "--follow-imports=silent", *MODULES],
                       cwd=dest, check=True)
    finally:
        (dest / "pyproject.toml.off").rename(dest / "pyproject.toml")
    subprocess.run([sys.executable, "-m", "compileall", "-q", "engine"], cwd=dest, check=True,
                   stdout=subprocess.DEVNULL)


def count(out: Path, reads: int) -> float:
    """k instructions a read in a callgrind file (its ``summary:`` line over ``reads``)."""
    for line in out.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1]) / reads / 1000
    raise SystemExit(f"{out}: no summary line")


def main() -> None:
    what = sys.argv[1]
    if what == "tree":
        tree(Path(sys.argv[2]))
    elif what == "build":
        build(Path(sys.argv[2]))
    elif what == "count":
        print(f"{count(Path(sys.argv[2]), int(sys.argv[3])):.1f} k instructions a read")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
