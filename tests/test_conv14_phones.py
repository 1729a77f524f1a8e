"""PID-13/PID-14 ``""`` deletes the stored numbers of the field's use (conv14).

HL7 v2 (v2.5 chapter 2): a field sent as ``""`` deletes the value, an empty field changes nothing.
PID-13 (home phone) and PID-14 (business phone) deleted no number since uses11 -- the stored
Patient does not say which field a number came from. Now PID-13 ``""`` deletes the stored phone
numbers of use home, PID-14 ``""`` those of use work; a mobile, a temporary number and an e-mail
address stay, as does a number the message states again (PID-40). Real bytes over MLLP into the
real store, read back by ``GET /fhir/Patient`` searches; the deletes failed on 1cd55c0.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_kinds11_reviewed import adt, phone

MRN = "ZY11001"


def patient(fhir: TestClient, **params: str) -> list[dict[str, Any]]:  # noqa: F811
    response = fhir.get("/fhir/Patient", params=params)
    assert response.status_code == 200
    return [e["resource"] for e in response.json().get("entry", ())]


def test_a_null_phone_field_deletes_its_use_an_empty_one_keeps(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("H1", "A01", pid13="^PRN^PH^^^^051288001~^NET^Internet^wang@example.cn~^PRN^FX^^^^051288009",
                            pid14="^WPN^PH^^^^051288002"),
                adt("H2", "A08"))  # PID-13 and PID-14 empty: no change
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    (found,) = patient(fhir, identifier=MRN)
    email = {"system": "email", "value": "wang@example.cn", "use": "home"}
    fax = {"system": "fax", "value": "051288009", "use": "home"}
    assert found["telecom"] == [phone("051288001", "home"), email, fax, phone("051288002", "work")]

    (ack,) = send(engine, adt("H3", "A08", pid13='""'))
    assert ack_code_of(ack) == "AA"
    (found,) = patient(fhir, identifier=MRN)
    assert found["telecom"] == [email, phone("051288002", "work")]  # the home phone and fax are gone
    # nor is a resident's sign-in code sent to the deleted number any more (the patient index's phones)
    assert engine.identity.phones([found["id"]]) == ["051288002"]
    assert patient(fhir, phone="051288001") == []  # and no longer found by them
    assert [p["id"] for p in patient(fhir, phone="051288002")] == [found["id"]]

    # PID-14 "" with a work number stated again in PID-40 (v2.7): that one stays, nothing else of work
    acks = send(engine, adt("H4", "A08", pid14="^WPN^PH^^^^051288003"),
                adt("H5", "A08", pid14='""', pid40="^WPN^PH^^^^051288003"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    (found,) = patient(fhir, identifier=MRN)
    assert found["telecom"] == [email, phone("051288003", "work")]
    (ack,) = send(engine, adt("H6", "A08", pid14='""'))
    assert ack_code_of(ack) == "AA"
    (found,) = patient(fhir, identifier=MRN)
    assert found["telecom"] == [email]
