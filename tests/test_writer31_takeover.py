"""The visit's owner and a lab's placeholder visit (writer31, taken back by writerfix31): writer31 let the
ADT file a visit a result or order message wrote under the patient it admits (``merge.yaml``
``Encounter.subject.takes_over``); its review found it joining two patients (an order's DG1 writes the
ADT's visit too, so the "placeholder" was the ADT's; and the LIS's own number is stored as an MRN of the
institution, so a placeholder under another HIS record looked the same). The rule is taken back: an
admission naming another patient than a lab's visit under the same number is refused at PV1-19, as it
was before writer31. What must hold, each checked here: the lab's visit and report stay as sent; a visit
the ADT, a FHIR client or a writer not known wrote, two records the index knows apart, a second LIS
patient: all refused (since visit33 the lab's own placeholder under a number kept apart IS taken over:
tests/test_visit33_takeover.py); a site's merge.yaml naming ``takes_over`` is refused at load (no such key now),
and a site lacking a group keeps the visit's ``another_person`` row.

Real HL7 bytes over a real MLLP socket, FHIR reads and writes over HTTP, the real store (SQLite and
mongomock: the ``engine`` fixture of ``test_visit20_reused_numbers``).
"""

# ruff: noqa: F811 -- the fixtures imported from test_visit20_reused_numbers are the tests' arguments

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.merge_rules import API, MergeRules
from mappings.site import DEFAULTS_DIR, laid_over, load_merge_file
from tests.test_placer19_two_patients import nid
from tests.test_recognition_policy_e2e import msh, ts
from tests.test_visit20_reused_numbers import (  # noqa: F401 -- fixtures
    accepted,
    adt,
    engine,
    fhir,
    one_visit_numbered,
    oru,
    patient_id,
    pv1,
    read,
    send,
)

ADMITTED = ("MRN-V1", None, "李^一")


def _lab(control: str, lis_number: str, when: str, id_number: str = "") -> str:
    """A result under the HIS visit number V100 naming the patient by the LIS's own number (PID-3 PI),
    with an ID number when given."""
    ids = f"{lis_number}^^^LIS^PI" + (f"~{id_number}^^^公安部^NNCHN" if id_number else "")
    return (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, control) + f"PID|1||{ids}||李^一||19700101|M\n"
            + pv1("V100", when) + f"ORC|RE|B-{control}^HIS|F-{control}^LIS\n"
            + f"OBR|1|B-{control}^HIS|F-{control}^LIS|58410-2^CBC^LN|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{when}\n")


def _lis_patient(fhir: TestClient, number: str) -> str:
    (patient,) = read(fhir, "Patient", identifier=number)
    return str(patient["id"])


def _refused_at_the_visit_number(mllp: int, text: str) -> None:
    code, errs = send(mllp, text)
    assert code == "AE", errs
    (err,) = [e for e in errs if e[4] == "E"]
    assert err[2] == "PV1^1^19" and err[3].startswith("205^"), err


def _writer(engine: Engine, visit: str) -> str | None:
    return engine.repository.writers("Encounter", [visit])[visit]


def test_the_admission_takes_the_labs_visit_over_and_the_lab_keeps_what_it_stated(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    """visit33: the LIS's number is now kept apart (identity32), so the lab's visit under it is a
    placeholder the A01 takes over (``adapters/convert/takeover.py``); the lab's report stays as sent,
    under the LIS's record (tests/test_visit33_takeover.py asserts the rest)."""
    accepted(mllp, _lab("ORU-L1", "L-77", ts(3)))
    lis = _lis_patient(fhir, "L-77")
    placeholder = one_visit_numbered(fhir, "V100")
    assert placeholder["subject"]["reference"] == f"Patient/{lis}"
    assert _writer(engine, placeholder["id"]) == "ORU"

    accepted(mllp, adt("A01", "A01-1", ADMITTED, "V100", ts(2)))
    visit = one_visit_numbered(fhir, "V100")
    assert visit["id"] == placeholder["id"]
    assert visit["subject"]["reference"] == f"Patient/{patient_id(fhir, 'MRN-V1')}"
    assert visit["meta"]["versionId"] == "2" and _writer(engine, visit["id"]) == "ADT"
    (report,) = read(fhir, "DiagnosticReport")
    assert report["subject"]["reference"] == f"Patient/{lis}"


def test_a_placeholder_of_a_person_the_index_knows_apart_is_still_refused(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    """The LIS's patient carries one ID number, the HIS admits another: two persons to the index --
    the lab's visit number or the HIS's is wrong, and neither record is filed under the other's visit."""
    accepted(mllp, _lab("ORU-L1", "L-77", ts(3), id_number=nid(1)))
    lis = _lis_patient(fhir, "L-77")
    _refused_at_the_visit_number(mllp, adt("A01", "A01-1", ("MRN-V3", 3, "李^一"), "V100", ts(2)))
    visit = one_visit_numbered(fhir, "V100")
    assert visit["subject"]["reference"] == f"Patient/{lis}" and visit["meta"]["versionId"] == "1"
    assert _writer(engine, visit["id"]) == "ORU"


def test_a_visit_the_adt_stated_is_no_placeholder(engine: Engine, mllp: int, fhir: TestClient) -> None:
    accepted(mllp, adt("A01", "A01-1", ADMITTED, "V100", ts(3)))
    _refused_at_the_visit_number(mllp, adt("A01", "A01-2", ("MRN-V2", None, "王^二"), "V100", ts(2)))
    assert one_visit_numbered(fhir, "V100")["subject"]["reference"] == f"Patient/{patient_id(fhir, 'MRN-V1')}"


def test_a_placeholder_a_client_edited_is_no_placeholder(engine: Engine, mllp: int, fhir: TestClient) -> None:
    """A clinician's edit of the lab's visit (through FHIR) makes it the client's statement: the ADT's
    other patient under the number is refused as for any stated visit."""
    accepted(mllp, _lab("ORU-L1", "L-77", ts(3)))
    visit = one_visit_numbered(fhir, "V100")
    token = engine.auth.issue_system_token("writer31-client", "system/*.cruds")
    edited = {k: v for k, v in visit.items() if k != "meta"}
    edited["status"] = "in-progress"
    r = fhir.put(f"/fhir/Encounter/{visit['id']}", json=edited, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert _writer(engine, visit["id"]) == API
    _refused_at_the_visit_number(mllp, adt("A01", "A01-1", ADMITTED, "V100", ts(2)))
    assert one_visit_numbered(fhir, "V100")["subject"] == visit["subject"]


def test_a_placeholder_whose_writer_is_not_known_is_no_placeholder(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    """A visit stored before the mark (writer None): who wrote it is not known, so it is not taken over."""
    accepted(mllp, _lab("ORU-L1", "L-77", ts(3)))
    visit = one_visit_numbered(fhir, "V100")
    backend: Any = engine.repository.backend
    if hasattr(backend, "current_coll"):
        backend.current_coll.update_many({"type": "Encounter"}, {"$unset": {"writer": ""}})
    else:
        engine.store.execute("UPDATE fhir_resource SET writer = NULL WHERE type = 'Encounter'")
    assert _writer(engine, visit["id"]) is None
    _refused_at_the_visit_number(mllp, adt("A01", "A01-1", ADMITTED, "V100", ts(2)))
    assert one_visit_numbered(fhir, "V100")["subject"] == visit["subject"]


def test_a_second_lis_patient_under_the_placeholder_is_still_refused(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    """Only the visit's owner takes a placeholder over: another lab message does not."""
    accepted(mllp, _lab("ORU-L1", "L-77", ts(3)))
    visit = one_visit_numbered(fhir, "V100")
    _refused_at_the_visit_number(mllp, _lab("ORU-L2", "L-88", ts(2)))
    assert one_visit_numbered(fhir, "V100")["subject"] == visit["subject"]


def test_a_site_without_the_groups_keeps_the_visit_guard_and_takes_over_is_no_key(tmp_path: Path) -> None:
    """The shipped Encounter.subject is ``another_person`` alone; a site whose sources name no
    ``registration`` keeps it; a site's own rule naming ``takes_over`` is refused at load (the key is
    gone with the rule, writerfix31), not read as nothing."""
    shipped = load_merge_file(DEFAULTS_DIR / "merge.yaml")
    assert shipped["resources"]["Encounter"]["subject"] == {"another_person": {"feed": "reject", "problem": "reject",
                                                                                "other": "reject"}}
    defaults = {"modes": {"feed": "keep-if-absent", "api": "replace"}, "conflict": {"feed": "warn", "api": "reject"}}
    site = {"sources": {"his": ["ADT"], "result": ["ORU"], "feed": ["his", "result"], "api": ["api"]},
            "defaults": defaults, "resources": {}}
    rules = laid_over(shipped, site)
    # (``problem``, a group this site lacks, and PPR named nowhere: PPR is in the site's ``other``, ident38)
    assert rules["resources"]["Encounter"]["subject"] == {"another_person": {"feed": "reject", "other": "reject"}}
    assert MergeRules(rules).plan("Encounter", "ADT").elements["subject"].another_person == "reject"

    own = tmp_path / "merge.yaml"
    own.write_text(yaml.safe_dump({
        "sources": {"registration": ["ADT"], "result": ["ORU"], "feed": ["registration", "result"], "api": ["api"]},
        "defaults": defaults,
        "resources": {"Encounter": {"subject": {"another_person": {"feed": "reject"},
                                                "takes_over": {"registration": ["result"]}}}}},
        allow_unicode=True), encoding="utf-8")
    with pytest.raises(Exception, match="takes_over"):
        load_merge_file(own)
