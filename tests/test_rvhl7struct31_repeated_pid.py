"""Review of hl7struct31 (rvhl7struct31): results whose OBR stands before them are refused when a PID stands
between, with a false reason.

FINDING (MED): ``sequence.Compiled._step`` places a ``PID`` that follows an ``OBR``/``OBX`` as a new repetition
of ``ORU_R01_PATIENT_RESULT`` (PID anchors the group); the ``OBX`` after it then "begins its group" with no
``OBR`` and ``structure.yaml`` ``refuse_without`` refuses the whole message AE 100 at that OBX, saying "OBX
has no OBR ... before it: it cannot be attached to an order" -- while the OBR is right there before it. The
converter (``adapters/convert/results.groups``) reads segments by name and attaches these OBX to that OBR:
on main (75c4d315) both messages below were AA and stored 2 Observations under 1 ServiceRequest. Now the
feed's results go to the quarantine. The project itself says a LIS repeats its PID
(``structure._JUDGED_ELSEWHERE``: ``one_patient`` converts the same patient's PID repeated), and a PID sent
after the order header is a harmless slip (the same check only warns ``PID`` after ``PV1``). The refusal
must be reserved for an OBX the converter cannot attach to an order (no ORC/OBR before it in the message's
reading), not for one the greedy walk lost track of. Real MLLP bytes, real engine, read back through /fhir.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_hl7mode29 import errs, mllp


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    root = tmp_path_factory.mktemp("rvstruct31pid")
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0)) as eng, TestClient(create_app(eng)) as c:
        c.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("rv31", "system/*.cruds")
        yield eng, c


def msh(control: str) -> str:
    return f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"


def pid(control: str) -> str:
    return f"PID|1||RV{control}^^^FNXRMYY^MR||李^四||19700101|F"


def obr(control: str) -> str:
    return f"OBR|1|P{control}|F{control}|58410-2^CBC panel^LN|||20261201070000"


def obx(n: int) -> str:
    return f"OBX|{n}|NM|718-7^Hemoglobin^LN||13.{n}|g/dL|12-16||||F|||20261201080000"


def stored(c: TestClient, control: str, kind: str) -> int:
    r = c.get(f"/fhir/{kind}", params={"patient.identifier": f"urn:huren:mrn:FNXRMYY|RV{control}"})
    assert r.status_code == 200, r.text
    return len(r.json().get("entry", []))


def _assert_taken(eng: Engine, c: TestClient, control: str, body: list[str]) -> None:
    (ack,) = mllp(eng, (msh(control) + "".join(f"{x}\r" for x in body)).encode())
    refusals = [e for e in errs(ack) if len(e) > 4 and e[4] == "E"]
    assert ack_code_of(ack) == "AA" and not refusals, ack  # main: AA; now AE 100 "OBX has no OBR before it"
    assert stored(c, control, "Observation") == 2 and stored(c, control, "ServiceRequest") == 1


def test_the_lis_repeating_the_patients_pid_between_results_is_not_refused(world: tuple[Engine, TestClient]) -> None:
    eng, c = world
    _assert_taken(eng, c, "P1", [pid("P1"), "PV1|1|O", obr("P1"), obx(1), pid("P1"), obx(2)])


def test_a_pid_sent_after_the_order_header_does_not_orphan_the_results(world: tuple[Engine, TestClient]) -> None:
    eng, c = world
    _assert_taken(eng, c, "P2", ["ORC|RE|PP2|FP2", obr("P2"), pid("P2"), "PV1|1|O", obx(1), obx(2)])
