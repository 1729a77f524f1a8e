"""``Prefer: handling=lenient`` leaves an unknown search parameter out instead of refusing the search.

R4 (search.html, "Handling errors") lets a client choose: ``handling=strict`` asks for an error on
an unknown or unsupported parameter, ``handling=lenient`` asks the server to ignore it, and the
``self`` link then shows the parameters the search actually used. huren answered 400 either way.
Now strict stays the default (a 400 naming the parameter) and lenient drops the unknown parameter
names (not bad values, modifiers or chained parameters: those are still errors). Real HTTP through
FastAPI with a system client's token, and a resident's (whose compartment still narrows it).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi.testclient import TestClient


def test_lenient_drops_unknown_names_and_says_so_in_the_self_link(http: TestClient, engine: Any,
                                                                  client_token: Any) -> None:
    system = {"Authorization": "Bearer " + client_token(engine)}
    for pid, name in (("p1", "张三"), ("p2", "张山"), ("p3", "李四")):
        body = {"resourceType": "Patient", "id": pid, "name": [{"text": name}]}
        assert http.put(f"/fhir/Patient/{pid}", json=body, headers=system).status_code == 201
    query = {"name": "张", "foo": "bar", "_count": "5"}
    for prefer in (None, "handling=strict"):
        r = http.get("/fhir/Patient", params=query, headers={**system, **({"Prefer": prefer} if prefer else {})})
        assert r.status_code == 400 and "'foo'" in r.text
    lenient = {**system, "Prefer": "handling=lenient"}
    r = http.get("/fhir/Patient", params=query, headers=lenient)
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert sorted(e["resource"]["id"] for e in bundle["entry"]) == ["p1", "p2"] and bundle["total"] == 2
    self_link = next(lk["url"] for lk in bundle["link"] if lk["relation"] == "self")
    assert dict(parse_qsl(urlsplit(self_link).query)) == {"name": "张", "_count": "5", "_offset": "0"}
    r = http.post("/fhir/Patient/_search", content="name=李&bar:exact=1",
                  headers={**lenient, "content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and [e["resource"]["id"] for e in r.json()["entry"]] == ["p3"]
    # still errors when lenient: a bad value, an unsupported modifier, an unknown parameter in a chain
    for bad in ({"birthdate": "yesterday"}, {"name:below": "张"}, {"general-practitioner:Practitioner.foo": "1"}):
        r = http.get("/fhir/Patient", params=bad, headers=lenient)
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", (bad, r.text)
    # a resident's lenient search is still their compartment
    token, _ = engine.auth.issue_token(subject="person-p1", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient="p1")
    r = http.get("/fhir/Patient", params={"name": "张", "foo": "1"},
                 headers={"Authorization": f"Bearer {token}", "Prefer": "handling=lenient"})
    assert r.status_code == 200 and [e["resource"]["id"] for e in r.json()["entry"]] == ["p1"]
