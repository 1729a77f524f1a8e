"""Who may use the endpoints that are not plain FHIR interactions: one place, so every router decides alike.

FHIR reads and writes are decided by ``engine.repository.scoped.ScopedRepository``; these are the
rules for the operations around them, all expressed in the caller's scopes:

- **Order checks** (``$check-recognition``): ``ServiceRequest`` read; a resident may check only for
  a patient in their own compartment (the route asks the scoped repository).
- **Order decisions** (CDS Hooks ``order-select``/``order-sign`` and their feedback): these record a
  doctor's choice that moves an institution's recognition rate, so they need a clinician's
  (``user/``) or a system's write scope on ``ServiceRequest`` (``c`` or ``u``); a patient-context
  token never qualifies, whatever it was granted.
- **Duplicate-test reports and reviews**: cross-patient, never for a patient-context token;
  ``DetectedIssue`` search to read, update to review.
- **Insurance reports** (budget settlement, deduction lists, split admissions): cross-patient
  figures for the bureau, so the duplicate-report rule, plus search on what each report reads
  (``ChargeItem`` for the settlement, ``Encounter`` for split admissions).
- **Remit** (监管范围): a staff member bound to an institution, a medical community or a pooling
  region sees the flags, deduction lists, settlements and indicators of those institutions only;
  ``audit_remit`` answers which (the insurer's rule ``engine.insurance.remit`` resolves the code),
  and every report route narrows its figures with it or refuses a named institution outside it.
- **Rules reload**: a system client with update rights on every type (``system/*.u``).
- **Ingest administration** (``/admin``): a system client with ``MessageHeader`` read, or create to
  replay (a replay imports data exactly as a new message would).
- **Identity operations** (``$link``/``$unlink``): Patient update, never a patient-context token.
- **Audit administration** (signing checkpoints, full verification): an auditor, or a system client
  allowed to read AuditEvents.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.auth.caller import Caller
from engine.errors import Forbidden, NotFound
from engine.insurance.remit import institutions_in_remit


def allowed(rule: Callable[..., None], caller: Caller, *args: Any, **kwargs: Any) -> bool:
    """Whether ``rule`` (one of the ``require_*`` below) lets the caller through: for pages that
    offer only what the caller may do (the API still decides on every request)."""
    try:
        rule(caller, *args, **kwargs)
    except (Forbidden, NotFound):
        return False
    return True


def require_order_check(caller: Caller) -> None:
    caller.require("ServiceRequest", "read")


def require_order_decision(caller: Caller) -> None:
    if caller.restricted or caller.kind == "patient":
        raise Forbidden("ordering decisions are for clinicians and systems, not patient-context tokens")
    if not (caller.allows("ServiceRequest", "create") or caller.allows("ServiceRequest", "update")):
        raise Forbidden("recording an ordering decision needs a ServiceRequest write scope "
                        "(user/ServiceRequest.cu or system/ServiceRequest.cu)")


def require_auditor(caller: Caller, *, review: bool = False) -> None:
    if caller.restricted:
        raise Forbidden("duplicate-test reports are for auditors, not patient-scoped tokens")
    caller.require("DetectedIssue", "update" if review else "search")


def require_insurance_report(caller: Caller, *reads: str) -> None:
    require_auditor(caller)
    for rtype in reads:
        caller.require(rtype, "search")


def require_rules_admin(caller: Caller) -> None:
    if caller.restricted or caller.kind != "system" or not caller.allows("*", "update"):
        raise Forbidden("reloading rules needs a system client with system/*.u")


def require_operator(caller: Caller, action: str) -> None:
    if caller.kind != "system":
        raise Forbidden("the admin API is for system clients")
    caller.require("MessageHeader", action)


def require_identity_operator(caller: Caller) -> None:
    """``$link``/``$unlink``/``$login-phone``: Patient update, and never a patient-context token (404: for such a
    caller the operation does not exist)."""
    caller.require("Patient", "u")
    if caller.restricted:
        raise NotFound("no such operation for this caller")


def require_audit_admin(caller: Caller) -> None:
    if caller.kind == "auditor" or (caller.kind == "system" and caller.allows("AuditEvent", "read")):
        return
    raise Forbidden("only auditors and systems allowed to read AuditEvents may do this")


def audit_remit(caller: Caller, site: Any, site_dir: Path | str | None) -> frozenset[str] | None:
    """The institutions whose flags and figures the caller may see; None: every institution (a
    system client, or staff not bound to a remit)."""
    if caller.remit is None:
        return None
    return institutions_in_remit(caller.remit, site, site_dir)


def require_in_remit(caller: Caller, institution: str | None, site: Any, site_dir: Path | str | None,
                     what: str = "flag") -> None:
    """404 for a record of an institution outside the caller's remit: to them it does not exist."""
    remit = audit_remit(caller, site, site_dir)
    if remit is not None and institution not in remit:
        raise NotFound(f"no such {what} in your remit")
