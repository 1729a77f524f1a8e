"""The repository's write path over every backend: hooks picked per resource type, first versions
stored as sent, and the current versions a block of writes knows staying the stored ones."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import Conflict
from engine.repository.fhir import FhirRepository
from engine.repository.port import Store

BASE = "http://huren.test/fhir"


@pytest.fixture
def repo(store: Store) -> FhirRepository:
    return FhirRepository(store, base_url=BASE)


def patient(pid: str, given: str = "三") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": "张", "given": [given]}], "gender": "male"}


def observation(oid: str, value: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": {"text": "血红蛋白"},
            "subject": {"reference": "Patient/p1"}, "valueQuantity": {"value": value, "unit": "g/L"}}


def versions(repo: FhirRepository, rtype: str, rid: str) -> list[int]:
    return [v.version for v in repo.versions(rtype, rid)]


def test_marks_statements_guards_and_hooks_meet_only_the_types_they_name(repo: FhirRepository) -> None:
    calls: list[tuple[str, str]] = []

    def mark(resource: dict[str, Any]) -> dict[str, Any]:
        calls.append(("mark", resource["resourceType"]))
        return {**resource, "active": True}

    def statement(resource: dict[str, Any], previous: dict[str, Any] | None, writer: str) -> dict[str, Any]:
        calls.append(("statement", resource["resourceType"]))
        return resource

    def guard(resource: dict[str, Any], previous: dict[str, Any] | None) -> None:
        calls.append(("guard", resource["resourceType"]))

    def hook(resource: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        calls.append(("hook", resource["resourceType"]))
        return []

    def every(resource: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        calls.append(("every", resource["resourceType"]))
        return []

    repo.add_mark(mark, types={"Patient"})
    repo.add_statement(statement, types={"Patient"})
    repo.add_write_guard(guard, types={"Patient"})
    repo.add_write_hook(hook, types={"Patient"})
    repo.add_write_hook(every)
    repo.write_many([patient("p1"), observation("o1", 130)])
    assert sorted(calls) == sorted([("mark", "Patient"), ("statement", "Patient"), ("guard", "Patient"),
                                    ("hook", "Patient"), ("every", "Patient"), ("every", "Observation")])
    assert repo.read("Patient", "p1")["active"] is True  # the mark is in the stored version
    assert "active" not in repo.read("Observation", "o1")

    # a registry entry replaced in place (as a profiler wraps them) is the one called from then on
    def refusing(resource: dict[str, Any], previous: dict[str, Any] | None) -> None:
        raise Conflict("refused")

    repo._guards[0] = refusing
    with pytest.raises(Conflict):
        repo.update(patient("p1", given="四"))
    repo.update(observation("o1", 131))  # not a Patient: the guard is not asked
    assert versions(repo, "Patient", "p1") == [1]
    assert versions(repo, "Observation", "o1") == [2, 1]


def test_a_first_version_is_stored_as_sent_and_a_thinner_update_erases_nothing(repo: FhirRepository) -> None:
    """Nothing stored: the merge rules are not asked (``as_is``); something stored: they are, and
    a feed's thinner version keeps what the earlier one stated (mappings/merge.yaml)."""
    full = {"resourceType": "Patient", "id": "p9", "name": [{"family": "王", "given": ["建国"]}],
            "telecom": [{"system": "phone", "value": "13800000000"}], "gender": "male"}
    [first] = repo.write_many([full], source="ADT")
    assert first.created and first.resource["telecom"] == full["telecom"]
    thin = {"resourceType": "Patient", "id": "p9", "name": [{"family": "王", "given": ["建国"]}], "gender": "male"}
    repo.write_many([thin], source="ORU")
    assert repo.read("Patient", "p9")["telecom"] == full["telecom"]


def test_a_block_reads_current_versions_once_and_its_writes_keep_them_current(repo: FhirRepository,
                                                                               store: Store) -> None:
    repo.write_many([patient("p1"), observation("o1", 120)])
    asked: list[int] = []
    current_many = repo.backend.current_many

    def counted(keys: Any) -> Any:
        asked.append(len(keys))
        return current_many(keys)

    repo.backend.current_many = counted  # type: ignore[method-assign]
    keys = [("Patient", "p1"), ("Observation", "o1"), ("Observation", "o2")]
    with store.transaction(), repo.known_current(keys):
        repo.write_many([patient("p1", given="四"), observation("o1", 121)])  # a group: v2 of both
        repo.write_many([observation("o1", 122), observation("o2", 90)])  # the next group sees v2
        repo.update(patient("p1", given="五"))  # outside a group: v3
        assert repo.read("Patient", "p1")["name"][0]["given"] == ["五"]
        repo.delete("Observation", "o2")
        repo.write_many([observation("o2", 91)])  # back after the deletion: v3
    assert asked == [3]  # one backend call for the whole block
    assert versions(repo, "Patient", "p1") == [3, 2, 1]
    assert versions(repo, "Observation", "o1") == [3, 2, 1]
    assert versions(repo, "Observation", "o2") == [3, 2, 1]
    assert repo.read("Observation", "o2")["valueQuantity"]["value"] == 91
    with pytest.raises(RuntimeError), repo.known_current(keys):  # outside a transaction it knows nothing for sure
        pass


def test_a_failed_write_in_a_block_sends_the_next_reads_to_the_backend(repo: FhirRepository, store: Store) -> None:
    repo.update(patient("p1"))
    failing = {"on": False}

    def hook(resource: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        if failing["on"]:
            raise Conflict("the hook refuses this version")
        return []

    repo.add_write_hook(hook, types={"Patient"})
    with store.transaction(), repo.known_current([("Patient", "p1")]):
        failing["on"] = True
        with pytest.raises(Conflict), store.transaction():  # rolled back alone where the backend can (SQLite)
            repo.update(patient("p1", given="四"))
        failing["on"] = False
        stored = repo.backend.current("Patient", "p1")
        assert stored is not None
        result = repo.update(patient("p1", given="五"))
        assert result.version == str(stored.version + 1)  # from what is stored, not from what was known
    assert versions(repo, "Patient", "p1") == list(range(int(result.version), 0, -1))


def test_the_versions_a_group_puts_share_one_instant_and_the_next_group_is_later(repo: FhirRepository) -> None:
    """One instant per write group, not per version: the clock hands out strictly increasing
    milliseconds, and one per version ran ahead of the wall clock at ingest rates."""
    groups = [repo.write_many([patient(f"p{g}-{n}") for n in range(20)]) for g in range(5)]
    instants = [{r.resource["meta"]["lastUpdated"] for r in results} for results in groups]
    assert all(len(one) == 1 for one in instants)
    ordered = [one.pop() for one in instants]
    assert ordered == sorted(ordered) and len(set(ordered)) == len(ordered)
    assert repo.read("Patient", "p4-19")["meta"]["lastUpdated"] == ordered[-1]
    twice = repo.write_many([patient("p9"), patient("p9", given="七")])  # flushed in between: later
    assert twice[1].resource["meta"]["lastUpdated"] > twice[0].resource["meta"]["lastUpdated"] > ordered[-1]


def test_a_groups_first_versions_are_stored_as_a_single_write_stores_them(repo: FhirRepository) -> None:
    """``write_many`` versions a group's first versions itself when the writer's merge rules take
    them as sent and no statement or guard concerns their type; a marked type still meets its
    mark, and a type a statement concerns goes through the whole write path. What is stored is
    what one ``update`` at a time stores, byte for byte but for the instant."""
    def mark(resource: dict[str, Any]) -> dict[str, Any]:
        return {**resource, "meta": {"tag": [{"system": "urn:test", "code": "marked"}]}}

    def statement(resource: dict[str, Any], previous: dict[str, Any] | None, writer: str) -> dict[str, Any]:
        return {**resource, "active": True}

    repo.add_mark(mark, types={"Observation"})
    repo.add_statement(statement, types={"Patient"})
    group = [patient("p1"), observation("o1", 120), {"resourceType": "Specimen", "id": "s1", "note": [{"text": "1.50"}]}]
    alone = [{**r, "id": r["id"] + "-alone"} for r in group]
    results = repo.write_many(group, source="ORU")
    for r in alone:
        repo.update(r, source="ORU")

    def body(rtype: str, rid: str) -> bytes:
        rec = repo.backend.current(rtype, rid)
        assert rec is not None and rec.body is not None
        return rec.body.replace(rec.updated.encode(), b"T").replace(b"-alone", b"")

    for r, result in zip(group, results, strict=True):
        assert result.created and result.version == "1"
        assert result.body == repo.backend.current(r["resourceType"], r["id"]).body  # type: ignore[union-attr]
        assert body(r["resourceType"], r["id"]) == body(r["resourceType"], r["id"] + "-alone")
    assert results[1].resource["meta"]["tag"][0]["code"] == "marked" and results[0].resource["active"] is True
    again = repo.write_many([observation("o2", 1), observation("o2", 2)], source="ORU")  # the same resource twice
    assert [r.version for r in again] == ["1", "2"] and repo.read("Observation", "o2")["valueQuantity"]["value"] == 2


@pytest.mark.parametrize("bad", ["", "a" * 65, "p 1", "p1\n", "a/b", "中文"])
def test_a_group_with_one_bad_id_is_refused_whole_naming_it(repo: FhirRepository, bad: str) -> None:
    """The ids of a group are checked in one match, with the rule one id is checked by (1-64 of
    A-Z a-z 0-9 - .; a trailing newline is no exception)."""
    from engine.errors import BadRequest

    with pytest.raises(BadRequest) as refused:
        repo.write_many([patient("p1"), patient(bad), patient("p3")])
    assert repr(bad)[1:-1] in str(refused.value) or bad in str(refused.value)
    assert repo.backend.current("Patient", "p1") is None
    with pytest.raises(BadRequest):
        repo.update(patient(bad))


def test_what_a_first_version_meets_follows_later_registrations_and_new_merge_rules(repo: FhirRepository) -> None:
    """A group decides per writer and type once whether a first version skips the merge rules,
    statements and guards, and keeps that for later groups: a registration made after that, or
    other merge rules, must be met by the next first version all the same."""
    repo.write_many([observation("o1", 120)], source="ORU")  # decided: Observations go as sent
    assert repo.read("Observation", "o1")["valueQuantity"]["value"] == 120

    stated: list[str] = []

    def statement(resource: dict[str, Any], previous: dict[str, Any] | None, writer: str) -> dict[str, Any]:
        stated.append(resource["id"])
        return {**resource, "status": "preliminary"}

    repo.add_statement(statement, types={"Observation"})
    repo.write_many([observation("o2", 121)], source="ORU")
    assert stated == ["o2"] and repo.read("Observation", "o2")["status"] == "preliminary"

    def refuse(resource: dict[str, Any], previous: dict[str, Any] | None) -> None:
        raise Conflict(f"{resource['id']} is refused")

    repo.add_write_guard(refuse, types={"Observation"})
    with pytest.raises(Conflict, match="o3 is refused"):
        repo.write_many([observation("o3", 122)], source="ORU")

    # Specimens of the REST API go as sent under the shipped rules; under rules by which an API
    # create may not state an identifier the patient index owns, the merge rules are asked again
    # (the identifier is kept out, with a warning, instead of being stored as sent)
    specimen = {"resourceType": "Specimen", "id": "s1", "identifier": [{"system": "urn:mpi", "value": "1"}]}
    repo.write_many([specimen], source="api")
    assert repo.read("Specimen", "s1")["identifier"] == specimen["identifier"]
    from engine.merge_rules import MergeRules

    repo.merge = MergeRules({"sources": {"index": ["index"]}, "defaults": {"conflict": {"other": "warn"}},
                             "resources": {"Specimen": {"identifier": {"slices": [
                                 {"name": "the index's numbers", "why": "the patient index owns them",
                                  "where": {"system": ["urn:mpi"]}, "owner": ["index"]}]}}}}, "test")
    result = repo.write_many([{**specimen, "id": "s2"}], source="api")[0]
    assert "identifier" not in repo.read("Specimen", "s2")
    assert result.issues and result.issues[0]["severity"] == "warning"


def test_a_derived_insert_of_an_id_already_stored_is_refused(repo: FhirRepository, store: Store) -> None:
    """The light path for server-derived resources writes no versions: an id it meets stored
    already is refused (no store index refuses a second row of one type and id by itself)."""
    view = {"resourceType": "AuditEvent", "id": "view-1", "recorded": "2026-11-30T08:00:00+08:00",
            "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
            "agent": [{"requestor": True, "who": {"display": "x"}}], "source": {"observer": {"display": "huren"}}}
    with store.transaction():
        repo.insert_derived([view])
    with pytest.raises(ValueError, match="AuditEvent/view-1"), store.transaction():
        repo.insert_derived([{**view, "recorded": "2026-11-30T09:00:00+08:00"}])
    assert repo.read("AuditEvent", "view-1")["recorded"] == "2026-11-30T08:00:00+08:00"
    assert versions(repo, "AuditEvent", "view-1") == [1]
