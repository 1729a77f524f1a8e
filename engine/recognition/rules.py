"""The recognition rules as typed, validated data: items (down to analytes), code maps, QC history,
scopes, prices, reasons and the payment policy.

Loaded from ``mappings/recognition/`` overlaid by the site folder (``HUREN_SITE``; same file names
win), validated with jsonschema and then cross-checked (every item a map names exists, every
scope an item or a QC entry names exists...). A ``Rules`` object is immutable: hot reload builds
a new one and swaps it in, so a request always sees one consistent set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

from engine.insurance.tiers import fen
from engine.recognition.qc import DeclaredQc, QcRecord, QcStatus
from mappings.site import DEFAULT_ZONE
from mappings.sitefiles import RulesError, find_file, locate, read_yaml, validate

log = logging.getLogger("huren.recognition")

SHIPPED = Path(__file__).resolve().parents[2] / "mappings" / "recognition"
FILES = ("items.yaml", "item_codes.yaml", "qc.yaml", "scopes.yaml", "prices.yaml", "reasons.yaml", "policy.yaml")
COMMUNITY = "community"


@dataclass(frozen=True)
class RecognitionItem:
    code: str
    name: str
    category: str  # 检验 | 检查
    window_days: int
    scope: tuple[str, ...] = (COMMUNITY,)
    reasons: tuple[str, ...] = ()
    analytes: Mapping[str, str] = field(default_factory=dict)  # a panel's analytes: code -> name

    def analyte_set(self, analytes: Iterable[str] | None) -> frozenset[str]:
        """What a test covers: the named analytes, or the whole item when none is named."""
        named = frozenset(analytes or ())
        return named or frozenset(self.analytes)


@dataclass(frozen=True)
class Institution:
    """What recognition needs to know of a member institution (from the site's institutions.yaml)."""

    code: str
    name: str = ""
    community: str | None = None
    qc_passed: frozenset[str] | None = None  # None: nothing; frozenset({"all"}) or item codes
    qc_until: date | None = None
    timezone: str = DEFAULT_ZONE  # for result and order dates written without an offset (mappings.site's default)
    grade: str | None = None  # 三级 / 二级 / 一级

    @property
    def declared_qc(self) -> DeclaredQc:
        return DeclaredQc(self.qc_passed or frozenset(), self.qc_until)


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
    text_required: bool = False


# Effects a payer gives a re-test reason (policy.yaml).
PAYABLE, SELF_PAY, CHECK_AGE, CHECK_QC, CHECK_HELD = "payable", "self_pay", "check_age", "check_qc", "check_held"


@dataclass(frozen=True)
class PaymentPolicy:
    """One payer's policy: effect of each reason, scopes of non-payment, who must recognise whom."""

    reasons: Mapping[str, str]
    age_fraction: float = 0.5
    not_payable_scopes: frozenset[str] = frozenset({COMMUNITY})
    direction: Mapping[str, frozenset[str]] = field(default_factory=dict)
    items: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)

    def must_recognise(self, item: str, receiver_grade: str | None, issuer_grade: str | None) -> bool:
        """Must an institution of ``receiver_grade`` recognise a result of ``issuer_grade`` for ``item``?
        Without a grade on either side, or a rule for the receiver's grade, it must."""
        if not receiver_grade or not issuer_grade:
            return True
        table = self.items.get(item, self.direction)
        grades = table.get(receiver_grade)
        return grades is None or issuer_grade in grades


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
    analytes: Mapping[str, str] = field(default_factory=dict)  # LOINC -> analyte code (items.yaml)
    local_loinc: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # inst -> local code -> LOINC


@dataclass(frozen=True)
class Rules:
    items: Mapping[str, RecognitionItem]
    codes: CodeMaps
    qc: QcStatus
    scopes: Mapping[str, Scope]
    currency: str
    prices: Mapping[str, Decimal]  # read as the decimal each was written as (``_catalogue``)
    institution_prices: Mapping[str, Mapping[str, Decimal]]
    reason_system: str
    reasons: Mapping[str, ReasonCode]
    institutions: Mapping[str, Institution]
    policy: PaymentPolicy = field(default_factory=lambda: PaymentPolicy({}))
    community_policies: Mapping[str, PaymentPolicy] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    @cached_property
    def item_names(self) -> Mapping[str, str]:
        """items.yaml ``name`` (stripped) -> its item's code, the first item listed under a name
        (``coding.item_named``): built once per loaded rules, which a reload replaces whole."""
        names: dict[str, str] = {}
        for item in self.items.values():
            names.setdefault(item.name.strip(), item.code)
        return names

    # -- questions the decision asks ------------------------------------------------------
    def qc_passed(self, institution: str, item: str, on: date) -> bool:
        """Had ``institution`` passed quality control for ``item`` on date ``on``? (``QcStatus``)"""
        return self.qc.passed(institution, item, on)

    def hr_scopes(self, institution: str, item: str, on: date) -> tuple[str, ...]:
        """HR scopes the institution's passed QC for the item gives its results on that date."""
        return self.qc.hr_scopes(institution, item, on)

    def policy_for(self, institution: str | None) -> PaymentPolicy:
        """The payment policy of the fund paying for ``institution``'s orders (its community's)."""
        inst = self.institutions.get(institution or "")
        return self.community_policies.get(inst.community or "", self.policy) if inst else self.policy

    def must_recognise(self, item: str, receiver: str, issuer: str) -> bool:
        a, b = self.institutions.get(receiver), self.institutions.get(issuer)
        return self.policy_for(receiver).must_recognise(item, a.grade if a else None, b.grade if b else None)

    def scope_covers(self, item: RecognitionItem, issuer: str, receiver: str, on: date) -> bool:
        """Does recognition of ``item`` reach from ``issuer``'s result (dated ``on``) to ``receiver``?"""
        return self.scope_via(item, issuer, receiver, on) is not None

    def scope_via(self, item: RecognitionItem, issuer: str, receiver: str, on: date) -> str | None:
        """The narrowest scope through which ``issuer``'s result reaches ``receiver``, or None.

        ``community`` inside one medical community (or the same institution) when the item's scope
        includes it; beyond it, the first of the item's scopes, then of the HR scopes the issuer
        holds for the item on that date, that covers both institutions. The same institution is
        the community's case only for an item on the community's list: an item a site recognises
        through an HR scope alone was "not payable" at the hospital repeating its own result while
        a neighbour's repeat of it was only reported (DOMAIN.md: non-payment inside the community,
        for items on its list).
        """
        a, b = self.institutions.get(issuer), self.institutions.get(receiver)
        if issuer == receiver and COMMUNITY in item.scope:
            return COMMUNITY
        if COMMUNITY in item.scope and a and b and a.community and a.community == b.community:
            return COMMUNITY
        for code in (*[s for s in item.scope if s != COMMUNITY], *self.hr_scopes(issuer, item.code, on)):
            scope = self.scopes.get(code)
            if scope and scope.covers(a, issuer) and scope.covers(b, receiver):
                return code
        return None

    def price(self, item: str, institution: str | None) -> Decimal:
        """Catalogue price of an item or an analyte at ``institution`` (its own entry wins), as the
        decimal it was written as (an entry not in the catalogue: 0)."""
        if institution and item in self.institution_prices.get(institution, {}):
            return _decimal(self.institution_prices[institution][item])
        return _decimal(self.prices.get(item, 0))

    def repeat_price(self, item: RecognitionItem, repeated: frozenset[str], institution: str | None) -> Decimal:
        """Price of what was repeated, at the level it was ordered: the whole panel at the panel's
        price, else the repeated analytes' prices (an unpriced analyte: its share of the panel's),
        to the fen by the one rounding rule (``engine.insurance.tiers.fen``, half up).

        Why Decimal and one rounding at the end (moneyleft27): the shares were floats summed and
        rounded by ``round``, so ALT alone of a 10.11 liver panel of six (1.685) was 1.68, not
        1.69; the unpriced analytes' shares are now taken together (panel × k ÷ n), exactly."""
        whole = self.price(item.code, institution)
        if not item.analytes or repeated >= frozenset(item.analytes):
            return fen(whole)
        own = self.institution_prices.get(institution or "", {})
        priced = [a for a in repeated if a in self.prices or a in own]
        unpriced = len(repeated) - len(priced)
        total = sum((self.price(a, institution) for a in priced), Decimal(0))
        return fen(total + whole * unpriced / len(item.analytes))

    def with_institutions(self, institutions: Mapping[str, Institution]) -> Rules:
        qc = QcStatus(self.qc.records, {code: inst.declared_qc for code, inst in institutions.items()})
        return replace(self, institutions=dict(institutions), qc=qc)


# -- loading --------------------------------------------------------------------------------

def rule_folders(site: Path | None) -> list[Path]:
    """Shipped defaults, then the site folder (and its ``recognition/`` sub-folder if present)."""
    folders = [SHIPPED]
    if site is not None:
        folders.append(Path(site))
        if (Path(site) / "recognition").is_dir():
            folders.append(Path(site) / "recognition")
    return folders


# Rules already built in this process, by everything they are built from (``_inputs``): the files' paths and
# texts, and the site's institutions and code-map entries handed in. A ``Rules`` is immutable (see the module's
# docstring) and a reload replaces it whole, so one built from the same inputs serves every Engine that asks.
_BUILT: dict[tuple[Any, ...], tuple[Rules, tuple[tuple[str, str, str], ...]]] = {}
_BUILT_MAX = 8  # (a test's site folders, a reload's edits: the oldest goes first)
# Engines may start in threads at once: the insert and the eviction of the oldest are one step under this lock
# (two evicting at once picked one oldest key, and the second ``del`` raised KeyError -- that Engine's start
# failed: rv44c LOW 5); a lookup is one dict read, atomic as it is.
_BUILT_LOCK = threading.Lock()


def _inputs(texts: Iterable[tuple[str, str]], institutions: Mapping[str, Institution] | None,
            site_local: Mapping[str, Mapping[str, str]] | None,
            site_loinc: Mapping[str, Mapping[str, str]] | None) -> tuple[Any, ...]:
    """The key of ``_BUILT``: every input of ``load_rules`` in its order (a dict's order is the built
    ``Rules``' order too), hashable; ``TypeError`` when an input is not (then nothing is kept)."""
    def table(maps: Mapping[str, Mapping[str, str]] | None) -> tuple[Any, ...]:
        return tuple((key, tuple(entries.items())) for key, entries in (maps or {}).items())

    key = (tuple(texts), tuple((institutions or {}).items()), table(site_local), table(site_loinc))
    hash(key)
    return key


def load_rules(
    folders: Sequence[Path],
    institutions: Mapping[str, Institution] | None = None,
    *,
    site_local: Mapping[str, Mapping[str, str]] | None = None,
    site_loinc: Mapping[str, Mapping[str, str]] | None = None,
    shared: bool = False,
) -> Rules:
    """Read, validate and cross-check the six rules files; raise ``RulesError`` on the first mistake.

    ``site_local`` adds the local code → item entries of the site's per-institution code maps
    (``mappings/codes/<INSTITUTION>.yaml``, field ``item``); item_codes.yaml ``local`` wins over them.
    Entries naming an item this catalogue does not have are ignored (and logged).

    ``shared`` (an Engine's start, ``Recognition``): rules ``shared`` built from the very same inputs (each
    file's path and text, the institutions and code-map entries) earlier in this process are returned
    again, their warnings logged again: every Engine built them anew (~1.4 ms of CPU of a test's ~17 ms
    Engine open, the suite opening ~5,000). The files are read each time, so an edited file (a site's, a
    test's) is read anew, and a file that does not read or does not check raises as before (nothing is
    kept for it). Not shared: built anew, as a reload asks (``Recognition.reload``: a new ``Rules``
    object each time, which the write hook's per-group pass-overs tell apart by identity). (forty-fourth
    round, suite44a)
    """
    if not shared:
        return _load_rules(folders, institutions, site_local, site_loinc, [], [])
    try:
        key: tuple[Any, ...] | None = _inputs(
            ((str(path), path.read_text(encoding="utf-8")) for path in (find_file(name, folders) for name in FILES)),
            institutions, site_local, site_loinc)
    except (OSError, UnicodeDecodeError, TypeError, RulesError):
        key = None  # read below, as always, to say what is wrong
    built = _BUILT.get(key) if key is not None else None
    if built is not None:
        for warning in built[1]:
            log.warning("code map of %s: %s -> unknown recognition item %r ignored", *warning)
        return built[0]
    ignored: list[tuple[str, str, str]] = []
    texts: list[tuple[str, str]] = []
    rules = _load_rules(folders, institutions, site_local, site_loinc, ignored, texts)
    try:  # kept under the texts it was built from (a file edited meanwhile: under its new text)
        key = _inputs(texts, institutions, site_local, site_loinc)
    except TypeError:
        return rules
    with _BUILT_LOCK:
        _BUILT[key] = (rules, tuple(ignored))
        while len(_BUILT) > _BUILT_MAX:
            del _BUILT[next(iter(_BUILT))]
    return rules


def _load_rules(folders: Sequence[Path], institutions: Mapping[str, Institution] | None,
                site_local: Mapping[str, Mapping[str, str]] | None, site_loinc: Mapping[str, Mapping[str, str]] | None,
                ignored: list[tuple[str, str, str]], texts: list[tuple[str, str]]) -> Rules:
    """``load_rules``' reading of the files, each site code-map entry naming an unknown item added to ``ignored``
    and each file's path and the text read added to ``texts``."""
    docs = {name: read_yaml(find_file(name, folders)) for name in FILES}
    texts.extend((str(doc.path), doc.text) for doc in docs.values())
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
            analytes={a["code"]: a["name"] for a in raw.get("analytes") or ()},
        )
    # analytes: codes unique across items (an analyte belongs to one panel) and apart from item codes
    analyte_loinc: dict[str, str] = {}
    analyte_item: dict[str, str] = {}
    for i, raw in enumerate(items_doc.data or []):
        for j, a in enumerate(raw.get("analytes") or ()):
            if a["code"] in items or a["code"] in analyte_item:
                raise locate(items_doc, [i, "analytes", j, "code"], f"analyte code {a['code']!r} is used twice")
            analyte_item[a["code"]] = raw["code"]
            for loinc in a.get("loinc") or ():
                analyte_loinc[loinc] = a["code"]

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
        reasons[raw["code"]] = ReasonCode(raw["code"], raw["display"], bool(raw.get("text_required")))

    for i, item in enumerate(items.values()):
        for j, s in enumerate(item.scope):
            if s != COMMUNITY and s not in scopes:
                raise locate(items_doc, [i, "scope", j], f"unknown scope {s!r} (not in scopes.yaml)")
        for j, r in enumerate(item.reasons):
            if r not in reasons:
                raise locate(items_doc, [i, "reasons", j], f"unknown reason code {r!r} (not in reasons.yaml)")

    codes = _load_codes(docs["item_codes.yaml"], items)
    codes = replace(codes, analytes=analyte_loinc, local_loinc=dict(site_loinc or {}),
                    loinc={**{lo: analyte_item[a] for lo, a in analyte_loinc.items()}, **codes.loinc})
    if site_local:
        merged: dict[str, dict[str, str]] = {}
        for inst, table in site_local.items():
            for local, item in table.items():
                if item in items:
                    merged.setdefault(inst, {})[local] = item
                else:
                    log.warning("code map of %s: %s -> unknown recognition item %r ignored", inst, local, item)
                    ignored.append((inst, local, item))
        for inst, table in codes.local.items():
            merged.setdefault(inst, {}).update(table)
        codes = replace(codes, local=merged)
    qc = QcStatus(_load_qc(docs["qc.yaml"], items, scopes),
                  {code: inst.declared_qc for code, inst in (institutions or {}).items()})
    policy, community_policies = _load_policy(docs["policy.yaml"], items, scopes, reasons)

    prices_doc = docs["prices.yaml"]
    prices = prices_doc.data
    for code in prices["default"]:
        if code not in items and code not in analyte_item:
            raise locate(prices_doc, ["default", code], f"unknown item or analyte {code!r} (not in items.yaml)")
    for inst, table in (prices.get("institutions") or {}).items():
        for code in table:
            if code not in items and code not in analyte_item:
                raise locate(prices_doc, ["institutions", inst, code],
                             f"unknown item or analyte {code!r} (not in items.yaml)")

    return Rules(
        items=items, codes=codes, qc=qc, scopes=scopes, currency=prices["currency"],
        prices=_catalogue(prices["default"]),
        institution_prices={inst: _catalogue(table) for inst, table in (prices.get("institutions") or {}).items()},
        reason_system=reasons_doc.data["system"], reasons=reasons, institutions=dict(institutions or {}),
        policy=policy, community_policies=community_policies, sources=tuple(str(d.path) for d in docs.values()),
    )


def _decimal(value: Any) -> Decimal:
    """A catalogue price as a Decimal of the text it was written as (YAML reads ``19.99`` as a float:
    its shortest repr is that text)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _catalogue(table: Mapping[str, Any] | None) -> dict[str, Decimal]:
    return {code: _decimal(value) for code, value in (table or {}).items()}


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


def _load_policy(doc: Any, items: Mapping[str, RecognitionItem], scopes: Mapping[str, Scope],
                 reasons: Mapping[str, ReasonCode]) -> tuple[PaymentPolicy, dict[str, PaymentPolicy]]:
    """policy.yaml: the default policy and, per community, the keys it overrides."""
    data = doc.data

    def build(raw: Mapping[str, Any], base: PaymentPolicy | None, where: list[str | int]) -> PaymentPolicy:
        for code in raw.get("reasons") or {}:
            if code not in reasons:
                raise locate(doc, [*where, "reasons", code], f"unknown reason code {code!r} (not in reasons.yaml)")
        for j, s in enumerate(raw.get("not_payable_scopes") or ()):
            if s != COMMUNITY and s not in scopes:
                raise locate(doc, [*where, "not_payable_scopes", j], f"unknown scope {s!r} (not in scopes.yaml)")
        for code in raw.get("items") or {}:
            if code not in items:
                raise locate(doc, [*where, "items", code], f"unknown item {code!r} (not in items.yaml)")

        def direction(table: Mapping[str, Any]) -> dict[str, frozenset[str]]:
            return {grade: frozenset(issuers) for grade, issuers in table.items()}

        return PaymentPolicy(
            reasons={**(base.reasons if base else {}), **(raw.get("reasons") or {})},
            age_fraction=float(raw.get("age_fraction", base.age_fraction if base else 0.5)),
            not_payable_scopes=frozenset(raw["not_payable_scopes"]) if "not_payable_scopes" in raw
            else (base.not_payable_scopes if base else frozenset({COMMUNITY})),
            direction=direction(raw["direction"]) if "direction" in raw else (base.direction if base else {}),
            items={k: direction(v) for k, v in raw["items"].items()} if "items" in raw else (base.items if base else {}),
        )

    default = build(data["default"], None, ["default"])
    communities = {code: build(raw or {}, default, ["communities", code])
                   for code, raw in (data.get("communities") or {}).items()}
    return default, communities


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
                       timezone=str(get(obj, "timezone") or DEFAULT_ZONE), grade=get(obj, "grade"))


__all__ = ["RulesError", "Rules", "RecognitionItem", "Institution", "QcRecord", "QcStatus", "Scope", "ReasonCode",
           "PaymentPolicy", "CodeMaps", "ImagingRule", "load_rules", "rule_folders", "institution_from_site"]
