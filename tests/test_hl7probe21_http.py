"""``POST /hl7v2``: the ACK's ``Content-Type`` names its character set as HTTP does (twenty-first
round, hl7probe21). The Python codec names went out as they were -- ``charset=latin-1`` for MSH-18
``8859/1``, ``iso8859-2``, ``euc_kr``, ``iso2022_jp`` -- none of them an IANA charset name, so an
HTTP client that decodes by the header (Java, .NET) could not read the ACK.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine


def adt(control: str, msh18: str, name: bytes) -> bytes:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A01^ADT_A01|{control}|P|2.5.1|||||CHN|{msh18}\r"
            f"EVN|A01|20261201091500\rPID|1||P21{control}^^^FNXRMYY^MR||").encode() + name + \
        b"||19850412|M\rPV1|1|I\r"


@pytest.mark.parametrize(("msh18", "name", "charset"), [
    ("8859/1", "Müller".encode("latin-1"), "ISO-8859-1"),
    ("8859/2", b"Nowak", "ISO-8859-2"),
    ("KS X 1001", b"Kim", "EUC-KR"),
    ("ISO IR87", b"Sato", "ISO-2022-JP"),
    ("UNICODE UTF-8", "张三".encode(), "UTF-8"),
    ("GB 18030-2000", "张三".encode("gb18030"), "GB18030"),
    ("", b"\xff\xfe\xfa", "UTF-8"),  # no set reads the bytes: the ACK (AE) is in UTF-8
])
def test_the_ack_names_its_charset_by_its_iana_name(engine: Engine, http: TestClient, msh18: str, name: bytes,
                                                    charset: str) -> None:
    token = engine.auth.issue_system_token("feed", "system/MessageHeader.c")
    r = http.post("/hl7v2", content=adt("CS1", msh18, name),
                  headers={"Authorization": f"Bearer {token}", "Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200
    media, _, named = r.headers["content-type"].partition("; charset=")
    assert media == "x-application/hl7-v2+er7" and named.lower() == charset.lower()  # names are caseless
    assert r.content.decode(charset).split("\r")[1].startswith("MSA|A")
