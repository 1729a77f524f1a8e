"""SMART on FHIR scopes: parse v2 (``system/Observation.rs``) and v1 (``patient/*.read``) syntax.

Everything is normalised to v2 action letters (c r u d s) so a single comparison decides both
what a token may do (``Caller.require``) and whether a client may be granted a scope at all
(``covers``). v1 ``read`` maps to ``rs``, ``write`` to ``cud`` and ``*`` to ``cruds`` as the
SMART App Launch 2.0 specification recommends for servers that accept both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

ACTIONS = "cruds"
CONTEXTS = ("patient", "user", "system")
V1_ACTIONS = {"read": "rs", "write": "cud", "*": "cruds"}
# Scopes that are not about FHIR resources; granted only when registered for the client.
SPECIAL = frozenset({"openid", "fhirUser", "profile", "offline_access", "online_access", "launch/patient"})

_RESOURCE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)$")


class ScopeError(ValueError):
    """A scope string that is not valid SMART syntax."""


@dataclass(frozen=True)
class ResourceScope:
    context: str  # patient | user | system
    resource_type: str  # a FHIR type or "*"
    actions: frozenset[str]

    def covers(self, other: ResourceScope) -> bool:
        return (
            self.context == other.context
            and self.resource_type in ("*", other.resource_type)
            and other.actions <= self.actions
        )

    def allows(self, context: str, resource_type: str, action: str) -> bool:
        return self.context == context and self.resource_type in ("*", resource_type) and action in self.actions


def parse(scope: str) -> ResourceScope | str:
    """A resource scope, or the scope string itself for the special (non-resource) scopes."""
    if scope in SPECIAL:
        return scope
    if "?" in scope:
        raise ScopeError(f"scope {scope!r}: query-restricted scopes are not supported")
    m = _RESOURCE.match(scope)
    if not m:
        raise ScopeError(f"scope {scope!r} is not a SMART scope")
    context, rtype, acts = m.groups()
    if acts in V1_ACTIONS:
        letters = V1_ACTIONS[acts]
    else:
        # v2: a non-empty subsequence of "cruds", in that order
        it = iter(ACTIONS)
        if not acts or not all(ch in it for ch in acts):
            raise ScopeError(f"scope {scope!r}: actions must be a subset of 'cruds' in that order")
        letters = acts
    return ResourceScope(context, rtype, frozenset(letters))


def parse_all(scopes: Iterable[str]) -> list[ResourceScope | str]:
    return [parse(s) for s in scopes]


def split(scope_param: str | None) -> list[str]:
    """The space-separated ``scope`` parameter as a de-duplicated list, order kept."""
    seen: dict[str, None] = {}
    for s in (scope_param or "").split():
        seen.setdefault(s, None)
    return list(seen)


def narrow(requested: Iterable[str], registered: Iterable[str]) -> list[str]:
    """The scopes to grant: every requested scope must be covered by a registered one.

    Raises ``ScopeError`` naming the first scope the client may not have (OAuth2 ``invalid_scope``):
    asking for more than registered is refused rather than silently trimmed, so a misconfigured
    client finds out at once instead of failing later with 403s.
    """
    reg = parse_all(registered)
    reg_resource = [r for r in reg if isinstance(r, ResourceScope)]
    granted: list[str] = []
    for s in requested:
        p = parse(s)
        ok = (p in reg) if isinstance(p, str) else any(r.covers(p) for r in reg_resource)
        if not ok:
            raise ScopeError(f"scope {s!r} is not registered for this client")
        granted.append(s)
    return granted


def within(granted: Iterable[str], registered: Iterable[str]) -> list[str]:
    """``granted`` cut down to what ``registered`` allows now: a special scope kept only while
    registered, a resource scope narrowed to its overlap with each registered one (``patient/*.rs``
    under ``patient/Patient.rs`` is ``patient/Patient.rs``), none left out of either.

    Why: a refresh may not widen a grant and the authorization server may narrow it (SMART App
    Launch, RFC 6749 §6) -- a patient app registered again with narrower scopes must not get its
    old ones back on the next refresh (rv-labels20)."""
    reg = parse_all(registered)
    reg_resource = [r for r in reg if isinstance(r, ResourceScope)]
    out: dict[str, None] = {}
    for s in granted:
        p = parse(s)
        if isinstance(p, str):
            if p in reg:
                out.setdefault(s, None)
            continue
        for r in reg_resource:
            if r.context != p.context or not (r.resource_type == "*" or p.resource_type in ("*", r.resource_type)):
                continue
            rtype = r.resource_type if p.resource_type == "*" else p.resource_type
            letters = "".join(a for a in ACTIONS if a in p.actions and a in r.actions)
            if letters:
                out.setdefault(f"{p.context}/{rtype}.{letters}", None)
    return list(out)
