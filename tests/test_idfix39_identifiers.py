"""idfix39: the rest of rv39d's findings on ident39 -- what a merge carries to its survivor, the record as a thin
registration leaves it against its own ID number, the registrar's ``""`` for the ID number, the filed-as-own mark on
the FHIR write path, the mother PID-21 names. Real HL7 over ``POST /hl7v2`` into a real store on each backend, read
back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from adapters.convert.persons import FILED_AS_OWN_EXT
from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.identity.demographics import a_woman
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import NNCHN_SYSTEM, engine_and_client, read_patient, tokens
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients

both = engine_and_client("idfix39")


@pytest.mark.parametrize("stated", [False, True])
def test_an_a40_of_two_records_of_two_id_numbers_carries_nothing(both: tuple[Engine, TestClient],
                                                                  stated: bool) -> None:
    """The survivor holds (stored, or stated in the A40's PID-3) an ID number other than the merged-away record's:
    the patient index refuses the merge (two persons' records, ``merge_refusal``), and nothing of the merged
    record is carried -- the survivor's identifiers are as they were, its number alone."""
    engine, http = both
    n = 2 if stated else 1
    one, two = _nid(f"3209231963010{n}002"), _nid(f"3209231963010{n}024")
    assert ack_code_of(post(http, adt(f"XA{n}1", f"X39A{n}1^^^FNXRMYY^MR~{one}^^^^NNCHN", "岳^甲", f"1963010{n}",
                                      "F"))) == "AA"
    assert ack_code_of(post(http, oru(f"XA{n}2", f"X39A{n}1^^^LIS^PI", "岳^甲", f"1963010{n}", "F",
                                      f"XA{n}2"))) == "AA"
    assert ack_code_of(post(http, adt(f"XA{n}3", f"X39A{n}2^^^FNXRMYY^MR~{two}^^^^NNCHN", "岳^甲", f"1963010{n}",
                                      "F"))) == "AA"
    (survivor,) = patients(http, f"{MRN}|X39A{n}2")
    pid3 = f"X39A{n}2^^^FNXRMYY^MR" + (f"~{two}^^^^NNCHN" if stated else "")
    ack = post(http, merge(f"XA{n}4", pid3, "岳^甲", f"1963010{n}", "F", f"X39A{n}1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AE", ack
    assert tokens(read_patient(http, survivor["id"])) == {f"{MRN}|X39A{n}2", f"{NNCHN_SYSTEM}|{two}"}
    assert [p["id"] for p in patients(http, two)] == [survivor["id"]]


def test_an_a47_moves_the_id_number_to_the_new_record(both: tuple[Engine, TestClient]) -> None:
    """An A47 renumbering her record: the new record carries her ID number and her remembered LIS number (mark and
    all) from the renumbered one, which keeps its remembered number (it names that record too) but not the ID
    number (``unless: replaced-by``); a search by the ID number answers the new record alone."""
    engine, http = both
    nid = _nid("32092319630808002")
    assert ack_code_of(post(http, adt("XG1", f"X39G^^^FNXRMYY^MR~{nid}^^^^NNCHN", "岳^辛", "19630808", "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|X39G")
    assert ack_code_of(post(http, oru("XG2", "X39G^^^LIS^PI", "岳^辛", "19630808", "F", "XG2"))) == "AA"
    ack = post(http, "MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A47^ADT_A30|XG3|P|2.5.1\r"
               "EVN|A47|20261201121500\rPID|1||Y39G^^^FNXRMYY^MR||岳^辛||19630808|F\rMRG|X39G^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    (new,) = patients(http, f"{MRN}|Y39G")
    assert tokens(new) == {f"{MRN}|Y39G", f"{NNCHN_SYSTEM}|{nid}", f"{MRN}:LIS|X39G"}, new
    (lis,) = [i for i in new["identifier"] if i.get("system") == f"{MRN}:LIS"]
    assert lis.get("extension") == [{"url": FILED_AS_OWN_EXT, "valueBoolean": True}], lis
    assert [p["id"] for p in patients(http, nid)] == [new["id"]]
    assert f"{NNCHN_SYSTEM}|{nid}" not in tokens(read_patient(http, old["id"]))


def test_a_thin_registration_agreeing_with_the_kept_number_passes_and_one_against_its_day_is_refused(
        both: tuple[Engine, TestClient]) -> None:
    """The other side of rv39d MED 4: a thin A08 whose sex and day agree with the kept number is AA and keeps it;
    one stating another birth date than the number's is refused at PID-7 (nothing filed), as with the number
    stated; PID-8 U is not compared."""
    engine, http = both
    nid = _nid("32092319630303001")  # male
    assert ack_code_of(post(http, adt("XC1", f"X39C^^^FNXRMYY^MR~{nid}^^^^NNCHN", "岳^丙", "19630303", "M"))) == "AA"
    (old,) = patients(http, f"{MRN}|X39C")
    for control, sex in (("XC2", "M"), ("XC3", "U")):
        ack = post(http, adt(control, "X39C^^^FNXRMYY^MR", "岳^丙", "19630303", sex, event="A08"))
        assert ack_code_of(ack) == "AA", ack
    ack = post(http, adt("XC4", "X39C^^^FNXRMYY^MR", "岳^丙", "19630304", "M", event="A08"))
    assert ack_code_of(ack) == "AE", ack
    assert any("|PID^1^7|" in line for line in err_lines(ack)), ack
    now = read_patient(http, old["id"])
    assert now["birthDate"] == "1963-03-03" and f"{NNCHN_SYSTEM}|{nid}" in tokens(now), now
    ack = post(http, adt("XC5", "X39C^^^FNXRMYY^MR", "岳^丙", "19630303", "F", event="A08"))
    assert ack_code_of(ack) == "AE" and any("|PID^1^8|" in line for line in err_lines(ack)), ack
    assert read_patient(http, old["id"])["gender"] in ("male", "unknown")


def test_a_corrected_id_number_with_the_corrected_sex_passes(both: tuple[Engine, TestClient]) -> None:
    """What the refusal's advice says: the A08 stating the corrected number with the corrected sex is filed, the
    wrong number gone."""
    engine, http = both
    wrong, right = _nid("32092319630404001"), _nid("32092319630404002")
    assert ack_code_of(post(http, adt("XD1", f"X39D^^^FNXRMYY^MR~{wrong}^^^^NNCHN", "岳^丁", "19630404", "M"))) == "AA"
    ack = post(http, adt("XD2", f"X39D^^^FNXRMYY^MR~{right}^^^^NNCHN", "岳^丁", "19630404", "F", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    (now,) = patients(http, f"{MRN}|X39D")
    assert now["gender"] == "female" and tokens(now) == {f"{MRN}|X39D", f"{NNCHN_SYSTEM}|{right}"}, now


def test_a_null_national_repetition_beside_a_number_changes_nothing_more(both: tuple[Engine, TestClient]) -> None:
    """``""^^^^NNCHN`` beside a stated ID number: the stated number stands (it replaces the stored one anyway)."""
    engine, http = both
    nid = _nid("32092319630505002")
    ack = post(http, adt("XE1", f'X39E^^^FNXRMYY^MR~""^^^^NNCHN~{nid}^^^^NNCHN', "岳^戊", "19630505", "F"))
    assert ack_code_of(ack) == "AA", ack
    (now,) = patients(http, f"{MRN}|X39E")
    assert tokens(now) == {f"{MRN}|X39E", f"{NNCHN_SYSTEM}|{nid}"}, now


def test_a_client_writing_back_a_marked_identifier_as_read_keeps_the_mark(both: tuple[Engine, TestClient]) -> None:
    """The mark is huren's, yet a client's read-modify-write (the record read and written back with a new
    telecom) does not take it off: only a mark the stored version does not carry on that identifier is dropped."""
    engine, http = both
    assert ack_code_of(post(http, adt("XF1", "X39F^^^FNXRMYY^MR", "岳^己", "19630606", "F"))) == "AA"
    assert ack_code_of(post(http, oru("XF2", "X39F^^^LIS^PI", "岳^己", "19630606", "F", "XF2"))) == "AA"
    (old,) = patients(http, f"{MRN}|X39F")
    now = read_patient(http, old["id"])
    body = {k: v for k, v in now.items() if k not in ("meta", "text")}
    body["telecom"] = [{"system": "phone", "value": "13800000000"}]
    assert http.put(f"/fhir/Patient/{old['id']}", json=body).status_code == 200
    (lis,) = [i for i in read_patient(http, old["id"])["identifier"] if i.get("system") == f"{MRN}:LIS"]
    assert lis.get("extension") == [{"url": FILED_AS_OWN_EXT, "valueBoolean": True}], lis


def test_the_mark_is_one_constant() -> None:
    """``merge.yaml``'s ``beside`` rule names the mark ``persons._mark_filed`` writes, the one constant."""
    rules = yaml.safe_load((Path(__file__).parent.parent / "mappings" / "merge.yaml").read_text(encoding="utf-8"))
    beside = rules["resources"]["Patient"]["identifier"]["beside"]["registration"]
    assert [r["where"]["extension.url"] for r in beside if "extension.url" in r["where"]] == [[FILED_AS_OWN_EXT]]


def test_known_to_be_a_woman() -> None:
    """``a_woman`` (PID-21's mother): sex female, or no sex and a valid ID number of even sex digit; not a patient
    of unknown sex with no number, nor one whose number says male."""
    female, male = _nid("32092319630707002"), _nid("32092319630707001")

    def patient(gender: str | None, *numbers: str) -> dict:
        return {"resourceType": "Patient", **({"gender": gender} if gender else {}), "identifier": [
            {"type": {"coding": [{"code": "NNCHN"}]}, "system": NNCHN_SYSTEM, "value": n} for n in numbers]}

    assert a_woman(patient("female")) and a_woman(patient(None, female)) and a_woman(patient("unknown", female))
    assert not a_woman(patient(None)) and not a_woman(patient("unknown")) and not a_woman(patient("male"))
    assert not a_woman(patient(None, male)) and not a_woman(patient("female", male))
    assert not a_woman(patient(None, female[:-1] + ("0" if female[-1] != "0" else "1")))  # (not valid: unknown)
