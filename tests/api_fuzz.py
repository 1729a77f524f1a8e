"""schemathesis against the real app's ``/openapi.json``: no route answers a 5xx, whatever it is sent.
(What ``test_api_fuzz.py`` and ``test_api_fuzz_more.py`` share: each runs its own route groups, below.)

Every operation in the OpenAPI document is exercised with generated requests (bounded: a few
examples per operation, so the whole run stays well under a minute). The generic FHIR routes
(``/fhir/{rtype}/...``) say little in OpenAPI (the body is any FHIR resource, search parameters
are not declared), so before loading, the document is made FHIR-aware: ``rtype`` is drawn from the
R4 resource types (plus a non-type), ids from the R4 id shape and the ids seeded here, versions
as digit strings of any length, searches get the common parameters with plausible and hostile
values, and create/update get a JSON resource body. Requests carry real bearer tokens: a system
client's, and an auditor's for the audit and report routes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
import schemathesis.specs.openapi.schemas  # noqa: F401 -- imported here, see below
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from conformance.validate import Validator
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings

# from_dict imports schemathesis' OpenAPI modules on first use, and pytest rewrote a plugin's modules
# (ast.parse) as they were imported. Inside the fixture that ran while the engine's threads were
# compiling modules of their own, and on a fresh clone (nothing cached yet) CPython 3.11's
# per-interpreter AST depth counter was corrupted: "SystemError: AST constructor recursion depth
# mismatch". They are imported here, with this module, before the fixture starts its engine; and since
# the forty-sixth round (suite46d) pytest loads no plugin it is not named (pyproject's addopts), so it
# marks none of schemathesis' modules for rewriting: they import as any library does. This module is
# imported by the two test files' fixture and tests (not at their collection), in the worker running them.

SEEDED = ["pat-1", "obs-1", "org-1"]
ID = {"type": "string", "pattern": r"^[A-Za-z0-9\-.]{1,64}$"}
TEXT = {"type": "string", "maxLength": 40}
# digit strings, and the hostile ones a generator rarely reaches on its own (64-bit overflow)
NUMBER_TEXT = {"anyOf": [{"type": "string", "pattern": r"^-?[0-9]{1,30}$"},
                         {"enum": ["393604153575934072455168", "9223372036854775808", "-1", "0", "2147483648"]}]}
PAIRS = [("Patient", "pat-1"), ("Observation", "obs-1"), ("Organization", "org-1")]
SEARCH = {
    "_id": ID, "_count": NUMBER_TEXT, "_offset": NUMBER_TEXT, "_summary": {"enum": ["count", "true", "false", "x"]},
    "_sort": {"enum": ["_id", "-_lastUpdated", "date", "nope"]}, "_lastUpdated": {"enum": ["ge2020-01-01", "lt2030",
                                                                                           "2020-13-45", "x"]},
    "_include": {"enum": ["Observation:subject", "Observation:performer", "*", "x:y"]},
    "_revinclude": {"enum": ["Observation:subject", "AuditEvent:patient", "x"]},
    "_elements": TEXT, "patient": {"enum": ["Patient/pat-1", "pat-1", "Patient/", ""]},
    "subject": TEXT, "code": {"enum": ["http://loinc.org|718-7", "718-7", "|", "a,b"]}, "identifier": TEXT,
    "date": {"enum": ["ge2026-01-01", "2026", "eq2026-02-30", "le", "ap2026-01-01T00:00:00Z"]},
    "value-quantity": {"enum": ["gt5.4|http://unitsofmeasure.org|mg", "1e999", "NaN", "5"]},
    "subject:Patient.name": TEXT, "_has:Observation:subject:code": TEXT,
}


# bounded: 45 operations x 2 modes x 6 examples (~400 requests) take ~40 s on a loaded 2-core machine
EXAMPLES = settings(max_examples=6, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def fhir_aware(doc: dict[str, Any], resource_types: list[str]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    rtype = {"type": "string", "enum": [*resource_types, "NotAType"]}
    rid = {"anyOf": [{"type": "string", "enum": SEEDED}, ID]}
    resource = {"type": "object", "required": ["resourceType"], "properties": {
        "resourceType": rtype, "id": rid, "status": {"enum": ["final", "active", "bogus"]},
        "subject": {"type": "object", "properties": {"reference": {"enum": ["Patient/pat-1", "Organization/org-1",
                                                                            "Patient/no such", "#x"]}}},
        "code": {"type": "object", "properties": {"text": TEXT}},
        "effectiveDateTime": {"enum": ["2026-03-01T08:00:00+08:00", "2026-02-30", "x"]},
        "valueQuantity": {"type": "object", "properties": {"value": {"type": "number"}, "unit": TEXT}},
        "name": {"type": "array", "items": {"type": "object", "properties": {"text": TEXT}}},
        "meta": {"type": "object"}, "extension": {"type": "array", "items": {"type": "object"}},
    }}
    entry = {"type": "object", "properties": {
        "fullUrl": {"enum": ["urn:uuid:0b2c2a55-8c1a-4a3e-9d5e-2f1d2c3b4a5e", "x"]}, "resource": resource,
        "request": {"type": "object", "properties": {"method": {"enum": ["GET", "POST", "PUT", "DELETE", "PATCH"]},
                                                     "url": {"enum": ["Patient/pat-1", "Observation", "Patient?_id=pat-1",
                                                                      "Observation/obs-1/_history/99999999999999999999",
                                                                      "", "NotAType/1"]}}}}}
    bundle = {"type": "object", "required": ["resourceType"], "properties": {
        "resourceType": {"enum": ["Bundle", "Patient"]}, "type": {"enum": ["transaction", "batch", "collection", "x"]},
        "entry": {"type": "array", "items": entry, "maxItems": 4}}}
    parameters = {"type": "object", "required": ["resourceType"], "properties": {
        "resourceType": {"enum": ["Parameters", "Patient"]},
        "parameter": {"type": "array", "maxItems": 3, "items": {"type": "object", "properties": {
            "name": {"enum": ["resource", "count", "onlyCertainMatches", "source", "target", "x"]},
            "resource": resource, "valueInteger": {"type": "integer"}, "valueBoolean": {"type": "boolean"},
            "valueReference": {"type": "object", "properties": {"reference": {"enum": ["Patient/pat-1", "x"]}}}}}}}}
    search_form = {"type": "object", "properties": {k: v for k, v in SEARCH.items() if "type" in v or "enum" in v}}
    token_form = {"type": "object", "properties": {
        "grant_type": {"enum": ["refresh_token", "authorization_code", "client_credentials", "password"]},
        "refresh_token": TEXT, "code": TEXT, "code_verifier": TEXT, "client_id": {"enum": ["huren-me", "x"]},
        "scope": {"enum": ["system/*.rs", "patient/*.rs", "x"]}, "redirect_uri": TEXT}}
    bodies = {
        ("/fhir/{rtype}", "post"): ("application/json", resource),
        ("/fhir/{rtype}/{rid}", "put"): ("application/json", resource),
        ("/fhir", "post"): ("application/json", bundle), ("/fhir/", "post"): ("application/json", bundle),
        ("/fhir/Patient/$match", "post"): ("application/json", parameters),
        ("/fhir/Patient/$link", "post"): ("application/json", parameters),
        ("/fhir/Patient/$unlink", "post"): ("application/json", parameters),
        ("/fhir/ServiceRequest/$check-recognition", "post"): ("application/json", parameters),
        ("/fhir/{rtype}/_search", "post"): ("application/x-www-form-urlencoded", search_form),
        ("/auth/token", "post"): ("application/x-www-form-urlencoded", token_form),
        ("/auth/revoke", "post"): ("application/x-www-form-urlencoded", token_form),
    }
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                if param["in"] == "path" and param["name"] == "rtype":
                    param["schema"] = rtype
                elif param["in"] == "path" and param["name"] == "rid":
                    param["schema"] = rid
                elif param["in"] == "path" and param["name"] == "vid":
                    param["schema"] = NUMBER_TEXT
            if path == "/fhir/{rtype}" and method == "get":
                op.setdefault("parameters", []).extend(
                    {"name": name, "in": "query", "required": False, "schema": schema} for name, schema in SEARCH.items())
            body = bodies.get((path, method))
            if body is not None:
                media, body_schema = body
                op["requestBody"] = {"required": True, "content": {media: {"schema": body_schema}}}
    return doc


HOSTILE_NUMBERS = ["393604153575934072455168", "9223372036854775808", "18675331157364503893045141475164160"]
NUMERIC = {"_count", "_offset", "since", "limit", "leaf", "size", "first", "second", "vid"}


def fhir_cases(operation: Any, mode: GenerationMode) -> st.SearchStrategy[Any]:
    """Cases for ``operation``, steered where blind generation rarely goes.

    On routes with a resource id, three times in four the (type, id) is one that exists, so reads,
    versions, history and updates reach the store rather than stopping at a 404; one time in four an
    integer parameter (offsets, counts, sequence numbers, versions) is a number past 64 bits.
    """
    base = operation.as_strategy(generation_mode=mode)
    numeric = [p.name for p in operation.iter_parameters() if p.name in NUMERIC]
    if "{rid}" not in operation.path and not numeric:
        return base

    def steer(drawn: tuple[Any, tuple[str, str], int, int, str]) -> Any:
        case, (rtype, rid), dice, which, huge = drawn
        path = dict(case.path_parameters or {})
        if "{rid}" in operation.path and dice:
            path.update({"rtype": rtype, "rid": rid} if "{rtype}" in operation.path else {"rid": "pat-1"})
        if numeric and dice == 0:
            name = numeric[which % len(numeric)]
            if name in path or "{" + name + "}" in operation.path:
                path[name] = huge
            else:
                case.query = {**(case.query or {}), name: huge}
        if path:
            case.path_parameters = path
        return case

    return st.tuples(base, st.sampled_from(PAIRS), st.integers(0, 3), st.integers(0, 7),
                     st.sampled_from(HOSTILE_NUMBERS)).map(steer)


def nothing_to_violate(operation: Any) -> bool:
    """No request of ``operation`` can break its schema: no body, and only path parameters that take any
    string (``{"type": "string"}``, a title at most). Their only violations are non-strings, which cannot be
    put in a path, so schemathesis' negative mode draws and throws away ~1 s of cases each and sends none
    (``Unsatisfiable``, as for an operation without parameters); skipped instead (twenty-eighth round,
    suitecut28: five operations, ~5 s of this test's ~22 s of CPU). Their positive cases still run."""
    if list(operation.body):
        return False
    return all(p.location == "path" and (p.definition or {}).get("schema", {}).get("type") == "string"
               and set(p.definition["schema"]) <= {"type", "title", "description"}
               for p in operation.iter_parameters())


def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str], dict[str, str]]]:
    """The app over a seeded engine, its FHIR-aware OpenAPI document loaded, and the two tokens (a module
    fixture in each test file: one engine per file)."""
    settings_ = Settings(data_dir=tmp_path_factory.mktemp("fuzz") / "var", http_port=0, mllp_port=0)
    with Engine(settings_) as engine:
        app = create_app(engine)
        system = {"Authorization": "Bearer " + engine.auth.issue_system_token("fuzz-system", "system/*.cruds")}
        auditor = {"Authorization": "Bearer " + engine.auth.issue_system_token(
            "fuzz-auditor", "system/AuditEvent.rs system/DetectedIssue.rs system/Observation.rs", kind="auditor")}
        with TestClient(app) as http:
            seed = [{"resourceType": "Organization", "id": "org-1", "name": "县人民医院"},
                    {"resourceType": "Patient", "id": "pat-1", "name": [{"text": "张三"}]},
                    {"resourceType": "Observation", "id": "obs-1", "status": "final", "code": {"text": "Hb"},
                     "subject": {"reference": "Patient/pat-1"}, "effectiveDateTime": "2026-03-01T08:00:00+08:00",
                     "performer": [{"reference": "Organization/org-1"}], "valueQuantity": {"value": 135, "unit": "g/L"}}]
            for r in seed:
                assert http.put(f"/fhir/{r['resourceType']}/{r['id']}", json=r, headers=system).status_code in (200, 201)
            doc = http.get("/openapi.json").json()
        loaded = schemathesis.openapi.from_dict(fhir_aware(doc, sorted(Validator().r4.resource_types)))
        loaded.app = app
        yield loaded, system, auditor


# The route groups (by path), one or two per test function, two test files: under ``--dist loadfile`` the
# one test of ~17 s (the suite's longest) ran in one worker; split, two workers share it. Each operation
# is in exactly one group (``test_api_fuzz.py::test_the_groups_cover_every_operation``) and gets the same
# requests as before (derandomized: the seed is the digest of the ``given`` line, unchanged).
GROUPS: dict[str, Callable[[str], bool]] = {
    "fhir-resource": lambda path: path.startswith("/fhir/{rtype}"),
    "fhir-other": lambda path: path.startswith("/fhir") and not path.startswith("/fhir/{rtype}"),
    "other": lambda path: not path.startswith("/fhir"),
}


def group_of(path: str) -> str:
    [name] = [name for name, member in GROUPS.items() if member(path)]
    return name


def operations_of(loaded: Any) -> list[Any]:
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) > 40
    return operations


def no_route_answers_5xx(api: tuple[Any, dict[str, str], dict[str, str]], groups: set[str]) -> None:
    """Valid-per-schema (positive) and schema-violating (negative) requests to every operation of ``groups``."""
    loaded, system, auditor = api
    failures: list[str] = []
    operations = [op for op in operations_of(loaded) if group_of(op.path) in groups]
    assert operations, groups

    def check(case: Any) -> None:
        headers = auditor if case.path.startswith(("/audit", "/reports")) else system
        response = case.call(headers={**headers, **(case.headers or {})})
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} query={case.query} body={str(case.body)[:120]} "
                            f"-> {response.status_code} {response.text[:200]}")
        elif case.path.startswith("/fhir") and response.status_code >= 400 and case.method.upper() != "HEAD":  # no body (RFC 9110)
            assert response.json()["resourceType"] == "OperationOutcome", (case.formatted_path, response.text[:200])

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and nothing_to_violate(operation):
                continue
            try:
                strategy = fhir_cases(operation, mode)
            except Exception:  # noqa: BLE001 - an operation with nothing to violate has no negative strategy
                continue
            try:
                EXAMPLES(given(case=strategy)(lambda case: check(case)))()
            except Unsatisfiable:  # nothing in this operation can be made invalid (no parameters)
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert not failures, "\n".join(failures[:20])

