"""HL7 v2 → FHIR conversion of the community's own feeds (examples/feeds): HIS, LIS and PACS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from adapters.convert import Conversion, convert
from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.header import decode_message
from adapters.hl7v2.parser import parse
from conformance.validate import Validator
from engine.settings import Settings
from mappings.site import Site
from tests.conftest import REPO_ROOT

FEEDS = REPO_ROOT / "examples" / "feeds"
VALIDATOR = Validator()  # the platform's own R4 schema + profiles, as the repository applies them


@pytest.fixture(scope="module")
def site() -> Site:
    return Site.load(Settings())


def feed(name: str) -> str:
    path = next(FEEDS.glob(f"{name}*.hl7"))
    return decode_message(path.read_bytes())


def run(text: str, site: Site) -> Conversion:
    return convert(parse(text), site)


def of_type(conv: Conversion, rtype: str) -> list[dict[str, Any]]:
    return [r for r in conv.resources if r["resourceType"] == rtype]


def one(conv: Conversion, rtype: str) -> dict[str, Any]:
    found = of_type(conv, rtype)
    assert len(found) == 1, f"{len(found)} {rtype}"
    return found[0]


def resolve(conv: Conversion, ref: dict[str, str]) -> dict[str, Any]:
    rtype, rid = ref["reference"].split("/")
    return next(r for r in conv.resources if r["resourceType"] == rtype and r["id"] == rid)


def assert_valid_bundle(conv: Conversion) -> None:
    bundle = conv.bundle
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    urls = set()
    for entry in bundle["entry"]:
        res = entry["resource"]
        assert entry["request"] == {"method": "PUT", "url": f"{res['resourceType']}/{res['id']}"}
        assert entry.get("fullUrl", f"urn:uuid:{res['id']}") == f"urn:uuid:{res['id']}"
        urls.add(entry["request"]["url"])
        get_fhir_model_class(res["resourceType"]).model_validate(res)  # R4(B) structure and types
        VALIDATOR.validate(res)  # what the repository will check on write
    assert len(urls) == len(bundle["entry"])
    for entry in bundle["entry"]:  # every reference points into the bundle (nothing dangling)
        for ref in _references(entry["resource"]):
            assert ref in urls, ref


def _references(node: Any) -> list[str]:
    out = []
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            out.append(ref)
        for value in node.values():
            out.extend(_references(value))
    elif isinstance(node, list):
        for value in node:
            out.extend(_references(value))
    return out


@pytest.mark.parametrize("path", sorted(FEEDS.glob("*.hl7")), ids=lambda p: p.name)
def test_every_example_converts_fully(path: Path, site: Site) -> None:
    text = decode_message(path.read_bytes())
    conv = run(text, site)
    assert_valid_bundle(conv)
    assert conv.warnings == []
    assert conv.unmapped == []
    msh = parse(text).msh
    prov = one(conv, "Provenance")
    assert prov["entity"][0]["what"]["identifier"]["value"] == msh.control_id
    assert prov["agent"][0]["who"]["display"] == site.institutions[msh.sending_facility].name
    assert len(prov["target"]) == len(conv.bundle["entry"]) - 1
    assert run(text, site).bundle == conv.bundle  # deterministic: a resend updates, never duplicates


def test_admission_builds_the_patient_record(site: Site) -> None:
    conv = run(feed("01_"), site)
    patient = one(conv, "Patient")
    national = next(i for i in patient["identifier"] if i["type"]["coding"][0]["code"] == "NNCHN")
    assert national["value"] == "32092319850412001X"
    mrn = next(i for i in patient["identifier"] if i["type"]["coding"][0]["code"] == "MR")
    assert (mrn["system"], mrn["value"]) == ("urn:huren:mrn:FNXRMYY", "ZY2025000101")
    assert patient["name"][0]["family"] == "王" and patient["name"][0]["given"] == ["建国"]
    assert patient["name"][0]["text"] == "王建国"
    assert (patient["gender"], patient["birthDate"]) == ("male", "1985-04-12")
    assert patient["address"][0]["text"] == "江苏省阜宁县阜城镇幸福路18号"
    assert patient["address"][0]["district"] == "320923"
    assert patient["telecom"][0] == {"system": "phone", "value": "13951234567", "use": "mobile"}
    assert patient["maritalStatus"]["coding"][0]["code"] == "M"
    org = resolve(conv, patient["managingOrganization"])
    assert org["name"] == "阜宁县人民医院" and org["identifier"][0]["value"] == "FNXRMYY"

    enc = one(conv, "Encounter")
    assert enc["status"] == "in-progress" and enc["class"]["code"] == "IMP"
    assert enc["period"]["start"] == "2025-03-10T09:00:00+08:00"  # no offset sent: Asia/Shanghai
    assert enc["identifier"][0]["value"] == "ZY2025000101-1"
    bed = resolve(conv, enc["location"][0]["location"])
    assert bed["name"] == "心内科病区 301房 02床" and bed["alias"] == ["NEI"]
    assert bed["physicalType"]["coding"][0]["code"] == "bd"
    assert bed["managingOrganization"]["reference"] == patient["managingOrganization"]["reference"]
    attender = resolve(conv, enc["participant"][0]["individual"])
    assert attender["name"][0]["text"] == "陈明"
    assert enc["reasonCode"][0]["coding"][0] == {
        "system": "urn:huren:codesystem:icd-10-cn",
        "code": "R07.4",
        "display": "胸痛",
    }

    allergy = one(conv, "AllergyIntolerance")
    assert allergy["category"] == ["medication"] and allergy["criticality"] == "high"
    assert allergy["reaction"][0]["manifestation"][0]["text"] == "皮疹&瘙痒"  # \T\ unescaped
    condition = one(conv, "Condition")
    assert condition["code"]["coding"][0]["code"] == "I20.000"
    assert condition["encounter"]["reference"] == f"Encounter/{enc['id']}"
    related = one(conv, "RelatedPerson")
    assert related["relationship"][0]["coding"][0]["code"] == "SPS"
    coverage = one(conv, "Coverage")
    assert coverage["class"][0]["value"] == "310"
    assert resolve(conv, coverage["payor"][0])["name"] == "阜宁县医疗保障局"


def test_blood_count_with_twelve_results(site: Site) -> None:
    conv = run(feed("02_"), site)
    report = one(conv, "DiagnosticReport")
    assert report["status"] == "final" and len(report["result"]) == 12
    codes = [c["code"] for c in report["code"]["coding"]]
    assert codes == ["XCG", "58410-2", "CBC"]  # local code, LOINC, recognition item
    assert report["code"]["coding"][0]["system"] == "urn:huren:code:FNXRMYY"
    org = next(r for r in conv.resources if r["resourceType"] == "Organization")
    assert report["performer"] == [{"reference": f"Organization/{org['id']}", "display": "阜宁县人民医院"}]
    wbc = resolve(conv, report["result"][0])
    assert wbc["valueQuantity"] == {
        "value": 11.6,
        "unit": "10^9/L",
        "system": "http://unitsofmeasure.org",
        "code": "10*9/L",
    }
    assert (
        wbc["referenceRange"][0]["low"]["value"] == 3.5 and wbc["referenceRange"][0]["high"]["value"] == 9.5
    )
    assert wbc["referenceRange"][0]["text"] == "3.5-9.5"
    assert wbc["interpretation"][0]["coding"][0]["code"] == "H"
    assert wbc["status"] == "final" and wbc["effectiveDateTime"] == "2025-03-10T11:00:00+08:00"
    assert wbc["performer"][0]["reference"] == f"Organization/{org['id']}"
    assert [c["code"] for c in wbc["code"]["coding"]] == ["WBC", "6690-2"]
    remark = resolve(conv, report["result"][11])
    assert remark["valueString"] == "标本轻度溶血\n建议复查血小板"
    assert remark["note"] == [{"text": "审核者：孙丽"}]
    assert report["presentedForm"][0]["contentType"].startswith("text/plain")
    specimen = one(conv, "Specimen")
    assert specimen["identifier"][0]["value"] == "BB20250310001"
    assert specimen["collection"]["collectedDateTime"] == "2025-03-10T09:45:00+08:00"
    request = one(conv, "ServiceRequest")
    assert request["status"] == "completed"
    assert {i["type"]["coding"][0]["code"] for i in request["identifier"]} == {"PLAC", "FILL"}


def test_two_orders_and_value_types(site: Site) -> None:
    conv = run(feed("03_"), site)
    assert len(of_type(conv, "DiagnosticReport")) == 2
    obs = {o["code"]["coding"][0]["code"]: o for o in of_type(conv, "Observation")}
    assert obs["102003"]["valueQuantity"]["comparator"] == "<"
    assert obs["HBSAG"]["valueCodeableConcept"]["coding"][0]["code"] == "NEG"
    assert {"system": "urn:huren:recognition-item", "code": "HBV"} in obs["HBSAG"]["code"]["coding"]
    assert obs["103001"]["interpretation"][0]["coding"][0]["code"] == "L"
    patient = one(conv, "Patient")
    assert patient["name"][0]["text"] == "李秀英"


def test_imaging_order_carries_retest_reason_and_modality(site: Site) -> None:
    conv = run(feed("05_"), site)
    order = one(conv, "ServiceRequest")
    assert order["status"] == "active"
    assert order["category"][0]["coding"][0]["code"] == "363679005"
    assert order["reasonCode"][0]["coding"][0]["system"] == "urn:huren:recognition-reason"
    assert order["reasonCode"][0]["coding"][0]["code"] == "R01"
    assert {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"} in order["code"]["coding"]
    assert {"system": "urn:huren:code:FNZYY", "code": "3001", "display": "胸部CT平扫"} in order["code"][
        "coding"
    ]
    assert order["bodySite"][0]["coding"][0]["code"] == "51185008"
    assert order["priority"] == "routine"


def test_lab_order_retest_reason(site: Site) -> None:
    conv = run(feed("08_"), site)
    order = one(conv, "ServiceRequest")
    assert order["reasonCode"][0]["coding"][0]["code"] == "R02"
    assert one(conv, "Specimen")["request"][0]["reference"] == f"ServiceRequest/{order['id']}"
    assert not of_type(conv, "DiagnosticReport")


def test_imaging_report_study_and_document(site: Site) -> None:
    conv = run(feed("04_"), site)
    study = one(conv, "ImagingStudy")
    assert study["identifier"][0] == {
        "system": "urn:dicom:uid",
        "value": "urn:oid:1.2.156.112604.1.2.3209231.20250311.7",
    }
    assert study["modality"][0]["code"] == "CT"
    assert study["started"] == "2025-03-11T14:30:00+08:00"
    assert resolve(conv, study["interpreter"][0])["name"][0]["text"] == "钱伟"
    report = one(conv, "DiagnosticReport")
    assert report["conclusion"] == "右肺下叶小结节，建议6个月后复查。"
    doc = one(conv, "DocumentReference")
    assert doc["docStatus"] == "final"
    assert {r["reference"] for r in doc["context"]["related"]} == {
        f"DiagnosticReport/{report['id']}",
        f"ImagingStudy/{study['id']}",
    }


def test_mdm_document_with_pdf(site: Site) -> None:
    conv = run(feed("06_"), site)
    doc = one(conv, "DocumentReference")
    assert doc["masterIdentifier"]["value"] == "DOC-FNXRMYY-CT20250311007"
    types = [c["attachment"]["contentType"] for c in doc["content"]]
    assert "application/pdf" in types
    assert doc["type"]["coding"][0]["code"] == "RAD"
    # the same study as the ORU report: one ImagingStudy id for both messages
    assert one(conv, "ImagingStudy")["id"] == one(run(feed("04_"), site), "ImagingStudy")["id"]


def test_gb18030_registration_with_gb_sex_code(site: Site) -> None:
    conv = run(feed("07_"), site)
    patient = one(conv, "Patient")
    assert patient["gender"] == "female"
    assert one(conv, "Encounter")["class"]["code"] == "AMB"


def test_merge_links_old_record(site: Site) -> None:
    conv = run(feed("09_"), site)
    patients = of_type(conv, "Patient")
    survivor = next(p for p in patients if p["active"])
    old = next(p for p in patients if not p["active"])
    assert old["link"] == [{"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}]
    assert survivor["link"] == [{"other": {"reference": f"Patient/{old['id']}"}, "type": "replaces"}]
    assert old["identifier"][0]["value"] == "MZ2024009911"
    # the old record's id is the one an earlier message for that MRN created
    earlier = run(
        feed("09_").replace("ZY2025000188", "MZ2024009911").replace("MRG|MZ2024009911", "MRG|X1"), site
    )
    assert any(p["id"] == old["id"] for p in of_type(earlier, "Patient"))


def test_correction_updates_the_same_observation(site: Site) -> None:
    final = run(feed("02_"), site)
    corrected_text = (
        feed("02_")
        .replace("|11.6|", "|10.9|")
        .replace(
            "OBX|1|NM|WBC^白细胞计数^L||10.9|10\\S\\9/L|3.5-9.5|H|||F",
            "OBX|1|NM|WBC^白细胞计数^L||10.9|10\\S\\9/L|3.5-9.5|H|||C",
        )
    )
    corrected = run(corrected_text, site)
    before = next(o for o in of_type(final, "Observation") if o["code"]["coding"][0]["code"] == "WBC")
    after = next(o for o in of_type(corrected, "Observation") if o["code"]["coding"][0]["code"] == "WBC")
    assert before["id"] == after["id"]
    assert (after["status"], after["valueQuantity"]["value"]) == ("corrected", 10.9)


# --- national resident ID ---------------------------------------------------------------------

ADT = (
    "MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20250310091500||ADT^A04^ADT_A01|C1|P|2.5.1\r"
    "EVN|A04|20250310091500\r"
    "PID|1||{nid}^^^^NNCHN~M1^^^FNXRMYY^MR||王建国||{birth}|{sex}\r"
    "PV1|1|O|MZ|||||||||||||||||V1\r"
)


@pytest.mark.parametrize(
    ("nid", "birth", "sex", "field", "words"),
    [
        ("320923198504120011", "19850412", "M", 3, "check character"),
        ("32092319850412001", "19850412", "M", 3, "18 characters"),
        ("3209231985041200AX", "19850412", "M", 3, "17 digits"),
        ("320923198513320013", "19851332", "M", 3, "not a date"),
        ("32092319850412001X", "19850413", "M", 7, "PID-7 birth date 19850413 disagrees"),
        ("32092319850412001X", "19850412", "F", 8, "PID-8 sex F disagrees"),
        ("32092319850412001X", "19850412", "2", 8, "PID-8 sex F disagrees"),
    ],
)
def test_national_id_problems_are_located_errors(
    site: Site, nid: str, birth: str, sex: str, field: int, words: str
) -> None:
    with pytest.raises(HL7Error) as info:
        run(ADT.format(nid=nid, birth=birth, sex=sex), site)
    err = info.value
    assert (err.segment, err.sequence, err.field, err.component) == ("PID", 1, field, 1)
    assert err.code == "102" and err.ack_code == "AE" and err.severity == "E"
    assert words in err.message


def test_area_code_older_than_the_county_is_only_a_warning(site: Site) -> None:
    # 320923 (阜宁县) dates from 1983; residents born before got it when their ID was issued
    conv = run(ADT.format(nid="320923196504120010", birth="19650412", sex="M"), site)
    assert one(conv, "Patient")["identifier"][0]["value"] == "320923196504120010"
    assert [w.field for w in conv.warnings] == [3] and conv.warnings[0].severity == "W"


def test_missing_or_invalid_birth_date_is_accepted_without_it(site: Site) -> None:
    """The patient is identified by PID-3: a malformed PID-7 is warned about and left out (the
    message, a lab's results with it, is not refused over it)."""
    conv = run(ADT.format(nid="32092319850412001X", birth="", sex="M"), site)
    assert "birthDate" not in one(conv, "Patient")
    conv = run(ADT.format(nid="M2^^^FNXRMYY^MR~X", birth="19851340", sex="M").replace("^^^^NNCHN~M1", ""), site)
    assert "birthDate" not in one(conv, "Patient")
    assert [(w.segment, w.field, w.code, w.severity) for w in conv.warnings if w.field == 7] == [("PID", 7, "102", "W")]


# --- envelope ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "component", "code"),
    [
        (("|FNXRMYY|", "|NOWHERE|"), 4, 1, "103"),
        (("ADT^A04^ADT_A01", "QBP^Q22"), 9, 1, "200"),  # a query: not a feed huren converts
        (("ADT^A04^ADT_A01", "ADT^A99"), 9, 2, "201"),
        (("ADT^A04^ADT_A01", "ORU^R99"), 9, 2, "201"),  # (R30-R32 are converted since fam42)
    ],
)
def test_unknown_sender_and_unsupported_messages_are_rejected(
    site: Site, change: tuple[str, str], field: int, component: int, code: str
) -> None:
    text = ADT.format(nid="32092319850412001X", birth="19850412", sex="M").replace(*change, 1)
    with pytest.raises(HL7Error) as info:
        run(text, site)
    err = info.value
    assert (err.segment, err.field, err.component, err.code, err.ack_code) == (
        "MSH",
        field,
        component,
        code,
        "AR",
    )


def test_message_without_patient_identifier_is_refused(site: Site) -> None:
    with pytest.raises(HL7Error) as info:
        run(ADT.format(nid="", birth="19850412", sex="M").replace("^^^^NNCHN~M1^^^FNXRMYY^MR", ""), site)
    assert (info.value.segment, info.value.field, info.value.code) == ("PID", 3, "101")


def test_one_doctor_is_one_practitioner_across_messages(site: Site) -> None:
    admission = run(feed("01_"), site)  # PV1-7 D1001^陈^明^^^^^^FNXRMYY
    results = run(feed("02_"), site)  # ORC-12 D1001^陈^明 (no assigning authority)
    doctor = next(p for p in of_type(admission, "Practitioner") if p["identifier"][0]["value"] == "D1001")
    same = next(p for p in of_type(results, "Practitioner") if p["identifier"][0]["value"] == "D1001")
    assert doctor["id"] == same["id"]
    assert doctor["identifier"][0]["system"] == "urn:huren:practitioner:FNXRMYY"
    # and the patient of both messages is one resource too
    assert one(admission, "Patient")["id"] == one(results, "Patient")["id"]


def test_result_messages_mark_patient_and_encounter_create_only(site: Site) -> None:
    results = run(feed("02_"), site)
    patient, encounter = one(results, "Patient"), one(results, "Encounter")
    assert results.create_only == [f"Patient/{patient['id']}", f"Encounter/{encounter['id']}"]
    assert run(feed("01_"), site).create_only == []  # the ADT feed owns the demographics
