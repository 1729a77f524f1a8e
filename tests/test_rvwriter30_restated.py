"""rvwriter30: review of writer30 (the store's writer mark; settlement counts only the feed's Provenance).

Real bytes: BAR/DFT over POST /hl7v2, a clinician's PUT over /fhir, the settlement at GET /reports/settlement,
on SQLite and mongomock alike (money29's world).
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from tests.test_convert_families import post as post_hl7
from tests.test_money29_coverage_end import (  # noqa: F401  (world: the fixture)
    AUG,
    OPEN_RESIDENT,
    SEPT,
    SUMMER_EMPLOYEE,
    _bill,
    _excluded,
    world,
)
from tests.test_moneyfix25_rv_coverage import _coverages, _types
from tests.test_moneyfix25b_rv_probes import _bar


def test_a_clients_edit_of_the_feeds_provenance_does_not_unsay_the_cover(world: Any) -> None:  # noqa: F811
    """FINDING (MED, money). money29's case: resident open, employee 07-01..08-31, then BAR^P05 N4 re-states
    the resident cover open (no new Coverage version; only N4's Provenance says so) -- September is resident.
    A clinician then PUTs that Provenance with a note added (reason text). writer30's ``_feed_said`` reads
    the writer of the Provenance's CURRENT version only, which is now ``api``, so the feed's re-statement
    (still in the Provenance's history, version 1, written by the feed) no longer counts: September falls
    back to no fund's (40.00 excluded). A later client edit erases what the HIS message stated -- the
    payment flag changes though no message about the cover arrived."""
    engine, http = world
    assert post_hl7(http, _bar("N1", "P01", OPEN_RESIDENT)) == "AA"
    assert post_hl7(http, _bar("N2", "P05", SUMMER_EMPLOYEE)) == "AA"
    assert post_hl7(http, _bar("N4", "P05", OPEN_RESIDENT)) == "AA"
    resident = _coverages(http)["390"]["id"]
    [newest] = engine.repository.search("Provenance", [("target", f"Coverage/{resident}"),
                                                       ("_sort", "-_lastUpdated"), ("_count", "1")]).resources
    token, _ = engine.auth.issue_token(subject="dr-rvw30", kind="user", client_id="dr-rvw30",
                                       scopes=["user/*.cruds"])
    edited = {k: v for k, v in newest.items() if k != "meta"}
    edited["reason"] = [{"text": "病案室核对"}]
    r = http.put(f"/fhir/Provenance/{newest['id']}", json=edited, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    report = _bill(engine, http, AUG, SEPT)
    assert _types(report) == {"resident": (1, D("40.00")), "employee": (1, D("30.10"))}, _types(report)
    assert _excluded(report) == {}, _excluded(report)
