"""nbfix39: the person guard after rv39b (``demographics.contradicts_all``, the one owner of "two people").

Real HL7 over ``POST /hl7v2`` into a real store on each backend (``module_eng``), read back over ``/fhir`` and
``/admin/fidelity``; an operator's replay over ``/admin/quarantine/<id>/replay``:

- twins of the other sex: name AND male/female sex differing are two people whatever the birth date (HIGH 1);
- same-sex twins with their own resident ID numbers: name AND valid numbers with none in common (HIGH 2);
- a LIS result stating the record's former name and birth date, as its registrar stated them before its own
  correction: filed with a W (MED 1) -- a version another application stated, or an ADT, is not;
- an A40 joining two people by the guard's rule: filed with a W at MRG-1, counted (MED 2);
- a member's referral refused (MED 3, the lead's decision): the operator's corrected copy files it."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.identity.demographics import contradicts_all
from engine.messages import message_id
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import _fnzyy
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients, subjects

both = engine_and_client("nbfix39")


def _fidelity_items(engine: Engine, http: TestClient, words: str) -> list[dict]:
    ops = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops39", "system/MessageHeader.cr")}
    r = http.get("/admin/fidelity", params={"institution": "FNXRMYY"}, headers=ops)
    assert r.status_code == 200, r.text
    return [i for i in r.json()["institutions"].get("FNXRMYY", {}).get("items", []) if words in (i["message"] or "")]


# --- HIGH 1, 2: twins ------------------------------------------------------------------------------------------------


def test_twins_of_the_other_sex_each_filed_under_their_own_and_refused_under_the_others(
        both: tuple[Engine, TestClient]) -> None:
    """A girl and a boy born the same day: each one's result under their own MRN is filed; the boy's under his
    sister's is refused at PID-3 (name and sex differ; the day they share says nothing), nothing filed, the ACK
    echoing neither name. A sex corrected alone (same name, same day) is still filed: one field is no reason."""
    _, http = both
    girl = registered(http, "NT1", "NT1A", "王^小妹", "20261102", "F")
    boy = registered(http, "NT2", "NT2A", "王^小弟", "20261102", "M")
    assert ack_code_of(post(http, oru("NT1B", "NT1^^^FNXRMYY^MR", "王^小妹", "20261102", "F", "NT1GLU"))) == "AA"
    assert ack_code_of(post(http, oru("NT2B", "NT2^^^FNXRMYY^MR", "王^小弟", "20261102", "M", "NT2GLU"))) == "AA"
    assert subjects(http, "NT1GLU") == [f"Patient/{girl['id']}"]
    assert subjects(http, "NT2GLU") == [f"Patient/{boy['id']}"]
    ack = post(http, oru("NT1C", "NT1^^^FNXRMYY^MR", "王^小弟", "20261102", "M", "NT1XGLU"))
    assert ack_code_of(ack) == "AE" and subjects(http, "NT1XGLU") == [], ack
    (said,) = err_lines(ack)
    assert "|PID^1^3|" in said and "|205" in said, said
    assert "小弟" not in ack.decode("utf-8") and "小妹" not in ack.decode("utf-8"), ack
    ack = post(http, oru("NT1D", "NT1^^^FNXRMYY^MR", "王^小妹", "20261102", "M", "NT1SGLU"))
    assert ack_code_of(ack) == "AA" and subjects(http, "NT1SGLU") == [f"Patient/{girl['id']}"], ack


def test_same_sex_twins_with_their_own_id_numbers(both: tuple[Engine, TestClient]) -> None:
    """王大丫 and 王二丫, F, born 2010-03-01, each registered with her own resident ID. The second's result under the
    first's MRN with her own name and number: refused (name and numbers differ), the ACK echoing neither number.
    Her own under her own MRN: filed. The first's name under her MRN with the second's number (one field differing,
    a valid number typed for another): filed -- the name is always one of the fields that tell two people apart."""
    _, http = both
    first, second = _nid("32092320100301102"), _nid("32092320100301124")
    one = registered(http, "NT3", "NT3A", "王^大丫", "20100301", "F", f"~{first}^^^^NNCHN")
    two = registered(http, "NT4", "NT4A", "王^二丫", "20100301", "F", f"~{second}^^^^NNCHN")
    ack = post(http, oru("NT3B", f"NT3^^^FNXRMYY^MR~{second}^^^^NNCHN", "王^二丫", "20100301", "F", "NT3GLU"))
    assert ack_code_of(ack) == "AE" and subjects(http, "NT3GLU") == [], ack
    assert first not in ack.decode("utf-8") and second not in ack.decode("utf-8"), ack
    ack = post(http, oru("NT4B", f"NT4^^^FNXRMYY^MR~{second}^^^^NNCHN", "王^二丫", "20100301", "F", "NT4GLU"))
    assert ack_code_of(ack) == "AA" and subjects(http, "NT4GLU") == [f"Patient/{two['id']}"], ack
    ack = post(http, oru("NT3C", f"NT3^^^FNXRMYY^MR~{second}^^^^NNCHN", "王^大丫", "20100301", "F", "NT3XGLU"))
    assert ack_code_of(ack) == "AA" and subjects(http, "NT3XGLU") == [f"Patient/{one['id']}"], ack


def _patient(name: str, birth: str, sex: str, *numbers: str) -> dict:
    return {"resourceType": "Patient", "name": [{"text": name}], "birthDate": birth, "gender": sex,
            "identifier": [{"type": {"coding": [{"code": "NNCHN"}]}, "value": n} for n in numbers]}


def test_the_readings_of_the_guard() -> None:
    """The rule itself, each reading and what is no reason (``contradicts_all``): an ID number that AGREES does not
    overrule a name and a day that differ (a newborn registered under the mother's number); an invalid number proves
    nothing; a sex "unknown" is not compared; the name always differs where two people are found."""
    mother, newborn = _patient("柳壬", "1990-01-01", "female", _nid("32092319900101002")), \
        _patient("柳壬之女", "2026-11-30", "female", _nid("32092319900101002"))
    assert contradicts_all(mother, newborn)
    a, b = _patient("王大丫", "2010-03-01", "female", _nid("32092320100301102")), \
        _patient("王二丫", "2010-03-01", "female", _nid("32092320100301124"))
    assert contradicts_all(a, b)
    valid = _nid("32092320100301124")
    mistyped = valid[:17] + ("1" if valid[17] != "1" else "2")  # (its check digit wrong)
    assert not contradicts_all(a, _patient("王二丫", "2010-03-01", "female", mistyped))
    assert not contradicts_all(a, _patient("王二丫", "2010-03-01", "female"))
    assert not contradicts_all(a, _patient("王大丫", "2010-03-01", "female", _nid("32092320100301124")))
    assert contradicts_all(_patient("王小妹", "2026-11-02", "female"), _patient("王小弟", "2026-11-02", "male"))
    assert not contradicts_all(_patient("张三之子", "2026-11-02", "unknown"), _patient("张小明", "2026-11-02", "male"))


# --- MED 1: the registrar corrected the record; the LIS still sends the old ones -------------------------------------


def test_a_result_stating_the_former_person_the_registrar_corrected_is_filed_with_a_warning(
        both: tuple[Engine, TestClient]) -> None:
    """The HIS registered 柳庚 F 1970-01-01 and corrected name and day by its own A08 (刘庚 1970-10-01); the LIS's
    result with the old ones is the same woman: AA, ERR W at PID-3 naming the record's former name and birth date,
    filed under the record, which keeps the corrected ones; the W is counted in the fidelity view."""
    engine, http = both
    record = registered(http, "NF1", "NF1A", "柳^庚", "19700101", "F")
    assert ack_code_of(post(http, adt("NF1B", "NF1^^^FNXRMYY^MR", "刘^庚", "19701001", "F", event="A08"))) == "AA"
    ack = post(http, oru("NF1C", "NF1^^^FNXRMYY^MR", "柳^庚", "19700101", "F", "NF1GLU"))
    assert ack_code_of(ack) == "AA", ack
    (said,) = err_lines(ack)
    assert "|PID^1^3|" in said and "|W|" in said, said
    assert "former name (PID-5) and birth date (PID-7)" in said, said
    assert subjects(http, "NF1GLU") == [f"Patient/{record['id']}"]
    (now,) = patients(http, f"{MRN}|NF1")
    assert now["name"][0]["text"] == "刘庚" and now["birthDate"] == "1970-10-01", now
    items = _fidelity_items(engine, http, "states the record's former")
    assert items and items[0]["count"] >= 1, items


def test_what_is_not_the_registrars_former_statement_stays_refused(both: tuple[Engine, TestClient]) -> None:
    """Refused still: a result naming a name and day the record never had; one stating a version the LIS's own
    A08 wrote (a name changed alone, accepted then) -- not what the registering application stated; and the LIS's
    A04 stating the former person (an ADT writes the person: filed, it would undo the registrar's correction)."""
    _, http = both
    registered(http, "NF2", "NF2A", "柳^庚", "19700101", "F")
    assert ack_code_of(post(http, adt("NF2B", "NF2^^^FNXRMYY^MR", "柳^赓", "19700101", "F", event="A08",
                                      app="LIS"))) == "AA"
    (stated,) = patients(http, f"{MRN}|NF2")
    assert stated["name"][0]["text"] == "柳赓", stated  # (the LIS's version, v2)
    assert ack_code_of(post(http, adt("NF2C", "NF2^^^FNXRMYY^MR", "刘^庚", "19701001", "F", event="A08"))) == "AA"
    for control, name, birth in (("NF2D", "陈^庚", "19550505"), ("NF2E", "柳^赓", "19700101")):
        ack = post(http, oru(control, "NF2^^^FNXRMYY^MR", name, birth, "F", f"{control}GLU"))
        assert ack_code_of(ack) == "AE" and subjects(http, f"{control}GLU") == [], (control, ack)
    ack = post(http, adt("NF2F", "NF2^^^FNXRMYY^MR", "柳^庚", "19700101", "F", app="LIS"))
    assert ack_code_of(ack) == "AE", ack
    ack = post(http, oru("NF2G", "NF2^^^FNXRMYY^MR", "柳^庚", "19700101", "F", "NF2GGLU"))
    assert ack_code_of(ack) == "AA" and len(subjects(http, "NF2GGLU")) == 1, ack  # (v1, the HIS's: filed)
    (now,) = patients(http, f"{MRN}|NF2")
    assert now["name"][0]["text"] == "刘庚", now


def test_in_one_batch_the_registrars_correction_then_the_lis_result_of_the_former_person(
        both: tuple[Engine, TestClient]) -> None:
    """One batch: the HIS's A08 correcting name and day of birth, then the LIS's result with the former ones (the
    record as the batch leaves it contradicts it; the stored version the HIS registered does not): filed with the
    W, under the record; a result in the same batch naming someone the record never was: refused."""
    _, http = both
    record = registered(http, "NB1", "NB1A", "柳^庚", "19700101", "F")
    body = ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r"
            + adt("NB1B", "NB1^^^FNXRMYY^MR", "刘^庚", "19701001", "F", event="A08")
            + oru("NB1C", "NB1^^^FNXRMYY^MR", "柳^庚", "19700101", "F", "NB1GLU")
            + oru("NB1D", "NB1^^^FNXRMYY^MR", "陈^庚", "19550505", "F", "NB1XGLU")
            + "BTS|3\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AA|NB1B" in ack and b"MSA|AA|NB1C" in ack and b"MSA|AE|NB1D" in ack, ack
    assert b"the record's former name (PID-5) and birth date (PID-7)" in ack, ack
    assert subjects(http, "NB1GLU") == [f"Patient/{record['id']}"] and subjects(http, "NB1XGLU") == []
    (now,) = patients(http, f"{MRN}|NB1")
    assert now["name"][0]["text"] == "刘庚", now


# --- MED 2: an A40 joining two people --------------------------------------------------------------------------------


def test_an_a40_joining_two_people_is_filed_with_a_warning_counted(both: tuple[Engine, TestClient]) -> None:
    """The HIS's A40 merging the daughter's record (柳壬之女, 2026-11-30) into the mother's: the registering
    system's explicit instruction, filed (AA, the daughter's record replaced by the mother's), with ERR W at MRG-1
    naming name and birth date, counted in the fidelity view. The merge of a duplicate with the same name and a
    mistyped day (one field) is AA without a word."""
    engine, http = both
    registered(http, "NM1", "NM1A", "柳^壬", "19900101", "F")
    registered(http, "NM2", "NM2A", "柳壬之女", "20261130", "F")
    ack = post(http, merge("NM1B", "NM1^^^FNXRMYY^MR", "柳^壬", "19900101", "F", "NM2^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    (said,) = err_lines(ack)
    assert "|MRG^1^1|" in said and "|W|" in said and "name (PID-5) and birth date (PID-7)" in said, said
    (merged,) = patients(http, f"{MRN}|NM2")
    assert merged["active"] is False, merged
    assert _fidelity_items(engine, http, "MRG-1's record and this PID's person differ")
    registered(http, "NM3", "NM3A", "吴^敏", "19750505", "F")
    registered(http, "NM4", "NM4A", "吴^敏", "19750515", "F")
    ack = post(http, merge("NM3B", "NM3^^^FNXRMYY^MR", "吴^敏", "19750505", "F", "NM4^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA" and err_lines(ack) == [], ack


# --- MED 3: the referral refused; what the operator can do ----------------------------------------------------------


def test_the_operators_corrected_copy_files_a_refused_referral(both: tuple[Engine, TestClient]) -> None:
    """FNZYY's referral registration of FNXRMYY's 王丽 as 王莉 born 19800115 (lunar) is refused (the lead's decision);
    the ERR says the operator may replay a corrected copy. The operator, having checked, replays one stating the
    name and birth date FNXRMYY's record holds: filed, FNZYY's record carrying the county number."""
    engine, http = both
    registered(http, "NL1", "NL1A", "王^丽", "19800301", "F")
    sent = _fnzyy(adt("NL1B", "ZN1^^^FNZYY^MR~NL1^^^FNXRMYY^MR", "王^莉", "19800115", "F"))
    ack = post(http, sent)
    assert ack_code_of(ack) == "AE" and "corrected copy" in err_lines(ack)[0], ack
    operator = {"Authorization": "Bearer " + engine.auth.issue_system_token("operator39", "system/*.cruds")}
    corrected = sent.replace("|王^莉||19800115|", "|王^丽||19800301|")
    r = http.post(f"/admin/quarantine/{message_id('FNZYY', 'NL1B')}/replay", content=corrected.encode(),
                  headers=operator)
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    (record,) = patients(http, "urn:huren:mrn:FNZYY|ZN1")
    assert record["name"][0]["text"] == "王丽", record
