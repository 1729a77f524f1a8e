"""labelslast20: the review of labelsmend20's probes of the auditors' reports, kept as tests.

For an auditor some labels are withheld from: a report narrowed to one day and institution must not
give the withheld flag's amount (its price names the item), the recognition rates must not count
the order whose evidence is withheld, and the signed deduction list is refused (a payment document
is whole) while its CSV stays a partial view. Each fails on 0beb298."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from engine import fhirjson
from engine.api.app import create_app
from tests.test_labels20_report_flags import _auditor, _county
from tests.test_recognition_world import B

PRICES = yaml.safe_load(Path("mappings/recognition/prices.yaml").read_text(encoding="utf-8"))["default"]


def test_restricted_amount_isolated_by_day_does_not_name_the_item(engine: Any) -> None:
    """Filter the report down to the one day of the withheld flag: totals.restricted then says
    count 1 and its price -- and the price catalogue maps that price to exactly one item (CBC),
    which the item filter's own rule ("a count under the item asked for would name it") forbids."""
    with TestClient(create_app(engine)) as http:
        _county(engine, http)
        auditor = _auditor(engine)
        t = http.get(f"/reports/duplicates?institution={B}&from=2026-03-03&to=2026-03-03",
                     headers=auditor).json()["totals"]
        assert t["count"] == 0
        left = t["restricted"]
        candidates = sorted(k for k, v in PRICES.items() if round(float(v), 2) == left["amount"])
        # one flag isolated (its institution and day by the filter) and its price given: the price
        # catalogue narrows the item to {CBC, FIB} -- the item filter's own rule forbids naming it
        assert not (left["count"] == 1 and "CBC" in candidates), (
            f"restricted {left} on 2026-03-03 at {B}: the item is one of {candidates}")


def test_deduction_total_is_the_same_for_every_reader(engine: Any) -> None:
    """The deduction list (same List identifier institution|month, signed) is what the fund will
    not pay: its total must not depend on who downloaded it -- 60.00 for the auditor, 80.00 for the
    system on 0beb298. The signed list is refused to a reader some labels are withheld from; the
    CSV stays, partial, with its restricted summary."""
    with TestClient(create_app(engine)) as http:
        system, _ = _county(engine, http)
        for row in http.get("/reports/duplicates", headers=system).json()["rows"]:
            assert http.post(f"/reports/duplicates/{row['id']}/review", json={"decision": "upheld", "reason": "属实"},
                             headers=system).status_code == 200
        q = {"institution": B, "month": "2026-03"}
        whole = http.get("/reports/deductions", params=q, headers=system)
        assert whole.status_code == 200, whole.text
        lst = fhirjson.loads(whole.content)["entry"][0]["resource"]
        ext = {x["url"]: x for x in lst["extension"][0]["extension"]}
        assert lst["identifier"][0]["value"] == f"{B}|2026-03" and float(ext["total"]["valueMoney"]["value"]) > 0
        auditor = _auditor(engine)
        for params in (q, {**q, "_format": "json"}):
            r = http.get("/reports/deductions", params=params, headers=auditor)
            assert r.status_code == 403, (params, r.status_code, r.text[:300])
            oo = r.json()
            assert oo["resourceType"] == "OperationOutcome" and "扣款清单须由可查看全部记录的账户生成" in r.text, r.text
        csv = http.get("/reports/deductions", params={**q, "_format": "csv"}, headers=auditor)
        assert csv.status_code == 200, csv.text
        assert "另有 1 条涉及受限记录的疑似重复未显示，金额不显示（少于 5 条）" in csv.text, csv.text
        assert "CBC" not in csv.text


def test_item_filter_rates_do_not_betray_the_withheld_repeat(engine: Any) -> None:
    """Asked for item=CBC the report hides the withheld flag and says restricted 0 ("a count under
    the item asked for would name it") -- but the recognition rate of the same report, from the
    order-time tallies, still counts the CBC re-test at B on its day (and by doctor / department)."""
    with TestClient(create_app(engine)) as http:
        system, _ = _county(engine, http)
        auditor = _auditor(engine)
        r = http.get(f"/reports/duplicates?item=CBC&institution={B}&from=2026-03-03&to=2026-03-03", headers=auditor)
        rep = r.json()
        assert rep["totals"]["count"] == 0 and rep["totals"]["restricted"]["count"] == 0
        rate = rep["recognition_rate"].get(B, {})
        assert not rate.get("recognisable"), f"CBC at {B} on 2026-03-03: {rate} / {rep['recognition_rate_by']}"
        assert not any(rep["recognition_rate_by"].values()), rep["recognition_rate_by"]  # no doctor, no month
        # the system, shown every label, still counts it: the order is screened, not lost
        system_rep = http.get(f"/reports/duplicates?item=CBC&institution={B}&from=2026-03-03&to=2026-03-03",
                              headers=system).json()
        assert system_rep["recognition_rate"][B]["recognisable"] >= 1, system_rep["recognition_rate"]


def test_rows_plus_restricted_add_up_to_the_whole_for_every_filter(engine: Any) -> None:
    with TestClient(create_app(engine)) as http:
        system, _ = _county(engine, http)
        rows = http.get("/reports/duplicates", headers=system).json()["rows"]
        lft = next(r for r in rows if r["item"] == "LFT")
        assert http.post(f"/reports/duplicates/{lft['id']}/review", json={"decision": "overturned", "reason": "有理由"},
                         headers=system).status_code == 200
        auditor = _auditor(engine)
        for q in ("", "status=flagged", "status=overturned", "status=upheld", "status=void", "category=检验",
                  f"institution={B}", "from=2026-03-03&to=2026-03-03", "from=2026-03-04", "_format=json&_count=1"):
            full = http.get(f"/reports/duplicates?{q}", headers=system).json()
            mine = http.get(f"/reports/duplicates?{q}", headers=auditor).json()
            ft, mt = full["totals"], mine["totals"]
            assert mt["count"] + mt["restricted"]["count"] == ft["count"], (q, mt, ft)
            if mt["restricted"]["amount"] is not None:
                assert round(mt["money_at_stake"] + mt["restricted"]["amount"], 2) == ft["money_at_stake"], (q, mt, ft)
            else:  # too few to show their amount (amount_shown_from): the count says they exist
                assert mt["restricted"]["count"] < mt["restricted"]["amount_shown_from"], mt
            assert len(mine["rows"]) + mt["restricted"]["count"] == len(full["rows"]) or "_count" in q, q
            assert sum(d["count"] for d in mine["over_time"]) == mt["count"], (q, mine["over_time"])
