"""A take-over of a lab's placeholder visit and the lab's next result in ONE batch (identity34; visfix33 left
it refused while the same two messages sent one after the other are filed). Batch and single agree: the
result is settled against the visit as the batch's admission leaves it (``takeover.settle_stay``), as
ingest settles other checks against the batch's earlier messages. Real HL7 through ``engine.ingestor``'s
batch (FHS/BHS over ``POST /hl7v2`` too), the real store (SQLite and mongomock: the ``engine`` fixture of
``test_visit20_reused_numbers``), FHIR reads over HTTP."""

# ruff: noqa: F811 -- the fixtures imported from test_visit20_reused_numbers are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_recognition_policy_e2e import ts
from tests.test_visfix33_takeover import _lis_id
from tests.test_visit20_reused_numbers import (  # noqa: F401 -- fixtures
    accepted,
    adt,
    engine,
    fhir,
    one_visit_numbered,
    patient_id,
    read,
)
from tests.test_visit33_takeover import ADMITTED, _lab


def _cr(text: str) -> bytes:
    return text.replace("\n", "\r").encode()


def _filed_in_the_stay(fhir: TestClient, results: int) -> None:
    visit = one_visit_numbered(fhir, "V100")
    assert visit["subject"]["reference"] == f"Patient/{patient_id(fhir, 'MRN-V1')}"
    found = read(fhir, "Observation")
    assert len(found) == results
    for result in found:
        assert result["subject"]["reference"] == f"Patient/{_lis_id(fhir)}"
        assert result["encounter"]["reference"] == f"Encounter/{visit['id']}"


def test_the_admission_and_the_stay_s_next_result_in_one_batch_are_both_filed(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    """The lab's result filed; then one batch: the HIS's admission taking the visit over, the lab's next
    result of the stay. Both AA, as sent one after the other: the result in the stay, under the lab's
    record."""
    accepted(mllp, _lab("ORU-L1", "L-77^^^LIS^PI", ts(5)))
    outcomes = engine.ingestor.process([(_cr(adt("A01", "A01-1", ADMITTED, "V100", ts(4))), "file", "file:1"),
                                        (_cr(_lab("ORU-L2", "L-77^^^LIS^PI", ts(3))), "file", "file:2")])
    assert [b"MSA|AA|" in o.ack for o in outcomes] == [True, True], [o.ack for o in outcomes]
    _filed_in_the_stay(fhir, 2)


def test_the_batch_s_result_is_refused_when_the_batch_s_admission_is(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    """The batch's admission refused (another man under the visit number): the result leaned on it is
    settled again against the store as it is -- its own visit, under its own record -- and filed there."""
    accepted(mllp, _lab("ORU-L1", "L-77^^^LIS^PI", ts(5), who="王^二||19800101|M"))
    outcomes = engine.ingestor.process([(_cr(adt("A01", "A01-1", ADMITTED, "V100", ts(4))), "file", "file:1"),
                                        (_cr(_lab("ORU-L2", "L-77^^^LIS^PI", ts(3), who="王^二||19800101|M")),
                                         "file", "file:2")])
    assert b"MSA|AE|" in outcomes[0].ack and b"MSA|AA|" in outcomes[1].ack, [o.ack for o in outcomes]
    assert one_visit_numbered(fhir, "V100")["subject"]["reference"] == f"Patient/{_lis_id(fhir)}"


def test_a_batch_s_admission_of_another_lab_record_leaves_the_result_refused(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    """The batch's admission takes the visit from L-77; the batch's result names another lab record (L-88)
    under the number: refused, as when sent singly after the admission."""
    accepted(mllp, _lab("ORU-L1", "L-77^^^LIS^PI", ts(5)))
    outcomes = engine.ingestor.process([(_cr(adt("A01", "A01-1", ADMITTED, "V100", ts(4))), "file", "file:1"),
                                        (_cr(_lab("ORU-L2", "L-88^^^LIS^PI", ts(3))), "file", "file:2")])
    assert b"MSA|AA|" in outcomes[0].ack and b"MSA|AE|" in outcomes[1].ack, [o.ack for o in outcomes]


def test_the_lab_s_result_and_the_admission_in_one_batch_are_both_filed(engine: Engine, fhir: TestClient) -> None:
    """visit33 refused the admission batched after the lab's first result (the placeholder not stored when
    the admission was settled); sent singly the admission takes the visit over. Now batch and single
    agree: AA both, the visit the admitted record's, the result under the lab's record in the stay, the
    take-over told (W at PV1-19)."""
    outcomes = engine.ingestor.process([(_cr(_lab("ORU-L1", "L-77^^^LIS^PI", ts(5))), "file", "file:1"),
                                        (_cr(adt("A01", "A01-1", ADMITTED, "V100", ts(4))), "file", "file:2")])
    assert [b"MSA|AA|" in o.ack for o in outcomes] == [True, True], [o.ack for o in outcomes]
    assert b"PV1^1^19" in outcomes[1].ack and b"taken over" in outcomes[1].ack, outcomes[1].ack
    _filed_in_the_stay(fhir, 1)


def test_a_batch_whose_lab_result_names_another_man_is_not_taken_over(engine: Engine, fhir: TestClient) -> None:
    """The batch's lab record contradicts the admitted person (name, sex and birth date): refused, as singly."""
    outcomes = engine.ingestor.process([
        (_cr(_lab("ORU-L1", "L-77^^^LIS^PI", ts(5), who="王^二||19800101|F")), "file", "file:1"),
        (_cr(adt("A01", "A01-1", ADMITTED, "V100", ts(4))), "file", "file:2")])
    assert b"MSA|AA|" in outcomes[0].ack and b"MSA|AE|" in outcomes[1].ack, [o.ack for o in outcomes]
    assert one_visit_numbered(fhir, "V100")["subject"]["reference"] == f"Patient/{_lis_id(fhir)}"
