"""``$match`` grades ``certain`` only a record the index holds for the number's person (eighteenth
round, id18).

FHIR R4 ``Patient/$match``: ``certain`` is a record that "meets the matching criteria to be
automatically considered as a full match". Two records of 张三's number with his data; the desk
takes one out (``$unlink``: "this record is not this number's person" -- a relative seen on his card,
registered under his name). ``$match`` still graded it ``certain`` beside his own: a HIS matching an
arriving 张三 with ``onlyCertainMatches`` and ``count`` 1 was handed whichever sorted first, and filed
his visit under it. Now a record of the number outside the number's person (taken out, in conflict,
linked by hand to another person) is at most ``possible``, for a person to look at. Real path:
``POST /hl7v2``, ``$unlink`` and ``$match`` over HTTP, SQLite and mongomock.
"""

from __future__ import annotations

from tests import test_id17_revisit as revisit
from tests.operator_calls import operate
from tests.test_id17_revisit import NID

world = revisit.world  # the fixture: the engine, HTTP and an HL7 feed

QUERY = {"resourceType": "Patient", "name": [{"family": "张", "given": ["三"]}], "gender": "male",
         "birthDate": "1990-01-01", "identifier": [
             {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]},
              "value": NID}]}


def _match(http, **more) -> dict[str, str]:
    params = [{"name": "resource", "resource": QUERY}]
    params += [{"name": k, "valueBoolean" if isinstance(v, bool) else "valueInteger": v} for k, v in more.items()]
    r = http.post("/fhir/Patient/$match", json={"resourceType": "Parameters", "parameter": params})
    assert r.status_code == 200, r.text
    return {e["resource"]["id"]: e["search"]["extension"][0]["valueCode"] for e in r.json()["entry"]}


def test_a_record_taken_out_of_the_numbers_person_is_not_a_certain_match(world):
    engine, http, send = world
    a = send("FNXRMYY", "A04", "张三")
    b = send("FNZYY", "A04", "张三")
    assert _match(http) == {a: "certain", b: "certain"}
    operate(http, "unlink", b)
    assert _match(http) == {a: "certain", b: "possible"}
    assert _match(http, onlyCertainMatches=True) == {a: "certain"}
    operate(http, "link", b, a)  # the desk puts it back: certain again
    assert _match(http) == {a: "certain", b: "certain"}
