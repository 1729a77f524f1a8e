"""Index extraction compiled once per resource type from the search parameter data.

The indexer's reference form (``Indexer.interpret``) evaluates each enabled parameter's FHIRPath
closure and hands the values to a method per parameter type: two Python calls, a list of values
and a dispatch on the value's shape per parameter, some 200 times for a 12-result lab message.
Here the same data (``searchparams.json``, ``enabled.yaml``) is turned, the first time a type is
indexed, into the source of one function per resource type that walks exactly the enabled paths
of that type in plan order and appends the rows in place -- as dataclasses and attrs generate
``__init__`` from the field list. The source is derived at run time and never stored: the data
files stay the one description of what is indexed.

The generated function must give exactly the rows the interpreter gives (the same tuples in the
same order, the same sort keys and compartments): ``tests/test_index_plan.py`` compares both on
every resource the converter produces from the test corpus, on the official R4 examples and on
shapes chosen to reach every branch. Parameters whose rows need more than one value at a time
(strings, which keep one row per distinct text; tokens indexed for ``:text`` or ``system|``)
gather their values with the compiled walk and call the interpreter's method on them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.repository.fhirpath import CHOICE_ELEMENTS, Step, parse_expression

RowsFunction = Callable[[dict[str, Any]], Any]
Shape = tuple[str, tuple[str, ...], tuple[str, ...] | None]  # type, keys, meta's keys


@dataclass(frozen=True)
class PlanEntry:
    """One enabled parameter of a type, as the generator needs it."""

    code: str
    kind: str  # token | reference | date | string | quantity | uri
    expression: str
    method: Callable[..., None] | None  # the interpreter's method, for the kinds generated as a call


# Per-value code of the kinds generated inline; ``{v}`` is the value, ``{c}`` the code literal,
# ``{ci}`` the ``:identifier`` code literal, ``{rc}`` the parameter's rows by reference (``ref_row``
# makes and remembers one: a message's resources name the same patient, order and specimen). Each is
# the body of the interpreter's method for one value (engine.repository.indexing.Indexer._token,
# _reference, ...), line for line, but for the order of the type tests: an object first (coded
# elements and references are objects; ``str``, ``bool`` and ``dict`` have no instance in common,
# so the order changes no row), one ``isinstance`` a value fewer.
_TOKEN = """\
if isinstance({v}, dict):
    if "coding" in {v} or "text" in {v}:
        for c_ in {v}.get("coding") or ():
            cc_ = c_.get("code")
            if cc_ is not None:
                tokens_append(({c}, c_.get("system") or "", str(cc_)))
    elif "code" in {v}:
        tokens_append(({c}, {v}.get("system") or "", str({v}["code"])))
    elif "value" in {v}:
        s_ = {v}.get("system") or ""
        if s_ in CONTACT_SYSTEMS:
            s_ = ""
        tokens_append(({c}, s_, str({v}["value"])))
elif isinstance({v}, str):
    tokens_append(({c}, "", {v}))
elif isinstance({v}, bool):
    tokens_append(({c}, "", "true" if {v} else "false"))
"""
_REFERENCE = """\
if isinstance({v}, dict):
    ref_ = {v}.get("reference")
    if isinstance(ref_, str):
        refs_append({rc}.get(ref_) or ref_row({rc}, {c}, ref_))
    id_ = {v}.get("identifier")
    if isinstance(id_, dict) and id_.get("value") is not None:
        tokens_append(({ci}, id_.get("system") or "", str(id_["value"])))
elif isinstance({v}, str):
    refs_append(({c}, "", {v}))
"""
_DATE = """\
try:
    if isinstance({v}, str):
        lo_, hi_ = date_range({v})
    elif isinstance({v}, dict) and ("start" in {v} or "end" in {v}):
        lo_ = date_range({v}["start"])[0] if {v}.get("start") else FAR_PAST
        hi_ = date_range({v}["end"])[1] if {v}.get("end") else FAR_FUTURE
    else:
        lo_ = None
except ValueError:
    lo_ = None
if lo_ is not None:
    dates_append(({c}, lo_, hi_))
    if {c} not in sort or lo_ < sort[{c}]:
        sort[{c}] = lo_
"""
_QUANTITY = """\
if isinstance({v}, dict) and isinstance({v}.get("value"), (int, float)) and not isinstance({v}["value"], bool):
    quantities_append(({c}, float({v}["value"]), {v}.get("system") or "", {v}.get("code") or {v}.get("unit") or ""))
    if {c} not in sort:
        sort[{c}] = float({v}["value"])
"""
_URI = """\
if isinstance({v}, str):
    uris_append(({c}, {v}))
    sort.setdefault({c}, {v})
"""
_INLINE = {"token": _TOKEN, "reference": _REFERENCE, "date": _DATE, "quantity": _QUANTITY, "uri": _URI}
# the first row a parameter appended is its sort key (dates: the earliest start, written per value)
_SORT_AFTER = {
    "token": "if len(tokens) > n_ and {c} not in sort:\n    sort[{c}] = tokens[n_][2]\n",
    "reference": ("if len(refs) > n_ and {c} not in sort:\n    _p, rt_, rid_ = refs[n_]\n"
                  "    sort[{c}] = f\"{{rt_}}/{{rid_}}\" if rt_ else rid_\n"),
}
_COUNTED = {"token": "tokens", "reference": "refs"}
# The plan's ``IndexRows``, its fields set without the dataclass's ``__init__`` (``new_`` is
# ``object.__new__``): the Python call of ``__init__`` with nine arguments was ~2 k instructions a
# resource (perf38a), of the ~25 k a Provenance's or a Patient's rows cost. Every field is set here,
# in the order of ``IndexRows``'s fields; ``tests/test_perf38a_plan_rows.py`` holds the two to each other.
_NEW_ROWS = ("out = new_(IndexRows); out.tokens = tokens; out.refs = refs; out.dates = dates; "
             "out.strings = strings; out.quantities = quantities; out.uris = uris; out.systems = []; "
             "out.compartments = set(); out.sort = sort")
# the bound ``append``s a plan may use, each bound only when its body does (a Patient's plan appends
# no quantity, an Observation's no URI): a bound method made and freed per resource for nothing
_APPENDS = ("tokens_append", "refs_append", "dates_append", "quantities_append", "uris_append")


class _Source:
    """Python source lines under construction, with their indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._names = 0
        self.roots: dict[str, str] = {}  # a root element's lookup -> the name its values are held in

    def add(self, depth: int, text: str) -> None:
        for line in text.splitlines():
            self.lines.append("    " * depth + line)

    def name(self) -> str:
        self._names += 1
        return f"x{self._names}_"


def _walk(src: _Source, steps: Sequence[Step], node: str, depth: int, emit: Callable[[str, int], None],
          node_is_dict: bool, keys: Sequence[str] | None = None) -> None:
    """The code that visits every value ``steps`` reach from ``node`` in evaluation order, as the
    interpreter's step functions do (a field of a non-object is nothing; a list's items are each
    a value, ``null`` items included), calling ``emit`` for each.

    ``keys``: the keys ``node`` is known to have, in order (a plan for one shape of resource): a
    field that is not among them is nothing, so no code is written for it, and a choice element
    is the first of them that is its name plus a type name, as the interpreter scans them."""
    if not steps:
        emit(node, depth)
        return
    step, rest = steps[0], steps[1:]
    if step[0] == "field":
        _kind, name, cast = step
        key = name if cast is None else name + cast[0].upper() + cast[1:]
        if keys is not None and cast is None and name in CHOICE_ELEMENTS and name not in keys:
            n = len(name)
            key = next((k for k in keys if len(k) > n and k.startswith(name) and k[n].isupper()), "")
            cast = ""  # resolved: a plain lookup of that key
        if keys is not None and key not in keys:
            return  # absent from this shape: the interpreter finds nothing there
        if node == "r" and keys is not None:  # a root element of a shape's plan: read once
            _root(src, name, key, cast, depth)
            item = src.name()
            src.add(depth, f"for {item} in {src.roots[key]}:")
            _walk(src, rest, item, depth + 1, emit, False)
            return
        if not node_is_dict:
            src.add(depth, f"if isinstance({node}, dict):")
            depth += 1
        value = src.name()
        if cast is None and name in CHOICE_ELEMENTS and keys is not None:  # the key itself is there
            src.add(depth, f"{value} = {node}.get({name!r})")
            src.add(depth, f"if {value} is None:\n    {value} = choice({node}, {name!r}, None)")
        elif cast is None and name in CHOICE_ELEMENTS:
            src.add(depth, f"{value} = choice({node}, {name!r}, None)")
        else:
            src.add(depth, f"{value} = {node}.get({key!r})")
        item = src.name()
        src.add(depth, f"if {value} is not None:")
        src.add(depth + 1, f"for {item} in ({value} if isinstance({value}, list) else ({value},)):")
        _walk(src, rest, item, depth + 2, emit, False)
    elif step[0] == "resolve":
        type_name = step[1]
        src.add(depth, f"if isinstance({node}, dict) and (isinstance(r_ := {node}.get('reference'), str) and "
                       f"(r_.startswith({type_name + '/'!r}) or {'/' + type_name + '/'!r} in r_) "
                       f"or {node}.get('type') == {type_name!r}):")
        _walk(src, rest, node, depth + 1, emit, True)
    else:  # ("eq", field, literal)
        src.add(depth, f"if isinstance({node}, dict) and {node}.get({step[1]!r}) == {step[2]!r}:")
        _walk(src, rest, node, depth + 1, emit, True)


def _root(src: _Source, name: str, key: str, cast: str | None, depth: int) -> None:
    """The values of root element ``key`` of a shape's plan, held in one name (a tuple, or the
    list itself) the first time a parameter's path starts there: several parameters read the
    same element (an Observation's ``subject`` is ``patient``'s and ``subject``'s, a
    Provenance's ``agent`` three parameters'), and each walked it from ``r`` again.

    Written at the top level of ``rows`` (``depth`` 1: every parameter's walk starts there
    unconditionally), so every later parameter may use it; the interpreter's step finds the
    same values (a list's items, a single value as one, nothing for ``null``)."""
    if key in src.roots:
        return
    assert depth == 1, "a root element is read at the top level of the plan"
    value, values = src.name(), src.name()
    if cast is None and name in CHOICE_ELEMENTS:  # the key itself is there (``_walk``)
        src.add(depth, f"{value} = r.get({name!r})")
        src.add(depth, f"if {value} is None:\n    {value} = choice(r, {name!r}, None)")
    else:
        src.add(depth, f"{value} = r.get({key!r})")
    src.add(depth, f"{values} = () if {value} is None else {value} if isinstance({value}, list) else ({value},)")
    src.roots[key] = values


def _reaches(steps: Sequence[Step], keys: Sequence[str], meta_keys: Sequence[str] | None) -> bool:
    """Can this path find anything in a resource of this shape? Its first element must be there
    (a choice element: one of its typed keys), and of ``meta`` (an object in the shape) the
    element after it: every resource has ``meta.versionId`` and ``meta.lastUpdated``, and the
    tag, profile, security and source parameters are nothing for most of them."""
    kind, name, cast = steps[0] if steps[0][0] == "field" else (steps[0][0], "", None)
    if kind != "field":
        return True
    key = name if cast is None else name + cast[0].upper() + cast[1:]
    if cast is None and name in CHOICE_ELEMENTS and name not in keys:
        n = len(name)
        return any(len(k) > n and k.startswith(name) and k[n].isupper() for k in keys)
    if key not in keys:
        return False
    if key == "meta" and meta_keys is not None and len(steps) > 1 and steps[1][0] == "field":
        _k, sub, sub_cast = steps[1]
        return (sub if sub_cast is None else sub + sub_cast[0].upper() + sub_cast[1:]) in meta_keys
    return True


def generate(rtype: str, entries: Sequence[PlanEntry], compartment_params: Sequence[str],
             shape: Shape | None = None,
             ref_rows: Callable[[str], dict[str, Any]] = lambda _code: {}) -> tuple[str, dict[str, Any]]:
    """The source of ``rows(r)`` for ``rtype`` and the names it needs besides the shared ones;
    for resources of one ``shape`` only when given (``shape_of``). ``ref_rows(code)``: the dict
    of a reference parameter's rows by reference, shared by the plans."""
    keys, meta_keys = shape[1:] if shape is not None else (None, None)
    src = _Source()
    extra: dict[str, Any] = {}
    src.add(0, "def rows(r):")
    src.add(1, "tokens = []; refs = []; dates = []; strings = []; quantities = []; uris = []; sort = {}")
    src.add(1, _NEW_ROWS)
    prelude = len(src.lines)  # the ``*_append`` names the body uses are bound here, once it is written

    for i, entry in enumerate(entries):
        code = repr(entry.code)
        parts = parse_expression(entry.expression)
        if keys is not None:
            parts = [steps for steps in parts if _reaches(steps, keys, meta_keys)]
            if not parts:
                continue
        src.add(1, f"# {entry.code} ({entry.kind}): {entry.expression!r}")
        if entry.method is not None:  # values gathered, then the interpreter's method
            extra[f"m{i}_"] = entry.method
            src.add(1, "vals_ = []")
            for steps in parts:
                _walk(src, steps, "r", 1, lambda v, d: src.add(d, f"vals_.append({v})"), True, keys)
            src.add(1, f"if vals_:\n    m{i}_(out, {code}, vals_)")
            continue
        template = _INLINE[entry.kind]
        if entry.kind == "reference":
            extra[f"RC{i}_"] = ref_rows(entry.code)
        counted = _COUNTED.get(entry.kind)
        if counted:
            src.add(1, f"n_ = len({counted})")

        def emit(v: str, d: int, template: str = template, code: str = code, entry: PlanEntry = entry,
                 rc: str = f"RC{i}_") -> None:
            src.add(d, template.format(v=v, c=code, ci=repr(entry.code + ":identifier"), rc=rc))

        for steps in parts:
            _walk(src, steps, "r", 1, emit, True, keys)
        if counted:
            src.add(1, _SORT_AFTER[entry.kind].format(c=code))
    src.add(1, "comp = out.compartments")
    if rtype == "Patient":
        src.add(1, "if r.get('id'):\n    comp.add(r['id'])")
    if compartment_params:
        extra["COMP_"] = frozenset(compartment_params)
        src.add(1, "for p_, rt_, rid_ in refs:\n    if rt_ == 'Patient' and p_ in COMP_:\n        comp.add(rid_)")
    src.add(1, "return out")
    body = "\n".join(src.lines[prelude:])
    src.lines[prelude:prelude] = [f"    {name} = {name[:-7]}.append" for name in _APPENDS if name in body]
    return "\n".join(src.lines) + "\n", extra


def shape_of(resource: dict[str, Any]) -> Shape:
    """What a plan for one shape of resource may assume: its type, its keys in order, and the keys
    of its ``meta`` (None when that is not an object). A feed's converter writes a few shapes per
    type, so a plan per shape is a dict lookup per resource that skips every absent parameter."""
    meta = resource.get("meta")
    return resource["resourceType"], tuple(resource), tuple(meta) if isinstance(meta, dict) else None


# The generated code by what it is generated from, per process: each ``Indexer`` (one an Engine)
# made its plans anew, ~3 ms of CPU a shape (generate + compile), the same few dozen shapes in every
# Engine: ~1,800 compiles, ~8 % of the CPU of a sample of the suite (suitecut27). The source depends
# only on the key; what is the Indexer's own (its methods, its rows by reference) is bound at exec.
_CODE: dict[tuple[Any, ...], tuple[Any, str, tuple[str, ...]]] = {}
_CODE_KEPT = 4096  # as the Indexer's own bound on shapes


def compile_rows(rtype: str, entries: Sequence[PlanEntry], compartment_params: Sequence[str],
                 namespace: dict[str, Any], shape: Shape | None = None) -> RowsFunction:
    """``rows(resource) -> IndexRows`` for one type (or one shape of it): the generated source,
    executed once (compiled once per process for the same entries and shape)."""
    key = (rtype, tuple((e.code, e.kind, e.expression, e.method is None) for e in entries),
           tuple(compartment_params), shape)
    kept = _CODE.get(key)
    if kept is None:
        source, extra = generate(rtype, entries, compartment_params, shape, namespace["ref_rows"])
        kept = compile(source, f"<index plan {rtype}>", "exec"), source, tuple(extra)
        if len(_CODE) >= _CODE_KEPT:
            _CODE.clear()
        _CODE[key] = kept
    else:
        extra = _bound(kept[2], entries, compartment_params, namespace["ref_rows"])
    code, source, _names = kept
    scope = {**namespace, **extra}
    exec(code, scope)  # noqa: S102 - our own generated source
    fn: RowsFunction = scope["rows"]
    fn.__doc__ = source  # what was generated, for a reader in a debugger
    return fn


def _bound(names: Sequence[str], entries: Sequence[PlanEntry], compartment_params: Sequence[str],
           ref_rows: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """The names ``generate`` gave its source besides the shared ones, for this Indexer: ``m<i>_``
    entry i's method, ``RC<i>_`` the rows by reference of entry i's parameter, ``COMP_`` the
    compartment parameters (as ``generate`` binds them)."""
    extra: dict[str, Any] = {}
    for name in names:
        if name == "COMP_":
            extra[name] = frozenset(compartment_params)
        elif name.startswith("RC"):
            extra[name] = ref_rows(entries[int(name[2:-1])].code)
        else:
            assert name.startswith("m"), name
            extra[name] = entries[int(name[1:-1])].method
    return extra
