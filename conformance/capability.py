"""The R4 CapabilityStatement huren serves at ``GET /fhir/metadata``, generated from what is registered.

Nothing here is a hand-written list of claims: the resource types, their search parameters (and so
the ``_include``/``_revinclude`` values), the operations and the OAuth endpoints all come from the
arguments, which the metadata router fills from the running engine. A client (fhirpy,
fhirclient, a SMART app) can therefore trust the statement to describe this deployment.

Search parameters may be given as mappings or objects with the fields of an R4 ``SearchParameter``
that matter here: ``name`` (or ``code``), ``type``, ``url`` (or ``definition``), optionally
``target`` (resource types a reference parameter can point at) and ``documentation``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from engine.settings import Settings

FHIR_VERSION = "4.0.1"
FORMATS = ["application/fhir+json", "json"]
SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"

# What the FHIR repository implements for every resource type it registers (issue 2 "Repository"):
# read/vread/history, search, create and update (upsert at a given id), delete (410 afterwards).
DEFAULT_INTERACTIONS = ("read", "vread", "update", "delete", "history-instance", "create", "search-type")
SYSTEM_INTERACTIONS = ("transaction", "batch")
RESOURCE_POLICY: dict[str, Any] = {
    "versioning": "versioned-update",  # ETag W/"n"; If-Match -> 412 on mismatch
    "readHistory": True,
    "conditionalRead": "full-support",  # If-None-Match / If-Modified-Since -> 304 (engine.api.fhir)
    "updateCreate": True,  # PUT at a new id creates (deterministic ids for converted HL7 data)
    "conditionalCreate": True,  # If-None-Exist, and POST Type?search
    "conditionalUpdate": True,
    "conditionalDelete": "not-supported",
    "referencePolicy": ["literal", "local"],
}


@dataclass(frozen=True)
class Operation:
    """An operation huren implements, as it appears in ``rest.resource.operation``."""

    resource_type: str
    name: str  # without the "$"
    definition: str  # canonical URL of its OperationDefinition
    documentation: str = ""


EVERYTHING = Operation(
    "Patient",
    "everything",
    "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    "Everything in the patient's compartment, across every member institution's records of the resident.",
)


def check_recognition(settings: Settings) -> Operation:
    """huren's own order-time check; its OperationDefinition is canonical under this server's base."""
    return Operation(
        "ServiceRequest",
        "check-recognition",
        f"{settings.fhir_base_url}/OperationDefinition/ServiceRequest-check-recognition",
        "Given an order (a ServiceRequest), the prior results of the same resident that are recognisable "
        "under the mutual-recognition rules (检查检验结果互认), recorded as a DetectedIssue.",
    )


def smart_security(settings: Settings) -> dict[str, str]:
    """The OAuth2 endpoints of the auth router (``/auth/...``), as SMART ``oauth-uris`` names them."""
    base = settings.public_base_url + "/auth"
    return {
        "token": f"{base}/token",
        "authorize": f"{base}/authorize",
        "introspect": f"{base}/introspect",
        "revoke": f"{base}/revoke",
    }


def software_version() -> str:
    try:
        return metadata.version("huren")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


def build_capability_statement(
    settings: Settings,
    search_params: Mapping[str, Iterable[Any]],
    resource_types: Iterable[str],
    extra_operations: Iterable[Operation],
    security: Mapping[str, str],
    *,
    interactions: Iterable[str] = DEFAULT_INTERACTIONS,
    date: datetime | None = None,
    includes: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, Any]:
    """An R4 CapabilityStatement (``kind: instance``) for this deployment.

    ``search_params``: resource type -> its supported search parameters. ``resource_types``: every
    type the repository serves (a type without search parameters is still readable). ``security``:
    SMART ``oauth-uris`` names (token, authorize, introspect, revoke...) -> URL, usually
    ``smart_security(settings)``. ``includes``: resource type -> the ``Type:parameter`` its
    ``_include`` accepts, when that is more than its searchable reference parameters (an include
    reads the matched resources, so it needs no index).
    """
    params = {rtype: [_search_param(p) for p in plist] for rtype, plist in search_params.items()}
    types = sorted(set(resource_types) | set(params))
    operations: dict[str, list[Operation]] = {}
    for op in extra_operations:
        operations.setdefault(op.resource_type, []).append(op)
        if op.resource_type not in types:
            types = sorted({*types, op.resource_type})
    interaction_list = [{"code": code} for code in interactions]
    version = software_version()
    stamp = (date or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)

    resources = []
    for rtype in types:
        entry: dict[str, Any] = {
            "type": rtype,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
            "interaction": interaction_list,
            **RESOURCE_POLICY,
        }
        included = sorted(includes[rtype]) if includes is not None and rtype in includes else _includes(rtype, params)
        revincludes = _revincludes(rtype, params)
        if included:
            entry["searchInclude"] = included
        if revincludes:
            entry["searchRevInclude"] = revincludes
        if params.get(rtype):
            entry["searchParam"] = [
                {k: v for k, v in p.items() if k != "_target"} for p in sorted(params[rtype], key=lambda p: p["name"])
            ]
        if operations.get(rtype):
            entry["operation"] = [_operation(op) for op in sorted(operations[rtype], key=lambda o: o.name)]
        resources.append(entry)

    return {
        "resourceType": "CapabilityStatement",
        "id": "huren",
        "url": f"{settings.fhir_base_url}/metadata",
        "version": version,
        "name": "HurenCapabilityStatement",
        "title": "huren FHIR R4 server",
        "status": "active",
        "experimental": False,
        "date": stamp.isoformat().replace("+00:00", "Z"),
        "publisher": "huren",
        "description": "The shared FHIR R4 repository of a county medical community: HL7 v2 feeds of member "
        "hospitals converted to FHIR, mutual recognition of test results, resident self-access.",
        "kind": "instance",
        "software": {"name": "huren", "version": version},
        "implementation": {"description": "huren FHIR R4 endpoint", "url": settings.fhir_base_url},
        "fhirVersion": FHIR_VERSION,
        "format": FORMATS,
        "rest": [
            {
                "mode": "server",
                "documentation": "Every interaction except this statement needs an OAuth2 bearer token "
                "with SMART v2 scopes (system/*.cruds for hospital systems, patient/*.rs for residents). "
                "update (PUT Type/id) creates at a new id (updateCreate), except at an id of the form huren "
                "gives the records the feeds send -- a name-based UUID, version 5: a caller some security "
                "labels are withheld from updates there only a record it may read (else 404, alike whether "
                "a record stands there or not); create with POST or at an id of another form (a random UUID, "
                "version 4, or a name). A conditional update matching nothing whose body names a record that "
                "stands is 409.",
                "security": _security(security),
                **({"resource": resources} if resources else {}),  # R4 JSON has no empty arrays
                "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
            }
        ],
    }


def _field(param: Any, *names: str) -> Any:
    for name in names:
        value = param.get(name) if isinstance(param, Mapping) else getattr(param, name, None)
        if value not in (None, "", [], ()):
            return value
    return None


def _search_param(param: Any) -> dict[str, Any]:
    name = _field(param, "name", "code")
    ptype = _field(param, "type")
    if not name or not ptype:
        raise ValueError(f"a search parameter needs a name and a type: {param!r}")
    out: dict[str, Any] = {"name": str(name)}
    definition = _field(param, "url", "definition")
    if definition:
        out["definition"] = str(definition)
    out["type"] = str(ptype)
    documentation = _field(param, "documentation", "description")
    if documentation:
        out["documentation"] = str(documentation)
    target = _field(param, "target")
    if target:
        out["_target"] = sorted(str(t) for t in target)  # internal: removed before output
    return out


def _includes(rtype: str, params: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    return sorted(f"{rtype}:{p['name']}" for p in params.get(rtype, []) if p["type"] == "reference")


def _revincludes(rtype: str, params: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """``Other:param`` for every reference parameter elsewhere that can point at ``rtype``."""
    out = []
    for other, plist in params.items():
        for p in plist:
            targets = p.get("_target")
            if p["type"] == "reference" and (targets is None or rtype in targets):
                out.append(f"{other}:{p['name']}")
    return sorted(out)


def _operation(op: Operation) -> dict[str, Any]:
    out = {"name": op.name, "definition": op.definition}
    if op.documentation:
        out["documentation"] = op.documentation
    return out


def _security(uris: Mapping[str, str]) -> dict[str, Any]:
    oauth = [{"url": name, "valueUri": url} for name, url in uris.items()]
    return {
        **({"extension": [{"url": SMART_OAUTH_URIS, "extension": oauth}]} if oauth else {}),
        "cors": True,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 with SMART v2 scopes",
            }
        ],
        "description": "OAuth2 bearer tokens: client credentials for hospital systems, the standalone "
        "patient launch with PKCE for residents; discovery at /.well-known/smart-configuration.",
    }
