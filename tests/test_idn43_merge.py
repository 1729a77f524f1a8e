"""idn43: who may merge a record away (``persons.merge_refused``, the one rule; rv42f HIGH). On a site that declares
its registration applications, a merge (A40, A47...) from another application is held for the operator unless that
application registered both records itself: W 205 at MRG-1, neither record changed, the message listed and the
operator's decision replaying it with the merge taken. On a site declaring none, a merge moving a resident ID number
onto a numberless record of another name is held the same way. Real HL7 v2 over ``POST /hl7v2`` and the ingestor (one
by one and in one batch), reads over ``/fhir``, ``/admin`` and the resident's phone; both backends."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng, module_eng_http, undeclared_eng, undeclared_eng_http
from tests.owner41_calls import decide, held_w, nids
from tests.test_decl42b_identity import _held, _merge, _observed
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients

__all__ = ["module_eng", "module_eng_http", "undeclared_eng", "undeclared_eng_http"]  # (``http``, ``uhttp``)


def _merge_held(ack: bytes, app: str) -> None:
    """AA with one W 205 at MRG-1 saying the record is not merged away, naming MSH-3 ``app`` held for the operator."""
    assert held_w(ack), ack
    (line,) = [x for x in err_lines(ack) if x.startswith("ERR||MRG^1^1|") and "|205^" in x]
    assert "MRG-1's record is not merged away" in line and f"(MSH-3 {app}" in line, line


def _a47(control: str, pid3: str, name: str, birth: str, mrg1: str, app: str) -> str:
    """ADT^A47 (change patient identifier list): MRG-1's record renumbered as PID-3's."""
    return (f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A47^ADT_A30|{control}|P|2.5.1\r"
            f"EVN|A47|20261201121500\rPID|1||{pid3}||{name}||{birth}|F\rMRG|{mrg1}\r")


def _one(http: TestClient, mrn: str) -> dict:
    (record,) = patients(http, f"{MRN}|{mrn}")
    return record


def _links(record: dict) -> list[tuple[str, str]]:
    return [(lk["type"], lk["other"]["reference"]) for lk in record.get("link") or ()]


def _her_and_walk_in(http: TestClient, tag: str, c: str, birth: str) -> dict:
    """The HIS registers her record ``<tag>H`` with ``c``; the LIS's walk-in ``<tag>W`` (another name, no number,
    registered by the LIS's A04) has a result coded ``<tag>OBS``. Her record as stored."""
    assert ack_code_of(post(http, adt(f"{tag}Ha", f"{tag}H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^二十", birth, "F"))) == "AA"
    assert ack_code_of(post(http, oru(f"{tag}Wa", f"{tag}W^^^FNXRMYY^MR", "癸^二十", birth, "F", f"{tag}OBS"))) == "AA"
    assert ack_code_of(post(http, adt(f"{tag}Wb", f"{tag}W^^^FNXRMYY^MR", "癸^二十", birth, "F", app="LIS"))) == "AA"
    return _one(http, f"{tag}H")


def test_the_lis_merging_the_his_record_away_is_held_listed_and_the_operator_takes_it(
        module_eng: Engine, http: TestClient) -> None:
    """Shipped (declared) site, rv42f's case: the LIS's A40, PID its walk-in W (its own name, no number), MRG-1 the HIS's
    record H of her: AA with W 205 at MRG-1 naming MSH-3 LIS; H as it was (in use, her number, no link), W holding no
    number and no link; on the operator's list. Nothing lost: the operator's decision replays it with the merge taken
    (W replaces H, her number carried onto W)."""
    c = _nid("32092319800820020")
    her = _her_and_walk_in(http, "IM1", c, "19800820")
    ack = post(http, _merge("IM1M", "IM1W^^^FNXRMYY^MR", "癸^二十", "19800820", "IM1H^^^FNXRMYY^MR", "LIS"))
    _merge_held(ack, "LIS")
    assert c.encode() not in ack and "壬".encode() not in ack, ack
    h, w = _one(http, "IM1H"), _one(http, "IM1W")
    assert h.get("active", True) and nids(h) == {c} and not _links(h), h
    assert nids(w) == set() and not _links(w), w
    assert h["meta"]["versionId"] == her["meta"]["versionId"]
    assert _observed(module_eng, her, "IM1OBS") == []
    assert "IM1M" in _held(http, module_eng)
    r = decide(http, module_eng, "IM1M", "idn43-ops")
    assert r.status_code == 200, r.text
    h, w = _one(http, "IM1H"), _one(http, "IM1W")
    assert ("replaced-by", f"Patient/{w['id']}") in _links(h) and ("replaces", f"Patient/{h['id']}") in _links(w)
    assert nids(w) == {c}, w


def test_the_lis_merging_its_walk_in_into_the_his_record_is_held_the_his_merge_taken(
        module_eng: Engine, http: TestClient) -> None:
    """Shipped site, the opposite direction: the LIS's A40, PID the HIS's record H of her, MRG-1 its own walk-in W --
    held (W 205 at MRG-1 naming the PID's record's registrar), W still in use, her resident reads nothing of W's
    result: what the LIS met without the card does not become her record on its word (decl42b). The HIS's A40 of the
    same two records is taken: her resident reads W's result."""
    c = _nid("32092319800821020")
    her = _her_and_walk_in(http, "IM2", c, "19800821")
    ack = post(http, _merge("IM2M", f"IM2H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^二十", "19800821", "IM2W^^^FNXRMYY^MR",
                            "LIS"))
    _merge_held(ack, "LIS")
    (line,) = [x for x in err_lines(ack) if x.startswith("ERR||MRG^1^1|")]
    assert "the PID's record was registered by another application (MSH-3 HIS)" in line, line
    assert not _links(_one(http, "IM2W")) and _observed(module_eng, her, "IM2OBS") == []
    ack = post(http, _merge("IM2N", f"IM2H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^二十", "19800821", "IM2W^^^FNXRMYY^MR",
                            "HIS"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert _observed(module_eng, her, "IM2OBS"), "the HIS's merge joins the walk-in to her record"


def test_the_lis_merging_its_own_two_walk_ins_is_taken(module_eng: Engine, http: TestClient) -> None:
    """Guard (the LIS's own duplicates): two numberless walk-ins the LIS registered (A04); its A40 merging the first
    into the second: AA without W 205, the merge filed. The same with the first holding a number (the LIS's own, nobody
    else's) is held since idn43b: only a declared registration application moves an ID number by merging (rv43d
    HIGH 1) -- the operator's decision takes it, the number carried."""
    assert ack_code_of(post(http, adt("IM3Ca", "IM3C^^^FNXRMYY^MR", "癸^二二", "19800822", "F", app="LIS"))) == "AA"
    assert ack_code_of(post(http, adt("IM3Da", "IM3D^^^FNXRMYY^MR", "癸^二二", "19800822", "F", app="LIS"))) == "AA"
    ack = post(http, _merge("IM3N", "IM3D^^^FNXRMYY^MR", "癸^二二", "19800822", "IM3C^^^FNXRMYY^MR", "LIS"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    d = _one(http, "IM3D")
    assert ("replaced-by", f"Patient/{d['id']}") in _links(_one(http, "IM3C"))
    c = _nid("32092319800822020")
    assert ack_code_of(post(http, adt("IM3Aa", f"IM3A^^^FNXRMYY^MR~{c}^^^^NNCHN", "癸^二二", "19800822", "F",
                                      app="LIS"))) == "AA"
    assert ack_code_of(post(http, adt("IM3Ba", "IM3B^^^FNXRMYY^MR", "癸^二二", "19800822", "F", app="LIS"))) == "AA"
    _merge_held(post(http, _merge("IM3M", "IM3B^^^FNXRMYY^MR", "癸^二二", "19800822", "IM3A^^^FNXRMYY^MR", "LIS")),
                "LIS")
    assert nids(_one(http, "IM3B")) == set() and nids(_one(http, "IM3A")) == {c}
    assert decide(http, module_eng, "IM3M", "idn43-ops").status_code == 200
    a, b = _one(http, "IM3A"), _one(http, "IM3B")
    assert ("replaced-by", f"Patient/{b['id']}") in _links(a) and nids(b) == {c}, (a, b)


def test_the_lis_a47_renumbering_the_his_record_is_held(module_eng: Engine, http: TestClient) -> None:
    """Shipped site: the LIS's A47 renumbering the HIS's record H of her as a new MRN IM4N under its walk-in's name:
    held (W 205 at MRG-1), H as it was, no record IM4N holding her number; the HIS's own A47 is taken."""
    c = _nid("32092319800823020")
    assert ack_code_of(post(http, adt("IM4Ha", f"IM4H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^二三", "19800823", "F"))) == "AA"
    ack = post(http, _a47("IM4M", "IM4N^^^FNXRMYY^MR", "癸^二三", "19800823", "IM4H^^^FNXRMYY^MR", "LIS"))
    _merge_held(ack, "LIS")
    h = _one(http, "IM4H")
    assert h.get("active", True) and nids(h) == {c} and not _links(h), h
    assert all(nids(p) == set() for p in patients(http, f"{MRN}|IM4N")), "the held renumbering moved nothing"
    ack = post(http, _a47("IM4P", "IM4Q^^^FNXRMYY^MR", "壬^二三", "19800823", "IM4H^^^FNXRMYY^MR", "HIS"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(_one(http, "IM4Q")) == {c}


def test_a_merge_held_decides_in_one_batch_as_one_by_one(module_eng: Engine, http: TestClient) -> None:
    """Her registration, the LIS's walk-in result and A04, and its A40 merging her record into the walk-in -- one by
    one and in one ingestor batch: the same ACKs, one W 205 on the A40, her record in use and unlinked, her resident
    reading nothing of the walk-in's result."""
    for tag, batch in (("IM5S", False), ("IM5B", True)):
        c = _nid("32092319800824020" if not batch else "32092319800825020")
        birth = "19800824" if not batch else "19800825"
        messages = [adt(f"{tag}Ha", f"{tag}H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^二四", birth, "F"),
                    oru(f"{tag}Wa", f"{tag}W^^^FNXRMYY^MR", "癸^二四", birth, "F", f"{tag}OBS"),
                    adt(f"{tag}Wb", f"{tag}W^^^FNXRMYY^MR", "癸^二四", birth, "F", app="LIS"),
                    _merge(f"{tag}M", f"{tag}W^^^FNXRMYY^MR", "癸^二四", birth, f"{tag}H^^^FNXRMYY^MR", "LIS")]
        raws = [(m.encode(), "mllp", "t") for m in messages]
        outs = (module_eng.ingestor.process(raws) if batch
                else [o for r in raws for o in module_eng.ingestor.process([r])])
        assert [ack_code_of(o.ack) for o in outs] == ["AA"] * 4, (tag, [o.ack for o in outs])
        assert [sum("|205^" in e for e in err_lines(o.ack)) for o in outs] == [0, 0, 0, 1], tag
        her = _one(http, f"{tag}H")
        assert not _links(her) and nids(her) == {c}, (tag, her)
        assert _observed(module_eng, her, f"{tag}OBS") == [], tag


def test_undeclared_a_merge_moving_her_number_onto_another_name_is_held(
        undeclared_eng: Engine, uhttp: TestClient) -> None:
    """Site declaring none: any application's A40 (the HIS's name here, nothing tells them apart) merging her record H
    into a numberless record W of another name in PID: held W 205 at MRG-1, H in use with her number, W numberless;
    listed. The same merge stating her name in PID (the one woman registered twice) is taken and carries the number."""
    c = _nid("32092319800826020")
    birth = "19800826"
    assert ack_code_of(post(uhttp, adt("IM6Ha", f"IM6H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^二六", birth, "F"))) == "AA"
    assert ack_code_of(post(uhttp, adt("IM6Wa", "IM6W^^^FNXRMYY^MR", "癸^二六", birth, "F"))) == "AA"
    ack = post(uhttp, _merge("IM6M", "IM6W^^^FNXRMYY^MR", "癸^二六", birth, "IM6H^^^FNXRMYY^MR", "HIS"))
    _merge_held(ack, "HIS")
    h, w = _one(uhttp, "IM6H"), _one(uhttp, "IM6W")
    assert nids(h) == {c} and not _links(h) and nids(w) == set(), (h, w)
    assert "IM6M" in _held(uhttp, undeclared_eng)
    ack = post(uhttp, _merge("IM6N", "IM6W^^^FNXRMYY^MR", "壬^二六", birth, "IM6H^^^FNXRMYY^MR", "HIS"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(_one(uhttp, "IM6W")) == {c}


def test_the_held_merge_registers_nothing(module_eng: Engine, http: TestClient) -> None:
    """The held A40's Provenance says the merge was held (reason ``merge-held``) and names no record merged away: a
    merge counts as its survivor's registration, a held one as none's (``persons.registers_nothing``)."""
    c = _nid("32092319800827020")
    her = _her_and_walk_in(http, "IM7", c, "19800827")
    _merge_held(post(http, _merge("IM7M", "IM7W^^^FNXRMYY^MR", "癸^二十", "19800827", "IM7H^^^FNXRMYY^MR",
                                  "LIS")), "LIS")
    w = _one(http, "IM7W")
    provs = http.get("/fhir/Provenance", params={"target": f"Patient/{w['id']}"}).json().get("entry") or ()
    (held,) = [e["resource"] for e in provs if e["resource"]["activity"]["text"].startswith("ADT^A40")]
    assert [c["code"] for r in held.get("reason") or () for c in r["coding"]] == ["merge-held"], held
    assert f"Patient/{her['id']}" not in json.dumps(held["target"]), held
