"""A visit number, a specimen number, a document number, an accession reused for another patient
(twentieth round, visit20): real HL7 bytes over a real MLLP socket, the real store (SQLite and
MongoDB through mongomock), FHIR reads over HTTP.

A HIS visit sequence restarts (per year, per ward), or two patients are given one visit number by
mistake: PV1-19 keys the Encounter for the whole institution, so patient 2's A01 was stored as
version 2 of patient 1's Encounter (subject and all), and the orders and results patient 2's
messages sent under that number referred to patient 1's visit. The same is true of every number
that keys a resource for the institution alone: a specimen (SPM-2), a document (TXA-12), an
imaging study (accession OBR-18 / IPC-1, study UID). A later message naming another PERSON under a
stored number -- the patient index says so -- is refused (AE, ERR 205 at the field that keyed the
resource), nothing written, the message kept for replay (merge.yaml ``another_person``, as the
nineteenth round did for order numbers). Records of one person, an A08 for the same person, an A40
merge and an A45 that moves the visit (MRG-1 naming the record it was filed under) still pass.
"""

# ruff: noqa: F811 -- the fixtures imported (shared_eng, names) are the tests' arguments

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.conftest import mllp_send
from tests.module_store import Names, names  # noqa: F401 -- a fixture
from tests.shared_worlds45d import own_read, visit_accepted, visit_send
from tests.shared_worlds45d import visit_eng as shared_eng  # noqa: F401 -- a fixture (once a module and backend)
from tests.test_placer19_two_patients import pid
from tests.test_recognition_policy_e2e import CBC, INSTITUTIONS, msh, ts


@pytest.fixture(params=[{}, {"mongodb_uri": "mongomock://"}], ids=["sqlite", "mongomock"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site, **request.param)) as eng:
        yield eng


@pytest.fixture
def fhir(http: TestClient, engine: Engine, client_token: Any) -> TestClient:
    http.headers["Authorization"] = f"Bearer {client_token(engine, 'system/*.read')}"
    return http


@pytest.fixture(scope="module")
def shared_mllp(shared_eng: Engine) -> Iterator[int]:
    """A real MLLP listener on the module's shared engine (``shared_worlds45d.visit_eng``), once a module and backend.
    This module's tests send on it under names of their own (``tests.module_store.Names``); ``engine``, ``fhir`` and
    ``mllp`` stay a test's own for the modules that import them (and for the study-UID test here)."""
    from tests.conftest import running_mllp

    with running_mllp(shared_eng) as port:
        yield port


@pytest.fixture(scope="module")
def shared_fhir(shared_eng: Engine) -> Iterator[TestClient]:
    """``fhir`` (a ``system/*.read`` client of the real app) over the shared engine, once a module and backend."""
    from engine.api.app import create_app

    with TestClient(create_app(shared_eng)) as client:
        client.headers["Authorization"] = "Bearer " + shared_eng.auth.issue_system_token("test-system", "system/*.read")
        yield client


ONE = ("MRN-V1", 1, "李^一")
TWO = ("MRN-V2", 2, "王^二")


def pv1(visit: str, admit: str, klass: str = "I", discharge: str = "") -> str:
    fields = [""] * 46
    fields[1], fields[2], fields[3], fields[19], fields[44], fields[45] = (
        "1", klass, "W1^301^1", visit, admit, discharge)
    return "PV1|" + "|".join(fields[1:]).rstrip("|") + "\n"


def adt(event: str, control: str, who: tuple[str, int | None, str], visit: str, when: str,
        structure: str = "ADT_A01", extra: str = "") -> str:
    return (msh("HOSPA", "HIS", f"ADT^{event}^{structure}", when, control) + f"EVN|{event}|{when}\n"
            + pid(*who) + extra + pv1(visit, when))


def oru(control: str, who: tuple[str, int | None, str], visit: str, placer: str, filler: str, when: str,
        spm: str = "") -> str:
    return (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, control) + pid(*who) + pv1(visit, when)
            + f"ORC|RE|{placer}^HIS|{filler}^LIS\n"
            + f"OBR|1|{placer}^HIS|{filler}^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{when}\n"
            + (f"SPM|1|{spm}^^LIS||BLD^全血^HL70487|||||||||||||{when}\n" if spm else ""))


def mdm(control: str, who: tuple[str, int | None, str], number: str, when: str) -> str:
    return (msh("HOSPA", "EMR", "MDM^T02^MDM_T02", when, control) + f"EVN|T02|{when}\n" + pid(*who)
            + f"TXA|1|DS^出院小结^HL70270|TX|{when}|||||D001^李^明|||{number}||||{number}.pdf|AU\n"
            + "OBX|1|TX|18842-5^出院小结^LN||第一段||||||F\n")


def imaging(control: str, who: tuple[str, int | None, str], placer: str, filler: str, accession: str,
            when: str, uid: str = "") -> str:
    return (msh("HOSPA", "PACS", "ORU^R01^ORU_R01", when, control) + pid(*who)
            + (f"ZDS|{uid}^PACS^Application^DICOM\n" if uid else "")
            + f"ORC|RE|{placer}^HIS|{filler}^PACS\n"
            + f"OBR|1|{placer}^HIS|{filler}^PACS|CT01^胸部CT平扫^L|||{when}|||||||||||{accession}||||{when}||CT|F\n"
            + f"OBX|1|TX|IMP^印象^L||未见异常||||||F|||{when}\n")


def send(port: int, text: str) -> tuple[str, list[list[str]]]:
    """MSA-1 and the ERR segments (fields) of the ACK to ``text`` sent over a real MLLP socket."""
    ack = mllp_send(port, text.replace("\n", "\r").encode("utf-8"))
    segments = [s.split("|") for s in ack.split("\r") if s]
    (msa,) = [s for s in segments if s[0] == "MSA"]
    return msa[1], [s for s in segments if s[0] == "ERR"]


def accepted(port: int, text: str) -> None:
    code, errs = send(port, text)
    assert code == "AA", errs


def refused(engine: Engine, port: int, text: str, control: str, field: str) -> None:
    """AE with ERR 205 (duplicate key) at ``field`` naming another patient; nothing written, the
    message kept (quarantined) for replay."""
    code, errs = send(port, text)
    assert code == "AE", errs
    (err,) = [e for e in errs if e[4] == "E"]
    assert err[2] == field and err[3].startswith("205^"), err
    assert "another patient" in err[8] and "patient index" in err[8], err[8]
    doc = engine.ingestor.messages.get(message_id("HOSPA", control))
    assert doc is not None and doc["status"] == "quarantined" and not doc.get("resources"), doc


def _own_refused(names: Names, engine: Engine, port: int, text: str, control: str, field: str) -> None:
    """``refused`` of ``text`` sent under ``names`` (its control ID ``names.control(control)``)."""
    code, errs = visit_send(port, names, text)
    assert code == "AE", errs
    (err,) = [e for e in errs if e[4] == "E"]
    assert err[2] == field and err[3].startswith("205^"), err
    assert "another patient" in err[8] and "patient index" in err[8], err[8]
    doc = engine.ingestor.messages.get(message_id("HOSPA", names.control(control)))
    assert doc is not None and doc["status"] == "quarantined" and not doc.get("resources"), doc


def read(fhir: TestClient, rtype: str, **params: str) -> list[dict[str, Any]]:
    got = fhir.get(f"/fhir/{rtype}", params={"_count": "100", **params})
    assert got.status_code == 200, got.text
    return [e["resource"] for e in got.json().get("entry") or () if e.get("search", {}).get("mode", "match") == "match"]


def patient_id(fhir: TestClient, mrn: str) -> str:
    (patient,) = read(fhir, "Patient", identifier=mrn)
    return str(patient["id"])


def one_visit(fhir: TestClient) -> dict[str, Any]:
    (visit,) = read(fhir, "Encounter")
    return visit


def _own_visit(engine: Engine, fhir: TestClient, names: Names) -> dict[str, Any]:
    """``one_visit`` of the test's own records on the shared store: its one Encounter."""
    (visit,) = own_read(engine, fhir, names, "Encounter")
    return visit


# --- the Encounter (PV1-19) ------------------------------------------------------------------------


def test_another_patients_admission_under_a_stored_visit_number_is_refused(
        shared_eng: Engine, shared_mllp: int, shared_fhir: TestClient, names: Names) -> None:
    engine, mllp, fhir = shared_eng, shared_mllp, shared_fhir
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    one = patient_id(fhir, names.number("MRN-V1"))
    before = _own_visit(engine, fhir, names)
    assert before["subject"]["reference"] == f"Patient/{one}"
    _own_refused(names, engine, mllp, adt("A01", "A01-2", TWO, "V100", ts(2)), "A01-2", "PV1^1^19")
    assert _own_visit(engine, fhir, names) == before  # patient 1's visit unchanged: version 1, subject, period
    assert not read(fhir, "Patient", identifier=names.number("MRN-V2"))
    # an update (A08) and a result for the second patient under the number are refused as well:
    # they would name patient 1's visit as theirs
    _own_refused(names, engine, mllp, adt("A08", "A08-2", TWO, "V100", ts(2, 9)), "A08-2", "PV1^1^19")
    _own_refused(names, engine, mllp, oru("ORU-2", TWO, "V100", "B7", "F7", ts(2, 10)), "ORU-2", "PV1^1^19")
    order = (msh("HOSPA", "HIS", "ORM^O01^ORM_O01", ts(2, 11), "ORM-2") + pid(*TWO) + pv1("V100", ts(2))
             + f"ORC|NW|B8^HIS|||||||{ts(2, 11)}|||D7^张^医生\n" + f"OBR|1|B8^HIS||{CBC}|||{ts(2, 11)}\n")
    _own_refused(names, engine, mllp, order, "ORM-2", "PV1^1^19")
    assert _own_visit(engine, fhir, names) == before
    assert not own_read(engine, fhir, names, "DiagnosticReport") and not own_read(engine, fhir, names, "Observation") and not own_read(engine, fhir, names, "ServiceRequest")
    # patient 1's own result under the visit number refers to patient 1's visit
    visit_accepted(mllp, names, oru("ORU-1", ONE, "V100", "B7", "F7", ts(1)))
    (report,) = own_read(engine, fhir, names, "DiagnosticReport")
    assert report["encounter"]["reference"] == f"Encounter/{before['id']}"
    assert report["subject"]["reference"] == f"Patient/{one}"


def test_the_same_person_under_the_same_visit_number_still_merges(
        shared_eng: Engine, shared_mllp: int, shared_fhir: TestClient, names: Names) -> None:
    engine, mllp, fhir = shared_eng, shared_mllp, shared_fhir
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    one = patient_id(fhir, names.number("MRN-V1"))
    visit_accepted(mllp, names, adt("A08", "A08-1", ONE, "V100", ts(3, 9)))  # an update of the same visit
    visit_accepted(mllp, names, oru("ORU-1", ONE, "V100", "B7", "F7", ts(2)))
    discharge = (msh("HOSPA", "HIS", "ADT^A03^ADT_A03", ts(1), "A03-1") + f"EVN|A03|{ts(1)}\n" + pid(*ONE)
                 + pv1("V100", ts(3), discharge=ts(1)))
    visit_accepted(mllp, names, discharge)
    visit = _own_visit(engine, fhir, names)
    assert visit["subject"]["reference"] == f"Patient/{one}" and visit["status"] == "finished"
    (report,) = own_read(engine, fhir, names, "DiagnosticReport")
    assert report["encounter"]["reference"] == f"Encounter/{visit['id']}"
    # another record of the same person (one ID number, another MRN): the patient index's one person
    visit_accepted(mllp, names, adt("A08", "A08-5", ("MRN-V5", 1, "李^一"), "V100", ts(1, 9)))
    assert _own_visit(engine, fhir, names)["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V5'))}"


def test_a_merge_and_a_visit_move_still_move_the_visit(
        shared_eng: Engine, shared_mllp: int, shared_fhir: TestClient, names: Names) -> None:
    """An A40 makes two records one person: the survivor's update keeps the visit. An A45 moves a
    visit filed under the wrong patient to the right one (MRG-1 the record it was under)."""
    engine, mllp, fhir = shared_eng, shared_mllp, shared_fhir
    no_id = ("MRN-V1", None, "李^一")
    visit_accepted(mllp, names, adt("A01", "A01-1", no_id, "V100", ts(4)))
    a40 = (msh("HOSPA", "HIS", "ADT^A40^ADT_A39", ts(3), "A40-1") + f"EVN|A40|{ts(3)}\n"
           + pid("MRN-V3", None, "李^一") + "MRG|MRN-V1^^^HOSPA^MR\n")
    visit_accepted(mllp, names, a40)
    visit_accepted(mllp, names, adt("A08", "A08-3", ("MRN-V3", None, "李^一"), "V100", ts(3, 9)))
    assert _own_visit(engine, fhir, names)["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V3'))}"
    # the visit was filed under MRN-V3 by mistake: the registrar moves it to 王二 (MRN-V2)
    visit_accepted(mllp, names, adt("A01", "A01-2", TWO, "V200", ts(3, 10)))
    a45 = (msh("HOSPA", "HIS", "ADT^A45^ADT_A45", ts(2), "A45-1") + f"EVN|A45|{ts(2)}\n" + pid(*TWO)
           + "MRG|MRN-V3^^^HOSPA^MR||||V100\n" + pv1("V100", ts(4)))
    visit_accepted(mllp, names, a45)
    assert one_visit_numbered(fhir, names.number("V100"))["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V2'))}"
    # an A45 whose MRG-1 does not name the record the visit is filed under moves nothing
    no_move = (msh("HOSPA", "HIS", "ADT^A45^ADT_A45", ts(1), "A45-2") + f"EVN|A45|{ts(1)}\n"
               + pid("MRN-V6", 6, "赵^六") + "MRG|MRN-V9^^^HOSPA^MR||||V100\n" + pv1("V100", ts(4)))
    _own_refused(names, engine, mllp, no_move, "A45-2", "PV1^1^19")
    assert one_visit_numbered(fhir, names.number("V100"))["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V2'))}"


def test_an_a34_merge_keeps_the_visit_with_the_survivor(
        shared_eng: Engine, shared_mllp: int, shared_fhir: TestClient, names: Names) -> None:
    mllp, fhir = shared_mllp, shared_fhir
    visit_accepted(mllp, names, adt("A01", "A01-7", ("MRN-V7", None, "孙^七"), "V300", ts(3)))
    a34 = (msh("HOSPA", "HIS", "ADT^A34^ADT_A30", ts(2), "A34-1") + f"EVN|A34|{ts(2)}\n"
           + pid("MRN-V8", None, "孙^七") + "MRG|MRN-V7^^^HOSPA^MR\n")
    visit_accepted(mllp, names, a34)
    visit_accepted(mllp, names, adt("A08", "A08-8", ("MRN-V8", None, "孙^七"), "V300", ts(1)))
    assert one_visit_numbered(fhir, names.number("V300"))["subject"]["reference"] == f"Patient/{patient_id(fhir, names.number('MRN-V8'))}"


def one_visit_numbered(fhir: TestClient, number: str) -> dict[str, Any]:
    (visit,) = read(fhir, "Encounter", identifier=number)
    return visit


# --- the other numbers that key a resource for the institution alone ------------------------------


def test_another_patients_specimen_under_a_stored_specimen_number_is_refused(
        shared_eng: Engine, shared_mllp: int, shared_fhir: TestClient, names: Names) -> None:
    engine, mllp, fhir = shared_eng, shared_mllp, shared_fhir
    visit_accepted(mllp, names, oru("ORU-1", ONE, "", "B7", "F7", ts(3), spm="SP-1"))
    one = patient_id(fhir, names.number("MRN-V1"))
    (before,) = own_read(engine, fhir, names, "Specimen")
    assert before["subject"]["reference"] == f"Patient/{one}"
    _own_refused(names, engine, mllp, oru("ORU-2", TWO, "", "B8", "F8", ts(2), spm="SP-1"), "ORU-2", "SPM^1^2")
    assert own_read(engine, fhir, names, "Specimen") == [before]
    (report,) = own_read(engine, fhir, names, "DiagnosticReport")
    assert report["subject"]["reference"] == f"Patient/{one}"
    visit_accepted(mllp, names, oru("ORU-3", ONE, "", "B9", "F9", ts(1), spm="SP-1"))  # the same person: one specimen
    (specimen,) = own_read(engine, fhir, names, "Specimen")
    assert specimen["subject"]["reference"] == f"Patient/{one}" and specimen["meta"]["versionId"] == "2"


def test_another_patients_document_under_a_stored_document_number_is_refused(
        shared_eng: Engine, shared_mllp: int, shared_fhir: TestClient, names: Names) -> None:
    engine, mllp, fhir = shared_eng, shared_mllp, shared_fhir
    visit_accepted(mllp, names, mdm("MDM-1", ONE, "DOC-1", ts(3)))
    one = patient_id(fhir, names.number("MRN-V1"))
    (before,) = own_read(engine, fhir, names, "DocumentReference")
    assert before["subject"]["reference"] == f"Patient/{one}"
    _own_refused(names, engine, mllp, mdm("MDM-2", TWO, "DOC-1", ts(2)), "MDM-2", "TXA^1^12")
    assert own_read(engine, fhir, names, "DocumentReference") == [before]
    visit_accepted(mllp, names, mdm("MDM-3", ONE, "DOC-1", ts(1)))  # the same person re-sends it
    (doc,) = own_read(engine, fhir, names, "DocumentReference")
    assert doc["subject"]["reference"] == f"Patient/{one}"


def test_another_patients_study_under_a_stored_accession_is_refused(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    accepted(mllp, imaging("RIS-1", ONE, "B7", "F7", "ACC-1", ts(3)))
    one = patient_id(fhir, "MRN-V1")
    (before,) = read(fhir, "ImagingStudy")
    assert before["subject"]["reference"] == f"Patient/{one}"
    refused(engine, mllp, imaging("RIS-2", TWO, "B8", "F8", "ACC-1", ts(2)), "RIS-2", "OBR^1^18")
    assert read(fhir, "ImagingStudy") == [before]
    # a study UID (ZDS-1) keys the study before the accession: another patient under it, refused there
    uid = "1.2.840.113619.2.55.3.604688119.969.1"
    accepted(mllp, imaging("RIS-3", ONE, "B9", "F9", "ACC-3", ts(2, 9), uid=uid))
    studies = read(fhir, "ImagingStudy")
    refused(engine, mllp, imaging("RIS-4", TWO, "B10", "F10", "ACC-4", ts(1), uid=uid), "RIS-4", "ZDS^1^1")
    assert read(fhir, "ImagingStudy") == studies and len(studies) == 2


def test_appointments_and_charges_are_numbered_per_patient(
        shared_eng: Engine, shared_mllp: int, shared_fhir: TestClient, names: Names) -> None:
    """SCH-1/SCH-2 and FT1-2 key an Appointment and a ChargeItem under their patient (the message
    templates' keys are patient-scoped): another patient's charge under a stored number is a resource
    of its own, patient 1's unchanged. (A guard: no defect found here on 69a7ff5.) Another patient's
    booking under a stored SCH-1/SCH-2 was a second booking for the one slot: refused at PID-3 since
    the twenty-fourth round (sched24: a filler's appointment id is the filler's, not the patient's)."""
    engine, mllp, fhir = shared_eng, shared_mllp, shared_fhir

    def siu(control: str, who: tuple[str, int | None, str], when: str) -> str:
        return (msh("HOSPA", "HIS", "SIU^S12^SIU_S12", when, control)
                + "SCH|APT-9^HIS|APT-9^HIS|||||FU^复诊^L|ROUTINE^常规^HL70276|20|MIN|^^20^20261210090000\n"
                + pid(*who) + "RGS|1|A\n" + "AIP|1|A|D001^李^医生|D^医生\n")

    def dft(control: str, who: tuple[str, int | None, str], when: str, amount: str) -> str:
        return (msh("HOSPA", "HIS", "DFT^P03^DFT_P03", when, control) + f"EVN|P03|{when}\n" + pid(*who)
                + pv1(f"V-{control}", when)
                + f"FT1|1|T-5001||{when}||CG|SURG-01^阑尾切除术^L||1|1||{amount}&CNY\n")

    visit_accepted(mllp, names, siu("SIU-1", ONE, ts(3)))
    visit_accepted(mllp, names, dft("DFT-1", ONE, ts(3), "2300.50"))
    one = patient_id(fhir, names.number("MRN-V1"))
    (booking,) = own_read(engine, fhir, names, "Appointment", by="patient")
    (charge,) = own_read(engine, fhir, names, "ChargeItem")
    _own_refused(names, engine, mllp, siu("SIU-2", TWO, ts(2)), "SIU-2", "PID^1^3")
    visit_accepted(mllp, names, dft("DFT-2", TWO, ts(2), "99.00"))
    two = patient_id(fhir, names.number("MRN-V2"))
    assert read(fhir, "Appointment", actor=f"Patient/{one}") == [booking]
    assert read(fhir, "ChargeItem", subject=f"Patient/{one}") == [charge]
    assert read(fhir, "Appointment", actor=f"Patient/{two}") == []
    assert len(read(fhir, "ChargeItem", subject=f"Patient/{two}")) == 1
