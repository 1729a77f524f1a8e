"""The forty-first round's tests of the operator's decision on a held resident ID number (regfix41b, regfix41c and
the probe rv41j): the operator's headers, the decision (``POST /admin/quarantine/ID/owner``), the message's view,
a record's ID numbers, a resident's reads through the resident app's SMART token, the W 205 of a held number and
another member's registration -- each of the three files had its own copy (lastread41).

A module binds the calls that name its operator and its phone: ``_decide = partial(decide, ops=OPS)``,
``_reads = partial(resident_reads, client_id="rv41j-phone")``."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines
from tests.identity39_calls import NNCHN_SYSTEM, tokens
from tests.test_order35_as_later import _operator

REASON = "已核对居民身份证，本消息的号码正确"


def operator(engine: Engine, ops: str) -> dict[str, str]:
    """The headers of operator ``ops`` (a system token that may read and decide held messages)."""
    return _operator(engine, "system/MessageHeader.cr", ops)


def decide(http: TestClient, engine: Engine, control: str, ops: str) -> Any:
    """The operator's decision that the held message (FNXRMYY's ``control``) is the number's owner's word."""
    return http.post(f"/admin/quarantine/{message_id('FNXRMYY', control)}/owner",
                     headers={**operator(engine, ops), "Content-Type": "application/json"},
                     content=json.dumps({"reason": REASON}))


def shown(http: TestClient, engine: Engine, control: str, ops: str) -> dict[str, Any]:
    """The operator's view of the held message (FNXRMYY's ``control``), which must answer 200."""
    r = http.get(f"/admin/quarantine/{message_id('FNXRMYY', control)}", headers=operator(engine, ops))
    assert r.status_code == 200, r.text
    return r.json()


def nids(rec: dict) -> set[str]:
    """The resident ID numbers a Patient holds."""
    return {t.split("|", 1)[1] for t in tokens(rec) if t.startswith(NNCHN_SYSTEM)}


def resident_reads(engine: Engine, resident: dict, urls: list[str], client_id: str) -> list[str]:
    """What ``resident``'s phone (the SMART patient token the resident app is given) reads at each of ``urls``."""
    token, _ = engine.auth.issue_token(subject=f"Patient/{resident['id']}", kind="patient", client_id=client_id,
                                       scopes=["patient/*.rs"], patient=resident["id"])
    with TestClient(create_app(engine)) as phone:
        return [phone.get(url, headers={"Authorization": f"Bearer {token}"}).text for url in urls]


def held_w(ack: bytes) -> bool:
    """Is ``ack`` an AA with the W 205 of a number held for the operator?"""
    return ack_code_of(ack) == "AA" and any("|205^" in x and "|W|" in x for x in err_lines(ack))


def at_fnzyy(control: str, mrn: str, name: str, birth: str, sex: str, ids: str) -> str:
    """The HIS of 阜宁县中医院 (FNZYY, another member of the community) registering ``mrn`` there."""
    return (f"MSH|^~\\&|HIS|FNZYY|HUREN|FNYGT|20261201081500||ADT^A04^ADT_A01|{control}|P|2.5.1\r"
            f"EVN|A04|20261201081500\rPID|1||{mrn}^^^FNZYY^MR{ids}||{name}||{birth}|{sex}\rPV1|1|O\r")
