"""Mends of the pre-merge review of payfix18 (eighteenth round, paymend18).

1. The once-per-store drop of the charge rows an earlier release kept for planned lines prices
   again, and only prices, the flags those rows priced: a past month's decision stands. The store
   is built by the earlier code itself (main 921909f, taken from this checkout's own history by ``git archive``) in a subprocess, then opened by
   this code and asked over real HTTP (SQLite).
2. A doctor is keyed as the order gives them: an order stored before its Practitioner and one
   after count for one doctor (the reference), not two rows of the rate.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_pay18_cds_choices import report, result, sign, ward
from tests.test_reports_duplicates import bearer

__all__ = ["ward"]

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "921909f"  # the commit before the eighteenth round: the code that wrote the old rows


def _code_before(tmp_path: Path) -> Path:
    """The code of ``BEFORE``, from this checkout's own history (``git archive``), to write a store
    the way it did. A checkout without that history (a shallow clone) cannot run this test."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE], capture_output=True, check=False)
    if archive.returncode != 0:
        pytest.skip(f"commit {BEFORE} is not in this checkout's history (a shallow clone?)")
    base = tmp_path / "before"
    base.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(base, filter="data")
    return base


# Run by the earlier code (PYTHONPATH=BASE): Alice and Bob each have an LFT at A, then an identical
# LFT ordered at B with R06 whose only text is the code's name ("其他必要复查": justified R06 by
# those rules); Alice's repeat also has a planned CNY 24 ChargeItem, which that code kept as the
# flag's money. Prints what its /reports/duplicates said.
OLD_STORE = r"""
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_recognition_world import ALICE, BOB, A, B, World, lft
from tests.test_reports_duplicates import bearer

with Engine(Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0)) as engine:
    w = World(engine)
    results = {}
    for who, person in (("alice", ALICE), ("bob", BOB)):
        pa, pb = w.patient(A, person), w.patient(B, person, mrn=f"B-{who}")
        w.report(A, pa, lft(A), "2026-03-01T09:00:00+08:00")
        o = w.order(B, pb, lft(B), "2026-03-05T08:00:00+08:00", reasons=("R06",), reason_text="其他必要复查")
        r = w.report(B, pb, lft(B), "2026-03-05T09:00:00+08:00", order=o)
        results[who] = (f"DiagnosticReport/{r.resource['id']}", pb)
    ref, patient = results["alice"]
    engine.repository.update({
        "resourceType": "ChargeItem", "id": "planned-24", "status": "planned",
        "code": {"coding": [{"system": "urn:huren:price-code", "code": "250305001"}]},
        "subject": {"reference": patient}, "quantity": {"value": 1},
        "priceOverride": {"value": 24.0, "currency": "CNY"}, "service": [{"reference": ref}]})
    rows = TestClient(create_app(engine)).get("/reports/duplicates", headers=bearer(engine)).json()["rows"]
    print(json.dumps({"alice": ref, "rows": rows}))
"""


def answers(rows: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {r["result"]: (r["status"], r["reason"], r["effect"], r["price"], r["price_source"]) for r in rows}


def test_the_old_rows_drop_changes_only_the_money_of_the_flags_they_priced(tmp_path: Path) -> None:
    data, base = tmp_path / "var", _code_before(tmp_path)
    done = subprocess.run([sys.executable, "-c", OLD_STORE, str(data)], cwd=base, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(base)}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    old = json.loads(done.stdout.strip().splitlines()[-1])
    before = answers(old["rows"])
    alice = old["alice"]
    [bob] = set(before) - {alice}
    # what the earlier code decided: both justified R06, Alice's money its planned line
    assert before[alice][:2] == before[bob][:2] == ("justified", "R06")
    assert (before[alice][3:], before[bob][3:]) == ((24.0, "charge"), (60.0, "catalogue"))
    with Engine(Settings(data_dir=data, http_port=0, mllp_port=0)) as engine:
        http = TestClient(create_app(engine))
        rows = http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"]
        after = answers(rows)
        # the money is the catalogue's now; each decision stands as it was (was: Alice flagged, CNY 60)
        assert after[alice] == (*before[alice][:3], 60.0, "catalogue"), after
        assert after[bob] == before[bob]
        flag_id = next(r["id"] for r in rows if r["result"] == alice)
        body = engine.repository.read("DetectedIssue", flag_id)
    [evidence] = [e for e in body["extension"] if e["url"].endswith("recognition-evidence")]
    assert [e["valueMoney"]["value"] for e in evidence["extension"] if e["url"] == "price"] == [60.0]
    assert "CNY 60.00 not refused" in body["detail"] and "24.00" not in body["detail"], body["detail"]


@pytest.mark.usefixtures("ward")
def test_a_doctor_by_reference_is_one_row_whenever_the_practitioner_is_stored(engine: Any,
                                                                             ward: dict[str, Any]) -> None:
    """Two orders of one doctor, both naming them by reference alone: the first signed before the
    Practitioner was stored, the second after (payfix18 keyed it "李明": two rows for one doctor)."""
    http, p = ward["http"], ward["alice_b"]
    doctor = {"reference": "Practitioner/dr-li"}
    sign(engine, http, p, "d21", requester=doctor)
    result(engine, http, p, "d21", ward["world"])
    engine.repository.update({"resourceType": "Practitioner", "id": "dr-li", "name": [{"family": "李", "given": ["明"]}]})
    sign(engine, http, p, "d22", requester=doctor, authoredOn="2026-03-12T10:30:00+08:00")
    by = report(engine, http)["recognition_rate_by"]["doctor"]
    assert set(by) == {"Practitioner/dr-li"}, by
    assert by["Practitioner/dr-li"]["recognisable"] == 2


def test_the_drop_keeps_the_decision_on_either_backend(backend_settings: Settings) -> None:
    """The same pass on SQLite and mongomock (a mongomock store cannot outlive a process, so the
    earlier code's rows are planted as that code wrote them: the charge row of the planned line
    and the flag it decided, justified R06 at CNY 24), then the pass run as a store's opening runs it."""
    from engine.recognition.billed_lines import UNBILLED_DROPPED, drop_unbilled_once
    from engine.recognition.state import CHARGES, FLAGS
    from engine.recognition.upgrade import LAYOUT
    from tests.test_recognition_world import ALICE, A, B, World, lft

    with Engine(backend_settings) as engine:
        w = World(engine)
        pa, pb = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
        w.report(A, pa, lft(A), "2026-03-01T09:00:00+08:00")
        o = w.order(B, pb, lft(B), "2026-03-05T08:00:00+08:00", reasons=("R06",), reason_text="其他必要复查")
        ref = f"DiagnosticReport/{w.report(B, pb, lft(B), '2026-03-05T09:00:00+08:00', order=o).resource['id']}"
        engine.repository.update({
            "resourceType": "ChargeItem", "id": "planned-24", "status": "planned", "subject": {"reference": pb},
            "code": {"coding": [{"system": "urn:huren:price-code", "code": "250305001"}]}, "quantity": {"value": 1},
            "priceOverride": {"value": 24.0, "currency": "CNY"}, "service": [{"reference": ref}]})
        rec, flags = engine.recognition, engine.store.collection(FLAGS)
        [flag] = [f for f in flags.find({}) if f["result"] == ref]
        old = {**flag, "status": "justified", "reason": "R06", "effect": "payable", "price": 24.0, "price_source": "charge"}
        with engine.store.transaction():
            engine.store.collection(CHARGES).replace({"_id": "ChargeItem/planned-24", "service": ref,
                                                      "services": [ref], "amount": 24.0})
            rec._in_group(lambda: rec._put_flag(flag, old))
            engine.store.collection(LAYOUT).delete(UNBILLED_DROPPED)
        assert drop_unbilled_once(rec) == 1
        after = flags.get(flag["_id"])
        assert after == {**old, "price": "60.00", "price_source": "catalogue"}  # as decimal text (moneyleft27)
        assert engine.store.collection(CHARGES).get("ChargeItem/planned-24") is None
        assert drop_unbilled_once(rec) is None
