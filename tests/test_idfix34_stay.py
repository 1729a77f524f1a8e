"""The lab's later result of a stay the HIS's admission took over, when the messages share a batch
(thirty-fourth round, idfix34; rvidentity34 findings 4 and 7 beyond its probes): ``takeover.settle_stay``
reads the visit and the lab's record as EVERY earlier message of the batch leaves them, so one batch and the
same messages sent one after the other get the same answers and leave the same store -- filed where a
single sending is filed, refused where it is refused.

Real HL7 through ``engine.ingestor`` (one batch, or one call per message), the real store (SQLite and
mongomock: the ``engine`` fixture of ``test_visit20_reused_numbers``), FHIR reads over HTTP."""

# ruff: noqa: F811 -- the fixtures imported from test_visit20_reused_numbers are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_identity34_batch import _cr, _filed_in_the_stay
from tests.test_recognition_policy_e2e import msh, ts
from tests.test_visfix33_takeover import _lis_id
from tests.test_visit20_reused_numbers import (  # noqa: F401 -- fixtures
    accepted,
    adt,
    engine,
    fhir,
    one_visit_numbered,
    patient_id,
    pv1,
    read,
)
from tests.test_visit33_takeover import ADMITTED, _lab


def _his_record_with_the_lis_number() -> str:
    """The HIS registers 李一 (MRN-C) with the LIS's L-77 beside his MRN: the number, and its stay, are his."""
    when = ts(4, 20)
    return (msh("HOSPA", "HIS", "ADT^A04^ADT_A01", when, "A04-C") + f"EVN|A04|{when}\n"
            + "PID|1||MRN-C^^^HOSPA^MR~L-77^^^LIS^PI||李^一||19500101|M\n" + pv1("V901", when, "O"))


# each: the messages in order, the answers, and whether the stay ends the admitted record's with both
# results in it (else the visit stays the lab record's)
SEQUENCES = {
    "result, admission, update, result": (
        [_lab("ORU-L1", "L-77^^^LIS^PI", ts(5)), adt("A01", "A01-1", ADMITTED, "V100", ts(4)),
         adt("A08", "A08-1", ADMITTED, "V100", ts(4, 10)), _lab("ORU-L2", "L-77^^^LIS^PI", ts(3))],
        ["AA", "AA", "AA", "AA"], True),
    # the admission refused (the lab's record is another man): the next result files under the lab's visit
    "admission refused": (
        [_lab("ORU-L1", "L-77^^^LIS^PI", ts(5), who="王^二||19800101|F"), adt("A01", "A01-1", ADMITTED, "V100", ts(4)),
         _lab("ORU-L2", "L-77^^^LIS^PI", ts(3), who="王^二||19800101|F")],
        ["AA", "AE", "AA"], False),
    # after the take-over the HIS registers the LIS's number beside another record's MRN: the lab's record is
    # no stand-in any more (another record carries its number), its next result is not filed in the stay
    "number registered for another": (
        [_lab("ORU-L1", "L-77^^^LIS^PI", ts(5)), adt("A01", "A01-1", ADMITTED, "V100", ts(4)),
         _his_record_with_the_lis_number(), _lab("ORU-L2", "L-77^^^LIS^PI", ts(3))],
        ["AA", "AA", "AA", "AE"], None),
}


@pytest.mark.parametrize("how", ["batch", "singly"])
@pytest.mark.parametrize("name", list(SEQUENCES))
def test_batch_and_single_agree(engine: Engine, fhir: TestClient, name: str, how: str) -> None:
    messages, codes, taken = SEQUENCES[name]
    items = [(_cr(m), "file", f"file:{n}") for n, m in enumerate(messages)]
    if how == "batch":
        outcomes = engine.ingestor.process(items)
    else:
        outcomes = [o for item in items for o in engine.ingestor.process([item])]
    assert [ack_code_of(o.ack) for o in outcomes] == codes, [o.ack for o in outcomes]
    if codes[-1] == "AE":
        assert b"PV1^1^19" in outcomes[-1].ack, outcomes[-1].ack
    if taken:
        _filed_in_the_stay(fhir, 2)
    elif taken is False:
        visit = one_visit_numbered(fhir, "V100")
        assert visit["subject"]["reference"] == f"Patient/{_lis_id(fhir)}"
        assert {o["encounter"]["reference"] for o in read(fhir, "Observation")} == {f"Encounter/{visit['id']}"}
    else:  # the stay stays the admitted record's; only the first result is in it
        assert one_visit_numbered(fhir, "V100")["subject"]["reference"] == f"Patient/{patient_id(fhir, 'MRN-V1')}"
        assert len(read(fhir, "Observation")) == 1


def test_an_update_of_the_stay_and_the_next_result_batched_after_the_stored_admission_are_filed(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    """The lab's result and the admission stored; then one batch: the HIS's A08 of the stay, the lab's next
    result. Both AA, as singly (the A08 had made the visit "stated in the batch" and the result was
    refused at PV1-19)."""
    accepted(mllp, _lab("ORU-L1", "L-77^^^LIS^PI", ts(5)))
    accepted(mllp, adt("A01", "A01-1", ADMITTED, "V100", ts(4)))
    outcomes = engine.ingestor.process([(_cr(adt("A08", "A08-1", ADMITTED, "V100", ts(4, 10))), "file", "file:1"),
                                        (_cr(_lab("ORU-L2", "L-77^^^LIS^PI", ts(3))), "file", "file:2")])
    assert [ack_code_of(o.ack) for o in outcomes] == ["AA", "AA"], [o.ack for o in outcomes]
    _filed_in_the_stay(fhir, 2)
