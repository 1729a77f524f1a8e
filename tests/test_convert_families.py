"""Every message family a member hospital sends goes in as real HL7 bytes (POST /hl7v2) and comes
back as FHIR R4 through the API: immunisation, pharmacy, scheduling, referral, billing, problems,
the further ADT events and lab structures, and results whose order code is missing.

The messages are shaped like the feeds of a county HIS/LIS (national resident ID in PID-3,
Chinese names, local codes); each conversion is also checked as a valid R4 bundle with every
reference inside it.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.convert import Conversion, convert
from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.parser import parse
from engine.engine import Engine
from tests.conftest import NATIONAL_ID
from tests.test_convert import assert_valid_bundle

PID = f"PID|1||{NATIONAL_ID}^^^^NNCHN~M0001^^^FNXRMYY^MR||张^三||19800101|M|||人民路1号^^阜宁^江苏^224400||13800000000"
PV1 = "PV1|1|O|门诊^101^1^FNXRMYY||||D001^李^医生||||||||||||V0001|||||||||||||||||||||||||20261101080000"


def msh(kind: str, control: str, version: str = "2.5.1") -> str:
    return f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101091500||{kind}|{control}|P|{version}"


def message(*segments: str) -> bytes:
    return ("\r".join(segments) + "\r").encode()


@pytest.fixture
def http(http: TestClient, engine: Engine) -> TestClient:
    """The app (conftest), signed in as the HIS feed: it posts HL7 and reads FHIR."""
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-feed", "system/*.cruds")
    return http


def post(http: TestClient, raw: bytes) -> str:
    r = http.post("/hl7v2", content=raw, headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200, r.text
    return ack_code_of(r.content)


def search(http: TestClient, rtype: str, **params: str) -> list[dict[str, Any]]:
    r = http.get(f"/fhir/{rtype}", params=params)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", []) if e.get("search", {}).get("mode") != "include"]


def converted(engine: Engine, raw: bytes) -> Conversion:
    """The same message through the converter alone: a valid bundle, every reference inside it."""
    conv = convert(parse(raw.decode()), engine.site)
    assert_valid_bundle(conv)
    return conv


def filed(engine: Engine, http: TestClient, *raws: bytes) -> str:
    """Each message converts alone to a valid bundle, then is POSTed and answered AA → the patient."""
    for raw in raws:
        converted(engine, raw)
        assert post(http, raw) == "AA", raw[:200]
    return patient_id(http)


def patient_id(http: TestClient) -> str:
    (patient,) = search(http, "Patient", identifier=NATIONAL_ID)
    return f"Patient/{patient['id']}"


# --- immunisation ---------------------------------------------------------------------------------


VXU = message(
    msh("VXU^V04^VXU_V04", "VXU1"),
    PID,
    PV1,
    "ORC|RE|IM-100^HIS|IM-100^FNXRMYY||CM",
    "RXA|0|1|20261101083000||CN-HEPB^乙肝疫苗^L|10|ug^微克^UCUM||00^New Record^NIP001|N001^王^护士|||||B2026A|20271231|"
    "KX^康希诺^MVX|||CP|A",
    "RXR|IM^肌内注射^HL70162|LD^左三角肌^HL70163",
    "OBX|1|CWE|31044-1^Immunization reaction^LN|1|FEV^发热^L||||||F|||20261102",
    "NTE|1||接种后30分钟观察无异常",
    "ORC|RE|IM-101^HIS|IM-101^FNXRMYY||CM",
    "RXA|0|1|20250301||CN-FLU^流感疫苗^L|999|||01^Historical^NIP001||||||||||CP|A",
)


def test_vxu_makes_immunizations_with_reactions(engine: Engine, http: TestClient) -> None:
    conv = converted(engine, VXU)
    assert post(http, VXU) == "AA"
    subject = patient_id(http)
    found = {i["vaccineCode"]["coding"][0]["code"]: i for i in search(http, "Immunization", patient=subject)}
    assert set(found) == {"CN-HEPB", "CN-FLU"}
    hepb = found["CN-HEPB"]
    assert hepb["status"] == "completed" and hepb["primarySource"] is True
    assert hepb["doseQuantity"] == {"value": 10, "unit": "微克", "system": "http://unitsofmeasure.org", "code": "ug"}
    assert hepb["lotNumber"] == "B2026A" and hepb["expirationDate"] == "2027-12-31"
    assert hepb["route"]["coding"][0]["code"] == "IM" and hepb["site"]["coding"][0]["code"] == "LD"
    assert hepb["manufacturer"]["display"] == "康希诺"
    assert {i["value"] for i in hepb["identifier"]} == {"IM-100"}
    reaction = http.get(f"/fhir/{hepb['reaction'][0]['detail']['reference']}").json()
    assert reaction["valueCodeableConcept"]["coding"][0]["code"] == "FEV"
    assert reaction["partOf"] == [{"reference": f"Immunization/{hepb['id']}"}]
    assert reaction["note"] == [{"text": "接种后30分钟观察无异常"}]
    flu = found["CN-FLU"]
    assert flu["primarySource"] is False and "doseQuantity" not in flu  # 999: amount unknown
    # deterministic: the same message converts to the same ids
    again = converted(engine, VXU)
    assert [r["id"] for r in again.resources] == [r["id"] for r in conv.resources]


# --- pharmacy -------------------------------------------------------------------------------------


ORC_RX = "ORC|{ctl}|RX-200^HIS|RX-200^PHARM||{st}||||20261101084000|N002^赵^护士||D001^李^医生"
RXE = ("RXE|^BID&0800,2000^^20261101^20261108|CN-AMOX^阿莫西林胶囊^L|0.5||g^克^UCUM|CAP^胶囊|"
       "饭后服用|||14|粒^粒|2|||||||||||||||J20^急性支气管炎^I10")
RXR = "RXR|PO^口服^HL70162"


def test_pharmacy_order_dispense_and_administration(engine: Engine, http: TestClient) -> None:
    rde = message(msh("RDE^O11^RDE_O11", "RX1"), PID, PV1, ORC_RX.format(ctl="NW", st="IP"), RXE, RXR,
                  "NTE|1||青霉素皮试阴性")
    rds = message(msh("RDS^O13^RDS_O13", "RX2"), PID, PV1, ORC_RX.format(ctl="RE", st="IP"), RXE, RXR,
                  "RXD|1|CN-AMOX^阿莫西林胶囊^L|20261101090000|14|粒^粒||DSP-77||||P001^孙^药师")
    ras = message(msh("RAS^O17^RAS_O17", "RX3"), PID, PV1, ORC_RX.format(ctl="RE", st="IP"),
                  "RXA|0|1|20261101200000||CN-AMOX^阿莫西林胶囊^L|0.5|g^克^UCUM||||||||||||CP",
                  RXR)
    subject = filed(engine, http, rde, rds, ras)
    (request,) = search(http, "MedicationRequest", subject=subject)
    assert request["status"] == "active" and request["intent"] == "order"
    assert request["authoredOn"].startswith("2026-11-01T08:40:00")
    dosage = request["dosageInstruction"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"] == {
        "value": 0.5, "unit": "克", "system": "http://unitsofmeasure.org", "code": "g"}
    assert dosage["route"]["coding"][0]["code"] == "PO"
    assert dosage["timing"]["code"]["coding"][0]["code"] == "BID"
    assert dosage["text"] == "饭后服用"
    assert request["dispenseRequest"]["quantity"]["value"] == 14
    assert request["dispenseRequest"]["numberOfRepeatsAllowed"] == 2
    assert request["reasonCode"][0]["coding"][0]["code"] == "J20"
    assert request["note"] == [{"text": "青霉素皮试阴性"}]
    medication = http.get(f"/fhir/{request['medicationReference']['reference']}").json()
    assert medication["code"]["coding"][0]["code"] == "CN-AMOX" and medication["form"]["text"] == "胶囊"
    (dispense,) = search(http, "MedicationDispense", subject=subject)
    assert dispense["authorizingPrescription"] == [{"reference": f"MedicationRequest/{request['id']}"}]
    assert dispense["quantity"]["value"] == 14 and dispense["whenHandedOver"].startswith("2026-11-01T09:00")
    (given,) = search(http, "MedicationAdministration", subject=subject)
    assert given["status"] == "completed" and given["request"]["reference"] == f"MedicationRequest/{request['id']}"
    assert given["dosage"]["dose"]["value"] == 0.5 and given["dosage"]["route"]["coding"][0]["code"] == "PO"


# --- scheduling -----------------------------------------------------------------------------------


def siu(event: str, control: str, status: str = "Booked") -> bytes:
    return message(
        msh(f"SIU^{event}^SIU_S12", control),
        "SCH|" + "|".join(["APT-9^HIS", "APT-9^FNXRMYY", "", "", "", "", "FU^复诊^L", "ROUTINE^常规^HL70276", "20",
                            "MIN", "^^20^20261110090000"] + [""] * 13 + [status]),
        "NTE|1||空腹",
        PID,
        "RGS|1|A",
        "AIS|1|A|CARD^心内科门诊^L|20261110090000|||20|MIN",
        "AIP|1|A|D001^李^医生|D^医生",
        "AIL|1|A|门诊^201^1^FNXRMYY",
    )


def test_appointments_book_and_cancel(engine: Engine, http: TestClient) -> None:
    subject = filed(engine, http, siu("S12", "AP1"))
    (appt,) = search(http, "Appointment", actor=subject)
    assert appt["status"] == "booked" and appt["minutesDuration"] == 20
    assert appt["start"].startswith("2026-11-10T09:00:00") and appt["end"].startswith("2026-11-10T09:20:00")
    assert appt["comment"] == "空腹" and appt["serviceType"][0]["coding"][0]["code"] == "CARD"
    actors = [p["actor"]["reference"].split("/")[0] for p in appt["participant"]]
    assert actors == ["Patient", "Practitioner", "Location"]
    assert post(http, siu("S15", "AP2", status="Cancelled")) == "AA"
    (cancelled,) = search(http, "Appointment", actor=subject)
    assert cancelled["id"] == appt["id"] and cancelled["status"] == "cancelled"


# --- referral -------------------------------------------------------------------------------------


def ref(event: str, control: str, status: str, kind: str = "REF") -> bytes:
    return message(
        msh(f"{kind}^{event}^{kind}_I12", control),
        *(["MSA|AA|R1"] if kind == "RRI" else []),
        f"RF1|{status}^^HL70283|R^^HL70280|CARD^心内科会诊^L|||RF-2026-01^FNXRMYY|20261101|20261201||I25^冠心病^I10",
        "PRD|RP^转出医生^HL70286|李^医生|人民路1号^^阜宁||^WPN^PH^^^^88880000||D001",
        "PRD|RT^接收医生^HL70286|周^主任|||^WPN^PH^^^^66660000||Z900",
        PID,
        "DG1|1||I25^冠心病^I10||20261101|F",
        PV1,
        "NTE|1||请评估是否需要冠脉造影",
    )


def test_referral_is_a_service_request_with_a_task(engine: Engine, http: TestClient) -> None:
    subject = filed(engine, http, ref("I12", "RF1", "P"))
    (request,) = search(http, "ServiceRequest", subject=subject)
    assert request["category"][0]["coding"][0]["code"] == "3457005"
    assert request["status"] == "draft" and request["priority"] == "routine"
    assert request["code"]["coding"][0]["code"] == "CARD"
    assert request["reasonCode"][0]["coding"][0]["code"] == "I25"
    assert request["note"] == [{"text": "请评估是否需要冠脉造影"}]
    requester = http.get(f"/fhir/{request['requester']['reference']}").json()
    performer = http.get(f"/fhir/{request['performer'][0]['reference']}").json()
    assert requester["name"][0]["text"] == "李医生" and performer["identifier"][0]["value"] == "Z900"
    task = http.get("/fhir/Task", params={"focus": f"ServiceRequest/{request['id']}"}).json()["entry"][0]["resource"]
    assert task["status"] == "requested" and task["owner"] == {"reference": request["performer"][0]["reference"]}
    # the receiving hospital accepts: RRI answers update the same referral and task
    assert post(http, ref("I12", "RF2", "A", kind="RRI")) == "AA"
    accepted = http.get(f"/fhir/ServiceRequest/{request['id']}").json()
    assert accepted["status"] == "active"
    assert http.get(f"/fhir/Task/{task['id']}").json()["status"] == "accepted"


# --- billing --------------------------------------------------------------------------------------


PID_ACCOUNT = PID.replace("|13800000000", "|13800000000|||||ACC-88^^^FNXRMYY^AN")


def test_billing_account_charges_procedures_and_coverage(engine: Engine, http: TestClient) -> None:
    bar = message(
        msh("BAR^P01^BAR_P01", "B1"), "EVN|P01|20261101", PID_ACCOUNT, PV1,
        "DG1|1||K35.8^急性阑尾炎^I10||20261101|A",
        "PR1|1||0DTJ4ZZ^腹腔镜阑尾切除术^ICD10PCS||20261101100000|||||||D001^李^医生",
        "IN1|1|CN-URBAN^城镇职工医保|YB001^^^FNYB|阜宁县医疗保障局||||||||20260101|20261231",
        "IN2" + "|" * 61 + "MEM-123^^^FNYB^MB",
        "IN3|1|CERT-9",
    )
    dft = message(
        msh("DFT^P03^DFT_P03", "B2"), "EVN|P03|20261101", PID_ACCOUNT, PV1,
        "FT1|1|T-5001||20261101100000|20261101120000|CG|SURG-01^阑尾切除术^L||1|1||2300.50&CNY|||||||"
        "K35.8^急性阑尾炎^I10|D001^李^医生||||F001^钱^收费员",
        "FT1|2|T-5002||20261101130000||CG|DRUG-7^头孢曲松^L|||2||80&CNY",
        "NTE|1||自费部分",
    )
    subject = filed(engine, http, bar, dft)
    (account,) = search(http, "Account", subject=subject)
    assert account["status"] == "active" and account["identifier"][0]["value"] == "ACC-88"
    coverage = http.get(f"/fhir/{account['coverage'][0]['coverage']['reference']}").json()
    assert {i["value"] for i in coverage["identifier"]} >= {"MEM-123", "CERT-9"}
    charges = {c["identifier"][0]["value"]: c for c in search(http, "ChargeItem", subject=subject)}
    assert set(charges) == {"T-5001", "T-5002"}
    surgery = charges["T-5001"]
    assert surgery["status"] == "billable" and surgery["code"]["coding"][0]["code"] == "SURG-01"
    assert surgery["priceOverride"] == {"value": 2300.5, "currency": "CNY"}
    assert surgery["account"] == [{"reference": f"Account/{account['id']}"}]
    assert surgery["reason"][0]["coding"][0]["code"] == "K35.8"
    assert charges["T-5002"]["quantity"] == {"value": 2} and charges["T-5002"]["note"] == [{"text": "自费部分"}]
    (procedure,) = search(http, "Procedure", subject=subject)
    assert procedure["code"]["coding"][0]["code"] == "0DTJ4ZZ" and procedure["status"] == "completed"
    (condition,) = search(http, "Condition", subject=subject)
    assert condition["code"]["coding"][0]["code"] == "K35.8"
    # purge: the account is kept, inactive
    purge = message(msh("BAR^P02^BAR_P02", "B3"), "EVN|P02|20261201", PID_ACCOUNT, PV1)
    assert post(http, purge) == "AA"
    assert http.get(f"/fhir/Account/{account['id']}").json()["status"] == "inactive"


# --- problems -------------------------------------------------------------------------------------


def ppr(event: str, control: str, action: str) -> bytes:
    return message(
        msh(f"PPR^{event}^PPR_PC1", control), PID, PV1,
        f"PRB|{action}|20261101|I10^高血压^I10|PRB-1|||||||||C|A||20200301",
        "NTE|1||家族史阳性",
        "ROL|1|AD|PP^主治医生^HL70443|D001^李^医生",
        "OBX|1|NM|8480-6^收缩压^LN||150|mm[Hg]^mmHg^UCUM|90-139|H|||F|||20261101",
    )


def test_problem_list_add_and_delete(engine: Engine, http: TestClient) -> None:
    subject = filed(engine, http, ppr("PC1", "P1", "AD"))
    (problem,) = search(http, "Condition", subject=subject)
    assert problem["category"][0]["coding"][0]["code"] == "problem-list-item"
    assert problem["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert problem["clinicalStatus"]["coding"][0]["code"] == "active"
    assert problem["onsetDateTime"] == "2020-03-01" and problem["note"] == [{"text": "家族史阳性"}]
    assert problem["asserter"]["display"] == "李医生"
    (bp,) = search(http, "Observation", subject=subject)
    assert bp["focus"] == [{"reference": f"Condition/{problem['id']}"}]
    assert post(http, ppr("PC3", "P2", "DE")) == "AA"
    deleted = http.get(f"/fhir/Condition/{problem['id']}").json()
    assert deleted["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert "clinicalStatus" not in deleted


# --- ADT events beyond admission/transfer/discharge -----------------------------------------------


def test_pending_and_cancelled_events_set_the_encounter_status(engine: Engine, http: TestClient) -> None:
    statuses = {}
    for event, structure in (("A14", "ADT_A05"), ("A27", "ADT_A21"), ("A15", "ADT_A15"), ("A16", "ADT_A16"),
                             ("A25", "ADT_A21"), ("A09", "ADT_A09"), ("A10", "ADT_A09"), ("A38", "ADT_A38")):
        raw = message(msh(f"ADT^{event}^{structure}", f"E{event}"), f"EVN|{event}|20261101", PID,
                      PV1.replace("V0001", f"V-{event}"))
        converted(engine, raw)
        assert post(http, raw) == "AA", event
        (enc,) = search(http, "Encounter", identifier=f"V-{event}")
        statuses[event] = enc["status"]
    assert statuses == {"A14": "planned", "A27": "cancelled", "A15": "in-progress", "A16": "in-progress",
                        "A25": "in-progress", "A09": "in-progress", "A10": "in-progress", "A38": "cancelled"}


def test_leave_of_absence_tracking_cancels_and_doctor_changes(engine: Engine, http: TestClient) -> None:
    """A21/A22 leave of absence and back, A52/A53 their cancellations, A32/A33 cancelled tracking
    moves, A54/A55 and A61/A62 doctor changes: the stay's status by event, the new attending named."""
    statuses = {}
    for event, structure in (("A21", "ADT_A21"), ("A22", "ADT_A21"), ("A52", "ADT_A52"), ("A53", "ADT_A52"),
                             ("A32", "ADT_A21"), ("A33", "ADT_A21"), ("A54", "ADT_A54"), ("A55", "ADT_A54"),
                             ("A61", "ADT_A61"), ("A62", "ADT_A61")):
        pv1 = PV1.replace("V0001", f"V-{event}").replace("|O|", "|I|")
        if event == "A54":
            pv1 = pv1.replace("D001^李^医生", "D009^赵^医生")
        raw = message(msh(f"ADT^{event}^{structure}", f"L{event}"), f"EVN|{event}|20261101", PID, pv1)
        converted(engine, raw)
        assert post(http, raw) == "AA", event
        (enc,) = search(http, "Encounter", identifier=f"V-{event}")
        statuses[event] = enc["status"]
        if event == "A54":
            doctor = http.get(f"/fhir/{enc['participant'][0]['individual']['reference']}").json()
            assert doctor["name"][0]["family"] == "赵"
    assert statuses == {"A21": "onleave", "A22": "in-progress", "A52": "in-progress", "A53": "onleave",
                        "A32": "in-progress", "A33": "in-progress", "A54": "in-progress", "A55": "in-progress",
                        "A61": "in-progress", "A62": "in-progress"}


@pytest.mark.parametrize(("event", "structure"), [("A18", "ADT_A18"), ("A30", "ADT_A30"), ("A39", "ADT_A39"),
                                                  ("A46", "ADT_A30")])
def test_person_merges_link_the_prior_record(engine: Engine, http: TestClient, event: str, structure: str) -> None:
    """A18, A30, A39, A46 merge or re-identify a patient as A34/A40/A47 do: the survivor replaces
    the record MRG-1 names, which stays inactive with replaced-by."""
    prior = message(msh("ADT^A04^ADT_A01", f"P{event}"), "EVN|A04|20261101",
                    "PID|1||M0777^^^FNXRMYY^MR||张^三||19800101|M", PV1)
    assert post(http, prior) == "AA"
    raw = message(msh(f"ADT^{event}^{structure}", f"M{event}"), f"EVN|{event}|20261101", PID,
                  "MRG|M0777^^^FNXRMYY^MR")
    converted(engine, raw)
    assert post(http, raw) == "AA"
    (old,) = search(http, "Patient", identifier="M0777")
    assert old["active"] is False and old["link"][0]["type"] == "replaced-by"
    (survivor,) = search(http, "Patient", identifier=NATIONAL_ID)
    assert {"other": {"reference": f"Patient/{old['id']}"}, "type": "replaces"} in survivor["link"]


def test_end_of_account_makes_it_inactive(engine: Engine, http: TestClient) -> None:
    p01 = message(msh("BAR^P01^BAR_P01", "AC1"), "EVN|P01|20261101", PID_ACCOUNT, PV1)
    p06 = message(msh("BAR^P06^BAR_P06", "AC2"), "EVN|P06|20261105", PID_ACCOUNT, PV1)
    subject = filed(engine, http, p01)
    assert [a["status"] for a in search(http, "Account", subject=subject)] == ["active"]
    converted(engine, p06)
    assert post(http, p06) == "AA"
    assert [a["status"] for a in search(http, "Account", subject=subject)] == ["inactive"]


def test_swap_patients_gives_each_their_new_bed(engine: Engine, http: TestClient) -> None:
    other = "32092319850412001X"
    raw = message(
        msh("ADT^A17^ADT_A17", "S1"), "EVN|A17|20261101",
        PID, "PV1|1|I|内科^301^2^FNXRMYY||||||||||||||||V-1",
        f"PID|1||{other}^^^^NNCHN~M0002^^^FNXRMYY^MR||王^五||19850412|M",
        "PV1|1|I|内科^301^1^FNXRMYY||||||||||||||||V-2",
    )
    conv = converted(engine, raw)
    assert len([r for r in conv.resources if r["resourceType"] == "Patient"]) == 2
    assert post(http, raw) == "AA"
    (v2,) = search(http, "Encounter", identifier="V-2")
    (them,) = search(http, "Patient", identifier=other)
    assert v2["subject"]["reference"] == f"Patient/{them['id']}"
    assert http.get(f"/fhir/{v2['location'][0]['location']['reference']}").json()["name"] == "内科 301房 1床"


def test_adverse_reaction_update_and_account_merge(engine: Engine, http: TestClient) -> None:
    a60 = message(
        msh("ADT^A60^ADT_A60", "R1"), "EVN|A60|20261101", PID, PV1,
        "IAM|1|DA^Drug allergy^HL70127|PEN^青霉素^L|SV^Severe^HL70128|皮疹~呼吸困难|A|IAM-5||||20200101||20261101||||C",
        "NTE|1||2020年注射后出现",
    )
    subject = filed(engine, http, a60)
    (allergy,) = search(http, "AllergyIntolerance", patient=subject)
    assert allergy["code"]["coding"][0]["code"] == "PEN" and allergy["criticality"] == "high"
    assert [r["manifestation"][0]["text"] for r in allergy["reaction"]] == ["皮疹", "呼吸困难"]
    assert allergy["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert allergy["note"] == [{"text": "2020年注射后出现"}]
    a41 = message(msh("ADT^A41^ADT_A39", "R2"), "EVN|A41|20261101", PID_ACCOUNT, "MRG|||ACC-01^^^FNXRMYY^AN")
    converted(engine, a41)
    assert post(http, a41) == "AA"
    accounts = {a["identifier"][0]["value"]: a["status"] for a in search(http, "Account", subject=subject)}
    assert accounts == {"ACC-88": "active", "ACC-01": "inactive"}


# --- results never lost over a missing order code ------------------------------------------------


def test_result_without_order_code_is_stored_and_counted(engine: Engine, http: TestClient) -> None:
    raw = message(
        msh("ORU^R01^ORU_R01", "NC1"), PID,
        "ORC|RE|ORD-NC1|LAB-NC1",
        "OBR|1|ORD-NC1|LAB-NC1||||20261101083000|||||||||||||||20261101091000|||F",
        "OBX|1|NM|GLU^葡萄糖^L||5.6|mmol/L|3.9-6.1|N|||F|||20261101090000",
    )
    order_only = message(msh("ORM^O01^ORM_O01", "NC2"), PID, "ORC|NW|ORD-NC2")
    subject = filed(engine, http, raw, order_only)
    (obs,) = search(http, "Observation", subject=subject)
    assert obs["valueQuantity"]["value"] == 5.6
    requests = search(http, "ServiceRequest", subject=subject)
    assert len(requests) == 2
    for request in requests:
        assert request["code"]["extension"][0]["url"] == "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
    report = http.get("/admin/fidelity")
    assert report.status_code == 200, report.text
    items = report.json()["institutions"]["FNXRMYY"]["items"]
    absent = [i for i in items if i["kind"] == "absent" and i["value"] == "ServiceRequest.code"]
    assert {i["where"] for i in absent} == {"OBR-4", "ORC"} and sum(i["count"] for i in absent) == 2


# --- specimen- and order-oriented lab results ------------------------------------------------------


def test_oul_r23_and_r24_results_with_specimen_containers(engine: Engine, http: TestClient) -> None:
    r23 = message(
        msh("OUL^R23^OUL_R23", "U23"), PID,
        "SPM|1|SP-23^^LIS||BLD^全血^HL70487|||||||||||||20261101080000",
        "SAC||ACC-23^LIS|TUBE-23^LIS",
        "OBR|1|ORD-23^HIS|LAB-23^LIS|GLU^葡萄糖^L|||20261101080000|||||||||||||||20261101091000|||F",
        "ORC|RE|ORD-23^HIS|LAB-23^LIS",
        "TQ1|1||||||20261101070000||R",
        "OBX|1|NM|GLU^葡萄糖^L||5.6|mmol/L|3.9-6.1|N|||F|||20261101090000",
        "PRT||AD||RCT^Results Copies To^HL70912|T001^吴^技师",
    )
    r24 = message(
        msh("OUL^R24^OUL_R24", "U24"), PID,
        "OBR|1|ORD-24^HIS|LAB-24^LIS|CREA^肌酐^L|||20261101080000|||||||||||||||20261101091000|||F",
        "ORC|RE|ORD-24^HIS|LAB-24^LIS",
        "SPM|1|SP-24^^LIS||SER^血清^HL70487|||||||||||||20261101080000",
        "SAC||ACC-24^LIS|TUBE-24^LIS",
        "OBX|1|NM|CREA^肌酐^L||78|umol/L|57-111|N|||F|||20261101090000",
    )
    for raw in (r23, r24):
        conv = converted(engine, raw)
        assert not [u for u in conv.unmapped if u["kind"] == "segment"], conv.unmapped
        assert post(http, raw) == "AA"
    subject = patient_id(http)
    specimens = {s["identifier"][0]["value"]: s for s in search(http, "Specimen", subject=subject)}
    assert set(specimens) == {"SP-23", "SP-24"}
    assert specimens["SP-24"]["container"][0]["identifier"][0]["value"] == "TUBE-24"
    assert specimens["SP-23"]["accessionIdentifier"]["value"] == "ACC-23"
    reports = search(http, "DiagnosticReport", subject=subject)
    assert len(reports) == 2
    for report in reports:  # each report names its own specimen
        (ref,) = report["specimen"]
        assert http.get(f"/fhir/{ref['reference']}").json()["subject"]["reference"] == subject
    obs = {o["code"]["coding"][0]["code"]: o for o in search(http, "Observation", subject=subject)}
    assert [p["display"] for p in obs["GLU"]["performer"]][1:] == ["吴技师"]  # PRT after the OBX
    (glu_order,) = [s for s in search(http, "ServiceRequest", subject=subject)
                    if s["code"]["coding"][0]["code"] == "GLU"]
    assert glu_order["priority"] == "routine"  # TQ1-9
