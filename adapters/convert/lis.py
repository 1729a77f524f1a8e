"""LIS feeds: ORU^R01, OUL^R22 (results) and OML^O21 (orders) → ServiceRequest, Specimen,
Observation per OBX, DiagnosticReport grouping them. The PACS converter reuses ``convert_orders``
with an imaging hook."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from adapters.convert import common, his, plans, results
from adapters.convert.context import Context
from adapters.hl7v2.errors import REQUIRED_FIELD_MISSING, HL7Error
from adapters.hl7v2.parser import Segment

ImagingHook = Callable[[results.Group, Context, dict[str, Any]], None]


def convert_lab(ctx: Context) -> None:
    structure = ctx.message.msh.structure
    is_order = structure.startswith(("OML", "ORM", "OMG", "OMI"))
    convert_orders(ctx, "laboratory", with_report=not is_order)


def _result_key(okey: str, item: str, obx: Segment, group: Any, repeated: Collection[str], seen_keys: set[str]) -> str:
    """A result's key in the message (its id's seed), made unique and noted in ``seen_keys``: the
    same test in two groups of the report takes each group's time point; within one group OBX-1,
    then the OBX's place. One rule for the planned path and the general one: the ids of a re-sent
    message must come out the same whichever path built its results."""
    if okey in repeated:
        okey += f"|@{obx.value(14) or (group.obr.value(7) if group.obr is not None else '')}"
    if okey in seen_keys or not item:
        okey += f"|{obx.value(1) or obx.sequence}"
        if okey in seen_keys:
            okey += f"|{obx.sequence}"
    seen_keys.add(okey)
    return okey


def convert_orders(
    ctx: Context, category: str, *, with_report: bool, hook: ImagingHook | None = None,
    specimen_groups: bool = False,
) -> None:
    msg = ctx.message
    pid = common.one_patient(msg)
    if pid is None:
        raise HL7Error(
            f"{msg.msh.structure} message has no PID segment",
            segment="PID",
            sequence=1,
            code=REQUIRED_FIELD_MISSING,
        )
    org = common.organization(ctx)
    pkey, pref = common.patient(pid, ctx)
    subject = {"reference": pref["reference"]}
    ctx.create_only.append(pref["reference"])
    pv1 = msg.get("PV1")
    enc = None
    if pv1 is not None and any(pv1.has(n) for n in (19, 44)):
        enc = common.encounter(pv1, msg.get("PV2"), ctx, subject, pkey)
        ctx.create_only.append(enc["reference"])
    found, leftover = results.groups(ctx, specimen_groups=specimen_groups)
    coverages, leftover = patient_level(ctx, leftover, subject, pkey)
    if not found and not msg.get("TXA"):
        raise HL7Error(
            f"{msg.msh.structure} message has no ORC/OBR/OBX order or result",
            segment="OBR",
            sequence=1,
            code=REQUIRED_FIELD_MISSING,
        )
    obs_category = results.CATEGORY_IMAGING if category == "imaging" else results.CATEGORY_LAB
    repeated = _repeated(found, ctx, pkey) if len(found) > 1 else frozenset()
    for group in found:
        request = None
        if group.obr is not None or group.orc is not None:
            request = results.service_request(
                group, ctx, category, subject, pkey, enc, "completed" if with_report else "active"
            )
        rkey = (
            results.report_key(group, ctx, pkey)
            # a segment of no fields is falsy (its length is 0): a bare ORC keeps the message's key, as
            # it always had (its stored ids); a bare OBR alone, which failed before, the report's
            if group.obr or group.orc or (group.orc is None and group.obr is not None)
            else results.document_text_key(ctx, pkey) or f"{pkey}|obx|{ctx.message_key}"
        )
        if request is not None and (group.dg1 or coverages):
            order = ctx.resources[request["reference"]]
            for dg1 in group.dg1:  # the order's reasons (IG: DG1 → ServiceRequest.reasonReference)
                # an order's DG1 is a diagnosis of its visit too (dg25), DG1-21 read as every message
                # type reads it (dgfix25b): X nothing, D withdraws the stored one (no reason of the order)
                cond, action = his.visit_diagnosis(dg1, ctx, subject, pkey, enc,
                                                   "dg1_encounter" if enc is not None and not with_report else None)
                if cond is not None and action != "D":
                    order.setdefault("reasonReference", []).append(cond)
            if coverages:
                order["insurance"] = [dict(c) for c in coverages]
        spec_refs = results.specimens(group, ctx, subject, request, rkey) if request else []
        refs: list[dict[str, str]] = []
        forms: list[dict[str, Any]] = []
        text_lines: list[str] = []
        unsaid = 0  # text lines of withdrawn results: left out, yet the group is still a text report
        # the result keys of the report so far, over all its groups: two groups of one report (one
        # filler number: an OGTT's time points) each with a GLU result made one key, and the second
        # group's result was merged into the first's (its value and time lost, no warning); such a
        # key adds the result's time (``_repeated``), never a position among the message's groups
        seen_keys = ctx.result_keys.setdefault(rkey, set())
        specimen = spec_refs[0] if len(spec_refs) == 1 else None
        plan = hook is None  # an imaging hook may change the results after they are made
        observation, text_types = results.observation, results.TEXT_TYPES
        shortcut, fill, put, planned = plans.shortcut, plans.fill, ctx.put, ctx.planned
        quick = plans.GroupPlans(ctx, group, obs_category, subject, enc, org, specimen).quick if plan else None
        # OBX-23's text -> the performer of the results naming it (``results.result_performer``) and
        # their ``GroupPlans``: worked out once a group, one object its results share as they share
        # the sender's, so they are built from compiled plans as results without OBX-23 are
        performed: dict[str, tuple[dict[str, Any], Any]] = {}
        for obx in group.obx:
            fields = obx.fields
            if len(fields) > 23 and fields[23]:
                hit = performed.get(fields[23])
                if hit is None:
                    who = results.result_performer(obx, ctx, org)
                    hit = performed[fields[23]] = (
                        who, plans.GroupPlans(ctx, group, obs_category, subject, enc, who, specimen).quick
                        if plan else None)
                who, quick_of = hit
            else:
                who, quick_of = org, quick
            # a plain numeric result of a shape met before: built from its plan by one call
            # (``plans.GroupPlans``), its key, id and registration as below
            made = quick_of(obx) if quick_of is not None else None
            if made is not None:
                cut, res, planned_as = made
                okey = _result_key(f"{rkey}|{cut.item}|{cut.sub}", cut.item, obx, group, repeated, seen_keys)
                ref = put(res, okey)
                if ctx.resources.get(ref["reference"]) is res:
                    planned[ref["reference"]] = planned_as
                refs.append(ref)
                if cut.sub:
                    ctx.sub_id(ctx.resources[ref["reference"]])
                if cut.text:
                    unsaid += _text_of(obx, ctx, text_lines)
                continue
            # an OBX of a shape met before (``plans.shortcut``): its plan, key parts and text flag
            # in one lookup; built from the plan unless its value's shape is not the plan's
            cut, shape = shortcut(obx, group, ctx, obs_category, enc, who, specimen) if plan else (None, None)
            if cut is not None:
                item, textual = cut.item, cut.text
                okey = f"{rkey}|{item}|{cut.sub}"
            else:
                item = obx.value(3)
                okey = f"{rkey}|{item}|{obx.value(4)}"
                textual = obx.value(2).upper() in text_types
            okey = _result_key(okey, item, obx, group, repeated, seen_keys)
            told = cut.sub if cut is not None else obx.value(4)
            built = fill(cut, obx, ctx, obs_category, subject, enc, who, specimen) if cut is not None else None
            if built is not None:
                res, planned_as = built
                ref = put(res, okey)
                if ctx.resources.get(ref["reference"]) is res:
                    planned[ref["reference"]] = planned_as
                refs.append(ref)
                if told:
                    ctx.sub_id(ctx.resources[ref["reference"]])
            else:
                ref, attachment = observation(obx, group, ctx, obs_category, subject, enc, who, okey, specimen,
                                              plan=plan)
                if ref is not None:
                    refs.append(ref)
                    if told and (made := ctx.resources.get(ref["reference"])) is not None:
                        ctx.sub_id(made)
                if attachment is not None:
                    forms.append(attachment)
                if shape is not None and cut is None:
                    plans.remember(shape, obx, group, ctx, obs_category, enc, who, specimen, item,
                                   obx.value(4), textual)
            if textual:
                unsaid += _text_of(obx, ctx, text_lines)
        if text_lines and (len(text_lines) + unsaid > 1 or any("\n" in line for line in text_lines)):
            title = group.obr.value(4, comp=2) if group.obr is not None else ""
            forms.insert(0, results.text_form(text_lines, title or "report"))
        info: dict[str, Any] = {
            "group": group,
            "request": request,
            "subject": subject,
            "encounter": enc,
            "performer": org,
            "results": refs,
            "forms": forms,
            "key": rkey,
            "pkey": pkey,
            "text": text_lines,
        }
        if hook is not None:
            hook(group, ctx, info)
        if with_report and (group.obr is not None or refs or forms):
            state = results.report_status(group, ctx, refs)  # the group's own, for its report and order
            report = results.diagnostic_report(
                group,
                ctx,
                category,
                subject,
                enc,
                org,
                request,
                refs,
                spec_refs,
                forms,
                rkey,
                info.get("conclusion", ""),
                state,
            )
            info["report"] = report
            if rkey.startswith("filler|"):  # (keyed apart when another exam's stored report holds the number)
                _, _, filler, ff = results._order_numbers(group)
                if filler is not None:
                    ctx.filler_reports[report["reference"]] = (rkey, (filler.name, filler.sequence, ff))
            if request is not None:  # the order is completed only by a final result (OBR-25 F, C)
                results.status_from_report(group, ctx, request, state, refs)
            for after in info.get("after_report", ()):
                after(report)
        elif request is not None and refs:
            ctx.resources[request["reference"]].setdefault("supportingInfo", []).extend(refs)
    report_unmapped(ctx, leftover)


def _text_of(obx: Segment, ctx: Context, lines: list[str]) -> int:
    """A text result's lines (OBX-5's repetitions) added to the group's text document; a withdrawn
    result's (``results.withdrawn``: OBX-11 D, W) are left out -- how many, returned: a two-line
    report with one line withdrawn is still a text document, of the line that stands."""
    if results.withdrawn(obx, ctx):
        return len(obx.reps(5))
    lines.extend(r.text() for r in obx.reps(5))
    return 0


def _repeated(found: list[results.Group], ctx: Context, pkey: str) -> frozenset[str]:
    """The result keys (report, OBX-3, OBX-4) more than one group of one report makes (an OGTT's time
    points: one filler number, GLU in each group). Such a result's key adds its own time (OBX-14,
    else its group's OBR-7): what identifies it in any message carrying it, however many of the
    report's groups that message carries. A key only one group makes is unchanged."""
    first: dict[str, int] = {}
    repeated: set[str] = set()
    for n, group in enumerate(found):
        if group.obr is None and group.orc is None or results._order_numbers(group)[2] is None:
            continue  # a report keyed by its filler number only (``report_key``; the others warn)
        rkey = results.report_key(group, ctx, pkey)
        for obx in group.obx:
            item = obx.value(3)
            if item and first.setdefault(key := f"{rkey}|{item}|{obx.value(4)}", n) != n:
                repeated.add(key)
    return frozenset(repeated)


# patient-level segments the order and result structures define (OML_O21, ORM_O01, OMG_O19:
# PATIENT group NK1, AL1, INSURANCE group IN1/IN2/IN3, GT1), converted as the ADT feed converts them
_INSURANCE_PARTS = frozenset({"IN2", "IN3", "GT1"})  # read with their IN1 (Coverage)


def patient_level(
    ctx: Context, leftover: list[Segment], subject: dict[str, str], pkey: str
) -> tuple[list[dict[str, str]], list[Segment]]:
    """NK1 → RelatedPerson, AL1 → AllergyIntolerance, IN1 (+IN2/IN3/GT1) → Coverage; returns the
    Coverage references (the orders' ``insurance``) and the segments still unmapped."""
    if not leftover:
        return [], leftover
    coverages: list[dict[str, str]] = []
    rest: list[Segment] = []
    has_in1 = any(seg.name == "IN1" for seg in leftover)
    for seg in leftover:
        name = seg.name
        if name == "NK1":
            if his.related_person(seg, ctx, subject, pkey) is None:
                rest.append(seg)
        elif name == "AL1":
            his.allergy(seg, ctx, subject, pkey)
        elif name == "IN1":
            coverages.append(his.coverage(seg, ctx, subject, pkey))
        elif not (name in _INSURANCE_PARTS and has_in1):
            rest.append(seg)
    return coverages, rest


def report_unmapped(ctx: Context, leftover: list[Segment]) -> None:
    seen: set[str] = set()
    for seg in leftover:
        if seg.name not in seen:
            seen.add(seg.name)
            ctx.note_unmapped("segment", seg.name)
