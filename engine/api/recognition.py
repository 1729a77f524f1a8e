"""``POST /fhir/ServiceRequest/$check-recognition`` and ``POST /admin/reload`` (rules hot reload).

The operation is registered on its own router, included before the generic FHIR router so that
``$check-recognition`` is not taken for a resource id. Input: a ServiceRequest (the body itself,
or a ``Parameters`` with ``order``), or a ``Parameters`` with ``patient`` (reference) and ``code``
(Coding or CodeableConcept), optionally ``institution`` (the ordering institution's code) and
``date``. Output: a ``Parameters`` with the recognition item and one ``recognisable`` part per
prior result, newest first, with the days left in its window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from engine import fhirjson
from engine.api.cds import disclosed
from engine.api.formats import fhir_negotiation, json_only, require_body_served
from engine.api.outcomes import fhir_response
from engine.audit.note import note
from engine.auth.caller import Caller
from engine.auth.deps import engine_of, get_caller, get_repo
from engine.auth.policy import require_order_check, require_rules_admin
from engine.errors import BadRequest, Forbidden, Gone, NotFound, Unprocessable
from engine.recognition.decision import Order, Recognisable
from engine.recognition.facts import local_day, local_today, national_id
from engine.recognition.rules import Rules
from engine.repository.indexing import parse_reference
from engine.repository.scoped import ScopedRepository
from mappings.sitefiles import SiteError

router = APIRouter(dependencies=[Depends(json_only)])


async def _json_body(request: Request) -> dict[str, Any]:
    require_body_served(request)
    try:
        body = fhirjson.loads(await request.body())
    except fhirjson.DecodeError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict) or "resourceType" not in body:
        raise BadRequest("body must be a FHIR resource (ServiceRequest or Parameters)")
    return body


def _param(params: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in params.get("parameter") or () if p.get("name") == name), None)


def order_from_input(recognition: Any, body: dict[str, Any]) -> Order:
    """The order to check, from a ServiceRequest or from patient + code (+ institution, date)."""
    if body["resourceType"] == "Parameters":
        given = _param(body, "order")
        if given and isinstance(given.get("resource"), dict):
            body = given["resource"]
    if body["resourceType"] == "ServiceRequest":
        order, _ = recognition.find_recognisable(body)
        if order is None:
            raise Unprocessable("cannot tell the ordering institution: give a local code "
                                "(urn:huren:code:<INSTITUTION>) or a requester Organization",
                                expression=["ServiceRequest.requester"])
        if order.person is None:
            raise Unprocessable("the order's subject has no valid national resident ID (NNCHN)",
                                expression=["ServiceRequest.subject"])
        return order
    if body["resourceType"] != "Parameters":
        raise BadRequest("input must be a ServiceRequest or a Parameters resource")
    patient_p, code_p = _param(body, "patient"), _param(body, "code")
    if not patient_p or not code_p:
        raise BadRequest("Parameters need 'order', or 'patient' and 'code'", expression=["Parameters.parameter"])
    ref = (patient_p.get("valueReference") or {}).get("reference") or ""
    if not ref.startswith("Patient/"):
        raise BadRequest("'patient' must be a valueReference to Patient/<id>", expression=["Parameters.parameter"])
    patient = recognition.read("Patient", ref.split("/", 1)[1])
    if patient is None:
        raise NotFound(f"{ref} not found")
    concept = code_p.get("valueCodeableConcept") or ({"coding": [code_p["valueCoding"]]} if code_p.get("valueCoding") else None)
    if not concept:
        raise BadRequest("'code' must be a valueCoding or valueCodeableConcept", expression=["Parameters.parameter"])
    inst_p = _param(body, "institution")
    institution = (inst_p or {}).get("valueString") or (inst_p or {}).get("valueCode")
    if not institution and isinstance(patient.get("managingOrganization"), dict):
        institution = recognition.facts.organization_code(patient["managingOrganization"])
    if not institution:
        raise BadRequest("give 'institution' (the ordering institution's code)", expression=["Parameters.parameter"])
    date_p = _param(body, "date")
    rules: Rules = recognition.rules
    if institution not in rules.institutions:
        # an institution huren does not know is in no community and no HR scope: the answer would
        # be "nothing recognisable", given as if it were true
        raise BadRequest(f"'institution' {institution!r} is not a member institution", expression=["Parameters.parameter"])
    tz = rules.institutions[institution].timezone
    when = (date_p or {}).get("valueDate") or (date_p or {}).get("valueDateTime")
    day = local_day(when, tz) if isinstance(when, str) else None
    if date_p is not None and day is None:
        # a date that is no date was read as today
        raise BadRequest("'date' must be a valueDate or valueDateTime", expression=["Parameters.parameter"])
    day = day or local_today(tz)
    draft = {"resourceType": "ServiceRequest", "code": concept, "subject": {"reference": ref}}
    from engine.recognition.coding import analytes_for, item_for

    if national_id(patient) is None:
        raise Unprocessable(f"{ref} has no valid national resident ID (NNCHN)", expression=["Patient.identifier"])
    # the patient index's person (rec17): None for a record it left out of its number's person
    # (a conflict, an operator's $unlink): nothing of anyone's is recognisable for it
    item = item_for(draft, rules, institution)
    # the analytes of a panel item asked for on their own, as the order's (``FactReader.order``):
    # a TBIL alone was answered as the whole liver panel (paymend26)
    return Order(person=recognition.facts.person_of(patient), item=item, institution=institution, day=day,
                 patient=ref, analytes=analytes_for(draft, rules, item, institution) if item else ())


def result_parameters(recognition: Any, order: Order, matches: list[Recognisable], *,
                      read: Callable[[str, str], dict[str, Any] | None] | None) -> dict[str, Any]:
    """The operation's output; ``read`` (the caller's own reads) adds each result's resource."""
    rules: Rules = recognition.rules
    params: list[dict[str, Any]] = []
    item = rules.items.get(order.item or "")
    if item is not None:
        params.append({"name": "item", "valueCoding": {"system": rules.codes.item_system, "code": item.code,
                                                       "display": item.name}})
        params.append({"name": "windowDays", "valueInteger": item.window_days})
    for m in matches:
        part: list[dict[str, Any]] = [
            {"name": "result", "valueReference": {"reference": m.result.ref}},
            {"name": "institution", "valueString": m.result.institution},
            {"name": "date", "valueDate": m.result.day.isoformat()},
            {"name": "ageDays", "valueInteger": m.age_days},
            {"name": "windowLeft", "valueInteger": m.window_left},
        ]
        if read is not None:
            rtype, rid = m.result.ref.split("/", 1)
            resource = read(rtype, rid)
            if resource is not None:
                part.append({"name": "resource", "resource": resource})
        params.append({"name": "recognisable", "part": part})
    return {"resourceType": "Parameters", "parameter": params}


def _patient_named(body: dict[str, Any]) -> str | None:
    """The Patient id the input is about (ServiceRequest.subject or the ``patient`` parameter)."""
    if body["resourceType"] == "Parameters":
        given = _param(body, "order")
        if given and isinstance(given.get("resource"), dict):
            body = given["resource"]
    if body.get("resourceType") == "ServiceRequest":
        ref = (body.get("subject") or {}).get("reference") if isinstance(body.get("subject"), dict) else None
    else:
        patient_p = _param(body, "patient") or {}
        ref = (patient_p.get("valueReference") or {}).get("reference") if isinstance(patient_p, dict) else None
    target = parse_reference(ref) if isinstance(ref, str) else None
    return target[1] if target and target[0] == "Patient" else None


@router.post("/fhir/ServiceRequest/$check-recognition", dependencies=[Depends(fhir_negotiation)])
async def check_recognition(request: Request, caller: Caller = Depends(get_caller),
                            repo: ScopedRepository = Depends(get_repo)) -> Response:
    require_order_check(caller)
    recognition = engine_of(request).recognition
    body = await _json_body(request)
    if repo.confined:
        # a resident asks only about their own records, and someone else's reads as unknown
        # *before* anything is looked up, so the answer cannot tell whether that patient exists
        named = _patient_named(body)
        if named is None:
            raise Unprocessable("the order must name its patient (ServiceRequest.subject or 'patient')")
        repo.read("Patient", named)
    order = order_from_input(recognition, body)
    patient_ids = [order.patient.split("/", 1)[1]] if order.patient else []
    if repo.confined and not all(repo.can_read("Patient", p) for p in patient_ids):
        raise repo.unknown("Patient")
    matches = recognition.check(order)
    # a resident is told only of results they may read themselves, anyone else of none labelled
    # beyond them (its item, institution, date): the rule CDS cards keep too
    matches = [m for m in matches if repo.tells_of(m.result.ref)]

    def read(rtype: str, rid: str) -> dict[str, Any] | None:
        try:
            return repo.read(rtype, rid)
        except (NotFound, Gone, Forbidden):
            return None

    with_resources = caller.allows(matches[0].result.resource_type, "read") if matches else False
    out = result_parameters(recognition, order, matches, read=read if with_resources else None)
    note(request, action="operation", resources=[m.result.ref for m in matches], patient_ids=patient_ids,
         owners=disclosed(recognition, matches), detail={"operation": "$check-recognition", "item": order.item})
    return fhir_response(out)


@router.post("/admin/reload")
def reload_rules(request: Request, caller: Caller = Depends(get_caller)) -> Response:
    """Hot reload of the recognition rules; a bad file leaves the running rules in force (422)."""
    require_rules_admin(caller)
    engine = engine_of(request)
    try:
        engine.reload_site()  # site files and recognition rules together
    except SiteError as exc:
        note(request, action="operation", outcome="4", detail={"operation": "reload", "error": str(exc)})
        raise Unprocessable(f"rules not reloaded, previous rules still in force: {exc}") from exc
    rules = engine.recognition.rules
    note(request, action="operation", detail={"operation": "reload", "items": len(rules.items)})
    return fhir_response({"resourceType": "OperationOutcome", "issue": [{
        "severity": "information", "code": "informational",
        "diagnostics": f"recognition rules reloaded: {len(rules.items)} items, {len(rules.qc.records)} QC records, "
                       f"{len(rules.reasons)} reason codes"}]})


def sighup_reloader(engine: Any) -> Any:
    """A start-up hook that makes ``SIGHUP`` reload the recognition rules in the serving process.

    Only where the event loop runs in the main thread on a POSIX system (``huren serve``); in
    tests and elsewhere nothing is installed. A bad file is logged and the running rules stay."""
    import asyncio
    import contextlib
    import logging
    import signal

    log = logging.getLogger("huren.recognition")

    def reload() -> None:
        try:
            engine.reload_site()
            log.info("SIGHUP: site and recognition rules reloaded (%d items)", len(engine.recognition.rules.items))
        except SiteError as exc:
            log.error("SIGHUP: recognition rules NOT reloaded, previous rules in force: %s", exc)

    async def install() -> None:
        if not hasattr(signal, "SIGHUP"):
            return
        # not the main thread (TestClient) or no signal support: nothing to install
        with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)

    return install
