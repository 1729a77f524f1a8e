"""FHIR search parameters → a backend-neutral ``Query`` (plus paging, includes, summary).

Written once above the storage port: prefixes (eq ne gt lt ge le sa eb), modifiers (:exact
:contains :missing :not :text :identifier and :Type on references), ``_id``, ``_lastUpdated``,
``_count``/``_offset``, ``_sort``, ``_include``/``_revinclude``, ``_summary=count``,
``_elements``, ``_total`` and one-level chains (``subject:Patient.identifier=...``). Anything
else is a 400 OperationOutcome naming the parameter, never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from engine.bounds import parse_int
from engine.errors import BadRequest
from engine.identity.nationalid import valid_number
from engine.repository.indexing import date_range, normalise, parse_reference
from engine.repository.query import (
    Clause,
    Cond,
    DateCond,
    ExistsCond,
    IdCond,
    QuantityCond,
    Query,
    RefCond,
    StringCond,
    TokenCond,
    UriCond,
)
from engine.repository.searchparams import SearchParam, SearchParams

DEFAULT_COUNT = 50
MAX_COUNT = 1000
CHAIN_LIMIT = 1000
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
_PREFIX = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)(?=[0-9+\-.])")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
IGNORED = {"_format", "_pretty"}
_CONTROL = frozenset({"_count", "_offset", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total", "_type"})

# (target type, [(key, value)]) -> ids of matching target resources, for chained parameters
ChainResolver = Callable[[str, list[tuple[str, str]]], list[str]]


@dataclass
class ParsedSearch:
    query: Query
    count: int = DEFAULT_COUNT
    offset: int = 0
    includes: list[tuple[str, str, str | None]] = field(default_factory=list)  # (type, param, target)
    revincludes: list[tuple[str, str, str | None]] = field(default_factory=list)
    summary_count: bool = False
    elements: list[str] | None = None
    total: str = "accurate"  # accurate | none


def split_values(raw: str) -> list[str]:
    """Split on unescaped commas and undo the FHIR escapes ``\\, \\| \\$ \\\\``."""
    if "\\" not in raw:  # nothing escaped: the commas all split (the loop below cost ~0.3 us a character)
        return raw.split(",")
    out, cur, i = [], [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            cur.append(raw[i : i + 2])
            i += 2
            continue
        if ch == ",":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def escape_value(value: str) -> str:
    """A stored value as a search parameter's value: ``\\``, ``,``, ``|`` and ``$`` escaped (R4
    search.html#escaping), so an identifier holding a comma is one value, not two alternatives, and one
    holding a bar is not read as ``system|code``."""
    return _ESCAPED.sub(r"\\\1", value)


def token_value(system: str, value: str) -> str:
    """``system|value`` of a token search for an identifier as stored (each part escaped): what a
    caller inside huren searches for an identifier it holds, never the two joined raw."""
    return f"{escape_value(system)}|{escape_value(value)}"


_ESCAPED = re.compile(r"([\\,|$])")


def _split_pipe(value: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", value)
    return [_unescape(p) for p in parts]


def _unescape(value: str) -> str:
    return re.sub(r"\\([,|$\\])", r"\1", value) if "\\" in value else value


def _prefix(value: str) -> tuple[str, str]:
    m = _PREFIX.match(value)
    if not m:
        return "eq", value
    if m.group(1) == "ap":
        raise BadRequest("the 'ap' (approximately) prefix is not supported", code="not-supported")
    return m.group(1), value[2:]


class SearchParser:
    def __init__(self, params: SearchParams, base_url: str = "") -> None:
        self.params = params
        self.base_url = base_url.rstrip("/")
        # the identifier systems of national resident ID numbers (the site's ``national_id_system``, confined.yaml's
        # ``number_systems``; set by the engine, which reads the site, at start and on each ``reload_site``:
        # ``engine.number_systems``): a token value under one of them is read as ``nationalid`` reads a number
        # (``_as_number``)
        self.number_systems: frozenset[str] = frozenset()

    def parse(
        self,
        rtype: str | None,
        pairs: Sequence[tuple[str, str]],
        *,
        chain: ChainResolver | None = None,
        compartment: frozenset[str] | None = None,
    ) -> ParsedSearch:
        parsed = ParsedSearch(query=Query(type=rtype, compartment=compartment))
        q = parsed.query
        for key, raw in pairs:
            if key in IGNORED:
                continue
            if key.startswith("_") and key.split(":")[0] in _CONTROL:
                self._control(parsed, rtype, key, raw)
                continue
            if rtype is None:
                raise BadRequest(f"search parameter '{key}' needs a resource type", expression=[key])
            q.clauses.extend(self._clause(rtype, key, raw, chain))
        q.limit, q.offset = parsed.count, parsed.offset
        return parsed

    def unknown(self, rtype: str, pairs: Sequence[tuple[str, str]]) -> list[str]:
        """The keys of ``pairs`` whose parameter name ``rtype`` does not have on this server (the
        head of a chain counts, its inner part does not): what a search asked with ``Prefer:
        handling=lenient`` leaves out instead of answering 400. Values, modifiers and chains into
        other types are still checked as always."""
        out = []
        for key, _ in pairs:
            name = key.split(".", 1)[0].partition(":")[0]
            if key in IGNORED or name in _CONTROL or name == "_id":
                continue
            if self.params.get(rtype, name) is None:
                out.append(key)
        return out

    # -- control parameters ---------------------------------------------------------------------
    def _control(self, parsed: ParsedSearch, rtype: str | None, key: str, raw: str) -> None:
        name = key.split(":")[0]
        if name in ("_count", "_offset"):
            n = parse_int(raw, name)
            if name == "_count":
                parsed.count = min(n, MAX_COUNT)
            else:
                parsed.offset = n
        elif name == "_sort":
            for item in raw.split(","):
                desc = item.startswith("-")
                param = item[1:] if desc else item
                if param not in ("_id", "_lastUpdated") and (rtype is None or self.params.get(rtype, param) is None):
                    raise BadRequest(f"cannot sort by unknown parameter '{param}'", expression=["_sort"])
                parsed.query.sort.append((self.params.stored_as(rtype, param) if rtype else param, desc))
        elif name in ("_include", "_revinclude"):
            parts = raw.split(":")
            if len(parts) not in (2, 3):
                raise BadRequest(f"{name} must be Type:parameter[:TargetType], got '{raw}'", expression=[name])
            src, param = parts[0], parts[1]
            target = parts[2] if len(parts) == 3 else None
            # an include reads the matches' own references (any parameter); a revinclude, index rows
            definition = self.params.definition(src, param) if name == "_include" else self.params.get(src, param)
            if definition is None or definition.type != "reference":
                raise BadRequest(f"{name}: '{src}:{param}' is not a reference search parameter", expression=[name])
            if name == "_include" and rtype is not None and src != rtype:
                raise BadRequest(f"_include must start with the searched type {rtype}", expression=[name])
            if name == "_include":
                parsed.includes.append((src, param, target))
            else:  # read from index rows: those of the parameter that holds them
                parsed.revincludes.append((src, self.params.stored_as(src, param), target))
        elif name == "_summary":
            if raw == "count":
                parsed.summary_count = True
            elif raw != "false":
                raise BadRequest(f"_summary={raw} is not supported (use count or false)", code="not-supported",
                                 expression=["_summary"])
        elif name == "_elements":
            parsed.elements = [e.strip() for e in raw.split(",") if e.strip()]
        elif name == "_total":
            if raw not in ("none", "estimate", "accurate"):
                raise BadRequest("_total must be none, estimate or accurate", expression=["_total"])
            parsed.total = "none" if raw == "none" else "accurate"
        elif name == "_type":
            if rtype is not None:
                raise BadRequest("_type is only allowed in compartment-wide searches", expression=["_type"])
            parsed.query.types = tuple(t for t in raw.split(",") if t)

    # -- one clause per parameter occurrence --------------------------------------------------------
    def _clause(self, rtype: str, key: str, raw: str, chain: ChainResolver | None) -> list[Clause]:
        """The clauses (all must hold) of one parameter occurrence: one, or for the ``ne`` prefix two."""
        if "." in key:
            return [self._chain(rtype, key, raw, chain)]
        name, _, modifier = key.partition(":")
        if name == "_id":
            if modifier:
                raise BadRequest(f"modifier ':{modifier}' is not supported on _id", expression=[key])
            return [Clause((IdCond(tuple(_unescape(v) for v in split_values(raw))),))]
        param = self.params.get(rtype, name)
        if param is None:
            raise BadRequest(f"unknown search parameter '{name}' for {rtype}", expression=[key])
        if modifier == "missing":
            if raw not in ("true", "false"):
                raise BadRequest(f"{key} must be true or false", expression=[key])
            return [Clause((ExistsCond(self.params.stored_as(rtype, name), param.type),), negate=raw == "true")]
        values = split_values(raw)
        if any(v == "" for v in values):
            raise BadRequest(f"empty value for search parameter '{key}'", expression=[key])
        negate = False
        if param.type == "token" and modifier == "not":
            negate, modifier = True, ""
        alts: list[Cond] = []
        prefixes = set()
        for value in values:
            cond, prefix = self._cond(rtype, param, key, modifier, value)
            if type(cond) is TokenCond and cond.code is not None and len(cond.code) >= 18 and not cond.code.isdigit():
                alts.extend(self._as_number(cond))  # (asked here: a call for every value cost +1.5 k instructions)
            else:
                alts.append(cond)
            prefixes.add(prefix)
        if "ne" in prefixes:
            if len(values) > 1:
                raise BadRequest(f"{key}: the ne prefix cannot be combined with other values", expression=[key])
            if name != "_lastUpdated":  # every resource has one
                # R4's ``ne`` compares the resource's value with the searched one: a resource without
                # a value is not "not equal" (``birthdate=ne1990`` is not "no birth date recorded";
                # only the token ``:not`` modifier takes resources without the value in)
                return [Clause(tuple(alts), negate=True),
                        Clause((ExistsCond(self.params.stored_as(rtype, name), param.type),))]
            negate = True
        return [Clause(tuple(alts), negate=negate)]

    def _cond(self, rtype: str, param: SearchParam, key: str, modifier: str, value: str) -> tuple[Cond, str]:
        kind = param.type
        allowed = {"token": {"", "text"}, "reference": {"", "identifier"}, "string": {"", "exact", "contains"},
                   "date": {""}, "quantity": {""}, "uri": {""}}[kind]
        if kind == "reference" and modifier and modifier[0].isupper():
            allowed = {modifier}
        if modifier not in allowed:
            raise BadRequest(f"modifier ':{modifier}' is not supported on {kind} parameter '{param.code}'",
                             expression=[key], code="not-supported")
        code = self.params.stored_as(rtype, param.code)  # a twin's rows are its first's
        if kind == "token":
            if modifier == "text":
                if not self.params.text_enabled(rtype, param.code):
                    raise BadRequest(f"the :text modifier is not enabled for {rtype}.{param.code} on this server "
                                     "(the deployment's search parameter list)", expression=[key],
                                     code="not-supported")
                return StringCond(code + ":text", normalise(_unescape(value)), "start"), "eq"
            cond = self._token(code, value)
            if cond.code is None and not self.params.system_enabled(rtype, param.code):
                raise BadRequest(f"'{value}': searching {rtype}.{param.code} by system alone (any code) is not enabled "
                                 "on this server (the deployment's search parameter list)", expression=[key],
                                 code="not-supported")
            return cond, "eq"
        if kind == "reference":
            if modifier == "identifier":
                cond = self._token(code + ":identifier", value)
                if cond.code is None:
                    raise BadRequest(f"'{value}': {key} needs a value (searching by system alone is not supported)",
                                     expression=[key], code="not-supported")
                return cond, "eq"
            return self._reference(code, modifier or None, _unescape(value), key), "eq"
        if kind == "string":
            text = _unescape(value)
            if modifier == "exact":
                return StringCond(code, text, "exact"), "eq"
            return StringCond(code, normalise(text), "contains" if modifier == "contains" else "start"), "eq"
        if kind == "date":
            prefix, text = _prefix(value)
            try:
                lo, hi = date_range(text)
            except ValueError:
                raise BadRequest(f"'{value}' is not a valid date for '{key}'", expression=[key]) from None
            return DateCond(code, "eq" if prefix == "ne" else prefix, lo, hi), prefix
        if kind == "quantity":
            prefix, text = _prefix(value)
            parts = _split_pipe(text)
            if len(parts) not in (1, 3):
                raise BadRequest(f"'{value}' is not number|system|code for '{key}'", expression=[key])
            try:
                number = Decimal(parts[0])
            except InvalidOperation:
                raise BadRequest(f"'{parts[0]}' is not a number for '{key}'", expression=[key]) from None
            if not number.is_finite():  # Decimal reads NaN and Infinity; FHIR's decimal has neither
                raise BadRequest(f"'{parts[0]}' is not a number for '{key}'", expression=[key])
            system = parts[1] or None if len(parts) == 3 else None
            unit = parts[2] or None if len(parts) == 3 else None
            eq = prefix in ("eq", "ne")
            exponent = number.as_tuple().exponent
            half = Decimal(5) * Decimal(10) ** (int(exponent) - 1) if eq and isinstance(exponent, int) else Decimal(0)
            return QuantityCond(code, "eq" if eq else prefix, float(number - half), float(number + half), system,
                                unit), prefix
        return UriCond(code, _unescape(value)), "eq"

    def _as_number(self, cond: TokenCond) -> tuple[TokenCond, ...]:
        """A token condition whose value is a valid resident ID number, under a national ID system
        (``number_systems``) or under none (``value``, ``|value``), and whose check character is an X or that is
        written otherwise than canonical (spaces): that condition and the same for each form of the number --
        canonical (``nationalid.valid_number``, the one reading of a number: GB 11643 reads ``x`` as ``X``) and
        with a lower-case ``x``. The HL7 path stores a number canonical (``common._check_national_id``), so
        ``Patient?identifier=urn:huren:id:NNCHN|...x`` found nobody (rv40a LOW 6); a FHIR client's write keeps the
        value it sent, ``...x`` included, and the canonical ``...X`` finds that one too.

        Every form of a token search passes here -- ``:not``, a reference's ``:identifier``, a chain's inner search;
        ``:missing`` has no value. Another system's identifier is its own (its ``x`` not read so). Asked by
        ``_clause`` of a value of 18 characters or more, not all digits: a number whose check character is a digit,
        written canonical (ten in eleven of them), and a short code never come here."""
        if cond.system and cond.system not in self.number_systems:
            return (cond,)
        number = valid_number(cond.code)
        if number is None:
            return (cond,)
        forms = dict.fromkeys((number, number[:17] + "x" if number[17] == "X" else number))
        return (cond, *(TokenCond(cond.param, cond.system, form) for form in forms if form != cond.code))

    @staticmethod
    def _token(code: str, value: str) -> TokenCond:
        parts = _split_pipe(value)
        if len(parts) == 1:
            return TokenCond(code, None, parts[0])
        if len(parts) != 2:
            raise BadRequest(f"'{value}' is not a token (code, system|code, |code or system|)", expression=[code])
        system, c = parts
        if not system and not c:
            raise BadRequest(f"'{value}' names neither a system nor a code", expression=[code])
        return TokenCond(code, system, c or None)

    def _reference(self, code: str, rtype: str | None, value: str, key: str) -> RefCond:
        if "/" not in value:
            if not _ID.match(value):
                raise BadRequest(f"'{value}' is not a resource id for '{key}'", expression=[key])
            return RefCond(code, rtype, value)
        parsed = parse_reference(value, self.base_url)
        if parsed is None:
            return RefCond(code, "", value)
        if rtype and parsed[0] != rtype:
            raise BadRequest(f"'{value}' does not point to a {rtype}", expression=[key])
        return RefCond(code, parsed[0], parsed[1])

    def _chain(self, rtype: str, key: str, raw: str, chain: ChainResolver | None) -> Clause:
        head, inner = key.split(".", 1)
        name, _, target = head.partition(":")
        param = self.params.get(rtype, name)
        if param is None or param.type != "reference":
            raise BadRequest(f"'{name}' is not a reference parameter of {rtype}; cannot chain", expression=[key])
        if "." in inner.split(":")[0]:
            raise BadRequest("chains are supported one level deep only", expression=[key], code="not-supported")
        targets = [target] if target else list(param.target)
        if not targets:
            raise BadRequest(f"say which type '{name}' points to, e.g. {name}:Patient.{inner}", expression=[key])
        if chain is None:
            raise BadRequest("chained parameters are not available here", expression=[key])
        alts: list[Cond] = []
        for t in targets:
            inner_name = inner.split(":")[0]
            if inner_name != "_id" and self.params.get(t, inner_name) is None:
                if target:
                    raise BadRequest(f"unknown search parameter '{inner_name}' for {t}", expression=[key])
                continue
            ids = chain(t, [(inner, raw)])
            if len(ids) > CHAIN_LIMIT:
                raise BadRequest(f"'{key}' matches more than {CHAIN_LIMIT} {t} resources; narrow it", expression=[key])
            alts.extend(RefCond(self.params.stored_as(rtype, name), t, i) for i in ids)
        return Clause(tuple(alts))
