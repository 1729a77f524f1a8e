"""CDS Hooks 2.0 service: recognisable prior results at the moment of ordering.

``GET /cds-services`` lists two services, for ``order-select`` (the doctor picks an item) and
``order-sign`` (the doctor signs the orders). ``POST /cds-services/{id}`` answers with one card per
draft ServiceRequest that has recognisable prior results: a link to each prior result, a
suggestion "recognise" (delete the draft order) and suggestions "re-test" for the reasons that
matter for the item (update the draft with that ``reasonCode``), and every re-test reason as an
``overrideReason``. ``POST /cds-services/{id}/feedback`` records the doctor's choice, which feeds
the recognition rate: a recognised draft never becomes an order. Both record a decision, so both
need a clinician's or system's ServiceRequest write scope (``engine.auth.policy``); discovery is
public.
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from conformance.validate import Validator
from engine import fhirjson
from engine.api.formats import require_body_served
from engine.audit.events import patients_of
from engine.audit.note import note
from engine.auth.caller import Caller
from engine.auth.deps import engine_of, get_caller, get_repo
from engine.auth.policy import require_order_decision
from engine.errors import BadRequest, NotFound
from engine.recognition.decision import Order, Recognisable
from engine.recognition.facts import ORDER_ELEMENTS, local_day, national_id, placer_numbers
from engine.recognition.state import CARDS
from engine.repository.scoped import ScopedRepository
from mappings.site import DEFAULT_ZONE

router = APIRouter()

SERVICES = {
    "huren-recognition-select": "order-select",
    "huren-recognition-sign": "order-sign",
}
_NS = uuid.UUID("6f1c3c1e-6a43-4d5e-9a57-3c6f2b1f0d11")
# CDS Hooks 2.0 §HTTP Request: hookInstance is "a universally unique identifier (UUID) for this
# particular hook call" -- its canonical text form (8-4-4-4-12 hex digits)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _json(body: Any, status: int = 200) -> Response:
    return Response(fhirjson.dumps(body), status_code=status, media_type="application/json")


@router.get("/cds-services")
def discovery() -> Response:
    """Discovery is public (CDS Hooks 2.0 §Discovery): it describes services, not data."""
    return _json({"services": [
        {
            "hook": hook, "id": sid,
            "title": "互认 recognisable prior results" + (" (order select)" if hook == "order-select" else " (order sign)"),
            "description": "Lists recognisable results of the same person and item from member institutions "
                           "(检查检验结果互认), suggests recognising them instead of re-testing, and records the choice.",
            "prefetch": {"patient": "Patient/{{context.patientId}}"},
            "usageRequirements": "Bearer token of a clinician or system with ServiceRequest write "
                                 "(user/ServiceRequest.cu or system/ServiceRequest.cu): the call records a decision.",
        }
        for sid, hook in SERVICES.items()
    ]})


def _draft_orders(context: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The draft ServiceRequests of a hook's ``context.draftOrders`` Bundle, each with its entry's place (another
    kind of draft order -- a MedicationRequest -- is not huren's to check). An entry that is no entry -- not an
    object, or without a ``resource`` object -- is a 400 naming it: it had been passed over, so a malformed order was
    answered with no card, an all-clear for an order never checked (http42)."""
    bundle = context.get("draftOrders") or {}
    entries = bundle.get("entry") or ()
    bad = next((at for at, e in enumerate(entries) if not isinstance(e, dict) or not isinstance(e.get("resource"), dict)),
               None)
    if bad is not None:
        raise BadRequest(f"context.draftOrders.entry[{bad}] is not a Bundle entry holding its draft order as "
                         "'resource' (an object): an order not read would be answered as checked",
                         expression=[f"context.draftOrders.entry[{bad}]"])
    return [(at, e["resource"]) for at, e in enumerate(entries)
            if e["resource"].get("resourceType") == "ServiceRequest"]


# ServiceRequest's primitive elements of cardinality 1..1 in R4 (its subject, the third, is filled from the hook's
# ``context.patientId``): the R4 JSON schema cannot require a primitive -- ``_status`` may stand for it -- so a draft
# without them passed ``structure_problems`` (``_readable_draft``)
DRAFT_REQUIRED = ("status", "intent")


def _readable_draft(validator: Validator, draft: dict[str, Any], at: int) -> None:
    """A 400 naming the first element huren reads of a draft ServiceRequest (``facts.ORDER_ELEMENTS``: code,
    requester, performer, subject, the times, reasonCode, bodySite, encounter, locationCode, locationReference,
    identifier) that is not of its R4 type (``code`` a string, ``requester`` a string...): the recognition facts read
    such a draft as no order, and the hook answered ``{"cards": []}`` under a 200 -- the EHR's all-clear for an order
    never checked (rv42c LOW 3). CDS Hooks: a malformed request is a 400.

    Only those elements (rv43c MED 1): a draft huren reads whole had been refused for a narrative without xmlns, an
    id with ``_`` -- the EHR's own, only given back -- or an ``authoredOn`` without its zone, none of which huren
    reads or reads amiss; the EHR got an error where it had had its answer. A time is taken as ``order_time`` reads it
    (one without a zone is the institution's local time): one that reader gets a day from stands as that day. A
    draft that is of its type but names no item huren knows keeps its empty answer: nothing to recognise is no error.

    A draft without ``status`` or ``intent`` (``DRAFT_REQUIRED``: R4 ServiceRequest 1..1; the order hooks' draftOrders
    are orders "with draft status") is no R4 ServiceRequest: a 400 naming the element, as CDS Hooks lets a service
    answer a request it cannot take (1.0/2.0 "HTTP Status Codes": 4xx). It had been read and answered -- a card, or
    the all-clear -- for an order its EHR had not said was an order at all (http43's left LOW; forty-fourth round,
    low44). Their value is only checked to be a code: a re-signed order's status is not ``draft`` (CDS Hooks Library,
    order-sign), and R4's codes are bound by no check of huren's elsewhere either."""
    read: dict[str, Any] = {"resourceType": "ServiceRequest",
                            **{k: draft[k] for k in (*ORDER_ELEMENTS, *DRAFT_REQUIRED) if k in draft}}
    for name in ("authoredOn", "occurrenceDateTime"):
        if name in read:
            read[name] = _time_read(read[name])
    period = read.get("occurrencePeriod")
    if isinstance(period, dict):  # (its end is not read)
        read["occurrencePeriod"] = {"start": _time_read(period["start"])} if "start" in period else {}
    where = f"context.draftOrders.entry[{at}].resource"
    problems = [(f"{where}.{k}", "required", "is required by the FHIR R4 definition (ServiceRequest 1..1) but missing")
                for k in DRAFT_REQUIRED if k not in draft]
    problems += validator.structure_problems(read, where)
    if problems:
        (path, code, message), *rest = problems
        raise BadRequest(f"{path}: {message} (a draft order huren cannot read would be answered as checked)",
                         expression=[path], code=code,
                         issues=[{"severity": "error", "code": c, "diagnostics": f"{p}: {m}", "expression": [p]}
                                 for p, c, m in rest])


def _time_read(value: Any) -> Any:
    """An order's time as the recognition reads it (``facts.order_time``, ``local_day``): a text it reads a day
    from stands as that day (an R4 date), anything else as sent, for the R4 check to name."""
    day = local_day(value, DEFAULT_ZONE) if isinstance(value, str) else None
    return day.isoformat() if day is not None else value


def disclosed(recognition: Any, matches: list[Recognisable]) -> dict[str, list[str]]:
    """Whose each shown result is, for the audit record (``note``'s ``owners``): reference -> the
    patient record it is filed under. A card or ``$check-recognition`` answer for an order on one
    record names results filed under other linked records of the same person; IHE BALP's one
    patient entity per patient whose data was disclosed makes the interaction findable under each
    such record (``AuditEvent?patient=``, and the resident's "who looked"), not only under the
    order's. The recognition index knows each result's record; a result it does not (an entry
    without one) is read for its subject, and one whose record cannot be told is still listed."""
    owners: dict[str, list[str]] = {}
    for m in matches:
        ref, patient = m.result.ref, m.result.patient
        if isinstance(patient, str) and patient.startswith("Patient/") and len(patient) > 8:
            owners[ref] = [patient[8:]]
            continue
        rtype, _, rid = ref.partition("/")
        stored = recognition.read(rtype, rid) if rid else None
        whose = patients_of(stored) if stored else []
        if whose:
            owners[ref] = whose
    return owners


def _given_to(caller: Caller) -> list[str]:
    """Whom a card is given to: the client and the subject of the token it was asked with."""
    return [caller.client_id, caller.subject]


def _card(recognition: Any, request: Request, hook_instance: str, sid: str, draft: dict[str, Any], order: Order,
          matches: list[Recognisable], user: str | None, caller: Caller) -> dict[str, Any]:
    """One card for a draft with recognisable priors; the card row kept for its feedback names
    the draft's requester and location as an order's check row does (``FactReader.orderer``),
    else the hook's ``userId``: a recognition made in CDS counts for that doctor.

    The card (its id, and the row kept for its feedback) is the caller's own: keyed on the client
    and subject of the token as well as the patient, ``hookInstance`` and draft id, and the row
    names whom it was given to (``to``; feedback from anyone else is a 404). A draft id is the
    EHR's own and a ``hookInstance`` is only what the client says: keyed on those two alone, a
    second client's call with the same pair replaced the first's row, and the first doctor's
    "recognise" was recorded against the other person's order (probesec26)."""
    rules = recognition.rules
    item = matches[0].item
    newest = matches[0].result
    draft_ref = f"ServiceRequest/{draft.get('id')}"
    to = _given_to(caller)
    card_id = str(uuid.uuid5(_NS, "|".join((hook_instance, *to, order.patient or "", draft_ref))))
    recognise_id = str(uuid.uuid5(_NS, f"{card_id}|recognise"))
    base = engine_of(request).settings.fhir_base_url
    suggestions: list[dict[str, Any]] = [{
        "label": f"互认 Recognise the {newest.institution} result of {newest.day.isoformat()} (cancel this order)",
        "uuid": recognise_id, "isRecommended": True,
        "actions": [{"type": "delete", "description": f"Remove the draft order for {item.name}",
                     "resourceId": [draft_ref]}],
    }]
    retest: dict[str, str] = {}
    for code in item.reasons:
        reason = rules.reasons.get(code)
        if reason is None:
            continue
        sug_id = str(uuid.uuid5(_NS, f"{card_id}|{code}"))
        retest[sug_id] = code
        updated = copy.deepcopy(draft)
        updated.setdefault("reasonCode", []).append(
            {"coding": [{"system": rules.reason_system, "code": code, "display": reason.display}]})
        suggestions.append({"label": f"不互认 Re-test: {code} {reason.display}", "uuid": sug_id,
                            "actions": [{"type": "update", "description": f"Record re-test reason {code}",
                                         "resource": updated}]})
    doctor, dept = recognition.facts.orderer(draft)
    placers = placer_numbers(draft)
    recognition.store.collection(CARDS).replace({
        "_id": card_id, "service": sid, "draft": draft_ref, "person": order.person, "patient": order.patient,
        "item": order.item, "inst": order.institution, "day": order.day.isoformat(),
        "doctor": doctor or user, "dept": dept, "placer": list(placers),
        "recognisable": [m.result.ref for m in matches], "recognise": recognise_id, "retest": retest,
        "to": to,
    })
    lines = [f"- [{m.result.ref}]({base}/{m.result.ref}) — {m.result.institution}, {m.result.day.isoformat()}, "
             f"{m.window_left} days left of {item.window_days}" for m in matches]
    return {
        "uuid": card_id,
        "summary": f"可互认 {item.name}: {newest.institution} {newest.day.isoformat()} ({len(matches)} recognisable)"[:140],
        "detail": f"Recognisable prior results for **{item.name}** ({item.code}, window {item.window_days} days):\n\n"
                  + "\n".join(lines)
                  + "\n\nEligible results that meet the clinical need should not be repeated (国卫医发〔2022〕6号).",
        "indicator": "warning",
        "source": {"label": "huren 检查检验结果互认", "topic": {"system": "urn:huren:detected-issue",
                                                           "code": "recognisable-prior-result"}},
        "suggestions": suggestions,
        "selectionBehavior": "at-most-one",
        "overrideReasons": [{"system": rules.reason_system, "code": r.code, "display": r.display}
                            for r in rules.reasons.values()],
        "links": [{"label": f"Prior result {m.result.ref} ({m.result.institution} {m.result.day.isoformat()})",
                   "url": f"{base}/{m.result.ref}", "type": "absolute"} for m in matches],
    }


async def _call_body(service_id: str, request: Request, caller: Caller) -> tuple[str, Any]:
    """What a service call and its feedback check first, in this order: the service exists (404),
    the caller may record order decisions (403), the Content-Type's parameters name UTF-8 (415:
    ``formats.require_body_served``, the one check of every body), the body is JSON (400)."""
    hook = SERVICES.get(service_id)
    if hook is None:
        raise NotFound(f"no CDS service {service_id!r}")
    require_order_decision(caller)
    require_body_served(request)
    try:
        return hook, fhirjson.loads(await request.body())
    except fhirjson.DecodeError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from exc


@router.post("/cds-services/{service_id}")
async def call_service(service_id: str, request: Request, caller: Caller = Depends(get_caller),
                       repo: ScopedRepository = Depends(get_repo)) -> Response:
    hook, body = await _call_body(service_id, request, caller)
    if not isinstance(body, dict) or body.get("hook") != hook or not isinstance(body.get("context"), dict):
        raise BadRequest(f"expected a '{hook}' hook request with a context")
    hook_instance = body.get("hookInstance")
    if not hook_instance:
        raise BadRequest("hookInstance is required")
    if not isinstance(hook_instance, str) or not _UUID.fullmatch(hook_instance):
        raise BadRequest(f"hookInstance must be a UUID (CDS Hooks 2.0 §HTTP Request), not {str(hook_instance)[:40]!r}")
    hook_instance = hook_instance.lower()
    context = body["context"]
    patient_id = context.get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        raise BadRequest("context.patientId is required")
    prefetch = body.get("prefetch") or {}
    drafts_bundle = context.get("draftOrders") or {}
    if not isinstance(prefetch, dict) or not isinstance(drafts_bundle, dict) \
            or not isinstance(drafts_bundle.get("entry") or [], list) \
            or not isinstance(context.get("selections") or [], list) \
            or not all(isinstance(x, str) for x in context.get("selections") or ()):
        raise BadRequest("prefetch is an object, context.draftOrders a Bundle and context.selections a list of references")
    recognition = engine_of(request).recognition
    patient = recognition.read("Patient", patient_id)
    prefetched = prefetch.get("patient")
    # the patient index's person (rec17); a prefetched Patient only when the record is not stored
    person = recognition.facts.person_of(patient) if patient is not None else \
        national_id(prefetched if isinstance(prefetched, dict) else None)
    drafts = _draft_orders(context)
    if hook == "order-select":
        selected = set(context.get("selections") or ())
        drafts = [(i, d) for i, d in drafts if f"ServiceRequest/{d.get('id')}" in selected] or drafts
    cards: list[dict[str, Any]] = []
    touched: list[str] = []
    owners: dict[str, list[str]] = {}
    validator = engine_of(request).validator
    for at, draft in drafts:
        draft = {**draft, "subject": draft.get("subject") or {"reference": f"Patient/{patient_id}"}}
        _readable_draft(validator, draft, at)
        order = recognition.facts.order(draft)
        if order is None and patient and isinstance(patient.get("managingOrganization"), dict):
            # a draft without a local code or requester is ordered where the patient is registered
            order = recognition.facts.order({**draft, "requester": patient["managingOrganization"]})
        if order is None:
            continue
        # the analytes of a panel item ordered on their own are what it asks for (paymend26: a TBIL
        # alone was answered as the whole liver panel, unlike the ORM's ACK and the later flag)
        order = Order(person=person, item=order.item, institution=order.institution, day=order.day,
                      ref=f"ServiceRequest/{draft.get('id')}", patient=f"Patient/{patient_id}",
                      analytes=order.analytes)
        # only the prior results the caller may be told of (``ScopedRepository.tells_of``): a card
        # named an R-labelled result, its institution and date, to a clinician who reads it 404
        matches = [m for m in recognition.check(order) if repo.tells_of(m.result.ref)]
        if matches:
            user = context.get("userId")
            cards.append(_card(recognition, request, hook_instance, service_id, draft, order, matches,
                               user if isinstance(user, str) and user else None, caller))
            touched.extend(m.result.ref for m in matches)
            owners.update(disclosed(recognition, matches))
    note(request, action="operation", resources=touched, patient_ids=[patient_id], owners=owners,
         detail={"operation": f"cds:{service_id}", "cards": len(cards)})
    return _json({"cards": cards})


def _choice(fb: Any, cards: Any, service_id: str, reason_system: str,
            caller: Caller) -> tuple[dict[str, Any], str, str | None, str | None]:
    """One feedback item (CDS Hooks 2.0 §Feedback) read as (card row, choice, reason, comment);
    a malformed item is a 400, an unknown card a 404 -- and so is a card given to another caller
    (another client, or another user of it: ``to``), which is not this caller's to answer and
    whose existence it is not told. An override's reason counts only in
    huren's reason system (the card's ``overrideReasons``); its ``userComment`` is the reason's
    text (R06 needs one)."""
    if not isinstance(fb, dict) or not isinstance(fb.get("card"), str):
        raise BadRequest("each feedback item is an object with a 'card' id")
    card = cards.get(fb["card"])
    # (a row kept before cards were given to someone has no ``to``: its feedback is taken as before)
    if card is None or card["service"] != service_id or card.get("to", _given_to(caller)) != _given_to(caller):
        raise NotFound(f"unknown card {fb['card']!r}")
    outcome = fb.get("outcome")
    suggestions = fb.get("acceptedSuggestions") or []
    override = fb.get("overrideReason") or {}
    if not isinstance(suggestions, list) or not all(isinstance(x, dict) for x in suggestions) \
            or not isinstance(override, dict) or not isinstance(override.get("reason") or {}, dict):
        raise BadRequest("acceptedSuggestions is a list of {'id': ...} and overrideReason an object "
                         "with a 'reason' Coding")
    accepted = {str(x.get("id")) for x in suggestions}
    if outcome == "accepted" and card["recognise"] in accepted:
        return card, "recognised", None, None
    if outcome == "accepted" and accepted & set(card["retest"]):
        return card, "retest", card["retest"][sorted(accepted & set(card["retest"]))[0]], None
    if outcome == "overridden":
        coding = override.get("reason") or {}
        code = coding.get("code") if coding.get("system") in (None, reason_system) else None
        comment = override.get("userComment")
        return (card, "retest", code if isinstance(code, str) and code else None,
                comment.strip() if isinstance(comment, str) and comment.strip() else None)
    raise BadRequest("outcome must be 'accepted' (with acceptedSuggestions) or 'overridden'")


@router.post("/cds-services/{service_id}/feedback")
async def feedback(service_id: str, request: Request, caller: Caller = Depends(get_caller)) -> Response:
    """Records each card's outcome: a "recognise" suggestion accepted counts the draft as recognised;
    a "re-test" suggestion or an override is kept with its reason (the order that follows is flagged
    or justified on its own)."""
    _, body = await _call_body(service_id, request, caller)
    items = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise BadRequest("expected {'feedback': [...]}")
    recognition = engine_of(request).recognition
    cards = recognition.store.collection(CARDS)
    # every item is checked before any is recorded: a bad item refuses the whole call (400/404)
    # instead of leaving the items before it recorded and answering an error
    choices = [_choice(fb, cards, service_id, recognition.rules.reason_system, caller) for fb in items]
    recorded = []
    patients: set[str] = set()
    for card, choice, reason, comment in choices:
        order = Order(person=card["person"], item=card["item"], institution=card["inst"],
                      day=date.fromisoformat(card["day"]), ref=card["draft"], patient=card["patient"])
        recognition.record_choice(f"cds:{card['_id']}", order=order, recognisable=card["recognisable"],
                                  outcome=choice, reason=reason, reason_text=comment,
                                  doctor=card.get("doctor"), dept=card.get("dept"),
                                  placers=tuple(card.get("placer") or ()))
        recorded.append({"card": card["_id"], "choice": choice, "reason": reason})
        if card.get("patient"):
            patients.add(str(card["patient"]).split("/", 1)[1])
    note(request, action="operation", patient_ids=sorted(patients),
         detail={"operation": f"cds-feedback:{service_id}", "choices": recorded})
    return _json({"recorded": recorded})
