"""Validation of every FHIR R4 resource before huren stores it.

Two layers, both exact and both reporting FHIRPath-style element paths (``Observation.status``,
``Bundle.entry[2].resource.code.coding[0].system``):

1. **R4 structure**: the official R4 JSON schema (``conformance/schema/fhir.r4.schema.json.gz``, see
   ``regenerate.py`` for the corrections applied to the published 4.0.0 build), validated with
   jsonschema-rs against the *specific* resource definition (``#/definitions/Observation``), never
   the schema root: the root is a ``oneOf`` over 146 resource types, which is slower and whose
   only error is "not valid under any of the given schemas". Contained resources and Bundle /
   Parameters entries (the schema's ``ResourceList``) are narrowed to "an object" and then
   validated one by one against their own definition, for the same reason.
   What the published schema misses is added to it by ``regenerate.py``, as plain schema keywords
   so the hot path never calls back into Python: calendar-valid dates (no 2023-02-30), reference
   shapes (``Type/id[/_history/vid]``, ``#local``, ``urn:uuid:``, ``urn:oid:``, absolute URLs,
   conditional ``Type?query`` in transactions), integers that are integers, one choice per ``[x]``
   element, no empty arrays. Resource ids are checked by the schema's own ``id`` pattern
   ``[A-Za-z0-9\\-\\.]{1,64}``. All 5,258 example resources of the R4 specification that are
   smaller than 300 kB pass, except one whose id is 67 characters long (a known erratum) and four
   whose references point at a type their element does not allow (e.g. ``Observation-clinical-gender``:
   ``performer`` = ``Encounter/example``); reference target types come from the R4
   StructureDefinitions (``reference-targets.json``, see ``_narrow_references``). Strings are at
   most 1 MiB (R4 datatypes).
2. **huren's rules** (``conformance/profiles/*.yaml``, data not code; a site may replace a resource
   type's file with its own in ``$HUREN_SITE/profiles/``): the elements this platform needs to do
   its job, e.g. an Observation without ``subject`` cannot be placed in a resident's compartment
   nor matched for mutual recognition. See ``conformance.profiles``.

Library choice, measured with ``bench/validation.py`` on the corrected full R4 schema: µs per
valid resource, best of 3; "per type" validates against the resource's own definition (a Bundle:
its shell, then each of its 14 entries), "root" against the schema's ``oneOf``. Two runs on this
2-core machine shared with six other builds: a quiet moment (``--quick``, load ~2) and a full run
under load ~7, which inflates every figure about 2-3x but keeps the ratios.

                                    Observation        Patient     Bundle of 14   compile/type
  quiet (load ~2) / loaded (load ~7)
  jsonschema-rs 0.60.3, per type       4.5 / 9.4       3.1 / 7.5         50 / 126    0.02-0.1 s
  jsonschema-rs 0.60.3, root oneOf     5.1 / 14        3.5 / 9.7         54 / 163    0.06-0.3 s
  fastjsonschema 2.22.3, per type       -- / 147        -- / 102          -- / 2,076  7 s
  fastjsonschema 2.22.3, root oneOf    (compiling all 146 types never completed: the run died after 6 min)
  jsonschema 4.26.0, per type          711 / 2,234     577 / 1,732    8,152 / 27,175  lazy
  jsonschema 4.26.0, root oneOf     13,664 / 65,964 28,792 / 91,042 206,857 / 691,651 lazy
  huren Validator.validate             7.2 / 20        4.0 / 16          80 / 356

jsonschema-rs is exact (full draft-06 semantics incl. ``$ref``, ``const``, ``dependencies``,
``pattern``), 15x faster than fastjsonschema and 240x faster than jsonschema, and compiles a
resource definition in well under a second, so compilation is lazy and cached per resource type.
``Validator.validate`` adds huren's rules and the walk over nested resources: ~7 µs per lab
result, ~80 µs per 14-resource lab message. An invalid resource costs more (~11 µs quiet, 40 µs
loaded) because every problem is then collected with its element path.

The yes/no path that nearly every write takes is one call of the schema engine per resource: the
type's R4 definition and huren's profile compiled together (``Profile.as_schema``), and every
pattern runnable by the regex automaton (the typed-absolute-URL reference rule is an ``anyOf``,
not a look-ahead: see ``_typed_absolute``). The converted resources of a 12-OBX ORU^R01 took
~188 µs CPU per message before these two changes and ~144 µs after (``bench/validation.py``,
paired runs, load ~6). Only a "no" walks the explaining path, which reports every problem.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

from conformance import narrative
from conformance.profiles import Profile, _values_at, load_profiles
from engine.errors import Unprocessable
from engine.fhirjson import dumps as json_dumps
from engine.fhirjson import schema_view
from engine.settings import Settings

SCHEMA_RESOURCE = "schema/fhir.r4.schema.json.gz"
TARGETS_RESOURCE = "schema/reference-targets.json"
# R4 §2.24.0.1: "strings SHALL NOT exceed 1MB in size". Counted in characters (JSON Schema's
# maxLength), which for the CJK text huren carries is stricter than bytes would be only 3x.
MAX_STRING = 1024 * 1024

# plain-language meaning of each FHIR data type's pattern, for messages
_PATTERN_MEANING = {
    "id": "is not a valid id (1 to 64 of A-Z a-z 0-9 - .)",
    "string": "must not be empty",
    "markdown": "must not be empty",
    "code": "is not a valid code (no leading, trailing or repeated whitespace)",
    "uri": "is not a valid uri (no whitespace)",
    "url": "is not a valid url (no whitespace)",
    "canonical": "is not a valid canonical URL (no whitespace)",
    "oid": "is not a valid oid (urn:oid:...)",
    "uuid": "is not a valid uuid (urn:uuid:...)",
    "time": "is not a valid time (hh:mm:ss)",
    "base64Binary": "is not base64 (R4 base64Binary: groups of four of A-Z a-z 0-9 + / =, white space between them)",
    "xhtml": "must be XHTML with a <div> root",
    "Reference": "is not a valid reference (ResourceType/id, ResourceType/id/_history/vid, #id, "
    "urn:uuid:, urn:oid: or an absolute http(s) URL)",
}
_DATE_SHAPES = {
    "date": "YYYY, YYYY-MM or YYYY-MM-DD",
    "dateTime": "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.sss] with a time zone (Z or +hh:mm)",
    "instant": "YYYY-MM-DDThh:mm:ss[.sss] with a time zone (Z or +hh:mm)",
}

# ---------------------------------------------------------------------------------------------
# the schema
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def load_schema(path: str | None = None) -> dict[str, Any]:
    """The corrected R4 schema (read-only; cached because every Engine in a test run shares it)."""
    raw = Path(path).read_bytes() if path else resources.files("conformance").joinpath(SCHEMA_RESOURCE).read_bytes()
    return orjson.loads(gzip.decompress(raw))


# R4 datatypes#string: a string holds no Unicode code point below 32 but TAB (u0009), LF and CR -- and FHIR's XML
# form cannot hold one at all (XML 1.0 has no such character), so a resource holding one could not be written in
# the other format. The C0 controls but TAB, LF and CR are refused in every string-valued primitive whose pattern
# admitted them (``_no_control_characters``). The converter never writes one: the HL7 parser refuses them as raw
# bytes and ``adapters.hl7v2.escapes`` keeps a ``\X00\`` or ``\X1B\`` as the escape text sent.
CONTROLS = r"\x00-\x08\x0B\x0C\x0E-\x1F"
_CONTROL = re.compile(f"[{CONTROLS}]")
# the classes of the published patterns: the negated ones of ``string``/``markdown`` and ``code``/``uri``/``url``/
# ``canonical``, and the white space of ``code`` (between its words) and ``base64Binary`` (around its groups), which
# is R4's Java ``\s`` and took VT and FF (a code "M<VT>M" had been stored: rv43c LOW 3) -- one rule for the C0 controls
_CONTROL_CLASSES = {r"[^\x0B\x0C]": f"[^{CONTROLS}]", r"[^ \t\n\x0B\x0C\r]": rf"[^ \t\n\r{CONTROLS}]",
                    r"[ \t\n\x0B\x0C\r]": r"[ \t\n\r]"}
_CONTROLLED = ("string", "markdown", "code", "uri", "url", "canonical", "base64Binary")
# R4 datatypes#base64Binary, ``(\s*([0-9a-zA-Z\+/=]){4}\s*)+``, spelled as ``regenerate.py`` spells ``\s``, with the
# white space before the first group only (the same strings, but no two ways to split a run of white space between
# two groups: no backtracking engine takes exponential time over one) and no capturing group (measured on 1 MB of
# base64 in jsonschema-rs: 5.1 ms a MB with R4's groups, 3.2 ms without; the ``(?:`` also keeps the pattern from
# Python's ``re`` in ``_string_check``, ~80 ms a MB). The published 4.0.0 schema gives the type no pattern: an
# Attachment's ``data`` "%%%not base64%%%" or holding a VT had been stored (rv43c LOW 4)
_BASE64 = r"^[ \t\n\x0B\x0C\r]*(?:[0-9a-zA-Z+/=]{4}[ \t\n\x0B\x0C\r]*)+$"
_WHITESPACE_CLASS = r"[^ \t\n\x0B\x0C\r"  # how the absolute-URL branch of a reference's pattern opens its classes
NARRATIVE_FORMAT = "fhir-narrative"


def _no_control_characters(defs: dict[str, Any]) -> None:
    """Each string-valued primitive's pattern refuses the C0 controls but TAB, LF and CR (the others' patterns --
    ``id``, ``oid``, ``uuid``, the dates -- admit none already). In place of the classes the published schema
    writes, not beside them: no second pattern to run on every string of every message."""
    for name in _CONTROLLED:
        pattern = defs[name]["pattern"]
        changed = pattern
        for published, refusing in _CONTROL_CLASSES.items():
            changed = changed.replace(published, refusing)
        if changed == pattern:
            raise RuntimeError(f"the schema's {name} pattern is not the one regenerate.py writes")
        defs[name] = {**defs[name], "pattern": changed}


def _no_control_characters_in_references(defs: dict[str, Any]) -> None:
    """``Reference.reference`` (and each narrowed copy, ``_narrow_references``) by the same rule: its relative and
    ``urn:`` forms admit no control character already, its absolute branch's classes did (``http://x/a<NUL>b``)."""
    for name, definition in list(defs.items()):
        if name != "Reference" and not name.startswith("Reference_to_"):
            continue
        reference = definition["properties"]["reference"]
        pattern = reference["pattern"].replace(_WHITESPACE_CLASS, _WHITESPACE_CLASS + CONTROLS.replace(r"\x0B\x0C", ""))
        defs[name] = {**definition, "properties": {**definition["properties"],
                                                   "reference": {**reference, "pattern": pattern}}}


def compile_schema(schema: dict[str, Any], *, explaining: bool = False) -> Any:
    """A jsonschema-rs validator of ``schema``; ``explaining``: one that knows huren's formats (the R4 narrative
    rules, ``R4Schema.explaining``). Why not every validator: a validator handed any Python callable -- a format or a
    keyword -- costs ~1 us more a resource whether or not it meets one (measured: a Patient 3.6 -> 4.6 us), ~25 us a
    12-result lab message that holds no narrative at all; so the yes/no checks of the hot path refuse a narrative
    outright ("look closer", ``R4Schema.fast_definitions``) and only the explaining validators check one."""
    if explaining:
        return jsonschema_rs.validator_for(schema, formats=_FORMATS, validate_formats=True)
    return jsonschema_rs.validator_for(schema)


def _narrative_kept(value: str) -> bool:
    return narrative.problem(value) is None


_FORMATS = {NARRATIVE_FORMAT: _narrative_kept}


class R4Schema:
    """Compiled per-resource-type validators over the R4 schema, built on first use of each type.

    ``ResourceList`` (contained resources, ``Bundle.entry.resource``, ``Parameters.parameter.resource``)
    is narrowed to "an object"; ``nested`` records where such resources
    occur so the Validator can validate each against its own definition.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.definitions: dict[str, Any] = dict(schema["definitions"])
        self.dialect: str = schema.get("$schema", "http://json-schema.org/draft-06/schema#")
        self.resource_types: frozenset[str] = frozenset(schema["discriminator"]["mapping"])
        # the Validator checks resourceType itself, with a clearer message than a 146-value enum
        self.definitions["ResourceList"] = {"type": "object"}
        for name in ("string", "markdown"):
            self.definitions[name] = {**self.definitions[name], "maxLength": MAX_STRING}
        self.definitions["base64Binary"] = {**self.definitions["base64Binary"], "pattern": _BASE64}
        _no_control_characters(self.definitions)
        # R4 narrative rules (``conformance.narrative``): XHTML of basic formatting, no active content
        self.definitions["xhtml"] = {**self.definitions["xhtml"], "format": NARRATIVE_FORMAT}
        # a decimal a double can hold (review rv42b MED 6): the JSON reader refuses ``1e400`` (its float is
        # infinite) but takes ``1`` and 309 zeros as a Python int, which the search index then cannot hold as a
        # number (OverflowError: a 500 on POST, AE 207 for a whole HL7 message). FHIR asks 18 digits at least.
        self.definitions["decimal"] = {**self.definitions["decimal"], "maximum": _DOUBLE_MAX, "minimum": -_DOUBLE_MAX}
        _narrow_references(self.definitions, self.resource_types, load_reference_targets())
        _no_control_characters_in_references(self.definitions)
        # the yes/no checks' definitions (``validator``, ``validator_with``, a hole's): a narrative is never "yes"
        # there, so a resource holding one is looked at closer, by the explaining validators (``compile_schema``)
        self.fast_definitions: dict[str, Any] = {**self.definitions, "xhtml": {"not": {}}}
        self.nested = _nested_resource_paths(schema["definitions"])
        self._compiled: dict[str, Any] = {}
        self._lock = threading.Lock()

    def validator(self, definition: str) -> Any:
        """The yes/no check of ``definition`` (a narrative anywhere in it answers no: ``fast_definitions``)."""
        compiled = self._compiled.get(definition)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(definition)
                if compiled is None:
                    compiled = compile_schema(_reaching(self.dialect, {"$ref": f"#/definitions/{definition}"},
                                                        self.fast_definitions))
                    self._compiled[definition] = compiled
        return compiled

    def explaining(self, definition: str) -> Any:
        """The check of ``definition`` whose errors ``_describe`` explains, the R4 narrative rules included; compiled
        when a resource of the type is first looked at closer (invalid, or holding a narrative)."""
        key = "explaining\0" + definition
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key)
                if compiled is None:
                    compiled = compile_schema(_reaching(self.dialect, {"$ref": f"#/definitions/{definition}"},
                                                        self.definitions), explaining=True)
                    self._compiled[key] = compiled
        return compiled

    def validator_with(self, definition: str, extra: dict[str, Any], extra_definitions: dict[str, Any]) -> Any:
        """A validator of ``definition`` and ``extra`` (a fragment on the same instance) at once;
        shared by every Validator whose profile gives the same fragment (compiling costs 0.02-0.3 s)."""
        key = definition + "\0" + json_dumps([extra, extra_definitions], sort_keys=True).decode()
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key)
                if compiled is None:
                    compiled = compile_schema(_reaching(self.dialect, {"allOf": [{"$ref": f"#/definitions/{definition}"},
                                                                                 extra]},
                                                        {**self.fast_definitions, **extra_definitions}))
                    self._compiled[key] = compiled
        return compiled


@lru_cache(maxsize=1)
def load_reference_targets() -> dict[str, list[str]]:
    """Element path -> resource types its Reference may point at, from the R4 StructureDefinitions
    (written by ``schema/regenerate.py``)."""
    return orjson.loads(resources.files("conformance").joinpath(TARGETS_RESOURCE).read_bytes())


@lru_cache(maxsize=1)
def _general_reference() -> re.Pattern[str]:
    return re.compile(load_schema()["definitions"]["Reference"]["properties"]["reference"]["pattern"])


def _well_formed_reference(value: Any) -> bool:
    """True when only the target type is wrong (for the message; the schema already said no)."""
    return isinstance(value, str) and _general_reference().match(value) is not None


def _type_group(types: list[str] | frozenset[str]) -> str:
    """The alternation ``regenerate.reference_pattern`` writes: longest names first."""
    return "(" + "|".join(sorted(types, key=lambda t: (-len(t), t))) + ")"


# The absolute-URL branch of the reference pattern ``regenerate.reference_pattern`` writes.
_ABSOLUTE_BRANCH = r"https?://[^ \t\n\x0B\x0C\r/?#]+([/?#][^ \t\n\x0B\x0C\r]*)?"
_ID = r"[A-Za-z0-9\-\.]{1,64}"


def _typed_absolute(every_type: str, allowed: str) -> dict[str, Any]:
    """An absolute URL that names a resource type (``…/Type/id[/_history/vid]``) must name an
    allowed one; any other absolute URL keeps the general shape.

    As schema keywords beside the reference's ``pattern`` (whose absolute branch accepts any
    URL): "names no type, or is a URL of an allowed type". Not a negative look-ahead inside the
    pattern: one look-ahead sends the whole pattern, with its alternation of 146 type names, to
    the backtracking regex engine (fancy-regex) instead of the automaton (regex crate), which cost
    every reference, relative ones included, about 0.5 µs (a 12-result lab message: ~55 µs of
    its ~150 µs of schema validation). Both forms accept exactly the same strings
    (``tests/test_validation_references.py`` compares them)."""
    ws = r"\t\n\x0B\x0C\r"
    typed_any = rf"^https?://[^ {ws}]*/{every_type}/{_ID}(/_history/{_ID})?$"
    allowed_url = rf"^https?://[^ {ws}/?#]+(/[^ {ws}?#]*)*/{allowed}/{_ID}(/_history/{_ID})?$"
    return {"anyOf": [{"not": {"pattern": typed_any}}, {"pattern": allowed_url}]}


def _narrow_references(defs: dict[str, Any], resource_types: frozenset[str], targets: dict[str, list[str]]) -> int:
    """Point each typed Reference element at a copy of ``Reference`` whose ``reference`` pattern
    names only that element's target types (``Reference_to_Organization``...), so that the
    schema itself refuses ``Patient.managingOrganization`` = ``Patient/1``.

    Relative, conditional (``Type?query``) references are narrowed, and so are absolute URLs of
    the RESTful shape ``http(s)://server/base/Type/id[/_history/vid]`` (R4 §3.1.3.1 names the type
    in the URL, so ``https://other.example/fhir/Encounter/1`` is no more a performer than
    ``Encounter/1`` is); ``#contained``, ``urn:uuid:``, ``urn:oid:`` and absolute URLs of any other
    shape keep the general form (their target is not named in the reference). The shared schema
    dict is never mutated: changed definitions are copied into ``defs``.
    """
    base = defs["Reference"]
    pattern = base["properties"]["reference"]["pattern"]
    group = _type_group(resource_types)
    absolute = _ABSOLUTE_BRANCH
    if pattern.count(group) != 2 or pattern.count(absolute) != 1:
        raise RuntimeError("the schema's Reference.reference pattern is not the one regenerate.py writes")
    applied = 0
    for path, types in targets.items():
        parts = path.split(".")
        owner = parts[0]
        for part in parts[1:-1]:
            prop = defs.get(owner, {}).get("properties", {}).get(part)
            ref = (prop.get("items") or prop).get("$ref", "") if isinstance(prop, dict) else ""
            owner = ref.rsplit("/", 1)[-1]
        last = parts[-1]
        name = last[:-3] + "Reference" if last.endswith("[x]") else last
        definition = defs.get(owner)
        prop = (definition or {}).get("properties", {}).get(name)
        if not isinstance(prop, dict):
            continue
        is_array = "items" in prop
        if (prop["items"] if is_array else prop).get("$ref") != "#/definitions/Reference":
            continue
        narrowed = "Reference_to_" + "_".join(types)
        if narrowed not in defs:
            typed = pattern.replace(group, _type_group(types))
            reference = {"type": "string", "pattern": typed, **_typed_absolute(group, _type_group(types))}
            defs[narrowed] = {**base, "properties": {**base["properties"], "reference": reference}}
        ref = {"$ref": f"#/definitions/{narrowed}"}
        new_prop = {**prop, "items": ref} if is_array else ref
        defs[owner] = {**definition, "properties": {**definition["properties"], name: new_prop}}
        applied += 1
    return applied


def _nested_resource_paths(definitions: dict[str, Any]) -> dict[str, dict[str, tuple[str | None, bool]]]:
    """For each definition that can (transitively) hold a resource: property -> (target, is_array).

    ``target`` None means the property holds resources (``ResourceList``); otherwise it is the
    definition to descend into. Only paths that lead to resources are kept, so the walk at
    validation time touches ``contained`` and Bundle/Parameters entries and nothing else.
    """

    def target_of(prop: dict[str, Any]) -> tuple[str | None, bool]:
        is_array = prop.get("type") == "array"
        ref = (prop.get("items") if is_array else prop).get("$ref", "") if isinstance(prop, dict) else ""
        return (ref.rsplit("/", 1)[-1] or None), is_array

    edges: dict[str, dict[str, tuple[str | None, bool]]] = {}
    for name, definition in definitions.items():
        for prop_name, prop in definition.get("properties", {}).items():
            target, is_array = target_of(prop)
            if target is not None:
                edges.setdefault(name, {})[prop_name] = (target, is_array)
    reaches = {"ResourceList"}
    changed = True
    while changed:
        changed = False
        for name, props in edges.items():
            if name not in reaches and any(t in reaches for t, _ in props.values()):
                reaches.add(name)
                changed = True
    nested: dict[str, dict[str, tuple[str | None, bool]]] = {}
    for name, props in edges.items():
        keep = {p: (None if t == "ResourceList" else t, arr) for p, (t, arr) in props.items() if t in reaches}
        if keep and name != "ResourceList":
            nested[name] = keep
    return nested


@lru_cache(maxsize=2)
def _shared_r4(path: str | None) -> R4Schema:
    return R4Schema(load_schema(path))


# ---------------------------------------------------------------------------------------------
# the validator
# ---------------------------------------------------------------------------------------------


class Validator:
    """``validate(resource)`` raises ``Unprocessable`` with one issue per problem, or returns None: 422, or 400 when a
    problem is content FHIR's formats cannot carry (a control character, a narrative that is not R4's: issue code
    ``invalid``).

    Thread-safe and cheap to construct: the R4 schema and its compiled per-type validators are
    shared by all Validators of a process (they are immutable), the profiles are read per instance.
    """

    def __init__(
        self,
        *,
        profiles_dir: Path | None = None,
        site_profiles_dir: Path | None = None,
        schema_path: Path | None = None,
    ) -> None:
        self.r4 = _shared_r4(str(schema_path) if schema_path else None)
        self.profiles: dict[str, Profile] = load_profiles(profiles_dir, self.r4.definitions)
        if site_profiles_dir is not None and site_profiles_dir.is_dir():
            # a site's file for a resource type replaces the shipped one (same file name, same format)
            self.profiles.update(load_profiles(site_profiles_dir, self.r4.definitions))
        # resource type -> one compiled check of its R4 definition and its profile (``_checks``)
        self._checked: dict[str, tuple[Any, bool]] = {}
        # (resource type, "hole:" element) -> a check of that element alone (``valid_planned``)
        self._elements: dict[tuple[str, str], Any] = {}
        # compiled plan -> its proof (``valid_planned``): False when its holes cannot be checked alone
        self._proofs: dict[Any, _Proof | bool] = {}
        # plan without holes -> the JSON text of its resource validated whole (``_valid_again``)
        self._texts: dict[Any, bytes] = {}
        # (resource type, element, "text" | "reference") -> value -> whether it is valid there
        self._verdicts: dict[tuple[str, str, str], dict[Any, bool]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Validator:
        """The shipped rules, with ``$HUREN_SITE/profiles/*.yaml`` laid over them per resource type."""
        return cls(site_profiles_dir=settings.site / "profiles" if settings.site else None)

    def validate(self, resource: Any, at: str | None = None) -> None:
        """``at``: where the resource stands in the request, its elements named under it (a transaction's entry,
        ``Bundle.entry[1].resource.text.div``: the issue's FHIRPath from what was sent -- it had said
        ``Patient.text.div``, the entry named only in words, rv43c LOW 5); else under its type."""
        if self._valid(resource):
            return
        problems: list[tuple[str, str, str]] = []
        seen: set[str] = set()
        for problem in self.problems(resource, at):
            # One issue per element: a decimal given as "x" breaks both its type and its pattern, and
            # a huren rule on ``subject`` adds nothing when ``subject.reference`` is already malformed.
            path = problem[0]
            if path in seen or any(s.startswith((path + ".", path + "[")) for s in seen):
                continue
            seen.add(path)
            problems.append(problem)
        if not problems:
            return
        (path, code, message), *rest = problems
        raise Unprocessable(
            f"{path}: {message}" if path else message,
            expression=[path] if path else None,
            code=code,
            issues=[_issue(p, c, m) for p, c, m in rest],
            # content FHIR's formats cannot carry (a control character XML has not) or that is no narrative to
            # show (not XHTML, active content): "failed basic FHIR validation rules", 400, as unreadable JSON is
            status=400 if any(c == "invalid" for _, c, _ in problems) else None,
        )

    def is_valid(self, resource: Any) -> bool:
        return self._valid(resource) or next(iter(self.problems(resource)), None) is None

    def problems(self, resource: Any, at: str | None = None) -> Iterator[tuple[str, str, str]]:
        """Every problem as (element path, OperationOutcome issue code, message); ``at`` as ``validate``'s."""
        if not isinstance(resource, dict):
            yield at or "", "structure", "a resource must be a JSON object"
            return
        yield from self._resource(schema_view(resource), at, profiled=True)

    def structure_problems(self, resource: Any, at: str) -> list[tuple[str, str, str]]:
        """Every problem of ``resource`` against its R4 definition alone (not huren's rules for stored resources),
        each element named under ``at`` -- for a resource huren reads but does not store: a CDS hook's draft order
        (``context.draftOrders.entry[0].resource.code``), which had been read as no order when its ``code`` was a
        string, and answered with no card (rv42c LOW 3). An empty list when it is one."""
        if not isinstance(resource, dict):
            return [(at, "structure", "a resource must be a JSON object")]
        if self._valid_fast(resource, profiled=False):
            return []
        seen: list[tuple[str, str, str]] = []
        for problem in self._resource(schema_view(resource), at, profiled=False):
            if not any(problem[0] == p or problem[0].startswith((p + ".", p + "[")) for p, _, _ in seen):
                seen.append(problem)
        return seen

    # -- internals ------------------------------------------------------------------------------

    def _valid(self, resource: Any) -> bool:
        try:
            if self._valid_fast(resource):
                return True
        except ValueError:
            pass
        # jsonschema-rs takes no float subclass: a resource holding an exact decimal (only those
        # whose text a float would not print back, e.g. a lab value 5.10) reads as invalid (or
        # raises), so it is asked again as its Decimal view before the slow path explains anything
        return self._valid_fast(schema_view(resource))

    def _valid_fast(self, resource: Any, profiled: bool = True) -> bool:
        """True when the resource (and any resources nested in it) is valid; False means "look closer".

        Nearly every write is valid, so this path only asks yes/no questions: no error objects, no
        paths, no generators. Only a False leads to ``problems``, which explains what is wrong.
        """
        if type(resource) is not dict:
            return False
        rtype = resource.get("resourceType")
        if rtype not in self.r4.resource_types:
            return False
        if profiled:
            checks = self._checked.get(rtype) or self._checks(rtype)
            if not checks[0].is_valid(resource):
                return False
            if not checks[1] and not self.profiles[rtype].satisfied_by(resource):
                return False
        elif not self.r4.validator(rtype).is_valid(resource):
            return False
        nested = self.r4.nested.get(rtype)
        return nested is None or resource.keys().isdisjoint(nested) or self._nested_fast(resource, nested)

    def valid_planned(self, resource: dict[str, Any], planned: Any) -> bool:
        """True when ``resource``, built by the converter from a compiled plan (``planned``: an
        ``adapters.convert.plans.Planned``), is valid; False means "validate the whole".

        Why: the resources of one plan differ only in the plan's holes (a lab result's value, time,
        patient, visit, specimen); everything else is the same elements in the same order. The
        first resource of a plan is validated whole; when it passes and no rule relates a hole to
        another element (``_prove``), every later one is checked in its holes alone: each hole
        value against its element's own definition and huren's rules on that element (remembered
        per value: the twelve results of a panel share patient, visit and time), a number hole
        for being a finite JSON number. ~1-2 us per lab result instead of ~7-11 us for the whole.
        Any change of shape since the build (an element added or replaced) answers False.
        """
        plan = planned.plan
        if tuple(resource) != plan.names:
            return False
        proof = self._proofs.get(plan)
        if proof is None:
            holes = planned.holes
            if len(holes) != len(plan.holes):
                return False
            if not holes:
                return self._valid_again(resource, plan)
            return self._first_planned(resource, planned)
        if proof is False:
            return False
        assert isinstance(proof, _Proof)
        # one pass over the holes as the resource holds them now (the names are the plan's, in its
        # order, so each is there): a string's verdict is remembered per value, a reference that is
        # nothing but its ``reference`` by that string (in a table of its own: never mistaken for
        # the same text sent as a bare string), a Quantity's decimal checked for being finite. The
        # values are read from the resource itself, not from what the converter noted it put there
        # (``planned.holes``, a dict of its own a result: one more object met cold per result in
        # the pipeline); a value replaced since is checked as what it is now.
        for name, kind, verdicts in proof.kinds:
            current = resource[name]
            if kind is _TEXT_HOLE:
                if type(current) is not str:
                    return False
                ok = verdicts.get(current)
                if ok is None:
                    ok = self._remember(verdicts, current, self._hole_valid(proof, name, current))
            elif kind is _REFERENCE_HOLE:
                if type(current) is not dict or len(current) != 1:
                    return False
                ref = current.get("reference")
                if type(ref) is not str:
                    return False
                ok = verdicts.get(ref)
                if ok is None:
                    ok = self._remember(verdicts, ref, self._hole_valid(proof, name, current))
            elif kind is _TREE_HOLE:  # a list or object (an analysis-time extension): by its JSON text
                if type(current) is not list and type(current) is not dict:
                    return False
                try:
                    text = orjson.dumps(current)
                except TypeError:  # an exact decimal, a key that is not a string: the whole validation
                    return False
                ok = verdicts.get(text)
                if ok is None:
                    ok = self._remember(verdicts, text, self._hole_valid(proof, name, current))
            else:  # a Quantity whose only hole is its decimal ``value``
                ok = type(current) is dict and _finite_number(current.get("value"))
            if not ok:
                return False
        return True

    def _valid_again(self, resource: dict[str, Any], plan: Any) -> bool:
        """A resource of a plan without holes (the converter made it from the same texts as the
        plan's first: ``adapters.convert.kept``): valid when its JSON text is the text of the one
        validated whole for the plan -- to the byte, so that whatever changed it after it was made
        sends it to the whole validation."""
        try:
            text = orjson.dumps(resource)
        except TypeError:  # an exact decimal (a float subclass), a key that is not a string
            return False
        proven = self._texts.get(plan)
        if proven is not None:
            return proven == text
        if not self._valid(resource):
            return False
        with self._lock:
            if len(self._texts) >= 8192:
                self._texts.clear()
            self._texts[plan] = text
        return True

    def _first_planned(self, resource: dict[str, Any], planned: Any) -> bool:
        """``valid_planned`` for the first resource of a plan: validated whole, and when valid the
        plan's proof made (``_prove``) for the later ones."""
        plan = planned.plan
        names, numbers = plan.holes, plan.numbers
        for name, value in planned.holes.items():  # (each a hole of the plan: counted, named here)
            current = resource.get(name)
            if name in numbers and type(current) is dict:
                current = current.get("value")
            if current is not value or name not in names:
                return False
        if not self._valid(resource):
            return False
        with self._lock:
            if len(self._proofs) >= 8192:
                self._proofs.clear()
            self._proofs[plan] = self._prove(resource, plan)
        return True

    def _remember(self, verdicts: dict[Any, bool], key: Any, ok: bool) -> bool:
        if len(verdicts) >= 10000:
            verdicts.clear()
        verdicts[key] = ok
        return ok

    def _prove(self, resource: dict[str, Any], plan: Any) -> _Proof | bool:
        """What checking ``plan``'s holes alone needs, or False when a rule of the type relates a
        hole to other elements (then every resource of the plan is validated whole).

        The element names of every resource of a plan are the same, so rules about which elements
        are present (R4 ``required``, ``additionalProperties``, the choice groups' presence-only
        ``dependencies``; huren's ``required``) hold for all once they hold for one. Any other
        keyword of the type's definition, or a ``required_when`` condition, that names a hole makes
        the plan unprovable; huren's ``rules`` on a hole are run on each hole value."""
        rtype = resource["resourceType"]
        definition = self.r4.definitions.get(rtype) or {}
        holes = set(plan.holes)
        for keyword, value in definition.items():
            if keyword in ("properties", "additionalProperties", "required", "type", "description"):
                continue
            if keyword == "dependencies" and all(_presence_only(d) for d in value.values()):
                continue
            if any(f'"{h}"' in json_dumps(value).decode() for h in holes):
                return False
        properties = definition.get("properties", {})
        if any(h not in properties or h in self.r4.nested.get(rtype, {}) for h in holes):
            return False
        profile = self.profiles.get(rtype)
        rules: dict[str, list[Any]] = {}
        if profile is not None:
            if profile.match is not None and any(f'"{h}"' in json_dumps(profile.match).decode() for h in holes):
                return False
            for rule in profile.rules:
                if rule.element[0] in holes:
                    rules.setdefault(rule.element[0], []).append(rule)
        numbers = set()
        for name in plan.numbers:  # a Quantity whose only hole is its decimal ``value``
            quantity = self.r4.definitions.get("Quantity", {})
            decimal_def = self.r4.definitions.get("decimal", {})
            if (properties.get(name) != {"$ref": "#/definitions/Quantity"} or name in rules
                    or set(quantity) - {"properties", "additionalProperties", "type", "description"}
                    or quantity.get("properties", {}).get("value") != {"$ref": "#/definitions/decimal"}
                    or set(decimal_def) - {"type", "pattern", "description", "maximum", "minimum"}
                    or decimal_def.get("type") != "number"):
                return False
            numbers.add(name)
        # the verdict tables are the type's, shared by its plans: the results of a panel, each
        # its own plan, share one patient, visit and time. How each hole is checked follows from
        # the first resource's value (validated whole): a string, a bare reference, a decimal, a list
        # or object (OBX-19's analysis-time extension, plan42: the element's own definition and huren's
        # rules on it, ``_hole_valid``, remembered per JSON text); a hole of another shape makes the
        # plan unprovable
        kinds: list[tuple[str, object, dict[Any, bool] | None]] = []
        for name in plan.names:
            if name not in holes:
                continue
            value = resource[name]
            if name in numbers:
                kinds.append((name, _NUMBER_HOLE, None))
            elif type(value) is str:
                kinds.append((name, _TEXT_HOLE, self._verdicts.setdefault((rtype, name, "text"), {})))
            elif type(value) is dict and len(value) == 1 and type(value.get("reference")) is str:
                kinds.append((name, _REFERENCE_HOLE, self._verdicts.setdefault((rtype, name, "reference"), {})))
            elif type(value) is list or type(value) is dict:
                kinds.append((name, _TREE_HOLE, self._verdicts.setdefault((rtype, name, "tree"), {})))
            else:
                return False
        return _Proof(rtype, frozenset(numbers), rules, tuple(kinds))

    def _hole_valid(self, proof: _Proof, name: str, value: Any) -> bool:
        check = self._elements.get((proof.rtype, "hole:" + name))
        if check is None:
            with self._lock:
                check = self._value_check(self.r4.definitions[proof.rtype]["properties"][name])
                self._elements[(proof.rtype, "hole:" + name)] = check
        if not check(value):
            return False
        for rule in proof.rules.get(name, ()):
            if not all(rule.check.is_valid(v) for _, v in _values_at(value, rule.element[1:], "")):
                return False
        return True

    def _value_check(self, schema: dict[str, Any], depth: int = 0) -> Callable[[Any], bool]:
        """A check of a value against ``schema`` (a property of the R4 document), exactly as the
        schema engine would say, for an element checked alone (a hole of a plan).

        Why not the schema engine for all of it: one call of it met cold -- between messages,
        after the rest of a message's work -- costs ~40-50 us however small the value (measured on
        ingest's Provenance signature: 45 us for the first call, 2-3 us for the next). So the
        common shapes are checked in Python: an array, an object of a complex type that is
        nothing but its properties (one level), and a string type whose rule is regular
        expressions (``_string_check``: a result's time); a value of any other shape goes to the
        schema engine, whose verdict is remembered per value.
        """
        defs = self.r4.definitions
        keys = set(schema) - {"description"}
        if keys <= {"type", "items", "minItems"} and schema.get("type") == "array" and isinstance(schema.get("items"), dict):
            item = self._value_check(schema["items"], depth)
            least = int(schema.get("minItems", 0))

            def array(v: Any) -> bool:  # (loops, not generators: these run per hole value)
                if type(v) is not list or len(v) < least:
                    return False
                for x in v:  # noqa: SIM110 -- a loop: all() over a generator costs more a call
                    if not item(x):
                        return False
                return True

            return array
        if schema.get("type") == "string" and (inline := _string_check(schema)) is not None:
            # a string rule written in place: a narrowed reference (``_narrow_references``)
            engine = self._remembered(schema)
            return lambda v: inline(v) if type(v) is str and not v.endswith("\n") else engine(v)
        ref = schema.get("$ref") if keys == {"$ref"} else None
        definition = defs.get(ref.rsplit("/", 1)[1]) if isinstance(ref, str) and ref.startswith("#/definitions/") else None
        if isinstance(definition, dict):
            string = _string_check(definition)
            if string is not None:
                engine = self._remembered(schema)
                return lambda v: string(v) if type(v) is str and not v.endswith("\n") else engine(v)
            if (depth == 0 and definition.get("type") == "object" and definition.get("additionalProperties") is False
                    and set(definition) - {"description"} <= {"type", "properties", "additionalProperties", "required"}):
                props = {k: self._value_check(v, depth + 1) for k, v in definition.get("properties", {}).items()}
                required = frozenset(definition.get("required", ()))
                known = props.keys()

                def element(v: Any) -> bool:
                    if type(v) is not dict or not required <= v.keys() or not v.keys() <= known:
                        return False
                    for k, x in v.items():  # noqa: SIM110 -- as in ``array``
                        if not props[k](x):
                            return False
                    return True

                return element
        return self._remembered(schema)

    def _remembered(self, schema: dict[str, Any]) -> Callable[[Any], bool]:
        """The schema engine's verdict on a value, remembered per value (its JSON text). Compiled
        on first use, against only the definitions ``schema`` reaches: an object's properties
        each get one of these, and most are never sent a value."""
        compiled: list[Any] = []
        verdicts: dict[bytes, bool] = {}

        def remembered(value: Any) -> bool:
            try:
                key = orjson.dumps(value)
            except TypeError:  # an exact decimal (a float subclass): not remembered
                key = None
            if key is not None and (known := verdicts.get(key)) is not None:
                return known
            if not compiled:
                compiled.append(compile_schema(
                    {"$schema": self.r4.dialect, **schema, "definitions": _reachable(self.r4.fast_definitions, schema)}))
            check = compiled[0]
            try:
                ok = check.is_valid(value)
            except ValueError:
                ok = False
            if not ok:
                ok = check.is_valid(schema_view(value))
            if key is not None:
                if len(verdicts) >= 1000:
                    verdicts.clear()
                verdicts[key] = ok
            return ok

        return remembered

    def prepare(self, rtype: str) -> None:
        """Compile what validating ``rtype`` uses (each is compiled on first use, 0.02-0.3 s):
        for a server or benchmark that wants its steady state from the first message."""
        self._checked.get(rtype) or self._checks(rtype)

    def _checks(self, rtype: str) -> tuple[Any, bool]:
        """(validator, whether it includes the profile): the R4 definition and huren's rules for
        the type compiled as one schema when the profile can be written as one
        (``Profile.as_schema``), else the R4 validator alone and the profile checked after it."""
        with self._lock:
            checks = self._checked.get(rtype)
            if checks is None:
                profile = self.profiles.get(rtype)
                folded = profile.as_schema() if profile is not None else None
                if profile is None:
                    checks = (self.r4.validator(rtype), True)
                elif folded is None:
                    checks = (self.r4.validator(rtype), False)
                else:
                    checks = (self.r4.validator_with(rtype, *folded), True)
                self._checked[rtype] = checks
        return checks

    def _nested_fast(self, node: dict[str, Any], nested: dict[str, tuple[str | None, bool]]) -> bool:
        for prop, (target, is_array) in nested.items():
            value = node.get(prop)
            if value is None:
                continue
            for item in value if is_array else (value,):
                if target is None:
                    if not self._valid_fast(item, profiled=prop != "contained"):
                        return False
                else:
                    inner = self.r4.nested.get(target)
                    if inner is not None and not self._nested_fast(item, inner):
                        return False
        return True

    def _resource(self, resource: dict[str, Any], at: str | None, *, profiled: bool) -> Iterator[tuple[str, str, str]]:
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or rtype not in self.r4.resource_types:
            where = f"{at}.resourceType" if at else "resourceType"
            what = "missing" if rtype is None else f"{rtype!r} is not an R4 resource type"
            yield where, "structure", f"resourceType {what}"
            return
        base = at or rtype
        validator = self.r4.explaining(rtype)
        if not validator.is_valid(resource):
            for error in validator.iter_errors(resource):
                yield _describe(error, base)
        if profiled and (profile := self.profiles.get(rtype)) is not None:
            yield from profile.problems(resource, base)
        yield from self._nested(resource, rtype, base)

    def _nested(self, node: dict[str, Any], definition: str, at: str) -> Iterator[tuple[str, str, str]]:
        for prop, (target, is_array) in self.r4.nested.get(definition, {}).items():
            value = node.get(prop)
            if value is None:
                continue
            if is_array:
                if not isinstance(value, list):
                    continue  # the schema already reported it
                items = [(f"{at}.{prop}[{i}]", v) for i, v in enumerate(value)]
            else:
                items = [(f"{at}.{prop}", value)]
            for path, item in items:
                if not isinstance(item, dict):
                    continue
                if target is None:
                    # contained resources are fragments of their container: R4 structure only;
                    # Bundle / Parameters entries are whole resources and get huren's rules too
                    yield from self._resource(item, path, profiled=prop != "contained")
                else:
                    yield from self._nested(item, target, path)


@dataclass(frozen=True)
class _Proof:
    """A plan whose resources are checked in their holes alone (``Validator.valid_planned``)."""

    rtype: str
    numbers: frozenset[str]  # holes that are a Quantity's decimal value
    rules: dict[str, list[Any]]  # hole -> huren's rules on that element
    # (hole, how it is checked, its verdicts: value -> verdict for a string, reference -> verdict
    # for a reference, the type's tables ``Validator._verdicts``; None for a decimal), in the
    # plan's element order
    kinds: tuple[tuple[str, object, dict[Any, bool] | None], ...] = field(default=(), compare=False, hash=False)


# how a hole of a proven plan is checked (``_Proof.kinds``)
_TEXT_HOLE, _REFERENCE_HOLE, _NUMBER_HOLE, _TREE_HOLE = object(), object(), object(), object()


def _presence_only(dependency: Any) -> bool:
    """A ``dependencies`` entry that only says which other elements may (not) be present."""
    if isinstance(dependency, list):
        return True
    return (isinstance(dependency, dict) and set(dependency) == {"properties"}
            and all(v is False for v in dependency["properties"].values()))


_DOUBLE_MAX = sys.float_info.max


def _finite_number(value: Any) -> bool:
    """A JSON number every FHIR decimal accepts (jsonschema-rs takes 64-bit integers; every such number is within
    the decimal definition's +-``_DOUBLE_MAX``)."""
    if type(value) is int:
        return -(2**63) <= value < 2**64
    return isinstance(value, float) and math.isfinite(value)


def _reaching(dialect: str, schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The document ``R4Schema`` compiles for ``schema`` (a ``$ref`` to a definition, or an ``allOf`` of one and a
    profile's fragment): ``schema`` under ``dialect`` with the definitions it reaches (``_reachable``), not all of
    them. Why: the schema engine reads the whole document it is given into its own values before compiling -- the R4
    document's ~860 definitions, ~2 MB, ~27 ms of a ~40 ms compile of a Patient (~70 definitions reached: ~13 ms).
    The same checks: a definition no ``$ref`` reaches is never applied (``definitions`` only holds schemas to refer
    to), and an error's ``schema_path`` names where its rule sits (``definitions``, its datatype, ...) either way.
    Each worker of the test suite compiled every type it met (~80 in 40 files), as a server does once a type
    (forty-fifth round, suite45a)."""
    return {"$schema": dialect, **schema, "definitions": _reachable(definitions, schema)}


def _reachable(definitions: dict[str, Any], schema: Any) -> dict[str, Any]:
    """The definitions ``schema`` reaches through ``$ref``, transitively (a small document
    compiles in a fraction of the whole R4 document's time)."""
    out: dict[str, Any] = {}
    todo = [schema]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/definitions/"):
                name = ref.rsplit("/", 1)[1]
                if name not in out and name in definitions:
                    out[name] = definitions[name]
                    todo.append(definitions[name])
            todo.extend(v for k, v in node.items() if k != "$ref")
        elif isinstance(node, list):
            todo.extend(node)
    return out


# escapes a pattern may use to be run by Python's ``re`` with the schema engine's meaning: no
# class shorthands (Unicode-aware in one engine, not the other), no anchors but ^ and $
_SAFE_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|[tnr\-.+\\/\[\](){}*?|^$])")


def _string_check(definition: dict[str, Any]) -> Callable[[str], bool] | None:
    """A Python check of a string primitive of the R4 document (``code``, ``id``, ``instant``...:
    ``type: string`` with patterns and a length limit), or None when its rule has another form
    or a pattern Python's ``re`` might read otherwise than the schema engine (class shorthands,
    look-arounds, back-references). The caller sends a value ending in a line feed to the engine:
    Python's ``$`` also matches before a final line feed."""
    if (definition.get("type") != "string"
            or set(definition) - {"type", "pattern", "allOf", "anyOf", "maxLength", "description"}):
        return None
    patterns = [definition["pattern"]] if "pattern" in definition else []
    for part in definition.get("allOf", ()):
        if not isinstance(part, dict) or set(part) != {"pattern"}:
            return None
        patterns.append(part["pattern"])
    # ``anyOf`` of patterns and negated patterns: a narrowed reference's "names no resource type,
    # or is a URL of an allowed one" (``_typed_absolute``)
    alternatives: list[tuple[bool, str]] = []
    for part in definition.get("anyOf", ()):
        if isinstance(part, dict) and set(part) == {"pattern"}:
            alternatives.append((True, part["pattern"]))
        elif (isinstance(part, dict) and set(part) == {"not"} and isinstance(part["not"], dict)
              and set(part["not"]) == {"pattern"}):
            alternatives.append((False, part["not"]["pattern"]))
        else:
            return None
    for pattern in patterns + [p for _, p in alternatives]:
        if "(?" in pattern or "\\" in _SAFE_ESCAPE.sub("", pattern):
            return None
    compiled = [re.compile(p).search for p in patterns]
    longest = int(definition.get("maxLength", 1 << 62))
    either = [(wanted, re.compile(p).search) for wanted, p in alternatives]

    def check(v: str) -> bool:  # (loops, not generators: these run per hole value)
        if len(v) > longest:
            return False
        for match in compiled:
            if match(v) is None:
                return False
        for wanted, match in either:
            if (match(v) is not None) is wanted:
                return True
        return not either

    return check


def _issue(path: str, code: str, message: str) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": f"{path}: {message}" if path else message}
    if path:
        issue["expression"] = [path]
    return issue


def element_path(base: str, instance_path: list[str | int]) -> str:
    """``["component", 0, "code"]`` under ``Observation`` -> ``Observation.component[0].code``."""
    out = [base]
    for part in instance_path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        else:
            out.append(f".{part}")
    return "".join(out)


def _describe(error: Any, base: str) -> tuple[str, str, str]:
    """A jsonschema-rs error as (element path, issue code, plain message)."""
    kind = error.kind
    name = kind.name
    path = element_path(base, list(error.instance_path))
    if name == "required":
        return f"{path}.{kind.property}", "required", "is required by the FHIR R4 definition but missing"
    if name == "additionalProperties":
        unexpected = list(kind.unexpected)
        return (
            f"{path}.{unexpected[0]}" if len(unexpected) == 1 else path,
            "structure",
            f"unknown element{'s' if len(unexpected) > 1 else ''} {', '.join(map(repr, unexpected))} (not in FHIR R4)",
        )
    if name == "enum":
        options = list(kind.options)
        shown = ", ".join(map(str, options[:12])) + (", ..." if len(options) > 12 else "")
        return path, "value", f"{_short(error.instance)} is not one of the allowed codes ({shown})"
    if name == "type":
        return path, "structure", f"{_short(error.instance)} is not of type {' or '.join(kind.types)}"
    if name == "minItems":
        return path, "structure", "an array must not be empty (leave the element out instead)"
    if name == "anyOf" and _reference_type_rule(list(error.schema_path)):
        # an absolute URL naming a type its element may not point at (see ``_typed_absolute``)
        name = "pattern"
    if name == "format" and isinstance(error.instance, str):
        return path, "invalid", narrative.problem(error.instance) or "is not an R4 narrative"
    if name == "pattern":
        schema_path = list(error.schema_path)
        datatype = str(schema_path[1]) if len(schema_path) > 1 and schema_path[0] == "definitions" else ""
        if ((datatype in _CONTROLLED or datatype == "Reference" or datatype.startswith("Reference_to_"))
                and isinstance(error.instance, str) and (bad := _CONTROL.search(error.instance))):
            return path, "invalid", (f"holds the control character U+{ord(bad.group()):04X} (at {bad.start() + 1}): "
                                     "an R4 string holds none below U+0020 but TAB, LF and CR")
        if datatype == "base64Binary":  # no bytes to read at all: unreadable content, as a body not JSON is (400)
            return path, "invalid", f"{_short(error.instance)} {_PATTERN_MEANING['base64Binary']}"
        if datatype == "xhtml":  # what the narrative rule says of it, when more than "not XHTML" (a DOCTYPE first)
            said = narrative.problem(error.instance) if isinstance(error.instance, str) else None
            if said is not None and not said.startswith("is not well-formed"):
                return path, "invalid", said
            return path, "invalid", f"{_short(error.instance)} {_PATTERN_MEANING['xhtml']}"
        if datatype in _DATE_SHAPES:
            calendar = "allOf" in schema_path and schema_path[schema_path.index("allOf") + 1] == 1
            what = "a day that does not exist" if calendar else f"not a valid {datatype} ({_DATE_SHAPES[datatype]})"
            return path, "value", f"{_short(error.instance)} is {what}"
        if datatype.startswith("Reference_to_") and _well_formed_reference(error.instance):
            allowed = " or ".join(datatype.removeprefix("Reference_to_").split("_"))
            return path, "value", f"{_short(error.instance)} must point at {allowed} (the R4 target types here)"
        meaning = _PATTERN_MEANING.get(datatype.split("_to_")[0], f"is not a valid {datatype or 'value'}")
        return path, "value", f"{_short(error.instance)} {meaning}"
    if name == "falseSchema" and "dependencies" in (schema_path := list(error.schema_path)):
        # a choice group (regenerate.py correction 10): schema_path [..., "dependencies", present, ...]
        present = str(schema_path[schema_path.index("dependencies") + 1])
        other = str(error.instance_path[-1])
        prefix = os.path.commonprefix([present, other])
        while prefix and not (present[len(prefix):][:1].isupper() and other[len(prefix):][:1].isupper()):
            prefix = prefix[:-1]
        parent = element_path(base, list(error.instance_path)[:-1])
        return f"{parent}.{prefix}[x]", "structure", f"only one {prefix}[x] may be given, not both {present} and {other}"
    if name == "maxLength":
        return path, "too-long", f"a string of {len(error.instance):,} characters exceeds the R4 limit of 1 MiB"
    if name in ("minimum", "maximum"):
        return path, "value", f"{_short(error.instance)} is out of range for this integer type"
    return path, "structure", error.message


def _reference_type_rule(schema_path: list[Any]) -> bool:
    return (len(schema_path) > 2 and schema_path[0] == "definitions"
            and str(schema_path[1]).startswith("Reference_to_") and schema_path[-2:] == ["reference", "anyOf"])


def _short(value: Any) -> str:
    text = json_dumps(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."
