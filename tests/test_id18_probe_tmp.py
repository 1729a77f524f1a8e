from tests import test_id17_revisit as revisit
from tests.operator_calls import index_state, operate
from tests.test_id17_operator_merge import RELATIVE, _merge
from tests.test_id17_revisit import ER7, NID, _message

world = revisit.world


def test_birthdate(world):
    engine, http, send = world
    a = send("FNXRMYY", "A04", "张三")
    a2 = send("FNZYY", "A04", "张三")
    msg = _message("FNXRMYY", "A08", "张三").replace(b"||19900101|M", b"||19900102|M")
    r = http.post("/hl7v2", content=msg, headers={"Content-Type": ER7})
    print("ACK", r.headers["x-hl7-ack-code"], r.text[:600])
    print(engine.identity.record(a)["status"], engine.identity.record(a)["reasons"])
    print(engine.identity.patients_for_number(NID), engine.identity.person_compartment(a2))
    print(http.get(f"/fhir/Patient/{a}").json().get("birthDate"))


def test_unlink_survivor_whole(world):
    engine, http, send = world
    a = send("FNXRMYY", "A04", "张三")
    a2 = send("FNZYY", "A04", "张三")
    x = send("FNFYY", "A04", "张小明", RELATIVE)
    x2 = send("FNZXYY", "A04", "张小明", RELATIVE)
    _merge(http, a, x)
    operate(http, "unlink", x)
    print("X", index_state(engine, http, x), "X2", index_state(engine, http, x2), "A2", index_state(engine, http, a2))
    print(engine.identity.record(a))
    r = http.post("/fhir/Patient/$match", json={"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient", "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}, "system": "urn:oid:2.16.840.1.113883.2.23.1.1", "value": NID}], "name": [{"text": "张三"}], "gender": "male", "birthDate": "1990-01-01"}}]})
    print("MATCH", r.status_code, [(e["resource"]["id"], e["search"]["score"]) for e in r.json().get("entry", [])], r.text[:300] if r.status_code != 200 else "")
