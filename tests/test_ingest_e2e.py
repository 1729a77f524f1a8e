"""Hospitals send HL7 v2 over a real MLLP socket; what they sent is read back through the FHIR API.

The whole engine is real: listener, message store, parser, converters, validation, SQLite
repository, audit, FastAPI with bearer tokens.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.listeners.files import split_messages
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, message_id
from engine.settings import Settings
from tests.conftest import NATIONAL_ID, SAMPLES, declare_training_senders
from tests.test_ingest_durability import err_fields, exchange, listening
from tests.test_mllp import asynctest


def lab_result(control: str, *, national_id: str = NATIONAL_ID, glucose_code: str = "GLU",
               value: str = "5.6") -> bytes:
    return (
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
        f"PID|1||{national_id}^^^^NNCHN~M0001^^^FNXRMYY^MR||张^三||19800101|M\r"
        f"OBR|1|ORD-{control}|LAB-{control}|SGN^肾功能^L|||20261101083000|||||||20261101083500|BLD|D001^李^医生"
        "||||||20261101091000|||F\r"
        f"OBX|1|NM|CREA^肌酐^L||78|umol/L|57-111|N|||F|||20261101090000\r"
        f"OBX|2|NM|{glucose_code}^葡萄糖^L||{value}|mmol/L|3.9-6.1|N|||F|||20261101090000\r"
    ).encode()


@pytest.fixture
def fhir(http: TestClient, engine: Engine) -> TestClient:
    """The app (conftest), signed in as a system client that only reads."""
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")
    return http


def send(engine: Engine, *messages: bytes) -> list[bytes]:
    async def run() -> list[bytes]:
        async with listening(engine) as server:
            return await exchange(server.port, *messages)

    return asyncio.run(run())


def test_lab_result_is_acked_then_readable_through_fhir(engine: Engine, fhir: TestClient) -> None:
    (ack,) = send(engine, lab_result("L1"))
    assert ack_code_of(ack) == "AA"
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "L1"))
    assert doc is not None and doc["status"] == PROCESSED
    reports = [r for r in doc["resources"] if r.startswith("DiagnosticReport/")]
    assert len(reports) == 1
    report = fhir.get(f"/fhir/{reports[0]}").json()
    assert report["resourceType"] == "DiagnosticReport" and report["status"] == "final"
    patient_ref = report["subject"]["reference"]
    bundle = fhir.get("/fhir/Observation", params={"subject": patient_ref}).json()
    values = sorted(e["resource"]["valueQuantity"]["value"] for e in bundle["entry"])
    assert values == [5.6, 78]
    patient = fhir.get(f"/fhir/{patient_ref}").json()
    assert any(i["value"] == NATIONAL_ID for i in patient["identifier"])


def test_resend_changes_nothing_and_conflict_is_kept(engine: Engine, fhir: TestClient) -> None:
    first, resend = send(engine, lab_result("L2"), lab_result("L2"))
    assert ack_code_of(first) == ack_code_of(resend) == "AA"
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "L2"))
    assert doc is not None
    observation = next(r for r in doc["resources"] if r.startswith("Observation/"))
    version = fhir.get(f"/fhir/{observation}").json()["meta"]["versionId"]
    (changed,) = send(engine, lab_result("L2", value="9.9"))
    assert ack_code_of(changed) == "AE" and err_fields(changed)[0][3].startswith("205^")
    history = fhir.get(f"/fhir/{observation}/_history").json()
    assert history["total"] == 1 and fhir.get(f"/fhir/{observation}").json()["meta"]["versionId"] == version
    assert engine.ingestor.messages.count(QUARANTINED) == 1


def test_bad_national_id_is_ae_then_fixed_and_replayed(engine: Engine, fhir: TestClient) -> None:
    bad = lab_result("L3", national_id="110101198001010019")  # wrong check character
    (ack,) = send(engine, bad)
    assert ack_code_of(ack) == "AE"
    err = err_fields(ack)[0]
    assert err[2].startswith("PID^1^3") and err[4] == "E"
    (item,) = engine.ingestor.messages.quarantined()
    assert item["control_id"] == "L3" and "PID-3" in item["reason"]
    # the hospital corrects the record; the operator replays the corrected copy
    admin = {"Authorization": "Bearer " + engine.auth.issue_system_token("operator", "system/MessageHeader.cr")}
    r = fhir.post(f"/admin/quarantine/{item['_id']}/replay", content=lab_result("L3"), headers=admin)
    assert r.status_code == 200 and r.json()["ack_code"] == "AA" and r.json()["status"] == PROCESSED
    report = next(ref for ref in r.json()["resources"] if ref.startswith("DiagnosticReport/"))
    assert fhir.get(f"/fhir/{report}").status_code == 200
    assert engine.ingestor.messages.count(QUARANTINED) == 0


def test_unmapped_local_code_is_accepted_and_counted(engine: Engine, fhir: TestClient) -> None:
    acks = send(engine, lab_result("L4", glucose_code="ZZGLU"), lab_result("L5", glucose_code="ZZGLU"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    admin = {"Authorization": "Bearer " + engine.auth.issue_system_token("operator", "system/MessageHeader.r")}
    report = fhir.get("/admin/fidelity", headers=admin).json()["institutions"]["FNXRMYY"]
    item = next(i for i in report["items"] if i["value"] == "ZZGLU")
    assert item["kind"] == "code" and item["count"] == 2


@asynctest
async def test_every_sample_is_converted_or_refused_with_a_reason(settings: Settings, tmp_path: Path) -> None:
    """The public samples, with their sending facilities registered as institutions of a site."""
    site = tmp_path / "site"
    site.mkdir()
    from adapters.hl7v2.header import extract_header

    files = sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".hl7", ".txt") and p.is_file())
    messages = [m for p in files for m in split_messages(p.read_bytes())]
    codes = sorted({extract_header(m)[0].facility_code for m in messages} - {""})
    institutions = [{"code": c, "name": c, "community": "samples", "timezone": "UTC",
                     "qc": {"passed": "all", "until": "2027-12-31"}} for c in codes]
    (site / "institutions.yaml").write_text(yaml.safe_dump(institutions, allow_unicode=True))
    declare_training_senders(site, messages)  # their T is production here (hl7mode29)
    with Engine(settings.with_(site=site)) as engine:
        async with listening(engine) as server:
            acks = await exchange(server.port, *messages)
    assert len(acks) == len(messages)
    outcomes: dict[str, int] = {}
    for message, ack in zip(messages, acks, strict=True):
        code = ack_code_of(ack)
        outcomes[code] = outcomes.get(code, 0) + 1
        if code != "AA":
            errs = [e for e in err_fields(ack) if (e[4] if len(e) > 4 else "E") in ("E", "")]
            assert errs, message[:80]
            for e in errs:  # v2.5+: ERR-3 code and ERR-8 text; older: ERR-1 location and code
                assert (len(e) > 8 and e[3] and e[8]) or (e[1] and "&HL70357" in e[1]), (message[:80], e)
    assert outcomes.get("AA", 0) >= 1, outcomes  # which samples convert is the converters' business


def test_post_hl7v2_converts_and_audits_the_caller(engine: Engine, fhir: TestClient) -> None:
    poster = {"Authorization": "Bearer " + engine.auth.issue_system_token("lis-gw", "system/MessageHeader.c"),
              "Content-Type": "x-application/hl7-v2+er7"}
    before = engine.audit.size
    r = fhir.post("/hl7v2", content=lab_result("H9"), headers=poster)
    assert r.status_code == 200 and r.headers["x-hl7-ack-code"] == "AA"
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "H9"))
    assert doc is not None and doc["status"] == PROCESSED
    report = next(ref for ref in doc["resources"] if ref.startswith("DiagnosticReport/"))
    assert fhir.get(f"/fhir/{report}").json()["status"] == "final"

    events = [engine.audit.events(seq, 1)[0] for seq in range(before, engine.audit.size)]
    posted = [e for e in events if any(c.get("code") == "hl7v2-receive" for c in e.get("subtype", []))]
    assert len(posted) == 1  # one event for the request, naming the client
    assert any(a.get("who", {}).get("identifier", {}).get("value") == "lis-gw" for a in posted[0]["agent"])


def test_new_institution_registered_then_quarantine_replayed(settings: Settings, tmp_path: Path) -> None:
    """A hospital not yet registered sends: AR. The integrator adds it to the site; the replay succeeds."""
    from tests.conftest import REPO_ROOT

    site = tmp_path / "site"
    site.mkdir()
    shipped = (REPO_ROOT / "mappings" / "institutions.yaml").read_text(encoding="utf-8")
    (site / "institutions.yaml").write_text(shipped, encoding="utf-8")
    with Engine(settings.with_(site=site)) as engine, TestClient(create_app(engine)) as http:
        admin = {"Authorization": "Bearer " + engine.auth.issue_system_token("operator", "system/MessageHeader.cr")}
        message = lab_result("N1").replace(b"|FNXRMYY|", b"|FNNEWHOSP|").replace(b"^FNXRMYY^", b"^FNNEWHOSP^")
        (ack,) = send(engine, message)
        assert ack_code_of(ack) == "AR"
        doc_id = message_id("FNNEWHOSP", "N1")
        (site / "institutions.yaml").write_text(shipped + "- code: FNNEWHOSP\n  name: 阜宁县新院\n  community: funing\n"
                                                "  qc:\n    passed: all\n    until: 2027-12-31\n", encoding="utf-8")
        r = http.post(f"/admin/quarantine/{doc_id}/replay", headers=admin)
        assert r.json()["ack_code"] == "AR"  # the running site does not know it yet
        r = http.post(f"/admin/quarantine/{doc_id}/replay", params={"reload_site": "true"}, headers=admin)
        assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.json()
        (site / "institutions.yaml").write_text("- code: [broken\n", encoding="utf-8")
        r = http.post(f"/admin/quarantine/{doc_id}/replay", params={"reload_site": "true"}, headers=admin)
        assert r.status_code == 422 and "institutions.yaml" in r.json()["issue"][0]["diagnostics"]


def test_iso_2022_code_extension_is_decoded_not_stored_as_escape_sequences(engine: Engine, fhir: TestClient) -> None:
    """MSH-18 ``~ISO IR87`` (ASCII by default, JIS X 0208 after ``ESC $ B``), as Japanese systems
    send it: the name is read in its characters. The bytes are 7-bit, so a UTF-8 decode would
    "succeed" and store the escape sequences in the name."""
    text = (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101091500||ADT^A01^ADT_A01|J1|P|2.5||||||~ISO IR87"
            f"||ISO 2022-1994\rEVN|A01|20261101091500\rPID|1||{NATIONAL_ID}^^^^NNCHN||山田^太郎||19800101|M\r"
            "PV1|1|I\r")
    raw = text.encode("iso2022_jp")
    assert b"\x1b$B" in raw and raw.isascii()
    (ack,) = send(engine, raw)
    assert ack_code_of(ack) == "AA", ack
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "J1"))
    assert doc is not None and doc["status"] == PROCESSED
    (patient_ref,) = [r for r in doc["resources"] if r.startswith("Patient/")]
    patient = fhir.get(f"/fhir/{patient_ref}").json()
    assert patient["name"][0]["family"] == "山田" and patient["name"][0]["given"] == ["太郎"]
    # without escape sequences the same declaration changes nothing (SS-MIX2 samples are UTF-8)
    from adapters.hl7v2.header import extract_header

    head, decoded = extract_header(text.encode("utf-8"))
    assert head.extensions == ("ISO IR87",) and head.codec == "utf-8" and "山田" in decoded
