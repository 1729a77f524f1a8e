"""What the pre-merge review of convmend19 found (nineteenth round, convlast19); real bytes over MLLP,
read back through ``/fhir``.

- an ADT OBX keyed by its sub-id (OBX-4) moved ids the earlier release stored: a sole weight sent
  with OBX-4 ``2`` was stored beside the one sent without; and a sender copying OBX-1 into OBX-4
  (a counter) had an A08 sending height first put 7.3 over the 6.4 its A01 stored;
- an ORU^R01 repeating the same patient's PID in each PATIENT_RESULT group was refused (AE at PID 2)
  like a message of two patients.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv19_hunt import adt
from tests.test_convert11_thinner import fhir, send  # noqa: F401
from tests.test_convmend19_review import refused_at_second_pid


def stored(fhir: TestClient, code: str) -> list[tuple[float, str]]:  # noqa: F811
    found = fhir.get("/fhir/Observation", params={"code": code}).json()
    return sorted((e["resource"]["valueQuantity"]["value"], e["resource"]["subject"]["reference"])
                  for e in found.get("entry", []))


# -- 1. ids of ADT results do not move ----------------------------------------------------------------


def test_a_sole_result_keeps_its_id_whatever_its_sub_id(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    weight = "NM|WT^体重^L|{sub}|{value}|kg|||||F|||20261201090000"
    acks = send(engine, adt("WS1", weight.format(sub="", value="65.0")),
                adt("WS2", weight.format(sub="2", value="66.0")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    # one weight, the second message's: was [65.0, 66.0] (OBX-4 2 took another id than none)
    assert [v for v, _ in stored(fhir, "WT")] == [66.0]


def test_a_sub_id_copied_from_obx1_is_a_counter_not_an_id(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    # the A01 sends total protein with OBX-4 1, 2; the A08 sends height first, so OBX-1 and the
    # copied OBX-4 of the same two values are 2, 3
    tp = "NM|TP^总蛋白^L|{sub}|{value}|g/dL|||||F|||20261201090000"
    a01 = adt("SC1", tp.format(sub="1", value="7.3"), tp.format(sub="2", value="6.4"))
    a08 = adt("SC2", "NM|HT^身高^L|1|170|cm|||||F|||20261201090000",
              tp.format(sub="2", value="7.3"), tp.format(sub="3", value="6.4"))
    acks = send(engine, a01, a08)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    # no duplicate, no overwrite: was [6.4, 7.3, 7.3] (the 6.4 overwritten by 7.3, 7.3 twice)
    assert [v for v, _ in stored(fhir, "TP")] == [6.4, 7.3]
    assert [v for v, _ in stored(fhir, "HT")] == [170]


def test_results_sent_again_in_the_same_order_keep_their_ids(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    tp = "NM|TP^总蛋白^L||{value}|g/dL|||||F|||20261201090000"
    acks = send(engine, adt("SA1", tp.format(value="7.3"), tp.format(value="6.4")),
                adt("SA2", tp.format(value="7.3"), tp.format(value="6.4")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    assert [v for v, _ in stored(fhir, "TP")] == [6.4, 7.3]


# -- 2. one patient repeated is one patient ---------------------------------------------------------


def oru(control: str, second_pid: str) -> bytes:
    return ("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201080000||ORU^R01^ORU_R01|" + control + "|P|2.5.1\r"
            "PID|1||ZYA^^^FNXRMYY^MR||张^三||19850412|M\r"
            "OBR|1|ORD-A1|LAB-A1|GLU^血糖^L|||20261201083000||||||||||||||20261201093000|||F\r"
            "OBX|1|NM|GLU^血糖^L||5.1|mmol/L|||||F\r"
            + second_pid +
            "OBR|1|ORD-A2|LAB-A2|GLU^血糖^L|||20261201103000||||||||||||||20261201113000|||F\r"
            "OBX|1|NM|GLU^血糖^L||5.6|mmol/L|||||F\r").encode()


def test_a_result_message_repeating_the_same_patient_is_accepted(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, oru("RP1", "PID|2||ZYA^^^FNXRMYY^MR||张^三||19850412|M\r"))
    assert ack_code_of(ack) == "AA", ack  # was AE at PID 2
    found = stored(fhir, "GLU")
    assert [v for v, _ in found] == [5.1, 5.6], found
    assert len({subject for _, subject in found}) == 1, found


def test_a_result_message_naming_another_patient_is_still_refused(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    for n, pid in enumerate(("PID|2||ZYB^^^FNXRMYY^MR||张^三||19850412|M\r",  # another MRN, same name
                             "PID|2||ZYA^^^FNXRMYY^MR~ZYC^^^FNXRMYY^MR||张^三||19850412|M\r")):  # another set
        (ack,) = send(engine, oru(f"RD{n}", pid))
        refused_at_second_pid(ack)
    assert stored(fhir, "GLU") == []
