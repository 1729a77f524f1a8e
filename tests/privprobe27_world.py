"""privprobe27's world: the example feeds (real HL7 over ``POST /hl7v2``) in one real store, plus the
records a hospital's system writes that link resident A (王建国) to resident B (李秀英), over real HTTP.

A's compartment: every record of 王建国's person (files 01-09, 13-16). B: 李秀英 (files 10-12), with a
recognition flag of her own. The links (written by a trusted hospital client, ``system/*.cruds``):
in A's compartment, records that cite B's -- a flag naming both, a Provenance, an Observation
``derivedFrom``/``hasMember`` B's result, a DiagnosticReport whose ``result`` is B's, an Encounter
``partOf`` B's visit, a ServiceRequest ``basedOn`` B's order, a Condition whose evidence is B's
result, an AuditEvent about A's record naming B, a RelatedPerson carrying B's name and a
reference to her Patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app

FEEDS = Path(__file__).resolve().parent.parent / "examples" / "feeds"
A_NUMBER = "32092319850412001X"  # 王建国
B_NAME = "李秀英"
ER7 = "x-application/hl7-v2+er7"
# types in no patient's compartment that ``$everything`` includes (the lab, the doctor): not B's
SHARED = frozenset({"Organization", "Practitioner", "PractitionerRole", "Location", "Medication", "Device",
                    "HealthcareService", "Endpoint"})


@dataclass
class World:
    engine: Any
    http: TestClient
    a: list[str]  # A's Patient ids
    b: list[str]  # B's Patient ids
    b_refs: dict[str, list[str]] = field(default_factory=dict)  # type -> ids of B's records
    b_number: str = ""
    links: dict[str, str] = field(default_factory=dict)  # id -> type of the linking records (in A's compartment)

    def h(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def resident(self, scopes: str = "patient/*.rs") -> dict[str, str]:
        token, _ = self.engine.auth.issue_token(subject="person-a", kind="patient", client_id="phr",
                                                scopes=scopes.split() + ["openid", "fhirUser"], patient=self.a[0])
        return self.h(token)

    def resident_b(self) -> dict[str, str]:
        token, _ = self.engine.auth.issue_token(subject="person-b", kind="patient", client_id="phr",
                                                scopes=["patient/*.rs"], patient=self.b[0])
        return self.h(token)

    def system(self, scopes: str = "system/*.cruds") -> dict[str, str]:
        return self.h(self.engine.auth.issue_system_token("his-fnxrmyy", scopes))

    def marks(self) -> list[str]:
        """What names B: her number and the id of each of her records (not her name: A's admission
        names his spouse 李秀英 too, NK1-2 -- another person of the same name)."""
        out = [self.b_number]
        for ids in self.b_refs.values():
            out += ids
        return out

    def names_b(self, text: str) -> list[str]:
        return [m for m in self.marks() if m and m in text]


def _post(engine: Any, http: TestClient, body: bytes) -> None:
    token = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
    r = http.post("/hl7v2", content=body, headers={"Authorization": f"Bearer {token}", "Content-Type": ER7})
    assert r.status_code == 200 and r.headers.get("x-hl7-ack-code") in ("AA", "CA"), (r.status_code, r.text[:300])


def _links(w: World) -> list[dict[str, Any]]:
    a, b = w.a[0], w.b[0]
    b_obs, b_sr, b_enc = w.b_refs["Observation"][0], w.b_refs["ServiceRequest"][0], w.b_refs["Encounter"][0]
    first = w.engine.repository.search("Observation", [("subject", f"Patient/{a}"), ("_count", "1")]).resources[0]
    a_obs = first["id"]
    made = {k: first[k] for k in ("effectiveDateTime", "performer") if k in first}  # what huren requires of a result
    pa, ob = {"reference": f"Patient/{a}"}, {"reference": f"Observation/{b_obs}"}
    code = {"text": "血常规"}
    return [
        {"resourceType": "DetectedIssue", "id": "pp27-flag-ab", "status": "final", "patient": pa,
         "code": code, "implicated": [{"reference": f"Observation/{a_obs}"}, ob]},
        {"resourceType": "Provenance", "id": "pp27-prov-ab", "recorded": "2025-03-22T08:00:00+08:00",
         "target": [{"reference": f"Observation/{a_obs}"}, ob],
         "agent": [{"who": {"display": "LIS"}}]},
        {"resourceType": "Observation", "id": "pp27-obs-derived", "status": "final", "code": code, "subject": pa,
         "derivedFrom": [ob], "valueString": "见关联", **made},
        {"resourceType": "Observation", "id": "pp27-obs-member", "status": "final", "code": code, "subject": pa,
         "hasMember": [ob], **made},
        {"resourceType": "DiagnosticReport", "id": "pp27-dr-ab", "status": "final", "code": code, "subject": pa,
         "result": [ob]},
        {"resourceType": "Encounter", "id": "pp27-enc-ab", "status": "finished",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
         "subject": pa, "partOf": {"reference": f"Encounter/{b_enc}"}},
        {"resourceType": "ServiceRequest", "id": "pp27-sr-ab", "status": "active", "intent": "order", "code": code,
         "subject": pa, "basedOn": [{"reference": f"ServiceRequest/{b_sr}"}]},
        {"resourceType": "Condition", "id": "pp27-cond-ab", "subject": pa, "code": {"text": "贫血"},
         "evidence": [{"detail": [ob]}]},
        {"resourceType": "AuditEvent", "id": "pp27-audit-ab", "recorded": "2025-03-22T08:00:00+08:00",
         "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
         "agent": [{"requestor": True, "who": {"display": "王医生"}}],
         "source": {"observer": {"display": "HIS"}},
         "entity": [{"what": pa}, {"what": {"reference": f"Patient/{b}"}}]},
        # (its own identifier is the relative's, shown to A by design: confined.yaml ``number_systems``)
        {"resourceType": "RelatedPerson", "id": "pp27-rp-ab", "patient": pa, "name": [{"text": B_NAME}],
         "extension": [{"url": "urn:huren:probe:same-as", "valueReference": {"reference": f"Patient/{b}"}}]},
    ]


def build(tmp_path_factory: Any):  # a generator: the world, then closed
    from engine.engine import Engine
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("privprobe27") / "var", http_port=0, mllp_port=0))
    try:
        with TestClient(create_app(engine)) as http:
            for path in sorted(FEEDS.glob("*.hl7")):
                _post(engine, http, path.read_bytes())
            a = sorted(engine.identity.person_compartment(engine.identity.patients_for_number(A_NUMBER)[0]))
            b_pat = [p for p in engine.repository.search("Patient", [("name", B_NAME), ("_count", "10")]).resources]
            b = sorted(p["id"] for p in b_pat)
            assert a and b and not set(a) & set(b)
            w = World(engine, http, a, b)
            w.b_number = next(i["value"] for p in b_pat for i in p.get("identifier", [])
                              if "NNCHN" in str(i.get("type")))
            sysh = w.system()
            for pid in b:
                ev = http.get(f"/fhir/Patient/{pid}/$everything", params={"_count": "500"}, headers=sysh).json()
                for e in ev.get("entry", []):
                    r = e["resource"]
                    if r["resourceType"] in SHARED:
                        continue
                    if r["id"] not in w.b_refs.setdefault(r["resourceType"], []):
                        w.b_refs[r["resourceType"]].append(r["id"])
            flags = engine.repository.search("DetectedIssue", [("patient", ",".join(f"Patient/{p}" for p in b))]).resources
            w.b_refs.setdefault("DetectedIssue", []).extend(f["id"] for f in flags)
            for pid_key in ("Observation", "ServiceRequest", "Encounter"):
                assert w.b_refs.get(pid_key), (pid_key, sorted(w.b_refs))
            for r in _links(w):
                resp = http.put(f"/fhir/{r['resourceType']}/{r['id']}", json=r, headers=sysh)
                assert resp.status_code in (200, 201), (r["id"], resp.status_code, resp.text[:400])
                w.links[r["id"]] = r["resourceType"]
            yield w
    finally:
        engine.close()
