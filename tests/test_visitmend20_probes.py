"""One visit number, two patients: what the review of visit20 found (twentieth round, visitmend20).
Real HL7 bytes over MLLP and POST /hl7v2, the real store (SQLite and mongomock), FHIR reads over
HTTP (the reviewer's probes, kept with the cases mended):

- a charge (DFT), prescription (RDE) or vaccination (VXU) of patient 2 under patient 1's PV1-19
  named patient 1's visit (merge.yaml's ``another_person`` row named the ``feed`` group only);
- an A40 or A45 whose MRG-1 names the prior record by its ID number alone merged or moved from a
  record that does not exist (``id|`` against the PID's ``nid|`` key);
- a newborn's results under the mother's visit number (rooming-in, 母婴同室) pass when the message
  names her as its patient's mother (PID-21), and only then;
- results before the admission under the LIS's own patient number: the HIS's admission takes the
  lab's placeholder visit over (thirty-third round, visit33: ``adapters/convert/takeover.py``).
"""

# ruff: noqa: F811 -- the fixtures imported from test_visit20_reused_numbers are the tests' arguments

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import Names, names  # noqa: F401 -- a fixture
from tests.shared_worlds45d import mine, own_read, visit_accepted, visit_send
from tests.shared_worlds45d import visit_eng as engine  # noqa: F401 -- a fixture (once a module and backend)
from tests.shared_worlds45d import visit_fhir as fhir  # noqa: F401 -- a fixture (once a module and backend)
from tests.shared_worlds45d import visit_mllp as mllp  # noqa: F401 -- a fixture (once a module and backend)
from tests.test_placer19_two_patients import pid
from tests.test_recognition_policy_e2e import msh, ts
from tests.test_visit20_reused_numbers import ONE, TWO, adt, one_visit_numbered, oru, patient_id, pv1, read

# each test sends under names of its own (tests.module_store.Names, through shared_worlds45d.mine) on the module's
# engine, and reads back its own visit (its V100), records and results: the tests had each opened an engine


def _visit_of_one(fhir: TestClient, names: Names) -> dict[str, Any]:
    return one_visit_numbered(fhir, names.number("V100"))


def _not_patient_ones_visit(code: str, refs: list[str], visit: dict[str, Any]) -> None:
    """Either the message is refused, or what it stored does not name patient 1's visit."""
    assert code == "AE" or f"Encounter/{visit['id']}" not in refs, (code, refs)


# --- (a) other message kinds under a stored visit number -----------------------------------------


def test_charge_of_another_patient_under_a_stored_visit_number(mllp: int, fhir: TestClient, names: Names) -> None:
    """DFT^P03 (source DFT: not in merge.yaml's ``feed`` group) for patient 2 under patient 1's
    visit number: its charge line must not name patient 1's visit as its context."""
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    visit = _visit_of_one(fhir, names)
    when = ts(2)
    dft = (msh("HOSPA", "HIS", "DFT^P03^DFT_P03", when, "DFT-2") + f"EVN|P03|{when}\n" + pid(*TWO)
           + pv1("V100", when) + f"FT1|1|T-5001||{when}||CG|SURG-01^阑尾切除术^L||1|1||99.00&CNY\n")
    code, _ = visit_send(mllp, names, dft)
    refs = [c.get("context", {}).get("reference", "") for c in read(fhir, "ChargeItem")]
    _not_patient_ones_visit(code, refs, visit)


def test_prescription_of_another_patient_under_a_stored_visit_number(mllp: int, fhir: TestClient, names: Names) -> None:
    """RDE^O11 (source RDE) for patient 2 under patient 1's visit number."""
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    visit = _visit_of_one(fhir, names)
    when = ts(2)
    rde = (msh("HOSPA", "HIS", "RDE^O11^RDE_O11", when, "RDE-2") + pid(*TWO) + pv1("V100", when)
           + f"ORC|NW|RX-301^HIS|RX-301^PHARM||IP||||{when}|N002^赵^护士||D1001^陈^明\n"
           + "RXE|^BID&0800,2000^^20260305|CN-NIF^硝苯地平缓释片^L|20||mg^毫克^UCUM|TAB^片|每日2次|||"
           + "28|片^片|2\n" + "RXR|PO^口服^HL70162\n")
    code, _ = visit_send(mllp, names, rde)
    refs = [m.get("encounter", {}).get("reference", "") for m in read(fhir, "MedicationRequest")]
    _not_patient_ones_visit(code, refs, visit)


def test_vaccination_of_another_patient_under_a_stored_visit_number(mllp: int, fhir: TestClient, names: Names) -> None:
    """VXU^V04 (source VXU) for patient 2 under patient 1's visit number."""
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    visit = _visit_of_one(fhir, names)
    when = ts(2)
    vxu = (msh("HOSPA", "HIS", "VXU^V04^VXU_V04", when, "VXU-2") + pid(*TWO) + pv1("V100", when)
           + "ORC|RE|IM-1^HIS|IM-1^HOSPA||CM\n"
           + f"RXA|0|1|{when}||CN-FLU^流感疫苗^L|0.5|mL^毫升^UCUM||00^New Record^NIP001|N001^王^护士|||||"
           + "FL2026-118|20270630|||||CP|A\n")
    code, _ = visit_send(mllp, names, vxu)
    refs = [i.get("encounter", {}).get("reference", "") for i in read(fhir, "Immunization")]
    _not_patient_ones_visit(code, refs, visit)


def test_result_over_http_post_of_another_patient_is_refused_not_500(
        engine: Engine, http: TestClient, mllp: int, fhir: TestClient, names: Names) -> None:
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    body = mine(names, oru("ORU-H2", TWO, "V100", "B7", "F7", ts(2)))
    poster = {"Authorization": "Bearer " + engine.auth.issue_system_token("lis-gw", "system/MessageHeader.c"),
              "Content-Type": "x-application/hl7-v2+er7"}
    got = http.post("/hl7v2", content=body, headers=poster)
    assert got.status_code < 500, got.text
    assert got.headers["x-hl7-ack-code"] == "AE", got.text
    assert not own_read(engine, fhir, names, "DiagnosticReport")


# --- (b) good messages a real HIS sends ----------------------------------------------------------


def test_results_before_admission_then_the_admission(mllp: int, fhir: TestClient, names: Names) -> None:
    visit_accepted(mllp, names, oru("ORU-1", ONE, "V100", "B7", "F7", ts(3)))
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3, 9)))
    visit_accepted(mllp, names, adt("A02", "A02-1", ONE, "V100", ts(2)))
    visit_accepted(mllp, names, adt("A08", "A08-1", ("MRN-V1", 1, "李^一一"), "V100", ts(1)))  # name corrected
    assert _visit_of_one(fhir, names)["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V1'))}"


def test_preadmit_then_admit_and_replays(mllp: int, fhir: TestClient, names: Names) -> None:
    visit_accepted(mllp, names, adt("A05", "A05-1", ONE, "V100", ts(3), structure="ADT_A05"))
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(2)))
    before = _visit_of_one(fhir, names)
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(2)))  # the same message again
    visit_accepted(mllp, names, adt("A01", "A01-1b", ONE, "V100", ts(2)))  # the same content, new control id
    assert _visit_of_one(fhir, names)["meta"]["versionId"] == before["meta"]["versionId"]


def test_same_visit_number_at_two_institutions(mllp: int, fhir: TestClient, names: Names) -> None:
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    other = adt("A01", "A01-B", TWO, "V100", ts(2)).replace("|HOSPA|", "|HOSPB|").replace("^HOSPA^", "^HOSPB^")
    visit_accepted(mllp, names, other)
    assert len(read(fhir, "Encounter", identifier=names.number("V100"))) == 2


def test_a47_identifier_change_then_the_visit(mllp: int, fhir: TestClient, names: Names) -> None:
    """A47 (change internal patient ID, no ID number): the visit's later messages under the new MRN."""
    old = ("MRN-V1", None, "李^一")
    visit_accepted(mllp, names, adt("A01", "A01-1", old, "V100", ts(3)))
    a47 = (msh("HOSPA", "HIS", "ADT^A47^ADT_A30", ts(2), "A47-1") + f"EVN|A47|{ts(2)}\n"
           + pid("MRN-V1N", None, "李^一") + "MRG|MRN-V1^^^HOSPA^MR\n")
    visit_accepted(mllp, names, a47)
    visit_accepted(mllp, names, adt("A08", "A08-1", ("MRN-V1N", None, "李^一"), "V100", ts(1)))
    visit_accepted(mllp, names, oru("ORU-1", ("MRN-V1N", None, "李^一"), "V100", "B7", "F7", ts(1, 9)))


def test_a40_then_a_late_message_under_the_old_number(mllp: int, fhir: TestClient, names: Names) -> None:
    old, new = ("MRN-V1", None, "李^一"), ("MRN-V3", None, "李^一")
    visit_accepted(mllp, names, adt("A01", "A01-1", old, "V100", ts(4)))
    a40 = (msh("HOSPA", "HIS", "ADT^A40^ADT_A39", ts(3), "A40-1") + f"EVN|A40|{ts(3)}\n"
           + pid(*new) + "MRG|MRN-V1^^^HOSPA^MR\n")
    visit_accepted(mllp, names, a40)
    visit_accepted(mllp, names, adt("A08", "A08-3", new, "V100", ts(3, 9)))
    visit_accepted(mllp, names, oru("ORU-1", old, "V100", "B7", "F7", ts(2)))  # the LIS still names the old MRN


def test_a37_unlink_after_a_mistaken_merge_gives_the_visit_back(mllp: int, fhir: TestClient, names: Names) -> None:
    """A40 merged two namesakes by mistake; the survivor's A08 took the visit; the A37 unlinks them
    and restates patient 1's visit: patient 1's later messages under it are its own."""
    one, three = ("MRN-V1", None, "李^一"), ("MRN-V3", None, "李^一")
    visit_accepted(mllp, names, adt("A01", "A01-1", one, "V100", ts(4)))
    a40 = (msh("HOSPA", "HIS", "ADT^A40^ADT_A39", ts(3), "A40-1") + f"EVN|A40|{ts(3)}\n"
           + pid(*three) + "MRG|MRN-V1^^^HOSPA^MR\n")
    visit_accepted(mllp, names, a40)
    visit_accepted(mllp, names, adt("A08", "A08-3", three, "V100", ts(3, 9)))
    a37 = (msh("HOSPA", "HIS", "ADT^A37^ADT_A37", ts(2), "A37-1") + f"EVN|A37|{ts(2)}\n"
           + pid(*one) + pv1("V100", ts(4)) + pid(*three))
    visit_accepted(mllp, names, a37)
    visit_accepted(mllp, names, adt("A08", "A08-1", one, "V100", ts(1)))


def test_lab_results_before_admission_under_the_lis_own_patient_number(mllp: int, fhir: TestClient, names: Names) -> None:
    """Results before ADT: the LIS names the patient by its own number (PID-3 type PI, no ID
    number) under the HIS visit number; the thin Encounter it carries is written (only if absent).
    The HIS's A01 -- the feed that owns the Encounter -- then admits the patient under the number."""
    lis_patient = "PID|1||L-77^^^LIS^PI||李^一||19700101|M\n"
    when = ts(3)
    lab = (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, "ORU-L1") + lis_patient + pv1("V100", when)
           + "ORC|RE|B7^HIS|F7^LIS\n"
           + f"OBR|1|B7^HIS|F7^LIS|58410-2^CBC^LN|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
           + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{when}\n")
    visit_accepted(mllp, names, lab)
    visit_accepted(mllp, names, adt("A01", "A01-1", ("MRN-V1", None, "李^一"), "V100", ts(2)))
    assert _visit_of_one(fhir, names)["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V1'))}"


MOTHER = ("MRN-M", 2, "王^二")


def _newborn(mother_field: str) -> str:
    """A newborn's PID (own MRN, no ID number yet), PID-21 naming its mother as given."""
    fields = [""] * 22
    fields[1], fields[3], fields[5], fields[7], fields[8], fields[21] = (
        "1", "MRN-NB^^^HOSPA^MR", "王二之子", ts(3)[:8], "M", mother_field)
    return "PID|" + "|".join(fields[1:]) + "\n"


def _newborn_result(control: str, mother_field: str, when: str) -> str:
    return (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, control) + _newborn(mother_field) + pv1("V100", when)
            + "ORC|RE|B9^HIS|F9^LIS\n"
            + f"OBR|1|B9^HIS|F9^LIS|58410-2^CBC^LN|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + f"OBX|1|NM|WBC^白细胞^L||16.1|10*9/L|||||F|||{when}\n")


def test_newborn_result_under_the_mothers_stay(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """母婴同室: a newborn (own MRN, no ID number yet) whose results the HIS files under the
    mother's inpatient visit number (PV1-19), PID-21 naming the mother by her MRN: its report
    refers to her visit, which stays hers."""
    visit_accepted(mllp, names, adt("A01", "A01-M", MOTHER, "V100", ts(3)))
    visit = _visit_of_one(fhir, names)
    visit_accepted(mllp, names, _newborn_result("ORU-NB", "MRN-M^^^HOSPA^MR", ts(2)))
    (report,) = own_read(engine, fhir, names, "DiagnosticReport")
    assert report["encounter"]["reference"] == f"Encounter/{visit['id']}"
    assert report["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-NB'))}"
    assert _visit_of_one(fhir, names)["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-M'))}"


def test_newborn_result_naming_the_mother_by_her_id_number(mllp: int, fhir: TestClient, names: Names) -> None:
    """PID-21 naming the mother by her ID number, the record she is keyed by when she has no MRN."""
    from tests.test_placer19_two_patients import nid

    mother = f"PID|1||{nid(2)}^^^公安部^NNCHN||王^二||19700101|F\n"
    when = ts(3)
    visit_accepted(mllp, names, msh("HOSPA", "HIS", "ADT^A01^ADT_A01", when, "A01-M") + f"EVN|A01|{when}\n" + mother
             + pv1("V100", when))
    visit_accepted(mllp, names, _newborn_result("ORU-NB", f"{nid(2)}^^^公安部^NNCHN", ts(2)))


def test_newborn_result_under_a_visit_not_its_mothers_is_refused(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """No mother named, or another woman named as mother: another patient under the visit number."""
    visit_accepted(mllp, names, adt("A01", "A01-M", MOTHER, "V100", ts(3)))
    visit_accepted(mllp, names, adt("A01", "A01-3", ("MRN-V3", 4, "赵^四"), "V300", ts(3)))
    for control, mother in (("ORU-N1", ""), ("ORU-N2", "MRN-V3^^^HOSPA^MR"), ("ORU-N3", "MRN-NONE^^^HOSPA^MR")):
        code, errs = visit_send(mllp, names, _newborn_result(control, mother, ts(2)))
        assert code == "AE" and any(e[2] == "PV1^1^19" for e in errs), (control, errs)
    assert not own_read(engine, fhir, names, "DiagnosticReport")


def test_newborn_admission_under_the_mothers_visit_number_is_refused(mllp: int, fhir: TestClient, names: Names) -> None:
    """PID-21 lets the newborn's results refer to the mother's visit as stored; an ADT naming the
    newborn under her number would re-file her visit under the newborn: refused."""
    visit_accepted(mllp, names, adt("A01", "A01-M", MOTHER, "V100", ts(3)))
    when = ts(2)
    code, _ = visit_send(mllp, names, msh("HOSPA", "HIS", "ADT^A08^ADT_A01", when, "A08-NB") + f"EVN|A08|{when}\n"
                   + _newborn("MRN-M^^^HOSPA^MR") + pv1("V100", when))
    assert code == "AE"
    assert _visit_of_one(fhir, names)["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-M'))}"


def test_a_different_person_after_an_a40_is_still_refused(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    old, new = ("MRN-V1", None, "李^一"), ("MRN-V3", None, "李^一")
    visit_accepted(mllp, names, adt("A01", "A01-1", old, "V100", ts(4)))
    a40 = (msh("HOSPA", "HIS", "ADT^A40^ADT_A39", ts(3), "A40-1") + f"EVN|A40|{ts(3)}\n"
           + pid(*new) + "MRG|MRN-V1^^^HOSPA^MR\n")
    visit_accepted(mllp, names, a40)
    code, _ = visit_send(mllp, names, adt("A08", "A08-9", ("MRN-V9", 9, "赵^九"), "V100", ts(2)))
    assert code == "AE"
    code, _ = visit_send(mllp, names, oru("ORU-9", ("MRN-V9", 9, "赵^九"), "V100", "B9", "F9", ts(2)))
    assert code == "AE"


def test_one_batch_admission_and_another_patients_result(engine: Engine, fhir: TestClient, names: Names) -> None:
    """Both in one ingest batch (one transaction): the result of patient 2 is refused as one by one."""
    first = mine(names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    second = mine(names, oru("ORU-2", TWO, "V100", "B7", "F7", ts(2)))
    outcomes = engine.ingestor.process([(first, "file", "file:1"), (second, "file", "file:2")])
    assert b"MSA|AA|" in outcomes[0].ack and b"MSA|AE|" in outcomes[1].ack, [o.ack for o in outcomes]


def test_a45_moving_a_visit_from_a_record_known_by_its_id_number(mllp: int, fhir: TestClient, names: Names) -> None:
    """A township registers a patient by the ID number alone (no MRN: the record is keyed by it);
    the visit was filed under that record by mistake and the HIS moves it (A45) to 王二, MRG-1
    naming the record it was under by the same ID number."""
    from tests.test_placer19_two_patients import nid

    id_only = f"PID|1||{nid(7)}^^^公安部^NNCHN||孙^七||19700101|M\n"
    when = ts(3)
    visit_accepted(mllp, names, msh("HOSPA", "HIS", "ADT^A01^ADT_A01", when, "A01-7") + f"EVN|A01|{when}\n" + id_only
             + pv1("V100", when))
    visit_accepted(mllp, names, adt("A01", "A01-2", TWO, "V200", ts(2, 9)))
    a45 = (msh("HOSPA", "HIS", "ADT^A45^ADT_A45", ts(2), "A45-1") + f"EVN|A45|{ts(2)}\n" + pid(*TWO)
           + f"MRG|{nid(7)}^^^公安部^NNCHN||||V100\n" + pv1("V100", when))
    visit_accepted(mllp, names, a45)
    assert _visit_of_one(fhir, names)["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V2'))}"


def test_a40_merging_a_record_known_by_its_id_number_then_the_survivors_update(mllp: int, fhir: TestClient, names: Names) -> None:
    """A40: the record registered by ID number alone (MRG-1 names it by that number) is merged into
    MRN-V3; the survivor's A08 under the visit is the merged patient's own."""
    from tests.test_placer19_two_patients import nid

    id_only = f"PID|1||{nid(7)}^^^公安部^NNCHN||孙^七||19700101|M\n"
    when = ts(4)
    visit_accepted(mllp, names, msh("HOSPA", "HIS", "ADT^A01^ADT_A01", when, "A01-7") + f"EVN|A01|{when}\n" + id_only
             + pv1("V100", when))
    a40 = (msh("HOSPA", "HIS", "ADT^A40^ADT_A39", ts(3), "A40-1") + f"EVN|A40|{ts(3)}\n"
           + pid("MRN-V3", None, "孙^七") + f"MRG|{nid(7)}^^^公安部^NNCHN\n")
    visit_accepted(mllp, names, a40)
    visit_accepted(mllp, names, adt("A08", "A08-3", ("MRN-V3", None, "孙^七"), "V100", ts(2)))
