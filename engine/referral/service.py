"""``Referrals`` (``Engine.referrals``): two-way referral (双向转诊) over the shared repository.

A referral is a ``ServiceRequest`` with a referral category (requester: the sending institution,
performer: the receiving one) and a ``Task`` focused on it that carries the workflow. One
repository write guard and one write hook, registered like recognition's and the identity index's:

- a write guard (run by the repository before a version is stored, on every write path) keeps a
  reported remote read completed, and checks a referral Task's move from the stored version's state to the new one against ``workflow.yaml``
  and refuses a wrong one (409 with both states and what is allowed), so a PUT Task, a
  transaction Bundle and the HL7 REF/RRI path all obey the same rule, and a refused Bundle or
  message stores nothing, on every backend;
- the write hook keeps one row per referral in the ``referrals`` collection (institutions, grades, direction,
  month, state and when each state was reached, the deductible due), from which the per-month
  report is read without scanning resources; and the remote reading rows
  (``engine.referral.reading``: a reading request's Task, the centre's DiagnosticReport).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import BadRequest, Conflict, Gone, NotFound
from engine.recognition.coding import institution_from_codes
from engine.recognition.facts import local_day
from engine.referral import deductibles as dd
from engine.referral.reading import REPORTED, RemoteReading, load_reading
from engine.referral.report import ADMITTED
from engine.referral.rules import ReferralRules, load
from engine.referral.workflow import check_transition, is_referral, state_of
from engine.repository.port import Document, Store
from mappings.site import DEFAULT_ZONE

if TYPE_CHECKING:  # the collaborators' own classes; imported for the types only (they import this package's rules)
    from engine.engine import Engine
    from engine.identity.mpi import IdentityService
    from engine.recognition.service import Recognition
    from engine.repository.fhir import FhirRepository
    from mappings.site import Site

REFERRALS = "referrals"
_WATCHED = frozenset({"Task", "DiagnosticReport", "ServiceRequest"})  # what on_write acts on
REFERRAL = "referral"  # the merge rules' name for this writer (an internal one: "other")


def _ref(reference: Any) -> str | None:
    ref = reference.get("reference") if isinstance(reference, dict) else None
    return ref if isinstance(ref, str) else None


def focus_of(task: dict[str, Any]) -> str | None:
    """The ServiceRequest a Task works on: ``focus`` (360X, HL7 RF1), else the first ``basedOn``."""
    for ref in [_ref(task.get("focus"))] + [_ref(b) for b in task.get("basedOn") or ()]:
        if ref and ref.startswith("ServiceRequest/"):
            return ref
    return None


class Referrals:
    """Build with ``Referrals.for_engine(engine)``."""

    def __init__(self, *, store: Store, repository: FhirRepository, recognition: Recognition,
                 identity: IdentityService, site: Callable[[], Site], site_dir: Path | None = None) -> None:
        self.store = store
        self.repository = repository
        self.recognition = recognition
        self.identity = identity
        self._site = site
        self._site_dir = site_dir
        self._lock = threading.Lock()
        self._rules = load(site_dir)
        self.reading = RemoteReading(store, self.read, self.institution, load_reading(site_dir),
                                     lambda task: repository.update(task, source=REFERRAL))
        self.rows = store.collection(REFERRALS)
        for fields in (["month"], ["from", "month"], ["to", "month"], ["task"], ["admitted"]):
            self.rows.ensure_index(fields)
        # the types each one acts on (the repository calls it for those alone)
        repository.add_write_guard(self.guard, types={"Task", "ServiceRequest"})
        repository.add_batch_hook(self.on_write_many)
        repository.add_mark(self.mark_deductible, types={"ServiceRequest"})

    @classmethod
    def for_engine(cls, engine: Engine) -> Referrals:
        return cls(store=engine.store, repository=engine.repository, recognition=engine.recognition,
                   identity=engine.identity, site=lambda: engine.site, site_dir=engine.settings.site)

    @property
    def rules(self) -> ReferralRules:
        return self._rules

    def reload(self) -> ReferralRules:
        """Re-read the referral files; on a mistake the running rules stay and the SiteError propagates."""
        with self._lock:
            rules, reading = load(self._site_dir), load_reading(self._site_dir)
            self._rules, self.reading.rules = rules, reading
            return self._rules

    # -- reading -------------------------------------------------------------------------------
    def read(self, ref: str | None) -> dict[str, Any] | None:
        if not ref or "/" not in ref:
            return None
        rtype, rid = ref.split("/", 1)
        try:
            return self.repository.read(rtype, rid)
        except (NotFound, Gone, BadRequest):  # absent, deleted, or not a reference huren can follow
            return None

    def institution(self, reference: Any) -> str | None:
        """The institution code of an Organization reference (logical identifier or stored Organization)."""
        if not isinstance(reference, dict):
            return None
        return self.recognition.facts.organization_code(reference)

    def site_grade(self, code: str) -> str | None:
        inst = self._site().institutions.get(code)
        return getattr(inst, "grade", None) if inst is not None else None

    def timezone(self, code: str | None) -> str:
        inst = self._site().institutions.get(code or "")
        return getattr(inst, "timezone", None) or DEFAULT_ZONE

    def grade(self, code: str | None) -> str | None:
        return dd.grade_of(code, self._rules.deductibles, self.site_grade)

    def deductible(self, from_code: str | None, to_code: str | None) -> dd.Deductible:
        return dd.compute(from_code, to_code, self.grade(from_code), self.grade(to_code), self._rules.deductibles)

    def row(self, service_request_ref: str) -> Document | None:
        return self.rows.get(service_request_ref)

    # -- the deductible on the referral ------------------------------------------------------------
    def mark_deductible(self, resource: dict[str, Any]) -> dict[str, Any]:
        """A referral ServiceRequest about to be stored carries the deductible its admission pays
        (extension ``deductibles.URL``), computed here from the two institutions and the data file:
        the server owns that extension (a writer's own copy of it is replaced), and every reader of
        the referral, the resident included, sees the figure the insurer's report sums."""
        if resource.get("resourceType") != "ServiceRequest" or not is_referral(resource, self._rules.workflow):
            return resource
        row = self.rows.get(f"ServiceRequest/{resource.get('id')}") or {}
        return self._with_deductible(resource, self.read(row.get("task")))

    def _with_deductible(self, resource: dict[str, Any], task: dict[str, Any] | None) -> dict[str, Any]:
        sending, receiving = self.endpoints(resource, task)
        mark = dd.extension(self.deductible(sending, receiving))
        kept = [e for e in resource.get("extension") or () if not (isinstance(e, dict) and e.get("url") == dd.URL)]
        if kept + [mark] == resource.get("extension"):
            return resource
        return {**resource, "extension": kept + [mark]}

    # -- the workflow guard and the write hook ----------------------------------------------------
    def _pending(self, ref: str | None) -> dict[str, Any] | None:
        """``ref`` as an earlier entry of the Bundle being written holds it (not stored yet)."""
        found = None
        for stored, _ in self.repository.pending():
            if ref == f"{stored['resourceType']}/{stored['id']}":
                found = stored
        return found

    def referral_task(self, task: dict[str, Any]) -> tuple[str | None, bool]:
        """The Task's focus and whether it carries a referral: its focus is a referral ServiceRequest
        (stored, or written earlier in the same Bundle), or its businessStatus is a referral state."""
        sr_ref = focus_of(task)
        if is_referral(self._pending(sr_ref) or self.read(sr_ref), self._rules.workflow):
            return sr_ref, True
        system = self._rules.workflow.business_system
        return sr_ref, any(c.get("system") == system for c in (task.get("businessStatus") or {}).get("coding") or ())

    def guard(self, resource: dict[str, Any], previous: dict[str, Any] | None) -> None:
        """Before a referral Task's new version is stored: is the move allowed? (409 when not).

        Inside a transaction Bundle nothing is stored until every entry passed its guard, so a
        Task is judged with its ServiceRequest whichever comes first: the Task's guard finds the
        request among the Bundle's earlier entries, and a referral request's guard judges the
        Tasks on it that came before it (they could not know they were a referral's)."""
        rtype = resource.get("resourceType")
        if rtype == "Task" and previous is not None and previous.get("status") == "completed" \
                and resource.get("status") not in ("completed", "entered-in-error") and self.reading.is_request(previous):
            raise Conflict(f"Task/{resource.get('id')}: the remote read is reported (completed); it cannot become "
                           f"{resource.get('status')} (only entered-in-error)", expression=["Task.status"])
        if rtype == "Task" and self.referral_task(resource)[1]:
            check_transition(previous, resource, self._rules.workflow)
        elif rtype == "ServiceRequest" and is_referral(resource, self._rules.workflow):
            ref = f"ServiceRequest/{resource['id']}"
            for task, before in self.repository.pending():
                if task["resourceType"] == "Task" and focus_of(task) == ref:
                    check_transition(before, task, self._rules.workflow)

    @contextmanager
    def batch(self, resources: Sequence[dict[str, Any]], planned: Mapping[str, Any] | None = None) -> Iterator[None]:
        """The writes of one ingest batch: the remote-reading rows its reports will ask for, read
        in one query and kept until it ends (``RemoteReading.batch``). (``planned``, what the
        converter built from compiled plans, is of no use here.)"""
        orders = [str(based["reference"]) for r in resources
                  if r.get("resourceType") == "DiagnosticReport" and r.get("status") in REPORTED
                  for based in r.get("basedOn") or () if isinstance(based, dict)
                  and str(based.get("reference") or "").startswith("ServiceRequest/")]
        with self.reading.batch(orders):
            yield

    def on_write_many(self, writes: Sequence[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[list[dict[str, Any]]]:
        """The write hook, once for the versions a write group stored (a message, a Bundle), in
        write order: a message's ~20 resources are one call, of which only its Tasks, reports and
        orders are looked at (a call per resource cost more than most of them need)."""
        return [self.on_write(resource, previous) if resource.get("resourceType") in _WATCHED else []
                for resource, previous in writes]

    def on_write(self, resource: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        rtype = resource.get("resourceType")
        if rtype == "Task":
            self._on_task(resource, previous)
            if self.reading.is_request(resource):
                self.reading.on_task(resource, focus_of(resource))
        elif rtype == "DiagnosticReport" and resource.get("basedOn"):
            self.reading.on_report(resource)
        elif rtype == "ServiceRequest" and (is_referral(resource, self._rules.workflow)
                                            or is_referral(previous, self._rules.workflow)):
            self._on_referral(resource)  # an order that stops being a referral keeps its row, with its status
        return []

    def endpoints(self, sr: dict[str, Any], task: dict[str, Any] | None) -> tuple[str | None, str | None]:
        """(sending, receiving) institution codes: the ServiceRequest's requester and performer
        Organizations, else the Task's; an HL7 referral names Practitioners, but its local codes
        (urn:huren:code:<INSTITUTION>) say who sent it, and the receiving side names itself as the
        Task's owner when it accepts."""
        sending = self.institution(sr.get("requester")) or institution_from_codes(sr, self.recognition.rules)
        receiving = next((c for c in (self.institution(p) for p in sr.get("performer") or ()) if c), None)
        if task is not None:
            sending = sending or self.institution(task.get("requester"))
            receiving = receiving or self.institution(task.get("owner"))
        return sending, receiving

    def _on_referral(self, sr: dict[str, Any], task: dict[str, Any] | None = None) -> Document:
        ref = f"ServiceRequest/{sr['id']}"
        existing = self.rows.get(ref) or {}
        if task is None and existing.get("task"):
            task = self.read(existing["task"])
        sending, receiving = self.endpoints(sr, task)
        due = self.deductible(sending, receiving)
        day = (local_day(sr.get("authoredOn"), self.timezone(sending))
               or local_day((sr.get("meta") or {}).get("lastUpdated"), self.timezone(sending)) or date.today())
        subject = _ref(sr.get("subject"))
        row: Document = {
            "_id": ref, "patient": subject, "from": sending, "to": receiving,
            "from_grade": self.grade(sending), "to_grade": self.grade(receiving), "direction": due.direction,
            "day": day.isoformat(), "month": day.isoformat()[:7], "status": sr.get("status"),
            "state": existing.get("state"), "task": existing.get("task"), "at": existing.get("at") or {},
            "deductible": {"rule": due.rule, "due": _text(due.due), "sending": _text(due.sending),
                           "receiving": _text(due.receiving)},
        }
        admitted = _kept_admitted(existing) or self._admitted(row["at"], receiving)
        if admitted is not None:
            row["admitted"] = admitted
        if row != existing:
            self.rows.replace(row)
        return row

    def _admitted(self, at: Mapping[str, Any], receiving: str | None) -> str | None:
        """The month (``YYYY-MM``) the referred patient was admitted: the first time huren stored the
        Task in an admitted state (``report.ADMITTED``: arrived, or a later one when the arrival was
        never stated), read in the receiving institution's zone. The referral report counts the
        deductible in that month, not the month the referral was written: an arrival in December of a
        referral written in November is December's admission, and a month already reported is never
        rewritten by a later move (review of money25). huren's own clock, not a time the sender writes:
        no message can date an admission into a month that closed. None before the patient arrived."""
        times = [at[state] for state in ADMITTED if isinstance(at.get(state), str)]
        day = local_day(min(times), self.timezone(receiving)) if times else None
        return day.isoformat()[:7] if day is not None else None

    def _on_task(self, task: dict[str, Any], previous: dict[str, Any] | None) -> None:
        sr_ref, referral = self.referral_task(task)
        sr = self.read(sr_ref) if referral else None
        if sr is None or not is_referral(sr, self._rules.workflow):
            return
        # the guard checked every move it could see; a Task created in the same Bundle as its
        # ServiceRequest, with no referral businessStatus, is first known to be one here
        state = check_transition(None, task, self._rules.workflow) if previous is None else \
            state_of(task, self._rules.workflow, previous)
        row = self._on_referral(sr, task)
        at = dict(row.get("at") or {})
        at.setdefault(state.name, task["meta"]["lastUpdated"])  # when huren stored the move
        updated = {**row, "task": f"Task/{task['id']}", "state": state.name, "at": at}
        admitted = row.get("admitted") or self._admitted(at, row.get("to"))
        if admitted is not None:
            updated["admitted"] = admitted
        if updated != row:
            self.rows.replace(updated)
        # when the Task names the receiving institution the request leaves open, the deductible shown
        # on the request follows (a new version of it, written by the server)
        marked = self._with_deductible(sr, task)
        if marked is not sr:
            self.repository.update({k: v for k, v in marked.items() if k != "meta"}, source=REFERRAL)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _kept_admitted(existing: Mapping[str, Any]) -> str | None:
    """The month a stored row's deductible already counts in, which no later move changes: its
    ``admitted``; for a row stored admitted before moneyfix25 (no ``admitted``), the month it was
    written, where the report counted it -- a later move recomputed the month from the old arrival
    time and rewrote a month already reported (second review, moneyfix25b). None: not admitted yet."""
    if isinstance(existing.get("admitted"), str):
        return existing["admitted"]
    if existing.get("state") in ADMITTED and isinstance(existing.get("month"), str):
        return existing["month"]
    return None
