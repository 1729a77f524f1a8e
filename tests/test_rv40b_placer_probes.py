"""rv40b (fortieth round review): probe of c63bd673 (``MergeRules._numbered``: the first storer of an order's
number is the first by arrival, ``Stamp.received``) -- real ORM^O01 over ``POST /hl7v2`` and the ingestor's
replay of a quarantined message, into the real store on each backend (``tests.module_store``)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.module_store import module_eng
from tests.test_code37_ris_change import CHEST
from tests.test_codedoc38_order_owner import _codes
from tests.test_ord39_order_history import _placed_by, _xo
from tests.test_srfix35_order_code import B, http, send, the_order

__all__ = ["http", "module_eng"]


def test_a_replayed_third_app_xo_does_not_become_the_placer(http: TestClient, module_eng: Engine) -> None:
    """The EMR's XO (chest CT) under the HIS's number arrives first but is quarantined (PID-3 empty: AE);
    HISAPP then places head CT (NW); the EMR's XO, corrected, is replayed: held (W 204, HISAPP placed it),
    changing nothing -- its Provenance names HISAPP's version. HISAPP's own XO to chest CT must then be
    taken: HISAPP stored the number, whatever the EMR message's first receipt."""
    placer = "RV40B-REPLAYED"
    good = _xo("EMR", placer, CHEST).replace(f"|F{placer}^RIS|", "||")  # (no filler number: it changes nothing)
    ack = send(http, re.sub(r"PID\|1\|\|[^|]*\|", "PID|1|||", good))
    assert "MSA|AE" in ack, ack
    control = good.split("|")[9]
    assert "MSA|AA" in send(http, _placed_by("HISAPP", placer))
    replayed = module_eng.ingestor.replay(message_id(B, control), actor="rv40b",
                                          raw=good.replace("\n", "\r").encode())
    assert replayed is not None and replayed.code == "AA", replayed
    assert b"history names HISAPP" in replayed.ack, replayed.ack
    ack = send(http, _xo("HISAPP", placer, CHEST))
    assert "MSA|AA" in ack and "OBR^1^4" not in ack, ack
    codes = _codes(the_order(http, placer))
    assert "3001" in codes and "3002" not in codes, codes
