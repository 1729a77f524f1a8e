"""probepay26: more edges of DOMAIN.md's decision and payment policy over MLLP and the auditors'
report: R06's text that is only blanks, the report's money by status (open + upheld at stake,
self-pay apart, justified nothing), the report's day filter in local days, and an order first seen
in its result message (an HL7-only site: no ORM) dated by when it was placed.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from tests.test_probepay26_windows import (
    CBC,
    WANG,
    flags,
    make_site,
    msh,
    open_engine,
    order,
    reminded,
    result,
)
from tests.test_recognition_e2e import Sender
from tests.test_reports_duplicates import bearer

SYS = "urn:huren:recognition-reason"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from open_engine(tmp_path, make_site(tmp_path))


@pytest.mark.parametrize("text", ["   ", "Other necessary re-test", "其他必要复查"])
def test_probepay26_r06_whose_text_is_no_text_is_flagged(engine: Engine, mllp: int, text: str) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, "20260310090000+0800"))
    reason = f"R06^其他必要复查^{SYS}^^^^^^{text}"
    assert reminded(hl7.send(order("HOSPB", "B1", CBC, "20260312080000+0800", reason=reason)))
    hl7.send(result("HOSPB", "B1", CBC, "20260312100000+0800"))
    [f] = flags(engine)
    assert f["status"] == "flagged", (text, f)


def _person(n: int) -> str:
    """A valid 18-character ID number (ISO 7064 MOD 11-2), born 1985-04-12, male."""
    body = f"32092319850412{n:02d}1"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def test_probepay26_report_money_by_status(engine: Engine, mllp: int) -> None:
    """Three people repeat a CBC at HOSPB: no reason (not payable, 20.00 at stake), R07 (self-pay,
    20.00 apart), R01 (justified, nothing). Then the no-reason flag is upheld: still 20.00 at stake."""
    hl7 = Sender(mllp)
    for n, reason in ((1, ""), (2, "R07^患者要求^" + SYS), (3, "R01^病情变化^" + SYS)):
        who = {"person": _person(n), "mrn": f"M{n}"}
        hl7.send(result("HOSPA", f"A{n}", CBC, "20260310090000+0800", **who))
        assert reminded(hl7.send(order("HOSPB", f"B{n}", CBC, "20260312080000+0800", reason=reason, **who)))
        hl7.send(result("HOSPB", f"B{n}", CBC, "20260312100000+0800", **who))
    assert sorted(f["status"] for f in flags(engine)) == ["flagged", "justified", "self_pay"]
    http = TestClient(create_app(engine))
    t = http.get("/reports/duplicates", headers=bearer(engine)).json()["totals"]
    assert (D(str(t["money_at_stake"])), D(str(t["self_pay_money"]))) == (D("20"), D("20")), t
    [f] = flags(engine, "flagged")
    assert http.post(f"/reports/duplicates/{f['_id']}/review", json={"decision": "upheld", "reason": "x"},
                     headers=bearer(engine)).status_code == 200
    t = http.get("/reports/duplicates", headers=bearer(engine)).json()["totals"]
    assert (D(str(t["money_at_stake"])), D(str(t["self_pay_money"]))) == (D("20"), D("20")), t


def test_probepay26_report_day_filter_is_local(engine: Engine, mllp: int) -> None:
    """A repeat resulted 2026-04-01 00:30 Shanghai (03-31 16:30Z) is in from=to=2026-04-01, not in 03-31."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, "20260329090000+0800"))
    hl7.send(order("HOSPB", "B1", CBC, "20260331163000+0000"))
    hl7.send(result("HOSPB", "B1", CBC, "20260331163000+0000"))
    http = TestClient(create_app(engine))

    def rows(day: str) -> int:
        r = http.get("/reports/duplicates", params={"from": day, "to": day}, headers=bearer(engine))
        assert r.status_code == 200, r.text
        return len(r.json()["rows"])

    assert (rows("2026-03-31"), rows("2026-04-01")) == (0, 1)


def test_probepay26_order_seen_first_in_its_result_is_dated_by_orc9(engine: Engine, mllp: int) -> None:
    """No ORM: the ORU's ORC-9 says the order was placed 2026-03-08 22:00 (7 days after the prior),
    the specimen was taken 03-09 08:00 (OBR-7). O's date is the order's: a repeat, not payable."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, "20260301090000+0800"))
    placed, taken = "20260308220000+0800", "20260309080000+0800"
    oru = (msh("HOSPB", "LIS", "ORU^R01^ORU_R01", taken)
           + f"PID|1||{WANG}^^^公安部^NNCHN~MRN-HOSPB^^^HOSPB^MR||王^建国||19850412|M\n"
           + f"ORC|RE|B1^HIS|FB1^LIS||CM||||{placed}|||D7^张^医生\n"
           + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{taken}|||||||||D7^张^医生||||||{taken}|||F\n"
           + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{taken}\n")
    hl7.send(oru)
    [f] = flags(engine)
    assert (f["status"], f["order_day"]) == ("flagged", "2026-03-08"), f


def test_probepay26_post_hl7v2_gives_the_same_answers(engine: Engine) -> None:
    """The same repeat over POST /hl7v2: the ORM's ACK warns (ERR, severity W), the ORU's names the
    not-payable flag, and the flag is the one MLLP makes."""
    http = TestClient(create_app(engine))
    h = {"Content-Type": "x-application/hl7-v2+er7",
         "Authorization": "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")}

    def post(text: str) -> str:
        r = http.post("/hl7v2", content=text.replace("\n", "\r").encode(), headers=h)
        assert r.status_code == 200 and r.headers["x-hl7-ack-code"] == "AA", r.text
        return r.text

    post(result("HOSPA", "A1", CBC, "20260310090000+0800"))
    ack = post(order("HOSPB", "B1", CBC, "20260312080000+0800"))
    assert reminded(ack) and "|W|" in ack, ack
    ack = post(result("HOSPB", "B1", CBC, "20260312100000+0800"))
    assert ack.count("Suspected duplicate test, not payable") == 1, ack
    [f] = flags(engine, "flagged")
    assert (f["inst"], f["prior_inst"], f["item"], f["window"], f["prior_day"], f["order_day"], stored_fen(f["price"])) == (
        "HOSPB", "HOSPA", "CBC", 7, "2026-03-10", "2026-03-12", 20.0), f
