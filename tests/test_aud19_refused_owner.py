"""A resident's refused attempt on another resident's Observation is in the owner's "who looked".

李四 (a resident, her own token) asks for 张三's Observation by id: 404, as for any record she may
not know of. The signed record named no owner (the 404 was decided before anyone asked whose the
record was), so 张三's list did not show that someone tried, while an attempt on his *Patient*
did. Now the refused read names its owner in the record: 张三 sees "a resident, read, refused,
Observation", never who (李四 is "another resident"); 李四's answer is the same 404 as for a
record that does not exist; her own list gains nothing; and a record of her own that a label
withholds from her is not named as hers (her own list would tell her it exists). Real HTTP through
FastAPI, the real log.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit.who_looked import who_looked
from tests.test_audit_views import _obs, resident, world

__all__ = ["world"]


def _looked(engine: Any, pid: str) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(a.role, a.what, a.outcome, a.resource_types) for a in who_looked(engine.repository, {pid})]


def test_a_refused_read_of_anothers_observation_shows_in_the_owners_list(world: Any) -> None:
    http = TestClient(create_app(world))
    li = resident(world, "pt-li")
    tried = http.get("/fhir/Observation/obs-zhang", headers=li)
    missing = http.get("/fhir/Observation/no-such-obs", headers=li)
    assert tried.status_code == missing.status_code == 404
    assert tried.json()["issue"] == missing.json()["issue"]  # nothing tells her it exists

    seen = who_looked(world.repository, {"pt-zhang"})
    assert [(a.role, a.what, a.outcome, a.resource_types) for a in seen] == [
        ("resident", "read", "refused", ("Observation",))]
    assert seen[0].who == ""  # another resident: not named
    r = http.get("/fhir/AuditEvent?patient=pt-zhang", headers=resident(world, "pt-zhang"))
    assert r.status_code == 200 and "pt-li" not in r.text and "person-pt-li" not in r.text
    assert _looked(world, "pt-li") == []  # her own list: nothing of his


def test_a_refused_read_of_a_missing_record_names_nobody(world: Any) -> None:
    http = TestClient(create_app(world))
    assert http.get("/fhir/Observation/no-such-obs", headers=resident(world, "pt-li")).status_code == 404
    assert _looked(world, "pt-zhang") == [] and _looked(world, "pt-li") == []


def test_her_own_record_withheld_by_a_label_is_not_named_as_hers(world: Any) -> None:
    """A very restricted (V) result of 张三's own is withheld from him (404); the record of his refused
    read must not name him, or his own list would show him that the record exists."""
    labelled = _obs("obs-zhang-v", "pt-zhang")
    labelled["meta"] = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                      "code": "V"}]}
    world.repository.update(labelled)
    http = TestClient(create_app(world))
    assert http.get("/fhir/Observation/obs-zhang-v", headers=resident(world, "pt-zhang")).status_code == 404
    assert _looked(world, "pt-zhang") == []
