"""ident38: a returning patient whose sender writes an undeclared authority in CX-4 keeps ONE record.

A deployment whose HIS always wrote ``123^^^HIS^MR`` holds records an earlier release keyed by the bare
number (it dropped CX-4; what it stored is what this one stores for ``123^^^<institution>^MR``). Keyed
apart now, each returning patient's next message made a second record (rvidentity32 HIGH 1). Filed under
the institution's own record when that record is positively the PID's person (``persons._same_person``),
with an ERR W at PID-3 naming the authority and a ``filed_as_own`` count in ``/admin/fidelity``; never
when the record is someone else's, or not positively the same person. Real HL7 over ``POST /hl7v2`` (one
batch too) into a real store on each backend, read back over ``/fhir`` and ``/admin/fidelity``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients, subjects

both = engine_and_client("i38")


def _fidelity(engine: Engine, http: TestClient) -> dict:
    ops = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}
    r = http.get("/admin/fidelity", params={"institution": "FNXRMYY"}, headers=ops)
    assert r.status_code == 200, r.text
    return r.json()["institutions"].get("FNXRMYY", {})


def _tokens(patient: dict) -> set[str]:
    return {f"{i.get('system')}|{i.get('value')}" for i in patient.get("identifier", ())}


def test_the_returning_patient_is_filed_under_her_record_with_a_warning_counted(
        both: tuple[Engine, TestClient]) -> None:
    """Her record under the bare MRN; her HIS's A04 and her LIS's result under ``^^^HIS^MR``: both AA with one
    ERR W at PID-3 naming 'HIS' (not the number), filed under her record, which keeps its MRN and now carries
    the number as sent too; counted twice under ``filed_as_own``/HIS, the record listed for the operator."""
    engine, http = both
    assert ack_code_of(post(http, adt("I1A", "I38A^^^FNXRMYY^MR", "柳^三", "19610303", "F"))) == "AA"
    assert ack_code_of(post(http, oru("I1B", "I38A^^^FNXRMYY^MR", "柳^三", "19610303", "F", "I1GLU"))) == "AA"
    (old,) = patients(http, f"{MRN}|I38A")
    for ack in (post(http, adt("I1C", "I38A^^^HIS^MR", "柳^三", "19610303", "F")),
                post(http, oru("I1D", "I38A^^^HIS^MR", "柳^三", "19610303", "F", "I1GLU"))):
        assert ack_code_of(ack) == "AA", ack
        (err,) = err_lines(ack)
        assert "|PID^1^3|" in err and "|W|" in err and "'HIS'" in err and "mrn_authorities" in err, err
        assert "I38A" not in err, err
    assert [p["id"] for p in patients(http, "I38A")] == [old["id"]]
    assert set(subjects(http, "I1GLU")) == {f"Patient/{old['id']}"}
    now = http.get(f"/fhir/Patient/{old['id']}").json()
    assert {f"{MRN}|I38A", f"{MRN}:HIS|I38A"} <= _tokens(now), now["identifier"]
    fid = _fidelity(engine, http)
    assert fid["filed_as_own"]["HIS"] == 2 and "HIS" not in fid["kept_apart"], fid
    rows = [i for i in fid["items"] if i.get("count_as") == "filed_as_own"]
    assert rows and all(i["records"] == [f"Patient/{old['id']}"] for i in rows), rows
    assert "mrn_authorities" in fid["advice"]["filed_as_own"]["HIS"]


@pytest.mark.parametrize("n, name, birth, sex", [
    (1, "柳^四", "19700404", "F"),  # another birth date: not positively her
    (2, "周^四", "19610404", "F"),  # another name
    (3, "柳^四", "", "F"),  # no birth date: nothing positive
])
def test_a_record_not_positively_the_persons_is_never_joined(
        both: tuple[Engine, TestClient], n: int, name: str, birth: str, sex: str) -> None:
    """The bare record's person and the PID's differ in one field, or the PID states no birth date: the number
    stays keyed apart (identity32's reading, its kept-apart W), two records, each its own results."""
    engine, http = both
    number = f"I38B{n}"
    assert ack_code_of(post(http, oru(f"I2A{n}", f"{number}^^^FNXRMYY^MR", "柳^四", "19610404", "F",
                                      f"I2O{n}"))) == "AA"
    (old,) = patients(http, f"{MRN}|{number}")
    ack = post(http, oru(f"I2B{n}", f"{number}^^^HIS^MR", name, birth, sex, f"I2N{n}"))
    assert ack_code_of(ack) == "AA", ack
    (err,) = err_lines(ack)
    assert "kept apart" in err and "'HIS'" in err, err
    (apart,) = patients(http, f"{MRN}:HIS|{number}")
    assert apart["id"] != old["id"]
    assert subjects(http, f"I2O{n}") == [f"Patient/{old['id']}"]
    assert subjects(http, f"I2N{n}") == [f"Patient/{apart['id']}"]
    assert f"{MRN}:HIS|{number}" not in _tokens(http.get(f"/fhir/Patient/{old['id']}").json())


def test_another_id_number_on_the_bare_record_is_never_joined(both: tuple[Engine, TestClient]) -> None:
    """Name, sex and birth date agree but the bare record carries another ID number than the PID's: two
    people. The PID's number keys her record (``nid|``), never the other's record of the value."""
    engine, http = both
    his_nid, her_nid = _nid("32092319610505002"), _nid("32092319610505028")
    assert his_nid != her_nid
    assert ack_code_of(post(http, adt("I3A", f"I38C^^^FNXRMYY^MR~{his_nid}^^^^NNCHN", "柳^五", "19610505",
                                      "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|I38C")
    assert ack_code_of(post(http, oru("I3B", f"I38C^^^HIS^MR~{her_nid}^^^^NNCHN", "柳^五", "19610505", "F",
                                      "I3GLU"))) == "AA"
    assert f"Patient/{old['id']}" not in subjects(http, "I3GLU")
    assert len(subjects(http, "I3GLU")) == 1


def test_a_lis_number_of_another_person_stays_apart_her_own_his_number_is_filed_under_her_record(
        both: tuple[Engine, TestClient]) -> None:
    """The LIS's number of the value is another person's (name, sex, birth date): kept apart as identity32
    keeps it; her own HIS's ``^^^HIS^MR`` of the same value, agreeing: filed under her record."""
    engine, http = both
    assert ack_code_of(post(http, adt("I4A", "I38D^^^FNXRMYY^MR", "柳^六", "19610606", "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|I38D")
    assert ack_code_of(post(http, oru("I4B", "I38D^^^LIS^PI", "李^六", "19900606", "M", "I4LIS"))) == "AA"
    (lis,) = patients(http, f"{MRN}:LIS|I38D")
    assert lis["id"] != old["id"] and subjects(http, "I4LIS") == [f"Patient/{lis['id']}"]
    assert ack_code_of(post(http, oru("I4C", "I38D^^^HIS^MR", "柳^六", "19610606", "F", "I4HIS"))) == "AA"
    assert subjects(http, "I4HIS") == [f"Patient/{old['id']}"]


def test_in_one_batch_the_registration_then_the_returning_message(both: tuple[Engine, TestClient]) -> None:
    """A batch: her A04 under the bare MRN (no record stored before), then her result under ``^^^HIS^MR``: the
    result is filed under the record the A04 writes (the record as the batch leaves it), one record."""
    engine, http = both
    body = ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r"
            + adt("I5A", "I38E^^^FNXRMYY^MR", "柳^七", "19610707", "F")
            + oru("I5B", "I38E^^^HIS^MR", "柳^七", "19610707", "F", "I5GLU")
            + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AA|I5A" in ack and b"MSA|AA|I5B" in ack, ack
    (old,) = patients(http, "I38E")
    assert subjects(http, "I5GLU") == [f"Patient/{old['id']}"]


def test_a_record_of_the_number_as_sent_that_exists_stays_the_one_filed_to(both: tuple[Engine, TestClient]) -> None:
    """The split made before this release (the ``auth|`` record stored, then the bare one): the messages go on
    to the record of the number as sent -- two records an operator links at the desk, not a third move."""
    engine, http = both
    assert ack_code_of(post(http, oru("I6A", "I38F^^^HIS^MR", "柳^八", "19610808", "F", "I6A"))) == "AA"
    (apart,) = patients(http, f"{MRN}:HIS|I38F")
    assert ack_code_of(post(http, oru("I6B", "I38F^^^FNXRMYY^MR", "柳^八", "19610808", "F", "I6B"))) == "AA"
    ack = post(http, oru("I6C", "I38F^^^HIS^MR", "柳^八", "19610808", "F", "I6C"))
    assert ack_code_of(ack) == "AA", ack
    assert subjects(http, "I6C") == [f"Patient/{apart['id']}"]


def test_another_member_institutions_number_is_never_filed_under_the_senders_record(
        both: tuple[Engine, TestClient]) -> None:
    """CX-4 naming another member (FNZYY): that institution's number, never the sender's record of the value,
    whoever the person."""
    engine, http = both
    assert ack_code_of(post(http, adt("I7A", "I38G^^^FNXRMYY^MR", "柳^九", "19610909", "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|I38G")
    assert ack_code_of(post(http, oru("I7B", "I38G^^^FNZYY^MR", "柳^九", "19610909", "F", "I7GLU"))) == "AA"
    assert f"Patient/{old['id']}" not in subjects(http, "I7GLU")
