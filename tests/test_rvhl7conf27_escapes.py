"""Review of hl7conf27 (twenty-seventh round): the ``\\X..\\`` hex-run mend (escapes._hex_run) checked on its
neighbours, real bytes over real HTTP into the real engine. Each test FAILS on aeea6fd0. Messages made up here.
"""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests import hl7_calls
from tests.hl7_calls import module_engine, module_http, post, written  # noqa: F401  (the module's engine and client)


def oru(control: str, value: str) -> bytes:
    return hl7_calls.oru(control, value, mrn="R27").encode()


# 1 (HIGH, hot path) -- unescape keeps a sequence that reads as nothing, then _hex_run is tried again from the
# next one: each start re-joins and re-decodes the whole rest of the run. A run whose bytes never read (binary,
# or GB 18030 text escaped byte by byte in a UTF-8 message) costs O(n^2): 1,000 sequences (5 KB) took 1.5 s
# through POST /hl7v2 against 0.04 s on 7e6d12a6, 8,000 (40 KB) 109 s in unescape alone -- on the one
# "huren-ingest" worker thread, so every sender waits.
def test_a_long_run_of_hex_bytes_that_never_read_is_linear(engine: Engine, http: TestClient) -> None:
    post(http, oru("XW", "warm"))
    value = "\\XD5\\\\XC5\\" * 1000  # GB 18030 张 x 1000, one escape per byte, in a message read as UTF-8
    start = time.perf_counter()
    ack = post(http, oru("XQ1", value))
    took = time.perf_counter() - start
    assert ack_code_of(ack) == "AA", ack
    (result,) = written(engine, http, "XQ1", "Observation")
    assert result["valueString"] == value  # not valid UTF-8: kept as sent
    assert took < 1.0, f"{took:.2f} s for a 10 KB OBX-5"


# 2 (LOW) -- the hex mend reads a run "in the message's character set (UTF-8, GB 18030)", but the parser's
# Encoding.charset is MSH-18's set, else UTF-8. A message with no MSH-18 in GB 18030 (read so by decode's
# fallback, the common GBK sender) has its hex bytes read as UTF-8: "\XC0\\XEE\" (李) and "\XC0EE\" are stored
# as the escape text, while the same message declared GB 18030-2000 stores 李.
@pytest.mark.parametrize(("control", "given"), [("XG1", "\\XC0\\\\XEE\\"), ("XG2", "\\XC0EE\\")])
def test_hex_data_in_an_undeclared_gb18030_message_reads_in_gb18030(engine: Engine, http: TestClient,
                                                                    control: str, given: str) -> None:
    raw = (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A04^ADT_A01|{control}|P|2.5.1\r"
           f"EVN|A04|20261201091500\rPID|1||R27{control}^^^FNXRMYY^MR||张^{given}||19850412|M\rPV1|1|O\r"
           ).encode("gb18030")
    ack = post(http, raw)
    assert ack_code_of(ack) == "AA", ack
    (person,) = written(engine, http, control, "Patient")
    assert person["name"][0]["given"] == ["李"]
