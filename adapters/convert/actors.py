"""The people and places a message names: the sending Organization (MSH-4), Practitioners (XCN)
and Locations (PL), each kept once per message at a deterministic id.

A module of its own so that the data type converters (``datatypes.xcn``/``pl``) and the shared
resource builders (``common``) both depend on it, instead of on each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from adapters.convert import kept
from adapters.convert.context import Context
from adapters.convert.tables import vocabulary
from adapters.hl7v2.parser import Repetition
from adapters.hl7v2.senders import sender_institution
from engine.merge_rules import ideographic
from engine.wards import place_under_ward

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


# The identifier system of an Organization an OBX-23 names that is no member institution (the value:
# the sender's code, "|", and the organisation's XON-10, else its name): recognition reads a result
# so performed as of an institution whose quality control huren does not know (never recognisable).
PERFORMING_SYSTEM = "urn:huren:performing-organization"


UNDECLARED_SYSTEM = "urn:huren:undeclared-performer"  # engine.recognition.facts reads it


def declared_performers(ctx: Context) -> frozenset[str]:
    """The member institutions the site declares as performing the sender's results (senders.yaml
    ``performers``: the lead's decision, twenty-eighth round): only they lend a result their QC."""
    table = (ctx.site.tables.get("senders") or {}).get("performers") or {}
    return frozenset(str(c) for c in table.get(ctx.institution.code) or ())


def performing_organization(rep: Repetition, ctx: Context) -> dict[str, Any] | None:
    """OBX-23 (XON: 1 name, 3 id (v2.3), 6 assigning authority, 10 identifier) → the reference of
    the Organization that performed the test, as the v2-to-FHIR IG maps it; None when OBX-23 is empty.

    The institution whose QC counts for recognition is the one that performed the test (DOMAIN.md):
    the XON names a member institution as senders are named (``senders.yaml`` ``facility_aliases``,
    ``adapters.hl7v2.senders``) by its identifier (XON-10, else XON-3), else by its name; XON-6 is
    only the identifier's assigning authority (kept as ``identifier.assigner`` of an unknown one). The reference carries the identifier,
    so recognition reads the institution without reading the Organization back (it may not be
    stored yet when the batch is checked). Worked out once per distinct XON per message (a LIS may
    fill OBX-23 on every result; each result and its report read it): each caller gets a copy."""
    raw = rep.raw
    if raw in ctx.performers:
        hit = ctx.performers[raw]
        return None if hit is None else {**hit, "identifier": dict(hit["identifier"])}
    made = ctx.performers[raw] = _performing_organization(rep, ctx)
    return None if made is None else {**made, "identifier": dict(made["identifier"])}


def _performing_organization(rep: Repetition, ctx: Context) -> dict[str, Any] | None:
    name, ident = rep.comp(1).strip(), (rep.comp(10) or rep.comp(3)).strip()
    # XON-6 is the assigning authority of the identifier (the IG: Organization.identifier.assigner),
    # never the organisation itself: a lab named with only the hospital as authority is not the hospital
    authority = rep.comp(6).strip()  # HD-1 (namespace id), the first subcomponent
    if not (name or ident or authority):
        return None
    site = ctx.site
    for candidate in (ident, name):
        if not candidate:
            continue
        code = sender_institution(candidate, "", "", site)
        inst = site.institution(code)
        if inst is None:
            continue
        if code == ctx.institution.code:
            ref = organization(ctx)
        elif code not in declared_performers(ctx):
            # a member the site does not declare as performing this sender's results: named (its
            # Organization), but read by recognition as no institution with QC (``facts``)
            org = {"resourceType": "Organization", "identifier": [{"system": INSTITUTION_SYSTEM, "value": code}],
                   "active": True, "name": inst.name}
            ref = {"reference": ctx.put(org, code, owner=code)["reference"], "display": inst.name}
            return {**ref, "identifier": {"system": UNDECLARED_SYSTEM, "value": f"{ctx.institution.code}|{code}"}}
        else:  # at the id the member's own messages make (``organization``): one Organization
            org = {"resourceType": "Organization", "identifier": [{"system": INSTITUTION_SYSTEM, "value": code}],
                   "active": True, "name": inst.name}
            ref = {"reference": ctx.put(org, code, owner=code)["reference"], "display": inst.name}
        return {**ref, "identifier": {"system": INSTITUTION_SYSTEM, "value": code}}
    value = f"{ctx.institution.code}|{ident or name or '^' + authority}"
    unknown: Resource = {"resourceType": "Organization", "identifier": [{"system": PERFORMING_SYSTEM, "value": value}]}
    if authority and ident:
        unknown["identifier"][0]["assigner"] = {"display": authority}
    if name:
        unknown["name"] = name
    ref = ctx.put(unknown, "OBX-23|" + value)
    out = {"reference": ref["reference"], "identifier": {"system": PERFORMING_SYSTEM, "value": value}}
    if name:
        out["display"] = name
    return out


class _Copies:
    """What one kind of field text makes, remembered per (institution, text, delimiters): the
    doctors and wards of a hospital are named in message after message the same to the character,
    so from the second time a text comes its resource is a compiled copy (a fresh tree each call,
    ``engine.copier``) of what its first conversion made, with what else that conversion gave
    (key, display, ...). A text met once is only marked (a one-off costs no compiled copier); a
    text that names nothing is remembered as such. At most ``limit`` texts (then forgotten)."""

    __slots__ = ("_made", "_limit")

    def __init__(self, limit: int = 4096) -> None:
        # memo -> (copier or None when it names nothing, the rest), or True: met once
        self._made: dict[tuple[Any, ...], tuple[Callable[[], Resource] | None, tuple[Any, ...]] | bool] = {}
        self._limit = limit

    def get(self, memo: tuple[Any, ...], build: Callable[[], tuple[Resource, tuple[Any, ...]] | None],
            ) -> tuple[Resource, tuple[Any, ...]] | None:
        """The resource ``memo``'s text makes and the rest, from a copy or from ``build()``."""
        made = self._made.get(memo)
        if type(made) is tuple:
            make, rest = made
            return None if make is None else (make(), rest)
        parts = build()
        if len(self._made) >= self._limit:
            self._made.clear()
        if parts is None:
            self._made[memo] = (None, ())
        elif made is None:
            self._made[memo] = True
        else:
            from adapters.convert.engine import copier  # (engine -> datatypes -> this module)

            self._made[memo] = (copier(parts[0]), parts[1])
        return parts


_PRACTITIONERS = _Copies()


def practitioner(rep: Repetition, ctx: Context) -> dict[str, Any] | None:
    """XCN → Practitioner (keyed by XCN-1 id, else by name) → Reference with display.

    The Practitioner is a function of the XCN's text, its delimiters and the institution: from
    the second time an XCN comes, a compiled copy (``_Copies``) instead of ~3-4 us of component
    reads and joins."""
    memo = (ctx.code, rep.raw, rep._enc.key)
    made = _PRACTITIONERS.get(memo, lambda: _practitioner(rep, ctx))
    if made is None:
        return None
    res, (key, display) = made
    ref: dict[str, Any] = ctx.put(res, key)
    kept.mark(ctx, ref["reference"], res, ("Practitioner", *memo))
    if display:
        ref["display"] = display
    return ref


def _practitioner(rep: Repetition, ctx: Context) -> tuple[Resource, tuple[str, str]] | None:
    """The Practitioner an XCN names, and its key and display; None when it names nobody."""
    ident = rep.comp(1).strip()
    family, given = rep.comp(2, 1).strip(), rep.comp(3).strip()
    if not ident and not family and not given:
        return None
    name: dict[str, Any] = {}
    if family:
        name["family"] = family
    if given:
        name["given"] = [given]
    display = (family + given) if ideographic(family + given) else " ".join(p for p in (given, family) if p)
    if display:
        name["text"] = display
    res: Resource = {"resourceType": "Practitioner"}
    # staff ids are local to the institution unless XCN-9 names another authority, so one doctor
    # sent with and without XCN-9 is one Practitioner; another authority's system is the one rule of
    # CX-4 and EI (``datatypes.hd_system``): its OID (XCN-9.2/9.3, ISO) when it gives one, else its name
    authority = rep.comp(9, 1).strip() or ctx.code
    if ident:
        from adapters.convert.datatypes import hd_system  # (datatypes imports this module)

        system = (
            f"urn:huren:practitioner:{ctx.urn_code}"
            if authority == ctx.code
            else hd_system(authority, rep.comp(9, 2).strip(), rep.comp(9, 3).strip())
        )
        res["identifier"] = [{"system": system, "value": ident}]
    if name:
        res["name"] = [name]
    key = f"id|{authority}|{ident}" if ident else f"name|{family}|{given}"
    return res, (key, display)


_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"


# a Location is copied without its managing Organization (the sender's, added in its place at
# each use: its putting decides the Bundle's order)
_LOCATIONS = _Copies()


def location(rep: Repetition, ctx: Context) -> dict[str, Any] | None:
    """PL → Location keyed by facility + point of care + room + bed → Reference with display.

    A bed's Location is ``partOf`` its room's, a room's ``partOf`` its ward's (the point of care):
    each the Location the same PL cut to that level makes, under the key such a PL has (its
    ward ``loc|FAC|NEI||``, its room ``loc|FAC|NEI|301|``), so a ward sent alone and the ward
    above a bed are one Location.

    A ward, room or bed is named in message after message the same to the character: as for a
    Practitioner, from the second time a PL comes from an institution its Location is a compiled
    copy of what its first conversion made (``_Copies``).

    A PL without PL-9 states no name: the name its codes make (XYK, XYK 301房 02床) is the
    converter's assumption and fills only a Location stored without one (``Said.assumed``). A later
    message sending the ward by code alone renamed 血液科病区 "XYK" (deptfix34's finding; locfix34);
    a name PL-9 states is the sender's word and replaces the stored one (a rename: ``_history``
    keeps the old)."""
    memo = (ctx.code, rep.raw, rep._enc.key)
    made = _LOCATIONS.get(memo, lambda: _location(rep, ctx))
    if made is None:
        return None
    res, (key, display, managed, parents, stated) = made
    above: dict[str, str] | None = None
    for level, (pkey, name, kind) in enumerate(parents):
        part: Resource = {"resourceType": "Location", "status": "active", "mode": "instance", "name": name}
        if kind is _WARD and "alias" in res:
            part["alias"] = list(res["alias"])  # the point of care's code, its name being PL-9's
        part["physicalType"] = {"coding": [{"system": _PHYSICAL_TYPE, "code": kind[0], "display": kind[1]}]}
        if above is not None:
            part["partOf"] = {"reference": above["reference"]}
        if managed:
            part["managingOrganization"] = organization(ctx)
        above = ctx.put(part, pkey)
        _named(ctx, above["reference"], part, stated)
        kept.mark(ctx, above["reference"], part, ("Location", *memo, ctx.institution.name, level))
    if above is not None:
        res["partOf"] = {"reference": above["reference"]}
    if managed:
        res["managingOrganization"] = organization(ctx)
    ref: dict[str, Any] = ctx.put(res, key)
    _named(ctx, ref["reference"], res, stated)
    # (the PL's text and the institution make the Location: validated by its text from the second)
    kept.mark(ctx, ref["reference"], res, ("Location", *memo, ctx.institution.name))
    return {**ref, "display": display}


_WARD, _ROOM, _BED = ("wa", "Ward"), ("ro", "Room"), ("bd", "Bed")


def ward_key(facility: str, care: str) -> str:
    """The key of a ward's Location (its id: ``Context.put`` under the sending institution): the
    facility (PL-4, else the sender) and the point of care (PL-1), room and bed empty -- the ward a PL
    sends alone and the one above its beds. ``engine.wards`` reads a ward's current name by it."""
    return f"loc|{facility}|{care}||"


def _named(ctx: Context, ref: str, made: Resource, stated: bool) -> None:
    """Whether the message states the name of the Location just put at ``ref`` (``made``): a PL
    without PL-9 only assumes it (``Context.assumed``: it fills only a Location stored without a
    name). Where another PL of the message put the Location first with a name it only assumed (PV1-3
    XYK^301, then PV1-6 XYK^302^01 with PL-9), the stated name takes its place: the message does
    state it."""
    held = ctx.resources[ref]
    if held is made:  # the message's first PL of this place
        if not stated:
            ctx.assumed(held, "name")
        return
    if not stated:  # (an earlier PL of the message put it: its name assumed already, or stated)
        return
    guessed = [r for r, element in ctx.assumptions if element == "name" and r.get("id") == held["id"]
               and r.get("resourceType") == "Location"]
    if guessed:
        held["name"] = made["name"]
        for r in guessed:
            ctx.unsay(r, "name")


def _said(part: str, words: dict[str, Any], kind: str) -> str:
    """A PL part in words: a room sent as a code ``301`` is 301房, a bed ``02`` 02床, a building ``3``
    3号楼, a floor ``5`` 5层 (``location_parts`` in vocabulary.yaml); one already in words (301病房,
    住院部) is kept as sent. Empty stays empty."""
    pattern = words.get(kind)
    return pattern.format(part) if part and pattern and not ideographic(part) else part


def _location(rep: Repetition, ctx: Context,
              ) -> tuple[Resource, tuple[str, str, bool, tuple[tuple[str, str, tuple[str, str]], ...], bool]] | None:
    """The Location a PL names (without its managing Organization or ``partOf``), its key, its
    display, whether the sender manages it, the Locations above it (key, name, physical type;
    the ward first) and whether PL-9 states their names; None when it names no place.

    Its name says what each part is (HL7 v2.5.1 2A.53 PL: 1 point of care, 2 room, 3 bed, 4 facility,
    7 building, 8 floor, 9 description): 心内科病区 301房 02床 -- PL-9's name for the ward, else the
    point of care as sent (a ward's code: a page names it from the site's ward table), then room and
    bed in words; building and floor (3号楼 5层) in ``description``. Before the thirty-third round the
    parts were joined bare ("NEI 301 02") and which number was the room was lost. The key is the
    PL's codes as before: a Location means the same place whatever its name says."""
    care, room, bed = rep.comp(1).strip(), rep.comp(2).strip(), rep.comp(3).strip()
    facility = rep.comp(4, 1).strip()
    building, floor, description = rep.comp(7).strip(), rep.comp(8).strip(), rep.comp(9).strip()
    if not (care or room or bed or description):
        return None
    words = vocabulary(ctx.site, "location_parts")
    ward, room_said, bed_said = description or care, _said(room, words, "room"), _said(bed, words, "bed")
    display = " ".join(p for p in (ward, room_said, bed_said) if p)
    res: Resource = {"resourceType": "Location", "status": "active", "mode": "instance", "name": display}
    if description and care:
        res["alias"] = [care]
    kind = _BED if bed else _ROOM if room else _WARD
    res["physicalType"] = {"coding": [{"system": _PHYSICAL_TYPE, "code": kind[0], "display": kind[1]}]}
    where = " ".join(p for p in (_said(building, words, "building"), _said(floor, words, "floor")) if p)
    if where:
        res["description"] = where
    managed = not facility or facility == ctx.code
    place = f"loc|{facility or ctx.code}"
    parents: list[tuple[str, str, tuple[str, str]]] = []
    if care and (room or bed):  # the ward a room or bed is in (a PL without PL-1 names no ward)
        parents.append((ward_key(facility or ctx.code, care), ward, _WARD))
    if room and bed:
        parents.append((f"{place}|{care}|{room}|", " ".join(p for p in (ward, room_said) if p), _ROOM))
    return res, (f"{place}|{care}|{room}|{bed}", display, managed, tuple(parents), bool(description))




def settle_ward_names(conversion: Any, read_many: Any, earlier: Sequence[Any] = ()) -> list[int]:
    """What a PL sent without PL-9 names, as the store holds the place (wardfix35; rvid35 LOW 3): a
    Location whose name the message only assumed (``_named``) is displayed by the name stored for it,
    a stored room's or bed's under its ward's current name (``engine.wards.place_under_ward``, link36);
    a new room or bed of a ward stored with a name (血液科病区, or stated by another PL of the message:
    an A02's PV1-6) is named from that name, its room and bed in words after it -- "血液科病区 302房 05床",
    not "RWA 302房 05床" -- the rule locfix34 applies to a stored bed, for the next bed (an A02 to it, an
    ORU making the visit). Its name stays only assumed (a stored one stands); the references of the
    message's visits and appointments show it (``Encounter.location``: the resident page's ward).

    ``conversion``: a ``Conversion``; ``read_many``: the repository's; ``earlier``: the batch's earlier
    conversions, settled and not yet written -- "stored" is the store as they leave it (a name one
    states replaces, an assumed one only fills). One read of the message's assumed Locations and their
    wards. Returns the positions in ``earlier`` read."""
    made, said = conversion.by_reference, conversion.said
    assumed = [ref for ref, s in said.items()
               if ref[0] == "L" and ref.startswith("Location/") and "name" in s.assumed and ref in made]
    if not assumed:
        return []
    above: dict[str, str | None] = {}
    ward_of = {ref: _ward_above(ref, made, above) for ref in assumed}
    wanted = list(dict.fromkeys([*assumed, *(w for w in ward_of.values() if w is not None)]))
    stored = read_many([tuple(ref.split("/", 1)) for ref in wanted])
    leaned: set[int] = set()
    names = {ref: _name_as_left(ref, stored.get(tuple(ref.split("/", 1))), earlier, leaned) for ref in wanted}
    shown: dict[str, str] = {}
    for ref in assumed:
        res, ward, stored = made[ref], ward_of[ref], names.get(ref)
        named = None
        if ward is not None and ward != ref:
            held = made[ward]
            told = said.get(ward)
            only_code = told is not None and "name" in told.assumed  # the message gave the ward no PL-9 name
            ward_name = names.get(ward) if only_code else held.get("name")
            care = next((a for a in held.get("alias") or () if a), None) or (held.get("name") if only_code else None)
            name = res.get("name")
            if care and isinstance(name, str):  # the one rule: ``engine.wards.place_under_ward``
                named = place_under_ward(name, care, ward_name, stored)
        if named is not None and stored is None:  # a new room or bed: named from its ward
            res["name"] = named
            conversion.planned.pop(ref, None)
        if named is not None or stored:  # else a stored name stands, and is shown
            shown[ref] = named or stored  # type: ignore[assignment]
    if shown:  # (a display is a string as before: a plan's validation still holds)
        for ref, res in made.items():
            if ref[0] == "E" and ref.startswith("Encounter/"):
                _shown(res.get("location"), "location", shown)
            elif ref[0] == "A" and ref.startswith("Appointment/"):
                _shown(res.get("participant"), "actor", shown)
        conversion._bundle = None
    return sorted(leaned)


def _ward_above(ref: str, made: dict[str, Resource], above: dict[str, str | None]) -> str | None:
    """The ward (physical type ``wa``) ``ref`` is, or is ``partOf``, among the message's Locations
    (``above``: the answers so far, a bed's room and ward met once)."""
    if ref in above:
        return above[ref]
    above[ref] = None  # (a cycle answers None)
    loc = made.get(ref)
    if loc is None:
        return None
    kinds = (loc.get("physicalType") or {}).get("coding") or ()
    if kinds and kinds[0].get("code") == _WARD[0]:
        above[ref] = ref
    else:
        up = (loc.get("partOf") or {}).get("reference")
        above[ref] = _ward_above(up, made, above) if isinstance(up, str) else None
    return above[ref]


def _name_as_left(ref: str, was: Resource | None, earlier: Sequence[Any], leaned: set[int]) -> str | None:
    """The name of Location ``ref`` as stored (``was``) and as the batch's earlier conversions leave it:
    a name one states replaces, one it only assumes fills a Location with none."""
    name = was.get("name") if was is not None else None
    for i, c in enumerate(earlier):
        res = c.by_reference.get(ref)
        if res is None or not res.get("name"):
            continue
        leaned.add(i)
        s = c.said.get(ref)
        if name is None or s is None or "name" not in s.assumed:
            name = res["name"]
    return name if isinstance(name, str) and name else None


def _shown(entries: Any, key: str, shown: dict[str, str]) -> None:
    """Each entry's reference at ``key`` (an Encounter's ``location[].location``, an Appointment's
    ``participant[].actor``) to a Location of ``shown`` takes its name as display."""
    for entry in entries if isinstance(entries, list) else ():
        ref = entry.get(key) if isinstance(entry, dict) else None
        if isinstance(ref, dict) and "display" in ref and ref.get("reference") in shown:
            ref["display"] = shown[ref["reference"]]
