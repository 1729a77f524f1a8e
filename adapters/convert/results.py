"""Orders and results shared by the LIS and PACS feeds: ORC/OBR groups → ServiceRequest,
OBX → Observation (every value type), SPM/OBR-15 → Specimen, OBR → DiagnosticReport."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from adapters.convert import actors, applications, common, elr_fields, plans
from adapters.convert.actors import performing_organization, practitioner
from adapters.convert.context import Concept, Context, Filled, accession_system
from adapters.convert.datatypes import CONVERTERS, cwe, decimal, ei, hd_names, same_hd
from adapters.convert.engine import apply_table, json_copy
from adapters.convert.tables import vocabulary
from adapters.hl7v2.errors import (
    DATA_TYPE_ERROR,
    MESSAGE_ACCEPTED,
    REQUIRED_FIELD_MISSING,
    UNKNOWN_KEY_IDENTIFIER,
)
from adapters.hl7v2.parser import Message, Repetition, Segment, parse
from adapters.hl7v2.timestamps import TimestampError, to_fhir_date, to_fhir_datetime, zone
from conformance.validate import MAX_STRING
from engine.merge_rules import (
    API,
    CORRECTED,
    PANEL,
    STAND_IN_EXT,
    TAKEN_FROM_EXT,
    Owned,
    all_results_of,
    concept_label,
    exam_by_of,
    line_run,
    located,
    progress_of,
    same_concept,
    stand_in,
)
from engine.recognition.facts import REASON_WITHDRAWN_EXT
from engine.repository.indexing import date_range

Resource = dict[str, Any]

CATEGORY_LAB = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory",
            "display": "Laboratory",
        }
    ]
}
CATEGORY_IMAGING = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "imaging",
            "display": "Imaging",
        }
    ]
}
SR_CATEGORY = {
    "laboratory": {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "108252007", "display": "Laboratory procedure"}
        ]
    },
    "imaging": {"coding": [{"system": "http://snomed.info/sct", "code": "363679005", "display": "Imaging"}]},
}
REPORT_CATEGORY = {
    "laboratory": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                "code": "LAB",
                "display": "Laboratory",
            }
        ]
    },
    "imaging": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD", "display": "Radiology"}
        ]
    },
}
UCUM = "http://unitsofmeasure.org"
_RANGE = re.compile(r"^\s*([+-]?[0-9]+(?:\.[0-9]+)?)\s*(?:-|~|～|–|—|至)\s*([+-]?[0-9]+(?:\.[0-9]+)?)\s*$")
_BOUND = re.compile(r"^\s*(<=|>=|<|>|≤|≥)\s*([+-]?[0-9]+(?:\.[0-9]+)?)\s*$")
_COMPARATOR = {"≤": "<=", "≥": ">="}
TEXT_TYPES = frozenset({"TX", "FT"})
# Observation.value[x] in R4
_VALUE_KEYS = frozenset(
    {
        "valueQuantity",
        "valueCodeableConcept",
        "valueString",
        "valueBoolean",
        "valueInteger",
        "valueRange",
        "valueRatio",
        "valueSampledData",
        "valueTime",
        "valueDateTime",
        "valuePeriod",
    }
)
# where an Observation's elements were stated, beside OBX-11 (``Context.located_later``: located only
# when an issue names one the message states -- the merge's warning of a value, range or flag it holds).
# ``dataAbsentReason`` (an empty OBX-5) too: located eagerly by the ordinary path alone, a result a
# compiled plan made (``plans.build``, the second OBX of its shape) named none, and the same held message
# was located at OBX-5 the first time, at OBX-11 after (review rv37e LOW 4; thirty-seventh round, statfix37)
LOCATED_LATER: tuple[tuple[str, int], ...] = (*((key, 5) for key in sorted(_VALUE_KEYS)), ("dataAbsentReason", 5),
                                              ("referenceRange", 7), ("interpretation", 8), ("effectiveDateTime", 14))
# where a report's times and status were stated (the merge's warning of a time an older message states,
# ordfix36; its refusal of a status it cannot date, one ERR each since ordfix36 collects them: OBR-25) --
# the status only where OBR-25 was sent: read from the results (OBR-25 empty), its refusal named OBR^1^25,
# a field the sender left empty (review rv37a LOW 8; notback37). Two constants: ``Said.later`` is shared
# by its table's identity.
REPORT_TIMES_LOCATED_LATER: tuple[tuple[str, int], ...] = (("issued", 22), ("effectiveDateTime", 7),
                                                           ("effectivePeriod", 7))
REPORT_LOCATED_LATER: tuple[tuple[str, int], ...] = (*REPORT_TIMES_LOCATED_LATER, ("status", 25))


@dataclass
class Group:
    """One order: its ORC, OBR, and the OBX/NTE/SPM that follow."""

    orc: Segment | None
    obr: Segment | None
    obx: list[Segment] = field(default_factory=list)
    notes: dict[int, list[Segment]] = field(default_factory=dict)  # OBX position → NTEs; -1 = order
    spm: list[Segment] = field(default_factory=list)
    tq1: Segment | None = None  # timing/quantity of the order (v2.5+, replaces ORC-7/OBR-27)
    prt: dict[int, list[Segment]] = field(default_factory=dict)  # OBX position → PRTs; -1 = order
    sac: list[Segment] = field(default_factory=list)  # specimen containers (OUL)
    dg1: list[Segment] = field(default_factory=list)  # the order's reasons (OML/ORM ORDER group)
    # (OBR, ORC, what ``_order_numbers`` found in them): asked by the order, its key and the report's
    numbers: tuple[Any, ...] | None = field(default=None, repr=False, compare=False)


def groups(ctx: Context, *, specimen_groups: bool = False) -> tuple[list[Group], list[Segment]]:
    """Split the message into order groups; returns (groups, segments left unconsumed).

    ``specimen_groups``: the structure nests orders under their specimen (OML^O33: SPM, then the
    ORC/OBR orders on it), so each SPM starts a new specimen for the orders that follow."""
    return grouped(ctx.message, specimen_groups=specimen_groups)


def orderless(message: Message) -> frozenset[int]:
    """Positions of the OBX segments ``groups`` reads with neither an ORC nor an OBR to attach them to
    (no ORC/OBR anywhere before them): the results whose order the message does not say. Why here: the
    message-structure check (``adapters.hl7v2.sequence.judged``) refuses a result only when this reading
    has no order for it, so a segment out of the structure's place that the converter still attaches to
    its order (a PID repeated between results, an OBX after a bare ORC) is warned, never refused
    (rvhl7struct31 findings 1 and 3). Read without specimen groups: an SPM's own OBX in an OML^O33 is the
    specimen's, not a result lacking its order."""
    found, _ = grouped(message)
    return frozenset(obx.position for g in found if g.orc is None and g.obr is None for obx in g.obx)


def grouped(message: Message, *, specimen_groups: bool = False) -> tuple[list[Group], list[Segment]]:
    """``groups`` of ``message`` (the reading needs the message alone)."""
    out: list[Group] = []
    current: Group | None = None
    pending_orc: Segment | None = None
    pending_spm: list[Segment] = []
    pending: list[Segment] = []  # TQ1/PRT between an ORC and its OBR
    pending_sac: list[Segment] = []
    leftover: list[Segment] = []
    oul = message.msh.structure.startswith("OUL")
    for seg in message.segments:
        name = seg.name
        if name == "OBX" and current is not None:  # (most segments of a result message: asked first)
            current.obx.append(seg)
        elif name in ("TQ1", "PRT") and (current is None or pending_orc is not None):
            pending.append(seg)
        elif name == "TQ1":
            assert current is not None
            if current.tq1 is None:
                current.tq1 = seg
        elif name == "PRT":
            assert current is not None
            current.prt.setdefault(current.obx[-1].position if current.obx else -1, []).append(seg)
        elif name == "SAC":
            if current is not None and current.obr is not None and not current.obx:
                current.sac.append(seg)
            else:
                pending_sac.append(seg)
        elif name == "ORC":
            if current is not None and current.obr is not None and current.orc is None and not current.obx:
                current.orc = seg  # OUL^R22 puts the ORC after its OBR
                continue
            if pending_orc is not None:  # an order without OBR: kept, its code marked absent
                out.append(Group(pending_orc, None))
            pending_orc = seg
            current = None
        elif name == "OBR":
            current = Group(pending_orc, seg, spm=list(pending_spm), sac=list(pending_sac))
            for p in pending:
                if p.name == "TQ1" and current.tq1 is None:
                    current.tq1 = p
                elif p.name == "PRT":
                    current.prt.setdefault(-1, []).append(p)
            pending = []
            pending_orc = None
            out.append(current)
        elif name == "OBX":
            if current is None:
                current = Group(pending_orc, None, spm=list(pending_spm))
                pending_orc = None
                out.append(current)
            current.obx.append(seg)
        elif name == "NTE":
            if current is None:
                leftover.append(seg)
            else:
                key = current.obx[-1].position if current.obx else -1
                current.notes.setdefault(key, []).append(seg)
        elif name == "SPM":
            if specimen_groups:
                pending_spm, pending_sac, current = [seg], [], None
            elif oul and current is not None and current.obr is not None and not current.obx:
                current.spm.append(seg)  # OUL^R24: the order's own specimen, after its OBR
            elif current is None or oul:
                pending_spm.append(seg)
                pending_sac = []
                if current is not None and current.obr is None:
                    current.spm.append(seg)
            else:
                current.spm.append(seg)
        elif name == "DG1" and current is not None:
            current.dg1.append(seg)
        elif name not in ("MSH", "PID", "PD1", "PV1", "PV2", "EVN", "TXA", "ZDS", "IPC"):
            leftover.append(seg)
    if pending_orc is not None:
        out.append(Group(pending_orc, None))
    leftover.extend(p for p in pending if pending_orc is None)
    return out, leftover


def _order_numbers(group: Group) -> tuple[Segment | None, int, Segment | None, int]:
    """(segment, field) of the placer and filler order numbers, OBR first then ORC (read once per
    group: the order, its key and the report's key each ask)."""
    known = group.numbers
    if known is not None and known[0] is group.obr and known[1] is group.orc:
        return known[2]
    found = _read_order_numbers(group)
    group.numbers = (group.obr, group.orc, found)
    return found


def _read_order_numbers(group: Group) -> tuple[Segment | None, int, Segment | None, int]:
    placer = filler = None
    pf = ff = 0
    for seg in (group.obr, group.orc):  # OBR when valued, as the IG maps them; else ORC
        if seg is None:
            continue
        if placer is None and seg.value(2):
            placer, pf = seg, 2
        if filler is None and seg.value(3):
            filler, ff = seg, 3
    return placer, pf, filler, ff


def order_key(group: Group, ctx: Context, pkey: str) -> str:
    placer, pf, filler, ff = _order_numbers(group)
    if placer is not None:
        return _distinct_service(f"placer|{placer.value(pf, comp=2)}|{placer.value(pf)}", group, ctx)
    if filler is not None:
        return _distinct_service(f"filler|{filler.value(ff, comp=2)}|{filler.value(ff)}", group, ctx)
    # OBR when it has fields, else ORC, as always (the key holds its sequence: stored ids depend on
    # it); a segment of no fields is falsy (its length is 0): ``OBR`` alone, with no ORC, is read too
    seg = group.obr or group.orc
    if seg is None:
        seg = group.obr
    assert seg is not None
    ctx.warn(
        seg.error(
            f"{seg.name}-2/{seg.name}-3: no placer or filler order number; the order is keyed by "
            "patient, item and time, so a correction cannot update it",
            2,
            code="101",
        )
    )
    obr = group.obr
    return f"nokey|{pkey}|{obr.value(4) if obr else ''}|{obr.value(7) if obr else ''}|{seg.sequence}"


def _distinct_service(key: str, group: Group, ctx: Context) -> str:
    """Order groups of one message that share an order number but name different services
    (OBR-4) are different orders — an order slip numbered once with several tests, as SS-MIX2
    senders write them: the first keeps the number's key, each other service gets its own, so no
    order of the message is merged into another (and loses its code)."""
    obr = group.obr
    service = obr.field(4) if obr is not None else ""
    if not service:
        return key
    first = ctx.order_services.setdefault(key, service)
    return key if first == service else f"{key}|{service}"


def report_key(group: Group, ctx: Context, pkey: str) -> str:
    _, _, filler, ff = _order_numbers(group)
    if filler is not None:
        return f"filler|{filler.value(ff, comp=2)}|{filler.value(ff)}"
    return order_key(group, ctx, pkey)


# ORC-1 codes naming the order a replacement (RO) after it in the message replaces (table 0119): the
# placer's replace request (RP), the filler's unsolicited replacement (RU) and its answer to an RP (RQ).
# RU and RQ were unmapped: the order the lab had replaced stayed active beside its replacement.
REPLACED = frozenset({"RP", "RU", "RQ"})


def order_status_stated(orc: Segment | None, ctx: Context) -> tuple[str | None, int]:
    """The status an ORC states of its order and the field stating it: ORC-5 (table 0038, ``order_status``),
    else ORC-1 (table 0119, ``order_control_status``); (None, 0) where neither maps."""
    if orc is None:
        return None, 0
    status = vocabulary(ctx.site, "order_status").get(orc.value(5)) if orc.value(5) else None
    if status is not None:
        return status, 5
    if orc.value(1):
        status = vocabulary(ctx.site, "order_control_status").get(orc.value(1))
        if status is not None:
            return status, 1
    return None, 0


def service_request(
    group: Group,
    ctx: Context,
    category: str,
    subject: dict[str, str],
    pkey: str,
    encounter: dict[str, str] | None,
    default_status: str,
) -> dict[str, str]:
    """ORC + OBR → ServiceRequest with placer/filler identifiers, status, code and re-test reason."""
    res: Resource = {
        "resourceType": "ServiceRequest",
        "status": default_status,
        "intent": "order",
    }
    if category in SR_CATEGORY:
        res["category"] = [SR_CATEGORY[category]]
    identifiers = []
    placer, pf, filler, ff = _order_numbers(group)
    for seg, fno, kind in ((placer, pf, "PLAC"), (filler, ff, "FILL")):
        if seg is not None:
            ident = ei(seg.rep(fno), {}, ctx) or {}
            ident.setdefault("system", f"urn:huren:order:{ctx.urn_code}")
            ident["type"] = {"coding": [{"system": common.V2_0203, "code": kind}]}
            identifiers.append(ident)
    if identifiers:
        res["identifier"] = identifiers
    orc, obr = group.orc, group.obr
    status, stated_by = order_status_stated(orc, ctx)  # (stated_by: located in the ACK when it is not stored)
    if status:
        res["status"] = status
    whose = statement_of(group, ctx)  # (whose statement the ORC is: the one owner, asked once a group)
    code = common.coded_item(obr, 4, ctx) if obr is not None else None
    if code:
        res["code"] = code
        assert obr is not None
        # another test's order under the same number is refused there (merge.yaml ``another``)
        ctx.located(res, "code", obr, 4)
    else:
        # the results matter more than the order code: store the order with the code marked absent
        # (and counted in the fidelity report) rather than refuse the lab's results over it
        seg = obr if obr is not None else group.orc
        assert seg is not None
        res["code"] = absent_concept(ctx, seg, 4 if obr is not None else 0, "ServiceRequest.code")
    # every statement of an order message is judged, whatever test it names: a third application's XO with
    # OBR-4 empty or ``""`` was never judged, and its ORC-16 ``""`` deleted the doctor's R01 (review rv40h HIGH 1)
    _not_the_orders(group, ctx, res, whose)
    apply_table("servicerequest", {"ORC": orc, "OBR": obr, "TQ1": group.tq1}, ctx, res)
    for prt in group.prt.get(-1, ()):
        _participant(prt, ctx, res, "requester" if prt.value(4).upper() in ("OP", "ORD") else "performer")
    reason = common.retest_reason(orc, ctx)
    if reason and orc is not None and whose not in ("", PLACER) and _in_reason_system(reason):
        # an order message's filler statement (ORM ORC-1 SC from the LIS; its replacement RU/RQ) or the
        # placer's request (CA, DC ...): its ORC-16 is the reason for that event (v2.5.1 ORC-16: order
        # control code reason), and in an order message it would replace the doctor's reason (merge.yaml
        # keep-if-absent): only the placer's statement of the order states it (rv40d HIGH 1)
        reason = None
    if reason:
        res.setdefault("reasonCode", []).insert(0, reason)
    _reason_taken_back(orc, res, ctx, whose)
    res["subject"] = subject
    if encounter:
        res["encounter"] = encounter
    notes = [t for t in map(common.note_text, group.notes.get(-1, ())) if t]
    if notes:
        res.setdefault("note", []).extend({"text": t} for t in notes)
    control = orc.value(1).strip().upper() if orc is not None else ""
    replacing = control == "RO" and bool(ctx.replace_requests)
    if control == "RO" and not replacing:
        # v2 ch. 4 sends the order replaced (RP/RU) before its replacement in the same message; an RO
        # alone names nothing it replaces (no field carries the old number), and a guess among the
        # patient's revoked orders could link the wrong one: stored unlinked, said (nineteenth round)
        assert orc is not None
        ctx.warn(orc.error("ORC-1 RO: no replaced order (ORC-1 RP, RU or RQ) before it in this message; "
                           "the order it replaces is not linked (ServiceRequest.replaces)", 1))
    if replacing:  # the replacement order replaces the RP orders before it
        res["replaces"] = [{"reference": r} for r in ctx.replace_requests]
        ctx.replace_requests = []
    if control == "RO":
        ctx.replaced_by = ""  # (the replaced orders taken: a later RO is judged alone)
    ref = ctx.put(res, order_key(group, ctx, pkey))
    if placer is None and filler is not None and ctx.resources[ref["reference"]] is res:
        # named by the filler's number alone: the patient's order holding it, whichever number keyed it, is the one
        # (``adopt_filled``, on the store) -- a second order holding the accession was made (review rv40h MED 7)
        fill = _identifier_of(res, "FILL")
        if fill is not None:
            # (the number's application: OBR-3's EI-2..4, else MSH-3)
            authority, named = applications.numbering(_ei_authority(filler.rep(ff)), ctx)
            ctx.filled[ref["reference"]] = Filled(
                *fill, subject["reference"], (filler.name, filler.sequence, ff), accession_system(ctx.urn_code),
                category == "imaging", applications.forms(getattr(ctx.institution, "code", ""), authority, ctx.site),
                named)
    if replacing and not reason and ctx.resources[ref["reference"]] is res:
        # the reason a replacement may inherit (merge.yaml ``inherits``) is for ORC-16: a replaced
        # order for another test gives none, and the warning saying so names that field (convmend19)
        assert orc is not None
        ctx.located(res, "reasonCode", orc, 16)
    if replacing:  # an RO under the RP's own number is that order again, not its replacement (review)
        stored = ctx.resources[ref["reference"]]
        others = [r for r in stored.get("replaces", ()) if r.get("reference") != ref["reference"]]
        if others:
            stored["replaces"] = others
        else:
            stored.pop("replaces", None)
    if control in REPLACED:
        ctx.replaced_by = control  # (whose the RO after it is: ``_whose``)
        if ref["reference"] not in ctx.replace_requests:
            ctx.replace_requests.append(ref["reference"])
    if notes and ctx.resources[ref["reference"]] is not res:
        _notes_of_another_group(ctx.resources[ref["reference"]], res)
    if res.get("reasonCode") and ctx.resources[ref["reference"]] is not res:
        _reasons_of_another_group(ctx.resources[ref["reference"]], res)
    if not _intent_stated(obr, ctx):
        # OBR-11 empty (or a code the site does not know): ``order`` is the converter's assumption and
        # fills only an order stored without an intent -- an order message after the lab's reflex
        # result (OBR-11 G) leaves it reflex-order; a stated code (R revised order, L, ...) is a plain
        # order said and corrects a G sent before (``merge.yaml`` had ``order`` as a placeholder, so
        # no message could ever take a reflex-order back)
        if ctx.resources[ref["reference"]] is res:
            ctx.assumed(res, "intent")
    elif ctx.resources[ref["reference"]] is not res:
        _intent_of_another_group(ctx.resources[ref["reference"]], res, ctx)
    if stated_by:
        assert orc is not None
        ctx.located(ctx.resources[ref["reference"]], "status", orc, stated_by)
    _number_located(ctx, ctx.resources[ref["reference"]], group, filler_first=False)
    return ref


# ORC-1 codes by which the placer asks the filler (table 0119: cancel, discontinue, hold, release the hold): the
# placer's, not the filler's statements, though ``_PLACER_STATES`` leaves them out (their ORC-16 is the request's reason)
_PLACER_ASKS = frozenset({"CA", "DC", "HD", "RL"})


def _not_the_orders(group: Group, ctx: Context, res: Resource, whose: str) -> None:
    """An order message's test from an application that is neither the order's filler (its filler's statements:
    ORC-1 XX, SC, OK ...) nor its placer (ORC-1 XO) does not recode a stored order.

    v2.5 ch. 4 gives the placer the change of the order (ORC-1 XO, RP: ``_PLACER_STATES``) and the filler
    its own, under its filler number (XX "order/service changed, unsolicited", RU: table 0119).
    ``merge.yaml``'s ``states: [order]`` took the test of any order message, so a third application's ORM
    under the RIS's numbers (the LIS's XX naming chest CT over the RIS's head CT) recoded the RIS's order
    (codefix37 kept only its report from following). (Review rv37c; thirty-eighth round, codedoc38.)

    Whose statement the ORC is, ``statement_of`` decides (``whose``; the one owner, ``_whose``: review rv40d
    HIGH 1). Every statement is judged, whatever test OBR-4 names -- none, ``""``, no OBR (the hold is on ``code``,
    the data-absent concept then, located at OBR-4 or ORC-1): a third application's XO naming no test was never
    judged, and its ORC-16 ``""`` deleted the doctor's R01 (review rv40h HIGH 1).

    *The placer's requests* (``PLACERS_REQUEST``: CA, DC, HD, RL) are judged by the placer number's owner as its
    statements are -- only the placer asks the filler to cancel its order; a third application's CA under the
    HIS's and the RIS's numbers revoked the HIS's order with a bare AA (review rv40h MED 6). Held, the hold is on
    ``status`` (what a request changes), located at ORC-1, and W 204 says so as for an XO.

    *The filler's statements* (``FILLER``: not the placer's statements nor its requests, ``_PLACER_ASKS``; the
    filler's replacements RU/RQ are among ``_PLACER_STATES`` for the reason a replacement inherits, but table
    0119 makes them the filler's -- "replaced unsolicited", "replaced as requested" -- and they are judged as its
    XX is: review rv40c MED 7). A filler number whose EI-2/EI-3 names the sending
    application (MSH-3) or its facility (MSH-4) is the sender's (``same_hd``: the universal ids where both
    carry one, and the namespace ids too where both carry one, else the namespace ids -- rv38i HIGH: any
    shared form let another hospital's ``RIS`` recode it; rv40c MED 1: a site that puts the hospital's OID in
    every HD let the OID alone make ``F^RIS^<OID>^ISO`` the LIS's ``LIS^<OID>^ISO`` -- the shortcut only
    passes a number, and what it does not pass the history judges, as it judges ``F^LAB^<OID>^ISO`` from
    ``LIS^<OID>^ISO`` after the LIS's report stored it; the nHapi samples' filler ``OF`` at ``Chemistry``
    numbers ``555^chemistry``; case aside); so is one sent
    without a namespace (the sender's own numbering, as SCH-2's, ``builders._appointment_system``), and a
    message whose placer number names the sender is the placer's. Any other is decided by the order's
    history, which the converter cannot read: the test is stated only if the application that first stored
    this filler number (FILL) on the order is this message's sender (``Context.numbered``: ``merge_rules.Owned``,
    decided by ``MergeRules._numbered``) -- a relay (MSH-3 ``ESB``) passing on its lab's numbers, a lab whose
    filler number's authority is not its MSH-3 (node-hl7-complete's ``Lab1^1234^CLIA`` numbering
    ``^Lab^<OID>^ISO``) stored the number with its report, and its XX is its own (review rv38f MED; cdfix38's
    "left"; thirty-ninth round, ord39). The filler assigns its number with its first statement (HL7 v2.5
    4.5.1.3) -- but only a number that names *this* application is its to assign, and that is the shortcut's
    rule: the HD-1s agreeing where both carry one, or a form of the site's alias group (``applications.forms``).
    A universal id alone does not: a site that puts the hospital's OID in every HD names the facility by it, not
    the lab, and xo41's assignment by the OID alone (``LIS^<OID>^ISO`` numbering ``F^LAB^<OID>^ISO``) let the
    EMR ``EMR^<OID>^ISO`` assign the lab's number by its SC, recode the order by its XX, and the lab's own report
    was refused AE 205 (review rv41d HIGH 3; forty-first round, xofix41). A lab whose numbers' namespace is not
    its MSH-3's is named in ``senders.yaml`` ``application_aliases`` (``[LIS^<OID>^ISO, LAB^<OID>^ISO]``), its own
    OID or the hospital's alike -- nothing in a message tells the two apart. A number no message stored, or another's: the test only fills an order
    not stored yet and the ACK warns at OBR-4 with ERR-3 204 (unknown key identifier: the filler number is no
    key of the sending application's), not 206 (application record locked: read as "retry later"), nor 207
    (huren failed) -- review rv38f L3, cdfix38; AA, the rest stored, the message kept as sent.

    *The placer's change* (ORC-1 XO). The placer number's namespace is not judged by itself -- a placer's
    EI-2/EI-3 is often its assigning authority, not MSH-3 (the NIST and nHapi OML samples: ORC-2 ``^^<OID
    .24>`` from MSH-3 ``<OID .22>``, ``12345678^gastric`` from ``OP``; a first cut judging it held the placer's
    own XO in 10 golden samples) -- but it still says the sender's own when it names it (HD-1 agreeing where
    both carry one, as for the filler number). Otherwise the history
    decides, by the same owner: the application whose order message (merge.yaml ``order``) first stored the
    placer number (PLAC) is the placer -- a result message repeats ORC-2 and places nothing. A third
    application's XO under it is held as above (review codedoc38's "a third application's XO ... still recodes
    the order"; ord39); a number no order message stored names no placer: taken, as before. A statement naming
    its order by the filler's number alone (ORC-2/OBR-2 empty) is a statement of the patient's order holding that
    number (``adopt_filled``) and is judged by the placer number that order holds (``Owned`` with no value:
    ``MergeRules._its_number``) -- the EMR's XO under the LIS's accession alone made a second order holding it
    (review rv40h MED 7). Result messages
    are judged by the ``another`` rule (and a report follows only its filler's own change:
    ``MergeRules._order_states``).

    *Another order's filler number* in a placer's statement (review rv39g MED 4): judged whether or not the
    placer number names the sender -- an EMR's NW under its own ``<n>^EMR`` naming the RIS's ``F<n>^RIS`` made a
    second order holding the RIS's accession (rv40c MED 3) -- among the sender's institution's placed orders
    (``MergeRules._held_elsewhere``); an order keyed by its filler number alone is found by it and keeps it."""
    orc, obr, msh = group.orc, group.obr, ctx.message.msh
    if orc is None:
        return
    control = orc.value(1).strip().upper()
    # (whose statement, by the one owner: the filler's replacements RU/RQ judged as its XX is -- rv40c MED 7)
    asking = whose == PLACERS_REQUEST
    placing, filling = whose == PLACER or asking, whose == FILLER
    if not placing and not filling:
        return  # (neither judged -- a result message: asked first, as every result group comes here)
    test_at = located(obr.name, obr.sequence, 4) if obr is not None else located(orc.name, orc.sequence, 1)
    test_field = f"{obr.name}-4" if obr is not None else "ORC-1"
    msh3, msh4 = ((msh.value(n).strip(), msh.value(n, comp=2).strip(), msh.value(n, comp=3).strip()) for n in (3, 4))
    if not any(msh3):
        return  # (a message naming no sending application, by neither of its names, tells nothing)
    # MSH-3 by each name the site's aliases give the application (``applications.forms``: MSH-3 first), and MSH-4
    sender = (*applications.forms(getattr(ctx.institution, "code", ""), msh3, ctx.site), msh4)
    app = sender[0][0] or sender[0][1]  # (MSH-3 ``^<OID>^ISO``, the NIST/IHE form: named by its universal id)
    placer, pf, filler, ff = _order_numbers(group)
    if placing:
        # (the placer's own number, by its namespace -- and its HD-1 where both carry one: rv40c MED 1)
        mine = placer is not None and any(same_hd(_ei_authority(placer.rep(pf)), hd, one_table=True) for hd in sender)
        number = _identifier_of(res, "PLAC") if placer is not None and not mine else None
        named = f"{placer.name}-{pf} {placer.value(pf)}" if placer is not None else ""
        if placer is None and filler is not None:
            # named by the filler's number alone (ORC-2/OBR-2 empty): the order holding it (``adopt_filled``) is
            # judged by the placer number it holds, as any placer's statement naming that number is -- the stored
            # one, ``Owned`` with no value (``MergeRules._its_number``; review rv40h MED 7)
            number = ("", "")
            named = f"it names the order by {filler.name}-{ff} {filler.value(ff)} alone"
        if number is not None and asking:
            ctx.numbered(res, Owned(
                "status", "PLAC", number[0], number[1], located(orc.name, orc.sequence, 1),
                f"ORC-1: ORC-1 {control} is the placer's request and the sending application {app} is not this "
                f"order's placer ({named}): it does not change a stored order's "
                "status (the placer's own request does)", UNKNOWN_KEY_IDENTIFIER, through="order", unknown=False,
                placing=True))
        elif number is not None:
            ctx.numbered(res, Owned(
                "code", "PLAC", number[0], number[1], test_at,
                f"{test_field}: ORC-1 {control} is the placer's statement of the order and the sending application "
                f"{app} is not this order's placer ({named}): its test is kept only "
                "for an order not stored yet and does not change a stored order's test (the placer's XO or the "
                "filler's XX does)", UNKNOWN_KEY_IDENTIFIER, through="order", unknown=False, placing=True))
        if asking:
            return  # (a request makes no order of its own: no other order's number to withhold from one)
        theirs = _ei_authority(filler.rep(ff)) if filler is not None else ("", "", "")
        fill = _identifier_of(res, "FILL") if placer is not None else None
        if fill is not None and hd_names(*theirs) and not any(same_hd(theirs, hd, one_table=True) for hd in sender):
            # (another application's filler number: a placer number no order holds makes a new order, which
            # must not carry a number another order holds -- review rv39g MED 4 -- whether or not the placer
            # number names the sender, as it usually does: rv40c MED 3. An order keyed by the filler number
            # alone is found by it and keeps it: not judged)
            assert filler is not None
            ctx.numbered(res, Owned(
                "code", "FILL", fill[0], fill[1], test_at,
                f"{test_field}: ORC-1 {control} under the filler number {filler.name}-{ff} {filler.value(ff)}, which "
                f"another order holds and the sending application {app} did not store: this order is stored "
                "without that number", UNKNOWN_KEY_IDENTIFIER, elsewhere=True))
        return
    if filler is None:
        return
    owner = filler.rep(ff)
    theirs = _ei_authority(owner)
    if not hd_names(*theirs) or any(same_hd(theirs, hd, one_table=True) for hd in sender):
        return  # (the sender's own filler number: its HD names the sending application or facility)
    if placer is not None and any(same_hd(_ei_authority(placer.rep(pf)), hd, one_table=True) for hd in sender):
        return  # (the placer's own message)
    number = _identifier_of(res, "FILL")
    if number is None:
        return
    ctx.numbered(res, Owned(
        "code", "FILL", number[0], number[1], test_at,
        f"{test_field}: ORC-1 {control} is the filler's statement and the sending application {app} is not this "
        f"order's filler ({filler.name}-{ff} names {owner.comp(2).strip() or owner.comp(3).strip()}): its test is "
        "kept only for an order not stored yet and does not change a stored order's test (the filler's XX or "
        "the placer's XO does)", UNKNOWN_KEY_IDENTIFIER))


def _identifier_of(res: Resource, kind: str) -> tuple[str, str] | None:
    """The (system, value) of ``res``'s identifier of v2 0203 type ``kind`` (FILL, PLAC), as ``service_request``
    made it from the order number: the number the merge looks for in the order's history."""
    for ident in res.get("identifier") or ():
        coding = ((ident.get("type") or {}).get("coding") or [{}])[0]
        if coding.get("code") == kind and ident.get("system") and ident.get("value"):
            return str(ident["system"]), str(ident["value"])
    return None


def _ei_authority(rep: Repetition) -> tuple[str, str, str]:
    """An EI's assigning authority (EI-2..4) as the HD ``same_hd`` compares: namespace id, universal id, its type."""
    return rep.comp(2).strip(), rep.comp(3).strip(), rep.comp(4).strip()


_RETEST_REASON: tuple[tuple[str, tuple[str, ...]], ...] = (("coding.system", (common.RECOGNITION_REASON,)),)
_WITHDRAWN_MARK: tuple[tuple[str, tuple[str, ...]], ...] = (("url", (REASON_WITHDRAWN_EXT,)),)


def _reason_taken_back(orc: Segment | None, res: Resource, ctx: Context, whose: str) -> None:
    """ORC-16 sent as ``""`` (v2 ch. 2: delete) by the placer's own order statement takes the stored
    re-test reason away; a reason in huren's system replaces it by the merge rule itself
    (``merge.yaml`` ServiceRequest.reasonCode: keep-if-absent for an order message).

    Only the placer's statements of the order in an order message (``whose``, ``statement_of``: NW, XO, RP, the
    placer's RO -- not the filler's replacements RU/RQ nor the RO after them, whose ORC-16 is their own event's
    reason: review rv40d HIGH 1, rv40h MED 4) may
    withdraw it: a filler's status change (ORM ORC-1 SC/OK/NA from the LIS) and any result message (ORU ORC-1
    RE, SC or blank) are no request of the doctor's -- money20 spared only RE, and an LIS's SC with
    ORC-16 ``""`` deleted the doctor's stored R01 (twentieth round, moneymend20). Anything else in
    ORC-16 (a local code, a text only) is HL7 v2.5's *order control code reason* -- why the order was
    changed (a haemolysed specimen recollected) -- not a withdrawal: the stored re-test reason stands
    and the stated one is kept beside it under its own system (``retest_reason``: any other reason as
    sent; ``merge.yaml``: the rest of reasonCode is a union)."""
    # only the placer's own statement of the order withdraws a reason or states one again: whose it is,
    # ``statement_of`` decides -- RU/RQ are the filler's (rv40d HIGH 1: they withdrew the doctor's R01 here
    # while ``_not_the_orders`` judged them the filler's)
    if orc is None or whose != PLACER:
        return
    if orc.field(16) != '""':
        if any(_in_reason_system(r) for r in res.get("reasonCode") or ()):
            # the placer states a re-test reason again after a withdrawal: the stored mark of the
            # withdrawal goes with it (an XO stating R01 after one stating ``""`` left the mark beside
            # R01 -- two contradicting statements to a client, rvmoney29); a statement stating no
            # reason (ORC-16 empty: not sent) keeps it
            ctx.delete(res, "extension", _WITHDRAWN_MARK, why="re-test reason stated again (ORC-16)")
        return
    ctx.delete(res, "reasonCode", _RETEST_REASON)
    # and the delete itself, by message: an order whose reason was only a CDS answer's has none to delete
    # (``engine.recognition.facts.REASON_WITHDRAWN_EXT``, money29)
    res.setdefault("extension", []).append({"url": REASON_WITHDRAWN_EXT,
                                            "valueString": ctx.message.msh.control_id or "\"\""})


# ORC-1 codes by which the placer states the order as it now is (v2.5 table 0119): a new order, a
# change order request, a replacement order and the replace requests naming the order it replaces
# (``REPLACED``, whose reason a replacement inherits: merge.yaml ``inherits``). Its other codes are the filler's statements (SC status
# changed, OK/NA/UA accepted/number assigned, RE observations to follow) or a request whose ORC-16 is
# that request's reason (CA/DC/HD cancel, discontinue, hold). RO is either side's (table 0119): whose, ``_whose``
# decides by the replaced order before it (rv40h HIGH 3).
_PLACER_STATES = frozenset({"NW", "XO", "RO"}) | REPLACED
_ORDER_MESSAGES = frozenset({"ORM", "OML", "OMG", "OMI"})  # merge.yaml ``sources.order``
# of ``REPLACED``, the filler's (RU: replaced unsolicited, RQ: its answer to the placer's RP): among the states
# above for the reason they pass on, but no placer's statement -- they neither place an order nor are judged as
# the placer's (ofix39)
_FILLERS_REPLACEMENTS = frozenset({"RU", "RQ"})


def placed_numbers(message_code: str, text: str) -> frozenset[str]:
    """The placer numbers (EI-1) an order message (``_ORDER_MESSAGES``, by its MSH-9.1 ``message_code``) states
    as the placer's (its order groups the one owner, ``_whose``, finds the placer's statements: NW, XO, RP, and an
    RO after an RP or naming a placer number; ``text``: the message as stored): what the merge counts as placing
    an order (``engine.message_time.Stamp.placed``) -- the filler's own XX under the placer number after its
    report stored it places nothing (review rv39g MED 3; ofix39), nor its RU/RQ and the RO after them (rv40h
    HIGH 3). Each group's placer number is the field the order's placer identifier (PLAC) is made from,
    ``_order_numbers``: OBR-2 when valued, else ORC-2 -- read here ORC-2 first, an HIS whose ORC-2 (its request
    form) differs from OBR-2 never placed the order it placed, and a third application's XO recoded it (review
    rv40c MED 5). Any other message places none, and is not parsed."""
    if message_code.strip().upper() not in _ORDER_MESSAGES:
        return frozenset()
    placed: set[str] = set()
    after = ""  # (the replaced order's ORC-1 before an RO, as the converter's ``Context.replaced_by``)
    for group in grouped(parse(text))[0]:
        control = group.orc.value(1).strip().upper() if group.orc is not None else ""
        placer, pf, _, _ = _order_numbers(group)
        number = placer.value(pf).strip() if placer is not None else ""
        whose = _whose(message_code, control, after=after, placed=bool(number))
        after = control if control in REPLACED else "" if control == "RO" else after
        if whose == PLACER and number:
            placed.add(number)
    return frozenset(placed)


PLACER, PLACERS_REQUEST, FILLER = "placer", "placer's request", "filler"


def _whose(message_code: str, control: str, *, after: str = "", placed: bool = True) -> str:
    """Whose statement an ORC is, by its message (MSH-9.1 ``message_code``) and ORC-1 ``control`` (HL7 v2.5.1
    ch. 4, table 0119) -- the one owner of it (review rv40d HIGH 1: ``_placers_statement``, the filler test and
    ``_not_the_orders``' own pair were three, and RU/RQ were the filler's for the test but the placer's for the
    re-test reason):

    - ``PLACER``: the placer's statement of the order as it now is (``_PLACER_STATES`` but the filler's
      replacements): NW, XO, RP, and RO as below -- its ORC-16 states the re-test reason or, ``""``, withdraws it;
    - ``PLACERS_REQUEST``: the placer asks the filler (CA, DC, HD, RL): its ORC-16 is why it asks;
    - ``FILLER``: any other stated code of an order message -- the filler's (SC, OK, XX ... and RU "replaced
      unsolicited", RQ "replaced as requested", which table 0119 gives the filler): its ORC-16 is the order
      control code reason of its own event, no re-test reason of the doctor's;
    - ``""``: no order message (a result message's ORC repeats the order and states nothing of it), or ORC-1
      empty.

    RO, the replacement order, table 0119 gives to *either* side: ch. 4 sends it after the order it replaces, the
    placer's RP (its replace request) or the filler's RU/RQ (replaced unsolicited, as requested) -- ``after``, the
    ORC-1 of that group in the message (``Context.replaced_by``). After RU/RQ it is the filler's replacement (the
    LIS's RU + RO under its new number with ORC-16 R07 replaced the doctor's R01 and the repeat became self-pay;
    with ``""`` it marked the reason withdrawn; the RIS's own RU + RO was warned W 204 as a third application's
    placer statement: review rv40h HIGH 3, MED 4, LOW 8); after RP, the placer's. An RO alone names none: it is the
    placer's when it carries the placer's number (``placed``: ORC-2/OBR-2 valued, the number the placer gives
    every order it places, ch. 4 4.5.1.2) -- judged then by the order's history as any placer statement is
    (``_not_the_orders``) -- and the filler's when it carries only the filler's."""
    control = control.strip().upper()
    if message_code.strip().upper() not in _ORDER_MESSAGES or not control:
        return ""
    if control in _PLACER_ASKS:
        return PLACERS_REQUEST
    if control == "RO":
        after = after.strip().upper()
        return FILLER if after in _FILLERS_REPLACEMENTS or (not after and not placed) else PLACER
    if control in _PLACER_STATES and control not in _FILLERS_REPLACEMENTS:
        return PLACER
    return FILLER


def statement_of(group: Group, ctx: Context) -> str:
    """Whose statement this message's order ``group`` is (``_whose``: its ORC-1, the replaced order's ORC-1 before
    it in the message, and whether it names a placer number); "" for a group without an ORC."""
    if group.orc is None:
        return ""
    placer, pf, _, _ = _order_numbers(group)
    return _whose(ctx.message.msh.message_type, group.orc.value(1), after=ctx.replaced_by,
                  placed=placer is not None and bool(placer.value(pf).strip()))


def _in_reason_system(reason: Concept) -> bool:
    return any(isinstance(c, dict) and c.get("system") == common.RECOGNITION_REASON
               for c in reason.get("coding") or ())


def _number_located(ctx: Context, res: Resource, group: Group, *, filler_first: bool) -> None:
    """The order number that keys ``res`` (an order: the placer's, else the filler's; a report: the
    filler's, else the placer's) located as where its ``subject`` was stated: another patient under
    a stored number is refused at that field (merge.yaml ``another_person``, placer19)."""
    placer, pf, filler, ff = _order_numbers(group)
    numbers = ((filler, ff), (placer, pf)) if filler_first else ((placer, pf), (filler, ff))
    for seg, field_no in numbers:
        if seg is not None:
            ctx.located(res, "subject", seg, field_no)
            return


def _notes_of_another_group(order: Resource, res: Resource) -> None:
    """A later group of the message naming the same order (one placer and filler number, one test:
    its results split over groups) adds its own notes (NTE after its OBR) to the order, each note
    once: ``Context.put`` keeps what the first group made and adds only absent elements, so every
    later group's notes were lost. A note already on the order (a group repeating another's) is not
    added again; a re-sent message adds none either (``merge.yaml``: notes are a union)."""
    listed = order.setdefault("note", [])
    for note in res["note"]:
        if note not in listed:
            listed.append(note)


def _reasons_of_another_group(order: Resource, res: Resource) -> None:
    """A later group of the message naming the same order adds its reasons (ORC-16, OBR-31) to the
    order's, each once (the same codings: ``merge.yaml``'s key for reasons): ``Context.put`` kept only
    the first group's, and a second group's ORC-16 -- the reason that decides payment -- was lost."""
    listed = order.setdefault("reasonCode", [])
    for reason in res["reasonCode"]:
        coding = reason.get("coding") if isinstance(reason, dict) else None
        if not any(r == reason or (coding and isinstance(r, dict) and r.get("coding") == coding) for r in listed):
            listed.append(reason)


def _intent_stated(obr: Segment | None, ctx: Context) -> bool:
    """Whether OBR-11 states the order's intent: a specimen action code the site's
    ``specimen_action_intent`` maps (G: reflex-order; A, L, O, P, R, S: still a plain order)."""
    code = obr.value(11).strip() if obr is not None else ""
    if not code:
        return False
    vocab = vocabulary(ctx.site, "specimen_action_intent")
    return code in vocab or code.upper() in vocab


def _intent_of_another_group(order: Resource, res: Resource, ctx: Context) -> None:
    """A later group of the message naming the same order states OBR-11 where the first group only
    assumed ``order``: the stated intent is the order's, and no longer assumed."""
    if any(o is order and element == "intent" for o, element in ctx.assumptions):
        order["intent"] = res["intent"]
        ctx.unsay(order, "intent")


def status_from_report(group: Group, ctx: Context, request: dict[str, str], state: str,
                       results: Sequence[dict[str, str]] = ()) -> None:
    """A result message states how far its order got by its own group's report status ``state``
    (``report_status``: the group's OBR-25, else its own OBX-11s), unless ORC-5 states the order's
    own status: ``vocabulary.yaml`` ``order_status_by_report`` -- final or corrected: completed;
    cancelled (OBR-25 X, no results, order cancelled): revoked. Any other (P preliminary, R/I/A/S
    not final yet) leaves the order as it stands: ``active`` only fills an order stored without a
    status, so a late preliminary result does not take a completed order back.

    The group's own status, not its report's: two groups of one message may share a report (one
    filler number) but name two orders (two OBR-4 tests), and the combined report is as far as its
    least advanced group -- before, a final UREA group after a preliminary CREA group left UREA's
    order active. Only groups naming the same order make it as far as the least advanced of them
    (``merge.yaml`` DiagnosticReport ``status.progress``), as they do its report.

    A group none of whose ``results`` stands (``_none_stands``: each withdrawn, or not obtained) states of
    its order what its results give, whatever status on the path OBR-25 states: OBR-25 F or C beside W alone
    completed the order -- the first message huren met of a report being the LIS's withdrawal (its final
    quarantined, or sent before go-live), the report entered-in-error (``MergeRules._withdrawn_first``) and
    its order "fully completed. No further activity will occur" (R4 request-status ``completed``), though
    the lab says the one result it posted was wrong and a re-measurement may follow. Every one withdrawn
    (entered-in-error) maps to no order status: the order stays as it stands (``active`` fills one stored
    without a status) -- R4's ``entered-in-error`` ("this request should never have existed") and
    ``revoked`` ("terminated prior to ... completion") would say the order was wrong or called off, and
    table 0085's W says only that the result was ("post original as wrong"). Some not obtained (cancelled)
    revokes it, as the same results under OBR-25 empty always did: "results cannot be obtained" ends the
    request before its completion. ORC-5 is the order's own status and stands -- but for a completion
    (CM: ``completed``), which such a group's results do not bear out any more than OBR-25's F does the
    report's: many LIS send ORC-5 CM on every result message, the W too. It is not taken (W at ORC-5) and
    the order is as the results give it (sfix39's LOW; fortieth round, st40). Where the order stands completed
    after all -- a later group of the message completes it (kfix40), or the message leaves it as it stands and
    it stands completed already (the LIS's W after its final: the final's CM stored; stfix40) -- the W is taken
    back (``Context.completion_warned``, one settle step reading the order's status as the merge left it, after
    the write: ``convert.settle_completion``, stfix41): nothing of the order was changed or left unchanged by the CM, and an
    operator read the W as the order taken back."""
    none = _none_stands(ctx, {ctx.resources[r["reference"]]["status"] for r in results
                              if r["reference"] in ctx.resources}) if results else None
    ref = request["reference"]
    if group.orc is not None and group.orc.value(5):
        if none is None or ctx.resources[ref].get("status") != "completed":
            _stated_progress(group, ctx, ref, none or state)
            return
        if _earlier_stands(ctx, ref, none):
            return  # an earlier group of the message naming this order completed it: its CM stands, no W
        given = vocabulary(ctx.site, "order_status_by_report").get(none)
        said = group.orc.error(
            f"ORC-5 '{group.orc.value(5)}' (completed) was not stored: every result of the order's group is "
            f"{'withdrawn' if none == 'entered-in-error' else 'withdrawn or not obtained'} (OBX-11) -- "
            + (f"the order is {given}" if given else "the order stays as it stands"), 5, code=MESSAGE_ACCEPTED)
        ctx.warn(said)
        ctx.completion_warned[ref] = said  # (taken back where the order stands completed after all: settle_completion)
    state = none or state
    if _earlier_stands(ctx, ref, state):
        return  # an earlier group of the message naming this order is as far or less: it stands
    ctx.order_progress[ref] = state
    order = ctx.resources[ref]
    # ORC-1 RE (observations to follow) says results come, not how far the order got
    ctx.unsay(order, "status")
    status = vocabulary(ctx.site, "order_status_by_report").get(state)
    order["status"] = status or "active"
    if status is None:
        ctx.assumed(order, "status")
    elif group.obr is not None and group.obr.value(25):
        ctx.located(order, "status", group.obr, 25)


def _earlier_stands(ctx: Context, ref: str, state: str) -> bool:
    """Whether an earlier group of the message naming order ``ref`` got as far as report status ``state``
    or less (``order_progress``; ``_less_advanced``: withdrawn and not obtained state no progress and give
    way): the order is as far as the least advanced of its groups, whichever states it first."""
    earlier = ctx.order_progress.get(ref)
    return earlier is not None and not _less_advanced(ctx, state, earlier)


def _stated_progress(group: Group, ctx: Context, ref: str, state: str) -> None:
    """A group whose ORC-5 states its order's status (taken: ``status_from_report``) records how far its report
    got (``state``) as every other group of the message naming the order does (``order_progress``). It returned
    before recording any: beside its final WBC (ORC-5 CM) the same order's withdrawn HGB group (ORC-5 CM too,
    the county LIS habit) found no earlier progress, warned that the CM was not stored and set the order
    active, so the order of a final result never completed (review rv40k MED 1; fortieth round, kfix40).
    Where it is less advanced than an earlier group's (the withdrawn group first), the order is what this
    group's ORC states (``order_status_stated``): its CM completes what the withdrawn group left active."""
    if _earlier_stands(ctx, ref, state):
        return
    first = ref not in ctx.order_progress
    ctx.order_progress[ref] = state
    if first:
        return  # (the order is this group's own: ``service_request`` made it from this ORC)
    status, field_no = order_status_stated(group.orc, ctx)
    if status is None:
        return
    order = ctx.resources[ref]
    ctx.unsay(order, "status")
    order["status"] = status
    assert group.orc is not None
    ctx.located(order, "status", group.orc, field_no)


def _none_stands(ctx: Context, statuses: set[str]) -> str | None:
    """The report status a group's results' ``statuses`` give when none of them stands -- ``merge.yaml``'s
    ``all_results`` (DiagnosticReport.status), the first entry that holds: every one withdrawn (OBX-11 W/D),
    entered-in-error; withdrawn or not obtained (X), cancelled -- else None (one stands, or none is sent)."""
    for status, of in all_results_of(ctx.site.merge, "DiagnosticReport", "status") if statuses else ():
        if statuses <= of:
            return status
    return None


def _less_advanced(ctx: Context, status: str, than: str) -> bool:
    """Whether report status ``status`` is less advanced than ``than``: ``merge.yaml``
    DiagnosticReport ``status.progress``, the one order the merge rules weigh reports by across
    messages (a status not listed -- cancelled, entered-in-error, unknown -- states no progress and
    gives way)."""
    progress = progress_of(ctx.site.merge, "DiagnosticReport", "status")
    return progress.get(status, 99) < progress.get(than, 99)


def report_status(group: Group, ctx: Context, results: list[dict[str, str]]) -> str:
    """How far one group's report got: its OBR-25 (``report_status``), else its own results'
    OBX-11 (``_status_from_results``) -- the group's, before any other group of the message for
    the same report is weighed (``_another_group``)."""
    obr = group.obr
    status_code = obr.value(25).strip() if obr is not None else ""
    status = vocabulary(ctx.site, "report_status").get(status_code) if status_code else None
    if status is None:
        if status_code:
            ctx.note_unmapped("report_status", status_code, "OBR-25")
        status = _status_from_results(ctx, results)
    elif status == "final" and _corrected(ctx, results):
        # OBR-25 F beside a result the lab corrected (OBX-11 C) or amended (A): table 0123's F "can only
        # be changed with a corrected result", and the group carries one -- R4's corrected, "modified
        # subsequent to being final ... to correct an error in the report or referenced results", as
        # OBR-25 empty already read it (``_status_from_results``). The report stayed final beside its
        # result corrected (thirty-ninth round, stat39)
        status = "corrected"
    return status


def _corrected(ctx: Context, results: list[dict[str, str]]) -> bool:
    """Whether one of a group's ``results`` was corrected or amended after its final (``CORRECTED``)."""
    return any((ctx.resources.get(r["reference"]) or {}).get("status") in CORRECTED for r in results)


def withdrawn(obx: Segment, ctx: Context) -> bool:
    """Whether the sender withdrew this OBX: its OBX-11 maps (``vocabulary.yaml``
    ``observation_status``) to R4 entered-in-error (table 0085 D "deletes the OBX record", W "post
    original as wrong"). Its Observation is still stored, as sent; its words are no part of what the
    report states -- its conclusion (``pacs._conclusion``) or the text document built from its text
    results (``lis.convert_orders``). Before, a finding posted as wrong read as the report's
    conclusion to every clinician and system reading the repository (thirty-first round, convw31)."""
    code = obx.value(11).strip()
    return bool(code) and vocabulary(ctx.site, "observation_status").get(code) == "entered-in-error"


DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


def absent_concept(ctx: Context, seg: Segment, field_no: int, element: str) -> dict[str, Any]:
    """A CodeableConcept the message left empty: the data-absent-reason extension says so (the
    element stays present for what requires it), a warning locates it, and the fidelity report
    counts it as ``absent`` for the sender."""
    where = f"{seg.name}-{field_no}" if field_no else seg.name
    ctx.note_unmapped("absent", element, where)
    ctx.warn(seg.error(f"{where}: no value for {element}; stored as data-absent 'unknown'", field_no or None,
                       code=REQUIRED_FIELD_MISSING))
    return {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "unknown"}]}


def _participant(prt: Segment, ctx: Context, res: Resource, role: str) -> None:
    """PRT (v2.7+ participation): the person (PRT-5) as requester (PRT-4 OP, ordering provider)
    when none is named yet, else as a performer."""
    who = practitioner(prt.rep(5), ctx) if prt.value(5) else None
    if who is None:
        return
    if role == "requester" and "requester" not in res:
        res["requester"] = who
    elif who not in res.get("performer", ()):
        res.setdefault("performer", []).append(who)


def specimens(
    group: Group, ctx: Context, subject: dict[str, str], request: dict[str, str], key: str
) -> list[dict[str, str]]:
    refs = []
    for spm in group.spm:
        res: Resource = {"resourceType": "Specimen", "subject": subject, "request": [request]}
        apply_table("spm_specimen", {"SPM": spm}, ctx, res)
        ident = spm.value(2, comp=1, sub=1) or spm.value(2, comp=2, sub=1)
        if ident:
            res["identifier"] = [{"system": f"urn:huren:specimen:{ctx.urn_code}", "value": ident}]
        for sac in group.sac:  # SAC-3 container identifier, SAC-2 accession (OUL^R23/R24)
            container = ei(sac.rep(3), {}, ctx)
            if container:
                res.setdefault("container", []).append({"identifier": [container]})
            accession = ei(sac.rep(2), {}, ctx)
            if accession and "accessionIdentifier" not in res:
                res["accessionIdentifier"] = accession
        if ident:  # another patient under it is refused there (merge.yaml ``another_person``)
            ctx.located(res, "subject", spm, 2)
        ref = ctx.put(res, f"spm|{ident}" if ident else f"{key}|spm|{spm.value(1) or spm.sequence}")
        made = ctx.resources[ref["reference"]]
        if made is not res and request not in made["request"]:
            made["request"].append(request)  # one specimen, several orders on it (OML^O33, OUL)
        refs.append(ref)
    obr = group.obr
    if not refs and obr is not None and obr.value(15):
        # v2.3/2.4: OBR-15 specimen source (code&text&system ^ additives ^ free text ^ body site)
        rep = obr.rep(15)
        res = {"resourceType": "Specimen", "subject": subject, "request": [request]}
        code, text, system = rep.comp(1, 1).strip(), rep.comp(1, 2).strip(), rep.comp(1, 3).strip()
        if code or text:
            coding: dict[str, Any] = {}
            if code:
                coding = {
                    "system": common.system_for(ctx, system)
                    if system
                    else "http://terminology.hl7.org/CodeSystem/v2-0487",
                    "code": code,
                }
                if text:
                    coding["display"] = text
            res["type"] = {**({"coding": [coding]} if coding else {}), **({"text": text} if text else {})}
        if rep.comp(4).strip():
            res["collection"] = {"bodySite": {"text": rep.comp(4).strip()}}
        collected = _collected(obr, ctx)
        if collected:
            res.setdefault("collection", {}).update(collected)
        refs.append(ctx.put(res, f"{key}|obr15"))
    return refs


def _collected(obr: Segment, ctx: Context) -> dict[str, Any]:
    """OBR-7 (and OBR-8, the end of a timed collection: a 24-hour urine) → the collection time of a
    specimen named by OBR-15 (IG "OBR to Specimen": a period when OBR-8 is valued, as the report's)."""
    times: dict[str, str] = {}
    for fno, name in ((7, "start"), (8, "end")):
        if obr.value(fno):
            try:
                times[name] = to_fhir_datetime(obr.value(fno), ctx.tz)
            except TimestampError as exc:
                ctx.warn(obr.error(f"OBR-{fno}: {exc}", fno, code=DATA_TYPE_ERROR))
    if not obr.has(8):
        return {"collectedDateTime": times["start"]} if "start" in times else {}
    return {"collectedPeriod": times} if times else {}


def observation(
    obx: Segment,
    group: Group,
    ctx: Context,
    category: dict[str, Any] | None,
    subject: dict[str, str],
    encounter: dict[str, str] | None,
    performer: dict[str, str],
    key: str,
    specimen: dict[str, str] | None,
    *,
    plan: bool = False,
) -> tuple[dict[str, str] | None, dict[str, Any] | None]:
    """OBX → Observation; returns (reference, attachment) — ED values become an attachment for the
    report instead of an Observation (R4 Observation has no valueAttachment). ``performer``: the
    result's own, OBX-23's or the sender (``result_performer``).

    ``plan``: the caller changes the Observation no further, so a numeric result may be built
    from the compiled plan of its description (``plans``), or teach one."""
    described = plans.describe(obx, group, ctx, category, encounter, performer, specimen) if plan else None
    if described is None:
        return _observation(obx, group, ctx, category, subject, encounter, performer, key, specimen)
    description, entry, text, bound, by = described
    known = entry.plans.get(description, plans.UNKNOWN)
    if known is None:  # a description whose Observation has a shape no plan makes
        return _observation(obx, group, ctx, category, subject, encounter, performer, key, specimen)
    if known is not plans.UNKNOWN:
        built = plans.build(known, obx, ctx, text, category, subject, encounter, performer, specimen, bound)
        if built is not None:
            res, planned = built
            ref = ctx.put(res, key)
            if ctx.resources.get(ref["reference"]) is res:
                ctx.planned[ref["reference"]] = planned
            return ref, None
    warned, told = len(ctx.warnings), len(ctx.deletes)
    with ctx.recording() as noted:
        ref, attachment = _observation(obx, group, ctx, category, subject, encounter, performer, key, specimen)
    if ref is not None and len(ctx.warnings) == warned:
        res = ctx.resources.get(ref["reference"])
        if res is not None and res.get("id") == ref["reference"].split("/", 1)[1] and attachment is None:
            plans.learn(description, entry, res, category, subject, encounter, performer, specimen, noted, by,
                        deletes=ctx.deletes[told:])
    return ref, attachment


def _observation(
    obx: Segment,
    group: Group,
    ctx: Context,
    category: dict[str, Any] | None,
    subject: dict[str, str],
    encounter: dict[str, str] | None,
    performer: dict[str, str],
    key: str,
    specimen: dict[str, str] | None,
) -> tuple[dict[str, str] | None, dict[str, Any] | None]:
    vtype = obx.value(2).strip().upper()
    res: Resource = {"resourceType": "Observation"}
    if category:
        res["category"] = [category]
    status_code = obx.value(11).strip()
    status = vocabulary(ctx.site, "observation_status").get(status_code) if status_code else None
    if status is None:
        if status_code:
            ctx.note_unmapped("observation_status", status_code, "OBX-11")
        ctx.warn(
            obx.error(f"OBX-11 result status {status_code!r} is missing or unknown; stored as 'unknown'", 11)
        )
        status = "unknown"
    res["status"] = status
    ctx.located(res, "status", obx, 11)  # (a status the merge holds or refuses: ERR-2 names this OBX-11)
    # (a value, range or flag the merge holds: ERR-2 names OBX-5, 7, 8 -- located when an issue names it,
    # tfix35; rerun35)
    ctx.located_later(res, obx, LOCATED_LATER)
    code = common.coded_item(obx, 3, ctx)
    if code is None:
        code = {"text": obx.value(3, comp=2) or f"{vtype or 'OBX'} result"}
    res["code"] = code
    res["subject"] = subject
    if encounter:
        res["encounter"] = encounter
    attachment = None
    if vtype == "ED":
        attachment = _attachment(obx, ctx)
        if attachment is not None:
            return None, attachment
    else:
        _value(obx, vtype, res, ctx)
    if _VALUE_KEYS.isdisjoint(res) and obx.field(5) == '""':
        # HL7's explicit null: the lab deleted the value (not "no change", as an empty OBX-5 is) --
        # stored as an empty one is (data-absent, as R4 obs-6 allows) and the stored value goes
        ctx.delete(res, "value[x]")
    if _VALUE_KEYS.isdisjoint(res):  # why there is no value: OBX-11 says it for X and N (IG)
        reason = vocabulary(ctx.site, "observation_absent_reason").get(status_code, "unknown")
        if reason:
            res["dataAbsentReason"] = {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": reason}]
            }
            # beside a stored value the reason is not stored (a value stands until OBX-5 "" deletes
            # it): the ACK's warning names the empty OBX-5, not just the element (``LOCATED_LATER``)
    ranges = _reference_range(obx, ctx, res)
    if ranges:
        res["referenceRange"] = ranges
    interp = _interpretation(obx, ctx)
    if interp:
        res["interpretation"] = interp
    elif obx.field(8) == '""':  # HL7's explicit null: a corrected result no longer flagged (H, L...)
        ctx.delete(res, "interpretation")
    apply_table("obx_observation", {"OBX": obx}, ctx, res)
    if "effectiveDateTime" not in res:
        taken = _effective(obx, group, ctx, res)
        if taken:
            # the time and the field it was taken from, marked in its primitive twin (``TAKEN_FROM_EXT``): the
            # merge's ``derived`` rule writes it over a stored time taken from a field too (a later report moving
            # OBR-7 moves its results) and never over one OBX-14 stated (rv42b HIGH 2; forty-third round, time43)
            res["effectiveDateTime"], res["_effectiveDateTime"] = taken[0], {
                "extension": [{"url": TAKEN_FROM_EXT, "valueString": taken[1]}]}
        else:  # nothing in the message dates the result: recognition could not place it in time
            raise obx.error("OBX-14 (observation date) is empty and nothing else in the message dates "
                            "the result (OBR-7/8/22, RXA-3, EVN-6/EVN-2, MSH-7)", 14, code=REQUIRED_FIELD_MISSING)
    res.setdefault("performer", []).insert(0, performer)  # the result's own (``result_performer``)
    head = elr_fields.director(obx, ctx, performer, res)  # OBX-25: a PractitionerRole MDIR at that performer
    if head is not None:
        res["performer"].append(head)
    elr_fields.note_unread(obx, ctx, "obx_observation")  # the OBX fields no rule reads, counted (fidelity)
    for prt in group.prt.get(obx.position, ()):
        _participant(prt, ctx, res, "performer")
    if specimen:
        res["specimen"] = specimen
    if group.notes:
        notes = [t for t in map(common.note_text, group.notes.get(obx.position, ())) if t]
        if notes:
            res["note"] = [{"text": t} for t in notes]
    return ctx.put(res, key), None


def result_performer(obx: Segment, ctx: Context, sender: dict[str, str]) -> dict[str, Any]:
    """The organisation that performed a result: OBX-23's (``actors.performing_organization``)
    stands for the sender (the IG's mapping), else the sender. Callers pass what this gives to
    ``observation`` as its ``performer``; a result loop asks once per distinct OBX-23 of its group
    (``lis``), so its results share one performer object as they share the sender's and are built
    from compiled plans keyed by it (``plans._shared``)."""
    fields = obx.fields
    if len(fields) > 23 and fields[23]:
        return performing_organization(obx.rep(23), ctx) or sender
    return sender


def _effective(obx: Segment, group: Group, ctx: Context, res: Resource) -> tuple[str, str] | None:
    """When OBX-14 is empty: OBR-7 (collection), OBR-8 (collection end), OBR-22 (report); in a
    group without OBR the administration it follows (RXA-3: a vaccination's eligibility and VIS
    observations), else EVN-6 (event occurred), EVN-2 (recorded) — an ADT's observations; then
    MSH-7, with a warning whenever it is not the OBR's — the result date decides recognition
    windows, so it is never left out while the message dates anything. Located at the field it
    was taken from (not OBX-14, ``LOCATED_LATER``): a correction's time not stored is warned there
    (merge.yaml ``exam_time``; prior42). Returns the time and the field it was taken from (``OBR-7``)."""
    candidates: list[tuple[Segment, int]] = []
    if group.obr is not None:
        candidates += [(group.obr, 7), (group.obr, 8), (group.obr, 22)]
    else:
        segments = ctx.message.segments
        rxa = next((s for s in reversed(segments[: obx.position]) if s.name in ("RXA", "ORC", "PID")), None)
        if rxa is not None and rxa.name == "RXA":
            candidates.append((rxa, 3))
        evn = ctx.message.get("EVN")
        if evn is not None:
            candidates += [(evn, 6), (evn, 2)]
    msh = ctx.message.msh
    candidates.append((msh, 7))
    for seg, fno in candidates:
        text = seg.value(fno)
        if not text:
            continue
        try:
            value = to_fhir_datetime(text, ctx.tz)
        except TimestampError as exc:
            ctx.warn(seg.error(f"{seg.name}-{fno}: {exc}", fno, code=DATA_TYPE_ERROR))
            continue
        if seg is not group.obr:
            ctx.warn(obx.error(f"OBX-14 (and OBR-7/8/22) empty: the result date is taken from {seg.name}-{fno}",
                               14))
        ctx.located(res, "effectiveDateTime", seg, fno)
        return value, f"{seg.name}-{fno}"
    return None


_TEXT_LIKE = frozenset({"ST", "TX", "FT", "TN", "ID", "IS", "RP", "NA"})


def _value(obx: Segment, vtype: str, res: Resource, ctx: Context, only: Any = None) -> None:
    """OBX-5 → value[x]. A repeating OBX-5 of a coded, numeric or date type keeps its first value
    as value[x] and every further one as a component with the same code (the IG makes repeats
    components; keeping the first as the value keeps what recognition reads): nothing is dropped."""
    reps = [only] if only is not None else [r for r in obx.reps(5) if r]  # "~~" repeats nothing
    if not reps:
        return
    if only is None and len(reps) > 1 and vtype not in _TEXT_LIKE and "code" in res:
        for rep in reps[1:]:
            part: Resource = {}
            _value(obx, vtype, part, ctx, rep)
            values = {k: v for k, v in part.items() if k.startswith("value")}
            if values:
                res.setdefault("component", []).append({"code": json_copy(res["code"]), **values})
    unit_rep = obx.rep(6)
    try:
        if vtype == "NM":
            text = reps[0].comp(1).strip()
            bound = _BOUND.match(text)
            if bound:  # "<0.5" in an NM field: read as SN, as senders mean
                res["valueQuantity"] = _quantity(bound.group(2), unit_rep, ctx)
                res["valueQuantity"]["comparator"] = _COMPARATOR.get(bound.group(1), bound.group(1))
            else:
                res["valueQuantity"] = _quantity(text, unit_rep, ctx)
        elif vtype == "SN":
            _structured_numeric(reps[0], unit_rep, res, ctx)
        elif vtype in ("ST", "TX", "FT", "TN", "ID", "IS"):
            res["valueString"] = fhir_string(obx, 5, "\n".join(r.text() for r in reps))
        elif vtype in ("CWE", "CE", "CNE", "CF", "CV"):
            concept = cwe(reps[0], {}, ctx)
            if concept:
                res["valueCodeableConcept"] = concept
        elif vtype == "DT":
            res["valueDateTime"] = to_fhir_date(reps[0].comp(1))
        elif vtype in ("TS", "DTM"):
            res["valueDateTime"] = to_fhir_datetime(reps[0].comp(1), ctx.tz)
        elif vtype == "TM":
            res["valueTime"] = _time(reps[0].comp(1).strip())
        elif vtype == "DR":
            res["valuePeriod"] = _period(reps[0], ctx)
        elif vtype == "NR":
            res["valueRange"] = _numeric_range(reps[0], unit_rep, ctx)
        elif vtype == "RP":
            res["valueString"] = reps[0].comp(1)
        elif vtype == "NA":
            res["valueString"] = reps[0].text()
        else:
            ctx.warn(obx.error(f"OBX-2 value type {vtype!r} is not supported; the value is kept as text", 2))
            ctx.note_unmapped("value_type", vtype, "OBX-2")
            res["valueString"] = reps[0].text()
    except (ValueError, TimestampError) as exc:
        ctx.warn(obx.error(f"OBX-5 is not a valid {vtype}: {exc}; kept as text", 5, code=DATA_TYPE_ERROR))
        for key in [k for k in res if k.startswith("value")]:
            res.pop(key)
        res["valueString"] = reps[0].text()


def fhir_string(seg: Segment, field_no: int, text: str) -> str:
    """``text`` as a FHIR string, or AE at the field when it is longer than R4 allows (§2.24.0.1, 1 MB;
    ``conformance.validate.MAX_STRING``): the sender's value, located, not the validator's refusal of
    the converted resource answered as an internal error (207) with no location (probeh25)."""
    if len(text) > MAX_STRING:
        raise seg.error(f"{seg.name}-{field_no} is {len(text):,} characters; a FHIR R4 string holds at most "
                        f"{MAX_STRING:,} (send it as an ED attachment, or split it)", field_no, code=DATA_TYPE_ERROR)
    return text


def _period(rep: Any, ctx: Context) -> dict[str, str]:
    """DR (range start ^ range end, each a DTM -- a v2.3 TS's first subcomponent) → valuePeriod
    (IG: OBX-2 DR → valuePeriod); either end may be open, not both, and it may not end before it
    starts (R4 per-1; ``20261128^20261125`` was stored so) -- ``ValueError``: kept as text."""
    period = {}
    for comp, name in ((1, "start"), (2, "end")):
        text = rep.comp(comp, 1).strip()
        if text:
            period[name] = to_fhir_datetime(text, ctx.tz)
    if not period:
        raise ValueError("a date/time range needs a start or an end")
    if len(period) == 2 and _ends_before_it_starts(period["start"], period["end"], ctx.tz):
        raise ValueError(f"the range ends ({period['end']}) before it starts ({period['start']})")
    return period


# a TS's second component before v2.5: its degree of precision (v2.3 2.8.44; table 0529), never a date
_PRECISION = frozenset("YLDHMS")


def _range_end(rep: Any) -> str:
    """A DR's end as sent, or "": a field that was a TS in the sender's version (FT1-4 before v2.4) has its degree
    of precision there (``20261201080000^S``), which is no end (review rv42c MED 4: it had been read as a range
    ending at "S", W 102 and no date stored -- the line left out of the settlement)."""
    end = rep.comp(2, 1).strip()
    return "" if end.upper() in _PRECISION else end


def range_start_alone(rep: Any, rule: dict[str, Any], ctx: Context) -> str | None:
    """A DR (range start ^ end) whose end is not sent → its start as a dateTime; None when the range has an
    end (``range_period`` states it then). The pair is the one reading of a DR stated as a FHIR choice of
    ``...DateTime`` or ``...Period`` (SPM-17 collection, FT1-4 transaction date)."""
    if _range_end(rep):
        return None
    start = rep.comp(1, 1).strip()
    return to_fhir_datetime(start, ctx.tz) if start else None


def range_period(rep: Any, rule: dict[str, Any], ctx: Context) -> dict[str, str] | None:
    """A DR with its end sent → the Period (``_period``: a range ending before it starts is ``ValueError``,
    warned at the field and left out); None for a start alone (``range_start_alone``)."""
    return _period(rep, ctx) if _range_end(rep) else None


def collected(rep: Any, rule: dict[str, Any], ctx: Context) -> dict[str, Any] | None:
    """SPM-17 (DR: collection start ^ end) → ``collectedDateTime`` for a start alone, else
    ``collectedPeriod`` (IG "SPM to Specimen": SPM-17.2 valued); the rule merges it into
    ``collection``. Reading the start alone as a DTM dropped the end of a timed collection (a
    24-hour urine read as collected at one moment, twentieth round). A range that ends before it
    starts is ``ValueError`` (R4 per-1): warned at the field and left out."""
    period = range_period(rep, rule, ctx)
    if period is not None:
        return {"collectedPeriod": period}
    start = range_start_alone(rep, rule, ctx)
    return {"collectedDateTime": start} if start else None


CONVERTERS["DR_COLLECTED"] = collected
CONVERTERS["DR_START_ALONE"] = range_start_alone
CONVERTERS["DR_PERIOD"] = range_period


def _ends_before_it_starts(start: str, end: str, tz: str) -> bool:
    """Whether every instant ``end`` may mean is before every one ``start`` may mean (each at its own
    precision: ``2026-11-28`` is the whole day). A date has no offset: it is a day on the sender's
    clock, the institution's zone ``tz``, so a time beside it is compared by its date in that zone
    (``20261128^20261127230000`` ends the evening before: reversed; a 14-hour slack let it through,
    eighteenth round) -- the date's own precision, a month or a year, likewise."""
    if ("T" in start) == ("T" in end):
        return date_range(end)[1] <= date_range(start)[0]
    if "T" in start:
        return end < _local_date(start, tz)[: len(end)]
    return _local_date(end, tz)[: len(start)] < start


def _local_date(value: str, tz: str) -> str:
    """The ``YYYY-MM-DD`` of a FHIR dateTime with a time on the clock of zone ``tz``."""
    return datetime.fromisoformat(value).astimezone(zone(tz)).date().isoformat()


def _numeric_range(rep: Any, unit_rep: Any, ctx: Context) -> dict[str, Any]:
    """NR (low ^ high) → valueRange (IG: OBX-2 NR → valueRange), each bound in OBX-6's unit as an
    SN range's are; an open end is left out, not both (``ValueError``: kept as text)."""
    out: dict[str, Any] = {}
    for comp, name in ((1, "low"), (2, "high")):
        text = rep.comp(comp).strip()
        if text:
            out[name] = _quantity(text, unit_rep, ctx)
    if not out:
        raise ValueError("a numeric range needs a low or a high number")
    return _in_order(out)


def _in_order(rng: dict[str, Any]) -> dict[str, Any]:
    """A Range whose low is not above its high (R4 rng-2, both in OBX-6's unit), else ``ValueError``:
    ``6.10^3.90`` is kept as text with a warning, as a DR ending before it starts is."""
    if "low" in rng and "high" in rng and float(rng["low"]["value"]) > float(rng["high"]["value"]):
        raise ValueError(f"the range's low ({rng['low']['value']}) is above its high ({rng['high']['value']})")
    return rng


# HL7 TM without its offset: HH[MM[SS[.S[S[S[S]]]]]]
_TM = re.compile(r"([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(\.[0-9]{1,4})?)?)?\Z")


def _time(text: str) -> str:
    """HL7 TM → FHIR time, keeping fractional seconds. Anything else raises ``ValueError`` (kept
    as text with a warning): an hour, minute or second out of range, more digits than TM has
    (``08301599`` was cut to 08:30:15), or an offset (``+0800``), which a FHIR time cannot hold."""
    m = _TM.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a time (HH[MM[SS[.SSSS]]], no offset)")
    hour, minute, second, fraction = m.group(1), m.group(2) or "00", m.group(3) or "00", m.group(4) or ""
    if int(hour) > 23 or int(minute) > 59 or int(second) > 59:
        raise ValueError(f"{text!r} is not a time of day")
    return f"{hour}:{minute}:{second}{fraction}"


def _quantity(text: str, unit_rep: Any, ctx: Context) -> dict[str, Any]:
    qty: dict[str, Any] = {"value": decimal(text)}
    _unit(qty, unit_rep, ctx)
    return qty


def _unit(qty: dict[str, Any], unit_rep: Any, ctx: Context) -> None:
    """OBX-6 → a Quantity's unit, system and code (UCUM when the site's unit table maps it)."""
    unit_code, unit_text, unit_system = (
        unit_rep.comp(1).strip(),
        unit_rep.comp(2).strip(),
        unit_rep.comp(3).strip(),
    )
    original = unit_code or unit_text
    if original:
        qty["unit"] = unit_text or unit_code
        if unit_system.upper() in ("UCUM", "UCM") and unit_code:
            qty["system"], qty["code"] = UCUM, unit_code
        else:
            ucum = ctx.site.ucum(ctx.code, unit_code) or (
                ctx.site.ucum(ctx.code, unit_text) if unit_text else None
            )
            if ucum:
                qty["system"], qty["code"] = UCUM, ucum
            else:
                ctx.note_unmapped("unit", original, "OBX-6")
                if unit_code:  # kept as sent (the IG keeps OBX-6.1), in the sender's unit system
                    system = common.system_for(ctx, unit_system) if unit_system else f"urn:huren:unit:{ctx.urn_code}"
                    qty["system"], qty["code"] = system, unit_code


def _structured_numeric(rep: Any, unit_rep: Any, res: Resource, ctx: Context) -> None:
    """SN (comparator ^ num1 ^ separator/suffix ^ num2) → valueQuantity, valueRatio, valueRange or
    (``2+``) valueString. What FHIR cannot hold exactly raises ``ValueError`` (the caller keeps
    the value as text with a warning) instead of being dropped: a comparator on a range or a
    ``+`` suffix, an unknown comparator or separator, a second number without a separator, a
    ratio without both numbers. A ratio's comparator (a titre ``<^1^:^128``) is its numerator's,
    as R4's Ratio.numerator is a Quantity. A sender that writes the number whole into SN.1
    (``<0.10``, ``5.2``: no component separators) is read as NM reads it, not dropped."""
    comparator, num1, sep, num2 = (rep.comp(i).strip() for i in (1, 2, 3, 4))
    if comparator and not (num1 or sep or num2):
        bound = _BOUND.match(comparator)
        comparator, num1 = (bound.group(1), bound.group(2)) if bound else ("", comparator)
    if comparator in ("", "="):
        comparator = ""
    else:
        comparator = _COMPARATOR.get(comparator, comparator)
        if comparator not in _FHIR_COMPARATORS:
            raise ValueError(f"comparator {comparator!r} has no FHIR equivalent")
    if sep in (":", "/"):
        if not (num1 and num2):
            raise ValueError(f"a ratio needs two numbers ({num1 or '?'}{sep}{num2 or '?'})")
        numerator: dict[str, Any] = {"value": decimal(num1)}
        if comparator:
            numerator["comparator"] = comparator
        res["valueRatio"] = {"numerator": numerator, "denominator": {"value": decimal(num2)}}
        return
    if comparator and sep:
        raise ValueError(f"comparator {comparator!r} with separator {sep!r} has no FHIR equivalent")
    if sep == "-":
        if not (num1 or num2):
            return
        rng: dict[str, Any] = {}
        if num1:
            rng["low"] = _quantity(num1, unit_rep, ctx)
        if num2:
            rng["high"] = _quantity(num2, unit_rep, ctx)
        res["valueRange"] = _in_order(rng)
    elif sep == "+":
        if num2:
            raise ValueError(f"a second number after the suffix '+' ({num2!r})")
        if num1:
            res["valueString"] = f"{num1}+"
    elif sep:
        raise ValueError(f"separator/suffix {sep!r} is not one of - + / :")
    elif num2:
        raise ValueError(f"a second number ({num2!r}) without a separator")
    elif num1:
        qty = _quantity(num1, unit_rep, ctx)
        if comparator:
            qty["comparator"] = comparator
        res["valueQuantity"] = qty


_FHIR_COMPARATORS = frozenset({"<", "<=", ">=", ">"})


def _reference_range(obx: Segment, ctx: Context, res: Resource) -> list[dict[str, Any]]:
    # OBX-7 does not repeat (ST in every version): a repetition separator in it is a "~" the
    # sender left unescaped ("3.5~9.5", a common way to write a range), so the field is read
    # whole; reading only its first "repetition" stored the range as "3.5". An empty repetition
    # before or after it ("57-111~") holds nothing and is not part of the range
    reps = obx.reps(7)
    text = (reps[0].text() if len(reps) == 1 else obx.enc.repetition.join(r.text() for r in reps)).strip()
    text = text.strip(obx.enc.repetition + " ")
    if not text:
        return []
    rng: dict[str, Any] = {"text": text}
    bounds = _range_bounds(text)
    if not bounds:
        return [rng]
    unit = res.get("valueQuantity")
    if unit is None:
        # no numeric value (a text or coded answer, none at all, a ratio or range): the bounds
        # still carry OBX-6's unit. Without it a later message with no value stored the range
        # unit-less over the earlier one's (a thinner message erasing what was stated)
        unit = {}
        if obx.has(6):
            _unit(unit, obx.rep(6), ctx)
    base = {k: unit[k] for k in ("unit", "system", "code") if k in unit}
    for bound, value in bounds:
        rng[bound] = {"value": value, **base}
    return [rng]


@lru_cache(maxsize=4096)
def _range_bounds(text: str) -> tuple[tuple[str, int | float], ...]:
    """``3.5-9.5`` → low and high; ``<5`` → high, ``>=2`` → low; else nothing (text only).
    Cached: an institution sends the same reference range with every result of an item."""
    m = _RANGE.match(text)
    if m:
        return (("low", decimal(m.group(1))), ("high", decimal(m.group(2))))
    b = _BOUND.match(text)
    if b:
        op = _COMPARATOR.get(b.group(1), b.group(1))
        return (("high" if op.startswith("<") else "low", decimal(b.group(2))),)
    return ()


def _interpretation(obx: Segment, ctx: Context) -> list[dict[str, Any]]:
    out = []
    vocab = vocabulary(ctx.site, "interpretation")
    for rep in obx.reps(8):
        code = rep.comp(1).strip()
        if not code:
            continue
        mapped = vocab.get(code) or vocab.get(code.upper())
        if mapped:
            concept: dict[str, Any] = {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", **mapped}]
            }
            # The sender's own words (CWE-9, else CWE-2: "偏高") are the concept's text, as the
            # v2-to-FHIR IG maps CWE; the coding keeps v3's display.
            words = rep.comp(9).strip() or rep.comp(2).strip()
            if words:
                concept["text"] = words
            out.append(concept)
        else:
            ctx.note_unmapped("interpretation", code, "OBX-8")
            out.append({"coding": [{"system": ctx.local_system, "code": code}],
                        "text": rep.comp(9).strip() or rep.comp(2).strip() or code})
    return out


def _attachment(obx: Segment, ctx: Context) -> dict[str, Any] | None:
    """ED: source ^ type ^ subtype ^ encoding ^ data → Attachment."""
    rep = obx.rep(5)
    kind, subtype, encoding, data = rep.comp(2), rep.comp(3), rep.comp(4).upper(), rep.comp(5)
    if not data:
        return None
    content_type = _mime(kind, subtype)
    if encoding == "BASE64":
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError:
            ctx.warn(obx.error("OBX-5.5 is not valid Base64", 5, 5, code=DATA_TYPE_ERROR))
            return None
    elif encoding == "HEX":
        try:
            raw = bytes.fromhex(data)
        except ValueError:
            ctx.warn(obx.error("OBX-5.5 is not valid hexadecimal", 5, 5, code=DATA_TYPE_ERROR))
            return None
    else:
        raw = data.encode("utf-8")
    att = {"contentType": content_type, "data": base64.b64encode(raw).decode("ascii")}
    title = obx.value(3, comp=2)
    if title:
        att["title"] = title
    return att


def _mime(kind: str, subtype: str) -> str:
    kind, subtype = kind.strip().upper(), subtype.strip().lower()
    if "/" in subtype:
        return subtype
    known = {
        "PDF": "application/pdf",
        "JPEG": "image/jpeg",
        "JPG": "image/jpeg",
        "PNG": "image/png",
        "RTF": "application/rtf",
        "HTML": "text/html",
        "XML": "application/xml",
        "PLAIN": "text/plain",
        "TIFF": "image/tiff",
        "GIF": "image/gif",
        "DICOM": "application/dicom",
    }
    if subtype.upper() in known:
        return known[subtype.upper()]
    base = {
        "AP": "application",
        "IM": "image",
        "TEXT": "text",
        "AU": "audio",
        "VI": "video",
        "MULTIPART": "multipart",
    }
    if kind in base and subtype:
        return f"{base[kind]}/{subtype}"
    return "application/octet-stream"


def document_text_key(ctx: Context, pkey: str) -> str:
    """The key of a document's text (an MDM's OBX with no order: ``lis.convert_orders``) when its
    TXA names the document (TXA-12, unique document number), else "" (the message's key, as
    before). Keyed by the message, every later message about one document -- an edit (T08, "the
    original document is edited", HL7 v2.5 ch. 9), a status change with content (T04), a resend --
    added another copy of its text beside the stale one, and the copy of a message stating no
    TXA-18 was unlabelled beside the V document. By the document, the edit replaces the text (the
    merge keeps what it leaves out, the label included); an addendum (T06) or a replacement (T10)
    is a document of its own (its own TXA-12, TXA-13 naming the parent) and adds its text."""
    txa = ctx.message.get("TXA")
    number = txa.value(12).strip() if txa is not None else ""
    return f"{pkey}|doc|{number}" if number else ""


def text_form(lines: list[str], title: str) -> dict[str, Any]:
    data = "\n".join(lines).encode("utf-8")
    return {
        "contentType": "text/plain; charset=utf-8",
        "data": base64.b64encode(data).decode("ascii"),
        "title": title,
    }


def _report_performers(group: Group, ctx: Context, sender: dict[str, str]) -> list[dict[str, Any]]:
    """The report's performers: the sender, or, when OBX-23 names who performed its results, each
    organisation that did in the order of its results (the sender for a result without OBX-23).
    Recognition reads a report as of its first performer naming an institution
    (``engine.recognition.facts``): a report whose first result another lab performed is that lab's.
    Each result's performer is ``result_performer``'s (one owner: the report read OBX-23 itself, review
    of convperf29), the sender's own results named with its identifier beside the labs'."""
    own = {**sender, "identifier": {"system": actors.INSTITUTION_SYSTEM, "value": ctx.institution.code}}
    performers = [result_performer(obx, ctx, own) for obx in group.obx]
    if all(who is own for who in performers):
        return [sender]
    out: list[dict[str, Any]] = []
    for who in performers:
        if who not in out:
            out.append(who)
    return out


_NOT_CORRECTIONS = frozenset({"final", "preliminary", "registered", "unknown", "cancelled", "entered-in-error"})


def _corrections_reported(ctx: Context, results: list[dict[str, str]], report: str) -> None:
    """Tell the merge which report lists each result the message states as a correction (a status of the result's
    ``exam_time`` ``by``, merge.yaml: OBX-11 C, A): new to the store, it takes the report's stored exam time
    (``Context.reported_by``; rv42e MED 2, forty-third round, time43). The statuses no such rule names are passed
    over first (a final panel pays a set look-up a result)."""
    by: frozenset[str] | None = None
    for entry in results:
        obs = ctx.resources.get(entry.get("reference", ""))
        status = obs.get("status") if obs is not None else None
        if status is None or status in _NOT_CORRECTIONS:
            continue
        if by is None:
            by = exam_by_of(ctx.site.merge, "Observation")
        if status in by:
            ctx.reported_by(obs, report)  # type: ignore[arg-type]


def diagnostic_report(
    group: Group,
    ctx: Context,
    category: str,
    subject: dict[str, str],
    encounter: dict[str, str] | None,
    performer: dict[str, str],
    request: dict[str, str] | None,
    results: list[dict[str, str]],
    specimen_refs: list[dict[str, str]],
    forms: list[dict[str, Any]],
    key: str,
    conclusion: str = "",
    status: str | None = None,
) -> dict[str, str]:
    """OBR (+ the group's results, specimens, forms) → DiagnosticReport; ``status``: the group's
    own (``report_status``), when the caller has it already."""
    obr = group.obr
    res: Resource = {"resourceType": "DiagnosticReport", "category": [REPORT_CATEGORY[category]]}
    res["status"] = status if status is not None else report_status(group, ctx, results)
    test = common.coded_item(obr, 4, ctx) if obr is not None else None
    res["code"] = test if test is not None else _stand_in(ctx, results)
    if test is None:
        ctx.assumed(res, "code")  # (a stored code, the sender's or a stand-in, stays)
    if obr is not None:
        if test is not None:  # another test under the filler's number is refused there (merge.yaml ``another``)
            ctx.located(res, "code", obr, 4)
        apply_table("diagnosticreport", {"OBR": obr}, ctx, res)
        # (its times a later message's: ERR-2 at OBR-22/7; its status at OBR-25 only when sent -- rv37a LOW 8)
        ctx.located_later(res, obr, REPORT_LOCATED_LATER if obr.value(25).strip() else REPORT_TIMES_LOCATED_LATER)
        # (an OBR-7/8 of hours or minutes, written with :00 seconds: its precision kept -- review rv42c MED 1)
        if "effectiveDateTime" in res:
            ctx.stated_at(res, "effectiveDateTime", obr.value(7))
        elif "effectivePeriod" in res:
            ctx.stated_at(res, "effectivePeriod.start", obr.value(7))
            ctx.stated_at(res, "effectivePeriod.end", obr.value(8))
    if group.prt and "resultsInterpreter" not in res:  # v2.7+ withdrew OBR-32: PRT-4 PRI says it (IG)
        for prt in group.prt.get(-1, ()):
            who = practitioner(prt.rep(5), ctx) if prt.value(4).strip().upper() == "PRI" and prt.value(5) else None
            if who is not None and who not in res.get("resultsInterpreter", ()):
                res.setdefault("resultsInterpreter", []).append(who)
    res["subject"] = subject
    if encounter:
        res["encounter"] = encounter
    if request:
        res["basedOn"] = [request]
    res["performer"] = _report_performers(group, ctx, performer)
    if results:
        res["result"] = results
    if specimen_refs:
        res["specimen"] = specimen_refs
    if forms:
        res["presentedForm"] = forms
    if conclusion:
        res["conclusion"] = conclusion
    if obr is not None:
        ident = ei(obr.rep(3), {}, ctx) or ei(obr.rep(2), {}, ctx)
        if ident:
            ident.setdefault("system", f"urn:huren:order:{ctx.urn_code}")
            res["identifier"] = [ident]
    ref = ctx.ref("DiagnosticReport", key)["reference"]
    _corrections_reported(ctx, results, ref)
    earlier = ctx.resources.get(ref)
    stated = obr is not None and _status_stated(obr, ctx)
    if earlier is not None:
        _another_group(ctx, earlier, res, ctx.report_tests.setdefault(ref, []), test, obr)
        if not stated:  # the report's status is no longer OBR-25's word alone
            ctx.unsay(earlier, "status")
    else:
        if test is not None:
            ctx.report_tests[ref] = [test]
        if stated:
            # stated by OBR-25, not inferred from the results the message carries: a message naming
            # every test of the stored report then speaks for it whole (``merge.yaml`` ``as_far_as``)
            assert obr is not None
            ctx.located(res, "status", obr, 25)
    if earlier is None:
        _number_located(ctx, res, group, filler_first=True)
    made = ctx.put(res, key)
    if earlier is not None:
        # written after this group's results, not where the first group put it: the merge weighs the
        # report by its results as this write merged them (``MergeRules._over`` reads the pending
        # versions), and a result new to the report combined after it was read as not stored -- a P group
        # kept out of its final result beside a new F group took the final report back to preliminary
        # (thirty-ninth round, stat39)
        ctx.resources[ref] = ctx.resources.pop(ref)
    return made


def _stand_in(ctx: Context, results: list[dict[str, str]]) -> Concept:
    """The code of a report whose groups name no test (OBR-4 empty; R4 requires one): its first result's,
    marked ``STAND_IN_EXT`` -- huren's stand-in, not the sender's statement of its test. Only assumed
    (``Context.assumed``): it fills a report not stored yet, never replaces a stored code; and a stored
    stand-in does not hold the test the sender names later under the filler's number against it
    (``MergeRules._another``): the LIS's result sent first with OBR-4 empty, then its final naming the
    test in the result's own code system, had been refused as "another test" (codefix36's rule; thirty-
    seventh round, code37). A stand-in's code is otherwise the result's as before (recognition and the
    pages read it alike)."""
    first = ctx.resources.get(results[0]["reference"]) if results else None
    code: Concept = dict(first["code"]) if first else {"text": "report"}
    code["extension"] = [*(code.get("extension") or ()), {"url": STAND_IN_EXT, "valueBoolean": True}]
    return code


def stand_in_by_client(resource: Resource, previous: Resource | None, writer: str) -> Resource:
    """A repository statement for DiagnosticReport (the writer is known here, not read from the body): the
    stand-in mark (``STAND_IN_EXT``) is huren's statement, the converter's, never a FHIR client's. A client's
    write (PUT, POST, a Bundle's entry) carrying it is stored without it -- a read-modify-write that put
    the real test in ``code.coding`` and kept the extension it read left the client's code marked, and the
    LIS's later message naming another test under the filler's number then replaced it with no refusal
    (``MergeRules._another`` skips a stand-in; rv37c MED 1, 2). Stripped, not refused, as the feed's own
    tag on a Condition is (``his.stated_by_client``): a client copying a report whole should not fail for
    an engine-owned extension. A code written back exactly as stored (the stand-in, mark and all: a
    conclusion added, a label) is still huren's stand-in and keeps it (thirty-seventh round, codefix37)."""
    code = resource.get("code")
    if writer != API or not stand_in(code) or (previous is not None and code == previous.get("code")):
        return resource
    kept = [e for e in code.get("extension") or () if not (isinstance(e, dict) and e.get("url") == STAND_IN_EXT)]
    code = {k: v for k, v in code.items() if k != "extension"}
    if kept:
        code["extension"] = kept
    return {**resource, "code": code}


def _status_stated(obr: Segment, ctx: Context) -> bool:
    """Whether OBR-25 states the group's report status (a code ``report_status`` maps)."""
    code = obr.value(25).strip()
    return bool(code) and code in vocabulary(ctx.site, "report_status")


_REPORT_LISTS = ("basedOn", "result", "specimen", "presentedForm")


def _another_group(ctx: Context, earlier: Resource, res: Resource, tests: list[Concept],
                   test: Concept | None, obr: Segment | None) -> None:
    """A second OBR group of the message for the same report (the same filler number: two tests on
    one specimen, or one test's results split over two groups): the report lists every group's
    results, specimens, orders and forms, and is as far as its least advanced group
    (``merge.yaml`` DiagnosticReport ``status.progress``: final only when every group is; a corrected
    group makes a final report corrected). Before, the first group's report stood as it was: the
    second group's results were not in it, and its status was the first group's alone.

    ``tests``: the OBR-4 codes of the report's groups so far; ``test``: this group's (None: it names
    none, its code was a stand-in). Groups for different tests (OBR-4 CREA and UREA under one filler
    number) make a report of a panel no code of the message names: its ``code`` is the panel said in
    ``code.text`` (肌酐; 尿素), with no coding; the first group to name a test after groups that
    named none gives the report its code. The codings of one R4 CodeableConcept represent one
    concept, so CREA's and UREA's codings side by side would say each test is the other; and keeping
    the first group's code (as before) said the report was CREA's while it listed urea's result too.
    Each test's code stays on its order (ServiceRequest.code) and its results (Observation.code)."""
    for name in _REPORT_LISTS:
        for entry in res.get(name, ()):
            listed = earlier.setdefault(name, [])
            if entry not in listed:
                listed.append(entry)
    # each group's impression (an imaging report's groups under one accession): the first group's
    # conclusion stood alone and the others' were lost
    said = res.get("conclusion")
    if said:
        before = earlier.get("conclusion")
        if not before:
            earlier["conclusion"] = said
        elif not _holds_lines(before, said):
            earlier["conclusion"] = f"{before}\n{said}"
    now, other = earlier.get("status"), res.get("status")
    if isinstance(other, str) and isinstance(now, str) and _less_advanced(ctx, other, now):
        earlier["status"] = other
    if test is not None and not any(same_concept(test, t) for t in tests):
        tests.append(test)
        earlier["code"] = test if len(tests) == 1 else {"text": PANEL.join(dict.fromkeys(concept_label(c) for c in tests))}
        if len(tests) == 1:  # the report's stand-in gives way to the first test a group names: stated, not assumed
            ctx.unsay(earlier, "code")
            if obr is not None:
                ctx.located(earlier, "code", obr, 4)


def _holds_lines(text: str, part: str) -> bool:
    """Whether ``part``'s lines are a run of ``text``'s lines (a group's conclusion said already)."""
    return line_run(text.split("\n"), part.split("\n")) >= 0


# results that will not come (OBX-11 X, N: cannot be obtained) or were withdrawn (D, W): R4's cancelled
# and entered-in-error are beside a report's path (``merge.yaml`` DiagnosticReport ``status.progress``)
_GIVE_WAY = frozenset({"cancelled", "entered-in-error"})


def _status_from_results(ctx: Context, results: list[dict[str, str]]) -> str:
    """How far a group's report got by its own results' OBX-11, when OBR-25 says nothing: final when
    every result is, corrected when one was, partial when some are in, else ``unknown`` (the
    converter's placeholder). A result that will not come or was withdrawn states no progress and
    gives way: F, F, X made a ``partial`` report that could never become final. Every result
    withdrawn (OBX-11 W/D, OBR-25 not stating a status): the report is withdrawn with them
    (entered-in-error) -- it stayed ``unknown``, which never replaces a stated status, so the
    report stayed final and counted as a recognisable prior: "not payable" against results the
    lab had withdrawn. Every one withdrawn or not obtained (X, N), some not obtained: cancelled
    -- it stayed ``unknown`` too, a final report final beside its only result cancelled. Both are
    ``merge.yaml``'s ``all_results`` (DiagnosticReport.status), which the merge reads for the
    report's results as merged (thirty-eighth round, status38)."""
    statuses = {ctx.resources[r["reference"]]["status"] for r in results if r["reference"] in ctx.resources}
    none_stands = _none_stands(ctx, statuses)
    if none_stands is not None:
        return none_stands  # (every one withdrawn: entered-in-error; withdrawn or not obtained: cancelled)
    statuses -= _GIVE_WAY
    if statuses and statuses <= {"final"}:
        return "final"
    if statuses & CORRECTED:
        return "corrected"
    if statuses & {"preliminary", "final"}:
        return "partial"
    return "unknown"
