"""Review of convperf29 (twenty-ninth round, rvconvperf29): what a performer met once costs.

convperf29 keys a compiled plan by its performer's content (``plans._performer_key``), since
recognition answers a planned result by its plan. The plan itself does not depend on the performer
(the performer is a hole, ``plans.PERFORMER``: the generated function takes it as an argument), yet
each new performer makes new plans: the first result of each description naming it is converted the
general way AND compiled (``plans._generate``: Python source built and ``compile``d). A feed whose
OBX-23 names a lab met once (a regional hub's many reference labs, a name typed per result) pays a
compile per result: measured 2,398 us/message against bd6a96da's 1,051 (a 12-OBX panel of 4
descriptions, 300 messages each naming another lab), and every 4,096 of them the site's whole plan
table (the sender's own plans too) is cleared (``_PLANS_LIMIT``). Only the recognition answer needs
the performer; a coded answer is planned the second time it comes for the same reason.

Real HL7 bytes through the real converter (``adapters.convert.convert``); the count is of the
plans the converter compiles. Fails on bd89d024.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.convert import convert, plans
from adapters.hl7v2.parser import parse
from engine.settings import Settings
from mappings.site import Site

TESTS = [("WBC", "白细胞计数", "6.20", "10*9/L", "3.5-9.5"), ("RBC", "红细胞计数", "4.8", "10*12/L", "4.3-5.8"),
         ("HGB", "血红蛋白", "135", "g/L", "130-175"), ("PLT", "血小板计数", "210", "10*9/L", "125-350")]


def message(n: int, obx23: str) -> str:
    obx = "".join(f"OBX|{i}|NM|{code}^{name}^L||{value}|{unit}|{rng}|N|||F|||2026110109{n % 60:02d}00"
                  + ("|" * 9 + obx23 if obx23 else "") + "\r"
                  for i, (code, name, value, unit, rng) in enumerate(TESTS, 1))
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORU^R01^ORU_R01|RC-{n:06d}|P|2.5.1\r"
            f"PID|1||320923198001010011^^^^NNCHN~MRN{n:06d}^^^FNXRMYY^MR||张^三||19800101|M\r"
            f"PV1|1|O|内科门诊^^^FNXRMYY||||D001^李^医生\rORC|RE|ORD{n:06d}|LAB{n:06d}\r"
            f"OBR|1|ORD{n:06d}|LAB{n:06d}|XCG^血常规^L|||20261101083000|||||||||D001^李^医生||||||"
            f"20261101091000|||F\r" + obx)


def test_a_lab_met_once_compiles_no_plan_per_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LOW (speed). The panel's four descriptions are known (from the sender's own results, and
    from one lab's twice); then 20 messages, each naming a lab never met before: the plans compiled
    for them should not grow with the number of labs (at most one per description). bd89d024
    compiles 4 per message (80)."""
    site = Site.load(Settings(data_dir=tmp_path / "var"))
    for n in (1, 2):
        convert(parse(message(n, "")), site)
        convert(parse(message(10 + n, "金域^^^^^^^^^JY001")), site)
    compiled: list[int] = []
    generate = plans._generate

    def counted(items: tuple[tuple[str, int, object], ...]) -> object:
        compiled.append(1)
        return generate(items)

    monkeypatch.setattr(plans, "_generate", counted)  # counts, then compiles as before
    for n in range(20):
        conv = convert(parse(message(100 + n, f"检验所{n}^^^^^^^^^LAB{n:03d}")), site)
        [report] = [r for r in conv.by_reference.values() if r["resourceType"] == "DiagnosticReport"]
        assert len(report["result"]) == len(TESTS)
        assert all(conv.by_reference[r["reference"]]["performer"][0]["identifier"]["value"] == f"FNXRMYY|LAB{n:03d}"
                   for r in report["result"])
    assert len(compiled) <= len(TESTS), f"{len(compiled)} plans compiled for 20 labs met once"
