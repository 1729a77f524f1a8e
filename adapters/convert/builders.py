"""The named builders, handlers and post-steps message templates refer to.

A template names these where a resource needs more than field rules: the OBX value[x] logic of
``results.observation``, the Patient's identifier rules, the ADT segment converters, the ORC/OBR
result families, appointment times. Each is registered under the name the YAML uses.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from adapters.convert import common, datatypes, elr_fields, his, lis, pacs, referral, results, templates
from adapters.convert.actors import practitioner
from adapters.convert.by_identity import ByIdentity
from adapters.convert.context import Context, Holds
from adapters.convert.engine import compile_rule
from adapters.convert.tables import vocabulary
from adapters.convert.templates import Builder, Env, Ref, Resource, Scope
from adapters.hl7v2.errors import DATA_TYPE_ERROR
from adapters.hl7v2.parser import Segment
from adapters.hl7v2.timestamps import TimestampError, to_datetime, to_fhir_datetime
from engine.merge_rules import SET_ID, SET_ID_SYSTEM, STATED_WHOLE, Change, ident_type, located
from mappings.site import urn_part

# --- whole-message handlers ----------------------------------------------------------------------


def _results(ctx: Context, spec: dict[str, Any]) -> None:
    """ORC/OBR/OBX result messages: imaging content goes to the PACS converter, the rest to the LIS."""
    if spec.get("imaging", True) and pacs.is_imaging(ctx):
        pacs.convert_imaging_report(ctx)
    else:
        lis.convert_orders(ctx, "laboratory", with_report=True)


def _orders(ctx: Context, spec: dict[str, Any]) -> None:
    if spec.get("imaging") == "always" or (spec.get("imaging", True) and pacs.is_imaging(ctx)):
        pacs.convert_imaging_order(ctx)
    else:
        lis.convert_orders(ctx, "laboratory", with_report=False, specimen_groups=bool(spec.get("specimen_groups")))


def _documents(ctx: Context, spec: dict[str, Any]) -> None:
    pacs.convert_document(ctx)


def _merge(ctx: Context, spec: dict[str, Any]) -> None:
    his.convert_merge(ctx)


templates.HANDLERS.update(
    {"results": _results, "orders": _orders, "documents": _documents, "merge": _merge}
)


# --- builders: one resource from one segment (or a group) ----------------------------------------


def _patient(seg: Segment | None, scope: Scope, env: Env, spec: dict[str, Any]) -> Ref | None:
    """PID (+PD1) → Patient; the group's resources then belong to this patient."""
    if seg is None:
        return None
    scope.pkey, ref = common.patient(seg, env.ctx)
    scope.patient = {"reference": ref["reference"]}
    if env.patient is None:
        env.patient, env.pkey = scope.patient, scope.pkey
    return scope.patient


def _encounter(seg: Segment | None, scope: Scope, env: Env, spec: dict[str, Any]) -> Ref | None:
    """PV1 (+ the PV2 after it) → Encounter of the scope's patient, status by trigger event."""
    if seg is None or scope.patient is None or not any(seg.has(n) for n in (2, 3, 19, 44)):
        return None
    segments = env.ctx.message.segments
    nxt = segments[seg.position + 1] if seg.position + 1 < len(segments) else None
    pv2 = nxt if nxt is not None and nxt.name == "PV2" else None
    status = templates.encounter_status(env.ctx, env.event, spec.get("status", "unknown"))
    scope.encounter = common.encounter(seg, pv2, env.ctx, scope.patient, scope.pkey, status,
                                       templates.encounter_status_assumed(env.ctx, env.event))
    if env.encounter is None:
        env.encounter = scope.encounter
    moved = scope.first(spec["moved_from"]) if spec.get("moved_from") else None
    if moved is not None:  # A45: the visit moves from the record MRG-1 names
        his.moved_visit(moved, env.ctx, scope.encounter)
    return scope.encounter


def _observation(seg: Segment | None, scope: Scope, env: Env, spec: dict[str, Any]) -> Ref | None:
    """OBX → Observation with every value type (``results.observation``), keyed under the group."""
    if seg is None or scope.patient is None:
        return None
    notes: dict[int, list[Segment]] = {}
    segments = scope.segments
    for i, s in enumerate(segments):
        if s.name == "NTE" and i and segments[i - 1].name in ("OBX", "NTE"):
            j = i - 1
            while segments[j].name == "NTE":
                j -= 1
            if segments[j].name == "OBX":
                notes.setdefault(segments[j].position, []).append(s)
    group = results.Group(scope.first("ORC"), scope.first("OBR"), obx=scope.all("OBX"), notes=notes)
    if spec.get("key_prefix"):  # results about the patient, not an order (ADT): by item and date
        key = _another_result(_patient_result_key(seg, scope, env, spec), seg, scope, env, spec)
    else:
        key = f"{scope.anchor or scope.pkey + '|' + env.ctx.message_key}|obx|{seg.value(3)}"
        key += f"|{seg.value(4)}|{seg.value(1) or seg.sequence}"
    category = results.CATEGORY_LAB if spec.get("category") == "laboratory" else None
    ref, attachment = results.observation(
        seg, group, env.ctx, category, scope.patient, scope.encounter, results.result_performer(seg, env.ctx, env.org),
        key, None
    )
    if attachment is not None:  # an ED value: R4 Observation cannot hold it; keep it as a document
        doc: Resource = {
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": scope.patient,
            "content": [{"attachment": attachment}],
        }
        return env.ctx.put(doc, key + "|ed")
    return ref


def _patient_result_key(seg: Segment, scope: Scope, env: Env, spec: dict[str, Any]) -> str:
    """A patient-level result's (ADT OBX) key: patient, test (OBX-3), time (OBX-14, else the message)."""
    return f"{scope.pkey}|{spec['key_prefix']}|{seg.value(3)}|{seg.value(14) or env.ctx.message_key}"


def _sub_id_rank(sub: str) -> tuple[tuple[int, int | str], ...]:
    """OBX-4 as it sorts: dotted numbers by number (2 before 10, 1.2 before 1.10), else as text."""
    return tuple((0, int(part)) if part.isascii() and part.isdecimal() else (1, part) for part in sub.split("."))


def _another_result(key: str, seg: Segment, scope: Scope, env: Env, spec: dict[str, Any]) -> str:
    """The key of a patient-level result (ADT OBX) among the message's OBX of the same test and
    time (no OBX-14: a public ADT^A01 sends total protein 7.3 and 6.4).

    The key must not move when the message, or a later one, sends the same results again: stored
    ids are what a re-sent message meets. One OBX of a test and time takes the plain key whatever
    its OBX-4 says (every release before the nineteenth round keyed it so: a sole weight sent with
    OBX-4 ``2`` is the weight stored under the plain key). Several are ranked once for the message:
    by sub-id (OBX-4) when it tells them all apart and is not a copy of OBX-1 (senders that copy
    OBX-1 into OBX-4 make it a counter that moves when another test comes first), else by their
    order in the message; the first keeps the plain key, the n-th takes ``|n`` -- the key the
    earlier release gave a second OBX counted from 1 (``|OBX-1``), so a re-sent A01 meets it. Keyed
    by OBX-1 (nineteenth round) an A08 sending height first stored 6.4 again; keyed by sub-id
    (its review) a copied counter put 7.3 over 6.4. The same OBX sent twice (every field after
    OBX-1 alike) is one result."""
    results = env.ctx.patient_results
    if key not in results:  # the scope's OBX ranked in one pass, every test and time at once
        groups: dict[str, list[Segment]] = {}
        for other in scope.all("OBX"):
            groups.setdefault(_patient_result_key(other, scope, env, spec), []).append(other)
        for each, members in groups.items():
            if each not in results:
                results[each] = _ranked(each, members)
    ranked = results.setdefault(key, {})
    body = tuple(seg.fields[2:])
    if body not in ranked:  # (a segment the scope does not hold -- none is expected: ranked last)
        ranked[body] = f"{key}|{len(ranked) + 1}" if ranked else key
    return ranked[body]


def _ranked(key: str, members: list[Segment]) -> dict[tuple[str, ...], str]:
    """The key of each OBX (by its fields after OBX-1) of one test and time (``_another_result``)."""
    bodies: list[tuple[str, ...]] = []
    subs: list[str] = []
    counter = True  # every OBX-4 a copy of its OBX-1
    for seg in members:
        body = tuple(seg.fields[2:])
        if body in bodies:
            continue
        bodies.append(body)
        subs.append(seg.value(4).strip())
        counter = counter and subs[-1] == seg.value(1).strip()
    order = list(range(len(bodies)))
    if len(bodies) > 1 and all(subs) and len(set(subs)) == len(subs) and not counter:
        order.sort(key=lambda i: _sub_id_rank(subs[i]))
    return {bodies[i]: key if rank == 1 else f"{key}|{rank}" for rank, i in enumerate(order, start=1)}


def _with_patient(fn: Any) -> Builder:
    """A HIS segment converter ``fn(segment, ctx, patient_ref, patient_key) -> Reference``."""

    def build(seg: Segment | None, scope: Scope, env: Env, spec: dict[str, Any]) -> Ref | None:
        if seg is None or scope.patient is None:
            return None
        ref: Ref | None = fn(seg, env.ctx, scope.patient, scope.pkey)
        return ref

    return build


def _condition(seg: Segment | None, scope: Scope, env: Env, spec: dict[str, Any]) -> Ref | None:
    if seg is None or scope.patient is None:
        return None
    # DG1-21 read the one way of every message type (dgfix25b: ``his.visit_diagnosis``)
    ref, _ = his.visit_diagnosis(seg, env.ctx, scope.patient, scope.pkey, scope.encounter, spec.get("diagnosis"))
    return ref


def _service_request(seg: Segment | None, scope: Scope, env: Env, spec: dict[str, Any]) -> Ref | None:
    """ORC (+OBR) of a group → ServiceRequest; an order without a code is kept with it marked absent."""
    if scope.patient is None or (scope.first("ORC") is None and scope.first("OBR") is None):
        return None
    order_notes: list[Segment] = []
    for i, s in enumerate(scope.segments):  # NTEs right after the ORC/OBR annotate the order
        if s.name == "OBX":
            break
        if s.name == "NTE" and i and scope.segments[i - 1].name in ("ORC", "OBR", "TQ1", "NTE"):
            order_notes.append(s)
    group = results.Group(scope.first("ORC"), scope.first("OBR"), notes={-1: order_notes})
    return results.service_request(
        group, env.ctx, spec.get("category", ""), scope.patient, scope.pkey, scope.encounter,
        spec.get("status", "active"),
    )


def _participant(seg: Segment | None, scope: Scope, env: Env, spec: dict[str, Any]) -> Ref | None:
    """ROL (role: ROL-3 type, ROL-4 person, ROL-5/6 period) → a participant of the scope's
    Encounter, after the IG "Segment ROL to Encounter.participant" map."""
    if seg is None or scope.encounter is None:
        return None
    who = practitioner(seg.rep(4), env.ctx) if seg.value(4) else None
    if who is None:
        return None
    entry: dict[str, Any] = {"individual": who}
    role = datatypes.cwe(seg.rep(3), {"table": "0443"}, env.ctx)
    if role:
        entry["type"] = [role]
    period = {}
    for name, fno in (("start", 5), ("end", 6)):
        if seg.value(fno):
            try:
                period[name] = to_datetime(seg.value(fno), env.ctx.tz).isoformat()
            except TimestampError as exc:
                env.ctx.warn(seg.error(f"ROL-{fno}: {exc}", fno, code=DATA_TYPE_ERROR))
    if period:
        entry["period"] = period
    encounter = env.ctx.resources[scope.encounter["reference"]]
    encounter.setdefault("participant", []).append(entry)
    return None


def _merge_pid(seg: Segment | None, scope: Scope, env: Env, spec: dict[str, Any]) -> Ref | None:
    """MRG after a PID: the prior patient record is replaced by the surviving one."""
    if seg is None or scope.patient is None:
        return None
    his.merge(seg, env.ctx, (scope.pkey, scope.patient))
    return None


_FORECAST_STEPS: ByIdentity[dict[str, Any], dict[str, Any]] = ByIdentity(16)


def _forecast_steps(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's ``forecast`` map (OBX-3 code → rule on OBX-5) compiled once per template."""
    cached = _FORECAST_STEPS.get(spec)
    if cached is None:
        cached = _FORECAST_STEPS.put(spec, {code: compile_rule({"field": 5, **rule})
                                            for code, rule in (spec.get("forecast") or {}).items()})
    return cached


def _immunization_recommendation(seg: Segment | None, scope: Scope, env: Env, spec: dict[str, Any]) -> Ref | None:
    """An RXA group's forecast OBX blocks → one ImmunizationRecommendation (the mapping file says
    which OBX-3 codes fill which element and how blocks are told apart)."""
    if seg is None or scope.patient is None:
        return None
    steps = _forecast_steps(spec)
    starts = frozenset(spec.get("starts") or ())
    ctx = env.ctx
    blocks: list[tuple[str, dict[str, Any]]] = []
    for obx in scope.all("OBX"):
        code = obx.value(3).strip()
        step = steps.get(code)
        if step is None:
            continue
        sub_id = obx.value(4).strip()
        if not blocks or (sub_id and sub_id != blocks[-1][0]) or (
                not sub_id and code in starts and "vaccineCode" in blocks[-1][1]):
            blocks.append((sub_id, {}))
        step(obx, ctx, blocks[-1][1])
    recommendations = []
    for _, rec in blocks:
        if "vaccineCode" not in rec or not ("dateCriterion" in rec or "forecastStatus" in rec):
            continue
        dose = rec.get("doseNumberPositiveInt")
        if isinstance(dose, int) and dose < 1:
            rec["doseNumberString"] = str(rec.pop("doseNumberPositiveInt"))
        if "forecastStatus" not in rec:
            templates.mark_absent(rec, "forecastStatus", "ImmunizationRecommendation", seg, ctx)
        recommendations.append(rec)
    if not recommendations:
        return None
    when = seg.value(3) or ctx.message.msh.timestamp
    try:
        date = to_fhir_datetime(when, ctx.tz)
    except TimestampError:
        raise seg.error(f"RXA-3: {when!r} is not an HL7 date/time", 3, code=DATA_TYPE_ERROR) from None
    res: Resource = {"resourceType": "ImmunizationRecommendation", "patient": dict(scope.patient),
                     "date": date, "recommendation": recommendations}
    return ctx.put(res, f"{scope.pkey}|forecast|{when}|{seg.sequence}")


templates.BUILDERS.update(
    {
        "immunization_recommendation": _immunization_recommendation,
        "patient": _patient,
        "encounter": _encounter,
        "observation": _observation,
        "related_person": _with_patient(his.related_person),
        "allergy": _with_patient(his.allergy),
        "coverage": _with_patient(his.coverage),
        "condition": _condition,
        "service_request": _service_request,
        "merge": _merge_pid,
        "participant": _participant,
    }
)


# --- message-level steps (``then``) ----------------------------------------------------------------


def _unlink(env: Env) -> None:
    """A37: the Patients the message made are distinct records (``his.unlink``)."""
    made = [ref["reference"] for _, ref in env.made.get("Patient", ())]
    his.unlink(env.ctx, list(dict.fromkeys(made)))


templates.THEN.update({"unlink": _unlink})


# --- post-steps ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Stated:
    """Which times and lengths an SIU states, before anything is taken (``_stated``): the start and
    end (SCH-11.4/.5, else TQ1-7/8, else the earliest AIS-4/AIG-8/AIL-6/AIP-6), where each came from,
    the appointment's duration (SCH-9/10; with no SCH-11/TQ1 start, the AIx's whose start is taken)
    and the lengths the message states that are not read as the appointment's (TQ1-6/13, SCH-11.3, a
    resource's own), said where they would change the times."""

    start: str = ""
    end: str = ""
    start_at: tuple[Segment, int] | None = None  # where the start was taken from (SCH-11, TQ1-7, AIS-4, ...)
    time_at: tuple[Segment, int] | None = None  # where the end was stated (SCH-11, TQ1-8)
    duration: str = ""
    unit: str = ""
    dur_at: tuple[Segment, int] | None = None  # where the duration was stated (SCH-9, AIS-7, ...)
    unit_at: tuple[Segment, int] | None = None
    # TQ1-6/TQ1-13 of any TQ1 (it repeats): (as said, seconds or None when unreadable)
    tq1: list[tuple[str, Decimal | None]] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)  # lengths not read as the appointment's (start alone)
    # with no SCH-11/TQ1 start: every resource segment stating a start (segment, start, duration, unit fields)
    resources: list[tuple[Segment, int, int, int]] = field(default_factory=list)


def _stated(scope: Scope, ctx: Context) -> _Stated:
    """Which length (and times) the message states -- read, not yet taken (``_appointment_times``)."""
    sch = scope.first("SCH")
    tq1 = scope.first("TQ1")
    said = _Stated()
    if sch is not None:
        said.start, said.end = sch.value(11, comp=4), sch.value(11, comp=5)
        said.duration, said.unit = sch.value(9), sch.value(10)
        said.unit_at, said.dur_at = (sch, 10), (sch, 9)
        said.time_at = (sch, 11)
        said.start_at = (sch, 11) if said.start else None
    if not said.start and tq1 is not None:
        said.start, said.end = tq1.value(7), tq1.value(8)
        said.time_at = (tq1, 8)
        said.start_at = (tq1, 7) if said.start else None
    # v2.5.1 ch. 4: TQ1-6 service duration is how long a (repeating) service is wanted -- a course of
    # five days, not one visit -- and TQ1-13 an occurrence's; neither is read as the appointment's length
    # (twenty-third round, schedfix23b: reading them gave a 30-minute slot minutesDuration 10080 and moved
    # an end five days). Any TQ1 (it repeats) stating one is named where it would change the times; each
    # is read as a quantity in its unit (CQ: TQ1-n.2), so one equal to SCH-9/10 is no disagreement
    # ("0.5^h" beside 30 min), and a unit huren does not read is said at its field (twenty-fourth round)
    for i, s in enumerate(scope.all("TQ1")):
        for f in (6, 13):
            if not s.value(f).strip():
                continue
            amount, unit = s.value(f), s.value(f, comp=2)
            per_unit = _per_unit(unit, ctx)
            if per_unit is None:
                ctx.warn(s.error(f"TQ1-{f}: duration unit {unit!r} is not one huren reads (duration_seconds); "
                                 "the length is not compared with the appointment's", f, code=DATA_TYPE_ERROR))
            text = amount.strip()
            seconds = Decimal(text) * per_unit if per_unit is not None and _NM.fullmatch(text) else None
            said.tq1.append((f"TQ1-{f}{'' if i == 0 else f' of TQ1 {s.value(1) or i + 1}'} ({amount} {unit or 'MIN'})",
                             seconds))
    if said.start and not said.duration:
        # a start from SCH-11/TQ1-7 and no appointment duration (SCH-9/10): a length stated elsewhere --
        # SCH-11.3, TQ1-6/13, a resource's own (AIS-7, AIG-11, AIL-9, AIP-9, offset by its own start) --
        # is not the appointment's (v2.5.1 ch. 10: AIS-7 is the resource's "if different from the overall
        # duration"); guessing its end from it, or keeping the stored length as though none was sent,
        # would be a wrong time: said, and the stored times stand (schedfix23b)
        if sch is not None and sch.value(11, comp=3).strip():
            said.unread.append(f"SCH-11.3 ({sch.value(11, comp=3)})")
        said.unread += [label for label, _ in said.tq1]
        for name, df, uf in (("AIS", 7, 8), ("AIG", 11, 12), ("AIL", 9, 10), ("AIP", 9, 10)):
            said.unread += [f"{name}-{df} ({s.value(df)} {s.value(uf) or 'MIN'})" for s in scope.all(name) if s.value(df).strip()]
    if not said.start:
        # (segment, start, duration, duration units), v2.5.1 ch. 10: AIS-4/7/8, AIG-8/11/12,
        # AIL-6/9/10, AIP-6/9/10 -- the fields between are the start offset and its units; AIG/AIL/AIP
        # were read one field early (the offset units as the duration, the duration as its unit)
        said.resources = [(s, sf, df, uf) for name, sf, df, uf in (("AIS", 4, 7, 8), ("AIG", 8, 11, 12),
                                                                   ("AIL", 6, 9, 10), ("AIP", 6, 9, 10))
                          for s in scope.all(name) if s.value(sf)]
        for s, sf, _, _ in said.resources:
            if not said.start or s.value(sf) < said.start:
                said.start, said.start_at = s.value(sf), (s, sf)
        if len(said.resources) == 1:  # one resource booked: its own duration ends the appointment, as before
            s, _, df, uf = said.resources[0]
            said.duration, said.unit, said.unit_at, said.dur_at = s.value(df), s.value(uf), (s, uf), (s, df)
    return said


def _per_unit(unit: str, ctx: Context) -> int | None:
    """Seconds per duration unit (``vocabulary.yaml`` ``duration_seconds``, looked up upper-cased: ``min``,
    ``MIN``, ``Min``), None for a unit huren does not read; none sent: minutes. A symbol that means
    another quantity as sent (``duration_not_time``: UCUM is case-sensitive, ``m`` is the metre) is
    not upper-cased into a length of time -- ``30^m`` was read as 30 minutes (review of the
    twenty-fourth round, schedfix24)."""
    text = unit.strip()
    if text in vocabulary(ctx.site, "duration_not_time"):
        return None
    per_unit = vocabulary(ctx.site, "duration_seconds").get(text.upper() or "MIN")
    return int(per_unit) if per_unit is not None else None


def _resources_end(said: _Stated, ctx: Context) -> _dt.datetime | None:
    """With no SCH-11/TQ1 time and several resources booked, each at its own start: the appointment
    ends when the last of them does (v2.5.1 ch. 10, AIS-7: a resource's duration is its own, "if
    different from the overall duration"; unvalued, it is needed "until the end of the appointment").
    The end was the first-read resource's duration added to the earliest start -- AIS 09:00 for 30 min
    beside AIP 08:30 for 60 min ended the appointment at 09:00, before either (twenty-fourth round).
    None -- no end taken, said where it cannot be read -- when no resource states a duration, one
    cannot be read, or one with no duration starts at or after the others' last end (needed until an
    end the message does not state)."""
    ends: list[_dt.datetime] = []
    open_from: list[_dt.datetime] = []
    for s, sf, df, uf in said.resources:
        try:
            at = to_datetime(s.value(sf), ctx.tz)
        except TimestampError as exc:
            ctx.warn(s.error(f"{s.name}-{sf}: {exc}; no end is taken from the resources' times", sf, code=DATA_TYPE_ERROR))
            return None
        if not s.value(df).strip():
            open_from.append(at)
            continue
        unit = s.value(uf)
        per_unit = _per_unit(unit, ctx)
        if per_unit is None:
            ctx.warn(s.error(f"{s.name}-{uf}: duration unit {unit!r} is not one huren reads "
                             "(duration_seconds); no duration or end is taken from it", uf, code=DATA_TYPE_ERROR))
            return None
        seconds = _seconds(s.value(df), per_unit, (s, df), ctx)
        if seconds is None:
            return None
        try:
            ends.append(at + _dt.timedelta(microseconds=int(seconds * 1_000_000)))
        except OverflowError:
            return None
    if not ends or any(at >= max(ends) for at in open_from):
        return None
    return max(ends)


def _appointment_times(res: Resource, seg: Segment | None, scope: Scope, env: Env) -> None:
    """Appointment start/end: SCH-11 timing (start ^ end in components 4/5), else TQ1-7/TQ1-8,
    else the earliest AIS-4/AIG-8/AIL-6/AIP-6 start; the end from the duration (SCH-9/SCH-10 or
    the resource's own) when not sent. R4 wants both or neither: an appointment with neither and a
    status that needs them keeps data-absent-reason on both. A duration is read in its unit
    (``vocabulary.yaml`` ``duration_seconds``; none sent: minutes, as senders mean it -- v2's text says
    seconds, the ISO base unit: left, README twenty-fourth round); a unit the
    table does not name gives no duration, said at its field -- it was read as minutes, so a stay
    booked ``1|wk`` ended a minute after it began (twentieth round). What the message states is read
    first (``_stated``); this takes what it can."""
    ctx = env.ctx
    sch = scope.first("SCH")
    said = _stated(scope, ctx)
    start, end, duration, unit = said.start, said.end, said.duration, said.unit
    try:
        begin = to_datetime(start, ctx.tz) if start else None
        finish = to_datetime(end, ctx.tz) if end else None
    except TimestampError as exc:
        ctx.warn((sch or seg or ctx.message.msh).error(f"appointment time: {exc}", 11, code=DATA_TYPE_ERROR))
        begin = finish = None
    if begin is not None and finish is not None and finish < begin and said.time_at is not None:
        # an end before the start is no appointment's time (it was stored as sent): said, not taken
        at, field_no = said.time_at
        ctx.warn(at.error(f"{at.name}-{field_no}: the end {end!r} is before the start {start!r}; "
                          "the end is not taken from it", field_no, code=DATA_TYPE_ERROR))
        finish = None
    if len(said.resources) > 1 and begin is not None and finish is None and not said.duration:
        # only when SCH-9/10 states no duration of the appointment: a resource's own is "if different
        # from the overall duration" (v2.5.1 ch. 10, AIS-7), so beside SCH-9 the appointment ends by
        # SCH-9 (review of the twenty-fourth round: SCH-9 30 min beside AIP 60 min ended it at 09:30)
        finish = _resources_end(said, ctx)
        span = (finish - begin).total_seconds() if finish is not None else 0
        if span > 0 and span % 60 == 0 and span / 60 <= _POSITIVE_INT:
            res["minutesDuration"] = int(span / 60)
    seconds = None
    if duration:
        per_unit = _per_unit(unit, ctx)
        if per_unit is None and said.unit_at is not None:
            at, field_no = said.unit_at
            ctx.warn(at.error(f"{at.name}-{field_no}: duration unit {unit!r} is not one huren reads "
                              "(duration_seconds); no duration or end is taken from it", field_no,
                              code=DATA_TYPE_ERROR))
        seconds = _seconds(duration, per_unit, said.dur_at, ctx)
    if seconds is not None and seconds % 60 == 0 and 1 <= seconds / 60 <= _POSITIVE_INT:
        res["minutesDuration"] = int(seconds / 60)
    if begin is not None and finish is None and seconds is not None:
        try:
            finish = begin + _dt.timedelta(microseconds=int(seconds * 1_000_000))
        except OverflowError:  # past the year 9999
            at, field_no = said.dur_at if said.dur_at is not None else (sch or seg or ctx.message.msh, 9)
            ctx.warn(at.error(f"{at.name}-{field_no}: duration {duration!r} {unit} ends past any date huren "
                              "stores; no end is taken from it", field_no, code=DATA_TYPE_ERROR))
            res.pop("minutesDuration", None)
    other = [label for label, length in said.tq1 if length is None or length != seconds]
    if (begin is not None and not end and finish is not None and other and said.dur_at is not None
            and said.dur_at[0] is sch and seconds is not None):  # (an empty SCH-9: the end is the resources')
        # the end from SCH-9/10 (the appointment's duration) beside a TQ1-6/13 of another length: SCH-9 is
        # read, as before; the TQ1 one is said not read, so a disagreement is not settled unsaid (schedfix23b);
        # one of the same length (as quantities: 0.5 h is 30 min) is no disagreement (twenty-fourth round)
        at, field_no = sch, 9
        ctx.warn(at.error(f"{at.name}-{field_no}: the end is taken from the appointment duration SCH-9/10 "
                          f"({duration} {unit or 'MIN'}); the message also states {', '.join(other)}, which "
                          "huren does not read as the appointment's length", field_no, code=DATA_TYPE_ERROR))
    if begin is not None and finish is None and said.start_at is not None and _start_without_end(res, env, said, begin):
        return
    if begin is not None and finish is not None:
        res["start"] = begin.isoformat()
        res["end"] = finish.isoformat()
        if res.get("minutesDuration", 0) * 60 > (finish - begin).total_seconds() and said.dur_at is not None:
            # R4: minutesDuration never more than end - start (SCH-11 10:00-10:30 beside SCH-9 60):
            # the stated times stand, the longer duration is not stored; said (schedfix23b)
            at, field_no = said.dur_at
            ctx.warn(at.error(f"{at.name}-{field_no}: duration {duration!r} {unit or 'MIN'} is longer than the "
                              f"appointment's stated span ({start} - {end}); it is not stored as minutesDuration",
                              field_no, code=DATA_TYPE_ERROR))
            res.pop("minutesDuration", None)
    elif res.get("status") not in ("proposed", "cancelled", "waitlist"):
        templates.mark_absent(res, "_start", "Appointment", sch, ctx)
        templates.mark_absent(res, "_end", "Appointment", sch, ctx)


def _start_without_end(res: Resource, env: Env, said: _Stated, begin: _dt.datetime) -> bool:
    """A start with nothing the message states to end it -- what is taken (True: the times are settled
    here, the merge moving the end by the stored length)."""
    ctx = env.ctx
    assert said.start_at is not None
    at, field_no = said.start_at
    start = said.start
    if said.unread:
        # a duration the message states but huren does not read as the appointment's: the stored length
        # is not applied as though none was sent, nor the start taken alone -- the stored times stand
        ctx.warn(at.error(f"{at.name}-{field_no}: the start {start!r} comes with no end and no appointment duration "
                          f"(SCH-9/10) huren reads, but the message states {', '.join(said.unread)}: a resource's own, a "
                          "service's course or an occurrence's length, not the appointment's, and its end is not "
                          "guessed from it; neither start nor end is taken from this message (a start and end stored "
                          "earlier stand)", field_no,
                          code=DATA_TYPE_ERROR))
    elif env.event == "S13" and not said.end and not said.duration:
        # an S13 (rescheduled) moving the start alone (no end, no duration sent: v2, an empty field does
        # not overwrite the stored one): the stored length stands, and the end moves by it -- the merge
        # sees the stored appointment (``Said.start_alone``, ``merge_rules._moved_start``); it said,
        # and kept the old times (twenty-third round)
        ctx.start_alone(res, begin.isoformat(), start, located(at.name, at.sequence, field_no))
        ctx.warn(at.error(f"{at.name}-{field_no}: the start {start!r} comes with no end and no duration: a "
                          "rescheduled appointment keeps its stored length, the end moving with the start; with no "
                          "appointment stored with a length, neither is taken from this message (R4 stores start and "
                          "end together)", field_no, code=DATA_TYPE_ERROR))
        if res.get("status") not in ("proposed", "cancelled", "waitlist"):
            templates.mark_absent(res, "_start", "Appointment", None, ctx)  # (said above: no second warning)
            templates.mark_absent(res, "_end", "Appointment", None, ctx)
        return True
    else:
        # R4 app-2 keeps start and end together: a start with nothing to end it is not stored, and
        # the ACK said only "no value for Appointment.start" -- an S13's new time was lost unsaid.
        # Said where the start came from (SCH-11, TQ1-7, or the AIS-4/AIG-8/AIL-6/AIP-6 it was
        # taken from: it was said at SCH-11 when SCH-11 was empty)
        ctx.warn(at.error(f"{at.name}-{field_no}: the start {start!r} comes with no end and no duration to end it; "
                          "an appointment's start and end are stored together, so neither is taken from this "
                          "message (a start and end stored earlier stand)", field_no, code=DATA_TYPE_ERROR))
    return False


def _seconds(duration: str, per_unit: int | None, dur_at: tuple[Segment, int] | None, ctx: Context) -> Decimal | None:
    """A duration (NM, v2 ch. 2: an optional sign, digits and one decimal point) in seconds, else
    None -- said at its field (the one before its unit's) when it is no length of time: a text
    (``30,5``), NaN or infinity (they failed the conversion, AE 207), a negative one (it ended the
    appointment before it began). Exact: ``1.1|h`` is 66 minutes (as a float 66.00000000000001, which
    left ``minutesDuration`` out)."""
    text = duration.strip()
    amount = Decimal(text) if _NM.fullmatch(text) else None
    why = "is not a number (NM)" if amount is None else "is negative" if amount < 0 else ""
    if why:
        if dur_at is not None:
            at, field_no = dur_at
            ctx.warn(at.error(f"{at.name}-{field_no}: duration {duration!r} {why}; no duration or end is "
                              "taken from it", field_no, code=DATA_TYPE_ERROR))
        return None
    if per_unit is None or amount is None:
        return None
    seconds = amount * per_unit
    if seconds > _LONGEST:
        # a 41-digit SCH-9 made ``seconds % 60`` raise decimal.InvalidOperation (AE 207, nothing
        # stored): no appointment lasts past ten years -- said, and the appointment stored without it
        if dur_at is not None:
            at, field_no = dur_at
            ctx.warn(at.error(f"{at.name}-{field_no}: duration {duration!r} is longer than ten years, no "
                              "appointment's length; no duration or end is taken from it", field_no,
                              code=DATA_TYPE_ERROR))
        return None
    return seconds


_LONGEST = Decimal(10 * 366 * 86400)  # ten years in seconds: the longest duration taken


_POSITIVE_INT = 2**31 - 1  # R4 positiveInt (minutesDuration)
_NM = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")


def _appointment_patient(res: Resource, seg: Segment | None, scope: Scope, env: Env) -> None:
    """The patient takes part in their own appointment (Appointment.participant is 1..*)."""
    if scope.patient is not None:
        res.setdefault("participant", []).insert(0, {"actor": dict(scope.patient), "status": "accepted"})
        # the filler's (SCH-2) and placer's (SCH-1) ids are their application's: one sent with no
        # namespace is the sender's, so another patient under it is found (merge.yaml ``another_person``,
        # refused at PID-3), and another sender's same number is not (twenty-fourth round)
        pid = scope.first("PID")
        system = _appointment_system(env.ctx)
        named = datatypes.sender_names(env.ctx)
        sent_as: list[dict[str, Any]] = []
        for ident in res.get("identifier") or ():
            sent = ident.get("system")
            # an EI whose namespace names the sending application (EI-2 = MSH-3's HD-1, EI-3 = its
            # HD-2) is that application's: keyed as one sent without a namespace (schedfix25), so a
            # cancel sent ``BK-1^HIS`` finds the booking sent ``BK-1`` and is not a second one
            if sent in named:
                ident["system"] = system
            elif ident_type(ident) == "FILL" and (ns := _namespace_app(sent)):
                # an EI-2 namespace id names the assigning authority, an application of this institution
                # (a relay -- an ESB sending ``BK-1^HIS`` -- the HIS's id): keyed as that application's
                # (review of schedfix25, schedfix25b), so every sender of ``BK-1^HIS`` names one booking
                ident["system"] = f"urn:huren:appointment:{env.ctx.urn_code}:{ns}"
            ident.setdefault("system", system)
            if ident_type(ident) == "FILL" and isinstance(sent, str) and sent and ident["system"] != sent:
                sent_as.append(_as_sent(ident, sent, env.ctx))
        if sent_as:
            res["identifier"].extend(sent_as)
        if pid is not None and res.get("identifier"):
            env.ctx.located(res, "participant", pid, 3)
        sch = seg if seg is not None and seg.name == "SCH" else scope.first("SCH")
        if sch is not None and sch.value(2).strip():
            env.ctx.located(res, "identifier", sch, 2)  # the filler id: an ERR about it names SCH-2


# the type of SCH-2 kept as sent beside the filler's key: no v2 0203 code, so nothing that reads the FILL
# identifier (the booking's key, the filler checks) reads it; its own kind for the merge (by-key on type)
_AS_SENT = {"text": "SCH-2 as sent (filler appointment id in its namespace)"}


def _as_sent(ident: dict[str, Any], sent: str, ctx: Context) -> dict[str, Any]:
    """SCH-2 as the message sent it, kept beside the identifier the booking is keyed by (the filler
    application's ``urn:huren:appointment:<MSH-4>:<app>``): a FHIR client searching the identifier the message
    stated found nothing (review of schedfix25b; thirty-seventh round, old37).

    Its system is the sender's: an EI-2 namespace id under the sending institution, ``urn:huren:id:<MSH-4>:
    <HD-1>`` (``as_sent_system``), as the record numbers of another authority are kept under the institution's
    and the authority's (``common.apart_system``) -- ``urn:huren:id:HIS`` is every hospital's HIS, so two
    institutions' ``BK-1^HIS`` met in one search, for two patients (review rv37d LOW 5). An EI-3 universal
    id (an OID, a URI) names one authority the world over: kept as sent. A copy stored before (``urn:huren:
    id:HIS``) stays readable and searchable as it was, and the booking's next message puts the sender's in its
    place (by-key on ``type``). (Thirty-eighth round, codedoc38.)"""
    return {"type": dict(_AS_SENT), "system": as_sent_system(sent, ctx), "value": ident.get("value")}


def as_sent_system(sent: str, ctx: Context) -> str:
    """The system SCH-2 as sent is kept under (``_as_sent``): an EI-2 namespace id's under the sending
    institution, a universal id's as sent."""
    ns = _namespace_app(sent)
    return f"urn:huren:id:{ctx.urn_code}:{ns}" if ns else sent


AS_SENT_MARK = _AS_SENT["text"].encode()  # (a stored booking's JSON holding a copy holds these bytes: ``as_sent_upgraded``)


def as_sent_upgraded(identifiers: Any) -> list[Any] | None:
    """A booking's identifiers with each SCH-2 as-sent copy an earlier release kept under the bare namespace
    system (``urn:huren:id:<HD-1>``: old37, before codedoc38) put under the sender's, ``urn:huren:id:<MSH-4>:
    <HD-1>`` (``as_sent_system``) -- the institution read from the booking's own key beside it, the FILL
    identifier ``urn:huren:appointment:<MSH-4>:<HD-1>`` of the same value (``_appointment_patient`` made both
    from one SCH-2: the sender's own namespace or an application of its institution). None when no copy is to
    move (none of the old form, or no key naming one institution for it). The once-per-store pass of
    ``engine.booking_as_sent`` writes what this gives (review rv38f LOW; thirty-ninth round, ord39)."""
    if not isinstance(identifiers, list):
        return None
    keys = [(str(i.get("system") or ""), i.get("value")) for i in identifiers
            if isinstance(i, dict) and ident_type(i) == "FILL"]
    out, moved = [], False
    for ident in identifiers:
        ns = _namespace_app(ident.get("system")) if isinstance(ident, dict) else ""
        if ns and ":" not in ns and (ident.get("type") or {}).get("text") == _AS_SENT["text"] \
                and not (ident.get("type") or {}).get("coding"):
            at = {system.removeprefix("urn:huren:appointment:").partition(":")[0] for system, value in keys
                  if value == ident.get("value") and system.startswith("urn:huren:appointment:")
                  and system.endswith(f":{ns}") and system.count(":") == 4}
            if len(at) == 1:
                ident = {**ident, "system": f"urn:huren:id:{at.pop()}:{ns}"}
                moved = True
        out.append(ident)
    return out if moved else None


def _filler_key(res: Resource, old: str, env: Env) -> str | None:
    """``key_by: filler_id``: an Appointment is the filler's appointment -- its id (SCH-2, FILL) in the
    filler's namespace (the EI's, else the sending application's, ``_appointment_system``) keys it, not
    SCH-2's value under the patient. v2.5.1 ch. 10: SCH-2 is "the filler application's permanent
    identifier for the appointment"; the patient is what the booking carries. So a RIS's booking BK-2A
    for the patient the HIS booked BK-2A is another Appointment, and a message under the record the
    patient index now keeps for the person (an A40 merge, an A47 MRN change) is the one booking's, for
    the merge rules to move (``another_person``: refused when the index holds another person). None (the
    key ``key`` makes: SCH-1 under the patient) when the message sends no filler id.

    The id that key ``old`` made (before the twenty-fifth round) is said as the booking's former id
    (``Context.formerly``): ingest writes to it when the new id is not stored and the former one is, so a
    booking stored before keeps its id and is updated, not booked twice (``adopt_former_ids``)."""
    rtype = res["resourceType"]
    for ident in res.get("identifier") or ():
        if not isinstance(ident, dict) or not any(
                isinstance(c, dict) and c.get("code") == "FILL" for c in (ident.get("type") or {}).get("coding") or ()):
            continue
        system, value = ident.get("system"), ident.get("value")
        if isinstance(system, str) and system and isinstance(value, str) and value:
            key = f"{rtype}|FILL|{system}|{value}"
            env.ctx.formerly(env.ctx.ref(rtype, key), old,
                             value=_this_fillers(res, _filler_aliases(system, env.ctx), value))
            return key
    return None


def _namespace_app(system: Any) -> str:
    """The namespace id of an EI-2 system (``urn:huren:id:<HD-1>``), else ''."""
    return system.removeprefix("urn:huren:id:") if isinstance(system, str) and system.startswith("urn:huren:id:") else ""


def _filler_aliases(system: str, ctx: Context) -> frozenset[str]:
    """The systems a booking of this filler was stored with before: its own, the EI-2 namespace id naming
    the application (``urn:huren:id:HIS``, as the code before the twenty-fifth round stored ``BK-1^HIS``) and,
    for the sending application's, the sender's OID or URI (``datatypes.sender_names``) -- review of schedfix25."""
    out = {system}
    prefix = f"urn:huren:appointment:{ctx.urn_code}:"
    if system.startswith(prefix):
        out.add(f"urn:huren:id:{system.removeprefix(prefix)}")
    if system == _appointment_system(ctx):
        out.update(datatypes.sender_names(ctx))
    return frozenset(out)


def _this_fillers(res: Resource, aliases: frozenset[str], value: str) -> Holds:
    """Whether an Appointment stored under the old key (SCH-2's value under the patient) is this
    filler's booking: its FILL identifier of ``value`` has one of this filler's systems (``aliases``: as the
    twenty-fourth round stored it, or with the EI-2/EI-3 naming the filler: schedfix25b), or none (stored before that) and its patient is filed by the same institution as the
    message's (``managingOrganization``, as ``MergeRules._same_sender``). Another filler's same number for
    the patient (the HIS's BK-1 stored before, the RIS's BK-1 now) is not it: the RIS's booking is
    another Appointment, the HIS's is not rewritten (review of sched25, schedfix25)."""

    def holds(stored: Resource, read_many: Any) -> bool:
        systems = [i.get("system") for i in stored.get("identifier") or ()
                   if isinstance(i, dict) and i.get("value") == value and ident_type(i) == "FILL"]
        if aliases.intersection(s for s in systems if isinstance(s, str)):
            return True
        if not any(s is None for s in systems):
            return False
        refs = [_patient_ref(stored), _patient_ref(res)]
        if None in refs:
            return False
        keys = [("Patient", str(r).removeprefix("Patient/")) for r in refs]
        found = read_many(keys)
        orgs = [(found.get(k) or {}).get("managingOrganization") for k in keys]
        return orgs[0] is not None and orgs[0] == orgs[1]

    return holds


def _patient_ref(res: Resource) -> str | None:
    for entry in res.get("participant") or ():
        ref = (entry.get("actor") or {}).get("reference") if isinstance(entry, dict) else None
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref
    return None


def _appointment_system(ctx: Context) -> str:
    """The namespace of an SCH-1/SCH-2 sent without one (EI-2/3): the sending application's at its
    facility -- ``urn:huren:appointment:<MSH-4>:<MSH-3>`` (``urn:huren:appointment:<MSH-4>`` when MSH-3
    is empty). v2.5.1 ch. 10: SCH-2 is "the filler *application's* permanent identifier"; a RIS and a
    HIS of one institution numbering alike are two fillers (the institution's alone made the RIS's
    booking another patient's claim on the HIS's: review of the twenty-fourth round)."""
    app = ctx.message.msh.value(3).strip()
    return f"urn:huren:appointment:{ctx.urn_code}:{urn_part(app)}" if app else f"urn:huren:appointment:{ctx.urn_code}"


def _appointment_resources(res: Resource, seg: Segment | None, scope: Scope, env: Env) -> None:
    """A message whose every resource segment (AIP/AIL/AIG; the services: AIS) carries a segment
    action code (table 0206: A add, U update, D delete, X no change) states changes, not the list:
    ``AIP|1|D|D01`` alone took the room and the machine off with the list it replaced. Each segment
    is said to the merge (``Said.changes``: ``engine.merge_rules._changes`` finds what it changes by
    its set id, then who, then the role, and keeps the stored list where that would be a guess).
    Beside coded segments, a kind of segment (AIP, AIL, AIG) sent without codes states that kind
    whole (``STATED_WHOLE``: its stored entries replaced, the other kinds' kept); a message with no
    coded segment states the list whole, as before. Every
    entry carries its segment's set id (``SET_ID``, the ``set_id`` rules) so a later message finds
    it. Found here: a coded segment with no set id, or a set id two coded segments share, cannot be
    matched -- said to the merge, which keeps the stored list and says so."""
    ctx = env.ctx
    for element, names in (("participant", ("AIP", "AIL", "AIG")), ("serviceType", ("AIS",))):
        segments = [s for name in names for s in scope.all(name)]
        for s in segments:
            code = s.value(2).strip().upper()
            if code and code not in _ACTIONS:
                ctx.warn(s.error(f"{s.name}-2: segment action code {s.value(2)!r} is not one of table 0206 "
                                 "(A, U, D, X); the segment is read as having none (stating its kind whole; the list, when no "
                                 "segment has one)", 2,
                                 code=DATA_TYPE_ERROR))
        # a kind of segment (AIP people, AIL locations, AIG equipment) any of whose segments has no
        # action code states that kind whole (v2 snapshot mode is per repeating segment): its stored
        # entries are replaced by the message's, the other kinds' stored entries stay (an uncoded AIL
        # beside ``AIP|1|D`` dropped the doctors it did not name: the message was read whole)
        # (a message with no coded segment states the list whole, as before: sched22's guard)
        uncoded = {s.name for s in segments if s.value(2).strip().upper() not in _ACTIONS}
        coded = [s for s in segments if s.name not in uncoded]
        whole = [s for s in segments if s.name in uncoded]
        if whole:
            _set_ids_once(res, element, whole, ctx)
        if not coded:
            continue
        changes: list[Change] = []
        for name in dict.fromkeys(s.name for s in whole):
            first = next(s for s in whole if s.name == name)
            changes.append(Change(f"{SET_ID_SYSTEM}{name}-1", STATED_WHOLE, located(name, first.sequence, 1)))
        seen: set[str] = set()
        statuses = vocabulary(ctx.site, "participation_status")
        for s in coded:
            set_id = s.value(1).strip()
            key = f"{SET_ID_SYSTEM}{s.name}-1|{set_id}" if set_id else ""
            why = ("it names no set id: which stored entry it changes cannot be found" if not set_id
                   else f"set id {set_id} is given to two {s.name} segments of the message" if key in seen else "")
            seen.add(key)
            action = s.value(2).strip().upper()
            entries: tuple[Any, ...] = ()
            if s.name == "AIS" and action == "D" and s.has(3):  # a deleted service is not in the list
                try:
                    concept = datatypes.CONVERTERS["CWE"](s.rep(3), {"field": 3, "type": "CWE"}, ctx)
                except ValueError:
                    concept = None
                entries = (concept,) if concept else ()
            keep: tuple[str, ...] = ()
            status = ""
            if action in ("U", "A") and s.name in _KEPT:  # its fields left empty: the stored parts it keeps
                # a field of only separators (``^^``) states nothing either: no change (it erased the role)
                keep = tuple(part for part, field_no in _KEPT[s.name] if _unstated(s, field_no))
                # the resource's own status as stated: a U stating only it (AIP-3, AIP-4 empty) is an update
                field_no = dict(_KEPT[s.name])["status"]
                code = s.value(field_no).strip()
                if code and "status" not in keep:
                    status = next((str(statuses[v]) for v in (code, code.upper(), code.capitalize()) if v in statuses), "")
                    if not status:  # a code the table does not name: said, not taken -- no change of status
                        keep += ("status",)
            changes.append(Change(key, action, located(s.name, s.sequence, 1), why, entries, keep, status))
        ctx.changes(res, element, tuple(changes))


def _unstated(s: Segment, field_no: int) -> bool:
    """A field left empty -- or sent as separators only (``^^``, ``~``): v2's "no change" (``""``,
    the null, is stated: it deletes)."""
    enc = s.enc
    return not s.field(field_no).strip(enc.component + enc.subcomponent + enc.repetition + " ")


def _set_ids_once(res: Resource, element: str, segments: list[Segment], ctx: Context) -> None:
    """A list stated whole whose segments give one set id twice (``AIP|1||D01`` and ``AIP|1||D02``):
    a later ``AIP|1|U|D03`` would replace both. Their entries are stored without the set id (a
    later change finds them by who they are, or is refused) and the ACK says so."""
    counts: dict[tuple[str, str], list[Segment]] = {}
    for s in segments:
        if s.value(1).strip():
            counts.setdefault((s.name, s.value(1).strip()), []).append(s)
    # per (segment, set id): a dict by segment kept only the last set id given twice (AIP 1 and 2
    # each twice left set id 1's entries with it, and a later ``AIP|1|U`` replaced both)
    twice = {(f"{SET_ID_SYSTEM}{name}-1", set_id) for (name, set_id), found in counts.items() if len(found) > 1}
    if not twice:
        return
    for (name, set_id), found in counts.items():
        for s in found[1:]:
            ctx.warn(s.error(f"{name}-1: set id {set_id} is given to {len(found)} {name} segments; their entries are "
                             "stored without it (a later change names them by who they are)", 1, code=DATA_TYPE_ERROR))
    for entry in res.get(element) or ():
        if isinstance(entry, dict) and "extension" in entry:
            entry["extension"] = [e for e in entry["extension"] if not (
                e.get("url") == SET_ID and (e["valueIdentifier"]["system"], e["valueIdentifier"]["value"]) in twice)]
            if not entry["extension"]:
                del entry["extension"]


_ACTIONS = frozenset({"A", "U", "D", "X"})  # table 0206 segment action codes
# an update's (U) fields that, left empty (v2: no change; ``""`` deletes), keep the stored part:
# the resource (AIP-3/AIL-3/AIG-3), a person's role (AIP-4), the resource's own status (AIP-12, ...)
_KEPT = {"AIP": (("actor", 3), ("type", 4), ("status", 12)), "AIL": (("actor", 3), ("status", 12)),
         "AIG": (("actor", 3), ("status", 14))}


def _set_id(rep: Any, rule: dict[str, Any], ctx: Context) -> dict[str, Any] | None:
    """``SET_ID``: a resource segment's set id (AIP-1/AIL-1/AIG-1/AIS-1, SI) on the entry it states,
    as the extension ``engine.merge_rules.SET_ID`` -- the rule names the field (``system``)."""
    value = rep.comp(1).strip()
    if not value or value == '""':
        return None
    return {"url": SET_ID, "valueIdentifier": {"system": rule["system"], "value": value}}


datatypes.CONVERTERS["SET_ID"] = _set_id


def _appointment_status(res: Resource, seg: Segment | None, scope: Scope, env: Env) -> None:
    """SCH-25 (filler status, table 0278) through ``appointment_status``. A code the table does not
    name was read as no status -- ``booked`` without a word (``Canceled``, the US spelling, booked a
    cancelled appointment): it is said at SCH-25. Where neither SCH-25 nor the event states the
    status (an S14 with SCH-25 empty or unknown: a modification, not a booking), ``booked`` is the
    converter's assumption: it fills an appointment stored without a status and never takes back a
    stored ``cancelled`` or ``noshow``. S12 (booked) and S13 (rescheduled) book by their event."""
    sch = scope.first("SCH")
    if sch is None:
        return
    sent = sch.value(25).strip()
    table = vocabulary(env.ctx.site, "appointment_status")
    stated = sent and any(v in table for v in (sent, sent.upper(), sent.capitalize()))
    if sent and not stated:
        env.ctx.warn(sch.error(f"SCH-25: filler status {sent!r} is not one huren reads (appointment_status); "
                               "the status is not taken from it", 25, code=DATA_TYPE_ERROR))
    if not stated and res.get("status") == "booked" and env.event not in _BOOKING_EVENTS:
        env.ctx.assumed(res, "status")
    # each resource's own filler status (AIP-12, AIL-12, AIG-14) likewise: a code the table does
    # not name left the participant ``accepted`` without a word
    statuses = vocabulary(env.ctx.site, "participation_status")
    for name, field_no in (("AIP", 12), ("AIL", 12), ("AIG", 14)):
        for s in scope.all(name):
            code = s.value(field_no).strip()
            if code and code != '""' and not any(v in statuses for v in (code, code.upper(), code.capitalize())):
                env.ctx.warn(s.error(f"{name}-{field_no}: filler status {code!r} is not one huren reads "
                                     "(participation_status); the participant's status is not taken from it",
                                     field_no, code=DATA_TYPE_ERROR))


_BOOKING_EVENTS = frozenset({"S12", "S13"})  # new appointment, rescheduled: the event books it


def _condition_status(res: Resource, seg: Segment | None, scope: Scope, env: Env) -> None:
    """R4 con-3/con-4/con-5: a problem-list Condition has a clinical status unless entered in
    error (then none); an abated one is not active."""
    verification = res.get("verificationStatus", {}).get("coding", [{}])[0].get("code")
    if verification == "entered-in-error":
        res.pop("clinicalStatus", None)
        return
    if "clinicalStatus" not in res:
        code = "resolved" if any(k.startswith("abatement") for k in res) else "active"
        res["clinicalStatus"] = {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": code}]
        }


def _allergy_status(res: Resource, seg: Segment | None, scope: Scope, env: Env) -> None:
    """R4 ait-1/ait-2: an allergy entered in error has no clinical status; otherwise one is given
    (active, unless its verification says refuted → resolved)."""
    verification = res.get("verificationStatus", {}).get("coding", [{}])[0].get("code")
    if verification == "entered-in-error":
        res.pop("clinicalStatus", None)
        return
    res.setdefault("clinicalStatus", {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
        "code": "resolved" if verification == "refuted" else "active"}]})


def _dosage(res: Resource, seg: Segment | None, scope: Scope, env: Env) -> None:
    """One Dosage from the order's timing (TQ1, else the RXE-1/RXO quantity-timing), route (RXR-1)
    and give amount (RXE-3..5, else RXO-2..4), after the IG "Segment RXE/RXO to MedicationRequest" dosage maps."""
    rxe, tq1, rxr, rxo = scope.first("RXE"), scope.first("TQ1"), scope.first("RXR"), scope.first("RXO")
    texts = [s.value(f, comp=2) or s.value(f) for s, f in ((rxe, 7), (rxe, 21), (rxo, 7)) if s is not None]
    # the give amount: RXE-3/4/5 (minimum, maximum, units) of the encoded order, else RXO-2/3/4, the requested
    # give amount of an order not yet encoded (OMP^O09, ORM^O01 with RXO: IG "Segment RXO to MedicationRequest";
    # it was dropped without a word -- fam42)
    give = ((rxe, 3) if rxe is not None and rxe.value(3) else (rxo, 2) if rxo is not None and rxo.value(2)
            else None)
    dosage = _dosage_of(env.ctx, texts, tq1, (rxe, 1) if rxe is not None else None, rxr, give)
    if dosage:
        res.setdefault("dosageInstruction", []).append(dosage)


def _give_dosage(res: Resource, seg: Segment | None, scope: Scope, env: Env) -> None:
    """The give instruction of one RXG (RGV^O15's GIVE group: RXG, its TIMING_GIVE TQ1s, its RXRs) as the
    dispense's Dosage, read as ``_dosage`` reads an order's: the timing from the give's own TQ1 (else RXG-3, the
    quantity/timing v2.5 keeps for older senders), the route from its own RXR-1, the amount RXG-5/6/7 (minimum,
    maximum, units), the text RXG-9 (administration notes) and RXG-13 (special administration instructions).
    The give's segments are those after this RXG before the next: the ORDER group holds the order's TQ1 and RXR
    too (its TIMING, its ENCODING), which are the order's, not this give's. The RXG fields no rule reads are
    counted in the fidelity report (``rxg_medicationdispense.yaml`` ``unread``). (Forty-third round, acsn43.)"""
    if seg is None:
        return
    own: list[Segment] = []
    for later in scope.segments[scope.segments.index(seg) + 1:]:
        if later.name == "RXG":
            break
        own.append(later)
    tq1 = next((s for s in own if s.name == "TQ1"), None)
    rxr = next((s for s in own if s.name == "RXR"), None)
    texts = [seg.value(f, comp=2) or seg.value(f) for f in (9, 13)]
    dosage = _dosage_of(env.ctx, texts, tq1, (seg, 3), rxr, (seg, 5) if seg.value(5) else None)
    if dosage:
        res.setdefault("dosageInstruction", []).append(dosage)
    elr_fields.note_unread(seg, env.ctx, "rxg_medicationdispense")
    env.ctx.gives.append((res, seg))  # (a stored give of another time under its key: ``settle_gives``)


def _dosage_of(ctx: Context, texts: list[str], tq1: Segment | None, tq: tuple[Segment, int] | None,
               rxr: Segment | None, give: tuple[Segment, int] | None) -> dict[str, Any]:
    """One Dosage -- the one reading of a pharmacy segment's give instruction, an order's (``_dosage``) or a
    give's (``_give_dosage``): ``texts`` its text (each once, in order), the timing from ``tq1`` (TQ1-3 the
    repeat pattern, TQ1-7/8 the bounds) else the TQ field ``tq`` (component 2 the interval, 4/5 the bounds), the
    route RXR-1, the amount at ``give`` (its field the minimum, the next the maximum, the one after the units: a
    range where the two differ). {} when it states nothing."""
    dosage: dict[str, Any] = {}
    texts = [t for t in texts if t]
    if texts:
        dosage["text"] = "; ".join(dict.fromkeys(texts))
    timing: dict[str, Any] = {}
    at, fno = tq if tq is not None else (None, 0)
    interval = tq1.value(3) if tq1 is not None else (at.value(fno, comp=2) if at is not None else "")
    if interval:
        timing["code"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0335", "code": interval}]}
    start, end = ((tq1.value(7), tq1.value(8)) if tq1 is not None
                  else (at.value(fno, comp=4), at.value(fno, comp=5)) if at is not None else ("", ""))
    bounds: dict[str, str] = {}
    for name, text in (("start", start), ("end", end)):
        if text:
            try:
                bounds[name] = to_datetime(text, ctx.tz).isoformat()
            except TimestampError as exc:
                ctx.warn((tq1 or at or ctx.message.msh).error(f"dosage timing: {exc}", code=DATA_TYPE_ERROR))
    if bounds:
        timing["repeat"] = {"boundsPeriod": bounds}
    if timing:
        dosage["timing"] = timing
    if rxr is not None and rxr.value(1):
        route = datatypes.cwe(rxr.rep(1), {}, ctx)
        if route:
            dosage["route"] = route
    if give is not None:
        seg, first = give
        try:
            low = datatypes.decimal(seg.value(first))
            high = datatypes.decimal(seg.value(first + 1)) if seg.value(first + 1) else None
        except ValueError as exc:
            ctx.warn(seg.error(f"{seg.name}-{first}/{seg.name}-{first + 1}: {exc}", first, code=DATA_TYPE_ERROR))
        else:
            units = datatypes.unit(seg.rep(first + 2), {}, ctx) or {}
            if high is not None and high != low:
                dosage["doseAndRate"] = [{"doseRange": {"low": {"value": low, **units}, "high": {"value": high, **units}}}]
            else:
                dosage["doseAndRate"] = [{"doseQuantity": {"value": low, **units}}]
    return dosage


def _prefer_reference(res: Resource, seg: Segment | None, scope: Scope, env: Env) -> None:
    """A choice sent both ways (medicationReference from RXE, medicationCodeableConcept from RXO):
    R4 allows one; the Reference to the Medication, which carries the code, stays."""
    for key in [k for k in res if k.endswith("Reference") and len(k) > len("Reference")]:
        res.pop(key[: -len("Reference")] + "CodeableConcept", None)


templates.KEYS["filler_id"] = _filler_key

templates.POST.update(
    {
        "appointment_times": _appointment_times,
        "appointment_patient": _appointment_patient,
        "appointment_status": _appointment_status,
        "appointment_resources": _appointment_resources,
        "condition_status": _condition_status,
        "dosage": _dosage,
        "give_dosage": _give_dosage,
        "allergy_status": _allergy_status,
        "prefer_reference": _prefer_reference,
        "referred_to": referral.referred_to,
    }
)
