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
from tests.test_ingest_durability import err_fields


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


def test_a_report_time_to_the_minute_is_said_not_dropped_silently(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """NIST's ORU^R01 test cases 1 and 3 (``tests/data/hl7v2/node-hl7-complete/``) send OBR-22 to the
    minute (``200808181800-0700``). ``DiagnosticReport.issued`` is an instant (to the second): the
    value was dropped with AA and no word. It is still left out -- seconds were not sent -- and
    the ACK says so at OBR-22; a time to the second is stored as sent."""
    def lab(control: str, obr22: str) -> bytes:
        return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
                "PID|1||ZY19I^^^FNXRMYY^MR||王^建国||19850412|M\r"
                f"OBR|1|ORD-{control}|LAB-{control}|GLU^血糖^L|||20261201080000" + "|" * 15 + f"{obr22}|||F\r"
                "OBX|1|NM|GLU^血糖^L||5.60|mmol/L|3.9-6.1||||F\r").encode()

    minute, second = send(engine, lab("HI1", "202612010930+0800"), lab("HI2", "20261201093015+0800"))
    assert [ack_code_of(a) for a in (minute, second)] == ["AA", "AA"], (minute, second)
    warned = [e for e in err_fields(minute) if e[2].startswith("OBR^1^22")]
    assert warned and warned[0][4] == "W" and "to the second" in warned[0][8], err_fields(minute)
    (report,) = written(engine, fhir, "HI1", "DiagnosticReport")
    assert "issued" not in report
    (report,) = written(engine, fhir, "HI2", "DiagnosticReport")
    assert report["issued"] == "2026-12-01T09:30:15+08:00"
    (result,) = written(engine, fhir, "HI2", "Observation")
    assert '"value":5.60' in fhir.get(f"/fhir/Observation/{result['id']}").text.replace(" ", "")  # as sent
