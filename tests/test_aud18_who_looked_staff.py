""""Who looked at my record" names a signed-in health worker as one.

A clinician signed in to the pages (a real staff session, ``engine.staff.open_session``) reads
张三's result through ``/fhir``. The signed record names her (``urn:huren:staff``, her display name
and role); 张三's list said role "other" (the page's "其他") and only her login id, because the
staff identifier system had no role and the view drops every ``display``. Now she is a health
worker ("user", the page's 医务人员) named as her account names her, an auditor signed in is an
auditor, and nothing else in the view changes. Real HTTP through FastAPI, the real log.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit.who_looked import who_looked
from engine.auth.staff import StaffIdentity
from engine.auth.staff_session import SESSION_COOKIE
from tests.test_audit_views import LI_TRACES, world

__all__ = ["world"]


def _staff(engine: Any, name: str, role: str, display: str) -> dict[str, str]:
    person = StaffIdentity(name, role, "FNXRMYY", display, "")
    token, _ = engine.staff.open_session(person, engine.staff.roles[role], address="127.0.0.1",
                                         issuer="https://idp.fnxrmyy.example.cn")
    return {SESSION_COOKIE: token}


def test_a_clinician_who_read_my_result_is_a_named_health_worker(world: Any) -> None:
    http = TestClient(create_app(world))
    doctor = _staff(world, "zhao.min", "clinician", "赵敏")
    assert http.get("/fhir/Observation/obs-zhang", cookies=doctor).status_code == 200
    auditor = _staff(world, "wang.li", "auditor", "王丽")
    assert http.get("/fhir/Observation/obs-zhang", cookies=auditor).status_code == 200
    got = sorted((a.role, a.who, a.who_name, a.what, a.outcome) for a in who_looked(world.repository, {"pt-zhang"},
                                                                               staff_roles=world.staff.roles))
    assert got == [("auditor", "wang.li", "王丽", "read", "success"),
                   ("user", "zhao.min", "赵敏", "read", "success")]
    r = http.get("/fhir/AuditEvent?patient=pt-zhang", headers={"Authorization": "Bearer " + world.auth.issue_token(
        subject="person-pt-zhang", kind="patient", client_id="phr", scopes=["patient/*.rs"], patient="pt-zhang")[0]})
    assert r.status_code == 200 and not any(t in r.text for t in LI_TRACES)
