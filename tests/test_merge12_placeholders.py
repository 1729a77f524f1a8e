"""What a converter writes where the message stated nothing never replaces a stored value (merge12).

Two required elements are filled by the converter when the message leaves them out, with a
warning: an order code (OBR-4 empty) is marked data-absent, a result status (OBX-11 empty or not
in the site's table) is read as "unknown". Feeds combine ``keep-if-absent``, so such a filler
counted as a value: a result message with OBR-4 empty replaced the code the HIS order stated with
"unknown", and a result re-sent with OBX-11 empty took a final result back to "unknown".

Real bytes over MLLP into the real store, read back through ``/fhir``; each failed before.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_ingest_durability import err_fields
from tests.test_merge11_kinds import stored

PID = "PID|1||M0051^^^FNXRMYY^MR||周^九||19700101|F\r"


def order(control: str) -> bytes:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101080000||ORM^O01^ORM_O01|{control}|P|2.5.1\r"
            + PID + "ORC|NW|ORD-P\r" + "OBR|1|ORD-P||GLU^血糖^L|||20261101083000\r").encode()


def result(control: str, obr4: str, obx11: str, hour: str) -> bytes:
    return (
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101{hour}1500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
        + PID + f"OBR|1|ORD-P|LAB-P|{obr4}|||20261101083000|||||||20261101083500|BLD||||||||20261101091000|||F\r"
        + f"OBX|1|NM|GLU^葡萄糖^L||5.2|mmol/L|3.9-6.1||||{obx11}|||20261101090000\r"
    ).encode()


def test_a_filler_for_what_the_message_left_out_replaces_nothing(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, order("P1"), result("P2", "", "F", "09"), result("P3", "", "", "10"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3
    # each message was told what it left out (the converter's warnings, as before)
    assert any("OBR-4" in e[-1] for e in err_fields(acks[1]))
    assert any("OBX-11" in e[-1] for e in err_fields(acks[2]))
    request = stored(engine, fhir, "P3", "ServiceRequest")
    assert request["code"]["coding"][0]["code"] == "GLU" and "extension" not in request["code"]
    assert stored(engine, fhir, "P3", "Observation")["status"] == "final"

    # a status stated later replaces it, as any value does
    (ack,) = send(engine, result("P4", "GLU^血糖^L", "C", "11"))
    assert stored(engine, fhir, "P4", "Observation")["status"] == "corrected"
