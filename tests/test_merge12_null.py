"""HL7's explicit null ``""`` in OBX-5, PID-7 and PID-8 deletes the stored value (merge12).

HL7 v2 chapter 2: a field sent as ``""`` deletes the value the receiver holds; an empty field is
"no change". merge11 made OBX-8 and PID-11/15/16/29 delete; OBX-5, PID-7 and PID-8 still deleted
nothing, so a lab could not withdraw a value from a result it keeps final (the value stood, and the
ACK even said "a value stated earlier stands"), nor a registration a wrong birth date or sex.
Now OBX-5 ``""`` deletes the value and the components its repetitions made: the result is stored
data-absent as R4 allows (obs-6: a reason, no value); PID-7 ``""`` the birth date and its
birth-time extension (the other extensions stay), PID-8 ``""`` the sex. What was deleted is named
in the message store's record of the message (severity I), and the earlier version, with the value, stays in the history.

Real bytes over MLLP into the real store, read back through ``/fhir``; each failed before.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_ingest_durability import err_fields
from tests.test_merge11_kinds import stored


def result(control: str, obx5: str, hour: str) -> bytes:
    return (
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101{hour}1500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
        "PID|1||M0041^^^FNXRMYY^MR||钱^七||19800101|M\r"
        "OBR|1|ORD-V|LAB-V|GLU^血糖^L|||20261101083000|||||||20261101083500|BLD||||||||20261101091000|||F\r"
        f"OBX|1|NM|GLU^葡萄糖^L||{obx5}|mmol/L|3.9-6.1|H|||C|||20261101090000\r"
    ).encode()


def adt(control: str, event: str, pid7: str, pid8: str) -> bytes:
    return (
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20261101090000||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
        f"EVN|{event}|20261101090000\r"
        f"PID|1||ZY12001^^^FNXRMYY^MR||孙^八^^^^^L|周|{pid7}|{pid8}\r"
        "PV1|1|O\r"
    ).encode()


def informed(engine: Engine, control: str) -> list[str]:
    """What the message store keeps of the message as information (an ACK leaves severity I out)."""
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    return [e["message"] for e in doc["errors"] if e["severity"] == "I"]


def test_a_null_value_deletes_the_value_and_its_components(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, result("V1", "7.9~8.1", "09"), result("V2", "", "10"))
    obs = stored(engine, fhir, "V2", "Observation")
    assert obs["valueQuantity"]["value"] == 7.9 and obs["component"]  # empty: no change
    assert not informed(engine, "V2")

    acks += send(engine, result("V3", '""', "11"), result("V4", '""', "12"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 4
    obs = stored(engine, fhir, "V4", "Observation")
    assert "valueQuantity" not in obs and "component" not in obs
    assert obs["dataAbsentReason"]["coding"][0]["code"] == "unknown" and obs["status"] == "corrected"
    assert obs["referenceRange"] and obs["interpretation"]  # what the message did not null stays
    # the message's record names what went (once: the resend deletes nothing more); no warning
    assert informed(engine, "V3") == ['Observation.valueQuantity: deleted by this ORU message\'s explicit null (HL7 ""); '
                                 "the earlier version keeps it (_history)",
                                 'Observation.component: deleted by this ORU message\'s explicit null (HL7 ""); '
                                 "the earlier version keeps it (_history)"]
    assert not informed(engine, "V4") and not [e for e in err_fields(acks[2]) if e[4] == "W"]
    history = fhir.get(f"/fhir/Observation/{obs['id']}/_history").json()
    assert any(e["resource"].get("valueQuantity", {}).get("value") == 7.9 for e in history["entry"])

    # a value sent later is stored again, without the reason
    (ack,) = send(engine, result("V5", "5.0", "13"))
    obs = stored(engine, fhir, "V5", "Observation")
    assert obs["valueQuantity"]["value"] == 5.0 and "dataAbsentReason" not in obs


MAIDEN = {"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", "valueString": "周"}


def test_a_null_birth_date_and_sex_delete_them(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("B1", "A01", "198504120830", "F"))
    acks += send(engine, adt("B2", "A08", "", ""))
    patient = stored(engine, fhir, "B2", "Patient")
    assert patient["birthDate"] == "1985-04-12" and patient["gender"] == "female"  # empty: no change
    assert patient["extension"] == [MAIDEN]
    assert patient["_birthDate"]["extension"][0]["valueDateTime"] == "1985-04-12T08:30:00+08:00"  # convfid27

    acks += send(engine, adt("B3", "A08", '""', '""'))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3
    patient = stored(engine, fhir, "B3", "Patient")
    assert "birthDate" not in patient and "gender" not in patient
    assert patient["extension"] == [MAIDEN]  # the mother's maiden name stays
    assert "_birthDate" not in patient  # the birth time went with the date
    assert len(informed(engine, "B3")) == 3

    (ack,) = send(engine, adt("B4", "A08", "19850413", "F"))
    patient = stored(engine, fhir, "B4", "Patient")
    assert patient["birthDate"] == "1985-04-13" and patient["gender"] == "female"
