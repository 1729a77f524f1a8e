"""huren's own rules on top of FHIR R4, read from the YAML files beside this module.

One file per resource type (``Observation.yaml``...), data not code, so an integrator can read what
huren demands of a resource and why. A file holds:

``resourceType``
    the R4 resource type the rules apply to.
``required``
    element name -> why huren needs it. ``effective[x]`` means any of the type's
    ``effectiveDateTime``/``effectivePeriod``/... choices. Missing -> 422 naming the element.
``rules`` (optional)
    a list of ``{element, schema, message}``: ``schema`` is a JSON-schema fragment applied to the
    value at ``element`` (a dotted path; arrays along the way are checked item by item) when it is
    present; ``message`` is what the caller reads when it fails.
``required_when`` (optional)
    ``{match, elements}``: ``elements`` (same form as ``required``) are demanded only of resources
    that ``match`` (a JSON-schema fragment on the whole resource). This keeps a rule where it
    matters: e.g. a result that can enter mutual recognition needs its performer, a home blood
    pressure does not.

A malformed file is an error at start-up naming the file and the field (``ProfileError``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

PROFILES_DIR = Path(__file__).resolve().parent


class ProfileError(ValueError):
    """A profile file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Rule:
    element: tuple[str, ...]
    check: Any  # a compiled jsonschema_rs validator
    message: str


@dataclass(frozen=True)
class Profile:
    resource_type: str
    # element as written (e.g. "effective[x]") -> (concrete JSON names that satisfy it, why)
    required: dict[str, tuple[frozenset[str], str]] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    when: Any = None  # compiled ``required_when.match``, or None
    required_when: dict[str, tuple[frozenset[str], str]] = field(default_factory=dict)

    def satisfied_by(self, resource: dict[str, Any]) -> bool:
        """The hot path: no paths, no messages, no generators."""
        keys = resource.keys()
        for names, _ in self.required.values():
            if keys.isdisjoint(names):
                return False
        if self.when is not None and self.when.is_valid(resource):
            for names, _ in self.required_when.values():
                if keys.isdisjoint(names):
                    return False
        for rule in self.rules:
            value = resource.get(rule.element[0])
            if value is None:
                continue
            if len(rule.element) > 1 or isinstance(value, list):
                if not all(rule.check.is_valid(v) for _, v in _values_at(resource, rule.element, "")):
                    return False
            elif not rule.check.is_valid(value):
                return False
        return True

    def problems(self, resource: dict[str, Any], base: str) -> Iterator[tuple[str, str, str]]:
        keys = resource.keys()
        required = self.required
        if self.when is not None and self.when.is_valid(resource):
            required = {**required, **self.required_when}
        for element, (names, why) in required.items():
            # a JSON null is already a structure error (the schema rejects it), so presence is enough
            if keys.isdisjoint(names):
                yield f"{base}.{element}", "required", f"is required by huren: {why}"
        for rule in self.rules:
            for path, value in _values_at(resource, rule.element, base):
                if not rule.check.is_valid(value):
                    yield path, "invariant", rule.message


def _values_at(node: Any, element: tuple[str, ...], at: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _values_at(item, element, f"{at}[{i}]")
        return
    if not element:
        yield at, node
        return
    if isinstance(node, dict) and node.get(element[0]) is not None:
        yield from _values_at(node[element[0]], element[1:], f"{at}.{element[0]}")


def _choices(definition: dict[str, Any], element: str) -> tuple[str, ...]:
    props = definition.get("properties", {})
    if element.endswith("[x]"):
        prefix = element[:-3]
        return tuple(p for p in props if p.startswith(prefix) and p[len(prefix) : len(prefix) + 1].isupper())
    return (element,) if element in props else ()


def load_profile(path: Path, definitions: dict[str, Any]) -> Profile:
    def fail(what: str) -> ProfileError:
        return ProfileError(f"{path}: {what}")

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise fail(f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise fail("must be a mapping with resourceType, required and optional rules")
    unknown = set(data) - {"resourceType", "required", "rules", "required_when"}
    if unknown:
        raise fail(f"unknown keys {sorted(unknown)} (allowed: resourceType, required, rules, required_when)")
    rtype = data.get("resourceType")
    definition = definitions.get(rtype) if isinstance(rtype, str) else None
    if definition is None or "resourceType" not in definition.get("properties", {}):
        raise fail(f"resourceType: {rtype!r} is not an R4 resource type")
    required = _required(data.get("required") or {}, "required", rtype, definition, fail)
    when, required_when = None, {}
    if "required_when" in data:
        block = data["required_when"]
        if not isinstance(block, dict) or set(block) != {"match", "elements"}:
            raise fail("required_when: needs exactly the keys match, elements")
        try:
            when = jsonschema_rs.validator_for(block["match"])
        except (ValueError, TypeError) as exc:
            raise fail(f"required_when.match: not a valid JSON schema: {exc}") from None
        required_when = _required(block["elements"] or {}, "required_when.elements", rtype, definition, fail)
    rules: list[Rule] = []
    rules_in = data.get("rules") or []
    if not isinstance(rules_in, list):
        raise fail("rules: must be a list of {element, schema, message}")
    for i, rule in enumerate(rules_in):
        if not isinstance(rule, dict) or set(rule) != {"element", "schema", "message"}:
            raise fail(f"rules[{i}]: needs exactly the keys element, schema, message")
        element = tuple(str(rule["element"]).split("."))
        if element[0] not in definition.get("properties", {}):
            raise fail(f"rules[{i}].element: {rtype} has no element {element[0]!r}")
        try:
            check = jsonschema_rs.validator_for(rule["schema"])
        except (ValueError, TypeError) as exc:
            raise fail(f"rules[{i}].schema: not a valid JSON schema: {exc}") from None
        rules.append(Rule(element=element, check=check, message=str(rule["message"]).strip()))
    return Profile(resource_type=rtype, required=required, rules=tuple(rules), when=when,
                   required_when=required_when)


def _required(given: Any, where: str, rtype: str, definition: dict[str, Any],
              fail: Any) -> dict[str, tuple[frozenset[str], str]]:
    if not isinstance(given, dict):
        raise fail(f"{where}: must map element names to the reason huren needs them")
    required: dict[str, tuple[frozenset[str], str]] = {}
    for element, why in given.items():
        names = _choices(definition, str(element))
        if not names:
            raise fail(f"{where}.{element}: {rtype} has no element {element!r}")
        if not isinstance(why, str) or not why.strip():
            raise fail(f"{where}.{element}: give the reason huren needs it")
        required[str(element)] = (frozenset(names), why.strip())
    return required


def load_profiles(directory: Path | None, definitions: dict[str, Any]) -> dict[str, Profile]:
    """Every ``*.yaml`` in ``directory`` (default: the files shipped here), keyed by resource type."""
    directory = directory or PROFILES_DIR
    profiles: dict[str, Profile] = {}
    for path in sorted(directory.glob("*.yaml")):
        profile = load_profile(path, definitions)
        if profile.resource_type in profiles:
            raise ProfileError(f"{path}: a second profile for {profile.resource_type}")
        profiles[profile.resource_type] = profile
    return profiles
