"""fam42: OMI^O23 imaging orders, OMP^O09, ORU^R30 and the ELR fields OBX-18/19/25 (review rv42b MED 5, MED 4), the real path.

HL7 v2.5.1 written for these tests in 阜宁县人民医院's style (RIS, LIS; local codes, UTF-8), sent over a real MLLP
socket or ``POST /hl7v2`` into a real engine and store on each backend (``module_eng``: SQLite, mongomock), read
back over ``/fhir`` as served and through ``/admin/fidelity`` as an operator reads it:

- an OMI^O23 of two orders is stored as two imaging ServiceRequests, each with its own IPC's accession number,
  Study Instance UID and modality (each group had read the message's first IPC), answered ``ACK^O23^ACK`` AA;
- the OMI and an ORM^O01 of the same placer number are one order (the one order converter, one identity);
- OBX-18 is the result's ``device`` by identifier, OBX-19 its analysis-date-time extension, on every result of a
  shape met before as on the first (a compiled plan never gives one result another's analysis time or director);
- OBX-25 is a PractitionerRole MDIR performer that leaves whose result recognition reads alone, and stays through
  a correction naming only the observer and through OBX-16 "";
- OBX-24 and IPC-2 (no rule reads them) are counted in the fidelity report;
- an OMP^O09 is the MedicationRequest an RDE^O11 of its ORC-2 later encodes, its dose RXO-2/RXO-4;
- an ORU^R30 (point of care) is filed as an ORU^R01's result."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from engine.recognition.facts import performer_institutions
from tests.hl7_calls import err_lines, mllp, post
from tests.module_store import module_eng, module_eng_http  # noqa: F401 -- the module's engine and client, each backend

ANALYSIS = "http://hl7.org/fhir/StructureDefinition/observation-analysis-date-time"
ACSN_SYSTEM = "urn:huren:accession:FNXRMYY"
DICOM_UID = "urn:dicom:uid"
HDR = "MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|{stamp}+0800||{kind}|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\r"


def _written(engine: Engine, http: TestClient, control: str, rtype: str) -> list[dict]:
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None, control
    out = []
    for ref in doc.get("resources") or ():
        if ref.startswith(rtype + "/"):
            r = http.get(f"/fhir/{ref}")
            assert r.status_code == 200, r.text
            out.append(r.json())
    return out


def _ident(resource: dict, system: str) -> list[str]:
    return [i["value"] for i in resource.get("identifier") or () if i.get("system") == system]


def _omi(control: str, mrn: str, *orders: str) -> str:
    return (HDR.format(app="RIS", stamp="20261201091500", kind="OMI^O23^OMI_O23", control=control)
            + f"PID|1||{mrn}^^^FNXRMYY^MR||赵^六||19700101|M\rPV1|1|O\r" + "".join(orders))


def _order(control: str, placer: str, code: str, ipc: str) -> str:
    return (f"ORC|{control}|{placer}|||||||20261201090000|||1001^李^医生\rTQ1|1||||||20261201100000\r"
            f"OBR|1|{placer}||{code}|||20261201090000\r{ipc}")


def test_an_omi_of_two_orders_files_each_with_its_own_ipc(module_eng: Engine, http: TestClient) -> None:
    msg = _omi("FAM42O1", "FAM42O1",
               _order("NW", "F42P1", "CT001^胸部CT平扫^L", "IPC|F42ACC1|F42RP1|1.2.156.42.1|F42SPS1|CT\r"),
               _order("NW", "F42P2", "MR001^头颅MR平扫^L", "IPC|F42ACC2|F42RP2|1.2.156.42.2|F42SPS2|MR\r"))
    (ack,) = mllp(module_eng, msg.encode("utf-8"))
    assert ack_code_of(ack) == "AA", ack
    msh = ack.decode("utf-8").split("\r")[0].split("|")
    assert msh[8] == "ACK^O23^ACK", msh  # the generic ACK, not ORI^O24 (README: huren files, it does not fill)
    assert err_lines(ack) == [], ack  # every segment in OMI_O23's place (hl7apy's v2.5.1 structure), nothing unmapped
    orders = {_ident(sr, "urn:huren:order:FNXRMYY")[0]: sr for sr in _written(module_eng, http, "FAM42O1",
                                                                               "ServiceRequest")}
    assert sorted(orders) == ["F42P1", "F42P2"], orders
    for placer, acsn, uid, modality in (("F42P1", "F42ACC1", "1.2.156.42.1", "CT"),
                                        ("F42P2", "F42ACC2", "1.2.156.42.2", "MR")):
        sr = orders[placer]
        assert _ident(sr, ACSN_SYSTEM) == [acsn], sr
        assert _ident(sr, DICOM_UID) == [f"urn:oid:{uid}"], sr
        assert [c["code"] for c in sr["code"]["coding"] if c["system"].endswith("/DCM")] == [modality], sr
        assert sr["category"][0]["coding"][0]["code"] == "363679005", sr  # imaging


def test_an_omi_and_an_orm_of_one_placer_number_are_one_order(module_eng: Engine, http: TestClient) -> None:
    orm = (HDR.format(app="RIS", stamp="20261201090500", kind="ORM^O01^ORM_O01", control="FAM42O2a")
           + "PID|1||FAM42O2^^^FNXRMYY^MR||钱^七||19600101|F\rPV1|1|O\r"
           "ORC|NW|F42P3|||||||20261201090000|||1001^李^医生\rOBR|1|F42P3||CT001^胸部CT平扫^L|||20261201090000\r")
    omi = _omi("FAM42O2b", "FAM42O2",
               _order("XO", "F42P3", "CT001^胸部CT平扫^L", "IPC|F42ACC3|F42RP3|1.2.156.42.3|F42SPS3|CT\r"))
    omi = omi.replace("赵^六||19700101|M", "钱^七||19600101|F")
    assert [ack_code_of(a) for a in (post(http, orm), post(http, omi))] == ["AA", "AA"]
    (first,) = _written(module_eng, http, "FAM42O2a", "ServiceRequest")
    (second,) = _written(module_eng, http, "FAM42O2b", "ServiceRequest")
    assert first["id"] == second["id"], (first, second)  # one order: the OMI's XO changed the ORM's NW
    found = http.get("/fhir/ServiceRequest", params={"identifier": "urn:huren:order:FNXRMYY|F42P3"}).json()
    assert [e["resource"]["id"] for e in found.get("entry") or ()] == [first["id"]], found
    assert _ident(second, ACSN_SYSTEM) == ["F42ACC3"], second


def _elr(control: str, mrn: str, value: str, analysis: str, director: str, *, observer: str = "",
         status: str = "F", device: str = "VITEK2-0042^^L", address: str = "人民路1号^^阜宁县^江苏省^224400") -> str:
    """FNXRMYY's LIS potassium of order P<mrn>: OBX-16 ``observer``, OBX-18 ``device``, OBX-19 ``analysis``, OBX-23
    the hospital itself (its name), OBX-24 ``address``, OBX-25 ``director``."""
    obx = ["OBX", "1", "NM", "K^钾^L", "", value, "mmol/L", "3.5-5.5", "N", "", "", status, "", "", "20261201090000",
           "", observer, "", device, analysis, "", "", "", "阜宁县人民医院", address, director]
    return (HDR.format(app="LIS", stamp="20261201091500", kind="ORU^R01^ORU_R01", control=control)
            + f"PID|1||{mrn}^^^FNXRMYY^MR||王^芳||19900101|F\r"
            f"OBR|1|P{mrn}|F{mrn}|K^钾^L|||20261201083000||||||||BLD|||||||20261201091000|||F\r"
            + "|".join(obx) + "\r")


def test_each_result_of_a_known_shape_keeps_its_own_analysis_time_and_director(
        module_eng: Engine, http: TestClient) -> None:
    sent = [("FAM42E1", "4.1", "20261201093000", "2001^王^主任"),
            ("FAM42E2", "4.2", "20261201094500", "2001^王^主任"),
            ("FAM42E3", "4.3", "20261201100000", "2002^孙^主任"),
            # without OBX-19: the shape is learnt (a compiled plan) -- the director is still each result's own
            ("FAM42E4", "4.4", "", "2001^王^主任"),
            ("FAM42E5", "4.5", "", "2001^王^主任"),
            ("FAM42E6", "4.6", "", "2002^孙^主任")]
    for control, value, analysis, director in sent:
        assert ack_code_of(post(http, _elr(control, control, value, analysis, director))) == "AA"
    for control, value, analysis, director in sent:
        (obs,) = _written(module_eng, http, control, "Observation")
        assert obs["valueQuantity"]["value"] == float(value), obs
        assert obs["device"] == {"identifier": {"value": "VITEK2-0042"}}, obs
        assert [e["valueDateTime"] for e in obs.get("extension") or () if e["url"] == ANALYSIS] == \
            [f"{analysis[:4]}-{analysis[4:6]}-{analysis[6:8]}T{analysis[8:10]}:{analysis[10:12]}:00+08:00"
             for _ in (1,) if analysis], obs
        roles = [p for p in obs["performer"] if p["reference"].startswith("PractitionerRole/")]
        assert [p.get("display") for p in roles] == [director.split("^")[1] + "主任"], obs
        role = http.get(f"/fhir/{roles[0]['reference']}").json()
        assert role["code"][0]["coding"][0]["code"] == "MDIR", role
        assert role["organization"]["reference"] == obs["performer"][0]["reference"], (role, obs)


def test_the_director_leaves_whose_result_alone_and_stays_through_thinner_corrections(
        module_eng: Engine, http: TestClient) -> None:
    assert ack_code_of(post(http, _elr("FAM42D0", "FAM42D0", "4.0", "20261201093000", ""))) == "AA"
    assert ack_code_of(post(http, _elr("FAM42D1", "FAM42D1", "4.0", "20261201093000", "2001^王^主任"))) == "AA"
    (without,) = _written(module_eng, http, "FAM42D0", "Observation")
    (with_director,) = _written(module_eng, http, "FAM42D1", "Observation")
    assert performer_institutions(with_director) == performer_institutions(without) == ["FNXRMYY"], with_director
    assert module_eng.recognition.facts.institution(with_director) == "FNXRMYY"
    role = [p for p in with_director["performer"] if p["reference"].startswith("PractitionerRole/")]
    assert len(role) == 1, with_director
    # a correction naming only the observer (OBX-16), no OBX-25, then one whose OBX-16 is "" (the observer wrong)
    corrected = _elr("FAM42D2", "FAM42D1", "4.4", "20261201103000", "", observer="3001^周^技师", status="C")
    assert ack_code_of(post(http, corrected)) == "AA"
    nulled = _elr("FAM42D3", "FAM42D1", "4.4", "20261201103000", "", observer='""', status="C")
    assert ack_code_of(post(http, nulled)) == "AA"
    stored = http.get(f"/fhir/Observation/{with_director['id']}").json()
    assert [p for p in stored["performer"] if p["reference"].startswith("PractitionerRole/")] == role, stored
    assert not [p for p in stored["performer"] if p["reference"].startswith("Practitioner/")], stored
    assert stored["valueQuantity"]["value"] == 4.4, stored
    assert performer_institutions(stored) == ["FNXRMYY"], stored


def test_a_valued_field_no_rule_reads_is_counted_for_the_operator(module_eng: Engine, http: TestClient) -> None:
    assert ack_code_of(post(http, _elr("FAM42F1", "FAM42F1", "4.0", "", "", device=""))) == "AA"
    omi = _omi("FAM42F2", "FAM42F2", _order("NW", "F42P4", "CT001^胸部CT平扫^L", "IPC|F42ACC4|F42RP4|1.2.156.42.4||CT\r"))
    assert ack_code_of(post(http, omi)) == "AA"
    r = http.get("/admin/fidelity", params={"institution": "FNXRMYY"})
    assert r.status_code == 200, r.text
    inst = r.json()["institutions"]["FNXRMYY"]
    assert inst["codes"].get("field", {}).get("OBX-24", 0) >= 1, json.dumps(inst["codes"], ensure_ascii=False)
    assert inst["codes"]["field"].get("IPC-2", 0) >= 1, inst["codes"]  # the requested procedure id
    # OBX-18, OBX-19, OBX-25 and IPC-1/3/5 are read: never counted as unread (by any test of the module)
    assert not {"OBX-18", "OBX-19", "OBX-25", "IPC-1", "IPC-3", "IPC-5"} & set(inst["codes"]["field"]), inst["codes"]


def test_an_omp_pharmacy_order_is_the_medication_request_the_rde_later_encodes(
        module_eng: Engine, http: TestClient) -> None:
    pid = "PID|1||FAM42P1^^^FNXRMYY^MR||孙^八||19550101|M\rPV1|1|O\r"
    omp = (HDR.format(app="HIS", stamp="20261201091500", kind="OMP^O09^OMP_O09", control="FAM42P1a") + pid
           + "ORC|NW|F42RX1|||||||20261201090000|||1001^李^医生\rTQ1|1||BID||||20261201100000\r"
           "RXO|86001^阿莫西林胶囊^L|0.5||g|CAP^胶囊^L\rRXR|PO^口服^HL70162\r")
    (ack,) = mllp(module_eng, omp.encode("utf-8"))
    assert ack_code_of(ack) == "AA", ack
    assert ack.decode("utf-8").split("\r")[0].split("|")[8] == "ACK^O09^ACK", ack
    (ordered,) = _written(module_eng, http, "FAM42P1a", "MedicationRequest")
    assert ordered["medicationCodeableConcept"]["coding"][0]["code"] == "86001", ordered
    assert ordered["dosageInstruction"][0]["doseAndRate"] == [  # RXO-2/RXO-4, the requested give amount
        {"doseQuantity": {"value": 0.5, "unit": "g", "system": "http://unitsofmeasure.org", "code": "g"}}], ordered
    assert ordered["dosageInstruction"][0]["route"]["coding"][0]["code"] == "PO", ordered
    rde = (HDR.format(app="HIS", stamp="20261201093000", kind="RDE^O11^RDE_O11", control="FAM42P1b") + pid
           + "ORC|NW|F42RX1|||||||20261201090000|||1001^李^医生\rTQ1|1||BID||||20261201100000\r"
           "RXE||86001^阿莫西林胶囊^L|0.5||g|CAP^胶囊^L||||2|BOX\rRXR|PO^口服^HL70162\r")
    assert ack_code_of(post(http, rde)) == "AA"
    (encoded,) = _written(module_eng, http, "FAM42P1b", "MedicationRequest")
    assert encoded["id"] == ordered["id"], (ordered, encoded)  # one order: ORC-2 keys both templates
    assert encoded["dispenseRequest"]["quantity"]["value"] == 2, encoded


def test_a_point_of_care_oru_r30_is_filed_as_an_oru_r01_result(module_eng: Engine, http: TestClient) -> None:
    msg = (HDR.format(app="POCT", stamp="20261201091500", kind="ORU^R30^ORU_R30", control="FAM42R1")
           + "PID|1||FAM42R1^^^FNXRMYY^MR||周^九||19800101|F\rPV1|1|I|内科病区^301^2\r"
           "ORC|NW||F42POC1||CM||||20261201090000\rOBR|1||F42POC1|GLU^血糖^L|||20261201085500\r"
           "OBX|1|NM|GLU^血糖^L||6.10|mmol/L|3.9-6.1|N|||F|||20261201085500\r")
    ack = post(http, msg)
    assert ack_code_of(ack) == "AA", ack
    assert err_lines(ack) == [], ack  # ORU_R30's structure (hl7apy v2.5.1) holds every segment
    assert ack.decode("utf-8").split("\r")[0].split("|")[8] == "ACK^R30^ACK", ack
    doc = module_eng.ingestor.messages.get(message_id("FNXRMYY", "FAM42R1"))
    assert doc is not None
    obs = http.get(f"/fhir/{next(r for r in doc['resources'] if r.startswith('Observation/'))}")
    assert '"value":6.10' in obs.text, obs.text  # the value as sent
    (report,) = _written(module_eng, http, "FAM42R1", "DiagnosticReport")
    assert report["status"] == "final", report
    (order,) = _written(module_eng, http, "FAM42R1", "ServiceRequest")
    assert _ident(order, "urn:huren:order:FNXRMYY") == ["F42POC1"], order
