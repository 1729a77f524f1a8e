"""Resources a conversion makes the same as before -- the sender's Organization, a Practitioner
from the same XCN, a Patient copied from the same PID -- marked for validation as plans without
holes.

Why: such a resource is a function of a few texts (the institution's code and name; the XCN and
the institution; the PID, PD1 and the institution), so every resource made from the same texts is
the same resource. The first of them is validated whole (``Validator.valid_planned``); the later
ones are the proven resource again and need no check but that they still have its elements
(a merge that added an element drops the mark: ``Context.put``). The sender and the ordering
doctor are in every message of a feed (~5 us of schema validation a message), a returning
patient's copy in most (~8-13 us).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.convert.context import Context

Resource = dict[str, Any]


@dataclass(eq=False)
class KeptPlan:
    """The plan of the resources made from one set of texts: their elements, and no holes (the
    form ``Validator.valid_planned`` reads a compiled plan in)."""

    key: tuple[Any, ...]
    names: tuple[str, ...]
    site: Any  # the site whose tables made them (a reloaded site makes its own plans)
    holes: frozenset[str] = frozenset()
    numbers: frozenset[str] = frozenset()
    text: bool = False
    marked: Any = None  # its ``Kept`` (one serves every resource of the plan: nothing varies)


@dataclass(eq=False)
class Kept:
    """A resource made from a ``KeptPlan``'s texts (``plans.Planned``'s form, without holes)."""

    plan: KeptPlan
    holes: dict[str, Any] = field(default_factory=dict)


_PLANS: dict[tuple[Any, ...], KeptPlan | None] = {}  # None: a key whose resources differed
_PLANS_LIMIT = 8192


def mark(ctx: Context, ref: str, resource: Resource, key: tuple[Any, ...]) -> None:
    """Mark ``resource`` (just put at ``ref``) as made from the texts ``key`` names -- ``key``
    must name everything its content depends on. Not marked when it was merged into a resource of
    the message made before it, or when resources of the same key ever had other elements."""
    if ctx.resources.get(ref) is not resource:
        return
    plan = _PLANS.get(key)
    names = tuple(resource)
    if plan is None or plan.site is not ctx.site:
        if key in _PLANS and plan is None:
            return
        if len(_PLANS) >= _PLANS_LIMIT:
            _PLANS.clear()
        plan = _PLANS[key] = KeptPlan(key, names, ctx.site)
        plan.marked = Kept(plan)
    elif plan.names != names:
        _PLANS[key] = None
        return
    ctx.planned[ref] = plan.marked
