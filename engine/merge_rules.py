"""How an incoming version of a resource combines with the stored one — the one place that decides.

Several writers state facts about the same resource: the HIS order (ORM) and the LIS result (ORU)
rebuild the same ServiceRequest from the same placer/filler numbers; a FHIR client and the master
patient index both write ``Patient.link``. Without one rule, the last writer silently erased what
an earlier one stated. The rules are data (``mappings/merge.yaml``, replaceable per site); this
module compiles them once per (resource type, writer) and applies them on every update, inside the
repository write (``FhirRepository._store``), before the "unchanged?" comparison.

A value the rules do not store is never dropped silently: the writer gets a warning issue (an ACK
ERR of severity W for a feed) or the whole write is refused (422 for a FHIR client) — which of the
two is per writer, in the data. The data file's comments describe the modes and ownership.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from adapters.hl7v2.errors import DUPLICATE_KEY_IDENTIFIER, HL7Error
from adapters.hl7v2.timestamps import compare_times, thinner
from engine import fhirjson
from engine.errors import FhirError, NotFound, Unprocessable
from engine.identity.demographics import a_woman
from engine.message_time import Dates, Stamp, aware_instant, settle, written_before_receipt
from engine.repository.search import escape_value, token_value
from mappings.frozen import FrozenDict, frozen
from mappings.site import DEFAULTS_DIR, OTHER_GROUP, SiteError, load_merge_file, local_code_system

API = "api"  # FHIR REST clients (PUT, POST, transaction and batch Bundles)
# HL7 table 0357 (message error condition codes): an issue's ``details`` coding in it is the ERR-3 its ACK warning
# carries (``engine.ingest._issue_to_warning``; 0, message accepted, when none)
V2_0357 = "http://terminology.hl7.org/CodeSystem/v2-0357"
INDEX = "index"  # the master patient index
# the writer marks of what no message of the feed wrote (a FHIR client, the patient index): the one
# set the registrar, the Provenance-trail mark and the settlement ask
NOT_THE_FEED = frozenset({API, INDEX})
OTHER = OTHER_GROUP  # the group of any writer no group names
MODES = frozenset({"replace", "keep-if-absent", "union", "by-key", "keep-stored", "parts"})
_RESERVED = frozenset({"key", "owner", "slices", "follows", "when", "was", "stands", "yields_to", "unless_deletes", "placeholders", "as_far_as",
                       "progress", "names_all_of", "another", "another_if", "status_follows", "inherits",
                       "another_person", "keeps", "history", "history_unless",
                       "history_taken_back_by", "lines_of", "text_of", "until_later", "displays", "states",
                       "not_from_older", "not_back", "withdrawn", "stands_with", "all_results", "beside",
                       "over_value", "over_value_with", "withdrawal_keeps", "held", "exam_time",
                       "derived", "not_thinner"})
PANEL = "; "  # between the tests a panel's ``code.text`` names (``names_all_of``)
# on a report's ``code`` that is huren's stand-in, not the sender's statement: its groups named no test (OBR-4
# empty) and the converter gave it its first result's code (``results.diagnostic_report``); ``_another`` does
# not hold a test the sender never stated against the test it names later (thirty-seventh round, code37)
STAND_IN_EXT = "urn:huren:StructureDefinition:code-stand-in"
# in a time's primitive twin (``_effectiveDateTime``): the converter took the time from another field than the
# element's own -- a result's OBR-7 (OBR-8, OBR-22, RXA-3, EVN, MSH-7) where OBX-14 is empty -- named by its
# ``valueString``; no such mark: the time was stated as itself (OBX-14), or by a FHIR client. The merge's
# ``derived`` rule reads it (``_derived_times``, ``_twin_follows``; forty-third round, time43); a FHIR client's
# write never sets it (``clients_times``; time43b)
TAKEN_FROM_EXT = "urn:huren:StructureDefinition:time-taken-from"
# an issue's ``details`` coding under this system is the deployment's mapping gap, not the sender's error: a
# code (or an order's text) the maps could not judge, counted on ``/admin/fidelity`` as an unmapped code at
# the field that stated it and never an ERR of the ACK (``mapping_gap``; ``engine.ingest``; code37)
MAPPING_GAP = "urn:huren:fidelity:unmapped-code"
# ISO 21090 name/address representation (ABC | IDE | SYL): HL7 v2 XPN-8/XAD-? table 4000 in FHIR
REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
_REPRESENTATION_KEY = ("@representation",)
# the type of resource an entry refers to (``Practitioner`` of ``{"reference": "Practitioner/..."}``):
# the kinds of a list of references (an Observation's performing organisation and its observer)
_TYPE_KEY = ("@type",)
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
_MISSING: Any = object()
# R4 diagnostic-report-status: a report done (and what may follow it), and what comes before it
_DONE = frozenset({"final", "amended", "corrected", "appended"})
_BEFORE = frozenset({"registered", "partial", "preliminary"})
# results changed after their final (OBX-11 C, A): their report is ``corrected`` (R4 diagnostic-report-status) --
# the converter (``results._status_from_results``, ``report_status``) and ``MergeRules._revived`` read this one set
CORRECTED = frozenset({"corrected", "amended"})
# what is the stored resource's own, not a statement of it: its type, id and ``meta`` (its version and,
# by its own rule, its label -- a higher one is taken from any message: privacy first)
_OWN = frozenset({"resourceType", "id", "meta"})

_CONTAINERS = (list, dict, str)
# how many resources' Provenances one search reads (``MergeRules._provenances``: ``target=A,B,...``),
# well under SQLite's bound parameters of one statement whatever a message's size
_TARGETS = 200
Resource = dict[str, Any]
Issue = dict[str, Any]
# which entries of a list element (dotted path -> values): e.g. (("use", ("work",)),); none: the element
Where = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class Delete:
    """What a message takes away from the stored version: ``element``, or only the entries of it
    that ``where`` matches (PID-7 ``""``: the birth-time extension). ``why`` is what the issue
    recorded on the message says took it (default: HL7's explicit null ``""``). ``leaves``: what
    another field stated that the deleted value also held (PID-25 ``""``: the birth order goes, the
    multiple birth PID-24 stated stays, as ``multipleBirthBoolean`` true) -- set when the delete
    took a stored value and nothing of that choice is left, unless the message deletes it too."""

    element: str
    where: Where = ()
    why: str = ""
    leaves: tuple[tuple[str, Any], ...] = ()
    # the message's own warning already says what went (a member's number re-keyed under the sender's
    # system, ``adapters.convert.persons._beside``): no issue of its own, one ERR for one thing
    quiet: bool = False


# the extension a list entry carries naming the HL7 v2 segment that stated it by its set id
# (AIP-1/AIL-1/AIG-1/AIS-1): ``valueIdentifier`` {system ``urn:huren:hl7v2:AIP-1``, value ``2``} --
# how a later message's ``AIP|2|U|...`` finds the entry it updates (``_changes``)
SET_ID = "urn:huren:StructureDefinition:hl7v2-set-id"


# a ``Change.action`` that is no table 0206 code: a kind of segment sent without action codes beside
# coded segments of other kinds (``AIL|1||<room>`` beside ``AIP|1|D|D01``) states that kind whole -- its
# ``key`` is the kind's set-id system (``urn:huren:hl7v2:AIL-1``): the stored entries of that kind are
# replaced by the message's, the other kinds' stay (twenty-third round; v2 snapshot mode is per
# repeating segment, and the message was read as the whole list)
STATED_WHOLE = "whole"
SET_ID_SYSTEM = "urn:huren:hl7v2:"  # + "AIP-1": the field a set id comes from (``SET_ID``'s identifier system)


class Untimely(Unprocessable):
    """A message refused because which of it and the message that stored a version is later cannot be
    told (``MergeRules._dated``): ``location`` is the field ERR-2 names (``OBX[2]-11``, ``MSH[1]-7``);
    ``version`` the stored version it was told against (``Type/id/_history/n``): the refusal records it,
    and an operator's replay "as later" is refused when it has changed since (ordfix35).
    ``more``: the write's further comparisons that could not be told either (``MergeRules.refused``):
    the refusal records every version it could not date, so one operator decision covers all the
    operator was shown -- stopping at the first, a correction of two withdrawn lines needed two
    rounds and its 409 called the second, unchanged result "changed" (rvfixord35 LOW 4; ordfix36).
    ``decided``: the versions an operator's decision answered in the same write (a decided replay
    refused over another version): still not told, so the refusal names them again beside the others."""

    def __init__(self, diagnostics: str, *, expression: list[str], location: str | None,
                 version: str | None = None, more: Sequence[Untimely] = (), decided: Sequence[str] = ()) -> None:
        super().__init__(diagnostics, expression=expression)
        self.location = location
        self.version = version
        self.more = tuple(more)
        self.decided = tuple(decided)

    @property
    def versions(self) -> list[str]:
        """Every stored version the refusal was told against, this one's first, each once."""
        return list(dict.fromkeys([*(u.version for u in (self, *self.more) if u.version), *self.decided]))


@dataclass(frozen=True, slots=True)
class Change:
    """One segment of a message that states a list element as changes (``Said.changes``): the set
    id its entries carry (``SET_ID``, as ``system|value``; empty when the segment has none), its
    action code (table 0206: A add, U update, D delete, X no change; ``STATED_WHOLE``: the kinds of
    segment sent without codes, ``key`` their set-id system), where it stands in the
    message (``located``: its set-id field, for the ACK's ERR-2) and, when the converter already
    knows the segment cannot be matched (no set id, a set id given twice), why."""

    key: str
    action: str
    at: str
    why: str = ""
    # what the segment states that the list does not carry (a service deleted, AIS-2 D: its concept)
    entries: tuple[Any, ...] = field(default=(), hash=False)  # (dicts: not hashed)
    # an update's (U) fields left empty -- v2: not present is no change, only ``""`` deletes: the parts
    # of the stored entry it keeps ("actor" AIP-3 empty, "type" AIP-4 empty, "status" AIP-12 empty)
    keep: tuple[str, ...] = ()
    # the status its own status field states (AIP-12, AIL-12, AIG-14 through participation_status),
    # "" when it states none: a U stating only a status is an update of the status
    status: str = ""


@dataclass(frozen=True, slots=True)
class Owned:
    """An element a message states only as the application that stored its number of the order (an order's
    ``code`` that ORC-1 XX states under a filler number whose EI-2/EI-3 names another application, or that ORC-1
    XO states: ``adapters.convert.results._not_the_orders``). The converter cannot tell whose number it is --
    a relay (MSH-3 ``ESB``) passes on its lab's numbers, and a lab's filler number is often its assigning
    authority, not its MSH-3 -- but the order's history can: ``MergeRules._numbered`` finds the message that
    first stored this identifier on the order. Its sending application (MSH-3 by ``datatypes.same_hd``, at the
    same institution) is this message's: stated. Anyone else's, or none stored (``unknown`` says which): the
    element only fills an order not stored yet, and the ACK warns at ``at`` with ERR-3 ``code`` (``text``,
    ``unknown`` appended when no message stored it); the message's own identifier of that kind, when the stored
    order does not hold it, is not stored either -- a held claim to a number would make its sender the first to
    store it (thirty-ninth round, ord39). A held statement is held whole: on a stored order, nothing else of what
    merge.yaml marks ``held`` is written or deleted either -- what the placer states of it (its time, requester,
    priority, re-test reason and that reason's withdrawal) and its status, the filler's or the placer's request's
    (review rv40h MED 5) (``MergeRules._without_held``; review rv40d HIGH 1-2). Each hold is
    kept with its message (``Dates.hold``: the message document's ``held_claims``), so a held claim makes its sender
    no storer even where its write created the order (``Stamp.claims``), and an operator may decide one held
    message's change is the owner's (``Dates.owns``; fortieth round, ord40).

    - ``kind``: the identifier's v2 0203 type (FILL, PLAC); ``system``/``value``: this message's number of it;
    - ``through``: a merge.yaml source group the storing message must be of ("" any): a result message repeats
      the placer's number (ORC-2) but places nothing, so the placer is the application whose ``order`` message
      stored it -- the version that first held it written by such a message; one a result message first stored
      names no placer (review rv39g MED 3: any later order message, the filler's own XX among them, was taken
      for the placer);
    - ``unknown``: True -- a number no message stored names no one, and the element is held (the filler's, whose
      namespace already named another); False -- taken (the placer's: nothing in the history to hold it by);
    - ``placing``: only a message stating the number as the placer's counts (``Stamp.placed``: an order
      message's ORC-1 NW, XO, RO ... under it): the first such to write a version holding it is the placer --
      a result message (that stored it first, arriving before the order) or the filler's own XX under it
      places nothing;
    - ``elsewhere``: the number is judged on *another* order that holds it, not on this one: a placer's
      statement under a placer number no order holds makes a new order, which must not carry the filler
      number of another (review rv39g MED 4) -- held unless that order's history names this sender; the other
      order is one of the sender's institution, placed (``_held_elsewhere``, review rv40c);
    - ``value`` empty (``system`` too): the statement names the order by another number alone (an XO under the
      filler's accession, ORC-2/OBR-2 empty: ``results.service_request`` finds the order holding it) and is
      judged under the order's own number of ``kind`` as stored (``_its_number``); an order holding none has
      nothing to judge by (review rv40h MED 7)."""

    element: str
    kind: str
    system: str
    value: str
    at: str
    text: str
    code: str
    through: str = ""
    unknown: bool = True
    elsewhere: bool = False
    placing: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Said:
    """What one message said of one resource beside its content, for the merge (``MergeRules.saying``):

    - ``deletes``: what the message deleted (HL7's explicit null; an unlink's links);
    - ``assumed``: the elements the converter filled without the message stating them (an A08's
      Encounter status, any Patient's ``active`` but a merge's or an unlink's): they fill only an
      element not stored;
    - ``fields``: element -> the field of the message that stated it (``ORC[1]-5``, ``located``): a
      value the rules do not store is located in the ACK's ERR-2, as any other problem with a field;
    - ``sub_id``: the message tells the result from its test's others by a sub-id (OBX-4): new to a
      report beside one of its test and time, it is another result, not a time point re-sent alone;
    - ``moved_from``: element -> the reference the message says the stored value was (an A45 moves
      a visit from the patient MRG-1 names to PID's): a move the sender states, not a number reused,
      so ``another_person`` lets it pass when the stored value is that record (or its person's);
    - ``mother``: element -> the Patient the message names as its patient's mother (PID-21): a
      newborn's results filed under the mother's visit number (rooming-in, 母婴同室) name a visit
      stored under that record (or its person's) -- asked only of a resource the message finds
      stored and leaves as it is (``found``), never of one it would re-file;
    - ``changes``: list elements the message states as changes entry by entry, each with the
      segments that state them (``Change``, ``_changes``);
    - ``referred``: elements (a subject) that name the patient of a referral the message answers --
      a reading centre's report links the township's order and study, whose Task names the
      township's patient: a stored one of another record passes unless the index knows the two
      for two persons (``Persons.known_apart``), asked only by ``found``.
    - ``taken_from``: element -> the stored reference the visit's owner takes over (the HIS's
      admission over a lab's placeholder visit, decided from the store by
      ``adapters.convert.takeover``): ``another_person`` lets it pass when the stored value is
      exactly that record, the stored version the one judged (``taken_at``, its versionId) and a
      message's, and the index holds that record for no one else and knows no two persons;
    - ``stand_in``: element -> the message's own record, a lab's stand-in (``takeover.settle_stay``),
      when the thin visit it names (written only when absent) is stored under another record:
      ``another_person`` lets the visit stand when its history shows it taken over from exactly that
      record -- the lab's later results of the stay (visfix33).
    Built by ``adapters.convert.context.Context`` (``Conversion.said``, per "Type/id")."""

    deletes: tuple[Delete, ...] = ()
    assumed: frozenset[str] = frozenset()
    fields: tuple[tuple[str, str], ...] = ()
    sub_id: bool = False
    moved_from: tuple[tuple[str, str], ...] = ()
    mother: tuple[tuple[str, str], ...] = ()
    referred: frozenset[str] = frozenset()
    taken_from: tuple[tuple[str, str], ...] = ()
    taken_at: str = ""
    stand_in: tuple[tuple[str, str], ...] = ()
    # element -> the segments stating it as changes to the stored list (an S14 whose every resource
    # segment carries an action code, table 0206 A/U/D/X): each segment's entries are found among the
    # stored ones by set id, then actor, then role (``_changes``); the stored entries none names stay
    changes: tuple[tuple[str, tuple[Change, ...]], ...] = ()
    # an S13 (rescheduled) stating a new start with no end and no duration (SCH-11/TQ1-7 or an AIx
    # start alone): (the start, as an instant; as sent; where: ``SCH[1]-11``) -- v2 ch. 2: an empty
    # field does not overwrite the stored value, so the stored length stands and the end moves with
    # the start (``_moved_start``); nothing stored to take the length from: not taken, said there
    start_alone: tuple[str, str, str] = ()
    # a resource the message carries only so its Bundle stands alone (written only when absent, as a
    # billing message's thin Encounter was) but for these elements, which it states of the stored one
    # too (the DG1s' Encounter.diagnosis entries of a BAR or DFT, twenty-fifth round): stored, every
    # other element stays as it is -- the ``another_person`` ones still asked -- and only these combine
    only: frozenset[str] = frozenset()
    # elements located only when an issue names one (``at``): (segment, its occurrence, ((element, field),
    # ...)) -- a result's value at OBX-5, its range at OBX-7, its flag at OBX-8, each of them the message
    # states (the ACK's warning of a restatement held names the field: tfix35). Made eagerly, three
    # located texts an OBX cost ~2 % of a first version, whose merge asks none (thirty-fifth round, rerun35)
    later: tuple[str, int, tuple[tuple[str, int], ...]] | tuple[()] = ()
    # elements stated only as the application that stored the order's number they come under (``Owned``)
    owned: tuple[Owned, ...] = ()
    # element -> the precision the message stated a time at (``timestamps.stated_digits``: 10 an hour, 12 a
    # minute) where its FHIR text writes more (``:00`` seconds) -- a report's OBR-7/8 of minutes: compared at that
    # precision (``compare_times``, ``_not_thinner``: review rv42c MED 1; forty-second round, acc42)
    digits: tuple[tuple[str, int], ...] = ()
    # "DiagnosticReport/id" of the report listing this result, where the message states it as a correction (``by``
    # of its ``exam_time``: OBX-11 C, A): a result new to the store takes the stored report's exam time, as the
    # report keeps it (``MergeRules._exam_of_report``; rv42e MED 2, forty-third round, time43)
    report: str = ""
    # the message's status of that report, where the resource has no status of its own to tell a correction by (an
    # ImagingStudy: ``exam_time``'s ``of: report`` -- ``MergeRules._exam_by_report``; rv42e LOW, time43)
    report_status: str = ""

    def digits_of(self, element: str) -> int | None:
        """The precision the message stated ``element``'s time at, where coarser than its text (``digits``)."""
        return next((d for name, d in self.digits if name == element), None)

    def at(self, element: str, resource: Mapping[str, Any]) -> str | None:
        """Where the message stated ``element`` of ``resource`` (the version it states): ``fields``, else
        ``later`` when ``resource`` has the element; None when neither says."""
        found: str | None = None
        for name, where in self.fields:
            if name == element:
                found = where  # (the last, as ``dict(fields)``)
        if found is None and self.later and element in resource:
            segment, sequence, table = self.later
            for name, field_no in table:
                if name == element:
                    return located(segment, sequence, field_no)
        return found

    def first_at(self, elements: Iterable[str], resource: Mapping[str, Any]) -> str | None:
        """``at`` of the first of ``elements`` the message located (a restatement's value before its
        flags: ERR-2 at OBX-5); None when it located none of them."""
        return next((a for n in elements if (a := self.at(n, resource)) is not None), None)


def located(segment: str, sequence: int | str, field: int | str) -> str:
    """``ORC[1]-5``: a field of one segment occurrence, as an issue's ``location`` (read back for ERR-2)."""
    return f"{segment}[{sequence}]-{field}"


_LOCATED = re.compile(r"^([A-Z][A-Z0-9]{2})\[(\d+)\]-(\d+)$")


def field_of(location: str) -> tuple[str, int, int] | None:
    """Segment, its occurrence and field of a ``located`` text (``ORC[1]-5``: ERR-2), else None --
    the one reader of what ``located`` writes."""
    at = _LOCATED.match(location)
    return (at[1], int(at[2]), int(at[3])) if at is not None else None


@dataclass(frozen=True)
class Slice:
    """Entries of a list element that belong to their owners alone (e.g. the index's Patient.link)."""

    name: str
    why: str
    where: tuple[tuple[tuple[str, ...], frozenset[str], tuple[str, ...]], ...]  # path, values, prefixes

    def matches(self, entry: Any) -> bool:
        for path, values, prefixes in self.where:
            found = [v for v in _collect(entry, path) if isinstance(v, str)]
            if not any(v in values or (prefixes and v.startswith(prefixes)) for v in found):
                return False
        return True


@dataclass(frozen=True)
class Beside:
    """One rule of ``beside`` (``merge.yaml``): the stored entries ``where`` matches stay beside the list a writer
    replaces unless it states one of their ``kind``; not where the incoming version matches ``unless`` (a
    registration stating the record merged away: its identifiers are MRG-1's)."""

    kind: tuple[tuple[str, ...], ...]
    where: Slice
    unless: Slice | None = None


def _deletes_part(delete: Delete, name: str, part: Slice | None) -> bool:
    """Whether ``delete`` takes away (some of) the element ``name``'s ``part`` (None: the whole element; a
    slice: a delete of entries matching it -- every path of its ``where`` the slice's, with a value of it)."""
    if delete.element.split(".", 1)[0] != name:
        return False
    if part is None:
        return True
    paths = {path: values for path, values, _ in part.where}
    return bool(delete.where) and all(tuple(p.split(".")) in paths and set(v) & paths[tuple(p.split("."))]
                                      for p, v in delete.where)


def _slice_of(name: str, where: Mapping[str, Any], why: str = "") -> Slice:
    """A ``where`` of ``merge.yaml`` (dotted path -> a value or values; one ending in ``*`` a prefix) as a ``Slice``:
    a slice's, a ``beside`` rule's."""
    parsed = []
    for path, wanted in where.items():
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        parsed.append((tuple(path.split(".")), frozenset(v for v in values if not v.endswith("*")),
                       tuple(v[:-1] for v in values if v.endswith("*"))))
    return Slice(name, why, tuple(parsed))


@dataclass(frozen=True)
class SlicePlan:
    slice: Slice
    own: bool  # the writer is an owner of the slice
    mode: str  # how an owner's entries combine with the stored ones
    # parts of an entry a feed's thinner statement of it (the same key, the part left out) does not
    # erase: R06 with the doctor's text echoed by the LIS as ``R06^其他必要复查`` keeps its text
    keeps: tuple[str, ...] = ()
    first: bool = False  # its entries are listed before the others (an appointment's patient)


@dataclass(frozen=True, slots=True)
class Back:
    """One step of ``not_back`` (``merge.yaml``): a stored status of ``over`` (``from``) is not taken back
    to one of ``to`` by the writer. Several steps say what one pair of sets cannot: an X (cancelled: no
    result obtained) after F, C or A is a lab's cancel, taken; over a withdrawn result (W: posted as
    wrong) it is not, as a P is taken over neither (review rv36f MED 2; thirty-seventh round, status37).
    ``kept``: the elements describing the observation kept out with its status and the elements dated
    with it (``with``: a P's OBX-14 beside the stored value, pdate36). ``whole``: the stored version stays
    whole -- nothing of the message's statement of the resource is written, held as an older one is
    (a withdrawn result: as a placeholder over it, ``withdrawn``). ``why``: the reason the warning gives
    (none: a result of the stored status is taken back only by C, A/B, W/D; table 0085).
    ``merged`` (None: not stated): the only elements of the message's statement merged -- every other
    one it states or the stored version holds is kept as stored with the status (``kept`` named what was
    kept out, so whatever it did not name got in: the P's observer, method and specimen were stored on
    the final value it did not measure; review rv37a MED 2-4, thirty-seventh round, notback37). ``unless``
    (``unless_states``): the step is no step for a message stating one of these -- over a withdrawal a
    U, F, C or A stating no value (OBX-5 empty: a status alone, U "status change to final without
    retransmitting results") is held whole, one stating its value is a result and brings it back
    (review rv37e MED 1; thirty-seventh round, statfix37)."""

    over: frozenset[str]
    to: frozenset[str]
    kept: frozenset[str] = frozenset()
    whole: bool = False
    why: str = ""
    merged: frozenset[str] | None = None
    unless: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ElementPlan:
    """How one element combines for one writer (the rules resolved for that writer)."""

    mode: str
    key: tuple[tuple[str, ...], ...] | None
    conflict: str  # warn | reject
    owners: tuple[str, ...] = ()
    slices: tuple[SlicePlan, ...] = ()
    follows: frozenset[str] = frozenset()  # stated with any of these: the incoming value, absent = removed
    stands: frozenset[str | bool] = frozenset()  # stored values this writer may not change (``stands``)
    yields_to: frozenset[str | bool] = frozenset()  # incoming values no ``stands`` value stands against
    placeholders: frozenset[str] = frozenset()  # values that state nothing (``placeholders``)
    as_far_as: str = ""  # a status no further than the resources this list element references
    progress: Mapping[str, int] | None = None  # ``as_far_as``'s order: lower = less advanced
    names_all_of: str = ""  # a concept naming every test of the resources this list element references
    another: str = ""  # warn | reject: a concept naming another test than the stored one (``another``)
    another_if: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()  # ... only when the stored version has such an entry (``another_if``)
    unless_deletes: frozenset[str] = frozenset()  # a message deleting one of these is not held by ``stands`` (A13: period.end)
    # entry status -> the resource statuses that give it (``status_follows``): a list element's stored
    # entries kept beside a message not stating it take the status the combined resource's status gives
    status_follows: tuple[tuple[str, frozenset[str]], ...] = ()
    # (reference list element, coding system) -- ``inherits``: entries in that system taken from the
    # resources the list names when the resource states none of its own
    inherits: tuple[str, str] | None = None
    # warn | reject: a reference to a Patient the patient index does not hold for the stored one's
    # person (``another_person``: one order number, two patients)
    another_person: str = ""
    # parts of a keyed entry (``by-key``/``union``) kept from the stored entry of the same key when the
    # incoming one leaves them out (``keeps``): an empty field is "not sent" (v2 ch. 2), not a delete;
    # under ``keep-if-absent`` the element is one keyed object (a reference: its display)
    keeps: tuple[str, ...] = ()
    # ``when: changed``: only an incoming value that changes what it follows takes this element with it
    follows_changed: bool = False
    # ``was``: list element -> (path, values) matching the entries of it that are this element's own
    # extensions, where older code stored them (read into ``_element.extension`` before combining)
    was: tuple[tuple[str, tuple[tuple[tuple[str, ...], frozenset[str]], ...]], ...] = ()
    # ``history``: statuses of a ``status_follows`` list's entries that are the past (a bed left:
    # ``completed``): a message stating the list keeps the stored ones of a place it does not state
    history: frozenset[str] = frozenset()
    # ``history_unless``: resource statuses under which no past is kept (a cancelled admission, A11:
    # the visit never took place, so no bed of it was occupied -- convfix28)
    history_unless: frozenset[str] = frozenset()
    # ``lines_of``: the list element whose referenced resources say this text's lines (a report's
    # ``conclusion``, its impression results' words): a line a result withdrew or reworded follows it
    lines_of: str = ""
    # ``text_of``: the reference list (a dotted path: ``context.related``) naming the report whose
    # plain-text ``presentedForm`` this attachment list's text copies, as this write combined it
    text_of: tuple[str, ...] = ()
    # ``until_later``: where the stored value or the message's is in ``stands`` (and they differ), the
    # message's is taken only from a message later than the one that stored the version (the senders'
    # MSH-7, ``engine.message_time``); an older message's version is a stale statement and changes
    # nothing of the resource (ACK W); when it cannot be told, the message is refused (``Untimely``);
    # over a stored value not in ``stands`` only the same sender's strictly later MSH-7 holds it back
    until_later: bool = False
    # ``displays``: the references (dotted paths in the entries: ``location``) whose display copies the
    # name of the resource they name: where this message only assumed that name (the target's
    # ``Said.assumed`` holds ``name``: a PL without PL-9), a stored entry's display of the same
    # reference stays (locfix34: an A08 sending the ward by code named the visit's bed "XYK 301房 02床")
    displays: tuple[tuple[str, ...], ...] = ()
    # ``until_later: [value[x], ...]``: the elements dated with this one -- a message stating the same
    # stored status in ``stands`` (a correction over a correction) but another of these is dated too
    dated_with: frozenset[str] = frozenset()
    # ``states: [writers]`` (a ``union`` of one CodeableConcept, an order's ``code``): the writer states
    # the concept (the order message): its codings lead, and another test from it is a change of test
    # (stated whole); any other writer's coding is added only for the same test (codefix35)
    states: bool = False
    # ``not_from_older: true`` (a report's times, OBR-22 ``issued``, OBR-7 ``effective[x]``): not written
    # by a message the same sender's MSH-7 shows older than the one that stated the stored version
    # (``MergeRules._older_times``); another sender, an unusable time or a client's version: as the mode says
    not_from_older: bool = False
    # ``not_back``: the steps back the writer does not take (``Back``: a result's P after its F, an X
    # over a withdrawn result: ``MergeRules._not_back``) -- one mapping, or a list of them
    not_back: tuple[Back, ...] = ()
    # every (from, to) pair a ``not_back`` step names: a look-up before ``_backward`` where most statuses
    # are no step (a correction over a final, asked the other way round for each result: status38)
    back_pairs: frozenset[tuple[str, str]] = frozenset()
    # ``withdrawn: [entered-in-error]``: stored values (in ``stands``) a placeholder's restatement is not
    # written into -- a withdrawn result comes back only by a message stating its status (``_dated``)
    withdrawn: frozenset[str] = frozenset()
    # ``stands_with`` (an ``as_far_as`` status: a report's): the elements kept as stored with the status
    # where a step back of it is not taken (its results kept at their status, ``not_back``; a message
    # carrying none) -- its times (OBR-7, OBR-22): the P's re-drawn 11:00 dated the final report (rv37a
    # MED 5; notback37)
    stands_with: frozenset[str] = frozenset()
    # ``stands_with: {merged: [...]}``: the inverted form -- every element but these (and the resource's own,
    # ``_OWN``) stands with the status; None: not stated (the list form above says what stands). Listing what
    # stands let the kept-out P's interpreter (OBR-32), draft impression and re-drawn tube into the final
    # report (review rv38a HIGH 1-2; thirty-eighth round, pfix38)
    merged_with: frozenset[str] | None = None
    # ``stands_with: {merged: [...], taken: [...]}``: what stands when the message's results were not all kept
    # out (a correction, OBX-11 C; a final restated; a new final result) -- only what the kept-out results
    # alone stated stays out beside it (``_over``): the inverted form had kept a correction's words, signer
    # and tube out of the report it was listed in (review rv38d HIGH 1-2, MED 3-4; pffix38)
    taken_with: frozenset[str] = frozenset()
    # ``all_results`` (an ``as_far_as`` status: a report's): status -> result statuses; the report whose
    # every listed result, as merged, is of one of them is of that status, the first that holds -- all
    # withdrawn: entered-in-error; none obtained or withdrawn: cancelled (status38)
    all_results: tuple[tuple[str, frozenset[str]], ...] = ()
    # ``beside: {<writer>: [{kind, where, unless}, ...]}`` (a list the writer replaces): the stored entries a rule's
    # ``where`` matches are not the writer's to take away -- they stay beside its list unless it states an entry of
    # their ``kind`` (``_not_theirs``): the registration's identifiers (ident39)
    beside: tuple[Beside, ...] = ()
    # ``over_value`` (a result's ``dataAbsentReason``): the resource statuses, as merged, beside which the reason
    # a message states replaces a stored value (X, "results cannot be obtained": cancelled) -- elsewhere a
    # reason without a value leaves the stored value (a re-send with OBX-5 empty; thirty-ninth round, stat39)
    over_value: frozenset[str] = frozenset()
    # ``over_value_with``: what describes the value and goes with it there (its interpretation, its reference
    # range): an X after a final of 6.1 H stood "High" beside no value (review rv39e LOW 6; sfix39)
    over_value_with: frozenset[str] = frozenset()
    # ``withdrawal_keeps`` (a ``withdrawn`` status: a result's): the elements a message taking the stored resource
    # to one of ``withdrawn`` leaves as stored -- a withdrawal (OBX-11 W/D: "post original as wrong") says the
    # original was wrong, nothing new of where it was measured: the group's SPM, a kept-out P's re-drawn tube
    # beside it, was filed on the withdrawn result (thirty-ninth round, stat39)
    withdrawal_keeps: frozenset[str] = frozenset()
    # ``exam_time: {over: [statuses], by: [statuses]}`` (a result's time: OBR-7, OBX-14): when the exam or the
    # specimen was made -- a message of a status in ``by`` (a correction, amendment, addendum) over a stored
    # status in ``over`` (a final result) does not move it (``MergeRules._exam_times``): a LIS restamping OBR-7
    # with its correction's send time dated a 2024 CBC 210 days later, a "prior" no exam made (rv41k MED 6;
    # forty-second round, prior42). None: no such rule
    exam_time: tuple[frozenset[str], frozenset[str]] | None = None
    # ``exam_time``'s ``unless_new: [specimen]``: a message naming an entry of these the stored version does not
    # (a re-drawn tube, SPM-2) states another specimen, made when it says: its time is taken (notback37's control)
    exam_new: tuple[str, ...] = ()
    # ``exam_time``'s ``of: report``: the statuses are its report's (an ImagingStudy has none of its own to tell a
    # correction by): the message's of the report (``Said.report_status``) over the stored report's (time43)
    exam_of_report: bool = False
    # ``derived: yields`` (a result's time): a value the converter took from another field (its primitive twin
    # marked ``TAKEN_FROM_EXT``: OBR-7 where OBX-14 is empty) never replaces a stored one stated as itself (no
    # mark: OBX-14, a client's), nor a stated sibling choice; over a stored derived one it is written -- the time
    # follows its source, a later report moving OBR-7 moves its results -- and its mark goes with the value
    # (``MergeRules._derived_times``, ``_twin_follows``; rv42b HIGH 2's time half, forty-third round, time43)
    derived: bool = False
    # ``not_thinner: true``: a restatement of the stored instant at a coarser precision (its date alone) is not
    # written (``_not_thinner``) -- what ``not_from_older`` implies for a report's times, for an element that is
    # not dated by the message's MSH-7 (a result's time: xofix42's date-only re-send; time43)
    not_thinner: bool = False


@dataclass(frozen=True)
class TypePlan:
    default: ElementPlan
    elements: Mapping[str, ElementPlan]
    trivial: bool  # every element is "replace" and nothing is owned: the incoming version as is
    guards_create: bool  # a slice the writer does not own: checked even when nothing is stored
    choices: Mapping[str, frozenset[str]]  # a choice element (valueQuantity) -> its siblings (valueString...)
    follows: tuple[tuple[str, frozenset[str]], ...] = ()  # elements stated with others (``follows``)
    over: tuple[tuple[str, ElementPlan], ...] = ()  # ``as_far_as`` / ``names_all_of`` elements
    sliced: tuple[str, ...] = ()  # the elements with slices: the only ones a create's ``combine`` looks at
    settled: tuple[tuple[str, ElementPlan], ...] = ()  # the ``status_follows`` elements
    inherited: tuple[tuple[str, ElementPlan], ...] = ()  # the ``inherits`` elements
    persons: tuple[str, ...] = ()  # the ``another_person`` elements
    moved: tuple[tuple[str, Any], ...] = ()  # the ``was`` elements: (element, ElementPlan.was)
    lined: tuple[tuple[str, ElementPlan], ...] = ()  # the ``lines_of`` elements
    copied: tuple[tuple[str, ElementPlan], ...] = ()  # the ``text_of`` elements
    dated: tuple[tuple[str, ElementPlan], ...] = ()  # the ``until_later`` elements
    displayed: tuple[tuple[str, ElementPlan], ...] = ()  # the ``displays`` elements
    timed: tuple[str, ...] = ()  # the ``not_from_older`` elements
    backed: tuple[tuple[str, ElementPlan], ...] = ()  # the ``not_back`` elements
    examined: tuple[tuple[str, ElementPlan], ...] = ()  # the ``exam_time`` elements
    exam_by: frozenset[Any] = frozenset()  # every ``exam_time`` element's ``by`` statuses: the one look-up most merges ask
    derived: tuple[str, ...] = ()  # the ``derived: yields`` elements (a result's time: time43)
    thin: tuple[str, ...] = ()  # the elements a coarser restatement does not write: ``not_from_older``, ``not_thinner``


class Persons(Protocol):
    """Who owns "same person": the master patient index (``engine.identity.mpi.IdentityService``).
    The merge asks it whether two Patient records are one person's (linked by ID number, merged,
    linked by an operator); it never decides that from the records itself."""

    def same_person(self, one: str, other: str) -> bool: ...

    def known_apart(self, one: str, other: str) -> bool: ...

    def person_compartment(self, patient_id: str) -> frozenset[str]: ...


class Stored(Protocol):
    """What the merge reads of other stored resources (``as_far_as``): the repository (whose
    ``persons``, when it has one, is asked by ``another_person``)."""

    def read_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]: ...

    def pending(self) -> list[tuple[dict[str, Any], dict[str, Any] | None]]: ...


class SameTest(Protocol):
    """Whether two orders are for the same test by the recognition catalogue (one recognition item),
    beyond a shared code (``inherits``): the engine gives the recognition rules' reading."""

    def __call__(self, one: Mapping[str, Any], other: Mapping[str, Any]) -> bool: ...


@dataclass(slots=True)
class Combined:
    resource: Resource
    issues: list[Issue]


@dataclass(frozen=True, slots=True)
class _Kept:
    """A step back ``MergeRules._not_back`` kept out of a resource merged otherwise: its warning (W at the
    status's field, ``issue``) is worded once the merge is done (``say``) -- it names the elements that
    stood against what the message stated of them or deleted, and as stored only what of the rest the
    merge wrote. The list once named every element the message stated otherwise, whether written or
    left by a rule of its own (review rv36f LOW; thirty-seventh round, status37). ``guarded``: the
    elements kept as stored (the status, those dated with it, ``with``, what follows them); ``told``:
    the message's version before they were taken out; ``head``: the warning's reason."""

    issue: Issue
    rtype: str
    name: str
    guarded: frozenset[str]
    told: Resource
    head: str
    # the merged list elements the message added to beside the stored entries (``_beside``: a kept-out P's
    # note beside the final's): named so, not as replacing them (rv38a MED 3; pfix38)
    beside: frozenset[str] = frozenset()

    def say(self, stored: Resource, out: Resource, deleted: Iterable[str]) -> None:
        gone = set(deleted)
        told, rtype = self.told, self.rtype
        stood = [self.name, *sorted(
            n for n in self.guarded - {self.name} if out.get(n, _MISSING) == stored.get(n, _MISSING)
            and ((n in gone and n in stored) or told.get(n, _MISSING) not in (_MISSING, stored.get(n, _MISSING))))]
        written = sorted(n for n, v in told.items() if n not in self.guarded and n not in _OWN
                         and v != stored.get(n, _MISSING) and out.get(n, _MISSING) != stored.get(n, _MISSING))
        named = ", ".join(f"{rtype}.{n}" for n in stood)
        also = "; what else it states is stored ({})".format(", ".join(
            f"{rtype}.{n}, beside the {n} stored, which stays" if n in self.beside else f"{rtype}.{n}"
            for n in written)) if written else ""
        self.issue["expression"] = [f"{rtype}.{n}" for n in stood]
        self.issue["diagnostics"] = f"{named}: {self.head} -- these stand as stored{also}"


class _Saying:
    """``MergeRules.saying``'s block: this thread's ``said`` and ``stored`` set on entry, the outer
    block's put back on exit (blocks nest). One block is entered once, like the generator it replaced:
    entered again it would keep the first entry's outer values and leave its own behind on exit."""

    __slots__ = ("_local", "_said", "_stored", "_at", "_outer", "_entered")
    _NONE = (None, None, None, None, None, None, None, None, None)

    def __init__(self, local: threading.local, said: Mapping[str, Said] | None, stored: Stored | None,
                 at: Dates | None = None) -> None:
        self._local, self._said, self._stored, self._at = local, said, stored, at
        self._outer: tuple[Any, ...] = self._NONE
        self._entered = False

    def __enter__(self) -> None:
        if self._entered:
            raise RuntimeError("a saying() block is entered once; make a new one")
        self._entered = True
        local = self._local
        self._outer = (getattr(local, "said", None), getattr(local, "stored", None), getattr(local, "at", None),
                       getattr(local, "held", None), getattr(local, "provenances", None),
                       getattr(local, "untimely", None), getattr(local, "decided", None), getattr(local, "kept", None),
                       getattr(local, "out", None), getattr(local, "held_said", None))
        # ``held``: "Type/id" -> the words of a version this message stated that ``until_later`` left
        # out (an older statement of a withdrawn result): the report's ``lines_of`` adds none of them
        # ``provenances``: the Provenances read for the block's write (``MergeRules._provenances``)
        # ``untimely``: the comparisons of the write that could not be told (``MergeRules.refused``),
        # ``decided``: the versions an operator's decision answered (named again by a refusal)
        # ``kept``: "Type/id" of the reports whose text stood with a status kept as stored (``stands_with``):
        # the document copying the text is not written either (``_copy_held``; pfix38)
        # ``out``: "Type/id" -> the version this message stated of a result whose step back ``not_back`` kept
        # out (a P after its F): a report judges by it what of the message was kept out (``_over``; pffix38)
        # ``held_said``: "Type/id" -> the version this message stated of a result ``held`` (``_hold``): a report
        # none of whose results stands judges by it what only the held ones stated (``_none_standing``; sfix39)
        (local.said, local.stored, local.at, local.held, local.provenances,
         local.untimely, local.decided, local.kept, local.out, local.held_said) = (
            self._said, self._stored, self._at, None, None, [], [], None, None, None)

    def __exit__(self, *exc: object) -> None:
        left, answered = self._local.untimely, self._local.decided
        (self._local.said, self._local.stored, self._local.at, self._local.held,
         self._local.provenances, self._local.untimely, self._local.decided, self._local.kept,
         self._local.out, self._local.held_said) = self._outer
        if left and exc[0] is None:  # (a write that ended without asking ``refused``: refused all the same)
            raise _combined(left, answered)


@dataclass(frozen=True, slots=True)
class _Compiled:
    """One merge.yaml's rules as compiled, shared by every ``MergeRules`` of the same rules in a process
    (``_COMPILED``, keyed by a digest of the rules as read). Why: each Engine's open built its own and compiled
    every plan it met again (~0.2 ms a resource type and writer, ~10-100 an Engine in the tests; forty-third
    round, trim43), as the converter's tables were before the site's reading was shared (trim42b). Read-only:
    the tables are ``mappings.frozen`` copies; ``plans`` and ``held_parts`` only gain entries, each a frozen
    plan or a tuple decided by the rules alone."""

    groups: Mapping[str, frozenset[str]]
    default_modes: Mapping[str, str]
    conflicts: Mapping[str, str]
    resources: Mapping[str, Mapping[str, Any]]
    plans: dict[tuple[str, str], TypePlan]
    held_parts: dict[str, tuple[tuple[str, Slice | None], ...]]


# digest of the rules' canonical form (``_canonical``: a mapping's keys in any order) -> their compiled set; the same
# rules from another site folder, written in another key order, or built from an equal mapping, are compiled once a
# process; other rules, another set. ``_READ_AS``: digest of the rules as read (``repr``, the YAML's own order: ~0.7
# ms on merge.yaml where the canonical form takes ~2) -> their canonical digest, so rules met before skip the
# canonical form. Both bounded (``_KEPT_SETS``), both asked and changed under ``_COMPILING`` only: two Engines opened
# on two threads had each evicted by ``pop(next(iter()))`` while the other inserted (trim43's left MED, low44)
_COMPILED: dict[bytes, _Compiled] = {}
_READ_AS: dict[bytes, bytes] = {}
_KEPT_SETS = 16  # (sites loaded and let go, in a test run)
_COMPILING = threading.Lock()


def _canonical(value: Any) -> str:
    """``value`` (rules as read: mappings, lists, scalars) as text two equal values share whatever their mappings'
    key order -- each mapping's entries sorted, a list's kept in order, a tuple told from a list, a scalar by
    ``repr`` (``1``, ``True`` and ``'1'`` apart) -- so two ``==`` rule sets are one key of ``_COMPILED``, two others
    never. Why: keyed by ``repr``, equal rules written in another key order compiled twice (trim43's left MED)."""
    if isinstance(value, Mapping):
        return "{" + ",".join(sorted(f"{_canonical(k)}:{_canonical(v)}" for k, v in value.items())) + "}"
    if isinstance(value, list):
        return "[" + ",".join(map(_canonical, value)) + "]"
    if isinstance(value, tuple):
        return "(" + ",".join(map(_canonical, value)) + ")"
    return repr(value)


def _kept(table: dict[bytes, Any], key: bytes, value: Any) -> None:
    """``table[key] = value``, the oldest entries let go beyond ``_KEPT_SETS`` (the caller holds ``_COMPILING``)."""
    table[key] = value
    while len(table) > _KEPT_SETS:
        del table[next(iter(table))]


class MergeRules:
    """The compiled merge rules (see ``mappings/merge.yaml``)."""

    def __init__(self, data: Mapping[str, Any], origin: str = "merge.yaml") -> None:
        self.origin = origin
        self.data = data
        as_read = hashlib.blake2b(repr(data).encode(), digest_size=20).digest()
        with _COMPILING:
            key = _READ_AS.get(as_read)
            compiled = _COMPILED.get(key) if key is not None else None
            if compiled is None:
                key = hashlib.blake2b(_canonical(data).encode(), digest_size=20).digest()
                compiled = _COMPILED.get(key)
            if compiled is None:  # (compiled from a read-only copy: a caller changing ``data`` after changes no one's)
                read_only = frozen(data)
                self._groups = FrozenDict(self._expand(read_only.get("sources") or {}))
                defaults = read_only.get("defaults") or {}
                self._default_modes: Mapping[str, str] = defaults.get("modes") or {}
                self._conflicts: Mapping[str, str] = defaults.get("conflict") or {}
                self._resources: Mapping[str, Mapping[str, Any]] = read_only.get("resources") or {}
                self._check_names()
                compiled = _Compiled(self._groups, self._default_modes, self._conflicts, self._resources, {}, {})
                _kept(_COMPILED, key, compiled)
            _kept(_READ_AS, as_read, key)
        self._groups, self._default_modes, self._conflicts, self._resources = (
            compiled.groups, compiled.default_modes, compiled.conflicts, compiled.resources)
        # (the plans and held parts as each is first asked, shared by every MergeRules of these rules: each entry is
        # a frozen ``TypePlan`` or a tuple, a function of the rules alone, so two threads filling one give equal ones)
        self._plans: dict[tuple[str, str], TypePlan] = compiled.plans
        self._held_parts: dict[str, tuple[tuple[str, Slice | None], ...]] = compiled.held_parts  # (``_held_whole``)
        # (this instance's own: the message being written on each thread, ``saying``; and the engine's ``same_test``)
        self._local = threading.local()
        # ``inherits``: orders a shared code does not tell are for the same test may still be (one
        # recognition item under two codes); the engine sets the recognition rules' reading here
        self.same_test: SameTest | None = None

    def owned_of(self, rtype: str, resource: Mapping[str, Any]) -> tuple[Owned, ...]:
        """What this thread's message states of ``resource`` only as the application that stored its number
        (``Said.owned``): a first version carrying any is combined, not stored inline (``Writes.write_many``),
        so its ACK still warns and the message's claim to the number is not stored (thirty-ninth round, ord39).
        ``Writes.write_many`` asks ``owning`` once a group first: a 12-OBX lab result's ~17 first versions each
        paid this call (~0.4 % of its instructions with the rest of the change)."""
        if not self.owning():
            return ()
        told = self._local.said.get(f"{rtype}/{resource.get('id')}")
        return told.owned if told is not None else ()

    def owning(self) -> bool:
        """Whether this thread's message said of any resource what it states only as the number's owner
        (``Said.owned``), or the report of a result it states as a correction (``Said.report``): a first version
        of such a resource is combined (``first_combined``). Read once a message (``_local.owning``: its ``said``
        and the answer)."""
        saids = getattr(self._local, "said", None)
        if not saids:
            return False
        owning = getattr(self._local, "owning", None)
        if owning is None or owning[0] is not saids:
            owning = self._local.owning = (saids, any(told.owned or told.report for told in saids.values()))
        return bool(owning[1])

    def first_combined(self, rtype: str, resource: Mapping[str, Any]) -> bool:
        """Whether a first version of ``resource`` is combined rather than stored as it is (``Writes.write_many``,
        ``as_is``): the message states part of it only as the number's owner (``owned_of``), or it is a result
        stated as a correction whose report may be stored with its exam time (``Said.report``: ``_exam_of_report``)."""
        if not self.owning():
            return False
        told = self._local.said.get(f"{rtype}/{resource.get('id')}")
        return told is not None and bool(told.owned or told.report)

    def said_of(self, ref: str) -> Said | None:
        """What this thread's message said of ``ref`` ("Type/id") beside its content, if anything
        (``saying``): the patient index locates a merge it refuses at the field that stated it."""
        return (getattr(self._local, "said", None) or {}).get(ref)

    def saying(self, said: Mapping[str, Said] | None, stored: Stored | None = None, at: Dates | None = None) -> _Saying:
        """Within the block (one message's write, on this thread), ``stored`` is where the rules
        read the other resources a combined one refers to (``as_far_as``), and an update of a
        resource named in ``said`` ("Type/id" -> what its message said of it beside its content, ``Said``) drops
        the stored elements or entries the message deleted (HL7's explicit null ``""``), unless the
        message itself states them again -- an empty field keeps the stored value
        (``keep-if-absent``) --, lets an element the converter only assumed fill only an element
        not stored, and locates a value not stored at the field that stated it. ``at``: the
        message times (``engine.message_time.Dates``: this message's MSH-7 and sender, and the stored
        versions' messages'), which ``until_later`` compares.

        A context manager (``with rules.saying(said, repository):``); a plain class rather than a
        generator, as ingest enters one per message."""
        return _Saying(self._local, said or None, stored, at)

    @classmethod
    def from_site(cls, site: Any) -> MergeRules:
        """The site's ``merge.yaml`` (loaded with the other site files), else the shipped one."""
        data = getattr(site, "merge", None)
        if data:
            return cls(data, getattr(site, "merge_file", "") or "merge.yaml")
        return shipped()

    # -- compile -------------------------------------------------------------------------------------
    def _expand(self, sources: Mapping[str, list[str]]) -> dict[str, frozenset[str]]:
        """Group name -> the concrete writers in it (groups may list groups; cycles are errors)."""
        out: dict[str, frozenset[str]] = {}

        def expand(name: str, seen: tuple[str, ...]) -> frozenset[str]:
            if name in out:
                return out[name]
            if name in seen:
                raise SiteError(self.origin, None, f"sources.{name}", "a group includes itself")
            members: set[str] = set()
            for member in sources[name]:
                members |= expand(member, (*seen, name)) if member in sources and member != name else {member}
            out[name] = frozenset(members)
            return out[name]

        for name in sources:
            expand(name, ())
        return out

    def _check_names(self) -> None:
        known = set(self._groups) | {OTHER} | {s for members in self._groups.values() for s in members}

        def check(names: Iterable[str], where: str) -> None:
            for name in names:
                if name not in known:
                    raise SiteError(self.origin, None, where, f"{name!r} is not a source or source group "
                                    f"(known: {', '.join(sorted(known))})")

        check(self._default_modes, "defaults.modes")
        check(self._conflicts, "defaults.conflict")
        for rtype, elements in self._resources.items():
            for element, rule in elements.items():
                where = f"resources.{rtype}.{element}"
                check([k for k in rule if k not in _RESERVED], where)
                check(rule.get("owner") or (), where + ".owner")
                check(rule.get("stands") or {}, where + ".stands")
                check(rule.get("another") or {}, where + ".another")
                check(rule.get("another_person") or {}, where + ".another_person")
                check(rule.get("states") or (), where + ".states")
                check(rule.get("beside") or {}, where + ".beside")
                for n, sl in enumerate(rule.get("slices") or ()):
                    check(sl["owner"], f"{where}.slices[{n}].owner")
                    check(sl.get("modes") or {}, f"{where}.slices[{n}].modes")

    def _ladder(self, source: str) -> list[str]:
        """The names that may state a rule for ``source``, most specific first: itself, then the
        groups containing it from the smallest, then ``other`` when no group names it."""
        containing = sorted((g for g, members in self._groups.items() if source in members),
                            key=lambda g: (len(self._groups[g]), g))
        return [source, *containing] if containing else [source, OTHER]

    @staticmethod
    def _pick(mapping: Mapping[str, Any], ladder: list[str], fallback: Any) -> Any:
        for name in ladder:
            if name in mapping:
                return mapping[name]
        return fallback

    def plan(self, rtype: str, source: str) -> TypePlan:
        cached = self._plans.get((rtype, source))
        if cached is not None:
            return cached
        ladder = self._ladder(source)
        conflict = self._pick(self._conflicts, ladder, "warn")
        default_mode = self._pick(self._default_modes, ladder, "replace")
        default = ElementPlan(default_mode, None, conflict)
        rules = {**(self._resources.get("*") or {}), **(self._resources.get(rtype) or {})}
        choices = _choice_siblings(rtype)
        elements = {name: self._element(rule, ladder, default_mode, conflict, choices) for name, rule in rules.items()}
        trivial = default_mode == "replace" and all(
            e.mode == "replace" and not e.slices and not e.stands and not e.another and not e.another_person
            and not e.beside for e in elements.values())  # (placeholders, as_far_as, names_all_of: not under replace)
        guards = any(not sp.own for e in elements.values() for sp in e.slices)
        follows = tuple((name, e.follows) for name, e in elements.items() if e.follows)
        moved = tuple((name, e.was) for name, e in elements.items() if e.was)
        over = tuple((name, e) for name, e in elements.items()
                     if (e.as_far_as or e.names_all_of) and e.mode != "replace")
        sliced = tuple(name for name, e in elements.items() if e.slices)
        settled = tuple((name, e) for name, e in elements.items() if e.status_follows and e.mode != "replace")
        inherited = tuple((name, e) for name, e in elements.items() if e.inherits)
        trivial = trivial and not inherited
        persons = tuple(name for name, e in elements.items() if e.another_person)
        lined = tuple((name, e) for name, e in elements.items() if e.lines_of and e.mode != "replace")
        copied = tuple((name, e) for name, e in elements.items() if e.text_of and e.mode != "replace")
        # (``until_later`` with ``stands``; or with elements dated with it and no ``stands``: the same
        # sender's older restatement of those held, ``_restated_older``)
        dated = tuple((name, e) for name, e in elements.items() if e.until_later and (e.stands or e.dated_with))
        displayed = tuple((name, e) for name, e in elements.items() if e.displays and e.mode != "replace")
        timed = tuple(name for name, e in elements.items() if e.not_from_older and e.mode != "replace")
        backed = tuple((name, e) for name, e in elements.items() if e.not_back and e.mode != "replace")
        examined = tuple((name, e) for name, e in elements.items() if e.exam_time and e.mode != "replace")
        derived = tuple(name for name, e in elements.items() if e.derived and e.mode != "replace")
        thin = tuple(name for name, e in elements.items() if (e.not_from_older or e.not_thinner) and e.mode != "replace")
        plan = TypePlan(default, elements, trivial, guards, choices, follows, over, sliced, settled, inherited,
                        persons, moved, lined, copied, dated, displayed, timed, backed, examined,
                        frozenset().union(*(e.exam_time[1] for _, e in examined if e.exam_time is not None)),
                        derived, thin)
        self._plans[(rtype, source)] = plan
        return plan

    def _element(self, rule: Mapping[str, Any], ladder: list[str], default_mode: str, conflict: str,
                 choices: Mapping[str, frozenset[str]]) -> ElementPlan:
        key = tuple(tuple(p.split(".")) for p in rule["key"]) if rule.get("key") else None
        follows: frozenset[str] = frozenset()
        if rule.get("follows"):  # "value[x]": every value choice of the type; else the element named
            named = rule["follows"]
            follows = (frozenset(n for n in choices if n.startswith(named[:-3])) if named.endswith("[x]")
                       else frozenset((named,)))
        modes = {k: v for k, v in rule.items() if k not in _RESERVED}
        mode = self._pick(modes, ladder, default_mode)
        owners = tuple(rule.get("owner") or ())
        stands = frozenset(self._pick(rule.get("stands") or {}, ladder, ()))
        yields_to = frozenset(rule.get("yields_to") or ())
        placeholders = frozenset(rule.get("placeholders") or ())
        if owners and not set(owners) & set(ladder):
            mode = "keep-stored"
        slices = []
        for sl in rule.get("slices") or ():
            own = bool(set(sl["owner"]) & set(ladder))
            slices.append(SlicePlan(_slice_of(sl["name"], sl["where"], sl.get("why", "")), own,
                                    self._pick(sl.get("modes") or {}, ladder, mode), tuple(sl.get("keeps") or ()),
                                    bool(sl.get("first"))))
        another_if = tuple((tuple(path.split(".")), tuple([v] if isinstance(v, str) else v))
                           for path, v in (rule.get("another_if") or {}).items())
        beside = self._pick(rule.get("beside") or {}, ladder, None)
        # ``stands_with``: a list names what stands with the status; a mapping's ``merged``, what does not
        stands_with = rule.get("stands_with")
        inverted = isinstance(stands_with, Mapping)
        return ElementPlan(mode, key, conflict, owners, tuple(slices), follows, stands, yields_to, placeholders,
                           str(rule.get("as_far_as") or ""), rule.get("progress"), str(rule.get("names_all_of") or ""),
                           str(self._pick(rule.get("another") or {}, ladder, "")), another_if,
                           frozenset(rule.get("unless_deletes") or ()),
                           tuple((entry, frozenset(statuses))
                                 for entry, statuses in (rule.get("status_follows") or {}).items()),
                           (str(rule["inherits"]["through"]), str(rule["inherits"]["system"]))
                           if rule.get("inherits") else None,
                           str(self._pick(rule.get("another_person") or {}, ladder, "")),
                           keeps=tuple(rule.get("keeps") or ()) if mode in ("by-key", "union", "keep-if-absent") else (),
                           follows_changed=rule.get("when") == "changed",
                           history=frozenset(rule.get("history") or ()),
                           history_unless=frozenset(rule.get("history_unless") or ()),
                           lines_of=str(rule.get("lines_of") or ""),
                           text_of=tuple(str(rule["text_of"]).split(".")) if rule.get("text_of") else (),
                           until_later=bool(rule.get("until_later")),
                           displays=tuple(tuple(str(p).split(".")) for p in rule.get("displays") or ()),
                           states=bool(set(rule.get("states") or ()) & set(ladder)),
                           not_from_older=bool(rule.get("not_from_older")),
                           not_back=tuple(_back(step, choices) for step in (
                               [rule["not_back"]] if isinstance(rule.get("not_back"), Mapping)
                               else rule.get("not_back") or ())),
                           back_pairs=frozenset((str(o), str(t)) for step in (
                               [rule["not_back"]] if isinstance(rule.get("not_back"), Mapping)
                               else rule.get("not_back") or ()) for o in step.get("from") or ()
                               for t in step.get("to") or ()),
                           withdrawn=frozenset(rule.get("withdrawn") or ()),
                           stands_with=frozenset(n for named in (() if inverted else stands_with or ())
                                                 for n in _chosen(str(named), choices)),
                           merged_with=frozenset(n for named in stands_with.get("merged") or ()
                                                 for n in _chosen(str(named), choices)) if inverted else None,
                           taken_with=frozenset(n for named in (stands_with.get("taken") or () if inverted else ())
                                                for n in _chosen(str(named), choices)),
                           all_results=all_results_in(rule),
                           beside=tuple(Beside(tuple(tuple(p.split(".")) for p in b["kind"]),
                                               _slice_of("beside", b["where"]),
                                               _slice_of("unless", b["unless"]) if b.get("unless") else None)
                                        for b in beside or ()),
                           over_value=frozenset(rule.get("over_value") or ()),
                           over_value_with=frozenset(n for named in rule.get("over_value_with") or ()
                                                     for n in _chosen(str(named), choices)),
                           withdrawal_keeps=frozenset(n for named in rule.get("withdrawal_keeps") or ()
                                                      for n in _chosen(str(named), choices)),
                           exam_time=(frozenset(rule["exam_time"]["over"]), frozenset(rule["exam_time"]["by"]))
                           if rule.get("exam_time") else None,
                           exam_new=tuple((rule.get("exam_time") or {}).get("unless_new") or ()),
                           exam_of_report=(rule.get("exam_time") or {}).get("of") == "report",
                           derived=rule.get("derived") == "yields",
                           not_thinner=bool(rule.get("not_thinner")),
                           dated_with=frozenset(n for named in (rule["until_later"] if isinstance(
                               rule.get("until_later"), list) else ()) for n in _chosen(str(named), choices)),
                           was=tuple((str(element), tuple((tuple(path.split(".")), frozenset(values))
                                                          for path, values in where.items()))
                                     for element, where in (rule.get("was") or {}).items()))

    # -- apply ---------------------------------------------------------------------------------------
    def as_is(self, rtype: str, source: str, *, creating: bool, resource: Resource | None = None) -> bool:
        """Whether ``combine`` would store what ``source`` sends of an ``rtype`` as it is, with no
        issue: the writer's rules replace every element and own nothing, or (``creating``) nothing
        is stored and no slice the writer does not own guards a create. Asked before ``combine``
        by a caller with nothing stored (ingest's first versions), which then skips it.

        ``resource`` (with ``creating``): the version about to be created. A create that a slice
        guards is still taken as it is when the resource holds no list at any element with slices:
        ``combine`` of a create looks at nothing else (it would return a copy of it, no issue).
        Why: every lab or registration message creates a Patient (an MRN of its own), and the
        index's ``link`` slices made each of them a whole ``combine`` though none carries a link."""
        plan = self.plan(rtype, source)
        if plan.trivial:
            return True
        if creating and resource is not None and self.first_combined(rtype, resource):
            return False  # an element stated only as the number's owner (``Owned``), a correction's new result: a create combined
        if creating and plan.inherited and (resource is None or any(
                resource.get(ep.inherits[0]) for _, ep in plan.inherited if ep.inherits)):
            return False  # a create naming what it ``inherits`` from (a replacement order) is combined
        if creating and any(plan.elements[name].slices for name in plan.persons):
            return False  # a list element's ``another_person`` (an Appointment's patient) is asked of a create (``_claimed``)
        if creating and plan.over and any(ep.all_results for _, ep in plan.over) and (
                resource is None or self._withdrawn_first(plan, resource)):
            return False  # a first report listing a result this write withdrew: ``all_results`` is asked (sfix39)
        if creating and not plan.guards_create:
            return True
        return creating and resource is not None and not any(isinstance(resource.get(name), list)
                                                              for name in plan.sliced)

    def kept_beside(self, rtype: str, element: str, source: str, held: Any, stated: Any,
                    deletes: Sequence[Delete] = ()) -> list[Any]:
        """The entries of another record's ``held`` list that ``element``'s ``beside`` rules keep beside the
        ``stated`` one (``_not_theirs``, the one reading; no ``unless`` asked): what a renumbering (A47) carries from
        the renumbered record to the new one -- her ID number and the numbers remembered as the institution's own
        (``adapters.convert.persons._carried``), unless the new record states one of their ``kind``. Why: the
        renumbered record drops them (``unless: replaced-by``), and a PID-3 stating the new MRN alone erased them
        from the store (rv39d HIGH 3b; idfix39). ``deletes``: what the message deleted of the record they would go
        to (HL7's ``""``, ``Said.deletes``): an entry one of them matches (``_deleted_entry``, ``_delete``'s reading)
        is not kept -- an A47 stating ``""^^^^NNCHN`` took the number off, and carried it came back (rv40a MED 3)."""
        ep = self.plan(rtype, source).elements.get(element)
        if ep is None or not ep.beside or not isinstance(held, list):
            return []
        mine = list(stated) if isinstance(stated, list) else []
        kept = list(_not_theirs(ep, held, mine, {})[len(mine):])
        gone = [d.where for d in deletes if d.element == element and d.where]
        return [e for e in kept if not any(_deleted_entry(e, where) for where in gone)]

    def combine(self, stored: Resource | None, incoming: Resource, source: str) -> Combined:
        """The version to store when ``source`` writes ``incoming`` over ``stored`` (None: a create).

        Raises ``Unprocessable`` when a value the rules do not store comes from a writer whose
        conflicts are refused; otherwise such values are reported as warning issues.
        """
        if self.as_is(incoming["resourceType"], source, creating=stored is None) and not (
                stored is None and self.first_combined(incoming["resourceType"], incoming)):
            return Combined(incoming, [])
        plan = self.plan(incoming["resourceType"], source)
        issues: list[Issue] = []
        rtype = incoming["resourceType"]
        if stored is None:
            if plan.persons and source != API:  # a new resource under an identifier another patient's holds
                told = (getattr(self._local, "said", None) or {}).get(f"{rtype}/{incoming.get('id')}")
                for name in plan.persons:
                    if isinstance(incoming.get(name), list) and told is not None:
                        self._claimed(rtype, name, plan.elements[name], incoming, source, told, issues)
            out = dict(incoming)
            for name, ep in plan.elements.items():
                if ep.slices and isinstance(incoming.get(name), list):
                    value = self._sliced(rtype, name, ep, _MISSING, incoming[name], source, issues)
                    if value is _MISSING:
                        out.pop(name)
                    else:
                        out[name] = value
            if plan.inherited or plan.over:
                saids = getattr(self._local, "said", None)
                told: Said | None = saids.get(f"{rtype}/{incoming.get('id')}") if saids else None
                at = {f"{rtype}.{element}": where for element, where in told.fields} if told is not None else {}
                for name, ep in plan.inherited:
                    self._inherit(rtype, name, ep, out, issues, at, said=told)
                for name, ep in plan.over:  # (a first report none of whose results stands: ``_withdrawn_first``)
                    if ep.all_results and self._withdrawn_first(plan, incoming):
                        refs = {e.get("reference") for e in incoming.get(ep.as_far_as) or () if isinstance(e, dict)}
                        self._none_standing(name, ep, {}, incoming, out, refs, at, source, issues)
                _locate(issues, rtype, at, told, incoming)
            owned = self.owned_of(rtype, incoming) if source != API else ()
            if owned:
                out, _ = self._not_numbered(rtype, None, out, owned, issues)
            if plan.examined and source != API and incoming.get("status") in plan.exam_by:
                told = (getattr(self._local, "said", None) or {}).get(f"{rtype}/{incoming.get('id')}")
                if told is not None and told.report:  # (a correction's new result: the report's exam time -- time43)
                    self._exam_of_report(rtype, plan, out, told, source, issues)
            return Combined(out, issues)
        if plan.moved:  # what older code stored elsewhere is read where it is stored now (``was``)
            stored = _moved(stored, plan.moved)
        saids = getattr(self._local, "said", None)
        said: Said | None = saids.get(f"{rtype}/{incoming.get('id')}") if saids else None
        if said is not None and said.only:  # the stored version but for what the message states of it (``Said.only``)
            # asked as of any create-only resource found stored (raises when refused); under another
            # record (one person's other record, a newborn's order under the mother's visit) the stored
            # one is left as it is: the message's diagnoses are of its own patient, not of that visit's
            issues.extend(self.found(stored, incoming, source))
            if self._under_another_record(rtype, plan, stored, incoming, said, issues):
                return Combined(dict(stored), issues)
            # (an element it states none of is not copied from the stored one: a DG1-21 D alone deletes the
            # stored entry, which a copy would have stated again -- dgfix25)
            incoming = {**{k: v for k, v in stored.items() if k not in said.only},
                        **{k: v for k, v in incoming.items() if k in said.only}}
            said = replace(said, deletes=tuple(d for d in said.deletes if d.element.split(".", 1)[0] in said.only),
                           assumed=frozenset())
        if plan.copied and (getattr(self._local, "held", None) or getattr(self._local, "kept", None)) \
                and self._copy_held(rtype, plan, stored, incoming):
            return Combined(dict(stored), issues)  # (a copy of a report this message's older statement left: tfix35)
        freed: frozenset[str] = frozenset()
        compared = False
        for name, ep in plan.dated:  # a withdrawn result, a message not later than its withdrawal (``until_later``)
            held, told = stored.get(name), incoming.get(name)
            if ((held if type(held) is str else _stood(held)) in ep.stands  # (asked first: one lookup each)
                    or (told if type(told) is str else _stood(told)) in ep.stands):
                if held == told and not _restates(ep, stored, incoming):
                    continue  # (the same status, nothing it is dated with changed: nothing to date)
                if _backward(ep, held, told, incoming):
                    continue  # (a P over a correction: ``_not_back`` decides, as over a final -- rv36c HIGH 1)
                # (the older C over a later P: in MSH-7 order the P was kept out -- status38; asked as the
                # stored statement over the message's: a later F stating its value over an older W with none
                # is a result, not a status alone, so the W is dated and held)
                if type(told) is str and type(held) is str and (told, held) in ep.back_pairs \
                        and _backward(ep, told, held, stored):
                    continue
                lifted = self._dated(rtype, plan, stored, incoming, source, said, issues)
                if lifted is None:
                    return Combined(dict(stored), issues)
                freed, compared = lifted, True
                break
        if plan.dated and not compared and self._restated_older(rtype, plan, stored, incoming, source, said, issues):
            return Combined(dict(stored), issues)  # (the same sender's older restatement: tfix35)
        before: tuple[frozenset[str], Resource] | None = None  # (the older final over its later P: a result's, sfix39)
        # what the stored version holds and the message leaves out, in the stored order: read once, here and by the
        # merge's loop below when the message is still this one -- the set difference sfix39 asked here cost ~8.7k
        # instructions a result, all of its +0.4 % on a 12-result panel's P -> F (callgrind; fortieth round, st40)
        said_as_sent, left = incoming, None
        if plan.backed and not compared:
            left = [k for k in stored if k not in incoming]
            if not _OWN.issuperset(left):
                before = self._older_over_later(rtype, plan, stored, incoming, source, left)  # (it leaves out what was stored)
        over_p: str | None = None  # (the older final over its later P: the report as in MSH-7 order -- stfix38)
        sent = incoming  # (what the message states: a time's mark follows the value written, ``_twin_follows``)
        if plan.derived:  # (a time taken from another field never over one stated as itself -- time43)
            incoming = _derived_times(plan, stored, incoming)
        if plan.thin:  # (the stored time restated thinner -- its date alone: not written, xofix42; a result's, time43)
            incoming = _not_thinner(plan, stored, incoming, said)
        if plan.timed and not compared:  # (a report's times from an older message: not written -- ordfix36)
            over_p = self._over_later_p(rtype, plan, stored, incoming, source)
            if over_p is None:
                incoming = self._older_times(rtype, plan, stored, incoming, source, said, issues)
        elif plan.timed and freed:  # (an older C or W whose results stepped past the later P: ``_dated`` lifted it)
            over_p = self._over_later_p(rtype, plan, stored, incoming, source)
        if plan.examined and incoming.get("status") in plan.exam_by:  # (a correction's time of the exam: not written -- prior42)
            incoming = self._exam_times(rtype, plan, stored, incoming, source, said, issues)
        elif plan.examined and said is not None and said.report_status:  # (a study's, by its report's status -- time43)
            incoming = self._exam_by_report(rtype, plan, stored, incoming, source, said, issues)
        kept_back: list[_Kept] = []  # (the steps back kept out: each one's W worded after the merge)
        if plan.backed and not compared:  # (a final result's status not taken back by a P: ordfix36)
            kept = self._not_back(rtype, plan, stored, incoming, source, said, issues, kept_back)
            if kept is None:
                return Combined(dict(stored), issues)
            incoming = kept
        guarded = frozenset().union(*(k.guarded for k in kept_back)) if kept_back else frozenset()
        spared: list[str] = []  # (what the message deleted of them: not deleted, named in their W)
        elements = plan.elements if not freed else _freed(plan, freed)  # (a later message: ``stands`` lifted)
        fields: dict[str, str] = {}
        status_kept = False  # the message only assumed a status and the stored one stands (an A08)
        if said is not None:  # what the converter assumed (an A08's Encounter status) fills only what is not stored
            fields = {f"{rtype}.{element}": at for element, at in said.fields}
            if said.assumed:
                # (an assumed choice fills no choice stored in another type: an OBX-14 fallback's
                # effectiveDateTime beside a client's effectivePeriod -- conv42)
                assumed = {a for a in said.assumed
                           if a in stored or not plan.choices.get(a, frozenset()).isdisjoint(stored)}
                if assumed:
                    incoming = {k: v for k, v in incoming.items() if k not in assumed}
                    status_kept = "status" in assumed
            if said.owned:  # (stated only by the number's owner: else as assumed, and said)
                incoming, said = self._not_numbered(rtype, stored, incoming, said.owned, issues, said)
        out = {}
        for name in (*incoming, *(left if left is not None and incoming is said_as_sent
                                  else (k for k in stored if k not in incoming))):
            if name in ("resourceType", "id"):
                out[name] = incoming[name]
                continue
            st, inc = _present(stored.get(name, _MISSING)), _present(incoming.get(name, _MISSING))
            if st == inc:  # the same on both sides (a re-sent message): every mode keeps it
                if st is not _MISSING:
                    out[name] = st
                    eq = plan.elements.get(name, plan.default)
                    if said is not None and eq.another_person and eq.slices and isinstance(st, list):
                        # ... but a booking filed under a record merged away follows it (schedfix25b)
                        out[name] = self._rebooked(rtype, name, eq, stored, st, inc, source, fields, issues)
                continue
            ep = elements.get(name, plan.default)
            if ep.unless_deletes and said is not None and any(d.element in ep.unless_deletes for d in said.deletes):
                ep = replace(ep, stands=frozenset())  # the message takes back what made the stored value (A13)
            if ep.another and isinstance(st, dict) and isinstance(inc, dict) and (
                    said is None or f"{rtype}.{name}" in fields):
                # (a message's value no field of it stated -- a report's stand-in code, its group naming
                # no test -- says nothing of the test: codefix36)
                self._another(rtype, name, ep, stored, st, inc, source, fields, issues)
            if ep.another_person and isinstance(st, dict) and isinstance(inc, dict):
                self._another_person(rtype, name, ep, st, inc, source, fields, issues, said,
                                     stored_id=str(stored.get("id") or ""),
                                     stored_version=str((stored.get("meta") or {}).get("versionId") or ""))
            elif ep.another_person and ep.slices and isinstance(st, list) and isinstance(inc, list):
                inc = self._rebooked(rtype, name, ep, stored, st, inc, source, fields, issues)
            changes = dict(said.changes).get(name) if said is not None and said.changes else None
            if changes is not None and isinstance(st, list) and (inc is _MISSING or isinstance(inc, list)):
                value = self._changed(rtype, name, ep, st, inc if isinstance(inc, list) else [], changes, source, issues)
            elif ep.slices and (isinstance(st, list) or isinstance(inc, list)):
                value = self._sliced(rtype, name, ep, st, inc, source, issues)
            else:
                value = self._element_value(rtype, name, ep, st, inc, source, issues, incoming)
            if value is not _MISSING:
                out[name] = value
        for name, followed in plan.follows:
            # stated with what it follows (an Observation's components with its value: OBX-5's
            # repetitions): the value stored as this writer stated it states them all, so the
            # incoming ones replace the stored ones and absent ones are removed
            # (``when: changed``: only a value that changes the stored one -- a birth date of another
            # day; the same date re-sent without its time is a thinner statement and keeps it)
            stated = [n for n in followed.intersection(incoming) if out.get(n, _MISSING) == incoming[n]
                      and not (plan.elements[name].follows_changed and stored.get(n, _MISSING) == incoming[n])]
            if stated:
                if _present(incoming.get(name, _MISSING)) is _MISSING:
                    out.pop(name, None)
                else:
                    out[name] = incoming[name]
        for name in incoming:
            # a primitive marked data-absent in its ``_`` twin beside a stored value that stayed: the
            # value stands, and the two never say "is X" and "is unknown" together
            if name.startswith("_") and name[1:] in out and name[1:] not in incoming and _absent(incoming[name]):
                out.pop(name, None)
        for name in incoming:  # one value per choice: valueString replacing valueQuantity drops it
            siblings = plan.choices.get(name)
            if siblings and out.get(name) is incoming[name]:
                for sibling in siblings:
                    if sibling not in incoming:
                        out.pop(sibling, None)
        for name, ep in plan.backed:  # (a withdrawal leaves what describes the original: ``withdrawal_keeps``)
            if ep.withdrawal_keeps and out.get(name) in ep.withdrawn and stored.get(name) not in ep.withdrawn:
                for n in ep.withdrawal_keeps:
                    if n in stored:
                        out[n] = stored[n]
                    else:  # (none stored: the withdrawal states none either -- a tubeless sodium's W beside
                        # potassium's kept-out P took the P's re-drawn tube; review rv39e MED 4, sfix39)
                        out.pop(n, None)
        if before is not None:
            _as_before(out, *before)
        stood: frozenset[str] = frozenset()  # (what stands with a report's status kept as stored: ``stands_with``)
        taken_whole: frozenset[str] = frozenset()  # (what the older final states over its later P: ``_over_later_p``)
        if plan.over:
            deleting = frozenset(n.split(".", 1)[0] for d in said.deletes for n in _deleted(plan, d.element)) \
                if said is not None and said.deletes else frozenset()
            for name, ep in plan.over:
                if name not in stood:
                    stood |= self._over(name, ep, stored, incoming, out, plan.over, fields, source, issues, deleting)
            if over_p is not None:
                taken_whole = _as_in_order(plan.elements[over_p], over_p, stored, incoming, out,
                                           self._before_later(rtype, stored))
            if "presentedForm" in stood:  # (its copy, an imaging report's document, is not written either)
                if getattr(self._local, "kept", None) is None:
                    self._local.kept = set()
                self._local.kept.add(f"{rtype}/{stored.get('id')}")
        for name, ep in plan.inherited:
            self._inherit(rtype, name, ep, out, issues, fields, stored=stored, said=said)
        for name, ep in plan.lined:
            # (asked first: a lab report stores neither, and pays one lookup; ``held``: a withdrawn
            # result's words an older message stated again, which a report without text must not take)
            if name in stood or name in taken_whole:
                continue  # (the words of a statement kept out: rv38a HIGH 2; or the older final's own: stfix38)
            if name in stored or (name in out and getattr(self._local, "held", None)):
                self._lines(name, ep, stored, incoming, out)
        for name, ep in plan.copied:
            if name in out:
                self._text_copied(name, ep, stored, out, said)
        for name, ep in plan.settled:
            # the stored entries when the message states none; the message's own too when it only
            # assumed the status it gave them (a routine A08's full PV1 of a planned visit, PV1-2 I:
            # its bed ``active`` beside the visit that stays ``planned``, nineteenth round)
            if (name not in incoming or status_kept) and isinstance(out.get(name), list):
                out[name] = _settled(out[name], ep.status_follows, out.get("status"))
            if ep.history and name in incoming and isinstance(out.get(name), list) and isinstance(stored.get(name), list) \
                    and out.get("status") not in ep.history_unless:
                out[name] = _with_history(out[name], stored[name], ep.history)
        for name, ep in plan.displayed:
            if saids and isinstance(out.get(name), list) and isinstance(stored.get(name), list):
                out[name] = _displays_kept(out[name], stored[name], ep.displays, saids)
        if said is not None:  # before a value and a reason are weighed: a deleted value is no longer there
            left: list[tuple[str, Any]] = []
            for delete in said.deletes:
                for name in _deleted(plan, delete.element):
                    if name in guarded or (stood and name.split(".", 1)[0] in stood):
                        # (a kept-out step back's value: it stands, ``_not_back``; a report's, ``stands_with``)
                        spared.append(name)
                        continue
                    if _delete(out, incoming, name, delete.where) and not delete.quiet:
                        why = delete.why or 'explicit null (HL7 "")'
                        issues.append({"severity": "information", "code": "deleted", "expression": [f"{rtype}.{name}"],
                                       "diagnostics": f"{rtype}.{name}: deleted by {_writer(source)}'s {why}; "
                                                      "the earlier version keeps it (_history)"})
                        left += delete.leaves
            for name, value in left:  # what the other field of the choice stated stays (unless deleted too)
                if (not any(n in out for n in (name, *plan.choices.get(name, ())))
                        and not any(name in _deleted(plan, d.element) for d in said.deletes)):
                    out[name] = value
        if "dataAbsentReason" in out and plan.choices:
            self._value_or_absent(rtype, plan, incoming, out, source, issues)
        if said is not None and said.start_alone:
            _moved_start(stored, out, said.start_alone, issues)
        if rtype == "Appointment" and source != API:
            _length_within_span(stored, incoming, out, issues)
        for k in kept_back:
            k.say(stored, out, spared)
        if plan.derived:
            _twin_follows(plan, stored, sent, out, said)
        if issues:
            _locate(issues, rtype, fields, said, incoming)
        return Combined(out, issues)

    def _dated(self, rtype: str, plan: TypePlan, stored: Resource, incoming: Resource, source: str,
               said: Said | None, issues: list[Issue]) -> frozenset[str] | None:
        """``until_later``: where the stored value or the message's is in ``stands`` (a result withdrawn,
        OBX-11 W/D: entered-in-error; corrected; amended) and the two differ, the message's value is
        taken only from a message *later* than the one that stored the version -- in both directions:
        the 10:00 report resent after the 11:00 withdrawal does not revive the result (rvdocref32's
        MED 4), the 11:00 withdrawal replayed after the 12:00 correction does not withdraw it, the
        10:00 report resent after the correction does not take its words back (rvmsgtime33 6, 9).

        "Later" is the sender's own MSH-7 between messages of one sending application, an equal MSH-7
        broken by arrival order (``engine.message_time``; the stored version's message found through
        the Provenances naming the version, or the earlier message of this batch that wrote it, given by
        ingest as ``Dates``). An older message is a stale statement: the stored version stays whole,
        the ACK warns at the result's OBX-11 (MSA AA: its other results are written), and its words are
        ``held`` so the report's ``lines_of`` adds none of them. When it cannot be told (MSH-7 missing,
        unreadable or ahead of its receipt; a version another application's message or a FHIR client
        stored) the message is refused (``Untimely``, AE, nothing written, the raw kept for the
        operator): neither reviving a withdrawn result nor dropping a correction under AA is safe.
        Over a plain stored value (a final result) the question is narrower (``message_time.settle``):
        the withdrawal or correction is later unless the same sender's MSH-7 shows it strictly older
        -- the reading centre's PACS withdrawing the result its RIS reported is taken (msgfix34).
        A refused or held result is located at the field that stated its status (``Said.fields``:
        the converter's OBX-11), so ERR-2 names the OBX.
        A message stating the stored status again (a correction over a correction) is dated when it
        states another value of an element dated with the status (``dated_with``: ``until_later:
        [value[x], ...]``) -- an older correction arriving after a later one took its value back under
        AA (rvmsgfix34 HIGH 1-3). The DiagnosticReport's status is dated by the same rule (OBR-25,
        ``merge.yaml``), so an older resend does not make a cancelled or corrected report final while
        its result is held (thirty-fourth round, tfix34).
        A status placeholder (``placeholders``: OBX-11 empty, stored ``unknown``) states no status: it
        neither withdraws nor corrects, and never lifts a stored one (the status stays, ``_element_value``).
        It is passed over exactly where the status alone is the question -- the message restates no
        element dated with it (``dated_with``: the same value, flags and range again; a report's status,
        dated with nothing). Where it restates one (another value over a stored correction) that
        statement is dated as a stated F would be: older -- held, the W at the restated element's field
        (OBX-5, not OBX-11: the status was not stated); not told -- refused there; later -- its value
        taken, the stored status kept. Passing it over let the LIS's 11:00 value with OBX-11 empty
        overwrite its 12:00 correction under AA, the record calling the older value the correction
        (review rv36a HIGH 1; thirty-sixth round, mixfix36).
        An operator's replay "as later" (``Dates.decide``, ``engine.message_time.Decision``) answers
        "later" what cannot be told -- never what the sender's own MSH-7 shows older, never for a
        message whose own MSH-7 is unusable -- and an information issue (severity I, at the same field:
        the replay's answer and the stored message's notes) says who decided and the comparison it
        settled (thirty-fifth round, order35).
        Returns the elements whose ``stands`` this message lifts, or None when the stored version
        stands whole. (msgtime33's rule, by ``Provenance.recorded``, mixed the sender's and huren's
        clocks; thirty-third round, msgfix33.)"""
        lifted: set[str] = set()
        dates: Dates | None = getattr(self._local, "at", None)
        for name, ep in plan.dated:
            held = _stood(stored.get(name, _MISSING))
            told = _stood(incoming.get(name, _MISSING))
            vague = told in ep.placeholders  # (OBX-11 empty: no status stated, the value may be)
            if (held is None or told is None or (held not in ep.stands and told not in ep.stands)
                    or told in ep.yields_to or ((told == held or vague) and not _restates(ep, stored, incoming))):
                continue
            if vague and held in ep.withdrawn:  # (whatever its time: no status stated brings it back)
                self._not_withdrawn(rtype, name, ep, stored, incoming, source, said, issues)
                return None
            if dates is None:  # (no message at hand: merged as the mode says, as before the rule)
                lifted.add(name)
                continue
            found = self._stored_stamps(rtype, stored, dates)
            if found is None:  # (no store to read the version's messages from: merged as the mode says)
                lifted.add(name)
                continue
            then, provs = found
            if not then and held not in ep.stands:  # (a FHIR client's version of a plain value)
                then = self._carried(rtype, stored, name, dates, provs)
            verdict, why, by = settle(dates.now, then, stands=held in ep.stands)
            if verdict == "unknown" and (_by_results(ep, held, told) or _of_results(ep, told, incoming)):
                verdict = "later"  # (a report's step back, or its status read off its results: they decide it, ``_over``)
            changed = _restated(ep, stored, incoming) if vague else (name,)
            at = said.first_at(changed, incoming) if said is not None else None
            decide = getattr(dates, "decide", None) if verdict == "unknown" and not dates.now.unusable else None
            decided = decide(why, _version_of(rtype, stored)) if decide is not None else None  # (ordfix35)
            if decided is not None:
                answered: list[str] | None = getattr(self._local, "decided", None)
                if answered is not None:  # (named again should the write be refused over another: ``refused``)
                    answered.append(_version_of(rtype, stored))  # (the operator's replay "as later": what cannot be told, decided -- order35)
                issues.append({"severity": "information", "code": "informational",
                               "diagnostics": f"{_over(rtype, name, changed, stored, incoming, vague)} taken as "
                                              f"later by the operator's decision ({decided.by}, {decided.at}): "
                                              f"which message is later could not be told -- {why}",
                               "expression": [f"{rtype}.{n}" for n in changed], **({"location": [at]} if at else {})})
                verdict = "later"
            if verdict == "older" and held in _BEFORE and self._results_stepped(ep, incoming):
                verdict = "later"  # (its results, each dated, stepped forward past their later P: status38)
            if verdict == "later":
                if not vague:  # (a placeholder lifts nothing: the stored status stays, ``_element_value``)
                    lifted.add(name)
                continue
            if verdict == "unknown":
                where = "MSH[1]-7" if dates.now.unusable else at
                refusal = Untimely(f"{_over(rtype, name, changed, stored, incoming, vague)} was not written: which "
                                   f"of the two messages is later cannot be told -- {why}. Nothing of the message "
                                   "is written; the operator may replay it once decided",
                                   expression=[f"{rtype}.{n}" for n in changed], location=where,
                                   version=_version_of(rtype, stored))
                collected: list[Untimely] | None = getattr(self._local, "untimely", None)
                if collected is None or dates.now.unusable:
                    raise refusal  # (its own MSH-7 unusable: one reason, every comparison the same -- stop here)
                collected.append(refusal)  # (the write goes on to find the others: ``refused``, rvfixord35 LOW 4)
                return None
            what = ", ".join(f"{rtype}.{n}" for n in changed)
            stated, kept = ((f"value {_show(incoming[name])}", _show(stored[name])) if not vague else
                            (f"statement of {', '.join(changed)} with no {name} (the placeholder "
                             f"{_show(incoming[name])})", f"the version of {name} {_show(stored[name])}"))
            self._held(issues, rtype, stored, incoming, changed, at, _older_text(
                what, f"{_writer(source)}'s {stated}", kept, by, dates.now.text, rtype, same_sender=False))
            return None
        return frozenset(lifted)

    def _results_stepped(self, ep: ElementPlan, incoming: Resource) -> bool:
        """``as_far_as``: whether an older message's report status over a stored one before final (its
        later P) follows its results as merged -- each dated on its own, none ``held`` in this write and
        none before final: they stepped forward past the later P, which in MSH-7 order would have been
        kept out of them (``not_back``). The LIS's C or W of 09:30 arriving after its P of 10:00 left the
        report preliminary (held as older) beside its result corrected or withdrawn (thirty-eighth round,
        status38)."""
        refs = {e.get("reference") for e in incoming.get(ep.as_far_as) or () if isinstance(e, dict)}
        held = getattr(self._local, "held", None) or {}
        return bool(refs) and not any(r in held for r in refs) and self._none_before(refs)

    def _hold(self, rtype: str, stored: Resource, incoming: Resource) -> None:
        """Mark ``stored`` ``held``: this message's statement of it was not written (older, or a
        placeholder over a withdrawn result) -- its Provenance names no version of it, and the words
        it said (``_words``) are no line of the report (``_lines``)."""
        held_words = getattr(self._local, "held", None)
        if held_words is None:
            held_words = self._local.held = {}
        held_words[f"{rtype}/{stored.get('id')}"] = _words(incoming)
        held_said = getattr(self._local, "held_said", None)
        if held_said is None:
            held_said = self._local.held_said = {}
        held_said[f"{rtype}/{stored.get('id')}"] = incoming

    def _held(self, issues: list[Issue], rtype: str, stored: Resource, incoming: Resource, changed: Sequence[str],
              at: str | None, text: str) -> None:
        """The one shape of a statement held whole (older, or a step back over a withdrawal): its W -- the
        ``changed`` elements, located at ``at`` when the message said where -- and ``_hold``. ``_dated``,
        ``_not_withdrawn``, ``_restated_older`` and ``_not_back`` had each built the issue and held it
        (thirty-ninth round, stat39: one helper, the same issues)."""
        issues.append({"severity": "warning", "code": "conflict", "diagnostics": text,
                       "expression": [f"{rtype}.{n}" for n in changed], **({"location": [at]} if at else {})})
        self._hold(rtype, stored, incoming)

    def _not_withdrawn(self, rtype: str, name: str, ep: ElementPlan, stored: Resource, incoming: Resource,
                       source: str, said: Said | None, issues: list[Issue]) -> None:
        """``withdrawn``: a placeholder status (OBX-11 empty: no status stated) restating a value of a
        withdrawn result (entered-in-error, OBX-11 W/D) -- the stored version stays whole, the resource
        ``held`` (its words are no line of the report), the ACK warns at the field that stated the value
        (OBX-5), naming it. A withdrawn result comes back only by a message stating its status (C or F;
        table 0085); taking the value "as later" with the stored status kept (mixfix36's rule over a
        correction) wrote it into the withdrawn record: clinicians never saw it, and the withdrawn value
        left the current version (review rv36c MED 4; thirty-sixth round, status36). Not dated: held or
        taken, nothing of it is written -- no refusal to decide."""
        changed = _restated(ep, stored, incoming)
        at = said.first_at(changed, incoming) if said is not None else None
        values = ", ".join(f"{rtype}.{n} {_show(incoming[n])}" for n in changed)
        self._held(issues, rtype, stored, incoming, changed, at,
                   f"{values}: {_writer(source)}'s statement with no {name} (the placeholder "
                   f"{_show(incoming[name])}) was not stored: the stored {rtype} is withdrawn "
                   f"({name} {_show(stored[name])}) and comes back only by a message stating "
                   f"its {name} (OBX-11 C or F; table 0085) -- nothing of the {rtype} is written")

    def _restated_older(self, rtype: str, plan: TypePlan, stored: Resource, incoming: Resource, source: str,
                        said: Said | None, issues: list[Issue]) -> bool:
        """``until_later`` where no stored or stated value is in ``stands`` (``_dated`` is not asked): a
        message restating an element dated with it (``dated_with``: a result's value, flags or range;
        a document's text) is held when the *same* sending application's message that stated the
        stored version is strictly later by its MSH-7 (an equal MSH-7 by arrival, ``message_time``):
        the LIS's 11:00 final arriving after its 12:00 re-run (sent F, not C), the EMR's 11:00 edit
        (T08) after its 12:00 one, took the later statement back under AA (rvres35 MED 5, 6). Held:
        True, the stored version stays whole, the ACK warns (AA, ERR W at the field that stated what is
        held: OBX-5 of a value, TXA of a document) and the resource is ``held`` (its Provenance names no
        version of it). Another application's message, an unusable MSH-7 on either side, a version no
        message stated (a FHIR client's) that changed the status or a dated element: merged as before --
        no new refusal over a final (the lead, thirty-fifth round, tfix35). A client's version that only
        annotated the sender's value (a note) is dated by that sender's message (``_carried``, as
        ``_dated`` asks it), and a status placeholder (OBX-11 empty: ``unknown``) is dated like a stated
        F -- the older value got through either way (rvfixord35 MED 1, 2; heldfix35). Asked per message
        only when it changes a dated element: the stored version's message is the one ``_stored_stamps``
        finds (its look-up memoised per write). An older step back (``not_back``: a P over a final) is
        ``_not_back``'s whatever value it restates -- held there, at its status (OBX-11), as over a
        correction; asked only once found older, the common path pays nothing (status37). A message
        stating another status (``_moves``) is dated as one stating another value: the LIS's older X
        restating the final's value made it cancelled under AA -- held, W at the status's field (OBX-11),
        as an older P is (review rv37e MED 2, LOW 3; thirty-seventh round, statfix37).
        A step forward over a stored status that would be a ``not_back`` step from the message's (the
        LIS's F of 09:30 arriving after its P of 10:00) is no older restatement, whatever value it
        states: in MSH-7 order that P would have been kept out of the final -- its value, time and all
        (``not_back``: a final value changes only by C) -- so the F is the result either way, and the
        result is the same in either arrival order. It had left "preliminary 5.0" (tfix35's hold of the
        F's 4.1), the lab's final word lost to its earlier preliminary (thirty-eighth round, status38)."""
        dates: Dates | None = getattr(self._local, "at", None)
        if dates is None or source in NOT_THE_FEED:
            return False
        for name, ep in plan.dated:
            if not ep.dated_with or name not in incoming:
                continue  # (``name`` unstated: nothing anchors the restatement -- a report's copy has no TXA-12)
            held, told = _stood(stored.get(name, _MISSING)), _stood(incoming.get(name, _MISSING))
            if held in ep.stands or told in ep.stands:
                continue  # (a placeholder status, OBX-11 empty, is no reason to skip: the value is dated)
            if told != held and _backward(ep, told, held, stored) is not None:
                continue  # (a step forward the stored status would be kept out of: the older F over a later P -- status38)
            moved = _moves(ep, held, told)  # (another status stated: dated as a value is -- statfix37)
            if not moved and not _restates(ep, stored, incoming):
                continue
            if dates.now.unusable:
                return False  # (an unusable MSH-7 is never older: nothing to look up)
            found = self._stored_stamps(rtype, stored, dates)
            if found is None:
                return False
            then, provs = found
            if not then:  # (a client's version: dated by the message whose value and status it kept)
                then = self._carried(rtype, stored, name, dates, provs, also=ep.dated_with)
            verdict, _, by = settle(dates.now, then, stands=False)
            if verdict != "older" or by is None:
                return False
            if _backward(ep, stored.get(name, _MISSING), incoming[name], incoming):
                return False  # (a step back, whatever value it restates: ``_not_back`` holds it at its status -- status37)
            changed = (name, *_restated(ep, stored, incoming)) if moved else _restated(ep, stored, incoming)
            at = said.first_at((*changed, name), incoming) if said is not None else None
            what = ", ".join(f"{rtype}.{n}" for n in changed)
            self._held(issues, rtype, stored, incoming, changed, at, _older_text(
                what, f"{_writer(source)}'s statement", "the stored one", by, dates.now.text, rtype, same_sender=True))
            return True
        return False

    def _over_later_p(self, rtype: str, plan: TypePlan, stored: Resource, incoming: Resource,
                      source: str) -> str | None:
        """The name of the report status (``as_far_as`` with ``stands_with``'s ``merged``) under which this
        older message's report replaces what the same sender's later message stated before final: the LIS's
        F of 09:30 arriving after its P of 12:00, its results stepped forward past the P (``_results_stepped``:
        each dated on its own, none held, none before final, ``_restated_older``) and listing every result the
        stored report lists. In MSH-7 order that P was kept out of the final report whole but its results'
        references (``stands_with``, pfix38); in arrival order the final report kept the P's times (the F's
        dropped as older, ``not_from_older``) and listed the P's re-drawn tube beside the F's -- dated and
        specimened by a preliminary measurement none of its results carries (review rv38h MED 2). Now the
        F's report stands as it would have in MSH-7 order (``_as_in_order``). None otherwise: one of the
        stored results the message does not list may be the P's own (its tube is then the report's).
        Likewise an older C, or an older W (the report of a status none of whose results stands:
        ``all_results``), whose results stepped past the later P -- ``_dated`` lifts such a report's status
        (status38), and ``combine`` asked nothing more: the corrected or withdrawn report kept the later P's
        re-drawn tube B, which in MSH-7 order was kept out of it (fortieth round, st40)."""
        for name, ep in plan.over:
            if not ep.as_far_as or ep.merged_with is None:
                continue
            if stored.get(name) not in _BEFORE or (incoming.get(name) not in _DONE and not any(
                    incoming.get(name) in of for _, of in ep.all_results)):
                return None
            refs = {e.get("reference") for e in incoming.get(ep.as_far_as) or () if isinstance(e, dict)}
            had = {e.get("reference") for e in stored.get(ep.as_far_as) or () if isinstance(e, dict)}
            if not had <= refs or not any(incoming.get(n, _MISSING) != stored.get(n, _MISSING)
                                          for n in (*incoming, *stored)
                                          if n != name and n not in _OWN and n not in ep.merged_with):
                return None  # (nothing of the report to give the F's value to: no Provenance asked -- P -> F)
            if self._older_than_stored(rtype, stored, source) is None:
                return None  # (in MSH-7 order: the F's times and tubes merge as they always did)
            return name if self._results_stepped(ep, incoming) else None
        return None

    def _older_over_later(self, rtype: str, plan: TypePlan, stored: Resource, incoming: Resource,
                          source: str, left: Sequence[str]) -> tuple[frozenset[str], Resource] | None:
        """A result's ``_as_in_order``: the elements this older message steps forward over (a ``not_back``
        step from its status to the stored one's: the LIS's F of 11:50 over its P of 12:00) without stating
        them, each to be what the version before the later statements held (``_before_later``), with that
        version -- None when the message states them all (the ordinary P -> F: nothing read) or is not older
        by MSH-7. In MSH-7 order the P was kept out of the final but its ``merged`` (its note): the P's
        re-drawn tube B (drawn 11:00) stayed on the final 4.1 observed at 08:30, sent without SPM as many LIS
        send it, and through it on the final report (review rv39a MED 3 / finding 5; thirty-ninth round,
        sfix39)."""
        # (``left``: what the stored version holds and the message does not state -- asked by ``combine`` only when
        # it leaves out one not the store's own: not the ordinary P -> F)
        for name, ep in plan.backed:
            held, told = stored.get(name), incoming.get(name)
            if told == held or type(told) is not str or type(held) is not str:
                continue
            step = _backward(ep, told, held, stored)
            if step is None:
                continue
            keep = step.merged or frozenset()
            gone = frozenset(n for n in left if n != name and n not in _OWN and n not in keep and not n.startswith("_"))
            # (a stored version no message stated -- a client's note on the later P -- dated as ``_not_back``
            # dates it: by the message whose status and value it kept, ``carried``; fortieth round, st40)
            if not gone or self._older_than_stored(rtype, stored, source, carried=(name, ep.dated_with)) is None:
                return None
            return gone, self._before_later(rtype, stored)
        return None

    def _before_later(self, rtype: str, stored: Resource) -> Resource:
        """The stored version as of the newest message no later than the one at hand (``settle``): what
        ``stored`` was before the later statements this older message comes under (the LIS's P of 12:00
        over which its final of 11:50 arrives) -- the version an even older message (its P of 09:00) made.
        Empty when every version is later (the later P created it) or none can be read as of a message
        (no store, no Provenances); a version of a message that cannot be told later counts as before (what
        it holds is kept). A version is dated by the message that made it (``_made_by``), not by a later one
        that only names it: the 09:00 P re-sent unchanged at 10:00 had made the 09:00 version "later" than
        the 09:30 final, which lost its tube and interpreter (review rv40b HIGH 1; stfix40). Asked only where an older final replaces a later P (``_as_in_order``,
        ``_older_over_later``): one Provenance look-up (``_provenances``) and one version read (thirty-ninth
        round, sfix39).

        A version no message stated (a FHIR client's PUT, a records office's note) is not weighed by its own
        time -- its ``lastUpdated`` is the server's clock at arrival, the feed's order is each sender's MSH-7,
        and the two are never compared (``settle``: a client's version is "not told") -- nor on its own at
        all: it holds what the version it was written over held, and its client's word. It is as before or
        as later as that version: written over the later P it carries the P's re-drawn tube (later, passed
        over), written over the 09:00 P it holds no later statement and its client's word (before: it is
        the one given, the newest of a run of them). It had counted as before whatever it was written over,
        so a client's note added after the later P gave the older final the later P's tube (sfix39's LOW;
        fortieth round, st40)."""
        keeper = getattr(self._local, "stored", None)
        dates: Dates | None = getattr(self._local, "at", None)
        search, vread = getattr(keeper, "search", None), getattr(keeper, "vread", None)
        version = str((stored.get("meta") or {}).get("versionId") or "")
        rid = stored.get("id")
        if dates is None or search is None or vread is None or not version.isdigit() or not isinstance(rid, str):
            return {}
        ref = f"{rtype}/{rid}"
        _, by_version = self._provenances(keeper, search, rtype, ref)
        client: int | None = None  # (the newest of the clients' versions over the one asked next)
        for k in range(int(version) - 1, 0, -1):
            then = _made_by(dates, by_version, ref, k, written=lambda k=k: aware_instant(
                (self._vread(vread, rtype, rid, k).get("meta") or {}).get("lastUpdated")),
                by_client=lambda k=k: self._by_client(keeper, rtype, rid, k))
            if not then:
                client = k if client is None else client
                continue  # (a client's: as the version it was written over)
            if settle(dates.now, then, stands=False)[0] == "older":
                client = None
                continue  # (a later statement too, and the clients' versions over it: the version before it is asked)
            return self._vread(vread, rtype, rid, k if client is None else client)
        return {} if client is None else self._vread(vread, rtype, rid, client)

    @staticmethod
    def _by_client(keeper: Any, rtype: str, rid: str, version: Any) -> bool:
        """Whether version ``version`` of ``rtype/rid`` was stored by a FHIR client or the patient index (its writer
        mark, ``NOT_THE_FEED``), as the store's history and its marks, each newest first without deletions, pair them
        (``_made_by``, where the receipts of the old messages naming it do not tell). False where it cannot be told
        (no marks, a version stored before the mark, the two lists not paired)."""
        history, marks = getattr(keeper, "history", None), getattr(keeper, "version_writers", None)
        if history is None or marks is None:
            return False
        try:
            versions, writers = history(rtype, rid), marks(rtype, rid)
        except FhirError:  # (not found: nothing to tell)
            return False
        if len(versions) != len(writers):
            return False
        return any(str((v.get("meta") or {}).get("versionId")) == str(version) and w in NOT_THE_FEED
                   for v, (_, w) in zip(versions, writers, strict=True))

    @staticmethod
    def _vread(vread: Any, rtype: str, rid: str, k: int) -> Resource:
        """Version ``k`` of ``rtype/rid`` (``_before_later``), empty when it is not found (a deletion)."""
        try:
            return vread(rtype, rid, str(k))
        except FhirError:  # (not found, a deletion: nothing of it before)
            return {}

    def _older_times(self, rtype: str, plan: TypePlan, stored: Resource, incoming: Resource, source: str,
                     said: Said | None, issues: list[Issue]) -> Resource:
        """``not_from_older``: ``incoming`` without the elements it would change (a report's ``issued``,
        OBR-22, and ``effective[x]``, OBR-7) when the same sending application's message that stated the
        stored version is strictly later by its MSH-7 (``settle``, as ``_restated_older`` dates a
        result's value): the LIS's 11:00 message arriving after its 12:00 re-run -- its results held,
        or none of them changed -- wrote 11:00 as the report's issue time over the 12:00 message's
        (thirty-sixth round, ordfix36). The ACK warns (W) of each element not stored; the rest of the
        report (its result list, its text) merges as before. Another application, an unusable MSH-7
        on either side, a version no message stated: merged as the mode says. Asked only when the
        message changes one of them (one Provenance search for the report's messages, then)."""
        changed = [n for n in plan.timed if _changes_stored(n, plan, stored, incoming)]
        older = self._older_than_stored(rtype, stored, source) if changed else None
        if older is None:
            return incoming
        dates, by = older
        return _kept_out(rtype, changed, incoming, source, said, issues, lambda name: (
            f"{_show(stored.get(name))}, stated by message {by.label} of MSH-7 {by.text}, stands against this message "
            f"of MSH-7 {dates.now.text} of the same sender (not later: older)"))

    @staticmethod
    def _exam_times(rtype: str, plan: TypePlan, stored: Resource, incoming: Resource, source: str,
                    said: Said | None, issues: list[Issue]) -> Resource:
        """``exam_time``: ``incoming`` without the times of the exam it would change (a result's OBR-7 /
        OBX-14: when the specimen was collected, the study made) where the message states the result again
        as a correction -- its ``status`` one of ``by`` (corrected, amended, appended: OBR-25 / OBX-11 C, A)
        over a stored ``status`` of ``over`` (a final result). A correction states the result again, never a
        new exam: table 0085/0123's C is "correction of a result already final", and HL7's OBR-7 is the
        clinically relevant time, the specimen's. Many county LISes and RISes send OBR-7 as 报告时间, the
        report's time, so their correction 210 days later restated it with its own send time -- the report
        and its results were dated that day, and recognition (``facts.result_time``, which reads this time)
        reminded another hospital's CBC three days later of a "prior" no exam made and flagged its repeat
        not payable (rv41k MED 6; forty-second round, prior42). The correction's own time stays where it
        belongs: the report's ``issued`` (OBR-22) and the message's Provenance (MSH-7). The ACK warns (W) of
        each time not stored, naming both; the rest of the correction merges as before. A correction naming a
        specimen the stored version does not (``unless_new``: a re-drawn tube, SPM-2) is of another specimen,
        collected when it says: its time is taken (notback37's control). A first final (over
        a preliminary: the time may move with a re-drawn specimen), an F re-run, a replacing writer (a FHIR
        client's PUT states the whole resource): as the mode says. None of these times stored: filled."""
        status, held = incoming.get("status"), stored.get("status")
        if not isinstance(status, str) or not isinstance(held, str):
            return incoming
        changed = [n for n, ep in plan.examined if ep.exam_time is not None and held in ep.exam_time[0]
                   and status in ep.exam_time[1] and _changes_stored(n, plan, stored, incoming)
                   and not any(_names_new(stored.get(e, _MISSING), incoming.get(e, _MISSING)) for e in ep.exam_new)]
        if not changed:
            return incoming

        def stands(name: str) -> str:
            was = stored.get(name, _MISSING)
            if was is _MISSING:
                was = next(stored[m] for m in plan.choices.get(name, ()) if m in stored)
            return (f"{_show(was)}, the time the result was made, stands -- a {status} result states the {held} one "
                    "again, not another exam; its own time is its issue time (OBR-22) and its message's (MSH-7)")
        return _kept_out(rtype, changed, incoming, source, said, issues, stands)

    def _exam_of_report(self, rtype: str, plan: TypePlan, out: Resource, said: Said, source: str,
                        issues: list[Issue]) -> None:
        """``exam_time`` of a result new to the store that the message states as a correction (``Said.report``): its
        time is the exam's its stored report keeps. The LIS's correction restamped 210 days later (OBR-7, OBX-14 its
        send time) carried WBC, stored, and HGB, new: the report and WBC kept the exam's 2024-03-01, HGB was filed on
        2024-09-27 -- a result of that exam dated the day of the correction, the "prior" prior42 stopped for the
        report (rv42e MED 2; forty-third round, time43). The result is the report's stored version for the rule
        (``_exam_times``: its status over the stored report's, a specimen the report does not name is another one,
        collected when it says); a time it would keep out is replaced by the report's -- dated as taken from the
        report's OBR-7 (``TAKEN_FROM_EXT``: a later message stating OBX-14 replaces it) -- the ACK warning (W) at the
        field, naming both. The report read as the batch leaves it (``_read_all``: an F earlier in the batch)."""
        report = self._read_all([said.report]).get(said.report)
        if report is None:
            return
        names = [n for n, ep in plan.examined if n in report]
        if not names or any(n in out and out[n] == report[n] for n in names):
            return
        as_stored = _exam_view({n: report[n] for n in names}, report)
        told = {n: out[n] for n in (*plan.choices.get(names[0], ()), names[0]) if n in out}
        if not told:
            return
        kept = self._exam_times(rtype, plan, as_stored, _exam_view(told, out), source, said, issues)
        if all(n in kept for n in told):
            return  # (the rule keeps nothing out: a first final's, another specimen's)
        for n in told:
            out.pop(n, None)
            out.pop("_" + n, None)
        for n in names:
            out[n] = report[n]
            if n in plan.derived:
                out["_" + n] = {"extension": [{"url": TAKEN_FROM_EXT, "valueString": "OBR-7"}]}

    def _exam_by_report(self, rtype: str, plan: TypePlan, stored: Resource, incoming: Resource, source: str,
                        said: Said, issues: list[Issue]) -> Resource:
        """``exam_time`` ``of: report``: ``incoming`` (an ImagingStudy, which has no status of its own) without the
        times of the exam ``_exam_times`` keeps out, the statuses its report's -- the message's (``Said.report_status``)
        over the stored report's, as the batch leaves it. The PACS converter had decided the study's ``started``
        alone from the message's status (``pacs._study_time_of_a_correction``: filled only under any correction), so
        a correction over a PRELIMINARY report moved the report's time (``over`` names no preliminary) but not the
        study's: report and imaging prior disagreed (rv42e LOW; forty-third round, time43). One rule now."""
        report = self._read_all([said.report]).get(said.report)
        held = report.get("status") if report is not None else None
        if not isinstance(held, str):
            return incoming
        of = replace(plan, examined=tuple((n, ep) for n, ep in plan.examined if ep.exam_of_report))
        kept = self._exam_times(rtype, of, {**stored, "status": held}, {**incoming, "status": said.report_status},
                                source, said, issues)
        return {k: v for k, v in incoming.items() if k in kept}

    def _older_than_stored(self, rtype: str, stored: Resource, source: str,
                           carried: tuple[str, frozenset[str]] | None = None) -> tuple[Dates, Stamp] | None:
        """The message at hand's dates and the stamp of the same sending application's message that
        stated the stored version, when that one is strictly later by MSH-7 (``settle``); None for
        anything else -- no message at hand, a FHIR client's or the index's write, an unusable MSH-7
        on either side, another sender, a version no message stated (``_older_times``, ``_not_back``).
        ``carried`` (an element and those dated with it): a version no message stated that kept them as
        the newest message's version had them (a client's note) is dated by that message (``_carried``),
        as ``_restated_older`` dates it -- so an older P is held over it whatever value it states."""
        dates: Dates | None = getattr(self._local, "at", None)
        if dates is None or source in NOT_THE_FEED or dates.now.unusable:
            return None
        found = self._stored_stamps(rtype, stored, dates)
        if found is None:
            return None
        then, provs = found
        if not then and carried is not None:
            then = self._carried(rtype, stored, carried[0], dates, provs, also=carried[1])
        if not then:
            return None
        verdict, _, by = settle(dates.now, then, stands=False)
        return (dates, by) if verdict == "older" and by is not None else None

    def _not_back(self, rtype: str, plan: TypePlan, stored: Resource, incoming: Resource, source: str,
                  said: Said | None, issues: list[Issue], kept_back: list[_Kept]) -> Resource | None:
        """``not_back``: a stored status of a step's ``from`` (a final, corrected or amended result; a
        withdrawn one) that the message would take back to one of its ``to`` (registered, preliminary:
        OBX-11 P, R, S, I; over a withdrawal an X too) stays -- a final result is taken back only by a
        correction, an amendment or a withdrawal (OBX-11 C, A/B, W/D; HL7 v2.5.1 table 0085), a withdrawn
        one comes back only by a message stating its result (C or F). A status change alone is not
        dated (``until_later`` dates the value), so the LIS's P re-sent after its F set the result back
        to preliminary, under AA (thirty-sixth round, ordfix36). The same sending application's P that
        its MSH-7 shows older than the message that stated the stored version is held like any older
        restatement, whatever value it states: the stored version whole, the resource ``held``, W at the
        status's field (None returned) -- one rule, one location whichever status is stored (an older P
        with another value over a final was located at its OBX-5 by ``_restated_older``, over a
        correction at OBX-11; thirty-seventh round, status37). A ``whole`` step (over a withdrawal) holds
        any other alike. Any other (later, another sender, not told): the status -- and the elements
        dated with it (its value, flags, range: a final value changes only by a correction), those
        describing the observation kept out (``with``: its time, OBX-14 -- else the stored value read as
        observed at the P's time; rv36f MED 3, pdate36; ``merged``: every element but those it names --
        the shipped step merges the note alone, so the P's observer, method and specimen go out too:
        rv37a MED 2-4, notback37) and what is stated with them (``follows``: the value's components) --
        kept as stored, none of them written nor deleted by the message (a P's OBX-5 ``""`` deleted the
        final value the W said stood), the rest merged (its note). The W at the
        status's field is worded once the merge is done (``_Kept.say``): it names what stood against the
        message and only what of the rest was written. Returns ``incoming`` as it is to be merged."""
        for name, ep in plan.backed:
            step = _backward(ep, stored.get(name, _MISSING), incoming.get(name, _MISSING), incoming)
            if step is None:
                continue
            at = said.at(name, incoming) if said is not None else None
            where = {"location": [at]} if at else {}
            changed = (name, *_restated(ep, stored, incoming))
            what = ", ".join(f"{rtype}.{n}" for n in changed)
            why = step.why or (f"a {_show(stored[name])} result is taken back only by a correction, an amendment "
                               "or a withdrawal (OBX-11 C, A, B, W, D; table 0085)")
            older = self._older_than_stored(rtype, stored, source, carried=(name, ep.dated_with))
            if older is not None or step.whole:
                if older is not None:
                    dates, by = older
                    text = _older_text(what, f"{_writer(source)}'s {_show(incoming[name])}",
                                       f"the stored {_show(stored[name])}", by, dates.now.text, rtype, same_sender=True)
                else:
                    text = (f"{what}: {_writer(source)}'s {_show(incoming[name])} was not stored over the stored "
                            f"{_show(stored[name])}: {why} -- nothing of the {rtype} is written")
                self._held(issues, rtype, stored, incoming, changed, at, text)
                return None
            # (the elements describing the observation kept out -- its time, OBX-14 -- go with its value:
            # a later P's 11:30 stored beside the corrected 4.3 said 4.3 was observed at 11:30; rv36f MED 3;
            # ``merged``: all of them but those it names -- its observer, method, specimen: rv37a MED 2-4)
            out = ep.dated_with | step.kept
            beside: dict[str, Any] = {}
            if step.merged is not None:
                out |= {n for n in (*stored, *incoming) if n not in step.merged and n not in _OWN}
                beside, standing = _beside(stored, incoming, step.merged)
                out |= standing
            out |= {n for n, followed in plan.follows if followed & out}
            guarded = frozenset((name, *out))
            issue: Issue = {"severity": "warning", "code": "conflict", **where}
            issues.append(issue)
            if getattr(self._local, "out", None) is None:
                self._local.out = {}
            self._local.out[f"{rtype}/{stored.get('id')}"] = incoming  # (its report judges by it: ``_over``)
            kept_back.append(_Kept(issue, rtype, name, guarded, incoming,
                                   f"{_writer(source)}'s {_show(incoming[name])} was not stored over the stored "
                                   f"{_show(stored[name])}: {why}", frozenset(beside)))
            incoming = {k: beside.get(k, v) for k, v in incoming.items() if k not in guarded}
        return incoming

    def _copy_held(self, rtype: str, plan: TypePlan, stored: Resource, incoming: Resource) -> bool:
        """``text_of``: a document that copies its report (an imaging report's DocumentReference, no
        number of its own) is held whole when this message's statement of that report was held
        (``_dated``: older than the message that stated the stored report) -- its status and
        ``docStatus`` follow the report's status as stored after the merge, and an older resend held
        against a cancelled or corrected report made its document current or final again (rvres35
        HIGH 1, MED 2; thirty-fifth round, tfix35). The report is combined first (its write group's
        order); its ACK warning (OBR-25) says what was held. The document is ``held`` too: this
        message's Provenance names none of its versions.

        Likewise when the report's text stood with its status kept as stored (``kept``: a later P kept out
        of a final report, ``stands_with``): the PACS's draft re-read made the final report's document
        ``preliminary`` with the draft impression while the report kept the final words (review rv38a
        HIGH 2's document; thirty-eighth round, pfix38). The report's W at OBR-25 names the text."""
        held: dict[str, list[str]] = self._local.held or {}
        kept: set[str] = self._local.kept or set()
        if incoming.get("masterIdentifier"):
            return False  # (a document with its own number, TXA-12: its own text, ``_text_copied``)
        for _, ep in plan.copied:
            refs = [r.get("reference") for r in _at_path(incoming, ep.text_of) if isinstance(r, dict)
                    and str(r.get("reference") or "").startswith("DiagnosticReport/")]
            if any(ref in held for ref in refs):
                held[f"{rtype}/{stored.get('id')}"] = []
                return True
            if any(ref in kept for ref in refs):
                return True  # (stored whole: no version of it is written, so no Provenance names one)
        return False

    def refused(self) -> None:
        """Raise the refusal of this block's write (``Untimely``, its ``more`` the comparisons after the
        first) when any comparison could not be told (``_dated``): asked by ingest once the message's
        resources are merged -- each undated one was left as stored meanwhile, and nothing of the
        write is kept (the refusal rolls it back). Every version it could not date is recorded, so
        the operator's one decision covers them all (rvfixord35 LOW 4; thirty-sixth round, ordfix36)."""
        collected: list[Untimely] | None = getattr(self._local, "untimely", None)
        if collected:
            self._local.untimely = []
            raise _combined(collected, getattr(self._local, "decided", None) or ())

    def held(self) -> frozenset[str]:
        """"Type/id" of the resources this message's write left as stored because the message was older
        than the one that stored them (``_dated``): its Provenance names none of their versions -- it
        stated none of them (rvmsgtime33 finding 11)."""
        return frozenset(getattr(self._local, "held", None) or ())

    def _stored_stamps(self, rtype: str, stored: Resource, dates: Dates) -> tuple[list[Stamp], list[Resource]] | None:
        """The ``Stamp`` of each message that stated this version of ``stored``, with the Provenances
        naming any version of it (read once: ``_carried`` reads the same): the messages whose
        Provenances name it (``Type/id/_history/n``: the one that wrote it, and a resend that stated
        it again unchanged), and every earlier message of this write group that stated it (its
        Provenance written after the batch merged: ingest knows them) -- both together: a batch's
        resend of a committed withdrawal is compared as it would be outside the batch (rvmsgfix34
        HIGH 4, MED 7). Empty when no message stated it (a FHIR client's version); a message no
        longer kept is a ``Stamp`` that says so (``Dates.of``); None when there is no store to read."""
        keeper = getattr(self._local, "stored", None)
        search = getattr(keeper, "search", None)
        version = (stored.get("meta") or {}).get("versionId")
        if search is None or not version or not stored.get("id"):
            return None
        ref = f"{rtype}/{stored['id']}"
        target = f"{ref}/_history/{version}"
        every, by_version = self._provenances(keeper, search, rtype, ref)
        provs = by_version.get(target, ())  # those naming this very version, in ``every``'s order
        return [*(dates.of(provs) if provs else ()), *dates.pending(target)], every

    def _provenances(self, keeper: Any, search: Any, rtype: str,
                     ref: str) -> tuple[list[Resource], dict[str, list[Resource]]]:
        """The feed's Provenances naming a version of ``ref`` ("Type/id/_history/n"), in the store's
        order, and those naming each version (``Type/id/_history/n`` -> them, in that order: sorted
        out in the one pass over their targets that groups them by resource, where each result's own
        look-up scanned every target of every Provenance again, thirty-sixth round, perfi36): read
        for every resource of ``rtype`` this message states (``said``) at once, on the first one
        asked, and kept for the rest of the write (``saying``'s block), each resource's once: a second
        merge of it in the block (a write run again) reads its own afresh -- a re-run of a 12-result
        panel dated each result with a search of its own, ~80 % of its +39 % (thirty-fifth round,
        rerun35). One search ``target=A,B,...`` (OR) is each search ``target=A`` together: the
        store's order (its row key) is one order whatever the filter, and only the targets
        ``Type/id/_history/n`` are read here (``_stored_stamps``, ``_carried``). The Provenances of this
        message are written after its write, so none appears within the block -- and none is written
        by anything a retried write races (a claim race re-merging after another writer): the lists
        read ahead in the first attempt, for resources it had not merged yet, are still what the
        store holds, so serving them to the retry is right (rvfixord35 note 5; ordfix36). A change
        that writes Provenances inside the batch must reset this read-ahead on a retry."""
        read = getattr(self._local, "provenances", None)
        if read is None or read[0] is not keeper:
            read = self._local.provenances = (keeper, {}, set())
        known: dict[str, tuple[list[Resource], dict[str, list[Resource]]]] = read[1]
        if ref in known:
            return known.pop(ref)
        prefix, asked = rtype + "/", read[2]
        refs = [ref, *(r for r in (getattr(self._local, "said", None) or ())
                       if r.startswith(prefix) and r != ref and r not in asked and "/" not in r[len(prefix):])]
        asked.update(refs)
        writers = getattr(keeper, "writers", None)
        # the store's narrow read of them (``referring``: one indexed statement, each with its writer
        # mark), where the keeper has one: the search ``target=A,B,...`` built its SQL per value and
        # cost about eight plain searches (thirty-sixth round, perfi36)
        referring = getattr(keeper, "referring", None)
        for start in range(0, len(refs), _TARGETS):
            chunk = refs[start:start + _TARGETS]
            # a Provenance a FHIR client or the index wrote (a client's POST naming a message, a PUT
            # retargeting a message's own) is not the feed's word: it dates nothing -- a version only
            # such a one names is a client's version (rvres35 MED 3, 4; thirty-fifth round, tfix35)
            if referring is not None:
                found = [p for p, mark in referring("Provenance", "target", [tuple(r.split("/", 1)) for r in chunk])
                         if mark not in NOT_THE_FEED]
            else:
                found = _every(search, "Provenance", [("target", ",".join(chunk))])
                if found and writers is not None:
                    marks = writers("Provenance", [str(p.get("id")) for p in found])
                    found = [p for p in found if marks.get(str(p.get("id"))) not in NOT_THE_FEED]
            named: dict[str, tuple[list[Resource], dict[str, list[Resource]]]] = {r: ([], {}) for r in chunk}
            for prov in found:
                for t in prov.get("target") or ():
                    reference = t.get("reference") if isinstance(t, dict) else None
                    if isinstance(reference, str) and "/_history/" in reference:
                        of = named.get(reference.split("/_history/", 1)[0])
                        if of is not None:
                            if not of[0] or of[0][-1] is not prov:
                                of[0].append(prov)
                            exact = of[1].setdefault(reference, [])
                            if not exact or exact[-1] is not prov:
                                exact.append(prov)
            known.update(named)
        return known.pop(ref)

    def _carried(self, rtype: str, stored: Resource, name: str, dates: Dates,
                 provs: list[Resource], also: frozenset[str] = frozenset()) -> list[Stamp]:
        """A version no message stated (a FHIR client's PUT) that kept ``name`` as the newest version a
        message stated had it (a label added, a note): dated by that message's ``Stamp`` -- the client
        stated nothing of the status, the message did (a lab's correction after an office labelled the
        result is taken). Empty when the client changed it (a restoring PUT: the order cannot be told)
        or no message's version is found. ``provs``: the Provenances naming any version of it
        (``_stored_stamps`` read them). ``also``: elements the client must have kept too (``dated_with``,
        for ``_restated_older``: a note on the sender's later value dates it; a changed value does not --
        thirty-fifth round, heldfix35)."""
        history = getattr(getattr(self._local, "stored", None), "history", None)
        if history is None:
            return []
        ref = f"{rtype}/{stored['id']}"
        named: dict[str, list[dict[str, Any]]] = {}
        for prov in provs:
            for t in prov.get("target") or ():
                reference = t.get("reference") if isinstance(t, dict) else None
                if isinstance(reference, str) and reference.startswith(ref + "/_history/"):
                    named.setdefault(reference.rsplit("/", 1)[1], []).append(prov)
        for version in history(rtype, stored["id"]):
            vid = str((version.get("meta") or {}).get("versionId") or "")
            if vid in named:
                kept = (_stood(version.get(name)) == _stood(stored.get(name))
                        and all(version.get(n) == stored.get(n) for n in also))
                return dates.of(named[vid]) if kept else []
        return []

    def _another(self, rtype: str, name: str, ep: ElementPlan, stored: Resource, st: Resource, inc: Resource,
                 source: str, fields: Mapping[str, str], issues: list[Issue]) -> None:
        """``another``: a coded value naming another test than the stored one (a coding system in
        common, no coding in common: UREA over CREA) -- the writer would recode the stored
        resource, not state it anew. Only when the stored version has an entry ``another_if``
        matches (an order the filler already named: its FILL identifier), so an LIS coding the
        HIS's order in its own codes is not a conflict. Refused (``reject``): located at the field
        that stated it (``Said.fields``: OBR-4) an HL7 error for the ACK's ERR, else 422.

        The same for what is already filed under the filler's number (DiagnosticReport ``code``:
        ``another_if`` through its ``basedOn`` -- an ``another_if`` path whose first step holds
        references reads the resources they name, this write's versions first): the report keeps the
        LIS's code of its test whether or not a map knows it, while the order keeps only codings the
        maps show are its test (mixfix36) -- PT ordered, the LIS's PTX reported (no map: not on the
        order), then PTY under the same filler number has no system in common with the order, but one
        with the report, and no coding: refused, not filed under the PT order nor recoding its report
        (thirty-sixth round, codefix36)."""
        mine, theirs = _codes(st), _codes(inc)
        if not mine or not theirs or mine & theirs or not {s for s, _ in mine} & {s for s, _ in theirs}:
            return
        if stand_in(st):
            return  # the stored code is huren's stand-in (``STAND_IN_EXT``): the sender names its test now
        for path, values in ep.another_if:
            if not any(v in values for v in self._collect_through(stored, path)):
                return
        if any(path[0] == "basedOn" for path, _ in ep.another_if) and self._order_states(stored, mine, theirs):
            return  # the report follows its order, which the filler's own order message recoded (its XX): code37
        what = {"ServiceRequest": "order", "DiagnosticReport": "report"}.get(rtype, rtype)
        text = (f"{rtype}.{name}: the order number names the stored {what} of another test "
                f"({concept_label(st)}, {sorted(c for _, c in mine)}); {_writer(source)}'s test "
                f"({concept_label(inc)}, {sorted(c for _, c in theirs)}) would recode it, not stated")
        at = field_of(fields.get(f"{rtype}.{name}", ""))
        if ep.another == "reject" and at is not None:
            raise HL7Error(text, at[0], at[1], at[2], code=DUPLICATE_KEY_IDENTIFIER)
        self._conflict(ep.another, text, f"{rtype}.{name}", issues)

    def _order_states(self, stored: Resource, mine: set[tuple[str, str]], theirs: set[tuple[str, str]]) -> bool:
        """Whether an order the stored report is ``basedOn`` (this write's version, else the store's) was
        recoded to the incoming test by its filler's own order message: HL7 v2 table 0119's ORC-1 XX,
        "order/service changed, unsolicited", is the filler's change of the service, and its report under
        that number follows it -- the RIS's XX from head CT to chest CT recoded the order, then its
        corrected report (OBR-25 C) naming chest CT was refused as "another test" at the report (code37).
        A result message alone changes no test (a C corrects results, table 0123): without the filler's
        statement the refusal stands (gfix13). Judged on the code the sender changed (the coding system
        the report's stored code and the message's have in common: ``_another``'s reading):

        - the order holds the message's coding in that system and no longer the report's -- any coding of
          the message's test was enough, so the order's own LOINC sent beside a changed local code
          lifted the refusal with no order message at all (rv37c MED 4);
        - the order version that first held it so was stated by a message of the same sending
          application (MSH-3 and institution: ``Stamp.sender``) as this one, the report's filler -- an XX
          another application (the LIS) sent under the RIS's numbers recoded the order, and then the
          RIS's report followed it (rv37c MED 5). No message times at hand (a FHIR client's write, no
          ingest): not told, the refusal stands (thirty-seventh round, codefix37)."""
        systems = {s for s, _ in mine} & {s for s, _ in theirs}
        changed, gone = {p for p in theirs if p[0] in systems}, {p for p in mine if p[0] in systems}
        dates: Dates | None = getattr(self._local, "at", None)
        refs = [e["reference"] for e in stored.get("basedOn") or ()
                if isinstance(e, dict) and isinstance(e.get("reference"), str)]
        if not changed or dates is None or not refs:
            return False

        def recoded(order: Resource) -> bool:
            held = _codes(order["code"]) if isinstance(order.get("code"), dict) else set()
            return bool(held & changed) and not held & gone

        for order in self._read_all(refs).values():
            if order.get("resourceType") != "ServiceRequest" or not recoded(order):
                continue
            found = self._stored_stamps("ServiceRequest", self._first_holding(order, recoded), dates)
            stamps = found[0] if found is not None else []
            if stamps and all(s.sender == dates.now.sender for s in stamps):
                return True
        return False

    def _first_holding(self, resource: Resource, holds: Callable[[Resource], bool]) -> Resource:
        """The earliest version of ``resource`` (a current one, this write's or the store's) from which on every
        version ``holds``: the one whose writer made it so (``_order_states``: the message that recoded the
        order, not a later one that restated it or changed its status). The store's history, newest first;
        ``resource`` itself when it has none (this write group's first version of it)."""
        history = getattr(getattr(self._local, "stored", None), "history", None)
        first = resource
        if history is None or not resource.get("id"):
            return first
        try:
            versions = history(resource["resourceType"], resource["id"])
        except NotFound:
            return first
        mark = int(str((resource.get("meta") or {}).get("versionId") or 0) or 0)
        for version in versions:
            vid = str((version.get("meta") or {}).get("versionId") or "")
            if vid.isdigit() and mark and int(vid) >= mark:
                continue  # the current version itself (or one this write replaced)
            if not holds(version):
                break
            first = version
        return first

    def _not_numbered(self, rtype: str, stored: Resource | None, incoming: Resource, owned: tuple[Owned, ...],
                      issues: list[Issue], said: Said | None = None) -> tuple[Resource, Said | None]:
        """``incoming`` (and ``said``) without what it states only as the application that stored the order's
        number (``Owned``) when the order's history names another (``_numbered``), or none for a number that
        must have one: such an element only fills an order not stored yet (``stored`` None: a create, or one
        stored without it), the message's own identifier of that kind is not stored unless the order holds
        it already or it is all the order is found by, and the ACK warns at the field that stated it with
        the ERR-3 the converter chose (``Owned.code``: 204, the number is no key of the sender's). The statement
        is held whole: on a stored order nothing of what merge.yaml marks ``held`` (``_held_whole``: what the placer
        states of it -- its time, requester, priority, re-test reason and that reason's withdrawal -- and its
        status; stated or deleted) is written either, and the W names what was held with the element (review rv40d HIGH 1-2: the test alone
        was held, and a held XO still rewrote the order time, the requester and the re-test reason)."""
        dates: Dates | None = getattr(self._local, "at", None)
        hold, owns = getattr(dates, "hold", None), getattr(dates, "owns", None)
        for named in owned:
            if named.element not in incoming:
                continue
            own = self._its_number(stored, named)
            if own is None:
                continue  # (named by another number, and the order holds none of this kind: nothing to judge by)
            claim = f"{own.kind}|{own.system}|{own.value}"
            ref = f"{rtype}/{(stored or incoming).get('id')}"
            judged = str(((stored or {}).get("meta") or {}).get("versionId") or "")  # (the version it was held against)
            if own.elsewhere:
                other = self._held_elsewhere(rtype, stored, incoming, own)
                if other is None:
                    continue  # (no other order holds it: nothing to hold it by)
                holder, stamps = other
                if stamps and dates is not None and all(_same_application(s, dates.now) for s in stamps):
                    continue  # (its own number on another order of its own)
                first = stamps[0] if stamps else None
                who = ("no message" if first is None else first.sender.replace("^", " of ") if first.sender.strip("^")
                       else first.unusable)
                why = (f"{holder} holds {own.kind} {own.value}: its history names {who}"
                       + (f" (message {first.label})" if first is not None else "") + " as the one that stored it")
                incoming = self._without_number(stored, incoming, own)
                issues.append({"severity": "warning", "code": "conflict", "expression": [f"{rtype}.{own.element}"],
                               "location": [own.at], "diagnostics": f"{own.text} ({why})",
                               "details": {"coding": [{"system": V2_0357, "code": own.code}]}})
                if hold is not None:  # (another order's number: no operator's decision makes it this order's)
                    hold({"claim": claim, "resource": ref, "element": own.element, "at": own.at, "elsewhere": True,
                          "judged": judged})
                continue
            if owns is not None and owns(claim, ref) is not None:
                continue  # (the operator decided this message's change is the number's owner's: ord40)
            stamps = self._numbered(rtype, stored, own) if stored is not None else None
            if stamps is None:
                if not own.unknown:
                    continue  # (nothing in the history to hold it by: the placer's, as before)
                why = f"no message stored {own.kind} {own.value} on it before"
            elif dates is not None and all(_same_application(s, dates.now) for s in stamps):
                continue  # (the application that stored the number: its own statement)
            else:
                first = stamps[0]
                who = first.sender.replace("^", " of ") if first.sender.strip("^") else first.unusable
                why = f"the order's history names {who} (message {first.label}) as the one that stored {own.kind} {own.value}"
            if stored is not None and own.element in stored:
                incoming = {k: v for k, v in incoming.items() if k != own.element}
            also: list[str] = []
            if stored is not None:
                incoming, said, also = self._without_held(rtype, incoming, said, own.element)
            incoming = self._without_number(stored, incoming, own)
            held_too = f"; held with it, what else it states of the order: {', '.join(also)}" if also else ""
            issues.append({"severity": "warning", "code": "conflict",
                           "expression": [f"{rtype}.{own.element}", *(f"{rtype}.{name}" for name in also)],
                           "location": [own.at], "diagnostics": f"{own.text} ({why}{held_too})",
                           "details": {"coding": [{"system": V2_0357, "code": own.code}]}})
            if hold is not None:  # (kept with the message: its claim stores no number, ``_numbered``; and an
                # operator may decide it, ``owns``)
                hold({"claim": claim, "resource": ref, "element": own.element, "at": own.at, "elsewhere": False,
                      "judged": judged})
        return incoming, said

    @staticmethod
    def _its_number(stored: Resource | None, own: Owned) -> Owned | None:
        """``own`` as judged: itself when it names its number; when the statement named the order by another number
        alone (``own.value`` empty: an XO under the filler's accession, ORC-2/OBR-2 empty, joined to the order that
        holds it -- review rv40h MED 7), ``own`` under the stored order's first number of ``own.kind`` (its placer
        number: the one its history is read by, as for any statement naming it); None when there is no stored order
        or it holds no number of that kind (made by the filler's result alone: nothing placed it, nothing to hold
        by)."""
        if own.value:
            return own
        for ident in (stored or {}).get("identifier") or ():
            if isinstance(ident, dict) and ident_type(ident) == own.kind and ident.get("system") and ident.get("value"):
                return replace(own, system=str(ident["system"]), value=str(ident["value"]))
        return None

    def _held_whole(self, rtype: str) -> tuple[tuple[str, Slice | None], ...]:
        """What a held statement writes none of on a stored ``rtype`` (merge.yaml ``held``, the one list): what
        the placer states of it, and its status, which the placer's requests and the filler's statements state
        alike (a third application's held OC still revoked the RIS's order: review rv40h MED 5) -- each element,
        with the slice of its entries that is held (None: the whole element). Read once a type. (The key was
        ``placer`` while it held the placer's parts alone; named for what it does since: forty-first round.)"""
        parts = self._held_parts.get(rtype)
        if parts is None:
            found: list[tuple[str, Slice | None]] = []
            for name, rule in (self._resources.get(rtype) or {}).items():
                mark = rule.get("held") if isinstance(rule, Mapping) else None
                if mark is True:
                    found.append((name, None))
                elif isinstance(mark, Mapping) and mark:
                    found.append((name, _slice_of(f"the placer's {name}", mark)))
            parts = self._held_parts[rtype] = tuple(found)
        return parts

    def _without_held(self, rtype: str, incoming: Resource, said: Said | None,
                      element: str) -> tuple[Resource, Said | None, list[str]]:
        """``incoming`` and ``said`` without what a held statement (``_not_numbered``) states or deletes of the
        held parts of a stored ``rtype`` (``_held_whole``), and the names of the elements it stated of them beside
        ``element`` (the one its ``Owned`` holds): the stored parts stand."""
        stated: list[str] = []
        out = dict(incoming)
        for name, part in self._held_whole(rtype):
            value = out.get(name, _MISSING)
            if part is None:
                if value is not _MISSING:
                    out.pop(name)
                    stated.append(name)
            elif isinstance(value, list):
                rest = [e for e in value if not part.matches(e)]
                if len(rest) < len(value):
                    stated.append(name)
                    if rest:
                        out[name] = rest
                    else:
                        out.pop(name)
        if said is not None and said.deletes:
            kept = tuple(d for d in said.deletes if not any(_deletes_part(d, name, part)
                                                            for name, part in self._held_whole(rtype)))
            if len(kept) < len(said.deletes):
                stated.extend(d.element.split(".", 1)[0] for d in said.deletes if d not in kept)
                said = replace(said, deletes=kept)
        return out, said, [n for n in dict.fromkeys(stated) if n != element]

    @staticmethod
    def _without_number(stored: Resource | None, incoming: Resource, own: Owned) -> Resource:
        """``incoming`` without the message's own identifier of ``own``'s number when ``stored`` does not hold it
        already and it is not all the resource is found by: a held claim to a number is not stored."""
        idents = incoming.get("identifier")
        if isinstance(idents, list) and not any(_is_number(i, own) for i in (stored or {}).get("identifier") or ()):
            rest = [i for i in idents if not _is_number(i, own)]
            if rest and len(rest) < len(idents):
                incoming = {**incoming, "identifier": rest}
        return incoming

    def _held_elsewhere(self, rtype: str, stored: Resource | None, incoming: Resource,
                        own: Owned) -> tuple[str, list[Stamp]] | None:
        """Another ``rtype`` than ``stored`` of the sender's institution, placed, holding ``own``'s number
        ("Type/id") and the messages that first stored it there (``_numbered``; none when no message did), else
        None (``Owned.elsewhere``). Review rv40c:

        - *the sender's institution* (HIGH 2): identifier systems are not institution-scoped -- two county
          hospitals' RIS both send ``RIS`` and number accessions alike (``urn:huren:id:RIS|ACC-1``) -- so another
          member's order holding the number is no order of this sender's: it neither withholds the number nor
          is named in the ACK (its id, application and control id are that member's). An order's institution is
          its patient record's (``managingOrganization``, ``_same_sender``): orders and patients are filed under
          the sender's institution (``Context.put``);
        - *placed* (MED 4): an order holding no placer number (PLAC) was made by the filler's result under its
          number alone (HL7 v2.5.1 4.5.1.3: ORC-3 is the filler's number of the order the placer numbers in
          ORC-2/OBR-2) -- the same exam, whose placer's order carries the number (the two are not joined);
        - *holding it still* (review rv40d MED 3): an order this one replaces (``replaces``: the RP before its
          RO, ch. 4 4.5.1.1, both under the accession the filler keeps), or one revoked or entered in error
          (``LET_GO`` -- as this write leaves it: the RP in the RO's own message; a CA then a new NW of the
          exam under the kept accession), is another order no longer: the HIS's own replacement was made
          without the RIS's accession and told it was "another order's";
        - not asked when ``stored`` holds the number already (a statement of the order that holds it: nothing to
          withhold); searched escaped (``token_value``: an accession holding a comma is one value, LOW 10)."""
        if stored is not None and any(_is_number(i, own) for i in stored.get("identifier") or ()):
            return None
        keeper = getattr(self._local, "stored", None)
        search = getattr(keeper, "search", None)
        theirs = (incoming.get("subject") or {}).get("reference") if isinstance(incoming.get("subject"), dict) else None
        if search is None or not isinstance(theirs, str):
            return None
        mine = (stored or {}).get("id")
        replaced = {r.get("reference") for r in incoming.get("replaces") or () if isinstance(r, dict)}
        for other in _every(search, rtype, [("identifier", token_value(own.system, own.value))]):
            idents = other.get("identifier") or ()
            if other.get("id") == mine or not any(_is_number(i, own) for i in idents) \
                    or not any(isinstance(i, dict) and ident_type(i) == "PLAC" for i in idents):
                continue
            ref = f"{rtype}/{other.get('id')}"
            if ref in replaced or self._read_all([ref]).get(ref, other).get("status") in LET_GO:
                continue  # (an order this one replaces, or one cancelled -- in this write too: no longer holding it)
            subject = (other.get("subject") or {}).get("reference") if isinstance(other.get("subject"), dict) else None
            if not isinstance(subject, str) or (subject != theirs and not self._same_sender(keeper, subject, theirs)):
                continue  # (another institution's order, or one filed under no patient: not this sender's to hold by)
            return f"{rtype}/{other.get('id')}", self._numbered(rtype, other, own) or []
        return None

    def _numbered(self, rtype: str, stored: Resource, own: Owned) -> list[Stamp] | None:
        """The ``Stamp`` of the message that first stored ``own``'s number (its kind, system and value) on
        ``stored`` -- the one owner of "whose number is it", for the filler's (FILL) and the placer's (PLAC)
        alike: the earliest of the versions, newest back, that all hold it, and the message that made that
        version (``_made_by``: of those whose Provenances name it and this batch's earlier ones that wrote it,
        ``Dates.pending``, the one whose write did not leave it unchanged -- a resend naming the version it
        found stored none of it; stfix40). With
        ``own.through`` (a source group) only a message of that group counts, and with ``own.placing`` only one
        that states the number as the placer's (``Stamp.placed``): the first version holding it written by
        one -- ord39 took the first version any order message wrote, so the filler's own XX after its report
        (which first stored the placer number) made the filler the placer (review rv39g MED 3; ofix39). A message
        whose claim to this number was held (``Stamp.claims``) stored none of it, though its write created the
        order holding it (a filler number alone: ord39's LOW left; ord40). None
        when the stored order does not hold the number, no message stated the version (a FHIR client's), or
        there are no message times or history to read (no ingest)."""
        dates: Dates | None = getattr(self._local, "at", None)
        keeper = getattr(self._local, "stored", None)
        history, search = getattr(keeper, "history", None), getattr(keeper, "search", None)
        if dates is None or history is None or search is None or not stored.get("id") \
                or not any(_is_number(i, own) for i in stored.get("identifier") or ()):
            return None
        try:
            versions = history(rtype, stored["id"])
        except NotFound:
            return None
        run = []  # (the versions holding it, newest first, back to the first that does not)
        for version in versions:
            if not any(_is_number(i, own) for i in version.get("identifier") or ()):
                break
            run.append(version)
        ref = f"{rtype}/{stored['id']}"
        _every, by_version = self._provenances(keeper, search, rtype, ref)
        group = self._groups.get(own.through) if own.through else None
        for version in reversed(run):
            meta = version.get("meta") or {}
            stamps = _made_by(dates, by_version, ref, meta.get("versionId"),
                              written=lambda meta=meta: aware_instant(meta.get("lastUpdated")),
                              by_client=lambda meta=meta: self._by_client(keeper, rtype, stored["id"],
                                                                          meta.get("versionId")))
            if group is not None:
                stamps = [s for s in stamps if s.message in group]
            if own.placing:
                stamps = [s for s in stamps if own.value in s.placed()]
                if not stamps:
                    continue  # (a version that holds the number but whose writer did not place it)
            # a message whose claim to this number was held stored nothing of it -- though its write created the
            # order that holds it, a filler number alone finding nothing else (ord39's left, LOW; ord40)
            claim = f"{own.kind}|{own.system}|{own.value}"
            unheld = [s for s in stamps if claim not in s.claims()]
            if stamps and not unheld:
                continue  # (held claims alone wrote it: the next version's writer stored it, if any)
            stamps = unheld
            # the one that made the version stored it (``_made_by``: a later message that changed nothing names
            # the same version in its Provenance and is no storer of the number -- ofix39, stfix40); should more
            # than one remain (a message filed before its document kept what it left unchanged), the first by
            # arrival (``received``; this batch's own, not yet received, after the stored), then by sender and
            # message (MSH-3^MSH-4, MSH-10: the message store's key) -- the Provenances come in no set order, and
            # an equal receipt was decided by the order they were read in (review rv40b LOW 4)
            stamps.sort(key=_arrival)
            return stamps[:1] or None
        return None

    def _collect_through(self, resource: Resource, path: tuple[str, ...]) -> list[Any]:
        """``_collect`` of ``path``; where its first step holds references (a report's ``basedOn``),
        the rest of it is read from the resources they name (this write's versions, else the store)."""
        found = _collect(resource, path)
        if found or len(path) < 2:
            return found
        refs = [e["reference"] for e in _collect(resource, path[:1])
                if isinstance(e, dict) and isinstance(e.get("reference"), str)]
        return [v for named in self._read_all(refs).values() for v in _collect(named, path[1:])] if refs else []

    def _under_another_record(self, rtype: str, plan: TypePlan, stored: Resource, incoming: Resource,
                              said: Said, issues: list[Issue]) -> bool:
        """Whether a create-only resource found stored (``Said.only``: a billing or order message's thin
        visit) is left as it is because the message names another patient record than the stored one's:
        not one person's to the patient index (a newborn's order under the mother's visit) -- said in an
        issue, a warning for the ACK, never silently -- nor a second record of the person both in use (linked
        by ID number: a Condition of that record is not listed on the other's visit). The stored visit's
        record merged into another (an A40's MRG, an A47's old MRN, an operator's merge: ``_merged_away``,
        the index's own entry) of the person the message names: what the message states of the visit
        combines, its subject as stored (dgfix25: the review found the BAR of the surviving record AA and
        its principal diagnosis lost)."""
        persons: Persons | None = getattr(getattr(self._local, "stored", None), "persons", None)
        for name in plan.persons:
            inc, st = incoming.get(name), stored.get(name)
            if not isinstance(inc, dict) or inc == st:
                continue
            mine, theirs = (st or {}).get("reference") if isinstance(st, dict) else None, inc.get("reference")
            if (persons is not None and isinstance(mine, str) and isinstance(theirs, str)
                    and mine.startswith("Patient/") and theirs.startswith("Patient/")
                    and persons.same_person(mine.removeprefix("Patient/"), theirs.removeprefix("Patient/"))
                    and _merged_away(persons, mine.removeprefix("Patient/"))):
                continue  # the stored visit's record was merged into another of the person's: one patient
            stated = ", ".join(sorted(said.only))
            at = dict(said.fields).get(name)
            issues.append({"severity": "warning", "code": "business-rule",
                           "expression": [f"{rtype}.{name}"] + ([at] if at else []),
                           "diagnostics": f"{rtype}.{name}: the stored {rtype} is filed under another patient "
                                          "record than the message's, not held for the same person by the "
                                          f"patient index: left as it is, the message's {stated} not added to it"})
            return True
        return False

    def _another_person(self, rtype: str, name: str, ep: ElementPlan, st: Resource, inc: Resource,
                        source: str, fields: Mapping[str, str], issues: list[Issue],
                        said: Said | None = None, left: bool = False, stored_id: str = "",
                        stored_version: str = "") -> None:
        """``another_person``: the writer names another Patient than the stored version's -- one
        number, two patients: an order number (ORC-2/OBR-2, OBR-3), a visit number (PV1-19), a
        specimen, document or accession number that a sender's sequence restarted (per year, per
        department) or gave twice, and the second message would re-file the first patient's
        resource (and what refers to it by number) under the second. Another record is the same
        person only when the patient index says so (``Persons``: records linked by ID number,
        merged by an A34/A40 or an operator, linked by an operator) -- such a write passes, the
        subject moving to the record the writer names. A move the message states (``Said.moved_from``:
        an A45 moving a visit from the record MRG-1 names) passes when the stored value is that
        record or its person's. Refused (``reject``): located at the field that keyed the resource
        (``Said.fields``: ORC-2, OBR-2, OBR-3, PV1-19, SPM-2, TXA-12, OBR-18) an HL7 error for the
        ACK's ERR, else 422. Without the index in reach (a repository with no patient index)
        nothing is asked and nothing refused: "not the same person" is the index's to say."""
        mine, theirs = st.get("reference"), inc.get("reference")
        if (not isinstance(mine, str) or not isinstance(theirs, str) or mine == theirs
                or not mine.startswith("Patient/") or not theirs.startswith("Patient/")):
            return
        persons: Persons | None = getattr(getattr(self._local, "stored", None), "persons", None)
        if persons is None:
            return
        one, other = mine.removeprefix("Patient/"), theirs.removeprefix("Patient/")
        if persons.same_person(one, other):
            return
        prior = dict(said.moved_from).get(name) if said is not None else None
        if prior is not None and (prior == mine or (prior.startswith("Patient/") and persons.same_person(
                one, prior.removeprefix("Patient/")))):
            return
        if not left and said is not None and dict(said.taken_from).get(name) == mine \
                and self._taken_over(rtype, stored_id, stored_version, said.taken_at, one, other, persons):
            return
        if left and said is not None and dict(said.stand_in).get(name) == theirs \
                and self._stood_in(rtype, name, stored_id, one, other, persons):
            return  # the lab's later result of the stay taken over from its record (visfix33)
        # ``left``: the stored resource stays as it is (``found``); a newborn's message under the
        # visit of the patient it names as mother (PID-21) refers to that visit, as a rooming-in
        # HIS files it
        if left and said is not None and name in said.referred and not persons.known_apart(one, other):
            # a reading centre's report on the township's referral: the township's order is the
            # Task's, naming the township's patient; the centre's record is that patient's unless
            # the index knows it for another person (different ID numbers, another person) -- a
            # patient with no ID number is one person with the township's by the referral only
            return
        mother = dict(said.mother).get(name) if left and said is not None else None
        if mother is not None and (mother == mine or (mother.startswith("Patient/") and persons.same_person(
                one, mother.removeprefix("Patient/")))) and self._a_woman(mine):
            return
        at = field_of(fields.get(f"{rtype}.{name}", ""))
        number = f"the number that keys it ({at[0]}-{at[2]})" if at is not None else "the number that keys it"
        # (no record ids in the text: it is the ACK's ERR-8, read by the sender's staff; the raw
        # message kept for replay names both patients)
        text = (f"{rtype}.{name}: {number} names a stored {rtype} of another patient; "
                f"{_writer(source)} names a patient the patient index does not hold for the same "
                f"person: it would re-file that patient's {rtype}, not stated (an order, visit, specimen "
                "or document number is unique only while its sender does not restart or reuse it)")
        self._another_patient(ep, text, at, f"{rtype}.{name}", issues)

    def _a_woman(self, ref: str) -> bool:
        """Is the stored record ``ref`` -- the one a newborn's PID-21 named as the mother, whose visit the newborn's
        message names -- known to be a woman's (``demographics.a_woman``: sex female, or her valid ID number's sex
        digit)? Else PID-21 (the mother's identifier) named a man or someone not known to be a woman, by MRN or by ID
        number, and the visit is not a rooming-in mother's: the newborn's message is another patient's under that
        visit number (rv38e LOW 6, rv39d LOW 7). Read only where the rooming-in rule would otherwise let the message
        pass; unreadable: not known to be a woman."""
        record = self._read_all([ref]).get(ref)
        return record is not None and a_woman(record)

    def _taken_over(self, rtype: str, rid: str, version: str, judged: str, one: str, other: str,
                    persons: Persons) -> bool:
        """``Said.taken_from``: the visit's owner (an admission) files a lab's placeholder visit under the
        patient it names (``adapters.convert.takeover`` decided the placeholder from the store, and warns
        the sender of it: ERR W). What only the write sees: the stored version is the one judged
        (``Said.taken_at``: nothing wrote the visit since the store was read -- the owner's own statement
        of it, a second take-over) and was written by a message (its writer mark, ``WriterMarks.writers``
        -- a FHIR client's edit or the index's, or a version stored before the mark, is no placeholder:
        writer31); the patient index holds the placeholder for no one else (``person_compartment``: a
        record the desk linked (``$link``) or a merge joined to another is that person's, identified,
        not a stand-in -- rvvisit33 HIGH 1: a namesake's admission took the stay of the 李一 the desk
        had linked the lab's record to) and does not know the two records for two persons (different
        ID numbers, an operator's "not the same person", demographics it will not link). The earlier
        version keeps the placeholder's subject (``_history``)."""
        marks = getattr(getattr(self._local, "stored", None), "writers", None)
        writer = marks(rtype, [rid]).get(rid) if marks is not None and rid else None
        return (writer is not None and writer not in (API, INDEX) and bool(judged) and version == judged
                and _stands_alone(persons, one, other))

    def _stood_in(self, rtype: str, name: str, rid: str, one: str, other: str, persons: Persons) -> bool:
        """``Said.stand_in``: the message's record (``other``, a lab's stand-in, read from the store by
        ``takeover.settle_stay``) is the one the stored visit, now ``one``'s, was taken over from: its
        history, newest first, holds ``one``'s versions back to the first of them (the take-over), written
        by a message, and just before it a version of ``other``'s, written by a message (the lab's
        stand-in). The index must still hold ``other`` for no one else and not apart from ``one`` (as
        the take-over asked). Then the visit stands as it is and the lab's result, stating (``other``,
        the visit) as its first ones did, is filed (rvvisit33 MED 3). Read only where the visit would
        otherwise be refused; without a history at hand, refused."""
        stored = getattr(self._local, "stored", None)
        history, marks = getattr(stored, "history", None), getattr(stored, "version_writers", None)
        if history is None or marks is None or not rid:
            return False
        if not _stands_alone(persons, other, one):
            return False
        versions, writers = history(rtype, rid), marks(rtype, rid)
        if len(versions) != len(writers):
            return False

        def whose(version: Resource) -> Any:
            return (version.get(name) or {}).get("reference") if isinstance(version.get(name), dict) else None

        at = 0
        while at < len(versions) and whose(versions[at]) == f"Patient/{one}":
            at += 1
        if at == 0 or at == len(versions) or whose(versions[at]) != f"Patient/{other}":
            return False
        return all(w is not None and w not in (API, INDEX) for _, w in (writers[at - 1], writers[at]))

    def _another_patient(self, ep: ElementPlan, text: str, at: tuple[str, int, int] | None, where: str,
                         issues: list[Issue]) -> None:
        """``another_person``'s answer: ``reject`` an HL7 error located at ``at`` (the ACK's ERR: the
        number that keys the resource, or PID-3) when the message says where, else the rule's conflict."""
        if ep.another_person == "reject" and at is not None:
            raise HL7Error(text, at[0], at[1], at[2], code=DUPLICATE_KEY_IDENTIFIER)
        self._conflict(ep.another_person, text, where, issues)

    def _rebooked(self, rtype: str, name: str, ep: ElementPlan, stored: Resource, st: list[Any], inc: list[Any],
                  source: str, fields: Mapping[str, str], issues: list[Issue]) -> list[Any]:
        """``another_person`` on a list element (an Appointment's ``participant``) of an update: the resource
        is keyed by what is not the patient's (the filler's appointment id, SCH-2 in its namespace), so
        another Patient than the stored one's under it is either the booking following its person -- the
        message's record one the patient index holds for the same person (merged by an A40 into it, its
        MRN changed by an A47, linked): taken, the booking moves to that record, as an order's subject
        does -- or another person's message under the filler's booked id: refused (``reject``: located at
        PID-3, the ACK's ERR; else the rule's conflict), the booking stays as it was. A booking entered in
        error (S17, ``_RELEASED``) frees its id: the right patient's booking under it is taken. Without
        the index in reach nothing is asked (as ``_another_person``); twenty-fifth round, sched25."""
        mine, theirs = _patient_of(st), _patient_of(inc)
        if mine is None or theirs is None or stored.get("status") in _RELEASED:
            return inc
        persons: Persons | None = getattr(getattr(self._local, "stored", None), "persons", None)
        if persons is None:
            return inc
        if mine == theirs:
            # a late message under the record merged away that the booking is filed under: the booking is
            # the person's and goes to the record the index keeps now (review of schedfix25, schedfix25b);
            # where the index cannot tell (a loop) it stays where it is, as before
            kept = _kept_record(persons, mine.removeprefix("Patient/")) if _merged_away(
                persons, mine.removeprefix("Patient/")) else None
            if kept is None or f"Patient/{kept}" == mine:
                return inc
            issues.append({"severity": "information", "code": "informational", "expression": [f"{rtype}.{name}"],
                           "diagnostics": f"{rtype}.{name}: the booking is filed under a patient record merged "
                                          "into another (the patient index keeps that one for the person): it "
                                          "is filed under the kept record"})
            return [{**e, "actor": {"reference": f"Patient/{kept}"}} if _patient_of([e]) == theirs else e
                    for e in inc]
        one, two = mine.removeprefix("Patient/"), theirs.removeprefix("Patient/")
        if persons.same_person(one, two):
            if not _merged_away(persons, two):
                return inc
            # a late message under a record merged away (an A40's MRG, an A47's old MRN): the booking is
            # the person's, and goes to (stays with) the record the index keeps now -- asked of the index,
            # following a chain of merges (ZY24R -> ZY20S -> ZY25T), never a record merged away; refused
            # when the index cannot tell (a loop, a record it does not hold) -- review of sched25, schedfix25
            kept = one if not _merged_away(persons, one) else _kept_record(persons, two)
            if kept is None or kept != (one if kept == one else _kept_record(persons, one)):
                text = (f"{rtype}: the message names a patient record merged away, and the patient index "
                        "does not tell which one record it keeps for the person now: the booking is not "
                        "moved, not stated")
                self._another_patient(ep, text, field_of(fields.get(f"{rtype}.{name}", "")), f"{rtype}.{name}", issues)
                return inc
            issues.append({"severity": "information", "code": "informational", "expression": [f"{rtype}.{name}"],
                           "diagnostics": f"{rtype}.{name}: the message names a patient record merged into another "
                                          "(the patient index keeps that one for the person): the booking is "
                                          "updated and filed under the kept record"})
            to = f"Patient/{kept}"
            if kept == one and (st_actor := _actor_of(st, mine)):
                actor: dict[str, Any] = dict(st_actor)
            else:
                actor = {"reference": to}
            return [{**e, "actor": dict(actor)} if _patient_of([e]) == theirs else e for e in inc]
        label = ", ".join(f"{i.get('value')!r} ({ident_type(i)})" for i in stored.get("identifier") or ()
                          if isinstance(i, dict) and ident_type(i) == "FILL") or "its key"
        text = (f"{rtype}: its identifier {label} names a stored {rtype} of another patient; "
                f"{_writer(source)} names a patient the patient index does not hold for the same "
                f"person: it would re-file that patient's {rtype} (the one booking of the slot) under another, "
                "not stated -- a filler's appointment id is the filler's, not the patient's")
        self._another_patient(ep, text, field_of(fields.get(f"{rtype}.{name}", "")), f"{rtype}.{name}", issues)
        return inc

    def _claimed(self, rtype: str, name: str, ep: ElementPlan, incoming: Resource, source: str, said: Said,
                 issues: list[Issue]) -> None:
        """``another_person`` on a list element (an Appointment's ``participant``), asked of a create: the
        resource is keyed under its patient, so another patient's message under the same identifier (an
        SIU naming patient B under the filler appointment id SCH-2 patient A's booking holds) is no update
        but a second resource -- two bookings for one slot. v2.5.1 ch. 10: SCH-2 is "the filler
        application's permanent identifier for the appointment", the filler's, not the patient's. Only
        the filler's id (type FILL) names the appointment: two placer applications numbering alike (one
        SCH-1, two SCH-2) are two appointments (review of the twenty-fourth round). Every stored resource
        of the type carrying the new one's filler id (system and value; the converter gives a system-less
        EI its sender's; one stored before that with no system and the same value, when its patient is
        the same sender's -- ``managingOrganization``) is asked, unless it was entered in error (an S17
        deleted it: its number is free for the right patient's booking; a cancelled or no-show booking
        keeps its number, v2 ch. 10: it stays the filler's appointment):

        - one naming a Patient the index does not hold for the same person refuses the message;
        - one naming another record the index holds for the same person (merged by A40/A47, linked) is
          this booking stored under that record -- the message would make a second booking of it, so it
          is refused too, saying so. Since the twenty-fifth round the filler's id keys the booking (an
          update then moves it: ``_rebooked``), so this meets only a booking stored before under the old
          key (SCH-2's value under its patient) of a record since merged: not moved (left).

        ``reject``: an HL7 error located where the message said (``Said.fields``, PID-3) for the ACK's
        ERR; ``warn``: an issue. Asked only with the index in reach and a search (the repository);
        twenty-fourth round, sched24 and schedfix24."""
        stored_ = getattr(self._local, "stored", None)
        persons: Persons | None = getattr(stored_, "persons", None)
        search = getattr(stored_, "search", None)
        at = dict(said.fields).get(name)
        where = field_of(at) if at is not None else None
        theirs = _patient_of(incoming.get(name))
        if persons is None or search is None or where is None or theirs is None:
            return
        for ident in incoming.get("identifier") or ():
            if not isinstance(ident, dict) or ident_type(ident) != "FILL":
                continue
            system, value = ident.get("system"), ident.get("value")
            if not isinstance(system, str) or not isinstance(value, str) or not system or not value:
                continue
            # the sender's system, then none (stored before the twenty-fourth round): exact, so another
            # sender's same number is not read at all (nor a page of them)
            found = [*_every(search, rtype, [("identifier", token_value(system, value))]),
                     *_every(search, rtype, [("identifier", f"|{escape_value(value)}")])]
            # every match, page after page: one page (50) hid the booking of another kind behind those
            # of many fillers sharing a short number (review of schedfix25, schedfix25b)
            for other in _every(search, rtype, [("identifier", escape_value(value))]):
                # the number under any system, for this patient's person: a namespace that may be this
                # filler's (schedfix25) -- a cancel lost on a twin is worse than a refusal
                mine = _patient_of(other.get(name))
                if other.get("id") == incoming.get("id") or mine is None or other.get("status") in _RELEASED:
                    continue
                systems = {i.get("system") for i in other.get("identifier") or ()
                           if isinstance(i, dict) and i.get("value") == value and ident_type(i) == "FILL"}
                if system in systems or not any(isinstance(s, str) and _filler_kind(s) != _filler_kind(system)
                                                for s in systems):
                    continue
                if mine != theirs and not persons.same_person(mine.removeprefix("Patient/"),
                                                              theirs.removeprefix("Patient/")):
                    continue
                # booking ids are per institution (``Context.id_for``): another institution's booking of this
                # person is never this one, and is neither asked nor named (review of schedfix25, schedfix25b)
                if mine != theirs and not self._same_sender(stored_, mine, theirs):
                    continue
                text = (f"{rtype}: its filler id {value!r} (FILL) names a stored {rtype} of this person in "
                        "another namespace of this institution; "
                        "whether that is this filler's id sent another way (SCH-2's EI-2 or EI-3, or none) "
                        "cannot be told: the message would be a second booking beside the stored one, not "
                        "stated -- send SCH-2 as the booking was sent")
                self._another_patient(ep, text, field_of(said_at) if (said_at := dict(said.fields).get("identifier"))
                                      else where, f"{rtype}.identifier", issues)
                return
            for other in found:
                mine = _patient_of(other.get(name))
                if other.get("id") == incoming.get("id") or mine is None or mine == theirs:
                    continue
                if other.get("status") in _RELEASED:
                    continue
                systems = {i.get("system") for i in other.get("identifier") or ()
                           if isinstance(i, dict) and i.get("value") == value and ident_type(i) == "FILL"}
                if system not in systems and not (None in systems and self._same_sender(stored_, mine, theirs)):
                    continue
                one, two = mine.removeprefix("Patient/"), theirs.removeprefix("Patient/")
                label = f"{value!r} (FILL)"
                if persons.same_person(one, two):
                    text = (f"{rtype}: its filler id {label} names a stored {rtype} under another record the "
                            "patient index holds for this person (merged or linked): this message would be a "
                            f"second {rtype} of the one booking, not stated -- the booking is not moved to this "
                            "record by a message under it")
                else:
                    text = (f"{rtype}: its identifier {label} names a stored {rtype} of another patient; "
                            f"{_writer(source)} names a patient the patient index does not hold for the same "
                            f"person: it would be a second {rtype} under the one number (two bookings for one "
                            "slot), not stated -- a filler's appointment id is the filler's, not the patient's")
                self._another_patient(ep, text, where, f"{rtype}.{name}", issues)
                return

    @staticmethod
    def _same_sender(stored_: Any, one: str, other: str) -> bool:
        """Whether two Patient records are filed by one institution (their ``managingOrganization``): for
        an identifier stored before it carried its sender's system (before the twenty-fourth round)."""
        wanted = {("Patient", ref.removeprefix("Patient/")) for ref in (one, other)}
        found: dict[tuple[str, str], Any] = {}
        pending = getattr(stored_, "pending", None)
        for version, _ in (pending() if pending is not None else ()):
            key = (version.get("resourceType"), version.get("id"))
            if key in wanted:
                found[key] = version
        read_many = getattr(stored_, "read_many", None)
        if read_many is not None and len(found) < len(wanted):
            found.update({k: v for k, v in read_many([k for k in wanted if k not in found]).items() if k not in found})
        orgs = [(found.get(("Patient", ref.removeprefix("Patient/"))) or {}).get("managingOrganization") for ref in (one, other)]
        return orgs[0] is not None and orgs[0] == orgs[1]

    def found(self, stored: Resource, incoming: Resource, source: str) -> list[Issue]:
        """A create-only resource found stored (the thin Encounter a lab or order message carries
        so its Bundle stands alone: written only when absent) is left as it is -- but the message
        still names it as its own: patient 2's results under patient 1's visit number referred to
        patient 1's visit. ``another_person`` is asked as for an update (raises as it does); the
        issues of a ``warn`` are returned. ``wants_found`` tells the caller whether to ask (and
        parse the stored version) at all.

        Asked only of an element the message located at the number that keys the resource
        (``Said.fields``: PV1-19, SPM-2, TXA-12, OBR-2...): a resource the message carries under
        another's key is not its claim on that number -- a reading centre's report links the
        township's order and study at the township's ids (``referral.link_report``), the referral
        owner's decision, and the centre's record of a patient without an ID number is not one
        person with the township's to the index (review of the twentieth round)."""
        rtype = incoming["resourceType"]
        plan = self.plan(rtype, source)
        issues: list[Issue] = []
        saids = getattr(self._local, "said", None)
        said: Said | None = saids.get(f"{rtype}/{incoming.get('id')}") if saids else None
        fields = {f"{rtype}.{element}": at for element, at in said.fields} if said is not None else {}
        for name in plan.persons:
            if f"{rtype}.{name}" not in fields:  # not keyed by a number the message names
                continue
            st, inc = stored.get(name), incoming.get(name)
            if isinstance(st, dict) and isinstance(inc, dict):
                self._another_person(rtype, name, plan.elements[name], st, inc, source, fields, issues, said,
                                     left=True, stored_id=str(stored.get("id") or ""))
        return issues

    def wants_found(self, rtype: str, source: str) -> bool:
        """Whether ``found`` asks anything of a create-only ``rtype`` from ``source`` found stored."""
        return bool(self.plan(rtype, source).persons)

    def _over(self, name: str, ep: ElementPlan, stored: Resource, incoming: Resource, out: Resource,
              over: tuple[tuple[str, ElementPlan], ...], fields: Mapping[str, str], source: str = "",
              issues: list[Issue] | None = None, deleting: frozenset[str] = frozenset()) -> frozenset[str]:
        """``as_far_as`` / ``names_all_of``: the combined list element (a report's ``result``) keeps
        entries the incoming version does not list -- a later message carried only some of the
        report's groups (one filler number, two tests). The element then speaks for them too:

        - ``as_far_as``: the status is the least advanced (``progress``) of the incoming one and
          the stored statuses of the entries only the stored version lists (read from this write's
          pending versions, else the store): UREA final alone does not make the report final while
          its CREA result is preliminary; CREA final after both preliminary makes it final only
          when urea's result is;
        - ``names_all_of``: the code names every test: the incoming code when it is the stored
          one's test (a coding's system and code in common), else the tests' labels in ``code.text``
          (R4: one CodeableConcept's codings are one concept) -- the stored panel stays a panel.

        Two kinds of stored entries the incoming version does not list do not hold it back (they held
        a report back for good): a result of the same test as one the incoming version lists that
        nothing tells apart from it (``_the_same_result``): that result said again under another id
        (OBX-4 sent only with the final result); and,
        when the incoming version lists no result at all, its status is stated by a field of the
        message (``Said.fields``: OBR-25, not inferred) and it names every test the stored one names
        (``names_all_of``'s element: the same test, or a panel of them all), every one: the message
        states the whole report (OBR-25 X: the order cancelled, no results).

        Returns the elements that stand with a status kept as stored (``stands_with``; ``deleting``: what the
        message deletes, named in its warning): the merge's later steps leave them as stored."""
        listed = ep.as_far_as or ep.names_all_of
        incoming_refs = {e.get("reference") for e in incoming.get(listed) or () if isinstance(e, dict)}
        if ep.as_far_as and not incoming_refs and stored.get(name) in _DONE and out.get(name) in _BEFORE:
            # a message carrying no result does not take a final report back (R4's report status only
            # moves forward: registered -> partial/preliminary -> final -> amended/corrected/appended)
            told, stood = out[name], _stands_with(ep, name, stored, incoming, out, deleting)
            self._conflict(ep.conflict, f"{incoming['resourceType']}.{name}: {_writer(source)}'s value "
                           f"{_show(told)} was not stored: {_show(stored[name])}, stated earlier, stands "
                           f"(a report's status does not go back){stood[0]}",
                           f"{incoming['resourceType']}.{name}", issues if issues is not None else [])
            out[name] = stored[name]
            return stood[1]
        if ep.all_results and incoming_refs:
            decided = self._none_standing(name, ep, stored, incoming, out, incoming_refs, fields, source, issues,
                                          deleting)
            if decided is not None:
                return decided  # (every result it lists withdrawn or not obtained, as merged: the report with them -- status38)
            self._revived(name, ep, stored, incoming, out, incoming_refs, source, issues)
        if (ep.as_far_as and incoming_refs and stored.get(name) in _DONE and out.get(name) in _BEFORE
                and self._none_before(incoming_refs)):
            # the message's results, as merged, are all final still (a result's P after its F does not
            # take it back: ``not_back``): nor does the report go back on their account (ordfix36) -- nor
            # take the times of the statement kept out (``stands_with``: rv37a MED 5) -- nor anything
            # else of it but what ``merged`` names, its results' references (rv38a HIGH 1-2; pfix38) -- when
            # every result it lists was kept out; when some were stored (a correction, a final restated, a
            # new final), what they state reaches the report and only what the kept-out ones alone stated
            # stays out (``taken``; review rv38d HIGH 1-2, MED 3-4; pffix38)
            kept_out: dict[str, Resource] = getattr(self._local, "out", None) or {}
            held: dict[str, list[str]] = getattr(self._local, "held", None) or {}
            taken = sorted(r for r in incoming_refs if isinstance(r, str) and r not in kept_out and r not in held)
            told, stood = out[name], _stands_with(ep, name, stored, incoming, out, deleting, taken=bool(taken))
            alone = ""
            if taken and any(r in kept_out for r in incoming_refs):
                read = self._read_all(taken)
                alone = _theirs_alone(stored, out, [kept_out[r] for r in sorted(incoming_refs) if r in kept_out],
                                      [read[r] for r in taken if r in read], stood[1] | (ep.merged_with or set()))
            self._conflict(ep.conflict, f"{incoming['resourceType']}.{name}: {_writer(source)}'s value "
                           f"{_show(told)} was not stored: {_show(stored[name])}, stated earlier, stands "
                           f"(its results, as stored, are not taken back){stood[0]}{alone}",
                           f"{incoming['resourceType']}.{name}", issues if issues is not None else [])
            out[name] = stored[name]
            standing = stood[1]
        else:
            standing = frozenset()
        others = [e["reference"] for e in out.get(listed) or ()
                  if isinstance(e, dict) and isinstance(e.get("reference"), str) and e["reference"] not in incoming_refs]
        if not others:
            return standing
        if ep.as_far_as:
            if not incoming_refs and f"{incoming['resourceType']}.{name}" in fields:
                named = next((n for n, e in over if e.names_all_of == ep.as_far_as), "")
                if named and names_every_test(stored.get(named), incoming.get(named)):
                    return standing
            # results the stored report did not list (a new id): one may be a stored one said again
            stored_refs = {e.get("reference") for e in stored.get(listed) or () if isinstance(e, dict)}
            new_refs = [ref for ref in incoming_refs if isinstance(ref, str) and ref not in stored_refs]
            read = self._read_all([*others, *new_refs])  # one store call, not one per result
            said = [r for ref in new_refs if isinstance((r := read.get(ref) or {}).get("code"), dict)]
            if said:
                read.update(self._read_all([r for r in stored_refs if isinstance(r, str) and r not in read]))
            listed_codes = [c for ref in stored_refs if said and isinstance(ref, str)
                            and isinstance(c := (read.get(ref) or {}).get("code"), dict)] if said else []
            progress = ep.progress or {}
            least = out.get(name)
            beside: list[tuple[str, Resource]] = []
            for ref in others:
                other = read.get(ref) or {}
                if said and _the_same_result(other, said, listed_codes):
                    continue  # the same test's result, said again under another id
                beside.append((ref, other))
                status = other.get("status")
                if isinstance(status, str) and progress.get(status, 99) < progress.get(least, 99):
                    least = status
            if said and beside and issues is not None:
                saids: Mapping[str, Said] = getattr(self._local, "said", None) or {}
                alone = [r for r in said if not (s := saids.get(f"Observation/{r.get('id')}")) or not s.sub_id]
                if alone:
                    _second_at_one_time(beside, alone, incoming, issues)
            if least is not None:
                out[name] = least
            return standing
        st, inc = stored.get(name), incoming.get(name)
        if stand_in(st) or stand_in(inc):
            return standing  # huren's stand-in names no test: it joins no panel, the sender's code is its (rv37c MED 3)
        if isinstance(st, dict) and isinstance(inc, dict) and not same_concept(st, inc):
            labels = [*(st["text"].split(PANEL) if not _codes(st) and st.get("text") else [concept_label(st)])]
            out[name] = {"text": PANEL.join(dict.fromkeys([*labels, concept_label(inc)]))}
        return standing

    def _withdrawn_first(self, plan: TypePlan, resource: Resource) -> bool:
        """Whether a first version of a report (nothing stored) lists a result this write took to an
        ``all_results`` status (withdrawn, not obtained: its pending version) while stating a status on the
        path -- the first message huren met of a report (its final quarantined, or sent before go-live) was the
        LIS's W of its one result under OBR-25 F or C, stored final or corrected: a recognisable prior
        (``recognition.decision.FINAL_STATUSES``) of a result the lab withdrew, and a repeat elsewhere was
        flagged not payable against it (review rv39e HIGH 2; thirty-ninth round, sfix39). ``_none_standing``,
        the one rule over a stored report, is then asked of the first version too (``combine``). A report
        already of such a status (OBR-25 X, or read off its results with OBR-25 empty) and an ordinary one
        (no result of the message withdrawn) are taken as they are: one pass over this write's pending
        versions, no store read."""
        keeper: Stored | None = getattr(self._local, "stored", None)
        if keeper is None:
            return False
        for name, ep in plan.over:
            if not ep.all_results:
                continue
            beside = frozenset().union(*(of for _, of in ep.all_results))
            if resource.get(name) in beside:
                continue
            refs = {e.get("reference") for e in resource.get(ep.as_far_as) or () if isinstance(e, dict)}
            if refs and any(v.get("status") in beside and f"{v.get('resourceType')}/{v.get('id')}" in refs
                            for v, _ in keeper.pending()):
                return True
        return False

    def _none_standing(self, name: str, ep: ElementPlan, stored: Resource, incoming: Resource, out: Resource,
                       refs: set[Any], fields: Mapping[str, str], source: str, issues: list[Issue] | None,
                       deleting: frozenset[str] = frozenset()) -> frozenset[str] | None:
        """``all_results``: a report none of whose listed results stands as merged -- each withdrawn
        (entered-in-error) or not obtained (cancelled) -- is of the status the first entry that holds
        gives (R4 diagnostic-report-status: entered-in-error, "withdrawn following a previous final
        release"; cancelled, "not started or not completed"), unless the message's OBR-25 states a
        status beside the path itself (X: the lab's cancel of the order, cancelled -- R4: "if real-world
        activity has occurred, the status should be cancelled rather than entered-in-error"; the RIS's
        X with every line W is cancelled, rvres35). Asked only where the two can differ: the status was
        read off the message's results (OBR-25 empty: the LIS's X over a withdrawn result, held by
        ``not_back``, made the report cancelled beside its one result still withdrawn), or one of its
        results was ``held`` in this write while the message states a status on the path (an A, or a
        status alone with OBR-25 F, over W: the report read corrected or final with nothing standing).
        Otherwise each result was merged as stated and the message's status is the sender's word on
        them (as before) -- but for a message listing only results that are, as merged, withdrawn or not
        obtained, whatever status on the path its OBR-25 states and whatever the report's stored status:
        the LIS's W under OBR-25 P left a final report final beside its one result withdrawn (review
        rv38h HIGH 1), and, asked then only over a report stored final under a status before final
        (stfix38), under OBR-25 C or F -- what a lab commonly sends after a final -- the report stayed
        corrected or final, a recognisable prior (``recognition.decision.FINAL_STATUSES``) of a withdrawn
        result; over a preliminary it stayed preliminary; and the same W re-sent took the withdrawn
        report back to preliminary (review rv39a HIGH 1-2, MED 3; thirty-ninth round, stfix39). Asked
        where this write withdrew or cancelled a result the message lists, or the report is stored of
        such a status: the store is not read for an ordinary report.
        When every result the message lists was held or kept out (a P or X over a withdrawn result, held
        whole), nothing it alone stated reaches the report either: ``stands_with`` keeps the report's
        times and tubes as stored, as it does over a final (pfix38), and the W names them -- the held P
        of a re-drawn tube had re-dated the withdrawn report and added its tube, unwarned (review rv38h
        MED 1; thirty-eighth round, stfix38).
        Returns the elements standing with the status when decided (``out`` set; W at the status's field
        when the message's value is not the one stored; thirty-eighth round, status38), None when not."""
        beside = frozenset().union(*(of for _, of in ep.all_results))
        held: dict[str, list[str]] = getattr(self._local, "held", None) or {}
        kept_out: dict[str, Resource] = getattr(self._local, "out", None) or {}
        if out.get(name) in beside:
            if f"{incoming['resourceType']}.{name}" in fields:
                return None  # (OBR-25 X stated: the sender's cancel stands)
        elif not any(r in held for r in refs):
            keeper: Stored | None = getattr(self._local, "stored", None)
            if not ep.as_far_as or not (stored.get(name) in beside or keeper is not None and any(
                    v.get("status") in beside and f"{v.get('resourceType')}/{v.get('id')}" in refs
                    for v, _ in keeper.pending())):
                return None  # (nothing withdrawn now nor before: no store read on an ordinary report)
            merged = self._read_all([r for r in refs if isinstance(r, str)])  # (pending first, as ``_none_before``)
            if not all(isinstance(r, str) and (merged.get(r) or {}).get("status") in beside for r in refs):
                return None  # (a result of the message stands: the report's status as ``_none_before`` gives)
        listed = [e["reference"] for e in out.get(ep.as_far_as) or ()
                  if isinstance(e, dict) and isinstance(e.get("reference"), str)]
        read = self._read_all(listed)
        statuses = {(read.get(ref) or {}).get("status") for ref in listed}
        status = next((s for s, of in ep.all_results if statuses and statuses <= of), None)
        if status is None:
            return None
        # (some held or kept out, some stored: the times stand, as ``taken`` says beside a final -- the held P's
        # re-drawn OBR-7 and OBR-22 dated the withdrawn report by a statement none of its results carries;
        # pffix38's form over a final, here where nothing stands: thirty-ninth round, stat39)
        some = bool(stored) and any(isinstance(r, str) and (r in held or r in kept_out) for r in refs)  # (a first: none stands)
        whole = some and all(isinstance(r, str) and (r in held or r in kept_out) for r in refs)
        words, standing = (_stands_with(ep, name, stored, incoming, out, deleting, taken=not whole) if some
                           else ("", frozenset()))
        if some and not whole:
            # (nor the tubes only the held or kept-out ones stated -- the held P's re-drawn tube B joined the
            # withdrawn report's specimen list, no result of it measured there: ``_theirs_alone`` as over a
            # final, judged by the held statements too; stat39's own MED, review rv39e MED 5; sfix39)
            held_said: dict[str, Resource] = getattr(self._local, "held_said", None) or {}
            theirs = [v for r in sorted(r for r in refs if isinstance(r, str))
                      if (v := kept_out.get(r) or held_said.get(r)) is not None]
            taken_refs = [r for r in refs if isinstance(r, str) and r not in held and r not in kept_out]
            now = self._read_all(taken_refs)
            words += _theirs_alone(stored, out, theirs, [now[r] for r in taken_refs if r in now],
                                   standing | (ep.merged_with or frozenset()))
        told = incoming.get(name, _MISSING)
        where = f"{incoming['resourceType']}.{name}"
        if out.get(name) != status and told is not _MISSING and told != status:
            self._conflict(ep.conflict, f"{where}: {_writer(source)}'s value {_show(told)} was not stored: every "
                           f"result the report lists is, as stored, {' or '.join(sorted(statuses))} -- the report "
                           f"is {_show(status)}{words}", where, issues if issues is not None else [])
        elif words:
            self._conflict(ep.conflict, f"{where}: {_show(status)} stands: every result the report lists is, as "
                           f"stored, {' or '.join(sorted(statuses))} and {'' if whole else 'some of '}this message's are held{words}",
                           where, issues if issues is not None else [])
        out[name] = status
        return standing

    def _revived(self, name: str, ep: ElementPlan, stored: Resource, incoming: Resource, out: Resource,
                 refs: set[Any], source: str, issues: list[Issue] | None) -> None:
        """A report stored of an ``all_results`` status (withdrawn, not obtained) whose message states a status
        before final (OBR-25 P) while the results it lists are, as merged, final or past it: the report is as
        far as they are (``progress``), not the P -- the LIS's C 4.3 under OBR-25 P over a withdrawn result
        brought the result back corrected and left its report preliminary, a released report taken back by a
        status no result of it holds (table 0123: C, "correction to results"; R4: a report only moves
        forward from final). The results that give way (withdrawn, not obtained) state no progress; one held
        keeps its stored status. W at the status (OBR-25 when sent) naming the status not stored (thirty-
        ninth round, stat39).
        Only a correction revives: a listed result corrected or amended as merged (``CORRECTED``) -- R4's
        corrected is "modified subsequent to being final", which a preliminary report cannot be, so the C
        under P is the one status the P cannot hold. Results merely final beside the P stay what the message
        gives a new report, preliminary (table 0123 P: "verified early result available, final results not
        yet obtained"): the LIS's re-issue of potassium F under OBR-25 P over a withdrawn report of potassium
        and sodium (sodium not yet re-measured) went final beside sodium still withdrawn -- a recognisable
        prior (``recognition.decision.FINAL_STATUSES``) the lab called preliminary, and the flag its
        withdrawal voided came back (review rv39e HIGH 1; thirty-ninth round, sfix39).
        Nor while a result the report lists -- the message's or one only stored -- is still withdrawn or not
        obtained: the P then says what table 0123 says of it, "final results not yet obtained" (sodium, withdrawn,
        to be measured again), and R4's preliminary, "not all results are final", holds; only a report every
        result of which is final or past it contradicts the P. The withdrawn one gave way (``progress``), and
        the LIS's C of potassium under P beside sodium still withdrawn made the report corrected -- a
        recognisable prior whose sodium the lab says was wrong, and the flag sodium's withdrawal voided came
        back "not payable" (sfix39's LOW; fortieth round, st40)."""
        beside = frozenset().union(*(of for _, of in ep.all_results))
        if stored.get(name) not in beside or out.get(name) not in _BEFORE:
            return
        listed = {e["reference"] for e in out.get(ep.as_far_as) or ()
                  if isinstance(e, dict) and isinstance(e.get("reference"), str)}
        merged = self._read_all(sorted(listed | {r for r in refs if isinstance(r, str)}))  # (pending first)
        statuses = {(merged.get(r) or {}).get("status") for r in refs | listed}
        if not statuses or not statuses <= _DONE or not statuses & CORRECTED:
            return  # (a result not stored, before final, withdrawn, or final only: the message's status stands)
        progress = ep.progress or {}
        told, status = out[name], min(statuses & CORRECTED, key=lambda s: progress.get(s, 99))
        where = f"{incoming['resourceType']}.{name}"
        self._conflict(ep.conflict, f"{where}: {_writer(source)}'s value {_show(told)} was not stored: the results "
                       f"it lists are, as stored, {' or '.join(sorted(statuses))} -- the report is {_show(status)}",
                       where, issues if issues is not None else [])
        out[name] = status

    def _none_before(self, refs: set[Any]) -> bool:
        """Whether none of ``refs`` (a report's results this message lists), as this write merged them
        (its pending versions, else the store), is at a status before final (``_BEFORE``)."""
        merged = self._read_all([r for r in refs if isinstance(r, str)])  # (pending first: ``_read_all``)
        return all(isinstance(r, str) and r in merged and merged[r].get("status") not in _BEFORE for r in refs)

    def _lines(self, name: str, ep: ElementPlan, stored: Resource, incoming: Resource, out: Resource) -> None:
        """``lines_of``: the stored text's lines said by a result the incoming version lists follow
        what that result says now. A report's conclusion is the words of its impression results
        (``adapters.convert.pacs._conclusion``), and a later message may carry only the result it
        withdraws (OBX-11 W/D) or corrects (C): kept whole by keep-if-absent, the conclusion went on
        stating the withdrawn finding; replaced by the message's, it lost the impressions the message
        did not carry. Now, for each listed result this write changed (its previous version in this
        write's pending ones), the run of stored lines its previous words made is taken out -- or,
        when it still stands and the incoming text says its new words, they take its place; the
        incoming text's other lines follow the stored ones, and stored lines no result of the message
        took back stay (an impression the thinner message did not carry). A replacing writer (a FHIR
        client) states the whole text and is not asked."""
        before = _text_lines(stored.get(name))
        held: dict[str, list[str]] | None = getattr(self._local, "held", None)
        kept_out: dict[str, Resource] = getattr(self._local, "out", None) or {}
        if not before and not held and not kept_out:  # (a lab report: no conclusion, nothing read)
            return
        now_lines = _text_lines(incoming.get(name))
        refs = {e["reference"] for e in incoming.get(ep.lines_of) or ()
                if isinstance(e, dict) and isinstance(e.get("reference"), str)}
        filtered = False  # the incoming text said words of a withdrawn result it stated again, older
        out_words = self._kept_out_words(refs, kept_out) if kept_out else set()
        if held or out_words:  # (``until_later`` left that result as stored: its words are not the report's
            # either; nor those of a result ``not_back`` kept out beside the message's stored ones: pffix38)
            gone = {line for ref, words in (held or {}).items() if ref in refs for line in words} | out_words
            kept = [line for line in now_lines if line not in gone]
            filtered = len(kept) != len(now_lines)
            now_lines = kept
        if not before:  # (stored without this text: the message's, but for those words)
            if filtered:
                inc = out.get(name)
                _put_text(out, name, ("\n".join(now_lines) or None) if isinstance(inc, str)
                          else _with_text(inc, inc, now_lines))
            return
        keeper: Stored | None = getattr(self._local, "stored", None)
        pending = keeper.pending() if keeper is not None else ()
        if not pending and (not now_lines or now_lines == before) and not filtered:
            return  # (nothing this write changed: a report re-sent as it was)
        changed = {ref: (new, old) for new, old in pending
                   if old is not None and (ref := f"{new.get('resourceType')}/{new.get('id')}") in refs}
        if not changed and (not now_lines or now_lines == before) and not filtered:
            return
        lines = list(before)
        moved = False
        restored: list[tuple[str, list[str]]] = []  # withdrawn results this message states again
        sources = _Sources(self, stored.get(ep.lines_of), changed)  # (read only when words repeat: ordfix35)
        for ref in sorted(changed):  # (the same order in every process)
            new, old = changed[ref]
            was = _words(old)
            back = old.get("status") == "entered-in-error" and new.get("status") != "entered-in-error"
            at = sources.run(ref, was, lines, withdrawn=back)
            if at < 0:
                if back:
                    words = _words(new)
                    if ((line_run(now_lines, words) >= 0 or (not now_lines and sources.whole(lines)))
                            and sources.run(ref, words, lines, withdrawn=True) < 0):
                        restored.append((ref, words))
                continue
            words = [] if new.get("status") == "entered-in-error" else _words(new)
            if line_run(now_lines, words) < 0 and (now_lines or not words or not sources.whole(lines)):
                words = []  # (stating no text, a correction of one line alone rewords the whole text: ordfix36)
            if not words and line_run(now_lines, was) >= 0:
                continue  # the words stand, said by another result of the message
            if words or new.get("status") == "entered-in-error":
                lines[at:at + len(was)] = words
                moved = True
        for ref, words in restored:  # (back at its place, not after the lines that stood: order35)
            at = self._line_place(ref, words, lines, now_lines, stored.get(ep.lines_of), changed)
            lines[at:at] = words
            moved = True
        if not moved and not now_lines and not filtered:
            return
        lines += [line for line in now_lines if line not in lines]
        _put_text(out, name, _with_text(stored.get(name), out.get(name), lines))

    def _kept_out_words(self, refs: set[str], kept_out: Mapping[str, Resource]) -> set[str]:
        """The lines the message's results that ``not_back`` kept out stated (their versions in ``kept_out``)
        and none of its other results ``refs`` lists states as stored -- a draft impression (OBX-11 P) beside
        a correction of the findings under one OBR-25 P is not the report's (review rv38d; pffix38)."""
        words = {line for ref in refs if ref in kept_out for line in _words(kept_out[ref])}
        if not words:
            return set()
        read = self._read_all(sorted(r for r in refs if r not in kept_out))
        return words - {line for version in read.values() for line in _words(version)}

    def _line_place(self, ref: str, words: list[str], lines: list[str], now_lines: list[str], listed: Any,
                    changed: Mapping[str, tuple[Resource, Resource | None]]) -> int:
        """Where in the report's ``lines`` the words of a withdrawn result that a later message states
        again (a correction, a later final, an equal MSH-7 arriving after) go back: at the result's
        place, not after the lines that stood -- appended, a report's second finding came back as its
        last line, after the impression, in the report and in the imaging document that copies it
        (msgfix34's report; thirty-fifth round, order35). The report's stored result list first
        (``listed``: the OBX order its messages gave): after the words of the nearest result listed
        before it that the report holds, else before those of the nearest after it (read from this
        write, else from the store: one ``read_many``). Only when that list does not place it (the
        result not listed, no listed neighbour's words in the text) the message's own order: after the
        nearest line before them in the message's text that the report holds, else before the nearest
        after them. Else last. (order35 asked the message first: a correction carrying the second of
        three findings with the impression put it after the third, the impression being its message
        neighbour -- rvorder35 MED 1, 2; thirty-fifth round, ordfix35.)"""
        order = [str(e["reference"]) for e in listed or () if isinstance(e, dict) and isinstance(e.get("reference"), str)]
        if ref in order:
            k = order.index(ref)
            found = self._read_all([r for r in order if r != ref and r not in changed])
            found.update({r: new for r, (new, _) in changed.items()})
            for other in reversed(order[:k]):
                said = _words(found.get(other) or {})
                run = line_run(lines, said) if (found.get(other) or {}).get("status") != "entered-in-error" else -1
                if run >= 0:
                    return run + len(said)
            for other in order[k + 1:]:
                said = _words(found.get(other) or {})
                run = line_run(lines, said) if (found.get(other) or {}).get("status") != "entered-in-error" else -1
                if run >= 0:
                    return run
        at = line_run(now_lines, words)
        for line in reversed(now_lines[:at]):
            if line in lines:
                return len(lines) - lines[::-1].index(line)
        for line in now_lines[at + len(words):]:
            if line in lines:
                return lines.index(line)
        return len(lines)

    def _text_copied(self, name: str, ep: ElementPlan, stored: Resource, out: Resource, said: Said | None) -> None:
        """``text_of``: the document's plain-text attachment (``DocumentReference.content``) says the
        text of the report it copies (an imaging report's document: ``adapters.convert.pacs``) as this
        write combined the report's ``presentedForm`` -- the report's ``lines_of`` rule is the one
        owner of which lines stand. Before, the document took the message's text whole (a later
        message correcting one line left it only that line) or, written only by a message with text,
        kept a line a later message withdrew (OBX-11 W/D) while the report's own text let it go
        (thirty-second round, docref32). The report is read as this write group holds it (its
        pending version) or, unchanged by this write, as stored -- when it still says every line of
        the message's text (``lines_of`` kept lines the message did not carry): a thinner message
        resending two of three lines unchanged cut the document to two while the report kept three
        (review of docref32, MED 1). Every line withdrawn, the document states no text of the
        report: it is ``entered-in-error`` (R4: "this reference was created in error"), its content
        kept (R4 requires one) for its history. A replacing writer (a FHIR client's PUT) states the
        document itself and is not asked.

        A message that states no text of the document (``content`` only assumed: carrying only the
        lines it withdraws, ``adapters.convert.settle_documents``) takes out of the stored text only
        the lines the report's merge let go (in its previous version, not in its new one); every other
        word stays, a FHIR client's own text among them, and its status (a client's entered-in-error)
        unless no line is left (docfix32: it wrote the report's text and ``current`` over them). A
        document still the very copy of the report's previous text takes the report's new text (a
        withdrawn line that a correction of it alone restored, a line a correction alone reworded:
        one line is a value, no document of the message's own; ordfix36).

        A document with a number of its own (``masterIdentifier``, TXA-12: an MDM's, with its order
        or not) is its own text, never the copy: written before its report (``pacs._documents_first``),
        the report pending beside it is an earlier message's of the same batch (a T02 and its T08 in
        one write group), whose text the edit replaces."""
        if out.get("masterIdentifier"):
            return  # (a document with its own number, TXA-12: an MDM's, its own text -- see below)
        content = out.get(name)
        if not isinstance(content, list):
            return
        attachments = [c.get("attachment") if isinstance(c, dict) else None for c in content]
        at = _text_form(attachments)
        if at < 0:  # (the document holds no text of the report: a PDF alone)
            return
        named = {str(r.get("reference")) for r in _at_path(out, ep.text_of) if isinstance(r, dict)}
        keeper: Stored | None = getattr(self._local, "stored", None)
        pending = keeper.pending() if keeper is not None else ()
        found = next(((new, old) for new, old in reversed(pending) if new.get("resourceType") == "DiagnosticReport"
                      and f"DiagnosticReport/{new.get('id')}" in named), None)
        had = _text_lines(attachments)
        if said is not None and name in said.assumed:  # (the message states no text: only what it withdraws goes)
            if found is None or found[1] is None:
                return
            was, now = _text_lines(found[1].get("presentedForm")), _text_lines(found[0].get("presentedForm"))
            if had == was and now:
                lines = now  # (the very copy of the report: it follows the report -- a line restored or reworded)
            else:
                gone = set(was).difference(now)
                lines = [line for line in had if line not in gone]
            if lines == had:
                return
        else:
            if found is not None:
                report = found[0]
            elif content == stored.get(name):  # (an unchanged document: the report is not read)
                return
            else:
                refs = sorted(r for r in named if r.startswith("DiagnosticReport/"))
                report = next(iter(self._read_all(refs).values()), None) if len(refs) == 1 else None
                # (a withdrawn result's words this message stated again, older, ``until_later``: not the
                # report's -- which the report's merge then left as stored -- nor this document's)
                held: dict[str, list[str]] | None = getattr(self._local, "held", None)
                gone = {line for words in held.values() for line in words} if held else set()
                if report is None or not {line for line in had if line not in gone}.issubset(
                        _text_lines(report.get("presentedForm"))):
                    return  # (not the report's lines: a document written before its report, its own text)
            lines = _text_lines(report.get("presentedForm"))
            if lines == had:
                return
        if not lines:
            if len(content) > 1:
                out[name] = [c for i, c in enumerate(content) if i != at]
            else:
                out["status"] = "entered-in-error"
            return
        data = _text_data(lines)
        out[name] = [{**c, "attachment": {**attachments[i], "data": data}} if i == at else c
                     for i, c in enumerate(content)]

    def _inherit(self, rtype: str, name: str, ep: ElementPlan, out: Resource, issues: list[Issue],
                 fields: Mapping[str, str], *, stored: Resource | None = None, said: Said | None = None) -> None:
        """``inherits``: a resource stating no entry of ``name`` in the rule's coding system takes the
        entries in that system of the resources its reference list names (``through``) -- only of
        those for the same test (a shared code, or one recognition item by ``same_test``). A
        replacement order (ORC-1 RO) seldom repeats the re-test reason (ORC-16) the doctor gave on
        the order it replaces -- its NW, one message or a day earlier --: the replacement, the order
        the re-test is performed under, was flagged a repeat without reason (nineteenth round). A
        reason is given for one test: an RO for a CBC replacing an ALT's order took the ALT's R01 and
        the CBC repeat passed as justified (review of the nineteenth round); such a replacement takes
        nothing and a warning at the field it would have stated (ORC-16) says why. The reason stays
        the doctor's, the one given at that order's time; the issue names where it came from. An
        entry of its own in that system, or nothing referenced, leaves the element as it is.

        Taken once, by the write that links it (a reference ``stored`` did not hold), and not by one whose
        message deletes the entries in that system (``said``: ORC-16 ``""`` on the placer's RO): the replacement
        took R01 through ``replaces`` although its own RO withdrew it, and any later message of it (its result)
        took it again -- the repeat the doctor gave no reason for was paid as justified (review rv40h HIGH 2).
        What the replacement states of its reason after its link (the placer's XO withdrawing it) is its own."""
        assert ep.inherits is not None
        through, system = ep.inherits
        listed = out.get(name) if isinstance(out.get(name), list) else []
        if any(_in_system(entry, system) for entry in listed):
            return
        if said is not None and any(_deletes_part(d, name, _slice_of(name, {"coding.system": [system]}))
                                    for d in said.deletes):
            return  # (the message itself withdraws it: nothing to inherit)
        linked = {str(r.get("reference")) for r in (stored or {}).get(through) or () if isinstance(r, dict)}
        refs = [str(r.get("reference")) for r in out.get(through) or () if isinstance(r, dict) and r.get("reference")]
        refs = [r for r in refs if r != f"{rtype}/{out.get('id')}" and r not in linked]
        if not refs:
            return
        taken: list[Any] = []
        sources: list[str] = []
        other_tests: list[str] = []
        found = self._read_all(refs)
        for ref in refs:
            replaced = found.get(ref) or {}
            own = [entry for entry in replaced.get(name) or () if _in_system(entry, system)]
            if own and not self._same_test(out, replaced):
                other_tests.append(ref)
                continue
            for entry in own:
                if entry not in taken and entry not in listed:
                    taken.append(entry)
                    sources.append(ref)
        at = fields.get(f"{rtype}.{name}")
        if other_tests:
            issues.append({"severity": "warning", "code": "informational", "expression": [f"{rtype}.{name}"],
                           **({"location": [at]} if at else {}),
                           "diagnostics": f"{rtype}.{name}: none stated and none taken from "
                                          f"{', '.join(dict.fromkeys(other_tests))}, which this resource {through} "
                                          "but for another test (a reason is given for one test)"})
        if not taken:
            return
        out[name] = [*listed, *taken]
        issues.append({"severity": "information", "code": "informational", "expression": [f"{rtype}.{name}"],
                       "diagnostics": f"{rtype}.{name}: taken from {', '.join(dict.fromkeys(sources))}, "
                                      f"which this resource {through} (it states none of its own)"})

    def _same_test(self, one: Resource, other: Resource) -> bool:
        """``inherits``: two orders for the same test -- a coding (system and code) of ``code`` in
        common, else one recognition item (``same_test``, when the engine set it)."""
        mine = _code_pairs(one, tests=True)
        if mine and mine & _code_pairs(other, tests=True):
            return True
        return self.same_test is not None and self.same_test(one, other)

    def _read_all(self, refs: Sequence[str]) -> dict[str, Resource]:
        """The stored versions of ``refs`` (absent, deleted, unreadable: left out): this write's pending versions, the rest in one
        ``read_many`` of the store. Why: a report re-sent with one of its twelve groups read each
        of the eleven stored results it leaves out, one store call each."""
        stored: Stored | None = getattr(self._local, "stored", None)
        if stored is None or not refs:
            return {}
        out: dict[str, Resource] = {}
        wanted = set(refs)
        for version, _ in reversed(stored.pending()):
            ref = f"{version.get('resourceType')}/{version.get('id')}"
            if ref in wanted and ref not in out:
                out[ref] = version
        keys = [(rtype, rid) for ref in dict.fromkeys(refs) if ref not in out
                for rtype, _, rid in [ref.partition("/")] if rid]
        if keys:
            try:
                found = stored.read_many(keys)
            except Exception:  # what cannot be read holds the report back at nothing
                found = {}
            out.update({f"{rtype}/{rid}": version for (rtype, rid), version in found.items()})
        return out

    def _value_or_absent(self, rtype: str, plan: TypePlan, incoming: Resource, out: Resource, source: str,
                         issues: list[Issue]) -> None:
        """A value and the reason it is absent are never stored together (R4 obs-6): a later value
        replaces a stored reason; a later reason without a value (a result re-sent with OBX-5 empty)
        does not erase the stored value, and is reported as not stored like any other value the
        rules keep out -- unless the result, as merged, is of a status the reason's ``over_value`` names
        (cancelled: OBX-11 X, "results cannot be obtained for this observation", table 0085): then the
        reason replaces the value and what follows it (its components), which the result's history keeps.
        The LIS's X after its final left "cancelled 4.1" -- a value beside the statement that none could
        be obtained (thirty-ninth round, stat39) -- and with it what describes that value (``over_value_with``:
        its interpretation, its reference range), which the message states none of: "High" stood beside no
        value (review rv39e LOW 6; thirty-ninth round, sfix39). Both from the writer itself are left to
        validation."""
        if not any(n.startswith("value") and n in plan.choices for n in out):
            return
        value_in = any(n.startswith("value") and n in plan.choices for n in incoming)
        reason_in = "dataAbsentReason" in incoming
        if value_in and not reason_in:
            out.pop("dataAbsentReason")
        elif reason_in and not value_in:
            ep = plan.elements.get("dataAbsentReason", plan.default)
            if out.get("status") in ep.over_value:
                values = {n for n in out if n.startswith("value") and n in plan.choices}
                for name in [*values, *(n for n, followed in plan.follows if followed & values)]:
                    out.pop(name, None)
                for name in ep.over_value_with.difference(incoming):  # (one the message states is its own)
                    out.pop(name, None)
                return
            reason = out.pop("dataAbsentReason")
            self._conflict(ep.conflict, f"{rtype}.dataAbsentReason: {_writer(source)}'s value {_show(reason)} was "
                           "not stored: a value stated earlier stands", f"{rtype}.dataAbsentReason", issues)

    def _element_value(self, rtype: str, name: str, ep: ElementPlan, st: Any, inc: Any, source: str,
                       issues: list[Issue], version: Resource | None = None) -> Any:
        if (ep.stands and inc is not _MISSING and (held := _stood(st)) is not None and held in ep.stands
                and (said := _stood(inc)) is not None and said != held and said not in ep.yields_to):
            # a stored value this writer may not take back (a completed order, for an order message
            # arriving after its result): a conflict like any value the rules keep out
            self._conflict(ep.conflict, f"{rtype}.{name}: {_writer(source)}'s value {_show(inc)} was not stored: "
                           f"{_show(st)}, stated earlier, stands", f"{rtype}.{name}", issues)
            return st
        mode = ep.mode
        if mode == "replace":
            return _not_theirs(ep, st, inc, version or {}) if ep.beside else inc
        if inc is _MISSING:
            return st
        if st is _MISSING:
            return inc
        if _absent(inc) or (ep.placeholders and isinstance(inc, str) and inc in ep.placeholders):
            # what a converter writes where the message stated nothing (a required element marked
            # data-absent, OBX-11 empty read as "unknown") states nothing: the stored value stays
            return st
        if mode == "keep-if-absent":
            if ep.keeps and isinstance(st, dict) and isinstance(inc, dict):
                # one keyed object (an order's requester): as a slice's ``keeps`` does for its entries, the
                # same key stated thinner keeps the stored parts it leaves out (srfix35). Here the parts are
                # one statement: an object stating any of them states them all (a result's quantity with
                # another unit, OBX-6 ``^mg/dL`` without a code, takes no stored UCUM code of g/L beside it;
                # only one stating no unit at all keeps the stored one -- conv42)
                if any(not _thin(inc, part) for part in ep.keeps):
                    return inc
                return _kept_parts([inc], [st], ep.keeps, ep.key)[0]
            return inc
        if mode == "parts":  # an element whose parts different fields state (PV1-44/45): each part keep-if-absent
            return {**st, **inc} if isinstance(st, dict) and isinstance(inc, dict) else inc
        if mode in ("union", "by-key") and isinstance(st, list) and isinstance(inc, list):
            value = _union(st, inc, ep.key) if mode == "union" else _by_key(st, inc, ep.key)
            return _kept_parts(value, st, ep.keeps, ep.key) if ep.keeps else value
        if mode == "union" and isinstance(st, dict) and isinstance(inc, dict) and not _absent(st):
            return self._concept_union(rtype, name, ep, st, inc, source, issues)  # a CodeableConcept: its codings
        if mode in ("union", "by-key"):
            return inc
        if inc == st:  # keep-stored
            return st
        who = f"{', '.join(ep.owners)} (the owner{'s' if len(ep.owners) > 1 else ''})" if ep.owners else "an earlier writer"
        self._conflict(ep.conflict, f"{rtype}.{name}: {_writer(source)}'s value {_show(inc)} was not stored: "
                       f"{who} stated {_show(st)}, which stands", f"{rtype}.{name}", issues)
        return st

    def _concept_union(self, rtype: str, name: str, ep: ElementPlan, stored: dict[str, Any],
                       incoming: dict[str, Any], source: str, issues: list[Issue]) -> dict[str, Any]:
        """``union`` of one CodeableConcept (an order's ``code``): the list ``union`` combines is its
        ``coding`` -- one concept coded in several systems (R4): the HIS's LOINC and the LIS's local
        code of one order. Why here, not a new rule: ``union`` on an object had no meaning of its own
        (it fell through to the incoming value, a replace), and the order's code had been replaced by
        the result message's (5902-2 -> PTX): the stored order no longer said what was ordered
        (thirty-fifth round, srfix35).

        Codings are one concept only for the SAME TEST, and only what shows it is evidence: a coding
        in common, else the recognition rules' own code maps (``_another_test``). A result message's
        codings are judged ONE BY ONE (a coding it shares with the order says nothing of the others
        beside it: ``5902-2^PT^LN^1020^肝功能八项^L`` made the order PT and LFT at once, its item LFT --
        rv36a MED 2): a coding the order holds is merged into it (a part the stored one leaves out, a
        display, filled); one the maps show is the ordered test (the LIS's PTX of a PT order, by the
        LIS's map) is added after the stored ones, which stand as stored; one of another test (1020 =
        LFT), and one no map knows (an LIS code nobody mapped: not evidence of the same test -- it
        could name any test, rv36a LOW), adds nothing; the result's own report keeps its code.
        ``text`` stays. The ACK warns at the field that stated it (OBR-4) of another test only: a code
        no map knows is the deployment's mapping gap, not the sender's error -- it is counted where
        every unmapped code is (``Context.note_unmapped``, ``GET /admin/fidelity``), and a W on every
        result of an LIS nobody mapped told the sender nothing it could fix (codefix36). An order stating no coding
        (OBR-4 text alone) is judged the same way, by the item its text names (``same_test``: items.yaml's
        ``name``, 血常规 = CBC): a result's coding the maps put under that item is added, any other is not
        -- an order ``^血常规`` had taken the LIS's 1020 (LFT) and recognition read it as LFT (review rv36c
        MED 5; xotext36). What the maps could not judge at all (an order's text naming no item, a local code
        mapped with no item) is counted as an unmapped code, not answered (``_gaps``; code37).
        The writer that ``states`` the concept (an order message, XO too) leads: for the same test (a
        coding in common, or the maps' one item, or its text alone naming the stored concept by its own
        words -- its text or a coding's display, ``_named_again``: an XO ``^PT`` over ``5902-2^PT^LN`` had
        erased the LOINC, rv36c MED 2) its codings come first, in its words, the stored ones
        it does not state after them (an XO re-stating the test kept the LIS's coding; an order after
        its result keeps it: arrival order does not matter). Anything else it states -- another test,
        a code no map knows (an XO to the HIS's unmapped ZZ01 kept PT's LOINC, rv36a MED 3), the test
        named by another text alone (``^血常规`` over PT was dropped under AA, MED 4) -- is a change of test,
        stated whole, as before codefix35 (thirty-sixth round, mixfix36; xotext36)."""
        key = ep.key
        codings = [c for c in stored.get("coding") or () if isinstance(c, dict)]
        told = [c for c in incoming.get("coding") or () if isinstance(c, dict)]
        held = {_key(c, key) for c in codings}
        order = {"resourceType": rtype, name: stored}
        if ep.states:
            # (the DICOM modality both imaging orders carry is no test: head CT over chest CT shares ``DCM CT``)
            modality = _modality()
            tests = [c for c in told if not modality(c)]
            if not (any(_key(c, key) in held for c in tests) or _named_again(stored, incoming)
                    or self._another_test({"resourceType": rtype, name: _tests_of(stored)},
                                          {"resourceType": rtype, name: _tests_of(incoming)}) is False):
                return incoming  # a change of test (or none known the same): the order message states it whole
            theirs = {_key(c, key): c for c in codings}
            lead = [{**theirs.get(_key(c, key), {}), **c} for c in told]
            stated = {_key(c, key) for c in told}
            joined = [*lead, *(c for c in codings if _key(c, key) not in stated)]
            return {**stored, **incoming, **({"coding": joined} if joined else {})}
        if not told:  # the result message codes nothing: the order's codings stay
            return {**incoming, **stored}
        where = {_key(c, key): n for n, c in enumerate(codings)}
        other: list[dict[str, Any]] = []
        joined_any = False
        for coding in told:
            k = _key(coding, key)
            if k in where:
                codings[where[k]] = {**coding, **codings[where[k]]}
                joined_any = True
                continue
            another = self._another_test(order, {"resourceType": rtype, name: {"coding": [coding]}})
            if another is False:
                where[k] = len(codings)
                codings.append(coding)
                joined_any = True
            elif another:
                other.append(coding)
        if not joined_any and not other:
            self._gaps(order, {"resourceType": rtype, name: incoming}, f"{rtype}.{name}", issues)
        if other:
            self._conflict("warn", f"{rtype}.{name}: {_writer(source)}'s coding "
                           f"{', '.join(str(c.get('code')) for c in other)} ({concept_label({'coding': other})}) "
                           f"names another test than ordered ({concept_label(stored)}): not added to the order's "
                           "code (the result keeps its own)", f"{rtype}.{name}", issues)
        joined = {**incoming, **stored, "coding": codings}
        return joined if codings else {k: v for k, v in joined.items() if k != "coding"}

    def _gaps(self, order: Resource, other: Resource, expression: str, issues: list[Issue]) -> None:
        """A result's codes the maps could not judge against its order's (``_another_test``: not known,
        for every coding), so nothing was added and nothing warned: the deployment's mapping gap, counted
        (``mapping_gap`` issues, ``/admin/fidelity`` as an unmapped code at OBR-4; review rv36f LOW, code37)
        where no conversion counted it -- an order coded by nothing whose text names no recognition item
        (``^凝血四项``: its text), and a result's local code its map knows with no item (and no LOINC the
        order shares: that would have been a coding in common or another test) -- its code. A local code
        no map knows is counted again under the conversion's own key (one count a message: the fidelity
        key's). Only with the recognition rules at hand (``same_test``)."""
        same = self.same_test
        if same is None:
            return
        gaps: list[str] = []
        code = order.get("code")
        text = str(code.get("text") or "").strip() if isinstance(code, dict) else ""
        if text and not _code_pairs(order) and not same(order, order):
            gaps.append(text)
        if not same(other, other):
            gaps.extend(c for system, c in sorted(_code_pairs(other)) if local_code_system(system) is not None)
        for value in dict.fromkeys(gaps):
            issues.append(mapping_gap(value, expression))

    def _another_test(self, order: Resource, other: Resource) -> bool | None:
        """Whether ``other``'s ``code`` (a concept) names another test than ``order``'s: False (the same
        test) for a coding in common, or -- no coding system in common -- one recognition item by the
        recognition rules' code maps (``same_test``: the LIS's PTX, by its map, is COAG as LOINC 5902-2
        is); True for a coding system in common (one system codes one test once: 3173-2 APTT over
        5902-2 PT, ``_another``'s reading) or two recognition items, not the same one (1020 肝功能八项
        is LFT); None when it cannot be told -- a side no map knows (an LIS code nobody mapped, the
        HIS's own ZZ01, a test named by text alone), or no maps at hand: not evidence either way, and
        the callers do not treat it as the same test (rv36a MED 3, LOW). (``same_test`` of a concept
        with itself: whether it is a recognition item at all.)"""
        mine, theirs = _code_pairs(order), _code_pairs(other)
        if mine & theirs:
            return False
        if {s for s, _ in mine} & {s for s, _ in theirs}:
            return True
        same = self.same_test
        if same is None:
            return None
        if same(order, other):
            return False
        return True if same(order, order) and same(other, other) else None

    @staticmethod
    def _split(ep: ElementPlan, value: Any) -> tuple[list[Any], list[list[Any]]]:
        rest: list[Any] = []
        parts: list[list[Any]] = [[] for _ in ep.slices]
        for entry in value if isinstance(value, list) else ():
            for n, sp in enumerate(ep.slices):
                if sp.slice.matches(entry):
                    parts[n].append(entry)
                    break
            else:
                rest.append(entry)
        return rest, parts

    def _sliced(self, rtype: str, name: str, ep: ElementPlan, st: Any, inc: Any, source: str,
                issues: list[Issue], rest: list[Any] | None = None) -> Any:
        """``rest``: the entries of no slice, already combined (``_changed``); else by the element's mode."""
        st_rest, st_parts = self._split(ep, st)
        inc_rest, inc_parts = self._split(ep, inc)
        if rest is None:
            value = self._element_value(rtype, name, ep, st_rest or _MISSING, inc_rest or _MISSING, source, issues)
            rest = value if isinstance(value, list) else []
        first: list[Any] = []
        out = list(rest)
        for sp, mine, theirs in zip(ep.slices, st_parts, inc_parts, strict=True):
            into = first if sp.first else out
            if sp.own:
                value = self._element_value(rtype, name, ElementPlan(sp.mode, ep.key, ep.conflict),
                                            mine or _MISSING, theirs or _MISSING, source, issues)
                if sp.keeps and sp.mode in ("union", "keep-if-absent") and mine and isinstance(value, list):
                    value = _kept_parts(value, mine, sp.keeps, ep.key)
                into.extend(value if isinstance(value, list) else ())
                continue
            into.extend(mine)
            known = {_key(e, ep.key) for e in mine}
            for entry in theirs:
                if _key(entry, ep.key) not in known:
                    self._conflict(ep.conflict, f"{rtype}.{name} entry {_show(entry)} from {_writer(source)} was "
                                   f"not stored: {sp.slice.why or sp.slice.name}", f"{rtype}.{name}", issues)
        return first + out or _MISSING

    def _changed(self, rtype: str, name: str, ep: ElementPlan, st: list[Any], inc: list[Any],
                 changes: tuple[Change, ...], source: str, issues: list[Issue]) -> Any:
        """``Said.changes``: the entries of no slice combined segment by segment (``_changes``) --
        or, when a segment cannot be matched to what is stored without a guess, the stored ones
        as they were (said in ``issues``); the slices (an appointment's patient) as always."""
        st_rest, _ = self._split(ep, st) if ep.slices else (st, [])
        inc_rest, _ = self._split(ep, inc) if ep.slices else (inc, [])
        rest = _changes(rtype, name, st_rest, inc_rest, changes, issues)
        if rest is None:
            rest = st_rest
        if ep.slices:
            return self._sliced(rtype, name, ep, st, inc, source, issues, rest=rest)
        return rest or _MISSING

    @staticmethod
    def _conflict(treatment: str, text: str, expression: str, issues: list[Issue]) -> None:
        if treatment == "reject":
            raise Unprocessable(text, expression=[expression])
        issues.append({"severity": "warning", "code": "conflict", "diagnostics": text, "expression": [expression]})


def _moved_start(stored: Resource | None, out: Resource, start_alone: tuple[str, str, str], issues: list[Issue]) -> None:
    """``Said.start_alone``: an S13 moving an appointment's start with no end or duration (SCH-9/10,
    SCH-11.5, TQ1-8 empty). v2.5.1 ch. 10 (S13: the SCH "describes the new date(s) and time(s) to
    which the previously booked appointment has been moved") and ch. 2 (an empty field does not
    overwrite the stored value): the stored length stands -- the stored end minus start, else its
    ``minutesDuration`` -- and the end moves by it (10:00 with 30 minutes stored: 10:00-10:30). With
    no stored length the start is not taken (R4 app-2 stores start and end together): the converter
    marked both data-absent and said so at the field the start came from."""
    start, sent, at = start_alone
    length: _dt.timedelta | None = None
    if stored is not None:
        if isinstance(stored.get("start"), str) and isinstance(stored.get("end"), str):
            length = _span(stored)
        elif isinstance(stored.get("minutesDuration"), int):
            length = _dt.timedelta(minutes=stored["minutesDuration"])
    if length is None or length < _dt.timedelta(0):
        return  # no stored length: the start is not taken, as the converter said at its field
    try:
        begin = _dt.datetime.fromisoformat(start)
        end = begin + length
    except (ValueError, OverflowError):
        return
    out["start"], out["end"] = begin.isoformat(), end.isoformat()
    out.pop("_start", None)
    out.pop("_end", None)
    # a warning, not information: the ACK leaves information out, and the converter's warning at the
    # field could only say what happens when a length is stored -- this says it was
    issues.append({"severity": "warning", "code": "informational", "expression": ["Appointment.end"],
                   "location": [at], "diagnostics": f"{_field_name(at)}: the start {sent!r} comes with no end and no "
                   f"duration: the appointment keeps its stored length ({length.total_seconds() / 60:g} min) and ends "
                   f"at {out['end']}"})


# an Appointment status that frees its filler id for another patient's booking: an S17 (deleted, the
# booking entered in error) -- the correction ch. 10 offers, an S14 not changing the patient
_RELEASED = frozenset({"entered-in-error"})
# an order's statuses by which it no longer holds its numbers for another of the placer's (``_held_elsewhere``):
# cancelled or replaced (HL7 v2.5.1 table 0119: CA/OC/DC, RP -> revoked; its own RO is the same exam, 4.5.1.1),
# or entered in error. ``completed`` still holds it: the exam done is that accession's (review rv40d MED 3). Asked
# too when a statement naming only the filler's number finds its order (``adapters.convert.adopt_filled``)
LET_GO = frozenset({"revoked"}) | _RELEASED


_TEXT_FORM = "text/plain"  # the text document a converter builds from a report's text results


def _text_form(value: Any) -> int:
    """Where a list of attachments (``presentedForm``) holds its plain-text document; -1: none."""
    if not isinstance(value, list):
        return -1
    return next((i for i, a in enumerate(value) if isinstance(a, dict) and isinstance(a.get("data"), str)
                 and str(a.get("contentType") or "").startswith(_TEXT_FORM)), -1)


def _text_lines(value: Any) -> list[str]:
    """``lines_of``'s text as lines: a string's (a conclusion), or a plain-text attachment's in a
    list of them (a report's text document, base64 UTF-8 as R4 ``Attachment.data``)."""
    if isinstance(value, str):
        return value.split("\n") if value else []
    at = _text_form(value)
    if at < 0:
        return []
    try:
        text = base64.b64decode(value[at]["data"], validate=True).decode("utf-8")
    except ValueError:  # (not base64 UTF-8: a writer's own document, left as it is)
        return []
    return text.split("\n") if text else []


def _with_text(stored: Any, combined: Any, lines: list[str]) -> Any:
    """The element saying ``lines`` (as ``_text_lines`` reads it); None: nothing left of it. A list
    of attachments keeps the combined version's others (a PDF the message sent beside its text)."""
    if isinstance(stored, str):
        return "\n".join(lines) or None
    value = combined if isinstance(combined, list) else stored
    at = _text_form(value)
    if at < 0:  # the message's list without a text document: the stored one, as its lines now read
        value, at = [*value, stored[_text_form(stored)]], len(value)
    if not lines:
        rest = [a for i, a in enumerate(value) if i != at]
        return rest or None
    data = _text_data(lines)
    return [{**a, "data": data} if i == at else a for i, a in enumerate(value)]


def _put_text(out: Resource, name: str, value: Any) -> None:
    """``out[name] = value``; None: the element goes (no line left of the text)."""
    if value is None:
        out.pop(name, None)
    else:
        out[name] = value


def _text_data(lines: list[str]) -> str:
    """``lines`` as a plain-text attachment's ``data`` (base64 UTF-8, R4 ``Attachment.data``): the
    inverse of ``_text_lines``."""
    return base64.b64encode("\n".join(lines).encode("utf-8")).decode("ascii")


def _at_path(resource: Mapping[str, Any], path: tuple[str, ...]) -> list[Any]:
    """The entries of the list at dotted ``path`` (``context.related``); [] when any step is missing."""
    value: Any = resource
    for step in path:
        value = value.get(step) if isinstance(value, Mapping) else None
    return value if isinstance(value, list) else []


def _named_again(stored: Mapping[str, Any], incoming: Mapping[str, Any]) -> bool:
    """Whether ``incoming``, a concept coded by nothing (OBR-4 ``^PT``), names the stored one by its own
    words -- its text, or a display of one of its codings: the same test said thinner, whose codings
    stay (an XO restating PT by its text had erased its LOINC: review rv36c MED 2). Another text alone
    is not evidence of the same test (``_another_test``: the maps, by the item the text names)."""
    if any(isinstance(c, dict) for c in incoming.get("coding") or ()):
        return False
    text = str(incoming.get("text") or "").strip()
    return bool(text) and text in {str(w).strip() for w in (
        stored.get("text"), *(c.get("display") for c in stored.get("coding") or () if isinstance(c, dict))) if w}


def _restates(ep: ElementPlan, stored: Resource, incoming: Resource) -> bool:
    """Whether ``incoming``, stating the stored status, states another value of an element dated with
    it (``dated_with``: a correction over a correction, rvmsgfix34 HIGH 1)."""
    return any(incoming.get(n, _MISSING) is not _MISSING and incoming.get(n) != stored.get(n) for n in ep.dated_with)


def _moves(ep: ElementPlan, held: Any, told: Any) -> bool:
    """Whether ``told`` states another status than the stored ``held`` -- a change of status an older
    message makes is dated as a changed value is (``MergeRules._restated_older``): the LIS's 09:30 X
    restating the value of its 10:00 final cancelled it under AA (review rv37e MED 2). Not a change:
    a placeholder on either side (OBX-11 empty states no status; a stored one no later message
    stated). (A step forward over a status that would be a ``not_back`` step from it -- the older F
    over a later P -- is not dated at all, its value neither: ``_restated_older`` passes it first;
    statfix37, status38.)"""
    return (told != held and isinstance(told, str) and isinstance(held, str) and told not in ep.placeholders
            and held not in ep.placeholders)


def _restated(ep: ElementPlan, stored: Resource, incoming: Resource) -> tuple[str, ...]:
    """The elements dated with ``ep``'s status that ``incoming`` states otherwise than stored, the value
    first (``_restates``'s, named: where an older statement is held, ERR-2 at the value's OBX-5)."""
    return tuple(n for n in sorted(ep.dated_with, key=lambda n: (not n.startswith("value"), n))
                 if incoming.get(n, _MISSING) is not _MISSING and incoming.get(n) != stored.get(n))


def _over(rtype: str, name: str, changed: Sequence[str], stored: Resource, incoming: Resource, vague: bool) -> str:
    """What a comparison that could not be told asks (a refusal's text, a decided replay's): the status
    over the stored one; for a placeholder (no status stated) the values it restates over the stored
    ones -- the operator is asked of the value, not of a status the message never stated (rv36c LOW 6)."""
    if not vague:
        return f"{rtype}.{name}: {_show(incoming[name])} over the stored {_show(stored[name])}"
    return (f"{', '.join(f'{rtype}.{n}' for n in changed)}: "
            f"{', '.join(_show(incoming[n]) for n in changed)} over the stored "
            f"{', '.join(_show(stored.get(n)) for n in changed)} (no {name} stated: the placeholder "
            f"{_show(incoming[name])}; the stored {name} {_show(stored[name])} stays)")


def _by_results(ep: ElementPlan, held: Any, told: Any) -> bool:
    """Whether ``told`` is a step back from ``held`` that the results decide (``as_far_as``: a report's
    P over its corrected status): ``_over`` keeps the stored status unless a result, as merged, is
    behind it -- each result dated on its own. Not told which message is later, such a step is no
    refusal: over a final (not in ``stands``, not dated) another sender's P was AA with a W, over a
    correction AE (review rv36c HIGH 1: one rule whichever status is stored; status36). An older one
    is still held."""
    progress = ep.progress
    return (bool(ep.as_far_as) and progress is not None and isinstance(held, str) and isinstance(told, str)
            and told in progress and held in progress and progress[told] < progress[held])


def _beside(stored: Resource, incoming: Resource, merged: frozenset[str]) -> tuple[dict[str, Any], set[str]]:
    """What of a kept-out statement ``not_back``'s ``merged`` names is taken, and how: it adds to the stored
    version, never takes its place -- the step keeps the final statement whole, and a change of a final is a
    correction's (OBX-11 C). A list element both hold (a note) is the stored entries, in their order, and
    then the message's entries new to them (the first of the returned pair); any other element the stored
    version holds stands as stored (the second: kept out with the status). Merged by its mode, the P's note
    replaced the final's whole -- 危急值已电话通知张医生 (the critical value phoned) gone for 溶血 (review
    rv38a MED 3; thirty-eighth round, pfix38). An element the stored version lacks is the message's."""
    beside: dict[str, Any] = {}
    standing: set[str] = set()
    for n in merged:
        now, was = _present(incoming.get(n, _MISSING)), _present(stored.get(n, _MISSING))
        if now is _MISSING or was is _MISSING:
            continue
        if isinstance(now, list) and isinstance(was, list):
            added: list[Any] = list(was)
            for entry in now:
                if entry not in added:
                    added.append(entry)
            beside[n] = added
        else:
            standing.add(n)
    return beside, standing


def _stands_with(ep: ElementPlan, name: str, stored: Resource, incoming: Resource, out: Resource,
                 deleting: frozenset[str], *, taken: bool = False) -> tuple[str, frozenset[str]]:
    """``stands_with``: put back in ``out`` the elements that stand with the status ``name`` kept as stored (a
    report's times beside its final status: the P's OBR-7 of a re-drawn specimen dated the final report and
    its final results as of 11:00; rv37a MED 5) -- in the inverted form (``merged_with``) every element but
    those it names: the P's interpreter (OBR-32), its draft impression's lines in the conclusion and text, its
    re-drawn tube in the specimen list (review rv38a HIGH 1-2; pfix38). Returns the words naming those that
    differed or that the message deletes (``deleting``: not deleted either; the warning names only what was
    kept out, each with the value the message stated), empty when none did, and every element that stands:
    no later step of the merge writes them (``lines_of``, a delete). ``taken``: some of the message's
    results were stored (not kept out): the inverted form's ``taken`` stands alone (its times; pffix38)."""
    if ep.merged_with is None:
        standing = ep.stands_with
    elif taken:
        standing = ep.taken_with
    else:
        standing = frozenset(n for n in (*stored, *out)
                             if n != name and n not in ep.merged_with and n not in _OWN)
    kept = sorted(n for n in standing if out.get(n, _MISSING) != stored.get(n, _MISSING)
                  or (n in deleting and n in stored))
    said = ", ".join(f'{n} "" (a delete)' if n in deleting and out.get(n, _MISSING) == stored.get(n, _MISSING)
                     else f"{n} {_show(incoming[n])}" if n in incoming else f"{n} (none)" for n in kept)
    for n in standing:
        if n in stored:
            out[n] = stored[n]
        else:
            out.pop(n, None)
    if not kept:
        return "", standing
    return f"; and with it {', '.join(kept)} as stored: this message's {said} was not stored", standing


def _as_in_order(ep: ElementPlan, name: str, stored: Resource, incoming: Resource, out: Resource,
                 prior: Resource) -> frozenset[str]:
    """``MergeRules._over_later_p``: each element the older final's report states, but ``stands_with``'s
    ``merged`` (its results, order numbers: merged as they are), is its value in ``out`` -- what MSH-7 order
    gives, the later P kept out (its times, its re-drawn tube). An element the stored report holds and the
    final states none of goes too (``stored``): in MSH-7 order the P was kept out whole, so what only it
    stated -- its interpreter (OBR-32), its draft words -- was never the final report's; stfix38 had kept
    it, 李四 named as interpreting a final report he signed no part of (thirty-ninth round, stat39).
    Only what the later statements alone stated goes: such an element is what ``prior`` (the stored
    version as of the newest message no later than the final, ``MergeRules._before_later``; empty when
    none) held of it, absent when it held none -- an even older P's interpreter (OBR-32 王五 at 09:00, the
    later P of 12:00 naming none) stood before the final in MSH-7 order, and the final, naming none, does
    not erase it: stat39 had taken it out unwarned (review rv39e HIGH 3; thirty-ninth round, sfix39).
    Returns the names taken or taken out."""
    merged = ep.merged_with or frozenset()
    taken = frozenset(n for n in incoming if n != name and n not in _OWN and n not in merged)
    for n in taken:
        out[n] = incoming[n]
    gone = frozenset(n for n in stored if n not in incoming and n != name and n not in _OWN and n not in merged)
    _as_before(out, gone, prior)
    return taken | gone


def _locate(issues: list[Issue], rtype: str, fields: Mapping[str, str], said: Said | None, incoming: Resource) -> None:
    """Each of ``issues`` (a value not stored) located in the message where it stated the element (ERR-2:
    ORC-5, not just "ServiceRequest.status"): ``fields``, else ``Said.later`` (OBX-5, 7, 8; OBR-25 when sent)
    -- for a first version too (a first report's status not stored: ``MergeRules._withdrawn_first``)."""
    if not issues or not (fields or (said is not None and said.later)):
        return
    for issue in issues:
        expression = (issue.get("expression") or [""])[0]
        at = fields.get(expression)
        if at is None and said is not None and said.later and expression.startswith(rtype + "."):
            at = said.at(expression[len(rtype) + 1:], incoming)  # (``Said.later``: OBX-5, 7, 8)
        if at is not None and not issue.get("location"):
            issue["location"] = [at]


def _as_before(out: Resource, names: Iterable[str], prior: Resource) -> None:
    """Each of ``names`` in ``out`` as ``prior`` holds it (the version before the later statements an older
    message comes under), taken out where it holds none."""
    for n in names:
        if n in prior:
            out[n] = prior[n]
        else:
            out.pop(n, None)


def _theirs_alone(stored: Resource, out: Resource, kept_out: Sequence[Resource], taken: Sequence[Resource],
                  skip: frozenset[str] | set[str]) -> str:
    """What of a report only the message's kept-out results stated, taken out of ``out`` where some of its
    results were stored: the entries of a list element (but ``skip``'s) that the message added, whose
    reference the element of that name of one of ``kept_out`` (the versions it stated of those results)
    names and that of none of ``taken`` (its stored results, as merged) -- the P's re-drawn tube beside a
    correction measured on another tube, while that tube joins the report that lists it (review rv38d MED 3;
    pffix38). Element by element: the report's OBR-32 signer, named by no result's element of its name,
    signs the stored results too and is the message's. Returns the words the W adds, naming them (empty
    when none)."""
    gone: list[str] = []
    for n in sorted(out):
        value = out[n]
        if n in skip or n in _OWN or not isinstance(value, list):
            continue
        theirs = set(_references(v.get(n) for v in kept_out))
        if not theirs:
            continue
        ours = set(_references(v.get(n) for v in taken))
        had = {e.get("reference") for e in stored.get(n) or () if isinstance(e, dict)}
        left = [e for e in value if not (isinstance(e, dict) and (ref := e.get("reference")) in theirs
                                         and ref not in ours and ref not in had)]
        if len(left) == len(value):
            continue
        gone.append(f"{n} {_show([e for e in value if e not in left])}")
        if left:
            out[n] = left
        elif n in stored:
            out[n] = stored[n]
        else:
            out.pop(n, None)
    return f"; nor {', '.join(gone)}, stated by its results kept out alone" if gone else ""


def _references(resources: Iterable[Any]) -> Iterator[str]:
    """Every reference string inside ``resources`` (``{"reference": ...}`` at any depth)."""
    for value in resources:
        if isinstance(value, dict):
            ref = value.get("reference")
            if isinstance(ref, str):
                yield ref
            yield from _references(value.values())
        elif isinstance(value, list):
            yield from _references(value)


def _of_results(ep: ElementPlan, told: Any, incoming: Resource) -> bool:
    """Whether ``told`` is a report status beside the path that ``all_results`` gives (cancelled: X;
    entered-in-error: W read off the results) in a message listing results. Each result is dated on its
    own and the report follows them as merged (``MergeRules._none_standing``) -- or, OBR-25 X stated, is
    the lab's cancel: either way no result comes back by it, so not told which message is later is no
    refusal. Another sender's X over a withdrawn result is held (AA, status37) and its report, read
    cancelled, had been refused (AE) for want of a time (thirty-eighth round, status38)."""
    return (bool(ep.all_results) and any(told == s for s, _ in ep.all_results)
            and bool(incoming.get(ep.as_far_as)))


def _backward(ep: ElementPlan, held: Any, told: Any, incoming: Resource) -> Back | None:
    """The ``not_back`` step ``told`` would take the stored ``held`` back by (a P over a final, corrected
    or amended result; a P or an X over a withdrawn one; a status alone over a withdrawn one), the first
    listed; None when it is none. ``MergeRules._not_back`` decides it whichever status is stored -- dating
    it as a change of a status in ``stands`` (a correction) let a later P take the correction back, status
    and value, where over a final it kept both (review rv36c HIGH 1; thirty-sixth round, status36).
    A step ``unless`` ``incoming`` states one of its elements (a value: a result) is none (statfix37)."""
    if not ep.not_back:
        return None
    was, now = _stood(held), _stood(told)
    return next((step for step in ep.not_back if was in step.over and now in step.to
                 and not (step.unless and any(n in incoming for n in step.unless))), None)


def _back(rule: Mapping[str, Any], choices: Mapping[str, frozenset[str]]) -> Back:
    """One ``not_back`` mapping of ``merge.yaml`` read (``with``'s ``value[x]``: every value choice)."""
    merged = rule.get("merged")
    return Back(frozenset(rule.get("from") or ()), frozenset(rule.get("to") or ()),
                frozenset(n for named in rule.get("with") or () for n in _chosen(str(named), choices)),
                bool(rule.get("whole")), str(rule.get("why") or ""),
                None if merged is None else frozenset(n for named in merged for n in _chosen(str(named), choices)),
                unless=frozenset(n for named in rule.get("unless_states") or () for n in _chosen(str(named), choices)))


def _chosen(named: str, choices: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """``value[x]``: every value choice of the type (as ``follows`` reads it); else the element named."""
    return frozenset(n for n in choices if n.startswith(named[:-3])) if named.endswith("[x]") else frozenset((named,))


def _older_text(what: str, stated: str, kept: str, by: Any, now: str, rtype: str, *, same_sender: bool) -> str:
    """The W of a statement held as older than the one that stored the version (``by``: that message's
    label and MSH-7 text, None when unknown): "``what``: ``stated`` was not stored: ``kept``, stated by
    message ... stands against this message of MSH-7 ``now`` (not later: older) ..." -- one wording for
    ``_dated``, ``_restated_older`` and ``_not_back`` (stat39)."""
    sender = " of the same sender" if same_sender else ""
    return (f"{what}: {stated} was not stored: {kept}, stated by message {by.label if by else ''} of MSH-7 "
            f"{by.text if by else ''}, stands against this message of MSH-7 {now}{sender} (not later: older): its "
            f"version is an older statement and changes nothing of the {rtype}")


def _words(observation: Mapping[str, Any]) -> list[str]:
    """The lines an Observation's text value says (a TX/FT OBX-5's repetitions, one a line)."""
    value = observation.get("valueString")
    return [line for line in value.split("\n") if line] if isinstance(value, str) else []


def _combined(refusals: Sequence[Untimely], decided: Sequence[str] = ()) -> Untimely:
    """The first refusal, carrying the others (``Untimely.more``) and the versions a decision answered."""
    first = refusals[0]
    return Untimely(first.diagnostics, expression=list(first.expression or ()), location=first.location,
                    version=first.version, more=refusals[1:], decided=decided)


def _version_of(rtype: str, stored: Resource) -> str:
    """``Type/id/_history/n`` of a stored version: what a refusal was told against and an operator's
    decision answers for (``Untimely.version``, ``Dates.decide``; ordfix35)."""
    return f"{rtype}/{stored.get('id')}/_history/{(stored.get('meta') or {}).get('versionId')}"


class _Sources:
    """Which stored result said which run of a report's lines (``MergeRules._lines``), when words
    repeat: two results saying the same words ("未见明显异常。" twice in a marrow report) are two
    lines, and matching by words alone found the other result's line -- a withdrawn one of them never
    came back and the text kept one line, a correction of the second replaced the first's (rvorder35
    MED 4; thirty-fifth round, ordfix35). The report's stored result list (``listed``, the OBX order)
    says whose each run is: the k-th run of some words is the k-th standing result listed that says
    them. Read (one ``read_many``) only when the words run more than once, or for a withdrawn result
    whose words run at all; with no list or nothing read, words alone, as before."""

    __slots__ = ("_rules", "_listed", "_changed", "_said")

    def __init__(self, rules: MergeRules, listed: Any, changed: Mapping[str, tuple[Resource, Resource | None]]) -> None:
        self._rules, self._listed, self._changed = rules, listed, changed
        self._said: list[tuple[str, list[str]]] | None = None

    def _standing(self) -> list[tuple[str, list[str]]]:
        """Each listed result standing as the stored text was written (this write's changed ones as
        they were), in the list's order, with its words."""
        if self._said is None:
            order = [str(e["reference"]) for e in self._listed or ()
                     if isinstance(e, dict) and isinstance(e.get("reference"), str)]
            found = self._rules._read_all([r for r in order if r not in self._changed])
            found.update({r: old for r, (_, old) in self._changed.items() if old is not None})
            self._said = [(r, _words(found[r])) for r in order
                          if r in found and found[r].get("status") != "entered-in-error"]
        return self._said

    def whole(self, lines: list[str]) -> bool:
        """Whether ``lines`` (a report's stored text) say the words of every standing result the report
        lists that says any (a lab's or imaging report's text document: every text result's lines --
        not a conclusion, the impressions' alone): then a withdrawn result a message restores without
        stating any text (one line is a value: a correction of that line alone) is one of its lines
        again (order35's left case; thirty-sixth round, ordfix36). Read only then."""
        said = [w for _, w in self._standing() if w]
        return bool(said) and all(line_run(lines, w) >= 0 for w in said)

    def run(self, ref: str, words: list[str], lines: list[str], *, withdrawn: bool = False) -> int:
        """Where the run of ``words`` that ``ref`` said stands in ``lines`` (-1: none of them is its).
        ``withdrawn``: ``ref`` was entered-in-error as the text stands -- its line was taken out, so a
        run of its words is another result's unless more runs stand than results saying them."""
        at = line_run(lines, words)
        if at < 0 or not self._listed:
            return at
        runs = [i for i in range(at, len(lines) - len(words) + 1) if lines[i:i + len(words)] == words]
        if len(runs) < 2 and not withdrawn:
            return at
        said = self._standing()
        if not said:
            return at
        saying = [r for r, w in said if w == words]
        if withdrawn:
            others = [r for r in saying if r != ref]
            return runs[len(others)] if len(runs) > len(others) else -1
        if ref not in saying:
            return at
        k = saying.index(ref)
        return runs[k] if k < len(runs) else at


def line_run(lines: list[str], part: list[str]) -> int:
    """Where ``part`` (not empty) runs within ``lines``; -1 when it does not (also asked by the
    converter: a group's conclusion said already, ``adapters.convert.results._holds_lines``)."""
    if not part:
        return -1
    width = len(part)
    return next((i for i in range(len(lines) - width + 1) if lines[i:i + width] == part), -1)


def _made_by(dates: Dates, by_version: Mapping[str, list[Resource]], ref: str, version: Any,
             written: Callable[[], _dt.datetime | None] | None = None,
             by_client: Callable[[], bool] | None = None) -> list[Stamp]:
    """The ``Stamp`` of the message that made version ``version`` of ``ref`` (``Type/id``): of the messages whose
    Provenances name it (``by_version``: ``MergeRules._provenances``) and this batch's earlier ones that wrote it
    (``Dates.pending``), those whose write did not leave it as stored (``Stamp.unchanged``) -- the one owner of
    "which message made a version", for its date (``_before_later``) and for who stored an order's number
    (``_numbered``). A message that changed nothing (the LIS's P re-sent unchanged at 10:00, a held statement)
    names the version it found, which an earlier message made: dated by it, the 09:00 P's version read "later"
    than the 09:30 final, which lost its tube and its interpreter, unwarned (review rv40b HIGH 1; fortieth round,
    stfix40). Empty: no message made it (a FHIR client's version), whatever message restated it since.

    A message filed before its document kept that list (``Stamp.unchanged_kept`` False: the release before stfix40)
    made no version stored before it was received (``message_time.written_before_receipt``, asked of ``written``:
    the version's ``meta.lastUpdated``, read only then) -- its 10:00 re-send of the 09:00 P, filed before the
    upgrade, still dated the P's version "later" than the late 09:30 final, which lost its interpreter after the
    upgrade (review rv40m MED 3; forty-first round, st41). One received before the version was written could have
    made it, as it was: what it left unchanged is not told by its document.

    The receipt rule only chooses among such messages, and one version has one maker: of the old messages naming
    it that could have made it, the first by arrival (``_arrival``, as ``_numbered`` takes it) -- a BHS batch of
    the release before stfix40 holding the 08:00 P and its unchanged 10:00 re-send filed both before either was
    written, the rule told neither, and the re-send dated the P's version 10:00 again (review rv41e MED 2). Where
    it tells every old message naming a version and no message keeping the list made it, the receipts alone do not
    tell a client's version those messages restated from the host's clock stepping back between a receipt and its
    write (NTP, a VM resumed); the version's writer mark does (``by_client``: a FHIR client or the index stored
    it, ``NOT_THE_FEED``; read only then): a client's is none of theirs, any other is one of theirs -- the first
    by arrival again, never none: read as a client's, the old HIS's order lost its number's storer and a third
    application's statement under it was no longer held (review rv41e MED 1; forty-first round, stfix41)."""
    target = f"{ref}/_history/{version}"
    provs = by_version.get(target, ())
    stamps = [*(dates.of(provs) if provs else ()), *dates.pending(target)]
    return _makers([s for s in stamps if ref not in s.unchanged()], written, by_client)


def replayed_made(own: Stamp, others: Iterable[Stamp], ref: str, version: Any, written: _dt.datetime | None,
                  keeper: Any = None) -> bool:
    """Whether ``own`` -- a message filed before its document kept the list (``unchanged_kept`` False), processed
    again (an operator's replay) and finding version ``version`` of ``ref`` as it left it -- is that version's
    maker, by ``_made_by``'s choice among ``others`` (the other messages whose Provenances name the version) and
    itself: a message keeping the list that made it, else of the old ones the first by arrival its receipt does
    not rule out (``written``: the version's ``meta.lastUpdated``), never none unless the version's writer mark
    says a client's (``MergeRules._by_client``, read from ``keeper`` only then). ``ingest._unchanged`` asks it,
    so a replay keeps as its making exactly what ``_made_by`` reads as its making: the old BHS batch's unchanged
    10:00 re-send replayed after the upgrade had listed the 08:00 P's version as its own, a maker keeping the
    list from then on, and the version was dated 10:00 (review rv41l MED 2); an old NW whose receipt was stamped
    after its write had listed its own version as unchanged (stfix41's LOW; forty-second round, prior42)."""
    own = replace(own, unchanged_kept=False)  # (this processing's stamp reads as keeping the list: its document did not)
    made = [own, *(s for s in others if s.received is not None and ref not in s.unchanged() and _arrival(s) != _arrival(own))]
    rtype, _, rid = ref.partition("/")
    return any(s is own for s in _makers(made, lambda: written,
                                         lambda: MergeRules._by_client(keeper, rtype, rid, version)))


def _makers(made: list[Stamp], written: Callable[[], _dt.datetime | None] | None,
            by_client: Callable[[], bool] | None = None) -> list[Stamp]:
    """``_made_by``'s choice among the messages whose write did not leave the version as stored (``made``)."""
    old = sorted((s for s in made if not s.unchanged_kept), key=_arrival)
    if not old:
        return made
    known = [s for s in made if s.unchanged_kept]
    if known:  # (a message keeping the list made it: an old one naming it restated it -- one maker, review rv41l MED 1)
        return known
    if written is None:
        return old[:1]
    at = written()
    could = [s for s in old if not written_before_receipt(s.received, at)]
    if could:
        return could[:1]
    return [] if by_client is not None and by_client() else old[:1]


def _arrival(stamp: Stamp) -> tuple[bool, _dt.datetime, str, str]:
    """A message's place in arrival order (``_numbered``): its receipt (none, this batch's own: after every
    stored one), then its sender and its label (MSH-3^MSH-4, MSH-9 MSH-10: the message store's key) -- a total
    order on both backends, whatever order the Provenances were read in (review rv40b LOW 4)."""
    return (stamp.received is None, stamp.received or _dt.datetime.min.replace(tzinfo=_dt.UTC),
            stamp.sender, stamp.label)


def _is_number(ident: Any, own: Owned) -> bool:
    """Whether an Identifier is ``own``'s number: its kind (v2 0203), system and value."""
    return (isinstance(ident, dict) and ident.get("value") == own.value and ident.get("system") == own.system
            and ident_type(ident) == own.kind)


def _same_application(one: Stamp, other: Stamp) -> bool:
    """Whether two messages came from one sending application: one institution, and MSH-3 one application
    by ``datatypes.same_hd`` (the universal ids where both carry one, and then the namespace ids too where both
    carry one -- two MSH-3s' HD-1 are names of one table, HL7 table 0361: ``RIS^<OID>^ISO`` and ``EMR^<OID>^ISO``
    are two applications of a site that put the hospital's OID in each, review rv39g LOW 5; else the namespace
    ids) -- ``sender``'s MSH-3.1 alone would make another hospital's ``RIS^<OID>^ISO`` ours (rv38i HIGH). Each
    ``Stamp.application`` is MSH-3 as the site's aliases name the application (``adapters.convert.applications.canonical``,
    made by ingest): an LIS that moved from ``LIS`` to ``^<OID>^ISO`` is one where the site says so (ord40)."""
    from adapters.convert.datatypes import same_hd  # (datatypes imports this module: asked at run time)

    return (bool(one.sender.strip("^")) and one.sender.rsplit("^", 1)[-1] == other.sender.rsplit("^", 1)[-1]
            and same_hd(one.application, other.application, one_table=True))


def ident_type(ident: Mapping[str, Any]) -> str:
    """An Identifier's v2 0203 type code (FILL, PLAC), else ''."""
    kind = ident.get("type")
    for coding in kind.get("coding", ()) if isinstance(kind, dict) else ():
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            return coding["code"]
    return ""


def _patient_of(entries: Any) -> str | None:
    """The first ``Patient/...`` an Appointment-like participant list names (its ``actor``), else None."""
    for entry in entries if isinstance(entries, list) else ():
        ref = entry.get("actor", {}).get("reference") if isinstance(entry, dict) and isinstance(entry.get("actor"), dict) else None
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref
    return None


def _actor_of(entries: list[Any], patient: str) -> dict[str, Any] | None:
    """The ``actor`` of the entry naming ``patient`` (``Patient/...``) in a participant list."""
    for entry in entries:
        actor = entry.get("actor") if isinstance(entry, dict) else None
        if isinstance(actor, dict) and actor.get("reference") == patient:
            return actor
    return None


def _stands_alone(persons: Persons, stand_in: str, other: str) -> bool:
    """The patient index's word on a lab's stand-in record (``_taken_over``, ``_stood_in``): it holds
    ``stand_in`` for no one else (not linked by the desk, not joined by a merge: rvvisit33 HIGH 1) and
    does not know it and ``other`` for two persons."""
    return persons.person_compartment(stand_in) == frozenset({stand_in}) and not persons.known_apart(stand_in, other)


def _merged_away(persons: Persons, patient_id: str) -> bool:
    """Whether the patient index holds ``patient_id`` as merged into another record (``replaced_by``: an
    A40's MRG record, an A47's old MRN, an operator's merge) -- the index's own entry, read, not decided."""
    record = getattr(persons, "record", None)
    entry = record(patient_id) if record is not None else None
    return bool(isinstance(entry, dict) and entry.get("replaced_by"))


# (id of a TypePlan, the elements freed) -> (that plan, its elements with those elements' ``stands`` lifted)
_FREED: dict[tuple[int, frozenset[str]], tuple[TypePlan, Mapping[str, ElementPlan]]] = {}


def _freed(plan: TypePlan, freed: frozenset[str]) -> Mapping[str, ElementPlan]:
    """``plan.elements`` with ``stands`` lifted for ``freed`` (``until_later``: a later message), made
    once a plan: a dataclass ``replace`` of an ElementPlan costs ~20 us, paid by every correction or
    withdrawal of a final result since msgfix34 dates those too."""
    hit = _FREED.get((id(plan), freed))
    if hit is not None and hit[0] is plan:
        return hit[1]
    elements = {**plan.elements, **{n: replace(plan.elements[n], stands=frozenset()) for n in freed}}
    if len(_FREED) >= 256:
        _FREED.clear()
    _FREED[(id(plan), freed)] = (plan, elements)
    return elements


def _every(search: Any, rtype: str, params: list[tuple[str, str]]) -> list[Resource]:
    """Every match of a search, read page after page (``_offset``), not its first page only."""
    out: list[Resource] = []
    offset = 0
    while True:
        page = search(rtype, [*params, ("_count", "1000"), ("_offset", str(offset))])
        out.extend(page.resources)
        if not page.has_next or not page.resources:
            return out
        offset += len(page.resources)


def _filler_kind(system: str) -> str:
    """How a filler id's system was made (``adapters.convert``): from the sending application
    (``urn:huren:appointment:``, SCH-2 sent without a namespace or naming its sender), an EI-2 namespace
    id (``urn:huren:id:``), or an EI-3 universal id (an OID, a URI). Two systems of one kind that differ
    are two fillers; of two kinds, they may be one filler's id sent two ways."""
    if system.startswith("urn:huren:appointment:"):
        return "application"
    if system.startswith("urn:huren:id:"):
        return "namespace"
    return "universal"


def _kept_record(persons: Persons, patient_id: str) -> str | None:
    """The record the patient index keeps now for ``patient_id``'s person: asked of the index
    (``IdentityService.kept_record``: its ``replaced_by`` followed to a record not merged away, two
    A40s ZY24R -> ZY20S -> ZY25T, never into another ID number's record). None when the index cannot
    tell (a loop, a record the chain names that it does not hold, two numbers) or is not in reach."""
    kept = getattr(persons, "kept_record", None)
    return kept(patient_id) if kept is not None else None


def _changes_stored(name: str, plan: TypePlan, stored: Resource, incoming: Resource) -> bool:
    """Whether ``incoming``'s ``name`` changes what the stored version holds for it -- its own value, or another type
    of its choice (``effectiveDateTime`` over a stored ``effectivePeriod``); none of them stored: filled, no change.
    The one test of the times an older message (``_older_times``) or a correction (``_exam_times``) may not write."""
    return (name in incoming and incoming[name] != stored.get(name, _MISSING)
            and (name in stored or any(m in stored for m in plan.choices.get(name, ()))))


def _kept_out(rtype: str, changed: Sequence[str], incoming: Resource, source: str, said: Said | None,
              issues: list[Issue], stands: Callable[[str], str]) -> Resource:
    """``incoming`` without the elements ``changed``, a W each (OperationOutcome ``conflict``, located at the field
    that stated it) saying the writer's value was not stored and, ``stands(name)``, what stands instead and why."""
    for name in changed:
        at = said.at(name, incoming) if said is not None else None
        issues.append({"severity": "warning", "code": "conflict", "expression": [f"{rtype}.{name}"],
                       "diagnostics": f"{rtype}.{name}: {_writer(source)}'s value {_show(incoming[name])} was not "
                                      f"stored: {stands(name)}",
                       **({"location": [at]} if at else {})})
    return {k: v for k, v in incoming.items() if k not in changed}


def _not_thinner(plan: TypePlan, stored: Resource, incoming: Resource, said: Said | None = None) -> Resource:
    """``incoming`` without the ``not_from_older`` times (a report's OBR-7, OBR-8, OBR-22) it states at a coarser
    precision than the stored value, which falls within it (``timestamps.thinner``: the date alone, or the minute,
    of the stored exam instant -- at the precision the message stated, ``Said.digits``): it says nothing the stored
    one does not, so the more precise statement stays whichever message is later -- a re-send of the final stating
    OBR-7 at the date alone erased the exam's stated instant (review rv42a MED 5; forty-second round, xofix42).
    Across the choice too (rv42c MED 4; acc42): a dateTime restating a stored Period's start -- thinner, or the
    same instant -- leaves the Period, its end with it (a re-send with OBR-8 empty states no end: v2 2.5.3, an
    empty field changes nothing); a Period's start or end thinner than the stored one's (or than the stored
    dateTime, for its start) takes the stored value. Another time at that precision is written as the mode and the
    older-message rule say; a replacing writer (a client's PUT) states its own (``timed`` holds no ``replace``)."""
    out: Resource | None = None
    for name in plan.thin:
        value = incoming.get(name)
        digits = said.digits_of(name) if said is not None else None
        if isinstance(value, str):
            was = stored.get(name)
            period = stored.get(name[: -len("DateTime")] + "Period") if name.endswith("DateTime") else None
            start = period.get("start") if isinstance(period, dict) and name not in stored else None
            if (isinstance(was, str) and value != was and thinner(value, was, digits)) or (
                    isinstance(start, str) and compare_times(value, start, digits) is not None
                    and (thinner(value, start, digits) or compare_times(value, start, digits) == "same")):
                out = out if out is not None else dict(incoming)
                del out[name]
        elif isinstance(value, dict) and name.endswith("Period"):
            was_period = stored.get(name)
            was = was_period if isinstance(was_period, dict) else {}
            instant = stored.get(name[: -len("Period")] + "DateTime")
            kept = dict(value)
            for part in ("start", "end"):
                then = was.get(part) if was else (instant if part == "start" else None)
                now = value.get(part)
                part_digits = said.digits_of(f"{name}.{part}") if said is not None else None
                if isinstance(now, str) and isinstance(then, str) and thinner(now, then, part_digits):
                    kept[part] = then
            if kept != value:
                out = out if out is not None else dict(incoming)
                out[name] = kept
    return out if out is not None else incoming


def _exam_view(times: Mapping[str, Any], of: Resource) -> Resource:
    """``times`` with the status and specimen of ``of``: what ``exam_time`` reads of a version (``_exam_of_report``
    asks it of the stored report and of the correction's new result)."""
    return {**times, "status": of.get("status"), **({"specimen": of["specimen"]} if "specimen" in of else {})}


def exam_by_of(merge: Mapping[str, Any] | None, rtype: str) -> frozenset[str]:
    """The statuses ``rtype``'s ``exam_time`` rules keep a stored exam's time against (their ``by``: corrected,
    amended, appended) in a merge.yaml as loaded -- what a converter asks before saying what such a rule reads (a
    correction's result's report, ``Context.reported_by``; an imaging report's study, ``pacs``): the rule's one
    reading of its ``by`` outside ``MergeRules``."""
    rules = ((merge or {}).get("resources") or {}).get(rtype) or {}
    return frozenset(s for rule in rules.values() if isinstance(rule, Mapping) and isinstance(rule.get("exam_time"), Mapping)
                     for s in rule["exam_time"].get("by") or ())


def _taken_from(twin: Any) -> bool:
    """Whether a time's primitive twin (``_effectiveDateTime``) marks it taken from another field (``TAKEN_FROM_EXT``)."""
    return isinstance(twin, dict) and any(isinstance(e, dict) and e.get("url") == TAKEN_FROM_EXT
                                          for e in twin.get("extension") or ())


def clients_times(resource: Resource, previous: Resource | None) -> Resource:
    """A FHIR client's write (create, update, patch, a Bundle's entry: ``Writes._store`` with the ``API`` writer)
    without ``TAKEN_FROM_EXT`` in its times' primitive twins: the mark is the converter's word that a message's
    other field dated the value, never a client's -- a client states its time. A client that corrected a result's
    derived 08:30 to 09:15 and PUT it back as read (R4 clients keep extensions they do not understand) kept the
    mark, so the LIS's later re-send with OBX-14 empty and OBR-7 08:40 replaced the client's 09:15 as a derived
    time (review rv43d MED 3; forty-third round, time43b); a client could also forge the mark on a time it states.
    Stripped, not refused (as the stand-in mark: ``results.stand_in_by_client``): a client copying a result whole
    should not fail for an engine-owned extension. A time written back exactly as stored, with the stored mark
    (an interpretation or a note edited) is still the converter's derivation: it keeps its mark, so a later report
    moving OBR-7 still moves it. Asked here rather than as a repository statement: a statement concerning
    Observation would send every first version of a result the feed writes through the merge (``_first_of``)."""
    out: Resource | None = None
    for key, twin in resource.items():
        if not (key.startswith("_") and _taken_from(twin)):
            continue
        name = key[1:]
        was = (previous or {}).get(key)
        ours = [e for e in was.get("extension") or () if isinstance(e, dict) and e.get("url") == TAKEN_FROM_EXT] \
            if isinstance(was, dict) and previous is not None and resource.get(name) == previous.get(name) else []
        kept = [e for e in twin.get("extension") or ()
                if not (isinstance(e, dict) and e.get("url") == TAKEN_FROM_EXT) or e in ours]
        if kept == twin.get("extension"):
            continue
        out = out if out is not None else dict(resource)
        rest = {k: v for k, v in twin.items() if k != "extension"}
        if kept:
            rest["extension"] = kept
        if rest:
            out[key] = rest
        else:
            del out[key]
    return out if out is not None else resource


def _derived_times(plan: TypePlan, stored: Resource, incoming: Resource) -> Resource:
    """``derived: yields``: ``incoming`` without the times it only derived (marked ``TAKEN_FROM_EXT``: a result's
    OBR-7 where its OBX-14 is empty) where the stored version holds one stated as itself -- the element unmarked
    (OBX-14, a FHIR client's) or a sibling choice (a client's ``effectivePeriod``). The LIS's result stating OBX-14
    09:00, re-sent an hour later with OBX-14 empty, took OBR-7's 08:30 as the time the specimen was observed (rv42b
    HIGH 2; forty-third round, time43): the message states no time of the result, so it changes none -- no W, as
    any field a thinner message leaves empty. Over a stored derived time it is written (the mode decides): the time
    follows its source, so a later report moving OBR-7 moves the results it dates (perfrecog21's feed) -- conv42's
    "assumed" fallback had filled only, leaving them at the old time beside the report's new one. The message's
    own statement (OBX-14) replaces either, as the rules of a stated time say (older message, correction)."""
    out: Resource | None = None
    for name in plan.derived:
        if name not in incoming or not _taken_from(incoming.get("_" + name)):
            continue
        held = [n for n in (name, *plan.choices.get(name, ())) if n in stored]
        if held and not (held == [name] and _taken_from(stored.get("_" + name))):
            out = out if out is not None else dict(incoming)
            del out[name]
            out.pop("_" + name, None)
    return out if out is not None else incoming


def _twin_follows(plan: TypePlan, stored: Resource, sent: Resource, out: Resource, said: Said | None = None) -> None:
    """A ``derived`` time's mark (its primitive twin, ``_effectiveDateTime``) goes with the value ``out`` holds: the
    message's where its value was written -- stated (no twin) or derived -- the stored one's where the stored value
    stands (kept out: a derived time under a stated one, a thinner restatement, a correction's ``exam_time``, a step
    back's ``not_back.with``), none where no value is left. The same instant stated and derived is stated: a
    statement is not made a derivation by a message deriving what another stated. So is a derived instant a
    statement restates at a coarser precision (OBX-14 the day alone over OBR-7's 08:30 of that day, ``thinner`` at
    the digits the message stated: ``_not_thinner`` keeps the finer instant): the stated day is stated, and a later
    OBR-7 of another day (OBX-14 empty) had moved the result off it as over a derivation (review rv43d MED 4;
    forty-third round, time43b) -- a derived time never replaces a stated one, at any precision."""
    for name in plan.derived:
        twin = "_" + name
        if twin not in sent and twin not in stored:
            continue
        value = out.get(name, _MISSING)
        if value is _MISSING:
            out.pop(twin, None)
            continue
        stated = sent.get(name, _MISSING)
        if value == stated and not (
                value == stored.get(name, _MISSING) and _taken_from(sent.get(twin))
                and not _taken_from(stored.get(twin))):
            chosen = sent.get(twin, _MISSING)
        elif (isinstance(stated, str) and isinstance(value, str) and value == stored.get(name)
              and not _taken_from(sent.get(twin)) and _taken_from(stored.get(twin))
              and thinner(stated, value, said.digits_of(name) if said is not None else None)):
            chosen = _MISSING  # (the stored derived instant, confirmed by the coarser statement: stated)
        else:
            chosen = stored.get(twin, _MISSING)
        if chosen is _MISSING:
            out.pop(twin, None)
        else:
            out[twin] = chosen


def _span(resource: Resource | None) -> _dt.timedelta | None:
    """An appointment's end minus its start; None when either is absent or unreadable."""
    try:
        return _dt.datetime.fromisoformat(resource["end"]) - _dt.datetime.fromisoformat(resource["start"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None


def _length_within_span(stored: Resource | None, incoming: Resource, out: Resource, issues: list[Issue]) -> None:
    """R4 Appointment.minutesDuration may be less than end - start, never more (app-3's note). A message
    whose times or duration would leave it longer -- a new span of 90 s beside the stored 30 min (the
    merge keeps a minutesDuration a message does not send), an S14 stating SCH-9 60 min beside a stored
    08:30-09:00 -- is not half taken (schedfix23b, twenty-third round): the stored start, end and
    minutesDuration stand together, and a warning says so. With none stored (a new appointment) the
    stated times stand and the longer minutesDuration is not stored. Keeping the stored three, rather
    than refusing the message, loses nothing else the message carries (status, participants).
    What the message did not state decides nothing (the third review of sched23): a message stating
    new times and no length moves the appointment, and the stored length it would overrun is not kept
    (said); a message stating neither (a status alone) leaves what is stored as it is. A FHIR client's
    write is stored as sent (the rule reads messages, not REST bodies)."""
    length, span = out.get("minutesDuration"), _span(out)
    if not isinstance(length, int) or span is None or _dt.timedelta(minutes=length) <= span:
        return
    if "minutesDuration" not in incoming:
        if "start" not in incoming and "end" not in incoming:
            return  # neither times nor a length stated: nothing of this message's to judge
        out.pop("minutesDuration", None)
        out.pop("_minutesDuration", None)
        issues.append({"severity": "warning", "code": "informational", "expression": ["Appointment.minutesDuration"],
                       "diagnostics": f"Appointment.minutesDuration: the stored {length} min is longer than the "
                                      f"appointment's new span ({span.total_seconds() / 60:g} min, R4: never more "
                                      "than end - start) and the message states no length: not kept"})
        return
    kept = _span(stored)
    if stored is not None and kept is not None and (not isinstance(stored.get("minutesDuration"), int)
                                                    or _dt.timedelta(minutes=stored["minutesDuration"]) <= kept):
        for name in ("start", "end", "minutesDuration"):
            out.pop(name, None)
            out.pop(f"_{name}", None)
            if name in stored:
                out[name] = stored[name]
        what = f"the stored start, end and minutesDuration stand ({stored['start']} - {stored['end']})"
    else:
        out.pop("minutesDuration", None)
        what = "minutesDuration is not stored"
    issues.append({"severity": "warning", "code": "informational", "expression": ["Appointment.minutesDuration"],
                   "diagnostics": f"Appointment.minutesDuration: {length} min would be longer than the appointment's "
                                  f"span ({span.total_seconds() / 60:g} min, R4: never more than end - start); {what}"})


def _field_name(location: str) -> str:
    at = field_of(location)
    return f"{at[0]}-{at[2]}" if at is not None else location


@lru_cache(maxsize=1)
def shipped() -> MergeRules:
    """The rules shipped in ``mappings/merge.yaml`` (a repository built without a site uses them)."""
    path = Path(DEFAULTS_DIR) / "merge.yaml"
    return MergeRules(load_merge_file(path), str(path))


def set_key(entry: Any) -> str:
    """The set id a list entry was stated by (``SET_ID``) as ``system|value``; "" when it carries none
    (an entry a FHIR client wrote, or one stored before the twenty-second round)."""
    if isinstance(entry, dict):
        for ext in entry.get("extension") or ():
            if isinstance(ext, dict) and ext.get("url") == SET_ID:
                ident = ext.get("valueIdentifier")
                if isinstance(ident, dict) and ident.get("value"):
                    return f"{ident.get('system', '')}|{ident['value']}"
    return ""


def who(entry: Any) -> str:
    """Who or what a list entry is, "" when it names no one: a participant's actor (its reference,
    else its identifier -- equipment named by code --, else its display); a CodeableConcept (a
    service booked) its codes. Not its name, role or status: a renamed or re-roled doctor is the
    same person; a role booked with no one named is no one (``_roles`` tells such entries apart)."""
    if not isinstance(entry, dict):
        return ""
    actor = entry.get("actor")
    if isinstance(actor, dict):
        if isinstance(actor.get("reference"), str):
            return "reference " + actor["reference"]
        ident = actor.get("identifier")
        if isinstance(ident, dict) and ident.get("value"):
            return f"identifier {ident.get('system', '')}|{ident['value']}"
        if isinstance(actor.get("display"), str):
            return "display " + actor["display"]
        return ""
    if "coding" in entry:
        return "coding " + _codings(entry.get("coding"))
    return ""


def _roles(entry: Any) -> str:
    if not isinstance(entry, dict):
        return ""
    codings = [c for t in entry.get("type") or () if isinstance(t, dict) for c in t.get("coding") or ()]
    return _codings(codings) if codings else ""


def _codings(codings: Any) -> str:
    return " ".join(sorted(f"{c.get('system', '')}|{c.get('code', '')}" for c in codings or () if isinstance(c, dict)))


def _label(entry: Any) -> str:
    """An entry as the sender's staff read it in the ACK (no record ids): a name, a code, a role."""
    if not isinstance(entry, dict):
        return "?"
    actor = entry.get("actor")
    if isinstance(actor, dict):
        ident = actor.get("identifier")
        return str(actor.get("display") or (ident.get("value") if isinstance(ident, dict) else "") or "someone")
    codes = [c.get("code") for c in entry.get("coding") or () if isinstance(c, dict) and c.get("code")]
    if codes:
        return "/".join(map(str, codes))
    roles = [c.get("code") for t in entry.get("type") or () if isinstance(t, dict)
             for c in t.get("coding") or () if isinstance(c, dict) and c.get("code")]
    return "a role " + "/".join(map(str, roles)) + " with no one named" if roles else "?"


def _declined(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get("status") == "declined"


@dataclass(slots=True)
class Finding:
    """Where one segment's entries stand among the stored ones (``Matcher.find``):

    - ``by`` "set id": its set id holds ``held`` (stored indexes; the declined ones only when it
      holds no other, and never for an A);
    - ``by`` "who": nothing is stored under its set id; ``pairs`` are the stored entries found by
      who (or, a role booked with no one named, by the role) with the segment's entry naming each,
      ``unfound`` its entries found nowhere;
    - ``ambiguous``: why it cannot be matched without a guess (the stored list is then kept)."""

    by: str
    held: list[int] = field(default_factory=list)
    pairs: list[tuple[int, Any]] = field(default_factory=list)
    unfound: list[Any] = field(default_factory=list)
    ambiguous: str = ""


class Matcher:
    """Finds, segment by segment of one message, the stored entries of a list each segment names:
    by its set id first (``SET_ID``: every entry it stated, AIP-3 repeating), then by who its
    entries are (``who``: the actor, with its role when the message gives one, or a service's
    codes), then -- a role booked with no one named -- by the role. An entry one segment found is
    not found again by another (``claimed``)."""

    def __init__(self, stored: list[Any], incoming: list[Any]) -> None:
        self.stored = stored
        self.stated: dict[str, list[Any]] = {}
        for entry in incoming:
            self.stated.setdefault(set_key(entry), []).append(entry)
        self.claimed: set[int] = set()

    def entries(self, change: Change) -> list[Any]:
        """What the segment states: the incoming entries carrying its set id, else its own (an AIS D)."""
        return (self.stated.get(change.key, []) if change.key else []) or list(change.entries)

    def find(self, change: Change, mine: list[Any]) -> Finding:
        by_set = [i for i, entry in enumerate(self.stored) if change.key and set_key(entry) == change.key]
        held = [i for i in by_set if not _declined(self.stored[i])] or (by_set if change.action != "A" else [])
        if held:
            if self.claimed.intersection(held):
                return Finding("set id", held, ambiguous="its set id names entries another segment of the message also names")
            self.claimed.update(held)
            return Finding("set id", held)
        return self._by_who(change, mine)

    def _by_who(self, change: Change, mine: list[Any]) -> Finding:
        found = Finding("who")
        for entry in mine:
            candidates = self._candidates(change, entry)
            if len(candidates) > 1 and any(self.stored[i] != self.stored[candidates[0]] for i in candidates):
                found.ambiguous = (f"{_label(entry)} is booked {len(candidates)} times (no entry is stored under its "
                                   "set id): which one it means is not said")
                return found
            if candidates:
                self.claimed.add(candidates[0])
                found.pairs.append((candidates[0], entry))
            else:
                found.unfound.append(entry)
        return found

    def _candidates(self, change: Change, entry: Any) -> list[int]:
        stored, claimed = self.stored, self.claimed
        whom, roles = who(entry), _roles(entry)
        if whom:
            candidates = [i for i, s in enumerate(stored) if i not in claimed and who(s) == whom
                          and (not roles or _roles(s) in ("", roles))]
        elif change.action == "A" and change.key:
            # an add under a new set id adds a role booked with no one named: found by the role, a
            # second anaesthetist needed replaced the first
            candidates = []
        else:  # a role booked with no one named: found by the role
            candidates = [i for i, s in enumerate(stored) if i not in claimed and not who(s) and roles
                          and _roles(s) == roles]
        candidates = [i for i in candidates if not _declined(stored[i])] or candidates
        if whom and not candidates and change.action == "U" and roles:
            # the person named for a role booked with no one named, stored with no set id
            candidates = [i for i, s in enumerate(stored) if i not in claimed and not who(s) and not set_key(s)
                          and _roles(s) == roles and not _declined(s)]
        return candidates


class Booking:
    """The stored entries of a list as one message's changes leave them (``_changes``): each stored
    entry's slot (replaced, declined, taken off or as stored), the entries added (listed last), and
    the segments refused (the stored list is then kept whole) or noted (said, the rest taken)."""

    def __init__(self, stored: list[Any]) -> None:
        self.stored = stored
        self.slots: list[list[Any]] = [[entry] for entry in stored]
        self.added: list[Any] = []
        self.refused: list[tuple[Change, str]] = []
        self.noted: list[tuple[Change, str]] = []

    def refuse(self, change: Change, why: str) -> None:
        self.refused.append((change, why))

    def note(self, change: Change, why: str) -> None:
        self.noted.append((change, why))

    def take_off(self, i: int) -> None:
        """A participant is declined (kept on record), a service taken off."""
        entry = self.stored[i]
        self.slots[i] = [{**entry, "status": "declined"}] if isinstance(entry, dict) and "status" in entry else []

    def put(self, group: list[int], entries: list[Any]) -> None:
        """``entries`` in the place of the stored ``group`` (at its first entry's place)."""
        self.slots[group[0]] = list(entries)
        for i in group[1:]:
            self.slots[i] = []

    def result(self, element: str, issues: list[Issue]) -> list[Any] | None:
        for change, why in self.noted:
            _said_change(issues, element, change, why, "")
        if self.refused:
            for change, why in self.refused:
                _said_change(issues, element, change, why, f"; the stored {element} is kept as it was (none of this "
                                                           "message's changes to it is taken: a wrong list is worse than none)")
            return None
        return [entry for slot in self.slots for entry in slot] + self.added


def _changes(rtype: str, name: str, stored: list[Any], incoming: list[Any], changes: tuple[Change, ...],
             issues: list[Issue]) -> list[Any] | None:
    """``Said.changes``: ``stored`` with each segment's change applied, else None -- a segment that
    cannot be matched to the stored entries without a guess (the stored list is then kept as it
    was, and each such segment is said, located at its set-id field).

    Each segment is found (``Matcher``: by set id, then who, then role) and then applied by its
    action code (table 0206), apart from the finding:

    - found by its set id (``_on_set_id``): A or X change nothing when they name the same actors in
      the same roles (an A stating a status of its own gives it), else refused; U replaces what the
      set id holds, keeping the stored parts its empty fields do not state (``Change.keep``,
      ``_updated``; a U stating only a status gives the status); D declines (a participant: its
      record kept) or takes off (a service) what it holds, refused when it names another resource or
      role;
    - found by who (``_on_who``): A and U replace each entry found (keeping, as a U does, what their
      empty fields do not state; an A of one declined re-books him; one stored under another set id
      keeps it, said: ``_own_set_id``), D declines it, X keeps it;
      what is not found is added by an A, refused by a U (it cannot be placed), said and not taken by
      a D or an X;
    - ambiguous (a doctor booked twice with no set id telling which, a set id another segment also
      names, a coded segment without a set id, a set id given twice): refused.

    Then the kinds of segment sent without codes beside coded ones (``STATED_WHOLE``) replace the
    stored entries of their kind (``_stated_whole``). The stored entries no segment finds stay where
    they stood; additions go last."""
    matcher = Matcher(stored, incoming)
    booking = Booking(stored)
    for change in changes:
        if change.action == STATED_WHOLE:
            continue  # after the coded ones (``_stated_whole``)
        if change.why:
            booking.refuse(change, change.why)
            continue
        mine = matcher.entries(change)
        found = matcher.find(change, mine)
        if found.ambiguous:
            booking.refuse(change, found.ambiguous)
        elif found.by == "set id":
            _on_set_id(change, mine, found.held, booking)
        else:
            _on_who(change, mine, found, booking)
    _stated_whole(changes, incoming, booking)
    return booking.result(f"{rtype}.{name}", issues)


def _stated_whole(changes: tuple[Change, ...], incoming: list[Any], booking: Booking) -> None:
    """The kinds of segment a message sends without action codes beside coded ones (``STATED_WHOLE``):
    the stored entries of each such kind are replaced by the message's entries of it (at the first
    one's place; none stored: added), the other kinds' stored entries stay. A kind that states no
    entry (its segments name no one) changes nothing (a thinner message erases nothing). An entry
    whose kind cannot be told (stored with no set id, naming no Practitioner or Location, no
    role) stays; an incoming one of no kind told is added."""
    kinds = [c.key for c in changes if c.action == STATED_WHOLE]
    if not kinds:
        return
    coded = {c.key for c in changes if c.action != STATED_WHOLE and c.key}
    theirs: dict[str, list[Any]] = {kind: [] for kind in kinds}
    for entry in incoming:
        if set_key(entry) in coded:
            continue
        kind = _kind_of(entry) if len(kinds) > 1 else kinds[0]
        if kind in theirs:
            theirs[kind].append(entry)
        else:
            booking.added.append(entry)
    for kind, entries in theirs.items():
        if not entries:
            continue
        held = [i for i, entry in enumerate(booking.stored) if _kind_of(entry) == kind]
        if held:
            booking.put(held, entries)
        else:
            booking.added.extend(entries)


def _kind_of(entry: Any) -> str:
    """The kind of segment (as its set-id system, ``urn:huren:hl7v2:AIP-1``) a list entry was stated
    by: its set id's, else what it names -- a Practitioner or a role with no one named (AIP), a
    Location (AIL), equipment named by code (AIG); "" when that cannot be told."""
    key = set_key(entry)
    if key:
        return key.rpartition("|")[0]
    if not isinstance(entry, dict):
        return ""
    actor = entry.get("actor")
    if not isinstance(actor, dict):
        return f"{SET_ID_SYSTEM}AIP-1" if entry.get("type") else ""
    reference = actor.get("reference") if isinstance(actor.get("reference"), str) else ""
    if reference.startswith(("Practitioner/", "PractitionerRole/")):
        return f"{SET_ID_SYSTEM}AIP-1"
    if reference.startswith("Location/"):
        return f"{SET_ID_SYSTEM}AIL-1"
    if not reference and isinstance(actor.get("identifier"), dict):
        return f"{SET_ID_SYSTEM}AIG-1"
    return ""


def _on_set_id(change: Change, mine: list[Any], group: list[int], booking: Booking) -> None:
    """A segment's change to the stored entries its set id holds (``group``)."""
    stored = booking.stored
    held = {w for w in (who(stored[i]) for i in group) if w}
    booked = ", ".join(_label(stored[i]) for i in group)
    if change.action in ("A", "X"):
        # an A (or X) under a set id already stored is the same booking re-sent only when it
        # names the same actors in the same roles (an unnamed role's who is "": compared by
        # who alone, ``AIP|2|A||AT`` replaced the anaesthetist slot, ``AIP|1|A|D01|AN`` re-roled
        # the attending): then it changes nothing; else the stored list is kept and it is said
        if (mine or change.action == "A") and not _same_parts(mine, [stored[i] for i in group], change.action == "X"):
            what = "an add (A)" if change.action == "A" else "a no change (X)"
            booking.refuse(change, f"its set id holds {booked}: {what} under it names another resource "
                                   "or role and cannot be told from a replacement")
        elif change.action == "A" and change.status:
            # the same people in the same roles re-sent with a status of their own stated
            # (AIP-12): the status is news of them, taken (it was dropped unsaid); an A that
            # leaves the status empty changes nothing
            for i in group:
                own = [e for e in mine if who(e) == who(stored[i]) and _roles(e) == _roles(stored[i])]
                if own and isinstance(stored[i], dict) and "status" in stored[i]:
                    booking.slots[i] = [{**stored[i], "status": change.status}]
    elif change.action == "U":
        updated = _updated([stored[i] for i in group], mine, change.keep)
        if not mine and change.status and "actor" in change.keep:
            # only a status stated (who and role left empty: no change): the status is the update
            booking.put(group, [{**stored[i], "status": change.status} if isinstance(stored[i], dict)
                                and "status" in stored[i] else stored[i] for i in group])
        elif not mine:
            booking.refuse(change, f"it states nothing to update {booked} to")
        elif updated is None:
            booking.refuse(change, f"its set id holds {booked}, which its empty fields (no change) keep "
                                   "apart: what each is updated to is not said")
        else:
            booking.put(group, updated)
    elif change.action == "D":
        named = {w for w in (who(e) for e in mine) if w}
        if named - held:
            booking.refuse(change, f"its set id holds {booked}, not "
                                   + ", ".join(_label(e) for e in mine if who(e) not in held))
            return
        wrong = [e for e in mine if _roles(e) and not any(
            who(stored[i]) == who(e) and _roles(stored[i]) in ("", _roles(e)) for i in group)]
        if wrong:
            booking.refuse(change, f"its set id holds {booked}, not in the role it names")
            return
        for i in group:
            if not named or who(stored[i]) in named:
                booking.take_off(i)


def _on_who(change: Change, mine: list[Any], found: Finding, booking: Booking) -> None:
    """A segment's change where nothing is stored under its set id: to the entries found by who."""
    stored = booking.stored
    if change.action in ("A", "U") and change.keep:
        # found by who it is (no entry under its set id): an A replaces the entry it finds as a U
        # does, keeping what its empty fields do not state (``AIP|2|A|D01|||<t>`` erased his
        # attending role; an A with AIP-12 empty reset his tentative to accepted) -- but an A of
        # one declined adds him back: his declined is not kept (rvrvs22b: the A re-books him)
        merged = [_updated([stored[i]], [entry], change.keep if change.action == "U" or not _declined(stored[i])
                           else tuple(k for k in change.keep if k != "status")) for i, entry in found.pairs]
        if any(m is None for m in merged):
            booking.refuse(change, "what its empty fields (no change) keep cannot be told")
            return
        for (i, _), m in zip(found.pairs, merged, strict=True):
            booking.put([i], [_own_set_id(stored[i], e, change, booking) for e in m or []])
    elif change.action in ("A", "U"):
        for i, entry in found.pairs:
            booking.put([i], [_own_set_id(stored[i], entry, change, booking)])
    elif change.action == "D":
        for i, _ in found.pairs:
            booking.take_off(i)
    missing = ", ".join(_label(e) for e in found.unfound) if found.unfound else "its set id"
    if not (found.unfound or not mine):
        return
    if change.action == "U":
        booking.refuse(change, missing + " is not on the booking: an update (U) of it cannot be placed")
    elif change.action == "D":
        booking.note(change, missing + " is not on the booking: nothing is taken off")
    elif change.action == "X":
        # X is "no change": it never adds (a doctor never booked was added, accepted, unsaid)
        booking.note(change, missing + " is not on the booking: a no change (X) of it adds nothing")
    elif change.action == "A":
        booking.added.extend(found.unfound)


def _own_set_id(held: Any, entry: Any, change: Change, booking: Booking) -> Any:
    """An A or U under a set id nothing is stored under, taken for an entry found by who it names
    that is stored under another set id of its segment (``AIP|3|A|D01`` with D01 booked as set id 1):
    the entry keeps its set id. Taking the new one moved it (a later ``AIP|1|U`` found nothing), and
    whether the sender means a second booking of him or renumbered is not said; what the segment
    states of him is taken (as before), his set id stays, and the ACK says so (twenty-third round).
    A declined entry (an A re-books him) and one stored with no set id take the segment's."""
    kept = set_key(held)
    if not kept or _declined(held) or not change.key or not isinstance(entry, dict):
        return entry
    system, _, value = change.key.rpartition("|")
    kept_system, _, kept_value = kept.rpartition("|")
    if kept_system != system or kept_value == value:
        return entry
    booking.note(change, f"{_label(held)} is booked under set id {kept_value}, and keeps it: "
                         f"{'an add (A)' if change.action == 'A' else 'an update (U)'} of it under set id {value}, "
                         "which holds nothing stored, is taken as news of it, not as a second booking or a renumbering")
    extensions = [e for e in entry.get("extension") or () if not (isinstance(e, dict) and e.get("url") == SET_ID)]
    ours = [e for e in held.get("extension") or () if isinstance(e, dict) and e.get("url") == SET_ID]
    return {**entry, "extension": extensions + ours}


def _same_parts(mine: list[Any], held: list[Any], empty_role_stands: bool) -> bool:
    """The entries a segment states are those its set id holds: the same actors in the same roles
    (an X, "no change", that leaves the role empty says nothing of it: any stored role stands; one
    that leaves the resource empty says nothing of who: its role, if any, is one stored)."""
    if empty_role_stands and mine and not any(who(e) for e in mine):
        return all(not _roles(e) or any(_roles(h) == _roles(e) for h in held) for e in mine)
    if sorted(who(e) for e in mine) != sorted(who(h) for h in held):
        return False
    if empty_role_stands:
        return all(any(who(h) == who(e) and (not _roles(e) or _roles(e) == _roles(h)) for h in held) for e in mine)
    return sorted((who(e), _roles(e)) for e in mine) == sorted((who(h), _roles(h)) for h in held)


def _updated(held: list[Any], mine: list[Any], keep: tuple[str, ...]) -> list[Any] | None:
    """An update's (U) entries with the stored parts its empty fields keep (``Change.keep``: v2, an
    empty field is no change; ``AIP|1|U|D01|||<time>`` erased the attending role and reset the
    status): the role (type) and, when it names no one (AIP-3 empty), the actor, from what its set
    id holds; the status only of the same actor re-stated, not declined (a status stored for another
    actor or a role with no one named is no status of the one it now names; a declined person's
    declined kept: only a stated status changes it). Several people under one set id (AIP-3
    repeating): each named person paired with his own stored entry (every new entry was paired with
    the first stored one: the second person's status reset); a person newly named takes only the
    kept parts all stored entries share. None when the stored entries differ in a part kept and the
    update cannot be paired with them one to one (a person stored or named twice)."""
    if not keep or not mine:
        return list(mine)
    if "actor" in keep:
        if len(mine) != 1:
            return None
        pairs = [(h, mine[0]) for h in held]
    elif len(held) == len(mine) == 1:
        pairs = [(held[0], mine[0])]
    else:
        whos = [who(e) for e in mine]
        stored_whos = [who(h) for h in held]
        if any(w and (whos.count(w) > 1 or stored_whos.count(w) > 1) for w in whos):
            return None  # a person named or stored twice under the set id: which entry is whose is not said
        parts = {json.dumps({k: h.get(k) for k in keep if k != "status"}, sort_keys=True, default=str)
                 for h in held if isinstance(h, dict)}
        pairs = []
        for e, w in zip(mine, whos, strict=True):
            own = [h for h, sw in zip(held, stored_whos, strict=True) if w and sw == w]
            if own:
                pairs.append((own[0], e))
            elif len(parts) > 1:
                return None
            else:
                pairs.append((held[0], e))
    out = []
    for h, e in pairs:
        if not isinstance(h, dict) or not isinstance(e, dict):
            return None
        entry = dict(e)
        for part in keep:
            if part == "status":
                continue
            if part in h:
                entry[part] = h[part]
        if "status" in keep and "status" in h and who(h) and who(entry) == who(h):
            entry["status"] = h["status"]
        out.append(entry)
    return out


def _said_change(issues: list[Issue], element: str, change: Change, why: str, then: str) -> None:
    at = field_of(change.at)
    segment = at[0] if at is not None else "segment"
    set_id = change.key.rsplit("|", 1)[-1] if change.key else ""
    head = f"{segment}-1 set id {set_id} ({segment}-2 {change.action})" if set_id else f"{segment} ({segment}-2 {change.action})"
    issues.append({"severity": "warning", "code": "conflict", "expression": [element], "location": [change.at],
                   "diagnostics": f"{head}: {why}{then}"})


def _settled(entries: list[Any], follows: tuple[tuple[str, frozenset[str]], ...], status: Any) -> list[Any]:
    """``status_follows``: the stored entries of a list the message did not state, their status as
    the combined resource's ``status`` gives it. A pre-admission's bed (PV1-3 with PV1-2 P:
    ``planned``) stayed planned through the admission (A01 without PV1-3: in-progress) and the
    discharge (review of the eighteenth round): the bed stated is kept, its planned status is
    superseded by the event (``active``); a cancelled admission (A11) leaves its bed planned again,
    not occupied. Entries of another status (PV1-6's ``completed``, PV1-42's ``reserved``) and a
    resource status no list names (entered-in-error, unknown) leave them as stored."""
    target = next((entry for entry, statuses in follows if status in statuses), None)
    if target is None:
        return entries
    moved = {entry for entry, _ in follows} - {target}
    if not any(isinstance(e, dict) and e.get("status") in moved for e in entries):
        return entries
    return [{**e, "status": target} if isinstance(e, dict) and e.get("status") in moved else e for e in entries]


def _displays_kept(entries: list[Any], stored: list[Any], paths: tuple[tuple[str, ...], ...],
                   saids: Mapping[str, Said]) -> list[Any]:
    """``displays``: an entry's reference (at one of ``paths``) to a resource whose name the message
    only assumed (its ``Said.assumed`` holds ``name``) takes the display a stored entry gives the same
    reference: the visit's bed stays 血液科病区 301房 02床 when an A08 sends XYK^301^02 alone, as the
    Location keeps that name. A name the message states (PL-9) is not assumed: its display stands."""
    named: dict[str, str] = {}
    for entry in stored:
        for path in paths:
            for ref in _collect(entry, path):
                if isinstance(ref, dict) and isinstance(ref.get("reference"), str) and isinstance(ref.get("display"), str):
                    named.setdefault(ref["reference"], ref["display"])
    if not named:
        return entries
    out = []
    for entry in entries:
        for path in paths:
            ref = _one_at(entry, path)
            target = ref.get("reference") if ref is not None else None
            was = named.get(target) if isinstance(target, str) else None
            if was is None or ref is None or ref.get("display") == was:
                continue
            told = saids.get(target)  # (type-narrowed above: a str)
            if told is not None and "name" in told.assumed:
                entry = _with_at(entry, path, {**ref, "display": was})
        out.append(entry)
    return out


def _one_at(node: Any, path: tuple[str, ...]) -> dict[str, Any] | None:
    """The object at ``path`` (object keys only) in ``node``, else None."""
    for step in path:
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node if isinstance(node, dict) else None


def _with_at(node: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of ``node`` with ``value`` at ``path`` (the objects on the way copied, not changed)."""
    head, *rest = path
    return {**node, head: _with_at(node[head], tuple(rest), value) if rest else value}


def _with_history(entries: list[Any], stored: list[Any], history: frozenset[str]) -> list[Any]:
    """``history``: the stored entries of a past status (the bed an A02 named as prior, PV1-6:
    ``completed``) of a place the message does not state, kept after the ones it states. An A08
    re-sending PV1-3 alone erased the prior bed (the list was replaced whole); the entries of the
    present (``active``, ``planned``) are still replaced, so an A08 that moves the patient leaves
    one occupied bed, not two (twenty-eighth round, convleft28)."""
    stated = [e.get("location") for e in entries if isinstance(e, dict)]
    past = [e for e in stored if isinstance(e, dict) and e.get("status") in history
            and e.get("location") not in stated and e not in entries]
    return entries + past if past else entries


def _code_pairs(resource: Mapping[str, Any], *, tests: bool = False) -> set[tuple[str, str]]:
    """The (system, code) pairs of a resource's ``code`` (``inherits``: the same test); ``tests``: its test codes
    only, the DICOM modality left out (``_modality``)."""
    code = resource.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    modality = _modality() if tests else None
    return {(str(c.get("system") or ""), str(c["code"])) for c in codings or ()
            if isinstance(c, dict) and c.get("code") and not (modality and modality(c))}


def _modality() -> Callable[[Any], bool]:
    """Whether a coding of an order's ``code`` is the DICOM modality, never the test: the converter's rule
    (``adapters.convert.common.is_modality``, its one owner -- the converter's ``_test_codings`` asks it too),
    fetched at run time once per question (the converter imports this module). Read as a test, the merge took the
    placer's XO changing head CT (CT009) to chest CT (CT020), both carrying ``DCM CT``, for the same test restated
    and kept both codings (acsn44; one owner since acsn44b, rv44b LOW 5)."""
    from adapters.convert.common import is_modality

    return is_modality


def _tests_of(concept: Any) -> Any:
    """A ``code`` concept with its test codings only (``_modality`` left out), for "is it the same test"."""
    modality = _modality()
    if not isinstance(concept, dict) or not any(modality(c) for c in concept.get("coding") or ()):
        return concept
    return {**concept, "coding": [c for c in concept.get("coding") or () if not modality(c)]}


def _in_system(entry: Any, system: str) -> bool:
    """A CodeableConcept with a coding in ``system`` (``inherits``)."""
    return isinstance(entry, dict) and any(isinstance(c, dict) and c.get("system") == system
                                           for c in entry.get("coding") or ())


def _names_new(stored: Any, incoming: Any) -> bool:
    """Whether ``incoming`` (an element's value: a reference or a list of them) names an entry ``stored`` does not:
    a correction's re-drawn tube (``exam_time``'s ``unless_new``). Not stated: no."""
    if incoming is _MISSING:
        return False
    held = stored if isinstance(stored, list) else [] if stored is _MISSING else [stored]
    return any(entry not in held for entry in (incoming if isinstance(incoming, list) else [incoming]))


@lru_cache(maxsize=256)
def _choice_siblings(rtype: str) -> Mapping[str, frozenset[str]]:
    """Top-level choice elements of an R4 resource type and their siblings, from the R4 schema the
    validator uses (its ``dependencies``: ``valueQuantity`` present => every other ``value*`` absent)."""
    from conformance.validate import load_schema

    deps = (load_schema().get("definitions", {}).get(rtype) or {}).get("dependencies") or {}
    return {name: frozenset(rule.get("properties") or {}) for name, rule in deps.items() if isinstance(rule, dict)}


def _stood(value: Any) -> Any:
    """The value ``stands`` and ``yields_to`` name: a text or flag as it is; a list of coded
    entries (CodeableConcepts or Codings) by its one code -- ``DocumentReference.securityLabel``
    (TXA-18), and ``meta`` by its ``security`` list: a V document or its text is not taken down
    to R or N by a later message (twentieth round) --; None when it states no one code (no rule:
    a ``meta`` with tags alone says nothing of the label, and the element's mode applies)."""
    if type(value) in (str, bool):
        return value
    if type(value) is dict:
        value = value.get("security")
    if type(value) is list:
        codes = {c.get("code") for entry in value if isinstance(entry, dict)
                 for c in (entry.get("coding") or () if "coding" in entry else (entry,))
                 if isinstance(c, dict) and c.get("code")}
        if len(codes) == 1:
            return next(iter(codes))
    return None


def _present(value: Any) -> Any:
    """FHIR has no empty elements: an empty list, object or text counts as absent."""
    if value is None or (type(value) in _CONTAINERS and not value):
        return _MISSING
    return value


def _absent(value: Any) -> bool:
    """An element that only says it is absent (``{"extension": [data-absent-reason]}``)."""
    if type(value) is not dict or len(value) != 1:
        return False
    extensions = value.get("extension")
    return (type(extensions) is list and bool(extensions)
            and all(type(e) is dict and e.get("url") == DATA_ABSENT_REASON for e in extensions))


def stand_in(concept: Any) -> bool:
    """Whether a code is huren's stand-in (``STAND_IN_EXT``): a report whose groups named no test, filed
    under its first result's code -- not the sender's statement of a test (code37)."""
    return isinstance(concept, dict) and any(isinstance(e, dict) and e.get("url") == STAND_IN_EXT
                                             for e in concept.get("extension") or ())


def _codes(concept: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(str(c.get("system") or ""), str(c["code"])) for c in concept.get("coding") or ()
            if isinstance(c, dict) and c.get("code")}


def same_concept(one: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Two coded items name the same test when a coding's system and code match (display and text
    are how a sender labels it: ``CREA^肌酐^L`` and ``CREA^^L`` are one test); uncoded, by their
    text. Whole concepts compared made a display left out a second test."""
    mine, theirs = _codes(one), _codes(other)
    if mine or theirs:
        return bool(mine & theirs)
    return bool(one.get("text")) and one.get("text") == other.get("text")


def _tests(concept: Mapping[str, Any]) -> list[str] | None:
    """The tests a report's code names by label: a panel (``code.text`` with no coding,
    ``names_all_of``) its several; None for one coded test (compared by its codings)."""
    if _codes(concept) or not concept.get("text"):
        return None
    return str(concept["text"]).split(PANEL)


def names_every_test(stored: Any, incoming: Any) -> bool:
    """Whether a report's ``incoming`` code names every test its ``stored`` code names: the same test
    (``same_concept``), or a panel listing each of them (one coded test by its label)."""
    if not isinstance(stored, dict) or not isinstance(incoming, dict):
        return False
    if same_concept(stored, incoming):
        return True
    panel = _tests(incoming)
    if panel is None:
        return False
    wanted = _tests(stored)
    return set(wanted if wanted is not None else [concept_label(stored)]) <= set(panel)


def all_results_in(rule: Mapping[str, Any]) -> tuple[tuple[str, frozenset[str]], ...]:
    """An element rule's ``all_results`` (status -> result statuses), in its order."""
    return tuple((str(status), frozenset(of)) for status, of in (rule.get("all_results") or {}).items())


# (id of a site's merge data, type, element) -> (that data, its ``all_results``): read once per site's data, not
# once per report -- the data is held beside its answer, so its id is not another's while the entry lives
_ALL_RESULTS: dict[tuple[int, str, str], tuple[Any, tuple[tuple[str, frozenset[str]], ...]]] = {}


def all_results_of(merge: Mapping[str, Any] | None, rtype: str, element: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """The ``all_results`` of an element's rule (DiagnosticReport ``status``) in a site's merge.yaml data,
    else the shipped file's: the converter reads it for one group's results (OBR-25 empty), the merge
    for the report's results as merged (``MergeRules._none_standing``). Built once per merge data (a
    site's, loaded once and not changed after): each report read it anew, ~12k instructions a group
    whose OBR-25 is empty (thirty-ninth round, stat39)."""
    key = (id(merge), rtype, element)
    hit = _ALL_RESULTS.get(key)
    if hit is not None and hit[0] is merge:
        return hit[1]
    rule = (((merge or shipped().data).get("resources") or {}).get(rtype) or {}).get(element)
    found = all_results_in(rule) if isinstance(rule, Mapping) else ()
    if len(_ALL_RESULTS) >= 64:  # (sites loaded and let go, in a test run: no entry outlives its use for long)
        _ALL_RESULTS.clear()
    _ALL_RESULTS[key] = (merge, found)
    return found


def progress_of(merge: Mapping[str, Any] | None, rtype: str, element: str) -> Mapping[str, int]:
    """The ``progress`` order of an element's rule (DiagnosticReport ``status``) in a site's
    merge.yaml data (``Site.merge``), else the shipped file's: the one table the converter reads
    for the groups of one message and the merge rules across messages. A status not listed states
    no progress (gives way); no table, every status gives way."""
    data = merge or shipped().data
    rule = ((data.get("resources") or {}).get(rtype) or {}).get(element)
    progress = rule.get("progress") if isinstance(rule, Mapping) else None
    return progress if isinstance(progress, Mapping) else {}


def mapping_gap(value: str, expression: str) -> Issue:
    """An issue saying ``value`` (a code, an order's text) at ``expression`` is the deployment's mapping gap
    (``MAPPING_GAP``): ingest counts it on ``/admin/fidelity`` with the unmapped codes, at the field the
    merge locates it at, and answers no ERR for it."""
    return {"severity": "information", "code": "not-found", "expression": [expression],
            "details": {"coding": [{"system": MAPPING_GAP, "code": value}]},
            "diagnostics": f"{expression}: {value!r} is known to no code map as a recognition item: not judged"}


def gap_of(issue: Mapping[str, Any]) -> str | None:
    """The value a ``mapping_gap`` issue counts, else None."""
    for coding in (issue.get("details") or {}).get("coding") or ():
        if isinstance(coding, dict) and coding.get("system") == MAPPING_GAP:
            return str(coding.get("code") or "")
    return None


def concept_label(concept: Mapping[str, Any]) -> str:
    """What a test is called in a panel's text: its text, else its first coding's display or code."""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or ():
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding.get("code"))
    return "report"


def _collect(node: Any, path: tuple[str, ...]) -> list[Any]:
    values = [node]
    for part in path:
        nxt: list[Any] = []
        for value in values:
            for item in value if isinstance(value, list) else (value,):
                if isinstance(item, dict) and part in item:
                    got = item[part]
                    nxt.extend(got if isinstance(got, list) else (got,))
        values = nxt
    return values


def _key(entry: Any, key: tuple[tuple[str, ...], ...] | None) -> bytes:
    if key is None:
        return fhirjson.dumps(entry, sort_keys=True)
    return fhirjson.dumps([_part(entry, path) for path in key], sort_keys=True)


def _part(entry: Any, path: tuple[str, ...]) -> list[Any]:
    """The values of one part of a key: the elements at ``path``, or how the entry is written."""
    if path == _REPRESENTATION_KEY:
        return [_representation(entry)]
    if path == _TYPE_KEY:
        ref = entry.get("reference") if isinstance(entry, dict) else None
        return [ref.split("/", 1)[0]] if isinstance(ref, str) and "/" in ref else []
    return _collect(entry, path)


def _representation(entry: Any) -> str:
    """How a name or address is written (ISO 21090 EN representation): as the entry states it
    (``iso21090-EN-representation``), else ``IDE`` when it holds CJK ideographs (张三, 阜宁县) and
    ``ABC`` otherwise (ZHANG SAN, pinyin): a Chinese name and its pinyin are two kinds of one name."""
    if not isinstance(entry, dict):
        return ""
    for ext in entry.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == REPRESENTATION and isinstance(ext.get("valueCode"), str):
            return ext["valueCode"]
    return "IDE" if _has_ideographs({k: v for k, v in entry.items() if k != "extension"}) else "ABC"


# CJK ideographs: the unified blocks with Extension A, the compatibility ones, Extensions B-I and the
# supplement (U+20000-U+323AF, 𠀋), the iteration mark 々, the ideographic zero 〇 and the Hangzhou
# numerals (one compiled class: a search is as fast as the two comparisons it replaces). The one
# owner of "is this written in Chinese characters": the converter asks it too (a name's text and
# order, an address's text), so a name the merge holds for the Chinese kind is one it wrote as such
_IDEOGRAPH = re.compile("[\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff"
                        "\uf900-\ufaff\U00020000-\U000323af]")


def ideographic(text: str) -> bool:
    """Whether ``text`` holds a CJK ideograph (张三, 𠀋, 〇): Chinese names are written family
    first without a space, and are the IDE kind of a name or address."""
    return _IDEOGRAPH.search(text) is not None


def _has_ideographs(node: Any) -> bool:
    if isinstance(node, str):
        return _IDEOGRAPH.search(node) is not None
    if isinstance(node, dict):
        return any(_has_ideographs(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_ideographs(v) for v in node)
    return False


def _by_key(stored: list[Any], incoming: list[Any], key: tuple[tuple[str, ...], ...] | None) -> list[Any]:
    """The incoming entries replace the stored entries of their kind (``key``), all of them, where
    the first of those stood; stored entries of a kind the incoming list does not state stay (a
    registration sending only the Chinese name keeps the pinyin one; only a home phone, the work one).

    A part of the kind left out is a wildcard in one direction only: a stored entry that leaves a
    part out is replaced by an incoming one that states it (the name an order sent without XPN-7's
    use is the one the registration later states as official), but an incoming entry that leaves a
    part out replaces only stored entries that leave it out too -- never a stored entry that states
    it (a name without a use does not replace the official name nor the maiden one; a phone without
    a use neither the home nor the work one). Such an entry that equals a stored one but for the
    parts it leaves out is that stored entry said again: it is not stored a second time.

    An entry stating no part of its kind at all is of no kind, not of every kind: it stays beside any
    list an incoming version states (a participant a FHIR client added without a type is no attending an
    A08's PV1-7 replaces; a performer without a reference no observer), and is stored once (review of
    convfid27). The wildcard is for a part left out of an entry that states the others."""
    if key is None:
        return _union(stored, incoming, key)
    kinds = [_kind(e, key) for e in incoming]
    coverings = [[] if _kindless(old) else [n for n, k in enumerate(kinds) if _refines(k, old)]
                 for old in (_kind(e, key) for e in stored)]
    # an entry said again (equal to a stored entry that stays, but for the parts it leaves out) is
    # not stored a second time: decided against every stored entry that stays before any is
    # replaced, so the outcome does not depend on the stored order
    kept = [entry for entry, covering in zip(stored, coverings, strict=True) if not covering]
    placed = [any(_said_again(e, k, s, key) for s in kept) or (_kindless(k) and e in kept)
              for e, k in zip(incoming, kinds, strict=True)]
    out: list[Any] = []
    for entry, covering in zip(stored, coverings, strict=True):
        if not covering:
            out.append(entry)
            continue
        for n in covering:
            if not placed[n]:
                out.append(incoming[n])
                placed[n] = True
    out.extend(e for n, e in enumerate(incoming) if not placed[n])
    return out


def _not_theirs(ep: ElementPlan, stored: Any, incoming: Any, version: Resource) -> Any:
    """A list the writer replaces (``replace``: its list is the truth, an entry it leaves out removed) but for the
    stored entries that are not its to take away (``beside``: a rule's ``where`` matching, its ``unless`` not
    matching the incoming ``version``) -- each stays, after the writer's own entries, unless the writer states an
    entry of the rule's ``kind`` (then the writer's entries of that kind replace it) or that very entry (``key``).
    Why: the registration states its identifiers whole -- its MRN, and a corrected ID number must not leave the
    wrong one behind -- but not the numbers huren keeps on the record that are not the HIS's: the ID number the
    patient index links the person's records on, left out of an A08 that restates the MRN alone (rv38j), and a
    number another authority of the institution assigned that huren filed under the record as the institution's
    own (``adapters.convert.persons._filed_as_own``, which marks it): its next A08 or an A40 of the record dropped
    it, and another person's result under the number was then kept apart as a new record instead of refused
    (idfix38's limit, rv38j; ident39)."""
    if not isinstance(stored, list):
        return incoming
    mine = incoming if isinstance(incoming, list) else []
    left = [e for e in stored if e not in mine]  # (an A08 restating every identifier: none, nothing more to ask)
    if not left:
        return incoming
    rules = [r for r in ep.beside if r.unless is None or not r.unless.matches(version)]
    kept = [entry for entry in left if any(
        rule.where.matches(entry) and not any(_same_by_key(entry, e, rule.kind) or _same_by_key(entry, e, ep.key)
                                              for e in mine) for rule in rules)]
    return [*mine, *kept] if kept else incoming


def _same_by_key(one: Any, other: Any, key: tuple[tuple[str, ...], ...] | None) -> bool:
    """Do two entries state alike every part ``key`` names (``_key``'s reading, compared, not serialised: a few
    entries, asked once a write)? No key: never (an entry equal to another is found by equality)."""
    if key is None or not isinstance(one, dict) or not isinstance(other, dict):
        return False
    # (a top-level part, ``system``: the element itself -- a list the same as ``_collect`` spreads it)
    return all(one.get(path[0]) == other.get(path[0]) if len(path) == 1 and path[0][0] != "@"
               else _part(one, path) == _part(other, path) for path in key)


def _kind(entry: Any, key: tuple[tuple[str, ...], ...]) -> tuple[bytes | None, ...]:
    parts: list[bytes | None] = []
    for path in key:
        values = _part(entry, path)
        parts.append(fhirjson.dumps(values, sort_keys=True) if values else None)
    return tuple(parts)


def _kindless(kind: tuple[bytes | None, ...]) -> bool:
    """An entry stating no part of its kind (``_by_key``)."""
    return all(part is None for part in kind)


def _refines(new: tuple[bytes | None, ...], old: tuple[bytes | None, ...]) -> bool:
    """``new`` is of ``old``'s kind, or states a part ``old`` leaves out: every part ``old``
    states, ``new`` states alike."""
    return all(o is None or n == o for n, o in zip(new, old, strict=True))


def _said_again(entry: Any, kind: tuple[bytes | None, ...], stored: Any,
                key: tuple[tuple[str, ...], ...]) -> bool:
    """``entry`` leaves out parts of its kind that ``stored`` states, and is ``stored`` without
    them (王建国 with no use, beside the stored official 王建国)."""
    if not isinstance(entry, dict) or not isinstance(stored, dict):
        return False
    left_out = [path for path, part in zip(key, kind, strict=True) if part is None]
    if not left_out or any(len(path) != 1 for path in left_out):
        return False
    drop = {path[0] for path in left_out}
    return {k: v for k, v in stored.items() if k not in drop} == entry


def _union(stored: list[Any], incoming: list[Any], key: tuple[tuple[str, ...], ...] | None) -> list[Any]:
    """Stored entries in their order, an incoming entry replacing the stored one with its key,
    new entries appended."""
    out = list(stored)
    where = {_key(e, key): n for n, e in enumerate(out)}
    for entry in incoming:
        k = _key(entry, key)
        if k in where:
            out[where[k]] = entry
        else:
            where[k] = len(out)
            out.append(entry)
    return out


def _kept_parts(value: list[Any], stored: list[Any], parts: tuple[str, ...],
                key: tuple[tuple[str, ...], ...] | None) -> list[Any]:
    """``value``'s entries with the ``parts`` (a slice's ``keeps``) of the stored entry of the same key
    that they leave out: a thinner statement of the same entry is no delete of what it omits (an
    explicit ``""`` of a part deletes it afterwards: ``Context.delete`` of ``element.part`` where the
    entry is the one, ``_delete_part``). A replace (a FHIR client stating the whole resource) never
    comes here."""
    held = {_numeric_key(e, key): e for e in stored if isinstance(e, dict)}
    out = []
    for entry in value:
        was = held.get(_numeric_key(entry, key)) if isinstance(entry, dict) else None
        if was is not None and was is not entry:
            missing = {p: was[p] for p in parts if p in was and _thin(entry, p) and not _thin(was, p)}
            if missing:
                entry = {**entry, **missing}
        out.append(entry)
    return out


def _numeric_key(entry: Any, key: tuple[tuple[str, ...], ...] | None) -> bytes:
    """``_key`` with its numbers compared as numbers: FHIR decimals are equal whatever their precision
    (``130`` and ``130.0``), and a statement of the same value in another precision is the same entry
    for ``keeps`` -- the LIS re-formatting 130 g/L as ``130.0`` with OBX-6 empty erased the unit as if
    it were another value (rv42e HIGH 1). Only that decision ignores the precision: the entry kept is
    the incoming one, its value's text as sent (forty-second round, conv42b)."""
    return fhirjson.dumps(_numbers_alike(entry if key is None else [_part(entry, path) for path in key]),
                          sort_keys=True)


def _numbers_alike(value: Any) -> Any:
    """``value`` with each number (not a boolean) as its normalised decimal text, tagged so no string
    equals it: ``130``, ``130.0`` and ``1.3e2`` alike."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        text = value.text if isinstance(value, fhirjson.FhirDecimal) else repr(value)
        try:
            return {"#number": str(decimal.Decimal(text).normalize())}
        except decimal.InvalidOperation:
            return {"#number": text}
    if isinstance(value, dict):
        return {k: _numbers_alike(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_numbers_alike(v) for v in value]
    return value


def _thin(entry: dict[str, Any], part: str) -> bool:
    """Does ``entry`` leave ``part`` out -- absent, or a ``text`` only repeating its coding's display
    (HL7 CWE.2 sent as the code's name, ``R06^其他必要复查``: the display or its first word)?"""
    value = entry.get(part)
    if not value:
        return True
    if part != "text" or not isinstance(value, str):
        return False
    names = set()
    for c in entry.get("coding") or ():
        display = str(c.get("display") or "").strip() if isinstance(c, dict) else ""
        if display:
            names.update((display, display.split(" ", 1)[0]))
    return value.strip() in names


def _moved(stored: Resource, moved: tuple[tuple[str, Any], ...]) -> Resource:
    """``stored`` with the entries of a list element that older code stored for another element (``was``:
    the patient-birthTime on Patient.extension, before convfid27 put it on ``_birthDate``) moved into
    that element's own extensions: read and combined as though stored there (a merge-time normalisation,
    no migration pass; a version written from it stores the new shape)."""
    out: Resource | None = None
    for name, was in moved:
        for element, where in was:
            entries = stored.get(element)
            if not isinstance(entries, list):
                continue
            theirs = [e for e in entries
                      if all(any(v in values for v in _collect(e, path)) for path, values in where)]
            if not theirs:
                continue
            out = dict(stored) if out is None else out
            rest = [e for e in entries if not any(e is t for t in theirs)]
            if rest:
                out[element] = rest
            else:
                out.pop(element, None)
            own = dict(out.get(name) or {})
            have = list(own.get("extension") or ())
            own["extension"] = have + [e for e in theirs if e not in have]
            out[name] = own
    return stored if out is None else out


def _deleted(plan: TypePlan, element: str) -> list[str]:
    """The elements a delete of ``element`` names: a choice (``value[x]``, OBX-5 ``""``) is each of
    its types; and what is stated with them (``follows``: an Observation's components) goes too."""
    names = ([n for n in plan.choices if n.startswith(element[:-3])] if element.endswith("[x]")
             else [element])
    named = set(names)
    return names + [name for name, followed in plan.follows if followed & named and name not in named]


def _delete(out: Resource, incoming: Resource, element: str, where: Where) -> bool:
    """Drop from ``out`` what an explicit null deleted: the element (unless the message states it
    again, from another field), or the stored entries of the list matching ``where`` that the
    message does not state (PID-7 ``""``: the birth-time extension; the others stay; a path is read
    as a merge key's part, so ``@type`` names OBX-16's Practitioners). Whether anything stored went.
    ``parent.part`` names one part of an element (A13: ``period.end``)."""
    if "." in element:  # one part of a ``parts`` element, unless the message states that part again
        parent, part = element.split(".", 1)
        whole, again = out.get(parent), incoming.get(parent)
        if isinstance(whole, list):  # that part of the list's entries ``where`` matches (DG1-15 "": a rank)
            return _delete_part(out, parent, whole, again, part, where)
        if not isinstance(whole, dict) or part not in whole or (isinstance(again, dict) and part in again):
            return False
        out[parent] = {k: v for k, v in whole.items() if k != part}
        if not out[parent]:
            out.pop(parent)
        return True
    value = out.get(element, _MISSING)
    if value is _MISSING:
        return False
    stated = incoming.get(element)
    if not where:
        if stated is None:
            out.pop(element)
            return True
        if isinstance(value, list) and isinstance(stated, list) and value != stated:
            out[element] = list(stated)
            return True
        return False
    if not isinstance(value, list):
        return False
    again = stated if isinstance(stated, list) else []
    kept = [e for e in value if any(e == s for s in again) or not _deleted_entry(e, where)]
    if kept:
        out[element] = kept
    else:
        out.pop(element)
    return len(kept) < len(value)


def _deleted_entry(entry: Any, where: Where) -> bool:
    """Does an explicit null's ``where`` match a list's entry -- each path holding one of its values (a path read as a
    merge key's part)? The one reading of ``_delete`` and ``MergeRules.kept_beside``."""
    return all(any(v in values for v in _part(entry, tuple(path.split(".")))) for path, values in where)


def _delete_part(out: Resource, parent: str, whole: list[Any], again: Any, part: str, where: Where) -> bool:
    """Drop ``part`` from the entries of list ``parent`` that ``where`` matches, unless the message's own
    entry of that key states the part (DG1-15 ``""`` on C34.1: that diagnosis's stored rank goes, the
    one ``keeps`` held beside a thinner entry; the other diagnoses keep theirs). Whether any went."""
    paths = [(tuple(path.split(".")), values) for path, values in where]

    def matched(e: Any) -> bool:
        return isinstance(e, dict) and all(any(v in values for v in _part(e, path)) for path, values in paths)

    if any(matched(e) and part in e for e in (again if isinstance(again, list) else ())):
        return False
    gone = False
    kept = []
    for e in whole:
        if matched(e) and part in e:
            e = {k: v for k, v in e.items() if k != part}
            gone = True
        kept.append(e)
    if gone:
        out[parent] = kept
    return gone


def _writer(source: str) -> str:
    if source == API:
        return "the FHIR client"
    if source == INDEX:
        return "the patient index"
    return f"this {source} message"


def _show(value: Any) -> str:
    text = fhirjson.dumps(value).decode()
    return text if len(text) <= 120 else text[:117] + "..."


def _second_at_one_time(stored: list[tuple[str, Resource]], said: list[Resource], report: Resource,
                        issues: list[Issue]) -> None:
    """A result new to the report of the test and time of one the report lists (an OGTT's 2 h point
    re-sent alone without OBX-4: its id is the test's plain key, the stored one's adds its time, as
    it came with the other time points) is stored beside it -- two results of one test at one time,
    the report held back by the older. Nothing in the message tells the converter (ids are a
    function of the message alone); the ACK names it (ERR W), so the sender re-sends with OBX-4 or
    the report's every group. ``said``: the new results without a sub-id (OBX-4 tells a result apart:
    another result, nothing to warn of); ``stored``: the report's results the message did not carry
    (reference, stored version). One warning per new result, naming the first stored one it meets."""
    for result in said:
        for ref, other in stored:
            code, when = other.get("code"), other.get("effectiveDateTime")
            if (isinstance(code, dict) and when is not None and result.get("effectiveDateTime") == when
                    and same_concept(code, result["code"])):
                issues.append({
                    "severity": "warning", "code": "business-rule",
                    "expression": [f"{report.get('resourceType')}.result"],
                    "diagnostics": f"Observation/{result.get('id')} ({concept_label(code)} at {when}) is stored "
                                   f"beside {ref}, the report's result of that test at that time: a time point sent "
                                   "alone is told from the test's only result by OBX-4 (or send every group of the "
                                   "report)"})
                break


def _the_same_result(other: Resource, said: list[Resource], listed_codes: list[Any]) -> bool:
    """A stored result the message did not carry is one it carried said again under another id
    (OBX-4 sent only with the final result) only when nothing tells them apart: the same test, the
    same time (``effective[x]``) when both state one, and the stored report lists no other result of
    that test -- two results of one test it lists (an OGTT's time points, told apart by OBX-4 or
    their times) are two results, and each holds the report back until it is final."""
    code = other.get("code")
    if not isinstance(code, dict) or sum(1 for c in listed_codes if same_concept(code, c)) > 1:
        return False
    when = other.get("effectiveDateTime")
    for result in said:
        if same_concept(code, result["code"]):
            theirs = result.get("effectiveDateTime")
            if when is None or theirs is None or when == theirs:
                return True
    return False
