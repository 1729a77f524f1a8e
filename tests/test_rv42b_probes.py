"""rv42b: an interface engineer's independent check of conversion and ingest on main (forty-second round).
Real HL7 v2.5.1 written for the probes in a Chinese county hospital's style (阜宁县人民医院's LIS and HIS, local
codes, UTF-8 / GB18030), shaped after the HL7 v2.5.1 ELR and DFT segment definitions; sent over a real MLLP
socket (``mllp``) or ``POST /hl7v2`` into the module's real store, the FHIR read back over ``/fhir``.

Each defect found is a STRICT xfail naming its severity and what it shows; the passing probes kept guard the
conversions this review checked value by value (decimals' precision, escapes, SN comparators and ranges,
timestamps' precision and offsets, ACK MSH-9 / MSA-2 / ERR-2 / ERR-3 / MSH-18)."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import base64
import json
import re

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, mllp, module_engine, module_http, post  # noqa: F401 -- the module's engine

LOINC = "http://loinc.org"
HDR = "MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|20261201091500+0800||{kind}|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\r"


def _obr(control: str, code: str) -> str:
    """An OBR of order ``control`` (placer P<control>, filler F<control>), OBR-7 08:30, OBR-22 09:10, OBR-25 F."""
    f = ["OBR", "1", "P" + control, "F" + control, code, "", "", "20261201083000"] + [""] * 18
    f[15], f[22], f[25] = "BLD", "20261201091000", "F"
    return "|".join(f) + "\r"


def _oru(control: str, mrn: str, obr_code: str, *obx: str) -> str:
    return (HDR.format(app="LIS", kind="ORU^R01^ORU_R01", control=control)
            + f"PID|1||{mrn}^^^FNXRMYY^MR||王^芳||19900101|F\r" + _obr(control, obr_code) + "".join(obx))


def _resources(engine: Engine, http: TestClient, control: str, rtype: str) -> list[tuple[dict, str]]:
    """The ``rtype`` resources FNXRMYY's message ``control`` wrote: (parsed, the response text as served)."""
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None, control
    got = []
    for ref in doc.get("resources") or []:
        if ref.startswith(rtype + "/"):
            r = http.get(f"/fhir/{ref}")
            assert r.status_code == 200, r.text
            got.append((r.json(), r.text))
    return got


def _by_code(engine: Engine, http: TestClient, control: str) -> dict[str, tuple[dict, str]]:
    return {o["code"]["coding"][0]["code"]: (o, text) for o, text in _resources(engine, http, control, "Observation")}


# ---- defects ---------------------------------------------------------------------------------------------------


def test_a_code_of_an_unknown_coding_system_is_not_given_the_local_codes_loinc_and_item(
        engine: Engine, http: TestClient) -> None:
    ack = post(http, _oru("RV42B01", "RV42B01", "XCG^Foreign panel^ZZLAB",
                          "OBX|1|NM|WBC^Wound Bed Classification^WOUNDSYS||3|{score}|||||F|||20261201090000\r"))
    assert ack_code_of(ack) == "AA", ack
    ((obs, _),) = _resources(engine, http, "RV42B01", "Observation")
    ((report, _),) = _resources(engine, http, "RV42B01", "DiagnosticReport")
    assert [c for c in obs["code"]["coding"] if c["system"] == LOINC] == [], obs["code"]
    assert [c for c in report["code"]["coding"] if c["system"] in (LOINC, "urn:huren:recognition-item")] == [], \
        report["code"]
    # what was sent stays told apart from the hospital's own codes of the same spelling
    assert obs["code"]["coding"][0]["system"] != "urn:huren:code:FNXRMYY", obs["code"]


def test_ft1_4_transaction_date_range_keeps_its_end(engine: Engine, http: TestClient) -> None:
    msg = (HDR.format(app="HIS", kind="DFT^P03^DFT_P03", control="RV42B02") + "EVN|P03|20261201091500\r"
           "PID|1||RV42B02^^^FNXRMYY^MR||赵^六||19700101|M\rPV1|1|I|内科病区^301^2\r"
           "FT1|1|||20261201080000^20261201090000|20261201091000|CG|250101^静脉注射^L|||2|25.00&CNY|12.50&CNY\r")
    (ack,) = mllp(engine, msg.encode("utf-8"))
    assert ack_code_of(ack) == "AA", ack
    ((charge, _),) = _resources(engine, http, "RV42B02", "ChargeItem")
    assert charge.get("occurrencePeriod") == {"start": "2026-12-01T08:00:00+08:00",
                                              "end": "2026-12-01T09:00:00+08:00"}, charge


def test_elr_obx_18_19_25_arrive(engine: Engine, http: TestClient) -> None:
    obx = ("OBX|1|CWE|625-4^Bacteria identified in Stool by Culture^LN||27268008^Salmonella^SCT||||||F|||"
           "20261201083000+0800|||0088^Culture^L|VITEK2-0042^^L|20261202093000+0800||||"
           "检验科^L^^^^FNXRMYY&2.16.156.1&ISO^XX^^^12345|人民路1号^^阜宁县^江苏省^224400|2001^王^主任\r")
    ack = post(http, _oru("RV42B03", "RV42B03", "XJ01^粪便培养^L", obx))
    assert ack_code_of(ack) == "AA", ack
    ((obs, text),) = _resources(engine, http, "RV42B03", "Observation")
    assert "VITEK2-0042" in text, obs                      # OBX-18
    assert "2026-12-02T09:30:00+08:00" in text, obs        # OBX-19
    assert "王主任" in text or '"王"' in text, obs          # OBX-25


def test_an_omi_o23_imaging_order_is_converted(engine: Engine, http: TestClient) -> None:
    msg = (HDR.format(app="RIS", kind="OMI^O23^OMI_O23", control="RV42B08")
           + "PID|1||RV42B08^^^FNXRMYY^MR||赵^六||19700101|M\rPV1|1|O\r"
           "ORC|NW|RV42B08P|||||||20261201090000|||1001^李^医生\rTQ1|1||||||20261201100000\r"
           "OBR|1|RV42B08P||CT001^胸部CT平扫^L|||20261201090000\r"
           "IPC|ACC42B08|RP42B08|1.2.156.112605.42.8|SPS42B08|CT\r")
    ack = post(http, msg)
    assert ack_code_of(ack) == "AA", ack
    ((order, _),) = _resources(engine, http, "RV42B08", "ServiceRequest")
    assert order["code"]["coding"][0]["code"] == "CT001", order
    assert "ACC42B08" in json.dumps(order), order


def test_a_thinner_restatement_keeps_the_unit_and_the_time_stated_before(engine: Engine, http: TestClient) -> None:
    first = _oru("RV42B09a", "RV42B09", "CBC^血常规^L",
                 "OBX|1|NM|HGB^血红蛋白^L||130|g/L|120-160|N|||F|||20261201090000\r")
    later = _oru("RV42B09b", "RV42B09", "CBC^血常规^L", "OBX|1|NM|HGB^血红蛋白^L||130||||||F\r")
    later = later.replace("20261201091500+0800", "20261201101500+0800", 1)  # an hour later (MSH-7)
    later = later.replace("PRV42B09b|FRV42B09b", "PRV42B09a|FRV42B09a")  # the same order
    assert ack_code_of(post(http, first)) == "AA"
    ack = post(http, later)
    assert ack_code_of(ack) == "AA", ack
    ((obs, _),) = _resources(engine, http, "RV42B09b", "Observation")
    assert obs["valueQuantity"].get("code") == "g/L", obs["valueQuantity"]
    assert obs["effectiveDateTime"] == "2026-12-01T09:00:00+08:00", obs["effectiveDateTime"]


def test_two_messages_in_one_body_are_told_in_the_senders_words(engine: Engine, http: TestClient) -> None:
    def one(control: str) -> str:
        return (HDR.format(app="HIS", kind="ADT^A04^ADT_A01", control=control) + "EVN|A04|20261201091500\r"
                f"PID|1||{control}^^^FNXRMYY^MR||吴^十||19800101|F\rPV1|1|O\r")
    ack = post(http, one("RV42B10a") + one("RV42B10b"))
    (err,) = err_lines(ack)
    assert err.split("|")[2] == "MSH^2", err
    assert "iter_messages" not in err, err


def test_an_nm_beyond_a_double_is_a_located_warning_not_an_internal_error(engine: Engine, http: TestClient) -> None:
    huge = "1" + "0" * 309
    ack = post(http, _oru("RV42B11", "RV42B11", "BIO^生化^L",
                          f"OBX|1|NM|HGB^血红蛋白^L||{huge}|g/L|||||F\r",
                          "OBX|2|NM|K^钾^L||4.1|mmol/L|3.5-5.5||||F\r"))
    assert ack_code_of(ack) == "AA", ack
    (err,) = err_lines(ack)
    assert err.split("|")[2] == "OBX^1^5", err
    assert "K" in _by_code(engine, http, "RV42B11")


def test_a_fhir_quantity_beyond_a_double_is_a_4xx_not_500(engine: Engine, http: TestClient) -> None:
    assert ack_code_of(post(http, HDR.format(app="HIS", kind="ADT^A04^ADT_A01", control="RV42B12")
                            + "EVN|A04|20261201091500\rPID|1||RV42B12^^^FNXRMYY^MR||吴^十||19800101|F\r"
                              "PV1|1|O\r")) == "AA"
    ((patient, _),) = _resources(engine, http, "RV42B12", "Patient")
    body = ('{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/'
            + patient["id"] + '"},"effectiveDateTime":"2026-12-01","performer":[{"display":"x"}],"category":[{"coding":'
            '[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],'
            '"valueQuantity":{"value":1' + "0" * 309 + ',"unit":"g/L"}}')
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = http.headers["Authorization"]
        r = client.post("/fhir/Observation", content=body.encode(), headers={"Content-Type": "application/fhir+json"})
    assert 400 <= r.status_code < 500 and r.json()["resourceType"] == "OperationOutcome", (r.status_code, r.text)


# ---- guards: what this review checked and found sound ----------------------------------------------------------


def test_values_arrive_exactly_decimals_escapes_comparators_ranges_and_times(engine: Engine, http: TestClient) -> None:
    """Decimal precision as sent (6.50, 0.0100, -0.50), escapes (\\F\\ \\S\\ \\T\\ \\E\\ \\X0D0A\\ \\.br\\) in values
    and NTE, SN comparators and ranges, OBX-8 repetitions, OBX-14 at year / day / fractional-second precision
    with its offset, Chinese text in UTF-8: each arrives as sent."""
    control = "RV42B04"
    msg = _oru(control, "RV42B04", "CBC^血常规^L",
               "OBX|1|NM|WBC^白细胞^L||6.50|10*9/L|3.50-9.50|N|||F|||20261201090000+0800\r",
               "OBX|2|NM|HGB^血红蛋白^L||0.0100|g/L|<130|L|||F|||2026\r",
               "NTE|1|L|复查 A\\F\\B\\S\\C\\T\\D\\E\\E\\.br\\第二行\r",
               "OBX|3|ST|ABO^血型^L||A\\S\\B 型\\X0D0A\\end|||H~A|||F|||20261201\r",
               "OBX|4|SN|CRP^C反应蛋白^L||>=^5.0|mg/L|0-10||||F|||20261201093015.1234+0800\r",
               "OBX|5|NM|K^钾^L||-0.50|mmol/L|3.5-5.5|LL|||F\r",
               "OBX|6|SN|GLU^血糖^L||^10^-^20|mmol/L|||||F\r",
               "OBX|7|SN|TIT^滴度^L||^1^:^128||||||F\r")
    ack = post(http, msg)
    assert ack_code_of(ack) == "AA", ack
    got = _by_code(engine, http, control)
    assert re.search(r'"valueQuantity":\{"value":6\.50,', got["WBC"][1]), got["WBC"][1]
    assert re.search(r'"low":\{"value":3\.50,', got["WBC"][1]) and re.search(r'"high":\{"value":9\.50,', got["WBC"][1])
    assert re.search(r'"valueQuantity":\{"value":0\.0100,', got["HGB"][1]), got["HGB"][1]
    assert got["HGB"][0]["effectiveDateTime"] == "2026"
    assert got["HGB"][0]["note"] == [{"text": "复查 A|B^C&D\\E\n第二行"}]
    assert got["ABO"][0]["valueString"] == "A^B 型\r\nend"
    assert got["ABO"][0]["effectiveDateTime"] == "2026-12-01"
    assert [i["coding"][0]["code"] for i in got["ABO"][0]["interpretation"]] == ["H", "A"]
    crp = got["CRP"][0]
    assert crp["valueQuantity"]["comparator"] == ">=" and re.search(r'"value":5\.0,', got["CRP"][1])
    assert crp["effectiveDateTime"] == "2026-12-01T09:30:15.1234+08:00"
    assert re.search(r'"valueQuantity":\{"value":-0\.50,', got["K"][1]), got["K"][1]
    assert got["GLU"][0]["valueRange"]["low"]["value"] == 10 and got["GLU"][0]["valueRange"]["high"]["value"] == 20
    assert got["TIT"][0]["valueRatio"] == {"numerator": {"value": 1}, "denominator": {"value": 128}}


def test_ack_names_trigger_echoes_control_id_and_charset_and_locates_errors(engine: Engine, http: TestClient) -> None:
    """The ACK: MSH-9 ACK^<trigger>^ACK, MSA-2 = MSH-10, MSH-18 echoed; an unsupported family AR with ERR-2
    MSH^1^9^^1 and ERR-3 200 (table 0357); a bad resident ID check character AE with ERR-2 PID^1^3^2^1, ERR-3 102;
    a GB18030 message over MLLP answered in its own charset; the raw kept with its codec."""
    gb = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500+0800||ADT^A04^ADT_A01|RV42B05|P|2.5.1|||AL|NE|CHN|"
          "GB 18030-2000\rEVN|A04|20261201091500\rPID|1||RV42B05^^^FNXRMYY^MR||𠀋^龘䶮||19850412|M\rPV1|1|O\r")
    raw = gb.encode("gb18030")
    (ack,) = mllp(engine, raw)
    msh, msa = ack.decode("gb18030").split("\r")[:2]
    fields = msh.split("|")
    assert fields[8] == "ACK^A04^ACK" and fields[17] == "GB 18030-2000", msh
    assert msa == "MSA|AA|RV42B05", msa
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "RV42B05"))
    assert doc is not None and base64.b64decode(doc["raw"]) == raw
    ((patient, _),) = _resources(engine, http, "RV42B05", "Patient")
    assert patient["name"][0]["family"] == "𠀋" and patient["name"][0]["given"] == ["龘䶮"]

    qry = HDR.format(app="HIS", kind="QRY^A19^QRY_A19", control="RV42B06") + "QRD|20261201|R|I|Q1|||10^RD|X|DEM\r"
    ack = post(http, qry)
    assert ack.split(b"\r")[1] == b"MSA|AR|RV42B06", ack
    (err,) = err_lines(ack)
    assert err.split("|")[2:4] == ["MSH^1^9^^1", "200^Unsupported message type^HL70357"], err

    bad = (HDR.format(app="HIS", kind="ADT^A04^ADT_A01", control="RV42B07") + "EVN|A04|20261201091500\r"
           "PID|1||RV42B07^^^FNXRMYY^MR~320923198504120017^^^^NNCHN||李^小龙||19850412|M\rPV1|1|O\r")
    ack = post(http, bad)
    assert ack.split(b"\r")[1] == b"MSA|AE|RV42B07", ack
    (err,) = err_lines(ack)
    assert err.split("|")[2:5] == ["PID^1^3^2^1", "102^Data type error^HL70357", "E"], err


def test_garbage_and_empty_bodies_get_a_clear_answer_never_500(engine: Engine, http: TestClient) -> None:
    r = http.post("/hl7v2", content=b"", headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", r.text
    r = http.post("/hl7v2", content=b"\xff\xfe garbage", headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200, r.text
    assert r.content.split(b"\r")[1] == b"MSA|AR|" and b"no MSH segment found" in r.content, r.content


def test_ft1_4_a_start_alone_is_an_instant_and_a_reversed_range_is_warned(engine: Engine, http: TestClient) -> None:
    """The lead, with rv42b HIGH 3's fix: FT1-4's start alone stays occurrenceDateTime (no Period invented), and
    a range ending before it starts is W 102 at FT1-4, nothing of it stored (R4 per-1), the line kept."""
    def dft(control: str, when: str) -> str:
        return (HDR.format(app="HIS", kind="DFT^P03^DFT_P03", control=control) + "EVN|P03|20261201091500\r"
                f"PID|1||{control}^^^FNXRMYY^MR||赵^六||19700101|M\rPV1|1|I|内科病区^301^2\r"
                f"FT1|1|||{when}|20261201091000|CG|250101^静脉注射^L|||2|25.00&CNY|12.50&CNY\r")
    (ack,) = mllp(engine, dft("RV42B02S", "20261201080000").encode("utf-8"))
    assert ack_code_of(ack) == "AA" and not err_lines(ack), ack
    ((charge, _),) = _resources(engine, http, "RV42B02S", "ChargeItem")
    assert charge["occurrenceDateTime"] == "2026-12-01T08:00:00+08:00" and "occurrencePeriod" not in charge, charge
    (ack,) = mllp(engine, dft("RV42B02R", "20261201090000^20261201080000").encode("utf-8"))
    assert ack_code_of(ack) == "AA", ack
    (err,) = err_lines(ack)
    assert err.split("|")[2].startswith("FT1^1^4") and err.split("|")[4] == "W", err
    ((charge, _),) = _resources(engine, http, "RV42B02R", "ChargeItem")
    assert "occurrencePeriod" not in charge and "occurrenceDateTime" not in charge, charge
