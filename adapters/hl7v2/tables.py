"""The HL7 tables of a message's version: whether a coded value is one the standard lists (twenty-eighth
round, hl7fix28).

ERR-3 103 is "table value not found": the sender sent a value its HL7 table lacks. Whether huren has
a FHIR code for a value is another question (a value in the table huren does not map is counted as
unmapped in the fidelity report, not told to the sender as an error: AL1-2 ``MC``, ORC-1 ``XR``, FT1-6
``CO`` were, hl7left28). So the table is read from the standard, per version, as hl7apy ships it
(``hl7apy.v2_5.tables.TABLES['HL70127'] == ('Allergen Type', ('AA', 'DA', ...))``), and the field's
table number from hl7apy's field definitions (``FIELDS['PID_8'] == ('leaf', None, 'IS', ..., 'HL70001',
-1)``: TQ1-9 reads 0485, RXA-21 0323 up to v2.5.1 and 0206 from v2.6). Where hl7apy names no table for
a field or component (ORC-7.6, a TQ component), the site's data does (``vocabulary.yaml``
``hl7_table_of_field``), and local values a site accepts beside the standard's (China's GB/T 2261.1 sex
codes in table 0001, user-defined tables) extend a table (``hl7_table_local``).

Cheap: a field's table is looked up once per (version, segment, field, component) and a table is a
frozenset built once per (version, table); the check runs only when huren's vocabulary misses a value.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

# hl7apy's versions that carry tables (v2.1 to 2.3 carry none), oldest first
_VERSIONS: tuple[tuple[int, ...], ...] = ((2, 3, 1), (2, 4), (2, 5), (2, 5, 1), (2, 6), (2, 7), (2, 8), (2, 8, 1),
                                          (2, 8, 2))
_DEFAULT = (2, 5, 1)
_PATTERN = re.compile(r"^(.*)<INTEGER>$")  # 0485 "TM<integer>": TM then a number


def _parsed(version: str) -> tuple[int, ...]:
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:3])
    return parts if len(parts) >= 2 else _DEFAULT


def _nearest(version: str) -> tuple[tuple[int, ...], ...]:
    """hl7apy's versions to read for ``version``, the best first: the version itself or the latest one
    before it, then the later ones (a table hl7apy leaves empty in one version -- v2.4's 0119 -- is read
    from the nearest that lists it), then the earlier ones."""
    sent = _parsed(version)
    before = [v for v in _VERSIONS if v <= sent]
    after = [v for v in _VERSIONS if v > sent]
    return tuple(before[-1:] + after + before[-2::-1])


def _module(version: tuple[int, ...], name: str) -> Any:
    return importlib.import_module(f"hl7apy.v{'_'.join(map(str, version))}.{name}")


@lru_cache(maxsize=512)
def table_values(version: str, number: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """HL7 table ``number`` ("0001") of ``version``: its values (upper case) and the prefixes of its
    "<integer>" patterns (0485's ``TM<integer>``). Empty when no hl7apy version lists it."""
    for v in _nearest(version):
        found = _module(v, "tables").TABLES.get(f"HL7{number}")
        if found and found[1]:
            values = {str(x).upper() for x in found[1]}
            prefixes = tuple(m.group(1) for x in values if (m := _PATTERN.match(x)))
            return frozenset(values), prefixes
    return frozenset(), ()


@lru_cache(maxsize=4096)
def field_table(version: str, segment: str, field: int, component: int | None = None) -> str:
    """The number ("0001") of the HL7 table ``segment``-``field`` (its ``component``) reads in ``version``
    (hl7apy's field definitions), "" when hl7apy names none. A CE/CWE field read at its first component
    reads the field's table (AL1-2, TQ1-9)."""
    for v in _nearest(version):
        definition = _module(v, "fields").FIELDS.get(f"{segment}_{field}")
        if definition is None:
            continue
        name = definition[4]
        if definition[0] == "sequence" and component and component > 1:
            parts = definition[1]
            name = parts[component - 1][1][4] if component <= len(parts) else None
        return name[3:] if isinstance(name, str) and name.startswith("HL7") else ""
    return ""


def table_of(version: str, where: str, component: int | None, site_vocabulary: Mapping[str, Any],
             vocab: str = "") -> str:
    """The HL7 table the field at ``where`` ("PID-8") reads: hl7apy's, else the site's data for the field
    (``hl7_table_of_field``, "ORC-7.6"), else the one the vocabulary is known by (``hl7_table_of``)."""
    segment, _, field = where.partition("-")
    number = field_table(version, segment, int(field), component) if field.isdigit() else ""
    if number:
        return number
    key = f"{where}.{component}" if component else where
    return str((site_vocabulary.get("hl7_table_of_field") or {}).get(key)
               or (site_vocabulary.get("hl7_table_of") or {}).get(vocab) or "")


def in_table(version: str, number: str, value: str, local: Mapping[str, Any] | None = None,
             errata: Mapping[str, Any] | None = None) -> bool | None:
    """Whether ``value`` is one of HL7 table ``number`` in ``version`` (case-insensitive, as
    ``datatypes.code_id`` reads), of the values the site adds to it (``local``: ``hl7_table_local``), or of
    those hl7apy's table of that version lacks (``errata``: ``hl7_table_errata``, by MSH-12 as sent).
    None when the table is unknown (neither hl7apy nor the site lists it): nothing can be said."""
    values, prefixes = table_values(version, number) if number else (frozenset(), ())
    extra = [*((local or {}).get(number) or ()), *(((errata or {}).get(version.strip()) or {}).get(number) or ())]
    if not values and not extra:
        return None
    text = value.strip().upper()
    if text in values or any(str(x).upper() == text for x in extra):
        return True
    return any(text.startswith(p) and text[len(p):].isdigit() for p in prefixes)


@lru_cache(maxsize=32)
def structures(version: str) -> frozenset[str]:
    """The message structures HL7 table 0354 lists up to ``version`` (hl7apy's tables of that version and
    the earlier ones: a structure a version renamed stays a structure of its event for the older senders,
    v2.3.1's ``RDE_O01``, which hl7apy's v2.4 table lacks and its v2.5 table lists again)."""
    sent = _parsed(version)
    read = [v for v in _VERSIONS if v <= sent] or [_VERSIONS[0]]
    found: set[str] = set()
    for v in read:
        entry = _module(v, "tables").TABLES.get("HL70354")
        found.update(entry[1] if entry else ())
    return frozenset(found)


def allowed_structure(version: str, message_type: str, event: str, sent: str, template: str | None) -> bool:
    """Whether MSH-9.3 ``sent`` is a structure of ``message_type``^``event`` in ``version``: the one huren
    reads the event with (``event_structures.yaml``, ``template``) or the event's own structure where
    table 0354 of the version lists it (v2.4's ``RDE^O01^RDE_O01``; hl7fix28: the template map was read
    as table 0354, and v2.3/2.4 pharmacy orders sent right were warned)."""
    if template is None or sent == template:
        return True
    return sent == f"{message_type}_{event}" and sent in structures(version)


@lru_cache(maxsize=1)
def trigger_events() -> frozenset[str]:
    """HL7 table 0003 (event type) as any version hl7apy ships lists it: the trigger events a site's
    data may name (``merge.yaml`` ``history_taken_back_by``); a misspelt one (``a12``, ``ADT^A12``)
    would silently never match a message's event, so the site file is refused instead."""
    return frozenset().union(*(table_values(".".join(map(str, v)), "0003")[0] for v in _VERSIONS))
