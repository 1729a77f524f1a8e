"""FhirRepository over every backend: versions, conditional writes, search, compartments, Bundles."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import BadRequest, FhirError, Gone, NotFound, PreconditionFailed, Unprocessable
from engine.repository.fhir import FhirRepository
from engine.repository.ids import deterministic_id
from engine.repository.port import Store
from engine.repository.searchparams import SearchParams, definitions, deployment

BASE = "http://huren.test/fhir"
LOINC = "http://loinc.org"
MRN = "urn:oid:2.16.156.10011.1.FNXRMYY.mrn"


# Observation.code enabled for :text and system| searches, as a deployment's search parameter list would;
# and the reference parameters the shipped list leaves out (performer, specimen, result), which this
# contract searches by, enabled again (only the combo-* parameters stay out)
TEXT_PARAMS = SearchParams(definitions(), {**deployment(), "text": {"Observation": ["code"]},
                                           "system": {"Observation": ["code"]},
                                           "disabled": {"Observation": [c for c in deployment()["disabled"]["Observation"]
                                                                        if c.startswith("combo-")]}})


@pytest.fixture
def repo(store: Store) -> FhirRepository:
    return FhirRepository(store, base_url=BASE, params=TEXT_PARAMS)


def patient(pid: str, family: str = "张", given: str = "三", mrn: str = "0001") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "identifier": [{"system": MRN, "value": mrn}],
            "name": [{"family": family, "given": [given]}], "gender": "male", "birthDate": "1960-05-01"}


def observation(oid: str, pid: str, code: str, when: str, value: float, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code, "display": "Hemoglobin"}], "text": "血红蛋白"},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
            "performer": [{"reference": "Organization/org-a"}],
            "valueQuantity": {"value": value, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"},
            **extra}


def ids(result: Any) -> list[str]:
    return [r["id"] for r in result.resources]


def test_unchanged_is_decided_on_content_not_key_order_and_keeps_decimal_precision(repo: FhirRepository) -> None:
    """A re-sent version makes no new version whether its keys come in the stored order (told on
    bytes) or another (told by the deep comparison); a value written with another precision, a
    changed or a dropped element makes one, in either key order."""
    from engine import fhirjson

    first = repo.update(observation("o-same", "p1", "718-7", "2024-03-01", fhirjson.loads(b"1.5")))
    assert repo.update(observation("o-same", "p1", "718-7", "2024-03-01", fhirjson.loads(b"1.5"))).changed is False
    reordered = dict(reversed(list(observation("o-same", "p1", "718-7", "2024-03-01", fhirjson.loads(b"1.5")).items())))
    assert repo.update(reordered).changed is False
    assert repo.read("Observation", "o-same")["meta"] == first.resource["meta"]
    finer = repo.update(observation("o-same", "p1", "718-7", "2024-03-01", fhirjson.loads(b"1.50")))
    assert finer.changed and finer.version == "2"
    assert fhirjson.dumps(repo.read("Observation", "o-same")["valueQuantity"]["value"]) == b"1.50"
    thinner = {k: v for k, v in reversed(list(observation("o-same", "p1", "718-7", "2024-03-01",
                                                                fhirjson.loads(b"1.50")).items())) if k != "performer"}
    assert repo.update(thinner).version == "3"  # a FHIR client's PUT replaces: the performer is gone
    assert "performer" not in repo.read("Observation", "o-same")


def test_versions_history_and_delete(repo: FhirRepository) -> None:
    first = repo.update(patient("p1"))
    assert first.created and first.resource["meta"]["versionId"] == "1"
    assert first.resource["meta"]["lastUpdated"].endswith("Z")
    same = repo.update(patient("p1"))  # unchanged content: no new version
    assert not same.created and not same.changed and same.resource["meta"]["versionId"] == "1"
    second = repo.update(patient("p1", given="四"))
    assert second.resource["meta"]["versionId"] == "2" and not second.created
    assert second.resource["meta"]["lastUpdated"] > first.resource["meta"]["lastUpdated"]
    assert repo.read("Patient", "p1")["name"][0]["given"] == ["四"]
    assert repo.vread("Patient", "p1", "1")["name"][0]["given"] == ["三"]
    assert [h["meta"]["versionId"] for h in repo.history("Patient", "p1")] == ["2", "1"]
    assert repo.delete("Patient", "p1") == 3
    with pytest.raises(Gone):
        repo.read("Patient", "p1")
    with pytest.raises(Gone):
        repo.vread("Patient", "p1", "3")
    assert [v.deleted for v in repo.versions("Patient", "p1")] == [True, False, False]
    assert repo.search("Patient", [("identifier", f"{MRN}|0001")]).total == 0
    revived = repo.update(patient("p1"))
    assert revived.created and revived.resource["meta"]["versionId"] == "4"
    with pytest.raises(NotFound):
        repo.read("Patient", "nobody")
    with pytest.raises(NotFound):
        repo.vread("Patient", "p1", "99")
    with pytest.raises(BadRequest):
        repo.read("Patient", "bad id!")


def test_if_match_and_conditional_create(repo: FhirRepository) -> None:
    repo.update(patient("p1"))
    with pytest.raises(PreconditionFailed):
        repo.update(patient("p1", given="五"), if_match='W/"7"')
    assert repo.read("Patient", "p1")["meta"]["versionId"] == "1"
    assert repo.update(patient("p1", given="五"), if_match='W/"1"').resource["meta"]["versionId"] == "2"
    with pytest.raises(PreconditionFailed):
        repo.update(patient("p9"), if_match='W/"1"')
    new = {k: v for k, v in patient("ignored", mrn="0002").items() if k != "id"}
    created = repo.create(new, if_none_exist=f"identifier={MRN}|0002")
    assert created.created and created.resource["id"] != "ignored"
    again = repo.create(new, if_none_exist=f"identifier={MRN}|0002")
    assert not again.created and again.resource["id"] == created.resource["id"]
    repo.update(patient("p3", mrn="0002"))
    with pytest.raises(PreconditionFailed):
        repo.create(new, if_none_exist=f"identifier={MRN}|0002")
    updated = repo.conditional_update("Patient", f"identifier={MRN}|0001", patient("x", given="六") | {"id": "p1"})
    assert updated.resource["id"] == "p1" and updated.resource["name"][0]["given"] == ["六"]


def test_validator_runs_before_anything_is_stored(repo: FhirRepository) -> None:
    class NeedsStatus:
        def validate(self, resource: dict[str, Any]) -> None:
            if resource["resourceType"] == "Observation" and "status" not in resource:
                raise Unprocessable("Observation.status is required", expression=["Observation.status"])

    repo.validator = NeedsStatus()
    bad = observation("o1", "p1", "718-7", "2024-03-01", 130)
    del bad["status"]
    with pytest.raises(Unprocessable):
        repo.update(bad)
    with pytest.raises(NotFound):
        repo.read("Observation", "o1")
    with pytest.raises(Unprocessable):
        repo.write_many([observation("o2", "p1", "718-7", "2024-03-01", 130), bad])
    with pytest.raises(NotFound):
        repo.read("Observation", "o2")


def test_write_hooks_see_previous_and_surface_issues(repo: FhirRepository) -> None:
    seen: list[tuple[str, str | None]] = []

    def hook(resource: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        seen.append((resource["meta"]["versionId"], previous and previous["meta"]["versionId"]))
        if resource["resourceType"] == "Observation":
            flag = {"resourceType": "Flag", "id": "f-" + resource["id"], "status": "active",
                    "code": {"text": "duplicate"}, "subject": resource["subject"]}
            repo.update(flag)  # a hook may write; it joins the same transaction
            return [{"severity": "warning", "code": "business-rule", "diagnostics": "duplicate test"}]
        return []

    repo.add_write_hook(hook)
    result = repo.update(observation("o1", "p1", "718-7", "2024-03-01", 130))
    assert result.issues[0]["diagnostics"] == "duplicate test"
    assert repo.read("Flag", "f-o1")["status"] == "active"
    repo.update(observation("o1", "p1", "718-7", "2024-03-01", 131))
    assert ("2", "1") in seen


def test_write_many_group_commit_skips_unchanged(repo: FhirRepository) -> None:
    batch = [patient("p1")] + [observation(f"o{i}", "p1", "718-7", f"2024-03-{i + 1:02d}", 120 + i) for i in range(5)]
    results = repo.write_many(batch)
    assert all(r.created for r in results)
    results = repo.write_many(batch[:3] + [observation("o3", "p1", "718-7", "2024-03-04", 999)])
    assert [r.changed for r in results] == [False, False, False, True]
    assert repo.read("Observation", "o3")["meta"]["versionId"] == "2"
    assert repo.read("Observation", "o1")["meta"]["versionId"] == "1"
    twice = repo.write_many([patient("p2"), patient("p2", given="七")])
    assert [r.resource["meta"]["versionId"] for r in twice] == ["1", "2"]


def _seed(repo: FhirRepository) -> None:
    repo.update(patient("p1"))
    repo.update(patient("p2", family="李", given="四", mrn="0002"))
    repo.update({"resourceType": "Organization", "id": "org-a", "name": "阜宁县人民医院"})
    repo.update(observation("o1", "p1", "718-7", "2024-03-01T08:00:00+08:00", 130))
    repo.update(observation("o2", "p1", "718-7", "2024-05-02T08:00:00+08:00", 110))
    repo.update(observation("o3", "p1", "2345-7", "2024-04-01", 5.4))
    repo.update(observation("o4", "p2", "718-7", "2023-12-31", 140, status="amended"))
    repo.update({"resourceType": "Provenance", "id": "prov1", "target": [{"reference": "Observation/o1"}],
                 "recorded": "2024-03-01T09:00:00Z", "agent": [{"who": {"reference": "Organization/org-a"}}]})


def test_search_tokens_references_chains(repo: FhirRepository) -> None:
    _seed(repo)
    assert ids(repo.search("Patient", [("identifier", f"{MRN}|0002")])) == ["p2"]
    assert ids(repo.search("Patient", [("identifier", "0002")])) == ["p2"]
    assert ids(repo.search("Patient", [("identifier", "urn:other|0002")])) == []
    assert sorted(ids(repo.search("Observation", [("code", f"{LOINC}|718-7")]))) == ["o1", "o2", "o4"]
    assert sorted(ids(repo.search("Observation", [("code", "718-7,2345-7"), ("subject", "Patient/p1")]))) == [
        "o1", "o2", "o3"]
    assert ids(repo.search("Observation", [("subject", "p2")])) == ["o4"]
    assert ids(repo.search("Observation", [("subject", f"{BASE}/Patient/p2")])) == ["o4"]
    assert ids(repo.search("Observation", [("subject:Patient", "p2")])) == ["o4"]
    assert sorted(ids(repo.search("Observation", [("status:not", "final")]))) == ["o4"]
    assert sorted(ids(repo.search("Observation", [("code:text", "血红")]))) == ["o1", "o2", "o3", "o4"]
    assert ids(repo.search("Observation", [("subject:Patient.identifier", f"{MRN}|0002")])) == ["o4"]
    assert sorted(ids(repo.search("Observation", [("patient.name", "张")]))) == ["o1", "o2", "o3"]
    assert ids(repo.search("Observation", [("_id", "o3")])) == ["o3"]
    assert sorted(ids(repo.search("Observation", [("specimen:missing", "true"), ("subject", "p1")]))) == [
        "o1", "o2", "o3"]
    assert ids(repo.search("Observation", [("subject:missing", "false"), ("code", "2345-7")])) == ["o3"]


def test_bare_ids_system_only_and_no_system_tokens(repo: FhirRepository) -> None:
    """Bare-id references match every target type; ``system|`` and ``|code`` tokens; ``|`` alone is a 400."""
    repo.update(observation("g-obs", "x", "718-7", "2024-03-01", 1.0, subject={"reference": "Group/g1"}))
    repo.update(observation("p-obs", "g1", "718-7", "2024-03-01", 1.0))  # Patient/g1: same id, other type
    repo.update({**observation("n-obs", "p9", "x", "2024-03-01", 1.0), "code": {"coding": [{"code": "local-1"}]}})
    assert sorted(ids(repo.search("Observation", [("subject", "g1")]))) == ["g-obs", "p-obs"]
    assert ids(repo.search("Observation", [("subject:Group", "g1")])) == ["g-obs"]
    assert ids(repo.search("Observation", [("subject", "Group/g1")])) == ["g-obs"]
    assert sorted(ids(repo.search("Observation", [("code", f"{LOINC}|")]))) == ["g-obs", "p-obs"]
    assert ids(repo.search("Observation", [("code", "|local-1")])) == ["n-obs"]
    assert ids(repo.search("Observation", [("code", "local-1")])) == ["n-obs"]
    assert ids(repo.search("Observation", [("code", "|718-7")])) == []
    with pytest.raises(BadRequest, match="neither a system nor a code"):
        repo.search("Observation", [("code", "|")])


def test_narrowed_references_answer_as_before(repo: FhirRepository) -> None:
    """``patient`` (``subject`` of type Patient) is kept once, under ``subject``: every form of a
    ``patient`` search, its chain, ``_include``, ``_revinclude``, ``:missing`` and the Patient
    compartment answer as if it had rows of its own."""
    _seed(repo)
    repo.update(observation("g-obs", "x", "718-7", "2024-03-01", 1.0, subject={"reference": "Group/p1"}))
    other = "http://other.example/fhir/Patient/9"
    repo.update(observation("u-obs", "x", "718-7", "2024-03-01", 1.0, subject={"reference": other}))
    repo.update({"resourceType": "Provenance", "id": "prov2", "target": [{"reference": "Patient/p2"}],
                 "recorded": "2024-03-01T09:00:00Z", "agent": [{"who": {"reference": "Organization/org-a"}}]})
    assert sorted(ids(repo.search("Observation", [("patient", "p1")]))) == ["o1", "o2", "o3"]
    assert sorted(ids(repo.search("Observation", [("patient", "Patient/p1")]))) == ["o1", "o2", "o3"]
    assert sorted(ids(repo.search("Observation", [("patient:Patient", "p1")]))) == ["o1", "o2", "o3"]
    assert sorted(ids(repo.search("Observation", [("patient", "p1,p2"), ("code", "718-7")]))) == ["o1", "o2", "o4"]
    assert ids(repo.search("Observation", [("patient", other)])) == ["u-obs"]
    assert ids(repo.search("Observation", [("subject", "Group/p1")])) == ["g-obs"]
    assert sorted(ids(repo.search("Observation", [("patient:missing", "true")]))) == ["g-obs"]
    assert ids(repo.search("Observation", [("patient.identifier", f"{MRN}|0002")])) == ["o4"]
    assert ids(repo.search("Provenance", [("patient", "p2")])) == ["prov2"]
    assert ids(repo.search("Provenance", [("patient", "Patient/p2"), ("target", "Patient/p2")])) == ["prov2"]
    page = repo.search("Patient", [("_id", "p2"), ("_revinclude", "Observation:patient")])
    assert [r["id"] for r in page.included] == ["o4"]
    page = repo.search("Observation", [("_id", "o4"), ("_include", "Observation:patient")])
    assert [r["id"] for r in page.included] == ["p2"]
    assert sorted(r["id"] for r in repo.everything("p2").resources) == ["o4", "p2", "prov2"]


def test_compartment_membership_by_every_compartment_parameter(repo: FhirRepository) -> None:
    """In a Patient's compartment: the Patient itself, resources whose compartment
    parameters point at it (Observation.subject or .performer, Provenance.patient, Encounter.patient);
    not a Group that happens to share its id, nor another patient's resources."""
    repo.update(patient("p1"))
    repo.update(patient("p2", mrn="0002"))
    repo.update(patient("p3", mrn="0003"))
    repo.update(observation("o-sub", "p1", "718-7", "2024-03-01", 1.0))
    repo.update(observation("o-perf", "x", "718-7", "2024-03-01", 1.0, subject={"reference": "Group/g1"},
                            performer=[{"reference": "Patient/p1"}]))
    repo.update(observation("o-grp", "x", "718-7", "2024-03-01", 1.0, subject={"reference": "Group/p1"}))
    repo.update(observation("o-p3", "p3", "718-7", "2024-03-01", 1.0))
    repo.update({"resourceType": "Provenance", "id": "prov", "target": [{"reference": "Patient/p1"}],
                 "recorded": "2024-03-01T09:00:00Z", "agent": [{"who": {"reference": "Organization/org-a"}}]})
    repo.update({"resourceType": "Encounter", "id": "enc", "status": "finished", "subject": {"reference": "Patient/p1"},
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}})
    mine = frozenset({"p1"})

    def found(rtype: str | None, *pairs: tuple[str, str], comp: frozenset[str] = mine) -> list[str]:
        return sorted(r["id"] for r in repo.search(rtype, list(pairs), compartment=comp).resources)

    assert found("Observation") == ["o-perf", "o-sub"]
    assert found("Observation", ("code", "718-7")) == ["o-perf", "o-sub"]
    assert found("Patient") == ["p1"]
    assert found("Provenance") == ["prov"] and found("Encounter", ("status", "finished")) == ["enc"]
    assert found(None) == ["enc", "o-perf", "o-sub", "p1", "prov"]
    assert found(None, ("_type", "Observation,Patient")) == ["o-perf", "o-sub", "p1"]
    assert found(None, comp=frozenset({"p1", "p3"})) == ["enc", "o-p3", "o-perf", "o-sub", "p1", "p3", "prov"]
    assert found("Organization") == []  # a type outside the compartment


def test_the_deployment_list_decides_what_is_indexed_and_searchable(store: Store) -> None:
    """Only enabled parameters are indexed and searchable; :text only where enabled."""
    plain = FhirRepository(store, base_url=BASE)  # the shipped list: no :text, no Observation combo-*
    _seed(plain)
    with pytest.raises(BadRequest, match=":text modifier is not enabled for Observation.code"):
        plain.search("Observation", [("code:text", "血红")])
    with pytest.raises(BadRequest, match="unknown search parameter 'combo-code'"):
        plain.search("Observation", [("combo-code", "718-7")])
    with pytest.raises(BadRequest, match="Observation.code by system alone"):
        plain.search("Observation", [("code", f"{LOINC}|")])
    with pytest.raises(BadRequest, match="searching by system alone is not supported"):
        plain.search("Observation", [("subject:identifier", f"{MRN}|")])
    assert sorted(ids(plain.search("Observation", [("code", "718-7")]))) == ["o1", "o2", "o4"]
    assert sorted(ids(plain.search("Observation", [("code", f"{LOINC}|718-7")]))) == ["o1", "o2", "o4"]
    assert ids(plain.search("Observation", [("code", "|718-7")])) == []
    rows = plain.indexer.rows(plain.read("Observation", "o1"))
    assert not [r for r in rows.strings if r[0].endswith(":text")]
    assert not rows.systems  # no system| rows unless the list enables them
    assert TEXT_PARAMS.system_enabled("Observation", "code") and not plain.params.system_enabled("Observation", "code")
    assert not [r for r in rows.tokens if r[0].startswith("combo-")]
    everything = FhirRepository(store, base_url=BASE, params=SearchParams(definitions()))
    assert "combo-code" in everything.params.for_type("Observation")
    for wrong, message in (({"disabled": {"Observation": ["combo-cod"]}}, "has no parameter 'combo-cod'"),
                           ({"text": {"Observation": ["date"]}}, "not a token parameter"),
                           ({"system": {"Observation": ["subject"]}}, "system: Observation.subject is not a token"),
                           ({"enabled": {"Observaton": "*"}}, "not a supported resource type")):
        with pytest.raises(ValueError, match=message):
            SearchParams(definitions(), wrong)


def test_the_shipped_list_leaves_out_unsearched_references_but_keeps_includes_and_compartments(store: Store) -> None:
    """A lab result's performer and specimen are not indexed by the shipped list (a report's results
    are again since labelmark27): a search by them is a 400 naming them, an ``_include`` by them still brings the targets
    (it reads the matches themselves), and a Patient as performer still places the result in that
    Patient's compartment (R4's compartment is not the deployment's choice)."""
    shipped = FhirRepository(store, base_url=BASE)
    shipped.update(patient("p1"))
    shipped.update(patient("p9", mrn="0009"))
    shipped.update({"resourceType": "Organization", "id": "org-a", "name": "检验科"})
    shipped.update({"resourceType": "Specimen", "id": "s1", "subject": {"reference": "Patient/p1"}})
    shipped.update(observation("o1", "p1", "718-7", "2024-03-01", 140, specimen={"reference": "Specimen/s1"}))
    shipped.update(observation("o2", "p1", "718-7", "2024-03-02", 141, performer=[{"reference": "Patient/p9"}]))
    shipped.update({"resourceType": "DiagnosticReport", "id": "r1", "status": "final", "code": {"text": "CBC"},
                    "subject": {"reference": "Patient/p1"}, "result": [{"reference": "Observation/o1"}]})
    for rtype, param, value in (("Observation", "performer", "Organization/org-a"),
                                ("Observation", "specimen", "Specimen/s1")):
        with pytest.raises(BadRequest, match=f"unknown search parameter '{param}'"):
            shipped.search(rtype, [(param, value)])
    with pytest.raises(BadRequest, match="Observation:specimen"):
        shipped.search("Specimen", [("_revinclude", "Observation:specimen")])
    # a report's results are indexed since labelmark27 (a result's label rising finds its reports)
    assert ids(shipped.search("DiagnosticReport", [("result", "Observation/o1")])) == ["r1"]
    found = shipped.search("Observation", [("_id", "o1"), ("_include", "Observation:performer"),
                                           ("_include", "Observation:specimen")])
    assert sorted((r["resourceType"], r["id"]) for r in found.included) == [("Organization", "org-a"),
                                                                            ("Specimen", "s1")]
    report = shipped.search("DiagnosticReport", [("_include", "DiagnosticReport:result")])
    assert [r["id"] for r in report.included] == ["o1"]
    assert ids(shipped.search("Observation", [], compartment=frozenset({"p9"}))) == ["o2"]
    assert sorted(ids(shipped.search("Observation", [], compartment=frozenset({"p1"})))) == ["o1", "o2"]
    assert shipped.in_compartment(shipped.read("Observation", "o2"), ["p9"])
    assert not shipped.in_compartment(shipped.read("Observation", "o1"), ["p9"])


def test_the_index_follows_the_list_it_is_opened_with(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    """A parameter enabled after resources were stored finds them (the index is rebuilt from the
    stored bodies when a store is opened under another list), one left out again stops costing
    rows, and opening a store under the list it follows rebuilds nothing."""
    shipped = FhirRepository(store, base_url=BASE)
    shipped.update(patient("p1"))
    shipped.update({"resourceType": "Specimen", "id": "s1", "subject": {"reference": "Patient/p1"}})
    shipped.update(observation("o1", "p1", "718-7", "2024-03-01", 140, specimen={"reference": "Specimen/s1"}))
    with caplog.at_level("WARNING", logger="huren.repository"):
        FhirRepository(store, base_url=BASE)
    assert "rebuil" not in caplog.text
    wider = FhirRepository(store, base_url=BASE, params=TEXT_PARAMS)  # specimen, performer, result enabled
    assert "rebuil" in caplog.text
    assert ids(wider.search("Observation", [("specimen", "Specimen/s1")])) == ["o1"]
    assert ids(wider.search("Observation", [("performer", "Organization/org-a")])) == ["o1"]
    assert ids(wider.search("Observation", [("code", f"{LOINC}|")])) == ["o1"]  # system| rows, now enabled
    assert ids(wider.search("Observation", [("code:text", "hemo")])) == ["o1"]
    wider.update(observation("o2", "p1", "718-7", "2024-03-02", 141, specimen={"reference": "Specimen/s1"}))
    caplog.clear()
    again = FhirRepository(store, base_url=BASE)
    assert "rebuil" in caplog.text
    with pytest.raises(BadRequest, match="specimen"):
        again.search("Observation", [("specimen", "Specimen/s1")])
    assert sorted(ids(again.search("Observation", [("code", "718-7"), ("patient", "p1")]))) == ["o1", "o2"]
    assert sorted(ids(FhirRepository(store, base_url=BASE, params=TEXT_PARAMS).search(
        "Observation", [("specimen", "s1")]))) == ["o1", "o2"]


def test_a_parameter_that_repeats_another_is_answered_from_its_rows(repo: FhirRepository) -> None:
    """R4's Patient ``phonetic`` is ``Patient.name``, as ``name`` is: its rows are not written a
    second time, and every way of asking by it (value, ``:exact``, ``:missing``, ``_sort``, a
    chain) reads ``name``'s and answers the same."""
    repo.update(patient("p1", family="王", given="五"))
    repo.update(patient("p2", family="李", given="四", mrn="0002"))
    repo.update({"resourceType": "Patient", "id": "p3"})
    repo.update(observation("o1", "p2", "718-7", "2024-03-01", 140))
    rows = repo.indexer.rows(repo.read("Patient", "p1"))
    assert {r[0] for r in rows.strings} >= {"name"} and "phonetic" not in {r[0] for r in rows.strings}
    assert "phonetic" in repo.params.for_type("Patient")  # still searchable, still advertised
    for params in ([("phonetic", "王")], [("phonetic:exact", "王五")], [("phonetic:contains", "五")]):
        assert ids(repo.search("Patient", params)) == ids(repo.search("Patient", [("name" + params[0][0][8:],
                                                                                  params[0][1])])) == ["p1"]
    assert ids(repo.search("Patient", [("phonetic:missing", "true")])) == ["p3"]
    assert ids(repo.search("Patient", [("_sort", "phonetic"), ("phonetic:missing", "false")])) == ["p2", "p1"]
    assert ids(repo.search("Observation", [("subject:Patient.phonetic", "李")])) == ["o1"]


def test_search_dates_quantities_strings(repo: FhirRepository) -> None:
    _seed(repo)
    assert sorted(ids(repo.search("Observation", [("date", "2024-03")]))) == ["o1"]
    assert sorted(ids(repo.search("Observation", [("date", "ge2024-04-01")]))) == ["o2", "o3"]
    assert sorted(ids(repo.search("Observation", [("date", "lt2024-01-01")]))) == ["o4"]
    assert sorted(ids(repo.search("Observation", [("date", "gt2024"), ]))) == []
    assert sorted(ids(repo.search("Observation", [("date", "ge2024-01-01"), ("date", "le2024-04-30")]))) == [
        "o1", "o3"]
    assert sorted(ids(repo.search("Observation", [("date", "sa2024-04-01")]))) == ["o2"]
    assert sorted(ids(repo.search("Observation", [("date", "eb2024-01-01")]))) == ["o4"]
    assert sorted(ids(repo.search("Observation", [("date", "ne2024-03-01")]))) == ["o2", "o3", "o4"]
    assert sorted(ids(repo.search("Observation", [("date", "2024-03-01T00:00:00Z")]))) == ["o1"]
    assert ids(repo.search("Observation", [("value-quantity", "5.4")])) == ["o3"]
    assert ids(repo.search("Observation", [("value-quantity", "5.44")])) == []
    assert sorted(ids(repo.search("Observation", [("value-quantity", "gt120||g/L")]))) == ["o1", "o4"]
    assert sorted(ids(repo.search("Observation", [("value-quantity", "le110|http://unitsofmeasure.org|g/L")]))) == [
        "o2", "o3"]
    assert ids(repo.search("Patient", [("name", "李")])) == ["p2"]
    assert ids(repo.search("Patient", [("family:exact", "李")])) == ["p2"]
    assert ids(repo.search("Patient", [("name:contains", "三")])) == ["p1"]
    assert ids(repo.search("Organization", [("name", "阜宁")])) == ["org-a"]
    assert ids(repo.search("Patient", [("birthdate", "1960")])) == ["p1", "p2"]
    assert sorted(ids(repo.search("Observation", [("_lastUpdated", "ge2000-01-01")]))) == ["o1", "o2", "o3", "o4"]


def _encounter(eid: str, start: str | None = None, end: str | None = None) -> dict[str, Any]:
    period = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    return {"resourceType": "Encounter", "id": eid, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": "Patient/p1"}, "period": period}


def test_date_prefixes_over_periods_at_the_boundaries(repo: FhirRepository) -> None:
    """Every instant a Period covers is a candidate: ``le`` a day matches a Period starting that
    day, ``ge`` a day one ending that day; open ends reach to the far past / future; a dateTime
    search value is a range at its own precision (a minute is 60 s wide)."""
    repo.update(patient("p1"))
    repo.update(_encounter("starts-on", "2024-03-05", "2024-03-10"))  # [03-05, 03-11)
    repo.update(_encounter("ends-on", "2024-03-01", "2024-03-05"))  # [03-01, 03-06)
    repo.update(_encounter("open-end", "2024-03-05T10:00:00+08:00"))  # [03-05T02:00Z, ...)
    repo.update(_encounter("open-start", end="2024-03-04T23:59:59Z"))  # [..., 03-05T00:00Z)
    repo.update(_encounter("after", "2024-03-06", "2024-03-07"))  # [03-06, 03-08)
    repo.update(_encounter("within", "2024-03-05", "2024-03-05"))  # [03-05, 03-06)

    def found(*values: str) -> list[str]:
        return sorted(ids(repo.search("Encounter", [("date", v) for v in values])))

    assert found("le2024-03-05") == ["ends-on", "open-end", "open-start", "starts-on", "within"]
    assert found("ge2024-03-05") == ["after", "ends-on", "open-end", "starts-on", "within"]
    assert found("2024-03-05") == found("eq2024-03-05") == ["within"]
    assert found("ne2024-03-05") == ["after", "ends-on", "open-end", "open-start", "starts-on"]
    assert found("gt2024-03-05") == ["after", "open-end", "starts-on"]
    assert found("lt2024-03-05") == ["ends-on", "open-start"]
    assert found("sa2024-03-05") == ["after"]
    assert found("eb2024-03-05") == ["open-start"]
    # a day as a window: everything that overlaps 2024-03-06
    assert found("ge2024-03-06", "le2024-03-06") == ["after", "open-end", "starts-on"]
    # dateTime precision: the open-ended Period starts at 02:00Z, so le 01:59 (up to 02:00) misses it
    assert found("le2024-03-05T01:59Z") == ["ends-on", "open-start", "starts-on", "within"]
    assert found("le2024-03-05T02:00Z") == ["ends-on", "open-end", "open-start", "starts-on", "within"]
    assert found("le2024-03-05T10:00+08:00") == found("le2024-03-05T02:00Z")
    assert found("ge2024-03-05T02:00:00Z") == ["after", "ends-on", "open-end", "starts-on", "within"]
    assert found("ge2024-03-05T00:00:00Z") == found("ge2024-03-05T02:00:00Z")
    assert found("lt2024-03-05T00:00:01Z") == ["ends-on", "open-start", "starts-on", "within"]
    assert found("gt2024-03-10T23:59:59Z") == ["open-end"]
    assert found("ge2024-03-11") == ["open-end"]  # starts-on ends when 03-10 ends
    assert found("le2024-03-04") == ["ends-on", "open-start"]
    # a month's charges (a settlement period): lines whose service overlaps March, at either edge
    for cid, occurrence in (("feb-to-mar", {"occurrencePeriod": {"start": "2024-02-28", "end": "2024-03-01"}}),
                            ("last-day", {"occurrenceDateTime": "2024-03-31T23:30:00+08:00"}),
                            ("april", {"occurrencePeriod": {"start": "2024-04-01"}})):
        repo.update({"resourceType": "ChargeItem", "id": cid, "status": "billable",
                     "code": {"text": "血常规"}, "subject": {"reference": "Patient/p1"}, **occurrence})
    march = repo.search("ChargeItem", [("occurrence", "ge2024-03-01"), ("occurrence", "le2024-03-31")])
    assert sorted(ids(march)) == ["feb-to-mar", "last-day"]


def test_sqlite_date_prefixes_are_range_scans(settings: Any) -> None:
    """Each date prefix is one range on one indexed column: no OR that makes SQLite scan."""
    from engine.repository import open_store

    store = open_store(settings)
    repo = FhirRepository(store, base_url=BASE)
    repo.update(_encounter("e1", "2024-03-05", "2024-03-10"))
    backend = repo.backend
    for prefix, index in (("le", "PRIMARY KEY"), ("lt", "PRIMARY KEY"), ("sa", "PRIMARY KEY"),
                          ("eq", "PRIMARY KEY"), ("ge", "INDEX ix_date_end"), ("gt", "INDEX ix_date_end"),
                          ("eb", "INDEX ix_date_end")):
        query = repo.parser.parse("Encounter", [("date", f"{prefix}2024-03-05")]).query
        sql, params = backend._sql(query, "r.id")
        plan = " ".join(str(row[-1]) for row in store.query("EXPLAIN QUERY PLAN " + sql, params))
        assert f"{index} (hp=? AND " in plan and "SCAN x" not in plan, (prefix, plan)
    # a date beside a more selective clause is checked on the resource row's own ranges, not by a
    # scan of the lookup-keyed table
    query = repo.parser.parse("Encounter", [("_id", "e1"), ("date", "ge2024-03-05")]).query
    sql, params = backend._sql(query, "r.id")
    plan = " ".join(str(row[-1]) for row in store.query("EXPLAIN QUERY PLAN " + sql, params))
    assert "ix_date" not in plan and "VIRTUAL TABLE" in plan, plan
    assert [row[0] for row in store.query(sql, params)] == ["e1"]
    store.close()


def test_sort_paging_summary_elements_includes(repo: FhirRepository) -> None:
    _seed(repo)
    latest = repo.search("Observation", [("subject", "Patient/p1"), ("code", f"{LOINC}|718-7"), ("_sort", "-date"),
                                         ("_count", "1")])
    assert ids(latest) == ["o2"] and latest.total == 2 and latest.has_next
    assert ids(repo.search("Observation", [("_sort", "date")])) == ["o4", "o1", "o3", "o2"]
    pages = [ids(repo.search("Observation", [("_sort", "-date"), ("_count", "3"), ("_offset", str(o))]))
             for o in (0, 3)]
    assert pages == [["o2", "o3", "o1"], ["o4"]]
    bundle = repo.search("Observation", [("_count", "2")]).bundle(BASE, "Observation", [("_count", "2")])
    assert bundle["total"] == 4 and {ln["relation"] for ln in bundle["link"]} == {"self", "next"}
    assert "_offset=2" in next(ln["url"] for ln in bundle["link"] if ln["relation"] == "next")
    counted = repo.search("Observation", [("subject", "p1"), ("_summary", "count")])
    assert counted.total == 3 and counted.resources == []
    elements = repo.search("Observation", [("_id", "o1"), ("_elements", "status")]).resources[0]
    assert set(elements) == {"resourceType", "id", "meta", "status"}
    assert elements["meta"]["tag"][-1]["code"] == "SUBSETTED"
    inc = repo.search("Observation", [("_id", "o1"), ("_include", "Observation:subject"),
                                      ("_include", "Observation:performer"), ("_revinclude", "Provenance:target")])
    assert sorted((r["resourceType"], r["id"]) for r in inc.included) == [
        ("Organization", "org-a"), ("Patient", "p1"), ("Provenance", "prov1")]
    for bad in ([("nonsense", "1")], [("date", "yesterday")], [("_count", "-1")], [("code:below", "x")],
                [("_sort", "nope")], [("_include", "Observation:status")], [("value-quantity", "ap5")],
                [("subject.name.family", "x")]):
        with pytest.raises(BadRequest):
            repo.search("Observation", bad)


def test_compartments_and_everything(repo: FhirRepository) -> None:
    _seed(repo)
    mine = frozenset({"p1"})
    assert sorted(ids(repo.search("Observation", [], compartment=mine))) == ["o1", "o2", "o3"]
    assert ids(repo.search("Observation", [("code", "718-7"), ("subject", "p2")], compartment=mine)) == []
    assert ids(repo.search("Patient", [], compartment=mine)) == ["p1"]
    inc = repo.search("Observation", [("_id", "o1"), ("_include", "Observation:performer")], compartment=mine)
    assert inc.included == []  # the Organization is outside the compartment
    assert repo.in_compartment(repo.read("Observation", "o4"), {"p2"})
    assert not repo.in_compartment(repo.read("Observation", "o4"), {"p1"})
    assert repo.in_compartment(repo.read("Provenance", "prov1"), {"p1"}) is False  # target is not a Patient
    everything = repo.everything("p1")
    assert sorted((r["resourceType"], r["id"]) for r in everything.resources) == [
        ("Observation", "o1"), ("Observation", "o2"), ("Observation", "o3"), ("Patient", "p1")]
    assert ids(repo.everything("p1", [("_type", "Patient")])) == ["p1"]
    # "and any resource referenced by these": the performing Organization comes once, as an
    # include entry; resources of another patient never do, nor what is already an entry
    repo.update({"resourceType": "Medication", "id": "m1", "code": {"text": "阿莫西林胶囊"}})
    repo.update({"resourceType": "MedicationRequest", "id": "mr1", "status": "active", "intent": "order",
                 "subject": {"reference": "Patient/p1"}, "medicationReference": {"reference": "Medication/m1"},
                 "requester": {"reference": "Patient/p2"}})
    everything = repo.everything("p1")
    assert sorted((r["resourceType"], r["id"]) for r in everything.included) == [
        ("Medication", "m1"), ("Organization", "org-a"), ("Patient", "p2")]
    assert ids(repo.everything("p1", compartment=mine)) == ids(everything)
    page = repo.everything("p1", [("_type", "Observation"), ("_count", "1")])
    assert [(r["resourceType"], r["id"]) for r in page.included] == [("Organization", "org-a")]
    with pytest.raises(NotFound):
        repo.everything("p2", compartment=mine)
    with pytest.raises(NotFound):
        repo.everything("nobody")


def test_transaction_rewrites_urn_uuid_and_is_atomic(repo: FhirRepository) -> None:
    pid = deterministic_id("FNXRMYY", "Patient", "0001")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6a9f1c1e-0000-4000-8000-000000000001",
         "resource": observation("tmp", "placeholder", "718-7", "2024-03-01", 120)
         | {"subject": {"reference": f"urn:uuid:{pid}"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": f"urn:uuid:{pid}", "resource": patient(pid),
         "request": {"method": "PUT", "url": f"Patient/{pid}"}},
        {"resource": {"resourceType": "Provenance", "recorded": "2024-03-01T09:00:00Z",
                      "target": [{"reference": "urn:uuid:6a9f1c1e-0000-4000-8000-000000000001"}],
                      "agent": [{"who": {"reference": "Organization/org-a"}}]},
         "request": {"method": "POST", "url": "Provenance"}},
    ]}
    response = repo.transaction(bundle)
    assert response["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert statuses == ["201 Created", "201 Created", "201 Created"]
    obs_id = response["entry"][0]["response"]["location"].split("/")[1]
    obs = repo.read("Observation", obs_id)
    assert obs["subject"]["reference"] == f"Patient/{pid}"
    prov = repo.search("Provenance", [("target", f"Observation/{obs_id}")])
    assert prov.total == 1
    again = repo.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [bundle["entry"][1]]})
    assert again["entry"][0]["response"]["status"] == "200 OK"
    assert repo.read("Patient", pid)["meta"]["versionId"] == "1"

    failing = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient("p-new"), "request": {"method": "PUT", "url": "Patient/p-new"}},
        {"resource": patient("p-other"), "request": {"method": "PUT", "url": "Patient/p-other", "ifMatch": 'W/"5"'}},
    ]}
    with pytest.raises(PreconditionFailed, match=r"entry\[1\]"):
        repo.transaction(failing)
    with pytest.raises(NotFound):
        repo.read("Patient", "p-new")
    with pytest.raises(BadRequest):
        repo.transaction({"resourceType": "Bundle", "type": "batch", "entry": []})
    # a transaction fails whole: 400 not-supported (a 405 on ``POST /fhir`` would refuse the
    # endpoint's POST, with no Allow: labelsmend19); a batch entry keeps its own 405
    with pytest.raises(FhirError) as refused:
        repo.transaction({"resourceType": "Bundle", "type": "transaction",
                          "entry": [{"resource": patient("x"), "request": {"method": "PATCH", "url": "Patient/x"}}]})
    assert refused.value.status == 400 and refused.value.code == "not-supported"


def test_batch_reports_each_entry(repo: FhirRepository) -> None:
    repo.update(patient("p1"))
    response = repo.batch({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/p1"}},
        {"request": {"method": "GET", "url": "Patient/nobody"}},
        {"resource": patient("p2", mrn="0002"), "request": {"method": "PUT", "url": "Patient/p2"}},
        {"request": {"method": "GET", "url": f"Patient?identifier={MRN}|0002"}},
        {"request": {"method": "DELETE", "url": "Patient/p1"}},
    ]})
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert statuses == ["200 OK", "404 Not Found", "201 Created", "200 OK", "204 No Content"]
    assert response["entry"][1]["response"]["outcome"]["issue"][0]["code"] == "not-found"
    assert response["entry"][3]["resource"]["total"] == 1
    with pytest.raises(Gone):
        repo.read("Patient", "p1")


def test_deterministic_ids() -> None:
    a = deterministic_id("FNXRMYY", "Patient", "0001")
    assert a == deterministic_id("fnxrmyy ", "Patient", "0001")
    assert a != deterministic_id("FNZYY", "Patient", "0001")
    assert a != deterministic_id("FNXRMYY", "Encounter", "0001")
    assert len(a) == 36
    with pytest.raises(ValueError):
        deterministic_id("", "Patient", "1")


def test_hooks_in_a_transaction_run_after_the_group_is_stored(repo: FhirRepository) -> None:
    seen_patient: list[bool] = []

    def hook(resource: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        if resource["resourceType"] != "Observation":
            return []
        pid = resource["subject"]["reference"].split("/")[1]
        seen_patient.append(repo.search("Patient", [("_id", pid)]).total == 1)
        repo.update({"resourceType": "Flag", "id": "f-" + resource["id"], "status": "active",
                     "code": {"text": "checked"}, "subject": resource["subject"]})
        return [{"severity": "warning", "code": "business-rule", "diagnostics": f"checked {resource['id']}"}]

    repo.add_write_hook(hook)
    response = repo.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation("o1", "p1", "718-7", "2024-03-01", 130),
         "request": {"method": "PUT", "url": "Observation/o1"}},
        {"resource": patient("p1"), "request": {"method": "PUT", "url": "Patient/p1"}},
    ]})
    assert seen_patient == [True]  # the Patient of the same Bundle was stored when the hook ran
    assert response["entry"][0]["response"]["outcome"]["issue"][0]["diagnostics"] == "checked o1"
    assert "outcome" not in response["entry"][1]["response"]
    assert repo.read("Flag", "f-o1")["status"] == "active"
    results = repo.write_many([observation("o2", "p1", "718-7", "2024-03-02", 131)])
    assert results[0].issues[0]["diagnostics"] == "checked o2"


def test_hook_reads_see_writes_made_by_hooks_of_the_same_group(repo: FhirRepository) -> None:
    """Hook reads are cached for a group's hook phase; a write by a hook must not leave them stale."""
    repo.update(patient("p1", family="旧"))
    seen: list[str] = []

    def hook(resource: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        if resource["resourceType"] != "Observation":
            return []
        try:
            seen.append(repo.read("Patient", "p1")["name"][0]["family"])
        except Gone:
            seen.append("gone")
        if resource["id"] == "o2":
            repo.update(patient("p1", family="新"))
        if resource["id"] == "o4":
            repo.delete("Patient", "p1")
        return []

    repo.add_write_hook(hook)
    repo.write_many([observation(f"o{n}", "p1", "718-7", f"2024-03-0{n}", 130 + n) for n in range(1, 6)])
    assert seen == ["旧", "旧", "新", "新", "gone"]
