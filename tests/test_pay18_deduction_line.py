"""A deduction list names the charge line only when the settlement counts it (eighteenth round,
pay18): ``GET /reports/deductions`` over real HTTP. A planned ChargeItem (not billed yet) for the
repeated result was named as the line deducted, beside an amount taken from the catalogue."""

from __future__ import annotations

from typing import Any

from tests import test_reports_duplicates
from tests.test_insurance_deductions import deductions, upheld

county = test_reports_duplicates.county  # the duplicate report's small county: two flags at B


def test_a_planned_line_is_not_the_line_deducted(engine: Any, county: dict[str, Any]) -> None:
    http = county["http"]
    rows = upheld(engine, http)
    cbc = next(r for r in rows if r["price"] == 20.0)
    for cid, status in (("planned-1", "planned"),):
        engine.repository.update({
            "resourceType": "ChargeItem", "id": cid, "status": status,
            "code": {"coding": [{"system": "urn:huren:price-code", "code": "250101001"}]},
            "subject": {"reference": cbc["patient"]}, "quantity": {"value": 1},
            "priceOverride": {"value": 23.0, "currency": "CNY"}, "service": [{"reference": cbc["result"]}]})
    res = deductions(engine, http, _format="csv")
    assert res.status_code == 200, res.text
    text = res.content.decode("utf-8")
    assert "20.00" in text and "23.00" not in text
    assert "ChargeItem/planned-1" not in text
