"""rvmoney29: findings on money29 (1f364e82), plain failing tests for the fixer.

1. The settlement's "stated when" (``settlement._last_said``) takes ANY Provenance naming the Coverage as a
   statement of it by the feed: a Provenance a FHIR client writes (a clinician's note about the card, its
   ``recorded`` back-dated to 2025) brings the ended resident cover back, and the resident fund pays a
   September line no message said it covers.
2. The ORC-16 ``""`` mark (``facts.REASON_WITHDRAWN_EXT``) stays on the stored ServiceRequest after the placer
   re-states a reason: clients read R01 and, beside it, "the re-test reason was withdrawn".
Real bytes: HL7 over HTTP / MLLP, FHIR over HTTP, both stores.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from engine.engine import Engine
from tests import test_money19_cds_orders
from tests.test_convert_families import post as post_hl7
from tests.test_money19_cds_orders import cds_card, override, setup
from tests.test_money20_reason_change import R01, the_flag, update
from tests.test_money29_coverage_end import (  # noqa: F401  (world: the fixture)
    OPEN_RESIDENT,
    SEPT,
    SUMMER_EMPLOYEE,
    _bill,
    _excluded,
    world,
)
from tests.test_moneyfix25_rv_coverage import _coverages, _types
from tests.test_moneyfix25b_rv_probes import _bar
from tests.test_recognition_policy_e2e import CBC, order, ts

engine = test_money19_cds_orders.engine

WITHDRAWN = "urn:huren:StructureDefinition:retest-reason-withdrawn"


def test_a_clients_provenance_naming_the_ended_cover_does_not_restate_it(world: Any) -> None:  # noqa: F811
    """FINDING 1 (MED, money). Resident open, then employee 07-01..08-31 (money29's own case: September is
    no fund's). A clinician then POSTs a Provenance naming the resident Coverage (``recorded`` 2025, an
    old card scanned into the record): no HIS message stated the cover again, yet September goes to the
    resident fund (40.00) -- the Provenance's ``meta.lastUpdated`` is read as the feed's re-statement."""
    engine, http = world
    assert post_hl7(http, _bar("N1", "P01", OPEN_RESIDENT)) == "AA"
    assert post_hl7(http, _bar("N2", "P05", SUMMER_EMPLOYEE)) == "AA"
    resident = _coverages(http)["390"]["id"]
    token, _ = engine.auth.issue_token(subject="dr-rv29", kind="user", client_id="dr-rv29", scopes=["user/*.cruds"])
    prov = {"resourceType": "Provenance", "target": [{"reference": f"Coverage/{resident}"}],
            "recorded": "2025-01-02T10:00:00+08:00", "agent": [{"who": {"display": "病案室"}}]}
    r = http.post("/fhir/Provenance", json=prov, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    report = _bill(engine, http, SEPT)
    assert _types(report) == {}, _types(report)
    assert _excluded(report) == {"no-insurance-type": (1, D("40.00"))}


def test_a_reason_re_stated_after_the_delete_drops_the_withdrawn_mark(engine: Engine, mllp: int) -> None:
    """FINDING 2 (LOW). CDS R04, the order, XO ``""`` (withdraws), then XO stating R01: R01 decides (the
    flag is right), but the stored ServiceRequest read over FHIR still says the reason was withdrawn
    (extension naming HOSPB-XO-B1-1) next to reasonCode R01 -- two contradicting statements to clients."""
    hl7, http, patient = setup(engine, mllp)
    override(engine, http, cds_card(engine, http, patient, "B1"), "R04")
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 8), '""'))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), R01, n=2))
    [sr] = engine.repository.search("ServiceRequest", [("identifier", "B1")]).resources
    got = http.get(f"/fhir/ServiceRequest/{sr['id']}",
                   headers={"Authorization": "Bearer " + engine.auth.issue_system_token("rv29", "system/*.rs")})
    assert got.status_code == 200, got.text
    body = got.json()
    codes = [c["code"] for r in body.get("reasonCode") or () for c in r.get("coding") or ()]
    assert codes == ["R01"], codes
    assert [e for e in body.get("extension") or () if e.get("url") == WITHDRAWN] == [], body.get("extension")
    _ = the_flag  # the flag itself is right (money29's own test)
