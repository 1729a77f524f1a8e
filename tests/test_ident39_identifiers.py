"""ident39: the registration states its own identifiers whole, not every number huren keeps on the record.

``merge.yaml`` ``Patient.identifier`` ``beside``: the HIS's A08 (ADT, the registration writer) replaces the record's
identifiers -- its MRN, a corrected ID number -- but leaves the ID number the patient index links on when it
restates the MRN alone (rv38j), and the number huren filed under the record as the institution's own (idfix38's
remembered number, ``persons._filed_as_own``) unless it states one under that same system. A FHIR client's update
still states the whole resource.

Real HL7 over ``POST /hl7v2`` (one exchange over MLLP) into a real store on each backend, read back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import mllp, post
from tests.identity39_calls import NNCHN_SYSTEM, engine_and_client, read_patient, tokens
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import _fnzyy
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients, subjects

both = engine_and_client("ident39")


def test_an_a08_restating_the_mrn_alone_keeps_the_id_number_the_index_links_on(
        both: tuple[Engine, TestClient]) -> None:
    """FNXRMYY and FNZYY register one woman with her ID number; the patient index links the two records on it.
    FNXRMYY's A08 then restates her MRN alone (over MLLP): her ID number stays on the record, a search by it finds
    both records, and the index still holds them for one person."""
    engine, http = both
    nid = _nid("32092319610404002")
    assert ack_code_of(post(http, adt("IAA", f"I39A^^^FNXRMYY^MR~{nid}^^^^NNCHN", "柳^甲", "19610404", "F"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("IAB", f"ZI39A^^^FNZYY^MR~{nid}^^^^NNCHN", "柳^甲", "19610404",
                                              "F")))) == "AA"
    (mine,) = patients(http, f"{MRN}|I39A")
    (theirs,) = patients(http, "urn:huren:mrn:FNZYY|ZI39A")
    assert engine.identity.same_person(mine["id"], theirs["id"])
    (ack,) = mllp(engine, adt("IAC", "I39A^^^FNXRMYY^MR", "柳^甲", "19610404", "F", event="A08").encode())
    assert ack_code_of(ack) == "AA", ack
    now = read_patient(http, mine["id"])
    assert f"{NNCHN_SYSTEM}|{nid}" in tokens(now) and f"{MRN}|I39A" in tokens(now), now["identifier"]
    assert sorted(p["id"] for p in patients(http, nid)) == sorted([mine["id"], theirs["id"]])
    assert engine.identity.same_person(mine["id"], theirs["id"])


def test_a_corrected_id_number_still_replaces_the_wrong_one(both: tuple[Engine, TestClient]) -> None:
    """The registrar corrects a mistyped ID number (A08, the same system, another value): the wrong one goes, the
    corrected one stands -- the number is kept only from an A08 that states none."""
    engine, http = both
    wrong, right = _nid("32092319610505002"), _nid("32092319610505024")
    assert ack_code_of(post(http, adt("IBA", f"I39B^^^FNXRMYY^MR~{wrong}^^^^NNCHN", "柳^乙", "19610505", "F"))) == "AA"
    assert ack_code_of(post(http, adt("IBB", f"I39B^^^FNXRMYY^MR~{right}^^^^NNCHN", "柳^乙", "19610505", "F",
                                      event="A08"))) == "AA"
    (now,) = patients(http, f"{MRN}|I39B")
    assert f"{NNCHN_SYSTEM}|{right}" in tokens(now) and f"{NNCHN_SYSTEM}|{wrong}" not in tokens(now), now
    assert patients(http, wrong) == []


def test_an_a08_stating_another_number_under_the_remembered_system_replaces_it(
        both: tuple[Engine, TestClient]) -> None:
    """Her LIS number I39C was filed under her record and remembered; the HIS's A08 states her MRN and a LIS
    number under the same system (``^^^LIS^PI``, another value): the HIS has said which LIS number is hers, so the
    remembered one goes and the stated one stands."""
    engine, http = both
    assert ack_code_of(post(http, adt("ICA", "I39C^^^FNXRMYY^MR", "柳^丙", "19610606", "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|I39C")
    assert ack_code_of(post(http, oru("ICB", "I39C^^^LIS^PI", "柳^丙", "19610606", "F", "ICB"))) == "AA"
    assert subjects(http, "ICB") == [f"Patient/{old['id']}"]
    assert f"{MRN}:LIS|I39C" in tokens(read_patient(http, old["id"]))
    ack = post(http, adt("ICC", "I39C^^^FNXRMYY^MR~L39C^^^LIS^PI", "柳^丙", "19610606", "F", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    now = tokens(read_patient(http, old["id"]))
    assert f"{MRN}:LIS|L39C" in now and f"{MRN}:LIS|I39C" not in now, now


def test_the_remembered_number_survives_her_a08_and_names_her_record(both: tuple[Engine, TestClient]) -> None:
    """Her LIS number remembered, the HIS's A08 restating her MRN alone: the number stays on her record (a search
    by it finds her record only), her own next result under it is filed there, a man's is refused."""
    engine, http = both
    assert ack_code_of(post(http, adt("IDA", "I39D^^^FNXRMYY^MR", "柳^丁", "19610707", "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|I39D")
    assert ack_code_of(post(http, oru("IDB", "I39D^^^LIS^PI", "柳^丁", "19610707", "F", "IDB"))) == "AA"
    assert ack_code_of(post(http, adt("IDC", "I39D^^^FNXRMYY^MR", "柳^丁", "19610707", "F", event="A08"))) == "AA"
    assert [p["id"] for p in patients(http, f"{MRN}:LIS|I39D")] == [old["id"]]
    ack = post(http, oru("IDD", "I39D^^^LIS^PI", "柳^丁", "19610707", "F", "IDD"))
    assert ack_code_of(ack) == "AA" and subjects(http, "IDD") == [f"Patient/{old['id']}"], ack
    ack = post(http, oru("IDE", "I39D^^^LIS^PI", "李^丁", "19900707", "M", "IDE"))
    assert ack_code_of(ack) == "AE" and subjects(http, "IDE") == [], ack
    assert [p["id"] for p in patients(http, "I39D")] == [old["id"]]


def test_a_fhir_clients_update_still_states_the_identifiers_whole(both: tuple[Engine, TestClient]) -> None:
    """``beside`` is the registration's rule alone: a FHIR client's PUT of her record without the remembered
    number and the ID number (FHIR update: the resource as sent) takes both off."""
    engine, http = both
    nid = _nid("32092319610808002")
    assert ack_code_of(post(http, adt("IEA", f"I39E^^^FNXRMYY^MR~{nid}^^^^NNCHN", "柳^戊", "19610808", "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|I39E")
    assert ack_code_of(post(http, oru("IEB", "I39E^^^LIS^PI", "柳^戊", "19610808", "F", "IEB"))) == "AA"
    now = read_patient(http, old["id"])
    assert {f"{MRN}:LIS|I39E", f"{NNCHN_SYSTEM}|{nid}"} <= tokens(now), now["identifier"]
    body = {k: v for k, v in now.items() if k not in ("meta", "text")}
    body["identifier"] = [i for i in now["identifier"] if i.get("system") == MRN]
    put = http.put(f"/fhir/Patient/{old['id']}", json=body)
    assert put.status_code == 200, put.text
    assert tokens(read_patient(http, old["id"])) == {f"{MRN}|I39E"}


def test_the_record_an_a40_merges_away_keeps_its_remembered_number_not_its_id_number(
        both: tuple[Engine, TestClient]) -> None:
    """Her record I39F1 (MRN, ID number, her LIS number remembered) merged into I39F2 by the HIS (A40, bare MRG-1):
    the merged record keeps the LIS number (it names her record, a man's result under it refused) but not the ID
    number (``unless`` replaced-by: its identifiers are MRG-1's; left there it would link it to the survivor a
    second time) -- a search by the ID number finds the survivor alone."""
    engine, http = both
    nid = _nid("32092319610909002")
    assert ack_code_of(post(http, adt("IFA", f"I39F1^^^FNXRMYY^MR~{nid}^^^^NNCHN", "柳^己", "19610909", "F"))) == "AA"
    (one,) = patients(http, f"{MRN}|I39F1")
    assert ack_code_of(post(http, oru("IFB", "I39F1^^^LIS^PI", "柳^己", "19610909", "F", "IFB"))) == "AA"
    assert ack_code_of(post(http, adt("IFC", f"I39F2^^^FNXRMYY^MR~{nid}^^^^NNCHN", "柳^己", "19610909", "F"))) == "AA"
    (two,) = patients(http, f"{MRN}|I39F2")
    assert ack_code_of(post(http, merge("IFD", f"I39F2^^^FNXRMYY^MR~{nid}^^^^NNCHN", "柳^己", "19610909", "F",
                                        "I39F1^^^FNXRMYY^MR"))) == "AA"
    merged = read_patient(http, one["id"])
    assert merged.get("active") is False, merged
    assert f"{MRN}:LIS|I39F1" in tokens(merged) and f"{NNCHN_SYSTEM}|{nid}" not in tokens(merged), merged
    assert [p["id"] for p in patients(http, nid)] == [two["id"]]
    ack = post(http, oru("IFE", "I39F1^^^LIS^PI", "李^己", "19900909", "M", "IFE"))
    assert ack_code_of(ack) == "AE" and subjects(http, "IFE") == [], ack


def test_a_number_an_adt_filed_as_own_outlives_the_his_next_a08(both: tuple[Engine, TestClient]) -> None:
    """The HIS's own A04 under ``I39G^^^HIS^MR`` (an undeclared authority) filed under her bare record (ident38: the
    number as sent kept beside her MRN, marked filed-as-own); its next A08 under the bare MRN leaves the number on the
    record, and a man's result under ``I39G^^^HIS^MR`` is refused, not a new record of the number."""
    engine, http = both
    assert ack_code_of(post(http, adt("IGA", "I39G^^^FNXRMYY^MR", "柳^庚", "19611010", "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|I39G")
    assert ack_code_of(post(http, adt("IGB", "I39G^^^HIS^MR", "柳^庚", "19611010", "F"))) == "AA"
    assert ack_code_of(post(http, adt("IGC", "I39G^^^FNXRMYY^MR", "柳^庚", "19611010", "F", event="A08"))) == "AA"
    assert f"{MRN}:HIS|I39G" in tokens(read_patient(http, old["id"]))
    ack = post(http, oru("IGD", "I39G^^^HIS^MR", "李^庚", "19901010", "M", "IGD", app="HIS"))
    assert ack_code_of(ack) == "AE" and subjects(http, "IGD") == [], ack
    assert [p["id"] for p in patients(http, "I39G")] == [old["id"]]
