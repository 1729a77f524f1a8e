"""privprobe27: ``/admin/fidelity``, ``/admin/health`` and ``/admin/metrics`` keep a remit-bound operator
to the remit, as the quarantine list does (opsfix26).

Real HL7 over ``POST /hl7v2`` from two hospitals (one message of each refused, one unmapped code at
each), real staff sessions (the sign-in's own ``open_session``), real HTTP through FastAPI's app.
Before: an operator bound to 阜宁县人民医院 (FNXRMYY) was shown 阜宁县中医院's unmapped codes with their
counts and example message ids, and the pending, refused and processed messages of every hospital.
"""

from __future__ import annotations

from typing import Any

from engine.messages import PROCESSED, QUARANTINED
from tests.test_resident_record_ui import hl7, msh
from tests.test_rvrvops26_quarantine_access import _post, _refused_message, _session

A, B = "FNXRMYY", "FNZYY"


def _unmapped(inst: str, control: str, code: str) -> bytes:
    """An accepted lab result whose local test code no code map knows: a fidelity item of ``inst``."""
    return hl7(msh("LIS", inst, "202503221000", "ORU^R01^ORU_R01", control),
               f"PID|1||320923199001010016^^^公安部^NNCHN~PP27{control}^^^{inst}^MR||孙^正常||19900101|M",
               f"ORC|RE|{control}-O^HIS|{control}-F^LIS||CM",
               f"OBR|1|{control}-O^HIS|{control}-F^LIS|{code}^未知项目^L|||202503220800||||||||BLD&血液|D9^王^医生"
               "||||||20250322100000|||F",
               f"OBX|1|NM|{code}^未知项目^L||1.5|mmol/L|1-2|N|||F|||20250322090000")


def _feed(engine: Any, http: Any) -> None:
    for inst, n in ((A, "1"), (B, "2"), (B, "3")):
        _post(engine, http, _unmapped(inst, f"PP27U{n}", f"ZZ{inst}{n}"))
        assert _post(engine, http, _refused_message(inst, f"PP27R{n}")) == "AE"


def test_fidelity_health_and_metrics_keep_to_the_remit(engine: Any, http: Any) -> None:
    _feed(engine, http)
    messages = engine.ingestor.messages
    everyone, _ = _session(engine, "operator", name="it.all")
    report = http.get("/admin/fidelity", cookies=everyone).json()["institutions"]
    assert {A, B} <= set(report), report  # guard: both hospitals have unmapped codes
    bound, _ = _session(engine, "operator", remit=A, name="it.bound")
    shown = http.get("/admin/fidelity", cookies=bound)
    assert shown.status_code == 200 and set(shown.json()["institutions"]) == {A}, shown.text[:400]
    assert shown.json()["institutions"][A] == report[A]  # their own, whole
    assert B not in shown.text and "ZZFNZYY" not in shown.text
    named = http.get("/admin/fidelity", params={"institution": B}, cookies=bound)
    assert named.status_code == 200 and named.json() == {"institutions": {}}

    health = http.get("/admin/health", cookies=bound).json()["checks"]
    assert health["quarantined"] == messages.count(QUARANTINED, facilities={A}) == 1
    assert http.get("/admin/health", cookies=everyone).json()["checks"]["quarantined"] == 3

    metrics = http.get("/admin/metrics", cookies=bound).json()
    assert metrics["messages"][QUARANTINED] == 1 and metrics["messages"][PROCESSED] == 1, metrics
    assert "ingest" not in metrics and "mllp" not in metrics and metrics["remit"] == [A]
    prom = http.get("/admin/metrics", params={"format": "prometheus"}, cookies=bound)
    assert prom.status_code == 200 and 'huren_messages{status="quarantined"} 1' in prom.text
    assert "huren_ingest_received_total" not in prom.text
    # an operator bound to nothing, and a system client, see every hospital's figures as before
    full = http.get("/admin/metrics", cookies=everyone).json()
    assert full["messages"][QUARANTINED] == 3 and full["ingest"]["received"] >= 6 and "remit" not in full
    system = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.r")}
    assert http.get("/admin/metrics", headers=system).json()["messages"][QUARANTINED] == 3
    assert set(http.get("/admin/fidelity", headers=system).json()["institutions"]) >= {A, B}
