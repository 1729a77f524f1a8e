"""rv39d: probes of ident39 (``merge.yaml`` ``Patient.identifier`` ``beside``, the filed-as-own mark, PID-21 naming
a man). Real HL7 over ``POST /hl7v2`` into a real store on each backend, read back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.convert.persons import FILED_AS_OWN_EXT
from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import post
from tests.identity39_calls import NNCHN_SYSTEM, engine_and_client, read_patient, tokens
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients

both = engine_and_client("rv39d")


def test_an_a40_keeps_the_merged_records_id_number_on_the_survivor(both: tuple[Engine, TestClient]) -> None:
    """R1 (MRN + ID number) merged into R2 (MRN alone) by an A40 whose PID-3 states R2's MRN alone (MRG-1 R1's MRN):
    HL7 v2.5.1 3.3.40 -- R1's identifiers merge into R2; her ID number, stated by the HIS, must answer on R2."""
    engine, http = both
    nid = _nid("32092319620303002")
    assert ack_code_of(post(http, adt("PCA", f"P39C1^^^FNXRMYY^MR~{nid}^^^^NNCHN", "岳^丙", "19620303", "F"))) == "AA"
    assert ack_code_of(post(http, adt("PCB", "P39C2^^^FNXRMYY^MR", "岳^丙", "19620303", "F"))) == "AA"
    (two,) = patients(http, f"{MRN}|P39C2")
    ack = post(http, merge("PCD", "P39C2^^^FNXRMYY^MR", "岳^丙", "19620303", "F", "P39C1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    assert [p["id"] for p in patients(http, nid)] == [two["id"]]


def test_an_a47_keeps_her_id_number_and_remembered_number_on_the_new_record(both: tuple[Engine, TestClient]) -> None:
    """P39G (MRN, ID number, LIS number remembered) renumbered Q39G by A47 (MRG-1 P39G, PID-3 Q39G): the ID number
    and the remembered number are still hers, on the record that answers Q39G."""
    engine, http = both
    nid = _nid("32092319620707002")
    assert ack_code_of(post(http, adt("PGA", f"P39G^^^FNXRMYY^MR~{nid}^^^^NNCHN", "岳^庚", "19620707", "F"))) == "AA"
    assert ack_code_of(post(http, oru("PGB", "P39G^^^LIS^PI", "岳^庚", "19620707", "F", "PGB"))) == "AA"
    ack = post(http, "MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A47^ADT_A30|PGC|P|2.5.1\r"
               "EVN|A47|20261201121500\rPID|1||Q39G^^^FNXRMYY^MR||岳^庚||19620707|F\rMRG|P39G^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    (new,) = patients(http, f"{MRN}|Q39G")
    assert {f"{NNCHN_SYSTEM}|{nid}", f"{MRN}:LIS|P39G"} <= tokens(new), new["identifier"]


def test_an_a08_taking_a_wrong_id_number_off_is_heard(both: tuple[Engine, TestClient]) -> None:
    engine, http = both
    nid = _nid("32092319620404002")
    assert ack_code_of(post(http, adt("PDA", f"P39D1^^^FNXRMYY^MR~{nid}^^^^NNCHN", "岳^丁", "19620404", "F"))) == "AA"
    (sister,) = patients(http, f"{MRN}|P39D1")
    assert ack_code_of(post(http, adt("PDB", f"P39D2^^^FNXRMYY^MR~{nid}^^^^NNCHN", "岳^戊", "19620404", "F"))) == "AA"
    (twin,) = patients(http, f"{MRN}|P39D2")
    assert not engine.identity.same_person(twin["id"], sister["id"])  # the index does not link them: names differ
    # (idfix39: HL7 v2.5 2.5.3 -- an empty component changes nothing, ``""`` deletes: the A08 stating the MRN alone
    # is a thinner message and keeps the number; the registrar's ``""^^^^NNCHN`` repetition takes it off)
    assert ack_code_of(post(http, adt("PDC", "P39D2^^^FNXRMYY^MR", "岳^戊", "19620404", "F", event="A08"))) == "AA"
    assert {p["id"] for p in patients(http, nid)} == {sister["id"], twin["id"]}
    ack = post(http, adt("PDE", 'P39D2^^^FNXRMYY^MR~""^^^^NNCHN', "岳^戊", "19620404", "F", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    assert [p["id"] for p in patients(http, nid)] == [sister["id"]]
    assert tokens(read_patient(http, twin["id"])) == {f"{MRN}|P39D2"}


@pytest.mark.parametrize("event", ["A31", "A28"])
def test_other_registration_events_keep_the_id_number_and_the_remembered_number(
        both: tuple[Engine, TestClient], event: str) -> None:
    """``beside`` is the registration writer's, not A08's alone: an A31 (update person) or A28 (add person) stating
    the MRN alone leaves the ID number and the number remembered from a LIS result, mark and all."""
    engine, http = both
    n = {"A31": 1, "A28": 2}[event]
    nid = _nid(f"3209231962060{n}002")
    assert ack_code_of(post(http, adt(f"PF{n}A", f"P39F{n}^^^FNXRMYY^MR~{nid}^^^^NNCHN", "岳^己", f"1962060{n}",
                                      "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|P39F{n}")
    assert ack_code_of(post(http, oru(f"PF{n}B", f"P39F{n}^^^LIS^PI", "岳^己", f"1962060{n}", "F",
                                      f"PF{n}B"))) == "AA"
    ack = post(http, adt(f"PF{n}C", f"P39F{n}^^^FNXRMYY^MR", "岳^己", f"1962060{n}", "F", event=event))
    assert ack_code_of(ack) == "AA", ack
    now = read_patient(http, old["id"])
    assert {f"{NNCHN_SYSTEM}|{nid}", f"{MRN}:LIS|P39F{n}"} <= tokens(now), now["identifier"]
    (lis,) = [i for i in now["identifier"] if i.get("system") == f"{MRN}:LIS"]
    assert lis.get("extension") == [{"url": FILED_AS_OWN_EXT, "valueBoolean": True}], lis


def test_a_mark_a_fhir_client_writes_does_not_bind_the_registration(both: tuple[Engine, TestClient]) -> None:
    engine, http = both
    assert ack_code_of(post(http, adt("PEA", "P39E^^^FNXRMYY^MR~OLD1^^^^PI", "岳^戊", "19620505", "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|P39E")
    now = read_patient(http, old["id"])
    body = {k: v for k, v in now.items() if k not in ("meta", "text")}
    body["identifier"] = [dict(i, extension=[{"url": FILED_AS_OWN_EXT, "valueBoolean": True}]) if i.get("value") == "OLD1" else i
                          for i in now["identifier"]]
    assert http.put(f"/fhir/Patient/{old['id']}", json=body).status_code == 200
    assert ack_code_of(post(http, adt("PEB", "P39E^^^FNXRMYY^MR", "岳^戊", "19620505", "F", event="A08"))) == "AA"
    assert tokens(read_patient(http, old["id"])) == {f"{MRN}|P39E"}


def test_a_corrected_id_number_under_another_spelling_of_its_authority_replaces_the_wrong_one(
        both: tuple[Engine, TestClient]) -> None:
    """The registration names the ID number's authority 公安部, the correcting A08 by its OID
    (``&2.16.156.10011.1.3&ISO``): the converter gives every NNCHN entry one system whatever CX-4 says, so the
    corrected number is of the wrong one's ``kind`` and replaces it -- two numbers kept would link two people."""
    engine, http = both
    wrong, right = _nid("32092319620808002"), _nid("32092319620808024")
    assert ack_code_of(post(http, adt("PHA", f"P39H^^^FNXRMYY^MR~{wrong}^^^公安部^NNCHN", "岳^辛", "19620808",
                                      "F"))) == "AA"
    ack = post(http, adt("PHB", f"P39H^^^FNXRMYY^MR~{right}^^^&2.16.156.10011.1.3&ISO^NNCHN", "岳^辛", "19620808",
                         "F", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    (now,) = patients(http, f"{MRN}|P39H")
    assert tokens(now) == {f"{MRN}|P39H", f"{NNCHN_SYSTEM}|{right}"}, now["identifier"]
    assert patients(http, wrong) == []


def test_a_thin_a08_does_not_leave_a_sex_contradicting_the_kept_id_number(both: tuple[Engine, TestClient]) -> None:
    """Registered M with a male ID number; the registrar's A08 states the MRN alone and sex F. The ID number kept
    by ``beside`` and the stated sex cannot both stand: the A08 is refused at PID-8 (as with the number stated) or
    the number does not stay on a record it contradicts."""
    engine, http = both
    nid = _nid("32092319620909001")  # 17th digit odd: male
    assert ack_code_of(post(http, adt("PIA", f"P39I^^^FNXRMYY^MR~{nid}^^^^NNCHN", "岳^壬", "19620909", "M"))) == "AA"
    full = post(http, adt("PIX", f"P39I^^^FNXRMYY^MR~{nid}^^^^NNCHN", "岳^壬", "19620909", "F", event="A08"))
    assert ack_code_of(full) == "AE", full  # stated with the number: refused, PID-8
    ack = post(http, adt("PIB", "P39I^^^FNXRMYY^MR", "岳^壬", "19620909", "F", event="A08"))
    (now,) = patients(http, f"{MRN}|P39I")
    assert ack_code_of(ack) == "AE" or not (now.get("gender") == "female" and f"{NNCHN_SYSTEM}|{nid}" in tokens(now)), (
        ack, now)


# --- PID-21 naming a man (ident39 ``demographics.a_man``), over MLLP -----------------------------------------------

from tests.test_lead20_visitlast_newborn import _result  # noqa: E402
from tests.test_placer19_two_patients import nid  # noqa: E402
from tests.test_recognition_policy_e2e import msh, ts  # noqa: E402
from tests.test_visit20_reused_numbers import accepted, engine, fhir, pv1, read, send  # noqa: E402, F401


def _admitted(control: str, mrn: str, number: str | None, name: str, sex: str) -> str:
    when = ts(10)
    ids = (f"{number}^^^公安部^NNCHN~" if number else "") + f"{mrn}^^^HOSPA^MR"
    return (msh("HOSPA", "HIS", "ADT^A01^ADT_A01", when, control) + "EVN|A01|" + when + "\n"
            + f"PID|1||{ids}||{name}||19700101|{sex}\n" + pv1("V100", when))


def test_a_man_of_stated_sex_named_by_his_mrn_in_pid21_is_not_the_mother(engine: Engine, mllp: int,
                                                                         fhir: TestClient) -> None:
    """``a_man``'s first branch (PID-8 M stated, no ID number) by MRN -- ident39's tests cover only the ID number's
    digit: the newborn's result under his visit is refused at PV1-19, nothing filed (it passed before ident39)."""
    accepted(mllp, _admitted("R1", "MRN-R", None, "孙^七", "M"))
    code, errs = send(mllp, _result("R1N", ts(2)[:8], "MRN-R^^^HOSPA^MR", ts(1)))
    assert code == "AE" and any(e[2] == "PV1^1^19" for e in errs), (code, errs)
    assert read(fhir, "DiagnosticReport") == []


def test_a_patient_of_unknown_sex_named_in_pid21_is_not_taken_for_the_mother(engine: Engine, mllp: int,
                                                                             fhir: TestClient) -> None:
    accepted(mllp, _admitted("R1", "MRN-R", None, "孙^七", "U"))
    code, errs = send(mllp, _result("R1N", ts(2)[:8], "MRN-R^^^HOSPA^MR", ts(1)))
    assert code == "AE", (code, errs)
    assert read(fhir, "DiagnosticReport") == []


def test_a_mistyped_mothers_id_number_in_pid21_is_named_in_the_answer(engine: Engine, mllp: int,
                                                                      fhir: TestClient) -> None:
    accepted(mllp, _admitted("R1", "MRN-R", nid(6), "赵^六", "U"))
    bad = nid(6)[:-1] + ("0" if nid(6)[-1] != "0" else "1")
    code, errs = send(mllp, _result("R1N", ts(2)[:8], f"{bad}^^^公安部^NNCHN", ts(1)))
    assert any(e[2].startswith("PID^1^21") for e in errs), (code, errs)


def test_the_his_corrected_id_number_replaces_one_stored_under_another_system(both: tuple[Engine, TestClient]) -> None:
    """A FHIR client (a regional platform) adds her ID number under the GB OID system, mistyped; the HIS's A08 then
    states her MRN and her right ID number: the HIS's NNCHN states her ID number, so the wrong one goes."""
    engine, http = both
    wrong, right = _nid("32092319621010002"), _nid("32092319621010024")
    assert ack_code_of(post(http, adt("PJA", "P39J^^^FNXRMYY^MR", "岳^癸", "19621010", "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|P39J")
    now = read_patient(http, old["id"])
    body = {k: v for k, v in now.items() if k not in ("meta", "text")}
    body["identifier"] = [*now["identifier"], {"use": "official", "type": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]},
        "system": "urn:oid:2.16.156.10011.1.3", "value": wrong}]
    assert http.put(f"/fhir/Patient/{old['id']}", json=body).status_code == 200
    ack = post(http, adt("PJB", f"P39J^^^FNXRMYY^MR~{right}^^^^NNCHN", "岳^癸", "19621010", "F", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    assert tokens(read_patient(http, old["id"])) == {f"{MRN}|P39J", f"{NNCHN_SYSTEM}|{right}"}
    assert patients(http, wrong) == []

