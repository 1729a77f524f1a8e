"""``POST /hl7v2``: one HL7 v2 message in the body, its ACK in the response.

Authentication is that of every other API call (a bearer token, ``engine.auth.deps.get_caller``).
Authorisation: the caller must be a system client allowed to **create MessageHeader**
(``system/MessageHeader.c``, or any wider scope such as ``system/*.cruds``). Submitting a v2
message is the v2 counterpart of FHIR messaging, whose envelope is a MessageHeader; a narrow
scope lets a hospital's interface engine post messages without being able to read anything.

Like the HL7 v2 HTTP transport, every message that produced an ACK gets ``200`` with the ACK as
the body (MSA-1 says AA/AE/AR; it is also in the ``X-HL7-Ack-Code`` header); HTTP errors are
for the transport: 401/403 (auth), 415 (media type), 413 (size), 400 (empty body), as FHIR
OperationOutcomes.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from adapters.hl7v2.charsets import iana_name, transport_codec
from adapters.hl7v2.header import with_transport_charset
from adapters.listeners.batch import batch_messages, ingest_batch, one_set
from engine.audit.note import note
from engine.auth.caller import Caller
from engine.auth.deps import get_caller, get_engine
from engine.engine import Engine
from engine.errors import BadRequest, FhirError, Forbidden
from engine.ingest import Outcome

router = APIRouter(tags=["ingest"])

ER7 = "x-application/hl7-v2+er7"
ACCEPTED_TYPES = {ER7, "application/hl7-v2", "text/plain"}


@router.post(
    "/hl7v2",
    summary="Submit one HL7 v2 message; the response body is its ACK",
    responses={200: {"content": {ER7: {}}, "description": "the HL7 v2 ACK (MSA-1 AA, AE or AR)"}},
)
async def post_hl7v2(request: Request, caller: Caller = Depends(get_caller),
                     engine: Engine = Depends(get_engine)) -> Response:
    if caller.kind != "system":
        raise Forbidden("only system clients may submit HL7 v2 messages")
    caller.require("MessageHeader", "c")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ACCEPTED_TYPES:
        raise FhirError(f"unsupported media type {media or '(none)'!r}; send {ER7} or text/plain",
                        status=415, code="not-supported")
    declared = content_charset(request.headers.get("content-type", ""))
    kept = ""
    if declared:  # the set checked is the set kept, read back by the same owner (``charsets.transport_codec``)
        kept, refused = transport_codec(declared)  # its IANA name (GB18030, ISO-8859-1), read back by codec_for
        if kept is None:
            raise FhirError(refused, status=415, code="not-supported")
    limit = engine.settings.mllp_max_message_bytes
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise FhirError(f"message exceeds the maximum of {limit} bytes", status=413, code="too-long")
    if not bytes(body).strip():
        raise BadRequest("empty body: expected one HL7 v2 message")
    # the Content-Type's charset goes with the raw message in its peer string: read as the declaration
    # of a message whose MSH-18 is empty, now and on a replay (``header.read_message``, hl7left28)
    peer = with_transport_charset(f"{request.client.host if request.client else '?'} client={caller.subject}",
                                  kept)
    parts = batch_messages(bytes(body))
    if parts is not None:  # FHS/BHS: each message on its own, a batch of their ACKs back
        return await _batch(request, engine, bytes(body), parts, peer, media)
    future = engine.ingestor.submit(bytes(body), channel="http", peer=peer)
    outcome = await asyncio.wrap_future(future)
    _note(request, outcome)
    return Response(outcome.ack, headers={"content-type": f"{media}; charset={http_charset(outcome.codec)}",
                                          "X-HL7-Ack-Code": outcome.code})


def content_charset(content_type: str) -> str:
    """The ``charset`` parameter of a Content-Type header, unquoted; "" when none."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').strip()
    return ""


# the IANA name of a codec, for Content-Type's charset (``charsets.iana_name``, its owner)
http_charset = iana_name


_WORST = {"AA": 0, "AE": 1, "AR": 2}


async def _batch(request: Request, engine: Engine, body: bytes, parts: list[bytes], peer: str,
                 media: str) -> Response:
    """A batch in the body: the batch of ACKs; ``X-HL7-Ack-Code`` the worst of them (AA when empty),
    the audit one event for the request naming every message and resource."""
    ack, outcomes = await ingest_batch(engine.ingestor, body, parts, channel="http", peer=peer)
    code = max((o.code for o in outcomes), key=lambda c: _WORST.get(c, 3), default="AA")
    detail = {"messages": " ".join(o.message_id for o in outcomes if o.message_id), "ack": code}
    note(request, action="hl7v2-receive", resources=[r for o in outcomes for r in o.resources],
         owners={k: v for o in outcomes for k, v in o.owners.items()}, outcome="0" if code == "AA" else "4",
         detail=detail)
    charset = http_charset(one_set(outcomes)[1])  # the set every ACK of the body is in (mixed: UTF-8)
    return Response(ack, headers={"content-type": f"{media}; charset={charset}", "X-HL7-Ack-Code": code})


def _note(request: Request, outcome: Outcome) -> None:
    """Tell the audit trail what this request imported (one AuditEvent per request)."""
    detail = {k: v for k, v in (("message", outcome.message_id), ("ack", outcome.code)) if v}
    note(request, action="hl7v2-receive", resources=outcome.resources, owners=outcome.owners,
         outcome="0" if outcome.code == "AA" else "4", detail=detail)
