"""``GET /fhir/metadata``: the CapabilityStatement, public (R4 §3.1.0.8: a server SHALL serve it, and
clients read it before they have a token, e.g. to find the OAuth endpoints).

The statement is generated from what the running application registers: resource types and search
parameters from the FHIR repository's registry, operations from the routes mounted on the app
(``/fhir/Patient/{id}/$everything`` -> ``$everything`` on Patient), OAuth endpoints (``/auth/token``,
``/auth/authorize``, ``/auth/introspect``, ``/auth/revoke``) from the auth routes present. It is built on the first request (when every router is mounted) and then served
as stored bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from conformance.capability import (
    EVERYTHING,
    Operation,
    build_capability_statement,
    check_recognition,
    smart_security,
)
from engine.api.formats import require_json, require_json_accept
from engine.api.outcomes import FHIR_JSON
from engine.settings import Settings

router = APIRouter(tags=["fhir"])

# (type, name) of the R4 core OperationDefinitions huren might mount (http://hl7.org/fhir/operationslist.html)
R4_CORE_OPERATIONS = {
    ("Patient", "everything"), ("Patient", "match"), ("Encounter", "everything"), ("Observation", "lastn"),
    ("Observation", "stats"), ("Composition", "document"), ("ValueSet", "expand"), ("CodeSystem", "lookup"),
}

@router.get("/fhir/metadata", summary="CapabilityStatement (no authentication)")
def capability_statement(request: Request, _format: str | None = None) -> Response:
    require_json(_format)
    require_json_accept(request)
    try:  # by key, as ``engine.auth.deps.engine_of``: ``getattr(state, ...)`` drops an AttributeError each call
        body = request.app.state["capability_statement"]
    except KeyError:  # the first request only
        body = orjson.dumps(statement_for(request.app))
        request.app.state["capability_statement"] = body
    return Response(body, media_type=FHIR_JSON, headers={"Cache-Control": "public, max-age=300",
                                                                "Vary": "Accept, Accept-Charset"})


def statement_for(app: FastAPI) -> dict[str, Any]:
    settings: Settings = app.state["engine"].settings  # by key, as engine.auth.deps.engine_of
    params = registered_search_params()
    paths = mounted_paths(app)
    return build_capability_statement(
        settings,
        params,
        resource_types=params.keys(),
        extra_operations=operations_from_routes(paths, settings),
        security={name: url for name, url in smart_security(settings).items()
                  if url.removeprefix(settings.public_base_url) in paths},
        includes=registered_includes(),
    )


def mounted_paths(app: FastAPI) -> list[str]:
    """Every path the app serves, read from its OpenAPI document (FastAPI's public view of the
    routes, prefixes of included routers applied); routes hidden from the schema are not seen."""
    return [*app.openapi().get("paths", {}), *(p for r in app.routes if (p := getattr(r, "path", None)))]


def registered_search_params() -> Mapping[str, Iterable[Any]]:
    """Resource type -> search parameters, from the FHIR repository's registry."""
    try:
        from engine.repository.searchparams import supported
    except ImportError:  # the FHIR repository is not part of this build: nothing is registered
        return {}
    return supported()


def registered_includes() -> Mapping[str, Iterable[str]] | None:
    """Resource type -> what its ``_include`` accepts, from the FHIR repository's registry."""
    try:
        from engine.repository.searchparams import includable
    except ImportError:  # the FHIR repository is not part of this build
        return None
    return includable()


def operations_from_routes(paths: Iterable[str], settings: Settings) -> list[Operation]:
    """Operations mounted under /fhir, with their definitions when huren knows them."""
    known = {(op.resource_type, op.name): op for op in (EVERYTHING, check_recognition(settings))}
    found: dict[tuple[str, str], Operation] = {}
    for path in paths:
        parts = [p for p in path.split("/") if p]
        if len(parts) < 3 or parts[0] != "fhir" or not parts[-1].startswith("$") or parts[1].startswith("{"):
            continue
        key = (parts[1], parts[-1][1:])
        # an operation of the R4 specification keeps its HL7 definition; huren's own are canonical here
        base = "http://hl7.org/fhir" if key in R4_CORE_OPERATIONS else settings.fhir_base_url
        found[key] = known.get(key) or Operation(key[0], key[1], f"{base}/OperationDefinition/{key[0]}-{key[1]}")
    return list(found.values())
