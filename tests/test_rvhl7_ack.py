"""Review probes of the twenty-first round's ACK echoes, MSH-11/MSH-12 checks and ISO-IR charset
names, through ``POST /hl7v2`` and the real store (reviewer hl7, round 21)."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.feed_calls import post_hl7v2 as post


def adt(control: str, *, msh2: str = "^~\\&", processing: str = "P", version: str = "2.5.1", msh18: str = "",
        name: str = "张^三", msg_type: str = "ADT^A01^ADT_A01") -> str:
    head = f"MSH|{msh2}|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||{msg_type}|{control}|{processing}|{version}"
    if msh18:
        head += f"|||||CHN|{msh18}"
    return (head + "\rEVN|A01|20261201091500\r"
            f"PID|1||RV{zlib.crc32(control.encode())}^^^FNXRMYY^MR||{name}||19850412|M\rPV1|1|I\r")


def seg(ack: bytes, name: str, codec: str = "utf-8") -> list[str]:
    (s,) = [x for x in ack.decode(codec).split("\r") if x.startswith(name)]
    return s.split("|")


def patient(engine: Engine, http: TestClient, control: str) -> dict[str, Any]:
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    token = engine.auth.issue_system_token("reader", "system/*.rs")
    (ref,) = [r for r in doc["resources"] if r.startswith("Patient/")]
    return http.get(f"/fhir/{ref}", headers={"Authorization": f"Bearer {token}"}).json()


@pytest.mark.parametrize(("msh2", "control"), [
    ("^~\\&", "C\\F\\1"),      # an escaped field separator, sent escaped
    ("^~\\&", "C&2~3"),        # sub-component and repetition characters, bare
    ("$%/*", "C/S/4^5"),       # custom delimiters: '/' escapes, '^' is plain text for this sender
])
def test_msa2_echoes_msh10_in_the_senders_own_delimiters(engine: Engine, http: TestClient, msh2: str,
                                                         control: str) -> None:
    text = adt("@CTL@", msh2=msh2).replace("^", msh2[0]).replace("@CTL@", control)
    r = post(engine, http, text.encode())
    ack = r.content
    assert seg(ack, "MSH")[1] == msh2, ack
    assert seg(ack, "MSA")[2] == control, ack


@pytest.mark.parametrize(("processing", "code"), [
    ("P", "AA"), ("P^T", "AA"), ("P^", "AA"), (" P ", "AA"), ("p", "AA"), ("P^I", "AA"),
    # MSH-11 judged at the envelope (the lead, twenty-ninth round, hl7mode29): the node accepts P
    # (HUREN_PROCESSING_IDS); training, debugging, a value outside table 0103 or a mode outside 0207: AR 202
    ("T", "AR"), ("D", "AR"), ("P^Q", "AR"), ("PRD", "AR"), ("X", "AR"),
])
def test_msh11_values(engine: Engine, http: TestClient, processing: str, code: str) -> None:
    r = post(engine, http, adt("PID" + processing.strip().replace("^", "-"), processing=processing).encode())
    assert ack_code_of(r.content) == code, r.content
    if code == "AR":
        assert seg(r.content, "ERR")[3].startswith("202^"), r.content


@pytest.mark.parametrize(("version", "code"), [
    ("2.4", "AA"), ("2.3.1", "AA"), ("2.5.1^CHN", "AA"), ("2.8.2", "AA"), ("2.9", "AR"), ("2.5.1.", "AR"),
    ("2..5", "AR"), ("", "AE"),
])
def test_msh12_values(engine: Engine, http: TestClient, version: str, code: str) -> None:
    r = post(engine, http, adt("VER" + version.replace("^", "-"), version=version).encode())
    assert ack_code_of(r.content) == code, r.content


def test_iso_ir58_middle_dot_of_a_minority_name_reads_as_u00b7(engine: Engine, http: TestClient) -> None:
    """GB 2312 0xA1A4 is the middle dot of Uyghur/Tibetan names on Chinese ID cards: U+00B7 (as GB
    18030 maps it), not Python's gb2312 codec's katakana U+30FB."""
    body = adt("IR58A", msh18="ISO IR58", name="买买提@艾力^").encode("gb2312").replace(b"@", b"\xa1\xa4")
    r = post(engine, http, body)
    assert ack_code_of(r.content) == "AA", r.content
    assert "charset=GB18030" in r.headers["content-type"]
    assert patient(engine, http, "IR58A")["name"][0]["family"] == "买买提\u00b7艾力"


def test_iso_ir58_declared_over_utf8_bytes_is_not_stored_as_mojibake(engine: Engine, http: TestClient) -> None:
    """FINDING. A sender declaring ISO IR58 but sending UTF-8 (a common misconfiguration): answered AA
    and the name stored as GB 18030 mojibake ('寮燸涓変赴': the odd byte of 丰 swallowed the
    component separator, so family and given merge). On the base ISO IR58 was refused AE; the same
    misread already happens under 'GB 18030-2000' / 'GB2312' (8859/1 has a misread check, GB none).
    Refusing AE is right; storing the UTF-8 reading would be too."""
    r = post(engine, http, adt("IR58B", msh18="ISO IR58", name="张^三丰").encode("utf-8"))
    if ack_code_of(r.content) == "AA":
        assert patient(engine, http, "IR58B")["name"][0]["family"] == "张", r.content


def test_iso_ir6_declared_over_8bit_bytes_is_refused_or_read_right(engine: Engine, http: TestClient) -> None:
    """ASCII declared, GB 18030 bytes sent: accepted AA (as for ``ASCII``) and read right."""
    r = post(engine, http, adt("IR6B", msh18="ISO IR6", name="张^三").encode("gb18030"))
    if ack_code_of(r.content) == "AA":
        assert patient(engine, http, "IR6B")["name"][0]["family"] == "张", r.content


def test_v27_truncation_char_in_msh10_is_echoed_bare(engine: Engine, http: TestClient) -> None:
    """MSA-2 echoes MSH-10 as sent, '#' included; ERR-8 text escapes it."""
    r = post(engine, http, adt("T#1", msh2="^~\\&#", version="2.7", msg_type="ADT^Z#1").encode())
    assert seg(r.content, "MSA")[2] == "T#1"
    assert "Z\\P\\1" in seg(r.content, "ERR")[8]
