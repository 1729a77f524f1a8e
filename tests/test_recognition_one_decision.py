"""A test's members stored in a row are decided once: a liver panel report and its ALT and AST
observations are one test (institution, person, item, day), and the write hook used to decide its
flag again after each of them was indexed. Real HL7 over MLLP; the decisions are counted on the
real hook, and what they decide (the ACK warning, the flag, its DetectedIssue) is checked whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.recognition.service import Recognition
from engine.settings import Settings
from tests.test_recognition_e2e import LFT, WANG, A, Sender, msh, order, pid


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)) as eng:
        yield eng


def panel(placer: str, when: str) -> str:
    """A liver panel report with two of its analytes (both LFT analytes in ``items.yaml``)."""
    return (msh(A, "LIS", "ORU^R01^ORU_R01", when, f"{A}-ORU-{placer}") + pid(A, WANG, "ZY1")
            + f"ORC|RE|{placer}^HIS|F{placer}^LIS||CM\n"
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{LFT[A]}|||{when}|||||||||D1^医^生||||||{when}|||F\n"
            + f"OBX|1|NM|ALT^丙氨酸氨基转移酶^L||25|U/L|9-50|N|||F|||{when}\n"
            + f"OBX|2|NM|AST^天门冬氨酸氨基转移酶^L||22|U/L|15-40|N|||F|||{when}\n")


def test_a_panel_and_its_analytes_are_decided_once_per_message(
        engine: Engine, mllp: int, monkeypatch: pytest.MonkeyPatch) -> None:
    decided: list[str] = []
    real = Recognition._evaluate_flag

    def counted(self: Recognition, member: dict) -> list:
        decided.append(member["_id"].split("/", 1)[0])
        return real(self, member)

    monkeypatch.setattr(Recognition, "_evaluate_flag", counted)
    hl7 = Sender(mllp)
    hl7.send(order(A, WANG, "ZY1", "A-1", LFT[A], "20260310080000"))
    assert "DetectedIssue" not in hl7.send(panel("A-1", "20260310093000"))
    assert len(decided) == 1, decided  # report, ALT and AST: one test, one decision

    decided.clear()
    hl7.send(order(A, WANG, "ZY1", "A-2", LFT[A], "20260312080000"))
    ack = hl7.send(panel("A-2", "20260312093000"))
    assert len(decided) == 1, decided
    assert ack.count("Suspected duplicate test, not payable") == 1, ack  # the warning once
    flags = [i for i in engine.repository.search("DetectedIssue", [("_count", "100")]).resources
             if i["code"]["coding"][0]["code"] == "duplicate-test"]
    assert len(flags) == 1
    assert len(engine.repository.history("DetectedIssue", flags[0]["id"])) == 1
    flag = engine.recognition.flag(flags[0]["id"])
    assert flag is not None and flag.item == "LFT" and flag.status == "flagged"
