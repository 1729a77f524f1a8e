"""rvparty29/partyfix29: a bound system's Task search when N Tasks (follow-up reminders) cite an R result (python bench/party_tasks.py N)."""
import sys, time, tempfile, statistics
from pathlib import Path
from fastapi.testclient import TestClient
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
import engine as E
print("engine at", E.__file__)
N = int(sys.argv[1])
K = int(sys.argv[2]) if len(sys.argv) > 2 else 0  # referrals FNZYY receives, each with its Task, citing the R result
FEEDS = Path(__file__).resolve().parents[1] / "examples" / "feeds"
SEC = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
root = Path(tempfile.mkdtemp(dir="/dev/shm"))
eng = Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0))
with TestClient(create_app(eng)) as http:
    feed = {"Authorization": "Bearer " + eng.auth.issue_system_token("lis-gw", "system/MessageHeader.c"),
            "Content-Type": "x-application/hl7-v2+er7"}
    his = {"Authorization": "Bearer " + eng.auth.issue_system_token("his-fnxrmyy", "system/*.cruds")}
    for n in ("01_FNXRMYY_ADT_A01_admission.hl7", "02_FNXRMYY_ORU_R01_blood_count.hl7"):
        assert http.post("/hl7v2", content=(FEEDS / n).read_bytes(), headers=feed).status_code == 200
    rep = http.get("/fhir/DiagnosticReport", headers=his).json()["entry"][0]["resource"]
    secret = rep["result"][3]["reference"]
    obs = http.get(f"/fhir/{secret}", headers=his).json(); obs.pop("meta")
    obs["meta"] = {"security": [{"system": SEC, "code": "R"}]}
    assert http.put(f"/fhir/{secret}", json=obs, headers=his).status_code == 200
    tok, _ = eng.auth.issue_token(subject="his-fnzyy", kind="system", client_id="his-fnzyy", scopes=["system/*.rs"],
                                  extra={"institution": "FNZYY"})
    bound = {"Authorization": f"Bearer {tok}"}

    def timed(q, k=15):
        ts = []
        for _ in range(k):
            t = time.perf_counter(); r = http.get(q, headers=bound); ts.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text[:200]
        return round(statistics.median(ts), 2)
    for i in range(N):
        t = {"resourceType": "Task", "id": f"fu-{i}", "status": "requested", "intent": "order", "for": rep["subject"],
             "focus": {"reference": secret}, "description": "复查提醒"}
        assert http.put(f"/fhir/Task/fu-{i}", json=t, headers=his).status_code in (200, 201)
    inst = lambda code: {"identifier": {"system": "urn:huren:institution", "value": code}}  # noqa: E731
    for i in range(K):
        sr = {"resourceType": "ServiceRequest", "id": f"ref-{i}", "status": "active", "intent": "order",
              "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}],
              "code": {"text": "转诊"}, "subject": rep["subject"], "requester": inst("FNXRMYY"), "performer": [inst("FNZYY")],
              "supportingInfo": [{"reference": secret}]}
        r = http.put(f"/fhir/ServiceRequest/ref-{i}", json=sr, headers=his)
        assert r.status_code in (200, 201), r.text[:300]
        t = {"resourceType": "Task", "id": f"rt-{i}", "status": "requested", "intent": "order", "for": rep["subject"],
             "focus": {"reference": f"ServiceRequest/ref-{i}"}, "owner": inst("FNZYY"), "reasonReference": {"reference": secret}}
        assert http.put(f"/fhir/Task/rt-{i}", json=t, headers=his).status_code in (200, 201)
    print(K, "referrals;", N, "labelled Tasks: bound Task?status=requested&_count=10", timed("/fhir/Task?status=requested&_count=10"), "ms;",
          "Task?_id=none", timed("/fhir/Task?_id=none"), "ms")
eng.close()
