"""The signed bytes of an audited read's record, pinned literally (forty-fourth round, aud44).

Every earlier check of the record's fast paths (``tests/test_perfaudit21_template.py``,
``tests/test_perf22_template_real_path.py``, ``tests/test_perfa42b_resident_record.py``) compares one
way of writing it with another (the template against the general path), so a change made to both ways
at once -- or to the note both read -- would pass them while the log's bytes moved. The log is verified
offline, by auditors' tools, against these bytes: for the same request they must not change. Here the
real app (FastAPI, real tokens, the real store and log) serves a system client's reads (a resource, a
patient, a version, a 404, a 304, a search), a resident's reads of her own records at two hospitals and of
another's, and her son's read acting for her, on a fixed clock and fixed salts, and every stored record's
bytes and search keys are compared with the bytes the forty-third round's code wrote (taken before any
change of this round), byte for byte.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.audit import middleware, record
from engine.audit.derived import facts_keys
from engine.audit.group_commit import GroupCommitter
from engine.audit.verify import verify_online
from engine.settings import Settings

BASE_MS = 1796025600123  # 2026-11-30T08:00:00.123Z
A_NID, B_NID, SON_NID = "320923199001011246", "320923198503020025", "320923197504120015"
NNCHN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}

# what round 43's code (main 31eb0c24) stored for ``_requests``, in order, with its search keys; ``{node}``
# is the log's origin, ``{son}``, ``{rp}``, ``{consent}`` the son's person, RelatedPerson and consent
EXPECTED: list[tuple[bytes, list[str]]] = [
    (b'{"act":"read","at":"2026-11-30T08:00:00.123Z","by":["system","his-fnxrmyy","testclient"'
     b',"his-fnxrmyy",null,null,null,null],"desc":"HTTP 200","f":2,"id":"audit-0","node":"{node}"'
     b',"out":"0","own":[["Observation/o1/_history/1",["p1"]]],"pat":["p1"]'
     b',"res":["Observation/o1/_history/1"],"salt":"00000000000000000000000000000000"}',
     ['p:p1', 'a:urn:huren:client|his-fnxrmyy']),
    (b'{"act":"read","at":"2026-11-30T08:00:00.125Z","by":["system","his-fnxrmyy","testclient"'
     b',"his-fnxrmyy",null,null,null,null],"desc":"HTTP 200","f":2,"from":"2026-11-30T08:00:00.124Z"'
     b',"id":"audit-1","node":"{node}","out":"0","own":[["Observation/o1/_history/1",["p1"]]]'
     b',"pat":["p1"],"res":["Observation/o1/_history/1"],"salt":"00000000000000000000000000000001"}',
     ['p:p1', 'a:urn:huren:client|his-fnxrmyy']),
    (b'{"act":"read","at":"2026-11-30T08:00:00.126Z","by":["system","his-fnxrmyy","testclient"'
     b',"his-fnxrmyy",null,null,null,null],"desc":"HTTP 200","f":2,"from":"2026-11-30T08:00:00.125Z"'
     b',"id":"audit-2","node":"{node}","out":"0","pat":["p1"],"salt":"00000000000000000000000000000002"}',
     ['p:p1', 'a:urn:huren:client|his-fnxrmyy']),
    (b'{"act":"vread","at":"2026-11-30T08:00:00.127Z","by":["system","his-fnxrmyy","testclient"'
     b',"his-fnxrmyy",null,null,null,null],"desc":"HTTP 200","f":2,"id":"audit-3","node":"{node}"'
     b',"out":"0","own":[["Observation/o1/_history/1",["p1"]]],"pat":["p1"]'
     b',"res":["Observation/o1/_history/1"],"salt":"00000000000000000000000000000003"}',
     ['p:p1', 'a:urn:huren:client|his-fnxrmyy']),
    (b'{"act":"read","at":"2026-11-30T08:00:00.129Z","by":["system","his-fnxrmyy","testclient"'
     b',"his-fnxrmyy",null,null,null,null],"desc":"HTTP 404","f":2,"from":"2026-11-30T08:00:00.128Z"'
     b',"id":"audit-4","node":"{node}","out":"4","res":["Observation/no-such"]'
     b',"salt":"00000000000000000000000000000004"}',
     ['a:urn:huren:client|his-fnxrmyy']),
    (b'{"act":"read","at":"2026-11-30T08:00:00.130Z","by":["system","lis-\\"q\\"\\\\","testclient"'
     b',"lis-\\"q\\"\\\\",null,null,null,null],"desc":"HTTP 403","f":2,"id":"audit-5","node":"{node}"'
     b',"out":"4","res":["Observation/o3"],"salt":"00000000000000000000000000000005"}',
     ['a:urn:huren:client|lis-"q"\\']),
    (b'{"act":"read","at":"2026-11-30T08:00:00.132Z","by":["system","lis-\\"q\\"\\\\","testclient"'
     b',"lis-\\"q\\"\\\\",null,null,null,null],"desc":"HTTP 200","f":2,"from":"2026-11-30T08:00:00.131Z"'
     b',"id":"audit-6","node":"{node}","out":"0","pat":["p3"],"salt":"00000000000000000000000000000006"}',
     ['p:p3', 'a:urn:huren:client|lis-"q"\\']),
    (b'{"act":"read","at":"2026-11-30T08:00:00.133Z","by":["system","his-fnxrmyy","testclient"'
     b',"his-fnxrmyy",null,null,null,null],"desc":"HTTP 304","f":2,"from":"2026-11-30T08:00:00.132Z"'
     b',"id":"audit-7","node":"{node}","out":"0","own":[["Observation/o2/_history/1",["p2"]]]'
     b',"pat":["p2"],"res":["Observation/o2/_history/1"],"salt":"00000000000000000000000000000007"}',
     ['p:p2', 'a:urn:huren:client|his-fnxrmyy']),
    (b'{"act":"search","at":"2026-11-30T08:00:00.134Z","by":["system","his-fnxrmyy","testclient"'
     b',"his-fnxrmyy",null,null,null,null],"desc":"HTTP 200","f":2,"id":"audit-8","node":"{node}"'
     b',"out":"0","own":[["Observation/o1/_history/1",["p1"]]],"pat":["p1"]'
     b',"q":"Observation?subject=Patient%2Fp1","res":["Observation/o1/_history/1"]'
     b',"salt":"00000000000000000000000000000008"}',
     ['p:p1', 'a:urn:huren:client|his-fnxrmyy']),
    (b'{"act":"read","at":"2026-11-30T08:00:00.136Z","by":["patient","Person/\xe7\x94\xb2","testclient"'
     b',"huren-me",null,null,null,null],"desc":"HTTP 200","f":2,"from":"2026-11-30T08:00:00.135Z"'
     b',"id":"audit-9","node":"{node}","out":"0","own":[["Observation/o1/_history/1",["p1"]]]'
     b',"pat":["p1"],"res":["Observation/o1/_history/1"],"salt":"00000000000000000000000000000009"'
     b',"self":["p1"]}',
     ['p:p1', 'a:urn:huren:resident|Person/甲', 'a:urn:huren:client|huren-me']),
    (b'{"act":"read","at":"2026-11-30T08:00:00.137Z","by":["patient","Person/\xe7\x94\xb2","testclient"'
     b',"huren-me",null,null,null,null],"desc":"HTTP 200","f":2,"id":"audit-10","node":"{node}"'
     b',"out":"0","own":[["Observation/o2/_history/1",["p2"]]],"pat":["p2"]'
     b',"res":["Observation/o2/_history/1"],"salt":"0000000000000000000000000000000a","self":["p2"]}',
     ['p:p2', 'a:urn:huren:resident|Person/甲', 'a:urn:huren:client|huren-me']),
    (b'{"act":"read","at":"2026-11-30T08:00:00.139Z","by":["patient","Person/\xe7\x94\xb2","testclient"'
     b',"huren-me",null,null,null,null],"desc":"HTTP 200","f":2,"from":"2026-11-30T08:00:00.138Z"'
     b',"id":"audit-11","node":"{node}","out":"0","pat":["p1"],"salt":"0000000000000000000000000000000b"'
     b',"self":["p1"]}',
     ['p:p1', 'a:urn:huren:resident|Person/甲', 'a:urn:huren:client|huren-me']),
    (b'{"act":"read","at":"2026-11-30T08:00:00.140Z","by":["patient","Person/\xe7\x94\xb2","testclient"'
     b',"huren-me",null,null,null,null],"desc":"HTTP 404","f":2,"from":"2026-11-30T08:00:00.139Z"'
     b',"id":"audit-12","node":"{node}","out":"4","own":[["Observation/o3",["p3"]]],"pat":["p3"]'
     b',"res":["Observation/o3"],"salt":"0000000000000000000000000000000c"}',
     ['p:p3', 'a:urn:huren:resident|Person/甲', 'a:urn:huren:client|huren-me']),
    (b'{"act":"read","at":"2026-11-30T08:00:00.141Z","by":["patient","{son}","testclient"'
     b',"huren-me",null,null,"{rp}","{consent}"],"desc":"HTTP 200","f":2,"for":["p1"],"id":"audit-13"'
     b',"node":"{node}","out":"0","own":[["Observation/o1/_history/1",["p1"]]],"pat":["p1"]'
     b',"res":["Observation/o1/_history/1"],"salt":"0000000000000000000000000000000d"}',
     ['p:p1', 'a:urn:huren:family|{son}', 'a:urn:huren:client|huren-me']),
    (b'{"act":"read","at":"2026-11-30T08:00:00.143Z","by":["patient","{son}","testclient"'
     b',"huren-me",null,null,"{rp}","{consent}"],"desc":"HTTP 200","f":2,"for":["p2"]'
     b',"from":"2026-11-30T08:00:00.142Z","id":"audit-14","node":"{node}","out":"0"'
     b',"own":[["Observation/o2/_history/1",["p2"]]],"pat":["p2"],"res":["Observation/o2/_history/1"]'
     b',"salt":"0000000000000000000000000000000e"}',
     ['p:p2', 'a:urn:huren:family|{son}', 'a:urn:huren:client|huren-me']),
    (b'{"act":"read","at":"2026-11-30T08:00:00.144Z","by":["patient","Person/\xe7\x94\xb2","testclient"'
     b',"huren-me",null,null,null,null],"desc":"HTTP 200","f":2,"id":"audit-15","node":"{node}"'
     b',"out":"0","own":[["Observation/o1/_history/1",["p1"]]],"pat":["p1"]'
     b',"res":["Observation/o1/_history/1"],"salt":"0000000000000000000000000000000f","self":["p1"]}',
     ['p:p1', 'a:urn:huren:resident|Person/甲', 'a:urn:huren:client|huren-me']),
    (b'{"act":"read","at":"2026-11-30T08:00:00.146Z","by":["system","his-fnxrmyy","testclient"'
     b',"his-fnxrmyy",null,null,null,null],"desc":"HTTP 200","f":2,"from":"2026-11-30T08:00:00.145Z"'
     b',"id":"audit-16","node":"{node}","out":"0","own":[["Observation/o1/_history/1",["p1"]]]'
     b',"pat":["p1"],"res":["Observation/o1/_history/1"],"salt":"00000000000000000000000000000010"}',
     ['p:p1', 'a:urn:huren:client|his-fnxrmyy']),

]


def _patient(engine: Any, pid: str, inst: str, number: str) -> None:
    born = f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
    gender = "male" if int(number[16]) % 2 else "female"
    engine.repository.update({"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": born,
                              "identifier": [{"system": f"urn:huren:mrn:{inst}", "value": pid},
                                             {"system": "urn:oid:2.16.156.10011.1.3", "value": number,
                                              "type": NNCHN}]})


def _requests(engine: Any, http: TestClient) -> tuple[list[int], dict[str, str]]:
    from engine.auth.service import ME_CLIENT_ID

    _patient(engine, "p1", "FNXRMYY", A_NID)
    _patient(engine, "p2", "FNZYY", A_NID)  # her record at another hospital: linked by her ID number
    _patient(engine, "p3", "FNXRMYY", B_NID)
    _patient(engine, "p4", "FNXRMYY", SON_NID)
    engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "阜宁县人民医院"})
    for oid, pid in (("o1", "p1"), ("o2", "p2"), ("o3", "p3")):
        engine.repository.update({"resourceType": "Observation", "id": oid, "status": "final",
                                  "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                                  "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-11-01",
                                  "performer": [{"reference": "Organization/org1"}],
                                  "valueQuantity": {"value": 13.2, "unit": "g/dL"}})
    grant = engine.auth.resident.family.grant("p1", SON_NID, name="孙伟", relationship="CHILD", end=None)

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": "Bearer " + token}

    def person(sub: str, patient: str, **extra: str) -> dict[str, str]:
        return bearer(engine.auth.issue_token(subject=sub, kind="patient", client_id=ME_CLIENT_ID,
                                              scopes=["patient/*.rs"], patient=patient, person=sub, extra=extra)[0])

    his = bearer(engine.auth.issue_system_token("his-fnxrmyy", "system/*.rs"))
    narrow = bearer(engine.auth.issue_system_token("lis-\"q\"\\", "system/Patient.rs"))
    her = person("Person/甲", "p1")
    son_key = grant.related["identifier"][0]["value"]
    son = person(son_key, "p1", acting=grant.related_id, consent=grant.consent_id)
    statuses: list[int] = []
    for path, headers in (
            ("/fhir/Observation/o1", his), ("/fhir/Observation/o1", his), ("/fhir/Patient/p1", his),
            ("/fhir/Observation/o1/_history/1", his), ("/fhir/Observation/no-such", his),
            ("/fhir/Observation/o3", narrow), ("/fhir/Patient/p3", narrow),
            ("/fhir/Observation/o2", {**his, "If-None-Match": 'W/"1"'}),
            ("/fhir/Observation?subject=Patient/p1", his),
            ("/fhir/Observation/o1", her), ("/fhir/Observation/o2", her), ("/fhir/Patient/p1", her),
            ("/fhir/Observation/o3", her), ("/fhir/Observation/o1", son), ("/fhir/Observation/o2", son),
            ("/fhir/Observation/o1", her), ("/fhir/Observation/o1", his)):
        statuses.append(http.get(path, headers=headers).status_code)
    # what is drawn at random each run (the son's person, RelatedPerson and consent), by placeholder
    return statuses, {"{son}": son_key, "{rp}": grant.related_id, "{consent}": grant.consent_id}


def _run(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[tuple[bytes, list[str]]]]:
    """The statuses and each stored record's bytes and search keys, with what a run draws at random
    (the log's origin, the son's ids) replaced by its placeholder."""
    from engine.api.app import create_app
    from engine.engine import Engine

    clock = itertools.count()
    # start and record now in one millisecond, now in another (7 of 10 steps advance it)
    monkeypatch.setattr(middleware, "time_ns", lambda: (BASE_MS + next(clock) * 7 // 10) * 1_000_000 + 123)
    salts = itertools.count()
    monkeypatch.setattr(record, "new_salt", lambda: f"{next(salts):032x}")
    keys: list[list[str]] = []
    submit = GroupCommitter.submit

    def kept(self: GroupCommitter, event: Any, loop: Any = None) -> Any:
        keys.append(list(event.keys) if isinstance(event, record.Sealed) else facts_keys(event))
        return submit(self, event, loop)

    monkeypatch.setattr(GroupCommitter, "submit", kept)
    engine = Engine(Settings(data_dir=data_dir, http_port=0, mllp_port=0))
    try:
        with TestClient(create_app(engine)) as http:
            statuses, drawn = _requests(engine, http)
        engine.audit.drain()
        datas = []
        for seq in range(engine.audit.size):
            data = engine.audit.get(seq)["data"]
            datas.append(data.encode() if isinstance(data, str) else bytes(data))
        assert verify_online(engine.audit).ok
        drawn["{node}"] = engine.audit.origin
    finally:
        engine.close()
    assert len(datas) == len(keys), (len(datas), len(keys))
    records = []
    for data, ks in zip(datas, keys, strict=True):
        for mark, value in drawn.items():
            data = data.replace(value.encode(), mark.encode())
            ks = [k.replace(value, mark) for k in ks]
        records.append((data, ks))
    return statuses, records


def test_a_system_clients_and_a_residents_reads_store_the_pinned_bytes(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    middleware._TEMPLATES.clear()
    middleware._RESIDENT_TEMPLATES.clear()
    statuses, records = _run(tmp_path / "data", monkeypatch)
    assert statuses == [200, 200, 200, 200, 404, 403, 200, 304, 200, 200, 200, 200, 404, 200, 200, 200, 200]
    assert len(records) == len(EXPECTED)
    for n, (got, want) in enumerate(zip(records, EXPECTED, strict=True)):
        assert got == want, (n, got, want)
