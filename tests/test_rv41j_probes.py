"""rv41j: review probes of regfix41b (the operator's decision on a held ID-number change refused 409 while another
record holds the number, or the record was merged into another; the page says so in Chinese).

Real HL7 v2 through ``POST /hl7v2``, the real store on each backend, ``/admin`` with an operator's token, ``/fhir``
read back as a resident (the SMART patient token the resident app is given)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client, registered
from tests.module_store import undeclared_eng as module_eng  # (a site declaring none: decl42)
from tests.module_store import undeclared_site
from tests.owner41_calls import at_fnzyy, decide, held_w, nids, operator, resident_reads, shown
from tests.test_opspage26_quarantine import DESKTOP, _post, sign_in
from tests.test_ord40_owner_page import _shot
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM, _free_port, serving
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients

__all__ = ["module_eng"]

both = engine_and_client("rv41j")
OPS = "rv41j-ops"
_ops = partial(operator, ops=OPS)
_decide = partial(decide, ops=OPS)
_shown = partial(shown, ops=OPS)
_reads = partial(resident_reads, client_id="rv41j-phone")


# --- regfix41b's left MED: a record holding NO number given a number another record holds -------------------------


def test_a_non_registrar_never_gives_a_numberless_record_a_number_another_record_holds(
        both: tuple[Engine, TestClient]) -> None:
    engine, http = both
    b = _nid("32092319700411012")
    ja = registered(http, "JA", "JA1", "乙^一", "19700411", "F")
    jb = registered(http, "JB", "JB1", "乙^一", "19700411", "F", f"~{b}^^^^NNCHN")
    assert ack_code_of(post(http, oru("JA9", "JA^^^FNXRMYY^MR", "乙^一", "19700411", "F", "HBA1C"))) == "AA"
    ack = post(http, adt("JA2", f"JA^^^FNXRMYY^MR~{b}^^^^NNCHN", "乙^一", "19700411", "F", app="LIS"))
    assert ack_code_of(ack) == "AA", ack
    seen = _reads(engine, jb, [f"/fhir/Patient/{ja['id']}", "/fhir/Observation",
                               f"/fhir/Patient/{jb['id']}/$everything"])
    leaked = [t[:300] for t in seen if ja["id"] in t or "HBA1C" in t]
    (now,) = patients(http, f"{MRN}|JA")
    assert not leaked and b not in nids(now) and held_w(ack), (leaked, nids(now), ack)


# --- the other record at ANOTHER member institution ----------------------------------------------------------------


def test_the_operator_is_never_told_the_other_members_mrn_name_or_number(both: tuple[Engine, TestClient]) -> None:
    """阜宁县中医院 (FNZYY) registered ZA (乙^二, number b). At 阜宁县人民医院 the HIS registered JC (number a); the LIS's
    walk-in A04 under JC states b: held. The view's ``unavailable`` and the 409 name neither ZA's MRN, nor a name,
    nor either number; the decision is refused and nothing changes (b on ZA alone, JC keeps a, not linked)."""
    engine, http = both
    a, b = _nid("32092319700412002"), _nid("32092319700412012")
    assert ack_code_of(post(http, at_fnzyy("ZA1", "ZA", "乙^二", "19700412", "F", f"~{b}^^^^NNCHN"))) == "AA"
    jc = registered(http, "JC", "JC1", "乙^二", "19700412", "F", f"~{a}^^^^NNCHN")
    assert held_w(post(http, adt("JC2", f"JC^^^FNXRMYY^MR~{b}^^^^NNCHN", "乙^二", "19700412", "F", app="LIS")))
    (claim,) = _shown(http, engine, "JC2")["held_claims"]
    told = json.dumps(claim["unavailable"], ensure_ascii=False)
    decided = _decide(http, engine, "JC2")
    said = decided.json()["issue"][0]["diagnostics"]
    assert decided.status_code == 409, decided.text
    for secret in ("ZA", "乙", a, b):
        assert secret not in told and secret not in said, (secret, told, said)
    (za,) = patients(http, b)
    (jc_now,) = patients(http, f"{MRN}|JC")
    assert nids(jc_now) == {a} and not jc_now.get("link") and za["id"] != jc["id"], jc_now


def test_a_number_held_at_another_member_is_said_so_with_advice_that_can_be_followed(
        both: tuple[Engine, TestClient]) -> None:
    engine, http = both
    a, b = _nid("32092319700413002"), _nid("32092319700413012")
    assert ack_code_of(post(http, at_fnzyy("ZB1", "ZB", "乙^三", "19700413", "F", f"~{b}^^^^NNCHN"))) == "AA"
    registered(http, "JD", "JD1", "乙^三", "19700413", "F", f"~{a}^^^^NNCHN")
    assert held_w(post(http, adt("JD2", f"JD^^^FNXRMYY^MR~{b}^^^^NNCHN", "乙^三", "19700413", "F", app="LIS")))
    (zb,) = patients(http, b)
    decided = _decide(http, engine, "JD2")
    said = decided.json()["issue"][0]["diagnostics"]
    assert decided.status_code == 409, decided.text
    assert ("FNZYY" in said or "阜宁县中医院" in said) and "A40" not in said and zb["id"] not in said, said


# --- the page, as an operator uses it, when the other record is another member's -----------------------------------

A_P, B_P = _nid("32092319700414002"), _nid("32092319700414012")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    root = tmp_path_factory.mktemp("rv41jpage")  # (a site declaring no registration application: decl42)
    engine = Engine(Settings(data_dir=root / "var", http_port=_free_port(), mllp_port=0,
                             site=undeclared_site(root / "site")))
    with serving(engine):
        base = engine.settings.public_base_url
        sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        for raw in (at_fnzyy("ZP1", "ZP", "乙^四", "19700414", "F", f"~{B_P}^^^^NNCHN"),
                    adt("JP1", f"JP^^^FNXRMYY^MR~{A_P}^^^^NNCHN", "乙^四", "19700414", "F"),
                    adt("JP2", f"JP^^^FNXRMYY^MR~{B_P}^^^^NNCHN", "乙^四", "19700414", "F", app="LIS")):
            assert _post(base, sender, raw.encode()) == "AA"
        yield engine, base
    engine.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")
def test_the_page_names_no_other_members_mrn_name_or_number(site: tuple[Engine, str], shots: Path) -> None:
    """Opened on /ui/quarantine: no decision offered, the barred box in Chinese; neither number, nor ZP, nor the name
    outside the raw message."""
    engine, base = site
    b = Browser(shots / "profile")
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        sign_in(b, engine, base, "it.rv41j", "operator", "吴运维", "/ui/quarantine")
        b.wait_for("document.body.dataset.held === '1'")
        b.eval("[...document.querySelectorAll('#held tbody tr')].find(r => r.innerText.includes('JP2'))"
               ".querySelector('button.open').click(); true")
        b.wait_for("!document.querySelector('#detail').hidden && !document.querySelector('#owner-barred').hidden")
        assert b.eval("document.querySelector('#owner-box').hidden"), "the decision is offered"
        said = b.eval("document.querySelector('#owner-barred').innerText")
        # (regfix41c: the member named by its institution, and this hospital's registration advised)
        assert "已属于阜宁县中医院" in said and "本院登记系统" in said and "合并" not in said, said
        page = b.eval("document.querySelector('#detail').innerText")
        shown = page.replace(b.eval("document.querySelector('#d-raw').innerText"), "")
        for secret in (A_P, B_P, "ZP", "FNZYY"):
            assert secret not in said and secret not in shown, secret
        _shot(b, "01-barred-other-member", shots)
    finally:
        b.close()


# --- the same person with two records at one hospital: the 409's own advice --------------------------------------


def test_following_the_409s_advice_for_one_person_with_two_records_works(both: tuple[Engine, TestClient]) -> None:
    """The HIS registered one woman twice: JE (number a, mistyped) and JF (number b, her card's). The LIS's walk-in
    under JE states b: held; the decision is 409. The operator follows its advice for 'the two are one person'."""
    engine, http = both
    a, b = _nid("32092319700415002"), _nid("32092319700415012")
    registered(http, "JE", "JE1", "乙^五", "19700415", "F", f"~{a}^^^^NNCHN")
    registered(http, "JF", "JF1", "乙^五", "19700415", "F", f"~{b}^^^^NNCHN")
    assert held_w(post(http, adt("JE2", f"JE^^^FNXRMYY^MR~{b}^^^^NNCHN", "乙^五", "19700415", "F", app="LIS")))
    decided = _decide(http, engine, "JE2")
    said = decided.json()["issue"][0]["diagnostics"]
    assert decided.status_code == 409 and "held by another record (MRN JF at FNXRMYY)" in said, decided.text
    # (decl42: the advice now -- this record's wrong number taken off by its registering application, then the merge;
    # regfix41c's "corrected onto the other record's number" is held on a site declaring no registration application)
    assert "have this record's wrong number taken off by its registering application" in said, said
    assert "merge the two records (A40) after" in said and "merge them (A40)" not in said, said
    nulled = post(http, adt("JE4", 'JE^^^FNXRMYY^MR~""^^^^NNCHN', "乙^五", "19700415", "F", event="A08"))
    assert ack_code_of(nulled) == "AA" and not any("|205^" in x for x in err_lines(nulled)), nulled
    ack = post(http, merge("JE3", "JF^^^FNXRMYY^MR", "乙^五", "19700415", "F", "JE^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack


def test_the_refusal_names_the_other_record_to_no_resident(both: tuple[Engine, TestClient]) -> None:
    """After the view and the refused decision (both naming JH by its MRN to the operator), JG's resident -- the
    record the held message is about -- reads nothing naming JH (its MRN, its id, its number) in her record, her
    $everything, her AuditEvents or Provenances; JH's resident reads nothing of JG."""
    engine, http = both
    a, b = _nid("32092319700416002"), _nid("32092319700416012")
    jg = registered(http, "JG", "JG1", "乙^六", "19700416", "F", f"~{a}^^^^NNCHN")
    jh = registered(http, "JH", "JH1", "乙^六", "19700416", "F", f"~{b}^^^^NNCHN")
    assert held_w(post(http, adt("JG2", f"JG^^^FNXRMYY^MR~{b}^^^^NNCHN", "乙^六", "19700416", "F", app="LIS")))
    assert _shown(http, engine, "JG2")["held_claims"][0]["unavailable"]["mrn"] == "JH"
    assert _decide(http, engine, "JG2").status_code == 409
    urls = ["/fhir/Patient/{}", "/fhir/Patient/{}/$everything", "/fhir/AuditEvent", "/fhir/Provenance"]
    mine = _reads(engine, jg, [u.format(jg["id"]) for u in urls])
    assert mine[0].startswith('{"resourceType":"Patient"'), mine[0][:200]
    for text in mine:
        assert "MRN JH" not in text and '"JH"' not in text and jh["id"] not in text and b not in text, text[:400]
    theirs = _reads(engine, jh, [u.format(jh["id"]) for u in urls])
    for text in theirs:
        assert jg["id"] not in text and a not in text and '"JG"' not in text, text[:400]


def test_opening_a_held_message_does_not_move_the_ingest_figures(both: tuple[Engine, TestClient]) -> None:
    engine, http = both
    a, b = _nid("32092319700418002"), _nid("32092319700418012")
    registered(http, "JQ", "JQ1", "乙^八", "19700418", "F", f"~{a}^^^^NNCHN")
    registered(http, "JR", "JR1", "乙^八", "19700418", "F", f"~{b}^^^^NNCHN")
    assert held_w(post(http, adt("JQ2", f"JQ^^^FNXRMYY^MR~{b}^^^^NNCHN", "乙^八", "19700418", "F", app="LIS")))

    def figures() -> dict[str, Any]:
        r = http.get("/admin/metrics", headers=_ops(engine))
        assert r.status_code == 200, r.text
        return r.json()["ingest"]["seconds"]

    before = figures()
    for _ in range(5):
        assert _shown(http, engine, "JQ2")["held_claims"][0]["unavailable"]["mrn"] == "JR"
    after = figures()
    assert (after.get("parse"), after.get("convert")) == (before.get("parse"), before.get("convert")), (before, after)


def test_a_number_merged_on_to_a_survivor_bars_the_decision_naming_the_survivor(
        both: tuple[Engine, TestClient]) -> None:
    """JT (number b) merged into JU (none: JU now holds b, JT active false). The LIS's walk-in under JS (number a)
    states b: held; the view and the 409 name JU -- the record in use -- never JT, the merged-away one; JS keeps a."""
    engine, http = both
    a, b = _nid("32092319700419002"), _nid("32092319700419012")
    registered(http, "JS", "JS1", "乙^九", "19700419", "F", f"~{a}^^^^NNCHN")
    registered(http, "JT", "JT1", "乙^九", "19700419", "F", f"~{b}^^^^NNCHN")
    registered(http, "JU", "JU1", "乙^九", "19700419", "F")
    assert ack_code_of(post(http, merge("JT3", "JU^^^FNXRMYY^MR", "乙^九", "19700419", "F", "JT^^^FNXRMYY^MR"))) == "AA"
    assert held_w(post(http, adt("JS2", f"JS^^^FNXRMYY^MR~{b}^^^^NNCHN", "乙^九", "19700419", "F", app="LIS")))
    (claim,) = _shown(http, engine, "JS2")["held_claims"]
    assert claim["unavailable"] == {"merged": False, "mrn": "JU"}, claim
    decided = _decide(http, engine, "JS2")
    assert decided.status_code == 409 and "(MRN JU at FNXRMYY)" in decided.text, decided.text
    (js,) = patients(http, f"{MRN}|JS")
    assert nids(js) == {a}, nids(js)
