"""rv40a: probes of idfix39 (A47's carry of the numbers, ``""^^^^NNCHN``, the filed-as-own mark) and nmfix39
(``persons._formerly`` across corrections, ``demographics.fold_name``).

Real HL7 over ``POST /hl7v2`` into a real store on each backend (``module_eng``: SQLite, mongomock), read back over
``/fhir`` and the patient index. A strict xfail names a defect and its severity; a plain test guards what must hold."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.convert.persons import FILED_AS_OWN_EXT
from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import NNCHN_SYSTEM, engine_and_client, read_patient, registered, tokens
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import _fnzyy
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients, subjects

both = engine_and_client("rv40a")
LIS = f"{MRN}:LIS"


def _a47(control: str, new: str, old: str, name: str, birth: str, sex: str) -> str:
    """The HIS's A47 (change patient identifier list): PID-3 ``new`` (the new MRN, further repetitions as sent),
    MRG-1 the old MRN."""
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A47^ADT_A30|{control}|P|2.5.1\r"
            f"EVN|A47|20261201121500\rPID|1||{new}||{name}||{birth}|{sex}\rMRG|{old}^^^FNXRMYY^MR\r")


# --- idfix39's A47 carry (persons._carried) --------------------------------------------------------------------------


def test_an_a47_onto_another_persons_record_does_not_give_it_her_id_number(both: tuple[Engine, TestClient]) -> None:
    """王丽 F 1985-03-03 (her ID number) under RN; 张敏 F 1990-07-07 (no number) under RNQ. The HIS's A47 moves RN
    to RNQ with 张敏's particulars (a wrong renumbering; huren files it with the two-people W). 张敏's record must
    not come to hold 王丽's ID number (it contradicts her birth date): a search by 王丽's number must not answer
    张敏's record."""
    _, http = both
    hers = _nid("32092319850303002")
    registered(http, "RN", "RN1", "王^丽", "19850303", "F", f"~{hers}^^^^NNCHN")
    q = registered(http, "RNQ", "RN2", "张^敏", "19900707", "F")
    ack = post(http, _a47("RN3", "RNQ^^^FNXRMYY^MR", "RN", "张^敏", "19900707", "F"))
    assert f"{NNCHN_SYSTEM}|{hers}" not in tokens(read_patient(http, q["id"])), ack
    assert q["id"] not in [p["id"] for p in patients(http, hers)]


def test_an_a47_does_not_carry_a_number_its_pid_contradicts(both: tuple[Engine, TestClient]) -> None:
    """岳辛 F 1963-08-14 with her ID number; the A47 to RKN states sex M and 1963-08-15: refused at PID-8/7 as the
    A08 would be, or at least the new record does not hold a number its own sex and birth date contradict."""
    _, http = both
    nid = _nid("32092319630814002")
    registered(http, "RK", "RK1", "岳^辛", "19630814", "F", f"~{nid}^^^^NNCHN")
    ack = post(http, _a47("RK2", "RKN^^^FNXRMYY^MR", "RK", "岳^辛", "19630815", "M"))
    if ack_code_of(ack) == "AA":
        (new,) = patients(http, f"{MRN}|RKN")
        assert f"{NNCHN_SYSTEM}|{nid}" not in tokens(new), (ack, new)


def test_an_a47_with_the_null_id_number_leaves_none(both: tuple[Engine, TestClient]) -> None:
    _, http = both
    nid = _nid("32092319631010002")
    old = registered(http, "RE", "RE1", "岳^甲", "19631010", "F", f"~{nid}^^^^NNCHN")
    ack = post(http, _a47("RE2", 'REN^^^FNXRMYY^MR~""^^^^NNCHN', "RE", "岳^甲", "19631010", "F"))
    assert ack_code_of(ack) == "AA", ack
    (new,) = patients(http, f"{MRN}|REN")
    assert not any(t.startswith(f"{NNCHN_SYSTEM}|") for t in tokens(new) | tokens(read_patient(http, old["id"]))), new


def test_an_a47_then_the_lis_under_the_old_numbers_stays_with_her(both: tuple[Engine, TestClient]) -> None:
    """A guard: after the A47 the LIS's result under the old MRN, and under its own number remembered on her record,
    is filed under one of her two records (the old, inactive, one: replaced-by the new), never a third; her ID
    number finds the new record alone."""
    _, http = both
    nid = _nid("32092319630909002")
    old = registered(http, "RB", "RB1", "岳^壬", "19630909", "F", f"~{nid}^^^^NNCHN")
    assert ack_code_of(post(http, oru("RB2", "RB^^^LIS^PI", "岳^壬", "19630909", "F", "RB2"))) == "AA"
    assert ack_code_of(post(http, _a47("RB3", "RBN^^^FNXRMYY^MR", "RB", "岳^壬", "19630909", "F"))) == "AA"
    (new,) = patients(http, f"{MRN}|RBN")
    assert [p["id"] for p in patients(http, nid)] == [new["id"]]
    for control, pid3 in (("RB4", "RB^^^FNXRMYY^MR"), ("RB5", "RB^^^LIS^PI")):
        ack = post(http, oru(control, pid3, "岳^壬", "19630909", "F", control))
        assert ack_code_of(ack) == "AA" and subjects(http, control)[0] in (f"Patient/{old['id']}",
                                                                          f"Patient/{new['id']}"), ack


# --- idfix39's ""^^^^NNCHN (common._national_deleted) ----------------------------------------------------------------


def test_only_the_registrar_takes_the_id_number_off(both: tuple[Engine, TestClient]) -> None:
    _, http = both
    nid = _nid("32092319630801002")
    rec = registered(http, "RD", "RD1", "岳^辛", "19630801", "F", f"~{nid}^^^^NNCHN")
    post(http, adt("RD2", 'RD^^^FNXRMYY^MR~""^^^^NNCHN', "岳^辛", "19630801", "F", event="A08", app="LIS"))
    assert f"{NNCHN_SYSTEM}|{nid}" in tokens(read_patient(http, rec["id"]))


def test_a_null_id_number_in_a_result_or_from_a_member_changes_nothing(both: tuple[Engine, TestClient]) -> None:
    """A guard: a result's PID (the record written only when absent) and another member hospital's A08 under this
    institution's MRN send ``""^^^^NNCHN``: the HIS-registered record keeps its ID number."""
    _, http = both
    nid = _nid("32092319630802002")
    rec = registered(http, "RT", "RT1", "岳^辛", "19630802", "F", f"~{nid}^^^^NNCHN")
    ack = post(http, oru("RT2", 'RT^^^FNXRMYY^MR~""^^^^NNCHN', "岳^辛", "19630802", "F", "RT2"))
    assert ack_code_of(ack) == "AA", ack
    post(http, _fnzyy(adt("RT3", 'RT^^^FNXRMYY^MR~""^^^^NNCHN', "岳^辛", "19630802", "F", event="A08")))
    assert f"{NNCHN_SYSTEM}|{nid}" in tokens(read_patient(http, rec["id"]))
    assert [p["id"] for p in patients(http, nid)] == [rec["id"]]


def test_a_number_taken_off_no_longer_links_her_record(both: tuple[Engine, TestClient]) -> None:
    """A guard: 岳甲's record got a namesake's ID number (same name, day and sex: the checks pass); the registrar's
    ``""^^^^NNCHN`` takes it off, and the woman whose number it is, registered next, is not linked to 岳甲's
    record by the index (nor found through it)."""
    engine, http = both
    number = _nid("32092319630816002")
    rec = registered(http, "RL", "RL1", "岳^甲", "19630816", "F", f"~{number}^^^^NNCHN")
    ack = post(http, adt("RL2", 'RL^^^FNXRMYY^MR~""^^^^NNCHN', "岳^甲", "19630816", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and tokens(read_patient(http, rec["id"])) == {f"{MRN}|RL"}, ack
    sister = registered(http, "RM", "RM1", "岳^甲", "19630816", "F", f"~{number}^^^^NNCHN")
    assert not engine.identity.same_person(rec["id"], sister["id"])
    assert [p["id"] for p in patients(http, number)] == [sister["id"]]


def test_a_null_under_another_authority_is_answered(both: tuple[Engine, TestClient]) -> None:
    _, http = both
    rec = registered(http, "RQ", "RQ1", "岳^丑", "19750114", "F")
    assert ack_code_of(post(http, oru("RQ2", "RQ^^^LIS^PI", "岳^丑", "19750114", "F", "RQ2"))) == "AA"
    ack = post(http, adt("RQ3", 'RQ^^^FNXRMYY^MR~""^^^LIS^PI', "岳^丑", "19750114", "F", event="A08"))
    assert f"{LIS}|RQ" in tokens(read_patient(http, rec["id"]))  # (kept: holds today)
    assert any("PID^1^3" in line for line in err_lines(ack)), ack


# --- the filed-as-own mark on the FHIR write path (persons.marked_by_client) ---------------------------------------


def test_a_client_cannot_take_the_mark_off_an_identifier_it_keeps(both: tuple[Engine, TestClient]) -> None:
    _, http = both
    rec = registered(http, "RH", "RH1", "岳^辛", "19630813", "F")
    assert ack_code_of(post(http, oru("RH2", "RH^^^LIS^PI", "岳^辛", "19630813", "F", "RH2"))) == "AA"
    now = read_patient(http, rec["id"])
    body = {k: v for k, v in now.items() if k not in ("meta", "text")}
    body["identifier"] = [{k: v for k, v in i.items() if k != "extension"} for i in now["identifier"]]
    assert http.put(f"/fhir/Patient/{rec['id']}", json=body).status_code == 200
    (lis,) = [i for i in read_patient(http, rec["id"])["identifier"] if i.get("system") == LIS]
    assert lis.get("extension") == [{"url": FILED_AS_OWN_EXT, "valueBoolean": True}], lis


# --- nmfix39: _formerly across two corrections; fold_name -------------------------------------------------------------


def test_a_result_stating_either_earlier_version_after_two_corrections_is_filed(
        both: tuple[Engine, TestClient]) -> None:
    """A guard: 柳甲 F 1970-01-01 corrected by the registrar to 刘甲, then to 刘乙 1970-10-01: the LIS's copies
    stating the first and the second version are each filed under the record with the former-person W."""
    _, http = both
    rec = registered(http, "RJ", "RJ1", "柳^甲", "19700101", "F")
    for control, name, day in (("RJ2", "刘^甲", "19700101"), ("RJ3", "刘^乙", "19701001")):
        assert ack_code_of(post(http, adt(control, "RJ^^^FNXRMYY^MR", name, day, "F", event="A08"))) == "AA"
    for control, name in (("RJ4", "柳^甲"), ("RJ5", "刘^甲")):
        ack = post(http, oru(control, "RJ^^^FNXRMYY^MR", name, "19700101", "F", control))
        assert ack_code_of(ack) == "AA" and subjects(http, control) == [f"Patient/{rec['id']}"], ack
        assert any("former name" in line for line in err_lines(ack)), ack


def test_a_lower_case_x_check_digit_is_the_same_number(both: tuple[Engine, TestClient]) -> None:
    """A guard: the LIS's result keyed by the ID number alone with a lower-case ``x`` lands where the upper-case
    one does, in the person of the HIS record holding ``X``."""
    engine, http = both
    up = "32092319750113012X"
    rec = registered(http, "RP", "RP1", "岳^癸", "19750113", "F", f"~{up}^^^^NNCHN")
    for control, number in (("RP2", up[:-1] + "x"), ("RP3", up)):
        ack = post(http, oru(control, f"{number}^^^^NNCHN", "岳^癸", "19750113", "F", control))
        assert ack_code_of(ack) == "AA", ack
    (low,), (upper,) = subjects(http, "RP2"), subjects(http, "RP3")
    assert low == upper and engine.identity.same_person(low.split("/")[1], rec["id"])


def test_a_search_by_a_lower_case_x_finds_her(both: tuple[Engine, TestClient]) -> None:
    _, http = both
    up = "32092319760807034X"
    assert _nid(up[:17]) == up
    rec = registered(http, "RU", "RU1", "岳^卯", "19760807", "F", f"~{up}^^^^NNCHN")
    got = http.get("/fhir/Patient", params={"identifier": f"{NNCHN_SYSTEM}|{up[:-1]}x"}).json()
    assert [e["resource"]["id"] for e in got.get("entry", [])] == [rec["id"]]


def test_a_name_with_a_zero_width_space_is_the_same_name(both: tuple[Engine, TestClient]) -> None:
    _, http = both
    rec = registered(http, "RS", "RS1", "李^娜", "19900501", "F")
    ack = post(http, oru("RS2", "RS^^^FNXRMYY^MR", "李\u200b^娜", "19900510", "F", "RS2"))
    assert subjects(http, "RS2") == [f"Patient/{rec['id']}"], ack


def test_latin_names_fold_by_case_and_spaces_and_pinyin_is_not_hanzi(both: tuple[Engine, TestClient]) -> None:
    """A guard: "ZHANG SAN", "Zhang San" and "ZHANGSAN" are one name (a mistyped day alone: filed); 张三 against
    ZHANG SAN is another name (with the mistyped day: refused, nothing filed)."""
    _, http = both
    rec = registered(http, "RV", "RV1", "ZHANG SAN", "19800101", "M")
    for control, name in (("RV2", "Zhang San"), ("RV3", "ZHANGSAN"), ("RV4", "zhang^san")):
        ack = post(http, oru(control, "RV^^^FNXRMYY^MR", name, "19800110", "M", control))
        assert subjects(http, control) == [f"Patient/{rec['id']}"], (name, ack)
    ack = post(http, oru("RV5", "RV^^^FNXRMYY^MR", "张^三", "19800110", "M", "RV5"))
    assert ack_code_of(ack) == "AE" and subjects(http, "RV5") == [], ack
