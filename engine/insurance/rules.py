"""The settlement rules (``insurance/settlement.yaml``) as typed, exact values.

Every figure is a ``decimal.Decimal`` built from the text the bureau wrote (a YAML number goes
through ``str`` first, so ``0.6`` is 0.6, not the binary float nearest to it). Loading checks the
file with the site-file reader (schema errors name file, line and field) and then the rules a
schema cannot say: tiers in increasing order, shares between 0 and 1, and every tier's share
present. The fund's share of the lowest overspend tier has no default on purpose: a missing share
stops the settlement with an error naming the file and the field, instead of a guessed figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mappings.site import DEFAULTS_DIR
from mappings.sitefiles import SiteError, YamlDocument, check, find_file, locate, read_yaml

FILE = "insurance/settlement.yaml"
BASES = ("fund_share", "amount")

_NUMBER: dict[str, Any] = {"type": ["number", "string"]}
_SHARE_TIERS = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "object", "additionalProperties": False,
              "properties": {"up_to": _NUMBER, "fund_pays": _NUMBER, "community_keeps": _NUMBER}},
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["currency", "insurance_types", "regions"],
    "additionalProperties": False,
    "properties": {
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "insurance_types": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
        "coverage_types": {"type": "object", "additionalProperties": {"type": "string"}},
        "regions": {"type": "object", "additionalProperties": {
            "type": "object",
            "required": ["years"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "years": {"type": "object", "propertyNames": {"pattern": "^[0-9]{4}$"}, "additionalProperties": {
                    "type": "object",
                    "required": ["budgets", "prepayment", "overspend", "surplus", "primary_care"],
                    "additionalProperties": False,
                    "properties": {
                        "basis": {"enum": list(BASES)},
                        "budgets": {"type": "object", "minProperties": 1, "additionalProperties": {
                            "type": "object", "minProperties": 1, "additionalProperties": _NUMBER}},
                        "prepayment": {"type": "object", "required": ["ceiling", "monthly"],
                                       "additionalProperties": False,
                                       "properties": {"ceiling": _NUMBER, "monthly": _NUMBER,
                                                      "months": {"type": "integer", "minimum": 0, "maximum": 12}}},
                        "overspend": _SHARE_TIERS,
                        "surplus": _SHARE_TIERS,
                        "primary_care": {"type": "object", "required": ["min_share"], "additionalProperties": False,
                                         "properties": {"min_share": _NUMBER,
                                                        "institutions": {"type": "array", "items": {"type": "string"}},
                                                        "grades": {"type": "array", "items": {"type": "string"}}}},
                    },
                }},
            },
        }},
    },
}


@dataclass(frozen=True)
class Tier:
    """One segment of an over- or underspend: ``up_to`` (fraction of the budget, ``None`` for the
    open last segment) and the share of the segment that the tier assigns."""

    up_to: Decimal | None
    share: Decimal


@dataclass(frozen=True)
class Prepayment:
    ceiling: Decimal  # the most prepaid in a year, as a fraction of the budget
    monthly: Decimal  # each month's prepayment, as a fraction of the budget
    months: int = 12


@dataclass(frozen=True)
class PrimaryCare:
    min_share: Decimal
    institutions: frozenset[str] = frozenset()
    grades: frozenset[str] = frozenset()

    def is_primary(self, code: str, grade: str | None) -> bool:
        return code in self.institutions or (grade is not None and grade in self.grades)


@dataclass(frozen=True)
class YearRules:
    region: str
    year: int
    basis: str
    budgets: Mapping[str, Mapping[str, Decimal]]  # community -> insurance type -> budget
    prepayment: Prepayment
    overspend: tuple[Tier, ...]  # share = what the fund pays of the segment
    surplus: tuple[Tier, ...]  # share = what the community keeps of the segment
    primary_care: PrimaryCare


@dataclass(frozen=True)
class SettlementRules:
    path: str
    currency: str
    insurance_types: Mapping[str, str]
    regions: Mapping[str, Mapping[int, YearRules]]
    region_names: Mapping[str, str]
    coverage_types: Mapping[str, str] = field(default_factory=dict)  # Coverage.type code -> insurance type

    def for_year(self, year: int, community: str | None = None) -> list[YearRules]:
        """Every region's rules for ``year`` (only those budgeting ``community`` when given)."""
        out = [years[year] for years in self.regions.values() if year in years]
        if community is not None:
            out = [r for r in out if community in r.budgets]
        return out


def load(site_dir: Path | str | None) -> SettlementRules:
    """The rules in force: ``HUREN_SITE/insurance/settlement.yaml`` if present, else the shipped file."""
    folders = [DEFAULTS_DIR] + ([Path(site_dir)] if site_dir is not None else [])
    return load_file(find_file(FILE, folders))


def load_file(path: Path) -> SettlementRules:
    doc = read_yaml(path)
    data = check(doc, SCHEMA)
    where = _Where(doc)
    regions: dict[str, dict[int, YearRules]] = {}
    names: dict[str, str] = {}
    for region, rdata in data["regions"].items():
        names[region] = rdata.get("name", region)
        years: dict[int, YearRules] = {}
        for year_text, y in rdata["years"].items():
            base = ["regions", region, "years", str(year_text)]
            budgets: dict[str, dict[str, Decimal]] = {}
            for community, per_type in y["budgets"].items():
                budgets[community] = {}
                for itype, amount in per_type.items():
                    at = [*base, "budgets", community, itype]
                    if itype not in data["insurance_types"]:
                        raise where.error(at, f"unknown insurance type {itype!r} (insurance_types lists "
                                              f"{', '.join(data['insurance_types'])})")
                    budgets[community][itype] = where.money(amount, at, positive=True)
            pre = y["prepayment"]
            prepayment = Prepayment(where.share(pre["ceiling"], [*base, "prepayment", "ceiling"]),
                                    where.share(pre["monthly"], [*base, "prepayment", "monthly"]),
                                    int(pre.get("months", 12)))
            pc = y["primary_care"]
            primary = PrimaryCare(where.share(pc["min_share"], [*base, "primary_care", "min_share"]),
                                  frozenset(map(str, pc.get("institutions") or ())),
                                  frozenset(map(str, pc.get("grades") or ())))
            years[int(year_text)] = YearRules(
                region=region, year=int(year_text), basis=y.get("basis", "fund_share"), budgets=budgets,
                prepayment=prepayment,
                overspend=where.tiers(y["overspend"], [*base, "overspend"], "fund_pays"),
                surplus=where.tiers(y["surplus"], [*base, "surplus"], "community_keeps"),
                primary_care=primary)
        regions[region] = years
    _check_one_region_per_community(regions, where)
    coverage = {str(code): str(itype) for code, itype in (data.get("coverage_types") or {}).items()}
    for code, itype in coverage.items():
        if itype not in data["insurance_types"]:
            raise where.error(["coverage_types", code], f"unknown insurance type {itype!r} (insurance_types lists "
                                                         f"{', '.join(data['insurance_types'])})")
    return SettlementRules(str(path), data["currency"], dict(data["insurance_types"]), regions, names, coverage)


def _check_one_region_per_community(regions: Mapping[str, Mapping[int, YearRules]], where: _Where) -> None:
    seen: dict[tuple[str, int], str] = {}
    for region, years in regions.items():
        for year, rules in years.items():
            for community in rules.budgets:
                other = seen.setdefault((community, year), region)
                if other != region:
                    raise where.error(["regions", region, "years", str(year), "budgets", community],
                                      f"community {community!r} is already budgeted for {year} in region {other!r}")


class _Where:
    """Turns a value at a YAML path into an exact number, or a ``SiteError`` pointing at it."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc

    def error(self, at: Sequence[Any], problem: str) -> SiteError:
        return locate(self.doc, list(at), problem)

    def number(self, value: Any, at: Sequence[Any]) -> Decimal:
        if isinstance(value, bool):
            raise self.error(at, f"{value!r} is not a number")
        try:
            out = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.error(at, f"{value!r} is not a number") from None
        if not out.is_finite():
            raise self.error(at, f"{value!r} is not a finite number")
        return out

    def money(self, value: Any, at: Sequence[Any], *, positive: bool = False) -> Decimal:
        out = self.number(value, at)
        if out.as_tuple().exponent < -2:  # type: ignore[operator]
            raise self.error(at, f"{value!r} has more than two decimal places (money is in yuan, to the fen)")
        if positive and out <= 0:
            raise self.error(at, f"{value!r}: a budget must be more than 0")
        return out

    def share(self, value: Any, at: Sequence[Any]) -> Decimal:
        out = self.number(value, at)
        if not Decimal(0) <= out <= Decimal(1):
            raise self.error(at, f"{value!r} is not a share between 0 and 1")
        return out

    def tiers(self, raw: Sequence[Mapping[str, Any]], at: Sequence[Any], share_key: str) -> tuple[Tier, ...]:
        out: list[Tier] = []
        last = Decimal(0)
        for i, t in enumerate(raw):
            here = [*at, i]
            if share_key not in t:
                raise self.error([*here, share_key],
                                 f"required: the share of this tier ({_segment(last, t.get('up_to'))}) has no "
                                 f"default; set {share_key} (a fraction between 0 and 1)")
            other = "community_keeps" if share_key == "fund_pays" else "fund_pays"
            if other in t:
                raise self.error([*here, other], f"{other} belongs to the other list; this list's tiers take {share_key}")
            up_to = t.get("up_to")
            is_last = i == len(raw) - 1
            if up_to is None and not is_last:
                raise self.error([*here, "up_to"], "required: only the last tier is open-ended")
            if up_to is not None and is_last:
                raise self.error([*here, "up_to"], "the last tier is open-ended (no up_to): it takes all the rest")
            bound = self.number(up_to, [*here, "up_to"]) if up_to is not None else None
            if bound is not None and bound <= last:
                raise self.error([*here, "up_to"], f"{up_to!r} must be above the previous tier's {last}")
            out.append(Tier(bound, self.share(t[share_key], [*here, share_key])))
            last = bound if bound is not None else last
        return tuple(out)


def _segment(low: Decimal, up_to: Any) -> str:
    low_pct = f"{(low * 100).normalize():f} %"
    return f"from {low_pct} up to {(Decimal(str(up_to)) * 100).normalize():f} %" if up_to is not None else f"above {low_pct}"

