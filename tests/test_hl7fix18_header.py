"""An MSH-3 no character set can read keeps its old reading (review of the eighteenth round).

hl7probe18 split a non-ASCII MSH after decoding it; a line no character set reads (``b"\\xffLIS"``:
0xFF is no lead byte in UTF-8 or GB 18030) was decoded with replacement characters, so MSH-3 read
``"\\ufffdLIS"`` (before: ``"ÿLIS"``, its latin-1 text). MSH-3 is part of a message's key (MSH-3 +
MSH-4 + MSH-10): two applications' different bad bytes met in one key -- the second message refused
as a control id "already received with different content" -- and a message stored before (as
``"ÿLIS"``) was not known again when re-sent. Sent over MLLP.
"""

from __future__ import annotations

from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.header import extract_header
from engine.engine import Engine
from engine.messages import message_id
from tests.test_convert11_thinner import send


def result(application: bytes, control: bytes, value: bytes = b"5.6") -> bytes:
    return (b"MSH|^~\\&|" + application + b"|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|" + control
            + b"|P|2.5.1\rPID|1||ZY18H^^^FNXRMYY^MR||WANG^JIANGUO||19850412|M\r"
            b"OBR|1|ORD-H1|LAB-H1|GLU^^L|||20261201083000||||||||BLD||||||||20261201091000|||F\r"
            b"OBX|1|NM|GLU^^L||" + value + b"|mmol/L|3.9-6.1||||F\r")


def test_an_msh_3_no_character_set_reads_keeps_its_latin_1_reading() -> None:
    head, _ = extract_header(result(b"\xffLIS", b"H1"))
    assert head.application_code == "ÿLIS"
    assert extract_header(result(b"\x80LIS", b"H1"))[0].application_code == "\x80LIS"
    # a Chinese MSH-3 the character set reads is still decoded (hl7probe18's mend stands)
    assert extract_header(result("检验科".encode("gb18030"), b"H1"))[0].application_code == "检验科"


def test_two_applications_bad_bytes_are_two_keys(engine: Engine) -> None:
    first, second = send(engine, result(b"\xffLIS", b"H1"), result(b"\x80LIS", b"H1", b"7.1"))
    assert ack_code_of(first) == ack_code_of(second) == "AE"  # the bytes are not valid: refused, kept
    assert b"already received with different content" not in second, second
    assert b"MSH^1^18" in second, second
    stored = engine.ingestor.messages.get(message_id("FNXRMYY", "H1"))
    assert stored is not None and stored["application"] == "ÿLIS"
