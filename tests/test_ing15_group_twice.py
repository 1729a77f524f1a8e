"""A resource written by two ``write_many`` calls of one write group (``Repository.group``) is
versioned twice, not stored as two resources of one id (the real store, both backends)."""

from __future__ import annotations

from engine.engine import Engine
from engine.settings import Settings


def test_one_resource_twice_in_a_group_is_two_versions(backend_settings: Settings) -> None:
    with Engine(backend_settings) as engine:
        repo = engine.repository
        org = {"resourceType": "Organization", "id": "twice", "name": "A"}
        with repo.group():
            repo.write_many([org], source="ADT")
            repo.write_many([{**org, "name": "B", "alias": ["b"]}], source="ORU")
        (found,) = repo.search("Organization", [("_id", "twice")]).resources
        assert found["meta"]["versionId"] == "2" and found["alias"] == ["b"]
        assert [v["meta"]["versionId"] for v in repo.history("Organization", "twice")] == ["2", "1"]
