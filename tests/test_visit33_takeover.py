"""The HIS's admission taking over a lab's placeholder visit (thirty-third round, visit33).

Results before the admission: the LIS names its patient by its own number (PID-3 ``L-77^^^LIS^PI``,
kept apart from the HIS's MRNs since identity32) under the HIS visit number, and a thin Encounter is
written; the HIS's A01 then admits its own record under the number and takes the visit over
(``adapters/convert/takeover.py`` decides, ``MergeRules._another_person`` files). The refusals: a
stand-in under the institution's own MRN (rvwriter31's two HIS records), under another member's
number, of a registered record, of another person (name and sex), a visit an ADT ever named, an update
instead of a registration, one batch. Real HL7 bytes over MLLP, FHIR reads over HTTP, the real store
(SQLite and mongomock: the ``engine`` fixture of ``test_visit20_reused_numbers``).
"""

# ruff: noqa: F811 -- the fixtures imported from test_visit20_reused_numbers are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import Names, names  # noqa: F401 -- a fixture
from tests.shared_worlds45d import mine, own_read, visit_accepted, visit_send
from tests.shared_worlds45d import visit_eng as engine  # noqa: F401 -- a fixture (once a module and backend)
from tests.shared_worlds45d import visit_fhir as fhir  # noqa: F401 -- a fixture (once a module and backend)
from tests.shared_worlds45d import visit_mllp as mllp  # noqa: F401 -- a fixture (once a module and backend)
from tests.test_recognition_policy_e2e import msh, ts
from tests.test_visit20_reused_numbers import adt, one_visit_numbered, patient_id, pv1, read, send

# each test sends under names of its own (tests.module_store.Names, through shared_worlds45d.mine: its LIS and HIS
# record numbers, visit numbers, order numbers and control IDs) on the module's engine, and reads back its own visit,
# records and results: the tests had each opened an engine. What decides a take-over (the placeholder's identifiers,
# the messages and ADTs naming it or the visit, the two records' demographics, the index's links) is the test's own.

ADMITTED = ("MRN-V1", None, "李^一")  # MRN-V1^^^HOSPA^MR, 李一, male, born 1970-01-01


def _lab(control: str, number: str, when: str, who: str = "李^一||19700101|M", visit: str = "V100") -> str:
    """A LIS result under the HIS visit number naming the patient by ``number`` (a PID-3 CX as sent)."""
    return (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, control) + f"PID|1||{number}||{who}\n"
            + pv1(visit, when) + f"ORC|RE|B-{control}^HIS|F-{control}^LIS\n"
            + f"OBR|1|B-{control}^HIS|F-{control}^LIS|58410-2^CBC^LN|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{when}\n")


def _refused_at_the_visit_number(mllp: int, text: str, names: Names | None = None) -> None:
    """AE, ERR 205 at PV1-19: ``text`` sent as written, or under ``names``."""
    code, errs = send(mllp, text) if names is None else visit_send(mllp, names, text)
    assert code == "AE", errs
    (err,) = [e for e in errs if e[4] == "E"]
    assert err[2] == "PV1^1^19" and err[3].startswith("205^"), err


def _stays(fhir: TestClient, before: dict, names: Names | None = None) -> None:
    visit = one_visit_numbered(fhir, "V100" if names is None else names.number("V100"))
    assert visit["subject"] == before["subject"] and visit["meta"]["versionId"] == before["meta"]["versionId"]


def test_the_admission_takes_the_lab_placeholder_over(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """The visit is filed under the admitted record (version 2; version 1 keeps the lab's record); the
    placeholder keeps its number and no link; the report and result keep naming what the LIS stated."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(3)))
    (lis,) = read(fhir, "Patient", identifier=names.number("L-77"))
    placeholder = one_visit_numbered(fhir, names.number("V100"))
    assert placeholder["subject"]["reference"] == f"Patient/{lis['id']}"

    visit_accepted(mllp, names, adt("A01", "A01-1", ADMITTED, "V100", ts(2)))
    visit = one_visit_numbered(fhir, names.number("V100"))
    assert visit["id"] == placeholder["id"] and visit["meta"]["versionId"] == "2"
    assert visit["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V1'))}"
    assert visit["class"]["code"] == "IMP"
    first = fhir.get(f"/fhir/Encounter/{visit['id']}/_history/1")
    assert first.status_code == 200 and first.json()["subject"]["reference"] == f"Patient/{lis['id']}"
    (still,) = read(fhir, "Patient", identifier=names.number("L-77"))
    assert still["identifier"] == lis["identifier"] and not still.get("link")
    assert [i["system"] for i in still["identifier"]] == ["urn:huren:mrn:HOSPA:LIS"]
    (report,) = own_read(engine, fhir, names, "DiagnosticReport")
    (result,) = own_read(engine, fhir, names, "Observation")
    for resource in (report, result):
        assert resource["subject"]["reference"] == f"Patient/{lis['id']}"
        assert resource["encounter"]["reference"] == f"Encounter/{visit['id']}"
    # the admission's own update is the visit's owner speaking again
    visit_accepted(mllp, names, adt("A08", "A08-1", ADMITTED, "V100", ts(1)))
    assert one_visit_numbered(fhir, names.number("V100"))["subject"] == visit["subject"]


def test_an_outpatient_registration_takes_it_over_too(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(3)))
    visit_accepted(mllp, names, adt("A04", "A04-1", ADMITTED, "V100", ts(2)))
    assert one_visit_numbered(fhir, names.number("V100"))["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V1'))}"


def test_a_stand_in_under_the_institutions_own_mrn_is_not_taken_over(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """No CX-4 (or the institution's own): the number is an MRN of the institution -- another HIS
    record, whose visit another record's admission must not take (rvwriter31 MED)."""
    for n, number in enumerate(("L-77^^^^PI", "L-78^^^HOSPA^MR")):
        visit_accepted(mllp, names, _lab(f"ORU-L{n}", number, ts(3), visit=f"V10{n}"))
        before = one_visit_numbered(fhir, names.number(f"V10{n}"))
        _refused_at_the_visit_number(mllp, adt("A01", f"A01-{n}", ADMITTED, f"V10{n}", ts(2)), names)
        after = one_visit_numbered(fhir, names.number(f"V10{n}"))
        assert after["subject"] == before["subject"] and after["meta"]["versionId"] == "1"


def test_a_stand_in_under_another_member_institutions_number_is_not_taken_over(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """CX-4 naming HOSPB: that institution's record (its MRN system), not a number of this one's LIS."""
    visit_accepted(mllp, names, _lab("ORU-L1", "B-77^^^HOSPB^PI", ts(3)))
    before = one_visit_numbered(fhir, names.number("V100"))
    _refused_at_the_visit_number(mllp, adt("A01", "A01-1", ADMITTED, "V100", ts(2)), names)
    _stays(fhir, before, names)


def test_a_registered_record_is_not_taken_over(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """A registration spoke for the LIS-numbered record (an A04 under another visit): it is a person
    the HIS registered, not a lab's stand-in, and its results' visit is not another's to take."""
    when = ts(4)
    visit_accepted(mllp, names, msh("HOSPA", "HIS", "ADT^A04^ADT_A01", when, "A04-L") + f"EVN|A04|{when}\n"
             + "PID|1||L-77^^^LIS^PI||李^一||19700101|M\n" + pv1("V900", when, "O"))
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(3)))
    before = one_visit_numbered(fhir, names.number("V100"))
    _refused_at_the_visit_number(mllp, adt("A01", "A01-1", ADMITTED, "V100", ts(2)), names)
    _stays(fhir, before, names)


def test_another_person_by_name_and_sex_is_not_taken_over(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """The person guard's reading (``contradicts_all``): the lab's 王二 (female, 1980) is not the HIS's
    李一 (male, 1970) -- one of the two visit numbers is wrong."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(3), who="王^二||19800101|F"))
    before = one_visit_numbered(fhir, names.number("V100"))
    _refused_at_the_visit_number(mllp, adt("A01", "A01-1", ADMITTED, "V100", ts(2)), names)
    _stays(fhir, before, names)


def test_a_visit_an_adt_named_is_not_a_stand_in(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """An ADT (here an update, which registers nobody) stated the visit under the LIS-numbered record:
    the HIS's own statement of the visit, so another record's admission under it is a reused number."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(4)))
    when = ts(3)
    visit_accepted(mllp, names, msh("HOSPA", "HIS", "ADT^A08^ADT_A01", when, "A08-L") + f"EVN|A08|{when}\n"
             + "PID|1||L-77^^^LIS^PI||李^一||19700101|M\n" + pv1("V100", when))
    before = one_visit_numbered(fhir, names.number("V100"))
    _refused_at_the_visit_number(mllp, adt("A01", "A01-1", ADMITTED, "V100", ts(2)), names)
    _stays(fhir, before, names)


def test_an_update_does_not_take_over(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """Only a registration (A01/A04/A05) admits a patient under the number; an A08 of another record
    over the lab's visit is refused as before."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(3)))
    before = one_visit_numbered(fhir, names.number("V100"))
    _refused_at_the_visit_number(mllp, adt("A08", "A08-1", ADMITTED, "V100", ts(2)), names)
    _stays(fhir, before, names)


def test_a_second_lab_patient_after_the_take_over_is_refused(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """After the take-over the visit is the admitted record's: a lab message naming another record under
    the number is refused, as when the A01 comes first (saying the LIS's record is the HIS's person is
    the index's and the operator's, not the visit number's). (The LIS's own record the visit was taken
    from is filed since visfix33: rvvisit33 MED 3, ``test_visfix33_stay``.)"""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(3)))
    visit_accepted(mllp, names, adt("A01", "A01-1", ADMITTED, "V100", ts(2)))
    _refused_at_the_visit_number(mllp, _lab("ORU-L2", "L-88^^^LIS^PI", ts(1)), names)
    assert one_visit_numbered(fhir, names.number("V100"))["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V1'))}"


def test_one_batch_is_taken_over_as_singly(engine: Engine, fhir: TestClient, names: Names) -> None:
    """The lab's result and the admission in one ingest batch: refused here before identity34 (the
    placeholder not stored when the admission was settled), while filed when sent singly. The admission
    is now settled against the batch's own placeholder (``takeover._settle_in_batch``): taken over, as
    singly (``test_identity34_batch``)."""
    first = mine(names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(3)))
    second = mine(names, adt("A01", "A01-1", ADMITTED, "V100", ts(2)))
    outcomes = engine.ingestor.process([(first, "file", "file:1"), (second, "file", "file:2")])
    assert b"MSA|AA|" in outcomes[0].ack and b"MSA|AA|" in outcomes[1].ack, [o.ack for o in outcomes]
    assert one_visit_numbered(fhir, names.number("V100"))["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V1'))}"
