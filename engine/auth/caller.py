"""``Caller``: who is making a request and what their token grants.

The verified token as data: its kind, its scopes (``allows``/``require`` answer "does a granted
scope permit this action on this type") and, for a resident, ``patient_ids`` -- the compartment of
every linked record (for a family member acting for a resident, ``acting`` and ``consent`` say
who acts and under which grant; the compartment is the resident's). Decisions about data are made from it in one place for FHIR
(``engine.repository.scoped.ScopedRepository``) and one for the operations around it
(``engine.auth.policy``). Residents get ``patient/`` scopes only; system clients ``system/``;
auditors whatever their client registered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from engine.auth import scopes as sc
from engine.errors import Forbidden

Kind = Literal["system", "patient", "auditor", "user"]

# Which scope contexts each kind of caller may exercise.
_CONTEXTS: dict[str, frozenset[str]] = {
    "system": frozenset({"system"}),
    "auditor": frozenset({"system", "user"}),
    "user": frozenset({"user"}),
    "patient": frozenset({"patient"}),
}
_ACTION_NAMES = {"create": "c", "read": "r", "vread": "r", "history": "r", "update": "u", "patch": "u",
                 "delete": "d", "search": "s"}


@dataclass(frozen=True)
class Caller:
    subject: str
    kind: Kind
    scopes: tuple[str, ...]
    client_id: str
    patient_ids: frozenset[str] | None = None
    person: str | None = None
    patient: str | None = None  # the launch patient (resident tokens)
    # a family member acting for the resident (family access): the RelatedPerson they are, and the
    # Consent that lets them; ``subject``/``person`` are then the family member, ``patient`` the resident
    acting: str | None = None
    consent: str | None = None
    token_id: str | None = None
    # a named staff member signed in to the pages (engine.auth.staff): their role, name and institution
    role: str | None = None
    display: str | None = None
    institution: str | None = None
    # the staff member's remit (an institution, community or pooling region code); None: not bound
    remit: str | None = None
    _grants: tuple[sc.ResourceScope, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind == "patient" and self.patient_ids is None:
            raise ValueError("a patient caller must carry its compartment")
        grants = []
        for s in self.scopes:
            try:
                p = sc.parse(s)
            except sc.ScopeError:
                continue  # a scope this server does not understand grants nothing
            if isinstance(p, sc.ResourceScope) and p.context in _CONTEXTS[self.kind]:
                grants.append(p)
        object.__setattr__(self, "_grants", tuple(grants))

    @property
    def restricted(self) -> bool:
        return self.patient_ids is not None

    def allows(self, resource_type: str, action: str) -> bool:
        letter = _ACTION_NAMES.get(action, action)
        if letter not in sc.ACTIONS or len(letter) != 1:
            raise ValueError(f"unknown action {action!r}")
        # a loop, not ``any(<generator>)``: a generator left at its first True is closed by raising
        # GeneratorExit into it -- an exception made and dropped on every allowed request (attr35)
        for g in self._grants:  # noqa: SIM110 - see above
            if g.resource_type in ("*", resource_type) and letter in g.actions:
                return True
        return False

    def require(self, resource_type: str, action: str) -> None:
        """Raise ``Forbidden`` unless a granted scope permits ``action`` (c r u d s) on the type."""
        if not self.allows(resource_type, action):
            letter = _ACTION_NAMES.get(action, action)
            # RFC 6750 3.1: a bearer token's missing scope is ``insufficient_scope`` in the
            # challenge too (a signed-in staff member's session is no bearer token: no challenge)
            headers = None if self.role else {"WWW-Authenticate": (
                'Bearer realm="huren", error="insufficient_scope", '
                f'error_description="the token\'s scopes do not permit {letter} on {resource_type}"')}
            raise Forbidden(f"the access token's scopes do not permit '{letter}' on {resource_type}", headers=headers)

    @property
    def label(self) -> str:
        """Who acted, as a review record or the audit trail shows it: a staff member by name and
        role (``staff:wang.li 王丽 (auditor)``), a token holder by kind and subject."""
        if self.role:
            return f"staff:{self.subject} {self.display or ''} ({self.role})".replace("  ", " ")
        return f"{self.kind}:{self.subject}"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def sees_patient(self, patient_id: str) -> bool:
        return self.patient_ids is None or patient_id in self.patient_ids
