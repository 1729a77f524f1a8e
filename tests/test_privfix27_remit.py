"""privfix27: the review of privprobe27 mended -- remits of bound system clients and of the published indicators.

The month of ``test_insurance_indicators`` (real HL7 and FHIR writes), published by the real CLI
(``huren indicators --publish``), read over real HTTP through FastAPI's app by real staff sessions and
real tokens. What each caller is shown is compared with what the site's own (unbound) system is shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engine import cli
from engine.auth.staff import StaffIdentity
from engine.auth.staff_session import SESSION_COOKIE
from engine.engine import Engine
from engine.settings import Settings
from tests.test_insurance_indicators import COUNTY, SECOND, TOWN, fill_march
from tests.test_rvprivprobe27_admin import _bound_system

COMMUNITY = "funing"  # COUNTY, SECOND and TOWN: the shipped demo community


def _who(resource: dict[str, Any]) -> str:
    who = resource.get("subject") if resource["resourceType"] == "Flag" else resource.get("reporter")
    return str(((who or {}).get("identifier") or {}).get("value"))


def _session(engine: Any, name: str, remit: str) -> dict[str, str]:
    person = StaffIdentity(name, "auditor", "YBJ", "孙丽", remit)
    token, _ = engine.staff.open_session(person, engine.staff.roles["auditor"], address="127.0.0.1",
                                         issuer="https://idp.ybj.example.cn")
    return {SESSION_COOKIE: token}


def _search(http: Any, rtype: str, **kw: Any) -> dict[str, list[str]]:
    r = http.get(f"/fhir/{rtype}", params={"_count": "200"}, **kw)
    assert r.status_code == 200, r.text[:300]
    out: dict[str, list[str]] = {}
    for e in r.json().get("entry") or ():
        out.setdefault(_who(e["resource"]), []).append(e["resource"]["id"])
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Any, dict[str, str]]]:
    """The month, published; the app's client without credentials and the site's own system's headers."""
    root = tmp_path_factory.mktemp("privfix27")
    engine = Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0))
    try:
        http = fill_march(engine)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("HUREN_DATA_DIR", str(engine.settings.data_dir))
            assert cli.main(["indicators", "2026-03", "--publish"]) == 0
        http.headers.pop("Authorization")
        # the site's own system client (bound to no hospital)
        site = {"Authorization": "Bearer " + engine.auth.issue_system_token("site", "system/*.cruds")}
        yield engine, http, site
    finally:
        engine.close()


def test_a_remit_bound_auditor_reads_only_the_published_figures_wholly_in_the_remit(world: Any) -> None:
    """(review finding 2) An auditor bound to one hospital is shown its alerts only; the community's
    report (every hospital's strata) and another hospital's alert read as missing, by search, count
    and id. Bound to the whole community, everything the site's own system is shown."""
    engine, http, site = world
    flags, reports = _search(http, "Flag", headers=site), _search(http, "MeasureReport", headers=site)
    assert {COUNTY, TOWN, COMMUNITY} <= set(flags) and COMMUNITY in reports, (flags, reports)
    county = _session(engine, "sun.county", COUNTY)
    assert _search(http, "Flag", cookies=county) == {COUNTY: flags[COUNTY]}
    assert _search(http, "MeasureReport", cookies=county) == {}
    assert http.get("/fhir/MeasureReport", params={"_summary": "count"}, cookies=county).json()["total"] == 0
    got = {ref: http.get(f"/fhir/{ref}", cookies=county).status_code
           for ref in (f"Flag/{flags[COUNTY][0]}", f"Flag/{flags[TOWN][0]}", f"Flag/{flags[COMMUNITY][0]}",
                       f"MeasureReport/{reports[COMMUNITY][0]}")}
    assert list(got.values()) == [200, 404, 404, 404], got
    community = _session(engine, "sun.funing", COMMUNITY)
    assert _search(http, "Flag", cookies=community) == flags
    assert _search(http, "MeasureReport", cookies=community) == reports
    assert http.get(f"/fhir/MeasureReport/{reports[COMMUNITY][0]}", cookies=community).status_code == 200


def test_a_hospital_bound_system_client_is_kept_to_its_hospital_on_the_reports(world: Any) -> None:
    """(review finding 1) ``audit_remit`` keeps a system client bound to COUNTY to COUNTY, as a staff
    member bound to it is: the indicators report is COUNTY's, another hospital named is refused; the
    site's own system is shown the community."""
    engine, http, site = world
    bound, month = _bound_system(engine, COUNTY), {"month": "2026-03"}
    shown = {_who(e["resource"]) for e in http.get("/reports/indicators", params=month, headers=bound).json()["entry"]}
    whole = {_who(e["resource"]) for e in http.get("/reports/indicators", params=month, headers=site).json()["entry"]}
    assert shown == {COUNTY} and {COUNTY, TOWN, COMMUNITY} <= whole, (shown, whole)
    assert http.get("/reports/indicators", params=month | {"institution": SECOND}, headers=bound).status_code == 400


def test_a_hospital_bound_system_client_does_not_reload_the_sites_rules(world: Any) -> None:
    """(review finding 4) ``POST /admin/reload``: the site's rules are the community's."""
    engine, http, site = world
    refused = http.post("/admin/reload", headers=_bound_system(engine, COUNTY))
    assert refused.status_code == 403 and "机构绑定" in refused.text, refused.text[:300]
    assert http.post("/admin/reload", headers=site).status_code == 200
