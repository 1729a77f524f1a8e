"""rvprivfix28: the rise's cost grows with every other patient's records of the citing types.

privfix28's rise reads a citing type's records "naming no patient" by ``<compartment param>:missing=true``
(``_no_patient``): on SQLite no index answers "no row", so each rise scans every stored record of
ServiceRequest, Procedure... of the whole county. A rise runs on every write group storing a result
labelled higher than before -- a hospital's relabelling PUT, and every new labelled result (an MDM
with TXA-18 R writes its text Observations labelled). Measured (this checkout, SQLite, /dev/shm):
a labelling PUT 14.6 ms on an empty store, 41.9 ms with 20,000 other patients' orders, 67.4 ms with
60,000 (before privfix28: 5.3 and 5.5 ms) -- linear, ~0.9 us per stored order, seconds at a county's
millions. The test counts SQLite's virtual-machine steps (a progress handler on the store's own
connection: deterministic, not a clock) of one rise before and after 3,000 other patients' orders are
stored: the rise of one patient's result must not read them. Worse for the 18 citing types whose
Patient compartment parameters this deployment leaves empty (CarePlan, Composition, QuestionnaireResponse,
Communication, Goal, List, RiskAssessment...): ``_no_patient`` gives no clause and the rise reads every
stored record of the type: a labelling PUT 620 ms with 20,000 other patients' CarePlans (14.6 ms without).
"""

from __future__ import annotations

import pytest

from engine.engine import Engine
from engine.settings import Settings

SEC = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def _obs(oid: str) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": {"text": "HIV抗体"},
            "subject": {"reference": "Patient/rv28-p1"}, "valueString": "阴性", "effectiveDateTime": "2025-03-11",
            "performer": [{"identifier": {"system": "urn:huren:institution", "value": "FNXRMYY"}}]}


def _steps_of_a_rise(engine: Engine, oid: str) -> int:
    repo = engine.repository
    repo.update(_obs(oid))
    conn = repo.store._conn  # the store's own connection: the rise runs in the write's transaction
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    conn.set_progress_handler(tick, 100)
    try:
        repo.update({**_obs(oid), "meta": {"security": [{"system": SEC, "code": "R"}]}})
    finally:
        conn.set_progress_handler(None, 100)
    assert repo.read("Observation", oid)["meta"]["security"][0]["code"] == "R"
    return count[0]


@pytest.fixture
def engine(tmp_path):  # one a type: the other type's records would raise "before"
    e = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0))
    try:
        e.repository.update({"resourceType": "Patient", "id": "rv28-p1"})
        yield e
    finally:
        e.close()


# ServiceRequest: read by ``subject:missing=true&performer:missing=true`` (a scan of the type). CarePlan (and
# Composition, QuestionnaireResponse, Communication, Goal, List... 18 citing types whose ``compartment_params``
# is empty here): ``_no_patient`` gives ``[]``, so the rise reads *every* stored record of the type, bodies
# and all, into memory -- each rise of any patient's result
_OTHERS = {
    "ServiceRequest": lambda j: {"status": "active", "intent": "order", "code": {"text": "血常规"}},
    "CarePlan": lambda j: {"status": "active", "intent": "plan", "title": "慢病随访"},
}


@pytest.mark.parametrize("rtype", sorted(_OTHERS))
def test_a_rise_does_not_read_other_patients_records(engine, rtype):
    before = _steps_of_a_rise(engine, f"rv28-{rtype}-o1")
    for start in range(0, 3000, 1000):
        engine.repository.write_many([{"resourceType": rtype, "id": f"rv28-{rtype}-{j}", **_OTHERS[rtype](j),
                                       "subject": {"reference": f"Patient/rv28-other{j}"}}
                                      for j in range(start, start + 1000)])
    after = _steps_of_a_rise(engine, f"rv28-{rtype}-o2")
    assert after < 1.5 * before + 50, f"one rise: {before} -> {after} x100 SQLite steps with 3,000 other {rtype}s"
