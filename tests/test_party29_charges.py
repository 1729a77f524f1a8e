"""party29: a charge line naming an R result takes its label; the money figures stay exact.

privleft28 left ``ChargeItem.service`` out of ``result_citations.yaml`` for fear that a labelled
charge would leave an auditor's figures short, and a hospital system bound to another institution
read the withheld result's id in the charge (its strict xfail). The money reports read the charges
for the system -- the settlement (``engine.insurance.settlement``), the deduction lists' charge
lines (``deductions._charge_for``), recognition's billed lines -- so the decision (twenty-ninth
round, party29): the charge is labelled as the result it bills, withheld on ``/fhir`` from whom the
result is withheld (read and search by its service alike), and the insurer's settlement, read by
an auditor who is shown no R record, counts it to the fen as before the label.

Real path: the example feeds (invented messages) over ``POST /hl7v2``; charges by FHIR PUT with
exact decimal money; the settlement over HTTP (TestClient), the settlement rules of
``tests/test_insurance_settlement_e2e.py``.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_insurance_settlement_e2e import RULES, body, charge, ident, insurer
from tests.test_labelmark27_results import FEEDS, World, labels_of
from tests.test_moneymend19_charges import employee


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    root = tmp_path_factory.mktemp("party29m")
    (root / "site" / "insurance").mkdir(parents=True)
    (root / "site" / "insurance" / "settlement.yaml").write_text(RULES, "utf-8")
    engine = Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=root / "site"))
    try:
        with TestClient(create_app(engine)) as http:
            world = World(engine, http)
            for name in ("01_FNXRMYY_ADT_A01_admission.hl7", "02_FNXRMYY_ORU_R01_blood_count.hl7"):
                assert world.post((FEEDS / name).read_bytes()) in ("AA", "CA"), name
            yield world
    finally:
        engine.close()


def _line(w: World, cid: str, service: str, amount: str, fund: str) -> dict[str, Any]:
    c = {**charge(cid, "2026-02-01T09:00:00+08:00", ident("FNXRMYY"), amount, fund, "employee"),
         "service": [{"reference": service}]}
    r = w.http.put(f"/fhir/ChargeItem/{cid}", content=body(c),
                   headers={**w.his, "Content-Type": "application/fhir+json"})
    assert r.status_code in (200, 201), r.text[:300]
    return r.json()


def _figures(w: World) -> tuple[D, D, int]:
    report = w.http.get("/reports/settlement?year=2026", headers=insurer(w.engine))
    assert report.status_code == 200, report.text[:300]
    emp = employee(report.json())
    return D(str(emp["spending"])), D(str(emp["charged"])), emp["lines"]


def test_a_charge_billing_an_r_result_is_labelled_and_the_settlement_counts_it_to_the_fen(w):
    here = w.report("FNXRMYY-LIS-000201")
    secret, plain = here["result"][7]["reference"], here["result"][1]["reference"]
    assert labels_of(_line(w, "p29m-r", secret, "12.35", "8.65")) == []  # before the label
    _line(w, "p29m-plain", plain, "30.10", "21.07")
    before = _figures(w)
    assert before == (D("29.72"), D("42.45"), 2), before  # guard: both lines, fund shares 8.65 + 21.07
    assert labels_of(w.label(secret, "R")) == ["R"]
    stored = w.http.get("/fhir/ChargeItem/p29m-r", headers=w.his).json()
    assert labels_of(stored) == ["R"] and str(stored["priceOverride"]["value"]) == "12.35"  # the rise
    assert labels_of(_line(w, "p29m-r2", secret, "5.00", "3.50")) == ["R"]  # the mark, written after
    bound = w.bound()
    for cid in ("p29m-r", "p29m-r2"):
        r = w.http.get(f"/fhir/ChargeItem/{cid}", **bound)
        assert r.status_code == 404 and secret.split("/")[1] not in r.text, (cid, r.status_code)
    count = "/fhir/ChargeItem?service={}&_summary=count"
    assert w.http.get(count.format(secret), **bound).json()["total"] == 0 == \
        w.http.get(count.format("Observation/zz-missing-0"), **bound).json()["total"]
    assert w.http.get("/fhir/ChargeItem/p29m-plain", **bound).status_code == 200  # guard
    # the auditor is shown no R record (``confidentiality.withheld_codes``) and the settlement is exact
    assert _figures(w) == (before[0] + D("3.50"), before[1] + D("5.00"), 3)
