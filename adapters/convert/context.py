"""Conversion state for one message: the institution, the resources built so far, warnings, gaps.

Every converter writes through a ``Context``: ``ctx.put(resource, key)`` gives the resource its
deterministic id and keeps one copy per id (a practitioner named in three segments is one
resource), ``ctx.warn`` records a located HL7Error of severity W, ``ctx.unmapped`` records a code or
segment that had no mapping, for the fidelity report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.parser import Message, Segment
from adapters.hl7v2.timestamps import stated_digits
from engine.merge_rules import Change, Delete, Owned, Said, Where, located
from engine.repository.ids import id_maker
from mappings.site import Institution, Site, urn_part

Resource = dict[str, Any]
# what a resource stored under its former key must hold to be this one, asked of it and the store's
# ``read_many`` (``Context.formerly``)
Holds = Callable[[Resource, Any], bool]
# a FHIR CodeableConcept as the converters build it (``common.coded_item``): coding, text
Concept = dict[str, Any]


# (institution, resource type, local key) -> deterministic id. The same organisation, patients and
# staff recur in every message and hashing costs ~1.5 µs; a plain dict read inline is cheaper than
# an lru_cache call (no recency bookkeeping): when full it is emptied and refills from the traffic.
_IDS: dict[tuple[str, str, str], str] = {}
_IDS_MAX = 65536


@lru_cache(maxsize=128)
def _choices(rtype: str) -> dict[str, frozenset[str]]:
    """Top-level choice elements of an R4 resource type -> their sibling choices (``effectivePeriod``
    -> ``effectiveDateTime``...), from the R4 schema's ``dependencies`` the validator uses."""
    from conformance.validate import load_schema

    deps = (load_schema().get("definitions", {}).get(rtype) or {}).get("dependencies") or {}
    return {name: frozenset(rule.get("properties") or {}) for name, rule in deps.items() if isinstance(rule, dict)}


def _new_id(name: tuple[str, str, str]) -> str:
    rid = id_maker(name[0], name[1])(name[2])
    if len(_IDS) >= _IDS_MAX:
        _IDS.clear()
    _IDS[name] = rid
    return rid


@lru_cache(maxsize=1024)
def _urn_code(code: str) -> str:
    return urn_part(code)


def accession_system(urn_code: str) -> str:
    """The system of an institution's accession numbers (v2 0203 ACSN: IPC-1, else OBR-18): the institution's, not
    one application's -- IHE RAD Scheduled Workflow has its Department System Scheduler / Order Filler (the RIS)
    assign it, one number space a hospital wide (the ImagingStudy keyed by it, ``pacs``)."""
    return f"urn:huren:accession:{urn_code}"


class Filled(NamedTuple):
    """An order a group names by its filler number alone (``Context.filled``; ``adopt_filled``,
    ``settle_reused_filler``): the number as its FILL identifier (``system``, ``value``), the patient's record
    (``subject``, "Type/id"), where the number stands (segment, sequence, field), the sender's accession system
    (``accession_system``) the same value may stand under on the order the number names, and whether the group's
    message is an imaging one (``category`` imaging) -- with the test's code, what lets an accession alone name
    the order (``_names_the_order``, forty-third round, acsn43) -- and the application that numbered the group
    (``numbered_by``: OBR-3's assigning authority where stated, ``named``, else MSH-3 -- ``applications.numbered_by``;
    each form the site's aliases give it, ``applications.forms``): an accession names the order only from the application that assigned it
    (``applications.assigned_by``; review rv43b HIGH 1, acsn43b)."""

    system: str
    value: str
    subject: str
    where: tuple[str, int, int]
    accession: str
    imaging: bool
    numbered_by: tuple[tuple[str, str, str], ...] = ()
    named: bool = False


class MemberNumber(NamedTuple):
    """A record held against another member institution's own record of a number (``Context.members``,
    ``persons.check_persons``): the PID naming the member's number (member33), or a merge whose MRG-1
    names one, or whose PID does while MRG-1 moves another record into it (identity34)."""

    record: str  # the "Patient/id" whose person is held against the member's record
    member: str  # the member institution's own record of the number ("Patient/id")
    segment: str  # where the number is named: "PID" (PID-3) or "MRG" (MRG-1)
    sequence: int  # that segment's sequence
    # held as stored (as the batch leaves it), not as this message states it: MRG-1's prior record, which
    # the merge moves into the PID's record of the member's number
    as_stored: bool = False
    # a PID's: the member institution's code and the number as the PID's Patient carries it ("system|value"),
    # for the record it does not key -- filed beside it, the number left off (memfix34)
    institution: str = ""
    number: str = ""
    # the number under the sender's own system for other authorities' numbers ("system|value",
    # ``common.apart_system``: ``urn:huren:mrn:FNZYY:FNXRMYY|n``) -- how a record carries it once the
    # member's own record contradicts it (mfix34) -- and its PID-3 repetition (1-based), for ERR-2
    kept: str = ""
    repetition: int | None = None
    # an A45's MRG-1 (``his.moved_visit``): the record a visit moves from, keyed by the member's number -- held as
    # stored against the member's record; no merge (ident35); stale, the move filed with a warning (rkfix35), which
    # counts for ``institution``, the member
    moved: bool = False
    # a merge's MRG-1 naming the member's number (``his.merge``): the record it merges away ("Patient/id"), held as
    # stored -- the sender's own record of the number, stale once the member's record is another person (idfix35)
    prior: str = ""


@dataclass
class Context:
    message: Message
    site: Site
    institution: Institution
    resources: dict[str, Resource] = field(default_factory=dict)  # "Type/id" → resource, in creation order
    warnings: list[HL7Error] = field(default_factory=list)
    unmapped: list[dict[str, str]] = field(default_factory=list)
    # "Type/id" of resources a result/order message carries only so the bundle stands alone
    # (its PID/PV1 are usually thinner than the ADT feed's): write them only if absent
    create_only: list[str] = field(default_factory=list)
    _unmapped_seen: set[tuple[str, str, str]] = field(default_factory=set)
    # how many CWE conversions met a coding system huren does not know (``datatypes.cwe``): a table rule
    # compares it around its converter and warns at its field only then (conv42; asked per CWE, not parsed)
    unknown_systems: int = 0
    order_services: dict[str, str] = field(default_factory=dict)  # order key → the OBR-4 that claimed it
    # "Type/id" of the orders a replace request (ORC-1 RP) named, not yet taken by a replacement
    # order (ORC-1 RO) of the message (``results.service_request``: the RO ``replaces`` them)
    replace_requests: list[str] = field(default_factory=list)
    # ORC-1 of the last of those (RP the placer's request, RU/RQ the filler's replacement; "" none pending): whose
    # statement the RO after it is (table 0119 gives RO to either side: ``results._whose``; review rv40h HIGH 3)
    replaced_by: str = ""
    # "Type/id" of an order → how far the message's groups naming it got (the least advanced report
    # status so far, ``results.status_from_report``)
    order_progress: dict[str, str] = field(default_factory=dict)
    # a patient-level result's key (ADT OBX: patient, test, time) → the key each OBX of that test and
    # time takes, by its fields after OBX-1 (``builders._another_result`` ranks them once a message)
    patient_results: dict[str, dict[tuple[str, ...], str]] = field(default_factory=dict)
    # a report's key → the keys of the results its groups made so far (``lis.convert_orders``)
    result_keys: dict[str, set[str]] = field(default_factory=dict)
    # "Type/id" of a report → the test codes (OBR-4) of the groups that made it (``results._another_group``)
    report_tests: dict[str, list[Concept]] = field(default_factory=dict)
    # "Type/id" → the plan a resource was built from and its holes (``plans.Planned``), for validation;
    # a resource changed after it was built (merged by ``put``) is dropped from it
    planned: dict[str, Any] = field(default_factory=dict)
    # while a plan is being learnt: every ``note_unmapped`` call, seen before or not (``plans.learn``)
    noted: list[tuple[str, str, str]] | None = None
    # what the results of an order group share, as part of a plan's key (``plans.describe``)
    plan_shared: tuple[Any, ...] | None = None
    organization: str | None = None  # "Organization/id" of the sender, once ``actors.organization`` made it
    # MSH-3.1 when another application of the institution used this MSH-10 first (``engine.messages``)
    application: str = ""

    @property
    def message_key(self) -> str:
        """MSH-10 as the ids keyed by the message take it (its Provenance, results with no order
        or date): with the sending application when another one used this MSH-10 first, so that
        the two messages' resources are not one."""
        control = self.message.msh.control_id
        return f"{control}\x1f{self.application}" if self.application else control
    # the message's template says its event states whether its Patients are in use (``states_active``:
    # a merge, an unlink); else ``Patient.active`` is only assumed
    states_active: bool = False
    # what the message said of a resource beside its content (``engine.merge_rules.Said``), kept by
    # the resource being built and named by reference once the conversion is done (``said``):
    # its deletes (HL7 ``""``), the elements only assumed, the fields that stated an element
    deletes: list[tuple[Resource, Delete]] = field(default_factory=list)
    assumptions: list[tuple[Resource, str]] = field(default_factory=list)
    fields: list[tuple[Resource, str, str]] = field(default_factory=list)
    # (resource, segment, ((element, field), ...)): elements located only when an issue names one
    # (``located_later``, ``Said.later``)
    later: list[tuple[Resource, Segment, tuple[tuple[str, int], ...]]] = field(default_factory=list)
    told_apart: list[Resource] = field(default_factory=list)  # results with a sub-id (OBX-4)
    # (resource, element, the reference the message says the stored value was): a move it states (A45)
    moves: list[tuple[Resource, str, str]] = field(default_factory=list)
    # (resource, element, the Patient the message names as its patient's mother: PID-21)
    mothers: list[tuple[Resource, str, str]] = field(default_factory=list)
    # (resource, element): the message says whose patient it names -- a reading centre's report on
    # a township's referral (``Said.referred``)
    referrals: list[tuple[Resource, str]] = field(default_factory=list)
    # (resource, element, its segments): the message states the list entry by entry (``Said.changes``)
    changed: list[tuple[Resource, str, tuple[Change, ...]]] = field(default_factory=list)
    # (resource, (start, as sent, where)): an S13's start with no end or duration (``Said.start_alone``)
    starts_alone: list[tuple[Resource, tuple[str, str, str]]] = field(default_factory=list)
    # (resource, element, digits): a time stated coarser than its FHIR text writes (``Said.digits``)
    coarse_times: list[tuple[Resource, str, int]] = field(default_factory=list)
    # "Type/id" -> ("Type/id" an earlier key gave it, (path, value) that stored one must hold): a
    # resource whose key changed -- found stored under the old one for this very owner, it is that one
    # (``formerly``; ingest asks the store, ``adopt_former_ids``)
    former: dict[str, tuple[str, str, str | Holds]] = field(default_factory=dict)
    # "Type/id" -> (identifier value, subject "Type/id", (segment, sequence, field)): a visit-less DG1-20
    # -- the one Condition of that id under the patient, whichever stay keyed it (``adopt_identified``, dgfix25)
    identified: dict[str, tuple[str, str, tuple[str, int, int]]] = field(default_factory=dict)
    # "Type/id" of an order a group names by its filler number alone -> the number and where (``Filled``): the order
    # of the patient that holds it, whichever number keyed it (``adopt_filled``, review rv40h MED 7)
    filled: dict[str, Filled] = field(default_factory=dict)
    # a pharmacy's give (RXG, RGV^O15: ``builders._give_dosage``) and its segment: the MedicationDispense keyed by
    # the order and RXG-1, which a stored give of another time under that key is restated by (``settle_gives``)
    gives: list[tuple[Resource, Segment]] = field(default_factory=list)
    # an order and the (system, value) of its accession whose assigner the message did not state (bare IPC-1, an
    # OBR-18: MSH-3 defaulted, or none behind a relay, ``applications.numbering``): a stated one stored on the order stays
    # (``settle_assigners``; review rv43e MED 2)
    defaulted_assigners: list[tuple[Resource, str, str]] = field(default_factory=list)
    # "Type/id" -> its key, of every resource keyed by a filler number (``filler|...``: a report, its results and
    # specimens, an order named by it alone; the ImagingStudy keyed by the accession, under ``<report key>|acsn``:
    # ``pacs``), and "DiagnosticReport/id" -> (its key, (segment, sequence, field) of the filler number): a report
    # under a number another order's stored report holds is keyed apart (``settle_reused_filler``, rv41d HIGH 4)
    filler_keyed: dict[str, str] = field(default_factory=dict)
    filler_reports: dict[str, tuple[str, tuple[str, int, int]]] = field(default_factory=dict)
    # (resource, element): a create-only resource the message states this element of (``Said.only``)
    stated_only: list[tuple[Resource, str]] = field(default_factory=list)
    # (resource, what it states only as the application that stored the order's number: ``Said.owned``)
    owned_by_number: list[tuple[Resource, Owned]] = field(default_factory=list)
    # (a result the message states as a correction, "DiagnosticReport/id" of the report listing it: ``Said.report``)
    reported: list[tuple[Resource, str, str]] = field(default_factory=list)
    # "Type/id" of a Condition a DG1-21 D withdraws -> (subject, its stay's "Type/id" or "", its code,
    # DG1-20, the warning said when nothing stored is that diagnosis): written only onto a stored one
    # (``settle_withdrawn``, dgfix25b)
    withdrawn: dict[str, tuple[str, str, str, str, HL7Error]] = field(default_factory=dict)
    # "Type/id" of a Condition a DG1 states (A/U/empty) -> whether this message said D of it first: a stored
    # one a feed's D withdrew (``his.withdrawn_by_sender``), or this message's own D, is no longer
    # entered-in-error (``settle_withdrawn``, dgfix25b; dgmend26)
    restated: dict[str, bool] = field(default_factory=dict)
    # "Type/id" of an order -> the W at its ORC-5 saying its CM was not stored beside a group of withdrawn results:
    # taken back where the order stands completed after all, as the message's write leaves it (a later group of the
    # message completing it, kfix40; stored or written completed by an earlier message of the batch, stfix40) -- one
    # step, ``convert.settle_completion`` (st41), asked of the write (forty-first round, stfix41)
    completion_warned: dict[str, HL7Error] = field(default_factory=dict)
    # "Type/id" of a Condition -> what DG1-21 said of it in this message ("D", or "A" for A/U/empty)
    diagnosis_said: dict[str, str] = field(default_factory=dict)
    # OBX-23's raw XON -> the performer reference it makes (``actors.performing_organization``): worked
    # out once per distinct XON per message (each result's and its report's read it; convfix28)
    performers: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    # "Patient/id" -> the PID's sequence, of each record a PID names without correcting its person
    # (``common.patient``; not an ADT A08/A31): ``persons.check_persons`` refuses the message when the
    # stored record is another person (name, sex and birth date all contradict)
    persons: dict[str, int] = field(default_factory=dict)
    # "Patient/id" -> the PID's sequence, of each record an ADT A08/A31 restates (``common.patient``):
    # ``persons.check_persons`` holds a restatement as another person to the registering application
    corrections: dict[str, int] = field(default_factory=dict)
    # "Patient/id" keyed apart (``auth|``) -> (authority, number, the "Patient/id" the bare number
    # keys, the PID's sequence): ``persons.check_persons`` warns (``persons._kept_apart``) when the institution holds that one
    apart: dict[str, tuple[str, str, str, int]] = field(default_factory=dict)
    # ... the same of a merge's MRG-1 record (``his.merge``, the MRG's sequence): ``persons._merged_apart`` decides
    # which record a merge under an undeclared authority names
    merged_apart: dict[str, tuple[str, str, str, int]] = field(default_factory=dict)
    # each merge's (survivor "Patient/id", MRG-1's "Patient/id", the MRG's sequence) (``his.merge``):
    # ``persons.check_persons`` warns when the two records are two people by the person guard's rule
    merges: list[tuple[str, str, int, bool]] = field(default_factory=list)  # (... a renumbering: ``his.RENUMBERING``)
    # each (record, another record) an unlink (A37, ``his.unlink``) names, both ways: ``persons._given_back`` gives
    # the record what a merge had carried from it onto the other
    unlinked: list[tuple[str, str]] = field(default_factory=list)
    # each PID-3 repetition ``""`` of another authority's record number (HL7 v2.5 2.5.3: delete): (the record
    # "Patient/id", the number's Identifier.system, the authority, the PID's sequence, the repetition) --
    # ``persons._not_theirs_to_delete`` warns when the record holds a number under it the sender never stated
    nulled: list[tuple[str, str, str, int, int]] = field(default_factory=list)
    # each PID-3 repetition ``""^^^^NNCHN`` (``common._national_deleted``): (the record "Patient/id", the PID's
    # sequence, the repetition) -- ``persons._registrars_null`` keeps the ID number, with a W, when the sender is not
    # the record's registrar (rv40a MED 4)
    id_nulled: list[tuple[str, int, int]] = field(default_factory=list)
    # each record held against another member institution's own record of a number named under that
    # member's MRN system (``MemberNumber``, ``common.member_records``): ``persons.check_persons``
    # refuses the message when the member's record is another person
    members: list[MemberNumber] = field(default_factory=list)
    # ("Patient/id" of a PID's record, "system|value" of its number under the institution's own MRN
    # system, the PID's sequence) (``common.patient``): ``persons.check_persons`` warns when another
    # member's record carries the number for another person (identity34)
    owns: list[tuple[str, str, int, tuple[str, ...]]] = field(default_factory=list)

    # per-institution values every converter reads, resolved once per message (plain attributes:
    # they are read hundreds of times per message)
    code: str = field(init=False)  # the institution code
    urn_code: str = field(init=False)  # the code as it goes into ``urn:huren:<kind>:<code>`` systems
    tz: str = field(init=False)  # the institution's time zone for timestamps without offset
    local_system: str = field(init=False)  # the code system of the institution's local codes

    def __post_init__(self) -> None:
        inst = self.institution
        self.code = inst.code
        self.urn_code = _urn_code(inst.code)
        self.tz = inst.timezone
        self.local_system = inst.code_system

    def id_for(self, resource_type: str, key: str) -> str:
        name = (self.code, resource_type, key)
        return _IDS.get(name) or _new_id(name)

    def ref(self, resource_type: str, key: str, display: str = "") -> dict[str, str]:
        name = (self.code, resource_type, key)
        ref = {"reference": f"{resource_type}/{_IDS.get(name) or _new_id(name)}"}
        if display:
            ref["display"] = display
        return ref

    def put(self, resource: Resource, key: str, owner: str | None = None) -> dict[str, str]:
        """Store ``resource`` under its deterministic id (merging into an earlier one) → Reference.
        The id is keyed by the sender, or by ``owner`` for a resource another institution's own
        messages make (a member's Organization an OBX-23 names: one institution, one Organization)."""
        rtype = resource["resourceType"]
        name = (owner or self.code, rtype, key)
        rid = _IDS.get(name) or _new_id(name)
        resource["id"] = rid
        ref = f"{rtype}/{rid}"
        if key.startswith("filler|") and owner is None:
            self.filler_keyed[ref] = key
        existing = self.resources.get(ref)
        if existing is None:
            self.resources[ref] = resource
        else:  # a second group's report, a practitioner named again: only what the first lacks
            added = False
            choices = _choices(rtype)
            for k, v in resource.items():
                # one value per choice: a report the first group dated by a period (OBR-7 and
                # OBR-8) takes no effectiveDateTime from the next (R4 allows one effective[x])
                if k not in existing and not (k in choices and not choices[k].isdisjoint(existing)):
                    existing[k] = v
                    added = True
            if added and self.planned:  # no longer the resource its plan made
                self.planned.pop(ref, None)
        return {"reference": ref}

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, str, str]]]:
        """Every ``note_unmapped`` call made inside the block, reported before or not: a cache of
        converted values keeps them with the value and reports them again on each hit (the
        fidelity report must not depend on what the process converted before)."""
        outer, self.noted = self.noted, []
        try:
            yield self.noted
        finally:
            inner, self.noted = self.noted, outer
            if outer is not None:
                outer.extend(inner)

    def delete(self, resource: Resource, element: str, where: Where = (), why: str = "",
               leaves: tuple[tuple[str, Any], ...] = ()) -> None:
        """The message sent ``""`` (HL7's explicit null, v2 chapter 2) for what makes ``element``:
        the stored value is to be deleted (an empty field leaves it alone); ``where``: only the
        entries of a list it matches; ``why``: what deleted it, when not an explicit null (an
        unlink's links); ``leaves``: what another field stated that the deleted value held too
        (``Delete.leaves``)."""
        self.deletes.append((resource, Delete(element, where, why, leaves)))

    def formerly(self, ref: dict[str, str], old_key: str, path: str = "", value: str | Holds = "") -> None:
        """The resource ``ref`` was keyed ``old_key`` before (an encounter diagnosis by patient and code,
        before its stay keyed it; an Appointment by SCH-2's value under its patient): when nothing is
        stored under its id and the one stored under the old key holds ``value`` at ``path`` (its
        ``encounter.reference``: this stay; no path: nothing), it is that one. What a path cannot
        say (an entry of a list: the Appointment's FILL identifier, this filler's) is a ``value``
        asked, with no path, of the stored resource and the store's ``read_many`` (``Holds``)."""
        rtype = ref["reference"].split("/", 1)[0]
        old = self.ref(rtype, old_key)["reference"]
        if old != ref["reference"]:
            self.former[ref["reference"]] = (old, path, value)

    def only(self, resource: Resource, element: str) -> None:
        """``resource`` is one the message carries so its Bundle stands alone (``create_only``), but it
        states ``element`` of it (a billing message's DG1s: the visit's diagnosis entries): it is
        written stored or not, and of a stored one only ``element`` combines (``Said.only``)."""
        ref = _ref_of(resource)
        if ref is None:
            return
        if ref in self.create_only:
            self.create_only[:] = [r for r in self.create_only if r != ref]
        elif not any(r is resource for r, _ in self.stated_only):
            return  # the message's own resource (an ADT's visit): it states it whole
        self.stated_only.append((resource, element))

    def assumed(self, resource: Resource, element: str) -> None:
        """``element`` of ``resource`` is the converter's assumption, not what the message stated
        (an A08 says nothing of the visit's status): it fills only an element not stored."""
        self.assumptions.append((resource, element))

    def located(self, resource: Resource, element: str, seg: Segment, field_no: int) -> None:
        """``element`` of ``resource`` was stated by field ``field_no`` of ``seg`` (ORC-5): a value
        the merge rules do not store is located there in the ACK (ERR-2), not only named."""
        self.fields.append((resource, element, located(seg.name, seg.sequence, field_no)))

    def located_later(self, resource: Resource, seg: Segment, table: tuple[tuple[str, int], ...]) -> None:
        """Each ``(element, field_no)`` of ``table`` that ``resource`` states was stated by that field of
        ``seg`` -- told the merge once (``Said.later``), made into a location only when an issue names
        the element: a result's value, range and flag (OBX-5, 7, 8), located eagerly three texts an OBX,
        cost ~2 % of a first version whose merge asks none (thirty-fifth round, rerun35). ``table`` is
        a module's constant (the ``Said`` made once is shared by its identity)."""
        self.later.append((resource, seg, table))

    def unsay(self, resource: Resource, element: str) -> None:
        """Forget that ``element`` of ``resource`` was assumed or stated by a field: a later part
        of the message states it anew (a result's report status after ORC-1 RE)."""
        self.assumptions[:] = [a for a in self.assumptions if not (a[0] is resource and a[1] == element)]
        self.fields[:] = [f for f in self.fields if not (f[0] is resource and f[1] == element)]

    def sub_id(self, resource: Resource) -> None:
        """The message tells ``resource`` (a result) from its test's others by a sub-id (OBX-4): new
        to a report beside one of its test and time, it is another result, not one re-sent alone."""
        self.told_apart.append(resource)

    def moved(self, resource: Resource, element: str, prior: str) -> None:
        """The message moves ``element`` of ``resource`` from ``prior`` (a reference): an A45 moves
        the visit from the patient MRG-1 names to PID's (``Said.moved_from``)."""
        self.moves.append((resource, element, prior))

    def mother(self, resource: Resource, element: str, mother: str) -> None:
        """The message names ``mother`` (a Patient reference, PID-21) as its patient's mother: a
        newborn's results under her visit number refer to her visit (``Said.mother``)."""
        self.mothers.append((resource, element, mother))

    def referred(self, resource: Resource, element: str) -> None:
        """``element`` (a subject) of ``resource`` -- a township's order or study that a reading
        centre's report links -- names the referral's patient: the centre's record of him is his
        unless the patient index knows it for another person (``Said.referred``)."""
        self.referrals.append((resource, element))

    def changes(self, resource: Resource, element: str, segments: tuple[Change, ...]) -> None:
        """The message states list ``element`` of ``resource`` as changes to the stored list, one
        per segment (an S14 whose resource segments all carry action codes: ``Said.changes``)."""
        self.changed.append((resource, element, segments))

    def start_alone(self, resource: Resource, start: str, sent: str, at: str) -> None:
        """An S13 moves ``resource``'s start to ``start`` with no end or duration: the merge keeps the
        stored length (``Said.start_alone``)."""
        self.starts_alone.append((resource, (start, sent, at)))

    def stated_at(self, resource: Resource, element: str, value: str) -> None:
        """``element`` of ``resource`` is the HL7 time ``value``: where it states an hour or a minute (its FHIR
        dateTime writes ``:00`` seconds), the precision is kept for the comparisons (``Said.digits``)."""
        digits = stated_digits(value)
        if digits is not None and 8 < digits < 14:
            self.coarse_times.append((resource, element, digits))

    def numbered(self, resource: Resource, owned: Owned) -> None:
        """``owned.element`` of ``resource`` is stated only if the order's history names this message's
        sender as the application that stored its number (``Said.owned``: the merge decides, on the store)."""
        self.owned_by_number.append((resource, owned))

    def reported_by(self, resource: Resource, report: str, status: str = "") -> None:
        """``resource`` (a result the message states as a correction, ``exam_time``'s ``by``) is listed by the report
        ``report`` ("DiagnosticReport/id"): new to the store, it takes that report's stored exam time as the report
        keeps it (``Said.report``, ``MergeRules._exam_of_report``; rv42e MED 2, forty-third round, time43).
        ``status``: the message's status of the report, for a resource with none of its own (an ImagingStudy under
        a correction: ``Said.report_status``, ``MergeRules._exam_by_report``; rv42e LOW)."""
        self.reported.append((resource, report, status))

    def said_count(self) -> int:
        """How many things the message said beside the resources' content so far (a conversion
        that said any cannot be replaced by a copy of an earlier one's resources)."""
        return (len(self.deletes) + len(self.assumptions) + len(self.fields) + len(self.later) + len(self.told_apart)
                + len(self.moves)
                + len(self.mothers) + len(self.referrals) + len(self.changed) + len(self.starts_alone)
                + len(self.coarse_times) + len(self.stated_only) + len(self.owned_by_number) + len(self.reported))

    def said(self) -> dict[str, Said]:
        """What the message said of each resource beside its content, by "Type/id" (a resource
        merged into another by ``put`` is that one)."""
        if not (self.deletes or self.assumptions or self.fields or self.later or self.told_apart or self.moves
                or self.mothers
                or self.referrals or self.changed or self.starts_alone or self.stated_only or self.owned_by_number
                or self.coarse_times or self.reported):
            return {}
        deletes: dict[str, list[Delete]] = {}
        assumed: dict[str, set[str]] = {}
        fields: dict[str, list[tuple[str, str]]] = {}
        for resource, delete in self.deletes:
            ref = _ref_of(resource)
            if ref is not None:
                deletes.setdefault(ref, []).append(delete)
        for resource, element in self.assumptions:
            ref = _ref_of(resource)
            if ref is not None:
                assumed.setdefault(ref, set()).add(element)
        for resource, element, at in self.fields:
            ref = _ref_of(resource)
            if ref is not None:
                fields.setdefault(ref, []).append((element, at))
        later: dict[str, tuple[str, int, tuple[tuple[str, int], ...]]] = {}
        for resource, seg, table in self.later:  # (the last one of a resource, as ``dict(fields)``)
            ref = _ref_of(resource)
            if ref is not None:
                later[ref] = (seg.name, seg.sequence, table)
        apart = {ref for resource in self.told_apart if (ref := _ref_of(resource)) is not None}
        moves: dict[str, list[tuple[str, str]]] = {}
        for resource, element, prior in self.moves:
            ref = _ref_of(resource)
            if ref is not None:
                moves.setdefault(ref, []).append((element, prior))
        mothers: dict[str, list[tuple[str, str]]] = {}
        for resource, element, mother in self.mothers:
            ref = _ref_of(resource)
            if ref is not None:
                mothers.setdefault(ref, []).append((element, mother))
        referred: dict[str, set[str]] = {}
        for resource, element in self.referrals:
            ref = _ref_of(resource)
            if ref is not None:
                referred.setdefault(ref, set()).add(element)
        changed: dict[str, dict[str, tuple[Change, ...]]] = {}
        for resource, element, segments in self.changed:
            ref = _ref_of(resource)
            if ref is not None:
                changed.setdefault(ref, {})[element] = segments
        alone = {ref: start for resource, start in self.starts_alone if (ref := _ref_of(resource)) is not None}
        only: dict[str, set[str]] = {}
        for resource, element in self.stated_only:
            ref = _ref_of(resource)
            if ref is not None:
                only.setdefault(ref, set()).add(element)
        owned: dict[str, list[Owned]] = {}
        for resource, own in self.owned_by_number:
            ref = _ref_of(resource)
            if ref is not None:
                owned.setdefault(ref, []).append(own)
        coarse: dict[str, list[tuple[str, int]]] = {}
        for resource, element, digits in self.coarse_times:
            ref = _ref_of(resource)
            if ref is not None:
                coarse.setdefault(ref, []).append((element, digits))
        reported = {ref: (report, status) for resource, report, status in self.reported
                    if (ref := _ref_of(resource)) is not None}
        others = {*deletes, *apart, *moves, *mothers, *referred, *changed, *alone, *only, *owned, *coarse, *reported}
        # (only assumed -- a Patient's active, a Location's name made from a PL's codes: one shared Said)
        others.update(ref for ref in later if ref not in fields)
        out = {ref: _assumed_only(frozenset(elements)) for ref, elements in assumed.items()
               if ref not in others and ref not in fields}
        others.update(ref for ref in assumed if ref not in out)
        out |= {ref: Said(deletes=tuple(deletes.get(ref, ())), assumed=frozenset(assumed.get(ref, ())),
                         fields=tuple(fields.get(ref, ())), sub_id=ref in apart, moved_from=tuple(moves.get(ref, ())),
                         mother=tuple(mothers.get(ref, ())), referred=frozenset(referred.get(ref, ())),
                         changes=tuple((changed.get(ref) or {}).items()),
                         start_alone=alone.get(ref, ()), only=frozenset(only.get(ref, ())),
                         later=later.get(ref, ()), owned=tuple(owned.get(ref, ())),
                         digits=tuple(coarse.get(ref, ())), report=reported.get(ref, ("", ""))[0],
                         report_status=reported.get(ref, ("", ""))[1])
               for ref in others}
        for ref, located_at in fields.items():  # (a result's OBX-11 alone, the commonest: one shared Said)
            if ref not in others:
                out[ref] = _located_only(tuple(located_at), later.get(ref))
        return out

    def warn(self, err: HL7Error) -> None:
        """A warning (ERR severity W), once: the same field read by several resources (OBR-7 as the report's time,
        the study's start and the order's) is told once in the ACK (rv41k LOW 7)."""
        err.severity = "W"
        if any(_same_warning(err, w) for w in self.warnings):
            return
        self.warnings.append(err)

    def note_unmapped(self, kind: str, value: str, where: str = "") -> None:
        """A code or segment with no mapping: kept in the output where possible, listed here."""
        marker = (kind, value, where)
        if self.noted is not None:
            self.noted.append(marker)
        if marker in self._unmapped_seen:
            return
        self._unmapped_seen.add(marker)
        entry = {"institution": self.code, "kind": kind}
        if kind == "segment":
            entry["segment"] = value
        else:
            entry["code"] = value
        if where:
            entry["where"] = where
        self.unmapped.append(entry)

    def error(
        self, seg: Segment, message: str, field_no: int | None = None, component: int | None = None, **kw: Any
    ) -> HL7Error:
        return seg.error(message, field_no, component, **kw)


# what a resource's message said of it -> the one ``Said`` stating only that (a Said is immutable: one
# object serves every message whose resource said nothing else -- a lab result's status at its OBX-11,
# msgfix34; a Location's name made from a PL's codes, locfix34)
_SAID_ONCE: dict[tuple[str, object], Said] = {}


def _said_once(key: tuple[str, object], make: Callable[[], Said]) -> Said:
    """The shared ``Said`` for ``key``, made once (a 15-field frozen dataclass costs ~4 us to build,
    twelve times a lab panel's message; built each time, an A08's conversion cost ~16 % more)."""
    said = _SAID_ONCE.get(key)
    if said is None:
        if len(_SAID_ONCE) >= 4096:
            _SAID_ONCE.clear()
        said = _SAID_ONCE[key] = make()
    return said


def _assumed_only(elements: frozenset[str]) -> Said:
    """The ``Said`` of a resource whose message only assumed ``elements`` (a Patient's ``active``; a
    Location's ``name`` made from a PL's codes, three a PV1-3 with a bed: locfix34)."""
    return _said_once(("assumed", elements), lambda: Said(assumed=elements))


def _located_only(fields: tuple[tuple[str, str], ...],
                  later: tuple[str, int, tuple[tuple[str, int], ...]] | None = None) -> Said:
    """The ``Said`` of a resource whose message said only where its elements were stated (``later``:
    some only when an issue names them -- its table keyed by identity, a module's constant)."""
    if later is None:
        return _said_once(("fields", fields), lambda: Said(fields=fields))
    return _said_once(("fields", fields, later[0], later[1], id(later[2])), lambda: Said(fields=fields, later=later))


def _ref_of(resource: Resource) -> str | None:
    rid = resource.get("id")
    return f"{resource['resourceType']}/{rid}" if isinstance(rid, str) else None


def _same_warning(a: HL7Error, b: HL7Error) -> bool:
    """Whether two warnings say the same of the same place (``Context.warn``: told once)."""
    return (a.message, a.segment, a.sequence, a.field, a.component, a.repetition, a.code) == \
        (b.message, b.segment, b.sequence, b.field, b.component, b.repetition, b.code)
