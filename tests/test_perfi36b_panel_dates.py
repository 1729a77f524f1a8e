"""perfi36b: a panel's results dated against every message that stated them, each Provenance read once
a write (``engine.ingest._Dates.of``, thirty-sixth round).

A re-run of a panel asks the same Provenances once per result; they are now read once for the write and
served to each result after. These tests pin that each result still gets the whole answer: a panel
stated by one message and resent unchanged by a later one (two Provenances naming the same versions),
then restated with other values at a time between the two, is held at every result's OBX-5 -- not only
the first one asked -- and a restatement later than both is taken at every result.

Real HL7 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back
over ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng

__all__ = ["engine", "module_http"]

engine = module_eng  # filler numbers, record numbers and control ids of their own (P36B-...)

_TESTS = (("GLU", "葡萄糖", "mmol/L"), ("UREA", "尿素", "mmol/L"), ("CREA", "肌酐", "umol/L"))


def _panel(control: str, stamp: str, values: tuple[str, str, str], order: str) -> str:
    """FNXRMYY's three-result chemistry panel of 钱^六 under filler ``order``, sent by the LIS at ``stamp``."""
    lines = [f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1",
             f"PID|1||{order}^^^FNXRMYY^MR||钱^六||19650417|M",
             f"ORC|RE|{order}P^HIS|{order}^LIS||CM",
             f"OBR|1|{order}P^HIS|{order}^LIS|CHEM^生化^L|||20261203080000||||||||||||||||CH|F"]
    for n, ((code, name, unit), value) in enumerate(zip(_TESTS, values, strict=True), start=1):
        lines.append(f"OBX|{n}|NM|{code}^{name}^L||{value}|{unit}||N|||F|||20261203083000")
    return "\r".join(lines) + "\r"


def _values(http: TestClient, ids: list[str]) -> list[float]:
    return [http.get(f"/fhir/Observation/{i}").json()["valueQuantity"]["value"] for i in ids]


def _versions(http: TestClient, ids: list[str]) -> list[str]:
    return [http.get(f"/fhir/Observation/{i}").json()["meta"]["versionId"] for i in ids]


def _stated_then_resent(engine: Engine, http: TestClient, tag: str) -> list[str]:
    """The panel stated at 10:00 and resent unchanged at 12:00 (no new version: the resend's Provenance
    names the same versions); the results' ids, in OBX order."""
    order = f"P36B{tag}"
    assert b"MSA|AA" in post(http, _panel(f"P36B-{tag}A", "20261203100000", ("5.6", "4.1", "70"), order))
    obs = written(engine, http, f"P36B-{tag}A", "Observation")
    by_code = {o["code"]["coding"][0]["code"]: o["id"] for o in obs}
    ids = [by_code[code] for code, _, _ in _TESTS]
    before = _versions(http, ids)
    assert b"MSA|AA" in post(http, _panel(f"P36B-{tag}B", "20261203120000", ("5.6", "4.1", "70"), order))
    assert _versions(http, ids) == before  # stated again unchanged: no new version
    return ids


def test_a_restatement_between_the_panel_and_its_resend_is_held_at_every_result(
        engine: Engine, http: TestClient) -> None:
    """Stated at 10:00, resent at 12:00, restated 11:00 with other values: every result is held against the
    12:00 resend (each result's dating reads both Provenances, the second result's and third's from the
    first's read), a W at each OBX-5, nothing written."""
    ids = _stated_then_resent(engine, http, "1")
    before = _versions(http, ids)
    ack = post(http, _panel("P36B-1C", "20261203110000", ("6.9", "5.3", "88"), "P36B1"))
    assert b"MSA|AA" in ack, ack
    held = sorted(e.split("|")[2] for e in err_lines(ack) if "not later" in e and e.split("|")[4] == "W")
    assert held == ["OBX^1^5", "OBX^2^5", "OBX^3^5"], ack
    assert all("P36B-1B" in e for e in err_lines(ack) if "not later" in e), ack  # the later one: the resend
    assert _values(http, ids) == [5.6, 4.1, 70]
    assert _versions(http, ids) == before


def test_a_restatement_later_than_both_is_taken_at_every_result(engine: Engine, http: TestClient) -> None:
    """The same panel restated at 13:00, later than both messages that stated it: every result taken."""
    ids = _stated_then_resent(engine, http, "2")
    ack = post(http, _panel("P36B-2C", "20261203130000", ("6.9", "5.3", "88"), "P36B2"))
    assert b"MSA|AA" in ack and b"not later" not in ack, ack
    assert _values(http, ids) == [6.9, 5.3, 88]


def test_no_messages_dating_is_kept_past_its_batch(engine: Engine, http: TestClient) -> None:
    """Each message's dating (``engine.ingest._Dates``: its item, raw bytes, conversion and the message
    documents it read) serves its own batch's later messages only: after the batches are committed none
    is reachable -- the one-commit path kept every one for the engine's life (thirty-sixth round,
    perfi36b)."""
    import gc

    from engine.ingest import _Dates

    for n in range(4):
        assert b"MSA|AA" in post(http, _panel(f"P36B-3{n}", f"2026120310{n}000", ("5.6", "4.1", str(70 + n)),
                                              "P36B3"))
    gc.collect()
    assert [o for o in gc.get_objects() if isinstance(o, _Dates)] == []
