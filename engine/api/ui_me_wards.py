"""The names of the wards the resident's visits were at, as the engine names a ward now (``/ui/me/wards``).

The resident's page showed a visit's place by its Encounter's display -- the PL-9 name the feed sent
with the visit -- and named a code-only display from ``wards.yaml`` in JavaScript: a second rule beside
the engine's one owner of a ward's current name, ``engine.wards.ward_name`` (the deployment's table
first, then the ward Location's current name, then the latest named check tally, then the code). A ward
the table names 心内科病区 was shown as the 心内科一病区 its PL-9 said, while the reports said 心内科病区
(ui36). The page now shows what this module answers, worked out by that rule.

For each place the caller's own visits name (the Encounters the caller may read: the same scoped
search as ``/fhir``, so a family member acting for a resident gets that resident's), the ward is
found above it and keyed by the whole key the converter made it with -- its institution read from
its managing Organization's ``urn:huren:institution`` identifier -- by the one reader of a place's
ward, ``engine.wards`` (``wards_of``, ``ward_key_of``: the recognition's department of a visit walks
the same way, wards37). The room and bed words below the ward are the place's own
(its name's last parts, one per level under the ward: "301房 02床"). A place with no ward above it, or
a ward the owner's rule cannot be asked about exactly, is left out: the page shows it as the record
states it.

The walk reads the caller's Encounters page by page as the search's own paging says (its next page
while it has one), and says what it read (``VisitWards.searches``, ``.locations``): the route notes
it in the audit trail as ``/fhir`` notes a search, so a family member's look at where the resident was
admitted is in her who-looked list (rv36e MED 2, mewards36)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from engine.recognition.reports import latest_ward_name
from engine.repository.scoped import ScopedRepository
from engine.wards import CODE_MARK, WardKey, current_ward_names, tables, ward_key_of, ward_name, wards_of

_PAGE = 100


@dataclass
class VisitWards:
    """The answer, and what was read to make it (for the audit note: ``engine.api.ui_me``)."""

    wards: dict[str, dict[str, str]] = field(default_factory=dict)  # "Location/<id>" -> name, code, rest
    # each page of the caller's visits searched: its query (as ``/fhir`` notes a search's parameters)
    # and the Encounters it found
    searches: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    locations: list[dict[str, Any]] = field(default_factory=list)  # the places and wards read above them


def _places(repo: ScopedRepository, seen: VisitWards) -> dict[str, list[dict[str, Any]]]:
    """The Location references of every visit the caller may read, in order, once each, with the
    ``serviceProvider`` of the visits naming each (the sender whose record it is). The pages are
    walked as the search's own paging says -- its next page (``offset + count``) while it has one --
    not by what a page shows: a page whose visits are all withheld from a family member (R, V) is
    empty and has a next page all the same, and a page shows fewer than it counted (rv36e LOW 1)."""
    refs: dict[str, list[dict[str, Any]]] = {}
    offset = 0
    while True:
        params = [("_count", str(_PAGE)), ("_offset", str(offset))]
        found = repo.search("Encounter", params)
        seen.searches.append(("Encounter?" + urlencode(params), found.resources))
        for enc in found.resources:
            provider = enc.get("serviceProvider")
            for place in enc.get("location") or ():
                ref = (place.get("location") or {}).get("reference")
                if isinstance(ref, str) and ref.startswith("Location/"):
                    providers = refs.setdefault(ref, [])
                    if isinstance(provider, dict) and provider not in providers:
                        providers.append(provider)
        if not found.has_next or found.count <= 0:
            return refs
        offset = found.offset + found.count


def visit_wards(engine: Any, repo: ScopedRepository) -> VisitWards:
    """``wards``: ``{"Location/<id>": {"name": "心内科病区", "code": "NEI", "rest": "301房 02床"}}`` for
    the places of the caller's visits: ``name`` is ``ward_name``'s answer ("" where it has no name but
    the code, which the page says in its own language as the hospital's code); ``at``, only for a ward
    at another member's facility than the hospital that registered the visit: that member's name
    (阜宁县中医院), for the page shows the visit under the registering hospital's name and the ward's
    own name (脑病科病区) no longer says whose it is, as the record's PL-9 (中医院脑病科病区) did."""
    seen = VisitWards()
    read_many = engine.repository.read_many
    places = _places(repo, seen)
    found = wards_of(read_many, places)
    seen.locations = list({ref: loc for chain in found.values() for ref, loc in chain.chain}.values())
    members = engine.site.institutions
    organization = engine.recognition.facts.organization_code

    def institution(reference: dict[str, Any]) -> str | None:
        code = organization(reference)  # its urn:huren:institution identifier, the project's one reader
        return code if code in members else None

    keyed: dict[str, tuple[WardKey, int, str]] = {}  # place -> its ward's key, levels under the ward, its name
    keys: dict[str, WardKey | None] = {}  # ward -> its key (beds of one ward: found once)
    held: dict[tuple[str, str], dict[str, Any]] = {}  # key -> the ward Location the caller's records name
    for place, chain in found.items():
        if chain.ward is None:
            continue
        ward_ref, ward = chain.ward
        if ward_ref not in keys:
            senders = [code for p in places[place] if (code := institution(p))]
            key = keys[ward_ref] = ward_key_of(ward_ref, ward, institution, senders, members)
            if key is not None:
                held.setdefault(key[:2], ward)
        key = keys[ward_ref]
        if key is not None:
            keyed[place] = (key, chain.below, str(chain.place.get("name") or ""))
    if not keyed:
        return seen
    current = current_ward_names(read_many, [key[:2] for key, _, _ in keyed.values()], held)
    latest = latest_ward_name(engine.recognition.check_days)
    table = tables(engine.settings.site)
    for place, ((inst, code, elsewhere, _), below, name) in keyed.items():
        said = ward_name(table.get(inst, {}), inst, code, current, latest)
        parts = name.split(" ")
        rest = " ".join(parts[-below:]) if below and len(parts) > below else ""
        seen.wards[place] = {"name": "" if said == CODE_MARK.format(code=code) else said, "code": code, "rest": rest}
        if elsewhere:  # whose ward it is: the visit's hospital is the one that registered it (wards37)
            seen.wards[place]["at"] = getattr(members.get(inst), "name", "") or inst
    return seen
