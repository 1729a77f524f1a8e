"""low44: a held merge whose PID names a record not filed anywhere (an A47's new identifier) files nothing of it.

idn43 held the LIS's A47 renumbering the HIS's record of her as a new MRN; the record under the new MRN was filed all
the same, with her new MRN, the walk-in's name and no number -- a record no registration spoke for, made of a change
that did not happen (note43 LOW, idn43b). Held, nothing is filed until the operator decides: her record as it was, no
record under the new MRN, the message listed; the operator's decision replays it and the renumbering is taken whole.
A held merge onto a record already filed still files the PID as that application's A08 would (guard). Real HL7 v2
over ``POST /hl7v2`` and the ingestor in one batch, ``/fhir`` and ``/admin`` over FastAPI, the real store; both
backends."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng, module_eng_http
from tests.owner41_calls import decide, nids, shown
from tests.test_idn43_merge import _a47, _links, _merge_held, _one
from tests.test_rvidentity32_probes import MRN, _nid, adt, patients

__all__ = ["module_eng", "module_eng_http"]  # (``http``)


def _her(http: TestClient, tag: str, c: str, birth: str) -> dict:
    """The HIS registers her record ``<tag>H`` with resident ID number ``c``: as stored."""
    assert ack_code_of(post(http, adt(f"{tag}Ha", f"{tag}H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四四", birth, "F"))) == "AA"
    return _one(http, f"{tag}H")


def test_a_held_a47_files_no_record_under_the_new_mrn_and_the_decision_renumbers(module_eng: Engine,
                                                                                 http: TestClient) -> None:
    """Shipped (declared) site: the LIS's A47 renumbering the HIS's record H as a new MRN N: held (W 205 at MRG-1),
    H as it was, and no record N at all -- not one without her number; the operator's decision takes the renumbering:
    N holds her number, H replaced by it."""
    c = _nid("32092319800901020")
    her = _her(http, "LA1", c, "19800901")
    ack = post(http, _a47("LA1M", "LA1N^^^FNXRMYY^MR", "壬^四四", "19800901", "LA1H^^^FNXRMYY^MR", "LIS"))
    _merge_held(ack, "LIS")
    assert patients(http, f"{MRN}|LA1N") == [], "a held renumbering filed the new MRN's record"
    h = _one(http, "LA1H")
    assert h.get("active", True) and nids(h) == {c} and not _links(h), h
    assert h["meta"]["versionId"] == her["meta"]["versionId"], "her record was written by a held renumbering"
    assert shown(http, module_eng, "LA1M", "low44-ops")  # (the operator's view of it answers 200)
    assert decide(http, module_eng, "LA1M", "low44-ops").status_code == 200
    n = _one(http, "LA1N")
    assert nids(n) == {c}, n
    assert ("replaced-by", f"Patient/{n['id']}") in _links(_one(http, "LA1H"))


def test_a_held_a47_files_nothing_in_a_batch_as_one_by_one(module_eng: Engine, http: TestClient) -> None:
    """Her registration and the LIS's A47 renumbering her record, in one ingestor batch: the same ACKs (AA, one W 205
    on the A47) and no record under the new MRN."""
    c = _nid("32092319800902020")
    messages = [adt("LA2Ha", f"LA2H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四四", "19800902", "F"),
                _a47("LA2M", "LA2N^^^FNXRMYY^MR", "壬^四四", "19800902", "LA2H^^^FNXRMYY^MR", "LIS")]
    outs = module_eng.ingestor.process([(m.encode(), "mllp", "t") for m in messages])
    assert [ack_code_of(o.ack) for o in outs] == ["AA", "AA"], [o.ack for o in outs]
    assert [sum("|205^" in e for e in err_lines(o.ack)) for o in outs] == [0, 1]
    assert patients(http, f"{MRN}|LA2N") == []
    assert nids(_one(http, "LA2H")) == {c}


def test_guard_a_held_merge_onto_a_filed_record_still_files_its_pid(module_eng: Engine, http: TestClient) -> None:
    """Guard: the LIS's A47 naming as the new MRN a record the LIS already filed (its walk-in W): held, H as it was,
    W still there and without her number -- the held merge leaves a filed survivor filed."""
    c = _nid("32092319800903020")
    _her(http, "LA3", c, "19800903")
    assert ack_code_of(post(http, adt("LA3Wa", "LA3W^^^FNXRMYY^MR", "癸^四四", "19800903", "F", app="LIS"))) == "AA"
    ack = post(http, _a47("LA3M", "LA3W^^^FNXRMYY^MR", "癸^四四", "19800903", "LA3H^^^FNXRMYY^MR", "LIS"))
    _merge_held(ack, "LIS")
    w = _one(http, "LA3W")
    assert nids(w) == set() and not _links(w), w
    assert nids(_one(http, "LA3H")) == {c}
