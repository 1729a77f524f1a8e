"""idn43b: rv43d's findings on idn43's merge rule (``persons.merge_refused``, the one rule of who may merge a record
away). On a site that declares its registration applications, a merge from any other application that would move a
resident ID number MRG-1's record holds onto a survivor not holding it is held, even when that application registered
both records (rv43d HIGH 1); on a site declaring none, a name missing on either record is no agreement (HIGH 2); the
operator's decision of a held merge is refused when MRG-1's record changed since the hold (MED 1), and two held merges
of one record leave no link (MED 2) -- rv43d's probes in ``tests/test_rv43d_probes.py``. These add what the page says,
the decision taking the held merge, and the guards beside them. Real HL7 v2 over ``POST /hl7v2``, reads over
``/fhir``, ``/admin`` and the resident's phone; both backends."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.escapes import unescape
from engine.api.ui_quarantine import WORDS, err_said
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng, module_eng_http, undeclared_eng, undeclared_eng_http
from tests.owner41_calls import decide, nids
from tests.test_decl42b_identity import _held, _merge, _observed
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients

__all__ = ["module_eng", "module_eng_http", "undeclared_eng", "undeclared_eng_http"]  # (``http``, ``uhttp``)


def _one(http: TestClient, mrn: str) -> dict:
    (record,) = patients(http, f"{MRN}|{mrn}")
    return record


def _held_line(ack: bytes) -> str:
    """The one W 205 at MRG-1 of an AA: the held merge's words."""
    assert ack_code_of(ack) == "AA", ack
    (line,) = [x for x in err_lines(ack) if x.startswith("ERR||MRG^1^1|") and "|205^" in x and "|W|" in x]
    return line


def _zh(engine: Engine, line: str) -> str:
    """The Chinese the refused-messages page gives that ERR line."""
    parts = line.split("|")
    return err_said(WORDS.current(engine.settings.site), parts[3].split("^")[0], unescape(parts[8]))[0]


def _his_numbered_walk_in(http: TestClient, tag: str, c: str, birth: str) -> dict:
    """Her record ``<tag>H`` (the HIS's, number ``c``); the LIS's walk-in ``<tag>W`` under her name, which the
    declared HIS's A08 then gives her number; the LIS's walk-in ``<tag>V`` of another name with a result coded
    ``<tag>OBS``. Her record as stored."""
    assert ack_code_of(post(http, adt(f"{tag}Ha", f"{tag}H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^亥", birth, "F"))) == "AA"
    assert ack_code_of(post(http, adt(f"{tag}Wa", f"{tag}W^^^FNXRMYY^MR", "壬^亥", birth, "F", app="LIS"))) == "AA"
    ack = post(http, adt(f"{tag}Wb", f"{tag}W^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^亥", birth, "F", event="A08"))
    assert ack_code_of(ack) == "AA" and not [x for x in err_lines(ack) if "|205^" in x], err_lines(ack)
    assert ack_code_of(post(http, oru(f"{tag}Va", f"{tag}V^^^FNXRMYY^MR", "癸^亥", birth, "F", f"{tag}OBS"))) == "AA"
    assert ack_code_of(post(http, adt(f"{tag}Vb", f"{tag}V^^^FNXRMYY^MR", "癸^亥", birth, "F", app="LIS"))) == "AA"
    return _one(http, f"{tag}H")


def test_the_lis_moving_the_his_number_by_merging_is_held_in_words_and_the_operator_takes_it(
        module_eng: Engine, http: TestClient) -> None:
    """Shipped (declared) site: the LIS's A40 merging its walk-in W (numbered by the HIS with her number) into its
    walk-in V of another name is held -- the W names MSH-3 LIS and the declared applications, never her number or
    name, and the page says it in its own words (w-merge-held-moves-number). The message is listed; V holds no number
    and her resident reads nothing of V's result. The operator's decision replays it with the merge taken."""
    c = _nid("32092319810113020")
    her = _his_numbered_walk_in(http, "IB1", c, "19810113")
    line = _held_line(post(http, _merge("IB1M", "IB1V^^^FNXRMYY^MR", "癸^亥", "19810113", "IB1W^^^FNXRMYY^MR", "LIS")))
    assert "move a resident ID number" in line and "(MSH-3 LIS)" in line and "(MSH-3 HIS)" in line, line
    assert c not in line and "壬" not in line, line
    zh = _zh(module_eng, line)
    assert zh.startswith("暂未合并：合并会把 MRG-1 病历持有的居民身份证号") and "MSH-3 HIS" in zh and "MSH-3 LIS" in zh, zh
    assert "IB1M" in _held(http, module_eng)
    w = _one(http, "IB1W")
    assert w.get("active", True) and nids(w) == {c}, w
    assert [lk["type"] for lk in w.get("link") or ()] == ["seealso"], w  # (her record H, by the number: no merge)
    assert nids(_one(http, "IB1V")) == set() and _observed(module_eng, her, "IB1OBS") == []
    r = decide(http, module_eng, "IB1M", "idn43b-ops")
    assert r.status_code == 200, r.text
    v = _one(http, "IB1V")
    assert _one(http, "IB1W").get("active") is False and ("replaces", f"Patient/{w['id']}") in [
        (lk["type"], lk["other"]["reference"]) for lk in v.get("link") or ()], v


def test_the_declared_his_moving_the_number_by_merging_is_taken(module_eng: Engine, http: TestClient) -> None:
    """Guard: the same A40 from the declared HIS is taken (its word says whose record is whose): no W 205."""
    c = _nid("32092319810114020")
    _his_numbered_walk_in(http, "IB2", c, "19810114")
    ack = post(http, _merge("IB2M", "IB2V^^^FNXRMYY^MR", "癸^亥", "19810114", "IB2W^^^FNXRMYY^MR", "HIS"))
    assert ack_code_of(ack) == "AA" and not [x for x in err_lines(ack) if "MRG^1^1" in x], err_lines(ack)
    assert _one(http, "IB2W").get("active") is False


def test_the_lis_merging_its_walk_in_into_one_holding_the_same_number_is_taken(
        module_eng: Engine, http: TestClient) -> None:
    """Guard: the number moves nowhere new when the survivor already holds it -- the LIS merging its two walk-ins the
    HIS numbered alike (one person registered twice) is taken, as the LIS merging two numberless walk-ins is."""
    c = _nid("32092319810115020")
    assert ack_code_of(post(http, adt("IB3Ha", f"IB3H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^亥", "19810115", "F"))) == "AA"
    for t in ("IB3W", "IB3V"):
        assert ack_code_of(post(http, adt(f"{t}a", f"{t}^^^FNXRMYY^MR", "壬^亥", "19810115", "F", app="LIS"))) == "AA"
        ack = post(http, adt(f"{t}b", f"{t}^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^亥", "19810115", "F", event="A08"))
        assert ack_code_of(ack) == "AA" and not [x for x in err_lines(ack) if "|205^" in x], err_lines(ack)
    ack = post(http, _merge("IB3M", "IB3V^^^FNXRMYY^MR", "壬^亥", "19810115", "IB3W^^^FNXRMYY^MR", "LIS"))
    assert ack_code_of(ack) == "AA" and not [x for x in err_lines(ack) if "MRG^1^1" in x], err_lines(ack)
    assert _one(http, "IB3W").get("active") is False and nids(_one(http, "IB3V")) == {c}


def test_undeclared_a_merge_of_her_nameless_record_onto_another_is_held(
        undeclared_eng: Engine, uhttp: TestClient) -> None:
    """Site declaring none, the other side of rv43d HIGH 2: her record H registered with her number and no name
    (PID-5 empty); the LIS's A40, PID its named walk-in W, MRG-1 H. Nothing says W is hers: held (W 205 at MRG-1, the
    page's words), W without her number, her resident reading nothing of W's result."""
    c = _nid("32092319810116020")
    assert ack_code_of(post(uhttp, adt("IU1Ha", f"IU1H^^^FNXRMYY^MR~{c}^^^^NNCHN", "", "19810116", "F"))) == "AA"
    her = _one(uhttp, "IU1H")
    assert "name" not in her
    assert ack_code_of(post(uhttp, oru("IU1Wa", "IU1W^^^FNXRMYY^MR", "癸^亥", "19810116", "F", "IU1OBS"))) == "AA"
    line = _held_line(post(uhttp, _merge("IU1M", "IU1W^^^FNXRMYY^MR", "癸^亥", "19810116", "IU1H^^^FNXRMYY^MR",
                                         "LIS")))
    assert "or MRG-1's record bears none" in line and c not in line, line
    assert "姓名（PID-5）也不同或缺失" in _zh(undeclared_eng, line)
    assert nids(_one(uhttp, "IU1W")) == set() and _observed(undeclared_eng, her, "IU1OBS") == []
    assert _one(uhttp, "IU1H").get("active", True)


def test_undeclared_the_same_merge_naming_her_is_taken(undeclared_eng: Engine, uhttp: TestClient) -> None:
    """Guard: both records named alike (one woman registered twice) -- the merge is taken as before."""
    c = _nid("32092319810117020")
    assert ack_code_of(post(uhttp, adt("IU2Ha", f"IU2H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^亥", "19810117", "F"))) == "AA"
    assert ack_code_of(post(uhttp, oru("IU2Wa", "IU2W^^^FNXRMYY^MR", "壬^亥", "19810117", "F", "IU2OBS"))) == "AA"
    ack = post(uhttp, _merge("IU2M", "IU2W^^^FNXRMYY^MR", "壬^亥", "19810117", "IU2H^^^FNXRMYY^MR", "LIS"))
    assert ack_code_of(ack) == "AA" and not [x for x in err_lines(ack) if "MRG^1^1" in x], err_lines(ack)
    assert nids(_one(uhttp, "IU2W")) == {c}


def test_a_held_merge_decided_after_mrg1s_record_changed_names_it(module_eng: Engine, http: TestClient) -> None:
    """rv43d MED 1, the words: the LIS's A40 (PID its walk-in W, MRG-1 her record H) held; the HIS's A08 then changes
    H's name (a new version, not a merge). The decision is refused 409 naming H's version held against: the operator was
    shown H as it was. A plain replay holds it again against what is stored now, and that is decided."""
    c = _nid("32092319810118020")
    assert ack_code_of(post(http, adt("IB4Ha", f"IB4H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^亥", "19810118", "F"))) == "AA"
    h = _one(http, "IB4H")
    assert ack_code_of(post(http, oru("IB4Wa", "IB4W^^^FNXRMYY^MR", "癸^亥", "19810118", "F", "IB4OBS"))) == "AA"
    assert ack_code_of(post(http, adt("IB4Wb", "IB4W^^^FNXRMYY^MR", "癸^亥", "19810118", "F", app="LIS"))) == "AA"
    _held_line(post(http, _merge("IB4M", "IB4W^^^FNXRMYY^MR", "癸^亥", "19810118", "IB4H^^^FNXRMYY^MR", "LIS")))
    ack = post(http, adt("IB4Hb", f"IB4H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^亥亥", "19810118", "F", event="A08"))
    assert ack_code_of(ack) == "AA", err_lines(ack)
    assert _one(http, "IB4H")["meta"]["versionId"] != h["meta"]["versionId"]
    r = decide(http, module_eng, "IB4M", "idn43b-ops")
    assert r.status_code == 409 and f"Patient/{h['id']} (held against version {h['meta']['versionId']}" in r.text, \
        r.text
    assert _one(http, "IB4H").get("active", True) and not _one(http, "IB4W").get("link")
