from tests import test_id17_revisit as revisit
from tests.test_id17_revisit import NID

world = revisit.world


def test_put_birthdate(world):
    engine, http, send = world
    a = send("FNXRMYY", "A04", "张三")
    a2 = send("FNZYY", "A04", "张三")
    body = http.get(f"/fhir/Patient/{a}").json()
    body["birthDate"] = "1990-01-02"
    r = http.put(f"/fhir/Patient/{a}", json=body)
    print("PUT", r.status_code, r.text[:400])
    print(engine.identity.record(a)["status"], engine.identity.record(a)["reasons"])
    print(engine.identity.patients_for_number(NID), engine.identity.person_compartment(a2))
    body = http.get(f"/fhir/Patient/{a}").json()
    body["birthDate"] = "1990"
    r = http.put(f"/fhir/Patient/{a}", json=body)
    print("PUT2", r.status_code, engine.identity.record(a)["status"], engine.identity.person_compartment(a2))
