"""A bound system's Task search when N Tasks (follow-up reminders) cite an R result, and K referrals it receives.

rvparty29's script (the review of party29, finding 5), kept by partyfix29: ``python bench/party_tasks.py N [K]``.
The party rule (``ScopedRepository._party_labelled``) judged every labelled Task of the store for each Task search
of a bound system; it now searches only the labelled records of the referrals the caller's institution is a party
of (``Referrals.narrowing``: the referral rows). Prints the median of 15 over HTTP (TestClient) in ms.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

import engine as huren
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings

FEEDS = Path(__file__).resolve().parents[1] / "examples" / "feeds"
SEC = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def inst(code: str) -> dict:
    return {"identifier": {"system": "urn:huren:institution", "value": code}}


def main(n: int, k: int) -> None:
    print("engine at", huren.__file__)
    root = Path(tempfile.mkdtemp(dir="/dev/shm"))
    eng = Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(eng)) as http:
        feed = {"Authorization": "Bearer " + eng.auth.issue_system_token("lis-gw", "system/MessageHeader.c"),
                "Content-Type": "x-application/hl7-v2+er7"}
        his = {"Authorization": "Bearer " + eng.auth.issue_system_token("his-fnxrmyy", "system/*.cruds")}
        for name in ("01_FNXRMYY_ADT_A01_admission.hl7", "02_FNXRMYY_ORU_R01_blood_count.hl7"):
            assert http.post("/hl7v2", content=(FEEDS / name).read_bytes(), headers=feed).status_code == 200
        rep = http.get("/fhir/DiagnosticReport", headers=his).json()["entry"][0]["resource"]
        secret = rep["result"][3]["reference"]
        obs = http.get(f"/fhir/{secret}", headers=his).json()
        obs["meta"] = {"security": [{"system": SEC, "code": "R"}]}
        assert http.put(f"/fhir/{secret}", json=obs, headers=his).status_code == 200
        tok, _ = eng.auth.issue_token(subject="his-fnzyy", kind="system", client_id="his-fnzyy",
                                      scopes=["system/*.rs"], extra={"institution": "FNZYY"})
        bound = {"Authorization": f"Bearer {tok}"}

        def timed(query: str, times: int = 15) -> float:
            took = []
            for _ in range(times):
                start = time.perf_counter()
                r = http.get(query, headers=bound)
                took.append((time.perf_counter() - start) * 1000)
                assert r.status_code == 200, r.text[:200]
            return round(statistics.median(took), 2)

        for i in range(n):
            task = {"resourceType": "Task", "id": f"fu-{i}", "status": "requested", "intent": "order",
                    "for": rep["subject"], "focus": {"reference": secret}, "description": "复查提醒"}
            assert http.put(f"/fhir/Task/fu-{i}", json=task, headers=his).status_code in (200, 201)
        for i in range(k):  # referrals FNZYY receives, each with its Task, citing the R result
            sr = {"resourceType": "ServiceRequest", "id": f"ref-{i}", "status": "active", "intent": "order",
                  "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}],
                  "code": {"text": "转诊"}, "subject": rep["subject"], "requester": inst("FNXRMYY"),
                  "performer": [inst("FNZYY")], "supportingInfo": [{"reference": secret}]}
            r = http.put(f"/fhir/ServiceRequest/ref-{i}", json=sr, headers=his)
            assert r.status_code in (200, 201), r.text[:300]
            task = {"resourceType": "Task", "id": f"rt-{i}", "status": "requested", "intent": "order",
                    "for": rep["subject"], "focus": {"reference": f"ServiceRequest/ref-{i}"},
                    "owner": inst("FNZYY"), "reasonReference": {"reference": secret}}
            assert http.put(f"/fhir/Task/rt-{i}", json=task, headers=his).status_code in (200, 201)
        print(k, "referrals;", n, "labelled Tasks: bound Task?status=requested&_count=10",
              timed("/fhir/Task?status=requested&_count=10"), "ms; Task?_id=none", timed("/fhir/Task?_id=none"), "ms")
    eng.close()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0)
