"""Access to the mapping tables in ``mappings/hl7v2/`` (via ``Site.tables``, so sites can override)."""

from __future__ import annotations

from typing import Any

from adapters.hl7v2.errors import APPLICATION_INTERNAL_ERROR, HL7Error
from mappings.site import Site


def table(site: Site, name: str) -> dict[str, Any]:
    data = site.tables.get(name)
    if data is None:
        raise HL7Error(
            f"mapping table mappings/hl7v2/{name}.yaml is missing", code=APPLICATION_INTERNAL_ERROR
        )
    return data


def vocabulary(site: Site, name: str) -> dict[str, Any]:
    vocab = table(site, "vocabulary").get(name)
    if vocab is None:
        raise HL7Error(
            f"vocabulary table {name!r} is missing from mappings/hl7v2/vocabulary.yaml",
            code=APPLICATION_INTERNAL_ERROR,
        )
    return vocab


def coding_system(site: Site, name: str, local_system: str) -> str:
    """FHIR system URI for a v2 coding system name; the institution's local system otherwise."""
    return known_coding_system(site, name) or local_system


def known_coding_system(site: Site, name: str) -> str | None:
    """The FHIR system URI of a v2 coding system name (table 0396, ``coding_systems.yaml``, HL7nnnn,
    a URI); '' for the local systems (empty, ``L``, ``99zzz``); None for a name huren does not know,
    whose codes are then kept under the institution's local system and the name is reported as an
    unmapped ``coding_system`` in the fidelity report."""
    name = name.strip()
    if not name or name == "L" or name.upper().startswith("99"):
        return ""
    known = table(site, "coding_systems").get(name) or table(site, "coding_systems").get(name.upper())
    if known:
        return str(known)
    upper = name.upper()
    if upper.startswith("HL7") and upper[3:].isdigit():
        return f"http://terminology.hl7.org/CodeSystem/v2-{upper[3:]}"
    if name.startswith(("http://", "https://", "urn:")) and not any(c.isspace() for c in name):
        return name
    return None
