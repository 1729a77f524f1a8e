"""Signing in with an ID number opens that number's person, not a person an operator tied one of its
records to (seventeenth round, id17).

A son (张小明, his own number) was seen at FNXRMYY on his father's ID card: the record carries the
father's number and was linked automatically, alone. The father's own record (张建国, FNZYY) came
later, in conflict with it. The desk then linked the son's FNXRMYY record, by hand, to the son's
own record (FNYLWSY, his own number). The father signing in with his number was handed the first
linked record carrying it -- the son's, now in the son's person -- and read the son's records, and
the sign-in code went to the son's phone. Now the number opens only records of its own person (or of
a person holding no record of another number); the father's record, no longer in conflict with
anything, is his. Real path: ``POST /hl7v2``, ``$link`` and the resident's SMART sign-in over HTTP.
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from stdnum.cn import ric

from engine.api.app import create_app
from engine.engine import Engine
from tests.operator_calls import before_linkmend26
from tests.test_resident_who_looked import sign_in

ER7 = "x-application/hl7-v2+er7"
FATHER = "32092319600101123"
FATHER += ric.calc_check_digit(FATHER + "0")  # born 1960-01-01, male
SON = "32092319900101125"
SON += ric.calc_check_digit(SON + "0")  # born 1990-01-01, male


def _adt(inst: str, mrn: str, number: str, name: str, phone: str, n: int) -> bytes:
    return "\r".join([
        f"MSH|^~\\&|HIS|{inst}|HUREN|FUNING|2026120108000{n}||ADT^A04^ADT_A01|{inst}-{n}|P|2.5.1",
        "EVN|A04|20261201080000",
        f"PID|1||{number}^^^公安部^NNCHN~{mrn}^^^{inst}^MR||{name[0]}^{name[1:]}||{number[6:14]}|M|||||^PRN^CP^^^^^^^^^{phone}",
        f"PV1|1|O|JZ^^^{inst}||||||||||||||||{mrn}-1^^^{inst}^VN"]).encode() + b"\r"


def test_the_number_opens_its_own_person_not_the_one_an_operator_tied_its_record_to(backend_settings):
    """Data changed in the twenty-sixth round (linkmend26): the desk's ``$link`` of the record made on
    the father's card to the son's record (two ID numbers) is refused now -- the hospital corrects
    the record's number instead; sign-in is asserted for such a link stored before the rule
    (``before_linkmend26``)."""
    engine = Engine(backend_settings)
    try:
        with TestClient(create_app(engine)) as http:
            system = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-gw", "system/*.cruds")}

            def send(message: bytes) -> str:
                r = http.post("/hl7v2", content=message, headers={**system, "Content-Type": ER7})
                assert r.headers["x-hl7-ack-code"] == "AA", r.text
                return r.text

            send(_adt("FNXRMYY", "ZY0001", FATHER, "张小明", "13900000002", 1))  # the son, on his father's card
            send(_adt("FNYLWSY", "FY0003", SON, "张小明", "13900000002", 2))
            send(_adt("FNZYY", "MZ0002", FATHER, "张建国", "13900000001", 3))

            def one(mrn: str) -> str:
                return http.get("/fhir/Patient", params={"identifier": mrn}, headers=system).json()["entry"][0]["resource"]["id"]

            on_card, sons, fathers = one("ZY0001"), one("FY0003"), one("MZ0002")
            assert engine.identity.record(fathers)["status"] == "conflict"
            link = {"resourceType": "Parameters", "parameter": [
                {"name": "source", "valueReference": {"reference": f"Patient/{on_card}"}},
                {"name": "target", "valueReference": {"reference": f"Patient/{sons}"}},
                {"name": "reason", "valueString": "the son was seen on his father's ID card"}]}
            r = http.post("/fhir/Patient/$link", headers=system, json=link)
            assert r.status_code == 422 and "身份证号不同" in r.text and FATHER not in r.text, r.text
            with before_linkmend26(engine):
                r = http.post("/fhir/Patient/$link", headers=system, json=link)
            assert r.status_code == 200, r.text

            father = sign_in(http, engine, FATHER)
            sent_to = json.loads((backend_settings.data_dir / "otp" / "outbox.jsonl").read_text().splitlines()[-1])["to"]
            assert sent_to == ["13900000001"]
            assert father["patient"] == fathers
            as_father = {"Authorization": "Bearer " + father["access_token"]}
            assert http.get(f"/fhir/Patient/{sons}", headers=as_father).status_code == 404
            assert http.get(f"/fhir/Patient/{on_card}", headers=as_father).status_code == 404
            assert http.get(f"/fhir/Patient/{fathers}", headers=as_father).status_code == 200
            son = sign_in(http, engine, SON)
            assert engine.auth.compartment(son["patient"]) == {on_card, sons}
    finally:
        engine.close()
