"""``""`` in one field of a choice keeps what the other field stated (convfix15, a reviewer's finding).

HL7 v2.5.1 2.5.3: ``""`` deletes what *that field* stated; an empty field changes nothing. PID-24
(multiple birth indicator) and PID-25 (birth order) both make ``multipleBirth[x]``, PID-30 (death
indicator) and PID-29 (date of death) ``deceased[x]``. conv15 let PID-25 ``""`` take the multiple
birth PID-24 stated with the order, PID-24 ``""`` a birth order PID-25 stated and PID-30 ``""`` a
date of death PID-29 stated (a sender putting ``""`` in every unknown field lost death dates). Now
each deletes its own: what the other field stated stays, in its type of the choice. Real bytes over
MLLP, read back via ``/fhir``; each failed on 7635df3.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv15_nulls import adt, patient
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)


def choices(found: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in found.items() if k.startswith(("deceased", "multipleBirth"))}


def test_a_null_birth_order_keeps_the_multiple_birth(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("M1", "ZY15M", {24: "Y", 25: "2", 29: "20261101", 30: "Y"}),
                adt("N1", "ZY15N", {24: "Y", 25: "2", 29: "20261101", 30: "Y"}),
                adt("M2", "ZY15M", {25: '""', 29: '""'}),  # the order and the date: not the facts
                adt("N2", "ZY15N", {24: '""', 30: '""'}))  # the indicators: not the order nor the date
    assert [ack_code_of(a) for a in acks] == ["AA"] * 4
    assert choices(patient(fhir, "ZY15M")) == {"multipleBirthBoolean": True, "deceasedBoolean": True}
    assert choices(patient(fhir, "ZY15N")) == {"multipleBirthInteger": 2, "deceasedDateTime": "2026-11-01"}
    (ack,) = send(engine, adt("M3", "ZY15M", {24: '""', 25: '""', 29: '""', 30: '""'}))  # both fields
    assert ack_code_of(ack) == "AA"
    assert choices(patient(fhir, "ZY15M")) == {}
