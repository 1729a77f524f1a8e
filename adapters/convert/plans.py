"""Compiled plans for the commonest resource of all: a lab result (OBX of type NM, ST/TX/FT or
CWE/CE/CNE).

Why: a laboratory sends the same few hundred tests over and over, and everything an OBX → Observation
conversion derives from the test's description -- status, code and its mapped codings, unit and its
UCUM code, reference range, interpretation, category -- is the same every time that description is
sent; only the value, the time, the patient, the visit, the specimen and the id change. The first
OBX of a description is converted the ordinary way (``results.observation``, the mapping tables and
vocabularies of the site); the result is kept as a plan: that Observation's elements in their order,
the ones that vary marked as holes. A later OBX with the same description is built from the plan:
copies of the fixed elements, the holes filled from the segment and the group. The output is the
same, byte for byte (``tests/test_convert_golden.py``); the plan is data derived at run time from
the mapping files, never written anywhere.

The value: a number's (``valueQuantity.value``) and a text's (``valueString``, every repetition
joined) are holes; a coded answer is part of the description (a test has a few answers: negative,
1+, 2+...), each answer its own plan, made the second time the answer comes (a test with many
answers met once each would otherwise compile a plan per answer for nothing).

A plan also tells validation what varies (``Planned``): a planned Observation differs from the
others of its plan only in its holes, so once one of them passed the whole validator the others are
checked in their holes alone (``conformance.validate.Validator.valid_planned``).

The performer -- the sender, or the organisation the result's OBX-23 names (``results.result_performer``)
-- is an input of the plan, not part of its key: a lab met once (a regional hub's many reference labs)
compiles nothing (review of convperf29: a plan per description per lab, 2.3x the convert time of a
feed naming a new lab in each message). Recognition and validation still need "one ``Planned.plan``,
one performer": recognition answers a planned result by its plan (``facts.classify_planned``), the
validator checks a plan's later results in its varying holes alone, so a plan object that served an
unknown lab and a member would record the lab's result as the member's. Each plan therefore serves
one performer content (``Plan.by``, the performer's number at the site) and hands out, for each other
performer, a view of itself (``performed``): the same compiled function and elements, another object
-- recognition's answer and the validator's proof are kept by (plan, performer) that way.

Only the plain shape is planned; anything else takes the ordinary path every time: another value
type, a repeating number or coded value, an empty OBX-14, notes or participants (PRT) on the
result, a conversion that warned, or a site whose ``obx_observation`` table maps OBX-14 otherwise; and
and, at a site whose table reads OBX-19 or OBX-21 otherwise than the shipped one, an OBX stating them
(``_SitePlans.off``).

OBX-19 (the analysis time) is a hole (``ANALYSIS``), OBX-21 (the instance id) is keyed by whether it is
valued, OBX-25 (the medical director) by its text, the director's PractitionerRole made again for each
result (``DIRECTED``: its organisation is the result's performer) -- plan42; fam42 had sent them all to the
ordinary path.

What the first conversion said it deletes of its result (HL7's explicit null ``""``: OBX-16's observers,
OBX-25's director) the plan says again of each result it makes (``Plan.deletes``, ``learn``; plan43): a plan
had made the content alone, so a correction deleted only as the first of its shape at a site.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any

from adapters.convert import results  # the NM grammar and the categories (read at call time: a cycle)
from adapters.convert.context import Context
from adapters.convert.datatypes import decimal
from adapters.convert.elr_fields import director
from adapters.convert.engine import json_copy, literal
from adapters.convert.tables import table
from adapters.hl7v2.parser import Segment
from adapters.hl7v2.timestamps import TimestampError, to_fhir_datetime
from engine.merge_rules import Delete

Resource = dict[str, Any]

# the elements of a planned Observation that vary (the rest is copied from the plan)
STATIC, CATEGORY, SUBJECT, ENCOUNTER, SPECIMEN, PERFORMER, VALUE, EFFECTIVE, TEXT, ANALYSIS, DIRECTED = range(11)
HOLES = {"subject": SUBJECT, "encounter": ENCOUNTER, "specimen": SPECIMEN, "performer": PERFORMER,
         "valueQuantity": VALUE, "effectiveDateTime": EFFECTIVE, "valueString": TEXT}
# the OBX value types planned, and how their OBX-5 reads: a number (the value a hole), a text (the
# text a hole), a coded value (part of the description: a test has a few answers, each its plan)
NUMERIC, TEXTUAL, CODED = "number", "text", "coded"
_PLANNED_TYPES = {"NM": NUMERIC, "ST": TEXTUAL, "TX": TEXTUAL, "FT": TEXTUAL, "CWE": CODED, "CE": CODED,
                  "CNE": CODED}
# the OBX fields whose text decides everything but the holes (OBX-5 and OBX-14 are holes)
_DESCRIBING = (2, 3, 6, 7, 8, 11)
# the OBX fields whose text differs from one result to the next besides OBX-5 and OBX-14 (plan42): OBX-19 the
# analysis time, a hole (``ANALYSIS``) when the site's table maps it as the shipped one does; OBX-21 the result's
# instance id, which no rule reads -- only whether it is valued counts (``elr_fields.note_unread``). A plan's key
# holds each one's part (``_varying``), not its text: a plan per analysis time compiled a plan for one result
# (fam42: a 12-result panel stating OBX-19 took ~17.6 ms to convert). At a site whose table reads either field
# otherwise, a result stating it takes the ordinary path (``_SitePlans.off``).
ANALYSED, INSTANCE = 19, 21
# OBX-25, the medical director (``elr_fields.director``): part of the description by its text (a lab's
# director is the same on every result); a plan whose result named one lists ``[performer, director]`` as its
# performers (``DIRECTED``), the director's PractitionerRole made for each result as the ordinary path makes it
# (its organisation is the result's performer, which a plan's views vary: ``performed``)
HEAD = 25
_PLANS_LIMIT = 4096  # descriptions kept per site (a few KB each); a lab sends a few thousand at most
UNKNOWN: Any = object()  # no plan learnt yet for a description (None: its shape is not plannable)


@dataclass(eq=False)
class Plan:
    """One description's Observation: (element, kind, fixed value) in output order, and the
    function generated from them that builds it (``_generate``)."""

    items: tuple[tuple[str, int, Any], ...]
    unmapped: tuple[tuple[str, str, str], ...]  # what the first conversion reported, reported again
    key: tuple[Any, ...]
    deletes: tuple[Delete, ...]  # what the first conversion said it deletes of its result, said again (``learn``)
    # (category, subject, encounter, specimen, performer, value, effective, analysis, head) -> Observation
    make: Any = None
    names: tuple[str, ...] = ()  # the Observation's elements in order, "id" last (for validation)
    holes: frozenset[str] = frozenset()  # the elements that vary between its Observations
    numbers: frozenset[str] = frozenset()  # holes that are a Quantity of which only ``value`` varies
    text: bool = False  # ``valueString`` is a hole (a textual result)
    analysed: bool = False  # ``extension`` is a hole: OBX-19's analysis time (``ANALYSIS``)
    directed: bool = False  # its performers are the performer and OBX-25's director (``DIRECTED``)
    by: int = -1  # the number of the one performer content whose results this object makes (``performed``)
    others: dict[int, Plan] = field(default_factory=dict)  # its views for other performers, by number


@dataclass(eq=False, slots=True)
class Planned:
    """A resource built from a plan, and the values of its holes (for validation)."""

    plan: Plan
    holes: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class _SitePlans:
    site: Any
    table_fields: tuple[int, ...] | None  # OBX fields the site's obx_observation table reads, None: not plannable
    plans: dict[tuple[Any, ...], Plan | None] = field(default_factory=dict)  # None: not plannable
    once: dict[tuple[Any, ...], bool] = field(default_factory=dict)  # coded descriptions met once
    read: Any = None  # OBX fields -> the texts of those that describe a result (None: not plannable)
    top: int = 0  # the highest of those fields
    # what the results of an order group share (``describe``) -> the number that stands for it in keys
    groups: dict[tuple[Any, ...], int] = field(default_factory=dict)
    # a performer's content (``_performer_key``) -> its number (``Plan.by``)
    performers: dict[tuple[Any, ...], int] = field(default_factory=dict)
    # an OBX's shape (``shortcut``) -> what it needs besides its holes, once a plan makes it
    shortcuts: dict[tuple[Any, ...], Shortcut] = field(default_factory=dict)
    # the OBX fields that describe a result, whichever way (``_DESCRIBING`` and the table's)
    described_fields: frozenset[int] = frozenset()
    # the URL of the analysis-time extension the site's table makes of OBX-19, when a plan fills it as a hole
    # (``_analysis_rule``); None: OBX-19 is read as the table says, and a result stating it is not planned
    analysis: str | None = None
    # the fields a result stating takes the ordinary path at this site (``ANALYSED``/``INSTANCE`` read otherwise)
    off: tuple[int, ...] = ()


@dataclass(eq=False)
class Shortcut:
    """What a result loop needs of an OBX of a known shape besides its holes: the plan that makes
    it, the OBX-3.1 and OBX-4.1 its key is made of, whether its value type is one whose text also
    goes to the report's text, and its value's kind and shape (the last element of the plan key)."""

    plan: Plan
    item: str
    sub: str
    text: bool
    kind: str
    shape: Any


_SITES: dict[int, _SitePlans] = {}
_GROUP_NUMBERS = itertools.count()  # never reused: a number met in a key always meant the same


def _site_plans(ctx: Context) -> _SitePlans:
    site = ctx.site
    entry = _SITES.get(id(site))
    if entry is None or entry.site is not site:
        if len(_SITES) >= 4:  # sites reloaded (a code map edit): drop the old ones
            _SITES.clear()
        table_fields = _table_fields(ctx)
        entry = _SITES[id(site)] = _SitePlans(site, table_fields)
        if table_fields is not None:
            spec = table(site, "obx_observation")
            entry.analysis = _analysis_rule(spec)
            # OBX-21 is keyed by whether it is valued when no rule reads it and it is counted (``unread``)
            instance = INSTANCE in {int(n) for n in spec.get("unread") or ()} and not any(
                int(r["field"]) == INSTANCE for r in spec.get("rules", ()))
            entry.off = tuple(f for f, held in ((ANALYSED, entry.analysis is not None), (INSTANCE, instance))
                              if not held)
            read = sorted((set(_DESCRIBING) | set(table_fields) | {HEAD}) - {f for f in (ANALYSED, INSTANCE)
                                                                              if f not in entry.off})
            entry.read, entry.top = itemgetter(*read), read[-1]
            entry.described_fields = frozenset(read)
    return entry


def _analysis_rule(spec: dict[str, Any]) -> str | None:
    """The URL of the extension the table's one rule on OBX-19 makes of the analysis time, when that rule is
    the shipped one's shape (DTM into ``valueDateTime`` of a new ``extension[]`` entry wrapped with that URL
    alone) and no other rule writes ``extension``: then a plan fills it as its hole ``ANALYSIS``, as the rule
    would (``_analysis``); None otherwise (OBX-19 is then described by its text, and a result stating it takes
    the ordinary path)."""
    rules = spec.get("rules", ())
    at_19 = [r for r in rules if int(r["field"]) == ANALYSED]
    if len(at_19) != 1 or 19 in {int(n) for n in spec.get("unread") or ()}:
        return None
    rule = at_19[0]
    wrap = rule.get("wrap")
    if (set(rule) != {"field", "type", "target", "into", "wrap"} or rule["type"] != "DTM"
            or rule["target"] != "extension[]" or rule["into"] != "valueDateTime" or not isinstance(wrap, dict)
            or set(wrap) != {"url"} or not isinstance(wrap["url"], str)):
        return None
    if any(str(r.get("target", "")).split(".", 1)[0].removesuffix("[]") == "extension" for r in rules
           if r is not rule):
        return None
    return wrap["url"]


def _table_fields(ctx: Context) -> tuple[int, ...] | None:
    """The OBX fields other than 14 that the site's ``obx_observation`` table reads, when the table
    maps OBX-14 to ``effectiveDateTime`` as the shipped one does (the plan fills that hole itself);
    None otherwise (nothing is planned)."""
    spec = table(ctx.site, "obx_observation")
    rules = spec.get("rules", ())
    default = spec.get("segment", "OBX")
    if any(r.get("segment", default) != "OBX" for r in rules):
        return None
    at_14 = [r for r in rules if int(r["field"]) == 14]
    if at_14 != [{"field": 14, "type": "DTM", "target": "effectiveDateTime"}]:
        return None
    # (and the fields it lists as ``unread``: a result counts those it fills, ``elr_fields.note_unread``, which a
    # plan reports again -- so whether they are valued is part of the description; fam42)
    return tuple(sorted(({int(r["field"]) for r in rules} | {int(n) for n in spec.get("unread") or ()}) - {14}))


def _text(seg: Segment, n: int) -> str:
    """``seg.rep(n).comp(1)``, read straight from the field's text when it holds no delimiter or
    escape (the common case: a timestamp), else through the segment's repetitions."""
    raw = seg.fields[n]
    enc = seg.enc
    if (raw and raw != '""' and enc.component not in raw and enc.repetition not in raw
            and enc.subcomponent not in raw and not (enc.escape and enc.escape in raw)):
        return raw
    return seg.rep(n).comp(1)


def describe(obx: Segment, group: Any, ctx: Context, category: Any, encounter: Any, performer: dict[str, str],
             specimen: Any) -> tuple[tuple[Any, ...], _SitePlans, str, Any, int] | None:
    """The description of a plannable OBX (the key of its plan), its OBX-5 text (a number's, or a
    textual result's whole text), a number's comparator match (``results._BOUND``, read once
    for the key and the value) and the performer's number (``Plan.by``), or None when it takes the
    ordinary path."""
    kind = _kind(obx, group, category)
    if kind is None:
        return None
    shared = _shared(ctx, obx.enc, category, performer, encounter, specimen)
    if shared is None:
        return None
    entry = shared[6]
    read = _value(obx, kind)
    if read is None:
        return None
    text, shape, bound = read
    fields = obx.fields
    n = len(fields)
    if entry.off and any(n > f and fields[f] for f in entry.off):
        return None  # (a field the site's table reads otherwise, whose text varies by result: plan42)
    key = (
        shared[5],
        entry.read(fields) if n > entry.top else entry.read(fields + [""] * (entry.top + 1 - n)),
        *_varying(fields, obx.enc),
        shape,
    )
    return key, entry, text or "", bound, shared[7]


def _varying(fields: list[str], enc: Any) -> tuple[Any, bool]:
    """What a plan's key holds of the fields whose text varies by result (``ANALYSED``, ``INSTANCE``): OBX-19
    True when it is a plain text (no delimiter, no escape, not ``""``, not blank) -- a time the plan's
    ``ANALYSIS`` hole takes as the table's rule would (its first repetition's first component, stripped) --
    else its very text (empty, ``""``, components: described as sent, rare); OBX-21 whether it is valued as
    ``elr_fields.note_unread`` counts it. ``describe``, ``shortcut`` and ``GroupPlans.quick`` all key by it."""
    n = len(fields)
    analysed: Any = fields[ANALYSED] if n > ANALYSED else ""
    if (analysed and analysed != '""' and enc.component not in analysed and enc.repetition not in analysed
            and enc.subcomponent not in analysed and not (enc.escape and enc.escape in analysed)
            and analysed.strip()):
        analysed = True
    return analysed, n > INSTANCE and fields[INSTANCE] != "" and fields[INSTANCE] != '""'


def _kind(obx: Segment, group: Any, category: Any) -> str | None:
    """The planned kind of an OBX's value (``NUMERIC``, ``TEXTUAL``, ``CODED``), or None when the
    OBX takes the ordinary path: no OBX-14, a value type without plans, notes or participants of
    its own, a category neither lab nor imaging. ``describe`` and ``shortcut`` both ask this."""
    fields = obx.fields
    if len(fields) <= 14 or not fields[14] or fields[8] == '""' or fields[5] == '""':  # a null deletes: not planned
        return None
    kind = _PLANNED_TYPES.get(fields[2]) or _PLANNED_TYPES.get(fields[2].strip().upper())
    if kind is None:
        return None
    position = obx.position
    if (group.notes and group.notes.get(position)) or (group.prt and group.prt.get(position)):
        return None
    if category is not results.CATEGORY_LAB and category is not results.CATEGORY_IMAGING and category is not None:
        return None
    return kind


def _value(obx: Segment, kind: str) -> tuple[str | None, Any, Any] | None:
    """OBX-5 as a plan reads it: its text (a number's, or a textual result's whole text), its
    shape (the last part of a plan's key) and a number's comparator match (``results._BOUND``,
    read once for the key and the value); None when it cannot be planned (several answers).
    ``describe`` and ``fill`` both read it here, so a shortcut's value is read as a plan's."""
    raw = obx.fields[5]
    bound = None
    if kind is NUMERIC:
        enc = obx.enc
        if (raw and raw != '""' and enc.component not in raw and enc.repetition not in raw
                and enc.subcomponent not in raw and not (enc.escape and enc.escape in raw)):
            text: str | None = raw.strip()  # what the repetitions would give, without building them
        else:
            reps = obx.reps(5)
            if len(reps) > 1 and sum(1 for r in reps if r) > 1:
                return None
            text = next((r.comp(1).strip() for r in reps if r), None)
        if text == "":  # blank (" ") or a first component empty (``""^""``, ``^5``): not a number --
            return None  # the ordinary path warns and keeps it as text (a plan would write value null)
        if text is None:
            shape: Any = None
        else:
            bound = _bound(text)  # (kept per text, as its number is in ``build``)
            shape = "=" if bound is None else bound.group(1)
    else:
        given = [r for r in obx.reps(5) if r]  # as the ordinary path reads OBX-5 ("~~" repeats nothing)
        if kind is TEXTUAL:  # every repetition, joined: the text is the hole
            text = "\n".join(r.text() for r in given) if given else None
            shape = TEXTUAL if given else None
        else:  # one coded answer, part of the description (repeats become components: not planned)
            if len(given) > 1:
                return None
            text = None
            shape = (CODED, raw)
    return text, shape, bound


def _shared(ctx: Context, enc: Any, category: Any, performer: dict[str, str], encounter: Any,
            specimen: Any) -> tuple[Any, ...] | None:
    """What every result of the group shares (the delimiters, the institution, category, visit and
    specimen), put together once per group rather than once per result, and named by a number of the
    site's plans (a key then hashes one int, not these values, per result), and the performer's
    number (``Plan.by``: not in the key, see the module's docstring); None when the site's table
    makes nothing plannable."""
    shared = ctx.plan_shared
    if (shared is None or shared[0] is not enc or shared[1] is not category or shared[2] is not performer
            or shared[3] is not encounter or shared[4] is not specimen):
        entry = _site_plans(ctx)
        if entry.read is None:
            return None
        described = (ctx.code, enc.key, id(category), encounter is not None, specimen is not None)
        number = entry.groups.get(described)
        if number is None:
            if len(entry.groups) >= _PLANS_LIMIT:
                entry.groups.clear()
            number = entry.groups[described] = next(_GROUP_NUMBERS)
        who = _performer_key(performer)
        by = entry.performers.get(who)
        if by is None:
            if len(entry.performers) >= _PLANS_LIMIT:
                entry.performers.clear()  # (numbers are never reused: a content met again gets a new one)
            by = entry.performers[who] = next(_GROUP_NUMBERS)
        shared = ctx.plan_shared = (enc, category, performer, encounter, specimen, number, entry, by)
    return shared


def _performer_key(performer: dict[str, Any]) -> tuple[Any, ...]:
    """A result's performer's content, what its number (``Plan.by``) stands for: the sender's
    reference, or the organisation an OBX-23 names with its identifier (``results.result_performer``).
    Recognition answers by plan (``facts.classify_planned``): every result one plan object makes has
    this very performer's content (``performed``)."""
    if "identifier" not in performer:  # the sender's (reference and display): as before
        return tuple(performer.items())
    return tuple((k, tuple(v.items()) if type(v) is dict else v) for k, v in performer.items())


def shortcut(obx: Segment, group: Any, ctx: Context, category: Any, encounter: Any, performer: dict[str, str],
             specimen: Any) -> tuple[Shortcut | None, tuple[Any, ...] | None]:
    """The shortcut of an OBX whose shape was met before, else None and the key to remember it by
    (``remember``; None when the OBX cannot be planned at all).

    Why: the results of a feed have a few hundred shapes, and an OBX's shape -- every field but
    its set id (OBX-1), its time (OBX-14) and, unless the site's table reads it or the answer is
    coded, its value (OBX-5), in the group's context (``_shared``) -- decides its plan, the item
    and sub-id its key is made of, and whether its text also goes to the report. One dict lookup
    then stands for ``describe``'s reading of the fields and the loop's three field reads; the
    value is still read as ``describe`` reads it and its shape compared (``fill``)."""
    kind = _kind(obx, group, category)
    if kind is None:
        return None, None
    fields = obx.fields
    shared = _shared(ctx, obx.enc, category, performer, encounter, specimen)
    if shared is None:
        return None, None
    entry = shared[6]
    if entry.off and any(len(fields) > f and fields[f] for f in entry.off):
        return None, None  # (``describe``)
    # (OBX-19 and OBX-21 by their part of the key, ``_varying``: each result's own analysis time is no new shape)
    if kind is CODED or 5 in entry.described_fields:
        key: tuple[Any, ...] = (shared[5], *fields[2:14], *fields[15:ANALYSED], *fields[ANALYSED + 1:INSTANCE],
                                *fields[INSTANCE + 1:], *_varying(fields, obx.enc))
    else:
        key = (shared[5], fields[2], fields[3], fields[4], *fields[6:14], *fields[15:ANALYSED],
               *fields[ANALYSED + 1:INSTANCE], *fields[INSTANCE + 1:], *_varying(fields, obx.enc))
    return entry.shortcuts.get(key), key


def remember(key: tuple[Any, ...], obx: Segment, group: Any, ctx: Context, category: Any, encounter: Any,
             performer: dict[str, str], specimen: Any, item: str, sub: str, text: bool) -> None:
    """After an OBX of shape ``key`` took the ordinary path: keep its shortcut when its
    description has a plan by now."""
    described = describe(obx, group, ctx, category, encounter, performer, specimen)
    if described is None:
        return
    description, entry = described[0], described[1]
    plan = entry.plans.get(description)
    if plan is None:
        return
    fields = obx.fields
    kind = _PLANNED_TYPES.get(fields[2]) or _PLANNED_TYPES.get(fields[2].strip().upper())
    if kind is None:
        return
    if len(entry.shortcuts) >= _PLANS_LIMIT:
        entry.shortcuts.clear()
    entry.shortcuts[key] = Shortcut(plan, item, sub, text, kind, description[-1])


def fill(cut: Shortcut, obx: Segment, ctx: Context, category: Any, subject: dict[str, str], encounter: Any,
         performer: dict[str, str], specimen: Any) -> tuple[Resource, Planned] | None:
    """The Observation ``cut``'s plan makes of ``obx``, its value read as ``describe`` reads it;
    None when the value's shape is not the plan's (or ``build`` declines): the ordinary path then
    takes it, as it would have without the shortcut."""
    read = _value(obx, cut.kind)
    if read is None or read[1] != cut.shape:
        return None
    text, _shape, bound = read
    return build(cut.plan, obx, ctx, text or "", category, subject, encounter, performer, specimen, bound)


_BOUNDS: dict[str, Any] = {}  # OBX-5 text -> its ``results._BOUND`` match (None: no comparator)
_UNREAD: Any = object()
_DECIMALS: dict[str, Any] = {}  # OBX-5 text -> its JSON number (an int or an immutable FhirDecimal)
_DECIMALS_LIMIT = 8192


def _bound(text: str) -> Any:
    """OBX-5's comparator match (``results._BOUND``: ``<5``, ``>=10``), or None for a plain number;
    remembered by its text (a panel's values repeat, and a match object is immutable: one serves
    every result). ``shortcut`` and ``GroupPlans.quick`` both read it through here."""
    bound = _BOUNDS.get(text, _UNREAD)
    if bound is _UNREAD:
        bound = results._BOUND.match(text)
        if len(_BOUNDS) >= _DECIMALS_LIMIT:
            _BOUNDS.clear()
        _BOUNDS[text] = bound
    return bound


def _number(number: str) -> Any | None:
    """OBX-5's number as the FHIR decimal the converter stores (its digits kept), or None when it is
    no number; remembered by its text, since numbers are immutable and one object serves every result
    (``build`` and ``GroupPlans.quick`` both read values through here)."""
    value = _DECIMALS.get(number)
    if value is None:
        try:
            value = decimal(number)
        except ValueError:
            return None
        if len(_DECIMALS) >= _DECIMALS_LIMIT:
            _DECIMALS.clear()
        _DECIMALS[number] = value
    return value


def performed(plan: Plan, by: int) -> Plan:
    """``plan`` for the results of performer number ``by``: itself when it is that performer's, else
    its view for ``by`` -- the same compiled function and elements in a Plan object of its own
    (made once, no compile), so that what is kept by plan object (recognition's answer, the
    validator's proof) is kept by (plan, performer)."""
    if plan.by == by:
        return plan
    view = plan.others.get(by)
    if view is None:
        if len(plan.others) >= _PLANS_LIMIT:
            plan.others.clear()
        view = plan.others[by] = replace(plan, by=by, others={})
    return view


def build(plan: Plan, obx: Segment, ctx: Context, text: str, category: Any, subject: dict[str, str],
          encounter: Any, performer: dict[str, str], specimen: Any, bound: Any = None) -> tuple[Resource, Planned] | None:
    """The Observation ``plan`` makes of ``obx`` (whose OBX-5 reads ``text``, ``bound`` its
    comparator match), or None when a hole cannot be filled as the ordinary path would (a value
    that is not a number, a bad OBX-14: it then warns). ``performer``'s number is the group's
    (``_shared``, read for this performer by ``describe``/``shortcut`` a moment before)."""
    shared = _shared(ctx, obx.enc, category, performer, encounter, specimen)
    if shared is None:
        return None
    plan = performed(plan, shared[7])
    holes: dict[str, Any] = {"subject": subject}
    value: Any = None
    if plan.text:
        value = holes["valueString"] = results.fhir_string(obx, 5, text)
    elif text:
        value = _number(bound.group(2) if bound is not None else text)
        if value is None:
            return None
        holes["valueQuantity"] = value
    when = _text(obx, 14).strip()
    if not when:
        return None
    try:
        effective = holes["effectiveDateTime"] = to_fhir_datetime(when, ctx.tz)
    except TimestampError:
        return None
    analysis = _analysis(obx.fields, ctx.tz) if plan.analysed else None
    if plan.analysed and analysis is None:
        return None
    if encounter is not None:
        holes["encounter"] = encounter
    if specimen is not None:
        holes["specimen"] = specimen
    for kind, code, where in plan.unmapped:
        ctx.note_unmapped(kind, code, where)
    head = None
    if plan.directed:  # (its Practitioner and PractitionerRole put before the result, as the ordinary path puts them)
        head = director(obx, ctx, performer)
        if head is None:
            return None
    res = plan.make(category, subject, encounter, specimen, performer, value, effective, analysis, head)
    if plan.deletes:
        _said_again(ctx, res, plan)
    if analysis is not None:
        holes["extension"] = res["extension"]
    ctx.located(res, "status", obx, 11)  # (as ``results._observation``: the plan copies OBX-11's status)
    _located(ctx, res, obx)
    return res, Planned(plan, holes)


def _said_again(ctx: Context, res: Resource, plan: Plan) -> None:
    """The deletes ``plan``'s first conversion said of its result (``learn``), said of ``res``, in their order:
    a correction sending OBX-16 or OBX-25 as ``""`` takes the stored observers or director off whichever path
    built it (``Conversion.said``, for the merge)."""
    ctx.deletes.extend([(res, delete) for delete in plan.deletes])


def _analysis(fields: list[str], tz: Any) -> str | None:
    """OBX-19 of a result whose plan has the ``ANALYSIS`` hole (its key says a plain text: ``_varying``) as the
    table's DTM rule converts it (``datatypes.dtm``: the text stripped, ``to_fhir_datetime`` in the site's zone);
    None when it is no time -- the ordinary path then warns, as it always did."""
    try:
        return to_fhir_datetime(fields[ANALYSED].strip(), tz)
    except ValueError:  # (TimestampError is one: what the rule's step catches and warns of)
        return None


def _located(ctx: Context, res: Resource, obx: Segment) -> None:
    """Locate what a planned Observation states at its OBX fields, as ``results._observation`` does: its
    value, range and flag only when an issue names one (``Context.located_later``, rerun35)."""
    ctx.located_later(res, obx, results.LOCATED_LATER)


def learn(key: tuple[Any, ...], entry: _SitePlans, res: Resource, category: Any, subject: dict[str, str],
          encounter: Any, performer: dict[str, str], specimen: Any, unmapped: list[tuple[str, str, str]],
          by: int, *, deletes: list[tuple[Resource, Delete]] | tuple[()] = ()) -> None:
    """Keep ``res`` (just converted the ordinary way from an OBX described by ``key``, without a
    warning) as the plan of its description, when it has the shape ``build`` makes; else remember
    that the description has another shape (its OBX take the ordinary path without trying).
    ``by``: the number of ``performer``'s content, whose results the plan object makes (``performed``).

    ``deletes``: what that conversion said it deletes (``Context.delete``: HL7's explicit null ``""`` --
    OBX-16's observers by the table's ``null_deletes``, OBX-25's director by ``elr_fields.director``). The plan
    keeps those of ``res`` (``Plan.deletes``) and says them again of each result it makes (``_said_again``),
    as it reports the unmapped codes again: a plan that made the content alone had deleted for the first result
    of its shape and for none after -- every later correction kept what the LIS withdrew (rv43a MED 1/2). They
    follow from fields the key holds as sent (OBX-16 and OBX-25 by their text; OBX-5's and OBX-8's ``""`` are
    never planned, ``_kind``). A delete said of another resource than ``res`` is not a plan's to say: such a
    description is not planned (plan43)."""
    if len(entry.plans) >= _PLANS_LIMIT:
        entry.plans.clear()
    if any(resource is not res for resource, _ in deletes):
        entry.plans[key] = None
        return
    shape = key[-1]
    if type(shape) is tuple and shape[0] == CODED and entry.once.pop(key, None) is None:
        # a coded answer is planned when it comes a second time: a test with many answers (an
        # organism, a free code) would otherwise generate a plan for each answer met once
        if len(entry.once) >= _PLANS_LIMIT:
            entry.once.clear()
        entry.once[key] = True
        return
    entry.plans[key] = None
    items: list[tuple[str, int, Any]] = []
    names = list(res)
    if names[:1] != ["resourceType"] or names[-1:] != ["id"]:
        return
    expected = {SUBJECT: subject, ENCOUNTER: encounter, SPECIMEN: specimen}
    analysed = key[-3] is True  # OBX-19 a plain text: the plan's ``extension`` is the hole ``ANALYSIS``
    for name in names[1:-1]:
        value = res[name]
        kind = HOLES.get(name, STATIC)
        if name == "extension" and analysed:
            # exactly the entry the table's OBX-19 rule makes (``_analysis_rule``), else no plan
            if (type(value) is not list or len(value) != 1 or type(value[0]) is not dict
                    or list(value[0]) != ["url", "valueDateTime"] or value[0]["url"] != entry.analysis
                    or type(value[0]["valueDateTime"]) is not str):
                return
            items.append((name, ANALYSIS, entry.analysis))
            continue
        if name == "category":
            if value != [category] or value[0] is not category:
                return
            kind = CATEGORY
        elif kind in expected:
            if value is not expected[kind]:
                return
        elif kind == PERFORMER:
            if len(value) == 2 and value[0] is performer and _director_reference(value[1]):
                kind = DIRECTED  # OBX-25's director beside the performer (described by OBX-25's text)
            elif len(value) != 1 or value[0] is not performer:
                return
        elif kind == VALUE:
            if not isinstance(value, dict) or next(iter(value), None) != "value":
                return
            value = {k: v for k, v in value.items() if k != "value"}
        elif kind in (EFFECTIVE, TEXT) and not isinstance(value, str):
            return
        items.append((name, kind, json_copy(value) if kind in (STATIC, VALUE) else None))
    if analysed and not any(kind == ANALYSIS for _, kind, _ in items):
        return  # (the analysis time made no extension: a shape the plan would not make)
    varying = (SUBJECT, ENCOUNTER, SPECIMEN, VALUE, EFFECTIVE, TEXT, ANALYSIS)
    plan = Plan(tuple(items), tuple(unmapped), key, tuple(delete for _, delete in deletes), names=tuple(names),
                holes=frozenset(name for name, kind, _ in items if kind in varying),
                numbers=frozenset(name for name, kind, _ in items if kind == VALUE),
                text=any(kind == TEXT for _, kind, _ in items), by=by,
                analysed=analysed, directed=any(kind == DIRECTED for _, kind, _ in items))
    try:
        plan.make = _generate(plan.items)
    except TypeError:  # an element a literal cannot write (a key that is not a string): not planned
        return
    entry.plans[key] = plan


_ARGUMENTS = {CATEGORY: "[category]", SUBJECT: "subject", ENCOUNTER: "encounter", SPECIMEN: "specimen",
              PERFORMER: "[performer]", EFFECTIVE: "effective", TEXT: "value", DIRECTED: "[performer, head]"}


def _director_reference(value: Any) -> bool:
    """Whether a result's second performer is what ``elr_fields.director`` gives: a reference to a
    PractitionerRole (OBX-16's observers are Practitioners, and a result naming one is not planned), with its
    display or none."""
    return (type(value) is dict and type(value.get("reference")) is str
            and value["reference"].startswith("PractitionerRole/") and value.keys() <= {"reference", "display"})


def _generate(items: tuple[tuple[str, int, Any], ...]) -> Any:
    """The function that builds a plan's Observation, as Python source compiled once: the fixed
    scalar elements written out as literals, the fixed trees (reference range, interpretation,
    the code's codings) passed in as the plan's own shared objects (see below), the varying part
    (category list, value, performer list, the code's own dict) a dict display that makes new
    containers each call.

    Strings, ints, bools and None are written with ``repr`` (a literal of exactly that value); any
    other leaf -- a float, which may be an exact decimal (``FhirDecimal``) -- is passed in as a
    constant: numbers are immutable, so sharing them is safe."""
    constants: dict[str, Any] = {}

    parts = ["'resourceType': 'Observation'"]
    for name, kind, fixed in items:
        if kind == STATIC and isinstance(fixed, (dict, list)) and name != "code":
            # a fixed element that is a tree (the reference range, the interpretation) is the
            # plan's own object, shared by every Observation it makes, as ``results.CATEGORY_LAB``
            # always was: nothing downstream changes a converted resource's elements in place
            # (``tests/test_conv16_shared.py`` checks the plans' trees after results went through
            # ingest), and a result makes (and later frees) 8 containers fewer. Not the ``code``:
            # the recognition hook remembers a result's classification by the identity of its
            # ``code`` object with its ``performer`` list (``engine/recognition/batch_scope.py``,
            # ``facts.py``), so each result keeps a code of its own
            literal(fixed, {})  # (raises TypeError for a key that is not a string, as before: not planned)
            shared = f"_s{len(constants)}"
            constants[shared] = fixed
            parts.append(f"{name!r}: {shared}")
        elif kind == STATIC and name == "code" and isinstance(fixed, dict):
            # the code: a dict of its own per result (what the recognition hook's memo is keyed
            # by, see above) around the plan's shared codings
            literal(fixed, {})  # (a key that is not a string: not planned, as before)
            inner = []
            for key, value in fixed.items():
                if isinstance(value, (dict, list)):
                    constants[shared := f"_s{len(constants)}"] = value
                    inner.append(f"{key!r}: {shared}")
                else:
                    inner.append(f"{key!r}: {literal(value, constants)}")
            parts.append(f"{name!r}: {{{', '.join(inner)}}}")
        elif kind == STATIC:
            parts.append(f"{name!r}: {literal(fixed, constants)}")
        elif kind == VALUE:
            rest = literal(fixed, constants)[1:]  # the fixed elements after "value", in order
            parts.append(f"{name!r}: {{'value': value{', ' if rest != '}' else ''}{rest}")
        elif kind == ANALYSIS:  # the table's OBX-19 entry: its URL (``fixed``) and the analysis time
            parts.append(f"{name!r}: [{{'url': {literal(fixed, constants)}, 'valueDateTime': analysis}}]")
        else:
            parts.append(f"{name!r}: {_ARGUMENTS[kind]}")
    source = ("def make(category, subject, encounter, specimen, performer, value, effective, analysis=None,"
              " head=None):\n"
              f"    return {{{', '.join(parts)}}}\n")
    namespace: dict[str, Any] = dict(constants)
    exec(compile(source, "<observation plan>", "exec"), namespace)  # noqa: S102 -- literals via repr only
    return namespace["make"]


class GroupPlans:
    """The plain numeric results of one order group, built from their plans with what the group's
    results share read once (sixteenth round).

    Why: ``shortcut``, ``fill`` and ``build`` serve every planned kind and are asked per result
    for what the group decides (its category, the shared part of the key, the delimiters, the
    site's plan tables), through five calls and three returned tuples a result. The commonest
    result by far -- a number without comparator repetition or escape, a plain OBX-14 -- is built
    here by one call that reads each field once. ``quick`` answers only where the general path
    (``shortcut`` then ``fill``) would build the same Observation from the same plan, with the
    same unmapped notes; anything else (another value type, a value of another shape than the
    plan's, a timestamp the general path would refuse, delimiters in OBX-5 or OBX-14, notes or
    participants on the result) answers None and takes the general path as before, which then
    decides exactly as it always did (``tests/test_conv16_plans.py`` converts both ways)."""

    __slots__ = ("ctx", "enc", "category", "subject", "encounter", "performer", "specimen", "entry",
                 "number", "shortcuts", "whole", "notes", "prt", "tz", "delimiters", "by")

    def __init__(self, ctx: Context, group: Any, category: Any, subject: dict[str, str], encounter: Any,
                 performer: dict[str, str], specimen: Any) -> None:
        self.ctx, self.category, self.subject = ctx, category, subject
        self.encounter, self.performer, self.specimen = encounter, performer, specimen
        self.notes, self.prt, self.tz = group.notes, group.prt, ctx.tz
        self.enc = enc = group.obx[0].enc if group.obx else None
        self.entry: Any = _UNREAD  # the site's plans, read at the first plain numeric result (``_read``)
        if enc is not None:
            self.delimiters = (enc.component, enc.repetition, enc.subcomponent, enc.escape)

    def _read(self) -> Any:
        """What the group's results share (``_shared``, as ``shortcut`` reads it), once; None when
        nothing of the group is planned (its category, or the site's table)."""
        category = self.category
        self.entry = None
        if category is not results.CATEGORY_LAB and category is not results.CATEGORY_IMAGING and category is not None:
            return None
        shared = _shared(self.ctx, self.enc, category, self.performer, self.encounter, self.specimen)
        if shared is None:
            return None
        self.entry = entry = shared[6]
        self.number, self.shortcuts, self.by = shared[5], entry.shortcuts, shared[7]
        self.whole = 5 in entry.described_fields  # the site's table reads OBX-5: it is part of the key
        return entry

    def quick(self, obx: Segment) -> tuple[Shortcut, Resource, Planned] | None:
        """The shortcut, Observation and plan mark of a plain numeric ``obx`` of a shape met before,
        exactly as ``shortcut`` + ``fill`` would give them; None: the general path decides."""
        fields = obx.fields
        if (len(fields) <= 14 or obx.enc is not self.enc or _PLANNED_TYPES.get(fields[2]) is not NUMERIC
                or fields[8] == '""'):
            return None
        if self.entry is None or (self.entry is _UNREAD and self._read() is None):
            return None
        raw, when = fields[5], fields[14]
        if not raw or raw == '""' or not when:
            return None
        component, repetition, subcomponent, escape = self.delimiters
        if (component in raw or repetition in raw or subcomponent in raw or (escape and escape in raw)
                or component in when or repetition in when or subcomponent in when or (escape and escape in when)):
            return None  # read through the repetitions: the general path
        position = obx.position
        if (self.notes and self.notes.get(position)) or (self.prt and self.prt.get(position)):
            return None
        # (OBX-19 and OBX-21 by their part, ``_varying``, as ``shortcut`` keys them; an OBX ending before OBX-19,
        # the commonest, has the parts of neither: ``_varying`` gives ("", False))
        if len(fields) <= ANALYSED:
            if self.whole:
                key: tuple[Any, ...] = (self.number, *fields[2:14], *fields[15:], "", False)
            else:
                key = (self.number, fields[2], fields[3], fields[4], *fields[6:14], *fields[15:], "", False)
        elif self.whole:
            key = (self.number, *fields[2:14], *fields[15:ANALYSED], *fields[ANALYSED + 1:INSTANCE],
                   *fields[INSTANCE + 1:], *_varying(fields, self.enc))
        else:
            key = (self.number, fields[2], fields[3], fields[4], *fields[6:14], *fields[15:ANALYSED],
                   *fields[ANALYSED + 1:INSTANCE], *fields[INSTANCE + 1:], *_varying(fields, self.enc))
        cut = self.shortcuts.get(key)
        if cut is None or cut.kind is not NUMERIC:
            return None
        plan = cut.plan
        if plan.by != self.by:
            plan = performed(plan, self.by)
        text = raw.strip()
        if not text or plan.text:
            return None
        bound = _bound(text)
        if ("=" if bound is None else bound.group(1)) != cut.shape:
            return None
        value = _number(bound.group(2) if bound is not None else text)
        if value is None:
            return None
        when = when.strip()
        if not when:
            return None
        try:
            effective = to_fhir_datetime(when, self.tz)
        except TimestampError:
            return None
        analysis = None
        if plan.analysed:
            analysis = _analysis(fields, self.tz)
            if analysis is None:
                return None
        ctx, subject, encounter, specimen = self.ctx, self.subject, self.encounter, self.specimen
        holes: dict[str, Any] = {"subject": subject, "valueQuantity": value, "effectiveDateTime": effective}
        if encounter is not None:
            holes["encounter"] = encounter
        if specimen is not None:
            holes["specimen"] = specimen
        for kind, code, where in plan.unmapped:
            ctx.note_unmapped(kind, code, where)
        head = None
        if plan.directed:  # (as ``build``)
            head = director(obx, ctx, self.performer)
            if head is None:
                return None
        res = plan.make(self.category, subject, encounter, specimen, self.performer, value, effective, analysis,
                        head)
        if plan.deletes:  # (as ``build``)
            _said_again(ctx, res, plan)
        if analysis is not None:
            holes["extension"] = res["extension"]
        ctx.located(res, "status", obx, 11)  # (as ``results._observation``: the plan copies OBX-11's status)
        _located(ctx, res, obx)
        return cut, res, Planned(plan, holes)
