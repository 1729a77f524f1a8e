"""The master patient index decides who is the same person: by validated national ID, never by guess.

Patients are stored the way ingest stores them (through the repository and its write hooks when
the repository is wired; directly through the MPI hook otherwise), on the real SQLite store.
"""

from __future__ import annotations

import pytest

from engine.identity.nationalid import check_character


def nid(base17: str) -> str:
    return base17 + check_character(base17)


ZHANG = nid("32092319900101123")
WANG = nid("32092319850615222")


def patient(pid: str, number: str | None, name: str = "张三", gender: str = "male", birth: str = "1990-01-01",
            **extra) -> dict:
    idents = [{"system": f"urn:huren:mrn:{pid.split('-')[0].upper()}", "value": pid}]
    if number:
        idents.append({"value": number, "type": {"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}})
    return {"resourceType": "Patient", "id": pid, "identifier": idents, "name": [{"text": name}],
            "gender": gender, "birthDate": birth, **extra}


def store(engine, resource: dict) -> list[dict]:
    repo = getattr(engine, "repository", None)
    if repo is not None:
        return repo.update(resource).issues
    return engine.identity.on_write(resource, None)


def test_same_national_id_links_records_of_two_hospitals(engine):
    assert store(engine, patient("fn-1", ZHANG)) == []
    assert store(engine, patient("fz-7", ZHANG, name="张 三")) == []  # whitespace is not a difference
    mpi = engine.identity
    assert mpi.person_compartment("fn-1") == {"fn-1", "fz-7"} == mpi.person_compartment("fz-7")
    assert mpi.patients_for_number(ZHANG) == ["fn-1", "fz-7"]


def test_conflicting_demographics_are_reported_never_linked(engine):
    store(engine, patient("fn-1", ZHANG))
    issues = store(engine, patient("fz-7", ZHANG, name="张山"))
    assert len(issues) == 1 and issues[0]["severity"] == "warning" and "name" in issues[0]["diagnostics"]
    assert engine.identity.person_compartment("fn-1") == {"fn-1"}
    assert engine.identity.record("fz-7")["status"] == "conflict"
    assert [d["_id"] for d in engine.identity.conflicts()] == ["fz-7"]


@pytest.mark.parametrize("record,field", [
    (patient("fn-2", ZHANG, birth="1990-01-02"), "birthDate"),
    (patient("fn-2", ZHANG, gender="female"), "gender"),
])
def test_record_contradicting_its_own_id_number_is_a_conflict(engine, record, field):
    issues = store(engine, record)
    assert field in issues[0]["diagnostics"]
    assert engine.identity.record("fn-2")["status"] == "conflict"
    assert engine.identity.patients_for_number(ZHANG) == []


def test_invalid_or_missing_id_number_is_never_linked(engine):
    bad = ZHANG[:-1] + ("0" if ZHANG[-1] != "0" else "1")
    issues = store(engine, patient("fn-3", bad))
    assert "not valid" in issues[0]["diagnostics"]
    assert engine.identity.record("fn-3")["status"] == "invalid-id"
    assert store(engine, patient("fn-4", None)) == []
    assert engine.identity.record("fn-4")["status"] == "no-id"
    assert engine.identity.person_compartment("fn-4") == {"fn-4"}


def test_changed_id_number_moves_the_record_to_the_right_person(engine):
    store(engine, patient("fn-1", ZHANG))
    store(engine, patient("fz-7", ZHANG))
    store(engine, patient("wang-1", WANG, name="王五", gender="female", birth="1985-06-15"))
    # hospital FZ corrects a typo: fz-7 was really 王五
    store(engine, patient("fz-7", WANG, name="王五", gender="female", birth="1985-06-15"))
    assert engine.identity.person_compartment("fn-1") == {"fn-1"}
    assert engine.identity.person_compartment("wang-1") == {"wang-1", "fz-7"}


def test_index_does_not_hold_id_numbers_in_clear(engine):
    store(engine, patient("fn-1", ZHANG))
    doc = engine.identity.record("fn-1")
    assert ZHANG not in repr(doc)


def test_linking_writes_a_record_again_only_when_its_links_change(engine):
    """A record alone in its person is stored once; a second record of the person is stored once,
    with its ``seealso`` link in its first version, and the first record gets one too (a new
    version), no more."""
    repo = engine.repository
    store(engine, patient("fn-1", ZHANG))
    assert [v.version for v in repo.versions("Patient", "fn-1")] == [1]
    store(engine, patient("fz-7", ZHANG))
    assert [v.version for v in repo.versions("Patient", "fn-1")] == [2, 1]
    assert [v.version for v in repo.versions("Patient", "fz-7")] == [1]
    assert repo.vread("Patient", "fz-7", "1")["link"] == [{"other": {"reference": "Patient/fn-1"}, "type": "seealso"}]
    assert [link["other"]["reference"] for link in repo.read("Patient", "fn-1")["link"]] == ["Patient/fz-7"]
    assert [link["other"]["reference"] for link in repo.read("Patient", "fz-7")["link"]] == ["Patient/fn-1"]
    store(engine, patient("fz-7", ZHANG, telecom=[{"system": "phone", "value": "13800000000"}]))
    assert len(repo.versions("Patient", "fn-1")) == 2  # the other record's links did not change
    assert "link" in repo.read("Patient", "fz-7")  # the index's links survive the sender's new version


def test_a_resent_record_is_not_classified_again_and_a_conflict_is(engine, monkeypatch):
    """A linked record re-sent unchanged (an ADT A08 repeating itself) costs the index one key
    lookup, not its number's and person's queries; a record in conflict re-sent after the other
    record was corrected is classified again and linked."""
    mpi = engine.identity
    store(engine, patient("fn-1", ZHANG))
    store(engine, patient("fz-7", ZHANG))
    finds = []
    real = mpi.links.coll.find
    monkeypatch.setattr(mpi.links.coll, "find", lambda *a, **k: finds.append(a) or real(*a, **k))
    result = engine.repository.update(patient("fz-7", ZHANG))
    assert not result.changed and finds == []
    assert mpi.person_compartment("fz-7") == {"fn-1", "fz-7"}
    monkeypatch.undo()

    wang = {"gender": "female", "birth": "1985-06-15"}
    store(engine, patient("fy-3", WANG, name="王五", **wang))
    assert store(engine, patient("fx-4", WANG, name="王伍", **wang)) != []  # conflict: the names differ
    assert mpi.record("fx-4")["status"] == "conflict"
    store(engine, patient("fy-3", WANG, name="王伍", **wang))  # the first record corrected
    store(engine, patient("fx-4", WANG, name="王伍", **wang))  # re-sent unchanged: classified again
    assert mpi.record("fx-4")["status"] == "linked"
    assert mpi.person_compartment("fx-4") == {"fx-4", "fy-3"}


def test_every_version_the_index_writes_is_valid_fhir(engine):
    """The index writes its link versions without validating them again (each is a stored, valid
    version with the index's own links in place): every shape of those links -- ``seealso``
    between records of one person, ``replaced-by``/``replaces`` after an operator's merge, none
    after an unlink -- is proven valid here, with the links a sender stated kept beside them.
    Data changed in the twenty-sixth round (linkmend26): the record merged was 王五's of another ID
    number, a merge refused now (``link_refusal``); it is a record with no number (an unidentified
    emergency registration), which the desk may merge, and the links written have the same shapes."""
    repo, mpi = engine.repository, engine.identity
    related = {"other": {"reference": "RelatedPerson/rp-1"}, "type": "seealso"}
    store(engine, patient("fn-1", ZHANG, link=[related]))
    store(engine, patient("fz-7", ZHANG))
    store(engine, patient("fy-9", ZHANG))
    store(engine, patient("wang-1", None, name="无名氏", gender="male", birth="1990-01-01"))
    mpi.link("wang-1", "fn-1", type_="replaced-by", actor="op", reason="the emergency patient is 张三")
    mpi.unlink("fy-9", actor="op", reason="not the same person")
    written = [v.resource for pid in ("fn-1", "fz-7", "fy-9", "wang-1") for v in repo.versions("Patient", pid)]
    assert len(written) > 8
    types = {link["type"] for r in written for link in r.get("link", ())}
    assert types == {"seealso", "replaced-by", "replaces"}, types
    assert related in repo.read("Patient", "fn-1")["link"]  # the sender's own link stays
    for version in written:
        engine.validator.validate(version)  # raises on anything invalid
