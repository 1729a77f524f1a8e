"""The recognition rules as typed, validated data: items, code maps, QC history, scopes, prices, reasons.

Loaded from ``mappings/recognition/`` overlaid by the site folder (``HUREN_SITE``; same file names
win), validated with jsonschema and then cross-checked (every item a map names exists, every
scope an item or a QC entry names exists...). A ``Rules`` object is immutable: hot reload builds
a new one and swaps it in, so a request always sees one consistent set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from engine.recognition.sitefiles import RulesError, find_file, locate, read_yaml, validate

log = logging.getLogger("huren.recognition")

SHIPPED = Path(__file__).resolve().parents[2] / "mappings" / "recognition"
FILES = ("items.yaml", "item_codes.yaml", "qc.yaml", "scopes.yaml", "prices.yaml", "reasons.yaml")
COMMUNITY = "community"


@dataclass(frozen=True)
class RecognitionItem:
    code: str
    name: str
    category: str  # 检验 | 检查
    window_days: int
    scope: tuple[str, ...] = (COMMUNITY,)
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Institution:
    """What recognition needs to know of a member institution (from the site's institutions.yaml)."""

    code: str
    name: str = ""
    community: str | None = None
    qc_passed: frozenset[str] | None = None  # None: nothing; frozenset({"all"}) or item codes
    qc_until: date | None = None
    timezone: str = "Asia/Shanghai"  # for result and order dates written without an offset


@dataclass(frozen=True)
class QcRecord:
    institution: str
    item: str  # item code or "all"
    passed: bool
    start: date
    until: date
    hr: tuple[str, ...] = ()
    source: str = ""

    def covers(self, item: str, on: date) -> bool:
        return self.item in ("all", item) and self.start <= on <= self.until


@dataclass(frozen=True)
class Scope:
    code: str
    name: str
    all: bool = False
    communities: frozenset[str] = frozenset()
    institutions: frozenset[str] = frozenset()

    def covers(self, institution: Institution | None, code: str) -> bool:
        if self.all:
            return True
        if code in self.institutions:
            return True
        return institution is not None and institution.community in self.communities


@dataclass(frozen=True)
class ReasonCode:
    code: str
    display: str
    effect: str  # justified | no_flag
    text_required: bool = False


@dataclass(frozen=True)
class ImagingRule:
    modality: str
    body_sites: frozenset[str]
    item: str


@dataclass(frozen=True)
class CodeMaps:
    item_system: str = "urn:huren:recognition-item"
    local_prefix: str = "urn:huren:code:"
    loinc_system: str = "http://loinc.org"
    price_system: str = "urn:huren:price-code"
    modality_system: str = "http://dicom.nema.org/resources/ontology/DCM"
    loinc: Mapping[str, str] = field(default_factory=dict)
    price: Mapping[str, str] = field(default_factory=dict)
    price_modality: Mapping[str, str] = field(default_factory=dict)
    modality_aliases: Mapping[str, str] = field(default_factory=dict)
    imaging: tuple[ImagingRule, ...] = ()
    local: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Rules:
    items: Mapping[str, RecognitionItem]
    codes: CodeMaps
    qc: tuple[QcRecord, ...]
    scopes: Mapping[str, Scope]
    currency: str
    prices: Mapping[str, float]
    institution_prices: Mapping[str, Mapping[str, float]]
    reason_system: str
    reasons: Mapping[str, ReasonCode]
    institutions: Mapping[str, Institution]
    sources: tuple[str, ...] = ()

    # -- questions the decision asks ------------------------------------------------------
    def qc_passed(self, institution: str, item: str, on: date) -> bool:
        """Had ``institution`` passed quality control for ``item`` on date ``on``?

        A failed assessment (qc.yaml ``passed: false``) covering the date wins; otherwise either a
        passed assessment covering the date or the institution's own ``qc`` (institutions.yaml,
        valid up to ``until``) is enough.
        """
        records = [r for r in self._qc_by_institution().get(institution, ()) if r.covers(item, on)]
        if any(not r.passed for r in records):
            return False
        if any(r.passed for r in records):
            return True
        inst = self.institutions.get(institution)
        if inst is None or not inst.qc_passed:
            return False
        if "all" not in inst.qc_passed and item not in inst.qc_passed:
            return False
        return inst.qc_until is None or on <= inst.qc_until

    def hr_scopes(self, institution: str, item: str, on: date) -> tuple[str, ...]:
        """HR scopes the institution's passed QC for the item gives its results on that date."""
        out: list[str] = []
        for r in self._qc_by_institution().get(institution, ()):
            if r.passed and r.covers(item, on):
                out.extend(s for s in r.hr if s not in out)
        return tuple(out)

    def scope_covers(self, item: RecognitionItem, issuer: str, receiver: str, on: date) -> bool:
        """Does recognition of ``item`` reach from ``issuer``'s result (dated ``on``) to ``receiver``?

        Inside one medical community when the item's scope includes ``community``; beyond it when
        one of the item's scopes, or an HR scope the issuer holds for the item on that date,
        covers both institutions.
        """
        a, b = self.institutions.get(issuer), self.institutions.get(receiver)
        if issuer == receiver:
            return True
        if COMMUNITY in item.scope and a and b and a.community and a.community == b.community:
            return True
        for code in (*[s for s in item.scope if s != COMMUNITY], *self.hr_scopes(issuer, item.code, on)):
            scope = self.scopes.get(code)
            if scope and scope.covers(a, issuer) and scope.covers(b, receiver):
                return True
        return False

    def price(self, item: str, institution: str | None) -> float:
        if institution and item in self.institution_prices.get(institution, {}):
            return float(self.institution_prices[institution][item])
        return float(self.prices.get(item, 0.0))

    def _qc_by_institution(self) -> Mapping[str, tuple[QcRecord, ...]]:
        cached = self.__dict__.get("_qc_index")
        if cached is None:
            index: dict[str, list[QcRecord]] = {}
            for r in self.qc:
                index.setdefault(r.institution, []).append(r)
            cached = {k: tuple(v) for k, v in index.items()}
            object.__setattr__(self, "_qc_index", cached)
        return cached

    def with_institutions(self, institutions: Mapping[str, Institution]) -> Rules:
        return replace(self, institutions=dict(institutions))


# -- loading --------------------------------------------------------------------------------

def rule_folders(site: Path | None) -> list[Path]:
    """Shipped defaults, then the site folder (and its ``recognition/`` sub-folder if present)."""
    folders = [SHIPPED]
    if site is not None:
        folders.append(Path(site))
        if (Path(site) / "recognition").is_dir():
            folders.append(Path(site) / "recognition")
    return folders


def load_rules(
    folders: Sequence[Path],
    institutions: Mapping[str, Institution] | None = None,
    *,
    site_local: Mapping[str, Mapping[str, str]] | None = None,
) -> Rules:
    """Read, validate and cross-check the six rules files; raise ``RulesError`` on the first mistake.

    ``site_local`` adds the local code → item entries of the site's per-institution code maps
    (``mappings/codes/<INSTITUTION>.yaml``, field ``item``); item_codes.yaml ``local`` wins over them.
    Entries naming an item this catalogue does not have are ignored (and logged).
    """
    docs = {name: read_yaml(find_file(name, folders)) for name in FILES}
    for name, doc in docs.items():
        validate(doc, name.replace(".yaml", ".json"))

    items_doc = docs["items.yaml"]
    items: dict[str, RecognitionItem] = {}
    for i, raw in enumerate(items_doc.data or []):
        if raw["code"] in items:
            raise locate(items_doc, [i, "code"], f"duplicate item code {raw['code']!r}")
        items[raw["code"]] = RecognitionItem(
            code=raw["code"], name=raw["name"], category=raw["category"], window_days=raw["window_days"],
            scope=tuple(raw.get("scope") or (COMMUNITY,)), reasons=tuple(raw.get("reasons") or ()),
        )

    scopes_doc = docs["scopes.yaml"]
    scopes: dict[str, Scope] = {}
    for i, raw in enumerate(scopes_doc.data or []):
        if raw["code"] in scopes:
            raise locate(scopes_doc, [i, "code"], f"duplicate scope code {raw['code']!r}")
        scopes[raw["code"]] = Scope(
            code=raw["code"], name=raw["name"], all=bool(raw.get("all")),
            communities=frozenset(raw.get("communities") or ()), institutions=frozenset(raw.get("institutions") or ()),
        )

    reasons_doc = docs["reasons.yaml"]
    reasons: dict[str, ReasonCode] = {}
    for i, raw in enumerate(reasons_doc.data["codes"]):
        if raw["code"] in reasons:
            raise locate(reasons_doc, ["codes", i, "code"], f"duplicate reason code {raw['code']!r}")
        reasons[raw["code"]] = ReasonCode(raw["code"], raw["display"], raw["effect"], bool(raw.get("text_required")))

    for i, item in enumerate(items.values()):
        for j, s in enumerate(item.scope):
            if s != COMMUNITY and s not in scopes:
                raise locate(items_doc, [i, "scope", j], f"unknown scope {s!r} (not in scopes.yaml)")
        for j, r in enumerate(item.reasons):
            if r not in reasons:
                raise locate(items_doc, [i, "reasons", j], f"unknown reason code {r!r} (not in reasons.yaml)")

    codes = _load_codes(docs["item_codes.yaml"], items)
    if site_local:
        merged: dict[str, dict[str, str]] = {}
        for inst, table in site_local.items():
            for local, item in table.items():
                if item in items:
                    merged.setdefault(inst, {})[local] = item
                else:
                    log.warning("code map of %s: %s -> unknown recognition item %r ignored", inst, local, item)
        for inst, table in codes.local.items():
            merged.setdefault(inst, {}).update(table)
        codes = replace(codes, local=merged)
    qc = _load_qc(docs["qc.yaml"], items, scopes)

    prices_doc = docs["prices.yaml"]
    prices = prices_doc.data
    for code in prices["default"]:
        if code not in items:
            raise locate(prices_doc, ["default", code], f"unknown item {code!r} (not in items.yaml)")
    for inst, table in (prices.get("institutions") or {}).items():
        for code in table:
            if code not in items:
                raise locate(prices_doc, ["institutions", inst, code], f"unknown item {code!r} (not in items.yaml)")

    return Rules(
        items=items, codes=codes, qc=qc, scopes=scopes, currency=prices["currency"],
        prices=dict(prices["default"]), institution_prices=dict(prices.get("institutions") or {}),
        reason_system=reasons_doc.data["system"], reasons=reasons, institutions=dict(institutions or {}),
        sources=tuple(str(d.path) for d in docs.values()),
    )


def _load_codes(doc: Any, items: Mapping[str, RecognitionItem]) -> CodeMaps:
    data = doc.data or {}

    def check(section: str, table: Mapping[str, str], *prefix: str) -> dict[str, str]:
        for key, item in table.items():
            if item not in items:
                raise locate(doc, [section, *prefix, key], f"unknown item {item!r} (not in items.yaml)")
        return dict(table)

    imaging: list[ImagingRule] = []
    for i, raw in enumerate(data.get("imaging") or []):
        if raw["item"] not in items:
            raise locate(doc, ["imaging", i, "item"], f"unknown item {raw['item']!r} (not in items.yaml)")
        imaging.append(ImagingRule(raw["modality"].upper(), frozenset(str(b).upper() for b in raw["body_site"]), raw["item"]))
    systems = data.get("systems") or {}
    defaults = CodeMaps()
    return CodeMaps(
        item_system=systems.get("item", defaults.item_system),
        local_prefix=systems.get("local_prefix", defaults.local_prefix),
        loinc_system=systems.get("loinc", defaults.loinc_system),
        price_system=systems.get("price", defaults.price_system),
        modality_system=systems.get("modality", defaults.modality_system),
        loinc=check("loinc", data.get("loinc") or {}),
        price=check("price", data.get("price") or {}),
        price_modality={k: v.upper() for k, v in (data.get("price_modality") or {}).items()},
        modality_aliases={k.upper(): v.upper() for k, v in (data.get("modality_aliases") or {}).items()},
        imaging=tuple(imaging),
        local={inst: check("local", table, inst) for inst, table in (data.get("local") or {}).items()},
    )


def _load_qc(doc: Any, items: Mapping[str, RecognitionItem], scopes: Mapping[str, Scope]) -> tuple[QcRecord, ...]:
    out: list[QcRecord] = []
    for i, raw in enumerate(doc.data or []):
        if raw["item"] != "all" and raw["item"] not in items:
            raise locate(doc, [i, "item"], f"unknown item {raw['item']!r} (not in items.yaml; or 'all')")
        start, until = date.fromisoformat(raw["from"]), date.fromisoformat(raw["until"])
        if until < start:
            raise locate(doc, [i, "until"], f"'until' {raw['until']} is before 'from' {raw['from']}")
        for j, s in enumerate(raw.get("hr") or ()):
            if s not in scopes:
                raise locate(doc, [i, "hr", j], f"unknown scope {s!r} (not in scopes.yaml)")
        out.append(QcRecord(raw["institution"], raw["item"], raw["passed"], start, until,
                            tuple(raw.get("hr") or ()), raw.get("source", "")))
    return tuple(out)


def institution_from_site(obj: Any) -> Institution:
    """Adapt one entry of the site's institutions (object or dict, DESIGN.md §3a shape)."""

    def get(o: Any, key: str) -> Any:
        return o.get(key) if isinstance(o, Mapping) else getattr(o, key, None)

    qc = get(obj, "qc")
    passed: Any = get(qc, "passed") if qc is not None else None
    until: Any = get(qc, "until") if qc is not None else None
    if isinstance(passed, str):
        passed_set: frozenset[str] | None = frozenset([passed])
    elif isinstance(passed, Iterable):
        passed_set = frozenset(str(p) for p in passed)
    else:
        passed_set = None
    if isinstance(until, str):
        until = date.fromisoformat(until)
    return Institution(code=str(get(obj, "code")), name=str(get(obj, "name") or ""),
                       community=get(obj, "community"), qc_passed=passed_set, qc_until=until,
                       timezone=str(get(obj, "timezone") or "Asia/Shanghai"))


__all__ = ["RulesError", "Rules", "RecognitionItem", "Institution", "QcRecord", "Scope", "ReasonCode",
           "CodeMaps", "ImagingRule", "load_rules", "rule_folders", "institution_from_site"]
