"""perfa42's compartment world, one copy (trim43): her three records and the merge of the second into the third
that her compartment follows. Four of ``tests/test_perfa42_compartment.py``'s tests built it line for line, each
under its own letter; a test that needs it imports it from here.

``tag`` (one letter) names a test's records and its result code: ``ZQ42<tag>`` her record at 阜宁县中医院 (FNZYY)
with her resident ID number, ``R142<tag>`` a record of 阜宁县人民医院 with her number, ``R242<tag>`` one without a
number holding a result coded ``R2<tag>42OBS``; ``phones`` the first ten digits of their PID-13 phones."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import unlink
from tests.test_a40b41_carried import BING
from tests.test_rv41n_probes import _his
from tests.test_rvidentity32_probes import merge, oru


def her_records(http: TestClient, tag: str, number: str, phones: str) -> tuple[str, str]:
    """Her record at FNZYY and R1 (both her number ``number``), R2 (no number) and R2's result, over ``POST /hl7v2``;
    the ids of her FNZYY record and of R2."""
    zq = _his(http, f"ZQ42{tag}", f"ZQ42{tag}a", f"~{number}^^^^NNCHN", f"{phones}1", facility="FNZYY")
    _his(http, f"R142{tag}", f"R142{tag}a", f"~{number}^^^^NNCHN", f"{phones}2")
    two = _his(http, f"R242{tag}", f"R242{tag}a", "", f"{phones}3")
    assert ack_code_of(post(http, oru(f"R242{tag}b", f"R242{tag}^^^FNXRMYY^MR", *BING, f"R2{tag}42OBS"))) == "AA"
    return zq, two


def merged(feed: TestClient, tag: str) -> None:
    """The A40 of R1 into R2, sent by ``feed`` (this worker's client or another's): AA."""
    ack = post(feed, merge(f"R342{tag}", f"R242{tag}^^^FNXRMYY^MR", *BING, f"R142{tag}^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", err_lines(ack)


def parted(feed: TestClient, tag: str) -> None:
    """The A37 parting R2 and R1 again, sent by ``feed``: AA."""
    ack = post(feed, unlink(f"R442{tag}", (f"R242{tag}", *BING), (f"R142{tag}", *BING)))
    assert ack_code_of(ack) == "AA", err_lines(ack)
