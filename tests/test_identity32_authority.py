"""A sender's own patient numbers keyed apart from the institution's record number, and the guard of a
message against a stored record of another person (thirty-second round, identity32).

PID-3's record-number types (MR, PI, PT, MRN, empty) are the institution's medical record number only
when CX-4 (assigning authority) is empty or names the institution (its code, its name, an alias, a
declared ``mrn_authorities`` entry): the LIS's ``L77^^^LIS^PI`` is the LIS's number, under
``urn:huren:mrn:<institution>:LIS``, and never the HIS's record ``L77``. A message whose PID resolves to
a stored record whose name, sex and birth date all differ is refused (AE, ERR at PID-3, kept for
replay), but an ADT A08/A31 -- the registration system correcting its record's person -- is not.

Real HL7 over ``POST /hl7v2`` into a real store, read back over ``/fhir``."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.conftest import REPO_ROOT
from tests.hl7_calls import err_lines, module_engine, module_http, post  # noqa: F401 -- the module's engine and client

MRN = "urn:huren:mrn:FNXRMYY"


def adt(control: str, pid3: str, name: str, birth: str, sex: str, event: str = "A04") -> str:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\rPID|1||{pid3}||{name}||{birth}|{sex}\rPV1|1|O\r")


def oru(control: str, pid3: str, name: str, birth: str, sex: str, code: str) -> str:
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            f"PID|1||{pid3}||{name}||{birth}|{sex}\r"
            f"OBR|1|O{control}|L{control}|{code}^{code}^L|||20261201083000||||G|||20261201083500|BLD"
            "||||||||20261201091000|||F\r"
            f"OBX|1|NM|{code}^{code}^L||5.6|mmol/L|||||F|||20261201090000\r")


def patients(http: TestClient, token: str) -> list[dict]:
    return [e["resource"] for e in http.get("/fhir/Patient", params={"identifier": token}).json().get("entry", [])]


def subjects(http: TestClient, code: str) -> list[str]:
    found = http.get("/fhir/Observation", params={"code": code}).json().get("entry", [])
    return [e["resource"]["subject"]["reference"] for e in found]


def test_the_lis_number_and_the_his_record_number_of_one_value_are_two_records(http: TestClient) -> None:
    assert ack_code_of(post(http, adt("I32A1", "A77^^^FNXRMYY^MR", "张^三", "19850412", "M"))) == "AA"
    assert ack_code_of(post(http, oru("I32A2", "A77^^^LIS^PI", "李^一", "19700101", "F", "I32GLU"))) == "AA"
    his = patients(http, f"{MRN}|A77")
    assert [p["name"][0]["text"] for p in his] == ["张三"]  # her number is not his record number
    lis = patients(http, f"{MRN}:LIS|A77")
    assert [p["name"][0]["text"] for p in lis] == ["李一"]
    # her identifier as sent: the LIS's type and assigner, under a system of the institution and the LIS
    assert lis[0]["identifier"] == [{"value": "A77", "system": f"{MRN}:LIS", "assigner": {"display": "LIS"},
                                     "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                          "code": "PI"}]}}]
    assert subjects(http, "I32GLU") == [f"Patient/{lis[0]['id']}"]
    # her next result from the LIS is filed under her record again
    assert ack_code_of(post(http, oru("I32A3", "A77^^^LIS^PI", "李^一", "19700101", "F", "I32GLU"))) == "AA"
    assert set(subjects(http, "I32GLU")) == {f"Patient/{lis[0]['id']}"}
    assert len(patients(http, f"{MRN}|A77")) == 1 and len(patients(http, f"{MRN}:LIS|A77")) == 1
    # a registration listing the LIS's number after the MRN: the same system for it, the MRN keys
    assert ack_code_of(post(http, adt("I32A4", "A78^^^FNXRMYY^MR~A79^^^LIS^PI", "何^一", "19770707", "M"))) == "AA"
    (both,) = patients(http, f"{MRN}|A78")
    assert [(i["system"], i["value"]) for i in both["identifier"]] == [(MRN, "A78"), (f"{MRN}:LIS", "A79")]


def test_a_number_whose_authority_names_the_institution_is_its_record_number(http: TestClient) -> None:
    """CX-4 as the institution's code (MSH-4) or as its name (institutions.yaml): the MRN, as before,
    whatever record-number type CX-5 gives (PI from the LIS for the HIS's MR)."""
    assert ack_code_of(post(http, adt("I32B1", "B77^^^FNXRMYY^MR", "王^五", "19600101", "M"))) == "AA"
    assert ack_code_of(post(http, oru("I32B2", "B77^^^FNXRMYY^PI", "王^五", "19600101", "M", "I32B"))) == "AA"
    assert ack_code_of(post(http, oru("I32B3", "B77^^^阜宁县人民医院^MR", "王^五", "19600101", "M", "I32B"))) == "AA"
    his = patients(http, f"{MRN}|B77")
    assert [p["name"][0]["text"] for p in his] == ["王五"]
    assert subjects(http, "I32B") == [f"Patient/{his[0]['id']}"] * 2
    assert patients(http, f"{MRN}:FNXRMYY|B77") == []  # no second record of its own authority


def test_a_number_with_no_authority_is_the_record_number_as_before(http: TestClient) -> None:
    assert ack_code_of(post(http, adt("I32C1", "C77", "赵^六", "19550505", "F"))) == "AA"
    assert ack_code_of(post(http, oru("I32C2", "C77^^^^PI", "赵^六", "19550505", "F", "I32C"))) == "AA"
    his = patients(http, f"{MRN}|C77")
    assert [p["name"][0]["text"] for p in his] == ["赵六"]
    assert subjects(http, "I32C") == [f"Patient/{his[0]['id']}"]


def test_a_message_naming_another_person_under_a_stored_record_is_refused(engine: Engine, http: TestClient) -> None:
    """Name, sex and birth date all contradicting the stored record: AE at PID-3, nothing filed, the
    message kept; one field differing (the name in pinyin) is the same person, filed as before."""
    assert ack_code_of(post(http, adt("I32D1", "D77^^^FNXRMYY^MR", "孙^七", "19800808", "M"))) == "AA"
    man = patients(http, f"{MRN}|D77")[0]["id"]
    ack = post(http, oru("I32D2", "D77^^^FNXRMYY^MR", "周^八", "19901010", "F", "I32D"))
    assert ack_code_of(ack) == "AE"
    (err,) = err_lines(ack)
    assert "|PID^1^3|205^" in err and "PID-5" in err and "PID-7" in err and "PID-8" in err, err
    assert subjects(http, "I32D") == []  # nothing of hers under his record
    assert [p["name"][0]["text"] for p in patients(http, f"{MRN}|D77")] == ["孙七"]
    kept = engine.ingestor.messages.get(message_id("FNXRMYY", "I32D2"))
    assert kept is not None and (kept["status"], kept["ack_code"]) == ("quarantined", "AE")
    assert "周^八" in base64.b64decode(kept["raw"]).decode("utf-8")  # kept as sent, for replay
    assert "孙" not in err  # the stored person's particulars are not told to the sender
    # an admission (not a correction) naming another person under the number: refused too
    assert ack_code_of(post(http, adt("I32D3", "D77^^^FNXRMYY^MR", "周^八", "19901010", "F", "A01"))) == "AE"
    # one field differing is no reason: his name in pinyin, his sex and birth date
    assert ack_code_of(post(http, oru("I32D4", "D77^^^FNXRMYY^MR", "SUN^QI", "19800808", "M", "I32D"))) == "AA"
    assert subjects(http, "I32D") == [f"Patient/{man}"]


def test_an_a08_corrects_the_records_person_and_later_results_follow(http: TestClient) -> None:
    """ADT A08 (update patient information) from the registration system restates who the record's
    person is: not refused, even with all three changed; a result naming the corrected person is
    then filed under the record. One naming the old person, as the registrar itself stated it before, is
    refused: the A08 changed the sex with the name, an overlay (another person written over the record), not
    the name-and-day correction nbfix39's former-person pass is for (nmfix39, rv39f HIGH 1: the old person's
    result would read as the new person's); one naming a person the record never was is refused too."""
    assert ack_code_of(post(http, adt("I32E1", "E77^^^FNXRMYY^MR", "钱^九", "19700303", "M"))) == "AA"
    record = patients(http, f"{MRN}|E77")[0]["id"]
    assert ack_code_of(post(http, adt("I32E2", "E77^^^FNXRMYY^MR", "吴^十", "19881212", "F", "A08"))) == "AA"
    (now,) = patients(http, f"{MRN}|E77")
    assert (now["id"], now["name"][0]["text"], now["gender"], now["birthDate"]) == (record, "吴十", "female",
                                                                                     "1988-12-12")
    assert ack_code_of(post(http, oru("I32E3", "E77^^^FNXRMYY^MR", "吴^十", "19881212", "F", "I32E"))) == "AA"
    assert subjects(http, "I32E") == [f"Patient/{record}"]
    ack = post(http, oru("I32E4", "E77^^^FNXRMYY^MR", "钱^九", "19700303", "M", "I32E4"))
    assert ack_code_of(ack) == "AE" and "the record's former" not in ack.decode("utf-8"), ack
    assert subjects(http, "I32E4") == []
    assert patients(http, f"{MRN}|E77")[0]["name"][0]["text"] == "吴十"
    assert ack_code_of(post(http, oru("I32E5", "E77^^^FNXRMYY^MR", "孙^九", "19700303", "M", "I32E5"))) == "AE"


def test_reading_a_refused_lis_message_is_audited_against_her_record_not_the_his_one(
        engine: Engine, http: TestClient) -> None:
    """An operator reading a refused message of the LIS's number: the audit names the record that
    number keys (hers), not the HIS's record of the same value (his) -- the patient index reads PID-3
    as the converter does (``record_number_system``)."""
    assert ack_code_of(post(http, adt("I32F1", "F77^^^FNXRMYY^MR", "郑^一", "19750101", "M"))) == "AA"
    assert ack_code_of(post(http, oru("I32F2", "F77^^^LIS^PI", "冯^二", "19950202", "F", "I32F"))) == "AA"
    his, hers = patients(http, f"{MRN}|F77")[0]["id"], patients(http, f"{MRN}:LIS|F77")[0]["id"]
    refused = ("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|I32F3|P|2.5.1\r"
               "PID|1||F77^^^LIS^PI||冯^二||19950202|F\r")  # no order, no result: AE
    assert ack_code_of(post(http, refused)) == "AE"
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "I32F3"))
    headers = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}
    assert http.get(f"/admin/quarantine/{doc['_id']}", headers=headers).status_code == 200
    shown = [e for e in engine.audit.events() if "quarantine-show" in json.dumps(e, ensure_ascii=False)][-1]
    named = {(x.get("what") or {}).get("reference") for x in shown.get("entity") or ()}
    assert f"Patient/{hers}" in named and f"Patient/{his}" not in named, named


def test_a_site_names_the_his_application_as_the_institutions_authority(tmp_path: Path, http: TestClient) -> None:
    """``institutions.yaml`` ``mrn_authorities: [HIS]``: the HIS's ``H77^^^HIS^MR`` is the institution's
    record number, the record the LIS's ``H77^^^FNXRMYY^PI`` names. Undeclared (the module's engine, the
    shipped site), ``HIS`` is another authority: its number is keyed apart."""
    assert ack_code_of(post(http, adt("I32G0", "H77^^^HIS^MR", "陈^一", "19660606", "M"))) == "AA"
    assert patients(http, f"{MRN}|H77") == [] and len(patients(http, f"{MRN}:HIS|H77")) == 1
    members = yaml.safe_load((REPO_ROOT / "mappings" / "institutions.yaml").read_text(encoding="utf-8"))
    for member in members:
        if member["code"] == "FNXRMYY":
            member["mrn_authorities"] = ["HIS"]
    (tmp_path / "institutions.yaml").write_text(yaml.safe_dump(members, allow_unicode=True), encoding="utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=tmp_path)) as declared, \
            TestClient(create_app(declared)) as client:
        client.headers["Authorization"] = "Bearer " + declared.auth.issue_system_token("t", "system/*.cruds")
        assert ack_code_of(post(client, adt("I32G1", "H77^^^HIS^MR", "陈^一", "19660606", "M"))) == "AA"
        assert ack_code_of(post(client, oru("I32G2", "H77^^^FNXRMYY^PI", "陈^一", "19660606", "M", "I32G"))) == "AA"
        (his,) = patients(client, f"{MRN}|H77")
        assert his["identifier"][0]["system"] == MRN and patients(client, f"{MRN}:HIS|H77") == []
        assert subjects(client, "I32G") == [f"Patient/{his['id']}"]
