"""rv40l: probes of a47fix40 (who may replace or take off a record's resident ID number; what a merge carries) through
real HL7 over ``POST /hl7v2`` into the real store, read back over ``/fhir``."""

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
from tests.identity39_calls import NNCHN_SYSTEM, engine_and_client, read_patient, registered, tokens
from tests.module_store import undeclared_eng as module_eng  # noqa: F401 -- a site declaring none (decl42), each backend
from tests.test_order35_as_later import _operator
from tests.test_regapp33_registration_apps import _site
from tests.test_rv38g_probes import HTML, staff_client
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, patients

both = engine_and_client("rv40l")


@pytest.fixture(scope="module")
def replaced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A county whose HIS (MSH-3 HIS) was replaced by a new one (MSH-3 HIS2): the site now declares the new HIS
    its registration application."""
    root = _site(tmp_path_factory.mktemp("rv40l-site"), ["HIS2"])
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=root)) as eng, \
            TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("t", "system/*.cruds")
        yield client


def test_the_new_his_corrects_a_number_the_old_his_registered(replaced: TestClient) -> None:
    wrong, right = _nid("32092319630901002"), _nid("32092319630901022")
    assert ack_code_of(post(replaced, adt("LA1", f"LA^^^FNXRMYY^MR~{wrong}^^^^NNCHN", "岳^甲", "19630901",
                                          "F"))) == "AA"
    ack = post(replaced, adt("LA2", f"LA^^^FNXRMYY^MR~{right}^^^^NNCHN", "岳^甲", "19630901", "F", event="A08",
                             app="HIS2"))
    assert ack_code_of(ack) == "AA", ack
    assert len(patients(replaced, right)) == 1 and patients(replaced, wrong) == [], err_lines(ack)


def test_the_his_corrects_a_number_a_lis_walk_in_stated_first(both: tuple[Engine, TestClient]) -> None:
    """(reg41) The HIS is no longer locked out, but its A04 replacing the number the LIS's walk-in registered is held
    for the operator (nothing on a site declaring nothing tells which of the two is right: rv40m HIGH 1); the
    operator's decision takes it, and the HIS's A08 is then the number's registrar's own."""
    engine, http = both
    wrong, right = _nid("32092319630906002"), _nid("32092319630906022")
    assert ack_code_of(post(http, adt("LB1", f"LB^^^FNXRMYY^MR~{wrong}^^^^NNCHN", "岳^己", "19630906", "F",
                                      app="LIS"))) == "AA"
    ack = post(http, adt("LB2", f"LB^^^FNXRMYY^MR~{right}^^^^NNCHN", "岳^己", "19630906", "F"))
    assert ack_code_of(ack) == "AA" and b"held for the operator" in ack, ack
    decided = http.post(f"/admin/quarantine/{message_id('FNXRMYY', 'LB2')}/owner", content='{"reason": "已核对证件"}',
                        headers={**_operator(engine, "system/MessageHeader.cr", "rv40l-ops"),
                                 "Content-Type": "application/json"})
    assert decided.status_code == 200 and decided.json()["decided"]["used"] is True, decided.text
    ack = post(http, adt("LB3", f"LB^^^FNXRMYY^MR~{right}^^^^NNCHN", "岳^己", "19630906", "F", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    (record,) = patients(http, f"{MRN}|LB")
    assert f"{NNCHN_SYSTEM}|{right}" in tokens(record) and f"{NNCHN_SYSTEM}|{wrong}" not in tokens(record), \
        err_lines(ack)


def test_the_refusal_advises_a_non_registrar_only_what_it_may_do(both: tuple[Engine, TestClient]) -> None:
    _, http = both
    female, male = _nid("32092319630905002"), _nid("32092319630905011")
    registered(http, "LC", "LC1", "岳^戊", "19630905", "F", f"~{female}^^^^NNCHN")
    ack = post(http, adt("LC2", f"LC^^^FNXRMYY^MR~{male}^^^^NNCHN", "岳^戊", "19630905", "M", event="A08",
                         app="LIS"))
    assert ack_code_of(ack) == "AE"
    (line,) = [x for x in err_lines(ack) if "PID^1^8" in x]
    assert "PID-3 does not state it" not in line and "NNCHN in PID-3" not in line, line


def test_the_w_205_is_worded_in_chinese_on_the_fidelity_page(both: tuple[Engine, TestClient]) -> None:
    """The LIS's ``""^^^^NNCHN`` and replacement (W 205, the number kept) are counted on ``/admin/fidelity`` in
    Chinese (words.yaml ``w-id-null-not-registrar``, ``w-id-number-not-registrar``), not the generic code words."""
    engine, http = both
    nid, other = _nid("32092319630907002"), _nid("32092319630907022")
    registered(http, "LD", "LD1", "岳^庚", "19630907", "F", f"~{nid}^^^^NNCHN")
    for control, pid3 in (("LD2", 'LD^^^FNXRMYY^MR~""^^^^NNCHN'), ("LD3", f"LD^^^FNXRMYY^MR~{other}^^^^NNCHN")):
        assert ack_code_of(post(http, adt(control, pid3, "岳^庚", "19630907", "F", event="A08", app="LIS"))) == "AA"
    staff = staff_client(engine, "op.rv40l", "operator")
    operator = next(staff)
    try:
        page = operator.get("/admin/fidelity", params={"institution": "FNXRMYY"}, headers={"Accept": HTML})
    finally:
        staff.close()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text[:300]
    assert "要求删除病历中的居民身份证号，未予执行" in page.text and "未予替换，病历身份证号保留" in page.text


def test_an_a40_onto_a_survivor_of_no_sex_carries_and_onto_a_male_one_is_refused(both: tuple[Engine, TestClient]) \
        -> None:
    """The A40's survivor of no sex stated (record and message): her ID number is carried (nothing contradicts it);
    a survivor recorded male, the A40's PID-8 empty: refused AE at PID-8, nothing carried; the message's PID-8 ``""``
    (the sex taken off by the registrar) then carries it."""
    _, http = both
    nid, nid2 = _nid("32092319630903002"), _nid("32092319630904002")
    registered(http, "LE", "LE1", "岳^丙", "19630903", "F", f"~{nid}^^^^NNCHN")
    survivor = registered(http, "LF", "LF1", "岳^丙", "19630903", "")
    assert ack_code_of(post(http, merge("LF2", "LF^^^FNXRMYY^MR", "岳^丙", "19630903", "", "LE^^^FNXRMYY^MR"))) == "AA"
    assert f"{NNCHN_SYSTEM}|{nid}" in tokens(read_patient(http, survivor["id"]))
    registered(http, "LG", "LG1", "岳^丁", "19630904", "F", f"~{nid2}^^^^NNCHN")
    male = registered(http, "LH", "LH1", "岳^丁", "19630904", "M")
    ack = post(http, merge("LH2", "LH^^^FNXRMYY^MR", "岳^丁", "19630904", "", "LG^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AE" and b"PID^1^8" in ack, ack
    assert tokens(read_patient(http, male["id"])) == {f"{MRN}|LH"}
    ack = post(http, merge("LH3", "LH^^^FNXRMYY^MR", "岳^丁", "19630904", '""', "LG^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    assert f"{NNCHN_SYSTEM}|{nid2}" in tokens(read_patient(http, male["id"]))


def test_a_batch_does_not_file_a_sex_the_kept_number_contradicts(both: tuple[Engine, TestClient]) -> None:
    _, http = both
    female, male = _nid("32092319630908002"), _nid("32092319630908011")
    body = ("BHS|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||||RV40LB\r"
            + adt("LJ1", f"LJ^^^FNXRMYY^MR~{female}^^^^NNCHN", "岳^壬", "19630908", "F")
            + adt("LJ2", f"LJ^^^FNXRMYY^MR~{male}^^^^NNCHN", "岳^壬", "19630908", "M", event="A08", app="LIS")
            + "BTS|2\r")
    post(http, body)
    (record,) = patients(http, f"{MRN}|LJ")
    assert not (record.get("gender") == "male" and f"{NNCHN_SYSTEM}|{female}" in tokens(record)), record
