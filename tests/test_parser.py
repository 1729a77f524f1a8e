"""The HL7 v2 tokenizer: delimiters from MSH-1/MSH-2, separators, escapes, repetitions, broken input."""

from __future__ import annotations

import pytest

from adapters.hl7v2 import errors as E
from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.escapes import Encoding, escape, unescape
from adapters.hl7v2.header import decode_message
from adapters.hl7v2.parser import iter_messages, parse, parse_header
from tests.conftest import SAMPLES

ADT = (
    "MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20250301083000||ADT^A01^ADT_A01|MSG0001|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\r"
    "EVN|A01|20250301083000\r"
    "PID|1||320923198803150014^^^FNXRMYY^NNCHN~M000123^^^FNXRMYY^MR||张^三^^^^^L~Zhang^San^^^^^A||19880315|M|||"
    "幸福路1号^^阜宁县^江苏省^224400^CHN^H||^PRN^PH^^^^13800000000\r"
    "ZPI|1|custom&sub^x\r"
    "PV1|1|I|NEI^301^02\r"
)


def test_segments_and_lookup() -> None:
    msg = parse(ADT)
    assert msg.names() == ["MSH", "EVN", "PID", "ZPI", "PV1"]
    assert msg.get("PID") is msg.segments[2]
    assert msg.get("OBX") is None
    assert msg.all("OBX") == []
    assert [s.sequence for s in msg.all("PID")] == [1]
    assert msg.get("ZPI").value(2, comp=1, sub=2) == "sub"  # Z-segments are ordinary segments


def test_msh_numbering_and_helpers() -> None:
    msh = parse(ADT).msh
    assert msh.field(1) == "|"
    assert msh.field(2) == "^~\\&"
    assert msh.value(2) == "^~\\&"  # never split or unescaped
    assert msh.field(3) == "HIS"
    assert msh.sending_facility == "FNXRMYY"
    assert (msh.message_type, msh.trigger_event, msh.structure) == ("ADT", "A01", "ADT_A01")
    assert msh.control_id == "MSG0001"
    assert msh.version == "2.5.1"
    assert msh.processing_id == "P"
    assert msh.charset == "UNICODE UTF-8"


def test_structure_defaults_to_type_event_in_v23_headers() -> None:
    msh = parse("MSH|^~\\&|A|B|C|D|20250101||ORU^R01|1|P|2.3\r").msh
    assert msh.structure == "ORU_R01"


def test_repetitions_components_subcomponents() -> None:
    pid = parse(ADT).get("PID")
    reps = pid.reps(3)
    assert [r.comp(1) for r in reps] == ["320923198803150014", "M000123"]
    assert reps[1].comp(5) == "MR"
    assert pid.value(3, rep=1, comp=5) == "MR"
    assert pid.value(5, rep=0, comp=1) == "张"
    assert pid.value(5, rep=1, comp=2) == "San"
    assert pid.value(5, rep=2) == ""  # absent repetition
    assert pid.value(5, comp=30) == ""  # absent component
    assert pid.value(99) == ""  # absent field
    assert pid.value(11, comp=4) == "江苏省"
    assert pid.rep(3, 7).comp(1) == ""
    assert len(pid) == 13


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("a\\F\\b", "a|b"),
        ("a\\S\\b", "a^b"),
        ("a\\T\\b", "a&b"),
        ("a\\R\\b", "a~b"),
        ("a\\E\\b", "a\\b"),
        ("\\X41\\", "A"),
        ("\\XE5BCA0\\", "张"),  # UTF-8 bytes of 张
        ("\\H\\重要\\N\\", "重要"),  # highlighting dropped
        ("line1\\.br\\line2", "line1\nline2"),
        ("a\\.sp\\b", "a\nb"),
        ("\\.in+4\\indented", "indented"),
        ("\\Zcustom\\", "\\Zcustom\\"),  # locally defined: kept literally
        ("\\X4\\", "\\X4\\"),  # odd hex digits: kept literally
        ("broken\\F", "broken\\F"),  # unterminated: kept literally
        ("plain", "plain"),
        ("\\F\\\\S\\\\T\\\\R\\\\E\\", "|^&~\\"),
    ],
)
def test_escape_sequences(wire: str, expected: str) -> None:
    assert unescape(wire) == expected
    msg = parse(f"MSH|^~\\&|A|B|C|D|20250101||ORU^R01|1|P|2.5\rNTE|1||{wire}\r")
    assert msg.get("NTE").value(3) == expected


def test_escapes_use_the_declared_delimiters() -> None:
    # a sender declaring other delimiters: escapes decode to *those* characters
    msg = parse("MSH#*!@%#A#B#C#D#20250101##ORU*R01#1#P#2.5\rNTE#1##x@F@y@S@z@R@w@T@v@E@u*second\r")
    nte = msg.get("NTE")
    assert nte.value(3) == "x#y*z!w%v@u"
    assert nte.value(3, comp=2) == "second"
    assert msg.msh.field(2) == "*!@%"


def test_hex_escape_uses_msh18_charset() -> None:
    gb = "张".encode("gb18030").hex().upper()
    msg = parse(f"MSH|^~\\&|A|B|C|D|20250101||ORU^R01|1|P|2.5|||||CHN|GB 18030-2000\rNTE|1||\\X{gb}\\\r")
    assert msg.get("NTE").value(3) == "张"


def test_escape_round_trip() -> None:
    text = "a|b^c&d~e\\f\nnext"
    enc = Encoding()
    assert unescape(escape(text, enc), enc) == text
    assert escape("plain") == "plain"


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n", "\n\r"])
def test_segment_separators(sep: str) -> None:
    text = ADT.replace("\r", sep)
    assert parse(text).names() == ["MSH", "EVN", "PID", "ZPI", "PV1"]


def test_mixed_separators_bom_and_blank_lines() -> None:
    text = "\ufeff" + ADT.replace("EVN", "\n\nEVN", 1).replace("\rPV1", "\r\n\r\n  \nPV1")
    assert parse(text).names() == ["MSH", "EVN", "PID", "ZPI", "PV1"]


def test_truncation_character_v27() -> None:
    msg = parse("MSH|^~\\&#|A|B|C|D|20250101||ORU^R01^ORU_R01|1|P|2.7\rNTE|1||x\\P\\y\r")
    assert msg.encoding.truncation == "#"
    assert msg.get("NTE").value(3) == "x#y"


def test_null_value_reads_empty() -> None:
    pid = parse('MSH|^~\\&|A|B|C|D|20250101||ADT^A08|1|P|2.5\rPID|1||""|""\r').get("PID")
    assert pid.value(3) == ""
    assert pid.reps(3) == []
    assert not pid.has(3)


def test_free_text_keeps_delimiters_in_text() -> None:
    obx = parse(
        "MSH|^~\\&|A|B|C|D|20250101||ORU^R01|1|P|2.5\rOBX|1|FT|X||印象\\.br\\双肺纹理增多^第二段\r"
    ).get("OBX")
    assert obx.rep(5).text() == "印象\n双肺纹理增多^第二段"


@pytest.mark.parametrize(
    ("text", "field", "code", "ack", "words"),
    [
        ("", None, E.SEGMENT_SEQUENCE_ERROR, "AR", "empty"),
        ("   \r\n", None, E.SEGMENT_SEQUENCE_ERROR, "AR", "empty"),
        ("PID|1||123\r", None, E.SEGMENT_SEQUENCE_ERROR, "AR", "must start with an MSH"),
        ("MSH", None, E.SEGMENT_SEQUENCE_ERROR, "AR", "must start with an MSH"),
        ("MSHA^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5", 1, E.DATA_TYPE_ERROR, "AR", "field separator"),
        ("MSH|^^\\&|A|B|C|D|2025||ADT^A01|1|P|2.5", 2, E.DATA_TYPE_ERROR, "AR", "encoding characters"),
        ("MSH|^~\\\\#|A|B|C|D|2025||ADT^A01|1|P|2.5", 2, E.DATA_TYPE_ERROR, "AR", "encoding characters"),
        ("MSH|^|A|B|C|D|2025||ADT^A01|1|P|2.5", 2, E.DATA_TYPE_ERROR, "AR", "encoding characters"),
        ("MSH|^~a&|A|B|C|D|2025||ADT^A01|1|P|2.5", 2, E.DATA_TYPE_ERROR, "AR", "encoding characters"),
        ("MSH|^~\\&|A|B|C|D|2025||||P|2.5", 9, E.REQUIRED_FIELD_MISSING, "AR", "MSH-9"),
        ("MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P", 12, E.REQUIRED_FIELD_MISSING, "AR", "MSH-12"),
        (
            "MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\rPID|1\x00\x01garbage",
            None,
            E.DATA_TYPE_ERROR,
            "AR",
            "binary",
        ),
        ("MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\x0b\x1c", None, E.DATA_TYPE_ERROR, "AR", "0x0B"),
        (
            "MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\rpid|1\r",
            None,
            E.SEGMENT_SEQUENCE_ERROR,
            "AE",
            "invalid segment id",
        ),
        (
            "MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\rPIDX|1\r",
            None,
            E.SEGMENT_SEQUENCE_ERROR,
            "AE",
            "invalid segment id",
        ),
        (
            "MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\rMSH|^~\\&|A|B\r",
            None,
            E.SEGMENT_SEQUENCE_ERROR,
            "AE",
            "second message",
        ),
        (
            "FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\r",
            None,
            E.SEGMENT_SEQUENCE_ERROR,
            "AR",
            "batch",
        ),
    ],
)
def test_broken_input(text: str, field: int | None, code: str, ack: str, words: str) -> None:
    with pytest.raises(HL7Error) as info:
        parse(text)
    err = info.value
    assert err.field == field
    assert err.code == code
    assert err.ack_code == ack
    assert words in err.message
    assert err.segment  # always located at a segment


def test_invalid_segment_error_names_the_line() -> None:
    with pytest.raises(HL7Error) as info:
        parse("MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\rEVN|A01\rthis is not a segment\r")
    # ERR-2 (ERL) names the segment the stray line follows and its occurrence, not the line's position
    # under a made-up id (hl7left28); the message names the line
    assert (info.value.segment, info.value.sequence) == ("EVN", 1)
    assert "line 3" in info.value.message


def test_parse_header_survives_broken_bodies() -> None:
    msh = parse_header("MSH|^~\\&|HIS|FNXRMYY|||2025||ADT^A01|C1|P|2.5\rgarbage\x00\r")
    assert msh is not None and msh.control_id == "C1" and msh.sending_facility == "FNXRMYY"
    assert parse_header("garbage") is None
    assert parse_header("MSH|^^^^") is None


def test_iter_messages_splits_files_and_batches() -> None:
    one = "MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\nPID|1\n"
    two = "MSH|^~\\&|A|B|C|D|2025||ADT^A08|2|P|2.5\r\nPID|2\r\n"
    batch = "FHS|^~\\&\rBHS|^~\\&\r" + one + two + "BTS|2\rFTS|1\r"
    texts = list(iter_messages(batch))
    assert [parse(t).msh.control_id for t in texts] == ["1", "2"]
    assert texts[0] == "MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\rPID|1\r"


def test_decode_message_honours_bom_and_msh18() -> None:
    text = "MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5|||||CHN|GB 18030-2000\rPID|1||||张三\r"
    assert decode_message(text.encode("gb18030")) == text
    assert decode_message(b"\xef\xbb\xbf" + text.encode("utf-8")) == text
    plain = text.replace("GB 18030-2000", "")
    assert decode_message(plain.encode("utf-8")) == plain
    assert decode_message(plain.encode("gbk")) == plain  # undeclared GBK still decodes


def test_every_sample_parses_or_fails_precisely() -> None:
    files = sorted(SAMPLES.glob("*/*.hl7"))
    assert len(files) > 40
    parsed = 0
    for path in files:
        try:
            msg = parse(path.read_text(encoding="utf-8"))
        except HL7Error as err:
            assert err.segment == "MSH" and err.field == 2, (path.name, err)
            continue
        parsed += 1
        assert msg.msh.message_type in {"ADT", "ORU", "ORM", "OML", "OUL", "OMG", "MDM", "SIU", "VXU", "RDE", "RAS", "PPR", "DFT", "RSP", "BAR"}
        assert all(len(s.name) == 3 for s in msg.segments)
    assert parsed >= 38


def test_repeated_reads_of_a_field_agree_with_the_first() -> None:
    """Repetitions and unescaped components are split once per segment and reused: every later
    read (by repetition, component, subcomponent, value or text) must give what the first did."""
    msg = parse(
        "MSH|^~\\&|A|B|C|D|20250310||ORU^R01|1|P|2.5.1\r"
        'OBX|1|CWE|A\\T\\B&sub2^te\\S\\xt^""^^x~R2C1^R2C2||v1\\F\\v2&s2^c2\r'
    )
    obx = msg.get("OBX")
    assert obx is not None
    for _ in range(2):
        assert obx.reps(3) is obx.reps(3)
        assert [r.comp(1) for r in obx.reps(3)] == ["A&B", "R2C1"]
        assert obx.value(3) == "A&B"
        assert obx.value(3, comp=1, sub=2) == "sub2"
        assert obx.value(3, comp=2) == "te^xt"
        assert obx.value(3, comp=3) == ""  # HL7 null
        assert obx.value(3, comp=2, sub=2) == ""
        assert obx.value(3, rep=1, comp=2) == "R2C2"
        assert obx.rep(3).comp(9) == ""
        assert obx.rep(3, 5).comp(1) == ""
        assert obx.rep(5).comp(1) == "v1|v2"
        assert obx.rep(5).comp(1, 2) == "s2"
        assert obx.rep(5).subs(1) == ["v1|v2", "s2"]
        assert obx.rep(5).text() == "v1|v2&s2^c2"


def test_doubled_escape_in_msh2_is_read_as_the_standard_set() -> None:
    """``^~\\\\&`` (the escape character written twice by a sender's string literal) is the one
    invalid MSH-2 read anyway, as ``^~\\&``; the converter warns about it (``encoding_repaired``)."""
    from adapters.hl7v2.parser import encoding_repaired

    msg = parse("MSH|^~\\\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\rPID|1||M1^^^H^MR||A&B^C\\T\\D\r")
    assert msg.msh.enc.msh2 == "^~\\&" and encoding_repaired(msg.msh)
    assert msg.get("PID").value(5, comp=2) == "C&D"  # the \T\ escape (subcomponent separator) still works
    assert not encoding_repaired(parse("MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\r").msh)


def test_empty_control_id_is_taken_from_the_content() -> None:
    """No MSH-10: the message is known by a digest of its text, the one the header reader computes
    from the same text, so the stored message and its resources carry the same id."""
    from adapters.hl7v2.control_id import content_control_id
    from adapters.hl7v2.header import extract_header

    text = "MSH|^~\\&|A|B|C|D|2025||ADT^A01||P|2.5\rPID|1||M1^^^H^MR\r"
    msg = parse(text)
    assert msg.derived_control_id and msg.msh.control_id == content_control_id(text)
    assert msg.msh.control_id == extract_header(text.encode())[0].control_id
    assert parse(text.replace("M1", "M2")).msh.control_id != msg.msh.control_id
    assert not parse(text.replace("||P|", "|C7|P|")).derived_control_id
