"""An auditor's remit (监管范围): the institutions whose flags, deduction lists and indicators a
staff member bound to an institution, a medical community or a pooling region (统筹区) may see.

A staff account's ``remit`` is empty (the whole site: the bureau's own auditors) or one code:

- an institution's ``code`` (``institutions.yaml``): that institution;
- a ``community``: every institution of that medical community;
- a pooling region of the settlement rules (``insurance/settlement.yaml`` ``regions``): every
  institution of every community that region budgets, in any year.

A code that names none of these resolves to no institution at all: a mistyped binding shows
nothing rather than everything. ``engine.auth.policy.audit_remit`` is the one caller, so every
route decides alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mappings.site import DEFAULTS_DIR
from mappings.sitefiles import SiteError, find_file, read_yaml

SETTLEMENT_FILE = "insurance/settlement.yaml"


def region_communities(site_dir: Path | str | None) -> dict[str, set[str]]:
    """Pooling region → the communities it budgets (any year). Read without the settlement's own
    checks: a remit must resolve even while the site has not yet set a required tier share."""
    folders = [DEFAULTS_DIR] + ([Path(site_dir)] if site_dir is not None else [])
    try:
        data = read_yaml(find_file(SETTLEMENT_FILE, folders)).data or {}
    except SiteError:
        return {}
    out: dict[str, set[str]] = {}
    for region, rdata in (data.get("regions") or {}).items():
        communities: set[str] = set()
        for year in ((rdata or {}).get("years") or {}).values():
            communities.update(str(c) for c in ((year or {}).get("budgets") or {}))
        out[str(region)] = communities
    return out


def kind_of(code: str, site: Any, site_dir: Path | str | None) -> str | None:
    """``institution``, ``community`` or ``region`` (checked in that order), None when unknown."""
    if site.institution(code) is not None:
        return "institution"
    if any(inst.community == code for inst in site.institutions.values()):
        return "community"
    if code in region_communities(site_dir):
        return "region"
    return None


def institutions_in_remit(code: str, site: Any, site_dir: Path | str | None) -> frozenset[str]:
    kind = kind_of(code, site, site_dir)
    if kind == "institution":
        return frozenset({code})
    if kind == "community":
        return frozenset(c for c, inst in site.institutions.items() if inst.community == code)
    if kind == "region":
        communities = region_communities(site_dir)[code]
        return frozenset(c for c, inst in site.institutions.items() if inst.community in communities)
    return frozenset()


# who a published figure reports on: the identifier systems of ``engine.insurance.indicators``
# (a report's ``reporter``, an alert Flag's ``subject``)
INSTITUTION_SYSTEM = "urn:huren:institution"
COMMUNITY_SYSTEM = "urn:huren:community"


def reported_on(who: Any, site: Any) -> frozenset[str] | None:
    """The institutions a published figure reports on, from the reference naming whom (an
    indicator MeasureReport's ``reporter``, an alert Flag's ``subject``): an institution, a
    community's every institution, the whole site when it names none (a site-wide report); None
    when it names something else (an ``Organization/...`` reference, another system): huren cannot
    place it, so no remit covers it."""
    if who is None:
        return frozenset(site.institutions)
    ident = who.get("identifier") if isinstance(who, dict) else None
    if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
        return None
    system, value = ident.get("system"), ident["value"]
    if system == INSTITUTION_SYSTEM:
        return frozenset({value})
    if system == COMMUNITY_SYSTEM:
        members = frozenset(c for c, inst in site.institutions.items() if inst.community == value)
        return members or None
    return None


def figures_within(who: Any, remit: frozenset[str], site: Any) -> bool:
    """Whether a published figure is the remit's: every institution it reports on is in it. As
    ``$evaluate-measure`` decides (``indicators.scopes``: a community only partly in a remit is
    reported per institution), a community's report only partly in the remit is not theirs --
    its figures and strata are the other institutions' too."""
    covered = reported_on(who, site)
    return covered is not None and covered <= remit
