"""acsn43: RGV^O15 (pharmacy/treatment give) was refused AR: each RXG is now a MedicationDispense (the medication
the pharmacy supplies for one scheduled give, ``preparation``) fulfilling the order's MedicationRequest, with the
give's own dosage instruction (its TQ1, RXR, RXG-5/6/7), the fields no rule reads counted for the operator.

HL7 v2.5.1 (and RGV^O01 of v2.4) in 阜宁县人民医院's style (the inpatient pharmacy PHIS, local drug codes, UTF-8), real
bytes over MLLP and ``POST /hl7v2`` into a real engine and store on each backend (``module_eng``: SQLite,
mongomock), read back over ``/fhir`` and ``/admin/fidelity``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, mllp, post
from tests.module_store import module_eng, module_eng_http  # noqa: F401 -- the module's engine and client, each backend

HDR = "MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|{stamp}+0800||{kind}|{control}|P|{version}|||AL|NE|CHN|UNICODE UTF-8\r"
UCUM = "http://unitsofmeasure.org"


def _rgv(control: str, mrn: str, placer: str, *, version: str = "2.5.1", kind: str = "RGV^O15^RGV_O15",
         amount: str = "1.5") -> str:
    """The pharmacy's two gives of one cefuroxime order (08:00 and 20:00), the order's own timing (Q12H from
    08:00) and route before them; the first give's lot, expiry and maker stated; an OBX each (the skin test, the
    drip rate). In
    v2.5.1 each timing is a TQ1 (the order's TIMING, the ENCODING's TIMING_ENCODED, each give's TIMING_GIVE); v2.4
    had no TQ1: its gives state their time in RXG-3 (quantity/timing)."""
    tq1 = version >= "2.5"
    return (HDR.format(app="PHIS", stamp="20261201073000", kind=kind, control=control, version=version)
            + f"PID|1||{mrn}^^^FNXRMYY^MR||李^四||19600101|M\rPV1|1|I|NEU^301^2\r"
            f"ORC|RE|{placer}|||IP||||20261201070000|||1001^王^医生\r"
            + ("TQ1|1||Q12H||||20261201080000\r" if tq1 else "")
            + "RXE|^Q12H^^20261201080000^^R|CN-CEF^头孢呋辛钠注射液^L|1.5||g^克^UCUM\r"
            + ("TQ1|1||Q12H||||20261201080000\r" if tq1 else "") + "RXR|IV^静脉注射^HL70162\r"
            f"RXG|1||^ONCE^^20261201080000^^R|CN-CEF^头孢呋辛钠注射液^L|{amount}||g^克^UCUM|INJ^注射剂^L|"
            "溶于0.9%氯化钠100ml||^NEU-301||||||||B2611|20271231|^华北制药\r"
            + ("TQ1|1||ONCE||||20261201080000\r" if tq1 else "") + "RXR|IV^静脉注射^HL70162\r"
            "OBX|1|ST|SKIN^皮试^L||阴性||||||F|||20261201075000\r"
            "RXG|2||^ONCE^^20261201200000^^R|CN-CEF^头孢呋辛钠注射液^L|1.5||g^克^UCUM\r"
            + ("TQ1|1||ONCE||||20261201200000\r" if tq1 else "") + "RXR|IVGTT^静脉滴注^L\r"
            "OBX|1|NM|DRIP^滴速^L||60|gtt/min^滴/分^UCUM|||||F|||20261201195000\r")


def _written(engine: Engine, http: TestClient, control: str, rtype: str) -> list[dict[str, Any]]:
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None, control
    return [http.get(f"/fhir/{ref}").json() for ref in doc.get("resources") or () if ref.startswith(rtype + "/")]


def _dispenses(http: TestClient, subject: str) -> list[dict[str, Any]]:
    found = http.get("/fhir/MedicationDispense", params={"subject": subject, "_count": 50}).json()
    return sorted((e["resource"] for e in found.get("entry") or ()),
                  key=lambda d: d["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"])


def test_a_give_message_is_a_dispense_a_give_over_mllp(module_eng: Engine, http: TestClient) -> None:
    msg = _rgv("ACSN43G1", "ACSN43G", "ACSN43RX1")
    (ack,) = mllp(module_eng, msg.encode("utf-8"))
    assert ack_code_of(ack) == "AA" and err_lines(ack) == [], ack
    assert ack.decode("utf-8").split("\r")[0].split("|")[8] == "ACK^O15^ACK", ack
    (request,) = _written(module_eng, http, "ACSN43G1", "MedicationRequest")
    subject = request["subject"]["reference"]
    first, second = _dispenses(http, subject)
    for given in (first, second):
        assert given["status"] == "preparation", given
        assert given["authorizingPrescription"] == [{"reference": f"MedicationRequest/{request['id']}"}], given
        assert given["medicationCodeableConcept"]["coding"][0]["code"] == "CN-CEF", given
        assert given["context"]["reference"].startswith("Encounter/"), given
        (dosage,) = given["dosageInstruction"]
        assert dosage["doseAndRate"] == [{"doseQuantity": {"value": 1.5, "unit": "克", "system": UCUM, "code": "g"}}]
        assert dosage["timing"]["code"]["coding"][0]["code"] == "ONCE", dosage  # the give's TQ1, not the order's
    assert first["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"].startswith("2026-12-01T08:00")
    assert second["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"].startswith("2026-12-01T20:00")
    assert first["dosageInstruction"][0]["route"]["coding"][0]["code"] == "IV"
    assert second["dosageInstruction"][0]["route"]["coding"][0]["code"] == "IVGTT"  # its own RXR
    assert first["dosageInstruction"][0]["text"] == "溶于0.9%氯化钠100ml"
    assert "text" not in second["dosageInstruction"][0], second
    # each give's OBX is part of its own give's dispense (not the group's first)
    parts = {o["code"]["coding"][0]["code"]: o["partOf"] for o in _written(module_eng, http, "ACSN43G1", "Observation")}
    assert parts == {"SKIN": [{"reference": f"MedicationDispense/{first['id']}"}],
                     "DRIP": [{"reference": f"MedicationDispense/{second['id']}"}]}, parts
    # the same gives re-sent (a new MSH-10): the same two dispenses, not four
    assert ack_code_of(post(http, msg.replace("|ACSN43G1|", "|ACSN43G1R|"))) == "AA"
    assert [d["id"] for d in _dispenses(http, subject)] == [first["id"], second["id"]]
    r = http.get("/admin/fidelity", params={"institution": "FNXRMYY"})
    assert r.status_code == 200, r.text
    fields = r.json()["institutions"]["FNXRMYY"]["codes"].get("field", {})
    assert {"RXG-8", "RXG-11", "RXG-19", "RXG-20", "RXG-21"} <= set(fields), json.dumps(fields, ensure_ascii=False)
    assert not {"RXG-4", "RXG-5", "RXG-7", "RXG-9"} & set(fields), fields


def test_the_rde_owns_the_order_the_gives_fulfil(module_eng: Engine, http: TestClient) -> None:
    """The HIS's RDE^O11 of the order, then the pharmacy's RGV: one MedicationRequest, as the RDE stated it (BID,
    its own dose text), the gives its dispenses; the RGV's timing of the order (Q12H) does not replace the RDE's."""
    rde = (HDR.format(app="HIS", stamp="20261201070000", kind="RDE^O11^RDE_O11", control="ACSN43E1", version="2.5.1")
           + "PID|1||ACSN43E^^^FNXRMYY^MR||李^四||19600101|M\rPV1|1|I|NEU^301^2\r"
           "ORC|NW|ACSN43RX2|||||||20261201070000|||1001^王^医生\rTQ1|1||BID||||20261201080000\r"
           "RXE|^^^20261201080000^^R|CN-CEF^头孢呋辛钠注射液^L|1.5||g^克^UCUM\rTQ1|1||BID||||20261201080000\r"
           "RXR|IV^静脉注射^HL70162\r")
    assert ack_code_of(post(http, rde)) == "AA"
    (request,) = _written(module_eng, http, "ACSN43E1", "MedicationRequest")
    ack = post(http, _rgv("ACSN43E2", "ACSN43E", "ACSN43RX2"))
    assert ack_code_of(ack) == "AA" and err_lines(ack) == [], ack
    after = http.get(f"/fhir/MedicationRequest/{request['id']}").json()
    assert after["dosageInstruction"] == request["dosageInstruction"], after
    assert after["meta"]["versionId"] == request["meta"]["versionId"], after
    gives = _dispenses(http, request["subject"]["reference"])
    assert [g["authorizingPrescription"] for g in gives] == [[{"reference": f"MedicationRequest/{request['id']}"}]] * 2


def test_a_v24_rgv_o01_and_a_bad_give_amount(module_eng: Engine, http: TestClient) -> None:
    """v2.4's RGV^O01 is the same message, its gives' times in RXG-3 (no TQ1 in v2.4); a give amount that is no
    number (RXG-5 ``1,5``) is a W 102 at RXG-5 and the dispense is filed without the dose (the rest of the give
    stands)."""
    msg = _rgv("ACSN43V1", "ACSN43V", "ACSN43RX3", version="2.4", kind="RGV^O01", amount="1,5")
    ack = post(http, msg)
    assert ack_code_of(ack) == "AA", ack
    assert ack.decode("utf-8").split("\r")[0].split("|")[8] == "ACK^O01^ACK", ack
    (err,) = err_lines(ack)
    assert err == "ERR|RXG^1^5^102&Data type error&HL70357", err  # (v2.4's ERR-1: segment, sequence, field, code)
    (request,) = _written(module_eng, http, "ACSN43V1", "MedicationRequest")
    first, second = _dispenses(http, request["subject"]["reference"])
    assert "doseAndRate" not in first["dosageInstruction"][0], first
    assert second["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 1.5, second
    assert [g["dosageInstruction"][0]["timing"]["code"]["coding"][0]["code"] for g in (first, second)] == ["ONCE"] * 2


def test_each_administrations_obx_is_part_of_its_own_administration(module_eng: Engine, http: TestClient) -> None:
    """The same reading for RAS^O17 (its ADMINISTRATION group repeats in one ORDER): the nurse's two gives, each
    with an OBX after it -- each OBX part of its own administration; it had been part of the group's first."""
    ras = (HDR.format(app="NIS", stamp="20261201210000", kind="RAS^O17^RAS_O17", control="ACSN43A1", version="2.5.1")
           + "PID|1||ACSN43A^^^FNXRMYY^MR||李^四||19600101|M\rPV1|1|I|NEU^301^2\r"
           "ORC|RE|ACSN43RX4|||IP||||20261201070000|||1001^王^医生\r"
           "RXE|^^^20261201080000^^R|CN-CEF^头孢呋辛钠注射液^L|1.5||g^克^UCUM\rTQ1|1||BID||||20261201080000\r"
           "RXR|IV^静脉注射^HL70162\r"
           "RXA|0|1|20261201080500||CN-CEF^头孢呋辛钠注射液^L|1.5|g^克^UCUM||||||||||||CP\rRXR|IV^静脉注射^HL70162\r"
           "OBX|1|ST|SKIN^皮试^L||阴性||||||F|||20261201075000\r"
           "RXA|0|2|20261201200500||CN-CEF^头孢呋辛钠注射液^L|1.5|g^克^UCUM||||||||||||CP\rRXR|IV^静脉注射^HL70162\r"
           "OBX|1|NM|DRIP^滴速^L||60|gtt/min^滴/分^UCUM|||||F|||20261201200000\r")
    ack = post(http, ras)
    assert ack_code_of(ack) == "AA" and err_lines(ack) == [], ack
    given = {g["effectiveDateTime"][:16]: g["id"] for g in _written(module_eng, http, "ACSN43A1",
                                                                     "MedicationAdministration")}
    parts = {o["code"]["coding"][0]["code"]: o["partOf"] for o in _written(module_eng, http, "ACSN43A1", "Observation")}
    assert parts == {"SKIN": [{"reference": f"MedicationAdministration/{given['2026-12-01T08:05']}"}],
                     "DRIP": [{"reference": f"MedicationAdministration/{given['2026-12-01T20:05']}"}]}, parts
