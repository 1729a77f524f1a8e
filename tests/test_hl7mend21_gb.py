"""GB-declared messages whose bytes are not GB (twenty-first round, hl7mend21): UTF-8 under MSH-18
``GB 18030-2000`` / ``GB2312`` / ``ISO IR58`` is refused AE at MSH-18 with the raw kept, never stored
as mojibake; real GB text -- including names whose GB bytes happen to be valid UTF-8 -- still lands."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import QUARANTINED, message_id
from tests.feed_calls import post_hl7v2 as post
from tests.module_store import module_sqlite_eng  # noqa: F401 -- a fixture (gb's)

GB_SETS = ("GB 18030-2000", "GB2312", "ISO IR58")


def adt(control: str, msh18: str, name: str, address: str = "", nte: str = "") -> str:
    pid = zlib.crc32(control.encode())
    text = (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A01^ADT_A01|{control}|P|2.5.1|||||CHN|{msh18}\r"
            f"EVN|A01|20261201091500\rPID|1||GB{pid}^^^FNXRMYY^MR||{name}||19850412|M|||{address}\rPV1|1|I\r")
    return text + (f"NTE|1||{nte}\r" if nte else "")


def patient(engine: Engine, http: TestClient, control: str) -> dict[str, Any]:
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    token = engine.auth.issue_system_token("reader", "system/*.rs")
    (ref,) = [r for r in doc["resources"] if r.startswith("Patient/")]
    return http.get(f"/fhir/{ref}", headers={"Authorization": f"Bearer {token}"}).json()


@pytest.fixture(scope="module")
def gb(module_sqlite_eng: Engine) -> Iterator[tuple[Engine, TestClient]]:  # noqa: F811
    """The module's engine (``engine``'s, once a module) and the app over it: the parametrized tests below write each
    under a control ID and record number of its own (crc32 of what it sends), so they share it (each parameter had
    opened an engine; trim43)."""
    with TestClient(create_app(module_sqlite_eng)) as http:
        yield module_sqlite_eng, http


@pytest.mark.parametrize("msh18", GB_SETS)
@pytest.mark.parametrize(("name", "address"), [
    ("张^三丰", ""),
    ("欧阳^娜娜", "人民路88号^^福州市^福建省"),
    ("李^明", "José Martí街"),          # a Latin accent and Chinese: é is C3 A9 in UTF-8
])
def test_utf8_under_a_gb_declaration_is_refused_and_kept(gb: tuple[Engine, TestClient], msh18: str,
                                                         name: str, address: str) -> None:
    engine, http = gb
    control = f"GU{zlib.crc32((msh18 + name).encode()) % 100000}"
    raw = adt(control, msh18, name, address).encode("utf-8")
    r = post(engine, http, raw)
    ack = r.content.decode("gb18030")
    assert ack_code_of(r.content) == "AE", ack
    (err,) = [s.split("|") for s in ack.split("\r") if s.startswith("ERR")]
    assert err[2].startswith("MSH^1^18"), err
    assert "UTF-8" in err[8], err
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc["status"] == QUARANTINED and base64.b64decode(doc["raw"]) == raw


def test_bytes_not_valid_gb18030_under_a_gb_declaration_are_refused(engine: Engine, http: TestClient) -> None:
    """UTF-8 三 (E4 B8 89) ending a segment leaves 0x89 before CR, not GB 18030: on the base the
    message was silently read as UTF-8 under its GB declaration."""
    raw = adt("GBX1", "GB 18030-2000", "王^五", nte="一二三").encode("utf-8")
    r = post(engine, http, raw)
    assert ack_code_of(r.content) == "AE", r.content
    assert b"not valid GB 18030" in r.content


# Real GB text: common names and addresses, some of whose GB bytes are valid UTF-8 (钱伟 is C7 AE CE B0,
# read in UTF-8 as 'Ǯΰ'; 一一 is D2 BB D2 BB, 'һһ'; 女 is C5 AE, 'Ů').
@pytest.mark.parametrize("msh18", GB_SETS)
@pytest.mark.parametrize(("family", "given", "address"), [
    ("钱", "伟", ""),
    ("郑", "一一", ""),
    ("张", "三丰", "人民路88号^^福州市^福建省"),
    ("欧阳", "娜娜", "鼓楼区五一北路123号^^福州市^福建省^350001"),
    ("王", "女", "钱塘路1号"),
])
def test_real_gb_text_is_accepted_and_read_right(gb: tuple[Engine, TestClient], msh18: str, family: str,
                                                 given: str, address: str) -> None:
    engine, http = gb
    control = f"GR{zlib.crc32((msh18 + family + given + address).encode()) % 100000}"
    codec = "gb2312" if msh18 != "GB 18030-2000" else "gb18030"
    r = post(engine, http, adt(control, msh18, f"{family}^{given}", address).encode(codec))
    assert ack_code_of(r.content) == "AA", r.content.decode("gb18030")
    name = patient(engine, http, control)["name"][0]
    assert name["family"] == family and name["given"] == [given], name
