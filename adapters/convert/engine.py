"""The generic mapping engine: apply a YAML rule table to a segment, building a FHIR element tree.

A rule names a field, a data type converter (``datatypes.CONVERTERS``) and a target path:
``a.b`` sets nested elements, ``a[]`` appends to a list; ``into`` + ``wrap`` put the converted
value inside a fixed element (``{type: ..., individual: <value>}``; ``into: type[]`` as a list of one), and ``wrap_fields`` fills
elements of that wrapper from other fields of the same segment (``{type: {field: 4, type: CWE,
list: true}}``: an appointment's person and their role, AIP-3 and AIP-4), each replacing the
wrapper's constant of that name when it converts to something (with no ``into``: elements of the
converted value itself); ``only_if_empty`` fills a
target only when an earlier rule did not; ``merge`` adds a converted dict to what the target
holds (a Quantity's value from one field, its unit from the next); ``with`` adds constant elements
to the converted value (an identifier's type); ``skip`` lists sent values that mean "none";
``when_valued``/``unless_valued`` name another field of the segment that must (must not) hold a
value for the rule to run (OBR-7 is the start of a period only when OBR-8 ends it);
``when_equals``/``unless_equals`` (``{field: [values]}``) another field's first component that must
(must not) be one of the values (PV1-3's bed is ``planned`` when PV1-2 is P, pre-admit).
A value that fails conversion is a warning and is left out, unless the rule is ``required`` or ``strict`` — then it is an AE located at segment, field and
component (``required`` also refuses a missing value).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.convert.by_identity import ByIdentity
from adapters.convert.context import Context
from adapters.convert.datatypes import CONVERTERS, decimal, warn_unknown_systems
from adapters.convert.tables import known_coding_system, table
from adapters.hl7v2.errors import (
    APPLICATION_INTERNAL_ERROR,
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    HL7Error,
    NotInTable,
)
from adapters.hl7v2.parser import Segment

Resource = dict[str, Any]
# one compiled rule: (segment name, field, run even when the field is empty, step)
Step = Callable[[Segment, Context, Resource], None]
Plan = list[tuple[str, int, bool, Step]]


def apply_table(name: str, segments: dict[str, Segment | None], ctx: Context, resource: Resource) -> Resource:
    """Apply rule table ``name`` with ``segments`` (by segment name) to ``resource`` in place."""
    _compiled(table(ctx.site, name))(segments, ctx, resource)
    return resource


Applier = Callable[[dict[str, Segment | None], Context, Resource], None]
_COMPILED: ByIdentity[dict[str, Any], Applier] = ByIdentity(256)  # a site compiles ~30 rule tables (459 sample messages: 26)


def _applier(plan: Plan) -> Applier:
    """The compiled table as one generated function: each rule a line, in the table's order, that
    runs its step when its segment is there and its field is not empty (or always, for a rule
    with a default or a required value). The same as looping over the rules -- a table has 15-25
    rules and a message fills a few of their fields -- without the loop's per-rule unpacking and
    lookups (~0.2 us a rule, ~40 rules a lab message)."""
    names = list(dict.fromkeys(seg_name for seg_name, _, _, _ in plan))
    lines = ["def apply(segments, ctx, resource):"]
    for i, seg_name in enumerate(names):
        lines.append(f"    g{i} = segments.get({seg_name!r})")
        lines.append(f"    f{i} = g{i}.fields if g{i} is not None else ()")
        lines.append(f"    n{i} = len(f{i})")
    namespace: dict[str, Any] = {}
    for r, (seg_name, field_no, always, step) in enumerate(plan):
        i = names.index(seg_name)
        namespace[f"s{r}"] = step
        if always:
            lines.append(f"    if g{i} is not None: s{r}(g{i}, ctx, resource)")
        else:
            lines.append(f"    if n{i} > {int(field_no)} and f{i}[{int(field_no)}]: s{r}(g{i}, ctx, resource)")
    if len(lines) == 1:
        lines.append("    return None")
    exec(compile("\n".join(lines) + "\n", "<rule table>", "exec"), namespace)  # noqa: S102 -- names and ints only
    return namespace["apply"]


def _compiled(spec: dict[str, Any]) -> Applier:
    """The table compiled into a plan and its applier, once per loaded table (the YAML stays the
    data that drives conversion; compiling only resolves converters, paths and flags ahead of
    time)."""
    cached = _COMPILED.get(spec)
    if cached is not None:
        return cached
    default_segment = spec.get("segment", "")
    plan: Plan = [
        (
            rule.get("segment", default_segment),
            int(rule["field"]),
            "default" in rule or bool(rule.get("required")),
            compile_rule(located(rule, rule.get("segment", default_segment))),
        )
        for rule in spec.get("rules", ())
    ]
    return _COMPILED.put(spec, _applier(plan))


def located(rule: dict[str, Any], segment: str) -> dict[str, Any]:
    """The rule, told its ``SEG-n`` when it maps through a vocabulary: a value the table lacks is
    then reported with the field it came from (fidelity report)."""
    return {**rule, "where": f"{segment}-{rule['field']}"} if "vocab" in rule else rule


def json_copy(value: Any) -> Any:
    """Copy of a YAML/JSON value (dicts, lists, scalars): a fraction of ``copy.deepcopy``'s cost."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


def literal(value: Any, constants: dict[str, Any]) -> str:
    """Python source that builds a fresh copy of ``value`` (dicts and lists of JSON/YAML values):
    strings, ints, bools and None written with ``repr`` (a literal of exactly that value), any
    other leaf -- a float, which may be an exact decimal -- named as a constant in ``constants``
    and shared, as ``json_copy`` shares it (numbers are immutable). Raises TypeError for a key
    that is not a string."""
    if isinstance(value, dict):
        if any(type(k) is not str for k in value):
            raise TypeError("only string keys are written as literals")
        return "{" + ", ".join(f"{k!r}: {literal(v, constants)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v, constants) for v in value) + "]"
    if value is None or type(value) in (str, int, bool):
        return repr(value)
    name = f"_c{len(constants)}"
    constants[name] = value
    return name


def copier(value: Any) -> Callable[[], Any]:
    """A function returning a fresh copy of the constant ``value`` each call (what ``json_copy``
    returns), compiled once: a dict display of constants builds a tree in a fraction of what
    walking and copying one costs. A rule's ``with``, ``wrap`` and ``default`` are copied for every
    value they are applied to."""
    if not isinstance(value, (dict, list)):
        return lambda: value
    constants: dict[str, Any] = {}
    try:
        source = f"def make():\n    return {literal(value, constants)}\n"
    except TypeError:
        return lambda: json_copy(value)
    namespace: dict[str, Any] = dict(constants)
    exec(compile(source, "<mapping constant>", "exec"), namespace)  # noqa: S102 -- literals via repr only
    return namespace["make"]


# the converter keeping a CWE's codes as sent under the systems it names (CWE_VOCAB translates the code
# through its vocabulary whatever the system: its unknown names are counted in the fidelity report alone)
_CODED = frozenset({"CWE"})


def compile_rule(rule: dict[str, Any]) -> Step:
    """One rule → a step ``(segment, ctx, resource) -> None`` with everything that does not depend
    on the message (converter, target path, wrapping, default) resolved once."""
    converter = CONVERTERS.get(rule["type"])
    field_no: int = rule["field"]
    if converter is None:

        def unknown(seg: Segment, ctx: Context, resource: Resource) -> None:
            raise HL7Error(
                f"mapping rule for {seg.name}-{rule['field']} names unknown type {rule['type']!r}",
                code=APPLICATION_INTERNAL_ERROR,
            )

        return unknown
    target: str = rule["target"]
    path = _compile_path(target)
    set_value = _setter(path)
    has_default = "default" in rule
    required = bool(rule.get("required"))
    fail_hard = required or bool(rule.get("strict"))
    only_if_empty = bool(rule.get("only_if_empty"))
    repeats = bool(rule.get("repeats"))
    component = rule.get("component")
    into = rule.get("into")
    into_key, into_list = (into[:-2], True) if into and into.endswith("[]") else (into, False)  # ``type[]``: a list of one
    wrap = rule.get("wrap", {})
    # elements of the wrapper read from other fields of the segment: (name, field, converter, sub-rule, a list)
    wrap_fields = tuple((name, sub["field"], CONVERTERS[sub["type"]], sub, bool(sub.get("list")))
                        for name, sub in (rule.get("wrap_fields") or {}).items())
    extra = rule.get("with")  # constant elements merged into the converted value
    skip = frozenset(str(v) for v in rule.get("skip", ()))  # sent values that mean "nothing"
    merge = bool(rule.get("merge"))  # merge a dict value into what the target already holds
    # ``times``: another field's NM the converted Money is multiplied by (FT1-12 the unit amount
    # times FT1-10 the quantity: the line's amount when the extended FT1-11 is not sent), exactly
    times: int | None = rule.get("times")
    credit = rule["type"] == "CREDIT_MONEY"
    coded = rule["type"] in _CODED  # a CWE whose CWE-3/CWE-6 may name a coding system huren does not know
    # ``coding_method``: another field naming the coding system of a code sent with no CWE-3 (PR1-2,
    # DG1-2: ``PR1|1|CPT|73630|``); without it such a code reads as the sender's own local code
    coding_method: int | None = rule.get("coding_method")
    # another field of the segment that decides whether the rule runs (the IG's "IF OBR-8 VALUED")
    when_valued: int | None = rule.get("when_valued")
    unless_valued: int | None = rule.get("unless_valued")
    # another field's value that decides it (the IG's "IF PV1-2 EQUALS P"): (field, values) or None
    when_equals = _field_values(rule.get("when_equals"))
    unless_equals = _field_values(rule.get("unless_equals"))
    # ``null_deletes``: the field sent as HL7's explicit null ``""`` deletes the stored element
    # (true), the stored entries of the list it states (path -> values, e.g. {use: [work]}; a path may
    # be a merge key's ``@type``, OBX-16: {"@type": [Practitioner]}) or the element it names (a
    # choice, ``deceased[x]``: PID-30 states whichever of its types is stored)
    deletes = rule.get("null_deletes")
    null_element = (deletes if isinstance(deletes, str) else target).split(".", 1)[0].removesuffix("[]")
    where = (tuple((k, tuple(v) if isinstance(v, list) else (str(v),)) for k, v in deletes.items())
             if isinstance(deletes, dict) else ())
    # ``null_leaves``: what another field stated that the deleted value held too (``Delete.leaves``)
    leaves = tuple((rule.get("null_leaves") or {}).items())
    default: Any = None
    if has_default:
        default = rule["default"]
        if rule["type"] == "ID_CODING" and "system" in rule:
            default = {"system": rule["system"], **default}
    # the constants copied for each value (compiled once: see ``copier``)
    copy_extra = copier(extra) if extra else None
    copy_wrap = copier(wrap)
    copy_default = copier(default)

    def step(seg: Segment, ctx: Context, resource: Resource) -> None:
        if only_if_empty and _get(resource, path) is not None:
            return
        if when_valued is not None and not seg.has(when_valued):
            return
        if unless_valued is not None and seg.has(unless_valued):
            return
        if when_equals is not None and seg.value(when_equals[0]).strip().upper() not in when_equals[1]:
            return
        if unless_equals is not None and seg.value(unless_equals[0]).strip().upper() in unless_equals[1]:
            return
        reps = seg.reps(field_no)
        if not repeats:
            reps = reps[:1]
        produced = False
        met = 0
        for rep in reps:
            if skip and rep.comp(1).strip() in skip:
                continue
            if coded:
                met = ctx.unknown_systems
            try:
                value = converter(rep, rule, ctx)
            except ValueError as exc:
                err = seg.error(f"{seg.name}-{field_no}: {exc}", field_no, component,
                                code=getattr(exc, "code", DATA_TYPE_ERROR))  # NotInTable: 103
                if fail_hard:
                    raise err from None
                if not (isinstance(exc, NotInTable) and _said(ctx, err)):  # AL1-2: two tables, one value
                    ctx.warn(err)
                continue
            if value is None or (not value and value is not False and value != 0):
                continue  # nothing converted ({}, [], ""); False and 0 are values
            if coded and ctx.unknown_systems != met:  # a code under a coding system huren does not know (conv42)
                n = reps.index(rep)
                warn_unknown_systems(seg, field_no, rep, ctx, n + 1 if n else None)
            if times is not None and isinstance(value, dict) and seg.value(times).strip():
                try:
                    value["value"] = _multiplied(value["value"], seg.value(times).strip(), credit)
                except ValueError as exc:
                    ctx.warn(seg.error(f"{seg.name}-{times}: {exc}", times, code=DATA_TYPE_ERROR))
                    continue
            if coding_method is not None and isinstance(value, dict) and not rep.comp(3).strip():
                _coded_by_method(value, seg.value(coding_method), ctx)
            if copy_extra is not None and isinstance(value, dict):
                value.update(copy_extra())
            if into is not None or (wrap_fields and isinstance(value, dict)):
                # with no ``into``, ``wrap_fields`` fill elements of the converted value itself (a
                # service's concept, AIS-3, and its segment's set id, AIS-1)
                element = copy_wrap() if into is not None else value
                if into is not None:
                    element[into_key] = [value] if into_list else value
                for name, sub_field, sub_converter, sub, as_list in wrap_fields:
                    if not seg.has(sub_field):
                        continue
                    try:
                        part = sub_converter(seg.rep(sub_field), sub, ctx)
                    except ValueError as exc:
                        ctx.warn(seg.error(f"{seg.name}-{sub_field}: {exc}", sub_field,
                                           code=getattr(exc, "code", DATA_TYPE_ERROR)))
                        continue
                    if part is not None and part != "":
                        element[name] = [part] if as_list else part
                value = element
            if merge and isinstance(value, dict):
                current = _get(resource, path)
                if isinstance(current, dict):
                    current.update(value)
                    produced = True
                    continue
            set_value(resource, value)
            produced = True
        if not produced:
            if deletes and not reps and seg.field(field_no) == '""':
                ctx.delete(resource, null_element, where, leaves=leaves)
            if has_default:
                set_value(resource, copy_default())
            elif required:
                raise seg.error(f"{seg.name}-{field_no} is required", field_no, code=REQUIRED_FIELD_MISSING)

    return step


def _said(ctx: Context, err: HL7Error) -> bool:
    """Whether the same warning, at the same place, was given already (a field read by two rules)."""
    return any(w.message == err.message and w.segment == err.segment and w.sequence == err.sequence
               for w in ctx.warnings)


def _multiplied(amount: Any, quantity: str, credit: bool) -> Any:
    """``amount`` times the NM ``quantity``, exactly (decimal arithmetic on the texts, the JSON number
    kept with its digits); a credit's stays negative whatever the quantity's sign."""
    try:
        product = Decimal(str(amount)) * Decimal(quantity.lstrip("+"))
    except InvalidOperation:
        raise ValueError(f"{quantity!r} is not a number") from None
    if credit:
        product = -abs(product)
    return decimal(format(product, "f"))


def apply_rule(rule: dict[str, Any], seg: Segment, ctx: Context, resource: Resource) -> None:
    """Apply one rule (uncompiled use: compiles it each time; tables go through ``apply_table``)."""
    raw = seg.field(rule["field"])
    if not raw and "default" not in rule and not rule.get("required") and rule["type"] in CONVERTERS:
        return
    compile_rule(rule)(seg, ctx, resource)


Path = tuple[tuple[str, bool], ...]  # (element name, is a list the value is appended to)


def _compile_path(path: str) -> Path:
    return tuple((part[:-2], True) if part.endswith("[]") else (part, False) for part in path.split("."))


def _setter(path: Path) -> Callable[[Resource, Any], None]:
    """A setter for ``a.b`` (nested elements) / ``a[]`` (append) paths; the one- and two-element
    paths that make up nearly every table get their own direct closures."""
    if len(path) == 1:
        key, is_list = path[0]
        if is_list:

            def append(resource: Resource, value: Any) -> None:
                items = resource.get(key)
                if items is None:
                    resource[key] = [value]
                else:
                    items.append(value)

            return append

        def assign(resource: Resource, value: Any) -> None:
            resource[key] = value

        return assign

    def nested(resource: Resource, value: Any) -> None:
        node: Any = resource
        last = len(path) - 1
        for i, (key, is_list) in enumerate(path):
            if is_list:
                items = node.setdefault(key, [])
                if i == last:
                    items.append(value)
                    return
                child: dict[str, Any] = {}
                items.append(child)
                node = child
            else:
                if i == last:
                    node[key] = value
                    return
                node = node.setdefault(key, {})

    return nested


_SETTERS: dict[str, Callable[[Resource, Any], None]] = {}


def set_path(resource: Resource, path: str, value: Any) -> None:
    """Set ``value`` at a rule-style path (``a.b``, ``a[]``, ``a[].b``) of ``resource``."""
    setter = _SETTERS.get(path)
    if setter is None:
        setter = _SETTERS[path] = _setter(_compile_path(path))
    setter(resource, value)


def _get(resource: Resource, path: Path) -> Any:
    node: Any = resource
    for key, _ in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
        if node is None:
            return None
    return node


def _field_values(spec: Any) -> tuple[int, frozenset[str]] | None:
    """A rule's ``when_equals``/``unless_equals`` (``{field: [values]}``, one field) compiled."""
    if not spec:
        return None
    ((field_no, values),) = spec.items()
    return int(field_no), frozenset(str(v).strip().upper() for v in values)


def _coded_by_method(concept: dict[str, Any], method: str, ctx: Context) -> None:
    """The first coding of ``concept`` (a code sent with no CWE-3, so under the sender's local
    system) put under the system its segment's coding-method field names, when huren knows that
    name (``coding_systems.yaml``); an unknown or local name leaves the local system as it was."""
    system = known_coding_system(ctx.site, method) if method.strip() else None
    codings = concept.get("coding") or ()
    if system and codings and codings[0].get("system") == ctx.local_system:
        codings[0]["system"] = system
