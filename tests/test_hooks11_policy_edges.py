"""The payment policy of DOMAIN.md at its edges, end to end over a real MLLP socket.

HOSPA (三级), HOSPB (二级) and HOSPC (一级) are one medical community with QC passed for every
item. Each test sends orders and results as HL7 v2 and reads the flags the hook stored: windows
at their last day and one past it, the reasons (emergency R04, self-pay R05/R07, R08 against the
prior's age), a grade that makes recognition optional, a prior result entered in error or
corrected after the repeat was flagged, and a flag an auditor overturned that a later copy of
the result must not reopen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from tests.conftest import running_mllp
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import (
    CBC,
    DECLARED_INSTITUTIONS,
    WANG,
    community_engine,
    msh,
    order,
    pid,
    ts,
)

REPO = Path(__file__).resolve().parent.parent
LI = "320923198809030023"  # 李秀英, F, 1988-09-03


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from community_engine(tmp_path)


def result(inst: str, placer: str, item: str, when: str, status: str = "F", control: str = "") -> str:
    """A result message: OBR-25 and OBX-11 carry ``status`` (F final, C corrected, W/X withdrawn)."""
    obr25 = {"W": "X"}.get(status, status)
    return (msh(inst, "LIS", "ORU^R01^ORU_R01", when, f"{inst}-ORU-{placer}-{status}{control}") + pid(inst)
            + f"ORC|RE|{placer}^HIS|F{placer}^LIS||CM\n"
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{item}|||{when}|||||||||D7^张^医生||||||{when}|||{obr25}\n"
            + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||{status}|||{when}\n")


def flags(engine: Engine) -> list[dict]:
    return list(engine.recognition.flags.find({}))


def row_of(engine: Engine, inst: str) -> dict | None:
    """The flag row of the test ``inst`` repeated (the one repeat of each test here), or None."""
    found = [f for f in flags(engine) if f["inst"] == inst]
    assert len(found) <= 1, found
    return found[0] if found else None


def flag_of(engine: Engine, inst: str = "HOSPB") -> str | None:
    row = row_of(engine, inst)
    return row["status"] if row else None


def issue_status(engine: Engine, inst: str = "HOSPB") -> str:
    row = row_of(engine, inst)
    assert row is not None
    return engine.repository.read("DetectedIssue", row["_id"])["status"]


def repeat(hl7: Sender, prior_days: int, repeat_days: int, item: str = CBC, reason: str = "",
           prior_inst: str = "HOSPA", inst: str = "HOSPB") -> None:
    """HOSPA's result ``prior_days`` ago, then HOSPB's order and result ``repeat_days`` ago."""
    hl7.send(order(prior_inst, "A1", item, ts(prior_days)))
    hl7.send(result(prior_inst, "A1", item, ts(prior_days, 10)))
    hl7.send(order(inst, "B1", item, ts(repeat_days), reason=reason))
    hl7.send(result(inst, "B1", item, ts(repeat_days, 10)))


@pytest.mark.parametrize(("gap", "expected"), [(7, "flagged"), (8, None)])
def test_the_window_ends_on_its_last_day(engine: Engine, mllp: int, gap: int, expected: str | None) -> None:
    repeat(Sender(mllp), prior_days=gap + 1, repeat_days=1)  # CBC: 7 days
    assert flag_of(engine) in (expected, *(("void",) if expected is None else ()))


@pytest.mark.parametrize(("reason", "expected"), [
    ("R04^急诊急救^urn:huren:recognition-reason", "justified"),
    ("R05^伤残鉴定^urn:huren:recognition-reason", "self_pay"),
    ("R07^家属要求^urn:huren:recognition-reason", "self_pay"),
    ("R06^^urn:huren:recognition-reason", "flagged"),  # R06 needs its text
    ("R06^复查^urn:huren:recognition-reason", "justified"),
    ("R09^质控不合格^urn:huren:recognition-reason", "flagged"),  # QC passed: contradicted
])
def test_reasons_at_order_time(engine: Engine, mllp: int, reason: str, expected: str) -> None:
    repeat(Sender(mllp), prior_days=5, repeat_days=1, reason=reason)
    assert flag_of(engine) == expected


@pytest.mark.parametrize(("prior_days", "expected"), [(4, "flagged"), (5, "justified")])
def test_r08_is_payable_only_past_half_the_window(engine: Engine, mllp: int, prior_days: int, expected: str) -> None:
    """CBC's window is 7 days: R08 counts when the prior is older than 3.5 days at order time."""
    repeat(Sender(mllp), prior_days=prior_days, repeat_days=1,
           reason="R08^结果过久^urn:huren:recognition-reason")
    row = row_of(engine, "HOSPB")
    assert row is not None and row["status"] == expected, row
    if expected == "flagged":
        assert (row["contradicted"] or "").startswith("reason contradicted by records"), row


@pytest.mark.parametrize(("prior_inst", "inst", "status", "basis"), [
    ("HOSPC", "HOSPA", "reported", "optional"),  # 三级 need not recognise 一级 for this item
    ("HOSPA", "HOSPC", "flagged", "community"),  # 一级 must recognise 三级
    ("HOSPB", "HOSPA", "flagged", "community"),
])
def test_grades_decide_whether_recognition_is_mandatory(engine: Engine, mllp: int, prior_inst: str, inst: str,
                                                        status: str, basis: str) -> None:
    """The site's policy makes a 三级 hospital's recognition of a 一级 centre's blood count optional
    (as the shipped policy does for CT and MR): that repeat is reported, nothing at stake."""
    policy = (REPO / "mappings" / "recognition" / "policy.yaml").read_text("utf-8")
    assert "  items:\n" in policy
    folder = Path(engine.settings.site) / "recognition"
    folder.mkdir(exist_ok=True)
    (folder / "policy.yaml").write_text(policy.replace("  items:\n", "  items:\n    CBC: {三级: [三级, 二级]}\n"), "utf-8")
    engine.recognition.reload()
    repeat(Sender(mllp), prior_days=5, repeat_days=1, prior_inst=prior_inst, inst=inst)
    row = row_of(engine, inst)
    assert row is not None and (row["status"], row["basis"]) == (status, basis), row


def test_a_prior_entered_in_error_after_the_flag_voids_it(engine: Engine, mllp: int) -> None:
    """The flag rests on the prior result: when the prior is withdrawn, the repeat repeated nothing."""
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1)
    assert flag_of(engine) == "flagged"
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="W"))
    assert flag_of(engine) == "void", flags(engine)
    assert issue_status(engine) == "cancelled"
    # and the order's check no longer counts the repeat as a duplicate
    [check] = [c for c in engine.recognition.checks.find({}) if c["inst"] == "HOSPB"]
    assert check["outcome"] != "duplicate", check


def test_a_prior_corrected_after_the_flag_keeps_it(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1)
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="C"))
    assert flag_of(engine) == "flagged"


def test_a_prior_withdrawn_then_sent_again_flags_again(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1)
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="W"))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="C"))
    assert flag_of(engine) == "flagged", flags(engine)


def test_an_overturned_flag_stays_overturned_when_the_result_comes_again(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1)
    row = row_of(engine, "HOSPB")
    assert row is not None
    engine.recognition.review(row["_id"], "overturned", "clinically needed", "auditor")
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10), status="C"))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="C"))
    assert flag_of(engine) == "overturned"
    assert issue_status(engine) == "cancelled"


def test_an_overturned_flag_stays_overturned_when_its_prior_is_withdrawn_and_sent_again(engine: Engine, mllp: int
                                                                                        ) -> None:
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1)
    row = row_of(engine, "HOSPB")
    assert row is not None
    engine.recognition.review(row["_id"], "overturned", "clinically needed", "auditor")
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="W"))
    assert flag_of(engine) == "void"
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="C"))
    assert flag_of(engine) == "overturned"
    assert issue_status(engine) == "cancelled"


def test_a_corrected_id_number_moves_the_flag_to_the_right_person(engine: Engine, mllp: int) -> None:
    """HOSPB typed 王建国's ID number on 李秀英's record; her blood count was flagged as a repeat of
    his. HOSPB corrects the number (ADT^A08): the flag against his result is voided."""
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1)
    assert flag_of(engine) == "flagged"
    hl7.send(msh("HOSPB", "HIS", "ADT^A08^ADT_A01", ts(0), "HOSPB-A08-1") + f"EVN|A08|{ts(0)}\n"
             + f"PID|1||{LI}^^^公安部^NNCHN~MRN-HOSPB^^^HOSPB^MR||李^秀英||19880903|F\n" + "PV1|1|O\n")
    [entry] = [e for e in engine.recognition.index.coll.find({}) if e["inst"] == "HOSPB"]
    assert entry["person"] == LI
    assert [f["status"] for f in flags(engine)] == ["void"], flags(engine)
    assert issue_status(engine) == "cancelled"


@pytest.fixture
def declared_engine(tmp_path: Path) -> Iterator[Engine]:
    """The community with each hospital's HIS declared its registration application (``DECLARED_INSTITUTIONS``): the
    HIS's correction of a record's ID number onto the number the person's record at another hospital holds is the
    registrar's word (on a site declaring none it is held for the operator: decl42). The files of ID-number
    corrections bind it as their ``engine`` (``from tests.test_hooks11_policy_edges import declared_engine as engine``)."""
    yield from community_engine(tmp_path, DECLARED_INSTITUTIONS)


def test_a_corrected_id_number_flags_a_repeat_of_the_right_persons_result(declared_engine: Engine) -> None:
    """The other way round: 王建国's HOSPB record carried a mistyped number; corrected by HOSPB's HIS (declared its
    registration application), his repeat of his own HOSPA blood count is flagged."""
    engine = declared_engine
    with running_mllp(engine) as mllp:
        hl7 = Sender(mllp)
        hl7.send(order("HOSPA", "A1", CBC, ts(5)))
        hl7.send(result("HOSPA", "A1", CBC, ts(5, 10)))
        wrong = pid("HOSPB").replace(WANG, LI).replace("19850412|M", "19880903|F")
        for text in (order("HOSPB", "B1", CBC, ts(1)), result("HOSPB", "B1", CBC, ts(1, 10))):
            hl7.send(text.replace(pid("HOSPB"), wrong))
        assert flag_of(engine) is None
        hl7.send(msh("HOSPB", "HIS", "ADT^A08^ADT_A01", ts(0), "HOSPB-A08-1") + f"EVN|A08|{ts(0)}\n"
                 + pid("HOSPB") + "PV1|1|O\n")
        assert flag_of(engine) == "flagged", flags(engine)


def test_a_repeat_entered_in_error_is_no_retest_in_the_rate(engine: Engine, mllp: int) -> None:
    """HOSPB's repeat is withdrawn (OBR-25 X, OBX-11 W): its flag is voided and its order, which
    no valid result answers any more, is pending again -- not a re-test counted against HOSPB's
    recognition rate. Sent again final, it is a duplicate again."""
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1)
    [check] = [c for c in engine.recognition.checks.find({}) if c["inst"] == "HOSPB"]
    assert check["outcome"] == "duplicate"
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10), status="W"))
    assert flag_of(engine) == "void"
    [check] = [c for c in engine.recognition.checks.find({}) if c["inst"] == "HOSPB"]
    assert check["outcome"] == "pending", check
    tallies = {t["outcome"]: t["count"] for t in engine.recognition.check_days.find({}) if t["inst"] == "HOSPB"}
    assert tallies.get("duplicate", 0) == 0 and tallies.get("pending") == 1, tallies
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10), status="C"))
    assert flag_of(engine) == "flagged"
    [check] = [c for c in engine.recognition.checks.find({}) if c["inst"] == "HOSPB"]
    assert check["outcome"] == "duplicate", check

