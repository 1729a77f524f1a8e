"""A resident's (and a family member's) audit record written from a prefix keyed by what her token
says in it (forty-second round, perfa42b).

A resident's ``Caller`` is made anew each request, so the per-caller template never served her and
her record took the general path (~45 k instructions more than a system caller's, perfa42). Now it
is written from ``middleware._RESIDENT_TEMPLATES``, keyed by the requestor's values. These tests hold
(1) the bytes and search keys equal to the general path's over many residents and family members
taken in turn -- a prefix keyed too loosely would write one's identity into the other's record --
and that none of them took the general path; (2) the same through the real app: two residents and a
family member acting for one, alternating on one worker, a token refreshed between, each record
naming who asked and whose records were hers (``self``) or acted for (``for``), and the log verifying
online and offline as an auditor runs it.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from fastapi.testclient import TestClient

from engine.audit import middleware, record
from engine.audit.derived import facts_keys
from tests.test_audit24_guarantees import _auditor_verifies
from tests.test_perfaudit21_template import NOTES, NOW_MS, ORIGINS, RECORDED, STARTS, STATUSES

HER = frozenset({"p1", "病人-1"})
# residents and family members whose requestors differ in one field each from the first one's
RESIDENTS = [
    SimpleNamespace(kind="patient", subject="Person/甲", client_id="huren-me", patient_ids=HER),
    SimpleNamespace(kind="patient", subject="Person/乙", client_id="huren-me", patient_ids=frozenset({"p9"})),
    SimpleNamespace(kind="patient", subject="Person/甲", client_id="app-2", patient_ids=HER),
    SimpleNamespace(kind="patient", subject="Person/甲", client_id="huren-me", patient_ids=frozenset()),  # unlinked
    SimpleNamespace(kind="patient", subject="Person/孙", client_id="huren-me", patient_ids=HER,
                    acting="rp-1", consent="fam-1"),
    SimpleNamespace(kind="patient", subject="Person/孙", client_id="huren-me", patient_ids=HER,
                    acting="rp-2", consent="fam-1"),
    SimpleNamespace(kind="patient", subject="Person/孙", client_id="huren-me", patient_ids=HER,
                    acting="rp-1", consent="fam-2"),
    SimpleNamespace(kind="patient", subject='Person/"q"\\', client_id="huren-me", patient_ids=frozenset({'p"2'}),
                    role="r\u2028", display="Zoë \U0001f600"),
]
CLIENTS = [("10.0.0.9", 5000), ("10.0.0.10", 5000), None]


def test_her_record_is_the_general_paths_bytes_and_never_anothers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware, "time_ns", lambda: NOW_MS * 1_000_000)
    general_path = middleware._facts
    taken: list[int] = []
    monkeypatch.setattr(middleware, "_facts", lambda *a: taken.append(1) or general_path(*a))
    middleware._RESIDENT_TEMPLATES.clear()
    salts = itertools.count()
    checked = 0
    marked = {"self": 0, "for": 0}
    for _round in range(2):  # the second round from the prefixes the first made
        for n, status, origin, start in itertools.product(NOTES, STATUSES, ORIGINS, STARTS[::2]):
            # the callers innermost: residents alternate, each request after another's prefix was made
            for caller, client in itertools.product(RESIDENTS, CLIENTS):
                scope = {"type": "http", "method": "GET", "path": "/fhir/Observation/o1", "query_string": b"",
                         "client": client, "state": {"caller": caller}}
                salt = f"{next(salts) % 7:032x}"
                monkeypatch.setattr(record, "new_salt", lambda s=salt: s)
                fast = middleware.facts_for_request(scope, [n], status, start, origin)
                general = general_path(scope, [n], status,
                                       middleware.instant_of(start) if type(start) is int else start,
                                       origin, None, caller, "patient", middleware.requestor_of(caller, client),
                                       RECORDED)
                assert type(fast) is record.Sealed
                data = fast.data(42)
                assert data == general.data(42), (caller, client, origin, n, status, start)
                assert data == orjson.dumps(orjson.loads(data), option=orjson.OPT_SORT_KEYS)
                assert list(fast.keys) == facts_keys(general)
                doc = orjson.loads(data)
                assert doc["by"][1] == caller.subject and doc["by"][3] == caller.client_id
                assert doc["by"][6] == getattr(caller, "acting", None)
                marked["self"] += "self" in doc
                marked["for"] += "for" in doc
                checked += 1
    assert not taken  # every one written from a resident's prefix
    assert marked["self"] and marked["for"]  # both marks were written (and compared) on the way
    assert checked == 2 * len(NOTES) * len(STATUSES) * len(ORIGINS) * 3 * len(RESIDENTS) * len(CLIENTS)


A_NID, B_NID, SON_NID = "320923199001011246", "320923198503020025", "320923197504120015"
NNCHN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}


def _patient(engine, pid: str, inst: str, number: str) -> None:  # noqa: ANN001
    born = f"{number[6:10]}-{number[10:12]}-{number[12:14]}"  # (as the number states them)
    gender = "male" if int(number[16]) % 2 else "female"
    engine.repository.update({"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": born,
                              "identifier": [{"system": f"urn:huren:mrn:{inst}", "value": pid},
                                             {"system": "urn:oid:2.16.156.10011.1.3", "value": number,
                                              "type": NNCHN}]})


def test_two_residents_and_her_son_alternating_each_record_names_who_asked(tmp_path: Path) -> None:
    from engine.api.app import create_app
    from engine.auth.service import ME_CLIENT_ID
    from engine.engine import Engine
    from engine.settings import Settings

    data_dir = tmp_path / "data"
    engine = Engine(Settings(data_dir=data_dir))
    try:
        _patient(engine, "p1", "FNXRMYY", A_NID)
        _patient(engine, "p2", "FNZYY", A_NID)  # her record at another hospital: linked by her ID number
        _patient(engine, "p3", "FNXRMYY", B_NID)
        _patient(engine, "p4", "FNXRMYY", SON_NID)
        assert engine.identity.person_compartment("p1") == {"p1", "p2"}
        engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "阜宁县人民医院"})
        for oid, pid in (("o1", "p1"), ("o2", "p2"), ("o3", "p3")):
            engine.repository.update({"resourceType": "Observation", "id": oid, "status": "final",
                                      "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                                      "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-11-01",
                                      "performer": [{"reference": "Organization/org1"}],
                                      "valueQuantity": {"value": 13.2, "unit": "g/dL"}})
        grant = engine.auth.resident.family.grant("p1", SON_NID, name="孙伟", relationship="CHILD", end=None)

        def token(person: str, patient: str, **extra: str) -> str:
            return engine.auth.issue_token(subject=person, kind="patient", client_id=ME_CLIENT_ID,
                                           scopes=["patient/*.rs"], patient=patient, person=person, extra=extra)[0]

        a, b = token("Person/甲", "p1"), token("Person/乙", "p3")
        son_key = grant.related["identifier"][0]["value"]  # (his person, as his sign-in issues it)
        son = token(son_key, "p1", acting=grant.related_id, consent=grant.consent_id)
        asked: list[tuple[str, str, str]] = []  # (who, token's subject, read)
        with TestClient(create_app(engine)) as http:
            for turn in range(3):
                if turn == 2:
                    a = token("Person/甲", "p1")  # her token refreshed: another object, the same claims
                for who, tok, sub, oid in (("a", a, "Person/甲", "o1"), ("b", b, "Person/乙", "o3"),
                                           ("son", son, son_key, "o2"), ("a", a, "Person/甲", "o2"),
                                           ("b", b, "Person/乙", "o1")):
                    answer = http.get(f"/fhir/Observation/{oid}", headers={"Authorization": "Bearer " + tok})
                    assert answer.status_code == (404 if (who, oid) == ("b", "o1") else 200), (who, oid, answer.text)
                    asked.append((who, sub, oid))
        log = engine.audit
        docs = [orjson.loads(d["data"]) for d in log.leaves.find(sort=[("seq", 1)])]
        reads = [d for d in docs if d["by"][0] == "patient"]
        assert len(reads) == len(asked), [d["by"] for d in reads]
        owner = {"o1": "p1", "o2": "p2", "o3": "p3"}
        for doc, (who, sub, oid) in zip(reads, asked, strict=True):
            assert doc["by"][0] == "patient" and doc["by"][1] == sub, (who, doc)
            assert doc["by"][6] == (grant.related_id if who == "son" else None), (who, doc)
            assert doc["by"][7] == (grant.consent_id if who == "son" else None), (who, doc)
            mine = {"a": {"p1", "p2"}, "b": {"p3"}, "son": set()}[who]
            expected_self = [owner[oid]] if owner[oid] in mine else None
            assert doc.get("self") == expected_self, (who, oid, doc)
            assert doc.get("for") == ([owner[oid]] if who == "son" else None), (who, oid, doc)
    finally:
        engine.close()
    _auditor_verifies(data_dir, tmp_path)
