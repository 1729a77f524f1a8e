"""HL7 v2 → FHIR R4 conversion: ``convert(message, site) -> Conversion``.

Routing by MSH-9 to a message template (``mappings/hl7v2/messages/<STRUCTURE>.yaml``, run by
``templates``): the template names the message's segment groups and the resources each makes, or
hands the message to a named handler (``builders``: the ORC/OBR/OBX result families, where an
ORU^R01 or ORM^O01 goes to PACS when it carries imaging content, else to the LIS). The output is one FHIR ``transaction`` Bundle of PUTs at
deterministic ids plus a Provenance naming the source message; problems that do not stop the
conversion are ``warnings`` (HL7Error, severity W); codes and segments with no mapping are listed
in ``unmapped`` for the fidelity report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from adapters.convert import (
    applications,
    builders,  # noqa: F401  (registers the builders templates name)
    common,
    templates,
)
from adapters.convert.actors import settle_ward_names
from adapters.convert.context import Context, Filled, Holds, MemberNumber
from adapters.convert.persons import check_persons, leave_unfiled, registers_person
from adapters.convert.takeover import settle_stay, settle_takeover
from adapters.hl7v2.errors import (
    DATA_TYPE_ERROR,
    DUPLICATE_KEY_IDENTIFIER,
    REQUIRED_FIELD_MISSING,
    TABLE_VALUE_NOT_FOUND,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
    HL7Error,
)
from adapters.hl7v2.header import msh_warnings
from adapters.hl7v2.parser import Message, encoding_repaired
from adapters.hl7v2.senders import sender_institution
from adapters.hl7v2.timestamps import before, compare_times
from engine.merge_rules import LET_GO, Delete, Said, ident_type
from engine.repository.references import rewrite_references
from mappings.site import Site

__all__ = ["Conversion", "convert", "template_for"]


@dataclass
class Conversion:
    """What ``convert`` made of one message: its resources (``by_reference``, "Type/id" ->
    resource, in the order of the transaction Bundle), the institution, warnings and gaps.

    The Bundle itself is built when first asked for (``bundle``): ingest writes the resources
    and never reads the Bundle, which cost ~8 us a 12-result message to build (an entry, a
    request and a fullUrl check per resource); a replay, the CLI and the tests read it as before."""

    by_reference: dict[str, dict[str, Any]]
    institution: str
    warnings: list[HL7Error] = field(default_factory=list)
    unmapped: list[dict[str, str]] = field(default_factory=list)
    # "Type/id" of the Patient/Encounter a LIS/PACS message carries only so its bundle stands
    # alone: the ADT feed owns them, so a writer should create them when absent and otherwise
    # leave the stored (richer) version alone
    create_only: list[str] = field(default_factory=list)
    # "Type/id" → how a resource was built from a compiled plan (``plans.Planned``): validation then
    # checks only what varies between the resources of that plan
    planned: dict[str, Any] = field(default_factory=dict)
    # "Type/id" -> what the message said of the resource beside its content (``engine.merge_rules.Said``:
    # its deletes with HL7's explicit null ``""``, the elements the converter only assumed -- an
    # A08's Encounter status --, the fields that stated an element), for the merge rules
    # (``MergeRules.saying``)
    said: dict[str, Said] = field(default_factory=dict)
    # "Type/id" -> (the "Type/id" an earlier key gave it, path, value): ``Context.formerly``, for
    # ``adopt_former_ids``
    formerly: dict[str, tuple[str, str, str | Holds]] = field(default_factory=dict)
    # "Type/id" -> (identifier value, subject, where): ``Context.identified``, for ``adopt_identified``
    identified: dict[str, tuple[str, str, tuple[str, int, int]]] = field(default_factory=dict)
    # "Type/id" -> the number it is named by alone (``Filled``): ``Context.filled``, for ``adopt_filled``
    filled: dict[str, Filled] = field(default_factory=dict)
    # "MedicationDispense/id" of a pharmacy's give (RXG) -> (segment, sequence): ``Context.gives``, ``settle_gives``
    gives: dict[str, tuple[str, int]] = field(default_factory=dict)
    # "ServiceRequest/id" -> the (system, value) of its accessions whose assigner the message did not state (MSH-3
    # defaulted it, or none behind a relay): ``Context.defaulted_assigners``, ``settle_assigners``
    defaulted_assigners: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # ``Context.filler_keyed`` and ``filler_reports``, for ``settle_reused_filler``; the orders of another exam's
    # stored report under this message's filler number, which ``adopt_filled`` does not join
    filler_keyed: dict[str, str] = field(default_factory=dict)
    filler_reports: dict[str, tuple[str, tuple[str, int, int]]] = field(default_factory=dict)
    apart_orders: set[str] = field(default_factory=set)
    # "Type/id" -> (subject, stay, code, DG1-20, warning): ``Context.withdrawn``, for ``settle_withdrawn``
    withdrawn: dict[str, tuple[str, str, str, str, HL7Error]] = field(default_factory=dict)
    # "Type/id" of an order -> its ORC-5 W: ``Context.completion_warned``, for ``settle_completion``
    completion_warned: dict[str, HL7Error] = field(default_factory=dict)
    # "Type/id" of the Conditions a DG1 states -> said D of first: ``Context.restated``, for ``settle_withdrawn``
    restated: dict[str, bool] = field(default_factory=dict)
    # "Patient/id" -> the PID's sequence, of each PID's record the message names but does not correct
    # (``Context.persons``): held against the stored person by ``persons.check_persons``
    persons: dict[str, int] = field(default_factory=dict)
    # "Patient/id" -> the PID's sequence of each record an ADT A08/A31 restates (``Context.corrections``),
    # its number keyed apart (``Context.apart``), and the sending application (MSH-3), for ``check_persons``
    corrections: dict[str, int] = field(default_factory=dict)
    apart: dict[str, tuple[str, str, str, int]] = field(default_factory=dict)
    merged_apart: dict[str, tuple[str, str, str, int]] = field(default_factory=dict)  # MRG-1's (``Context``)
    # the survivors of held merges filed nowhere before (an A47's new identifier): nothing of them is filed until the
    # operator decides (``persons._merges_held``, ``persons.leave_unfiled``)
    unfiled: list[str] = field(default_factory=list)
    # (survivor, MRG-1's record, MRG, a renumbering: ``his.RENUMBERING``) (``Context``)
    merges: list[tuple[str, str, int, bool]] = field(default_factory=list)
    unlinked: list[tuple[str, str]] = field(default_factory=list)  # (record, the other an A37 names) (``Context``)
    nulled: list[tuple[str, str, str, int, int]] = field(default_factory=list)  # PID-3 ``""``s (``Context``)
    id_nulled: list[tuple[str, int, int]] = field(default_factory=list)  # PID-3 ``""^^^^NNCHN``s (``Context``)
    # records held against another member's own record of a number (``Context.members``), and the
    # records the message names under the institution's own MRN (``Context.owns``)
    members: list[MemberNumber] = field(default_factory=list)
    owns: list[tuple[str, str, int, tuple[str, ...]]] = field(default_factory=list)
    application: str = ""
    # the sending application (MSH-3) as sent, its three components: what an alias form and a declared application
    # are matched against (``applications.sends_as``, ``is_declared``; rv44a MED 1, low44b)
    sender: tuple[str, str, str] = ("", "", "")
    # the institution's declared registration applications (``institutions.yaml``
    # ``registration_applications``): any of them may restate a record another of them registered
    registrars: tuple[str, ...] = ()
    # ... and the applications whose results and orders may make a new record another record's resident ID number
    # links (``number_linking_applications``; ``persons.new_record_linked``)
    linkers: tuple[str, ...] = ()
    # an ADT event that registers a person (``persons.registers_person``): what makes its application a
    # record's registering one in a batch (an update, A08/A31, registers nothing)
    registers: bool = False
    # the writer the merge rules combine the message's resources as: its message type (MSH-9.1), as ingest writes
    # them (``persons._as_stored`` judges a record as the merge will leave it)
    writer: str = ""
    # the site (``mappings.site``), for what the settle steps ask of its data: which MSH-3s name one application
    # (``applications.sends_as``, senders.yaml ``application_aliases``)
    site: Any = field(default=None, repr=False, compare=False)
    # the changes a settle step held for the operator's decision (``persons._registrars_number``: a registration
    # from another application than the one that registered the record's ID number), each as ``held_claims`` keeps
    # it (the ingest adds them to the merge's holds: ``engine.ingest._Item.held_claims``; forty-first round, reg41)
    held: list[dict[str, Any]] = field(default_factory=list)
    # the records whose held renumbering the operator took as the number's owner's on this replay
    # (``Decision`` kind owner, the message's ``held_claims``), and whether that decision answered one
    decided_renumbers: frozenset[str] = frozenset()
    decision_answered: bool = False
    _bundle: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def settle_against_store(self, read_many: Any, search: Any, earlier: Sequence[Conversion] = (),
                             messages: Any = None, merge: Any = None) -> list[int]:
        """What the converter could not know without the store, in order (ingest asks it once, after
        converting and before validating and writing, with the repository's ``read_many`` and
        ``search``): a visit-less DG1-20's one Condition (``adopt_identified``), the order a group names by its
        filler number alone (``adopt_filled``), resources stored under
        an earlier key (``adopt_former_ids``), a DG1-21 D's stored diagnosis (``settle_withdrawn``).
        ``earlier``: the conversions of the messages before this one in its batch, settled, not written
        yet -- a D settles against the store as they leave it (dgmend26). Returns the positions in
        ``earlier`` of those its answer read (written again if one of them is not written: ingest's
        ``_write_each``). ``merge``: the repository's merge rules, by which a record is judged as the message
        leaves it (``persons._as_stored``). Raises ``HL7Error`` (nothing of the message is then written)."""
        leaned: set[int] = set(settle_documents(self, read_many, earlier)) if read_many is not None else set()
        if read_many is not None and self.said:
            # a PL sent by code alone: its place's stored name, a new bed's from its ward's (wardfix35)
            leaned.update(settle_ward_names(self, read_many, earlier))
        if self.identified and search is not None:
            adopt_identified(self, search)
        if self.filler_reports and read_many is not None:
            leaned.update(settle_reused_filler(self, read_many, search, earlier))
        if self.filled and search is not None and read_many is not None:
            leaned.update(adopt_filled(self, read_many, search, earlier))
        if self.formerly and read_many is not None:
            adopt_former_ids(self, read_many)
        if (self.persons or self.corrections or self.apart or self.merged_apart or self.members or self.owns) \
                and read_many is not None:
            # after adopt_former_ids: the records as they will be written; ``messages``: the message
            # store, whose documents name the application that registered a record
            leaned.update(check_persons(self, read_many, earlier, search, messages, merge))
        if self.registers and read_many is not None:
            # an admission over a lab's placeholder visit under its number (``takeover``, visit33)
            leaned.update(settle_takeover(self, read_many, search, messages, earlier))
        elif self.create_only and read_many is not None:
            # the lab's later result of a stay an admission took over from its record (visfix33), the
            # admission earlier in its batch too (identity34)
            leaned.update(settle_stay(self, read_many, search, messages, earlier))
        if (self.withdrawn or self.restated) and read_many is not None:
            leaned.update(settle_withdrawn(self, read_many, search, earlier))
        if self.gives and read_many is not None:
            leaned.update(settle_gives(self, read_many, earlier))
        if self.defaulted_assigners and read_many is not None:
            leaned.update(settle_assigners(self, read_many, earlier))
        if self.unfiled:  # (last: every step above read the message as converted)
            leave_unfiled(self)
        return sorted(leaned)

    def taken_back_by_write(self, written: Mapping[str, Any]) -> list[HL7Error]:
        """The warnings the message's write takes back (ingest asks it once the message is written, ``written``: each
        written resource's ``Type/id`` -> its write result): the ORC-5 Ws of orders the write left completed
        (``settle_completion``). ``warnings`` itself is left as it is -- a batch written again message by message
        asks again."""
        return settle_completion(self, written) if self.completion_warned else []

    def warn(self, warning: HL7Error) -> None:
        """A settle step's warning (ERR severity W, the message filed), as ``Context.warn`` is the converter's: each
        settle step reports through it, the severity set here, not by each step after building it. Not the only way
        into ``warnings``: the ingestor puts the segment-order warnings of ``adapters.hl7v2.sequence.judged`` (built
        with severity W there) in front of them as they are (``engine.ingest``), answered and counted as the
        converter's own."""
        warning.severity = "W"
        self.warnings.append(warning)

    @property
    def bundle(self) -> dict[str, Any]:
        """The FHIR ``transaction`` Bundle of PUTs (built once, on first use)."""
        if self._bundle is None:
            self._bundle = common.bundle(self.by_reference)
        return self._bundle

    @property
    def resources(self) -> list[dict[str, Any]]:
        """The resources in the Bundle's order (read from the Bundle once it was built: a caller
        may have changed it)."""
        if self._bundle is not None:
            return [e["resource"] for e in self._bundle["entry"]]
        return list(self.by_reference.values())


def template_for(ctx: Context) -> dict[str, Any]:
    """The message template (``mappings/hl7v2/messages/``) for MSH-9: an event's own template
    (``ADT_A41``) when its meaning differs from its structure's, else the structure's, the
    structure found through table 0354 (``event_structures.yaml``) or MSH-9.3."""
    msh = ctx.message.msh
    mtype, event = msh.message_type, msh.trigger_event
    tables = ctx.site.tables
    spec = tables.get(f"messages/{mtype}_{event}") if event else None
    if spec is None:
        structure = (tables.get("event_structures") or {}).get(f"{mtype}_{event}") or msh.value(9, comp=3)
        spec = tables.get(f"messages/{structure}") if structure else None
    if spec is not None and event and spec.get("events") and event not in spec["events"]:
        spec = None
    if spec is not None:
        return spec
    types = sorted({k.split("/", 1)[1].split("_", 1)[0] for k in tables if k.startswith("messages/")})
    if mtype in types:
        raise _unsupported_event(msh, event)
    raise HL7Error(
        f"message type {mtype} is not converted by huren (supported: {', '.join(types)})",
        segment="MSH",
        sequence=1,
        field=9,
        component=1,
        code=UNSUPPORTED_MESSAGE_TYPE,
        ack_code="AR",
    )


def _unsupported_event(msh: Any, event: str) -> HL7Error:
    return HL7Error(
        f"trigger event {msh.message_type}^{event} is not converted by huren",
        segment="MSH",
        sequence=1,
        field=9,
        component=2,
        code=UNSUPPORTED_EVENT_CODE,
        ack_code="AR",
    )


def convert(message: Message, site: Site, institution: str | None = None, application: str = "") -> Conversion:
    """Convert one parsed message for the institution that sent it: ``institution`` when the
    caller resolved it (from the listener too), else MSH-4.1 through the site's sender table.
    ``application``: MSH-3.1 when another application of the institution sent this MSH-10 first
    (``Context.message_key``). Raises ``HL7Error``."""
    msh = message.msh
    code = institution if institution is not None else sender_institution(
        msh.sending_facility or msh.value(4, comp=2), msh.sending_application, "", site
    )
    institution = site.institution(code)
    if institution is None:
        raise HL7Error(
            f"sending facility {code!r} (MSH-4.1) is not a registered institution",
            segment="MSH",
            sequence=1,
            field=4,
            component=1,
            code=TABLE_VALUE_NOT_FOUND,
            ack_code="AR",
        )
    ctx = Context(message=message, site=site, institution=institution, application=application)
    if encoding_repaired(msh):
        # the characters themselves, quoted -- not a Python repr, which doubles a backslash: the W (and its Chinese,
        # words.yaml w-escape) said MSH-2 was read as the very doubled escape it repairs (rv39f LOW 3)
        ctx.warn(HL7Error(f"MSH-2 '{msh.field(2)}' doubles the escape character; read as '{msh.enc.msh2}'",
                          segment="MSH", sequence=1, field=2, code=DATA_TYPE_ERROR))
    if message.derived_control_id:
        ctx.warn(HL7Error(f"MSH-10 (message control id) is empty; the message is known by its content "
                          f"as {msh.control_id} (an identical resend is recognised)",
                          segment="MSH", sequence=1, field=10, code=REQUIRED_FIELD_MISSING))
    for warning in msh_warnings(msh, site.tables.get("event_structures") or {}):  # MSH-7, 9.3 (hl7left28)
        ctx.warn(warning)
    spec = template_for(ctx)
    ctx.states_active = bool(spec.get("states_active"))
    templates.convert(ctx, spec)
    common.provenance(ctx)
    return Conversion(
        by_reference=ctx.resources,
        institution=code,
        warnings=ctx.warnings,
        unmapped=ctx.unmapped,
        create_only=ctx.create_only,
        planned=ctx.planned,
        said=ctx.said(),
        formerly=ctx.former,
        identified=ctx.identified,
        filled=ctx.filled,
        gives={ref: (seg.name, seg.sequence) for res, seg in ctx.gives
               for ref, made in ctx.resources.items() if made is res},
        defaulted_assigners=_defaulted_assigners(ctx),
        filler_keyed=ctx.filler_keyed,
        filler_reports=ctx.filler_reports,
        withdrawn=ctx.withdrawn,
        restated=ctx.restated,
        completion_warned=ctx.completion_warned,
        persons=ctx.persons,
        corrections=ctx.corrections,
        apart=ctx.apart,
        merged_apart=ctx.merged_apart,
        merges=ctx.merges,
        unlinked=ctx.unlinked,
        nulled=ctx.nulled,
        id_nulled=ctx.id_nulled,
        members=ctx.members,
        owns=ctx.owns,
        application=msh.application_id,
        sender=applications.sender_of(msh),
        registrars=institution.registration_applications,
        linkers=institution.number_linking_applications,
        registers=registers_person(msh.message_type, msh.trigger_event),
        writer=msh.message_type,
        site=site,
    )


def settle_documents(conversion: Conversion, read_many: Any, earlier: Sequence[Conversion] = ()) -> list[int]:
    """A DocumentReference the converter wrote without content (``pacs._report_hook``: a message
    carrying only the text lines it withdraws, OBX-11 D/W, of a report whose document a message with
    text made) is written onto the stored document only: stored -- or made by an earlier message of
    the batch -- it takes the content as left there (R4 requires one; the merge then makes its text
    the report's, ``merge.yaml`` DocumentReference ``content: text_of``); not stored, nothing states
    a document and none is written (before, the document kept the withdrawn line while the report's
    own text let it go; thirty-second round, docref32). Returns the positions in ``earlier`` read."""
    made = conversion.by_reference  # (every message asks: a first-letter test before the prefix's)
    bare = [ref for ref in made if ref[0] == "D" and ref.startswith("DocumentReference/") and "content" not in made[ref]]
    if not bare:
        return []
    stored = read_many([_key_of(ref) for ref in bare])
    drops = []
    leaned: set[int] = set()
    for ref in bare:
        was = _as_left(ref, stored.get(_key_of(ref)), earlier, leaned)
        content = was.get("content") if was is not None else None
        if content:
            doc = conversion.by_reference[ref]
            doc["content"] = content
            conversion.planned.pop(ref, None)
            # the message states none of the document but its patient: every other element it
            # carries (the converter's status ``current``, MSH-7 as its date, OBR-32 as an author,
            # the content just taken) is only assumed -- the stored one stands (a client's
            # entered-in-error, its own text, the date and author of the text); the merge takes out
            # of the text only the lines the report's merge let go (``MergeRules._text_copied``)
            said = conversion.said.get(ref) or Said()
            conversion.said[ref] = replace(said, assumed=said.assumed.union(
                k for k in doc if k not in ("resourceType", "id", "subject")))
        else:
            drops.append(ref)
    for ref in drops:
        conversion.by_reference.pop(ref, None)
        conversion.said.pop(ref, None)
        conversion.planned.pop(ref, None)
        for resource in conversion.by_reference.values():  # the message's Provenance names only what it writes
            if resource.get("resourceType") == "Provenance" and resource.get("target"):
                resource["target"] = [t for t in resource["target"] if t.get("reference") != ref]
    return sorted(leaned)


def adopt_former_ids(conversion: Conversion, read_many: Any) -> list[str]:
    """A resource whose key changed (``Context.formerly``: an encounter diagnosis keyed by patient and
    code, or by DG1-20 alone, before its stay keyed it; an SIU's Appointment keyed by SCH-2's value
    under its patient before the filler's appointment id keyed it) is the one stored under the old key
    when nothing is stored under the new one and the stored one holds the value it must (this stay;
    the Appointment: this filler's FILL identifier -- its system, or none and the same sender --, not
    another filler's same number for the patient, review of sched25): the
    conversion takes that id, and every reference, statement (``said``) and list of it follows. A
    re-sent message of a stay stored before added a second Condition of the same code to it.
    ``read_many``: the repository's (``[(type, id)]`` -> ``{(type, id): resource}``). Returns the
    references taken over (new -> old, as "new>old")."""
    formerly = conversion.formerly
    if not formerly:
        return []
    keys: list[tuple[str, str]] = []
    for new, (old, _, _) in formerly.items():
        keys += [_key_of(new), _key_of(old)]
    stored = read_many(keys)
    moves: dict[str, str] = {}
    taken = set(conversion.by_reference)
    for new, (old, path, value) in formerly.items():
        was = stored.get(_key_of(old))
        if _key_of(new) in stored or was is None or old in taken or old in moves.values():
            continue
        if callable(value):  # what a path cannot say (an entry of a list): asked (schedfix25)
            if value(was, read_many):
                moves[new] = old
            continue
        optional = path.endswith("?")  # "path?": none stored there passes too (a visit-less DG1-20, dgfix25)
        path = path.rstrip("?")
        at: Any = was
        for part in path.split(".") if path else ():
            at = at.get(part) if isinstance(at, dict) else None
        if not path or at == value or (optional and at is None):
            moves[new] = old
    if not moves:
        return []
    _take(conversion, moves)
    return [f"{new}>{old}" for new, old in moves.items()]


def _take(conversion: Conversion, moves: dict[str, str]) -> None:
    """The conversion's resources ``moves``' keys become the stored ones they name (ids, references,
    statements, lists)."""
    by_reference: dict[str, dict[str, Any]] = {}
    for ref, resource in conversion.by_reference.items():
        if ref in moves:
            resource["id"] = _key_of(moves[ref])[1]
        rewrite_references(resource, moves)
        by_reference[moves.get(ref, ref)] = resource
    conversion.by_reference.clear()
    conversion.by_reference.update(by_reference)
    conversion.said = {moves.get(ref, ref): _said_moved(said, moves) for ref, said in conversion.said.items()}
    conversion.create_only[:] = [moves.get(ref, ref) for ref in conversion.create_only]
    for ref in moves:
        conversion.planned.pop(ref, None)  # its plan's id is the new one: validated whole instead
    conversion.withdrawn = {moves.get(ref, ref): v for ref, v in conversion.withdrawn.items()}
    conversion.restated = {moves.get(ref, ref): v for ref, v in conversion.restated.items()}
    conversion.completion_warned = {moves.get(ref, ref): v for ref, v in conversion.completion_warned.items()}
    conversion.merges[:] = [(moves.get(s, s), moves.get(p, p), n, r) for s, p, n, r in conversion.merges]
    conversion.unlinked[:] = [(moves.get(r, r), moves.get(o, o)) for r, o in conversion.unlinked]
    conversion.nulled[:] = [(moves.get(r, r), *rest) for r, *rest in conversion.nulled]
    conversion.id_nulled[:] = [(moves.get(r, r), *rest) for r, *rest in conversion.id_nulled]
    conversion._bundle = None


def settle_completion(conversion: Conversion, written: Mapping[str, Any]) -> list[HL7Error]:
    """The W at ORC-5 of a group none of whose results stands (``results.status_from_report``: "ORC-5 'CM' ...
    was not stored ...", ``Conversion.completion_warned``) that its answer takes back: those of the orders the
    message's write left completed after all (``written``: each written resource's ``Type/id`` -> its write result,
    whose ``resource`` is the version stored after it, new or found unchanged; ingest asks it once the message is
    written). A later group of the message completing the order (the withdrawn HGB group's W beside the final WBC
    group's: review rv40k MED 1, kfix40); the message leaving the order as it stands, which stands completed
    already, stored or written by an earlier message of its batch (the LIS's W after its final: the final's CM
    stored; st40's LOW, stfix40) -- the message's CM would have changed nothing, and the W read to an operator as
    the order taken back. Where the order is not completed after the write the W stays: the order is not what ORC-5
    said (the W first met, the final never received; the group's X revoking it; a later group of the message
    leaving it active).

    The order's status as the merge leaves it, not as the message states it: a statement the merge holds (a third
    application's under the order's numbers, W 204 "held with it ... status") stated completed and the W was taken
    back, the order still active (review rv41e LOW 4; forty-first round, stfix41) -- one read for both cases, the
    batch's earlier messages as they were written, not as they stated it (a held one's completed had counted). Was
    one step before the write (st41), two maps before that (kfix40's ``progress_warned``, stfix40's
    ``completion_unsaid``). An order the write did not list (no repository): the message's own status of it."""
    taken: list[HL7Error] = []
    for ref, said in conversion.completion_warned.items():
        result = written.get(ref)
        order = getattr(result, "resource", None) if result is not None else conversion.by_reference.get(ref)
        if (order or {}).get("status") == "completed":
            taken.append(said)
    return taken


def settle_gives(conversion: Conversion, read_many: Any, earlier: Sequence[Conversion] = ()) -> list[int]:
    """A pharmacy's give (RXG) whose MedicationDispense -- keyed by the order and RXG-1 -- is stored (or made by
    the batch's earlier message) with another timing or another medication: stored as that give restated, with a
    W at RXG-1 (ERR-3 205) naming both. HL7 v2.5.1 4A.14.7.1 has RXG-1 (give sub-ID counter) identify the give
    within its order, so the same order and counter is the same give, and a re-sent or corrected give is stored
    over it as any restatement. But a pharmacy restarting the counter each day rewrote yesterday's 08:00 give with
    today's and said nothing (review rv43b LOW 3): the W tells the operator it happened, and what was there. The
    same timing and medication (a re-send): no word. Returns the positions in ``earlier`` read."""
    leaned: set[int] = set()
    stored = read_many([_key_of(ref) for ref in conversion.gives])
    for ref, (segment, sequence) in conversion.gives.items():
        now = conversion.by_reference.get(ref)
        was = _as_left(ref, stored.get(_key_of(ref)), earlier, leaned)
        if now is None or was is None:
            continue
        then_when, now_when = _give_time(was), _give_time(now)
        then_what, now_what = _codings(was.get("medicationCodeableConcept")), \
            _codings(now.get("medicationCodeableConcept"))
        if then_when == now_when and (then_what == now_what or not then_what or not now_what):
            continue
        conversion.warn(HL7Error(
            f"{segment}-1 (give sub-ID counter) keys the stored give of this order {ref} ({_give_text(was)}); this "
            f"give states {_give_text(now)}: stored as that give restated -- HL7 v2.5.1 has RXG-1 identify the "
            "give within its order, and a pharmacy system restarting the counter rewrites an earlier give: send "
            "each give of an order under its own RXG-1",
            segment, sequence, 1, code=DUPLICATE_KEY_IDENTIFIER))
    return sorted(leaned)


def _defaulted_assigners(ctx: Context) -> dict[str, list[tuple[str, str]]]:
    """``Context.defaulted_assigners`` by the order's reference (``Conversion.defaulted_assigners``)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for res, system, value in ctx.defaulted_assigners:
        for ref, made in ctx.resources.items():
            if made is res:
                out.setdefault(ref, []).append((system, value))
    return out


def settle_assigners(conversion: Conversion, read_many: Any, earlier: Sequence[Conversion] = ()) -> list[int]:
    """An order's accession whose assigner this message only defaulted (bare IPC-1, an OBR-18: the sending MSH-3,
    ``applications.numbering``) keeps the assigner the stored order (or the batch's earlier message) records for
    it: the identifiers union by system and value takes the incoming entry (merge.yaml), so the HIS re-sending
    the RIS's order with the accession bare -- even a message held as not the order's placer (W 204) -- had
    rewritten the assigner RIS -> HIS, and the RIS's reports by the accession alone no longer named the order
    (review rv43e MED 2). A stated assigner (IPC-1 EI-2..4) is the message's word and replaces the stored; a
    defaulted one is written only where none is recorded (an accession stored before acsn43b: the re-sent OMI
    records it). The rule is stated > defaulted > none: an accession a listed relay forwards bare goes out with no
    assigner at all (``applications.relay``) and is recorded here too, so the RIS's recorded assigner is restored
    rather than erased by the thinner entry (review rv43f MED, forty-third round, acsn43d). Returns the positions
    in ``earlier`` read (forty-third round, acsn43c)."""
    leaned: set[int] = set()
    stored = read_many([_key_of(ref) for ref in conversion.defaulted_assigners])
    for ref, accessions in conversion.defaulted_assigners.items():
        now = conversion.by_reference.get(ref)
        was = _as_left(ref, stored.get(_key_of(ref)), earlier, leaned)
        if now is None or was is None:
            continue
        kept = {(i.get("system"), i.get("value")): i["assigner"] for i in was.get("identifier") or ()
                if isinstance(i, dict) and ident_type(i) == "ACSN" and isinstance(i.get("assigner"), dict)}
        for ident in now.get("identifier") or ():
            key = (ident.get("system"), ident.get("value")) if isinstance(ident, dict) else None
            if key in accessions and key in kept and ident_type(ident) == "ACSN":
                ident["assigner"] = kept[key]
    return sorted(leaned)


def _give_time(dispense: dict[str, Any]) -> Any:
    """A give's timing as its dispense holds it (the first dosage instruction's), None when it states none."""
    return ((dispense.get("dosageInstruction") or [{}])[0] or {}).get("timing")


def _give_text(dispense: dict[str, Any]) -> str:
    """A give for the W of ``settle_gives``: its medication and its time as the dispense holds them."""
    timing = _give_time(dispense) or {}
    bounds = ((timing.get("repeat") or {}).get("boundsPeriod") or {})
    when = bounds.get("start") or next(iter(timing.get("event") or ()), None) or "no stated time"
    medication = dispense.get("medicationCodeableConcept") or {}
    coding = next(iter(medication.get("coding") or ()), {})
    return f"{coding.get('code') or medication.get('text') or 'no medication'} at {when}"


def settle_withdrawn(conversion: Conversion, read_many: Any, search: Any,
                     earlier: Sequence[Conversion] = ()) -> list[int]:
    """A DG1-21 D (``Context.withdrawn``) withdraws only a stored diagnosis it names for sure, and never
    makes a Condition (dgfix25b): the one stored under its key (by DG1-20, or by code as keyed) -- by code
    with no DG1-20 unless that one is withdrawn already --; else, by code with no DG1-20, the stay's one
    Condition of that code still standing (stored with a DG1-20: a D by code reached none and a second
    Condition was made beside it; re-added with one after a D by code: the D reached the withdrawn one);
    several -> which is meant is not said: refused (AE at DG1-21); none -> nothing deleted, nothing
    written of it, a warning (ERR W at DG1-21). The one it names also stated (A/U) in this message:
    refused as a contradiction. A DG1 stating a Condition a feed's D withdrew (``his.withdrawn_by_sender``)
    or this message's own D withdrew undoes it; anyone else's entered-in-error stays (dgmend26).

    "Stored" is the store as the batch's earlier messages leave it (``earlier``, settled, in message
    order, ``_as_left``): an A01 adding and a P12 deleting one diagnosis in one batch, or D then A across
    two of its messages, were settled against the store before the batch wrote (dgmend26). Returns the
    positions in ``earlier`` of the conversions the answer read."""
    if not (conversion.withdrawn or conversion.restated):
        return []
    from adapters.convert.his import withdrawn_by_sender

    leaned: set[int] = set()
    stored = read_many([_key_of(ref) for ref in (*conversion.withdrawn, *conversion.restated)])
    for ref, own in conversion.restated.items():
        # a diagnosis a DG1 states again after a feed's D withdrew it: listed again, and no longer
        # entered-in-error (the merge kept the stored status, which this DG1 does not state)
        was = _as_left(ref, stored.get(_key_of(ref)), earlier, leaned)
        if (_verification(was) == "entered-in-error" and ref in conversion.by_reference
                and (own or withdrawn_by_sender(was))):
            said = conversion.said.get(ref) or Said()
            conversion.said[ref] = replace(said, deletes=(*said.deletes, Delete(
                "verificationStatus", (), "DG1 states the diagnosis again: no longer entered-in-error")))
            conversion.planned.pop(ref, None)
    try:
        return _settle_deleted(conversion, stored, search, earlier, leaned)
    except HL7Error as exc:
        # refused: which earlier messages of the batch the refusal read goes with it, so a refusal
        # counting on one that is then not written is settled again (ingest ``_settled_again``, dgfix26)
        exc.leaned_on = sorted(leaned)  # type: ignore[attr-defined]
        raise


def _settle_deleted(conversion: Conversion, stored: dict[Any, Any], search: Any, earlier: Sequence[Conversion],
                    leaned: set[int]) -> list[int]:
    """``settle_withdrawn``'s DG1-21 D part (``Context.withdrawn``)."""
    from adapters.convert.his import withdrawn_by_sender

    moves: dict[str, str] = {}
    drops: list[str] = []
    for ref, (subject, stay, code, ident, warning) in conversion.withdrawn.items():
        now = _as_left(ref, stored.get(_key_of(ref)), earlier, leaned)
        by_code = bool(stay and code and not ident and search is not None)
        where = {"segment": warning.segment, "sequence": warning.sequence, "field": 21}
        if _verification(now) == "entered-in-error" and not withdrawn_by_sender(now):
            # withdrawn by someone else (a coder over FHIR): the D lands on it, as on the base (it is
            # entered-in-error still; the feed's D makes the withdrawal its own: its A then undoes it,
            # dgmend26) -- it does not go on to the stay's other Condition of that code, which the sender
            # never deleted (review rvrvdg26, dgfix26); the sender is told it was withdrawn already
            conversion.warn(HL7Error(
                "DG1-21 D (diagnosis action code: delete): the diagnosis it names was entered-in-error already, "
                "not by this sender; it stays so", **where, code=TABLE_VALUE_NOT_FOUND))
            continue
        if now is not None and not (by_code and withdrawn_by_sender(now)):
            continue
        found = _standing(subject, stay, code, earlier, leaned, search) - {ref} if by_code else set()
        if len(found) > 1 and now is not None:
            # the one under its key withdrawn by the feed already (a repeated D): an AA changing
            # nothing, as on the base -- not a refusal for the stay's other ones (dgfix26)
            continue
        if len(found) > 1:
            raise HL7Error(f"DG1-21 D (diagnosis action code: delete) of {code!r} by its code: the visit holds "
                           f"{len(found)} diagnoses of that code; which one is meant is not said -- send its "
                           "DG1-20 (diagnosis identifier); nothing was stored", **where,
                           code=DUPLICATE_KEY_IDENTIFIER)
        if found:
            old = next(iter(found))
            if old in conversion.by_reference:
                raise HL7Error("DG1-21 D (diagnosis action code: delete): the diagnosis it deletes is stated "
                               "(A/U) in this message too; which one stands is not said; nothing was stored",
                               **where, code=TABLE_VALUE_NOT_FOUND)
            moves[ref] = old
        elif now is None:
            drops.append(ref)
            conversion.warn(warning)
        # (else: the one under its key, withdrawn already and none of that code standing -- as before)
    for ref in drops:
        conversion.by_reference.pop(ref, None)
        conversion.said.pop(ref, None)
        conversion.planned.pop(ref, None)
        conversion.withdrawn.pop(ref, None)
        conversion.create_only[:] = [r for r in conversion.create_only if r != ref]
    if drops:  # the message's Provenance names only what it writes
        gone = set(drops)
        for ref, resource in conversion.by_reference.items():
            if ref.startswith("Provenance/") and resource.get("target"):
                resource["target"] = [t for t in resource["target"] if t.get("reference") not in gone]
                conversion.planned.pop(ref, None)
    if moves:
        _take(conversion, moves)
    conversion._bundle = None
    return sorted(leaned)


def _standing(subject: str, stay: str, code: str, earlier: Sequence[Conversion], leaned: set[int],
              search: Any) -> set[str]:
    """The stay's Conditions of ``code`` a feed's converter made (``ids.huren_form``: not a clinician's own
    record) and not entered-in-error, as stored and as the batch's earlier messages leave them."""
    from engine.repository.ids import huren_form
    from engine.repository.search import escape_value

    seen: dict[str, dict[str, Any] | None] = {
        f"Condition/{r.get('id')}": r for r in search("Condition", [("encounter", escape_value(stay))]).resources}
    for c in earlier:
        for ref, res in c.by_reference.items():
            if ref.startswith("Condition/") and (res.get("encounter") or {}).get("reference") == stay:
                seen.setdefault(ref, None)
    found: set[str] = set()
    for ref, r in seen.items():
        r = _as_left(ref, r, earlier, leaned)
        if (r is not None and huren_form(_key_of(ref)[1])
                and (r.get("subject") or {}).get("reference") == subject
                and (r.get("encounter") or {}).get("reference") == stay
                and _verification(r) != "entered-in-error"
                and any(c.get("code") == code for c in (r.get("code") or {}).get("coding") or ())):
            found.add(ref)
    return found


def _as_left(ref: str, was: dict[str, Any] | None, earlier: Sequence[Conversion],
             leaned: set[int]) -> dict[str, Any] | None:
    """Resource ``ref`` (stored: ``was``) as the batch's earlier conversions leave it, in message order --
    as far as a DG1-21 D reads it: there or not, and the top-level elements, each written one replacing
    the stored (a create-only one leaving a stored one alone), a ``verificationStatus`` its message
    deletes (``said``) gone; its identifiers those stored and those written, as the merge keeps them (an order
    named by the filler number alone states its FILL only: the placer number it holds is still its own, xofix41c).
    The positions of the conversions that write it go to ``leaned``."""
    for i, c in enumerate(earlier):
        res = c.by_reference.get(ref)
        if res is None:
            continue
        leaned.add(i)
        if was is not None and ref in c.create_only:
            continue
        left = {**(was or {}), **res}
        if was and "identifier" in res:
            left["identifier"] = _identifiers(was, res)
        said = c.said.get(ref)
        if ("verificationStatus" not in res and said is not None
                and any(d.element == "verificationStatus" and not d.where for d in said.deletes)):
            left.pop("verificationStatus", None)
        was = left
    return was


def _identifiers(was: dict[str, Any], res: dict[str, Any]) -> list[Any]:
    """The identifiers of a stored resource ``was`` that a version ``res`` written over it leaves: ``res``'s, and
    the stored ones of another system and value (the merge adds a statement's identifiers to the stored ones)."""
    have = [i for i in res.get("identifier") or () if isinstance(i, dict)]
    said = {(i.get("system"), i.get("value")) for i in have}
    return [*have, *(i for i in was.get("identifier") or ()
                     if isinstance(i, dict) and (i.get("system"), i.get("value")) not in said)]


def adopt_identified(conversion: Conversion, search: Any) -> None:
    """A visit-less DG1-20 (``Context.identified``: an A28/A31 naming diagnosis D-7) names the patient's
    Condition of that id whichever stay keyed it (v2.5.1 6.5.2.20: unique for an encounter; the message
    names none): exactly one stored -> it is that one (``formerly`` with no path, taken by
    ``adopt_former_ids``); none -> a new visit-less one; several (one per stay) -> which is meant is not
    said: refused, an HL7 error at DG1-20 (AE), nothing written. ``search``: the repository's
    (``(type, [(name, value)])`` -> a result with ``resources``). Twenty-fifth round, dgfix25."""
    from engine.repository.search import escape_value

    for new, (value, subject, (segment, sequence, fno)) in conversion.identified.items():
        rtype = new.split("/", 1)[0]
        found = {r.get("id") for r in search(rtype, [("identifier", escape_value(value))]).resources
                 if (r.get("subject") or {}).get("reference") == subject
                 and any(isinstance(i, dict) and i.get("value") == value for i in r.get("identifier") or ())}
        found.discard(None)
        if len(found) > 1:
            raise HL7Error(f"DG1-20 (diagnosis identifier) {value!r} with no visit (PV1-19) names {len(found)} "
                           "stored diagnoses of this patient, one per stay: which one is meant is not said; send "
                           "it with its visit", segment, sequence, fno, code=DUPLICATE_KEY_IDENTIFIER)
        if len(found) == 1 and (old := f"{rtype}/{next(iter(found))}") != new:
            conversion.formerly[new] = (old, "", "")


def adopt_filled(conversion: Conversion, read_many: Any, search: Any, earlier: Sequence[Conversion] = ()) -> list[int]:
    """An order group naming its order by the filler's number alone (``Context.filled``: ORC-2/OBR-2 empty, ORC-3
    or OBR-3 valued -- the EMR's XO under the LIS's accession, the lab's SC or report) is a statement of the order
    of this patient that holds that number (its FILL identifier: the filler application's system and the value; or
    its accession, IPC-1/OBR-18 -- ``_names_the_order``, forty-third round), whichever number keyed it: HL7 v2.5.1
    4.5.1.3, the filler order number identifies the order as the placer's does (4.5.1.2). Keyed by the filler's
    number, the group made a second order holding the accession -- with a third application's withdrawal of the
    re-test reason on it -- and a later message under the number alone could file to either (review rv40h MED 7).
    Now it takes that order's id (``_take``, as ``adopt_former_ids`` does), and the merge judges it as any
    statement of the order (``results._not_the_orders``: an XO by the placer number
    the order holds, ``MergeRules._its_number``).

    The order is the patient's (``subject`` the same record: orders are filed under the sender's institution's
    record, so another member's order is never found -- ofix40's rule), found in the store (``search``) and in
    this batch's earlier conversions as they leave it (a batch decides as one by one; their positions are
    returned: ``settle_against_store``). An order stored under the group's own key stays the one (an order the
    filler's result made under its number alone, ofix40 MED 4: not joined to the placer's); so does an order of
    this message. Of several, those not let go (``merge_rules.LET_GO``: revoked, entered in error -- an RP's old
    order beside its replacement under the one accession) count, then those coded as the group's test (one
    accession for two tests of a slip); still several: which is meant is not said -- the group keeps its own key,
    and a W at the number says so (ERR-3 205)."""
    moves: dict[str, str] = {}
    leaned: set[int] = set()
    for new, filled in conversion.filled.items():
        value, subject, (segment, sequence, fno) = filled.value, filled.subject, filled.where
        rtype = new.split("/", 1)[0]
        if new not in conversion.by_reference or read_many([_key_of(new)]) \
                or any(new in c.by_reference for c in earlier):
            continue  # (stored under its own key, or made so earlier in the batch: that one)
        made = conversion.by_reference[new]
        found = _holders_found(rtype, filled, search)
        holding = {ref for ref, r in found.items() if _names_the_order(r, filled, made)}
        for i, c in enumerate(earlier):  # (as the batch leaves them: an earlier message's version over the store's)
            for ref, resource in c.by_reference.items():
                if not ref.startswith(f"{rtype}/"):
                    continue
                claims = _claims_number(resource, c.said.get(ref), filled, made)
                if ref in found or claims:
                    found[ref] = {**found.get(ref, {}), **resource}
                    holding.update((ref,) if claims else ())
                    leaned.add(i)
        mine = [ref for ref, r in found.items()
                if ref != new and ref in holding and ref not in conversion.by_reference and ref not in moves.values()
                and ref not in conversion.apart_orders  # (another exam's, whose report holds the number: keyed apart)
                and (r.get("subject") or {}).get("reference") == subject]
        held = [ref for ref in mine if found[ref].get("status") not in LET_GO] or mine
        if len(held) > 1:
            codes = _codings(made.get("code"))
            held = [ref for ref in held if codes & _codings(found[ref].get("code"))] or held
        if len(held) == 1:
            moves[new] = held[0]
        elif held:
            conversion.warn(HL7Error(
                f"{segment}-{fno} (filler order number) {value!r} with no placer number names {len(held)} orders of "
                "this patient (none cancelled, each coded as this one or none so): which one is meant is not said; "
                "the message's order is stored under the filler number alone -- send it with its placer number",
                segment, sequence, fno, code=DUPLICATE_KEY_IDENTIFIER))
    if moves:
        _take(conversion, moves)
    return sorted(leaned)


def settle_reused_filler(conversion: Conversion, read_many: Any, search: Any = None,
                         earlier: Sequence[Conversion] = ()) -> list[int]:
    """A report keyed by its filler number (``results.report_key``: OBR-3, within the sender) whose stored report
    under that key is *another order's* is keyed apart -- the report, its results, specimens and the imaging study
    keyed under the number (``Context.filler_keyed``), and an order keyed by the number alone if it is that exam's --
    and a W at OBR-3 says so (ERR-3 205); that exam's orders are not joined (``adopt_filled``, ``apart_orders``).
    HL7 v2.5.1 4.5.1.3 makes the filler number unique within the filler, but a RIS's accession counter restarts: the
    report of 2026 under the accession of a 2024 exam of the same patient was filed as the 2024 report -- its
    conclusion and results overwritten, AA, no word (review rv41d HIGH 4). Another patient record's stored report is
    left to the merge's subject rule, which refuses the message (placer19) -- unless the message names her own order
    by its placer number: then which exam it is is told, and it is keyed apart as for one patient (rv42a MED 1).

    Split only on evidence of another ORDER (a wrong answer is worse than no answer, rv41k): the stored report is
    based on an order with another placer number (PLAC) than the order this report names, and that order does not
    replace it (an RO's replacement under the accession the filler keeps is the same exam: one report). Time is no
    evidence: a RIS stamping OBR-7 with the report's time corrects a report months later (OBR-25 C), and a month-only
    or ill-formed OBR-7 tells nothing (rv41k HIGH 1, 4, MED 5). The order this report names: by its placer number,
    its own; by the filler number alone, the order holding the number as ``adopt_filled`` finds it, of several the
    newest (``_order_holding``) -- the filler's counter names its latest exam, so the 2026 exam's own correction by
    the accession alone updates the 2026 report (rv41k HIGH 2) -- unless the message restates the exam of one of
    the reports under the number, the stored one under its key or one filed apart on another order holding it
    (``_restated``: its OBR-7 that exam's time at the precision stated, or a C/A where the newest order has no report
    to correct and one is stored), which it then is (rv41o HIGH 1-3: a late 2024 correction overwrote the 2026
    report; rv42a HIGH 1: the 2025 one's overwrote the 2024 or 2026 report); where two are told, refused (AE at
    OBR-3). Only the order chosen is joined (``apart_orders``: the others holding the number). Nothing told -- no
    order of another placer number -- it is the stored report, as before; but a final over the stored final stating
    another exam time, or no instant of it and another conclusion (``_not_told``), is refused, AE at OBR-3 asking
    for the placer number (rv41o HIGH 4, MED 1: filed over it, the 2024 order carried the 2026 finding); over a
    stored preliminary, another exam time is filed with a W (rv42a MED 3). The new keys are the old ones with the new order's placer
    numbers added, however the message names it: a replay and a correction key the same. The stored report and
    orders are read as the batch's earlier messages leave them; their positions are returned."""
    leaned: set[int] = set()
    moves: dict[str, str] = {}
    mine = [ref for ref in conversion.filler_reports if ref in conversion.by_reference]
    stored = read_many([_key_of(ref) for ref in mine]) if mine else {}
    for ref in mine:
        key, (segment, sequence, fno) = conversion.filler_reports[ref]
        was = _as_left(ref, stored.get(_key_of(ref)), earlier, leaned)
        if was is None:
            continue
        report = conversion.by_reference[ref]
        subject = (report.get("subject") or {}).get("reference")
        another = (was.get("subject") or {}).get("reference") != subject
        theirs = _based_on(was)
        ours = _based_on(report)
        if another and not _placers(*(conversion.by_reference.get(o) for o in ours)):
            continue  # (another patient's report under the number, no order told: merge.yaml's subject rule refuses)
        named = {o: o for o in ours}  # this message's order -> the order it names (by the number alone: the holder)
        for o in ours:
            made = conversion.by_reference.get(o)
            if made is not None and not _placers(made) and o in conversion.filled and search is not None:
                holder, held = _order_holding(conversion, o, search, earlier, leaned)
                stating = _restated(conversion, ref, key, was, report, theirs, held, holder, read_many, earlier,
                                    leaned)
                if stating == "":  # (the stored report under the number is the one, its order too)
                    conversion.apart_orders.update(set(held) - theirs)
                    continue
                named[o] = stating or holder or o
                if named[o] in held:  # (the one order the message names: the others are not joined, adopt_filled)
                    conversion.apart_orders.update(set(held) - {named[o]})
        meant = set(named.values())
        # (the orders read only where the two reports name different ones: a report re-sent names its own)
        wanted = sorted({*theirs, *meant}) if theirs and meant and not theirs & meant else []
        got = read_many([_key_of(o) for o in wanted]) if wanted else {}
        orders = {o: _as_left(o, got.get(_key_of(o)), earlier, leaned) for o in wanted}
        if another and any(((orders.get(o) or {}).get("subject") or {}).get("reference") not in (None, subject)
                           for o in ours):
            continue  # (the order it names is stored as another patient's too: the subject rules refuse it)
        for o, name in named.items():  # (this message's order as it states it, what it replaces as stored too)
            made = conversion.by_reference.get(o)
            if made is not None and (name == o or not orders.get(name)):
                kept = {**(orders.get(name) or {}), **made}
                replaces = [*((orders.get(name) or {}).get("replaces") or ()), *(made.get("replaces") or ())]
                orders[name] = {**kept, "replaces": replaces} if replaces else kept
        old, new = _another_order(theirs, meant, orders)
        value = key.rsplit("|", 1)[-1]
        if not new:  # (told only where the message names its order by the number alone: by a placer, it is told)
            told, final = ("", True) if _placers(*(conversion.by_reference.get(o) for o in ours)) \
                else _not_told(was, report, _digits(conversion, ref))
            if told:
                if not old and theirs:  # (the stored report's orders, read for the text only)
                    got = read_many([_key_of(o) for o in sorted(theirs)])
                    old = _placers(*(_as_left(o, got.get(_key_of(o)), earlier, leaned) for o in theirs))
                stored_as = _named(old or _placers(*(orders.get(o) for o in theirs)))
                if not final:  # (over a preliminary: its final may restamp the exam time -- filed, with a word)
                    conversion.warn(HL7Error(
                        f"{segment}-{fno} (filler order number) {value!r} keys the stored preliminary report of "
                        f"{stored_as} ({told}): this final names no order (OBR-2/ORC-2 empty, no other order holding "
                        "the number) -- it is filed as that exam's final; another exam's report under a reused "
                        "number is sent with its placer number (OBR-2)", segment, sequence, fno,
                        code=DUPLICATE_KEY_IDENTIFIER))
                    continue
                raise HL7Error(
                    f"{segment}-{fno} (filler order number) {value!r} keys the stored final report of "
                    f"{stored_as} ({told}): this final names no "
                    "order (OBR-2/ORC-2 empty, no other order holding the number), so whether it is that exam's or "
                    "another's under a reused number is not told -- not filed; send it with its placer number "
                    "(OBR-2), or as a correction (OBR-25 C) of that exam", segment, sequence, fno,
                    code=DUPLICATE_KEY_IDENTIFIER)
            continue
        for made, made_key in conversion.filler_keyed.items():
            if made not in conversion.by_reference or made in moves:
                continue
            rtype = made.split("/", 1)[0]
            if rtype == "ServiceRequest" and made not in theirs:
                continue  # (this message's own order: keyed by it, not the report's number)
            if made_key == key or made_key.startswith(f"{key}|"):
                moves[made] = _apart(conversion, rtype, made_key, new)
        conversion.apart_orders.update(theirs)
        conversion.warn(HL7Error(
            f"{segment}-{fno} (filler order number) {value!r} keys the stored report of another exam ({_named(old)}; "
            f"this report's is {_named(new)}, which does not replace it): this report is filed as that order's report, "
            "the stored one left as it was", segment, sequence, fno, code=DUPLICATE_KEY_IDENTIFIER))
    if moves:
        _take(conversion, moves)
    return sorted(leaned)


def _order_holding(conversion: Conversion, order: str, search: Any, earlier: Sequence[Conversion],
                   leaned: set[int]) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """The order a message naming its order by the filler number alone (``order``, keyed by the number) means, for
    ``settle_reused_filler``: of this patient's orders holding the number (``_names_the_order``: FILL, or the
    accession) as ``adopt_filled`` finds them,
    those not let go, then of those still active, the newest (``authoredOn``, ORC-9) -- a filler's number names its
    latest exam while the counter has not passed it again; None where none holds it or the newest is not one. With
    it, all of this patient's orders holding the number (``ServiceRequest/id`` -> the order as the batch leaves
    it), whatever their status: a report stored apart on a completed one may be the one the message restates
    (``_restated``)."""
    filled, made = conversion.filled[order], conversion.by_reference.get(order)
    subject = filled.subject
    found = _holders_found("ServiceRequest", filled, search)
    for i, c in enumerate(earlier):  # (as the batch leaves them: an earlier message's version over the store's)
        for ref, resource in c.by_reference.items():
            if ref.startswith("ServiceRequest/") and (ref in found or _claims_number(resource, c.said.get(ref),
                                                                                     filled, made)):
                prior = found.get(ref)
                found[ref] = {**(prior or {}), **resource}
                if prior and "identifier" in resource:  # (the placer number the order holds stays its own)
                    found[ref]["identifier"] = _identifiers(prior, resource)
                leaned.add(i)
    holding = {ref: r for ref, r in found.items() if ref != order and _names_the_order(r, filled, made)
               and (r.get("subject") or {}).get("reference") == subject}
    held = {ref: r for ref, r in holding.items() if r.get("status") not in LET_GO} or holding
    held = {ref: r for ref, r in held.items() if r.get("status") in ("active", "on-hold", "draft")} or held
    if len(held) <= 1:
        return next(iter(held), None), holding
    when = {ref: _instant(r.get("authoredOn")) for ref, r in held.items()}
    if any(w is None for w in when.values()):
        return None, holding
    newest = max(when.values())
    last = [ref for ref, w in when.items() if w == newest]
    return (last[0] if len(last) == 1 else None), holding


def _restated(conversion: Conversion, ref: str, key: str, was: dict[str, Any], report: dict[str, Any],
              theirs: set[str], held: dict[str, dict[str, Any]], holder: str | None, read_many: Any,
              earlier: Sequence[Conversion], leaned: set[int]) -> str | None:
    """Which stored report under the number a report naming its order by the filler number alone states the exam
    of, for ``settle_reused_filler``: "" the one under the number's own key (``was``, based on ``theirs``), an
    order's reference (of ``held``, the patient's orders holding the number) the report filed apart on that order
    (``_apart``: the key with its placer numbers), None where none is told (then the newest order's, ``holder``).

    Of ALL the reports under the number, the one whose exam time (OBR-7) the message states -- the same time at
    the coarser precision of the two (``compare_times``: identity, not an elapsed time; a date is any time of that
    day): an interface replay under a new MSH-10, a late correction restating its exam. Compared with the first
    exam's report alone, the 2025 exam's correction under an accession reused for 2024, 2025 and 2026 overwrote
    the 2024 or the 2026 report (review rv42a HIGH 1). Of two or more stating it: which is not told -- refused
    (AE 205 at OBR-3; the raw message kept). None stating it: a correction or addendum (OBR-25 C/A) corrects what
    was stated -- where the newest holder has no report to correct, the one stored report (rv41o HIGH 1-3: by "the
    newest" it overwrote the 2026 report); where two or more are stored and none is the newest's, which is not
    told -- refused. The message's time is compared at the precision it stated (``_digits``: an OBR-7 of minutes
    is written with ``:00`` seconds, and read as another exam it was filed as the newest's, rv42c HIGH 1, MED 1).
    None stating it, an exam observed a day before the newest order was placed (``timestamps.before``, its
    ``authoredOn``) is not that order's -- refused; and a report stating no exam time but a stored report's
    conclusion, the newest order unreported, is a re-send or the newest's own normal report, which is not told --
    refused: filed as the newest's, its unread exam would show as reported (rv42c HIGH 1, LOW 1; forty-second
    round, acc42)."""
    (segment, sequence, fno), value = conversion.filler_reports[ref][1], key.rsplit("|", 1)[-1]
    rtype = ref.split("/", 1)[0]
    apart = {h: _apart(conversion, rtype, key, placers) for h, r in held.items()
             if h not in theirs and (placers := _placers(r))}
    got = read_many([_key_of(a) for a in apart.values()]) if apart else {}
    filed = {h: r for h, a in apart.items() if (r := _as_left(a, got.get(_key_of(a)), earlier, leaned)) is not None}
    now, digits = _effective(report), _digits(conversion, ref)
    stating = [h for h, r in {"": was, **filed}.items()
               if compare_times(_effective(r), now, None, digits) in ("same", "within")]
    if len(stating) == 1:
        return stating[0]
    ask = ("send it with its placer number (OBR-2)", segment, sequence, fno)
    exams = "; ".join(f"{_named(_placers(*(held.get(o) for o in theirs)) if h == '' else _placers(held[h]))}, "
                      f"observed {_effective({'': was, **filed}[h])}" for h in (stating or ["", *filed]))
    if stating:
        raise HL7Error(f"{segment}-{fno} (filler order number) {value!r} with no placer number states the exam time "
                       f"{now} of {len(stating)} stored reports under the number ({exams}): which exam it reports is "
                       f"not told -- not filed; {ask[0]}", *ask[1:], code=DUPLICATE_KEY_IDENTIFIER)
    placed = str((held.get(holder) or {}).get("authoredOn") or "") if holder is not None else ""
    if placed and before(now, placed, digits):
        raise HL7Error(f"{segment}-{fno} (filler order number) {value!r} with no placer number states the exam time "
                       f"{now}, a day before the newest order holding the number was placed "
                       f"({_named(_placers(held[holder]))}, ordered {placed}), and no stored report under the number "
                       f"was observed then ({exams}): an exam observed before its order is not that order's -- not "
                       f"filed; {ask[0]}", *ask[1:], code=DUPLICATE_KEY_IDENTIFIER)
    told = report.get("conclusion")
    if (not now and told and report.get("status") not in ("corrected", "amended") and holder is not None
            and holder not in theirs and holder not in filed
            and any(r.get("conclusion") == told for r in {"": was, **filed}.values())):
        raise HL7Error(f"{segment}-{fno} (filler order number) {value!r} with no placer number states no exam time "
                       f"(OBR-7) and the conclusion of a stored report under the number ({exams}), while the newest "
                       f"order holding it ({_named(_placers(held[holder]))}) has no report: a re-send of that report "
                       f"or the newest exam's own, which is not told -- not filed (filed as the newest exam's, its "
                       f"unread exam would show as reported); {ask[0]}", *ask[1:], code=DUPLICATE_KEY_IDENTIFIER)
    if (report.get("status") not in ("corrected", "amended") or holder is None or holder in theirs
            or holder in filed or not _placers(held[holder])):
        return None
    if filed:
        raise HL7Error(f"{segment}-{fno} (filler order number) {value!r} with no placer number corrects a report "
                       f"(OBR-25 {report.get('status')}) observed {now or 'at no stated time'}, no stored report's "
                       f"exam time, and {len(filed) + 1} reports are stored under the number ({exams}), none the "
                       f"newest order's: which it corrects is not told -- not filed; {ask[0]}", *ask[1:],
                       code=DUPLICATE_KEY_IDENTIFIER)
    return ""


def _apart(conversion: Conversion, rtype: str, key: str, placers: set[str]) -> str:
    """The reference a resource keyed by the filler number (``key``) takes when filed apart on the order of
    ``placers`` (``settle_reused_filler``): the key with the placer numbers -- a replay and a correction key the
    same, however the message names the order."""
    from engine.repository.ids import deterministic_id

    return f"{rtype}/{deterministic_id(conversion.institution, rtype, key + '|' + '|'.join(sorted(placers)))}"


def _instant(when: Any) -> datetime | None:
    """An order's ``authoredOn`` as an instant (a date-only one at its start, UTC), for the newest holder of a
    number; None when none or unreadable (a month-only one too). A report's exam time is compared at its own
    precision instead (``compare_times``: a date names no instant, rv42a MED 4)."""
    try:
        moment = datetime.fromisoformat(str(when)) if when else None
    except ValueError:
        return None
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _based_on(report: dict[str, Any]) -> set[str]:
    """The orders (``ServiceRequest/id``) a report is based on."""
    return {str(b["reference"]) for b in report.get("basedOn") or ()
            if isinstance(b, dict) and str(b.get("reference") or "").startswith("ServiceRequest/")}


def _placers(*orders: dict[str, Any] | None) -> set[str]:
    """The placer numbers (PLAC identifiers, ``system|value``) of ``orders``."""
    return {f"{i.get('system')}|{i.get('value')}" for order in orders if order
            for i in order.get("identifier") or () if isinstance(i, dict) and ident_type(i) == "PLAC"}


def _named(placers: set[str]) -> str:
    """Placer numbers as the sender knows them (``value^system``), for a W's text; never an internal id."""
    return ("the order of placer number " + ", ".join(sorted(p.rpartition("|")[2] for p in placers))
            if placers else "an order of no placer number")


def _digits(conversion: Conversion, ref: str) -> int | None:
    """The precision this message stated its report's exam time (OBR-7) at where its FHIR text writes more -- an
    hour or a minute, written with ``:00`` seconds (``Said.digits``); None: as written."""
    said = conversion.said.get(ref)
    if said is None:
        return None
    return said.digits_of("effectiveDateTime") or said.digits_of("effectivePeriod.start")


def _effective(report: dict[str, Any]) -> str:
    """A report's observation time as stored (``effectiveDateTime``, else its period's start), "" when none."""
    return str(report.get("effectiveDateTime") or (report.get("effectivePeriod") or {}).get("start") or "")


def _another_order(theirs: set[str], ours: set[str], orders: dict[str, dict[str, Any] | None]) -> tuple[set[str],
                                                                                                         set[str]]:
    """The placer numbers of the stored report's orders and of this report's, where this one's are another order's
    (none shared, and this order not replacing the stored one); (the stored one's, empty) where nothing says so."""
    old = _placers(*(orders.get(o) for o in theirs))
    if not (theirs and ours and not theirs & ours):
        return old, set()
    new = _placers(*(orders.get(o) for o in ours))
    replaced = {str(r.get("reference")) for o in ours for r in (orders.get(o) or {}).get("replaces") or ()
                if isinstance(r, dict)}
    return (old, new) if old and new and not old & new and not theirs & replaced else (old, set())


def _not_told(was: dict[str, Any], report: dict[str, Any], digits: int | None = None) -> tuple[str, bool]:
    """Where a final report (OBR-25 F) naming no order over the stored report under the number may be another
    exam's, which nothing else in the message tells: the two times (for the text) and whether the stored one is a
    final; ("", True) otherwise. Over a stored final (F, C, A): it states another exam time (OBR-7, compared at the
    coarser precision of the two, the message's as it stated it: ``compare_times``, ``digits``), or no instant of
    it -- none, an unreadable one, or a date
    agreeing with the stored time, which names no instant (review rv42a MED 4) -- and another conclusion: refused
    (rv41o HIGH 4, MED 1: filed over the stored final, the 2024 order carried the 2026 finding). Over a stored
    preliminary (P; registered, partial): only another exam time, and it is filed with a W -- a final restamping
    OBR-7 with its own time is the RIS's ordinary P -> F, and its conclusion may differ (rv42a MED 3: filed with no
    word). The same instant, or no instant and the same conclusion: a re-send. A correction or addendum (C/A)
    restates or restamps the exam's time: it is the stored report's."""
    if report.get("status") != "final":
        return "", True
    then, now = _effective(was), _effective(report)
    compared = compare_times(then, now, None, digits)
    text = f"observed {then or 'at no stated time'}, this report {now or 'at no stated time'}"
    if was.get("status") in ("registered", "partial", "preliminary"):
        return (text, False) if compared == "other" else ("", True)
    if was.get("status") not in ("final", "corrected", "amended") or compared == "same":
        return "", True
    if compared == "other" or (was.get("conclusion") or "") != (report.get("conclusion") or ""):
        return text, True
    return "", True


def _holds(order: dict[str, Any], system: str, value: str) -> bool:
    """Whether ``order`` holds ``system``/``value`` as its FILL identifier (v2 0203; an ACSN: ``_by_accession``)."""
    return any(isinstance(i, dict) and i.get("system") == system and i.get("value") == value
               and ident_type(i) == "FILL" for i in order.get("identifier") or ())


def _holders_found(rtype: str, filled: Filled, search: Any) -> dict[str, dict[str, Any]]:
    """The stored orders (``Type/id`` -> the order) that may hold the number a message names its order by alone
    (``filled``): under its FILL identifier or the sender's accession of the same value -- one search, the two
    tokens as alternatives (FHIR's comma); ``_names_the_order`` judges each."""
    from engine.repository.search import token_value

    tokens = f"{token_value(filled.system, filled.value)},{token_value(filled.accession, filled.value)}"
    return {f"{rtype}/{r.get('id')}": r for r in search(rtype, [("identifier", tokens)]).resources}


def _names_the_order(order: dict[str, Any], filled: Filled, made: dict[str, Any] | None) -> bool:
    """Whether ``order`` holds the number a group names its order by alone (``filled``; ``made``: the order the
    group made under it) -- the one test ``adopt_filled`` and ``settle_reused_filler`` (``_order_holding``) ask.

    Its FILL identifier (v2 0203), or its accession (ACSN, IPC-1 / OBR-18 under the sender's
    ``accession_system``) of that value. HL7 v2.5.1 keeps the two apart (ORC-3/OBR-3 the filler order number,
    4.5.1.3; IPC-1 the accession identifier, 4.5.6.1), but both are the filler's: IHE RAD Scheduled Workflow has
    the Department System Scheduler / Order Filler (the RIS) assign the accession to the imaging service request
    it fills, and a RIS reports the exam under it in OBR-3. Read as a FILL only, the report's group made a second
    order of hers keyed by the number and the OMI's order never saw its report (review rv42d MED 3, omi42). The
    accession names the order where the message is an imaging one or the group is coded as the order's test: a
    LIS's specimen number of the same value (two counters of one hospital, both by date) is not the imaging
    order's. And only from the application that assigned it (``_by_accession``: review rv43b HIGH 1)."""
    if _holds(order, filled.system, filled.value):
        return True
    return _by_accession(order, filled, made)


def _by_accession(order: dict[str, Any], filled: Filled, made: dict[str, Any] | None) -> bool:
    """Whether ``order`` holds the number as its accession and the message may name it so (``_names_the_order``).

    An accession is the number of the application that assigned it (``applications.assigned_by``: IPC-1's
    assigning authority, else the OMI's MSH-3), not of the institution: a hospital's imaging fillers -- the RIS,
    the ultrasound department's system, endoscopy, ECG -- each count by date, and the ultrasound system's
    ``20261201007^USIS`` was filed on the CT order whose accession had that value (review rv43b HIGH 1). So:
    - reported by the application that assigned it (``Filled.numbered_by``: OBR-3's EI-2..4 where stated, else
      MSH-3, by its site aliases too; ``applications.names_one``): it names the order where the message is an
      imaging one or the group is coded as the order's test (acsn43's rule);
    - OBR-3 naming another application (``Filled.named``), or any where the accession is stored with no assigner:
      never -- the number is stated to be that one's;
    - OBR-3 naming none, from another application or over an accession stored with no assigner (before acsn43b,
      or by a FHIR client): only where the group is coded as the order's test (``_test_codings``: its test codes,
      never the DICOM modality both carry -- rv43e HIGH 1) -- a relay forwarding the RIS's
      report of the head CT names it, another filler's exam of its own test does not (the LIS's rule).
    A re-sent OMI records the assigner on an accession stored without one (merge.yaml: identifiers union by
    system and value, the incoming entry replacing the stored)."""
    assigners = [applications.assigned_by(i) for i in order.get("identifier") or ()
                 if isinstance(i, dict) and i.get("system") == filled.accession and i.get("value") == filled.value
                 and ident_type(i) == "ACSN"]
    if not assigners:
        return False
    coded = bool(_test_codings((made or {}).get("code")) & _test_codings(order.get("code")))
    if any(hd is not None and applications.names_one(hd, filled.numbered_by) for hd in assigners):
        return filled.imaging or coded
    return coded and not filled.named


def _claims_number(order: dict[str, Any], said: Said | None, filled: Filled, made: dict[str, Any] | None) -> bool:
    """Whether a batch's earlier message leaves ``order`` holding the number (``_names_the_order``): it states it,
    and its FILL not as a claim the merge may hold (``Said.owned``: a FILL judged by the order's history is kept
    off the order when held, so one by one the number would not be found on it). A claim the merge takes after
    all (the history naming the sender) is read again: ingest settles a message again when an earlier one it
    counted on held a claim (``engine.ingest._settled_again``). An accession is no claim the merge judges."""
    if _by_accession(order, filled, made):
        return True
    if not _holds(order, filled.system, filled.value):
        return False
    return not any(own.kind == "FILL" and own.system == filled.system and own.value == filled.value
                   for own in (said.owned if said is not None else ()))


def _codings(concept: Any) -> set[tuple[str, str]]:
    """The (system, code) pairs of a CodeableConcept (an order's test)."""
    return {(str(c.get("system")), str(c.get("code"))) for c in (concept or {}).get("coding") or ()
            if isinstance(c, dict) and c.get("code")} if isinstance(concept, dict) else set()


def _test_codings(concept: Any) -> set[tuple[str, str]]:
    """The order's *test* codings (``_codings``) without its DICOM modality (``common.is_modality``, the rule's
    owner): ``pacs._order_hook`` adds the modality (CT, US) to the order's code and to an imaging report's, so two
    CT fillers' exams -- the RIS's head CT and the emergency CT system's chest CT -- shared a coding and "coded as
    the order's test" held for any report of the modality (review rv43e HIGH 1; forty-third round, acsn43c). The
    modality is the imaging message's (``Filled.imaging``), never the test."""
    if not isinstance(concept, dict):
        return set()
    return _codings({"coding": [c for c in concept.get("coding") or () if not common.is_modality(c)]})


def _verification(condition: dict[str, Any] | None) -> str | None:
    """A stored Condition's verification status code (its first coding's), None when it states none."""
    return (((condition or {}).get("verificationStatus") or {}).get("coding") or [{}])[0].get("code")


def _key_of(ref: str) -> tuple[str, str]:
    rtype, _, rid = ref.partition("/")
    return rtype, rid


def _said_moved(said: Said, moves: dict[str, str]) -> Said:
    """``said`` with the references its deletes match on moved (DG1-15 ``""``: the entry of that Condition)."""
    if not any(v in moves for d in said.deletes for _, values in d.where for v in values):
        return said
    deletes = tuple(replace(d, where=tuple((path, tuple(moves.get(v, v) for v in values)) for path, values in d.where))
                    for d in said.deletes)
    return replace(said, deletes=deletes)
