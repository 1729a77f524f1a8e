"""An identifier huren holds, searched by huren itself, is escaped as R4 search says (lead, twenty-fourth
round). ``$match`` searched a client's identifier as ``system|value`` joined raw: a value holding a comma
was two alternatives (R4 search.html#escaping), so ``MRN,anything`` matched the record numbered ``MRN``
-- another person's record offered as a candidate for an identifier nobody holds. The SIU filler-id check
(``merge_rules._claimed``) had the same join (a comma: another patient's booking not found; a bar: a 400
inside the write, the patient's own first booking refused AE): its probes are
``tests/test_schedfix24_rv2_probes.py``. Real path: ``POST /hl7v2`` and ``$match`` over HTTP, SQLite and
mongomock (the ``world`` fixture)."""

from __future__ import annotations

from tests import test_id17_revisit as revisit

world = revisit.world  # the fixture: the engine, HTTP and an HL7 feed


def _matches(http, identifier: dict) -> list[str]:
    query = {"resourceType": "Patient", "name": [{"family": "张", "given": ["三"]}], "gender": "male",
             "birthDate": "1990-01-01", "identifier": [identifier]}
    r = http.post("/fhir/Patient/$match", json={"resourceType": "Parameters",
                                                "parameter": [{"name": "resource", "resource": query}]})
    assert r.status_code == 200, r.text
    return [e["resource"]["id"] for e in r.json().get("entry", [])]


def test_an_identifier_holding_a_comma_matches_no_record_numbered_by_its_first_part(world):
    engine, http, send = world
    pid = send("FNXRMYY", "A04", "张三")
    stored = http.get(f"/fhir/Patient/{pid}").json()
    mrn = next(i for i in stored["identifier"] if i.get("system") and i.get("value")
               and "NNCHN" not in str(i.get("type")))
    assert _matches(http, {"system": mrn["system"], "value": mrn["value"]}) == [pid]  # the identifier itself
    assert _matches(http, {"system": mrn["system"], "value": mrn["value"] + ",X9"}) == []
    assert _matches(http, {"system": mrn["system"], "value": mrn["value"] + "|X9"}) == []
