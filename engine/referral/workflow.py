"""The referral Task's state machine: which state a Task is in, and whether a write may move it.

Pure functions over the rules of ``workflow.yaml``; ``engine.referral.service`` runs them in the
repository's write hook, so every writer (PUT Task, a transaction Bundle, the HL7 REF/RRI
converter) meets the same rule, and a refused write rolls its whole transaction back.
"""

from __future__ import annotations

from typing import Any

from engine.errors import Conflict, Unprocessable
from engine.referral.rules import State, WorkflowRules


def is_referral(service_request: dict[str, Any] | None, rules: WorkflowRules) -> bool:
    """A ServiceRequest whose category carries one of the referral codings."""
    if not service_request or service_request.get("resourceType") != "ServiceRequest":
        return False
    for concept in service_request.get("category") or ():
        for coding in (concept or {}).get("coding") or ():
            if (coding.get("system"), coding.get("code")) in rules.categories:
                return True
    return False


def _business(task: dict[str, Any] | None, rules: WorkflowRules) -> str | None:
    for coding in (((task or {}).get("businessStatus") or {}).get("coding") or ()):
        if coding.get("system") == rules.business_system:
            return str(coding.get("code"))
    return None


def state_of(task: dict[str, Any], rules: WorkflowRules, previous: dict[str, Any] | None = None,
             *, stored: bool = False) -> State:
    """The referral state a Task shows: its businessStatus in the workflow's system, whose Task.status
    must agree; else the state that is the default for its Task.status. 422 when neither fits.

    A writer that only knows Task.status (an HL7 RRI) changes the status and leaves the stored
    businessStatus as it was (the merge rules keep what a thinner message does not state): a
    businessStatus unchanged from ``previous`` while the status moved on is stale, and the status
    decides. So does the status of a ``stored`` version whose businessStatus disagrees with it
    (such a version was written that way, and its status is what every reader acts on)."""
    status = task.get("status")
    stale = previous is not None and _business(task, rules) == _business(previous, rules) \
        and status != previous.get("status")
    if stored:
        named = rules.states.get(_business(task, rules) or "")
        stale = named is None or named.status != status
    for coding in ((task.get("businessStatus") or {}).get("coding") or ()):
        if stale or coding.get("system") != rules.business_system:
            continue
        state = rules.states.get(str(coding.get("code")))
        if state is None:
            raise Unprocessable(f"Task.businessStatus '{coding.get('code')}' is not a referral state "
                                f"({', '.join(rules.states)})", expression=["Task.businessStatus"])
        if state.status != status:
            raise Unprocessable(f"referral state '{state.name}' needs Task.status '{state.status}', "
                                f"not '{status}'", expression=["Task.status"])
        return state
    name = rules.by_status.get(str(status))
    if name is None:
        raise Unprocessable(f"Task.status '{status}' is not a state of the referral workflow "
                            f"(states: {', '.join(f'{s.name} ({s.status})' for s in rules.states.values())})",
                            expression=["Task.status"])
    return rules.states[name]


def _content(task: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in task.items() if k not in ("meta", "text")}


def check_transition(previous: dict[str, Any] | None, task: dict[str, Any], rules: WorkflowRules) -> State:
    """The new state, or 409 Conflict naming both states and what is allowed from the old one.

    Creating a Task needs an initial state. A write keeping the state is an edit, allowed only in
    states marked ``stay`` (a referral is modified before anyone acted on it, notes during the
    stay); elsewhere it restates a step already taken (accepting twice) and is refused.
    """
    new = state_of(task, rules, previous)
    ref = f"Task/{task.get('id')}"
    if previous is None:
        if new.name not in rules.initial:
            raise Conflict(f"{ref}: a referral Task cannot start as '{new.name}'; it starts as one of "
                           f"{', '.join(sorted(rules.initial))}", expression=["Task.status"])
        return new
    old = state_of(previous, rules, stored=True)
    if old.name == new.name:
        if old.stay or _content(previous) == _content(task):
            return new
        raise Conflict(f"{ref}: the referral is already {old.name}; a Task in that state cannot be changed "
                       f"except by moving it on to {_listed(rules.allowed(old.name))}", expression=["Task.status"])
    if new.name not in rules.allowed(old.name):
        raise Conflict(f"{ref}: a referral cannot go from {old.name} to {new.name}; from {old.name} it may "
                       f"only go to {_listed(rules.allowed(old.name))}", expression=["Task.status"])
    return new


def _listed(names: frozenset[str]) -> str:
    return ", ".join(sorted(names)) or "nothing (it is closed)"
