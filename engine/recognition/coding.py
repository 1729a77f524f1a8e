"""Which recognition item an order or a result is for: its codes → the platform's item code.

Tried in order (item_codes.yaml): the platform item system itself, the institution's local code
(``urn:huren:code:<INSTITUTION>``, as the converters write it), LOINC, the national service price
code (longest prefix), and for imaging the modality plus body site. The first hit wins, so a
local map can override what a LOINC coding would say.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from engine.recognition.rules import CodeMaps, Rules
from mappings.site import local_code_system


def _codings(concepts: Iterable[Any] | None) -> Iterator[dict[str, Any]]:
    for concept in concepts or ():
        if isinstance(concept, dict):
            if "coding" in concept:
                yield from (c for c in concept.get("coding") or () if isinstance(c, dict))
            elif "code" in concept:  # a bare Coding (ImagingStudy.modality, series.bodySite)
                yield concept


def resource_codings(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The codings that say what was ordered or done."""
    rtype = resource.get("resourceType")
    if rtype == "ImagingStudy":
        return list(_codings(resource.get("procedureCode")))
    code = resource.get("code")
    if type(code) is dict and "coding" in code:  # the common shape, without the generators (hot: every result)
        return [c for c in code["coding"] or () if isinstance(c, dict)]
    return list(_codings([code] if code else []))


def modalities(resource: dict[str, Any], maps: CodeMaps) -> set[str]:
    found: set[str] = set()
    if resource.get("resourceType") == "ImagingStudy":
        found.update(str(c.get("code", "")).upper() for c in _codings(resource.get("modality")))
        for series in resource.get("series") or ():
            found.update(str(c.get("code", "")).upper() for c in _codings([series.get("modality")]))
    for c in resource_codings(resource):
        if c.get("system") == maps.modality_system:
            found.add(str(c.get("code", "")).upper())
        elif c.get("system") == maps.price_system:
            code = _price_key(str(c.get("code", "")))
            hit = _longest_prefix(maps.price_modality, code)
            if hit:
                found.add(hit)
    found.discard("")
    return {maps.modality_aliases.get(m, m) for m in found}


def body_sites(resource: dict[str, Any]) -> set[str]:
    sites: list[dict[str, Any]] = []
    if resource.get("resourceType") == "ImagingStudy":
        for series in resource.get("series") or ():
            sites.extend(_codings([series.get("bodySite")]))
    else:
        sites.extend(_codings(resource.get("bodySite")))
    out = {str(c.get("code", "")).upper() for c in sites}
    out.update(str(c.get("display", "")).upper() for c in sites if c.get("display"))
    out.discard("")
    return out


def _price_key(code: str) -> str:
    """National price codes come as 9 digits or "00" + 9 digits + 4-digit suffix."""
    return code[2:11] if len(code) == 15 and code.startswith("00") else code


def _longest_prefix(table: dict[str, str] | Any, code: str) -> str | None:
    for n in range(len(code), 0, -1):
        hit = table.get(code[:n])
        if hit:
            return hit
    return None


def item_for(resource: dict[str, Any], rules: Rules, institution: str | None = None) -> str | None:
    """The recognition item code of an order or result, or None when it is not a recognised item."""
    maps = rules.codes
    codings = resource_codings(resource)
    for c in codings:
        if c.get("system") == maps.item_system and c.get("code") in rules.items:
            return str(c["code"])
    for c in codings:
        local = local_code_system(str(c.get("system") or ""), maps.local_prefix)
        if local:
            hit = maps.local.get(local[0], {}).get(str(c.get("code")))
            if hit:
                return hit
    if institution:
        # A local coding without the system (some feeds) is read against the sender's own map.
        table = maps.local.get(institution, {})
        for c in codings:
            if not c.get("system") and str(c.get("code")) in table:
                return table[str(c.get("code"))]
    for c in codings:
        if c.get("system") == maps.loinc_system and c.get("code") in maps.loinc:
            return maps.loinc[str(c["code"])]
    for c in codings:
        if c.get("system") == maps.price_system:
            hit = _longest_prefix(maps.price, _price_key(str(c.get("code", ""))))
            if hit:
                return hit
    # Only an ImagingStudy or a modality / price coding can name a modality: a lab result that
    # matched nothing above skips the imaging rules (most Observations of a panel end here).
    if resource.get("resourceType") != "ImagingStudy" and not any(
            c.get("system") in (maps.modality_system, maps.price_system) for c in codings):
        return None
    mods = modalities(resource, maps)
    if mods:
        sites = body_sites(resource)
        for rule in maps.imaging:
            if rule.modality in mods and (not rule.body_sites or rule.body_sites & sites):
                return rule.item
    return None


def institution_from_codes(resource: dict[str, Any], rules: Rules) -> str | None:
    """The institution named by a local code system on the resource (``urn:huren:code:<INST>``)."""
    for c in resource_codings(resource):
        # urn:huren:code:<INST>:<99zzz> is another local coding system of the same institution
        local = local_code_system(str(c.get("system") or ""), rules.codes.local_prefix)
        if local:
            return local[0]
    return None


def analytes_for(resource: dict[str, Any], rules: Rules, item: str, institution: str | None = None) -> tuple[str, ...]:
    """The analytes of panel ``item`` that an order or result names (by LOINC, directly or through the
    institution's code map); empty when it names the panel itself (it then covers every analyte)."""
    if not rules.items[item].analytes:
        return ()
    maps = rules.codes
    found: set[str] = set()
    for c in resource_codings(resource):
        system, code = str(c.get("system") or ""), str(c.get("code") or "")
        loinc = code if system == maps.loinc_system else ""
        local = None if loinc else local_code_system(system, maps.local_prefix)
        if local:
            loinc = maps.local_loinc.get(local[0], {}).get(code, "")
        analyte = maps.analytes.get(loinc)
        if analyte and analyte in rules.items[item].analytes:
            found.add(analyte)
    return tuple(sorted(found))


def item_named(text: str, rules: Rules) -> str | None:
    """The recognition item whose items.yaml ``name`` is ``text`` (stripped), the first one listed: one
    dict read (``Rules.item_names``), where the merge's ``same_test`` of an order by text alone went
    through every item's name (thirty-seventh round, code37)."""
    return rules.item_names.get(text.strip())
