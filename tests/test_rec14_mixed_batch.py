"""A mixed ingest batch decides exactly as the same messages one at a time.

The recognition hook reads what a batch will ask in a few queries (``Recognition._preview``: the
orders' check rows, the other orders of each test, the index windows back and on, the check rows
of the orders each result may be the prior of) and remembers what it writes until the batch
ends. Three people, three items (a blood count, a liver panel, a single ALT: an analyte of the
panel), priors inside and outside their windows, a repeat whose prior arrives after it, a prior
sent preliminary and then final, two orders of one test on one day, and a withdrawn result, sent
once as one batch and once message by message (SQLite and mongomock): every ACK warning, flag,
check row, tally, index entry, DetectedIssue, patient index row and Patient is the same.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.identity.mpi import KEY_FILE
from engine.settings import Settings
from tests.test_recognition_batch import _state, _warnings
from tests.test_recognition_policy_e2e import ALT, CBC, INSTITUTIONS, LFT, WANG, ts

LI = "320923198809030023"  # 李秀英
ZHAO = "320923197001010017"  # 赵军
# name, birth date and sex as each ID number states them
_PEOPLE = {WANG: "王^建国||19850412|M", LI: "李^秀英||19880903|F", ZHAO: "赵^军||19700101|M"}


def _pid(inst: str, person: str) -> str:
    return f"PID|1||{person}^^^公安部^NNCHN~MRN-{inst}-{person[-4:]}^^^{inst}^MR||{_PEOPLE[person]}\n"


def _msh(inst: str, app: str, kind: str, when: str, control: str) -> str:
    return f"MSH|^~\\&|{app}|{inst}|HUREN|C1|{when}||{kind}|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\n"


def _order(inst: str, person: str, placer: str, item: str, days: int) -> str:
    when = ts(days)
    return (_msh(inst, "HIS", "ORM^O01^ORM_O01", when, f"{inst}-ORM-{placer}") + _pid(inst, person)
            + f"ORC|NW|{placer}^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|1|{placer}^HIS||{item}|||{when}\n")


def _result(inst: str, person: str, placer: str, item: str, days: int, status: str = "F", n: int = 1) -> str:
    when = ts(days, 10)
    return (_msh(inst, "LIS", "ORU^R01^ORU_R01", when, f"{inst}-ORU-{placer}-{status}{n}") + _pid(inst, person)
            + f"ORC|RE|{placer}^HIS|F{placer}^LIS||CM\n"
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{item}|||{when}|||||||||D7^张^医生||||||{when}|||{status}\n"
            + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||{status}|||{when}\n")


def _messages() -> list[str]:
    return [
        # 王建国: a blood count at HOSPA, repeated at HOSPB within 7 days, and at HOSPC past them
        _order("HOSPA", WANG, "A1", CBC, 9), _result("HOSPA", WANG, "A1", CBC, 9),
        _order("HOSPB", WANG, "B1", CBC, 4), _result("HOSPB", WANG, "B1", CBC, 4),
        _order("HOSPC", WANG, "C1", CBC, 20), _result("HOSPC", WANG, "C1", CBC, 20),
        # his liver panel, then a single ALT (one analyte of it) at another member
        _order("HOSPA", WANG, "A2", LFT, 6), _result("HOSPA", WANG, "A2", LFT, 6),
        _order("HOSPC", WANG, "C2", ALT, 2), _result("HOSPC", WANG, "C2", ALT, 2),
        # 李秀英: her repeat first, its prior (dated before it, inside the window) afterwards
        _order("HOSPB", LI, "B3", CBC, 2), _result("HOSPB", LI, "B3", CBC, 2),
        _order("HOSPA", LI, "A3", CBC, 5), _result("HOSPA", LI, "A3", CBC, 5),
        # 赵军: a prior sent preliminary, a repeat decided while it is, then the prior final
        _order("HOSPA", ZHAO, "A4", CBC, 6), _result("HOSPA", ZHAO, "A4", CBC, 6, status="P"),
        _order("HOSPB", ZHAO, "B4", CBC, 3), _result("HOSPB", ZHAO, "B4", CBC, 3),
        _result("HOSPA", ZHAO, "A4", CBC, 6, status="F", n=2),
        # two orders of one test on one day at HOSPB, and one of 王建国's priors withdrawn
        _order("HOSPB", ZHAO, "B5", CBC, 3), _result("HOSPB", ZHAO, "B5", CBC, 3),
        _result("HOSPA", WANG, "A2", LFT, 6, status="W", n=3),
    ]


def _settings(tmp_path: Path, backend: str, name: str) -> Settings:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    settings = Settings(data_dir=tmp_path / name, http_port=0, mllp_port=0, site=site)
    return settings.with_(mongodb_uri="mongomock://") if backend == "mongomock" else settings


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_a_mixed_batch_decides_as_one_message_at_a_time(tmp_path: Path, backend: str) -> None:
    raws = [(text.replace("\n", "\r").encode("utf-8"), "mllp", "t") for text in _messages()]
    with Engine(_settings(tmp_path, backend, "one")) as engine:
        one_by_one = [_warnings(engine.ingestor.process([raw])[0].ack) for raw in raws]
        expected = _state(engine)
    keys = tmp_path / "batch" / "keys"
    keys.mkdir(parents=True)
    shutil.copy(tmp_path / "one" / "keys" / KEY_FILE, keys / KEY_FILE)  # the same persons
    with Engine(_settings(tmp_path, backend, "batch")) as engine:
        outcomes = engine.ingestor.process(raws)
        assert engine.ingestor.stats.redone_batches == 0
        batched, state = [_warnings(o.ack) for o in outcomes], _state(engine)
    # what the scenario is for: each case decided
    by_inst = {(f["person"], f["inst"], f["item"]): f["status"] for f in expected["flags"]}
    assert by_inst.get((WANG, "HOSPB", "CBC")) == "flagged", expected["flags"]
    assert (WANG, "HOSPA", "CBC") not in by_inst  # HOSPC's is 11 days before: outside the window
    assert by_inst.get((LI, "HOSPB", "CBC")) == "flagged", expected["flags"]  # its prior came after it
    assert by_inst.get((ZHAO, "HOSPB", "CBC")) == "flagged", expected["flags"]  # its prior made final
    assert by_inst.get((WANG, "HOSPC", "LFT")) == "void", expected["flags"]  # the panel withdrawn
    assert batched == one_by_one
    assert state == expected
