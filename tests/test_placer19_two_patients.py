"""One order number, two patients (nineteenth round, placer19): HL7 over a real MLLP socket, the
real store (SQLite and MongoDB through mongomock).

A placer order number (ORC-2/OBR-2, EI with its namespace) is unique within the placer application
(HL7 v2 ch. 4), but a HIS sequence restarts (per year, per department): two orders of two patients
came under ``B9^HIS`` and the second re-filed the first patient's order under the second patient
(one ServiceRequest, version 2), so results matched to it by number landed on the wrong person. A
later message naming another PERSON under a stored order number -- the patient index says so -- is
refused (AE, ERR at the field that keyed the order), nothing written, the message kept for replay.
Records of one person (linked by ID number, merged by an A40, an ID number corrected) still pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.conftest import mllp_send
from tests.test_recognition_policy_e2e import CBC, INSTITUTIONS, msh, ts


@pytest.fixture(params=[{}, {"mongodb_uri": "mongomock://"}], ids=["sqlite", "mongomock"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site, **request.param)) as eng:
        yield eng


def nid(n: int) -> str:
    """A valid resident ID number (GB 11643 check character), one per ``n``."""
    body = f"11010119700101{n:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def pid(mrn: str, number: int | None, name: str) -> str:
    ids = (f"{nid(number)}^^^公安部^NNCHN~" if number is not None else "") + f"{mrn}^^^HOSPA^MR"
    sex = "F" if number is not None and number % 2 == 0 else "M"  # the ID number's 17th digit
    return f"PID|1||{ids}||{name}||19700101|{sex}\n"


def orm(control: str, patient: str, placer: str, when: str) -> str:
    return (msh("HOSPA", "HIS", "ORM^O01^ORM_O01", when, control) + patient
            + f"ORC|NW|{placer}^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|1|{placer}^HIS||{CBC}|||{when}\n")


def oru(control: str, patient: str, placer: str, filler: str, when: str) -> str:
    numbers = (f"{placer}^HIS" if placer else "") + "|" + (f"{filler}^LIS" if filler else "")
    return (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, control) + patient
            + f"OBR|1|{numbers}|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{when}\n")


def send(port: int, text: str) -> tuple[str, list[list[str]]]:
    """MSA-1 and the ERR segments (fields) of the ACK to ``text`` sent over a real MLLP socket."""
    ack = mllp_send(port, text.replace("\n", "\r").encode("utf-8"))
    segments = [s.split("|") for s in ack.split("\r") if s]
    (msa,) = [s for s in segments if s[0] == "MSA"]
    return msa[1], [s for s in segments if s[0] == "ERR"]


def patient_id(engine: Engine, mrn: str) -> str:
    (patient,) = engine.repository.search("Patient", [("identifier", mrn)]).resources
    return str(patient["id"])


def all_of(engine: Engine, rtype: str) -> list[dict[str, Any]]:
    return list(engine.repository.search(rtype, []).resources)


def refused(engine: Engine, port: int, text: str, control: str, field: str) -> None:
    """AE with ERR 205 (duplicate key) at ``field`` naming the other patient; nothing written, the
    message kept (quarantined) for replay."""
    code, errs = send(port, text)
    assert code == "AE", errs
    (err,) = [e for e in errs if e[4] == "E"]
    assert err[2] == field and err[3].startswith("205^"), err
    assert "another patient" in err[8] and "patient index" in err[8], err[8]
    doc = engine.ingestor.messages.get(message_id("HOSPA", control))
    assert doc is not None and doc["status"] == "quarantined" and not doc.get("resources"), doc


def test_a_second_patient_under_a_stored_placer_number_is_refused(engine: Engine, mllp: int) -> None:
    assert send(mllp, orm("ORM-1", pid("MRN-X1", 1, "李^一"), "B9", ts(2)))[0] == "AA"
    one = patient_id(engine, "MRN-X1")
    refused(engine, mllp, orm("ORM-2", pid("MRN-X2", 2, "王^二"), "B9", ts(1)), "ORM-2", "OBR^1^2")
    (order,) = all_of(engine, "ServiceRequest")
    assert order["subject"]["reference"] == f"Patient/{one}" and order["meta"]["versionId"] == "1"
    assert not engine.repository.search("Patient", [("identifier", "MRN-X2")]).resources
    # the result for the second patient naming B9 is refused too: it lands on no one's order
    refused(engine, mllp, oru("ORU-2", pid("MRN-X2", 2, "王^二"), "B9", "F9", ts(1, 10)), "ORU-2", "OBR^1^2")
    assert not all_of(engine, "DiagnosticReport") and not all_of(engine, "Observation")
    # the first patient's result is stored on the first patient's order
    assert send(mllp, oru("ORU-1", pid("MRN-X1", 1, "李^一"), "B9", "F9", ts(1, 11)))[0] == "AA"
    (order,) = all_of(engine, "ServiceRequest")
    assert order["subject"]["reference"] == f"Patient/{one}" and order["status"] == "completed"
    (report,) = all_of(engine, "DiagnosticReport")
    assert report["subject"]["reference"] == f"Patient/{one}"


def test_a_second_patient_under_a_stored_filler_number_is_refused(engine: Engine, mllp: int) -> None:
    assert send(mllp, oru("ORU-1", pid("MRN-X1", 1, "李^一"), "", "F7", ts(2)))[0] == "AA"
    one = patient_id(engine, "MRN-X1")
    refused(engine, mllp, oru("ORU-2", pid("MRN-X2", 2, "王^二"), "", "F7", ts(1)), "ORU-2", "OBR^1^3")
    (order,) = all_of(engine, "ServiceRequest")
    assert order["subject"]["reference"] == f"Patient/{one}"
    # the filler number again under another placer number: a new order, but the report (keyed by
    # the filler number) and its results would be re-filed under the second patient
    refused(engine, mllp, oru("ORU-3", pid("MRN-X2", 2, "王^二"), "B10", "F7", ts(1, 10)), "ORU-3", "OBR^1^3")
    (order,) = all_of(engine, "ServiceRequest")
    (report,) = all_of(engine, "DiagnosticReport")
    assert report["subject"]["reference"] == f"Patient/{one}" and report["meta"]["versionId"] == "1"
    assert {r["subject"]["reference"] for r in all_of(engine, "Observation")} == {f"Patient/{one}"}
    assert {r["meta"]["versionId"] for r in all_of(engine, "Observation")} == {"1"}


def test_another_record_of_the_same_person_passes(engine: Engine, mllp: int) -> None:
    """The patient index links two MRNs with one ID number: one person, the result is stored."""
    assert send(mllp, orm("ORM-1", pid("MRN-X1", 1, "李^一"), "B9", ts(2)))[0] == "AA"
    code, errs = send(mllp, oru("ORU-1", pid("MRN-X5", 1, "李^一"), "B9", "F9", ts(1)))
    assert code == "AA", errs
    (order,) = all_of(engine, "ServiceRequest")
    assert order["subject"]["reference"] == f"Patient/{patient_id(engine, 'MRN-X5')}"


def test_a_merge_between_order_and_result_passes(engine: Engine, mllp: int) -> None:
    """Records without an ID number merged by an ADT^A40: the survivor's result finds the order."""
    assert send(mllp, orm("ORM-1", pid("MRN-X1", None, "李^一"), "B9", ts(3)))[0] == "AA"
    a40 = (msh("HOSPA", "HIS", "ADT^A40^ADT_A39", ts(2), "A40-1") + f"EVN|A40|{ts(2)}\n"
           + pid("MRN-X3", None, "李^一") + "MRG|MRN-X1^^^HOSPA^MR\n")
    assert send(mllp, a40)[0] == "AA"
    code, errs = send(mllp, oru("ORU-1", pid("MRN-X3", None, "李^一"), "B9", "F9", ts(1)))
    assert code == "AA", errs
    (order,) = all_of(engine, "ServiceRequest")
    assert order["subject"]["reference"] == f"Patient/{patient_id(engine, 'MRN-X3')}"
    # ... and a patient with no ID number who is not merged is another patient
    refused(engine, mllp, oru("ORU-2", pid("MRN-X4", None, "王^二"), "B9", "F9", ts(1, 11)), "ORU-2", "OBR^1^2")


def test_a_corrected_id_number_passes(engine: Engine, mllp: int) -> None:
    assert send(mllp, orm("ORM-1", pid("MRN-X1", 1, "李^一"), "B9", ts(3)))[0] == "AA"
    a08 = (msh("HOSPA", "HIS", "ADT^A08^ADT_A01", ts(2), "A08-1") + f"EVN|A08|{ts(2)}\n"
           + pid("MRN-X1", 6, "李^一") + "PV1|1|O\n")
    assert send(mllp, a08)[0] == "AA"
    code, errs = send(mllp, oru("ORU-1", pid("MRN-X1", 6, "李^一"), "B9", "F9", ts(1)))
    assert code == "AA", errs
    (order,) = all_of(engine, "ServiceRequest")
    assert order["subject"]["reference"] == f"Patient/{patient_id(engine, 'MRN-X1')}"


def test_a_failed_message_does_not_make_two_patients_one_person(engine: Engine) -> None:
    """(a review's finding) An ADT^A08 giving 李一's namesake X2 李一's ID number fails while it is
    stored (the store refuses its Encounter, as a full disk would): nothing of it is stored, but the
    patient index's finding for X2's new version stayed with the ingest thread, and ``same_person``
    took it -- X2 was 'the same person' as X1 and X2's order under X1's number B9 re-filed X1's order
    under X2. The index answers from what is stored, or from a finding for the very version this
    write group is storing."""
    failing = "V9FAIL"

    def refuse(resource: dict[str, Any], previous: Any) -> None:
        if any(isinstance(i, dict) and i.get("value") == failing for i in resource.get("identifier") or ()):
            raise RuntimeError("disk trouble for this message")

    engine.repository.add_write_guard(refuse, types={"Encounter"})

    def process(text: str) -> Any:
        [outcome] = engine.ingestor.process([(text.replace("\n", "\r").encode("utf-8"), "mllp", "t")])
        return outcome

    assert process(orm("ORM-1", pid("MRN-X1", 1, "李^一"), "B9", ts(5))).code == "AA"
    assert process(orm("ORM-2", pid("MRN-X2", 3, "李^一"), "B2", ts(4))).code == "AA"
    one, two = patient_id(engine, "MRN-X1"), patient_id(engine, "MRN-X2")
    a08 = (msh("HOSPA", "HIS", "ADT^A08^ADT_A01", ts(3), "A08-F") + f"EVN|A08|{ts(3)}\n"
           + pid("MRN-X2", 1, "李^一") + f"PV1|1|O|||||||||||||||||{failing}\n")
    assert process(a08).code == "AE"
    assert not engine.identity.same_person(one, two)
    assert process(orm("ORM-B", pid("MRN-X2", 3, "李^一"), "B9", ts(2))).code == "AE"
    [b9] = [o for o in all_of(engine, "ServiceRequest") if o["identifier"][0]["value"] == "B9"]
    assert (b9["subject"]["reference"], b9["meta"]["versionId"]) == (f"Patient/{one}", "1")
