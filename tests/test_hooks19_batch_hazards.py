"""The cases a write hook run once per ingest batch would get wrong, sent inside one batch: the
batch decides each of them as the same messages sent one by one.

The seventeenth round left the hook per write group because a message's decision reads what a
later message of the same batch changes: the Patient (an ADT^A08 that corrects the ID number its
results were filed under, or gives the record another person's name so that the patient index
leaves it in conflict), the order (cancelled after its reminder), a DetectedIssue (cancelled by
that cancellation). ``tests/test_hooks17_batch_equivalence.py`` sends none of them. Here each is
sent, with the bench's 12-OBX reports between them, three ways: one message per batch (each its
own transaction, as at low load), all in one batch with the hooks' batch scopes, and all in one
batch without the recognition hook's scope (each write group decided with what it reads itself).
Every ACK's MSA and ERR segments, flag, check row, tally, index entry, DetectedIssue, patient
index row and Patient are the same each way, on SQLite and mongomock; and each case is decided
as it is meant to be (else the comparison proves little).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bench.ingest import oru_lab
from engine.engine import Engine
from engine.identity.mpi import KEY_FILE
from engine.settings import Settings
from tests.test_hooks17_batch_equivalence import _LAB_SENDERS
from tests.test_rec14_mixed_batch import _msh
from tests.test_recognition_batch import _state, _warnings
from tests.test_recognition_policy_e2e import CBC, DECLARED_INSTITUTIONS, INSTITUTIONS, ts

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _number(body: str) -> str:
    """A valid 18-character resident ID for a 17-digit body (ISO 7064 MOD 11-2)."""
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


# (number, name, birth date, sex): the number states the birth date and sex
SUN = (_number("32092319900101001"), "孙^立", "19900101", "M")  # HOSPB filed him under QIAN's number
QIAN = (_number("32092319920202002"), "钱^芳", "19920202", "F")
ZHOU = (_number("32092319600303003"), "周^强", "19600303", "M")  # HOSPB's record becomes his son's
WU = (_number("32092319750404004"), "吴^敏", "19750404", "F")  # an order cancelled after its reminder


def _pid(inst: str, who: tuple[str, str, str, str], mrn: str, name: str | None = None) -> str:
    number, their_name, birth, sex = who
    return f"PID|1||{number}^^^公安部^NNCHN~{mrn}^^^{inst}^MR||{name or their_name}||{birth}|{sex}\n"


def _order(inst: str, pid: str, placer: str, days: int, control: str = "NW") -> str:
    when = ts(days)
    return (_msh(inst, "HIS", "ORM^O01^ORM_O01", when, f"{inst}-ORM-{placer}-{control}") + pid
            + f"ORC|{control}|{placer}^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|1|{placer}^HIS||{CBC}|||{when}\n")


def _result(inst: str, pid: str, placer: str, days: int, status: str = "F") -> str:
    when = ts(days, 10)
    return (_msh(inst, "LIS", "ORU^R01^ORU_R01", when, f"{inst}-ORU-{placer}-{status}") + pid
            + f"ORC|RE|{placer}^HIS|F{placer}^LIS||CM\n"
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||{status}\n"
            + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||{status}|||{when}\n")


def _a08(inst: str, pid: str, control: str) -> str:
    return _msh(inst, "HIS", "ADT^A08^ADT_A01", ts(0), control) + f"EVN|A08|{ts(0)}\n" + pid + "PV1|1|O\n"


def _feed() -> list[bytes]:
    sun_a, sun_b = _pid("HOSPA", SUN, "MRN-A-SUN"), _pid("HOSPB", SUN, "MRN-B-SUN")
    typo = _pid("HOSPB", QIAN, "MRN-B-SUN")  # QIAN's number and person on SUN's HOSPB record
    zhou_a, zhou_b = _pid("HOSPA", ZHOU, "MRN-A-ZHOU"), _pid("HOSPB", ZHOU, "MRN-B-ZHOU")
    son = _pid("HOSPB", ZHOU, "MRN-B-ZHOU", name="周^小明")  # the son, on his father's ID card
    wu_a, wu_b = _pid("HOSPA", WU, "MRN-A-WU"), _pid("HOSPB", WU, "MRN-B-WU")
    texts = [
        # 孙立's blood count at HOSPA; HOSPB's, filed under 钱芳's number, then corrected (A08):
        # now a repeat of his own; its result sent again corrected after the A08
        _order("HOSPA", sun_a, "SA1", 5), _result("HOSPA", sun_a, "SA1", 5),
        _order("HOSPB", typo, "SB1", 1), _result("HOSPB", typo, "SB1", 1),
        _a08("HOSPB", sun_b, "HOSPB-A08-SUN"),
        _result("HOSPB", sun_b, "SB1", 1, status="C"),
        # 周强's blood count at HOSPA, repeated at HOSPB (flagged); HOSPB's A08 then names his son
        # on that record (the index leaves it in conflict): the flag goes; the son's next order
        # in the same batch is no repeat of the father's either
        _order("HOSPA", zhou_a, "ZA1", 5), _result("HOSPA", zhou_a, "ZA1", 5),
        _order("HOSPB", zhou_b, "ZB1", 2), _result("HOSPB", zhou_b, "ZB1", 2),
        _a08("HOSPB", son, "HOSPB-A08-ZHOU"),
        _order("HOSPB", son, "ZB2", 1), _result("HOSPB", son, "ZB2", 1),
        # 吴敏's blood count at HOSPA; HOSPB orders it again (a reminder), cancels it (CA), then
        # orders and results it once more
        _order("HOSPA", wu_a, "WA1", 5), _result("HOSPA", wu_a, "WA1", 5),
        _order("HOSPB", wu_b, "WB1", 2), _order("HOSPB", wu_b, "WB1", 2, control="CA"),
        _order("HOSPB", wu_b, "WB2", 1), _result("HOSPB", wu_b, "WB2", 1),
    ]
    raws = [t.replace("\n", "\r").encode("utf-8") for t in texts]
    lab = [oru_lab(7), oru_lab(8), oru_lab(7 + 499)]  # one resident twice (compiled plans)
    return raws[:6] + lab[:1] + raws[6:13] + lab[1:2] + raws[13:] + lab[2:]


def _engine(tmp_path: Path, backend: str, name: str, *, scoped: bool = True, declared: bool = False) -> Engine:
    """The community's engine (HOSPA, HOSPB, HOSPC; the lab senders): ``declared`` -- each hospital's HIS its
    registration application (``DECLARED_INSTITUTIONS``: the HOSPB HIS's A08 correcting 孙立's
    record onto the number his HOSPA record holds is its registrar's word), else none declared (the undeclared rules other files test with it)."""
    keys = tmp_path / name / "keys"
    if not keys.exists() and (tmp_path / "single" / "keys" / KEY_FILE).exists():
        keys.mkdir(parents=True)
        shutil.copy(tmp_path / "single" / "keys" / KEY_FILE, keys / KEY_FILE)  # the same persons
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "institutions.yaml").write_text((DECLARED_INSTITUTIONS if declared else INSTITUTIONS) + _LAB_SENDERS, "utf-8")
    settings = Settings(data_dir=tmp_path / name, http_port=0, mllp_port=0, site=site)
    engine = Engine(settings.with_(mongodb_uri="mongomock://") if backend == "mongomock" else settings)
    if not scoped:
        engine.ingestor.batch_scopes = tuple(scope for scope in engine.ingestor.batch_scopes
                                             if getattr(scope, "__self__", None) is not engine.recognition)
    return engine


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_later_messages_of_a_batch_change_what_earlier_ones_were_decided_on(tmp_path: Path, backend: str) -> None:
    raws = [(raw, "mllp", "t") for raw in _feed()]
    with _engine(tmp_path, backend, "single", declared=True) as engine:
        reference = [_warnings(o.ack) for raw in raws for o in engine.ingestor.process([raw])]
        expected = _state(engine)
        sun_b = _record(engine, "MRN-B-SUN")
        zhou_b = _record(engine, "MRN-B-ZHOU")
        son_state = engine.identity.record(zhou_b)["status"]
    assert all(ack[0].startswith("MSA|AA") for ack in reference), reference
    _decided_as_meant(expected, sun_b, zhou_b, son_state)

    for name, scoped in (("batch", True), ("groups", False)):
        with _engine(tmp_path, backend, name, scoped=scoped, declared=True) as engine:
            batched = [_warnings(o.ack) for o in engine.ingestor.process(raws)]
            assert engine.ingestor.stats.redone_batches == 0  # one batch, one transaction
            assert _state(engine) == expected, name
        assert batched == reference, name


def _record(engine: Engine, mrn: str) -> str:
    [found] = engine.repository.search("Patient", [("identifier", mrn)]).resources
    return str(found["id"])


def _decided_as_meant(state: dict[str, Any], sun_b: str, zhou_b: str, son_state: str) -> None:
    flags = {(f["person"], f["inst"]): f["status"] for f in state["flags"] if f["inst"] == "HOSPB"}
    assert flags.get((SUN[0], "HOSPB")) == "flagged", state["flags"]  # after the correction: his repeat
    assert not any(person == QIAN[0] for person, _ in flags), state["flags"]  # nothing left under 钱芳
    assert son_state == "conflict"
    assert flags.get((ZHOU[0], "HOSPB")) in (None, "void"), state["flags"]  # the son is not his father
    assert not any(e["patient"] == f"Patient/{zhou_b}" and e.get("person") for e in state["index"]), \
        "the son's results are no one's"
    # 吴敏's first HOSPB order, cancelled after its reminder, counts as recognised (the prior
    # served); the second is a re-test, its result flagged
    wu = sorted(str(c.get("outcome")) for c in state["checks"] if c.get("person") == WU[0] and c["inst"] == "HOSPB")
    assert wu == ["duplicate", "recognised"], state["checks"]
    assert flags.get((WU[0], "HOSPB")) == "flagged", state["flags"]
    # the son's flag and reminder withdrawn
    assert sorted(i["status"] for i in state["issues"].values() if i.get("status") == "cancelled") \
        == ["cancelled", "cancelled"], state["issues"]
    assert any(e["patient"] == f"Patient/{sun_b}" and e.get("person") == SUN[0] for e in state["index"])
