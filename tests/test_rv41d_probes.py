"""rv41d: review probes of xo41 (an order named by its accession alone; the filler's first statement assigns its
number) and reg41 (only the registering application renumbers a record; another's change held for the operator).

Real HL7 v2 through ``POST /hl7v2`` and the ingestor's batch, the real store on each backend, read back over
``/fhir`` and the admin API."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import NNCHN_SYSTEM, engine_and_client, registered, tokens
from tests.module_store import undeclared_eng as module_eng  # (a site declaring none: decl42)
from tests.module_store import undeclared_site
from tests.test_cdfix38_fixes import OID
from tests.test_code37_ris_change import CHEST, HEAD
from tests.test_codedoc38_order_owner import _codes
from tests.test_order35_as_later import _operator
from tests.test_probepay26_windows import CBC, engine, flags, msh, order, pid, result
from tests.test_recognition_e2e import Sender
from tests.test_rv40c_probes import _held_at_obr4, _one, _order
from tests.test_rv40d_probes import REASONS, _stated
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients
from tests.test_srfix35_order_code import B, http, send

__all__ = ["engine", "http", "module_eng"]

RIS = "urn:huren:id:RIS"
HIS = "urn:huren:id:HIS"


def _report_at(app: str, placer: str, filler: str, item: str, when: str, text: str) -> str:
    """The filler's final report of ``item`` at ``when`` under ``<placer>^HIS`` (none when empty) and ``filler``."""
    number = f"{placer}^HIS" if placer else ""
    return (msh(B, app, "ORU^R01^ORU_R01", when) + pid(B)
            + f"ORC|RE|{number}|{filler}||CM\n"
            + f"OBR|1|{number}|{filler}|{item}|||{when}||||||||||||||{when}|||F\n"
            + f"OBX|1|TX|{item}||{text}||||||F|||{when}\n")


def _reports_of(http: TestClient, order: dict[str, Any]) -> list[dict[str, Any]]:
    found = http.get("/fhir/DiagnosticReport", params={"based-on": f"ServiceRequest/{order['id']}"}).json()
    return [e["resource"] for e in found.get("entry") or ()]


def _texts(http: TestClient, order: dict[str, Any]) -> list[str]:
    out = []
    for report in _reports_of(http, order):
        for ref in report.get("result") or ():
            obs = http.get(f"/fhir/{ref['reference']}").json()
            out.append(str(obs.get("valueString")))
    return out


# --- xo41: an accession reused years later ----------------------------------------------------------------------


@pytest.mark.parametrize("named", ["by-placer", "accession-alone"])
def test_an_accession_reused_years_later_does_not_overwrite_the_old_report(http: TestClient, named: str) -> None:
    """2024: the HIS orders head CT, the RIS numbers it ACC and reports 未见异常. 2026: the HIS orders head CT again;
    the RIS (its accession counter wrapped) reports under ACC alone 右侧硬膜下血肿. The 2024 order's report must
    still say 未见异常 and the 2026 finding must not be filed as the 2024 exam's."""
    old, new, acc = f"RV41D-Y1{named}", f"RV41D-Y2{named}", f"RV41D-ACC{named}^RIS"
    t1, t2 = "20240312080000+0800", "20260312100000+0800"
    assert "MSA|AA" in send(http, _stated("HIS", old, "NW", HEAD, "", "").replace("20260312080000", "20240312080000"))
    assert "MSA|AA" in send(http, _report_at("RIS", old, acc, HEAD, t1, "未见异常"))
    before = _one(http, HIS, old)
    assert before["status"] == "completed" and _texts(http, before) == ["未见异常"], before
    assert "MSA|AA" in send(http, _stated("HIS", new, "NW", HEAD, "", ""))
    ack = send(http, _report_at("RIS", new if named == "by-placer" else "", acc, HEAD, t2, "右侧硬膜下血肿"))
    assert "MSA|A" in ack, ack
    after = _one(http, HIS, old)
    # (by the accession alone, held by no order but the 2024 one, only the time says "another exam" -- time is no
    # evidence (a correction stamped with its own time is the same exam's, rv41k HIGH 1): not told, refused AE
    # (xofix41c, rv41o HIGH 4). With the RIS's SC numbering the 2026 order, the accession alone is told:
    # tests/test_xofix41b_orders.py)
    assert _texts(http, after) == ["未见异常"], (_texts(http, after), ack)
    assert named == "by-placer" or ("MSA|AE" in ack and "is not told" in ack), ack


# --- xo41: the hospital's OID in OBR-3 from an application that is not the filler --------------------------------


def test_xo41_another_application_sharing_the_oid_does_not_number_and_recode_the_labs_order(http: TestClient) -> None:
    """The site's OID in every HD, MSH-4 plain (the demo's). The HIS orders head CT; the EMR ``EMR^<OID>^ISO``
    sends SC then XX (chest CT) under ``F<n>^LAB^<OID>^ISO`` -- the lab's namespace, which the EMR does not own --
    before the lab has said a word. Neither may number nor recode the order (rv40c MED 1: the OID alone names no
    application); the LIS's own report of head CT under that number is then filed on the order, head CT."""
    placer = "RV41D-SPOOF"
    filler = f"F{placer}^LAB^{OID}^ISO"
    assert "MSA|AA" in send(http, _order("HIS", placer, "HIS"))
    sc = send(http, _order(f"EMR^{OID}^ISO", placer, "HIS", "SC", HEAD, filler))
    xx = send(http, _order(f"EMR^{OID}^ISO", placer, "HIS", "XX", CHEST, filler))
    rep = send(http, _report_at(f"LIS^{OID}^ISO", placer, filler, HEAD, "20260312110000+0800", "正常"))
    assert _held_at_obr4(sc) and _held_at_obr4(xx), (sc, xx)
    assert "3002" in _codes(_one(http, HIS, placer)) and "MSA|AA" in rep, rep


# --- reg41: the operator's decision on a held renumbering ------------------------------------------------------

both = engine_and_client("rv41d")
REASON = "已核对居民身份证，本消息的号码正确"


def _decide(http: TestClient, engine: Engine, control: str) -> Any:
    return http.post(f"/admin/quarantine/{message_id('FNXRMYY', control)}/owner",
                     headers={**_operator(engine, "system/MessageHeader.cr", "rv41d-ops"),
                              "Content-Type": "application/json"},
                     content=json.dumps({"reason": REASON}))


def _held_ids(http: TestClient, engine: Engine) -> dict[str, dict]:
    r = http.get("/admin/held", headers=_operator(engine, "system/MessageHeader.cr", "rv41d-ops"))
    assert r.status_code == 200, r.text
    return {m["control_id"]: m for m in r.json()["items"]}


def _nids(rec: dict) -> set[str]:
    return {t.split("|", 1)[1] for t in tokens(rec) if t.startswith(NNCHN_SYSTEM)}


def test_reg41_two_held_renumberings_of_one_record(both: tuple[Engine, TestClient]) -> None:
    """The HIS registers QC with number a; the LIS's A04 states b (held), then its A04 states c (held). The operator
    takes the second: the record holds c. The first, decided afterwards, was held against a record since written:
    409, the record keeps c."""
    engine, http = both
    a, b, c = (_nid(f"32092319700303{k}02") for k in range(3))
    registered(http, "QC", "QC1", "甲^三", "19700303", "F", f"~{a}^^^^NNCHN")
    for control, number in (("QC2", b), ("QC3", c)):
        ack = post(http, adt(control, f"QC^^^FNXRMYY^MR~{number}^^^^NNCHN", "甲^三", "19700303", "F", app="LIS"))
        assert ack_code_of(ack) == "AA" and any("|205^" in x for x in err_lines(ack)), ack
    held = _held_ids(http, engine)
    assert {"QC2", "QC3"} <= set(held), held
    second = _decide(http, engine, "QC3")
    first = _decide(http, engine, "QC2")
    (rec,) = patients(http, f"{MRN}|QC")
    assert second.status_code == 200 and first.status_code == 409, (second.text, first.text)
    assert _nids(rec) == {c}, _nids(rec)


def test_reg41_a_merge_after_the_hold_keeps_the_number_held(both: tuple[Engine, TestClient]) -> None:
    """The HIS registers QE (number a), QF (no number) and QG (number b, another woman of one name and birth date);
    the LIS's walk-in A04 under QE states b: held. The HIS merges QE into QF (A40: QF now holds a) and QF has a
    result. The operator's decision on the held A04: 409 (the record changed), as it should; the plain replay its
    words ask for must hold the number again (QE is QF's, whose number is a) -- b on no record but QG, and QG's
    resident reads nothing of QF."""
    engine, http = both
    a, b = (_nid(f"32092319700304{k}02") for k in range(2))
    registered(http, "QE", "QE1", "甲^四", "19700304", "F", f"~{a}^^^^NNCHN")
    registered(http, "QF", "QF1", "甲^四", "19700304", "F")
    qg = registered(http, "QG", "QG1", "甲^四", "19700304", "F", f"~{b}^^^^NNCHN")
    ack = post(http, adt("QE2", f"QE^^^FNXRMYY^MR~{b}^^^^NNCHN", "甲^四", "19700304", "F", app="LIS"))
    assert any("|205^" in x for x in err_lines(ack)), ack
    assert ack_code_of(post(http, merge("QE3", "QF^^^FNXRMYY^MR", "甲^四", "19700304", "F",
                                        "QE^^^FNXRMYY^MR"))) == "AA"
    (qf,) = patients(http, f"{MRN}|QF")
    assert _nids(qf) == {a}, _nids(qf)
    assert ack_code_of(post(http, oru("QE4", "QF^^^FNXRMYY^MR", "甲^四", "19700304", "F", "GLU"))) == "AA"
    decided = _decide(http, engine, "QE2")
    assert decided.status_code == 409 and "replay the message plainly to hold it again" in decided.text, decided.text
    replay = http.post(f"/admin/quarantine/{message_id('FNXRMYY', 'QE2')}/replay",
                       headers=_operator(engine, "system/MessageHeader.cr", "rv41d-ops"))
    assert replay.status_code == 200, replay.text
    token, _ = engine.auth.issue_token(subject=f"Patient/{qg['id']}", kind="patient", client_id="rv41d-phone",
                                       scopes=["patient/*.rs"], patient=qg["id"])
    with TestClient(create_app(engine)) as phone:
        seen = [phone.get(url, headers={"Authorization": f"Bearer {token}"}).text
                for url in (f"/fhir/Patient/{qf['id']}", "/fhir/Observation", f"/fhir/Patient/{qg['id']}/$everything")]
    assert [p["id"] for p in patients(http, b)] == [qg["id"]], [(p["id"], p.get("link")) for p in patients(http, b)]
    assert not any(qf["id"] in text or a in text for text in seen), seen


# --- xo41: one batch as one by one, a held cancel before the report by the accession alone -----------------------


def _ack_lines(ack: str, run: str) -> list[str]:
    return [re.sub(r"PP26-\d+", "<id>", s).replace(run, "<run>") for s in ack.replace("\n", "\r").split("\r")
            if s.startswith(("MSA|", "ERR|"))]


def test_xo41_a_held_cancel_in_the_batch_does_not_decide_which_order_the_accession_names(
        module_eng: Engine, http: TestClient) -> None:
    """The HIS orders head CT twice (P1, P2), the RIS accepts both under one accession. Then the EMR's CA of P1 (a
    third application's request: held, P1 stays active) and the RIS's report by the accession alone: one by one the
    accession names two live head-CT orders (W 205, neither completed); as one batch the same."""
    outcomes = {batch: _cancel_and_report(module_eng, http, "HIS", "EMR", run, batch)
                for run, batch in (("RV41D-BA", False), ("RV41D-BB", True))}
    assert outcomes[True] == outcomes[False], outcomes


def _cancel_and_report(engine: Engine, http: TestClient, placer: str, canceller: str, run: str,
                       batch: bool) -> tuple[list[list[str]], list[str]]:
    """``placer`` orders head CT twice (``run`` 1 and 2), the RIS accepts both under one accession; then
    ``canceller``'s CA of the first and the RIS's report by the accession alone, one by one or as one batch
    (``batch``): the two answers' lines (``_ack_lines``) and the two orders' statuses."""
    acc = f"{run}-ACC^RIS"
    for n in (1, 2):
        assert "MSA|AA" in send(http, _stated(placer, f"{run}{n}", "NW", HEAD, "", ""))
        assert "MSA|AA" in send(http, _stated("RIS", f"{run}{n}", "SC", HEAD, acc, ""))
    cancel = _stated(canceller, f"{run}1", "CA", HEAD, acc, "").replace("||IP||", "||CA||")
    report = _report_at("RIS", "", acc, HEAD, "20260312100000+0800", "未见异常")
    if batch:
        acks = [o.ack.decode() for o in engine.ingestor.process(
            [(m.replace("\n", "\r").encode(), "mllp", "t") for m in (cancel, report)])]
    else:
        acks = [send(http, m) for m in (cancel, report)]
    return [_ack_lines(a, run) for a in acks], [_one(http, HIS, f"{run}{n}")["status"] for n in (1, 2)]


# --- reg41: the decision after a restart -------------------------------------------------------------------------


def test_reg41_the_held_renumbering_is_decided_after_a_restart(tmp_path: Path) -> None:
    """SQLite on disk: the LIS's walk-in hold, the engine closed and opened again; the held message is still listed
    and the operator's decision takes it once (the record holds the number), asked again ``already``."""
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, base_url="https://huren.example",
                        site=undeclared_site(tmp_path / "site"))  # (a site declaring none: decl42)
    wrong, right = _nid("32092319700305002"), _nid("32092319700305022")
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv41d", "system/*.cruds")
        assert ack_code_of(post(http, adt("QR1", f"QR^^^FNXRMYY^MR~{wrong}^^^^NNCHN", "甲^五", "19700305", "F",
                                          app="LIS"))) == "AA"
        ack = post(http, adt("QR2", f"QR^^^FNXRMYY^MR~{right}^^^^NNCHN", "甲^五", "19700305", "F"))
        assert any("|205^" in x for x in err_lines(ack)), ack
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rv41d", "system/*.cruds")
        assert "QR2" in _held_ids(http, engine)
        decided = _decide(http, engine, "QR2")
        assert decided.status_code == 200 and decided.json()["decided"]["used"] is True, decided.text
        (rec,) = patients(http, f"{MRN}|QR")
        assert _nids(rec) == {right}, _nids(rec)
        again = _decide(http, engine, "QR2")
        assert again.status_code == 200 and again.json()["already"] is True, again.text
        assert "QR2" not in _held_ids(http, engine)


def test_reg41_the_decision_does_not_give_a_record_a_number_another_record_holds(both: tuple[Engine, TestClient]) -> None:
    """The walk-in: HIS registered QH (number a) and QI (number b, another woman of one name and birth date); the
    LIS's A04 under QH states b, held. The page asks the operator to check the ID card: it is b's holder's card (she
    was the walk-in, the LIS chose QH). Taking it "as the owner's" must not make QH hold b beside QI -- one person to
    the index, QI's resident reading QH's record -- without saying so: the decision is refused (409) or its answer
    names the other record."""
    engine, http = both
    a, b = (_nid(f"32092319700306{k}02") for k in range(2))
    qh = registered(http, "QH", "QH1", "甲^六", "19700306", "F", f"~{a}^^^^NNCHN")
    qi = registered(http, "QI", "QI1", "甲^六", "19700306", "F", f"~{b}^^^^NNCHN")
    assert ack_code_of(post(http, oru("QH9", "QH^^^FNXRMYY^MR", "甲^六", "19700306", "F", "HBA1C"))) == "AA"
    ack = post(http, adt("QH2", f"QH^^^FNXRMYY^MR~{b}^^^^NNCHN", "甲^六", "19700306", "F", app="LIS"))
    assert any("|205^" in x for x in err_lines(ack)), ack
    decided = _decide(http, engine, "QH2")
    token, _ = engine.auth.issue_token(subject=f"Patient/{qi['id']}", kind="patient", client_id="rv41d-phone",
                                       scopes=["patient/*.rs"], patient=qi["id"])
    with TestClient(create_app(engine)) as phone:
        seen = [phone.get(url, headers={"Authorization": f"Bearer {token}"}).text
                for url in (f"/fhir/Patient/{qh['id']}", "/fhir/Observation")]
    assert decided.status_code == 409 or qi["id"] in decided.text, decided.text
    assert not any(qh["id"] in t or "HBA1C" in t for t in seen), seen


# --- xo41: money -- a repeat's report by the accession alone ------------------------------------------------------


@pytest.mark.parametrize("reason", ["R01", ""])
def test_xo41_money_a_repeat_reported_by_the_accession_alone(engine: Engine, mllp: int, reason: str) -> None:
    """HOSPA's CBC two days before; HOSPB's HIS orders CBC (with R01, or none), its LIS accepts it (SC, ``F<n>^LIS``)
    and reports under the accession alone. With R01 the repeat is justified (the order's reason), as when the
    report names the placer number; without, flagged "not payable" once. Then the HIS's own XO by the accession
    alone giving R01 after the result is a late reason: the flag stays (DOMAIN.md, policy11)."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, "20260310090000+0800"))
    r = f"R01^病情变化^{REASONS}" if reason else ""
    assert "MSA|AA" in hl7.send(order("HOSPB", "B1", CBC, "20260312080000+0800", reason=r))
    sc = (msh("HOSPB", "LIS", "ORM^O01^ORM_O01", "20260312083000+0800") + pid("HOSPB")
          + "ORC|SC|B1^HIS|FB1^LIS||IP\n" + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||20260312080000+0800\n")
    assert "MSA|AA" in hl7.send(sc)
    alone = result("HOSPB", "B1", CBC, "20260312090000+0800").replace("|B1^HIS|", "||")
    ack = hl7.send(alone)
    assert "MSA|AA" in ack, ack
    got = [f for f in flags(engine) if f["status"] not in ("cancelled",)]
    if reason:
        assert not [f for f in got if f["status"] == "flagged"] and "not payable" not in ack, (got, ack)
        return
    assert [f["status"] for f in got] == ["flagged"], got
    xo = (msh("HOSPB", "HIS", "ORM^O01^ORM_O01", "20260312110000+0800") + pid("HOSPB")
          + f"ORC|XO||FB1^LIS||IP||||20260312110000+0800|||D7^张^医生||||R01^病情变化^{REASONS}\n"
          + f"OBR|1||FB1^LIS|{CBC}|||20260312080000+0800\n")
    assert "MSA|AA" in hl7.send(xo)
    got = [f for f in flags(engine) if f["status"] not in ("cancelled",)]
    assert [f["status"] for f in got] == ["flagged"], got


def test_reg41_no_resident_reads_the_other_womans_number_after_the_hold(both: tuple[Engine, TestClient]) -> None:
    """Guard (privacy): the walk-in hold (QA holds a; the LIS's A04 under QA states QB's b). Neither woman's resident
    finds the other's number, or the other's record, in what she can read."""
    engine, http = both
    a, b = _nid("32092319700302002"), _nid("32092319700302012")
    qa = registered(http, "QA", "QA1", "甲^二", "19700302", "F", f"~{a}^^^^NNCHN")
    qb = registered(http, "QB", "QB1", "甲^二", "19700302", "F", f"~{b}^^^^NNCHN")
    ack = post(http, adt("QA2", f"QA^^^FNXRMYY^MR~{b}^^^^NNCHN", "甲^二", "19700302", "F", app="LIS"))
    assert any("|205^" in x for x in err_lines(ack)), ack
    for rec, other, theirs in ((qa, b, qb), (qb, a, qa)):
        token, _ = engine.auth.issue_token(subject=f"Patient/{rec['id']}", kind="patient", client_id="rv41d-phone",
                                           scopes=["patient/*.rs"], patient=rec["id"])
        with TestClient(create_app(engine)) as phone:
            for url in (f"/fhir/Patient/{rec['id']}", f"/fhir/Patient/{rec['id']}/_history",
                        f"/fhir/Patient/{rec['id']}/$everything", "/fhir/Provenance", "/fhir/AuditEvent",
                        "/fhir/MessageHeader", "/fhir/Patient", "/ui/me"):
                r = phone.get(url, headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200 and other not in r.text and theirs["id"] not in r.text, (url, r.text[:300])
