"""The site's names for wards, departments and rooms sent by code only (``mappings/wards.yaml``,
each institution of ``HUREN_SITE/wards.yaml`` replacing its table), for the resident's page
(``engine.api.ui_me``) and the recognition rate by department (``engine.recognition.reports``).
It sits below both layers (read-only site data, no HTTP; the store only through the ``read_many``
a report hands it) so the reports need not import the API layer. It is the one owner of a ward's
current name for reports (``ward_name``, wardfix35), of the name a room or bed a message names by
its codes alone is shown by under its ward (``place_under_ward``, link36), and of which ward a stored
place is in and by which key its name is asked (``place_ward``/``wards_of``, ``ward_key_of``: the
recognition's department of a visit and the resident page's wards, wards37).

A PV1-3 point of care sent without its PL-9 name is stored as its codes (Location.name "NEI 301
02", the converter's rule); a person reads a name. The page names the code from this table for the
institution the visit is at, and shows the codes as sent where the table does not list them: a
name is never guessed. The file is read again when it changes (its modification time); a file that
does not read is logged and the last good table stays in force (display words never take a page
down), as for the staff pages' words (``mappings.pagewords``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from engine.merge_rules import ideographic
from mappings.sitefiles import SiteError, check, read_yaml

log = logging.getLogger("huren.site")

FILE = "wards.yaml"
SHIPPED = Path(__file__).resolve().parents[1] / "mappings" / FILE
_TABLE = {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}}
SCHEMA: dict[str, Any] = {"type": ["object", "null"], "additionalProperties": _TABLE}


class WardNames:
    """The ward tables in force, per institution code."""

    def __init__(self, site_dir: Path | None) -> None:
        self.site_file = site_dir / FILE if site_dir is not None else None
        self._lock = threading.Lock()
        self._stamp: tuple[int | None, int | None] | None = None
        self._tables: dict[str, dict[str, str]] = {}

    def _stamps(self) -> tuple[int | None, int | None]:
        def stamp(path: Path | None) -> int | None:
            try:
                return path.stat().st_mtime_ns if path is not None else None
            except OSError:
                return None
        return stamp(SHIPPED), stamp(self.site_file)

    def _read(self) -> dict[str, dict[str, str]]:
        tables = {code: dict(t) for code, t in (check(read_yaml(SHIPPED), SCHEMA) or {}).items()}
        if self.site_file is not None and self.site_file.is_file():
            tables.update({code: dict(t) for code, t in (check(read_yaml(self.site_file), SCHEMA) or {}).items()})
        return tables

    def current(self) -> dict[str, dict[str, str]]:
        stamps = self._stamps()
        with self._lock:
            if stamps != self._stamp:
                self._stamp = stamps
                try:
                    self._tables = self._read()
                except SiteError as exc:
                    log.warning("ward names not changed, the last good ones stay in force: %s", exc)
            return self._tables


_BY_SITE: dict[Path | None, WardNames] = {}


def tables(site_dir: Path | None) -> dict[str, dict[str, str]]:
    """The ward tables in force for a site, per institution code (read again when a file changes)."""
    return _BY_SITE.setdefault(site_dir, WardNames(site_dir)).current()


# a code no table names, said to be one (as the resident page says it: FS（院内代码）)
CODE_MARK = "{code}（院内代码）"
# the code alone of a ward at a facility no member's code names (``department_namer``'s ``dept@|<code>|`` row
# with no name): not the ordering institution's own code, so never said as one -- "QQW（院内代码）" would be
# one row with the institution's own unnamed QQW and count the other hospital's orders in it (gfix37)
OUTSIDE_CODE_MARK = "{code}（外部代码{more}）"
# the name of a ward at such a facility, said to be another place's: "心内科病区（外部）". Plain, it was one row with
# the ordering institution's own ward of that name ("阜宁县人民医院 心内科病区") and counted the other hospital's
# orders in it (rv38b LOW 1; wfix38). "外部", as the code's mark says it, not "外院": the facility may be another
# hospital or a campus of the institution's sent under a name of its own (PL-4 FNXRMYY-ZY) -- which, no table says.
# ``more``: what tells two such wards' rows of one label apart (``department_namer``: the code, then the ward
# Location's id)
OUTSIDE_MARK = "{name}（外部{more}）"
# said of a row stored with no facility (``dept@|``), where two labels would be one: which facility it was is not
# recorded
OUTSIDE_UNKNOWN = "院别未记"
# the facility part of a stored department (``facts.department_key``'s ``at``) for a ward at a facility no
# member's code names: this mark, then the ward Location's own id (``WardKey.outside``; wardlink38). A row
# stored with an empty facility (dept37/gfix37: ``dept@|<code>|``, one key for every such facility) is
# still read, by its own words.
OUTSIDE_AT = "~"


def current_ward_names(read_many: Callable[[list[tuple[str, str]]], Mapping[tuple[str, str], Any]] | None,
                       wards: Iterable[tuple[str, str]],
                       held: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
                       ) -> dict[tuple[str, str], str | None]:
    """(institution, point-of-care code) -> the name its ward Location has now, None where the store
    holds the Location with no name but its code; a ward whose Location is not found is left out.

    The Location is the one the institution's own feed keeps for the ward (``adapters.convert.actors``
    ``ward_key``: PL-4 empty or the institution itself), read by its id, all in one read: its name is
    what the feed said, a PL-9 name stated later renaming it and a code sent alone never doing so
    (locfix34).

    ``held``: for a ward another member's feed holds a record of (``ward_key_of``: the county
    hospital's Location of the traditional-medicine hospital's NEI), that Location, read where the
    institution's own feed has stored none of the ward: the sender's PL-9 name then names it, as
    the record does."""
    if read_many is None:
        return {}
    from adapters.convert.actors import ward_key
    from engine.repository.ids import deterministic_id

    ids = {(inst, code): deterministic_id(inst, "Location", ward_key(inst, code)) for inst, code in dict.fromkeys(wards)
           if inst and code}
    found = read_many([("Location", rid) for rid in dict.fromkeys(ids.values())]) if ids else {}
    out: dict[tuple[str, str], str | None] = {}
    for (inst, code), rid in ids.items():
        loc = found.get(("Location", rid))
        if loc is None and held:
            loc = held.get((inst, code))
        if loc is not None:
            out[inst, code] = _named(loc, code)
    return out


def _named(loc: Mapping[str, Any], code: str | None) -> str | None:
    """A ward Location's name as a name: None where it holds none but its code (sent without PL-9)."""
    name = loc.get("name")
    return name if isinstance(name, str) and name.strip() and name != code else None


def outside_ward_names(read_many: Callable[[list[tuple[str, str]]], Mapping[tuple[str, str], Any]] | None,
                       wards: Iterable[tuple[str, str | None]]) -> dict[str, str | None]:
    """``current_ward_names`` for wards at a facility no member's code names, by their Location's own id
    (``WardKey.outside``) and code: id -> the name the Location has now (None where it holds only its
    code); a Location not found is left out. One read for all of them."""
    codes = dict(wards)
    if read_many is None or not codes:
        return {}
    found = read_many([("Location", rid) for rid in codes])
    return {rid: _named(loc, codes[rid]) for rid in codes if (loc := found.get(("Location", rid))) is not None}


def department_namer(site_dir: Path | None, institutions: Mapping[str, Any],
                     parts: Callable[[str | None], tuple[str | None, str | None]],
                     read_many: Callable[[list[tuple[str, str]]], Mapping[tuple[str, str], Any]] | None,
                     latest_name: Callable[..., str | None],
                     rows: Collection[tuple[Any, Any]] = (),
                     at: Callable[[Any], str | None] | None = None,
                     ) -> Callable[[Any, Any], str | None]:
    """For the recognition rate by department (``engine.recognition.reports``): a check row's stored
    department (``parts`` reads it: ``engine.recognition.facts.department_parts``) and ordering
    institution -> the row it counts in, "阜宁县人民医院 心内科病区": the institution's name first, as a
    Chinese reader says a department, and because two hospitals' 心内科病区 are two departments.

    A ward is one department per institution and point-of-care code, whatever each row was stored
    with: a row stored as the bed's text before dept33 ("NEI 301 02", "心内科病区 301房 02床"), one as
    the ward's code alone (a message that sent no PL-9), one as the code with PL-9's name -- and one
    code under two PL-9 names (a renamed ward; an ADT and an order entry naming it 血液科病区 and
    血液内科). Its label is the ward's current name (``ward_name``), the same for every row and every
    period: a report read today names every period's orders as the ward is named today.

    A row that holds a name and no code (before dept33; a ward sent by its Chinese name alone; a
    FHIR client's text) counts with the one code the report's ``rows`` store that name with at that
    institution, else with the name taken as a code where it is in Chinese characters (心内科^301^02
    is the code 心内科, whose PL-9 name may be 心内科病区), else under the name. (Left: a name that
    only rows outside the period tie to a code reads as itself.) The current names of the ``rows``'
    wards are read at once (``current_ward_names``: one read of their Locations); answers are kept for
    the namer's life (one report). ``rows``: the report's (department, institution) pairs as a collection
    of its own, read here once, when the namer is made -- not a generator over what the report walks
    again (rvlast34: right only while the store's ``find`` answered a list).

    ``at`` reads the facility a stored department names (``facts.department_at``, dept37): a ward at
    another member's facility than the ordering institution's (the county hospital's order on a visit
    it registered at the traditional-medicine hospital's NEI) is that member's department, named by its
    rule (``ward_key_of``'s, as the resident page names it): "阜宁县中医院 脑病科病区" -- its table, its own
    feed's ward Location, else the record's PL-9 name, its latest tally, the code. Before, the row was
    named by the ordering institution's table for the code: counted in "阜宁县人民医院 心内科病区". A
    facility no member's code names (an outside hospital, a campus sent under a name of its own) is
    shown under the ordering institution, whose record it is, never by its table or ward Location for
    the code, which name its own ward. Its row holds the ward Location's own id (``OUTSIDE_AT``,
    ``ward_key_of``'s ``outside``; wardlink38): one row per facility's ward, named as ``ward_name``
    names a ward -- the name that Location has now (a PL-9 rename renames it: 血液科病区, then 血液内科,
    is one row 血液内科), else the latest named tally of that ward's own rows, else the row's name, else
    the code said to be another place's (``OUTSIDE_CODE_MARK``) -- its name said to be another place's
    too (``OUTSIDE_MARK``, "阜宁县人民医院 心内科病区（外部）"; wfix38): plain, it was one row with the institution's
    own ward of that name and counted the other hospital's orders in it (rv38b LOW 1). Two such wards' rows
    never share a label: where they would, each says its code, then its Location id (``outside_labels``).
    A row stored before with no facility
    (``dept@|<code>|``, dept37/gfix37: one key for every such facility) is named by its own words only:
    the latest name of "such rows of the code" was another hospital's ward of that code as often as this
    one's (rv37g MED 1: 外院心内科's order counted in 市一院肾内科; gfix37)."""
    wards = tables(site_dir)

    codes_of: dict[tuple[str, str], set[str]] = {}  # (inst, name) -> the codes the report's rows store it with
    named: list[tuple[str, str | None, str]] = []  # (inst, code, name) of each row
    held: dict[tuple[str, str], dict[str, Any]] = {}  # a member's ward -> the record's name for it
    outside: dict[str, str | None] = {}  # an outside ward's Location id -> its code
    outside_rows: dict[tuple[Any, Any], tuple[str | None, str | None, str]] = {}  # -> (code, name, facility)
    for value, inst in dict.fromkeys(rows):  # (a report's rows: thousands, a few hundred distinct)
        code, name = parts(value if isinstance(value, str) else None)
        facility = at(value) if at is not None else None
        if facility is not None and facility[:1] in ("", OUTSIDE_AT):
            if facility:
                outside.setdefault(facility[1:], code)
            outside_rows[value, inst] = (code, name, facility)
            continue  # (no member's table or Location: read by its own id, or the record's words)
        where = facility or _where(inst)
        if code and name:
            codes_of.setdefault((where, name), set()).add(code)
            if facility:
                held.setdefault((where, code), {"name": name})
        named.append((where, code, name or ""))
    kept: dict[tuple[Any, Any], str | None] = {}

    def code_of(where: str, code: str | None, given: str | None) -> str | None:
        if code or not given:
            return code
        codes = codes_of.get((where, given), set())
        return next(iter(codes)) if len(codes) == 1 else given if ideographic(given) else None

    listed = list(dict.fromkeys((inst, c) for inst, code, given in named if (c := code_of(inst, code, given))
                                and not wards.get(inst, {}).get(c)))
    current = current_ward_names(read_many, listed, held)
    looked = set(listed)
    wards_of: dict[tuple[str, str], str] = {}

    def ward_of(inst: str, code: str) -> str:
        if (inst, code) not in wards_of:
            if (inst, code) not in looked and not wards.get(inst, {}).get(code):
                looked.add((inst, code))  # (a row the namer was not given)
                current.update(current_ward_names(read_many, [(inst, code)], held))
            wards_of[inst, code] = ward_name(wards.get(inst, {}), inst, code, current, latest_name)
        return wards_of[inst, code]

    now_outside = outside_ward_names(read_many, outside.items())
    latest_outside: dict[tuple[str, str, str | None], str | None] = {}

    def words_of(code: str | None, given: str | None, facility: str, inst: str) -> tuple[str | None, bool]:
        """A ward at a facility no member's code names (see above): by its Location's id, else (a row
        stored with no facility) by its own row's words; and whether they are a name (else its code)."""
        if facility:
            rid = facility[len(OUTSIDE_AT):]
            if rid not in outside:  # (a row the namer was not given)
                outside[rid] = code
                now_outside.update(outside_ward_names(read_many, [(rid, code)]))
            name = now_outside.get(rid)
            if not name and code:  # (one scan per ward, whatever names its rows hold)
                if (facility, inst, code) not in latest_outside:
                    latest_outside[facility, inst, code] = latest_name(inst, code, facility)
                name = latest_outside[facility, inst, code]
            if name:
                return name, True
        if given or not code:
            return given, True
        return code, False

    def outside_labels(value: Any, inst: Any) -> tuple[tuple[str, str], _Said] | None:
        """An outside row's ward (its Location id, or the row itself where it holds none) and its label at
        each level, plainest first (0 to ``last``): its words said to be another place's (``OUTSIDE_MARK``,
        ``OUTSIDE_CODE_MARK``), then with its code, the first characters of its Location id, the whole id --
        the last no other ward's. None for a row with no words. (Made on demand: most rows need level 0.)"""
        code, given, facility = outside_rows.get((value, inst)) or (
            *parts(value if isinstance(value, str) else None), (at(value) if at is not None else None) or "")
        where = _where(inst)
        words, named = words_of(code, given, facility, where)
        if not words:
            return None
        rid = facility[len(OUTSIDE_AT):]
        known = institutions.get(inst) if inst else None
        place = getattr(known, "name", "") or where
        tags = (rid[:8], rid) if rid else (OUTSIDE_UNKNOWN, f"{OUTSIDE_UNKNOWN} {where}".strip())
        pre = f" {code}" if code and named else ""
        mores = ("", pre or f" {tags[0]}", f"{pre} {tags[0]}", f"{pre} {tags[1]}")
        return (facility or str(value), where), _Said(place, OUTSIDE_MARK if named else OUTSIDE_CODE_MARK, words, mores)

    # each outside ward's label, never another's: rows of two wards never add up under one label (rv38b LOW 1,
    # wardlink38's two outside wards of one name). The report's rows first: where two wards' rows would share a
    # label, each takes its next one, until none is shared; a row the namer was not given takes the first label
    # no other ward holds.
    last = 3
    claimed: dict[str, tuple[str, str]] = {}  # label -> the ward holding it
    levels: dict[tuple[str, str], int] = {}  # ward -> which of its labels
    given_outside = {key: made for key in outside_rows if (made := outside_labels(*key)) is not None}
    labelled = {key: said(0) for key, (_, said) in given_outside.items()}
    while True:
        holders: dict[str, set[tuple[str, str]]] = {}
        for key, (ward, _) in given_outside.items():
            holders.setdefault(labelled[key], set()).add(ward)
        moved = {ward for sharing in holders.values() if len(sharing) > 1 for ward in sharing
                 if levels.get(ward, 0) < last}
        if not moved:
            break
        for ward in moved:
            levels[ward] = levels.get(ward, 0) + 1
        for key, (ward, said) in given_outside.items():
            if ward in moved:
                labelled[key] = said(levels[ward])
    for key, (ward, _) in given_outside.items():
        claimed.setdefault(labelled[key], ward)
        kept[key] = labelled[key]

    def outside_label(value: Any, inst: Any) -> str | None:
        """A row not labelled above (one the namer was not given; a given one with no words)."""
        made = outside_labels(value, inst)
        if made is None:
            return None
        ward, said = made
        level = levels.get(ward, 0)
        while claimed.setdefault(said(level), ward) != ward and level < last:
            level += 1
        levels[ward] = level
        return said(level)

    def label(value: Any, inst: Any) -> str | None:
        key = (value, inst)
        if key not in kept:
            facility = at(value) if at is not None else None
            if facility is not None and facility[:1] in ("", OUTSIDE_AT):  # (outside: under the ordering institution)
                kept[key] = outside_label(value, inst)
                return kept[key]
            code, given = parts(value if isinstance(value, str) else None)
            where = facility or _where(inst)
            code = code_of(where, code, given)
            ward = ward_of(where, code) if code else given
            whose = facility or inst
            known = institutions.get(whose) if whose else None
            place = getattr(known, "name", "") or where
            kept[key] = f"{place} {ward}".strip() if ward else None
        return kept[key]
    return label


class _Said(NamedTuple):
    """An outside row's label at each level (``department_namer``'s ``outside_labels``), made on demand."""

    place: str
    mark: str
    words: str
    mores: tuple[str, str, str, str]

    def __call__(self, level: int) -> str:
        return f"{self.place} {self.mark.format(name=self.words, code=self.words, more=self.mores[level])}".strip()


def _where(inst: Any) -> str:
    """The key ``department_namer`` files and looks up a row's institution under: "" for none. Why one
    key: a row without institution was filed under "None" (``str(None)``) and looked up under "", so
    its name never found the code the other such rows store it with."""
    return str(inst) if inst else ""


def ward_name(table: Mapping[str, str], inst: str, code: str, current: Mapping[tuple[str, str], str | None],
              latest_name: Callable[[str, str], str | None]) -> str:
    """A ward's name now, for the reports: the one rule (rvid35 LOW 4, the lead's decision, wardfix35),
    in this order (the resident page shows the same name: ``engine.api.ui_me_wards`` asks this rule for
    each ward of the resident's visits, ui36):

    1. the deployment's ward table's name for the code (``wards.yaml``): the official name, and how
       a site settles a ward its systems name two ways;
    2. else the name the ward's Location has now, as stored (``current``, ``current_ward_names``):
       what the feed said, a genuine new PL-9 name renaming it (locfix34) -- the name a reader finds
       in the EHR. Before, deptfix34 took the first PL-9 name ever stored, for ever: a renamed ward was
       reported under a name no record carried any more;
    3. else, where no Location of the ward is found (a feed naming its facility in PL-4 otherwise than
       its sender code; a FHIR client's order), the name of the ward's latest named check tally
       (``latest_name``: the Location's name when the order was checked);
    4. else the code itself where it is written in Chinese characters (PV1-3 心内科^301^02: a word a
       person reads, ``merge_rules.ideographic``), else the code said to be one (``CODE_MARK``)."""
    if table.get(code):
        return table[code]
    name = current[inst, code] if (inst, code) in current else latest_name(inst, code)
    return name or (code if ideographic(code) else CODE_MARK.format(code=code))


def place_under_ward(made: str, care: str, ward: str | None, stored: str | None = None) -> str | None:
    """The name a room or bed that a message names by its codes alone (``made``: the name those codes
    make, "XYO 301房 02床"; ``care``: its point of care as sent, "XYO") is shown by, under its ward's
    current name ``ward`` (血液内科): "血液内科 301房 02床"; ``stored``: the name the store holds for the
    place, if any. None where there is nothing to show but what is stored (or nothing at all): a ward
    with no name but its code, a name not made from the point of care.

    A room's or bed's name is always its ward's name then and its own parts in words -- the converter
    takes PL-9 as the ward's name (``adapters.convert.actors._location``) and never states a bed's name
    of its own -- so a stored name ending in the parts the codes make ("血液科病区 301房 02床") was made
    from the ward's name of that day, and follows the ward's name now. Why (rvfixmix35 LOW 4): a ward
    renamed through one bed (an A08's PL-9 血液内科 on 301-01) renamed that bed, its room and the ward,
    while the ward's other stored beds kept the old name; a transfer by code alone to 301-02 showed the
    visit at "血液科病区 301房 02床" beside the room "血液内科 301房" above it -- one chain, two names for one
    ward. wardfix35 named a new bed from the ward (``stored`` None), and a stored bed's own name stood.
    The Location keeps the name it was stored with (the feed's words and their history); only what a
    code-only message shows follows: its visit's display, which the resident page reads."""
    if not (ward and care and made.startswith(care + " ")) or ward == care:
        return None
    parts = made[len(care):]  # " 301房 02床"
    if stored is not None and not stored.endswith(parts):
        return None
    named = ward + parts
    return None if named == stored else named


# -- the ward of a place (wards37) ---------------------------------------------------------------------
# The one reader of "which ward is this place in, and which ward is it": the walk up a place's
# ``partOf`` chain, the point-of-care code a ward Location carries, and the (institution, code) key
# ``ward_name`` is asked by. The recognition's department of an order's visit
# (``engine.recognition.facts.FactReader._visit_ward``) and the resident page's wards
# (``engine.api.ui_me_wards``) each had their own walk and code rule (and the page found a ward's
# institution by hashing each member's Organization id, the converter's keying written again).

PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
# the Locations read up a chain, the place included (``_up``): the converter writes a bed, its room, its ward
# (``adapters.convert.actors._location``); a FHIR client's deeper chain, or a cycle, stops here
LEVELS = 5

ReadMany = Callable[[list[tuple[str, str]]], Mapping[tuple[str, str], dict[str, Any]]]


def is_ward(loc: Mapping[str, Any]) -> bool:
    """A ward: physical type ``wa`` in HL7's location-physical-type system, or in a coding that names no
    system (a FHIR client's; the recognition read any ``wa`` as a ward before, and keeps doing so for
    such a coding)."""
    for c in (loc.get("physicalType") or {}).get("coding") or ():
        if isinstance(c, dict) and c.get("code") == "wa" and c.get("system") in (PHYSICAL_TYPE, None):
            return True
    return False


class PlaceWard:
    """A place (``Location/<id>``) and the Locations read above it, the place first: up to its ward
    when one is found (``ward``), else as far as the chain could be read."""

    __slots__ = ("chain", "ward")

    def __init__(self, chain: list[tuple[str, dict[str, Any]]], ward: bool) -> None:
        self.chain = chain
        # (reference, Location) of the place's ward (the place itself where it is one), else None
        self.ward: tuple[str, dict[str, Any]] | None = chain[-1] if ward else None

    @property
    def place(self) -> dict[str, Any]:
        return self.chain[0][1]

    @property
    def below(self) -> int:
        """How many levels the place is under its ward: 0 for the ward, 1 a room, 2 a bed."""
        return len(self.chain) - 1


def _up(chain: list[tuple[str, dict[str, Any]]]) -> str | None:
    """The next Location to read up a chain (the walk's one rule): the last one's ``partOf``, unless
    it is a ward, the chain is ``LEVELS`` long, or the reference is not a Location's or is met again."""
    loc = chain[-1][1]
    if len(chain) >= LEVELS or is_ward(loc):
        return None
    up = (loc.get("partOf") or {}).get("reference")
    if not (isinstance(up, str) and up.startswith("Location/")):
        return None
    for r, _ in chain:
        if r == up:
            return None
    return up


def place_ward(read: Callable[[str, str], dict[str, Any] | None], ref: Any) -> PlaceWard | None:
    """``wards_of`` for one place, read one Location at a time (``read(type, id)``: the recognition's
    reader, which keeps a write group's resources at hand); None where the place is not read."""
    chain: list[tuple[str, dict[str, Any]]] = []
    at: str | None = ref if isinstance(ref, str) and ref.startswith("Location/") else None
    while at is not None:
        loc = read("Location", at[9:])
        if not loc:
            break
        chain.append((at, loc))
        at = _up(chain)
    return PlaceWard(chain, is_ward(chain[-1][1])) if chain else None


def wards_of(read_many: ReadMany, refs: Iterable[str]) -> dict[str, PlaceWard]:
    """Each place of ``refs`` (``Location/<id>``) with the Locations above it up to its ward, read level
    by level (one ``read_many`` a level for all the places); a place not read is left out."""
    chains: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    wanted = {ref: ref for ref in dict.fromkeys(refs) if isinstance(ref, str) and ref.startswith("Location/")}
    while wanted:
        got = read_many([("Location", r[9:]) for r in dict.fromkeys(wanted.values())])
        nxt: dict[str, str] = {}
        for place, ref in wanted.items():
            loc = got.get(("Location", ref[9:]))
            if loc is None:
                continue
            chain = chains.setdefault(place, [])
            chain.append((ref, loc))
            if (up := _up(chain)) is not None:
                nxt[place] = up
        wanted = nxt
    return {place: PlaceWard(chain, is_ward(chain[-1][1])) for place, chain in chains.items()}


def point_of_care(ward: Mapping[str, Any]) -> str | None:
    """A ward's point-of-care code (PV1-3 PL-1) as the converter writes it: its ``alias`` where PL-9
    named the ward, else its ``name`` (a PL sent by code alone: NEI, or 心内科 in Chinese)."""
    name = ward.get("name")
    return _alias(ward) or (name if isinstance(name, str) and name else None)


def department(ward: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(code, name) of a ward as a reader reads it (the recognition's department, dept33): the
    point-of-care code, and the ward's name where it is not that code. A ward sent by a Chinese word
    alone (心内科^301^02, no alias) is that name and no code (deptfix34: a word a person reads)."""
    name = ward.get("name") if isinstance(ward.get("name"), str) else None
    code = point_of_care(ward)
    if code is not None and code == name and ideographic(code) and not _alias(ward):
        code = None
    return code, (name if name and name != code else None)


def _alias(ward: Mapping[str, Any]) -> str | None:
    return next((a for a in ward.get("alias") or () if isinstance(a, str) and a), None)


class WardKey(NamedTuple):
    """What ``ward_key_of`` reads of a ward: the key ``ward_name`` is asked by (``institution``,
    ``code``), and whether the ward is at another member's facility than the sender's whose record it
    is (``elsewhere``: a page says whose ward it is, as the reports say a department's institution).
    ``outside``: for a ward at a facility no member's code names (asked for with ``outside=True``;
    ``institution`` then ""), the ward Location's own id -- the one identity of that facility the store
    keeps (wardlink38)."""

    institution: str
    code: str
    elsewhere: bool = False
    outside: str = ""


def ward_key_of(ref: str, ward: Mapping[str, Any], institution: Callable[[dict[str, Any]], str | None],
                senders: Iterable[str] = (), facilities: Collection[str] = (), *,
                outside: bool = False) -> WardKey | None:
    """(institution, point-of-care code) of a ward ``ward_name`` and ``current_ward_names`` can be
    asked about exactly, else None.

    The converter keys a ward (``actors.ward_key``, under the sending institution) by its facility
    (PL-4, else the sender) and its point of care; the key is read back from the stored ward as the
    converter writes it, and one hash confirms that the ward's id is that key's -- a Location written
    otherwise (a FHIR client's, claiming the sender and NEI) is never named by a key it was not made
    with, and ``current_ward_names`` reads the very Location the key names:

    - the ward's code is its ``alias`` (PL-1 beside a PL-9 name), or its name (sent by code alone);
    - a ward with a ``managingOrganization`` is the sender's own (the converter states the sender as
      manager exactly when the facility is the sender or empty): its institution is the one that
      Organization names (``institution``: the project's reader of an Organization reference, its
      ``urn:huren:institution`` identifier -- on the reference, else on the Organization read,
      ``FactReader.organization_code``). An Organization without that identifier (a FHIR client's)
      names no institution, and the ward is left out: not named is safe, a wrong name is not;
    - a ward with none is one the converter keyed under a sender (``senders``: the institutions whose
      records name the place, the visits' ``serviceProvider``) at another member's facility
      (``facilities``: the site's member codes) -- the county hospital's HIS registering a visit at
      the traditional-medicine hospital's ward (``NEI^5^1^FNZYY``). It is that member's ward of that
      code, and is named by the member's rule (wards37): (FNZYY, NEI). Before, it was left out and the
      page showed the record's words; asking about (sender, NEI) would name the sender's own NEI ward
      (rv36e MED 1). A facility no member's code names (an alias, a name) is not found: left out --
      unless ``outside`` (the recognition's department, ``FactReader._ward_facility``): then the ward's
      key is its own Location id (``WardKey.outside``), institution "".

    Why the id (wardlink38, gfix37's strict xfail): which facility PL-4 named cannot be read back --
    the converter keeps PL-4 only inside the ward's id (a hash of sender, facility and code) and states
    no Organization for it -- and a key without it is one key for every such facility: a renamed ward
    at one outside hospital could not be told from two outside hospitals' wards of one code (rv37g MED
    1). The id is exactly that facility's ward of that code: a PL-9 rename keeps it (the converter keys
    by codes), another facility's ward of the code has another."""
    from adapters.convert.actors import ward_key
    from engine.repository.ids import deterministic_id

    rid = ref.split("/", 1)[1]
    codes = [c for c in dict.fromkeys((*(ward.get("alias") or ()), ward.get("name"))) if isinstance(c, str) and c]
    managing = ward.get("managingOrganization")
    if isinstance(managing, dict):
        owner = institution(managing)
        return next((WardKey(owner, code) for code in codes
                     if owner and deterministic_id(owner, "Location", ward_key(owner, code)) == rid), None)
    for sender in dict.fromkeys(senders):
        for facility in facilities:
            if facility != sender:
                for code in codes:
                    if deterministic_id(sender, "Location", ward_key(facility, code)) == rid:
                        return WardKey(facility, code, elsewhere=True)
    return WardKey("", point_of_care(ward) or "", elsewhere=True, outside=rid) if outside and rid else None
