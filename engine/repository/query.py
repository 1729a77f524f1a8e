"""A parsed search, the hand-off between FHIR search semantics and a storage backend.

``engine.repository.search`` turns ``?code=...&subject=...`` into a ``Query``; a backend
translates it (SQL for SQLite, a filter document for MongoDB). A ``Query`` is a conjunction of
``Clause``s; a clause is a disjunction of conditions (the comma in ``code=a,b``), optionally
negated (``:not``, ``:missing=true``, the ``ne`` prefix).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TokenCond:
    param: str
    system: str | None  # None: any system; "": no system
    code: str | None  # None: any code (``system|``)


@dataclass(frozen=True)
class RefCond:
    param: str
    rtype: str | None  # None: any type (bare id)
    rid: str  # id, or the full URL / canonical when rtype == ""


@dataclass(frozen=True)
class DateCond:
    """Stored range ``[lo, hi)`` compared with the search range by ``prefix`` (eq gt lt ge le sa eb)."""

    param: str
    prefix: str
    lo: float
    hi: float


# A date prefix as bounds on the stored range [lo, hi) against the search range [L, H), in the
# FHIR R4 reading that every point in time a value covers is a candidate (search.html, "prefix"):
# ``le`` matches when the target has any instant before the end of the searched value, so a
# Period that starts on the searched day (or is open at the start) is "le" that day; ``ge`` when
# it has any instant from the start of the searched value on, so a Period ending that day or open
# at the end is "ge" it. ``eq`` is containment, ``gt``/``lt`` overlap of the range strictly
# above/below, ``sa``/``eb`` lie wholly after/before. Each is a conjunction of comparisons on one
# indexed column (``eq`` bounds ``lo`` on both sides so it is one range scan), never an OR.
_DATE_BOUNDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "eq": (("lo", ">=", "L"), ("lo", "<", "H"), ("hi", "<=", "H")),
    "gt": (("hi", ">", "H"),),
    "lt": (("lo", "<", "L"),),
    "ge": (("hi", ">", "L"),),
    "le": (("lo", "<", "H"),),
    "sa": (("lo", ">=", "H"),),
    "eb": (("hi", "<=", "L"),),
}


def date_bounds(cond: DateCond) -> tuple[tuple[str, str, float], ...]:
    """``(column, operator, value)`` comparisons on the stored ``lo``/``hi`` that ``cond`` means;
    the one reading of the date prefixes, shared by every backend."""
    ends = {"L": cond.lo, "H": cond.hi}
    return tuple((col, op, ends[end]) for col, op, end in _DATE_BOUNDS[cond.prefix])


@dataclass(frozen=True)
class StringCond:
    param: str
    value: str  # normalised unless mode == "exact"
    mode: str  # start | contains | exact
    # the part parameters whose rows hold some of ``param``'s values (``widen``, from
    # ``SearchParams.folded``): a row of any of them that matches answers the condition
    parts: tuple[str, ...] = ()

    @property
    def params(self) -> tuple[str, ...]:
        return (self.param, *self.parts)


@dataclass(frozen=True)
class QuantityCond:
    param: str
    prefix: str
    lo: float  # the implicit range of the search value (eq), or the value itself (lo == hi)
    hi: float
    system: str | None
    code: str | None


@dataclass(frozen=True)
class UriCond:
    param: str
    uri: str


@dataclass(frozen=True)
class IdCond:
    ids: tuple[str, ...]


@dataclass(frozen=True)
class ExistsCond:
    """The resource has at least one index row for ``param`` (of index ``kind``)."""

    param: str
    kind: str  # token | reference | date | string | quantity | uri


Cond = TokenCond | RefCond | DateCond | StringCond | QuantityCond | UriCond | IdCond | ExistsCond


@dataclass(frozen=True)
class Clause:
    alternatives: tuple[Cond, ...]
    negate: bool = False


@dataclass
class Query:
    type: str | None  # None: any type (compartment-wide, $everything)
    clauses: list[Clause] = field(default_factory=list)
    compartment: frozenset[str] | None = None  # restrict to these Patients' compartments
    types: tuple[str, ...] | None = None  # with type None: only these types
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (param, descending)
    offset: int = 0
    limit: int | None = None


_NO_FOLDS: Mapping[str, tuple[str, ...]] = {}


def widen(clause: Clause, narrowed: Mapping[str, tuple[str, str]],
          folded: Mapping[str, tuple[str, ...]] = _NO_FOLDS) -> tuple[Cond, ...]:
    """The alternatives of ``clause`` as stored: a reference parameter narrowed to one type
    (``SearchParams.narrowed``: ``patient`` is ``subject`` of type Patient) keeps the values of
    that type under the wider parameter, and only its other values (absolute URLs, say) under its
    own name; so ``patient=123`` reads both, ``patient=Patient/123`` only the wider one. A string
    parameter's values that a part of it states (``SearchParams.folded``: ``family`` of ``name``)
    are that part's rows, so ``name=王`` reads its own rows and its parts'."""
    if not narrowed and not folded:
        return clause.alternatives
    out: list[Cond] = []
    for cond in clause.alternatives:
        if isinstance(cond, StringCond) and cond.param in folded:
            out.append(StringCond(cond.param, cond.value, cond.mode, folded[cond.param]))
        elif isinstance(cond, RefCond) and cond.param in narrowed:
            base, target = narrowed[cond.param]
            if cond.rtype is None or cond.rtype == target:
                out.append(RefCond(base, target, cond.rid))
            if cond.rtype != target:
                out.append(cond)
        else:
            out.append(cond)
    return tuple(out)


# Order in which clauses drive a query: the most selective index first.
def selectivity(clause: Clause) -> int:
    if clause.negate or not clause.alternatives:
        return 99
    cond = clause.alternatives[0]
    if isinstance(cond, IdCond):
        return 0
    if isinstance(cond, TokenCond) and "identifier" in cond.param and cond.code is not None:
        return 1
    if isinstance(cond, RefCond):
        # a reference to a Patient (``subject``, ``patient``) matches all of a patient's
        # resources of the type, mostly more than any other reference does (a report's
        # ``result``, a specimen, an encounter): the other one drives (storefix28: "subject and
        # one bare result id" read 300 rows of a patient to keep one)
        return 3 if cond.rtype == "Patient" or cond.param in ("patient", "subject") else 2
    if isinstance(cond, TokenCond) and cond.code is not None:
        return 4
    if isinstance(cond, (StringCond, UriCond)):
        return 5
    if isinstance(cond, QuantityCond):
        return 6
    if isinstance(cond, DateCond):
        return 7
    return 8
