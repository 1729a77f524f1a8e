"""MSH-18 by its ISO-IR registry name (twenty-first round, hl7probe21), over MLLP, read via ``/fhir``.

``ISO IR58`` (GB 2312, IANA alias ``iso-ir-58``; Chinese systems send it in its EUC form) and ``ISO
IR6`` (ASCII, table 0211's own code) were "not supported (HL7 table 0211)": every message of a sender
declaring them was refused ``AE``. They are read now (GB 2312 as its superset GB 18030); ``ISO IR100``
is ISO 8859-1, so GB 18030 bytes under it are still refused as a misread, not stored as mojibake.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)


def adt(control: str, msh18: str, name: str = "张^三") -> str:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A01^ADT_A01|{control}|P|2.5.1|||||CHN|{msh18}\r"
            f"EVN|A01|20261201091500\rPID|1||P21{control}^^^FNXRMYY^MR||{name}||19850412|M\rPV1|1|I\r")


def test_iso_ir_names_of_character_sets_are_read(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    gb2312, ascii_, latin = send(engine, adt("IR1", "ISO IR58").encode("gb2312"),
                                 adt("IR2", "ISO IR6", "Smith^John").encode("ascii"),
                                 adt("IR3", "ISO IR100").encode("gb18030"))
    assert ack_code_of(gb2312) == "AA", gb2312
    assert gb2312.decode("gb18030").split("\r")[0].endswith("|ISO IR58")  # MSH-18 echoed
    (patient,) = written(engine, fhir, "IR1", "Patient")
    assert patient["name"][0]["family"] == "张" and patient["name"][0]["given"] == ["三"]
    assert ack_code_of(ascii_) == "AA", ascii_
    assert ack_code_of(latin) == "AE" and b"PID^1^5" in latin  # GB 18030 bytes are no ISO 8859-1 text
