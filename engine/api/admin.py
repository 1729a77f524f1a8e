"""``/admin``: the operator's view of ingest -- quarantine, replay, fidelity, health, metrics.

Every route needs a bearer token of a **system** client, or a signed-in operator's page session (the
quarantine page ``/ui/quarantine``; ``engine.auth.policy.require_operator`` decides both, by a named action:
``read``, ``replay`` or ``decide``). A system client reads (quarantine, fidelity, health, metrics) with
``MessageHeader`` read (``system/MessageHeader.r``) and replays with ``MessageHeader`` create
(``system/MessageHeader.c``, the scope that posts messages), since a replay imports data exactly as a new
message would; ``system/*.cruds`` covers both. The decision on a held change needs both, and not the client
that sent it (``require_owner_decider``: a feed's post-only token decides nothing). A staff session is let
through by the operator role itself. Quarantined messages hold patient data, so residents and auditors get
403.

What a caller sees of the stored messages: ``GET /admin/quarantine/{id}`` shows a refused message (status
``quarantined``) and one accepted with a change held (``held_claims``: what an operator decides on, ord40);
any other accepted one is 404 as an unknown one (its raw text names every patient of the feed; the CLI on the
server, ``huren quarantine show``, and the replay reach those through their own paths). A staff member bound
to a remit (``Caller.remit``) lists, reads and replays the messages of the institutions in it only
(``engine.auth.policy.audit_remit``/``require_in_remit``, as the reports); another institution's is 404 as if
unknown; so does a hospital's system client bound to its institution (``Caller.institution``, the same rule).
Reading or replaying a message is audited against the Patients the store knows it names (``_patients_named``).

A refused message carrying a confidentiality label (TXA-18, read by the converter's own reader
``adapters.convert.pacs.txa_labels``) that the caller is not shown (``confidentiality.withheld_codes``: an
operator's session, a bound hospital system) is shown with its content masked
(``mappings/quarantine/withheld.yaml``: OBX-5 and NTE-3 replaced by words saying why; segments, every other
field and the ERR stay, enough to fix a site configuration): on /fhir such a caller is refused the R/V records
this message would have written (the review of privprobe27, the lead's decision). The replay runs the stored
bytes; ``?as=later`` is the operator's decision for a message refused because its order against a stored
result cannot be told (ERR-3 206; order35, see ``replay_message``). A message accepted with its change of an
order held (W 204: the order's history names another application for its number) is listed by
``GET /admin/held`` and shown as a refused one is; ``POST /admin/quarantine/{id}/owner`` with a reason is the
operator's decision that its change is the owner's (fortieth round, ord40; see ``decide_owner``).

Responses are plain JSON (these are not FHIR resources); errors are OperationOutcomes.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from adapters.convert.common import record_number_system
from adapters.convert.persons import kept_apart_authority
from adapters.convert.takeover import taken_over_authority
from adapters.hl7v2.processing import parse_ids
from adapters.hl7v2.structure import known_segments
from engine.api import ui_fidelity
from engine.api.decision_body import decision_body, reason_in
from engine.api.formats import accept_of, prefers, require_body_served
from engine.auth import confidentiality
from engine.auth.caller import Caller
from engine.auth.deps import get_caller, get_engine
from engine.auth.policy import (
    allowed,
    audit_remit,
    refusal_count_shown,
    require_in_remit,
    require_operator,
    require_owner_decider,
)
from engine.bounds import int_query
from engine.engine import Engine
from engine.errors import BadRequest, Conflict, FhirError, Forbidden, NotFound, Unauthorized, Unprocessable
from engine.ingest import AlreadyDecided, DecisionNotWritten, NotDecidable, Outcome
from engine.member_refusals import alerting, replayed_by, sending_client
from engine.message_time import OWNER_WHY, Decision, decision
from engine.messages import PROCESSED, QUARANTINED, RECEIVED, now_iso, raw_of, summary
from engine.repository.port import Document
from mappings.sitefiles import check, read_yaml

router = APIRouter(prefix="/admin", tags=["admin"])


def operator(action: str) -> Any:
    def dependency(caller: Caller = Depends(get_caller)) -> Caller:
        require_operator(caller, action)
        return caller

    return dependency


def _note(request: Request, action: str, detail: dict[str, Any], outcome: str = "0",
          patients: list[str] | None = None) -> None:
    from engine.audit.note import note

    note(request, action=action, detail=detail, outcome=outcome, patient_ids=patients or ())


def _stored(engine: Engine, caller: Caller, message_id: str, *, refused_only: bool) -> Document:
    """The stored message the caller may reach, else 404 with the same words as for no message at all, so that
    neither says such a message exists: with ``refused_only`` (the show), an accepted one that holds no change
    (one accepted with a change held, ``held_claims``, is shown as a refused one is: ``/admin/held`` lists it,
    ord40); and one of an institution outside the caller's remit (``require_in_remit``, the reports' rule)."""
    doc = engine.ingestor.messages.get(message_id)
    # (a message accepted with a change held is the operator's to read as a refused one is: ord40)
    if (doc is None or (refused_only and doc.get("status") != QUARANTINED and not doc.get("held_claims"))
            or not allowed(require_in_remit, caller, doc.get("facility"), engine.site, engine.settings.site)):
        raise NotFound(f"no {'refused' if refused_only else 'stored'} message {message_id!r}")
    return doc


def _patients_named(engine: Engine, doc: Document, text: str | None = None) -> list[str]:
    """The Patient ids the store knows that a stored message names, for the audit record of
    reading or replaying it: those its processing made or updated (``resources``), and those the
    patient index finds by the identifiers of its PID and MRG segments (``IdentityService.patients_named``:
    a valid national resident ID, or a record number of the sending institution). A refused message
    made no resources, but its raw text names the patient all the same: the resident's "who read my
    record" must show the read. A message whose text cannot be parsed names only what the store recorded."""
    found = [r.split("/", 1)[1] for r in doc.get("resources") or () if r.startswith("Patient/")]
    from adapters.hl7v2.errors import HL7Error
    from adapters.hl7v2.parser import parse

    try:
        message = parse(text if text is not None else _text(doc, engine))
    except (HL7Error, ValueError):
        return list(dict.fromkeys(found))
    inst = engine.site.institution(str(doc.get("facility") or ""))
    site = engine.site
    found += engine.identity.patients_named(
        message, mrn_system=inst.mrn_system if inst is not None else None,
        national_system=(site.tables.get("identifiers") or {}).get("national_id_system"),
        systems=(lambda rep: record_number_system(rep, inst, site)) if inst is not None else None)
    return list(dict.fromkeys(found))


@router.get("/quarantine", summary="Messages that were not converted, newest first")
def list_quarantine(
    request: Request,
    facility: str | None = Query(None, description="sending facility (MSH-4.1)"),
    since: str | None = Query(None, description="received at or after this instant (ISO 8601 with its offset)"),
    before: str | None = Query(None, description="received before this instant (ISO 8601 with its offset)"),
    processing_id: str | None = Query(None, description="the messages of these MSH-11 ids instead (T,D), any "
                                      "status: T/D stored as clinical data before MSH-11 was judged"),
    count: int = int_query(50, alias="_count", ge=1, le=500),
    offset: int = int_query(0, alias="_offset"),
    caller: Caller = Depends(operator("read")),
    engine: Engine = Depends(get_engine),
) -> dict[str, Any]:
    """A staff member bound to a remit lists the messages of its institutions only (``facility``
    outside it: none). ``processing_id``: the messages whose MSH-11.1 is one of these, of any status
    (``engine.messages`` ``processing_id``; hl7fix29), each with its ``status``."""
    messages = engine.ingestor.messages
    span: dict[str, Any] = {"since": _instant("since", since), "before": _instant("before", before),
                            "facilities": audit_remit(caller, engine.site, engine.settings.site)}
    if processing_id:
        try:
            span["processing_ids"] = parse_ids(processing_id)
        except ValueError as exc:
            raise BadRequest(f"processing_id: {exc}") from None
    # each as ``show`` gives it: a reason quoting a value the caller's mask takes out is scrubbed (one
    # scrubber, ``_shown``; twenty-eighth round, privleft28). A caller no label is withheld from: as stored.
    items = [_shown(engine, caller, d)[0] for d in messages.quarantined(facility=facility, limit=count,
                                                                          skip=offset, **span)]
    _note(request, "other", {"admin": "quarantine-list", "count": str(len(items))})
    status = None if "processing_ids" in span else QUARANTINED
    return {"total": messages.count(status, facility, **span), "offset": offset, "count": len(items),
            "items": items}


def _instant(name: str, value: str | None) -> str | None:
    """An instant with its offset (``2025-03-21T00:00:00+08:00``) as the store writes ``received_at``
    (UTC, microseconds, ``Z``); one without an offset or a date alone says no zone: 400."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise BadRequest(f"{name} must be an instant with its offset, e.g. 2025-03-21T00:00:00+08:00 (got {value!r})")
    try:  # (0001-01-01T00:00:00+08:00 parses but lies before the first instant UTC can hold)
        utc = at.astimezone(UTC)
    except OverflowError:
        raise BadRequest(f"{name} lies outside the instants this server can compare (got {value!r})") from None
    return utc.isoformat(timespec="microseconds")[:-6] + "Z"


@router.get("/quarantine/{message_id}", summary="One refused message with its reason and raw text")
def show_message(request: Request, message_id: str, caller: Caller = Depends(operator("read")),
                 engine: Engine = Depends(get_engine)) -> dict[str, Any]:
    doc = _stored(engine, caller, message_id, refused_only=True)
    raw = raw_of(doc)
    from adapters.hl7v2.header import stored_text

    text, codec = stored_text(raw, str(doc.get("peer") or ""), engine.site)  # as the pipeline read it (hl7fix28)
    _note(request, "other", {"admin": "quarantine-show", "message": message_id},
          patients=_patients_named(engine, doc, text))
    shown, text, withheld = _shown(engine, caller, doc, text)
    if doc.get("status") == PROCESSED and shown.get("held_claims"):
        shown = shown | {"held_claims": _barred_claims(engine, doc, shown["held_claims"])}
    # the raw bytes hold what the mask takes out: given only with the whole text
    return shown | {"text": text.replace("\r", "\n"), "text_codec": codec, "withheld": withheld,
                    "raw_base64": None if withheld else base64.b64encode(raw).decode("ascii")}


def _barred_claims(engine: Engine, doc: Document, claims: list[Any]) -> list[Any]:
    """A held message's claims as the operator's view shows them: a held renumbering whose decision is barred now
    (``Ingestor.owner_barred``: the record merged into another, or the number the message states held by another
    record) carries ``unavailable`` -- ``merged`` and the other record by its number at the sending institution
    (``mrn``; another member's record by that member's name, ``member``, regfix41c; else its reference), never the
    other person's name or ID number -- so the page says
    so, in Chinese, before the operator is asked to confirm (forty-first round, regfix41b; the decision itself is
    refused 409 all the same)."""
    barred = engine.ingestor.owner_barred(doc)
    if not barred:
        return claims
    return [{**c, "unavailable": {"merged": why.merged, "mrn": why.mrn,
                                  **({"member": why.member} if why.member else {}),
                                  **({} if why.mrn or why.member else {"record": why.other})}}
            if isinstance(c, dict) and (why := barred.get(str(c.get("resource")))) is not None
            and c.get("kind") in ("id-number", "merge") else c for c in claims]


def _shown(engine: Engine, caller: Caller, doc: Document, text: str | None = None,
           shown: dict[str, Any] | None = None) -> tuple[dict[str, Any], str, list[str]]:
    """What the caller is shown of a stored message: its summary (or ``shown``, a replay's answer),
    its text and the fields masked -- for a message whose TXA-18 label is withheld from the caller,
    the text masked and every quoted value of the masked fields scrubbed from the rest. The text
    is the one given (or the stored one, decoded when a label may be withheld; else "")."""
    shown = summary(doc) if shown is None else shown
    if not confidentiality.withheld_codes(caller):
        return shown, text or "", []  # (a list's every item: not decoded; its text is not shown)
    if text is None:
        text = _text(doc, engine)
    if not _label_withheld(engine, caller, text):
        return shown, text, []
    fields, placeholder = _withheld_words()
    read = _read_values(text, fields)  # before masking: the values as the parser read them
    whole = read is not None and not _broken(text, fields)
    text, values = _masked(text, fields, placeholder, whole=whole)
    shown = _scrubbed(shown, [*values, *(read or ())], placeholder)
    if not whole:  # fail closed: what the parser quotes of a line it could not read is masked text
        shown = _unquoted(shown, placeholder)
    return shown, text, [f"{seg}-{n}" for seg, n in fields]


def _read_values(text: str, fields: tuple[tuple[str, int], ...]) -> list[str] | None:
    """The masked fields' values as the parser reads them, HL7 escapes resolved (``HIV\\T\\  POS``
    is ``HIV&  POS``): a reason quotes the value read, not the text sent (twenty-eighth round,
    privfix28). Each repetition whole (its delimiters kept) and each component, subcomponent.
    A message that does not parse: None (masked whole-line, ``_masked``; its reasons unquoted, ``_unquoted``)."""
    from adapters.hl7v2.errors import HL7Error
    from adapters.hl7v2.parser import parse

    try:
        message = parse(text)
    except (HL7Error, ValueError):
        return None
    out: list[str] = []
    for seg, n in fields:
        for segment in message.all(seg):
            for rep in segment.reps(n):
                out.append(rep.text())
                for c in range(1, len(rep) + 1):
                    out.extend(rep.subs(c))
    return [v for v in out if v]


def _text(doc: Document, engine: Engine) -> str:
    """A stored message's text, read as the pipeline read it (``header.stored_text``: the sender's set,
    MSH-18, the HTTP charset kept in its peer; hl7fix28)."""
    from adapters.hl7v2.header import stored_text

    return stored_text(raw_of(doc), str(doc.get("peer") or ""), engine.site)[0]


WITHHELD_FILE = Path(__file__).resolve().parent.parent.parent / "mappings" / "quarantine" / "withheld.yaml"
_WITHHELD_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["fields", "placeholder"],
    "properties": {"fields": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^[A-Z][A-Z0-9]{2}-[1-9][0-9]*$"}},
                   "placeholder": {"type": "string", "minLength": 1, "pattern": "^[^|^~\\\\&\r\n]+$"}}}


@functools.cache
def _withheld_words() -> tuple[tuple[tuple[str, int], ...], str]:
    """The fields a masked message loses and the words put there (``mappings/quarantine/withheld.yaml``)."""
    data = check(read_yaml(WITHHELD_FILE), _WITHHELD_SCHEMA)
    fields = tuple((f[:3], int(f[4:])) for f in data["fields"])
    return fields, str(data["placeholder"])


_LINES = re.compile(r"(\r\n|\r|\n)")


def _label_withheld(engine: Engine, caller: Caller, text: str) -> bool:
    """Whether the message's TXA-18 states a label withheld from the caller, read as the converter
    reads it (``txa_labels``); a message that does not parse but holds a TXA: yes (fail closed)."""
    codes = confidentiality.withheld_codes(caller)
    if not codes:
        return False
    from adapters.convert.pacs import txa_labels
    from adapters.hl7v2.errors import HL7Error
    from adapters.hl7v2.parser import parse

    try:
        message = parse(text)
    except (HL7Error, ValueError):
        return any(line.startswith("TXA") for line in _LINES.split(text))
    return not codes.isdisjoint(txa_labels(message, engine.site))


_HEADERS = ("MSH", "FHS", "BHS")


def _segment_definitions(version: str) -> Mapping[str, Any]:
    """The segments of HL7 ``version`` (MSH-12 as sent) as hl7apy defines them, read from the version
    the table owner picks for it (``adapters.hl7v2.tables``: the version itself or the latest before
    it; MSH-12 unreadable, v2.5.1; before v2.3.1, v2.3.1): id -> its fields, each ``(name, type,
    (min, max), kind)``."""
    from adapters.hl7v2 import tables

    return _segments_of(tables._nearest(version)[0])


@functools.cache
def _segments_of(version: tuple[int, ...]) -> Mapping[str, Any]:
    from adapters.hl7v2 import tables

    return tables._module(version, "segments").SEGMENTS


def _evidence(segment: tuple[Any, ...] | None, last: int) -> tuple[bool, int]:
    """What a masked segment's line that ends at its last masked field ``last`` says of a cut, by the
    segment's definition in the message's version: whether a field after it is required (OBX-11 since
    v2.2: an OBX ending at OBX-5 was cut), and how many fields it can still hold (NTE-4 in v2.5.1:
    the most a line continuing its NTE-3 can carry). A segment hl7apy does not define: cut."""
    if not segment or segment[0] != "sequence":
        return True, 0
    after = segment[1][last:]
    return any(field[2][0] >= 1 for field in after), len(after)


def _read_lines(text: str, fields: tuple[tuple[str, int], ...]) -> Iterator[tuple[str, str, str]]:
    """Each piece of ``text`` (its lines and line ends, in order) with what it reads as and the field
    separator in force: ``end`` (a line end, or nothing), ``header`` (the message's first line, when it
    is an MSH -- or an FHS/BHS -- which sets the separator for every line), ``stray`` (a line that is no
    segment of the message's version: a raw line break inside a field), ``continued`` (the rest of a
    masked field a raw line break cut), ``masked`` (a segment of ``fields``) or ``segment``.

    Only the first line is a header: a later line beginning MSH/FHS/BHS is read as any other, and
    the separator is the first line's MSH-1, never a later line's 4th character (``BHS感染，HIV…``
    after a break was shown as a header, the separator then ``感``; rvtidy29). A batch is stored
    message by message, its envelope dropped (``adapters.listeners.batch``).

    ``stray``: a line whose id the parser refuses (``adapters.hl7v2.parser._valid_name``), or one it
    reads as a segment whose id is neither a segment of HL7 v2 (``adapters.hl7v2.structure.known_segments``, the ingest's own test: a sender
    that pre-adopts a later version's segment, PRT in a v2.5.1 message, sends it whole) nor a Z-segment:
    ``HIV||||||F``, ``SUM||…``, text after a break wherever it stands.

    ``continued``: decided by evidence that the masked segment before was cut (twenty-ninth round;
    tidy29 took every line after a masked segment ending at its masked field, and so masked the
    second PID, the Z-segment, the TXA after an order's note of messages sent whole -- rvtidy29):

    - a masked segment whose line ends before its last masked field, or at it when a later field is
      required in the message's version (OBX-11, required since v2.2: ``OBX|…||出院诊断：`` then
      ``PID||||||F``, PID the pelvic inflammatory disease): every line up to the next masked segment;
    - one that ends at its masked field with none required after it (NTE-3, most senders' last field
      of an NTE): the next line only if it could be that field's rest -- a standard segment id with
      no more fields than the segment has left (NTE-4: ``PID`` or ``PID|RE`` alone), or a Z id with no
      field -- and then every line up to the next masked segment. A second PID, a Z-segment with its
      fields, a TXA: segments, as sent."""
    last: dict[str, int] = {}
    for seg, n in fields:
        last[seg] = max(n, last.get(seg, 0))
    from adapters.hl7v2.parser import _valid_name

    sep, known = "|", None
    cut, room = "", 0  # "cut": a masked field was cut; "maybe": the last one may have been (room: its fields left)
    for part in _LINES.split(text):
        if not part or _LINES.fullmatch(part):
            yield part, "end", sep
            continue
        if known is None and part.strip():  # the first line
            head = part.removeprefix("\ufeff")
            header, version = head[:3] in _HEADERS and len(head) > 3, ""
            if header:
                sep = head[3]
                msh = head.split(sep)
                if head[:3] == "MSH" and len(msh) > 11:  # MSH-12's first component (MSH-2 names its separator)
                    version = msh[11].split(msh[1][:1])[0] if msh[1][:1] else msh[11]
            known = _segment_definitions(version)
            if header:
                yield part, "header", sep
                continue
        name = part.split(sep, 1)[0]
        if not _valid_name(name) or not (name[0] == "Z" or name in known_segments()):
            kind = "stray"
        elif name in last:
            kind, ends = "masked", part.count(sep)
            required, left = _evidence((known or {}).get(name), last[name])
            cut = "cut" if ends < last[name] or (ends == last[name] and required) else \
                "maybe" if ends == last[name] else ""
            room = left
        elif cut == "cut" or (cut == "maybe" and part.count(sep) <= room
                              and (name[0] != "Z" or sep not in part)):
            kind, cut = "continued", "cut"
        else:
            kind, cut = "segment", ""
        yield part, kind, sep


def _broken(text: str, fields: tuple[tuple[str, int], ...]) -> bool:
    """Whether a line of ``text`` is no segment or the continuation of a cut masked segment
    (``_read_lines``): the message is not read whole, its masking fails closed."""
    return any(kind in ("stray", "continued") for _, kind, _ in _read_lines(text, fields))


def _masked(text: str, fields: tuple[tuple[str, int], ...], placeholder: str,
            whole: bool = True) -> tuple[str, list[str]]:
    """``text`` with the value of each of ``fields`` replaced by ``placeholder`` (the separators as
    written: each message's own field separator, its segment ends), and the values taken out.

    A message the parser does not read whole (``whole`` false: a raw line break inside an OBX-5,
    the commonest way a text report breaks ER7) fails closed: a masked segment loses everything from
    its first masked field to the end of its line, and every line that reads as no segment -- the
    rest of the broken text -- is replaced by ``placeholder`` (twenty-eighth round, labelfix28;
    rvprivfix28 finding 6: the rest of a V text was shown), and so is every line that continues a
    cut masked segment though it reads as a segment (``_read_lines``; twenty-ninth round, tidy29)."""
    out: list[str] = []
    taken: list[str] = []
    for part, kind, sep in _read_lines(text, fields):
        if not whole and kind in ("stray", "continued"):
            taken.append(part)
            part = placeholder
        elif kind == "masked":
            name = part[:3]
            pieces = part.split(sep)
            first = min((n for seg, n in fields if name == seg and len(pieces) > n), default=None)
            if not whole and first is not None:
                rest = sep.join(pieces[first:])
                if rest.strip(sep) not in ("", '""'):
                    taken.append(rest)
                pieces = [*pieces[:first], placeholder]
            else:
                for seg, n in fields:
                    if name == seg and len(pieces) > n and pieces[n] not in ("", '""'):
                        taken.append(pieces[n])
                        pieces[n] = placeholder
            part = sep.join(pieces)
        out.append(part)
    return "".join(out), taken


_QUOTED = re.compile(r"'[^'\r\n]*'|\"[^\"\r\n]*\"")


def _unquoted(shown: dict[str, Any], placeholder: str) -> dict[str, Any]:
    """The summary of a message not read whole with every quoted value of its reasons (``'...'``,
    ``"..."``: how a reason quotes what it read) replaced by ``placeholder``: the parser quotes the
    line it could not read, which is the masked text (fail closed; the words of the reason stay)."""
    return _each_text(shown, lambda text: _QUOTED.sub(lambda m: m.group(0)[0] + placeholder + m.group(0)[0], text))


def _scrubbed(shown: dict[str, Any], values: list[str], placeholder: str) -> dict[str, Any]:
    """The stored summary without the taken values where a reason quotes one: the words stay, the
    quoted value is replaced. A reason quotes a value as Python writes a string (an ERR-8 naming
    an OBX-5 it could not read: ``'阳性' is not a number``) or as JSON does (the repository's
    refusal of what a coded OBX-5 became: ``"HIV  POS" is not a valid code``, which this missed
    until the twenty-eighth round, privleft28): both forms, whole field and each component."""
    parts = {p.strip() for v in values for p in [v, *re.split(r"[\^~&]", v)]}
    pieces = sorted({q for p in parts if p for q in (repr(p), json.dumps(p, ensure_ascii=False), json.dumps(p))},
                    key=len, reverse=True)
    if not pieces:
        return shown

    def scrub(text: str) -> str:
        for p in pieces:
            text = text.replace(p, placeholder)
        return text

    return _each_text(shown, scrub)


def _each_text(shown: dict[str, Any], transform: Callable[[str], str]) -> dict[str, Any]:
    """The summary with ``transform`` applied to every string in it, at any depth (its reasons, its
    ERR list), its id kept: the one walk of both scrubbers (``_scrubbed``, ``_unquoted``)."""

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return transform(node)
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        return node

    return {k: (v if k in ("id", "_id") else walk(v)) for k, v in shown.items()}


@router.post("/quarantine/{message_id}/replay", summary="Run a stored message through the pipeline again")
async def replay_message(
    request: Request, message_id: str,
    reload_site: bool = Query(False, description="re-read the site files (institutions, code maps) first"),
    as_: str | None = Query(None, alias="as", pattern="^later$",
                            description="later: the operator decides the message is later than the stored "
                                        "results its order could not be told against (ERR-3 206 only)"),
    caller: Caller = Depends(operator("replay")), engine: Engine = Depends(get_engine),
) -> dict[str, Any]:
    """The body, when present, is a corrected copy of the message (same MSH-4 and MSH-10).

    ``reload_site=true`` picks up a code map or institution just added to the site folder, so
    the replay sees it without restarting; a broken site file leaves the running one in force (422).
    Any stored message may be replayed (a resend of one accepted before changes nothing), within
    the caller's remit.

    ``as=later`` (thirty-fifth round, order35): the operator's decision for a message refused because
    which of it and a stored result is later cannot be told (ERR-3 206: another application's
    withdrawal or correction, a FHIR client's version, an MSH-7 span overlapping) -- a plain replay is
    refused again, nothing new telling the order. The stored bytes are replayed with every comparison
    not told answered "later" for this one message (one the sender's own MSH-7 shows older is still
    held); its Provenance names the caller as the agent who decided, the answer notes it (severity
    I), the replay's entry and the audit record say so -- and whether the decision was used
    (``decided.used``: false when it answered nothing, the sender's own older MSH-7 holding the message,
    or the replay was refused again; ordfix35). A message whose stored versions the refusal was told
    against have changed since (another message wrote the result after the refusal), or whose refusal
    recorded none (refused before ordfix35), is 409: the decision would be about a record the operator
    was not shown; a plain replay refuses it again against what is stored now. Any other message -- one whose own MSH-7 is unusable (102)
    among them: its corrected copy is the replay that settles it -- is 409; a body with it is 400.
    """
    stored = _stored(engine, caller, message_id, refused_only=False)
    who = _replayer(engine, caller, stored)
    decided = None
    if as_ == "later":
        if (await request.body()).strip():
            raise BadRequest("as=later replays the message as it was refused: send no corrected copy with it")
        decided = _decision(caller)
    if reload_site:
        from mappings.sitefiles import SiteError

        try:
            await asyncio.to_thread(engine.reload_site)
        except SiteError as exc:
            raise Unprocessable(f"site not reloaded, the running one stays in force: {exc}") from exc
    body = await request.body()
    corrected = body if body.strip() else None
    try:
        outcome = await asyncio.to_thread(engine.ingestor.replay, message_id, actor=caller.subject,
                                          raw=corrected, decided=decided, who=who)
    except NotDecidable as exc:
        raise Conflict(f"not replayed as later: {exc}") from exc
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    if outcome is None:
        raise NotFound(f"no stored message {message_id!r}")
    replayed = engine.ingestor.messages.get(message_id)
    # whether the decision answered anything (the replay's entry: ``MessageStore.decision_used``; rvorder35 LOW 5)
    used = bool(((replayed or {}).get("decision") or {}).get("used")) if decided else False
    _note(request, "replay", {"message": message_id, "ack": outcome.code,
                              **({"as": "later", "decided-by": decided.by, "used": "true" if used else "false"}
                                 if decided else {})},
          outcome="0" if outcome.code == "AA" else "4",
          patients=_patients_named(engine, replayed) if replayed is not None else None)
    answer = {"id": message_id, **_outcome_shown(outcome),
              **({"as": "later", "decided": {"by": decided.by, "at": decided.at, "used": used}} if decided else {})}
    if replayed is None or not outcome.errors:
        return answer
    return _shown(engine, caller, replayed, shown=answer)[0]  # an ERR quoting a masked value: scrubbed


def _outcome_shown(outcome: Outcome) -> dict[str, Any]:
    """What a replay's answer says of its outcome (the replay and the owner's decision alike): the new ACK code and
    status, each error with its place, the resources written, the ACK itself."""
    return {"ack_code": outcome.code, "status": outcome.status,
            "errors": [{"location": e.location(), "code": e.code, "severity": e.severity, "message": e.message}
                       for e in outcome.errors],
            "resources": outcome.resources, "ack": outcome.ack.decode(outcome.codec, "replace")}


def _replayer(engine: Engine, caller: Caller, stored: Document) -> dict[str, str]:
    """Who replays the ``stored`` message, as its entry keeps it (``member_refusals.replayed_by``): a person as a
    person; bound to the sending institution alone (a remit of exactly it: its bound client, its own staff), its
    corrected copies count as the sender's (fidfix37) -- a remit of more (a community's operator, ``funing``) is
    not that institution asking, and counts under ``replay:<by>`` as the site's operator does (fid37; rv37g MED 2,
    gfix37). The replay and the owner's decision alike."""
    facility = stored.get("facility")
    return replayed_by(caller.subject, kind=caller.kind, role=caller.role, display=caller.display,
                       client=caller.client_id,
                       bound_to=facility if facility and _remit(engine, caller) == frozenset({facility}) else None)


def _decision(caller: Caller, kind: str = "later", reason: str = "") -> Decision:
    """The caller's decision that a message is later (``engine.message_time.decision``), or (``kind`` owner) that
    its held change is the number's owner's, named as the audit names them: a signed-in operator by their staff
    sign-in and name, a system client by its id."""
    from engine.audit.events import AGENT_SYSTEMS, STAFF_SYSTEM

    return decision(by=caller.subject, system=STAFF_SYSTEM if caller.role else AGENT_SYSTEMS["system"],
                    display=caller.display or "", at=now_iso(), kind=kind, reason=reason)


@router.get("/held", summary="Messages accepted with a change held (ERR-3 204 an order's, 205 an ID number's), newest first")
def list_held(
    request: Request,
    facility: str | None = Query(None, description="sending facility (MSH-4.1)"),
    since: str | None = Query(None, description="received at or after this instant (ISO 8601 with its offset)"),
    before: str | None = Query(None, description="received before this instant (ISO 8601 with its offset)"),
    count: int = int_query(50, alias="_count", ge=1, le=500),
    offset: int = int_query(0, alias="_offset"),
    caller: Caller = Depends(operator("read")),
    engine: Engine = Depends(get_engine),
) -> dict[str, Any]:
    """The messages accepted (AA) whose change of an order was held because the order's history names another
    application for the number it came under (W 204 at OBR-4: ``merge_rules.Owned``), each with its held claims
    (``held_claims``: the number, the order, the version the hold left) -- what an operator decides on
    (``POST /admin/quarantine/{id}/owner``). A remit-bound caller lists its institutions' only, as the
    quarantine (fortieth round, ord40). Listed the same way: a registration whose replacement or null of a record's
    resident ID number was held because another application registered that number (W 205 at PID-3; its claim
    ``kind`` ``id-number``, ``claim`` ``NNCHN``, the record and its version -- never the number:
    ``adapters.convert.persons._may_renumber``; forty-first round, reg41)."""
    total, docs = engine.ingestor.messages.held(facility=facility, limit=count, skip=offset,
                                                since=_instant("since", since), before=_instant("before", before),
                                                facilities=_remit(engine, caller))
    items = [_shown(engine, caller, d)[0] for d in docs]
    _note(request, "other", {"admin": "held-list", "count": str(len(items))})
    return {"total": total, "offset": offset, "count": len(items), "items": items}


_OWNER_SHAPE = f'{{"reason": "{OWNER_WHY}"}}'


@router.post("/quarantine/{message_id}/owner",
             summary="Take a held change as the number's owner's -- an order number's, a resident ID number's (the operator's decision)")
async def decide_owner(request: Request, message_id: str, caller: Caller = Depends(operator("decide")),
                       engine: Engine = Depends(get_engine)) -> dict[str, Any]:
    """Body ``{"reason": "..."}`` (required, words: why the operator knows it is the owner's -- "the LIS moved to
    MSH-3 LIS^<OID>^ISO on 12-01", "the platform relays the RIS"). The operator's decision on a message accepted
    with its change held (AA, W 204: the order's history names another application as the one that stored the
    number its change came under; an integration engine's error queue asks a person the same -- Rhapsody's,
    Mirth's): its stored bytes are run again with that hold answered "the owner's" for this one message
    (``engine.message_time.Decision`` kind owner), and the order takes its change. Who, when and why are kept:
    the Provenance of what it wrote names the operator (agent ``verifier``), the message's replay entry and
    ``decision`` keep who, when and the reason, the signed audit log records the replay (``as`` owner,
    ``decided-by``, ``reason``) and this request.

    Applied once, across processes too (a second worker, the console: the message is reopened by a conditional
    write of the store, ``MessageStore.reopen(expect=)``; ordfix40): asked again after it was applied, the answer is
    the decision applied (``already: true``), nothing written again; asked while another's decision is being
    applied, 409 naming who. 409 as well when nothing of the message is held that a decision answers (another
    order's number held, a refused message, an accepted one held nothing) or when the order was written since the
    hold (the decision would be about a version the operator was not shown: a plain replay holds it again against
    what is stored now); and, before anything is reopened, when a held renumbering would give the record a resident
    ID number another record holds, or renumber a record merged into another (``Ingestor.owner_barred``: the other
    record named by its MRN at the sender, never its person's name or number; regfix41b). 503 (Retry-After) when the store was busy and the decision could not be written: nothing
    of it applied, the message held as before and decidable again at once (``Ingestor._decision_failed``; 409 when
    the failure left it otherwise, the words saying what settles it; dfix40). 400 naming ``reason`` without a reason,
    with one that is not a JSON string, or one ``message_time.reason_of`` refuses (over 500 characters, a control
    character) -- the body read by ``decision_body``, as the auditor's review is (rv41i). A resident, a clinician, an auditor, a feed's post-only client, the client that sent the
    message: 403 (``policy.require_owner_decider``). The reason is kept as typed on the message and in the audit
    log; the Provenance says the decision in fixed words (the patient reads it: ordfix40)."""
    require_body_served(request)  # (a body labelled another character set: 415, as every route reading one)
    reason = reason_in(decision_body(await request.body(), shape=_OWNER_SHAPE), why=OWNER_WHY)
    stored = _stored(engine, caller, message_id, refused_only=False)
    require_owner_decider(caller, str(stored.get("peer") or ""))
    who = _replayer(engine, caller, stored)
    decided = _decision(caller, "owner", reason)
    patients = _patients_named(engine, stored)
    try:
        outcome = await asyncio.to_thread(engine.ingestor.replay, message_id, actor=caller.subject,
                                          decided=decided, who=who)
    except AlreadyDecided as exc:
        _note(request, "replay", {"message": message_id, "as": "owner", "already": "true",
                                  "decided-by": str(exc.decision.get("by") or "")}, patients=patients)
        return {"id": message_id, "already": True, "status": stored.get("status"), "ack_code": stored.get("ack_code"),
                "as": "owner", "decided": {k: exc.decision.get(k) for k in ("by", "at", "reason", "used")}}
    except DecisionNotWritten as exc:  # (the store failed under it: nothing applied -- never a 200 with AE: dfix40)
        _note(request, "replay", {"message": message_id, "ack": "AE", "as": "owner", "decided-by": decided.by,
                                  "reason": reason, "used": "false"}, outcome="4", patients=patients)
        if exc.again:
            raise FhirError(f"not taken as the owner's: {exc}", status=503, code="transient",
                            headers={"Retry-After": "5"}) from exc
        raise Conflict(f"not taken as the owner's: {exc}") from exc
    except NotDecidable as exc:
        raise Conflict(f"not taken as the owner's: {exc}") from exc
    if outcome is None:
        raise NotFound(f"no stored message {message_id!r}")
    replayed = engine.ingestor.messages.get(message_id) or {}
    used = bool((replayed.get("decision") or {}).get("used"))
    _note(request, "replay", {"message": message_id, "ack": outcome.code, "as": "owner", "decided-by": decided.by,
                              "reason": reason, "used": "true" if used else "false"},
          outcome="0" if outcome.code == "AA" else "4", patients=_patients_named(engine, replayed) or patients)
    answer = {"id": message_id, "already": False, **_outcome_shown(outcome), "as": "owner",
              "decided": {"by": decided.by, "at": decided.at, "reason": reason, "used": used},
              "held_claims": replayed.get("held_claims") or []}
    return _shown(engine, caller, replayed, shown=answer)[0] if outcome.errors else answer


def _remit(engine: Engine, caller: Caller) -> frozenset[str] | None:
    """The institutions whose messages the caller's figures count (``policy.audit_remit``, as the
    quarantine list and the reports); None: every institution."""
    return audit_remit(caller, engine.site, engine.settings.site)


# the warnings the fidelity view counts per key (``Tally.count``): PID-3 numbers keyed apart under an
# authority beside the institution's own record of the value (an undeclared mrn_authorities name shows
# here on day one; identity32), a lab's placeholder visit an admission took over, per authority of the
# lab record's number (visfix33), and a member's record of another member's number that the number's
# owner registered for another person, per owner (identity34); and the refusals of another member's messages naming
# the institution's own record numbers for other persons, per sending institution/application (priv36: a sender
# probing them shows here; not warnings -- the messages were refused -- and flagged when the sending institution's
# count, kept beside them per institution and per authenticated client, is past HUREN_MEMBER_REFUSAL_ALERT: ``_refusals``)
_TALLIES = ("kept_apart", "filed_as_own", "taken_over", "member_contradicted", "member_refused")
# the rows written before a warning stated its count (``Tally``): read back from their texts
_LEGACY = (("kept_apart", kept_apart_authority), ("taken_over", taken_over_authority))


# what the operator can do about each count, Chinese first (the staff read it; the ERR texts the senders
# read stay English): a member institution's code cannot be declared in mrn_authorities (site load refuses
# it), so its kept-apart numbers get the advice that can be followed (identity34)
_ADVICE = {
    "kept_apart": "该分配机构的号码与本机构同号病历分开保存。若该分配机构名称就是本机构自己的病案号，请在 institutions.yaml "
                  "的 mrn_authorities 中声明。(Numbers of this authority are kept apart from the institution's own "
                  "record of the same number; if the authority is the institution's own numbering, declare it in "
                  "institutions.yaml mrn_authorities.)",
    "kept_apart_member": "该号码是另一成员机构的病案号，按该机构的号码保存（不能在 mrn_authorities 中声明另一成员机构）。若患者确为"
                         "该机构的患者，无需处理；若是本机构自己的病案号，请发送系统将 PID-3.4 留空或填写本机构。(Another member "
                         "institution's record number, kept as that institution's; it cannot be declared in "
                         "mrn_authorities. Nothing to do if the patient is that institution's; else the sending system "
                         "leaves PID-3.4 empty or names this institution.)",
    "filed_as_own": "该分配机构（未在 mrn_authorities 中声明）的号码已归入本机构同号病历：该病历的姓名、性别、出生日期均一致（都有身份证号时也一致）。"
                    "若该分配机构名称就是本机构自己的病案号，请在 institutions.yaml 的 mrn_authorities 中声明。(Numbers of this "
                    "undeclared authority were filed under the institution's own record of the same number, whose name, "
                    "sex and birth date agree; if the authority is the institution's own numbering, declare it in "
                    "institutions.yaml mrn_authorities.)",
    "taken_over": "住院登记接管了检验系统占位的就诊；若两份病历是同一人，请在前台关联（Patient/$link）。(An admission took over "
                  "a lab's placeholder visit; if the two records are one person, link them at the desk.)",
    "member_contradicted": "号码所属机构已将该号码登记为另一人：本机构引用该号码的病历需核对更正。(The number's owner registered "
                           "another person under it: this institution's record naming the number is to be checked and "
                           "corrected.)",
    "member_refused": "该发送方（机构/应用）的消息以本机构病案号指称另一人而被拒收。计数持续增长时请与该机构核实是否在探测本机构的病案号。"
                      "(This sender's (institution/application) messages were refused for naming this institution's "
                      "record numbers for other persons; if the count keeps growing, check with that institution "
                      "whether its system is probing them.)",
}


# told to an operator bound to a remit when a client's count on their numbers is past the threshold: which client is
# the sending institution's infrastructure (``policy.refusal_count_shown``), shown to the site's operators
_CLIENT_ALERT = ("一个发送客户端以本机构病案号指称另一人而被拒收的次数已达告警阈值。客户端（系统客户端、证书、地址）属于发送机构，"
                 "由全站运维人员查看并与其核实。(A sending client's refusals for naming this institution's record numbers "
                 "for other persons reached the alert threshold. Which client it is -- a system client, a certificate, an "
                 "address -- is the sending institution's; the site's operators see it and check "
                 "with them.)")


def _advice(count: str, key: str, members: Any) -> str:
    """The operator's advice for a count and its key (``_ADVICE``): a kept-apart authority that is a
    member institution's code gets the member's."""
    return _ADVICE["kept_apart_member" if count == "kept_apart" and key in members else count]


def _tally_of(doc: dict[str, Any]) -> tuple[str, str] | None:
    """(count, key) a conversion-warning row is counted under: its stored fields (``count_as``,
    ``count_key``: the warning's ``Tally``, identity34), else -- a row written before them -- the
    authority its text names (the texts those warnings had then)."""
    if doc.get("count_as") in _TALLIES:
        return str(doc["count_as"]), str(doc.get("count_key") or "")
    text = str(doc.get("message") or "")
    for count, read in _LEGACY:
        if (key := read(text)) is not None:
            return count, key
    return None


async def _fidelity_reader(request: Request) -> Caller | Response:
    """Who reads the report, decided in one place for a program and a person: ``get_caller`` (a bearer
    token, or the page session's cookie -- the caller left on the request, so the audit names who read
    it) and the operator's check. A person's browser (``ui_fidelity.wants_page``) is told a refusal as a
    page: sent to sign in, or told it is not theirs as the refused-messages page does. The page's read
    had been let in by a check of its own that left the caller unset: audited as an "unauthenticated
    caller" (review rv38g)."""
    try:
        caller = await get_caller(request)
        require_operator(caller, "read")
    except (Unauthorized, Forbidden) as exc:
        if ui_fidelity.wants_page(request):
            return ui_fidelity.refusal(request, exc)
        exc.headers.update(ui_fidelity.NEGOTIATED)  # (a refusal varies by ``Accept`` too: rv38k LOW)
        raise
    return caller


@router.get("/fidelity", summary="Unmapped codes and segments, counted per institution", response_model=None)
def fidelity(request: Request, response: Response, institution: str | None = None,
             caller: Caller | Response = Depends(_fidelity_reader),
             engine: Engine = Depends(get_engine)) -> dict[str, Any] | Response:
    """A staff member bound to a remit is counted the institutions in it only (``institution``
    outside it: none), as on the quarantine list: another hospital's unmapped codes, their counts
    and example messages are that hospital's (twenty-seventh round, privprobe27). A person's browser
    is answered the same report as a page in Chinese (``ui_fidelity``; ui38), not its JSON; both
    forms say they vary by ``Accept`` and are kept by no cache (ufix38)."""
    if isinstance(caller, Response):
        return caller
    remit = _remit(engine, caller)
    report: dict[str, Any] = {}

    def of(code: str) -> dict[str, Any]:
        return report.setdefault(code, {"unmapped": 0, "warnings": 0, "segments": {}, "codes": {},
                                        **{count: {} for count in _TALLIES}, "items": []})

    for doc in engine.ingestor.messages.fidelity_report(institution):
        if remit is not None and doc.get("institution") not in remit:
            continue
        inst = of(doc["institution"])
        kind = doc["kind"]
        tally = _tally_of(doc) if kind == "warning" else None
        if tally is None or tally[0] != "member_refused":  # (refusals, not warnings)
            inst["warnings" if kind == "warning" else "unmapped"] += doc["count"]
        if tally is not None:
            count, key = tally
            inst[count][key] = inst[count].get(key, 0) + doc["count"]
            inst.setdefault("advice", {}).setdefault(count, {})[key] = _advice(count, key, engine.site.institutions)
        # the two lists an interface analyst works through: segments, and codes by table or field
        if kind == "segment":
            inst["segments"][doc["value"]] = inst["segments"].get(doc["value"], 0) + doc["count"]
        elif kind != "warning":
            codes = inst["codes"].setdefault(kind, {})
            codes[doc["value"]] = codes.get(doc["value"], 0) + doc["count"]
        item = {k: doc.get(k) for k in ("kind", "value", "where", "code", "message", "count",
                                         "first_seen", "last_seen", "example_message")}
        if doc.get("gap"):  # a mapping gap the merge found: an order's text or a code mapped with no item (codedoc38)
            item["gap"] = doc["gap"]
        if tally is not None:
            # which count and key the row is (two owners' rows read alike), and the records of the
            # institution's own it names (``Tally.records``: the operator's to open and correct; idfix34)
            item |= {"count_as": tally[0], "count_key": tally[1]}
            if doc.get("records"):
                item["records"] = list(doc["records"])
        inst["items"].append(item)
    _refusals(engine, institution, remit, of)
    for inst in report.values():
        inst["items"].sort(key=lambda i: -i["count"])
    _note(request, "other", {"admin": "fidelity"})
    if ui_fidelity.wants_page(request):
        return ui_fidelity.render(request, {"institutions": report}, institution, remit)
    response.headers.update({"Cache-Control": "no-store", **ui_fidelity.NEGOTIATED})
    return {"institutions": report}


def _refusals(engine: Engine, institution: str | None, remit: frozenset[str] | None,
              of: Callable[[str], dict[str, Any]]) -> None:
    """The refusals of senders naming each institution's record numbers for other persons, counted per sending
    institution and per authenticated client (``engine.member_refusals``: ``member_refused_by``), and those past
    HUREN_MEMBER_REFUSAL_ALERT (``alerts``, key -> count) -- the counts the alert watches, where priv36's counted
    only per free-text MSH-3 (rv36d MED 2). A ``member_refused`` row (per application) is flagged ``alert`` when its
    institution is listed: decided once every count is summed, not as the rows are read (rv36d LOW 2).

    Which counts a caller bound to a remit sees is ``policy.refusal_count_shown``'s (the sending institutions', not
    their clients'); of the counts withheld it is told only that a sending client's is past the threshold
    (``client_alert``, the advice itself: fid37) -- not of the site's operators' corrected copies
    (``member_refusals.sending_client``: rv37b LOW 4)."""
    threshold = engine.settings.member_refusal_alert
    by_member: dict[str, list[dict[str, Any]]] = {}
    withheld: dict[str, list[dict[str, Any]]] = {}
    for doc in engine.ingestor.refusals.of(institution):
        if remit is None or doc.get("member") in remit:
            shown = refusal_count_shown(remit, doc)
            (by_member if shown else withheld).setdefault(str(doc["member"]), []).append(doc)
    for member in sorted(by_member.keys() | withheld.keys()):
        # (a sending client's count only: the site's operators' corrected copies are not the sender's; rv37b LOW 4)
        rows = by_member.get(member, [])
        elsewhere = bool(alerting([r for r in withheld.get(member, []) if sending_client(r)], threshold))
        if not rows and not elsewhere:
            continue
        inst = of(member)
        for row in rows:
            inst.setdefault("member_refused_by", {}).setdefault(row["by"], {})[row["key"]] = int(row["count"])
        if elsewhere:
            inst["client_alert"] = _CLIENT_ALERT
        alerts = alerting(rows, threshold)
        if not alerts:
            continue
        inst["alerts"] = alerts
        for item in inst["items"]:
            if item.get("count_as") == "member_refused" and str(item.get("count_key")).split("/", 1)[0] in alerts:
                item["alert"] = True


@router.get("/health", summary="Is the engine able to take messages")
def health(caller: Caller = Depends(operator("read")), engine: Engine = Depends(get_engine)) -> Response:
    """The message counts of a remit-bound staff member are their institutions' (``_remit``); the
    listeners and the converter are the engine's own, named by no institution."""
    ingestor = engine.ingestor
    remit = _remit(engine, caller)
    checks: dict[str, Any] = {}
    ok = True
    try:
        checks["pending"] = ingestor.messages.count(RECEIVED, facilities=remit)
        checks["quarantined"] = ingestor.messages.count(QUARANTINED, facilities=remit)
        checks["store"] = "ok"
    except Exception as exc:  # report, do not leak: the type is enough for an operator
        checks["store"] = f"error: {type(exc).__name__}"
        ok = False
    checks["listeners"] = [{"port": s.port, "open_connections": s.stats.connections_open}
                           for s in ingestor.listeners]
    checks["converter"] = "ok" if ingestor.convert is not None else "missing"
    if ingestor.convert is None:
        ok = False
    body = {"status": "ok" if ok else "degraded", "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", summary="Ingest counters and time per stage (JSON, or Prometheus text)")
def metrics(request: Request, format: str = Query("json", pattern="^(json|prometheus)$"),
            caller: Caller = Depends(operator("read")), engine: Engine = Depends(get_engine)) -> Response:
    """A remit-bound staff member is given the stored messages of their institutions only, and
    not the process-wide counters (ingest, MLLP listeners): those count every institution's
    messages, so less the remit's own they tell the others' volumes (``remit`` lists it)."""
    ingestor = engine.ingestor
    remit = _remit(engine, caller)
    messages = {s: ingestor.messages.count(s, facilities=remit) for s in (RECEIVED, PROCESSED, QUARANTINED)}
    data: dict[str, Any] = ({"remit": sorted(remit), "messages": messages} if remit is not None else {
        "ingest": ingestor.stats.as_dict(), "messages": messages,
        "mllp": [s.stats.as_dict() for s in ingestor.listeners]})
    if format == "prometheus" or prefers(accept_of(request), "text/plain", "application/json"):
        return PlainTextResponse(_prometheus(data), media_type="text/plain; version=0.0.4")
    return JSONResponse(data)


def _prometheus(data: dict[str, Any]) -> str:
    lines: list[str] = []
    stats = data.get("ingest") or {"seconds": {}}  # (none for a remit-bound caller: ``metrics``)
    for key in ("received", "processed", "quarantined", "rejected", "duplicates", "conflicts", "batches"):
        if key in stats:
            lines += [f"# TYPE huren_ingest_{key}_total counter", f"huren_ingest_{key}_total {stats[key]}"]
    if stats["seconds"]:
        lines.append("# TYPE huren_ingest_stage_seconds_total counter")
        lines += [f'huren_ingest_stage_seconds_total{{stage="{k}"}} {v}' for k, v in stats["seconds"].items()]
    lines.append("# TYPE huren_messages gauge")
    lines += [f'huren_messages{{status="{k}"}} {v}' for k, v in data["messages"].items()]
    for i, listener in enumerate(data.get("mllp") or ()):
        lines.append(f'huren_mllp_connections_open{{listener="{i}"}} {listener["connections_open"]}')
        lines.append(f'huren_mllp_messages_total{{listener="{i}"}} {listener["messages"]}')
        lines += [f'huren_mllp_acks_total{{listener="{i}",code="{c}"}} {n}'
                  for c, n in listener["ack_codes"].items()]
    return "\n".join(lines) + "\n"
