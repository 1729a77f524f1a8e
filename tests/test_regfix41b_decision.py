"""regfix41b: the operator's decision on a held renumbering never gives a record a resident ID number another record
holds, and a record merged away is judged on its survivor's number (rv41d HIGH 1, HIGH 2, LOW 6).

Real HL7 v2 through ``POST /hl7v2`` and the ingestor's batch, the real store on each backend, ``/admin`` with an
operator's token, ``/fhir`` read back as a resident; the console's ``huren quarantine replay ID --as-owner`` on
SQLite (the CLI opens the store anew)."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.cli import main
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.hl7_calls import post
from tests.identity39_calls import engine_and_client, registered
from tests.module_store import undeclared_eng as module_eng  # (a site declaring none: decl42)
from tests.module_store import undeclared_site
from tests.owner41_calls import REASON, decide, held_w, nids, operator, resident_reads, shown
from tests.test_ingest_replay import site_env
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients

__all__ = ["module_eng", "site_env"]

both = engine_and_client("regfix41b")
OPS = "regfix41b-ops"
_ops = partial(operator, ops=OPS)
_decide = partial(decide, ops=OPS)
_shown = partial(shown, ops=OPS)
_reads = partial(resident_reads, client_id="rf41b-phone")


def _held(http: TestClient, engine: Engine) -> set[str]:
    r = http.get("/admin/held", headers=_ops(engine))
    assert r.status_code == 200, r.text
    return {m["control_id"] for m in r.json()["items"]}


def test_the_decision_is_refused_while_another_record_holds_the_number(both: tuple[Engine, TestClient]) -> None:
    """HIS registers RA (number a, an HbA1c) and RB (number b, another woman of one name and birth date); the LIS's
    walk-in A04 under RA states b: held. The operator's view of it says the decision is unavailable, naming RB by its
    MRN only; the decision is 409 saying so (no number), nothing reopened; RA keeps a, RB's resident reads nothing of
    RA. The HIS then takes b off RB (its null: RB's number was the wrong one): the view no longer bars it, and the
    decision gives RA b."""
    engine, http = both
    a, b = (_nid(f"32092319700307{k}02") for k in range(2))
    ra = registered(http, "RA", "RA1", "甲^七", "19700307", "F", f"~{a}^^^^NNCHN")
    rb = registered(http, "RB", "RB1", "甲^七", "19700307", "F", f"~{b}^^^^NNCHN")
    assert ack_code_of(post(http, oru("RA9", "RA^^^FNXRMYY^MR", "甲^七", "19700307", "F", "HBA1C"))) == "AA"
    assert held_w(post(http, adt("RA2", f"RA^^^FNXRMYY^MR~{b}^^^^NNCHN", "甲^七", "19700307", "F", app="LIS")))
    doc = _shown(http, engine, "RA2")
    (claim,) = doc["held_claims"]
    assert claim["unavailable"] == {"merged": False, "mrn": "RB"}, claim
    assert b not in json.dumps(claim) and a not in json.dumps(claim)
    before = engine.ingestor.messages.get(message_id("FNXRMYY", "RA2"))
    decided = _decide(http, engine, "RA2")
    assert decided.status_code == 409, decided.text
    said = decided.json()["issue"][0]["diagnostics"]
    assert "held by another record (MRN RB at FNXRMYY)" in said and "merge the two records (A40) after" in said, said
    assert a not in said and b not in said and rb["id"] not in said, said
    after = engine.ingestor.messages.get(message_id("FNXRMYY", "RA2"))
    assert after["replays"] == before["replays"] and after["status"] == "processed", after.get("replays")
    assert "RA2" in _held(http, engine)
    (now,) = patients(http, f"{MRN}|RA")
    assert nids(now) == {a}, nids(now)
    seen = _reads(engine, rb, [f"/fhir/Patient/{ra['id']}", "/fhir/Observation", "/fhir/AuditEvent"])
    assert not any(ra["id"] in t or "HBA1C" in t for t in seen), seen
    # the other record corrected first (its registrar's null): the decision is the operator's again
    assert ack_code_of(post(http, adt("RB2", 'RB^^^FNXRMYY^MR~""^^^^NNCHN', "甲^七", "19700307", "F"))) == "AA"
    (rb_now,) = patients(http, f"{MRN}|RB")
    assert not nids(rb_now), nids(rb_now)
    assert "unavailable" not in _shown(http, engine, "RA2")["held_claims"][0]
    decided = _decide(http, engine, "RA2")
    assert decided.status_code == 200 and decided.json()["decided"]["used"] is True, decided.text
    (now,) = patients(http, f"{MRN}|RA")
    assert nids(now) == {b}, nids(now)


def test_a_merged_away_records_renumbering_is_held_live_and_never_decided(both: tuple[Engine, TestClient]) -> None:
    """HIS registers RC (number a), RD (none) and RE (number b, another woman); the HIS merges RC into RD (A40: RD now
    holds a). The LIS then sends a walk-in A04 under RC's MRN stating b: held (W 205, the HIS registered the
    survivor's number), not taken -- b on RE alone; the view bars the decision (merged into RD, by its MRN) and the
    decision is 409 saying so."""
    engine, http = both
    a, b = (_nid(f"32092319700308{k}02") for k in range(2))
    registered(http, "RC", "RC1", "甲^八", "19700308", "F", f"~{a}^^^^NNCHN")
    registered(http, "RD", "RD1", "甲^八", "19700308", "F")
    re_ = registered(http, "RE", "RE1", "甲^八", "19700308", "F", f"~{b}^^^^NNCHN")
    assert ack_code_of(post(http, merge("RC3", "RD^^^FNXRMYY^MR", "甲^八", "19700308", "F", "RC^^^FNXRMYY^MR"))) == "AA"
    (rd,) = patients(http, f"{MRN}|RD")
    assert nids(rd) == {a}, nids(rd)
    ack = post(http, adt("RC4", f"RC^^^FNXRMYY^MR~{b}^^^^NNCHN", "甲^八", "19700308", "F", app="LIS"))
    assert held_w(ack) and b"MSH-3 HIS" in ack, ack
    assert [p["id"] for p in patients(http, b)] == [re_["id"]]
    (claim,) = _shown(http, engine, "RC4")["held_claims"]
    assert claim["unavailable"] == {"merged": True, "mrn": "RD"}, claim
    decided = _decide(http, engine, "RC4")
    assert decided.status_code == 409, decided.text
    said = decided.json()["issue"][0]["diagnostics"]
    assert "was merged into another record (MRN RD at FNXRMYY)" in said and a not in said and b not in said, said
    assert [p["id"] for p in patients(http, b)] == [re_["id"]]
    seen = _reads(engine, re_, [f"/fhir/Patient/{rd['id']}", f"/fhir/Patient/{re_['id']}/$everything"])
    assert not any(rd["id"] in t or a in t for t in seen), seen


def test_one_batch_holds_the_merged_away_records_renumbering_as_one_by_one(module_eng: Engine) -> None:
    """The A40 and the LIS's A04 under the merged-away MRN in one batch: held as one by one (the merge read as the
    batch leaves the record: ``_as_left_linked``), b on no record but RH's."""
    a, b = (_nid(f"32092319700309{k}02") for k in range(2))
    with TestClient(create_app(module_eng)) as http:
        http.headers["Authorization"] = "Bearer " + module_eng.auth.issue_system_token("rf41b", "system/*.cruds")
        registered(http, "RF", "RF1", "甲^九", "19700309", "F", f"~{a}^^^^NNCHN")
        registered(http, "RG", "RG1", "甲^九", "19700309", "F")
        rh = registered(http, "RH", "RH1", "甲^九", "19700309", "F", f"~{b}^^^^NNCHN")
        batch = [merge("RF3", "RG^^^FNXRMYY^MR", "甲^九", "19700309", "F", "RF^^^FNXRMYY^MR"),
                 adt("RF4", f"RF^^^FNXRMYY^MR~{b}^^^^NNCHN", "甲^九", "19700309", "F", app="LIS")]
        acks = [o.ack for o in module_eng.ingestor.process([(m.encode(), "mllp", "t") for m in batch])]
        assert ack_code_of(acks[0]) == "AA" and held_w(acks[1]), acks
        assert [p["id"] for p in patients(http, b)] == [rh["id"]]
        (rf,) = patients(http, f"{MRN}|RF")
        assert not nids(rf), nids(rf)


@pytest.fixture
def undeclared_env(site_env: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """``site_env`` on a site declaring no registration application (``HUREN_SITE``, the console's too: decl42)."""
    site = undeclared_site(tmp_path / "site")
    monkeypatch.setenv("HUREN_SITE", str(site))
    return site_env.with_(site=site)


def test_the_console_decision_is_refused_too(undeclared_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """``huren quarantine replay ID --as-owner REASON`` on the walk-in naming another record's number: refused (exit
    1) with the same words, nothing reopened; the record keeps its number."""
    site_env = undeclared_env
    a, b = _nid("32092319700310002"), _nid("32092319700310012")
    with Engine(site_env) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rf41b", "system/*.cruds")
        registered(http, "RJ", "RJ1", "甲^十", "19700310", "F", f"~{a}^^^^NNCHN")
        registered(http, "RK", "RK1", "甲^十", "19700310", "F", f"~{b}^^^^NNCHN")
        assert held_w(post(http, adt("RJ2", f"RJ^^^FNXRMYY^MR~{b}^^^^NNCHN", "甲^十", "19700310", "F", app="LIS")))
    msg = message_id("FNXRMYY", "RJ2")
    capsys.readouterr()
    assert main(["quarantine", "replay", msg, "--as-owner", REASON]) == 1
    err = capsys.readouterr().err
    assert "held by another record (MRN RK at FNXRMYY)" in err and b not in err, err
    with Engine(site_env) as engine:
        assert not (engine.ingestor.messages.get(msg) or {}).get("replays")
        (rec,) = engine.repository.search("Patient", [("identifier", f"{MRN}|RJ")]).resources
        assert nids(rec) == {a}


def test_the_page_says_the_decision_is_unavailable_before_any_confirmation() -> None:
    """The page's words (index.html) and its rule (app.js): a held claim carrying ``unavailable`` is not decidable
    (the owner box hidden), the barred box says why in Chinese naming the other record by 病历号, and the ID-number
    why no longer asks only whether the card's number is right."""
    static = Path(__file__).resolve().parent.parent / "engine" / "api" / "static" / "quarantine"
    page, script = (static / "index.html").read_text("utf-8"), (static / "app.js").read_text("utf-8")
    assert "已属于另一份病历" in page and "已合并到另一份病历" in page and "来就诊的是否确是本病历的居民" in page
    assert "!c.elsewhere && !c.unavailable" in script and '"病历号 " + u.mrn' in script
