"""``bench/audc34_mypyc.py``: the compiled-path experiment's patch applies to this tree and leaves the
engine's audited reads working when interpreted (it changes only what mypyc needs: decorators that do
nothing, annotations, a base bound at run time), and its count reads a callgrind summary.
mypyc itself is not a dependency, so the build is not run here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import audc34_mypyc  # noqa: E402


def test_patched_tree_serves_audited_reads(tmp_path: Path) -> None:
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    dest = tmp_path / "tree"
    audc34_mypyc.tree(dest)
    subprocess.run(["patch", "-s", "-p1", "-i", str(audc34_mypyc.PATCH)], cwd=dest, check=True)
    for module in audc34_mypyc.MODULES:
        assert (dest / module).is_file()
    parts = (dest / "engine/audit/parts.py").read_text()
    assert "AppendsNeeds = SigningNeeds = object" in parts
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    check = ("import sys; sys.path.insert(0, '.'); import engine.audit.appends as a, engine.audit.signing as s, "
             "engine.audit.log as log; assert a.Appends.__bases__ == (object,) == s.Signing.__bases__; "
             "print(log.AuditLog.__mro__[-1].__name__)")
    out = subprocess.run([sys.executable, "-c", check], cwd=dest, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    reads = subprocess.run([sys.executable, "bench/asgi_reads.py", "audited", "40", "2"], cwd=dest, env=env,
                           capture_output=True, text=True, timeout=300)
    assert reads.returncode == 0, reads.stderr[-2000:]
    assert "audited GET" in reads.stdout and " records in " in reads.stdout, reads.stdout


def test_count_reads_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "cg.out-01"
    out.write_text("version: 1\ncmd: python\nthread: 1\nsummary: 235545226\ntotals: 235545226\n")
    assert audc34_mypyc.count(out, 500) == pytest.approx(471.090452)
    (tmp_path / "empty").write_text("thread: 1\n")
    with pytest.raises(SystemExit):
        audc34_mypyc.count(tmp_path / "empty", 500)
