"""PACS feeds: ORM^O01 / OMG^O19 / OMI^O23 imaging orders → ServiceRequest (with DICOM modality and
accession); imaging ORU^R01 and MDM^T02 reports → DiagnosticReport, DocumentReference for the
report document, and ImagingStudy (Study Instance UID from ZDS-1, IPC-3 or an OBX)."""

from __future__ import annotations

import re
from typing import Any

from adapters.convert import applications, common, elr_fields, referral, results
from adapters.convert.context import Context, accession_system
from adapters.convert.datatypes import cwe, ndl
from adapters.convert.engine import apply_table
from adapters.convert.lis import convert_orders
from adapters.convert.tables import vocabulary
from adapters.hl7v2.errors import DATA_TYPE_ERROR, TABLE_VALUE_NOT_FOUND, UNSUPPORTED_EVENT_CODE, HL7Error
from adapters.hl7v2.parser import Message, Segment
from adapters.hl7v2.timestamps import TimestampError, to_fhir_datetime, to_fhir_instant
from engine.document_labels import ADDENDUM_SYSTEM, DOCUMENT_NUMBER_SYSTEM, PARAGRAPH_SYSTEM, TEXT_KIND_SYSTEM
from engine.merge_rules import exam_by_of
from mappings.site import Site

DOCUMENT_FILE_SYSTEM = "urn:huren:document-file:"  # + the sender (TXA-16, a file name unique at its sender)
# the converter's mark on its copy of a paragraph of a numbered document (``PARAGRAPH_SYSTEM`` + the sender;
# value: TXA-12; type ``TEXT_KIND_SYSTEM``: the kind of text the message stated, ``vocabulary.yaml``
# ``document_text_by_event``, with the event as sent), and on an addendum's paragraph (``ADDENDUM_SYSTEM``):
# the systems are those ``engine.document_labels`` judges the copies by, taken from there
_UID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_STUDY_UID_CODES = frozenset(
    {"110180", "113014", "STUDYUID", "STUDYINSTANCEUID", "STUDY INSTANCE UID", "STUDY_UID"}
)
# one search of the upper-cased OBX-3 for any of the codes (was a substring test per code, each
# upper-casing the field again: ~2 us an OBX, and routing reads every OBX of every ORU)
_STUDY_UID_TEXT = re.compile("|".join(re.escape(c) for c in sorted(_STUDY_UID_CODES, key=len, reverse=True)))
_IMPRESSION = ("IMP", "印象", "诊断", "结论", "IMPRESSION", "18782-3", "19005-8")
_DOCUMENT_STATUS = {
    "final": "final",
    "corrected": "amended",
    "amended": "amended",
    "preliminary": "preliminary",
    "partial": "preliminary",
}


def is_imaging(ctx: Context) -> bool:
    """Whether an ORU/ORM carries imaging (PACS) rather than lab (LIS) content."""
    msg = ctx.message
    if msg.get("ZDS") or msg.get("IPC"):
        return True
    sections = vocabulary(ctx.site, "modality_by_section")
    for obr in msg.all("OBR"):
        if obr.value(24).strip().upper() in sections:
            return True
    results = msg.all("OBX")
    return _may_name_a_study(results) and any(_study_uid_from_obx(obx) for obx in results)


def _may_name_a_study(results: list[Segment]) -> bool:
    """False when no OBX of the message can name a Study Instance UID by ``_study_uid_from_obx``'s
    first test: an OBX whose OBX-3 is empty, holds an escape, names a study UID code (upper-cased)
    or whose OBX-2 says RP may. Asked of each OBX's (OBX-2, OBX-3) text through a memo of that
    answer: a laboratory sends the same few hundred tests, and upper-casing and searching the
    texts of a 12-result message cost ~6 us of every lab message's routing (its joins ~1 us more
    than these lookups)."""
    if not results:
        return False
    enc = results[0].enc
    esc = enc.escape
    if not esc:
        return True
    known = _MAY_NAME.get(esc)
    if known is None or len(known) >= _MAY_NAME_LIMIT:
        known = _MAY_NAME[esc] = {}
    for obx in results:
        if obx.enc is not enc:
            return True
        fields = obx.fields
        pair = (fields[2] if len(fields) > 2 else "", fields[3] if len(fields) > 3 else "")
        may = known.get(pair)
        if may is None:
            kind, item = pair
            may = known[pair] = (not item or esc in item or esc in kind or "RP" in kind.upper()
                                 or any(code in item.upper() for code in _STUDY_UID_CODES))
        if may:
            return True
    return False


# escape character -> (OBX-2, OBX-3) text -> whether it may name a study (``_may_name_a_study``)
_MAY_NAME: dict[str, dict[tuple[str, str], bool]] = {}
_MAY_NAME_LIMIT = 8192


def convert_imaging_order(ctx: Context) -> None:
    convert_orders(ctx, "imaging", with_report=False, hook=_request_hook)


def convert_imaging_report(ctx: Context) -> None:
    convert_orders(ctx, "imaging", with_report=True, hook=_report_hook)


def convert_document(ctx: Context) -> None:
    """MDM^T01..T11: TXA + OBX → DocumentReference; an imaging OBR also yields the report and study."""
    with_report = ctx.message.get("OBR") is not None
    convert_orders(ctx, "imaging", with_report=with_report, hook=_document_hook)
    _refuse_without_content(ctx)  # first: a cancel (T11) stating CA is refused as a cancel
    _refuse_unstored_availability(ctx)
    _label_content(ctx)
    _documents_first(ctx)


# TXA-19 document availability (HL7 table 0273) that the stored document states: AV "available for
# patient care" (or none). CA deleted, OB obsolete and UN unavailable for patient care have no place
# in what huren writes (``DocumentReference.status`` reads "current"), so a message stating one is
# refused rather than stored as a document for patient care (twentieth round, last20a)
_AVAILABLE = frozenset({"", "AV"})


def _refuse_unstored_availability(ctx: Context) -> None:
    """AE for a TXA-19 other than AV: the document would be shown for patient care as "current"
    while its sender said it is obsolete, deleted or not available -- an AA would tell the sender
    that status was kept."""
    for txa in ctx.message.all("TXA"):
        availability = txa.value(19).strip().upper()
        if availability not in _AVAILABLE:
            raise txa.error(f"TXA-19 document availability {availability!r} (table 0273: CA deleted, OB "
                            "obsolete, UN unavailable for patient care) is not stored by huren: the document "
                            "would read as available; not accepted", 19, 1, code=TABLE_VALUE_NOT_FOUND)


# the MDM_T01 structure's events: a notification without the document's content (HL7 v2.5 ch. 9)
_NOTIFICATIONS = frozenset({"T01", "T03", "T05", "T07", "T09", "T11"})


def _refuse_without_content(ctx: Context) -> None:
    """AR for a document notification that carries no content (no OBX text): the
    MDM_T01 structure's T01, T03 (status change), T05, T07, T09 and T11 (cancel). huren keeps a
    document from its text (HL7 v2.5 ch. 9: the notification-only events state the document's
    TXA-17 completion status, TXA-18 confidentiality and TXA-19 availability without it), and
    such a message wrote nothing of its TXA, yet was answered AA: a T03 raising a discharge
    summary to V left the document and its text readable, the sender told it was stored
    (twentieth round, last20a). Refused, naming why, until a status change can be applied to
    the stored document by the merge rules; the same change sent with its content (T04, T06,
    T08, T10) is stored."""
    # for a notification-only event the report an imaging OBR yields is no content: a T03 with an
    # OBR and no OBX labelled the new report V and left the stored text readable (the review of
    # last20a); a content event's order and report without OBX (a T02 of one) are stored as before
    content = ("DocumentReference", "Observation") if ctx.message.msh.trigger_event in _NOTIFICATIONS \
        else ("DocumentReference", *_CONTENT)
    if ctx.message.get("TXA") is None or any(r.get("resourceType") in content for r in ctx.resources.values()):
        return
    msh = ctx.message.msh
    raise HL7Error(
        f"{msh.message_type}^{msh.trigger_event} carries no document content (OBX): huren stores a "
        "document with its text, and this notification's TXA (completion status, confidentiality, "
        "availability) would be stored nowhere; send the change with the document's content "
        "(T02, T04, T06, T08 or T10)",
        segment="MSH", sequence=1, field=9, component=2, code=UNSUPPORTED_EVENT_CODE, ack_code="AR")


def _documents_first(ctx: Context) -> None:
    """Put the message's DocumentReferences before the rest of what it wrote: the document is
    written (and combined with the stored one: its label never lowered by a feed, ``merge.yaml``)
    before the text that derives from it reads that label (``engine.document_labels``)."""
    listed = list(ctx.resources.items())
    documents = [(ref, r) for ref, r in listed if r.get("resourceType") == "DocumentReference"]
    if not documents:
        return
    first = next(n for n, (_, r) in enumerate(listed) if r.get("resourceType") in (*_CONTENT, "DocumentReference"))
    rest = [(ref, r) for ref, r in listed if r.get("resourceType") != "DocumentReference"]
    ctx.resources.clear()
    ctx.resources.update([*rest[:first], *documents, *rest[first:]])


_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
_CONTENT = ("Observation", "DiagnosticReport")


def txa_labels(message: Message, site: Site) -> set[str]:
    """The v3 confidentiality codes the message's TXA-18 state, as the document's table maps them
    (``vocabulary.yaml`` ``document_confidentiality``: V, R, U -> N): the one reader of TXA-18
    labels, for the converter and for what the operator is shown of a refused message
    (``engine.api.admin``)."""
    confidentiality = vocabulary(site, "document_confidentiality")
    found: set[str] = set()
    for txa in message.all("TXA"):
        mapped = confidentiality.get(txa.value(18).strip().upper())
        if isinstance(mapped, dict) and mapped.get("code"):
            found.add(str(mapped["code"]))
    return found


def _label_content(ctx: Context) -> None:
    """The document's confidentiality (TXA-18 -> ``DocumentReference.securityLabel``) on what the
    message wrote of its content too: the OBX text is an Observation (and a report its
    DiagnosticReport), and a V document whose text was stored unlabelled was read by the resident
    in full while the DocumentReference answered 404 (nineteenth round, found by audlast19). The
    most confidential of the message's documents' labels (V over R) goes into ``meta.security``."""
    found: set[str] = set()
    for resource in ctx.resources.values():
        if resource.get("resourceType") != "DocumentReference":
            continue
        for label in resource.get("securityLabel") or ():
            found |= {c.get("code") for c in label.get("coding") or () if c.get("system") == _CONFIDENTIALITY}
    # and from TXA-18 itself, as the document's table maps it: a message with its order (ORC/OBR
    # before TXA) writes a report and no DocumentReference, and its V text was left unlabelled
    found |= txa_labels(ctx.message, ctx.site)
    top = "V" if "V" in found else "R" if "R" in found else None
    if top is None:
        return
    for resource in ctx.resources.values():
        if resource.get("resourceType") in _CONTENT:
            security = resource.setdefault("meta", {}).setdefault("security", [])
            if not any(c.get("system") == _CONFIDENTIALITY for c in security):
                security.append({"system": _CONFIDENTIALITY, "code": top})


def _ipcs(group: results.Group, ctx: Context) -> list[Segment]:
    """The IPCs (imaging procedure control) of the order ``group``: those after its OBR (else its ORC) and before
    the next order's ORC or OBR -- OMI^O23's ORDER group holds IPC 1..* after its OBR (v2.5.1 ch. 4), each a
    requested procedure / study of that order: its accession, Study UID and modality. IPCs standing before every
    order (where ORU and MDM senders put the one of their message) are every group's that has none of its own.
    Why: each group read the message's first IPC, so the second order of an OMI took the first's accession number,
    Study UID and modality (forty-second round, fam42); and an order's second IPC was dropped without a word, its
    study's UID neither stored nor counted (review rv42d MED 4; forty-second round, omi42)."""
    msg = ctx.message
    anchor = group.obr if group.obr is not None else group.orc
    first = msg.get("IPC")
    if first is None:
        return []
    if anchor is None:
        return [first]
    segments = msg.segments
    own: list[Segment] = []
    for seg in segments[anchor.position + 1:]:
        name = seg.name
        if name == "IPC":
            own.append(seg)
        elif name in ("ORC", "OBR"):
            break
    if own:
        return own
    opening = next((s.position for s in segments if s.name in ("ORC", "OBR")), len(segments))
    return [s for s in segments[:opening] if s.name == "IPC"]


def _ipc(group: results.Group, ctx: Context) -> Segment | None:
    """The first IPC of the order ``group`` (``_ipcs``): the one whose accession, Study UID and modality the
    group's report and its ImagingStudy are keyed by; the order itself holds every IPC's (``_order_hook``)."""
    ipcs = _ipcs(group, ctx)
    return ipcs[0] if ipcs else None


def _modality(group: results.Group, ctx: Context) -> str:
    ipc = _ipc(group, ctx)
    if ipc is not None and ipc.value(5):
        return ipc.value(5).strip().upper()
    obr = group.obr
    if obr is not None:
        section = obr.value(24).strip().upper()
        mapped = vocabulary(ctx.site, "modality_by_section").get(section)
        if mapped:
            return str(mapped)
        rep = obr.rep(4)  # (the code map answers the sender's own codes only: conv42)
        local = common.answered_by_code_map(common.system_for(ctx, rep.comp(3)), ctx)
        item = ctx.site.code_map(ctx.code).lookup(rep.comp(1).strip()) if local else None
        if item and item.item and "-" in item.item:
            return item.item.split("-")[0]
    return ""


def _accession(group: results.Group, ctx: Context) -> str:
    ipc = _ipc(group, ctx)
    if ipc is not None and ipc.value(1):
        return ipc.value(1)
    if group.obr is not None and group.obr.value(18):
        return group.obr.value(18)
    return ""


def _order_hook(group: results.Group, ctx: Context, info: dict[str, Any]) -> None:
    request = info["request"]
    if request is None:
        return
    sr = ctx.resources[request["reference"]]
    # each once: a second OBR group of the same order (one accession, its results split) named the
    # modality and the accession again, and the order held both twice
    modality = _modality(group, ctx)
    if modality:
        _add_once(sr.setdefault("code", {}).setdefault("coding", []), {"system": common.DCM, "code": modality})
    accession, first = _accession(group, ctx), _ipc(group, ctx)
    if accession:
        stated = first if first is not None and first.value(1) else None  # (else OBR-18's)
        _add_once(sr.setdefault("identifier", []), _accession_identifier(accession, ctx, stated, sr))
    # every IPC of the order is one of its requested procedures / studies: each one's modality, accession and
    # Study UID, exactly as sent (the first's come first; ``_add_once``: a repeated one stands once)
    for ipc in _ipcs(group, ctx):
        elr_fields.note_unread(ipc, ctx, "ipc_imaging")  # IPC-2, IPC-4 ... counted (fidelity)
        for field_no in _IPC_ONCE:
            _one_repetition(ipc, field_no, ctx)
        if ipc.value(5):
            _add_once(sr.setdefault("code", {}).setdefault("coding", []),
                      {"system": common.DCM, "code": ipc.value(5).strip().upper()})
        if ipc.value(1):
            _add_once(sr.setdefault("identifier", []), _accession_identifier(ipc.value(1), ctx, ipc, sr))
        uid = _dicom_uid(ipc.value(3), ipc, 3, ctx, "the order keeps no Study UID")  # (the study's rule: plan43)
        if uid:
            _add_once(sr.setdefault("identifier", []), {"system": common.DICOM_UID, "value": f"urn:oid:{uid}"})


# the IPC fields read, none repeating in v2.5.1 (IPC-1 accession EI, IPC-3 Study UID EI, IPC-5 modality CE)
_IPC_ONCE = (1, 3, 5)


def _one_repetition(seg: Segment, field_no: int, ctx: Context) -> None:
    """A W 102 at field ``field_no`` of ``seg`` when it holds more than one repetition: the field does not repeat,
    its first is read and the others are left out -- ``IPC|A1~A2|...|CT~MR`` had lost A2 and MR with AA and no
    word (rv43a LOW 3; forty-third round, plan43)."""
    reps = seg.reps(field_no)
    if len(reps) > 1 and any(rep for rep in reps[1:]):
        ctx.warn(seg.error(f"{seg.name}-{field_no} does not repeat: its first repetition is read, "
                           f"{sum(1 for rep in reps[1:] if rep)} other(s) left out", field_no, code=DATA_TYPE_ERROR))


def _acsn(accession: str, ctx: Context) -> dict[str, Any]:
    """An accession number (IPC-1, OBR-18) as an ACSN identifier (v2 0203) under the sender's accession system: the
    order's (``_accession_identifier``, with its assigner) and the ImagingStudy's (``_imaging_study``)."""
    return {
        "type": {"coding": [{"system": common.V2_0203, "code": "ACSN"}]},
        "system": accession_system(ctx.urn_code),
        "value": accession,
    }


def _accession_identifier(accession: str, ctx: Context, ipc: Segment | None, sr: dict[str, Any]) -> dict[str, Any]:
    """The order's accession number (IPC-1 of ``ipc``, else OBR-18) as its ACSN identifier, under the sender's
    system, with the application that assigned it (``applications.assigner``): IPC-1's assigning authority (EI-2..4,
    v2.5.1 2.A.24) where stated, else the sending application (MSH-3) -- an OBR-18 is ST, and IHE RAD Scheduled
    Workflow has the Order Filler (the RIS) send the OMI holding the accession it assigned. One institution's
    imaging fillers (RIS, ultrasound, endoscopy) each count by date, so the value alone names no order: a report
    names this order by it only from the application that assigned it (``adapters.convert._names_the_order``;
    review rv43b HIGH 1, forty-third round, acsn43b)."""
    identifier = _acsn(accession, ctx)
    sent = (ipc.value(1, comp=2).strip(), ipc.value(1, comp=3).strip(), ipc.value(1, comp=4).strip()) \
        if ipc is not None else ("", "", "")
    authority, stated = applications.numbering(sent, ctx)
    by = applications.assigner(authority, ctx.urn_code)
    if by is not None:
        identifier["assigner"] = by
    if not stated:
        # an assigner the message did not state -- defaulted to MSH-3, or none at all behind a listed relay -- never
        # replaces the one recorded on the order (``settle_assigners``; rv43e MED 2): a relay's re-send of the
        # RIS's OMI had gone out with no assigner and, not recorded here, erased the RIS's (rv43f MED)
        ctx.defaulted_assigners.append((sr, identifier["system"], identifier["value"]))
    return identifier


def _add_once(listed: list[dict[str, Any]], entry: dict[str, Any]) -> None:
    if entry not in listed:
        listed.append(entry)


def _request_hook(group: results.Group, ctx: Context, info: dict[str, Any]) -> None:
    _order_hook(group, ctx, info)
    referral.reading_request(group, ctx, info, _imaging_study)  # addressed to a reading centre?


def _report_hook(group: results.Group, ctx: Context, info: dict[str, Any]) -> None:
    _order_hook(group, ctx, info)
    info["conclusion"] = _conclusion(group, ctx)
    study = _imaging_study(group, ctx, info)
    if study is not None:
        info["study"] = study
        info.setdefault("after_report", []).append(lambda report: _study_time_of_a_correction(ctx, study, report, group))
    # every further IPC of the group's order is a study of its own (its Study UID, else its accession): a report
    # of a CT and its MR follow-up booked as two IPCs made one ImagingStudy, the first's (omi42 LOW)
    for ipc in _ipcs(group, ctx)[1:]:
        more = _imaging_study(group, ctx, info, ipc)
        if more is not None:
            info.setdefault("studies", []).append(more)
            info.setdefault("after_report", []).append(
                lambda report, s=more: _study_time_of_a_correction(ctx, s, report, group))
    ordering = referral.ordering_institution(group, ctx)  # a reading centre's report on a member's order?
    if ordering is not None:
        interpreter = _interpreter(group.obr, ctx) if group.obr is not None else None
        info.setdefault("after_report", []).append(
            lambda report: referral.link_report(group, ctx, info, report, ordering, interpreter)
        )
    forms = info["forms"]
    if forms or info["text"] or _withdraws_text(group, ctx):
        # a message carrying only the text lines it withdraws (OBX-11 D, W) writes the report's
        # document too, without content: onto a stored one only (``settle_documents``), whose text
        # then follows the report's (``merge.yaml`` DocumentReference ``content: text_of``) -- so does
        # one carrying a text line too few for a document of its own (one line is a value: a
        # correction of a withdrawn line alone, which the report's text takes back; ordfix36)
        info.setdefault("after_report", []).append(
            lambda report: _document_reference(group, ctx, info, report)
        )


def _study_time_of_a_correction(ctx: Context, study: dict[str, str], report: dict[str, str],
                                group: results.Group) -> None:
    """A report message correcting its report (the report's status one of ``exam_time``'s ``by``, merge.yaml
    ImagingStudy ``started``: corrected, amended, appended) tells the merge which report its study is of and the
    status the message gives it (``Context.reported_by``): the merge decides the study's start as it decides the
    report's time (``exam_time`` ``of: report``, over the stored report's status), since an ImagingStudy has no
    status of its own and only the converter knows which report the study's message states -- a RIS restamping
    OBR-7 with its correction's send time kept the 2024 report's time but moved its study's (prior42). The hook had
    stated ``started`` as an assumption under any correction, so a correction over a preliminary report moved the
    report's time but not the study's (rv42e LOW; forty-third round, time43: the rule has one owner). The start is
    located at the OBR field it was read from (``_study_start``: OBR-7, else OBR-6), where a W says it stands."""
    status = ctx.resources.get(report["reference"], {}).get("status")
    resource = ctx.resources.get(study["reference"])
    if resource is not None and "started" in resource and isinstance(status, str) \
            and status in exam_by_of(ctx.site.merge, "ImagingStudy"):
        ctx.reported_by(resource, report["reference"], status)
        start = _study_start(group.obr, ctx) if group.obr is not None else None
        if group.obr is not None and start is not None:
            ctx.located(resource, "started", group.obr, start[0])


def _study_start(obr: Segment, ctx: Context) -> tuple[int, str] | None:
    """The study's start and the OBR field it is read from: OBR-7 (observation date/time), else OBR-6 (requested
    date/time) -- the first of them holding a readable time. One reading for ``_imaging_study``, which states it,
    and ``_study_time_of_a_correction``, which locates it for the W saying it stands: that one had taken OBR-7
    whenever it was valued, so a start read from OBR-6 beside an unreadable OBR-7 was warned at OBR-7 (last43 LOW;
    forty-fourth round, low44)."""
    for fno in (7, 6):
        if obr.value(fno):
            try:
                return fno, to_fhir_datetime(obr.value(fno), ctx.tz)
            except TimestampError:
                continue
    return None


def _document_hook(group: results.Group, ctx: Context, info: dict[str, Any]) -> None:
    if group.obr is not None:
        _report_hook(group, ctx, info)
        if not info["forms"]:
            return
        return
    lines = info["text"]
    if lines and not info["forms"]:
        info["forms"].append(results.text_form(lines, "document"))
    if info["forms"]:
        _document_reference(group, ctx, info, None)


def _withdraws_text(group: results.Group, ctx: Context) -> bool:
    """Whether the group carries a text result (OBX-2 TX, FT) its sender withdrew (``results.withdrawn``):
    the report's stored document may hold its words (thirty-second round, docref32)."""
    return any(obx.value(2).strip().upper() in results.TEXT_TYPES and results.withdrawn(obx, ctx)
               for obx in group.obx)


def _conclusion(group: results.Group, ctx: Context) -> str:
    """The report's impression: the words of its impression OBX (``_IMPRESSION`` in OBX-3), one line
    a repetition -- of those the sender did not withdraw (``results.withdrawn``: OBX-11 D, W)."""
    parts = []
    for obx in group.obx:
        code = (obx.value(3) + " " + obx.value(3, comp=2)).upper()
        if any(mark.upper() in code for mark in _IMPRESSION) and not results.withdrawn(obx, ctx):
            parts.extend(r.text() for r in obx.reps(5))
    return "\n".join(p for p in parts if p)


def _study_uid_from_obx(obx: Segment) -> str:
    """OBX-5 when OBX-3 names the Study Instance UID or OBX-5 is a DICOM reference pointer.
    Runs for every OBX of every ORU (routing), so OBX-5 is only read once OBX-2/3 qualify, and
    OBX-3 is only split when its text holds one of the codes (without escapes, a component is a
    piece of the field's text)."""
    raw, kind, esc = obx.field(3), obx.field(2), obx.enc.escape
    if (raw and esc and esc not in raw and esc not in kind and "RP" not in kind.upper()
            and _STUDY_UID_TEXT.search(raw.upper()) is None):
        return ""
    item = obx.rep(3)
    if item.comp(1).strip().upper() in _STUDY_UID_CODES or item.comp(2).strip().upper() in _STUDY_UID_CODES:
        return obx.rep(5).comp(1).strip()
    if obx.value(2).upper() == "RP":
        rep = obx.rep(5)
        if "DICOM" in (rep.comp(3) + rep.comp(4)).upper():
            return rep.comp(1).strip()
    return ""


def _study_uid(group: results.Group, ctx: Context) -> tuple[str, Segment | None, int]:
    zds = ctx.message.get("ZDS")
    if zds is not None and zds.value(1):
        return zds.value(1).strip(), zds, 1
    ipc = _ipc(group, ctx)
    if ipc is not None and ipc.value(3):
        return ipc.value(3).strip(), ipc, 3
    for obx in group.obx:
        uid = _study_uid_from_obx(obx)
        if uid:
            return uid, obx, 5
    return "", None, 0


def _dicom_uid(value: str, seg: Segment, field_no: int, ctx: Context, left: str) -> str:
    """A Study Instance UID as sent in field ``field_no`` of ``seg`` (IPC-3, ZDS-1, an OBX-5), bare -- a
    ``urn:oid:`` prefix taken off (huren writes it back once: ``urn:oid:<uid>`` under ``urn:dicom:uid``) --
    or "" when there is none or it is no DICOM UID (PS3.5 9.1: digits and dots, no leading zero, at most 64
    characters), said as a W 102 at the field (``Context.warn`` says it once: a report's order and its ImagingStudy
    read the same IPC-3). ``left``: what the caller keeps without it -- "the order keeps no Study UID" (an order makes
    no study), "the study is keyed by accession" -- both in the one W where a report's order and study read one
    field (rv43e LOW 1; forty-third round, acsn43c).
    The one rule for the order's UIDs (``_order_hook``, every IPC) and the study's (``_imaging_study``): the order
    had written ``urn:oid:`` before whatever IPC-3 held (``urn:oid:urn:oid:...``; ``urn:oid:not a uid`` with AA
    and no word), so one study had two UIDs (rv43a MED 3; forty-third round, plan43)."""
    uid = value.strip()
    if uid.startswith("urn:oid:"):
        uid = uid[8:]
    if uid and (not _UID.match(uid) or len(uid) > 64):
        err = seg.error(f"{seg.name}-{field_no}: {uid!r} is not a DICOM UID; {left}", field_no, 1, code=DATA_TYPE_ERROR)
        said = next((w for w in ctx.warnings if w.message.startswith(err.message.removesuffix(left))
                     and (w.segment, w.sequence, w.field) == (err.segment, err.sequence, err.field)), None)
        if said is None:
            ctx.warn(err)
        elif not said.message.endswith(left):
            said.message += f"; {left}"
        return ""
    return uid


def _imaging_study(group: results.Group, ctx: Context, info: dict[str, Any],
                   further: Segment | None = None) -> dict[str, str] | None:
    """The group's ImagingStudy, keyed by its Study UID (ZDS-1, its first IPC's IPC-3, an OBX naming one), else its
    accession (IPC-1, OBR-18), else the report; None when nothing names a study. ``further``: another IPC of the
    group's order (OMI^O23 holds IPC 1..*: each a study), the study that IPC names -- its own IPC-3, IPC-1 and
    IPC-5, the report's time, procedure and interpreter; none when it names neither a UID nor an accession (a
    modality alone is no study's identity), and the series of the report's OBXs stay the first study's
    (forty-third round, acsn43)."""
    if further is None:
        uid, where, field_no = _study_uid(group, ctx)
    else:
        uid, where, field_no = (further.value(3).strip(), further, 3) if further.value(3) else ("", None, 0)
    if where is not None:
        uid = _dicom_uid(uid, where, field_no, ctx, "the study is keyed by accession")
    accession = _accession(group, ctx) if further is None else further.value(1)
    modality = _modality(group, ctx) if further is None else further.value(5).strip().upper()
    if not (uid or accession or modality) or (further is not None and not (uid or accession)):
        return None
    study: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "status": "available",
        "subject": info["subject"],
    }
    identifiers = []
    if uid:
        identifiers.append({"system": common.DICOM_UID, "value": f"urn:oid:{uid}"})
    if accession:
        identifiers.append(_acsn(accession, ctx))
    if identifiers:
        study["identifier"] = identifiers
    if modality:
        study["modality"] = [{"system": common.DCM, "code": modality}]
    obr = group.obr
    if obr is not None:
        start = _study_start(obr, ctx)
        if start is not None:
            study["started"] = start[1]
        code = common.coded_item(obr, 4, ctx)
        if code:
            study["procedureCode"] = [code]
            if code.get("text") or obr.value(4, comp=2):
                study["description"] = code.get("text") or obr.value(4, comp=2)
        if obr.value(31):
            reason = cwe(obr.rep(31), {}, ctx)
            if reason:
                study["reasonCode"] = [reason]
    series = _series(group, ctx, modality, obr) if further is None else []
    if series:
        study["series"] = series
        study["numberOfSeries"] = len(series)
    if info.get("encounter"):
        study["encounter"] = info["encounter"]
    if info.get("request"):
        study["basedOn"] = [info["request"]]
    key = f"uid|{uid}" if uid else f"acsn|{accession}" if accession else f"{info['key']}|study"
    if obr is not None:
        interpreter = _interpreter(obr, ctx)
        if interpreter:
            study["interpreter"] = [interpreter]
    # the number that keys the study: another patient under it is refused there (merge.yaml ``another_person``)
    ipc = _ipc(group, ctx) if further is None else further
    keyed_by = ((where, field_no) if uid else (ipc, 1) if ipc is not None and ipc.value(1)
                else (obr, 18) if accession else (None, 0))
    if keyed_by[0] is not None:
        ctx.located(study, "subject", keyed_by[0], keyed_by[1])
    ref = ctx.put(study, key)
    if key.startswith("acsn|") and str(info.get("key") or "").startswith("filler|"):
        # the study keyed by the accession goes with the report keyed by the filler number: where that report is
        # another order's, the study is keyed apart with it (``settle_reused_filler``) -- the 2024 exam's study
        # was rewritten by the 2026 exam's under the reused accession (rv41k HIGH 3)
        ctx.filler_keyed[ref["reference"]] = f"{info['key']}|acsn" + (f"|{accession}" if further is not None else "")
    return ref


def _interpreter(obr: Segment, ctx: Context) -> dict[str, Any] | None:
    """OBR-32 principal result interpreter (NDL, ``datatypes.ndl``)."""
    rep = obr.rep(32)
    if not rep:
        return None
    return ndl(rep, {}, ctx)


def _series(group: results.Group, ctx: Context, modality: str, obr: Segment | None) -> list[dict[str, Any]]:
    """Series UIDs sent in OBX (code 112002 / SeriesInstanceUID) with the body site of OBR-15/46."""
    out = []
    body = None
    if obr is not None:
        if obr.value(46):
            body = _coding(cwe(obr.rep(46), {}, ctx))
        elif obr.value(15, comp=4):
            body = {"display": obr.value(15, comp=4)}
    for obx in group.obx:
        code = obx.value(3).strip().upper()
        if code in ("112002", "SERIESINSTANCEUID", "SERIES INSTANCE UID", "SERIESUID"):
            uid = obx.value(5).strip()
            if _UID.match(uid) and modality:
                series: dict[str, Any] = {"uid": uid, "modality": {"system": common.DCM, "code": modality}}
                if body:
                    series["bodySite"] = body
                out.append(series)
    return out


def _coding(concept: dict[str, Any] | None) -> dict[str, Any] | None:
    if not concept:
        return None
    if concept.get("coding"):
        return concept["coding"][0]
    return {"display": concept.get("text", "")}


def _document_reference(
    group: results.Group, ctx: Context, info: dict[str, Any], report: dict[str, str] | None
) -> None:
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": info["subject"],
    }
    txa = ctx.message.get("TXA")
    if txa is not None:
        apply_table("txa_documentreference", {"TXA": txa}, ctx, doc)
        for ident in doc.get("identifier", ()):  # TXA-16: a file name is unique at its sender only
            ident.setdefault("system", f"{DOCUMENT_FILE_SYSTEM}{ctx.urn_code}")
        if txa.value(12):
            doc["masterIdentifier"] = {"system": f"{DOCUMENT_NUMBER_SYSTEM}{ctx.urn_code}", "value": txa.value(12)}
            # (the document's text held against its sender's later edit: the ACK's W names TXA-12,
            # ``merge.yaml`` DocumentReference ``masterIdentifier: until_later``, tfix35)
            ctx.located(doc, "masterIdentifier", txa, 12)
        # TXA-13: the parent of an addendum (T05/T06) or a replacement (T09/T10), keyed as it was
        # (``doc|<TXA-12>``); the addendum carries its parent's label (``engine.document_labels``)
        relation = (vocabulary(ctx.site, "document_relation_by_event").get(ctx.message.msh.trigger_event)
                    if txa.value(13).strip() else None)
        if relation:
            doc["relatesTo"] = [{"code": str(relation), "target": ctx.ref("DocumentReference", f"doc|{txa.value(13)}")}]
    if "type" not in doc and group.obr is not None:
        code = common.coded_item(group.obr, 4, ctx)
        if code:
            doc["type"] = code
    if report is not None and "docStatus" not in doc:
        status = ctx.resources[report["reference"]].get("status", "")
        if status in _DOCUMENT_STATUS:
            doc["docStatus"] = _DOCUMENT_STATUS[status]
    if "date" not in doc:
        msh7 = ctx.message.msh.timestamp
        try:
            instant = to_fhir_instant(msh7, ctx.tz) if msh7 else None
        except TimestampError:
            instant = None
        if instant:
            doc["date"] = instant
    doc.setdefault("author", []).append(info["performer"])
    doc["custodian"] = info["performer"]
    if info["forms"]:  # (none: a message withdrawing text lines, written onto a stored document only)
        doc["content"] = [{"attachment": form} for form in info["forms"]]
    context: dict[str, Any] = {}
    if info.get("encounter"):
        context["encounter"] = [info["encounter"]]
    related = [r for r in (report, info.get("study"), *info.get("studies", ())) if r]
    if related:
        context["related"] = related
    if context:
        doc["context"] = context
    key = f"doc|{txa.value(12)}" if txa is not None and txa.value(12) else f"{info['key']}|document"
    if txa is not None and txa.value(12):  # another patient under it is refused there (merge.yaml ``another_person``)
        ctx.located(doc, "subject", txa, 12)
    ref = ctx.put(doc, key)
    # an MDM's results are the document's text: each names it (R4 ``Observation.derivedFrom``) and
    # takes its label as stored after the merge (``engine.document_labels``); an imaging ORU's
    # report document states no label (no TXA) and its results are the report's, as before
    # (an imaging report's document -- an OBR in the group -- is not: its results are the report's, whose
    # own rules say which lines stand, ``lines_of``; a deleted one would leave the report citing it)
    # the kind of text the event states (``document_text_by_event``; None: its text is no paragraph of a document)
    kind = (vocabulary(ctx.site, "document_text_by_event").get(ctx.message.msh.trigger_event)
            if txa is not None and txa.value(12) and group.obr is None else None)
    paragraphs = _paragraphs(group) if kind is not None else None
    for result in info["results"] if txa is not None else ():
        text = ctx.resources.get(result["reference"])
        if text is not None and text.get("resourceType") == "Observation":
            named = text.setdefault("derivedFrom", [])
            if ref not in named:
                named.append(dict(ref))
            if paragraphs is not None:
                _mark_paragraph(text, paragraphs, str(kind), txa, ctx)


def _flat(text: str) -> str:
    """A paragraph's words as compared: each line without its outer blanks (the stored string's
    may have been trimmed)."""
    return "\n".join(line.strip() for line in text.splitlines()).strip()


def _paragraphs(group: results.Group) -> set[tuple[str, str]]:
    """(OBX-3, words) of the group's text results (OBX-2 TX, FT): the paragraphs of the document's text
    content (``lis._text_of``), as their Observations state them -- a withdrawn one (OBX-11 W, D) too,
    which the content leaves out and its copy states entered-in-error (the hook leaves such a copy).
    Asked only of an event whose text is a document's paragraphs (``document_text_by_event``)."""
    return {(obx.value(3), _flat("\n".join(r.text() for r in obx.reps(5)))) for obx in group.obx
            if obx.value(2).strip().upper() in results.TEXT_TYPES}


def _mark_paragraph(text: dict[str, Any], paragraphs: set[tuple[str, str]], kind: str, txa: Segment,
                    ctx: Context) -> None:
    """Mark the Observation ``text`` as the converter's copy of a paragraph of the document TXA-12 numbers,
    stated by an event of ``kind`` (``document_text_by_event``; thirty-seventh round, old37): an edit (T08)
    carries the document's whole text, and the copies it no longer holds are deleted by the document's write
    (``engine.document_labels``) -- only copies so marked, written by the feed, of that document alone; never a
    clinician's note naming the document nor a result that is no paragraph (an ST value: not in the text
    content, not marked). An addendum's paragraph (T06) carries the addendum's mark: its parent's edit never
    drops it. The mark's type says which kind of message stated the copy (an ``edit`` drops what it no longer
    holds, an ``original`` resent drops nothing), so a copy an edit sends again unchanged is written again under
    the edit's mark."""
    words = text.get("valueString")
    codes = {str(c.get("code")) for c in (text.get("code") or {}).get("coding") or () if isinstance(c, dict)}
    if not isinstance(words, str) or not any((code, _flat(words)) in paragraphs for code in codes):
        # no paragraph (an ST value, a number): a paragraph copy stored at its place (same OBX-3, same OBX-1
        # order) loses the mark -- a message stating no identifier keeps the stored one (keep-if-absent), so
        # an edit's ST where a text paragraph stood kept it, and the value was judged a paragraph the edit did
        # not state: deleted (old37's "left"; thirty-eighth round, codedoc38)
        ctx.delete(text, "identifier", (("system", (PARAGRAPH_SYSTEM + ctx.urn_code, ADDENDUM_SYSTEM + ctx.urn_code)),),
                   why="no paragraph of the document's text (OBX-2 not TX/FT)")
        return
    event = ctx.message.msh.trigger_event
    system = (ADDENDUM_SYSTEM if kind == "addendum" else PARAGRAPH_SYSTEM) + ctx.urn_code
    mark = {"type": {"coding": [{"system": TEXT_KIND_SYSTEM, "code": kind}], "text": event},
            "system": system, "value": txa.value(12)}
    listed = [i for i in text.get("identifier") or () if not str(i.get("system") or "").startswith(
        (PARAGRAPH_SYSTEM, ADDENDUM_SYSTEM))]
    text["identifier"] = [*listed, mark]
    # the mark located at TXA-12: this message states this copy -- an edit's copy left unchanged too (no
    # new version), so the judgment asks the message's statement which copies are its text, not their
    # words (review rv37d MED 1; thirty-seventh round, docfix37)
    ctx.located(text, "identifier", txa, 12)
