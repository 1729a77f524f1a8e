"""``/audit``: the audit log's public key, signed checkpoints, Merkle proofs and verification.

Checkpoints and proofs carry only hashes, so any authenticated caller (a resident checking that
the record of who read their file is in the log, an insurer, a regulator) may fetch them and check
them against the published public key with any RFC 9162 implementation; a resident gets the
inclusion proof of a record that names them only (``policy.require_record_of_theirs``). The public key itself is
public, like a JWKS. Signing a checkpoint on demand and running a full verification are for
auditors and for system clients allowed to read AuditEvents.

Hashes are lowercase hex; ``audit_path``/``proof`` list the RFC 9162 proof nodes in order.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from engine.audit.note import note
from engine.audit.record import event_of
from engine.audit.verify import verify_online
from engine.audit.view import patients_named
from engine.auth.caller import Caller
from engine.auth.deps import get_caller, get_engine
from engine.auth.policy import require_audit_admin, require_record_of_theirs
from engine.bounds import int_query
from engine.engine import Engine
from engine.errors import BadRequest

router = APIRouter(prefix="/audit", tags=["audit"])



@router.get("/public-key")
def public_key(engine: Engine = Depends(get_engine)) -> dict[str, Any]:
    keys = engine.audit.keys
    return {"origin": engine.audit.origin, "current": keys.current_id,
            "keys": [{"key_id": k.key_id, "name": k.name, "algorithm": "Ed25519", "pem": k.pem}
                     for k in keys.public.values()]}


@router.get("/checkpoints")
def checkpoints(request: Request, since: int = int_query(0, description="first checkpoint number"),
                limit: int = int_query(100, ge=1, le=1000), engine: Engine = Depends(get_engine),
                caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    note(request, action="audit-access", detail={"checkpoints_since": since})
    cps = engine.audit.list_checkpoints(since_seq=since, limit=limit)
    latest = engine.audit.latest_checkpoint()  # the newest signed statement: a seal has ``"seal": true``, no ``seq``
    seal = engine.audit.latest_seal()
    return {"origin": engine.audit.origin, "size": engine.audit.size,
            "latest": latest.as_json() if latest else None, "seal": seal.as_json() if seal else None,
            "checkpoints": [c.as_json() for c in cps]}


@router.post("/checkpoints", status_code=201)
def sign_now(request: Request, engine: Engine = Depends(get_engine),
             caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    require_audit_admin(caller)
    note(request, action="audit-access", detail={"checkpoint": "signed on demand"})
    if engine.audit.size == 0:
        raise BadRequest("the audit log is empty")
    cp = engine.audit.checkpoint(force=True)
    assert cp is not None
    return cp.as_json()


@router.get("/proof/inclusion")
def inclusion(request: Request, leaf: int = int_query(...), size: int | None = int_query(None, ge=1),
              engine: Engine = Depends(get_engine), caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    log = engine.audit
    if size is None:
        latest = log.latest_checkpoint()
        if latest is None:
            raise BadRequest("no checkpoint yet: give size=")
        size = latest.size
    note(request, action="audit-access", detail={"inclusion": f"{leaf}@{size}"})
    if not (leaf < size <= log.size):
        raise BadRequest(f"need leaf < size <= {log.size}", expression=["leaf", "size"])
    doc = log.get(leaf)
    if doc is None:
        raise BadRequest(f"record {leaf} is missing from the log")
    if caller.restricted:
        require_record_of_theirs(caller, patients_named(event_of(doc["data"])))
    return {"leaf_index": leaf, "tree_size": size, "leaf_hash": doc["hash"],
            "audit_path": [h.hex() for h in log.inclusion_proof(leaf, size)], "root": log.root_at(size).hex()}


@router.get("/proof/consistency")
def consistency(request: Request, first: int = int_query(..., ge=1), second: int = int_query(..., ge=1),
                engine: Engine = Depends(get_engine), caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    log = engine.audit
    note(request, action="audit-access", detail={"consistency": f"{first}..{second}"})
    if not (first <= second <= log.size):
        raise BadRequest(f"need first <= second <= {log.size}", expression=["first", "second"])
    return {"first": first, "second": second, "first_root": log.root_at(first).hex(),
            "second_root": log.root_at(second).hex(),
            "proof": [h.hex() for h in log.consistency_proof(first, second)]}


@router.get("/verify")
async def verify(request: Request, engine: Engine = Depends(get_engine),
                 caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    require_audit_admin(caller)
    note(request, action="audit-access", detail={"verify": "full log"})
    report = await run_in_threadpool(verify_online, engine.audit)
    return report.as_json()
