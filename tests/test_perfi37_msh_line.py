"""perfi37: a stored message's time is read from its MSH line alone (``engine.ingest._msh_line``) -- the same
``Stamp`` the whole message gave, for every form a stored message takes.

A write that dates against a stored version (a correction, a re-run, a restatement: ``ingest._Dates``) reads
the message that stated it from the message store and its MSH-7 again from the raw bytes (``_doc_stamp``).
Only the MSH line is read now: the rest of the message was decoded and checked for its character set and
dropped. Each raw message below -- GB 18030 with a Chinese MSH-4, UTF-8 with a byte-order mark, LF and CRLF
endings, no terminator at all, text before MSH, a field separator other than ``|``, an empty and an unreadable
MSH-7, MSH-7 with an offset -- is stamped as the whole message's header reads it. The dating itself, end to end
over ``POST /hl7v2`` on both backends, is held by ``tests/test_perfi36b_panel_dates.py``,
``tests/test_tfix35_restatements.py``, ``tests/test_msgtime33_*`` and the same-bytes golden fixture.
"""

from __future__ import annotations

import base64

import pytest

from adapters.hl7v2.header import extract_header
from engine.ingest import _doc_stamp, _msh_line
from engine.message_time import stamp
from mappings.site import DEFAULT_ZONE

_BODY = ("PID|1||P37M^^^FNXRMYY^MR||王^小明||19800101|M\r"
         "OBR|1|O1|L1|CBC^血常规^L|||20261201083000\r"
         "OBX|1|NM|WBC^白细胞计数^L||6.2|10~9/L|3.5-9.5||||F\r")


def _msh(sep: str = "|", msh7: str = "20261201091500", facility: str = "FNXRMYY", charset: str = "") -> str:
    enc = "^~\\&"
    return sep.join(["MSH", enc, "LIS", facility, "HUREN", "FNYGT", msh7, "", "ORU^R01^ORU_R01", "M37-1", "P",
                     "2.5.1", "", "", "", "", "", charset])


CASES = {
    "utf-8": (_msh() + "\r" + _BODY).encode("utf-8"),
    "gb18030, Chinese MSH-4": (_msh(facility="阜宁县人民医院", charset="GB18030") + "\r" + _BODY).encode("gb18030"),
    "utf-8 Chinese MSH-4, undeclared": (_msh(facility="阜宁县人民医院") + "\r" + _BODY).encode("utf-8"),
    "bom": b"\xef\xbb\xbf" + (_msh(charset="UNICODE UTF-8") + "\r" + _BODY).encode("utf-8"),
    "lf": (_msh() + "\n" + _BODY.replace("\r", "\n")).encode("utf-8"),
    "crlf": (_msh() + "\r\n" + _BODY.replace("\r", "\r\n")).encode("utf-8"),
    "no terminator": _msh().encode("ascii"),
    "text before MSH": ("see MSH below\r" + _msh() + "\r" + _BODY).encode("utf-8"),
    "another field separator": (_msh(sep="#") + "\r" + _BODY.replace("|", "#")).encode("utf-8"),
    "empty MSH-7": (_msh(msh7="") + "\r" + _BODY).encode("utf-8"),
    "unreadable MSH-7": (_msh(msh7="2026-12-01") + "\r" + _BODY).encode("utf-8"),
    "MSH-7 with an offset and components": (_msh(msh7="20261201091500+0800^S") + "\r" + _BODY).encode("utf-8"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_stored_messages_stamp_is_the_whole_headers(name: str) -> None:
    raw = CASES[name]
    doc = {"raw": base64.b64encode(raw).decode("ascii"), "facility": "FNXRMYY", "application": "LIS",
           "received_at": "2026-12-01T01:20:00.000000Z", "message_type": "ORU^R01", "control_id": "M37-1"}
    whole = extract_header(raw)[0]
    want = stamp(application="LIS", institution="FNXRMYY", msh7=whole.timestamp.split(whole.component_sep or "^", 1)[0],
                 received_at=doc["received_at"], tz=DEFAULT_ZONE, label="ORU^R01 M37-1")
    assert _doc_stamp(doc, None) == want
    line = extract_header(_msh_line(raw))[0]
    assert (line.timestamp, line.component_sep, line.field_sep) == (whole.timestamp, whole.component_sep, whole.field_sep)
    if name == "text before MSH":
        assert _msh_line(raw) == raw  # (read whole, as received)
    elif name != "no terminator":
        assert len(_msh_line(raw)) < len(raw) and b"PID" not in _msh_line(raw)
