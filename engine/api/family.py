"""Family access operations: ``Patient/$family-grant`` and ``Patient/$family-withdraw``.

A resident (on ``/ui/me``, or any SMART app with their token) lets a family member see their
record, or ends it; so does a member institution's desk for a resident in person (a child's parent
with the household register, an elderly parent with their adult child), attesting both ID cards
were checked. Who may do it is decided in ``engine.auth.policy.require_family_manager``; the grant
itself is a ``Consent`` + ``RelatedPerson`` in the resident's record (``engine.auth.family``) that
the resident and their apps read like any other record. Each grant and withdrawal is audited
against every record of the resident, so it shows in their "who looked at my record".
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from engine.api.formats import fhir_negotiation
from engine.api.identity import _one, _parameters, _patient_ref
from engine.api.outcomes import fhir_response
from engine.audit.note import note
from engine.auth.caller import Caller
from engine.auth.deps import engine_of, get_caller
from engine.auth.policy import require_family_manager
from engine.errors import BadRequest, NotFound, Unprocessable
from engine.identity import nationalid

router = APIRouter(tags=["family"], dependencies=[Depends(fhir_negotiation)])


def _subject(request: Request, caller: Caller, params: list[dict[str, Any]]) -> str:
    """Whose record: ``patient`` (a reference), or at a desk the resident's ``nationalId``; a
    resident's own launch record when neither is given."""
    engine = engine_of(request)
    ref = _one(params, "patient", "valueReference")
    number = _one(params, "nationalId", "valueString")
    if ref is not None:
        return _patient_ref(ref, "patient")
    if number is not None and caller.kind != "patient":
        # access first: the answer below tells whether records carry the number and how they are
        # linked -- for the desk (the family manager) alone, never an oracle on ID numbers for any
        # client (eighteenth round, review of idfix18; a desk client's check needs no record)
        require_family_manager(caller, "")
        try:
            parsed = nationalid.parse(str(number).strip().upper()).number
        except nationalid.InvalidNationalId as exc:
            raise Unprocessable(str(exc), expression=["Parameters.parameter[nationalId]"]) from None
        found = engine.identity.patients_for_number(parsed)
        if not found:
            raise NotFound(engine.identity.no_person_reason(parsed))
        return found[0]
    if caller.kind == "patient" and caller.patient:
        return caller.patient
    raise BadRequest("say whose record: parameter 'patient' or 'nationalId'", expression=["Parameters.parameter[patient]"])


def _desk_attests(caller: Caller, params: list[dict[str, Any]]) -> str | None:
    """A desk operator must attest the ID cards were checked in person (the resident's, and the
    family member's); a resident's own sign-in is their proof."""
    if caller.kind == "patient":
        return None
    if _one(params, "idCardChecked", "valueBoolean") is not True:
        raise Unprocessable("both ID cards (the resident's and the family member's) must be checked in person first "
                            "(idCardChecked = true)", expression=["Parameters.parameter[idCardChecked]"])
    return caller.subject


def _answer(consent: dict[str, Any], related: dict[str, Any] | None) -> dict[str, Any]:
    out = [{"name": "consent", "resource": consent}]
    if related is not None:
        out.append({"name": "relatedPerson", "resource": related})
    return {"resourceType": "Parameters", "parameter": out}


@router.post("/fhir/Patient/$family-grant")
async def family_grant(request: Request, caller: Caller = Depends(get_caller)) -> Response:
    """Let a family member (``proxyNationalId``, ``proxyName``, ``relationship`` as a v3 RoleCode:
    PRN, CHILD, SPS, SIB, GRPRN, GRNDCHILD, GUARD, FAMMEMB) see the record until ``end`` (a date;
    absent: until withdrawn). Answers the Consent and the RelatedPerson (201)."""
    engine = engine_of(request)
    params = await _parameters(request)
    patient = _subject(request, caller, params)
    require_family_manager(caller, patient)
    desk = _desk_attests(caller, params)
    family = engine.auth.resident.family
    end = _one(params, "end", "valueDate") or _one(params, "end", "valueDateTime")
    with engine.store.transaction():
        grant = family.grant(
            patient, str(_one(params, "proxyNationalId", "valueString", required=True)),
            name=str(_one(params, "proxyName", "valueString", required=True)),
            relationship=str(_one(params, "relationship", "valueCode", required=True)),
            end=str(end) if end else None, desk=desk)
    ids = sorted(engine.identity.person_compartment(patient))
    note(request, action="family-access", resources=[grant.consent, grant.related], patient_ids=ids,
         detail={"operation": "$family-grant", "reason": _one(params, "reason", "valueString") or ""})
    return fhir_response(_answer(grant.consent, grant.related), 201)


@router.post("/fhir/Patient/$family-withdraw")
async def family_withdraw(request: Request, caller: Caller = Depends(get_caller)) -> Response:
    """End a family access now (``consent``: a reference to the grant's Consent)."""
    engine = engine_of(request)
    params = await _parameters(request)
    ref = _one(params, "consent", "valueReference", required=True)
    cref = (ref or {}).get("reference", "") if isinstance(ref, dict) else ""
    if not cref.startswith("Consent/") or not cref[8:] or "/" in cref[8:]:
        raise BadRequest("parameter 'consent' must reference a Consent as 'Consent/<id>'",
                         expression=["Parameters.parameter[consent]"])
    if caller.kind != "patient":
        # rights first: a 403 only for a grant that exists told any client which grants exist
        # (twenty-first round, probe21), as the desk's ``nationalId`` path already asks first
        require_family_manager(caller, "")
    family = engine.auth.resident.family
    consent = family.consent(cref[8:])
    patient = str((consent.get("patient") or {}).get("reference", "")).removeprefix("Patient/")
    if caller.kind == "patient" and patient not in (caller.patient_ids or ()):
        raise NotFound("this Consent is not known")  # as for a missing one: no hint it exists
    require_family_manager(caller, patient)
    _desk_attests(caller, params)
    with engine.store.transaction():
        done = family.withdraw(cref[8:])
    ids = sorted(engine.identity.person_compartment(patient))
    note(request, action="family-access", resources=[done], patient_ids=ids,
         detail={"operation": "$family-withdraw", "reason": _one(params, "reason", "valueString") or ""})
    return fhir_response(_answer(done, None))
