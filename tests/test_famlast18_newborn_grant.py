"""Review of fammend18: a grant given on a record with no ID number binds no number found later
(eighteenth round, famlast18).

孙伟 is given family access to a newborn's record (孙宝宝, NB2026000001, no ID number). fammend18
bound such a grant to the first number the record was later given that agreed with the birth date
and sex *of that same later version*: an ADT^A08 giving the record 钱多多's number together with
his particulars (钱^多多, 19510711, M) let the index link it into 钱多多's person, and the grant --
bound to his number -- opened his results to 孙伟 (famfix18 refused). The binding is taken out:
the grant opens the record while it is in no person, and once it is filed under anyone (her own
number too) it stops holding, saying so (``policy.FILED``) in the API, at userinfo and at
sign-in. Real path: HL7 v2 over ``POST /hl7v2``, the desk's ``$family-grant``, the sign-in pages,
``/auth/token``, ``/auth/userinfo``, ``/fhir``; SQLite and mongomock.
"""

from __future__ import annotations

from tests import test_famfix18_grant_person as famfix18
from tests.test_famfix18_grant_person import PHR, _refused
from tests.test_fammend18_grant_survivor import BABY, _patient, _send
from tests.test_resident_family import SUN, bearer, proxy_sign_in, subjects
from tests.test_resident_record_ui import QIAN, hl7, lab, msh

world = famfix18.world  # the engine fed over HL7 v2, the desk, an operator, a resource server, a phone app
FILED = "授权时这份档案还没有身份证号"


def _newborn_grant(engine, http, tools) -> tuple[str, dict]:
    newborn = "PID|1||NB2026000001^^^FNXRMYY^MR||孙^宝宝||20261101|F"
    _send(http, tools, lab("FNXRMYY", "RM-LIS-NB", "20261102", newborn, ("XCG", "血常规"),
                           ("HGB", "血红蛋白", "170", "g/L", "145-225", "N")))
    baby = _patient(http, tools, "NB2026000001")
    assert engine.identity.record(baby)["status"] == "no-id"
    r = http.post("/fhir/Patient/$family-grant", headers=tools["desk"], json={"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": f"Patient/{baby}"}},
        {"name": "proxyNationalId", "valueString": SUN}, {"name": "proxyName", "valueString": "孙伟"},
        {"name": "relationship", "valueCode": "PRN"}, {"name": "idCardChecked", "valueBoolean": True}]})
    assert r.status_code == 201, r.text
    token, _ = proxy_sign_in(http, engine, SUN, "孙宝宝", app=PHR)
    r = http.get("/fhir/Observation?_count=100", headers=bearer(token["access_token"]))
    assert r.status_code == 200 and subjects(r.json()) == {baby}, r.text  # open while she has no number
    return baby, token


def _a08(number: str, name: str, birth: str, sex: str, control: str) -> bytes:
    return hl7(msh("HIS", "FNXRMYY", "20261105090000", "ADT^A08^ADT_A01", control), "EVN|A08|20261105090000",
               f"PID|1||{number}^^^公安部^NNCHN~NB2026000001^^^FNXRMYY^MR||{name}||{birth}|{sex}", "PV1|1|O")


def _says_filed(http, token: dict) -> None:
    as_father = bearer(token["access_token"])
    r = http.get("/fhir/Observation", headers=as_father)
    assert r.status_code == 403 and r.json()["issue"][0]["diagnostics"].startswith(FILED), r.text
    r = http.get("/auth/userinfo", headers=as_father)  # not "withdrawn or has expired"
    assert r.status_code == 401 and r.json()["error_description"].startswith(FILED), r.text


def test_a_numberless_grant_does_not_follow_an_a08_to_another_persons_number_and_particulars(world):
    """The reviewer's leak: on f48979a 孙伟's token read 钱多多's results (200)."""
    engine, http, tools = world
    baby, token = _newborn_grant(engine, http, tools)
    qian = set(engine.identity.patients_for_number(QIAN))
    _send(http, tools, _a08(QIAN, "钱^多多", "19510711", "M", "RM-A08-NB-QIAN"))
    assert baby in engine.identity.person_compartment(sorted(qian)[0])  # the index linked it into his person
    _says_filed(http, token)
    _refused(http, engine, tools, token, qian, words=FILED)


def test_a_numberless_grant_stops_once_she_is_given_her_own_number(world):
    """Her own number too: whose the number is cannot be told from the grant, so it asks the
    resident to grant again (fammend18 let it hold; this is famfix18's rule, said in true words)."""
    engine, http, tools = world
    baby, token = _newborn_grant(engine, http, tools)
    _send(http, tools, _a08(BABY, "孙^宝宝", "20261101", "F", "RM-A08-NB-OWN"))
    assert engine.identity.record(baby)["status"] == "linked"
    _says_filed(http, token)
    _, offered = proxy_sign_in(http, engine, SUN, None)
    assert not any("孙宝宝" in o for o in offered), offered


def test_a_numberless_grant_stops_once_the_index_holds_a_number_for_it_in_conflict(world):
    """Review of famlast18 (the lead's mend): an A08 giving the newborn's record 钱多多's number with
    a name that differs (钱^多) leaves it in conflict -- in no person -- and the grant still opened it,
    showing his number and the results filed under it since. Any number the index holds for the
    record ends a grant given when it had none."""
    engine, http, tools = world
    baby, token = _newborn_grant(engine, http, tools)
    qian = set(engine.identity.patients_for_number(QIAN))
    _send(http, tools, _a08(QIAN, "钱^多", "19510711", "M", "RM-A08-NB-CONFLICT"))
    assert engine.identity.record(baby)["status"] == "conflict"
    _says_filed(http, token)
    _refused(http, engine, tools, token, qian, words=FILED)  # introspection and refresh too


def test_a_numberless_grant_records_that_it_had_none(world):
    """The Consent says the record had no number when granted (not derived later from the history,
    where an A08 landing between the grant's read and its write would be taken for the number then)."""
    engine, http, tools = world
    baby, _ = _newborn_grant(engine, http, tools)
    (consent,) = [c for c in engine.repository.search("Consent", [("patient", f"Patient/{baby}")]).resources]
    assert consent["patient"]["identifier"]["value"] == "grk-none"
