"""The pre-arrival summary of a referral (病人未到，病情信息先到): a FHIR ``document`` Bundle.

The Composition comes first, then every resource it cites. Its sections (``summary.yaml``) are
read from the shared record of the person across all their linked records (the identity index
gives the compartment, as ``$everything`` spans it), and the results section is split into the
results recognisable at the receiving institution on the referral's date, decided by
recognition's own rule (``engine.recognition.decision.assess``), and the others with the reason
they are not. The deductible the referred admission pays is an extension on the Composition.

Who may see what is decided by the caller's ``ScopedRepository``, as on every FHIR route: the
referral is read through it (a resident's read outside their records is the same 404 as a missing
one), and every resource the document holds is one it admits (scopes, compartment, content).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from engine.errors import BadRequest, Forbidden, Gone, NotFound
from engine.recognition.decision import Order, assess
from engine.recognition.facts import local_day, result_time
from engine.referral import deductibles as dd
from engine.referral.rules import Section
from engine.referral.service import Referrals
from engine.referral.workflow import is_referral
from engine.repository.scoped import ScopedRepository

SEARCH_CAP = 1000
DEDUCTIBLE_URL = dd.URL
RECOGNISABLE_URL = "urn:huren:fhir:extension:recognisable-at"
_NS = uuid.UUID("5d1c7f0e-6a53-4a57-9a51-4b0f9f1f2c11")
_DATES = ("effectiveDateTime", "issued", "started", "authoredOn", "recordedDate", "onsetDateTime", "dateAsserted")


@dataclass(frozen=True)
class Assessed:
    resource: dict[str, Any]
    recognisable: bool
    why_not: str | None


def _clinical_time(resource: dict[str, Any]) -> str:
    return (result_time(resource) or next((resource[k] for k in _DATES if isinstance(resource.get(k), str)), None)
            or (resource.get("meta") or {}).get("lastUpdated") or "")


def _div(text: str) -> dict[str, str]:
    safe = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{safe}</div>'}


def _key(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


class SummaryBuilder:
    def __init__(self, referrals: Referrals, base_url: str) -> None:
        self.referrals = referrals
        self.repository = referrals.repository
        self.base_url = base_url.rstrip("/")

    def build(self, sr_id: str, access: ScopedRepository) -> dict[str, Any]:
        sr = access.read("ServiceRequest", sr_id)
        if not is_referral(sr, self.referrals.rules.workflow):
            raise NotFound(f"ServiceRequest/{sr_id} is not a referral (its category names no referral code)")
        subject = (sr.get("subject") or {}).get("reference") or ""
        if not subject.startswith("Patient/"):
            raise NotFound(f"ServiceRequest/{sr_id} names no patient")
        linked = self.referrals.identity.person_compartment(subject.split("/", 1)[1])
        row = self.referrals.row(f"ServiceRequest/{sr_id}") or {}
        # the institutions are facts of the referral (read for the system, as recognition reads them)
        sending, receiving = self.referrals.endpoints(sr, self.referrals.read(row.get("task")))
        day = local_day(sr.get("authoredOn"), self.referrals.timezone(sending)) or date.today()

        included: dict[str, dict[str, Any]] = {}
        sections = [self._section(s, sr, row, linked, receiving, day, access, included)
                    for s in self.referrals.rules.sections]
        for pid in sorted(linked):
            patient = _read(access, f"Patient/{pid}")
            if patient is not None:
                included.setdefault(_key(patient), patient)
        for ref in (sr.get("requester"), *(sr.get("performer") or ())):
            target = _read(access, (ref or {}).get("reference"))
            if target is not None and target["resourceType"] in ("Organization", "Practitioner", "PractitionerRole"):
                included.setdefault(_key(target), target)
        due = self.referrals.deductible(sending, receiving)
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        composition: dict[str, Any] = {
            "resourceType": "Composition",
            "id": str(uuid.uuid5(_NS, f"ServiceRequest/{sr_id}|{now}")),
            "status": "final",
            "type": {"coding": [{"system": "http://loinc.org", "code": "57133-1", "display": "Referral note"}]},
            "subject": {"reference": subject},
            "date": now,
            "author": [sr["requester"]] if isinstance(sr.get("requester"), dict) else [{"display": "huren"}],
            "title": "转诊摘要 Referral summary",
            "event": [{"detail": [{"reference": f"ServiceRequest/{sr_id}"}]}],
            "extension": [dd.extension(due)],
            "section": sections,
        }
        bundle_id = str(uuid.uuid5(_NS, composition["id"]))
        entries = [{"fullUrl": f"{self.base_url}/Composition/{composition['id']}", "resource": composition}]
        entries += [{"fullUrl": f"{self.base_url}/{key}", "resource": res} for key, res in included.items()]
        return {"resourceType": "Bundle", "id": bundle_id, "type": "document",
                "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{bundle_id}"},
                "timestamp": now, "entry": entries}

    # -- sections ------------------------------------------------------------------------------
    def _gather(self, section: Section, linked: frozenset[str], day: date,
                access: ScopedRepository) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for rtype in section.types:
            if not access.allows(rtype, "r") or not linked:
                continue
            # the person's linked records (a query for the system, narrowed to them), each match as
            # the caller may see it; newest writes first, so a long record gives its recent part
            hits = self.repository.search(rtype, [("_count", str(SEARCH_CAP)), ("_sort", "-_lastUpdated")],
                                          compartment=linked).resources
            found += [seen for r in hits if (seen := access.admit(r)) is not None]
        if section.days is not None:
            since = (day - timedelta(days=section.days)).isoformat()
            found = [r for r in found if _clinical_time(r)[:10] >= since]
        found.sort(key=lambda r: (_clinical_time(r), _key(r)), reverse=True)
        return found[: section.limit]

    def _section(self, section: Section, sr: dict[str, Any], row: dict[str, Any], linked: frozenset[str],
                 receiving: str | None, day: date, access: ScopedRepository,
                 included: dict[str, dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"title": section.title, "code": {"coding": [section.code]}}
        if section.key == "reason":
            return self._reason(out, sr, row, access, included)
        found = self._gather(section, linked, day, access)
        for r in found:
            included.setdefault(_key(r), r)
        if not section.results:
            return self._fill(out, found, f"{len(found)} entries")
        assessed = [self._assess(r, receiving, day) for r in found]
        yes = [a.resource for a in assessed if a.recognisable]
        no = [a for a in assessed if not a.recognisable]
        where = receiving or "the receiving institution (unknown)"
        out["text"] = _div(f"{len(found)} results; {len(yes)} recognisable at {where} on {day.isoformat()}")
        out["section"] = [
            self._fill({"title": f"互认结果 Results recognisable at {where}",
                        "extension": [{"url": RECOGNISABLE_URL, "valueIdentifier": {
                            "system": "urn:huren:institution", "value": receiving or ""}}]} if receiving
                       else {"title": "互认结果 Recognisable results"},
                       yes, f"{len(yes)} results the receiving institution can recognise instead of repeating"),
            self._fill({"title": "其他结果 Other results"}, [a.resource for a in no],
                       "; ".join(f"{_key(a.resource)}: {a.why_not}" for a in no) or "none"),
        ]
        return out

    def _assess(self, resource: dict[str, Any], receiving: str | None, day: date) -> Assessed:
        recognition = self.referrals.recognition
        prior = recognition.facts.result(resource)
        if prior is None:
            return Assessed(resource, False, "not a recognition item")
        if not receiving:
            return Assessed(resource, False, "receiving institution unknown")
        order = Order(person=prior.person, item=prior.item, institution=receiving, day=day)
        why = assess(order, prior, recognition.rules)
        return Assessed(resource, why is None, why)

    def _reason(self, out: dict[str, Any], sr: dict[str, Any], row: dict[str, Any], access: ScopedRepository,
                included: dict[str, dict[str, Any]]) -> dict[str, Any]:
        entries = [sr]
        task = _read(access, row.get("task"))
        if task is not None:
            entries.append(task)
        for info in sr.get("supportingInfo") or ():  # the referral letter and what it points at
            target = _read(access, (info or {}).get("reference"))
            if target is not None:
                entries.append(target)
        for r in entries:
            included.setdefault(_key(r), r)
        reasons = [c.get("text") or ", ".join(cd.get("display") or cd.get("code", "") for cd in c.get("coding") or ())
                   for c in sr.get("reasonCode") or ()]
        notes = [n.get("text", "") for n in sr.get("note") or ()]
        text = "; ".join(t for t in reasons + notes if t) or "no reason stated"
        if row.get("state"):
            text += f" (referral {row['state']})"
        return self._fill(out, entries, text)

    @staticmethod
    def _fill(out: dict[str, Any], resources: list[dict[str, Any]], text: str) -> dict[str, Any]:
        out["text"] = out.get("text") or _div(text)
        if resources:
            out["entry"] = [{"reference": _key(r)} for r in resources]
        else:
            out["emptyReason"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                                              "code": "nilknown", "display": "Nil Known"}]}
        return out


def _read(access: ScopedRepository, ref: str | None) -> dict[str, Any] | None:
    """``ref`` as the caller may read it, or None (absent, deleted, or not theirs to see)."""
    if not ref or "/" not in ref:
        return None
    rtype, rid = ref.split("/", 1)
    try:
        return access.read(rtype, rid)
    except (NotFound, Gone, Forbidden, BadRequest):
        return None

