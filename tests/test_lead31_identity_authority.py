"""Found by the lead (thirty-first round, from writerfix31's report): a patient number's assigning
authority (PID-3 CX-4) and type (CX-5) are not part of the stored record key. The LIS's own number
``L77^^^LIS^PI`` is stored as ``urn:huren:mrn:<MSH-4>|L77``, the key of the HIS's record number ``L77``
of the same institution, so a result of another person is filed under the HIS's patient, answered AA.

Real HL7 over ``POST /hl7v2`` into a real store, read back over ``/fhir``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from tests.hl7_calls import module_engine, module_http, post  # noqa: F401 -- the module's engine and client

HIS = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A04^ADT_A01|ID31-1|P|2.5.1\r"
       "EVN|A04|20261201091500\rPID|1||L77^^^FNXRMYY^MR||张^三||19850412|M\rPV1|1|O\r")
LIS = ("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|ID31-2|P|2.5.1\r"
       "PID|1||L77^^^LIS^PI||李^一||19700101|F\r"
       "OBR|1|O31|L31|GLU^血糖^L|||20261201083000||||G|||20261201083500|BLD||||||||20261201091000|||F\r"
       "OBX|1|NM|GLU^血糖^L||5.6|mmol/L|||||F|||20261201090000\r")


def test_the_lis_own_number_is_not_the_his_record_number(http: TestClient) -> None:
    assert ack_code_of(post(http, HIS)) == "AA"
    his = http.get("/fhir/Patient", params={"identifier": "urn:huren:mrn:FNXRMYY|L77"}).json()["entry"]
    assert [e["resource"]["name"][0]["text"] for e in his] == ["张三"]
    man = his[0]["resource"]["id"]
    answer = post(http, LIS)
    results = http.get("/fhir/Observation", params={"code": "GLU"}).json().get("entry", [])
    filed_under_him = [e for e in results if e["resource"]["subject"]["reference"] == f"Patient/{man}"]
    # either refused, or filed under a record of her own: never under his
    assert ack_code_of(answer) != "AA" or not filed_under_him, (answer, filed_under_him)
    assert not filed_under_him, filed_under_him
