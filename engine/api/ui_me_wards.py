"""The names of the wards the resident's visits were at, as the engine names a ward now (``/ui/me/wards``).

The resident's page showed a visit's place by its Encounter's display -- the PL-9 name the feed sent
with the visit -- and named a code-only display from ``wards.yaml`` in JavaScript: a second rule beside
the engine's one owner of a ward's current name, ``engine.wards.ward_name`` (the deployment's table
first, then the ward Location's current name, then the latest named check tally, then the code). A ward
the table names 心内科病区 was shown as the 心内科一病区 its PL-9 said, while the reports said 心内科病区
(ui36). The page now shows what this module answers, worked out by that rule.

For each place the caller's own visits name (the Encounters the caller may read: the same scoped
search as ``/fhir``, so a family member acting for a resident gets that resident's), the ward is
found above it (``partOf`` up to the Location of physical type ``wa``), and its institution and
point-of-care code are those whose key gives that ward's id (``adapters.convert.actors.ward_key``
under ``engine.repository.ids.deterministic_id``: the converter's own keying, so a code is never
guessed from a name). The room and bed words below the ward are the place's own (its name's last
parts, one per level under the ward: "301房 02床"). A place with no ward above it, or a ward whose key
is not found, is left out: the page shows it as the record states it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adapters.convert.actors import ward_key
from engine.recognition.reports import latest_ward_name
from engine.repository.ids import deterministic_id
from engine.repository.scoped import ScopedRepository
from engine.wards import CODE_MARK, current_ward_names, tables, ward_name

_PHYSICAL = "http://terminology.hl7.org/CodeSystem/location-physical-type"
_PAGE = 100
_LEVELS = 3  # a bed, its room, its ward


def _is_ward(loc: dict[str, Any]) -> bool:
    return any(c.get("system") == _PHYSICAL and c.get("code") == "wa"
               for c in (loc.get("physicalType") or {}).get("coding") or ())


def _places(repo: ScopedRepository) -> list[str]:
    """The Location references of every visit the caller may read, in order, once each."""
    refs: dict[str, None] = {}
    offset = 0
    while True:
        found = repo.search("Encounter", [("_count", str(_PAGE)), ("_offset", str(offset))])
        for enc in found.resources:
            for place in enc.get("location") or ():
                ref = (place.get("location") or {}).get("reference")
                if isinstance(ref, str) and ref.startswith("Location/"):
                    refs[ref] = None
        if not found.has_next or not found.resources:
            return list(refs)
        offset += len(found.resources)


def _key_of(ward_id: str, ward: dict[str, Any], institutions: Iterable[str]) -> tuple[str, str] | None:
    """(institution, point-of-care code) whose ward key gives ``ward_id``: the code is the ward's alias
    (PL-1 beside a PL-9 name) or its name (a ward sent by code alone is named by its code); the
    institution the sender's, the facility (PL-4) the sender or another member."""
    codes = [c for c in (*(ward.get("alias") or ()), ward.get("name")) if isinstance(c, str) and c]
    insts = list(institutions)
    for owner in insts:
        for code in codes:
            for facility in (owner, *(i for i in insts if i != owner)):
                if deterministic_id(owner, "Location", ward_key(facility, code)) == ward_id:
                    return owner, code
    return None


def visit_wards(engine: Any, repo: ScopedRepository) -> dict[str, dict[str, str]]:
    """``{"Location/<id>": {"name": "心内科病区", "code": "NEI", "rest": "301房 02床"}}`` for the places
    of the caller's visits: ``name`` is ``ward_name``'s answer ("" where it has no name but the code,
    which the page says in its own language as the hospital's code)."""
    refs = _places(repo)
    read_many = engine.repository.read_many
    chains: dict[str, list[tuple[str, dict[str, Any]]]] = {ref: [] for ref in refs}
    wanted = {ref: ref for ref in refs}  # place -> the Location to read next up its chain
    for _ in range(_LEVELS):
        if not wanted:
            break
        got = read_many([tuple(r.split("/", 1)) for r in dict.fromkeys(wanted.values())])  # type: ignore[misc]
        nxt: dict[str, str] = {}
        for place, ref in wanted.items():
            loc = got.get(tuple(ref.split("/", 1)))  # type: ignore[call-overload]
            if loc is None:
                continue
            chains[place].append((ref, loc))
            up = (loc.get("partOf") or {}).get("reference")
            if not _is_ward(loc) and isinstance(up, str) and up.startswith("Location/"):
                nxt[place] = up
        wanted = nxt
    institutions = list(engine.site.institutions)
    keyed: dict[str, tuple[tuple[str, str], int, str]] = {}  # place -> (inst, code), levels under the ward, its name
    keys: dict[str, tuple[str, str] | None] = {}  # ward -> its key (beds of one ward: one search)
    for place, chain in chains.items():
        if not chain or not _is_ward(chain[-1][1]):
            continue
        ward_ref, ward = chain[-1]
        if ward_ref not in keys:
            keys[ward_ref] = _key_of(ward_ref.split("/", 1)[1], ward, institutions)
        key = keys[ward_ref]
        if key is not None:
            keyed[place] = (key, len(chain) - 1, str(chain[0][1].get("name") or ""))
    if not keyed:
        return {}
    current = current_ward_names(read_many, [key for key, _, _ in keyed.values()])
    latest = latest_ward_name(engine.recognition.check_days)
    table = tables(engine.settings.site)
    out: dict[str, dict[str, str]] = {}
    for place, ((inst, code), below, name) in keyed.items():
        said = ward_name(table.get(inst, {}), inst, code, current, latest)
        parts = name.split(" ")
        rest = " ".join(parts[-below:]) if below and len(parts) > below else ""
        out[place] = {"name": "" if said == CODE_MARK.format(code=code) else said, "code": code, "rest": rest}
    return out
