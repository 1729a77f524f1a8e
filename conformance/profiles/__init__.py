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

import threading
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
    schema: Any = None  # the fragment ``check`` was compiled from (see ``Profile.as_schema``)


@dataclass(frozen=True)
class Profile:
    resource_type: str
    # element as written (e.g. "effective[x]") -> (concrete JSON names that satisfy it, why)
    required: dict[str, tuple[frozenset[str], str]] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    when: Any = None  # compiled ``required_when.match``, or None
    required_when: dict[str, tuple[frozenset[str], str]] = field(default_factory=dict)
    match: Any = None  # the ``required_when.match`` fragment ``when`` was compiled from

    def as_schema(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The profile as one JSON-schema fragment on the whole resource plus the definitions it
        refers to (named ``huren_<type>_<rule>_<depth>``), accepting exactly what ``satisfied_by``
        accepts; None when a fragment uses a keyword outside ``_PORTABLE`` (its meaning could
        differ between the fragment's own draft and the R4 schema's draft-06).

        Why: the validator then checks a resource's R4 structure and huren's rules in one call of
        the schema engine instead of one per rule (~1 µs per resource less on the ingest path).
        """
        if not all(_portable(f) for f in [self.match, *(r.schema for r in self.rules)] if f is not None):
            return None
        definitions: dict[str, Any] = {}
        parts: list[dict[str, Any]] = [_present(names) for names, _ in self.required.values()]
        if self.match is not None and self.required_when:
            parts.append({"anyOf": [{"not": self.match},
                                    {"allOf": [_present(names) for names, _ in self.required_when.values()]}]})
        for i, rule in enumerate(self.rules):
            parts.append({"$ref": _values_schema(rule.element, rule.schema, f"huren_{self.resource_type}_{i}",
                                                 definitions)})
        return {"allOf": parts}, definitions

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


# keywords whose meaning is the same in draft-06 and in later drafts (the fragments' default)
_PORTABLE = frozenset({"type", "required", "properties", "pattern", "contains", "not", "const", "enum", "anyOf",
                       "allOf", "oneOf", "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum",
                       "additionalProperties", "description", "title"})


def _portable(schema: Any) -> bool:
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or not set(schema) <= _PORTABLE:
        return False
    subs: list[Any] = list((schema.get("properties") or {}).values())
    subs += [schema[k] for k in ("contains", "not") if k in schema]
    subs += [x for k in ("anyOf", "allOf", "oneOf") for x in schema.get(k, ())]
    if isinstance(schema.get("additionalProperties"), dict):
        subs.append(schema["additionalProperties"])
    return all(_portable(x) for x in subs)


def _present(names: frozenset[str]) -> dict[str, Any]:
    """At least one of ``names`` is present (``satisfied_by``: the keys are not disjoint)."""
    return {"anyOf": [{"required": [n]} for n in sorted(names)]}


def _values_schema(element: tuple[str, ...], check: Any, name: str, definitions: dict[str, Any]) -> str:
    """A definition applying ``check`` to every value ``_values_at`` yields for ``element``
    (arrays along the way item by item, an absent or null element skipped); returns its $ref."""
    ref = f"#/definitions/{name}_{len(element)}"
    inner: Any = check
    if element:
        inner = {"anyOf": [{"not": {"type": "object"}},
                           {"properties": {element[0]: {"anyOf": [
                               {"type": "null"},
                               {"$ref": _values_schema(element[1:], check, name, definitions)}]}}}]}
    definitions[ref.rsplit("/", 1)[1]] = {"anyOf": [{"type": "array", "items": {"$ref": ref}},
                                                    {"allOf": [{"not": {"type": "array"}}, inner]}]}
    return ref


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
    """The profile in ``path``, made once per process for the same file text and R4 definitions:
    every Engine reads the ten shipped files, and parsing them (PyYAML in pure Python) and compiling
    their rules was ~20 ms of an Engine's ~100 ms start. A ``Profile`` is immutable (its rules
    compiled validators), so Validators share it. A changed text is read anew; a broken file
    raises every time (only profiles made are kept)."""
    text = path.read_text(encoding="utf-8")
    key = (str(path), text)
    kept = _MADE.get(key)
    if kept is not None and kept[0] is definitions:
        return kept[1]
    profile = _profile_of(path, text, definitions)
    with _MADE_LOCK:
        _MADE[key] = (definitions, profile)
        while len(_MADE) > _MADE_KEPT:
            del _MADE[next(iter(_MADE))]
    return profile


# (path, text) -> (the R4 definitions it was checked against, the profile): ``load_profile``
_MADE: dict[tuple[str, str], tuple[dict[str, Any], Profile]] = {}
_MADE_LOCK = threading.Lock()
_MADE_KEPT = 128


def _profile_of(path: Path, text: str, definitions: dict[str, Any]) -> Profile:
    def fail(what: str) -> ProfileError:
        return ProfileError(f"{path}: {what}")

    try:
        data = yaml.safe_load(text)
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
        rules.append(Rule(element=element, check=check, message=str(rule["message"]).strip(), schema=rule["schema"]))
    return Profile(resource_type=rtype, required=required, rules=tuple(rules), when=when,
                   required_when=required_when, match=data["required_when"]["match"] if when is not None else None)


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
