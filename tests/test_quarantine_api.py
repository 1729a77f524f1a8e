"""POST /hl7v2 and the /admin API over real HTTP (FastAPI TestClient), authenticated like every call."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.test_ingest_durability import adt

ER7 = "x-application/hl7-v2+er7"


def bearer(engine: Engine, scopes: str = "system/*.cruds", kind: str = "system") -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("his-gateway", scopes, kind=kind)}


def post(http: TestClient, body: bytes, headers: dict[str, str], media: str = ER7) -> object:
    return http.post("/hl7v2", content=body, headers=headers | {"Content-Type": media})


def test_post_hl7v2_returns_the_ack(http: TestClient, engine: Engine) -> None:
    r = post(http, adt("H1", facility="UNKNOWN"), bearer(engine, "system/MessageHeader.c"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(ER7) and r.headers["x-hl7-ack-code"] == "AR"
    assert ack_code_of(r.content) == "AR" and b"MSA|AR|H1" in r.content
    r = post(http, adt("H2"), bearer(engine), media="text/plain")
    assert r.status_code == 200 and ack_code_of(r.content) in ("AA", "AE")
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "H2"))
    assert doc is not None and doc["channel"] == "http" and "client=his-gateway" in doc["peer"]


def test_post_hl7v2_is_authenticated_and_authorised(http: TestClient, engine: Engine) -> None:
    r = post(http, adt("A1"), {})
    assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome"
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = post(http, adt("A2"), bearer(engine, "system/Patient.r"))
    assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden"
    assert engine.ingestor.messages.count() == 0  # nothing stored for refused callers


def test_post_hl7v2_transport_errors(http: TestClient, engine: Engine) -> None:
    h = bearer(engine)
    r = post(http, adt("T1"), h, media="application/json")
    assert r.status_code == 415 and r.json()["resourceType"] == "OperationOutcome"
    assert post(http, b"  \r\n", h).status_code == 400
    big = adt("T2") + b"NTE|1||" + b"x" * (engine.settings.mllp_max_message_bytes + 1) + b"\r"
    assert post(http, big, h).status_code == 413
    assert engine.ingestor.messages.count() == 0


def test_quarantine_list_show_and_replay(http: TestClient, engine: Engine) -> None:
    h = bearer(engine)
    post(http, adt("Q1", facility="NEWHOSP"), h)
    post(http, b"\x00garbage\xff", h)
    r = http.get("/admin/quarantine", headers=h)
    assert r.status_code == 200
    listing = r.json()
    assert listing["total"] == 2 and {i["ack_code"] for i in listing["items"]} == {"AR"}
    assert all("raw" not in i for i in listing["items"])
    item = next(i for i in listing["items"] if i["control_id"] == "Q1")
    assert "NEWHOSP" in item["reason"]
    assert http.get("/admin/quarantine", params={"facility": "NEWHOSP"}, headers=h).json()["total"] == 1

    shown = http.get(f"/admin/quarantine/{item['id']}", headers=h).json()
    assert shown["text"].startswith("MSH|^~\\&|HIS|NEWHOSP|") and shown["errors"][0]["location"] == "MSH-4.1"

    replayed = http.post(f"/admin/quarantine/{item['id']}/replay", headers=h).json()
    assert replayed["ack_code"] == "AR" and replayed["status"] == "quarantined"
    wrong = http.post(f"/admin/quarantine/{item['id']}/replay", headers=h, content=adt("OTHER", "NEWHOSP"))
    assert wrong.status_code == 400 and "MSH-10" in wrong.json()["issue"][0]["diagnostics"]

    missing = http.get("/admin/quarantine/m-nothere", headers=h)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    assert http.post("/admin/quarantine/m-nothere/replay", headers=h).status_code == 404


def test_admin_needs_a_system_client_with_message_scopes(http: TestClient, engine: Engine) -> None:
    assert http.get("/admin/quarantine").status_code == 401
    readonly = bearer(engine, "system/MessageHeader.r")
    assert http.get("/admin/quarantine", headers=readonly).status_code == 200
    assert http.post("/admin/quarantine/m-x/replay", headers=readonly).status_code == 403
    assert http.get("/admin/metrics", headers=bearer(engine, "system/Observation.rs")).status_code == 403


def test_health_metrics_and_fidelity(http: TestClient, engine: Engine) -> None:
    h = bearer(engine)
    post(http, adt("M1", facility="NEWHOSP"), h)
    health = http.get("/admin/health", headers=h)
    assert health.json()["checks"]["store"] == "ok" and health.json()["checks"]["quarantined"] == 1
    metrics = http.get("/admin/metrics", headers=h).json()
    assert metrics["ingest"]["received"] == 1 and metrics["messages"]["quarantined"] == 1
    prom = http.get("/admin/metrics", params={"format": "prometheus"}, headers=h)
    assert "huren_ingest_received_total 1" in prom.text and 'huren_messages{status="quarantined"} 1' in prom.text
    assert http.get("/admin/fidelity", headers=h).json() == {"institutions": {}}
