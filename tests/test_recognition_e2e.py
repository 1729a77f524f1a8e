"""End to end: HL7 v2 over a real MLLP socket, then CDS Hooks and the auditors' report over HTTP.

Hospital A (阜宁县人民医院) orders and reports a blood count and a liver panel; hospital B (阜宁县中医院)
orders the same items for the same resident inside and outside the window, with and without a
re-test reason (ORC-16); the township health centre C, whose QC does not cover the blood count in
this site, reports one that B then repeats. Exactly the expected ACK warnings, DetectedIssues,
CDS cards, report rows and money totals must follow.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.listeners.mllp import frame
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings

REPO = Path(__file__).resolve().parent.parent
WANG = "32092319850412001X"  # 王建国, M, 1985-04-12
LI = "320923198809030023"  # 李秀英, F, 1988-09-03
A, B, C = "FNXRMYY", "FNZYY", "FNYLWSY"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """This county's site folder: C's QC covers urinalysis only (the shipped demo also covers CBC)."""
    folder = tmp_path / "site"
    folder.mkdir()
    text = (REPO / "mappings" / "institutions.yaml").read_text("utf-8")
    assert "    passed: [CBC, UA]\n    until: 2026-12-31" in text
    (folder / "institutions.yaml").write_text(text.replace("    passed: [CBC, UA]\n    until: 2026-12-31",
                                                           "    passed: [UA]\n    until: 2026-12-31"), "utf-8")
    return folder


@pytest.fixture
def engine(tmp_path: Path, site: Path) -> Iterator[Engine]:
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site)) as eng:
        yield eng


class Sender:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.n = 0

    def send(self, text: str) -> str:
        self.sock.sendall(frame(text.replace("\n", "\r").encode("utf-8")))
        data = b""
        while not data.endswith(b"\x1c\r"):
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed before the ACK"
            data += chunk
        ack = data[1:-2].decode("utf-8")
        assert "MSA|AA|" in ack, ack
        return ack


def msh(inst: str, app: str, kind: str, when: str, control: str) -> str:
    return f"MSH|^~\\&|{app}|{inst}|HUREN|FUNING|{when}||{kind}|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\n"


def pid(inst: str, person: str, mrn: str) -> str:
    born, sex = (("19850412", "M"), ("19880903", "F"))[person == LI]
    return f"PID|1||{person}^^^公安部^NNCHN~{mrn}^^^{inst}^MR||{'王^建国' if person == WANG else '李^秀英'}||{born}|{sex}\n"


def order(inst: str, person: str, mrn: str, placer: str, item: str, when: str, reason: str = "") -> str:
    return (msh(inst, "HIS", "ORM^O01^ORM_O01", when, f"{inst}-ORM-{placer}") + pid(inst, person, mrn)
            + f"ORC|NW|{placer}^HIS|||||||{when}|||D1^医^生" + (f"||||{reason}" if reason else "") + "\n"
            + f"OBR|1|{placer}^HIS||{item}|||{when}\n")


def result(inst: str, person: str, mrn: str, placer: str, item: str, when: str, status: str = "F") -> str:
    return (msh(inst, "LIS", "ORU^R01^ORU_R01", when, f"{inst}-ORU-{placer}-{status}") + pid(inst, person, mrn)
            + f"ORC|RE|{placer}^HIS|F{placer}^LIS||CM\n"
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{item}|||{when}|||||||||D1^医^生||||||{when}|||{status}\n"
            + f"OBX|1|NM|WBC^白细胞计数^L||6.1|10*9/L|3.5-9.5|N|||{status}|||{when}\n")


CBC = {A: "XCG^血常规^L", B: "1001^血常规五分类^L", C: "XCG^血常规^L"}
LFT = {A: "GGN^肝功能^L", B: "1020^肝功能八项^L"}


def bearer(engine: Engine, scopes: str, kind: str = "system") -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("e2e-" + kind, scopes, kind=kind)}


def test_two_hospitals_one_resident(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    # hospital A: order and results (blood count 03-10, liver panel 03-12)
    assert "DetectedIssue" not in hl7.send(order(A, WANG, "ZY1", "A-1", CBC[A], "20260310080000"))
    assert "DetectedIssue" not in hl7.send(result(A, WANG, "ZY1", "A-1", CBC[A], "20260310093000"))
    assert "DetectedIssue" not in hl7.send(result(A, WANG, "ZY1", "A-2", LFT[A], "20260312093000"))

    # hospital B, inside the 7-day window, no reason: reminded at order time, flagged at result time
    ack = hl7.send(order(B, WANG, "MZ9", "B-1", CBC[B], "20260313080000"))
    assert "ERR|" in ack and "Recognisable prior result" in ack and "DetectedIssue/rec-" in ack
    ack = hl7.send(result(B, WANG, "MZ9", "B-1", CBC[B], "20260313093000"))
    assert "Suspected duplicate test, not payable" in ack and "DetectedIssue/dup-" in ack
    # ... a corrected result (OBR-25 C) updates the same flag
    hl7.send(result(B, WANG, "MZ9", "B-1", CBC[B], "20260313093000", status="C"))

    # hospital B, outside the window (15 days after A's, 12 after its own): nothing
    ack = hl7.send(order(B, WANG, "MZ9", "B-2", CBC[B], "20260325080000"))
    assert "DetectedIssue" not in ack
    assert "DetectedIssue" not in hl7.send(result(B, WANG, "MZ9", "B-2", CBC[B], "20260325093000"))

    # hospital B, liver panel inside its 14-day window, with reason R01 in ORC-16: reminded, not flagged
    reason = "R01^病情变化^urn:huren:recognition-reason"
    assert "Recognisable prior result" in hl7.send(order(B, WANG, "MZ9", "B-3", LFT[B], "20260314080000", reason))
    ack = hl7.send(result(B, WANG, "MZ9", "B-3", LFT[B], "20260314093000"))
    assert "DetectedIssue" not in ack  # a justified re-test is reported, not flagged

    # C's blood count (no QC for it here) is not recognisable for B
    hl7.send(result(C, LI, "YL1", "C-1", CBC[C], "20260310093000"))
    assert "DetectedIssue" not in hl7.send(order(B, LI, "MZ7", "B-4", CBC[B], "20260312080000"))
    assert "DetectedIssue" not in hl7.send(result(B, LI, "MZ7", "B-4", CBC[B], "20260312093000"))

    # exactly one reminder per reminded order and one DetectedIssue per repeated test
    issues = engine.repository.search("DetectedIssue", [("_count", "100")]).resources
    kinds = sorted((i["code"]["coding"][0]["code"], i["status"]) for i in issues)
    assert kinds == [("duplicate-test", "preliminary"), ("justified-retest", "final"),
                     ("recognisable-prior-result", "final"), ("recognisable-prior-result", "final")]
    dup = next(i for i in issues if i["code"]["coding"][0]["code"] == "duplicate-test")
    assert dup["severity"] == "high"
    assert len(engine.repository.history("DetectedIssue", dup["id"])) == 1  # the correction changed no evidence

    http = TestClient(create_app(engine))
    # CDS Hooks: B's EHR selects a blood count for 王建国 on 03-15 -> a card linking A's result
    sr = next(i for i in issues if i["code"]["coding"][0]["code"] == "recognisable-prior-result")["implicated"][0]
    patient_b = engine.repository.read("ServiceRequest", sr["reference"].split("/")[1])["subject"]["reference"]
    draft = {"resourceType": "ServiceRequest", "id": "draft-1", "status": "draft", "intent": "order",
             "code": {"coding": [{"system": f"urn:huren:code:{B}", "code": "1001"}]},
             "subject": {"reference": patient_b}, "authoredOn": "2026-03-15T09:00:00+08:00"}
    hook = {"hookInstance": "e2e00000-0000-4000-8000-000000000001", "hook": "order-select",
            "context": {"userId": "Practitioner/1", "patientId": patient_b.split("/")[1], "selections": ["ServiceRequest/draft-1"],
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft}]}}}
    ehr = bearer(engine, "system/ServiceRequest.crus")  # a CDS call records a decision: write scope
    [card] = http.post("/cds-services/huren-recognition-select", json=hook, headers=ehr).json()["cards"]
    # B's own (flagged) 03-13 result is the newest recognisable one; A's 03-10 result is linked too
    assert card["summary"] == "可互认 血常规: FNZYY 2026-03-13 (2 recognisable)"
    assert [link["label"].split("(")[1] for link in card["links"]] == [f"{B} 2026-03-13)", f"{A} 2026-03-10)"]
    fb = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                        "outcomeTimestamp": "2026-03-15T09:01:00+08:00"}]}
    assert http.post("/cds-services/huren-recognition-select/feedback", json=fb, headers=ehr).status_code == 200

    # the auditor's report: one flag not payable (B's blood count, CNY 20), one justified re-test
    auditor = bearer(engine, "system/DetectedIssue.rus", "auditor")
    rep = http.get("/reports/duplicates?from=2026-03-01&to=2026-03-31", headers=auditor).json()
    t = rep["totals"]
    assert (t["count"], t["money_at_stake"]) == (2, 20.0)
    assert t["by_status"] == {"flagged": 1, "upheld": 0, "overturned": 0, "justified": 1, "self_pay": 0, "reported": 0,
                              "void": 0}
    assert t["by_institution"] == {B: {"count": 2, "money": 20.0, "flagged": 1, "upheld": 0, "overturned": 0, "justified": 1,
                                       "self_pay": 0, "reported": 0}}
    assert rep["recognition_rate"] == {B: {"recognisable": 3, "recognised": 1, "retested": 2, "pending": 0, "rate": 0.3333}}
    flagged = next(r for r in rep["rows"] if r["status"] == "flagged")
    assert (flagged["prior_institution"], flagged["prior_day"], flagged["day"], flagged["item"]) == (A, "2026-03-10", "2026-03-13", "CBC")

    # the auditor upholds it: DetectedIssue final, money still at stake
    res = http.post(f"/reports/duplicates/{flagged['id']}/review", json={"decision": "upheld", "reason": "无复查理由"},
                    headers=auditor)
    assert res.status_code == 200
    assert engine.repository.read("DetectedIssue", flagged["id"])["status"] == "final"
    csv_text = http.get("/reports/duplicates?from=2026-03-01&to=2026-03-31&_format=csv", headers=auditor).text
    assert "合计,2,涉及金额,20.00,CNY" in csv_text


def test_bad_rules_in_the_site_stop_start_up(tmp_path: Path, site: Path) -> None:
    from mappings.sitefiles import RulesError

    (site / "items.yaml").write_text("- {code: CBC, name: 血常规, category: 检验, window_days: 7, scope: [MARS]}\n", "utf-8")
    with pytest.raises(RulesError) as caught:
        Engine(Settings(data_dir=tmp_path / "var2", site=site))
    assert str(caught.value) == f"{site / 'items.yaml'}:1: [0].scope[0]: unknown scope 'MARS' (not in scopes.yaml)"


def test_shipped_example_feeds_make_a_realistic_month(tmp_path: Path) -> None:
    """The demo feeds (examples/feeds) in file order, as ``make run`` replays them: the CT report comes
    before the re-test order (reminded, R01 kept); the month then holds flags not payable, a justified
    re-test, a self-pay re-test, a reason contradicted by records and a recognition rate per institution."""
    from engine.recognition.reports import ReportFilter, duplicates_report

    feeds = REPO / "examples" / "feeds"
    with Engine(Settings(data_dir=tmp_path / "var")) as engine:
        acks = {}
        for path in sorted(feeds.glob("*.hl7")):
            acks[path.name] = engine.ingestor.handle(path.read_bytes(), channel="file", peer=f"file:{path.name}").decode()
            assert "MSA|AA|" in acks[path.name], (path.name, acks[path.name])
        order_file = next(n for n in acks if "ORM_O01_ct_order" in n)
        assert "ERR|" in acks[order_file]  # a v2.4 ACK: the warning is there, the DetectedIssue says it all
        [check] = engine.recognition.checks.find({"inst": B, "item": "CT-CHEST", "day": "2025-03-20"})
        reminder = engine.repository.read("DetectedIssue", check["issue"])
        assert "of FNXRMYY on 2025-03-11 (21 days left)" in reminder["detail"]
        assert (check["reason"], check["reason_effect"]) == ("R01", "payable")

        report = duplicates_report(engine.recognition, ReportFilter())
        rows = {(r["day"], r["institution"], r["item"]): r for r in report["rows"]}
        assert {k: (r["status"], r["reason"], r["price"]) for k, r in rows.items()} == {
            ("2025-03-12", B, "CBC"): ("flagged", None, 20.0),
            ("2025-03-13", C, "CBC"): ("self_pay", "R07", 20.0),
            ("2025-03-14", B, "CBC"): ("flagged", "R98", 20.0),
            ("2025-03-19", B, "LFT"): ("flagged", None, 5.0),
            ("2025-03-20", B, "CT-CHEST"): ("justified", "R01", 220.0),
        }
        assert rows[("2025-03-14", B, "CBC")]["contradicted"].startswith("reason contradicted by records")
        assert rows[("2025-03-19", B, "LFT")]["analytes"] == "ALT"
        assert report["totals"]["money_at_stake"] == 45.0
        rate = {inst: (r["recognised"], r["recognisable"]) for inst, r in report["recognition_rate"].items()}
        assert rate == {A: (1, 1), B: (1, 5), C: (0, 1)}
        # every repeat's ACK names its flag once
        assert all(ack.count("See DetectedIssue/dup-") <= 1 for ack in acks.values())
