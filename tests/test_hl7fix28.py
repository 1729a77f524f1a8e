"""hl7fix28 (twenty-eighth round): the W 103 "table value not found" decided against the HL7 table of the
message's version (``adapters/hl7v2/tables.py``, hl7apy's tables), GB/T 2261.1 sex codes, the HTTP
charsets huren reads (``adapters/hl7v2/charsets.py``), one case rule for ID fields. Real HL7 v2 bytes over
POST /hl7v2 (FastAPI's TestClient) into one real engine (SQLite), module-scoped."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests import hl7_calls
from tests.hl7_calls import err_lines as errs
from tests.hl7_calls import module_engine, module_http, post  # noqa: F401  (the module's engine and client)


def msh(control: str, msh9: str, version: str = "2.5.1") -> str:
    return f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||{msh9}|{control}|P|{version}\r"


def adt(control: str, sex: str = "M", pv1_2: str = "O", version: str = "2.5.1") -> str:
    return hl7_calls.adt(control, mrn="F28", sex=sex, pv1_2=pv1_2, version=version, evn="20261201")


def patient(http: TestClient, control: str) -> dict[str, Any]:
    r = http.get("/fhir/Patient", params={"identifier": f"F28{control}"})
    assert r.status_code == 200, r.text
    (entry,) = r.json()["entry"]
    return entry["resource"]


@pytest.mark.parametrize("control, code, gender", [
    ("G5", "5", "male"),     # 女性改(变)为男性
    ("G6", "6", "female"),   # 男性改(变)为女性
    ("G9", "9", "unknown"),  # 未说明的性别: not stated (read as "other" before)
    ("G0", "0", "unknown"),  # 未知的性别
])
def test_gb_t_2261_1_sex_codes_are_read_without_a_warning(http: TestClient, control: str, code: str,
                                                          gender: str) -> None:
    """GB/T 2261.1-2003 codes some HIS send in PID-8: 5 and 6 were told 103 "not in table 0001" and left
    out, 9 (not stated) was read as ``other``."""
    ack = post(http, adt(control, sex=code))
    assert ack_code_of(ack) == "AA" and errs(ack) == [], ack
    assert patient(http, control)["gender"] == gender


def test_a_lower_case_patient_class_is_read_as_the_sex_is(http: TestClient) -> None:
    """One case rule for every ID field: PV1-2 ``i`` is read as ``I`` (inpatient) as PID-8 ``f`` is female,
    with no warning."""
    ack = post(http, adt("K2", sex="f", pv1_2="i"))
    assert ack_code_of(ack) == "AA" and errs(ack) == [], ack
    assert patient(http, "K2")["gender"] == "female"
    r = http.get("/fhir/Encounter", params={"subject:Patient.identifier": "F28K2"})
    assert r.status_code == 200, r.text
    assert [e["resource"]["class"]["code"] for e in r.json()["entry"]] == ["IMP"]


def vxu(control: str, version: str, action: str) -> str:
    return (msh(control, "VXU^V04^VXU_V04", version) + f"PID|1||F28{control}^^^FNXRMYY^MR||张^三||19850412|M\r"
            "ORC|RE|" + control + "^HIS\r"
            f"RXA|0|1|20261201093000||CN-HEPB^乙肝疫苗^L|10|ug^微克^UCUM||00^New Record^NIP001|||||||||||CP|{action}\r")


def test_rxa_21_x_is_decided_by_the_messages_version(http: TestClient) -> None:
    """RXA-21 ``X`` is in table 0323 of v2.5/2.5.1 and in 0206 from v2.6 (hl7apy's v2.6 0206 lacks it:
    ``hl7_table_errata``), not in v2.4's 0323: v2.5.1, 2.6 and 2.7 senders are not told 103 (they were:
    the vocabulary lacks X), a v2.4 sender is."""
    for control, version in (("X25", "2.5.1"), ("X26", "2.6"), ("X27", "2.7")):
        ack = post(http, vxu(control, version, "X"))
        assert ack_code_of(ack) == "AA" and not [e for e in errs(ack) if "|RXA^1^21" in e], ack
    ack = post(http, vxu("X24", "2.4", "X"))
    (err,) = [e for e in errs(ack) if "|RXA^1^21" in e]
    assert "RXA^1^21^103&" in err, err  # v2.4's ERR-1 (ELD): where and code, no text


def test_a_value_its_table_holds_but_huren_does_not_map_is_counted_once_as_unmapped(http: TestClient) -> None:
    """FT1-6 ``CO`` (co-payment, table 0017): no ERR, one unmapped entry in the fidelity report."""
    ack = post(http, msh("F2", "DFT^P03^DFT_P03").replace("FNXRMYY", "FNZYY") + "EVN|P03|20261201\r"
               "PID|1||F28F2^^^FNZYY^MR||张^三||19850412|M\rPV1|1|O\r"
               "FT1|1|T-2||20261201||CO|DRUG-7^头孢^L||1|1||40.00&CNY\r")
    assert ack_code_of(ack) == "AA" and errs(ack) == [], ack
    inst = http.get("/admin/fidelity", params={"institution": "FNZYY"}).json()["institutions"]["FNZYY"]
    about = [i for i in inst["items"] if i["where"] == "FT1-6"]
    assert [(i["kind"], i["value"]) for i in about] == [("chargeitem_status", "CO")], about


@pytest.mark.parametrize("charset", ["utf-16", "UTF-32"])
def test_a_utf16_body_is_refused_415_saying_why(http: TestClient, charset: str) -> None:
    """HL7 v2 ER7 is read here as bytes with single-byte delimiters: a UTF-16 body declared so passed the
    charset check and was refused AR "no MSH"; now 415 with the reason."""
    r = http.post("/hl7v2", content=adt("W1").encode(charset.lower()),
                  headers={"Content-Type": f"x-application/hl7-v2+er7; charset={charset}"})
    assert r.status_code == 415 and r.json()["resourceType"] == "OperationOutcome", r.content
    assert "single" in r.json()["issue"][0]["diagnostics"], r.json()


def test_the_http_charset_is_kept_by_its_iana_name(engine: Engine, http: TestClient) -> None:
    """The set checked is the set kept: ``ISO-IR 100`` (latin-1) is kept as ``ISO-8859-1``, which the same
    owner (``charsets.codec_for``) reads back; a Latin-1 name arrives as sent."""
    raw = adt("L1").replace("张^三", "Müller^Anne").encode("latin-1")
    r = http.post("/hl7v2", content=raw, headers={"Content-Type": 'text/plain; charset="ISO-IR 100"'})
    assert ack_code_of(r.content) == "AA", r.content
    assert patient(http, "L1")["name"][0]["family"] == "Müller"
