"""The whole community, as deployed: one real ``huren serve`` process, HL7 v2 over real MLLP
sockets, FHIR and reports over real HTTP with OAuth2 tokens, and an offline audit verification.

Hospital A (阜宁县人民医院, FNXRMYY) admits 王建国 and reports his blood count on 10 March.
Hospital B (阜宁县中医院, FNZYY, QC passed for CBC) registers him with its own MRN, and:
  - orders a blood count on 14 March with no reason: the order's ACK says a recognisable result
    exists; the repeat result arrives anyway, so it is flagged "suspected duplicate, not payable";
  - orders another on 30 March, outside the 7-day window: no reminder, no flag.
The auditor's report shows exactly one flag, at B, for CBC, with 20 CNY at stake; the auditor
upholds it. Afterwards the audit log exported from the data directory verifies offline with only
the public key, and a single altered byte in the export is named.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT, mllp_send
from tests.test_ingest_serve import free_port, stop, wait_for_port

EXAMPLES = REPO_ROOT / "examples" / "feeds"
WANG_ID = "32092319850412001X"  # 王建国, the national resident ID in the example feeds


def b_registration() -> bytes:
    return "\r".join([
        "MSH|^~\\&|HIS|FNZYY|HUREN|FUNING|20250314080000||ADT^A04^ADT_A01|FNZYY-ADT-E2E1|P|2.4|||AL|NE|CHN|UNICODE UTF-8",
        "EVN|A04|20250314080000",
        f"PID|1||{WANG_ID}^^^^NNCHN~MZ0099001^^^FNZYY^PI||王^建国||19850412|M",
        "PV1|1|O|JZ^^^FNZYY||||||||||||||||MZ0099001-20250314^^^FNZYY^VN",
    ]).encode() + b"\r"


def b_cbc_order(control: str, placer: str, when: str) -> bytes:
    return "\r".join([
        f"MSH|^~\\&|HIS|FNZYY|HUREN|FUNING|{when}||OML^O21^OML_O21|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8",
        f"PID|1||{WANG_ID}^^^^NNCHN~MZ0099001^^^FNZYY^PI||王^建国||19850412|M",
        f"ORC|NW|{placer}^HIS|||||||{when}|||Z2001^周^红",
        f"OBR|1|{placer}^HIS||1001^血常规五分类^L|||{when}|||||||||Z2001^周^红",
    ]).encode() + b"\r"


def b_cbc_result(control: str, placer: str, day: str) -> bytes:
    return "\r".join([
        f"MSH|^~\\&|LIS|FNZYY|HUREN|FUNING|{day}150000||ORU^R01^ORU_R01|{control}|P|2.4|||AL|NE|CHN|UNICODE UTF-8",
        f"PID|1||{WANG_ID}^^^^NNCHN~MZ0099001^^^FNZYY^PI||王^建国||19850412|M",
        f"ORC|RE|{placer}^HIS|LIS{placer}^LIS||CM",
        f"OBR|1|{placer}^HIS|LIS{placer}^LIS|1001^血常规五分类^L|||{day}090000||||||||BLD&血液|Z2001^周^红"
        f"||||||{day}145500|||F",
        f"OBX|1|NM|100101^白细胞^L||7.1|10*9/L|3.5-9.5|N|||F|||{day}120000",
        f"OBX|2|NM|100103^血红蛋白^L||141|g/L|130-175|N|||F|||{day}120000",
    ]).encode() + b"\r"


def segments(ack: str, name: str) -> list[list[str]]:
    return [seg.split("|") for seg in ack.split("\r") if seg.startswith(name + "|")]


def huren(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=True)


def register(env: dict[str, str], client_id: str, *args: str) -> tuple[str, str]:
    out = huren(env, "client", "add", client_id, *args).stdout
    secret = next(line.split(": ", 1)[1].strip() for line in out.splitlines() if line.startswith("client secret"))
    return client_id, secret


def token(base: str, client: tuple[str, str], scope: str) -> str:
    r = httpx.post(f"{base}/auth/token", data={"grant_type": "client_credentials", "scope": scope},
                   auth=client, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.mark.slow
def test_a_repeat_test_across_the_community_is_flagged_reported_and_audited(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    http_port, mllp_port = free_port(), free_port()
    env = os.environ | {"HUREN_DATA_DIR": str(data_dir), "HUREN_HTTP_PORT": str(http_port),
                        "HUREN_MLLP_PORT": str(mllp_port), "HUREN_AUDIT_CHECKPOINT_EVERY": "50"}
    huren(env, "keys", "init")
    his = register(env, "his-b", "--scope", "system/*.cruds")
    auditor = register(env, "auditor-1", "--kind", "auditor", "--scope", "system/DetectedIssue.rus")
    base = f"http://127.0.0.1:{http_port}"
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(mllp_port, proc)
        wait_for_port(http_port, proc)

        # hospital A: admission and the blood count of 10 March
        for name in ("01_FNXRMYY_ADT_A01_admission.hl7", "02_FNXRMYY_ORU_R01_blood_count.hl7"):
            ack = mllp_send(mllp_port, (EXAMPLES / name).read_bytes())
            assert segments(ack, "MSA")[0][1] == "AA", ack

        # hospital B registers the same person under its own MRN
        assert segments(mllp_send(mllp_port, b_registration()), "MSA")[0][1] == "AA"

        # B orders a blood count 4 days later without a reason: the ACK reminds of A's result
        ack = mllp_send(mllp_port, b_cbc_order("FNZYY-OML-E2E1", "880101", "20250314083000"))
        assert segments(ack, "MSA")[0][1] == "AA", ack
        warnings = [e for e in segments(ack, "ERR") if "W" in e]
        assert warnings and any("DetectedIssue/" in "|".join(e) for e in warnings), ack

        # the repeat is done anyway
        assert segments(mllp_send(mllp_port, b_cbc_result("FNZYY-LIS-E2E1", "880101", "20250314")), "MSA")[0][1] == "AA"

        # an order 20 days after A's result is outside the window: no reminder, no flag
        ack = mllp_send(mllp_port, b_cbc_order("FNZYY-OML-E2E2", "880102", "20250330083000"))
        assert segments(ack, "MSA")[0][1] == "AA" and not any("W" in e for e in segments(ack, "ERR")), ack
        assert segments(mllp_send(mllp_port, b_cbc_result("FNZYY-LIS-E2E2", "880102", "20250330")), "MSA")[0][1] == "AA"

        # the FHIR repository holds one person linked across A and B, with A's results
        system = {"Authorization": "Bearer " + token(base, his, "system/*.rs")}
        patients = httpx.get(f"{base}/fhir/Patient", params={"identifier": WANG_ID},
                             headers=system, timeout=30).json()
        assert len(patients["entry"]) == 2, patients  # one Patient per institution, each with its own MRN
        assert len({e["resource"]["managingOrganization"]["reference"] for e in patients["entry"]}) == 2
        assert all(any(link["type"] == "seealso" for link in e["resource"].get("link", []))
                   for e in patients["entry"]), patients  # linked by the master patient index
        flags = httpx.get(f"{base}/fhir/DetectedIssue", headers=system, timeout=30).json()
        assert flags["resourceType"] == "Bundle" and flags["type"] == "searchset"

        # the auditor's report: one suspected duplicate at B for CBC, 20 CNY at stake
        auditor_h = {"Authorization": "Bearer " + token(base, auditor, "system/DetectedIssue.rus")}
        report = httpx.get(f"{base}/reports/duplicates", headers=auditor_h, timeout=30).json()
        totals = report["totals"]
        assert totals["count"] == 1 and totals["money_at_stake"] == 20.0, report
        assert totals["by_institution"]["FNZYY"]["count"] == 1 and totals["by_item"]["CBC"]["money"] == 20.0
        flag_id = report["rows"][0]["id"]
        review = httpx.post(f"{base}/reports/duplicates/{flag_id}/review", headers=auditor_h, timeout=30,
                            json={"decision": "upheld", "reason": "no change in condition recorded"})
        assert review.status_code == 200, review.text
        upheld = httpx.get(f"{base}/reports/duplicates", params={"status": "upheld"}, headers=auditor_h,
                           timeout=30).json()
        assert upheld["totals"]["count"] == 1

        # a client whose token does not cover DetectedIssue cannot see the report
        lab_only = {"Authorization": "Bearer " + token(base, his, "system/Observation.rs")}
        refused = httpx.get(f"{base}/reports/duplicates", headers=lab_only, timeout=30)
        assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome"
    finally:
        stop(proc)

    # offline: export the audit log, verify it with the public key only, then tamper with one record
    export = tmp_path / "audit-export.jsonl"
    huren(env, "audit", "export", "--output", str(export))
    keys = sorted((data_dir / "keys").glob("audit-ed25519-*.pub.pem"))
    assert keys
    ok = subprocess.run([sys.executable, "-m", "engine.cli", "audit", "verify", "--export", str(export),
                         "--public-key", str(keys[-1])], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = export.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if '"type":"record"' in line and "FNZYY" in line)
    tampered_line = lines[index].replace("FNZYY", "FNZYX", 1)
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join([*lines[:index], tampered_line, *lines[index + 1:]]) + "\n", encoding="utf-8")
    bad = subprocess.run([sys.executable, "-m", "engine.cli", "audit", "verify", "--export", str(tampered),
                          "--public-key", str(keys[-1])], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode != 0
    record_no = json.loads(lines[index])["seq"]
    assert str(record_no) in bad.stdout + bad.stderr, bad.stdout + bad.stderr
