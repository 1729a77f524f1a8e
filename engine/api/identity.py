"""Identity operations on ``/fhir/Patient``: ``$match``, ``$ihe-pix``, and operator ``$link``/``$unlink``
and ``$login-phone`` (the sign-in phone registered at a desk).

Registered on their own router, included before the generic FHIR router so ``Patient/$match`` is
not taken for a read of a Patient whose id is "$match". Access is decided by the scoped repository
like every other FHIR interaction: ``s`` on Patient to match or cross-reference (residents only ever
see their own records), ``u`` on Patient to link or unlink (operators; audited).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from engine import fhirjson
from engine.api.formats import fhir_negotiation, require_body_served
from engine.api.outcomes import fhir_response
from engine.audit.note import note
from engine.auth.caller import Caller
from engine.auth.deps import engine_of, get_caller, get_repo
from engine.auth.policy import require_identity_operator
from engine.errors import BadRequest, Gone, NotFound, Unprocessable
from engine.identity import nationalid
from engine.repository.scoped import ScopedRepository

router = APIRouter(tags=["identity"], dependencies=[Depends(fhir_negotiation)])

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"


async def _parameters(request: Request) -> list[dict[str, Any]]:
    require_body_served(request)
    try:
        body = fhirjson.loads(await request.body())
    except fhirjson.DecodeError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise BadRequest("the body must be a Parameters resource", expression=["Parameters"])
    params = body.get("parameter", [])
    if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
        raise BadRequest("Parameters.parameter must be a list", expression=["Parameters.parameter"])
    return params


def _one(params: list[dict[str, Any]], name: str, key: str, *, required: bool = False) -> Any:
    found = [p for p in params if p.get("name") == name]
    if len(found) > 1:
        raise BadRequest(f"parameter '{name}' given more than once", expression=[f"Parameters.parameter[{name}]"])
    if not found or key not in found[0]:
        if required:
            raise BadRequest(f"parameter '{name}' ({key}) is required", expression=[f"Parameters.parameter[{name}]"])
        return None
    return found[0][key]


def _patient_ref(value: Any, name: str) -> str:
    ref = (value or {}).get("reference", "") if isinstance(value, dict) else ""
    if not ref.startswith("Patient/") or "/" in ref[8:] or not ref[8:]:
        raise BadRequest(f"parameter '{name}' must reference a Patient as 'Patient/<id>'",
                         expression=[f"Parameters.parameter[{name}]"])
    return ref[8:]


def _read_visible(repo: ScopedRepository, pid: str) -> dict[str, Any] | None:
    try:
        return repo.read("Patient", pid)
    except (NotFound, Gone):
        return None


@router.post("/fhir/Patient/$match")
async def match(request: Request, repo: ScopedRepository = Depends(get_repo)) -> Response:
    repo.require("Patient", "s")
    engine = engine_of(request)
    params = await _parameters(request)
    patient = _one(params, "resource", "resource", required=True)
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise BadRequest("parameter 'resource' must be a Patient", expression=["Parameters.parameter[resource]"])
    only_certain = bool(_one(params, "onlyCertainMatches", "valueBoolean"))
    count = _one(params, "count", "valueInteger")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise BadRequest("count must be a positive integer", expression=["Parameters.parameter[count]"])
    try:
        found = engine.identity.match(patient)
    except ValueError as exc:
        raise Unprocessable(str(exc), expression=["Patient.identifier"]) from None
    entries = []
    for pid, score, grade in found:
        if only_certain and grade != "certain":
            continue
        resource = _read_visible(repo, pid)
        if resource is None:
            continue
        entries.append({"fullUrl": f"{engine.settings.fhir_base_url}/Patient/{pid}", "resource": resource,
                        "search": {"mode": "match", "score": score,
                                   "extension": [{"url": MATCH_GRADE, "valueCode": grade}]}})
        if count is not None and len(entries) >= count:
            break
    note(request, action="operation", resources=[e["resource"] for e in entries],
         detail={"operation": "$match"})
    return fhir_response({"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries})


@router.get("/fhir/Patient/$ihe-pix")
def ihe_pix(request: Request, repo: ScopedRepository = Depends(get_repo)) -> Response:
    """IHE PIXm (ITI-83): the identifiers and Patient records of the same person in other domains."""
    repo.require("Patient", "s")
    engine = engine_of(request)
    sources = request.query_params.getlist("sourceIdentifier")
    if len(sources) != 1 or "|" not in sources[0] or not all(sources[0].split("|", 1)):
        raise BadRequest("sourceIdentifier=system|value is required (once)", expression=["sourceIdentifier"])
    system, value = sources[0].split("|", 1)
    targets = set(request.query_params.getlist("targetSystem"))
    found = repo.search("Patient", [("identifier", f"{system}|{value}"), ("_count", "1000")]).resources
    source_ids = [p["id"] for p in found]
    if not source_ids:  # the same words whether nobody has it or someone the caller may not see
        raise NotFound("no Patient with that identifier is known")
    linked: set[str] = set()
    for pid in source_ids:
        linked |= engine.identity.person_compartment(pid)
    out: list[dict[str, Any]] = []
    refs: list[str] = []
    for pid in sorted(linked):
        resource = _read_visible(repo, pid)
        if resource is None:
            continue
        idents = [i for i in resource.get("identifier", []) if i.get("system") and i.get("value")
                  and not (i["system"] == system and i["value"] == value)
                  and (not targets or i["system"] in targets)]
        for ident in idents:
            out.append({"name": "targetIdentifier", "valueIdentifier": {
                k: ident[k] for k in ("use", "type", "system", "value") if k in ident}})
        if pid not in source_ids and (idents or not targets):
            out.append({"name": "targetId", "valueReference": {"reference": f"Patient/{pid}"}})
            refs.append(f"Patient/{pid}")
    note(request, action="operation", resources=refs, patient_ids=sorted(linked), detail={"operation": "$ihe-pix"})
    return fhir_response({"resourceType": "Parameters", "parameter": out})


def _compartment_result(ids: frozenset[str]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": f"Patient/{pid}"}} for pid in sorted(ids)]}


@router.post("/fhir/Patient/$link")
async def link(request: Request, caller: Caller = Depends(get_caller)) -> Response:
    """Operator: records ``source`` and ``target`` are the same person (``seealso``) or ``source`` was
    merged into ``target`` (``replaced-by``). A reason is required; the act is audited."""
    require_identity_operator(caller)
    engine = engine_of(request)
    params = await _parameters(request)
    source = _patient_ref(_one(params, "source", "valueReference", required=True), "source")
    target = _patient_ref(_one(params, "target", "valueReference", required=True), "target")
    type_ = _one(params, "type", "valueCode") or "seealso"
    reason = _one(params, "reason", "valueString", required=True)
    try:
        with engine.store.transaction():
            ids = engine.identity.link(source, target, type_=type_, actor=caller.subject, reason=str(reason))
    except Unprocessable as exc:
        # refused (two ID numbers' records: ``IdentityService.link_refusal``): audited as a refused
        # act on both records (outcome 4 by the 422), the reason the operator gave beside the refusal's
        # whole text: cut at 300 characters, it lost the second Patient id it names and the remedy
        # (review of linkmend26); the text is the index's own, a few hundred characters, no number
        note(request, action="identity-link", resources=[f"Patient/{source}", f"Patient/{target}"],
             patient_ids=[source, target], outcome="4",
             detail={"operation": "$link", "type": type_, "reason": reason, "refused": exc.diagnostics})
        raise
    note(request, action="identity-link", resources=[f"Patient/{source}", f"Patient/{target}"],
         patient_ids=[source, target], detail={"operation": "$link", "type": type_, "reason": reason})
    return fhir_response(_compartment_result(ids))


@router.post("/fhir/Patient/$unlink")
async def unlink(request: Request, caller: Caller = Depends(get_caller)) -> Response:
    """Operator: take ``source`` out of its person (or undo its merge with ``target``); audited."""
    require_identity_operator(caller)
    engine = engine_of(request)
    params = await _parameters(request)
    source = _patient_ref(_one(params, "source", "valueReference", required=True), "source")
    raw_target = _one(params, "target", "valueReference")
    target = _patient_ref(raw_target, "target") if raw_target is not None else None
    reason = _one(params, "reason", "valueString", required=True)
    with engine.store.transaction():
        ids = engine.identity.unlink(source, target, actor=caller.subject, reason=str(reason))
    note(request, action="identity-link", resources=[f"Patient/{x}" for x in (source, target) if x],
         patient_ids=[x for x in (source, target) if x], detail={"operation": "$unlink", "reason": reason})
    return fhir_response(_compartment_result(ids))


_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")


def masked(phone: str) -> str:
    """A mobile number as a desk slip or an audit record may show it: 137****1234."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


@router.post("/fhir/Patient/$login-phone")
async def login_phone(request: Request, caller: Caller = Depends(get_caller)) -> Response:
    """Operator at a member institution's desk: register or change the mobile number a resident's
    sign-in code goes to, after checking the resident's ID card in person (``idCardChecked`` must
    be true: the operator attests it). Until a number is on file a resident cannot sign in, and a
    number from a feed may be lost or someone else's. Audited against every record of the person,
    so the resident sees it under "who looked at my record"; the number itself is kept out of the
    audit trail and the answer (masked)."""
    require_identity_operator(caller)
    engine = engine_of(request)
    params = await _parameters(request)
    raw_id = _one(params, "nationalId", "valueString", required=True)
    phone = str(_one(params, "phone", "valueString", required=True)).strip().replace(" ", "").replace("-", "")
    checked = _one(params, "idCardChecked", "valueBoolean", required=True)
    reason = _one(params, "reason", "valueString") or "registered at the desk"
    if checked is not True:
        raise Unprocessable("the resident's ID card must be checked in person first (idCardChecked = true)",
                            expression=["Parameters.parameter[idCardChecked]"])
    try:
        number = nationalid.parse(str(raw_id).strip().upper()).number
    except nationalid.InvalidNationalId as exc:
        raise Unprocessable(str(exc), expression=["Parameters.parameter[nationalId]"]) from None
    if not _MOBILE.match(phone):
        raise Unprocessable("phone must be an 11-digit mainland mobile number (1[3-9]xxxxxxxxx)",
                            expression=["Parameters.parameter[phone]"])
    with engine.store.transaction():
        ids = engine.identity.set_login_phone(number, phone, actor=caller.subject, reason=str(reason))
    note(request, action="login-phone", resources=[f"Patient/{pid}" for pid in ids], patient_ids=ids,
         detail={"operation": "$login-phone", "phone": masked(phone), "reason": reason})
    result = _compartment_result(frozenset(ids))
    result["parameter"].append({"name": "phone", "valueString": masked(phone)})
    return fhir_response(result)
