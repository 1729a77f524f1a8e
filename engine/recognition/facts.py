"""Turning stored FHIR resources into the plain facts the decision needs.

Dates are the institution's local calendar day (DOMAIN.md windows are in days): an instant with an
offset is moved to the institution's time zone first, a date-time without one is taken as local.
The person is the validated national resident ID (identifier type NNCHN) on the Patient the
resource's subject references — never an MRN, which does not cross institutions.
"""

from __future__ import annotations

import copy
import operator
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

# the person: the one national-ID rule (a Patient's first valid NNCHN number), re-exported for callers here
from engine.identity.nationalid import patient_number as national_id
from engine.merge_rules import ideographic
from engine.recognition.coding import analytes_for, institution_from_codes, item_for
from engine.recognition.decision import Order, PriorResult
from engine.recognition.rules import Rules
from engine.wards import OUTSIDE_AT, department, place_ward, ward_key_of
from mappings.site import DEFAULT_ZONE

ORG_SYSTEM = "urn:huren:institution"
# an Organization an HL7 result names as its performer (OBX-23) that is no member institution
# (``adapters.convert.actors.performing_organization``): the institution read for it is this prefix and
# the identifier's value, which no QC record names (qc-not-passed: QC unknown)
PERFORMING_SYSTEM = "urn:huren:performing-organization"
UNKNOWN_PERFORMER = "unknown-performer:"
# a member institution an OBX-23 names that the site does not declare as performing the sender's
# results (senders.yaml ``performers``): the value "<sender>|<member>"; read as this prefix and the
# value, which no QC record names -- a sender cannot lend itself another member's QC (convfix28)
UNDECLARED_SYSTEM = "urn:huren:undeclared-performer"
UNDECLARED_PERFORMER = "performer-not-declared-for-sender:"
RESULT_TYPES = frozenset({"DiagnosticReport", "Observation", "ImagingStudy"})
ORDER_TYPE = "ServiceRequest"
# A result with one of these statuses no longer stands for a performed test.
VOID_STATUSES = frozenset({"cancelled", "entered-in-error"})

Reader = Callable[[str, str], dict[str, Any] | None]

# Result types whose (institution, item) follow from their codings and performers alone (an
# ImagingStudy's item also reads its series' modalities and body sites)
_CODED_TYPES = frozenset({"Observation", "DiagnosticReport"})
# what the facts of an order are read from (``FactReader.order``; its Patient's managing
# organisation too when nothing else names the institution: such an order is not remembered)
_ORDER_READS = ("code", "resourceType", "id", "requester", "performer", "subject", "patient", "authoredOn",
                "occurrenceDateTime", "occurrencePeriod", "reasonCode")
# every element of a ServiceRequest the recognition reads of an order: its facts (``FactReader.order``: the codes,
# requester and performer, subject, times and re-test reasons; ``bodySite`` for an imaging item), who and where
# ordered it (``FactReader.orderer``: requester, encounter, locationCode, locationReference) and its placer numbers
# (``placer_numbers``: identifier). A CDS hook's draft order is checked in these alone (``engine.api.cds``)
ORDER_ELEMENTS = ("code", "requester", "performer", "subject", "authoredOn", "occurrenceDateTime", "occurrencePeriod",
                  "reasonCode", "bodySite", "encounter", "locationCode", "locationReference", "identifier")
# what the facts of a result are read from (``FactReader.result``), ``code`` first: a result's
# facts are remembered by these very objects
_RESULT_READS = ("code", "resourceType", "id", "performer", "subject", "patient", "basedOn", "status",
                 "effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued", "started", "series",
                 "result")
_CODED_KEPT = 20_000  # distinct (type, codings, performers) remembered; beyond it the table starts again
_PERSONS_KEPT = 1024  # Patient versions whose national ID was read lately, by identity
_PLANS_KEPT = 8192  # compiled converter plans whose results' (institution, item) is remembered
_RECENT_KEPT = 8192  # results classified lately (an ingest batch's, up to 200 messages), by the identity of their code and performers


class Planned(Protocol):
    """What the converter knows of a resource it built from a compiled plan
    (``adapters.convert.plans.Planned``): the plan, one object for every result of one test
    description at one site -- the same codes, the same performer."""

    @property
    def plan(self) -> Hashable: ...


def local_day(value: str | None, tz: str) -> date | None:
    """The calendar day of a FHIR date / dateTime / instant at the institution."""
    return _time(value, tz)[0] if value else None


def local_today(tz: str) -> date:
    """Today at the institution (its time zone), not on the server's clock: a server kept in UTC
    is a day behind Asia/Shanghai from 00:00 to 08:00 there."""
    return datetime.now(ZoneInfo(tz)).date()


def local_instant(value: str | None, tz: str) -> str | None:
    """The instant of a FHIR dateTime / instant that states a time of day, in UTC as
    ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (one fixed width, so instants compare as text); None for a
    date alone (``2026-03-01``, ``2026-03``: no hour was sent) or what is no FHIR date.

    Why: the decision's "O's date minus R's date" is in days, so of two results of one day each
    was the other's prior -- a morning result that reached huren after the afternoon's was
    flagged as its repeat. With the time sent, a result taken after the order was placed is
    not its prior (``decision.assess``); a date alone stays as it was, same day = age 0."""
    return _time(value, tz)[1] if value else None


def _time(value: Any, tz: str) -> tuple[date | None, str | None]:
    """(``local_day``, ``local_instant``) of one value, from one parse, remembered per (value,
    zone): the results of a message share their times (the mark and the hook each ask for every
    result, the day and the instant alike), and each answer is a parse and a zone conversion."""
    try:
        return _local_time(value, tz)
    except TypeError:  # not hashable: not a FHIR date, read as always
        return _read_time(value, tz)


def _read_time(value: Any, tz: str) -> tuple[date | None, str | None]:
    text = str(value)
    if len(text) <= 10:
        parts = text.split("-")
        try:
            return date(int(parts[0]), int(parts[1]) if len(parts) > 1 else 1,
                        int(parts[2]) if len(parts) > 2 else 1), None
        except (ValueError, IndexError):
            return None, None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None, None
    zone = ZoneInfo(tz)
    # a time without an offset is the institution's local time
    try:
        local = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
    except OverflowError:  # past the calendar in the zone (9999-12-31T20:00Z is year 10000 in Funing):
        local = moment  # the day as written, the nearest there is (it was an OverflowError: a 500)
    if "T" not in text:
        return local.date(), None
    try:
        instant = local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except OverflowError:  # 0001-01-01T02:00+08:00 is year 0 in UTC: the calendar's first (or last) instant
        instant = _FIRST_INSTANT if local.year == 1 else _LAST_INSTANT
    return local.date(), instant


_FIRST_INSTANT = "0001-01-01T00:00:00.000000Z"
_LAST_INSTANT = "9999-12-31T23:59:59.999999Z"


_local_time = lru_cache(maxsize=4096)(_read_time)


def result_time(resource: dict[str, Any]) -> str | None:
    if resource.get("resourceType") == "ImagingStudy":
        return resource.get("started")
    period = resource.get("effectivePeriod") or {}
    return (resource.get("effectiveDateTime") or resource.get("effectiveInstant") or period.get("start")
            or resource.get("issued"))


def _coded_key(resource: dict[str, Any], rules: Rules) -> tuple[Any, ...] | None:
    """What a lab result's institution and item are read from, as a key; None for any other shape
    (an unhashable value makes the caller's lookup fail, and it then computes the answer)."""
    code = resource.get("code")
    codings = code.get("coding") if type(code) is dict else None
    if type(codings) is not list:
        return None
    try:
        coded = tuple([(c.get("system"), c.get("code")) for c in codings])
        performers = tuple([(p.get("reference"), (p.get("identifier") or {}).get("system"),
                             (p.get("identifier") or {}).get("value")) for p in resource.get("performer") or ()])
    except AttributeError:  # a coding or performer that is not an object
        return None
    imaging = (rules.codes.modality_system, rules.codes.price_system)
    if any(system in imaging for system, _ in coded):
        return None
    return resource["resourceType"], coded, performers


def order_time(resource: dict[str, Any]) -> str | None:
    period = resource.get("occurrencePeriod") or {}
    return resource.get("authoredOn") or resource.get("occurrenceDateTime") or period.get("start")


def ref_of(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def performer_institutions(resource: dict[str, Any]) -> list[str]:
    """The institutions a result's performer references name by their identifier, in order, each
    once: a member's code, or the unknown / undeclared performer read (no QC record names it)."""
    out: list[str] = []
    for r in _refs(resource.get("performer")):
        ident = r.get("identifier") or {}
        system, value = ident.get("system"), ident.get("value")
        if not value:
            continue
        if system == ORG_SYSTEM:
            name = str(value)
        elif system == PERFORMING_SYSTEM:
            name = UNKNOWN_PERFORMER + str(value)
        elif system == UNDECLARED_SYSTEM:
            name = UNDECLARED_PERFORMER + str(value)
        else:
            continue
        if name not in out:
            out.append(name)
    return out


def _refs(values: Iterable[Any] | None) -> list[dict[str, Any]]:
    return [v for v in values or () if isinstance(v, dict)]


class _Answers:
    """The classifications remembered under one rules object (a reload starts them again)."""

    def __init__(self) -> None:
        self.rules: Rules | None = None
        self.coded: dict[tuple[Any, ...], tuple[str | None, str | None]] = {}
        self.plans: dict[Hashable, tuple[str | None, str | None]] = {}

    def under(self, rules: Rules) -> _Answers:
        if self.rules is not rules:
            self.coded, self.plans, self.rules = {}, {}, rules
        return self


class Merges(Protocol):
    """What the person of a merged-away record is asked of (``engine.identity.mpi.IdentityService``)."""

    def record(self, patient_id: str) -> dict[str, Any] | None: ...

    def person_compartment(self, patient_id: str) -> frozenset[str]: ...


def merged_away(patient: dict[str, Any]) -> bool:
    """Does the record say it was merged into another (``Patient.link`` ``replaced-by``, which the
    patient index writes)? Only a hint, so that no other record asks the index: the index decides."""
    return any(isinstance(link, dict) and link.get("type") == "replaced-by" for link in patient.get("link") or ())


class FactReader:
    """Reads what the facts need from storage (Patient, Organization), with a small cache of the
    organisations, which are few and never change institution."""

    def __init__(self, read: Reader, rules: Callable[[], Rules],
                 same_person: Callable[[dict[str, Any], str], str | None] | None = None,
                 merges: Merges | None = None) -> None:
        self._read = read
        self._rules = rules
        # the patient index's "same person" (``IdentityService.same_person_number``): the record's
        # ID number only while the index has it linked to that number's person (None without an index)
        self._same_person = same_person
        # the patient index's merges: whose a record merged away with no ID number of its own is
        # (``merged_person``); None without an index
        self._merges = merges
        self._org_codes: dict[str, str | None] = {}
        # (type, codings, performers) -> (institution, item), and compiled converter plan ->
        # (institution, item), under one rules object; shared with the readers ``reading`` makes
        self._answers = _Answers()
        # per thread: id(code) -> (code, performers, type, rules, answer), see ``classify``
        self._recent = threading.local()

    def reading(self, read: Reader) -> FactReader:
        """The same reader over other resources (``read``), sharing what it remembers: the facts
        of resources not stored yet, read from the batch that is about to store them."""
        other = copy.copy(self)
        other._read = read
        # keyed by the number: the index has not classified these records yet (a preview's hint;
        # the hook reads each fact's person again, from the index)
        other._same_person = None
        other._merges = None
        return other

    # -- one classification per test ------------------------------------------------------
    def classify(self, resource: dict[str, Any], *, marked: bool = False) -> tuple[str | None, str | None]:
        """(institution, item) of a result: what the HR mark and the write hook both need.

        Why remembered: a lab sends the same few dozen tests over and over, and the mark and the
        hook each read every result's codings against the rules and its performer's
        Organization -- about a third of the hook's work for a 12-OBX report. Under the same
        rules the answer for the same codings and performers is the same (an Organization's
        institution is remembered for good already, ``organization_code``), so it is kept by
        them. Only shapes whose answer depends on nothing else are kept: a lab result or report
        whose codings carry no modality or price code (those reach the imaging rules, which read
        the body site too); an unknown institution is not kept (its Organization may be stored
        in the meantime).

        ``marked``: the write hook asks for a stored version, which the mark classified a moment
        before it was stored: the stored version holds the very ``code`` and ``performer``
        objects the mark was handed (the repository makes a new version as a new dict over
        them), so the mark's answer is taken by their identity -- a lookup instead of the key
        above. The mark reads the codings (a caller may have changed them in place since an
        earlier write) and leaves its answer for the hook; an id is not reused while the object
        it names lives, and the answers hold theirs. Inside an ingest batch the mark asks
        ``marked`` too: the batch's preview classified the very objects it is handed a moment
        before (``Recognition.batch``), so each result is classified once."""
        rules = self._rules()
        rtype = resource.get("resourceType")
        code, performers = resource.get("code"), resource.get("performer")
        recent = getattr(self._recent, "answers", None)
        if recent is None:
            recent = self._recent.answers = {}
        if marked and code is not None:
            seen = recent.get(id(code))
            if seen is not None and seen[0] is code and seen[1] is performers and seen[2] == rtype and seen[3] is rules:
                return seen[4]
        answer, kept = self._classify(resource, rtype, rules)
        if kept:  # what the table below keeps, by identity too
            if len(recent) >= _RECENT_KEPT:
                recent.clear()
            recent[id(code)] = (code, performers, rtype, rules, answer)
        return answer

    def classify_planned(self, resource: dict[str, Any], plan: Hashable) -> tuple[str | None, str | None]:
        """``classify`` for a result the converter built from the compiled ``plan``: one lookup.

        Why: every result of one plan has the same codings and performer (the plan's key is made
        of them), so their (institution, item) is one answer under the same rules; the key
        ``classify`` builds from the codings and performers (a tuple walk, about half of what the
        batch preview spent per result) is not needed. The answer is left for the HR mark and the
        write hook by the identity of the very coding objects, as ``classify`` leaves it; it is
        kept by plan only when ``classify`` would keep it by codings."""
        rules = self._rules()
        plans = self._answers.under(rules).plans
        answer = plans.get(plan)
        if answer is None:
            answer, kept = self._classify(resource, resource.get("resourceType"), rules)
            if not kept:
                return answer
            if len(plans) >= _PLANS_KEPT:
                plans.clear()
            plans[plan] = answer
        recent = getattr(self._recent, "answers", None)
        if recent is None:
            recent = self._recent.answers = {}
        elif len(recent) >= _RECENT_KEPT:
            recent.clear()
        code = resource.get("code")
        recent[id(code)] = (code, resource.get("performer"), resource.get("resourceType"), rules, answer)
        return answer

    def planned_answer(self, resource: dict[str, Any], plan: Hashable) -> tuple[str | None, str | None] | None:
        """(institution, item) of the results of the compiled ``plan``, when it is kept by plan
        (``classify_planned``; computed and kept now if it was not); None when it is not kept
        (an unknown institution: each result is classified on its own)."""
        rules = self._rules()
        plans = self._answers.under(rules).plans
        answer = plans.get(plan)
        if answer is None:
            self.classify_planned(resource, plan)
            answer = plans.get(plan)
        return answer

    def _classify(self, resource: dict[str, Any], rtype: Any, rules: Rules
                  ) -> tuple[tuple[str | None, str | None], bool]:
        """The answer, and whether it is kept by codings and performers."""
        key = _coded_key(resource, rules) if rtype in _CODED_TYPES else None
        if key is not None:
            coded = self._answers.under(rules).coded
            try:
                hit = coded.get(key)
            except TypeError:  # an unhashable value somewhere in the codings
                key, hit = None, None
            if hit is not None:
                return hit, True
        inst = self.institution(resource)
        item = item_for(resource, rules, inst) if inst else None
        if key is not None and inst is not None:
            if len(coded) >= _CODED_KEPT:
                coded.clear()
            coded[key] = (inst, item)
            return (inst, item), True
        return (inst, item), False

    def remember_organization(self, org: dict[str, Any]) -> None:
        """Note an institution's Organization as it is written, before it can be read back."""
        code = next((str(i["value"]) for i in org.get("identifier") or ()
                     if isinstance(i, dict) and i.get("system") == ORG_SYSTEM and i.get("value")), None)
        if code and org.get("id"):
            self._org_codes[f"Organization/{org['id']}"] = code

    # -- identity ------------------------------------------------------------------------
    def patient_ref(self, resource: dict[str, Any]) -> str | None:
        subject = resource.get("subject") or resource.get("patient") or {}
        ref = subject.get("reference") if isinstance(subject, dict) else None
        return ref if isinstance(ref, str) and ref.startswith("Patient/") else None

    def person(self, patient_ref: str | None) -> str | None:
        """The person of the referenced Patient (``person_of``)."""
        if not patient_ref:
            return None
        patient = self._read("Patient", patient_ref.split("/", 1)[1])
        if patient is None:
            return None
        return self.person_of(patient)

    def person_of(self, patient: dict[str, Any]) -> str | None:
        """The national ID a Patient record's results and orders are keyed by: its valid number,
        while the patient index has the record linked to that number's person.

        Why the index: it alone decides "same person" (DOMAIN.md: the number, with name, sex and
        birth date as consistency checks). A son registered under his father's number is left in
        ``conflict``; keyed by the number alone, his blood count was flagged a not-payable repeat
        of his father's and his hospital was shown the father's result (seventeenth round). A
        record in conflict, unlinked by an operator, or linked by hand to another person is keyed
        by nobody: no recognition across records (a wrong answer is worse than none). The number
        is remembered by the very Patient version; the index is asked each time (an operator's
        ``$unlink`` changes its entry without a new version)."""
        number = self.number(patient)
        if self._same_person is None:
            return number
        if number is None:
            return self.merged_person(patient) if self._merges is not None and merged_away(patient) else None
        return self._same_person(patient, number)

    def merged_person(self, patient: dict[str, Any]) -> str | None:
        """The number a record merged away with no ID number of its own is keyed by: the one that
        stands for the person of its compartment (``IdentityService.person_compartment``: the
        records of one person, merges followed, never into a second person or ID number), read
        from a record of it the index has linked (``same_person_number``) -- the record it was
        merged into first. None when the index no longer holds it merged away (an operator undid
        the merge) or its compartment has no record linked to a number's person.

        Why: an MRN-only record a desk merged into the resident's identified record (ADT^A40)
        kept its results keyed by nobody, so a blood count done under it was never recognisable
        for the resident and its repeat at another hospital was never flagged (probepay26).
        The index is asked each time, as for any record (an operator's ``$unlink`` changes it
        without a new version of this record)."""
        if self._merges is None or self._same_person is None:
            return None
        pid = patient.get("id")
        entry = self._merges.record(pid) if isinstance(pid, str) else None
        survivor = (entry or {}).get("replaced_by")
        if not survivor:
            return None
        for other in sorted(self._merges.person_compartment(pid) - {pid}, key=lambda o: (o != survivor, o)):
            member = self._merges.record(other)
            if member is None or member.get("status") != "linked":
                continue
            found = self._read("Patient", other)
            number = self.number(found) if found is not None else None
            kept = self._same_person(found, number) if found is not None and number is not None else None
            if kept is not None:
                return kept
        return None

    def number(self, patient: dict[str, Any]) -> str | None:
        """The Patient's valid national ID, remembered by the very version read (a write group's
        order and each of its results ask for the same one, several times)."""
        persons = getattr(self._recent, "persons", None)
        if persons is None or len(persons) >= _PERSONS_KEPT:
            persons = self._recent.persons = {}
        seen = persons.get(id(patient))
        if seen is not None and seen[0] is patient:
            return seen[1]
        number = national_id(patient)
        persons[id(patient)] = (patient, number)  # held: its id is not reused while remembered
        return number

    def merged_records(self, patient: dict[str, Any]) -> list[str]:
        """The ids of the records merged away into ``patient``'s person, as the patient index
        holds them (its compartment's records with a ``replaced_by``), for a record that says it
        replaced others (``Patient.link`` ``replaces``); [] otherwise or without an index. Their
        results are keyed by this record's person (``merged_person``): when it changes, so must
        theirs."""
        pid = patient.get("id")
        if self._merges is None or not isinstance(pid, str) or not any(
                isinstance(link, dict) and link.get("type") == "replaces" for link in patient.get("link") or ()):
            return []
        return sorted(other for other in self._merges.person_compartment(pid) - {pid}
                      if ((self._merges.record(other) or {}).get("replaced_by")))

    # -- institution ---------------------------------------------------------------------
    def organization_code(self, reference: dict[str, Any]) -> str | None:
        ident = reference.get("identifier") or {}
        if ident.get("system") == ORG_SYSTEM and ident.get("value"):
            return str(ident["value"])
        ref = reference.get("reference")
        if not isinstance(ref, str) or not ref.startswith("Organization/"):
            return None
        if ref not in self._org_codes:
            org = self._read("Organization", ref.split("/", 1)[1]) or {}
            code = next((str(i["value"]) for i in org.get("identifier") or ()
                         if i.get("system") == ORG_SYSTEM and i.get("value")), None)
            if code is None:
                return None  # not cached: the Organization may arrive later in the same feed
            self._org_codes[ref] = code
        return self._org_codes[ref]

    def institution(self, resource: dict[str, Any]) -> str | None:
        """The issuing institution of a result (performer) or the ordering one of an order (requester).

        The converters write local codes in ``urn:huren:code:<INSTITUTION>`` and reference the
        institution's Organization; FHIR clients may only send the Organization reference.
        """
        return self._institution(resource)[0]

    def _institution(self, resource: dict[str, Any]) -> tuple[str | None, bool]:
        """``institution``, and whether it came from the order's Patient (its managing organisation)."""
        rtype = resource.get("resourceType")
        if rtype != ORDER_TYPE:
            # the organisation that performed the test (OBX-23), when the converter named it: its QC
            # counts, not the sender's (DOMAIN.md); one huren does not know reads as an institution
            # without QC, so the result is never recognisable (a wrong "recognisable" costs money)
            named = performer_institutions(resource)
            if named:
                return named[0], False
        from_codes = institution_from_codes(resource, self._rules())
        if from_codes:
            return from_codes, False
        refs = _refs([resource.get("requester")]) if rtype == ORDER_TYPE else []
        refs += _refs(resource.get("performer"))
        if rtype == "ImagingStudy":  # no performer of its own: the series' performers
            for series in resource.get("series") or ():
                for p in series.get("performer") or ():
                    refs += _refs([p.get("actor")])
        for r in refs:
            code = self.organization_code(r)
            if code:
                return code, False
        # an order coded only in LOINC whose doctor is a Practitioner: the institution whose patient
        # record it was placed on (Patient.managingOrganization)
        if rtype == ORDER_TYPE:
            patient = self.patient_ref(resource)
            found = self._read("Patient", patient.split("/", 1)[1]) if patient else None
            managing = (found or {}).get("managingOrganization")
            if isinstance(managing, dict):
                return self.organization_code(managing), True
        return None, False

    # -- facts ---------------------------------------------------------------------------
    def result(self, resource: dict[str, Any], *, batch: bool = False) -> PriorResult | None:
        """Facts of a stored result, or None when it is not for a recognition item or has no date.

        ``batch``: inside an ingest batch (``Recognition.batch``), the facts of a recognition
        item are remembered by the very objects they were read from (``_RESULT_READS``): the
        batch's preview reads them from the converted resource, and the write hook is handed
        the stored version, a new dict over the same values a moment later, so it takes them
        instead of reading the day, the order and the analytes again. Only the person is read
        again: it comes from the Patient version read now (the stored one may be a merged
        record). ``forget_results`` ends it with the batch."""
        rules = self._rules()
        inst, item = self.classify(resource, marked=True)
        if item is None or inst is None:
            return None
        reads: tuple[Any, ...] = ()
        if batch and resource.get("code") is not None:
            seen = self._recent_results()
            reads = tuple(map(resource.get, _RESULT_READS))
            kept = seen.get(id(reads[0]))
            if kept is not None and kept[1] is rules and len(kept[0]) == len(reads) \
                    and all(map(operator.is_, kept[0], reads)) and kept[2].item == item and kept[2].institution == inst:
                facts = kept[2]
                person = self.person(facts.patient)
                return facts if person == facts.person else replace(facts, person=person)
        tz = rules.institutions[inst].timezone if inst in rules.institutions else DEFAULT_ZONE
        when = result_time(resource)
        day = local_day(when, tz)
        if day is None:
            return None
        # a report several organisations performed (OBX-23 per result) is recognisable as a whole
        # only if every one of them qualifies: read as the first performer that did not pass QC
        for other in performer_institutions(resource)[1:]:
            if other != inst and not rules.qc_passed(other, item, day):
                inst = other
                break
        patient = self.patient_ref(resource)
        order = next((r["reference"] for r in _refs(resource.get("basedOn"))
                      if str(r.get("reference", "")).startswith("ServiceRequest/")), None)
        facts = PriorResult(ref=ref_of(resource), person=self.person(patient), item=item, institution=inst,
                            day=day, status=str(resource.get("status") or "unknown"), patient=patient, order=order,
                            analytes=analytes_for(resource, rules, item, inst),
                            at=local_instant(when, tz), results=_report_results(resource))
        if reads:
            seen = self._recent_results()
            if len(seen) >= _RECENT_KEPT:
                seen.clear()
            seen[id(reads[0])] = (reads, rules, facts)  # held: the ids are not reused while remembered
        return facts

    def _recent_results(self) -> dict[int, tuple[tuple[Any, ...], Rules, Any]]:
        seen = getattr(self._recent, "results", None)
        if seen is None:
            seen = self._recent.results = {}
        return seen

    def forget_results(self) -> None:
        """End what ``result`` and ``order`` remembered with ``batch`` (the batch is written)."""
        self._recent.results = None

    def order(self, resource: dict[str, Any], *, today: date | None = None, batch: bool = False) -> Order | None:
        """Facts of an order. ``batch``: remembered inside an ingest batch by the very objects
        they were read from, as ``result`` remembers a result's (the preview reads the converted
        order, the write hook the stored version); the person is read again. An order without
        a date of its own (dated today) or whose institution came from its Patient's managing
        organisation is not remembered."""
        rules = self._rules()
        reads: tuple[Any, ...] = ()
        if batch and resource.get("code") is not None and order_time(resource) is not None and today is None:
            seen = self._recent_results()
            reads = tuple(map(resource.get, _ORDER_READS))
            kept = seen.get(id(reads[0]))
            if kept is not None and kept[1] is rules and len(kept[0]) == len(reads) \
                    and all(map(operator.is_, kept[0], reads)):
                facts = kept[2]
                person = self.person(facts.patient)
                return facts if person == facts.person else replace(facts, person=person)
        inst, via_patient = self._institution(resource)
        if inst is None:
            return None
        tz = rules.institutions[inst].timezone if inst in rules.institutions else DEFAULT_ZONE
        when = order_time(resource)
        day = local_day(when, tz)
        at = local_instant(when, tz) if day is not None else None
        day = day or today or local_today(tz)
        patient = self.patient_ref(resource)
        reasons, text = order_reasons(resource, rules)
        item = item_for(resource, rules, inst)
        order = Order(person=self.person(patient), item=item, institution=inst, day=day,
                      ref=ref_of(resource) if resource.get("id") else None, patient=patient,
                      reasons=reasons, reason_text=text,
                      analytes=analytes_for(resource, rules, item, inst) if item else (), at=at)
        if reads and not via_patient:
            seen = self._recent_results()
            if len(seen) >= _RECENT_KEPT:
                seen.clear()
            seen[id(reads[0])] = (reads, rules, order)
        return order

    def orderer(self, resource: dict[str, Any]) -> tuple[str | None, str | None]:
        """The ordering doctor (requester) as display text, and the ordering department as a
        department key (``department_key``), for the recognition rate's breakdown.

        The department (科室, what an insurance auditor holds an order's repeat against) is the
        ward or clinic of the order's visit: the point of care (PV1-3 PL-1) of its Encounter's
        location, found by the bed's ``partOf`` chain up to the ward (dept33). It was the
        location's display text, the bed: each bed of a ward was a department of its own
        ("NEI 301房 02床"), and the text changed when the converter named rooms and beds (pages33).
        Only where the visit names no place, the order's own location (``locationCode``,
        ``locationReference``: a FHIR client's draft that names no visit). The HL7 feeds state no
        other department the store keeps: ORC-17 (entering organization) is not converted, and
        PV1-10 (hospital service, table 0069: MED, SUR) is a kind of service, not a department.

        A doctor is keyed as the order gives them (the display, else the identifier, else the
        reference): not the stored Practitioner's name, which a later or renamed Practitioner
        changes under the rows already counted (one doctor on two rows). An order naming its
        doctor by display and one by reference alone may still count on two rows (left)."""
        req = resource.get("requester") or {}
        if not isinstance(req, dict):
            req = {}
        doctor = req.get("display") or (req.get("identifier") or {}).get("value") or req.get("reference")
        enc = (resource.get("encounter") or {}).get("reference")
        dept = None
        if isinstance(enc, str) and enc.startswith("Encounter/"):
            dept = self._visit_ward(self._read("Encounter", enc.split("/", 1)[1]) or {})
        if dept is None:
            for c in resource.get("locationCode") or ():
                if isinstance(c, dict):
                    coding = next((x for x in c.get("coding") or () if isinstance(x, dict)), {})
                    name = c.get("text") or coding.get("display")
                    if name or coding.get("code"):
                        dept = department_key(coding.get("code"), name)
                        break
        if dept is None:
            dept = next((department_key(None, str(r["display"])) for r in resource.get("locationReference") or ()
                         if isinstance(r, dict) and r.get("display")), None)
        return (str(doctor) if doctor else None), dept

    def _visit_ward(self, encounter: dict[str, Any]) -> str | None:
        """The department key of a visit's ward: its location where the patient is (``active``), else
        its first; the Location read up its ``partOf`` chain to the ward (``engine.wards.place_ward``, the
        one walk the resident page takes too), named by the ward's code and name (``engine.wards.
        department``: its alias is the point of care's code when PL-9 named it). A place with no named
        ward above it (a Location stored before the chain, converted before pages33) or not readable is
        read as the PL itself: its alias, else the first word of its name or of the visit's display."""
        places = [loc for loc in encounter.get("location") or () if isinstance(loc, dict)
                  and isinstance(loc.get("location"), dict)]
        place = next((loc for loc in places if loc.get("status") == "active"), places[0] if places else None)
        if place is None:
            return None
        ref, display = place["location"].get("reference"), place["location"].get("display")
        found = place_ward(self._read, ref)
        ward = found.ward if found is not None else None
        if ward is not None and ward[1].get("name"):
            if isinstance(ward[1].get("managingOrganization"), dict):  # the sender's own ward: as before
                return department_key(*department(ward[1]))
            return department_key(*department(ward[1]), at=self._ward_facility(ward[0], ward[1], encounter))
        first = found.place if found is not None else {}
        text = first.get("name") or display
        if not text:
            return None
        code, name = department_parts(str(text))
        alias = [a for a in first.get("alias") or () if a]
        return department_key(alias[0] if alias else code, name)

    def _ward_facility(self, ref: str, ward: dict[str, Any], encounter: dict[str, Any]) -> str:
        """The facility of a ward the converter stated no manager of -- one a sender keyed at another
        facility than its own (PV1-3 ``NEI^501^01^FNZYY``: the county hospital registering a visit at the
        traditional-medicine hospital's NEI; ``adapters.convert.actors._location`` states the sender as
        manager exactly when PL-4 is the sender or empty): the member whose code that facility is, read
        by ``engine.wards.ward_key_of`` (one hash of the converter's ward key under the visit's sender,
        its ``serviceProvider``) -- else, a facility no member's code names (or a FHIR client's ward with
        no manager), ``OUTSIDE_AT`` and the ward Location's own id (``ward_key_of``'s ``outside``,
        wardlink38): never the sender's table for the code (dept37), and never one key for every such
        facility (dept37 wrote "", rv37g MED 1): a renamed ward there stays one department, two outside
        hospitals' wards of one code stay two."""
        provider = encounter.get("serviceProvider")
        sender = self.organization_code(provider) if isinstance(provider, dict) else None
        members = self._rules().institutions
        key = ward_key_of(ref, ward, self.organization_code, (sender,) if sender else (), members, outside=True)
        if key is None or not key.elsewhere:
            return ""
        return key.institution or OUTSIDE_AT + key.outside


# A department as a check row stores it (dept33): ``dept|<code>|<name>`` -- the ward's point-of-care
# code (PL-1) and its name where the record gives one (PL-9). Rows written before hold the visit's
# location text ("NEI 301 02", "心内科病区 301房 02床"), read by ``department_parts`` as the converter
# wrote it: the ward first, then room and bed.
DEPT_KEY = "dept|"
# A ward at another facility than the sender's own (dept37): ``dept@<facility>|<code>|<name>``, the
# facility a member's institution code, or where no member's code names it ``~`` and the ward Location's
# id (``engine.wards.OUTSIDE_AT``, wardlink38; rows stored before hold "" there: ``department_at``).
# Its own prefix, not a fourth part after the name: "@" sorts before "|", so the range of one code's
# named tallies that ``reports.latest_ward_name`` scans (after ``dept|<code>|``, before ``dept|<code>}``)
# never holds another facility's ward of that code, and every key stored before keeps its form and order.
DEPT_AT = "dept@"


def department_key(code: str | None, name: str | None, at: str | None = None) -> str | None:
    """The stored form of a department: its code and its name (either may be missing); None for neither.
    ``at``: the facility of a ward at another one than the sender's (a member's code, ``OUTSIDE_AT`` and
    the ward's Location id for one no member's code names); None for the sender's own ward (the form of
    every key before dept37)."""
    code, name = (str(code).strip() if code else ""), (str(name).strip() if name else "")
    if not (code or name):
        return None
    if at is not None:
        return f"{DEPT_AT}{at.replace('|', ' ')}|{code.replace('|', ' ')}|{name}"
    return f"{DEPT_KEY}{code.replace('|', ' ')}|{name}"


def department_at(stored: Any) -> str | None:
    """The facility a stored department names (``DEPT_AT``): a member's code, ``OUTSIDE_AT`` and the ward
    Location's id for a facility no member's code names ("" in a row stored before wardlink38); None for
    the sender's own ward (every other stored form)."""
    if isinstance(stored, str) and stored.startswith(DEPT_AT):
        return stored[len(DEPT_AT):].partition("|")[0]
    return None


def department_parts(stored: str | None) -> tuple[str | None, str | None]:
    """(code, name) of a stored department: a ``department_key`` (of any facility: ``department_at``
    says which), or a row's text from before it --
    the visit's location display, whose first word is the ward (the point of care's code, or PL-9's
    name, which in a Chinese feed has no blank): "NEI 301 02" is the code NEI, "心内科病区 301房 02床"
    the name 心内科病区 (a word in Chinese is a name, as the resident page reads it, ``values.js``
    ``wardName``). A PL-9 name with a blank in a row from before is cut at the blank (left). A key
    whose code is in Chinese characters and that has no name is that name (dept33 wrote a ward sent
    by its Chinese name, 心内科^301^02, as ``dept|心内科|``; deptfix34)."""
    if not stored:
        return None, None
    if stored.startswith(DEPT_AT):
        stored = DEPT_KEY + stored[len(DEPT_AT):].partition("|")[2]
    if stored.startswith(DEPT_KEY):
        code, _, name = stored[len(DEPT_KEY):].partition("|")
        if code and not name and ideographic(code):  # dept33 stored a ward's Chinese name as its code
            return None, code
        return code or None, name or None
    first = stored.strip().split(" ")[0]
    if not first:
        return None, None
    return (None, first) if ideographic(first) else (first, None)


# The placer's explicit delete of the re-test reason (ORC-16 ``""`` in its own order statement,
# ``adapters.convert.results._reason_taken_back``), marked on the stored order with the message that said
# it (``valueString``: MSH-10): the merge deletes the stored reason, but an order that stated none
# (its reason was a CDS answer's, kept on the check row) had nothing to delete and kept no trace of
# the delete -- the CDS answer's reason stood (moneymend20's left xfail, money29).
REASON_WITHDRAWN_EXT = "urn:huren:StructureDefinition:retest-reason-withdrawn"


def reason_withdrawn(resource: dict[str, Any] | None) -> str | None:
    """The message whose ORC-16 ``""`` last withdrew the order's re-test reason (``REASON_WITHDRAWN_EXT``)."""
    for ext in (resource or {}).get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == REASON_WITHDRAWN_EXT:
            value = ext.get("valueString")
            return str(value) if value else None
    return None


def order_reasons(resource: dict[str, Any], rules: Rules) -> tuple[tuple[str, ...], str | None]:
    """Re-test reason codes on an order (``reasonCode`` in huren's reason system) and their text.

    A text that only repeats the name of its code (the coding's display, or the reason's name in
    ``reasons.yaml``, whole or its Chinese or English half) is not the doctor's text: HL7 fills
    ORC-16.2 (CWE text) with the code's name, and an R06 sent as ``R06^其他必要复查^...`` --
    "other necessary re-test" with no word of why -- was paid as if explained."""
    codes: list[str] = []
    texts: list[str] = []
    for concept in resource.get("reasonCode") or ():
        hit = [c for c in concept.get("coding") or () if c.get("system") == rules.reason_system and c.get("code")]
        for c in hit:
            codes.append(str(c["code"]))
        text = concept.get("text") if hit else None
        if isinstance(text, str) and text.strip() and _plain(text) not in _names_of(hit, rules):
            texts.append(text)
    return tuple(codes), ("; ".join(texts) or None)


def _plain(text: str) -> str:
    return " ".join(text.split()).casefold()


def _names_of(codings: list[dict[str, Any]], rules: Rules) -> set[str]:
    """The names a reason code goes by (``order_reasons``): each display, and its halves split at
    the first space ("其他必要复查 other necessary re-test")."""
    names: set[str] = set()
    for c in codings:
        known = rules.reasons.get(str(c["code"]))
        for display in (c.get("display"), known.display if known is not None else None):
            if isinstance(display, str) and display.strip():
                whole = _plain(display)
                names.update((whole, *whole.split(" ", 1)))
    return names


def own_text(text: str | None, codes: Sequence[str], rules: Rules) -> str | None:
    """``text`` when it is the doctor's own words for the reason ``codes``, None when it is only
    one of their names (``order_reasons``' test). For a text kept apart from its order: a check
    row stored before the eighteenth round (the name then counted as R06's text and is carried
    forward with the order's reasons) and a CDS override's comment."""
    if not isinstance(text, str) or not text.strip():
        return None
    names = _names_of([{"code": c} for c in codes], rules)
    if _plain(text) in names:
        return None
    # a check row stored before the eighteenth round joined every concept's text with "; " (R07's
    # name and R06's name read as R06's text, review of payfix18): each part is judged alone
    parts = [p for p in text.split("; ") if p.strip() and _plain(p) not in names]
    return "; ".join(parts) if parts else None


_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def placer_numbers(resource: dict[str, Any] | None) -> tuple[str, ...]:
    """The placer order numbers of an order or a CDS draft: its identifiers typed ``PLAC`` (v2 table
    0203; the HL7 conversion types ORC-2 so). How huren knows a draft answered in CDS and the order
    the HIS later sends (an ORM, whose ServiceRequest id is the placer number's, not the draft's)
    are one order: the placer number the ordering system gave it, with the same person, item,
    institution and day. An untyped identifier says nothing of what it numbers, so it is not read."""
    found: list[str] = []
    for ident in (resource or {}).get("identifier") or ():
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str) or not ident["value"].strip():
            continue
        codings = ((ident.get("type") or {}).get("coding") or ()) if isinstance(ident.get("type"), dict) else ()
        if any(isinstance(c, dict) and c.get("system") == _V2_0203 and c.get("code") == "PLAC" for c in codings):
            found.append(ident["value"].strip())
    return tuple(dict.fromkeys(found))


def _report_results(resource: dict[str, Any]) -> tuple[str, ...]:
    """A DiagnosticReport's results ("Observation/..." refs): which entries of its test are its own."""
    if resource.get("resourceType") != "DiagnosticReport":
        return ()
    return tuple(str(r["reference"]) for r in _refs(resource.get("result"))
                 if str(r.get("reference", "")).startswith("Observation/"))
