"""Regenerate ``searchparams.json``: the R4 SearchParameters huren supports, and the Patient
CompartmentDefinition, taken from the npm package ``hl7.fhir.r4.examples@4.0.1``.

    cd /tmp && npm pack hl7.fhir.r4.examples@4.0.1
    python -m conformance.searchparams.extract /tmp/hl7.fhir.r4.examples-4.0.1.tgz

Kept: parameters of the search types huren indexes (token, reference, date, string, quantity,
uri) on the resource types huren stores, whose FHIRPath expression (the union members about
that type) compiles with ``engine.repository.fhirpath``; plus the ``Resource`` parameters
(``_id``, ``_lastUpdated``, ``_tag``, ``_profile``, ``_security``, ``_source``). The script
prints what it left out and why, so the data and the code can never disagree silently.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

from engine.repository.fhirpath import UnsupportedExpression, compile_expression, parts_for_type

RESOURCE_TYPES = [
    "Patient", "Practitioner", "PractitionerRole", "Organization", "Location", "Encounter",
    "ServiceRequest", "Specimen", "Observation", "DiagnosticReport", "ImagingStudy",
    "DocumentReference", "Condition", "AllergyIntolerance", "DetectedIssue", "Flag", "AuditEvent",
    "Provenance", "MessageHeader", "Device", "Endpoint",
    # what the HL7 v2 immunisation, pharmacy, scheduling, referral, billing and ADT feeds make
    "Immunization", "ImmunizationRecommendation", "Medication", "MedicationRequest",
    "MedicationDispense", "MedicationAdministration", "Appointment", "Task", "Account",
    "ChargeItem", "Procedure", "Coverage", "RelatedPerson",
    # family access: the resident's consent that a RelatedPerson may act for them
    "Consent",
]
SEARCH_TYPES = {"token", "reference", "date", "string", "quantity", "uri"}
OUT = Path(__file__).with_name("searchparams.json")


def _describe(description: str, resource_type: str) -> str:
    """One line of documentation: the line about this type in multi-resource descriptions."""
    for line in description.splitlines():
        m = re.match(rf"\s*\*\s*\[{resource_type}\]\([^)]*\):\s*(.+)", line)
        if m:
            return m.group(1).strip()
    return description.splitlines()[0].strip() if description else ""


def extract(tgz: Path) -> dict[str, Any]:
    params: dict[str, dict[str, Any]] = {t: {} for t in RESOURCE_TYPES}
    common: dict[str, Any] = {}
    compartment: dict[str, list[str]] = {}
    all_types: set[str] = set()
    skipped: list[str] = []
    with tarfile.open(tgz) as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if not (name.startswith("SearchParameter-") or name == "CompartmentDefinition-patient.json"):
                continue
            data = json.load(tar.extractfile(member))  # type: ignore[arg-type]
            if data.get("resourceType") == "CompartmentDefinition":
                # the Patient CompartmentDefinition lists every R4 resource type, in or out of it
                all_types.update(entry["code"] for entry in data["resource"])
                for entry in data["resource"]:
                    if entry["code"] in RESOURCE_TYPES:
                        compartment[entry["code"]] = list(entry.get("param", []))
                continue
            if data.get("resourceType") != "SearchParameter":
                continue
            url = data.get("url", "")
            if not url.startswith("http://hl7.org/fhir/SearchParameter/"):
                continue
            for base in data.get("base", []):
                if base == "Resource" and data["type"] in SEARCH_TYPES and data.get("expression"):
                    common[data["code"]] = {
                        "type": data["type"], "expression": data["expression"],
                        "url": url, "documentation": _describe(data.get("description", ""), base),
                    }
                    continue
                if base not in params:
                    continue
                where = f"{base}.{data['code']}"
                if data["type"] not in SEARCH_TYPES:
                    skipped.append(f"{where}: type {data['type']}")
                    continue
                expression = parts_for_type(data.get("expression") or "", base)
                if not expression:
                    skipped.append(f"{where}: no expression")
                    continue
                try:
                    compile_expression(expression, base)
                except UnsupportedExpression as exc:
                    skipped.append(f"{where}: unsupported FHIRPath {exc}")
                    continue
                definition: dict[str, Any] = {
                    "type": data["type"], "expression": expression, "url": url,
                    "documentation": _describe(data.get("description", ""), base),
                }
                if data.get("target"):
                    definition["target"] = sorted(data["target"])
                params[base][data["code"]] = definition
    missing = [f"{t}.{p}" for t, ps in compartment.items() for p in ps if p not in params[t]]
    if missing:
        raise SystemExit(f"compartment parameters not supported: {missing}")
    for line in sorted(skipped):
        print("left out:", line, file=sys.stderr)
    return {
        "source": "npm hl7.fhir.r4.examples@4.0.1",
        "generator": "python -m conformance.searchparams.extract",
        "common": dict(sorted(common.items())),
        "types": {t: dict(sorted(ps.items())) for t, ps in sorted(params.items())},
        "compartment": {"Patient": dict(sorted(compartment.items()))},
        "resource_types": sorted(all_types | set(RESOURCE_TYPES)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="hl7.fhir.r4.examples-4.0.1.tgz from `npm pack`")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    data = extract(args.package)
    args.out.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    count = sum(len(p) for p in data["types"].values())
    print(f"wrote {args.out}: {count} parameters on {len(data['types'])} types, {len(data['common'])} common")
    return 0


if __name__ == "__main__":
    sys.exit(main())
