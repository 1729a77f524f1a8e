"""The referral data files: the shipped workflow and deductibles, a site's replacement, and the
precise error a wrong file gets."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import Conflict, Unprocessable
from engine.referral import deductibles as dd
from engine.referral.rules import SHIPPED, load
from engine.referral.workflow import check_transition, state_of
from mappings.site import SiteError

RULES = load()
STATE = RULES.workflow.business_system


def task(status: str, state: str | None = None, **extra: object) -> dict:
    out: dict = {"resourceType": "Task", "id": "t1", "status": status, "intent": "order", **extra}
    if state:
        out["businessStatus"] = {"coding": [{"system": STATE, "code": state}]}
    return out


def test_the_shipped_path_and_its_wrong_turns() -> None:
    wf = RULES.workflow
    path = [task("requested"), task("accepted"), task("in-progress"), task("completed"),
            task("completed", "referred-back")]
    previous = None
    for t in path:
        check_transition(previous, t, wf)
        previous = t
    assert state_of(path[2], wf).name == "arrived" and state_of(path[-1], wf).name == "referred-back"
    with pytest.raises(Conflict, match="from rejected to completed; from rejected it may only go to entered-in-error"):
        check_transition(task("rejected"), task("completed"), wf)
    with pytest.raises(Conflict, match="already accepted"):
        check_transition(task("accepted"), task("accepted", note=[{"text": "again"}]), wf)
    with pytest.raises(Conflict, match="cannot start as 'arrived'"):
        check_transition(None, task("in-progress"), wf)
    with pytest.raises(Conflict, match="from requested to completed"):
        check_transition(task("requested"), task("completed"), wf)
    # editing a referral before anyone acted on it, and the same version again, are fine
    check_transition(task("requested"), task("requested", note=[{"text": "加急"}]), wf)
    check_transition(task("accepted"), task("accepted"), wf)
    # anything may be entered in error
    check_transition(task("completed", "referred-back"), task("entered-in-error"), wf)


def test_a_state_must_agree_with_the_task_status() -> None:
    with pytest.raises(Unprocessable, match="needs Task.status 'completed', not 'accepted'"):
        state_of(task("accepted", "referred-back"), RULES.workflow)
    with pytest.raises(Unprocessable, match="'on-hold' is not a state"):
        state_of(task("on-hold"), RULES.workflow)
    with pytest.raises(Unprocessable, match="'lost' is not a referral state"):
        state_of(task("accepted", "lost"), RULES.workflow)


def test_deductibles_are_exact_and_follow_the_direction() -> None:
    rules = RULES.deductibles
    up = dd.compute("FNYLWSY", "FNXRMYY", "一级", "三级", rules)
    assert (up.direction, up.due, up.rule) == ("upward", Decimal("600.00"), "difference")
    down = dd.compute("FNXRMYY", "FNYLWSY", "三级", "一级", rules)
    assert (down.direction, down.due) == ("downward", Decimal("0.00"))
    assert dd.compute("A", "B", "二级", "二级", rules).due == Decimal("0.00")
    unknown = dd.compute("A", "B", None, "三级", rules)
    assert unknown.direction == "unknown" and unknown.due is None


def test_a_site_replaces_the_files_and_a_mistake_names_file_and_field(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "referral").mkdir(parents=True)
    text = (SHIPPED / "deductibles.yaml").read_text("utf-8")
    (site / "referral" / "deductibles.yaml").write_text(
        text.replace("institutions: {}", 'institutions: {FNXRMYY: "1000.50"}'), "utf-8")
    rules = load(site)
    assert dd.compute("FNYLWSY", "FNXRMYY", "一级", "三级", rules.deductibles).due == Decimal("800.50")
    (site / "referral" / "deductibles.yaml").write_text(text.replace('三级: "800.00"', '三级: "eight"'), "utf-8")
    with pytest.raises(SiteError, match=r"deductibles.yaml:\d+: grades.三级"):
        load(site)
    flow = (SHIPPED / "workflow.yaml").read_text("utf-8")
    (site / "referral" / "deductibles.yaml").unlink()
    (site / "referral" / "workflow.yaml").write_text(flow.replace("arrived: [completed]", "arrived: [discharged]"),
                                                     "utf-8")
    with pytest.raises(SiteError, match="transitions.arrived: 'discharged' is not one of the states"):
        load(site)


def test_a_writer_that_only_states_task_status_moves_the_referral() -> None:
    """An HL7 RRI changes Task.status; the merge rules keep the stored businessStatus it does not
    state. That stale businessStatus does not stand against the new status, in either version."""
    wf = RULES.workflow
    requested = task("requested", "requested")
    accepted_by_hl7 = task("accepted", "requested")  # status moved on, businessStatus left behind
    assert check_transition(requested, accepted_by_hl7, wf).name == "accepted"
    assert check_transition(accepted_by_hl7, task("in-progress", "arrived"), wf).name == "arrived"
    with pytest.raises(Conflict, match="from arrived to rejected"):
        check_transition(task("in-progress", "arrived"), task("rejected", "arrived"), wf)
