"""rvidentity32's probes of identity32 (PID-3 record numbers under another assigning authority keyed
apart; the guard refusing a message whose PID resolves to a stored record of another person).

Real HL7 over ``POST /hl7v2`` (and one batch) into a real store, read back over ``/fhir`` and the
patient index. A probe showing a defect is a strict xfail naming its severity; a probe that passes
guards behaviour worth keeping."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, module_engine, module_http, post  # noqa: F401 -- the module's engine and client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend

MRN = "urn:huren:mrn:FNXRMYY"
NID_SYSTEM = "urn:oid:2.16.156.10011.1.1"  # not asserted on: the national ID is found by value below


def adt(control: str, pid3: str, name: str, birth: str, sex: str, event: str = "A04", app: str = "HIS",
        extra: str = "") -> str:
    return (f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\rPID|1||{pid3}||{name}||{birth}|{sex}\rPV1|1|O\r{extra}")


def oru(control: str, pid3: str, name: str, birth: str, sex: str, code: str, app: str = "LIS") -> str:
    return (f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            f"PID|1||{pid3}||{name}||{birth}|{sex}\r"
            f"OBR|1|O{control}|L{control}|{code}^{code}^L|||20261201083000||||G|||20261201083500|BLD"
            "||||||||20261201091000|||F\r"
            f"OBX|1|NM|{code}^{code}^L||5.6|mmol/L|||||F|||20261201090000\r")


_STRUCTURE = {"A40": "ADT_A39", "A34": "ADT_A30", "A18": "ADT_A18"}


def merge(control: str, pid3: str, name: str, birth: str, sex: str, mrg1: str, event: str = "A40") -> str:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^{event}^{_STRUCTURE[event]}|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201121500\rPID|1||{pid3}||{name}||{birth}|{sex}\rMRG|{mrg1}\r")


def patients(http: TestClient, token: str) -> list[dict]:
    return [e["resource"] for e in http.get("/fhir/Patient", params={"identifier": token}).json().get("entry", [])]


def subjects(http: TestClient, code: str) -> list[str]:
    found = http.get("/fhir/Observation", params={"code": code}).json().get("entry", [])
    return [e["resource"]["subject"]["reference"] for e in found]


# a valid national resident ID (GB 11643, check digit computed) for the deployment probes
def _nid(body17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body17 + "10X98765432"[sum(int(d) * w for d, w in zip(body17, weights, strict=True)) % 11]


# --- an existing deployment whose HIS always wrote CX-4 = "HIS" ------------------------------------


@pytest.mark.parametrize("n, cx4", [(1, "HIS"), (2, "&1.2.156.112604.1.2.9&ISO"), (3, "MRN")],
                         ids=["application-name", "oid-only", "type-written-in-cx4"])
def test_a_returning_patient_of_a_his_writing_its_own_name_in_cx4_keeps_one_record(
        engine: Engine, http: TestClient, n: int, cx4: str) -> None:
    # what the earlier release stored for 'R7n^^^HIS^MR' is exactly what this one stores for the
    # institution's own authority (identity32's report: the golden digests equal with _authority "own")
    number, code = f"R7{n}", f"RV1GLU{n}"
    assert ack_code_of(post(http, adt(f"RV1A{n}", f"{number}^^^FNXRMYY^MR", "柳^一", "19610101", "F"))) == "AA"
    assert ack_code_of(post(http, oru(f"RV1B{n}", f"{number}^^^FNXRMYY^MR", "柳^一", "19610101", "F", code))) == "AA"
    (old,) = patients(http, f"{MRN}|{number}")
    # the same HIS, after the upgrade, sends her next visit and the LIS her next result as always
    ack = post(http, adt(f"RV1C{n}", f"{number}^^^{cx4}^MR", "柳^一", "19610101", "F"))
    assert ack_code_of(ack) == "AA"
    assert ack_code_of(post(http, oru(f"RV1D{n}", f"{number}^^^{cx4}^MR", "柳^一", "19610101", "F", code))) == "AA"
    records = [p["id"] for p in patients(http, number)]
    assert len(records) == 1 or engine.identity.same_person(*records), records  # one record, or linked
    assert set(subjects(http, code)) == {f"Patient/{old['id']}"}


def test_a_returning_patient_with_her_id_number_is_linked_by_the_index_across_the_split(
        engine: Engine, http: TestClient) -> None:
    """The split of the probe above, when her messages carry her national ID: the new record is keyed
    ``nid|`` and the patient index links it with the old MRN record (same person, one compartment),
    so a resident's view and recognition still reach her earlier results."""
    nid = _nid("32092319610202002")
    assert ack_code_of(post(http, adt("RV2A", f"R78^^^FNXRMYY^MR~{nid}^^^^NNCHN", "柳^二", "19610202", "F"))) == "AA"
    assert ack_code_of(post(http, oru("RV2B", f"R78^^^HIS^MR~{nid}^^^^NNCHN", "柳^二", "19610202", "F",
                                      "RV2GLU"))) == "AA"
    records = {p["id"] for p in patients(http, "R78")}
    ids = {p["id"] for p in patients(http, nid)}
    assert records <= ids and len(ids) == 2, ids  # split: the old MRN record and a new nid| one
    if len(ids) > 1:  # split: the index must hold them as one person
        one, other = sorted(ids)
        assert engine.identity.same_person(one, other)
        assert other in engine.identity.person_compartment(one)


# --- two people sharing a number under two authorities --------------------------------------------


def test_a_lis_number_arriving_before_the_his_record_of_that_value_stays_apart(http: TestClient) -> None:
    """The reverse order of identity32's test: the LIS's record first, then the HIS registers another
    person under the same value, then each sends a result: neither lands in the other's record and
    the guard refuses nothing (the keys differ)."""
    assert ack_code_of(post(http, oru("RV3A", "S77^^^LIS^PI", "李^三", "19700101", "F", "RV3LIS"))) == "AA"
    assert ack_code_of(post(http, adt("RV3B", "S77^^^FNXRMYY^MR", "张^三", "19850412", "M"))) == "AA"
    assert ack_code_of(post(http, oru("RV3C", "S77", "张^三", "19850412", "M", "RV3HIS", app="HIS"))) == "AA"
    (his,) = patients(http, f"{MRN}|S77")
    (lis,) = patients(http, f"{MRN}:LIS|S77")
    assert his["id"] != lis["id"] and his["name"][0]["text"] == "张三" and lis["name"][0]["text"] == "李三"
    assert subjects(http, "RV3LIS") == [f"Patient/{lis['id']}"]
    assert subjects(http, "RV3HIS") == [f"Patient/{his['id']}"]


@pytest.mark.parametrize("event", ["A40", "A34", "A18"])
def test_mrg1_naming_the_lis_number_merges_only_the_lis_record(http: TestClient, event: str) -> None:
    """An A40 (A34, A18) whose MRG-1 names ``T77^^^LIS^PI``: the LIS's record of that number is merged
    into the survivor; the HIS's record ``T77`` (another person) is untouched and its result stays its
    own."""
    n = {"A40": "", "A34": "3", "A18": "8"}[event]
    assert ack_code_of(post(http, adt(f"RV4{n}A", f"T77{n}^^^FNXRMYY^MR", "张^四", "19850412", "M"))) == "AA"
    assert ack_code_of(post(http, oru(f"RV4{n}B", f"T77{n}", "张^四", "19850412", "M", f"RV4HIS{n}", app="HIS"))) == "AA"
    assert ack_code_of(post(http, oru(f"RV4{n}C", f"T77{n}^^^LIS^PI", "李^四", "19700101", "F", f"RV4LIS{n}"))) == "AA"
    assert ack_code_of(post(http, adt(f"RV4{n}D", f"T78{n}^^^FNXRMYY^MR", "李^四", "19700101", "F"))) == "AA"
    (his,) = patients(http, f"{MRN}|T77{n}")
    (lis,) = patients(http, f"{MRN}:LIS|T77{n}")
    (survivor,) = patients(http, f"{MRN}|T78{n}")
    ack = post(http, merge(f"RV4{n}E", f"T78{n}^^^FNXRMYY^MR", "李^四", "19700101", "F", f"T77{n}^^^LIS^PI",
                         event))
    assert ack_code_of(ack) == "AA", ack
    his_now = http.get(f"/fhir/Patient/{his['id']}").json()
    assert his_now.get("active", True) is not False and not his_now.get("link"), his_now
    assert subjects(http, f"RV4HIS{n}") == [f"Patient/{his['id']}"]
    # her result: on her (merged) LIS record or moved to the survivor, never on his record
    assert set(subjects(http, f"RV4LIS{n}")) <= {f"Patient/{survivor['id']}", f"Patient/{lis['id']}"}
    lis_now = http.get(f"/fhir/Patient/{lis['id']}").json()
    assert lis_now.get("active") is False or any(
        (ln.get("other") or {}).get("reference") == f"Patient/{survivor['id']}" for ln in lis_now.get("link") or ()
    ), lis_now


def test_mrg1_naming_the_his_number_does_not_merge_the_lis_record_of_that_value(http: TestClient) -> None:
    """An A40 whose MRG-1 names the HIS's ``U77`` (no CX-4): only the HIS record is merged; the LIS's
    record of the same value (another person) is left as it is."""
    assert ack_code_of(post(http, oru("RV5A", "U77^^^LIS^PI", "李^五", "19700101", "F", "RV5LIS"))) == "AA"
    assert ack_code_of(post(http, adt("RV5B", "U77^^^FNXRMYY^MR", "张^五", "19850412", "M"))) == "AA"
    assert ack_code_of(post(http, adt("RV5C", "U78^^^FNXRMYY^MR", "张^五", "19850412", "M"))) == "AA"
    (lis,) = patients(http, f"{MRN}:LIS|U77")
    assert ack_code_of(post(http, merge("RV5D", "U78^^^FNXRMYY^MR", "张^五", "19850412", "M", "U77"))) == "AA"
    lis_now = http.get(f"/fhir/Patient/{lis['id']}").json()
    assert lis_now.get("active", True) is not False and not lis_now.get("link"), lis_now
    assert subjects(http, "RV5LIS") == [f"Patient/{lis['id']}"]


def test_a_pid2_external_id_under_an_authority_never_takes_the_his_record(http: TestClient) -> None:
    """PID-2 (v2.3 external id) ``V77^^^LIS^PI`` with no PID-3: keyed apart (``pid2|``), never the HIS's
    record ``V77`` of another person."""
    assert ack_code_of(post(http, adt("RV6A", "V77^^^FNXRMYY^MR", "张^六", "19850412", "M"))) == "AA"
    (his,) = patients(http, f"{MRN}|V77")
    raw = ("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|RV6B|P|2.5.1\r"
           "PID|1|V77^^^LIS^PI|||李^六||19700101|F\r"
           "OBR|1|ORV6B|LRV6B|RV6^RV6^L|||20261201083000||||G|||20261201083500|BLD||||||||20261201091000|||F\r"
           "OBX|1|NM|RV6^RV6^L||5.6|mmol/L|||||F|||20261201090000\r")
    assert ack_code_of(post(http, raw)) in ("AA", "AE")
    assert f"Patient/{his['id']}" not in subjects(http, "RV6")


def _newborn_result(control: str, mother: str, code: str) -> str:
    return ("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261202101500||ORU^R01^ORU_R01|" + control + "|P|2.5.1\r"
            f"PID|1||NB77^^^FNXRMYY^MR||张三之女||20261130|F|||||||||||||{mother}\r"
            "PV1|1|I|||||||||||||||||VN77\r"
            f"OBR|1|O{control}|L{control}|{code}^{code}^L|||20261202083000||||G|||20261202083500|BLD"
            "||||||||20261202091000|||F\r"
            f"OBX|1|NM|{code}^{code}^L||5.6|mmol/L|||||F|||20261202090000\r")


def test_pid21_naming_the_lis_number_is_not_the_mother_whose_visit_it_is(http: TestClient) -> None:
    """母婴同室: the mother's HIS record N77 holds the visit VN77; the LIS's N77 is another woman. A
    newborn's result under VN77 whose PID-21 names ``N77^^^LIS^PI`` names the LIS's woman, not the
    visit's patient: refused at PV1-19; naming ``N77^^^FNXRMYY^MR`` it is filed under her visit."""
    assert ack_code_of(post(http, oru("RV16A", "N77^^^LIS^PI", "李^婷", "19920101", "F", "RV16LIS"))) == "AA"
    admit = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261129091500||ADT^A01^ADT_A01|RV16B|P|2.5.1\r"
             "EVN|A01|20261129091500\rPID|1||N77^^^FNXRMYY^MR||王^芳||19950505|F\r"
             "PV1|1|I|||||||||||||||||VN77|||||||||||||||||||||||||20261129091500\r")
    assert ack_code_of(post(http, admit)) == "AA"
    ack = post(http, _newborn_result("RV16C", "N77^^^LIS^PI", "RV16NB"))
    assert ack_code_of(ack) == "AE" and any("PV1^1^19" in e for e in err_lines(ack)), ack
    assert subjects(http, "RV16NB") == []
    assert ack_code_of(post(http, _newborn_result("RV16D", "N77^^^FNXRMYY^MR", "RV16NB"))) == "AA"
    assert len(subjects(http, "RV16NB")) == 1


def test_a_number_assigned_by_another_member_institution_keeps_that_institutions_system(http: TestClient) -> None:
    ack = post(http, adt("RV15A", "H88^^^FNZYY^MR", "王^十一", "19600101", "M"))
    assert ack_code_of(ack) == "AA", ack
    found = patients(http, "H88")
    assert found and any(i.get("system") == "urn:huren:mrn:FNZYY" and i.get("value") == "H88"
                         for p in found for i in p.get("identifier", ())), [p["identifier"] for p in found]


# --- the guard --------------------------------------------------------------------------------------


def test_an_a08_from_another_application_cannot_take_over_a_record(http: TestClient) -> None:
    assert ack_code_of(post(http, adt("RV7A", "W77^^^FNXRMYY^MR", "孙^七", "19800808", "M"))) == "AA"
    assert ack_code_of(post(http, oru("RV7B", "W77", "孙^七", "19800808", "M", "RV7HIS", app="HIS"))) == "AA"
    (his,) = patients(http, f"{MRN}|W77")
    ack = post(http, adt("RV7C", "W77^^^FNXRMYY^MR", "周^八", "19901010", "F", event="A08", app="LIS"))
    assert ack_code_of(post(http, oru("RV7D", "W77", "周^八", "19901010", "F", "RV7LIS"))) == "AE"
    now = http.get(f"/fhir/Patient/{his['id']}").json()
    assert ack_code_of(ack) != "AA" and now["name"][0]["text"] == "孙七", (ack, now["name"])


def test_an_a08_restating_a_record_as_another_person_is_at_least_flagged(engine: Engine, http: TestClient) -> None:
    assert ack_code_of(post(http, adt("RV8A", "X77^^^FNXRMYY^MR", "钱^九", "19700303", "M"))) == "AA"
    assert ack_code_of(post(http, oru("RV8B", "X77", "钱^九", "19700303", "M", "RV8GLU", app="HIS"))) == "AA"
    ack = post(http, adt("RV8C", "X77^^^FNXRMYY^MR", "吴^十", "19881212", "F", event="A08"))
    flagged = ack_code_of(ack) != "AA" or bool(err_lines(ack))
    assert flagged, ack


def test_a_result_naming_another_name_and_sex_with_no_birth_date_is_refused(http: TestClient) -> None:
    assert ack_code_of(post(http, adt("RV13A", "J77^^^FNXRMYY^MR", "孙^九", "19800808", "M"))) == "AA"
    (his,) = patients(http, f"{MRN}|J77")
    ack = post(http, oru("RV13B", "J77", "周^九", "", "F", "RV13GLU"))
    assert f"Patient/{his['id']}" not in subjects(http, "RV13GLU"), ack
    assert ack_code_of(ack) == "AE"


def test_a_resident_never_reads_the_other_persons_record_through_the_new_keys(
        engine: Engine, http: TestClient) -> None:
    """He (HIS record G77, his ID number) and she (the LIS's G77, her ID number): his resident token
    finds neither her record by the LIS's system nor her result; hers does not find his."""
    his_nid, her_nid = _nid("32092319850412001"), _nid("32092319700101002")
    assert ack_code_of(post(http, adt("RV14A", f"G77^^^FNXRMYY^MR~{his_nid}^^^^NNCHN", "张^十", "19850412",
                                      "M"))) == "AA"
    assert ack_code_of(post(http, oru("RV14B", "G77", "张^十", "19850412", "M", "RV14HIS", app="HIS"))) == "AA"
    assert ack_code_of(post(http, oru("RV14C", f"G77^^^LIS^PI~{her_nid}^^^^NNCHN", "李^十", "19700101", "F",
                                      "RV14LIS"))) == "AA"
    (his,) = patients(http, f"{MRN}|G77")
    (hers,) = patients(http, f"{MRN}:LIS|G77")
    assert his["id"] != hers["id"]
    for me, other, other_code in ((his, hers, "RV14LIS"), (hers, his, "RV14HIS")):
        token, _ = engine.auth.issue_token(subject=f"person-{me['id']}", kind="patient", client_id="phr",
                                           scopes=["patient/*.rs", "openid", "fhirUser"], patient=me["id"])
        as_me = {"Authorization": f"Bearer {token}"}
        for query in ({"identifier": f"{MRN}:LIS|G77"}, {"identifier": f"{MRN}|G77"}, {"identifier": "G77"}):
            r = http.get("/fhir/Patient", params=query, headers=as_me)
            assert r.status_code in (200, 403), r.text
            found = {e["resource"]["id"] for e in r.json().get("entry", [])} if r.status_code == 200 else set()
            assert other["id"] not in found, (query, found)
        assert http.get(f"/fhir/Patient/{other['id']}", headers=as_me).status_code in (403, 404)
        r = http.get("/fhir/Observation", params={"code": other_code}, headers=as_me)
        assert r.status_code in (200, 403) and not (r.json().get("entry") if r.status_code == 200 else []), r.text


def test_the_guard_holds_within_one_batch_and_does_not_echo_the_other_person(http: TestClient) -> None:
    """A batch: an A04 registering him, then a result naming her under his number: the result is
    refused AE at PID-3 (the guard compares with the version the first message writes), his record
    is filed, nothing of hers; the ERR does not tell her sender his name or birth date."""
    body = ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r"
            + adt("RV9A", "Y77^^^FNXRMYY^MR", "郑^一", "19750101", "M")
            + oru("RV9B", "Y77^^^FNXRMYY^MR", "冯^二", "19950202", "F", "RV9GLU")
            + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AA|RV9A" in ack and b"MSA|AE|RV9B" in ack, ack
    text = ack.decode("utf-8")
    assert "郑" not in text and "19750101" not in text and "1975-01-01" not in text, text
    assert [p["name"][0]["text"] for p in patients(http, f"{MRN}|Y77")] == ["郑一"]
    assert subjects(http, "RV9GLU") == []


def test_the_guard_does_not_refuse_unknown_sex_a_missing_birth_date_or_a_newborn_named(http: TestClient) -> None:
    """False refusals: a newborn registered as 张三之子 (sex U), then named (sex given, same birth date);
    a result with no birth date and the name in pinyin; a result with sex U and another name: each is
    at most two fields, never all three: AA. (nbfix38: RV10D's birth date was 20261201, a day after the record's --
    another name and another day of birth are two people since, whatever the sex: now the record's day.)"""
    assert ack_code_of(post(http, adt("RV10A", "Z77^^^FNXRMYY^MR", "张三之子", "20261130", "U"))) == "AA"
    assert ack_code_of(post(http, oru("RV10B", "Z77", "张^小明", "20261130", "M", "RV10", app="HIS"))) == "AA"
    assert ack_code_of(post(http, oru("RV10C", "Z77", "ZHANG^XIAOMING", "", "F", "RV10", app="HIS"))) == "AA"
    assert ack_code_of(post(http, oru("RV10D", "Z77", "张^明明", "20261130", "U", "RV10", app="HIS"))) == "AA"
    (record,) = patients(http, f"{MRN}|Z77")
    assert set(subjects(http, "RV10")) == {f"Patient/{record['id']}"}


def test_a_refused_message_replayed_after_the_a08_correction_is_filed(engine: Engine, http: TestClient) -> None:
    """The refusal's promise: correct the record (A08), replay the kept message, it is filed."""
    assert ack_code_of(post(http, adt("RV11A", "Q77^^^FNXRMYY^MR", "孙^一", "19800808", "M"))) == "AA"
    assert ack_code_of(post(http, oru("RV11B", "Q77", "周^一", "19901010", "F", "RV11GLU", app="HIS"))) == "AE"
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "RV11B"))
    assert doc is not None and doc["status"] == "quarantined"
    ops = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}
    # replayed as it is: still refused
    again = http.post(f"/admin/quarantine/{doc['_id']}/replay", headers=ops)
    assert again.status_code in (200, 409, 422), again.text
    assert subjects(http, "RV11GLU") == []
    assert ack_code_of(post(http, adt("RV11C", "Q77^^^FNXRMYY^MR", "周^一", "19901010", "F", "A08"))) == "AA"
    replayed = http.post(f"/admin/quarantine/{doc['_id']}/replay", headers=ops)
    assert replayed.status_code == 200, replayed.text
    (record,) = patients(http, f"{MRN}|Q77")
    assert subjects(http, "RV11GLU") == [f"Patient/{record['id']}"]


def test_the_refused_message_sent_again_after_the_correction_is_filed(http: TestClient) -> None:
    """The ERR's advice: "correct the record first (ADT^A08/A31) and send the message again". The sender
    re-sends the same bytes (same MSH-10) after the A08: filed, or the advice does not say to."""
    assert ack_code_of(post(http, adt("RV17A", "P77^^^FNXRMYY^MR", "孙^二", "19800808", "M"))) == "AA"
    refused = oru("RV17B", "P77", "周^二", "19901010", "F", "RV17GLU", app="HIS")
    first = post(http, refused)
    assert ack_code_of(first) == "AE"
    advice = "send the message again" in first.decode("utf-8")
    assert ack_code_of(post(http, adt("RV17C", "P77^^^FNXRMYY^MR", "周^二", "19901010", "F", "A08"))) == "AA"
    ack = post(http, refused)
    (record,) = patients(http, f"{MRN}|P77")
    filed = ack_code_of(ack) == "AA" and subjects(http, "RV17GLU") == [f"Patient/{record['id']}"]
    assert filed or not advice, ack


def test_an_escaped_field_separator_in_an_mrn_does_not_reach_another_key(http: TestClient) -> None:
    assert ack_code_of(post(http, oru("RV12A", "K77^^^LIS^PI", "李^七", "19700101", "F", "RV12LIS"))) == "AA"
    (lis,) = patients(http, f"{MRN}:LIS|K77")
    ack = post(http, oru("RV12B", "auth\\F\\LIS\\F\\K77^^^FNXRMYY^MR", "李^七", "19700101", "F", "RV12HIS",
                         app="HIS"))
    assert f"Patient/{lis['id']}" not in subjects(http, "RV12HIS"), ack


# --- both backends ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def both(module_eng: Engine) -> Iterator[tuple[Engine, TestClient]]:  # noqa: F811 -- the imported fixture
    with TestClient(create_app(module_eng)) as client:
        client.headers["Authorization"] = "Bearer " + module_eng.auth.issue_system_token("rv", "system/*.cruds")
        yield module_eng, client


def test_keys_apart_and_the_guard_on_each_backend(both: tuple[Engine, TestClient]) -> None:
    """SQLite and mongomock: the LIS's number keyed apart from the HIS record of its value, and a
    result naming another person under the HIS record refused and kept with its raw text."""
    engine, http = both
    assert ack_code_of(post(http, adt("RVB1", "M77^^^FNXRMYY^MR", "张^三", "19850412", "M"))) == "AA"
    assert ack_code_of(post(http, oru("RVB2", "M77^^^LIS^PI", "李^一", "19700101", "F", "RVBGLU"))) == "AA"
    (his,) = patients(http, f"{MRN}|M77")
    (lis,) = patients(http, f"{MRN}:LIS|M77")
    assert subjects(http, "RVBGLU") == [f"Patient/{lis['id']}"] and his["id"] != lis["id"]
    ack = post(http, oru("RVB3", "M77", "周^八", "19901010", "F", "RVBX", app="HIS"))
    assert ack_code_of(ack) == "AE" and "|PID^1^3|" in err_lines(ack)[0]
    assert subjects(http, "RVBX") == []
    kept = engine.ingestor.messages.get(message_id("FNXRMYY", "RVB3"))
    assert kept is not None and "周^八" in base64.b64decode(kept["raw"]).decode("utf-8")
