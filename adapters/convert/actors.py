"""The people and places a message names: the sending Organization (MSH-4), Practitioners (XCN)
and Locations (PL), each kept once per message at a deterministic id.

A module of its own so that the data type converters (``datatypes.xcn``/``pl``) and the shared
resource builders (``common``) both depend on it, instead of on each other.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from adapters.convert import kept
from adapters.convert.context import Context
from adapters.hl7v2.parser import Repetition
from mappings.site import urn_part

Resource = dict[str, Any]

INSTITUTION_SYSTEM = "urn:huren:institution"


def organization(ctx: Context) -> dict[str, str]:
    """The sending facility (MSH-4) as the Organization that performs every result. Built once
    per message (every Patient, Encounter, result and the Provenance name it; putting the same
    resource again changed nothing)."""
    inst = ctx.institution
    ref = ctx.organization
    if ref is None:
        org = {
            "resourceType": "Organization",
            "identifier": [{"system": INSTITUTION_SYSTEM, "value": inst.code}],
            "active": True,
            "name": inst.name,
        }
        ref = ctx.organization = ctx.put(org, inst.code)["reference"]
        kept.mark(ctx, ref, org, ("Organization", inst.code, inst.name))
    return {"reference": ref, "display": inst.name}


# (institution, the XCN's text, the delimiters) -> how its Practitioner is made (``_Made``), or
# True: met once (a one-off XCN costs no compiled copier)
_PRACTITIONERS: dict[tuple[str, ...], _Made | bool] = {}
_PRACTITIONERS_LIMIT = 4096


class _Made:
    """An XCN's Practitioner as a function of its text: a compiled copier of the resource (a
    fresh tree each call, ``engine.copier``), its key and its display; ``None`` parts for an XCN
    that names nobody."""

    __slots__ = ("make", "key", "display")

    def __init__(self, make: Callable[[], Resource] | None, key: str, display: str) -> None:
        self.make, self.key, self.display = make, key, display


def practitioner(rep: Repetition, ctx: Context) -> dict[str, Any] | None:
    """XCN → Practitioner (keyed by XCN-1 id, else by name) → Reference with display.

    The Practitioner is a function of the XCN's text, its delimiters and the institution (the
    doctors of a hospital are named in message after message, the same to the character): from
    the second time an XCN comes, the resource is a compiled copy of what its first conversion
    made, instead of ~3-4 us of component reads and joins."""
    enc = rep._enc
    memo = (ctx.code, rep.raw, enc.key)
    made = _PRACTITIONERS.get(memo)
    if type(made) is not _Made:
        parts = _practitioner(rep, ctx)
        if len(_PRACTITIONERS) >= _PRACTITIONERS_LIMIT:
            _PRACTITIONERS.clear()
        if parts is None:
            _PRACTITIONERS[memo] = _Made(None, "", "")
            return None
        res, key, display = parts
        if made is None:  # met once: only marked
            _PRACTITIONERS[memo] = True
        else:
            from adapters.convert.engine import copier  # (engine -> datatypes -> this module)

            _PRACTITIONERS[memo] = _Made(copier(res), key, display)
    else:
        if made.make is None:
            return None
        res, key, display = made.make(), made.key, made.display
    ref: dict[str, Any] = ctx.put(res, key)
    kept.mark(ctx, ref["reference"], res, ("Practitioner", *memo))
    if display:
        ref["display"] = display
    return ref


def _practitioner(rep: Repetition, ctx: Context) -> tuple[Resource, str, str] | None:
    """The Practitioner an XCN names, its key and display; None when it names nobody."""
    ident = rep.comp(1).strip()
    family, given = rep.comp(2, 1).strip(), rep.comp(3).strip()
    if not ident and not family and not given:
        return None
    name: dict[str, Any] = {}
    if family:
        name["family"] = family
    if given:
        name["given"] = [given]
    display = (family + given) if _cjk(family + given) else " ".join(p for p in (given, family) if p)
    if display:
        name["text"] = display
    res: Resource = {"resourceType": "Practitioner"}
    # staff ids are local to the institution unless XCN-9 names another authority, so one doctor
    # sent with and without XCN-9 is one Practitioner
    authority = rep.comp(9, 1).strip() or ctx.code
    if ident:
        system = (
            f"urn:huren:practitioner:{ctx.urn_code}"
            if authority == ctx.code
            else f"urn:huren:id:{urn_part(authority)}"
        )
        res["identifier"] = [{"system": system, "value": ident}]
    if name:
        res["name"] = [name]
    key = f"id|{authority}|{ident}" if ident else f"name|{family}|{given}"
    return res, key, display


_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"


# (institution, the PL's text, the delimiters) -> how its Location is made (``_Place``), or True:
# met once
_LOCATIONS: dict[tuple[str, ...], _Place | bool] = {}
_LOCATIONS_LIMIT = 4096


class _Place:
    """A PL's Location as a function of its text: a compiled copier of the resource without its
    managing Organization (the sender's, added in its place at each use: its putting decides the
    Bundle's order), its key, display, and whether the sender manages it; ``make`` None for a PL
    that names no place."""

    __slots__ = ("make", "key", "display", "managed")

    def __init__(self, make: Callable[[], Resource] | None, key: str, display: str, managed: bool) -> None:
        self.make, self.key, self.display, self.managed = make, key, display, managed


def location(rep: Repetition, ctx: Context) -> dict[str, Any] | None:
    """PL → Location keyed by facility + point of care + room + bed → Reference with display.

    A ward, room or bed is named in message after message the same to the character: as for a
    Practitioner, from the second time a PL comes from an institution its Location is a compiled
    copy of what its first conversion made."""
    enc = rep._enc
    memo = (ctx.code, rep.raw, enc.key)
    made = _LOCATIONS.get(memo)
    if type(made) is not _Place:
        parts = _location(rep, ctx)
        if len(_LOCATIONS) >= _LOCATIONS_LIMIT:
            _LOCATIONS.clear()
        if parts is None:
            _LOCATIONS[memo] = _Place(None, "", "", False)
            return None
        res, key, display, managed = parts
        if made is None:  # met once: only marked
            _LOCATIONS[memo] = True
        else:
            from adapters.convert.engine import copier  # (engine -> datatypes -> this module)

            _LOCATIONS[memo] = _Place(copier(res), key, display, managed)
    else:
        if made.make is None:
            return None
        res, key, display, managed = made.make(), made.key, made.display, made.managed
    if managed:
        res["managingOrganization"] = organization(ctx)
    ref: dict[str, Any] = ctx.put(res, key)
    # (the PL's text and the institution make the Location: validated by its text from the second)
    kept.mark(ctx, ref["reference"], res, ("Location", *memo, ctx.institution.name))
    return {**ref, "display": display}


def _location(rep: Repetition, ctx: Context) -> tuple[Resource, str, str, bool] | None:
    """The Location a PL names (without its managing Organization), its key, its display and
    whether the sender manages it; None when it names no place."""
    care, room, bed = rep.comp(1).strip(), rep.comp(2).strip(), rep.comp(3).strip()
    facility = rep.comp(4, 1).strip()
    building, floor, description = rep.comp(7).strip(), rep.comp(8).strip(), rep.comp(9).strip()
    if not (care or room or bed or description):
        return None
    display = " ".join(p for p in (description or care, room, bed) if p)
    res: Resource = {"resourceType": "Location", "status": "active", "mode": "instance", "name": display}
    if description and care:
        res["alias"] = [care]
    kind = ("bd", "Bed") if bed else ("ro", "Room") if room else ("wa", "Ward")
    res["physicalType"] = {"coding": [{"system": _PHYSICAL_TYPE, "code": kind[0], "display": kind[1]}]}
    where = " ".join(p for p in (building, floor) if p)
    if where:
        res["description"] = where
    managed = not facility or facility == ctx.code
    return res, f"loc|{facility or ctx.code}|{care}|{room}|{bed}", display, managed


_CJK = re.compile("[\u3400-\u9fff]")


def _cjk(text: str) -> bool:
    """Whether ``text`` holds a CJK ideograph (U+3400-U+9FFF): one search, not a loop per character."""
    return _CJK.search(text) is not None
