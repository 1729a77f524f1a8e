"""OBX value types, units, ranges and flags; OUL/OMG structures; time zones; unmapped codes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from adapters.convert import convert
from adapters.hl7v2.parser import parse
from engine.settings import Settings
from mappings.site import Site
from tests.test_convert import assert_valid_bundle, of_type, one

HEAD = (
    "MSH|^~\\&|LIS|FNXRMYY|HUREN|FUNING|20250310113000||ORU^R01^ORU_R01|V1|P|2.5.1\r"
    "PID|1||ZY1^^^FNXRMYY^MR||王建国||19850412|M\r"
    "ORC|RE|P1^HIS|F1^LIS||CM\r"
    "OBR|1|P1^HIS|F1^LIS|XCG^血常规^L|||20250310094500|||||||||||||||20250310112900|||F\r"
)


@pytest.fixture(scope="module")
def site() -> Site:
    return Site.load(Settings())


def observe(site: Site, obx: str) -> tuple[dict[str, Any], Any]:
    conv = convert(parse(HEAD + obx + "\r"), site)
    assert_valid_bundle(conv)
    return one(conv, "Observation"), conv


@pytest.mark.parametrize(
    ("obx", "expected"),
    [
        (
            "OBX|1|NM|WBC^白细胞^L||5|10\\S\\9/L|||||F",
            {
                "valueQuantity": {
                    "value": 5,
                    "unit": "10^9/L",
                    "system": "http://unitsofmeasure.org",
                    "code": "10*9/L",
                }
            },
        ),
        (
            "OBX|1|NM|WBC^白细胞^L||<0.5|g/L|||||F",
            {
                "valueQuantity": {
                    "value": 0.5,
                    "unit": "g/L",
                    "comparator": "<",
                    "system": "http://unitsofmeasure.org",
                    "code": "g/L",
                }
            },
        ),
        (
            "OBX|1|NM|WBC^白细胞^L||7.2|mg/dl^milligram per decilitre^UCUM|||||F",
            {
                "valueQuantity": {
                    "value": 7.2,
                    "unit": "milligram per decilitre",
                    "system": "http://unitsofmeasure.org",
                    "code": "mg/dl",
                }
            },
        ),
        (
            "OBX|1|SN|WBC^白细胞^L||>=^10|U/L|||||F",
            {
                "valueQuantity": {
                    "value": 10,
                    "unit": "U/L",
                    "comparator": ">=",
                    "system": "http://unitsofmeasure.org",
                    "code": "U/L",
                }
            },
        ),
        (
            "OBX|1|SN|WBC^白细胞^L||^1^:^128||||||F",
            {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 128}}},
        ),
        (
            "OBX|1|SN|WBC^白细胞^L||^2^-^4|/HP|||||F",
            {
                "valueRange": {
                    "low": {
                        "value": 2,
                        "unit": "/HP",
                        "system": "http://unitsofmeasure.org",
                        "code": "/[HPF]",
                    },
                    "high": {
                        "value": 4,
                        "unit": "/HP",
                        "system": "http://unitsofmeasure.org",
                        "code": "/[HPF]",
                    },
                }
            },
        ),
        ("OBX|1|ST|WBC^白细胞^L||阳性(+)||||||F", {"valueString": "阳性(+)"}),
        ("OBX|1|TX|WBC^白细胞^L||第一行~第二行||||||F", {"valueString": "第一行\n第二行"}),
        (
            "OBX|1|FT|WBC^白细胞^L||加粗\\H\\重点\\N\\\\.br\\下一行||||||F",
            {"valueString": "加粗重点\n下一行"},
        ),
        (
            "OBX|1|CWE|WBC^白细胞^L||260385009^Negative^SCT||||||F",
            {
                "valueCodeableConcept": {
                    "coding": [
                        {"system": "http://snomed.info/sct", "code": "260385009", "display": "Negative"}
                    ],
                    "text": "Negative",
                }
            },
        ),
        (
            "OBX|1|CE|WBC^白细胞^L||P^阳性^L||||||F",
            {
                "valueCodeableConcept": {
                    "coding": [{"system": "urn:huren:code:FNXRMYY", "code": "P", "display": "阳性"}],
                    "text": "阳性",
                }
            },
        ),
        ("OBX|1|DT|WBC^白细胞^L||20250301||||||F", {"valueDateTime": "2025-03-01"}),
        ("OBX|1|TS|WBC^白细胞^L||202503010830||||||F", {"valueDateTime": "2025-03-01T08:30:00+08:00"}),
        (
            "OBX|1|DTM|WBC^白细胞^L||20250301083000+0000||||||F",
            {"valueDateTime": "2025-03-01T08:30:00+00:00"},
        ),
        ("OBX|1|TM|WBC^白细胞^L||0830||||||F", {"valueTime": "08:30:00"}),
    ],
)
def test_value_types(site: Site, obx: str, expected: dict[str, Any]) -> None:
    obs, conv = observe(site, obx)
    values = {k: v for k, v in obs.items() if k.startswith("value")}
    assert values == expected
    assert conv.warnings == []


def test_invalid_numeric_is_kept_as_text_with_a_warning(site: Site) -> None:
    obs, conv = observe(site, "OBX|1|NM|WBC^白细胞^L||约5.2|10\\S\\9/L|||||F")
    assert obs["valueString"] == "约5.2"
    (warning,) = conv.warnings
    assert (warning.segment, warning.field, warning.severity) == ("OBX", 5, "W")


def test_unknown_value_type_is_kept_and_reported(site: Site) -> None:
    obs, conv = observe(site, "OBX|1|XYZ|WBC^白细胞^L||something||||||F")
    assert obs["valueString"] == "something"
    assert {"institution": "FNXRMYY", "kind": "value_type", "code": "XYZ", "where": "OBX-2"} in conv.unmapped


def test_ed_becomes_presented_form_not_an_observation(site: Site) -> None:
    pdf = base64.b64encode(b"%PDF-1.4 report").decode()
    conv = convert(parse(HEAD + f"OBX|1|ED|RPT^报告^L||LIS^AP^PDF^Base64^{pdf}||||||F\r"), site)
    assert not of_type(conv, "Observation")
    form = one(conv, "DiagnosticReport")["presentedForm"][0]
    assert form["contentType"] == "application/pdf"
    assert base64.b64decode(form["data"]) == b"%PDF-1.4 report"


def test_status_range_and_flags(site: Site) -> None:
    obs, conv = observe(site, "OBX|1|NM|K^钾^L||6.1|mmol/L|<5.3|HH~A|||P|||20250310100000")
    assert obs["status"] == "preliminary"
    assert obs["referenceRange"] == [
        {
            "text": "<5.3",
            "high": {"value": 5.3, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        }
    ]
    assert [i["coding"][0]["code"] for i in obs["interpretation"]] == ["HH", "A"]
    assert obs["effectiveDateTime"] == "2025-03-10T10:00:00+08:00"
    assert one(conv, "DiagnosticReport")["status"] == "final"  # OBR-25 F


def test_missing_status_is_a_warning(site: Site) -> None:
    obs, conv = observe(site, "OBX|1|NM|WBC^白细胞^L||5|g/L|||||")
    assert obs["status"] == "unknown"
    assert [(w.segment, w.field) for w in conv.warnings] == [("OBX", 11)]


def test_unmapped_code_and_unit_are_kept_and_listed(site: Site) -> None:
    obs, conv = observe(site, "OBX|1|NM|NEWTEST^新项目^L||5|furlongs|||||F")
    assert obs["code"]["coding"] == [
        {"system": "urn:huren:code:FNXRMYY", "code": "NEWTEST", "display": "新项目"}
    ]
    # the unit code is kept as sent, in the institution's unit system (not UCUM)
    assert obs["valueQuantity"] == {"value": 5, "unit": "furlongs", "system": "urn:huren:unit:FNXRMYY",
                                    "code": "furlongs"}
    assert {"institution": "FNXRMYY", "kind": "code", "code": "NEWTEST", "where": "OBX-3"} in conv.unmapped
    assert {"institution": "FNXRMYY", "kind": "unit", "code": "furlongs", "where": "OBX-6"} in conv.unmapped


def test_institution_time_zone_applies_to_timestamps_without_offset(tmp_path: Path) -> None:
    (tmp_path / "institutions.yaml").write_text(
        "- {code: FNXRMYY, name: 测试医院, community: c, timezone: Asia/Urumqi}\n", encoding="utf-8"
    )
    site = Site.load(Settings(site=tmp_path))
    conv = convert(parse(HEAD + "OBX|1|NM|WBC^白细胞^L||5|g/L|||||F|||20250310100000\r"), site)
    assert one(conv, "Observation")["effectiveDateTime"] == "2025-03-10T10:00:00+06:00"


def test_oul_r22_specimen_first(site: Site) -> None:
    text = (
        "MSH|^~\\&|LIS|FNXRMYY|HUREN|FUNING|20250310113000||OUL^R22^OUL_R22|U1|P|2.5.1\r"
        "PID|1||ZY1^^^FNXRMYY^MR||王建国||19850412|M\r"
        "SPM|1|BB1||BLD^全血^HL70487|||||||||||||20250310094500\r"
        "OBR|1|P1^HIS|F1^LIS|XCG^血常规^L|||20250310094500|||||||||||||||20250310112900|||F\r"
        "ORC|RE|P1^HIS|F1^LIS||CM\r"
        "OBX|1|NM|WBC^白细胞^L||5|10\\S\\9/L|||||F\r"
    )
    conv = convert(parse(text), site)
    assert_valid_bundle(conv)
    spec = one(conv, "Specimen")
    assert one(conv, "Observation")["specimen"] == {"reference": f"Specimen/{spec['id']}"}
    assert one(conv, "DiagnosticReport")["specimen"] == [{"reference": f"Specimen/{spec['id']}"}]


def test_omg_o19_imaging_order_with_ipc(site: Site) -> None:
    text = (
        "MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20250310113000||OMG^O19^OMG_O19|G1|P|2.5.1\r"
        "PID|1||ZY1^^^FNXRMYY^MR||王建国||19850412|M\r"
        "ORC|NW|P9^HIS|||||||20250310110000|||||||R99^连续监测\r"
        "OBR|1|P9^HIS||CT001^胸部CT平扫^L|||20250310110000\r"
        "IPC|ACC9|RP9|1.2.3.4.5|SPS9|CT\r"
    )
    conv = convert(parse(text), site)
    assert_valid_bundle(conv)
    order = one(conv, "ServiceRequest")
    assert order["reasonCode"][0]["coding"][0]["code"] == "R99"
    assert {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"} in order["code"]["coding"]
    kinds = {i.get("type", {}).get("coding", [{}])[0].get("code") for i in order["identifier"]}
    assert {"PLAC", "ACSN"} <= kinds
    assert {"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4.5"} in order["identifier"]


def test_imaging_series_and_body_site_from_obx(site: Site) -> None:
    text = (
        "MSH|^~\\&|PACS|FNXRMYY|HUREN|FUNING|20250311163000||ORU^R01^ORU_R01|S1|P|2.5.1\r"
        "PID|1||ZY1^^^FNXRMYY^MR||王建国||19850412|M\r"
        "OBR|1|P5^HIS|F5^PACS|CT001^胸部CT平扫^L|||20250311143000||||||||||A5|||||||CT|F"
        + "|"
        * 21
        + "51185008^胸部^SCT\r"
        "OBX|1|ST|113014^Study Instance UID^DCM||1.2.3.4||||||F\r"
        "OBX|2|ST|112002^Series Instance UID^DCM||1.2.3.4.1||||||F\r"
        "OBX|3|ST|112002^Series Instance UID^DCM||1.2.3.4.2||||||F\r"
    )
    conv = convert(parse(text), site)
    assert_valid_bundle(conv)
    study = one(conv, "ImagingStudy")
    assert study["numberOfSeries"] == 2
    assert [s["uid"] for s in study["series"]] == ["1.2.3.4.1", "1.2.3.4.2"]
    assert study["series"][0]["bodySite"]["code"] == "51185008"
    assert study["series"][0]["modality"]["code"] == "CT"


def test_result_date_falls_back_to_the_message_time_with_a_warning(site: Site) -> None:
    text = (
        "MSH|^~\\&|LIS|FNXRMYY|HUREN|FUNING|20250310113000||ORU^R01^ORU_R01|E1|P|2.5.1\r"
        "PID|1||ZY1^^^FNXRMYY^MR||王建国||19850412|M\r"
        "OBR|1|P7^HIS|F7^LIS|XCG^血常规^L\r"
        "OBX|1|NM|WBC^白细胞^L||5|g/L|||||F\r"
    )
    conv = convert(parse(text), site)
    assert_valid_bundle(conv)
    assert one(conv, "Observation")["effectiveDateTime"] == "2025-03-10T11:30:00+08:00"
    assert [(w.segment, w.field) for w in conv.warnings] == [("OBX", 14)]


def test_blank_values_leave_no_empty_elements(site: Site) -> None:
    obs, conv = observe(site, "OBX|1|NM|WBC^白细胞^L||~~|g/L|||||F")
    assert not any(k.startswith("value") for k in obs)
    assert obs["dataAbsentReason"]["coding"][0]["code"] == "unknown"


def test_identifier_systems_are_valid_uris(site: Site) -> None:
    text = HEAD.replace(
        "PID|1||ZY1^^^FNXRMYY^MR|",
        "PID|1||ZY1^^^FNXRMYY^MR~D1^^^WJW&1.2.156.&ISO^DL~D2^^^&1.2.156.1&ISO^PPN~D3^^^X&http://a b&URI^XX|",
    )
    conv = convert(parse(text), site)
    assert_valid_bundle(conv)
    systems = {i["value"]: i.get("system") for i in one(conv, "Patient")["identifier"]}
    assert systems["D1"] == "urn:huren:id:WJW"  # "1.2.156." is not an OID
    assert systems["D2"] == "urn:oid:1.2.156.1"
    assert systems["D3"] == "urn:huren:id:X"  # a URI with a space is not a URI


def test_cached_item_codes_are_reported_and_copied_per_message(site: Site) -> None:
    """Item codings are computed once per site, institution and item: every conversion must
    still list its unmapped codes, and one bundle's edits must not leak into the next."""
    first = convert(parse(HEAD + "OBX|1|NM|NEWTEST2^新项目^L||5|g/L|||||F\r"), site)
    one(first, "Observation")["code"]["coding"][0]["display"] = "edited downstream"
    one(first, "Observation")["code"]["coding"].append({"system": "urn:x", "code": "y"})
    second = convert(parse(HEAD + "OBX|1|NM|NEWTEST2^新项目^L||5|g/L|||||F\r"), site)
    assert one(second, "Observation")["code"] == {
        "coding": [{"system": "urn:huren:code:FNXRMYY", "code": "NEWTEST2", "display": "新项目"}],
        "text": "新项目",
    }
    for conv in (first, second):
        assert {"institution": "FNXRMYY", "kind": "code", "code": "NEWTEST2", "where": "OBX-3"} in conv.unmapped
    # the same raw item under other delimiters reads differently: not served from the cache
    caret = convert(parse(HEAD + "OBX|1|NM|Q1#Q2^T^L||5|g/L|||||F\r"), site)
    hash_head = HEAD.replace("MSH|^~\\&|", "MSH|#~\\&|").replace("^", "#")
    hashed = convert(parse(hash_head + "OBX|1|NM|Q1#Q2^T^L||5|g/L|||||F\r"), site)
    assert one(caret, "Observation")["code"]["coding"][0]["code"] == "Q1#Q2"
    assert one(hashed, "Observation")["code"]["coding"][0]["code"] == "Q1"


def test_reference_ranges_keep_their_unit_per_result(site: Site) -> None:
    """Parsed range bounds are cached by text; the unit comes from each result."""
    grams, _ = observe(site, "OBX|1|NM|HGB^血红蛋白^L||138|g/L|130-175|||F")
    litres, _ = observe(site, "OBX|1|NM|HGB^血红蛋白^L||13.8|g/dL|130-175|||F")
    assert grams["referenceRange"][0]["low"]["unit"] == "g/L"
    assert litres["referenceRange"][0]["low"]["unit"] == "g/dL"
    assert grams["referenceRange"][0]["low"]["value"] == 130
    unit = {k: litres["valueQuantity"][k] for k in ("unit", "system", "code") if k in litres["valueQuantity"]}
    assert litres["referenceRange"][0]["high"] == {"value": 175, **unit}


def test_repeating_value_keeps_every_repetition(site: Site) -> None:
    obs, _ = observe(site, "OBX|1|NM|BP^血压^L||120~80|mm[Hg]^mmHg^UCUM|||||F")
    assert obs["valueQuantity"]["value"] == 120
    assert [c["valueQuantity"]["value"] for c in obs["component"]] == [80]
    assert obs["component"][0]["code"] == obs["code"]
