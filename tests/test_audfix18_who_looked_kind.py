""""Who looked at my record" says auditor by the staff role's *kind*, not by its name.

A site replaces ``staff/roles.yaml`` (``HUREN_SITE``) and names its roles as it likes: here the
insurance bureau's reviewer is ``yb_auditor`` (kind ``auditor``, 医保审核员), and — to show the
name decides nothing — a role called ``auditor`` is a ward clerk's (kind ``user``). Each signs in
(a real staff session), reads 张三's result over HTTP through FastAPI, and 张三's own page
(``/ui/me/who-looked``, the resident's token) must call the reviewer an auditor (审计人员) and the
clerk a health worker (医务人员). Before the mend the role was read from its name: the reviewer
showed as 医务人员 and the clerk as 审计人员.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.auth.staff import StaffIdentity
from engine.auth.staff_session import SESSION_COOKIE
from engine.engine import Engine
from engine.settings import Settings
from tests.test_audit_views import ZHANG_ID, _obs, _patient

ROLES = """\
yb_auditor:
  kind: auditor
  label: {zh: 医保审核员, en: insurance reviewer}
  scopes: [user/Observation.rs, user/DetectedIssue.rus]
auditor:
  kind: user
  label: {zh: 病区文员, en: ward clerk}
  scopes: [user/Observation.rs]
clinician:
  kind: user
  label: {zh: 临床医生, en: clinician}
  scopes: [user/Observation.rs, user/Patient.rs]
"""


@pytest.fixture
def site_engine(settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    site = tmp_path / "site"
    (site / "staff").mkdir(parents=True)
    (site / "staff" / "roles.yaml").write_text(ROLES, encoding="utf-8")
    with Engine(settings.with_(site=site)) as eng:
        eng.repository.update(_patient("pt-zhang", ZHANG_ID, "张三"))
        eng.repository.update(_obs("obs-zhang", "pt-zhang"))
        yield eng


def _session(engine: Engine, name: str, role: str, display: str) -> dict[str, str]:
    person = StaffIdentity(name, role, "FNXRMYY", display, "")
    token, _ = engine.staff.open_session(person, engine.staff.roles[role], address="127.0.0.1",
                                         issuer="https://idp.fnxrmyy.example.cn")
    return {SESSION_COOKIE: token}


def test_the_resident_sees_a_site_named_auditor_as_an_auditor(site_engine: Engine) -> None:
    http = TestClient(create_app(site_engine))
    for name, role, display in (("li.shen", "yb_auditor", "李审"), ("sun.wen", "auditor", "孙文"),
                                ("zhao.min", "clinician", "赵敏")):
        assert http.get("/fhir/Observation/obs-zhang", cookies=_session(site_engine, name, role, display)).status_code == 200
    token, _ = site_engine.auth.issue_token(subject="person-pt-zhang", kind="patient", client_id="huren-me",
                                            scopes=["patient/*.rs"], patient="pt-zhang")
    r = http.get("/ui/me/who-looked", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    staff = sorted((e["who"], e["who_name"], e["role"]) for e in r.json()["entries"] if e["who"] in
                   ("li.shen", "sun.wen", "zhao.min"))
    assert staff == [("li.shen", "李审", "auditor"), ("sun.wen", "孙文", "user"), ("zhao.min", "赵敏", "user")]


def test_a_role_the_site_no_longer_has_is_not_guessed(settings: Settings, tmp_path: Path) -> None:
    """The record names the role; its kind is the site's current file's. A role since removed is
    shown as "other" (其他, with her name), not guessed as a health worker or an auditor."""
    site = tmp_path / "site"
    (site / "staff").mkdir(parents=True)
    (site / "staff" / "roles.yaml").write_text(ROLES, encoding="utf-8")
    with Engine(settings.with_(site=site)) as eng:
        eng.repository.update(_patient("pt-zhang", ZHANG_ID, "张三"))
        eng.repository.update(_obs("obs-zhang", "pt-zhang"))
        http = TestClient(create_app(eng))
        assert http.get("/fhir/Observation/obs-zhang", cookies=_session(eng, "li.shen", "yb_auditor", "李审")).status_code == 200
    (site / "staff" / "roles.yaml").write_text(ROLES.split("auditor:\n  kind: user")[0].replace(
        "yb_auditor", "yb_reviewer"), encoding="utf-8")
    with Engine(settings.with_(site=site)) as eng:
        token, _ = eng.auth.issue_token(subject="person-pt-zhang", kind="patient", client_id="huren-me",
                                        scopes=["patient/*.rs"], patient="pt-zhang")
        r = TestClient(create_app(eng)).get("/ui/me/who-looked", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert [(e["who"], e["who_name"], e["role"]) for e in r.json()["entries"] if e["who"] == "li.shen"] == [
        ("li.shen", "李审", "other")]
