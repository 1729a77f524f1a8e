"""The names of the wards the resident's visits were at, as the engine names a ward now (``/ui/me/wards``).

The resident's page showed a visit's place by its Encounter's display -- the PL-9 name the feed sent
with the visit -- and named a code-only display from ``wards.yaml`` in JavaScript: a second rule beside
the engine's one owner of a ward's current name, ``engine.wards.ward_name`` (the deployment's table
first, then the ward Location's current name, then the latest named check tally, then the code). A ward
the table names 心内科病区 was shown as the 心内科一病区 its PL-9 said, while the reports said 心内科病区
(ui36). The page now shows what this module answers, worked out by that rule.

For each place the caller's own visits name (the Encounters the caller may read: the same scoped
search as ``/fhir``, so a family member acting for a resident gets that resident's), the ward is
found above it (``partOf`` up to the Location of physical type ``wa``), and named by the whole key
the converter made it with (``_key_of``). The room and bed words below the ward are the place's own
(its name's last parts, one per level under the ward: "301房 02床"). A place with no ward above it, or
a ward the owner's rule cannot be asked about exactly, is left out: the page shows it as the record
states it.

The walk reads the caller's Encounters page by page as the search's own paging says (its next page
while it has one), and says what it read (``VisitWards.searches``, ``.locations``): the route notes
it in the audit trail as ``/fhir`` notes a search, so a family member's look at where the resident was
admitted is in her who-looked list (rv36e MED 2, mewards36)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from adapters.convert.actors import ward_key
from engine.recognition.reports import latest_ward_name
from engine.repository.ids import deterministic_id
from engine.repository.scoped import ScopedRepository
from engine.wards import CODE_MARK, current_ward_names, tables, ward_name

_PHYSICAL = "http://terminology.hl7.org/CodeSystem/location-physical-type"
_PAGE = 100
_LEVELS = 3  # a bed, its room, its ward


@dataclass
class VisitWards:
    """The answer, and what was read to make it (for the audit note: ``engine.api.ui_me``)."""

    wards: dict[str, dict[str, str]] = field(default_factory=dict)  # "Location/<id>" -> name, code, rest
    # each page of the caller's visits searched: its query (as ``/fhir`` notes a search's parameters)
    # and the Encounters it found
    searches: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    locations: list[dict[str, Any]] = field(default_factory=list)  # the places and wards read above them


def _is_ward(loc: dict[str, Any]) -> bool:
    return any(c.get("system") == _PHYSICAL and c.get("code") == "wa"
               for c in (loc.get("physicalType") or {}).get("coding") or ())


def _places(repo: ScopedRepository, seen: VisitWards) -> list[str]:
    """The Location references of every visit the caller may read, in order, once each. The pages are
    walked as the search's own paging says -- its next page (``offset + count``) while it has one --
    not by what a page shows: a page whose visits are all withheld from a family member (R, V) is
    empty and has a next page all the same, and a page shows fewer than it counted (rv36e LOW 1)."""
    refs: dict[str, None] = {}
    offset = 0
    while True:
        params = [("_count", str(_PAGE)), ("_offset", str(offset))]
        found = repo.search("Encounter", params)
        seen.searches.append(("Encounter?" + urlencode(params), found.resources))
        for enc in found.resources:
            for place in enc.get("location") or ():
                ref = (place.get("location") or {}).get("reference")
                if isinstance(ref, str) and ref.startswith("Location/"):
                    refs[ref] = None
        if not found.has_next or found.count <= 0:
            return list(refs)
        offset = found.offset + found.count


def _key_of(ward_id: str, ward: dict[str, Any], managers: dict[str, str]) -> tuple[str, str] | None:
    """(institution, point-of-care code) of a ward the owner's rule (``ward_name``,
    ``current_ward_names``) can be asked about exactly, else None.

    That rule keys a ward by (institution, code), which is the converter's whole key (``ward_key``,
    under the sending institution) only where the facility (PL-4) is the institution itself or
    empty. A ward at another member's facility, which the sender registered (PL-4 FNZYY in a county
    hospital's message), is (sender, FNZYY, NEI). Asking the rule about (sender, NEI) would give the
    sender's own NEI ward's name, and the resident would be told she was in a different hospital's
    ward (rv36e MED 1). Such a ward is left out, and the page shows the record's name.

    The key is read from the stored ward itself, as the converter writes it:
    - ``managingOrganization`` is the sender's Organization exactly when the facility is the sender
      (``actors._location``: ``managed``). ``managers`` maps each member's Organization reference to
      its code.
    - The code is the ward's ``alias`` (PL-1 beside a PL-9 name), or its ``name`` when the ward was
      sent by code alone.
    Then one hash confirms that the ward's id is that key's, so a Location written otherwise (a FHIR
    client's) is never named by a key it was not made with."""
    owner = managers.get(str((ward.get("managingOrganization") or {}).get("reference") or ""))
    if owner is None:
        return None
    for code in (*(ward.get("alias") or ()), ward.get("name")):
        if isinstance(code, str) and code and deterministic_id(owner, "Location", ward_key(owner, code)) == ward_id:
            return owner, code
    return None


def _managers(institutions: Iterable[str]) -> dict[str, str]:
    """Each member's Organization reference (the converter's: ``actors.organization``, keyed by its
    code under itself) -> its code."""
    return {f"Organization/{deterministic_id(code, 'Organization', code)}": code for code in institutions}


def visit_wards(engine: Any, repo: ScopedRepository) -> VisitWards:
    """``wards``: ``{"Location/<id>": {"name": "心内科病区", "code": "NEI", "rest": "301房 02床"}}`` for
    the places of the caller's visits: ``name`` is ``ward_name``'s answer ("" where it has no name but
    the code, which the page says in its own language as the hospital's code)."""
    seen = VisitWards()
    refs = _places(repo, seen)
    read_many = engine.repository.read_many
    chains: dict[str, list[tuple[str, dict[str, Any]]]] = {ref: [] for ref in refs}
    wanted = {ref: ref for ref in refs}  # place -> the Location to read next up its chain
    read: dict[str, dict[str, Any]] = {}
    for _ in range(_LEVELS):
        if not wanted:
            break
        got = read_many([tuple(r.split("/", 1)) for r in dict.fromkeys(wanted.values())])  # type: ignore[misc]
        nxt: dict[str, str] = {}
        for place, ref in wanted.items():
            loc = got.get(tuple(ref.split("/", 1)))  # type: ignore[call-overload]
            if loc is None:
                continue
            read[ref] = loc
            chains[place].append((ref, loc))
            up = (loc.get("partOf") or {}).get("reference")
            if not _is_ward(loc) and isinstance(up, str) and up.startswith("Location/"):
                nxt[place] = up
        wanted = nxt
    seen.locations = list(read.values())
    managers = _managers(engine.site.institutions)
    keyed: dict[str, tuple[tuple[str, str], int, str]] = {}  # place -> (inst, code), levels under the ward, its name
    keys: dict[str, tuple[str, str] | None] = {}  # ward -> its key (beds of one ward: found once)
    for place, chain in chains.items():
        if not chain or not _is_ward(chain[-1][1]):
            continue
        ward_ref, ward = chain[-1]
        if ward_ref not in keys:
            keys[ward_ref] = _key_of(ward_ref.split("/", 1)[1], ward, managers)
        key = keys[ward_ref]
        if key is not None:
            keyed[place] = (key, len(chain) - 1, str(chain[0][1].get("name") or ""))
    if not keyed:
        return seen
    current = current_ward_names(read_many, [key for key, _, _ in keyed.values()])
    latest = latest_ward_name(engine.recognition.check_days)
    table = tables(engine.settings.site)
    for place, ((inst, code), below, name) in keyed.items():
        said = ward_name(table.get(inst, {}), inst, code, current, latest)
        parts = name.split(" ")
        rest = " ".join(parts[-below:]) if below and len(parts) > below else ""
        seen.wards[place] = {"name": "" if said == CODE_MARK.format(code=code) else said, "code": code, "rest": rest}
    return seen
