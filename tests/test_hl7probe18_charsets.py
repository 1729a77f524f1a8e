"""MSH read in the message's character set (eighteenth round, hl7probe18); over MLLP, read via ``/fhir``.

The header (what an ACK is addressed from, MSH-10, MSH-18) was split byte by byte, as latin-1:
- a GBK character whose second byte is ``|`` (億 is 0x83 0x7C) in MSH-3 shifted every later field:
  the message was refused AR ("message type is missing", "character set 'CHN' is not supported",
  MSA-2 echoing MSH-9) though nothing in it was wrong;
- a Chinese (GB 18030) or accented (UTF-8) MSH-3 was echoed in the ACK's MSH-5 as mojibake.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)


def lab(control: str, application: str, msh18: str) -> str:
    return (f"MSH|^~\\&|{application}|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1"
            f"|||||CHN|{msh18}\rPID|1||ZY18C^^^FNXRMYY^MR||张^三||19850412|M\r"
            f"OBR|1|ORD-{control}|LAB-{control}|PANEL^检验^L|||20261201080000" + "|" * 17 + "F\r"
            "OBX|1|ST|X1^结论^L||未见异常|||||F\r")


def test_the_header_is_split_in_the_messages_character_set(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    sent = [(lab("H1", "億达LIS", "GB 18030-2000"), "gb18030"), (lab("H2", "检验科", "GB 18030-2000"), "gb18030"),
            (lab("H3", "Müller-Lab", "UNICODE UTF-8"), "utf-8")]
    acks = send(engine, *(text.encode(codec) for text, codec in sent))
    for (text, codec), ack, control in zip(sent, acks, ("H1", "H2", "H3"), strict=True):
        msh, msa = ack.decode(codec).split("\r")[:2]
        assert msa == f"MSA|AA|{control}", ack
        assert msh.split("|")[4] == text.split("|")[2]  # ACK MSH-5 echoes MSH-3 as sent
        (result,) = written(engine, fhir, control, "Observation")
        assert result["valueString"] == "未见异常"
