"""The versions of one charge line across results and across an upgrade (nineteenth round,
moneylast19, the pre-merge review of moneymend19): HL7 results over a real MLLP socket, charge
lines through ``PUT /fhir/ChargeItem``, the real store.

- A line corrected to name another result (charge-x, number T-1, ¥30 for the repeat; then
  charge-y, T-1, ¥25 for the prior): the repeat kept ¥30 at stake while the settlement counted
  ¥25 and marked charge-x superseded. The latest version of a line is picked across every result.
- Charge rows written by an earlier release carry no line number nor time: a line stored under two
  ids (¥30 each, T-1) by that release, corrected after the upgrade to ¥29 under one of them, was
  ¥59 at stake (a fresh store and the settlement: ¥29). A once-per-store pass fills them in. The
  old store is written by the earlier code itself (ff2954a, taken from this checkout's own history
  by ``git archive``) in a subprocess.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from engine.recognition.upgrade import LAYOUT
from engine.settings import Settings
from tests import test_money19_charge_lines
from tests.test_money19_charge_lines import flagged, put_line
from tests.test_recognition_policy_e2e import not_payable

engine = test_money19_charge_lines.engine  # the fixture: the policy community on each store


def test_a_line_corrected_to_name_another_result_leaves_the_first(engine: Engine, mllp: int) -> None:
    flag = flagged(engine, mllp)
    http = TestClient(create_app(engine))
    put_line(engine, http, "charge-x", flag["patient"], flag["result"], 30.0, ident="T-1")
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (30.0, "charge"), flag
    put_line(engine, http, "charge-y", flag["patient"], flag["prior"], 25.0, ident="T-1")  # now the prior's
    [flag] = not_payable(engine)
    assert flag["price_source"] == "catalogue", flag  # no line bills the repeat now
    put_line(engine, http, "charge-x", flag["patient"], flag["result"], 28.0, ident="T-1")  # back again
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (28.0, "charge"), flag


ROOT = Path(__file__).resolve().parents[1]
BEFORE = "ff2954a"  # a commit of the eighteenth round: charge rows without "ident" and "at"


def _code_before(tmp_path: Path) -> Path:
    """The code of ``BEFORE``, to write a store the way it did."""
    return code_at(BEFORE, tmp_path)


def code_at(commit: str, tmp_path: Path | None = None) -> Path:
    """The code of ``commit``, from this checkout's own history (``git archive``), to write a store
    the way that code did. A checkout without that history (a shallow clone) cannot run the test.

    Extracted once per test process and commit (twenty-eighth round, suitecut28), in a folder of the
    process's own removed at its exit: the old code's bytecode is then compiled once too (each run
    from a fresh tree compiled ~250 modules again, ~0.7 s). Callers only read the tree and run it
    (``cwd``, ``PYTHONPATH``); ``tmp_path`` is no longer used."""
    base = _old_code_dir() / "code" / commit
    if not base.exists():
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=False)
        if archive.returncode != 0:
            pytest.skip(f"commit {commit} is not in this checkout's history (a shallow clone?)")
        part = base.with_name(base.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(part, filter="data")
        part.rename(base)
    return base


_OLD_CODE_DIR: list[Path] = []
_OLD_RUNS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]],
                subprocess.CompletedProcess[str]] = {}


def _old_code_dir() -> Path:
    """This process's folder for old trees and the stores old code wrote (removed at the end of the
    session, ``forget_old_code``, or at the process's exit)."""
    if not _OLD_CODE_DIR:
        made = Path(tempfile.mkdtemp(prefix="huren-old-code-"))
        atexit.register(shutil.rmtree, made, True)
        _OLD_CODE_DIR.append(made)
    return _OLD_CODE_DIR[0]


def forget_old_code() -> None:
    """Remove this process's old trees and stores (tests/conftest.py, at the end of the session)."""
    while _OLD_CODE_DIR:
        shutil.rmtree(_OLD_CODE_DIR.pop(), ignore_errors=True)
    _OLD_RUNS.clear()


def run_old_code(commit: str, script: str, tmp_path: Path, dirs: Sequence[str], *, made: Sequence[str] = (),
                 args: Sequence[str] = (), timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (Python source) by the code of ``commit`` (``code_at``), its argv the folders
    ``dirs`` (``made`` of them created empty first) then ``args``; the folders it wrote are then in
    ``tmp_path`` under those names, and its finished process is returned (stdout, stderr, code).

    The old code runs once per test process for one (commit, script, folders, args): it writes the
    folders in a template, and each later call gets a fresh copy of them and the same result. Every
    test of a module opening "a store written before" thus opens its own copy of one store the old
    code wrote, not ~4 s of old code each (twenty-eighth round, suitecut28: old-code runs were
    ~56 s of the suite's CPU). The script must not depend on where its folders are (none did)."""
    key = (commit, script, tuple(dirs), tuple(made), tuple(args))
    template = _old_code_dir() / "runs" / hashlib.sha256(repr(key).encode()).hexdigest()[:16]
    if key not in _OLD_RUNS:
        base = code_at(commit)
        shutil.rmtree(template, ignore_errors=True)
        template.mkdir(parents=True)
        for name in made:
            (template / name).mkdir()
        _OLD_RUNS[key] = subprocess.run(
            [sys.executable, "-c", script, *(str(template / name) for name in dirs), *args], cwd=base,
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(base)}, timeout=timeout,
            check=False)
    for name in dirs:
        if (template / name).exists():
            shutil.copytree(template / name, tmp_path / name, symlinks=True)
    return _OLD_RUNS[key]

# Run by the earlier code (PYTHONPATH=BASE): Alice's LFT at A, the same LFT at B without a reason
# (flagged), its line stored twice, ¥30 each under one number T-1 (a feed that resent it).
OLD_STORE = r"""
import json, sys
from pathlib import Path
from engine.engine import Engine
from engine.settings import Settings
from tests.test_recognition_world import ALICE, A, B, World, lft

with Engine(Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0)) as engine:
    w = World(engine)
    pa, pb = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-alice")
    w.report(A, pa, lft(A), "2026-03-01T09:00:00+08:00")
    o = w.order(B, pb, lft(B), "2026-03-05T08:00:00+08:00")
    r = w.report(B, pb, lft(B), "2026-03-05T09:00:00+08:00", order=o)
    ref = f"DiagnosticReport/{r.resource['id']}"
    for cid in ("charge-x", "charge-y"):
        engine.repository.update({
            "resourceType": "ChargeItem", "id": cid, "status": "billable",
            "identifier": [{"system": "urn:hospb:ft1", "value": "T-1"}],
            "code": {"coding": [{"system": "urn:huren:price-code", "code": "250305001"}]},
            "subject": {"reference": pb}, "quantity": {"value": 1},
            "priceOverride": {"value": 30.0, "currency": "CNY"}, "service": [{"reference": ref}]})
    rows = list(engine.recognition.charges.find({}))
    print(json.dumps({"result": ref, "patient": pb, "rows": rows}))
"""


def test_an_upgraded_stores_lines_are_numbered_once(tmp_path: Path) -> None:
    data = tmp_path / "var"
    base = _code_before(tmp_path)
    done = subprocess.run([sys.executable, "-c", OLD_STORE, str(data)], cwd=base, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(base)}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    old = json.loads(done.stdout.strip().splitlines()[-1])
    assert all("ident" not in row and "at" not in row for row in old["rows"]) and len(old["rows"]) == 2, old
    with Engine(Settings(data_dir=data, http_port=0, mllp_port=0)) as eng:
        [flag] = not_payable(eng)
        assert (stored_fen(flag["price"]), flag["price_source"]) == (30.0, "charge"), flag  # one line, stored twice
        http = TestClient(create_app(eng))
        put_line(eng, http, "charge-x", old["patient"], old["result"], 29.0, ident="T-1")  # the feed corrects it
        [flag] = not_payable(eng)
        assert (stored_fen(flag["price"]), flag["price_source"]) == (29.0, "charge"), flag
        rows = {row["_id"]: row for row in eng.recognition.charges.find({})}
        # one line number for both rows: the system, the institution, the patient and T-1
        # (charges.line_identity; the patient and the institution since the lead's mend)
        [ident] = {row.get("ident") for row in rows.values()}
        assert ident.startswith("urn:hospb:ft1|") and ident.endswith(f"|{old['patient']}|T-1"), rows
        assert all(row.get("at") for row in rows.values()), rows
        assert eng.store.collection(LAYOUT).get("charge-rows-numbered") is not None


@pytest.mark.parametrize("store", [{}, {"mongodb_uri": "mongomock://"}], ids=["sqlite", "mongomock"])
def test_the_numbering_pass_runs_once(tmp_path: Path, store: dict[str, str]) -> None:
    """Run again, the pass finds the marker and writes nothing (None)."""
    from engine.recognition.billed_lines import number_lines_once

    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, **store)) as eng:
        assert number_lines_once(eng.recognition) is None
