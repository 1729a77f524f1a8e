"""``$family-grant`` by ``nationalId`` checks access before it looks the number up (eighteenth round,
review of idfix18).

The number was looked up first: any system client (a lab feed with ``system/Observation.c`` alone)
posting a grant with a resident's ``nationalId`` was told whether records carry it (404) or not
(403), and since idfix18 how they are linked -- an existence oracle on ID numbers. Now every client
that may not record family access gets the same 403 whatever the number; the desk still gets its
reason. Real path: ``POST /hl7v2`` and ``$family-grant`` over HTTP, SQLite and mongomock.
"""

from __future__ import annotations

from stdnum.cn import ric

from tests import test_idfix18_desk_link as desk_link
from tests.test_idfix18_desk_link import NID, OTHER

desk = desk_link.desk  # the fixture: the engine, HTTP as the desk, and an HL7 feed with phones

THIRD = "32092319900101179"
THIRD += ric.calc_check_digit(THIRD + "0")  # born 1990-01-01, male: a third resident


def _grant(http, number: str, token: str) -> tuple[int, str]:
    r = http.post("/fhir/Patient/$family-grant", headers={"Authorization": "Bearer " + token}, json={
        "resourceType": "Parameters", "parameter": [
            {"name": "nationalId", "valueString": number}, {"name": "proxyNationalId", "valueString": THIRD},
            {"name": "proxyName", "valueString": "张大"}, {"name": "relationship", "valueCode": "PRN"},
            {"name": "idCardChecked", "valueBoolean": True}]})
    return r.status_code, r.json()["issue"][0]["diagnostics"]


def test_a_lab_feed_learns_nothing_of_an_id_number(desk):
    engine, http, send = desk
    send("FNXRMYY", "ZY0001", NID, "张三", "13900000001")
    lab = engine.auth.issue_system_token("lab-feed", "system/Observation.c")
    carried, unknown = _grant(http, NID, lab), _grant(http, OTHER, lab)
    assert carried == unknown and carried[0] == 403, (carried, unknown)
    status, why = _grant(http, OTHER, http.headers["Authorization"].removeprefix("Bearer "))
    assert status == 404 and why.startswith("医共体中没有带此身份证号的记录"), why  # the desk is told
