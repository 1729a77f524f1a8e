"""The referral and remote-reading parts of HL7 v2 conversion.

- An imaging order (ORM^O01 / OMG^O19) a township addresses to its community's reading centre
  becomes a reading request: the order's ServiceRequest names the centre as performer, the study
  is an ImagingStudy, and a Task (code ``remote-read``) gives the centre the work, so the centre's
  worklist and the turnaround report see it as they see a FHIR client's request.
- The centre's report (ORU^R01) on such an order is linked to the township's order and study, at
  the ids the township's own order message gave them, instead of copies under the centre's name:
  the report's ``basedOn`` and ``imagingStudy`` are what the township ordered and imaged, its
  performer the centre (the sender), its ``resultsInterpreter`` the reading doctor (OBR-32).
- A referral (REF/RRI) names the institution it goes to (the referred-to provider's facility, or
  the namespace of the receiver's referral number): the referral ServiceRequest's performer and
  the Task's owner are that institution from the first message, not only after it accepts.

Which messages are remote reads, and which centre reads what, is ``referral/remote_reading.yaml``
(a site's copy replaces it, like every site file).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.convert import results
from adapters.convert.actors import INSTITUTION_SYSTEM, organization
from adapters.convert.context import Context, Resource
from adapters.hl7v2.parser import Segment
from adapters.hl7v2.timestamps import TimestampError, to_fhir_datetime
from engine.referral.reading import DCM, ReadingRules, reading_rules
from engine.repository.fhir import rewrite_references
from engine.repository.ids import deterministic_id
from mappings.site import Site

DICOM_UID = "urn:dicom:uid"
# an order's state → the reading Task's: an order cancelled (ORC-1 CA) cancels the read; any other
# state of the order (the study done, ORC-5 CM) leaves the read requested
_TASK_STATUS = {"revoked": "cancelled", "entered-in-error": "entered-in-error"}
# where a referral message names the institution it goes to: the referred-to provider's (PRD-1 RT)
# facility (PRD-4.4, PL facility) or organisation (PRD-10.10 / PRD-10.1, v2.7+), else the namespace
# of the receiver's own referral number (RF1-11.2)
_RECEIVER_FIELDS = (("PRD", 4, 4), ("PRD", 10, 10), ("PRD", 10, 1), ("RF1", 11, 2))

_cache: dict[int, tuple[Any, ReadingRules | None]] = {}


def reading(site: Site) -> ReadingRules | None:
    """The remote reading rules in force for ``site`` (None when it has none)."""
    data = site.tables.get("referral/remote_reading")
    hit = _cache.get(id(site))
    if hit is None or hit[0] is not data:
        hit = (data, reading_rules(data) if data else None)
        _cache[id(site)] = hit
    return hit[1]


def institution_ref(code: str, site: Site) -> dict[str, Any]:
    """A logical reference to a member institution (the form FHIR clients use for the same thing)."""
    inst = site.institution(code)
    ref: dict[str, Any] = {"identifier": {"system": INSTITUTION_SYSTEM, "value": code}}
    if inst is not None:
        ref["display"] = inst.name
    return ref


def _modality(sr: Resource) -> str:
    return next((str(c["code"]) for c in (sr.get("code") or {}).get("coding") or ()
                 if c.get("system") == DCM and c.get("code")), "default")


def reading_centre(ctx: Context, sr: Resource) -> str | None:
    """The centre an imaging order asks to read its study, or None when it is an ordinary order."""
    rules = reading(ctx.site)
    if rules is None:
        return None
    msh = ctx.message.msh
    community = ctx.institution.community
    facility = msh.receiving_facility.strip()
    if rules.is_centre(community, facility):
        centre: str | None = facility
    elif msh.receiving_application.strip() in rules.request_applications:
        centre = rules.centre(community, _modality(sr))
        if centre is None:
            ctx.warn(msh.error(f"MSH-5: a remote reading request, but community {community!r} has no reading "
                               "centre (referral/remote_reading.yaml); stored as an ordinary order", 5, code="103"))
    else:
        return None
    return centre if centre and centre != ctx.code else None


def reading_request(group: results.Group, ctx: Context, info: dict[str, Any],
                    imaging_study: Callable[[results.Group, Context, dict[str, Any]], dict[str, str] | None]) -> None:
    """An imaging order addressed to a reading centre → performer, ImagingStudy and the centre's Task."""
    request = info.get("request")
    if request is None:
        return
    sr = ctx.resources[request["reference"]]
    centre = reading_centre(ctx, sr)
    rules = reading(ctx.site)
    if centre is None or rules is None:
        return
    owner = institution_ref(centre, ctx.site)
    if owner not in sr.setdefault("performer", []):
        sr["performer"].append(owner)
    study = imaging_study(group, ctx, info)
    system, code = rules.task_code
    status = _TASK_STATUS.get(str(sr.get("status")), "requested")
    task: Resource = {
        "resourceType": "Task", "status": status, "intent": "order",
        "code": {"coding": [{"system": system, "code": code}]},
        "focus": {"reference": request["reference"]}, "basedOn": [{"reference": request["reference"]}],
        "for": info["subject"], "requester": organization(ctx), "owner": owner,
    }
    authored = sr.get("authoredOn") or _message_time(ctx)
    if authored:
        task["authoredOn"] = authored
    if study is not None:
        task["input"] = [{"type": {"text": "study to read"}, "valueReference": {"reference": study["reference"]}}]
    ref = ctx.put(task, f"remote-read|{request['reference']}")
    if status == "requested":  # the centre moves the Task on; a re-sent order must not move it back
        ctx.create_only.append(ref["reference"])


def _message_time(ctx: Context) -> str | None:
    try:
        return to_fhir_datetime(ctx.message.msh.timestamp, ctx.tz) if ctx.message.msh.timestamp else None
    except TimestampError:
        return None


def _value(group: results.Group, ctx: Context, seg_name: str, fno: int, comp: int) -> str:
    seg: Segment | None = {"ORC": group.orc, "OBR": group.obr}.get(seg_name) or ctx.message.get(seg_name)
    return seg.value(fno, comp=comp or 1).strip() if seg is not None else ""


def ordering_institution(group: results.Group, ctx: Context) -> str | None:
    """For a report a reading centre sends on a member's order: the member that ordered it."""
    rules = reading(ctx.site)
    community = ctx.institution.community
    if rules is None or not rules.is_centre(community, ctx.code):
        return None
    if not (group.orc is not None and group.orc.value(2)) and not (group.obr is not None and group.obr.value(2)):
        return None  # the placer's number is what names the order at the placer
    for seg_name, fno, comp in rules.ordering_facility:
        code = _value(group, ctx, seg_name, fno, comp)
        inst = ctx.site.institution(code) if code else None
        if inst is not None and inst.community == community and code != ctx.code:
            return code
    return None


def link_report(group: results.Group, ctx: Context, info: dict[str, Any], report: dict[str, str],
                ordering: str, interpreter: dict[str, Any] | None) -> None:
    """Move the centre's copies of the order and study to the ordering institution's ids (written
    only when that institution's own are absent), and name the reading doctor on the report."""
    moves: dict[str, str] = {}
    request = info.get("request")
    if request is not None:
        key = results.order_key(group, ctx, info["pkey"])
        moves[request["reference"]] = f"ServiceRequest/{deterministic_id(ordering, 'ServiceRequest', key)}"
    study = info.get("study")
    if study is not None:
        key = _study_key(ctx.resources[study["reference"]], ctx)
        if key is not None:
            moves[study["reference"]] = f"ImagingStudy/{deterministic_id(ordering, 'ImagingStudy', key)}"
    res = ctx.resources[report["reference"]]
    if interpreter is not None:
        res.setdefault("resultsInterpreter", [interpreter])
    if study is not None:
        res.setdefault("imagingStudy", [{"reference": study["reference"]}])
    if not moves:
        return
    moved: dict[str, Resource] = {}
    for ref, resource in ctx.resources.items():
        new = moves.get(ref)
        if new is not None:
            resource["id"] = new.split("/", 1)[1]
            ctx.create_only.append(new)
            # the township's order and study, linked as they are stored: their patient is the
            # referral's (the Task names him); ``MergeRules.found`` refuses the link only when the
            # index knows the centre's patient for another person (``Said.referred``)
            ctx.referred(resource, "subject")
        moved[new or ref] = resource
        rewrite_references(resource, moves)
    ctx.resources.clear()
    ctx.resources.update(moved)


def _study_key(study: Resource, ctx: Context) -> str | None:
    """The key the study was put under (by Study Instance UID, else accession), checked against its id."""
    for ident in study.get("identifier") or ():
        value = str(ident.get("value") or "")
        key = (f"uid|{value[8:] if value.startswith('urn:oid:') else value}" if ident.get("system") == DICOM_UID
               else f"acsn|{value}" if str(ident.get("system", "")).startswith("urn:huren:accession:") else None)
        if key is not None and ctx.id_for("ImagingStudy", key) == study.get("id"):
            return key
    return None


def referred_to(res: Resource, seg: Segment | None, scope: Any, env: Any) -> None:
    """Post-step of the REF/RRI ServiceRequest and Task: the institution the referral goes to, when
    the message names a member institution (other than the sender of a REF; an RRI's sender may
    name itself), is the request's performer and the Task's owner (the referred-to doctor stays a
    performer of the request)."""
    ctx: Context = env.ctx
    # a referral (REF) goes to another institution; an answer (RRI) comes from the one it went to
    answer = ctx.message.msh.message_type == "RRI"
    code = None
    for seg_name, fno, comp in _RECEIVER_FIELDS:
        for candidate in ctx.message.all(seg_name):
            if seg_name == "PRD" and candidate.value(1).strip().upper() != "RT":
                continue
            value = candidate.value(fno, comp=comp).strip()
            if value and (answer or value != ctx.code) and ctx.site.institution(value) is not None:
                code = value
                break
        if code:
            break
    if code is None:
        return
    ref = institution_ref(code, ctx.site)
    if res["resourceType"] == "Task":
        res["owner"] = ref
    elif ref not in res.setdefault("performer", []):
        res["performer"].append(ref)
