"""Access to the mapping tables in ``mappings/hl7v2/`` (via ``Site.tables``, so sites can override)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from adapters.hl7v2.errors import APPLICATION_INTERNAL_ERROR, HL7Error
from mappings.site import LOCAL_CODE_PREFIX, Site, urn_part


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
    """FHIR system URI for a v2 coding system name: a known one's, the institution's local system for
    its own local codes, a system of its own (``unknown_code_system``) for a name huren does not know.

    A sender may keep several local coding systems (table 0396's ``99zzz``: a microbiology code list
    ``99BAC`` beside a blood-bank one ``99ABO``) whose codes overlap: each gets its own URI
    ``<local system>:<99ZZZ>`` so "01" of one is not "01" of the other -- the name upper-cased, one list in
    whichever case it is sent. Codes with no system, ``L``,
    and the ``99zzz`` a site names as the sender's default (``senders.yaml`` ``local_code_systems``)
    stay under the local system itself, which the sender's code map (``codes/<INST>.yaml``) and the
    results already stored use. The institution's code is URN-quoted (no ``:``), so readers split
    the institution off at the first ``:`` (``engine.recognition.coding``).

    A name that is neither known nor local (CWE-3 ``WOUNDSYS``, ``ZZLAB``) is another party's code
    list: its codes were filed under the local system, so the code map gave ``WBC^Wound Bed
    Classification^WOUNDSYS`` the hospital's own WBC's LOINC 6690-2 and ``XCG^...^ZZLAB`` its blood
    count and recognition item (rv42b HIGH 1). They now keep the name, untranslated, under a system
    no code map answers (``mappings.site.local_code_system`` reads only the local forms), so no
    reader of local codes -- the converter's code map, recognition's item and analytes -- takes them
    for the hospital's (forty-second round, conv42)."""
    known = known_coding_system(site, name, local_system)
    if known:
        return known
    name = name.strip()
    if known is None:
        return unknown_code_system(local_system, name)
    if not name.upper().startswith("99") or name.upper() in _default_locals(site, local_system):
        return local_system
    # (upper-cased: table 0396 names ``99zzz`` case-blind, as ``_local_name`` and ``_default_locals`` compare them --
    # ``99bac`` and ``99BAC`` from one LIS are one list, one system; rv43a LOW 1, forty-third round, plan43)
    return f"{local_system}:{urn_part(name.upper())}"


def _local_name(name: str) -> bool:
    """Is ``name`` one of table 0396's local forms -- empty, ``L`` or ``99zzz``? Compared case-blind
    as the table's names are (a LIS sending ``l`` or ``99lis`` means its own list: the lower-case ``l``
    had been read as an unknown system, the hospital's HGB/CBC losing their LOINC and item -- rv42e,
    forty-second round, conv42b)."""
    upper = name.upper()
    return not upper or upper == "L" or upper.startswith("99")


UNKNOWN_CODE_PREFIX = "urn:huren:unknown-code-system:"


def unknown_code_system(local_system: str, name: str) -> str:
    """The system of a code sent under coding system ``name`` that huren does not know:
    ``urn:huren:unknown-code-system:<INST>:<name>`` (both URN-quoted), the sender's name kept as sent
    and told apart from another sender's list of that name. Outside ``urn:huren:code:``, so no
    institution's code map answers it and recognition never reads it as an item."""
    inst = local_system.removeprefix(LOCAL_CODE_PREFIX)
    return f"{UNKNOWN_CODE_PREFIX}{inst}:{urn_part(name)}"


def _default_locals(site: Site, local_system: str) -> frozenset[str]:
    """The ``99zzz`` names a site lists as an institution's default local coding system."""
    declared = (site.tables.get("senders") or {}).get("local_code_systems") or {}
    inst = local_system.rsplit(":", 1)[-1]
    names = declared.get(inst) or declared.get(unquote(inst)) or ()
    return frozenset(str(n).strip().upper() for n in ([names] if isinstance(names, str) else names))


def known_coding_system(site: Site, name: str, local_system: str | None = None) -> str | None:
    """The FHIR system URI of a v2 coding system name (table 0396, ``coding_systems.yaml``, HL7nnnn,
    a URI); '' for the local systems (empty, ``L``, ``99zzz`` in any case, and a name the site declares
    as ``local_system``'s own list in senders.yaml ``local_code_systems``); None for a name huren does
    not know, whose codes are then kept under a system of their own (``unknown_code_system``), the name
    reported as an unmapped ``coding_system`` in the fidelity report and the field in a W.

    The one owner of "which system is this name": ``coding_systems.yaml`` also lists the standards'
    OIDs (LOINC's ``2.16.840.1.113883.6.1``), read bare or as ``urn:oid:<OID>`` alike -- a regional
    platform relaying national codes names LOINC so, and it is LOINC (rv42e). A sender's own list under
    a name that is not ``99zzz`` (``LIS``, ``WinPath``) is unknown unless the site declares it for that
    sender: the operator's remedy to the W (forty-second round, conv42b)."""
    name = name.strip()
    if _local_name(name):
        return ""
    codes = table(site, "coding_systems")
    upper = name.upper()
    bare = name[len("urn:oid:"):] if name.lower().startswith("urn:oid:") else name
    known = codes.get(name) or codes.get(upper) or codes.get(bare)
    if known:
        return str(known)
    if local_system is not None and upper in _default_locals(site, local_system):
        return ""
    if upper.startswith("HL7") and upper[3:].isdigit():
        return f"http://terminology.hl7.org/CodeSystem/v2-{upper[3:]}"
    if name.startswith(("http://", "https://", "urn:")) and not any(c.isspace() for c in name):
        return name
    return None
