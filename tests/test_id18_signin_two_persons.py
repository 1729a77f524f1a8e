"""Signing in with an ID number whose records lie in two persons (eighteenth round, id18).

张三's number: A (FNXRMYY, 张三, phone ...01) is linked automatically; two later records carrying the
same number under another name, B and C (张山, phone ...02), are in conflict. The desk links B and C
to each other by hand (``$link`` ``seealso``: "these two are one person") and not to A: the index
now holds two persons for the number. Sign-in handed every record of both (``patients_for_number``):
the code went to both phones and opened whichever person's record sorted first -- the holder of
B's phone could read A's records, or A's resident was shown B's and C's. The number now opens its
own person (the records the machine linked by the number and its data) while it has records; a
person an operator made of the number's records alone is the number's only when it is the one.
Real path: ``POST /hl7v2``, ``$link`` and the resident's SMART sign-in over HTTP.
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from stdnum.cn import ric

from engine.api.app import create_app
from engine.engine import Engine
from tests.operator_calls import operate
from tests.test_id17_signin_number import _adt
from tests.test_resident_who_looked import sign_in

ER7 = "x-application/hl7-v2+er7"
NID = "32092319900101123"
NID += ric.calc_check_digit(NID + "0")  # born 1990-01-01, male


def test_the_number_opens_its_own_person_not_one_the_desk_made_of_its_conflicts(backend_settings):
    engine = Engine(backend_settings)
    try:
        with TestClient(create_app(engine)) as http:
            http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-gw", "system/*.cruds")

            def send(inst: str, mrn: str, name: str, phone: str, n: int) -> str:
                r = http.post("/hl7v2", content=_adt(inst, mrn, NID, name, phone, n), headers={"Content-Type": ER7})
                assert r.headers["x-hl7-ack-code"] == "AA", r.text
                return http.get("/fhir/Patient", params={"identifier": mrn}).json()["entry"][0]["resource"]["id"]

            a = send("FNXRMYY", "ZY0001", "张三", "13900000001", 1)
            b = send("FNZYY", "MZ0002", "张山", "13900000002", 2)
            c = send("FNYLWSY", "FY0003", "张山", "13900000002", 3)
            assert engine.identity.record(b)["status"] == engine.identity.record(c)["status"] == "conflict"
            operate(http, "link", b, c)
            assert engine.identity.person_compartment(b) == {b, c}
            assert engine.identity.patients_for_number(NID) == [a]
            del http.headers["Authorization"]
            resident = sign_in(http, engine, NID)
            sent_to = json.loads((backend_settings.data_dir / "otp" / "outbox.jsonl").read_text().splitlines()[-1])["to"]
            assert sent_to == ["13900000001"]
            assert resident["patient"] == a
            mine = {"Authorization": "Bearer " + resident["access_token"]}
            assert http.get(f"/fhir/Patient/{b}", headers=mine).status_code == 404
            assert http.get(f"/fhir/Patient/{a}", headers=mine).status_code == 200
            # with A taken out by the desk, the person it made of the number's records is the number's
            http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-gw", "system/*.cruds")
            operate(http, "unlink", a)
            assert engine.identity.patients_for_number(NID) == sorted([b, c])
    finally:
        engine.close()
