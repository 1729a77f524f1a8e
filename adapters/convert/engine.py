"""The generic mapping engine: apply a YAML rule table to a segment, building a FHIR element tree.

A rule names a field, a data type converter (``datatypes.CONVERTERS``) and a target path:
``a.b`` sets nested elements, ``a[]`` appends to a list; ``into`` + ``wrap`` put the converted
value inside a fixed element (``{type: ..., individual: <value>}``); ``only_if_empty`` fills a
target only when an earlier rule did not. A value that fails conversion is a warning and is left
out, unless the rule is ``required`` or ``strict`` — then it is an AE located at segment, field and
component (``required`` also refuses a missing value).
"""

from __future__ import annotations

import copy
from typing import Any

from adapters.convert.context import Context
from adapters.convert.datatypes import CONVERTERS
from adapters.convert.tables import table
from adapters.hl7v2.errors import (
    APPLICATION_INTERNAL_ERROR,
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    HL7Error,
)
from adapters.hl7v2.parser import Segment

Resource = dict[str, Any]


def apply_table(name: str, segments: dict[str, Segment | None], ctx: Context, resource: Resource) -> Resource:
    """Apply rule table ``name`` with ``segments`` (by segment name) to ``resource`` in place."""
    for seg_name, field_no, always, rule in _compiled(table(ctx.site, name)):
        seg = segments.get(seg_name)
        if seg is None:
            continue
        fields = seg.fields
        if not always and (field_no >= len(fields) or not fields[field_no]):
            continue  # the common case: an empty field costs one index
        apply_rule(rule, seg, ctx, resource)
    return resource


_COMPILED: dict[int, tuple[Any, list[tuple[str, int, bool, dict[str, Any]]]]] = {}


def _compiled(spec: dict[str, Any]) -> list[tuple[str, int, bool, dict[str, Any]]]:
    """(segment, field, run-even-when-empty, rule) per rule, computed once per loaded table."""
    cached = _COMPILED.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    default_segment = spec.get("segment", "")
    rules = [
        (
            rule.get("segment", default_segment),
            int(rule["field"]),
            "default" in rule or bool(rule.get("required")),
            rule,
        )
        for rule in spec.get("rules", ())
    ]
    _COMPILED[id(spec)] = (spec, rules)
    return rules


def apply_rule(rule: dict[str, Any], seg: Segment, ctx: Context, resource: Resource) -> None:
    converter = CONVERTERS.get(rule["type"])
    if converter is None:
        raise HL7Error(
            f"mapping rule for {seg.name}-{rule['field']} names unknown type {rule['type']!r}",
            code=APPLICATION_INTERNAL_ERROR,
        )
    target: str = rule["target"]
    field_no: int = rule["field"]
    raw = seg.field(field_no)
    if not raw and "default" not in rule and not rule.get("required"):
        return  # the common case: an empty field costs one lookup
    if rule.get("only_if_empty") and _get(resource, target) is not None:
        return
    reps = seg.reps(field_no)
    if not rule.get("repeats"):
        reps = reps[:1]
    produced = False
    for rep in reps:
        try:
            value = converter(rep, rule, ctx)
        except ValueError as exc:
            err = seg.error(
                f"{seg.name}-{field_no}: {exc}", field_no, rule.get("component"), code=DATA_TYPE_ERROR
            )
            if rule.get("required") or rule.get("strict"):
                raise err from None
            ctx.warn(err)
            continue
        if value is None or value == {} or value == []:
            continue
        if "into" in rule:
            element = copy.deepcopy(rule.get("wrap", {}))
            element[rule["into"]] = value
            value = element
        _set(resource, target, value)
        produced = True
    if not produced:
        if "default" in rule:
            default = copy.deepcopy(rule["default"])
            if rule["type"] == "ID_CODING" and "system" in rule:
                default = {"system": rule["system"], **default}
            _set(resource, target, default)
        elif rule.get("required"):
            raise seg.error(f"{seg.name}-{field_no} is required", field_no, code=REQUIRED_FIELD_MISSING)


def _set(resource: Resource, path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = resource
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part.endswith("[]"):
            key = part[:-2]
            items = node.setdefault(key, [])
            if last:
                items.append(value)
                return
            child: dict[str, Any] = {}
            items.append(child)
            node = child
        else:
            if last:
                node[part] = value
                return
            node = node.setdefault(part, {})


def _get(resource: Resource, path: str) -> Any:
    node: Any = resource
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part.removesuffix("[]"))
        if node is None:
            return None
    return node
