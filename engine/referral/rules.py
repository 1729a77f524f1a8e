"""The referral data files (``mappings/referral/``), checked and turned into typed rules.

``workflow.yaml`` (states and transitions of the referral Task), ``deductibles.yaml`` (what a
referred admission pays) and ``summary.yaml`` (the sections of the pre-arrival summary). A site's
``HUREN_SITE/referral/<file>`` replaces the shipped file of the same name, like every site file;
a mistake is a ``SiteError`` naming the file, line and field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mappings.site import SiteError
from mappings.sitefiles import load_checked

SHIPPED = Path(__file__).resolve().parents[2] / "mappings" / "referral"
ANY_STATE = "*"
TASK_STATUSES = ("draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress",
                 "on-hold", "failed", "completed", "entered-in-error")
DIRECTIONS = ("upward", "downward", "lateral")
PAY_RULES = ("difference", "none", "full")

_CODING = {"type": "object", "required": ["system", "code"],
           "properties": {"system": {"type": "string"}, "code": {"type": "string"}, "display": {"type": "string"}}}
_WORKFLOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["referral_categories", "business_status", "states", "initial", "transitions"],
    "additionalProperties": False,
    "properties": {
        "referral_categories": {"type": "array", "minItems": 1, "items": _CODING},
        "business_status": {"type": "string", "minLength": 1},
        "states": {"type": "object", "minProperties": 1, "additionalProperties": {
            "type": "object", "required": ["status"], "additionalProperties": False,
            "properties": {"status": {"enum": list(TASK_STATUSES)}, "display": {"type": "string"},
                           "stay": {"type": "boolean"}, "default_for_status": {"type": "boolean"}}}},
        "initial": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "transitions": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
}
_MONEY = {"type": "string", "pattern": r"^\d+(\.\d+)?$"}
_DEDUCTIBLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["grades", "rules"],
    "additionalProperties": False,
    "properties": {
        "grades": {"type": "object", "additionalProperties": _MONEY},
        "institutions": {"type": "object", "additionalProperties": _MONEY},
        "grade_of": {"type": "object", "additionalProperties": {"type": "string"}},
        "rules": {"type": "object", "required": list(DIRECTIONS), "additionalProperties": False,
                  "properties": {d: {"enum": list(PAY_RULES)} for d in DIRECTIONS}},
    },
}
_SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["sections"], "additionalProperties": False,
    "properties": {"sections": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["key", "title", "code", "types"], "additionalProperties": False,
        "properties": {"key": {"type": "string"}, "title": {"type": "string"}, "code": _CODING,
                       "types": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                       "days": {"type": "integer", "minimum": 1}, "limit": {"type": "integer", "minimum": 1},
                       "results": {"type": "boolean"}}}}},
}


@dataclass(frozen=True)
class State:
    name: str
    status: str  # Task.status this state shows
    display: str
    stay: bool  # may a write that keeps this state change the Task?
    default_for_status: bool


@dataclass(frozen=True)
class WorkflowRules:
    categories: frozenset[tuple[str, str]]
    business_system: str
    states: dict[str, State]
    initial: frozenset[str]
    transitions: dict[str, frozenset[str]]
    by_status: dict[str, str] = field(default_factory=dict)  # Task.status → its default state

    def allowed(self, source: str) -> frozenset[str]:
        return self.transitions.get(source, frozenset()) | self.transitions.get(ANY_STATE, frozenset())


@dataclass(frozen=True)
class DeductibleRules:
    grades: dict[str, Decimal]
    institutions: dict[str, Decimal]
    grade_of: dict[str, str]
    pays: dict[str, str]  # direction → difference | none | full


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    code: dict[str, str]
    types: tuple[str, ...]
    days: int | None = None
    limit: int = 100
    results: bool = False


@dataclass(frozen=True)
class ReferralRules:
    workflow: WorkflowRules
    deductibles: DeductibleRules
    sections: tuple[Section, ...]


def _file(name: str, site: Path | None) -> Path:
    if site is not None and (site / "referral" / name).is_file():
        return site / "referral" / name
    return SHIPPED / name


def _workflow(path: Path) -> WorkflowRules:
    data, _ = load_checked(path, _WORKFLOW_SCHEMA)
    states = {name: State(name, s["status"], s.get("display", name), bool(s.get("stay", False)),
                          bool(s.get("default_for_status", False))) for name, s in data["states"].items()}
    known = set(states)
    for where, names in [("initial", data["initial"])] + [(f"transitions.{k}", v) for k, v in data["transitions"].items()]:
        for name in names:
            if name not in known:
                raise SiteError(path, None, where, f"'{name}' is not one of the states ({', '.join(sorted(known))})")
    for source in data["transitions"]:
        if source != ANY_STATE and source not in known:
            raise SiteError(path, None, f"transitions.{source}", "not a state")
    by_status: dict[str, str] = {}
    for s in states.values():
        if s.default_for_status:
            if s.status in by_status:
                raise SiteError(path, None, f"states.{s.name}",
                                f"Task.status '{s.status}' already defaults to state '{by_status[s.status]}'")
            by_status[s.status] = s.name
    return WorkflowRules(
        categories=frozenset((c["system"], c["code"]) for c in data["referral_categories"]),
        business_system=data["business_status"], states=states, initial=frozenset(data["initial"]),
        transitions={k: frozenset(v) for k, v in data["transitions"].items()}, by_status=by_status)


def _money(path: Path, where: str, text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise SiteError(path, None, where, f"'{text}' is not an amount") from None


def _deductibles(path: Path) -> DeductibleRules:
    data, _ = load_checked(path, _DEDUCTIBLE_SCHEMA)
    grades = {g: _money(path, f"grades.{g}", v) for g, v in data["grades"].items()}
    for code, grade in (data.get("grade_of") or {}).items():
        if grade not in grades:
            raise SiteError(path, None, f"grade_of.{code}", f"grade '{grade}' has no deductible in grades")
    return DeductibleRules(grades=grades,
                           institutions={c: _money(path, f"institutions.{c}", v)
                                         for c, v in (data.get("institutions") or {}).items()},
                           grade_of=dict(data.get("grade_of") or {}), pays=dict(data["rules"]))


def _sections(path: Path) -> tuple[Section, ...]:
    data, _ = load_checked(path, _SUMMARY_SCHEMA)
    return tuple(Section(s["key"], s["title"], dict(s["code"]), tuple(s["types"]), s.get("days"),
                         s.get("limit", 100), bool(s.get("results", False))) for s in data["sections"])


def load(site: Path | None = None) -> ReferralRules:
    return ReferralRules(workflow=_workflow(_file("workflow.yaml", site)),
                         deductibles=_deductibles(_file("deductibles.yaml", site)),
                         sections=_sections(_file("summary.yaml", site)))
