"""Review probes of visit33's take-over (thirty-third round, rvvisit33): an admission that takes over a
lab's placeholder visit re-files a stay under another patient. Real HL7 bytes over MLLP (or the ingest
batch and replay), FHIR reads over HTTP, the real store (SQLite and mongomock: the ``engine`` fixture of
``test_visit20_reused_numbers``)."""

# ruff: noqa: F811 -- the fixtures imported from test_visit20_reused_numbers are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.module_store import Names, names  # noqa: F401 -- a fixture
from tests.shared_worlds45d import mine, own_read, visit_accepted, visit_send
from tests.shared_worlds45d import visit_eng as engine  # noqa: F401 -- a fixture (once a module and backend)
from tests.shared_worlds45d import visit_fhir as fhir  # noqa: F401 -- a fixture (once a module and backend)
from tests.shared_worlds45d import visit_mllp as mllp  # noqa: F401 -- a fixture (once a module and backend)
from tests.test_recognition_policy_e2e import msh, ts
from tests.test_visfix33_takeover import _lis_id
from tests.test_visit20_reused_numbers import adt, one_visit_numbered, patient_id, pv1, read
from tests.test_visit33_takeover import ADMITTED, _lab, _refused_at_the_visit_number, _stays

# each test sends under names of its own (tests.module_store.Names, through shared_worlds45d.mine: its LIS and HIS
# record numbers -- L-77, MRN-V1, the namesake's MRN-C --, visit, order and control numbers) on the module's engine
# and reads back its own visit, records and results: the tests had each opened an engine. What the take-over reads
# (the placeholder's identifiers and who else holds them, the ADTs naming the visit, the index's links and merges,
# the demographics of the two records) is each test's own: the county's namesakes (李一) are told apart by number.


@pytest.mark.parametrize("who", ["王^二||19800101|M", "王^二|||M"], ids=["birth-date", "age-only"])
def test_another_man_under_the_visit_number_is_not_taken_over(
        engine: Engine, mllp: int, fhir: TestClient, names: Names, who: str) -> None:
    """Two men, names (and birth dates) that differ: the LIS's 王二 is not the HIS's 李一. The person
    guard's ``contradicts_all`` asks name AND sex, so only the index's ``known_apart`` stands between
    the two here -- a stay re-filed under the wrong man if it does not."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(3), who=who))
    before = one_visit_numbered(fhir, names.number("V100"))
    _refused_at_the_visit_number(mllp, adt("A01", "A01-1", ADMITTED, "V100", ts(2)), names)
    _stays(fhir, before, names)


def test_a_nameless_lab_patient_of_another_sex_is_not_taken_over(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """The LIS states only sex (F) and a birth date that differs (1990): a woman's visit is not the
    HIS's man's admission."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(3), who="||19900101|F"))
    before = one_visit_numbered(fhir, names.number("V100"))
    _refused_at_the_visit_number(mllp, adt("A01", "A01-1", ADMITTED, "V100", ts(2)), names)
    _stays(fhir, before, names)


def test_a_second_admission_of_another_person_after_the_take_over_is_refused(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """After the take-over the visit is the HIS record's (an MRN of the institution): another HIS
    patient's A01 under the number is a reused number, refused."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(4)))
    visit_accepted(mllp, names, adt("A01", "A01-1", ADMITTED, "V100", ts(3)))
    taken = one_visit_numbered(fhir, names.number("V100"))
    _refused_at_the_visit_number(mllp, adt("A01", "A01-2", ("MRN-V2", None, "李^一"), "V100", ts(2)), names)
    _stays(fhir, taken, names)


def test_the_refused_admission_of_a_batch_takes_over_when_replayed(engine: Engine, fhir: TestClient, names: Names) -> None:
    """visit33 refused the A01 batched after the LIS result "for the operator to replay", and the replay
    had to take the visit over. Since identity34 the batch takes it over at once (as singly); a replay of
    the filed A01 changes nothing."""
    first = mine(names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(3)))
    second = mine(names, adt("A01", "A01-1", ADMITTED, "V100", ts(2)))
    outcomes = engine.ingestor.process([(first, "file", "file:1"), (second, "file", "file:2")])
    assert b"MSA|AA|" in outcomes[1].ack, outcomes[1].ack
    again = engine.ingestor.replay(message_id("HOSPA", names.control("A01-1")), actor="operator")
    assert again is not None and b"MSA|AA|" in again.ack, again.ack if again else None
    assert one_visit_numbered(fhir, names.number("V100"))["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V1'))}"


def test_a_batch_of_two_admissions_for_two_people_takes_over_once(engine: Engine, mllp: int,
                                                                     fhir: TestClient, names: Names) -> None:
    """Two A01s of two HIS patients under the lab's visit number in one batch: at most the first takes
    over; the second is refused at PV1-19 and the visit is the first's."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(4)))
    one = mine(names, adt("A01", "A01-1", ADMITTED, "V100", ts(3)))
    two = mine(names, adt("A01", "A01-2", ("MRN-V2", None, "李^一"), "V100", ts(2)))
    outcomes = engine.ingestor.process([(one, "file", "file:1"), (two, "file", "file:2")])
    assert b"MSA|AE|" in outcomes[1].ack, [o.ack for o in outcomes]
    subject = one_visit_numbered(fhir, names.number("V100"))["subject"]["reference"]
    assert subject in (f"Patient/{_lis_id(fhir, names=names)}", f"Patient/{patient_id(fhir, names.number('MRN-V1'))}")


def test_the_lab_s_next_result_of_the_taken_over_stay_is_filed(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """Before visit33 the A01 was refused and the LIS's results flowed; now the A01 is filed and each
    later LIS result under L-77 and V100 -- the very pair the take-over judged one stay -- is refused.
    The first results name (L-77, V100) and are kept: a later one naming the same pair is no less right."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(3)))
    visit_accepted(mllp, names, adt("A01", "A01-1", ADMITTED, "V100", ts(2)))
    code, errs = visit_send(mllp, names, _lab("ORU-L2", "L-77^^^LIS^PI", ts(1)))
    assert code == "AA", errs
    assert len(own_read(engine, fhir, names, "Observation")) == 2


def test_a_lis_update_of_its_placeholder_does_not_make_the_visit_the_his_s(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """``_no_owner_named`` reads the ADT family, not the application: the LIS's A08 restating its own
    placeholder under the visit number makes the visit "the HIS's own", and the HIS can never admit."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(4)))
    when = ts(3)
    visit_accepted(mllp, names, msh("HOSPA", "LIS", "ADT^A08^ADT_A01", when, "A08-L") + f"EVN|A08|{when}\n"
             + "PID|1||L-77^^^LIS^PI||李^一||19700101|M\n" + pv1("V100", when))
    visit_accepted(mllp, names, adt("A01", "A01-1", ADMITTED, "V100", ts(2)))
    assert one_visit_numbered(fhir, names.number("V100"))["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V1'))}"


def test_a_cancelled_admission_leaves_the_visit_where_it_was_filed(engine: Engine, mllp: int,
                                                                   fhir: TestClient, names: Names) -> None:
    """An A11 (cancel admit) of the admitted record after the take-over: accepted, the visit stays the
    admitted record's (what the A11 names), the lab's report keeps its subject."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(4)))
    visit_accepted(mllp, names, adt("A01", "A01-1", ADMITTED, "V100", ts(3)))
    code, errs = visit_send(mllp, names, adt("A11", "A11-1", ADMITTED, "V100", ts(2), structure="ADT_A09"))
    visit = one_visit_numbered(fhir, names.number("V100"))
    assert code == "AA", errs
    assert visit["status"] == "cancelled", visit["status"]
    assert visit["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V1'))}"
    (report,) = own_read(engine, fhir, names, "DiagnosticReport")
    assert report["subject"]["reference"] == f"Patient/{_lis_id(fhir, names=names)}"


def test_the_placeholder_s_everything_does_not_carry_the_admitted_person_s_diagnoses(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """The lab record's $everything after the take-over: its report and result (its compartment), the
    visit they name as an include (now the admitted person's), and not the admitted person's diagnosis
    (Condition) nor his record."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(3)))
    visit_accepted(mllp, names, adt("A01", "A01-1", ADMITTED, "V100", ts(2), extra="DG1|1||J18.9^肺炎^I10|||A\n"))
    got = fhir.get(f"/fhir/Patient/{_lis_id(fhir, names=names)}/$everything")
    assert got.status_code == 200, got.text
    entries = [e["resource"] for e in got.json().get("entry") or ()]
    kinds = {r["resourceType"] for r in entries}
    assert {"Observation", "DiagnosticReport", "Encounter"} <= kinds and "Condition" not in kinds, kinds
    admitted = patient_id(fhir, names.number("MRN-V1"))
    assert not [r for r in entries if r["resourceType"] == "Patient" and r["id"] == admitted]


def _namesake_lab_then_c(mllp: int, fhir: TestClient, names: Names) -> tuple[str, str, dict]:
    """Namesakes, as a county has many: the LIS's result names its patient 李一, male, by number and
    no birth date (the LIS sends an age: ``contradicts_all``'s note), under V100; the HIS's own record
    of another 李一 (MRN-C, male, born 1950) under another visit. The admitted 李一 (MRN-V1) was born
    in 1970."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(5), who="李^一|||M"))
    when = ts(5, 9)
    visit_accepted(mllp, names, msh("HOSPA", "HIS", "ADT^A01^ADT_A01", when, "A01-C") + f"EVN|A01|{when}\n"
             + "PID|1||MRN-C^^^HOSPA^MR||李^一||19500101|M\n" + pv1("V900", when))
    return _lis_id(fhir, names=names), patient_id(fhir, names.number("MRN-C")), one_visit_numbered(
        fhir, names.number("V100"))


def test_a_placeholder_the_his_merged_into_another_record_is_not_taken_over(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """The HIS's A40 says the LIS's record L-77 IS its 李一 (MRN-C): the stay under V100 is MRN-C's.
    The namesake MRN-V1's admission under V100 is then a reused number, not the visit's owner
    admitting the lab's stand-in."""
    lis, c, before = _namesake_lab_then_c(mllp, fhir, names)
    a40 = (msh("HOSPA", "HIS", "ADT^A40^ADT_A39", ts(4), "A40-1") + f"EVN|A40|{ts(4)}\n"
           + "PID|1||MRN-C^^^HOSPA^MR||李^一||19500101|M\n" + "MRG|L-77^^^LIS^PI\n")
    visit_accepted(mllp, names, a40)
    before = one_visit_numbered(fhir, names.number("V100"))
    assert before["subject"]["reference"] in (f"Patient/{lis}", f"Patient/{c}"), before["subject"]
    code, errs = visit_send(mllp, names, adt("A01", "A01-1", ADMITTED, "V100", ts(2)))
    after = one_visit_numbered(fhir, names.number("V100"))
    assert code == "AE" and after["subject"] == before["subject"], (code, errs, after["subject"], lis, c)


def test_a_placeholder_an_operator_linked_to_another_record_is_not_taken_over(
        engine: Engine, mllp: int, fhir: TestClient, names: Names, client_token) -> None:
    """The desk's ``$link``: the LIS's record L-77 is 李一 (MRN-C). The namesake MRN-V1's admission under V100 must not
    take MRN-C's stay."""
    lis, c, before = _namesake_lab_then_c(mllp, fhir, names)
    desk = TestClient(fhir.app)
    desk.headers["Authorization"] = f"Bearer {client_token(engine, 'system/*.cruds', 'desk')}"
    r = desk.post("/fhir/Patient/$link", json={"resourceType": "Parameters", "parameter": [
        {"name": "source", "valueReference": {"reference": f"Patient/{lis}"}},
        {"name": "target", "valueReference": {"reference": f"Patient/{c}"}},
        {"name": "reason", "valueString": "checked at the desk"}]})
    assert r.status_code == 200, r.text
    assert c in engine.identity.person_compartment(lis)
    _refused_at_the_visit_number(mllp, adt("A01", "A01-1", ADMITTED, "V100", ts(2)), names)
    _stays(fhir, before, names)


def test_a_placeholder_whose_number_the_his_registered_for_another_record_is_not_taken_over(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """The HIS's A04 of 李一 (MRN-C) names both his MRN and the LIS's L-77 (PID-3 repeats): the LIS's number is
    MRN-C's, so the stay under V100 is his. The namesake MRN-V1's admission under V100 does not take it."""
    lis, c, before = _namesake_lab_then_c(mllp, fhir, names)
    when = ts(4)
    visit_accepted(mllp, names, msh("HOSPA", "HIS", "ADT^A04^ADT_A01", when, "A04-C") + f"EVN|A04|{when}\n"
             + "PID|1||MRN-C^^^HOSPA^MR~L-77^^^LIS^PI||李^一||19500101|M\n" + pv1("V901", when, "O"))
    before = one_visit_numbered(fhir, names.number("V100"))
    # the store says whose L-77 is: MRN-C's record carries it beside his MRN
    holders = {p["id"] for p in read(fhir, "Patient", identifier="urn:huren:mrn:HOSPA:LIS|" + names.number("L-77"))}
    assert holders == {lis, c}, holders
    code, errs = visit_send(mllp, names, adt("A01", "A01-1", ADMITTED, "V100", ts(2)))
    after = one_visit_numbered(fhir, names.number("V100"))
    assert code == "AE" and after["subject"] == before["subject"], (code, errs, after["subject"], lis, c)


def test_a_visit_number_the_lis_assigned_is_not_the_his_s_to_take(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """PV1-19 ``V100^^^LIS``: the LIS states the number is its own (CX-4), not the HIS's visit number
    the take-over assumes. The HIS's V100 admission does not take the LIS's visit."""
    text = _lab("ORU-L1", "L-77^^^LIS^PI", ts(3)).replace("||V100|", "||V100^^^LIS|")
    assert "V100^^^LIS" in text
    visit_accepted(mllp, names, text)
    before = one_visit_numbered(fhir, names.number("V100"))
    code, errs = visit_send(mllp, names, adt("A01", "A01-1", ADMITTED, "V100", ts(2)))
    after = one_visit_numbered(fhir, names.number("V100"))
    assert [i.get("system") for i in before.get("identifier") or ()] == ["urn:huren:id:LIS"]
    assert code == "AE" and after["subject"] == before["subject"], (code, errs)


def test_the_refused_later_result_files_once_the_desk_links_the_two_records(
        engine: Engine, mllp: int, fhir: TestClient, names: Names, client_token) -> None:
    """The way out of the MED refusal above -- the desk links the LIS's record to the admitted one
    (``$link``) -- is no longer needed for the stay's next result (visfix33: filed at once, the visit
    having been taken from that record); after the link the results go on being filed under the stay,
    now as one person's."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(3)))
    visit_accepted(mllp, names, adt("A01", "A01-1", ADMITTED, "V100", ts(2)))
    code, errs = visit_send(mllp, names, _lab("ORU-L2", "L-77^^^LIS^PI", ts(1, 8)))
    assert code == "AA", errs
    desk = TestClient(fhir.app)
    desk.headers["Authorization"] = f"Bearer {client_token(engine, 'system/*.cruds', 'desk')}"
    r = desk.post("/fhir/Patient/$link", json={"resourceType": "Parameters", "parameter": [
        {"name": "source", "valueReference": {"reference": f"Patient/{_lis_id(fhir, names=names)}"}},
        {"name": "target", "valueReference": {"reference": f"Patient/{patient_id(fhir, names.number('MRN-V1'))}"}},
        {"name": "reason", "valueString": "checked at the desk"}]})
    assert r.status_code == 200, r.text
    code, errs = visit_send(mllp, names, _lab("ORU-L3", "L-77^^^LIS^PI", ts(1, 9)))
    assert code == "AA", errs
    visit = one_visit_numbered(fhir, names.number("V100"))
    results = own_read(engine, fhir, names, "Observation")
    assert len(results) == 3 and {o["encounter"]["reference"] for o in results} == {f"Encounter/{visit['id']}"}
