"""What public example messages showed huren dropping (nineteenth round, conv19); over MLLP, via ``/fhir``.

LinuxForHealth's ADT^A01 (``tests/data/hl7v2/linuxforhealth/09_ADT_A01_Hl7MessageTest_L193.hl7``,
Apache-2.0) carries two OBX of one test (total protein, 7.3 and 6.4 g/dL) with no OBX-14; its ADT^A08
(``13_ADT_A08_SegmentUtilTest_L91.hl7``) two TX lines of an echocardiography report. A patient-level
result (ADT OBX) is keyed by patient, test and time: the second OBX took the first's key and was
merged into it -- its value dropped, with AA and no warning. It is now another result.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)


def adt(control: str, *obx: str) -> bytes:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A08^ADT_A01|{control}|P|2.5.1\r"
            "EVN|A08|20261201091500\rPID|1||ZY19H^^^FNXRMYY^MR||王^建国||19850412|M\rPV1|1|I\r"
            + "".join(f"OBX|{n}|{o}\r" for n, o in enumerate(obx, start=1))).encode()


def values(engine: Engine, fhir: TestClient, control: str) -> list[object]:  # noqa: F811
    return sorted(str(o.get("valueQuantity", {}).get("value", o.get("valueString")))
                  for o in written(engine, fhir, control, "Observation"))


def test_two_results_of_one_test_in_an_adt_are_two(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("HU1", "NM|TP^总蛋白^L||7.3|g/dL|59-84||||F", "NM|TP^总蛋白^L||6.4|g/dL|59-84||||F"),
                adt("HU2", "TX|||超声心动图报告||||||F|||20261201090000", "TX|||左室大小正常||||||F|||20261201090000"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    assert values(engine, fhir, "HU1") == ["6.4", "7.3"]  # was ["7.3"]: 6.4 dropped
    assert values(engine, fhir, "HU2") == ["左室大小正常", "超声心动图报告"]


def test_one_result_sent_twice_in_an_adt_is_one(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, adt("HU3", "NM|WT^体重^L||65.0|kg|||||F", "NM|WT^体重^L||65.0|kg|||||F"))
    assert ack_code_of(ack) == "AA", ack
    assert values(engine, fhir, "HU3") == ["65.0"]
