"""Who may use recognition's endpoints (one place, so every router decides the same way).

- Reports and reviews are cross-patient: never for a patient-restricted caller. Reading reports
  needs ``DetectedIssue`` search (an auditor client registered with e.g. ``system/DetectedIssue.rs``
  or ``user/DetectedIssue.rs``); reviewing needs ``DetectedIssue`` update (``...DetectedIssue.rus``).
- Order-time checks (``$check-recognition``, CDS Hooks) need ``ServiceRequest`` read; a resident may
  check only for a patient in their own compartment.
- Reloading rules is for a system client with update rights on every type (``system/*.u``).
"""

from __future__ import annotations

from engine.auth.caller import Caller
from engine.errors import Forbidden


def require_auditor(caller: Caller, *, review: bool = False) -> None:
    if caller.restricted:
        raise Forbidden("duplicate-test reports are for auditors, not patient-scoped tokens")
    caller.require("DetectedIssue", "update" if review else "search")


def require_order_check(caller: Caller) -> None:
    caller.require("ServiceRequest", "read")


def require_admin(caller: Caller) -> None:
    if caller.restricted or caller.kind != "system" or not caller.allows("*", "update"):
        raise Forbidden("reloading rules needs a system client with system/*.u")
