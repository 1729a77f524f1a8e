"""The world of the result-label tests (labelmark27 and the rounds after it: privleft28, privfix28,
labelfix28 and their reviews): the project's example feeds (``examples/feeds``, invented messages) as
HL7 v2 over ``POST /hl7v2`` into one real store; the hospital's unbound system (``system/*.cruds``)
labels results by a FHIR PUT and writes the records citing them (``put``); readers over real HTTP
(a system bound to another institution, a clinician's page session, the resident). One copy of the
set-up the citation tests shared by copying (tidy29)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_rvrvops26_quarantine_access import _session

FEEDS = Path(__file__).resolve().parent.parent / "examples" / "feeds"
SEC = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ER7 = "x-application/hl7-v2+er7"
WANG = "32092319850412001X"  # 王建国's national ID (the feeds' PID-3)
# 王建国's admission and blood count at 阜宁县人民医院; the same at 阜宁县妇幼 (his record there)
RYY_FEEDS = ("01_FNXRMYY_ADT_A01_admission.hl7", "02_FNXRMYY_ORU_R01_blood_count.hl7")
YL_FEEDS = ("13_FNYLWSY_ORM_O01_blood_count_wang_self_pay.hl7", "14_FNYLWSY_ORU_R01_blood_count_wang.hl7")


class World:
    def __init__(self, engine: Engine, http: TestClient) -> None:
        self.engine, self.http = engine, http
        self.his = self.h(engine.auth.issue_system_token("his-fnxrmyy", "system/*.cruds"))
        self.feed = self.h(engine.auth.issue_system_token("lis-gw", "system/MessageHeader.c"))

    @staticmethod
    def h(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def post(self, body: bytes) -> str:
        r = self.http.post("/hl7v2", content=body, headers={**self.feed, "Content-Type": ER7})
        assert r.status_code == 200, r.text[:300]
        return str(r.headers.get("x-hl7-ack-code"))

    def report(self, control: str) -> dict[str, Any]:
        """The DiagnosticReport the feed wrote for the message whose MSH-10 is ``control``."""
        raw = next(p.read_bytes() for p in FEEDS.glob("*.hl7") if control.encode() in p.read_bytes())
        obr3 = raw.split(b"\rOBR|")[1].split(b"|")[2].split(b"^")[0].decode()
        found = self.http.get("/fhir/DiagnosticReport", params={"identifier": obr3}, headers=self.his).json()
        (entry,) = found["entry"]
        return entry["resource"]

    def label(self, ref: str, code: str | None) -> dict[str, Any]:
        """The hospital's system PUTs ``ref`` again with ``code`` as its only label (None: no label)."""
        body = self.http.get(f"/fhir/{ref}", headers=self.his).json()
        body.pop("meta", None)
        if code:
            body["meta"] = {"security": [{"system": SEC, "code": code}]}
        r = self.http.put(f"/fhir/{ref}", json=body, headers=self.his)
        assert r.status_code == 200, r.text[:400]
        return r.json()

    def bound(self) -> dict[str, Any]:
        token, _ = self.engine.auth.issue_token(subject="his-fnzyy", kind="system", client_id="his-fnzyy",
                                                scopes=["system/*.rs"], extra={"institution": "FNZYY"})
        return {"headers": self.h(token)}

    def clinician(self) -> dict[str, Any]:
        cookies, _ = _session(self.engine, "clinician", name="dr.lm27")
        return {"cookies": cookies}

    def resident(self) -> dict[str, Any]:
        pid = self.engine.identity.patients_for_number(WANG)[0]
        token, _ = self.engine.auth.issue_token(subject="person-wang", kind="patient", client_id="phr",
                                                scopes=["patient/*.rs"], patient=pid)
        return {"headers": self.h(token)}


@contextlib.contextmanager
def opened(settings: Settings, feeds: tuple[str, ...] = RYY_FEEDS) -> Iterator[World]:
    """An engine on ``settings`` serving over a TestClient, ``feeds`` sent in (each AA or CA)."""
    engine = Engine(settings)
    try:
        with TestClient(create_app(engine)) as http:
            world = World(engine, http)
            for name in feeds:
                assert world.post((FEEDS / name).read_bytes()) in ("AA", "CA"), name
            yield world
    finally:
        engine.close()


def settings_in(tmp_path_factory: Any, name: str) -> Settings:
    """A fresh data folder of its own, no listeners."""
    return Settings(data_dir=tmp_path_factory.mktemp(name) / "var", http_port=0, mllp_port=0)


def put(w: World, body: dict[str, Any]) -> dict[str, Any]:
    """The hospital's system PUTs ``body`` (200 or 201); the stored resource."""
    r = w.http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=w.his)
    assert r.status_code in (200, 201), (body["resourceType"], r.text[:400])
    return r.json()


def get(w: World, ref: str) -> dict[str, Any]:
    """The hospital's system reads ``ref`` (200)."""
    r = w.http.get(f"/fhir/{ref}", headers=w.his)
    assert r.status_code == 200, r.text[:300]
    return r.json()


def labels_of(resource: dict[str, Any]) -> list[str]:
    return sorted(c["code"] for c in (resource.get("meta") or {}).get("security", []) if c.get("system") == SEC)


def as_missing(w: World, how: dict[str, Any], ref: str) -> None:
    """``ref`` reads exactly as a made-up id of its type does (404, the same words)."""
    rtype, rid = ref.split("/")
    real = w.http.get(f"/fhir/{ref}", **how)
    fake = w.http.get(f"/fhir/{rtype}/zz-missing-0", **how)
    if real.status_code == fake.status_code == 403 and "cookies" in how:
        return  # a type a clinician's session does not read (Condition)
    assert real.status_code == fake.status_code == 404, (ref, real.status_code, real.text[:300])
    assert real.text.replace(rid, "X") == fake.text.replace("zz-missing-0", "X")


def count(w: World, how: dict[str, Any], query: str) -> int:
    r = w.http.get(f"/fhir/{query}&_summary=count", **how)
    assert r.status_code == 200, (query, r.text[:300])
    return int(r.json()["total"])
