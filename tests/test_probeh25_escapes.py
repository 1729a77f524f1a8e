"""HL7 v2 escape sequences and FT formatting, sent over a real MLLP socket and read back over ``/fhir``
(twenty-fifth round, probeh25: a conformance probe, tests only).

v2.5.1 chapter 2, section 2.7.4 (special characters), 2.7.5 (hexadecimal \\Xdd..\\) and 2.7.6 (formatting
codes in FT). Guards: the five delimiter escapes, hex, ``\\.br\\``, a non-default escape character and
non-default delimiters land as the text the sender meant. Findings (these fail): ``\\.ce\\`` ends the current
output line and ``\\.sk n\\`` skips n spaces to the right; both are dropped, so two lines or two words run
together in the stored text.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir  # noqa: F401  (the reader fixture)
from tests.test_probeh25_mllp import send

PID = "PID|1||ZY25E^^^FNXRMYY^MR||王^建国||19850412|M\r"


def lab(control: str, kind: str, value: str, *, msh2: str = "^~\\&", nte: str = "") -> bytes:
    return (f"MSH|{msh2}|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r" + PID
            + f"OBR|1|ORD-{control}|LAB-{control}|PANEL^检验^L|||20261201080000" + "|" * 17 + "F\r"
            + f"OBX|1|{kind}|N1^备注^L||{value}||||||F\r" + nte).encode()


def value_of(engine: Engine, fhir: TestClient, control: str) -> str:  # noqa: F811
    (obs,) = written(engine, fhir, control, "Observation")
    return obs["valueString"]


def test_delimiter_hex_and_line_break_escapes_read_as_meant(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine,
                lab("ES1", "ST", "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"),
                lab("ES2", "ST", "\\X41\\nn \\XE5BCA0\\"),  # hex: ASCII, and UTF-8 bytes in a UTF-8 message
                lab("ES3", "FT", "line1\\.br\\line2\\H\\bold\\N\\ end"),  # \H\ \N\ highlight only
                lab("ES4", "ST", "x", nte="NTE|1||note\\.br\\two\\E\\end\r"),
                lab("ES5", "ST", "a!F!b!S!c!T!d", msh2="^~!&"))  # the escape character is MSH-2's third
    assert [ack_code_of(a) for a in acks] == ["AA"] * 5, acks
    assert value_of(engine, fhir, "ES1") == "a|b^c&d~e\\f"
    assert value_of(engine, fhir, "ES2") == "Ann 张"
    assert value_of(engine, fhir, "ES3") == "line1\nline2bold end"
    (obs,) = written(engine, fhir, "ES4", "Observation")
    assert obs["note"] == [{"text": "note\ntwo\\end"}]
    assert value_of(engine, fhir, "ES5") == "a|b^c&d"


def test_non_default_delimiters_split_and_keep_the_others_as_text(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """MSH-1 ``#``, components ``$``, repetitions ``%``, subcomponents ``!``: ``|`` and ``^`` are text
    there, and the control id ``H|1^2`` comes back in MSA-2 as sent."""
    raw = (b"MSH#$%\\!#HIS#FNXRMYY#HUREN#FNYGT#20261201091500##ADT$A01$ADT_A01#H|1^2#P#2.5.1\r"
           b"EVN#A01#20261201091500\rPID#1##PH25$$$FNXRMYY$MR##A|B^C$D%E##19850412#M\rPV1#1#I\r")
    (ack,) = send(engine, raw)
    assert ack.decode().split("\r")[1] == "MSA#AA#H|1^2", ack
    (patient,) = written(engine, fhir, "H|1^2", "Patient")
    assert patient["name"] == [{"family": "A|B^C", "given": ["D"]}, {"family": "E"}]


def test_ce_ends_the_current_line(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """2.7.6: ``\\.ce\\`` "End current output line and center the next line". The centring is layout;
    the line end is not: ``z\\.ce\\w`` is two lines. FINDING: stored ``zw``."""
    (ack,) = send(engine, lab("CE1", "FT", "检验结果\\.ce\\注意事项"))
    assert ack_code_of(ack) == "AA"
    assert value_of(engine, fhir, "CE1") == "检验结果\n注意事项"


def test_sk_skips_spaces_to_the_right(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """2.7.6: ``\\.sk <number>\\`` "Skip <number> spaces to the right". FINDING: dropped, so
    ``Na\\.sk3\\140`` (a column layout) is stored ``Na140``: two values read as one."""
    (ack,) = send(engine, lab("SK1", "FT", "Na\\.sk3\\140"))
    assert ack_code_of(ack) == "AA"
    assert value_of(engine, fhir, "SK1") == "Na   140"
