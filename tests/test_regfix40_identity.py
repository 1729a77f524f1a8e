"""regfix40: who may replace or take off a record's resident ID number (``persons._may_renumber``) -- a declared
registration application always, else an application that registers the record, never "whoever sent the first
ADT" -- and what the W 205 and the refusal at PID-8 tell the sender it may do.

Real HL7 over ``POST /hl7v2`` into a real store on each backend (``module_eng``: SQLite, mongomock), read back over
``/fhir``; the site that replaced its HIS is its own engine (the regapp33 site folder declaring HIS2)."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import NNCHN_SYSTEM, engine_and_client, registered, tokens
from tests.module_store import undeclared_eng as module_eng  # noqa: F401 -- a site declaring none (decl42), each backend
from tests.test_a47fix40_identity import _zh
from tests.test_order35_as_later import _operator
from tests.test_regapp33_registration_apps import _site
from tests.test_rvidentity32_probes import MRN, _nid, adt, patients

both = engine_and_client("regfix40")


@pytest.fixture(scope="module")
def replaced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A county whose HIS (MSH-3 HIS) was replaced by a new one (MSH-3 HIS2), the only one declared."""
    root = _site(tmp_path_factory.mktemp("regfix40-site"), ["HIS2"])
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=root)) as eng, \
            TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("t", "system/*.cruds")
        yield client


def test_the_refusal_tells_a_non_registrar_what_it_may_do(both: tuple[Engine, TestClient]) -> None:
    """The LIS's thin A08 (no number) stating M over the HIS's female-numbered record: AE at PID-8 advising to
    correct PID-8 or have the HIS (named by MSH-3) or the operator correct the number -- not the two HL7 mends it
    would get W 205 for; the LIS's A08 stating a male number: said to be left out, the same advice; both in
    Chinese on the refused-messages page."""
    engine, http = both
    female, male = _nid("32092319630911002"), _nid("32092319630911011")
    registered(http, "RA", "RA1", "岳^甲", "19630911", "F", f"~{female}^^^^NNCHN")
    for control, pid3, why in (("RA2", "RA^^^FNXRMYY^MR", "PID-3 does not state it"),
                               ("RA3", f"RA^^^FNXRMYY^MR~{male}^^^^NNCHN", "resident ID number is left out")):
        ack = post(http, adt(control, pid3, "岳^甲", "19630911", "M", event="A08", app="LIS"))
        assert ack_code_of(ack) == "AE", ack
        (line,) = [x for x in err_lines(ack) if "PID^1^8" in x]
        assert why in line and "Correct PID-8, or have" in line and "(MSH-3 HIS)" in line, line
        assert "NNCHN in PID-3" not in line and "State the corrected ID number" not in line, line
        zh = _zh(engine, ack, "PID^1^8")
        assert "请更正 PID-8" in zh and "MSH-3 HIS" in zh, zh
    (record,) = patients(http, f"{MRN}|RA")
    assert record["gender"] == "female" and f"{NNCHN_SYSTEM}|{female}" in tokens(record)
    # the HIS, the record's registrar, is still told both HL7 mends
    ack = post(http, adt("RA4", "RA^^^FNXRMYY^MR", "岳^甲", "19630911", "M", event="A08"))
    assert ack_code_of(ack) == "AE" and b"NNCHN in PID-3" in ack, ack


def test_the_w_205_names_who_may_replace_it(both: tuple[Engine, TestClient]) -> None:
    """The LIS's A08 replacing and nulling the HIS's record's number: W 205 naming MSH-3 HIS (English, Chinese)."""
    engine, http = both
    nid, other = _nid("32092319630912002"), _nid("32092319630912022")
    registered(http, "RB", "RB1", "岳^乙", "19630912", "F", f"~{nid}^^^^NNCHN")
    ack = post(http, adt("RB2", f"RB^^^FNXRMYY^MR~{other}^^^^NNCHN", "岳^乙", "19630912", "F", event="A08", app="LIS"))
    (line,) = [x for x in err_lines(ack) if x.startswith("ERR||PID^1^3|")]
    assert "(MSH-3 HIS)" in line and "MSH-3 HIS" in _zh(engine, ack, "ERR||PID^1^3|"), line
    ack = post(http, adt("RB3", 'RB^^^FNXRMYY^MR~""^^^^NNCHN', "岳^乙", "19630912", "F", event="A08", app="LIS"))
    zh = _zh(engine, ack, "PID^1^3^2")
    assert "身份证号保留" in zh and "MSH-3 HIS" in zh, zh
    assert f"{NNCHN_SYSTEM}|{nid}" in tokens(patients(http, f"{MRN}|RB")[0])


def test_after_a_lis_walk_in_the_his_registration_corrects_and_nulls(both: tuple[Engine, TestClient]) -> None:
    """A LIS walk-in A04 under the HIS's MRN with a wrong valid number: the HIS's A08 before any registration of
    its own is answered W 205 naming the LIS (nothing on a site declaring nothing tells the HIS from the LIS); its
    A04 is held for the operator too (reg41: the LIS registered the number -- rv40m HIGH 1), whose decision takes
    the right number; its ``""^^^^NNCHN`` then takes the number off."""
    engine, http = both
    wrong, right = _nid("32092319630913002"), _nid("32092319630913022")
    assert ack_code_of(post(http, adt("RC1", f"RC^^^FNXRMYY^MR~{wrong}^^^^NNCHN", "岳^丙", "19630913", "F",
                                      app="LIS"))) == "AA"
    ack = post(http, adt("RC2", f"RC^^^FNXRMYY^MR~{right}^^^^NNCHN", "岳^丙", "19630913", "F", event="A08"))
    assert any("(MSH-3 LIS)" in x for x in err_lines(ack)), err_lines(ack)
    ack = post(http, adt("RC3", f"RC^^^FNXRMYY^MR~{right}^^^^NNCHN", "岳^丙", "19630913", "F"))
    assert ack_code_of(ack) == "AA" and any("(MSH-3 LIS) replaces it" in x for x in err_lines(ack)), err_lines(ack)
    decided = http.post(f"/admin/quarantine/{message_id('FNXRMYY', 'RC3')}/owner", content='{"reason": "已核对证件"}',
                        headers={**_operator(engine, "system/MessageHeader.cr", "regfix40-ops"),
                                 "Content-Type": "application/json"})
    assert decided.status_code == 200 and decided.json()["decided"]["used"] is True, decided.text
    (record,) = patients(http, f"{MRN}|RC")
    assert f"{NNCHN_SYSTEM}|{right}" in tokens(record) and f"{NNCHN_SYSTEM}|{wrong}" not in tokens(record)
    ack = post(http, adt("RC4", 'RC^^^FNXRMYY^MR~""^^^^NNCHN', "岳^丙", "19630913", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert patients(http, right) == []


def test_the_new_his_takes_off_a_number_the_old_his_registered(replaced: TestClient) -> None:
    """The replaced county: HIS2's ``""^^^^NNCHN`` over a record the old HIS registered is taken; the LIS's
    replacement there is not (W 205 naming the declared HIS2)."""
    nid, other = _nid("32092319630914002"), _nid("32092319630914022")
    assert ack_code_of(post(replaced, adt("RD1", f"RD^^^FNXRMYY^MR~{nid}^^^^NNCHN", "岳^丁", "19630914",
                                          "F"))) == "AA"
    ack = post(replaced, adt("RD2", f"RD^^^FNXRMYY^MR~{other}^^^^NNCHN", "岳^丁", "19630914", "F", event="A08",
                             app="LIS"))
    assert any("registration_applications" in x and "(MSH-3 HIS2)" in x for x in err_lines(ack)), err_lines(ack)
    ack = post(replaced, adt("RD3", 'RD^^^FNXRMYY^MR~""^^^^NNCHN', "岳^丁", "19630914", "F", event="A08",
                             app="HIS2"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert patients(replaced, nid) == [] and patients(replaced, other) == []
