"""HL7 v2 data types → FHIR data types (HL7 v2-to-FHIR IG data type maps), one function each.

Each converter takes one field repetition, the rule that asked for it and the conversion
context, and returns a FHIR JSON value or None when there is nothing to say. Invalid values raise
``ValueError`` naming the problem; the engine turns that into a located HL7Error (AE when the
rule is ``required``, else a warning and the element left out).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from adapters.convert.actors import location, practitioner
from adapters.convert.context import Context
from adapters.convert.tables import coding_system, known_coding_system, table, vocabulary
from adapters.hl7v2.errors import TABLE_VALUE_NOT_FOUND, NotInTable
from adapters.hl7v2.parser import Repetition, Segment
from adapters.hl7v2.tables import in_table, table_of
from adapters.hl7v2.timestamps import to_fhir_date, to_fhir_datetime, to_fhir_instant
from engine.fhirjson import number
from engine.merge_rules import ideographic
from mappings.site import urn_part

Rule = dict[str, Any]
Converter = Callable[[Repetition, Rule, Context], Any]

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")


def _value(rep: Repetition, rule: Rule) -> str:
    return rep.comp(rule.get("component", 1)).strip()


def st(rep: Repetition, rule: Rule, ctx: Context) -> str | None:
    if "component" in rule:
        return _value(rep, rule) or None
    text = rep.text().strip()
    return text or None


def st_concepts(rep: Repetition, rule: Rule, ctx: Context) -> list[dict[str, str]] | None:
    """Free text where FHIR wants CodeableConcept[] (AL1-5 reaction → manifestation)."""
    text = st(rep, rule, ctx)
    return [{"text": text}] if text else None


def integer(rep: Repetition, rule: Rule, ctx: Context) -> int | None:
    text = _value(rep, rule)
    if not text:
        return None
    if not (text.isascii() and text.lstrip("+-").isdigit()):
        raise ValueError(f"{text!r} is not an integer")
    return int(text)


def decimal(text: str) -> int | float:
    """HL7 NM → JSON number with the sender's precision: ``1.50`` stays ``1.50`` (FHIR decimals
    carry implicit precision). Only what FHIR's decimal grammar forbids is rewritten: a leading
    ``+`` (``+1.50`` → ``1.50``), a bare or missing integer part (``.5`` → ``0.5``, ``1.`` → ``1``)
    and leading zeros (``01.5`` → ``1.5``). An int when the sender wrote no decimal point."""
    text = text.strip()
    m = _NUMBER.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a number")
    if math.isinf(float(m.group(1))):  # (a digit string past a double: no index or reader can hold it -- rv42b)
        raise ValueError(f"{text[:40]!r}... is beyond the largest number a FHIR decimal is held as (about 1.8e308)")
    sign = "-" if text.startswith("-") else ""
    whole, _, fraction = m.group(1).partition(".")
    whole = whole.lstrip("0") or "0"
    if not fraction:
        return int(sign + whole)
    return number(f"{sign}{whole}.{fraction}")


def yes_no(rep: Repetition, rule: Rule, ctx: Context) -> bool | None:
    text = _value(rep, rule).upper()
    if not text:
        return None
    if text in ("Y", "1", "TRUE"):
        return True
    if text in ("N", "0", "FALSE"):
        return False
    raise ValueError(f"{text!r} is not Y or N")


def dt(rep: Repetition, rule: Rule, ctx: Context) -> str | None:
    text = _value(rep, rule)
    return to_fhir_date(text) if text else None


def dtm(rep: Repetition, rule: Rule, ctx: Context) -> str | None:
    text = _value(rep, rule)
    return to_fhir_datetime(text, ctx.tz) if text else None


def instant(rep: Repetition, rule: Rule, ctx: Context) -> str | None:
    """DTM → FHIR instant (OBR-22 → DiagnosticReport.issued, TXA-4 → DocumentReference.date). An
    instant is known to the second: a time sent to the minute (NIST's ``200808181800-0700``, as
    many HIS write it) is left out rather than given seconds it was not sent with -- said, at the
    field (it was dropped without a word, nineteenth round)."""
    text = _value(rep, rule)
    if not text:
        return None
    value = to_fhir_instant(text, ctx.tz)
    if value is None:
        raise ValueError(f"{text!r} is not to the second, as an instant must be; left out, not given invented seconds")
    return value


def birth_time(rep: Repetition, rule: Rule, ctx: Context) -> str | None:
    """PID-7 with a time of day → patient-birthTime extension (birthDate keeps the date)."""
    text = _value(rep, rule)
    if len(text) < 10:
        return None
    return to_fhir_datetime(text, ctx.tz)


def code_id(rep: Repetition, rule: Rule, ctx: Context) -> Any:
    """ID/IS through a vocabulary table; unmapped values are reported and left out."""
    text = _value(rep, rule)
    if not text:
        return None
    table = rule.get("vocab")
    if not table:
        return text
    mapped = looked_up(vocabulary(ctx.site, table), text)
    if mapped is None:
        return unmapped(text, table, rule, ctx)
    return mapped


def looked_up(vocab: dict[str, Any], text: str) -> Any:
    """The one reading of a coded value in a vocabulary, for every ID field (``code_id``, ``id_coding``,
    ``id_concept``): senders vary the case of the standard's words ("BOOKED", "booked" for "Booked"; PID-8
    ``f``, PV1-2 ``i``), so a value is read as sent, else upper case, else capitalised (hl7fix28: PV1-2
    ``i`` was told 103 where PID-8 ``f`` was read)."""
    mapped = vocab.get(text)
    if mapped is None:
        mapped = vocab.get(text.upper())
        if mapped is None:
            mapped = vocab.get(text.capitalize())
    return mapped


def unmapped(text: str, vocab: str, rule: Rule, ctx: Context) -> None:
    """A value huren's vocabulary has no FHIR code for: left out and counted unmapped (fidelity report).
    The sender is told (W 103, ``not_in_table``) only when the value is not in the HL7 table of the
    message's version the field reads (``hl7v2.tables``), or a value the site adds to it: a value the
    table holds (AL1-2 ``MC``, ORC-1 ``XR``, FT1-6 ``CO``) is no error of the sender's (hl7fix28)."""
    where = rule.get("where", "")
    ctx.note_unmapped(vocab, text, where)
    version = ctx.message.msh.version
    data = table(ctx.site, "vocabulary")
    number = table_of(version, where, rule.get("component"), data, vocab)
    if in_table(version, number, text, data.get("hl7_table_local"), data.get("hl7_table_errata")) is not False:
        return None  # in the table, or a table nobody lists: no claim the sender erred
    raise not_in_table(text, number, ctx)


def not_in_table(text: str, number: str, ctx: Context) -> NotInTable:
    """The one reading of a coded value its HL7 table lacks: left out, and the rule that read it warns
    the sender (ERR 103, severity W, at the field: ``engine.compile_rule``), naming the value and the
    table (``unmapped`` decides). Left out silently, PID-8 ``Q`` came back AA with no ERR (hl7conf27;
    hl7left28)."""
    named = f"HL7 table {number}" if number else "the field's HL7 table"
    return NotInTable(f"{text!r} is not in {named} (v{ctx.message.msh.version or '2.5.1'}); the value was not stored")


def _coding_from_vocab(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    text = _value(rep, rule)
    if not text:
        return None
    table = rule.get("vocab")
    mapped: Any = text
    if table:
        mapped = looked_up(vocabulary(ctx.site, table), text)
        if mapped is None:
            return unmapped(text, table, rule, ctx)
        if mapped == "":  # a known value that deliberately maps to nothing
            return None
    coding: dict[str, Any] = {"system": rule["system"]}
    if isinstance(mapped, dict):
        coding.update(mapped)
    else:
        coding["code"] = str(mapped)
    return coding


def id_coding(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    return _coding_from_vocab(rep, rule, ctx)


def id_concept(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    coding = _coding_from_vocab(rep, rule, ctx)
    return {"coding": [coding]} if coding else None


def cwe_coding(rep: Repetition, ctx: Context, offset: int = 0, table: str = "") -> dict[str, Any] | None:
    """One CWE/CE triplet (code, text, system) starting at component ``offset + 1`` → Coding."""
    code = rep.comp(offset + 1).strip()
    display = rep.comp(offset + 2).strip()
    system_name = rep.comp(offset + 3).strip()
    if not code and not display:
        return None
    coding: dict[str, Any] = {}
    if code:
        system = coding_system(ctx.site, system_name, ctx.local_system)
        if not system_name and table:
            system = f"http://terminology.hl7.org/CodeSystem/v2-{table}"
        coding["system"] = system
        coding["code"] = code
    if display:
        coding["display"] = display
    version = rep.comp(offset + 7 if offset == 0 else 8).strip()  # CWE-7 / CWE-8: the system's version
    if version and code:
        coding["version"] = version
    return coding


_CWE_LIMIT = 20000
# id(site) → (site, {(local system, table, raw, delimiters...): (concept, unknown coding system
# names)}); see ``cwe``
_CWE: dict[int, tuple[Any, dict[tuple[str, ...], tuple[dict[str, Any] | None, tuple[str, ...]]]]] = {}


def cwe(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """CWE/CE/CNE → CodeableConcept: primary and alternate codings, CWE-9 (or CWE-2) as text.

    The concept depends only on the raw value, the delimiters, the rule's table, the
    institution's local system and the (immutable) site's coding systems, and the same codes
    recur in every message: computed once, each call gets its own copy (callers add to it)."""
    site = ctx.site
    entry = _CWE.get(id(site))
    if entry is None or entry[0] is not site:
        if len(_CWE) >= 4:  # sites reloaded: drop the old ones
            _CWE.clear()
        entry = _CWE[id(site)] = (site, {})
    cache = entry[1]
    enc = rep._enc
    key = (
        ctx.local_system,
        rule.get("table", ""),
        rep.raw,
        enc.key,
    )
    hit = cache.get(key)
    if hit is None:
        if len(cache) >= _CWE_LIMIT:
            cache.clear()
        hit = cache[key] = (_cwe(rep, rule, ctx), _unknown_systems(rep, ctx))
    concept, unknown = hit
    if unknown:
        ctx.unknown_systems += 1
        for name in unknown:
            ctx.note_unmapped("coding_system", name)
    if concept is None:
        return None
    return {k: [dict(c) for c in v] if k == "coding" else v for k, v in concept.items()}


def _unknown_systems(rep: Repetition, ctx: Context) -> tuple[str, ...]:
    """CWE-3/CWE-6 names of coding systems huren does not know (their codes kept as sent, untranslated,
    under ``tables.unknown_code_system``)."""
    return tuple(name for _, _, name in unknown_systems_at(rep, ctx))


def unknown_systems_at(rep: Repetition, ctx: Context) -> list[tuple[int, str, str]]:
    """(component, code, name) of each CWE triplet of ``rep`` whose coding system name (CWE-3, CWE-6)
    huren does not know."""
    found = []
    for code_comp, system_comp in ((1, 3), (4, 6)):
        name = rep.comp(system_comp).strip()
        code = rep.comp(code_comp).strip()
        if name and code and known_coding_system(ctx.site, name, ctx.local_system) is None:
            found.append((system_comp, code, name))
    return found


def warn_unknown_systems(seg: Segment, field_no: int, rep: Repetition, ctx: Context,
                         repetition: int | None = None) -> None:
    """ERR W at ``seg``-``field_no`` (the system's component) for each code of ``rep`` sent under a coding
    system huren does not know: the sender learns its code was kept as sent, untranslated -- no LOINC, no
    recognition item (rv42b HIGH 1: it had been read as the hospital's own code of that spelling). One
    owner of the wording: the table rules (``engine.compile_rule``) and the item codes
    (``common.coded_item``, OBR-4 and OBX-3) call it."""
    for comp, code, name in unknown_systems_at(rep, ctx):
        ctx.warn(seg.error(
            f"{seg.name}-{field_no}: coding system {name!r} is not known (coding_systems.yaml, table 0396): "
            f"code {code!r} is kept as sent under it, untranslated (no LOINC, no recognition item)",
            field_no, comp, code=TABLE_VALUE_NOT_FOUND, repetition=repetition))


def _cwe(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    first = cwe_coding(rep, ctx, 0, rule.get("table", ""))
    alternate = cwe_coding(rep, ctx, 3)
    codings = [c for c in (first, alternate) if c and "code" in c]
    text = rep.comp(9).strip() or (first or {}).get("display") or (alternate or {}).get("display")
    if not codings and not text:
        return None
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = codings
    if text:
        concept["text"] = text
    return concept


def cwe_vocab(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """CWE whose code maps through a vocabulary table to a FHIR code system; the original is
    kept as a second coding when the rule asks (or when there is no mapping)."""
    original = cwe(rep, rule, ctx)
    if original is None:
        return None
    code = rep.comp(1).strip()
    mapped = vocabulary(ctx.site, rule["vocab"]).get(code) if code else None
    if mapped is None:
        if code:
            ctx.note_unmapped(rule["vocab"], code, rule.get("where", ""))
        return original
    coding: dict[str, Any] = {"system": rule["system"], "code": str(mapped)}
    if rep.comp(2):
        coding["display"] = rep.comp(2)
    concept: dict[str, Any] = {"coding": [coding]}
    if rule.get("keep_original"):
        concept["coding"].extend(original.get("coding", []))
    if original.get("text"):
        concept["text"] = original["text"]
    return concept


def cx(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """CX → Identifier: CX-1 value, CX-4 assigning authority (system when it is a URI/OID),
    CX-5 type (table 0203), CX-7/CX-8 period."""
    value = rep.comp(1).strip()
    if not value:
        return None
    ident: dict[str, Any] = {"value": value}
    namespace = rep.comp(4, 1)
    system = hd_system(namespace, rep.comp(4, 2), rep.comp(4, 3))
    if system:
        ident["system"] = system
    type_code = rep.comp(5).strip() or rule.get("identifier_type", "")
    if type_code:
        ident["type"] = {"coding": [{"system": V2_0203, "code": type_code}]}
    if namespace:
        ident["assigner"] = {"display": namespace.strip()}
    period = _period(rep, ctx, 7, 8)
    if period:
        ident["period"] = period
    return ident


def ei(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """EI → Identifier: EI-1 value, EI-2 namespace or EI-3 universal id as system."""
    value = rep.comp(1).strip()
    if not value:
        return None
    ident: dict[str, Any] = {"value": value}
    system = hd_system(rep.comp(2), rep.comp(3), rep.comp(4))
    if system:
        ident["system"] = system
    return ident


def hd_system(namespace: str, universal: str, universal_type: str) -> str | None:
    """The system an assigning authority (HD: CX-4, EI-2..4) names: its universal id by its type
    (``universal_system``), else its namespace id as ``urn:huren:id:<HD-1>``; none: None. The one
    rule of CX, EI and the sending application's names (``sender_names``)."""
    return universal_system(universal, universal_type) or (f"urn:huren:id:{urn_part(namespace)}" if namespace else None)


def hd_names(namespace: str, universal: str, universal_type: str) -> tuple[str, ...]:
    """Every system an HD (an EI-2..4 assigning authority, MSH-3 or MSH-4) names, each of its forms: the
    namespace id as ``urn:huren:id:<HD-1>`` and the universal id by its type (``universal_system``). HL7
    v2.5.1 2.A.33 HD: HD-1 is the local name, HD-2/HD-3 the universal one. ``hd_system`` picks one of them
    for an identifier's ``system``; an EI naming the sending application is found by either
    (``sender_names``). Whether two HDs are one application is not a shared form: ``same_hd`` (rv38i HIGH);
    an HD naming no form names nothing (``results._not_the_orders``)."""
    system = universal_system(universal, universal_type)
    local = f"urn:huren:id:{urn_part(namespace)}" if namespace else None
    return tuple(n for n in (local, system) if n)


def same_text(one: str, other: str) -> bool:
    """The one case rule of applications' names: two components of an HD naming an application (or two stored
    application codes) are one text case aside. HL7 v2.5.1 2.A.33 folds nothing and defines no case of its own:
    HD-1 is a value of a table the site defines (0300/0361, its syntax the site's), HD-2's syntax is its scheme's
    (an OID has no letters), HD-3 a code of table 0301. So which spellings of an MSH-3 are one application is the
    project's and the site's call, and the project's has been "case aside" since HL7's rule was written down --
    ``same_hd`` below (rv38i: ``RIS`` and ``ris`` are one filler), ``applications.as_sent`` and ``relay`` (ord40,
    acsn43c), the person checks since fix44 (``applications.states``: ``his`` is the declared ``HIS``, rv44c LOW
    4). A case rule that told ``his`` from ``HIS`` in one reader would still leave them one application to the
    other, and MSH-3 is a text any sender writes: folding case lets no sender pass for another it could not already
    name by sending ``HIS``. Here, below ``applications`` (which imports this module), so that the order history's
    HL7 rule and the person checks ask one function: fix44 had written it twice (fix44 LOW; forty-fifth round,
    reg45)."""
    return one.lower() == other.lower()


def same_hd(one: tuple[str, str, str], other: tuple[str, str, str], *, one_table: bool = False) -> bool:
    """Whether two HDs (namespace id, universal id, universal id type) name one application. HL7 v2.5.1
    2.A.33: HD-1 is a local name (from a user-defined table), HD-2/HD-3 the universal one, and both name one
    entity -- where both carry a universal id, it decides (two hospitals' RIS may both call themselves ``RIS``:
    review rv38i HIGH, where any shared form let another hospital's RIS recode the order); else their namespace
    ids, case aside. An HD with neither names nothing.

    ``one_table``: both HD-1s are names of one table -- two MSH-3s (the sending applications, table 0361) --
    so where both are sent they must agree as well: HD-2 is the *application's* universal id, and a site that
    puts the hospital's OID in every application's MSH-3 (``RIS^<OID>^ISO``, ``EMR^<OID>^ISO``) tells its
    applications apart by HD-1 alone (review rv39g LOW 5). An EI's assigning authority (EI-2, table 0363)
    against MSH-3 is not one table -- a lab numbering ``F^LAB^<OID>^ISO`` from MSH-3 ``LIS^<OID>^ISO`` may be
    one -- yet the order numbers' shortcut (``results._not_the_orders``) asks it too: it only *passes* a number
    as the sender's, and under that site's convention the OID names the hospital, so the OID alone let any of
    its applications recode another's order (review rv40c MED 1); what it does not pass the order's history
    judges (the lab's report stored ``F^LAB^<OID>^ISO``: its own). Nor does a universal id alone make the
    filler's first statement its assignment of the number (xo41 had it so, and the EMR ``EMR^<OID>^ISO``
    assigned the lab's ``F^LAB^<OID>^ISO``: review rv41d HIGH 3): a lab numbering under another HD-1 than its
    MSH-3's is a site's alias (``applications.forms``; forty-first round, xofix41). Case aside: ``same_text``."""
    mine, theirs = universal_system(one[1], one[2]), universal_system(other[1], other[2])
    if mine and theirs:
        return same_text(mine, theirs) and (not one_table or not (one[0] and other[0]) or same_text(one[0], other[0]))
    return bool(one[0]) and same_text(one[0], other[0])


def sender_names(ctx: Context) -> frozenset[str]:
    """The systems ``ei`` makes of an EI naming the sending application (MSH-3, HD): its namespace id
    (HD-1, as EI-2: ``urn:huren:id:<HD-1>``) and its universal id (HD-2/HD-3, as EI-3/EI-4: an OID or
    a URI). v2.5.1 2.A.24 EI: EI-2..4 are the assigning authority's HD, here the filler application
    itself -- the same filler as an SCH-2 sent without one (``builders._appointment_system``)."""
    msh = ctx.message.msh
    return frozenset(hd_names(msh.value(3).strip(), msh.value(3, comp=2).strip(), msh.value(3, comp=3).strip()))


def universal_system(universal: str, universal_type: str) -> str | None:
    """An HD's universal id (HD-2) as a system by its type (HD-3): an OID (ISO) as ``urn:oid:``, a URI
    (no white space) as itself; else None."""
    if universal and universal_type.upper() in ("ISO", "OID") and _OID.match(universal):
        return f"urn:oid:{universal}"
    if universal and universal_type.upper() in ("URI", "URL") and not any(c.isspace() for c in universal):
        return universal
    return None


def _period(rep: Repetition, ctx: Context, start: int, end: int, sub: bool = False) -> dict[str, str] | None:
    period: dict[str, str] = {}
    for key, comp in (("start", start), ("end", end)):
        text = rep.comp(comp).strip()
        if text:
            try:
                period[key] = to_fhir_datetime(text, ctx.tz)
            except ValueError:
                continue
    return period or None


def xpn(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """XPN → HumanName. Chinese names often arrive whole in XPN-1 (张三) with no given name; they
    are kept as ``text`` and ``family`` as sent (splitting a Chinese name is not safe)."""
    family = rep.comp(1, 1).strip()
    given = [g for g in (rep.comp(2).strip(), rep.comp(3).strip()) if g]
    if not family and not given:
        return None
    name: dict[str, Any] = {}
    use_code = rep.comp(7).strip()
    if use_code:
        use = vocabulary(ctx.site, "name_use").get(use_code)
        if use:
            name["use"] = use
        else:
            ctx.note_unmapped("name_use", use_code)
    if family:
        name["family"] = family
    if given:
        name["given"] = given
    prefix = rep.comp(5).strip()
    if prefix:
        name["prefix"] = [prefix]
    suffixes = [s for s in (rep.comp(4).strip(), rep.comp(6).strip(), rep.comp(14).strip()) if s]
    if suffixes:
        name["suffix"] = suffixes
    if ideographic(family) and not given:
        name["text"] = family
    elif ideographic(family + "".join(given)):
        name["text"] = family + "".join(given)
    period = _period(rep, ctx, 12, 13)
    if period:
        name["period"] = period
    return name


def xpn_family(rep: Repetition, rule: Rule, ctx: Context) -> str | None:
    return rep.comp(1, 1).strip() or None


def xad(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """XAD → Address (XAD-1 street, -2 other designation, -3 city, -4 province, -5 postal code,
    -6 country, -7 type, -9 county (区县), -12 period)."""
    line = [s for s in (rep.comp(1, 1).strip(), rep.comp(2).strip()) if s]
    city, state, postal, country = (rep.comp(i).strip() for i in (3, 4, 5, 6))
    district = rep.comp(9).strip()
    if not (line or city or state or postal or country or district):
        return None
    addr: dict[str, Any] = {}
    kind = rep.comp(7).strip()
    if kind:
        mapped = vocabulary(ctx.site, "address_use").get(kind)
        if mapped:
            addr.update(mapped)
        else:
            ctx.note_unmapped("address_use", kind)
    if line:
        addr["line"] = line
    if city:
        addr["city"] = city
    if district:
        addr["district"] = district
    if state:
        addr["state"] = state
    if postal:
        addr["postalCode"] = postal
    if country:
        addr["country"] = country
    period = _period(rep, ctx, 13, 14)
    if period:
        addr["period"] = period
    named_district = "" if district.isdigit() else district  # XAD-9 is often the GB/T 2260 code
    text = "".join(p for p in (state, city, named_district, *line) if p)
    if ideographic(text):
        addr["text"] = text  # Chinese addresses read largest-first
    return addr


# an extension the number already states: ``ext. 801``, ``x801``, ``转801``, ``分机801`` (review: 转 was written twice)
_EXT = re.compile(r"(?:ext\.?|x|转|分机)\s*\d+\s*$", re.IGNORECASE)


def _with_extension(number: str, rep: Repetition) -> str:
    """A number with its XTN-8 extension, written as the parts are (``... ext. 801``); an e-mail
    address, an empty number or one that already states an extension (``ext. 801``, ``x801``, ``转801``) is left as it is."""
    ext = rep.comp(8).strip()
    if not number or not ext or "@" in number or _EXT.search(number):
        return number  # (not "ends in its digits": 12345801 with extension 801 lost it -- review)
    return f"{number} ext. {ext}"


def xtn(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """XTN → ContactPoint: XTN-1 (old format) or XTN-12 unformatted / XTN-4 email / XTN-5..8."""
    use_code, equip = rep.comp(2).strip(), rep.comp(3).strip()
    email = rep.comp(4).strip()
    value = rep.comp(12).strip()
    country, area, local = rep.comp(5).strip(), rep.comp(6).strip(), rep.comp(7).strip()
    if not value and local:
        # the number from its parts only when it has its local number (XTN-7): a country or area
        # code beside XTN-1's whole number (``(025)88887777^PRN^PH^^^025``) replaced the number
        # with ``025`` (twentieth round)
        value = " ".join(p for p in (country, area, local) if p)
        if country:
            value = "+" + value
        value = _with_extension(value, rep)
    if not value and email:
        value = email
    if not value:
        # XTN-1 the whole number, XTN-8 its extension (a ward behind a switchboard): the extension
        # was dropped without a word, and the number reached was the switchboard's (twentieth round)
        value = _with_extension(rep.comp(1).strip(), rep)
    if not value:
        if country or area:
            raise ValueError(f"{(country + ' ' + area).strip()!r} is a country or area code with no number "
                             "(XTN-7); left out")
        return None
    point: dict[str, Any] = {}
    system = vocabulary(ctx.site, "telecom_system").get(equip) if equip else None
    if email and value == email:
        system = "email"
    point["system"] = system or ("email" if "@" in value else "phone")
    point["value"] = value
    use = vocabulary(ctx.site, "telecom_use").get(use_code) if use_code else None
    if use_code and use is None:
        ctx.note_unmapped("telecom_use", use_code)
    if equip == "CP":
        use = "mobile"
    # an explicit XTN-2 (or a CP's mobile) decides, as the HL7 v2-to-FHIR IG maps it; the field's
    # default (PID-13 home, PID-14 work) only when neither says anything
    use = use or rule.get("default_use")
    if use:
        point["use"] = use
    return point


def xcn(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """XCN → Reference to a Practitioner built from the person's id and name."""
    return practitioner(rep, ctx)


def ndl(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """NDL (OBR-32..35, a result interpreter, technician, transcriptionist: a CNN person written
    with subcomponents ``id&family&given``, then its period and place) → Reference to a
    Practitioner, the same one an XCN with that id and name gives; v2.3 feeds that write the person
    as components (``id^family^given``) are read as an XCN. The subcomponents are moved up still
    escaped, so a ``\\S\\`` inside a name stays text."""
    enc = rep._enc
    person = rep.raw.split(enc.component, 1)[0]
    if enc.subcomponent in person:
        rep = Repetition(person.replace(enc.subcomponent, enc.component), enc)
    return practitioner(rep, ctx)


def pl(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """PL → Location (IG "PL to Location"): point of care, room, bed, with the facility (PL-4),
    building (PL-7), floor (PL-8) and description (PL-9) → Reference with display."""
    return location(rep, ctx)


def nm_quantity(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """CQ (quantity^units) → Quantity."""
    text = rep.comp(1).strip()
    if not text:
        return None
    qty: dict[str, Any] = {"value": decimal(text)}
    unit = rep.comp(2).strip()
    if unit:
        qty["unit"] = unit
        ucum = ctx.site.ucum(ctx.code, unit)
        if ucum:
            qty["system"] = "http://unitsofmeasure.org"
            qty["code"] = ucum
    return qty


def nm_number(rep: Repetition, rule: Rule, ctx: Context) -> int | float | None:
    """NM (a component of) → JSON number (RXA-6 amount, FT1-10 quantity)."""
    text = _value(rep, rule)
    return decimal(text) if text else None


def unit(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """CWE units (code^text^system) → the unit part of a Quantity; UCUM when the sender says so
    or the site's unit map knows the spelling."""
    code, text, system = rep.comp(1).strip(), rep.comp(2).strip(), rep.comp(3).strip().upper()
    if not code and not text:
        return None
    out: dict[str, Any] = {"unit": text or code}
    ucum = code if code and system in ("UCUM", "ANS+") else ctx.site.ucum(ctx.code, code or text)
    if ucum:
        out["system"] = "http://unitsofmeasure.org"
        out["code"] = ucum
    return out


def money(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """CP/MO (amount&currency in component 1) → Money."""
    amount = rep.comp(1, 1).strip()
    if not amount:
        return None
    out: dict[str, Any] = {"value": decimal(amount)}
    currency = rep.comp(1, 2).strip().upper()
    if len(currency) == 3 and currency.isalpha():
        out["currency"] = currency
    return out


def credit_money(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """CP/MO of a credit line (FT1-6 ``CD``) → Money with a negative amount, how huren represents
    a credit (``engine.insurance.charges``): senders write a credit's amount either way, ``2300.50``
    (the transaction type gives the sign) or ``-2300.50``; both state the same reversal, so the
    digits are kept and the sign is the credit's. A positive one was counted as a second charge."""
    out = money(rep, rule, ctx)
    if out is not None and out["value"] > 0:  # the sender's digits, negated as text (precision kept)
        out["value"] = decimal("-" + rep.comp(1, 1).strip().lstrip("+"))
    return out


def display_ref(rep: Repetition, rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """CWE naming something huren keeps no resource for (a vaccine manufacturer, a scheduled
    piece of equipment) → a Reference by display, with the code as its identifier."""
    code, text, system_name = rep.comp(1).strip(), rep.comp(2).strip(), rep.comp(3).strip()
    if not code and not text:
        return None
    ref: dict[str, Any] = {"display": text or code}
    if code:
        ref["identifier"] = {"system": coding_system(ctx.site, system_name, ctx.local_system), "value": code}
    return ref


CONVERTERS: dict[str, Converter] = {
    "ST": st,
    "ST_CONCEPTS": st_concepts,
    "INT": integer,
    "YN": yes_no,
    "DT": dt,
    "DTM": dtm,
    "INSTANT": instant,
    "BIRTH_TIME": birth_time,
    "ID": code_id,
    "ID_CODING": id_coding,
    "ID_CONCEPT": id_concept,
    "CWE": cwe,
    "CWE_VOCAB": cwe_vocab,
    "CX": cx,
    "EI": ei,
    "XPN": xpn,
    "XPN_FAMILY": xpn_family,
    "XAD": xad,
    "XTN": xtn,
    "XCN": xcn,
    "NDL": ndl,
    "PL": pl,
    "NM_QUANTITY": nm_quantity,
    "NUMBER": nm_number,
    "UNIT": unit,
    "MONEY": money,
    "CREDIT_MONEY": credit_money,
    "DISPLAY_REF": display_ref,
}
