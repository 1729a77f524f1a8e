"""Message templates: which segment groups a message structure has and which resources each makes.

One YAML file per message structure (``mappings/hl7v2/messages/<STRUCTURE>.yaml``) says it all;
adding a structure is a new file plus tests, not new Python. The shape, tersely:

    patient: required            # PID (+PD1) → Patient: required | optional | none
    visit: PV1                   # PV1 (+PV2) → Encounter when PV1 names a visit
    groups:                      # repeating segment groups, in the order the standard defines
      - name: ORDER
        starts: [ORC, RXA]       # each of these opens a group, unless the open one still lacks it
        holds: [ORC, TQ1, RXA, RXR, OBX, NTE]
    resources:                   # what each group (or the message, ``in: message``) makes
      - make: Immunization
        in: ORDER
        from: RXA                # one resource per RXA of the group
        key: [ORC-3, ORC-2, RXA-5+RXA-3]   # the first key with a value gives the deterministic id
        rules: [...]             # field → element rules (``engine.compile_rule`` syntax), or a table name
        refs: {patient: $patient, encounter: $encounter}
        notes: note              # NTEs after the ``from`` segment → Annotation (``note``) or string
        absent: [vaccineCode, "occurrence[x]:DateTime"]   # required but unsent → data-absent-reason
        create_only: false       # true: another feed owns it (written only when absent)
      - make: Observation
        in: ORDER
        from: OBX
        builder: observation     # a named builder (``BUILDERS``) instead of rules
        backrefs: [{to: Immunization, path: "reaction[].detail", when: {OBX-3: [31044-1]}}]
        unless: {RXA-5: ["998"], OBX-3: [30980-7]}   # not made when all match (``when``: only when)

``then: [unlink]``: message-level steps (``THEN``) run once every resource is made.

``states_active: true``: the event states whether its Patients are in use (a merge's survivor and
the record merged away, the two records of an unlink): ``Patient.active`` is the message's
statement; any other message only assumes it (it fills a Patient stored without it).

Or ``handler: <name>`` hands the whole message to a named converter (the ORC/OBR/OBX result and
order families, whose grouping rules live in ``results``). Statuses are rules through named
vocabularies (``vocabulary.yaml``), identifiers rules through named data type converters
(``datatypes.CONVERTERS``), OBX value[x] the ``observation`` builder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.convert import common, results
from adapters.convert.by_identity import ByIdentity
from adapters.convert.context import Context
from adapters.convert.engine import Step, compile_rule, json_copy, located, set_path
from adapters.convert.tables import table, vocabulary
from adapters.hl7v2.errors import APPLICATION_INTERNAL_ERROR, REQUIRED_FIELD_MISSING, HL7Error
from adapters.hl7v2.parser import Segment

Resource = dict[str, Any]
Ref = dict[str, str]

DATA_ABSENT_REASON = results.DATA_ABSENT_REASON
# envelope and patient/visit segments a template's header consumes (unless a group holds them)
_HEADER = ("MSH", "SFT", "UAC", "EVN", "PID", "PD1", "PV1", "PV2", "MSA", "ERR")


@dataclass
class Scope:
    """One segment group occurrence (or the whole message): its segments and what it made."""

    name: str
    segments: list[Segment] = field(default_factory=list)
    made: dict[str, list[tuple[int, Ref]]] = field(default_factory=dict)  # type → (segment position, ref)
    anchor: str = ""  # key of the first resource made in the group: later ones key under it
    patient: Ref | None = None
    pkey: str = ""
    encounter: Ref | None = None

    _index: dict[str, list[Segment]] | None = None

    def all(self, name: str) -> list[Segment]:
        index = self._index
        if index is None:  # built once the group is complete (resources are made after splitting)
            index = self._index = {}
            for s in self.segments:
                index.setdefault(s.name, []).append(s)
        return index.get(name, [])

    def first(self, name: str) -> Segment | None:
        found = self.all(name)
        return found[0] if found else None


@dataclass
class Env:
    """What every resource of one message shares."""

    ctx: Context
    event: str
    org: Ref
    made_from: dict[str, int] = field(default_factory=dict)  # key → position of the segment that made it
    made: dict[str, list[tuple[int, Ref]]] = field(default_factory=dict)  # every scope's, by type
    patient: Ref | None = None
    pkey: str = ""
    encounter: Ref | None = None


Builder = Callable[[Segment | None, Scope, Env, dict[str, Any]], Ref | None]
Handler = Callable[[Context, dict[str, Any]], None]
BUILDERS: dict[str, Builder] = {}
HANDLERS: dict[str, Handler] = {}
POST: dict[str, Callable[[Resource, Segment | None, Scope, Env], None]] = {}
# ``key_by: <name>``: the resource's key read from what was made of it (the resource after its rules and
# ``post`` steps), given the key ``key`` would make; None: that key, as without it. An SIU's Appointment
# is keyed by the filler's appointment id (its system and SCH-2), not by SCH-2's value under the patient
KEYS: dict[str, Callable[[Resource, str, Env], str | None]] = {}
# message-level steps run once every resource is made (``then: [unlink]``): what the message says
# about the resources together (an unlink: the two records are not one person's merge)
THEN: dict[str, Callable[[Env], None]] = {}


# --- compiling a template (once per loaded file) -------------------------------------------------


@dataclass
class _Rule:
    segment: str
    field: int
    always: bool
    all: bool  # every segment of that name in the scope (AIP, AIL... of an appointment)
    step: Step
    events: frozenset[str]  # only for these trigger events (empty: all)


@dataclass
class _Spec:
    make: str
    scope: str  # a group name, or "message"
    source: str  # the ``from`` segment ('' → one resource per scope)
    keys: list[list[tuple[str, int, int]]]
    rules: list[_Rule]
    fixed: dict[str, Any]
    by_event: dict[str, dict[str, Any]]
    refs: dict[str, str]
    backrefs: list[dict[str, Any]]
    notes: str
    notes_from: tuple[str, ...]
    absent: list[str]
    keyed: bool
    builder: str
    post: list[str]
    when: dict[tuple[str, int, int], frozenset[str]]
    unless: dict[tuple[str, int, int], frozenset[str]]  # not made when all of these match
    institution_scoped: bool
    key_by: str  # a ``KEYS`` function that keys it from what was made of it ('' none)
    create_only: bool  # another feed owns it (the order a dispense fulfils): written only if absent
    raw: dict[str, Any]


@dataclass
class _Template:
    patient: str
    visit: str
    groups: list[dict[str, Any]]
    specs: list[_Spec]
    consumed: frozenset[str]
    create_only: bool
    encounter_status: str
    then: tuple[str, ...] = ()  # message-level steps (``THEN``), in order, after every resource
    grouped: frozenset[str] = frozenset()  # segment names some group holds
    opener: dict[str, str] = field(default_factory=dict)  # segment name → the group it opens
    holder: dict[str, str] = field(default_factory=dict)  # segment name → the group it belongs to
    order: dict[str, list[str]] = field(default_factory=dict)  # group → its starting segments, in order


_COMPILED: ByIdentity[dict[str, Any], _Template] = ByIdentity(128)  # a site compiles ~15 templates (459 sample messages: 14)


def field_ref(text: str) -> tuple[str, int, int]:
    """``"ORC-3"`` → ("ORC", 3, 1); ``"RXA-5.2"`` → ("RXA", 5, 2)."""
    seg, _, rest = text.strip().partition("-")
    fno, _, comp = rest.partition(".")
    return seg, int(fno), int(comp or 1)


def _compile(spec: dict[str, Any], site: Any) -> _Template:
    cached = _COMPILED.get(spec)
    if cached is not None:
        return cached
    original = spec
    if "extends" in spec:  # content shared by a family of structures (adt_common.yaml)
        base = table(site, spec["extends"])
        spec = {
            **base,
            **spec,
            "groups": list(base.get("groups", ())) + list(spec.get("groups", ())),
            "resources": list(base.get("resources", ())) + list(spec.get("resources", ())),
            "consumed": list(base.get("consumed", ())) + list(spec.get("consumed", ())),
        }
    consumed = set(spec.get("consumed", ()))
    held = {name for g in spec.get("groups", ()) for name in g.get("holds", ())}
    specs: list[_Spec] = []
    for raw in spec.get("resources", ()):
        if "use" in raw:  # a resource spec shared by several templates (mappings/hl7v2/<name>.yaml)
            raw = {**table(site, raw["use"]), **{k: v for k, v in raw.items() if k != "use"}}
        source = raw.get("from", "")
        rules_spec = raw.get("rules", ())
        if isinstance(rules_spec, str):
            rules_spec = table(site, rules_spec).get("rules", ())
        rules = [
            _Rule(
                r.get("segment", source),
                int(r["field"]),
                "default" in r or bool(r.get("required")),
                bool(r.get("all")),
                compile_rule(located(r, r.get("segment", source))),
                frozenset(r.get("events", ())),
            )
            for r in rules_spec
        ]
        consumed.update(r.segment for r in rules)
        if source:
            consumed.add(source)
        if raw.get("notes"):
            consumed.add("NTE")
            consumed.update(raw.get("notes_from", ()))
        consumed.update(raw.get("consumes", ()))
        specs.append(
            _Spec(
                make=raw["make"],
                scope=raw.get("in", "message"),
                source=source,
                keys=[[field_ref(part) for part in k.split("+")] for k in raw.get("key", ())],
                rules=rules,
                fixed=raw.get("fixed", {}),
                by_event=raw.get("by_event", {}),
                refs=raw.get("refs", {}),
                backrefs=raw.get("backrefs", []),
                notes=raw.get("notes", ""),
                notes_from=tuple(raw.get("notes_from", ())) or ((source,) if source else ()),
                absent=list(raw.get("absent", ())),
                keyed=bool(raw.get("keyed")),
                builder=raw.get("builder", ""),
                post=list(raw.get("post", ())),
                when={field_ref(k): frozenset(map(str, v)) for k, v in raw.get("when", {}).items()},
                unless={field_ref(k): frozenset(map(str, v)) for k, v in raw.get("unless", {}).items()},
                institution_scoped=raw.get("scope") == "institution",
                key_by=str(raw.get("key_by") or ""),
                create_only=bool(raw.get("create_only")),
                raw=raw,
            )
        )
    patient = spec.get("patient", "required")
    visit = spec.get("visit", "PV1")
    header = {n for n in _HEADER if n not in held}
    if patient == "none":
        header -= {"PID", "PD1"}
    consumed |= header
    compiled = _Template(
        patient=patient,
        visit=visit,
        groups=list(spec.get("groups", ())),
        specs=specs,
        consumed=frozenset(consumed),
        create_only=bool(spec.get("create_only", True)),
        encounter_status=spec.get("encounter_status", "unknown"),
        then=tuple(spec.get("then", ())),
    )
    for name in compiled.then:
        if name not in THEN:
            raise HL7Error(f"message template names unknown step {name!r}", code=APPLICATION_INTERNAL_ERROR)
    for g in compiled.groups:
        compiled.order[g["name"]] = list(g.get("starts", ()))
        for name in g.get("starts", ()):
            compiled.opener.setdefault(name, g["name"])
        for name in g.get("holds", ()):
            compiled.holder.setdefault(name, g["name"])
    compiled.grouped = frozenset(compiled.holder)
    return _COMPILED.put(original, compiled)


# --- running a template --------------------------------------------------------------------------


def convert(ctx: Context, spec: dict[str, Any]) -> None:
    """Convert ``ctx.message`` with the message template ``spec``.

    ``instead`` lets a structure whose content decides the resources hand a message to another
    template: ``[{present: RXO, absent: [OBR], template: RDE_O11}]`` (an ORM_O01 carrying pharmacy
    orders is converted as the encoded pharmacy order is)."""
    for alt in spec.get("instead", ()):
        msg = ctx.message
        if msg.get(alt["present"]) is not None and not any(msg.get(s) is not None for s in alt.get("absent", ())):
            convert(ctx, table(ctx.site, f"messages/{alt['template']}"))
            return
    handler = spec.get("handler")
    if handler:
        run = HANDLERS.get(handler)
        if run is None:
            raise HL7Error(f"message template names unknown handler {handler!r}", code=APPLICATION_INTERNAL_ERROR)
        run(ctx, spec)
        return
    tpl = _compile(spec, ctx.site)
    msg = ctx.message
    event = msg.msh.trigger_event or (msg.get("EVN").value(1) if msg.get("EVN") else "")
    env = Env(ctx=ctx, event=event, org=common.organization(ctx))
    grouped = tpl.grouped
    if tpl.patient != "none" and "PID" not in grouped:
        pid = common.one_patient(msg)
        if pid is None:
            if tpl.patient == "required":
                raise HL7Error(
                    f"{msg.msh.structure} message has no PID segment",
                    segment="PID",
                    sequence=1,
                    code=REQUIRED_FIELD_MISSING,
                )
        else:
            env.pkey, ref = common.patient(pid, ctx)
            env.patient = {"reference": ref["reference"]}
            if tpl.create_only:
                ctx.create_only.append(ref["reference"])
    if tpl.visit and env.patient is not None and "PV1" not in grouped:
        pv1 = msg.get(tpl.visit)
        if pv1 is not None and any(pv1.has(n) for n in (2, 3, 19, 44)):
            status = encounter_status(ctx, event, tpl.encounter_status)
            env.encounter = common.encounter(pv1, msg.get("PV2"), ctx, env.patient, env.pkey, status,
                                             encounter_status_assumed(ctx, event), encounter_undoes(ctx, event),
                                             event)
            if tpl.create_only:
                ctx.create_only.append(env.encounter["reference"])
    present = {s.name for s in msg.segments}
    scopes = _segment(msg.segments, tpl, env, present)
    for spec_ in tpl.specs:
        if spec_.source and spec_.source not in present:
            continue  # most specs name segments a given message does not carry
        for scope in scopes.get(spec_.scope, ()):
            _make_all(spec_, scope, env)
    for name in tpl.then:
        THEN[name](env)
    if not tpl.consumed.issuperset(present):
        _report_unmapped(ctx, tpl, msg.segments)


def encounter_status(ctx: Context, event: str, default: str) -> str:
    return vocabulary(ctx.site, "encounter_status_by_event").get(event, default)


def encounter_status_assumed(ctx: Context, event: str) -> bool:
    """Whether ``event``'s Encounter status is an assumption, not a statement about the visit
    (``vocabulary.yaml`` ``encounter_status_assumed``; a site's vocabulary without the table has
    the shipped one, ``mappings.site``; a site that wants none names it empty: none is)."""
    return bool((table(ctx.site, "vocabulary").get("encounter_status_assumed") or {}).get(event))


def encounter_undoes(ctx: Context, event: str) -> tuple[str, ...]:
    """The parts of the stored Encounter ``event`` takes back (``vocabulary.yaml``
    ``encounter_undoes_by_event``; an event it does not list: none)."""
    return tuple((table(ctx.site, "vocabulary").get("encounter_undoes_by_event") or {}).get(event) or ())


def _segment(segments: list[Segment], tpl: _Template, env: Env, present: set[str]) -> dict[str, list[Scope]]:
    """Split the message into group occurrences; the message itself is the scope ``message``."""
    message = Scope("message", list(segments), patient=env.patient, pkey=env.pkey, encounter=env.encounter)
    scopes: dict[str, list[Scope]] = {"message": [message]}
    opener, holder, order = tpl.opener, tpl.holder, tpl.order
    for name in order:
        scopes[name] = []
    if present.isdisjoint(opener):
        return scopes  # no group occurs in this message
    current: Scope | None = None
    for seg in segments:
        gname = opener.get(seg.name)
        if gname is not None:
            starts = order[gname]
            joins = (
                current is not None
                and current.name == gname
                and not current.all(seg.name)
                and current.segments
                and starts.index(current.segments[0].name) < starts.index(seg.name)
            )
            if not joins:
                current = Scope(gname, patient=env.patient, pkey=env.pkey, encounter=env.encounter)
                scopes[gname].append(current)
            assert current is not None
            current.segments.append(seg)
            current._index = None
            continue
        owner = holder.get(seg.name)
        if owner is not None and current is not None and (current.name == owner or seg.name == "NTE"):
            current.segments.append(seg)
            current._index = None
    return scopes


def _make_all(spec: _Spec, scope: Scope, env: Env) -> None:
    if spec.source:
        for seg in scope.all(spec.source):
            if spec.when and not _matches(spec.when, seg, scope):
                continue
            if spec.unless and _matches(spec.unless, seg, scope):
                continue
            _make(spec, seg, scope, env)
    elif scope.segments or scope.name == "message":
        _make(spec, None, scope, env)


def _matches(when: dict[tuple[str, int, int], frozenset[str]], seg: Segment, scope: Scope) -> bool:
    for (name, fno, comp), values in when.items():
        src = seg if seg.name == name else scope.first(name)
        if src is None or src.value(fno, comp=comp).strip() not in values:
            return False
    return True


def _make(spec: _Spec, seg: Segment | None, scope: Scope, env: Env) -> None:
    ctx = env.ctx
    if spec.builder:
        build = BUILDERS.get(spec.builder)
        if build is None:
            raise HL7Error(f"message template names unknown builder {spec.builder!r}", code=APPLICATION_INTERNAL_ERROR)
        ref = build(seg, scope, env, spec.raw)
        if ref is None:
            return
        res = ctx.resources[ref["reference"]]
    else:
        if spec.keyed and _keyed(spec, seg, scope) is None:
            return  # made only when the message identifies it (an Account needs its number)
        res = {"resourceType": spec.make, **json_copy(spec.fixed)} if spec.fixed else {"resourceType": spec.make}
        ref = None
    if spec.rules:
        for rule in spec.rules:
            if rule.events and env.event not in rule.events:
                continue
            if rule.segment == spec.source and seg is not None:
                targets: list[Segment] = [seg]
            elif rule.all:
                targets = scope.all(rule.segment)
            else:
                first = scope.first(rule.segment)
                targets = [first] if first is not None else []
            for target in targets:
                if not rule.always:
                    fields = target.fields
                    if rule.field >= len(fields) or not fields[rule.field]:
                        continue
                rule.step(target, ctx, res)
    # event overrides win over what the rules derived (a cancellation event cancels)
    if spec.by_event and env.event in spec.by_event:
        res.update(json_copy(spec.by_event[env.event]))
    _refs(spec, res, seg, scope, env)
    if spec.notes:
        _notes(spec.notes, res, spec.notes_from, seg, scope)
    for name in spec.post:
        POST[name](res, seg, scope, env)
    if ref is None:
        for element in spec.absent:
            mark_absent(res, element, spec.make, seg or scope.first(spec.source or "MSH"), ctx)
        key = _key(spec, seg, scope, env)
        if spec.key_by:
            key = KEYS[spec.key_by](res, key, env) or key
        position = seg.position if seg is not None else -1
        if env.made_from.setdefault(key, position) != position:
            # two segments of one message claim the same identity (orders repeating one filler
            # number): keep both rather than fold the second into the first
            assert seg is not None
            ctx.warn(seg.error(f"{seg.name}: its key {key.split('|', 2)[-1]!r} repeats an earlier "
                               f"{spec.make} of this message; kept apart by segment position", code="101"))
            key = f"{key}|{seg.name}#{seg.sequence}"
        ref = ctx.put(res, key)
        if not scope.anchor:
            scope.anchor = key
    for back in spec.backrefs:
        if back.get("when") and seg is not None:
            when = {field_ref(k): frozenset(map(str, v)) for k, v in back["when"].items()}
            if not _matches(when, seg, scope):
                continue
        made = scope.made.get(back["to"]) or env.made.get(back["to"])
        if made:
            set_path(ctx.resources[made[-1][1]["reference"]], back["path"], {"reference": ref["reference"]})
    if spec.create_only and ref["reference"] not in ctx.create_only:
        ctx.create_only.append(ref["reference"])
    made_ref = (seg.position if seg is not None else -1, ref)
    scope.made.setdefault(spec.make, []).append(made_ref)
    env.made.setdefault(spec.make, []).append(made_ref)


def _refs(spec: _Spec, res: Resource, seg: Segment | None, scope: Scope, env: Env) -> None:
    for path, target in spec.refs.items():
        value = _resolve(target, seg, scope, env)
        if value is not None:
            set_path(res, path, value)


def _resolve(target: str, seg: Segment | None, scope: Scope, env: Env) -> Ref | None:
    """``$patient``, ``$encounter``, ``$organization``, or ``$<Type>`` made earlier in the scope
    (else in the message; ``$<Type>@<SEG-F>=<value>`` picks the one made from a segment with
    that value; ``$<Type>@before`` the one made from the nearest segment before ``seg``, the one
    this resource is made from -- a give's OBX is its own RXG's, not the group's first: RGV^O15's
    ORDER group holds every GIVE, acsn43)."""
    name = target.lstrip("$")
    if name == "patient":
        return {"reference": scope.patient["reference"]} if scope.patient else None
    if name == "encounter":
        return {"reference": scope.encounter["reference"]} if scope.encounter else None
    if name == "organization":
        return dict(env.org)
    rtype, _, cond = name.partition("@")
    made = scope.made.get(rtype) or env.made.get(rtype) or []
    if not made:
        return None
    if cond == "before":
        before = [ref for pos, ref in made if seg is not None and 0 <= pos < seg.position]
        return {"reference": (before[-1] if before else made[0][1])["reference"]}
    if cond:
        fref, _, want = cond.partition("=")
        seg_name, fno, comp = field_ref(fref)
        by_pos = {s.position: s for s in env.ctx.message.segments if s.name == seg_name}
        for pos, ref in made:
            s = by_pos.get(pos)
            if s is not None and s.value(fno, comp=comp).strip() == want:
                return {"reference": ref["reference"]}
        return None
    return {"reference": made[0][1]["reference"]}


def _notes(target: str, res: Resource, after: tuple[str, ...], seg: Segment | None, scope: Scope) -> None:
    """NTE segments right after ``seg`` (or, for a resource made of several segments, after any
    of the ``notes_from`` segments of its scope) annotate what was made."""
    texts: list[str] = []
    segments = scope.segments
    for i, s in enumerate(segments):
        if s.name not in after or (seg is not None and s.name == seg.name and s is not seg):
            continue
        i += 1
        while i < len(segments) and segments[i].name == "NTE":
            text = common.note_text(segments[i])
            if text:
                texts.append(text)
            i += 1
    if not texts:
        return
    if target == "note":
        res.setdefault("note", []).extend({"text": t} for t in texts)
    else:
        res[target] = "\n".join(([res[target]] if res.get(target) else []) + texts)


_PRIMITIVE_CHOICE_TYPES = frozenset({
    "Boolean", "Canonical", "Code", "Date", "DateTime", "Decimal", "Id", "Instant", "Integer", "Markdown",
    "Oid", "PositiveInt", "String", "Time", "UnsignedInt", "Uri", "Url", "Uuid"})


def mark_absent(res: Resource, element: str, rtype: str, seg: Segment | None, ctx: Context) -> None:
    """A required element the message did not give: kept present with data-absent-reason, counted
    as ``absent`` in the fidelity report and warned about (never refused for it)."""
    if "[x]:" in element:  # a choice: any of its types counts; the first named is marked
        prefix, _, kind = element.partition("[x]:")
        if any(k.lstrip("_").startswith(prefix) for k in res):
            return
        # a primitive carries its extensions in the ``_`` twin (FHIR JSON), a complex type in itself
        element = f"_{prefix}{kind}" if kind in _PRIMITIVE_CHOICE_TYPES else f"{prefix}{kind}"
    name = element.lstrip("_")
    if name in res or f"_{name}" in res:
        return
    dar = {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "unknown"}]}
    res[element] = dar
    where = seg.name if seg is not None else ""
    ctx.note_unmapped("absent", f"{rtype}.{name}", where)
    if seg is not None:
        ctx.warn(seg.error(f"{where}: no value for {rtype}.{name}; stored as data-absent 'unknown'",
                           code=REQUIRED_FIELD_MISSING))


def _keyed(spec: _Spec, seg: Segment | None, scope: Scope) -> str | None:
    """The first ``key`` entry whose fields all have values, as ``SEG-F+SEG-F|value|value``."""
    for parts in spec.keys:
        values = []
        for name, fno, comp in parts:
            src = seg if seg is not None and seg.name == name else scope.first(name)
            value = src.value(fno, comp=comp).strip() if src is not None else ""
            if not value:
                break
            values.append(value)
        else:
            label = "+".join(f"{n}-{f}" for n, f, _ in parts)
            return f"{label}|{'|'.join(values)}"
    return None


def _key(spec: _Spec, seg: Segment | None, scope: Scope, env: Env) -> str:
    """The deterministic key: the first ``key`` entry whose fields all have values, scoped to the
    patient (or the institution); else the group's anchor, the segment's set id and the message."""
    key = _keyed(spec, seg, scope)
    if key is None:
        ident = (seg.value(1) or str(seg.sequence)) if seg is not None else ""
        key = f"{scope.anchor or env.ctx.message_key}|{seg.name if seg else scope.name}|{ident}"
    return key if spec.institution_scoped else f"{scope.pkey}|{spec.make}|{key}"


def _report_unmapped(ctx: Context, tpl: _Template, segments: list[Segment]) -> None:
    seen: set[str] = set()
    for seg in segments:
        if seg.name not in tpl.consumed and seg.name not in seen:
            seen.add(seg.name)
            ctx.note_unmapped("segment", seg.name)
