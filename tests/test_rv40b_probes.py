"""rv40b (fortieth round review): probes of sfix39 (e75cec51) and c63bd673 (``merge_rules._numbered``) on
result and report status -- real ORU^R01 over MLLP into the real store on each backend, the recognition
row (互认: payable or not) read after each step. One community a module and backend (``module_store.module_community``), each test's scenario under
names of its own (``tests.module_store.Names``: its resident, record, order and control numbers), its own row read
(suite44b: each test had opened a community and an MLLP listener of its own)."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id
from tests.module_store import NamedSender, Names, names  # noqa: F401 -- a fixture
from tests.module_store import engine_mllp as mllp  # noqa: F401 -- a fixture
from tests.module_store import module_community as engine  # noqa: F401 -- a fixture
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts


def flags(eng: Engine, names: Names) -> list[dict]:
    """The recognition rows of this test's records."""
    return names.rows(eng, eng.recognition.flags.find({}))


def flag_of(eng: Engine, names: Names, inst: str = "HOSPB") -> str | None:
    """The status of the row of this test's repeat at ``inst`` (at most one), or None."""
    found = [f for f in flags(eng, names) if f["inst"] == inst]
    assert len(found) <= 1, found
    return found[0]["status"] if found else None


def lab(obx11: str, obr25: str, value: str, when: str, control: str, *, inst: str = "HOSPA", placer: str = "A1",
        obx: str = "") -> str:
    """``inst``'s blood count result (OBX-11 ``obx11``, OBR-25 ``obr25``, OBX-5 ``value``), MSH-7 and the
    observation time ``when``, MSH-10 ``control``."""
    rows = obx or f"OBX|1|NM|WBC^白细胞^L||{value}|10*9/L|||||{obx11}|||{when}\n"
    return (msh(inst, "LIS", "ORU^R01^ORU_R01", when, control) + pid(inst)
            + f"ORC|RE|{placer}^HIS|F{placer}^LIS||CM\n"
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||{obr25}\n"
            + rows)


def prior_report(eng: Engine, names: Names, control: str) -> dict:
    doc = eng.ingestor.messages.get(message_id("HOSPA", names.control(control)))
    assert doc is not None, control
    (ref,) = [r for r in doc["resources"] if r.startswith("DiagnosticReport/")]
    return eng.repository.read("DiagnosticReport", ref.split("/")[1])


def prior_result(eng: Engine, names: Names, control: str) -> dict:
    doc = eng.ingestor.messages.get(message_id("HOSPA", names.control(control)))
    assert doc is not None, control
    (ref,) = [r for r in doc["resources"] if r.startswith("Observation/")]
    return eng.repository.read("Observation", ref.split("/")[1])


def repeat_at_b(hl7: NamedSender) -> None:
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(lab("F", "F", "6.0", ts(1, 10), "B-F", inst="HOSPB", placer="B1"))


def test_p_f_c_w_c_flag_follows_each_step(engine: Engine, mllp: int, names: Names) -> None:
    """HOSPA's P, F, C, W, C (each an hour later); HOSPB's repeat after the F. The flag (not payable) stands
    while HOSPA's result is final or corrected, goes void at the W, and comes back with the C after it."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(lab("P", "P", "6.0", ts(5, 9), "A-P"))
    hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    repeat_at_b(hl7)
    assert flag_of(engine, names) == "flagged", flags(engine, names)
    hl7.send(lab("C", "C", "6.2", ts(5, 11), "A-C1"))
    assert prior_report(engine, names, "A-F")["status"] == "corrected"
    assert flag_of(engine, names) == "flagged", flags(engine, names)
    hl7.send(lab("W", "C", "6.2", ts(5, 12), "A-W"))
    assert prior_report(engine, names, "A-F")["status"] == "entered-in-error"
    assert flag_of(engine, names) == "void", flags(engine, names)
    hl7.send(lab("C", "C", "6.3", ts(5, 13), "A-C2"))
    assert prior_result(engine, names, "A-F")["status"] == "corrected"
    assert prior_report(engine, names, "A-F")["status"] == "corrected"
    assert flag_of(engine, names) == "flagged", flags(engine, names)


@pytest.mark.parametrize("obr25", ["C", "X", "P", "F", ""])
def test_x_after_a_correction_voids_the_flag(engine: Engine, mllp: int, names: Names, obr25: str) -> None:
    """F, C, then X (cannot be obtained, no value): the report is cancelled, no recognisable prior."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    repeat_at_b(hl7)
    hl7.send(lab("C", "C", "6.2", ts(5, 11), "A-C1"))
    assert flag_of(engine, names) == "flagged", flags(engine, names)
    hl7.send(lab("X", obr25, "", ts(5, 12), "A-X"))
    assert prior_result(engine, names, "A-F")["status"] == "cancelled", prior_result(engine, names, "A-F")
    assert "valueQuantity" not in prior_result(engine, names, "A-F")
    assert prior_report(engine, names, "A-F")["status"] == "cancelled"
    assert flag_of(engine, names) == "void", flags(engine, names)


def test_d_deletes_the_result_and_voids_the_flag(engine: Engine, mllp: int, names: Names) -> None:
    """OBX-11 D (table 0085: "deletes the OBX record") after the final: the result is the lab's no more --
    no recognisable prior stands, so the flag must not stay "not payable"."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    repeat_at_b(hl7)
    assert flag_of(engine, names) == "flagged", flags(engine, names)
    ack = hl7.send(lab("D", "C", "", ts(5, 12), "A-D"))
    assert prior_result(engine, names, "A-F")["status"] == "entered-in-error", (prior_result(engine, names, "A-F"), ack)
    assert flag_of(engine, names) == "void", flags(engine, names)


def test_an_older_p_arriving_after_the_final_keeps_the_flag(
        engine: Engine, mllp: int, names: Names) -> None:
    """The F of 10:00 arrives first, then the P of 09:00 (older MSH-7, delivered late): the report stays
    final, the value 6.1, and the flag stands."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    repeat_at_b(hl7)
    hl7.send(lab("P", "P", "5.0", ts(5, 9), "A-P"))
    assert prior_report(engine, names, "A-F")["status"] == "final"
    assert prior_result(engine, names, "A-F")["valueQuantity"]["value"] == 6.1
    assert flag_of(engine, names) == "flagged", flags(engine, names)


def test_a_w_in_the_same_second_as_the_final_arriving_after_it_withdraws(
        engine: Engine, mllp: int, names: Names) -> None:
    """F and W with one MSH-7 (the LIS withdrew within the second): arriving after the final, the W is the
    later statement -- the result withdrawn, the flag void."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    repeat_at_b(hl7)
    ack = hl7.send(lab("W", "C", "6.1", ts(5, 10), "A-W"))
    assert prior_result(engine, names, "A-F")["status"] == "entered-in-error", (prior_result(engine, names, "A-F"), ack)
    assert flag_of(engine, names) == "void", flags(engine, names)


def test_an_f_in_the_same_second_as_the_w_arriving_after_it(
        engine: Engine, mllp: int, names: Names) -> None:
    """W then F, one MSH-7 (the same second): the F arrives last. Which stands -- the record must at least
    agree with the flag: a withdrawn result flags no repeat; a final one does."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(lab("F", "F", "6.1", ts(5, 9), "A-F0"))
    repeat_at_b(hl7)
    hl7.send(lab("W", "C", "6.1", ts(5, 10), "A-W"))
    ack = hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    status = prior_result(engine, names, "A-F0")["status"]
    report = prior_report(engine, names, "A-F0")["status"]
    expected = "flagged" if report in ("final", "corrected", "amended") else "void"
    assert flag_of(engine, names) == expected, (status, report, flags(engine, names), ack)


def test_a_resent_withdrawal_under_another_control_id_keeps_the_flag_void(
        engine: Engine, mllp: int, names: Names) -> None:
    """The W re-sent identically under another MSH-10 (the LIS's retry): nothing changes, the flag stays void;
    the same MSH-10 again is a duplicate."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    repeat_at_b(hl7)
    hl7.send(lab("W", "C", "6.1", ts(5, 12), "A-W"))
    assert flag_of(engine, names) == "void", flags(engine, names)
    hl7.send(lab("W", "C", "6.1", ts(5, 12), "A-W"))
    hl7.send(lab("W", "C", "6.1", ts(5, 12), "A-W2"))
    assert prior_report(engine, names, "A-F")["status"] == "entered-in-error"
    assert flag_of(engine, names) == "void", flags(engine, names)


def test_a_correction_with_the_value_unchanged_keeps_the_flag(
        engine: Engine, mllp: int, names: Names) -> None:
    """F 6.1, then C 6.1 (the same value, the lab corrected something else): corrected, the flag stands."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    repeat_at_b(hl7)
    hl7.send(lab("C", "C", "6.1", ts(5, 11), "A-C"))
    assert prior_result(engine, names, "A-F")["status"] == "corrected"
    assert prior_report(engine, names, "A-F")["status"] == "corrected"
    assert flag_of(engine, names) == "flagged", flags(engine, names)


def two_groups(s1: str, r1: str, s2: str, r2: str, when: str, control: str) -> str:
    """HOSPA's blood count in two OBR groups under one placer and filler number: WBC (OBX-11 ``s1``, OBR-25
    ``r1``) and HGB (``s2``, OBR-25 ``r2``) -- as an LIS splits one tube's panel by analyser."""
    obr = f"OBR|{{n}}|A1^HIS|FA1^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||{{r}}\n"
    return (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, control) + pid("HOSPA")
            + "ORC|RE|A1^HIS|FA1^LIS||CM\n" + obr.format(n=1, r=r1)
            + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||{s1}|||{when}\n" + obr.format(n=2, r=r2)
            + f"OBX|1|NM|HGB^血红蛋白^L||135|g/L|||||{s2}|||{when}\n")


def test_two_groups_both_withdrawn_under_mixed_obr25_void_the_flag(
        engine: Engine, mllp: int, names: Names) -> None:
    """F of both groups; HOSPB repeats; then W of both under OBR-25 C (group 1) and F (group 2): no result
    of the report stands -- entered-in-error, the flag void."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(two_groups("F", "F", "F", "F", ts(5, 10), "A-F"))
    repeat_at_b(hl7)
    assert flag_of(engine, names) == "flagged", flags(engine, names)
    ack = hl7.send(two_groups("W", "C", "W", "F", ts(5, 12), "A-W"))
    assert prior_report(engine, names, "A-F")["status"] == "entered-in-error", ack
    assert flag_of(engine, names) == "void", flags(engine, names)


def test_two_groups_first_met_withdrawn_flag_no_repeat(engine: Engine, mllp: int, names: Names) -> None:
    """The first result message huren meets is the W of both groups, one under OBR-25 F, one under C: the
    report is no final (``_withdrawn_first``), and HOSPB's repeat is not flagged against it."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    ack = hl7.send(two_groups("W", "F", "W", "C", ts(5, 12), "A-W"))
    assert prior_report(engine, names, "A-W")["status"] not in ("final", "corrected", "amended"), ack
    repeat_at_b(hl7)
    assert flag_of(engine, names) in (None, "void"), flags(engine, names)


def test_one_group_withdrawn_one_corrected_keeps_the_flag(engine: Engine, mllp: int, names: Names) -> None:
    """F of both groups; then WBC W (OBR-25 C) beside HGB C (OBR-25 C): HGB stands corrected, the report is
    corrected, still a recognisable prior of the panel: the flag stands (the rule stat39 set)."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(two_groups("F", "F", "F", "F", ts(5, 10), "A-F"))
    repeat_at_b(hl7)
    ack = hl7.send(two_groups("W", "C", "C", "C", ts(5, 12), "A-W"))
    assert prior_report(engine, names, "A-F")["status"] == "corrected", ack
    assert flag_of(engine, names) == "flagged", flags(engine, names)


def test_the_final_resent_under_another_control_id_after_the_w_restores_no_flag(
        engine: Engine, mllp: int, names: Names) -> None:
    """F at 10:00, W at 12:00; the LIS's queue re-sends the 10:00 F (the same bytes but MSH-10): older than
    the withdrawal, it does not bring the result back -- the flag stays void. The same MSH-10: a duplicate."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    repeat_at_b(hl7)
    hl7.send(lab("W", "C", "6.1", ts(5, 12), "A-W"))
    assert flag_of(engine, names) == "void", flags(engine, names)
    hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    ack = hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F-RESENT"))
    assert prior_result(engine, names, "A-F")["status"] == "entered-in-error", ack
    assert prior_report(engine, names, "A-F")["status"] == "entered-in-error", ack
    assert flag_of(engine, names) == "void", flags(engine, names)


@pytest.mark.parametrize("obr25", ["P", "C"])
def test_an_older_correction_after_the_withdrawal_restores_no_flag(
        engine: Engine, mllp: int, names: Names, obr25: str) -> None:
    """F at 10:00, W at 12:00; a C stamped 11:00 (under OBR-25 ``obr25``) arrives after the W: in MSH-7 order
    the withdrawal is the lab's last word, so the result and report stay withdrawn and the flag void."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    repeat_at_b(hl7)
    hl7.send(lab("W", "C", "6.1", ts(5, 12), "A-W"))
    ack = hl7.send(lab("C", obr25, "6.3", ts(5, 11), "A-C"))
    assert prior_result(engine, names, "A-F")["status"] == "entered-in-error", ack
    assert prior_report(engine, names, "A-F")["status"] == "entered-in-error", ack
    assert flag_of(engine, names) == "void", flags(engine, names)


def test_a_first_met_withdrawal_then_its_older_final_flags_no_repeat(
        engine: Engine, mllp: int, names: Names) -> None:
    """The W of 12:00 (under OBR-25 F) is the first result message huren meets; the F of 10:00 it withdrew
    arrives after it (released late): in MSH-7 order the W is the lab's last word -- the report is no final,
    and HOSPB's repeat is not flagged against it."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(lab("W", "F", "6.1", ts(5, 12), "A-W"))
    ack = hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    assert prior_result(engine, names, "A-W")["status"] == "entered-in-error", ack
    assert prior_report(engine, names, "A-W")["status"] not in ("final", "corrected", "amended"), ack
    repeat_at_b(hl7)
    assert flag_of(engine, names) in (None, "void"), flags(engine, names)


def test_a_clients_version_between_the_final_and_the_w_leaves_the_flag_to_the_w(
        engine: Engine, mllp: int, names: Names) -> None:
    """F; a FHIR client adds a note to HOSPA's result (PUT); the W: withdrawn, the flag void; then the C:
    corrected, the flag back."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    repeat_at_b(hl7)
    result = prior_result(engine, names, "A-F")
    result.setdefault("note", []).append({"text": "已电话通知"})
    with TestClient(create_app(engine)) as http:
        token = engine.auth.issue_system_token("rv40b-nurse", "system/*.cruds")
        put = http.put(f"/fhir/Observation/{result['id']}", json=result,
                       headers={"Authorization": f"Bearer {token}"})
        assert put.status_code == 200, put.text
    hl7.send(lab("W", "C", "6.1", ts(5, 12), "A-W"))
    assert prior_report(engine, names, "A-F")["status"] == "entered-in-error"
    assert flag_of(engine, names) == "void", flags(engine, names)
    hl7.send(lab("C", "C", "6.3", ts(5, 13), "A-C"))
    assert prior_report(engine, names, "A-F")["status"] == "corrected"
    assert flag_of(engine, names) == "flagged", flags(engine, names)


@pytest.mark.parametrize(("obx11", "obr25"), [("X", "F"), ("D", "F"), ("D", "C"), ("X", "")])
def test_a_first_met_cancellation_or_deletion_flags_no_repeat(
        engine: Engine, mllp: int, names: Names, obx11: str, obr25: str) -> None:
    """The first result message huren meets of HOSPA's blood count states OBX-11 ``obx11`` (X: cannot be
    obtained; D: deletes the OBX record) under OBR-25 ``obr25``: no result stands, so the report is no final
    and HOSPB's repeat is not flagged against it."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    ack = hl7.send(lab(obx11, obr25, "", ts(5, 12), "A-1"))
    assert prior_report(engine, names, "A-1")["status"] not in ("final", "corrected", "amended"), ack
    repeat_at_b(hl7)
    assert flag_of(engine, names) in (None, "void"), flags(engine, names)


@pytest.mark.parametrize("obr25", ["F", "C"])
def test_a_correction_under_a_done_obr25_after_the_w_brings_the_flag_back(
        engine: Engine, mllp: int, names: Names, obr25: str) -> None:
    """F, W, then the re-measured C 6.3 under OBR-25 ``obr25`` (an LIS sends its corrections under F too):
    the result is corrected, the report a recognisable prior again -- the flag comes back."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    repeat_at_b(hl7)
    hl7.send(lab("W", "C", "6.1", ts(5, 12), "A-W"))
    assert flag_of(engine, names) == "void", flags(engine, names)
    ack = hl7.send(lab("C", obr25, "6.3", ts(5, 13), "A-C"))
    assert prior_result(engine, names, "A-F")["status"] == "corrected", ack
    assert prior_report(engine, names, "A-F")["status"] in ("corrected", "final"), ack
    assert flag_of(engine, names) == "flagged", flags(engine, names)


def test_an_older_w_after_the_final_leaves_the_flag(engine: Engine, mllp: int, names: Names) -> None:
    """F at 10:00 arrives; then a W stamped 09:00 (older: it withdrew an earlier statement, delivered late):
    in MSH-7 order the F is the lab's last word -- final, the flag stands."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(lab("F", "F", "6.1", ts(5, 10), "A-F"))
    repeat_at_b(hl7)
    ack = hl7.send(lab("W", "C", "6.1", ts(5, 9), "A-W"))
    assert prior_result(engine, names, "A-F")["status"] == "final", ack
    assert prior_report(engine, names, "A-F")["status"] == "final", ack
    assert flag_of(engine, names) == "flagged", flags(engine, names)
