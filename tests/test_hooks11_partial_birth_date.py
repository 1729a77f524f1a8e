"""The patient index's birth-date check at the date's own precision, over a real MLLP socket.

A sender may know only the year (or year and month) of a birth: HL7 PID-7 ``1985``. Such a
record of 王建国 (ID number 32092319850412001X, born 1985-04-12) agrees with his other records
and with his number, so it is linked; a year that contradicts the number is a conflict (HL7's
converter refuses such a PID-7 itself; a FHIR client's Patient reaches the index). Before,
``1985`` was refused as a conflict with a record born 1985-04-12, and a lone record born ``1984``
was linked without its number's date being checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_recognition_e2e import Sender, bearer
from tests.test_recognition_policy_e2e import WANG, community_engine, msh, ts


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from community_engine(tmp_path)


def register(hl7: Sender, inst: str, born: str) -> str:
    """An ADT^A04 of 王建国 at ``inst`` with PID-7 ``born``; the ACK."""
    return hl7.send(msh(inst, "HIS", "ADT^A04^ADT_A01", ts(0), f"{inst}-A04") + f"EVN|A04|{ts(0)}\n"
                    + f"PID|1||{WANG}^^^公安部^NNCHN~MRN-{inst}^^^{inst}^MR||王^建国||{born}|M\n" + "PV1|1|O\n")


def statuses(engine: Engine) -> dict[str, str]:
    """birth date as recorded -> the index's status of that record."""
    return {d["demo"]["birthDate"]: d["status"] for d in engine.identity.links.find({})}


@pytest.mark.parametrize("partial", ["1985", "1985-04"])
def test_a_partial_birth_date_that_agrees_is_linked(engine: Engine, mllp: int, partial: str) -> None:
    hl7 = Sender(mllp)
    register(hl7, "HOSPA", "19850412")
    ack = register(hl7, "HOSPB", partial.replace("-", ""))
    assert "not linked" not in ack, ack
    assert statuses(engine) == {"1985-04-12": "linked", partial: "linked"}
    [a, b] = sorted(d["_id"] for d in engine.identity.links.find({}))
    assert engine.identity.person_compartment(a) == engine.identity.person_compartment(b) == frozenset({a, b})


@pytest.mark.parametrize("wrong", ["1984", "1985-05"])
def test_a_partial_birth_date_that_contradicts_the_number_is_a_conflict(engine: Engine, wrong: str) -> None:
    """Over HL7 the converter refuses such a PID-7 (AE); a FHIR client's Patient reaches the index."""
    http = TestClient(create_app(engine))
    patient = {"resourceType": "Patient", "id": "wang-fhir", "birthDate": wrong, "gender": "male",
               "name": [{"family": "王", "given": ["建国"]}],
               "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                    "code": "NNCHN"}]},
                               "system": "urn:huren:id:NNCHN", "value": WANG}]}
    reply = http.put("/fhir/Patient/wang-fhir", json=patient, headers=bearer(engine, "system/Patient.cruds"))
    assert reply.status_code in (200, 201), reply.text
    assert statuses(engine) == {wrong: "conflict"}
