"""Split admissions (分解住院): the same person discharged and readmitted for the same condition
within a few days, so that one stay is billed as two.

The rule is data (``insurance/split_admission.yaml``: the window in days, which Encounter classes are
admissions, how diagnoses are compared, planned readmissions excluded). The person is the MPI's:
the records of one resident at different institutions are one person (``person_compartment``), so a
discharge at one hospital and an admission at another count. An admission's diagnoses are read
where the feeds and clients put them: ``Encounter.reasonCode``, ``Encounter.diagnosis.condition``
and the Conditions whose ``encounter`` is the admission (the HL7 DG1 conversion). A readmission is
planned by its principal diagnosis only (``_diagnoses``), one the record stands by (moneyfix24).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from engine.errors import BadRequest, Gone, NotFound
from engine.insurance.charges import OrganizationCodes, local_date, provider_of
from engine.insurance.reading import search_pages
from mappings.site import DEFAULT_ZONE, DEFAULTS_DIR
from mappings.sitefiles import check, find_file, read_yaml

FILE = "insurance/split_admission.yaml"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["window_days", "classes", "prefix"],
    "additionalProperties": False,
    "properties": {
        "window_days": {"type": "integer", "minimum": 0, "maximum": 366},
        "classes": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "prefix": {"type": "integer", "minimum": 1, "maximum": 20},
        "systems": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "exclude": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "same_institution_only": {"type": "boolean"},
    },
}


@dataclass(frozen=True)
class SplitRule:
    window_days: int
    classes: frozenset[str]
    prefix: int
    systems: frozenset[str] = frozenset()
    exclude: tuple[str, ...] = ()
    same_institution_only: bool = False
    path: str = ""

    def excluded(self, code: str) -> bool:
        """Is a code under ``exclude``? Compared without dots (Z51.1 and Z511 are one code)."""
        bare = code.replace(".", "")
        return any(bare.startswith(x.upper().replace(".", "")) for x in self.exclude)

    def conditions(self, codings: Sequence[dict[str, Any]]) -> set[str]:
        """The condition keys (code prefixes) of an admission's diagnosis codings, planned
        readmissions left out."""
        out = set()
        for c in codings:
            code = str(c.get("code") or "").strip().upper()
            if not code or (self.systems and c.get("system") not in self.systems):
                continue
            if self.excluded(code):
                continue
            out.add(code[: self.prefix])
        return out

    def planned(self, principal: Sequence[dict[str, Any]]) -> bool:
        """Is an admission a planned one: is a coding of its *principal* diagnosis (``admissions``
        says which) under ``exclude`` (Z51.1 chemotherapy)? Then it is never suspected, whatever
        disease is coded beside it: a chemotherapy cycle is coded Z51.1 with its cancer, which the
        earlier stay shares (money24). A secondary code does not make it planned: an emergency
        readmission for the cancer with palliative care coded beside it is not a cycle
        (moneyfix24)."""
        for c in principal:
            code = str(c.get("code") or "").strip().upper()
            if not code or (self.systems and c.get("system") not in self.systems):
                continue
            if self.excluded(code):
                return True
        return False


def load_rule(site_dir: Path | str | None) -> SplitRule:
    folders = [DEFAULTS_DIR] + ([Path(site_dir)] if site_dir is not None else [])
    doc = read_yaml(find_file(FILE, folders))
    data = check(doc, SCHEMA)
    return SplitRule(int(data["window_days"]), frozenset(data["classes"]), int(data["prefix"]),
                     frozenset(data.get("systems") or ()), tuple(data.get("exclude") or ()),
                     bool(data.get("same_institution_only", False)), str(doc.path))


@dataclass(frozen=True)
class Admission:
    encounter: str
    patient: str
    institution: str | None
    admitted: date
    discharged: date | None
    conditions: frozenset[str]
    codes: tuple[str, ...]
    planned: bool = False  # a planned admission (``SplitRule.planned``): never a suspected readmission

    def as_json(self) -> dict[str, Any]:
        return {"encounter": self.encounter, "patient": self.patient, "institution": self.institution,
                "admitted": self.admitted.isoformat(),
                "discharged": self.discharged.isoformat() if self.discharged else None, "diagnoses": list(self.codes)}


def _day(text: Any, zone: str = DEFAULT_ZONE) -> date | None:
    """The local day of an Encounter's start or end at its institution (``charges.local_date``): a
    readmission a client wrote at 2026-03-20T16:30:00Z was on 03-21 at the hospital, 16 days after
    a 03-05 discharge, not 15 (money24)."""
    if not isinstance(text, str) or len(text) < 10:
        return None
    try:
        return date.fromisoformat(local_date(text, zone) or "")
    except ValueError:
        return None


def _codings(concepts: Any) -> list[dict[str, Any]]:
    out = []
    for concept in concepts or ():
        if isinstance(concept, dict):
            out.extend(c for c in concept.get("coding") or () if isinstance(c, dict))
    return out


VOID = frozenset({"refuted", "entered-in-error"})  # R4 condition-ver-status: the Condition is not valid
DOUBTED = frozenset({"unconfirmed", "provisional", "differential"})  # not established: never exempts
COMORBIDITY = "CM"  # R4 diagnosis-role: a comorbidity ranked 1 is still not the principal diagnosis


def _verification(condition: dict[str, Any]) -> set[str]:
    return {str(c.get("code")) for c in _codings([condition.get("verificationStatus")])}


DISCHARGE_ROLES = frozenset({"DD", "billing"})  # R4 diagnosis-role: the stay's diagnosis as discharged and billed


def _uses(diag: dict[str, Any]) -> set[str]:
    return {str(c.get("code")) for c in _codings([diag.get("use")])}


def _principals(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``Encounter.diagnosis`` entries that are the stay's principal diagnosis (主要诊断): rank 1 (R4:
    the ranking within its ``use``), not a comorbidity; and where one of them is the discharge or billing
    diagnosis, only those -- the fund pays by the discharge principal diagnosis, so an admission
    diagnosis (AD) ranked 1 beside it does not decide (rvmoney24b)."""
    first = [d for d in entries if d.get("rank") == 1 and COMORBIDITY not in _uses(d)]
    discharged = [d for d in first if _uses(d) & DISCHARGE_ROLES]
    return discharged or first


def _diagnoses(repository: Any, enc: dict[str, Any], ref: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(codings, principal codings)`` of an admission.

    Codings: ``reasonCode``, the Conditions of ``Encounter.diagnosis`` and those whose ``encounter``
    is the admission (DG1), each once; a Condition that is refuted or entered in error (R4
    ``verificationStatus``, a modifier) counts for nothing, nor one deleted or missing.

    Principal: ``reasonCode`` (R4: "for admissions, a coded admission diagnosis"; HL7 PV2-3), the
    ``Encounter.diagnosis`` entries ``_principals`` names, and, when no entry is ranked, the admission's
    only diagnosis if it has one only. The DG1 conversion states no rank (DG1-15 is not read): of
    several DG1 diagnoses none is the principal. A principal Condition exempts only when it is
    confirmed or states no verification (R4: it is optional and most feeds leave it out); an
    unconfirmed, provisional or differential one does not."""
    codings = _codings(enc.get("reasonCode"))
    principal = list(codings)
    found: list[tuple[dict[str, Any], bool]] = []  # (Condition, ranked 1)
    seen: set[str] = set()
    entries = [d for d in enc.get("diagnosis") or () if isinstance(d, dict)]
    principals = _principals(entries)
    for diag in entries:
        cref = (diag.get("condition") or {}).get("reference")
        if isinstance(cref, str) and cref.startswith("Condition/") and cref not in seen:
            seen.add(cref)
            with contextlib.suppress(NotFound, Gone):
                found.append((repository.read("Condition", cref.split("/", 1)[1]), any(d is diag for d in principals)))
    for cond in search_pages(repository, "Condition", [("encounter", ref)]):
        if f"Condition/{cond.get('id')}" not in seen:
            found.append((cond, False))
    found = [(cond, first) for cond, first in found if not _verification(cond) & VOID]
    if len(found) == 1 and not principal and not any("rank" in d for d in entries):
        # the stay's only diagnosis is its principal -- unless reasonCode already states it (a lone
        # Condition beside an admit reason is a second diagnosis, not the principal: rvmoney24b)
        found = [(found[0][0], True)]
    for cond, first in found:
        cc = _codings([cond.get("code")])
        codings += cc
        if first and not _verification(cond) & DOUBTED:
            principal += cc
    return codings, principal


def admissions(repository: Any, rule: SplitRule, start: date, end: date,
               zone: Callable[[str], str | None] = lambda code: None) -> list[Admission]:
    """Admissions that may pair with one admitted from ``start`` to ``end``: those still open or
    discharged from ``start − window`` on, admitted by ``end``. ``zone(institution)``: its time
    zone (None: Asia/Shanghai), in which admission and discharge days are read."""
    since = start - timedelta(days=rule.window_days + 1)
    # a day's margin past ``end`` (stored instants are compared in UTC); the local admission
    # date decides below
    params = [("class", ",".join(sorted(rule.classes))), ("date", f"ge{since.isoformat()}"),
              ("date", f"lt{(end + timedelta(days=2)).isoformat()}")]
    orgs = OrganizationCodes(repository)
    out = []
    for enc in search_pages(repository, "Encounter", params):
        if enc.get("status") in ("cancelled", "entered-in-error", "planned"):
            continue
        cls = enc.get("class") or {}
        if cls.get("code") not in rule.classes:
            continue
        period = enc.get("period") or {}
        inst = provider_of(enc, orgs)
        tz = (zone(inst) if inst else None) or DEFAULT_ZONE
        admitted = _day(period.get("start"), tz)
        patient = (enc.get("subject") or {}).get("reference")
        if admitted is None or admitted > end or not isinstance(patient, str) or not patient.startswith("Patient/"):
            continue
        ref = f"Encounter/{enc['id']}"
        codings, principal = _diagnoses(repository, enc, ref)
        codes = tuple(sorted({str(c.get("code")) for c in codings if c.get("code")}))
        out.append(Admission(ref, patient, inst, admitted, _day(period.get("end"), tz),
                             frozenset(rule.conditions(codings)), codes, rule.planned(principal)))
    return out


def split_admissions(repository: Any, identity: Any, rule: SplitRule, start: date | None,
                     end: date | None, zone: Callable[[str], str | None] = lambda code: None) -> dict[str, Any]:
    """Pairs (discharge, readmission) of one person for the same condition within the window,
    the readmission admitted from ``start`` to ``end`` (both inclusive, required)."""
    if start is None or end is None:
        raise BadRequest("from and to are required (YYYY-MM-DD)", expression=["from"])
    if end < start:
        raise BadRequest("'to' is before 'from'", expression=["to"])
    if (end - start).days > 366:
        raise BadRequest("the period is at most a year", expression=["to"])
    people: dict[str, list[Admission]] = defaultdict(list)
    person_of: dict[str, str] = {}
    for adm in admissions(repository, rule, start, end, zone):
        pid = adm.patient.split("/", 1)[1]
        if pid not in person_of:
            person_of[pid] = min(identity.person_compartment(pid))
        people[person_of[pid]].append(adm)
    pairs = []
    for stays in people.values():
        stays.sort(key=lambda a: (a.admitted, a.encounter))
        for i, second in enumerate(stays):
            if not start <= second.admitted <= end or second.planned:
                continue
            # the latest discharge before the readmission, within the window, for a shared condition;
            # every earlier admission is looked at (a short stay inside a longer one was admitted
            # later but discharged earlier: stopping at it hid the longer stay's discharge, and the
            # answer depended on the period asked, money24)
            found: tuple[Admission, int, list[str]] | None = None
            for first in reversed(stays[:i]):
                if first.discharged is None or first.discharged > second.admitted:
                    continue
                gap = (second.admitted - first.discharged).days
                if gap > rule.window_days:
                    continue
                if rule.same_institution_only and first.institution != second.institution:
                    continue
                shared = sorted(first.conditions & second.conditions)
                if shared and (found is None or gap < found[1]):
                    found = (first, gap, shared)
            if found is not None:
                first, gap, shared = found
                pairs.append({"first": first.as_json(), "readmission": second.as_json(), "gap_days": gap,
                              "conditions": shared, "same_institution": first.institution == second.institution})
    pairs.sort(key=lambda p: (p["readmission"]["admitted"], p["readmission"]["encounter"]))
    return {"rule": {"window_days": rule.window_days, "classes": sorted(rule.classes), "prefix": rule.prefix,
                     "exclude": list(rule.exclude), "same_institution_only": rule.same_institution_only,
                     "file": rule.path},
            "from": start.isoformat(), "to": end.isoformat(), "count": len(pairs), "pairs": pairs}
