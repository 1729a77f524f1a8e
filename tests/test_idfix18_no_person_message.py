"""What the desk is told when an ID number opens no person (eighteenth round, review of id18).

``$login-phone`` and the desk's ``$family-grant`` by ``nationalId`` said "no linked record carries this
ID number" of every number ``patients_for_number`` gives nothing for: also of one whose only record
the desk took out (``$unlink``) and of one whose record the desk linked into another resident's
person -- the desk, told the resident had no record, would register a new one instead of deciding
the one there. Each now says what is true, Chinese first. A resident granting family access is told
only that the family member cannot sign in yet (nothing about a third party's records). Real path:
``POST /hl7v2``, ``$link``/``$unlink``, ``$login-phone``, ``$family-grant`` and the SMART sign-in
over HTTP, SQLite and mongomock.

Data changed in the twenty-sixth round (linkmend26): the desk's link of a record into another number's
person is refused now; the tests of such a link build it as stored before the rule
(``before_linkmend26``), since a store holds such links and the desk must still be told the truth.
"""

from __future__ import annotations

from stdnum.cn import ric

from tests import test_idfix18_desk_link as desk_link
from tests.operator_calls import before_linkmend26, operate
from tests.test_idfix18_desk_link import NID, OTHER
from tests.test_resident_who_looked import sign_in

desk = desk_link.desk  # the fixture: the engine, HTTP as the desk, and an HL7 feed with phones

THIRD = "32092319900101179"
THIRD += ric.calc_check_digit(THIRD + "0")  # born 1990-01-01, male: a third resident


def _login_phone(http, number: str) -> tuple[int, str]:
    r = http.post("/fhir/Patient/$login-phone", json={"resourceType": "Parameters", "parameter": [
        {"name": "nationalId", "valueString": number}, {"name": "phone", "valueString": "13811112222"},
        {"name": "idCardChecked", "valueBoolean": True}]})
    return r.status_code, r.json()["issue"][0]["diagnostics"] if r.status_code != 200 else ""


def _desk_grant(http, number: str) -> tuple[int, str]:
    r = http.post("/fhir/Patient/$family-grant", json={"resourceType": "Parameters", "parameter": [
        {"name": "nationalId", "valueString": number}, {"name": "proxyNationalId", "valueString": THIRD},
        {"name": "proxyName", "valueString": "张大"}, {"name": "relationship", "valueCode": "PRN"},
        {"name": "idCardChecked", "valueBoolean": True}]})
    return r.status_code, r.json()["issue"][0]["diagnostics"] if r.status_code >= 400 else ""


def test_a_number_never_seen(desk):
    _, http, _ = desk
    status, why = _login_phone(http, THIRD)
    assert status == 404 and why.startswith("医共体中没有带此身份证号的记录")


def test_a_number_whose_only_record_the_desk_took_out(desk):
    _, http, send = desk
    a = send("FNXRMYY", "ZY0001", NID, "张三", "13900000001")
    operate(http, "unlink", a)
    for status, why in (_login_phone(http, NID), _desk_grant(http, NID)):
        assert status == 404 and why.startswith("带此身份证号的记录都未归入本人"), why


def test_a_number_whose_record_the_desk_linked_into_another_residents_person(desk):
    engine, http, send = desk
    a = send("FNXRMYY", "ZY0001", NID, "张三", "13900000001")
    x = send("FNZYY", "MZ0002", OTHER, "张小明", "13900000002")
    with before_linkmend26(engine):  # refused since linkmend26: a link stored before the rule
        operate(http, "link", a, x)
    assert engine.identity.patients_for_number(NID) == []
    for status, why in (_login_phone(http, NID), _desk_grant(http, NID)):
        assert status == 404 and why.startswith("带此身份证号的记录已由人工关联"), why


def test_a_resident_granting_to_such_a_number_learns_nothing_of_its_records(desk):
    engine, http, send = desk
    a = send("FNXRMYY", "ZY0001", NID, "张三", "13900000001")
    x = send("FNZYY", "MZ0002", OTHER, "张小明", "13900000002")
    send("FNYLWSY", "FY0003", THIRD, "张大", "13900000003")
    with before_linkmend26(engine):  # refused since linkmend26: a link stored before the rule
        operate(http, "link", a, x)
    auth = http.headers.pop("Authorization")
    try:
        resident = sign_in(http, engine, THIRD)
        r = http.post("/fhir/Patient/$family-grant", headers={"Authorization": "Bearer " + resident["access_token"]},
                      json={"resourceType": "Parameters", "parameter": [
                          {"name": "proxyNationalId", "valueString": NID}, {"name": "proxyName", "valueString": "张三"},
                          {"name": "relationship", "valueCode": "CHILD"}]})
    finally:
        http.headers["Authorization"] = auth
    why = r.json()["issue"][0]["diagnostics"]
    assert r.status_code == 422 and why.startswith("家人的身份证号还没有归入本人的记录"), why
    assert "人工" not in why and "hand" not in why


def test_a_number_whose_record_linked_by_hand_was_deleted(desk):
    """The index keeps a deleted record's entry when an operator had linked it (to put it back if
    it is written again): it is no record, and the desk is told none carries the number.
    Data changed in the twenty-sixth round (linkmend26): the link across two numbers is one stored
    before the rule refusing it (``before_linkmend26``)."""
    engine, http, send = desk
    a = send("FNXRMYY", "ZY0001", NID, "张三", "13900000001")
    x = send("FNZYY", "MZ0002", OTHER, "张小明", "13900000002")
    with before_linkmend26(engine):  # refused since linkmend26: a link stored before the rule
        operate(http, "link", a, x)
    assert http.delete(f"/fhir/Patient/{a}").status_code in (200, 204)
    status, why = _login_phone(http, NID)
    assert status == 404 and why.startswith("医共体中没有带此身份证号的记录"), why
