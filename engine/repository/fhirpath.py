"""The FHIRPath subset that huren's search parameters use, compiled once into plain functions.

The official R4 SearchParameter expressions for the resources huren stores need only: paths
(``Observation.subject``), choice elements (``Observation.effective`` finds ``effectiveDateTime``
or ``effectivePeriod``), type casts (``(Observation.value as Quantity)``, ``onset.as(Period)``),
``where(resolve() is Patient)``, ``where(system='email')`` and ``|`` unions. Anything else makes
``compile_expression`` raise ``UnsupportedExpression`` — the extraction script leaves such
parameters out, so what is advertised is exactly what is evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Evaluator = Callable[[dict[str, Any]], list[Any]]

_IDENT = r"[A-Za-z][A-Za-z0-9_]*"
_STEP_FIELD = re.compile(rf"^({_IDENT})$")
_STEP_AS = re.compile(rf"^as\(({_IDENT})\)$")
_STEP_RESOLVE = re.compile(rf"^where\(resolve\(\) is ({_IDENT})\)$")
_STEP_EQ = re.compile(rf"^where\(({_IDENT})\s*=\s*'([^']*)'\)$")
_INFIX_AS = re.compile(rf"\(([A-Za-z0-9_.]+) as ({_IDENT})\)")


class UnsupportedExpression(ValueError):
    """The expression uses FHIRPath beyond huren's subset."""


def _split_top(text: str, separator: str) -> list[str]:
    """Split on ``separator`` where it stands outside parentheses and quotes."""
    parts, depth, quote, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        elif not quote and depth == 0 and ch == separator:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def split_union(expression: str) -> list[str]:
    """Split on top-level ``|`` (not inside parentheses or quotes)."""
    return [p for p in (part.strip() for part in _split_top(expression, "|")) if p]


def _split_steps(path: str) -> list[str]:
    return _split_top(path, ".")


# R4 choice elements (``value[x]`` ...) that the supported search expressions reach; only these
# names are looked up as ``name`` + TypeName, which keeps the common path a single dict lookup.
CHOICE_ELEMENTS = frozenset({
    "value", "effective", "onset", "abatement", "deceased", "multipleBirth", "occurrence", "collected",
    "occurred", "performed", "asNeeded", "timing", "serviced", "medication", "product", "born", "age",
    "reported", "defaultValue", "item", "answer", "allowed", "used", "subject", "location", "doseNumber",
    "seriesDoses", "content", "source", "target", "entered", "fixed", "pattern", "rate", "dose",
})


def choice(node: dict[str, Any], name: str, cast: str | None) -> Any:
    """``node``'s value of element ``name`` (a choice element: the first ``name`` + TypeName key)."""
    if cast is not None:
        return node.get(name + cast[0].upper() + cast[1:])
    value = node.get(name)
    if value is not None or name not in CHOICE_ELEMENTS:
        return value
    n = len(name)
    for key, val in node.items():
        if len(key) > n and key.startswith(name) and key[n].isupper():
            return val
    return None


def _field(name: str, cast: str | None) -> Callable[[list[Any]], list[Any]]:
    def step(nodes: list[Any]) -> list[Any]:
        out: list[Any] = []
        for node in nodes:
            if not isinstance(node, dict):
                continue
            value = choice(node, name, cast)
            if value is None:
                continue
            if isinstance(value, list):
                out.extend(value)
            else:
                out.append(value)
        return out

    return step


def _top_field(name: str) -> Evaluator:
    """``Type.name`` (the commonest expression): one dict lookup, no list of nodes to walk."""

    def evaluate(resource: dict[str, Any]) -> list[Any]:
        value = resource.get(name)
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    return evaluate


def _resolve_is(type_name: str) -> Callable[[list[Any]], list[Any]]:
    prefix = type_name + "/"
    infix = "/" + type_name + "/"

    def step(nodes: list[Any]) -> list[Any]:
        out = []
        for node in nodes:
            if not isinstance(node, dict):
                continue
            ref = node.get("reference")
            if isinstance(ref, str) and (ref.startswith(prefix) or infix in ref) or node.get("type") == type_name:
                out.append(node)
        return out

    return step


def _where_eq(field: str, literal: str) -> Callable[[list[Any]], list[Any]]:
    def step(nodes: list[Any]) -> list[Any]:
        return [n for n in nodes if isinstance(n, dict) and n.get(field) == literal]

    return step


# One step of a parsed path: ("field", name, cast or None), ("resolve", type), ("eq", field, literal).
Step = tuple[Any, ...]


def parse_path(path: str, resource_type: str | None = None) -> tuple[str, list[Step]]:
    """The root and the steps of one union member (``Observation.value.as(Quantity)``), checked
    against the subset; ``compile_expression`` makes closures of them and the indexer's compiled
    plans (``engine.repository.index_plan``) Python source."""
    # ``(A.b as T)`` and ``(A.b as T).c`` are the function form ``A.b.as(T)``, ``A.b.as(T).c``
    path = _INFIX_AS.sub(r"\1.as(\2)", path.strip())
    if not re.fullmatch(r"[A-Za-z0-9_.()=' ]+", path):
        raise UnsupportedExpression(path)
    raw_steps = _split_steps(path)
    root = raw_steps[0]
    if not _STEP_FIELD.match(root) or not root[0].isupper():
        raise UnsupportedExpression(path)
    if resource_type and root not in (resource_type, "Resource", "DomainResource"):
        raise UnsupportedExpression(f"{path} is not about {resource_type}")
    steps: list[Step] = []
    fields: list[tuple[str, str | None]] = []
    for raw in raw_steps[1:]:
        if _STEP_FIELD.match(raw):
            fields.append((raw, None))
            continue
        m_as = _STEP_AS.match(raw)
        if m_as and fields:
            name, _ = fields.pop()
            fields.append((name, m_as.group(1)))
            continue
        steps += [("field", name, c) for name, c in fields]
        fields = []
        m_res, m_eq = _STEP_RESOLVE.match(raw), _STEP_EQ.match(raw)
        if m_res:
            steps.append(("resolve", m_res.group(1)))
        elif m_eq:
            steps.append(("eq", m_eq.group(1), m_eq.group(2)))
        else:
            raise UnsupportedExpression(raw)
    steps += [("field", name, c) for name, c in fields]
    if not steps:
        raise UnsupportedExpression(path)
    return root, steps


def parse_expression(expression: str, resource_type: str | None = None) -> list[list[Step]]:
    """The steps of each union member of ``expression``."""
    parts = [parse_path(part, resource_type)[1] for part in split_union(expression)]
    if not parts:
        raise UnsupportedExpression(expression)
    return parts


def _compile_path(path: str, resource_type: str | None) -> tuple[str, Evaluator]:
    root, parsed = parse_path(path, resource_type)
    steps: list[Callable[[list[Any]], list[Any]]] = []
    for step in parsed:
        if step[0] == "field":
            steps.append(_field(step[1], step[2]))
        elif step[0] == "resolve":
            steps.append(_resolve_is(step[1]))
        else:
            steps.append(_where_eq(step[1], step[2]))
    if len(parsed) == 1 and parsed[0][0] == "field" and parsed[0][2] is None and parsed[0][1] not in CHOICE_ELEMENTS:
        return root, _top_field(parsed[0][1])

    def evaluate(resource: dict[str, Any]) -> list[Any]:
        nodes: list[Any] = [resource]
        for step in steps:
            nodes = step(nodes)
            if not nodes:
                return nodes
        return nodes

    return root, evaluate


def compile_expression(expression: str, resource_type: str | None = None) -> Evaluator:
    """Compile ``expression`` (restricted to the parts about ``resource_type`` when given)."""
    parts = []
    for part in split_union(expression):
        parts.append(_compile_path(part, resource_type)[1])
    if not parts:
        raise UnsupportedExpression(expression)
    if len(parts) == 1:
        return parts[0]

    def union(resource: dict[str, Any]) -> list[Any]:
        out: list[Any] = []
        for part in parts:
            out.extend(part(resource))
        return out

    return union


def first_fields(expression: str) -> frozenset[str] | None:
    """The top-level elements an expression starts from (``None`` when that cannot be said).

    The indexer skips a parameter when none of them is present, which is most parameters of
    any given resource.
    """
    names = set()
    for part in split_union(expression):
        steps = _split_steps(_INFIX_AS.sub(r"\1.as(\2)", part.strip()))
        if len(steps) < 2 or not _STEP_FIELD.match(steps[1]):
            return None
        cast = _STEP_AS.match(steps[2]) if len(steps) > 2 else None
        if cast is not None and steps[1] in CHOICE_ELEMENTS:  # value.as(Quantity) needs valueQuantity
            names.add(steps[1] + cast.group(1)[0].upper() + cast.group(1)[1:])
        else:
            names.add(steps[1])
    return frozenset(names)


def parts_for_type(expression: str, resource_type: str) -> str | None:
    """The union members of a multi-resource expression that are about ``resource_type``."""
    keep = []
    for part in split_union(expression):
        root = part.lstrip("(").split(".", 1)[0].strip()
        if root in (resource_type, "Resource", "DomainResource"):
            keep.append(part)
    return " | ".join(keep) or None
