"""probepay26: the money of a repeat -- who is charged, how much, in which month -- through HL7 over
MLLP, FHIR ChargeItems over HTTP, and the auditors' reports (`/reports/duplicates`,
`/reports/deductions`).

DOMAIN.md "Payment policy": "The money at stake is the price of what was repeated: the billed charge
line when one exists, else the price catalogue at the ordered level"; the rate is "Reported per
institution, department, ordering doctor and month". The brief: exact decimals (fen), never floats;
months are the institution's local (Asia/Shanghai) months.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_probepay26_windows import CBC, flags, make_site, open_engine, order, reminded, result
from tests.test_recognition_e2e import Sender
from tests.test_reports_duplicates import bearer

PRICES = (Path(__file__).resolve().parent.parent / "mappings/recognition/prices.yaml").read_text("utf-8")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    prices = PRICES.replace("institutions: {}", "institutions:\n  HOSPC: {CBC: 18.35}")
    yield from open_engine(tmp_path, make_site(tmp_path, recognition__prices__yaml=prices))


def _system(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")}


def _repeat(hl7: Sender, inst: str, placer: str, prior: str, ordered: str, resulted: str) -> None:
    hl7.send(result("HOSPA", "A" + placer, CBC, prior))
    assert reminded(hl7.send(order(inst, placer, CBC, ordered)))
    hl7.send(result(inst, placer, CBC, resulted))


def _uphold(http: TestClient, engine: Engine) -> None:
    for f in flags(engine, "flagged"):
        r = http.post(f"/reports/duplicates/{f['_id']}/review", json={"decision": "upheld", "reason": "属实"},
                      headers=bearer(engine))
        assert r.status_code == 200, r.text


def _deductions(http: TestClient, engine: Engine, inst: str, month: str) -> tuple[list[list[str]], D]:
    got = http.get("/reports/deductions", params={"institution": inst, "month": month, "_format": "csv"},
                   headers=bearer(engine, "system/DetectedIssue.rs"))
    assert got.status_code == 200, got.text
    table = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    body = [row for row in table[1:] if row and row[0].startswith("ded-")]
    total = next(row for row in table if row and row[0] == "合计")
    return body, D(total[5])


def test_probepay26_catalogue_price_at_the_ordering_institution(engine: Engine, mllp: int) -> None:
    """HOSPC's own catalogue price (18.35) is charged for HOSPC's repeat, the default (20.00) for HOSPB's."""
    hl7 = Sender(mllp)
    _repeat(hl7, "HOSPC", "C1", "20260310090000+0800", "20260312080000+0800", "20260312100000+0800")
    _repeat(hl7, "HOSPB", "B1", "20260310090000+0800", "20260312080000+0800", "20260312100000+0800")
    got = {f["inst"]: D(str(f["price"])) for f in flags(engine, "flagged")}
    assert got == {"HOSPC": D("18.35"), "HOSPB": D("20.00")}, got
    http = TestClient(create_app(engine))
    _uphold(http, engine)
    rows, total = _deductions(http, engine, "HOSPC", "2026-03")
    assert [D(r[9]) for r in rows] == [D("18.35")] and total == D("18.35"), rows
    rows, total = _deductions(http, engine, "HOSPA", "2026-03")  # the prior's institution is charged nothing
    assert (rows, total) == ([], D("0.00")), rows
    rep = http.get("/reports/duplicates", headers=bearer(engine)).json()
    assert D(str(rep["totals"]["money_at_stake"])) == D("38.35"), rep["totals"]


def test_probepay26_deduction_month_is_the_local_month(engine: Engine, mllp: int) -> None:
    """A repeat resulted 2026-04-01 00:30 in Shanghai (2026-03-31 16:30 UTC) is April's deduction, not March's."""
    hl7 = Sender(mllp)
    _repeat(hl7, "HOSPB", "B1", "20260329090000+0800", "20260331163000+0000", "20260331163000+0000")
    [f] = flags(engine, "flagged")
    assert (f["day"], f["order_day"]) == ("2026-04-01", "2026-04-01"), f
    http = TestClient(create_app(engine))
    _uphold(http, engine)
    march, m_total = _deductions(http, engine, "HOSPB", "2026-03")
    april, a_total = _deductions(http, engine, "HOSPB", "2026-04")
    assert (len(march), m_total, len(april), a_total) == (0, D("0.00"), 1, D("20.00")), (march, april)


def test_probepay26_rate_month_is_the_local_month(engine: Engine, mllp: int) -> None:
    """The recognition rate by month puts an order placed 2026-04-01 00:30 Shanghai time in April."""
    hl7 = Sender(mllp)
    _repeat(hl7, "HOSPB", "B1", "20260329090000+0800", "20260331163000+0000", "20260331170000+0000")
    http = TestClient(create_app(engine))
    rep = http.get("/reports/duplicates", headers=bearer(engine)).json()
    months = rep["recognition_rate_by"]["month"]
    assert list(months) == ["2026-04"], months


def _charge(engine: Engine, http: TestClient, cid: str, amount: str) -> None:
    [f] = [f for f in flags(engine) if f["inst"] == "HOSPB"]
    line = {"resourceType": "ChargeItem", "id": cid, "status": "billed",
            "code": {"coding": [{"system": "urn:huren:code:price", "code": "250101015", "display": "血细胞分析"}]},
            "subject": {"reference": f["patient"]}, "occurrenceDateTime": "2026-03-12T10:00:00+08:00",
            "performingOrganization": {"identifier": {"system": "urn:huren:institution", "value": "HOSPB"}},
            "priceOverride": {"value": D(amount), "currency": "CNY"}, "service": [{"reference": f["result"]}]}
    body = _json(line)
    r = http.put(f"/fhir/ChargeItem/{cid}", content=body.encode(), headers={**_system(engine),
                                                                           "Content-Type": "application/fhir+json"})
    assert r.status_code in (200, 201), r.text


def _json(doc: Any) -> str:
    """JSON with Decimals written as their exact text (as a HIS writes 12.35, not a float's repr)."""
    import json

    text = json.dumps(doc, ensure_ascii=False, default=lambda o: f"@@{o}@@")
    return text.replace('"@@', "").replace('@@"', "")


@pytest.mark.parametrize(("amount", "expected"), [
    ("37.05", "37.05"),
    ("0.30", "0.30"),
    # a half-fen line: the project's own rounding (engine.insurance.tiers.fen) is half up, 1.005 -> 1.01
    ("1.005", "1.01"),
    ("2.675", "2.68"),
])
def test_probepay26_billed_line_is_the_money_to_the_fen(engine: Engine, mllp: int, amount: str, expected: str) -> None:
    hl7 = Sender(mllp)
    _repeat(hl7, "HOSPB", "B1", "20260310090000+0800", "20260312080000+0800", "20260312100000+0800")
    http = TestClient(create_app(engine))
    _charge(engine, http, "ci-b1", amount)
    [f] = flags(engine, "flagged")
    assert f["price_source"] == "charge", f
    _uphold(http, engine)
    rows, total = _deductions(http, engine, "HOSPB", "2026-03")
    assert [D(r[9]) for r in rows] == [D(expected)] and total == D(expected), (amount, rows, f["price"])
    issue = engine.repository.read("DetectedIssue", f["_id"])
    ev = next(e for e in issue["extension"] if e["url"] == "urn:huren:StructureDefinition:recognition-evidence")
    price = next(e for e in ev["extension"] if e["url"] == "price")["valueMoney"]["value"]
    assert D(str(price)) == D(expected), (amount, price)
