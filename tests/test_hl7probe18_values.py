"""Values read back otherwise than sent (eighteenth round, hl7probe18); each case over MLLP, read via ``/fhir``.

- ``\\Xhh..\\`` whose bytes the message's character set cannot read (``\\XD5C5\\``, GB 18030 bytes, in a
  message without MSH-18, so UTF-8) was stored as two U+FFFD with a plain AA: garbled, and the bytes
  sent lost. It is now kept as the escape sequence sent, as the standard keeps sequences a receiver
  does not understand.
- An OBX-2 DR whose end is a time on the evening before its start date (``20261128^20261127230000``,
  both on the institution's clock, +08:00) passed the 14-hour slack as a reversed ``valuePeriod``
  (R4 per-1) with AA. A date is now a day on the institution's clock, and a time beside it is
  compared by its date there.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_ingest_durability import err_fields

PID = "PID|1||ZY18V^^^FNXRMYY^MR||王^建国||19850412|M\r"


def lab(control: str, obx: str, msh18: str = "", codec: str = "gb18030") -> bytes:
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1|||||CHN|{msh18}\r"
            + PID + f"OBR|1|ORD-{control}|LAB-{control}|PANEL^检验^L|||20261201080000" + "|" * 17 + "F\r" + obx).encode(codec)


def test_hex_bytes_the_character_set_cannot_read_are_kept_as_sent(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    # X1, X2 in UTF-8 (no MSH-18, valid UTF-8: read so): hex data is in the set the text was read in, so a
    # message with no MSH-18 in GB 18030 reads its \XD5C5\ as 张 (review of the twenty-seventh round)
    acks = send(engine, lab("X1", "OBX|1|ST|X1^备注^L||备注\\XD5C5\\完|||||F\r", codec="utf-8"),
                lab("X2", "OBX|1|ST|X1^备注^L||\\XE5BCA0\\三|||||F\r", codec="utf-8"),  # UTF-8 bytes in UTF-8: read
                lab("X3", "OBX|1|ST|X1^备注^L||\\XD5C5C8FD\\|||||F\r", "GB 18030-2000"))  # GB bytes in GB 18030
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    values = [written(engine, fhir, c, "Observation")[0]["valueString"] for c in ("X1", "X2", "X3")]
    assert values == ["备注\\XD5C5\\完", "张三", "张三"]


def _dr(control: str, value: str) -> bytes:
    return lab(control, f"OBX|1|DR|X2^服药时段^L||{value}||||||F\r")


def test_a_range_ending_the_evening_before_its_start_date_is_not_a_period(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, _dr("D1", "20261128^20261127230000"), _dr("D2", "20261128103000^20261127"),
                _dr("D3", "20261128^20261128003000"), _dr("D4", "20261128^20261127200000+0000"),
                _dr("D5", "202611^20261031235900"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 5, acks
    stored = {c: written(engine, fhir, c, "Observation")[0] for c in ("D1", "D2", "D3", "D4", "D5")}
    # the evening before (local), and a time the day after an end date: kept as sent, as text, warned at OBX-5
    for control, sent, ack in (("D1", "20261128^20261127230000", acks[0]), ("D2", "20261128103000^20261127", acks[1]),
                               ("D5", "202611^20261031235900", acks[4])):
        assert stored[control]["valueString"] == sent and "valuePeriod" not in stored[control]
        assert any(e[2] == "OBX^1^5" and "before it starts" in e[-1] for e in err_fields(ack)), ack
    # the first half hour of the start date, and 20:00 UTC the day before (04:00 on the start date, +08:00)
    assert stored["D3"]["valuePeriod"] == {"start": "2026-11-28", "end": "2026-11-28T00:30:00+08:00"}
    assert stored["D4"]["valuePeriod"] == {"start": "2026-11-28", "end": "2026-11-27T20:00:00+00:00"}
    assert not err_fields(acks[2]) and not err_fields(acks[3])
