"""The quarantine tests' refused V document (privfix27, and privleft28, rvprivleft28, rvprivfix28, tidy29
after it): a made-up discharge summary (MDM^T02) labelled by TXA-18, sent over real HTTP
(``POST /hl7v2``) by a feed and refused, then read by an operator on ``/admin/quarantine``. One copy
of the set-up those files shared by copying (tidy29)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_resident_record_ui import hl7, msh

ER7 = "x-application/hl7-v2+er7"
SECRET = "HIV抗体确证试验阳性，已告知本人"
NOTE = "请勿告知家属"
PLACEHOLDER = "〔内容因保密级别（受限/极受限）不予显示 withheld for confidentiality〕"
QUOTED = "阳性弱反应"  # an NM result that is no number: the converter's warning quotes it


def mdm(control: str, confidentiality: str, facility: str = "FNPF27HOSP") -> bytes:
    """The discharge summary ``control`` from ``facility`` labelled ``confidentiality`` (TXA-18): its
    text ``SECRET`` in OBX-5, an NM result ``QUOTED``, a note ``NOTE``."""
    return hl7(msh("EMR", facility, "202612011000", "MDM^T02^MDM_T02", control),
               "EVN|T02|20261201100000",
               f"PID|1||320923199001010016^^^公安部^NNCHN~PF27-1^^^{facility}^MR||钱^保密||19900101|M",
               "PV1|1|O",
               f"TXA|1|DS^出院小结^HL70270|TX|20261201080000|||||D001^李^明|||PF27-{control}||||pf27.rtf|AU|{confidentiality}",
               f"OBX|1|TX|18842-5^出院小结^LN||{SECRET}||||||F",
               f"OBX|2|NM|5223-3^抗体^LN||{QUOTED}||||||F",
               f"NTE|1||{NOTE}")


@contextlib.contextmanager
def refused(settings: Settings, bodies: Iterable[bytes], acks: tuple[str, ...]) -> Iterator[tuple[Engine, TestClient]]:
    """An engine on ``settings`` serving over a TestClient, each of ``bodies`` sent by a feed and
    answered (HTTP 200) with an ACK code of ``acks``."""
    engine = Engine(settings)
    try:
        with TestClient(create_app(engine)) as http:
            sender = {"Authorization": "Bearer " + engine.auth.issue_system_token("feed", "system/MessageHeader.c"),
                      "Content-Type": ER7}
            for body in bodies:
                r = http.post("/hl7v2", content=body, headers=sender)
                assert r.status_code == 200 and r.headers.get("x-hl7-ack-code") in acks, r.text[:300]
            yield engine, http
    finally:
        engine.close()
